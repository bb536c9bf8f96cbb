//! IDLE (RFC 2177): changes of the selected folder pushed while the client waits.

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
        self.flush().await?;
        let mut changes = self.selected.as_ref().map(|s| s.changes.clone());
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
                Next::Literal(_) | Next::SyncLiteralTooLarge | Next::Overflow(_) => {
                    self.bye("Expected DONE")?;
                    self.flush().await?;
                    return Err(Error::Protocol("unexpected input in IDLE".into()));
                }
            }
            let changed = async {
                match changes.as_mut() {
                    Some(rx) => rx.changed().await.is_ok(),
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                read = tokio::time::timeout(self.config.limits.idle_timeout, self.conn.read(&mut buf)) => {
                    match read {
                        Err(_) => return Err(Error::Protocol("idle timeout in IDLE".into())),
                        // The client left while idling: how clients quit, not a fault.
                        Ok(Ok(0)) => {
                            return Err(Error::Io(std::io::Error::new(
                                std::io::ErrorKind::UnexpectedEof,
                                "connection closed in IDLE",
                            )));
                        }
                        Ok(Ok(n)) => self.input.feed(&buf[..n]),
                        Ok(Err(e)) => return Err(e.into()),
                    }
                }
                alive = changed => {
                    if !alive {
                        changes = None;
                    }
                    self.refresh(true).await?;
                    self.flush().await?;
                }
            }
        }
    }
}
