//! A protocol office's registry events, end to end on both stores: three PEC written by
//! Python's email package (a PDF with the sender's `Segnatura.xml`, a `.docx`, a plain
//! note) reach beta's `ufficio.protocollo`, whose webhook receiver is down. The events
//! wait in the store through a restart of beta; a real receiver (Python's `http.server`,
//! over HTTPS with the lab's certificate on the PostgreSQL run, `webhook_ca` the lab's
//! root, plain HTTP on the SQLite run) started afterwards gets each exactly once, signed
//! with an HMAC Python's
//! `hmac` module checks, carrying the attachments' SHA-256 as Python's `hashlib` computes
//! them and the segnatura's registration number. Then the events API (Python's urllib
//! over HTTPS): pages by cursor for the province, 403 for another ente's administrator,
//! and a protocol number written back, which Python's imaplib finds as `$Protocollo`.

use std::process::{Child, Command, Stdio};

use pec_e2e::{
    Backend, Lab, e2e_tests, free_port, run_python, standard, submit, wait_for_kind, wait_some,
};
use pec_store::{EventQuery, Store};

const MARIO: &str = "mario.rossi@pec.alfa.test";
const PROTOCOLLO: &str = "ufficio.protocollo@pec.comune.beta.test";
const SECRET: &str = "test-hook-secret";
const PROVINCE: (&str, &str) = ("provincia@pec.beta.test", "provincia-segreta");
const COMUNE_ADMIN: (&str, &str) = ("admin@pec.comune.beta.test", "comune-segreta");
const OTHER_ADMIN: (&str, &str) = ("admin@pec.beta.test", "beta-spa-segreta");

/// Writes `<subject>.eml` into `argv[1]` for each message, and prints, per subject, the
/// hex SHA-256 of each attachment (`subject name sha256`).
const MAKE_MESSAGES: &str = r#"
import email.policy, hashlib, io, os, sys, zipfile
from email.message import EmailMessage
d, sender, rcpt = sys.argv[1], sys.argv[2], sys.argv[3]
docx = io.BytesIO()
with zipfile.ZipFile(docx, "w") as z:
    z.writestr("[Content_Types].xml", "<?xml version='1.0'?><Types/>")
    z.writestr("word/document.xml", "<?xml version='1.0'?><w:document/>")
pdf = b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
segnatura = ("<?xml version='1.0' encoding='UTF-8'?>"
    "<Segnatura xmlns='http://www.agid.gov.it/protocollo/'><Intestazione><Identificatore>"
    "<CodiceAmministrazione>c_a001</CodiceAmministrazione><CodiceAOO>AOO_ALFA</CodiceAOO>"
    "<CodiceRegistro>PG</CodiceRegistro><NumeroRegistrazione>0004242</NumeroRegistrazione>"
    "<DataRegistrazione>2026-11-30</DataRegistrazione></Identificatore>"
    "<Oggetto>Trasmissione delibera</Oggetto></Intestazione></Segnatura>").encode()
for subject, files in [
    ("delibera", [("delibera.pdf", pdf), ("Segnatura.xml", segnatura)]),
    ("istanza", [("istanza.docx", docx.getvalue())]),
    ("nota", []),
]:
    m = EmailMessage()
    m["From"], m["To"], m["Subject"] = sender, rcpt, subject
    m.set_content("In allegato.")
    for name, data in files:
        m.add_attachment(data, maintype="application", subtype="octet-stream", filename=name)
        print(subject, name, hashlib.sha256(data).hexdigest())
    open(os.path.join(d, subject + ".eml"), "wb").write(m.as_bytes(policy=email.policy.SMTP))
"#;

