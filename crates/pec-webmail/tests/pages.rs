//! The webmail through its HTTP entry point (`Webmail::answer`) over a real store, on
//! both backends: the login form and its CSRF token, cookies, hostile subjects and
//! addresses escaped, a POST without the session's token refused, logout, idle expiry on
//! a paused clock, the growing penalty of wrong passwords, and that one user never sees
//! another's mail; the compose form sent through an access point that records what it
//! was handed, the quota bar, a read message not written again, and the verification of
//! a `.p7m` made by the `openssl` command-line tool.

use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Request, StatusCode};
use pec_jmap::submission::{AccessPoint, Pending};
use pec_jmap::{Jmap, Limits, SignerTrust, Verdict};
use pec_net::{AuthLimits, Authenticator};
use pec_proto::smime::SignerCert;
use pec_store::test_util::{Backend, TestStore};
use pec_store::{NewAccount, Store, backend_tests};
use pec_webmail::{SessionLimits, Webmail};

const ALICE: &str = "alice@pec.example.it";
const BOB: &str = "bob@pec.example.it";
const PASSWORD: &str = "correct horse";
const PEER: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
const IDLE: Duration = Duration::from_secs(600);
/// The largest message the fixture's access point takes (and so the largest form).
const MAX_MESSAGE: usize = 64 * 1024;
/// The multipart boundary of the forms the tests send.
const BOUNDARY: &str = "----modulo7MA4YWxkTrZu0gW";

/// Trusts nobody: these tests hold no signed mail (the e2e test does).
struct NoTrust;

impl SignerTrust for NoTrust {
    fn trusted(&self, _: &SignerCert, _: DateTime<Utc>) -> bool {
        false
    }
}

/// One submission the access point was handed.
#[derive(Debug, Clone)]
struct Submitted {
    peer: IpAddr,
    user: String,
    mail_from: String,
    rcpt_to: Vec<String>,
    message: Vec<u8>,
}

/// An access point that records what it is handed and refuses recipients whose address
/// starts with `rifiuta`, as the PEC rules would refuse a message.
#[derive(Default)]
struct Recorder(Mutex<Vec<Submitted>>);

impl AccessPoint for Recorder {
    fn submit<'a>(
        &'a self,
        peer: IpAddr,
        user: &'a str,
        mail_from: &'a str,
        rcpt_to: &'a [String],
        message: Vec<u8>,
    ) -> Pending<'a> {
        Box::pin(async move {
            self.0.lock().unwrap().push(Submitted {
                peer,
                user: user.into(),
                mail_from: mail_from.into(),
                rcpt_to: rcpt_to.to_vec(),
                message,
            });
            if rcpt_to.iter().any(|r| r.starts_with("rifiuta")) {
                Verdict::Refused("Messaggio non accettato: destinatario <non> ammesso".into())
            } else {
                Verdict::Accepted(
                    "Ok: messaggio accettato, identificativo opec1@pec.example.it".into(),
                )
            }
        })
    }
}

struct Fixture {
    _store: TestStore,
    store: Arc<dyn Store>,
    webmail: Webmail,
    access: Arc<Recorder>,
    /// How many times JMAP said a folder changed (every Email/set says so).
    changes: Arc<AtomicUsize>,
    /// Current-thread and paused: penalties and idle expiry run on tokio's clock.
    rt: tokio::runtime::Runtime,
}

struct Answer {
    status: StatusCode,
    headers: hyper::HeaderMap,
    body: String,
}

impl Answer {
    fn cookie(&self, name: &str) -> Option<String> {
        self.headers
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|v| v.starts_with(&format!("{name}=")))
            .map(str::to_string)
    }

    /// The value of the hidden `csrf` field of the page.
    fn csrf(&self) -> String {
        let at = self
            .body
            .find("name=\"csrf\" value=\"")
            .expect("a csrf field")
            + 19;
        self.body[at..at + 64].to_string()
    }
}

