//! SORT and THREAD (RFC 5256, with RFC 5957's DISPLAYFROM/DISPLAYTO): the SEARCH
//! criteria pick the messages, each one's header is read once for its keys, and
//! `ordering` / `threading` do the rest. The charset is treated as SEARCH treats it.

use imap_codec::imap_types::extensions::sort::SortCriterion;
use imap_codec::imap_types::extensions::thread::ThreadingAlgorithm;

use super::*;
use crate::ordering::{self, Sortable};
use crate::threading::{self, Threadable};

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
        let (sorted, modseq) = self.sorted(sort.as_ref(), criteria, uid).await?;
        self.data(Data::Sort(sorted, modseq));
        Ok(Done::ok("SORT completed"))
    }

    /// The messages of the selected folder matching `criteria`, in the order of
    /// `sort`, numbered as the reply shows them (UIDs with `uid`), and the highest
    /// MODSEQ among them when the criteria ask for MODSEQ. ESORT's RETURN options
    /// apply to this list.
    pub(super) async fn sorted(
        &mut self,
        sort: &[SortCriterion],
        criteria: Vec1<SearchKey<'static>>,
        uid: bool,
    ) -> Result<(Vec<NonZeroU32>, Option<NonZeroU64>)> {
        let mut items = Vec::new();
        let header = ordering::reads_header(sort);
        let modseq = self
            .scan(&SearchKey::And(criteria), header, |seq, meta, msg| {
                items.push(Sortable {
                    number: nz(if uid { meta.uid } else { seq })?,
                    seq,
                    keys: ordering::keys(sort, meta, msg),
                });
                Ok(())
            })
            .await?;
        Ok((ordering::sort(items, sort), modseq))
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
