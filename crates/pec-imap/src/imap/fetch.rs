//! FETCH: items of a message, streamed to the client one item at a time.

use super::*;

/// Output buffered before it is sent while a FETCH reply is streamed.
pub(super) const STREAM_CHUNK: usize = 64 * 1024;

impl<S: AsyncRead + AsyncWrite + Unpin + Send> Session<S> {
    pub(super) async fn fetch(
        &mut self,
        set: &SequenceSet,
        names: MacroOrMessageDataItemNames<'static>,
        uid: bool,
        changed_since: Option<u64>,
    ) -> Result<Done> {
        let mut names = match names {
            MacroOrMessageDataItemNames::Macro(m) => {
                let mut v = vec![
                    MessageDataItemName::Flags,
                    MessageDataItemName::InternalDate,
                    MessageDataItemName::Rfc822Size,
                ];
                match m {
                    Macro::Fast => {}
                    Macro::All => v.push(MessageDataItemName::Envelope),
                    _ => v.extend([MessageDataItemName::Envelope, MessageDataItemName::Body]),
                }
                v
            }
            MacroOrMessageDataItemNames::MessageDataItemNames(v) => v,
        };
        if uid && !names.contains(&MessageDataItemName::Uid) {
            names.insert(0, MessageDataItemName::Uid);
        }
        // FETCH MODSEQ and CHANGEDSINCE enable CONDSTORE (RFC 7162 3.1).
        if changed_since.is_some() || names.contains(&MessageDataItemName::ModSeq) {
            self.condstore_on().await?;
        }
        // With CONDSTORE on, FLAGS come with MODSEQ; CHANGEDSINCE implies it.
        if (changed_since.is_some()
            || (self.condstore && names.contains(&MessageDataItemName::Flags)))
            && !names.contains(&MessageDataItemName::ModSeq)
        {
            names.push(MessageDataItemName::ModSeq);
        }
        let needs_bytes = names.iter().any(|n| {
            !matches!(
                n,
                MessageDataItemName::Flags
                    | MessageDataItemName::Uid
                    | MessageDataItemName::Rfc822Size
                    | MessageDataItemName::InternalDate
                    | MessageDataItemName::ModSeq
            )
        });
        let (folder, archive, read_only) = match self.selected.as_ref() {
            Some(s) => (s.name.clone(), s.archive, s.read_only),
            None => return Ok(Done::bad("No mailbox selected")),
        };
        let marks_seen = !read_only
            && names.iter().any(|n| {
                matches!(
                    n,
                    MessageDataItemName::BodyExt { peek: false, .. }
                        | MessageDataItemName::Binary { peek: false, .. }
                        | MessageDataItemName::Rfc822
                        | MessageDataItemName::Rfc822Text
                )
            });
        let user = self.user()?;
        for index in self.resolve(set, uid) {
            let Some(mut meta) = self
                .selected
                .as_ref()
                .and_then(|s| s.messages.get(index))
                .cloned()
            else {
                continue;
            };
            if changed_since.is_some_and(|since| meta.modseq <= since) {
                continue;
            }
            let Some(raw) = self
                .bytes_if_present(needs_bytes, archive, &folder, meta.uid)
                .await?
            else {
                continue;
            };
            let parsed = needs_bytes.then(|| mime::parse(&raw));
            if binary::unknown_encoding(&names, &raw, parsed.as_ref()) {
                // RFC 3516 4.2: the whole request fails.
                return Ok(Done {
                    kind: StatusKind::No,
                    code: Some(Code::UnknownCte),
                    text: "Unknown Content-Transfer-Encoding".into(),
                });
            }
            let mut set_seen = false;
            if marks_seen && !has_flag(&meta, "\\Seen") {
                let changed = self
                    .change_flags(
                        archive,
                        &folder,
                        vec![meta.clone()],
                        FlagOp::Add,
                        vec!["\\Seen".to_string()],
                    )
                    .await?;
                if let Some(c) = changed.into_iter().next() {
                    meta = c;
                    set_seen = true;
                    if let Some(slot) = self
                        .selected
                        .as_mut()
                        .and_then(|s| s.messages.get_mut(index))
                    {
                        *slot = meta.clone();
                    }
                    self.config.notifier.changed(&user, &folder);
                }
            }
            let mut extra = Vec::new();
            if set_seen && !names.contains(&MessageDataItemName::Flags) {
                extra.push(MessageDataItem::Flags(self.flags_of(&meta)));
                if self.condstore && !names.contains(&MessageDataItemName::ModSeq) {
                    extra.push(modseq_item(&meta));
                }
            }
            // One item at a time to the client: a reply naming the same large section
            // many times never sits in memory whole.
            let seq = seq_of(index)?;
            self.out
                .extend_from_slice(format!("* {seq} FETCH (").as_bytes());
            let mut first = true;
            for name in &names {
                if let Some(encoded) = binary::item(name, &raw, parsed.as_ref()) {
                    self.stream_encoded(&encoded, &mut first).await?;
                    continue;
                }
                let item = self.item(name, &meta, &raw, parsed.as_ref())?;
                self.stream_item(seq, item, &mut first).await?;
            }
            for item in extra {
                self.stream_item(seq, item, &mut first).await?;
            }
            self.out.extend_from_slice(b")\r\n");
        }
        Ok(Done::ok("FETCH completed"))
    }

