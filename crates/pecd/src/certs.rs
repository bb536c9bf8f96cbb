//! `pecd certs`: the lab PKI on disk, and this gestore's signed index record.
//!
//! `pecd certs init` writes a root CA, the intermediate CA under it, per-gestore signing and
//! TLS certificates (with their chain) and the provider index LDIF made by
//! [`pec_proto::labpki`], so that a lab of gestori can run with nothing installed beside the
//! binary. `pecd certs publish` writes the gestore's own
//! records of the provider index signed with its PEC key, the file each gestore publishes
//! for the central index (spec §9.2), their `managedDomains` following the domains it
//! hosts (`pecd domain add` / `remove`).

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use pec_proto::index::{Provider, ProviderIndex};
use pec_proto::labpki::{self, GestoreSpec};
use pec_proto::smime::{Digest, OpensslSigner, sha1_hex};

use crate::config::Config;

/// What `--help` says about `pecd certs init`.
const INIT_ABOUT: &str = "\
Generate a LAB PKI: a root CA, an intermediate CA, per-gestore signing and TLS certificates,
and the index LDIF.

THIS IS A LAB PKI, NOT FOR PRODUCTION. A real gestore signs with a certificate issued by
AgID's PEC CA and is listed in the official provider index; the keys written here are
unprotected files.

Files written under --dir, shaped like production (AgID CA1 under its root):
  ca.pem, ca.key          root CA 'PEC Lab Root CA (NOT FOR PRODUCTION)', RSA-2048: the
                          only certificate a lab gestore or client needs to trust
  ca1.pem, ca1.key        intermediate CA 'PEC Lab CA1 (NOT FOR PRODUCTION)', RSA-2048,
                          issued by the root; it issues (and revokes) every certificate
                          below. Both CAs are name-constrained (rfc822Name) to the
                          gestori's domains
  <id>/sign.pem, sign.key S/MIME signing certificate with the PEC profile (spec §5.3):
                          O=<provider name>, CN=Posta Certificata <provider name>,
                          SAN email posta-certificata@<first domain>, RSA-2048; sign.pem
                          holds it then ca1.pem, which every signature carries
  <id>/tls.pem, tls.key   TLS server certificate for each domain, mx.<domain>,
                          mail.<domain>, localhost and 127.0.0.1 (ECDSA P-256), then
                          ca1.pem: the chain the listeners send
  index.ldif              provider index listing every gestore (spec §9)

Private keys are PKCS#8 PEM files with mode 0600. Existing files are not overwritten
unless --force is given.";

