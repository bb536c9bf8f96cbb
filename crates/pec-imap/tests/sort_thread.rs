//! SORT and THREAD over a session (RFC 5256, RFC 5957 SORT=DISPLAY): every sort key,
//! REVERSE and ties, UID variants, search criteria, MODSEQ, both threading algorithms,
//! and the security archive.

mod common;

use common::{deliver_at, numbers, reply};
use pec_store::Direction;

/// The text after `* THREAD ` answering `tag`.
fn threads(out: &str, tag: &str) -> String {
    let lines = reply(out, tag);
    let line = lines
        .iter()
        .find(|l| l.starts_with("* THREAD"))
        .unwrap_or_else(|| panic!("no THREAD for {tag}: {out}"));
    line["* THREAD".len()..].trim().to_string()
}

fn sort(out: &str, tag: &str) -> Vec<u32> {
    numbers(out, tag, "* SORT")
}

#[tokio::test]
async fn sort_and_thread_are_announced_after_login() {
    let (_dir, config) = common::config(None);
    let out = common::session(config, "c CAPABILITY\r\n").await;
    let greeting = out.lines().next().unwrap_or_default();
    let caps = reply(&out, "c").join(" ");
    for cap in [
        " SORT ",
        " SORT=DISPLAY ",
        " THREAD=REFERENCES ",
        " THREAD=ORDEREDSUBJECT ",
    ] {
        assert!(format!("{caps} ").contains(cap), "{cap} missing: {caps}");
        assert!(
            !greeting.contains(cap.trim()),
            "{cap} before login: {greeting}"
        );
    }
}

#[tokio::test]
async fn sort_by_every_key() {
    let (_dir, config) = common::config(None);
    let body = |n: usize| "x".repeat(1000 * n);
    let messages = [
        format!(
            "From: Zeta <z@x.it>\nTo: b@x.it\nSubject: Re: beta\n\
Date: Mon, 1 Jan 2024 10:00:00 +0100\n\n{}\n",
            body(4)
        ),
        format!(
            "From: alfa@x.it\nTo: \"Anna\" <c@x.it>\nCc: q@x.it\nSubject: alpha\n\
Date: Mon, 1 Jan 2024 08:00:00 +0000\n\n{}\n",
            body(1)
        ),
        format!(
            "From: =?utf-8?q?=C3=89mile?= <m@x.it>\nTo: a@x.it\nSubject: [lista] Beta\n\n{}\n",
            body(3)
        ),
        format!(
            "From: beta@x.it\nSubject: ALPHA (fwd)\nDate: Mon, 1 Jan 2024 09:30:00 +0100\n\n{}\n",
            body(2)
        ),
    ];
    deliver_at(
        &config,
        &[
            (&messages[0], 300),
            (&messages[1], 100),
            (&messages[2], 200),
            (&messages[3], 50),
        ],
    );
    let out = common::session_lines(
        config,
        "s SELECT INBOX\n\
a SORT (ARRIVAL) UTF-8 ALL\n\
b SORT (DATE) UTF-8 ALL\n\
c SORT (SUBJECT) UTF-8 ALL\n\
d SORT (REVERSE SUBJECT ARRIVAL) UTF-8 ALL\n\
e SORT (FROM) UTF-8 ALL\n\
f SORT (DISPLAYFROM) UTF-8 ALL\n\
g SORT (TO) US-ASCII ALL\n\
h SORT (DISPLAYTO) US-ASCII ALL\n\
i SORT (CC) US-ASCII ALL\n\
j SORT (SIZE) US-ASCII ALL\n\
k SORT (REVERSE SIZE) US-ASCII ALL\n\
r SORT (SUBJECT) UTF-8 NOT FROM zeta\n\
m SORT (ARRIVAL) UTF-8 MODSEQ 1\n\
n SORT (SUBJECT) UTF-8 9\n\
x STORE 2 +FLAGS (\\Deleted)\n\
y EXPUNGE\n\
o UID SORT (ARRIVAL) UTF-8 ALL\n\
p SORT (ARRIVAL) UTF-8 ALL\n\
q UID SORT (ARRIVAL) UTF-8 UID 1:3\n",
    )
    .await;
    assert_eq!(sort(&out, "a"), [4, 2, 3, 1], "ARRIVAL");
    // Message 3 has no Date: its INTERNALDATE (200 s after the epoch) is its date.
    assert_eq!(sort(&out, "b"), [3, 2, 4, 1], "DATE, in UTC");
    assert_eq!(sort(&out, "c"), [2, 4, 1, 3], "SUBJECT, base subjects");
    assert_eq!(
        sort(&out, "d"),
        [3, 1, 4, 2],
        "REVERSE SUBJECT, then ARRIVAL"
    );
    assert_eq!(sort(&out, "e"), [2, 4, 3, 1], "FROM, the local part");
    assert_eq!(sort(&out, "f"), [2, 4, 1, 3], "DISPLAYFROM, decoded names");
    assert_eq!(sort(&out, "g"), [4, 3, 1, 2], "TO, none first");
    assert_eq!(sort(&out, "h"), [4, 3, 2, 1], "DISPLAYTO");
    assert_eq!(
        sort(&out, "i"),
        [1, 3, 4, 2],
        "CC, equal keys in mailbox order"
    );
    assert_eq!(sort(&out, "j"), [2, 4, 3, 1], "SIZE");
    assert_eq!(sort(&out, "k"), [1, 3, 4, 2], "REVERSE SIZE");
    assert_eq!(
        sort(&out, "r"),
        [2, 4, 3],
        "search criteria pick the messages"
    );
    let m = reply(&out, "m");
    assert!(
        m.iter()
            .any(|l| l.starts_with("* SORT 4 2 3 1 (MODSEQ ") && l.ends_with(')')),
        "{m:?}"
    );
    assert_eq!(sort(&out, "n"), Vec::<u32>::new(), "nothing matches");
    // After the expunge UIDs 1, 3, 4 are sequence numbers 1, 2, 3.
    assert_eq!(sort(&out, "o"), [4, 3, 1], "UID SORT");
    assert_eq!(sort(&out, "p"), [3, 2, 1]);
    assert_eq!(sort(&out, "q"), [3, 1], "UID criteria, UID numbers");
}

