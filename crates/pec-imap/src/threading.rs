//! THREAD (RFC 5256 4): ORDEREDSUBJECT and REFERENCES over facts read once from each
//! message's header.
//!
//! The threads live in an arena of nodes (a message, or a dummy standing for a
//! referenced message that is not there) linked by index, and every walk over them is
//! iterative: a thread can be as deep as the mailbox is long, and its shape comes from
//! header fields anyone sending mail writes.

use std::collections::{HashMap, VecDeque};
use std::num::NonZeroU32;

use imap_codec::imap_types::core::{Vec1, Vec2};
use imap_codec::imap_types::extensions::thread::Thread;
use mail_parser::{HeaderName, Message};
use pec_store::MessageMeta;

use crate::mime;
use crate::ordering::{collate, sent_date, subject};

/// References kept per message: the last ones, its nearest ancestors.
const MAX_REFERENCES: usize = 64;

/// The longest walk up a thread when checking that a new link makes no loop. Only a
/// node that already has children can close a loop, so the walk is rare (messages
/// arriving before their parents); a link whose check would walk further is not made
/// (the message then starts a thread of its own), so linking costs at most this many
/// steps per reference.
const MAX_WALK: usize = 1000;

/// What threading needs of one message.
#[derive(Debug, Clone)]
pub(crate) struct Threadable {
    /// Its UID for UID THREAD, else its sequence number.
    pub number: NonZeroU32,
    /// Its sequence number: equal dates leave messages in mailbox order.
    pub seq: u32,
    /// The sent date (see [`sent_date`]).
    pub date: i64,
    /// The base subject, collated.
    pub subject: String,
    /// The subject had a reply or forward marker.
    pub reply_or_forward: bool,
    /// The first valid Message-ID (REFERENCES only).
    pub message_id: Option<String>,
    /// The References (else the first In-Reply-To) IDs, at most [`MAX_REFERENCES`],
    /// oldest first (REFERENCES only).
    pub references: Vec<String>,
}

impl Threadable {
    /// Reads a message's facts from its parsed header; the message IDs only with `links`.
    pub(crate) fn read(
        number: NonZeroU32,
        seq: u32,
        meta: &MessageMeta,
        msg: Option<&Message<'_>>,
        links: bool,
    ) -> Self {
        let ids = |name| {
            mime::first_header(msg, name)
                .map(|raw| message_ids(&raw))
                .unwrap_or_default()
        };
        let (mut message_id, mut references) = (None, Vec::new());
        if links {
            message_id = ids(HeaderName::MessageId).into_iter().next();
            references = ids(HeaderName::References);
            if references.is_empty() {
                references = ids(HeaderName::InReplyTo);
                references.truncate(1);
            }
            let extra = references.len().saturating_sub(MAX_REFERENCES);
            references.drain(..extra);
        }
        let base = subject(msg);
        Threadable {
            number,
            seq,
            date: sent_date(meta, msg),
            subject: collate(&base.text),
            reply_or_forward: base.reply_or_forward,
            message_id,
            references,
        }
    }
}

/// The message IDs of a Message-ID, In-Reply-To or References value: what is between
/// each `<` and the next `>`, folding white space removed; anything else is skipped.
fn message_ids(raw: &[u8]) -> Vec<String> {
    let mut ids = Vec::new();
    let mut rest = raw;
    while let Some(open) = rest.iter().position(|&b| b == b'<') {
        rest = &rest[open + 1..];
        let Some(close) = rest.iter().position(|&b| b == b'<' || b == b'>') else {
            break;
        };
        if rest[close] == b'>' {
            let id: Vec<u8> = rest[..close]
                .iter()
                .copied()
                .filter(|b| !b.is_ascii_whitespace())
                .collect();
            if !id.is_empty() {
                ids.push(String::from_utf8_lossy(&id).into_owned());
            }
            rest = &rest[close + 1..];
        } else {
            // A second '<' before any '>': the first one opened nothing.
            rest = &rest[close..];
        }
    }
    ids
}

