//! Notification hooks: told of every incident start, extension, stop and expiry, on a thread
//! of their own so that a slow hook never delays the caller.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};

use parking_lot::{Mutex, RwLock};
use serde::Serialize;
use tracing::dispatcher::WeakDispatch;

use super::Incident;

/// How many notifications wait for the hooks before new ones are dropped (and counted).
const QUEUE: usize = 1024;

/// What happened to an incident.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IncidentEventKind {
    /// It started.
    Started,
    /// It was started again while active: its expiry or reason changed.
    Extended,
    /// It was stopped before its expiry.
    Stopped,
    /// It reached its expiry.
    Expired,
}

impl IncidentEventKind {
    /// Every kind, in counter order.
    pub const ALL: [IncidentEventKind; 4] = [
        IncidentEventKind::Started,
        IncidentEventKind::Extended,
        IncidentEventKind::Stopped,
        IncidentEventKind::Expired,
    ];

    /// The name written to the audit line (`outcome`) and the counters.
    pub fn as_str(self) -> &'static str {
        match self {
            IncidentEventKind::Started => "started",
            IncidentEventKind::Extended => "extended",
            IncidentEventKind::Stopped => "stopped",
            IncidentEventKind::Expired => "expired",
        }
    }
}

/// One incident change, as the hooks receive it (and a webhook sends it, as JSON).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct IncidentEvent {
    /// What happened.
    pub kind: IncidentEventKind,
    /// The incident, as it is after the change.
    pub incident: Incident,
    /// Who made the change (for an expiry, `expiry`).
    pub actor: String,
}

/// Told of every incident change, on the hooks' own thread, in order.
///
/// A hook may take its time (the caller never waits for it), but while it runs the next
/// notifications queue up; beyond 1,024 waiting they are dropped and counted
/// ([`Incidents::dropped_notifications`](crate::Incidents::dropped_notifications)).
///
/// ```
/// use std::sync::Arc;
/// use stellaops_telemetry_core::{IncidentEvent, IncidentHook};
///
/// #[derive(Debug)]
/// struct Pager;
///
/// impl IncidentHook for Pager {
///     fn notify(&self, event: &IncidentEvent) {
///         eprintln!("incident {} for {}", event.kind.as_str(), event.incident.tenant);
///     }
/// }
///
/// let hook: Arc<dyn IncidentHook> = Arc::new(Pager);
/// # let _ = hook;
/// ```
pub trait IncidentHook: Send + Sync + fmt::Debug + 'static {
    /// Called once for each change.
    fn notify(&self, event: &IncidentEvent);
}

/// The hooks, their queue and thread.
pub(super) struct Hooks {
    hooks: Arc<RwLock<Vec<Arc<dyn IncidentHook>>>>,
    sender: Mutex<Option<SyncSender<IncidentEvent>>>,
    dropped: AtomicU64,
}

impl Hooks {
    pub(super) fn new(hooks: Vec<Arc<dyn IncidentHook>>) -> Hooks {
        Hooks {
            hooks: Arc::new(RwLock::new(hooks)),
            sender: Mutex::new(None),
            dropped: AtomicU64::new(0),
        }
    }

    /// Adds a hook, told of the changes from now on.
    pub(super) fn add(&self, hook: Arc<dyn IncidentHook>) {
        self.hooks.write().push(hook);
    }

    /// Queues `event` for the hooks (starting their thread on first use); never waits. The
    /// hooks run inside `dispatch` (the pipeline's), so what they log goes where its lines go.
    pub(super) fn notify(&self, event: IncidentEvent, dispatch: Option<&WeakDispatch>) {
        if self.hooks.read().is_empty() {
            return;
        }
        let mut sender = self.sender.lock();
        if sender.is_none() {
            let (tx, rx) = std::sync::mpsc::sync_channel(QUEUE);
            let hooks = self.hooks.clone();
            let dispatch = dispatch.cloned();
            let spawned = std::thread::Builder::new()
                .name("stellaops-incident-hooks".to_owned())
                .spawn(move || deliver(&hooks, &rx, dispatch.as_ref()));
            if spawned.is_err() {
                self.dropped.fetch_add(1, Ordering::Relaxed);
                return;
            }
            *sender = Some(tx);
        }
        if let Some(tx) = sender.as_ref() {
            match tx.try_send(event) {
                Ok(()) => {}
                Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                    self.dropped.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }

    pub(super) fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Closes the queue: the thread delivers what is queued and ends.
    pub(super) fn stop(&self) {
        self.sender.lock().take();
    }
}

/// The hooks' thread: each event to each hook, a panicking hook caught so the others still run.
fn deliver(
    hooks: &RwLock<Vec<Arc<dyn IncidentHook>>>,
    rx: &Receiver<IncidentEvent>,
    dispatch: Option<&WeakDispatch>,
) {
    while let Ok(event) = rx.recv() {
        // A copy of the list: a hook added meanwhile never waits behind a slow one.
        let hooks: Vec<Arc<dyn IncidentHook>> = hooks.read().clone();
        let run = || {
            for hook in &hooks {
                let _ =
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| hook.notify(&event)));
            }
        };
        match dispatch.and_then(WeakDispatch::upgrade) {
            Some(d) => tracing::dispatcher::with_default(&d, run),
            None => run(),
        }
    }
}
