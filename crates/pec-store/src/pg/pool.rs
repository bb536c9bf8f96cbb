//! The connections of the PostgreSQL backend and the threads that own them.
//!
//! The synchronous `postgres` client drives its connection with a tokio runtime of its
//! own, entered on the calling thread: called from inside another runtime (an IMAP
//! session, a `#[tokio::test]`) it panics. So no caller ever touches a connection: each
//! connection belongs to one worker thread of the [`Pool`], callers send it a job over a
//! channel and block on the answer (a std channel, which any thread may wait on). This is
//! the SQLite writer thread's shape, with several workers because PostgreSQL serves
//! concurrent transactions itself.
//!
//! A worker connects when its first job comes and again after its connection broke; a
//! job that found the connection broken before anything was sent runs again on a new
//! one. Every job is one transaction, retried when PostgreSQL aborts it to resolve a
//! conflict with another transaction (a deadlock, a serialization failure). A failure
//! to reach the server is [`Error::Unavailable`]: temporary, and the next call tries
//! again.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::mpsc::{self, Receiver, Sender, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};

use postgres::error::SqlState;
use postgres::{Client, IsolationLevel, NoTls, Transaction};

use crate::error::{Error, Result};

/// How many times a transaction aborted by a conflict with another one is run again.
const CONFLICT_RETRIES: usize = 8;

/// Whether a job changes the database (read-write transaction) or only reads it (one
/// read-only snapshot).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// READ COMMITTED, read-write: writers take the row locks they need.
    Write,
    /// REPEATABLE READ, read-only: one consistent snapshot, never aborted by a conflict.
    Read,
}

/// A unit of work for a worker, type-erased over its result.
trait Job: Send {
    /// Runs the job on `client`, answering its caller.
    fn run(self: Box<Self>, client: &mut Option<Client>, connect: &Connector);
}

/// A closure, how it accesses the database, and the channel its caller waits on.
struct Task<T, F> {
    access: Access,
    work: F,
    answer: SyncSender<Result<T>>,
}

