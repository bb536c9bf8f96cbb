//! The RFC 5465 NOTIFY command, parsed here because imap-codec 2.0.0-alpha.10 does not
//! decode it (as [`crate::listext`] does for the extended LIST).
//!
//! ```abnf
//! notify           = "NOTIFY" SP (notify-set / "NONE")
//! notify-set       = "SET" [SP "STATUS"] SP event-groups
//! event-groups     = event-group *(SP event-group)
//! event-group      = "(" filter-mailboxes SP events ")"
//! filter-mailboxes = "selected" / "selected-delayed" / "inboxes" / "personal" /
//!                    "subscribed" / ("subtree" SP one-or-more-mailbox) /
//!                    ("mailboxes" SP one-or-more-mailbox)
//! one-or-more-mailbox = mailbox / "(" mailbox *(SP mailbox) ")"
//! events           = ("(" event *(SP event) ")") / "NONE"
//! event            = ("MessageNew" [SP "(" fetch-att *(SP fetch-att) ")"]) /
//!                    "MessageExpunge" / "FlagChange" / "AnnotationChange" /
//!                    "MailboxName" / "SubscriptionChange" / atom
//! ```
//!
//! Everything a client can make the server hold is bounded: event groups
//! ([`MAX_GROUPS`]), mailbox names ([`MAX_MAILBOXES`]), the nesting of a MessageNew
//! fetch list ([`MAX_FETCH_DEPTH`]); the parser never recurses.

use imap_codec::CommandCodec;
use imap_codec::decode::Decoder;
use imap_codec::imap_types::IntoStatic;
use imap_codec::imap_types::command::CommandBody;
use imap_codec::imap_types::fetch::MacroOrMessageDataItemNames;

use crate::notify::folder_key;
use crate::scan::Scanner;

/// Most event groups one NOTIFY may set.
pub(crate) const MAX_GROUPS: usize = 16;

/// Most mailbox names one NOTIFY may name, over all its groups.
pub(crate) const MAX_MAILBOXES: usize = 100;

/// Deepest nesting of parentheses in a MessageNew fetch list (`BODY.PEEK[HEADER.FIELDS
/// (...)]` needs 2).
pub(crate) const MAX_FETCH_DEPTH: usize = 4;

/// The response code refusing events this server does not report: it lists every
/// event it does (RFC 5465 3.1).
pub(crate) const BADEVENT: &str =
    "BADEVENT (MessageNew MessageExpunge FlagChange MailboxName SubscriptionChange)";

/// The events of an event group this server reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Events {
    /// MessageNew: messages arrived.
    pub new: bool,
    /// MessageExpunge: messages went.
    pub expunge: bool,
    /// FlagChange: flags of messages changed.
    pub flags: bool,
    /// MailboxName: mailboxes were created, deleted or renamed.
    pub mailbox_name: bool,
    /// SubscriptionChange: subscriptions changed.
    pub subscription: bool,
}

impl Events {
    /// Whether any event about messages is asked for.
    pub(crate) fn messages(&self) -> bool {
        self.new || self.expunge || self.flags
    }
}

/// Which mailboxes an event group is about (RFC 5465 6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Filter {
    /// The selected mailbox, expunges told at once.
    Selected,
    /// The selected mailbox, expunges held for a command that may report them.
    SelectedDelayed,
    /// The mailboxes mail is delivered to.
    Inboxes,
    /// Every mailbox of the account.
    Personal,
    /// The subscribed mailboxes.
    Subscribed,
    /// These mailboxes and those below them.
    Subtree(Vec<String>),
    /// Exactly these mailboxes.
    Mailboxes(Vec<String>),
}

impl Filter {
    /// Whether the filter names the selected mailbox.
    pub(crate) fn is_selected(&self) -> bool {
        matches!(self, Filter::Selected | Filter::SelectedDelayed)
    }
}

/// One event group: which mailboxes, which events.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Group {
    /// The mailboxes.
    pub filter: Filter,
    /// The events (none for `NONE`).
    pub events: Events,
    /// What to FETCH of a new message of the selected mailbox (MessageNew's list).
    pub fetch: Option<MacroOrMessageDataItemNames<'static>>,
}

