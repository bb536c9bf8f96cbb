//! Dot-stuffing of an outgoing message (RFC 5321 §4.5.2, RFC 1939 §3), shared by the POP3
//! server (RETR, TOP) and the SMTP relay client.

/// Appends `message` to `out` dot-stuffed, then the terminating line: a dot is doubled at
/// the start of the message and after every LF (bare or not, so that no reader, strict or
/// lenient, can take a line of the message for the end of it); the message is closed with
/// CRLF unless it already ends with CRLF, then `.` CRLF.
pub fn stuff(message: &[u8], out: &mut Vec<u8>) {
    out.reserve(message.len() + message.len() / 64 + 5);
    let mut line_start = true;
    for &b in message {
        if line_start && b == b'.' {
            out.push(b'.');
        }
        out.push(b);
        line_start = b == b'\n';
    }
    if !message.is_empty() && !message.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b".\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stuffed(message: &[u8]) -> Vec<u8> {
        let mut out = b"+OK\r\n".to_vec();
        stuff(message, &mut out);
        out.split_off(5)
    }

    #[test]
    fn dots_at_line_starts_are_doubled_and_the_end_is_marked() {
        assert_eq!(stuffed(b".a\r\nb\r\n..c\r\n"), b"..a\r\nb\r\n...c\r\n.\r\n");
        assert_eq!(stuffed(b"a\r\n.b\r\nc"), b"a\r\n..b\r\nc\r\n.\r\n");
        assert_eq!(stuffed(b"no final crlf"), b"no final crlf\r\n.\r\n");
        assert_eq!(stuffed(b""), b".\r\n");
        assert_eq!(stuffed(b".\r\n"), b"..\r\n.\r\n");
    }

    #[test]
    fn a_bare_lf_cannot_smuggle_an_end_of_message() {
        assert_eq!(stuffed(b"a\n.\nb\r\n"), b"a\n..\nb\r\n.\r\n");
        assert_eq!(stuffed(b"a\n"), b"a\n\r\n.\r\n");
    }
}
