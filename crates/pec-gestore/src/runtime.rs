//! A running gestore: its listeners (SMTP submission and MX, IMAP, POP3, HTTP for client
//! set-up) and workers, started together and stopped together. `pecd serve` runs one; the
//! end-to-end tests run several in one process, with an injected clock.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use pec_net::ListenerLimits;
use pec_smtp::{Mode, ServerConfig};
use pec_store::{Change, ChangeHook};
use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch};
use tokio::task::{JoinHandle, JoinSet};
use tracing::{info, warn};

use crate::admin::Administration;
use crate::admin::api::AdminApi;
use crate::antivirus::Scanner;
use crate::autoconfig::{ClientSetup, Http, Operations, serve_http};
use crate::handlers::{MxHandler, SubmissionHandler};
use crate::handoff::HANDOFF_LEASE;
use crate::metrics::Metrics;
use crate::service::Gestore;
use crate::workers::{Relays, run_workers};

/// Where to listen; `None` disables a service. Port 0 picks a free port.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Listen {
    /// Submission with implicit TLS.
    pub submission_tls: Option<SocketAddr>,
    /// Submission with STARTTLS.
    pub submission: Option<SocketAddr>,
    /// The MX.
    pub mx: Option<SocketAddr>,
    /// IMAP with implicit TLS.
    pub imaps: Option<SocketAddr>,
    /// IMAP with STARTTLS.
    pub imap: Option<SocketAddr>,
    /// POP3 with implicit TLS.
    pub pop3s: Option<SocketAddr>,
    /// POP3 with STLS.
    pub pop3: Option<SocketAddr>,
    /// HTTP for client set-up (Thunderbird autoconfig, Outlook Autodiscover).
    pub http: Option<SocketAddr>,
    /// The same over HTTPS, with the TLS certificate of the other listeners.
    pub https: Option<SocketAddr>,
}

/// Everything a gestore runs with.
pub struct Parts<S: Scanner> {
    /// The PEC rules and state.
    pub gestore: Arc<Gestore<S>>,
    /// SMTP settings (TLS included).
    pub smtp: Arc<ServerConfig>,
    /// IMAP and POP3 settings; their password check (`limits.auth`) serves SMTP
    /// submission too, so a client's failures count across protocols.
    pub imap: Arc<pec_imap::Config>,
    /// Connection limits of the HTTP and HTTPS listeners.
    pub http_connections: ListenerLimits,
    /// Relay clients of the queue.
    pub relays: Relays,
    /// Where to listen.
    pub listen: Listen,
    /// What the client set-up documents announce.
    pub client: ClientSetup,
    /// The RFC 3161 time-stamping authority of the legal log's daily time stamp, if any.
    pub tsa_url: Option<String>,
}

/// A started gestore.
pub struct Running {
    /// The addresses actually bound (useful with port 0).
    pub bound: Listen,
    /// Passes other nodes' changes on to this node's IMAP sessions and queue workers, for
    /// as long as the gestore runs (the store holds it weakly).
    _changes: ChangeHook,
    /// Told when the listeners stop (readiness).
    metrics: Arc<Metrics>,
    stop: watch::Sender<bool>,
    /// Told when every session has ended, for the workers' last step.
    sessions_over: oneshot::Sender<()>,
    tasks: JoinSet<&'static str>,
    workers: JoinHandle<()>,
}

/// Opens a listening socket; an error names the address ("cannot listen on
/// 0.0.0.0:25: Address already in use").
async fn bind(addr: Option<SocketAddr>) -> std::io::Result<Option<(TcpListener, SocketAddr)>> {
    match addr {
        None => Ok(None),
        Some(a) => {
            let l = TcpListener::bind(a)
                .await
                .map_err(|e| std::io::Error::new(e.kind(), format!("cannot listen on {a}: {e}")))?;
            let local = l.local_addr()?;
            Ok(Some((l, local)))
        }
    }
}

/// Logs a listener's end and names it.
async fn named<E: std::fmt::Display>(
    what: &'static str,
    f: impl Future<Output = Result<(), E>>,
) -> &'static str {
    if let Err(e) = f.await {
        warn!("{what} listener failed: {e}");
    }
    what
}

