//! JMAP on the HTTPS listener, read by an independent client: Python's `jmapc` (PyPI,
//! installed by .ci/run) over TLS verified against the lab CA. A real PEC flow between
//! two gestori gives the sender an accettazione and an avvenuta consegna; the client
//! finds the mailboxes and the emails with jmapc's own methods, then the `pec` property of
//! both receipts (posted through jmapc's authenticated session: its models drop
//! properties they do not know), finds them again with one `pecRefersTo` query, and the
//! recipient's envelope with `pecKind`. The plain HTTP listener does not serve JMAP.
//!
//! Push: jmapc's own event-source client (`Client.events`) waits while a PEC is sent;
//! the StateChange it gets leads, through Email/changes, to the accettazione;
//! Email/queryChanges adds it to INBOX's results; moved to the Trash and then destroyed
//! with Email/set, Python's imaplib sees it go from INBOX to Trash and out of Trash.

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::time::Duration;

use pec_e2e::{Backend, Lab, of_kind, run_python, standard, submit, wait_for};

const MARIO: &str = "mario.rossi@pec.alfa.test";
const ANNA: &str = "anna.bianchi@pec.beta.test";

/// Logs in as argv[3] (password argv[4]) at https://argv[1], CA file argv[2]; asks for the
/// receipts of the message whose original Message-ID is argv[5]. Prints one line per
/// fact: `mailbox <role> <name> <total>`, `email <subject>`, `pec <json>`, `refers <n>`,
/// `kind <kind> <n>`, `denied <status>`.
const CLIENT: &str = r#"
import json, os, sys
host, ca, user, password, msgid = sys.argv[1:6]
os.environ["REQUESTS_CA_BUNDLE"] = ca
import requests
from jmapc import Client, EmailQueryFilterCondition
from jmapc.methods import EmailGet, EmailQuery, MailboxGet

def pec_call(name, arguments):
    """A call using the PEC capability, posted with jmapc's authenticated session to the
    apiUrl jmapc found (jmapc's models drop properties they do not know, like pec)."""
    body = {"using": ["urn:ietf:params:jmap:core", "urn:ietf:params:jmap:mail",
                      "urn:pecd:params:jmap:pec"],
            "methodCalls": [[name, dict(arguments, accountId=client.account_id), "p"]]}
    r = client.requests_session.post(client.jmap_session.api_url, json=body, timeout=30)
    r.raise_for_status()
    name, result, _ = r.json()["methodResponses"][0]
    assert name != "error", result
    return result

r = requests.get(f"https://{host}/.well-known/jmap", auth=(user, "wrong password"), timeout=30)
print("denied", r.status_code, r.headers.get("WWW-Authenticate", "").split(" ")[0])

client = Client.create_with_password(host=host, user=user, password=password)
session = client.jmap_session
print("caps", " ".join(sorted(session.capabilities.urns)))
mailboxes = client.request(MailboxGet(ids=None), raise_errors=True, single_response=True)
for m in mailboxes.data:
    print("mailbox", m.role, m.name.replace(" ", "_"), m.total_emails)
inbox = next(m.id for m in mailboxes.data if m.role == "inbox")
found = client.request(EmailQuery(filter=EmailQueryFilterCondition(in_mailbox=inbox)),
                       raise_errors=True, single_response=True)
emails = client.request(EmailGet(ids=found.ids, properties=["subject", "from", "receivedAt"]),
                        raise_errors=True, single_response=True)
for e in emails.data:
    print("email", e.mail_from[0].email, e.subject)
pec = pec_call("Email/get", {"ids": found.ids, "properties": ["pec"]})
for e in pec["list"]:
    print("pec", json.dumps(e["pec"], sort_keys=True))
refers = pec_call("Email/query", {"filter": {"pecRefersTo": msgid}})
print("refers", len(refers["ids"]))
for kind in ("accettazione", "avvenuta-consegna", "posta-certificata"):
    q = pec_call("Email/query", {"filter": {"pecKind": kind}})
    print("kind", kind, len(q["ids"]))
"#;

/// Prints the HTTP status of a GET of argv[1].
const PLAIN_HTTP: &str = r#"
import sys, urllib.request, urllib.error
try:
    print(urllib.request.urlopen(sys.argv[1], timeout=20).status)
except urllib.error.HTTPError as e:
    print(e.code)
"#;

