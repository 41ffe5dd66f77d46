//! The four control routes: matching a path, and answering each once the caller is
//! authenticated and holds the route's scope.

use http::{HeaderValue, Method, Response, StatusCode, header};
use serde_json::{Map, Value};
use stellaops_telemetry_core::{
    Incident, IncidentError, IncidentStart, Profile, Telemetry, artefacts, parse_incident_ttl,
};

use super::auth::{Claims, refusal};
use super::{ADMIN_SCOPE, ControlBody, EXPORT_SCOPE, MAX_BODY_BYTES, READ_SCOPE};

/// The longest profile name looked up, in bytes.
const MAX_PROFILE_NAME_BYTES: usize = 32;

/// The most characters of a refused value shown in an answer.
const MAX_SHOWN_CHARS: usize = 64;

/// A control route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Endpoint {
    /// `GET config/profiles`.
    Profiles,
    /// `GET config/profile/{name}`.
    Profile(String),
    /// `POST incidents/mode`.
    Mode,
    /// `GET incidents/status`.
    Status,
    /// `GET exports/forensic/{window}`.
    Export(String),
}

impl Endpoint {
    /// The route's template, relative to where the control plane is mounted.
    pub(super) fn template(&self) -> &'static str {
        match self {
            Endpoint::Profiles => "/config/profiles",
            Endpoint::Profile(_) => "/config/profile/{name}",
            Endpoint::Mode => "/incidents/mode",
            Endpoint::Status => "/incidents/status",
            Endpoint::Export(_) => "/exports/forensic/{window}",
        }
    }

    /// The one method the route answers.
    pub(super) fn method(&self) -> Method {
        match self {
            Endpoint::Mode => Method::POST,
            _ => Method::GET,
        }
    }

    /// The scope a token needs for the route.
    pub(super) fn scope(&self) -> &'static str {
        match self {
            Endpoint::Mode => ADMIN_SCOPE,
            Endpoint::Export(_) => EXPORT_SCOPE,
            _ => READ_SCOPE,
        }
    }
}

/// Routes on the end of the path, so the control plane works nested (`/config/profiles`),
/// routed per path (`/telemetry/config/profiles`) or under any prefix. A trailing slash is
/// ignored.
pub(super) fn route(path: &str) -> Option<Endpoint> {
    let mut tail = path.trim_end_matches('/').rsplit('/');
    let last = tail.next()?;
    let parent = tail.next()?;
    match (parent, last) {
        ("config", "profiles") => Some(Endpoint::Profiles),
        ("incidents", "mode") => Some(Endpoint::Mode),
        ("incidents", "status") => Some(Endpoint::Status),
        ("profile", name) if tail.next() == Some("config") && !name.is_empty() => {
            Some(Endpoint::Profile(name.to_owned()))
        }
        ("forensic", window) if tail.next() == Some("exports") && !window.is_empty() => {
            Some(Endpoint::Export(window.to_owned()))
        }
        _ => None,
    }
}

/// A refused call: status, message and the field at fault.
#[derive(Debug)]
pub(super) struct Refusal {
    pub(super) status: StatusCode,
    pub(super) error: String,
    pub(super) field: Option<String>,
}

impl Refusal {
    pub(super) fn new(status: StatusCode, error: impl Into<String>) -> Refusal {
        Refusal {
            status,
            error: error.into(),
            field: None,
        }
    }

    pub(super) fn field(mut self, field: impl Into<String>) -> Refusal {
        self.field = Some(field.into());
        self
    }

    pub(super) fn bad_request(field: &str, error: impl Into<String>) -> Refusal {
        Refusal::new(StatusCode::BAD_REQUEST, error).field(field)
    }

    pub(super) fn into_response(self) -> Response<ControlBody> {
        refusal(self.status, &self.error, self.field.as_deref(), None)
    }
}

/// A value from the request as shown in an answer or a log line: at most 64 characters,
/// control characters replaced by `?`.
pub(super) fn shown(value: &str) -> String {
    let mut out: String = value
        .chars()
        .take(MAX_SHOWN_CHARS)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if value.chars().nth(MAX_SHOWN_CHARS).is_some() {
        out.push('…');
    }
    out
}

/// A 200 answer with a JSON body.
pub(super) fn ok(body: &Value) -> Response<ControlBody> {
    let mut response = Response::new(ControlBody::from(format!("{body}\n")));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// `GET config/profiles`: every built-in profile.
pub(super) fn profiles() -> Result<Value, Refusal> {
    Ok(serde_json::json!({ "profiles": Profile::builtin() }))
}

/// `GET config/profile/{name}`: one profile and its collector configuration.
pub(super) fn profile(name: &str) -> Result<Value, Refusal> {
    let unknown = |message: String| Refusal::new(StatusCode::NOT_FOUND, message).field("name");
    if name.len() > MAX_PROFILE_NAME_BYTES || !name.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(unknown(format!(
            "unknown profile `{}` (expected one of default, forensic, airgap)",
            shown(name)
        )));
    }
    let profile = Profile::by_name(name).map_err(|e| unknown(e.to_string()))?;
    let collector = artefacts::collector(&profile).map_err(|e| {
        Refusal::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("collector configuration: {e}"),
        )
    })?;
    Ok(serde_json::json!({ "profile": profile, "collector": collector.contents }))
}

