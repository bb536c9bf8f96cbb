//! The webmail through its HTTP entry point (`Webmail::answer`) over a real store, on
//! both backends: the login form and its CSRF token, cookies, hostile subjects and
//! addresses escaped, a POST without the session's token refused, logout, idle expiry on
//! a paused clock, the growing penalty of wrong passwords, and that one user never sees
//! another's mail.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Request, StatusCode};
use pec_jmap::{Jmap, Limits, SignerTrust};
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

/// Trusts nobody: these tests hold no signed mail (the e2e test does).
struct NoTrust;

impl SignerTrust for NoTrust {
    fn trusted(&self, _: &SignerCert, _: DateTime<Utc>) -> bool {
        false
    }
}

struct Fixture {
    _store: TestStore,
    store: Arc<dyn Store>,
    webmail: Webmail,
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
    let jmap = Jmap {
        store: store.clone(),
        auth: Arc::new(Authenticator::new(AuthLimits::default())),
        trust: Arc::new(NoTrust),
        limits: Limits::default(),
        public_host: "mail.pec.example.it".into(),
        changed: Arc::new(|_: &str, _: &str| {}),
        uploads: Arc::default(),
        access: None,
        push: pec_jmap::Push::new(Default::default(), Default::default()),
    };
    let webmail = Webmail::new(
        Arc::new(jmap),
        SessionLimits {
            max_sessions: 100,
            idle: IDLE,
        },
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

backend_tests!(
    search_finds_the_users_messages_only,
    login_form_cookies_and_logout,
    hostile_subjects_and_addresses_are_escaped,
    users_never_see_each_other,
    sessions_expire_when_idle,
    wrong_passwords_cost_a_growing_wait,
);
