//! `stella-telemetry config check`: a configuration file and the environment resolved as
//! `build()` resolves them, printed setting by setting with where each value came from, and
//! the egress policy's answer for every OTLP endpoint. No exporter is built, nothing is
//! dialled and no file or directory is created.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::{Failure, io};
use crate::config::{Origin, OtlpSignalConfig, TelemetryConfig};
use crate::egress::mask_url;
use crate::export::Signal;
use crate::plan::{ExportPlan, Planned};
use crate::profile::ExporterKind;
use crate::resolve::Settings;

/// The variable naming the configuration file `from_env` reads first.
const CONFIG_VARIABLE: &str = "STELLAOPS_TELEMETRY_CONFIG";
/// The service name when neither the configuration nor `--service` gives one (the name the
/// OpenTelemetry specification gives an unnamed service).
const UNNAMED_SERVICE: &str = "unknown_service";
/// Characters of one value printed; the rest is cut and marked.
const MAX_VALUE_CHARS: usize = 256;
/// Characters of an error message printed.
const MAX_ERROR_CHARS: usize = 2048;
/// Items of one list (resource attributes, headers, allow-list entries) printed.
const MAX_ITEMS: usize = 64;
/// Marks a value cut for printing.
const CUT: &str = "…[truncated]";

#[derive(Debug, Subcommand)]
pub(super) enum ConfigCommand {
    /// Resolves a configuration file and the environment as `build()` does (the file in place
    /// of the one STELLAOPS_TELEMETRY_CONFIG names, the variables over it) and prints every
    /// setting with its origin, and the egress policy's answer for each OTLP endpoint,
    /// without building an exporter or dialling anything. Exit 1 with the error `build()`
    /// would return.
    Check(CheckArgs),
}

#[derive(Debug, Args)]
pub(super) struct CheckArgs {
    /// The configuration file: TOML, or JSON when its name ends in `.json`. Default: the file
    /// STELLAOPS_TELEMETRY_CONFIG names, if any.
    #[arg(value_name = "FILE")]
    file: Option<PathBuf>,
    /// Print one JSON object instead of lines.
    #[arg(long)]
    json: bool,
    /// The service name the code passes to `Telemetry::builder` (the configuration's
    /// `service_name` and OTEL_SERVICE_NAME win over it). Default: `unknown_service`.
    #[arg(long, value_name = "NAME")]
    service: Option<String>,
}

pub(super) fn run(command: ConfigCommand, out: &mut dyn Write) -> Result<(), Failure> {
    match command {
        ConfigCommand::Check(args) => check(&args, &|name| std::env::var(name).ok(), out),
    }
}

/// One resolved setting as printed.
struct Line {
    name: String,
    value: String,
    origin: String,
}

/// The egress policy's answer for one signal's OTLP endpoint.
struct EgressLine {
    signal: &'static str,
    endpoint: String,
    allowed: bool,
    policy: String,
    origin: String,
    reason: Option<String>,
    replaced_by: Option<String>,
}

/// Everything `config check` prints on success.
struct Report {
    settings: Vec<Line>,
    egress: Vec<EgressLine>,
    warnings: Vec<String>,
}

/// Checks the configuration `args` names with the variables `env` answers, writing the
/// report to `out`.
fn check(
    args: &CheckArgs,
    env: &dyn Fn(&str) -> Option<String>,
    out: &mut dyn Write,
) -> Result<(), Failure> {
    match resolve(args, env) {
        Ok(report) if args.json => write_json(&report, out),
        Ok(report) => write_text(&report, out),
        Err(message) => {
            let message = bounded(&message, MAX_ERROR_CHARS);
            if args.json {
                let text = serde_json::json!({ "valid": false, "error": message });
                writeln!(out, "{text:#}").map_err(io)?;
            }
            Err(Failure::from(message))
        }
    }
}

