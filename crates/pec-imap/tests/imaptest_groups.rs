//! Regression tests for the imaptest scripted groups pecd failed (issue 10): the same
//! messages and commands as imaptest's `fetch-bodystructure`, `fetch-envelope`,
//! `search-header`, `search-addresses`, `search-date`, `subscribe` and `listext`, with
//! the replies RFC 3501 / RFC 5258 require.

mod common;

use common::{deliver_all, reply};

/// The numbers of the `* SEARCH` reply to `tag`.
fn search(out: &str, tag: &str) -> Vec<u32> {
    common::numbers(out, tag, "* SEARCH")
}

#[tokio::test]
async fn fetch_body_is_the_non_extensible_form() {
    let (_dir, config) = common::config(None);
    deliver_all(
        &config,
        &["From: user@domain.org\n\
Date: Sat, 24 Mar 2007 23:00:00 +0200\n\
Mime-Version: 1.0\n\
Content-Type: multipart/mixed; boundary=\"foo\n bar\"\n\
\n\
--foo bar\n\
Content-Type: text/x-myown; charset=us-ascii\n\
\n\
hello\n\
\n\
--foo bar--\n"],
    );
    let out = common::session_lines(
        config,
        "s SELECT INBOX\nf FETCH 1 BODY\nb FETCH 1 BODYSTRUCTURE\n",
    )
    .await;
    let body = reply(&out, "f").join("\n");
    assert!(
        body.contains(
            "* 1 FETCH (BODY ((\"TEXT\" \"X-MYOWN\" (\"charset\" \"us-ascii\") NIL NIL \"7BIT\" 7 1) \"MIXED\"))"
        ) || body.to_ascii_uppercase().contains(
            "* 1 FETCH (BODY ((\"TEXT\" \"X-MYOWN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 7 1) \"MIXED\"))"
        ),
        "{body}"
    );
    // BODYSTRUCTURE keeps the extension data (the boundary parameter).
    let bs = reply(&out, "b").join("\n");
    assert!(bs.contains("\"MIXED\" (\"boundary\" \"foo bar\")"), "{bs}");
}

#[tokio::test]
async fn envelope_groups_routes_and_comments() {
    let (_dir, config) = common::config(None);
    let date = "Date: Thu, 15 Feb 2007 01:02:03 +0200\n";
    deliver_all(
        &config,
        &[
            &format!(
                "Message-ID: <msg@id>\nIn-Reply-To: <reply@to.id>\n{date}\
Subject: subject header\nFrom: From Real <fromuser@fromdomain.org>\n\
To: To Real <touser@todomain.org>\nCc: Cc Real <ccuser@ccdomain.org>\n\
Bcc: Bcc Real <bccuser@bccdomain.org>\nSender: Sender Real <senderuser@senderdomain.org>\n\
Reply-To: ReplyTo Real <replytouser@replytodomain.org>\n\nbody\n"
            ),
            &format!(
                "{date}From: user@domain (Real Name)\n\
To: group: g1@d1.org, g2@d2.org;, group2: g3@d3.org;\n\
Cc: group:;, group2: (foo) ;\n\nbody\n"
            ),
            &format!("{date}From: user@domain (Real Name)\nSender: \nReply-To: \n\nbody\n"),
            &format!("{date}From: <@route:user@domain>\n\nbody\n"),
        ],
    );
    let out = common::session_lines(config, "s SELECT INBOX\ne FETCH 1:* ENVELOPE\n").await;
    let env = reply(&out, "e").join("\n");
    for expected in [
        "* 1 FETCH (ENVELOPE (\"Thu, 15 Feb 2007 01:02:03 +0200\" \"subject header\" ((\"From Real\" NIL \"fromuser\" \"fromdomain.org\")) ((\"Sender Real\" NIL \"senderuser\" \"senderdomain.org\")) ((\"ReplyTo Real\" NIL \"replytouser\" \"replytodomain.org\")) ((\"To Real\" NIL \"touser\" \"todomain.org\")) ((\"Cc Real\" NIL \"ccuser\" \"ccdomain.org\")) ((\"Bcc Real\" NIL \"bccuser\" \"bccdomain.org\")) \"<reply@to.id>\" \"<msg@id>\"))",
        "* 2 FETCH (ENVELOPE (\"Thu, 15 Feb 2007 01:02:03 +0200\" NIL ((\"Real Name\" NIL \"user\" \"domain\")) ((\"Real Name\" NIL \"user\" \"domain\")) ((\"Real Name\" NIL \"user\" \"domain\")) ((NIL NIL \"group\" NIL)(NIL NIL \"g1\" \"d1.org\")(NIL NIL \"g2\" \"d2.org\")(NIL NIL NIL NIL)(NIL NIL \"group2\" NIL)(NIL NIL \"g3\" \"d3.org\")(NIL NIL NIL NIL)) ((NIL NIL \"group\" NIL)(NIL NIL NIL NIL)(NIL NIL \"group2\" NIL)(NIL NIL NIL NIL)) NIL NIL NIL))",
        "* 3 FETCH (ENVELOPE (\"Thu, 15 Feb 2007 01:02:03 +0200\" NIL ((\"Real Name\" NIL \"user\" \"domain\")) ((\"Real Name\" NIL \"user\" \"domain\")) ((\"Real Name\" NIL \"user\" \"domain\")) NIL NIL NIL NIL NIL))",
        "* 4 FETCH (ENVELOPE (\"Thu, 15 Feb 2007 01:02:03 +0200\" NIL ((NIL \"@route\" \"user\" \"domain\")) ((NIL \"@route\" \"user\" \"domain\")) ((NIL \"@route\" \"user\" \"domain\")) NIL NIL NIL NIL NIL))",
    ] {
        assert!(env.contains(expected), "expected {expected}\nin {env}");
    }
}

