//! One export, from the local store to a signed bundle: select the window and tenant, add
//! the profile's generated configuration, pack and sign. Shared by the command line and the
//! control plane's forensic export.

use std::io::Write;
use std::path::Path;
use std::time::SystemTime;

use super::pack::{pack_stream, pack_to_file};
use super::{
    BundleError, BundleMeta, Compression, OtlpFiles, PackedBundle, SelectionReport, SigningKey,
    Store,
};
use crate::Profile;

/// What one export selects and how it is packed.
#[derive(Debug, Clone)]
pub struct ExportRequest<'a> {
    /// The window's start (included).
    pub from: SystemTime,
    /// The window's end (excluded).
    pub to: SystemTime,
    /// Only this tenant's records, when given.
    pub tenant: Option<&'a str>,
    /// The profile whose configuration the bundle carries (`config/`).
    pub profile: &'a Profile,
    /// The archive's compression.
    pub compression: Compression,
}

/// What an export did.
#[derive(Debug, Clone)]
pub struct ExportReport {
    /// The archive written.
    pub packed: PackedBundle,
    /// What the selection read and kept.
    pub selection: SelectionReport,
}

/// The profile's configuration files, as the bundle carries them: `config/collector.yaml`
/// and `config/dashboards/<name>`, sorted by path.
///
/// # Errors
///
/// [`BundleError::Config`] when a generator fails.
pub fn config_files(profile: &Profile) -> Result<Vec<(String, Vec<u8>)>, BundleError> {
    let config = |e: crate::ArtefactError| BundleError::Config(e.to_string());
    let mut files = vec![(
        "config/collector.yaml".to_owned(),
        crate::artefacts::collector(profile)
            .map_err(config)?
            .contents
            .into_bytes(),
    )];
    for dashboard in crate::artefacts::dashboards().map_err(config)? {
        files.push((
            format!("config/dashboards/{}", dashboard.file_name),
            dashboard.contents.into_bytes(),
        ));
    }
    files.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(files)
}

/// Selects from `store` into `work` (a scratch folder, emptied afterwards) and hands the
/// selected files to `pack`.
fn with_selection<T>(
    store: &Store,
    request: &ExportRequest<'_>,
    work: &Path,
    progress: &mut dyn FnMut(u64),
    pack: impl FnOnce(
        &BundleMeta,
        &OtlpFiles,
        &[(String, Vec<u8>)],
        &mut dyn FnMut(u64),
    ) -> Result<T, BundleError>,
) -> Result<(T, SelectionReport), BundleError> {
    let config = config_files(request.profile)?;
    let scratch = tempfile::Builder::new()
        .prefix(".stellaops-export-")
        .tempdir_in(work)
        .map_err(|source| BundleError::Io {
            action: "create",
            path: work.to_path_buf(),
            source,
        })?;
    let (files, selection) = store.select(
        request.from,
        request.to,
        request.tenant,
        scratch.path(),
        progress,
    )?;
    let meta = BundleMeta {
        from: request.from,
        to: request.to,
        tenant: request.tenant.map(str::to_owned),
        profile: request.profile.name.clone(),
    };
    // Progress runs on through packing: the bytes selection read, then the bytes copied.
    let selected = selection.bytes_read;
    let mut packing = |copied: u64| progress(selected.saturating_add(copied));
    let packed = pack(&meta, &files, &config, &mut packing)?;
    Ok((packed, selection))
}

/// Exports the window to the archive `out` (written whole, then renamed into place). `work`
/// holds the selection while the archive is made (the folder of `out` will do).
///
/// # Errors
///
/// A [`BundleError`] naming the store, window, file or key at fault; nothing is left at `out`.
pub fn export(
    store: &Store,
    request: &ExportRequest<'_>,
    key: &SigningKey,
    work: &Path,
    out: &Path,
    progress: &mut dyn FnMut(u64),
) -> Result<ExportReport, BundleError> {
    let (packed, selection) = with_selection(
        store,
        request,
        work,
        progress,
        |meta, files, config, progress| {
            pack_to_file(meta, files, config, key, request.compression, out, progress)
        },
    )?;
    Ok(ExportReport { packed, selection })
}

/// Exports the window as a stream into `w` (an HTTP response body, say): the archive is never
/// held in memory; what is selected from segments that are not copied whole is spooled to
/// `work` first.
///
/// # Errors
///
/// As [`export`]; bytes already written to `w` stay written.
pub fn export_into(
    store: &Store,
    request: &ExportRequest<'_>,
    key: &SigningKey,
    work: &Path,
    w: &mut dyn Write,
    progress: &mut dyn FnMut(u64),
) -> Result<ExportReport, BundleError> {
    let (packed, selection) = with_selection(
        store,
        request,
        work,
        progress,
        |meta, files, config, progress| {
            pack_stream(meta, files, config, key, request.compression, w, progress)
        },
    )?;
    Ok(ExportReport { packed, selection })
}
