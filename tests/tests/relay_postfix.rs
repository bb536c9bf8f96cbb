//! The relay client against a real Postfix, which offers PIPELINING and CHUNKING: the
//! content goes by BDAT, several transactions share one session, and Postfix delivers
//! the bytes unchanged.

use std::time::Duration;

use pec_e2e::{Postfix, free_port};
use pec_smtp::{ClientTls, Pool, RecipientStatus, Relay};

/// Lines starting with a dot, and one that is only a dot: DATA would have to stuff them.
/// With `Date:` and `Message-ID:`, which Postfix would otherwise add.
const MESSAGE: &str = "From: a@pec.alfa.test\r\nTo: paolo@posta.ordinaria.test\r\nSubject: chunk\r\nDate: Mon, 30 Nov 2026 08:00:00 +0100\r\nMessage-ID: <chunk@pec.alfa.test>\r\n\r\n.starts with a dot\r\n.\r\nlast line\r\n";

#[tokio::test]
async fn relay_uses_bdat_with_postfix() {
    let postfix = Postfix::start(free_port(), &[]);
    let relay = Relay {
        helo_name: "relay.pec.alfa.test".into(),
        tls: ClientTls::None,
        timeout: Duration::from_secs(30),
        pool: Pool::default(),
    };
    let target = format!("127.0.0.1:{}", postfix.port);
    for n in 0..2 {
        let outcome = relay
            .deliver(
                &target,
                "a@pec.alfa.test",
                &[format!("paolo{n}@posta.ordinaria.test")],
                MESSAGE.as_bytes(),
            )
            .await
            .unwrap();
        assert_eq!(outcome.recipients[0].status, RecipientStatus::Accepted);
        assert_eq!(outcome.data_reply.unwrap().code, 250);
    }
    // Closing the pool ends the session; Postfix then logs what the client sent.
    drop(relay);
    // (Postfix::start's probe connection logs a disconnect of its own, without commands.)
    let session = |l: &str| l.contains("disconnect from") && l.contains(" mail=");
    let log = postfix.log_when(session);
    let stats = log.lines().find(|l| session(l)).unwrap_or_default();
    assert!(
        stats.contains(" ehlo=1 ")
            && stats.contains(" mail=2 ")
            && stats.contains(" rcpt=2 ")
            && stats.contains(" rset=1 ")
            && stats.contains(" bdat=2 ")
            && !stats.contains(" data="),
        "one session, two transactions by BDAT: {stats}"
    );
    let delivered = postfix.maildir(2);
    assert_eq!(delivered.len(), 2);
    for file in &delivered {
        // Postfix puts its trace fields in front and writes LF line ends in the Maildir.
        let text = String::from_utf8_lossy(file);
        assert!(
            text.ends_with(&MESSAGE.replace("\r\n", "\n")),
            "Maildir file: {text}"
        );
    }
}
