//! Incidents leave the process: the webhook hook POSTs changes to a loopback server and never
//! dials what the egress policy refuses; `stella-telemetry incident` edits the watched file
//! that instances follow, or talks to a (fake) control plane with a token it never prints.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::mpsc::{Receiver, channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use stellaops_telemetry_core::cli::{self, FAILURE, SUCCESS, UNREACHABLE, USAGE};
use stellaops_telemetry_core::{
    EgressDecision, EgressPolicy, Incident, IncidentEvent, IncidentEventKind, IncidentFile,
    IncidentHook, IncidentStart, IncidentTrigger, PolicyFn, Telemetry, WebhookHook, sealed_policy,
};

/// Waits (at most 20 s) until `done` holds; returns whether it did.
fn eventually(mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    done()
}

fn run(args: &[&str]) -> (u8, String, String) {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let mut all = vec!["stella-telemetry"];
    all.extend_from_slice(args);
    let code = cli::run(all, &mut out, &mut err);
    (
        code,
        String::from_utf8(out).unwrap(),
        String::from_utf8(err).unwrap(),
    )
}

fn pipeline() -> stellaops_telemetry_core::TelemetryBuilder {
    Telemetry::builder("incident-fleet")
        .stdout_logs(false)
        .exporters(&[])
}

fn loopback_policy() -> Arc<dyn EgressPolicy> {
    Arc::from(sealed_policy(None))
}

mod webhook {
    use super::*;

    /// One request as the tiny server saw it.
    struct Seen {
        request_line: String,
        content_type: String,
        body: String,
    }

