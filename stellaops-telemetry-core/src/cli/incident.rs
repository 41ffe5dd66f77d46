//! `stella-telemetry incident start|stop|status`: through a service's control plane
//! (`--endpoint` with a bearer token) or by editing the watched incident file (`--file`).

use std::io::{Read as _, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use clap::{Args, Subcommand};
use serde::Deserialize;
use serde_json::json;

use super::{FAILURE, Failure, UNREACHABLE, USAGE};
use crate::egress::{Host, mask_url, parse_endpoint};
use crate::incidents::{IncidentSettings, blocking_client, error_chain, outside_runtime};
use crate::{Incident, IncidentError, IncidentFile, IncidentStart, Incidents};

/// How long one request to the control plane may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// The largest answer read from the control plane.
const MAX_ANSWER_BYTES: u64 = 16 * 1024 * 1024;

/// The largest token file read.
const MAX_TOKEN_BYTES: u64 = 64 * 1024;

/// The most characters of a server's error text shown.
const MAX_SHOWN_CHARS: usize = 512;

/// The reason recorded when a start names none.
const DEFAULT_REASON: &str = "started with stella-telemetry";

/// Where the incidents are changed and read: one of `--endpoint` or `--file`.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("place").args(["endpoint", "file"]).required(true)))]
pub(super) struct Target {
    /// The service's base URL (e.g. http://127.0.0.1:8080): go through its control plane
    /// (/telemetry/incidents/…), which changes every instance.
    #[arg(long, value_name = "URL", requires = "token_file")]
    endpoint: Option<String>,
    /// The file holding the bearer token for --endpoint (read and trimmed; never printed).
    #[arg(long, value_name = "FILE", requires = "endpoint")]
    token_file: Option<PathBuf>,
    /// The watched incident file every instance follows: edit or read it directly.
    #[arg(long, value_name = "PATH")]
    file: Option<PathBuf>,
}

/// The incident commands.
#[derive(Debug, Subcommand)]
pub(super) enum IncidentCommand {
    /// Puts a tenant under forensic capture, or extends its active incident.
    Start {
        #[command(flatten)]
        target: Target,
        /// The tenant.
        #[arg(long, value_name = "TENANT")]
        tenant: String,
        /// Why (recorded with the incident and in the audit line).
        #[arg(long, value_name = "TEXT")]
        reason: Option<String>,
        /// How long it lasts: 30m, 2h, 1h 30m (1ms to 24h; default 60m).
        #[arg(long, value_name = "DURATION", value_parser = ttl)]
        ttl: Option<Duration>,
        /// Who starts it, recorded in the file (default $USER); with --endpoint the token's
        /// subject is recorded instead.
        #[arg(long, value_name = "NAME", conflicts_with = "endpoint")]
        actor: Option<String>,
    },
    /// Ends a tenant's incident.
    Stop {
        #[command(flatten)]
        target: Target,
        /// The tenant.
        #[arg(long, value_name = "TENANT")]
        tenant: String,
        /// Why (sent to the control plane; the file keeps no reason for a stop).
        #[arg(long, value_name = "TEXT")]
        reason: Option<String>,
    },
    /// Lists the active incidents.
    Status {
        #[command(flatten)]
        target: Target,
        /// Print JSON ({"incidents": [...]}) instead of a table.
        #[arg(long)]
        json: bool,
    },
}

fn ttl(text: &str) -> Result<Duration, String> {
    crate::parse_incident_ttl(text).map_err(|e| e.to_string())
}

/// Runs one incident command.
pub(super) fn run(command: IncidentCommand, out: &mut dyn Write) -> Result<(), Failure> {
    match command {
        IncidentCommand::Start {
            target,
            tenant,
            reason,
            ttl,
            actor,
        } => {
            let reason = reason.unwrap_or_else(|| DEFAULT_REASON.to_owned());
            let (incident, verb) = match open(target)? {
                Place::File(path) => {
                    let mut start = IncidentStart::new(tenant, reason, actor.unwrap_or_else(user));
                    start.ttl = ttl;
                    file_start(&path, start)?
                }
                Place::Api(api) => (api.start(&tenant, &reason, ttl)?, "is on"),
            };
            writeln!(
                out,
                "incident {} for tenant `{}` {verb}: forensic capture until {} (started {} by {}, trigger {})",
                incident.id,
                incident.tenant,
                humantime::format_rfc3339_seconds(incident.expires),
                humantime::format_rfc3339_seconds(incident.started),
                clean(&incident.actor),
                incident.trigger.as_str(),
            )
            .map_err(write_error)
        }
        IncidentCommand::Stop {
            target,
            tenant,
            reason,
        } => {
            let incident = match open(target)? {
                Place::File(path) => file_stop(&path, &tenant)?,
                Place::Api(api) => api.stop(&tenant, reason.as_deref())?,
            };
            writeln!(
                out,
                "incident {} for tenant `{}` stopped",
                incident.id, incident.tenant
            )
            .map_err(write_error)
        }
        IncidentCommand::Status { target, json } => {
            let incidents = match open(target)? {
                Place::File(path) => file_status(&path)?,
                Place::Api(api) => api.status()?,
            };
            print_status(&incidents, json, out)
        }
    }
}

fn write_error(err: std::io::Error) -> Failure {
    Failure::from(super::io(err))
}

/// The user running the command: `$USER`, `$USERNAME`, else `stella-telemetry`.
fn user() -> String {
    ["USER", "USERNAME"]
        .iter()
        .filter_map(|name| std::env::var(name).ok())
        .find(|value| !value.trim().is_empty())
        .unwrap_or_else(|| "stella-telemetry".to_owned())
}

/// `value` as printed: control characters (a terminal's escapes) shown as `?`.
fn clean(value: &str) -> String {
    value
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// Where the command goes.
enum Place {
    File(PathBuf),
    Api(Api),
}

fn open(target: Target) -> Result<Place, Failure> {
    match (target.endpoint, target.token_file, target.file) {
        (Some(endpoint), Some(token_file), None) => {
            Ok(Place::Api(Api::new(&endpoint, &token_file)?))
        }
        (None, None, Some(file)) => Ok(Place::File(file)),
        (None, Some(_), Some(_)) => Err(Failure {
            code: USAGE,
            message: "--token-file goes with --endpoint; --file needs no token".to_owned(),
        }),
        // clap enforces the other combinations; this is what it would say.
        _ => Err(Failure {
            code: USAGE,
            message: "give either --endpoint URL --token-file FILE, or --file PATH".to_owned(),
        }),
    }
}

fn incident_error(err: IncidentError) -> Failure {
    Failure::from(err.to_string())
}

/// Starts (or extends) the tenant's incident in the file; returns it and what happened.
fn file_start(path: &Path, start: IncidentStart) -> Result<(Incident, &'static str), Failure> {
    // The registry's own checks and id format, so the file holds what an instance would write.
    let checker = Incidents::new(IncidentSettings::default());
    let fresh = checker.start(start);
    checker.shutdown();
    let fresh = fresh.map_err(incident_error)?;
    let mut written = None;
    IncidentFile::update(path, |list| {
        // The file's list has no expired entries here: `update` drops them first.
        let (incident, verb) = match list.iter().find(|i| i.tenant == fresh.tenant) {
            Some(current) => {
                let mut extended = current.clone();
                extended.expires = extended.expires.max(fresh.expires);
                extended.reason.clone_from(&fresh.reason);
                (extended, "extended")
            }
            None => (fresh.clone(), "started"),
        };
        list.retain(|i| i.tenant != incident.tenant);
        list.push(incident.clone());
        written = Some((incident, verb));
    })
    .map_err(incident_error)?;
    written.ok_or_else(|| Failure::from("the incident file was not updated".to_owned()))
}

/// Removes the tenant's incident from the file and returns it.
fn file_stop(path: &Path, tenant: &str) -> Result<Incident, Failure> {
    // An empty registry answers `NotActive` for every well-formed tenant: its own check.
    if let Err(e @ IncidentError::InvalidTenant { .. }) =
        Incidents::new(IncidentSettings::default()).stop("", tenant)
    {
        return Err(incident_error(e));
    }
    let now = SystemTime::now();
    let listed = IncidentFile::read(path).map_err(incident_error)?;
    let Some(incident) = listed
        .into_iter()
        .find(|i| i.tenant == tenant && !i.is_expired_at(now))
    else {
        return Err(Failure::from(format!(
            "no incident is active for tenant `{}` in {}",
            clean(tenant),
            path.display()
        )));
    };
    IncidentFile::update(path, |list| list.retain(|i| i.tenant != tenant))
        .map_err(incident_error)?;
    Ok(incident)
}

/// The file's active incidents, by tenant.
fn file_status(path: &Path) -> Result<Vec<Incident>, Failure> {
    let now = SystemTime::now();
    let mut listed = IncidentFile::read(path).map_err(incident_error)?;
    listed.retain(|i| !i.is_expired_at(now));
    listed.sort_by(|a, b| a.tenant.cmp(&b.tenant));
    Ok(listed)
}

fn print_status(incidents: &[Incident], json: bool, out: &mut dyn Write) -> Result<(), Failure> {
    if json {
        let text = serde_json::to_string_pretty(&json!({ "incidents": incidents }))
            .map_err(|e| Failure::from(e.to_string()))?;
        return writeln!(out, "{text}").map_err(write_error);
    }
    if incidents.is_empty() {
        return writeln!(out, "no active incidents").map_err(write_error);
    }
    let header = [
        "TENANT", "ID", "TRIGGER", "ACTOR", "STARTED", "EXPIRES", "REASON",
    ]
    .map(str::to_owned);
    let rows: Vec<[String; 7]> = incidents
        .iter()
        .map(|i| {
            [
                clean(&i.tenant),
                clean(&i.id),
                i.trigger.as_str().to_owned(),
                clean(&i.actor),
                humantime::format_rfc3339_seconds(i.started).to_string(),
                humantime::format_rfc3339_seconds(i.expires).to_string(),
                clean(&i.reason),
            ]
        })
        .collect();
    let mut widths = [0usize; 6];
    for row in std::iter::once(&header).chain(&rows) {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    for row in std::iter::once(&header).chain(&rows) {
        let mut line = String::new();
        for (cell, w) in row.iter().zip(widths) {
            line.push_str(&format!("{cell:<w$}  "));
        }
        line.push_str(&row[6]);
        writeln!(out, "{line}").map_err(write_error)?;
    }
    Ok(())
}

/// A service's control plane, and the token to talk to it with.
struct Api {
    /// The base URL, without a trailing `/`.
    base: String,
    host: Host,
    https: bool,
    token: String,
}

/// A control plane's error answer.
#[derive(Deserialize)]
struct ApiError {
    error: String,
    #[serde(default)]
    field: Option<String>,
}

impl Api {
    fn new(endpoint: &str, token_file: &Path) -> Result<Api, Failure> {
        let usage = |message: String| Failure {
            code: USAGE,
            message,
        };
        let (host, _) = parse_endpoint(endpoint).map_err(|e| usage(format!("--endpoint: {e}")))?;
        let base = endpoint.trim().trim_end_matches('/').to_owned();
        if base.contains(['?', '#']) {
            return Err(usage(format!(
                "--endpoint `{}`: expected the service's base URL (e.g. http://127.0.0.1:8080), \
                 without a query or fragment",
                mask_url(&base)
            )));
        }
        let https = base
            .get(..8)
            .is_some_and(|s| s.eq_ignore_ascii_case("https://"));
        let token = read_token(token_file)?;
        Ok(Api {
            base,
            host,
            https,
            token,
        })
    }

    fn start(
        &self,
        tenant: &str,
        reason: &str,
        ttl: Option<Duration>,
    ) -> Result<Incident, Failure> {
        let mut body = json!({ "tenant": tenant, "mode": "forensic", "reason": reason });
        if let Some(ttl) = ttl {
            body["ttl"] = json!(humantime::format_duration(ttl).to_string());
        }
        let answer = self.call(
            reqwest::Method::POST,
            "/telemetry/incidents/mode",
            Some(body),
        )?;
        self.field(answer, "incident")
    }

    fn stop(&self, tenant: &str, reason: Option<&str>) -> Result<Incident, Failure> {
        let mut body = json!({ "tenant": tenant, "mode": "default" });
        if let Some(reason) = reason {
            body["reason"] = json!(reason);
        }
        let answer = self.call(
            reqwest::Method::POST,
            "/telemetry/incidents/mode",
            Some(body),
        )?;
        self.field(answer, "stopped")
    }

    fn status(&self) -> Result<Vec<Incident>, Failure> {
        let answer = self.call(reqwest::Method::GET, "/telemetry/incidents/status", None)?;
        self.field(answer, "incidents")
    }

    /// Member `name` of a successful answer.
    fn field<T: serde::de::DeserializeOwned>(
        &self,
        mut answer: serde_json::Value,
        name: &str,
    ) -> Result<T, Failure> {
        let value = answer
            .get_mut(name)
            .map(serde_json::Value::take)
            .unwrap_or_default();
        serde_json::from_value(value).map_err(|e| {
            Failure::from(format!(
                "{}: the answer has no valid `{name}`: {}",
                mask_url(&self.base),
                self.scrub(&e.to_string())
            ))
        })
    }

    /// One request; a 2xx answer's JSON, or the failure to print.
    fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> Result<serde_json::Value, Failure> {
        let url = format!("{}{path}", self.base);
        let (status, text) = outside_runtime(|| self.exchange(method, &url, body))?;
        if status.is_success() {
            return serde_json::from_slice(&text).map_err(|e| {
                Failure::from(format!(
                    "{}: the answer (HTTP {status}) is not JSON: {e}",
                    mask_url(&url)
                ))
            });
        }
        Err(self.refusal(status, &text))
    }

    /// Sends the request and reads the answer (bounded).
    fn exchange(
        &self,
        method: reqwest::Method,
        url: &str,
        body: Option<serde_json::Value>,
    ) -> Result<(reqwest::StatusCode, Vec<u8>), Failure> {
        let client = blocking_client(&self.host, self.https, REQUEST_TIMEOUT)
            .map_err(|e| Failure::from(self.scrub(&e)))?;
        let mut bearer =
            http::HeaderValue::from_str(&format!("Bearer {}", self.token)).map_err(|_| {
                Failure::from(
                    "--token-file: the token holds characters an HTTP header cannot carry"
                        .to_owned(),
                )
            })?;
        bearer.set_sensitive(true);
        let mut request = client
            .request(method, url)
            .header(http::header::AUTHORIZATION, bearer)
            .header(http::header::ACCEPT, "application/json");
        if let Some(body) = body {
            request = request
                .header(http::header::CONTENT_TYPE, "application/json")
                .body(body.to_string());
        }
        let unreachable = |e: reqwest::Error| Failure {
            code: UNREACHABLE,
            message: format!(
                "cannot reach {}: {}",
                mask_url(url),
                self.scrub(&error_chain(&e.without_url()))
            ),
        };
        let answer = request.send().map_err(unreachable)?;
        let status = answer.status();
        let mut text = Vec::new();
        answer
            .take(MAX_ANSWER_BYTES)
            .read_to_end(&mut text)
            .map_err(|e| Failure {
                code: UNREACHABLE,
                message: format!(
                    "{}: the answer (HTTP {status}) could not be read: {}",
                    mask_url(url),
                    self.scrub(&e.to_string())
                ),
            })?;
        Ok((status, text))
    }

    /// The failure for a non-2xx answer: the server's error text, the status, and a hint.
    fn refusal(&self, status: reqwest::StatusCode, text: &[u8]) -> Failure {
        let said = match serde_json::from_slice::<ApiError>(text) {
            Ok(ApiError {
                error,
                field: Some(field),
            }) => format!("{} (field `{}`)", error, field),
            Ok(ApiError { error, field: None }) => error,
            Err(_) => String::from_utf8_lossy(text).trim().to_owned(),
        };
        let said: String = self.scrub(&said).chars().take(MAX_SHOWN_CHARS).collect();
        let mut message = if said.is_empty() {
            format!("the control plane refused: HTTP {status}")
        } else {
            format!("the control plane refused: {said} (HTTP {status})")
        };
        let hint = match status.as_u16() {
            401 => Some(
                "the token was not accepted: check that --token-file holds a current token \
                 for this service",
            ),
            403 => Some(
                "the token lacks the scope (telemetry:admin to start and stop, telemetry:read \
                 for status) or is bound to another tenant",
            ),
            _ => None,
        };
        if let Some(hint) = hint {
            message.push_str("\nhint: ");
            message.push_str(hint);
        }
        Failure {
            code: FAILURE,
            message,
        }
    }

    /// `text` as printed: the token replaced, control characters shown as `?`.
    fn scrub(&self, text: &str) -> String {
        clean(&text.replace(&self.token, "REDACTED"))
    }
}

/// The token in `path`, trimmed.
fn read_token(path: &Path) -> Result<String, Failure> {
    let unreadable = |reason: String| {
        Failure::from(format!(
            "cannot read --token-file {}: {reason}",
            path.display()
        ))
    };
    let file = std::fs::File::open(path).map_err(|e| unreadable(e.to_string()))?;
    let mut bytes = Vec::new();
    file.take(MAX_TOKEN_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| unreadable(e.to_string()))?;
    if bytes.len() as u64 > MAX_TOKEN_BYTES {
        return Err(unreadable(format!("larger than {MAX_TOKEN_BYTES} bytes")));
    }
    let text = String::from_utf8(bytes).map_err(|_| unreadable("not UTF-8 text".to_owned()))?;
    let token = text.trim();
    if token.is_empty() {
        return Err(unreadable("the file is empty".to_owned()));
    }
    Ok(token.to_owned())
}
