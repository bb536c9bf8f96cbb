//! Building the breve form of arbitrary originals must never panic.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = pec_proto::breve::shorten(data);
});
