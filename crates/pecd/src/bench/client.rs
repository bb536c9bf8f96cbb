//! The benchmark's clients: an SMTP submission client (implicit TLS, AUTH PLAIN, one
//! pipelined MAIL/RCPT/DATA group per message, the session reused for many messages) and
//! a holder of idle IMAPS connections. `pec_smtp::Relay` cannot authenticate, and the
//! benchmark must not spend its time starting a Python process per message.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use base64::Engine;
use rustls_pki_types::ServerName;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufStream};
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

/// Longest wait for one reply: a loaded server answers slowly, but it answers.
const STEP: Duration = Duration::from_secs(120);
/// Longest reply line accepted.
const MAX_LINE: usize = 4096;

/// An SMTP session over any stream (TLS to the gestore, plain TCP to Postfix).
pub struct Smtp<S> {
    io: BufStream<S>,
}

/// A TLS connection to `addr`, checked against the lab CA (the lab certificates name
/// 127.0.0.1).
async fn tls(
    addr: SocketAddr,
    config: &Arc<rustls::ClientConfig>,
) -> anyhow::Result<TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(addr)
        .await
        .with_context(|| format!("cannot connect to {addr}"))?;
    let name = ServerName::IpAddress(addr.ip().into());
    let stream = timeout(STEP, TlsConnector::from(config.clone()).connect(name, tcp))
        .await
        .context("TLS handshake timed out")?
        .context("TLS handshake")?;
    Ok(stream)
}

impl Smtp<TlsStream<TcpStream>> {
    /// A submission session with implicit TLS, authenticated as `user`.
    pub async fn submission(
        addr: SocketAddr,
        config: &Arc<rustls::ClientConfig>,
        user: &str,
        password: &str,
    ) -> anyhow::Result<Self> {
        let mut s = Smtp::greet(tls(addr, config).await?).await?;
        let token =
            base64::engine::general_purpose::STANDARD.encode(format!("\0{user}\0{password}"));
        s.command(&format!("AUTH PLAIN {token}"), 235).await?;
        Ok(s)
    }
}

impl Smtp<TcpStream> {
    /// A plain SMTP session (to an MX that relays for loopback, such as the lab Postfix).
    pub async fn plain(addr: SocketAddr) -> anyhow::Result<Self> {
        let tcp = TcpStream::connect(addr)
            .await
            .with_context(|| format!("cannot connect to {addr}"))?;
        Smtp::greet(tcp).await
    }
}

/// A reply: its code and the text of its last line.
pub type Reply = (u16, String);

impl<S: AsyncRead + AsyncWrite + Unpin> Smtp<S> {
    async fn greet(stream: S) -> anyhow::Result<Self> {
        let mut s = Smtp {
            io: BufStream::new(stream),
        };
        let (code, text) = s.reply().await?;
        if code != 220 {
            bail!("greeting: {code} {text}");
        }
        s.command("EHLO bench.localhost", 250).await?;
        Ok(s)
    }

    /// One whole (possibly multi-line) reply.
    async fn reply(&mut self) -> anyhow::Result<Reply> {
        loop {
            let mut line = Vec::new();
            let n = timeout(
                STEP,
                (&mut self.io)
                    .take(MAX_LINE as u64)
                    .read_until(b'\n', &mut line),
            )
            .await
            .context("no reply from the server")??;
            if n == 0 {
                bail!("the server closed the connection");
            }
            let text = String::from_utf8_lossy(&line);
            let code: u16 = text
                .get(..3)
                .and_then(|c| c.parse().ok())
                .with_context(|| format!("malformed reply {text:?}"))?;
            if text.as_bytes().get(3) != Some(&b'-') {
                return Ok((code, text.get(4..).unwrap_or("").trim_end().to_string()));
            }
        }
    }

    async fn write(&mut self, bytes: &[u8]) -> anyhow::Result<()> {
        timeout(STEP, async {
            self.io.write_all(bytes).await?;
            self.io.flush().await
        })
        .await
        .context("sending timed out")??;
        Ok(())
    }

    async fn command(&mut self, line: &str, expect: u16) -> anyhow::Result<Reply> {
        self.write(format!("{line}\r\n").as_bytes()).await?;
        let (code, text) = self.reply().await?;
        if code != expect {
            bail!("{line:.20}: {code} {text}");
        }
        Ok((code, text))
    }

    /// Sends one message (MAIL, RCPT and DATA pipelined, then the content, dot-stuffed
    /// here) and returns the final reply; a refused MAIL or RCPT is returned as is.
    pub async fn send(
        &mut self,
        from: &str,
        rcpt: &[String],
        message: &[u8],
    ) -> anyhow::Result<Reply> {
        let mut head = format!("MAIL FROM:<{from}>\r\n");
        for r in rcpt {
            head.push_str(&format!("RCPT TO:<{r}>\r\n"));
        }
        head.push_str("DATA\r\n");
        self.write(head.as_bytes()).await?;
        let mut refused = None;
        for _ in 0..=rcpt.len() {
            let r = self.reply().await?;
            if r.0 != 250 && refused.is_none() {
                refused = Some(r);
            }
        }
        let data = self.reply().await?;
        if data.0 != 354 {
            return Ok(refused.unwrap_or(data));
        }
        self.write(&dot_stuffed(message)).await?;
        let reply = self.reply().await?;
        Ok(refused.unwrap_or(reply))
    }

    /// Ends the session politely.
    pub async fn quit(mut self) {
        let _ = self.command("QUIT", 221).await;
    }
}

/// `message` as DATA content: leading dots doubled, the final `.` line appended.
fn dot_stuffed(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + 64);
    pec_net::dot::stuff(message, &mut out);
    out
}

/// Opens `n` IMAPS connections to `addr` (each reads the greeting), prints `ready N` on
/// stdout and holds them until stdin closes. It runs as a child process so that the
/// client side of the connections does not count in the server's RSS.
pub async fn hold_imaps(addr: SocketAddr, ca_pem: &[u8], n: usize) -> anyhow::Result<()> {
    let config = pec_smtp::client_tls_config(ca_pem).context("the CA bundle")?;
    let mut held = Vec::with_capacity(n);
    let mut batch = tokio::task::JoinSet::new();
    let mut opened = 0;
    while opened < n {
        for _ in 0..(n - opened).min(50) {
            let config = config.clone();
            batch.spawn(async move {
                let stream = tls(addr, &config).await?;
                let mut io = BufStream::new(stream);
                let mut greeting = Vec::new();
                timeout(
                    STEP,
                    (&mut io)
                        .take(MAX_LINE as u64)
                        .read_until(b'\n', &mut greeting),
                )
                .await
                .context("no IMAP greeting")??;
                if !greeting.starts_with(b"* OK") {
                    bail!(
                        "unexpected IMAP greeting {:?}",
                        String::from_utf8_lossy(&greeting)
                    );
                }
                anyhow::Ok(io)
            });
        }
        while let Some(r) = batch.join_next().await {
            held.push(r.context("connection task")??);
            opened += 1;
        }
    }
    println!("ready {}", held.len());
    let _ = tokio::task::spawn_blocking(|| {
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut Vec::new())
    })
    .await;
    drop(held);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::dot_stuffed;

    #[test]
    fn dots_are_stuffed_and_the_end_is_marked() {
        assert_eq!(dot_stuffed(b".a\r\nb\r\n"), b"..a\r\nb\r\n.\r\n");
        assert_eq!(dot_stuffed(b"x"), b"x\r\n.\r\n");
    }
}
