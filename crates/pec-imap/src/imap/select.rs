//! SELECT/EXAMINE, STATUS, and keeping the selected folder in step with the store (what a session reports between commands).

use super::*;

/// What a report of the selected folder's changes may tell the client now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Report {
    /// Expunged messages (not while FETCH, STORE or SEARCH answers, RFC 3501 7.4.1).
    pub(super) expunges: bool,
    /// New messages.
    pub(super) arrivals: bool,
    /// Changed flags.
    pub(super) flags: bool,
}

impl Report {
    /// Everything.
    pub(super) const ALL: Report = Report {
        expunges: true,
        arrivals: true,
        flags: true,
    };

    /// Whether anything may be told.
    pub(super) fn any(&self) -> bool {
        self.expunges || self.arrivals || self.flags
    }
}

/// A STATUS item a folder's state answers (the counters SELECT reports), `None` for
/// those counted over its messages.
pub(super) fn state_item(
    name: &StatusDataItemName,
    sel: &pec_store::Selected,
) -> Option<Result<StatusDataItem>> {
    Some(match name {
        StatusDataItemName::Messages => Ok(StatusDataItem::Messages(sel.exists)),
        StatusDataItemName::UidNext => nz(sel.uidnext.max(1)).map(StatusDataItem::UidNext),
        StatusDataItemName::UidValidity => nz(sel.uidvalidity).map(StatusDataItem::UidValidity),
        StatusDataItemName::HighestModSeq => Ok(StatusDataItem::HighestModSeq(sel.highestmodseq)),
        _ => return None,
    })
}

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

    /// SELECT or EXAMINE (`examine`), with the CONDSTORE and QRESYNC parameters.
    pub(super) async fn select(
        &mut self,
        mailbox: &Mailbox<'_>,
        examine: bool,
        parameters: &[SelectParameter],
    ) -> Result<Done> {
        let mut resync = None;
        for p in parameters {
            match p {
                SelectParameter::CondStore => self.condstore = true,
                SelectParameter::QResync { .. } if !self.qresync => {
                    return Ok(Done::bad("QRESYNC must be enabled first"));
                }
                SelectParameter::QResync { .. } => match qresync::Resync::of(p) {
                    Ok(r) => resync = r,
                    Err(refused) => return Ok(refused),
                },
            }
        }
        if self.selected.take().is_some() {
            // RFC 7162 3.2.11: what follows is about the new mailbox (or none).
            self.untagged(
                StatusKind::Ok,
                Some(Code::Closed),
                "Previous mailbox closed",
            )?;
        }
        self.untold_news = false;
        let user = self.user()?;
        let name = mailbox_name(mailbox);
        let archive = is_archive(&name);
        let state = if archive {
            archive::state(&self.config, user).await?
        } else {
            let (u, f) = (user, name.clone());
            self.config.store(move |s| s.select(&u, &f)).await?
        };
        let messages = self.load(&name).await?;
        let pec_store::Selected {
            uidvalidity,
            uidnext,
            highestmodseq,
            ..
        } = state;
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
            stale: false,
            uidvalidity,
            recent,
            keywords: BTreeSet::new(),
            contexts: Default::default(),
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
        if let Some(resync) = &resync {
            self.resync(resync).await?;
        }
        Ok(if read_only {
            Done::ok_code(Code::ReadOnly, "EXAMINE completed")
        } else {
            Done::ok_code(Code::ReadWrite, "SELECT completed")
        })
    }

    /// Reports what changed in the selected folder since the client last heard, as far
    /// as `report` allows now: expunges (EXPUNGE, or VANISHED with QRESYNC), FETCH FLAGS,
    /// EXISTS and RECENT. What is held back leaves the folder stale, for a later report.
    /// Returns the UIDs of the messages announced as new.
    pub(super) async fn refresh(&mut self, report: Report) -> Result<Vec<u32>> {
        let Some(sel) = self.selected.as_ref() else {
            return Ok(Vec::new());
        };
        let name = sel.name.clone();
        let fresh = self.load(&name).await?;
        let (condstore, qresync) = (self.condstore, self.qresync);
        let user = self.user()?;
        let notifier = self.config.notifier.clone();
        let Some(sel) = self.selected.as_mut() else {
            return Ok(Vec::new());
        };
        let by_uid: HashMap<u32, &MessageMeta> = fresh.iter().map(|m| (m.uid, m)).collect();
        let gone: Vec<u32> = if report.expunges {
            sel.messages
                .iter()
                .map(|m| m.uid)
                .filter(|u| !by_uid.contains_key(u))
                .collect()
        } else {
            Vec::new()
        };
        // REMOVEFROM for live searches while the expunged messages are still numbered.
        let removals = sel.expunging(&gone);
        let mut held = false;
        let mut responses = Vec::new();
        let mut vanished = Vec::new();
        let mut i = sel.messages.len();
        while i > 0 {
            i -= 1;
            if by_uid.contains_key(&sel.messages[i].uid) {
                continue;
            }
            if !report.expunges {
                held = true;
                continue;
            }
            let gone = sel.messages.remove(i);
            sel.recent.remove(&gone.uid);
            if qresync {
                vanished.push(gone.uid);
            } else {
                responses.push(Data::Expunge(seq_of(i)?));
            }
        }
        vanished.sort_unstable();
        for known_uids in qresync::compact(&vanished)? {
            responses.push(Data::Vanished {
                earlier: false,
                known_uids,
            });
        }
        let mut changed = Vec::new();
        for (i, m) in sel.messages.iter_mut().enumerate() {
            if let Some(f) = by_uid.get(&m.uid)
                && (f.flags != m.flags || (condstore && f.modseq != m.modseq))
            {
                if !report.flags {
                    held = true;
                    continue;
                }
                m.flags = f.flags.clone();
                m.modseq = f.modseq;
                changed.push(i);
            }
        }
        let last = sel.messages.last().map_or(0, |m| m.uid);
        let before = sel.messages.len();
        let new = fresh.iter().filter(|m| m.uid > last).cloned();
        if report.arrivals {
            sel.messages.extend(new);
        } else {
            held |= new.count() > 0;
        }
        sel.stale = held;
        let arrived: Vec<u32> = sel.messages[before..].iter().map(|m| m.uid).collect();
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
        if !arrived.is_empty() {
            let highest = sel.messages.last().map_or(0, |m| m.uid);
            let claimed = if sel.archive {
                u32::MAX
            } else {
                notifier.claim_recent(&user, &sel.name, sel.uidvalidity, highest, !sel.read_only)
            };
            sel.recent
                .extend(arrived.iter().copied().filter(|&u| u > claimed));
            responses.push(Data::Exists(
                u32::try_from(sel.messages.len()).map_err(response_err)?,
            ));
            responses.push(Data::Recent(
                u32::try_from(sel.recent.len()).map_err(response_err)?,
            ));
        }
        self.out.extend_from_slice(&removals);
        if new_keywords {
            self.announce_flags()?;
        }
        for r in responses {
            self.data(r);
        }
        Ok(arrived)
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

    /// What SELECT would report about a folder, without selecting it.
    pub(super) async fn folder_state(&self, name: &str) -> Result<pec_store::Selected> {
        if is_archive(name) {
            return archive::state(&self.config, self.user()?).await;
        }
        let (user, name) = (self.user()?, name.to_string());
        self.config.store(move |s| s.select(&user, &name)).await
    }

    /// STATUS: the counters SELECT keeps from the folder's state, the others counted
    /// over its messages (read only when one of them is asked for).
    pub(super) async fn status(
        &mut self,
        mailbox: &Mailbox<'static>,
        names: &[StatusDataItemName],
    ) -> Result<Done> {
        let name = mailbox_name(mailbox);
        let sel = self.folder_state(&name).await?;
        let counted = names.iter().any(|n| state_item(n, &sel).is_none());
        let messages = if counted {
            self.load(&name).await?
        } else {
            Vec::new()
        };
        let count = |f: &dyn Fn(&MessageMeta) -> bool| {
            u32::try_from(messages.iter().filter(|m| f(m)).count()).unwrap_or(u32::MAX)
        };
        let mut items = Vec::new();
        for n in names {
            items.push(match n {
                StatusDataItemName::Messages
                | StatusDataItemName::UidNext
                | StatusDataItemName::UidValidity
                | StatusDataItemName::HighestModSeq => match state_item(n, &sel) {
                    Some(item) => item?,
                    None => continue,
                },
                StatusDataItemName::Recent => {
                    let claimed = self.claimed_recent(&name, sel.uidvalidity, 0, false)?;
                    StatusDataItem::Recent(count(&|m| m.uid > claimed))
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