/// A NOTIFY command.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Notify {
    /// NOTIFY NONE: back to no notifications but those of the base protocol.
    None,
    /// NOTIFY SET: these groups from now on; with `status`, a STATUS of every mailbox
    /// watched for message events before the tagged OK.
    Set {
        /// The STATUS indicator.
        status: bool,
        /// The event groups, in the client's order (the first one naming a mailbox
        /// applies to it).
        groups: Vec<Group>,
    },
}

/// Why a NOTIFY is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// Malformed, or events combined as RFC 5465 forbids: tagged BAD.
    Bad(&'static str),
    /// Events this server does not report: tagged `NO [BADEVENT (supported)]`.
    BadEvent,
    /// More groups or mailboxes than a session may watch: tagged
    /// `NO [NOTIFICATIONOVERFLOW]`.
    Overflow,
}

const SYNTAX: Refusal = Refusal::Bad("Syntax error in NOTIFY");

/// Parses a whole command message (tag included, CRLF at the end) as NOTIFY. `None`
/// if it is not a NOTIFY command at all.
pub(crate) fn parse(message: &[u8]) -> Option<Result<Notify, Refusal>> {
    let mut p = Scanner::new(message);
    p.word()?;
    if !p.eat(b' ') || !p.keyword(b"NOTIFY") {
        return None;
    }
    Some(notify(&mut p))
}

/// The arguments of NOTIFY, after `tag NOTIFY`.
fn notify(p: &mut Scanner<'_>) -> Result<Notify, Refusal> {
    if !p.eat(b' ') {
        return Err(SYNTAX);
    }
    if p.keyword(b"NONE") {
        return if p.at_end() {
            Ok(Notify::None)
        } else {
            Err(SYNTAX)
        };
    }
    if !p.keyword(b"SET") || !p.eat(b' ') {
        return Err(SYNTAX);
    }
    let status = p.keyword(b"STATUS");
    if status && !p.eat(b' ') {
        return Err(SYNTAX);
    }
    let mut groups = Vec::new();
    let mut names = 0usize;
    let mut unsupported = false;
    loop {
        if groups.len() == MAX_GROUPS {
            return Err(Refusal::Overflow);
        }
        groups.push(group(p, &mut names, &mut unsupported)?);
        if p.at_end() {
            break;
        }
        if !p.eat(b' ') {
            return Err(SYNTAX);
        }
    }
    if groups.iter().filter(|g| g.filter.is_selected()).count() > 1 {
        return Err(Refusal::Bad(
            "Only one of SELECTED and SELECTED-DELAYED may be given",
        ));
    }
    if unsupported {
        return Err(Refusal::BadEvent);
    }
    Ok(Notify::Set { status, groups })
}

/// One event group; `names` counts the mailbox names so far, `unsupported` is set on an
/// event this server does not report.
fn group(p: &mut Scanner<'_>, names: &mut usize, unsupported: &mut bool) -> Result<Group, Refusal> {
    if !p.eat(b'(') {
        return Err(SYNTAX);
    }
    let filter = if p.keyword(b"SELECTED-DELAYED") {
        Filter::SelectedDelayed
    } else if p.keyword(b"SELECTED") {
        Filter::Selected
    } else if p.keyword(b"INBOXES") {
        Filter::Inboxes
    } else if p.keyword(b"PERSONAL") {
        Filter::Personal
    } else if p.keyword(b"SUBSCRIBED") {
        Filter::Subscribed
    } else if p.keyword(b"SUBTREE") {
        Filter::Subtree(mailboxes(p, names)?)
    } else if p.keyword(b"MAILBOXES") {
        Filter::Mailboxes(mailboxes(p, names)?)
    } else {
        return Err(Refusal::Bad("Unknown NOTIFY mailbox filter"));
    };
    if !p.eat(b' ') {
        return Err(SYNTAX);
    }
    let mut group = Group {
        filter,
        events: Events::default(),
        fetch: None,
    };
    if !p.keyword(b"NONE") {
        events(p, &mut group, unsupported)?;
    }
    if !p.eat(b')') {
        return Err(SYNTAX);
    }
    check(&group)?;
    Ok(group)
}

