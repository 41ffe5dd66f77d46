//! `#[instrument]` as the compiler sees it. Every case in `ui/pass` compiles and runs: sync,
//! async, method, generic and `Result`-returning functions, each recording its catalogue span
//! under a test pipeline. Every case in `ui/fail` holds one mistake and must fail with exactly
//! the committed `.stderr`, pointing at the user's own token: an unknown span or metric, a
//! missing attribute or label, a wrong label, a secret argument named without its redaction
//! marker, the attribute on something that is not a function, a duration metric not in
//! seconds, and a type error inside an instrumented body (reported on the body's own line).
//!
//! Regenerate the `.stderr` files with
//! `TRYBUILD=overwrite cargo test -p stellaops-telemetry-macros --test ui`, then read them.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.pass("tests/ui/pass/*.rs");
    t.compile_fail("tests/ui/fail/*.rs");
}
