//! LIST-EXTENDED (RFC 5258, with the RFC 6154 SPECIAL-USE option) and
//! CONDSTORE (RFC 7162) over an in-memory session.

mod common;

/// The response lines of the command tagged `tag`, its tagged line included.
fn lines_of<'a>(out: &'a str, tag: &str) -> Vec<&'a str> {
    let mut lines = Vec::new();
    let mut started = false;
    for line in out.split("\r\n") {
        if !started {
            // The previous command's tagged line ends the one before.
            started = line.starts_with("l OK");
            continue;
        }
        lines.push(line);
        if line.starts_with(&format!("{tag} ")) {
            return lines;
        }
        if line.starts_with(|c: char| c != '*') {
            lines.clear();
        }
    }
    panic!("no tagged {tag} in {out}");
}

#[tokio::test]
async fn list_extended_selection_and_return_options() {
    let (_dir, config) = common::config(None);
    let out = common::session(
        config,
        "c1 CREATE Progetti/2024\r\n\
c2 CREATE Progetti/2025\r\n\
c3 SUBSCRIBE Progetti/2024\r\n\
c4 UNSUBSCRIBE Progetti\r\n\
a1 LIST (SPECIAL-USE) \"\" \"*\"\r\n\
a2 LIST (SUBSCRIBED RECURSIVEMATCH) \"\" \"%\"\r\n\
b2 LIST (SUBSCRIBED RECURSIVEMATCH) \"\" \"Progetti*\"\r\n\
a3 LIST \"\" (\"INBOX\" \"Progetti/%\") RETURN (SUBSCRIBED CHILDREN SPECIAL-USE)\r\n\
a4 LIST (RECURSIVEMATCH) \"\" \"*\"\r\n\
a5 LIST (SUBSCRIBED) \"\" \"*\" RETURN (STATUS (MESSAGES))\r\n\
a6 CAPABILITY\r\n",
    )
    .await;
    let a1 = lines_of(&out, "a1");
    assert!(a1.last().unwrap().starts_with("a1 OK"), "{out}");
    assert!(
        a1.iter().any(|l| l.contains("\\Sent")) && a1.iter().any(|l| l.contains("\\Trash")),
        "{out}"
    );
    assert!(
        a1.iter().all(|l| !l.starts_with("* LIST")
            || l.contains("\\Sent")
            || l.contains("\\Drafts")
            || l.contains("\\Trash")
            || l.contains("\\Junk")),
        "only special-use mailboxes: {out}"
    );
    let a2 = lines_of(&out, "a2");
    assert!(
        a2.contains(&"* LIST (\\HasChildren) \"/\" Progetti (\"CHILDINFO\" (\"SUBSCRIBED\"))"),
        "{out}"
    );
    assert!(!a2.iter().any(|l| l.contains("Progetti/")), "{out}");
    // RFC 5258: CHILDINFO only for descendants the patterns do not return themselves.
    let b2 = lines_of(&out, "b2");
    assert!(
        b2.contains(&"* LIST (\\HasNoChildren \\Subscribed) \"/\" Progetti/2024"),
        "{out}"
    );
    assert!(!b2.iter().any(|l| l.contains("CHILDINFO")), "{out}");
    assert!(!b2.iter().any(|l| l.contains("2025")), "{out}");
    let a3 = lines_of(&out, "a3");
    assert!(
        a3.contains(&"* LIST (\\HasNoChildren \\Subscribed) \"/\" INBOX"),
        "{out}"
    );
    assert!(
        a3.contains(&"* LIST (\\HasNoChildren) \"/\" Progetti/2025"),
        "{out}"
    );
    assert!(
        lines_of(&out, "c4").last().unwrap().starts_with("c4 OK"),
        "CREATE made the parent: {out}"
    );
    assert!(!a3.iter().any(|l| l.contains("Sent")), "{out}");
    assert!(
        lines_of(&out, "a4").last().unwrap().starts_with("a4 BAD"),
        "{out}"
    );
    assert!(
        lines_of(&out, "a5").last().unwrap().starts_with("a5 BAD"),
        "{out}"
    );
    let caps = lines_of(&out, "a6");
    assert!(
        caps[0].contains(" LIST-EXTENDED") && caps[0].contains(" CONDSTORE"),
        "{out}"
    );
}

