//! The route a request is recorded under: a template, never the raw path.

use std::borrow::Cow;

/// The `endpoint` label of `stellaops_request_duration_seconds` when no template is known
/// (the raw path is never a metric label). The span and `http.server.request.duration` then
/// carry no `http.route`, and the span is named by its method alone.
pub const UNMATCHED_ROUTE: &str = "unmatched";

/// Whether `route` is [`UNMATCHED_ROUTE`] (compared by text: a constant has no one address).
pub(crate) fn is_unmatched(route: &str) -> bool {
    route == UNMATCHED_ROUTE
}

/// Gives the route template of a request (`/scans/{id}`), or `None` when unknown. Templates
/// are interned by the layer (up to 1,024 distinct ones; beyond that, [`UNMATCHED_ROUTE`]), so
/// returning a borrowed one costs no allocation.
pub trait MakeRoute: Send + Sync + 'static {
    /// The template for this request.
    fn make_route<'a>(
        &self,
        method: &http::Method,
        uri: &'a http::Uri,
        extensions: &'a http::Extensions,
    ) -> Option<Cow<'a, str>>;
}

/// The route template a service reports in its response's extensions. The layer uses it when
/// it saw no route for the request: axum gives a layer no `MatchedPath` for a service
/// mounted with `nest_service`, so such a service names its own route (the
/// [`Health`](crate::services::Health) endpoints do: `/health`, `/health/ready`,
/// `/health/live` under the prefix they are nested at). Interned like every template.
///
/// ```
/// use stellaops_telemetry_tower::server::ReportedRoute;
/// let mut response = http::Response::new(());
/// response
///     .extensions_mut()
///     .insert(ReportedRoute("/files/*".into()));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportedRoute(pub Cow<'static, str>);

/// axum's `MatchedPath` when present (feature `axum`); `None` otherwise.
#[derive(Debug, Clone, Copy, Default)]
pub struct DefaultMakeRoute;

impl MakeRoute for DefaultMakeRoute {
    fn make_route<'a>(
        &self,
        _method: &http::Method,
        _uri: &'a http::Uri,
        extensions: &'a http::Extensions,
    ) -> Option<Cow<'a, str>> {
        #[cfg(feature = "axum")]
        if let Some(path) = extensions.get::<axum::extract::MatchedPath>() {
            return Some(Cow::Borrowed(path.as_str()));
        }
        let _ = extensions;
        None
    }
}

/// A closure as a route hook (it returns an owned template).
impl<F> MakeRoute for F
where
    F: Fn(&http::Method, &http::Uri, &http::Extensions) -> Option<String> + Send + Sync + 'static,
{
    fn make_route<'a>(
        &self,
        method: &http::Method,
        uri: &'a http::Uri,
        extensions: &'a http::Extensions,
    ) -> Option<Cow<'a, str>> {
        self(method, uri, extensions).map(Cow::Owned)
    }
}

/// Route templates, interned as `&'static str`: recording a request allocates nothing for its
/// route, touches no reference count (the export worker reads the same string), and the metric
/// cache compares routes by pointer.
///
/// The strings live for the process: one copy per distinct template across every layer
/// ([`MAX_TEMPLATES_PER_PROCESS`]), each layer using at most [`MAX_ROUTES`]; beyond either
/// bound a request is recorded under [`UNMATCHED_ROUTE`].
#[derive(Default)]
pub(crate) struct Routes {
    interned: parking_lot::RwLock<
        std::collections::HashMap<&'static str, (), std::hash::BuildHasherDefault<FastHasher>>,
    >,
}

/// Every template interned by any layer of the process.
static TEMPLATES: std::sync::LazyLock<
    parking_lot::Mutex<
        std::collections::HashSet<&'static str, std::hash::BuildHasherDefault<FastHasher>>,
    >,
> = std::sync::LazyLock::new(Default::default);

/// At most this many distinct templates are kept for the whole process.
const MAX_TEMPLATES_PER_PROCESS: usize = 16_384;

