//! One POP3 session (RFC 1939, CAPA from RFC 2449, STLS from RFC 2595,
//! AUTH PLAIN from RFC 5034) over the account's INBOX. Deletions are applied
//! only at QUIT, in the UPDATE state.

use std::sync::Arc;

use pec_store::FlagOp;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::error::{Error, Result};
use crate::mime;
use crate::server::{Config, Conn};

/// Longest command line accepted (RFC 2449 allows 255 octets; AUTH lines are longer).
const MAX_LINE: usize = 4096;

/// A message of the maildrop as listed at login.
struct Entry {
    uid: u32,
    size: u64,
    deleted: bool,
}

struct Session<S> {
    conn: Conn<S>,
    secure: bool,
    config: Arc<Config>,
    buf: Vec<u8>,
    user_name: Option<String>,
    user: Option<String>,
    uidvalidity: u32,
    maildrop: Vec<Entry>,
    auth_failures: u32,
}

/// Runs a POP3 session to its end.
pub(crate) async fn session<S>(conn: Conn<S>, secure: bool, config: Arc<Config>) -> Result<()>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let mut s = Session {
        conn,
        secure,
        config,
        buf: Vec::new(),
        user_name: None,
        user: None,
        uidvalidity: 0,
        maildrop: Vec::new(),
        auth_failures: 0,
    };
    s.send(b"+OK pecd POP3 ready\r\n").await?;
    s.run().await
}

