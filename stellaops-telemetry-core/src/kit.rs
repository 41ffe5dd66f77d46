//! The offline kit: everything an air-gapped site needs to run the telemetry stack for one
//! profile, gathered in one folder with an import guide and a sha256 manifest (signed when a
//! key is given), so that it can be carried in on media and checked there.
//!
//! ```
//! use stellaops_telemetry_core::{Profile, bundle::SigningKey, kit};
//!
//! let dir = tempfile::tempdir()?;
//! let out = dir.path().join("kit");
//! let key = SigningKey::generate()?;
//! let written = kit::write(&kit::KitSpec::profile(&Profile::airgap()), &out, Some(&key))?;
//! assert!(written.files.iter().any(|f| f.path == "IMPORT.md"));
//!
//! let checked = kit::verify(&out, Some(&key.public_key()))?;
//! assert_eq!(checked.signed_by.as_deref(), Some(key.key_id().as_str()));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! A kit folder holds, besides the generated files:
//!
//! ```text
//! IMPORT.md        which file goes where, and the commands that load and check it
//! manifest.json    every other file's path, size and sha256, the profile and the tool
//!                  (canonical JSON: sorted keys, no spaces)
//! SHA256SUMS       the same digests for `sha256sum -c SHA256SUMS`
//! manifest.sig     a DSSE envelope (Ed25519) over manifest.json, when a key was given
//! ```

use std::fmt::Write as _;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::Profile;
use crate::artefacts::{self, ArtefactError, ArtefactKind, Tenant};
use crate::bundle::{
    BundleError, Envelope, FileEntry, KIT_MANIFEST_PAYLOAD_TYPE, SigningKey, VerifyingKey,
};

/// The kit layout version this tool writes and reads.
pub const KIT_FORMAT_VERSION: u64 = 1;
/// The manifest's file name.
pub const MANIFEST_FILE: &str = "manifest.json";
/// The signature's file name.
pub const SIGNATURE_FILE: &str = "manifest.sig";
/// The `sha256sum -c` file's name.
pub const SUMS_FILE: &str = "SHA256SUMS";
/// The import guide's file name.
pub const GUIDE_FILE: &str = "IMPORT.md";

/// The most files a kit folder may hold when verified (a kit holds a few dozen).
const MAX_FILES: usize = 4096;
/// The largest manifest or signature read (a kit's are a few KiB).
const MAX_SMALL_FILE_BYTES: u64 = 1024 * 1024;
/// The deepest folder nesting walked when verifying.
const MAX_DEPTH: usize = 8;

/// `manifest.json` of a kit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KitManifest {
    /// Every file of the kit but the manifest, its signature and `SHA256SUMS`, by path.
    pub files: Vec<FileEntry>,
    /// [`KIT_FORMAT_VERSION`].
    pub format_version: u64,
    /// The profile the kit was made for.
    pub profile: String,
    /// The tool that wrote it: `stella-telemetry <version>`.
    pub tool: String,
}

/// One file of a kit, by its path in the kit folder (`/`-separated).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KitFile {
    /// The path in the kit folder, e.g. `collector/collector-airgap.yaml`.
    pub path: String,
    /// Its contents.
    pub contents: Vec<u8>,
}

/// What [`write()`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrittenKit {
    /// The files gathered (the import guide included), in path order.
    pub files: Vec<KitFile>,
    /// The manifest written.
    pub manifest: KitManifest,
    /// The id of the key that signed it, when one did.
    pub signed_by: Option<String>,
}

/// What [`verify()`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct VerifiedKit {
    /// The manifest, every file of which has its listed size and sha256.
    pub manifest: KitManifest,
    /// The id of the key whose signature verified, when a key was given.
    pub signed_by: Option<String>,
    /// The key ids named by an envelope that was not checked (no key given).
    pub unchecked_signers: Vec<String>,
}

