//! `pecd bench`: how fast this machine runs a PEC provider, and how that compares with
//! what bounds it (RSA signing on all cores) and with a plain MTA (Postfix delivering to a
//! Maildir) under the same load.
//!
//! It starts two gestori in this process (see [`lab`]), drives N authenticated SMTP
//! submission clients against them, follows every accepted message to its acceptance
//! and delivery receipts in the sender's mailbox (through the store), and fails when an
//! acknowledged message lacks one (`lost`). Figures and how to read them: `BENCHMARKS.md`.

mod client;
mod lab;

use std::collections::HashMap;
use std::io::{BufRead, IsTerminal, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Args;
use pec_store::Store;
use serde::Serialize;

use client::Smtp;
use lab::{Gestori, RECIPIENTS};

/// Options of `pecd bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Total load time in seconds, shared by the phases (signing limit, every case, the
    /// Postfix yardstick); setting up and draining the receipts come on top.
    #[arg(long, default_value_t = 110)]
    pub seconds: u64,
    /// Stop each case after this many messages instead (still bounded by the time).
    #[arg(long)]
    pub messages: Option<u64>,
    /// Each case stops once it has submitted this many MB (message size × recipients):
    /// every delivery receipt of a 1 MB message carries the message again, and the disk
    /// fills fast.
    #[arg(long, default_value_t = 64)]
    pub max_mb_per_case: u64,
    /// Concurrent submission clients (one SMTP session each, reused for every message).
    #[arg(long, default_value_t = 10)]
    pub clients: usize,
    /// Idle IMAPS connections opened for the idle RSS figure.
    #[arg(long, default_value_t = 1000)]
    pub idle_connections: usize,
    /// Only the main case (1 recipient, intra-gestore, 4 KB) and its half-load run: the
    /// quick loop while profiling.
    #[arg(long)]
    pub main_only: bool,
    /// Only the cross-gestore case (1 recipient, alfa to beta, 4 KB) and its half-load
    /// run: the quick loop for the transport between gestori.
    #[arg(long, conflicts_with = "main_only")]
    pub cross_only: bool,
    /// Relay sessions each gestore opens to the other at most (`[queue]
    /// relay_sessions_per_destination`; the lab's listeners take that many from one
    /// address). More than the production default of 8, which stays under a peer's
    /// default limit of 10 connections per address: see BENCHMARKS.md.
    #[arg(long, default_value_t = 24)]
    pub relay_sessions: usize,
    /// Queue entries each gestore sends at most back to back over one relay session
    /// (`[queue] relay_batch`; 1: one at a time, as before batches).
    #[arg(long, default_value_t = pec_gestore::workers::RELAY_BATCH)]
    pub relay_batch: usize,
    /// Skip the Postfix yardstick.
    #[arg(long)]
    pub no_postfix: bool,
    /// Print the results as JSON on stdout (the table goes to stderr).
    #[arg(long)]
    pub json: bool,
    /// Run the gestori on PostgreSQL instead of the embedded store: a private server
    /// (PostgreSQL's binaries from `PEC_PG_BIN` or `/usr/lib/postgresql/<v>/bin`), durable
    /// (fsync on, synchronous commit), one database per gestore.
    #[arg(long)]
    pub postgres: bool,
    /// Nodes of the measured gestore (alfa), sharing its PostgreSQL database; clients
    /// take turns among their submission listeners.
    #[arg(long, default_value_t = 1, requires = "postgres", value_parser = clap::value_parser!(u8).range(1..=8))]
    pub nodes: u8,
    /// Internal: hold idle IMAPS connections to this address (the child process of the
    /// idle RSS measurement).
    #[arg(long, hide = true, requires = "ca")]
    pub hold_imaps: Option<SocketAddr>,
    /// Internal: the CA file for `--hold-imaps`.
    #[arg(long, hide = true)]
    pub ca: Option<PathBuf>,
}

/// Where a case sends its mail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    /// From alfa to alfa.
    Intra,
    /// From alfa to beta.
    Cross,
}

/// One load of the benchmark.
#[derive(Debug, Clone, Copy)]
struct Case {
    route: Route,
    /// Bytes of the message: about 4 KB of text or 1 MB with a PDF-like attachment.
    large: bool,
    recipients: usize,
    /// Messages per second for all clients together; `None`: as fast as they can.
    rate: Option<f64>,
}

impl Case {
    fn name(&self) -> String {
        format!(
            "{} {} {} rcpt{}",
            match self.route {
                Route::Intra => "intra",
                Route::Cross => "cross",
            },
            if self.large { "1MB+pdf" } else { "4KB" },
            self.recipients,
            match self.rate {
                Some(r) => format!(" @{r:.0}/s"),
                None => String::new(),
            }
        )
    }
}