/// The header and the first `lines` lines of the body, for TOP.
fn top(raw: &[u8], lines: usize) -> Vec<u8> {
    let (header, body) = mime::split_header(raw);
    let mut out = header.to_vec();
    let mut taken = 0;
    for (i, &b) in body.iter().enumerate() {
        if taken == lines {
            break;
        }
        if b == b'\n' {
            taken += 1;
        }
        if taken == lines || i + 1 == body.len() {
            out.extend_from_slice(&body[..=i]);
            break;
        }
    }
    out
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send> Session<S> {
    async fn send(&mut self, bytes: &[u8]) -> Result<()> {
        self.conn.write_all(bytes).await?;
        self.conn.flush().await?;
        Ok(())
    }

    async fn ok(&mut self, text: &str) -> Result<()> {
        self.send(format!("+OK {text}\r\n").as_bytes()).await
    }

    async fn err(&mut self, text: &str) -> Result<()> {
        self.send(format!("-ERR {text}\r\n").as_bytes()).await
    }

    /// The next command line without its line end; `None` at end of stream.
    async fn line(&mut self) -> Result<Option<String>> {
        let mut chunk = [0u8; 1024];
        loop {
            if let Some(pos) = self.buf.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=pos).collect();
                let line = String::from_utf8_lossy(&line)
                    .trim_end_matches(['\r', '\n'])
                    .to_string();
                return Ok(Some(line));
            }
            if self.buf.len() > MAX_LINE {
                return Err(Error::Protocol("POP3 line too long".into()));
            }
            let limits = &self.config.limits;
            let silence = match self.user {
                Some(_) => limits.idle_timeout,
                None => limits.login_timeout,
            };
            let read = tokio::time::timeout(silence, self.conn.read(&mut chunk)).await;
            match read {
                Err(_) | Ok(Ok(0)) => return Ok(None),
                Ok(Ok(n)) => self.buf.extend_from_slice(&chunk[..n]),
                Ok(Err(e)) => return Err(e.into()),
            }
        }
    }

    async fn run(&mut self) -> Result<()> {
        while let Some(line) = self.line().await? {
            let (cmd, arg) = match line.split_once(' ') {
                Some((c, a)) => (c.to_ascii_uppercase(), a.to_string()),
                None => (line.to_ascii_uppercase(), String::new()),
            };
            tracing::debug!(command = %cmd, user = ?self.user, "pop3 command");
            let go_on = if self.user.is_none() {
                self.authorization(&cmd, &arg).await?
            } else {
                self.transaction(&cmd, &arg).await?
            };
            if !go_on {
                break;
            }
        }
        Ok(())
    }

    async fn capa(&mut self) -> Result<()> {
        let mut out = String::from(
            "+OK Capability list follows\r\nTOP\r\nUIDL\r\nRESP-CODES\r\nPIPELINING\r\n",
        );
        if self.user.is_none() {
            if self.secure {
                out.push_str("USER\r\nSASL PLAIN\r\n");
            } else if self.config.tls.is_some() {
                out.push_str("STLS\r\n");
            }
        }
        out.push_str("IMPLEMENTATION pecd\r\n.\r\n");
        self.send(out.as_bytes()).await
    }

    async fn authorization(&mut self, cmd: &str, arg: &str) -> Result<bool> {
        match cmd {
            "CAPA" => self.capa().await?,
            "QUIT" => {
                self.ok("Bye").await?;
                return Ok(false);
            }
            "NOOP" => self.ok("").await?,
            "STLS" => match self.config.tls.clone().filter(|_| !self.secure) {
                Some(tls) => {
                    self.ok("Begin TLS negotiation").await?;
                    self.conn.start_tls(tls).await?;
                    self.secure = true;
                    // Nothing sent before the handshake counts (RFC 2595 4).
                    self.buf.clear();
                    self.user_name = None;
                }
                None => self.err("STLS not available").await?,
            },
            _ if !self.secure => self.err("[SYS/PERM] Use STLS first").await?,
            "USER" if !arg.is_empty() => {
                self.user_name = Some(arg.to_string());
                self.ok("Send PASS").await?;
            }
            "PASS" => match self.user_name.take() {
                Some(user) => return self.login(&user, arg).await,
                None => self.err("Send USER first").await?,
            },
            "AUTH" => {
                let mut parts = arg.split_whitespace();
                let mech = parts.next().unwrap_or_default().to_ascii_uppercase();
                if mech != "PLAIN" {
                    self.err("Unsupported mechanism").await?;
                    return Ok(true);
                }
                let initial = match parts.next() {
                    Some(ir) => ir.to_string(),
                    None => {
                        self.send(b"+ \r\n").await?;
                        match self.line().await? {
                            Some(l) => l,
                            None => return Ok(false),
                        }
                    }
                };
                if initial == "*" {
                    self.err("Authentication cancelled").await?;
                    return Ok(true);
                }
                let decoded = pec_net::sasl::decode(initial.as_bytes());
                match decoded.as_deref().and_then(pec_net::sasl::plain) {
                    Some(c) => return self.login(&c.user, &c.password).await,
                    None => self.err("Malformed PLAIN data").await?,
                }
            }
            _ => self.err("Unknown command or not authenticated").await?,
        }
        Ok(true)
    }

    /// A store failure during login: a temporary error (RFC 3206 `SYS/TEMP`), not a
    /// failed attempt; the client may try again.
    async fn unavailable(&mut self, e: pec_store::Error) -> Result<bool> {
        tracing::error!(error = %e, "store failure during login");
        self.err("[SYS/TEMP] Login temporarily unavailable, try again later")
            .await?;
        Ok(true)
    }

    async fn login(&mut self, user: &str, pass: &str) -> Result<bool> {
        let peer = self.conn.peer().ip();
        let checked = match self.config.check_login(peer, user, pass).await {
            Err(Error::Store(e)) => return self.unavailable(e).await,
            other => other?,
        };
        match checked {
            Some(address) => {
                let a = address.clone();
                let loaded = self
                    .config
                    .store(move |s| Ok((s.select(&a, "INBOX")?, s.messages(&a, "INBOX")?)))
                    .await;
                let (selected, messages) = match loaded {
                    Err(Error::Store(e)) => return self.unavailable(e).await,
                    other => other?,
                };
                self.uidvalidity = selected.uidvalidity;
                self.maildrop = messages
                    .into_iter()
                    .map(|m| Entry {
                        uid: m.uid,
                        size: m.size,
                        deleted: false,
                    })
                    .collect();
                tracing::info!(user = %address, "pop3 login");
                self.user = Some(address);
                let n = self.maildrop.len();
                self.ok(&format!("Maildrop has {n} messages")).await?;
                Ok(true)
            }
            None => {
                self.auth_failures += 1;
                tracing::warn!(user = %user, failures = self.auth_failures, "pop3 login failed");
                tokio::time::sleep(self.config.limits.auth_failure_delay).await;
                self.err("[AUTH] Invalid credentials").await?;
                Ok(self.auth_failures < self.config.limits.max_auth_failures)
            }
        }
    }

    /// The live message numbered `arg` (1-based), as an index.
    fn message(&self, arg: &str) -> Option<usize> {
        let n: usize = arg.split_whitespace().next()?.parse().ok()?;
        let i = n.checked_sub(1)?;
        self.maildrop.get(i).filter(|e| !e.deleted).map(|_| i)
    }

    async fn read(&mut self, index: usize) -> Result<Option<Vec<u8>>> {
        let user = self
            .user
            .clone()
            .ok_or_else(|| Error::Protocol("not authenticated".into()))?;
        let Some(uid) = self.maildrop.get(index).map(|e| e.uid) else {
            return Ok(None);
        };
        match self
            .config
            .store(move |s| s.fetch(&user, "INBOX", uid))
            .await
        {
            Ok(raw) => Ok(Some(raw)),
            Err(Error::Store(pec_store::Error::NoSuchMessage(_))) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn transaction(&mut self, cmd: &str, arg: &str) -> Result<bool> {
        match cmd {
            "CAPA" => self.capa().await?,
            "NOOP" => self.ok("").await?,
            "STAT" => {
                let live = self.maildrop.iter().filter(|e| !e.deleted);
                let (n, size) = live.fold((0u64, 0u64), |(n, s), e| (n + 1, s + e.size));
                self.ok(&format!("{n} {size}")).await?;
            }
            "LIST" | "UIDL" => {
                let item = |i: usize, e: &Entry| {
                    if cmd == "LIST" {
                        format!("{} {}", i + 1, e.size)
                    } else {
                        format!("{} {}-{}", i + 1, self.uidvalidity, e.uid)
                    }
                };
                if arg.is_empty() {
                    let mut out = String::from("+OK\r\n");
                    for (i, e) in self.maildrop.iter().enumerate().filter(|(_, e)| !e.deleted) {
                        out.push_str(&item(i, e));
                        out.push_str("\r\n");
                    }
                    out.push_str(".\r\n");
                    self.send(out.as_bytes()).await?;
                } else {
                    let line = self
                        .message(arg)
                        .and_then(|i| self.maildrop.get(i).map(|e| item(i, e)));
                    match line {
                        Some(line) => self.ok(&line).await?,
                        None => self.err("No such message").await?,
                    }
                }
            }
            "RETR" | "TOP" => {
                let lines = if cmd == "TOP" {
                    match arg
                        .split_whitespace()
                        .nth(1)
                        .and_then(|n| n.parse::<usize>().ok())
                    {
                        Some(n) => Some(n),
                        None => {
                            self.err("Usage: TOP msg lines").await?;
                            return Ok(true);
                        }
                    }
                } else {
                    None
                };
                let raw = match self.message(arg) {
                    Some(i) => self.read(i).await?,
                    None => None,
                };
                let Some(raw) = raw else {
                    self.err("No such message").await?;
                    return Ok(true);
                };
                let body = match lines {
                    Some(n) => top(&raw, n),
                    None => raw,
                };
                let mut out = b"+OK message follows\r\n".to_vec();
                pec_net::dot::stuff(&body, &mut out);
                self.send(&out).await?;
            }
            "DELE" => match self.message(arg) {
                Some(i) => {
                    if let Some(e) = self.maildrop.get_mut(i) {
                        e.deleted = true;
                    }
                    self.ok("Marked for deletion").await?;
                }
                None => self.err("No such message").await?,
            },
            "RSET" => {
                self.maildrop.iter_mut().for_each(|e| e.deleted = false);
                self.ok("").await?;
            }
            "QUIT" => {
                let user = self
                    .user
                    .clone()
                    .ok_or_else(|| Error::Protocol("not authenticated".into()))?;
                let uids: Vec<u32> = self
                    .maildrop
                    .iter()
                    .filter(|e| e.deleted)
                    .map(|e| e.uid)
                    .collect();
                if !uids.is_empty() {
                    let u = user.clone();
                    let result = self
                        .config
                        .store(move |s| {
                            s.store_flags(
                                &u,
                                "INBOX",
                                &uids,
                                FlagOp::Add,
                                &["\\Deleted".to_string()],
                            )?;
                            s.expunge(&u, "INBOX", Some(&uids))
                        })
                        .await;
                    if let Err(e) = result {
                        tracing::error!(error = %e, "pop3 update failed");
                        self.err("[SYS/TEMP] Some messages were not deleted")
                            .await?;
                        return Ok(false);
                    }
                    self.config.notifier.changed(&user, "INBOX");
                }
                self.ok("Bye").await?;
                return Ok(false);
            }
            _ => self.err("Unknown command").await?,
        }
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_keeps_the_header_and_the_first_lines() {
        let raw = b"H: 1\r\n\r\nl1\r\nl2\r\nl3\r\n";
        assert_eq!(top(raw, 0), b"H: 1\r\n\r\n");
        assert_eq!(top(raw, 2), b"H: 1\r\n\r\nl1\r\nl2\r\n");
        assert_eq!(top(raw, 9), raw);
    }
}
