//! The client's bytes, split into commands by `imap-codec`'s fragmentizer, with the
//! bounds a session keeps to: how long a line, a literal and a whole command may be.
//!
//! The fragmentizer alone bounds only the whole command, and only by dropping what is
//! over; here every bound is checked while the bytes arrive, so a client cannot make the
//! server buffer more than a line's worth of bytes it did not agree to take, and a
//! literal is judged on its announced size before the `+` that invites it.

use imap_codec::fragmentizer::{FragmentInfo, Fragmentizer, LiteralAnnouncement};
use imap_codec::imap_types::core::LiteralMode;

use crate::id_stream::{IdStream, Outcome, id_prefix};

/// The bounds of the current session state.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Bounds {
    /// Longest line (the bytes between two literals, or a whole command without one).
    pub line: usize,
    /// Largest literal.
    pub literal: u32,
    /// Largest command, lines and literals together.
    pub command: usize,
    /// An ID over these bounds is read as a stream (see [`crate::id_stream`]) instead
    /// of ending the session: before login, where the bounds are small.
    pub stream_id: bool,
}

/// What the session does next.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Next {
    /// More bytes are needed: read from the client, then call [`Input::feed`].
    Read,
    /// A whole command is buffered: decode it with [`Input::fragmentizer`].
    Command,
    /// The client announced a literal within bounds; a synchronising one waits for `+`.
    Literal(LiteralMode),
    /// The client announced a synchronising literal over the bound: refuse the command
    /// (tagged `NO [TOOBIG]`) and call [`Input::skip`]; the client does not send it.
    SyncLiteralTooLarge,
    /// A bound was broken where the input cannot be resynchronised (an over-long line, a
    /// non-synchronising literal over the bound that is coming anyway): say why in a BYE
    /// and close.
    Overflow(&'static str),
    /// An ID too long for the bounds was read as a stream and has ended: answer it.
    Id {
        /// The command's tag.
        tag: Vec<u8>,
        /// How it ended.
        outcome: Outcome,
    },
}

/// The input side of a session.
pub(crate) struct Input {
    frag: Fragmentizer,
    /// Where the line being received starts in the command's buffer.
    line_start: usize,
    /// Whether the bytes arriving belong to an accepted literal.
    in_literal: bool,
    /// An ID being read as a stream, with its tag: bytes go to it until it ends.
    id: Option<(Vec<u8>, IdStream)>,
}

impl Input {
    /// An input whose commands never exceed `largest` bytes in memory, whatever the
    /// bounds passed later (they must be within it).
    pub(crate) fn new(largest: usize) -> Self {
        Input {
            frag: Fragmentizer::new(u32::try_from(largest).unwrap_or(u32::MAX)),
            line_start: 0,
            in_literal: false,
            id: None,
        }
    }

    /// Adds bytes read from the client.
    pub(crate) fn feed(&mut self, bytes: &[u8]) {
        let used = match self.id.as_mut() {
            Some((_, stream)) if !stream.ended() => stream.feed(bytes),
            _ => 0,
        };
        self.frag.enqueue_bytes(&bytes[used..]);
    }

    /// The fragmentizer, to decode the command just completed.
    pub(crate) fn fragmentizer(&self) -> &Fragmentizer {
        &self.frag
    }

    /// Forgets the command being received (after a refused synchronising literal).
    pub(crate) fn skip(&mut self) {
        self.frag.skip_message();
        self.line_start = 0;
        self.in_literal = false;
    }

    /// Forgets everything buffered, unread bytes included (after STARTTLS: what came
    /// before the handshake must not be executed after it).
    pub(crate) fn reset(&mut self, largest: usize) {
        *self = Input::new(largest);
    }

