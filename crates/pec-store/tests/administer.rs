//! Administrative changes on both backends: a change, its mailbox event and its legal
//! log record are stored together or not at all; an ente's allotment holds against
//! concurrent quota raises; suspension survives a password reset; API tokens are found by
//! their hash only and act for their administrator.

use std::sync::{Arc, Barrier};

use pec_store::test_util::{Backend, TestStore};
use pec_store::{
    Admin, AdminAction, AdminChange, ApiToken, Ente, Error, LogEntry, LogQuery, MAILBOX_CREATED,
    MAILBOX_SUSPENDED, MailboxEvent, NewAccount, Store, backend_tests,
};

const ALLOTMENT: u64 = 10 << 20;

fn log(target: &str, detail: &str) -> LogEntry {
    LogEntry {
        at: 1_760_000_000,
        at_local: "2025-10-09T10:53:20+02:00".into(),
        event: "amministrazione".into(),
        sender: "capo@a.test".into(),
        recipients: vec![target.into()],
        gestore: "Gestore di prova".into(),
        detail: detail.into(),
        ..LogEntry::default()
    }
}

fn change(action: AdminAction, target: &str, event: Option<&str>) -> AdminChange {
    AdminChange {
        action,
        event: event.map(|kind| MailboxEvent {
            address: target.into(),
            kind: kind.into(),
            at: 1_760_000_000,
        }),
        log: log(target, "prova"),
    }
}

fn create(address: &str, quota: u64) -> AdminChange {
    change(
        AdminAction::CreateMailbox(NewAccount {
            address: address.into(),
            password_hash: "$argon2id$h".into(),
            quota: Some(quota),
            receipts_folder: false,
        }),
        address,
        Some(MAILBOX_CREATED),
    )
}

fn set_quota(address: &str, quota: u64) -> AdminChange {
    change(
        AdminAction::SetQuota {
            address: address.into(),
            quota,
        },
        address,
        None,
    )
}

/// A store with domain `pec.a.test` owned by ente `alfa` (allotment [`ALLOTMENT`]) and
/// `pec.libero.test` of no ente.
fn setup(t: &TestStore) -> Arc<dyn Store> {
    let store = t.open();
    store.add_domain("pec.a.test", 1 << 20).unwrap();
    store.add_domain("pec.libero.test", 1 << 20).unwrap();
    store
        .add_ente(&Ente {
            name: "alfa".into(),
            domains: vec!["pec.a.test".into()],
            allotment: ALLOTMENT,
        })
        .unwrap();
    store
}

fn records(store: &dyn Store, address: &str) -> usize {
    store
        .search_log(&LogQuery {
            address: Some(address.into()),
            ..LogQuery::default()
        })
        .unwrap()
        .len()
}

fn changes_stand_or_fall_with_their_records(backend: Backend) {
    let t = TestStore::new(backend);
    let store = setup(&t);
    assert!(
        store
            .administer(&create("uno@pec.a.test", 6 << 20))
            .unwrap()
    );
    assert_eq!(store.account("uno@pec.a.test").unwrap().quota, 6 << 20);
    assert_eq!(records(store.as_ref(), "uno@pec.a.test"), 1);
    assert_eq!(store.mailbox_events(i64::MAX).unwrap().len(), 1);

    // Past the allotment: no mailbox, no event, no record.
    let refused = store.administer(&create("due@pec.a.test", 5 << 20));
    assert!(
        matches!(refused, Err(Error::AllotmentExceeded { ref ente, requested, allotment })
            if ente == "alfa" && requested == 11 << 20 && allotment == ALLOTMENT),
        "{refused:?}"
    );
    assert!(store.find_account("due@pec.a.test").unwrap().is_none());
    assert_eq!(records(store.as_ref(), "due@pec.a.test"), 0);
    assert_eq!(store.mailbox_events(i64::MAX).unwrap().len(), 1);
    assert!(matches!(
        store.administer(&set_quota("uno@pec.a.test", ALLOTMENT + 1)),
        Err(Error::AllotmentExceeded { .. })
    ));
    assert_eq!(store.account("uno@pec.a.test").unwrap().quota, 6 << 20);
    // A domain of no ente has no allotment.
    assert!(
        store
            .administer(&create("solo@pec.libero.test", 1 << 40))
            .unwrap()
    );

    // A change that fails records nothing either.
    assert!(matches!(
        store.administer(&set_quota("nessuno@pec.a.test", 1)),
        Err(Error::NoSuchAccount(_))
    ));
    assert_eq!(records(store.as_ref(), "nessuno@pec.a.test"), 0);

    // Suspension: once (the second changes nothing and records nothing), kept across a
    // password reset, taken off by reactivation.
    let suspend = |on: bool| {
        change(
            AdminAction::Suspend {
                address: "uno@pec.a.test".into(),
                on,
            },
            "uno@pec.a.test",
            Some(MAILBOX_SUSPENDED),
        )
    };
    assert!(store.administer(&suspend(true)).unwrap());
    assert!(!store.administer(&suspend(true)).unwrap());
    assert_eq!(records(store.as_ref(), "uno@pec.a.test"), 2);
    assert_eq!(store.mailbox_events(i64::MAX).unwrap().len(), 3);
    let reset = change(
        AdminAction::SetPassword {
            address: "uno@pec.a.test".into(),
            hash: "$argon2id$nuova".into(),
        },
        "uno@pec.a.test",
        None,
    );
    assert!(store.administer(&reset).unwrap());
    assert_eq!(
        store.account("uno@pec.a.test").unwrap().password_hash,
        "!$argon2id$nuova"
    );
    assert!(store.administer(&suspend(false)).unwrap());
    assert!(!store.administer(&suspend(false)).unwrap());
    assert_eq!(
        store.account("uno@pec.a.test").unwrap().password_hash,
        "$argon2id$nuova"
    );
    assert_eq!(records(store.as_ref(), "uno@pec.a.test"), 4);
    assert_eq!(store.verify_log().unwrap().fault, None);
}

