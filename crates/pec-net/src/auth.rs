//! The one password check of the gestore, used by SMTP submission, IMAP and POP3.
//!
//! - **Bounded work.** An argon2 verification takes 19 MiB and tens of milliseconds of CPU.
//!   At most [`AuthLimits::workers`] run at once, on the blocking pool; more attempts wait
//!   their turn, so a burst of logins cannot take the memory of the machine. The work
//!   memory is kept between verifications, one buffer per worker at most, and released
//!   after [`AuthLimits::memory_idle`] without logins (module `work_memory`).
//! - **Unknown users cost the same.** A login for a user that does not exist is verified
//!   against a dummy hash with the real parameters, so the answer time does not tell
//!   whether an account exists.
//! - **Growing per-client penalty.** After failures from a client its next attempts wait
//!   2 s, 4 s, 8 s, then 15 s (by default), before any verification. Only that
//!   client waits: the rightful user logging in from elsewhere is never slowed down.
//!
//! - **New passwords too.** Hashing a new password ([`Authenticator::hash`], the
//!   administration API) costs what a verification costs, so it runs in the same pool.
//! - **Other secrets too.** A check that is not a password (an API token looked up by its
//!   hash: [`Authenticator::penalised`]) waits for and adds to the same penalty.
//!
//! Time is tokio's, so tests run the penalty on a paused clock.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::time::Instant;

use crate::password::{dummy_hash, hash_password, verify_in};
use crate::penalty::{Penalties, Policy};
use crate::work_memory::WorkMemory;
use crate::{Error, Result};

/// How much password checking a server allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthLimits {
    /// Verifications running at once (each holds 19 MiB while it runs).
    pub workers: usize,
    /// The wait before the next attempt after one failure; it doubles with each failure.
    pub penalty: Duration,
    /// The longest wait.
    pub penalty_max: Duration,
    /// A client without failures for this long starts afresh.
    pub penalty_forget: Duration,
    /// Most clients remembered with failures (bounded memory under a distributed attack).
    pub remembered_clients: usize,
    /// How long the work memory of the verifications (19 MiB per worker) is kept after
    /// the last one, so a stream of logins does not allocate it each time.
    pub memory_idle: Duration,
}

impl Default for AuthLimits {
    /// One verification per CPU; Dovecot's penalty (2 s doubling up to 15 s), forgotten
    /// after 10 minutes without failures; 65,536 clients remembered (a few MiB); work
    /// memory kept for 30 s after the last verification.
    fn default() -> Self {
        AuthLimits {
            workers: std::thread::available_parallelism().map_or(2, |n| n.get()),
            penalty: Duration::from_secs(2),
            penalty_max: Duration::from_secs(15),
            penalty_forget: Duration::from_secs(600),
            remembered_clients: 65_536,
            memory_idle: Duration::from_secs(30),
        }
    }
}

/// Counters of the verification pool.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AuthStats {
    /// Verifications (and hashings of new passwords) running now.
    pub running: usize,
    /// The most that ever ran at once.
    pub peak: usize,
    /// Verifications done, the dummy ones for unknown users included.
    pub verifications: u64,
    /// Work memory buffers kept for the next verifications (0 once idle).
    pub kept_buffers: usize,
}

#[derive(Default)]
struct Gauge {
    running: AtomicUsize,
    peak: AtomicUsize,
    verifications: AtomicU64,
}

/// The password check shared by every protocol of a server (see the module documentation).
pub struct Authenticator {
    pool: Arc<Semaphore>,
    penalties: Mutex<Penalties>,
    dummy: Arc<str>,
    gauge: Arc<Gauge>,
    memory: Arc<WorkMemory>,
    limits: AuthLimits,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("limits", &self.limits)
            .field("stats", &self.stats())
            .finish()
    }
}

impl Default for Authenticator {
    fn default() -> Self {
        Authenticator::new(AuthLimits::default())
    }
}

impl Authenticator {
    /// A check within `limits` (at least one worker, whatever `workers` says).
    pub fn new(limits: AuthLimits) -> Self {
        let policy = Policy {
            first: limits.penalty,
            max: limits.penalty_max,
            forget: limits.penalty_forget,
            capacity: limits.remembered_clients.max(1),
        };
        let workers = limits.workers.max(1);
        Authenticator {
            pool: Arc::new(Semaphore::new(workers)),
            penalties: Mutex::new(Penalties::new(policy)),
            dummy: dummy_hash().into(),
            gauge: Arc::default(),
            memory: Arc::new(WorkMemory::new(workers, limits.memory_idle)),
            limits,
        }
    }

