//! The RETURN options of SEARCH and SORT and CANCELUPDATE, which pec-imap parses
//! itself: any command line parses or is refused, without panicking or hanging.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = pec_imap::fuzzing::search_return(data);
});
