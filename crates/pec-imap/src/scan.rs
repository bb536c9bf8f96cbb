//! A scanner over one whole command message (tag included, literals joined by the
//! fragmentizer), for the commands `imap-codec` 2.0.0-alpha.10 does not decode
//! (extended LIST, NOTIFY, MULTIAPPEND and CATENATE, SEARCH and SORT with RETURN,
//! CANCELUPDATE): the IMAP tokens those parsers are made of, each bounded by the message
//! it reads, none recursive.

/// Characters not allowed in an atom (RFC 3501 `atom-specials`, without
/// the list wildcards and `]`, which callers check themselves).
fn atom_char(c: u8) -> bool {
    c > b' ' && c != 0x7f && !matches!(c, b'(' | b')' | b'{' | b'"' | b'\\')
}

/// A position in a command message.
pub(crate) struct Scanner<'a> {
    s: &'a [u8],
    i: usize,
}

impl<'a> Scanner<'a> {
    /// A scanner at the start of `message`.
    pub(crate) fn new(message: &'a [u8]) -> Self {
        Scanner { s: message, i: 0 }
    }

    /// How many bytes of the message are consumed.
    pub(crate) fn position(&self) -> usize {
        self.i
    }

    /// The next byte, not consumed.
    pub(crate) fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    /// Consumes `c` if it comes next.
    pub(crate) fn eat(&mut self, c: u8) -> bool {
        if self.peek() == Some(c) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    /// A run of non-space bytes (the tag).
    pub(crate) fn word(&mut self) -> Option<&'a [u8]> {
        let start = self.i;
        while self
            .peek()
            .is_some_and(|c| c != b' ' && c != b'\r' && c != b'\n')
        {
            self.i += 1;
        }
        (self.i > start).then(|| &self.s[start..self.i])
    }

    /// Consumes the keyword `k` (any case) if it comes next as a whole atom.
    pub(crate) fn keyword(&mut self, k: &[u8]) -> bool {
        let end = self.i + k.len();
        let ok = self
            .s
            .get(self.i..end)
            .is_some_and(|w| w.eq_ignore_ascii_case(k))
            && self.s.get(end).is_none_or(|&c| !atom_char(c));
        if ok {
            self.i = end;
        }
        ok
    }

    /// An atom (list wildcards and `]` allowed).
    pub(crate) fn atom(&mut self) -> Option<Vec<u8>> {
        let start = self.i;
        while self.peek().is_some_and(atom_char) {
            self.i += 1;
        }
        (self.i > start).then(|| self.s[start..self.i].to_vec())
    }

    /// The rest of a quoted string, after its opening quote.
    fn quoted(&mut self) -> Option<Vec<u8>> {
        let mut out = Vec::new();
        loop {
            let c = self.peek()?;
            self.i += 1;
            match c {
                b'"' => return Some(out),
                b'\\' => {
                    let e = self.peek().filter(|e| matches!(e, b'"' | b'\\'))?;
                    self.i += 1;
                    out.push(e);
                }
                b'\r' | b'\n' => return None,
                c => out.push(c),
            }
        }
    }

    /// The rest of a literal after its `{`: `n}` or `n+}`, CRLF, then n bytes (the
    /// fragmentizer already joined them).
    fn literal(&mut self) -> Option<Vec<u8>> {
        let start = self.i;
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.i += 1;
        }
        let n: usize = std::str::from_utf8(&self.s[start..self.i])
            .ok()?
            .parse()
            .ok()?;
        self.eat(b'+');
        if !self.eat(b'}') {
            return None;
        }
        self.eat(b'\r');
        if !self.eat(b'\n') {
            return None;
        }
        let bytes = self.s.get(self.i..self.i.checked_add(n)?)?.to_vec();
        self.i += n;
        Some(bytes)
    }

    /// A literal or an RFC 3516 literal8 (`~{n}`), as APPEND and CATENATE's TEXT take.
    pub(crate) fn literal8(&mut self) -> Option<Vec<u8>> {
        self.eat(b'~');
        if !self.eat(b'{') {
            return None;
        }
        self.literal()
    }

    /// An astring or list-mailbox: atom (wildcards allowed), quoted or literal.
    pub(crate) fn string(&mut self) -> Option<Vec<u8>> {
        if self.eat(b'"') {
            self.quoted()
        } else if self.eat(b'{') {
            self.literal()
        } else {
            self.atom()
        }
    }

    /// `"(" [atom *(SP atom)] ")"`, each atom upper-cased.
    pub(crate) fn option_list(&mut self) -> Option<Vec<Vec<u8>>> {
        if !self.eat(b'(') {
            return None;
        }
        let mut out = Vec::new();
        if self.eat(b')') {
            return Some(out);
        }
        loop {
            out.push(self.atom()?.to_ascii_uppercase());
            if self.eat(b')') {
                return Some(out);
            }
            if !self.eat(b' ') {
                return None;
            }
        }
    }

    /// A parenthesised list, parentheses included, taken whole without looking inside
    /// but for its nesting (at most `max_depth` deep) and its quoted strings and
    /// literals, whose parentheses do not count. `None` if it does not end within the
    /// message or is nested deeper.
    pub(crate) fn balanced(&mut self, max_depth: usize) -> Option<&'a [u8]> {
        let start = self.i;
        if !self.eat(b'(') {
            return None;
        }
        let mut depth = 1usize;
        while depth > 0 {
            match self.peek()? {
                b'(' => {
                    depth += 1;
                    if depth > max_depth {
                        return None;
                    }
                    self.i += 1;
                }
                b')' => {
                    depth -= 1;
                    self.i += 1;
                }
                b'"' => {
                    self.i += 1;
                    self.quoted()?;
                }
                b'{' => {
                    self.i += 1;
                    self.literal()?;
                }
                b'\r' | b'\n' => return None,
                _ => self.i += 1,
            }
        }
        Some(&self.s[start..self.i])
    }

    /// Whether only the final CRLF (or LF) is left.
    pub(crate) fn at_end(&mut self) -> bool {
        self.eat(b'\r');
        self.eat(b'\n') && self.i == self.s.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_in_their_three_forms() {
        let mut s = Scanner::new(b"abc \"q \\\" x\" {3}\r\nA B\r\n");
        assert_eq!(s.string().unwrap(), b"abc");
        assert!(s.eat(b' '));
        assert_eq!(s.string().unwrap(), b"q \" x");
        assert!(s.eat(b' '));
        assert_eq!(s.string().unwrap(), b"A B");
        assert!(s.at_end());
    }

    #[test]
    fn balanced_lists_are_bounded_in_depth() {
        let mut s = Scanner::new(b"(UID BODY.PEEK[HEADER.FIELDS (FROM \")\")]) rest");
        assert_eq!(
            s.balanced(4).unwrap(),
            b"(UID BODY.PEEK[HEADER.FIELDS (FROM \")\")])"
        );
        assert!(Scanner::new(b"((((x))))").balanced(3).is_none());
        assert!(Scanner::new(b"((x)").balanced(3).is_none());
        let deep = [vec![b'('; 100_000], vec![b')'; 100_000]].concat();
        assert!(Scanner::new(&deep).balanced(8).is_none());
    }
}
