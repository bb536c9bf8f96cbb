//! Buffered, bounded line reading shared by the server sessions and the relay client.

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, BufReader};

/// A plaintext or TLS connection, so that STARTTLS can swap one for the other.
pub(crate) trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// The buffered connection: buffering is what makes pipelined commands cheap to read.
pub(crate) type Stream = BufReader<Box<dyn Io>>;

/// Longest command or reply line accepted (RFC 5321 §4.5.3.1.4 asks for 512; AUTH lines
/// and long addresses need more, smtp-proto's own bound is 4096).
pub(crate) const MAX_LINE: usize = 4096;

/// The result of reading one line.
pub(crate) enum Line {
    /// A whole line including its terminating LF.
    Full(Vec<u8>),
    /// The line was longer than the limit; it has been read and thrown away.
    TooLong,
    /// The peer closed the connection.
    Eof,
}

/// Read one LF-terminated line holding at most `limit` bytes in memory.
pub(crate) async fn read_line(stream: &mut Stream, limit: usize) -> std::io::Result<Line> {
    let mut line = Vec::new();
    let mut too_long = false;
    loop {
        let buf = stream.fill_buf().await?;
        if buf.is_empty() {
            return Ok(Line::Eof);
        }
        let (chunk, done) = match buf.iter().position(|&b| b == b'\n') {
            Some(pos) => (&buf[..=pos], true),
            None => (buf, false),
        };
        let used = chunk.len();
        if !too_long && line.len() + used <= limit {
            line.extend_from_slice(chunk);
        } else {
            too_long = true;
            line.clear();
        }
        stream.consume(used);
        if done {
            return Ok(if too_long {
                Line::TooLong
            } else {
                Line::Full(line)
            });
        }
    }
}

/// Wrap a connection in a fresh read buffer.
pub(crate) fn buffered(io: Box<dyn Io>) -> Stream {
    BufReader::new(io)
}
