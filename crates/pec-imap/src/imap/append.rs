//! APPEND, with MULTIAPPEND (RFC 3502) and CATENATE (RFC 4469): every message of the
//! command is put together first (CATENATE's URLs read from the user's own
//! mailboxes), then all are stored in one store batch, so that they are stored all or
//! none, and APPENDUID names them all.

use pec_store::{Batch, NewDelivery};

use super::*;
use crate::append_command::{Append, AppendMessage, CatPart, Content, parse_url};

/// `NO [TOOBIG]`: a message put together over the literal bound, or a command whose
/// messages are over the command bound together.
fn too_big() -> Done {
    Done {
        kind: StatusKind::No,
        code: Some(Code::TooBig),
        text: "Message too large".into(),
    }
}

/// `NO [BADURL url]` (RFC 4469 6): the URL is echoed when it can be without breaking
/// the response code.
fn bad_url(url: &[u8]) -> Done {
    let printable = url
        .iter()
        .all(|&b| b.is_ascii_graphic() && b != b']' && b != b'[');
    let code = if printable && !url.is_empty() {
        [b"BADURL ".as_slice(), url].concat()
    } else {
        b"BADURL".to_vec()
    };
    Done {
        kind: StatusKind::No,
        code: Some(Code::Other(
            imap_codec::imap_types::response::CodeOther::unvalidated(code),
        )),
        text: "CATENATE URL cannot be used".into(),
    }
}

