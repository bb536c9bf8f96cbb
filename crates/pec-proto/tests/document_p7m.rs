//! CAdES `.p7m` documents made by the `openssl` command-line tool (an independent
//! signer), opened and judged by `pec_proto::document`.
//!
//! The CLI is a hard requirement: if it is missing these tests fail rather than skip.

use std::path::Path;
use std::process::Command;

use pec_proto::document::{Format, MAX_SIGNED_LAYERS, signed_content, sniff};

const PDF: &[u8] = b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\n%%EOF\n";

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("the openssl command-line tool");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A self-signed signer, as a citizen's smart card would not be: trust is not judged.
fn signer(dir: &Path) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "key.pem",
            "-out",
            "cert.pem",
            "-days",
            "2",
            "-subj",
            "/CN=Mario Rossi/O=Cittadino",
        ],
    );
}

/// `input` signed with `openssl cms -sign -nodetach` into DER `output`.
fn sign(dir: &Path, input: &str, output: &str) {
    openssl(
        dir,
        &[
            "cms",
            "-sign",
            "-nodetach",
            "-binary",
            "-signer",
            "cert.pem",
            "-inkey",
            "key.pem",
            "-outform",
            "DER",
            "-in",
            input,
            "-out",
            output,
        ],
    );
}

#[test]
fn a_signed_pdf_is_verified_and_opened() {
    let dir = tempfile::tempdir().unwrap();
    signer(dir.path());
    std::fs::write(dir.path().join("doc.pdf"), PDF).unwrap();
    sign(dir.path(), "doc.pdf", "doc.pdf.p7m");
    let p7m = std::fs::read(dir.path().join("doc.pdf.p7m")).unwrap();

    let f = sniff(&p7m);
    assert_eq!(f.name(), "p7m(pdf)");
    assert_eq!(f.innermost(), &Format::Pdf);
    let sigs = f.signatures();
    assert_eq!(sigs.len(), 1);
    assert!(sigs[0].intact, "{:?}", sigs[0].problem);
    let subject = &sigs[0].signer.as_ref().expect("signer").subject;
    assert!(subject.contains("Mario Rossi"), "{subject}");

    // The same file in base64, as some signing programs save it.
    let b64 = Command::new("openssl")
        .args(["base64", "-in"])
        .arg(dir.path().join("doc.pdf.p7m"))
        .output()
        .unwrap()
        .stdout;
    assert_eq!(sniff(&b64).name(), "p7m(pdf)");
    assert!(sniff(&b64).signatures()[0].intact);
    // The document inside, byte for byte, from either form.
    assert_eq!(signed_content(&p7m).as_deref(), Some(PDF));
    assert_eq!(signed_content(&b64).as_deref(), Some(PDF));
    assert_eq!(signed_content(PDF), None, "a PDF is no envelope");
}

#[test]
fn a_tampered_signed_document_is_opened_but_not_intact() {
    let dir = tempfile::tempdir().unwrap();
    signer(dir.path());
    std::fs::write(dir.path().join("doc.pdf"), PDF).unwrap();
    sign(dir.path(), "doc.pdf", "doc.pdf.p7m");
    let mut p7m = std::fs::read(dir.path().join("doc.pdf.p7m")).unwrap();
    let at = p7m
        .windows(7)
        .position(|w| w == b"Catalog")
        .expect("the content is carried");
    p7m[at] = b'K';

    let f = sniff(&p7m);
    assert_eq!(f.innermost(), &Format::Pdf, "{f:?}");
    let sig = f.signatures()[0];
    assert!(!sig.intact);
    assert!(
        sig.problem
            .as_deref()
            .unwrap_or("")
            .contains("does not match")
    );
}

#[test]
fn nested_signatures_are_opened_to_a_bound() {
    let dir = tempfile::tempdir().unwrap();
    signer(dir.path());
    std::fs::write(dir.path().join("l0"), PDF).unwrap();
    for layer in 1..=MAX_SIGNED_LAYERS + 1 {
        sign(dir.path(), &format!("l{}", layer - 1), &format!("l{layer}"));
    }
    let within = std::fs::read(dir.path().join(format!("l{MAX_SIGNED_LAYERS}"))).unwrap();
    let f = sniff(&within);
    assert_eq!(f.innermost(), &Format::Pdf);
    assert_eq!(f.signatures().len(), MAX_SIGNED_LAYERS);
    assert!(f.signatures().iter().all(|s| s.intact));
    assert_eq!(
        signed_content(&within).as_deref(),
        Some(PDF),
        "every layer opened"
    );

    let beyond = std::fs::read(dir.path().join(format!("l{}", MAX_SIGNED_LAYERS + 1))).unwrap();
    let f = sniff(&beyond);
    assert_eq!(f.innermost(), &Format::TooDeep);
    assert_eq!(f.signatures().len(), MAX_SIGNED_LAYERS);
    assert_eq!(signed_content(&beyond), None, "too deep");
}

#[test]
fn a_detached_signature_carries_no_document() {
    let dir = tempfile::tempdir().unwrap();
    signer(dir.path());
    std::fs::write(dir.path().join("doc.pdf"), PDF).unwrap();
    openssl(
        dir.path(),
        &[
            "cms", "-sign", "-binary", "-signer", "cert.pem", "-inkey", "key.pem", "-outform",
            "DER", "-in", "doc.pdf", "-out", "doc.p7s",
        ],
    );
    let p7s = std::fs::read(dir.path().join("doc.p7s")).unwrap();
    let f = sniff(&p7s);
    assert_eq!(f.innermost(), &Format::Unknown);
    assert!(!f.signatures()[0].intact);
    assert_eq!(signed_content(&p7s), None);
}
