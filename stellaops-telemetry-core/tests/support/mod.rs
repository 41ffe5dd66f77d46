//! Shared integration-test support: an in-process OTLP receiver and a throwaway PKI.
//!
//! Use from an integration test with `mod support;`. Not every test binary uses every
//! item, hence the `dead_code` / `unused_imports` allowances.
#![allow(dead_code)]

pub mod env;
pub mod pki;
pub mod receiver;

#[allow(unused_imports)]
pub use pki::{PkiPaths, TestPki};
#[allow(unused_imports)]
pub use receiver::{OtlpReceiver, ReceivedRequest, SHUTDOWN_GRACE, Signal, Transport};
