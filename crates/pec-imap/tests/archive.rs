//! The security archive over IMAP (issue 10): its entries cannot change or go, but
//! their address can mark them read, so a client's unread count can fall.

mod common;

use common::Client;
use pec_imap::{ARCHIVE_FOLDER, Config};
use pec_store::Direction;

const ANNA: &str = "anna@pec.example.it";

/// The lines answering the command tagged `tag`, its tagged line last.
fn reply<'a>(out: &'a str, tag: &str) -> Vec<&'a str> {
    let lines: Vec<&str> = out.split("\r\n").collect();
    let end = lines
        .iter()
        .position(|l| l.starts_with(&format!("{tag} ")))
        .unwrap_or_else(|| panic!("no {tag} in {out}"));
    let start = lines[..end]
        .iter()
        .rposition(|l| !l.starts_with('*'))
        .map_or(0, |i| i + 1);
    lines[start..=end].to_vec()
}

fn archive(config: &Config, address: &str, subject: &str, at: i64) {
    let bytes = format!("Subject: {subject}\r\n\r\ncorpo\r\n");
    config
        .store
        .archive(
            address,
            bytes.as_bytes(),
            Direction::Received,
            "posta-certificata",
            at,
        )
        .unwrap();
}

#[tokio::test]
async fn archive_entries_can_be_marked_read_and_nothing_else() {
    let (_dir, config) = common::config(None);
    archive(&config, ANNA, "prima", 100);
    archive(&config, ANNA, "seconda", 200);
    archive(&config, "altro@pec.example.it", "d'altri", 300);
    let out = common::session_lines(
        config.clone(),
        "s SELECT \"Archivio di sicurezza\"\n\
a STORE 1 +FLAGS (\\Seen)\n\
b STORE 1:* +FLAGS (\\Deleted)\n\
c STORE 1 FLAGS ($Etichetta)\n\
d EXPUNGE\n\
e UID EXPUNGE 1:*\n\
f MOVE 1 Trash\n\
g COPY 1 INBOX\n\
h FETCH 2 BODY[TEXT]\n\
i FETCH 1:* FLAGS\n\
j STORE 2 -FLAGS.SILENT (\\Seen)\n\
k CLOSE\n\
m STATUS \"Archivio di sicurezza\" (MESSAGES UNSEEN)\n",
    )
    .await;
    let s = reply(&out, "s").join("\n");
    assert!(s.contains("* 2 EXISTS"), "only anna's entries: {out}");
    assert!(s.contains("[PERMANENTFLAGS (\\Seen)]"), "{out}");
    assert!(s.contains("* FLAGS (\\Seen)"), "{out}");
    assert!(s.contains("s OK [READ-WRITE]"), "{out}");
    let a = reply(&out, "a").join("\n");
    assert!(
        a.contains("* 1 FETCH (FLAGS (\\Seen))") && a.contains("a OK"),
        "{out}"
    );
    for (tag, why) in [
        ("b", "\\Deleted"),
        ("c", "keywords"),
        ("d", "EXPUNGE"),
        ("e", "UID EXPUNGE"),
        ("f", "MOVE"),
        ("g", "COPY"),
    ] {
        let last = *reply(&out, tag).last().unwrap();
        assert!(last.starts_with(&format!("{tag} NO")), "{why}: {out}");
    }
    // Reading a body marks the entry read, as in any folder.
    assert!(out.contains("corpo\r\n FLAGS (\\Seen))\r\nh OK"), "{out}");
    let i = reply(&out, "i").join("\n");
    assert!(
        i.contains("* 1 FETCH (FLAGS (\\Seen))") && i.contains("* 2 FETCH (FLAGS (\\Seen))"),
        "{out}"
    );
    assert!(
        reply(&out, "j").last().unwrap().starts_with("j OK"),
        "{out}"
    );
    assert!(
        reply(&out, "k").last().unwrap().starts_with("k OK"),
        "{out}"
    );
    let m = reply(&out, "m").join("\n");
    assert!(
        m.contains("MESSAGES 2 UNSEEN 1"),
        "CLOSE expunged nothing: {out}"
    );

    // The marks last, and are anna's alone.
    let out = common::session_lines(
        config.clone(),
        "s EXAMINE \"Archivio di sicurezza\"\n\
a FETCH 1:* (UID FLAGS)\n\
b STORE 2 +FLAGS (\\Seen)\n",
    )
    .await;
    let a = reply(&out, "a").join("\n");
    assert!(a.contains("* 1 FETCH (UID 1 FLAGS (\\Seen))"), "{out}");
    assert!(a.contains("* 2 FETCH (UID 2 FLAGS ())"), "{out}");
    assert!(
        reply(&out, "s").last().unwrap().contains("[READ-ONLY]"),
        "{out}"
    );
    assert!(
        reply(&out, "b").last().unwrap().starts_with("b NO"),
        "{out}"
    );
    assert!(
        config
            .store
            .archive_messages("altro@pec.example.it")
            .unwrap()
            .iter()
            .all(|m| m.flags.is_empty())
    );
    assert_eq!(config.store.list_archive(ANNA).unwrap().len(), 2);
}