/// The figures of one case.
#[derive(Debug, Clone, Serialize)]
struct CaseResult {
    name: String,
    accepted: u64,
    /// CPU time (user + system) of this process per accepted message, from the start of
    /// the case to the end of its drain: both gestori, every node, and the clients.
    cpu_ms_per_msg: f64,
    /// CPU time of the PostgreSQL server (postmaster and backends) per accepted message;
    /// `None` on the embedded store.
    db_cpu_ms_per_msg: Option<f64>,
    /// Refused (4xx/5xx) submissions.
    refused: u64,
    accepted_per_s: f64,
    /// Accepted messages over the time until the last delivery receipt arrived.
    completed_per_s: f64,
    signatures_per_s: f64,
    accept_p50_ms: f64,
    accept_p99_ms: f64,
    p50_ms: f64,
    p95_ms: f64,
    p99_ms: f64,
    lost: u64,
}

/// What `--json` prints.
#[derive(Debug, Serialize)]
struct Report {
    /// `sqlite`, or `postgresql` with the number of alfa's nodes.
    store: String,
    nodes: u8,
    cores: usize,
    load_average_at_start: String,
    clients: usize,
    /// The 1-recipient intra-gestore 4 KB case, at full speed (with `--cross-only`, the
    /// cross-gestore one).
    accepted_per_s: f64,
    p50_ms: f64,
    p95_ms: f64,
    p99_ms: f64,
    /// RSA signatures per second on all cores (the gestore's own signer, small content).
    rsa_signs_per_s: f64,
    signatures_per_message: u32,
    signing_limit_per_s: f64,
    ratio_to_signing_limit: f64,
    signatures_per_s: f64,
    /// Submission-to-acceptance p99 at half the accepted rate.
    half_load_accept_p99_ms: f64,
    /// The 1-recipient cross-gestore 4 KB case at full speed: completed/s over
    /// accepted/s (whether the queue keeps up), when that case ran.
    cross_completed_ratio: Option<f64>,
    /// Its end-to-end p99 at half its accepted rate.
    cross_half_load_p99_ms: Option<f64>,
    postfix_accepted_per_s: Option<f64>,
    ratio_to_postfix: Option<f64>,
    postfix_note: Option<String>,
    lost: u64,
    peak_rss_mb: f64,
    idle_imap_connections: usize,
    idle_imap_rss_mb: Option<f64>,
    rss_note: &'static str,
    cases: Vec<CaseResult>,
}

/// Signatures per 1-recipient intra-gestore message: acceptance receipt, transport
/// envelope, presa in carico, delivery receipt.
const SIGNATURES_PER_MESSAGE: u32 = 4;

