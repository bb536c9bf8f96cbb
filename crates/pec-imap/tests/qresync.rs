//! QRESYNC (RFC 7162) over real sessions: a client that was away resynchronises in one
//! SELECT, and once enabled hears VANISHED instead of EXPUNGE, in IDLE too.

mod common;

use common::{Client, deliver};

/// The number after `key` in `text` (`[HIGHESTMODSEQ 7]`, `UIDVALIDITY 3`).
fn number_after(text: &str, key: &str) -> u64 {
    let at = text
        .find(key)
        .unwrap_or_else(|| panic!("no {key} in {text}"))
        + key.len();
    text[at..]
        .trim_start()
        .chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .unwrap()
}

/// The untagged lines of `reply` that start with `prefix`.
fn lines<'a>(reply: &'a str, prefix: &str) -> Vec<&'a str> {
    reply.lines().filter(|l| l.starts_with(prefix)).collect()
}

/// A logged-in session.
async fn login(config: &std::sync::Arc<pec_imap::Config>) -> Client {
    let mut c = Client::start(config.clone());
    c.until(|t| t.contains("\r\n")).await;
    c.command("l", "LOGIN anna@pec.example.it segreta").await;
    c
}

#[tokio::test]
async fn resync_after_expunges_in_another_session() {
    let (_dir, config) = common::config(None);
    for i in 1..=6 {
        deliver(&config, &format!("m{i}"));
    }
    // Expunged before the client last synchronised: not its news.
    let mut other = login(&config).await;
    other.command("s", "SELECT INBOX").await;
    other.command("d", "STORE 1 +FLAGS (\\Deleted)").await;
    other.command("e", "EXPUNGE").await;

    // The client synchronises, then goes away.
    let mut c = login(&config).await;
    let enabled = c.command("a", "ENABLE QRESYNC").await;
    assert!(enabled.contains("* ENABLED QRESYNC"), "{enabled}");
    let selected = c.command("b", "SELECT INBOX").await;
    let modseq = number_after(&selected, "[HIGHESTMODSEQ");
    let uidvalidity = number_after(&selected, "[UIDVALIDITY");
    c.command("z", "LOGOUT").await;

    // Meanwhile another session flags one message and expunges two.
    other.command("f", "UID STORE 2 +FLAGS (\\Flagged)").await;
    other.command("g", "UID STORE 3,5 +FLAGS (\\Deleted)").await;
    let expunged = other.command("h", "EXPUNGE").await;
    assert!(
        !expunged.contains("VANISHED"),
        "not enabled there: {expunged}"
    );

    let mut c = login(&config).await;
    let refused = c
        .command(
            "q",
            &format!("SELECT INBOX (QRESYNC ({uidvalidity} {modseq}))"),
        )
        .await;
    assert!(refused.contains("q BAD"), "QRESYNC needs ENABLE: {refused}");
    c.command("a", "ENABLE QRESYNC").await;
    let resync = c
        .command(
            "b",
            &format!("SELECT INBOX (QRESYNC ({uidvalidity} {modseq} 1:6))"),
        )
        .await;
    assert!(resync.contains("* 3 EXISTS"), "{resync}");
    assert_eq!(
        lines(&resync, "* VANISHED"),
        vec!["* VANISHED (EARLIER) 3,5"],
        "exactly what went since: {resync}"
    );
    let fetches = lines(&resync, "* 1 FETCH");
    assert_eq!(fetches.len(), 1, "{resync}");
    assert!(
        fetches[0].contains("UID 2") && fetches[0].contains("\\Flagged"),
        "{resync}"
    );
    assert!(number_after(fetches[0], "MODSEQ (") > modseq, "{resync}");
    assert_eq!(
        lines(&resync, "* ")
            .iter()
            .filter(|l| l.contains("FETCH"))
            .count(),
        1
    );
    let (vanished_at, fetch_at) = (
        resync.find("VANISHED").unwrap(),
        resync.find("FETCH").unwrap(),
    );
    assert!(vanished_at < fetch_at, "VANISHED comes first: {resync}");

    // Known UIDs limit the report; selecting again closes the first one.
    let known = c
        .command(
            "c",
            &format!("SELECT INBOX (QRESYNC ({uidvalidity} {modseq} 1:4))"),
        )
        .await;
    assert!(known.starts_with("* OK [CLOSED]"), "{known}");
    assert_eq!(lines(&known, "* VANISHED"), vec!["* VANISHED (EARLIER) 3"]);
    // Another UIDVALIDITY: the client must start again, nothing is resynchronised.
    let stale = c
        .command(
            "d",
            &format!("SELECT INBOX (QRESYNC ({} {modseq}))", uidvalidity + 1),
        )
        .await;
    assert!(
        !stale.contains("VANISHED") && !stale.contains("FETCH"),
        "{stale}"
    );

    // The same from UID FETCH.
    let fetched = c
        .command(
            "e",
            &format!("UID FETCH 1:* (FLAGS) (CHANGEDSINCE {modseq} VANISHED)"),
        )
        .await;
    assert_eq!(
        lines(&fetched, "* VANISHED"),
        vec!["* VANISHED (EARLIER) 3,5"]
    );
    assert_eq!(lines(&fetched, "* 1 FETCH").len(), 1, "{fetched}");
    assert!(!fetched.contains("UID 4"), "unchanged: {fetched}");
    for bad in [
        "FETCH 1:* (FLAGS) (CHANGEDSINCE 1 VANISHED)",
        "UID FETCH 1:* (FLAGS) (VANISHED)",
    ] {
        let reply = c.command("x", bad).await;
        assert!(reply.contains("x BAD"), "{bad}: {reply}");
    }
    // Hostile known UIDs and sequence match data are refused, the session goes on.
    let many = vec!["1"; 10_001].join(",");
    let reply = c
        .command(
            "y",
            &format!("SELECT INBOX (QRESYNC ({uidvalidity} {modseq} {many}))"),
        )
        .await;
    assert!(reply.contains("y BAD"), "{reply}");
    let reply = c
        .command(
            "w",
            &format!("SELECT INBOX (QRESYNC ({uidvalidity} {modseq} 1:6 (1:3 2:6)))"),
        )
        .await;
    assert!(reply.contains("w BAD"), "3 numbers against 5 UIDs: {reply}");
    let reply = c
        .command(
            "v",
            &format!("SELECT INBOX (QRESYNC ({uidvalidity} {modseq} 1:6 (1:2 2,4)))"),
        )
        .await;
    assert!(
        reply.contains("v OK") && reply.contains("VANISHED (EARLIER) 3,5"),
        "{reply}"
    );
    c.command("z", "LOGOUT").await;
}