/// The number after `word` in `text` (as in `UIDVALIDITY 7`).
fn number_after(text: &str, word: &str) -> u64 {
    let at = text
        .find(word)
        .unwrap_or_else(|| panic!("no {word} in {text}"));
    text[at + word.len()..]
        .trim_start()
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no number after {word} in {text}"))
}

/// The archive is a folder of its own: UIDs from 1 for anna whatever another address
/// archived before, a stable UIDVALIDITY, and modseqs that CONDSTORE and QRESYNC use
/// as in any folder.
#[tokio::test]
async fn archive_has_its_own_uids_and_modseqs() {
    let (_dir, config) = common::config(None);
    archive(&config, "altro@pec.example.it", "d'altri", 50);
    archive(&config, ANNA, "prima", 100);
    archive(&config, ANNA, "seconda", 200);
    let out = common::session_lines(
        config.clone(),
        "e ENABLE QRESYNC\n\
s SELECT \"Archivio di sicurezza\"\n\
a UID FETCH 1:* (FLAGS)\n\
b UID STORE 1 +FLAGS.SILENT (\\Seen)\n\
c UID STORE 1:2 (UNCHANGEDSINCE 3) +FLAGS.SILENT (\\Seen)\n\
d UID FETCH 1:* (FLAGS) (CHANGEDSINCE 4)\n\
f UID FETCH 2 BODY.PEEK[HEADER.FIELDS (SUBJECT)]\n\
g STATUS \"Archivio di sicurezza\" (UIDNEXT HIGHESTMODSEQ UNSEEN)\n",
    )
    .await;
    let s = reply(&out, "s").join("\n");
    let uidvalidity = number_after(&s, "UIDVALIDITY");
    assert!(uidvalidity > 1, "not the old shared UIDVALIDITY: {out}");
    assert!(
        s.contains("* 2 EXISTS") && s.contains("[UIDNEXT 3]"),
        "{out}"
    );
    assert!(s.contains("[HIGHESTMODSEQ 3]"), "{out}");
    let a = reply(&out, "a").join("\n");
    assert!(a.contains("* 1 FETCH (UID 1 FLAGS () MODSEQ (2))"), "{out}");
    assert!(a.contains("* 2 FETCH (UID 2 FLAGS () MODSEQ (3))"), "{out}");
    assert!(
        reply(&out, "b")
            .join("\n")
            .contains("* 1 FETCH (UID 1 MODSEQ (4))"),
        "{out}"
    );
    let c = reply(&out, "c").join("\n");
    assert!(c.contains("* 2 FETCH (UID 2 MODSEQ (5))"), "{out}");
    assert!(
        c.contains("c OK [MODIFIED 1]"),
        "changed at 4, after 3: {out}"
    );
    let d = reply(&out, "d").join("\n");
    assert!(
        d.contains("UID 2 FLAGS (\\Seen) MODSEQ (5)") && !d.contains("UID 1 "),
        "{out}"
    );
    assert!(out.contains("Subject: seconda\r\n\r\n)\r\nf OK"), "{out}");
    assert!(
        reply(&out, "g")
            .join("\n")
            .contains("UIDNEXT 3 HIGHESTMODSEQ 5 UNSEEN 0"),
        "{out}"
    );

    // A client that knew the folder at modseq 4 learns only what changed since.
    let out = common::session_lines(
        config.clone(),
        &format!(
            "e ENABLE QRESYNC\n\
s SELECT \"Archivio di sicurezza\" (QRESYNC ({uidvalidity} 4))\n"
        ),
    )
    .await;
    let s = reply(&out, "s").join("\n");
    assert!(
        s.contains("* 2 FETCH (UID 2 FLAGS (\\Seen) MODSEQ (5))"),
        "{out}"
    );
    assert!(!s.contains("* 1 FETCH"), "{out}");
    assert_eq!(number_after(&s, "UIDVALIDITY"), uidvalidity, "stable");

    // The next entry takes the next UID; another address's entries do not count.
    archive(&config, "altro@pec.example.it", "d'altri ancora", 300);
    archive(&config, ANNA, "terza", 400);
    let out = common::session_lines(
        config.clone(),
        "s EXAMINE \"Archivio di sicurezza\"\n\
a UID FETCH 3 (UID BODY.PEEK[HEADER.FIELDS (SUBJECT)])\n",
    )
    .await;
    assert!(reply(&out, "s").join("\n").contains("[UIDNEXT 4]"), "{out}");
    assert!(out.contains("Subject: terza\r\n\r\n)\r\na OK"), "{out}");
}