fn fixture(backend: Backend) -> Fixture {
    let t = TestStore::new(backend);
    let store = t.store.clone();
    store.add_domain("pec.example.it", 1 << 30).unwrap();
    let hash = pec_net::hash_password(PASSWORD).unwrap();
    for address in [ALICE, BOB] {
        store
            .create_account(&NewAccount {
                address: address.into(),
                password_hash: hash.clone(),
                quota: None,
                receipts_folder: false,
            })
            .unwrap();
    }
    let access = Arc::new(Recorder::default());
    let changes = Arc::new(AtomicUsize::new(0));
    let counter = changes.clone();
    let jmap = Jmap {
        store: store.clone(),
        auth: Arc::new(Authenticator::new(AuthLimits::default())),
        trust: Arc::new(NoTrust),
        limits: Limits::default(),
        public_host: "mail.pec.example.it".into(),
        changed: Arc::new(move |_: &str, _: &str| {
            counter.fetch_add(1, Ordering::SeqCst);
        }),
        uploads: Arc::default(),
        access: Some(access.clone()),
        push: pec_jmap::Push::new(Default::default(), Default::default()),
    };
    let webmail = Webmail::new(
        Arc::new(jmap),
        SessionLimits {
            max_sessions: 100,
            idle: IDLE,
        },
        MAX_MESSAGE,
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap();
    Fixture {
        _store: t,
        store,
        webmail,
        access,
        changes,
        rt,
    }
}

fn cookie_pair(set_cookie: &str) -> String {
    set_cookie.split(';').next().unwrap().to_string()
}

impl Fixture {
    fn send_from(
        &self,
        peer: IpAddr,
        method: &str,
        path: &str,
        cookie: Option<&str>,
        form: &[(&str, &str)],
    ) -> Answer {
        let body: String = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let mut req = Request::builder().method(method).uri(path);
        if let Some(c) = cookie {
            req = req.header("cookie", c);
        }
        let req = req
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Full::new(Bytes::from(body)))
            .unwrap();
        self.rt.block_on(async {
            let r = self.webmail.answer(req, peer).await;
            let status = r.status();
            let headers = r.headers().clone();
            let body = r.into_body().collect().await.unwrap().to_bytes().to_vec();
            Answer {
                status,
                headers,
                body: String::from_utf8(body).unwrap(),
            }
        })
    }

    /// Sends a `multipart/form-data` body to `path`.
    fn post_multipart(&self, path: &str, cookie: &str, body: Vec<u8>) -> Answer {
        let req = Request::builder()
            .method("POST")
            .uri(path)
            .header("cookie", cookie)
            .header(
                "content-type",
                format!("multipart/form-data; boundary={BOUNDARY}"),
            )
            .body(Full::new(Bytes::from(body)))
            .unwrap();
        self.rt.block_on(async {
            let r = self.webmail.answer(req, PEER).await;
            let status = r.status();
            let headers = r.headers().clone();
            let body = r.into_body().collect().await.unwrap().to_bytes().to_vec();
            Answer {
                status,
                headers,
                body: String::from_utf8(body).unwrap(),
            }
        })
    }

    fn send(
        &self,
        method: &str,
        path: &str,
        cookie: Option<&str>,
        form: &[(&str, &str)],
    ) -> Answer {
        self.send_from(PEER, method, path, cookie, form)
    }

    /// Logs in through the form from `peer`; the answer to the POST.
    fn try_login(&self, peer: IpAddr, user: &str, password: &str) -> Answer {
        let form = self.send_from(peer, "GET", "/webmail/", None, &[]);
        assert_eq!(form.status, StatusCode::OK, "{}", form.body);
        let pre = cookie_pair(&form.cookie("pecwm_login").expect("the login cookie"));
        let csrf = form.csrf();
        self.send_from(
            peer,
            "POST",
            "/webmail/accedi",
            Some(&pre),
            &[("username", user), ("password", password), ("csrf", &csrf)],
        )
    }

    /// Logs in; the session cookie (`pecwm=…`) and the session's CSRF token.
    fn login(&self, user: &str) -> (String, String) {
        let a = self.try_login(PEER, user, PASSWORD);
        assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.body);
        let session = cookie_pair(&a.cookie("pecwm").expect("a session cookie"));
        let home = self.send("GET", "/webmail/", Some(&session), &[]);
        assert_eq!(home.status, StatusCode::OK, "{}", home.body);
        (session, home.csrf())
    }

    /// Delivers `raw` into `to`'s inbox; its JMAP id.
    fn deliver_raw(&self, to: &str, raw: &[u8]) -> String {
        let d = self
            .store
            .deliver(to, "INBOX", raw, &[], 1_800_000_000)
            .unwrap();
        format!("e{}_{}", d.uidvalidity, d.uid)
    }

    fn deliver(&self, to: &str, from: &str, subject: &str, body: &str) -> String {
        let raw = format!(
            "From: {from}\r\nTo: {to}\r\nSubject: {subject}\r\nMessage-ID: <{}@test>\r\n\
             Date: Mon, 30 Nov 2026 08:00:00 +0100\r\nMIME-Version: 1.0\r\n\
             Content-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n",
            body.len()
        );
        let d = self
            .store
            .deliver(to, "INBOX", raw.as_bytes(), &[], 1_800_000_000)
            .unwrap();
        format!("e{}_{}", d.uidvalidity, d.uid)
    }
}

