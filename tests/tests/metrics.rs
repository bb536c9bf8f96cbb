//! The operator's endpoints of the `[listen] http` listener: a PEC message goes from alfa
//! to beta, then `/metrics` of both gestori is scraped with Python's urllib and the
//! counters are found moved; Prometheus's own `promtool check metrics` judges the format.
//! `/healthz` and `/readyz` answer 200; the HTTPS listener (mail clients) serves none of
//! them.

use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use pec_e2e::{Backend, Lab, run_python, standard, submit, wait_for_kind};

const MARIO: &str = "mario.rossi@pec.alfa.test";
const ANNA: &str = "anna.bianchi@pec.beta.test";

/// Fetches a URL; prints the status, a blank line, then the body.
const GET: &str = r#"
import ssl, sys, urllib.request, urllib.error
ctx = ssl.create_default_context(cafile=sys.argv[2]) if len(sys.argv) > 2 else None
if ctx:
    ctx.check_hostname = False
try:
    r = urllib.request.urlopen(sys.argv[1], timeout=20, context=ctx)
    status, body = r.status, r.read()
except urllib.error.HTTPError as e:
    status, body = e.code, e.read()
sys.stdout.write("%d\n\n%s" % (status, body.decode()))
"#;

/// Logs in to IMAPS with imaplib and logs out.
const IMAP_LOGIN: &str = r#"
import imaplib, ssl, sys
ctx = ssl.create_default_context(cafile=sys.argv[2])
ctx.check_hostname = False
m = imaplib.IMAP4_SSL("127.0.0.1", int(sys.argv[1]), ssl_context=ctx)
m.login(sys.argv[3], sys.argv[4])
m.select("INBOX")
m.logout()
"#;

/// The status and body of `url`.
fn get(url: &str, ca: Option<&str>) -> (u16, String) {
    let mut args = vec![url];
    args.extend(ca);
    let out = run_python(GET, &args, &[], b"").expect("python urllib");
    let (status, body) = out.split_once("\n\n").expect("status, then body");
    (status.parse().expect("a status"), body.to_string())
}

/// Every sample of a scrape, by series (`name{labels}`), summed over nothing: one line
/// each.
fn samples(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            Some((series.to_string(), value.parse().ok()?))
        })
        .collect()
}

fn value(samples: &BTreeMap<String, f64>, series: &str) -> f64 {
    samples.get(series).copied().unwrap_or(0.0)
}

/// The sum of the samples of the series whose name starts with `prefix`.
fn sum(samples: &BTreeMap<String, f64>, prefix: &str) -> f64 {
    samples
        .iter()
        .filter(|(s, _)| s.starts_with(prefix))
        .map(|(_, v)| v)
        .sum()
}

fn scrape(port: u16) -> (String, BTreeMap<String, f64>) {
    let (status, text) = get(&format!("http://127.0.0.1:{port}/metrics"), None);
    assert_eq!(status, 200, "{text}");
    let parsed = samples(&text);
    (text, parsed)
}

/// Runs `promtool check metrics` on `text`; `None` when promtool is not installed.
fn promtool(text: &str) -> Option<std::process::Output> {
    let mut child = match Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(c) => c,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => panic!("promtool: {e}"),
    };
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write to promtool");
    Some(child.wait_with_output().expect("promtool"))
}

