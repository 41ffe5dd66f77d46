//! Plan: which exporters each [`Signal`] gets, after the egress policy was asked for the exact
//! endpoint each network exporter would dial. A refused exporter is replaced by the file
//! exporter. Nothing is built or dialled here.

use crate::config::OtlpProtocol;
use crate::error::TelemetryError;
use crate::export::{Egress, OtlpSettings, Signal, check_egress};
use crate::profile::ExporterKind;
use crate::resolve::Settings;

/// One exporter of one signal, ready to be built.
pub(crate) enum Planned {
    /// OTLP, with settings the egress policy allowed.
    Otlp(Box<OtlpSettings>),
    /// OTLP files under the telemetry directory.
    File,
    /// OTLP JSON on stdout.
    Stdout,
}

/// An OTLP exporter the egress policy refused.
pub(crate) struct Refusal {
    pub(crate) signal: Signal,
    /// The endpoint, masked as errors show URLs.
    pub(crate) endpoint: String,
    pub(crate) reason: String,
}

/// The exporters of every signal.
pub(crate) struct ExportPlan {
    pub(crate) traces: Vec<Planned>,
    pub(crate) metrics: Vec<Planned>,
    pub(crate) logs: Vec<Planned>,
    pub(crate) refused: Vec<Refusal>,
}

impl ExportPlan {
    fn all(&self) -> impl Iterator<Item = &Planned> {
        self.traces.iter().chain(&self.metrics).chain(&self.logs)
    }

    /// Whether an exporter needs the gRPC export runtime.
    pub(crate) fn needs_runtime(&self) -> bool {
        self.all()
            .any(|p| matches!(p, Planned::Otlp(s) if s.protocol == OtlpProtocol::Grpc))
    }

    /// Whether an exporter writes under the telemetry directory.
    pub(crate) fn needs_files(&self) -> bool {
        self.all().any(|p| matches!(p, Planned::File))
    }
}

/// The export plan of `settings` (empty for a disabled pipeline).
pub(crate) fn plan(settings: &Settings) -> Result<ExportPlan, TelemetryError> {
    let mut plan = ExportPlan {
        traces: Vec::new(),
        metrics: Vec::new(),
        logs: Vec::new(),
        refused: Vec::new(),
    };
    if settings.disabled {
        return Ok(plan);
    }
    let exporters = &settings.profile.exporters;
    for (signal, kinds) in [
        (Signal::Traces, &exporters.traces),
        (Signal::Metrics, &exporters.metrics),
        (Signal::Logs, &exporters.logs),
    ] {
        let planned = plan_signal(settings, signal, kinds, &mut plan.refused)?;
        match signal {
            Signal::Traces => plan.traces = planned,
            Signal::Metrics => plan.metrics = planned,
            Signal::Logs => plan.logs = planned,
        }
    }
    Ok(plan)
}

/// The exporters of one signal, in the configured order; a refused OTLP exporter becomes the
/// file exporter (once).
fn plan_signal(
    settings: &Settings,
    signal: Signal,
    kinds: &[ExporterKind],
    refused: &mut Vec<Refusal>,
) -> Result<Vec<Planned>, TelemetryError> {
    let mut planned = Vec::new();
    let mut file_fallback = false;
    for kind in kinds {
        match kind {
            ExporterKind::Otlp => match check_egress(
                &settings.config,
                signal,
                &*settings.policy,
                settings.profile.sealed,
            )? {
                Egress::Allowed(otlp) => planned.push(Planned::Otlp(otlp)),
                Egress::Refused { endpoint, reason } => {
                    file_fallback = true;
                    refused.push(Refusal {
                        signal,
                        endpoint,
                        reason,
                    });
                }
            },
            ExporterKind::File => planned.push(Planned::File),
            ExporterKind::Stdout => planned.push(Planned::Stdout),
        }
    }
    if file_fallback && !kinds.contains(&ExporterKind::File) {
        planned.push(Planned::File);
    }
    Ok(planned)
}