fn login_form_cookies_and_logout(backend: Backend) {
    let f = fixture(backend);
    let form = f.send("GET", "/webmail/", None, &[]);
    assert_eq!(form.status, StatusCode::OK);
    for field in [
        "name=\"username\"",
        "name=\"password\"",
        "<label for=\"username\">",
    ] {
        assert!(form.body.contains(field), "{field}: {}", form.body);
    }
    assert!(form.body.contains("<html lang=\"it\">"));
    let csp = form.headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("default-src 'none'"), "{csp}");
    // The login form's own token: without the matching cookie the POST is refused.
    let csrf = form.csrf();
    let no_cookie = f.send(
        "POST",
        "/webmail/accedi",
        None,
        &[("username", ALICE), ("password", PASSWORD), ("csrf", &csrf)],
    );
    assert_eq!(no_cookie.status, StatusCode::FORBIDDEN);
    assert!(no_cookie.cookie("pecwm").is_none());
    let wrong = f.try_login(PEER, ALICE, "wrong");
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(wrong.body.contains("Indirizzo o password non corretti."));
    assert!(wrong.cookie("pecwm").is_none());

    let ok = f.try_login(PEER, ALICE, PASSWORD);
    assert_eq!(ok.status, StatusCode::SEE_OTHER);
    let set = ok.cookie("pecwm").unwrap();
    let id = set
        .strip_prefix("pecwm=")
        .unwrap()
        .split(';')
        .next()
        .unwrap();
    assert!(
        id.len() >= 32 && id.bytes().all(|b| b.is_ascii_hexdigit()),
        "{set}"
    );
    assert!(
        set.ends_with("; Secure; HttpOnly; SameSite=Strict; Path=/webmail/"),
        "{set}"
    );
    let session = cookie_pair(&set);
    let home = f.send("GET", "/webmail/", Some(&session), &[]);
    assert!(home.body.contains("Posta in arrivo") && home.body.contains("Archivio di sicurezza"));
    assert!(home.body.contains(ALICE));
    let csrf = home.csrf();

    // A POST without the session's token does nothing.
    for bad in ["", "0000", &"0".repeat(64)] {
        let a = f.send("POST", "/webmail/esci", Some(&session), &[("csrf", bad)]);
        assert_eq!(a.status, StatusCode::FORBIDDEN, "{bad}");
    }
    assert_eq!(
        f.send("GET", "/webmail/", Some(&session), &[]).status,
        StatusCode::OK
    );
    let out = f.send("POST", "/webmail/esci", Some(&session), &[("csrf", &csrf)]);
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    assert!(out.cookie("pecwm").unwrap().contains("Max-Age=0"));
    // The session is over: the old cookie leads to the login form again.
    let after = f.send("GET", "/webmail/", Some(&session), &[]);
    assert!(after.body.contains("name=\"password\"") && !after.body.contains(ALICE));
}