#[tokio::test]
async fn vanished_instead_of_expunge_in_idle_and_after_expunge() {
    let (_dir, config) = common::config(None);
    for i in 1..=4 {
        deliver(&config, &format!("m{i}"));
    }
    let mut c = login(&config).await;
    c.command("a", "ENABLE QRESYNC").await;
    c.command("b", "SELECT INBOX").await;
    let mut other = login(&config).await;
    other.command("s", "SELECT INBOX").await;

    c.send("i IDLE").await;
    c.until(|t| t.starts_with("+ ")).await;
    other.command("d", "UID STORE 2,3 +FLAGS (\\Deleted)").await;
    // The flag change first, then the expunge, both while idling.
    c.until(|t| t.matches("FETCH").count() == 2).await;
    other.command("e", "EXPUNGE").await;
    let pushed = c.until(|t| t.contains("* VANISHED 2:3\r\n")).await;
    assert!(!pushed.contains("EXPUNGE"), "{pushed}");
    c.send("DONE").await;
    c.until(|t| t.contains("i OK")).await;

    // Its own expunge, and a MOVE, are told with VANISHED too.
    c.command("f", "UID STORE 4 +FLAGS (\\Deleted)").await;
    let expunged = c.command("g", "EXPUNGE").await;
    assert!(expunged.contains("* VANISHED 4\r\n"), "{expunged}");
    assert!(!expunged.contains("EXPUNGE\r\n"), "{expunged}");
    let moved = c.command("h", "UID MOVE 1 Sent").await;
    assert!(moved.contains("* VANISHED 1\r\n"), "{moved}");
    c.command("z", "LOGOUT").await;
}