/// Messages and dummies, by index: `msg[n]` is the message of node `n` (an index
/// into the threaded messages) or `None` for a dummy.
#[derive(Default)]
struct Forest {
    msg: Vec<Option<usize>>,
    parent: Vec<Option<usize>>,
    /// Whether a node was ever made a parent while linking (only such a node can be
    /// above another).
    was_parent: Vec<bool>,
    children: Vec<Vec<usize>>,
    roots: Vec<usize>,
}

impl Forest {
    fn node(&mut self, msg: Option<usize>) -> usize {
        self.msg.push(msg);
        self.parent.push(None);
        self.was_parent.push(false);
        self.children.push(Vec::new());
        self.msg.len() - 1
    }

    fn dummy(&self, n: usize) -> bool {
        self.msg[n].is_none()
    }

    /// Makes `parent` the parent of `child`, unless `child` is `parent` or above it
    /// (a loop) or the check would walk further up than [`MAX_WALK`].
    fn link(&mut self, parent: usize, child: usize) {
        if parent == child || (self.was_parent[child] && self.reaches(child, parent)) {
            return;
        }
        self.parent[child] = Some(parent);
        self.was_parent[parent] = true;
    }

    /// Whether `ancestor` is `node` or above it; also `true` when the walk up is
    /// longer than [`MAX_WALK`].
    fn reaches(&self, ancestor: usize, mut node: usize) -> bool {
        for _ in 0..MAX_WALK {
            if node == ancestor {
                return true;
            }
            match self.parent[node] {
                Some(p) => node = p,
                None => return false,
            }
        }
        true
    }

    /// Children lists and roots from the parent links.
    fn adopt(&mut self) {
        for n in 0..self.parent.len() {
            match self.parent[n] {
                Some(p) => self.children[p].push(n),
                None => self.roots.push(n),
            }
        }
    }

    /// Every node under the roots, each after its children.
    fn post_order(&self) -> Vec<usize> {
        let mut out = Vec::with_capacity(self.msg.len());
        let mut stack: Vec<(usize, bool)> = self.roots.iter().rev().map(|&r| (r, false)).collect();
        while let Some((n, expanded)) = stack.pop() {
            if expanded {
                out.push(n);
            } else {
                stack.push((n, true));
                stack.extend(self.children[n].iter().rev().map(|&c| (c, false)));
            }
        }
        out
    }

