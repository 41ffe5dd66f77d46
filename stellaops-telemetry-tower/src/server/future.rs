//! [`ResponseFuture`] and [`ResponseBody`]: the request is recorded when its response body
//! ends, so the duration covers the body stream, not only the head.

use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Instant;

use bytes::Buf as _;

use stellaops_telemetry_core::SpanRecord;
use stellaops_telemetry_core::metrics::BoundUpDownCounter;
use stellaops_telemetry_core::opentelemetry::Context as OtelContext;
use stellaops_telemetry_core::opentelemetry::trace::SpanContext;
use tracing::Span;

use super::ReportedRoute;
use super::layer::Shared;
use super::metrics::Outcome;
use super::request_id::{REQUEST_ID_HEADER_NAME, RequestId};
use super::route::is_unmatched;

/// The `status` label of `stellaops_request_total` for a request whose response future was
/// dropped before it produced a response (the client went away). The span and
/// `http.server.request.duration` carry no status code then (none was sent), and
/// `error.type` [`ABORTED`].
pub const CLIENT_CLOSED: u16 = 499;

/// `error.type` of a request whose handler panicked (in the service, its future or its body
/// stream). The status is 500; the panic is recorded, then resumed: the layer never swallows it.
pub const PANIC: &str = "panic";

/// `error.type` of a request the client abandoned: its response future was dropped before the
/// head (no status code is recorded), or its response body was dropped before its end (the
/// status sent is kept).
pub const ABORTED: &str = "aborted";

/// gRPC codes that are errors on the server side (the semantic conventions' list).
fn grpc_server_error(code: u16) -> bool {
    matches!(code, 2 | 4 | 12 | 13 | 14 | 15)
}

enum AttributeValue {
    Int(i64),
    Static(&'static str),
}

/// What is known about a request when the layer hands it to the inner service.
pub(crate) struct Started {
    pub(crate) shared: Arc<Shared>,
    pub(crate) span: Span,
    /// The request's OpenTelemetry context: its span, baggage and tenant. Attached while the
    /// inner service runs, so the handler's spans are its children.
    pub(crate) cx: OtelContext,
    pub(crate) span_context: SpanContext,
    /// The request span, recorded directly (no SDK `Span`), when it is sampled.
    pub(crate) record: Option<Box<SpanRecord>>,
    pub(crate) start: Instant,
    pub(crate) method: &'static str,
    /// The span name's first part: the method, or `HTTP` for `_OTHER`.
    pub(crate) name: &'static str,
    /// The interned template, [`UNMATCHED_ROUTE`](super::UNMATCHED_ROUTE) when none matched.
    pub(crate) route: &'static str,
    pub(crate) scheme: &'static str,
    pub(crate) protocol: &'static str,
    pub(crate) grpc: bool,
    pub(crate) in_flight: BoundUpDownCounter,
    pub(crate) request_id: RequestId,
    /// The request's own `x-request-id` value when it was valid (echoed as it came).
    pub(crate) request_id_header: Option<http::HeaderValue>,
    /// The span gets the extended attributes (forensic profile, tenant under incident).
    pub(crate) extended: bool,
    /// The tenant whose outcome the error-rate incident trigger counts, when it is on.
    pub(crate) outcome_tenant: Option<std::sync::Arc<str>>,
}

/// Everything needed to record a request once, whichever way it ends.
pub(crate) struct Completion {
    started: Started,
    status: Option<u16>,
    grpc_status: Option<u16>,
    error: &'static str,
    done: bool,
    /// The response body's bytes sent so far.
    body_bytes: u64,
}

impl Completion {
    pub(crate) fn new(started: Started) -> Self {
        Completion {
            started,
            status: None,
            grpc_status: None,
            error: "",
            done: false,
            body_bytes: 0,
        }
    }

    /// Runs `f` with the request's context attached and its tracing span entered.
    pub(crate) fn in_scope<T>(&self, f: impl FnOnce() -> T) -> T {
        let _cx = self.started.cx.clone().attach();
        let _entered = self.started.span.enter();
        f()
    }

    fn attribute(&mut self, key: &'static str, value: AttributeValue) {
        if let Some(r) = self.started.record.as_mut() {
            match value {
                AttributeValue::Int(v) => r.push_int(key, v),
                AttributeValue::Static(v) => r.push_static(key, v),
            }
        }
    }

