//! Errors are never outcomes: a store that fails (or cannot say) at any call site of the
//! three points — access point, incoming point, delivery point, queue and timer
//! workers, SMTP RCPT — makes the client see a temporary error or the work be retried;
//! no notice is issued because of it, and once the store recovers the message is
//! handled normally, once. The store is a real one wrapped in
//! [`pec_store::faulty::Faulty`]; the table of call sites and the tests covering them is
//! in docs/DESIGN.md ("Failure semantics").
//!
//! Beta (`pec.beta.test`, `pec.comune.beta.test`) is the gestore under test; alfa signs
//! what reaches beta from another gestore; gamma is in the provider index with no route.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use chrono::{TimeZone, Utc};
use pec_gestore::access::{Limits, Outcome, Submission, submit};
use pec_gestore::antivirus::{ScanError, Scanner, Verdict};
use pec_gestore::clock::{Clock, ManualClock};
use pec_gestore::handlers::{MxHandler, SubmissionHandler};
use pec_gestore::handoff::HANDOFF_LEASE;
use pec_gestore::identity::Identity;
use pec_gestore::routing::Router;
use pec_gestore::service::{Gestore, Settings};
use pec_gestore::workers::Relays;
use pec_proto::build::{Notice, Transaction};
use pec_proto::classify::classify;
use pec_proto::daticert::{Daticert, TipoRicevuta};
use pec_proto::index::ProviderIndex;
use pec_proto::labpki::{self, GestoreSpec, LabPki};
use pec_proto::smime::{Digest, OpensslSigner, TrustAnchors};
use pec_smtp::{ClientTls, Envelope, Handler, Mode, Relay, Reply, SessionInfo};
use pec_store::faulty::{Fault, Faulty};
use pec_store::{
    Batch, Blobs, Directory, Ledger, LogQuery, Mailboxes, NewAccount, NewQueueEntry,
    Outcome as TimerOutcome, SqliteStore,
};

const MARIO: &str = "mario.rossi@pec.alfa.test";
const ANNA: &str = "anna.bianchi@pec.beta.test";
const LUCA: &str = "luca.verdi@pec.beta.test";
const PROTOCOLLO: &str = "ufficio.protocollo@pec.comune.beta.test";
const GAMMA: &str = "x@pec.gamma.test";

/// The lab PKI of alfa, beta and gamma, made once for the whole file.
fn pki() -> &'static LabPki {
    static PKI: OnceLock<LabPki> = OnceLock::new();
    PKI.get_or_init(|| {
        let spec = |id: &str, name: &str, domains: &[&str]| GestoreSpec {
            id: id.into(),
            provider_name: name.into(),
            domains: domains.iter().map(|d| d.to_string()).collect(),
        };
        labpki::generate(
            &[
                spec("alfa", "Alfa PEC (lab)", &["pec.alfa.test"]),
                spec(
                    "beta",
                    "Beta PEC (lab)",
                    &["pec.beta.test", "pec.comune.beta.test"],
                ),
                spec("gamma", "Gamma PEC (lab)", &["pec.gamma.test"]),
            ],
            Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap(),
            3650,
        )
        .unwrap()
    })
}

/// Lab gestore `i` (0 alfa, 1 beta, 2 gamma).
fn identity(i: usize) -> Identity {
    let (pki, g) = (pki(), &pki().gestori[i]);
    let signer = OpensslSigner::from_pem(
        g.sign_cert_pem.as_bytes(),
        g.sign_key_pem.as_bytes(),
        Digest::Sha256,
    )
    .unwrap();
    Identity::new(
        g.spec.provider_name.clone(),
        Arc::new(signer),
        ProviderIndex::parse_ldif(pki.index_ldif.as_bytes()).unwrap(),
        Some(TrustAnchors::from_pem(pki.ca_cert_pem.as_bytes()).unwrap()),
    )
}

/// An antivirus that is down while its switch is on.
#[derive(Clone, Default)]
struct Antivirus(Arc<AtomicBool>);

impl Scanner for Antivirus {
    async fn scan(&self, _bytes: &[u8]) -> Result<Verdict, ScanError> {
        if self.0.load(Ordering::SeqCst) {
            Err(ScanError::Unavailable("clamd down (test)".into()))
        } else {
            Ok(Verdict::Clean)
        }
    }
}

/// Beta over a store that fails on demand.
struct Beta {
    _dir: tempfile::TempDir,
    store: Arc<Faulty<SqliteStore>>,
    g: Arc<Gestore<Antivirus>>,
    clock: Arc<ManualClock>,
    antivirus: Antivirus,
    relays: Relays,
}

fn beta() -> Beta {
    beta_accepting(&[])
}

/// Beta, with `ordinary` the addresses that take ordinary mail as anomalies.
fn beta_accepting(ordinary: &[&str]) -> Beta {
    let settings = Settings {
        accept_ordinary: ordinary.iter().map(|a| a.to_string()).collect(),
        ..Settings::default()
    };
    beta_with(settings, Router::static_only(BTreeMap::new()))
}

