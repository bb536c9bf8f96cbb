//! SMTP replies: what a server sends and what the relay client receives.

use std::fmt;

/// One SMTP reply (RFC 5321 §4.2) with its optional enhanced status code (RFC 3463).
///
/// It exists so that the embedding application can decide exactly what a client is told
/// (for example the `250` sent only after a message is durable) and so that the relay
/// client can report what a remote server answered, per recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The three-digit reply code, e.g. `250` or `550`.
    pub code: u16,
    /// The enhanced status code without the class separator spaces, e.g. `"5.7.1"`.
    pub enhanced: Option<String>,
    /// Human-readable text. A `\n` separates lines of a multi-line reply; `\r` is dropped.
    pub text: String,
}

impl Reply {
    /// A reply with an enhanced status code: the usual shape of every reply this crate sends.
    pub fn new(code: u16, enhanced: &str, text: impl Into<String>) -> Self {
        Self {
            code,
            enhanced: Some(enhanced.to_owned()),
            text: text.into(),
        }
    }

    /// `250 2.0.0 <text>`: the positive completion most handlers return.
    pub fn ok(text: impl Into<String>) -> Self {
        Self::new(250, "2.0.0", text)
    }

    /// True for `2xx` and `3xx`: the command was accepted.
    pub fn is_positive(&self) -> bool {
        (200..400).contains(&self.code)
    }

    /// True for `4xx`: the sender should try again later.
    pub fn is_transient(&self) -> bool {
        (400..500).contains(&self.code)
    }

    /// True for `5xx` (and any other non-positive, non-transient code): do not retry.
    pub fn is_permanent(&self) -> bool {
        !self.is_positive() && !self.is_transient()
    }

    /// The reply in wire format: one `code-` line per text line but the last, `code ` last.
    pub(crate) fn to_wire(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.text.len() + 16);
        let lines: Vec<&str> = self.text.split('\n').collect();
        let last = lines.len() - 1;
        for (i, line) in lines.iter().enumerate() {
            let sep = if i == last { ' ' } else { '-' };
            out.extend_from_slice(format!("{}{}", self.code, sep).as_bytes());
            if let Some(enhanced) = &self.enhanced {
                out.extend_from_slice(enhanced.as_bytes());
                out.push(b' ');
            }
            out.extend(line.bytes().filter(|&b| b != b'\r'));
            out.extend_from_slice(b"\r\n");
        }
        out
    }
}

impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.code)?;
        if let Some(enhanced) = &self.enhanced {
            write!(f, " {enhanced}")?;
        }
        write!(f, " {}", self.text.replace('\n', " / "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_line_wire_format() {
        let r = Reply::new(550, "5.7.1", "Relay refused");
        assert_eq!(r.to_wire(), b"550 5.7.1 Relay refused\r\n");
    }

    #[test]
    fn multi_line_wire_format_drops_cr() {
        let r = Reply::new(452, "4.5.3", "first\r\nsecond");
        assert_eq!(r.to_wire(), b"452-4.5.3 first\r\n452 4.5.3 second\r\n");
    }

    #[test]
    fn classes() {
        assert!(Reply::ok("x").is_positive());
        assert!(Reply::new(421, "4.7.0", "x").is_transient());
        assert!(Reply::new(554, "5.0.0", "x").is_permanent());
    }
}
