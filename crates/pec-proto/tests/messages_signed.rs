//! Every message kind built with a real lab PKI, judged by the `openssl` CLI, then read
//! back: signature intact, signer known, trusted through the provider index; and any
//! flipped byte of the signed part or of the signature is detected.

mod common;

use std::path::Path;
use std::process::Command;

use chrono::{TimeZone, Utc};
use common::all_messages;
use pec_proto::classify::classify;
use pec_proto::index::ProviderIndex;
use pec_proto::labpki::{self, GestoreSpec, LabPki};
use pec_proto::smime::{Digest, OpensslSigner, TrustAnchors, trust, verify_detached};

fn lab() -> LabPki {
    let specs = [
        GestoreSpec {
            id: "alfa".into(),
            provider_name: "Alfa PEC (lab)".into(),
            domains: vec!["pec.alfa.test".into()],
        },
        GestoreSpec {
            id: "beta".into(),
            provider_name: "Beta PEC (lab)".into(),
            domains: vec!["pec.beta.test".into(), "pec.comune.beta.test".into()],
        },
    ];
    let now = Utc.with_ymd_and_hms(2025, 3, 1, 0, 0, 0).unwrap();
    labpki::generate(&specs, now, 3650).expect("lab PKI")
}

fn signer(pki: &LabPki) -> OpensslSigner {
    let g = &pki.gestori[0];
    OpensslSigner::from_pem(
        g.sign_cert_pem.as_bytes(),
        g.sign_key_pem.as_bytes(),
        Digest::Sha256,
    )
    .expect("signer")
}

fn openssl_verify(dir: &Path, name: &str, message: &[u8], ca: &Path) -> (bool, String) {
    let file = dir.join(format!("{name}.eml"));
    std::fs::write(&file, message).unwrap();
    let out = Command::new("openssl")
        .args(["smime", "-verify", "-purpose", "smimesign", "-CAfile"])
        .arg(ca)
        .arg("-in")
        .arg(&file)
        .args(["-out", "/dev/null"])
        .output()
        .expect("the openssl CLI is required");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn openssl_accepts_every_kind_and_classification_agrees() {
    let pki = lab();
    let signer = signer(&pki);
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, &pki.ca_cert_pem).unwrap();
    let index = ProviderIndex::parse_ldif(pki.index_ldif.as_bytes()).unwrap();
    let anchors = TrustAnchors::from_pem(pki.ca_cert_pem.as_bytes()).unwrap();
    let at = common::time().with_timezone(&Utc);
    for (name, kind, bytes) in all_messages(&signer) {
        let (ok, err) = openssl_verify(dir.path(), name, &bytes, &ca);
        assert!(ok, "{name}: openssl smime -verify failed: {err}");
        let c = classify(&bytes);
        assert_eq!(c.kind.as_str(), kind, "{name}");
        let report = c.verify_signature().expect("signed");
        assert!(report.intact, "{name}: {:?}", report.problem);
        assert_eq!(report.digest, Some(Digest::Sha256), "{name}");
        assert_eq!(
            report.signing_time,
            Some(at),
            "{name}: signingTime is the event time"
        );
        let cert = report.signer.expect("signer certificate");
        assert_eq!(
            cert.email.as_deref(),
            Some("posta-certificata@pec.alfa.test")
        );
        // The signature carries the intermediate, and the root alone is the anchor.
        assert_eq!(cert.chain.len(), 1, "{name}");
        let t = trust(&cert.der, &cert.chain, &index, Some(&anchors), at);
        assert!(t.trusted, "{name}: {:?}", t.problem);
        assert_eq!(t.provider.as_deref(), Some("Alfa PEC (lab)"));
        // micalg names the digest actually used (checklist 28).
        assert!(
            String::from_utf8_lossy(&bytes).contains("micalg=sha-256"),
            "{name}"
        );
    }
}

