//! The ESEARCH response (RFC 4731, with RFC 5267's PARTIAL, ADDTO and REMOVEFROM and
//! RFC 7162's MODSEQ), written here because imap-codec 2.0.0-alpha.10 has no such
//! response; and how a result list changes, as ADDTO and REMOVEFROM tell it.

use std::collections::HashSet;
use std::fmt::Write;

use crate::search_return::ReturnOptions;

/// One result of a search, in the requested order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Hit {
    /// Its UID for UID SEARCH/SORT, else its sequence number.
    pub number: u32,
    /// Its modification sequence.
    pub modseq: u64,
}

/// `* ESEARCH (TAG "tag")`, with ` UID` for a UID command.
fn head(tag: &str, uid: bool) -> String {
    let tag = tag.replace('\\', "\\\\").replace('"', "\\\"");
    format!("* ESEARCH (TAG \"{tag}\"){}", if uid { " UID" } else { "" })
}

/// The answer to a searching command with RETURN `options`, `hits` in the requested
/// order (mailbox order for SEARCH). MIN and MAX are the first and last of that order
/// (RFC 5267 3.1); MODSEQ, when the criteria named MODSEQ (`with_modseq`), is the
/// highest of the messages the reply shows (RFC 7162 3.1.5). A line, CRLF included.
pub(crate) fn response(
    tag: &str,
    uid: bool,
    hits: &[Hit],
    options: &ReturnOptions,
    with_modseq: bool,
) -> String {
    let mut line = head(tag, uid);
    let mut shown: Vec<&Hit> = Vec::new();
    if options.min
        && let Some(h) = hits.first()
    {
        let _ = write!(line, " MIN {}", h.number);
        shown.push(h);
    }
    if options.max
        && let Some(h) = hits.last()
    {
        let _ = write!(line, " MAX {}", h.number);
        shown.push(h);
    }
    if options.all && !hits.is_empty() {
        let _ = write!(line, " ALL {}", set(hits.iter().map(|h| h.number)));
        shown.extend(hits);
    }
    if let Some(p) = options.partial {
        let part = hits.get(p.indices(hits.len())).unwrap_or_default();
        let numbers = if part.is_empty() {
            "NIL".to_string()
        } else {
            set(part.iter().map(|h| h.number))
        };
        let _ = write!(line, " PARTIAL ({} {numbers})", p.echo());
        shown.extend(part);
    }
    if options.count {
        let _ = write!(line, " COUNT {}", hits.len());
        shown.extend(hits);
    }
    let highest = shown.iter().map(|h| h.modseq).max().unwrap_or(0);
    if with_modseq && highest > 0 {
        let _ = write!(line, " MODSEQ {highest}");
    }
    line.push_str("\r\n");
    line
}

/// Numbers in the given order as a sequence set: runs of consecutive ascending
/// numbers become ranges, anything else is listed as it comes (RFC 5267 3.2: `5,3:4,2`
/// keeps a sorted order, a range is never written downwards).
pub(crate) fn set(numbers: impl IntoIterator<Item = u32>) -> String {
    let mut out = String::new();
    let mut run: Option<(u32, u32)> = None;
    let flush = |out: &mut String, (a, b): (u32, u32)| {
        if !out.is_empty() {
            out.push(',');
        }
        let _ = if a == b {
            write!(out, "{a}")
        } else {
            write!(out, "{a}:{b}")
        };
    };
    for n in numbers {
        run = match run {
            Some((a, b)) if b.checked_add(1) == Some(n) => Some((a, n)),
            Some(r) => {
                flush(&mut out, r);
                Some((n, n))
            }
            None => Some((n, n)),
        };
    }
    if let Some(r) = run {
        flush(&mut out, r);
    }
    out
}

/// The pairs of an ADDTO or REMOVEFROM: a context position and the entries at it.
pub(crate) type Pairs = Vec<(u32, Vec<u32>)>;

/// How the ordered result `old` becomes `new`, where the entries both hold keep their
/// relative order: first the REMOVEFROM pairs, each position counted after the removals
/// before it, then the ADDTO pairs, each position counted after the additions before it
/// (RFC 5267 4.3.3 and 4.3.4). Entries are the context's own identities (UIDs).
pub(crate) fn changes(old: &[u32], new: &[u32]) -> (Pairs, Pairs) {
    let staying: HashSet<u32> = new.iter().copied().collect();
    let known: HashSet<u32> = old.iter().copied().collect();
    let mut removed: Pairs = Vec::new();
    let mut kept = 0u32;
    let mut in_run = false;
    for &e in old {
        if staying.contains(&e) {
            kept += 1;
            in_run = false;
        } else {
            match removed.last_mut() {
                Some((_, run)) if in_run => run.push(e),
                _ => removed.push((kept + 1, vec![e])),
            }
            in_run = true;
        }
    }
    let mut added: Pairs = Vec::new();
    in_run = false;
    for (i, &e) in new.iter().enumerate() {
        if known.contains(&e) {
            in_run = false;
            continue;
        }
        match added.last_mut() {
            Some((_, run)) if in_run => run.push(e),
            _ => added.push((u32::try_from(i + 1).unwrap_or(u32::MAX), vec![e])),
        }
        in_run = true;
    }
    (removed, added)
}

