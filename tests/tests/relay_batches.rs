//! The transport queue sends the entries for one gestore in pipelined batches over its
//! relay sessions; a session cut in the middle of a batch loses nothing and delivers
//! nothing twice (the receiving gestore recognises a transaction it took but could not
//! confirm).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use pec_e2e::{Lab, mailbox, of_kind, run_python, standard};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const MARIO: &str = "mario.rossi@pec.alfa.test";
const ANNA: &str = "anna.bianchi@pec.beta.test";
const MESSAGES: usize = 24;

/// Lines of filler in each message: ≈ 16 KB, so that an envelope is 18–30 KB (base64 or
/// not, with its signature).
const FILLER_LINES: usize = 200;

/// Client bytes after which the proxy cuts a session: past the TLS handshake and one
/// envelope, short of two.
const CUT_AFTER: usize = 36_000;

/// A TCP proxy in front of beta's MX. Until `target` is set it closes every connection at
/// once (a failed relay attempt); then it passes bytes both ways, and cuts the first
/// connection on which the client has sent more than [`CUT_AFTER`] bytes, right after
/// passing them on. The session is under TLS, so the proxy counts bytes: each message is
/// big enough that the first transaction of a session stays under the mark and the
/// second (pipelined) one crosses it. The server may take that transaction; its reply
/// never arrives.
struct Cutter {
    port: u16,
    target: Arc<OnceLock<SocketAddr>>,
    cuts: Arc<AtomicUsize>,
    connections: Arc<AtomicUsize>,
}

async fn cutter() -> Cutter {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let target = Arc::new(OnceLock::<SocketAddr>::new());
    let (cuts, connections) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let (t, c, n) = (target.clone(), cuts.clone(), connections.clone());
    tokio::spawn(async move {
        loop {
            let Ok((inbound, _)) = listener.accept().await else {
                return;
            };
            let Some(&to) = t.get() else {
                continue;
            };
            n.fetch_add(1, Ordering::SeqCst);
            let cuts = c.clone();
            tokio::spawn(async move {
                let Ok(outbound) = TcpStream::connect(to).await else {
                    return;
                };
                let (mut from_client, mut to_client) = inbound.into_split();
                let (mut from_server, mut to_server) = outbound.into_split();
                let down = tokio::spawn(async move {
                    let _ = tokio::io::copy(&mut from_server, &mut to_client).await;
                });
                let (mut buf, mut sent) = (vec![0; 65536], 0);
                loop {
                    let n = match from_client.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => n,
                    };
                    if to_server.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                    sent += n;
                    if sent > CUT_AFTER
                        && cuts
                            .compare_exchange(0, 1, Ordering::SeqCst, Ordering::SeqCst)
                            .is_ok()
                    {
                        break;
                    }
                }
                down.abort();
            });
        }
    });
    Cutter {
        port,
        target,
        cuts,
        connections,
    }
}

/// Sends `MESSAGES` messages from Mario to Anna in one authenticated session.
fn submit_all(port: u16, ca: &std::path::Path) {
    let script = r#"
import smtplib, ssl, sys
port, ca, n, filler = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
ctx = ssl.create_default_context(cafile=ca)
ctx.check_hostname = False
s = smtplib.SMTP_SSL("127.0.0.1", port, context=ctx, timeout=60)
s.login("mario.rossi@pec.alfa.test", "secret-mario.rossi")
for i in range(n):
    msg = ("From: Mario Rossi <mario.rossi@pec.alfa.test>\r\n"
           "To: anna.bianchi@pec.beta.test\r\n"
           f"Subject: Lotto {i}\r\nMessage-ID: <lotto-{i}@client.test>\r\n\r\nPratica {i}.\r\n"
           + ("x" * 76 + "\r\n") * filler)
    s.sendmail("mario.rossi@pec.alfa.test", ["anna.bianchi@pec.beta.test"], msg.encode())
s.quit()
"#;
    run_python(
        script,
        &[
            &port.to_string(),
            &ca.display().to_string(),
            &MESSAGES.to_string(),
            &FILLER_LINES.to_string(),
        ],
        &[],
        b"",
    )
    .expect("submitted");
}

/// The subjects of the messages of `kind` in `who`'s INBOX.
fn subjects(store: &dyn pec_store::Store, who: &str, kind: &str) -> Vec<String> {
    let mut s: Vec<String> = of_kind(&mailbox(store, who, "INBOX"), kind)
        .into_iter()
        .map(|c| c.headers.subject.unwrap_or_default())
        .collect();
    s.sort();
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_cut_mid_batch_loses_nothing_and_doubles_nothing() {
    let cut = cutter().await;
    let lab = Lab::start_with_routes(standard(), &[], &[("pec.beta.test", cut.port)]).await;
    let (alfa, beta) = (lab.node("alfa"), lab.node("beta"));
    submit_all(alfa.submission_port, &lab.ca());

    // Every envelope waits for a retry: beta was unreachable.
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let queue = alfa.store.list_queue().unwrap();
        if queue.len() == MESSAGES && queue.iter().all(|e| e.attempts >= 1) {
            break;
        }
        assert!(Instant::now() < deadline, "queue: {queue:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(cut.connections.load(Ordering::SeqCst), 0);

    // Beta reachable: all of them are due at once, so they go in batches; one session is
    // cut in its second transaction. Retries follow as the clock moves on.
    cut.target
        .set(SocketAddr::from(([127, 0, 0, 1], beta.mx_port)))
        .unwrap();
    let want: Vec<String> = {
        let mut w: Vec<String> = (0..MESSAGES).map(|i| format!("Lotto {i}")).collect();
        w.sort();
        w
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let consegne = of_kind(
            &mailbox(alfa.store.as_ref(), MARIO, "INBOX"),
            "avvenuta-consegna",
        )
        .len();
        let queues_empty = alfa.store.list_queue().unwrap().is_empty()
            && beta.store.list_queue().unwrap().is_empty();
        if consegne >= MESSAGES && queues_empty {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{consegne} delivery receipts so far"
        );
        // Past any backoff (the lab's longest is 600 s); far from the 12 h timers.
        lab.advance(chrono::Duration::seconds(120));
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        cut.cuts.load(Ordering::SeqCst),
        1,
        "a session was cut mid-batch"
    );
    assert!(
        cut.connections.load(Ordering::SeqCst) < MESSAGES,
        "entries shared sessions"
    );

    // Each message reached Anna once, and Mario has one delivery receipt for each.
    let envelopes = subjects(beta.store.as_ref(), ANNA, "posta-certificata");
    let envelopes: Vec<String> = envelopes
        .into_iter()
        .map(|s| s.trim_start_matches("POSTA CERTIFICATA: ").to_string())
        .collect();
    assert_eq!(envelopes, want);
    let receipts: Vec<String> = subjects(alfa.store.as_ref(), MARIO, "avvenuta-consegna")
        .into_iter()
        .map(|s| s.trim_start_matches("CONSEGNA: ").to_string())
        .collect();
    assert_eq!(receipts, want);
    lab.shutdown().await;
}
