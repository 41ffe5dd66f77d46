//! The watched incident file: the incidents every instance of a service follows.
//!
//! A JSON document `{"incidents": [ … ]}` of [`Incident`]s. Each instance reads it when it
//! changes; the API of any instance and the command line rewrite it (whole, through a
//! temporary file renamed over it, so a reader never sees half a file). A missing file is an
//! empty list. A mounted read-only copy (a Kubernetes ConfigMap) works for reading; writes to
//! it fail with a warning and the change holds on the instance that made it.

use std::collections::HashSet;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use super::{Incident, IncidentError, MAX_ACTIVE_INCIDENTS};

/// The largest incident file read, in bytes.
const MAX_FILE_BYTES: u64 = 8 * 1024 * 1024;

/// The incident file's document.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Document {
    incidents: Vec<Incident>,
}

/// Reads and writes the watched incident file.
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use stellaops_telemetry_core::{Incident, IncidentFile, IncidentTrigger};
///
/// let dir = std::env::temp_dir().join(format!("incident-file-doc-{}", std::process::id()));
/// std::fs::create_dir_all(&dir)?;
/// let path = dir.join("incidents.json");
/// let now = SystemTime::now();
/// let incident = Incident {
///     id: "inc-1".into(),
///     tenant: "acme".into(),
///     reason: "CVE triage".into(),
///     actor: "ops@example".into(),
///     trigger: IncidentTrigger::Manual,
///     started: now,
///     expires: now + Duration::from_secs(600),
/// };
/// IncidentFile::update(&path, |list| list.push(incident.clone()))?;
/// let read = IncidentFile::read(&path)?;
/// assert_eq!(read.len(), 1);
/// assert_eq!(read[0].tenant, "acme");
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy)]
pub struct IncidentFile;

impl IncidentFile {
    /// The incidents listed in `path` (expired ones included); none when it does not exist.
    ///
    /// # Errors
    ///
    /// [`IncidentError::File`] when it cannot be read, [`IncidentError::FileFormat`] when it
    /// is larger than 8 MiB, is not an incident document or lists more than the most
    /// incidents that may be active.
    pub fn read(path: &Path) -> Result<Vec<Incident>, IncidentError> {
        let io = |source| IncidentError::File {
            path: path.to_owned(),
            source,
        };
        let file = match std::fs::File::open(path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io(e)),
        };
        let mut text = Vec::new();
        file.take(MAX_FILE_BYTES + 1)
            .read_to_end(&mut text)
            .map_err(io)?;
        let format = |reason: String| IncidentError::FileFormat {
            path: path.to_owned(),
            reason,
        };
        if text.len() as u64 > MAX_FILE_BYTES {
            return Err(format(format!("larger than {MAX_FILE_BYTES} bytes")));
        }
        // An empty file is a file being written in place (truncated, not yet filled): never
        // read as "no incidents", which would stop every incident it listed. An empty list is
        // `{"incidents": []}`; a file that does not exist lists none.
        if text.iter().all(u8::is_ascii_whitespace) {
            return Err(format(
                "the file is empty (an empty list is {\"incidents\": []})".to_owned(),
            ));
        }
        let document: Document =
            serde_json::from_slice(&text).map_err(|e| format(e.to_string()))?;
        if document.incidents.len() > MAX_ACTIVE_INCIDENTS {
            return Err(format(format!(
                "lists {} incidents; at most {MAX_ACTIVE_INCIDENTS} may be active",
                document.incidents.len()
            )));
        }
        Ok(document.incidents)
    }

    /// Writes `incidents` to `path`, replacing it whole (through a temporary file in the
    /// same directory, renamed over it).
    ///
    /// # Errors
    ///
    /// [`IncidentError::File`] when the file cannot be written.
    pub fn write(path: &Path, incidents: &[Incident]) -> Result<(), IncidentError> {
        let io = |source| IncidentError::File {
            path: path.to_owned(),
            source,
        };
        let mut sorted = incidents.to_vec();
        sorted.sort_by(|a, b| a.tenant.cmp(&b.tenant));
        let text = serde_json::to_vec_pretty(&Document { incidents: sorted })
            .map_err(|e| io(std::io::Error::other(e)))?;
        let temporary = temporary_path(path);
        std::fs::write(&temporary, &text).map_err(io)?;
        std::fs::rename(&temporary, path).map_err(|e| {
            let _ = std::fs::remove_file(&temporary);
            io(e)
        })
    }

    /// Reads `path`, drops expired incidents, applies `change` and writes the result.
    ///
    /// # Errors
    ///
    /// As [`read`](IncidentFile::read) and [`write`](IncidentFile::write).
    pub fn update(
        path: &Path,
        change: impl FnOnce(&mut Vec<Incident>),
    ) -> Result<(), IncidentError> {
        let mut list = IncidentFile::read(path)?;
        prune(&mut list, SystemTime::now());
        change(&mut list);
        IncidentFile::write(path, &list)
    }
}

/// `path` with `.tmp-<pid>` appended, in the same directory (so the rename is atomic).
fn temporary_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_owned();
    name.push(format!(".tmp-{}", std::process::id()));
    path.with_file_name(name)
}

/// Replaces the tenant's entry with `incident`, or adds it.
pub(super) fn upsert(list: &mut Vec<Incident>, incident: &Incident) {
    list.retain(|i| i.tenant != incident.tenant);
    list.push(incident.clone());
}

/// Removes the tenant's entry.
pub(super) fn remove(list: &mut Vec<Incident>, tenant: &str) {
    list.retain(|i| i.tenant != tenant);
}

/// Removes the entries expired by `now`.
pub(super) fn prune(list: &mut Vec<Incident>, now: SystemTime) {
    list.retain(|i| !i.is_expired_at(now));
}

/// What the file follower remembers between reads (kept under the registry's writer lock).
#[derive(Debug, Default)]
pub(super) struct Follower {
    /// Tenants whose incident came from the file (they stop when the file drops them).
    from_file: HashSet<String>,
    /// The file's identity when last read.
    pub(super) stamp: Option<Stamp>,
    /// The last problem reported, so a broken file is reported once, not on every poll.
    reported: Option<String>,
}

impl Follower {
    pub(super) fn remember(&mut self, tenant: &str) {
        self.from_file.insert(tenant.to_owned());
    }

    pub(super) fn forget(&mut self, tenant: &str) {
        self.from_file.remove(tenant);
    }

    pub(super) fn came_from_file(&self, tenant: &str) -> bool {
        self.from_file.contains(tenant)
    }

    /// Runs `report` unless the same problem was reported last.
    pub(super) fn report_once(&mut self, e: &IncidentError, report: impl FnOnce()) {
        let text = e.to_string();
        if self.reported.as_deref() != Some(text.as_str()) {
            report();
            self.reported = Some(text);
        }
    }

    pub(super) fn clear_report(&mut self) {
        self.reported = None;
    }
}

/// What tells one version of the file from the next: its modification time, length and
/// (on Unix) inode, which every rename-over changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Stamp {
    modified: Option<SystemTime>,
    len: u64,
    inode: u64,
}

/// The file's stamp, or `None` when it does not exist.
pub(super) fn stamp(path: &Path) -> Option<Stamp> {
    let m = std::fs::metadata(path).ok()?;
    #[cfg(unix)]
    let inode = std::os::unix::fs::MetadataExt::ino(&m);
    #[cfg(not(unix))]
    let inode = 0;
    Some(Stamp {
        modified: m.modified().ok(),
        len: m.len(),
        inode,
    })
}
