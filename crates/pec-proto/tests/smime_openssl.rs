//! S/MIME signing, verification and trust, judged by the `openssl` command-line tool.
//!
//! The CLI is a hard requirement: if it is missing these tests fail rather than skip.

use std::path::Path;
use std::process::{Command, Output};

use chrono::{DateTime, Duration, TimeZone, Utc};
use pec_proto::index::ProviderIndex;
use pec_proto::labpki::{self, GestoreSpec, LabPki};
use pec_proto::smime::{self, Digest, OpensslSigner, Signer, TrustAnchors};

/// The signed part of a real PEC message, CRLF line endings.
const CONTENT: &[u8] = b"Content-Type: multipart/mixed; boundary=\"b1\"\r\n\
Content-Transfer-Encoding: 7bit\r\n\
MIME-Version: 1.0\r\n\
\r\n\
--b1\r\n\
Content-Type: text/plain; charset=\"iso-8859-1\"\r\n\
\r\n\
Ricevuta di accettazione\r\n\
--b1--\r\n";

fn signing_time() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 12, 5, 9, 42, 10).unwrap()
}

fn specs() -> Vec<GestoreSpec> {
    vec![
        GestoreSpec {
            id: "alfa".into(),
            provider_name: "Alfa PEC (lab)".into(),
            domains: vec!["pec.alfa.test".into(), "pec.cliente.test".into()],
        },
        GestoreSpec {
            id: "beta".into(),
            provider_name: "Beta PEC (lab)".into(),
            domains: vec!["pec.beta.test".into()],
        },
    ]
}

fn pki_at(now: DateTime<Utc>, days: u32) -> LabPki {
    labpki::generate(&specs(), now, days).unwrap()
}

fn signer(pki: &LabPki, i: usize, digest: Digest) -> OpensslSigner {
    let g = &pki.gestori[i];
    OpensslSigner::from_pem(
        g.sign_cert_pem.as_bytes(),
        g.sign_key_pem.as_bytes(),
        digest,
    )
    .unwrap()
}

/// The first certificate of `pem`, DER.
fn der_of(pem: &str) -> Vec<u8> {
    openssl::x509::X509::from_pem(pem.as_bytes())
        .unwrap()
        .to_der()
        .unwrap()
}

/// What a lab signature carries besides the signer's: the intermediate CA.
fn chain(pki: &LabPki) -> Vec<Vec<u8>> {
    vec![der_of(&pki.ca1_cert_pem)]
}

