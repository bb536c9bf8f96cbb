//! Every generated message, built from fixed inputs, pinned byte for byte, and read back
//! by classification. Run with `UPDATE_GOLDEN=1` to rewrite the golden files after an
//! intended change (and review the diff).

mod common;

use std::path::PathBuf;

use common::{FakeSigner, all_messages};
use pec_proto::classify::classify;

fn golden_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

#[test]
fn every_kind_matches_its_golden_file() {
    let signer = FakeSigner::new();
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let mut mismatches = Vec::new();
    for (name, _, bytes) in all_messages(&signer) {
        let path = golden_dir().join(format!("{name}.eml"));
        if update {
            std::fs::write(&path, &bytes).unwrap();
            continue;
        }
        let expected = std::fs::read(&path)
            .unwrap_or_else(|e| panic!("{}: {e} (run with UPDATE_GOLDEN=1)", path.display()));
        if expected != bytes {
            mismatches.push(name);
        }
    }
    assert!(mismatches.is_empty(), "differ from golden: {mismatches:?}");
}

#[test]
fn same_inputs_give_same_bytes() {
    let a = all_messages(&FakeSigner::new());
    let b = all_messages(&FakeSigner::new());
    assert_eq!(a, b);
}

#[test]
fn classification_finds_kind_and_exact_signed_bytes() {
    let signer = FakeSigner::new();
    let messages = all_messages(&signer);
    let signed = signer.signed.lock().unwrap().clone();
    assert_eq!(signed.len(), messages.len());
    for ((name, kind, bytes), content) in messages.iter().zip(signed) {
        let c = classify(bytes);
        assert_eq!(c.kind.as_str(), *kind, "{name}");
        let parts = c
            .signed
            .as_ref()
            .unwrap_or_else(|| panic!("{name}: not signed"));
        assert_eq!(parts.content, content, "{name}: signed bytes differ");
        assert_eq!(parts.p7s, b"FAKE CMS SIGNATURE", "{name}");
        assert!(
            bytes.windows(2).all(|w| w[1] != b'\n' || w[0] == b'\r'),
            "{name}: bare LF"
        );
        assert!(
            bytes.split(|&b| b == b'\n').all(|l| l.len() <= 998),
            "{name}: long line"
        );
    }
}
