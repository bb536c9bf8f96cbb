//! QRESYNC (RFC 7162): a folder resynchronised in one SELECT (`VANISHED (EARLIER)` and
//! the FETCH of what changed), `UID FETCH … (CHANGEDSINCE m VANISHED)`, and `VANISHED`
//! instead of `EXPUNGE` once the client enabled it. The store keeps a tombstone (UID,
//! modseq) of every expunged message, so the sequence match data a client may send
//! for servers without them is checked but not needed.

use super::*;

/// Most elements (numbers and ranges) of a known-UIDs set or of each half of the
/// sequence match data a SELECT may carry.
pub(super) const MAX_SET_ELEMENTS: usize = 10_000;

/// Ranges per `VANISHED` response: a long list is split over several.
const RANGES_PER_LINE: usize = 1_000;

/// A set of numbers as sorted, disjoint, inclusive ranges: membership in logarithmic
/// time whatever the ranges the client sent, nothing expanded.
pub(super) struct Ranges(Vec<(u32, u32)>);

impl Ranges {
    /// The numbers of `set`, `*` standing for `largest`.
    pub(super) fn of(set: &SequenceSet, largest: u32) -> Self {
        let mut ranges: Vec<(u32, u32)> = set
            .0
            .as_ref()
            .iter()
            .map(|s| match s {
                Sequence::Single(v) => (value(v, largest), value(v, largest)),
                Sequence::Range(a, b) => {
                    let (a, b) = (value(a, largest), value(b, largest));
                    (a.min(b), a.max(b))
                }
            })
            .collect();
        ranges.sort_unstable();
        let mut merged: Vec<(u32, u32)> = Vec::with_capacity(ranges.len());
        for (a, b) in ranges {
            match merged.last_mut() {
                Some(last) if a <= last.1.saturating_add(1) => last.1 = last.1.max(b),
                _ => merged.push((a, b)),
            }
        }
        Ranges(merged)
    }

    /// Whether `n` is in the set.
    pub(super) fn contains(&self, n: u32) -> bool {
        let i = self.0.partition_point(|&(_, b)| b < n);
        self.0.get(i).is_some_and(|&(a, _)| a <= n)
    }

    /// How many numbers the set holds.
    pub(super) fn count(&self) -> u64 {
        self.0.iter().map(|&(a, b)| u64::from(b - a) + 1).sum()
    }
}

