//! Offline bundles: selecting a window of the local telemetry store for export.

mod select;
mod store;

pub use store::{CorruptSegment, OtlpFiles, SelectionReport, SignalCounts, Store, StoreError};
