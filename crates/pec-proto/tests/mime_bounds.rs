//! The bounded MIME parse: hostile nesting and boundary tricks are parsed flat on a thread
//! with a tokio worker's stack, normal messages exactly as `mail-parser` parses them, and
//! the measurement never counts less than what `mail-parser` builds.

mod common;
mod nesting;

use common::{FakeSigner, ORIGINAL, all_messages};
use mail_parser::{Message, MessageParser, MimeHeaders, PartType};
use nesting::{Wrap, nest, wraps_from_bytes};
use pec_proto::bounded::{self, Exceeded, MimeLimits, tree_size};
use pec_proto::classify::{Kind, classify};
use proptest::prelude::*;

/// Runs `f` on a thread with the 2 MiB stack of a tokio worker, as the IMAP and SMTP
/// sessions do; a stack overflow there aborts the test binary.
fn on_worker_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(f)
        .unwrap()
        .join()
        .unwrap()
}

/// How deep part `id` of `message` goes, recursing once per level like the IMAP
/// `BODYSTRUCTURE` builder and encoder do: what callers may do with a bounded parse.
fn recursive_depth(message: &Message<'_>, id: usize) -> usize {
    match message.parts.get(id).map(|p| &p.body) {
        Some(PartType::Multipart(children)) => {
            1 + children
                .iter()
                .map(|&c| recursive_depth(message, c as usize))
                .max()
                .unwrap_or(0)
        }
        Some(PartType::Message(inner)) => 1 + recursive_depth(inner, 0),
        Some(_) => 1,
        None => 0,
    }
}

/// Parses and classifies `raw` on a worker stack; returns why it was flat.
fn hostile(raw: Vec<u8>) -> Exceeded {
    on_worker_stack(move || {
        let parsed = bounded::parse(&raw);
        let message = parsed.message().expect("the headers are there");
        assert!(recursive_depth(message, 0) <= MimeLimits::DEFAULT.max_depth);
        assert!(parsed.is_flat());
        assert_eq!(message.parts.len(), 1, "flat: one part");
        assert_eq!(message.subject(), Some("nested"));
        assert!(message.parts[0].content_type().is_none());
        let c = classify(&raw);
        assert_eq!(c.kind, Kind::Ordinaria);
        assert_eq!(c.headers.subject.as_deref(), Some("nested"));
        assert!(
            c.problems.iter().any(|p| p.contains("too complex")),
            "{:?}",
            c.problems
        );
        parsed.measure().exceeded.expect("flat has a reason")
    })
}

#[test]
fn deep_multipart_mixed_is_flat() {
    assert_eq!(hostile(nest(&[Wrap::Mixed; 20_000])), Exceeded::Depth);
}

#[test]
fn deep_message_rfc822_is_flat() {
    assert_eq!(hostile(nest(&[Wrap::Rfc822; 20_000])), Exceeded::Depth);
}

#[test]
fn deep_digest_children_are_flat() {
    assert_eq!(hostile(nest(&[Wrap::Digest; 20_000])), Exceeded::Depth);
}

#[test]
fn deep_messages_inside_a_base64_message_are_flat() {
    let mut wraps = vec![Wrap::Base64Rfc822];
    wraps.extend([Wrap::Rfc822; 20_000]);
    assert_eq!(hostile(nest(&wraps)), Exceeded::Depth);
}

#[test]
fn boundaries_that_never_occur_are_counted() {
    // 20,000 parts each declaring a boundary that never comes: each one a scan to the end.
    let mut raw = b"From: a@example.test\r\nSubject: nested\r\n\
                    Content-Type: multipart/mixed; boundary=\"B\"\r\n\r\n"
        .to_vec();
    for i in 0..20_000 {
        raw.extend_from_slice(
            format!("--B\r\nContent-Type: multipart/mixed; boundary=\"X{i}\"\r\n\r\nx\r\n")
                .as_bytes(),
        );
    }
    raw.extend_from_slice(b"--B--\r\n");
    assert_eq!(hostile(raw), Exceeded::FailedSearches);
}

