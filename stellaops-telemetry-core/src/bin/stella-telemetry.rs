//! `stella-telemetry`: profiles, the metric catalogue, and generated alert rules, dashboards
//! and collector configurations. See [`stellaops_telemetry_core::cli`].

use std::process::ExitCode;

fn main() -> ExitCode {
    let code = stellaops_telemetry_core::cli::run(
        std::env::args_os(),
        &mut std::io::stdout().lock(),
        &mut std::io::stderr().lock(),
    );
    ExitCode::from(code)
}
