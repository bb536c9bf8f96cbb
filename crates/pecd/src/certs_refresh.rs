//! `pecd certs refresh`: downloads the provider index and the CRLs from the URLs of
//! `[certificates]` (`index_url`, `crl_urls`: `http://`, or `file://` for a file another
//! job fetched), checks them together with the CA bundle
//! exactly as the server loads them ([`crate::trust::load`]), and only then puts them in
//! place, each file renamed over the old one. The running server takes them up within
//! [`crate::trust::REFRESH_EVERY`]. Run it from the system's scheduler once a day (spec
//! §9.1: the index is refreshed daily). A DER CRL carries no issuer certificate: its
//! issuer must be in `ca.pem` (AgID CA1 may be an anchor there itself).

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, bail};

use crate::config::Config;
use crate::trust::{PLAIN_INDEX, SIGNED_INDEX};

/// Bytes of the largest index or CRL downloaded.
pub const MAX_DOWNLOAD: usize = 64 << 20;

/// The index file a URL is saved as: the signed one for a `.p7m`, else the plain one.
pub fn index_name(url: &str) -> &'static str {
    if url.to_ascii_lowercase().ends_with(".p7m") {
        SIGNED_INDEX
    } else {
        PLAIN_INDEX
    }
}

/// The file of `crl/` a CRL URL is saved as: its last path segment, reduced to safe
/// characters, with `.pem`.
pub fn crl_name(url: &str) -> anyhow::Result<String> {
    let last = url
        .split(['?', '#'])
        .next()
        .unwrap_or("")
        .rsplit('/')
        .next()
        .unwrap_or("");
    let stem = last.rsplit_once('.').map_or(last, |(s, _)| s);
    let safe: String = stem
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        .collect();
    let safe = safe.trim_start_matches('.');
    if safe.is_empty() {
        bail!("{url:?} names no file to save the CRL as");
    }
    Ok(format!("{safe}.pem"))
}

/// A CRL as PEM (what `crl/` holds): PEM kept as published (with any issuer
/// certificate appended to it), DER converted. Either way [`crate::trust::load`] checks it
/// against `ca.pem` before it is installed.
pub fn crl_pem(bytes: &[u8]) -> anyhow::Result<Vec<u8>> {
    if bytes.starts_with(b"-----BEGIN") {
        return Ok(bytes.to_vec());
    }
    let crl = openssl::x509::X509Crl::from_der(bytes).context("not a CRL (PEM or DER)")?;
    Ok(crl.to_pem()?)
}

/// Copies `from` to `to` if it exists.
fn copy_if_present(from: &Path, to: &Path) -> anyhow::Result<()> {
    if from.is_file() {
        std::fs::copy(from, to)
            .with_context(|| format!("cannot copy {} to {}", from.display(), to.display()))?;
    }
    Ok(())
}

/// Writes `bytes` to `path` through a temporary file renamed over it.
fn install(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let tmp = path.with_extension("refresh-tmp");
    std::fs::write(&tmp, bytes).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot replace {}", path.display()))
}