/// Runs `pecd bench`.
pub fn run(args: BenchArgs) -> anyhow::Result<ExitCode> {
    // The gestori run here as under `pecd serve`.
    crate::serve::return_large_blocks();
    // Their log only when asked for (`RUST_LOG=warn` shows relay failures and retries):
    // the table and the progress lines are the bench's own output.
    if std::env::var_os("RUST_LOG").is_some() {
        crate::serve::init_logging(crate::config::LogFormat::Text);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    if let Some(addr) = args.hold_imaps {
        let ca = args.ca.as_deref().context("--hold-imaps needs --ca")?;
        let pem = std::fs::read(ca).with_context(|| format!("cannot read {}", ca.display()))?;
        runtime.block_on(client::hold_imaps(addr, &pem, args.idle_connections))?;
        return Ok(ExitCode::SUCCESS);
    }
    runtime.block_on(bench(&args))
}

/// A progress line, rewritten in place on a terminal (nothing when stderr is a file).
fn progress(line: &str) {
    let mut e = std::io::stderr();
    if e.is_terminal() {
        let _ = write!(e, "\r\x1b[2K{line}");
        let _ = e.flush();
    }
}

/// A line that stays: the end of a phase.
fn done(line: &str) {
    let mut e = std::io::stderr();
    if e.is_terminal() {
        let _ = write!(e, "\r\x1b[2K");
    }
    let _ = writeln!(e, "{line}");
}

/// A process's RSS figures in MB: (current, peak).
fn rss_mb() -> (f64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|kb| kb.parse::<f64>().ok())
            .map_or(0.0, |kb| kb / 1024.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

async fn bench(args: &BenchArgs) -> anyhow::Result<ExitCode> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let load = load
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ");
    let clients = args.clients.max(1);
    let full = |route, large, recipients| Case {
        route,
        large,
        recipients,
        rate: None,
    };
    let main = if args.cross_only {
        full(Route::Cross, false, 1)
    } else {
        full(Route::Intra, false, 1)
    };
    let mut cases = vec![main];
    for route in [Route::Intra, Route::Cross]
        .into_iter()
        .filter(|_| !args.main_only && !args.cross_only)
    {
        for large in [false, true] {
            for recipients in [1, RECIPIENTS] {
                if !(route == Route::Intra && !large && recipients == 1) {
                    cases.push(full(route, large, recipients));
                }
            }
        }
    }
    // The 4 KB 1-recipient cases (intra and cross) run again at half their rate.
    let halved = cases
        .iter()
        .filter(|c| !c.large && c.recipients == 1)
        .count();
    // Signing, every case, the half-load cases and Postfix share the time.
    let phases = (cases.len() + halved) as u32 + 2;
    let phase = Duration::from_secs(args.seconds).max(Duration::from_millis(200)) / phases;

    let server = if args.postgres {
        progress("starting a private PostgreSQL server...");
        Some(
            tokio::task::spawn_blocking(|| {
                std::panic::catch_unwind(pec_store::test_util::PgServer::start_durable)
            })
            .await
            .context("PostgreSQL")?
            .map_err(|_| {
                anyhow::anyhow!(
                    "cannot start PostgreSQL (are its binaries in PEC_PG_BIN or \
                     /usr/lib/postgresql/<version>/bin?)"
                )
            })?,
        )
    } else {
        None
    };
    let meter = Meter {
        db: server.as_ref().and_then(|s| s.postmaster_pid()),
    };
    let store = match &server {
        Some(_) => format!("postgresql, {} node(s)", args.nodes),
        None => "sqlite".to_string(),
    };
    progress("starting the gestori (argon2 for every lab mailbox)...");
    let connections = clients.max(args.idle_connections) + 20;
    let storage = lab::Storage {
        postgres: server.as_ref(),
        nodes: usize::from(args.nodes),
    };
    let gestori = Gestori::start(
        cases.len() + halved,
        connections,
        lab::Relay {
            sessions: args.relay_sessions,
            batch: args.relay_batch,
        },
        storage,
    )
    .await?;
    done(&format!(
        "gestori up on loopback ({cores} cores, load average {load}, store {store}, relay: {} sessions per destination, batches of {})",
        args.relay_sessions, args.relay_batch
    ));

    let idle_rss = match idle_imap(&gestori, args.idle_connections).await {
        Ok(rss) => Some(rss),
        Err(e) => {
            done(&format!("idle IMAP measurement failed: {e:#}"));
            None
        }
    };

    let rsa_signs_per_s = signing_limit(gestori.alfa.signer.clone(), cores, phase).await?;
    let signing_limit_per_s = rsa_signs_per_s / f64::from(SIGNATURES_PER_MESSAGE);
    done(&format!(
        "signing: {rsa_signs_per_s:.0} RSA signatures/s on {cores} threads → {signing_limit_per_s:.0} msg/s"
    ));

    let budget = args.max_mb_per_case.saturating_mul(1 << 20);
    let mut results = Vec::new();
    for (i, case) in cases.iter().enumerate() {
        results.push(
            run_case(
                &gestori,
                &meter,
                i,
                case,
                clients,
                phase,
                args.messages,
                budget,
            )
            .await?,
        );
    }
    let primary = results[0].clone();
    let full_results = results.clone();
    let mut half_results = Vec::new();
    for (case, result) in cases.iter().zip(&full_results) {
        if case.large || case.recipients != 1 {
            continue;
        }
        let half = Case {
            rate: Some((result.accepted_per_s / 2.0).max(1.0)),
            ..*case
        };
        let index = cases.len() + half_results.len();
        let result = run_case(
            &gestori,
            &meter,
            index,
            &half,
            clients,
            phase,
            args.messages,
            budget,
        )
        .await?;
        half_results.push((half.route, result));
    }
    let cross_full = cases
        .iter()
        .zip(&full_results)
        .find(|(c, _)| c.route == Route::Cross && !c.large && c.recipients == 1)
        .map(|(_, r)| r.clone());
    let cross_half = half_results
        .iter()
        .find(|(route, _)| *route == Route::Cross)
        .map(|(_, r)| r.clone());
    let half_load_accept_p99_ms = half_results.first().map_or(0.0, |(_, r)| r.accept_p99_ms);
    results.extend(half_results.into_iter().map(|(_, r)| r));

    let (postfix, postfix_note) = if args.no_postfix {
        (None, Some("skipped (--no-postfix)".to_string()))
    } else {
        match postfix(gestori.dir.path(), clients, phase, args.messages).await {
            Ok(rate) => (Some(rate), None),
            Err(e) => {
                done(&format!("postfix yardstick not run: {e:#}"));
                (None, Some(format!("not run: {e:#}")))
            }
        }
    };
    let (_, peak_rss) = rss_mb();
    gestori.stop().await;

    let report = Report {
        store,
        nodes: args.nodes,
        cores,
        load_average_at_start: load,
        clients,
        accepted_per_s: primary.accepted_per_s,
        p50_ms: primary.p50_ms,
        p95_ms: primary.p95_ms,
        p99_ms: primary.p99_ms,
        rsa_signs_per_s,
        signatures_per_message: SIGNATURES_PER_MESSAGE,
        signing_limit_per_s,
        ratio_to_signing_limit: primary.accepted_per_s / signing_limit_per_s,
        signatures_per_s: primary.signatures_per_s,
        half_load_accept_p99_ms,
        cross_completed_ratio: cross_full
            .map(|r| r.completed_per_s / r.accepted_per_s.max(f64::MIN_POSITIVE)),
        cross_half_load_p99_ms: cross_half.map(|r| r.p99_ms),
        postfix_accepted_per_s: postfix,
        ratio_to_postfix: postfix.map(|p| primary.accepted_per_s / p),
        postfix_note,
        lost: primary.lost,
        peak_rss_mb: peak_rss,
        idle_imap_connections: args.idle_connections,
        idle_imap_rss_mb: idle_rss,
        rss_note: "RSS of the pecd bench process, which runs both gestori; the idle IMAPS \
                   connections are held by a child process",
        cases: results,
    };
    let table = table(&report);
    if args.json {
        eprint!("{table}");
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{table}");
    }
    let lost: u64 = report.cases.iter().map(|c| c.lost).sum();
    let refused: u64 = report.cases.iter().map(|c| c.refused).sum();
    if lost > 0 || refused > 0 {
        eprintln!(
            "pecd bench: FAILED: {lost} acknowledged messages without their receipts, {refused} refused"
        );
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

fn table(r: &Report) -> String {
    let mut t = format!(
        "\nstore: {}\n{:<28} {:>9} {:>9} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>5} {:>8} {:>8}\n",
        r.store,
        "case",
        "accepted",
        "acc/s",
        "done/s",
        "sig/s",
        "acc p99",
        "e2e p50",
        "e2e p95",
        "e2e p99",
        "lost",
        "cpu ms",
        "db ms"
    );
    for c in &r.cases {
        t.push_str(&format!(
            "{:<28} {:>9} {:>9.1} {:>8.1} {:>8.0} {:>8.1} {:>8.1} {:>8.1} {:>8.1} {:>5} {:>8.2} {:>8}\n",
            c.name,
            c.accepted,
            c.accepted_per_s,
            c.completed_per_s,
            c.signatures_per_s,
            c.accept_p99_ms,
            c.p50_ms,
            c.p95_ms,
            c.p99_ms,
            c.lost,
            c.cpu_ms_per_msg,
            c.db_cpu_ms_per_msg
                .map_or("-".to_string(), |v| format!("{v:.2}")),
        ));
    }
    let opt = |v: Option<f64>, unit: &str| v.map_or("n/a".to_string(), |v| format!("{v:.1}{unit}"));
    t.push_str(&format!(
        "\nRSA signatures/s ({} cores): {:.0}; signing limit {:.0} msg/s ({} per message); \
         {} reaches {:.0}% of it\n\
         cross 4KB 1 rcpt: done/s over acc/s {}; e2e p99 at half load {}\n\
         Postfix to Maildir: {} msg/s; ratio pecd/Postfix {}{}\n\
         peak RSS {:.1} MB; RSS with {} idle IMAPS connections {}\n",
        r.cores,
        r.rsa_signs_per_s,
        r.signing_limit_per_s,
        r.signatures_per_message,
        r.cases.first().map_or("", |c| c.name.as_str()),
        100.0 * r.ratio_to_signing_limit,
        r.cross_completed_ratio
            .map_or("n/a".to_string(), |v| format!("{v:.2}")),
        opt(r.cross_half_load_p99_ms, " ms"),
        opt(r.postfix_accepted_per_s, ""),
        opt(r.ratio_to_postfix, ""),
        r.postfix_note
            .as_deref()
            .map_or(String::new(), |n| format!(" ({n})")),
        r.peak_rss_mb,
        r.idle_imap_connections,
        opt(r.idle_imap_rss_mb, " MB"),
    ));
    t
}

/// CPU time of this process and of the PostgreSQL server, read from `/proc`.
struct Meter {
    /// The postmaster's pid, when the gestori run on PostgreSQL.
    db: Option<u32>,
}

/// Clock ticks per second of `/proc`'s CPU times.
fn ticks_per_s() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 { t as f64 } else { 100.0 }
}

/// `(ppid, user + system ticks, user + system ticks of waited-for children)` of a
/// process, from `/proc/<pid>/stat`.
fn proc_times(pid: &str) -> Option<(u32, u64, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which may contain spaces: state is field 3.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let n = |i: usize| f.get(i - 3).and_then(|v| v.parse::<u64>().ok());
    Some((u32::try_from(n(4)?).ok()?, n(14)? + n(15)?, n(16)? + n(17)?))
}

impl Meter {
    /// CPU seconds so far: this process (its threads), and the database server (the
    /// postmaster, the backends it reaped and the ones alive).
    fn sample(&self) -> (f64, Option<f64>) {
        let hz = ticks_per_s();
        let own = proc_times("self").map_or(0.0, |(_, t, _)| t as f64 / hz);
        let db = self.db.map(|pm| {
            let mut ticks = proc_times(&pm.to_string()).map_or(0, |(_, t, c)| t + c);
            if let Ok(entries) = std::fs::read_dir("/proc") {
                for e in entries.flatten() {
                    let name = e.file_name();
                    let Some(pid) = name
                        .to_str()
                        .filter(|p| p.bytes().all(|b| b.is_ascii_digit()))
                    else {
                        continue;
                    };
                    if let Some((_, t, _)) = proc_times(pid).filter(|(pp, ..)| *pp == pm) {
                        ticks += t;
                    }
                }
            }
            ticks as f64 / hz
        });
        (own, db)
    }
}

/// RSS of this process (the gestori) while a child holds `n` idle IMAPS connections.
async fn idle_imap(g: &Gestori, n: usize) -> anyhow::Result<f64> {
    progress(&format!("opening {n} idle IMAPS connections..."));
    let exe = std::env::current_exe().context("cannot find the pecd binary")?;
    let mut child = std::process::Command::new(exe)
        .arg("bench")
        .arg("--hold-imaps")
        .arg(g.alfa.imaps.to_string())
        .arg("--ca")
        .arg(lab::ca_file(g.dir.path()))
        .arg("--idle-connections")
        .arg(n.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .context("cannot start the connection holder")?;
    let stdout = child.stdout.take().context("holder stdout")?;
    let line = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        std::io::BufReader::new(stdout)
            .read_line(&mut line)
            .map(|_| line)
    })
    .await
    .context("holder")??;
    let measured = if line.starts_with("ready") {
        tokio::time::sleep(Duration::from_millis(500)).await;
        Ok(rss_mb().0)
    } else {
        Err(anyhow::anyhow!("the holder could not open the connections"))
    };
    drop(child.stdin.take());
    let _ = tokio::task::spawn_blocking(move || child.wait()).await;
    if let Ok(rss) = measured {
        done(&format!("RSS with {n} idle IMAPS connections: {rss:.1} MB"));
    }
    measured
}

/// RSA signatures per second with the gestore's own signer over a small content, one
/// thread per core, for `time`.
async fn signing_limit(
    signer: Arc<dyn pec_proto::smime::Signer>,
    threads: usize,
    time: Duration,
) -> anyhow::Result<f64> {
    progress("measuring the signing limit...");
    let content = vec![b'x'; 1024];
    let start = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let signer = signer.clone();
            let content = content.clone();
            std::thread::spawn(move || {
                let mut n = 0u64;
                while start.elapsed() < time {
                    signer.sign_detached(&content, chrono::Utc::now())?;
                    n += 1;
                }
                pec_proto::Result::Ok(n)
            })
        })
        .collect();
    let total = tokio::task::spawn_blocking(move || {
        let mut total = 0;
        for h in handles {
            total += h
                .join()
                .map_err(|_| anyhow::anyhow!("a signing thread panicked"))??;
        }
        anyhow::Ok(total)
    })
    .await
    .context("signing")??;
    Ok(total as f64 / start.elapsed().as_secs_f64())
}

