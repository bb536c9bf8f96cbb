//! The administration API of issue 14 over HTTPS, driven by Python's urllib (verifying
//! the lab CA) on both stores: the province's administrator (made with `pecd admin add`)
//! creates enti and an ente's administrator; that administrator creates a mailbox in its
//! domain (201) and not in another ente's (403), nor past its allotment (409) nor with
//! quota 0 (400); a password reset is what IMAP (Python's imaplib) then takes, a suspended
//! mailbox cannot log in and a reactivated one can; every change is in the legal log with
//! who made it; mailbox-days follow the mailboxes' lives on the lab's injected clock, and
//! the usage CSV reads with Python's csv.

use chrono::{Duration, TimeZone, Timelike};
use chrono_tz::Europe::Rome;
use pec_e2e::{Backend, Lab, e2e_tests, run_python, standard};
use pec_gestore::clock::Clock;
use pec_store::LogQuery;

/// One API request (as user `@bearer`: with the password as a bearer token): prints the status, then the body (for CSV, the rows as read by
/// Python's csv module, one JSON object per line).
const CLIENT: &str = r#"
import base64, csv, io, json, ssl, sys, urllib.request, urllib.error
url, ca, method, user, password, body = sys.argv[1:7]
ctx = ssl.create_default_context(cafile=ca)
ctx.check_hostname = False  # the lab certificate names mx.<domain>, not 127.0.0.1
if user == "@bearer":
    headers = {"Authorization": "Bearer " + password}
else:
    headers = {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}
data = None
if body:
    data = body.encode()
    headers["Content-Type"] = "application/json"
req = urllib.request.Request(url, data=data, method=method, headers=headers)
try:
    r = urllib.request.urlopen(req, timeout=60, context=ctx)
    status, ctype, text = r.status, r.headers.get("Content-Type", ""), r.read().decode()
except urllib.error.HTTPError as e:
    status, ctype, text = e.code, e.headers.get("Content-Type", ""), e.read().decode()
print(status)
if ctype.startswith("text/csv"):
    for row in csv.DictReader(io.StringIO(text)):
        print(json.dumps(row, sort_keys=True))
else:
    print(text)
"#;

/// Logs in over IMAPS with imaplib: prints `OK` or `NO`.
const IMAP_LOGIN: &str = r#"
import imaplib, ssl, sys
port, ca, user, password = sys.argv[1:5]
ctx = ssl.create_default_context(cafile=ca)
ctx.check_hostname = False
m = imaplib.IMAP4_SSL("127.0.0.1", int(port), ssl_context=ctx, timeout=60)
try:
    m.login(user, password)
    print("OK")
    m.logout()
except imaplib.IMAP4.error:
    print("NO")
"#;

const PROVINCE: (&str, &str) = ("provincia@pec.beta.test", "provincia-segreta");
const ENTE_ADMIN: (&str, &str) = ("admin@pec.comune.beta.test", "comune-segreta");
const UNO: &str = "uno@pec.comune.beta.test";
const DUE: &str = "due@pec.comune.beta.test";

struct Api<'a> {
    lab: &'a Lab,
}

impl Api<'_> {
    /// The status and body of a request as `who`.
    fn call(&self, who: (&str, &str), method: &str, path: &str, body: &str) -> (u16, String) {
        let url = format!(
            "https://127.0.0.1:{}/api/v1/{path}",
            self.lab.node("beta").https_port
        );
        let ca = self.lab.ca();
        let out = run_python(
            CLIENT,
            &[&url, &ca.to_string_lossy(), method, who.0, who.1, body],
            &[],
            b"",
        )
        .expect("python client");
        let (status, rest) = out.split_once('\n').expect("a status line");
        (status.trim().parse().expect("a status"), rest.to_string())
    }

    fn imap_login(&self, user: &str, password: &str) -> String {
        let port = self.lab.node("beta").imaps_port.to_string();
        let ca = self.lab.ca();
        run_python(
            IMAP_LOGIN,
            &[&port, &ca.to_string_lossy(), user, password],
            &[],
            b"",
        )
        .expect("imaplib")
        .trim()
        .to_string()
    }
}

/// The value of `key` in a JSON body.
fn field(body: &str, key: &str) -> serde_json::Value {
    let v: serde_json::Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"));
    v[key].clone()
}

