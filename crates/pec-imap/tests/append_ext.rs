//! MULTIAPPEND (RFC 3502), CATENATE (RFC 4469), BINARY (RFC 3516), LITERAL+ (RFC 7888)
//! and the pre-login ID read as a stream, over in-memory sessions: commands sent as a
//! client sends them, replies checked as the RFCs require.

mod common;

use std::sync::Arc;

use pec_imap::imap_session;
use pec_store::NewAccount;

/// A literal announcing `text` (`{n}` CRLF text).
fn lit(text: &str) -> String {
    format!("{{{}}}\r\n{text}", text.len())
}

/// The tagged line of `tag`.
fn tagged<'a>(out: &'a str, tag: &str) -> &'a str {
    out.split("\r\n")
        .find(|l| l.starts_with(&format!("{tag} ")))
        .unwrap_or_else(|| panic!("no {tag} in {out}"))
}

/// What the server said between the tagged lines of `from` and `to` (the untagged
/// replies of `to`, literals included).
fn between<'a>(out: &'a str, from: &str, to: &str) -> &'a str {
    let start = out
        .find(&format!("\r\n{from} "))
        .unwrap_or_else(|| panic!("no {from}"));
    let start = start + out[start + 2..].find("\r\n").unwrap() + 4;
    let end = out
        .find(&format!("\r\n{to} "))
        .unwrap_or_else(|| panic!("no {to}"));
    assert!(
        out[end + 2..].starts_with(&format!("{to} OK")),
        "{to}: {out}"
    );
    &out[start..end]
}

/// The APPENDUID of the tagged OK of `tag`: UIDVALIDITY and the UID set as sent.
fn append_uid(out: &str, tag: &str) -> (u32, String) {
    let line = tagged(out, tag);
    let code = line
        .split("[APPENDUID ")
        .nth(1)
        .and_then(|c| c.split(']').next())
        .unwrap_or_else(|| panic!("no APPENDUID: {line}"));
    let (validity, uids) = code.split_once(' ').unwrap();
    (validity.parse().unwrap(), uids.to_string())
}

const M1: &str = "From: a@pec.example.it\r\nSubject: uno\r\n\r\nprimo corpo\r\n";
const M2: &str = "From: b@pec.example.it\r\nSubject: due\r\n\r\nsecondo corpo\r\n";

#[tokio::test]
async fn multiappend_stores_every_message_with_its_flags_and_date() {
    let (_dir, config) = common::config(None);
    let input = format!(
        "c CAPABILITY\r\n\
a1 APPEND INBOX (\\Seen) {} (\\Flagged Urgente) \" 5-Mar-2024 10:00:00 +0100\" {}\r\n\
s SELECT INBOX\r\n\
f FETCH 1:* (UID FLAGS INTERNALDATE BODY.PEEK[HEADER.FIELDS (SUBJECT)])\r\n",
        lit(M1),
        lit(M2)
    );
    let out = common::session(config, &input).await;
    let caps = common::reply(&out, "c").join(" ");
    for cap in ["MULTIAPPEND", "CATENATE", "BINARY", "LITERAL+"] {
        assert!(caps.contains(cap), "{cap} announced: {caps}");
    }
    let (validity, uids) = append_uid(&out, "a1");
    assert!(validity > 0);
    assert_eq!(uids, "1,2", "{out}");
    let fetched = between(&out, "s", "f");
    assert!(
        fetched.contains("* 1 FETCH (UID 1 FLAGS (\\Seen \\Recent)"),
        "{fetched}"
    );
    assert!(fetched.contains("Subject: uno"), "{fetched}");
    let second = fetched
        .split("\r\n")
        .find(|l| l.starts_with("* 2 FETCH (UID 2 FLAGS ("))
        .unwrap_or_else(|| panic!("{fetched}"));
    assert!(
        second.contains("Urgente")
            && second.contains("\\Flagged")
            && !second.contains("\\Seen")
            && second.contains("INTERNALDATE \"05-Mar-2024 09:00:00 +0000\""),
        "{second}"
    );
    assert!(fetched.contains("Subject: due"), "{fetched}");
    // Two messages, one APPENDUID naming both: the same UIDVALIDITY as SELECT's.
    assert!(out.contains(&format!("[UIDVALIDITY {validity}]")), "{out}");
}

