//! PostgreSQL restarted under load: a gestore (`pecd serve`, a process) on a private
//! PostgreSQL server takes two streams of submissions when the server is stopped (fast
//! shutdown: its connections are cut) and started again. While it is down the clients
//! get temporary errors (4xx), never a permanent one; after, every acknowledged message
//! has exactly one accettazione, one envelope and one delivery receipt, nothing is lost
//! or doubled, no other notice exists, and `pecd log verify` passes.

use std::time::{Duration, Instant};

use pec_e2e::free_port;
use pec_e2e::ha::{Holdings, Sent, Server, Stream, pecd, query, unsettled, wait_port, wait_until};
use pec_store::test_util::PgServer;
use pec_store::{PgOptions, PgStore};

const MARIO: &str = "mario.rossi@pec.alfa.test";
const ANNA: &str = "anna.bianchi@pec.alfa.test";

/// The last lines of a log file.
fn tail(path: &std::path::Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

#[test]
fn postgresql_restarted_under_load_loses_and_doubles_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let pg = PgServer::start();
    let url = pg.database();
    let (sub, mx) = (free_port(), free_port());
    let config = dir.path().join("pecd.toml");
    std::fs::write(
        &config,
        format!(
            "[gestore]\nname = \"Alfa PEC (lab)\"\ndata_dir = \"data\"\ndomains = [\"pec.alfa.test\"]\n\n\
             [store]\nurl = \"{url}\"\nconnections = 4\n\n\
             [certificates]\ndir = \"certs\"\nid = \"alfa\"\nlab_generate = true\n\n\
             [listen]\nsubmission_tls = \"127.0.0.1:{sub}\"\nmx = \"127.0.0.1:{mx}\"\n\n\
             [queue]\nretry_base_secs = 1\nretry_max_secs = 2\n\n\
             [dns]\nresolver = \"off\"\n\n[lab]\nmailboxes = [\"{MARIO}\", \"{ANNA}\"]\n"
        ),
    )
    .unwrap();
    let ca = dir.path().join("certs/ca.pem");
    let mut server = Server::start(&config);
    wait_port(sub);

    let streams = [
        (
            "m",
            MARIO,
            ANNA,
            Stream::start(sub, &ca, MARIO, "m", &[ANNA], false),
        ),
        (
            "n",
            ANNA,
            MARIO,
            Stream::start(sub, &ca, ANNA, "n", &[MARIO], false),
        ),
    ];
    let acks = |streams: &[(&str, &str, &str, Stream)]| -> Vec<usize> {
        streams.iter().map(|s| s.3.seen().acked.len()).collect()
    };
    wait_until(
        Duration::from_secs(60),
        "submissions before the restart",
        || acks(&streams).iter().all(|&n| n >= 5),
    );

    // Down: the clients see temporary errors, and the server keeps running.
    pg.halt();
    let refused = |streams: &[(&str, &str, &str, Stream)]| -> usize {
        streams.iter().map(|s| s.3.seen().codes.len()).sum()
    };
    let before = refused(&streams);
    let start = Instant::now();
    while refused(&streams) < before + 20 {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no temporary errors while down: {:?}; server log: {}",
            streams.iter().map(|s| s.3.seen()).collect::<Vec<_>>(),
            tail(&dir.path().join("pecd.log"))
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(server.running(), "pecd died with its database");
    pg.resume();

    // Up again: the streams go on.
    let during = acks(&streams);
    wait_until(
        Duration::from_secs(60),
        "submissions after the restart",
        || acks(&streams).iter().zip(&during).all(|(n, d)| *n >= d + 5),
    );
    let seen: Vec<_> = streams
        .into_iter()
        .map(|(tag, from, to, s)| (tag, from, to, s.stop()))
        .collect();
    for (tag, _, _, s) in &seen {
        assert!(
            s.codes.iter().all(|c| (400..500).contains(c)),
            "stream {tag}: a permanent refusal: {:?}",
            s.codes
        );
    }

    let store = PgStore::open(&PgOptions::new(&url)).expect("open the store");
    let tos: Vec<[&str; 1]> = seen.iter().map(|(_, _, to, _)| [*to]).collect();
    let mut sent = Vec::new();
    for ((tag, from, _, s), to) in seen.iter().zip(&tos) {
        for n in &s.acked {
            sent.push(Sent {
                msgid: format!("<{tag}-{n}@ha.test>"),
                from,
                to: to.as_slice(),
            });
        }
    }
    let start = Instant::now();
    let h = loop {
        let h = Holdings::read(&store, &[MARIO, ANNA]);
        let wrong: Vec<String> = sent
            .iter()
            .filter_map(|s| unsettled(s, &h, &[&h]))
            .collect();
        let queued = query(&url, "SELECT count(*) FROM queue")[0][0].clone();
        if wrong.is_empty() && queued.as_deref() == Some("0") {
            break h;
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "not settled 120 s after the restart ({queued:?} queued): {} of {}: {}",
            wrong.len(),
            sent.len(),
            wrong
                .iter()
                .take(10)
                .cloned()
                .collect::<Vec<_>>()
                .join("; ")
        );
        std::thread::sleep(Duration::from_millis(250));
    };

    // Nothing twice, acknowledged or not; no other notice.
    for (tag, from, to, s) in &seen {
        for n in 0..=s.last + 1 {
            let m = format!("<{tag}-{n}@ha.test>");
            assert!(h.get(from, "accettazione", &m) <= 1, "{m}");
            assert!(h.get(to, "posta-certificata", &m) <= 1, "{m}");
            assert!(h.get(from, "avvenuta-consegna", &m) <= 1, "{m}");
        }
    }
    let allowed = ["accettazione", "posta-certificata", "avvenuta-consegna"];
    assert_eq!(h.unexpected(&allowed), Default::default());
    let verified = pecd(&config, &["log", "verify"], b"").expect("log verify");
    assert!(verified.starts_with("log intact"), "{verified}");
    eprintln!(
        "per stream (acknowledged, refusals by code, dropped connections): {:?}; settled in {:?}",
        seen.iter()
            .map(|(t, _, _, s)| {
                let mut codes = std::collections::BTreeMap::new();
                for c in &s.codes {
                    *codes.entry(*c).or_insert(0) += 1;
                }
                (*t, s.acked.len(), codes, s.drops)
            })
            .collect::<Vec<_>>(),
        start.elapsed()
    );
    assert!(server.running(), "pecd died");
}
