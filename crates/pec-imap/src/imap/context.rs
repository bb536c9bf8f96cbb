//! SEARCH and SORT with RETURN options (RFC 4731 ESEARCH, RFC 5267 ESORT and
//! CONTEXT=SEARCH / CONTEXT=SORT): the ESEARCH reply, and searches kept live with
//! UPDATE, whose ADDTO and REMOVEFROM follow the selected folder's messages as the
//! session tells them (REMOVEFROM of expunged messages before their EXPUNGE, ADDTO of
//! new ones after their EXISTS, RFC 5267 4.3.3 and 4.3.4).
//!
//! A live search keeps its criteria (sequence numbers and `*` fixed when it ran, as RFC
//! 5267 4.3 says) and its result by UID; on a change only the messages that changed are
//! searched again, each read at most once for all searches, so an update costs at most
//! [`MAX_CONTEXTS`] evaluations per changed message.

use imap_codec::imap_types::extensions::sort::SortCriterion;

use super::search::{has_modseq, matches, needs_bytes};
use super::sort::by_uid;
use super::*;
use crate::esearch::{self, Hit, Pairs};
use crate::ordering::{self, Sortable};
use crate::search_return::ReturnOptions;

/// Most searches with UPDATE one session keeps live; another one is answered but not
/// kept, with `NO [NOUPDATE "tag"]` (RFC 5267 4.3.1).
pub(super) const MAX_CONTEXTS: usize = 16;

/// A search with UPDATE.
struct Context {
    /// The tag of the command that asked, which its ESEARCH responses carry.
    tag: String,
    /// Told in UIDs (UID SEARCH / UID SORT), else in sequence numbers.
    uid: bool,
    key: SearchKey<'static>,
    /// SORT's criteria; `None` for SEARCH, whose order is the mailbox order.
    sort: Option<Vec<SortCriterion>>,
    /// The result in its order, each entry's `number` and `seq` its UID (UID order is
    /// mailbox order), with its sort keys.
    results: Vec<Sortable>,
}

impl Context {
    fn uids(&self) -> Vec<u32> {
        self.results.iter().map(|s| s.number.get()).collect()
    }

    /// The ESEARCH line telling `removed` and `added` (pairs of UIDs), numbered as the
    /// client knows the messages: the removed ones in `before`, the added ones in
    /// `after`. A SEARCH tells them at position 0, in mailbox order (RFC 5267 4.3.3).
    fn tell(
        &self,
        removed: Pairs,
        added: Pairs,
        before: &[MessageMeta],
        after: &[MessageMeta],
    ) -> Option<String> {
        let numbered = |pairs: Pairs, messages: &[MessageMeta]| -> Pairs {
            let pairs = if self.sort.is_some() {
                pairs
            } else {
                let mut all: Vec<u32> = pairs.into_iter().flat_map(|(_, run)| run).collect();
                all.sort_unstable();
                vec![(0, all)]
            };
            pairs
                .into_iter()
                .map(|(position, run)| {
                    let run: Vec<u32> = run
                        .into_iter()
                        .filter_map(|u| number_of(messages, u, self.uid))
                        .collect();
                    (position, run)
                })
                .filter(|(_, run)| !run.is_empty())
                .collect()
        };
        esearch::update(
            &self.tag,
            self.uid,
            &numbered(removed, before),
            &numbered(added, after),
        )
    }
}

/// The live searches of the selected folder, and its messages as they last saw them.
#[derive(Default)]
pub(super) struct Contexts {
    live: Vec<Context>,
    seen: Vec<MessageMeta>,
}

/// What the client calls message `uid` of `messages`: the UID itself, or its sequence
/// number (`None` when it is not there).
fn number_of(messages: &[MessageMeta], uid: u32, as_uid: bool) -> Option<u32> {
    if as_uid {
        return Some(uid);
    }
    let i = messages.binary_search_by_key(&uid, |m| m.uid).ok()?;
    u32::try_from(i + 1).ok()
}

