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

use crate::scan::Scanner;

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
    let mut p = Scanner::new(message);
    p.word()?;
    if !p.eat(b' ') || !p.keyword(b"LIST") || !p.eat(b' ') {
        return None;
    }
    Some(list(&mut p))
}

/// The arguments of an extended LIST, after `tag LIST `.
fn list(p: &mut Scanner<'_>) -> Result<ListOptions, Refusal> {
    const SYNTAX: Refusal = "Syntax error in LIST";
    let mut o = ListOptions::default();
    if p.peek() == Some(b'(') {
        for opt in p.option_list().ok_or(SYNTAX)? {
            match opt.as_slice() {
                b"SUBSCRIBED" => o.subscribed = true,
                b"SPECIAL-USE" => o.special_use = true,
                b"RECURSIVEMATCH" => o.recursive_match = true,
                // Remote mailboxes: there are none, nothing to add.
                b"REMOTE" => {}
                _ => return Err("Unknown LIST selection option"),
            }
        }
        if !p.eat(b' ') {
            return Err(SYNTAX);
        }
    }
    if o.recursive_match && !o.subscribed && !o.special_use {
        return Err("RECURSIVEMATCH needs another selection option");
    }
    o.reference = p.string().ok_or(SYNTAX)?;
    if !p.eat(b' ') {
        return Err(SYNTAX);
    }
    if p.eat(b'(') {
        loop {
            o.patterns.push(p.string().ok_or(SYNTAX)?);
            if p.eat(b')') {
                break;
            }
            if !p.eat(b' ') {
                return Err(SYNTAX);
            }
        }
    } else {
        o.patterns.push(p.string().ok_or(SYNTAX)?);
    }
    if p.eat(b' ') {
        if !p.keyword(b"RETURN") || !p.eat(b' ') {
            return Err(SYNTAX);
        }
        for opt in p.option_list().ok_or(SYNTAX)? {
            match opt.as_slice() {
                b"SUBSCRIBED" => o.return_subscribed = true,
                // Children and special-use attributes are always returned.
                b"CHILDREN" | b"SPECIAL-USE" => {}
                _ => return Err("Unsupported LIST return option"),
            }
        }
    }
    if !p.at_end() {
        return Err(SYNTAX);
    }
    Ok(o)
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