/// The report, or the error `build()` would return (with its causes).
fn resolve(args: &CheckArgs, env: &dyn Fn(&str) -> Option<String>) -> Result<Report, String> {
    let file = match &args.file {
        Some(path) => Some(
            path.to_str()
                .ok_or_else(|| {
                    format!(
                        "the configuration file path `{}` is not UTF-8",
                        path.display()
                    )
                })?
                .to_owned(),
        ),
        None => None,
    };
    // The file takes the place of the one the variable names, so it is read exactly as
    // `TelemetryConfig::from_env` reads that one, the variables over it.
    let lookup = |name: &str| match (&file, name) {
        (Some(path), CONFIG_VARIABLE) => Some(path.clone()),
        _ => env(name),
    };
    let input = TelemetryConfig::from_lookup(lookup).map_err(|e| super::chain(&e))?;
    let code_name = args.service.as_deref().unwrap_or(UNNAMED_SERVICE);
    let builder = crate::Telemetry::builder(code_name).config(input.clone());
    let (settings, plan) = crate::resolve::check(builder).map_err(|e| super::chain(&e))?;
    let config_file = match &file {
        Some(path) => Some((path.clone(), "argument".to_owned())),
        None => env(CONFIG_VARIABLE)
            .filter(|v| !v.trim().is_empty())
            .map(|path| (path, format!("env {CONFIG_VARIABLE}"))),
    };
    let origins = Origins {
        input: &input,
        env: &lookup,
        file: config_file
            .as_ref()
            .map(|(path, _)| bounded(path, MAX_VALUE_CHARS)),
        profile: settings.profile.name.clone(),
    };
    let mut settings_lines = vec![match &config_file {
        Some((path, origin)) => line("config_file", shown(path), origin.clone()),
        None => line("config_file", "(none)".to_owned(), "default".to_owned()),
    }];
    settings_lines.extend(identity(&origins, &settings, args.service.is_some()));
    settings_lines.extend(profile_settings(&origins, &settings));
    settings_lines.extend(pipeline(&origins, &settings));
    settings_lines.extend(queues_and_limits(&origins, &settings));
    settings_lines.extend(outputs(&origins, &settings));
    let (otlp, egress) = otlp_and_egress(&origins, &settings, &plan);
    settings_lines.extend(otlp);
    Ok(Report {
        settings: settings_lines,
        egress,
        warnings: input.warnings().iter().map(|w| shown(w)).collect(),
    })
}

/// Where values came from, as printed: `env VAR`, `file PATH field x.y`, `profile NAME` or
/// `default`.
struct Origins<'a> {
    /// The configuration as `from_env` read it (before the builder applied it).
    input: &'a TelemetryConfig,
    env: &'a dyn Fn(&str) -> Option<String>,
    /// The configuration file, as printed.
    file: Option<String>,
    /// The resolved profile's name.
    profile: String,
}

impl Origins<'_> {
    fn text(&self, origin: &Origin) -> String {
        match origin {
            Origin::Default => "default".to_owned(),
            Origin::Profile(name) => format!("profile {}", shown(name)),
            Origin::Setter(name) => format!("TelemetryBuilder::{name}"),
            Origin::Environment(var) => format!("env {var}"),
            Origin::File(field) => match &self.file {
                Some(path) => format!("file {path} field {field}"),
                None => format!("field {field}"),
            },
        }
    }

    /// The origin of `field` when the configuration set it, else `otherwise`.
    fn of_or(&self, field: &str, set: bool, otherwise: String) -> String {
        if set {
            self.text(&self.input.origin_of(field))
        } else {
            otherwise
        }
    }

    /// The origin of `field` when the configuration set it, else the default.
    fn of(&self, field: &str, set: bool) -> String {
        self.of_or(field, set, "default".to_owned())
    }

    /// The origin of a profile setting: the configuration's when it set it, else the profile.
    fn of_profile(&self, field: &str, set: bool) -> String {
        self.of_or(field, set, self.profile_origin())
    }

    fn profile_origin(&self) -> String {
        format!("profile {}", shown(&self.profile))
    }

    /// The first of `vars` set in the environment.
    fn variable(&self, vars: &[&str]) -> Option<String> {
        vars.iter()
            .find(|var| (self.env)(var).is_some_and(|v| !v.trim().is_empty()))
            .map(|var| format!("env {var}"))
    }

    /// The origin of a set limit: its variable (the span-specific one first), else the file.
    fn limit(&self, field: &str, vars: &[&str]) -> String {
        self.variable(vars)
            .unwrap_or_else(|| self.text(&Origin::File(format!("limits.{field}"))))
    }

    /// The keys OTEL_RESOURCE_ATTRIBUTES sets (the file's others).
    fn env_resource_keys(&self) -> BTreeSet<String> {
        const VAR: &str = "OTEL_RESOURCE_ATTRIBUTES";
        (self.env)(VAR)
            .filter(|v| !v.trim().is_empty())
            .and_then(|v| crate::config::parse_resource_attributes(VAR, &v).ok())
            .map(|attributes| attributes.into_keys().collect())
            .unwrap_or_default()
    }

    fn resource(&self, key: &str, env_keys: &BTreeSet<String>) -> String {
        if env_keys.contains(key) {
            "env OTEL_RESOURCE_ATTRIBUTES".to_owned()
        } else {
            self.text(&Origin::File(format!("resource_attributes.{key}")))
        }
    }
}

fn line(name: &str, value: String, origin: String) -> Line {
    Line {
        name: name.to_owned(),
        value,
        origin,
    }
}

