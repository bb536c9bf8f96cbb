//! Python's smtplib as an independent client of the server.

mod common;

use common::{python, start};
use pec_smtp::Mode;

const MESSAGE: &[u8] = b"From: alice@example.it\r\nTo: bob@example.it\r\nSubject: test\r\n\r\n.leading dot line\r\n..two dots\r\nlast line \xc3\xa8\r\n";

const SUBMISSION_STARTTLS: &str = r#"
import base64, smtplib, ssl, sys
port = int(sys.argv[1])
msg = bytes.fromhex(sys.argv[2])
s = smtplib.SMTP('127.0.0.1', port, timeout=10)
s.ehlo('client.test')
f = s.esmtp_features
for k in ('pipelining', 'size', '8bitmime', 'enhancedstatuscodes', 'starttls'):
    assert k in f, (k, f)
assert 'auth' not in f, f
code, text = s.docmd('AUTH', 'PLAIN ' + base64.b64encode(b'\0alice\0secret').decode())
assert code == 538, (code, text)
code, text = s.docmd('MAIL', 'FROM:<alice@example.it>')
assert code == 530 and text.startswith(b'5.7.0'), (code, text)
s.starttls(context=ssl._create_unverified_context())
s.ehlo('client.test')
f = s.esmtp_features
assert f['auth'].split() == ['PLAIN', 'LOGIN'], f
assert 'starttls' not in f, f
try:
    s.login('alice', 'wrong')
    raise SystemExit('wrong password accepted')
except smtplib.SMTPAuthenticationError as e:
    assert e.smtp_code == 535, e
s.user, s.password = 'alice', 'secret'
code, text = s.auth('PLAIN', s.auth_plain)
assert code == 235, (code, text)
refused = s.sendmail('alice@example.it', ['bob@example.it'], msg, mail_options=['BODY=8BITMIME'])
assert refused == {}, refused
s.quit()

# AUTH LOGIN without and with an initial response.
for initial in (False, True):
    s = smtplib.SMTP('127.0.0.1', port, timeout=10)
    s.starttls(context=ssl._create_unverified_context())
    s.ehlo('client.test')
    s.user, s.password = 'alice', 'secret'
    code, text = s.auth('LOGIN', s.auth_login, initial_response_ok=initial)
    assert code == 235, (initial, code, text)
    s.quit()
print('ok')
"#;

#[tokio::test]
async fn smtplib_submission_starttls_auth_and_send() {
    let server = start(
        Mode::Submission {
            implicit_tls: false,
        },
        |_| {},
    )
    .await;
    let out = python(
        SUBMISSION_STARTTLS,
        &[server.addr.port().to_string(), hex(MESSAGE)],
    )
    .await;
    assert_eq!(out.trim(), "ok");
    let received = server.received();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].message, MESSAGE, "bytes must arrive unchanged");
    assert_eq!(received[0].envelope.mail_from, "alice@example.it");
    assert_eq!(received[0].envelope.rcpt_to, vec!["bob@example.it"]);
    assert!(received[0].session.tls);
    assert_eq!(
        received[0].session.authenticated.as_deref(),
        Some("alice@example.it")
    );
    assert_eq!(received[0].session.helo, "client.test");
    assert!(received[0].session.esmtp);
    let tls = received[0]
        .session
        .tls_parameters
        .expect("STARTTLS parameters");
    assert_eq!(tls.version, "TLSv1.3");
    assert!(tls.cipher.starts_with("TLS_AES_") || tls.cipher == "TLS_CHACHA20_POLY1305_SHA256");
    assert!(tls.bits >= 128, "{tls:?}");
    server.shutdown().await;
}

const SUBMISSION_IMPLICIT: &str = r#"
import smtplib, ssl, sys
port = int(sys.argv[1])
msg = bytes.fromhex(sys.argv[2])
s = smtplib.SMTP_SSL('127.0.0.1', port, timeout=10, context=ssl._create_unverified_context())
s.ehlo('client.test')
f = s.esmtp_features
assert 'starttls' not in f, f
assert f['auth'].split() == ['PLAIN', 'LOGIN'], f
s.login('alice', 'secret')
assert s.sendmail('alice@example.it', ['bob@example.it', 'carol@example.it'], msg) == {}
s.quit()
print('ok')
"#;

#[tokio::test]
async fn smtplib_submission_implicit_tls() {
    let server = start(Mode::Submission { implicit_tls: true }, |_| {}).await;
    let message = b"Subject: implicit\r\n\r\nbody\r\n.\r\n";
    let out = python(
        SUBMISSION_IMPLICIT,
        &[server.addr.port().to_string(), hex(message)],
    )
    .await;
    assert_eq!(out.trim(), "ok");
    let received = server.received();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].message, message);
    assert_eq!(
        received[0].envelope.rcpt_to,
        vec!["bob@example.it", "carol@example.it"]
    );
    assert!(received[0].session.tls);
    let tls = received[0]
        .session
        .tls_parameters
        .expect("implicit TLS parameters");
    assert_eq!(tls.version, "TLSv1.3", "{tls:?}");
    server.shutdown().await;
}