fn hostile_subjects_and_addresses_are_escaped(backend: Backend) {
    let f = fixture(backend);
    let id = f.deliver(
        ALICE,
        "\"<img src=x onerror=alert(1)>\" <evil@pec.example.it>",
        "<script>alert('oggetto')</script>",
        "<b>testo</b> & altro",
    );
    let (session, _) = f.login(ALICE);
    let list = f.send("GET", "/webmail/", Some(&session), &[]);
    let message = f.send(
        "GET",
        &format!("/webmail/messaggio/{id}"),
        Some(&session),
        &[],
    );
    assert_eq!(message.status, StatusCode::OK, "{}", message.body);
    for page in [&list.body, &message.body] {
        assert!(
            !page.contains("<script>") && !page.contains("<img"),
            "{page}"
        );
        assert!(
            page.contains("&lt;script&gt;alert(&#39;oggetto&#39;)&lt;/script&gt;"),
            "{page}"
        );
        assert!(
            page.contains("&lt;img src=x onerror=alert(1)&gt;"),
            "{page}"
        );
    }
    assert!(
        message
            .body
            .contains("&lt;b&gt;testo&lt;/b&gt; &amp; altro")
    );
    // Opening it marked it read: the inbox has no unread count any more.
    let before = list
        .body
        .contains("Posta in arrivo</a> <span class=\"nonletti\">(1 non letti)</span>");
    let after = f.send("GET", "/webmail/", Some(&session), &[]);
    assert!(
        before && !after.body.contains("non letti"),
        "{}",
        after.body
    );
    // The .eml download is the message as stored, never run in the page's origin.
    let eml = message.body.split("href=\"").find_map(|s| {
        let href = s.split('"').next()?;
        href.contains("messaggio.eml")
            .then(|| href.replace("&amp;", "&"))
    });
    let eml = f.send("GET", &eml.expect("an .eml link"), Some(&session), &[]);
    assert_eq!(eml.status, StatusCode::OK);
    assert_eq!(eml.headers["content-type"], "message/rfc822");
    assert!(
        eml.headers["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment")
    );
    assert!(
        eml.headers["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("sandbox")
    );
    assert!(
        eml.body
            .contains("Subject: <script>alert('oggetto')</script>")
    );
}

fn users_never_see_each_other(backend: Backend) {
    let f = fixture(backend);
    let alice_id = f.deliver(ALICE, BOB, "Segreto di Alice", "solo per Alice");
    let (alice, _) = f.login(ALICE);
    let (bob, _) = f.login(BOB);
    let mine = f.send(
        "GET",
        &format!("/webmail/messaggio/{alice_id}"),
        Some(&alice),
        &[],
    );
    assert!(mine.body.contains("Segreto di Alice"));
    let blob = mine
        .body
        .split("/webmail/scarica/")
        .nth(1)
        .and_then(|s| s.split('/').next())
        .expect("a download link")
        .to_string();
    // Bob, with Alice's ids, sees nothing of hers.
    let theirs = f.send(
        "GET",
        &format!("/webmail/messaggio/{alice_id}"),
        Some(&bob),
        &[],
    );
    assert_eq!(theirs.status, StatusCode::NOT_FOUND);
    assert!(!theirs.body.contains("Segreto") && !theirs.body.contains("solo per Alice"));
    let download = f.send(
        "GET",
        &format!("/webmail/scarica/{blob}/x.eml?type=message/rfc822"),
        Some(&bob),
        &[],
    );
    assert_eq!(download.status, StatusCode::NOT_FOUND);
    let inbox = f.send("GET", "/webmail/", Some(&bob), &[]);
    assert!(inbox.body.contains(BOB) && !inbox.body.contains("Segreto"));
    assert!(inbox.body.contains("Nessun messaggio."));
}

fn sessions_expire_when_idle(backend: Backend) {
    let f = fixture(backend);
    let (session, _) = f.login(ALICE);
    f.rt.block_on(tokio::time::advance(IDLE - Duration::from_secs(1)));
    assert!(
        f.send("GET", "/webmail/", Some(&session), &[])
            .body
            .contains(ALICE)
    );
    // Used just now: its idle time starts again.
    f.rt.block_on(tokio::time::advance(IDLE - Duration::from_secs(1)));
    assert!(
        f.send("GET", "/webmail/", Some(&session), &[])
            .body
            .contains(ALICE)
    );
    f.rt.block_on(tokio::time::advance(IDLE));
    let expired = f.send("GET", "/webmail/", Some(&session), &[]);
    assert!(expired.body.contains("name=\"password\"") && !expired.body.contains(ALICE));
    let elsewhere = f.send("GET", "/webmail/cartella/archive", Some(&session), &[]);
    assert_eq!(elsewhere.status, StatusCode::SEE_OTHER);
}

fn wrong_passwords_cost_a_growing_wait(backend: Backend) {
    let f = fixture(backend);
    let now = || f.rt.block_on(async { tokio::time::Instant::now() });
    let start = now();
    let mut waits = Vec::new();
    for _ in 0..4 {
        let before = now();
        let a = f.try_login(PEER, ALICE, "guess");
        assert_eq!(a.status, StatusCode::UNAUTHORIZED);
        waits.push(now() - before);
    }
    // Dovecot's penalty, as IMAP: nothing, then at least 2 s, 4 s, 8 s before each try.
    assert!(waits[1] >= Duration::from_secs(2), "{waits:?}");
    assert!(waits[2] >= Duration::from_secs(4), "{waits:?}");
    assert!(waits[3] >= Duration::from_secs(8), "{waits:?}");
    assert!(now() - start >= Duration::from_secs(14));
    // The right password still opens the mailbox, after the wait.
    let ok = f.try_login(PEER, ALICE, PASSWORD);
    assert_eq!(ok.status, StatusCode::SEE_OTHER);
}

fn search_finds_the_users_messages_only(backend: Backend) {
    let f = fixture(backend);
    f.deliver(ALICE, BOB, "Verbale della giunta", "approvato");
    f.deliver(ALICE, BOB, "Convocazione", "lunedì alle 9");
    f.deliver(BOB, ALICE, "Verbale di Bob", "suo");
    let (alice, _) = f.login(ALICE);
    let found = f.send("GET", "/webmail/cerca?q=verbale", Some(&alice), &[]);
    assert_eq!(found.status, StatusCode::OK);
    assert!(
        found.body.contains("Verbale della giunta"),
        "{}",
        found.body
    );
    assert!(!found.body.contains("Convocazione") && !found.body.contains("Verbale di Bob"));
    let by_body = f.send("GET", "/webmail/cerca?q=luned%C3%AC", Some(&alice), &[]);
    assert!(by_body.body.contains("Convocazione"), "{}", by_body.body);
    let hostile = f.send("GET", "/webmail/cerca?q=%3Cscript%3E", Some(&alice), &[]);
    assert!(hostile.body.contains("Ricerca: &lt;script&gt;") && !hostile.body.contains("<script>"));
    assert!(hostile.body.contains("Nessun messaggio."));
    let empty = f.send("GET", "/webmail/cerca?q=", Some(&alice), &[]);
    assert!(empty.body.contains("Scrivere il testo da cercare."));
}

/// A compose form: text fields, then files `(name, media type, contents)`.
fn compose_form(fields: &[(&str, &str)], files: &[(&str, &str, &[u8])]) -> Vec<u8> {
    let mut b = Vec::new();
    for (name, value) in fields {
        b.extend_from_slice(
            format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
            )
            .as_bytes(),
        );
    }
    for (file, media_type, contents) in files {
        b.extend_from_slice(
            format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"allegati\"; \
                 filename=\"{file}\"\r\nContent-Type: {media_type}\r\n\r\n"
            )
            .as_bytes(),
        );
        b.extend_from_slice(contents);
        b.extend_from_slice(b"\r\n");
    }
    b.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    b
}