/// `* ESEARCH (TAG "tag") [UID] REMOVEFROM (...) ADDTO (...)` for the pairs (already
/// numbered as the client sees them); `None` when both are empty.
pub(crate) fn update(tag: &str, uid: bool, removed: &Pairs, added: &Pairs) -> Option<String> {
    if removed.is_empty() && added.is_empty() {
        return None;
    }
    let mut line = head(tag, uid);
    for (name, pairs) in [("REMOVEFROM", removed), ("ADDTO", added)] {
        if pairs.is_empty() {
            continue;
        }
        let items: Vec<String> = pairs
            .iter()
            .map(|(position, run)| format!("{position} {}", set(run.iter().copied())))
            .collect();
        let _ = write!(line, " {name} ({})", items.join(" "));
    }
    line.push_str("\r\n");
    Some(line)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::search_return::Partial;
    use proptest::prelude::*;

    fn hits(numbers: &[u32]) -> Vec<Hit> {
        numbers
            .iter()
            .map(|&n| Hit {
                number: n,
                modseq: u64::from(n) * 10,
            })
            .collect()
    }

    #[test]
    fn return_options_pick_what_is_shown() {
        let all = ReturnOptions {
            all: true,
            ..ReturnOptions::default()
        };
        let h = hits(&[1, 2, 3, 5, 6]);
        assert_eq!(
            response("a1", false, &h, &all, false),
            "* ESEARCH (TAG \"a1\") ALL 1:3,5:6\r\n"
        );
        let min_max = ReturnOptions {
            min: true,
            max: true,
            count: false,
            ..ReturnOptions::default()
        };
        assert_eq!(
            response("t", true, &h[1..4], &min_max, true),
            "* ESEARCH (TAG \"t\") UID MIN 2 MAX 5 MODSEQ 50\r\n",
            "MODSEQ of the messages shown"
        );
        let min = ReturnOptions {
            min: true,
            ..ReturnOptions::default()
        };
        assert_eq!(
            response("t", false, &h, &min, true),
            "* ESEARCH (TAG \"t\") MIN 1 MODSEQ 10\r\n"
        );
        let count = ReturnOptions {
            count: true,
            min: true,
            ..ReturnOptions::default()
        };
        assert_eq!(
            response("t", false, &[], &count, true),
            "* ESEARCH (TAG \"t\") COUNT 0\r\n",
            "nothing found: COUNT 0 only, no MODSEQ"
        );
        let partial = ReturnOptions {
            partial: Some(Partial {
                from_end: false,
                low: 2,
                high: 4,
            }),
            ..ReturnOptions::default()
        };
        assert_eq!(
            response("t", false, &hits(&[5, 3, 4, 2, 1]), &partial, false),
            "* ESEARCH (TAG \"t\") PARTIAL (2:4 3:4,2)\r\n"
        );
        assert_eq!(
            response("t", false, &hits(&[1]), &partial, false),
            "* ESEARCH (TAG \"t\") PARTIAL (2:4 NIL)\r\n"
        );
    }

    #[test]
    fn sets_keep_the_order_and_range_only_upwards() {
        assert_eq!(set([5, 3, 4, 2, 1]), "5,3:4,2,1");
        assert_eq!(set([1, 2, 4, 5, 7]), "1:2,4:5,7");
        assert_eq!(set([]), "");
        assert_eq!(set([u32::MAX, 1]), format!("{},1", u32::MAX));
    }

    #[test]
    fn changes_number_positions_as_rfc_5267_processes_them() {
        // Sorted result 10,20,30,40 becomes 20,35,40,50.
        let (removed, added) = changes(&[10, 20, 30, 40], &[20, 35, 40, 50]);
        assert_eq!(removed, vec![(1, vec![10]), (2, vec![30])]);
        assert_eq!(added, vec![(2, vec![35]), (4, vec![50])]);
        assert_eq!(
            update("s", true, &removed, &added).unwrap(),
            "* ESEARCH (TAG \"s\") UID REMOVEFROM (1 10 2 30) ADDTO (2 35 4 50)\r\n"
        );
        assert!(update("s", false, &Vec::new(), &Vec::new()).is_none());
        // Runs stay together.
        let (removed, added) = changes(&[1, 2, 3, 4], &[9, 8, 1, 4]);
        assert_eq!(removed, vec![(2, vec![2, 3])]);
        assert_eq!(added, vec![(1, vec![9, 8])]);
    }

    /// Applies the pairs as a client does (RFC 5267 4.3.3, 4.3.4).
    fn apply(old: &[u32], removed: &Pairs, added: &Pairs) -> Vec<u32> {
        let mut list = old.to_vec();
        for (pos, run) in removed {
            let at = (*pos - 1) as usize;
            assert_eq!(&list[at..at + run.len()], run.as_slice());
            list.drain(at..at + run.len());
        }
        for (pos, run) in added {
            let at = (*pos - 1) as usize;
            list.splice(at..at, run.iter().copied());
        }
        list
    }

    proptest! {
        #[test]
        fn a_client_applying_the_changes_gets_the_new_list(
            keep in proptest::collection::vec(any::<bool>(), 0..40),
            extra in proptest::collection::vec(0usize..60, 0..20),
        ) {
            // An order (here: descending), a kept subsequence and new entries anywhere.
            let old: Vec<u32> = (0..keep.len() as u32).rev().map(|n| n * 2).collect();
            let mut new: Vec<u32> = old
                .iter()
                .zip(&keep)
                .filter(|(_, k)| **k)
                .map(|(e, _)| *e)
                .collect();
            for (i, at) in extra.iter().enumerate() {
                let at = (*at).min(new.len());
                new.insert(at, 1001 + i as u32 * 2);
            }
            let (removed, added) = changes(&old, &new);
            prop_assert_eq!(apply(&old, &removed, &added), new);
        }
    }
}
