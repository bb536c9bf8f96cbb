//! The Subject of every generated message starts with its PEC prefix and the start of
//! the original subject on its first line, whatever the subject (ASCII, Latin-1, emoji,
//! long, with words no line can hold): integrations match `startswith("ACCETTAZIONE: ")`
//! on the raw or compat-decoded field. Proved over random subjects with our own reading,
//! then judged by Python's `email` package under its `compat32` and `default` policies.

mod common;

use std::process::Command;

use common::{FakeSigner, ORDINARY, all_messages_about, transaction};
use pec_proto::mime::{encode_header_text, find_field, split_header};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;

/// The prefix each message of [`all_messages_about`] puts before the original subject.
fn prefix_of(name: &str) -> &'static str {
    match name {
        "busta-trasporto" => "POSTA CERTIFICATA: ",
        "busta-anomalia" => "ANOMALIA MESSAGGIO: ",
        "accettazione" => "ACCETTAZIONE: ",
        "non-accettazione" => "AVVISO DI NON ACCETTAZIONE: ",
        "non-accettazione-virus" => "AVVISO DI NON ACCETTAZIONE PER VIRUS: ",
        "presa-in-carico" => "PRESA IN CARICO: ",
        "errore-consegna-virus" => "AVVISO DI MANCATA CONSEGNA PER VIRUS: ",
        "rilevazione-virus" => "PROBLEMA DI SICUREZZA: ",
        n if n.starts_with("consegna-") => "CONSEGNA: ",
        n if n.starts_with("errore-consegna-") => "AVVISO DI MANCATA CONSEGNA: ",
        n if n.starts_with("preavviso-") => "AVVISO DI MANCATA CONSEGNA PER SUP. TEMPO MASSIMO: ",
        other => panic!("no prefix known for {other}"),
    }
}

/// Every generated message about an original whose Subject is `subject`: (prefix, bytes).
fn messages_about(subject: &str) -> Vec<(&'static str, Vec<u8>)> {
    let mut tx = transaction();
    tx.oggetto = Some(subject.to_string());
    let ordinary = String::from_utf8_lossy(ORDINARY).replace(
        "Subject: Ciao\r\n",
        &format!("Subject: {}\r\n", encode_header_text(subject)),
    );
    all_messages_about(&FakeSigner::new(), &tx, ordinary.as_bytes())
        .into_iter()
        .map(|(name, _, bytes)| (prefix_of(name), bytes))
        .collect()
}

/// The raw Subject field of `message`, name and line breaks included.
fn subject_field(message: &[u8]) -> String {
    let (fields, _) = split_header(message);
    let field = find_field(&fields, "Subject").expect("a Subject field");
    String::from_utf8(field.bytes.to_vec()).expect("an ASCII field")
}