    /// A loopback HTTP/1.1 server answering every request with `status` (and closing the
    /// connection), or never answering when `status` is `None`.
    fn server(status: Option<u16>) -> (String, Receiver<Seen>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/hooks/incidents", listener.local_addr().unwrap());
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                let tx = tx.clone();
                std::thread::spawn(move || {
                    let Some(seen) = read_request(&stream) else {
                        return;
                    };
                    // Recorded before the answer, so a delivery counted has been seen.
                    let _ = tx.send(seen);
                    match status {
                        Some(code) => {
                            let _ = (&stream).write_all(
                                format!(
                                    "HTTP/1.1 {code} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                                )
                                .as_bytes(),
                            );
                        }
                        None => std::thread::sleep(Duration::from_secs(60)),
                    }
                });
            }
        });
        (url, rx)
    }

    fn read_request(stream: &TcpStream) -> Option<Seen> {
        let mut reader = BufReader::new(stream);
        let mut request_line = String::new();
        reader.read_line(&mut request_line).ok()?;
        let (mut length, mut content_type) = (0usize, String::new());
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).ok()?;
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            let (name, value) = line.split_once(':')?;
            match name.to_ascii_lowercase().as_str() {
                "content-length" => length = value.trim().parse().ok()?,
                "content-type" => content_type = value.trim().to_owned(),
                _ => {}
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body).ok()?;
        Some(Seen {
            request_line: request_line.trim_end().to_owned(),
            content_type,
            body: String::from_utf8(body).ok()?,
        })
    }

    fn event(kind: IncidentEventKind) -> IncidentEvent {
        let now = SystemTime::now();
        IncidentEvent {
            kind,
            incident: Incident {
                id: "inc-test".into(),
                tenant: "acme".into(),
                reason: "CVE triage".into(),
                actor: "ops@example".into(),
                trigger: IncidentTrigger::Manual,
                started: now,
                expires: now + Duration::from_secs(600),
            },
            actor: "ops@example".into(),
        }
    }

    #[test]
    fn started_and_stopped_events_reach_a_loopback_server_as_json() {
        let (url, seen) = server(Some(204));
        let hook = Arc::new(WebhookHook::new(url, loopback_policy()).unwrap());
        let telemetry = pipeline().incident_hook(hook.clone()).build().unwrap();
        let incident = telemetry
            .incidents()
            .start(IncidentStart::new("acme", "CVE triage", "ops@example"))
            .unwrap();
        telemetry.incidents().stop("ops@example", "acme").unwrap();

        assert!(eventually(|| hook.delivered() == 2), "{hook:?}");
        assert_eq!((hook.failed(), hook.refused()), (0, 0));
        let mut kinds = Vec::new();
        for request in seen.try_iter() {
            assert_eq!(request.request_line, "POST /hooks/incidents HTTP/1.1");
            assert_eq!(request.content_type, "application/json");
            let body: serde_json::Value = serde_json::from_str(&request.body).unwrap();
            assert_eq!(body["incident"]["id"], incident.id.as_str());
            assert_eq!(body["incident"]["tenant"], "acme");
            assert_eq!(body["actor"], "ops@example");
            kinds.push(body["kind"].as_str().unwrap().to_owned());
        }
        assert_eq!(kinds, ["started", "stopped"]);
        assert_eq!(telemetry.incidents().dropped_notifications(), 0);
    }

    #[test]
    fn answers_other_than_2xx_and_hung_servers_count_as_failures_without_delaying_the_start() {
        let (url, _seen) = server(Some(500));
        let refused_by_server = WebhookHook::new(url, loopback_policy()).unwrap();
        refused_by_server.notify(&event(IncidentEventKind::Started));
        assert_eq!(
            (refused_by_server.delivered(), refused_by_server.failed()),
            (0, 1)
        );

        let (url, _seen) = server(None);
        let hook = Arc::new(
            WebhookHook::new(url, loopback_policy())
                .unwrap()
                .timeout(Duration::from_millis(200)),
        );
        let telemetry = pipeline().incident_hook(hook.clone()).build().unwrap();
        // Returns while the hook waits on the hung server (the test would hang otherwise).
        telemetry
            .incidents()
            .start(IncidentStart::new("acme", "CVE triage", "ops@example"))
            .unwrap();
        assert!(telemetry.incidents().is_active("acme"));
        assert!(eventually(|| hook.failed() == 1), "{hook:?}");
        assert_eq!(hook.delivered(), 0);
    }

    #[test]
    fn a_hook_called_inside_an_async_runtime_still_delivers() {
        let (url, seen) = server(Some(200));
        let hook = WebhookHook::new(url, loopback_policy()).unwrap();
        let runtime = tokio::runtime::Runtime::new().unwrap();
        runtime.block_on(async { hook.notify(&event(IncidentEventKind::Expired)) });
        assert_eq!((hook.delivered(), hook.failed()), (1, 0));
        let body: serde_json::Value = serde_json::from_str(&seen.recv().unwrap().body).unwrap();
        assert_eq!(body["kind"], "expired");
    }

    /// A `MakeWriter` into a shared buffer.
    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl Write for Buffer {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_sealed_policy_refuses_a_remote_webhook_counts_it_and_warns_without_its_secrets() {
        let hook = WebhookHook::new(
            "http://192.0.2.1:9/services/T000/B000/pathsecret?token=querysecret",
            loopback_policy(),
        )
        .unwrap();
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            hook.notify(&event(IncidentEventKind::Started));
            hook.notify(&event(IncidentEventKind::Stopped));
        });
        assert_eq!((hook.refused(), hook.delivered(), hook.failed()), (2, 0, 0));
        let lines = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
        assert_eq!(lines.lines().count(), 2, "{lines}");
        assert!(
            lines.contains("egress policy refused the incident webhook"),
            "{lines}"
        );
        assert!(lines.contains("http://192.0.2.1:9"), "{lines}");
        assert!(lines.contains("loopback-only"), "{lines}");
        for secret in ["pathsecret", "querysecret", "T000"] {
            assert!(!lines.contains(secret), "{lines}");
        }
        assert!(!format!("{hook:?}").contains("pathsecret"));
    }

    #[test]
    fn a_refused_webhook_never_connects() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let asked = Arc::new(Mutex::new(Vec::new()));
        let seen = asked.clone();
        let refuse_all =
            PolicyFn::new(move |target: &stellaops_telemetry_core::EgressTarget<'_>| {
                seen.lock().unwrap().push(target.signal.to_owned());
                EgressDecision::refuse("nothing leaves")
            });
        let hook = Arc::new(WebhookHook::new(url, Arc::new(refuse_all)).unwrap());
        let telemetry = pipeline().incident_hook(hook.clone()).build().unwrap();
        telemetry
            .incidents()
            .start(IncidentStart::new("acme", "CVE triage", "ops@example"))
            .unwrap();
        assert!(eventually(|| hook.refused() == 1), "{hook:?}");
        assert_eq!(*asked.lock().unwrap(), ["incidents"]);
        assert_eq!(
            listener.accept().map(|_| ()).unwrap_err().kind(),
            std::io::ErrorKind::WouldBlock
        );
        assert_eq!((hook.delivered(), hook.failed()), (0, 0));
    }

    #[test]
    fn malformed_webhook_urls_are_refused_when_the_hook_is_made() {
        for url in [
            "ftp://127.0.0.1/hook",
            "127.0.0.1:9000",
            "http://user:pw@127.0.0.1/hook",
        ] {
            let err = WebhookHook::new(url, loopback_policy()).unwrap_err();
            assert!(err.to_string().starts_with("invalid endpoint"), "{err}");
            assert!(!err.to_string().contains("pw@"), "{err}");
        }
    }

    #[test]
    fn the_pipeline_hands_out_its_egress_policy() {
        let sealed = pipeline().sealed(true).build().unwrap();
        assert_eq!(sealed.egress_policy().name(), "loopback-only");
        let hook = WebhookHook::new("http://192.0.2.1:9/", sealed.egress_policy().clone()).unwrap();
        hook.notify(&event(IncidentEventKind::Started));
        assert_eq!(hook.refused(), 1);
        let open = pipeline().build().unwrap();
        assert_eq!(open.egress_policy().name(), "open");
    }
}

