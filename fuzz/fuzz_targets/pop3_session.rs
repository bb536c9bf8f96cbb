//! A POP3 session fed arbitrary client bytes must never panic nor hang. Each input is
//! prefixed with a valid USER/PASS login so the fuzzer reaches the transaction state
//! (LIST, UIDL, RETR, TOP, DELE, QUIT...). The account's hash has tiny argon2 parameters
//! so password checking does not dominate the run (see `common/`).
#![no_main]

use std::sync::OnceLock;

use pec_imap::pop3_session;

#[path = "common/mailbox.rs"]
mod mailbox;
#[path = "common/session.rs"]
mod session;

fn lab() -> &'static (mailbox::MailboxLab, tokio::runtime::Runtime) {
    static LAB: OnceLock<(mailbox::MailboxLab, tokio::runtime::Runtime)> = OnceLock::new();
    LAB.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let messages: [&[u8]; 2] = [
            b"Subject: x\r\n\r\nbody\r\n.dot line\r\n",
            b"Subject: y\r\n\r\nno final line end",
        ];
        (mailbox::MailboxLab::new(&messages), runtime)
    })
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let (lab, runtime) = lab();
    let config = lab.config.clone();
    runtime.block_on(session::converse(
        b"USER anna@pec.example.it\r\nPASS segreta\r\n",
        data,
        |server| pop3_session(server, true, config),
    ));
});
