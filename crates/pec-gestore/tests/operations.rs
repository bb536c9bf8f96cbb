//! The operator's endpoints of the HTTP listener over a store that fails on demand:
//! `/readyz` says 503 and why while the store fails or the listeners are down, 200 once it
//! recovers; `/healthz` stays 200; `/metrics` still answers, with `pecd_store_up 0`.

use std::sync::Arc;
use std::time::Duration;

use pec_gestore::autoconfig::{ClientSetup, Http, Operations, serve_http};
use pec_gestore::clock::SystemClock;
use pec_gestore::metrics::Metrics;
use pec_net::ListenerLimits;
use pec_store::SqliteStore;
use pec_store::faulty::{Fault, Faulty};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The status and body of `GET path` (HTTP/1.1, one request per connection).
async fn get(port: u16, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    s.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    tokio::time::timeout(Duration::from_secs(60), s.read_to_end(&mut response))
        .await
        .expect("an answer")
        .unwrap();
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status line");
    let body = text
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_string();
    (status, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_follows_the_store_and_the_listeners() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Faulty::new(SqliteStore::open(dir.path()).unwrap()));
    let metrics = Arc::new(Metrics::new());
    let http = Arc::new(Http {
        setup: ClientSetup::default(),
        store: store.clone(),
        operations: Some(Operations {
            metrics: metrics.clone(),
            clock: Arc::new(SystemClock),
        }),
        jmap: None,
        admin: None,
        console: None,
        webmail: None,
    });
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve_http(
        listener,
        http,
        None,
        ListenerLimits::default(),
        async {
            let _ = stopped.await;
        },
    ));

    // Before the runtime says the listeners run.
    let (status, body) = get(port, "/readyz").await;
    assert_eq!(
        (status, body.trim()),
        (503, "not ready: the listeners are not running")
    );
    metrics.listeners(true);
    assert_eq!(get(port, "/readyz").await, (200, "ready\n".to_string()));

    store.fail("queue_summary", Fault::Always);
    let (status, body) = get(port, "/readyz").await;
    assert_eq!(status, 503);
    assert!(body.contains("the store does not answer"), "{body}");
    assert_eq!(get(port, "/healthz").await.0, 200);
    let (status, text) = get(port, "/metrics").await;
    assert_eq!(status, 200);
    assert!(text.lines().any(|l| l == "pecd_store_up 0"), "{text}");

    store.heal();
    assert_eq!(get(port, "/readyz").await.0, 200);
    let (_, text) = get(port, "/metrics").await;
    assert!(text.lines().any(|l| l == "pecd_store_up 1"), "{text}");

    metrics.listeners(false);
    assert_eq!(get(port, "/readyz").await.0, 503);
    assert_eq!(get(port, "/healthz").await.0, 200);

    let _ = stop.send(());
    server.await.unwrap().unwrap();
}
