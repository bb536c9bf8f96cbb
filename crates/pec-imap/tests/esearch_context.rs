//! SEARCH and SORT with RETURN options over real sessions: ESEARCH (RFC 4731, with RFC
//! 7162's MODSEQ), ESORT and CONTEXT=SEARCH / CONTEXT=SORT (RFC 5267): MIN, MAX, ALL,
//! COUNT, PARTIAL, and live searches whose ADDTO and REMOVEFROM follow the mailbox as
//! this session and others change it, in the order the RFC requires.

mod common;

use std::sync::Arc;

use common::{Client, USER, deliver_at, deliver_to, reply};
use pec_imap::Config;

/// The `* ESEARCH` lines answering `tag` (in a reply that ends OK).
fn esearch<'a>(out: &'a str, tag: &str) -> Vec<&'a str> {
    reply(out, tag)
        .into_iter()
        .filter(|l| l.starts_with("* ESEARCH"))
        .collect()
}

/// The one `* ESEARCH` line answering `tag`.
fn one(out: &str, tag: &str) -> String {
    let lines = esearch(out, tag);
    assert_eq!(lines.len(), 1, "{tag}: {out}");
    lines[0].to_string()
}

/// Where `needle` is in `out`, failing when it is not.
fn at(out: &str, needle: &str) -> usize {
    out.find(needle)
        .unwrap_or_else(|| panic!("no {needle:?} in {out}"))
}

/// A logged-in session with INBOX selected.
async fn selected(config: &Arc<Config>) -> Client {
    let mut c = Client::start(config.clone());
    c.until(|t| t.contains("\r\n")).await;
    c.command("l", "LOGIN anna@pec.example.it segreta").await;
    c.command("s", "SELECT INBOX").await;
    c
}

/// A delivery as the delivery point makes it: stored, then the notifier told.
fn arrives(config: &Config, subject: &str) -> u32 {
    let uid = deliver_to(config, "INBOX", subject);
    config.notifier.changed(USER, "INBOX");
    uid
}

/// Five messages arrived in the order 5, 3, 4, 2, 1 (by INTERNALDATE).
fn five(config: &Config) {
    let m = |s: &str| format!("Subject: {s}\nFrom: a@b.it\n\nbody {s}\n");
    let texts: Vec<String> = ["m1", "m2", "m3", "m4", "m5"]
        .iter()
        .map(|s| m(s))
        .collect();
    deliver_at(
        config,
        &[
            (&texts[0], 500),
            (&texts[1], 400),
            (&texts[2], 200),
            (&texts[3], 300),
            (&texts[4], 100),
        ],
    );
}

#[tokio::test]
async fn the_extensions_are_announced_after_login() {
    let (_dir, config) = common::config(None);
    let out = common::session(config, "c CAPABILITY\r\n").await;
    let greeting = out.lines().next().unwrap_or_default();
    let caps = format!("{} ", reply(&out, "c").join(" "));
    for cap in ["ESEARCH", "ESORT", "CONTEXT=SEARCH", "CONTEXT=SORT"] {
        assert!(caps.contains(&format!(" {cap} ")), "{cap} missing: {caps}");
        assert!(!greeting.contains(cap), "{cap} before login: {greeting}");
    }
}

