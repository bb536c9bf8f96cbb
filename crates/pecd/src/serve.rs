//! `pecd serve`: the gestore itself — SMTP submission and MX, IMAP, POP3, the queue and
//! timer workers — until SIGTERM or SIGINT.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use pec_gestore::antivirus::{Clamd, Configured};
use pec_gestore::autoconfig::ClientSetup;
use pec_gestore::clock::{Clock, SystemClock};
use pec_gestore::identity::Identity;
use pec_gestore::metrics::Metrics;
use pec_gestore::routing::Router;
use pec_gestore::runtime::{self, Listen, Parts};
use pec_gestore::service::{Gestore, Settings};
use pec_gestore::workers::Relays;
use pec_net::Authenticator;
use pec_proto::labpki::GestoreSpec;
use pec_proto::smime::{Digest, OpensslSigner};
use pec_smtp::{ClientTls, Relay, ServerConfig};
use pec_store::timed::Timed;
use pec_store::{NewAccount, Store};
use tracing::{info, warn};

use crate::config::{Config, LogFormat, parse_size};

fn read(path: &std::path::Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
}

/// Makes glibc's allocator give large freed blocks back to the system.
///
/// Each password check (argon2) allocates a 19 MiB block. By default glibc raises its
/// mmap threshold after the first such block is freed, so later ones come from the heap
/// arenas and stay resident after use: one per arena, a hundred MB and more for a server
/// that is idle. A fixed threshold (this also stops the adjustment) keeps them mmapped, so
/// they are unmapped when freed.
pub fn return_large_blocks() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes an allocator parameter; it is called before any
    // other thread of this process exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
    }
}

/// Where rustls warns about a client's TLS hello it still accepts: an IP address sent
/// as SNI, which several mail clients do on every connection. Quietened to ERROR.
const RUSTLS_HELLO_WARNINGS: &str = "rustls::msgs::handshake=error";

/// The log filter: `RUST_LOG` when set (else INFO), with rustls's per-connection hello
/// warnings quietened unless `RUST_LOG` says something about rustls itself.
fn log_filter(rust_log: Option<&str>) -> tracing_subscriber::EnvFilter {
    let spec = rust_log.filter(|s| !s.trim().is_empty()).unwrap_or("info");
    let filter = tracing_subscriber::EnvFilter::try_new(spec)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    if spec.contains("rustls") {
        return filter;
    }
    match RUSTLS_HELLO_WARNINGS.parse() {
        Ok(directive) => filter.add_directive(directive),
        Err(_) => filter,
    }
}

/// Installs the operational log on standard error: JSON lines, or text with colours only
/// on a terminal (a file under systemd or Docker gets no escape sequences).
pub(crate) fn init_logging(format: LogFormat) {
    let builder = tracing_subscriber::fmt()
        .with_env_filter(log_filter(std::env::var("RUST_LOG").ok().as_deref()))
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.with_ansi(std::io::stderr().is_terminal()).init(),
    }
}

/// Runs the gestore described by `config` until a termination signal.
pub fn run(config: &Config) -> anyhow::Result<ExitCode> {
    return_large_blocks();
    init_logging(config.logging.format);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(serve(config))?;
    Ok(ExitCode::SUCCESS)
}

/// Makes the lab PKI when asked to and it is missing.
fn ensure_lab_pki(config: &Config) -> anyhow::Result<()> {
    if !config.certificates.lab_generate || config.own_file("sign.pem").exists() {
        return Ok(());
    }
    warn!(
        dir = %config.certificates.dir.display(),
        "LAB SETUP: generating a lab PKI (self-made CA, NOT FOR PRODUCTION)"
    );
    let spec = GestoreSpec {
        id: config.certificates.id.clone(),
        provider_name: config.gestore.name.clone(),
        domains: config.gestore.domains.clone(),
    };
    crate::certs::write_lab(&config.certificates.dir, vec![spec], 825, false)?;
    Ok(())
}

/// The router of `[routes]` and `[dns]`.
fn router(config: &Config) -> anyhow::Result<Router> {
    let routes = config.routes.clone();
    Ok(match config.dns.resolver.as_str() {
        "off" => Router::static_only(routes),
        "system" => Router::with_system_dns(routes).context("the system DNS configuration")?,
        server => {
            let addr = server.parse().with_context(|| {
                format!("dns.resolver {server:?} is not system, off or IP:PORT")
            })?;
            Router::with_dns_server(routes, addr, config.dns.mx_port)
        }
    })
}