/// Two raises that each fit but not together, started at once, many times: exactly one
/// passes each time and the quotas never pass the allotment.
fn concurrent_quota_raises_cannot_pass_the_allotment(backend: Backend) {
    let t = TestStore::new(backend);
    let store = setup(&t);
    for a in ["uno@pec.a.test", "due@pec.a.test"] {
        store.administer(&create(a, 3 << 20)).unwrap();
    }
    for round in 0..12 {
        for a in ["uno@pec.a.test", "due@pec.a.test"] {
            store.administer(&set_quota(a, 3 << 20)).unwrap();
        }
        let start = Arc::new(Barrier::new(2));
        let racers: Vec<_> = ["uno@pec.a.test", "due@pec.a.test"]
            .into_iter()
            .map(|a| {
                let (store, start) = (store.clone(), start.clone());
                std::thread::spawn(move || {
                    start.wait();
                    store.administer(&set_quota(a, 6 << 20))
                })
            })
            .collect();
        let results: Vec<_> = racers.into_iter().map(|r| r.join().unwrap()).collect();
        let passed = results.iter().filter(|r| r.is_ok()).count();
        let refused = results
            .iter()
            .filter(|r| matches!(r, Err(Error::AllotmentExceeded { .. })))
            .count();
        assert_eq!((passed, refused), (1, 1), "round {round}: {results:?}");
        let total: u64 = store
            .list_accounts(Some("pec.a.test"))
            .unwrap()
            .iter()
            .map(|a| a.quota)
            .sum();
        assert_eq!(total, 9 << 20, "round {round}");
    }
}

fn api_tokens_act_for_their_administrator(backend: Backend) {
    let t = TestStore::new(backend);
    let store = setup(&t);
    store
        .add_admin(&Admin {
            login: "capo@a.test".into(),
            ente: Some("alfa".into()),
            password_hash: "$argon2id$x".into(),
        })
        .unwrap();
    let token = |name: &str, hash: &str| ApiToken {
        login: "capo@a.test".into(),
        name: name.into(),
        hash: hash.into(),
        created_at: 1_760_000_000,
    };
    let make = |name: &str, hash: &str| {
        store.administer(&change(
            AdminAction::CreateToken(token(name, hash)),
            "capo@a.test",
            None,
        ))
    };
    let (h1, h2) = ("1".repeat(64), "2".repeat(64));
    assert!(make("protocollo", &h1).unwrap());
    assert!(make("contabilita", &h2).unwrap());
    assert!(matches!(
        make("protocollo", &"3".repeat(64)),
        Err(Error::AlreadyExists(_))
    ));
    assert_eq!(
        store.find_token(&h1).unwrap(),
        Some(Admin {
            login: "capo@a.test".into(),
            ente: Some("alfa".into()),
            password_hash: "$argon2id$x".into(),
        })
    );
    assert_eq!(store.find_token(&"f".repeat(64)).unwrap(), None);
    assert_eq!(
        store.list_tokens(Some("CAPO@a.test")).unwrap(),
        [token("contabilita", &h2), token("protocollo", &h1)]
    );
    assert!(store.list_tokens(Some("altro@a.test")).unwrap().is_empty());
    let revoke = |name: &str| {
        store.administer(&change(
            AdminAction::RevokeToken {
                login: "capo@a.test".into(),
                name: name.into(),
            },
            "capo@a.test",
            None,
        ))
    };
    assert!(revoke("protocollo").unwrap());
    assert!(matches!(revoke("protocollo"), Err(Error::NoSuchToken(_))));
    assert_eq!(store.find_token(&h1).unwrap(), None);
    assert_eq!(
        store.list_tokens(None).unwrap(),
        [token("contabilita", &h2)]
    );
    assert_eq!(records(store.as_ref(), "capo@a.test"), 3);
}

backend_tests!(
    changes_stand_or_fall_with_their_records,
    concurrent_quota_raises_cannot_pass_the_allotment,
    api_tokens_act_for_their_administrator
);
