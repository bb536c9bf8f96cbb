//! The gestori under test: alfa (`pec.alfa.test`) and beta (`pec.beta.test`), run in the
//! benchmark's process on loopback with free ports and a temporary directory, built from
//! a configuration file and [`crate::serve::assemble`] exactly as `pecd serve` builds them
//! (system clock, real store with fsync, lab PKI).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::Context;
use pec_gestore::clock::SystemClock;
use pec_gestore::runtime::{self, Running};
use pec_proto::labpki::GestoreSpec;
use pec_proto::smime::{CountedSigner, Signer};
use pec_store::Store;
use pec_store::test_util::{PgServer, free_port};

/// Most recipients of one benchmark message; each domain has this many mailboxes.
pub const RECIPIENTS: usize = 10;

/// One running gestore.
pub struct Node {
    /// Its store, to count receipts in the senders' mailboxes.
    pub store: Arc<dyn Store>,
    /// Submission with implicit TLS.
    pub submission: SocketAddr,
    /// IMAPS.
    pub imaps: SocketAddr,
    /// Its signer (without the counter), for the signing-limit measurement.
    pub signer: Arc<dyn Signer>,
    running: Running,
}

/// Where the gestori keep their state.
#[derive(Clone, Copy)]
pub struct Storage<'a> {
    /// A database of this server for each gestore; `None`: the embedded store.
    pub postgres: Option<&'a PgServer>,
    /// Nodes of alfa (every one on alfa's database; more than one needs `postgres`).
    pub nodes: usize,
}

/// How each gestore relays to the other (`[queue]` of its configuration).
#[derive(Debug, Clone, Copy)]
pub struct Relay {
    /// `relay_sessions_per_destination`.
    pub sessions: usize,
    /// `relay_batch`.
    pub batch: usize,
}

/// The two gestori, their directory and the signature counter they share.
pub struct Gestori {
    /// Certificates and data; removed when dropped.
    pub dir: tempfile::TempDir,
    /// `pec.alfa.test`: every sender, and recipients of intra-gestore mail (its first
    /// node; beta relays to this one).
    pub alfa: Node,
    /// alfa's other nodes, sharing its database.
    pub alfa_others: Vec<Node>,
    /// The submission listeners of every alfa node, which clients share in turn.
    pub submissions: Vec<SocketAddr>,
    /// `pec.beta.test`: recipients of mail across two gestori.
    pub beta: Node,
    /// Signatures made by both gestori so far.
    pub signatures: Arc<AtomicU64>,
}

/// The sender mailbox of benchmark case `case` (one per case, so that its INBOX holds
/// exactly that case's receipts).
pub fn sender(case: usize) -> String {
    format!("bench{case}@pec.alfa.test")
}

/// The lab password of a mailbox (`pecd serve`'s `[lab] mailboxes` convention).
pub fn password(address: &str) -> String {
    format!("secret-{}", address.split('@').next().unwrap_or(address))
}

/// Recipient `i` in `domain`.
pub fn recipient(i: usize, domain: &str) -> String {
    format!("dest{i}@{domain}")
}

/// The lab CA certificate.
pub fn ca_file(dir: &Path) -> PathBuf {
    dir.join("pki/ca.pem")
}

