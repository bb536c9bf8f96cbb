//! RFC 5322 address lists as ENVELOPE shows them (RFC 3501 7.4.2): each address as
//! (name adl mailbox host), groups as a start marker `(NIL NIL "group" NIL)`, their
//! members and an end marker `(NIL NIL NIL NIL)`, source routes in the adl field.
//!
//! Parsed from the raw header value rather than from `mail-parser`'s decoded form,
//! which folds a group's comment into an address and a route into the mailbox name;
//! names stay as written (encoded words included), like Dovecot.

/// One element of an ENVELOPE address list; a group marker has `host: None`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Addr {
    pub name: Option<Vec<u8>>,
    pub adl: Option<Vec<u8>>,
    pub mailbox: Option<Vec<u8>>,
    pub host: Option<Vec<u8>>,
}

/// What a missing local part or domain is shown as (never NIL: a NIL host would
/// make the address read as a group marker).
const MISSING_MAILBOX: &[u8] = b"MISSING_MAILBOX";
const MISSING_DOMAIN: &[u8] = b"MISSING_DOMAIN";

/// Addresses (at most this many) kept from one header field.
const MAX_ADDRESSES: usize = 10_000;

struct Cursor<'a> {
    s: &'a [u8],
    pos: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    /// Skips white space and comments; returns the text of the last comment.
    fn cfws(&mut self) -> Option<Vec<u8>> {
        let mut comment = None;
        loop {
            match self.peek() {
                Some(b' ' | b'\t' | b'\r' | b'\n') => self.pos += 1,
                Some(b'(') => comment = Some(self.comment()),
                _ => return comment,
            }
        }
    }

    /// A comment (nesting and escapes allowed), the cursor on its `(`.
    fn comment(&mut self) -> Vec<u8> {
        let mut depth = 0usize;
        let mut text = Vec::new();
        while let Some(b) = self.peek() {
            self.pos += 1;
            match b {
                b'(' => {
                    if depth > 0 {
                        text.push(b);
                    }
                    depth += 1;
                }
                b')' => {
                    depth -= 1;
                    if depth == 0 {
                        break;
                    }
                    text.push(b);
                }
                b'\\' => {
                    if let Some(next) = self.peek() {
                        text.push(next);
                        self.pos += 1;
                    }
                }
                _ => text.push(b),
            }
        }
        text
    }

    /// A quoted string, the cursor on its opening quote; its content unescaped.
    fn quoted(&mut self) -> Vec<u8> {
        self.pos += 1;
        let mut text = Vec::new();
        while let Some(b) = self.peek() {
            self.pos += 1;
            match b {
                b'"' => break,
                b'\\' => {
                    if let Some(next) = self.peek() {
                        text.push(next);
                        self.pos += 1;
                    }
                }
                _ => text.push(b),
            }
        }
        text
    }

    /// An atom (anything up to a special or white space), possibly empty.
    fn atom(&mut self) -> Vec<u8> {
        let start = self.pos;
        while let Some(b) = self.peek() {
            if b" \t\r\n()<>[]:;@\\,.\"".contains(&b) {
                break;
            }
            self.pos += 1;
        }
        self.s[start..self.pos].to_vec()
    }

    /// A word: a quoted string or an atom.
    fn word(&mut self) -> Option<Vec<u8>> {
        match self.peek() {
            Some(b'"') => Some(self.quoted()),
            _ => {
                let a = self.atom();
                (!a.is_empty()).then_some(a)
            }
        }
    }

    /// Words and dots up to `<`, `:`, `,`, `;`, `@` or the end, as a phrase (words
    /// separated by one space) and as a dot-atom (`a.b`), with the last comment seen.
    fn phrase(&mut self) -> (Vec<u8>, Vec<u8>, Option<Vec<u8>>) {
        let (mut phrase, mut dotted) = (Vec::new(), Vec::new());
        let mut comment = None;
        loop {
            if let Some(c) = self.cfws() {
                comment = Some(c);
            }
            match self.peek() {
                None | Some(b'<' | b':' | b',' | b';' | b'@' | b'>') => break,
                Some(b'.') => {
                    self.pos += 1;
                    phrase.push(b'.');
                    dotted.push(b'.');
                }
                Some(b'[' | b']' | b')' | b'\\') => self.pos += 1,
                Some(_) => {
                    let Some(w) = self.word() else {
                        self.pos += 1;
                        continue;
                    };
                    if !phrase.is_empty() && phrase.last() != Some(&b'.') {
                        phrase.push(b' ');
                    }
                    phrase.extend_from_slice(&w);
                    dotted.extend_from_slice(&w);
                }
            }
        }
        (phrase, dotted, comment)
    }

    /// A domain after `@`: dot-atoms or a domain literal; comments skipped, the last
    /// one returned.
    fn domain(&mut self) -> (Vec<u8>, Option<Vec<u8>>) {
        let mut out = Vec::new();
        let mut comment = None;
        loop {
            if let Some(c) = self.cfws() {
                comment = Some(c);
            }
            match self.peek() {
                Some(b'[') => {
                    let start = self.pos;
                    while let Some(b) = self.peek() {
                        self.pos += 1;
                        if b == b']' {
                            break;
                        }
                    }
                    out.extend_from_slice(&self.s[start..self.pos]);
                }
                Some(b'.') => {
                    self.pos += 1;
                    out.push(b'.');
                }
                _ => {
                    let a = self.atom();
                    if a.is_empty() {
                        return (out, comment);
                    }
                    out.extend_from_slice(&a);
                }
            }
        }
    }

    /// The inside of `<...>`, the cursor after `<`: an optional route, then addr-spec.
    fn angle_addr(&mut self, name: Option<Vec<u8>>) -> Addr {
        self.cfws();
        let mut adl = None;
        if self.peek() == Some(b'@') {
            let start = self.pos;
            while let Some(b) = self.peek() {
                if b == b':' || b == b'>' {
                    break;
                }
                self.pos += 1;
            }
            let route: Vec<u8> = self.s[start..self.pos]
                .iter()
                .copied()
                .filter(|b| !b.is_ascii_whitespace())
                .collect();
            if self.peek() == Some(b':') {
                self.pos += 1;
                adl = Some(route);
            }
        }
        let (_, local, _) = self.phrase();
        let host = if self.peek() == Some(b'@') {
            self.pos += 1;
            self.domain().0
        } else {
            Vec::new()
        };
        self.cfws();
        // Anything up to the closing bracket is dropped.
        while let Some(b) = self.peek() {
            self.pos += 1;
            if b == b'>' {
                break;
            }
        }
        Addr {
            name,
            adl,
            mailbox: Some(nonempty(local, MISSING_MAILBOX)),
            host: Some(nonempty(host, MISSING_DOMAIN)),
        }
    }

    /// One mailbox (name-addr or addr-spec), or nothing if only separators remain.
    fn mailbox(&mut self) -> Option<Addr> {
        let (phrase, dotted, comment) = self.phrase();
        match self.peek() {
            Some(b'<') => {
                self.pos += 1;
                let name = (!phrase.is_empty()).then_some(phrase);
                let addr = self.angle_addr(name);
                self.cfws();
                Some(addr)
            }
            Some(b'@') => {
                self.pos += 1;
                let (host, trailing) = self.domain();
                // `user@domain (Real Name)`: the trailing comment is the name.
                let name = self.cfws().or(trailing).or(comment);
                Some(Addr {
                    name,
                    adl: None,
                    mailbox: Some(nonempty(dotted, MISSING_MAILBOX)),
                    host: Some(nonempty(host, MISSING_DOMAIN)),
                })
            }
            _ if dotted.is_empty() => None,
            _ => Some(Addr {
                name: comment,
                adl: None,
                mailbox: Some(dotted),
                host: Some(MISSING_DOMAIN.to_vec()),
            }),
        }
    }
}

