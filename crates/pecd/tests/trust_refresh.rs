//! The trust material is refreshed from the certificates directory while the server runs:
//! a CRL revoking a gestore's certificate takes effect, a signed index (made by the
//! `openssl` CLI) is preferred to the plain one, and invalid files leave the previous
//! material in force.

mod common;

use std::path::Path;
use std::sync::Arc;

use chrono::Utc;
use pec_gestore::identity::Identity;
use pec_proto::labpki::GestoreSpec;
use pec_proto::smime::{Digest, OpensslSigner, trust};
use pecd::trust::{Version, load, refresh};

fn specs() -> Vec<GestoreSpec> {
    ["alfa", "beta"]
        .iter()
        .map(|id| GestoreSpec {
            id: id.to_string(),
            provider_name: format!("{id} PEC (lab)"),
            domains: vec![format!("pec.{id}.test")],
        })
        .collect()
}

fn der(pem_file: &Path) -> Vec<u8> {
    openssl::x509::X509::from_pem(&std::fs::read(pem_file).unwrap())
        .unwrap()
        .to_der()
        .unwrap()
}

/// Whether `identity` trusts the signing certificate of gestore `id` now, carried with the
/// intermediate CA as its signatures carry it (`ca.pem` holds only the root).
fn trusts(identity: &Identity, dir: &Path, id: &str) -> (bool, Option<String>) {
    let material = identity.trust();
    let t = trust(
        &der(&dir.join(id).join("sign.pem")),
        &[der(&dir.join("ca1.pem"))],
        &material.index,
        material.anchors.as_ref(),
        Utc::now(),
    );
    (t.trusted, t.problem)
}

#[test]
fn crls_and_signed_index_are_refreshed_and_bad_files_change_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    pecd::certs::write_lab(dir, specs(), 30, false).unwrap();
    let signer = OpensslSigner::from_pem(
        &std::fs::read(dir.join("alfa/sign.pem")).unwrap(),
        &std::fs::read(dir.join("alfa/sign.key")).unwrap(),
        Digest::Sha256,
    )
    .unwrap();
    let material = load(dir).unwrap();
    let identity = Identity::new(
        "alfa PEC (lab)".into(),
        Arc::new(signer),
        material.index,
        material.anchors,
    );
    let mut seen = pecd::trust::version(dir);
    assert_eq!(trusts(&identity, dir, "beta"), (true, None));
    assert!(
        !refresh(dir, &identity, &mut seen).unwrap(),
        "nothing changed"
    );

    // The intermediate CA revokes beta's signing certificate; its CRL lands in crl/ with
    // its certificate, which chains to the root of ca.pem.
    std::fs::create_dir(dir.join("crl")).unwrap();
    common::intermediate_revokes(dir, "beta/sign.pem", "crl/lab.pem");
    // Without the certificate of its issuer, the CRL cannot be checked: refused.
    assert!(refresh(dir, &identity, &mut seen).is_err());
    assert_eq!(trusts(&identity, dir, "beta"), (true, None));
    let mut with_issuer = std::fs::read(dir.join("crl/lab.pem")).unwrap();
    with_issuer.extend(std::fs::read(dir.join("ca1.pem")).unwrap());
    std::fs::write(dir.join("crl/lab.pem"), with_issuer).unwrap();
    assert!(refresh(dir, &identity, &mut seen).unwrap());
    let (trusted, problem) = trusts(&identity, dir, "beta");
    assert!(!trusted);
    assert!(problem.unwrap().contains("revoked"));
    assert_eq!(trusts(&identity, dir, "alfa"), (true, None));

    // A broken CRL file: refused, the previous material (with the revocation) stays.
    std::fs::write(dir.join("crl/zz-broken.pem"), "not a CRL").unwrap();
    assert!(refresh(dir, &identity, &mut seen).is_err());
    assert!(!trusts(&identity, dir, "beta").0);
    std::fs::remove_file(dir.join("crl/zz-broken.pem")).unwrap();

    // The signed index, as the central index is published, is preferred to the plain one:
    // the plain one now lists nobody, and beta's certificate is still found.
    common::openssl(
        dir,
        &[
            "cms",
            "-sign",
            "-nodetach",
            "-binary",
            "-outform",
            "DER",
            "-in",
            "index.ldif",
            "-signer",
            "alfa/sign.pem",
            "-inkey",
            "alfa/sign.key",
            "-certfile",
            "ca1.pem",
            "-out",
            "index.ldif.p7m",
        ],
    );
    std::fs::remove_dir_all(dir.join("crl")).unwrap();
    std::fs::write(dir.join("index.ldif"), "dn: o=postacert\no: postacert\n").unwrap();
    assert!(refresh(dir, &identity, &mut seen).unwrap());
    assert_eq!(identity.trust().index.providers.len(), 2);
    assert_eq!(trusts(&identity, dir, "beta"), (true, None));

    // A tampered signed index: refused, the previous index stays.
    let mut p7m = std::fs::read(dir.join("index.ldif.p7m")).unwrap();
    let at = p7m
        .windows(16)
        .position(|w| w == b"managedDomains: ")
        .expect("the LDIF inside");
    p7m[at + 20] ^= 0x01;
    std::fs::write(dir.join("index.ldif.p7m"), &p7m).unwrap();
    let err = refresh(dir, &identity, &mut seen).unwrap_err();
    assert!(format!("{err:#}").contains("signed index"), "{err:#}");
    assert_eq!(identity.trust().index.providers.len(), 2);
    assert_ne!(seen, Version::default());
}