/// The `href` of the first link whose text holds `text`, entities undone.
fn link(body: &str, text: &str) -> String {
    let at = body
        .find(text)
        .unwrap_or_else(|| panic!("no {text}: {body}"));
    let start = body[..at].rfind("href=\"").expect("a link") + 6;
    let end = start + body[start..].find('"').unwrap();
    body[start..end].replace("&amp;", "&")
}

fn compose_and_send_through_the_access_point(backend: Backend) {
    let f = fixture(backend);
    let (session, csrf) = f.login(ALICE);
    let form = f.send("GET", "/webmail/scrivi", Some(&session), &[]);
    assert_eq!(form.status, StatusCode::OK);
    for label in [
        "<label for=\"a\">A</label>",
        "<label for=\"cc\">Cc</label>",
        "<label for=\"oggetto\">Oggetto</label>",
        "<label for=\"testo\">Testo</label>",
        "<label for=\"allegati\">Allegati",
        "enctype=\"multipart/form-data\"",
    ] {
        assert!(form.body.contains(label), "{label}: {}", form.body);
    }
    let body = compose_form(
        &[
            ("csrf", &csrf),
            ("a", BOB),
            ("cc", "carla@pec.altro.it"),
            ("oggetto", "Delibera n. 12"),
            ("testo", "In allegato la delibera."),
        ],
        &[("delibera.pdf", "application/pdf", b"%PDF-1.7\n%%EOF\n")],
    );
    let sent = f.post_multipart("/webmail/invia", &session, body);
    assert_eq!(sent.status, StatusCode::SEE_OTHER, "{}", sent.body);
    let to = sent.headers["location"].to_str().unwrap().to_string();
    assert!(to.ends_with("?esito=inviato"), "{to}");

    let handed = f.access.0.lock().unwrap().clone();
    assert_eq!(handed.len(), 1);
    let s = &handed[0];
    assert_eq!(
        s.peer, PEER,
        "the browser's address reaches the access point"
    );
    assert_eq!((s.user.as_str(), s.mail_from.as_str()), (ALICE, ALICE));
    assert_eq!(s.rcpt_to, [BOB, "carla@pec.altro.it"]);
    let m = mail_parser::MessageParser::default()
        .parse(&s.message)
        .unwrap();
    assert_eq!(m.subject(), Some("Delibera n. 12"));
    assert_eq!(
        m.attachment(0).map(|a| a.contents()),
        Some(&b"%PDF-1.7\n%%EOF\n"[..])
    );

    // "Posta inviata" holds the copy, read, and the page says the message was accepted.
    let folder = f.send("GET", &to, Some(&session), &[]);
    assert!(
        folder.body.contains("<h1>Posta inviata</h1>"),
        "{}",
        folder.body
    );
    assert!(folder.body.contains("Delibera n. 12"), "{}", folder.body);
    assert!(folder.body.contains(
        "role=\"status\">Messaggio accettato dal gestore: la ricevuta di accettazione è in arrivo."
    ));
    assert!(
        !folder.body.contains("class=\"nonletto\""),
        "the copy is read"
    );
    // The outcome is one of the fixed texts: a link cannot make the page say more.
    let spoof = to.replace("esito=inviato", "esito=Vinto%20un%20premio");
    let spoofed = f.send("GET", &spoof, Some(&session), &[]);
    assert!(!spoofed.body.contains("role=\"status\"") && !spoofed.body.contains("premio"));
}