/// `key` with its sequence sets and UID sets with `*` replaced by the UIDs they name
/// in `messages` now, so that it means the same whatever arrives or goes later.
fn pin(key: &SearchKey<'_>, messages: &[MessageMeta]) -> SearchKey<'static> {
    let largest_seq = u32::try_from(messages.len()).unwrap_or(u32::MAX);
    let largest_uid = messages.last().map_or(0, |m| m.uid);
    match key {
        SearchKey::And(keys) => {
            let pinned: Vec<SearchKey<'static>> =
                keys.as_ref().iter().map(|k| pin(k, messages)).collect();
            Vec1::try_from(pinned).map_or(SearchKey::All, SearchKey::And)
        }
        SearchKey::Not(k) => SearchKey::Not(Box::new(pin(k, messages))),
        SearchKey::Or(a, b) => {
            SearchKey::Or(Box::new(pin(a, messages)), Box::new(pin(b, messages)))
        }
        SearchKey::SequenceSet(set) => uids_key(
            messages
                .iter()
                .zip(1u32..)
                .filter(|(_, seq)| in_set(set, *seq, largest_seq))
                .map(|(m, _)| m.uid),
        ),
        SearchKey::Uid(set) if set.0.as_ref().iter().any(has_star) => uids_key(
            messages
                .iter()
                .map(|m| m.uid)
                .filter(|&u| in_set(set, u, largest_uid)),
        ),
        other => other.clone().into_static(),
    }
}

fn has_star(s: &Sequence) -> bool {
    match s {
        Sequence::Single(v) => matches!(v, SeqOrUid::Asterisk),
        Sequence::Range(a, b) => matches!(a, SeqOrUid::Asterisk) || matches!(b, SeqOrUid::Asterisk),
    }
}

/// A key matching exactly the ascending `uids`.
fn uids_key(uids: impl Iterator<Item = u32>) -> SearchKey<'static> {
    let mut ranges: Vec<(u32, u32)> = Vec::new();
    for u in uids {
        match ranges.last_mut() {
            Some(last) if last.1.checked_add(1) == Some(u) => last.1 = u,
            _ => ranges.push((u, u)),
        }
    }
    let seqs: Vec<Sequence> = ranges
        .into_iter()
        .filter_map(|(a, b)| {
            let (a, b) = (NonZeroU32::new(a)?, NonZeroU32::new(b)?);
            Some(Sequence::Range(SeqOrUid::Value(a), SeqOrUid::Value(b)))
        })
        .collect();
    match Vec1::try_from(seqs) {
        Ok(seqs) => SearchKey::Uid(SequenceSet(seqs)),
        Err(_) => SearchKey::Not(Box::new(SearchKey::All)),
    }
}

/// The UIDs of `seen` no longer in `now`, and the indices in `now` of the messages
/// that are new or whose flags or MODSEQ changed (both lists ascend by UID).
fn differences(seen: &[MessageMeta], now: &[MessageMeta]) -> (Vec<u32>, Vec<usize>) {
    let (mut gone, mut changed) = (Vec::new(), Vec::new());
    let (mut i, mut j) = (0, 0);
    loop {
        match (seen.get(i), now.get(j)) {
            (Some(a), Some(b)) if a.uid == b.uid => {
                if a.flags != b.flags || a.modseq != b.modseq {
                    changed.push(j);
                }
                i += 1;
                j += 1;
            }
            (Some(a), Some(b)) if a.uid < b.uid => {
                gone.push(a.uid);
                i += 1;
            }
            (Some(a), None) => {
                gone.push(a.uid);
                i += 1;
            }
            (_, Some(_)) => {
                changed.push(j);
                j += 1;
            }
            (None, None) => return (gone, changed),
        }
    }
}