#[tokio::test]
async fn esearch_and_esort_return_what_was_asked() {
    let (_dir, config) = common::config(None);
    five(&config);
    let out = common::session(
        config,
        "n SEARCH RETURN (ALL) ALL\r\n\
         s SELECT INBOX\r\n\
         a SEARCH RETURN (MIN MAX ALL COUNT) ALL\r\n\
         b search return () 2,4:5\r\n\
         c UID SEARCH RETURN (MIN) 1000\r\n\
         d SEARCH RETURN (COUNT MIN MAX) 1000\r\n\
         e SEARCH 1:2\r\n\
         f SORT RETURN (ALL MIN MAX) (REVERSE ARRIVAL) US-ASCII ALL\r\n\
         g UID SORT RETURN (COUNT) (ARRIVAL) UTF-8 NOT 1\r\n\
         h UID SEARCH RETURN (ALL) CHARSET UTF-8 SUBJECT {2}\r\nm3\r\n\
         i SEARCH RETURN (SAVE) ALL\r\n\
         j SEARCH RETURN (MIN ALL\r\n",
    )
    .await;
    assert!(out.contains("n BAD No mailbox selected"), "{out}");
    assert_eq!(
        one(&out, "a"),
        "* ESEARCH (TAG \"a\") MIN 1 MAX 5 ALL 1:5 COUNT 5"
    );
    assert_eq!(
        one(&out, "b"),
        "* ESEARCH (TAG \"b\") ALL 2,4:5",
        "() is ALL"
    );
    assert_eq!(
        one(&out, "c"),
        "* ESEARCH (TAG \"c\") UID",
        "no MIN of nothing"
    );
    assert_eq!(one(&out, "d"), "* ESEARCH (TAG \"d\") COUNT 0");
    assert!(
        reply(&out, "e").contains(&"* SEARCH 1 2"),
        "plain SEARCH stays: {out}"
    );
    // ESORT: MIN and MAX are the first and last in the sorted order; ranges only upwards.
    assert_eq!(
        one(&out, "f"),
        "* ESEARCH (TAG \"f\") MIN 1 MAX 5 ALL 1:2,4,3,5"
    );
    assert_eq!(one(&out, "g"), "* ESEARCH (TAG \"g\") UID COUNT 4");
    assert_eq!(
        one(&out, "h"),
        "* ESEARCH (TAG \"h\") UID ALL 3",
        "criteria with a literal"
    );
    assert!(out.contains("i BAD"), "SAVE is not offered: {out}");
    assert!(out.contains("j BAD"), "{out}");
}

#[tokio::test]
async fn partial_takes_positions_of_the_ordered_result() {
    let (_dir, config) = common::config(None);
    five(&config);
    let out = common::session_lines(
        config,
        "s SELECT INBOX
         a SEARCH RETURN (PARTIAL 4:2) ALL
         b SEARCH RETURN (PARTIAL 2:10) 1:2,4:5
         c SEARCH RETURN (PARTIAL 6:9) ALL
         d SEARCH RETURN (PARTIAL -1:-2 COUNT) ALL
         e SORT RETURN (PARTIAL 1:3) (REVERSE ARRIVAL) US-ASCII ALL
         f UID SORT RETURN (PARTIAL -2:-1) (ARRIVAL) US-ASCII ALL
         g SEARCH RETURN (PARTIAL 1) ALL
         h SEARCH RETURN (PARTIAL 1:*) ALL
         i SORT RETURN (PARTIAL *:1) (ARRIVAL) US-ASCII ALL
         j SEARCH RETURN (ALL PARTIAL 1:2) ALL
         k SEARCH RETURN (PARTIAL 0:2) ALL",
    )
    .await;
    assert_eq!(one(&out, "a"), "* ESEARCH (TAG \"a\") PARTIAL (2:4 2:4)");
    assert_eq!(one(&out, "b"), "* ESEARCH (TAG \"b\") PARTIAL (2:10 2,4:5)");
    assert_eq!(one(&out, "c"), "* ESEARCH (TAG \"c\") PARTIAL (6:9 NIL)");
    assert_eq!(
        one(&out, "d"),
        "* ESEARCH (TAG \"d\") PARTIAL (-1:-2 4:5) COUNT 5",
        "negative: from the end"
    );
    // Arrival order 5, 3, 4, 2, 1; reversed 1, 2, 4, 3, 5.
    assert_eq!(one(&out, "e"), "* ESEARCH (TAG \"e\") PARTIAL (1:3 1:2,4)");
    assert_eq!(
        one(&out, "f"),
        "* ESEARCH (TAG \"f\") UID PARTIAL (-1:-2 2,1)"
    );
    for tag in ["g", "h", "i", "j", "k"] {
        assert!(out.contains(&format!("\r\n{tag} BAD")), "{tag}: {out}");
    }
}

