//! Plan: which exporters each [`Signal`] gets, after the egress policy was asked for the exact
//! endpoint each network exporter would dial. A refused exporter is replaced by the file
//! exporter. Nothing is built or dialled here.

#[cfg(feature = "_otlp")]
use crate::config::OtlpProtocol;
use crate::error::TelemetryError;
use crate::export::Signal;
#[cfg(feature = "_otlp")]
use crate::export::{Egress, OtlpSettings, check_egress};
use crate::profile::ExporterKind;
use crate::resolve::Settings;

/// One exporter of one signal, ready to be built.
pub(crate) enum Planned {
    /// OTLP, with settings the egress policy allowed.
    #[cfg(feature = "_otlp")]
    Otlp(Box<OtlpSettings>),
    /// OTLP files under the telemetry directory.
    #[cfg(feature = "file")]
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
        self.all().any(|p| match p {
            #[cfg(feature = "_otlp")]
            Planned::Otlp(s) => s.protocol == OtlpProtocol::Grpc,
            _ => false,
        })
    }

    /// Whether an exporter writes under the telemetry directory.
    pub(crate) fn needs_files(&self) -> bool {
        self.all().any(|p| match p {
            #[cfg(feature = "file")]
            Planned::File => true,
            _ => false,
        })
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
    // The scrape endpoint is planned with the exporters: refused here, before anything is
    // built, for `build()` and `stella-telemetry config check` alike.
    #[cfg(not(feature = "prometheus"))]
    if settings.profile.prometheus_scrape {
        return Err(crate::ConfigError::NotBuiltIn {
            what: format!(
                "the profile `{}`'s prometheus_scrape (the Prometheus endpoint)",
                settings.profile.name
            ),
            feature: "prometheus",
        }
        .into());
    }
    Ok(plan)
}

/// The file exporter, where this build has it.
#[cfg(feature = "file")]
fn file(_: &Settings, _: Signal) -> Result<Planned, TelemetryError> {
    Ok(Planned::File)
}

/// The file exporter, where this build has it.
#[cfg(not(feature = "file"))]
fn file(settings: &Settings, signal: Signal) -> Result<Planned, TelemetryError> {
    Err(crate::ConfigError::NotBuiltIn {
        what: format!(
            "the profile `{}`'s file exporter for {} (also the fallback of a refused OTLP exporter)",
            settings.profile.name,
            signal.as_str()
        ),
        feature: "file",
    }
    .into())
}

/// The exporters of one signal, in the configured order; a refused OTLP exporter becomes the
/// file exporter (once).
#[cfg_attr(not(feature = "_otlp"), allow(unused_variables, unused_mut))]
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
            #[cfg(not(feature = "_otlp"))]
            ExporterKind::Otlp => {
                return Err(crate::ConfigError::NotBuiltIn {
                    what: format!(
                        "the profile `{}`'s OTLP exporter for {}",
                        settings.profile.name,
                        signal.as_str()
                    ),
                    feature: "otlp-grpc` or `otlp-http",
                }
                .into());
            }
            #[cfg(feature = "_otlp")]
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
            ExporterKind::File => planned.push(file(settings, signal)?),
            ExporterKind::Stdout => planned.push(Planned::Stdout),
        }
    }
    if file_fallback && !kinds.contains(&ExporterKind::File) {
        planned.push(file(settings, signal)?);
    }
    Ok(planned)
}

/// A build that leaves the OTLP transports out (run with `--no-default-features --features
/// file`): what asks for them is refused by name, and the airgap profile builds.
#[cfg(test)]
#[cfg(all(not(feature = "_otlp"), feature = "file"))]
mod without_otlp_tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use crate::{ConfigError, Profile, Telemetry, TelemetryError};

    #[test]
    fn an_otlp_exporter_is_refused_naming_the_feature_and_airgap_builds() {
        let dir = tempfile::tempdir().unwrap();
        let err = Telemetry::builder("svc")
            .profile(Profile::default_profile())
            .dir(dir.path())
            .stdout_logs(false)
            .build()
            .unwrap_err();
        match err {
            TelemetryError::Config(ConfigError::NotBuiltIn { what, feature }) => {
                assert!(what.contains("OTLP exporter for traces"), "{what}");
                assert!(feature.contains("otlp-grpc"), "{feature}");
            }
            other => panic!("{other}"),
        }
        let telemetry = Telemetry::builder("svc")
            .profile(Profile::airgap())
            .dir(dir.path())
            .stdout_logs(false)
            .build()
            .unwrap();
        telemetry.shutdown();
    }

    #[cfg(not(feature = "prometheus"))]
    #[test]
    fn a_profile_that_scrapes_is_refused_naming_the_prometheus_feature() {
        let dir = tempfile::tempdir().unwrap();
        let err = Telemetry::builder("svc")
            .profile(Profile::airgap())
            .prometheus_scrape(true)
            .dir(dir.path())
            .stdout_logs(false)
            .build()
            .unwrap_err();
        assert!(
            matches!(
                &err,
                TelemetryError::Config(ConfigError::NotBuiltIn {
                    feature: "prometheus",
                    ..
                })
            ),
            "{err}"
        );
        assert!(err.to_string().contains("prometheus_scrape"), "{err}");
    }
}
