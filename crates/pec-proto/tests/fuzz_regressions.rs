//! Inputs the fuzzers found crashing, kept so they never crash again.

use pec_proto::classify::classify;
use pec_proto::daticert::Daticert;
use pec_proto::index::ProviderIndex;

#[test]
fn every_regression_input_is_handled() {
    let dir = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/fuzz-regressions"
    );
    let mut seen = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        // A multi-byte character straddling the 8th byte once split a line mid-character.
        if path.extension().is_some_and(|e| e == "ldif") {
            // None of these is a valid index: each must be a clear error, not a panic.
            let err = ProviderIndex::parse_ldif(&data).expect_err("not a valid index");
            assert!(!err.to_string().is_empty());
        }
        let _ = Daticert::parse(&data);
        let _ = classify(&data);
        seen += 1;
    }
    assert!(seen > 0, "no regression inputs found in {dir}");
}
