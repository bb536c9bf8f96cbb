//! NOTIFY (RFC 5465) over real sessions: news pushed between commands, as STATUS for
//! other mailboxes, as EXISTS and FETCH for the selected one, as LIST for mailboxes
//! created, renamed, deleted or subscribed; hostile NOTIFY input bounded.

mod common;

use std::sync::Arc;

use common::{Client, USER, deliver_to};
use pec_imap::Config;

/// A logged-in session.
async fn login(config: &Arc<Config>) -> Client {
    let mut c = Client::start(config.clone());
    c.until(|t| t.contains("\r\n")).await;
    c.command("l", "LOGIN anna@pec.example.it segreta").await;
    c
}

/// A delivery as the delivery point makes it: stored, then the notifier told.
fn arrives(config: &Config, folder: &str, subject: &str) -> u32 {
    let uid = deliver_to(config, folder, subject);
    config.notifier.changed(USER, folder);
    uid
}

#[tokio::test]
async fn new_messages_come_as_status_elsewhere_and_fetch_in_the_selected_folder() {
    let (_dir, config) = common::config(None);
    config.store.create_folder(USER, "Lavoro").unwrap();
    deliver_to(&config, "Lavoro", "prima");
    let mut c = login(&config).await;
    let caps = c.command("c", "CAPABILITY").await;
    assert!(
        caps.contains(" NOTIFY") && caps.contains(" QRESYNC"),
        "{caps}"
    );
    c.command("s", "SELECT INBOX").await;

    // NOTIFY SET STATUS: the state of the watched mailboxes before the OK.
    let set = c
        .command(
            "n",
            "NOTIFY SET STATUS (selected (MessageNew (UID FLAGS) MessageExpunge)) \
             (mailboxes Lavoro (MessageNew MessageExpunge))",
        )
        .await;
    let status = set.find("* STATUS Lavoro (").expect("initial STATUS");
    assert!(status < set.find("n OK").unwrap(), "{set}");
    assert!(
        set.contains("MESSAGES 1") && set.contains("UIDNEXT 2"),
        "{set}"
    );
    assert!(set.contains("UIDVALIDITY"), "{set}");
    assert!(
        !set.contains("STATUS INBOX"),
        "not for the selected one: {set}"
    );

    // No command in progress: a delivery elsewhere comes as STATUS...
    arrives(&config, "Lavoro", "seconda");
    let pushed = c.until(|t| t.contains("* STATUS Lavoro")).await;
    assert!(
        pushed.contains("MESSAGES 2") && pushed.contains("UIDNEXT 3"),
        "{pushed}"
    );
    // ... one in the selected folder as EXISTS then the FETCH asked for.
    let uid = arrives(&config, "INBOX", "ricevuta");
    let pushed = c
        .until(|t| t.contains("FETCH") && t.ends_with("\r\n"))
        .await;
    let exists = pushed.find("* 1 EXISTS").expect("EXISTS");
    let fetch = pushed.find("* 1 FETCH (").expect("FETCH");
    assert!(exists < fetch, "{pushed}");
    assert!(
        pushed.contains(&format!("UID {uid}")) && pushed.contains("FLAGS ("),
        "{pushed}"
    );

    // Another session's expunge in the selected folder is told at once (SELECTED).
    let mut other = login(&config).await;
    other.command("s", "SELECT INBOX").await;
    other.command("d", "STORE 1 +FLAGS (\\Deleted)").await;
    other.command("e", "EXPUNGE").await;
    c.until(|t| t.contains("* 1 EXPUNGE\r\n")).await;

    // A mailbox nobody asked about stays quiet; after NOTIFY NONE, so does Lavoro:
    // a STATUS would come before or with the NOOP's reply.
    arrives(&config, "Sent", "inviata");
    let noop = c.command("p", "NOOP").await;
    assert!(!noop.contains("STATUS"), "{noop}");
    c.command("o", "NOTIFY NONE").await;
    arrives(&config, "Lavoro", "terza");
    let noop = c.command("q", "NOOP").await;
    assert!(!noop.contains("STATUS"), "{noop}");
    c.command("z", "LOGOUT").await;
}

#[tokio::test]
async fn selected_delayed_holds_expunges_for_a_command_that_may_tell_them() {
    let (_dir, config) = common::config(None);
    let first = deliver_to(&config, "INBOX", "prima");
    deliver_to(&config, "INBOX", "seconda");
    let mut c = login(&config).await;
    c.command("s", "SELECT INBOX").await;
    c.command(
        "n",
        "NOTIFY SET (selected-delayed (MessageNew MessageExpunge FlagChange))",
    )
    .await;
    let mut other = login(&config).await;
    other.command("s", "SELECT INBOX").await;

    // A flag change is pushed with the message's UID.
    other.command("f", "STORE 2 +FLAGS (\\Flagged)").await;
    let flagged = c
        .until(|t| t.contains("FETCH") && t.ends_with("\r\n"))
        .await;
    assert!(
        flagged.contains("* 2 FETCH (UID") && flagged.contains("\\Flagged"),
        "{flagged}"
    );

    // An expunge is held: the arrival that follows keeps the expunged message's slot.
    other
        .command("d", &format!("UID STORE {first} +FLAGS (\\Deleted)"))
        .await;
    other.command("e", "EXPUNGE").await;
    arrives(&config, "INBOX", "terza");
    let pushed = c.until(|t| t.contains("EXISTS\r\n")).await;
    assert!(pushed.contains("* 3 EXISTS"), "{pushed}");
    assert!(!pushed.contains("EXPUNGE"), "{pushed}");
    // FETCH may not tell it; NOOP does.
    let fetched = c.command("g", "FETCH 1 (FLAGS)").await;
    assert!(!fetched.contains("EXPUNGE"), "{fetched}");
    let noop = c.command("h", "NOOP").await;
    assert!(noop.contains("* 1 EXPUNGE"), "{noop}");
    c.command("z", "LOGOUT").await;
}

