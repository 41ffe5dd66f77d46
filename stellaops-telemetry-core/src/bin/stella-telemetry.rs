//! `stella-telemetry`: profiles, the metric catalogue, generated alert rules, dashboards and
//! collector configurations, tenants' incidents, and offline bundles. See
//! [`stellaops_telemetry_core::cli`].

use std::process::ExitCode;

fn main() -> ExitCode {
    let code = stellaops_telemetry_core::cli::run_with_progress(
        std::env::args_os(),
        &mut std::io::stdout().lock(),
        &mut std::io::stderr().lock(),
    );
    ExitCode::from(code)
}