/// A read mark set by one session reaches another at its next NOOP, and a new entry
/// (told to the notifier, as the gestore does) wakes an IDLE on the archive.
#[tokio::test]
async fn archive_changes_reach_other_sessions() {
    let (_dir, config) = common::config(None);
    archive(&config, ANNA, "prima", 100);
    archive(&config, ANNA, "seconda", 200);
    let mut one = Client::start(config.clone());
    let mut two = Client::start(config.clone());
    for c in [&mut one, &mut two] {
        c.until(|t| t.contains("\r\n")).await;
        c.command("l", "LOGIN anna@pec.example.it segreta").await;
        let s = c.command("s", "SELECT \"Archivio di sicurezza\"").await;
        assert!(s.contains("* 2 EXISTS"), "{s}");
    }
    let stored = one.command("a", "STORE 2 +FLAGS (\\Seen)").await;
    assert!(stored.contains("a OK"), "{stored}");
    let noop = two.command("n", "NOOP").await;
    assert!(noop.contains("* 2 FETCH (UID 2 FLAGS (\\Seen))"), "{noop}");

    two.send("i IDLE").await;
    two.until(|t| t.contains("+ ")).await;
    archive(&config, ANNA, "terza", 300);
    config.notifier.changed(ANNA, ARCHIVE_FOLDER);
    let woke = two.until(|t| t.contains("* 3 EXISTS")).await;
    assert!(woke.contains("* 3 EXISTS"), "{woke}");
    two.send("DONE").await;
    two.until(|t| t.contains("i OK")).await;
    let fetched = two.command("f", "UID FETCH 3 (UID FLAGS)").await;
    assert!(fetched.contains("* 3 FETCH (UID 3 FLAGS ())"), "{fetched}");
}

/// Entries purged at the end of their retention are told as VANISHED (EARLIER) to a
/// client resynchronising with QRESYNC: UIDs the archive no longer has.
#[tokio::test]
async fn purged_entries_vanish_for_qresync() {
    let (_dir, config) = common::config(None);
    archive(&config, ANNA, "prima", 100);
    archive(&config, ANNA, "seconda", 200);
    archive(&config, ANNA, "terza", 300);
    let uidvalidity = config.store.select_archive(ANNA).unwrap().uidvalidity;
    assert_eq!(config.store.purge_archive(150).unwrap(), 1);
    let out = common::session_lines(
        config.clone(),
        &format!(
            "e ENABLE QRESYNC\n\
s SELECT \"Archivio di sicurezza\" (QRESYNC ({uidvalidity} 4 1:3))\n\
f UID FETCH 1:* (FLAGS) (CHANGEDSINCE 1 VANISHED)\n"
        ),
    )
    .await;
    let s = reply(&out, "s").join("\n");
    assert!(s.contains("* VANISHED (EARLIER) 1\n"), "{out}");
    assert!(s.contains("* 2 EXISTS"), "{out}");
    let f = reply(&out, "f").join("\n");
    assert!(f.contains("* VANISHED (EARLIER) 1\n"), "{out}");
    assert!(f.contains("UID 2 ") && f.contains("UID 3 "), "{out}");
}
