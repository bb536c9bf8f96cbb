//! SEARCH: the criteria of RFC 3501 and CONDSTORE MODSEQ, a message's bytes read only when a criterion needs them; the same scan picks the messages of SORT and THREAD.

use mail_parser::Message;

use super::*;

pub(super) fn date_of(ts: i64) -> Option<chrono::NaiveDate> {
    chrono::DateTime::from_timestamp(ts, 0).map(|d| d.date_naive())
}

/// A message being searched, its bytes loaded only if the criteria need them.
pub(super) struct Candidate<'a> {
    /// Its sequence number.
    pub(super) seq: u32,
    largest_seq: u32,
    largest_uid: u32,
    /// Its metadata.
    pub(super) meta: &'a MessageMeta,
    /// `\Recent` in this session.
    recent: bool,
    raw: &'a [u8],
    /// Its parsed header (or whole message), when read.
    pub(super) parsed: Option<&'a Message<'a>>,
}

pub(super) fn needs_bytes(key: &SearchKey<'_>) -> bool {
    match key {
        SearchKey::And(keys) => keys.as_ref().iter().any(needs_bytes),
        SearchKey::Not(k) => needs_bytes(k),
        SearchKey::Or(a, b) => needs_bytes(a) || needs_bytes(b),
        SearchKey::Bcc(_)
        | SearchKey::Body(_)
        | SearchKey::Cc(_)
        | SearchKey::From(_)
        | SearchKey::Header(..)
        | SearchKey::SentBefore(_)
        | SearchKey::SentOn(_)
        | SearchKey::SentSince(_)
        | SearchKey::Subject(_)
        | SearchKey::Text(_)
        | SearchKey::To(_) => true,
        _ => false,
    }
}

pub(super) fn has_modseq(key: &SearchKey<'_>) -> bool {
    match key {
        SearchKey::And(keys) => keys.as_ref().iter().any(has_modseq),
        SearchKey::Not(k) => has_modseq(k),
        SearchKey::Or(a, b) => has_modseq(a) || has_modseq(b),
        SearchKey::ModSequence { .. } => true,
        _ => false,
    }
}