fn words(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Subjects as users write them: short and long ASCII, one word longer than a line,
/// Latin-1, emoji and CJK mixed with ASCII, up to 400 characters.
fn subjects() -> impl Strategy<Value = String> {
    let any_char = prop_oneof![
        4 => proptest::char::range(' ', '~'),
        2 => proptest::char::range('\u{a0}', '\u{ff}'),
        1 => proptest::char::range('\u{1f300}', '\u{1f64f}'),
        1 => proptest::char::range('\u{4e00}', '\u{4eff}'),
    ];
    prop_oneof![
        "[ -~]{0,100}",
        "[ -~]{250,400}",
        "[A-Za-z0-9]{70,300}",
        "Fattura [a-z]{80,200} n\\. [0-9]{1,5}",
        prop::collection::vec(any_char, 0..400).prop_map(String::from_iter),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn every_subject_keeps_its_prefix_and_first_word_on_the_first_line(subject in subjects()) {
        for (prefix, message) in messages_about(&subject) {
            let field = subject_field(&message);
            let lines: Vec<&str> = field.trim_end_matches("\r\n").split("\r\n").collect();
            let head = format!("Subject: {prefix}");
            prop_assert!(lines[0].starts_with(&head), "{field:?}");
            if !subject.trim().is_empty() {
                // The first word of the subject (or its first encoded word) is there too.
                prop_assert!(lines[0].len() > head.len(), "{field:?}");
            }
            prop_assert!(lines.iter().all(|l| l.len() <= 998), "{field:?}");
            for continuation in &lines[1..] {
                prop_assert!(continuation.starts_with(' '), "{field:?}");
                prop_assert!(continuation.len() <= 78, "{field:?}");
            }
            let parsed = mail_parser::MessageParser::default()
                .parse(&message)
                .expect("a message");
            let decoded = parsed.subject().unwrap_or_default();
            prop_assert_eq!(words(decoded), words(&format!("{prefix}{subject}")));
        }
    }
}

#[test]
fn a_long_non_ascii_subject_is_not_folded_after_the_prefix() {
    let subject = "Comunicazione urgente: convocazione del consiglio comunale di Città di \
                   Castello per l'approvazione del bilancio";
    for (prefix, message) in messages_about(subject) {
        let field = subject_field(&message);
        let first = field.split("\r\n").next().unwrap_or_default();
        assert!(
            first.starts_with(&format!("Subject: {prefix}=?UTF-8?B?")),
            "{field}"
        );
        assert!(first.len() <= 78, "{field}");
    }
}

/// Python's `email` package, an independent reader: for each `<n>.eml` of `dir` with its
/// `<n>.txt` (the prefix, a line break, the original subject), the Subject starts with the
/// prefix under `compat32` (the raw, folded value) and `default` (decoded), and the decoded
/// value is the prefix and the subject (runs of white space aside). Prints how many
/// messages it checked.
const PYTHON_JUDGE: &str = r#"
import email, email.policy, os, sys
d = sys.argv[1]
bad, checked = [], 0
for name in sorted(os.listdir(d)):
    if not name.endswith(".eml"):
        continue
    raw = open(os.path.join(d, name), "rb").read()
    with open(os.path.join(d, name[:-4] + ".txt"), encoding="utf-8") as f:
        prefix, subject = f.read().split("\n", 1)
    for policy in (email.policy.compat32, email.policy.default):
        value = str(email.message_from_bytes(raw, policy=policy)["Subject"])
        if not value.startswith(prefix):
            bad.append((name, str(policy), value[:120]))
    decoded = str(email.message_from_bytes(raw, policy=email.policy.default)["Subject"])
    if decoded.split() != (prefix + subject).split():
        bad.append((name, "decoded", decoded[:120]))
    checked += 1
for b in bad[:20]:
    print(b, file=sys.stderr)
print(checked)
sys.exit(1 if bad else 0)
"#;

#[test]
fn python_email_sees_every_prefix_under_compat32_and_default() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut runner = TestRunner::deterministic();
    let strategy = subjects();
    let mut written = 0;
    for case in 0..40 {
        let subject = strategy.new_tree(&mut runner).expect("a subject").current();
        for (i, (prefix, message)) in messages_about(&subject).into_iter().enumerate() {
            let stem = dir.path().join(format!("{case:03}-{i:02}"));
            std::fs::write(stem.with_extension("eml"), &message).expect("write");
            std::fs::write(stem.with_extension("txt"), format!("{prefix}\n{subject}"))
                .expect("write");
            written += 1;
        }
    }
    let out = Command::new("python3")
        .arg("-c")
        .arg(PYTHON_JUDGE)
        .arg(dir.path())
        .output()
        .expect("python3 is required");
    assert!(
        out.status.success(),
        "Python's email disagrees:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        written.to_string(),
        "every message checked"
    );
}

/// About an original without a Subject, every message still reads as its own kind: its
/// Subject is the bare prefix, which a parser reads without the trailing space (an
/// envelope or a receipt about such a message was once taken for an anomaly).
#[test]
fn messages_about_an_original_without_subject_are_of_their_own_kind() {
    let mut tx = transaction();
    tx.oggetto = None;
    for (name, kind, bytes) in all_messages_about(&FakeSigner::new(), &tx, ORDINARY) {
        if name == "busta-anomalia" {
            continue; // About the ordinary message, which has a Subject.
        }
        let c = pec_proto::classify::classify(&bytes);
        assert_eq!(c.kind.as_str(), kind, "{name}");
        assert!(
            c.headers
                .subject
                .as_deref()
                .is_some_and(|s| !s.ends_with(' ')),
            "{name}: {:?}",
            c.headers.subject
        );
        assert!(c.is_well_formed(), "{name}: {:?}", c.problems);
    }
}
