//! What changed in the account's mailbox, told to the client: at the end of every
//! command, in IDLE, and — once NOTIFY SET (RFC 5465) asked for it — between commands,
//! with STATUS for other mailboxes and LIST for mailboxes created, deleted, renamed or
//! (un)subscribed. The changes come from the session's [`Watcher`].

use pec_store::RECEIPTS_FOLDER;

use super::select::{Report, state_item};
use super::*;
use crate::notify::Changes;
use notify_command::{Events, Filter, Group, Refusal};

/// Where a session is when it tells what changed, which decides what it may say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Moment {
    /// At the end of a command; `expunges` unless the command may not report them.
    CommandEnd {
        /// Whether expunges may be reported.
        expunges: bool,
    },
    /// Waiting for the next command (only with NOTIFY).
    Between,
    /// In IDLE.
    Idle,
}

/// What NOTIFY SET asked for, and what the session knows to tell changes apart.
pub(super) struct Watching {
    groups: Vec<Group>,
    /// The state last told (or found) of each mailbox watched for message events.
    known: HashMap<String, pec_store::Selected>,
    /// The subscribed names, for the SUBSCRIBED filter and SubscriptionChange.
    subscribed: BTreeSet<String>,
}

impl Watching {
    /// The group of the selected mailbox, if the client gave one.
    fn selected(&self) -> Option<&Group> {
        self.groups.iter().find(|g| g.filter.is_selected())
    }

    /// The events asked for mailbox `name` (named otherwise than as the selected one):
    /// those of the first group naming it.
    fn events(&self, name: &str) -> Events {
        self.groups
            .iter()
            .find(|g| self.names(g, name))
            .map_or_else(Events::default, |g| g.events)
    }

    /// Whether group `g` names mailbox `name`.
    fn names(&self, g: &Group, name: &str) -> bool {
        match &g.filter {
            Filter::Selected | Filter::SelectedDelayed => false,
            Filter::Inboxes => name == "INBOX" || name == RECEIPTS_FOLDER,
            Filter::Personal => true,
            Filter::Subscribed => self.subscribed.contains(name),
            Filter::Subtree(roots) => roots.iter().any(|r| {
                name == r
                    || name
                        .strip_prefix(r.as_str())
                        .is_some_and(|rest| rest.starts_with('/'))
            }),
            Filter::Mailboxes(names) => names.iter().any(|n| n == name),
        }
    }

    /// Whether any group asks for MailboxName or SubscriptionChange.
    fn mailbox_events(&self) -> bool {
        self.groups
            .iter()
            .any(|g| g.events.mailbox_name || g.events.subscription)
    }

    /// Whether any group is about subscribed mailboxes or their changes.
    fn needs_subscriptions(&self) -> bool {
        self.groups
            .iter()
            .any(|g| g.filter == Filter::Subscribed || g.events.subscription)
    }
}

/// The STATUS items that tell a client watching `events` of a mailbox how it went from
/// `old` (`None`: not known) to `new`: MESSAGES and UIDNEXT for messages that arrived
/// or went, UIDVALIDITY and HIGHESTMODSEQ when flags may have changed (RFC 5465 5.1
/// to 5.3), HIGHESTMODSEQ with the others once CONDSTORE is on. Empty when nothing the
/// client asked for happened.
pub(super) fn status_items(
    old: Option<&pec_store::Selected>,
    new: &pec_store::Selected,
    events: Events,
    condstore: bool,
) -> Vec<StatusDataItemName> {
    let restarted = old.is_none_or(|o| o.uidvalidity != new.uidvalidity);
    let (arrived, went, modseq) = match old {
        Some(o) if !restarted => (
            new.uidnext > o.uidnext,
            u64::from(new.exists)
                < u64::from(o.exists) + u64::from(new.uidnext.saturating_sub(o.uidnext)),
            new.highestmodseq != o.highestmodseq,
        ),
        _ => (true, true, true),
    };
    let mut items = Vec::new();
    if (events.new && arrived) || (events.expunge && went) {
        items.extend([StatusDataItemName::Messages, StatusDataItemName::UidNext]);
    }
    if (events.flags && modseq) || (restarted && events.new) {
        items.push(StatusDataItemName::UidValidity);
    }
    if (events.flags && modseq) || (condstore && !items.is_empty()) {
        items.push(StatusDataItemName::HighestModSeq);
    }
    items
}

