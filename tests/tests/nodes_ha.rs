//! Two nodes of one gestore on one PostgreSQL database, one killed mid-stream: gestore
//! beta runs as two `pecd serve` processes whose configurations differ only in their
//! listen ports and `data_dir` (same `[store] url`, same `certificates.dir`), alfa as a
//! third. Users of beta submit to both nodes, alfa relays to both through a balancing
//! proxy; alfa's MX answers nothing at first, so the first node holds its queue entries
//! for alfa under its lease when it gets SIGKILL. After: every acknowledged message has
//! exactly one accettazione, one envelope in each recipient's mailbox and one delivery
//! receipt per recipient, nothing else; the dead node's entries were delivered by the
//! other once their lease ran out; `pecd log verify` passes; `pecd mailbox add` on the
//! shared store while the nodes run makes a mailbox the surviving node serves.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use pec_e2e::free_port;
use pec_e2e::ha::{
    Holdings, Proxy, Seen, Sent, Server, Stream, pecd, query, unsettled, wait_port, wait_until,
};
use pec_proto::labpki::GestoreSpec;
use pec_store::{PgOptions, PgStore};

const MARIO: &str = "mario.rossi@pec.alfa.test";
const ANNA: &str = "anna.bianchi@pec.beta.test";
const LUCA: &str = "luca.verdi@pec.beta.test";
const UFFICIO: &str = "ufficio.protocollo@pec.comune.beta.test";
const NUOVA: &str = "nuova.casella@pec.beta.test";
const BETA_DOMAINS: [&str; 2] = ["pec.beta.test", "pec.comune.beta.test"];

/// A node's configuration: `id`'s gestore, its two listeners, its data directory, the
/// database, and the static routes.
struct NodeConfig<'a> {
    id: &'a str,
    name: &'a str,
    domains: &'a [&'a str],
    mailboxes: &'a [&'a str],
    submission: u16,
    mx: u16,
    data_dir: &'a str,
    url: &'a str,
    routes: Vec<(&'a str, u16)>,
}

