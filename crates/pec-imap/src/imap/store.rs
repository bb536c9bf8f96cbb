//! Changes to messages: STORE (with UNCHANGEDSINCE), COPY/MOVE, EXPUNGE.

use super::*;

/// A STORE command's arguments.
pub(super) struct StoreRequest {
    pub(super) kind: StoreType,
    pub(super) response: StoreResponse,
    pub(super) flags: Vec<Flag<'static>>,
    pub(super) uid: bool,
    /// RFC 7162 UNCHANGEDSINCE.
    pub(super) unchanged_since: Option<u64>,
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send> Session<S> {
    /// Changes the flags of messages of the selected folder (`metas`, as the session
    /// knows them) in the store, or the read marks of archive entries; returns the
    /// messages whose flags changed.
    pub(super) async fn change_flags(
        &self,
        archive: bool,
        folder: &str,
        metas: Vec<MessageMeta>,
        op: FlagOp,
        flags: Vec<String>,
    ) -> Result<Vec<MessageMeta>> {
        let user = self.user()?;
        if archive {
            let uids = metas.iter().map(|m| m.uid).collect();
            let stored = archive::store_seen(&self.config, user, uids, (op, &flags), None).await?;
            return Ok(stored.changed);
        }
        let folder = folder.to_string();
        let uids: Vec<u32> = metas.iter().map(|m| m.uid).collect();
        self.config
            .store(move |s| s.store_flags(&user, &folder, &uids, op, &flags))
            .await
    }

    pub(super) async fn store(&mut self, set: &SequenceSet, req: StoreRequest) -> Result<Done> {
        let user = self.user()?;
        if req.unchanged_since.is_some() {
            self.condstore_on().await?;
        }
        let indices = self.resolve(set, req.uid);
        let Some(sel) = self.selected.as_ref() else {
            return Ok(Done::bad("No mailbox selected"));
        };
        let (folder, archive) = (sel.name.clone(), sel.archive);
        let uids: Vec<u32> = indices
            .iter()
            .filter_map(|&i| sel.messages.get(i).map(|m| m.uid))
            .collect();
        let op = match req.kind {
            StoreType::Add => FlagOp::Add,
            StoreType::Remove => FlagOp::Remove,
            StoreType::Replace => FlagOp::Replace,
        };
        let flags: Vec<String> = req.flags.iter().map(|f| f.to_string()).collect();
        let (u, f) = (user.clone(), folder.clone());
        let unchanged_since = req.unchanged_since;
        let (changed, modified) = if archive {
            let stored =
                archive::store_seen(&self.config, u, uids, (op, &flags), unchanged_since).await?;
            (stored.changed, stored.modified)
        } else {
            self.config
                .store(move |s| {
                    // RFC 7162 UNCHANGEDSINCE: messages changed after the given
                    // modification sequence are left alone and reported MODIFIED.
                    let (allowed, modified): (Vec<u32>, Vec<u32>) = match unchanged_since {
                        None => (uids, Vec::new()),
                        Some(limit) => {
                            let current: HashMap<u32, u64> = s
                                .messages(&u, &f)?
                                .into_iter()
                                .map(|m| (m.uid, m.modseq))
                                .collect();
                            uids.into_iter()
                                .partition(|uid| current.get(uid).is_none_or(|&m| m <= limit))
                        }
                    };
                    let changed = s.store_flags(&u, &f, &allowed, op, &flags)?;
                    Ok((changed, modified))
                })
                .await?
        };
        if !changed.is_empty() {
            self.config.notifier.changed(&user, &folder);
        }
        let (condstore, qresync) = (self.condstore, self.qresync);
        let Some(sel) = self.selected.as_mut() else {
            return Ok(Done::bad("No mailbox selected"));
        };
        let changed_uids: Vec<u32> = changed.iter().map(|c| c.uid).collect();
        for c in changed {
            if let Some(m) = sel.messages.iter_mut().find(|m| m.uid == c.uid) {
                *m = c;
            }
        }
        if sel.learn_keywords() {
            self.announce_flags()?;
        }
        let Some(sel) = self.selected.as_ref() else {
            return Ok(Done::bad("No mailbox selected"));
        };
        let mut out = Vec::new();
        let mut modified_ids = Vec::new();
        for &i in &indices {
            let Some(m) = sel.messages.get(i) else {
                continue;
            };
            if modified.contains(&m.uid) {
                modified_ids.push(if req.uid { m.uid } else { seq_of(i)?.get() });
                continue;
            }
            let mut items = Vec::new();
            if req.response == StoreResponse::Answer {
                items.push(MessageDataItem::Flags(sel.flags(m)));
            } else if !(condstore && changed_uids.contains(&m.uid)) {
                // .SILENT: only the new MODSEQ of changed messages (RFC 7162 3.1.3).
                continue;
            }
            // With QRESYNC every FETCH a STORE causes names its UID (as Dovecot does).
            if req.uid || qresync {
                items.push(MessageDataItem::Uid(nz(m.uid)?));
            }
            if condstore {
                items.push(modseq_item(m));
            }
            out.push(Data::Fetch {
                seq: seq_of(i)?,
                items: Vec1::try_from(items).map_err(response_err)?,
            });
        }
        for d in out {
            self.data(d);
        }
        if let Ok(ids) = Vec1::try_from(modified_ids) {
            let set = SequenceSet(
                ids.into_iter()
                    .map(|id| nz(id).map(|n| Sequence::Single(SeqOrUid::Value(n))))
                    .collect::<Result<Vec<_>>>()?
                    .try_into()
                    .map_err(response_err)?,
            );
            return Ok(Done::ok_code(
                Code::Modified(set),
                "Conditional STORE failed for some messages",
            ));
        }
        Ok(Done::ok("STORE completed"))
    }

    pub(super) async fn copy(
        &mut self,
        set: &SequenceSet,
        mailbox: &Mailbox<'_>,
        uid: bool,
        is_move: bool,
    ) -> Result<Done> {
        let user = self.user()?;
        let dest = mailbox_name(mailbox);
        let indices = self.resolve(set, uid);
        let Some(sel) = self.selected.as_ref() else {
            return Ok(Done::bad("No mailbox selected"));
        };
        let folder = sel.name.clone();
        let uids: Vec<u32> = indices
            .iter()
            .filter_map(|&i| sel.messages.get(i).map(|m| m.uid))
            .collect();
        if uids.is_empty() {
            return Ok(Done::ok("Nothing to do"));
        }
        let (u, f, d) = (user.clone(), folder.clone(), dest.clone());
        let copied = self
            .config
            .store(move |s| {
                if is_move {
                    s.move_messages(&u, &f, &uids, &d)
                } else {
                    s.copy(&u, &f, &uids, &d)
                }
            })
            .await?;
        self.config.notifier.changed(&user, &dest);
        let (src, dst): (Vec<u32>, Vec<u32>) = copied.uids.iter().copied().unzip();
        let code = match (uid_set(&src), uid_set(&dst)) {
            (Ok(source), Ok(destination)) => Some(Code::CopyUid {
                uid_validity: nz(copied.uidvalidity)?,
                source,
                destination,
            }),
            _ => None,
        };
        if !is_move {
            return Ok(Done {
                kind: StatusKind::Ok,
                code,
                text: "COPY completed".into(),
            });
        }
        self.config.notifier.changed(&user, &folder);
        self.untagged(StatusKind::Ok, code, "Moved")?;
        self.forget(&src)?;
        Ok(Done::ok("MOVE completed"))
    }

    /// Drops expunged UIDs from the snapshot, announcing each with EXPUNGE (with
    /// VANISHED once QRESYNC is on).
    pub(super) fn forget(&mut self, uids: &[u32]) -> Result<()> {
        let qresync = self.qresync;
        let Some(sel) = self.selected.as_mut() else {
            return Ok(());
        };
        // REMOVEFROM for live searches while the messages are still numbered.
        let removals = sel.expunging(uids);
        self.out.extend_from_slice(&removals);
        let Some(sel) = self.selected.as_mut() else {
            return Ok(());
        };
        let mut out = Vec::new();
        let mut vanished = Vec::new();
        let mut i = sel.messages.len();
        while i > 0 {
            i -= 1;
            if uids.contains(&sel.messages[i].uid) {
                let gone = sel.messages.remove(i);
                sel.recent.remove(&gone.uid);
                if qresync {
                    vanished.push(gone.uid);
                } else {
                    out.push(Data::Expunge(seq_of(i)?));
                }
            }
        }
        for d in out {
            self.data(d);
        }
        vanished.sort_unstable();
        self.vanished(false, &vanished)
    }

    pub(super) async fn expunge(&mut self, uids: Option<SequenceSet>) -> Result<Done> {
        let user = self.user()?;
        let only: Option<Vec<u32>> = match &uids {
            Some(set) => {
                let indices = self.resolve(set, true);
                let sel = self.selected.as_ref();
                Some(
                    indices
                        .iter()
                        .filter_map(|&i| sel.and_then(|s| s.messages.get(i)).map(|m| m.uid))
                        .collect(),
                )
            }
            None => None,
        };
        let Some(sel) = self.selected.as_ref() else {
            return Ok(Done::bad("No mailbox selected"));
        };
        let folder = sel.name.clone();
        let (u, f) = (user.clone(), folder.clone());
        let gone = self
            .config
            .store(move |s| s.expunge(&u, &f, only.as_deref()))
            .await?;
        if !gone.is_empty() {
            self.config.notifier.changed(&user, &folder);
        }
        self.forget(&gone)?;
        Ok(Done::ok("EXPUNGE completed"))
    }
}
