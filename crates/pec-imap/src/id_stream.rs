//! An ID command (RFC 2971) read as a stream, for the one case where a client may send
//! more before login than the pre-login bound lets a command hold: imaptest, and some
//! real clients, send IDs of tens of KB. The bytes are not buffered: the parser keeps
//! at most [`MAX_PAIRS`] field/value pairs of at most [`MAX_FIELD`] bytes each (longer
//! ones are cut), and the whole command may not be longer than [`MAX_TOTAL`].
//!
//! ```abnf
//! id        = "ID" SP id-params CRLF
//! id-params = "(" [string SP nstring *(SP string SP nstring)] ")" / "NIL"
//! ```
//!
//! Only quoted strings are read here: a literal in a streamed ID cannot be accepted
//! (the command's line is already over the bound), so the command is refused at its
//! line's end, and the session is closed if the client was going to send the literal
//! anyway (a non-synchronising one).

/// Most field/value pairs kept (RFC 2971 allows 30).
pub(crate) const MAX_PAIRS: usize = 30;

/// Longest field or value kept, in bytes (RFC 2971 says 1024).
pub(crate) const MAX_FIELD: usize = 1024;

/// Longest ID command read, tag and line end included.
pub(crate) const MAX_TOTAL: usize = 64 * 1024;

/// The pairs an ID sent: field, value (`None` for NIL).
pub(crate) type Fields = Vec<(Vec<u8>, Option<Vec<u8>>)>;

/// The end of a streamed ID.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// The ID was well-formed: reply to it.
    Fields(Fields),
    /// It was malformed: refuse it (tagged BAD); the input is in step again.
    Malformed,
    /// It cannot be resynchronised (a non-synchronising literal follows) or is over
    /// [`MAX_TOTAL`]: close the session.
    Unrecoverable,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Before `(` or `NIL`.
    Params,
    /// Inside `NIL` (how many letters matched) after `ID `, or as a value.
    Nil { matched: u8, value: bool },
    /// Where a field may start, or `)` (`first`: right after `(`).
    Field { first: bool },
    /// After a field, before its value.
    Space,
    /// Where a value starts.
    Value,
    /// Inside a quoted string (`value`: it is a value), after a backslash if `escaped`.
    Quoted { value: bool, escaped: bool },
    /// After a value: `SP` or `)`.
    AfterValue,
    /// After the parameters: CRLF.
    End,
    /// Malformed: skipping to the line's end.
    Skip,
}

/// A streamed ID after its `tag ID ` prefix.
#[derive(Debug)]
pub(crate) struct IdStream {
    state: State,
    total: usize,
    fields: Fields,
    /// The field whose value comes next.
    field: Vec<u8>,
    /// The string being read.
    current: Vec<u8>,
    /// The last two bytes before a CR, to see a `{n+}` at the line's end.
    tail: [u8; 2],
    outcome: Option<Outcome>,
}

/// The length of `tag ID ` at the start of `message`, if it starts with an ID command.
pub(crate) fn id_prefix(message: &[u8]) -> Option<usize> {
    let space = message.iter().position(|&b| b == b' ')?;
    let tag = &message[..space];
    let tag_ok = !tag.is_empty()
        && tag.iter().all(|&b| {
            b.is_ascii_graphic()
                && !matches!(b, b'(' | b')' | b'{' | b'"' | b'\\' | b'%' | b'*' | b'+')
        });
    let rest = message.get(space + 1..space + 4)?;
    (tag_ok && rest.eq_ignore_ascii_case(b"ID ")).then_some(space + 4)
}

impl IdStream {
    /// A stream that has read `prefix` bytes (the tag and `ID `).
    pub(crate) fn new(prefix: usize) -> Self {
        IdStream {
            state: State::Params,
            total: prefix,
            fields: Vec::new(),
            field: Vec::new(),
            current: Vec::new(),
            tail: [0; 2],
            outcome: None,
        }
    }