/// The registry's side: an HTTP server on `argv[1]` that answers 200 and appends one
/// JSON line per POST to `argv[3]`, with whether `X-Pecd-Signature` is the HMAC-SHA256
/// of the body with `argv[2]`; HTTPS with the certificate chain and key `argv[4..6]`
/// when given (Python's `ssl`).
const RECEIVER: &str = r#"
import hashlib, hmac, http.server, json, ssl, sys
port, secret, out = int(sys.argv[1]), sys.argv[2].encode(), sys.argv[3]
class Hook(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        mac = "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()
        record = {
            "path": self.path,
            "type": self.headers.get("Content-Type"),
            "key": self.headers.get("Idempotency-Key"),
            "valid": hmac.compare_digest(mac, self.headers.get("X-Pecd-Signature", "")),
            "body": json.loads(body),
        }
        with open(out, "a") as f:
            f.write(json.dumps(record) + "\n")
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()
    def log_message(self, *args):
        pass
server = http.server.HTTPServer(("127.0.0.1", port), Hook)
if len(sys.argv) > 5:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(sys.argv[4], sys.argv[5])
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
server.serve_forever()
"#;

/// One API request: prints the status, then the body.
const CLIENT: &str = r#"
import base64, ssl, sys, urllib.request, urllib.error
url, ca, method, user, password, body = sys.argv[1:7]
ctx = ssl.create_default_context(cafile=ca)
ctx.check_hostname = False
headers = {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}
data = None
if body:
    data = body.encode()
    headers["Content-Type"] = "application/json"
req = urllib.request.Request(url, data=data, method=method, headers=headers)
try:
    r = urllib.request.urlopen(req, timeout=60, context=ctx)
    status, text = r.status, r.read().decode()
except urllib.error.HTTPError as e:
    status, text = e.code, e.read().decode()
print(status)
print(text)
"#;

/// Prints the subjects of the INBOX messages with keyword `argv[5]`.
const SEARCH_KEYWORD: &str = r#"
import email, imaplib, ssl, sys
ctx = ssl.create_default_context(cafile=sys.argv[2])
ctx.check_hostname = False
m = imaplib.IMAP4_SSL("127.0.0.1", int(sys.argv[1]), ssl_context=ctx)
m.login(sys.argv[3], sys.argv[4])
m.select("INBOX", readonly=True)
typ, data = m.search(None, "KEYWORD", sys.argv[5])
assert typ == "OK", data
for num in data[0].split():
    typ, parts = m.fetch(num, "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    print(email.message_from_bytes(parts[0][1])["Subject"])
m.logout()
"#;

/// The receiver process, killed when dropped.
struct Receiver(Child);

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts the receiver (over HTTPS with the certificate and key in `tls`) and waits
/// until it listens.
async fn start_receiver(
    port: u16,
    out: &std::path::Path,
    tls: Option<(std::path::PathBuf, std::path::PathBuf)>,
) -> Receiver {
    let tls: Vec<String> = tls
        .iter()
        .flat_map(|(cert, key)| [cert.display().to_string(), key.display().to_string()])
        .collect();
    let child = Command::new("python3")
        .arg("-c")
        .arg(RECEIVER)
        .args([&port.to_string(), SECRET, &out.display().to_string()])
        .args(&tls)
        .stdin(Stdio::null())
        .spawn()
        .expect("python3");
    let receiver = Receiver(child);
    wait_some(|| std::net::TcpStream::connect(("127.0.0.1", port)).ok())
        .await
        .expect("the receiver listens");
    receiver
}

/// The JSON lines the receiver wrote so far.
fn received(out: &std::path::Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(out)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("receiver JSON"))
        .collect()
}

fn all_events(store: &dyn Store) -> Vec<pec_store::RegistryEvent> {
    store
        .registry_events(&EventQuery {
            after: 0,
            domains: None,
            limit: 100,
        })
        .expect("events")
}

/// An API request to beta as `who`: the status and the body as JSON.
fn call(
    lab: &Lab,
    who: (&str, &str),
    method: &str,
    path: &str,
    body: &str,
) -> (u16, serde_json::Value) {
    let url = format!(
        "https://127.0.0.1:{}/api/v1/{path}",
        lab.node("beta").https_port
    );
    let ca = lab.ca();
    let out = run_python(
        CLIENT,
        &[&url, &ca.to_string_lossy(), method, who.0, who.1, body],
        &[],
        b"",
    )
    .expect("python client");
    let (status, rest) = out.split_once('\n').expect("a status line");
    let body = serde_json::from_str(rest.trim()).unwrap_or(serde_json::Value::Null);
    (status.trim().parse().expect("a status"), body)
}

async fn events_reach_the_registry_once_and_the_api_by_cursor(backend: Backend) {
    let hook_port = free_port();
    // Both transports of the webhook, one per store: HTTPS, the registry's certificate
    // (the lab's, for 127.0.0.1) checked against `webhook_ca`, and plain HTTP.
    let https = backend == Backend::Postgres;
    let transport = if https {
        format!("https://127.0.0.1:{hook_port}/hook\"\nwebhook_ca = \"pki/ca.pem")
    } else {
        format!("http://127.0.0.1:{hook_port}/hook")
    };
    let mut specs = standard();
    specs[1].extra = format!(
        "[[protocol_office]]\nmailbox = \"{PROTOCOLLO}\"\n\
         webhook = \"{transport}\"\nwebhook_secret = \"{SECRET}\"\n"
    );
    let mut lab = Lab::start_on(backend, specs, &[]).await;
    let pki = lab.ca().parent().expect("the lab's PKI").to_path_buf();
    let receiver_tls = https.then(|| (pki.join("alfa/tls.pem"), pki.join("alfa/tls.key")));

    let work = tempfile::tempdir().unwrap();
    let dir = work.path().display().to_string();
    let hashes = run_python(MAKE_MESSAGES, &[&dir, MARIO, PROTOCOLLO], &[], b"").expect("messages");
    let subjects = ["delibera", "istanza", "nota"];
    for s in subjects {
        let message = std::fs::read_to_string(work.path().join(format!("{s}.eml"))).unwrap();
        submit(
            lab.node("alfa").submission_port,
            &lab.ca(),
            MARIO,
            &[PROTOCOLLO],
            &message,
        )
        .unwrap();
    }
    wait_for_kind(
        lab.node("beta").store.as_ref(),
        PROTOCOLLO,
        "posta-certificata",
        subjects.len(),
    )
    .await;

    // Nobody listens: every event is tried, fails, and waits for its next attempt.
    let beta_store = lab.node("beta").store.clone();
    let failed = wait_some(|| {
        let events = all_events(beta_store.as_ref());
        (events.len() == subjects.len() && events.iter().all(|e| e.attempts >= 1)).then_some(events)
    })
    .await
    .expect("every event tried and failed");
    assert!(failed.iter().all(|e| e.pending && e.last_error.is_some()));

    // Beta restarts; the receiver comes up; the retries are due an hour later.
    lab.restart("beta").await;
    let out = work.path().join("received.jsonl");
    let _receiver = start_receiver(hook_port, &out, receiver_tls).await;
    lab.advance(chrono::Duration::hours(1));
    let beta_store = lab.node("beta").store.clone();
    wait_some(|| {
        all_events(beta_store.as_ref())
            .iter()
            .all(|e| !e.pending)
            .then_some(())
    })
    .await
    .expect("every event acknowledged");
    let got = received(&out);
    assert_eq!(got.len(), subjects.len(), "one post per event: {got:#?}");
    let mut keys: Vec<&str> = got.iter().map(|r| r["key"].as_str().unwrap()).collect();
    keys.sort_unstable();
    keys.dedup();
    assert_eq!(keys.len(), subjects.len(), "no idempotency key twice");
    for r in &got {
        assert_eq!(r["valid"], true, "HMAC checked by Python: {r}");
        assert_eq!(r["path"], "/hook");
        assert_eq!(r["type"], "application/json");
        assert_eq!(r["key"], r["body"]["id"].to_string());
        assert_eq!(r["body"]["mailbox"], PROTOCOLLO);
        assert_eq!(r["body"]["type"], "posta-certificata");
        let e = &r["body"]["event"];
        assert_eq!(e["sender"], MARIO);
        assert_eq!(e["daticert"]["mittente"], MARIO);
        assert_eq!(e["daticert"]["identificativo"], e["identificativo"]);
    }
    let by_subject = |s: &str| {
        got.iter()
            .map(|r| &r["body"]["event"])
            .find(|e| e["subject"] == s)
            .unwrap_or_else(|| panic!("no event for {s}"))
            .clone()
    };
    // Each attachment with the SHA-256 Python computed.
    for line in hashes.lines() {
        let mut parts = line.split(' ');
        let (subject, name, sha) = (
            parts.next().unwrap(),
            parts.next().unwrap(),
            parts.next().unwrap(),
        );
        let e = by_subject(subject);
        let a = e["attachments"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["name"] == name)
            .unwrap_or_else(|| panic!("{name} in {e}"));
        assert_eq!(a["sha256"], sha, "{name}");
    }
    let delibera = by_subject("delibera");
    assert_eq!(delibera["complies"], true, "{delibera}");
    assert_eq!(delibera["segnatura"]["numero_registrazione"], "0004242");
    assert_eq!(delibera["segnatura"]["codice_aoo"], "AOO_ALFA");
    assert_eq!(delibera["segnatura"]["oggetto"], "Trasmissione delibera");
    let istanza = by_subject("istanza");
    assert_eq!(istanza["complies"], false);
    assert_eq!(istanza["attachments"][0]["format"], "zip");
    assert_eq!(istanza["attachments"][0]["complies"], false);
    assert!(istanza["segnatura"].is_null());

    // The events API: the province, and the administrators of two enti.
    let out = lab.pecd_with_input(
        "beta",
        &["admin", "add", PROVINCE.0, "--password-stdin"],
        format!("{}\n", PROVINCE.1).as_bytes(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for (ente, domain, admin) in [
        ("comune-beta", "pec.comune.beta.test", COMUNE_ADMIN),
        ("beta-spa", "pec.beta.test", OTHER_ADMIN),
    ] {
        let body =
            format!(r#"{{"name": "{ente}", "domains": ["{domain}"], "allotment": "100GiB"}}"#);
        let (s, b) = call(&lab, PROVINCE, "POST", "enti", &body);
        assert_eq!(s, 201, "{b}");
        let body = format!(r#"{{"login": "{}", "password": "{}"}}"#, admin.0, admin.1);
        let (s, b) = call(
            &lab,
            PROVINCE,
            "POST",
            &format!("enti/{ente}/admins"),
            &body,
        );
        assert_eq!(s, 201, "{b}");
    }
    let ids: Vec<i64> = {
        let mut k: Vec<i64> = got
            .iter()
            .map(|r| r["body"]["id"].as_i64().unwrap())
            .collect();
        k.sort_unstable();
        k
    };
    // Two pages by cursor: the same ids, in order, none twice.
    let (s, page1) = call(&lab, PROVINCE, "GET", "events?limit=2", "");
    assert_eq!(s, 200, "{page1}");
    let next = page1["next"].as_i64().unwrap();
    let (s, page2) = call(
        &lab,
        COMUNE_ADMIN,
        "GET",
        &format!("events?after={next}"),
        "",
    );
    assert_eq!(s, 200, "{page2}");
    let listed: Vec<i64> = [&page1, &page2]
        .iter()
        .flat_map(|p| p["events"].as_array().unwrap().iter())
        .map(|e| e["id"].as_i64().unwrap())
        .collect();
    assert_eq!(listed, ids);
    assert_eq!(page1["events"][0]["webhook"]["pending"], false);
    let (s, end) = call(
        &lab,
        PROVINCE,
        "GET",
        &format!("events?after={}", ids[2]),
        "",
    );
    assert_eq!((s, end["events"].as_array().unwrap().len()), (200, 0));
    assert_eq!(end["next"], ids[2], "an empty page keeps the cursor");
    // Another ente's administrator: none of them, and 403 for the office's domain.
    let (s, theirs) = call(&lab, OTHER_ADMIN, "GET", "events", "");
    assert_eq!((s, theirs["events"].as_array().unwrap().len()), (200, 0));
    let (s, b) = call(
        &lab,
        OTHER_ADMIN,
        "GET",
        "events?domain=pec.comune.beta.test",
        "",
    );
    assert_eq!((s, b["code"].as_str()), (403, Some("other-ente")), "{b}");

    // The registry writes back the protocol number of the delibera.
    let delibera_id = got
        .iter()
        .find(|r| r["body"]["event"]["subject"] == "delibera")
        .unwrap()["body"]["id"]
        .as_i64()
        .unwrap();
    let number = r#"{"number": "2026/0000123", "date": "2026-11-30"}"#;
    let path = format!("events/{delibera_id}/protocol");
    let (s, b) = call(&lab, OTHER_ADMIN, "PUT", &path, number);
    assert_eq!((s, b["code"].as_str()), (403, Some("other-ente")), "{b}");
    let (s, b) = call(&lab, COMUNE_ADMIN, "PUT", &path, number);
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["protocol"]["number"], "2026/0000123");
    let (s, _) = call(&lab, COMUNE_ADMIN, "PUT", "events/999999/protocol", number);
    assert_eq!(s, 404);
    let flagged = run_python(
        SEARCH_KEYWORD,
        &[
            &lab.node("beta").imaps_port.to_string(),
            &lab.ca().display().to_string(),
            PROTOCOLLO,
            "secret-ufficio.protocollo",
            "$Protocollo",
        ],
        &[],
        b"",
    )
    .expect("imaplib");
    let lines: Vec<&str> = flagged.lines().collect();
    assert_eq!(lines.len(), 1, "{flagged}");
    assert!(lines[0].ends_with("delibera"), "{flagged}");
    lab.shutdown().await;
}

e2e_tests!(events_reach_the_registry_once_and_the_api_by_cursor);
