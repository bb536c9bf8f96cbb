//! The bounded MIME parse, on arbitrary bytes and on deep MIME nesting shaped by the input:
//! never a panic (mail-parser's debug assertions included) or a stack overflow, and within
//! the limits never a tree deeper or larger than the measurement said.
#![no_main]

#[path = "../../crates/pec-proto/tests/nesting/mod.rs"]
mod nesting;

use pec_proto::bounded::{self, tree_size};

/// Most nesting levels taken from one input: enough to cross the depth limit of 100.
const MAX_WRAPS: usize = 300;

fn check(raw: &[u8]) {
    let parsed = bounded::parse(raw);
    let measure = *parsed.measure();
    if let Some(message) = parsed.message() {
        let built = tree_size(message);
        if measure.within_limits() {
            assert!(
                built.depth <= measure.depth && built.parts <= measure.parts,
                "built {built:?}, measured {measure:?}"
            );
        } else {
            assert!(built.depth <= 1 && built.parts <= 1, "flat, yet {built:?}");
        }
    }
    drop(parsed);
    let _ = pec_proto::classify::classify(raw);
    let _ = pec_proto::breve::shorten(raw);
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode & 1 == 0 {
        check(rest);
        return;
    }
    // Nesting chosen by the bytes before the first NUL; what follows it, if anything, is
    // spliced into the generated message to break it somewhere.
    let (shape, junk) = match rest.iter().position(|&b| b == 0) {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, &[][..]),
    };
    let shape: Vec<u8> = if mode & 2 != 0 {
        // Repeat the shape to go past the depth limit.
        shape.iter().copied().cycle().take(MAX_WRAPS).collect()
    } else {
        shape.iter().copied().take(MAX_WRAPS).collect()
    };
    let mut raw = nesting::nest(&nesting::wraps_from_bytes(&shape));
    if let Some((&at, junk)) = junk.split_first() {
        let at = raw.len() * usize::from(at) / 256;
        raw.splice(at..at, junk.iter().copied());
    }
    check(&raw);
});