#[tokio::test]
async fn multiappend_is_all_or_none() {
    let (_dir, config) = common::config(None);
    // Room for the first message, not for both.
    config
        .store
        .set_quota(common::USER, (M1.len() + M2.len() / 2) as u64)
        .unwrap();
    let input = format!(
        "a1 APPEND INBOX {} {}\r\n\
a2 APPEND Nessuna {} {}\r\n\
a3 APPEND INBOX {} (\\Bogus \r\n\
st STATUS INBOX (MESSAGES)\r\n",
        lit(M1),
        lit(M2),
        lit(M1),
        lit(M2),
        lit(M1)
    );
    let out = common::session(config, &input).await;
    assert!(tagged(&out, "a1").starts_with("a1 NO [OVERQUOTA]"), "{out}");
    assert!(tagged(&out, "a2").starts_with("a2 NO [TRYCREATE]"), "{out}");
    assert!(tagged(&out, "a3").starts_with("a3 BAD"), "{out}");
    let status = common::reply(&out, "st").join(" ");
    assert!(status.contains("(MESSAGES 0)"), "nothing stored: {status}");
}

#[tokio::test]
async fn catenate_joins_text_and_urls_of_the_users_own_mail() {
    let (_dir, config) = common::config(None);
    let input = format!(
        "a1 APPEND INBOX {}\r\n\
c1 CREATE Copie\r\n\
s SELECT INBOX\r\n",
        lit(M1)
    );
    let out = common::session(config.clone(), &input).await;
    let (validity, _) = append_uid(&out, "a1");
    let header = format!("/INBOX;UIDVALIDITY={validity}/;UID=1/;SECTION=HEADER");
    let input = format!(
        "b1 APPEND Copie (\\Seen) CATENATE (URL \"{header}\" TEXT {})\r\n\
b2 APPEND Copie CATENATE (TEXT {} URL \"/inbox/;uid=1/;section=text/;partial=6.5\") CATENATE (URL \"/INBOX/;UID=1\")\r\n\
b3 APPEND Copie CATENATE (URL \"/INBOX;UIDVALIDITY={}/;UID=1\")\r\n\
b4 APPEND Copie CATENATE (URL \"/INBOX/;UID=99\" TEXT {})\r\n\
b5 APPEND Nessuna CATENATE (URL \"/INBOX;UIDVALIDITY={}/;UID=1\")\r\n\
s SELECT Copie\r\n\
f FETCH 1:* (FLAGS BODY.PEEK[])\r\n",
        lit("nuovo corpo\r\n"),
        lit("Subject: parziale\r\n\r\n"),
        validity + 1,
        lit("x"),
        validity + 1,
    );
    let out = common::session(config, &input).await;
    assert!(tagged(&out, "b1").starts_with("b1 OK [APPENDUID"), "{out}");
    assert_eq!(append_uid(&out, "b2").1, "2,3", "{out}");
    let bad = format!("b3 NO [BADURL /INBOX;UIDVALIDITY={}/;UID=1]", validity + 1);
    assert!(tagged(&out, "b3").starts_with(&bad), "{out}");
    assert!(tagged(&out, "b4").starts_with("b4 NO [BADURL"), "{out}");
    // The destination is checked first (RFC 4469 5).
    assert!(tagged(&out, "b5").starts_with("b5 NO [TRYCREATE]"), "{out}");
    let fetched = between(&out, "s", "f");
    let m1_header = M1.split("\r\n\r\n").next().unwrap();
    assert!(
        fetched.contains(&format!("{m1_header}\r\n\r\nnuovo corpo\r\n")),
        "{fetched}"
    );
    assert!(
        fetched.contains("* 1 FETCH (FLAGS (\\Seen \\Recent)"),
        "{fetched}"
    );
    // "primo corpo": bytes 6..11 of the text are "corpo".
    assert!(
        fetched.contains("Subject: parziale\r\n\r\ncorpo)"),
        "{fetched}"
    );
    assert!(
        fetched.contains(&format!("{{{}}}\r\n{M1})", M1.len())),
        "{fetched}"
    );
    assert!(
        !fetched.contains("* 4 FETCH"),
        "refused appends stored nothing: {fetched}"
    );
}