    /// Reads bytes of the command; returns how many belong to it (the rest is the
    /// next command's). After the command's end, reads nothing.
    pub(crate) fn feed(&mut self, bytes: &[u8]) -> usize {
        for (i, &b) in bytes.iter().enumerate() {
            if self.outcome.is_some() {
                return i;
            }
            if self.total == MAX_TOTAL {
                self.outcome = Some(Outcome::Unrecoverable);
                return i;
            }
            self.total += 1;
            self.byte(b);
        }
        bytes.len()
    }

    /// How the command ended, once it has (taken once).
    pub(crate) fn outcome(&mut self) -> Option<Outcome> {
        self.outcome.take()
    }

    /// Whether the command has ended and its outcome is waiting.
    pub(crate) fn ended(&self) -> bool {
        self.outcome.is_some()
    }

    fn byte(&mut self, b: u8) {
        if b == b'\n' {
            self.line_end();
            return;
        }
        if b != b'\r' {
            self.tail = [self.tail[1], b];
        }
        self.state = match (self.state, b) {
            (State::Skip, _) => State::Skip,
            (State::Params, b'(') => State::Field { first: true },
            (State::Params, b'N' | b'n') => State::Nil {
                matched: 1,
                value: false,
            },
            (State::Nil { matched, value }, c)
                if c.eq_ignore_ascii_case(&b"NIL"[matched as usize]) =>
            {
                match (matched, value) {
                    (2, false) => State::End,
                    (2, true) => {
                        self.push_value(None);
                        State::AfterValue
                    }
                    _ => State::Nil {
                        matched: matched + 1,
                        value,
                    },
                }
            }
            (State::Field { first: true }, b')') => State::End,
            (State::Field { .. }, b'"') => State::Quoted {
                value: false,
                escaped: false,
            },
            (State::Space, b' ') => State::Value,
            (State::Value, b'"') => State::Quoted {
                value: true,
                escaped: false,
            },
            (State::Value, b'N' | b'n') => State::Nil {
                matched: 1,
                value: true,
            },
            (
                State::Quoted {
                    value,
                    escaped: false,
                },
                b'\\',
            ) => State::Quoted {
                value,
                escaped: true,
            },
            (
                State::Quoted {
                    value,
                    escaped: false,
                },
                b'"',
            ) => {
                let text = std::mem::take(&mut self.current);
                if value {
                    self.push_value(Some(text));
                    State::AfterValue
                } else {
                    self.field = text;
                    State::Space
                }
            }
            (State::Quoted { escaped: true, .. }, c) if c != b'"' && c != b'\\' => State::Skip,
            (State::Quoted { value, .. }, c) if c != b'\r' && c != 0 => {
                if self.current.len() < MAX_FIELD {
                    self.current.push(c);
                }
                State::Quoted {
                    value,
                    escaped: false,
                }
            }
            (State::AfterValue, b' ') => State::Field { first: false },
            (State::AfterValue, b')') => State::End,
            (State::End, b'\r') => State::End,
            _ => State::Skip,
        };
    }

    /// Records a pair: the field read last, and `value`.
    fn push_value(&mut self, value: Option<Vec<u8>>) {
        let field = std::mem::take(&mut self.field);
        if self.fields.len() < MAX_PAIRS {
            self.fields.push((field, value));
        }
    }

    fn line_end(&mut self) {
        let outcome = match self.state {
            State::End => Outcome::Fields(std::mem::take(&mut self.fields)),
            // `{n+}` ends the line: the literal comes whatever the answer.
            _ if self.tail == *b"+}" => Outcome::Unrecoverable,
            _ => Outcome::Malformed,
        };
        self.outcome = Some(outcome);
    }
}