async fn jmapc_reads_the_pec_property_of_real_receipts(backend: Backend) {
    let lab = Lab::start_on(backend, standard(), &[]).await;
    let (alfa, beta) = (lab.node("alfa"), lab.node("beta"));
    let msg = format!(
        "From: Mario Rossi <{MARIO}>\r\nTo: {ANNA}\r\nSubject: Verbale 7\r\n\
         Message-ID: <verbale-7@client.test>\r\n\r\nIn allegato il verbale.\r\n"
    );
    submit(alfa.submission_port, &lab.ca(), MARIO, &[ANNA], &msg).expect("submitted");
    let inbox = wait_for(alfa.store.as_ref(), MARIO, 2).await;
    let accettazione = &of_kind(&inbox, "accettazione")[0];
    let identificativo = accettazione
        .daticert
        .as_ref()
        .unwrap()
        .identificativo
        .clone();
    wait_for(beta.store.as_ref(), ANNA, 1).await;

    let host = format!("localhost:{}", alfa.https_port);
    let ca = lab.ca().display().to_string();
    let run = |user: &str, password: &str| {
        run_python(
            CLIENT,
            &[&host, &ca, user, password, "<verbale-7@client.test>"],
            &[],
            b"",
        )
        .unwrap_or_else(|e| panic!("jmapc: {e}"))
    };
    let out = run(MARIO, "secret-mario.rossi");
    let lines: Vec<&str> = out.lines().collect();
    let has = |l: &str| lines.contains(&l);
    assert!(has("denied 401 Basic"), "{out}");
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("caps ") && l.contains("urn:pecd:params:jmap:pec")),
        "{out}"
    );
    assert!(has("mailbox inbox INBOX 2"), "{out}");
    // The security archive: the envelope sent and both receipts.
    assert!(has("mailbox None Archivio_di_sicurezza 3"), "{out}");
    assert!(
        has("email posta-certificata@pec.alfa.test ACCETTAZIONE: Verbale 7"),
        "{out}"
    );
    assert!(
        has("email posta-certificata@pec.beta.test CONSEGNA: Verbale 7"),
        "{out}"
    );
    let pecs: Vec<serde_json::Value> = lines
        .iter()
        .filter_map(|l| l.strip_prefix("pec "))
        .map(|j| serde_json::from_str(j).unwrap())
        .collect();
    assert_eq!(pecs.len(), 2, "{out}");
    let acc = pecs
        .iter()
        .find(|p| p["kind"] == "accettazione")
        .expect("accettazione");
    let cons = pecs
        .iter()
        .find(|p| p["kind"] == "avvenuta-consegna")
        .expect("consegna");
    for (p, issuer, signer) in [
        (acc, "Alfa PEC (lab)", "posta-certificata@pec.alfa.test"),
        (cons, "Beta PEC (lab)", "posta-certificata@pec.beta.test"),
    ] {
        assert_eq!(p["refersTo"], "verbale-7@client.test", "{p}");
        assert_eq!(
            p["daticert"]["identificativo"],
            identificativo.as_str(),
            "{p}"
        );
        assert_eq!(p["daticert"]["msgid"], "<verbale-7@client.test>", "{p}");
        assert_eq!(p["daticert"]["mittente"], MARIO, "{p}");
        assert_eq!(p["daticert"]["gestoreEmittente"], issuer, "{p}");
        assert_eq!(p["daticert"]["oggetto"], "Verbale 7", "{p}");
        assert_eq!(p["signature"]["intact"], true, "{p}");
        assert_eq!(p["signature"]["trusted"], true, "{p}");
        assert_eq!(p["signature"]["signer"]["email"], signer, "{p}");
        assert!(
            p["signature"]["signingTime"]
                .as_str()
                .unwrap()
                .ends_with('Z'),
            "{p}"
        );
        assert_eq!(p["problems"], serde_json::json!([]), "{p}");
    }
    // The completa delivery receipt carries the original as delivered (its Message-ID
    // the identificativo, spec §3.3); the acceptance receipt carries none.
    assert_eq!(acc["original"], serde_json::Value::Null, "{acc}");
    assert_eq!(cons["daticert"]["ricevuta"], "completa", "{cons}");
    assert_eq!(cons["original"]["subject"], "Verbale 7", "{cons}");
    assert_eq!(
        cons["original"]["messageId"],
        identificativo.as_str(),
        "{cons}"
    );
    assert_eq!(cons["original"]["from"], MARIO, "{cons}");
    assert_eq!(acc["daticert"]["tipo"], "accettazione");
    assert_eq!(cons["daticert"]["tipo"], "avvenuta-consegna");
    assert_eq!(cons["daticert"]["consegna"], ANNA);
    assert_eq!(cons["daticert"]["destinatari"][0]["indirizzo"], ANNA);
    assert_eq!(cons["daticert"]["destinatari"][0]["tipo"], "certificato");
    // One query finds both receipts and the envelope, in INBOX and in the archive.
    assert!(has("refers 5"), "{out}");
    assert!(has("kind accettazione 2"), "{out}");
    assert!(has("kind avvenuta-consegna 2"), "{out}");
    assert!(has("kind posta-certificata 1"), "{out}");

    // The plain HTTP listener never serves JMAP (the password would travel in clear).
    let plain = run_python(
        PLAIN_HTTP,
        &[&format!(
            "http://127.0.0.1:{}/.well-known/jmap",
            alfa.http_port
        )],
        &[],
        b"",
    )
    .expect("urllib");
    assert_eq!(plain.trim(), "404");

    // The recipient, at her gestore, sees the envelope with its original.
    let host_beta = format!("localhost:{}", beta.https_port);
    let out_beta = run_python(
        CLIENT,
        &[
            &host_beta,
            &ca,
            ANNA,
            "secret-anna.bianchi",
            "<verbale-7@client.test>",
        ],
        &[],
        b"",
    )
    .unwrap_or_else(|e| panic!("jmapc: {e}"));
    let busta = out_beta
        .lines()
        .filter_map(|l| l.strip_prefix("pec "))
        .map(|j| serde_json::from_str::<serde_json::Value>(j).unwrap())
        .find(|p| p["kind"] == "posta-certificata")
        .unwrap_or_else(|| panic!("{out_beta}"));
    assert_eq!(
        busta["original"]["messageId"],
        identificativo.as_str(),
        "{busta}"
    );
    assert_eq!(busta["original"]["subject"], "Verbale 7", "{busta}");
    assert_eq!(busta["signature"]["trusted"], true, "{busta}");
    // Her INBOX's envelope and the archive's copy; no receipt is hers.
    let beta_lines: Vec<&str> = out_beta.lines().collect();
    for line in [
        "kind posta-certificata 2",
        "refers 2",
        "kind accettazione 0",
    ] {
        assert!(beta_lines.contains(&line), "{line}: {out_beta}");
    }
    lab.shutdown().await;
}

