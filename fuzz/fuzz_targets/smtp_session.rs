//! An SMTP session fed arbitrary client bytes must never panic nor hang, in MX mode and
//! in submission mode. The first input byte picks the mode: MX, submission over an
//! already private stream, or submission already past EHLO and AUTH PLAIN, so the fuzzer
//! also reaches MAIL, RCPT and DATA of an authenticated user.
#![no_main]

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use pec_smtp::{Envelope, Handler, Mode, Reply, ServerConfig, SessionInfo, smtp_session};

#[path = "common/session.rs"]
mod session;

/// Accepts alice/secret, every sender and recipient but `refused@...`, every message.
struct Stub;

impl Handler for Stub {
    async fn authenticate(
        &self,
        _: &SessionInfo,
        user: &str,
        password: &str,
    ) -> Result<Option<String>, Reply> {
        Ok((user == "alice" && password == "secret").then(|| "alice@example.it".to_string()))
    }

    async fn mail_from(&self, _: &SessionInfo, _: &str) -> Result<(), Reply> {
        Ok(())
    }

    async fn rcpt_to(&self, _: &SessionInfo, _: &str, to: &str) -> Result<(), Reply> {
        if to.starts_with("refused@") {
            Err(Reply::new(550, "5.1.1", "No such user here"))
        } else {
            Ok(())
        }
    }

    async fn data(&self, _: &SessionInfo, _: Envelope, _: Vec<u8>) -> Reply {
        Reply::ok("Message accepted")
    }
}

fn config() -> Arc<ServerConfig> {
    static CONFIG: OnceLock<Arc<ServerConfig>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let mut config = ServerConfig::new("mx.fuzz.invalid");
            config.max_message_size = 64 * 1024;
            config.auth_failure_delay = Duration::ZERO;
            config.timeouts.command = Duration::from_secs(1);
            config.timeouts.data = Duration::from_secs(1);
            Arc::new(config)
        })
        .clone()
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&selector, data)) = data.split_first() else {
        return;
    };
    let (mode, secure, prefix): (_, _, &[u8]) = match selector % 3 {
        0 => (Mode::Mx, false, b""),
        1 => (Mode::Submission { implicit_tls: true }, true, b""),
        _ => (
            Mode::Submission { implicit_tls: true },
            true,
            // "\0alice\0secret" in base64.
            b"EHLO fuzz.test\r\nAUTH PLAIN AGFsaWNlAHNlY3JldA==\r\n",
        ),
    };
    let peer = SocketAddr::from(([192, 0, 2, 1], 4242));
    let config = config();
    runtime().block_on(session::converse(prefix, data, |server| {
        smtp_session(server, peer, secure, mode, config, Arc::new(Stub))
    }));
});

/// One runtime for every input.
fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
    })
}
