//! On the wire like a real gestore: a submission without `Date:` or `Message-ID:` is
//! completed before the access point takes it (RFC 6409 §8.3, judged by Python's `email`
//! on the `postacert.eml` a recipient gets); every SMTP hop leaves its `Received:` line
//! and the final delivery its `Return-Path:` and `Delivered-To:`, and the messages as the
//! users fetch them over IMAP, trace fields included, still verify with `openssl smime`.

use std::path::Path;

use pec_e2e::{Backend, Lab, openssl_verifies, run_python, standard, submit, wait_for};
use pec_proto::classify::classify;
use pec_proto::mime::{find_field, split_header};

const MARIO: &str = "mario.rossi@pec.alfa.test";
const ANNA: &str = "anna.bianchi@pec.beta.test";

/// Fetches every message of INBOX over IMAPS as `user` (BODY.PEEK[]), writes them to
/// `<dir>/<n>.eml` and prints how many.
const FETCH_ALL: &str = r#"
import imaplib, os, ssl, sys
port, ca, user, password, out = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
ctx = ssl.create_default_context(cafile=ca)
ctx.check_hostname = False
M = imaplib.IMAP4_SSL("127.0.0.1", port, ssl_context=ctx)
M.login(user, password)
M.select("INBOX", readonly=True)
typ, data = M.search(None, "ALL")
n = 0
for num in data[0].split():
    typ, parts = M.fetch(num, "(BODY.PEEK[])")
    with open(os.path.join(out, num.decode() + ".eml"), "wb") as f:
        f.write(parts[0][1])
    n += 1
M.logout()
print(n)
"#;

/// The messages of `user`'s INBOX as an IMAP client gets them.
fn fetched(port: u16, ca: &Path, user: &str) -> Vec<Vec<u8>> {
    let dir = tempfile::tempdir().expect("temp dir");
    let local = user.split('@').next().unwrap_or(user);
    let out = run_python(
        FETCH_ALL,
        &[
            &port.to_string(),
            &ca.display().to_string(),
            user,
            &format!("secret-{local}"),
            &dir.path().display().to_string(),
        ],
        &[],
        b"",
    )
    .expect("imaplib fetch");
    let n: usize = out.trim().parse().expect("a count");
    (1..=n)
        .map(|i| std::fs::read(dir.path().join(format!("{i}.eml"))).expect("fetched message"))
        .collect()
}

/// The header fields of `message` before the first one named `stop`: the trace fields
/// the gestori put in front of what they received.
fn names_before(message: &[u8], stop: &str) -> Vec<String> {
    split_header(message)
        .0
        .iter()
        .take_while(|f| !f.name.eq_ignore_ascii_case(stop))
        .map(|f| f.name.to_string())
        .collect()
}

fn field(message: &[u8], name: &str) -> String {
    let (fields, _) = split_header(message);
    let f = find_field(&fields, name).unwrap_or_else(|| panic!("no {name}"));
    String::from_utf8_lossy(f.bytes).into_owned()
}

/// Reads the `postacert.eml` of an envelope with Python's `email` and prints its `Date:`
/// (as parsed into a date-time), its `Message-ID:` and the envelope's
/// `X-Riferimento-Message-ID:`, one `key<TAB>value` line each.
const POSTACERT_DATE: &str = r#"
import email, email.policy, email.utils, sys
env = email.message_from_bytes(sys.stdin.buffer.read(), policy=email.policy.default)
inner = [p for p in env.walk()
         if p.get_content_type() == "message/rfc822" and p.get_filename() == "postacert.eml"]
assert len(inner) == 1, "one postacert.eml"
original = inner[0].get_payload(0)
print("date\t" + email.utils.parsedate_to_datetime(original["Date"]).isoformat())
print("message-id\t" + str(original["Message-ID"]))
print("x-riferimento\t" + str(original["X-Riferimento-Message-ID"]))
print("envelope-riferimento\t" + str(env["X-Riferimento-Message-ID"]))
"#;

