//! Provider index (LDIF) parsing of arbitrary bytes must never panic; what parses must
//! write LDIF that parses to the same index.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(index) = pec_proto::index::ProviderIndex::parse_ldif(data) {
        let again = pec_proto::index::ProviderIndex::parse_ldif(index.to_ldif().as_bytes());
        assert_eq!(again.ok().as_ref(), Some(&index), "LDIF round trip differs");
    }
});