/// Logs in as argv[3] (password argv[4]) at https://argv[1], CA file argv[2], IMAPS port
/// argv[5]. Opens jmapc's event source, prints `ready` after its first event, then follows
/// StateChange events with Email/changes until an accettazione arrives in INBOX; checks
/// it with Email/queryChanges, moves it to the Trash and destroys it with Email/set,
/// looking with imaplib after each step. One line per fact.
const PUSH_CLIENT: &str = r#"
import imaplib, os, signal, ssl, sys
host, ca, user, password, imaps = sys.argv[1:6]
os.environ["REQUESTS_CA_BUNDLE"] = ca
signal.alarm(120)
from jmapc import Client, EmailQueryFilterCondition
from jmapc.errors import CannotCalculateChanges
from jmapc.methods import EmailChanges, EmailGet, EmailQuery, EmailQueryChanges, EmailSet, MailboxGet
from jmapc.methods import MailboxQuery, MailboxQueryChanges, ThreadChanges

def call(method):
    return client.request(method, raise_errors=True, single_response=True)

def imap_count(folder):
    imap = imaplib.IMAP4_SSL("localhost", int(imaps), ssl_context=ssl.create_default_context(cafile=ca))
    imap.login(user, password)
    imap.select(folder, readonly=True)
    typ, data = imap.search(None, "SUBJECT", '"ACCETTAZIONE"')
    imap.logout()
    return len(data[0].split())

client = Client.create_with_password(host=host, user=user, password=password)
account = client.account_id
mailboxes = call(MailboxGet(ids=None)).data
inbox = next(m.id for m in mailboxes if m.role == "inbox")
trash = next(m.id for m in mailboxes if m.role == "trash")
in_inbox = EmailQueryFilterCondition(in_mailbox=inbox)
query_state = call(EmailQuery(filter=in_inbox)).query_state
mailbox_query_state = call(MailboxQuery()).query_state
unchanged = call(MailboxQueryChanges(since_query_state=mailbox_query_state))
mailbox_unchanged = unchanged.added == [] and unchanged.removed == [] and unchanged.new_query_state == mailbox_query_state
events = client.events
since = next(events).data.changed[account].email
thread_since = since
print("ready", flush=True)
accettazione, delivered = None, False
for event in events:
    now = event.data.changed.get(account)
    if now is None:
        continue
    delivered = delivered or now.email_delivery is not None
    if now.email is not None and accettazione is None:
        changes = call(EmailChanges(since_state=since))
        since = changes.new_state
        created = changes.created and call(EmailGet(ids=changes.created, properties=["subject", "mailboxIds"])).data
        for e in created or []:
            where = "inbox" if inbox in e.mailbox_ids else "other"
            print("created", where, e.subject, flush=True)
            if where == "inbox" and e.subject.startswith("ACCETTAZIONE"):
                accettazione = e.id
    if accettazione and delivered:
        break