async fn ente_admins_are_confined_and_usage_follows_the_clock(backend: Backend) {
    let lab = Lab::start_on(backend, standard(), &[]).await;
    let api = Api { lab: &lab };
    // Noon in Italy, so each step below falls inside a known calendar day.
    let now = lab.clock.now().with_timezone(&Rome);
    let noon = Rome
        .from_local_datetime(
            &(now.date_naive() + Duration::days(1))
                .and_hms_opt(12, 0, 0)
                .unwrap(),
        )
        .unwrap();
    lab.advance(noon.signed_duration_since(now));
    let d0 = noon.date_naive();
    assert_eq!(lab.clock.now().with_timezone(&Rome).hour(), 12);

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

    // The province: two enti, an administrator of one.
    // The lab's ufficio.protocollo has its quota already: 10 MiB more for the ente.
    let protocollo = "ufficio.protocollo@pec.comune.beta.test";
    let taken = lab.node("beta").store.account(protocollo).unwrap().quota;
    let allotment = taken + (10 << 20);
    let (s, b) = api.call(
        PROVINCE,
        "POST",
        "enti",
        &format!(
            r#"{{"name": "comune-beta", "domains": ["pec.comune.beta.test"], "allotment": {allotment}}}"#
        ),
    );
    assert_eq!(s, 201, "{b}");
    assert_eq!(field(&b, "allotment"), allotment);
    let (s, b) = api.call(
        PROVINCE,
        "POST",
        "enti",
        r#"{"name": "beta-spa", "domains": ["pec.beta.test"], "allotment": "1GiB"}"#,
    );
    assert_eq!(s, 201, "{b}");
    let body = format!(
        r#"{{"login": "{}", "password": "{}"}}"#,
        ENTE_ADMIN.0, ENTE_ADMIN.1
    );
    let (s, b) = api.call(PROVINCE, "POST", "enti/comune-beta/admins", &body);
    assert_eq!(s, 201, "{b}");

    // The ente's administrator: its own domain yes, another ente's no.
    let new = |a: &str, quota: &str| {
        format!(r#"{{"address": "{a}", "password": "prima-password", "quota": "{quota}"}}"#)
    };
    let (s, b) = api.call(ENTE_ADMIN, "POST", "mailboxes", &new(UNO, "4MiB"));
    assert_eq!(s, 201, "{b}");
    assert_eq!(field(&b, "quota"), 4 << 20);
    let (s, b) = api.call(
        ENTE_ADMIN,
        "POST",
        "mailboxes",
        &new("intruso@pec.beta.test", "1MiB"),
    );
    assert_eq!((s, field(&b, "code")), (403, "other-ente".into()), "{b}");
    assert!(
        field(&b, "message")
            .as_str()
            .unwrap()
            .contains("non appartiene")
    );
    assert!(
        lab.node("beta")
            .store
            .find_account("intruso@pec.beta.test")
            .unwrap()
            .is_none()
    );
    let (s, b) = api.call(
        ENTE_ADMIN,
        "PUT",
        "mailboxes/anna.bianchi@pec.beta.test/password",
        r#"{"password": "presa-di-controllo"}"#,
    );
    assert_eq!(s, 403, "{b}");
    let (s, b) = api.call(
        ENTE_ADMIN,
        "POST",
        "enti",
        r#"{"name": "x", "domains": [], "allotment": 1}"#,
    );
    assert_eq!(s, 403, "{b}");
    let (s, b) = api.call(
        ENTE_ADMIN,
        "GET",
        "usage?ente=beta-spa&from=2026-01-01&to=2026-01-31",
        "",
    );
    assert_eq!(s, 403, "{b}");
    // Quotas: within the allotment (10 MiB, 4 taken), never 0, never ambiguous.
    let (s, b) = api.call(ENTE_ADMIN, "POST", "mailboxes", &new(DUE, "7MiB"));
    assert_eq!(
        (s, field(&b, "code")),
        (409, "allotment-exceeded".into()),
        "{b}"
    );
    let (s, b) = api.call(ENTE_ADMIN, "POST", "mailboxes", &new(DUE, "0"));
    assert_eq!((s, field(&b, "code")), (400, "quota-zero".into()), "{b}");
    let (s, b) = api.call(ENTE_ADMIN, "POST", "mailboxes", &new(DUE, "3M"));
    assert_eq!((s, field(&b, "code")), (400, "bad-size".into()), "{b}");
    let (s, b) = api.call(ENTE_ADMIN, "GET", "mailboxes", "");
    assert_eq!(s, 200, "{b}");
    let listed: Vec<serde_json::Value> = serde_json::from_str(&b).unwrap();
    assert_eq!(listed.len(), 2, "the ente's own mailboxes only: {b}");

    lab.advance(Duration::days(2));
    let (s, b) = api.call(ENTE_ADMIN, "POST", "mailboxes", &new(DUE, "6MiB"));
    assert_eq!(s, 201, "{b}");
    let (s, b) = api.call(
        ENTE_ADMIN,
        "PUT",
        &format!("mailboxes/{DUE}/quota"),
        r#"{"quota": "7MiB"}"#,
    );
    assert_eq!(s, 409, "{b}");

    // The security archive's options: the ente admin sets its own mailbox's, not another
    // ente's; what is not given stays.
    let (s, b) = api.call(
        ENTE_ADMIN,
        "PUT",
        &format!("mailboxes/{UNO}/archive"),
        r#"{"scope": "pec", "sent": false, "quota": "1GiB"}"#,
    );
    assert_eq!(s, 200, "{b}");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&b).expect("json"),
        serde_json::json!({"scope": "pec", "sent": false, "received": true, "quota": 1u64 << 30})
    );
    let (s, b) = api.call(ENTE_ADMIN, "GET", &format!("mailboxes/{UNO}/archive"), "");
    assert_eq!((s, field(&b, "scope")), (200, "pec".into()), "{b}");
    let (s, b) = api.call(
        ENTE_ADMIN,
        "PUT",
        "mailboxes/anna.bianchi@pec.beta.test/archive",
        r#"{"scope": "pec"}"#,
    );
    assert_eq!(s, 403, "{b}");
    let (s, b) = api.call(
        ENTE_ADMIN,
        "PUT",
        &format!("mailboxes/{UNO}/archive"),
        r#"{"scope": "niente"}"#,
    );
    assert_eq!((s, field(&b, "code")), (400, "bad-scope".into()), "{b}");

    // Password reset: IMAP takes the new one, not the old.
    let (s, b) = api.call(
        ENTE_ADMIN,
        "PUT",
        &format!("mailboxes/{UNO}/password"),
        r#"{"password": "nuova-password"}"#,
    );
    assert_eq!(s, 204, "{b}");
    assert_eq!(api.imap_login(UNO, "nuova-password"), "OK");

    lab.advance(Duration::days(1));
    let (s, b) = api.call(ENTE_ADMIN, "POST", &format!("mailboxes/{UNO}/suspend"), "");
    assert_eq!(s, 204, "{b}");
    assert_eq!(api.imap_login(UNO, "nuova-password"), "NO", "suspended");
    lab.advance(Duration::days(2));
    let (s, b) = api.call(
        ENTE_ADMIN,
        "POST",
        &format!("mailboxes/{UNO}/reactivate"),
        "",
    );
    assert_eq!(s, 204, "{b}");
    assert_eq!(api.imap_login(UNO, "nuova-password"), "OK", "reactivated");
    lab.advance(Duration::days(1));
    let (s, b) = api.call(ENTE_ADMIN, "DELETE", &format!("mailboxes/{DUE}"), "");
    assert_eq!(s, 204, "{b}");
    lab.advance(Duration::days(2));

    // Mailbox-days: uno d0..d0+3 and d0+5..d0+8 (today), due d0+2..d0+6, and
    // ufficio.protocollo, there before mailbox events were recorded, d0..d0+8.
    let day = |n: i64| (d0 + Duration::days(n)).to_string();
    let path = format!("usage?ente=comune-beta&from={}&to={}", day(0), day(9));
    let (s, b) = api.call(ENTE_ADMIN, "GET", &path, "");
    assert_eq!(s, 200, "{b}");
    let report: serde_json::Value = serde_json::from_str(&b).unwrap();
    assert_eq!(report["enti"][0]["mailbox_days"], 8 + 5 + 9, "{b}");
    assert_eq!(report["enti"][0]["mailboxes"], 3, "{b}");
    let uno = report["mailboxes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["mailbox"] == UNO)
        .unwrap();
    assert_eq!(uno["mailbox_days"], 8, "{b}");
    let (s, b) = api.call(
        PROVINCE,
        "GET",
        &format!("usage?from={}&to={}&format=csv", day(1), day(4)),
        "",
    );
    assert_eq!(s, 200, "{b}");
    let rows: Vec<serde_json::Value> = b
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let days_of = |ente: &str, casella: &str| {
        rows.iter()
            .find(|r| r["ente"] == ente && r["casella"] == casella)
            .map(|r| {
                r["giorni_casella"]
                    .as_str()
                    .unwrap()
                    .parse::<u64>()
                    .unwrap()
            })
    };
    assert_eq!(days_of("comune-beta", UNO), Some(3), "{b}");
    assert_eq!(days_of("comune-beta", DUE), Some(3), "{b}");
    assert_eq!(days_of("comune-beta", protocollo), Some(4), "{b}");
    assert_eq!(
        days_of("comune-beta", ""),
        Some(10),
        "the ente's total: {b}"
    );
    // The lab's mailboxes of beta-spa existed before events were recorded: every day.
    assert_eq!(
        days_of("beta-spa", "anna.bianchi@pec.beta.test"),
        Some(4),
        "{b}"
    );

    // Every change is in the legal log with who made it.
    let log = lab
        .node("beta")
        .store
        .search_log(&LogQuery {
            address: Some(UNO.into()),
            ..LogQuery::default()
        })
        .unwrap();
    let admin: Vec<_> = log
        .iter()
        .filter(|r| r.entry.event == "amministrazione")
        .map(|r| (r.entry.sender.as_str(), r.entry.detail.as_str()))
        .collect();
    assert_eq!(admin.len(), 5, "{admin:?}");
    assert!(
        admin.iter().any(|(_, what)| what.starts_with(
            "archivio di sicurezza: conserva solo PEC, inviati no, ricevuti sì, quota 1 GiB"
        )),
        "{admin:?}"
    );
    assert!(
        admin.iter().all(|(who, _)| *who == ENTE_ADMIN.0),
        "{admin:?}"
    );
    assert!(admin[0].1.starts_with("casella creata"), "{admin:?}");
    let verify = lab.pecd("beta", &["log", "verify"]);
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stdout)
    );

    // An API token of the ente's administrator: made with the password, shown once,
    // confined like its administrator, unable to make tokens, dead once revoked.
    let (s, b) = api.call(ENTE_ADMIN, "POST", "tokens", r#"{"name": "protocollo"}"#);
    assert_eq!(s, 201, "{b}");
    let token = field(&b, "token").as_str().unwrap().to_string();
    assert!(token.starts_with("pecd_") && token.len() == 69, "{token}");
    let bearer = ("@bearer", token.as_str());
    let (s, b) = api.call(bearer, "GET", "mailboxes", "");
    assert_eq!(s, 200, "{b}");
    let listed: Vec<serde_json::Value> = serde_json::from_str(&b).unwrap();
    assert!(!listed.is_empty(), "{b}");
    assert!(
        listed.iter().all(|m| m["address"]
            .as_str()
            .unwrap()
            .ends_with("@pec.comune.beta.test")),
        "{b}"
    );
    let (s, b) = api.call(
        bearer,
        "POST",
        "mailboxes",
        &new("intruso@pec.beta.test", "1MiB"),
    );
    assert_eq!((s, field(&b, "code")), (403, "other-ente".into()), "{b}");
    let (s, b) = api.call(bearer, "POST", "tokens", r#"{"name": "figlio"}"#);
    assert_eq!(
        (s, field(&b, "code")),
        (403, "token-not-allowed".into()),
        "{b}"
    );
    let (s, b) = api.call(ENTE_ADMIN, "GET", "tokens", "");
    assert_eq!(s, 200, "{b}");
    let tokens: Vec<serde_json::Value> = serde_json::from_str(&b).unwrap();
    assert_eq!(tokens.len(), 1, "{b}");
    assert_eq!(tokens[0]["name"], "protocollo");
    assert!(!b.contains(&token), "never shown again: {b}");
    let stored = lab.node("beta").store.list_tokens(None).unwrap();
    assert_eq!(stored.len(), 1);
    assert_ne!(stored[0].hash, token, "only its hash is kept");
    let (s, b) = api.call(ENTE_ADMIN, "DELETE", "tokens/protocollo", "");
    assert_eq!(s, 204, "{b}");
    let (s, b) = api.call(ENTE_ADMIN, "DELETE", "tokens/protocollo", "");
    assert_eq!((s, field(&b, "code")), (404, "no-such-token".into()), "{b}");

    // Wrong credentials last (they earn the client a penalty): a revoked token, then a
    // wrong password.
    let (s, b) = api.call(bearer, "GET", "mailboxes", "");
    assert_eq!((s, field(&b, "code")), (401, "unauthorized".into()), "{b}");
    let (s, b) = api.call((ENTE_ADMIN.0, "sbagliata"), "GET", "mailboxes", "");
    assert_eq!((s, field(&b, "code")), (401, "unauthorized".into()), "{b}");
    lab.shutdown().await;
}

e2e_tests!(ente_admins_are_confined_and_usage_follows_the_clock);
