//! IDLE as Thunderbird uses it: news reported where the client ignores it (inside a
//! body FETCH reply) must still wake the client's next IDLE.

mod common;

use common::{Client, USER, deliver};

/// Thunderbird's sequence from issue 10: while it fetches a receipt's body a new one
/// arrives; pecd reports it inside the FETCH reply, which Thunderbird ignores; the
/// IDLE that follows must say something, or the receipt stays invisible.
#[tokio::test]
async fn news_reported_inside_fetch_wakes_the_next_idle() {
    let (_dir, config) = common::config(None);
    deliver(&config, "accettazione");
    let mut c = Client::start(config.clone());
    c.until(|t| t.contains("\r\n")).await;
    c.command("l", "LOGIN anna@pec.example.it segreta").await;
    let selected = c.command("s", "SELECT INBOX").await;
    assert!(selected.contains("* 1 EXISTS"), "{selected}");

    // The delivery receipt arrives while the client fetches the first message.
    deliver(&config, "consegna");
    config.notifier.changed(USER, "INBOX");
    let fetched = c
        .command("65", "UID fetch 1 (UID RFC822.SIZE BODY.PEEK[])")
        .await;
    let body_at = fetched.find("BODY[]").expect("the body is returned");
    let exists_at = fetched.find("* 2 EXISTS").expect("news inside FETCH");
    assert!(body_at < exists_at, "{fetched}");
    assert!(fetched.contains("65 OK"), "{fetched}");

    // Nothing changes any more: the IDLE must still repeat the news.
    c.send("66 IDLE").await;
    let idle = c
        .until(|t| t.contains("+ ") && t.ends_with("\r\n") && t.contains("\r\n* "))
        .await;
    assert!(idle.contains("* 2 EXISTS"), "{idle}");
    c.send("DONE").await;
    c.until(|t| t.contains("66 OK")).await;

    // Once an IDLE (or NOOP) has told the client, a new IDLE stays quiet until news.
    c.send("67 IDLE").await;
    let quiet = c.until(|t| t.starts_with("+ ")).await;
    assert!(!quiet.contains("EXISTS"), "{quiet}");
    deliver(&config, "terza");
    config.notifier.changed(USER, "INBOX");
    let woke = c.until(|t| t.contains("* 3 EXISTS")).await;
    assert!(woke.contains("* 3 EXISTS"), "{woke}");
    c.send("DONE").await;
    c.until(|t| t.contains("67 OK")).await;

    // News reported in a FETCH, then a NOOP: the NOOP told the client, IDLE is quiet.
    deliver(&config, "quarta");
    config.notifier.changed(USER, "INBOX");
    let fetched = c.command("68", "UID FETCH 1 (FLAGS)").await;
    assert!(fetched.contains("* 4 EXISTS"), "{fetched}");
    let noop = c.command("69", "NOOP").await;
    assert!(noop.contains("69 OK"), "{noop}");
    c.send("70 IDLE").await;
    let quiet = c.until(|t| t.starts_with("+ ")).await;
    assert!(!quiet.contains("EXISTS"), "{quiet}");
    c.send("DONE").await;
    let done = c.until(|t| t.contains("70 OK")).await;
    assert!(!done.contains("EXISTS"), "{done}");
}