#[tokio::test]
async fn thread_by_references_and_by_subject() {
    let (_dir, config) = common::config(None);
    let m = |id: u32, links: &str, subject: &str, time: &str| {
        format!(
            "Message-ID: <{id}@x>\n{links}Subject: {subject}\n\
Date: Mon, 1 Jan 2024 {time}:00 +0000\n\nbody\n"
        )
    };
    let messages = [
        "Subject: scarto\n\nbody\n".to_string(),
        m(1, "", "piano", "10:00"),
        m(2, "In-Reply-To: <1@x>\n", "Re: piano", "11:00"),
        m(3, "References: <1@x> <2@x>\n", "Re: piano", "12:00"),
        m(4, "References: <1@x>\n", "Re: piano", "10:30"),
        m(5, "References: <missing@x>\n", "Re: cena", "09:00"),
        m(6, "", "cena", "13:00"),
        m(7, "", "altro", "08:00"),
    ];
    let dated: Vec<(&str, i64)> = messages.iter().map(|m| (m.as_str(), 0)).collect();
    deliver_at(&config, &dated);
    // The first message goes, so each UID is its sequence number + 1.
    let out = common::session_lines(
        config,
        "s SELECT INBOX\n\
x STORE 1 +FLAGS (\\Deleted)\n\
y EXPUNGE\n\
a THREAD REFERENCES UTF-8 ALL\n\
b THREAD ORDEREDSUBJECT UTF-8 ALL\n\
c UID THREAD REFERENCES UTF-8 ALL\n\
d THREAD REFERENCES US-ASCII SUBJECT piano\n\
e UID THREAD ORDEREDSUBJECT UTF-8 NOT SUBJECT piano\n\
f THREAD REFERENCES UTF-8 SUBJECT nothing\n",
    )
    .await;
    // 4 is older than 2; 5 replies to a missing message, its subject joins it to 6.
    assert_eq!(threads(&out, "a"), "(7)(1 (4)(2 3))(6 5)");
    assert_eq!(threads(&out, "b"), "(7)(5 6)(1 (4)(2)(3))");
    assert_eq!(threads(&out, "c"), "(8)(2 (5)(3 4))(7 6)");
    assert_eq!(threads(&out, "d"), "(1 (4)(2 3))");
    assert_eq!(threads(&out, "e"), "(8)(6 7)");
    assert_eq!(threads(&out, "f"), "");
}

#[tokio::test]
async fn unknown_threading_algorithms_are_refused() {
    let (_dir, config) = common::config(None);
    let out = common::session_lines(config, "s SELECT INBOX\nt THREAD JWZ UTF-8 ALL\n").await;
    assert!(out.contains("\r\nt BAD"), "{out}");
    let (_dir, config) = common::config(None);
    let out = common::session_lines(config, "t SORT (ARRIVAL) UTF-8 ALL\n").await;
    assert!(
        out.contains("\r\nt BAD"),
        "SORT without a selected folder: {out}"
    );
}

#[tokio::test]
async fn the_security_archive_sorts_and_threads() {
    let (_dir, config) = common::config(None);
    for (subject, at) in [("b", 10), ("Re: a", 20), ("a", 30)] {
        let bytes = format!("Subject: {subject}\r\n\r\ncorpo\r\n");
        config
            .store
            .archive(
                common::USER,
                bytes.as_bytes(),
                Direction::Received,
                "posta-certificata",
                at,
            )
            .unwrap();
    }
    let out = common::session_lines(
        config,
        "s SELECT \"Archivio di sicurezza\"\n\
a SORT (SUBJECT) UTF-8 ALL\n\
b SORT (REVERSE ARRIVAL) UTF-8 ALL\n\
c THREAD ORDEREDSUBJECT UTF-8 ALL\n\
d THREAD REFERENCES UTF-8 ALL\n",
    )
    .await;
    assert_eq!(sort(&out, "a"), [2, 3, 1]);
    assert_eq!(sort(&out, "b"), [3, 2, 1]);
    assert_eq!(threads(&out, "c"), "(1)(2 3)");
    // "Re: a" is a reply, so the original "a" heads the thread.
    assert_eq!(threads(&out, "d"), "(1)(3 2)");
}
