//! Reading an original message's header facts, and replacing its Message-ID, must never
//! panic; the replacement must keep the body bytes.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let o = pec_proto::original::Original::parse(data);
    let replaced = o.with_pec_msgid("fuzz@pec.example");
    let body = &data[o.body_offset().min(data.len())..];
    assert!(replaced.ends_with(body), "body bytes changed");
});
