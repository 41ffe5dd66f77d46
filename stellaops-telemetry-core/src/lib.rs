//! # StellaOps Telemetry SDK — core
//!
//! Every StellaOps service adds this crate so that it emits *compliant* telemetry: the house
//! JSON log line, OTLP traces, metrics and logs, files for air-gapped sites, profiles, and one
//! bootstrap that owns every global.
//!
//! ## Quick start
//!
//! ```no_run
//! use stellaops_telemetry_core::{Telemetry, tracing};
//!
//! fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let _telemetry = Telemetry::builder("scanner")
//!         .service_version(env!("CARGO_PKG_VERSION"))
//!         .from_env() // OTEL_* and STELLAOPS_TELEMETRY_* (table below)
//!         .install()?; // flushes and shuts down when dropped
//!
//!     let span = tracing::info_span!("scan.image", imageRef = "registry.example/app:1.2");
//!     let _entered = span.enter();
//!     tracing::info!(findings = 3u64, "scan finished");
//!     Ok(())
//! }
//! ```
//!
//! ## The road every record takes
//!
//! ```text
//! spans    tracing span ─► tracing-opentelemetry ─► SDK tracer ─┐ one sampler (tenant overrides)
//!          tower request span, #[instrument] span ──────────────┴► SpanRecorder (span limits) ─► bounded batch processor ─► redact ─► exporters
//! logs     tracing event ─► controlled filter (level, RUST_LOG, tenant levels) ─┬► house JSON layer (redact) ─► non-blocking writer ─► stdout / rotating file
//!                                                                               └► our OTel log bridge (redact) ─► bounded batch processor ─► exporters
//! metrics  catalogue handle ─► bound series (atomics) ─┐ flushed at each collection
//!          OpenTelemetry API ──────────────────────────┴► redacting meter ─► SDK meter ─┬► periodic reader (bounded, counted) ─► exporters
//!                                                                                      └► Prometheus reader ─► GET /metrics
//! exporters: OTLP gRPC | OTLP HTTP/protobuf | OTLP files (JSON Lines / delimited protobuf) | stdout
//!            (each network exporter only after the egress policy allowed its endpoint)
//! ```
//!
//! Every record passes the pipeline's [`Redactor`] before it reaches an exporter, a file or
//! a JSON line (see [`redaction`](crate::Redactor)), and every exporter's endpoint passes the
//! [`EgressPolicy`] before the exporter is built (sealed mode: loopback only, or the
//! allow-list's addresses and networks, and no host name is resolved; refused exporters fall
//! back to files).
//!
//! The calling thread never blocks on telemetry I/O: every queue is bounded, a full queue
//! drops and counts ([`Telemetry::stats`]), every export is bounded by a timeout, and the
//! guard's final flush is bounded by a deadline. `install()` is the only code that touches
//! process-wide state; `build()` returns the same pipeline unregistered, for tests.
//!
//! `build()` is three steps: the builder's calls are resolved into settings (one precedence
//! rule, see [`TelemetryBuilder`]), the settings give an export plan per signal (after the
//! egress policy), and the plan is assembled into the providers and the subscriber (with the
//! service's own layers, [`TelemetryBuilder::layer`]). [`Telemetry::controls`] changes the
//! service's log level and per-tenant sampling and log levels while the process runs.
//!
//! ## Profiles
//!
//! [`Profile::default_profile`], [`Profile::forensic`] and [`Profile::airgap`] carry the
//! settings of the specification (sampling, log level, retention tag, attribute set, export
//! interval, exporters, sealed mode); [`Profile::diff`] lists what differs. Where tail sampling
//! runs is profile data too ([`SamplingSite`]): the collector for default and forensic, the
//! SDK's own tail sampler for airgap ([`ProbabilisticPolicy`], [`TailSamplingLimits`]).
//!
//! ## Offline bundles
//!
//! [`bundle::pack`] writes one window of telemetry (OTLP files, the profile's configuration,
//! a manifest) as a deterministic tar archive, optionally zstd-compressed, signed with an
//! Ed25519 key; [`bundle::verify`] checks it offline with the public key alone, down to every
//! record's time and tenant; [`bundle::inspect`] shows what it holds without a key.
//!
//! ## Feature flags
//!
//! | feature | what it adds |
//! |---|---|
//! | `testing` | [`testing::TestExporters`]: in-memory span, log and metric exporters and JSON log capture for `build()` pipelines |
//! | `cli` | the `stella-telemetry` command-line tool and its library entry point, `cli::run` |
//!
//! ## Environment variables
//!
//! Read only by [`TelemetryConfig::from_env`] / [`TelemetryBuilder::from_env`]; an empty
//! value counts as unset; a malformed one is a [`ConfigError`] naming the variable.
//!
#![doc = include_str!("../docs/environment.md")]
//!
//! Values configured through the environment, a file or the builder are passed to the OTLP
//! exporters explicitly. When no endpoint is configured, none is passed: the OTLP exporter keeps
//! its own default (`http://localhost:4317` for gRPC, `http://localhost:4318/v1/<signal>` for
//! HTTP; in sealed mode that default is passed, so that it is dialled without a lookup). The OTLP exporter crate also reads a few `OTEL_EXPORTER_OTLP_*` variables itself,
//! whether or not `from_env()` was called: the endpoint when none is configured, the headers
//! (merged over the configured ones), the compression when none is configured, and
//! `OTEL_EXPORTER_OTLP_INSECURE`. With `from_env()` the values it reads agree with ours. So
//! that the egress policy checks exactly the endpoint that will be dialled, `build()` reads
//! `OTEL_EXPORTER_OTLP_[SIGNAL_]ENDPOINT` the same way when no endpoint is configured, and pins it.