    /// Advances over the buffered bytes until something must be done.
    pub(crate) fn next(&mut self, bounds: &Bounds) -> Next {
        if let Some((tag, stream)) = self.id.as_mut() {
            return match stream.outcome() {
                Some(outcome) => {
                    let tag = std::mem::take(tag);
                    self.id = None;
                    Next::Id { tag, outcome }
                }
                None => Next::Read,
            };
        }
        loop {
            let Some(info) = self.frag.progress() else {
                let buffered = self.frag.message_bytes().len();
                let first_line = !self.in_literal && self.line_start == 0;
                if buffered > bounds.command {
                    return self.overflow(bounds, first_line, "Command too long");
                }
                if !self.in_literal && buffered.saturating_sub(self.line_start) > bounds.line {
                    return self.overflow(bounds, first_line, "Line too long");
                }
                return Next::Read;
            };
            match info {
                FragmentInfo::Line {
                    start,
                    end,
                    announcement,
                    ..
                } => {
                    self.line_start = end;
                    let buffered = self.frag.message_bytes().len();
                    let whole = start == 0 && announcement.is_none();
                    if end - start > bounds.line {
                        return self.overflow(bounds, whole, "Line too long");
                    }
                    if buffered > bounds.command {
                        return self.overflow(bounds, whole, "Command too long");
                    }
                    let Some(LiteralAnnouncement { mode, length }) = announcement else {
                        // The command is complete; the next one starts a new buffer.
                        self.line_start = 0;
                        return Next::Command;
                    };
                    let fits = length <= bounds.literal
                        && buffered.saturating_add(length as usize) <= bounds.command;
                    return match (fits, mode) {
                        (true, _) => {
                            self.in_literal = true;
                            Next::Literal(mode)
                        }
                        (false, LiteralMode::Sync) => Next::SyncLiteralTooLarge,
                        (false, LiteralMode::NonSync) => Next::Overflow("Literal too large"),
                    };
                }
                FragmentInfo::Literal { end, .. } => {
                    self.in_literal = false;
                    self.line_start = end;
                }
            }
        }
    }
}