/// APPENDUID for the stored messages (RFC 4315; a UID set for MULTIAPPEND).
fn append_uid(uidvalidity: u32, uids: &[u32]) -> Result<Code<'static>> {
    match uids {
        [uid] => Ok(Code::AppendUid {
            uid_validity: nz(uidvalidity)?,
            uid: nz(*uid)?,
        }),
        _ => {
            let set: Vec<String> = uids.iter().map(u32::to_string).collect();
            let text = format!("APPENDUID {uidvalidity} {}", set.join(","));
            Ok(Code::Other(
                imap_codec::imap_types::response::CodeOther::unvalidated(text.into_bytes()),
            ))
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send> Session<S> {
    /// APPEND of one message, as the codec decodes it.
    pub(super) async fn append_one(
        &mut self,
        mailbox: &Mailbox<'_>,
        flags: Vec<Flag<'static>>,
        date: Option<DateTime>,
        message: LiteralOrLiteral8<'static>,
    ) -> Result<Done> {
        let bytes = match message {
            LiteralOrLiteral8::Literal(l) => l.into_inner().to_vec(),
            LiteralOrLiteral8::Literal8(l) => l.data.to_vec(),
        };
        let request = Append {
            mailbox: mailbox_name(mailbox),
            messages: vec![AppendMessage {
                flags: flags.iter().map(|f| f.to_string()).collect(),
                date: date.map(|d| d.as_ref().timestamp()),
                content: Content::Literal(bytes),
            }],
        };
        self.append(request).await
    }

    /// APPEND of one message or more, all stored or none.
    pub(super) async fn append(&mut self, request: Append) -> Result<Done> {
        let user = self.user()?;
        let folder = request.mailbox;
        if is_archive(&folder) {
            return Ok(archive::read_only());
        }
        let catenates = request
            .messages
            .iter()
            .any(|m| matches!(m.content, Content::Catenate(_)));
        if catenates {
            // A missing destination is told as such (TRYCREATE) before any URL is read.
            let (u, f) = (user.clone(), folder.clone());
            self.config.store(move |s| s.select(&u, &f)).await?;
        }
        let limits = &self.config.limits;
        let (max_message, max_total) = (limits.max_literal as usize, largest_command(limits));
        let now = chrono::Utc::now().timestamp();
        let mut deliveries = Vec::with_capacity(request.messages.len());
        let mut total = 0usize;
        for m in request.messages {
            let bytes = match m.content {
                Content::Literal(bytes) => bytes,
                Content::Catenate(parts) => match self.catenate(&user, parts, max_message).await? {
                    Ok(bytes) => bytes,
                    Err(refusal) => return Ok(refusal),
                },
            };
            if bytes.is_empty() {
                return Ok(Done::no("Empty message"));
            }
            total = total.saturating_add(bytes.len());
            if bytes.len() > max_message || total > max_total {
                return Ok(too_big());
            }
            deliveries.push(NewDelivery {
                address: user.clone(),
                folder: folder.clone(),
                bytes,
                flags: m.flags,
                internaldate: m.date.unwrap_or(now),
            });
        }
        let batch = Batch {
            deliveries,
            ..Batch::default()
        };
        let committed = self
            .config
            .store(move |s| s.commit_batch(batch))
            .await
            .map_err(|e| match e {
                // The item's own error says why (no such folder, over quota).
                Error::Store(pec_store::Error::BatchItem { source, .. }) => Error::Store(*source),
                other => other,
            })?;
        let Some(first) = committed.delivered.first() else {
            return Err(Error::Protocol("APPEND stored nothing".into()));
        };
        let uidvalidity = first.uidvalidity;
        self.config.notifier.changed(&user, &first.folder);
        let uids: Vec<u32> = committed.delivered.iter().map(|d| d.uid).collect();
        Ok(Done::ok_code(
            append_uid(uidvalidity, &uids)?,
            "APPEND completed",
        ))
    }

    /// The message a CATENATE makes, or the refusal to make it.
    async fn catenate(
        &mut self,
        user: &str,
        parts: Vec<CatPart>,
        max: usize,
    ) -> Result<std::result::Result<Vec<u8>, Done>> {
        let mut out = Vec::new();
        for part in parts {
            let piece = match part {
                CatPart::Text(text) => text,
                CatPart::Url(url) => match self.url_bytes(user, &url).await? {
                    Some(bytes) => bytes,
                    None => return Ok(Err(bad_url(&url))),
                },
            };
            if out.len().saturating_add(piece.len()) > max {
                return Ok(Err(too_big()));
            }
            out.extend_from_slice(&piece);
        }
        Ok(Ok(out))
    }

    /// The bytes an IMAP URL names in `user`'s own mailboxes; `None` when it names
    /// nothing there (another user, another UIDVALIDITY, no such message or section).
    async fn url_bytes(&mut self, user: &str, url: &[u8]) -> Result<Option<Vec<u8>>> {
        let Some(url) = parse_url(url) else {
            return Ok(None);
        };
        if url
            .user
            .as_ref()
            .is_some_and(|u| !u.eq_ignore_ascii_case(user))
            || is_archive(&url.mailbox)
        {
            return Ok(None);
        }
        let (u, f, uid) = (user.to_string(), url.mailbox.clone(), url.uid.get());
        let want = url.uidvalidity;
        let found = self
            .config
            .store(move |s| {
                let state = s.select(&u, &f)?;
                if want.is_some_and(|v| v != state.uidvalidity) {
                    return Ok(None);
                }
                s.fetch(&u, &f, uid).map(Some)
            })
            .await;
        let raw = match found {
            Ok(Some(raw)) => raw,
            Ok(None)
            | Err(Error::Store(
                pec_store::Error::NoSuchFolder(_) | pec_store::Error::NoSuchMessage(_),
            )) => return Ok(None),
            Err(e) => return Err(e),
        };
        let parsed = mime::parse(&raw);
        let Some(mut bytes) = mime::section(&raw, parsed.message(), url.section.as_ref()) else {
            return Ok(None);
        };
        if let Some((offset, length)) = url.partial {
            let from = (offset as usize).min(bytes.len());
            let to = length.map_or(bytes.len(), |l| {
                from.saturating_add(l as usize).min(bytes.len())
            });
            bytes = bytes[from..to].to_vec();
        }
        Ok(Some(bytes))
    }
}