    /// The message a node stands for in comparisons: itself, or a dummy's first child.
    fn lead<'m>(&self, n: usize, msgs: &'m [Threadable]) -> Option<&'m Threadable> {
        let m = self.msg[n].or_else(|| self.children[n].first().and_then(|&c| self.msg[c]))?;
        msgs.get(m)
    }

    /// RFC 5256 REFERENCES (3): dummies go, their children taking their place; at the
    /// top a dummy stays only to hold two or more threads together.
    fn prune(&mut self) {
        for n in self.post_order() {
            let kids = std::mem::take(&mut self.children[n]);
            let mut kept = Vec::with_capacity(kids.len());
            for c in kids {
                if self.dummy(c) {
                    kept.append(&mut self.children[c]);
                } else {
                    kept.push(c);
                }
            }
            self.children[n] = kept;
        }
        let roots = std::mem::take(&mut self.roots);
        for r in roots {
            match (self.dummy(r), self.children[r].as_slice()) {
                (false, _) => self.roots.push(r),
                (true, []) => {}
                (true, [only]) => self.roots.push(*only),
                (true, _) => self.roots.push(r),
            }
        }
    }

    /// Every set of siblings, the roots included, by sent date then mailbox order; a
    /// dummy counts as its first child.
    fn sort(&mut self, msgs: &[Threadable]) {
        let mut key = vec![(i64::MAX, u32::MAX); self.msg.len()];
        for n in self.post_order() {
            self.children[n].sort_by_key(|&c| key[c]);
            key[n] = match self.lead(n, msgs) {
                Some(m) => (m.date, m.seq),
                None => (i64::MAX, u32::MAX),
            };
        }
        self.roots.sort_by_key(|&r| key[r]);
    }

    /// RFC 5256 REFERENCES (5): threads at the top whose subjects have the same base
    /// are gathered into one.
    fn gather_subjects(&mut self, msgs: &[Threadable]) {
        let reply = |f: &Self, n: usize| f.lead(n, msgs).is_some_and(|m| m.reply_or_forward);
        let mut table: HashMap<&str, usize> = HashMap::new();
        for &r in &self.roots {
            let Some(lead) = self.lead(r, msgs).filter(|m| !m.subject.is_empty()) else {
                continue;
            };
            let held = *table.entry(&lead.subject).or_insert(r);
            if !self.dummy(held) && (self.dummy(r) || (reply(self, held) && !lead.reply_or_forward))
            {
                table.insert(&lead.subject, r);
            }
        }
        let mut top = vec![false; self.msg.len()];
        for &r in &self.roots {
            top[r] = true;
        }
        for r in self.roots.clone() {
            let Some(lead) = self.lead(r, msgs).filter(|m| !m.subject.is_empty()) else {
                continue;
            };
            let Some(&held) = table.get(lead.subject.as_str()) else {
                continue;
            };
            if held == r || !top[r] {
                continue;
            }
            if self.dummy(r) && self.dummy(held) {
                let mut kids = std::mem::take(&mut self.children[r]);
                self.children[held].append(&mut kids);
                top[r] = false;
            } else if self.dummy(held) || (lead.reply_or_forward && !reply(self, held)) {
                self.children[held].push(r);
                top[r] = false;
            } else {
                let d = self.node(None);
                self.children[d] = vec![held, r];
                top[held] = false;
                top[r] = false;
                top.push(true);
                self.roots.push(d);
                table.insert(&lead.subject, d);
            }
        }
        self.roots.retain(|&r| top[r]);
    }

    /// The threads as the THREAD response shows them. A message with one child
    /// continues its thread's list of numbers; two or more children open nested
    /// lists; a dummy is a list of its children's threads.
    fn threads(&self, msgs: &[Threadable]) -> Vec<Thread> {
        let mut parts: Vec<Option<Part>> = (0..self.msg.len()).map(|_| None).collect();
        for n in self.post_order() {
            let mut kids: Vec<Part> = self.children[n]
                .iter()
                .filter_map(|&c| parts[c].take())
                .collect();
            let number = self.msg[n].and_then(|m| msgs.get(m)).map(|m| m.number);
            parts[n] = match (number, kids.len()) {
                (None, 0) => None,
                (None, 1) => kids.pop(),
                (None, _) => Some(Part {
                    prefix: VecDeque::new(),
                    answers: kids.into_iter().filter_map(Part::finish).collect(),
                }),
                (Some(number), 1) => kids.pop().map(|mut only| {
                    if only.prefix.is_empty() {
                        // A dummy's threads hang from this message directly.
                        Part {
                            prefix: VecDeque::from([number]),
                            answers: only.answers,
                        }
                    } else {
                        only.prefix.push_front(number);
                        only
                    }
                }),
                (Some(number), _) => Some(Part {
                    prefix: VecDeque::from([number]),
                    answers: kids.into_iter().filter_map(Part::finish).collect(),
                }),
            };
        }
        self.roots
            .iter()
            .filter_map(|&r| parts[r].take())
            .filter_map(Part::finish)
            .collect()
    }
}

/// A thread being built: the numbers of its chain of single replies, then either
/// nothing or two or more threads (never exactly one: that one would continue the
/// chain). An empty chain is a dummy's list of threads.
struct Part {
    prefix: VecDeque<NonZeroU32>,
    answers: Vec<Thread>,
}

impl Part {
    fn finish(self) -> Option<Thread> {
        let answers = Vec2::try_from(self.answers).ok();
        match Vec1::try_from(Vec::from(self.prefix)) {
            Ok(prefix) => Some(Thread::Members { prefix, answers }),
            Err(_) => answers.map(|answers| Thread::Nested { answers }),
        }
    }
}

