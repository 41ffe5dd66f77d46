//! The client's [`ResponseFuture`].

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use super::span::ClientSpan;

pin_project_lite::pin_project! {
    /// The response future of [`ClientTelemetry`](super::ClientTelemetry): records the status
    /// and ends the client span when the response head arrives.
    pub struct ResponseFuture<F> {
        #[pin]
        future: F,
        span: ClientSpan,
    }
}

impl<F> ResponseFuture<F> {
    pub(crate) fn new(future: F, span: ClientSpan) -> Self {
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
            let _entered = this.span.span.enter();
            ready!(this.future.poll(cx))
        };
        match &result {
            Ok(response) => this.span.on_response(response.status(), response.headers()),
            Err(_) => this.span.on_failure(),
        }
        Poll::Ready(result)
    }
}