/// Sorted UIDs as sets of ranges, at most [`RANGES_PER_LINE`] ranges each.
pub(super) fn compact(uids: &[u32]) -> Result<Vec<SequenceSet>> {
    let mut ranges: Vec<(u32, u32)> = Vec::new();
    for &u in uids {
        match ranges.last_mut() {
            Some(last) if last.1.checked_add(1) == Some(u) => last.1 = u,
            _ => ranges.push((u, u)),
        }
    }
    ranges
        .chunks(RANGES_PER_LINE)
        .map(|chunk| {
            let seqs = chunk
                .iter()
                .map(|&(a, b)| {
                    Ok(if a == b {
                        Sequence::Single(SeqOrUid::Value(nz(a)?))
                    } else {
                        Sequence::Range(SeqOrUid::Value(nz(a)?), SeqOrUid::Value(nz(b)?))
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            SequenceSet::try_from(seqs).map_err(response_err)
        })
        .collect()
}

/// What a `SELECT … (QRESYNC (…))` says the client knows.
pub(super) struct Resync {
    uidvalidity: u32,
    modseq: u64,
    /// The UIDs the client knows of (all, when it did not say).
    known: Option<Ranges>,
}

impl Resync {
    /// The QRESYNC parameter of a SELECT, checked; `Err` is the BAD to answer.
    pub(super) fn of(parameter: &SelectParameter) -> std::result::Result<Option<Self>, Done> {
        let SelectParameter::QResync {
            uid_validity,
            mod_sequence_value,
            known_uids,
            seq_match_data,
        } = parameter
        else {
            return Ok(None);
        };
        let too_large = |s: &SequenceSet| s.0.as_ref().len() > MAX_SET_ELEMENTS;
        if known_uids.as_ref().is_some_and(too_large) {
            return Err(Done::bad("Too many known UIDs"));
        }
        if let Some((seqs, uids)) = seq_match_data {
            if too_large(seqs) || too_large(uids) {
                return Err(Done::bad("Too much sequence match data"));
            }
            // Each message sequence number needs its UID (RFC 7162 3.2.5.2).
            if Ranges::of(seqs, u32::MAX).count() != Ranges::of(uids, u32::MAX).count() {
                return Err(Done::bad("Invalid QRESYNC sequence match data"));
            }
        }
        Ok(Some(Resync {
            uidvalidity: uid_validity.get(),
            modseq: mod_sequence_value.get(),
            known: known_uids.as_ref().map(|s| Ranges::of(s, u32::MAX)),
        }))
    }

    fn knows(&self, uid: u32) -> bool {
        self.known.as_ref().is_none_or(|k| k.contains(uid))
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send> Session<S> {
    /// `* VANISHED [(EARLIER)] uids` for sorted `uids`, nothing when there are none.
    pub(super) fn vanished(&mut self, earlier: bool, uids: &[u32]) -> Result<()> {
        for known_uids in compact(uids)? {
            self.data(Data::Vanished {
                earlier,
                known_uids,
            });
        }
        Ok(())
    }

    /// UIDs of the selected folder expunged after modification sequence `since`, by UID
    /// (for the archive, every entry purged at the end of its retention).
    pub(super) async fn expunged_since(&self, since: u64) -> Result<Vec<u32>> {
        let Some(sel) = self.selected.as_ref() else {
            return Ok(Vec::new());
        };
        if sel.archive {
            return archive::purged(&self.config, self.user()?).await;
        }
        let (user, folder) = (self.user()?, sel.name.clone());
        self.config
            .store(move |s| s.expunged_since(&user, &folder, since))
            .await
    }

    /// The end of a QRESYNC SELECT, the folder selected: what vanished since the
    /// client's modseq among the UIDs it knows, then the FETCH of every message it
    /// knows that changed since. Nothing when the UIDVALIDITY changed: the client must
    /// start again.
    pub(super) async fn resync(&mut self, resync: &Resync) -> Result<()> {
        let Some(sel) = self.selected.as_ref() else {
            return Ok(());
        };
        if sel.uidvalidity != resync.uidvalidity {
            return Ok(());
        }
        let gone: Vec<u32> = self
            .expunged_since(resync.modseq)
            .await?
            .into_iter()
            .filter(|&u| resync.knows(u))
            .collect();
        self.vanished(true, &gone)?;
        let Some(sel) = self.selected.as_ref() else {
            return Ok(());
        };
        let mut out = Vec::new();
        for (i, m) in sel.messages.iter().enumerate() {
            if m.modseq > resync.modseq && resync.knows(m.uid) {
                let items = vec![
                    MessageDataItem::Uid(nz(m.uid)?),
                    MessageDataItem::Flags(sel.flags(m)),
                    modseq_item(m),
                ];
                out.push(Data::Fetch {
                    seq: seq_of(i)?,
                    items: Vec1::try_from(items).map_err(response_err)?,
                });
            }
        }
        for d in out {
            self.data(d);
        }
        Ok(())
    }

    /// The `VANISHED (EARLIER)` part of `UID FETCH set (…) (CHANGEDSINCE since
    /// VANISHED)`: the UIDs of `set` expunged after `since`.
    pub(super) async fn vanished_in(&mut self, set: &SequenceSet, since: u64) -> Result<()> {
        let gone = self.expunged_since(since).await?;
        let largest = self
            .selected
            .as_ref()
            .and_then(|s| s.messages.last())
            .map_or(0, |m| m.uid)
            .max(gone.last().copied().unwrap_or(0));
        let wanted = Ranges::of(set, largest);
        let gone: Vec<u32> = gone.into_iter().filter(|&u| wanted.contains(u)).collect();
        self.vanished(true, &gone)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_merge_and_answer_without_expanding() {
        let set = SequenceSet::try_from("7,1:3,2:4,10:4294967295").unwrap();
        let r = Ranges::of(&set, 9);
        assert_eq!(r.0, vec![(1, 4), (7, 7), (10, u32::MAX)]);
        assert!(r.contains(1) && r.contains(4) && !r.contains(5) && r.contains(7));
        assert!(r.contains(u32::MAX) && !r.contains(8) && !r.contains(0));
        assert_eq!(r.count(), 4 + 1 + u64::from(u32::MAX - 10) + 1);
        let star = Ranges::of(&SequenceSet::try_from("5:*").unwrap(), 3);
        assert!(star.contains(3) && star.contains(5) && !star.contains(6));
    }

    #[test]
    fn uids_are_sent_as_ranges() {
        let sets = compact(&[1, 2, 3, 5, 7, 8]).unwrap();
        assert_eq!(sets.len(), 1);
        let text = String::from_utf8(
            ResponseCodec::default()
                .encode(&Response::Data(Data::Vanished {
                    earlier: true,
                    known_uids: sets[0].clone(),
                }))
                .dump(),
        )
        .unwrap();
        assert_eq!(text, "* VANISHED (EARLIER) 1:3,5,7:8\r\n");
        let many: Vec<u32> = (1..=2 * RANGES_PER_LINE as u32 + 1)
            .map(|i| i * 2)
            .collect();
        assert_eq!(compact(&many).unwrap().len(), 3);
        assert!(compact(&[]).unwrap().is_empty());
    }
}