pub(super) fn matches(key: &SearchKey<'_>, c: &Candidate<'_>) -> bool {
    let header = |name: &str, needle: &AString<'_>| {
        mime::contains_ci(
            mime::header_text(c.parsed, name).as_bytes(),
            needle.as_ref(),
        )
    };
    let sent = || mime::sent_date(c.parsed);
    let internal = date_of(c.meta.internaldate);
    match key {
        SearchKey::And(keys) => keys.as_ref().iter().all(|k| matches(k, c)),
        SearchKey::SequenceSet(set) => in_set(set, c.seq, c.largest_seq),
        SearchKey::Uid(set) => in_set(set, c.meta.uid, c.largest_uid),
        SearchKey::All => true,
        SearchKey::Answered => has_flag(c.meta, "\\Answered"),
        SearchKey::Unanswered => !has_flag(c.meta, "\\Answered"),
        SearchKey::Deleted => has_flag(c.meta, "\\Deleted"),
        SearchKey::Undeleted => !has_flag(c.meta, "\\Deleted"),
        SearchKey::Draft => has_flag(c.meta, "\\Draft"),
        SearchKey::Undraft => !has_flag(c.meta, "\\Draft"),
        SearchKey::Flagged => has_flag(c.meta, "\\Flagged"),
        SearchKey::Unflagged => !has_flag(c.meta, "\\Flagged"),
        SearchKey::Seen => has_flag(c.meta, "\\Seen"),
        SearchKey::Unseen => !has_flag(c.meta, "\\Seen"),
        SearchKey::Recent => c.recent,
        SearchKey::New => c.recent && !has_flag(c.meta, "\\Seen"),
        SearchKey::Old => !c.recent,
        SearchKey::Keyword(k) => has_flag(c.meta, k.as_ref()),
        SearchKey::Unkeyword(k) => !has_flag(c.meta, k.as_ref()),
        SearchKey::Larger(n) => c.meta.size > u64::from(*n),
        SearchKey::Smaller(n) => c.meta.size < u64::from(*n),
        SearchKey::Before(d) => internal.is_some_and(|i| i < *d.as_ref()),
        SearchKey::On(d) => internal.is_some_and(|i| i == *d.as_ref()),
        SearchKey::Since(d) => internal.is_some_and(|i| i >= *d.as_ref()),
        SearchKey::SentBefore(d) => sent().is_some_and(|i| i < *d.as_ref()),
        SearchKey::SentOn(d) => sent().is_some_and(|i| i == *d.as_ref()),
        SearchKey::SentSince(d) => sent().is_some_and(|i| i >= *d.as_ref()),
        SearchKey::From(s) => header("From", s),
        SearchKey::To(s) => header("To", s),
        SearchKey::Cc(s) => header("Cc", s),
        SearchKey::Bcc(s) => header("Bcc", s),
        SearchKey::Subject(s) => header("Subject", s),
        // An empty string asks whether the field is there at all (RFC 3501 6.4.4).
        SearchKey::Header(name, s) if s.as_ref().is_empty() => {
            mime::has_header(c.parsed, &String::from_utf8_lossy(name.as_ref()))
        }
        SearchKey::Header(name, s) => header(&String::from_utf8_lossy(name.as_ref()), s),
        SearchKey::Body(s) => mime::contains_ci(mime::split_header(c.raw).1, s.as_ref()),
        SearchKey::Text(s) => mime::contains_ci(c.raw, s.as_ref()),
        SearchKey::Not(k) => !matches(k, c),
        SearchKey::Or(a, b) => matches(a, c) || matches(b, c),
        SearchKey::ModSequence { modseq, .. } => c.meta.modseq >= *modseq,
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send> Session<S> {
    pub(super) async fn search(
        &mut self,
        criteria: Vec1<SearchKey<'static>>,
        uid: bool,
    ) -> Result<Done> {
        if self.selected.is_none() {
            return Ok(Done::bad("No mailbox selected"));
        }
        let mut hits = Vec::new();
        let modseq = self
            .scan(&SearchKey::And(criteria), false, |seq, meta, _| {
                hits.push(nz(if uid { meta.uid } else { seq })?);
                Ok(())
            })
            .await?;
        self.data(Data::Search(hits, modseq));
        Ok(Done::ok("SEARCH completed"))
    }

    /// Calls `visit` with the sequence number, the metadata and (with `header`) the
    /// parsed header of each message of the selected folder that matches `key`, in
    /// mailbox order; each message's bytes are read at most once, and only when the
    /// criteria or `header` need them. SEARCH, SORT and THREAD all pick messages
    /// here. Returns the highest MODSEQ of the matches when `key` asks for MODSEQ (RFC
    /// 7162 3.1.5: the reply reports it).
    pub(super) async fn scan(
        &mut self,
        key: &SearchKey<'_>,
        header: bool,
        mut visit: impl FnMut(u32, &MessageMeta, Option<&Message<'_>>) -> Result<()> + Send,
    ) -> Result<Option<NonZeroU64>> {
        let with_modseq = has_modseq(key);
        if with_modseq {
            self.condstore_on().await?;
        }
        let mut highest = 0;
        self.walk(None, needs_bytes(key), header, |c| {
            if matches(key, c) {
                visit(c.seq, c.meta, c.parsed)?;
                highest = highest.max(c.meta.modseq);
            }
            Ok(())
        })
        .await?;
        Ok(NonZeroU64::new(highest).filter(|_| with_modseq))
    }

    /// Calls `visit` for the messages of the selected folder at `only` (indices in
    /// sequence order, ascending; every message without it) as search candidates:
    /// with `whole` each one's bytes are read and parsed, with `header` only its header
    /// is parsed, else nothing is read. A message another session expunged meanwhile is
    /// skipped.
    pub(super) async fn walk(
        &mut self,
        only: Option<&[usize]>,
        whole: bool,
        header: bool,
        mut visit: impl FnMut(&Candidate<'_>) -> Result<()> + Send,
    ) -> Result<()> {
        let Some(sel) = self.selected.as_ref() else {
            return Ok(());
        };
        let (folder, archive) = (sel.name.clone(), sel.archive);
        let messages = sel.messages.clone();
        let recent = sel.recent.clone();
        let largest_uid = messages.last().map_or(0, |m| m.uid);
        let largest_seq = u32::try_from(messages.len()).unwrap_or(u32::MAX);
        let load = whole || header;
        let indices: Vec<usize> = match only {
            Some(only) => only.to_vec(),
            None => (0..messages.len()).collect(),
        };
        for i in indices {
            let Some(meta) = messages.get(i) else {
                continue;
            };
            let Some(raw) = self
                .bytes_if_present(load, archive, &folder, meta.uid)
                .await?
            else {
                continue;
            };
            // Only the header when the criteria do not read the rest.
            let parsed = load.then(|| {
                mime::parse(if whole {
                    &raw
                } else {
                    mime::split_header(&raw).0
                })
            });
            let msg = parsed.as_ref().and_then(Parsed::message);
            let c = Candidate {
                seq: u32::try_from(i + 1).unwrap_or(u32::MAX),
                largest_seq,
                largest_uid,
                meta,
                recent: recent.contains(&meta.uid),
                raw: &raw,
                parsed: msg,
            };
            visit(&c)?;
        }
        Ok(())
    }
}