/// Scrapes `port` until `done` holds for the samples (the scrape-time gauges and the
/// counters of work finishing on its own), or a generous deadline passes.
async fn scrape_until(
    port: u16,
    done: impl Fn(&BTreeMap<String, f64>) -> bool,
) -> (String, BTreeMap<String, f64>) {
    let start = Instant::now();
    loop {
        let (text, s) = scrape(port);
        if done(&s) || start.elapsed() > Duration::from_secs(90) {
            return (text, s);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn a_pec_message_moves_the_counters(backend: Backend) {
    let lab = Lab::start_on(backend, standard(), &[]).await;
    let (alfa, beta) = (lab.node("alfa"), lab.node("beta"));
    let ca = lab.ca();
    let ca = ca.to_str().expect("utf-8 path");

    let (_, before) = scrape(alfa.http_port);
    assert_eq!(value(&before, "pecd_listeners_up"), 1.0);
    assert_eq!(value(&before, "pecd_store_up"), 1.0);
    assert_eq!(sum(&before, "pecd_submissions_total"), 0.0);

    let message = format!(
        "From: <{MARIO}>\r\nTo: <{ANNA}>\r\nSubject: Metriche\r\nMessage-ID: <metriche@client.test>\r\n\r\nProva.\r\n"
    );
    submit(alfa.submission_port, &lab.ca(), MARIO, &[ANNA], &message).expect("submitted");
    let inbox = wait_for_kind(alfa.store.as_ref(), MARIO, "avvenuta-consegna", 1).await;
    assert_eq!(
        pec_e2e::of_kind(&inbox, "avvenuta-consegna").len(),
        1,
        "delivered"
    );
    // Recipients in SMTP that the header does not name: refused by the formal checks.
    let refused = submit(
        alfa.submission_port,
        &lab.ca(),
        MARIO,
        &[ANNA, "luca.verdi@pec.beta.test"],
        &message,
    );
    assert!(refused.is_err(), "refused");
    run_python(
        IMAP_LOGIN,
        &[
            &alfa.imaps_port.to_string(),
            ca,
            MARIO,
            "secret-mario.rossi",
        ],
        &[],
        b"",
    )
    .expect("IMAP login");

    // The IMAP session's end is seen by the server after the client has gone.
    let (text, after) = scrape_until(alfa.http_port, |s| {
        value(s, "pecd_sessions_open{service=\"imaps\"}") == 0.0
            && value(s, "pecd_sessions_total{service=\"imaps\"}") >= 1.0
    })
    .await;
    let accepted = "pecd_submissions_total{outcome=\"accepted\",reason=\"none\"}";
    assert_eq!(value(&after, accepted), 1.0, "{text}");
    let refused = "pecd_submissions_total{outcome=\"refused\",reason=\"formal\"}";
    assert_eq!(value(&after, refused), 1.0, "{text}");
    assert_eq!(
        value(&after, "pecd_events_total{event=\"non-accettazione\"}"),
        1.0,
        "{text}"
    );
    assert_eq!(
        value(&after, "pecd_events_total{event=\"accettazione\"}"),
        1.0,
        "{text}"
    );
    assert!(
        value(
            &after,
            "pecd_events_total{event=\"ricezione avvenuta-consegna\"}"
        ) >= 1.0,
        "{text}"
    );
    // The receipt of acceptance and the transport envelope at least.
    assert!(value(&after, "pecd_signatures_total") >= 2.0, "{text}");
    assert!(
        value(&after, "pecd_sessions_total{service=\"submissions\"}") >= 1.0,
        "{text}"
    );
    assert!(
        value(&after, "pecd_sessions_total{service=\"imaps\"}") >= 1.0,
        "{text}"
    );
    assert_eq!(
        value(&after, "pecd_sessions_open{service=\"imaps\"}"),
        0.0,
        "{text}"
    );
    assert!(
        value(
            &after,
            "pecd_store_operation_duration_seconds_count{method=\"commit_batch\"}"
        ) >= 1.0,
        "{text}"
    );
    assert_eq!(
        value(&after, "pecd_signature_verification_failures_total"),
        0.0
    );
    // The lab PKI is valid for 3650 days from now.
    for certificate in ["signing", "tls"] {
        let days = value(
            &after,
            &format!("pecd_certificate_expiry_seconds{{certificate=\"{certificate}\"}}"),
        ) / 86_400.0;
        assert!((3640.0..=3650.0).contains(&days), "{certificate}: {days}");
    }
    assert!(
        after.contains_key("pecd_provider_index_age_seconds"),
        "{text}"
    );
    assert!(after.contains_key("pecd_queue_entries"), "{text}");

    // beta: the envelope taken in charge and delivered, its receipts signed.
    let (btext, b) = scrape_until(beta.http_port, |s| {
        value(s, "pecd_events_total{event=\"consegna\"}") >= 1.0
    })
    .await;
    assert_eq!(
        value(&b, "pecd_events_total{event=\"presa-in-carico\"}"),
        1.0,
        "{btext}"
    );
    assert_eq!(
        value(&b, "pecd_events_total{event=\"consegna\"}"),
        1.0,
        "{btext}"
    );
    assert!(value(&b, "pecd_signatures_total") >= 2.0, "{btext}");
    assert_eq!(sum(&b, "pecd_submissions_total"), 0.0, "{btext}");
    assert_eq!(
        value(&b, "pecd_signature_verification_failures_total"),
        0.0,
        "{btext}"
    );

    // The envelope beta delivered, altered after signing and sent to beta again: its
    // signature no longer verifies (beta refuses it as ordinary mail).
    let envelope = pec_e2e::wait_for_kind(beta.store.as_ref(), ANNA, "posta-certificata", 1)
        .await
        .into_iter()
        .find(|m| String::from_utf8_lossy(m).contains("Prova."))
        .expect("the envelope");
    let tampered = String::from_utf8_lossy(&envelope).replacen("Prova.", "Prove.", 1);
    let _refused = pec_e2e::send_to_mx(
        beta.mx_port,
        "posta-certificata@pec.alfa.test",
        &[ANNA],
        tampered.as_bytes(),
    );
    let (btext, b) = scrape_until(beta.http_port, |s| {
        value(s, "pecd_signature_verification_failures_total") >= 1.0
    })
    .await;
    assert_eq!(
        value(&b, "pecd_signature_verification_failures_total"),
        1.0,
        "{btext}"
    );

    match promtool(&text) {
        None => println!("SKIPPED promtool check: promtool is not installed (Debian: prometheus)"),
        Some(out) => assert!(
            out.status.success(),
            "promtool check metrics refuses the scrape:\n{}{}\n{text}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    }

    for path in ["/healthz", "/readyz"] {
        let (status, body) = get(&format!("http://127.0.0.1:{}{path}", alfa.http_port), None);
        assert_eq!(status, 200, "{path}: {body}");
    }
    // Mail clients' HTTPS listener does not show the operator's endpoints.
    for path in ["/metrics", "/healthz", "/readyz"] {
        let url = format!("https://127.0.0.1:{}{path}", alfa.https_port);
        assert_eq!(get(&url, Some(ca)).0, 404, "{path}");
    }
    lab.shutdown().await;
}

pec_e2e::e2e_tests!(a_pec_message_moves_the_counters);