/// `SP one-or-more-mailbox`, counted against [`MAX_MAILBOXES`].
fn mailboxes(p: &mut Scanner<'_>, names: &mut usize) -> Result<Vec<String>, Refusal> {
    if !p.eat(b' ') {
        return Err(SYNTAX);
    }
    let list = p.eat(b'(');
    let mut out = Vec::new();
    loop {
        if *names == MAX_MAILBOXES {
            return Err(Refusal::Overflow);
        }
        *names += 1;
        let name = p.string().ok_or(SYNTAX)?;
        out.push(folder_key(&String::from_utf8_lossy(&name)));
        if !list || p.eat(b')') {
            return Ok(out);
        }
        if !p.eat(b' ') {
            return Err(SYNTAX);
        }
    }
}

/// `"(" event *(SP event) ")"` into `group`.
fn events(p: &mut Scanner<'_>, group: &mut Group, unsupported: &mut bool) -> Result<(), Refusal> {
    if !p.eat(b'(') {
        return Err(SYNTAX);
    }
    loop {
        let event = p.atom().ok_or(SYNTAX)?.to_ascii_lowercase();
        let e = &mut group.events;
        match event.as_slice() {
            b"messagenew" => {
                e.new = true;
                if p.peek() == Some(b' ') && p.eat(b' ') && p.peek() != Some(b'(') {
                    // Not a fetch list: the next event follows.
                    continue;
                }
                if p.peek() == Some(b'(') {
                    let list = p
                        .balanced(MAX_FETCH_DEPTH)
                        .ok_or(Refusal::Bad("Invalid MessageNew fetch attributes"))?;
                    group.fetch = Some(fetch_attributes(list)?);
                }
            }
            b"messageexpunge" => e.expunge = true,
            b"flagchange" => e.flags = true,
            b"mailboxname" => e.mailbox_name = true,
            b"subscriptionchange" => e.subscription = true,
            // AnnotationChange, MailboxMetadataChange, ServerMetadataChange and unknown
            // events: not reported here.
            _ => *unsupported = true,
        }
        if p.eat(b')') {
            return Ok(());
        }
        if !p.eat(b' ') {
            return Err(SYNTAX);
        }
    }
}

/// A MessageNew fetch list, `(` and `)` included, decoded as FETCH would decode it.
fn fetch_attributes(list: &[u8]) -> Result<MacroOrMessageDataItemNames<'static>, Refusal> {
    const BAD: Refusal = Refusal::Bad("Invalid MessageNew fetch attributes");
    let command = [b"0 FETCH 1 ".as_slice(), list, b"\r\n"].concat();
    match CommandCodec::default().decode(&command) {
        Ok((_, c)) => match c.body {
            CommandBody::Fetch {
                macro_or_item_names,
                ..
            } => Ok(macro_or_item_names.into_static()),
            _ => Err(BAD),
        },
        Err(_) => Err(BAD),
    }
}

