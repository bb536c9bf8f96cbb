//! HTTP/1.1 exchanges with the outside services a gestore depends on: the
//! time-stamping authority of the legal log (RFC 3161 over HTTP) and the published
//! provider index and CRLs. Plain `http://` only — what those services publish their
//! signed objects on; every answer is checked by its own signature, not by the channel.
//! Bounded in time and size. [`send`], the exchange itself, also serves the protocol
//! offices' webhooks over their own (TLS) connections.

use std::time::Duration;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;
use hyper::header::{CONTENT_TYPE, HOST};
use hyper::{Method, Request, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::error::{Error, Result};

/// How long one exchange may take, connection included.
pub const TIMEOUT: Duration = Duration::from_secs(60);

fn http_error(what: impl std::fmt::Display) -> Error {
    Error::Http(what.to_string())
}

/// Sends `method` to `url` with `body` (of `content_type`, if any) and returns the body
/// of a `200` answer, at most `limit` bytes.
async fn exchange(
    method: Method,
    url: &str,
    body: Option<(&str, Vec<u8>)>,
    limit: usize,
) -> Result<Vec<u8>> {
    let uri: Uri = url
        .parse()
        .map_err(|e| http_error(format!("{url:?}: {e}")))?;
    if uri.scheme_str() != Some("http") {
        return Err(http_error(format!(
            "{url:?}: only http:// URLs are supported"
        )));
    }
    let host = uri
        .host()
        .ok_or_else(|| http_error(format!("{url:?}: no host")))?;
    let port = uri.port_u16().unwrap_or(80);
    let authority = uri
        .authority()
        .map(|a| a.to_string())
        .unwrap_or_else(|| host.to_string());
    let path = uri
        .path_and_query()
        .map(|p| p.to_string())
        .unwrap_or_else(|| "/".into());
    let work = async {
        let stream = tokio::net::TcpStream::connect((host.trim_matches(['[', ']']), port))
            .await
            .map_err(|e| http_error(format!("cannot connect to {authority}: {e}")))?;
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header(HOST, authority.as_str());
        let bytes = match body {
            Some((content_type, bytes)) => {
                req = req.header(CONTENT_TYPE, content_type);
                bytes
            }
            None => Vec::new(),
        };
        let req = req
            .body(Full::new(Bytes::from(bytes)))
            .map_err(http_error)?;
        let (status, body) = send(stream, req, limit).await?;
        let body = body.map_err(|e| http_error(format!("{url}: {e}")))?;
        if status != StatusCode::OK {
            return Err(http_error(format!("{url} answered {status}")));
        }
        Ok(body)
    };
    tokio::time::timeout(TIMEOUT, work)
        .await
        .map_err(|_| http_error(format!("{url}: no answer within {TIMEOUT:?}")))?
}

/// One HTTP/1.1 exchange of `request` over `io` (a TCP stream, or TLS over one): the
/// status, and the body when it is at most `limit` bytes (why not, otherwise), read in
/// any case so that the server is not cut mid-answer.
pub async fn send<IO>(
    io: IO,
    request: Request<Full<Bytes>>,
    limit: usize,
) -> Result<(StatusCode, std::result::Result<Vec<u8>, String>)>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(http_error)?;
    let driver = tokio::spawn(conn);
    let resp = sender.send_request(request).await.map_err(http_error)?;
    let status = resp.status();
    let body = Limited::new(resp.into_body(), limit)
        .collect()
        .await
        .map(|b| b.to_bytes().to_vec())
        .map_err(|e| e.to_string());
    driver.abort();
    Ok((status, body))
}

/// POSTs `body` as `content_type` to `url`; the body of the `200` answer.
pub async fn post(url: &str, content_type: &str, body: Vec<u8>, limit: usize) -> Result<Vec<u8>> {
    exchange(Method::POST, url, Some((content_type, body)), limit).await
}

/// GETs `url`; the body of the `200` answer.
pub async fn get(url: &str, limit: usize) -> Result<Vec<u8>> {
    exchange(Method::GET, url, None, limit).await
}
