//! Enti, their administrators and the mailbox events billing counts, on both backends:
//! what the administration rules (pec-gestore `admin`) rely on.

use pec_store::test_util::{Backend, TestStore};
use pec_store::{
    Admin, Ente, Error, MAILBOX_CREATED, MAILBOX_REMOVED, MAILBOX_SUSPENDED, MailboxEvent,
    backend_tests,
};

fn ente(name: &str, domains: &[&str]) -> Ente {
    Ente {
        name: name.into(),
        domains: domains.iter().map(|d| d.to_string()).collect(),
        allotment: 5 << 30,
    }
}

fn enti_own_hosted_domains_once(backend: Backend) {
    let t = TestStore::new(backend);
    let store = t.open();
    store.add_domain("pec.b.test", 1 << 30).unwrap();
    store.add_domain("pec.a.test", 1 << 30).unwrap();
    store.add_domain("pec.c.test", 1 << 30).unwrap();
    store
        .add_ente(&ente("zeta", &["PEC.B.test", "pec.a.test"]))
        .unwrap();
    // Refused, and nothing of them stored: a domain not hosted, one owned already, a
    // name taken.
    assert!(matches!(
        store.add_ente(&ente("alfa", &["pec.c.test", "pec.nessuno.test"])),
        Err(Error::NoSuchDomain(d)) if d == "pec.nessuno.test"
    ));
    assert!(matches!(
        store.add_ente(&ente("alfa", &["pec.c.test", "pec.a.test"])),
        Err(Error::AlreadyExists(d)) if d == "pec.a.test"
    ));
    assert!(matches!(
        store.add_ente(&ente("zeta", &["pec.c.test"])),
        Err(Error::AlreadyExists(_))
    ));
    store.add_ente(&ente("alfa", &[])).unwrap();
    assert_eq!(
        store.list_enti().unwrap(),
        [
            ente("alfa", &[]),
            ente("zeta", &["pec.a.test", "pec.b.test"])
        ]
    );
}

fn administrators_of_an_ente_or_of_the_gestore(backend: Backend) {
    let t = TestStore::new(backend);
    let store = t.open();
    store.add_domain("pec.a.test", 1 << 30).unwrap();
    store.add_ente(&ente("alfa", &["pec.a.test"])).unwrap();
    let admin = |login: &str, ente: Option<&str>| Admin {
        login: login.into(),
        ente: ente.map(str::to_string),
        password_hash: "$argon2id$x".into(),
    };
    store
        .add_admin(&admin("Capo@A.test", Some("alfa")))
        .unwrap();
    store.add_admin(&admin("provincia@p.test", None)).unwrap();
    assert!(matches!(
        store.add_admin(&admin("x@a.test", Some("beta"))),
        Err(Error::NoSuchEnte(e)) if e == "beta"
    ));
    assert!(matches!(
        store.add_admin(&admin("capo@a.test", None)),
        Err(Error::AlreadyExists(_))
    ));
    assert_eq!(
        store.find_admin("CAPO@a.test").unwrap(),
        Some(admin("capo@a.test", Some("alfa")))
    );
    assert_eq!(
        store.find_admin("provincia@p.test").unwrap(),
        Some(admin("provincia@p.test", None))
    );
    assert_eq!(store.find_admin("x@a.test").unwrap(), None);
}

fn mailbox_events_by_address_then_time(backend: Backend) {
    let t = TestStore::new(backend);
    let store = t.open();
    let event = |address: &str, kind: &str, at: i64| MailboxEvent {
        address: address.into(),
        kind: kind.into(),
        at,
    };
    for e in [
        event("b@x.it", MAILBOX_CREATED, 30),
        event("A@x.it", MAILBOX_SUSPENDED, 20),
        event("a@x.it", MAILBOX_CREATED, 10),
        event("a@x.it", MAILBOX_REMOVED, 20),
        event("a@x.it", MAILBOX_CREATED, 40),
    ] {
        store.record_mailbox_event(&e).unwrap();
    }
    assert_eq!(
        store.mailbox_events(40).unwrap(),
        [
            event("a@x.it", MAILBOX_CREATED, 10),
            event("a@x.it", MAILBOX_SUSPENDED, 20),
            event("a@x.it", MAILBOX_REMOVED, 20),
            event("b@x.it", MAILBOX_CREATED, 30),
        ],
        "before `to` only, in recording order at one instant"
    );
}

backend_tests!(
    enti_own_hosted_domains_once,
    administrators_of_an_ente_or_of_the_gestore,
    mailbox_events_by_address_then_time
);
