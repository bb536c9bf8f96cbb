//! The administrator's proofs and controls after real traffic: the legal log's head
//! time-stamped by an RFC 3161 authority (the daily job and `pecd log timestamp`), the
//! tokens verified by `openssl ts -verify` against the head hash; `pecd report` counting
//! what happened; `pecd queue` listing, showing, holding, retrying and dropping an entry
//! that cannot be relayed — the drop recorded in the legal log and the sender still
//! told by the 12 h / 24 h notices. A clean stop delivers what the last sessions handed
//! off, rather than leaving it to its lease.
//!
//! The authority is `openssl ts -reply` behind a small HTTP endpoint of the test.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use pec_e2e::{Backend, Lab, free_port, standard, submit, wait_for_kind};
use pec_gestore::clock::Clock;

const MARIO: &str = "mario.rossi@pec.alfa.test";
const ANNA: &str = "anna.bianchi@pec.beta.test";
const LUCA: &str = "luca.verdi@pec.beta.test";
const GAMMA: &str = "utente@pec.gamma.test";
const DEADLINE: Duration = Duration::from_secs(120);

fn openssl(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the openssl command-line tool")
}

fn openssl_ok(dir: &Path, args: &[&str]) {
    let out = openssl(dir, args);
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A time-stamping authority made with the openssl CLI in `dir`: its CA is `ca.pem`.
/// Returns the URL it answers on.
fn start_tsa(dir: &Path) -> String {
    std::fs::create_dir_all(dir).unwrap();
    openssl_ok(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-subj",
            "/CN=Test TSA CA",
            "-days",
            "30",
        ],
    );
    openssl_ok(
        dir,
        &[
            "req",
            "-new",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "tsa.key",
            "-out",
            "tsa.csr",
            "-subj",
            "/CN=Test TSA",
        ],
    );
    std::fs::write(
        dir.join("ext.cnf"),
        "[tsa_ext]\nextendedKeyUsage = critical,timeStamping\nbasicConstraints = CA:FALSE\n",
    )
    .unwrap();
    openssl_ok(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "tsa.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "tsa.pem",
            "-days",
            "30",
            "-extfile",
            "ext.cnf",
            "-extensions",
            "tsa_ext",
        ],
    );
    std::fs::write(
        dir.join("tsa.cnf"),
        format!(
            "[tsa]\ndefault_tsa = tsa_config1\n[tsa_config1]\ndir = {}\n\
             serial = $dir/tsaserial\ncrypto_device = builtin\nsigner_cert = $dir/tsa.pem\n\
             certs = $dir/ca.pem\nsigner_key = $dir/tsa.key\nsigner_digest = sha256\n\
             default_policy = 1.2.3.4.1\nother_policies = 1.2.3.4.5\ndigests = sha256\n\
             accuracy = secs:1\nordering = no\ntsa_name = no\ness_cert_id_chain = no\n\
             ess_cert_id_alg = sha256\n",
            dir.display()
        ),
    )
    .unwrap();
    std::fs::write(dir.join("tsaserial"), "01\n").unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let dir = dir.to_path_buf();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            answer(&dir, stream);
        }
    });
    format!("http://127.0.0.1:{port}/tsa")
}

/// Answers one HTTP request: the body is the query, `openssl ts -reply` the answer.
fn answer(dir: &Path, stream: std::net::TcpStream) {
    let mut reader = BufReader::new(stream);
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().unwrap_or(0);
        }
    }
    let mut query = vec![0; length.min(1 << 20)];
    if reader.read_exact(&mut query).is_err() {
        return;
    }
    std::fs::write(dir.join("query.tsq"), &query).unwrap();
    let out = openssl(
        dir,
        &[
            "ts",
            "-reply",
            "-config",
            "tsa.cnf",
            "-queryfile",
            "query.tsq",
            "-out",
            "reply.tsr",
        ],
    );
    let (status, body) = if out.status.success() {
        ("200 OK", std::fs::read(dir.join("reply.tsr")).unwrap())
    } else {
        ("500 Internal Server Error", out.stderr)
    };
    let mut stream = reader.into_inner();
    let _ = write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: application/timestamp-reply\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(&body);
}