/// The STATUS items NOTIFY SET STATUS sends for a mailbox watched for `events` (RFC
/// 5465 3.1).
fn initial_items(events: Events, condstore: bool) -> Vec<StatusDataItemName> {
    let mut items = Vec::new();
    if events.new || events.expunge {
        items.push(StatusDataItemName::Messages);
    }
    if events.new {
        items.push(StatusDataItemName::UidNext);
    }
    if events.new || events.flags {
        items.push(StatusDataItemName::UidValidity);
    }
    if events.flags || (condstore && !items.is_empty()) {
        items.push(StatusDataItemName::HighestModSeq);
    }
    items
}

/// The answer to a NOTIFY the parser refused.
pub(super) fn refusal(r: Refusal) -> Done {
    match r {
        Refusal::Bad(why) => Done::bad(why),
        Refusal::BadEvent => Done::no_code(notify_command::BADEVENT, "Unsupported NOTIFY event"),
        Refusal::Overflow => {
            Done::no_code("NOTIFICATIONOVERFLOW", "Too many mailboxes or event groups")
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send> Session<S> {
    /// NOTIFY NONE, or NOTIFY SET: the groups from now on, after what changed in the
    /// selected folder (an implicit NOOP, RFC 5465 3.1) and, with STATUS, the state of
    /// every other mailbox watched for message events.
    pub(super) async fn notify_command(&mut self, request: Notify) -> Result<Done> {
        let Notify::Set { status, groups } = request else {
            self.notify = None;
            return Ok(Done::ok("NOTIFY completed"));
        };
        let user = self.user()?;
        let mut watching = Watching {
            groups,
            known: HashMap::new(),
            subscribed: BTreeSet::new(),
        };
        let need_subscriptions = watching.needs_subscriptions();
        let (folders, subscribed) = self
            .config
            .store(move |s| {
                let subscribed = if need_subscriptions {
                    s.subscriptions(&user)?
                } else {
                    Vec::new()
                };
                Ok((s.list_folders(&user)?, subscribed))
            })
            .await?;
        watching.subscribed = subscribed.iter().map(|n| folder_key(n)).collect();
        let selected = self.selected.as_ref().map(|s| folder_key(&s.name));
        let names = folders
            .into_iter()
            .map(|f| folder_key(&f.name))
            .filter(|n| !is_archive(n))
            .chain([ARCHIVE_FOLDER.to_string()]);
        for name in names {
            let events = watching.events(&name);
            if !events.messages() || selected.as_deref() == Some(name.as_str()) {
                continue;
            }
            let Some(state) = self.state_if_exists(&name).await? else {
                continue;
            };
            if status {
                self.status_of(&name, &state, &initial_items(events, self.condstore))?;
            }
            watching.known.insert(name, state);
        }
        self.notify = Some(watching);
        if let Some(sel) = self.selected.as_mut() {
            sel.stale = true;
        }
        Ok(Done::ok("NOTIFY completed"))
    }

    /// Tells the client what changed since it last heard, as far as it may be told at
    /// `moment`; returns the UIDs of the selected folder's messages announced as new.
    pub(super) async fn news(&mut self, moment: Moment) -> Result<Vec<u32>> {
        let changes = self.watcher.as_mut().map(Watcher::take).unwrap_or_default();
        if let Some(sel) = self.selected.as_mut()
            && changes.touches(&sel.name)
        {
            sel.stale = true;
        }
        let report = self.report_at(moment);
        let mut arrived = Vec::new();
        if report.any() && self.selected.as_ref().is_some_and(|s| s.stale) {
            arrived = self.refresh(report).await?;
            self.fetch_new(&arrived).await?;
        }
        self.update_contexts().await?;
        if self.notify.is_some() {
            self.tell_others(&changes).await?;
        }
        Ok(arrived)
    }

    /// What may be told of the selected folder at `moment`: at a command's end what the
    /// command allows (expunges at once with NOTIFY's SELECTED), in IDLE everything; with
    /// NOTIFY, in IDLE and between commands what its selected group asks for, nothing
    /// without one (RFC 5465 3.1 and 4).
    fn report_at(&self, moment: Moment) -> Report {
        const NOTHING: Report = Report {
            expunges: false,
            arrivals: false,
            flags: false,
        };
        let group = self.notify.as_ref().map(|n| {
            n.selected()
                .map(|g| (g.filter == Filter::Selected, g.events))
        });
        match (moment, group) {
            (Moment::CommandEnd { expunges }, group) => Report {
                expunges: expunges
                    || group
                        .flatten()
                        .is_some_and(|(immediate, e)| immediate && e.expunge),
                ..Report::ALL
            },
            (Moment::Idle, None) => Report::ALL,
            (Moment::Between, None) | (_, Some(None)) => NOTHING,
            (Moment::Idle, Some(Some((_, e)))) => Report {
                expunges: e.expunge,
                arrivals: e.new,
                flags: e.flags,
            },
            (Moment::Between, Some(Some((immediate, e)))) => Report {
                expunges: immediate && e.expunge,
                arrivals: e.new,
                flags: e.flags,
            },
        }
    }

    /// The FETCH NOTIFY's MessageNew asked for, of the selected folder's new messages
    /// (`arrived`, by UID), after their EXISTS (RFC 5465 5.2).
    async fn fetch_new(&mut self, arrived: &[u32]) -> Result<()> {
        let Some(names) = self
            .notify
            .as_ref()
            .and_then(Watching::selected)
            .and_then(|g| g.fetch.clone())
        else {
            return Ok(());
        };
        for set in qresync::compact(arrived)? {
            self.fetch(&set, names.clone(), true, None).await?;
        }
        Ok(())
    }

    /// The state of folder `name`, `None` when it is gone.
    async fn state_if_exists(&self, name: &str) -> Result<Option<pec_store::Selected>> {
        match self.folder_state(name).await {
            Ok(state) => Ok(Some(state)),
            Err(Error::Store(pec_store::Error::NoSuchFolder(_))) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `* STATUS name (items)` from the folder's state.
    fn status_of(
        &mut self,
        name: &str,
        state: &pec_store::Selected,
        items: &[StatusDataItemName],
    ) -> Result<()> {
        let items = items
            .iter()
            .filter_map(|n| state_item(n, state))
            .collect::<Result<Vec<_>>>()?;
        if !items.is_empty() {
            self.data(Data::Status {
                mailbox: to_mailbox(name)?,
                items: items.into(),
            });
        }
        Ok(())
    }

    /// NOTIFY's news of mailboxes other than the selected one: LIST for mailboxes
    /// created, deleted, renamed or (un)subscribed, STATUS for those whose messages
    /// changed. A session that lost track of changes it must report as LIST is told
    /// `NOTIFICATIONOVERFLOW` and stops being notified (RFC 5465 5.8).
    async fn tell_others(&mut self, changes: &Changes) -> Result<()> {
        let Some(watching) = self.notify.as_ref() else {
            return Ok(());
        };
        if changes.lost && watching.mailbox_events() {
            self.notify = None;
            return self.untagged(
                StatusKind::Ok,
                Some(Code::Other(
                    imap_codec::imap_types::response::CodeOther::unvalidated(
                        b"NOTIFICATIONOVERFLOW".as_slice(),
                    ),
                )),
                "Too many changes, NOTIFY is off",
            );
        }
        if !changes.mailboxes.is_empty() || !changes.subscriptions.is_empty() {
            self.tell_mailboxes(changes).await?;
        }
        let folders: Vec<String> = if changes.lost {
            let user = self.user()?;
            self.config
                .store(move |s| s.list_folders(&user))
                .await?
                .into_iter()
                .map(|f| folder_key(&f.name))
                .collect()
        } else {
            changes.folders.iter().cloned().collect()
        };
        let selected = self.selected.as_ref().map(|s| folder_key(&s.name));
        for name in folders {
            let Some(watching) = self.notify.as_ref() else {
                return Ok(());
            };
            let events = watching.events(&name);
            if !events.messages() || selected.as_deref() == Some(name.as_str()) {
                continue;
            }
            let old = watching.known.get(&name).copied();
            let Some(state) = self.state_if_exists(&name).await? else {
                if let Some(w) = self.notify.as_mut() {
                    w.known.remove(&name);
                }
                continue;
            };
            let items = status_items(old.as_ref(), &state, events, self.condstore);
            self.status_of(&name, &state, &items)?;
            if let Some(w) = self.notify.as_mut() {
                w.known.insert(name, state);
            }
        }
        Ok(())
    }

    /// LIST responses for MailboxName and SubscriptionChange (RFC 5465 5.4 and 5.5):
    /// each name as it is now (`\NonExistent` when gone, `\Subscribed` when
    /// subscribed), a renamed one with its OLDNAME.
    async fn tell_mailboxes(&mut self, changes: &Changes) -> Result<()> {
        let user = self.user()?;
        let (folders, subscriptions) = self
            .config
            .store(move |s| Ok((s.list_folders(&user)?, s.subscriptions(&user)?)))
            .await?;
        let entries = super::folders::list_entries(folders, subscriptions);
        let Some(watching) = self.notify.as_mut() else {
            return Ok(());
        };
        watching.subscribed = entries
            .iter()
            .filter(|e| e.subscribed)
            .map(|e| folder_key(&e.name))
            .collect();
        let mut lines = Vec::new();
        let told = changes
            .mailboxes
            .iter()
            .map(|(name, old)| (name, old.as_deref(), true))
            .chain(changes.subscriptions.iter().map(|n| (n, None, false)));
        for (name, old, renamed_or_created) in told {
            for gone in [Some(name.as_str()), old].into_iter().flatten() {
                watching.known.remove(gone);
            }
            let events = watching.events(name);
            let wanted = if renamed_or_created {
                events.mailbox_name || old.is_some_and(|o| watching.events(o).mailbox_name)
            } else {
                events.subscription
            };
            if !wanted {
                continue;
            }
            let entry = entries.iter().find(|e| folder_key(&e.name) == *name);
            let oldname = old.and_then(quoted).map(|o| format!("(\"OLDNAME\" ({o}))"));
            let line = match entry {
                Some(e) => e.list_line(
                    super::folders::has_children(&entries, &e.name),
                    true,
                    oldname.as_deref(),
                )?,
                None => super::folders::ListEntry::gone(name).list_line(
                    false,
                    false,
                    oldname.as_deref(),
                )?,
            };
            lines.push(line);
        }
        for line in lines {
            self.out.extend_from_slice(&line);
        }
        Ok(())
    }
}

/// `name` as an IMAP quoted string, `None` if it cannot be one (it is then left out).
fn quoted(name: &str) -> Option<String> {
    if name.bytes().any(|b| !(0x20..0x7f).contains(&b)) {
        return None;
    }
    Some(format!(
        "\"{}\"",
        name.replace('\\', "\\\\").replace('"', "\\\"")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(uidnext: u32, exists: u32, highestmodseq: u64) -> pec_store::Selected {
        pec_store::Selected {
            uidvalidity: 7,
            uidnext,
            highestmodseq,
            exists,
        }
    }

    const NEW_EXPUNGE: Events = Events {
        new: true,
        expunge: true,
        flags: false,
        mailbox_name: false,
        subscription: false,
    };

    #[test]
    fn status_tells_what_happened_that_was_asked_for() {
        use StatusDataItemName::*;
        let before = state(5, 4, 10);
        let flags = Events {
            flags: true,
            ..Events::default()
        };
        // A message arrived.
        let after = state(6, 5, 11);
        assert_eq!(
            status_items(Some(&before), &after, NEW_EXPUNGE, false),
            vec![Messages, UidNext]
        );
        assert_eq!(
            status_items(Some(&before), &after, NEW_EXPUNGE, true),
            vec![Messages, UidNext, HighestModSeq]
        );
        // One arrived and one went: the count is the same, the expunge is still seen.
        let expunge_only = Events {
            expunge: true,
            ..Events::default()
        };
        assert_eq!(
            status_items(Some(&before), &state(6, 4, 12), expunge_only, false),
            vec![Messages, UidNext]
        );
        // Only flags changed: nothing for MessageNew/MessageExpunge, HIGHESTMODSEQ for
        // FlagChange.
        let flagged = state(5, 4, 11);
        assert!(status_items(Some(&before), &flagged, NEW_EXPUNGE, false).is_empty());
        assert_eq!(
            status_items(Some(&before), &flagged, flags, false),
            vec![UidValidity, HighestModSeq]
        );
        // Nothing known before: everything asked for.
        assert_eq!(
            status_items(None, &flagged, NEW_EXPUNGE, false),
            vec![Messages, UidNext, UidValidity]
        );
    }

    #[test]
    fn notify_set_status_items_follow_rfc_5465() {
        use StatusDataItemName::*;
        let only = |e: fn(&mut Events)| {
            let mut events = Events::default();
            e(&mut events);
            initial_items(events, false)
        };
        assert_eq!(only(|e| e.expunge = true), vec![Messages]);
        assert_eq!(only(|e| e.new = true), vec![Messages, UidNext, UidValidity]);
        assert_eq!(only(|e| e.flags = true), vec![UidValidity, HighestModSeq]);
        assert!(only(|e| e.mailbox_name = true).is_empty());
    }

    #[test]
    fn each_filter_names_its_mailboxes() {
        let group = |filter| Group {
            filter,
            events: NEW_EXPUNGE,
            fetch: None,
        };
        let watching = |groups| Watching {
            groups,
            known: HashMap::new(),
            subscribed: ["Lavoro".to_string()].into(),
        };
        let names = |w: &Watching, name: &str| w.events(name).messages();
        let w = watching(vec![group(Filter::Inboxes)]);
        assert!(names(&w, "INBOX") && names(&w, RECEIPTS_FOLDER) && !names(&w, "Sent"));
        let w = watching(vec![group(Filter::Subscribed)]);
        assert!(names(&w, "Lavoro") && !names(&w, "INBOX"));
        let w = watching(vec![group(Filter::Subtree(vec!["Clienti".into()]))]);
        assert!(names(&w, "Clienti") && names(&w, "Clienti/Rossi"));
        assert!(!names(&w, "ClientiVecchi") && !names(&w, "INBOX"));
        let w = watching(vec![group(Filter::Mailboxes(vec!["Clienti".into()]))]);
        assert!(names(&w, "Clienti") && !names(&w, "Clienti/Rossi"));
        let w = watching(vec![group(Filter::Personal)]);
        assert!(names(&w, "anything") && w.selected().is_none());
        // The selected filters never name a mailbox otherwise; the first group applies.
        let w = watching(vec![
            group(Filter::Selected),
            Group {
                filter: Filter::Mailboxes(vec!["INBOX".into()]),
                events: Events::default(),
                fetch: None,
            },
            group(Filter::Personal),
        ]);
        assert!(w.selected().is_some() && !names(&w, "INBOX") && names(&w, "Sent"));
    }

    #[test]
    fn names_are_quoted_or_left_out() {
        assert_eq!(quoted("a \"b\\c").unwrap(), "\"a \\\"b\\\\c\"");
        assert!(quoted("a\r\nb").is_none());
    }
}