/// Runs `openssl` with `args` in `dir`. Panics (test failure) if the tool is missing.
fn openssl(dir: &Path, args: &[&str]) -> Output {
    Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the openssl command-line tool is required by these tests")
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "openssl failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Writes the PKI files of gestore `i` (`ca.pem` the root alone, `ca1.pem` the
/// intermediate, `sign.pem` with its chain, `sign.key`, ...) into `dir`.
fn write_pki(dir: &Path, pki: &LabPki, i: usize) {
    let g = &pki.gestori[i];
    std::fs::write(dir.join("ca.pem"), &pki.ca_cert_pem).unwrap();
    std::fs::write(dir.join("ca.key"), &pki.ca_key_pem).unwrap();
    std::fs::write(dir.join("ca1.pem"), &pki.ca1_cert_pem).unwrap();
    std::fs::write(dir.join("ca1.key"), &pki.ca1_key_pem).unwrap();
    std::fs::write(dir.join("sign.pem"), &g.sign_cert_pem).unwrap();
    std::fs::write(dir.join("sign.key"), &g.sign_key_pem).unwrap();
    std::fs::write(dir.join("tls.pem"), &g.tls_cert_pem).unwrap();
    std::fs::write(dir.join("tls.key"), &g.tls_key_pem).unwrap();
}

#[test]
fn our_signature_verifies_with_the_openssl_cli() {
    let pki = pki_at(Utc::now(), 30);
    let s = signer(&pki, 0, Digest::Sha256);
    assert_eq!(s.address(), "posta-certificata@pec.alfa.test");
    assert_eq!(s.digest(), Digest::Sha256);
    let sig = s.sign_detached(CONTENT, signing_time()).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_pki(d, &pki, 0);
    std::fs::write(d.join("data"), CONTENT).unwrap();
    std::fs::write(d.join("sig.der"), &sig).unwrap();

    ok(&openssl(
        d,
        &[
            "cms", "-verify", "-binary", "-inform", "DER", "-in", "sig.der", "-content", "data",
            "-CAfile", "ca.pem", "-purpose", "any", "-out", "out",
        ],
    ));
    assert_eq!(std::fs::read(d.join("out")).unwrap(), CONTENT);
    // The older S/MIME command too, with the S/MIME signing purpose.
    ok(&openssl(
        d,
        &[
            "smime",
            "-verify",
            "-binary",
            "-inform",
            "DER",
            "-in",
            "sig.der",
            "-content",
            "data",
            "-CAfile",
            "ca.pem",
            "-purpose",
            "smimesign",
            "-out",
            "/dev/null",
        ],
    ));

    let printed = ok(&openssl(
        d,
        &[
            "cms", "-cmsout", "-print", "-inform", "DER", "-in", "sig.der",
        ],
    ));
    assert!(
        printed.contains("contentType: pkcs7-signedData"),
        "{printed}"
    );
    assert!(printed.contains("eContentType: pkcs7-data"), "{printed}");
    assert!(
        printed.contains("eContent: <ABSENT>"),
        "not detached:\n{printed}"
    );
    assert!(
        printed.contains("algorithm: sha256 (2.16.840.1.101.3.4.2.1)"),
        "{printed}"
    );
    assert!(!printed.contains("sha1"), "{printed}");
    assert!(printed.contains("signingTime"), "{printed}");
    assert!(
        printed.contains("UTCTIME:Dec  5 09:42:10 2024 GMT"),
        "signingTime is not the injected one:\n{printed}"
    );
    // Only the attributes observed in real PEC signatures (spec §5.2).
    assert!(!printed.contains("SMIMECapabilities"), "{printed}");
    let attrs = printed
        .split("signedAttrs:")
        .nth(1)
        .and_then(|rest| rest.split("signatureAlgorithm:").next())
        .unwrap();
    assert_eq!(attrs.matches("object: ").count(), 3, "{attrs}");
    assert!(
        printed.contains("unsignedAttrs:\n          <ABSENT>"),
        "{printed}"
    );
    // The signer certificate is included.
    assert!(
        printed.contains("Posta Certificata Alfa PEC (lab)"),
        "{printed}"
    );

    let report = smime::verify_detached(CONTENT, &sig);
    assert!(report.intact, "{report:?}");
    assert_eq!(report.problem, None);
    assert_eq!(report.digest, Some(Digest::Sha256));
    assert_eq!(report.signing_time, Some(signing_time()));
    let cert = report.signer.unwrap();
    assert_eq!(cert.der, der_of(&pki.gestori[0].sign_cert_pem));
    assert_eq!(cert.chain, chain(&pki), "the intermediate is carried");
    assert_eq!(cert.sha1_hex, smime::sha1_hex(&cert.der));
    assert!(
        cert.sha1_hex
            .chars()
            .all(|c| c.is_ascii_digit() || c.is_ascii_uppercase())
    );
    assert_eq!(
        cert.email.as_deref(),
        Some("posta-certificata@pec.alfa.test")
    );
    assert_eq!(
        cert.subject,
        "C=IT, O=Alfa PEC (lab), CN=Posta Certificata Alfa PEC (lab)"
    );
}

#[test]
fn the_chain_but_the_root_is_included_and_sha1_can_be_emitted() {
    let pki = pki_at(Utc::now(), 30);
    let g = &pki.gestori[1];
    // sign.pem as an operator may write it: the certificate, the intermediate, the root.
    let with_root = format!("{}{}", g.sign_cert_pem, pki.ca_cert_pem);
    for (name, pem) in [
        ("sign.pem", g.sign_cert_pem.as_str()),
        ("with the root", &with_root),
    ] {
        let s = OpensslSigner::from_pem(pem.as_bytes(), g.sign_key_pem.as_bytes(), Digest::Sha1)
            .unwrap();
        let sig = s.sign_detached(CONTENT, signing_time()).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        write_pki(d, &pki, 1);
        std::fs::write(d.join("data"), CONTENT).unwrap();
        std::fs::write(d.join("sig.der"), &sig).unwrap();
        let certs = ok(&openssl(
            d,
            &[
                "pkcs7",
                "-inform",
                "DER",
                "-in",
                "sig.der",
                "-print_certs",
                "-noout",
            ],
        ));
        assert_eq!(certs.matches("subject=").count(), 2, "{name}: {certs}");
        assert!(
            certs.contains(
                "subject=C = IT, O = Beta PEC (lab), CN = Posta Certificata Beta PEC (lab)"
            ),
            "{name}: {certs}"
        );
        assert!(
            certs.contains("subject=C = IT, O = PEC Lab, CN = PEC Lab CA1 (NOT FOR PRODUCTION)"),
            "{name}: {certs}"
        );
        assert!(
            !certs.contains("subject=C = IT, O = PEC Lab, CN = PEC Lab Root CA"),
            "{name}: the root is never carried: {certs}"
        );
        // The independent judge builds the path from the root alone.
        ok(&openssl(
            d,
            &[
                "cms",
                "-verify",
                "-binary",
                "-inform",
                "DER",
                "-in",
                "sig.der",
                "-content",
                "data",
                "-CAfile",
                "ca.pem",
                "-purpose",
                "smimesign",
                "-out",
                "/dev/null",
            ],
        ));
        let report = smime::verify_detached(CONTENT, &sig);
        assert!(report.intact, "{name}: {report:?}");
        assert_eq!(report.digest, Some(Digest::Sha1));
        let signer = report.signer.unwrap();
        assert_eq!(
            signer.email.as_deref(),
            Some("posta-certificata@pec.beta.test")
        );
        assert_eq!(signer.der, der_of(&g.sign_cert_pem), "{name}");
        assert_eq!(signer.chain, chain(&pki), "{name}");
    }
}

#[test]
fn a_flipped_byte_is_not_intact_for_us_nor_for_the_cli() {
    let pki = pki_at(Utc::now(), 30);
    let sig = signer(&pki, 0, Digest::Sha256)
        .sign_detached(CONTENT, signing_time())
        .unwrap();
    let mut tampered = CONTENT.to_vec();
    let i = tampered.len() - 12;
    tampered[i] ^= 0x01;

    let report = smime::verify_detached(&tampered, &sig);
    assert!(!report.intact);
    assert!(report.problem.is_some());
    // Who signed is still reported.
    assert!(report.signer.is_some());

    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_pki(d, &pki, 0);
    std::fs::write(d.join("data"), &tampered).unwrap();
    std::fs::write(d.join("sig.der"), &sig).unwrap();
    let out = openssl(
        d,
        &[
            "cms",
            "-verify",
            "-binary",
            "-inform",
            "DER",
            "-in",
            "sig.der",
            "-content",
            "data",
            "-CAfile",
            "ca.pem",
            "-purpose",
            "any",
            "-out",
            "/dev/null",
        ],
    );
    assert!(!out.status.success(), "the CLI accepted tampered content");

    // Bare LF instead of CRLF is tampering too: no canonicalisation.
    let lf: Vec<u8> = CONTENT.iter().copied().filter(|&b| b != b'\r').collect();
    assert!(!smime::verify_detached(&lf, &sig).intact);
}

#[test]
fn signatures_made_by_the_cli_are_read() {
    let pki = pki_at(Utc::now(), 30);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_pki(d, &pki, 0);
    std::fs::write(d.join("data"), CONTENT).unwrap();
    let want_der = der_of(&pki.gestori[0].sign_cert_pem);

    let cases: [(&[&str], Digest); 4] = [
        (
            &[
                "cms", "-sign", "-md", "sha1", "-binary", "-outform", "DER", "-signer", "sign.pem",
                "-inkey", "sign.key", "-in", "data", "-out", "sig.der",
            ],
            Digest::Sha1,
        ),
        (
            &[
                "smime", "-sign", "-md", "sha1", "-binary", "-outform", "DER", "-signer",
                "sign.pem", "-inkey", "sign.key", "-in", "data", "-out", "sig.der",
            ],
            Digest::Sha1,
        ),
        (
            &[
                "smime", "-sign", "-binary", "-outform", "DER", "-signer", "sign.pem", "-inkey",
                "sign.key", "-in", "data", "-out", "sig.der",
            ],
            Digest::Sha256,
        ),
        // Streaming: indefinite-length BER, as some signers emit.
        (
            &[
                "cms", "-sign", "-stream", "-md", "sha256", "-binary", "-outform", "DER",
                "-signer", "sign.pem", "-inkey", "sign.key", "-in", "data", "-out", "sig.der",
            ],
            Digest::Sha256,
        ),
    ];
    for (args, digest) in cases {
        ok(&openssl(d, args));
        let sig = std::fs::read(d.join("sig.der")).unwrap();
        let report = smime::verify_detached(CONTENT, &sig);
        assert!(report.intact, "{args:?}: {report:?}");
        assert_eq!(report.digest, Some(digest), "{args:?}");
        assert!(report.signing_time.is_some(), "{args:?}: {report:?}");
        assert_eq!(report.signer.as_ref().unwrap().der, want_der, "{args:?}");
        assert_eq!(report.problem, None, "{args:?}");
        assert!(
            !smime::verify_detached(&CONTENT[1..], &sig).intact,
            "{args:?}"
        );
    }
}

#[test]
fn an_expired_certificate_is_intact_but_not_trusted() {
    let then = Utc::now() - Duration::days(30);
    let pki = pki_at(then, 1);
    let sig = signer(&pki, 0, Digest::Sha256)
        .sign_detached(CONTENT, then + Duration::hours(2))
        .unwrap();
    let report = smime::verify_detached(CONTENT, &sig);
    assert!(report.intact, "{report:?}");
    assert_eq!(report.signing_time, Some(trunc(then + Duration::hours(2))));

    let index = ProviderIndex::parse_ldif(pki.index_ldif.as_bytes()).unwrap();
    let anchors = TrustAnchors::from_pem(pki.ca_cert_pem.as_bytes()).unwrap();
    let der = report.signer.unwrap().der;
    let t = smime::trust(&der, &chain(&pki), &index, Some(&anchors), Utc::now());
    assert!(!t.trusted);
    assert_eq!(t.provider.as_deref(), Some("Alfa PEC (lab)"));
    assert!(t.problem.unwrap().contains("validity"));
    // At a time inside the validity period it was a gestore: the chain check uses `at`.
    let t = smime::trust(
        &der,
        &chain(&pki),
        &index,
        Some(&anchors),
        then + Duration::hours(12),
    );
    assert!(t.trusted, "{t:?}");
    // Not yet valid.
    let t = smime::trust(&der, &chain(&pki), &index, None, then - Duration::hours(1));
    assert!(!t.trusted);
    assert!(t.problem.unwrap().contains("validity"));
}

fn trunc(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp(t.timestamp(), 0).unwrap()
}

#[test]
fn trust_follows_the_index_and_the_anchors() {
    let now = Utc::now();
    let pki = pki_at(now, 30);
    let other = pki_at(now, 30);
    let index = ProviderIndex::parse_ldif(pki.index_ldif.as_bytes()).unwrap();
    assert_eq!(index.providers.len(), 2);
    let anchors = TrustAnchors::from_pem(pki.ca_cert_pem.as_bytes()).unwrap();
    let other_anchors = TrustAnchors::from_pem(other.ca_cert_pem.as_bytes()).unwrap();
    let alfa = der_of(&pki.gestori[0].sign_cert_pem);
    let beta = der_of(&pki.gestori[1].sign_cert_pem);

    let t = smime::trust(&alfa, &chain(&pki), &index, Some(&anchors), now);
    assert!(t.trusted, "{t:?}");
    assert_eq!(t.provider.as_deref(), Some("Alfa PEC (lab)"));
    assert_eq!(t.problem, None);
    let t = smime::trust(&beta, &chain(&pki), &index, Some(&anchors), now);
    assert_eq!(t.provider.as_deref(), Some("Beta PEC (lab)"));
    assert!(t.trusted);
    assert!(smime::trust(&alfa, &chain(&pki), &index, None, now).trusted);

    // Not in the index.
    let stranger = der_of(&other.gestori[0].sign_cert_pem);
    let t = smime::trust(&stranger, &chain(&other), &index, Some(&anchors), now);
    assert!(!t.trusted);
    assert_eq!(t.provider, None);
    assert!(t.problem.unwrap().contains("not in the provider index"));

    // The root alone cannot be reached without the intermediate the signature carries...
    let t = smime::trust(&alfa, &[], &index, Some(&anchors), now);
    assert!(!t.trusted);
    assert!(t.problem.unwrap().contains("chain"));
    // ...nor through another lab's intermediate.
    let t = smime::trust(&alfa, &chain(&other), &index, Some(&anchors), now);
    assert!(!t.trusted);
    // An intermediate configured as anchor (AgID CA1 without its root) needs none.
    let ca1 = TrustAnchors::from_pem(pki.ca1_cert_pem.as_bytes()).unwrap();
    assert!(smime::trust(&alfa, &[], &index, Some(&ca1), now).trusted);
    // Junk carried besides the signer's certificate changes nothing.
    let mut junk = vec![b"not a certificate".to_vec(); 20];
    junk.push(der_of(&pki.ca1_cert_pem));
    assert!(
        !smime::trust(&alfa, &junk, &index, Some(&anchors), now).trusted,
        "bounded"
    );
    junk.rotate_right(1);
    assert!(smime::trust(&alfa, &junk, &index, Some(&anchors), now).trusted);

    // In the index, but another CA bundle.
    let t = smime::trust(&alfa, &chain(&pki), &index, Some(&other_anchors), now);
    assert!(!t.trusted);
    assert_eq!(t.provider.as_deref(), Some("Alfa PEC (lab)"));
    assert!(t.problem.unwrap().contains("chain"));

    // The TLS certificate is not for S/MIME signing even if someone listed it.
    let tls = der_of(&pki.gestori[0].tls_cert_pem);
    let mut listed = index.clone();
    listed.providers[0]
        .certificate_hashes
        .push(smime::sha1_hex(&tls));
    listed.providers[0].certificates.push(tls.clone());
    let t = smime::trust(&tls, &chain(&pki), &listed, Some(&anchors), now);
    assert!(!t.trusted, "{t:?}");

    // Hash listed, certificate bytes not (step 4).
    let mut forged = index.clone();
    forged.providers[1]
        .certificate_hashes
        .push(smime::sha1_hex(&stranger));
    let t = smime::trust(&stranger, &chain(&other), &forged, None, now);
    assert!(!t.trusted);
    assert_eq!(t.provider.as_deref(), Some("Beta PEC (lab)"));
    assert!(t.problem.unwrap().contains("providerCertificate"));

    // Hash compared case-insensitively.
    let mut lower = index.clone();
    for p in &mut lower.providers {
        for h in &mut p.certificate_hashes {
            *h = h.to_lowercase();
        }
    }
    assert!(smime::trust(&alfa, &chain(&pki), &lower, Some(&anchors), now).trusted);

    assert!(TrustAnchors::from_pem(b"no certificates here").is_err());
}

#[test]
fn garbage_is_reported_never_a_panic() {
    let pki = pki_at(Utc::now(), 30);
    let sig = signer(&pki, 0, Digest::Sha256)
        .sign_detached(CONTENT, signing_time())
        .unwrap();
    let inputs: Vec<Vec<u8>> = vec![
        Vec::new(),
        b"hello".to_vec(),
        vec![0x30, 0x80],
        vec![0x30, 0x82, 0xff, 0xff, 0x06],
        sig[..sig.len() / 2].to_vec(),
        sig.iter().map(|b| b ^ 0x55).collect(),
    ];
    for input in inputs {
        let r = smime::verify_detached(CONTENT, &input);
        assert!(!r.intact);
        assert!(r.problem.is_some());
    }
    // A signature over other bytes.
    let other = signer(&pki, 0, Digest::Sha256)
        .sign_detached(b"other\r\n", signing_time())
        .unwrap();
    assert!(!smime::verify_detached(CONTENT, &other).intact);
    // Every single-byte corruption of the signature: never intact with a problem-free report.
    for i in (0..sig.len()).step_by(7) {
        let mut bad = sig.clone();
        bad[i] ^= 0x80;
        let r = smime::verify_detached(CONTENT, &bad);
        assert!(r.intact || r.problem.is_some());
    }
}

#[test]
fn signer_refuses_bad_keys_and_certificates() {
    let pki = pki_at(Utc::now(), 30);
    let a = &pki.gestori[0];
    let b = &pki.gestori[1];
    // Key of another certificate.
    assert!(
        OpensslSigner::from_pem(
            a.sign_cert_pem.as_bytes(),
            b.sign_key_pem.as_bytes(),
            Digest::Sha256
        )
        .is_err()
    );
    // No rfc822Name in the SAN.
    let e = OpensslSigner::from_pem(
        a.tls_cert_pem.as_bytes(),
        a.tls_key_pem.as_bytes(),
        Digest::Sha256,
    )
    .unwrap_err();
    assert!(e.to_string().contains("rfc822Name"), "{e}");
    assert!(OpensslSigner::from_pem(b"x", b"y", Digest::Sha256).is_err());
}

#[test]
fn signing_time_is_what_was_given() {
    let pki = pki_at(Utc::now(), 30);
    let s = signer(&pki, 0, Digest::Sha256);
    for t in [
        signing_time(),
        Utc.with_ymd_and_hms(2051, 1, 2, 3, 4, 5).unwrap(), // GeneralizedTime range
        Utc.with_ymd_and_hms(1999, 12, 31, 23, 59, 59).unwrap(),
    ] {
        let sig = s.sign_detached(CONTENT, t).unwrap();
        let r = smime::verify_detached(CONTENT, &sig);
        assert!(r.intact);
        assert_eq!(r.signing_time, Some(t));
    }
}

// ---- certificate profiles (spec §5.3), judged by `openssl x509 -text` and `openssl verify`.

#[test]
fn signing_certificate_has_the_pec_profile() {
    let pki = pki_at(Utc::now(), 825);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_pki(d, &pki, 0);
    let text = ok(&openssl(d, &["x509", "-in", "sign.pem", "-noout", "-text"]));
    assert!(
        text.contains("Subject: C = IT, O = Alfa PEC (lab), CN = Posta Certificata Alfa PEC (lab)"),
        "{text}"
    );
    assert!(text.contains("Issuer: C = IT, O = PEC Lab, CN = PEC Lab CA1 (NOT FOR PRODUCTION)"));
    assert!(text.contains("Public-Key: (2048 bit)"), "{text}");
    assert!(text.contains("rsaEncryption"));
    assert!(
        text.contains("X509v3 Key Usage: critical\n                Digital Signature\n"),
        "{text}"
    );
    assert!(
        text.contains("X509v3 Extended Key Usage: \n                E-mail Protection"),
        "{text}"
    );
    assert!(text.contains("X509v3 Subject Alternative Name: \n                email:posta-certificata@pec.alfa.test\n"), "{text}");
    assert!(
        text.contains("X509v3 Authority Key Identifier: \n"),
        "{text}"
    );
    assert!(text.contains("X509v3 Subject Key Identifier: \n"), "{text}");
    assert!(!text.contains("Basic Constraints"), "{text}");
    // Only keyUsage is critical.
    assert_eq!(text.matches("critical").count(), 1, "{text}");
    assert!(!text.contains("emailAddress"));

    ok(&openssl(
        d,
        &[
            "verify",
            "-CAfile",
            "ca.pem",
            "-untrusted",
            "ca1.pem",
            "-purpose",
            "smimesign",
            "sign.pem",
        ],
    ));
    // countryName is a PrintableString (RFC 5280).
    let subject = ok(&openssl(
        d,
        &[
            "x509",
            "-in",
            "sign.pem",
            "-noout",
            "-subject",
            "-nameopt",
            "show_type",
        ],
    ));
    assert!(subject.contains("C=PRINTABLESTRING:IT"), "{subject}");
    ok(&openssl(
        d,
        &[
            "verify",
            "-CAfile",
            "ca.pem",
            "-untrusted",
            "ca1.pem",
            "-purpose",
            "sslserver",
            "tls.pem",
        ],
    ));
    let out = openssl(
        d,
        &[
            "verify",
            "-CAfile",
            "ca.pem",
            "-untrusted",
            "ca1.pem",
            "-purpose",
            "sslserver",
            "sign.pem",
        ],
    );
    assert!(!out.status.success());

    // Key files are PKCS#8.
    assert!(
        pki.gestori[0]
            .sign_key_pem
            .starts_with("-----BEGIN PRIVATE KEY-----")
    );
    assert!(
        pki.gestori[0]
            .tls_key_pem
            .starts_with("-----BEGIN PRIVATE KEY-----")
    );
    assert!(pki.ca_key_pem.starts_with("-----BEGIN PRIVATE KEY-----"));
    let key = ok(&openssl(d, &["pkey", "-in", "sign.key", "-noout", "-text"]));
    assert!(key.contains("2048 bit"), "{key}");
}

#[test]
fn both_cas_are_name_constrained_to_the_gestori_domains() {
    let pki = pki_at(Utc::now(), 825);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_pki(d, &pki, 0);
    for (file, subject, issuer, pathlen) in [
        ("ca.pem", "PEC Lab Root CA", "PEC Lab Root CA", "1"),
        ("ca1.pem", "PEC Lab CA1", "PEC Lab Root CA", "0"),
    ] {
        let text = ok(&openssl(d, &["x509", "-in", file, "-noout", "-text"]));
        assert!(
            text.contains(&format!(
                "Subject: C = IT, O = PEC Lab, CN = {subject} (NOT FOR PRODUCTION)"
            )),
            "{text}"
        );
        assert!(
            text.contains(&format!(
                "Issuer: C = IT, O = PEC Lab, CN = {issuer} (NOT FOR PRODUCTION)"
            )),
            "{text}"
        );
        assert!(
            text.contains(&format!(
                "X509v3 Basic Constraints: critical\n                CA:TRUE, pathlen:{pathlen}"
            )),
            "{text}"
        );
        assert!(
            text.contains(
                "X509v3 Key Usage: critical\n                Certificate Sign, CRL Sign\n"
            ),
            "{text}"
        );
        assert!(text.contains("X509v3 Subject Key Identifier"), "{text}");
        assert!(text.contains("X509v3 Name Constraints: critical"), "{text}");
        for d in ["pec.alfa.test", "pec.cliente.test", "pec.beta.test"] {
            assert!(text.contains(&format!("email:{d}\n")), "{d}: {text}");
        }
    }
    ok(&openssl(
        d,
        &["verify", "-CAfile", "ca.pem", "-purpose", "any", "ca1.pem"],
    ));

    // A certificate for a foreign mail domain under either CA is refused by OpenSSL.
    for (ca, key) in [("ca1.pem", "ca1.key"), ("ca.pem", "ca.key")] {
        ok(&openssl(
            d,
            &[
                "req",
                "-new",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                "evil.key",
                "-subj",
                "/C=IT/O=Evil/CN=Posta Certificata Evil",
                "-addext",
                "subjectAltName=email:posta-certificata@evil.test",
                "-addext",
                "keyUsage=critical,digitalSignature",
                "-x509",
                "-CA",
                ca,
                "-CAkey",
                key,
                "-days",
                "2",
                "-out",
                "evil.pem",
            ],
        ));
        let out = openssl(
            d,
            &[
                "verify",
                "-CAfile",
                "ca.pem",
                "-untrusted",
                "ca1.pem",
                "evil.pem",
            ],
        );
        assert!(!out.status.success(), "{ca}: name constraints not enforced");
        let msg = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        assert!(msg.contains("subtree"), "{ca}: {msg}");
    }
}

#[test]
fn tls_certificate_names() {
    let pki = pki_at(Utc::now(), 825);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_pki(d, &pki, 0);
    let text = ok(&openssl(
        d,
        &[
            "x509",
            "-in",
            "tls.pem",
            "-noout",
            "-ext",
            "subjectAltName,extendedKeyUsage",
        ],
    ));
    for name in [
        "DNS:pec.alfa.test",
        "DNS:mx.pec.alfa.test",
        "DNS:mail.pec.alfa.test",
        "DNS:pec.cliente.test",
        "DNS:mx.pec.cliente.test",
        "DNS:mail.pec.cliente.test",
        "DNS:localhost",
        "IP Address:127.0.0.1",
        "TLS Web Server Authentication",
    ] {
        assert!(text.contains(name), "{name}: {text}");
    }
    for host in ["mx.pec.cliente.test", "localhost"] {
        ok(&openssl(
            d,
            &[
                "verify",
                "-CAfile",
                "ca.pem",
                "-untrusted",
                "ca1.pem",
                "-verify_hostname",
                host,
                "tls.pem",
            ],
        ));
    }
    ok(&openssl(
        d,
        &[
            "verify",
            "-CAfile",
            "ca.pem",
            "-untrusted",
            "ca1.pem",
            "-verify_ip",
            "127.0.0.1",
            "tls.pem",
        ],
    ));
}

#[test]
fn index_lists_every_gestore() {
    let pki = pki_at(Utc::now(), 825);
    let index = ProviderIndex::parse_ldif(pki.index_ldif.as_bytes()).unwrap();
    assert!(pki.index_ldif.starts_with("dn: o=postacert\n"));
    assert_eq!(index.providers.len(), 2);
    for (p, g) in index.providers.iter().zip(&pki.gestori) {
        let der = der_of(&g.sign_cert_pem);
        assert_eq!(p.name, g.spec.provider_name);
        assert_eq!(p.unit, None);
        assert_eq!(p.certificates, vec![der.clone()]);
        assert_eq!(p.certificate_hashes, vec![smime::sha1_hex(&der)]);
        assert_eq!(p.mail_receipt, format!("ricevute@{}", g.spec.domains[0]));
        assert_eq!(p.managed_domains, g.spec.domains);
    }
    assert_eq!(
        index.by_domain("PEC.Cliente.TEST").unwrap().name,
        "Alfa PEC (lab)"
    );
}

#[test]
fn bad_specs_are_refused() {
    let now = Utc::now();
    let mut s = specs();
    s[1].id = "alfa".into();
    assert!(labpki::generate(&s, now, 10).is_err());
    let mut s = specs();
    s[0].domains.clear();
    assert!(labpki::generate(&s, now, 10).is_err());
    let mut s = specs();
    s[0].id = "../etc".into();
    assert!(labpki::generate(&s, now, 10).is_err());
    let mut s = specs();
    s[0].domains[0] = "bad domain".into();
    assert!(labpki::generate(&s, now, 10).is_err());
    let mut s = specs();
    s[1].domains.push("pec.alfa.test".into());
    assert!(labpki::generate(&s, now, 10).is_err());
    assert!(labpki::generate(&[], now, 10).is_err());
    assert!(labpki::generate(&specs(), now, 0).is_err());
}

/// A CRL made by `openssl ca` for the lab CA `ca` in `dir` (`<ca>.pem`, `<ca>.key`: the
/// root `ca` or the intermediate `ca1`), revoking the certificate files `revoke`.
fn crl_by_the_cli(dir: &Path, ca: &str, revoke: &[&str]) -> String {
    std::fs::write(
        dir.join("ca.cnf"),
        "[ca]\ndefault_ca = lab\n[lab]\ndatabase = index.txt\ncrlnumber = crlnumber\n\
         default_md = sha256\ndefault_crl_days = 7\n",
    )
    .unwrap();
    std::fs::write(dir.join("index.txt"), "").unwrap();
    std::fs::write(dir.join("crlnumber"), "01\n").unwrap();
    let (key, cert) = (format!("{ca}.key"), format!("{ca}.pem"));
    let issuer = ["ca", "-config", "ca.cnf", "-keyfile", &key, "-cert", &cert];
    for revoked in revoke {
        ok(&openssl(
            dir,
            &[&issuer[..], &["-revoke", revoked]].concat(),
        ));
    }
    let out = format!("{ca}-crl.pem");
    ok(&openssl(
        dir,
        &[&issuer[..], &["-gencrl", "-out", &out]].concat(),
    ));
    std::fs::read_to_string(dir.join(out)).unwrap()
}

#[test]
fn a_certificate_revoked_in_the_crl_is_not_trusted() {
    let dir = tempfile::tempdir().unwrap();
    let now = Utc::now();
    let pki = pki_at(now - Duration::hours(1), 30);
    write_pki(dir.path(), &pki, 0);
    std::fs::write(dir.path().join("beta.pem"), &pki.gestori[1].sign_cert_pem).unwrap();
    let index = ProviderIndex::parse_ldif(pki.index_ldif.as_bytes()).unwrap();
    let alfa = der_of(&pki.gestori[0].sign_cert_pem);
    let beta = der_of(&pki.gestori[1].sign_cert_pem);

    // The intermediate revokes alfa's signing certificate; beta's stays good.
    let crl = crl_by_the_cli(dir.path(), "ca1", &["sign.pem"]);
    let mut anchors = TrustAnchors::from_pem(pki.ca_cert_pem.as_bytes()).unwrap();
    // Its issuer is not an anchor: the CRL cannot be checked without its certificate...
    let err = anchors.add_crls_pem(crl.as_bytes()).unwrap_err();
    assert!(
        err.to_string().contains("not signed by a trusted PEC CA"),
        "{err}"
    );
    // ...which the file may hold, and which must chain to the anchors.
    let with_issuer = format!("{crl}{}", pki.ca1_cert_pem);
    assert_eq!(anchors.add_crls_pem(with_issuer.as_bytes()).unwrap(), 1);
    let t = smime::trust(
        &alfa,
        &chain(&pki),
        &index,
        Some(&anchors),
        now + Duration::minutes(1),
    );
    assert!(!t.trusted, "{t:?}");
    assert_eq!(t.provider.as_deref(), Some("Alfa PEC (lab)"));
    assert!(t.problem.as_deref().unwrap().contains("revoked"), "{t:?}");
    assert!(smime::trust(&beta, &chain(&pki), &index, Some(&anchors), now).trusted);
    // The CLI agrees on both.
    let check = |cert: &str, crls: &str, all: bool| {
        openssl(
            dir.path(),
            &[
                "verify",
                if all { "-crl_check_all" } else { "-crl_check" },
                "-CAfile",
                "ca.pem",
                "-untrusted",
                "ca1.pem",
                "-CRLfile",
                crls,
                "-purpose",
                "smimesign",
                cert,
            ],
        )
    };
    let says_revoked = |out: &Output| {
        !out.status.success()
            && (String::from_utf8_lossy(&out.stdout).contains("revoked")
                || String::from_utf8_lossy(&out.stderr).contains("revoked"))
    };
    assert!(says_revoked(&check("sign.pem", "ca1-crl.pem", false)));
    ok(&check("beta.pem", "ca1-crl.pem", false));

    // Without the CRL the same certificate is trusted: the CRL is what refuses it.
    let plain = TrustAnchors::from_pem(pki.ca_cert_pem.as_bytes()).unwrap();
    assert!(smime::trust(&alfa, &chain(&pki), &index, Some(&plain), now).trusted);

    // The root revokes the intermediate: every certificate below it is refused.
    let root_crl = crl_by_the_cli(dir.path(), "ca", &["ca1.pem"]);
    let mut anchors = TrustAnchors::from_pem(pki.ca_cert_pem.as_bytes()).unwrap();
    assert_eq!(anchors.add_crls_pem(root_crl.as_bytes()).unwrap(), 1);
    let t = smime::trust(
        &beta,
        &chain(&pki),
        &index,
        Some(&anchors),
        now + Duration::minutes(1),
    );
    assert!(!t.trusted, "{t:?}");
    let problem = t.problem.unwrap();
    assert!(
        problem.contains("PEC Lab CA1") && problem.contains("revoked"),
        "{problem}"
    );
    std::fs::write(
        dir.path().join("both.pem"),
        format!("{root_crl}{}", crl_by_the_cli(dir.path(), "ca1", &[])),
    )
    .unwrap();
    assert!(says_revoked(&check("beta.pem", "both.pem", true)));

    // A CRL not signed by a trusted CA is refused when loaded, as is garbage.
    let other = pki_at(now, 30);
    let other_dir = tempfile::tempdir().unwrap();
    write_pki(other_dir.path(), &other, 0);
    let mut anchors = TrustAnchors::from_pem(pki.ca_cert_pem.as_bytes()).unwrap();
    let foreign_root = crl_by_the_cli(other_dir.path(), "ca", &[]);
    assert!(anchors.add_crls_pem(foreign_root.as_bytes()).is_err());
    let foreign_ca1 = crl_by_the_cli(other_dir.path(), "ca1", &[]) + &other.ca1_cert_pem;
    let err = anchors.add_crls_pem(foreign_ca1.as_bytes()).unwrap_err();
    assert!(err.to_string().contains("does not chain"), "{err}");
    assert!(anchors.add_crls_pem(b"no CRL here").is_err());
    assert!(anchors.add_crls_pem(&[0xff, 0xfe]).is_err());
}

#[test]
fn signed_index_files_are_opened_only_when_signed_by_a_trusted_key() {
    let dir = tempfile::tempdir().unwrap();
    let pki = pki_at(Utc::now() - Duration::hours(1), 30);
    write_pki(dir.path(), &pki, 0);
    let anchors = TrustAnchors::from_pem(pki.ca_cert_pem.as_bytes()).unwrap();
    let ldif = pki.index_ldif.as_bytes();

    // Ours, as `pecd` publishes its own record: the CLI opens it and finds the same bytes.
    let p7m = signer(&pki, 0, Digest::Sha256).sign_attached(ldif).unwrap();
    assert_eq!(anchors.open_signed(&p7m).unwrap(), ldif);
    std::fs::write(dir.path().join("ours.p7m"), &p7m).unwrap();
    let out = openssl(
        dir.path(),
        &[
            "cms",
            "-verify",
            "-binary",
            "-inform",
            "DER",
            "-in",
            "ours.p7m",
            "-CAfile",
            "ca.pem",
            "-purpose",
            "smimesign",
        ],
    );
    ok(&out);
    assert_eq!(out.stdout, ldif);

    // Made by the CLI (as the central index is): opened.
    std::fs::write(dir.path().join("index.ldif"), ldif).unwrap();
    ok(&openssl(
        dir.path(),
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
            "sign.pem",
            "-inkey",
            "sign.key",
            "-certfile",
            "ca1.pem",
            "-out",
            "cli.p7m",
        ],
    ));
    let cli = std::fs::read(dir.path().join("cli.p7m")).unwrap();
    assert_eq!(anchors.open_signed(&cli).unwrap(), ldif);

    // A changed byte of the content, a stranger's key, a revoked signer, garbage: refused.
    let at = cli
        .windows(ldif.len().min(40))
        .position(|w| w == &ldif[..ldif.len().min(40)])
        .expect("the content is inside the file");
    let mut tampered = cli.clone();
    tampered[at + 5] ^= 0x01;
    assert!(anchors.open_signed(&tampered).is_err());
    let stranger = pki_at(Utc::now() - Duration::hours(1), 30);
    let foreign = signer(&stranger, 0, Digest::Sha256)
        .sign_attached(ldif)
        .unwrap();
    assert!(anchors.open_signed(&foreign).is_err());
    let crl = crl_by_the_cli(dir.path(), "ca1", &["sign.pem"]) + &pki.ca1_cert_pem;
    let mut revoking = TrustAnchors::from_pem(pki.ca_cert_pem.as_bytes()).unwrap();
    revoking.add_crls_pem(crl.as_bytes()).unwrap();
    let err = revoking.open_signed(&p7m).unwrap_err().to_string();
    assert!(err.contains("revoked"), "{err}");
    assert!(anchors.open_signed(b"not DER at all").is_err());
}
