//! Offline bundles: a signed, deterministic archive of one window of telemetry, for sites
//! without a network path to the central collector and for forensic export.
//!
//! # Example
//!
//! ```
//! use std::time::{Duration, UNIX_EPOCH};
//! use stellaops_telemetry_core::bundle::{self, BundleMeta, Compression, OtlpFiles, SigningKey};
//!
//! let dir = tempfile::tempdir()?;
//! // Three varint-delimited OTLP files (none here), as the local store selects them.
//! let otlp = OtlpFiles::empty();
//! let meta = BundleMeta {
//!     from: UNIX_EPOCH + Duration::from_secs(1_700_000_000),
//!     to: UNIX_EPOCH + Duration::from_secs(1_700_003_600),
//!     tenant: Some("acme".into()),
//!     profile: "forensic".into(),
//! };
//! let key = SigningKey::generate()?;
//! let out = dir.path().join("bundle.tar.zst");
//! let packed = bundle::pack(&meta, &otlp, &[], &key, Compression::Zstd, &out)?;
//!
//! let verified = bundle::verify(&out, &key.public_key())?;
//! assert_eq!(verified.manifest, packed.manifest);
//! assert_eq!(verified.archive_sha256, packed.sha256);
//! println!("{}", bundle::inspect(&out)?);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # What a bundle is
//!
//! A tar archive, optionally zstd-compressed (one frame, with a content checksum), whose
//! members are always in this order:
//!
//! ```text
//! config/…                     the profile's generated configuration (collector.yaml,
//!                              dashboards/<name>.json), sorted by path
//! otlp/logs.pb                 varint-length-delimited OTLP LogsData messages
//! otlp/metrics.pb              … MetricsData messages
//! otlp/traces.pb               … TracesData messages
//! manifest.json                every file above with its size and sha256, the window,
//!                              tenant, profile, tool, format version and record counts
//!                              (canonical JSON: sorted keys, no spaces)
//! signatures/manifest.sig      a DSSE envelope: Ed25519 over manifest.json
//! ```
//!
//! The manifest follows the files it describes, so that an archive is written in one pass:
//! each OTLP file is hashed as it is copied in. (Format version 1 put the manifest first;
//! this version reads version 2 only, and says so for a bundle of another version.)
//!
//! Every member is a regular file with mode 0644, owner and group 0 with empty names, and
//! modification time 0, so the same input gives byte-identical archives: packing twice gives
//! the same sha256. The archive is tamper-evident: [`verify`] checks the layout byte for byte
//! (headers, padding, end marker, nothing after it), the signature over `manifest.json`, every
//! file's size and sha256, the record counts, and that every record lies inside the window
//! `[from, to)` and, when the manifest names a tenant, carries that `tenant.id`.
//! Verification streams: it decodes one OTLP message at a time and never holds the archive.
//!
//! For a compressed bundle the tar inside is checked byte for byte, the zstd frame header
//! must be the one `pack` writes, and the frame's content checksum must match. zstd's
//! entropy-coded blocks have a little slack (rarely, a changed byte inside them still
//! decompresses to the very same tar), so `verify` also re-encodes the tar with the encoder
//! `pack` uses and requires the archive's bytes to be exactly that frame: a `.tar.zst`
//! verifies only as the bytes that were packed. (This ties verification of `.tar.zst` bundles
//! to zstd's encoder output, which this crate pins; a plain tar has no such dependency.)
//!
//! To replay a bundle, [`verify`] it, then read its OTLP files one at a time with
//! [`VerifiedBundle::otlp_reader`] (streamed, and checked against the verified manifest as
//! they are read) into [`Replay::send`](crate::Replay::send).
//!
//! The local store ([`Store`]) selects one window (and tenant) of the file exporters'
//! segments into the three OTLP files [`pack`] takes: a protobuf segment wholly inside the
//! window (and holding only the tenant's records) goes in as it is, the kept part of any
//! other segment is decoded, filtered and spooled.
//!
//! Keys are Ed25519, stored as PKCS#8 (`PRIVATE KEY`) and SubjectPublicKeyInfo (`PUBLIC KEY`)
//! PEM files, interchangeable with OpenSSL's. A key is named by its id: the first 32 hex
//! digits of the sha256 of its raw public key.

mod archive;
mod dsse;
mod error;
mod export;
mod format;
mod inspect;
mod keys;
mod member;
mod otlp_file;
mod pack;
mod records;
mod select;
mod spool;
mod store;
mod time;
mod verify;

pub use dsse::{
    Envelope, EnvelopeSignature, KIT_MANIFEST_PAYLOAD_TYPE, MANIFEST_PAYLOAD_TYPE, pae,
};
pub use error::BundleError;
pub use export::{ExportReport, ExportRequest, config_files, export, export_into};
pub use format::{
    BundleMeta, Compression, FORMAT_VERSION, FileEntry, MAX_CONFIG_FILES, MAX_OTLP_MESSAGE_BYTES,
    Manifest, PackedBundle, SignalCounts, Window,
};
pub use inspect::{Inspection, inspect};
pub use keys::{SigningKey, VerifyingKey};
pub use member::{OtlpReader, OtlpSignal};
pub use otlp_file::{OtlpFile, OtlpFiles};
pub use pack::{pack, pack_into};
pub use store::{CorruptSegment, SelectionReport, Store, StoreError};
pub use verify::{VerifiedBundle, verify};

pub(crate) use archive::sha256_hex;

/// Lower-case hex of `bytes`.
fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}
