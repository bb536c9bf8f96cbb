//! The security archive over IMAP (issue 10): its entries cannot change or go, but
//! their address can mark them read, so a client's unread count can fall.

mod common;

use pec_imap::Config;
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
            .archive_seen("altro@pec.example.it")
            .unwrap()
            .is_empty()
    );
    assert_eq!(config.store.list_archive(ANNA).unwrap().len(), 2);
}
