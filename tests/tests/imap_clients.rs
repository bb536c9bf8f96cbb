//! The mailbox as users' clients see it, over the real listeners of a running lab: Python's
//! imaplib doing what Thunderbird does at first sync and on new mail (LIST with special
//! use, SELECT, UID FETCH of flags, sizes and body structures, IDLE, GETQUOTAROOT), the
//! security archive (entries only marked read), and poplib.

use pec_e2e::{Backend, Lab, run_python, standard, submit, wait_for};

const MARIO: &str = "mario.rossi@pec.alfa.test";
const ANNA: &str = "anna.bianchi@pec.beta.test";

/// Prints one line per observation, `key<TAB>value`, for the Rust side to assert on.
const CLIENT: &str = r#"
import imaplib, poplib, smtplib, ssl, sys
imaps, pop3s, submission, ca = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
user, password = "anna.bianchi@pec.beta.test", "secret-anna.bianchi"
ctx = ssl.create_default_context(cafile=ca)
ctx.check_hostname = False

def show(key, value):
    if isinstance(value, (list, tuple)):
        value = " ".join(show_item(v) for v in value if v is not None)
    print(key + "\t" + show_item(value))

def show_item(v):
    if isinstance(v, bytes):
        return v.decode("utf-8", "replace")
    if isinstance(v, tuple):
        return " ".join(show_item(x) for x in v)
    return str(v)

M = imaplib.IMAP4_SSL("127.0.0.1", imaps, ssl_context=ctx)
M.login(user, password)
typ, data = M.capability()
show("capabilities", data[0])

# First sync: folders with their special use (RFC 6154 puts the attributes in a plain
# LIST; the RFC 5258 `LIST (SPECIAL-USE)` form lists only those), then INBOX.
typ, data = M.list('""', '"*"')
for d in data:
    show("list", d)
typ, data = M._simple_command("LIST", '(SPECIAL-USE)', '""', '"*"')
show("list-special-use-status", typ)
for d in M._untagged_response(typ, data, "LIST")[1]:
    show("list-special-use", d)
typ, data = M.select("INBOX")
show("select", [typ, data[0]])
typ, data = M.uid("FETCH", "1:*", "(UID FLAGS RFC822.SIZE BODYSTRUCTURE)")
for d in data:
    show("fetch", d)
typ, data = M.getquotaroot("INBOX")
show("quotaroot", [typ] + [show_item(x) for x in data])

# New mail: IDLE, then a PEC message goes through the lab (alfa to beta).
tag = M._new_tag()
M.send(tag + b" IDLE\r\n")
show("idle-start", M.readline().strip())
S = smtplib.SMTP_SSL("127.0.0.1", submission, context=ctx, timeout=30)
S.login("mario.rossi@pec.alfa.test", "secret-mario.rossi")
S.sendmail("mario.rossi@pec.alfa.test", [user],
           b"From: mario.rossi@pec.alfa.test\r\nTo: " + user.encode() +
           b"\r\nSubject: Seconda pratica\r\n\r\nNuovo messaggio.\r\n")
S.quit()
M.sock.settimeout(30)
while True:
    line = M.readline().strip()
    if b"EXISTS" in line:
        show("idle-woken", line)
        break
M.send(b"DONE\r\n")
while True:
    line = M.readline().strip()
    if line.startswith(tag):
        show("idle-done", line)
        break