#[tokio::test]
async fn catenate_cannot_read_another_users_mail_and_is_bounded() {
    let (_dir, config) = common::config(Some(200));
    config
        .store
        .create_account(&NewAccount {
            address: "bruno@pec.example.it".into(),
            password_hash: pec_imap::hash_password("altra").unwrap(),
            quota: None,
            receipts_folder: false,
        })
        .unwrap();
    config
        .store
        .deliver(
            "bruno@pec.example.it",
            "INBOX",
            b"Subject: riservato\r\n\r\nsegreto di bruno\r\n",
            &[],
            0,
        )
        .unwrap();
    common::deliver(&config, "mia");
    let many = vec!["URL \"/INBOX/;UID=1\""; 65].join(" ");
    let six = ["URL \"/INBOX/;UID=1\""; 6].join(" ");
    let input = format!(
        "a1 APPEND INBOX CATENATE (URL \"imap://bruno%40pec.example.it@localhost/INBOX/;UID=1\")\r\n\
a2 APPEND INBOX CATENATE (URL \"imap://bruno@pec.example.it@localhost/INBOX/;UID=1\")\r\n\
a3 APPEND INBOX CATENATE (URL \"imap://anna%40pec.example.it@localhost/INBOX/;UID=1\")\r\n\
a4 APPEND INBOX CATENATE ({many})\r\n\
a5 APPEND INBOX CATENATE ({six})\r\n\
s SELECT INBOX\r\n\
f FETCH 1:* BODY.PEEK[]\r\n"
    );
    let out = common::session(config, &input).await;
    assert!(tagged(&out, "a1").starts_with("a1 NO [BADURL"), "{out}");
    assert!(tagged(&out, "a2").starts_with("a2 NO [BADURL"), "{out}");
    assert!(tagged(&out, "a3").starts_with("a3 OK [APPENDUID"), "{out}");
    assert!(tagged(&out, "a4").starts_with("a4 BAD"), "{out}");
    // Six copies of a 36-byte message are over the 200-byte literal bound.
    assert!(tagged(&out, "a5").starts_with("a5 NO [TOOBIG]"), "{out}");
    assert!(!out.contains("segreto di bruno"), "{out}");
    assert!(
        out.contains("* 2 FETCH") && !out.contains("* 3 FETCH"),
        "{out}"
    );
}

const BINARY_MSG: &str = "Subject: allegati\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\n\
Content-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\nY2lhbyBtb25kbw==\r\n--b\r\n\
Content-Type: text/plain\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nperch=C3=A9 s=\r\n=C3=AC\r\n--b\r\n\
Content-Type: text/plain\r\nContent-Transfer-Encoding: x-misterioso\r\n\r\n???\r\n--b--\r\n";

#[tokio::test]
async fn binary_fetch_decodes_parts() {
    let (_dir, config) = common::config(None);
    let nul = "Subject: nul\r\nContent-Transfer-Encoding: binary\r\n\r\na\0b\r\n";
    let input = format!(
        "a1 APPEND INBOX {}\r\n\
a2 APPEND INBOX ~{{{}+}}\r\n{nul}\r\n\
s SELECT INBOX\r\n\
f1 FETCH 1 (BINARY.SIZE[1] BINARY.PEEK[1] BINARY.PEEK[2] BINARY.PEEK[1]<5.50>)\r\n\
f2 FETCH 1 (BINARY.PEEK[3])\r\n\
f3 FETCH 2 (BINARY.PEEK[1] BINARY.SIZE[1] BODY.PEEK[1])\r\n\
f4 FETCH 1 (FLAGS)\r\n\
f5 FETCH 1 (BINARY[1])\r\n",
        lit(BINARY_MSG),
        nul.len()
    );
    let out = common::session(config, &input).await;
    let f1 = between(&out, "s", "f1");
    assert!(
        f1.contains("BINARY.SIZE[1] 10 BINARY[1] {10}\r\nciao mondo BINARY[2] {11}\r\nperché sì BINARY[1]<5> {5}\r\nmondo)"),
        "{f1}"
    );
    assert!(
        tagged(&out, "f2").starts_with("f2 NO [UNKNOWN-CTE]"),
        "{out}"
    );
    // NUL only in a literal8; BODY[] shows it as a space.
    let f3 = between(&out, "f2", "f3");
    assert!(
        f3.contains("BINARY[1] ~{5}\r\na\0b\r\n BINARY.SIZE[1] 5 BODY[1] {5}\r\na b\r\n)"),
        "{f3:?}"
    );
    assert!(!between(&out, "f3", "f4").contains("\\Seen"), "PEEK: {out}");
    assert!(between(&out, "f4", "f5").contains("\\Seen"), "{out}");
}