print("delivery", delivered, flush=True)
added = call(EmailQueryChanges(filter=in_inbox, since_query_state=query_state)).added
print("query added", accettazione in [a.id for a in added])
print("mailbox query unchanged", mailbox_unchanged)
thread = call(EmailGet(ids=[accettazione], properties=["threadId"])).data[0].thread_id
print("thread created", thread in call(ThreadChanges(since_state=thread_since)).created)
stale = client.request(MailboxQueryChanges(since_query_state=mailbox_query_state), single_response=True)
print("mailbox query stale", isinstance(stale, CannotCalculateChanges))
print("imap before", imap_count("INBOX"), imap_count("Trash"))
moved = call(EmailSet(update={accettazione: {"mailboxIds": {trash: True}}})).updated[accettazione].id
print("imap moved", imap_count("INBOX"), imap_count("Trash"))
changes = call(EmailChanges(since_state=since))
print("changes moved", moved in changes.created, accettazione in changes.destroyed)
destroyed = call(EmailSet(destroy=[moved])).destroyed
print("destroyed", destroyed == [moved])
print("imap destroyed", imap_count("INBOX"), imap_count("Trash"))
"#;

/// The next line the client prints (`None` once it is done), at most 120 s away.
async fn next_line(lines: &mut tokio::sync::mpsc::UnboundedReceiver<String>) -> Option<String> {
    tokio::time::timeout(Duration::from_secs(120), lines.recv())
        .await
        .expect("the client answers within 120 s")
}

/// jmapc's event source, then Email/changes, Email/queryChanges, Thread/changes,
/// Mailbox/queryChanges and Email/set moves and destroys, judged by imaplib.
async fn jmapc_is_pushed_a_delivery(backend: Backend) {
    let lab = Lab::start_on(backend, standard(), &[]).await;
    let alfa = lab.node("alfa");
    let ca = lab.ca().display().to_string();
    let mut child = Command::new("python3")
        .arg("-c")
        .arg(PUSH_CLIENT)
        .args([
            &format!("localhost:{}", alfa.https_port),
            &ca,
            MARIO,
            "secret-mario.rossi",
            &alfa.imaps_port.to_string(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 is required");
    let (tx, mut lines) = tokio::sync::mpsc::unbounded_channel();
    let stdout = child.stdout.take().expect("stdout");
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut stderr = child.stderr.take().expect("stderr");
    let errors = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let ready = next_line(&mut lines).await;
    assert_eq!(ready.as_deref(), Some("ready"), "{ready:?}");

    let msg = format!(
        "From: Mario Rossi <{MARIO}>\r\nTo: {ANNA}\r\nSubject: Verbale 8\r\n\
         Message-ID: <verbale-8@client.test>\r\n\r\nIn allegato il verbale.\r\n"
    );
    submit(alfa.submission_port, &lab.ca(), MARIO, &[ANNA], &msg).expect("submitted");
    let mut out = Vec::new();
    while let Some(line) = next_line(&mut lines).await {
        out.push(line);
    }
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .expect("python3");
    let stderr = errors.join().unwrap();
    let out = out.join("\n");
    assert!(status.success(), "{out}\n{stderr}");
    let has = |l: &str| out.lines().any(|x| x == l);
    assert!(
        has("created inbox ACCETTAZIONE: Verbale 8"),
        "{out}\n{stderr}"
    );
    for line in [
        "delivery True",
        "mailbox query unchanged True",
        "query added True",
        "thread created True",
        "mailbox query stale True",
        "imap before 1 0",
        "imap moved 0 1",
        "changes moved True True",
        "destroyed True",
        "imap destroyed 0 0",
    ] {
        assert!(has(line), "{line}: {out}\n{stderr}");
    }
    lab.shutdown().await;
}

pec_e2e::e2e_tests!(
    jmapc_reads_the_pec_property_of_real_receipts,
    jmapc_is_pushed_a_delivery
);