/// Beta with these settings and routes to other gestori.
fn beta_with(settings: Settings, router: Router) -> Beta {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Faulty::new(SqliteStore::open(dir.path()).unwrap()));
    for d in ["pec.beta.test", "pec.comune.beta.test"] {
        store.add_domain(d, 10_000_000).unwrap();
    }
    for a in [ANNA, LUCA, PROTOCOLLO] {
        store
            .create_account(&NewAccount {
                address: a.into(),
                password_hash: "unused".into(),
                quota: None,
                receipts_folder: false,
            })
            .unwrap();
    }
    let clock = Arc::new(ManualClock::new(
        Utc.with_ymd_and_hms(2025, 3, 10, 9, 30, 15).unwrap(),
    ));
    let antivirus = Antivirus::default();
    let g = Arc::new(Gestore {
        id: identity(1),
        store: store.clone(),
        clock: clock.clone(),
        scanner: antivirus.clone(),
        settings,
        router,
        queued: tokio::sync::Notify::new(),
        flow: Default::default(),
        handoff: Default::default(),
        on_delivery: None,
        metrics: Arc::new(pec_gestore::metrics::Metrics::new()),
    });
    let relay = Relay {
        helo_name: "mx.pec.beta.test".into(),
        tls: ClientTls::None,
        timeout: Duration::from_secs(1),
        pool: pec_smtp::Pool::default(),
    };
    Beta {
        _dir: dir,
        store,
        g,
        clock,
        antivirus,
        relays: Relays {
            pec: relay.clone(),
            ordinary: relay,
        },
    }
}

/// A plain message from `from` to `to`.
fn message(from: &str, to: &[&str], subject: &str) -> Vec<u8> {
    format!(
        "From: {from}\r\nTo: {}\r\nSubject: {subject}\r\nMessage-ID: <{}@client.test>\r\n\r\nTesto\r\n",
        to.join(", "),
        subject.replace(' ', "-")
    )
    .into_bytes()
}

fn strings(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| s.to_string()).collect()
}

impl Beta {
    /// The transport envelope alfa signs for Mario's message to `to`.
    fn envelope_from_alfa(&self, to: &[&str], subject: &str) -> Vec<u8> {
        let raw = message(MARIO, to, subject);
        let rcpt = strings(to);
        let sub = Submission {
            raw: &raw,
            mail_from: MARIO,
            rcpt_to: &rcpt,
            authenticated: MARIO,
            hosted: &[],
            virus: None,
        };
        match submit(&identity(0), &sub, &Limits::default(), self.clock.now()).unwrap() {
            Outcome::Accepted(a) => a.envelope.bytes,
            Outcome::Refused(r) => panic!("not accepted: {}", r.reason),
        }
    }

    /// The MX receiving `raw` for `rcpt` from alfa.
    async fn receive(&self, rcpt: &[&str], raw: &[u8]) -> Reply {
        self.g.receive(MARIO, &strings(rcpt), raw).await
    }

    /// Anna submitting a message to `to` through the submission handler.
    async fn submit(&self, to: &[&str], subject: &str) -> Reply {
        let session = SessionInfo {
            peer: "127.0.0.1:40000".parse().unwrap(),
            tls: true,
            tls_parameters: None,
            authenticated: Some(ANNA.into()),
            helo: "client.test".into(),
            esmtp: true,
            mode: Mode::Submission { implicit_tls: true },
        };
        let envelope = Envelope {
            mail_from: ANNA.into(),
            rcpt_to: strings(to),
        };
        let handler = SubmissionHandler {
            gestore: self.g.clone(),
            auth: Arc::new(pec_net::Authenticator::new(pec_net::AuthLimits::default())),
        };
        handler
            .data(&session, envelope, message(ANNA, to, subject))
            .await
    }

    /// The kinds of the messages in the outbound queue.
    fn queued(&self) -> Vec<String> {
        let s = self.store.inner();
        s.list_queue()
            .unwrap()
            .iter()
            .map(|q| {
                classify(&s.read_blob(&q.hash).unwrap())
                    .kind
                    .as_str()
                    .to_string()
            })
            .collect()
    }

    /// The daticert of the envelope Anna's submission queued for `domain`.
    fn queued_envelope(&self, domain: &str) -> Daticert {
        let s = self.store.inner();
        let q = s
            .list_queue()
            .unwrap()
            .into_iter()
            .find(|q| q.domain == domain)
            .expect("queued envelope");
        classify(&s.read_blob(&q.hash).unwrap()).daticert.unwrap()
    }

    /// The legal log's events, in order.
    fn events(&self) -> Vec<String> {
        self.store
            .inner()
            .search_log(&LogQuery::default())
            .unwrap()
            .into_iter()
            .map(|r| r.entry.event)
            .collect()
    }

    /// How many log records have `event`.
    fn count(&self, event: &str) -> usize {
        self.events().iter().filter(|e| *e == event).count()
    }

    /// The kinds of the messages in `who`'s INBOX.
    fn inbox(&self, who: &str) -> Vec<String> {
        let s = self.store.inner();
        s.messages(who, "INBOX")
            .unwrap()
            .iter()
            .map(|m| {
                classify(&s.fetch(who, "INBOX", m.uid).unwrap())
                    .kind
                    .as_str()
                    .to_string()
            })
            .collect()
    }

    /// Nothing stored, queued or logged since the set-up.
    fn assert_untouched(&self) {
        assert!(self.queued().is_empty(), "queued: {:?}", self.queued());
        assert!(self.events().is_empty(), "logged: {:?}", self.events());
        for who in [ANNA, LUCA, PROTOCOLLO] {
            assert!(self.inbox(who).is_empty(), "{who}: {:?}", self.inbox(who));
        }
    }

    /// One pass of the queue worker.
    async fn run_queue(&self) -> usize {
        self.g.run_queue_once(&self.relays).await
    }

    /// Loses what the access point handed to the queue worker, as a restart would, and
    /// lets those entries' lease run out: the queue alone delivers them now.
    fn lose_hand_off(&self) {
        assert!(!self.g.handoff.take().is_empty(), "nothing was handed off");
        self.advance(HANDOFF_LEASE);
    }

    fn advance(&self, secs: i64) {
        self.clock.advance(chrono::Duration::seconds(secs));
    }
}