    /// One FETCH item of a message.
    pub(super) fn item(
        &self,
        name: &MessageDataItemName<'static>,
        meta: &MessageMeta,
        raw: &[u8],
        parsed: Option<&Parsed<'_>>,
    ) -> Result<MessageDataItem<'static>> {
        let message = parsed.and_then(Parsed::message);
        Ok(match name {
            MessageDataItemName::Uid => MessageDataItem::Uid(nz(meta.uid)?),
            MessageDataItemName::Flags => MessageDataItem::Flags(self.flags_of(meta)),
            MessageDataItemName::InternalDate => {
                MessageDataItem::InternalDate(internal_date(meta.internaldate)?)
            }
            MessageDataItemName::Rfc822Size => {
                MessageDataItem::Rfc822Size(u32::try_from(meta.size).unwrap_or(u32::MAX))
            }
            MessageDataItemName::ModSeq => modseq_item(meta),
            MessageDataItemName::Envelope => MessageDataItem::Envelope(mime::envelope(message)),
            MessageDataItemName::BodyStructure => {
                MessageDataItem::BodyStructure(mime::body_structure(raw, parsed))
            }
            MessageDataItemName::Body => {
                MessageDataItem::Body(mime::without_extensions(mime::body_structure(raw, parsed)))
            }
            MessageDataItemName::Rfc822 => MessageDataItem::Rfc822(mime::literal(raw)),
            MessageDataItemName::Rfc822Header => {
                MessageDataItem::Rfc822Header(mime::literal(mime::split_header(raw).0))
            }
            MessageDataItemName::Rfc822Text => {
                MessageDataItem::Rfc822Text(mime::literal(mime::split_header(raw).1))
            }
            MessageDataItemName::BodyExt {
                section, partial, ..
            } => {
                let mut bytes = mime::section(raw, message, section.as_ref()).unwrap_or_default();
                let origin = partial.map(|(start, len)| {
                    let start_at = (start as usize).min(bytes.len());
                    let end = start_at.saturating_add(len.get() as usize).min(bytes.len());
                    bytes = bytes[start_at..end].to_vec();
                    start
                });
                MessageDataItem::BodyExt {
                    section: section.clone(),
                    origin,
                    data: mime::literal(bytes),
                }
            }
            // Encoded by `binary::item`, which the codec cannot do (no origin octet).
            MessageDataItemName::Binary { .. } | MessageDataItemName::BinarySize { .. } => {
                return Err(Error::Response("BINARY items are encoded apart".into()));
            }
        })
    }

    /// Appends one item of the FETCH reply of message `seq` to the output, sending the
    /// output once it holds more than [`STREAM_CHUNK`] bytes.
    pub(super) async fn stream_item(
        &mut self,
        seq: NonZeroU32,
        item: MessageDataItem<'static>,
        first: &mut bool,
    ) -> Result<()> {
        // The codec encodes whole responses: encode a reply with this item alone and keep
        // what is between "* seq FETCH (" and ")\r\n".
        let encoded = ResponseCodec::default()
            .encode(&Response::Data(Data::Fetch {
                seq,
                items: Vec1::from(item),
            }))
            .dump();
        let prefix = format!("* {seq} FETCH (");
        let inner = encoded
            .strip_prefix(prefix.as_bytes())
            .and_then(|b| b.strip_suffix(b")\r\n"))
            .ok_or_else(|| Error::Response("unexpected FETCH encoding".into()))?;
        self.stream_encoded(inner, first).await
    }

    /// Appends one encoded item of a FETCH reply, as [`Self::stream_item`] does.
    pub(super) async fn stream_encoded(&mut self, inner: &[u8], first: &mut bool) -> Result<()> {
        if !std::mem::take(first) {
            self.out.push(b' ');
        }
        self.out.extend_from_slice(inner);
        if self.out.len() > STREAM_CHUNK {
            self.flush().await?;
        }
        Ok(())
    }
}