/// The TLS side of the HTTPS listener: the certificate of the mail listeners, offering
/// HTTP/1.1 by ALPN.
fn https_tls(smtp: &ServerConfig) -> std::io::Result<Arc<tokio_rustls::rustls::ServerConfig>> {
    let Some(tls) = &smtp.tls else {
        return Err(std::io::Error::other(
            "the HTTPS listener needs the TLS certificate of the gestore",
        ));
    };
    let mut config = (**tls).clone();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// What this node does when another node sharing its store changes something: a folder
/// changed wakes the IMAP sessions watching it, an entry queued wakes the queue worker
/// (the node's own changes reach them through [`Gestore::commit`] and the sessions).
fn other_nodes<S: Scanner>(gestore: &Arc<Gestore<S>>, notifier: &pec_imap::Notifier) -> ChangeHook {
    let (gestore, notifier) = (Arc::downgrade(gestore), notifier.clone());
    Arc::new(move |change: &Change| match change {
        Change::Folder { address, folder } => notifier.changed(address, folder),
        Change::Queued => {
            if let Some(g) = gestore.upgrade() {
                g.queued.notify_one();
            }
        }
    })
}

/// `host` with the HTTPS port when it is not 443, for the URLs of the JMAP session.
fn public_authority(host: &str, https: Option<SocketAddr>) -> String {
    match https.map(|a| a.port()) {
        Some(443) | None => host.to_string(),
        Some(port) => format!("{host}:{port}"),
    }
}

/// Binds every listener, then starts them and the workers.
pub async fn start<S: Scanner>(parts: Parts<S>) -> std::io::Result<Running> {
    let l = parts.listen;
    let (stop, stop_rx) = watch::channel(false);
    let stopped = move || {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    };
    let submission_tls = bind(l.submission_tls).await?;
    let submission = bind(l.submission).await?;
    let mx = bind(l.mx).await?;
    let imaps = bind(l.imaps).await?;
    let imap = bind(l.imap).await?;
    let pop3s = bind(l.pop3s).await?;
    let pop3 = bind(l.pop3).await?;
    let http = bind(l.http).await?;
    let https = bind(l.https).await?;
    let addr = |b: &Option<(TcpListener, SocketAddr)>| b.as_ref().map(|(_, a)| *a);
    let bound = Listen {
        submission_tls: addr(&submission_tls),
        submission: addr(&submission),
        mx: addr(&mx),
        imaps: addr(&imaps),
        imap: addr(&imap),
        pop3s: addr(&pop3s),
        pop3: addr(&pop3),
        http: addr(&http),
        https: addr(&https),
    };

    let mut tasks = JoinSet::new();
    let sub_handler = Arc::new(SubmissionHandler {
        gestore: parts.gestore.clone(),
        auth: parts.imap.limits.auth.clone(),
    });
    for (b, implicit_tls) in [(submission_tls, true), (submission, false)] {
        if let Some((listener, _)) = b {
            let f = pec_smtp::serve(
                listener,
                Mode::Submission { implicit_tls },
                parts.smtp.clone(),
                sub_handler.clone(),
                stopped(),
            );
            tasks.spawn(named("submission", f));
        }
    }
    if let Some((listener, _)) = mx {
        let h = Arc::new(MxHandler(parts.gestore.clone()));
        let f = pec_smtp::serve(listener, Mode::Mx, parts.smtp.clone(), h, stopped());
        tasks.spawn(named("mx", f));
    }
    for (b, implicit) in [(imaps, true), (imap, false)] {
        if let Some((listener, _)) = b {
            let f = pec_imap::serve_imap(listener, parts.imap.clone(), implicit, stopped());
            tasks.spawn(named("imap", f));
        }
    }
    for (b, implicit) in [(pop3s, true), (pop3, false)] {
        if let Some((listener, _)) = b {
            let f = pec_imap::serve_pop3(listener, parts.imap.clone(), implicit, stopped());
            tasks.spawn(named("pop3", f));
        }
    }
    let http_server =
        |operations, jmap: Option<Arc<pec_jmap::Jmap>>, admin: Option<Arc<AdminApi>>| {
            let console = admin.clone().map(|api| {
                Arc::new(crate::admin::console::Console::new(
                    api,
                    pec_webmail::SessionLimits::default(),
                ))
            });
            let webmail = jmap.clone().map(|j| {
                Arc::new(pec_webmail::Webmail::new(
                    j,
                    pec_webmail::SessionLimits::default(),
                    parts.smtp.max_message_size,
                ))
            });
            Arc::new(Http {
                setup: parts.client.clone(),
                store: parts.gestore.store.clone(),
                operations,
                jmap,
                admin,
                console,
                webmail,
            })
        };
    if let Some((listener, _)) = http {
        let limits = parts.http_connections.clone();
        let ops = Operations {
            metrics: parts.gestore.metrics.clone(),
            clock: parts.gestore.clock.clone(),
        };
        let f = serve_http(
            listener,
            http_server(Some(ops), None, None),
            None,
            limits,
            stopped(),
        );
        tasks.spawn(named("http", f));
    }
    if let Some((listener, _)) = https {
        let tls = https_tls(&parts.smtp)?;
        let jmap = pec_jmap::Jmap {
            store: parts.gestore.store.clone(),
            auth: parts.imap.limits.auth.clone(),
            trust: parts.gestore.clone(),
            limits: pec_jmap::Limits {
                max_mailboxes: parts.imap.limits.max_folders,
                ..pec_jmap::Limits::default()
            },
            public_host: public_authority(&parts.client.host, bound.https),
            changed: {
                let notifier = parts.imap.notifier.clone();
                Arc::new(move |address: &str, folder: &str| notifier.changed(address, folder))
            },
            uploads: Arc::default(),
            access: Some(Arc::new(crate::jmap_submission::JmapAccess {
                handler: sub_handler.clone(),
                max_message_size: parts.smtp.max_message_size,
                max_recipients: parts.smtp.max_recipients,
            })),
            push: pec_jmap::Push::new(parts.imap.notifier.clone(), pec_jmap::PushLimits::default()),
        };
        let api = AdminApi {
            admin: Administration {
                store: parts.gestore.store.clone(),
                clock: parts.gestore.clock.clone(),
                gestore: parts.gestore.id.name.clone(),
            },
            auth: parts.imap.limits.auth.clone(),
        };
        let h = http_server(None, Some(Arc::new(jmap)), Some(Arc::new(api)));
        let f = serve_http(listener, h, Some(tls), parts.http_connections, stopped());
        tasks.spawn(named("https", f));
    }
    let changes = other_nodes(&parts.gestore, &parts.imap.notifier);
    parts
        .gestore
        .store
        .subscribe(&changes)
        .map_err(std::io::Error::other)?;
    let (g, tsa_url) = (parts.gestore.clone(), parts.tsa_url);
    let (sessions_over, sessions_ended) = oneshot::channel();
    let workers = tokio::spawn(async move {
        tokio::join!(
            run_workers(g.clone(), parts.relays.clone(), stopped()),
            crate::protocol::webhook::run(g.clone(), stopped()),
            crate::proof::run(g.clone(), tsa_url, stopped()),
        );
        // Sessions that ended within their grace period may have handed envelopes off:
        // once none is left (or nobody will say so), what they handed off is delivered now
        // rather than when its lease runs out after a restart. For no longer than the lease
        // itself (a store that does not answer): what is left is the queue's then.
        let _ = sessions_ended.await;
        let lease = Duration::from_secs(HANDOFF_LEASE.unsigned_abs());
        match tokio::time::timeout(lease, g.run_handed_once(&parts.relays)).await {
            Ok(0) => {}
            Ok(n) => info!(
                delivered = n,
                "handed-off envelopes delivered before stopping"
            ),
            Err(_) => warn!("handed-off envelopes left to their lease: the store is slow"),
        }
    });
    info!(gestore = %parts.gestore.id.name, "gestore running");
    parts.gestore.metrics.listeners(true);
    Ok(Running {
        bound,
        metrics: parts.gestore.metrics.clone(),
        _changes: changes,
        stop,
        sessions_over,
        tasks,
        workers,
    })
}

impl Running {
    /// Resolves when a listener stops by itself (a failure), naming it.
    pub async fn failed(&mut self) -> &'static str {
        let name = match self.tasks.join_next().await {
            Some(Ok(name)) => name,
            Some(Err(_)) => "a listener task",
            None => std::future::pending().await,
        };
        self.metrics.listeners(false);
        name
    }

    /// Stops accepting, lets sessions finish their grace period, stops the workers, then
    /// delivers what the sessions handed off ([`Gestore::run_handed_once`]).
    pub async fn stop(mut self) {
        self.metrics.listeners(false);
        let _ = self.stop.send(true);
        while self.tasks.join_next().await.is_some() {}
        let _ = self.sessions_over.send(());
        let _ = self.workers.await;
        info!("gestore stopped");
    }
}