/// The message of a case: headers (with a unique Message-ID) and a body of about 4 KB
/// of text, or about 1 MB with a base64 PDF-like attachment.
fn message(from: &str, to: &[String], msgid: &str, body: &[u8]) -> Vec<u8> {
    let mut m = format!(
        "From: <{from}>\r\nTo: {}\r\nSubject: bench {msgid}\r\nMessage-ID: <{msgid}>\r\nDate: {}\r\n\
         MIME-Version: 1.0\r\n",
        to.iter().map(|t| format!("<{t}>")).collect::<Vec<_>>().join(", "),
        chrono::Utc::now().to_rfc2822(),
    )
    .into_bytes();
    m.extend_from_slice(body);
    m
}

/// The part of the message after the common headers.
fn body(large: bool) -> Vec<u8> {
    let line =
        "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor.\r\n";
    let text: String = line.repeat(4000 / line.len());
    if !large {
        return format!("Content-Type: text/plain; charset=utf-8\r\n\r\n{text}").into_bytes();
    }
    // A PDF-like attachment: a PDF header then pseudo-random bytes (incompressible).
    let mut pdf = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n".to_vec();
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    while pdf.len() < 760 * 1024 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        pdf.extend_from_slice(&x.to_le_bytes());
    }
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(&pdf);
    let mut out = format!(
        "Content-Type: multipart/mixed; boundary=\"bench-boundary\"\r\n\r\n\
         --bench-boundary\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{text}\r\n\
         --bench-boundary\r\nContent-Type: application/pdf; name=\"allegato.pdf\"\r\n\
         Content-Transfer-Encoding: base64\r\n\
         Content-Disposition: attachment; filename=\"allegato.pdf\"\r\n\r\n"
    );
    for chunk in b64.as_bytes().chunks(76) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push_str("\r\n");
    }
    out.push_str("--bench-boundary--\r\n");
    out.into_bytes()
}