fn stdout_ok(out: &std::process::Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Polls `f` until it gives `Some`, for at most [`DEADLINE`].
async fn poll<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(start.elapsed() < DEADLINE, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn msg(to: &str, subject: &str) -> String {
    format!("From: {MARIO}\r\nTo: {to}\r\nSubject: {subject}\r\n\r\nx\r\n")
}

async fn log_is_time_stamped_and_openssl_verifies(backend: Backend) {
    let tmp = tempfile::tempdir().unwrap();
    let tsa = start_tsa(&tmp.path().join("tsa"));
    let mut specs = standard();
    specs[0].extra = format!("[log]\ntsa_url = \"{tsa}\"\n");
    let lab = Lab::start_on(backend, specs, &[]).await;
    let alfa = lab.node("alfa");
    submit(
        alfa.submission_port,
        &lab.ca(),
        MARIO,
        &[ANNA],
        &msg(ANNA, "marca"),
    )
    .unwrap();
    wait_for_kind(alfa.store.as_ref(), MARIO, "avvenuta-consegna", 1).await;

    // The daily job: an empty log was put off for five minutes; now there is a head.
    lab.advance(chrono::Duration::minutes(10));
    let daily = poll("the daily time stamp", || {
        alfa.store.list_log_timestamps().unwrap().into_iter().next()
    })
    .await;
    assert_eq!(daily.tsa_url, tsa);

    let out = stdout_ok(&lab.pecd("alfa", &["log", "timestamp"]));
    let head = alfa.store.log_head().unwrap();
    assert!(out.contains(&head.hash), "{out}");
    let export = tmp.path().join("stamps");
    let out = stdout_ok(&lab.pecd(
        "alfa",
        &["log", "timestamps", "--export", export.to_str().unwrap()],
    ));
    let stamps = alfa.store.list_log_timestamps().unwrap();
    assert_eq!(stamps.len(), 2, "{out}");
    assert_eq!(stamps[1].head_hash, head.hash);
    let ca = tmp.path().join("tsa/ca.pem");
    for s in &stamps {
        assert!(
            out.contains(&format!("seq={}\t{}", s.seq, s.head_hash)),
            "{out}"
        );
        let digest = std::fs::read_to_string(export.join(format!("{}.sha256", s.id))).unwrap();
        let tsr: PathBuf = export.join(format!("{}.tsr", s.id));
        let verify = |digest: &str| {
            openssl(
                tmp.path(),
                &[
                    "ts",
                    "-verify",
                    "-digest",
                    digest,
                    "-in",
                    tsr.to_str().unwrap(),
                    "-CAfile",
                    ca.to_str().unwrap(),
                ],
            )
        };
        let ok = verify(&digest);
        assert!(
            ok.status.success() && String::from_utf8_lossy(&ok.stdout).contains("Verification: OK"),
            "{}",
            String::from_utf8_lossy(&ok.stderr)
        );
        // The judge is not lenient: another digest fails.
        assert!(!verify(&"ab".repeat(32)).status.success());
    }
    lab.shutdown().await;
}

async fn report_counts_what_happened(backend: Backend) {
    // A time-stamping authority that never answers: mail must flow all the same.
    let mut specs = standard();
    specs[0].extra = format!(
        "[log]\ntsa_url = \"http://127.0.0.1:{}/tsa\"\n",
        free_port()
    );
    let lab = Lab::start_on(backend, specs, &[]).await;
    let alfa = lab.node("alfa");
    submit(
        alfa.submission_port,
        &lab.ca(),
        MARIO,
        &[ANNA],
        &msg(ANNA, "conta"),
    )
    .unwrap();
    let hidden = format!(
        "From: {MARIO}\r\nTo: {ANNA}\r\nBcc: luca.verdi@pec.beta.test\r\nSubject: no\r\n\r\nx\r\n"
    );
    assert!(submit(alfa.submission_port, &lab.ca(), MARIO, &[ANNA], &hidden).is_err());
    wait_for_kind(alfa.store.as_ref(), MARIO, "avvenuta-consegna", 1).await;
    wait_for_kind(alfa.store.as_ref(), MARIO, "non-accettazione", 1).await;
    // The presa in carico goes to alfa's service mailbox, not to Mario.
    poll("the presa in carico at alfa", || {
        let events = alfa.store.count_log_events(0, i64::MAX).unwrap();
        events
            .iter()
            .any(|(e, _)| e == "ricezione presa-in-carico")
            .then_some(())
    })
    .await;

    assert!(alfa.store.list_log_timestamps().unwrap().is_empty());
    let today = lab.clock.now().date_naive();
    let from = (today - chrono::Days::new(1)).to_string();
    let to = (today + chrono::Days::new(1)).to_string();
    let args = ["report", "--from", &from, "--to", &to, "--json"];
    let a: serde_json::Value = serde_json::from_str(&stdout_ok(&lab.pecd("alfa", &args))).unwrap();
    assert_eq!(a["accepted"], 1, "{a}");
    assert_eq!(a["refused"], 1, "{a}");
    assert_eq!(a["received"]["presa-in-carico"], 1, "{a}");
    assert_eq!(a["received"]["avvenuta-consegna"], 1, "{a}");
    assert_eq!(a["issued"]["non-accettazione"], 1, "{a}");
    assert_eq!(a["viruses"], 0, "{a}");
    // The running gestore recorded its first minute up.
    assert!(a["availability"].is_object(), "{a}");
    let b: serde_json::Value = serde_json::from_str(&stdout_ok(&lab.pecd("beta", &args))).unwrap();
    assert_eq!(b["accepted"], 0, "{b}");
    assert_eq!(b["prese_in_carico"], 1, "{b}");
    assert_eq!(b["issued"]["consegna"], 1, "{b}");
    let text = stdout_ok(&lab.pecd("alfa", &args[..5]));
    assert!(
        text.contains("accepted: 1\n") && text.contains("refused (non accettazione): 1\n"),
        "{text}"
    );
    lab.shutdown().await;
}

async fn queue_entries_are_shown_held_retried_and_dropped_with_evidence(backend: Backend) {
    // gamma is a PEC gestore of the index whose MX does not answer.
    let dead = free_port();
    let lab = Lab::start_with_routes_on(
        backend,
        standard(),
        &[("gamma", &["pec.gamma.test"])],
        &[("pec.gamma.test", dead)],
    )
    .await;
    let alfa = lab.node("alfa");
    submit(
        alfa.submission_port,
        &lab.ca(),
        MARIO,
        &[GAMMA],
        &msg(GAMMA, "in coda"),
    )
    .unwrap();
    let entry = poll("a failed first attempt", || {
        alfa.store
            .list_queue()
            .unwrap()
            .into_iter()
            .find(|e| e.domain == "pec.gamma.test" && e.attempts >= 1)
    })
    .await;
    let id = entry.id.to_string();

    let list = stdout_ok(&lab.pecd("alfa", &["queue", "list"]));
    assert!(list.contains(&format!("{id}\tpec.gamma.test\t")), "{list}");
    let show = stdout_ok(&lab.pecd("alfa", &["queue", "show", &id]));
    assert!(
        show.contains("Subject: POSTA CERTIFICATA: in coda"),
        "{show}"
    );
    assert!(
        show.contains("last error: ") && !show.contains("last error: none"),
        "{show}"
    );

    let held = stdout_ok(&lab.pecd("alfa", &["queue", "hold", &id]));
    assert!(held.contains("HELD"), "{held}");
    assert!(alfa.store.list_queue().unwrap()[0].held);
    let retried = stdout_ok(&lab.pecd("alfa", &["queue", "retry", &id]));
    assert!(!retried.contains("HELD"), "{retried}");
    // Released and due: the workers try again.
    lab.advance(chrono::Duration::minutes(5));
    poll("another attempt", || {
        let q = alfa.store.list_queue().unwrap();
        q.iter()
            .any(|e| e.id == entry.id && e.attempts > entry.attempts)
            .then_some(())
    })
    .await;

    let refused = lab.pecd("alfa", &["queue", "drop", &id, "--reason", " "]);
    assert!(!refused.status.success());
    let dropped = stdout_ok(&lab.pecd(
        "alfa",
        &["queue", "drop", &id, "--reason", "MX di gamma dismesso"],
    ));
    assert!(dropped.starts_with(&format!("dropped {id}")), "{dropped}");
    assert!(
        alfa.store
            .list_queue()
            .unwrap()
            .iter()
            .all(|e| e.id != entry.id)
    );
    assert!(!lab.pecd("alfa", &["queue", "show", &id]).status.success());
    let log = stdout_ok(&lab.pecd("alfa", &["log", "export", "--format", "jsonl"]));
    let record = log
        .lines()
        .find(|l| l.contains("rimozione-coda"))
        .unwrap_or_else(|| panic!("no drop record in {log}"));
    assert!(
        record.contains("MX di gamma dismesso") && record.contains(GAMMA),
        "{record}"
    );
    assert!(stdout_ok(&lab.pecd("alfa", &["log", "verify"])).starts_with("log intact"));

    // No obligation lost: the sender still gets both timeout notices.
    lab.advance(chrono::Duration::hours(25));
    let inbox = wait_for_kind(alfa.store.as_ref(), MARIO, "preavviso-errore-consegna", 2).await;
    assert_eq!(
        pec_e2e::of_kind(&inbox, "preavviso-errore-consegna").len(),
        2
    );
    lab.shutdown().await;
}

/// Sends a message to `rcpt` from `user` over implicit TLS up to the end of its data,
/// then waits for a line on standard input before the final dot; prints the reply.
const HELD_DATA: &str = r#"
import smtplib, ssl, sys
port, ca, user, password, rcpt = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
ctx = ssl.create_default_context(cafile=ca)
ctx.check_hostname = False
s = smtplib.SMTP_SSL("127.0.0.1", port, context=ctx, timeout=30)
s.login(user, password)
s.mail(user)
s.rcpt(rcpt)
code, _ = s.docmd("DATA")
assert code == 354, code
s.send(("From: %s\r\nTo: %s\r\nSubject: fermata\r\n\r\ntesto\r\n" % (user, rcpt)).encode())
print("READY", flush=True)
sys.stdin.readline()
s.send(b".\r\n")
code, _ = s.getreply()
print(code, flush=True)
s.close()
"#;

async fn a_clean_stop_delivers_what_its_last_sessions_handed_off(backend: Backend) {
    use std::process::Stdio;
    let mut lab = Lab::start_on(backend, standard(), &[]).await;
    let beta = lab.node("beta");
    let (port, store) = (beta.submission_port, beta.store.clone());
    let mut client = Command::new("python3")
        .args(["-c", HELD_DATA, &port.to_string()])
        .arg(lab.ca())
        .args([ANNA, "secret-anna.bianchi", LUCA])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3");
    let mut out = BufReader::new(client.stdout.take().unwrap());
    let mut stdin = client.stdin.take().unwrap();
    let line = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        (out, line)
    });
    let (mut out, ready) = line.await.unwrap();
    assert_eq!(ready.trim(), "READY");
    // The message is completed while the gestore stops: its session is in its grace
    // period, the queue worker already told to stop.
    let finish = async move {
        poll("the listener to close", || {
            std::net::TcpStream::connect(("127.0.0.1", port))
                .is_err()
                .then_some(())
        })
        .await;
        tokio::task::spawn_blocking(move || {
            stdin.write_all(b"\n").unwrap();
            let mut reply = String::new();
            out.read_line(&mut reply).unwrap();
            reply
        })
        .await
        .unwrap()
    };
    let ((), reply) = tokio::join!(lab.stop("beta"), finish);
    assert_eq!(reply.trim(), "250", "accepted during the grace period");
    assert!(client.wait().unwrap().success());
    // Delivered before the stop ended, with its receipts: nothing waits for the lease
    // (the lab's clock has not moved).
    let kinds = |address: &str| -> Vec<String> {
        pec_e2e::mailbox(store.as_ref(), address, "INBOX")
            .iter()
            .map(|m| pec_proto::classify::classify(m).kind.as_str().to_string())
            .collect()
    };
    assert_eq!(kinds(LUCA), ["posta-certificata"]);
    assert_eq!(kinds(ANNA), ["accettazione", "avvenuta-consegna"]);
    assert!(store.list_queue().unwrap().is_empty(), "entry completed");
    lab.shutdown().await;
}

pec_e2e::e2e_tests!(
    a_clean_stop_delivers_what_its_last_sessions_handed_off,
    log_is_time_stamped_and_openssl_verifies,
    report_counts_what_happened,
    queue_entries_are_shown_held_retried_and_dropped_with_evidence,
);
