//! The RETURN options of SEARCH and SORT (RFC 4731 ESEARCH, RFC 5267 ESORT and
//! CONTEXT, RFC 9394's negative PARTIAL ranges) and the CANCELUPDATE command, which
//! imap-codec 2.0.0-alpha.10 does not decode. Only the missing piece is parsed here:
//! the RETURN clause is cut out of the command and the rest goes back to the codec,
//! which decodes it as the plain SEARCH or SORT it then is.
//!
//! ```abnf
//! search            = ["UID" SP] "SEARCH" [SP "RETURN" SP search-return-opts] ...
//! extended-sort     = ["UID" SP] "SORT" SP "RETURN" SP search-return-opts ...
//! search-return-opts = "(" [search-return-opt *(SP search-return-opt)] ")"
//! search-return-opt = "MIN" / "MAX" / "ALL" / "COUNT" / "UPDATE" / "CONTEXT" /
//!                     "PARTIAL" SP partial-range
//! partial-range     = nz-number ":" nz-number / "-" nz-number ":" "-" nz-number
//! command-select    =/ "CANCELUPDATE" 1*(SP quoted)
//! ```
//!
//! Bounded: at most [`MAX_OPTIONS`] return options and [`MAX_CANCEL`] tags; the parser
//! never recurses.

use crate::scan::Scanner;

/// Most return options one command may carry (there are seven different ones).
pub(crate) const MAX_OPTIONS: usize = 16;

/// Most tags one CANCELUPDATE may name.
pub(crate) const MAX_CANCEL: usize = 64;

/// A PARTIAL range: result positions `low..=high`, counted from 1 at the start of the
/// ordered result or, `from_end`, from 1 at its end (RFC 9394 `-1:-100`, the last 100).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Partial {
    /// Counted from the end.
    pub from_end: bool,
    /// The smaller position (at least 1).
    pub low: u32,
    /// The larger position.
    pub high: u32,
}

impl Partial {
    /// The range as the reply echoes it, smaller position first (`4:2` is `2:4`).
    pub(crate) fn echo(&self) -> String {
        let sign = if self.from_end { "-" } else { "" };
        format!("{sign}{}:{sign}{}", self.low, self.high)
    }

    /// The indices (from 0) of the range within a result of `len` entries.
    pub(crate) fn indices(&self, len: usize) -> std::ops::Range<usize> {
        let low = usize::try_from(self.low).unwrap_or(usize::MAX);
        let high = usize::try_from(self.high).unwrap_or(usize::MAX);
        let before = low.saturating_sub(1);
        if self.from_end {
            len.saturating_sub(high)..len.saturating_sub(before)
        } else {
            before.min(len)..high.min(len)
        }
    }
}

/// What a RETURN list asks for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct ReturnOptions {
    /// MIN: the first result.
    pub min: bool,
    /// MAX: the last result.
    pub max: bool,
    /// ALL: every result (also what an empty list asks for).
    pub all: bool,
    /// COUNT: how many.
    pub count: bool,
    /// UPDATE: tell the changes of the result from now on (RFC 5267 4.3).
    pub update: bool,
    /// PARTIAL: the results at these positions (RFC 5267 4.4).
    pub partial: Option<Partial>,
}

/// A command this module decodes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Extended {
    /// SEARCH or SORT (UID or not) with RETURN options.
    Searching {
        /// The options.
        options: ReturnOptions,
        /// The command without its RETURN clause, for the codec to decode.
        command: Vec<u8>,
    },
    /// CANCELUPDATE: the tags of the searches whose updates stop.
    CancelUpdate(Vec<String>),
}

/// Parses a whole command message (tag included, CRLF at the end) as a SEARCH or SORT
/// with RETURN options, or as CANCELUPDATE. `None` if it is neither; `Err` with the
/// text of the BAD when it is one but malformed.
pub(crate) fn parse(message: &[u8]) -> Option<Result<Extended, &'static str>> {
    let mut p = Scanner::new(message);
    p.word()?;
    if !p.eat(b' ') {
        return None;
    }
    if p.keyword(b"CANCELUPDATE") {
        return Some(cancel_update(&mut p).ok_or("Syntax error in CANCELUPDATE"));
    }
    if p.keyword(b"UID") && !p.eat(b' ') {
        return None;
    }
    if !(p.keyword(b"SEARCH") || p.keyword(b"SORT")) {
        return None;
    }
    let cut = p.position();
    if !(p.eat(b' ') && p.keyword(b"RETURN")) {
        return None;
    }
    Some(return_options(&mut p).map(|options| {
        let mut command = message[..cut].to_vec();
        command.extend_from_slice(&message[p.position()..]);
        Extended::Searching { options, command }
    }))
}