#[tokio::test]
async fn condstore_modseq_changedsince_unchangedsince() {
    let (_dir, config) = common::config(None);
    let out = common::session(
        config,
        "p1 APPEND INBOX {12}\r\nSubject: 1\r\n\r\n\
p2 APPEND INBOX {12}\r\nSubject: 2\r\n\r\n\
s1 SELECT INBOX (CONDSTORE)\r\n\
f1 FETCH 1:* (UID MODSEQ)\r\n\
t1 STORE 1 +FLAGS (\\Flagged)\r\n\
f2 FETCH 1:* (FLAGS) (CHANGEDSINCE 3)\r\n\
t2 STORE 1:2 (UNCHANGEDSINCE 3) +FLAGS.SILENT (\\Seen)\r\n\
t3 UID STORE 1:2 (UNCHANGEDSINCE 0) -FLAGS (\\Seen)\r\n\
q1 SEARCH MODSEQ 5\r\n\
q2 STATUS INBOX (HIGHESTMODSEQ)\r\n",
    )
    .await;
    let s1 = lines_of(&out, "s1");
    assert!(s1.contains(&"* OK [HIGHESTMODSEQ 3] Highest"), "{out}");
    let f1 = lines_of(&out, "f1");
    assert!(f1.contains(&"* 1 FETCH (UID 1 MODSEQ (2))"), "{out}");
    assert!(f1.contains(&"* 2 FETCH (UID 2 MODSEQ (3))"), "{out}");
    let t1 = lines_of(&out, "t1");
    assert!(
        t1.contains(&"* 1 FETCH (FLAGS (\\Flagged \\Recent) MODSEQ (4))"),
        "{out}"
    );
    let f2 = lines_of(&out, "f2");
    assert_eq!(f2.len(), 2, "only message 1 changed after 3: {out}");
    assert!(
        f2[0].starts_with("* 1 FETCH (FLAGS (\\Flagged \\Recent) MODSEQ (4))"),
        "{out}"
    );
    let t2 = lines_of(&out, "t2");
    assert!(
        t2.contains(&"* 2 FETCH (MODSEQ (5))"),
        ".SILENT still reports MODSEQ: {out}"
    );
    assert!(
        t2.last().unwrap().starts_with("t2 OK [MODIFIED 1]"),
        "{out}"
    );
    let t3 = lines_of(&out, "t3");
    assert!(
        t3.last().unwrap().starts_with("t3 OK [MODIFIED 1:2]")
            || t3.last().unwrap().starts_with("t3 OK [MODIFIED 1,2]"),
        "{out}"
    );
    let q1 = lines_of(&out, "q1");
    assert!(q1.contains(&"* SEARCH 2 (MODSEQ 5)"), "{out}");
    let q2 = lines_of(&out, "q2");
    assert!(q2.contains(&"* STATUS INBOX (HIGHESTMODSEQ 5)"), "{out}");
}

#[tokio::test]
async fn recent_goes_to_the_first_session_and_keywords_join_flags() {
    let (_dir, config) = common::config(None);
    let first = common::session(
        config.clone(),
        "p1 APPEND INBOX {12}\r\nSubject: 1\r\n\r\n\
p2 APPEND INBOX {12}\r\nSubject: 2\r\n\r\n\
s1 SELECT INBOX\r\n\
f1 FETCH 1 FLAGS\r\n\
q1 SEARCH RECENT\r\n\
t1 STORE 1 +FLAGS ($Pratica)\r\n",
    )
    .await;
    assert!(lines_of(&first, "s1").contains(&"* 2 RECENT"), "{first}");
    assert!(
        lines_of(&first, "f1").contains(&"* 1 FETCH (FLAGS (\\Recent))"),
        "{first}"
    );
    assert!(lines_of(&first, "q1").contains(&"* SEARCH 1 2"), "{first}");
    let t1 = lines_of(&first, "t1");
    assert_eq!(
        t1[0], "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Pratica)",
        "the new keyword is announced before it is used: {first}"
    );
    assert!(
        t1.contains(&"* 1 FETCH (FLAGS ($Pratica \\Recent))"),
        "{first}"
    );

    let second = common::session(config, "s2 SELECT INBOX\r\nq2 SEARCH OLD\r\n").await;
    let s2 = lines_of(&second, "s2");
    assert!(s2.contains(&"* 0 RECENT"), "{second}");
    assert!(
        s2.iter()
            .any(|l| l.starts_with("* FLAGS") && l.contains("$Pratica")),
        "{second}"
    );
    assert!(
        lines_of(&second, "q2").contains(&"* SEARCH 1 2"),
        "{second}"
    );
}
