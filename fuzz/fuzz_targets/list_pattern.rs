//! LIST mailbox patterns: any pattern against any name answers in linear time and, on
//! inputs small enough for it, as the obvious backtracking matcher does.
#![no_main]

use pec_imap::fuzzing::list_pattern_matches;

/// The backtracking reference (exponential: only for short patterns).
fn reference(pattern: &[u8], name: &[u8]) -> bool {
    match pattern.split_first() {
        None => name.is_empty(),
        Some((b'*', rest)) => (0..=name.len()).any(|i| reference(rest, &name[i..])),
        Some((b'%', rest)) => (0..=name.len())
            .take_while(|&i| i == 0 || name[i - 1] != b'/')
            .any(|i| reference(rest, &name[i..])),
        Some((c, rest)) => name.first() == Some(c) && reference(rest, &name[1..]),
    }
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    // The first byte says where the pattern ends and the name starts.
    let Some((&split, rest)) = data.split_first() else {
        return;
    };
    let at = usize::from(split).min(rest.len());
    let (pattern, name) = rest.split_at(at);
    let Some(answer) = list_pattern_matches(pattern, name) else {
        return;
    };
    let wildcards = pattern.iter().filter(|&&b| b == b'*' || b == b'%').count();
    if wildcards <= 6 && name.len() <= 64 {
        assert_eq!(answer, reference(pattern, name), "{pattern:?} {name:?}");
    }
});
