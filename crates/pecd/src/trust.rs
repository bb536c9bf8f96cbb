//! The trust material of `certificates.dir`, loaded at start and refreshed while the
//! server runs: `ca.pem` (the PEC CAs), the CRLs in `crl/` (PEM files; a CRL whose issuer
//! is an intermediate below `ca.pem` carries that issuer's certificate), and the provider
//! index — `index.ldif.p7m`, the signed file as the central index publishes it, whose
//! signature must chain to the CAs, or else the plain `index.ldif` (the lab).
//!
//! Fetching the files is left to the operator's scheduler (the official index needs a
//! client certificate of the gestore; CRLs come from the CAs' distribution points): the
//! server notices a changed file within [`REFRESH_EVERY`], checks it, and puts it in force
//! only if every file is valid; otherwise the previous material stays and an error is
//! logged. A warning is logged while the index is older than [`INDEX_MAX_AGE`].

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::Context;
use pec_gestore::antivirus::Scanner;
use pec_gestore::identity::{Identity, TrustMaterial};
use pec_gestore::metrics::Metrics;
use pec_gestore::service::Gestore;
use pec_proto::index::ProviderIndex;
use pec_proto::smime::TrustAnchors;
use tracing::{error, info, warn};

/// How often the files are looked at.
pub const REFRESH_EVERY: Duration = Duration::from_secs(600);
/// Age of the index file after which a warning is logged (the spec wants a daily refresh).
pub const INDEX_MAX_AGE: Duration = Duration::from_secs(36 * 3600);

/// The signed provider index, preferred when present.
pub const SIGNED_INDEX: &str = "index.ldif.p7m";
/// The plain provider index.
pub const PLAIN_INDEX: &str = "index.ldif";

fn read(path: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
}

/// The CRL files of `dir/crl`, sorted (none when the directory does not exist).
fn crl_files(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let crl_dir = dir.join("crl");
    if !crl_dir.is_dir() {
        return Ok(Vec::new());
    }
    let mut files = Vec::new();
    for entry in
        std::fs::read_dir(&crl_dir).with_context(|| format!("cannot list {}", crl_dir.display()))?
    {
        let path = entry?.path();
        let pem = path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("pem") || e.eq_ignore_ascii_case("crl"));
        if pem && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// The index file in use: the signed one when present.
fn index_file(dir: &Path) -> PathBuf {
    let signed = dir.join(SIGNED_INDEX);
    if signed.exists() {
        signed
    } else {
        dir.join(PLAIN_INDEX)
    }
}

/// Loads and checks the trust material of `dir`.
pub fn load(dir: &Path) -> anyhow::Result<TrustMaterial> {
    let mut anchors =
        TrustAnchors::from_pem(&read(&dir.join("ca.pem"))?).context("the CA bundle (ca.pem)")?;
    for file in crl_files(dir)? {
        anchors
            .add_crls_pem(&read(&file)?)
            .with_context(|| format!("the CRL file {}", file.display()))?;
    }
    let index_path = index_file(dir);
    let bytes = read(&index_path)?;
    let ldif = if index_path.ends_with(SIGNED_INDEX) {
        anchors
            .open_signed(&bytes)
            .with_context(|| format!("the signed index {}", index_path.display()))?
    } else {
        bytes
    };
    let index = ProviderIndex::parse_ldif(&ldif)
        .with_context(|| format!("the provider index {}", index_path.display()))?;
    Ok(TrustMaterial {
        index,
        anchors: Some(anchors),
    })
}

/// What identifies a version of the files: each path with its modification time and size.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Version(Vec<(PathBuf, Option<SystemTime>, u64)>);

/// The current [`Version`] of the files of `dir`.
pub fn version(dir: &Path) -> Version {
    let mut files = vec![dir.join("ca.pem"), index_file(dir)];
    files.extend(crl_files(dir).unwrap_or_default());
    Version(
        files
            .into_iter()
            .map(|f| {
                let meta = std::fs::metadata(&f).ok();
                let modified = meta.as_ref().and_then(|m| m.modified().ok());
                let len = meta.map_or(0, |m| m.len());
                (f, modified, len)
            })
            .collect(),
    )
}

/// Puts the files of `dir` in force in `identity` if they changed since `seen`; returns
/// whether they were. Invalid files leave the previous material in force (and `seen`
/// unchanged, so they are tried again).
pub fn refresh(dir: &Path, identity: &Identity, seen: &mut Version) -> anyhow::Result<bool> {
    let now = version(dir);
    if &now == seen {
        return Ok(false);
    }
    let material = load(dir)?;
    info!(
        providers = material.index.providers.len(),
        crl_files = crl_files(dir).map(|f| f.len()).unwrap_or(0),
        "trust material refreshed (provider index, CAs, CRLs)"
    );
    identity.replace_trust(material);
    *seen = now;
    Ok(true)
}

/// Tells `metrics` when the index file in force was written.
pub fn index_written(dir: &Path, metrics: &Metrics) {
    let written = std::fs::metadata(index_file(dir))
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
        .and_then(|d| i64::try_from(d.as_secs()).ok());
    if let Some(at) = written {
        metrics.index_written(at);
    }
}

/// Warns when the index file is older than [`INDEX_MAX_AGE`].
fn warn_if_stale(dir: &Path) {
    let path = index_file(dir);
    let age = std::fs::metadata(&path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.elapsed().ok());
    if let Some(age) = age
        && age > INDEX_MAX_AGE
    {
        warn!(
            file = %path.display(),
            hours = age.as_secs() / 3600,
            "the provider index has not been refreshed for more than a day"
        );
    }
}

/// Refreshes the trust material of `gestore` from `dir` every [`REFRESH_EVERY`], for as
/// long as the task runs (the server aborts it when it stops).
pub async fn watch<S: Scanner>(dir: PathBuf, gestore: Arc<Gestore<S>>) {
    let mut seen = version(&dir);
    loop {
        warn_if_stale(&dir);
        tokio::time::sleep(REFRESH_EVERY).await;
        match refresh(&dir, &gestore.id, &mut seen) {
            Ok(true) => index_written(&dir, &gestore.metrics),
            Ok(false) => {}
            Err(e) => {
                error!("trust material not refreshed, the previous one stays in force: {e:#}")
            }
        }
    }
}