#[tokio::test]
async fn modseq_is_that_of_the_messages_shown() {
    let (_dir, config) = common::config(None);
    five(&config);
    let out = common::session_lines(
        config,
        "s SELECT INBOX
         f FETCH 1 MODSEQ
         a STORE 1 +FLAGS (\\Seen)
         b STORE 3 +FLAGS (\\Seen)
         c STORE 2 +FLAGS (\\Seen)
         m FETCH 1:3 MODSEQ
         d SEARCH RETURN (MIN) 1:3 MODSEQ 1
         e SEARCH RETURN (MAX) 1:3 MODSEQ 1
         g SEARCH RETURN (MIN MAX COUNT) 1:3 MODSEQ 1
         h SEARCH RETURN (ALL) 4:5 MODSEQ 100000",
    )
    .await;
    // FETCH MODSEQ turns CONDSTORE on: HIGHESTMODSEQ comes first (RFC 7162 3.1).
    assert!(
        reply(&out, "f")
            .iter()
            .any(|l| l.starts_with("* OK [HIGHESTMODSEQ ")),
        "{out}"
    );
    let modseq = |seq: u32| -> u64 {
        let prefix = format!("* {seq} FETCH (MODSEQ (");
        let line = reply(&out, "m")
            .into_iter()
            .find(|l| l.starts_with(&prefix))
            .unwrap_or_else(|| panic!("no MODSEQ of {seq}: {out}"));
        line[prefix.len()..].trim_end_matches("))").parse().unwrap()
    };
    let (m1, m2, m3) = (modseq(1), modseq(2), modseq(3));
    assert!(m1 < m3 && m3 < m2, "{out}");
    assert_eq!(
        one(&out, "d"),
        format!("* ESEARCH (TAG \"d\") MIN 1 MODSEQ {m1}")
    );
    assert_eq!(
        one(&out, "e"),
        format!("* ESEARCH (TAG \"e\") MAX 3 MODSEQ {m3}")
    );
    assert_eq!(
        one(&out, "g"),
        format!("* ESEARCH (TAG \"g\") MIN 1 MAX 3 COUNT 3 MODSEQ {m2}")
    );
    assert_eq!(
        one(&out, "h"),
        "* ESEARCH (TAG \"h\")",
        "nothing, no MODSEQ"
    );
}

#[tokio::test]
async fn live_searches_follow_this_session_and_others() {
    let (_dir, config) = common::config(None);
    for s in ["m1", "m2", "m3", "m4", "m5"] {
        deliver_to(&config, "INBOX", s);
    }
    let mut c = selected(&config).await;
    let r = c.command("a", "SEARCH RETURN (UPDATE) SEEN").await;
    assert_eq!(
        one(&r, "a"),
        "* ESEARCH (TAG \"a\")",
        "UPDATE alone: no result"
    );
    let r = c.command("b", "STORE 1,2,4 +FLAGS (\\Seen)").await;
    assert!(
        r.contains("* ESEARCH (TAG \"a\") ADDTO (0 1:2,4)\r\n"),
        "{r}"
    );
    let r = c
        .command("u", "UID SEARCH RETURN (UPDATE COUNT) UNSEEN")
        .await;
    assert_eq!(one(&r, "u"), "* ESEARCH (TAG \"u\") UID COUNT 2");
    let r = c.command("c", "STORE 1 -FLAGS (\\Seen)").await;
    assert!(
        r.contains("* ESEARCH (TAG \"a\") REMOVEFROM (0 1)\r\n"),
        "{r}"
    );
    assert!(
        r.contains("* ESEARCH (TAG \"u\") UID ADDTO (0 1)\r\n"),
        "{r}"
    );
    // A change outside the criteria says nothing.
    let r = c.command("d", "STORE 3:5 +FLAGS (\\Deleted)").await;
    assert!(!r.contains("ESEARCH"), "{r}");

    // Expunged: REMOVEFROM while the sequence numbers still hold, then EXPUNGE.
    let r = c.command("e", "EXPUNGE").await;
    let removed = at(&r, "* ESEARCH (TAG \"a\") REMOVEFROM (0 4)\r\n");
    assert!(removed < at(&r, " EXPUNGE\r\n"), "{r}");
    assert!(
        r.contains("* ESEARCH (TAG \"u\") UID REMOVEFROM (0 3,5)\r\n"),
        "{r}"
    );

    // A delivery: ADDTO after EXISTS.
    let uid = arrives(&config, "nuovo");
    let r = c.command("f", "NOOP").await;
    assert!(
        at(&r, "* 3 EXISTS") < at(&r, &format!("UID ADDTO (0 {uid})")),
        "{r}"
    );

    // Another session's change, told in IDLE.
    let mut other = selected(&config).await;
    c.send("i IDLE").await;
    c.until(|t| t.contains("+ ")).await;
    other.command("o", "STORE 3 +FLAGS (\\Seen)").await;
    let r = c
        .until(|t| t.contains("(TAG \"a\") ADDTO") && t.contains("(TAG \"u\") UID REMOVEFROM"))
        .await;
    assert!(r.contains("* ESEARCH (TAG \"a\") ADDTO (0 3)\r\n"), "{r}");
    assert!(
        r.contains(&format!(
            "* ESEARCH (TAG \"u\") UID REMOVEFROM (0 {uid})\r\n"
        )),
        "{r}"
    );
    c.send("DONE").await;
    c.until(|t| t.contains("i OK")).await;

    // The same tag again with UPDATE: BAD (RFC 5267 4.3), the first one lives on.
    let r = c.command("a", "SEARCH RETURN (UPDATE) ALL").await;
    assert!(r.contains("a BAD"), "{r}");
    let r = c.command("g", "CANCELUPDATE \"a\" \"u\"").await;
    assert!(r.contains("g OK"), "{r}");
    let r = c.command("h", "STORE 1:* -FLAGS (\\Seen)").await;
    assert!(!r.contains("ESEARCH"), "cancelled: {r}");
    // Closing the folder ends its live searches too.
    c.command("v", "SEARCH RETURN (UPDATE) SEEN").await;
    c.command("x", "UNSELECT").await;
    c.command("s2", "SELECT INBOX").await;
    let r = c.command("y", "STORE 1 +FLAGS (\\Seen)").await;
    assert!(!r.contains("ESEARCH"), "{r}");
}