/// What is known of one submitted message.
#[derive(Debug, Default, Clone, Copy)]
struct Tracked {
    submitted: Option<Instant>,
    /// Time of the `250`.
    accepted: Option<Duration>,
    acceptance_receipts: u32,
    delivery_receipts: u32,
    /// When the last expected delivery receipt was seen.
    delivered: Option<Instant>,
    failures: u32,
}

type Ledger = Arc<Mutex<HashMap<String, Tracked>>>;

/// The `X-Ricevuta` and `X-Riferimento-Message-ID` of a stored receipt (headers only).
fn receipt_header(bytes: &[u8]) -> Option<(String, String)> {
    let end = bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or(bytes.len());
    let head = String::from_utf8_lossy(&bytes[..end]);
    let mut kind = None;
    let mut reference = None;
    for line in head.split("\r\n") {
        if let Some((name, value)) = line.split_once(':') {
            let value = value.trim().trim_start_matches('<').trim_end_matches('>');
            if name.eq_ignore_ascii_case("X-Ricevuta") {
                kind = Some(value.to_string());
            } else if name.eq_ignore_ascii_case("X-Riferimento-Message-ID") {
                reference = Some(value.to_string());
            }
        }
    }
    Some((kind?, reference?))
}

/// Reads the new receipts of `sender`'s INBOX into the ledger; returns how many.
fn collect_receipts(
    store: &dyn Store,
    sender: &str,
    last_uid: &mut u32,
    expected: u32,
    ledger: &Ledger,
) -> usize {
    // UIDs are given in order, each by a committed delivery, and never expunged here: read
    // the next ones until there is none, so that the watcher's cost does not grow with the
    // mailbox (a SELECT counts the folder's messages). One that cannot be read now is read
    // at the next call; one that can never be read stops the count, and the drain then
    // reports the rest lost. (Skipping a UID that fails is not safe: it may be a delivery
    // committing at that moment.)
    let mut n = 0;
    while let Ok(bytes) = store.fetch(sender, "INBOX", *last_uid + 1) {
        *last_uid += 1;
        let Some((kind, reference)) = receipt_header(&bytes) else {
            continue;
        };
        n += 1;
        let now = Instant::now();
        let mut ledger = ledger.lock().unwrap_or_else(|p| p.into_inner());
        let t = ledger.entry(reference).or_default();
        match kind.as_str() {
            "accettazione" => t.acceptance_receipts += 1,
            "avvenuta-consegna" => {
                t.delivery_receipts += 1;
                if t.delivery_receipts == expected {
                    t.delivered = Some(now);
                }
            }
            _ => t.failures += 1,
        }
    }
    n
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

#[allow(clippy::too_many_arguments)]
async fn run_case(
    g: &Gestori,
    meter: &Meter,
    index: usize,
    case: &Case,
    clients: usize,
    time: Duration,
    max_messages: Option<u64>,
    data_budget: u64,
) -> anyhow::Result<CaseResult> {
    let name = case.name();
    let from = lab::sender(index);
    let domain = match case.route {
        Route::Intra => "pec.alfa.test",
        Route::Cross => "pec.beta.test",
    };
    let to: Arc<Vec<String>> = Arc::new(
        (0..case.recipients)
            .map(|i| lab::recipient(i, domain))
            .collect(),
    );
    let body = Arc::new(body(case.large));
    let by_data = (data_budget / (body.len() * case.recipients).max(1) as u64).max(1);
    let max_messages = Some(max_messages.map_or(by_data, |m| m.min(by_data)));
    let ledger: Ledger = Arc::default();
    let tls = pec_smtp::client_tls_config(
        &std::fs::read(lab::ca_file(g.dir.path())).context("the lab CA")?,
    )?;
    let signatures_before = g.signatures.load(Ordering::Relaxed);
    let cpu_before = meter.sample();

    // The watcher reads the sender's mailbox as receipts arrive.
    let stop_watch = Arc::new(AtomicBool::new(false));
    let receipts = Arc::new(AtomicU64::new(0));
    let watcher = {
        let (store, from, ledger, stop, receipts) = (
            g.alfa.store.clone(),
            from.clone(),
            ledger.clone(),
            stop_watch.clone(),
            receipts.clone(),
        );
        let expected = case.recipients as u32;
        std::thread::spawn(move || {
            let mut last_uid = 0;
            while !stop.load(Ordering::Relaxed) {
                let n = collect_receipts(store.as_ref(), &from, &mut last_uid, expected, &ledger);
                receipts.fetch_add(n as u64, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };

    let start = Instant::now();
    let deadline = start + time;
    let sent = Arc::new(AtomicU64::new(0));
    let accepted = Arc::new(AtomicU64::new(0));
    let refused = Arc::new(AtomicU64::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for c in 0..clients {
        let (tls, from, to, body, ledger) = (
            tls.clone(),
            from.clone(),
            to.clone(),
            body.clone(),
            ledger.clone(),
        );
        let (sent, accepted, refused) = (sent.clone(), accepted.clone(), refused.clone());
        let addr = g.submissions[c % g.submissions.len()];
        let rate = case.rate.map(|r| r / clients as f64);
        tasks.spawn(async move {
            let mut smtp = Smtp::submission(addr, &tls, &from, &lab::password(&from)).await?;
            let mut n: u64 = 0;
            loop {
                if let Some(rate) = rate {
                    let at = start + Duration::from_secs_f64(n as f64 / rate);
                    tokio::time::sleep_until(at.into()).await;
                }
                if Instant::now() >= deadline && n > 0 {
                    break;
                }
                if max_messages.is_some_and(|m| sent.fetch_add(1, Ordering::Relaxed) >= m) {
                    break;
                }
                let msgid = format!("bench-{index}-{c}-{n}@pec.alfa.test");
                let bytes = message(&from, &to, &msgid, &body);
                let submitted = Instant::now();
                ledger
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .entry(msgid.clone())
                    .or_default()
                    .submitted = Some(submitted);
                let (code, text) = smtp.send(&from, &to, &bytes).await?;
                let elapsed = submitted.elapsed();
                if code == 250 {
                    accepted.fetch_add(1, Ordering::Relaxed);
                    if let Some(t) = ledger
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .get_mut(&msgid)
                    {
                        t.accepted = Some(elapsed);
                    }
                } else {
                    refused.fetch_add(1, Ordering::Relaxed);
                    done(&format!("refused: {code} {text}"));
                }
                n += 1;
            }
            smtp.quit().await;
            anyhow::Ok(())
        });
    }
    join_clients(&mut tasks, || {
        format!(
            "[{name}] {:>5.1}s accepted {} ({:.0}/s), receipts {}",
            start.elapsed().as_secs_f64(),
            accepted.load(Ordering::Relaxed),
            accepted.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64(),
            receipts.load(Ordering::Relaxed),
        )
    })
    .await?;
    let load_time = start.elapsed();
    let queued = g
        .queue_lengths()
        .map(|n| n.map_or("?".to_string(), |n| n.to_string()));
    done(&format!(
        "[{name}] at the end of the load: {} receipts in, queues alfa {} beta {}",
        receipts.load(Ordering::Relaxed),
        queued[0],
        queued[1]
    ));
    let accepted = accepted.load(Ordering::Relaxed);
    let refused = refused.load(Ordering::Relaxed);

    // Drain: every receipt in, and nothing left queued (presa in carico included), or no
    // progress for 60 s.
    let expected = accepted * (1 + case.recipients as u64);
    let mut last = (receipts.load(Ordering::Relaxed), Instant::now());
    loop {
        let seen = receipts.load(Ordering::Relaxed);
        if seen >= expected && g.queues_empty() {
            break;
        }
        if seen != last.0 {
            last = (seen, Instant::now());
        } else if last.1.elapsed() > Duration::from_secs(60) {
            break;
        }
        progress(&format!(
            "[{name}] draining: receipts {seen}/{expected} ({:.1}s)",
            start.elapsed().as_secs_f64()
        ));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // One last read, then stop the watcher.
    tokio::time::sleep(Duration::from_millis(50)).await;
    stop_watch.store(true, Ordering::Relaxed);
    let _ = tokio::task::spawn_blocking(move || watcher.join()).await;
    let total_time = start.elapsed();
    let signatures = g.signatures.load(Ordering::Relaxed) - signatures_before;
    let cpu_after = meter.sample();

    let ledger = ledger.lock().unwrap_or_else(|p| p.into_inner());
    let expected_receipts = case.recipients as u32;
    let mut accept_ms = Vec::new();
    let mut e2e_ms = Vec::new();
    let mut lost = 0;
    let mut last_delivery = start;
    for t in ledger.values() {
        let (Some(submitted), Some(acc)) = (t.submitted, t.accepted) else {
            continue;
        };
        accept_ms.push(acc.as_secs_f64() * 1000.0);
        if t.acceptance_receipts != 1 || t.delivery_receipts != expected_receipts || t.failures > 0
        {
            lost += 1;
        }
        if let Some(d) = t.delivered {
            e2e_ms.push((d - submitted).as_secs_f64() * 1000.0);
            last_delivery = last_delivery.max(d);
        }
    }
    accept_ms.sort_by(f64::total_cmp);
    e2e_ms.sort_by(f64::total_cmp);
    let per_s = |n: u64, d: Duration| n as f64 / d.as_secs_f64().max(1e-9);
    let per_msg = |seconds: f64| 1000.0 * seconds / accepted.max(1) as f64;
    let result = CaseResult {
        name: name.clone(),
        accepted,
        cpu_ms_per_msg: per_msg(cpu_after.0 - cpu_before.0),
        db_cpu_ms_per_msg: cpu_after.1.zip(cpu_before.1).map(|(a, b)| per_msg(a - b)),
        refused,
        accepted_per_s: per_s(accepted, load_time),
        completed_per_s: per_s(accepted, last_delivery.duration_since(start)),
        signatures_per_s: per_s(signatures, total_time),
        accept_p50_ms: percentile(&accept_ms, 0.50),
        accept_p99_ms: percentile(&accept_ms, 0.99),
        p50_ms: percentile(&e2e_ms, 0.50),
        p95_ms: percentile(&e2e_ms, 0.95),
        p99_ms: percentile(&e2e_ms, 0.99),
        lost,
    };
    done(&format!(
        "[{name}] {} accepted, {:.1}/s, e2e p99 {:.0} ms, lost {}, CPU {:.2} ms/msg{}",
        result.accepted,
        result.accepted_per_s,
        result.p99_ms,
        result.lost,
        result.cpu_ms_per_msg,
        result
            .db_cpu_ms_per_msg
            .map_or(String::new(), |d| format!(" + database {d:.2} ms/msg")),
    ));
    Ok(result)
}

/// The same load as the main case, plain mail to a private Postfix delivering to a
/// Maildir (`interop/postfix.sh`); accepted messages per second, after checking every one
/// reached the Maildir.
async fn postfix(
    dir: &std::path::Path,
    clients: usize,
    time: Duration,
    max_messages: Option<u64>,
) -> anyhow::Result<f64> {
    let script = postfix_script().context("interop/postfix.sh not found")?;
    let pdir = dir.join("postfix");
    // Postfix's daemons run as `postfix` and must reach their queue under the bench's
    // private (0700) directory: let them traverse it, not list it.
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o711))
            .context("cannot open the bench directory to postfix")?;
    }
    // Below the ephemeral range, where outgoing connections cannot take it first.
    let port = pec_store::test_util::free_port();
    progress("starting postfix...");
    let out = std::process::Command::new("bash")
        .arg(&script)
        .arg("up")
        .arg(&pdir)
        .arg(port.to_string())
        .output()
        .context("cannot run bash")?;
    if !out.status.success() {
        bail!(
            "postfix did not start: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let result = postfix_load(&pdir, port, clients, time, max_messages).await;
    let _ = std::process::Command::new("bash")
        .arg(&script)
        .arg("down")
        .arg(&pdir)
        .output();
    result
}

/// `interop/postfix.sh`, found from the working directory or the binary's location.
fn postfix_script() -> Option<PathBuf> {
    let mut candidates = vec![PathBuf::from("interop/postfix.sh")];
    if let Ok(exe) = std::env::current_exe() {
        candidates.extend(exe.ancestors().map(|a| a.join("interop/postfix.sh")));
    }
    candidates.into_iter().find(|c| c.is_file())
}

async fn postfix_load(
    pdir: &std::path::Path,
    port: u16,
    clients: usize,
    time: Duration,
    max_messages: Option<u64>,
) -> anyhow::Result<f64> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let ready = Instant::now();
    while tokio::net::TcpStream::connect(addr).await.is_err() {
        if ready.elapsed() > Duration::from_secs(30) {
            bail!("postfix does not answer on {addr}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let body = Arc::new(body(false));
    let to = Arc::new(vec!["ordinaria@posta.ordinaria.test".to_string()]);
    let start = Instant::now();
    let deadline = start + time;
    let accepted = Arc::new(AtomicU64::new(0));
    let sent = Arc::new(AtomicU64::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for c in 0..clients {
        let (body, to, accepted, sent) = (body.clone(), to.clone(), accepted.clone(), sent.clone());
        tasks.spawn(async move {
            let mut smtp = Smtp::plain(addr).await?;
            let from = "mittente@posta.ordinaria.test";
            let mut n = 0u64;
            while Instant::now() < deadline || n == 0 {
                if max_messages.is_some_and(|m| sent.fetch_add(1, Ordering::Relaxed) >= m) {
                    break;
                }
                let bytes = message(
                    from,
                    &to,
                    &format!("pf-{c}-{n}@posta.ordinaria.test"),
                    &body,
                );
                let (code, text) = smtp.send(from, &to, &bytes).await?;
                if code != 250 {
                    bail!("postfix refused a message: {code} {text}");
                }
                accepted.fetch_add(1, Ordering::Relaxed);
                n += 1;
            }
            smtp.quit().await;
            anyhow::Ok(())
        });
    }
    join_clients(&mut tasks, || {
        format!(
            "[postfix 4KB 1 rcpt] {:>5.1}s accepted {}",
            start.elapsed().as_secs_f64(),
            accepted.load(Ordering::Relaxed),
        )
    })
    .await?;
    let rate = accepted.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64();
    let accepted = accepted.load(Ordering::Relaxed) as usize;
    // Its own check: every accepted message reaches the Maildir.
    let new = pdir.join("mail/ordinaria/new");
    let wait = Instant::now();
    loop {
        let n = std::fs::read_dir(&new).map_or(0, |d| d.count());
        if n >= accepted {
            break;
        }
        if wait.elapsed() > Duration::from_secs(60) {
            bail!("postfix delivered {n} of {accepted} accepted messages");
        }
        progress(&format!(
            "[postfix] draining: {n}/{accepted} in the Maildir"
        ));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    done(&format!(
        "[postfix 4KB 1 rcpt] {accepted} accepted, {rate:.1}/s"
    ));
    Ok(rate)
}

/// Waits for every client task, showing `status()` on the progress line four times a
/// second; the first failing client fails the case.
async fn join_clients(
    tasks: &mut tokio::task::JoinSet<anyhow::Result<()>>,
    status: impl Fn() -> String,
) -> anyhow::Result<()> {
    let mut ticker = tokio::time::interval(Duration::from_millis(250));
    loop {
        tokio::select! {
            r = tasks.join_next() => match r {
                None => return Ok(()),
                Some(r) => r.context("client task")??,
            },
            _ = ticker.tick() => progress(&status()),
        }
    }
}