fn compose_refusals_are_said_and_forged_forms_do_nothing(backend: Backend) {
    let f = fixture(backend);
    let (session, csrf) = f.login(ALICE);
    let fields = |token: &str, to: &str| {
        compose_form(
            &[
                ("csrf", token),
                ("a", to),
                ("oggetto", "Prova <1>"),
                ("testo", "t"),
            ],
            &[],
        )
    };
    // Without the session's token nothing is sent, whatever the form says.
    for bad in ["", "0000", &"0".repeat(64)] {
        let a = f.post_multipart("/webmail/invia", &session, fields(bad, BOB));
        assert_eq!(a.status, StatusCode::FORBIDDEN, "{bad}");
        assert!(
            a.body
                .contains("Il modulo non proviene da questa sessione.")
        );
    }
    // Nor without a session.
    let a = f.post_multipart("/webmail/invia", "pecwm=nessuna", fields(&csrf, BOB));
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    assert!(f.access.0.lock().unwrap().is_empty());

    // An invalid address: the form again, filled in, with the reason.
    let a = f.post_multipart("/webmail/invia", &session, fields(&csrf, "bob, x@y"));
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert!(
        a.body
            .contains("role=\"alert\">Indirizzo non valido: bob</p>"),
        "{}",
        a.body
    );
    assert!(a.body.contains("value=\"Prova &lt;1&gt;\""), "{}", a.body);
    assert!(f.access.0.lock().unwrap().is_empty());

    // Refused by the access point: its reason, in Italian, escaped.
    let a = f.post_multipart(
        "/webmail/invia",
        &session,
        fields(&csrf, "rifiuta@pec.example.it"),
    );
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        a.body.contains(
            "Il gestore non ha accettato il messaggio. Messaggio non accettato: \
             destinatario &lt;non&gt; ammesso."
        ),
        "{}",
        a.body
    );
    assert_eq!(f.access.0.lock().unwrap().len(), 1);
    let home = f.send("GET", "/webmail/", Some(&session), &[]);
    let sent = f.send(
        "GET",
        &link(&home.body, "Posta inviata</a>"),
        Some(&session),
        &[],
    );
    assert!(
        sent.body.contains("<h1>Posta inviata</h1>"),
        "{}",
        sent.body
    );
    assert!(sent.body.contains("Nessun messaggio."), "{}", sent.body);

    // Larger than the submission limit: refused before anything is read into a message.
    let big = vec![b'x'; MAX_MESSAGE];
    let body = compose_form(
        &[("csrf", &csrf), ("a", BOB)],
        &[("grande.bin", "application/octet-stream", &big)],
    );
    let a = f.post_multipart("/webmail/invia", &session, body);
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert!(
        a.body.contains(&format!(
            "Il messaggio con i suoi allegati supera i {MAX_MESSAGE} byte ammessi."
        )),
        "{}",
        a.body
    );
    assert_eq!(f.access.0.lock().unwrap().len(), 1);
}

