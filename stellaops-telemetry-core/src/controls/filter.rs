//! The per-layer filter that applies the controls: fixed levels for the SDK's own targets,
//! the service's level (or `RUST_LOG` until a run-time change), and tenant log levels.

use tracing_core::span;
use tracing_core::subscriber::Interest;
use tracing_core::{Event, LevelFilter, Metadata, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::{Context, Filter};
use tracing_subscriber::registry::{LookupSpan, SpanRef};

use super::{AUDIT_TARGET, ControlError, Controls, shown};
use crate::profile::LogLevel;

/// The environment variable the `env` directives of [`ControlledFilter::new`] come from.
const RUST_LOG: &str = "RUST_LOG";

/// A per-layer filter following the pipeline's [`Controls`].
///
/// - Static targets (module-path prefixes: the target itself or below it after `::`) keep a
///   fixed level; the longest matching rule decides. [`AUDIT_TARGET`] is always enabled at
///   `INFO` and above.
/// - Every other event (a service event) is enabled at the controls' level, or by the
///   `RUST_LOG` directives until the first run-time level change.
/// - When tenant overrides set a log level, a service event below the service's level is
///   still enabled when the tenant of its work has an override level that keeps it.
///
/// Callsite interest is cached: `always` within the service's level, `sometimes` when only a
/// tenant override could keep it, `never` otherwise; every change rebuilds the cache.
pub(crate) struct ControlledFilter {
    controls: Controls,
    /// Target prefixes and their levels, longest first.
    statics: Box<[(Box<str>, LevelFilter)]>,
    /// The most verbose static level (the audit target's `INFO` included).
    statics_max: LevelFilter,
    /// The `RUST_LOG` directives, deciding service events until a run-time level change.
    env: Option<EnvFilter>,
    /// Whether spans that name a tenant are let through below the level when a tenant level
    /// could apply: for the log layers, whose spans only carry the context of their events
    /// (the span-export layer keeps to the level).
    tenant_spans: bool,
}

impl ControlledFilter {
    /// A filter over `controls` with fixed `statics` and, when given, `RUST_LOG`-syntax
    /// directives `env` (a directive that does not parse is [`ControlError::InvalidFilter`]).
    pub(crate) fn new(
        controls: Controls,
        statics: Vec<(String, LevelFilter)>,
        env: Option<&str>,
    ) -> Result<Self, ControlError> {
        let mut statics: Vec<(Box<str>, LevelFilter)> = statics
            .into_iter()
            .map(|(target, level)| (target.into_boxed_str(), level))
            .collect();
        statics.sort_by_key(|rule| std::cmp::Reverse(rule.0.len()));
        let statics_max = statics
            .iter()
            .map(|(_, level)| *level)
            .fold(LevelFilter::INFO, std::cmp::max);
        // An empty `RUST_LOG` counts as unset.
        let env = env
            .filter(|d| !d.trim().is_empty())
            .map(parse_env)
            .transpose()?;
        Ok(ControlledFilter {
            controls,
            statics: statics.into_boxed_slice(),
            statics_max,
            env,
            tenant_spans: false,
        })
    }

    /// The same filter, letting through spans that name a tenant (`tenant.id` or `tenant`)
    /// below the level while a tenant level could apply, so that the events inside them find
    /// their tenant. For layers whose spans only carry context (the log layers).
    pub(crate) fn with_tenant_spans(mut self) -> Self {
        self.tenant_spans = true;
        self
    }

    /// The fixed level of `target`, when a static rule (or the audit target) decides it.
    fn fixed_level(&self, target: &str) -> Option<LevelFilter> {
        let rule = self
            .statics
            .iter()
            .find(|(prefix, _)| under(target, prefix))
            .map(|(_, level)| *level);
        if target == AUDIT_TARGET {
            return Some(rule.map_or(LevelFilter::INFO, |l| l.max(LevelFilter::INFO)));
        }
        rule
    }

    /// The `RUST_LOG` directives while they still decide (no run-time level change yet).
    fn active_env(&self, pinned: bool) -> Option<&EnvFilter> {
        if pinned { None } else { self.env.as_ref() }
    }

    /// Whether the service's level (or `RUST_LOG`) keeps a service event or span.
    fn service_enabled<S>(&self, meta: &Metadata<'_>, cx: &Context<'_, S>) -> bool
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        let (level, pinned) = self.controls.level_state();
        match self.active_env(pinned) {
            Some(env) => Filter::<S>::enabled(env, meta, cx),
            None => *meta.level() <= level.to_filter(),
        }
    }

    /// Whether some tenant override's level could keep `meta` (one load).
    fn within_overrides(&self, meta: &Metadata<'_>) -> bool {
        self.controls
            .max_override_level()
            .is_some_and(|max| *meta.level() <= max.to_filter())
    }

    /// Whether the override level of `tenant` keeps `meta`.
    fn tenant_keeps(&self, meta: &Metadata<'_>, tenant: Option<&str>) -> bool {
        tenant
            .and_then(|t| self.controls.override_for(t))
            .and_then(|o| o.log_level)
            .is_some_and(|level| *meta.level() <= level.to_filter())
    }

    /// Whether the tenant of the work — the nearest of `spans` recording one, else the
    /// current request context — has an override level keeping `meta`.
    fn work_tenant_keeps<'s, S>(
        &self,
        meta: &Metadata<'_>,
        spans: impl Iterator<Item = SpanRef<'s, S>>,
    ) -> bool
    where
        S: Subscriber + for<'a> LookupSpan<'a> + 's,
    {
        for span in spans {
            if let Some(tenant) = crate::logs::span_tenant(&span) {
                return self.tenant_keeps(meta, Some(&tenant));
            }
        }
        crate::RequestContext::map_current(|cx| {
            self.tenant_keeps(meta, cx.and_then(|c| c.tenant()))
        })
    }
}

