//! IDLE (RFC 2177): what changes pushed while the client waits (the selected folder's
//! changes, or what NOTIFY asked for, RFC 5465 4).

use super::notify::Moment;
use super::*;

impl<S: AsyncRead + AsyncWrite + Unpin + Send> Session<S> {
    pub(super) async fn idle(&mut self, tag: &Tag<'static>) -> Result<Done> {
        let _ = tag;
        self.continuation("idling")?;
        if std::mem::take(&mut self.untold_news)
            && let Some(sel) = self.selected.as_ref()
        {
            let exists = u32::try_from(sel.messages.len()).map_err(response_err)?;
            let recent = u32::try_from(sel.recent.len()).map_err(response_err)?;
            self.data(Data::Exists(exists));
            self.data(Data::Recent(recent));
        }
        // What the last command could not report (an expunge during FETCH).
        self.news(Moment::Idle).await?;
        self.flush().await?;
        let mut buf = vec![0u8; 1024];
        loop {
            // Only DONE may come; anything that is not a short line ends the session.
            match self.input.next(&self.bounds()) {
                Next::Command => {
                    let decoded = self
                        .input
                        .fragmentizer()
                        .decode_message(&IdleDoneCodec::default());
                    return Ok(match decoded {
                        Ok(_) => Done::ok("IDLE terminated"),
                        Err(_) => Done::bad("Expected DONE"),
                    });
                }
                Next::Read => {}
                Next::Literal(_)
                | Next::SyncLiteralTooLarge
                | Next::Overflow(_)
                | Next::Id { .. } => {
                    self.bye("Expected DONE")?;
                    self.flush().await?;
                    return Err(Error::Protocol("unexpected input in IDLE".into()));
                }
            }
            let idle_timeout = self.config.limits.idle_timeout;
            let conn = &mut self.conn;
            let watcher = self.watcher.as_mut();
            let news = async move {
                match watcher {
                    Some(w) => w.changed().await,
                    None => std::future::pending().await,
                }
            };
            let (read, alive) = tokio::select! {
                read = tokio::time::timeout(idle_timeout, conn.read(&mut buf)) => (Some(read), true),
                alive = news => (None, alive),
            };
            match read {
                None => {}
                Some(Err(_)) => return Err(Error::Protocol("idle timeout in IDLE".into())),
                // The client left while idling: how clients quit, not a fault.
                Some(Ok(Ok(0))) => {
                    return Err(Error::Io(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        "connection closed in IDLE",
                    )));
                }
                Some(Ok(Ok(n))) => {
                    self.input.feed(&buf[..n]);
                    continue;
                }
                Some(Ok(Err(e))) => return Err(e.into()),
            }
            if !alive {
                self.watcher = None;
            }
            self.news(Moment::Idle).await?;
            self.flush().await?;
        }
    }
}