/// The downloaded files: the index (its name and bytes) and the CRLs (name, PEM).
struct Downloaded {
    index: Option<(&'static str, Vec<u8>)>,
    crls: Vec<(String, Vec<u8>)>,
}

/// The bytes at `url`: an `http://` download, or a local `file://` path — the file a
/// scheduler's `curl` wrote where the source needs what `http://` lacks (the official
/// index is served over HTTPS to the gestore's client certificate).
async fn fetch(url: &str) -> anyhow::Result<Vec<u8>> {
    match url.strip_prefix("file://") {
        Some(path) => {
            use std::io::Read;
            let mut bytes = Vec::new();
            std::fs::File::open(path)
                .with_context(|| format!("cannot open {path}"))?
                .take(MAX_DOWNLOAD as u64 + 1)
                .read_to_end(&mut bytes)
                .with_context(|| format!("cannot read {path}"))?;
            if bytes.len() > MAX_DOWNLOAD {
                bail!("{path} is larger than {MAX_DOWNLOAD} bytes");
            }
            Ok(bytes)
        }
        None => Ok(pec_gestore::fetch::get(url, MAX_DOWNLOAD).await?),
    }
}

async fn download(index_url: Option<&str>, crl_urls: &[String]) -> anyhow::Result<Downloaded> {
    let index = match index_url {
        Some(url) => Some((
            index_name(url),
            fetch(url)
                .await
                .with_context(|| format!("the provider index from {url}"))?,
        )),
        None => None,
    };
    let mut crls: Vec<(String, Vec<u8>)> = Vec::new();
    for url in crl_urls {
        let name = crl_name(url)?;
        if crls.iter().any(|(n, _)| *n == name) {
            bail!("two CRL URLs would both be saved as crl/{name}");
        }
        let bytes = fetch(url)
            .await
            .with_context(|| format!("the CRL from {url}"))?;
        crls.push((
            name,
            crl_pem(&bytes).with_context(|| format!("the CRL from {url}"))?,
        ));
    }
    Ok(Downloaded { index, crls })
}

/// Copies the trust files of `dir` into `stage` with the downloaded ones over them.
fn stage(dir: &Path, stage: &Path, got: &Downloaded) -> anyhow::Result<()> {
    for name in ["ca.pem", SIGNED_INDEX, PLAIN_INDEX] {
        copy_if_present(&dir.join(name), &stage.join(name))?;
    }
    let crl_dir = stage.join("crl");
    std::fs::create_dir_all(&crl_dir)?;
    if dir.join("crl").is_dir() {
        for entry in std::fs::read_dir(dir.join("crl"))? {
            let path = entry?.path();
            if let Some(name) = path.file_name() {
                copy_if_present(&path, &crl_dir.join(name))?;
            }
        }
    }
    if let Some((name, bytes)) = &got.index {
        std::fs::write(stage.join(name), bytes)?;
    }
    for (name, pem) in &got.crls {
        std::fs::write(crl_dir.join(name), pem)?;
    }
    Ok(())
}

/// Runs `pecd certs refresh`.
pub fn run(config: &Config) -> anyhow::Result<ExitCode> {
    let c = &config.certificates;
    if c.index_url.is_none() && c.crl_urls.is_empty() {
        bail!("nothing to download: set [certificates] index_url or crl_urls");
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let got = runtime.block_on(download(c.index_url.as_deref(), &c.crl_urls))?;
    let staging = tempfile::Builder::new()
        .prefix(".refresh-")
        .tempdir_in(&c.dir)
        .with_context(|| format!("cannot stage the files in {}", c.dir.display()))?;
    stage(&c.dir, staging.path(), &got)?;
    let material = crate::trust::load(staging.path())
        .context("the downloaded files do not check out; nothing was changed")?;
    if got.index.is_some() && material.index.providers.is_empty() {
        bail!("the downloaded index lists no gestore; nothing was changed");
    }
    if let Some((name, bytes)) = &got.index {
        install(&c.dir.join(name), bytes)?;
        if *name == PLAIN_INDEX && c.dir.join(SIGNED_INDEX).exists() {
            eprintln!("pecd: note: {SIGNED_INDEX} is present and stays preferred to {PLAIN_INDEX}");
        }
    }
    if !got.crls.is_empty() {
        std::fs::create_dir_all(c.dir.join("crl"))?;
    }
    for (name, pem) in &got.crls {
        install(&c.dir.join("crl").join(name), pem)?;
    }
    println!(
        "trust material refreshed: {} providers in the index, {} CRLs downloaded",
        material.index.providers.len(),
        got.crls.len()
    );
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_come_from_the_urls() {
        assert_eq!(index_name("http://x/igpec/index.ldif.P7M"), SIGNED_INDEX);
        assert_eq!(index_name("http://x/index.ldif"), PLAIN_INDEX);
        assert_eq!(
            crl_name("http://ca.test/crl/sub-ca.crl?x=1").unwrap(),
            "sub-ca.pem"
        );
        assert_eq!(
            crl_name("http://ca.test/a/..%2Fetc.crl").unwrap(),
            "2Fetc.pem"
        );
        assert!(crl_name("http://ca.test/").is_err());
    }
}
