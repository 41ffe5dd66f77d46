//! The `stella-telemetry` command line (feature `cli`): profiles, the catalogue, the
//! generated artefacts, tenants' incidents, offline bundles, and configuration checks. The
//! binary is a thin `main` around [`run_with_progress`]; [`run`] is the same without progress
//! bars.
//!
//! # Example
//!
//! ```
//! use stellaops_telemetry_core::cli;
//!
//! let (mut out, mut err) = (Vec::new(), Vec::new());
//! let code = cli::run(["stella-telemetry", "profile", "diff", "default", "forensic"], &mut out, &mut err);
//! assert_eq!(code, 0);
//! assert!(String::from_utf8(out)?.contains("log_level: \"info\" -> \"debug\""));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ```text
//! stella-telemetry profile list
//! stella-telemetry profile show forensic
//! stella-telemetry profile diff default forensic
//! stella-telemetry generate rules --out DIR
//! stella-telemetry generate dashboards --out DIR
//! stella-telemetry generate collector [--profile NAME] --out DIR
//! stella-telemetry generate storage --tenants FILE --out DIR
//! stella-telemetry generate alertmanager --out DIR
//! stella-telemetry generate all --out DIR          # DIR/alerts, DIR/dashboards, DIR/collector, DIR/storage, DIR/alertmanager
//! stella-telemetry catalogue [--json]
//! stella-telemetry incident start  --tenant T [--reason R] [--ttl 30m] (--endpoint URL --token-file F | --file PATH [--actor A])
//! stella-telemetry incident stop   --tenant T [--reason R] (--endpoint URL --token-file F | --file PATH)
//! stella-telemetry incident status [--json] (--endpoint URL --token-file F | --file PATH)
//! stella-telemetry keygen --out KEY [--force]      # KEY (PKCS#8, 0600) and KEY.pub (SPKI)
//! stella-telemetry bundle export --dir DATA --from T [--to T] [--tenant T] [--profile NAME] --key KEY --out FILE [--zstd] [--force]
//! stella-telemetry bundle verify --pub PUB FILE
//! stella-telemetry bundle inspect [--json] FILE
//! stella-telemetry bundle replay --endpoint URL [--protocol http|grpc] --pub PUB FILE
//! stella-telemetry config check [FILE] [--json] [--service NAME]
//! stella-telemetry smoke --endpoint URL [--protocol grpc|http/protobuf] [--tenant T] [--ca FILE] [--cert FILE --key FILE] [--timeout SECS]
//! ```
//!
//! The incident commands either go through a service's control plane (`--endpoint`, its base
//! URL, with the bearer token read from `--token-file`, which is never printed) or edit the
//! watched incident file every instance follows (`--file`; the actor is `--actor` or `$USER`).
//!
//! `bundle export` selects one window (`--from` an RFC 3339 time or a duration back from
//! `--to`, which defaults to now; no longer than the profile's retention) and tenant from the
//! file exporters' directory into a signed bundle; `bundle verify` checks one offline with
//! the public key; `bundle inspect` shows what one holds without a key; `bundle replay`
//! verifies one, then sends its records to an OTLP endpoint through the egress policy (the
//! sealed one when `STELLAOPS_TELEMETRY_SEALED=true`, else any endpoint).
//!
//! `config check` reads a configuration file (FILE, else the one `STELLAOPS_TELEMETRY_CONFIG`
//! names) and the process environment as `TelemetryConfig::from_env` does, resolves them as
//! `build()` does and prints every setting as `name = value  (origin)`, then the egress
//! policy's answer for each OTLP endpoint; it builds no exporter, dials nothing and creates no
//! file. Header values and credentials are masked, every value is cut at 256 characters.
//!
//! Results go to standard output; errors go to standard error with exit status 1 (2 for a
//! malformed command line, as clap reports it; 3 when the endpoint cannot be reached). A
//! refusal from the control plane prints its error text and HTTP status, with a hint for 401
//! and 403.

use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::Profile;
use crate::artefacts::{self, ArtefactKind};
use crate::metrics::catalogue;

/// The exit status of a successful command.
pub const SUCCESS: u8 = 0;
/// The exit status of a command that failed (unknown profile, unwritable directory, …).
pub const FAILURE: u8 = 1;
/// The exit status of a malformed command line.
pub const USAGE: u8 = 2;
/// The exit status of an incident command whose `--endpoint` cannot be reached (no
/// connection, or no answer in time).
pub const UNREACHABLE: u8 = 3;