mod file_mode {
    use super::*;

    fn path_of(path: &Path) -> &str {
        path.to_str().unwrap()
    }

    #[test]
    fn start_writes_the_file_status_reads_it_stop_removes_it_and_instances_follow() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("incidents.json");
        let file = path_of(&path);
        let before = pipeline().incident_file(&path).build().unwrap();

        let (code, out, err) = run(&[
            "incident",
            "start",
            "--file",
            file,
            "--tenant",
            "acme",
            "--reason",
            "CVE triage",
            "--ttl",
            "30m",
            "--actor",
            "ops@example",
        ]);
        assert_eq!((code, err.as_str()), (SUCCESS, ""), "{out}");
        assert!(out.contains("for tenant `acme` started"), "{out}");
        let listed = IncidentFile::read(&path).unwrap();
        assert_eq!(listed.len(), 1);
        let incident = &listed[0];
        assert_eq!(
            (incident.tenant.as_str(), incident.actor.as_str()),
            ("acme", "ops@example")
        );
        assert_eq!(incident.reason, "CVE triage");
        assert_eq!(
            incident.expires.duration_since(incident.started).unwrap(),
            Duration::from_secs(1800)
        );
        assert!(out.contains(&incident.id), "{out}");

        // An instance started before the change follows the file (its 100 ms poll), one
        // started after reads it when built.
        assert!(eventually(|| before.incidents().is_active("acme")));
        let after = pipeline().incident_file(&path).build().unwrap();
        assert_eq!(after.incidents().status(), listed);

        let (code, out, _) = run(&["incident", "status", "--file", file]);
        assert_eq!(code, SUCCESS);
        let header = out.lines().next().unwrap();
        for column in [
            "TENANT", "ID", "TRIGGER", "ACTOR", "STARTED", "EXPIRES", "REASON",
        ] {
            assert!(header.contains(column), "{header}");
        }
        let row = out.lines().nth(1).unwrap();
        for cell in [
            "acme",
            incident.id.as_str(),
            "manual",
            "ops@example",
            "CVE triage",
        ] {
            assert!(row.contains(cell), "{row}");
        }
        let (code, out, _) = run(&["incident", "status", "--json", "--file", file]);
        assert_eq!(code, SUCCESS);
        let json: serde_json::Value = serde_json::from_str(&out).unwrap();
        let read: Vec<Incident> = serde_json::from_value(json["incidents"].clone()).unwrap();
        assert_eq!(read, listed);

