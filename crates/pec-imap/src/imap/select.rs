//! SELECT/EXAMINE, STATUS, and keeping the selected folder in step with the store (what a session reports between commands).

use super::*;

impl<S: AsyncRead + AsyncWrite + Unpin + Send> Session<S> {
    /// The folder's messages from the store (the archive's entries for the archive).
    pub(super) async fn load(&self, folder: &str) -> Result<Vec<MessageMeta>> {
        let user = self.user()?;
        if is_archive(folder) {
            return archive::messages(&self.config, user).await;
        }
        let folder = folder.to_string();
        self.config.store(move |s| s.messages(&user, &folder)).await
    }

    /// A message's bytes (an archive entry's when the archive is selected).
    pub(super) async fn fetch_bytes(
        &self,
        sel_archive: bool,
        folder: &str,
        uid: u32,
    ) -> Result<Vec<u8>> {
        let user = self.user()?;
        if sel_archive {
            return archive::bytes(&self.config, user, uid).await;
        }
        let folder = folder.to_string();
        self.config
            .store(move |s| s.fetch(&user, &folder, uid))
            .await
    }

    /// The bytes of message `uid` when `load` is set (an empty body otherwise), or `None`
    /// when another session expunged it and this one was not told yet: FETCH and SEARCH
    /// skip such a message rather than fail.
    pub(super) async fn bytes_if_present(
        &self,
        load: bool,
        sel_archive: bool,
        folder: &str,
        uid: u32,
    ) -> Result<Option<Vec<u8>>> {
        if !load {
            return Ok(Some(Vec::new()));
        }
        match self.fetch_bytes(sel_archive, folder, uid).await {
            Ok(raw) => Ok(Some(raw)),
            Err(Error::Store(pec_store::Error::NoSuchMessage(_))) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The highest UID of `folder` other sessions were told of as `\Recent` (claiming
    /// those up to `highest` with `claim`); nothing in the archive is ever recent.
    pub(super) fn claimed_recent(
        &self,
        folder: &str,
        uidvalidity: u32,
        highest: u32,
        claim: bool,
    ) -> Result<u32> {
        if is_archive(folder) {
            return Ok(u32::MAX);
        }
        Ok(self
            .config
            .notifier
            .claim_recent(&self.user()?, folder, uidvalidity, highest, claim))
    }

    pub(super) async fn select(
        &mut self,
        mailbox: &Mailbox<'_>,
        examine: bool,
        parameters: &[SelectParameter],
    ) -> Result<Done> {
        self.selected = None;
        self.untold_news = false;
        for p in parameters {
            match p {
                SelectParameter::CondStore => self.condstore = true,
                SelectParameter::QResync { .. } => {
                    return Ok(Done::bad("QRESYNC is not supported"));
                }
            }
        }
        let user = self.user()?;
        let name = mailbox_name(mailbox);
        let archive = is_archive(&name);
        let state = if archive {
            None
        } else {
            let (u, f) = (user.clone(), name.clone());
            Some(self.config.store(move |s| s.select(&u, &f)).await?)
        };
        // Watched before the messages are read, so nothing delivered in between is missed.
        let changes = self.config.notifier.watch(&user, &name);
        let messages = self.load(&name).await?;
        let pec_store::Selected {
            uidvalidity,
            uidnext,
            highestmodseq,
            ..
        } = match state {
            Some(state) => state,
            None => archive::state(&messages)?,
        };
        let read_only = examine;
        let exists = u32::try_from(messages.len()).map_err(response_err)?;
        let highest_uid = messages.last().map_or(0, |m| m.uid);
        let claimed = self.claimed_recent(&name, uidvalidity, highest_uid, !read_only)?;
        let recent: HashSet<u32> = messages
            .iter()
            .map(|m| m.uid)
            .filter(|&u| u > claimed)
            .collect();
        let mut sel = Selected {
            name,
            read_only,
            archive,
            messages,
            changes,
            uidvalidity,
            recent,
            keywords: BTreeSet::new(),
        };
        sel.learn_keywords();
        let (flags, perm) = sel.flag_lists();
        self.data(Data::Flags(flags));
        self.data(Data::Exists(exists));
        self.data(Data::Recent(
            u32::try_from(sel.recent.len()).map_err(response_err)?,
        ));
        let messages = &sel.messages;
        if let Some(first_unseen) = messages.iter().position(|m| !has_flag(m, "\\Seen")) {
            self.untagged(
                StatusKind::Ok,
                Some(Code::Unseen(seq_of(first_unseen)?)),
                "First unseen",
            )?;
        }
        self.untagged(
            StatusKind::Ok,
            Some(Code::UidValidity(nz(uidvalidity)?)),
            "UIDs valid",
        )?;
        self.untagged(
            StatusKind::Ok,
            Some(Code::UidNext(nz(uidnext.max(1))?)),
            "Predicted next UID",
        )?;
        self.untagged(
            StatusKind::Ok,
            Some(Code::PermanentFlags(perm)),
            "Flags permitted",
        )?;
        if let Some(h) = NonZeroU64::new(highestmodseq) {
            self.untagged(StatusKind::Ok, Some(Code::HighestModSeq(h)), "Highest")?;
        }
        self.selected = Some(sel);
        Ok(if read_only {
            Done::ok_code(Code::ReadOnly, "EXAMINE completed")
        } else {
            Done::ok_code(Code::ReadWrite, "SELECT completed")
        })
    }

    /// Reports what changed in the selected folder since the client last
    /// heard: EXPUNGE (if allowed now), FETCH FLAGS, EXISTS; `true` when new
    /// messages were announced.
    pub(super) async fn refresh(&mut self, allow_expunge: bool) -> Result<bool> {
        let Some(sel) = self.selected.as_mut() else {
            return Ok(false);
        };
        sel.changes.borrow_and_update();
        let name = sel.name.clone();
        let fresh = self.load(&name).await?;
        let condstore = self.condstore;
        let user = self.user()?;
        let notifier = self.config.notifier.clone();
        let Some(sel) = self.selected.as_mut() else {
            return Ok(false);
        };
        let by_uid: HashMap<u32, &MessageMeta> = fresh.iter().map(|m| (m.uid, m)).collect();
        let mut responses = Vec::new();
        if allow_expunge {
            let mut i = sel.messages.len();
            while i > 0 {
                i -= 1;
                if !by_uid.contains_key(&sel.messages[i].uid) {
                    let gone = sel.messages.remove(i);
                    sel.recent.remove(&gone.uid);
                    responses.push(Data::Expunge(seq_of(i)?));
                }
            }
        }
        let mut changed = Vec::new();
        for (i, m) in sel.messages.iter_mut().enumerate() {
            if let Some(f) = by_uid.get(&m.uid)
                && (f.flags != m.flags || (condstore && f.modseq != m.modseq))
            {
                m.flags = f.flags.clone();
                m.modseq = f.modseq;
                changed.push(i);
            }
        }
        let last = sel.messages.last().map_or(0, |m| m.uid);
        let before = sel.messages.len();
        sel.messages
            .extend(fresh.iter().filter(|m| m.uid > last).cloned());
        let arrived_any = sel.messages.len() != before;
        let new_keywords = sel.learn_keywords();
        for i in changed {
            let Some(m) = sel.messages.get(i) else {
                continue;
            };
            let mut items = vec![
                MessageDataItem::Uid(nz(m.uid)?),
                MessageDataItem::Flags(sel.flags(m)),
            ];
            if condstore {
                items.push(modseq_item(m));
            }
            responses.push(Data::Fetch {
                seq: seq_of(i)?,
                items: Vec1::try_from(items).map_err(response_err)?,
            });
        }
        if sel.messages.len() != before {
            let highest = sel.messages.last().map_or(0, |m| m.uid);
            let claimed = if sel.archive {
                u32::MAX
            } else {
                notifier.claim_recent(&user, &sel.name, sel.uidvalidity, highest, !sel.read_only)
            };
            let arrived: Vec<u32> = sel.messages[before..]
                .iter()
                .map(|m| m.uid)
                .filter(|&u| u > claimed)
                .collect();
            sel.recent.extend(arrived);
            responses.push(Data::Exists(
                u32::try_from(sel.messages.len()).map_err(response_err)?,
            ));
            responses.push(Data::Recent(
                u32::try_from(sel.recent.len()).map_err(response_err)?,
            ));
        }
        if new_keywords {
            self.announce_flags()?;
        }
        for r in responses {
            self.data(r);
        }
        Ok(arrived_any)
    }

    /// FLAGS and PERMANENTFLAGS again, after keywords new to the client appeared.
    pub(super) fn announce_flags(&mut self) -> Result<()> {
        let Some(sel) = self.selected.as_ref() else {
            return Ok(());
        };
        let (flags, perm) = sel.flag_lists();
        let read_only = sel.read_only;
        self.data(Data::Flags(flags));
        if !read_only {
            self.untagged(
                StatusKind::Ok,
                Some(Code::PermanentFlags(perm)),
                "Flags permitted",
            )?;
        }
        Ok(())
    }

    pub(super) async fn status(
        &mut self,
        mailbox: &Mailbox<'static>,
        names: &[StatusDataItemName],
    ) -> Result<Done> {
        let user = self.user()?;
        let name = mailbox_name(mailbox);
        let messages = self.load(&name).await?;
        let sel = if is_archive(&name) {
            archive::state(&messages)?
        } else {
            let n = name.clone();
            self.config.store(move |s| s.select(&user, &n)).await?
        };
        let count = |f: &dyn Fn(&MessageMeta) -> bool| {
            u32::try_from(messages.iter().filter(|m| f(m)).count()).unwrap_or(u32::MAX)
        };
        let mut items = Vec::new();
        for n in names {
            items.push(match n {
                StatusDataItemName::Messages => StatusDataItem::Messages(sel.exists),
                StatusDataItemName::Recent => {
                    let claimed = self.claimed_recent(&name, sel.uidvalidity, 0, false)?;
                    StatusDataItem::Recent(count(&|m| m.uid > claimed))
                }
                StatusDataItemName::UidNext => StatusDataItem::UidNext(nz(sel.uidnext.max(1))?),
                StatusDataItemName::UidValidity => {
                    StatusDataItem::UidValidity(nz(sel.uidvalidity)?)
                }
                StatusDataItemName::Unseen => {
                    StatusDataItem::Unseen(count(&|m| !has_flag(m, "\\Seen")))
                }
                StatusDataItemName::Deleted => {
                    StatusDataItem::Deleted(count(&|m| has_flag(m, "\\Deleted")))
                }
                StatusDataItemName::DeletedStorage => StatusDataItem::DeletedStorage(
                    messages
                        .iter()
                        .filter(|m| has_flag(m, "\\Deleted"))
                        .map(|m| m.size)
                        .sum(),
                ),
                StatusDataItemName::HighestModSeq => {
                    StatusDataItem::HighestModSeq(sel.highestmodseq)
                }
            });
        }
        self.data(Data::Status {
            mailbox: mailbox.clone(),
            items: items.into(),
        });
        Ok(Done::ok("STATUS completed"))
    }

    /// FLAGS of a message of the selected folder as this session shows them.
    pub(super) fn flags_of(&self, meta: &MessageMeta) -> Vec<FlagFetch<'static>> {
        match self.selected.as_ref() {
            Some(sel) => sel.flags(meta),
            None => flags_fetch(&meta.flags),
        }
    }

    /// Indices (in sequence order) of the messages a set designates.
    pub(super) fn resolve(&self, set: &SequenceSet, uid: bool) -> Vec<usize> {
        let Some(sel) = self.selected.as_ref() else {
            return Vec::new();
        };
        let largest_uid = sel.messages.last().map_or(0, |m| m.uid);
        let largest_seq = u32::try_from(sel.messages.len()).unwrap_or(u32::MAX);
        sel.messages
            .iter()
            .enumerate()
            .filter(|(i, m)| {
                if uid {
                    in_set(set, m.uid, largest_uid)
                } else {
                    u32::try_from(i + 1).is_ok_and(|seq| in_set(set, seq, largest_seq))
                }
            })
            .map(|(i, _)| i)
            .collect()
    }
}
