//! The route a request is recorded under: a template, never the raw path.

/// The route recorded when no template is known (the raw path is never a metric label).
pub const UNMATCHED_ROUTE: &str = "unmatched";

/// Gives the route template of a request (`/scans/{id}`), or `None` when unknown.
pub trait MakeRoute: Send + Sync + 'static {
    /// The template for this request.
    fn make_route(
        &self,
        method: &http::Method,
        uri: &http::Uri,
        extensions: &http::Extensions,
    ) -> Option<String>;
}

/// axum's `MatchedPath` when present (feature `axum`); `None` otherwise.
#[derive(Debug, Clone, Copy, Default)]
pub struct DefaultMakeRoute;

impl MakeRoute for DefaultMakeRoute {
    fn make_route(
        &self,
        _method: &http::Method,
        _uri: &http::Uri,
        extensions: &http::Extensions,
    ) -> Option<String> {
        #[cfg(feature = "axum")]
        if let Some(path) = extensions.get::<axum::extract::MatchedPath>() {
            return Some(path.as_str().to_owned());
        }
        let _ = extensions;
        None
    }
}

impl<F> MakeRoute for F
where
    F: Fn(&http::Method, &http::Uri, &http::Extensions) -> Option<String> + Send + Sync + 'static,
{
    fn make_route(
        &self,
        method: &http::Method,
        uri: &http::Uri,
        extensions: &http::Extensions,
    ) -> Option<String> {
        self(method, uri, extensions)
    }
}

/// The method as a bounded label: the nine standard methods, `_OTHER` for the rest (the
/// semantic conventions' rule, which also keeps a client from inventing label values).
pub(crate) fn method_label(method: &http::Method) -> &'static str {
    match *method {
        http::Method::GET => "GET",
        http::Method::POST => "POST",
        http::Method::PUT => "PUT",
        http::Method::DELETE => "DELETE",
        http::Method::PATCH => "PATCH",
        http::Method::HEAD => "HEAD",
        http::Method::OPTIONS => "OPTIONS",
        http::Method::TRACE => "TRACE",
        http::Method::CONNECT => "CONNECT",
        _ => "_OTHER",
    }
}