/// Reads `data` (what follows `tag ID `) whole and in pieces of `chunk` bytes, and
/// panics if the two readings differ or a bound is broken: the invariants the fuzz
/// target and the property test check on hostile input.
pub(crate) fn check(data: &[u8], chunk: usize) {
    let read = |piece: usize| {
        let mut s = IdStream::new(0);
        let mut used = 0;
        for bytes in data.chunks(piece.max(1)) {
            used += s.feed(bytes);
            if s.ended() {
                break;
            }
        }
        assert!(used <= data.len() && used <= MAX_TOTAL);
        assert!(s.fields.len() <= MAX_PAIRS && s.current.len() <= MAX_FIELD);
        (s.outcome(), used)
    };
    let whole = read(data.len());
    if let (Some(Outcome::Fields(fields)), _) = &whole {
        assert!(fields.len() <= MAX_PAIRS);
        assert!(fields.iter().all(|(k, v)| {
            k.len() <= MAX_FIELD && v.as_ref().is_none_or(|v| v.len() <= MAX_FIELD)
        }));
    }
    assert_eq!(whole, read(chunk), "chunks of {chunk}");
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn hostile_input_is_bounded_and_read_alike_in_any_pieces(
            data in proptest::collection::vec(
                prop_oneof![
                    Just(b'"'), Just(b'\\'), Just(b'('), Just(b')'), Just(b' '), Just(b'\r'),
                    Just(b'\n'), Just(b'N'), Just(b'I'), Just(b'L'), Just(b'{'), Just(b'+'),
                    Just(b'}'), any::<u8>()
                ],
                0..2000,
            ),
            chunk in 1usize..64,
        ) {
            check(&data, chunk);
        }
    }

    #[test]
    fn long_hostile_inputs() {
        let quoted = [b"(\"".as_slice(), &[b'a'; 100_000]].concat();
        check(&quoted, 4096);
        let pairs = "\"k\" NIL ".repeat(10_000);
        check(format!("({pairs}").as_bytes(), 17);
        check(&[b'\\'; 70_000], 1000);
    }

    fn run(command: &[u8]) -> (Option<Outcome>, usize) {
        let prefix = id_prefix(command).unwrap();
        let mut s = IdStream::new(prefix);
        let used = s.feed(&command[prefix..]);
        (s.outcome(), prefix + used)
    }

    #[test]
    fn pairs_and_nil() {
        let cmd = b"a1 id (\"name\" \"x \\\"y\\\"\" \"version\" NIL)\r\nNEXT";
        let (outcome, used) = run(cmd);
        assert_eq!(used, cmd.len() - 4);
        assert_eq!(
            outcome,
            Some(Outcome::Fields(vec![
                (b"name".to_vec(), Some(b"x \"y\"".to_vec())),
                (b"version".to_vec(), None)
            ]))
        );
        assert_eq!(run(b"a ID NIL\r\n").0, Some(Outcome::Fields(vec![])));
        assert_eq!(run(b"a ID ()\r\n").0, Some(Outcome::Fields(vec![])));
        assert_eq!(id_prefix(b"a IDLE\r\n"), None);
        assert_eq!(id_prefix(b"a NOOP"), None);
    }

    #[test]
    fn malformed_ids_are_refused_at_the_line_end() {
        for bad in [
            &b"a ID (\"x\")\r\n"[..],
            b"a ID (\"x\" \"y\" \"z\")\r\n",
            b"a ID (\"x\" \"y\") junk\r\n",
            b"a ID NIX\r\n",
            b"a ID (\"x\" {3}\r\n",
            b"a ID (\"x\r\n",
        ] {
            assert_eq!(
                run(bad).0,
                Some(Outcome::Malformed),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        assert_eq!(run(b"a ID (\"x\" {3+}\r\n").0, Some(Outcome::Unrecoverable));
    }

    #[test]
    fn bounded_pairs_fields_and_total() {
        let long = "v".repeat(5000);
        let pairs: Vec<String> = (0..40).map(|i| format!("\"k{i}\" \"{long}\"")).collect();
        let cmd = format!("a ID ({})\r\n", pairs.join(" "));
        assert!(cmd.len() > MAX_TOTAL);
        assert_eq!(run(cmd.as_bytes()).0, Some(Outcome::Unrecoverable));
        let pairs: Vec<String> = (0..40)
            .map(|i| format!("\"k{i}\" \"{}\"", &long[..1200]))
            .collect();
        let cmd = format!("a ID ({})\r\n", pairs.join(" "));
        let Some(Outcome::Fields(fields)) = run(cmd.as_bytes()).0 else {
            panic!("a long but bounded ID is answered");
        };
        assert_eq!(fields.len(), MAX_PAIRS);
        assert!(
            fields
                .iter()
                .all(|(_, v)| v.as_ref().unwrap().len() == MAX_FIELD)
        );
    }
}
