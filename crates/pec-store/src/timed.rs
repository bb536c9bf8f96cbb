//! A [`Store`] that measures how long each call takes and tells an observer, so that the
//! server's metrics show the store's latency per method without the store knowing about
//! metrics.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::effects::EffectKey;
use crate::error::Result;
use crate::model::{
    Account, Admin, AdminChange, ApiToken, ArchiveEntry, ArchiveOptions, Batch, CheckReport,
    Committed, Copied, Delivered, Direction, Domain, DueNotice, Ente, EventQuery, FlagOp, Folder,
    LogEntry, LogHead, LogQuery, LogRecord, LogTimestamp, LogVerification, MailboxEvent,
    MessageMeta, NewAccount, NewLogTimestamp, NewQueueEntry, NewTimer, NewVirusEntry, NoticeKind,
    Outcome, QueueEntry, QueueSummary, RegistryEvent, SeenStored, Selected, Timer, Uptime, Usage,
    VirusEntry,
};
use crate::store::{Blobs, ChangeHook, Changes, Directory, Ledger, Mailboxes, Maintenance, Store};

/// Told the method name and duration of every call, failed ones included.
pub type CallObserver = Arc<dyn Fn(&'static str, Duration) + Send + Sync>;

/// A store whose calls are timed; see the module documentation.
pub struct Timed {
    inner: Arc<dyn Store>,
    observe: CallObserver,
}

impl Timed {
    /// Wraps `inner`, reporting each call to `observe`.
    pub fn new(inner: Arc<dyn Store>, observe: CallObserver) -> Self {
        Timed { inner, observe }
    }
}

/// Implements each part of [`Store`] for [`Timed`]: forward the call, report its time.
macro_rules! timed {
    ($( impl $part:ident { $( fn $name:ident(&self $(, $arg:ident : $ty:ty)* ) -> $ret:ty; )* } )*) => {
        $(
            impl $part for Timed {
                $(
                    fn $name(&self $(, $arg: $ty)*) -> $ret {
                        let start = Instant::now();
                        let result = self.inner.$name($($arg),*);
                        (self.observe)(stringify!($name), start.elapsed());
                        result
                    }
                )*
            }
        )*
    };
}

crate::methods::with_store_methods!(timed);

/// Subscribing is no store operation worth timing.
impl Changes for Timed {
    fn subscribe(&self, hook: &ChangeHook) -> Result<()> {
        self.inner.subscribe(hook)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::SqliteStore;

    #[test]
    fn every_call_is_reported_with_its_method() {
        let dir = tempfile::tempdir().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        let store = Timed::new(
            Arc::new(SqliteStore::open(dir.path()).unwrap()),
            Arc::new(move |method, _| log.lock().unwrap().push(method)),
        );
        store.add_domain("a.it", 1).unwrap();
        assert!(store.add_domain("a.it", 1).is_err());
        assert_eq!(store.list_domains().unwrap().len(), 1);
        assert_eq!(
            *seen.lock().unwrap(),
            ["add_domain", "add_domain", "list_domains"]
        );
    }
}
