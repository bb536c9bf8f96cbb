//! APPEND with MULTIAPPEND and CATENATE, and the IMAP URLs of CATENATE parts: any
//! command parses within the bounds on messages, parts and URLs.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    pec_imap::fuzzing::append_command(data);
});