/// THREAD=REFERENCES (RFC 5256 4): messages linked by their Message-ID, References
/// and In-Reply-To fields, threads gathered by base subject, siblings by sent date.
pub(crate) fn references(msgs: &[Threadable]) -> Vec<Thread> {
    let mut f = Forest::default();
    let mut by_id: HashMap<&str, usize> = HashMap::new();
    // (1) Links, one message at a time in mailbox order.
    for (i, m) in msgs.iter().enumerate() {
        let own = match m.message_id.as_deref() {
            Some(id) => match by_id.get(id) {
                Some(&n) if f.dummy(n) => n,
                // A duplicate ID: threaded as if it were unique.
                Some(_) => f.node(None),
                None => {
                    let n = f.node(None);
                    by_id.insert(id, n);
                    n
                }
            },
            None => f.node(None),
        };
        f.msg[own] = Some(i);
        let refs: Vec<usize> = m
            .references
            .iter()
            .map(|r| *by_id.entry(r.as_str()).or_insert_with(|| f.node(None)))
            .collect();
        // (A) Each reference the parent of the next, unless it has one already.
        for pair in refs.windows(2) {
            let (parent, child) = (pair[0], pair[1]);
            if f.parent[child].is_none() {
                f.link(parent, child);
            }
        }
        // (B) The message under its last reference, whatever parent it had.
        f.parent[own] = None;
        if let Some(&parent) = refs.last() {
            f.link(parent, own);
        }
    }
    // (2), (3), (4)
    f.adopt();
    f.prune();
    f.sort(msgs);
    // (5), (6)
    f.gather_subjects(msgs);
    f.sort(msgs);
    f.threads(msgs)
}

/// THREAD=ORDEREDSUBJECT (RFC 5256 4): one thread per base subject, its first message
/// by sent date the parent of all the others; threads by the date of their first one.
pub(crate) fn ordered_subject(msgs: &[Threadable]) -> Vec<Thread> {
    let mut order: Vec<usize> = (0..msgs.len()).collect();
    order.sort_by(|&a, &b| {
        let (a, b) = (&msgs[a], &msgs[b]);
        (&a.subject, a.date, a.seq).cmp(&(&b.subject, b.date, b.seq))
    });
    let mut f = Forest::default();
    for i in 0..msgs.len() {
        f.node(Some(i));
    }
    let mut first: Option<usize> = None;
    for i in order {
        match first {
            Some(r) if msgs[r].subject == msgs[i].subject => f.children[r].push(i),
            _ => {
                f.roots.push(i);
                first = Some(i);
            }
        }
    }
    f.sort(msgs);
    f.threads(msgs)
}

