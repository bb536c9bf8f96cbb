//! The RFC 5258 (LIST-EXTENDED) form of LIST, parsed here because
//! imap-codec 2.0.0-alpha.10 decodes only the RFC 3501 form: selection
//! options before the reference, several patterns in parentheses, and
//! return options after `RETURN`.
//!
//! ```abnf
//! list             = "LIST" [SP list-select-opts] SP mailbox SP mbox-or-pat
//!                    [SP list-return-opts]
//! list-select-opts = "(" [list-select-option *(SP list-select-option)] ")"
//! mbox-or-pat      = list-mailbox / patterns
//! patterns         = "(" list-mailbox *(SP list-mailbox) ")"
//! list-return-opts = "RETURN" SP "(" [return-option *(SP return-option)] ")"
//! ```

use imap_codec::imap_types::mailbox::{ListMailbox, Mailbox};

/// What a LIST command asks for, in either form.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct ListOptions {
    /// Selection option SUBSCRIBED: only subscribed mailboxes, marked `\Subscribed`.
    pub subscribed: bool,
    /// Selection option SPECIAL-USE (RFC 6154): only mailboxes with a special use.
    pub special_use: bool,
    /// Selection option RECURSIVEMATCH: also parents of selected mailboxes,
    /// with a CHILDINFO extended data item.
    pub recursive_match: bool,
    /// Return option SUBSCRIBED: mark subscribed mailboxes `\Subscribed`.
    pub return_subscribed: bool,
    /// Reference name.
    pub reference: Vec<u8>,
    /// Mailbox patterns (at least one).
    pub patterns: Vec<Vec<u8>>,
}

impl ListOptions {
    /// The RFC 3501 LIST (or LSUB): one pattern, no options.
    pub(crate) fn plain(reference: &Mailbox<'_>, pattern: &ListMailbox<'_>) -> Self {
        let reference = match reference {
            Mailbox::Inbox => b"INBOX".to_vec(),
            Mailbox::Other(o) => o.inner().as_ref().to_vec(),
        };
        let pattern = match pattern {
            ListMailbox::Token(t) => t.as_ref().to_vec(),
            ListMailbox::String(s) => s.as_ref().to_vec(),
        };
        ListOptions {
            reference,
            patterns: vec![pattern],
            ..ListOptions::default()
        }
    }
}

/// Why an extended LIST is refused with BAD.
pub(crate) type Refusal = &'static str;