    /// The response head: status on the span, our headers on the response.
    fn on_head<RB>(&mut self, response: &mut http::Response<RB>) {
        if is_unmatched(self.started.route)
            && let Some(reported) = response.extensions().get::<ReportedRoute>()
        {
            let route = self.started.shared.routes.intern(Some(&reported.0));
            self.started.route = route;
            if !is_unmatched(route) {
                self.attribute("http.route", AttributeValue::Static(route));
            }
        }
        let status = response.status().as_u16();
        self.status = Some(status);
        self.attribute(
            "http.response.status_code",
            AttributeValue::Int(i64::from(status)),
        );
        if self.started.grpc {
            // A trailers-only response carries its status in the head.
            self.grpc_status = crate::grpc::status(response.headers());
        }
        let echoed = match self.started.request_id_header.take() {
            Some(value) => Some(value),
            None => http::HeaderValue::from_str(self.started.request_id.as_str()).ok(),
        };
        if let Some(value) = echoed {
            response.headers_mut().insert(REQUEST_ID_HEADER_NAME, value);
        }
        if self.started.shared.echo_traceparent {
            let sc = &self.started.span_context;
            if sc.is_valid() {
                let traceparent = crate::propagation::traceparent_of(sc);
                if let Ok(value) = http::HeaderValue::from_str(&traceparent) {
                    response
                        .headers_mut()
                        .insert(crate::propagation::TRACEPARENT, value);
                }
            }
        }
    }

    /// Records the request as failed by `error` with status `status` (when none was sent
    /// yet), now.
    pub(crate) fn fail(&mut self, status: u16, error: &'static str) {
        if self.status.is_none() {
            self.status = Some(status);
            self.attribute(
                "http.response.status_code",
                AttributeValue::Int(i64::from(status)),
            );
        }
        self.error = error;
        self.finish();
    }

    /// The status label and `error.type` (empty when the request did not fail).
    fn outcome(&mut self) -> (u16, &'static str) {
        if self.started.grpc && self.status.is_some() {
            // No grpc-status at all: the stream ended without one (UNKNOWN).
            let code = self.grpc_status.unwrap_or(2);
            self.attribute(
                crate::grpc::RPC_GRPC_STATUS_CODE,
                AttributeValue::Int(i64::from(code)),
            );
            let error = if !self.error.is_empty() || !grpc_server_error(code) {
                self.error
            } else {
                "grpc_error"
            };
            return (code, error);
        }
        let status = self.status.unwrap_or(CLIENT_CLOSED);
        let error = if !self.error.is_empty() {
            self.error
        } else if (500..600).contains(&status) {
            status_text(status)
        } else {
            ""
        };
        (status, error)
    }

    fn finish(&mut self) {
        if std::mem::replace(&mut self.done, true) {
            return;
        }
        self.started.in_flight.add(-1);
        // One clock reading for the metrics and the span's end.
        let elapsed = self.started.start.elapsed();
        let (status, error) = self.outcome();
        let failed = !error.is_empty();
        if failed {
            self.attribute("error.type", AttributeValue::Static(error));
        }
        if self.started.extended {
            let bytes = i64::try_from(self.body_bytes).unwrap_or(i64::MAX);
            self.attribute("http.response.body.size", AttributeValue::Int(bytes));
        }
        if let Some(tenant) = self.started.outcome_tenant.take() {
            self.started
                .shared
                .incidents
                .record_outcome(&tenant, failed);
        }
        let route = if is_unmatched(self.started.route) {
            ""
        } else {
            self.started.route
        };
        if let Some(mut r) = self.started.record.take() {
            r.name = (self.started.name, route);
            r.end_time = r.start_time + elapsed;
            r.error = failed;
            self.started.shared.recorder.submit_record(r);
        }
        self.started.shared.metrics.record(&Outcome {
            method: self.started.method,
            route: self.started.route,
            status,
            http_status: self.status.unwrap_or(0),
            scheme: self.started.scheme,
            protocol: self.started.protocol,
            error,
            seconds: elapsed.as_secs_f64(),
        });
    }
}

/// `error.type` of a 5xx response: its status code, as the conventions say.
fn status_text(status: u16) -> &'static str {
    match status {
        500 => "500",
        501 => "501",
        502 => "502",
        503 => "503",
        504 => "504",
        505..=599 => "5xx",
        _ => "_OTHER",
    }
}

