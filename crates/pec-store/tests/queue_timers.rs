//! The outbound queue and the 12 h / 24 h timers (spec §7.3), with time
//! passed in so a whole day runs instantly.

use pec_store::test_util::{Backend, TestStore};
use pec_store::{
    Error, NewQueueEntry, NewTimer, NoticeKind, Outcome, QueueSummary, Store, TWELVE_HOURS,
    TWENTY_FOUR_HOURS, backend_tests,
};

const HOUR: i64 = 3600;
/// Dispatch time of every transaction in these tests.
const T0: i64 = 1_700_000_000;

fn open(backend: Backend) -> TestStore {
    TestStore::new(backend)
}

fn queued(n: u32, created_at: i64) -> NewQueueEntry {
    NewQueueEntry {
        msgid: format!("<opec.{n}@pec.example.it>"),
        mail_from: "posta-certificata@pec.example.it".into(),
        rcpt_to: vec![format!("r{n}@pec.other.it"), "x@pec.other.it".into()],
        domain: "pec.other.it".into(),
        message: format!("envelope {n}\r\n").into_bytes(),
        created_at,
        due_at: created_at,
        expires_at: created_at + TWENTY_FOUR_HOURS,
    }
}

fn queue_due_retry_complete_across_reopen(backend: Backend) {
    let t = open(backend);
    let store = &t.store;
    assert_eq!(store.queue_summary().unwrap(), QueueSummary::default());
    let a = store.enqueue(&queued(1, T0)).unwrap();
    let b = store.enqueue(&queued(2, T0 + 1)).unwrap();
    let summary = QueueSummary {
        entries: 2,
        oldest_created_at: Some(T0),
    };
    assert_eq!(store.queue_summary().unwrap(), summary);
    assert_eq!(a.next_attempt_at, T0);
    assert_eq!((a.attempts, a.last_error.clone()), (0, None));
    assert_eq!(store.read_blob(&a.hash).unwrap(), b"envelope 1\r\n");

    assert!(store.queue_due(T0 - 1, 10).unwrap().is_empty());
    assert_eq!(store.queue_due(T0, 10).unwrap(), vec![a.clone()]);
    assert_eq!(
        store.queue_due(T0 + 1, 10).unwrap(),
        vec![a.clone(), b.clone()]
    );
    assert_eq!(store.queue_due(T0 + 1, 1).unwrap(), vec![a.clone()]);

    let retried = store
        .queue_retry(a.id, T0 + 600, "421 4.7.0 try later")
        .unwrap();
    assert_eq!(retried.attempts, 1);
    assert_eq!(retried.next_attempt_at, T0 + 600);
    assert_eq!(retried.last_error.as_deref(), Some("421 4.7.0 try later"));
    let due: Vec<i64> = store
        .queue_due(T0 + 300, 10)
        .unwrap()
        .iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(due, vec![b.id]);
    store.queue_complete(b.id).unwrap();
    let store = t.open();
    assert_eq!(store.list_queue().unwrap(), vec![retried.clone()]);
    assert_eq!(store.queue_due(T0 + 600, 10).unwrap(), vec![retried]);
    assert_eq!(store.read_blob(&a.hash).unwrap(), b"envelope 1\r\n");
    assert_eq!(
        store.queue_summary().unwrap(),
        QueueSummary {
            entries: 1,
            oldest_created_at: Some(T0)
        },
        "a retry keeps its age"
    );
    store.queue_complete(a.id).unwrap();
    assert!(store.list_queue().unwrap().is_empty());
    assert_eq!(store.queue_summary().unwrap(), QueueSummary::default());
    assert!(matches!(
        store.queue_complete(a.id),
        Err(Error::NoSuchQueueEntry(id)) if id == a.id
    ));
}

fn expired_entry_is_due_at_expiry_and_fail_returns_it(backend: Backend) {
    let t = open(backend);
    let store = &t.store;
    let e = store.enqueue(&queued(1, T0)).unwrap();
    assert!(!e.is_expired(T0 + 23 * HOUR));
    // A retry scheduled past expiry is brought back to the expiry.
    let r = store
        .queue_retry(e.id, T0 + 30 * HOUR, "connection refused")
        .unwrap();
    assert_eq!(r.next_attempt_at, e.expires_at);
    assert!(store.queue_due(e.expires_at - 1, 10).unwrap().is_empty());
    let due = store.queue_due(e.expires_at, 10).unwrap();
    assert_eq!(due.len(), 1);
    assert!(due[0].is_expired(e.expires_at));

    let failed = store.queue_fail(e.id).unwrap();
    assert_eq!(failed, r);
    assert!(store.list_queue().unwrap().is_empty());
    assert!(matches!(
        store.queue_fail(e.id),
        Err(Error::NoSuchQueueEntry(_))
    ));
    let store = t.open();
    assert!(store.list_queue().unwrap().is_empty());
}

