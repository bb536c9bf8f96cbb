//! MX routing against a real DNS exchange: a small name server on loopback (answers built
//! with hickory-proto, not by our router) serving MX records with preferences, a null MX,
//! an address-only domain and NXDOMAIN; name servers failing (SERVFAIL, REFUSED).

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::str::FromStr;

use hickory_proto::op::{Message, MessageType, ResponseCode};
use hickory_proto::rr::rdata::{A, MX};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use pec_gestore::routing::{RouteError, Router};

fn answer(query: &Message) -> Message {
    let mut m = Message::new();
    m.set_id(query.id());
    m.set_message_type(MessageType::Response);
    m.set_recursion_available(true);
    let Some(q) = query.queries().first().cloned() else {
        return m;
    };
    m.add_query(q.clone());
    let name = q.name().to_ascii().to_ascii_lowercase();
    let rec = |rdata: RData| Record::from_rdata(q.name().clone(), 60, rdata);
    let n = |s: &str| Name::from_str(s).unwrap();
    match (name.as_str(), q.query_type()) {
        ("pec.multi.test.", RecordType::MX) => {
            m.add_answer(rec(RData::MX(MX::new(20, n("mx2.multi.test.")))));
            m.add_answer(rec(RData::MX(MX::new(10, n("mx1.multi.test.")))));
        }
        ("mx1.multi.test.", RecordType::A) => {
            m.add_answer(rec(RData::A(A(Ipv4Addr::new(127, 0, 0, 11)))));
        }
        ("mx2.multi.test.", RecordType::A) => {
            m.add_answer(rec(RData::A(A(Ipv4Addr::new(127, 0, 0, 12)))));
        }
        ("nullmx.test.", RecordType::MX) => {
            m.add_answer(rec(RData::MX(MX::new(0, Name::root()))));
        }
        ("plain.test.", RecordType::A) => {
            m.add_answer(rec(RData::A(A(Ipv4Addr::new(127, 0, 0, 13)))));
        }
        ("servfail.test.", _) | ("mxless.test.", RecordType::A) => {
            m.set_response_code(ResponseCode::ServFail);
        }
        ("refused.test.", _) => {
            m.set_response_code(ResponseCode::Refused);
        }
        ("plain.test.", _)
        | ("mxless.test.", _)
        | ("pec.multi.test.", _)
        | ("mx1.multi.test.", _)
        | ("mx2.multi.test.", _)
        | ("nullmx.test.", _) => {}
        _ => {
            m.set_response_code(ResponseCode::NXDomain);
        }
    }
    m
}

async fn name_server() -> std::net::SocketAddr {
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap();
    tokio::spawn(async move {
        let mut buf = [0u8; 1500];
        while let Ok((len, peer)) = socket.recv_from(&mut buf).await {
            if let Ok(q) = Message::from_vec(&buf[..len])
                && let Ok(bytes) = answer(&q).to_vec()
            {
                let _ = socket.send_to(&bytes, peer).await;
            }
        }
    });
    addr
}

#[tokio::test]
async fn mx_preference_null_mx_implicit_mx_and_nxdomain() {
    let server = name_server().await;
    let mut routes = BTreeMap::new();
    routes.insert("pec.static.test".to_string(), "127.0.0.1:2525".to_string());
    let router = Router::with_dns_server(routes, server, 2525);

    let t = router.targets("pec.static.test").await.unwrap();
    assert_eq!(
        (t[0].name.as_str(), t[0].connect.as_str()),
        ("127.0.0.1", "127.0.0.1:2525")
    );

    let t = router.targets("PEC.Multi.test").await.unwrap();
    let got: Vec<(&str, &str)> = t
        .iter()
        .map(|t| (t.name.as_str(), t.connect.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            ("mx1.multi.test", "127.0.0.11:2525"),
            ("mx2.multi.test", "127.0.0.12:2525")
        ]
    );

    let t = router.targets("plain.test").await.unwrap();
    assert_eq!(
        (t[0].name.as_str(), t[0].connect.as_str()),
        ("plain.test", "127.0.0.13:2525")
    );

    assert!(matches!(
        router.targets("nullmx.test").await,
        Err(RouteError::NoDomain(_))
    ));
    assert!(matches!(
        router.targets("nowhere.test").await,
        Err(RouteError::NoDomain(_))
    ));
    assert!(matches!(
        Router::static_only(BTreeMap::new())
            .targets("pec.multi.test")
            .await,
        Err(RouteError::NoDomain(_))
    ));
}

#[tokio::test]
async fn a_failing_name_server_is_a_temporary_error_not_a_missing_domain() {
    let router = Router::with_dns_server(BTreeMap::new(), name_server().await, 2525);
    // SERVFAIL or REFUSED for the MX, or for the address of a domain without MX: nothing
    // is known of the domain, so it is retried rather than refused as "no-dominio".
    for domain in ["servfail.test", "refused.test", "mxless.test"] {
        let r = router.targets(domain).await;
        assert!(
            matches!(r, Err(RouteError::Temporary(..))),
            "{domain}: {r:?}"
        );
    }
}
