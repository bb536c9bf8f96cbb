//! Virus scanning (spec §2.2 step 3, §2.3): a [`Scanner`] interface and its clamd
//! implementation over the INSTREAM command.

use std::future::Future;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

/// What a scan found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Nothing.
    Clean,
    /// An infection, with the scanner's name for it (e.g. `Eicar-Signature`).
    Infected(String),
}

/// Why a scan could not give a verdict (the message is then refused temporarily, never
/// let through unscanned).
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    /// The scanner could not be reached or the conversation failed.
    #[error("antivirus unavailable: {0}")]
    Unavailable(String),
    /// The scanner answered with an error.
    #[error("antivirus error: {0}")]
    Failed(String),
}

/// Something that scans message bytes.
pub trait Scanner: Send + Sync + 'static {
    /// Scans `bytes`.
    fn scan(&self, bytes: &[u8]) -> impl Future<Output = Result<Verdict, ScanError>> + Send;
}

/// No scanning at all: for a lab without clamd. Logged loudly by the server at start.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoScanner;

impl Scanner for NoScanner {
    async fn scan(&self, _bytes: &[u8]) -> Result<Verdict, ScanError> {
        Ok(Verdict::Clean)
    }
}

/// clamd reached over TCP (`TCPSocket` in clamd.conf).
#[derive(Debug, Clone)]
pub struct Clamd {
    /// `host:port` of clamd.
    pub address: String,
    /// Limit for connecting and for the whole scan.
    pub timeout: Duration,
}

/// Bytes per INSTREAM chunk (well under clamd's default StreamMaxLength).
const CHUNK: usize = 64 * 1024;

impl Clamd {
    async fn instream(&self, bytes: &[u8]) -> Result<String, ScanError> {
        let io = |e: std::io::Error| ScanError::Unavailable(e.to_string());
        let mut stream = TcpStream::connect(&self.address).await.map_err(io)?;
        stream.write_all(b"zINSTREAM\0").await.map_err(io)?;
        for chunk in bytes.chunks(CHUNK) {
            let len = u32::try_from(chunk.len()).unwrap_or(u32::MAX);
            stream.write_all(&len.to_be_bytes()).await.map_err(io)?;
            stream.write_all(chunk).await.map_err(io)?;
        }
        stream.write_all(&0u32.to_be_bytes()).await.map_err(io)?;
        let mut reply = Vec::new();
        (&mut stream)
            .take(4096)
            .read_to_end(&mut reply)
            .await
            .map_err(io)?;
        let text = String::from_utf8_lossy(&reply);
        Ok(text.trim_end_matches(['\0', '\n']).to_string())
    }
}

impl Scanner for Clamd {
    async fn scan(&self, bytes: &[u8]) -> Result<Verdict, ScanError> {
        let reply = timeout(self.timeout, self.instream(bytes))
            .await
            .map_err(|_| ScanError::Unavailable("timed out".into()))??;
        parse_reply(&reply)
    }
}

/// The scanner chosen by configuration.
#[derive(Debug, Clone)]
pub enum Configured {
    /// No antivirus (a lab without clamd).
    None,
    /// clamd.
    Clamd(Clamd),
}

impl Scanner for Configured {
    async fn scan(&self, bytes: &[u8]) -> Result<Verdict, ScanError> {
        match self {
            Configured::None => NoScanner.scan(bytes).await,
            Configured::Clamd(c) => c.scan(bytes).await,
        }
    }
}

/// Reads clamd's answer: `stream: OK`, `stream: <name> FOUND`, or `... ERROR`.
fn parse_reply(reply: &str) -> Result<Verdict, ScanError> {
    let body = reply.strip_prefix("stream:").unwrap_or(reply).trim();
    if body == "OK" {
        Ok(Verdict::Clean)
    } else if let Some(name) = body.strip_suffix(" FOUND") {
        Ok(Verdict::Infected(name.trim().to_string()))
    } else {
        Err(ScanError::Failed(reply.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies() {
        assert_eq!(parse_reply("stream: OK").unwrap(), Verdict::Clean);
        assert_eq!(
            parse_reply("stream: Eicar-Signature FOUND").unwrap(),
            Verdict::Infected("Eicar-Signature".into())
        );
        assert!(parse_reply("INSTREAM size limit exceeded. ERROR").is_err());
    }
}
