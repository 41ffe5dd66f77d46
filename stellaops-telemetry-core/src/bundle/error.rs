//! The one error type of offline bundles: packing, signing keys, verification and inspection.

use std::path::PathBuf;

/// What can go wrong packing, verifying or inspecting an offline bundle, or loading its keys.
///
/// Each failure names the archive member, file or record at fault. Messages are written for
/// an operator reading them at a terminal.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BundleError {
    // --- local files and writers -------------------------------------------------------------
    /// A local file or folder that cannot be opened, read, written or renamed.
    #[error("cannot {action} `{}`", path.display())]
    Io {
        /// What was being done: `open`, `read`, `write`, `create`, `rename`, `sync`.
        action: &'static str,
        /// The file or folder.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The writer given to [`pack_into`](super::pack_into) refused the archive's bytes.
    #[error("cannot write the bundle")]
    Write {
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A local file of an OTLP file that became shorter between its selection and its copy
    /// into the archive.
    #[error("`{}` changed while it was being packed: {reason}", path.display())]
    ChangedWhilePacking {
        /// The local file.
        path: PathBuf,
        /// What no longer holds.
        reason: String,
    },

    /// A local file given as an OTLP file that is not a run of whole varint-length-delimited
    /// messages of at most 32 MiB each.
    #[error("`{}` is not length-delimited OTLP messages: {reason}", path.display())]
    UnframedOtlp {
        /// The local file.
        path: PathBuf,
        /// Where the framing breaks.
        reason: String,
    },

    // --- what goes into a bundle ---------------------------------------------------------------
    /// A window that is empty, reversed, before 1970 or after 9999.
    #[error("bundle window is empty or out of range: from {from} to {to}")]
    InvalidWindow {
        /// The start, as given (debug form of the time).
        from: String,
        /// The end, as given.
        to: String,
    },
    /// A tenant or profile name that is empty, too long or holds control characters.
    #[error("invalid bundle {field} `{value}`: {reason}")]
    InvalidMeta {
        /// `tenant` or `profile`.
        field: &'static str,
        /// The value given.
        value: String,
        /// Why it is refused.
        reason: &'static str,
    },
    /// A configuration file whose path in the archive is refused.
    #[error("invalid configuration path `{path}` in the bundle: {reason}")]
    InvalidConfigPath {
        /// The path given.
        path: String,
        /// Why it is refused.
        reason: &'static str,
    },

    // --- keys -----------------------------------------------------------------------------------
    /// A key that cannot be read from its PEM form.
    #[error("invalid key in {origin}: {reason}")]
    Key {
        /// The file the key came from, or `PEM text` when it was given as a string.
        origin: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The system's random source failed while generating a key.
    #[error("cannot generate a signing key: the system random source failed")]
    KeyGeneration,
    /// The manifest or the signature envelope cannot be serialised.
    #[error("cannot encode the {what}")]
    Encode {
        /// `manifest` or `signature envelope`.
        what: &'static str,
        /// Why.
        #[source]
        source: serde_json::Error,
    },

    // --- archive layout -------------------------------------------------------------------------
    /// The archive is neither a tar archive nor a zstd-compressed one, or it ends early.
    #[error("`{}` is not a bundle archive: {reason}", path.display())]
    NotAnArchive {
        /// The archive.
        path: PathBuf,
        /// What was found instead.
        reason: String,
    },
    /// A member path that is absolute, climbs out with `..`, or has empty components.
    #[error("archive member path `{path}` is absolute or leaves the archive")]
    UnsafePath {
        /// The member path.
        path: String,
    },
    /// A member that is not a regular file (link, folder, device, extension header…).
    #[error("archive member `{path}` is not a regular file (tar type `{kind}`)")]
    NonRegularEntry {
        /// The member path.
        path: String,
        /// The tar type flag.
        kind: char,
    },
    /// A member whose tar header differs from the canonical one (owner, mode, time, format).
    #[error("archive member `{path}` has a non-canonical tar header ({field})")]
    NonCanonicalHeader {
        /// The member path.
        path: String,
        /// What differs, as far as it can be named.
        field: &'static str,
    },
    /// Bytes that should be zero (padding, end of archive) and are not, or data after the end.
    #[error("archive has unexpected bytes {place}")]
    TrailingData {
        /// Where: `after member `x``, `at the end of the archive`…
        place: String,
    },
    /// A member that is out of the fixed order, or appears twice.
    #[error("archive member `{path}` is out of place (expected `{expected}`)")]
    UnexpectedMember {
        /// The member path.
        path: String,
        /// What the layout expects at this position.
        expected: String,
    },
    /// More members than a bundle may hold.
    #[error("archive has more than {limit} members")]
    TooManyMembers {
        /// The bound.
        limit: usize,
    },
    /// A member larger than its kind allows (the manifest and the signature are small).
    #[error("archive member `{path}` is {size} bytes, more than the {limit} allowed")]
    MemberTooLarge {
        /// The member path.
        path: String,
        /// Its declared size.
        size: u64,
        /// The bound.
        limit: u64,
    },

    // --- manifest and files ---------------------------------------------------------------------
    /// A file the manifest lists (or the layout requires) that the archive lacks.
    #[error("manifest lists `{path}` but the file is missing")]
    MissingFile {
        /// The member path.
        path: String,
    },
    /// A member the manifest does not list.
    #[error("archive member `{path}` is not listed in the manifest")]
    ExtraFile {
        /// The member path.
        path: String,
    },
    /// A member whose size differs from the manifest's.
    #[error("`{path}` is {actual} bytes but the manifest says {expected}")]
    SizeMismatch {
        /// The member path.
        path: String,
        /// The manifest's size.
        expected: u64,
        /// The member's size.
        actual: u64,
    },
    /// A member whose sha256 differs from the manifest's.
    #[error("`{path}` has sha256 {actual} but the manifest says {expected}")]
    HashMismatch {
        /// The member path.
        path: String,
        /// The manifest's digest (hex).
        expected: String,
        /// The member's digest (hex).
        actual: String,
    },
    /// A `manifest.json` that does not parse, is not canonical, or is inconsistent.
    #[error("malformed manifest.json: {reason}")]
    MalformedManifest {
        /// What is wrong.
        reason: String,
    },
    /// A bundle of another format version (written by a newer or an older tool), which this
    /// version cannot check.
    #[error("unsupported bundle format version {found} (this tool reads version {supported})")]
    UnsupportedFormatVersion {
        /// The manifest's version.
        found: u64,
        /// The version this tool writes and reads.
        supported: u64,
    },
    /// A count in the manifest that differs from the records in the OTLP file.
    #[error("`{path}` holds {actual} records but the manifest counts {expected}")]
    CountMismatch {
        /// The OTLP member path.
        path: String,
        /// The manifest's count.
        expected: u64,
        /// The records found.
        actual: u64,
    },

    // --- signature ------------------------------------------------------------------------------
    /// A `signatures/manifest.sig` that is not a DSSE envelope over `manifest.json`.
    #[error("malformed signatures/manifest.sig: {reason}")]
    MalformedSignature {
        /// What is wrong.
        reason: String,
    },
    /// The envelope holds no signature by the key given.
    #[error("manifest.json is not signed by key `{expected}` (signed by: {})", found.join(", "))]
    UnknownKeyId {
        /// The id of the key given to verify.
        expected: String,
        /// The key ids in the envelope.
        found: Vec<String>,
    },
    /// The signature by the key given does not verify over `manifest.json`.
    #[error("the signature by key `{key_id}` over manifest.json does not verify")]
    BadSignature {
        /// The key id.
        key_id: String,
    },

    // --- records --------------------------------------------------------------------------------
    /// An OTLP file that is truncated or holds a message that does not decode.
    #[error("`{path}`: message {message} at byte {offset} is corrupt: {reason}")]
    CorruptOtlp {
        /// The OTLP member path.
        path: String,
        /// The message's index in the file, from 0.
        message: u64,
        /// The offset of its length prefix.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// A record whose time lies outside the manifest's window `[from, to)`.
    #[error(
        "`{path}`: record {index} at {} lies outside the window [{from}, {to})",
        super::time::rfc3339_nanos(*time_unix_nano)
    )]
    RecordOutsideWindow {
        /// The OTLP member path.
        path: String,
        /// The record's index in the file (spans, data points or log records), from 0.
        index: u64,
        /// Its time, nanoseconds since 1970.
        time_unix_nano: u64,
        /// The window's start (RFC 3339).
        from: String,
        /// The window's end (RFC 3339).
        to: String,
    },
    /// A record whose `tenant.id` is not the manifest's tenant.
    #[error(
        "`{path}`: record {index} belongs to tenant {} but the bundle is for tenant `{expected}`",
        found.as_deref().map_or_else(|| "(none)".to_owned(), |t| format!("`{t}`"))
    )]
    RecordOfAnotherTenant {
        /// The OTLP member path.
        path: String,
        /// The record's index in the file, from 0.
        index: u64,
        /// The manifest's tenant.
        expected: String,
        /// The record's `tenant.id`, if it has one.
        found: Option<String>,
    },
    // --- local store and record selection -------------------------------------------------------
    /// The local store refused the selection (missing folder, bad window, …).
    #[error(transparent)]
    Store(#[from] super::StoreError),
    /// A generated configuration file could not be made.
    #[error("cannot generate the bundle's configuration: {0}")]
    Config(String),
}
