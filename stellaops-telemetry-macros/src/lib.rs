//! Attribute macros for StellaOps handlers, checked at compile time against the catalogue.
//!
//! The macros arrive with the macros issue; this crate is already wired into the workspace
//! and re-exported by `stellaops-telemetry-core` (which pins its exact version).