/// `pecd certs` subcommands.
#[derive(clap::Subcommand)]
pub enum CertsCommand {
    /// Generate a lab root CA, per-gestore signing and TLS certificates, and the index LDIF.
    #[command(long_about = INIT_ABOUT)]
    Init {
        /// Directory to write into (created if missing).
        #[arg(long, value_name = "DIR", default_value = "certs/lab")]
        dir: PathBuf,
        /// A gestore, as ID=DOMAIN[,DOMAIN...][:PROVIDER NAME]; repeatable. The first domain
        /// is the service domain. The provider name defaults to "<Id> PEC (lab)", e.g.
        /// `--gestore alfa=pec.alfa.test` is "Alfa PEC (lab)". Default: one gestore
        /// `demo=pec.demo.test`.
        #[arg(long = "gestore", value_name = "ID=DOMAINS[:NAME]", value_parser = parse_gestore)]
        gestori: Vec<GestoreSpec>,
        /// Validity of every certificate, in days from now.
        #[arg(long, value_name = "N", default_value_t = 825)]
        days: u32,
        /// Overwrite existing files.
        #[arg(long)]
        force: bool,
    },
    /// Write this gestore's records of the provider index (those named `gestore.name`),
    /// signed with its PEC key, as the DER `.p7m` file to publish at its LDIFLocationURL.
    /// The records that list the signing certificate get `managedDomains` equal to the
    /// hosted domains (`gestore.domains` and those of `pecd domain add`): publish again
    /// after adding or removing a domain, so that other gestori certify mail to it.
    Publish {
        /// The file to write (e.g. `index-record.ldif.p7m`).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
    /// Download the provider index and the CRLs from `[certificates] index_url` and
    /// `crl_urls`, check them with `ca.pem`, and put them in place only if they all
    /// check out (the running server takes them up within ten minutes).
    Refresh,
}

/// Runs a `pecd certs` subcommand; `config` is read only by the commands that need it.
pub fn run(cmd: CertsCommand, config: &Path) -> anyhow::Result<ExitCode> {
    match cmd {
        CertsCommand::Init {
            dir,
            gestori,
            days,
            force,
        } => init(&dir, gestori, days, force),
        CertsCommand::Publish { out } => publish(&Config::load(config)?, &out),
        CertsCommand::Refresh => crate::certs_refresh::run(&Config::load(config)?),
    }
}

/// Signs and writes the gestore's own index records, their domains following the hosted
/// ones ([`follow_hosted`]). Refuses when the index has no record of the gestore or when
/// the records do not list the signing certificate: the central index would then reject
/// every message the gestore signs.
fn publish(config: &Config, out: &Path) -> anyhow::Result<ExitCode> {
    let material = crate::trust::load(&config.certificates.dir)?;
    let mut own: Vec<_> = material
        .index
        .providers
        .into_iter()
        .filter(|p| p.name == config.gestore.name)
        .collect();
    if own.is_empty() {
        bail!(
            "the provider index has no record named {:?} (gestore.name)",
            config.gestore.name
        );
    }
    let signer = OpensslSigner::from_pem(
        &fs::read(config.own_file("sign.pem")).context("the signing certificate")?,
        &fs::read(config.own_file("sign.key")).context("the signing key")?,
        Digest::Sha256,
    )
    .context("the signing certificate and key")?;
    let hash = sha1_hex(&signer.certificate_der()?);
    if !own.iter().any(|p| {
        p.certificate_hashes
            .iter()
            .any(|h| h.eq_ignore_ascii_case(&hash))
    }) {
        bail!(
            "the records of {:?} do not list the signing certificate {hash}",
            config.gestore.name
        );
    }
    let mut hosted: Vec<String> = config
        .gestore
        .domains
        .iter()
        .map(|d| d.trim().to_ascii_lowercase())
        .collect();
    let store = crate::admin::open(config)?;
    hosted.extend(store.list_domains()?.into_iter().map(|d| d.name));
    let (added, removed) = follow_hosted(&mut own, &hash, &hosted);
    for (what, domains) in [("added", &added), ("removed", &removed)] {
        if !domains.is_empty() {
            println!("managedDomains {what}: {}", domains.join(", "));
        }
    }
    let records = own.len();
    let ldif = ProviderIndex { providers: own }.to_ldif();
    let p7m = signer.sign_attached(ldif.as_bytes())?;
    fs::write(out, &p7m).with_context(|| format!("cannot write {}", out.display()))?;
    println!(
        "{}: {records} record(s) of {:?}, {} bytes, signed by the certificate {hash}",
        out.display(),
        config.gestore.name,
        p7m.len()
    );
    Ok(ExitCode::SUCCESS)
}

/// Makes the `managedDomains` of the `records` listing the signing certificate `hash`
/// follow `hosted` (lower case): a domain no longer hosted leaves them, a hosted domain
/// no record of ours lists joins the first of them. Records of other certificates (another
/// operating unit, with its own domains) stay as they are. Returns the domains added and
/// removed.
fn follow_hosted(
    records: &mut [Provider],
    hash: &str,
    hosted: &[String],
) -> (Vec<String>, Vec<String>) {
    let signs = |p: &Provider| {
        p.certificate_hashes
            .iter()
            .any(|h| h.eq_ignore_ascii_case(hash))
    };
    let mut removed = Vec::new();
    for p in records.iter_mut().filter(|p| signs(p)) {
        p.managed_domains.retain(|d| {
            let keep = hosted.contains(&d.to_ascii_lowercase());
            if !keep {
                removed.push(d.clone());
            }
            keep
        });
    }
    let mut added: Vec<String> = hosted
        .iter()
        .filter(|h| {
            !records
                .iter()
                .any(|p| p.managed_domains.iter().any(|d| d.eq_ignore_ascii_case(h)))
        })
        .cloned()
        .collect();
    added.sort();
    added.dedup();
    if let Some(first) = records.iter_mut().find(|p| signs(p)) {
        first.managed_domains.extend(added.iter().cloned());
    }
    (added, removed)
}

/// Parses `ID=DOMAIN[,DOMAIN...][:PROVIDER NAME]`.
fn parse_gestore(s: &str) -> Result<GestoreSpec, String> {
    let (id, rest) = s
        .split_once('=')
        .ok_or_else(|| format!("{s:?}: expected ID=DOMAIN[,DOMAIN...][:PROVIDER NAME]"))?;
    let (domains, name) = match rest.split_once(':') {
        Some((d, n)) => (d, Some(n.trim())),
        None => (rest, None),
    };
    let id = id.trim().to_owned();
    let domains: Vec<String> = domains
        .split(',')
        .map(|d| d.trim().to_ascii_lowercase())
        .filter(|d| !d.is_empty())
        .collect();
    if id.is_empty() || domains.is_empty() {
        return Err(format!("{s:?}: an ID and at least one domain are needed"));
    }
    let provider_name = match name {
        Some(n) if !n.is_empty() => n.to_owned(),
        Some(_) => return Err(format!("{s:?}: empty provider name after ':'")),
        None => default_name(&id),
    };
    Ok(GestoreSpec {
        id,
        provider_name,
        domains,
    })
}

/// `alfa` → `Alfa PEC (lab)`.
fn default_name(id: &str) -> String {
    let mut chars = id.chars();
    let capitalized: String = match chars.next() {
        Some(c) => c.to_uppercase().chain(chars).collect(),
        None => String::new(),
    };
    format!("{capitalized} PEC (lab)")
}

/// One file to write.
struct Output {
    path: PathBuf,
    contents: String,
    private: bool,
}

fn init(dir: &Path, gestori: Vec<GestoreSpec>, days: u32, force: bool) -> anyhow::Result<ExitCode> {
    let (pki, paths) = write_lab(dir, gestori, days, force)?;
    println!(
        "Lab PKI written to {} (LAB PKI, NOT FOR PRODUCTION)",
        dir.display()
    );
    for p in &paths {
        println!("  {}", p.display());
    }
    let index = pec_proto::index::ProviderIndex::parse_ldif(pki.index_ldif.as_bytes())
        .context("reading back the index")?;
    for p in &index.providers {
        println!(
            "  gestore {:?}: domains {}, signing certificate SHA-1 {}",
            p.name,
            p.managed_domains.join(", "),
            p.certificate_hashes.join(", ")
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Generates a lab PKI for `gestori` (one `demo` gestore for `pec.demo.test` when empty)
/// and writes it under `dir` in the layout `pecd serve` reads: `ca.pem`, `ca.key`,
/// `ca1.pem`, `ca1.key`, `index.ldif`, `<id>/{sign,tls}.{pem,key}`. Refuses to overwrite
/// unless `force`.
pub fn write_lab(
    dir: &Path,
    mut gestori: Vec<GestoreSpec>,
    days: u32,
    force: bool,
) -> anyhow::Result<(labpki::LabPki, Vec<PathBuf>)> {
    if gestori.is_empty() {
        gestori.push(GestoreSpec {
            id: "demo".into(),
            provider_name: default_name("demo"),
            domains: vec!["pec.demo.test".into()],
        });
    }
    let pki =
        labpki::generate(&gestori, chrono::Utc::now(), days).context("generating the lab PKI")?;

    let mut outputs = vec![
        Output {
            path: dir.join("ca.pem"),
            contents: pki.ca_cert_pem.clone(),
            private: false,
        },
        Output {
            path: dir.join("ca.key"),
            contents: pki.ca_key_pem.clone(),
            private: true,
        },
        Output {
            path: dir.join("ca1.pem"),
            contents: pki.ca1_cert_pem.clone(),
            private: false,
        },
        Output {
            path: dir.join("ca1.key"),
            contents: pki.ca1_key_pem.clone(),
            private: true,
        },
    ];
    for g in &pki.gestori {
        let sub = dir.join(&g.spec.id);
        for (name, contents, private) in [
            ("sign.pem", &g.sign_cert_pem, false),
            ("sign.key", &g.sign_key_pem, true),
            ("tls.pem", &g.tls_cert_pem, false),
            ("tls.key", &g.tls_key_pem, true),
        ] {
            outputs.push(Output {
                path: sub.join(name),
                contents: contents.clone(),
                private,
            });
        }
    }
    outputs.push(Output {
        path: dir.join("index.ldif"),
        contents: pki.index_ldif.clone(),
        private: false,
    });

    // Refuse before writing anything, so a refused run changes nothing.
    if !force {
        let existing: Vec<String> = outputs
            .iter()
            .filter(|o| o.path.exists())
            .map(|o| o.path.display().to_string())
            .collect();
        if !existing.is_empty() {
            bail!(
                "refusing to overwrite existing files (use --force): {}",
                existing.join(", ")
            );
        }
    }

    let mut dirs = vec![dir.to_path_buf()];
    dirs.extend(pki.gestori.iter().map(|g| dir.join(&g.spec.id)));
    for d in &dirs {
        fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
    }
    for o in &outputs {
        write_file(&o.path, o.contents.as_bytes(), o.private)?;
    }
    for d in &dirs {
        sync_dir(d)?;
    }

    Ok((pki, outputs.into_iter().map(|o| o.path).collect()))
}

/// Writes `path` through a temporary file in the same directory: created with mode 0600
/// when `private`, fsynced, then renamed over the target.
fn write_file(path: &Path, contents: &[u8], private: bool) -> anyhow::Result<()> {
    let mut tmp_name = path.file_name().context("file name")?.to_os_string();
    tmp_name.push(".tmp");
    let tmp = path.with_file_name(tmp_name);
    let mut options = OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(if private { 0o600 } else { 0o644 });
    }
    let result = (|| -> anyhow::Result<()> {
        let mut file = options.open(&tmp)?;
        #[cfg(unix)]
        if private {
            // A stale temporary file keeps its old mode: force it.
            use std::os::unix::fs::PermissionsExt;
            file.set_permissions(fs::Permissions::from_mode(0o600))?;
        }
        file.write_all(contents)?;
        file.sync_all()?;
        fs::rename(&tmp, path)?;
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.with_context(|| format!("writing {}", path.display()))
}

/// Makes the directory entries (new files, renames) durable.
fn sync_dir(dir: &Path) -> anyhow::Result<()> {
    #[cfg(unix)]
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("syncing {}", dir.display()))?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn our_records_follow_the_hosted_domains() {
        let record = |hash: &str, domains: &[&str]| Provider {
            name: "Alfa PEC".into(),
            certificate_hashes: vec![hash.into()],
            managed_domains: domains.iter().map(|d| d.to_string()).collect(),
            ..Provider::default()
        };
        let mut records = vec![
            record("AA11", &["pec.alfa.test", "pec.vecchio.alfa.test"]),
            record("bb22", &["pec.altra-unita.test"]),
        ];
        let hosted = [
            "pec.alfa.test".to_string(),
            "pec.comune.esempio.bs.it".into(),
            "pec.comune.esempio.bs.it".into(),
            "pec.altra-unita.test".into(),
        ];
        let (added, removed) = follow_hosted(&mut records, "aa11", &hosted);
        assert_eq!(added, ["pec.comune.esempio.bs.it"]);
        assert_eq!(removed, ["pec.vecchio.alfa.test"]);
        assert_eq!(
            records[0].managed_domains,
            ["pec.alfa.test", "pec.comune.esempio.bs.it"]
        );
        assert_eq!(records[1].managed_domains, ["pec.altra-unita.test"]);
        // Nothing changes the second time.
        let again = follow_hosted(&mut records, "aa11", &hosted);
        assert_eq!(again, (vec![], vec![]));
    }

    #[test]
    fn gestore_argument() {
        let g = parse_gestore("alfa=pec.alfa.test").unwrap();
        assert_eq!(g.id, "alfa");
        assert_eq!(g.provider_name, "Alfa PEC (lab)");
        assert_eq!(g.domains, vec!["pec.alfa.test"]);
        let g = parse_gestore("beta=PEC.Beta.test, pec.other.test:Beta Servizi S.p.A.").unwrap();
        assert_eq!(g.provider_name, "Beta Servizi S.p.A.");
        assert_eq!(g.domains, vec!["pec.beta.test", "pec.other.test"]);
        assert!(parse_gestore("alfa").is_err());
        assert!(parse_gestore("=pec.alfa.test").is_err());
        assert!(parse_gestore("alfa=").is_err());
        assert!(parse_gestore("alfa=pec.alfa.test:").is_err());
    }
}