/// Creates the configured domains and lab mailboxes that do not exist yet. Nodes of one
/// gestore starting together race here: one that finds a row another node has just
/// created goes on.
fn ensure_accounts(config: &Config, store: &dyn Store) -> anyhow::Result<()> {
    let existing = store.list_domains()?;
    for d in &config.gestore.domains {
        if !existing.iter().any(|e| e.name.eq_ignore_ascii_case(d)) {
            match store.add_domain(d, config.default_quota()) {
                Ok(_) => info!(domain = %d, "domain added"),
                Err(pec_store::Error::AlreadyExists(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
    for address in &config.lab.mailboxes {
        if store.find_account(address)?.is_some() {
            continue;
        }
        let local = address.split('@').next().unwrap_or(address);
        let created = store.create_account(&NewAccount {
            address: address.clone(),
            password_hash: pec_imap::hash_password(&format!("secret-{local}"))?,
            quota: None,
            receipts_folder: false,
        });
        match created {
            Ok(_) => warn!(
                mailbox = %address,
                "LAB SETUP: mailbox created with password secret-{local}"
            ),
            Err(pec_store::Error::AlreadyExists(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Builds everything a gestore runs with from its configuration, with `clock` as its
/// time source (the system clock in production, a manual one in tests).
pub fn assemble(config: &Config, clock: Arc<dyn Clock>) -> anyhow::Result<Parts<Configured>> {
    ensure_lab_pki(config)?;
    let dir = &config.certificates.dir;
    for key in ["sign.key", "tls.key"] {
        crate::private::check_key(&config.own_file(key))?;
    }
    let signer = OpensslSigner::from_pem(
        &read(&config.own_file("sign.pem"))?,
        &read(&config.own_file("sign.key"))?,
        Digest::Sha256,
    )
    .context("the signing certificate and key")?;
    let metrics = Arc::new(Metrics::new());
    for (name, file) in [("signing", "sign.pem"), ("tls", "tls.pem")] {
        let expiry = crate::check::not_after(&config.own_file(file)).map_err(anyhow::Error::msg)?;
        metrics.certificate(name, expiry);
    }
    crate::trust::index_written(dir, &metrics);
    let ca_pem = read(&dir.join("ca.pem"))?;
    let material = crate::trust::load(dir)?;
    let tls = pec_net::tls::server_config(
        &read(&config.own_file("tls.pem"))?,
        &read(&config.own_file("tls.key"))?,
    )
    .context("the TLS certificate and key")?;

    if let Some(mode) = crate::private::data_dir(&config.gestore.data_dir)? {
        warn!(
            "{}",
            crate::private::loosened_warning(&config.gestore.data_dir, mode)
        );
    }
    let store: Arc<dyn Store> = Arc::new(Timed::new(
        crate::store::open(config)?,
        metrics.store_observer(),
    ));
    ensure_accounts(config, store.as_ref())?;

    let scanner = match &config.antivirus.clamd {
        Some(address) => Configured::Clamd(Clamd {
            address: address.clone(),
            timeout: Duration::from_secs(60),
        }),
        None => {
            warn!("no antivirus configured ([antivirus] clamd): messages are not scanned");
            Configured::None
        }
    };
    let notifier = pec_imap::Notifier::new();
    let hook_notifier = notifier.clone();
    let gestore = Arc::new(Gestore {
        id: Identity::new(
            config.gestore.name.clone(),
            metrics.counting(Arc::new(signer)),
            material.index,
            material.anchors,
        ),
        store: store.clone(),
        clock,
        scanner,
        settings: Settings {
            hostname: config.gestore.hostname.clone(),
            limits: pec_gestore::access::Limits {
                max_recipients: config.limits.max_recipients,
                max_size_times_recipients: usize::try_from(parse_size(
                    &config.limits.max_size_times_recipients,
                )?)
                .unwrap_or(usize::MAX),
            },
            accept_ordinary: config.policy.accept_ordinary.clone(),
            retry_base_secs: config.queue.retry_base_secs,
            retry_max_secs: config.queue.retry_max_secs,
            queue_lifetime_secs: pec_gestore::service::DAY,
            relay_batch: config.queue.relay_batch,
            protocol_offices: config
                .protocol_office
                .iter()
                .map(|o| {
                    o.office()
                        .map_err(|(key, e)| anyhow::anyhow!("protocol_office.{key}: {e}"))
                })
                .collect::<anyhow::Result<_>>()?,
        },
        router: router(config)?,
        queued: tokio::sync::Notify::new(),
        flow: Default::default(),
        handoff: Default::default(),
        on_delivery: Some(Arc::new(move |address: &str, folder: &str| {
            hook_notifier.changed(address, folder)
        })),
        metrics: metrics.clone(),
    });

    let client_tls = pec_smtp::client_tls_config(&ca_pem).context("the CA bundle")?;
    let relay = |tls| Relay {
        helo_name: config.gestore.hostname.clone(),
        tls,
        timeout: Duration::from_secs(60),
        pool: pec_smtp::Pool::new(pec_smtp::PoolLimits {
            per_destination: config.queue.relay_sessions_per_destination,
            ..pec_smtp::PoolLimits::default()
        }),
    };
    let relays = Relays {
        pec: relay(ClientTls::RequireStartTls(client_tls.clone())),
        ordinary: relay(ClientTls::Opportunistic(client_tls)),
    };

    let connections = config.limits.connections();
    let mut smtp = ServerConfig::new(config.gestore.hostname.clone());
    smtp.max_message_size =
        usize::try_from(parse_size(&config.limits.max_message_size)?).unwrap_or(usize::MAX);
    smtp.max_recipients = config.limits.max_recipients;
    smtp.connections = connections.clone();
    smtp.max_auth_failures = config.limits.max_auth_failures;
    smtp.tls = Some(tls.clone());
    smtp.observer = Some(metrics.clone());
    let smtp = Arc::new(smtp);
    // One password check for IMAP, POP3 and (through runtime::start) SMTP submission.
    let imap = Arc::new(pec_imap::Config {
        store: store.clone(),
        notifier,
        tls: Some(tls),
        limits: pec_imap::Limits {
            // An APPEND may bring what SMTP would accept, no more.
            max_literal: u32::try_from(smtp.max_message_size).unwrap_or(u32::MAX),
            max_auth_failures: config.limits.max_auth_failures,
            max_line: config.limits.imap_max_line(),
            max_folders: config.limits.max_folders,
            connections: connections.clone(),
            auth: Arc::new(Authenticator::new(config.limits.auth())),
            ..pec_imap::Limits::default()
        },
        observer: Some(metrics),
    });

    let l = &config.listen;
    Ok(Parts {
        gestore,
        smtp,
        imap,
        http_connections: connections,
        relays,
        listen: Listen {
            submission_tls: l.submission_tls,
            submission: l.submission,
            mx: l.mx,
            imaps: l.imaps,
            imap: l.imap,
            pop3s: l.pop3s,
            pop3: l.pop3,
            http: l.http,
            https: l.https,
        },
        client: client_setup(config),
        tsa_url: config.log.tsa_url.clone(),
    })
}

/// The public host and ports announced to mail clients: `[client]`, else the ports of
/// the `[listen]` addresses.
fn client_setup(config: &Config) -> ClientSetup {
    let (c, l) = (&config.client, &config.listen);
    let port = |public: Option<u16>, bound: Option<std::net::SocketAddr>| {
        public.or(bound.map(|a| a.port()))
    };
    ClientSetup {
        host: c
            .host
            .clone()
            .unwrap_or_else(|| config.gestore.hostname.clone()),
        display_name: config.gestore.name.clone(),
        imaps: port(c.imaps_port, l.imaps),
        imap: port(c.imap_port, l.imap),
        pop3s: port(c.pop3s_port, l.pop3s),
        submission_tls: port(c.submission_tls_port, l.submission_tls),
        submission: port(c.submission_port, l.submission),
    }
}

async fn serve(config: &Config) -> anyhow::Result<()> {
    let parts = assemble(config, Arc::new(SystemClock))?;
    let trust = tokio::spawn(crate::trust::watch(
        config.certificates.dir.clone(),
        parts.gestore.clone(),
    ));
    let mut running = runtime::start(parts)
        .await
        .context("cannot start the listeners")?;
    info!(gestore = %config.gestore.name, "pecd ready");
    tokio::select! {
        _ = termination() => info!("stopping"),
        name = running.failed() => warn!("the {name} listener stopped; stopping"),
    }
    trust.abort();
    running.stop().await;
    Ok(())
}

/// Resolves on SIGTERM or SIGINT.
async fn termination() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            warn!("cannot watch SIGTERM: {e}");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rustls_hello_warnings_are_quietened_unless_asked_for() {
        let default = log_filter(None).to_string();
        assert!(default.contains(RUSTLS_HELLO_WARNINGS), "{default}");
        assert!(default.contains("info"), "{default}");
        let debug = log_filter(Some("debug")).to_string();
        assert!(debug.contains(RUSTLS_HELLO_WARNINGS), "{debug}");
        let asked = log_filter(Some("info,rustls=trace")).to_string();
        assert!(!asked.contains(RUSTLS_HELLO_WARNINGS), "{asked}");
    }
}