fn write_config(dir: &Path, file: &str, c: &NodeConfig) -> PathBuf {
    let list = |v: &[&str]| {
        v.iter()
            .map(|s| format!("\"{s}\""))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let routes: String = c
        .routes
        .iter()
        .map(|(d, p)| format!("\"{d}\" = \"127.0.0.1:{p}\"\n"))
        .collect();
    let path = dir.join(file);
    std::fs::write(
        &path,
        format!(
            "[gestore]\nname = \"{name}\"\nhostname = \"mx.{d0}\"\ndata_dir = \"{data}\"\ndomains = [{domains}]\n\n\
             [store]\nurl = \"{url}\"\nconnections = 4\nlease_secs = 20\n\n\
             [certificates]\ndir = \"pki\"\nid = \"{id}\"\n\n\
             [listen]\nsubmission_tls = \"127.0.0.1:{sub}\"\nmx = \"127.0.0.1:{mx}\"\n\n\
             [queue]\nretry_base_secs = 1\nretry_max_secs = 2\n\n[dns]\nresolver = \"off\"\n\n\
             [lab]\nmailboxes = [{mailboxes}]\n\n[routes]\n{routes}",
            name = c.name,
            d0 = c.domains[0],
            data = c.data_dir,
            domains = list(c.domains),
            url = c.url,
            id = c.id,
            sub = c.submission,
            mx = c.mx,
            mailboxes = list(c.mailboxes),
        ),
    )
    .expect("write config");
    path
}

fn store(url: &str) -> PgStore {
    PgStore::open(&PgOptions::new(url)).expect("open the store")
}

#[test]
fn a_node_killed_mid_stream_loses_nothing_and_its_claims_are_taken_over() {
    let dir = tempfile::tempdir().unwrap();
    let gestori = vec![
        GestoreSpec {
            id: "alfa".into(),
            provider_name: "Alfa PEC (lab)".into(),
            domains: vec!["pec.alfa.test".into()],
        },
        GestoreSpec {
            id: "beta".into(),
            provider_name: "Beta PEC (lab)".into(),
            domains: BETA_DOMAINS.iter().map(|d| d.to_string()).collect(),
        },
    ];
    pecd::certs::write_lab(&dir.path().join("pki"), gestori, 3650, false).expect("lab PKI");
    let ca = dir.path().join("pki/ca.pem");
    let server = pec_store::test_util::shared_server();
    let (alfa_url, beta_url) = (server.database(), server.database());
    let [alfa_sub, alfa_mx, b1_sub, b1_mx, b2_sub, b2_mx] = [(); 6].map(|_| free_port());

    // alfa's MX answers nothing until the gate opens; beta's two MXs behind one address.
    let gate = Proxy::start(vec![alfa_mx], false);
    let balancer = Proxy::start(vec![b1_mx, b2_mx], true);
    let alfa_config = write_config(
        dir.path(),
        "alfa.toml",
        &NodeConfig {
            id: "alfa",
            name: "Alfa PEC (lab)",
            domains: &["pec.alfa.test"],
            mailboxes: &[MARIO],
            submission: alfa_sub,
            mx: alfa_mx,
            data_dir: "data-alfa",
            url: &alfa_url,
            routes: BETA_DOMAINS.iter().map(|d| (*d, balancer.port)).collect(),
        },
    );
    let beta = |file: &str, submission: u16, mx: u16, data_dir: &str| {
        write_config(
            dir.path(),
            file,
            &NodeConfig {
                id: "beta",
                name: "Beta PEC (lab)",
                domains: &BETA_DOMAINS,
                mailboxes: &[ANNA, LUCA, UFFICIO],
                submission,
                mx,
                data_dir,
                url: &beta_url,
                routes: vec![("pec.alfa.test", gate.port)],
            },
        )
    };
    let beta1_config = beta("beta1.toml", b1_sub, b1_mx, "data-beta1");
    let beta2_config = beta("beta2.toml", b2_sub, b2_mx, "data-beta2");

    let mut alfa = Server::start(&alfa_config);
    let mut beta1 = Server::start(&beta1_config);
    wait_port(alfa_sub);
    wait_port(b1_sub);

    // beta1 alone first: its queue worker claims the first entries for alfa and waits
    // on alfa's silent MX, so the lease owner in the database is beta1.
    let s1 = Stream::start(b1_sub, &ca, ANNA, "b1", &[MARIO, LUCA], true);
    let mut owner1 = String::new();
    wait_until(Duration::from_secs(60), "beta1 claims entries", || {
        let rows = query(
            &beta_url,
            "SELECT DISTINCT lease_owner FROM queue WHERE lease_owner IS NOT NULL",
        );
        if let Some(Some(o)) = rows.first().and_then(|r| r.first()) {
            owner1 = o.clone();
        }
        !owner1.is_empty()
    });
    let mut beta2 = Server::start(&beta2_config);
    wait_port(b2_sub);
    let s2 = Stream::start(b2_sub, &ca, LUCA, "b2", &[MARIO, UFFICIO], true);
    let s3 = Stream::start(alfa_sub, &ca, MARIO, "a", &[ANNA, UFFICIO], true);
    wait_until(Duration::from_secs(60), "traffic on every stream", || {
        [&s1, &s2, &s3].iter().all(|s| s.seen().acked.len() >= 3)
    });

    // SIGKILL beta1 mid-stream, while it holds live claims on queue entries.
    let claimed: Vec<String> = query(
        &beta_url,
        &format!(
            "SELECT id FROM queue WHERE lease_owner = '{owner1}' \
             AND lease_until > extract(epoch FROM now())"
        ),
    )
    .into_iter()
    .filter_map(|r| r.into_iter().next().flatten())
    .collect();
    assert!(!claimed.is_empty(), "beta1 holds no claim at the kill");
    beta1.kill();
    // The other streams go on through the kill.
    let (n2, n3) = (s2.seen().acked.len(), s3.seen().acked.len());
    wait_until(Duration::from_secs(60), "traffic after the kill", || {
        s2.seen().acked.len() >= n2 + 3 && s3.seen().acked.len() >= n3 + 3
    });
    let streams = [
        ("b1", ANNA, [MARIO, LUCA], s1),
        ("b2", LUCA, [MARIO, UFFICIO], s2),
        ("a", MARIO, [ANNA, UFFICIO], s3),
    ];
    let seen: Vec<(&str, &str, [&str; 2], Seen)> = streams
        .into_iter()
        .map(|(tag, from, to, s)| (tag, from, to, s.stop()))
        .collect();
    gate.open();

    // A mailbox added with the dead node's configuration, on the shared store while the
    // other nodes run: the surviving node lets it in and delivers to it.
    pecd(
        &beta1_config,
        &["mailbox", "add", NUOVA, "--password-stdin"],
        b"secret-nuova.casella\n",
    )
    .expect("pecd mailbox add");
    let one = |tag: &str, from: &str, to: &str| {
        format!(
            "From: {from}\r\nTo: {to}\r\nSubject: {tag}\r\nMessage-ID: <{tag}-0@ha.test>\r\n\r\nciao\r\n"
        )
    };
    pec_e2e::submit(
        alfa_sub,
        &ca,
        MARIO,
        &[NUOVA],
        &one("per-nuova", MARIO, NUOVA),
    )
    .expect("submit to the new mailbox");
    pec_e2e::submit(b2_sub, &ca, NUOVA, &[ANNA], &one("da-nuova", NUOVA, ANNA))
        .expect("the new mailbox submits through beta2");

    // Everything acknowledged settles, through alfa and beta2 only.
    let mut sent: Vec<Sent> = Vec::new();
    for (tag, from, to, s) in &seen {
        for n in &s.acked {
            sent.push(Sent {
                msgid: format!("<{tag}-{n}@ha.test>"),
                from,
                to: to.as_slice(),
            });
        }
    }
    sent.push(Sent {
        msgid: "<per-nuova-0@ha.test>".into(),
        from: MARIO,
        to: &[NUOVA],
    });
    sent.push(Sent {
        msgid: "<da-nuova-0@ha.test>".into(),
        from: NUOVA,
        to: &[ANNA],
    });
    let (alfa_store, beta_store) = (store(&alfa_url), store(&beta_url));
    let check = || -> Result<(Holdings, Holdings), String> {
        let a = Holdings::read(&alfa_store, &[MARIO]);
        let b = Holdings::read(&beta_store, &[ANNA, LUCA, UFFICIO, NUOVA]);
        let of = |address: &str| {
            if address.ends_with("@pec.alfa.test") {
                &a
            } else {
                &b
            }
        };
        let wrong: Vec<String> = sent
            .iter()
            .filter_map(|s| {
                let to: Vec<&Holdings> = s.to.iter().map(|r| of(r)).collect();
                unsettled(s, of(s.from), &to)
            })
            .collect();
        let queued = |url: &str| query(url, "SELECT count(*) FROM queue")[0][0].clone();
        let (qa, qb) = (queued(&alfa_url), queued(&beta_url));
        if !wrong.is_empty() || qa.as_deref() != Some("0") || qb.as_deref() != Some("0") {
            return Err(format!(
                "{} of {} messages unsettled, queues alfa {qa:?} beta {qb:?}: {}",
                wrong.len(),
                sent.len(),
                wrong
                    .iter()
                    .take(10)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join("; ")
            ));
        }
        Ok((a, b))
    };
    let start = Instant::now();
    let (a, b) = loop {
        match check() {
            Ok(h) => break h,
            Err(e) if start.elapsed() > Duration::from_secs(120) => {
                panic!("not settled 120 s after the kill: {e}")
            }
            Err(_) => std::thread::sleep(Duration::from_millis(250)),
        }
    };

    // The entries beta1 held were delivered by beta2 (beta1 is dead): gone from the
    // queue, and the queue is empty.
    let left = query(
        &beta_url,
        &format!("SELECT id FROM queue WHERE id IN ({})", claimed.join(", ")),
    );
    assert!(left.is_empty(), "beta1's entries still queued: {left:?}");

    // Nothing twice, acknowledged or not, and no notice that should not exist.
    for (tag, from, to, s) in &seen {
        for n in 0..=s.last + 1 {
            let m = format!("<{tag}-{n}@ha.test>");
            let of = |address: &str| {
                if address.ends_with("@pec.alfa.test") {
                    &a
                } else {
                    &b
                }
            };
            assert!(of(from).get(from, "accettazione", &m) <= 1, "{m}");
            for r in to {
                assert!(of(r).get(r, "posta-certificata", &m) <= 1, "{m} {r}");
            }
            let consegne = of(from).consegne.get(&(from.to_string(), m.clone()));
            let mut c = consegne.cloned().unwrap_or_default();
            let all = c.len();
            c.dedup();
            c.sort();
            c.dedup();
            assert_eq!(c.len(), all, "{m}: a delivery receipt twice: {consegne:?}");
        }
    }
    let allowed = ["accettazione", "posta-certificata", "avvenuta-consegna"];
    assert_eq!(a.unexpected(&allowed), Default::default());
    assert_eq!(b.unexpected(&allowed), Default::default());

    // One log chain for the whole gestore, verified with either node's configuration.
    let verified = pecd(&beta1_config, &["log", "verify"], b"").expect("beta log verify");
    assert!(verified.starts_with("log intact"), "{verified}");
    let verified = pecd(&alfa_config, &["log", "verify"], b"").expect("alfa log verify");
    assert!(verified.starts_with("log intact"), "{verified}");
    eprintln!(
        "acknowledged per stream: {:?}; beta1's claims at the kill: {}; settled in {:?}",
        seen.iter()
            .map(|(t, _, _, s)| (*t, s.acked.len(), s.last))
            .collect::<Vec<_>>(),
        claimed.len(),
        start.elapsed()
    );
    assert!(beta2.running(), "beta2 died");
    assert!(alfa.running(), "alfa died");
}