#[test]
fn any_flipped_byte_in_the_signed_part_or_signature_is_detected() {
    let pki = lab();
    let signer = signer(&pki);
    let messages = all_messages(&signer);
    for (name, _, bytes) in messages
        .iter()
        .filter(|m| m.0 == "accettazione" || m.0 == "busta-trasporto")
    {
        let c = classify(bytes);
        let s = c.signed.expect("signed");
        let good = verify_detached(&s.content, &s.p7s);
        assert!(good.intact);
        let good_cert = good.signer.as_ref().map(|c| c.der.clone());
        // Every byte of the signed content.
        for i in 0..s.content.len() {
            let mut content = s.content.clone();
            content[i] ^= 0x01;
            assert!(
                !verify_detached(&content, &s.p7s).intact,
                "{name}: byte {i} of content"
            );
        }
        // The RSA signature value: the last 256 bytes of the DER (it ends the only
        // SignerInfo, which has no unsigned attributes). Other bytes of the CMS container
        // (the informative digestAlgorithms set, the certificate bag) are not covered by
        // any signature, by design of CMS.
        let value_start = s.p7s.len() - 256;
        for i in value_start..s.p7s.len() {
            let mut p7s = s.p7s.clone();
            p7s[i] ^= 0x01;
            assert!(
                !verify_detached(&s.content, &p7s).intact,
                "{name}: signature byte {i}"
            );
        }
        // The signer certificate: a flip there must at least show as another certificate.
        for i in (0..value_start).step_by(5) {
            let mut p7s = s.p7s.clone();
            p7s[i] ^= 0x01;
            let r = verify_detached(&s.content, &p7s);
            let cert = r.signer.as_ref().map(|c| c.der.clone());
            let harmless = r.digest == good.digest && r.signing_time == good.signing_time;
            assert!(
                !r.intact || cert != good_cert || harmless,
                "{name}: byte {i} of the signature changed a verdict field silently"
            );
        }
        // And through the whole message as stored: flip bytes inside the signed region.
        let text = bytes.clone();
        let start = text.windows(12).position(|w| w == b"Content-Type").unwrap();
        let signed_at = text
            .windows(s.content.len().min(64))
            .position(|w| w == &s.content[..s.content.len().min(64)])
            .unwrap();
        assert!(signed_at > start);
        for i in (signed_at..signed_at + s.content.len()).step_by(13) {
            let mut m = text.clone();
            m[i] ^= 0x01;
            let verdict = classify(&m).verify_signature();
            assert!(
                verdict.is_none_or(|r| !r.intact),
                "{name}: flipping message byte {i} went unnoticed"
            );
        }
    }
}

#[test]
fn micalg_forms_of_real_gestori_are_accepted_when_verifying() {
    // The outer micalg is a hint outside the signature: the digest is the SignerInfo's.
    // Real gestori write `micalg="sha1"` (Namirial, 2024) or `micalg="sha-256"` (2021);
    // we write `micalg=sha-256`, and `micalg=sha-1` when signing with SHA-1.
    let pki = lab();
    let g = &pki.gestori[0];
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, &pki.ca_cert_pem).unwrap();
    let index = ProviderIndex::parse_ldif(pki.index_ldif.as_bytes()).unwrap();
    let anchors = TrustAnchors::from_pem(pki.ca_cert_pem.as_bytes()).unwrap();
    let at = common::time().with_timezone(&Utc);
    for (digest, ours) in [
        (Digest::Sha256, "micalg=sha-256"),
        (Digest::Sha1, "micalg=sha-1"),
    ] {
        let signer = OpensslSigner::from_pem(
            g.sign_cert_pem.as_bytes(),
            g.sign_key_pem.as_bytes(),
            digest,
        )
        .unwrap();
        let (_, _, envelope) = all_messages(&signer)
            .into_iter()
            .find(|m| m.0 == "busta-trasporto")
            .unwrap();
        let text = String::from_utf8_lossy(&envelope).into_owned();
        assert!(text.contains(ours), "{ours}");
        for theirs in [
            ours,
            "micalg=\"sha1\"",
            "micalg=\"sha-256\"",
            "micalg=SHA-1",
            "micalg=\"SHA256\"",
        ] {
            let variant = text.replacen(ours, theirs, 1);
            let (ok, err) = openssl_verify(dir.path(), "micalg", variant.as_bytes(), &ca);
            assert!(ok, "{theirs}: {err}");
            let c = classify(variant.as_bytes());
            assert!(c.is_well_formed(), "{theirs}: {:?}", c.problems);
            let report = c.verify_signature().expect("signed");
            assert!(report.intact, "{theirs}: {:?}", report.problem);
            assert_eq!(report.digest, Some(digest), "{theirs}");
            let cert = report.signer.unwrap();
            assert!(
                trust(&cert.der, &cert.chain, &index, Some(&anchors), at).trusted,
                "{theirs}"
            );
        }
    }
}