#[tokio::test]
async fn mailbox_names_and_subscriptions_come_as_list() {
    let (_dir, config) = common::config(None);
    let mut c = login(&config).await;
    c.command(
        "n",
        "NOTIFY SET (personal (MailboxName SubscriptionChange MessageNew MessageExpunge))",
    )
    .await;
    let mut other = login(&config).await;

    other.command("a", "CREATE Progetti").await;
    let created = c
        .until(|t| t.ends_with("\"Progetti\"\r\n") || t.ends_with(" Progetti\r\n"))
        .await;
    assert!(
        created.contains("* LIST (\\HasNoChildren) \"/\" Progetti"),
        "{created}"
    );

    other.command("b", "RENAME Progetti Clienti").await;
    let renamed = c.until(|t| t.contains("OLDNAME")).await;
    assert!(
        renamed.contains("* LIST (\\HasNoChildren) \"/\" Clienti (\"OLDNAME\" (\"Progetti\"))"),
        "{renamed}"
    );

    other.command("c", "SUBSCRIBE Clienti").await;
    let subscribed = c.until(|t| t.contains("Subscribed")).await;
    assert!(
        subscribed.contains("* LIST (\\HasNoChildren \\Subscribed) \"/\" Clienti"),
        "{subscribed}"
    );

    other.command("d", "DELETE Clienti").await;
    let deleted = c.until(|t| t.contains("NonExistent")).await;
    assert!(
        deleted.contains("* LIST (\\NonExistent \\Subscribed) \"/\" Clienti"),
        "the subscription stays: {deleted}"
    );

    // This session's own CREATE is told too, with the command's reply.
    let own = c.command("e", "CREATE Fatture").await;
    assert!(own.contains("\"/\" Fatture"), "{own}");

    // In IDLE the same news come (RFC 5465 4), a delivery elsewhere as STATUS.
    c.send("i IDLE").await;
    c.until(|t| t.starts_with("+ ")).await;
    other.command("f", "CREATE Ordini").await;
    c.until(|t| t.contains("\"/\" Ordini\r\n")).await;
    arrives(&config, "Ordini", "ordine");
    let status = c.until(|t| t.contains("* STATUS Ordini")).await;
    assert!(status.contains("MESSAGES 1"), "{status}");
    c.send("DONE").await;
    c.until(|t| t.contains("i OK")).await;
    c.command("z", "LOGOUT").await;
}

#[tokio::test]
async fn refusals_and_hostile_notify_input_are_bounded() {
    let (_dir, config) = common::config(None);
    let mut c = login(&config).await;
    let reply = c
        .command(
            "a",
            "NOTIFY SET (selected (MessageNew MessageExpunge AnnotationChange))",
        )
        .await;
    assert!(
        reply.contains(
            "a NO [BADEVENT (MessageNew MessageExpunge FlagChange MailboxName SubscriptionChange)]"
        ),
        "{reply}"
    );
    let reply = c.command("b", "NOTIFY SET (selected (MessageNew))").await;
    assert!(reply.contains("b BAD"), "{reply}");

    // Many mailboxes: refused before they are all read.
    let names: Vec<String> = (0..5_000).map(|i| format!("m{i}")).collect();
    let reply = c
        .command(
            "c",
            &format!(
                "NOTIFY SET (mailboxes ({}) (MessageNew MessageExpunge))",
                names.join(" ")
            ),
        )
        .await;
    assert!(reply.contains("c NO [NOTIFICATIONOVERFLOW]"), "{reply}");
    let groups = "(personal NONE) ".repeat(100);
    let reply = c
        .command("d", &format!("NOTIFY SET {}", groups.trim_end()))
        .await;
    assert!(reply.contains("d NO [NOTIFICATIONOVERFLOW]"), "{reply}");

    // Deep nesting, in the fetch list or anywhere: BAD, no recursion, the session goes on.
    let deep = format!(
        "NOTIFY SET (selected (MessageNew {}UID{} MessageExpunge))",
        "(".repeat(20_000),
        ")".repeat(20_000)
    );
    let reply = c.command("e", &deep).await;
    assert!(reply.contains("e BAD"), "{reply}");
    let reply = c
        .command("f", &format!("NOTIFY SET {}", "(".repeat(60_000)))
        .await;
    assert!(reply.contains("f BAD"), "{reply}");
    let reply = c.command("g", "NOOP").await;
    assert!(reply.contains("g OK"), "{reply}");
    c.command("z", "LOGOUT").await;
}