impl Gestori {
    /// Writes the lab PKI and configurations and starts both gestori on `storage`;
    /// `senders` sender mailboxes are created in alfa, `connections` simultaneous
    /// connections from loopback allowed on each listener, and each gestore's relay to
    /// the other as `relay` says.
    pub async fn start(
        senders: usize,
        connections: usize,
        relay: Relay,
        storage: Storage<'_>,
    ) -> anyhow::Result<Gestori> {
        let dir = tempfile::tempdir().context("cannot make a temporary directory")?;
        let ids = [("alfa", "pec.alfa.test"), ("beta", "pec.beta.test")];
        let specs = ids
            .iter()
            .map(|(id, domain)| GestoreSpec {
                id: id.to_string(),
                provider_name: name(id),
                domains: vec![domain.to_string()],
            })
            .collect();
        crate::certs::write_lab(&dir.path().join("pki"), specs, 30, false)?;
        // alfa's nodes, then beta: (gestore, node) and the ports of each.
        let alfa_nodes = storage.nodes.max(1);
        let instances: Vec<(usize, usize)> =
            (0..alfa_nodes).map(|n| (0, n)).chain([(1, 0)]).collect();
        let ports: Vec<[u16; 3]> = instances
            .iter()
            .map(|_| [free_port(), free_port(), free_port()])
            .collect();
        let mut urls = Vec::new();
        for _ in ids {
            urls.push(match storage.postgres {
                Some(server) => {
                    let url = tokio::task::block_in_place(|| server.database());
                    format!("[store]\nurl = \"{url}\"\n\n")
                }
                None => String::new(),
            });
        }
        // Mail for alfa goes to its first node.
        let routes: String = [(ids[0].1, ports[0]), (ids[1].1, ports[alfa_nodes])]
            .iter()
            .map(|(d, p)| format!("\"{d}\" = \"127.0.0.1:{}\"\n", p[1]))
            .collect();
        let signatures = Arc::new(AtomicU64::new(0));
        let mut nodes = Vec::new();
        for (&(gestore, node), p) in instances.iter().zip(&ports) {
            let (id, domain) = &ids[gestore];
            let mut mailboxes: Vec<String> =
                (0..RECIPIENTS).map(|i| recipient(i, domain)).collect();
            if *id == "alfa" {
                mailboxes.extend((0..senders).map(sender));
            }
            let mailboxes: Vec<String> = mailboxes.iter().map(|m| format!("\"{m}\"")).collect();
            let text = format!(
                "[gestore]\nname = \"{name}\"\nhostname = \"mx.{domain}\"\ndata_dir = \"data-{id}{node}\"\n\
                 domains = [\"{domain}\"]\n\n{store}\
                 [certificates]\ndir = \"pki\"\nid = \"{id}\"\n\n\
                 [listen]\nsubmission_tls = \"127.0.0.1:{p0}\"\nmx = \"127.0.0.1:{p1}\"\n\
                 imaps = \"127.0.0.1:{p2}\"\n\n\
                 [limits]\nmax_connections_per_ip = {connections}\nmax_connections = {connections}\n\n\
                 [queue]\nretry_base_secs = 2\nretry_max_secs = 10\n\
                 relay_sessions_per_destination = {sessions}\nrelay_batch = {batch}\n\n\
                 [lab]\nmailboxes = [{mailboxes}]\n\n[routes]\n{routes}",
                name = name(id),
                p0 = p[0],
                p1 = p[1],
                p2 = p[2],
                mailboxes = mailboxes.join(", "),
                store = urls[gestore],
                sessions = relay.sessions,
                batch = relay.batch,
            );
            let path = dir.path().join(format!("{id}{node}.toml"));
            std::fs::write(&path, text)
                .with_context(|| format!("cannot write {}", path.display()))?;
            let config = crate::config::Config::load(&path)?;
            let mut parts = crate::serve::assemble(&config, Arc::new(SystemClock))?;
            let gestore = Arc::get_mut(&mut parts.gestore)
                .context("the assembled gestore is already shared")?;
            let signer = gestore.id.signer.clone();
            // Counted so the benchmark reports the signatures the gestori themselves made.
            let count = signatures.clone();
            gestore.id.signer = Arc::new(CountedSigner::new(signer.clone(), move || {
                count.fetch_add(1, Ordering::Relaxed);
            }));
            let store = parts.gestore.store.clone();
            let running = runtime::start(parts)
                .await
                .context("cannot start the listeners")?;
            let bound = |a: Option<SocketAddr>| a.context("a listener is missing");
            nodes.push(Node {
                store,
                submission: bound(running.bound.submission_tls)?,
                imaps: bound(running.bound.imaps)?,
                signer,
                running,
            });
        }
        let beta = nodes.pop().context("beta")?;
        let submissions = nodes.iter().map(|n| n.submission).collect();
        let mut nodes = nodes.into_iter();
        let alfa = nodes.next().context("alfa")?;
        Ok(Gestori {
            dir,
            alfa,
            alfa_others: nodes.collect(),
            submissions,
            beta,
            signatures,
        })
    }

    /// Whether both outbound queues are empty (nothing left in flight).
    pub fn queues_empty(&self) -> bool {
        [&self.alfa, &self.beta]
            .iter()
            .all(|n| n.store.list_queue().is_ok_and(|q| q.is_empty()))
    }

    /// Entries in alfa's and beta's outbound queues (`None` when unreadable): which
    /// gestore's transport falls behind.
    pub fn queue_lengths(&self) -> [Option<u64>; 2] {
        [&self.alfa, &self.beta].map(|n| n.store.queue_summary().ok().map(|s| s.entries))
    }

    /// Stops both gestori.
    pub async fn stop(self) {
        for node in self.alfa_others {
            node.running.stop().await;
        }
        self.alfa.running.stop().await;
        self.beta.running.stop().await;
    }
}

fn name(id: &str) -> String {
    let mut c = id.chars();
    let first: String = c
        .next()
        .map(|f| f.to_uppercase().collect())
        .unwrap_or_default();
    format!("{first}{} PEC (bench)", c.as_str())
}