/// The tags after `CANCELUPDATE`, to the end of the message.
fn cancel_update(p: &mut Scanner<'_>) -> Option<Extended> {
    let mut tags = Vec::new();
    while p.eat(b' ') {
        if tags.len() == MAX_CANCEL {
            return None;
        }
        tags.push(String::from_utf8(p.string()?).ok()?);
    }
    (!tags.is_empty() && p.at_end()).then_some(Extended::CancelUpdate(tags))
}

/// ` (options)` after `RETURN`.
fn return_options(p: &mut Scanner<'_>) -> Result<ReturnOptions, &'static str> {
    const SYNTAX: &str = "Syntax error in RETURN options";
    if !(p.eat(b' ') && p.eat(b'(')) {
        return Err(SYNTAX);
    }
    let mut o = ReturnOptions::default();
    let mut n = 0;
    if !p.eat(b')') {
        loop {
            n += 1;
            if n > MAX_OPTIONS {
                return Err("Too many RETURN options");
            }
            let option = p.atom().ok_or(SYNTAX)?.to_ascii_uppercase();
            match option.as_slice() {
                b"MIN" => o.min = true,
                b"MAX" => o.max = true,
                b"ALL" => o.all = true,
                b"COUNT" => o.count = true,
                b"UPDATE" => o.update = true,
                // A hint that the same search will come again (RFC 5267 4.2): nothing
                // is cached, every search runs afresh.
                b"CONTEXT" => {}
                b"PARTIAL" => {
                    if o.partial.is_some() || !p.eat(b' ') {
                        return Err("Invalid PARTIAL");
                    }
                    o.partial =
                        Some(p.atom().as_deref().and_then(partial).ok_or(
                            "PARTIAL needs a range of positions such as 1:100 or -1:-100",
                        )?);
                }
                _ => return Err("Unknown RETURN option"),
            }
            if p.eat(b')') {
                break;
            }
            if !p.eat(b' ') {
                return Err(SYNTAX);
            }
        }
    } else {
        // An empty list asks for ALL (RFC 4731 3.1).
        o.all = true;
    }
    if o.all && o.partial.is_some() {
        // One PARTIAL or one ALL, not both (RFC 5267 4.4).
        return Err("ALL and PARTIAL together");
    }
    Ok(o)
}

/// `n:m` or `-n:-m`, both non-zero, no `*`.
fn partial(range: &[u8]) -> Option<Partial> {
    let text = std::str::from_utf8(range).ok()?;
    let (a, b) = text.split_once(':')?;
    let number = |s: &str| -> Option<(bool, u32)> {
        let (negative, digits) = match s.strip_prefix('-') {
            Some(d) => (true, d),
            None => (false, s),
        };
        if digits.is_empty() || !digits.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        let n: u32 = digits.parse().ok()?;
        (n > 0).then_some((negative, n))
    };
    let ((na, a), (nb, b)) = (number(a)?, number(b)?);
    (na == nb).then_some(Partial {
        from_end: na,
        low: a.min(b),
        high: a.max(b),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn searching(line: &str) -> (ReturnOptions, String) {
        match parse(line.as_bytes()) {
            Some(Ok(Extended::Searching { options, command })) => {
                (options, String::from_utf8(command).unwrap())
            }
            other => panic!("{line}: {other:?}"),
        }
    }

    fn refused(line: &str) -> &'static str {
        match parse(line.as_bytes()) {
            Some(Err(why)) => why,
            other => panic!("{line}: {other:?}"),
        }
    }

    #[test]
    fn the_return_clause_is_cut_out_for_the_codec() {
        let (o, rest) = searching("a SEARCH RETURN (MIN max Count) 1:3 MODSEQ 5\r\n");
        assert!(o.min && o.max && o.count && !o.all && !o.update);
        assert_eq!(rest, "a SEARCH 1:3 MODSEQ 5\r\n");
        let (o, rest) = searching("b uid sort return () (ARRIVAL) US-ASCII ALL\r\n");
        assert!(o.all, "an empty list is ALL");
        assert_eq!(rest, "b uid sort (ARRIVAL) US-ASCII ALL\r\n");
        let (o, rest) = searching("c UID SEARCH RETURN (UPDATE CONTEXT ALL) TEXT {4}\r\nab()\r\n");
        assert!(o.update && o.all);
        assert_eq!(rest, "c UID SEARCH TEXT {4}\r\nab()\r\n");
    }

    #[test]
    fn partial_ranges_positive_and_from_the_end() {
        let range = |line: &str| searching(line).0.partial.unwrap();
        let p = range("a SEARCH RETURN (PARTIAL 4:2) ALL\r\n");
        assert_eq!(
            (p.from_end, p.low, p.high, p.echo()),
            (false, 2, 4, "2:4".into())
        );
        let p = range("a SEARCH RETURN (PARTIAL -1:-10 COUNT) ALL\r\n");
        assert_eq!(
            (p.from_end, p.low, p.high, p.echo()),
            (true, 1, 10, "-1:-10".into())
        );
        assert_eq!(p.indices(25), 15..25, "the last ten of 25");
        assert_eq!(p.indices(3), 0..3);
        let p = range("a SEARCH RETURN (PARTIAL 2:4) ALL\r\n");
        assert_eq!(p.indices(10), 1..4);
        assert_eq!(p.indices(2), 1..2);
        assert_eq!(p.indices(1), 1..1, "beyond the end: nothing");
        let huge = Partial {
            from_end: true,
            low: u32::MAX,
            high: u32::MAX,
        };
        assert!(huge.indices(5).is_empty());
        for bad in ["1", "1:*", "*:1", "0:3", "-1:3", "1:", ":2", "1:2:3", "a:b"] {
            refused(&format!("a SEARCH RETURN (PARTIAL {bad}) ALL\r\n"));
        }
        refused("a SEARCH RETURN (PARTIAL 1:2 ALL) ALL\r\n");
        refused("a SEARCH RETURN (PARTIAL 1:2 PARTIAL 3:4) ALL\r\n");
    }

    #[test]
    fn malformed_or_foreign() {
        refused("a SEARCH RETURN (SAVE) ALL\r\n");
        refused("a SEARCH RETURN ALL\r\n");
        refused("a SEARCH RETURN (MIN\r\n");
        let many = vec!["MIN"; MAX_OPTIONS + 1].join(" ");
        refused(&format!("a SEARCH RETURN ({many}) ALL\r\n"));
        // Not ours: the codec's answer stands.
        for line in [
            "a SEARCH ALL\r\n",
            "a FETCH 1 (UID)\r\n",
            "a UIDSEARCH RETURN () ALL\r\n",
            "a SEARCHES RETURN () ALL\r\n",
        ] {
            assert!(parse(line.as_bytes()).is_none(), "{line}");
        }
    }

    #[test]
    fn cancelupdate_names_tags() {
        assert_eq!(
            parse(b"x CANCELUPDATE \"a1\" \"b 2\"\r\n"),
            Some(Ok(Extended::CancelUpdate(vec!["a1".into(), "b 2".into()])))
        );
        refused("x CANCELUPDATE\r\n");
        refused("x CANCELUPDATE \"a\" junk(\r\n");
        let many = vec!["\"t\""; MAX_CANCEL + 1].join(" ");
        refused(&format!("x CANCELUPDATE {many}\r\n"));
    }

    proptest! {
        #[test]
        fn any_bytes_parse_without_panic_and_cut_only_the_clause(
            tail in proptest::collection::vec(any::<u8>(), 0..200)
        ) {
            let mut line = b"t SEARCH RETURN ".to_vec();
            line.extend_from_slice(&tail);
            if let Some(Ok(Extended::Searching { command, .. })) = parse(&line) {
                prop_assert!(command.starts_with(b"t SEARCH"));
                prop_assert!(command.len() + "RETURN ()".len() <= line.len() + 1);
                prop_assert!(line.ends_with(&command["t SEARCH".len()..]));
            }
            let _ = parse(&tail);
        }
    }
}