impl Selected {
    /// Takes the messages `gone` (UIDs, about to be told expunged) out of every live
    /// result; returns the REMOVEFROM lines, numbered while the messages still have
    /// their sequence numbers: they go out before the EXPUNGE responses.
    pub(super) fn expunging(&mut self, gone: &[u32]) -> Vec<u8> {
        let mut out = Vec::new();
        if self.contexts.live.is_empty() || gone.is_empty() {
            return out;
        }
        let gone: HashSet<u32> = gone.iter().copied().collect();
        for ctx in &mut self.contexts.live {
            let old = ctx.uids();
            ctx.results.retain(|s| !gone.contains(&s.number.get()));
            if ctx.results.len() == old.len() {
                continue;
            }
            let (removed, _) = esearch::changes(&old, &ctx.uids());
            if let Some(line) = ctx.tell(removed, Vec::new(), &self.messages, &[]) {
                out.extend_from_slice(line.as_bytes());
            }
        }
        self.contexts.seen.retain(|m| !gone.contains(&m.uid));
        out
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send> Session<S> {
    /// SEARCH or SORT (`body`) with RETURN `options`: the ESEARCH reply, and with UPDATE
    /// a live search (unless the tag is already one: BAD, RFC 5267 4.3).
    pub(super) async fn searching(
        &mut self,
        tag: &Tag<'static>,
        body: CommandBody<'static>,
        options: ReturnOptions,
    ) -> Result<Done> {
        let (criteria, sort, uid, name) = match body {
            CommandBody::Search { criteria, uid, .. } => (criteria, None, uid, "SEARCH"),
            CommandBody::Sort {
                sort_criteria,
                search_criteria,
                uid,
                ..
            } => (
                search_criteria,
                Some(sort_criteria.into_inner()),
                uid,
                "SORT",
            ),
            _ => return Ok(Done::bad("RETURN is only for SEARCH and SORT")),
        };
        let tag = tag.as_ref().to_string();
        let Some(sel) = self.selected.as_ref() else {
            return Ok(Done::bad("No mailbox selected"));
        };
        if options.update && sel.contexts.live.iter().any(|c| c.tag == tag) {
            return Ok(Done::bad("Tag reuse"));
        }
        if options.update {
            // The live searches catch up first, so that all of them start from the
            // same view of the folder.
            self.update_contexts().await?;
        }
        let key = SearchKey::And(criteria);
        let with_modseq = has_modseq(&key);
        let (found, _) = self.ordered(&key, sort.as_deref()).await?;
        let hits: Vec<Hit> = found
            .iter()
            .map(|f| Hit {
                number: f.number(uid),
                modseq: f.modseq,
            })
            .collect();
        let line = esearch::response(&tag, uid, &hits, &options, with_modseq);
        self.out.extend_from_slice(line.as_bytes());
        if options.update {
            let results = found.into_iter().map(|f| f.item).collect();
            self.keep_context(tag, uid, &key, sort, results)?;
        }
        Ok(Done::ok(format!("{name} completed")))
    }

    /// Keeps a search live, or says `NO [NOUPDATE "tag"]` when the session already
    /// keeps [`MAX_CONTEXTS`].
    fn keep_context(
        &mut self,
        tag: String,
        uid: bool,
        key: &SearchKey<'_>,
        sort: Option<Vec<SortCriterion>>,
        results: Vec<Sortable>,
    ) -> Result<()> {
        let Some(sel) = self.selected.as_mut() else {
            return Ok(());
        };
        if sel.contexts.live.len() >= MAX_CONTEXTS {
            let code = format!("NOUPDATE \"{tag}\"").into_bytes();
            return self.untagged(
                StatusKind::No,
                Some(Code::Other(
                    imap_codec::imap_types::response::CodeOther::unvalidated(code),
                )),
                "Too many live searches, this one is not updated",
            );
        }
        if sel.contexts.live.is_empty() {
            sel.contexts.seen = sel.messages.clone();
        }
        let key = pin(key, &sel.messages);
        sel.contexts.live.push(Context {
            tag,
            uid,
            key,
            sort,
            results,
        });
        Ok(())
    }

    /// CANCELUPDATE (RFC 5267 4.3.5): the searches of these tags are no longer live (a
    /// tag that is not one is already not updated).
    pub(super) fn cancel_update(&mut self, tags: &[String]) -> Done {
        let Some(sel) = self.selected.as_mut() else {
            return Done::bad("No mailbox selected");
        };
        sel.contexts.live.retain(|c| !tags.contains(&c.tag));
        if sel.contexts.live.is_empty() {
            sel.contexts.seen = Vec::new();
        }
        Done::ok("CANCELUPDATE completed")
    }

    /// Brings the live searches up to the messages as the client now knows them: the
    /// changed and new messages are searched again, and each search whose result
    /// changed is told with REMOVEFROM and ADDTO.
    pub(super) async fn update_contexts(&mut self) -> Result<()> {
        let Some(sel) = self.selected.as_mut() else {
            return Ok(());
        };
        if sel.contexts.live.is_empty() {
            return Ok(());
        }
        let (gone, changed) = differences(&sel.contexts.seen, &sel.messages);
        if gone.is_empty() && changed.is_empty() {
            return Ok(());
        }
        let mut contexts = std::mem::take(&mut sel.contexts);
        let whole = contexts.live.iter().any(|c| needs_bytes(&c.key));
        let header = contexts
            .live
            .iter()
            .any(|c| c.sort.as_deref().is_some_and(ordering::reads_header));
        let mut joined: Vec<Vec<Sortable>> = contexts.live.iter().map(|_| Vec::new()).collect();
        let mut searched: HashSet<u32> = HashSet::new();
        let walked = self
            .walk(Some(&changed), whole, header, |c| {
                searched.insert(c.meta.uid);
                for (ctx, joins) in contexts.live.iter().zip(joined.iter_mut()) {
                    if matches(&ctx.key, c) {
                        joins.push(by_uid(c.meta, c.parsed, ctx.sort.as_deref())?);
                    }
                }
                Ok(())
            })
            .await;
        let Some(sel) = self.selected.as_mut() else {
            return walked;
        };
        let gone: HashSet<u32> = gone.into_iter().collect();
        let mut lines = Vec::new();
        for (ctx, joins) in contexts.live.iter_mut().zip(joined) {
            let old = ctx.uids();
            let matched: HashSet<u32> = joins.iter().map(|s| s.number.get()).collect();
            ctx.results.retain(|s| {
                let u = s.number.get();
                !gone.contains(&u) && (!searched.contains(&u) || matched.contains(&u))
            });
            let present: HashSet<u32> = ctx.results.iter().map(|s| s.number.get()).collect();
            ctx.results.extend(
                joins
                    .into_iter()
                    .filter(|s| !present.contains(&s.number.get())),
            );
            match ctx.sort.as_deref() {
                Some(sort) => ordering::order(&mut ctx.results, |s| s, sort),
                None => ctx.results.sort_by_key(|s| s.number),
            }
            let (removed, added) = esearch::changes(&old, &ctx.uids());
            if let Some(line) = ctx.tell(removed, added, &sel.messages, &sel.messages) {
                lines.push(line);
            }
        }
        contexts.seen = sel.messages.clone();
        sel.contexts = contexts;
        walked?;
        for line in lines {
            self.out.extend_from_slice(line.as_bytes());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(uid: u32, flags: &[&str], modseq: u64) -> MessageMeta {
        MessageMeta {
            uid,
            flags: flags.iter().map(|f| f.to_string()).collect(),
            modseq,
            hash: String::new(),
            size: 0,
            internaldate: 0,
        }
    }

    #[test]
    fn differences_find_new_changed_and_gone_messages() {
        let seen = [meta(1, &[], 1), meta(2, &[], 2), meta(4, &[], 4)];
        let now = [
            meta(1, &[], 1),
            meta(2, &["\\Seen"], 5),
            meta(5, &[], 6),
            meta(6, &[], 7),
        ];
        assert_eq!(differences(&seen, &now), (vec![4], vec![1, 2, 3]));
        assert_eq!(differences(&now, &now), (vec![], vec![]));
    }

    #[test]
    fn sequence_numbers_and_star_are_fixed_when_the_search_runs() {
        let messages = [meta(3, &[], 1), meta(7, &[], 1), meta(8, &[], 1)];
        let pinned = pin(
            &SearchKey::And(
                vec![
                    SearchKey::SequenceSet(SequenceSet::try_from("2:*").unwrap()),
                    SearchKey::Not(Box::new(SearchKey::Uid(
                        SequenceSet::try_from("*").unwrap(),
                    ))),
                ]
                .try_into()
                .unwrap(),
            ),
            &messages,
        );
        let want = SearchKey::And(
            vec![
                SearchKey::Uid(SequenceSet::try_from("7:8").unwrap()),
                SearchKey::Not(Box::new(SearchKey::Uid(
                    SequenceSet::try_from("8:8").unwrap(),
                ))),
            ]
            .try_into()
            .unwrap(),
        );
        assert_eq!(pinned, want);
        assert_eq!(
            pin(
                &SearchKey::SequenceSet(SequenceSet::try_from("9").unwrap()),
                &messages
            ),
            SearchKey::Not(Box::new(SearchKey::All)),
            "nothing named: nothing matches"
        );
        let plain = SearchKey::Uid(SequenceSet::try_from("1:5").unwrap());
        assert_eq!(pin(&plain, &messages), plain, "UIDs without * stay");
    }
}