/// What can go wrong writing or verifying a kit.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KitError {
    /// A generator failed.
    #[error(transparent)]
    Artefact(#[from] ArtefactError),
    /// A file or folder that cannot be read, written or listed.
    #[error("cannot {action} `{}`", path.display())]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file or folder.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The output folder exists and is not empty.
    #[error("`{}` is not empty: a kit is written into an empty or new folder", path.display())]
    NotEmpty {
        /// The folder.
        path: PathBuf,
    },
    /// `manifest.json` that does not parse, or is not this tool's format.
    #[error("the kit's manifest.json is malformed: {reason}")]
    MalformedManifest {
        /// Why.
        reason: String,
    },
    /// A file the manifest lists is missing.
    #[error("`{path}` is listed in the manifest but missing")]
    MissingFile {
        /// The path in the kit.
        path: String,
    },
    /// A file in the folder the manifest does not list (or a link, or a folder too deep).
    #[error("`{path}` is in the kit folder but not in its manifest")]
    ExtraFile {
        /// The path in the kit.
        path: String,
    },
    /// A file whose size or digest is not the manifest's.
    #[error("`{path}` does not match the manifest ({what} differs)")]
    Mismatch {
        /// The path in the kit.
        path: String,
        /// `size` or `sha256`.
        what: &'static str,
    },
    /// `SHA256SUMS` does not say what the manifest says.
    #[error("SHA256SUMS does not match manifest.json")]
    SumsMismatch,
    /// A key was given but the kit is not signed.
    #[error("the kit is not signed (no manifest.sig) but a key was given to check it")]
    Unsigned,
    /// The signature does not verify.
    #[error("the kit's signature does not verify")]
    Signature(#[source] BundleError),
}

/// What a kit is made for: a profile and, optionally, the site's tenants (whose storage
/// overrides it then carries).
#[derive(Debug, Clone, Copy)]
pub struct KitSpec<'a> {
    /// The profile whose collector configuration the kit carries.
    pub profile: &'a Profile,
    /// The tenants (a tenants file, read with [`artefacts::read_tenants`]) whose Loki and
    /// Tempo overrides and Prometheus scrape job go into `storage/`; none without them.
    pub tenants: Option<&'a [Tenant]>,
}

impl<'a> KitSpec<'a> {
    /// A kit for `profile`, without storage overrides.
    pub fn profile(profile: &'a Profile) -> KitSpec<'a> {
        KitSpec {
            profile,
            tenants: None,
        }
    }
}

/// The files of the kit: the profile's collector configuration (and its two-tier variant
/// when it has one), the dashboards, the alert rules and their tests, the Alertmanager
/// configuration, the storage configuration when tenants are given, and the import guide,
/// in path order.
///
/// # Errors
///
/// [`KitError::Artefact`] when a generator fails.
pub fn files(spec: &KitSpec<'_>) -> Result<Vec<KitFile>, KitError> {
    let profile = spec.profile;
    let routes = spec
        .tenants
        .map_or(artefacts::TenantRoutes::NONE, |tenants| {
            artefacts::TenantRoutes {
                tenants,
                source: "the site's tenants file",
            }
        });
    let mut collector = vec![artefacts::collector_for(profile, routes)?];
    collector.extend(artefacts::collector_tiers(profile, routes)?);
    let storage = spec
        .tenants
        .map(|tenants| artefacts::storage(tenants, "the site's tenants file"))
        .unwrap_or_default();
    let mut sections = vec![
        Section {
            dir: "collector",
            files: collector,
        },
        Section {
            dir: "storage",
            files: storage,
        },
        Section {
            dir: "dashboards",
            files: artefacts::generate(ArtefactKind::Dashboards)?,
        },
        Section {
            dir: "rules",
            files: artefacts::generate(ArtefactKind::Alerts)?,
        },
        Section {
            dir: "alertmanager",
            files: artefacts::generate(ArtefactKind::Alertmanager)?,
        },
    ];
    sections.retain(|s| !s.files.is_empty());
    let mut files: Vec<KitFile> = sections
        .iter()
        .flat_map(|section| {
            section.files.iter().map(|a| KitFile {
                path: format!("{}/{}", section.dir, a.file_name),
                contents: a.contents.clone().into_bytes(),
            })
        })
        .collect();
    files.push(KitFile {
        path: GUIDE_FILE.to_owned(),
        contents: guide(profile, &files).into_bytes(),
    });
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(files)
}

/// A folder of the kit and the generated files it holds.
struct Section {
    dir: &'static str,
    files: Vec<artefacts::Artefact>,
}

/// The import guide: for each folder present, where its files go and how to check them.
fn guide(profile: &Profile, files: &[KitFile]) -> String {
    let has = |dir: &str| files.iter().any(|f| f.path.starts_with(&format!("{dir}/")));
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# StellaOps telemetry offline kit: profile `{}`\n",
        profile.name
    );
    let _ = writeln!(
        out,
        "Generated by stella-telemetry {}. Check the kit before importing anything:\n\n\
         ```sh\nsha256sum -c SHA256SUMS\nstella-telemetry kit verify --pub SIGNER.pem.pub .   # when the kit is signed\n```\n",
        env!("CARGO_PKG_VERSION")
    );
    for (dir, text) in GUIDE_SECTIONS {
        if has(dir) {
            let _ = writeln!(out, "{text}");
        }
    }
    out
}

