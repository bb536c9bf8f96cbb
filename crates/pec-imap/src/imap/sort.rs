//! SORT and THREAD (RFC 5256, with RFC 5957's DISPLAYFROM/DISPLAYTO): the SEARCH
//! criteria pick the messages, each one's header is read once for its keys, and
//! `ordering` / `threading` do the rest. The charset is treated as SEARCH treats it.

use imap_codec::imap_types::extensions::sort::SortCriterion;
use imap_codec::imap_types::extensions::thread::ThreadingAlgorithm;
use mail_parser::Message;

use super::*;
use crate::ordering::{self, Sortable};
use crate::threading::{self, Threadable};

/// A message a search picked.
pub(super) struct Found {
    /// The message by UID (`number` and `seq` both its UID, mailbox order being UID
    /// order), with its sort keys: what a live search keeps of it.
    pub(super) item: Sortable,
    /// Its sequence number now.
    pub(super) seq: u32,
    /// Its modification sequence.
    pub(super) modseq: u64,
}

/// A message by UID with its keys for `sort` (none without): how searches that keep
/// their results (ESORT, live searches) hold a message.
pub(super) fn by_uid(
    meta: &MessageMeta,
    msg: Option<&Message<'_>>,
    sort: Option<&[SortCriterion]>,
) -> Result<Sortable> {
    Ok(Sortable {
        number: nz(meta.uid)?,
        seq: meta.uid,
        keys: sort
            .map(|s| ordering::keys(s, meta, msg))
            .unwrap_or_default(),
    })
}

impl Found {
    /// What the reply calls it: its UID for a UID command, else its sequence number.
    pub(super) fn number(&self, uid: bool) -> u32 {
        if uid {
            self.item.number.get()
        } else {
            self.seq
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send> Session<S> {
    pub(super) async fn sort(
        &mut self,
        sort: Vec1<SortCriterion>,
        criteria: Vec1<SearchKey<'static>>,
        uid: bool,
    ) -> Result<Done> {
        if self.selected.is_none() {
            return Ok(Done::bad("No mailbox selected"));
        }
        let key = SearchKey::And(criteria);
        let (found, modseq) = self.ordered(&key, Some(sort.as_ref())).await?;
        let sorted = found
            .iter()
            .map(|f| nz(f.number(uid)))
            .collect::<Result<Vec<_>>>()?;
        self.data(Data::Sort(sorted, modseq));
        Ok(Done::ok("SORT completed"))
    }

    /// The messages of the selected folder matching `key`, in the order of `sort`
    /// (mailbox order without it), and the highest MODSEQ among them when the
    /// criteria ask for MODSEQ. SORT, and SEARCH and SORT with RETURN, answer from it.
    pub(super) async fn ordered(
        &mut self,
        key: &SearchKey<'_>,
        sort: Option<&[SortCriterion]>,
    ) -> Result<(Vec<Found>, Option<NonZeroU64>)> {
        let mut found = Vec::new();
        let header = sort.is_some_and(ordering::reads_header);
        let modseq = self
            .scan(key, header, |seq, meta, msg| {
                found.push(Found {
                    item: by_uid(meta, msg, sort)?,
                    seq,
                    modseq: meta.modseq,
                });
                Ok(())
            })
            .await?;
        if let Some(sort) = sort {
            ordering::order(&mut found, |f| &f.item, sort);
        }
        Ok((found, modseq))
    }

    pub(super) async fn thread(
        &mut self,
        algorithm: ThreadingAlgorithm<'static>,
        criteria: Vec1<SearchKey<'static>>,
        uid: bool,
    ) -> Result<Done> {
        let references = match algorithm {
            ThreadingAlgorithm::References => true,
            ThreadingAlgorithm::OrderedSubject => false,
            ThreadingAlgorithm::Other(_) => return Ok(Done::bad("Unknown threading algorithm")),
        };
        if self.selected.is_none() {
            return Ok(Done::bad("No mailbox selected"));
        }
        let mut items = Vec::new();
        self.scan(&SearchKey::And(criteria), true, |seq, meta, msg| {
            let number = nz(if uid { meta.uid } else { seq })?;
            items.push(Threadable::read(number, seq, meta, msg, references));
            Ok(())
        })
        .await?;
        let threads = if references {
            threading::references(&items)
        } else {
            threading::ordered_subject(&items)
        };
        let response = Response::Data(Data::Thread(threads));
        self.push(&response);
        if let Response::Data(Data::Thread(threads)) = response {
            threading::dismantle(threads);
        }
        Ok(Done::ok("THREAD completed"))
    }
}