fn the_quota_bar_says_the_space_used(backend: Backend) {
    let f = fixture(backend);
    f.store.set_quota(ALICE, 10 * 1024 * 1024).unwrap();
    f.deliver(ALICE, BOB, "Pesante", &"x".repeat(300 * 1024));
    let used = f.store.usage(ALICE).unwrap().used;
    let (session, _) = f.login(ALICE);
    let home = f.send("GET", "/webmail/", Some(&session), &[]);
    let expected = format!(
        "Casella: {} di 10,0 MiB (2%)",
        pec_webmail::pages::size(used)
    );
    assert!(home.body.contains(&expected), "{expected}: {}", home.body);
    assert!(
        home.body
            .contains("<meter aria-labelledby=\"spazio-casella\" min=\"0\" max=\"10485760\"")
    );
    assert!(
        home.body.contains(&format!("value=\"{used}\"")),
        "{}",
        home.body
    );
    let archive = f.store.archive_usage(ALICE).unwrap();
    assert!(
        home.body.contains(&format!(
            "Archivio di sicurezza: {} di {}",
            pec_webmail::pages::size(archive.used),
            pec_webmail::pages::size(archive.quota)
        )),
        "{}",
        home.body
    );
}

fn opening_a_read_message_writes_nothing(backend: Backend) {
    let f = fixture(backend);
    let id = f.deliver(ALICE, BOB, "Da leggere", "testo");
    let (session, _) = f.login(ALICE);
    let before = f.changes.load(Ordering::SeqCst);
    let path = format!("/webmail/messaggio/{id}");
    assert_eq!(
        f.send("GET", &path, Some(&session), &[]).status,
        StatusCode::OK
    );
    assert_eq!(
        f.changes.load(Ordering::SeqCst),
        before + 1,
        "marked read once"
    );
    for _ in 0..3 {
        assert_eq!(
            f.send("GET", &path, Some(&session), &[]).status,
            StatusCode::OK
        );
    }
    assert_eq!(
        f.changes.load(Ordering::SeqCst),
        before + 1,
        "no Email/set for a message already read"
    );
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("the openssl command-line tool");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `contents` signed by `openssl cms -sign -nodetach` with a fresh self-signed
/// certificate for "Mario Rossi".
fn p7m(contents: &[u8]) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    openssl(
        d,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "key.pem",
            "-out",
            "cert.pem",
            "-days",
            "30",
            "-subj",
            "/CN=Mario Rossi/O=Comune di Prova",
        ],
    );
    std::fs::write(d.join("doc.pdf"), contents).unwrap();
    openssl(
        d,
        &[
            "cms",
            "-sign",
            "-nodetach",
            "-binary",
            "-signer",
            "cert.pem",
            "-inkey",
            "key.pem",
            "-outform",
            "DER",
            "-in",
            "doc.pdf",
            "-out",
            "doc.pdf.p7m",
        ],
    );
    std::fs::read(d.join("doc.pdf.p7m")).unwrap()
}

fn a_p7m_attachment_is_verified_and_opened(backend: Backend) {
    use base64::Engine;
    const PDF: &[u8] = b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\n%%EOF\n";
    let f = fixture(backend);
    let signed = p7m(PDF);
    let mut tampered = signed.clone();
    let at = tampered.windows(7).position(|w| w == b"Catalog").unwrap();
    tampered[at] = b'K';
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let raw = format!(
        "From: {BOB}\r\nTo: {ALICE}\r\nSubject: Delibera firmata\r\nMessage-ID: <p7m@test>\r\n\
         MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\
         Content-Type: text/plain\r\n\r\nIn allegato.\r\n--b\r\n\
         Content-Type: application/pkcs7-mime; name=\"delibera.pdf.p7m\"\r\n\
         Content-Disposition: attachment; filename=\"delibera.pdf.p7m\"\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n{}\r\n--b\r\n\
         Content-Type: application/octet-stream; name=\"alterata.pdf.p7m\"\r\n\
         Content-Disposition: attachment; filename=\"alterata.pdf.p7m\"\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n{}\r\n--b--\r\n",
        b64(&signed),
        b64(&tampered)
    );
    let id = f.deliver_raw(ALICE, raw.as_bytes());
    let (session, _) = f.login(ALICE);
    let page = f.send(
        "GET",
        &format!("/webmail/messaggio/{id}"),
        Some(&session),
        &[],
    );
    let verify = link(
        &page.body,
        "Verifica firma<span class=\"nascosto\"> di delibera.pdf.p7m",
    );
    let v = f.send("GET", &verify, Some(&session), &[]);
    assert_eq!(v.status, StatusCode::OK, "{}", v.body);
    for fact in [
        "<span class=\"badge ok\">Firma integra</span>",
        "<dt>Firmatario</dt><dd>",
        "Mario Rossi",
        "<dt>Certificato valido alla data della firma</dt><dd>sì</dd>",
        "<dt>Certificato valido oggi</dt><dd>sì</dd>",
        "<dt>Formato</dt><dd>PDF</dd>",
    ] {
        assert!(v.body.contains(fact), "{fact}: {}", v.body);
    }
    let document = f.send(
        "GET",
        &link(&v.body, "Scarica il documento"),
        Some(&session),
        &[],
    );
    assert_eq!(document.status, StatusCode::OK);
    assert_eq!(document.body.as_bytes(), PDF);
    assert_eq!(
        document.headers["content-disposition"],
        "attachment; filename=\"delibera.pdf\""
    );

    let verify = link(
        &page.body,
        "Verifica firma<span class=\"nascosto\"> di alterata.pdf.p7m",
    );
    let v = f.send("GET", &verify, Some(&session), &[]);
    assert!(
        v.body.contains("<span class=\"badge ko\">Firma non valida: il documento non corrisponde alla firma</span>"),
        "{}",
        v.body
    );
    // Another user cannot verify (nor read) Alice's attachment.
    let (bob, _) = f.login(BOB);
    assert_eq!(
        f.send("GET", &verify, Some(&bob), &[]).status,
        StatusCode::NOT_FOUND
    );
}

