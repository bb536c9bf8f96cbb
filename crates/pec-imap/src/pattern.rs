//! LIST/LSUB mailbox patterns (RFC 3501 6.3.8): `*` matches anything, `%` anything but
//! the hierarchy delimiter.
//!
//! A pattern comes from the client, so matching must cost the same whatever it holds: it
//! is compiled once into a bit-parallel automaton (one bit per pattern position) and
//! each name is matched in one pass over its bytes. A backtracking matcher takes time
//! exponential in the number of `*` (25 bytes of `*************Z` took ~20 s of CPU).

/// The hierarchy delimiter of every folder name.
const DELIMITER: u8 = b'/';

/// Longest pattern accepted, after runs of wildcards are merged; folder names are at
/// most 255 bytes, so a longer pattern can only be an attack.
pub(crate) const MAX_PATTERN: usize = 1024;

/// One element of a compiled pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token {
    Byte(u8),
    /// `*`: any bytes.
    Any,
    /// `%`: any bytes but the delimiter.
    AnyInLevel,
}

/// A set of automaton states: bit `i` set means "the first `i` tokens matched".
#[derive(Clone, PartialEq, Eq)]
struct States(Vec<u64>);

impl States {
    fn empty(bits: usize) -> Self {
        States(vec![0; bits.div_ceil(64)])
    }

    fn set(&mut self, i: usize) {
        if let Some(w) = self.0.get_mut(i / 64) {
            *w |= 1 << (i % 64);
        }
    }

    fn get(&self, i: usize) -> bool {
        self.0.get(i / 64).is_some_and(|w| w & (1 << (i % 64)) != 0)
    }

    fn is_empty(&self) -> bool {
        self.0.iter().all(|&w| w == 0)
    }

    /// `self & mask`, shifted up by one state.
    fn and_shifted(&self, mask: &States) -> States {
        let mut out = States(vec![0; self.0.len()]);
        let mut carry = 0;
        for (o, (s, m)) in out.0.iter_mut().zip(self.0.iter().zip(&mask.0)) {
            let w = s & m;
            *o = (w << 1) | carry;
            carry = w >> 63;
        }
        out
    }

    fn or_and(&mut self, a: &States, mask: &States) {
        for (o, (x, m)) in self.0.iter_mut().zip(a.0.iter().zip(&mask.0)) {
            *o |= x & m;
        }
    }

    fn or(&mut self, other: &States) {
        for (o, x) in self.0.iter_mut().zip(&other.0) {
            *o |= x;
        }
    }
}

/// A compiled mailbox pattern.
pub(crate) struct Pattern {
    /// Tokens; runs of wildcards are merged, so no two wildcards are adjacent.
    tokens: Vec<Token>,
    /// For each byte value, the positions whose token is that byte.
    byte_masks: Vec<States>,
    /// Positions holding `*`.
    any: States,
    /// Positions holding `%`.
    any_in_level: States,
}

/// Why a pattern was refused.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct TooLong;

impl Pattern {
    /// Compiles `pattern`; refused when longer than [`MAX_PATTERN`] once runs of
    /// wildcards are merged (`**` is `*`, `%*` is `*`, `%%` is `%`).
    pub(crate) fn new(pattern: &[u8]) -> Result<Self, TooLong> {
        let mut tokens: Vec<Token> = Vec::new();
        for &b in pattern {
            let t = match b {
                b'*' => Token::Any,
                b'%' => Token::AnyInLevel,
                other => Token::Byte(other),
            };
            match (tokens.last_mut(), t) {
                (Some(last @ (Token::Any | Token::AnyInLevel)), Token::Any) => *last = Token::Any,
                (Some(Token::Any | Token::AnyInLevel), Token::AnyInLevel) => {}
                _ => tokens.push(t),
            }
            if tokens.len() > MAX_PATTERN {
                return Err(TooLong);
            }
        }
        let bits = tokens.len() + 1;
        let mut byte_masks = vec![States::empty(bits); 256];
        let mut any = States::empty(bits);
        let mut any_in_level = States::empty(bits);
        for (i, t) in tokens.iter().enumerate() {
            match t {
                Token::Byte(b) => byte_masks[usize::from(*b)].set(i),
                Token::Any => any.set(i),
                Token::AnyInLevel => any_in_level.set(i),
            }
        }
        Ok(Pattern {
            tokens,
            byte_masks,
            any,
            any_in_level,
        })
    }

