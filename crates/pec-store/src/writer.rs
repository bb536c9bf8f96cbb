//! Group commit: one thread owns the write connection; callers send it jobs
//! over a channel. The thread takes whatever is queued, runs every job in one
//! SQLite transaction (each inside its own savepoint, so a refused job — quota,
//! unknown folder — leaves no trace while the others proceed), commits once
//! (one fsync for the whole batch), and only then answers each caller.
//!
//! Many concurrent deliveries thus share the cost of a durable commit, and a
//! caller never hears "done" before its data is on disk.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::thread::{self, JoinHandle};

use rusqlite::{Connection, TransactionBehavior};

use crate::cached;
use crate::error::{Error, Result};

/// Most jobs applied in one transaction, so one batch cannot delay answers for long.
const MAX_BATCH: usize = 512;

/// Answers a caller once the batch's fate is known; the argument is the commit
/// error if the shared transaction failed.
type Reply = Box<dyn FnOnce(Option<&str>) + Send>;

/// A unit of work for the writer thread, type-erased over its result.
trait Job: Send {
    /// Applies the job inside the open transaction; `true` if it succeeded
    /// (its changes are kept), with the reply to send after the commit.
    fn run(self: Box<Self>, conn: &Connection) -> (bool, Reply);
    /// Answers the caller without running (the transaction could not start).
    fn abort(self: Box<Self>, why: &str);
}

/// A closure and the channel its caller waits on.
struct Task<T, F> {
    work: F,
    answer: mpsc::SyncSender<Result<T>>,
}

impl<T, F> Job for Task<T, F>
where
    T: Send + 'static,
    F: FnOnce(&Connection) -> Result<T> + Send,
{
    fn run(self: Box<Self>, conn: &Connection) -> (bool, Reply) {
        let result = (self.work)(conn);
        let ok = result.is_ok();
        let answer = self.answer;
        let reply: Reply = Box::new(move |commit_error| {
            let result = match commit_error {
                Some(why) if ok => Err(Error::Commit(why.to_string())),
                _ => result,
            };
            // The caller may have given up waiting; nothing to do then.
            let _ = answer.send(result);
        });
        (ok, reply)
    }

    fn abort(self: Box<Self>, why: &str) {
        let _ = self.answer.send(Err(Error::Commit(why.to_string())));
    }
}

/// Handle to the writer thread; dropping it lets the thread finish the queue and exit.
pub struct Writer {
    jobs: Option<Sender<Box<dyn Job>>>,
    thread: Option<JoinHandle<()>>,
    commits: Arc<AtomicU64>,
}

impl Writer {
    /// Starts the writer thread, which takes ownership of `conn`.
    pub fn start(conn: Connection) -> Result<Self> {
        let (jobs, queue) = mpsc::channel();
        let commits = Arc::new(AtomicU64::new(0));
        let counter = Arc::clone(&commits);
        let thread = thread::Builder::new()
            .name("pec-store-writer".into())
            .spawn(move || run(conn, queue, &counter))
            .map_err(|e| Error::io("<writer thread>", e))?;
        Ok(Writer {
            jobs: Some(jobs),
            thread: Some(thread),
            commits,
        })
    }

    /// Runs `work` in the next group transaction and returns its result once
    /// that transaction is durably committed (or the job's own error, in which
    /// case none of its changes were kept).
    pub fn submit<T, F>(&self, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let (answer, response) = mpsc::sync_channel(1);
        let job: Box<dyn Job> = Box::new(Task { work, answer });
        self.jobs
            .as_ref()
            .ok_or(Error::WriterStopped)?
            .send(job)
            .map_err(|_| Error::WriterStopped)?;
        response.recv().map_err(|_| Error::WriterStopped)?
    }

    /// How many transactions the writer has committed: with group commit this
    /// grows slower than the number of jobs under concurrency.
    pub fn commits(&self) -> u64 {
        self.commits.load(Ordering::Relaxed)
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        drop(self.jobs.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The writer thread: batch, apply, commit, answer — until every sender is gone.
fn run(mut conn: Connection, queue: Receiver<Box<dyn Job>>, commits: &AtomicU64) {
    while let Ok(first) = queue.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        apply(&mut conn, batch, commits);
    }
}

/// Applies one batch in one transaction and answers every job in it.
fn apply(conn: &mut Connection, batch: Vec<Box<dyn Job>>, commits: &AtomicU64) {
    let tx = match conn.transaction_with_behavior(TransactionBehavior::Immediate) {
        Ok(tx) => tx,
        Err(e) => {
            let why = e.to_string();
            batch.into_iter().for_each(|job| job.abort(&why));
            return;
        }
    };
    let mut replies = Vec::with_capacity(batch.len());
    let mut poisoned: Option<String> = None;
    let mut jobs = batch.into_iter();
    for job in jobs.by_ref() {
        if let Err(e) = cached::execute(&tx, "SAVEPOINT job", []) {
            poisoned = Some(e.to_string());
            job.abort(&e.to_string());
            break;
        }
        let (ok, reply) = job.run(&tx);
        replies.push(reply);
        let ended = if ok {
            cached::execute(&tx, "RELEASE job", [])
        } else {
            cached::execute(&tx, "ROLLBACK TO job", [])
                .and_then(|_| cached::execute(&tx, "RELEASE job", []))
        };
        if let Err(e) = ended {
            poisoned = Some(e.to_string());
            break;
        }
    }
    let outcome = match poisoned {
        // Dropping the transaction rolls everything back.
        Some(why) => Err(why),
        None => tx.commit().map_err(|e| e.to_string()),
    };
    match outcome {
        Ok(()) => {
            commits.fetch_add(1, Ordering::Relaxed);
            replies.into_iter().for_each(|reply| reply(None));
        }
        Err(why) => {
            replies.into_iter().for_each(|reply| reply(Some(&why)));
            jobs.for_each(|job| job.abort(&why));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn writer() -> (tempfile::TempDir, Writer) {
        let dir = tempfile::tempdir().unwrap();
        let conn = crate::schema::connect(&dir.path().join("w.db")).unwrap();
        conn.execute_batch("CREATE TABLE t (v INTEGER NOT NULL)")
            .unwrap();
        (dir, Writer::start(conn).unwrap())
    }

    fn count(dir: &tempfile::TempDir) -> i64 {
        let conn = crate::schema::connect(&dir.path().join("w.db")).unwrap();
        conn.query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap()
    }

    #[test]
    fn failed_job_leaves_no_trace_and_others_commit() {
        let (dir, w) = writer();
        w.submit(|c| Ok(c.execute("INSERT INTO t VALUES (1)", [])?))
            .unwrap();
        let refused: Result<()> = w.submit(|c| {
            c.execute("INSERT INTO t VALUES (2)", [])?;
            Err(Error::NoSuchMessage(2))
        });
        assert!(matches!(refused, Err(Error::NoSuchMessage(2))));
        assert_eq!(count(&dir), 1);
        assert_eq!(w.commits(), 2);
    }

    #[test]
    fn concurrent_jobs_share_commits() {
        let (dir, w) = writer();
        let w = Arc::new(w);
        let threads: Vec<_> = (0..16)
            .map(|_| {
                let w = Arc::clone(&w);
                thread::spawn(move || {
                    for _ in 0..25 {
                        w.submit(|c| Ok(c.execute("INSERT INTO t VALUES (1)", [])?))
                            .unwrap();
                    }
                })
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().unwrap());
        assert_eq!(count(&dir), 400);
        assert!(w.commits() <= 400);
    }
}
