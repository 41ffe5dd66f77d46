//! Criterion benchmarks of the StellaOps Telemetry SDK, each beside the peer stack a service
//! would otherwise use, measured in the same run (compare ratios, not absolute times).
//!
//! ```text
//! cargo bench -p stellaops-telemetry-benches --bench json_log
//! ```
//!
//! The library holds what the benchmarks and the load script's server share: the peer stacks.

pub mod peers;