/// Timers for `recipients` of transaction `id`, dispatched at [`T0`].
fn start(store: &dyn Store, id: &str, recipients: &[&str]) {
    let timers: Vec<NewTimer> = recipients
        .iter()
        .map(|r| NewTimer {
            identificativo: id.into(),
            recipient: r.to_string(),
            sender: "mario.rossi@pec.example.it".into(),
            subject: "Contratto".into(),
            dispatched_at: T0,
            envelope: None,
        })
        .collect();
    store.start_timers(&timers).unwrap();
}

/// The notices due at `now` (24 h threshold exactly 24 h), as (kind, recipient).
fn due(store: &dyn Store, now: i64) -> Vec<(NoticeKind, String)> {
    store
        .due_notices(now, TWENTY_FOUR_HOURS)
        .unwrap()
        .into_iter()
        .map(|d| (d.kind, d.timer.recipient))
        .collect()
}

/// Sends every notice due at `now`, as the timer worker would.
fn send_due(store: &dyn Store, now: i64) -> Vec<(NoticeKind, String)> {
    let notices = due(store, now);
    for (kind, recipient) in &notices {
        store.mark_notice_sent("opec.1", recipient, *kind).unwrap();
    }
    notices
}

const R: &str = "luigi@pec.other.it";

fn presa_in_carico_within_12h_gives_only_the_24h_notice(backend: Backend) {
    let t = open(backend);
    let store = &t.store;
    start(store.as_ref(), "opec.1", &[R]);
    assert_eq!(
        store
            .mark_presa_in_carico("opec.1", &[R.to_uppercase()], T0 + HOUR)
            .unwrap(),
        1
    );
    assert!(send_due(store.as_ref(), T0 + TWELVE_HOURS).is_empty());
    assert!(send_due(store.as_ref(), T0 + 23 * HOUR).is_empty());
    assert_eq!(
        send_due(store.as_ref(), T0 + TWENTY_FOUR_HOURS),
        vec![(NoticeKind::TwentyFour, R.to_string())]
    );
    assert!(send_due(store.as_ref(), T0 + 48 * HOUR).is_empty());
    let t = &store.timers("opec.1").unwrap()[0];
    assert_eq!(t.presa_in_carico_at, Some(T0 + HOUR));
    assert_eq!(t.outcome, Outcome::Timeout24);
    assert!(!t.notice12_sent && t.notice24_sent && !t.delivered);
}

fn nothing_at_all_gives_both_notices(backend: Backend) {
    let t = open(backend);
    let store = &t.store;
    start(store.as_ref(), "opec.1", &[R]);
    assert!(send_due(store.as_ref(), T0 + TWELVE_HOURS - 1).is_empty());
    assert_eq!(
        send_due(store.as_ref(), T0 + TWELVE_HOURS),
        vec![(NoticeKind::Twelve, R.to_string())]
    );
    assert!(send_due(store.as_ref(), T0 + 20 * HOUR).is_empty());
    assert!(send_due(store.as_ref(), T0 + TWENTY_FOUR_HOURS - 1).is_empty());
    assert_eq!(
        send_due(store.as_ref(), T0 + TWENTY_FOUR_HOURS),
        vec![(NoticeKind::TwentyFour, R.to_string())]
    );
    assert!(send_due(store.as_ref(), T0 + 72 * HOUR).is_empty());
    let t = &store.timers("opec.1").unwrap()[0];
    assert!(t.notice12_sent && t.notice24_sent);
    assert_eq!(t.outcome, Outcome::Timeout24);
}

fn delivery_between_12h_and_24h_gives_only_the_12h_notice(backend: Backend) {
    let t = open(backend);
    let store = &t.store;
    start(store.as_ref(), "opec.1", &[R]);
    assert_eq!(
        send_due(store.as_ref(), T0 + TWELVE_HOURS),
        vec![(NoticeKind::Twelve, R.to_string())]
    );
    let t = store.mark_outcome("opec.1", R, Outcome::Delivered).unwrap();
    assert_eq!(t.outcome, Outcome::Delivered);
    assert!(t.delivered);
    assert!(send_due(store.as_ref(), T0 + TWENTY_FOUR_HOURS).is_empty());
    assert!(send_due(store.as_ref(), T0 + 48 * HOUR).is_empty());
}

fn error_and_virus_outcomes_stop_the_timers(backend: Backend) {
    let t = open(backend);
    let store = &t.store;
    start(
        store.as_ref(),
        "opec.1",
        &["a@pec.other.it", "b@pec.other.it", "c@pec.other.it"],
    );
    store
        .mark_outcome("opec.1", "a@pec.other.it", Outcome::Error)
        .unwrap();
    store
        .mark_outcome("opec.1", "B@PEC.OTHER.IT", Outcome::Virus)
        .unwrap();
    // Only the recipient without an outcome is still tracked.
    assert_eq!(
        due(store.as_ref(), T0 + TWENTY_FOUR_HOURS),
        vec![
            (NoticeKind::Twelve, "c@pec.other.it".to_string()),
            (NoticeKind::TwentyFour, "c@pec.other.it".to_string())
        ]
    );
    // An error after the 12 h notice stops the 24 h one.
    assert_eq!(send_due(store.as_ref(), T0 + TWELVE_HOURS).len(), 1);
    store
        .mark_outcome("opec.1", "c@pec.other.it", Outcome::Error)
        .unwrap();
    assert!(due(store.as_ref(), T0 + 48 * HOUR).is_empty());
    let outcomes: Vec<Outcome> = store
        .timers("opec.1")
        .unwrap()
        .iter()
        .map(|t| t.outcome)
        .collect();
    assert_eq!(
        outcomes,
        vec![Outcome::Error, Outcome::Virus, Outcome::Error]
    );
}