/// The guide's text for each folder.
const GUIDE_SECTIONS: [(&str, &str); 5] = [
    (
        "collector",
        "## collector/\n\n\
         The OpenTelemetry Collector configuration. Install it as the collector's configuration \
         file (for the contrib distribution: `/etc/otelcol-contrib/config.yaml`), check it with \
         `otelcol-contrib validate --config=/etc/otelcol-contrib/config.yaml`, then restart the \
         collector. Certificates, keys and token files it names are the site's own. With \
         several collector replicas, use the `-tier1-loadbalancer` file on the replicas that \
         receive from services and the `-tier2-sampling` file on the tail-sampling replicas \
         (when the profile has them), so that sampling sees whole traces. Set \
         `STELLAOPS_FALLBACK_TENANT` in the collector's environment to the Loki and Tempo tenant \
         of records that name none (`stellaops` unless set). Where the collector tail-samples, \
         sampled traces reach Tempo through one exporter per tenant of the tenants file the kit \
         was made with (none without `--tenants`: then every sampled trace is stored under the \
         fallback tenant); make the kit again when tenants are added, or the \
         `CollectorTracesOfUnlistedTenant` alert fires.\n",
    ),
    (
        "storage",
        "## storage/\n\n\
         Per-tenant storage settings. `loki-overrides.yaml` is Loki's runtime configuration \
         (the file `runtime_config.file` names; Loki reloads it on its own), \
         `tempo-overrides.yaml` is Tempo's per-tenant overrides file \
         (`overrides.per_tenant_override_config`), and `prometheus-scrape.yaml` holds the \
         scrape jobs to merge under `scrape_configs:` in prometheus.yml; check the result with \
         `promtool check config prometheus.yml` before reloading Prometheus. The scrape job \
         presents the token in `/etc/prometheus/stellaops/collector-scrape.token`, which the \
         collector checks against its own `prometheus-scrape.token` (in \
         `/var/run/secrets/stellaops/authority`): both files must hold the same token.\n",
    ),
    (
        "dashboards",
        "## dashboards/\n\n\
         Grafana dashboards. Put them in a folder served by a Grafana dashboard provider \
         (provisioning), or import each one:\n\n\
         ```sh\nfor f in dashboards/*.json; do\n  jq '{dashboard: ., overwrite: true}' \"$f\" |\n    \
         curl -fsS -H 'Content-Type: application/json' -u admin --data @- http://GRAFANA:3000/api/dashboards/db\n\
         done\n```\n",
    ),
    (
        "rules",
        "## rules/\n\n\
         Prometheus alert rules and their unit tests. Check and test them, copy the rule files \
         (not the `.test.yaml` files) to the folder Prometheus's `rule_files` names, and reload \
         Prometheus:\n\n\
         ```sh\ncd rules && for f in *.yaml; do case \"$f\" in *.test.yaml) promtool test rules \"$f\";; \
         *) promtool check rules \"$f\";; esac; done\ncurl -X POST http://PROMETHEUS:9090/-/reload\n```\n",
    ),
    (
        "alertmanager",
        "## alertmanager/\n\n\
         The Alertmanager configuration: critical alerts to the pager receiver, warnings to the \
         chat receiver, grouped by alert, service and tenant, a critical alert silencing the \
         same alert's warning. Replace the two placeholder webhook URLs (under `.invalid` hosts) \
         with the site's, check it with `amtool check-config alertmanager.yaml`, install it as \
         Alertmanager's configuration file and reload Alertmanager \
         (`curl -X POST http://ALERTMANAGER:9093/-/reload`).\n",
    ),
];

