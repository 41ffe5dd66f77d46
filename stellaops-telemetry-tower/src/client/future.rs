//! The client's [`ResponseFuture`].

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tracing::Span;

pin_project_lite::pin_project! {
    /// The response future of [`ClientTelemetry`](super::ClientTelemetry): records the status
    /// and ends the client span when the response head arrives.
    pub struct ResponseFuture<F> {
        #[pin]
        future: F,
        span: Span,
    }
}

impl<F> ResponseFuture<F> {
    pub(crate) fn new(future: F, span: Span) -> Self {
        ResponseFuture { future, span }
    }
}

impl<F, RB, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<http::Response<RB>, E>>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = {
            let _entered = this.span.enter();
            ready!(this.future.poll(cx))
        };
        match &result {
            Ok(response) => {
                let status = response.status().as_u16();
                this.span
                    .record("http.response.status_code", i64::from(status));
                if status >= 400 {
                    this.span.record("otel.status_code", "ERROR");
                    let mut code = itoa::Buffer::new();
                    this.span.record("error.type", code.format(status));
                }
            }
            Err(_) => {
                this.span.record("otel.status_code", "ERROR");
                this.span.record("error.type", "_OTHER");
            }
        }
        Poll::Ready(result)
    }
}