async fn submission_completed_and_traced_end_to_end(backend: Backend) {
    let lab = Lab::start_on(backend, standard(), &[]).await;
    let (alfa, beta) = (lab.node("alfa"), lab.node("beta"));
    // No Date, no Message-ID: as at least one PEC client in the wild sends.
    let msg = format!("From: {MARIO}\r\nTo: {ANNA}\r\nSubject: Senza data\r\n\r\nTesto.\r\n");
    submit(alfa.submission_port, &lab.ca(), MARIO, &[ANNA], &msg).expect("submitted");
    wait_for(alfa.store.as_ref(), MARIO, 2).await;
    wait_for(beta.store.as_ref(), ANNA, 1).await;

    // Anna's envelope as her client fetches it: delivery and MX trace in front, then the
    // envelope with the submission's Received copied from the original.
    let anna = fetched(beta.imaps_port, &lab.ca(), ANNA);
    assert_eq!(anna.len(), 1);
    let envelope = &anna[0];
    assert_eq!(
        names_before(envelope, "X-Trasporto"),
        ["Return-Path", "Delivered-To", "Received", "Received", "To"],
        "{}",
        String::from_utf8_lossy(&envelope[..envelope.len().min(1500)])
    );
    assert_eq!(
        field(envelope, "Return-Path"),
        format!("Return-Path: <{MARIO}>\r\n")
    );
    assert_eq!(
        field(envelope, "Delivered-To"),
        format!("Delivered-To: {ANNA}\r\n")
    );
    let mx_hop = field(envelope, "Received");
    assert!(
        mx_hop.starts_with(
            "Received: from mx.pec.alfa.test ([127.0.0.1])\r\n\t(using TLSv1.3 with cipher TLS_"
        ),
        "{mx_hop}"
    );
    assert!(
        mx_hop.contains(
            "by mx.pec.beta.test (pecd) with ESMTPS\r\n\tfor <anna.bianchi@pec.beta.test>; "
        ),
        "{mx_hop}"
    );
    let text = String::from_utf8_lossy(envelope);
    assert!(
        text.contains(
            "\tby mx.pec.alfa.test (pecd) with ESMTPSA\r\n\tfor <anna.bianchi@pec.beta.test>; "
        ),
        "the submission hop, copied from the original: {text}"
    );
    openssl_verifies(&lab.ca(), envelope).expect("the envelope verifies with its trace fields");
    assert_eq!(classify(envelope).kind.as_str(), "posta-certificata");

    // postacert.eml: completed with a Date and a Message-ID the envelope refers to.
    let out = run_python(POSTACERT_DATE, &[], &[], envelope).expect("Python reads postacert.eml");
    let facts: std::collections::HashMap<&str, &str> =
        out.lines().filter_map(|l| l.split_once('\t')).collect();
    let date = chrono::DateTime::parse_from_rfc3339(facts["date"]).expect("a date-time");
    let lag = (chrono::Utc::now() - date.with_timezone(&chrono::Utc)).num_seconds();
    assert!(
        (-5..3600).contains(&lag),
        "Date is the submission time: {date}"
    );
    // The Message-ID the access point added is the one postacert.eml and the envelope
    // refer to; postacert.eml itself carries the PEC msgid, as for any original.
    let id = facts["x-riferimento"];
    assert!(
        id.starts_with("<opec") && id.ends_with("@pec.alfa.test>"),
        "{id}"
    );
    assert_eq!(facts["envelope-riferimento"], id);
    let pec_msgid = classify(envelope)
        .daticert
        .expect("daticert")
        .identificativo;
    assert_eq!(facts["message-id"], format!("<{pec_msgid}>"));

    // Mario's receipts: the accettazione filed at once, the consegna over beta's relay.
    let mario = fetched(alfa.imaps_port, &lab.ca(), MARIO);
    assert_eq!(mario.len(), 2);
    for m in &mario {
        openssl_verifies(&lab.ca(), m).expect("a receipt verifies with its trace fields");
        let d = classify(m).daticert.expect("daticert");
        assert_eq!(
            d.msgid.as_deref(),
            Some(id),
            "the receipt names the added id"
        );
        assert_eq!(
            field(m, "Delivered-To"),
            format!("Delivered-To: {MARIO}\r\n")
        );
        match classify(m).kind.as_str() {
            "accettazione" => {
                assert_eq!(
                    names_before(m, "X-Ricevuta"),
                    ["Return-Path", "Delivered-To"]
                );
                assert_eq!(
                    field(m, "Return-Path"),
                    "Return-Path: <posta-certificata@pec.alfa.test>\r\n"
                );
            }
            "avvenuta-consegna" => {
                assert_eq!(
                    names_before(m, "X-Ricevuta"),
                    ["Return-Path", "Delivered-To", "Received"]
                );
                assert_eq!(
                    field(m, "Return-Path"),
                    "Return-Path: <posta-certificata@pec.beta.test>\r\n"
                );
                assert!(
                    field(m, "Received").contains("by mx.pec.alfa.test (pecd) with ESMTPS"),
                    "{}",
                    field(m, "Received")
                );
            }
            other => panic!("unexpected {other}"),
        }
    }

    // The legal log says what the access point added.
    let log = alfa.store.search_log(&Default::default()).unwrap();
    let accepted = log
        .iter()
        .find(|r| r.entry.event == "accettazione")
        .expect("accettazione record");
    assert_eq!(
        accepted.entry.detail,
        "campi aggiunti dal punto di accesso (RFC 6409 §8.3): Date, Message-ID"
    );
    assert_eq!(accepted.entry.original_msgid, id);
    lab.shutdown().await;
}

