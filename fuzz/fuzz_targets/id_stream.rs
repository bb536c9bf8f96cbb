//! A pre-login ID read as a stream past the pre-login bound: any bytes, in any pieces,
//! are read alike and keep no more than 30 pairs of 1 KiB, and no command longer than
//! 64 KiB is read.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    // The first byte says how large the pieces are.
    let Some((&chunk, rest)) = data.split_first() else {
        return;
    };
    pec_imap::fuzzing::id_stream(rest, usize::from(chunk).max(1));
});
