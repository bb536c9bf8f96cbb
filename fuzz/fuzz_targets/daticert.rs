//! daticert.xml parsing of arbitrary bytes must never panic; what parses must write
//! a document that parses to the same value.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(d) = pec_proto::daticert::Daticert::parse(data) {
        let again = pec_proto::daticert::Daticert::parse(d.to_xml().as_bytes());
        assert!(again.is_ok(), "written daticert does not parse back");
    }
});