    /// States reachable without reading a byte: a wildcard may match nothing.
    fn closure(&self, mut s: States) -> States {
        // Wildcards are never adjacent, so one step reaches every such state.
        let mut wild = self.any.clone();
        wild.or(&self.any_in_level);
        let step = s.and_shifted(&wild);
        s.or(&step);
        s
    }

    /// Whether `name` matches, in time linear in its length.
    pub(crate) fn matches(&self, name: &[u8]) -> bool {
        let bits = self.tokens.len() + 1;
        let mut start = States::empty(bits);
        start.set(0);
        let mut states = self.closure(start);
        for &b in name {
            // A byte token advances; a wildcard stays where it is.
            let mut next = states.and_shifted(&self.byte_masks[usize::from(b)]);
            next.or_and(&states, &self.any);
            if b != DELIMITER {
                next.or_and(&states, &self.any_in_level);
            }
            states = self.closure(next);
            if states.is_empty() {
                return false;
            }
        }
        states.get(self.tokens.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The obvious backtracking matcher, as the reference on small inputs.
    fn reference(pattern: &[u8], name: &[u8]) -> bool {
        match pattern.split_first() {
            None => name.is_empty(),
            Some((b'*', rest)) => (0..=name.len()).any(|i| reference(rest, &name[i..])),
            Some((b'%', rest)) => (0..=name.len())
                .take_while(|&i| i == 0 || name[i - 1] != DELIMITER)
                .any(|i| reference(rest, &name[i..])),
            Some((c, rest)) => name.first() == Some(c) && reference(rest, &name[1..]),
        }
    }

    fn m(p: &str, n: &str) -> bool {
        Pattern::new(p.as_bytes()).unwrap().matches(n.as_bytes())
    }

    #[test]
    fn list_wildcards() {
        assert!(m("*", "Sent/2024"));
        assert!(!m("%", "Sent/2024"));
        assert!(m("%", "Sent"));
        assert!(m("Sent/%", "Sent/2024"));
        assert!(m("S*t", "Sent"));
        assert!(!m("Tr", "Trash"));
        assert!(m("", ""));
        assert!(!m("", "x"));
        assert!(m("%/%", "a/b") && !m("%/%", "a/b/c") && m("*/%", "a/b/c"));
        assert!(m("%*", "a/b"), "%* is *");
    }

    #[test]
    fn hostile_patterns_are_cheap() {
        // ~20 s of CPU with the backtracking matcher; one pass now.
        let p = Pattern::new(b"*************Z").unwrap();
        assert!(!p.matches(&[b'a'; 255]));
        let stars = "*a".repeat(500);
        let p = Pattern::new(stars.as_bytes()).unwrap();
        assert!(!p.matches(&[b'a'; 255]));
        assert!(Pattern::new(&[b'*'; 100_000]).is_ok(), "runs of * merge");
        assert_eq!(
            Pattern::new("ab".repeat(MAX_PATTERN).as_bytes()).err(),
            Some(TooLong)
        );
    }

    proptest! {
        #[test]
        fn same_answers_as_backtracking(
            pattern in proptest::collection::vec(prop_oneof![Just(b'*'), Just(b'%'), Just(b'/'), Just(b'a'), Just(b'b')], 0..12),
            name in proptest::collection::vec(prop_oneof![Just(b'/'), Just(b'a'), Just(b'b')], 0..12),
        ) {
            let compiled = Pattern::new(&pattern).unwrap();
            prop_assert_eq!(compiled.matches(&name), reference(&pattern, &name));
        }

        #[test]
        fn long_patterns_across_words(
            pattern in proptest::collection::vec(prop_oneof![Just(b'*'), Just(b'a'), Just(b'b')], 60..140),
        ) {
            // Patterns spanning several 64-bit words: the name equal to the pattern with
            // wildcards removed always matches.
            let name: Vec<u8> = pattern.iter().copied().filter(|&b| b != b'*').collect();
            prop_assert!(Pattern::new(&pattern).unwrap().matches(&name));
        }
    }
}