/// A configured value as printed: credentials in URLs and credential shapes masked (as errors
/// show values), control characters escaped, cut at [`MAX_VALUE_CHARS`].
fn shown(value: &str) -> String {
    bounded(&crate::config::shown(value), MAX_VALUE_CHARS)
}

/// `text` with control characters escaped, cut at `max` characters.
fn bounded(text: &str, max: usize) -> String {
    let mut out = String::with_capacity(text.len().min(max * 2));
    for (count, c) in text.chars().enumerate() {
        if count == max {
            out.push_str(CUT);
            break;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// At most [`MAX_ITEMS`] items joined by `, `, then how many were left out.
fn list<I: IntoIterator<Item = String>>(items: I) -> String {
    let mut shown_items = Vec::new();
    let mut more = 0usize;
    for item in items {
        if shown_items.len() < MAX_ITEMS {
            shown_items.push(item);
        } else {
            more += 1;
        }
    }
    if shown_items.is_empty() {
        return "none".to_owned();
    }
    let mut text = shown_items.join(", ");
    if more > 0 {
        text.push_str(&format!(" (and {more} more)"));
    }
    text
}

fn path_or_none(path: Option<&std::path::Path>) -> String {
    path.map_or_else(|| "(none)".to_owned(), |p| shown(&p.display().to_string()))
}

fn exporters(kinds: &[ExporterKind]) -> String {
    list(kinds.iter().map(|k| k.as_str().to_owned()))
}

/// A serde enum as the configuration spells it.
fn spelled<T: serde::Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        Ok(other) => other.to_string(),
        Err(_) => "?".to_owned(),
    }
}

/// `service.name`, `service.version`, `deployment.environment` and the resource attributes.
fn identity(origins: &Origins<'_>, settings: &Settings, service_given: bool) -> Vec<Line> {
    let input = origins.input;
    let env_keys = origins.env_resource_keys();
    let from_attributes = |key: &str| {
        input
            .resource_attributes
            .get(key)
            .is_some_and(|v| !v.trim().is_empty())
    };
    let name_origin = if input.service_name.is_some() {
        origins.of("service_name", true)
    } else if from_attributes("service.name") {
        origins.resource("service.name", &env_keys)
    } else if service_given {
        "argument --service".to_owned()
    } else {
        "default".to_owned()
    };
    let version_origin = if input.service_version.is_some() {
        origins.of("service_version", true)
    } else if input.resource_attributes.contains_key("service.version") {
        origins.resource("service.version", &env_keys)
    } else {
        "default".to_owned()
    };
    let mut lines = vec![
        line("service.name", shown(&settings.service_name), name_origin),
        line(
            "service.version",
            shown(&settings.service_version),
            version_origin,
        ),
        line(
            "deployment.environment",
            input
                .deployment_environment
                .as_deref()
                .map_or_else(|| "(none)".to_owned(), shown),
            origins.of(
                "deployment_environment",
                input.deployment_environment.is_some(),
            ),
        ),
    ];
    let identity_keys = ["service.name", "service.version"];
    let mut left_out = 0usize;
    // In key order, so the output is the same from run to run.
    let resource: BTreeMap<&str, String> = settings
        .resource
        .iter()
        .map(|(key, value)| (key.as_str(), value.as_str().into_owned()))
        .collect();
    for (key, value) in resource {
        if identity_keys.contains(&key) {
            continue;
        }
        if lines.len() >= MAX_ITEMS + 3 {
            left_out += 1;
            continue;
        }
        let origin = if input.resource_attributes.contains_key(key) {
            origins.resource(key, &env_keys)
        } else if key.starts_with("deployment.environment") {
            origins.of("deployment_environment", true)
        } else {
            "default".to_owned()
        };
        // The resource holds the values as the pipeline sends them (already redacted).
        lines.push(line(
            &format!("resource.{}", shown(key)),
            shown(&value),
            origin,
        ));
    }
    if left_out > 0 {
        lines.push(line(
            "resource.(more)",
            format!("{left_out} more attributes not printed"),
            "default".to_owned(),
        ));
    }
    lines
}

/// The profile and the settings it carries.
fn profile_settings(origins: &Origins<'_>, settings: &Settings) -> Vec<Line> {
    let input = origins.input;
    let profile = &settings.profile;
    let sampling = &profile.sampling;
    let by_profile = || origins.profile_origin();
    let mut lines = vec![
        line(
            "profile",
            shown(&profile.name),
            origins.of("profile", input.profile.is_some()),
        ),
        line(
            "sealed",
            profile.sealed.to_string(),
            origins.of_profile("sealed", input.sealed.is_some()),
        ),
        line(
            "retention_days",
            profile.retention_days.to_string(),
            by_profile(),
        ),
        line(
            "log_level",
            profile.log_level.as_str().to_owned(),
            origins.of_profile("log_level", input.log_level.is_some()),
        ),
        line(
            "log_filter",
            settings
                .log_filter
                .as_deref()
                .map_or_else(|| "(none)".to_owned(), shown),
            origins.of("log_filter", settings.log_filter.is_some()),
        ),
    ];
    match &input.sampler {
        Some(name) => lines.push(line("sampler", shown(name), origins.of("sampler", true))),
        None => lines.push(line(
            "sampler",
            "parentbased_always_on".to_owned(),
            by_profile(),
        )),
    }
    if let Some(arg) = &input.sampler_arg {
        lines.push(line(
            "sampler_arg",
            shown(arg),
            origins.of("sampler_arg", true),
        ));
    }
    lines.extend([
        line("sampling.mode", spelled(&sampling.mode), by_profile()),
        line(
            "sampling.site",
            sampling.site.as_str().to_owned(),
            origins.of_profile("sampling.site", input.sampling.site.is_some()),
        ),
        line(
            "sampling.base_ratio",
            sampling.base_ratio.to_string(),
            by_profile(),
        ),
        line(
            "sampling.error_ratio",
            sampling.error_ratio.to_string(),
            by_profile(),
        ),
        line(
            "sampling.slow_threshold_ms",
            sampling.slow_threshold_ms.to_string(),
            by_profile(),
        ),
        line(
            "sampling.slow_ratio",
            sampling.slow_ratio.to_string(),
            by_profile(),
        ),
        line(
            "metric_export_interval_ms",
            profile.export_interval_ms.to_string(),
            origins.of_profile(
                "metric_export_interval_ms",
                input.metric_export_interval_ms.is_some(),
            ),
        ),
        line(
            "prometheus_scrape",
            profile.prometheus_scrape.to_string(),
            by_profile(),
        ),
    ]);
    lines.extend(redaction_and_exporters(origins, settings));
    lines
}

/// The profile's redaction settings and exporters (each replaced when configured).
fn redaction_and_exporters(origins: &Origins<'_>, settings: &Settings) -> Vec<Line> {
    let input = origins.input;
    let profile = &settings.profile;
    let mut lines = Vec::new();
    let redaction = origins.of_profile("redaction", input.redaction.is_some());
    lines.push(line(
        "redaction.keys",
        list(profile.redaction.keys.iter().map(|k| shown(k))),
        redaction.clone(),
    ));
    lines.push(line(
        "redaction.allow_list",
        profile.redaction.allow_list.as_ref().map_or_else(
            || "off".to_owned(),
            |keys| list(keys.iter().map(|k| shown(k))),
        ),
        redaction,
    ));
    for (field, kinds, set) in [
        (
            "exporters.traces",
            &profile.exporters.traces,
            input.exporters.traces.is_some(),
        ),
        (
            "exporters.metrics",
            &profile.exporters.metrics,
            input.exporters.metrics.is_some(),
        ),
        (
            "exporters.logs",
            &profile.exporters.logs,
            input.exporters.logs.is_some(),
        ),
    ] {
        lines.push(line(
            field,
            exporters(kinds),
            origins.of_profile(field, set),
        ));
    }
    lines
}

/// Whether the pipeline runs, where it writes, what it propagates and how loud it is.
fn pipeline(origins: &Origins<'_>, settings: &Settings) -> Vec<Line> {
    let input = origins.input;
    let propagators = match &input.propagators {
        Some(kinds) => list(kinds.iter().map(spelled)),
        None => "tracecontext, baggage".to_owned(),
    };
    vec![
        line(
            "disabled",
            settings.disabled.to_string(),
            origins.of("disabled", input.disabled.is_some()),
        ),
        line(
            "dir",
            shown(&settings.dir.display().to_string()),
            origins.of("dir", input.dir.is_some()),
        ),
        line(
            "incident_file",
            path_or_none(input.incident_file.as_deref()),
            origins.of("incident_file", input.incident_file.is_some()),
        ),
        line(
            "propagators",
            propagators,
            origins.of("propagators", input.propagators.is_some()),
        ),
        line(
            "sdk_log_level",
            settings.sdk_level.as_str().to_owned(),
            origins.of("sdk_log_level", input.sdk_log_level.is_some()),
        ),
    ]
}

/// The export queues, the batch processors and the value limits.
fn queues_and_limits(origins: &Origins<'_>, settings: &Settings) -> Vec<Line> {
    let input = origins.input;
    let mut lines = vec![line(
        "exporters.max_queue_bytes",
        settings.batch.max_queue_bytes.to_string(),
        origins.of(
            "exporters.max_queue_bytes",
            input.exporters.max_queue_bytes.is_some(),
        ),
    )];
    for (prefix, batch, set) in [
        ("batch.spans.", &settings.span_batch, &input.batch.spans),
        ("batch.logs.", &settings.log_batch, &input.batch.logs),
    ] {
        for (field, value, is_set) in [
            (
                "schedule_delay_ms",
                batch.delay.as_millis().to_string(),
                set.schedule_delay_ms.is_some(),
            ),
            (
                "export_timeout_ms",
                batch.export_timeout.as_millis().to_string(),
                set.export_timeout_ms.is_some(),
            ),
            (
                "max_queue_size",
                batch.max_queue.to_string(),
                set.max_queue_size.is_some(),
            ),
            (
                "max_export_batch_size",
                batch.max_batch.to_string(),
                set.max_export_batch_size.is_some(),
            ),
        ] {
            let name = format!("{prefix}{field}");
            let origin = origins.of(&name, is_set);
            lines.push(line(&name, value, origin));
        }
    }
    let limits = settings.bounds.limits();
    let set = &input.limits;
    for (field, value, is_set, vars) in [
        (
            "attribute_value_bytes",
            limits.attribute_value_bytes,
            set.attribute_value_bytes.is_some(),
            &[
                "OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT",
                "OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT",
            ][..],
        ),
        (
            "log_value_bytes",
            limits.log_value_bytes,
            set.log_value_bytes.is_some(),
            &[][..],
        ),
        (
            "label_value_bytes",
            limits.label_value_bytes,
            set.label_value_bytes.is_some(),
            &[][..],
        ),
        (
            "span_attribute_count",
            limits.span_attribute_count,
            set.span_attribute_count.is_some(),
            &[
                "OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT",
                "OTEL_ATTRIBUTE_COUNT_LIMIT",
            ][..],
        ),
        (
            "span_event_count",
            limits.span_event_count,
            set.span_event_count.is_some(),
            &["OTEL_SPAN_EVENT_COUNT_LIMIT"][..],
        ),
        (
            "span_link_count",
            limits.span_link_count,
            set.span_link_count.is_some(),
            &["OTEL_SPAN_LINK_COUNT_LIMIT"][..],
        ),
        (
            "event_attribute_count",
            limits.event_attribute_count,
            set.event_attribute_count.is_some(),
            &["OTEL_EVENT_ATTRIBUTE_COUNT_LIMIT"][..],
        ),
        (
            "link_attribute_count",
            limits.link_attribute_count,
            set.link_attribute_count.is_some(),
            &["OTEL_LINK_ATTRIBUTE_COUNT_LIMIT"][..],
        ),
    ] {
        let origin = if is_set {
            origins.limit(field, vars)
        } else {
            "default".to_owned()
        };
        lines.push(line(&format!("limits.{field}"), value.to_string(), origin));
    }
    lines
}

/// The JSON log outputs, the file exporters and the egress policy.
fn outputs(origins: &Origins<'_>, settings: &Settings) -> Vec<Line> {
    let input = origins.input;
    let logs = &settings.log_outputs;
    let files = &settings.files;
    let mut lines = vec![
        line(
            "log_outputs.stdout",
            logs.stdout.unwrap_or(true).to_string(),
            origins.of("log_outputs.stdout", logs.stdout.is_some()),
        ),
        line(
            "log_outputs.file",
            path_or_none(logs.file.as_deref()),
            origins.of("log_outputs.file", logs.file.is_some()),
        ),
        line(
            "log_outputs.span_events",
            logs.span_events.unwrap_or(true).to_string(),
            origins.of("log_outputs.span_events", logs.span_events.is_some()),
        ),
    ];
    if logs.file.is_some() {
        lines.push(line(
            "log_outputs.file_max_bytes",
            logs.file_max_bytes
                .unwrap_or(crate::logs::RotatingFile::DEFAULT_MAX_BYTES)
                .to_string(),
            origins.of("log_outputs.file_max_bytes", logs.file_max_bytes.is_some()),
        ));
        lines.push(line(
            "log_outputs.file_max_files",
            logs.file_max_files
                .unwrap_or(crate::logs::RotatingFile::DEFAULT_MAX_FILES)
                .to_string(),
            origins.of("log_outputs.file_max_files", logs.file_max_files.is_some()),
        ));
    }
    lines.extend([
        line(
            "log_outputs.max_queue_bytes",
            settings.log_line_queue_bytes.to_string(),
            origins.of(
                "log_outputs.max_queue_bytes",
                logs.max_queue_bytes.is_some(),
            ),
        ),
        line(
            "files.format",
            spelled(&files.format),
            origins.of("files.format", input.files.format.is_some()),
        ),
        line(
            "files.max_segment_bytes",
            files.max_segment_bytes.to_string(),
            origins.of(
                "files.max_segment_bytes",
                input.files.max_segment_bytes.is_some(),
            ),
        ),
        line(
            "files.max_segment_age_secs",
            files.max_segment_age.as_secs().to_string(),
            origins.of(
                "files.max_segment_age_secs",
                input.files.max_segment_age_secs.is_some(),
            ),
        ),
        line(
            "files.max_segments",
            files.max_segments_per_signal.to_string(),
            origins.of("files.max_segments", input.files.max_segments.is_some()),
        ),
        line(
            "egress.allow",
            input.egress.allow.as_ref().map_or_else(
                || "(none)".to_owned(),
                |entries| list(entries.iter().map(|e| shown(e))),
            ),
            origins.of("egress.allow", input.egress.allow.is_some()),
        ),
        line(
            "egress.policy",
            settings.policy.name().to_owned(),
            policy_origin(origins, settings),
        ),
    ]);
    lines
}

/// Where the egress policy comes from: sealed mode, else the allow-list, else the default.
fn policy_origin(origins: &Origins<'_>, settings: &Settings) -> String {
    let input = origins.input;
    if settings.profile.sealed {
        origins.of_profile("sealed", input.sealed.is_some())
    } else {
        origins.of("egress.allow", input.egress.allow.is_some())
    }
}

/// The OTLP settings of every signal that exports over OTLP, and the egress policy's answer
/// for each endpoint.
fn otlp_and_egress(
    origins: &Origins<'_>,
    settings: &Settings,
    plan: &ExportPlan,
) -> (Vec<Line>, Vec<EgressLine>) {
    let mut lines = Vec::new();
    let mut egress = Vec::new();
    if settings.disabled {
        return (lines, egress);
    }
    let exporters = &settings.profile.exporters;
    for (signal, kinds, planned) in [
        (Signal::Traces, &exporters.traces, &plan.traces),
        (Signal::Metrics, &exporters.metrics, &plan.metrics),
        (Signal::Logs, &exporters.logs, &plan.logs),
    ] {
        if !kinds.contains(&ExporterKind::Otlp) {
            continue;
        }
        let allowed = planned.iter().find_map(|p| match p {
            Planned::Otlp(otlp) => Some(otlp),
            _ => None,
        });
        let refused = plan.refused.iter().find(|r| r.signal == signal);
        let (endpoint, endpoint_origin) = match (allowed, refused) {
            (Some(otlp), _) => match &otlp.endpoint {
                Some((url, from)) => (mask_url(url), Some(from.clone())),
                None => (default_endpoint(otlp.protocol, signal), None),
            },
            (None, Some(refusal)) => (refusal.endpoint.clone(), None),
            (None, None) => continue,
        };
        lines.extend(otlp_lines(origins, signal, &endpoint, endpoint_origin));
        let name = settings.policy.name().to_owned();
        egress.push(EgressLine {
            signal: signal.as_str(),
            endpoint: bounded(&endpoint, MAX_VALUE_CHARS),
            allowed: refused.is_none(),
            policy: name,
            origin: policy_origin(origins, settings),
            reason: refused.map(|r| shown(&r.reason)),
            replaced_by: refused.map(|_| {
                format!(
                    "the file exporter (under {}/{})",
                    shown(&settings.dir.display().to_string()),
                    signal.as_str()
                )
            }),
        });
    }
    (lines, egress)
}

/// The OTLP exporter's own default endpoint for `signal`.
fn default_endpoint(protocol: crate::config::OtlpProtocol, signal: Signal) -> String {
    match protocol {
        crate::config::OtlpProtocol::Grpc => "http://localhost:4317".to_owned(),
        crate::config::OtlpProtocol::HttpProtobuf => {
            format!("http://localhost:4318/v1/{}", signal.as_str())
        }
    }
}

/// Where the headers sent come from: both the shared and the per-signal table when both are
/// set (the per-signal entries over the shared ones), else the one that is.
fn headers_origin(
    origins: &Origins<'_>,
    prefix: &str,
    specific: &crate::config::OtlpSignalConfig,
    common: &crate::config::OtlpSignalConfig,
) -> String {
    match (&specific.headers, &common.headers) {
        (Some(_), Some(_)) => format!(
            "{}; {}",
            origins.of("otlp.headers", true),
            origins.of(&format!("{prefix}headers"), true)
        ),
        (Some(_), None) => origins.of(&format!("{prefix}headers"), true),
        (None, Some(_)) => origins.of("otlp.headers", true),
        (None, None) => "default".to_owned(),
    }
}

/// One signal's OTLP settings: each the per-signal value, else the shared one, else the
/// default, with the origin of the one used.
fn otlp_lines(
    origins: &Origins<'_>,
    signal: Signal,
    endpoint: &str,
    pinned_from: Option<String>,
) -> Vec<Line> {
    let input = origins.input;
    let (specific, common) = (signal_config(input, signal), &input.otlp.common);
    let prefix = format!("otlp.{}.", signal.as_str());
    // The origin of the per-signal value when set, else of the shared one, else `otherwise`.
    let pick = |field: &str, set: (bool, bool), otherwise: String| match set {
        (true, _) => origins.of(&format!("{prefix}{field}"), true),
        (false, true) => origins.of(&format!("otlp.{field}"), true),
        (false, false) => otherwise,
    };
    let set = |s: bool, c: bool| (s, c);
    // Not configured: read by the exporter from the process environment, or its default.
    let unconfigured_endpoint = pinned_from
        .filter(|from| from.starts_with("OTEL_EXPORTER_OTLP_"))
        .map_or_else(|| "default".to_owned(), |var| format!("env {var}"));
    let protocol = specific
        .protocol
        .or(common.protocol)
        .unwrap_or(crate::config::OtlpProtocol::Grpc);
    let headers_origin = headers_origin(origins, &prefix, specific, common);
    // The timeout as the exporter resolves it (its default included); the settings were
    // checked when the plan was made.
    let timeout = crate::export::OtlpSettings::resolve(input, signal).map_or_else(
        |_| "?".to_owned(),
        |otlp| otlp.timeout.as_millis().to_string(),
    );
    let path =
        |s: &Option<PathBuf>, c: &Option<PathBuf>| path_or_none(s.as_deref().or(c.as_deref()));
    let rows = [
        (
            "endpoint",
            bounded(endpoint, MAX_VALUE_CHARS),
            set(specific.endpoint.is_some(), common.endpoint.is_some()),
            unconfigured_endpoint,
        ),
        (
            "protocol",
            protocol.as_str().to_owned(),
            set(specific.protocol.is_some(), common.protocol.is_some()),
            "default".to_owned(),
        ),
        (
            "headers",
            header_names(&common.headers, &specific.headers),
            (false, false),
            headers_origin,
        ),
        (
            "timeout_ms",
            timeout,
            set(specific.timeout_ms.is_some(), common.timeout_ms.is_some()),
            "default".to_owned(),
        ),
        (
            "compression",
            specific
                .compression
                .or(common.compression)
                .map_or_else(|| "none".to_owned(), |c| spelled(&c)),
            set(specific.compression.is_some(), common.compression.is_some()),
            "default".to_owned(),
        ),
        (
            "certificate",
            path(&specific.certificate, &common.certificate),
            set(specific.certificate.is_some(), common.certificate.is_some()),
            "default".to_owned(),
        ),
        (
            "client_certificate",
            path(&specific.client_certificate, &common.client_certificate),
            set(
                specific.client_certificate.is_some(),
                common.client_certificate.is_some(),
            ),
            "default".to_owned(),
        ),
        (
            "client_key",
            path(&specific.client_key, &common.client_key),
            set(specific.client_key.is_some(), common.client_key.is_some()),
            "default".to_owned(),
        ),
        (
            "default_tenant",
            specific
                .default_tenant
                .as_ref()
                .or(common.default_tenant.as_ref())
                .map_or_else(|| "(none)".to_owned(), |t| shown(t)),
            set(
                specific.default_tenant.is_some(),
                common.default_tenant.is_some(),
            ),
            "default".to_owned(),
        ),
    ];
    rows.into_iter()
        .map(|(field, value, set, otherwise)| {
            line(
                &format!("{prefix}{field}"),
                value,
                pick(field, set, otherwise),
            )
        })
        .collect()
}

/// The names of the headers sent (the shared ones, then the per-signal ones over them), each
/// with its value masked: header values carry the collector's credentials.
fn header_names(
    common: &Option<BTreeMap<String, String>>,
    specific: &Option<BTreeMap<String, String>>,
) -> String {
    let names: BTreeSet<&str> = [common, specific]
        .into_iter()
        .flatten()
        .flat_map(|headers| headers.keys().map(String::as_str))
        .collect();
    list(
        names
            .into_iter()
            .map(|k| format!("{}={}", shown(k), crate::redaction::REDACTED)),
    )
}

fn signal_config(config: &TelemetryConfig, signal: Signal) -> &OtlpSignalConfig {
    match signal {
        Signal::Traces => &config.otlp.traces,
        Signal::Metrics => &config.otlp.metrics,
        Signal::Logs => &config.otlp.logs,
    }
}

/// One line per setting (`name = value  (origin)`), then one per OTLP endpoint's egress
/// decision, then the warnings.
fn write_text(report: &Report, out: &mut dyn Write) -> Result<(), Failure> {
    for l in &report.settings {
        writeln!(out, "{} = {}  ({})", l.name, l.value, l.origin).map_err(io)?;
    }
    for e in &report.egress {
        let decision = if e.allowed {
            format!("allowed {} by policy {}", e.endpoint, e.policy)
        } else {
            format!(
                "refused {} by policy {}: {}; replaced by {}",
                e.endpoint,
                e.policy,
                e.reason.as_deref().unwrap_or(""),
                e.replaced_by.as_deref().unwrap_or("nothing")
            )
        };
        writeln!(out, "egress.{} = {decision}  ({})", e.signal, e.origin).map_err(io)?;
    }
    for w in &report.warnings {
        writeln!(out, "warning: {w}").map_err(io)?;
    }
    Ok(())
}

/// The report as one JSON object: `valid`, `settings` (name to value and origin), `egress`
/// (one object per OTLP endpoint) and `warnings`.
fn write_json(report: &Report, out: &mut dyn Write) -> Result<(), Failure> {
    let settings: serde_json::Map<String, serde_json::Value> = report
        .settings
        .iter()
        .map(|l| {
            (
                l.name.clone(),
                serde_json::json!({ "value": l.value, "origin": l.origin }),
            )
        })
        .collect();
    let egress: Vec<serde_json::Value> = report
        .egress
        .iter()
        .map(|e| {
            serde_json::json!({
                "signal": e.signal,
                "endpoint": e.endpoint,
                "decision": if e.allowed { "allowed" } else { "refused" },
                "policy": e.policy,
                "origin": e.origin,
                "reason": e.reason,
                "replaced_by": e.replaced_by,
            })
        })
        .collect();
    let text = serde_json::json!({
        "valid": true,
        "settings": settings,
        "egress": egress,
        "warnings": report.warnings,
    });
    writeln!(out, "{text:#}").map_err(io)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    fn run(file: Option<PathBuf>, json: bool, vars: &[(&str, &str)]) -> (bool, String) {
        let args = CheckArgs {
            file,
            json,
            service: None,
        };
        let env = |name: &str| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        };
        let mut out = Vec::new();
        let ok = check(&args, &env, &mut out).is_ok();
        (ok, String::from_utf8(out).unwrap())
    }

    #[test]
    fn values_are_cut_and_control_characters_escaped() {
        let long = "a".repeat(10_000);
        let text = bounded(&long, MAX_VALUE_CHARS);
        assert_eq!(text.chars().count(), MAX_VALUE_CHARS + CUT.chars().count());
        assert_eq!(bounded("a\nfake = line", 100), "a\\nfake = line");
        assert_eq!(
            list((0..100).map(|i| i.to_string())).matches(", ").count(),
            63
        );
    }

    #[test]
    fn the_defaults_resolve_with_every_origin_default_or_profile() {
        // An endpoint of the test's own: an unset one is read from the process environment.
        let endpoint = [("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4317")];
        let (ok, out) = run(None, false, &endpoint);
        assert!(ok, "{out}");
        assert!(out.contains("config_file = (none)  (default)"), "{out}");
        assert!(out.contains("profile = default  (default)"), "{out}");
        assert!(out.contains("log_level = info  (profile default)"), "{out}");
        assert!(out.contains("dir = ./telemetry-data  (default)"), "{out}");
        assert!(
            out.contains("egress.traces = allowed http://127.0.0.1:4317 by policy open  (default)"),
            "{out}"
        );
    }

    #[test]
    fn a_hostile_variable_is_cut_and_cannot_forge_a_line() {
        let name = format!("svc\nprofile = forged{}", "x".repeat(100_000));
        let (ok, out) = run(None, false, &[("OTEL_SERVICE_NAME", &name)]);
        assert!(ok, "{out}");
        assert!(!out.contains("\nprofile = forged"), "{out}");
        let service = out.lines().find(|l| l.starts_with("service.name")).unwrap();
        assert!(service.len() < 2 * MAX_VALUE_CHARS, "{service}");
        assert!(service.ends_with("(env OTEL_SERVICE_NAME)"), "{service}");
        let (ok, err) = run(
            None,
            true,
            &[("OTEL_BSP_MAX_QUEUE_SIZE", &"9".repeat(100_000))],
        );
        assert!(!ok);
        let parsed: serde_json::Value = serde_json::from_str(&err).unwrap();
        let message = parsed["error"].as_str().unwrap();
        assert!(message.contains("OTEL_BSP_MAX_QUEUE_SIZE"), "{message}");
        assert!(
            message.chars().count() <= MAX_ERROR_CHARS + CUT.len(),
            "{message}"
        );
    }
}