/// Drops threads without recursion: the derived drop of [`Thread`] recurses once per
/// level of nesting, which the messages decide.
pub(crate) fn dismantle(threads: Vec<Thread>) {
    let mut stack = threads;
    while let Some(thread) = stack.pop() {
        match thread {
            Thread::Members {
                answers: Some(answers),
                ..
            }
            | Thread::Nested { answers } => stack.extend(answers.into_inner()),
            Thread::Members { answers: None, .. } => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A message: sequence number (also its number), sent date, subject, Message-ID,
    /// References.
    fn msg(seq: u32, date: i64, subj: &str, id: Option<&str>, refs: &[&str]) -> Threadable {
        let base = crate::subject::base_subject(subj.as_bytes());
        Threadable {
            number: NonZeroU32::new(seq).unwrap(),
            seq,
            date,
            subject: collate(&base.text),
            reply_or_forward: base.reply_or_forward,
            message_id: id.map(str::to_string),
            references: refs.iter().map(|r| r.to_string()).collect(),
        }
    }

    fn show(threads: Vec<Thread>) -> String {
        let text: String = threads.iter().map(ToString::to_string).collect();
        dismantle(threads);
        text
    }

    #[test]
    fn message_ids_are_read_leniently() {
        assert_eq!(message_ids(b"<a@b> <c@d>"), ["a@b", "c@d"]);
        assert_eq!(message_ids(b"<a@b>,junk <c\r\n @d>"), ["a@b", "c@d"]);
        assert_eq!(message_ids(b"<<a@b> <> <c"), ["a@b"]);
        assert!(message_ids(b"no ids").is_empty());
    }

    #[test]
    fn references_are_bounded_and_in_reply_to_stands_in() {
        let meta = MessageMeta {
            uid: 1,
            hash: String::new(),
            size: 0,
            internaldate: 0,
            flags: Vec::new(),
            modseq: 1,
        };
        let read = |header: &str| {
            let raw = format!("{header}\r\n\r\nbody\r\n");
            let parsed = mime::parse(raw.as_bytes());
            Threadable::read(NonZeroU32::MIN, 1, &meta, parsed.message(), true)
        };
        let many: Vec<String> = (0..100).map(|i| format!("<{i}@x>")).collect();
        let m = read(&format!(
            "Message-ID: <me@x>\r\nReferences: {}\r\nIn-Reply-To: <other@x>",
            many.join("\r\n ")
        ));
        assert_eq!(m.message_id.as_deref(), Some("me@x"));
        assert_eq!(m.references.len(), MAX_REFERENCES);
        assert_eq!(m.references.first().map(String::as_str), Some("36@x"));
        assert_eq!(m.references.last().map(String::as_str), Some("99@x"));
        let m = read("In-Reply-To: <a@x> <b@x>\r\nReferences: no ids");
        assert_eq!(m.references, ["a@x"]);
        assert_eq!(m.message_id, None);
    }

    #[test]
    fn references_link_parents_and_break_loops() {
        // imaptest `thread`: 3 takes 2 as its child and leaves 1's thread.
        let msgs = [
            msg(1, 30, "", Some("a@b"), &[]),
            msg(2, 10, "", Some("b@b"), &["a@b", "c@b"]),
            msg(3, 20, "", Some("c@b"), &["b@b"]),
        ];
        assert_eq!(show(references(&msgs)), "(3 2)(1)");
    }

    #[test]
    fn duplicate_ids_and_missing_parents() {
        // imaptest `thread7`: the duplicate <b@b> is a sibling, not a second parent.
        let msgs = [
            msg(1, 0, "", Some("a@b"), &[]),
            msg(2, 0, "", Some("b@b"), &["a@b"]),
            msg(3, 0, "", Some("c@b"), &["b@b"]),
            msg(4, 0, "", Some("b@b"), &["a@b"]),
        ];
        assert_eq!(show(references(&msgs)), "(1 (2 3)(4))");
        // imaptest `thread6`: two replies to a missing message stay together.
        let msgs = [msg(1, 0, "", None, &["a@b"]), msg(2, 1, "", None, &["a@b"])];
        assert_eq!(show(references(&msgs)), "((1)(2))");
        // One reply to a missing message is a thread of its own.
        let msgs = [msg(1, 0, "", None, &["x@b"]), msg(2, 1, "", None, &[])];
        assert_eq!(show(references(&msgs)), "(1)(2)");
    }

    #[test]
    fn subjects_gather_top_level_threads() {
        // imaptest `thread3`/`thread4`: the reply joins its original.
        let msgs = [
            msg(1, 0, "foo", Some("a@b"), &[]),
            msg(2, 1, "Re: foo", Some("b@b"), &["c@b"]),
        ];
        assert_eq!(show(references(&msgs)), "(1 2)");
        // Two originals with one subject: a dummy holds both.
        let msgs = [
            msg(1, 0, "foo", None, &[]),
            msg(2, 1, "bar", None, &[]),
            msg(3, 2, "foo", None, &[]),
        ];
        assert_eq!(show(references(&msgs)), "((1)(3))(2)");
        // Empty subjects are never gathered.
        let msgs = [msg(1, 0, "", None, &[]), msg(2, 1, "Re: ", None, &[])];
        assert_eq!(show(references(&msgs)), "(1)(2)");
    }

    #[test]
    fn siblings_by_date_then_mailbox_order() {
        let msgs = [
            msg(1, 5, "", Some("r@x"), &[]),
            msg(2, 9, "", None, &["r@x"]),
            msg(3, 1, "", None, &["r@x"]),
            msg(4, 1, "", None, &["r@x"]),
        ];
        assert_eq!(show(references(&msgs)), "(1 (3)(4)(2))");
    }

    #[test]
    fn ordered_subject_groups_by_base_subject() {
        // imaptest `thread-orderedsubject2`.
        let msgs = [
            msg(1, 10, "a", None, &[]),
            msg(2, 9, "b", None, &[]),
            msg(3, 8, "a", None, &[]),
            msg(4, 7, "b", None, &[]),
            msg(5, 30, "a", None, &[]),
            msg(6, 29, "b", None, &[]),
            msg(7, 28, "a", None, &[]),
            msg(8, 27, "b", None, &[]),
        ];
        assert_eq!(show(ordered_subject(&msgs)), "(4 (2)(8)(6))(3 (1)(7)(5))");
        let msgs = [msg(1, 0, "x", None, &[]), msg(2, 0, "Re: X", None, &[])];
        assert_eq!(show(ordered_subject(&msgs)), "(1 2)");
    }

    #[test]
    fn loop_checks_walk_up_a_bounded_way() {
        // 1 waits for its parent <x@x>; 2..=1501 are a chain; 1502 is <x@x>, a reply
        // to the chain's end. Checking that this link makes no loop would walk 1500
        // levels up, so 1502 starts a thread of its own, with its child.
        let n = MAX_WALK as u32 + 500;
        let ids: Vec<String> = (0..=n + 2).map(|i| format!("{i}@x")).collect();
        let mut msgs = vec![msg(1, 0, "", Some(&ids[1]), &["x@x"])];
        for i in 2..=n + 1 {
            let refs: Vec<&str> = if i == 2 {
                vec![]
            } else {
                vec![&ids[i as usize - 1]]
            };
            msgs.push(msg(i, i64::from(i), "", Some(&ids[i as usize]), &refs));
        }
        msgs.push(msg(n + 2, 0, "", Some("x@x"), &[&ids[n as usize + 1]]));
        let text = show(references(&msgs));
        assert!(
            text.starts_with(&format!("({} 1)(2 3 ", n + 2)),
            "{}",
            &text[..20]
        );
        // Within the bound the same link is made.
        let msgs = [
            msg(1, 2, "", Some("a@x"), &["x@x"]),
            msg(2, 1, "", Some("b@x"), &[]),
            msg(3, 0, "", Some("x@x"), &["b@x"]),
        ];
        assert_eq!(show(references(&msgs)), "(2 3 1)");
    }

    #[test]
    fn deep_threads_need_no_deep_stack() {
        // A chain of 200,000 replies, and a thread branching at every level: built,
        // printed and dropped on a small stack.
        let result = std::thread::Builder::new()
            .stack_size(256 * 1024)
            .spawn(|| {
                let n = 200_000u32;
                let ids: Vec<String> = (1..=n).map(|i| format!("{i}@x")).collect();
                let chain: Vec<Threadable> = (1..=n)
                    .map(|i| {
                        let refs: Vec<&str> = match i {
                            1 => vec![],
                            _ => vec![ids[i as usize - 2].as_str()],
                        };
                        msg(i, i64::from(i), "", Some(&ids[i as usize - 1]), &refs)
                    })
                    .collect();
                let text = show(references(&chain));
                assert!(text.starts_with("(1 2 3 ") && text.ends_with(" 200000)"));
                // Message 2k + 1 has children 2k + 2 (a leaf) and 2k + 3.
                let branching: Vec<Threadable> = (1..=n)
                    .map(|i| {
                        let parent = if i == 1 {
                            None
                        } else {
                            Some(((i - 2) / 2) * 2 + 1)
                        };
                        let refs: Vec<&str> = parent
                            .map(|p| vec![ids[p as usize - 1].as_str()])
                            .unwrap_or_default();
                        msg(i, i64::from(i), "", Some(&ids[i as usize - 1]), &refs)
                    })
                    .collect();
                let text = show(references(&branching));
                assert!(text.starts_with("(1 (2)(3 (4)(5 (6)(7 "), "{}", &text[..40]);
            })
            .unwrap()
            .join();
        assert!(
            result.is_ok(),
            "threading a deep mailbox overflowed the stack"
        );
    }
}