#[tokio::test]
async fn literal_plus_after_login() {
    let (_dir, config) = common::config(Some(100));
    let input = format!(
        "a1 APPEND INBOX {{{}+}}\r\n{M1}\r\n\
a2 APPEND INBOX {{{}+}}\r\n{}\r\n",
        M1.len(),
        150,
        "x".repeat(150)
    );
    let out = common::session(config, &input).await;
    assert!(tagged(&out, "a1").starts_with("a1 OK"), "{out}");
    assert!(
        !out.contains("+ Ready"),
        "no continuation for LITERAL+: {out}"
    );
    // A non-synchronising literal over the bound comes anyway: the session ends.
    assert!(out.contains("* BYE Literal too large"), "{out}");
}

/// Sends `input` before any login and returns what the server said until it ended.
async fn unauthenticated(input: Vec<u8>) -> String {
    let (_dir, config) = common::config(None);
    common::exchange(config, input).await
}

/// An ID of `pairs` pairs whose values are `size` bytes long.
fn long_id(tag: &str, pairs: usize, size: usize) -> String {
    let value = "v".repeat(size);
    let params: Vec<String> = (0..pairs)
        .map(|i| format!("\"k{i}\" \"{value}\""))
        .collect();
    format!("{tag} ID ({})\r\n", params.join(" "))
}

#[tokio::test]
async fn a_long_id_before_login_is_answered_and_bounded() {
    // imaptest's: 30 pairs of ~1 KiB, four times the pre-login bound.
    let id = long_id("i1", 30, 1024);
    assert!(id.len() > 30_000);
    let out =
        unauthenticated(format!("c0 CAPABILITY\r\n{id}c1 CAPABILITY\r\nz LOGOUT\r\n").into_bytes())
            .await;
    let pre = common::reply(&out, "c0").join(" ");
    assert!(
        pre.contains("LITERAL-") && !pre.contains("LITERAL+"),
        "{pre}"
    );
    assert!(
        common::reply(&out, "i1")
            .iter()
            .any(|l| l.starts_with("* ID (")),
        "{out}"
    );
    assert!(tagged(&out, "c1").starts_with("c1 OK"), "{out}");
    assert!(tagged(&out, "z").starts_with("z OK"), "{out}");

    // Malformed: refused, and the session reads on.
    let bad = format!(
        "{}c1 NOOP\r\nz LOGOUT\r\n",
        long_id("i2", 10, 1024).replace(")\r\n", " \"dispari\")\r\n")
    );
    let out = unauthenticated(bad.into_bytes()).await;
    assert!(tagged(&out, "i2").starts_with("i2 BAD"), "{out}");
    assert!(tagged(&out, "c1").starts_with("c1 OK"), "{out}");

    // Over 64 KiB in all, or a non-synchronising literal at its end: the session ends.
    for hostile in [
        long_id("i3", 100, 1024),
        format!(
            "i4 ID (\"k\" \"{}\" \"x\" {{3+}}\r\nabc)\r\n",
            "v".repeat(9000)
        ),
    ] {
        let out = unauthenticated(format!("{hostile}c1 NOOP\r\n").into_bytes()).await;
        assert!(out.contains("* BYE"), "{out}");
        assert!(!out.contains("c1 OK"), "{out}");
    }
    // Anything else over the pre-login bound still ends the session.
    let out =
        unauthenticated(format!("n1 NOOP {}\r\nc1 NOOP\r\n", "x".repeat(20_000)).into_bytes())
            .await;
    assert!(out.contains("* BYE"), "{out}");
    assert!(!out.contains("c1 OK"), "{out}");
}

#[test]
fn python_imaplib_judges_the_extensions() {
    let (_dir, config) = common::config(None);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let port = listener.local_addr().unwrap().port();
    rt.spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            // Loopback in a test: the session counts as private, as a local pipe does.
            tokio::spawn(imap_session(stream, true, Arc::clone(&config)));
        }
    });
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/append_client.py");
    let out = std::process::Command::new("python3")
        .arg(&script)
        .arg(port.to_string())
        .output()
        .expect("python3 is required to run the client tests");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.trim_end().ends_with("OK"),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