        // A second start extends the same incident.
        let (code, out, _) = run(&[
            "incident", "start", "--file", file, "--tenant", "acme", "--reason", "still on",
            "--ttl", "2h",
        ]);
        assert_eq!(code, SUCCESS);
        assert!(out.contains("extended"), "{out}");
        let extended = IncidentFile::read(&path).unwrap();
        assert_eq!(extended.len(), 1);
        assert_eq!(extended[0].id, incident.id);
        assert_eq!(extended[0].reason, "still on");
        assert!(extended[0].expires > incident.expires);

        let (code, out, err) = run(&["incident", "stop", "--file", file, "--tenant", "acme"]);
        assert_eq!((code, err.as_str()), (SUCCESS, ""));
        assert!(out.contains("stopped"), "{out}");
        assert!(IncidentFile::read(&path).unwrap().is_empty());
        after.incidents().reload_file().unwrap();
        assert!(!after.incidents().is_active("acme"));
        assert!(eventually(|| !before.incidents().is_active("acme")));

        let (code, out, _) = run(&["incident", "status", "--file", file]);
        assert_eq!((code, out.trim()), (SUCCESS, "no active incidents"));
        let (code, _, err) = run(&["incident", "stop", "--file", file, "--tenant", "acme"]);
        assert_eq!(code, FAILURE);
        assert!(
            err.contains("no incident is active for tenant `acme`"),
            "{err}"
        );
    }

    #[test]
    fn file_errors_and_bad_tenants_fail_naming_what_was_wrong() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("incidents.json");
        let file = path_of(&path);
        let (code, _, err) = run(&[
            "incident",
            "start",
            "--file",
            file,
            "--tenant",
            "bad tenant!",
        ]);
        assert_eq!(code, FAILURE);
        assert!(err.contains("invalid tenant `bad tenant!`"), "{err}");
        let (code, _, err) = run(&["incident", "stop", "--file", file, "--tenant", "bad/tenant"]);
        assert_eq!(code, FAILURE);
        assert!(err.contains("invalid tenant"), "{err}");
        assert!(!path.exists());

        std::fs::write(&path, "not json").unwrap();
        let (code, _, err) = run(&["incident", "status", "--file", file]);
        assert_eq!(code, FAILURE);
        assert!(err.contains(file), "{err}");

        let missing_dir = dir.path().join("missing").join("incidents.json");
        let (code, _, err) = run(&[
            "incident",
            "start",
            "--file",
            path_of(&missing_dir),
            "--tenant",
            "acme",
        ]);
        assert_eq!(code, FAILURE);
        assert!(err.contains("incident file"), "{err}");
    }
}

mod endpoint_mode {
    use super::*;
    use axum::Json;
    use axum::extract::State;
    use axum::http::{HeaderMap, StatusCode, header};
    use axum::response::{IntoResponse, Response};
    use axum::routing::{get, post};
    use serde_json::{Value, json};

    const ADMIN: &str = "admin-token-7f3a9c";
    const READER: &str = "reader-token-2b81e0";
    const WRONG: &str = "wrong-token-99d1c4";

    #[derive(Default)]
    struct Plane {
        incidents: Vec<Incident>,
        bodies: Vec<Value>,
    }

    type Shared = Arc<Mutex<Plane>>;