#[tokio::test]
async fn live_sorts_tell_positions_in_the_sorted_result() {
    let (_dir, config) = common::config(None);
    for s in ["b", "d", "a"] {
        deliver_to(&config, "INBOX", s);
    }
    let mut c = selected(&config).await;
    let r = c
        .command("t", "UID SORT RETURN (UPDATE ALL) (SUBJECT) UTF-8 UNSEEN")
        .await;
    assert_eq!(one(&r, "t"), "* ESEARCH (TAG \"t\") UID ALL 3,1:2");
    let r = c
        .command("q", "SORT RETURN (UPDATE) (REVERSE SUBJECT) UTF-8 ALL")
        .await;
    assert_eq!(one(&r, "q"), "* ESEARCH (TAG \"q\")");
    // "c" sorts third (a, b, c, d), and second in reverse (d, c, b, a).
    let uid = arrives(&config, "c");
    let r = c.command("n", "NOOP").await;
    assert!(
        r.contains(&format!("* ESEARCH (TAG \"t\") UID ADDTO (3 {uid})\r\n")),
        "{r}"
    );
    assert!(
        at(&r, "* 4 EXISTS") < at(&r, "* ESEARCH (TAG \"q\") ADDTO (2 4)\r\n"),
        "{r}"
    );
    // "b" leaves the unseen ones: from position 2 of a, b, c, d.
    let r = c.command("f", "STORE 1 +FLAGS (\\Seen)").await;
    assert!(
        r.contains("* ESEARCH (TAG \"t\") UID REMOVEFROM (2 1)\r\n"),
        "{r}"
    );
    assert!(!r.contains("(TAG \"q\")"), "{r}");
    let r = c.command("u", "UID SORT (SUBJECT) UTF-8 UNSEEN").await;
    assert!(r.contains(&format!("* SORT 3 {uid} 2\r\n")), "{r}");
    // Expunging "d" (sequence 2): position 1 of d, c, b, a, told before its EXPUNGE.
    c.command("d", "STORE 2 +FLAGS (\\Deleted)").await;
    let r = c.command("e", "EXPUNGE").await;
    assert!(
        at(&r, "* ESEARCH (TAG \"q\") REMOVEFROM (1 2)\r\n") < at(&r, "* 2 EXPUNGE"),
        "{r}"
    );
    assert!(
        r.contains("* ESEARCH (TAG \"t\") UID REMOVEFROM (3 2)\r\n"),
        "{r}"
    );
}

#[tokio::test]
async fn live_searches_are_bounded() {
    let (_dir, config) = common::config(None);
    deliver_to(&config, "INBOX", "uno");
    let mut c = selected(&config).await;
    for n in 0..16 {
        let tag = format!("k{n}");
        let r = c.command(&tag, "SEARCH RETURN (UPDATE COUNT) SEEN").await;
        assert!(!r.contains("NOUPDATE"), "{r}");
    }
    let r = c.command("k16", "SEARCH RETURN (UPDATE COUNT) SEEN").await;
    assert!(r.contains("* NO [NOUPDATE \"k16\"]"), "{r}");
    assert_eq!(
        one(&r, "k16"),
        "* ESEARCH (TAG \"k16\") COUNT 0",
        "still answered"
    );
    let r = c.command("f", "STORE 1 +FLAGS (\\Seen)").await;
    assert_eq!(r.matches("ADDTO (0 1)").count(), 16, "{r}");
    assert!(!r.contains("\"k16\""), "{r}");
}