impl<T, F> Job for Task<T, F>
where
    T: Send + 'static,
    F: Fn(&mut Transaction<'_>) -> Result<T> + Send,
{
    fn run(self: Box<Self>, client: &mut Option<Client>, connect: &Connector) {
        let result = catch_unwind(AssertUnwindSafe(|| {
            transact(client, connect, self.access, &self.work)
        }))
        .unwrap_or_else(|_| {
            // The connection may be mid-transaction: start afresh.
            *client = None;
            Err(Error::Unavailable("a store job panicked".into()))
        });
        // The caller may have given up waiting; nothing to do then.
        let _ = self.answer.send(result);
    }
}

/// Opens connections to one database.
pub struct Connector {
    config: postgres::Config,
}

impl Connector {
    /// A connector for `config`.
    pub fn new(config: postgres::Config) -> Self {
        Connector { config }
    }

    /// A new connection; failing to get one is [`Error::Unavailable`].
    pub fn connect(&self) -> Result<Client> {
        self.config
            .connect(NoTls)
            .map_err(|e| Error::Unavailable(format!("cannot connect to PostgreSQL: {e}")))
    }
}

/// Whether `e` means the connection is unusable (closed, reset, the server shutting
/// down): the worker drops it and connects again for the next job.
pub fn connection_lost(e: &postgres::Error) -> bool {
    if e.is_closed() {
        return true;
    }
    match e.code() {
        // Class 08: connection exception; 57P01-57P03: the server is going away.
        Some(code) => {
            code.code().starts_with("08")
                || *code == SqlState::ADMIN_SHUTDOWN
                || *code == SqlState::CRASH_SHUTDOWN
                || *code == SqlState::CANNOT_CONNECT_NOW
        }
        // No SQLSTATE: an I/O error of the socket.
        None => e.as_db_error().is_none(),
    }
}

/// The error itself, or the one inside a batch item.
fn root(e: &Error) -> &Error {
    match e {
        Error::BatchItem { source, .. } => source,
        other => other,
    }
}

/// Whether `e` is PostgreSQL aborting the transaction to settle a conflict with
/// another one: running it again is the cure.
fn conflict(e: &Error) -> bool {
    match root(e) {
        Error::Postgres(e) => matches!(
            e.code(),
            Some(c) if *c == SqlState::T_R_SERIALIZATION_FAILURE
                || *c == SqlState::T_R_DEADLOCK_DETECTED
        ),
        _ => false,
    }
}

/// How one run of a job failed.
enum Failure {
    /// The transaction could not start: nothing was done.
    Begin(postgres::Error),
    /// The job or its commit failed.
    Run(Error),
}

/// Runs `work` once in a new transaction on `conn`, and commits it.
fn attempt<T>(
    conn: &mut Client,
    access: Access,
    work: &dyn Fn(&mut Transaction<'_>) -> Result<T>,
) -> std::result::Result<T, Failure> {
    let builder = conn.build_transaction();
    let mut tx = match access {
        Access::Write => builder.isolation_level(IsolationLevel::ReadCommitted),
        Access::Read => builder
            .isolation_level(IsolationLevel::RepeatableRead)
            .read_only(true),
    }
    .start()
    .map_err(Failure::Begin)?;
    let value = work(&mut tx).map_err(Failure::Run)?;
    tx.commit().map_err(|e| Failure::Run(e.into()))?;
    Ok(value)
}

/// Runs `work` in one transaction on the worker's connection (made if needed), and runs
/// it again after a conflict. A connection found broken when the transaction starts is
/// replaced once, since nothing was done on it yet.
fn transact<T>(
    client: &mut Option<Client>,
    connect: &Connector,
    access: Access,
    work: &dyn Fn(&mut Transaction<'_>) -> Result<T>,
) -> Result<T> {
    let mut fresh_tries = 1;
    let mut conflicts = 0;
    loop {
        let conn = match client {
            Some(c) if !c.is_closed() => c,
            _ => client.insert(connect.connect()?),
        };
        match attempt(conn, access, work) {
            Ok(v) => return Ok(v),
            Err(Failure::Begin(e)) if connection_lost(&e) && fresh_tries > 0 => {
                fresh_tries -= 1;
                *client = None;
            }
            Err(Failure::Begin(e)) => return Err(settle(client, Error::Postgres(e))),
            Err(Failure::Run(e)) if conflict(&e) && conflicts < CONFLICT_RETRIES => {
                conflicts += 1;
            }
            Err(Failure::Run(e)) => return Err(settle(client, e)),
        }
    }
}

/// The error a job reports: a lost connection, even inside a batch item, is
/// [`Error::Unavailable`] (the item was not at fault), and the connection is dropped.
fn settle(client: &mut Option<Client>, e: Error) -> Error {
    if let Error::Postgres(pe) = root(&e)
        && connection_lost(pe)
    {
        *client = None;
        return Error::Unavailable(format!("connection to PostgreSQL lost: {pe}"));
    }
    e
}

/// Worker threads, each owning one connection, taking jobs from one queue.
pub struct Pool {
    jobs: Option<Sender<Box<dyn Job>>>,
    threads: Vec<JoinHandle<()>>,
}

impl Pool {
    /// Starts `size` workers (at least one) connecting with `connect` when they first
    /// need to.
    pub fn start(connect: Connector, size: usize) -> Result<Self> {
        let (jobs, queue) = mpsc::channel::<Box<dyn Job>>();
        let queue = Arc::new(Mutex::new(queue));
        let connect = Arc::new(connect);
        let mut threads = Vec::new();
        for i in 0..size.max(1) {
            let (queue, connect) = (Arc::clone(&queue), Arc::clone(&connect));
            let thread = thread::Builder::new()
                .name(format!("pec-store-pg-{i}"))
                .spawn(move || work(&queue, &connect))
                .map_err(|e| Error::io("<postgres worker thread>", e))?;
            threads.push(thread);
        }
        Ok(Pool {
            jobs: Some(jobs),
            threads,
        })
    }

    /// Runs `work` in one transaction on some worker's connection and returns its result
    /// once committed (or its error, in which case nothing of it was kept). `work` may
    /// run more than once (after a conflict), each time in a new transaction.
    pub fn run<T, F>(&self, access: Access, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: Fn(&mut Transaction<'_>) -> Result<T> + Send + 'static,
    {
        let (answer, response) = mpsc::sync_channel(1);
        let job: Box<dyn Job> = Box::new(Task {
            access,
            work,
            answer,
        });
        let stopped = || Error::Unavailable("the store's connections are closed".into());
        self.jobs
            .as_ref()
            .ok_or_else(stopped)?
            .send(job)
            .map_err(|_| stopped())?;
        response.recv().map_err(|_| stopped())?
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        drop(self.jobs.take());
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// A worker: takes the next job, runs it on its connection, until the pool is dropped.
fn work(queue: &Mutex<Receiver<Box<dyn Job>>>, connect: &Connector) {
    let mut client: Option<Client> = None;
    loop {
        let next = queue.lock().unwrap_or_else(|p| p.into_inner()).recv();
        match next {
            Ok(job) => job.run(&mut client, connect),
            Err(_) => return,
        }
    }
}
