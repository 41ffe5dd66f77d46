//! What the `#[instrument]` expansions call, hidden from the documented API: its shape may
//! change with the macros.

pub use crate::instrument::{
    BoundSlots, Call, InContext, Kind, KindByName, KindByTrait, LocalSlots, Pipeline, Returned,
    ReturnedErr, ReturnedValue, assert_seconds, call_once, count_call, count_call_bound,
    error_kind_label, outcome_index, outcome_label, record_duration, record_duration_bound,
    record_field,
};
pub use crate::metrics::{BoundCounter, BoundHistogram};