M.sock.settimeout(None)
typ, data = M.uid("FETCH", "2", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
show("new", data[0][1].strip())

# The user deletes the first message; the security archive keeps it (its entries can
# only be marked read).
show("store", M.uid("STORE", "1", "+FLAGS.SILENT", r"(\Deleted)")[0])
typ, data = M.expunge()
show("expunge", [typ] + data)
typ, data = M.select("INBOX")
show("select-after", data[0])
try:
    M.select('"Archivio di sicurezza"')
    show("archive-select", "read-write")
except imaplib.IMAP4.readonly:
    show("archive-select", "read-only")
typ, data = M.select('"Archivio di sicurezza"', readonly=True)
show("archive-exists", data[0])
typ, data = M.fetch("1:*", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
for d in data:
    if isinstance(d, tuple):
        show("archive-subject", d[1].strip())
typ, data = M.append('"Archivio di sicurezza"', None, None, b"Subject: x\r\n\r\nx\r\n")
show("archive-append", typ)
M.logout()

# POP3 over TLS.
P = poplib.POP3_SSL("127.0.0.1", pop3s, context=ctx)
P.user(user)
P.pass_(password)
show("pop-stat", P.stat())
resp, lines, octets = P.retr(1)
show("pop-retr", [l for l in lines if l.lower().startswith(b"subject:")][0])
P.quit()
"#;

async fn thunderbird_like_session_idle_quota_archive_and_pop3(backend: Backend) {
    let lab = Lab::start_on(backend, standard(), &[]).await;
    let (alfa, beta) = (lab.node("alfa"), lab.node("beta"));
    let first = format!(
        "From: {MARIO}\r\nTo: {ANNA}\r\nSubject: Prima pratica\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=\"B\"\r\n\r\n--B\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\r\nIn allegato l'atto.\r\n--B\r\n\
         Content-Type: application/pdf; name=\"atto.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\n\
         JVBERi0xLjQK\r\n--B--\r\n"
    );
    submit(alfa.submission_port, &lab.ca(), MARIO, &[ANNA], &first).expect("submitted");
    wait_for(beta.store.as_ref(), ANNA, 1).await;

    let out = run_python(
        CLIENT,
        &[
            &beta.imaps_port.to_string(),
            &beta.pop3s_port.to_string(),
            &alfa.submission_port.to_string(),
            &lab.ca().display().to_string(),
        ],
        &[],
        b"",
    )
    .expect("the imaplib/poplib session");
    let seen = |key: &str| -> Vec<String> {
        out.lines()
            .filter_map(|l| l.split_once('\t'))
            .filter(|(k, _)| *k == key)
            .map(|(_, v)| v.to_string())
            .collect()
    };
    let one = |key: &str| -> String {
        let v = seen(key);
        assert_eq!(v.len(), 1, "{key}: {v:?}\n{out}");
        v[0].clone()
    };

    let caps = one("capabilities");
    for c in ["IDLE", "QUOTA", "SPECIAL-USE", "MOVE", "UIDPLUS"] {
        assert!(caps.split(' ').any(|x| x == c), "{c} in {caps}");
    }
    for c in ["LIST-EXTENDED", "CONDSTORE"] {
        assert!(caps.split(' ').any(|x| x == c), "{c} in {caps}");
    }
    assert_eq!(one("list-special-use-status"), "OK");
    let special = seen("list-special-use");
    assert_eq!(
        special.len(),
        4,
        "Sent, Drafts, Trash, Junk only: {special:?}"
    );
    for flag in ["\\Sent", "\\Drafts", "\\Trash", "\\Junk"] {
        assert!(
            special.iter().any(|l| l.contains(flag)),
            "{flag} in {special:?}"
        );
    }
    let list = seen("list").join("\n");
    for (flag, name) in [
        ("\\Sent", "Sent"),
        ("\\Drafts", "Drafts"),
        ("\\Trash", "Trash"),
        ("\\Junk", "Junk"),
    ] {
        assert!(
            list.lines()
                .any(|l| l.contains(flag) && l.ends_with(&format!(" {name}"))),
            "{flag} {name} in\n{list}"
        );
    }
    assert!(
        list.contains("\"Archivio di sicurezza\""),
        "the archive is listed:\n{list}"
    );
    assert_eq!(one("select"), "OK 1");

    // The envelope's structure: signed, with the original as message/rfc822 postacert.eml
    // whose own structure (text and the PDF) a client can show without downloading it.
    let fetch = one("fetch");
    assert!(
        fetch.contains("UID 1") && fetch.contains("RFC822.SIZE"),
        "{fetch}"
    );
    let upper = fetch.to_ascii_uppercase();
    assert!(upper.contains("\"SIGNED\""), "{fetch}");
    assert!(upper.contains("\"MESSAGE\" \"RFC822\""), "{fetch}");
    assert!(fetch.contains("postacert.eml"), "{fetch}");
    assert!(fetch.contains("daticert.xml"), "{fetch}");
    assert!(upper.contains("\"APPLICATION\" \"PDF\""), "nested: {fetch}");
    assert!(upper.contains("\"PKCS7-SIGNATURE\""), "{fetch}");

    let quota = one("quotaroot");
    assert!(
        quota.starts_with("OK") && quota.contains("STORAGE"),
        "{quota}"
    );

    assert!(one("idle-start").starts_with('+'));
    assert_eq!(one("idle-woken"), "* 2 EXISTS");
    assert!(one("idle-done").contains("OK"));
    assert_eq!(one("new"), "Subject: POSTA CERTIFICATA: Seconda pratica");

    assert_eq!(one("expunge"), "OK 1");
    assert_eq!(one("select-after"), "1");
    assert_eq!(one("archive-select"), "read-write");
    assert_eq!(one("archive-exists"), "2");
    let archived = seen("archive-subject");
    assert!(
        archived.contains(&"Subject: POSTA CERTIFICATA: Prima pratica".to_string()),
        "the deleted message is still in the archive: {archived:?}"
    );
    assert_eq!(one("archive-append"), "NO");

    assert!(one("pop-stat").starts_with("1 "), "{out}");
    assert_eq!(
        one("pop-retr"),
        "Subject: POSTA CERTIFICATA: Seconda pratica"
    );
    lab.shutdown().await;
}

pec_e2e::e2e_tests!(thunderbird_like_session_idle_quota_archive_and_pop3,);