fn a_reply_is_filled_in_and_answers_the_message(backend: Backend) {
    let f = fixture(backend);
    let raw = format!(
        "From: Bob <{BOB}>\r\nTo: {ALICE}, carla@pec.altro.it\r\nSubject: Convocazione\r\n\
         Message-ID: <convocazione-1@pec.example.it>\r\nMIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\r\nLunedì alle 9.\r\n"
    );
    let id = f.deliver_raw(ALICE, raw.as_bytes());
    let (session, csrf) = f.login(ALICE);
    let page = f.send(
        "GET",
        &format!("/webmail/messaggio/{id}"),
        Some(&session),
        &[],
    );
    let all = f.send(
        "GET",
        &link(&page.body, ">Rispondi a tutti<"),
        Some(&session),
        &[],
    );
    assert_eq!(all.status, StatusCode::OK, "{}", all.body);
    for fact in [
        &format!(
            "id=\"a\" name=\"a\" type=\"text\" required autocomplete=\"email\" aria-describedby=\"aiuto-destinatari\" maxlength=\"16000\" value=\"{BOB}\""
        ),
        "maxlength=\"16000\" value=\"carla@pec.altro.it\"",
        "value=\"Re: Convocazione\"",
        "name=\"in-risposta-a\" value=\"convocazione-1@pec.example.it\"",
        "&gt; Lunedì alle 9.",
    ] {
        assert!(all.body.contains(fact), "{fact}: {}", all.body);
    }
    let one = f.send("GET", &link(&page.body, ">Rispondi<"), Some(&session), &[]);
    assert!(
        one.body.contains("maxlength=\"16000\" value=\"\""),
        "no Cc: {}",
        one.body
    );
    let body = compose_form(
        &[
            ("csrf", &csrf),
            ("in-risposta-a", "convocazione-1@pec.example.it"),
            ("a", BOB),
            ("oggetto", "Re: Convocazione"),
            ("testo", "Confermo."),
        ],
        &[],
    );
    let sent = f.post_multipart("/webmail/invia", &session, body);
    assert_eq!(sent.status, StatusCode::SEE_OTHER, "{}", sent.body);
    let handed = f.access.0.lock().unwrap().clone();
    let m = mail_parser::MessageParser::default()
        .parse(&handed[0].message)
        .unwrap();
    assert_eq!(
        m.in_reply_to().as_text(),
        Some("convocazione-1@pec.example.it")
    );
}

backend_tests!(
    a_reply_is_filled_in_and_answers_the_message,
    compose_and_send_through_the_access_point,
    compose_refusals_are_said_and_forged_forms_do_nothing,
    the_quota_bar_says_the_space_used,
    opening_a_read_message_writes_nothing,
    a_p7m_attachment_is_verified_and_opened,
    search_finds_the_users_messages_only,
    login_form_cookies_and_logout,
    hostile_subjects_and_addresses_are_escaped,
    users_never_see_each_other,
    sessions_expire_when_idle,
    wrong_passwords_cost_a_growing_wait,
);
