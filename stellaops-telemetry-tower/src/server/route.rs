//! The route a request is recorded under: a template, never the raw path.

use std::borrow::Cow;
use std::sync::Arc;

/// The route recorded when no template is known (the raw path is never a metric label).
pub const UNMATCHED_ROUTE: &str = "unmatched";

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

/// Route templates, interned: one `Arc<str>` per distinct template, so recording a request
/// allocates nothing for its route and the metric cache compares routes by pointer.
#[derive(Default)]
pub(crate) struct Routes {
    interned: parking_lot::RwLock<
        std::collections::HashMap<Box<str>, Arc<str>, std::hash::BuildHasherDefault<FastHasher>>,
    >,
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

/// At most this many distinct templates are interned; more fold into [`UNMATCHED_ROUTE`].
const MAX_ROUTES: usize = 1024;

impl Routes {
    pub(crate) fn intern(&self, route: Option<&str>) -> Arc<str> {
        let route = route.unwrap_or(UNMATCHED_ROUTE);
        if let Some(found) = self.interned.read().get(route) {
            return found.clone();
        }
        let mut map = self.interned.write();
        if map.len() >= MAX_ROUTES && !map.contains_key(route) {
            return map
                .entry(UNMATCHED_ROUTE.into())
                .or_insert_with(|| Arc::from(UNMATCHED_ROUTE))
                .clone();
        }
        map.entry(route.into())
            .or_insert_with(|| Arc::from(route))
            .clone()
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
