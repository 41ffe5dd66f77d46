//! `stella-telemetry kit`: the offline kit for one profile, and its verification.

use std::io::Write;
use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::{Failure, by_name, chain, io};
use crate::bundle::{SigningKey, VerifyingKey};
use crate::kit;

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub(super) struct KitArgs {
    #[command(subcommand)]
    command: Option<KitCommand>,
    /// The profile the kit is for (`default`, `forensic`, `airgap`).
    #[arg(long, default_value = "airgap")]
    profile: String,
    /// The folder to write the kit into (created; it must be new or empty).
    #[arg(long)]
    out: Option<PathBuf>,
    /// A PKCS#8 PEM private key (`stella-telemetry keygen`) to sign the kit's manifest with.
    #[arg(long)]
    key: Option<PathBuf>,
    /// The site's tenants file (as for `generate storage`): the kit then carries the Loki and
    /// Tempo per-tenant overrides and the Prometheus scrape job.
    #[arg(long)]
    tenants: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum KitCommand {
    /// Checks a kit folder: every file against the manifest, nothing extra, SHA256SUMS, and
    /// the signature when a public key is given.
    Verify {
        /// The signer's public key (`KEY.pub`); without it the signature is not checked.
        #[arg(long = "pub")]
        public: Option<PathBuf>,
        /// The kit folder.
        dir: PathBuf,
    },
}

pub(super) fn run(args: KitArgs, out: &mut dyn Write) -> Result<(), Failure> {
    if let Some(KitCommand::Verify { public, dir }) = args.command {
        return verify(public, &dir, out);
    }
    let Some(dir) = args.out else {
        return Err(Failure::from(
            "`kit` needs `--out DIR` (or `kit verify DIR`)".to_owned(),
        ));
    };
    let profile = by_name(&args.profile)?;
    let key =
        match &args.key {
            Some(path) => Some(SigningKey::from_pem_file(path).map_err(|e| {
                Failure::from(format!("cannot load the signing key: {}", chain(&e)))
            })?),
            None => None,
        };
    let tenants = match &args.tenants {
        Some(path) => {
            Some(crate::artefacts::read_tenants(path).map_err(|e| Failure::from(chain(&e)))?)
        }
        None => None,
    };
    let spec = kit::KitSpec {
        profile: &profile,
        tenants: tenants.as_deref(),
    };
    let written = kit::write(&spec, &dir, key.as_ref()).map_err(|e| Failure::from(chain(&e)))?;
    for file in &written.files {
        writeln!(out, "{}", dir.join(&file.path).display()).map_err(io)?;
    }
    let signed = written.signed_by.map_or_else(
        || "not signed".to_owned(),
        |id| format!("signed by key {id}"),
    );
    writeln!(
        out,
        "kit for profile {} in {}: {} files, manifest.json and SHA256SUMS written, {signed}",
        written.manifest.profile,
        dir.display(),
        written.files.len()
    )
    .map_err(io)?;
    Ok(())
}

fn verify(
    public: Option<PathBuf>,
    dir: &std::path::Path,
    out: &mut dyn Write,
) -> Result<(), Failure> {
    let key = match &public {
        Some(path) => Some(
            VerifyingKey::from_pem_file(path)
                .map_err(|e| Failure::from(format!("cannot load the public key: {}", chain(&e))))?,
        ),
        None => None,
    };
    let verified = kit::verify(dir, key.as_ref())
        .map_err(|e| Failure::from(format!("kit verification failed: {}", chain(&e))))?;
    let signature = match (&verified.signed_by, verified.unchecked_signers.as_slice()) {
        (Some(id), _) => format!("signed by key {id}"),
        (None, []) => "not signed".to_owned(),
        (None, ids) => format!("signed by {} (not checked: no --pub)", ids.join(", ")),
    };
    writeln!(
        out,
        "OK {}: profile {}, {} files match the manifest; {signature}",
        dir.display(),
        verified.manifest.profile,
        verified.manifest.files.len()
    )
    .map_err(io)?;
    Ok(())
}