/// The combinations RFC 5465 forbids. Like Dovecot (which imaptest's `notify` group
/// expects), the rules of section 5 (MessageNew and MessageExpunge together, FlagChange
/// only with both) are enforced for the selected mailbox only; other mailboxes are told
/// of what was asked, by STATUS.
fn check(group: &Group) -> Result<(), Refusal> {
    let e = &group.events;
    if group.filter.is_selected() {
        if e.mailbox_name || e.subscription {
            return Err(Refusal::Bad(
                "Only message events can be asked for the selected mailbox",
            ));
        }
        if e.new != e.expunge {
            return Err(Refusal::Bad(
                "MessageNew and MessageExpunge must be given together",
            ));
        }
        if e.flags && !e.expunge {
            return Err(Refusal::Bad(
                "FlagChange needs MessageNew and MessageExpunge",
            ));
        }
    } else if group.fetch.is_some() {
        return Err(Refusal::Bad(
            "Fetch attributes are only for the selected mailbox",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(line: &str) -> (bool, Vec<Group>) {
        match parse(line.as_bytes()) {
            Some(Ok(Notify::Set { status, groups })) => (status, groups),
            other => panic!("{line:?} gave {other:?}"),
        }
    }

    fn refused(line: &str) -> Refusal {
        match parse(line.as_bytes()) {
            Some(Err(r)) => r,
            other => panic!("{line:?} gave {other:?}"),
        }
    }

    #[test]
    fn the_forms_of_rfc_5465() {
        assert_eq!(parse(b"a NOTIFY NONE\r\n"), Some(Ok(Notify::None)));
        let (status, groups) = set(
            "a notify set status (selected (MessageNew (UID BODY.PEEK[HEADER.FIELDS (FROM \
             SUBJECT)]) MessageExpunge FlagChange)) (mailboxes (inbox \"Sent\" {5}\r\nA (b)) \
             (MessageNew MessageExpunge)) (subtree Lists (MailboxName)) (personal NONE)\r\n",
        );
        assert!(status);
        assert_eq!(groups.len(), 4);
        assert_eq!(groups[0].filter, Filter::Selected);
        assert!(groups[0].events.new && groups[0].events.expunge && groups[0].events.flags);
        assert!(matches!(
            &groups[0].fetch,
            Some(MacroOrMessageDataItemNames::MessageDataItemNames(v)) if v.len() == 2
        ));
        assert_eq!(
            groups[1].filter,
            Filter::Mailboxes(vec!["INBOX".into(), "Sent".into(), "A (b)".into()])
        );
        assert_eq!(groups[2].filter, Filter::Subtree(vec!["Lists".into()]));
        assert!(groups[2].events.mailbox_name && !groups[2].events.messages());
        assert_eq!(groups[3].events, Events::default());
        // imaptest's notify group: one event alone for other mailboxes.
        let (status, groups) = set("b NOTIFY SET STATUS (mailboxes box2 (FlagChange))\r\n");
        assert!(status && groups[0].events.flags && !groups[0].events.new);
        assert!(parse(b"a NOOP\r\n").is_none());
    }

    #[test]
    fn refusals() {
        for bad in [
            "a NOTIFY\r\n",
            "a NOTIFY SET\r\n",
            "a NOTIFY SET ()\r\n",
            "a NOTIFY SET (bogus (MessageNew))\r\n",
            "a NOTIFY SET (personal ())\r\n",
            "a NOTIFY SET (mailboxes () (MessageNew))\r\n",
            "a NOTIFY SET (selected (MessageNew))\r\n",
            "a NOTIFY SET (selected (FlagChange))\r\n",
            "a NOTIFY SET (selected (MailboxName))\r\n",
            "a NOTIFY SET (selected NONE) (selected-delayed NONE)\r\n",
            "a NOTIFY SET (inboxes (MessageNew (UID) MessageExpunge))\r\n",
            "a NOTIFY SET (selected (MessageNew (NOSUCHITEM) MessageExpunge))\r\n",
            "a NOTIFY SET (personal (MessageNew)) junk\r\n",
            "a NOTIFY NONE junk\r\n",
        ] {
            assert!(matches!(refused(bad), Refusal::Bad(_)), "{bad}");
        }
        assert_eq!(
            refused("a NOTIFY SET (selected (MessageNew MessageExpunge AnnotationChange))\r\n"),
            Refusal::BadEvent
        );
        assert_eq!(
            refused("a NOTIFY SET (personal (SomeVendorEvent))\r\n"),
            Refusal::BadEvent
        );
    }

    #[test]
    fn hostile_input_is_bounded() {
        let many = (0..=MAX_MAILBOXES)
            .map(|i| format!("m{i}"))
            .collect::<Vec<_>>()
            .join(" ");
        let line = format!("a NOTIFY SET (mailboxes ({many}) (MessageNew))\r\n");
        assert_eq!(refused(&line), Refusal::Overflow);
        let groups = "(personal NONE) ".repeat(MAX_GROUPS + 1);
        let line = format!("a NOTIFY SET {}\r\n", groups.trim_end());
        assert_eq!(refused(&line), Refusal::Overflow);
        let deep = format!(
            "a NOTIFY SET (selected (MessageNew {}UID{} MessageExpunge))\r\n",
            "(".repeat(10_000),
            ")".repeat(10_000)
        );
        assert!(matches!(refused(&deep), Refusal::Bad(_)));
        let nested = format!("a NOTIFY SET {}\r\n", "(".repeat(100_000));
        assert!(matches!(refused(&nested), Refusal::Bad(_)));
    }
}
