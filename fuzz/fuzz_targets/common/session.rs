//! What the session targets share: one client conversation over an in-memory pipe.

use std::future::Future;

use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

/// Runs the server side `session` over a pipe whose client writes `prefix` then `data`,
/// closes its side and reads everything back. Errors (a client that breaks the protocol)
/// are fine; a panic in the session is a finding.
pub async fn converse<F, Fut, T>(prefix: &[u8], data: &[u8], session: F)
where
    F: FnOnce(DuplexStream) -> Fut,
    Fut: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let (mut client, server) = tokio::io::duplex(256 * 1024);
    let session = tokio::spawn(session(server));
    let mut input = prefix.to_vec();
    input.extend_from_slice(data);
    let reader = tokio::spawn(async move {
        let mut sink = Vec::new();
        let _ = client.write_all(&input).await;
        let _ = client.shutdown().await;
        let _ = client.read_to_end(&mut sink).await;
    });
    let _ = session.await.expect("session panicked");
    let _ = reader.await;
}