impl Drop for Completion {
    fn drop(&mut self) {
        // Not finished: the response future or the body was dropped before its end (the body
        // is finished as soon as it reports its end, so hyper dropping a finished body lands
        // in `finish` first). The client went away.
        if !self.done {
            self.error = ABORTED;
            self.finish();
        }
    }
}

pin_project_lite::pin_project! {
    /// The response future of [`ServerTelemetry`](super::ServerTelemetry).
    pub struct ResponseFuture<F> {
        #[pin]
        future: F,
        completion: Option<Completion>,
    }
}

impl<F> ResponseFuture<F> {
    pub(crate) fn new(future: F, completion: Completion) -> Self {
        ResponseFuture {
            future,
            completion: Some(completion),
        }
    }
}

impl<F, RB, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<http::Response<RB>, E>>,
    RB: http_body::Body,
{
    type Output = Result<http::Response<ResponseBody<RB>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let future = this.future;
        // A panic is recorded (500, `error.type` `panic`), then resumed as it was.
        let polled = catch_unwind(AssertUnwindSafe(|| match this.completion.as_ref() {
            Some(c) => c.in_scope(|| future.poll(cx)),
            None => future.poll(cx),
        }));
        let result = match polled {
            Ok(poll) => ready!(poll),
            Err(panic) => {
                if let Some(mut c) = this.completion.take() {
                    c.fail(500, PANIC);
                }
                resume_unwind(panic)
            }
        };
        let mut completion = this.completion.take();
        Poll::Ready(match result {
            Ok(mut response) => {
                if let Some(mut c) = completion.take() {
                    c.on_head(&mut response);
                    if response.body().is_end_stream() {
                        // An empty body is never polled: the request ends with its head.
                        c.finish();
                    } else {
                        completion = Some(c);
                    }
                }
                let (parts, body) = response.into_parts();
                Ok(http::Response::from_parts(
                    parts,
                    ResponseBody {
                        inner: body,
                        completion,
                    },
                ))
            }
            Err(e) => {
                // The inner service's error passes through untouched; it is recorded as a
                // failed request (500).
                if let Some(mut c) = completion {
                    c.fail(500, "_OTHER");
                }
                Err(e)
            }
        })
    }
}

pin_project_lite::pin_project! {
    /// The response body: passed through frame by frame, never buffered; the request is
    /// recorded when it ends (or is dropped).
    pub struct ResponseBody<B> {
        #[pin]
        inner: B,
        completion: Option<Completion>,
    }
}

impl<B> ResponseBody<B> {
    /// The wrapped body.
    pub fn into_inner(self) -> B {
        self.inner
    }
}

impl<B: http_body::Body> http_body::Body for ResponseBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        let mut this = self.project();
        let inner = this.inner.as_mut();
        // A streaming handler still runs in the request's context (a body at its end runs no
        // code of the handler's: it only answers `None`). A panic in it is recorded, then
        // resumed.
        let polled = catch_unwind(AssertUnwindSafe(|| match this.completion.as_ref() {
            Some(c) if !inner.is_end_stream() => c.in_scope(|| inner.poll_frame(cx)),
            _ => inner.poll_frame(cx),
        }));
        let frame = match polled {
            Ok(poll) => ready!(poll),
            Err(panic) => {
                if let Some(mut c) = this.completion.take() {
                    c.fail(500, PANIC);
                }
                resume_unwind(panic)
            }
        };
        match &frame {
            Some(Ok(frame)) => {
                if let (Some(data), Some(c)) = (frame.data_ref(), this.completion.as_mut()) {
                    c.body_bytes = c.body_bytes.saturating_add(data.remaining() as u64);
                }
                if let (Some(trailers), Some(c)) = (frame.trailers_ref(), this.completion.as_mut())
                    && c.started.grpc
                {
                    c.grpc_status = crate::grpc::status(trailers).or(c.grpc_status);
                }
                // hyper drops a body that reports its end without polling it again.
                if this.inner.is_end_stream()
                    && let Some(mut c) = this.completion.take()
                {
                    c.finish();
                }
            }
            Some(Err(_)) => {
                if let Some(mut c) = this.completion.take() {
                    c.error = "body_error";
                    c.finish();
                }
            }
            None => {
                if let Some(mut c) = this.completion.take() {
                    c.finish();
                }
            }
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}