#[test]
fn too_many_parts_and_long_boundaries_are_flat() {
    let mut raw = b"From: a@example.test\r\nSubject: nested\r\n\
                    Content-Type: multipart/mixed; boundary=\"B\"\r\n\r\n"
        .to_vec();
    for _ in 0..MimeLimits::DEFAULT.max_parts {
        raw.extend_from_slice(b"--B\r\n\r\nx\r\n");
    }
    raw.extend_from_slice(b"--B--\r\n");
    assert_eq!(hostile(raw), Exceeded::Parts);

    let long = "-".repeat(MimeLimits::DEFAULT.max_boundary_len + 1);
    let raw = format!(
        "From: a@example.test\r\nSubject: nested\r\n\
         Content-Type: multipart/mixed; boundary=\"{long}\"\r\n\r\n--{long}\r\n\r\nx\r\n--{long}--\r\n"
    );
    assert_eq!(hostile(raw.into_bytes()), Exceeded::BoundaryLength);
}

#[test]
fn a_message_directly_inside_a_message_at_a_closing_boundary_is_flat() {
    // mail-parser closes the outer attached message as if it were the multipart: debug
    // builds panic ("Invalid part ID"), release builds drop what follows.
    let raw = b"From: a@example.test\r\nSubject: nested\r\n\
                Content-Type: multipart/mixed; boundary=\"B\"\r\n\r\n--B\r\n\
                Content-Type: message/rfc822\r\n\r\nContent-Type: message/rfc822\r\n\r\n\
                Subject: inner\r\n\r\nhello\r\n--B--\r\n";
    assert_eq!(hostile(raw.to_vec()), Exceeded::Inconsistent);
    // The same message followed by another part is read in full.
    let raw = b"Content-Type: multipart/mixed; boundary=\"B\"\r\n\r\n--B\r\n\
                Content-Type: message/rfc822\r\n\r\nContent-Type: message/rfc822\r\n\r\n\
                Subject: inner\r\n\r\nhello\r\n--B\r\n\r\nafter\r\n--B--\r\n";
    assert!(!bounded::parse(raw).is_flat());
}

#[test]
fn the_classify_fuzz_crash_is_flat() {
    // What stopped the classify fuzz target at mail-parser's "Invalid part ID" assertion:
    // a mangled receipt where a postacert.eml directly holds another attached message.
    let raw = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/fuzz-regressions/classify-message-in-message-at-closing-boundary.eml"
    ))
    .unwrap();
    let parsed = bounded::parse(&raw);
    assert_eq!(parsed.measure().exceeded, Some(Exceeded::Inconsistent));
    assert_eq!(parsed.message().unwrap().parts.len(), 1);
}

#[test]
fn the_limits_are_inclusive() {
    // 99 wraps around the text part: the text part is at depth 100.
    let raw = nest(&[Wrap::Mixed; 99]);
    let m = bounded::measure(&raw, &MimeLimits::DEFAULT);
    assert_eq!((m.depth, m.exceeded), (100, None));
    let raw = nest(&[Wrap::Mixed; 100]);
    let m = bounded::measure(&raw, &MimeLimits::DEFAULT);
    assert_eq!((m.depth, m.exceeded), (101, Some(Exceeded::Depth)));
    assert_eq!(m.parts, 101, "stopped at the first part too deep");
}

#[test]
fn flat_mode_keeps_the_headers() {
    let tight = MimeLimits {
        max_depth: 1,
        ..MimeLimits::DEFAULT
    };
    let flat = bounded::parse_within(ORIGINAL, &tight);
    assert!(flat.is_flat());
    assert_eq!(flat.measure().exceeded, Some(Exceeded::Depth));
    let flat = flat.message().unwrap();
    let full = MessageParser::default().parse(ORIGINAL).unwrap();
    assert_eq!(flat.subject(), full.subject());
    assert_eq!(flat.from(), full.from());
    assert_eq!(flat.to(), full.to());
    assert_eq!(flat.cc(), full.cc());
    assert_eq!(flat.date(), full.date());
    assert_eq!(flat.message_id(), full.message_id());
    assert_eq!(flat.received(), full.received());
    assert_eq!(flat.parts.len(), 1);
    let root = &flat.parts[0];
    assert_eq!(root.offset_body, full.parts[0].offset_body);
    assert_eq!(root.offset_end as usize, ORIGINAL.len());
}

