//! An IMAP session fed arbitrary client bytes must never panic nor hang.
//!
//! Each input is prefixed with a valid login and SELECT so the fuzzer also reaches the
//! authenticated and selected states (FETCH, STORE, SEARCH...). To keep thousands of
//! inputs a second: the store lives on tmpfs (`/dev/shm`, where fsync costs nothing),
//! the password hash uses argon2's smallest parameters, and one runtime serves every
//! input (see `common/`).
#![no_main]

use std::sync::OnceLock;

use pec_imap::imap_session;

#[path = "common/mailbox.rs"]
mod mailbox;
#[path = "common/session.rs"]
mod session;

/// A PEC-like message (an attached message with parts) and a deeply nested one.
fn messages() -> Vec<Vec<u8>> {
    let pec = b"From: a@pec.example.it\r\nTo: anna@pec.example.it\r\nSubject: s\r\n\
Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n--b1\r\nContent-Type: text/plain\r\n\r\n\
testo\r\n--b1\r\nContent-Type: message/rfc822\r\n\r\nFrom: m@x.it\r\nSubject: dentro\r\n\
Content-Type: multipart/alternative; boundary=\"b2\"\r\n\r\n--b2\r\n\r\nuno\r\n--b2\r\n\
Content-Type: text/html\r\n\r\n<p>due</p>\r\n--b2--\r\n--b1--\r\n"
        .to_vec();
    let mut deep = b"Subject: deep\r\n".to_vec();
    for i in 0..300 {
        deep.extend_from_slice(
            format!("Content-Type: multipart/mixed; boundary=\"d{i}\"\r\n\r\n--d{i}\r\n").as_bytes(),
        );
    }
    deep.extend_from_slice(b"\r\nfondo\r\n");
    vec![b"Subject: x\r\n\r\nbody\r\n".to_vec(), pec, deep]
}

fn lab() -> &'static (mailbox::MailboxLab, tokio::runtime::Runtime) {
    static LAB: OnceLock<(mailbox::MailboxLab, tokio::runtime::Runtime)> = OnceLock::new();
    LAB.get_or_init(|| {
        let messages = messages();
        let refs: Vec<&[u8]> = messages.iter().map(Vec::as_slice).collect();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        (mailbox::MailboxLab::new(&refs), runtime)
    })
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let (lab, runtime) = lab();
    let config = lab.config.clone();
    runtime.block_on(session::converse(
        b"f1 LOGIN anna@pec.example.it segreta\r\nf2 SELECT INBOX\r\n",
        data,
        |server| imap_session(server, true, config),
    ));
});