// docs.rs (`--cfg docsrs`, nightly) labels each feature-gated item with its feature.
#![cfg_attr(docsrs, feature(doc_cfg))]

// The road a pipeline is built on: the calls, resolved into settings, planned per signal
// (egress decided), assembled into running parts.
mod assemble;
mod builder;
mod plan;
mod resolve;
mod telemetry;

// What the running pipeline is made of.
mod clock;
mod config;
mod context;
mod controls;
mod egress;
mod error;
mod export;
mod incidents;
mod instrument;
mod limits;
mod logs;
pub mod metrics;
mod profile;
mod recorder;
mod redaction;
mod resource;
mod self_metrics;
pub mod spans;
mod stats;
#[cfg(feature = "_otlp")]
mod tls;

// Around it.
#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;
#[cfg(feature = "generators")]
pub mod artefacts;
#[cfg(feature = "bundle")]
pub mod bundle;
#[cfg(feature = "cli")]
pub mod cli;
#[cfg(feature = "bundle")]
pub mod kit;
pub mod propagation;
#[cfg(feature = "testing")]
pub mod testing;

#[cfg(feature = "generators")]
pub use artefacts::{Artefact, ArtefactError, ArtefactKind};
pub use assemble::DIRECT_SPAN_TARGET;
pub use builder::{DEFAULT_SHUTDOWN_TIMEOUT, ServiceLayer, TelemetryBuilder};
#[cfg(feature = "bundle")]
pub use bundle::BundleError;
pub use clock::WallClock;
pub use config::{
    BatchConfig, BatchProcessorConfig, ConfigError, ENVIRONMENT, EgressConfig, EnvVar,
    ExportersConfig, FilesConfig, LimitsConfig, LogOutputsConfig, Origin, OtlpCompression,
    OtlpConfig, OtlpProtocol, OtlpSignalConfig, PropagatorKind, SamplingConfig, TelemetryConfig,
};
pub use context::RequestContext;
pub use controls::{
    AUDIT_TARGET, ControlError, Controls, MAX_TENANT_OVERRIDES, TenantOverride, TenantSampling,
};
pub use egress::{
    AllowList, EgressDecision, EgressError, EgressPolicy, EgressTarget, Host, LoopbackOnly,
    OpenPolicy, PolicyFn, parse_endpoint, sealed_policy,
};
pub use error::TelemetryError;
pub use export::record::SpanRecord;
pub use export::*;
pub use incidents::{
    DEFAULT_INCIDENT_TTL, EXPIRY_ACTOR, ErrorRateTrigger, FILE_ACTOR, INCIDENT_ATTRIBUTE, Incident,
    IncidentError, IncidentEvent, IncidentEventKind, IncidentFile, IncidentHook, IncidentStart,
    IncidentTrigger, Incidents, MAX_ACTIVE_INCIDENTS, MAX_INCIDENT_TTL, parse_incident_ttl,
};
#[cfg(feature = "otlp-http")]
pub use incidents::{DEFAULT_WEBHOOK_TIMEOUT, WebhookHook};
pub use limits::{
    LimitError, MIN_VALUE_LIMIT, TRUNCATED, TruncationCounts, ValueBounds, ValueLimits,
};
#[cfg(feature = "testing")]
pub use logs::LogCapture;
pub use logs::{JsonLogLayer, LogOutput, LogOutputError, RetentionPolicy, RotatingFile};
pub use profile::{
    AttributeSet, ExporterKind, ExporterSelection, LogLevel, Profile, ProfileDifference,
    SamplingMode, SamplingSettings, SamplingSite,
};
pub use recorder::SpanRecorder;
pub use redaction::{
    CREDENTIAL_KEYS, DEFAULT_KEYS, REDACTED, RedactingMeterProvider, RedactionError,
    RedactionSettings, Redactor, Rule, SENSITIVE_QUERY_PARAMETERS, Sensitive, Verdict,
};
pub use stats::{PipelineStats, SignalSnapshot, SignalStats, StatsSnapshot};
pub use telemetry::{Telemetry, TelemetryGuard};

pub use instrument::ErrorKind;
#[doc(hidden)]
pub use stellaops_telemetry_macros as __macros;
pub use stellaops_telemetry_macros::instrument;

/// The README's code blocks, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

pub use opentelemetry;
pub use opentelemetry_proto;
pub use opentelemetry_sdk;
pub use tracing;
pub use tracing_opentelemetry;
pub use tracing_subscriber;