impl Input {
    /// A bound was broken by the command being received (`first_line`: in its first
    /// line, no literal before): an ID is then read on as a stream if the bounds allow
    /// it, anything else ends the session.
    fn overflow(&mut self, bounds: &Bounds, first_line: bool, why: &'static str) -> Next {
        let prefix =
            id_prefix(self.frag.message_bytes()).filter(|_| bounds.stream_id && first_line);
        let Some(prefix) = prefix else {
            return Next::Overflow(why);
        };
        let received = self.frag.message_bytes();
        let tag = received[..prefix - 4].to_vec();
        let mut stream = IdStream::new(prefix);
        stream.feed(&received[prefix..]);
        // The fragmentizer holds nothing past the line's end (an unfinished line is
        // taken whole, a finished one ends the message): it starts afresh.
        self.frag.skip_message();
        self.line_start = 0;
        self.id = Some((tag, stream));
        self.next(bounds)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const B: Bounds = Bounds {
        line: 100,
        literal: 50,
        command: 200,
        stream_id: false,
    };

    fn run(input: &mut Input, bytes: &[u8]) -> Next {
        input.feed(bytes);
        input.next(&B)
    }

    #[test]
    fn commands_and_literals_within_bounds() {
        let mut i = Input::new(1000);
        assert_eq!(run(&mut i, b"a1 NOOP\r\n"), Next::Command);
        assert_eq!(
            run(&mut i, b"a2 LOGIN {3}\r\n"),
            Next::Literal(LiteralMode::Sync)
        );
        assert_eq!(run(&mut i, b"abc"), Next::Read);
        assert_eq!(run(&mut i, b" x\r\n"), Next::Command);
        assert_eq!(
            i.fragmentizer().message_bytes(),
            b"a2 LOGIN {3}\r\nabc x\r\n"
        );
    }

    #[test]
    fn an_endless_line_is_cut_at_the_bound() {
        let mut i = Input::new(1000);
        assert_eq!(run(&mut i, &[b'a'; 60]), Next::Read);
        assert_eq!(run(&mut i, &[b'a'; 60]), Next::Overflow("Line too long"));
        let mut i = Input::new(1000);
        let mut long = vec![b'a'; 150];
        long.extend_from_slice(b"\r\n");
        assert_eq!(run(&mut i, &long), Next::Overflow("Line too long"));
    }

    #[test]
    fn literals_over_the_bound_are_refused_before_they_come() {
        let mut i = Input::new(1000);
        assert_eq!(
            run(&mut i, b"a1 APPEND INBOX {51}\r\n"),
            Next::SyncLiteralTooLarge
        );
        i.skip();
        assert_eq!(run(&mut i, b"a2 NOOP\r\n"), Next::Command);
        assert_eq!(
            run(&mut i, b"a3 APPEND INBOX {51+}\r\n"),
            Next::Overflow("Literal too large")
        );
        // Each literal within its bound, but lines and literals together over the
        // command bound (11 + 50 + 7 + 50 + 7 buffered, then 50 more > 150).
        let b = Bounds { command: 150, ..B };
        let mut i = Input::new(1000);
        let mut step = |bytes: &[u8]| {
            i.feed(bytes);
            i.next(&b)
        };
        assert_eq!(step(b"a1 X {50}\r\n"), Next::Literal(LiteralMode::Sync));
        assert_eq!(step(&[b'x'; 50]), Next::Read);
        assert_eq!(step(b" {50}\r\n"), Next::Literal(LiteralMode::Sync));
        assert_eq!(step(&[b'x'; 50]), Next::Read);
        assert_eq!(step(b" {50}\r\n"), Next::SyncLiteralTooLarge);
    }

    #[test]
    fn literal_bytes_do_not_count_as_a_line() {
        let mut i = Input::new(1000);
        assert_eq!(
            run(&mut i, b"a1 APPEND INBOX {50}\r\n"),
            Next::Literal(LiteralMode::Sync)
        );
        // 50 literal bytes with no line end, then the end of the command.
        assert_eq!(run(&mut i, &[b'x'; 50]), Next::Read);
        assert_eq!(run(&mut i, b"\r\n"), Next::Command);
    }

    #[test]
    fn a_long_id_is_streamed_and_the_next_command_follows() {
        let b = Bounds {
            stream_id: true,
            ..B
        };
        let value = "x".repeat(900);
        let id = format!("t1 ID (\"name\" \"{value}\")\r\nt2 NOOP\r\n");
        for chunk in [7, 64, 4096] {
            let mut i = Input::new(1000);
            let mut fed = 0;
            let mut ended = None;
            while ended.is_none() && fed < id.len() {
                let piece = &id.as_bytes()[fed..(fed + chunk).min(id.len())];
                fed += piece.len();
                i.feed(piece);
                match i.next(&b) {
                    Next::Read => {}
                    Next::Id { tag, outcome } => {
                        assert_eq!(tag, b"t1");
                        ended = Some(outcome);
                    }
                    other => panic!("unexpected {other:?}"),
                }
            }
            let Some(Outcome::Fields(fields)) = ended else {
                panic!("the ID ends with fields");
            };
            assert_eq!(fields[0].1.as_deref(), Some(value.as_bytes()));
            // Whatever comes past the ID is the next command.
            i.feed(&id.as_bytes()[fed..]);
            assert_eq!(i.next(&b), Next::Command, "chunk {chunk}");
            assert_eq!(i.fragmentizer().message_bytes(), b"t2 NOOP\r\n");
        }
        // Not an ID, or streaming not allowed: the bound ends the session.
        let mut i = Input::new(1000);
        let noop = run(&mut i, format!("t1 NOOP {value}").as_bytes());
        assert!(matches!(noop, Next::Overflow(_)), "{noop:?}");
        let mut i = Input::new(1000);
        i.feed(id.as_bytes());
        let refused = i.next(&B);
        assert!(matches!(refused, Next::Overflow(_)), "{refused:?}");
    }
}