    fn penalties(&self) -> std::sync::MutexGuard<'_, Penalties> {
        self.penalties.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether `password` matches `stored`, the account's PHC string (`None`: no such
    /// user, which is verified against the dummy hash all the same and always fails).
    /// Waits first for the penalty of `peer`'s earlier failures; records the outcome.
    pub async fn verify(&self, peer: IpAddr, password: &str, stored: Option<&str>) -> bool {
        let client = crate::peer::key(peer);
        let turn = self.penalties().admit(client, Instant::now());
        tokio::time::sleep_until(turn).await;
        let hash: Arc<str> = stored.map_or_else(|| self.dummy.clone(), Arc::from);
        let matched = self.run(password, hash).await && stored.is_some();
        if matched {
            self.penalties().succeeded(client);
        } else {
            self.penalties().failed(client, Instant::now());
        }
        matched
    }

    /// What `check` finds for a secret that is not a password (an API token): `None`
    /// is a failure. The penalty of `peer`'s earlier failures is waited first and the
    /// outcome recorded, as [`Authenticator::verify`] does for passwords.
    pub async fn penalised<T>(
        &self,
        peer: IpAddr,
        check: impl Future<Output = Option<T>>,
    ) -> Option<T> {
        let client = crate::peer::key(peer);
        let turn = self.penalties().admit(client, Instant::now());
        tokio::time::sleep_until(turn).await;
        let found = check.await;
        if found.is_some() {
            self.penalties().succeeded(client);
        } else {
            self.penalties().failed(client, Instant::now());
        }
        found
    }

    /// `password` hashed for storing ([`hash_password`]), in the pool: a new password
    /// costs what a verification costs, and waits its turn with them.
    pub async fn hash(&self, password: &str) -> Result<String> {
        let password = password.to_owned();
        self.in_pool(move || hash_password(&password))
            .await
            .unwrap_or_else(|| Err(Error::Password("the password pool stopped".into())))
    }

    /// One verification in the pool, in a kept work memory. If the session gives up
    /// waiting, the memory goes with the abandoned verification (freed, not kept).
    async fn run(&self, password: &str, hash: Arc<str>) -> bool {
        let password = password.to_owned();
        let gauge = self.gauge.clone();
        let memory = self.memory.clone();
        let verified = self.in_pool(move || {
            let mut blocks = memory.take();
            let ok = verify_in(&password, &hash, &mut blocks);
            gauge.verifications.fetch_add(1, Ordering::SeqCst);
            (ok, blocks)
        });
        let Some((ok, blocks)) = verified.await else {
            return false;
        };
        if let Some(due) = self.memory.give_back(blocks, Instant::now()) {
            tokio::spawn(release_when_idle(Arc::downgrade(&self.memory), due));
        }
        ok
    }

    /// Runs `work` in the pool: waits for a worker, runs on the blocking pool; `None` if
    /// the pool is closed or the work panicked. The permit goes with the work, so a
    /// caller that gives up waiting cannot let more than `workers` run.
    async fn in_pool<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Option<T> {
        let permit = self.pool.clone().acquire_owned().await.ok()?;
        let gauge = self.gauge.clone();
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let now = gauge.running.fetch_add(1, Ordering::SeqCst) + 1;
            gauge.peak.fetch_max(now, Ordering::SeqCst);
            let out = work();
            gauge.running.fetch_sub(1, Ordering::SeqCst);
            out
        })
        .await
        .ok()
    }

    /// The pool's counters, for tests and metrics.
    pub fn stats(&self) -> AuthStats {
        AuthStats {
            running: self.gauge.running.load(Ordering::SeqCst),
            peak: self.gauge.peak.load(Ordering::SeqCst),
            verifications: self.gauge.verifications.load(Ordering::SeqCst),
            kept_buffers: self.memory.kept(),
        }
    }
}

/// Drops the kept work memory once it has been idle long enough, checking at `due` and
/// again as long as verifications keep giving it back (one such task at a time).
async fn release_when_idle(memory: Weak<WorkMemory>, mut due: Instant) {
    loop {
        tokio::time::sleep_until(due).await;
        let Some(memory) = memory.upgrade() else {
            return;
        };
        match memory.release_if_idle(Instant::now()) {
            Some(next) => due = next,
            None => return,
        }
    }
}