/// Every part: the expected shape and what the measurement must say about it.
fn agrees_with_mail_parser(raw: &[u8]) -> Result<(), TestCaseError> {
    let m = bounded::measure(raw, &MimeLimits::DEFAULT);
    if m.exceeded == Some(Exceeded::Inconsistent) {
        // mail-parser itself would trip over its debug assertions here.
        return Ok(());
    }
    let parsed = bounded::parse(raw);
    prop_assert_eq!(parsed.measure(), &m);
    let full = MessageParser::default().parse(raw);
    if let Some(built) = full.as_ref().map(tree_size) {
        prop_assert!(built.depth <= m.depth, "{built:?} vs {m:?}");
        prop_assert!(built.parts <= m.parts, "{built:?} vs {m:?}");
    }
    if m.within_limits() {
        prop_assert_eq!(parsed.message(), full.as_ref());
    } else {
        prop_assert!(parsed.is_flat());
    }
    Ok(())
}

/// Pieces that make MIME structure, to be strung together at random.
const TOKENS: [&str; 16] = [
    "Content-Type: multipart/mixed; boundary=\"a\"\r\n",
    "Content-Type: multipart/digest; boundary=\"b\"\r\n",
    "Content-Type: multipart/alternative; boundary=\"a\"\r\n",
    "Content-Type: message/rfc822\r\n",
    "Content-Type: text/plain\r\n",
    "Content-Transfer-Encoding: base64\r\n",
    "Content-Transfer-Encoding: quoted-printable\r\n",
    "\r\n",
    "\n",
    "--a\r\n",
    "--b\r\n",
    "--a--\r\n",
    "--b--\r\n",
    "Subject: x\r\n",
    "text ==\r\n",
    "QUJD\r\n",
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn nested_shapes_measure_at_least_what_is_built(choices in prop::collection::vec(any::<u8>(), 0..24)) {
        let raw = nest(&wraps_from_bytes(&choices));
        agrees_with_mail_parser(&raw)?;
        // Exactly one part per level (two per message level) plus the text part when the
        // shape is plain nesting, so the depth is exact there.
        let plain: Vec<Wrap> = choices.iter().map(|c| [Wrap::Mixed, Wrap::MixedWithSiblings][usize::from(*c) % 2]).collect();
        let m = bounded::measure(&nest(&plain), &MimeLimits::DEFAULT);
        prop_assert_eq!(m.depth, plain.len() + 1);
    }

    #[test]
    fn token_soup_measures_at_least_what_is_built(tokens in prop::collection::vec(0..TOKENS.len(), 0..64)) {
        let raw: String = tokens.iter().map(|&t| TOKENS[t]).collect();
        agrees_with_mail_parser(raw.as_bytes())?;
    }
}

#[test]
fn real_pec_messages_are_within_limits() {
    let signer = FakeSigner::new();
    let mut checked = 0;
    let mut check = |name: &str, raw: &[u8]| {
        let parsed = bounded::parse(raw);
        assert!(!parsed.is_flat(), "{name}: {:?}", parsed.measure());
        assert_eq!(
            parsed.message(),
            MessageParser::default().parse(raw).as_ref(),
            "{name}"
        );
        checked += 1;
    };
    for (name, _, raw) in all_messages(&signer) {
        check(name, &raw);
    }
    for dir in ["tests/fixtures/samples", "tests/golden"] {
        let dir = format!("{}/{dir}", env!("CARGO_MANIFEST_DIR"));
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "eml") {
                check(&path.display().to_string(), &std::fs::read(&path).unwrap());
            }
        }
    }
    assert!(checked > 20, "only {checked} messages found");
}

#[test]
fn an_envelope_adds_three_levels_and_eight_parts() {
    // multipart/signed > multipart/mixed > message/rfc822 around the original; beside it
    // the multipart/alternative with its text and HTML bodies, daticert.xml and smime.p7s.
    let signer = FakeSigner::new();
    let original = bounded::measure(ORIGINAL, &MimeLimits::DEFAULT);
    let (_, _, envelope) = all_messages(&signer)
        .into_iter()
        .find(|(name, _, _)| *name == "busta-trasporto")
        .expect("the transport envelope is built");
    let enclosed = bounded::measure(&envelope, &MimeLimits::DEFAULT);
    assert_eq!(enclosed.depth, original.depth + 3);
    assert_eq!(enclosed.parts, original.parts + 8);
}