const MX: &str = r#"
import smtplib, ssl, sys
port = int(sys.argv[1])
msg = bytes.fromhex(sys.argv[2])
s = smtplib.SMTP('127.0.0.1', port, timeout=10)
s.ehlo('gestore.test')
f = s.esmtp_features
assert 'starttls' in f, f
assert 'auth' not in f, f
code, text = s.docmd('AUTH', 'PLAIN AGFsaWNlAHNlY3JldA==')
assert code == 502, (code, text)
code, text = s.docmd('VRFY', 'bob@example.it')
assert code == 252, (code, text)
assert s.sendmail('sender@other.test', ['bob@example.it'], msg) == {}
s.quit()
s = smtplib.SMTP('127.0.0.1', port, timeout=10)
s.starttls(context=ssl._create_unverified_context())
s.ehlo('gestore.test')
assert 'starttls' not in s.esmtp_features
try:
    s.sendmail('sender@other.test', ['refused@example.it'], msg)
    raise SystemExit('refused recipient accepted')
except smtplib.SMTPRecipientsRefused as e:
    assert e.recipients['refused@example.it'][0] == 550, e.recipients
assert s.sendmail('sender@other.test', ['bob@example.it', 'refused@example.it'], msg) != {}
s.quit()
print('ok')
"#;

#[tokio::test]
async fn smtplib_mx_plaintext_and_starttls() {
    let server = start(Mode::Mx, |_| {}).await;
    let message = b"Subject: mx\r\n\r\nhello\r\n";
    let out = python(MX, &[server.addr.port().to_string(), hex(message)]).await;
    assert_eq!(out.trim(), "ok");
    let received = server.received();
    assert_eq!(received.len(), 2);
    assert!(!received[0].session.tls);
    assert!(received[0].session.tls_parameters.is_none());
    assert!(received[1].session.tls);
    assert!(received[1].session.tls_parameters.is_some());
    assert_eq!(received[1].envelope.rcpt_to, vec!["bob@example.it"]);
    assert!(received.iter().all(|r| r.message == message));
    assert!(received.iter().all(|r| r.session.authenticated.is_none()));
    server.shutdown().await;
}

#[tokio::test]
async fn swaks_pipelining_over_starttls() {
    // swaks is optional on developer machines; the Python tests cover the same ground.
    if std::process::Command::new("swaks")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("swaks not installed, skipping");
        return;
    }
    let server = start(Mode::Mx, |_| {}).await;
    let addr = server.addr.to_string();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("swaks")
            .args([
                "--server",
                &addr,
                "--tls",
                "--pipeline",
                "--from",
                "sender@other.test",
                "--to",
                "bob@example.it",
                "--helo",
                "swaks.test",
                "--data",
                "Subject: swaks\r\n\r\nvia swaks\r\n",
            ])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "swaks failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let received = server.received();
    assert_eq!(received.len(), 1);
    assert!(received[0].session.tls);
    // swaks writes its own CRLF before the final dot.
    assert!(
        received[0]
            .message
            .starts_with(b"Subject: swaks\r\n\r\nvia swaks\r\n")
    );
    server.shutdown().await;
}

const BDAT: &str = r#"
import smtplib, sys
port = int(sys.argv[1])
s = smtplib.SMTP('127.0.0.1', port, timeout=10)
s.ehlo('client.test')
assert 'chunking' in s.esmtp_features, s.esmtp_features

def bdat(chunk, last=False):
    s.send(b'BDAT %d%s\r\n' % (len(chunk), b' LAST' if last else b'') + chunk)
    return s.getreply()[0]

def transaction():
    assert s.docmd('MAIL', 'FROM:<sender@other.test>')[0] == 250
    assert s.docmd('RCPT', 'TO:<bob@example.it>')[0] == 250

# Before MAIL: refused, and the chunk (which looks like a command) is read, not run.
assert bdat(b'MAIL FROM:<x@other.test>\r\n') == 503
assert bdat(b'x', last=True) == 503
# Several chunks, an empty one among them, taken as they are (no dot-unstuffing).
transaction()
for chunk in (b'Subject: chunks\r\n\r\n.dot', b' line\r\n.\r\nQUIT\r\n', b''):
    assert bdat(chunk) == 250
assert bdat(b'end\r\n', last=True) == 250
# DATA and BDAT do not mix in one transaction.
transaction()
assert bdat(b'Subject: half\r\n') == 250
assert s.docmd('DATA')[0] == 503
assert s.docmd('RSET')[0] == 250
# The chunks add up toward the size limit (1000 here): the one that passes it is refused,
# the transaction ends, its later chunks are read and refused, the next one works.
transaction()
assert bdat(b'a' * 600) == 250
assert bdat(b'b' * 600) == 552
assert bdat(b'c\r\n', last=True) == 503
# Pipelined: MAIL, RCPT and the last chunk in one write, then the three replies.
s.send(b'MAIL FROM:<sender@other.test>\r\nRCPT TO:<carol@example.it>\r\nBDAT 16 LAST\r\nSubject: piped\r\n')
assert [s.getreply()[0] for _ in range(3)] == [250, 250, 250]
s.quit()
print('ok')
"#;

#[tokio::test]
async fn smtplib_sends_bdat_chunks() {
    let server = start(Mode::Mx, |c| c.max_message_size = 1000).await;
    let out = python(BDAT, &[server.addr.port().to_string()]).await;
    assert_eq!(out.trim(), "ok");
    let received = server.received();
    let messages: Vec<&[u8]> = received.iter().map(|r| r.message.as_slice()).collect();
    assert_eq!(
        messages,
        [
            b"Subject: chunks\r\n\r\n.dot line\r\n.\r\nQUIT\r\nend\r\n".as_slice(),
            b"Subject: piped\r\n".as_slice(),
        ]
    );
    assert_eq!(received[1].envelope.rcpt_to, ["carol@example.it"]);
    server.shutdown().await;
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