    fn error(status: StatusCode, message: &str, field: Option<&str>) -> Response {
        let mut body = json!({ "error": message });
        if let Some(field) = field {
            body["field"] = json!(field);
        }
        let mut response = (status, Json(body)).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                r#"Bearer realm="stellaops-telemetry", error="invalid_token""#
                    .parse()
                    .unwrap(),
            );
        }
        response
    }

    /// The token's scopes, or the 401 answer. Echoes a bad token in its error, as a careless
    /// server might, so that the command line's scrubbing is tested.
    fn scopes(headers: &HeaderMap) -> Result<&'static [&'static str], Box<Response>> {
        let token = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        match token {
            ADMIN => Ok(&["telemetry:read", "telemetry:admin"]),
            READER => Ok(&["telemetry:read"]),
            other => Err(Box::new(error(
                StatusCode::UNAUTHORIZED,
                &format!("invalid token `{other}`"),
                None,
            ))),
        }
    }

    async fn mode(
        State(plane): State<Shared>,
        headers: HeaderMap,
        Json(body): Json<Value>,
    ) -> Response {
        let scopes = match scopes(&headers) {
            Ok(scopes) => scopes,
            Err(response) => return *response,
        };
        if !scopes.contains(&"telemetry:admin") {
            return error(StatusCode::FORBIDDEN, "missing scope telemetry:admin", None);
        }
        let mut plane = plane.lock().unwrap();
        plane.bodies.push(body.clone());
        let tenant = body["tenant"].as_str().unwrap_or("").to_owned();
        match body["mode"].as_str() {
            Some("forensic") => {
                let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
                let incident = Incident {
                    id: format!("inc-{tenant}"),
                    tenant: tenant.clone(),
                    reason: body["reason"].as_str().unwrap_or("").to_owned(),
                    actor: "svc-ops".into(),
                    trigger: IncidentTrigger::Manual,
                    started: now,
                    expires: now + Duration::from_secs(1800),
                };
                plane.incidents.retain(|i| i.tenant != tenant);
                plane.incidents.push(incident.clone());
                Json(json!({ "incident": incident })).into_response()
            }
            Some("default") => match plane.incidents.iter().position(|i| i.tenant == tenant) {
                Some(at) => Json(json!({ "stopped": plane.incidents.remove(at) })).into_response(),
                None => error(
                    StatusCode::NOT_FOUND,
                    &format!("no incident is active for tenant `{tenant}`"),
                    Some("tenant"),
                ),
            },
            _ => error(StatusCode::BAD_REQUEST, "unknown mode", Some("mode")),
        }
    }

    async fn status(State(plane): State<Shared>, headers: HeaderMap) -> Response {
        if let Err(response) = scopes(&headers) {
            return *response;
        }
        let plane = plane.lock().unwrap();
        Json(json!({ "incidents": plane.incidents })).into_response()
    }

    /// A fake control plane on loopback; returns its base URL, its state and its runtime.
    fn control_plane() -> (String, Shared, tokio::runtime::Runtime) {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let plane = Shared::default();
        let app = axum::Router::new()
            .route("/telemetry/incidents/mode", post(mode))
            .route("/telemetry/incidents/status", get(status))
            .with_state(plane.clone());
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        runtime.spawn(async move { axum::serve(listener, app).await });
        (base, plane, runtime)
    }

    fn token_file(dir: &Path, name: &str, token: &str) -> String {
        let path = dir.join(name);
        // A trailing newline, as editors and `echo` leave it: trimmed.
        std::fs::write(&path, format!("{token}\n")).unwrap();
        path.to_str().unwrap().to_owned()
    }

    /// Runs the command and checks that no token reached either stream.
    fn run_secretly(args: &[&str]) -> (u8, String, String) {
        let (code, out, err) = run(args);
        for token in [ADMIN, READER, WRONG] {
            assert!(!out.contains(token) && !err.contains(token), "{out}{err}");
        }
        (code, out, err)
    }

    #[test]
    fn start_status_and_stop_go_through_the_control_plane() {
        let (base, plane, _runtime) = control_plane();
        let dir = tempfile::tempdir().unwrap();
        let admin = token_file(dir.path(), "admin", ADMIN);
        let endpoint = format!("{base}/");

        let (code, out, err) = run_secretly(&[
            "incident",
            "start",
            "--endpoint",
            &endpoint,
            "--token-file",
            &admin,
            "--tenant",
            "acme",
            "--reason",
            "CVE triage",
            "--ttl",
            "30m",
        ]);
        assert_eq!((code, err.as_str()), (SUCCESS, ""), "{out}");
        assert!(out.contains("incident inc-acme for tenant `acme`"), "{out}");
        assert!(out.contains("by svc-ops"), "{out}");
        assert_eq!(
            plane.lock().unwrap().bodies[0],
            json!({"tenant": "acme", "mode": "forensic", "reason": "CVE triage", "ttl": "30m"})
        );

        let (code, out, _) = run_secretly(&[
            "incident",
            "status",
            "--endpoint",
            &base,
            "--token-file",
            &admin,
        ]);
        assert_eq!(code, SUCCESS);
        let row = out.lines().nth(1).unwrap();
        for cell in [
            "acme",
            "inc-acme",
            "manual",
            "svc-ops",
            "2027-01-15T08:00:00Z",
            "CVE triage",
        ] {
            assert!(row.contains(cell), "{row}");
        }
        let (code, out, _) = run_secretly(&[
            "incident",
            "status",
            "--json",
            "--endpoint",
            &base,
            "--token-file",
            &admin,
        ]);
        assert_eq!(code, SUCCESS);
        let json: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(json["incidents"][0]["id"], "inc-acme");

        let (code, out, _) = run_secretly(&[
            "incident",
            "stop",
            "--endpoint",
            &base,
            "--token-file",
            &admin,
            "--tenant",
            "acme",
            "--reason",
            "done",
        ]);
        assert_eq!(code, SUCCESS);
        assert_eq!(out.trim(), "incident inc-acme for tenant `acme` stopped");
        assert_eq!(
            plane.lock().unwrap().bodies[1],
            json!({"tenant": "acme", "mode": "default", "reason": "done"})
        );

        let (code, out, err) = run_secretly(&[
            "incident",
            "stop",
            "--endpoint",
            &base,
            "--token-file",
            &admin,
            "--tenant",
            "acme",
        ]);
        assert_eq!(code, FAILURE);
        assert!(out.is_empty());
        assert!(
            err.contains(
                "no incident is active for tenant `acme` (field `tenant`) (HTTP 404 Not Found)"
            ),
            "{err}"
        );
    }

    #[test]
    fn refusals_print_the_servers_error_the_status_and_a_hint_but_never_the_token() {
        let (base, plane, _runtime) = control_plane();
        let dir = tempfile::tempdir().unwrap();
        let wrong = token_file(dir.path(), "wrong", WRONG);
        let reader = token_file(dir.path(), "reader", READER);

        let (code, out, err) = run_secretly(&[
            "incident",
            "start",
            "--endpoint",
            &base,
            "--token-file",
            &wrong,
            "--tenant",
            "acme",
        ]);
        assert_eq!(code, FAILURE);
        assert!(out.is_empty());
        assert!(err.contains("invalid token `REDACTED`"), "{err}");
        assert!(err.contains("HTTP 401 Unauthorized"), "{err}");
        assert!(err.contains("hint: the token was not accepted"), "{err}");

        let (code, _, err) = run_secretly(&[
            "incident",
            "start",
            "--endpoint",
            &base,
            "--token-file",
            &reader,
            "--tenant",
            "acme",
        ]);
        assert_eq!(code, FAILURE);
        assert!(
            err.contains("missing scope telemetry:admin (HTTP 403 Forbidden)"),
            "{err}"
        );
        assert!(err.contains("hint: the token lacks the scope"), "{err}");
        assert!(plane.lock().unwrap().incidents.is_empty());

        // The reader may read.
        let (code, out, _) = run_secretly(&[
            "incident",
            "status",
            "--endpoint",
            &base,
            "--token-file",
            &reader,
        ]);
        assert_eq!((code, out.trim()), (SUCCESS, "no active incidents"));
    }

    #[test]
    fn an_unreachable_endpoint_exits_with_its_own_status() {
        let closed = {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        let dir = tempfile::tempdir().unwrap();
        let admin = token_file(dir.path(), "admin", ADMIN);
        let endpoint = format!("http://127.0.0.1:{closed}");
        let (code, out, err) = run_secretly(&[
            "incident",
            "status",
            "--endpoint",
            &endpoint,
            "--token-file",
            &admin,
        ]);
        assert_eq!(code, UNREACHABLE, "{err}");
        assert!(out.is_empty());
        assert!(
            err.starts_with(&format!(
                "error: cannot reach {endpoint}/telemetry/incidents/status: "
            )),
            "{err}"
        );
    }

    #[test]
    fn bad_command_lines_name_the_flag() {
        let dir = tempfile::tempdir().unwrap();
        let admin = token_file(dir.path(), "admin", ADMIN);
        let file = dir.path().join("incidents.json");
        let file = file.to_str().unwrap();
        let missing = dir.path().join("no-such-token");
        let missing = missing.to_str().unwrap();
        let base = "http://127.0.0.1:1";
        let cases: [(&[&str], u8, &[&str]); 10] = [
            (&["incident", "start", "--file", file], USAGE, &["--tenant"]),
            (&["incident", "stop", "--file", file], USAGE, &["--tenant"]),
            (
                &[
                    "incident", "start", "--file", file, "--tenant", "acme", "--ttl", "soon",
                ],
                USAGE,
                &["--ttl", "invalid ttl `soon`"],
            ),
            (
                &[
                    "incident", "start", "--file", file, "--tenant", "acme", "--ttl", "25h",
                ],
                USAGE,
                &["--ttl"],
            ),
            (
                &[
                    "incident",
                    "status",
                    "--file",
                    file,
                    "--endpoint",
                    base,
                    "--token-file",
                    &admin,
                ],
                USAGE,
                &["--file", "--endpoint"],
            ),
            (&["incident", "status"], USAGE, &["--endpoint", "--file"]),
            (
                &["incident", "status", "--file", file, "--token-file", &admin],
                USAGE,
                &["--token-file"],
            ),
            (
                &["incident", "status", "--endpoint", base],
                USAGE,
                &["--token-file"],
            ),
            (
                &[
                    "incident",
                    "status",
                    "--endpoint",
                    base,
                    "--token-file",
                    missing,
                ],
                FAILURE,
                &["cannot read --token-file", "no-such-token"],
            ),
            (
                &[
                    "incident",
                    "status",
                    "--endpoint",
                    "ftp://127.0.0.1",
                    "--token-file",
                    &admin,
                ],
                USAGE,
                &["--endpoint", "the scheme must be http or https"],
            ),
        ];
        for (args, expected, words) in cases {
            let (code, out, err) = run_secretly(args);
            assert_eq!(code, expected, "{args:?}: {err}");
            assert!(out.is_empty(), "{args:?}: {out}");
            for word in words {
                assert!(err.contains(word), "{args:?}: {err}");
            }
        }

        let (code, _, err) = run_secretly(&[
            "incident",
            "status",
            "--endpoint",
            "http://user:hunter2@127.0.0.1:1",
            "--token-file",
            &admin,
        ]);
        assert_eq!(code, USAGE);
        assert!(!err.contains("hunter2"), "{err}");
        assert!(err.contains("credentials"), "{err}");

        let empty = token_file(dir.path(), "empty", "  ");
        let (code, _, err) = run_secretly(&[
            "incident",
            "status",
            "--endpoint",
            base,
            "--token-file",
            &empty,
        ]);
        assert_eq!(code, FAILURE);
        assert!(
            err.contains("--token-file") && err.contains("empty"),
            "{err}"
        );

        let (code, _, err) = run_secretly(&[
            "incident",
            "start",
            "--endpoint",
            base,
            "--token-file",
            &admin,
            "--tenant",
            "acme",
            "--actor",
            "me",
        ]);
        assert_eq!(code, USAGE);
        assert!(err.contains("--actor"), "{err}");
    }
}