#[tokio::test]
async fn search_header_empty_string_means_the_field_exists() {
    let (_dir, config) = common::config(None);
    deliver_all(
        &config,
        &[
            "Subject: hello beautiful world\n\nbody\n",
            "X-Extra: hello beautiful header\nX-Extra: another one\n\nbody\n",
            "From: user-from@domain.org\nCc: user-cc@domain.org\n\nbody\n",
        ],
    );
    let out = common::session_lines(
        config,
        "s SELECT INBOX\n\
a SEARCH HEADER subject \"\"\n\
b SEARCH NOT HEADER subject \"\"\n\
c SEARCH HEADER x-extra \"\"\n\
d SEARCH NOT HEADER x-extra \"\"\n\
e SEARCH HEADER x-extra \"eautiful head\"\n\
f SEARCH HEADER x-extra another\n\
g SEARCH HEADER to \"\"\n\
h SEARCH HEADER cc \"\"\n",
    )
    .await;
    assert_eq!(search(&out, "a"), [1]);
    assert_eq!(search(&out, "b"), [2, 3]);
    assert_eq!(search(&out, "c"), [2]);
    assert_eq!(search(&out, "d"), [1, 3]);
    assert_eq!(search(&out, "e"), [2]);
    assert_eq!(search(&out, "f"), [2]);
    assert_eq!(search(&out, "g"), Vec::<u32>::new());
    assert_eq!(search(&out, "h"), [3]);
}

#[tokio::test]
async fn sent_dates_are_the_date_header_own_dates() {
    let (_dir, config) = common::config(None);
    let dates = [
        "Sat, 24 Mar 2007 23:00:00 +0200",
        "Sun, 25 Mar 2007 00:00:00 +0200",
        "Sun, 25 Mar 2007 01:00:00 +0200",
        "Sun, 25 Mar 2007 02:00:00 +0200",
        "Sun, 25 Mar 2007 04:00:00 +0300",
        "Sun, 25 Mar 2007 23:00:00 +0300",
        "Mon, 26 Mar 2007 00:00:00 +0300",
    ];
    let messages: Vec<String> = dates
        .iter()
        .map(|d| format!("Date: {d}\n\nbody\n"))
        .collect();
    let refs: Vec<&str> = messages.iter().map(String::as_str).collect();
    deliver_all(&config, &refs);
    let out = common::session_lines(
        config,
        "s SELECT INBOX\n\
a SEARCH SENTBEFORE 24-Mar-2007\n\
b SEARCH SENTBEFORE 25-Mar-2007\n\
c SEARCH SENTBEFORE 26-Mar-2007\n\
d SEARCH SENTON 25-Mar-2007\n\
e SEARCH SENTON 26-Mar-2007\n\
f SEARCH SENTSINCE 25-Mar-2007\n\
g SEARCH SENTSINCE 26-Mar-2007\n\
h SEARCH NOT SENTON 25-Mar-2007\n",
    )
    .await;
    assert_eq!(search(&out, "a"), Vec::<u32>::new());
    assert_eq!(search(&out, "b"), [1]);
    assert_eq!(search(&out, "c"), [1, 2, 3, 4, 5, 6]);
    assert_eq!(search(&out, "d"), [2, 3, 4, 5, 6]);
    assert_eq!(search(&out, "e"), [7]);
    assert_eq!(search(&out, "f"), [2, 3, 4, 5, 6, 7]);
    assert_eq!(search(&out, "g"), [7]);
    assert_eq!(search(&out, "h"), [1, 7]);
}

