//! Classification (and signature verification) of arbitrary bytes must never panic.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let c = pec_proto::classify::classify(data);
    let _ = c.verify_signature();
});