fn assert_temporary(reply: &Reply, what: &str) {
    assert!(reply.is_transient(), "{what}: {reply:?}");
}

// --- Incoming and delivery point: a transport envelope ---

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn envelope_store_faults_are_temporary_and_heal() {
    for method in ["effects_done", "account", "commit_batch"] {
        let b = beta();
        let envelope = b.envelope_from_alfa(&[ANNA], "Fattura");
        b.store.fail(method, Fault::Nth(1));
        let reply = b.receive(&[ANNA], &envelope).await;
        assert_temporary(&reply, method);
        // Above all no avviso di mancata consegna (no-dest) for a mailbox that exists.
        b.assert_untouched();

        b.store.heal();
        let reply = b.receive(&[ANNA], &envelope).await;
        assert!(reply.is_positive(), "{method}: {reply:?}");
        assert_eq!(b.inbox(ANNA), ["posta-certificata"], "{method}");
        assert_eq!(
            b.queued(),
            ["presa-in-carico", "avvenuta-consegna"],
            "{method}"
        );
        assert_eq!(b.count("errore-consegna"), 0, "{method}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn envelope_while_the_antivirus_is_down_is_temporary() {
    let b = beta();
    let envelope = b.envelope_from_alfa(&[ANNA], "Allegato");
    b.antivirus.0.store(true, Ordering::SeqCst);
    assert_temporary(&b.receive(&[ANNA], &envelope).await, "antivirus");
    b.assert_untouched();
    b.antivirus.0.store(false, Ordering::SeqCst);
    assert!(b.receive(&[ANNA], &envelope).await.is_positive());
    assert_eq!(b.inbox(ANNA), ["posta-certificata"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn envelope_stored_but_reply_lost_is_taken_in_charge_once() {
    let b = beta();
    let envelope = b.envelope_from_alfa(&[ANNA, LUCA], "Delibera");
    // The commit happens, the answer is lost: the sender is told to retry.
    b.store.fail("commit_batch", Fault::AfterNth(1));
    assert_temporary(&b.receive(&[ANNA, LUCA], &envelope).await, "lost reply");
    let again = b.receive(&[ANNA, LUCA], &envelope).await;
    assert!(again.text.contains("già preso in carico"), "{again:?}");
    // And once more in two halves, as two relays would: nothing new either.
    assert!(b.receive(&[ANNA], &envelope).await.is_positive());
    assert!(b.receive(&[LUCA], &envelope).await.is_positive());
    assert_eq!(b.inbox(ANNA), ["posta-certificata"]);
    assert_eq!(b.inbox(LUCA), ["posta-certificata"]);
    assert_eq!(
        b.queued(),
        ["presa-in-carico", "avvenuta-consegna", "avvenuta-consegna"]
    );
    assert_eq!((b.count("presa-in-carico"), b.count("consegna")), (1, 2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_receptions_of_one_envelope_take_it_in_charge_once() {
    let b = beta();
    let envelope = Arc::new(b.envelope_from_alfa(&[ANNA, LUCA], "Concorrenza"));
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let (g, envelope) = (b.g.clone(), envelope.clone());
            tokio::spawn(async move { g.receive(MARIO, &strings(&[ANNA, LUCA]), &envelope).await })
        })
        .collect();
    for t in tasks {
        let reply = t.await.unwrap();
        assert!(reply.is_positive(), "{reply:?}");
    }
    assert_eq!(b.inbox(ANNA), ["posta-certificata"]);
    assert_eq!(b.inbox(LUCA), ["posta-certificata"]);
    assert_eq!(b.count("presa-in-carico"), 1);
    assert_eq!(b.count("consegna"), 2);
    let mut queued = b.queued();
    queued.sort();
    assert_eq!(
        queued,
        ["avvenuta-consegna", "avvenuta-consegna", "presa-in-carico"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stray_recipient_lookup_fault_is_temporary() {
    let b = beta();
    let envelope = b.envelope_from_alfa(&[ANNA], "Estraneo");
    // The first lookup is Anna's (certified), the second Luca's (stray RCPT).
    b.store.fail("account", Fault::Nth(2));
    assert_temporary(&b.receive(&[ANNA, LUCA], &envelope).await, "stray");
    b.assert_untouched();
    b.store.heal();
    assert!(b.receive(&[ANNA, LUCA], &envelope).await.is_positive());
    assert_eq!(b.inbox(ANNA), ["posta-certificata"]);
    assert_eq!(b.inbox(LUCA), ["anomalia"]);
}

// --- Incoming point: receipts, anomalies, ordinary mail ---

/// Beta after Anna sent Mario a message (pending: never relayed here), and the
/// avvenuta consegna alfa signs about it.
async fn beta_with_a_receipt_for_anna() -> (Beta, Vec<u8>) {
    let b = beta();
    assert!(b.submit(&[MARIO], "Verbale").await.is_positive());
    let d = b.queued_envelope("pec.alfa.test");
    let receipt = identity(0)
        .notice(
            &Transaction::from_daticert(&d),
            &Notice::AvvenutaConsegna {
                recipient: MARIO,
                variant: TipoRicevuta::Sintetica,
                postacert: None,
            },
            ANNA,
            b.clock.now(),
        )
        .unwrap()
        .bytes;
    (b, receipt)
}

/// The avviso di rilevazione virus alfa signs about `tx` for `recipient`, to beta's
/// service address.
fn rilevazione_virus(b: &Beta, tx: &Transaction, recipient: &str) -> Vec<u8> {
    identity(0)
        .notice(
            tx,
            &Notice::RilevazioneVirus {
                recipient,
                virus: "Eicar-Signature",
            },
            b.g.id.address(),
            b.clock.now(),
        )
        .unwrap()
        .bytes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rilevazione_virus_tells_only_the_sender_of_a_message_of_ours() {
    // About Anna's message to Mario: Anna gets the mancata consegna per virus.
    let b = beta();
    assert!(b.submit(&[MARIO], "Allegato").await.is_positive());
    let tx = Transaction::from_daticert(&b.queued_envelope("pec.alfa.test"));
    let service = [b.g.id.address().to_string()];
    let reply =
        b.g.receive(
            "posta-certificata@pec.alfa.test",
            &service,
            &rilevazione_virus(&b, &tx, MARIO),
        )
        .await;
    assert!(reply.is_positive(), "{reply:?}");
    assert_eq!(b.count("errore-consegna-virus"), 1);
    assert!(b.queued().contains(&"errore-consegna".to_string()));

    // About a message beta never sent (one of alfa's own): filed, but nobody is told.
    let b = beta();
    let envelope = b.envelope_from_alfa(&[ANNA], "Mai spedito da beta");
    let tx = Transaction::from_daticert(&classify(&envelope).daticert.unwrap());
    let reply =
        b.g.receive(
            "posta-certificata@pec.alfa.test",
            &service,
            &rilevazione_virus(&b, &tx, ANNA),
        )
        .await;
    assert!(reply.is_positive(), "{reply:?}");
    assert_eq!(b.count("ricezione rilevazione-virus"), 1);
    assert_eq!(b.count("errore-consegna-virus"), 0);
    assert!(b.queued().is_empty(), "{:?}", b.queued());
}

/// Whether the timer of Mario for Anna's message says delivered.
fn delivered(b: &Beta) -> bool {
    let id = b.queued_envelope("pec.alfa.test").identificativo;
    let timers = b.store.inner().timers(&id).unwrap();
    timers[0].outcome == TimerOutcome::Delivered
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receipt_store_faults_are_temporary_and_heal() {
    // One account lookup says whether Anna has a mailbox and which folder takes her
    // receipts.
    let faults = [
        ("effects_done", Fault::Nth(1)),
        ("account", Fault::Nth(1)),
        ("commit_batch", Fault::Nth(1)),
    ];
    for (method, fault) in faults {
        let (b, receipt) = beta_with_a_receipt_for_anna().await;
        let logged = b.events().len();
        b.store.fail(method, fault);
        let reply =
            b.g.receive(
                "posta-certificata@pec.alfa.test",
                &strings(&[ANNA]),
                &receipt,
            )
            .await;
        assert_temporary(&reply, method);
        assert_eq!(b.inbox(ANNA), ["accettazione"], "{method} {fault:?}");
        assert_eq!(b.events().len(), logged, "{method} {fault:?}");
        assert!(!delivered(&b), "{method} {fault:?}");

        b.store.heal();
        let reply =
            b.g.receive(
                "posta-certificata@pec.alfa.test",
                &strings(&[ANNA]),
                &receipt,
            )
            .await;
        assert!(reply.is_positive(), "{method}: {reply:?}");
        assert_eq!(b.inbox(ANNA), ["accettazione", "avvenuta-consegna"]);
        assert!(delivered(&b));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receipt_stored_but_reply_lost_is_filed_once() {
    let (b, receipt) = beta_with_a_receipt_for_anna().await;
    b.store.fail("commit_batch", Fault::AfterNth(1));
    let from = "posta-certificata@pec.alfa.test";
    assert_temporary(
        &b.g.receive(from, &strings(&[ANNA]), &receipt).await,
        "lost reply",
    );
    let again = b.g.receive(from, &strings(&[ANNA]), &receipt).await;
    assert!(again.text.contains("già consegnata"), "{again:?}");
    assert_eq!(b.inbox(ANNA), ["accettazione", "avvenuta-consegna"]);
    assert_eq!(b.count("ricezione avvenuta-consegna"), 1);
    assert!(delivered(&b));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anomaly_lookup_fault_is_temporary() {
    let b = beta();
    // Signed by alfa but rewritten on its way: an anomaly for its recipients.
    let envelope = String::from_utf8(b.envelope_from_alfa(&[ANNA], "Fattura 8")).unwrap();
    let forged = envelope.replacen(
        "Subject: POSTA CERTIFICATA: Fattura 8",
        "Subject: POSTA CERTIFICATA: nuovo IBAN",
        1,
    );
    assert_ne!(forged, envelope);
    b.store.fail("account", Fault::Always);
    assert_temporary(&b.receive(&[ANNA], forged.as_bytes()).await, "anomaly");
    b.assert_untouched();
    b.store.heal();
    assert!(b.receive(&[ANNA], forged.as_bytes()).await.is_positive());
    assert_eq!(b.inbox(ANNA), ["anomalia"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ordinary_mail_lookup_fault_is_temporary_not_a_refusal() {
    let b = beta_accepting(&[ANNA]);
    let plain = message("someone@posta.example", &[ANNA], "Ciao");
    b.store.fail("account", Fault::Always);
    let reply =
        b.g.receive("someone@posta.example", &strings(&[ANNA]), &plain)
            .await;
    assert_temporary(&reply, "ordinary");
    b.assert_untouched();
    b.store.heal();
    let reply =
        b.g.receive("someone@posta.example", &strings(&[ANNA]), &plain)
            .await;
    assert!(reply.is_positive(), "{reply:?}");
    assert_eq!(b.inbox(ANNA), ["anomalia"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mx_recipient_check_fault_is_temporary_not_relay_denied() {
    let b = beta();
    let mx = MxHandler(b.g.clone());
    let session = SessionInfo {
        peer: "127.0.0.1:40001".parse().unwrap(),
        tls: false,
        tls_parameters: None,
        authenticated: None,
        helo: "mx.pec.alfa.test".into(),
        esmtp: true,
        mode: Mode::Mx,
    };
    // pec.comune.beta.test is not the service domain: only the store knows it.
    b.store.fail("list_domains", Fault::Always);
    let refused = mx.rcpt_to(&session, MARIO, PROTOCOLLO).await.unwrap_err();
    assert_eq!(refused.code, 451, "{refused:?}");
    b.store.heal();
    assert!(mx.rcpt_to(&session, MARIO, PROTOCOLLO).await.is_ok());
    let refused = mx
        .rcpt_to(&session, MARIO, "x@elsewhere.test")
        .await
        .unwrap_err();
    assert_eq!(refused.code, 550, "not hosted: {refused:?}");
}

// --- Access point ---

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submission_store_faults_are_temporary_and_heal() {
    // The hosted domains classify the recipients (certified or not); the account
    // lookup is the folder of Anna's receipts.
    for method in ["list_domains", "account", "commit_batch"] {
        let b = beta();
        b.store.fail(method, Fault::Nth(1));
        assert_temporary(&b.submit(&[MARIO], "Domanda").await, method);
        b.assert_untouched();
        b.store.heal();
        assert!(
            b.submit(&[MARIO], "Domanda").await.is_positive(),
            "{method}"
        );
        assert_eq!(b.inbox(ANNA), ["accettazione"], "{method}");
        assert_eq!(b.queued(), ["posta-certificata"], "{method}");
        assert_eq!(b.events(), ["accettazione"], "{method}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submission_login_fault_is_temporary_not_wrong_credentials() {
    let b = beta();
    let handler = SubmissionHandler {
        gestore: b.g.clone(),
        auth: Arc::new(pec_net::Authenticator::new(pec_net::AuthLimits::default())),
    };
    let session = SessionInfo {
        peer: "127.0.0.1:40002".parse().unwrap(),
        tls: true,
        tls_parameters: None,
        authenticated: None,
        helo: "client.test".into(),
        esmtp: true,
        mode: Mode::Submission { implicit_tls: true },
    };
    b.store.fail("account", Fault::Always);
    let refused = handler
        .authenticate(&session, ANNA, "whatever")
        .await
        .unwrap_err();
    assert_eq!(refused.code, 454, "{refused:?}");
    b.store.heal();
    assert_eq!(
        handler
            .authenticate(&session, "nessuno@pec.beta.test", "x")
            .await,
        Ok(None),
        "an unknown user is a refusal, not an error"
    );
}

// --- Queue worker ---

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_faults_leave_the_entry_to_a_later_pass() {
    // Reading the due entries, or the message of one, fails: nothing changes.
    for method in ["queue_due", "read_blob"] {
        let b = beta();
        assert!(b.submit(&[PROTOCOLLO], "Istanza").await.is_positive());
        b.lose_hand_off();
        let before = b.store.inner().list_queue().unwrap();
        b.store.fail(method, Fault::Nth(1));
        b.run_queue().await;
        assert_eq!(b.store.inner().list_queue().unwrap(), before, "{method}");
        assert!(b.inbox(PROTOCOLLO).is_empty(), "{method}");
        b.store.heal();
        b.run_queue().await;
        assert_eq!(b.inbox(PROTOCOLLO), ["posta-certificata"], "{method}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_delivery_faults_are_retried_never_a_mancata_consegna() {
    // Whether the domain is local (list_domains), then the mailbox lookup of the local
    // reception (account): each failure is a retry of the entry.
    // Both for an envelope handed off and for one the queue reads back.
    for (method, handed) in [
        ("list_domains", true),
        ("account", true),
        ("list_domains", false),
        ("account", false),
    ] {
        let b = beta();
        assert!(b.submit(&[PROTOCOLLO], "Istanza").await.is_positive());
        if !handed {
            b.lose_hand_off();
        }
        b.store.fail(method, Fault::Always);
        b.run_queue().await;
        let queue = b.store.inner().list_queue().unwrap();
        assert_eq!(queue.len(), 1, "{method}");
        assert_eq!(queue[0].attempts, 1, "{method}: retried");
        assert!(b.inbox(PROTOCOLLO).is_empty(), "{method}");
        assert_eq!(b.events(), ["accettazione"], "{method}");

        b.store.heal();
        b.advance(3600);
        b.run_queue().await;
        assert_eq!(b.inbox(PROTOCOLLO), ["posta-certificata"], "{method}");
        // The receipts it queued reach Anna and beta's service mailbox.
        b.run_queue().await;
        assert_eq!(
            b.inbox(ANNA),
            ["accettazione", "avvenuta-consegna"],
            "{method}"
        );
        assert_eq!(b.count("errore-consegna"), 0, "{method}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusal_notice_fault_retries_instead_of_dropping_the_notice() {
    let b = beta();
    // Gamma is in the index without a route: its domain cannot be reached, a permanent
    // refusal, so Anna gets an avviso di mancata consegna — once the store lets it be
    // filed in her mailbox.
    assert!(b.submit(&[GAMMA], "Richiesta").await.is_positive());
    b.store.fail("account", Fault::Always);
    b.run_queue().await;
    let queue = b.store.inner().list_queue().unwrap();
    assert_eq!((queue.len(), queue[0].attempts), (1, 1), "kept and retried");
    assert_eq!(b.inbox(ANNA), ["accettazione"]);
    b.store.heal();
    b.advance(3600);
    b.run_queue().await;
    assert!(b.store.inner().list_queue().unwrap().is_empty());
    assert_eq!(b.inbox(ANNA), ["accettazione", "errore-consegna"]);
    b.run_queue().await;
    assert_eq!(b.count("errore-consegna"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_queue_entry_handled_twice_delivers_once() {
    let b = beta();
    assert!(b.submit(&[PROTOCOLLO], "Doppio").await.is_positive());
    b.lose_hand_off();
    // Two dispatchers read the same due entry (queue_due leases nothing).
    tokio::join!(b.run_queue(), b.run_queue());
    assert_eq!(b.inbox(PROTOCOLLO), ["posta-certificata"]);
    assert_eq!(b.count("presa-in-carico"), 1);
    assert_eq!(b.count("consegna"), 1);
    tokio::join!(b.run_queue(), b.run_queue());
    assert_eq!(b.inbox(ANNA), ["accettazione", "avvenuta-consegna"]);
    assert_eq!(b.count("ricezione avvenuta-consegna"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_envelope_between_our_mailboxes_is_delivered_without_reading_the_queue() {
    let b = beta();
    assert!(b.submit(&[PROTOCOLLO], "Diretta").await.is_positive());
    // Its entry is the promise, due only once the lease runs out.
    let queue = b.store.inner().list_queue().unwrap();
    assert_eq!(queue.len(), 1);
    assert_eq!(
        queue[0].next_attempt_at,
        queue[0].created_at + HANDOFF_LEASE
    );
    // The worker delivers it from memory: the store's queue and blobs cannot be read.
    b.store.fail("queue_due", Fault::Always);
    b.store.fail("read_blob", Fault::Always);
    assert_eq!(b.run_queue().await, 1);
    b.store.heal();
    assert_eq!(b.inbox(PROTOCOLLO), ["posta-certificata"]);
    assert_eq!(b.inbox(ANNA), ["accettazione", "avvenuta-consegna"]);
    assert!(
        b.store.inner().list_queue().unwrap().is_empty(),
        "completed"
    );
    assert_eq!((b.count("presa-in-carico"), b.count("consegna")), (1, 1));
    // Once the lease would have run out, there is nothing left to deliver again.
    b.advance(HANDOFF_LEASE);
    assert_eq!(b.run_queue().await, 0);
    assert_eq!(b.inbox(PROTOCOLLO), ["posta-certificata"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_hand_off_is_delivered_by_the_queue_once_its_lease_runs_out() {
    let b = beta();
    assert!(b.submit(&[PROTOCOLLO], "Persa").await.is_positive());
    assert!(!b.g.handoff.take().is_empty(), "handed off");
    // Lost (a restart): nothing is due before the lease runs out.
    assert_eq!(b.run_queue().await, 0);
    assert!(b.inbox(PROTOCOLLO).is_empty());
    b.advance(HANDOFF_LEASE);
    assert_eq!(b.run_queue().await, 1);
    assert_eq!(b.inbox(PROTOCOLLO), ["posta-certificata"]);
    assert_eq!(b.inbox(ANNA), ["accettazione", "avvenuta-consegna"]);
    assert_eq!((b.count("presa-in-carico"), b.count("consegna")), (1, 1));
    assert!(b.store.inner().list_queue().unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hand_off_racing_the_queue_delivers_once() {
    let b = beta();
    assert!(b.submit(&[PROTOCOLLO], "Contesa").await.is_positive());
    // The lease ran out before the worker took the hand-off: one pass delivers it from
    // memory while another reads it from the queue.
    b.advance(HANDOFF_LEASE);
    tokio::join!(b.run_queue(), b.run_queue());
    assert_eq!(b.inbox(PROTOCOLLO), ["posta-certificata"]);
    assert_eq!(b.inbox(ANNA), ["accettazione", "avvenuta-consegna"]);
    assert_eq!((b.count("presa-in-carico"), b.count("consegna")), (1, 1));
    assert!(b.store.inner().list_queue().unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hand_off_whose_signer_is_no_longer_trusted_is_examined() {
    let b = beta();
    assert!(b.submit(&[PROTOCOLLO], "Scaduta").await.is_positive());
    // Before the worker takes it, beta's certificate expires (lab PKI: ten years from
    // 2025): the queue's examination would find the signer untrusted, and so does the
    // hand-off now. Nothing is certified about the envelope.
    b.advance(11 * 365 * 24 * 3600);
    assert_eq!(b.run_queue().await, 1);
    assert!(b.inbox(PROTOCOLLO).is_empty(), "{:?}", b.inbox(PROTOCOLLO));
    assert_eq!((b.count("presa-in-carico"), b.count("consegna")), (0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_hand_off_leaves_the_envelope_to_the_queue_at_once() {
    let b = beta();
    assert!(b.submit(&[PROTOCOLLO], "Prima").await.is_positive());
    let first = b.g.handoff.take().pop().expect("handed off");
    b.g.handoff.push(std::iter::repeat_n(
        first,
        pec_gestore::workers::QUEUE_BATCH,
    ));
    assert!(b.submit(&[LUCA], "Seconda").await.is_positive());
    let queue = b.store.inner().list_queue().unwrap();
    let second = queue.iter().find(|q| q.rcpt_to == [LUCA]).expect("queued");
    assert_eq!(second.next_attempt_at, second.created_at, "due at once");
    assert_eq!(b.g.handoff.take().len(), pec_gestore::workers::QUEUE_BATCH);
    // The queue delivers both: the first once its lease ran out.
    b.advance(HANDOFF_LEASE);
    assert_eq!(b.run_queue().await, 2);
    assert_eq!(b.inbox(PROTOCOLLO), ["posta-certificata"]);
    assert_eq!(b.inbox(LUCA), ["posta-certificata"]);
}

// --- Timer worker ---

/// Beta 12 h after Anna wrote to Mario, whose gestore never answered.
async fn beta_with_a_due_preavviso() -> Beta {
    let b = beta();
    assert!(b.submit(&[MARIO], "Sollecito").await.is_positive());
    b.advance(12 * 3600 + 1);
    b
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timer_faults_send_nothing_until_the_store_recovers() {
    // Reading the due notices, the envelope, the folder of Anna's receipts, storing.
    for method in ["due_notices", "read_blob", "account", "commit_batch"] {
        let b = beta_with_a_due_preavviso().await;
        b.store.fail(method, Fault::Nth(1));
        assert_eq!(b.g.run_timers_once(), 0, "{method}");
        assert_eq!(b.inbox(ANNA), ["accettazione"], "{method}");
        b.store.heal();
        assert_eq!(b.g.run_timers_once(), 1, "{method}");
        assert_eq!(b.g.run_timers_once(), 0, "{method}");
        assert_eq!(
            b.inbox(ANNA),
            ["accettazione", "preavviso-errore-consegna"],
            "{method}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_timer_notice_is_sent_once_even_when_its_step_seems_to_fail() {
    let b = beta_with_a_due_preavviso().await;
    // Stored, but reported as failed: the mark went with it, so it is not sent again.
    b.store.fail("commit_batch", Fault::AfterNth(1));
    assert_eq!(b.g.run_timers_once(), 0);
    assert_eq!(b.g.run_timers_once(), 0);
    assert_eq!(b.inbox(ANNA), ["accettazione", "preavviso-errore-consegna"]);
    // The 24 h one, by two workers at once: sent once.
    b.advance(12 * 3600);
    let (g1, g2) = (b.g.clone(), b.g.clone());
    let (x, y) = tokio::join!(
        tokio::task::spawn_blocking(move || g1.run_timers_once()),
        tokio::task::spawn_blocking(move || g2.run_timers_once())
    );
    assert!(x.unwrap() + y.unwrap() >= 1);
    assert_eq!(
        b.inbox(ANNA),
        [
            "accettazione",
            "preavviso-errore-consegna",
            "preavviso-errore-consegna"
        ]
    );
    assert_eq!(b.count("preavviso-errore-consegna"), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn receipts_between_two_mailboxes_of_ours_are_filed_with_the_delivery() {
    let b = beta();
    assert!(b.submit(&[PROTOCOLLO], "Interna").await.is_positive());
    assert_eq!(b.queued(), ["posta-certificata"]);
    assert_eq!(b.run_queue().await, 1);
    // The envelope's one durable step delivered it and filed the presa in carico (in
    // the service archive) and the consegna (in Anna's mailbox): nothing left queued.
    assert_eq!(b.inbox(PROTOCOLLO), ["posta-certificata"]);
    assert_eq!(b.inbox(ANNA), ["accettazione", "avvenuta-consegna"]);
    assert!(b.queued().is_empty(), "queued: {:?}", b.queued());
    assert_eq!(b.count("ricezione presa-in-carico"), 1);
    assert_eq!(b.count("ricezione avvenuta-consegna"), 1);
    let events = b.events();
    let at = |e: &str| events.iter().position(|x| x == e).unwrap();
    assert!(
        at("presa-in-carico") < at("ricezione presa-in-carico"),
        "{events:?}"
    );
    assert!(
        at("consegna") < at("ricezione avvenuta-consegna"),
        "{events:?}"
    );
    // The timer is settled: no notice after 12 or 24 hours.
    b.advance(25 * 3600);
    assert_eq!(b.g.run_timers_once(), 0);
    assert_eq!(b.inbox(ANNA), ["accettazione", "avvenuta-consegna"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_full_sender_mailbox_holds_back_its_receipt_not_the_delivery() {
    let b = beta();
    assert!(b.submit(&[PROTOCOLLO], "Interna").await.is_positive());
    // Anna's mailbox is full once her acceptance receipt is in.
    let used = b.store.inner().usage(ANNA).unwrap().used;
    b.store.inner().set_quota(ANNA, used).unwrap();
    assert_eq!(b.run_queue().await, 1);
    assert_eq!(b.inbox(PROTOCOLLO), ["posta-certificata"]);
    assert_eq!(b.inbox(ANNA), ["accettazione"]);
    assert_eq!(b.queued(), ["avvenuta-consegna"]);
    assert_eq!(b.count("consegna"), 1);
    assert_eq!(b.count("ricezione avvenuta-consegna"), 0);
    // Still full: the queue keeps it.
    b.advance(3600);
    b.run_queue().await;
    assert_eq!(b.inbox(ANNA), ["accettazione"]);
    assert_eq!(b.queued(), ["avvenuta-consegna"]);
    // Room made: the next pass files it, once; the recipient got the message once.
    b.store.inner().set_quota(ANNA, used * 10).unwrap();
    b.advance(3600);
    b.run_queue().await;
    assert_eq!(b.inbox(ANNA), ["accettazione", "avvenuta-consegna"]);
    assert!(b.queued().is_empty(), "queued: {:?}", b.queued());
    assert_eq!(b.inbox(PROTOCOLLO), ["posta-certificata"]);
    assert_eq!(b.count("ricezione avvenuta-consegna"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_receipt_held_back_by_a_full_mailbox_leaves_no_timer_to_deny_the_delivery() {
    let b = beta();
    assert!(
        b.submit(&[PROTOCOLLO], "Oltre il giorno")
            .await
            .is_positive()
    );
    let used = b.store.inner().usage(ANNA).unwrap().used;
    b.store.inner().set_quota(ANNA, used).unwrap();
    assert_eq!(b.run_queue().await, 1);
    assert_eq!(b.queued(), ["avvenuta-consegna"]);
    // A day later, with room again: the delivery was stored, so no notice says otherwise.
    b.advance(25 * 3600);
    b.store.inner().set_quota(ANNA, used * 10).unwrap();
    assert_eq!(b.g.run_timers_once(), 0);
    assert_eq!(b.inbox(ANNA), ["accettazione"]);
    assert_eq!(b.count("preavviso-errore-consegna"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn writing_to_itself_a_mailbox_with_room_for_the_message_alone_gets_it() {
    let b = beta();
    assert!(b.submit(&[ANNA], "A me stessa").await.is_positive());
    let s = b.store.inner();
    let envelope = s.list_queue().unwrap().remove(0);
    let size = s.read_blob(&envelope.hash).unwrap().len() as u64;
    // Room for the envelope with its Return-Path and Delivered-To lines, not for the
    // consegna (which carries the message again) after it.
    let used = s.usage(ANNA).unwrap().used;
    s.set_quota(ANNA, used + size + 200).unwrap();
    assert_eq!(b.run_queue().await, 1);
    assert_eq!(b.inbox(ANNA), ["accettazione", "posta-certificata"]);
    assert_eq!(b.queued(), ["avvenuta-consegna"]);
    assert_eq!((b.count("consegna"), b.count("errore-consegna")), (1, 0));
}

/// A stop while every pass finds a full batch of due entries (a peer refusing
/// connections, retried at once): the workers stop after the pass under way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_workers_stop_under_a_backlog_that_never_shrinks() {
    let settings = Settings {
        retry_base_secs: 0,
        retry_max_secs: 0,
        ..Settings::default()
    };
    // Port 1 of the loopback: nothing listens there, every connection is refused.
    let routes = BTreeMap::from([("pec.alfa.test".to_string(), "127.0.0.1:1".to_string())]);
    let b = beta_with(settings, Router::static_only(routes));
    let now = b.clock.now().timestamp();
    let queue = (0..pec_gestore::workers::QUEUE_BATCH + 44)
        .map(|n| NewQueueEntry {
            msgid: format!("<arretrato.{n}@pec.beta.test>"),
            mail_from: ANNA.into(),
            rcpt_to: vec![MARIO.into()],
            domain: "pec.alfa.test".into(),
            message: format!("messaggio {n}\r\n").into_bytes(),
            created_at: now,
            due_at: now,
            expires_at: now + 86_400,
        })
        .collect();
    b.store
        .inner()
        .commit_batch(Batch {
            queue,
            ..Batch::default()
        })
        .unwrap();
    let workers = pec_gestore::workers::run_workers(b.g.clone(), b.relays.clone(), async {});
    assert!(
        tokio::time::timeout(Duration::from_secs(120), workers)
            .await
            .is_ok(),
        "the workers went on past the stop"
    );
    // Nothing was given up meanwhile: every entry is still there, to be retried.
    assert_eq!(
        b.store.inner().list_queue().unwrap().len(),
        pec_gestore::workers::QUEUE_BATCH + 44
    );
}

/// In-flow control: while the queue worker's last pass found a full batch, a submission
/// waits, and is taken when the next pass ends (on tokio's paused clock, so the wait cannot
/// run out by itself while the test looks).
#[tokio::test(start_paused = true)]
async fn a_submission_waits_while_the_queue_is_behind() {
    let b = Arc::new(beta());
    let batch = pec_gestore::workers::QUEUE_BATCH;
    b.g.flow.pass(batch, batch);
    let submitting = tokio::spawn({
        let b = b.clone();
        async move { b.submit(&[LUCA], "Con la coda indietro").await }
    });
    for _ in 0..20 {
        tokio::task::yield_now().await;
    }
    assert!(!submitting.is_finished(), "taken while the queue is behind");
    assert!(b.inbox(ANNA).is_empty(), "nothing accepted yet");
    // A pass that finds nothing due: the queue keeps up again, the submission goes on.
    assert_eq!(b.run_queue().await, 0);
    assert!(submitting.await.unwrap().is_positive());
    assert_eq!(b.inbox(ANNA), ["accettazione"]);
    assert!(!b.g.flow.behind());
    let metrics = b.g.metrics.render(b.store.inner(), b.clock.now());
    assert!(
        metrics.contains("pecd_submissions_delayed_total 1"),
        "{metrics}"
    );
}

/// The queue's own submissions (a ripudio goes through the access point as a queue entry)
/// never wait for the queue: a pass would be waiting for itself to end.
#[tokio::test(start_paused = true)]
async fn the_queue_does_not_wait_for_itself() {
    let b = beta();
    let now = b.clock.now().timestamp();
    b.store
        .inner()
        .enqueue(&pec_store::NewQueueEntry {
            msgid: "ripudio-1".into(),
            mail_from: ANNA.into(),
            rcpt_to: strings(&[LUCA]),
            domain: pec_gestore::protocol::ripudio::ACCESS_POINT.into(),
            message: message(ANNA, &[LUCA], "Ripudio"),
            created_at: now,
            due_at: now,
            expires_at: now + 86_400,
        })
        .unwrap();
    let batch = pec_gestore::workers::QUEUE_BATCH;
    b.g.flow.pass(batch, batch);
    let start = tokio::time::Instant::now();
    assert_eq!(b.run_queue().await, 1);
    // On the paused clock a wait would have moved time on by the whole delay.
    assert_eq!(start.elapsed(), Duration::ZERO);
    assert_eq!(b.inbox(ANNA), ["accettazione"]);
}