#[tokio::test]
async fn lsub_shows_unsubscribed_parents_as_noselect() {
    let (_dir, config) = common::config(None);
    let out = common::session_lines(
        config,
        "c1 CREATE box/\n\
c2 CREATE box/test\n\
c3 CREATE box/test2/\n\
c4 CREATE box/test3/\n\
c5 CREATE box/test2/test\n\
c6 CREATE box/test3/test3\n\
s1 SUBSCRIBE box/test\n\
s2 SUBSCRIBE box/test2/test\n\
s3 SUBSCRIBE box/test3/test3\n\
a LSUB \"\" box/%\n\
b LSUB \"\" *test\n\
u1 UNSUBSCRIBE box/test\n\
d LSUB \"\" box/%\n\
u2 UNSUBSCRIBE box/test2/test\n\
e LSUB \"\" box/*\n",
    )
    .await;
    let a = reply(&out, "a");
    assert!(a.contains(&"* LSUB () \"/\" box/test"), "{out}");
    assert!(a.contains(&"* LSUB (\\Noselect) \"/\" box/test2"), "{out}");
    assert!(a.contains(&"* LSUB (\\Noselect) \"/\" box/test3"), "{out}");
    assert_eq!(a.len(), 3, "created folders start unsubscribed: {out}");
    let b = reply(&out, "b");
    assert!(b.contains(&"* LSUB () \"/\" box/test"), "{out}");
    assert!(b.contains(&"* LSUB () \"/\" box/test2/test"), "{out}");
    assert!(!b.iter().any(|l| l.contains("test3")), "{out}");
    let d = reply(&out, "d");
    assert!(!d.iter().any(|l| l.ends_with("box/test")), "{out}");
    let e = reply(&out, "e");
    assert_eq!(e, vec!["* LSUB () \"/\" box/test3/test3"], "{out}");
}

#[tokio::test]
async fn list_subscribed_shows_deleted_folders_nonexistent() {
    let (_dir, config) = common::config(None);
    let out = common::session_lines(
        config,
        "c1 CREATE box/test1\n\
c2 CREATE box/test2/test1\n\
c3 CREATE box/test3\n\
c4 CREATE box/test6\n\
c5 CREATE box/test7/test7\n\
c6 CREATE box/test8/test8\n\
c7 CREATE box/test8/test9\n\
s1 SUBSCRIBE box/test1\n\
s2 SUBSCRIBE box/test2/test1\n\
s3 SUBSCRIBE box/test6\n\
s4 SUBSCRIBE box/test7/test7\n\
s5 SUBSCRIBE box/test8/test8\n\
s6 SUBSCRIBE box/test8/test9\n\
x DELETE box/test6\n\
a LIST (SUBSCRIBED) \"\" box/*\n\
b LIST (SUBSCRIBED RECURSIVEMATCH) \"\" box/test2% RETURN (CHILDREN)\n\
c LIST \"\" box/% RETURN (CHILDREN SUBSCRIBED)\n\
d LIST (SUBSCRIBED RECURSIVEMATCH) \"\" box*test7\n\
e LIST (SUBSCRIBED RECURSIVEMATCH) \"\" box*test8\n\
f LIST (SUBSCRIBED RECURSIVEMATCH) \"\" (box/test2 box/test2/test1)\n\
g LIST \"\" box/*\n\
h LSUB \"\" box/*\n",
    )
    .await;
    let a = reply(&out, "a");
    assert!(
        a.contains(&"* LIST (\\NonExistent \\Subscribed) \"/\" box/test6"),
        "{out}"
    );
    for name in [
        "box/test1",
        "box/test2/test1",
        "box/test7/test7",
        "box/test8/test9",
    ] {
        assert!(
            a.iter()
                .any(|l| l.ends_with(&format!(" {name}")) && l.contains("\\Subscribed")),
            "{name}: {out}"
        );
    }
    assert!(!a.iter().any(|l| l.ends_with(" box/test3")), "{out}");
    let b = reply(&out, "b");
    assert_eq!(
        b,
        vec!["* LIST (\\HasChildren) \"/\" box/test2 (\"CHILDINFO\" (\"SUBSCRIBED\"))"],
        "{out}"
    );
    let c = reply(&out, "c");
    assert!(
        c.contains(&"* LIST (\\HasNoChildren \\Subscribed) \"/\" box/test1"),
        "{out}"
    );
    assert!(
        c.contains(&"* LIST (\\HasChildren) \"/\" box/test2"),
        "{out}"
    );
    assert!(
        c.contains(&"* LIST (\\HasNoChildren) \"/\" box/test3"),
        "{out}"
    );
    assert!(!c.iter().any(|l| l.contains("test6")), "deleted: {out}");
    let d = reply(&out, "d");
    assert_eq!(
        d,
        vec!["* LIST (\\HasNoChildren \\Subscribed) \"/\" box/test7/test7"],
        "{out}"
    );
    let e = reply(&out, "e");
    assert!(
        e.contains(&"* LIST (\\HasChildren) \"/\" box/test8 (\"CHILDINFO\" (\"SUBSCRIBED\"))"),
        "{out}"
    );
    assert!(
        e.contains(&"* LIST (\\HasNoChildren \\Subscribed) \"/\" box/test8/test8"),
        "{out}"
    );
    let f = reply(&out, "f");
    assert_eq!(
        f,
        vec!["* LIST (\\HasNoChildren \\Subscribed) \"/\" box/test2/test1"],
        "{out}"
    );
    // Without SUBSCRIBED, a deleted folder is not listed at all.
    assert!(
        !reply(&out, "g").iter().any(|l| l.contains("test6")),
        "{out}"
    );
    assert!(
        reply(&out, "h").contains(&"* LSUB (\\Noselect) \"/\" box/test6"),
        "a subscribed name without a folder stays in LSUB: {out}"
    );
}