mod bundle;
mod config;
mod incident;
mod kit;
mod smoke;

#[derive(Debug, Parser)]
#[command(
    name = "stella-telemetry",
    version,
    about = "StellaOps telemetry: profiles, the metric catalogue, generated alert rules, dashboards and collector configurations, tenants' incidents, offline bundles, and configuration checks"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Lists, shows and compares the built-in profiles.
    Profile {
        #[command(subcommand)]
        command: ProfileCommand,
    },
    /// Generates alert rules, dashboards, collector configurations (from the catalogue and
    /// the profiles) or storage configurations (from a tenants file).
    Generate {
        #[command(subcommand)]
        what: GenerateCommand,
    },
    /// Prints the catalogue: name, kind, unit, labels and help of every metric, then every
    /// span with its required attributes.
    Catalogue {
        /// Print JSON (an array of metric descriptors) instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Starts, stops and lists tenants' incidents (forensic capture), through a service's
    /// control plane or the watched incident file.
    Incident {
        #[command(subcommand)]
        command: incident::IncidentCommand,
    },
    /// Generates an Ed25519 key pair for signing bundles; prints its key id.
    Keygen(bundle::KeygenArgs),
    /// Exports, verifies, inspects and replays offline bundles: signed archives of one window
    /// of telemetry from the local store.
    Bundle {
        #[command(subcommand)]
        command: bundle::BundleCommand,
    },
    /// Writes the offline kit for a profile (collector configuration, dashboards, rules and
    /// their tests, an import guide, a sha256 manifest, signed with `--key`), or verifies one.
    Kit(kit::KitArgs),
    /// Checks a configuration: a file and the environment resolved as `build()` resolves
    /// them, every setting printed with its origin, without building or dialling anything.
    Config {
        #[command(subcommand)]
        command: config::ConfigCommand,
    },
    /// Sends one span, one metric data point and one log record, each with the same
    /// stellaops.smoke.id, to a collector through the egress policy (sealed with
    /// STELLAOPS_TELEMETRY_SEALED=true); reports per signal whether it was accepted and how
    /// long it took. Exit 1 when any signal fails, 3 when the endpoint cannot be reached.
    Smoke(smoke::SmokeArgs),
}

#[derive(Debug, Subcommand)]
enum ProfileCommand {
    /// Lists the built-in profiles with a one-line summary each.
    List,
    /// Prints a profile's settings as JSON.
    Show {
        /// The profile: default, forensic or airgap.
        name: String,
    },
    /// Prints the settings that differ between two profiles.
    Diff {
        /// The first profile.
        a: String,
        /// The second profile.
        b: String,
    },
}