fn presa_in_carico_covers_only_its_recipients(backend: Backend) {
    let t = open(backend);
    let store = &t.store;
    start(
        store.as_ref(),
        "opec.1",
        &["a@pec.other.it", "b@pec.other.it"],
    );
    let covered = [
        "a@pec.other.it".to_string(),
        "nobody@pec.other.it".to_string(),
    ];
    assert_eq!(
        store
            .mark_presa_in_carico("opec.1", &covered, T0 + 60)
            .unwrap(),
        1
    );
    // A second presa in carico does not move the first one's time.
    assert_eq!(
        store
            .mark_presa_in_carico("opec.1", &covered, T0 + 120)
            .unwrap(),
        0
    );
    assert_eq!(
        due(store.as_ref(), T0 + TWELVE_HOURS),
        vec![(NoticeKind::Twelve, "b@pec.other.it".to_string())]
    );
}

fn twenty_four_hour_threshold_is_a_parameter(backend: Backend) {
    let t = open(backend);
    let store = &t.store;
    start(store.as_ref(), "opec.1", &[R]);
    store
        .mark_presa_in_carico("opec.1", &[R.to_string()], T0 + 60)
        .unwrap();
    let early = 22 * HOUR;
    assert!(store.due_notices(T0 + early - 1, early).unwrap().is_empty());
    let d = store.due_notices(T0 + early, early).unwrap();
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].kind, NoticeKind::TwentyFour);
    assert_eq!(d[0].timer.subject, "Contratto");
    assert_eq!(d[0].timer.sender, "mario.rossi@pec.example.it");
}

fn late_delivery_after_the_24h_notice_is_recorded_but_keeps_the_outcome(backend: Backend) {
    let t = open(backend);
    let store = &t.store;
    start(store.as_ref(), "opec.1", &[R]);
    send_due(store.as_ref(), T0 + TWENTY_FOUR_HOURS);
    let t = store.mark_outcome("opec.1", R, Outcome::Delivered).unwrap();
    assert_eq!(t.outcome, Outcome::Timeout24);
    assert!(t.delivered);
}

fn timers_are_all_or_none_and_survive_reopen(backend: Backend) {
    let t = open(backend);
    let store = &t.store;
    start(store.as_ref(), "opec.1", &[R]);
    let again = [
        NewTimer {
            identificativo: "opec.1".into(),
            recipient: "new@pec.other.it".into(),
            sender: "s@pec.example.it".into(),
            subject: String::new(),
            dispatched_at: T0,
            envelope: None,
        },
        NewTimer {
            identificativo: "opec.1".into(),
            recipient: R.to_uppercase(),
            sender: "s@pec.example.it".into(),
            subject: String::new(),
            dispatched_at: T0,
            envelope: None,
        },
    ];
    assert!(matches!(
        store.start_timers(&again),
        Err(Error::AlreadyExists(_))
    ));
    let missing = NewTimer {
        envelope: Some("0".repeat(64)),
        ..again[0].clone()
    };
    assert!(matches!(
        store.start_timers(&[missing]),
        Err(Error::BlobMissing(_))
    ));
    assert!(matches!(
        store.mark_outcome("opec.1", "nobody@x.it", Outcome::Error),
        Err(Error::NoSuchTimer { .. })
    ));
    assert!(matches!(
        store.mark_notice_sent("opec.2", R, NoticeKind::Twelve),
        Err(Error::NoSuchTimer { .. })
    ));
    store
        .mark_notice_sent("opec.1", R, NoticeKind::Twelve)
        .unwrap();
    let store = t.open();
    let timers = store.timers("opec.1").unwrap();
    assert_eq!(timers.len(), 1);
    assert!(timers[0].notice12_sent);
    assert_eq!(
        due(store.as_ref(), T0 + TWENTY_FOUR_HOURS),
        vec![(NoticeKind::TwentyFour, R.to_string())]
    );
}

backend_tests!(
    queue_due_retry_complete_across_reopen,
    expired_entry_is_due_at_expiry_and_fail_returns_it,
    presa_in_carico_within_12h_gives_only_the_24h_notice,
    nothing_at_all_gives_both_notices,
    delivery_between_12h_and_24h_gives_only_the_12h_notice,
    error_and_virus_outcomes_stop_the_timers,
    presa_in_carico_covers_only_its_recipients,
    twenty_four_hour_threshold_is_a_parameter,
    late_delivery_after_the_24h_notice_is_recorded_but_keeps_the_outcome,
    timers_are_all_or_none_and_survive_reopen,
);
