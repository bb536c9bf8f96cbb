//! A FETCH naming a large section many times is streamed: the server never holds the
//! whole reply (it held 822 MiB for 300 × BODY.PEEK[] of a 1 MB message).
//!
//! This binary counts every allocation (its own global allocator), so it holds this one
//! test only.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use pec_imap::imap_session;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The system allocator, keeping the bytes in use and their peak.
struct Counting;

static IN_USE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded to the system allocator unchanged; only counters are
// added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let now = IN_USE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
        PEAK.fetch_max(now, Ordering::Relaxed);
        // SAFETY: same layout as given.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        IN_USE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: allocated by `alloc` above with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

#[tokio::test]
async fn many_large_sections_are_streamed() {
    const SIZE: usize = 512 * 1024;
    const TIMES: usize = 200;
    let (_dir, config) = common::config(None);
    let mut message = b"From: a@pec.example.it\r\nSubject: big\r\n\r\n".to_vec();
    while message.len() < SIZE {
        message.extend_from_slice(
            b"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde\r\n",
        );
    }
    config
        .store
        .deliver("anna@pec.example.it", "INBOX", &message, &[], 0)
        .unwrap();
    let items = vec!["BODY.PEEK[]"; TIMES].join(" ");
    let (mut client, server) = tokio::io::duplex(64 * 1024);
    let session = tokio::spawn(imap_session(server, true, config));
    // Log in first: the password check alone allocates argon2's 19 MiB.
    client
        .write_all(b"a0 LOGIN anna@pec.example.it segreta\r\na1 SELECT INBOX\r\n")
        .await
        .unwrap();
    let mut greeting = Vec::new();
    while !String::from_utf8_lossy(&greeting).contains("a1 OK") {
        let mut b = [0u8; 1024];
        let n = client.read(&mut b).await.unwrap();
        assert!(n > 0, "{}", String::from_utf8_lossy(&greeting));
        greeting.extend_from_slice(&b[..n]);
    }
    let before = IN_USE.load(Ordering::Relaxed);
    PEAK.store(before, Ordering::Relaxed);
    client
        .write_all(format!("a2 FETCH 1 ({items})\r\na3 LOGOUT\r\n").as_bytes())
        .await
        .unwrap();
    // Read and count without keeping the reply.
    let mut received = 0usize;
    let mut tail = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = client.read(&mut buf).await.unwrap();
        if n == 0 {
            break;
        }
        received += n;
        tail.extend_from_slice(&buf[..n]);
        let keep = tail.len().saturating_sub(200);
        tail.drain(..keep);
    }
    session.await.unwrap().unwrap();
    let peak = PEAK.load(Ordering::Relaxed) - before;
    assert!(
        received > SIZE * TIMES,
        "the whole reply came: {received} bytes"
    );
    assert!(
        String::from_utf8_lossy(&tail).contains("a3 OK"),
        "{}",
        String::from_utf8_lossy(&tail)
    );
    assert!(
        peak < 16 * SIZE,
        "at most a few copies of the message in memory at once, not the {} MB reply: peak {peak} bytes",
        SIZE * TIMES / 1_000_000
    );
}