fn nonempty(v: Vec<u8>, missing: &[u8]) -> Vec<u8> {
    if v.is_empty() { missing.to_vec() } else { v }
}

/// The addresses of a header field's raw (unfolded) value, groups with their markers.
pub(crate) fn parse(value: &[u8]) -> Vec<Addr> {
    let mut c = Cursor { s: value, pos: 0 };
    let mut out = Vec::new();
    let mut in_group = false;
    while c.pos < value.len() && out.len() < MAX_ADDRESSES {
        let start = c.pos;
        c.cfws();
        match c.peek() {
            None => break,
            Some(b',') => {
                c.pos += 1;
                continue;
            }
            Some(b';') => {
                c.pos += 1;
                if in_group {
                    out.push(Addr::default());
                    in_group = false;
                }
                continue;
            }
            _ => {}
        }
        let mark = c.pos;
        let (phrase, _, _) = c.phrase();
        if c.peek() == Some(b':') && !in_group {
            c.pos += 1;
            out.push(Addr {
                mailbox: Some(phrase),
                ..Addr::default()
            });
            in_group = true;
            continue;
        }
        c.pos = mark;
        if let Some(a) = c.mailbox() {
            out.push(a);
        }
        // Stray specials: skip one byte so the loop always advances.
        if c.pos == start || matches!(c.peek(), Some(b'>' | b':')) {
            c.pos += 1;
        }
    }
    if in_group {
        out.push(Addr::default());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(name: Option<&str>, adl: Option<&str>, mailbox: Option<&str>, host: Option<&str>) -> Addr {
        let b = |s: Option<&str>| s.map(|s| s.as_bytes().to_vec());
        Addr {
            name: b(name),
            adl: b(adl),
            mailbox: b(mailbox),
            host: b(host),
        }
    }

    #[test]
    fn plain_and_named() {
        assert_eq!(
            parse(b"From Real <fromuser@fromdomain.org>"),
            vec![a(
                Some("From Real"),
                None,
                Some("fromuser"),
                Some("fromdomain.org")
            )]
        );
        assert_eq!(
            parse(b"\"Per conto di: mario@pec.it\" <posta-certificata@pec.it>"),
            vec![a(
                Some("Per conto di: mario@pec.it"),
                None,
                Some("posta-certificata"),
                Some("pec.it")
            )]
        );
        assert_eq!(
            parse(b"user@domain (Real Name)"),
            vec![a(Some("Real Name"), None, Some("user"), Some("domain"))]
        );
        assert_eq!(
            parse(b"<user-from (comment)@ (comment) domain.org>"),
            vec![a(None, None, Some("user-from"), Some("domain.org"))]
        );
        assert_eq!(
            parse(b"a@b.it, =?utf-8?q?J=C3=BCrgen?= <j@c.it>"),
            vec![
                a(None, None, Some("a"), Some("b.it")),
                a(
                    Some("=?utf-8?q?J=C3=BCrgen?="),
                    None,
                    Some("j"),
                    Some("c.it")
                )
            ]
        );
        assert_eq!(parse(b""), vec![]);
        assert_eq!(parse(b"  "), vec![]);
    }

    #[test]
    fn groups_and_routes() {
        let start = |n: &str| a(None, None, Some(n), None);
        let end = Addr::default();
        assert_eq!(
            parse(b"group: g1@d1.org, g2@d2.org;, group2: g3@d3.org;"),
            vec![
                start("group"),
                a(None, None, Some("g1"), Some("d1.org")),
                a(None, None, Some("g2"), Some("d2.org")),
                end.clone(),
                start("group2"),
                a(None, None, Some("g3"), Some("d3.org")),
                end.clone(),
            ]
        );
        assert_eq!(
            parse(b"group:;, group2: (foo) ;"),
            vec![start("group"), end.clone(), start("group2"), end.clone()]
        );
        assert_eq!(
            parse(b"<@route:user@domain>"),
            vec![a(None, Some("@route"), Some("user"), Some("domain"))]
        );
        assert_eq!(
            parse(b"unterminated: x@y.it"),
            vec![
                start("unterminated"),
                a(None, None, Some("x"), Some("y.it")),
                end
            ]
        );
    }

    #[test]
    fn hostile_input_ends() {
        for input in [
            &b"<<<>>>:;;,,@@@"[..],
            b"(((unclosed",
            b"\"unclosed",
            b"a:b:c:d@e;;;",
            b"<@a,@b:c@d>",
            b"\\",
        ] {
            let _ = parse(input);
        }
    }
}
