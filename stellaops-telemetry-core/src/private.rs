//! What the `#[instrument]` expansions call, hidden from the documented API: its shape may
//! change with the macros.

pub use crate::instrument::{
    Call, InContext, Kind, KindByName, KindByTrait, Pipeline, Returned, ReturnedErr, ReturnedValue,
    assert_seconds, call_once, count_call, error_kind_label, outcome_label, record_duration,
    record_field,
};