/// The process-wide copy of `route`, or `None` when the process bound is reached.
fn leak_once(route: &str) -> Option<&'static str> {
    let mut templates = TEMPLATES.lock();
    if let Some(found) = templates.get(route) {
        return Some(found);
    }
    if templates.len() >= MAX_TEMPLATES_PER_PROCESS {
        return None;
    }
    let leaked: &'static str = Box::leak(Box::from(route));
    templates.insert(leaked);
    Some(leaked)
}

/// A small multiply-rotate hasher for the layer's own tables: route templates (which come
/// from the application, not from clients) and the metric cache's pointer-sized keys. The
/// std hasher's flood resistance buys nothing there.
#[derive(Default)]
pub(crate) struct FastHasher(u64);

impl FastHasher {
    fn mix(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

impl std::hash::Hasher for FastHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.mix(u64::from_le_bytes(word));
        }
        for &b in chunks.remainder() {
            self.mix(u64::from(b));
        }
    }
    fn write_u16(&mut self, n: u16) {
        self.mix(u64::from(n));
    }
    fn write_u64(&mut self, n: u64) {
        self.mix(n);
    }
    fn write_usize(&mut self, n: usize) {
        self.mix(n as u64);
    }
}

/// At most this many distinct templates are interned by a layer; more fold into
/// [`UNMATCHED_ROUTE`]. The templates are the service's own (axum's `MatchedPath`, a
/// [`ReportedRoute`](super::ReportedRoute), the [`MakeRoute`](super::MakeRoute) hook), so
/// this bounds a hook that would name routes after raw paths; the metrics' series are bounded
/// by their cardinality limit besides. Three quarters of the process's bound: one layer cannot
/// take every template of the process.
const MAX_ROUTES: usize = MAX_TEMPLATES_PER_PROCESS / 4 * 3;

impl Routes {
    pub(crate) fn intern(&self, route: Option<&str>) -> &'static str {
        let Some(route) = route else {
            return UNMATCHED_ROUTE;
        };
        if let Some((found, ())) = self.interned.read().get_key_value(route) {
            return found;
        }
        let mut map = self.interned.write();
        if let Some((found, ())) = map.get_key_value(route) {
            return found;
        }
        if map.len() >= MAX_ROUTES {
            return UNMATCHED_ROUTE;
        }
        match leak_once(route) {
            Some(template) => {
                map.insert(template, ());
                template
            }
            None => UNMATCHED_ROUTE,
        }
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

/// The method as a bounded label under the layer's known methods: `None` keeps the nine
/// standard ones ([`method_label`]); a list is matched case-sensitively, `_OTHER` for the rest.
pub(crate) fn known_method(method: &http::Method, known: Option<&[&'static str]>) -> &'static str {
    match known {
        None => method_label(method),
        Some(list) => list
            .iter()
            .find(|m| **m == method.as_str())
            .copied()
            .unwrap_or("_OTHER"),
    }
}

/// A method name kept for the process (each distinct name once, like route templates).
pub(crate) fn intern_method(name: &str) -> Option<&'static str> {
    leak_once(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_template_is_one_string_for_every_layer_and_the_bound_folds_the_rest() {
        let (a, b) = (Routes::default(), Routes::default());
        let first = a.intern(Some("/scans/{id}"));
        assert!(std::ptr::eq(first, a.intern(Some("/scans/{id}"))));
        assert!(std::ptr::eq(first, b.intern(Some("/scans/{id}"))));
        assert_eq!(a.intern(None), UNMATCHED_ROUTE);
        for i in 0..MAX_ROUTES {
            let _ = a.intern(Some(&format!("/r/{i}")));
        }
        assert_eq!(a.intern(Some("/one/too/many")), UNMATCHED_ROUTE);
        // Templates already interned still resolve.
        assert!(std::ptr::eq(first, a.intern(Some("/scans/{id}"))));
        assert_eq!(b.intern(Some("/one/too/many")), "/one/too/many");
    }
}