/// Parses a whole command message (tag included, CRLF at the end) as an
/// extended LIST. `None` if it is not a LIST command at all; `Some(Err)`
/// for a LIST that is malformed or asks for an unsupported option.
pub(crate) fn parse(message: &[u8]) -> Option<Result<ListOptions, Refusal>> {
    let mut p = Parser { s: message, i: 0 };
    p.word()?;
    if !p.eat(b' ') || !p.keyword(b"LIST") || !p.eat(b' ') {
        return None;
    }
    Some(p.list())
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

/// Characters not allowed in an atom (RFC 3501 `atom-specials`, without
/// the list wildcards and `]`, which callers check themselves).
fn atom_char(c: u8) -> bool {
    c > b' ' && c != 0x7f && !matches!(c, b'(' | b')' | b'{' | b'"' | b'\\')
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn eat(&mut self, c: u8) -> bool {
        if self.peek() == Some(c) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    /// A run of non-space bytes (the tag).
    fn word(&mut self) -> Option<&[u8]> {
        let start = self.i;
        while self
            .peek()
            .is_some_and(|c| c != b' ' && c != b'\r' && c != b'\n')
        {
            self.i += 1;
        }
        (self.i > start).then(|| &self.s[start..self.i])
    }

    fn keyword(&mut self, k: &[u8]) -> bool {
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

    fn atom(&mut self) -> Option<Vec<u8>> {
        let start = self.i;
        while self.peek().is_some_and(atom_char) {
            self.i += 1;
        }
        (self.i > start).then(|| self.s[start..self.i].to_vec())
    }

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

    /// `{n}` or `{n+}`, CRLF, then n bytes (the fragmentizer already joined them).
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

    /// An astring or list-mailbox: atom (wildcards allowed), quoted or literal.
    fn string(&mut self) -> Option<Vec<u8>> {
        if self.eat(b'"') {
            self.quoted()
        } else if self.eat(b'{') {
            self.literal()
        } else {
            self.atom()
        }
    }

    /// `"(" [atom *(SP atom)] ")"`, each atom upper-cased.
    fn option_list(&mut self) -> Option<Vec<Vec<u8>>> {
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

    fn list(&mut self) -> Result<ListOptions, Refusal> {
        const SYNTAX: Refusal = "Syntax error in LIST";
        let mut o = ListOptions::default();
        if self.peek() == Some(b'(') {
            for opt in self.option_list().ok_or(SYNTAX)? {
                match opt.as_slice() {
                    b"SUBSCRIBED" => o.subscribed = true,
                    b"SPECIAL-USE" => o.special_use = true,
                    b"RECURSIVEMATCH" => o.recursive_match = true,
                    // Remote mailboxes: there are none, nothing to add.
                    b"REMOTE" => {}
                    _ => return Err("Unknown LIST selection option"),
                }
            }
            if !self.eat(b' ') {
                return Err(SYNTAX);
            }
        }
        if o.recursive_match && !o.subscribed && !o.special_use {
            return Err("RECURSIVEMATCH needs another selection option");
        }
        o.reference = self.string().ok_or(SYNTAX)?;
        if !self.eat(b' ') {
            return Err(SYNTAX);
        }
        if self.eat(b'(') {
            loop {
                o.patterns.push(self.string().ok_or(SYNTAX)?);
                if self.eat(b')') {
                    break;
                }
                if !self.eat(b' ') {
                    return Err(SYNTAX);
                }
            }
        } else {
            o.patterns.push(self.string().ok_or(SYNTAX)?);
        }
        if self.eat(b' ') {
            if !self.keyword(b"RETURN") || !self.eat(b' ') {
                return Err(SYNTAX);
            }
            for opt in self.option_list().ok_or(SYNTAX)? {
                match opt.as_slice() {
                    b"SUBSCRIBED" => o.return_subscribed = true,
                    // Children and special-use attributes are always returned.
                    b"CHILDREN" | b"SPECIAL-USE" => {}
                    _ => return Err("Unsupported LIST return option"),
                }
            }
        }
        self.eat(b'\r');
        if !self.eat(b'\n') || self.i != self.s.len() {
            return Err(SYNTAX);
        }
        Ok(o)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(line: &str) -> ListOptions {
        match parse(line.as_bytes()) {
            Some(Ok(o)) => o,
            other => panic!("{line:?} gave {other:?}"),
        }
    }

    #[test]
    fn selection_and_return_options() {
        let o = ok("a LIST (SPECIAL-USE) \"\" \"*\"\r\n");
        assert!(o.special_use && !o.subscribed);
        assert_eq!(o.patterns, vec![b"*".to_vec()]);

        let o = ok(
            "a list (subscribed recursivematch) \"\" % return (children subscribed special-use)\r\n",
        );
        assert!(o.subscribed && o.recursive_match && o.return_subscribed);
        assert_eq!(o.patterns, vec![b"%".to_vec()]);

        let o = ok("t LIST \"\" (INBOX \"Sent\" {4}\r\nA b*) RETURN ()\r\n");
        assert_eq!(
            o.patterns,
            vec![b"INBOX".to_vec(), b"Sent".to_vec(), b"A b*".to_vec()]
        );
        assert!(o.reference.is_empty());
    }

    #[test]
    fn refusals_and_other_commands() {
        assert!(parse(b"a SELECT INBOX\r\n").is_none());
        assert!(parse(b"a LSUB \"\" *\r\n").is_none());
        assert!(matches!(
            parse(b"a LIST (RECURSIVEMATCH) \"\" *\r\n"),
            Some(Err(_))
        ));
        assert!(matches!(parse(b"a LIST (BOGUS) \"\" *\r\n"), Some(Err(_))));
        assert!(matches!(
            parse(b"a LIST \"\" * RETURN (STATUS (MESSAGES))\r\n"),
            Some(Err(_))
        ));
        assert!(matches!(parse(b"a LIST \"\" (*\r\n"), Some(Err(_))));
        assert!(matches!(parse(b"a LIST \"\" * junk\r\n"), Some(Err(_))));
    }
}