/// `GET incidents/status`: the active incidents, only the token's tenant's when it is bound
/// to one.
pub(super) fn status(telemetry: &Telemetry, claims: &Claims) -> Result<Value, Refusal> {
    let incidents: Vec<Incident> = telemetry
        .incidents()
        .status()
        .into_iter()
        .filter(|i| claims.may_act_on(&i.tenant))
        .collect();
    Ok(serde_json::json!({ "incidents": incidents }))
}

/// The mode a `POST incidents/mode` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Forensic,
    Default,
}

/// A validated `POST incidents/mode` body.
#[derive(Debug)]
pub(super) struct ModeRequest {
    pub(super) tenant: String,
    mode: Mode,
    reason: Option<String>,
    ttl: Option<std::time::Duration>,
}

/// Reads a `POST incidents/mode` body: a JSON object with `tenant` and `mode` (strings),
/// optional `reason` and `ttl` (strings), and nothing else.
pub(super) fn parse_mode(body: &[u8]) -> Result<ModeRequest, Refusal> {
    let mut object: Map<String, Value> = serde_json::from_slice(body).map_err(|e| {
        let what = if e.is_eof() && body.iter().all(u8::is_ascii_whitespace) {
            "the body is empty".to_owned()
        } else {
            format!("line {}, column {}", e.line(), e.column())
        };
        Refusal::new(
            StatusCode::BAD_REQUEST,
            format!("malformed body: expected a JSON object ({what})"),
        )
    })?;
    let mut take = |field: &'static str, required: bool| -> Result<Option<String>, Refusal> {
        match object.remove(field) {
            Some(Value::String(s)) => Ok(Some(s)),
            None | Some(Value::Null) if !required => Ok(None),
            None | Some(Value::Null) => {
                Err(Refusal::bad_request(field, format!("missing {field}")))
            }
            Some(_) => Err(Refusal::bad_request(
                field,
                format!("{field} must be a string"),
            )),
        }
    };
    let tenant = take("tenant", true)?.unwrap_or_default();
    let mode = take("mode", true)?.unwrap_or_default();
    let reason = take("reason", false)?;
    let ttl = take("ttl", false)?;
    if let Some(unknown) = object.keys().next() {
        let field = shown(unknown);
        return Err(Refusal::bad_request(
            &field,
            format!("unknown field `{field}` (expected tenant, mode, reason, ttl)"),
        ));
    }
    let mode = match mode.as_str() {
        "forensic" => Mode::Forensic,
        "default" => Mode::Default,
        other => {
            return Err(Refusal::bad_request(
                "mode",
                format!(
                    "unknown mode `{}` (expected forensic or default)",
                    shown(other)
                ),
            ));
        }
    };
    let ttl = match ttl {
        Some(text) => Some(parse_incident_ttl(&text).map_err(incident_refusal)?),
        None => None,
    };
    if mode == Mode::Forensic && reason.as_deref().is_none_or(|r| r.trim().is_empty()) {
        return Err(Refusal::bad_request(
            "reason",
            "missing reason (required for mode forensic)",
        ));
    }
    Ok(ModeRequest {
        tenant,
        mode,
        reason,
        ttl,
    })
}

/// Applies a validated mode change as `actor`: starts (or extends) the tenant's incident, or
/// stops it.
pub(super) fn apply_mode(
    telemetry: &Telemetry,
    actor: &str,
    request: ModeRequest,
) -> Result<Value, Refusal> {
    let incidents = telemetry.incidents();
    match request.mode {
        Mode::Forensic => {
            let reason = request.reason.unwrap_or_default();
            let mut start = IncidentStart::new(request.tenant, reason, actor);
            if let Some(ttl) = request.ttl {
                start = start.ttl(ttl);
            }
            let incident = incidents.start(start).map_err(incident_refusal)?;
            Ok(serde_json::json!({ "incident": incident }))
        }
        Mode::Default => {
            let stopped = incidents
                .stop(actor, &request.tenant)
                .map_err(incident_refusal)?;
            Ok(serde_json::json!({ "stopped": stopped }))
        }
    }
}

/// The answer to a refused incident change, with core's message.
fn incident_refusal(e: IncidentError) -> Refusal {
    let message = e.to_string();
    match e {
        IncidentError::InvalidTenant { .. } => Refusal::bad_request("tenant", message),
        IncidentError::InvalidField { field, .. } => Refusal::bad_request(field, message),
        IncidentError::InvalidTtl { .. } => Refusal::bad_request("ttl", message),
        IncidentError::NotActive { .. } => {
            Refusal::new(StatusCode::NOT_FOUND, message).field("tenant")
        }
        IncidentError::TooMany { .. } => Refusal::new(StatusCode::CONFLICT, message),
        _ => Refusal::new(StatusCode::INTERNAL_SERVER_ERROR, "incident change failed"),
    }
}

/// Checks the declared length before the body is read.
pub(super) fn declared_too_large(headers: &http::HeaderMap) -> bool {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .is_some_and(|len| len > MAX_BODY_BYTES as u64)
}