impl<S> Filter<S> for ControlledFilter
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn enabled(&self, meta: &Metadata<'_>, cx: &Context<'_, S>) -> bool {
        if let Some(fixed) = self.fixed_level(meta.target()) {
            return *meta.level() <= fixed;
        }
        if self.service_enabled(meta, cx) {
            return true;
        }
        if !self.within_overrides(meta) {
            return false;
        }
        if meta.is_event() {
            // The event's own scope is known only in `event_enabled`, which decides.
            return true;
        }
        if self.tenant_spans
            && meta
                .fields()
                .iter()
                .any(|f| matches!(f.name(), "tenant.id" | "tenant"))
        {
            // Its tenant is known only once it is recorded: keep it for its events to ask.
            return true;
        }
        let spans = cx.lookup_current().into_iter().flat_map(|s| s.scope());
        self.work_tenant_keeps(meta, spans)
    }

    fn event_enabled(&self, event: &Event<'_>, cx: &Context<'_, S>) -> bool {
        let meta = event.metadata();
        // `enabled` let the event through for a reason other than a tenant override.
        if !self.within_overrides(meta)
            || self.fixed_level(meta.target()).is_some()
            || self.service_enabled(meta, cx)
        {
            return true;
        }
        let spans = cx.event_scope(event).into_iter().flatten();
        self.work_tenant_keeps(meta, spans)
    }

    fn callsite_enabled(&self, meta: &'static Metadata<'static>) -> Interest {
        if let Some(fixed) = self.fixed_level(meta.target()) {
            return if *meta.level() <= fixed {
                Interest::always()
            } else {
                Interest::never()
            };
        }
        let (level, pinned) = self.controls.level_state();
        let service = match self.active_env(pinned) {
            Some(env) => Filter::<S>::callsite_enabled(env, meta),
            None if *meta.level() <= level.to_filter() => Interest::always(),
            None => Interest::never(),
        };
        if !service.is_always() && self.within_overrides(meta) {
            return Interest::sometimes();
        }
        service
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        let (level, pinned) = self.controls.level_state();
        let service = match self.active_env(pinned) {
            Some(env) => Filter::<S>::max_level_hint(env)?,
            None => level.to_filter(),
        };
        let tenants = self
            .controls
            .max_override_level()
            .map_or(LevelFilter::OFF, LogLevel::to_filter);
        Some(service.max(tenants).max(self.statics_max))
    }

    fn on_new_span(&self, attrs: &span::Attributes<'_>, id: &span::Id, cx: Context<'_, S>) {
        crate::logs::capture_context_fields(attrs, id, &cx);
        if let Some(env) = self.active_env(self.controls.level_state().1) {
            Filter::<S>::on_new_span(env, attrs, id, cx);
        }
    }

    fn on_record(&self, id: &span::Id, values: &span::Record<'_>, cx: Context<'_, S>) {
        crate::logs::update_context_fields(id, values, &cx);
        if let Some(env) = self.active_env(self.controls.level_state().1) {
            Filter::<S>::on_record(env, id, values, cx);
        }
    }

    fn on_enter(&self, id: &span::Id, cx: Context<'_, S>) {
        if let Some(env) = self.active_env(self.controls.level_state().1) {
            Filter::<S>::on_enter(env, id, cx);
        }
    }

    fn on_exit(&self, id: &span::Id, cx: Context<'_, S>) {
        if let Some(env) = self.active_env(self.controls.level_state().1) {
            Filter::<S>::on_exit(env, id, cx);
        }
    }

    fn on_close(&self, id: span::Id, cx: Context<'_, S>) {
        if let Some(env) = self.active_env(self.controls.level_state().1) {
            Filter::<S>::on_close(env, id, cx);
        }
    }
}

/// Whether `target` is `prefix` or a module below it.
fn under(target: &str, prefix: &str) -> bool {
    target
        .strip_prefix(prefix)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with("::"))
}

/// Parses `RUST_LOG`-syntax directives, naming the first one that does not parse.
fn parse_env(directives: &str) -> Result<EnvFilter, ControlError> {
    let builder = EnvFilter::builder();
    builder.parse(directives).map_err(|error| {
        let bad = directives
            .split(',')
            .find(|d| !d.is_empty() && EnvFilter::builder().parse(d).is_err())
            .unwrap_or(directives);
        ControlError::InvalidFilter {
            variable: RUST_LOG,
            directive: shown(bad),
            reason: shown(&error.to_string()),
        }
    })
}