/// Writes the kit for `spec` into `dir` (created; it must be new or empty): its files,
/// `manifest.json`, `SHA256SUMS`, and `manifest.sig` when `key` is given.
///
/// # Errors
///
/// [`KitError::NotEmpty`] when `dir` holds anything, [`KitError::Artefact`] when a generator
/// fails, [`KitError::Io`] naming what cannot be written.
pub fn write(
    spec: &KitSpec<'_>,
    dir: &Path,
    key: Option<&SigningKey>,
) -> Result<WrittenKit, KitError> {
    let profile = spec.profile;
    let files = files(spec)?;
    let not_empty = fs::read_dir(dir).is_ok_and(|mut entries| entries.next().is_some());
    if not_empty {
        return Err(KitError::NotEmpty {
            path: dir.to_path_buf(),
        });
    }
    let manifest = KitManifest {
        files: files
            .iter()
            .map(|f| FileEntry {
                path: f.path.clone(),
                sha256: crate::bundle::sha256_hex(&f.contents),
                size: f.contents.len() as u64,
            })
            .collect(),
        format_version: KIT_FORMAT_VERSION,
        profile: profile.name.clone(),
        tool: format!("stella-telemetry {}", env!("CARGO_PKG_VERSION")),
    };
    let manifest_json = canonical(&manifest)?;
    for file in &files {
        put(&dir.join(&file.path), &file.contents)?;
    }
    put(&dir.join(MANIFEST_FILE), &manifest_json)?;
    put(&dir.join(SUMS_FILE), sums(&manifest).as_bytes())?;
    let signed_by = match key {
        Some(key) => {
            let envelope = Envelope::sign_as(KIT_MANIFEST_PAYLOAD_TYPE, &manifest_json, key);
            let json = envelope.to_json().map_err(KitError::Signature)?;
            put(&dir.join(SIGNATURE_FILE), &json)?;
            Some(key.key_id())
        }
        None => None,
    };
    Ok(WrittenKit {
        files,
        manifest,
        signed_by,
    })
}

fn canonical(manifest: &KitManifest) -> Result<Vec<u8>, KitError> {
    serde_json::to_vec(manifest).map_err(|e| KitError::MalformedManifest {
        reason: e.to_string(),
    })
}

/// `SHA256SUMS`: `<sha256>  <path>` per file, as `sha256sum` writes it.
fn sums(manifest: &KitManifest) -> String {
    manifest
        .files
        .iter()
        .map(|f| format!("{}  {}\n", f.sha256, f.path))
        .collect()
}

fn put(path: &Path, contents: &[u8]) -> Result<(), KitError> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).map_err(|source| KitError::Io {
            action: "create",
            path: parent.to_path_buf(),
            source,
        })?;
    }
    fs::write(path, contents).map_err(|source| KitError::Io {
        action: "write",
        path: path.to_path_buf(),
        source,
    })
}

/// Checks the kit in `dir`: every file the manifest lists is there with its size and sha256,
/// no other file is (links and folders deeper than 8 levels count as extra), `SHA256SUMS`
/// says the same, and, when `key` is given, `manifest.sig` signs `manifest.json` with it.
///
/// # Errors
///
/// The [`KitError`] naming the first problem found.
pub fn verify(dir: &Path, key: Option<&VerifyingKey>) -> Result<VerifiedKit, KitError> {
    let manifest_json = read_small(&dir.join(MANIFEST_FILE))?;
    let manifest: KitManifest =
        serde_json::from_slice(&manifest_json).map_err(|e| KitError::MalformedManifest {
            reason: e.to_string(),
        })?;
    if manifest.format_version != KIT_FORMAT_VERSION {
        return Err(KitError::MalformedManifest {
            reason: format!(
                "format version {} (this tool reads {KIT_FORMAT_VERSION})",
                manifest.format_version
            ),
        });
    }
    if canonical(&manifest)? != manifest_json {
        return Err(KitError::MalformedManifest {
            reason: "not in canonical form".to_owned(),
        });
    }
    if !manifest.files.windows(2).all(|w| w[0].path < w[1].path) {
        return Err(KitError::MalformedManifest {
            reason: "files are not sorted by path, or one is listed twice".to_owned(),
        });
    }
    check_listing(dir, &manifest)?;
    if read_small(&dir.join(SUMS_FILE))? != sums(&manifest).as_bytes() {
        return Err(KitError::SumsMismatch);
    }
    let signature = dir.join(SIGNATURE_FILE);
    let envelope = match fs::symlink_metadata(&signature) {
        Ok(_) => Some(Envelope::from_json(&read_small(&signature)?).map_err(KitError::Signature)?),
        Err(_) => None,
    };
    let (signed_by, unchecked_signers) = match (key, envelope) {
        (Some(key), Some(envelope)) => {
            let id = envelope
                .verify_as(KIT_MANIFEST_PAYLOAD_TYPE, &manifest_json, key)
                .map_err(KitError::Signature)?;
            (Some(id), Vec::new())
        }
        (Some(_), None) => return Err(KitError::Unsigned),
        (None, Some(envelope)) => (None, envelope.key_ids()),
        (None, None) => (None, Vec::new()),
    };
    Ok(VerifiedKit {
        manifest,
        signed_by,
        unchecked_signers,
    })
}