#[derive(Debug, Subcommand)]
enum GenerateCommand {
    /// Prometheus alert rules and their `promtool test rules` unit tests.
    Rules {
        /// The directory to write to (created if missing).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
    /// Grafana dashboards, one JSON file each.
    Dashboards {
        /// The directory to write to (created if missing).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
    /// OpenTelemetry Collector configurations: one profile's, or every built-in profile's.
    Collector {
        /// The profile (default, forensic, airgap); every built-in profile when left out.
        #[arg(long, value_name = "NAME")]
        profile: Option<String>,
        /// The tenants file (as for `generate storage`): where a collector tail-samples, each
        /// tenant's sampled traces go to Tempo under its own tenant; without it, every sampled
        /// trace goes under the fallback tenant ($STELLAOPS_FALLBACK_TENANT).
        #[arg(long, value_name = "FILE")]
        tenants: Option<PathBuf>,
        /// The directory to write to (created if missing).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
    /// Loki and Tempo per-tenant overrides and the Prometheus scrape job, from a tenants file
    /// (TOML, one `[[tenant]]` table per tenant).
    Storage {
        /// The tenants file.
        #[arg(long, value_name = "FILE")]
        tenants: PathBuf,
        /// The directory to write to (created if missing).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
    /// The Alertmanager configuration routing the alerts (critical to a pager, warning to chat).
    Alertmanager {
        /// The directory to write to (created if missing).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
    /// Every artefact, into DIR/alerts, DIR/dashboards, DIR/collector, DIR/storage (the
    /// storage files of the example tenants) and DIR/alertmanager.
    All {
        /// The directory to write to (created if missing).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
}

/// Runs the command line `args` (the program name first), writing results to `stdout` and
/// errors to `stderr`; returns the exit status ([`SUCCESS`], [`FAILURE`], [`USAGE`] or
/// [`UNREACHABLE`]). Draws no progress bar.
pub fn run<I, T>(args: I, stdout: &mut dyn Write, stderr: &mut dyn Write) -> u8
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    run_inner(args, stdout, stderr, bundle::Progress { shown: false })
}

/// As [`run`], and `bundle export` and `bundle replay` draw a progress bar on the process's
/// standard error when it is a terminal (not on `stderr`, which gets the errors only).
///
/// ```
/// let (mut out, mut err) = (Vec::new(), Vec::new());
/// let code = stellaops_telemetry_core::cli::run_with_progress(["stella-telemetry", "--version"], &mut out, &mut err);
/// assert_eq!(code, stellaops_telemetry_core::cli::SUCCESS);
/// ```
pub fn run_with_progress<I, T>(args: I, stdout: &mut dyn Write, stderr: &mut dyn Write) -> u8
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    run_inner(args, stdout, stderr, bundle::Progress { shown: true })
}

fn run_inner<I, T>(
    args: I,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
    progress: bundle::Progress,
) -> u8
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(err) => {
            let text = err.render().to_string();
            return if err.use_stderr() {
                let _ = write!(stderr, "{text}");
                USAGE
            } else {
                // --help and --version
                let _ = write!(stdout, "{text}");
                SUCCESS
            };
        }
    };
    match execute(cli.command, stdout, progress) {
        Ok(()) => SUCCESS,
        Err(failure) => {
            let _ = writeln!(stderr, "error: {}", failure.message);
            failure.code
        }
    }
}

type Outcome = Result<(), String>;

/// A failed command: what to print and the exit status.
#[derive(Debug)]
struct Failure {
    code: u8,
    message: String,
}

impl From<String> for Failure {
    fn from(message: String) -> Failure {
        Failure {
            code: FAILURE,
            message,
        }
    }
}

fn io(err: std::io::Error) -> String {
    format!("cannot write the output: {err}")
}

/// The error's message followed by its causes.
fn chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    text
}

fn execute(
    command: Command,
    out: &mut dyn Write,
    progress: bundle::Progress,
) -> Result<(), Failure> {
    match command {
        Command::Profile { command } => Ok(profile(command, out)?),
        Command::Generate { what } => Ok(generate(what, out)?),
        Command::Catalogue { json } => Ok(catalogue_table(json, out)?),
        Command::Incident { command } => incident::run(command, out),
        Command::Keygen(args) => bundle::keygen(args, out),
        Command::Bundle { command } => bundle::run(command, out, progress),
        Command::Kit(args) => kit::run(args, out),
        Command::Config { command } => config::run(command, out),
        Command::Smoke(args) => smoke::run(args, out),
    }
}

fn by_name(name: &str) -> Result<Profile, String> {
    Profile::by_name(name).map_err(|e| chain(&e))
}

fn profile(command: ProfileCommand, out: &mut dyn Write) -> Outcome {
    match command {
        ProfileCommand::List => {
            for p in Profile::builtin() {
                let sampling = match p.sampling.mode {
                    crate::SamplingMode::AlwaysOn => "every trace".to_owned(),
                    crate::SamplingMode::Tail => format!(
                        "tail ({} % of ordinary traces)",
                        p.sampling.base_ratio * 100.0
                    ),
                };
                let exporters: Vec<&str> = p.exporters.traces.iter().map(|e| e.as_str()).collect();
                writeln!(
                    out,
                    "{:<10} sampling {sampling}, log level {}, retention {} d, export every {} s, exporters {}{}",
                    p.name,
                    p.log_level,
                    p.retention_days,
                    p.export_interval_ms / 1000,
                    exporters.join("+"),
                    if p.sealed { ", sealed" } else { "" }
                )
                .map_err(io)?;
            }
            Ok(())
        }
        ProfileCommand::Show { name } => {
            let p = by_name(&name)?;
            let text = serde_json::to_string_pretty(&p).map_err(|e| e.to_string())?;
            writeln!(out, "{text}").map_err(io)
        }
        ProfileCommand::Diff { a, b } => {
            let (left, right) = (by_name(&a)?, by_name(&b)?);
            let diff = Profile::diff(&left, &right);
            if diff.is_empty() {
                writeln!(
                    out,
                    "profiles `{}` and `{}` are the same",
                    left.name, right.name
                )
                .map_err(io)?;
            }
            for d in diff {
                writeln!(out, "{d}").map_err(io)?;
            }
            Ok(())
        }
    }
}

fn generate(what: GenerateCommand, out: &mut dyn Write) -> Outcome {
    let written = match what {
        GenerateCommand::Rules { out: dir } => {
            artefacts::generate(ArtefactKind::Alerts).and_then(|a| artefacts::write(&dir, &a))
        }
        GenerateCommand::Dashboards { out: dir } => {
            artefacts::generate(ArtefactKind::Dashboards).and_then(|a| artefacts::write(&dir, &a))
        }
        GenerateCommand::Collector {
            profile,
            tenants,
            out: dir,
        } => {
            let profiles = match profile {
                Some(name) => vec![by_name(&name)?],
                None => Profile::builtin(),
            };
            let parsed = match &tenants {
                Some(path) => artefacts::read_tenants(path).map_err(|e| chain(&e))?,
                None => Vec::new(),
            };
            let source = tenants.as_deref().map(file_name);
            let routes = match &source {
                Some(source) => artefacts::TenantRoutes {
                    tenants: &parsed,
                    source,
                },
                None => artefacts::TenantRoutes::NONE,
            };
            artefacts::collectors(&profiles, routes).and_then(|a| artefacts::write(&dir, &a))
        }
        GenerateCommand::Storage { tenants, out: dir } => {
            let parsed = artefacts::read_tenants(&tenants).map_err(|e| chain(&e))?;
            artefacts::write(&dir, &artefacts::storage(&parsed, &file_name(&tenants)))
        }
        GenerateCommand::Alertmanager { out: dir } => {
            artefacts::generate(ArtefactKind::Alertmanager).and_then(|a| artefacts::write(&dir, &a))
        }
        GenerateCommand::All { out: dir } => artefacts::write_all(&dir),
    }
    .map_err(|e| chain(&e))?;
    for path in written {
        writeln!(out, "{}", path.display()).map_err(io)?;
    }
    Ok(())
}

/// A path's file name, as generated files name their source (the whole path when it has none).
fn file_name(path: &std::path::Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

fn catalogue_table(json: bool, out: &mut dyn Write) -> Outcome {
    let metrics: Vec<_> = catalogue::all().collect();
    let spans = &crate::spans::catalogue::ALL;
    if json {
        let text = serde_json::to_string_pretty(&serde_json::json!({
            "metrics": metrics,
            "spans": spans,
        }))
        .map_err(|e| e.to_string())?;
        return writeln!(out, "{text}").map_err(io);
    }
    let rows: Vec<[String; 5]> = metrics
        .iter()
        .map(|d| {
            [
                d.name.to_owned(),
                d.kind.as_str().to_owned(),
                d.unit.to_owned(),
                d.labels.join(","),
                d.help.to_owned(),
            ]
        })
        .collect();
    let header = ["NAME", "KIND", "UNIT", "LABELS", "HELP"].map(str::to_owned);
    let mut widths = [0usize; 4];
    for row in std::iter::once(&header).chain(&rows) {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    for row in std::iter::once(&header).chain(&rows) {
        let [name, kind, unit, labels, help] = row;
        writeln!(
            out,
            "{name:<w0$}  {kind:<w1$}  {unit:<w2$}  {labels:<w3$}  {help}",
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2],
            w3 = widths[3],
        )
        .map_err(io)?;
    }
    writeln!(out).map_err(io)?;
    let width = spans
        .iter()
        .map(|d| d.name.len())
        .chain(["SPAN".len()])
        .max()
        .unwrap_or(0);
    writeln!(
        out,
        "{:<width$}  REQUIRED ATTRIBUTES (and tenant.id when known)",
        "SPAN"
    )
    .map_err(io)?;
    for d in spans {
        writeln!(out, "{:<width$}  {}", d.name, d.attributes.join(",")).map_err(io)?;
    }
    Ok(())
}
