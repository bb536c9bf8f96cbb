//! The JMAP service through its HTTP layer (`Jmap::answer`), on both stores: the
//! session and its authentication, request-level problems, the shapes of RFC 8620 and
//! RFC 8621 responses, mailboxes, emails, keywords, changes, downloads, and that one
//! user never reaches another's data.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use chrono::{DateTime, Utc};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Request, StatusCode};
use pec_jmap::submission::Pending;
use pec_jmap::{AccessPoint, Jmap, Limits, Push, PushLimits, ResponseBody, SignerTrust, Verdict};
use pec_net::{AuthLimits, Authenticator};
use pec_proto::smime::SignerCert;
use pec_store::test_util::{Backend, TestStore};
use pec_store::{Direction, FlagOp, NewAccount, Store, backend_tests};
use serde_json::{Value, json};

const ALICE: &str = "alice@pec.example.it";
const BOB: &str = "bob@pec.example.it";
const PASSWORD: &str = "correct horse";
const PEER: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const USING: [&str; 3] = [
    "urn:ietf:params:jmap:core",
    "urn:ietf:params:jmap:mail",
    "urn:pecd:params:jmap:pec",
];

/// Trusts nobody: these tests hold no signed mail (the e2e test does).
struct NoTrust;

impl SignerTrust for NoTrust {
    fn trusted(&self, _: &SignerCert, _: DateTime<Utc>) -> bool {
        false
    }
}

fn message(from: &str, to: &str, subject: &str, body: &str) -> Vec<u8> {
    format!(
        "From: Sender <{from}>\r\nTo: {to}\r\nSubject: {subject}\r\n\
         Message-ID: <{subject}@test>\r\nDate: Mon, 30 Nov 2026 08:00:00 +0100\r\n\
         MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n"
    )
    .into_bytes()
}

/// What the access point was asked: `(peer, user, mail_from, rcpt_to, message)`.
type Submitted = (IpAddr, String, String, Vec<String>, Vec<u8>);

/// An access point that records each submission and answers what the test set.
#[derive(Default)]
struct FakeAccess {
    submitted: Mutex<Vec<Submitted>>,
    answer: Mutex<Option<Verdict>>,
}

impl AccessPoint for FakeAccess {
    fn submit<'a>(
        &'a self,
        peer: IpAddr,
        user: &'a str,
        mail_from: &'a str,
        rcpt_to: &'a [String],
        message: Vec<u8>,
    ) -> Pending<'a> {
        self.submitted.lock().unwrap().push((
            peer,
            user.to_string(),
            mail_from.to_string(),
            rcpt_to.to_vec(),
            message,
        ));
        let answer = self.answer.lock().unwrap().clone();
        Box::pin(async move { answer.expect("the test sets an answer") })
    }
}

struct Fixture {
    access: Arc<FakeAccess>,
    _store: TestStore,
    store: Arc<dyn Store>,
    /// The `(address, folder)` pairs the service said it changed.
    changes: Arc<Mutex<Vec<(String, String)>>>,
    /// The change hub the service tells of its changes and push waits on (as IMAP's).
    hub: pec_imap::Notifier,
    jmap: Jmap,
    rt: tokio::runtime::Runtime,
}

fn fixture(backend: Backend, limits: Limits) -> Fixture {
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
    let auth = Authenticator::new(AuthLimits {
        penalty: Duration::from_millis(1),
        penalty_max: Duration::from_millis(2),
        ..AuthLimits::default()
    });
    let changes: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let told = changes.clone();
    let hub = pec_imap::Notifier::new();
    let tell = hub.clone();
    let access = Arc::new(FakeAccess::default());
    let jmap = Jmap {
        store: store.clone(),
        auth: Arc::new(auth),
        trust: Arc::new(NoTrust),
        limits,
        public_host: "mail.pec.example.it".into(),
        changed: Arc::new(move |a: &str, f: &str| {
            told.lock().unwrap().push((a.to_string(), f.to_string()));
            tell.changed(a, f);
        }),
        uploads: Arc::default(),
        access: Some(access.clone()),
        push: Push::new(hub.clone(), PushLimits::default()),
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    Fixture {
        access,
        _store: t,
        store,
        changes,
        hub,
        jmap,
        rt,
    }
}

fn basic(user: &str, password: &str) -> String {
    let raw = format!("{user}:{password}");
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(raw)
    )
}

struct Answer {
    status: StatusCode,
    headers: hyper::HeaderMap,
    body: Vec<u8>,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&self.body)))
    }
}

impl Fixture {
    fn send(&self, method: &str, path: &str, auth: Option<&str>, body: Vec<u8>) -> Answer {
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header("host", "mail.pec.example.it:8443");
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        let req = req.body(Full::new(Bytes::from(body))).unwrap();
        self.rt.block_on(async {
            let r = self.jmap.answer(req, PEER).await;
            assert!(
                matches!(r.body(), http_body_util::Either::Left(_)),
                "a whole body"
            );
            let status = r.status();
            let headers = r.headers().clone();
            let body = r.into_body().collect().await.unwrap().to_bytes().to_vec();
            Answer {
                status,
                headers,
                body,
            }
        })
    }

    /// One API request as `user`, expecting 200; the method responses.
    fn call(&self, user: &str, using: &[&str], calls: Value) -> Vec<Value> {
        let body = json!({"using": using, "methodCalls": calls});
        let a = self.send(
            "POST",
            "/jmap/api",
            Some(&basic(user, PASSWORD)),
            body.to_string().into_bytes(),
        );
        assert_eq!(
            a.status,
            StatusCode::OK,
            "{}",
            String::from_utf8_lossy(&a.body)
        );
        let v = a.json();
        assert_eq!(v["sessionState"], "pecd-1");
        v["methodResponses"].as_array().unwrap().clone()
    }

    fn one(&self, user: &str, name: &str, args: Value) -> Value {
        let r = self.call(user, &USING, json!([[name, args, "c0"]]));
        assert_eq!(r.len(), 1);
        assert_eq!(r[0][2], "c0");
        r[0].clone()
    }

    fn account(&self, user: &str) -> String {
        let a = self.send(
            "GET",
            "/.well-known/jmap",
            Some(&basic(user, PASSWORD)),
            vec![],
        );
        a.json()["primaryAccounts"]["urn:ietf:params:jmap:mail"]
            .as_str()
            .unwrap()
            .to_string()
    }
}

fn ok(r: &Value, name: &str) -> Value {
    assert_eq!(r[0], name, "{r}");
    r[1].clone()
}

fn error_type(r: &Value) -> String {
    assert_eq!(r[0], "error", "{r}");
    r[1]["type"].as_str().unwrap().to_string()
}

#[test]
fn session_needs_the_mailbox_password() {
    let f = fixture(Backend::Sqlite, Limits::default());
    let none = f.send("GET", "/.well-known/jmap", None, vec![]);
    assert_eq!(none.status, StatusCode::UNAUTHORIZED);
    let challenge = none.headers["www-authenticate"].to_str().unwrap();
    assert!(challenge.starts_with("Basic "), "{challenge}");
    let wrong = f.send(
        "GET",
        "/.well-known/jmap",
        Some(&basic(ALICE, "nope")),
        vec![],
    );
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    let nobody = f.send(
        "GET",
        "/.well-known/jmap",
        Some(&basic("x@y.it", PASSWORD)),
        vec![],
    );
    assert_eq!(nobody.status, StatusCode::UNAUTHORIZED);
    let api = f.send(
        "POST",
        "/jmap/api",
        Some(&basic(ALICE, "nope")),
        b"{}".to_vec(),
    );
    assert_eq!(api.status, StatusCode::UNAUTHORIZED);
    let right = f.send(
        "GET",
        "/.well-known/jmap",
        Some(&basic(ALICE, PASSWORD)),
        vec![],
    );
    assert_eq!(right.status, StatusCode::OK);
    let s = right.json();
    for c in [
        "urn:ietf:params:jmap:core",
        "urn:ietf:params:jmap:mail",
        "urn:ietf:params:jmap:submission",
        "urn:pecd:params:jmap:pec",
    ] {
        assert!(s["capabilities"].get(c).is_some(), "{c} missing: {s}");
    }
    let core = &s["capabilities"]["urn:ietf:params:jmap:core"];
    assert_eq!(core["maxCallsInRequest"], 32);
    assert_eq!(core["maxObjectsInGet"], 256);
    assert_eq!(core["maxSizeRequest"], 4 * 1024 * 1024);
    assert_eq!(s["username"], ALICE);
    assert_eq!(s["apiUrl"], "https://mail.pec.example.it:8443/jmap/api");
    let account = s["primaryAccounts"]["urn:ietf:params:jmap:mail"]
        .as_str()
        .unwrap();
    assert_eq!(s["accounts"][account]["name"], ALICE);
    assert!(
        s["downloadUrl"]
            .as_str()
            .unwrap()
            .ends_with("/jmap/download/{accountId}/{blobId}/{name}?type={type}")
    );
    // Another user's account id is different.
    assert_ne!(f.account(BOB), account);
}