/// Every listed file matches; every file present is listed.
fn check_listing(dir: &Path, manifest: &KitManifest) -> Result<(), KitError> {
    for entry in &manifest.files {
        if !is_safe_path(&entry.path) {
            return Err(KitError::MalformedManifest {
                reason: format!(
                    "unsafe path `{}`",
                    entry.path.chars().take(128).collect::<String>()
                ),
            });
        }
        let path = dir.join(&entry.path);
        let metadata = match fs::symlink_metadata(&path) {
            Ok(m) if m.is_file() => m,
            _ => {
                return Err(KitError::MissingFile {
                    path: entry.path.clone(),
                });
            }
        };
        let mismatch = |what| KitError::Mismatch {
            path: entry.path.clone(),
            what,
        };
        if metadata.len() != entry.size {
            return Err(mismatch("size"));
        }
        if sha256_of_file(&path, entry.size)? != entry.sha256 {
            return Err(mismatch("sha256"));
        }
    }
    let mut present = Vec::new();
    list_files(dir, "", 0, &mut present)?;
    for path in present {
        let own = [MANIFEST_FILE, SIGNATURE_FILE, SUMS_FILE].contains(&path.as_str());
        let listed = manifest
            .files
            .binary_search_by(|f| f.path.as_str().cmp(&path))
            .is_ok();
        if !own && !listed {
            return Err(KitError::ExtraFile { path });
        }
    }
    Ok(())
}

/// The sha256 (hex) of the first `size` bytes of `path`, streamed (a kit file of any size
/// costs one buffer).
fn sha256_of_file(path: &Path, size: u64) -> Result<String, KitError> {
    let io = |source| KitError::Io {
        action: "read",
        path: path.to_path_buf(),
        source,
    };
    let mut input = fs::File::open(path).map_err(io)?.take(size);
    let mut digest = ring::digest::Context::new(&ring::digest::SHA256);
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        let read = input.read(&mut buffer).map_err(io)?;
        let Some(chunk) = buffer.get(..read).filter(|c| !c.is_empty()) else {
            break;
        };
        digest.update(chunk);
    }
    Ok(digest
        .finish()
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// A relative path of `[A-Za-z0-9._-]` segments joined by `/`, none empty, `.` or `..`.
fn is_safe_path(path: &str) -> bool {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    path.len() <= 255
        && path
            .split('/')
            .all(|s| !s.is_empty() && s != "." && s != ".." && s.chars().all(allowed))
}

/// The regular files under `dir`, as `/`-joined paths; a link, a special file or a folder
/// deeper than [`MAX_DEPTH`] is reported as extra.
fn list_files(
    dir: &Path,
    prefix: &str,
    depth: usize,
    out: &mut Vec<String>,
) -> Result<(), KitError> {
    let entries = fs::read_dir(dir).map_err(|source| KitError::Io {
        action: "list",
        path: dir.to_path_buf(),
        source,
    })?;
    for entry in entries {
        let entry = entry.map_err(|source| KitError::Io {
            action: "list",
            path: dir.to_path_buf(),
            source,
        })?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = format!("{prefix}{name}");
        let kind = entry.file_type().map_err(|source| KitError::Io {
            action: "list",
            path: entry.path(),
            source,
        })?;
        if kind.is_dir() && depth < MAX_DEPTH {
            list_files(&entry.path(), &format!("{path}/"), depth + 1, out)?;
        } else if kind.is_file() && out.len() < MAX_FILES {
            out.push(path);
        } else {
            return Err(KitError::ExtraFile { path });
        }
    }
    Ok(())
}

fn read_small(path: &Path) -> Result<Vec<u8>, KitError> {
    let io = |action| {
        move |source| KitError::Io {
            action,
            path: path.to_path_buf(),
            source,
        }
    };
    let file = fs::File::open(path).map_err(io("open"))?;
    let mut bytes = Vec::new();
    file.take(MAX_SMALL_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(io("read"))?;
    if bytes.len() as u64 > MAX_SMALL_FILE_BYTES {
        return Err(KitError::MalformedManifest {
            reason: format!("`{}` is larger than 1 MiB", path.display()),
        });
    }
    Ok(bytes)
}
