//! The incidents' background thread: ends expired incidents and follows the incident file.
//!
//! Started by the first incident (or at start when a file is followed); it sleeps until the
//! next expiry or file poll, and ends when the pipeline shuts down or is dropped.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::thread::Thread;
use std::time::{Duration, SystemTime};

use parking_lot::Mutex;

use super::{Incidents, Inner};

/// How often the incident file is checked for a change.
pub(super) const FILE_POLL: Duration = Duration::from_millis(100);

/// The longest the thread sleeps without looking whether its pipeline is gone.
const IDLE: Duration = Duration::from_secs(1);

/// The handle of the background thread.
#[derive(Debug, Default)]
pub(super) struct Worker {
    thread: Mutex<Option<Thread>>,
    stop: Arc<AtomicBool>,
}

impl Worker {
    /// Starts the thread (once) or wakes it.
    pub(super) fn wake(&self, inner: Weak<Inner>) {
        if self.stop.load(Ordering::Acquire) {
            return;
        }
        let mut thread = self.thread.lock();
        if let Some(t) = thread.as_ref() {
            t.unpark();
            return;
        }
        let stop = self.stop.clone();
        let spawned = std::thread::Builder::new()
            .name("stellaops-incidents".to_owned())
            .spawn(move || run(&inner, &stop));
        // Without the thread, expiry still holds (readers check it), only the audit line of
        // the expiry and the file follower are missing.
        if let Ok(handle) = spawned {
            *thread = Some(handle.thread().clone());
        }
    }

    /// Has the thread end.
    pub(super) fn stop(&self) {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.lock().as_ref() {
            t.unpark();
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.stop();
    }
}

fn run(inner: &Weak<Inner>, stop: &AtomicBool) {
    while !stop.load(Ordering::Acquire) {
        let Some(inner) = inner.upgrade() else {
            return;
        };
        let incidents = Incidents { inner };
        let next_expiry = incidents.sweep_expired();
        let follows = incidents.inner.file.is_some();
        if follows {
            incidents.poll_file();
        }
        drop(incidents);
        let mut wait = if follows { FILE_POLL } else { IDLE };
        if let Some(expiry) = next_expiry {
            let until = expiry
                .duration_since(SystemTime::now())
                .unwrap_or(Duration::ZERO);
            wait = wait.min(until.max(Duration::from_millis(1)));
        }
        std::thread::park_timeout(wait);
    }
}