/// The README's example: a province adds a municipality's domain to its running gestore.
const COMUNE: &str = "pec.comune.esempio.bs.it";
const PROTOCOLLO: &str = "protocollo@pec.comune.esempio.bs.it";

fn ok(out: &std::process::Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

async fn a_domain_added_to_a_running_gestore_is_certified_at_once(backend: Backend) {
    let lab = Lab::start_on(backend, standard(), &[]).await;
    let alfa = lab.node("alfa");
    ok(&lab.pecd("alfa", &["domain", "add", COMUNE, "--quota", "2GiB"]));
    ok(&lab.pecd_with_input(
        "alfa",
        &[
            "mailbox",
            "add",
            PROTOCOLLO,
            "--password-stdin",
            "--quota",
            "3GiB",
        ],
        b"una-password-lunga\n",
    ));
    let msg = format!(
        "From: {MARIO}\r\nTo: {PROTOCOLLO}\r\nSubject: Delibera\r\n\
         Message-ID: <delibera@client.test>\r\n\r\nIn allegato.\r\n"
    );
    submit(alfa.submission_port, &lab.ca(), MARIO, &[PROTOCOLLO], &msg).expect("submitted");
    let inbox = wait_for(alfa.store.as_ref(), MARIO, 2).await;

    let raw = inbox
        .iter()
        .find(|m| classify(m).kind.as_str() == "accettazione")
        .expect("accettazione");
    let d = classify(raw).daticert.expect("daticert");
    assert_eq!(d.destinatari.len(), 1);
    assert_eq!(d.destinatari[0].indirizzo, PROTOCOLLO);
    assert_eq!(d.destinatari[0].tipo.as_str(), "certificato");
    let text = String::from_utf8_lossy(raw);
    assert!(
        text.contains("protocollo@pec.comune.esempio.bs.it (\"posta certificata\")"),
        "{text}"
    );
    assert!(!text.contains("posta ordinaria"), "{text}");
    // Certified, so the delivery is certified too, and the timers run for it.
    assert!(
        inbox
            .iter()
            .any(|m| classify(m).kind.as_str() == "avvenuta-consegna"),
        "a ricevuta di avvenuta consegna"
    );
    assert_eq!(alfa.store.timers(&d.identificativo).unwrap().len(), 1);

    // The published index record lists it for the other gestori.
    let p7m = lab.dir.path().join("alfa.ldif.p7m");
    let out = ok(&lab.pecd(
        "alfa",
        &["certs", "publish", "--out", &p7m.display().to_string()],
    ));
    assert!(
        out.contains(&format!("managedDomains added: {COMUNE}")),
        "{out}"
    );
    lab.shutdown().await;
}

pec_e2e::e2e_tests!(
    submission_completed_and_traced_end_to_end,
    a_domain_added_to_a_running_gestore_is_certified_at_once
);
