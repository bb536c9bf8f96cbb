//! A [`Store`] that fails on demand (feature `test-util`): tests wrap a real store in
//! [`Faulty`] to prove that a storage failure at any call site is reported as a temporary
//! condition — a `4xx`, a `NO [UNAVAILABLE]`, a retry — and never turned into an
//! outcome such as a signed notice, and that the work is done normally once the store
//! recovers.
//!
//! A fault is set per method, by name (`"account"`, `"commit_batch"`, ... or `"*"` for
//! every method): fail the n-th call from now, do the n-th call and then report a
//! failure (what a caller sees when the connection drops after a commit), or fail every
//! call until [`Faulty::heal`]. The injected error is an I/O error, as a failing disk or
//! network would give.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;

use crate::effects::EffectKey;
use crate::error::{Error, Result};
use crate::model::{
    Account, Admin, AdminChange, ApiToken, ArchiveEntry, ArchiveOptions, Batch, CheckReport,
    Committed, Copied, Delivered, Direction, Domain, DueNotice, Ente, EventQuery, FlagOp, Folder,
    LogEntry, LogHead, LogQuery, LogRecord, LogTimestamp, LogVerification, MailboxEvent,
    MessageMeta, NewAccount, NewLogTimestamp, NewQueueEntry, NewTimer, NewVirusEntry, NoticeKind,
    Outcome, QueueEntry, QueueSummary, RegistryEvent, SeenStored, Selected, Timer, Uptime, Usage,
    VirusEntry,
};
use crate::store::{Blobs, ChangeHook, Changes, Directory, Ledger, Mailboxes, Maintenance, Store};

/// How the calls of a method fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The n-th call from now (1 is the next one) fails without doing anything; the
    /// others go through.
    Nth(u64),
    /// The n-th call from now is done, then reported as failed.
    AfterNth(u64),
    /// Every call fails without doing anything, until [`Faulty::heal`].
    Always,
}

/// A fault and the calls counted since it was set.
#[derive(Debug, Clone, Copy)]
struct Armed {
    fault: Fault,
    seen: u64,
}

/// What to do with one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    Pass,
    FailBefore,
    FailAfter,
}

/// A store whose methods fail when told to; see the module documentation.
pub struct Faulty<S> {
    inner: S,
    armed: Mutex<HashMap<String, Armed>>,
    calls: Mutex<HashMap<&'static str, u64>>,
}

impl<S: Store> Faulty<S> {
    /// Wraps `inner`, with no fault set.
    pub fn new(inner: S) -> Self {
        Faulty {
            inner,
            armed: Mutex::new(HashMap::new()),
            calls: Mutex::new(HashMap::new()),
        }
    }

    /// The wrapped store, which never fails on purpose.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// Sets the fault of `method` (a [`Store`] method name, or `"*"` for all of them),
    /// replacing the one it had. Panics on a name that is no method, so that a
    /// misspelt test cannot pass by injecting nothing.
    pub fn fail(&self, method: &str, fault: Fault) {
        assert!(
            method == "*" || METHODS.contains(&method),
            "the Store trait has no method {method:?}"
        );
        lock(&self.armed).insert(method.to_string(), Armed { fault, seen: 0 });
    }

    /// Removes every fault: the store works again.
    pub fn heal(&self) {
        lock(&self.armed).clear();
    }

    /// How many times `method` was called (failed calls included).
    pub fn calls(&self, method: &str) -> u64 {
        lock(&self.calls).get(method).copied().unwrap_or(0)
    }

    /// Counts a call of `method` and decides its fate.
    fn fate(&self, method: &'static str) -> Fate {
        *lock(&self.calls).entry(method).or_default() += 1;
        let mut armed = lock(&self.armed);
        let mut fate = Fate::Pass;
        for name in [method, "*"] {
            if let Some(a) = armed.get_mut(name) {
                a.seen += 1;
                let this = match a.fault {
                    Fault::Always => Fate::FailBefore,
                    Fault::Nth(n) if a.seen == n => Fate::FailBefore,
                    Fault::AfterNth(n) if a.seen == n => Fate::FailAfter,
                    _ => Fate::Pass,
                };
                if fate == Fate::Pass {
                    fate = this;
                }
            }
        }
        fate
    }
}

/// Locks a mutex of the wrapper; a panicking test thread leaves the maps usable.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The error a failing call returns.
fn injected(method: &str) -> Error {
    Error::io(
        format!("<fault injected in {method}>"),
        std::io::Error::other("injected fault"),
    )
}

/// Implements each part of [`Store`] for [`Faulty`] by forwarding each listed method after
/// its fate is decided, and lists the method names.
macro_rules! forward {
    ($( impl $part:ident { $( fn $name:ident(&self $(, $arg:ident : $ty:ty)* ) -> $ret:ty; )* } )*) => {
        /// Every method of [`Store`] a fault can be set on.
        const METHODS: &[&str] = &[$($(stringify!($name)),*),*];

        $(
            impl<S: Store> $part for Faulty<S> {
                $(
                    fn $name(&self $(, $arg: $ty)*) -> $ret {
                        match self.fate(stringify!($name)) {
                            Fate::FailBefore => Err(injected(stringify!($name))),
                            Fate::FailAfter => {
                                let _done = self.inner.$name($($arg),*);
                                Err(injected(stringify!($name)))
                            }
                            Fate::Pass => self.inner.$name($($arg),*),
                        }
                    }
                )*
            }
        )*
    };
}

crate::methods::with_store_methods!(forward);

/// Changes of other nodes pass through: they are not calls that can fail.
impl<S: Store> Changes for Faulty<S> {
    fn subscribe(&self, hook: &ChangeHook) -> Result<()> {
        self.inner.subscribe(hook)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SqliteStore;

    #[test]
    fn faults_fire_as_set_and_heal() {
        let dir = tempfile::tempdir().unwrap();
        let store = Faulty::new(SqliteStore::open(dir.path()).unwrap());
        store.fail("add_domain", Fault::Nth(2));
        store.add_domain("a.it", 1).unwrap();
        assert!(store.add_domain("b.it", 1).is_err());
        store.add_domain("c.it", 1).unwrap();
        store.fail("add_domain", Fault::AfterNth(1));
        assert!(store.add_domain("d.it", 1).is_err(), "reported as failed");
        let names: Vec<String> = store
            .inner()
            .list_domains()
            .unwrap()
            .into_iter()
            .map(|d| d.name)
            .collect();
        assert_eq!(names, ["a.it", "c.it", "d.it"], "but done");
        store.fail("*", Fault::Always);
        assert!(store.list_domains().is_err());
        assert!(store.find_account("x@a.it").is_err(), "through account");
        store.heal();
        assert_eq!(store.find_account("x@a.it").unwrap(), None);
        assert_eq!(store.calls("add_domain"), 4);
        assert_eq!(store.calls("account"), 2);
    }

    #[test]
    #[should_panic(expected = "no method")]
    fn a_misspelt_method_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        Faulty::new(SqliteStore::open(dir.path()).unwrap()).fail("acount", Fault::Always);
    }
}