#[test]
fn request_level_problems() {
    let limits = Limits {
        max_size_request: 2048,
        max_calls_in_request: 2,
        ..Limits::default()
    };
    let f = fixture(Backend::Sqlite, limits);
    let auth = basic(ALICE, PASSWORD);
    let problem = |body: &[u8]| {
        let a = f.send("POST", "/jmap/api", Some(&auth), body.to_vec());
        assert_eq!(a.status, StatusCode::BAD_REQUEST);
        assert_eq!(a.headers["content-type"], "application/problem+json");
        a.json()
    };
    assert_eq!(
        problem(b"{nope")["type"],
        "urn:ietf:params:jmap:error:notJSON"
    );
    assert_eq!(
        problem(br#"{"using": [], "methodCalls": {}}"#)["type"],
        "urn:ietf:params:jmap:error:notRequest"
    );
    assert_eq!(
        problem(br#"{"using": ["urn:example:nope"], "methodCalls": []}"#)["type"],
        "urn:ietf:params:jmap:error:unknownCapability"
    );
    let three = json!({"using": ["urn:ietf:params:jmap:core"], "methodCalls": [
        ["Core/echo", {}, "a"], ["Core/echo", {}, "b"], ["Core/echo", {}, "c"]]});
    let p = problem(three.to_string().as_bytes());
    assert_eq!(p["type"], "urn:ietf:params:jmap:error:limit");
    assert_eq!(p["limit"], "maxCallsInRequest");
    let big = format!(
        r#"{{"using": [], "methodCalls": [["Core/echo", {{"x": "{}"}}, "a"]]}}"#,
        "y".repeat(4096)
    );
    let p = problem(big.as_bytes());
    assert_eq!(p["limit"], "maxSizeRequest");
    let get = f.send("GET", "/jmap/api", Some(&auth), vec![]);
    assert_eq!(get.status, StatusCode::METHOD_NOT_ALLOWED);
}

#[test]
fn rfc_8620_examples() {
    let f = fixture(Backend::Sqlite, Limits::default());
    // RFC 8620 §4.1: Core/echo returns its arguments.
    let r = f.call(
        ALICE,
        &["urn:ietf:params:jmap:core"],
        json!([["Core/echo", {"hello": true, "high": 5}, "b3ff"]]),
    );
    assert_eq!(
        r,
        vec![json!(["Core/echo", {"hello": true, "high": 5}, "b3ff"])]
    );
    // §3.6.2: an unknown method, and a method of a capability not in `using`.
    let r = f.call(
        ALICE,
        &["urn:ietf:params:jmap:core"],
        json!([["Nope/get", {}, "a"], ["Mailbox/get", {"accountId": f.account(ALICE)}, "b"]]),
    );
    assert_eq!(error_type(&r[0]), "unknownMethod");
    assert_eq!(r[0][2], "a");
    assert_eq!(error_type(&r[1]), "unknownMethod");
    // accountNotFound and invalidArguments.
    let r = f.one(ALICE, "Mailbox/get", json!({"accountId": f.account(BOB)}));
    assert_eq!(error_type(&r), "accountNotFound");
    let r = f.one(ALICE, "Mailbox/get", json!({}));
    assert_eq!(error_type(&r), "invalidArguments");
    // §3.7: a result reference with a JSON pointer through arrays.
    let account = f.account(ALICE);
    f.store
        .deliver(
            ALICE,
            "INBOX",
            &message(BOB, ALICE, "uno", "ciao"),
            &[],
            1_800_000_000,
        )
        .unwrap();
    let r = f.call(
        ALICE,
        &USING,
        json!([
            ["Email/query", {"accountId": account}, "t0"],
            ["Email/get", {"accountId": account,
                "#ids": {"resultOf": "t0", "name": "Email/query", "path": "/ids"},
                "properties": ["threadId"]}, "t1"],
            ["Thread/get", {"accountId": account,
                "#ids": {"resultOf": "t1", "name": "Email/get", "path": "/list/*/threadId"}}, "t2"],
            ["Email/get", {"accountId": account,
                "#ids": {"resultOf": "t9", "name": "Email/query", "path": "/ids"}}, "t3"],
        ]),
    );
    let ids = ok(&r[0], "Email/query")["ids"].clone();
    assert_eq!(ids.as_array().unwrap().len(), 1);
    let got = ok(&r[1], "Email/get");
    assert_eq!(got["list"][0]["id"], ids[0]);
    let thread = ok(&r[2], "Thread/get");
    assert_eq!(thread["list"][0]["emailIds"], ids);
    assert_eq!(error_type(&r[3]), "invalidResultReference");
}

#[test]
fn hostile_requests_are_bounded() {
    let f = fixture(Backend::Sqlite, Limits::default());
    let account = f.account(ALICE);
    // A filter nested deeper than 8 operators.
    let mut filter = json!({"inMailbox": "archive"});
    for _ in 0..50 {
        filter = json!({"operator": "NOT", "conditions": [filter]});
    }
    let r = f.one(
        ALICE,
        "Email/query",
        json!({"accountId": account, "filter": filter}),
    );
    assert_eq!(error_type(&r), "unsupportedFilter");
    // More conditions than 64.
    let wide: Vec<Value> = (0..100).map(|_| json!({"hasKeyword": "$seen"})).collect();
    let r = f.one(
        ALICE,
        "Email/query",
        json!({"accountId": account, "filter": {"operator": "OR", "conditions": wide}}),
    );
    assert_eq!(error_type(&r), "unsupportedFilter");
    // More ids than maxObjectsInGet.
    let ids: Vec<String> = (0..300).map(|i| format!("e1_{}", i + 1)).collect();
    let r = f.one(
        ALICE,
        "Email/get",
        json!({"accountId": account, "ids": ids}),
    );
    assert_eq!(error_type(&r), "requestTooLarge");
    // Ids that are not ours, a pointer of many stars, an over-long state.
    let r = f.one(
        ALICE,
        "Email/get",
        json!({"accountId": account, "ids": ["../../etc", "e1_1_1", "s0", "e4294967296_1"]}),
    );
    assert_eq!(ok(&r, "Email/get")["notFound"].as_array().unwrap().len(), 4);
    let r = f.call(
        ALICE,
        &USING,
        json!([
            ["Core/echo", {"a": [[[1]]]}, "e"],
            ["Core/echo", {"#b": {"resultOf": "e", "name": "Core/echo",
                "path": format!("/a{}", "/*".repeat(400))}}, "f"],
        ]),
    );
    assert_eq!(error_type(&r[1]), "invalidResultReference");
    let r = f.call(
        ALICE,
        &USING,
        json!([
            ["Core/echo", {"a": [[[1]]]}, "e"],
            ["Core/echo", {"#b": {"resultOf": "e", "name": "Core/echo", "path": "/a/*/*/*"}}, "f"],
        ]),
    );
    assert_eq!(ok(&r[1], "Core/echo")["b"], json!([1]));
    let r = f.one(
        ALICE,
        "Email/changes",
        json!({"accountId": account, "sinceState": "m1:1:1,".repeat(100_000)}),
    );
    assert_eq!(error_type(&r), "cannotCalculateChanges");
}

fn mailboxes_emails_and_changes(backend: Backend) {
    let f = fixture(backend, Limits::default());
    let account = f.account(ALICE);
    let store = &f.store;
    store.create_folder(ALICE, "Pratiche").unwrap();
    let first = store
        .deliver(
            ALICE,
            "INBOX",
            &message(BOB, ALICE, "primo", "testo uno"),
            &[],
            1_800_000_000,
        )
        .unwrap();
    store
        .deliver(
            ALICE,
            "Pratiche",
            &message("carla@pec.example.it", ALICE, "secondo", "testo due"),
            &["\\Flagged".to_string()],
            1_800_000_100,
        )
        .unwrap();
    store
        .archive(
            ALICE,
            &message(BOB, ALICE, "archiviato", "x"),
            Direction::Received,
            "posta-certificata",
            1_800_000_050,
        )
        .unwrap();

    // Mailbox/get: INBOX has the inbox role, the archive is read-only.
    let mb = ok(
        &f.one(ALICE, "Mailbox/get", json!({"accountId": account})),
        "Mailbox/get",
    );
    let list = mb["list"].as_array().unwrap();
    let inbox = list.iter().find(|m| m["role"] == "inbox").unwrap();
    assert_eq!(inbox["name"], "INBOX");
    assert_eq!(inbox["totalEmails"], 1);
    assert_eq!(inbox["unreadEmails"], 1);
    assert_eq!(inbox["myRights"]["mayAddItems"], true);
    let archive = list.iter().find(|m| m["id"] == "archive").unwrap();
    assert_eq!(archive["name"], "Archivio di sicurezza");
    assert_eq!(archive["totalEmails"], 1);
    assert_eq!(archive["myRights"]["mayAddItems"], false);
    assert_eq!(archive["myRights"]["mayRemoveItems"], false);
    assert_eq!(archive["myRights"]["maySetSeen"], true);
    let pratiche = list.iter().find(|m| m["name"] == "Pratiche").unwrap();
    let pratiche_id = pratiche["id"].as_str().unwrap().to_string();
    let inbox_id = inbox["id"].as_str().unwrap().to_string();
    let mailbox_state = mb["state"].as_str().unwrap().to_string();

    // Mailbox/query by role.
    let q = ok(
        &f.one(
            ALICE,
            "Mailbox/query",
            json!({"accountId": account, "filter": {"role": "inbox"}}),
        ),
        "Mailbox/query",
    );
    assert_eq!(q["ids"], json!([inbox_id]));

    // Email/query: filters and sort.
    let query = |filter: Value| -> Vec<String> {
        let r = f.one(
            ALICE,
            "Email/query",
            json!({"accountId": account, "filter": filter,
            "sort": [{"property": "receivedAt", "isAscending": true}]}),
        );
        serde_json::from_value(ok(&r, "Email/query")["ids"].clone()).unwrap()
    };
    let all = query(Value::Null);
    assert_eq!(all.len(), 3);
    let inbox_email = format!("e{}_{}", first.uidvalidity, first.uid);
    assert_eq!(all[0], inbox_email);
    assert_eq!(all[1], "s1");
    assert_eq!(
        query(json!({"inMailbox": inbox_id})),
        vec![inbox_email.clone()]
    );
    assert_eq!(query(json!({"inMailbox": pratiche_id})).len(), 1);
    assert_eq!(query(json!({"hasKeyword": "$flagged"})).len(), 1);
    assert_eq!(query(json!({"from": "carla"})).len(), 1);
    assert_eq!(
        query(json!({"subject": "PRIMO"})),
        vec![inbox_email.clone()]
    );
    assert_eq!(query(json!({"text": "testo"})).len(), 2);
    assert_eq!(query(json!({"after": "2027-01-15T08:00:30Z"})).len(), 2);
    assert_eq!(
        query(json!({"before": "2027-01-15T08:00:01Z"})),
        vec![inbox_email.clone()]
    );
    assert_eq!(
        query(json!({"operator": "NOT", "conditions": [{"inMailbox": "archive"}]})).len(),
        2
    );
    let r = f.one(
        ALICE,
        "Email/query",
        json!({"accountId": account, "filter": {"nope": 1}}),
    );
    assert_eq!(error_type(&r), "unsupportedFilter");

    // Email/get: the properties of RFC 8621 §4.1.
    let r = f.one(
        ALICE,
        "Email/get",
        json!({"accountId": account, "ids": [inbox_email, "e999_1"],
        "properties": ["subject", "from", "to", "keywords", "mailboxIds", "receivedAt",
            "messageId", "textBody", "bodyValues", "preview", "size", "blobId", "pec",
            "header:Subject:asText", "headers"],
        "fetchTextBodyValues": true}),
    );
    let got = ok(&r, "Email/get");
    assert_eq!(got["notFound"], json!(["e999_1"]));
    let e = &got["list"][0];
    assert_eq!(e["subject"], "primo");
    assert_eq!(e["header:Subject:asText"], "primo");
    assert_eq!(e["from"], json!([{"name": "Sender", "email": BOB}]));
    assert_eq!(e["to"], json!([{"name": null, "email": ALICE}]));
    assert_eq!(e["keywords"], json!({}));
    assert_eq!(e["mailboxIds"], json!({inbox_id.clone(): true}));
    assert_eq!(e["receivedAt"], "2027-01-15T08:00:00Z");
    assert_eq!(e["messageId"], json!(["primo@test"]));
    assert_eq!(e["pec"], Value::Null);
    assert_eq!(e["preview"], "testo uno");
    let part = e["textBody"][0]["partId"].as_str().unwrap();
    assert_eq!(e["bodyValues"][part]["value"], "testo uno\r\n");
    assert_eq!(e["textBody"][0]["type"], "text/plain");
    let headers = e["headers"].as_array().unwrap();
    assert!(
        headers
            .iter()
            .any(|h| h["name"] == "Subject" && h["value"] == " primo"),
        "{headers:?}"
    );
    let blob = e["blobId"].as_str().unwrap().to_string();

    // Download: the message exactly as stored.
    let d = f.send(
        "GET",
        &format!("/jmap/download/{account}/{blob}/m.eml?type=message/rfc822"),
        Some(&basic(ALICE, PASSWORD)),
        vec![],
    );
    assert_eq!(d.status, StatusCode::OK);
    assert_eq!(d.headers["content-type"], "message/rfc822");
    assert_eq!(d.body, message(BOB, ALICE, "primo", "testo uno"));

    // Email/set $seen, then Email/changes and Mailbox/changes see it.
    let state = got["state"].as_str().unwrap().to_string();
    let r = f.one(
        ALICE,
        "Email/set",
        json!({"accountId": account,
        "update": {inbox_email.clone(): {"keywords/$seen": true}}}),
    );
    let set = ok(&r, "Email/set");
    assert_eq!(set["updated"], json!({inbox_email.clone(): null}));
    assert_eq!(set["oldState"], state);
    assert_ne!(set["newState"], state);
    let flags = store.messages(ALICE, "INBOX").unwrap()[0].flags.clone();
    assert_eq!(flags, vec!["\\Seen".to_string()]);
    // IMAP sessions of the node are told.
    assert_eq!(
        f.changes.lock().unwrap().as_slice(),
        [(ALICE.to_string(), "INBOX".to_string())]
    );
    let later = store
        .deliver(
            ALICE,
            "INBOX",
            &message(BOB, ALICE, "terzo", "x"),
            &[],
            1_800_000_200,
        )
        .unwrap();
    let r = f.one(
        ALICE,
        "Email/changes",
        json!({"accountId": account, "sinceState": state}),
    );
    let c = ok(&r, "Email/changes");
    assert_eq!(c["updated"], json!([inbox_email.clone()]));
    assert_eq!(
        c["created"],
        json!([format!("e{}_{}", later.uidvalidity, later.uid)])
    );
    assert_eq!(c["destroyed"], json!([]));
    let new_state = c["newState"].as_str().unwrap().to_string();
    store
        .store_flags(
            ALICE,
            "INBOX",
            &[first.uid],
            FlagOp::Add,
            &["\\Deleted".into()],
        )
        .unwrap();
    store.expunge(ALICE, "INBOX", None).unwrap();
    let r = f.one(
        ALICE,
        "Email/changes",
        json!({"accountId": account, "sinceState": new_state}),
    );
    let c = ok(&r, "Email/changes");
    assert_eq!(c["destroyed"], json!([inbox_email.clone()]));
    assert_eq!(c["created"], json!([]));
    let r = f.one(
        ALICE,
        "Email/changes",
        json!({"accountId": account, "sinceState": "garbage"}),
    );
    assert_eq!(error_type(&r), "cannotCalculateChanges");
    let r = f.one(
        ALICE,
        "Mailbox/changes",
        json!({"accountId": account, "sinceState": mailbox_state}),
    );
    let c = ok(&r, "Mailbox/changes");
    assert_eq!(c["updated"], json!([inbox_id]));
    assert_eq!(
        c["updatedProperties"],
        json!([
            "totalEmails",
            "unreadEmails",
            "totalThreads",
            "unreadThreads"
        ])
    );

    // The archive changes $seen only.
    let r = f.one(
        ALICE,
        "Email/set",
        json!({"accountId": account,
        "update": {"s1": {"keywords/$flagged": true}, "s9": {"keywords/$seen": true}}}),
    );
    let set = ok(&r, "Email/set");
    assert_eq!(set["notUpdated"]["s1"]["type"], "forbidden");
    assert_eq!(set["notUpdated"]["s9"]["type"], "notFound");
    let r = f.one(
        ALICE,
        "Email/set",
        json!({"accountId": account,
        "update": {"s1": {"keywords": {"$seen": true}}}}),
    );
    assert_eq!(ok(&r, "Email/set")["updated"], json!({"s1": null}));
    assert_eq!(
        store.archive_messages(ALICE).unwrap()[0].flags,
        vec!["\\Seen".to_string()]
    );
    assert_eq!(
        f.changes.lock().unwrap().last().unwrap(),
        &(ALICE.to_string(), "Archivio di sicurezza".to_string())
    );

    // Identity/get: the address itself.
    let r = f.call(
        ALICE,
        &[
            "urn:ietf:params:jmap:core",
            "urn:ietf:params:jmap:submission",
        ],
        json!([["Identity/get", {"accountId": account}, "i"]]),
    );
    assert_eq!(ok(&r[0], "Identity/get")["list"][0]["email"], ALICE);
}

fn users_never_see_each_other(backend: Backend) {
    let f = fixture(backend, Limits::default());
    let alice = f.account(ALICE);
    let bob = f.account(BOB);
    let d = f
        .store
        .deliver(
            ALICE,
            "INBOX",
            &message(BOB, ALICE, "privato", "segreto"),
            &[],
            1_800_000_000,
        )
        .unwrap();
    f.store
        .archive(
            ALICE,
            &message(BOB, ALICE, "arch", "segreto"),
            Direction::Received,
            "posta-certificata",
            1_800_000_000,
        )
        .unwrap();
    let email = format!("e{}_{}", d.uidvalidity, d.uid);
    // Bob's own account shows nothing of Alice's.
    let r = f.one(BOB, "Email/query", json!({"accountId": bob}));
    assert_eq!(ok(&r, "Email/query")["ids"], json!([]));
    let r = f.one(
        BOB,
        "Email/get",
        json!({"accountId": bob, "ids": [email, "s1"]}),
    );
    assert_eq!(ok(&r, "Email/get")["notFound"], json!([email, "s1"]));
    let r = f.one(
        BOB,
        "Email/set",
        json!({"accountId": bob, "update": {email.clone(): {"keywords/$seen": true}}}),
    );
    assert_eq!(
        ok(&r, "Email/set")["notUpdated"][&email]["type"],
        "notFound"
    );
    assert!(
        f.store.messages(ALICE, "INBOX").unwrap()[0]
            .flags
            .is_empty()
    );
    assert!(f.changes.lock().unwrap().is_empty());
    let r = f.one(
        BOB,
        "Mailbox/get",
        json!({"accountId": bob, "ids": [format!("m{}", d.uidvalidity)]}),
    );
    assert_eq!(
        ok(&r, "Mailbox/get")["notFound"].as_array().unwrap().len(),
        1
    );
    // Alice's account id is not Bob's to use.
    let r = f.one(BOB, "Email/query", json!({"accountId": alice}));
    assert_eq!(error_type(&r), "accountNotFound");
    // Nor are her blobs, under either account id.
    let r = f.one(
        ALICE,
        "Email/get",
        json!({"accountId": alice, "ids": [email], "properties": ["blobId"]}),
    );
    let blob = ok(&r, "Email/get")["list"][0]["blobId"]
        .as_str()
        .unwrap()
        .to_string();
    for account in [&alice, &bob] {
        let d = f.send(
            "GET",
            &format!("/jmap/download/{account}/{blob}/x.eml"),
            Some(&basic(BOB, PASSWORD)),
            vec![],
        );
        assert_eq!(d.status, StatusCode::NOT_FOUND);
    }
    let d = f.send(
        "GET",
        &format!("/jmap/download/{alice}/{blob}/x.eml"),
        Some(&basic(ALICE, PASSWORD)),
        vec![],
    );
    assert_eq!(d.status, StatusCode::OK);
}

fn user_folders_through_mailbox_set(backend: Backend) {
    let f = fixture(backend, Limits::default());
    let account = f.account(ALICE);
    let folders = |f: &Fixture| -> Vec<(String, bool)> {
        f.store
            .list_folders(ALICE)
            .unwrap()
            .into_iter()
            .map(|x| (x.name, x.subscribed))
            .collect()
    };
    let r = f.one(
        ALICE,
        "Mailbox/set",
        json!({"accountId": account, "create": {
            "k1": {"name": "Progetti", "parentId": null, "isSubscribed": false},
            "k2": {"name": "INBOX"},
            "k3": {"name": "a/b"},
            "k4": {"name": "Archivio di sicurezza"},
            "k5": {"name": "X", "role": "inbox"}}}),
    );
    let set = ok(&r, "Mailbox/set");
    let id = set["created"]["k1"]["id"].as_str().unwrap().to_string();
    for k in ["k2", "k3", "k4", "k5"] {
        assert_eq!(
            set["notCreated"][k]["type"], "invalidProperties",
            "{k}: {set}"
        );
    }
    assert!(folders(&f).contains(&("Progetti".to_string(), false)));
    let inbox = ok(
        &f.one(
            ALICE,
            "Mailbox/query",
            json!({"accountId": account, "filter": {"role": "inbox"}}),
        ),
        "Mailbox/query",
    )["ids"][0]
        .as_str()
        .unwrap()
        .to_string();
    let r = f.one(
        ALICE,
        "Mailbox/set",
        json!({"accountId": account, "update": {
            id.clone(): {"name": "Pratiche 2026", "isSubscribed": true},
            inbox.clone(): {"name": "Posta"},
            "archive": {"isSubscribed": false}}}),
    );
    let set = ok(&r, "Mailbox/set");
    assert_eq!(set["updated"], json!({id.clone(): null}));
    assert_eq!(set["notUpdated"][&inbox]["type"], "forbidden");
    assert_eq!(set["notUpdated"]["archive"]["type"], "forbidden");
    assert!(folders(&f).contains(&("Pratiche 2026".to_string(), true)));
    f.store
        .deliver(
            ALICE,
            "Pratiche 2026",
            &message(BOB, ALICE, "dentro", "x"),
            &[],
            1_800_000_000,
        )
        .unwrap();
    let r = f.one(
        ALICE,
        "Mailbox/set",
        json!({"accountId": account, "destroy": [id.clone(), inbox, "archive", "m999"]}),
    );
    let set = ok(&r, "Mailbox/set");
    assert_eq!(set["notDestroyed"][&id]["type"], "mailboxHasEmail");
    assert_eq!(set["notDestroyed"]["archive"]["type"], "forbidden");
    assert_eq!(set["notDestroyed"]["m999"]["type"], "notFound");
    assert_eq!(set["destroyed"], json!([]));
    let r = f.one(
        ALICE,
        "Mailbox/set",
        json!({"accountId": account, "destroy": [id.clone()], "onDestroyRemoveEmails": true}),
    );
    assert_eq!(ok(&r, "Mailbox/set")["destroyed"], json!([id]));
    assert!(!folders(&f).iter().any(|(n, _)| n == "Pratiche 2026"));
    // Bob cannot touch Alice's folders: their ids are not his.
    f.store.create_folder(ALICE, "Sua").unwrap();
    let theirs = format!("m{}", f.store.select(ALICE, "Sua").unwrap().uidvalidity);
    let r = f.one(
        BOB,
        "Mailbox/set",
        json!({"accountId": f.account(BOB), "destroy": [theirs.clone()],
            "update": {theirs.clone(): {"name": "Mia"}}}),
    );
    let set = ok(&r, "Mailbox/set");
    assert_eq!(set["notDestroyed"][&theirs]["type"], "notFound");
    assert_eq!(set["notUpdated"][&theirs]["type"], "notFound");
    assert!(folders(&f).iter().any(|(n, _)| n == "Sua"));
}

/// The id of ALICE's mailbox with `role`.
fn mailbox_with_role(f: &Fixture, account: &str, role: &str) -> String {
    let q = ok(
        &f.one(
            ALICE,
            "Mailbox/query",
            json!({"accountId": account, "filter": {"role": role}}),
        ),
        "Mailbox/query",
    );
    q["ids"][0].as_str().unwrap().to_string()
}

fn upload_and_import(backend: Backend) {
    let f = fixture(
        backend,
        Limits {
            max_size_upload: 4096,
            ..Limits::default()
        },
    );
    let account = f.account(ALICE);
    let session = f.send(
        "GET",
        "/.well-known/jmap",
        Some(&basic(ALICE, PASSWORD)),
        vec![],
    );
    assert_eq!(
        session.json()["capabilities"]["urn:ietf:params:jmap:core"]["maxSizeUpload"],
        4096
    );
    let bytes = message(ALICE, BOB, "bozza", "testo della bozza");
    // The blob id is the SHA-256 of the bytes, computed here independently.
    let expected_hash: String = openssl::sha::sha256(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let upload_path = format!("/jmap/upload/{account}/");

    // Upload: 201 with the blob's id (its SHA-256), type and size.
    let req = Request::builder()
        .method("POST")
        .uri(&upload_path)
        .header("authorization", basic(ALICE, PASSWORD))
        .header("content-type", "message/rfc822; charset=utf-8")
        .body(Full::new(Bytes::from(bytes.clone())))
        .unwrap();
    let (status, up) = f.rt.block_on(async {
        let r = f.jmap.answer(req, PEER).await;
        let status = r.status();
        let body = r.into_body().collect().await.unwrap().to_bytes().to_vec();
        (status, serde_json::from_slice::<Value>(&body).unwrap())
    });
    assert_eq!(status, StatusCode::CREATED, "{up}");
    assert_eq!(up["accountId"], account.as_str());
    assert_eq!(up["blobId"], format!("b{expected_hash}"));
    assert_eq!(up["type"], "message/rfc822");
    assert_eq!(up["size"], bytes.len());
    let blob = up["blobId"].as_str().unwrap().to_string();

    // The uploader downloads it; nobody else does, nor uploads into another account.
    let download = format!("/jmap/download/{account}/{blob}/b.eml");
    let a = f.send("GET", &download, Some(&basic(ALICE, PASSWORD)), vec![]);
    assert_eq!((a.status, a.body.clone()), (StatusCode::OK, bytes.clone()));
    let bob_account = f.account(BOB);
    let theirs = format!("/jmap/download/{bob_account}/{blob}/b.eml");
    let a = f.send("GET", &theirs, Some(&basic(BOB, PASSWORD)), vec![]);
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    let a = f.send(
        "POST",
        &upload_path,
        Some(&basic(BOB, PASSWORD)),
        b"x".to_vec(),
    );
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    // Over maxSizeUpload: 413, a limit problem; nothing kept.
    let a = f.send(
        "POST",
        &upload_path,
        Some(&basic(ALICE, PASSWORD)),
        vec![b'x'; 4097],
    );
    assert_eq!(a.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(a.json()["limit"], "maxSizeUpload");
    let a = f.send("GET", &upload_path, Some(&basic(ALICE, PASSWORD)), vec![]);
    assert_eq!(a.status, StatusCode::METHOD_NOT_ALLOWED);

    // Email/import into Drafts with $draft: stored as IMAP APPEND stores it.
    let drafts = mailbox_with_role(&f, &account, "drafts");
    let junk = f.send(
        "POST",
        &upload_path,
        Some(&basic(ALICE, PASSWORD)),
        b"\x00\x01 not a message".to_vec(),
    );
    let junk = junk.json()["blobId"].as_str().unwrap().to_string();
    let r = f.one(
        ALICE,
        "Email/import",
        json!({"accountId": account, "emails": {
            "k1": {"blobId": blob, "mailboxIds": {&drafts: true},
                   "keywords": {"$draft": true, "$seen": true},
                   "receivedAt": "2026-11-30T07:00:00Z"},
            "k2": {"blobId": blob, "mailboxIds": {"archive": true}},
            "k3": {"blobId": "b0000000000000000000000000000000000000000000000000000000000000000",
                   "mailboxIds": {&drafts: true}},
            "k4": {"blobId": blob, "mailboxIds": {}},
            "k5": {"blobId": junk, "mailboxIds": {&drafts: true}},
            "k6": {"blobId": blob, "mailboxIds": {&drafts: true}, "keywords": {"$seen": false}},
        }}),
    );
    let imported = ok(&r, "Email/import");
    assert_ne!(imported["oldState"], imported["newState"]);
    let created = &imported["created"]["k1"];
    assert_eq!(created["blobId"], blob.as_str());
    assert_eq!(created["size"], bytes.len());
    assert_eq!(imported["notCreated"]["k2"]["type"], "forbidden");
    assert_eq!(imported["notCreated"]["k3"]["type"], "blobNotFound");
    assert_eq!(imported["notCreated"]["k4"]["type"], "invalidProperties");
    assert_eq!(imported["notCreated"]["k5"]["type"], "invalidEmail");
    assert_eq!(imported["notCreated"]["k6"]["type"], "invalidProperties");
    let id = created["id"].as_str().unwrap();
    let uid: u32 = id.rsplit('_').next().unwrap().parse().unwrap();
    assert_eq!(f.store.fetch(ALICE, "Drafts", uid).unwrap(), bytes);
    let meta = f.store.messages(ALICE, "Drafts").unwrap();
    assert_eq!(meta.len(), 1);
    let mut flags = meta[0].flags.clone();
    flags.sort();
    assert_eq!(flags, ["\\Draft", "\\Seen"]);
    assert_eq!(meta[0].internaldate, 1_796_022_000);
    assert!(
        f.changes
            .lock()
            .unwrap()
            .contains(&(ALICE.to_string(), "Drafts".to_string()))
    );
    let got = ok(
        &f.one(
            ALICE,
            "Email/get",
            json!({"accountId": account, "ids": [id], "properties": ["subject", "mailboxIds", "keywords"]}),
        ),
        "Email/get",
    );
    assert_eq!(got["list"][0]["subject"], "bozza");
    assert_eq!(got["list"][0]["mailboxIds"], json!({&drafts: true}));

    // A stored message's blob can be imported again elsewhere (a copy, as IMAP COPY).
    let inbox = mailbox_with_role(&f, &account, "inbox");
    let r = f.one(
        ALICE,
        "Email/import",
        json!({"accountId": account, "ifInState": imported["newState"], "emails": {
            "k1": {"blobId": blob, "mailboxIds": {&inbox: true}}}}),
    );
    assert!(ok(&r, "Email/import")["created"]["k1"]["id"].is_string());
    // A stale ifInState is a stateMismatch; Bob cannot import Alice's blob.
    let r = f.one(
        ALICE,
        "Email/import",
        json!({"accountId": account, "ifInState": imported["newState"], "emails": {}}),
    );
    assert_eq!(error_type(&r), "stateMismatch");
    let bob_inbox = {
        let q = f.one(
            BOB,
            "Mailbox/query",
            json!({"accountId": bob_account, "filter": {"role": "inbox"}}),
        );
        ok(&q, "Mailbox/query")["ids"][0]
            .as_str()
            .unwrap()
            .to_string()
    };
    let r = f.one(
        BOB,
        "Email/import",
        json!({"accountId": bob_account, "emails": {
            "k1": {"blobId": blob, "mailboxIds": {&bob_inbox: true}}}}),
    );
    assert_eq!(
        ok(&r, "Email/import")["notCreated"]["k1"]["type"],
        "blobNotFound"
    );
}

/// Imports `bytes` into ALICE's Drafts: the email id.
fn import_draft(f: &Fixture, account: &str, bytes: Vec<u8>) -> String {
    let up = f.send(
        "POST",
        &format!("/jmap/upload/{account}/"),
        Some(&basic(ALICE, PASSWORD)),
        bytes,
    );
    assert_eq!(up.status, StatusCode::CREATED);
    let drafts = mailbox_with_role(f, account, "drafts");
    let r = f.one(
        ALICE,
        "Email/import",
        json!({"accountId": account, "emails": {"d": {
            "blobId": up.json()["blobId"], "mailboxIds": {drafts: true}}}}),
    );
    ok(&r, "Email/import")["created"]["d"]["id"]
        .as_str()
        .unwrap()
        .to_string()
}

fn submission_goes_through_the_access_point(backend: Backend) {
    let f = fixture(backend, Limits::default());
    let account = f.account(ALICE);
    let bytes = format!(
        "From: {ALICE}\r\nTo: {BOB}, carla@pec.example.it\r\nCc: <dario@pec.example.it>\r\n\
         Subject: invio\r\n\r\ntesto\r\n"
    )
    .into_bytes();
    let email = import_draft(&f, &account, bytes.clone());
    let submit =
        |create: Value| {
            let r = f.call(
            ALICE,
            &["urn:ietf:params:jmap:core", "urn:ietf:params:jmap:submission"],
            json!([["EmailSubmission/set", {"accountId": account, "create": {"s": create}}, "c"]]),
        );
            ok(&r[0], "EmailSubmission/set")
        };

    // Accepted: the envelope is the user and the email's To and Cc; the bytes as stored.
    *f.access.answer.lock().unwrap() = Some(Verdict::Accepted("Ok: accettato, id 1".into()));
    let r = submit(json!({"emailId": email, "identityId": "self"}));
    assert_eq!(r["created"]["s"]["undoStatus"], "final", "{r}");
    assert_eq!(r["created"]["s"]["pecAccepted"], "Ok: accettato, id 1");
    {
        let seen = f.access.submitted.lock().unwrap();
        assert_eq!(seen.len(), 1);
        let (peer, user, from, rcpt, message) = &seen[0];
        assert_eq!((*peer, user.as_str(), from.as_str()), (PEER, ALICE, ALICE));
        assert_eq!(rcpt, &[BOB, "carla@pec.example.it", "dario@pec.example.it"]);
        assert_eq!(message, &bytes);
    }

    // onSuccessUpdateEmail: the implicit Email/set after the submission, on the
    // created ones only (the draft loses $draft, gains $seen).
    let r = f.call(
        ALICE,
        &[
            "urn:ietf:params:jmap:core",
            "urn:ietf:params:jmap:mail",
            "urn:ietf:params:jmap:submission",
        ],
        json!([["EmailSubmission/set", {"accountId": account,
            "create": {"s": {"emailId": email}},
            "onSuccessUpdateEmail": {"#s": {"keywords/$draft": null, "keywords/$seen": true},
                                     "#other": {"keywords/$flagged": true}}}, "c"]]),
    );
    assert_eq!(r.len(), 2, "{r:?}");
    assert!(ok(&r[0], "EmailSubmission/set")["created"]["s"].is_object());
    let implicit = ok(&r[1], "Email/set");
    assert_eq!(r[1][2], "c");
    assert_eq!(implicit["updated"], json!({&email: null}), "{implicit}");
    let flags = &f.store.messages(ALICE, "Drafts").unwrap()[0].flags;
    assert_eq!(flags, &["\\Seen".to_string()]);
    f.access.submitted.lock().unwrap().pop();

    // A draft created and sent in one request: `#d` names the created email.
    let drafts = mailbox_with_role(&f, &account, "drafts");
    let r = f.call(
        ALICE,
        &[
            "urn:ietf:params:jmap:core",
            "urn:ietf:params:jmap:mail",
            "urn:ietf:params:jmap:submission",
        ],
        json!([
            ["Email/set", {"accountId": account, "create": {"d": {
                "mailboxIds": {&drafts: true}, "from": [{"email": ALICE}],
                "to": [{"email": BOB}], "subject": "in un colpo"}}}, "a"],
            ["EmailSubmission/set", {"accountId": account,
                "create": {"s": {"emailId": "#d"}}}, "b"]]),
    );
    let made = ok(&r[0], "Email/set")["created"]["d"]["id"].clone();
    assert!(
        ok(&r[1], "EmailSubmission/set")["created"]["s"].is_object(),
        "{r:?}"
    );
    {
        let seen = f.access.submitted.lock().unwrap();
        let last = seen.last().unwrap();
        assert_eq!(last.3, [BOB]);
        assert!(String::from_utf8_lossy(&last.4).contains("Subject: in un colpo"));
    }
    assert!(made.is_string());
    f.access.submitted.lock().unwrap().pop();

    // Each refusal of the access point is the SetError RFC 8621 names.
    let envelope = json!({"mailFrom": {"email": BOB}, "rcptTo": [{"email": "x@y.it"}]});
    for (verdict, kind) in [
        (Verdict::ForbiddenFrom("mittente".into()), "forbiddenFrom"),
        (
            Verdict::InvalidRecipients(vec!["x@y.it".into()], "no".into()),
            "invalidRecipients",
        ),
        (Verdict::TooLarge(10), "tooLarge"),
        (Verdict::Refused("non accettato".into()), "forbiddenToSend"),
        (Verdict::Temporary("riprovare".into()), "serverUnavailable"),
    ] {
        *f.access.answer.lock().unwrap() = Some(verdict);
        let r = submit(json!({"emailId": email, "envelope": envelope}));
        assert_eq!(r["notCreated"]["s"]["type"], kind, "{r}");
    }
    assert_eq!(
        submit(json!({"emailId": email, "envelope": envelope}))["notCreated"]["s"]["description"],
        "riprovare"
    );
    {
        let seen = f.access.submitted.lock().unwrap();
        assert_eq!(seen.len(), 7);
        // The client's envelope is passed as it is: the access point judges it.
        assert_eq!(
            (seen[1].2.as_str(), seen[1].3.as_slice()),
            (BOB, &["x@y.it".to_string()][..])
        );
    }
    // What never reaches the access point: another identity, an email not the user's, a
    // draft without recipients; and a PEC accepted is not recalled.
    let bob_email = {
        let d = f
            .store
            .deliver(
                BOB,
                "INBOX",
                &message(ALICE, BOB, "suo", "x"),
                &[],
                1_800_000_000,
            )
            .unwrap();
        format!("e{}_{}", d.uidvalidity, d.uid)
    };
    let lonely = import_draft(
        &f,
        &account,
        format!("From: {ALICE}\r\nSubject: a nessuno\r\n\r\nx\r\n").into_bytes(),
    );
    assert_eq!(
        submit(json!({"emailId": email, "identityId": "altra"}))["notCreated"]["s"]["type"],
        "invalidProperties"
    );
    assert_eq!(
        submit(json!({"emailId": bob_email}))["notCreated"]["s"]["type"],
        "invalidProperties"
    );
    assert_eq!(
        submit(json!({"emailId": lonely}))["notCreated"]["s"]["type"],
        "noRecipients"
    );
    assert_eq!(f.access.submitted.lock().unwrap().len(), 7);
    let r = f.call(
        ALICE,
        &["urn:ietf:params:jmap:core", "urn:ietf:params:jmap:submission"],
        json!([["EmailSubmission/set", {"accountId": account, "destroy": ["x1"], "update": {"x2": {}}}, "c"]]),
    );
    let r = ok(&r[0], "EmailSubmission/set");
    assert_eq!(r["notDestroyed"]["x1"]["type"], "cannotUnsend");
    assert_eq!(r["notUpdated"]["x2"]["type"], "cannotUnsend");
    // Without the submission capability in `using`, the method is unknown.
    let r = f.call(
        ALICE,
        &["urn:ietf:params:jmap:core", "urn:ietf:params:jmap:mail"],
        json!([["EmailSubmission/set", {"accountId": account, "create": {}}, "c"]]),
    );
    assert_eq!(error_type(&r[0]), "unknownMethod");
}

fn drafts_from_email_properties(backend: Backend) {
    let f = fixture(backend, Limits::default());
    let account = f.account(ALICE);
    let drafts = mailbox_with_role(&f, &account, "drafts");
    let pdf = b"%PDF-1.4 verbale".to_vec();
    let up = f.send(
        "POST",
        &format!("/jmap/upload/{account}/"),
        Some(&basic(ALICE, PASSWORD)),
        pdf.clone(),
    );
    let blob = up.json()["blobId"].as_str().unwrap().to_string();
    let r = f.one(
        ALICE,
        "Email/set",
        json!({"accountId": account, "create": {
            "d1": {
                "mailboxIds": {&drafts: true},
                "keywords": {"$draft": true},
                "from": [{"name": "Alice Rossi", "email": ALICE}],
                "to": [{"email": BOB}],
                "subject": "Verbale è pronto",
                "sentAt": "2026-11-30T08:00:00+01:00",
                "bodyValues": {"t": {"value": "In allegato il verbale."}},
                "textBody": [{"partId": "t", "type": "text/plain"}],
                "attachments": [{"blobId": blob, "type": "application/pdf", "name": "verbale.pdf"}],
            },
            "d2": {"mailboxIds": {"archive": true}, "subject": "x"},
            "d3": {"mailboxIds": {&drafts: true}, "to": [{"email": "not an address"}]},
            "d4": {"mailboxIds": {&drafts: true},
                   "attachments": [{"blobId": "b0000000000000000000000000000000000000000000000000000000000000000"}]},
            "d5": {"mailboxIds": {&drafts: true}, "headers": []},
            "d6": {"mailboxIds": {&drafts: true}, "textBody": [{"partId": "missing"}]},
        }}),
    );
    let set = ok(&r, "Email/set");
    assert_ne!(set["oldState"], set["newState"]);
    assert_eq!(set["notCreated"]["d2"]["type"], "forbidden", "{set}");
    assert_eq!(
        set["notCreated"]["d3"]["type"], "invalidProperties",
        "{set}"
    );
    assert_eq!(set["notCreated"]["d4"]["type"], "blobNotFound", "{set}");
    assert_eq!(
        set["notCreated"]["d5"]["type"], "invalidProperties",
        "{set}"
    );
    assert_eq!(
        set["notCreated"]["d6"]["type"], "invalidProperties",
        "{set}"
    );
    let id = set["created"]["d1"]["id"].as_str().unwrap().to_string();

    // The stored bytes, read by mail-parser: the headers and parts asked for.
    let uid: u32 = id.rsplit('_').next().unwrap().parse().unwrap();
    let raw = f.store.fetch(ALICE, "Drafts", uid).unwrap();
    let m = mail_parser::MessageParser::default().parse(&raw).unwrap();
    assert_eq!(m.subject(), Some("Verbale è pronto"));
    let from = m.from().unwrap().first().unwrap();
    assert_eq!(
        (from.name(), from.address()),
        (Some("Alice Rossi"), Some(ALICE))
    );
    assert_eq!(m.to().unwrap().first().unwrap().address(), Some(BOB));
    assert_eq!(m.date().unwrap().to_timestamp(), 1_796_022_000);
    assert!(m.message_id().unwrap().ends_with("@pec.example.it"));
    assert_eq!(m.body_text(0).as_deref(), Some("In allegato il verbale."));
    let att = m.attachment(0).unwrap();
    assert_eq!(
        mail_parser::MimeHeaders::attachment_name(att),
        Some("verbale.pdf")
    );
    assert_eq!(att.contents(), pdf.as_slice());
    let flags = &f.store.messages(ALICE, "Drafts").unwrap()[0].flags;
    assert_eq!(flags, &["\\Draft".to_string()]);

    // And through Email/get, as any client sees it.
    let got = ok(
        &f.one(
            ALICE,
            "Email/get",
            json!({"accountId": account, "ids": [id],
                   "properties": ["subject", "keywords", "attachments", "hasAttachment"]}),
        ),
        "Email/get",
    );
    let e = &got["list"][0];
    assert_eq!(e["keywords"], json!({"$draft": true}));
    assert_eq!(e["hasAttachment"], true);
    assert_eq!(e["attachments"][0]["name"], "verbale.pdf");
    assert_eq!(e["attachments"][0]["type"], "application/pdf");
    assert_eq!(e["attachments"][0]["size"], pdf.len());

    // SearchSnippet/get marks the filter's text in the subject; Email/queryChanges
    // from a state not of ours asks the client to query again.
    let r = f.one(
        ALICE,
        "SearchSnippet/get",
        json!({"accountId": account, "filter": {"operator": "AND", "conditions": [
                   {"text": "VERBALE"}, {"operator": "NOT", "conditions": [{"subject": "pronto"}]}]},
               "emailIds": [id, "e9_9"]}),
    );
    let snippets = ok(&r, "SearchSnippet/get");
    assert_eq!(
        snippets["list"],
        json!([{"emailId": id, "subject": "<mark>Verbale</mark> è pronto", "preview": null}])
    );
    assert_eq!(snippets["notFound"], json!(["e9_9"]));
    let r = f.one(
        ALICE,
        "Email/queryChanges",
        json!({"accountId": account, "sinceQueryState": "x"}),
    );
    assert_eq!(error_type(&r), "cannotCalculateChanges");
}

/// The state of `user`'s emails now (an empty Email/get).
fn email_state(f: &Fixture, user: &str) -> String {
    let r = f.one(
        user,
        "Email/get",
        json!({"accountId": f.account(user), "ids": []}),
    );
    ok(&r, "Email/get")["state"].as_str().unwrap().to_string()
}

/// Email/set moves (`mailboxIds`) and destroys as IMAP MOVE and EXPUNGE do, never in or
/// out of the security archive; Email/changes, Email/queryChanges and the store IMAP
/// reads all see it, and IMAP sessions are told.
fn moves_and_destroys(backend: Backend) {
    let f = fixture(backend, Limits::default());
    let account = f.account(ALICE);
    let store = &f.store;
    store.create_folder(ALICE, "Pratiche").unwrap();
    let mut inbox_ids = Vec::new();
    for (i, subject) in ["uno", "due", "tre"].iter().enumerate() {
        let d = store
            .deliver(
                ALICE,
                "INBOX",
                &message(BOB, ALICE, subject, "x"),
                &[],
                1_800_000_000 + i as i64,
            )
            .unwrap();
        inbox_ids.push(format!("e{}_{}", d.uidvalidity, d.uid));
    }
    store
        .archive(
            ALICE,
            &message(BOB, ALICE, "archiviato", "x"),
            Direction::Received,
            "posta-certificata",
            1_800_000_050,
        )
        .unwrap();
    let inbox = mailbox_with_role(&f, &account, "inbox");
    let pratiche = format!("m{}", store.select(ALICE, "Pratiche").unwrap().uidvalidity);
    let state = email_state(&f, ALICE);
    let in_inbox = json!({"accountId": account, "filter": {"inMailbox": inbox}});
    let q = ok(
        &f.one(ALICE, "Email/query", in_inbox.clone()),
        "Email/query",
    );
    assert_eq!(q["canCalculateChanges"], true);
    assert_eq!(q["ids"], json!([inbox_ids[2], inbox_ids[1], inbox_ids[0]]));
    let inbox_query_state = q["queryState"].as_str().unwrap().to_string();
    let in_pratiche = json!({"accountId": account, "filter": {"inMailbox": pratiche}});
    let pratiche_query_state = ok(
        &f.one(ALICE, "Email/query", in_pratiche.clone()),
        "Email/query",
    )["queryState"]
        .as_str()
        .unwrap()
        .to_string();
    f.changes.lock().unwrap().clear();

    let r = f.one(
        ALICE,
        "Email/set",
        json!({"accountId": account,
        "update": {
            inbox_ids[0].clone(): {"mailboxIds": {pratiche.clone(): true}, "keywords/$seen": true},
            inbox_ids[2].clone(): {format!("mailboxIds/{inbox}"): null,
                                   format!("mailboxIds/{pratiche}"): true},
            inbox_ids[1].clone(): {"mailboxIds": {pratiche.clone(): true, inbox.clone(): true}},
            "s1": {"mailboxIds": {inbox.clone(): true}},
        },
        "destroy": [inbox_ids[1].clone(), "s1", "e999_1"]}),
    );
    let set = ok(&r, "Email/set");
    let moved = set["updated"][&inbox_ids[0]]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let moved_too = set["updated"][&inbox_ids[2]]["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(moved.starts_with(&format!("e{}_", &pratiche[1..])), "{set}");
    assert_eq!(
        set["notUpdated"][&inbox_ids[1]]["type"],
        "invalidProperties"
    );
    assert_eq!(set["notUpdated"]["s1"]["type"], "forbidden");
    assert_eq!(set["destroyed"], json!([inbox_ids[1]]));
    assert_eq!(set["notDestroyed"]["s1"]["type"], "forbidden");
    assert_eq!(set["notDestroyed"]["e999_1"]["type"], "notFound");
    assert_eq!(set["newState"], json!(email_state(&f, ALICE)));

    // What IMAP reads: INBOX is empty, Pratiche holds both (the first one \Seen), the
    // archive is untouched; the IMAP sessions of both folders were told.
    assert!(store.messages(ALICE, "INBOX").unwrap().is_empty());
    let in_folder = store.messages(ALICE, "Pratiche").unwrap();
    assert_eq!(in_folder.len(), 2);
    assert_eq!(in_folder[0].flags, vec!["\\Seen".to_string()]);
    assert_eq!(store.archive_messages(ALICE).unwrap().len(), 1);
    let told = f.changes.lock().unwrap().clone();
    for folder in ["INBOX", "Pratiche"] {
        assert!(
            told.contains(&(ALICE.to_string(), folder.to_string())),
            "{told:?}"
        );
    }

    // Email/changes: the moved emails are new ones in Pratiche, the old ids are gone.
    let c = ok(
        &f.one(
            ALICE,
            "Email/changes",
            json!({"accountId": account, "sinceState": state}),
        ),
        "Email/changes",
    );
    assert_eq!(c["created"], json!([moved, moved_too]));
    let mut destroyed: Vec<String> = serde_json::from_value(c["destroyed"].clone()).unwrap();
    destroyed.sort();
    let mut expected = inbox_ids.clone();
    expected.sort();
    assert_eq!(destroyed, expected);

    // Email/queryChanges: out of INBOX, into Pratiche at their places (newest first).
    let mut since = in_inbox.clone();
    since["sinceQueryState"] = json!(inbox_query_state);
    let qc = ok(
        &f.one(ALICE, "Email/queryChanges", since),
        "Email/queryChanges",
    );
    let mut removed: Vec<String> = serde_json::from_value(qc["removed"].clone()).unwrap();
    removed.sort();
    assert_eq!(removed, expected);
    assert_eq!(qc["added"], json!([]));
    assert_eq!(qc["newQueryState"], json!(email_state(&f, ALICE)));
    let mut since = in_pratiche.clone();
    since["sinceQueryState"] = json!(pratiche_query_state);
    since["calculateTotal"] = json!(true);
    let qc = ok(
        &f.one(ALICE, "Email/queryChanges", since.clone()),
        "Email/queryChanges",
    );
    assert_eq!(
        qc["added"],
        json!([{"id": moved_too, "index": 0}, {"id": moved, "index": 1}])
    );
    assert_eq!(qc["total"], 2);
    since["maxChanges"] = json!(1);
    let r = f.one(ALICE, "Email/queryChanges", since);
    assert_eq!(error_type(&r), "cannotCalculateChanges");

    // A keyword condition: an email whose flags changed may have entered or left.
    let unread = json!({"accountId": account, "filter": {"notKeyword": "$seen"}});
    let q = ok(&f.one(ALICE, "Email/query", unread.clone()), "Email/query");
    assert_eq!(q["ids"], json!(["s1", moved_too]));
    let r = f.one(
        ALICE,
        "Email/set",
        json!({"accountId": account, "update": {moved_too.clone(): {"keywords/$seen": true}}}),
    );
    assert_eq!(
        ok(&r, "Email/set")["updated"],
        json!({moved_too.clone(): null})
    );
    let mut since = unread;
    since["sinceQueryState"] = q["queryState"].clone();
    let qc = ok(
        &f.one(ALICE, "Email/queryChanges", since),
        "Email/queryChanges",
    );
    assert_eq!(qc["removed"], json!([moved_too]));
    assert_eq!(qc["added"], json!([]));

    // Bob cannot move or destroy Alice's emails.
    let r = f.one(
        BOB,
        "Email/set",
        json!({"accountId": f.account(BOB), "destroy": [moved.clone()],
               "update": {moved.clone(): {"mailboxIds": {inbox.clone(): true}}}}),
    );
    let set = ok(&r, "Email/set");
    assert_eq!(set["notDestroyed"][&moved]["type"], "notFound");
    assert_eq!(set["notUpdated"][&moved]["type"], "notFound");
    assert_eq!(store.messages(ALICE, "Pratiche").unwrap().len(), 2);
}

/// The events of one event-source response, read as a client would.
struct Events {
    body: ResponseBody,
    buf: String,
    /// The id of the last event that had one.
    last_id: Option<String>,
}

impl Events {
    /// The next event, `(name, data)`; `None` once the stream ended. Waits at most 20 s.
    fn next(&mut self, rt: &tokio::runtime::Runtime) -> Option<(String, Value)> {
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let event: String = self.buf.drain(..end + 2).collect();
                let field = |name: &str| {
                    event
                        .lines()
                        .find_map(|l| l.strip_prefix(&format!("{name}: ")))
                        .map(str::to_string)
                };
                let data = serde_json::from_str(&field("data").unwrap()).unwrap();
                if let Some(id) = field("id") {
                    self.last_id = Some(id);
                }
                return Some((field("event").unwrap(), data));
            }
            let body = &mut self.body;
            let frame = rt
                .block_on(async {
                    tokio::time::timeout(Duration::from_secs(20), body.frame()).await
                })
                .expect("an event within 20 s");
            match frame {
                None => return None,
                Some(f) => {
                    let data = f.unwrap().into_data().unwrap();
                    self.buf.push_str(std::str::from_utf8(&data).unwrap());
                }
            }
        }
    }
}

impl Fixture {
    /// Opens `user`'s event source with `query`, and `Last-Event-ID` if given.
    fn events(&self, user: &str, query: &str, last: Option<&str>) -> Result<Events, StatusCode> {
        let mut req = Request::builder()
            .uri(format!("/jmap/eventsource?{query}"))
            .header("authorization", basic(user, PASSWORD));
        if let Some(id) = last {
            req = req.header("last-event-id", id);
        }
        let req = req.body(Full::new(Bytes::new())).unwrap();
        let r = self.rt.block_on(self.jmap.answer(req, PEER));
        if r.status() != StatusCode::OK {
            return Err(r.status());
        }
        assert_eq!(r.headers()["content-type"], "text/event-stream");
        Ok(Events {
            body: r.into_body(),
            buf: String::new(),
            last_id: None,
        })
    }
}

/// Push (RFC 8620 §7.3): the states now, then a StateChange naming the types that moved
/// whenever the change hub IMAP IDLE waits on says the account changed; `types`,
/// `closeafter=state`, `Last-Event-ID`, pings, and the bound on streams per user.
fn push_tells_state_changes(backend: Backend) {
    let mut f = fixture(backend, Limits::default());
    f.jmap.push = Push::new(
        f.hub.clone(),
        PushLimits {
            per_user: 3,
            min_ping: 1,
            ..PushLimits::default()
        },
    );
    let account = f.account(ALICE);
    let mut all = f
        .events(ALICE, "types=*&closeafter=no&ping=0", None)
        .unwrap();
    let (name, first) = all.next(&f.rt).unwrap();
    assert_eq!(name, "state");
    assert_eq!(first["@type"], "StateChange");
    let states = first["changed"][&account].as_object().unwrap().clone();
    let mut kinds: Vec<&String> = states.keys().collect();
    kinds.sort();
    assert_eq!(kinds, ["Email", "EmailDelivery", "Mailbox", "Thread"]);
    let before = email_state(&f, ALICE);
    assert_eq!(states["Email"], json!(before));
    assert_eq!(states["Thread"], json!(before));
    let mut mailboxes_only = f
        .events(ALICE, "types=Mailbox&closeafter=no&ping=0", None)
        .unwrap();
    let (_, m) = mailboxes_only.next(&f.rt).unwrap();
    assert_eq!(m["changed"][&account].as_object().unwrap().len(), 1);

    // A delivery, told to the hub as the delivery point tells it.
    let d = f
        .store
        .deliver(
            ALICE,
            "INBOX",
            &message(BOB, ALICE, "nuova", "x"),
            &[],
            1_800_000_000,
        )
        .unwrap();
    f.hub.changed(ALICE, "INBOX");
    let (name, change) = all.next(&f.rt).unwrap();
    assert_eq!(name, "state");
    let changed = change["changed"][&account].as_object().unwrap();
    assert_eq!(changed.len(), 4, "{change}");
    assert_ne!(changed["EmailDelivery"], states["EmailDelivery"]);
    let now = email_state(&f, ALICE);
    assert_eq!(changed["Email"], json!(now));
    let c = ok(
        &f.one(
            ALICE,
            "Email/changes",
            json!({"accountId": account, "sinceState": states["Email"]}),
        ),
        "Email/changes",
    );
    assert_eq!(
        c["created"],
        json!([format!("e{}_{}", d.uidvalidity, d.uid)])
    );
    let (_, m) = mailboxes_only.next(&f.rt).unwrap();
    assert_eq!(
        m["changed"][&account]
            .as_object()
            .unwrap()
            .keys()
            .collect::<Vec<_>>(),
        ["Mailbox"]
    );

    // A keyword set through JMAP is no delivery.
    let id = format!("e{}_{}", d.uidvalidity, d.uid);
    f.one(
        ALICE,
        "Email/set",
        json!({"accountId": account, "update": {id: {"keywords/$flagged": true}}}),
    );
    let (_, change) = all.next(&f.rt).unwrap();
    let mut kinds: Vec<&String> = change["changed"][&account]
        .as_object()
        .unwrap()
        .keys()
        .collect();
    kinds.sort();
    assert_eq!(kinds, ["Email", "Mailbox", "Thread"]);

    // closeafter=state: one event, then the end.
    let mut probe = f
        .events(ALICE, "types=Email&closeafter=state&ping=0", None)
        .unwrap();
    assert!(probe.next(&f.rt).is_some());
    assert!(
        probe.next(&f.rt).is_none(),
        "closeafter=state ends the stream"
    );
    let told = probe.last_id.clone().expect("state events have ids");
    drop(probe);

    // At most 3 streams for Alice: a fourth is refused until one closes.
    let third = f
        .events(ALICE, "types=*&closeafter=no&ping=0", None)
        .unwrap();
    assert_eq!(
        f.events(ALICE, "types=*&closeafter=no&ping=0", None).err(),
        Some(StatusCode::TOO_MANY_REQUESTS)
    );
    assert!(f.events(BOB, "types=*&closeafter=no&ping=0", None).is_ok());
    drop(third);
    drop(mailboxes_only);

    // Long polling from what the client was told: nothing at once, one event at the
    // next change, then the end.
    let mut poll = f
        .events(ALICE, "types=Email&closeafter=state&ping=1", Some(&told))
        .unwrap();
    let (name, ping) = poll.next(&f.rt).unwrap();
    assert_eq!((name.as_str(), &ping), ("ping", &json!({"interval": 1})));
    f.store
        .deliver(
            ALICE,
            "INBOX",
            &message(BOB, ALICE, "altra", "x"),
            &[],
            1_800_000_100,
        )
        .unwrap();
    f.hub.changed(ALICE, "INBOX");
    let (name, change) = loop {
        let e = poll.next(&f.rt).unwrap();
        if e.0 != "ping" {
            break e;
        }
    };
    assert_eq!(name, "state");
    assert_eq!(
        change["changed"][&account]["Email"],
        json!(email_state(&f, ALICE))
    );
    assert!(poll.next(&f.rt).is_none());
    // The same id once more: the change is told at once.
    let mut again = f
        .events(ALICE, "types=Email&closeafter=state&ping=0", Some(&told))
        .unwrap();
    assert_eq!(again.next(&f.rt).unwrap().1, change);
    assert_eq!(
        f.events(ALICE, "closeafter=sometimes", None).err(),
        Some(StatusCode::BAD_REQUEST)
    );
}

backend_tests!(
    mailboxes_emails_and_changes,
    users_never_see_each_other,
    user_folders_through_mailbox_set,
    upload_and_import,
    submission_goes_through_the_access_point,
    drafts_from_email_properties,
    moves_and_destroys,
    push_tells_state_changes
);
