//! JMAP over HTTP (RFC 8620 §2, §3.1, §6.2): the routes under `/.well-known/jmap` and
//! `/jmap/`, HTTP Basic authentication with the mailbox password (the same check, pool
//! and per-client penalty as IMAP and SMTP logins: [`pec_net::Authenticator`]), bounded
//! request bodies, problem documents, and the blob download.
//!
//! The server serves these routes on its HTTPS listener only, so the password never
//! travels in clear. Every answer is a whole body except the event source's
//! ([`crate::push`]), a stream: hence [`ResponseBody`].

use std::net::IpAddr;
use std::sync::Arc;

use base64::Engine;
use http_body_util::{BodyExt, Either, Full, Limited};
use hyper::body::{Body, Bytes};
use hyper::header::{AUTHORIZATION, CACHE_CONTROL, CONTENT_DISPOSITION, CONTENT_TYPE, HOST};
use hyper::{Method, Request, Response, StatusCode};
use pec_net::Authenticator;
use pec_store::Store;
use tracing::{debug, warn};

use crate::api::{self, Ctx};
use crate::blob;
use crate::ids;
use crate::pec::SignerTrust;
use crate::protocol::{Invocation, Problem, Response as ApiResponse};
use crate::push::{EventStream, Push, Refused as PushRefused};
use crate::session::{self, Limits};
use crate::submission::AccessPoint;
use crate::upload::{Refused, Uploads};

/// The session resource (RFC 8620 §2.2).
pub const WELL_KNOWN: &str = "/.well-known/jmap";
/// The API endpoint.
pub const API_PATH: &str = "/jmap/api";
/// Downloads: `/jmap/download/{accountId}/{blobId}/{name}?type=`.
pub const DOWNLOAD_PREFIX: &str = "/jmap/download/";
/// Uploads: `POST /jmap/upload/{accountId}/` (RFC 8620 §6.1).
pub const UPLOAD_PREFIX: &str = "/jmap/upload/";
/// Push by event source (RFC 8620 §7.3, [`crate::push`]).
pub const EVENT_SOURCE_PATH: &str = "/jmap/eventsource";

/// Longest user name or password read from an `Authorization` header.
const MAX_CREDENTIAL: usize = 1024;

/// The JMAP service of a gestore.
pub struct Jmap {
    /// Where the mail is.
    pub store: Arc<dyn Store>,
    /// The password check shared with IMAP and SMTP.
    pub auth: Arc<Authenticator>,
    /// Judges signers for the `pec` property.
    pub trust: Arc<dyn SignerTrust>,
    /// The API's bounds.
    pub limits: Limits,
    /// The public host (and `:port` if not 443) put in the session's URLs when the
    /// request names none usable.
    pub public_host: String,
    /// Told the address and folder of every change made through JMAP, so that the IMAP
    /// sessions of this node watching that folder learn of it (other nodes learn through
    /// the store's change feed).
    pub changed: FolderChanged,
    /// Blobs uploaded and not yet imported (in memory, bounded: [`crate::upload`]).
    pub uploads: Arc<Uploads>,
    /// The access point EmailSubmission/set sends through, as SMTP submission does
    /// (`None`: the service reads mail only).
    pub access: Option<Arc<dyn AccessPoint>>,
    /// Push by event source: the change hub it waits on and its bounds.
    pub push: Push,
}

/// The body of a JMAP answer: whole, or the event source's stream.
pub type ResponseBody = Either<Full<Bytes>, EventStream>;

/// The outcome of a password check ([`Jmap::login`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Login {
    /// The password is right: the mailbox's address.
    Accepted(String),
    /// No such user, or a wrong password.
    Refused,
    /// The store did not answer: a temporary failure.
    Unavailable,
}

/// The store did not answer: the caller should say "try again".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unavailable;

/// A callback told `(address, folder)` of a change (the IMAP change hub's `changed`).
pub type FolderChanged = Arc<dyn Fn(&str, &str) + Send + Sync>;

/// Whether `path` is one of JMAP's (the HTTP server hands those to [`Jmap::answer`]).
pub fn serves(path: &str) -> bool {
    path == WELL_KNOWN || path == "/jmap" || path.starts_with("/jmap/")
}

type Reply = Response<Full<Bytes>>;

fn reply(status: StatusCode, content_type: &str, body: impl Into<Bytes>) -> Reply {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    if let Ok(v) = content_type.parse() {
        r.headers_mut().insert(CONTENT_TYPE, v);
    }
    if let Ok(v) = "no-cache, no-store".parse() {
        r.headers_mut().insert(CACHE_CONTROL, v);
    }
    r
}

fn json(status: StatusCode, value: &impl serde::Serialize) -> Reply {
    match serde_json::to_vec(value) {
        Ok(body) => reply(status, "application/json", body),
        Err(e) => reply(
            StatusCode::INTERNAL_SERVER_ERROR,
            "text/plain; charset=utf-8",
            format!("errore interno: {e}\n"),
        ),
    }
}

fn problem(p: &Problem) -> Reply {
    let status = StatusCode::from_u16(p.status).unwrap_or(StatusCode::BAD_REQUEST);
    let mut r = json(status, p);
    if let Ok(v) = "application/problem+json".parse() {
        r.headers_mut().insert(CONTENT_TYPE, v);
    }
    r
}

fn plain(status: StatusCode, text: &str) -> Reply {
    reply(status, "text/plain; charset=utf-8", format!("{text}\n"))
}

fn unauthorized() -> Reply {
    let mut r = plain(StatusCode::UNAUTHORIZED, "autenticazione richiesta");
    if let Ok(v) = "Basic realm=\"PEC\", charset=\"UTF-8\"".parse() {
        r.headers_mut().insert("www-authenticate", v);
    }
    r
}

fn unavailable() -> Reply {
    plain(
        StatusCode::SERVICE_UNAVAILABLE,
        "servizio temporaneamente non disponibile, riprovare",
    )
}

/// The user name and password of a `Basic` `Authorization` value.
fn basic_credentials(value: &str) -> Option<(String, String)> {
    let (scheme, encoded) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") || encoded.len() > 4 * MAX_CREDENTIAL {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    (!user.is_empty()).then(|| (user.to_string(), password.to_string()))
}

/// A `Host` value safe to put in URLs.
fn usable_host(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 255
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
}

impl Jmap {
    /// Runs a store call where blocking is allowed.
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&dyn Store) -> T + Send + 'static,
    ) -> Option<T> {
        let store = self.store.clone();
        match tokio::task::spawn_blocking(move || f(store.as_ref())).await {
            Ok(t) => Some(t),
            Err(e) => {
                warn!("JMAP store task failed: {e}");
                None
            }
        }
    }

    /// The address of the user the request authenticates, `Err` with the answer if none.
    async fn authenticate<B>(&self, req: &Request<B>, peer: IpAddr) -> Result<String, Reply> {
        let Some((user, password)) = req
            .headers()
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(basic_credentials)
        else {
            return Err(unauthorized());
        };
        match self.login(&user, &password, peer).await {
            Login::Accepted(address) => Ok(address),
            Login::Refused => Err(unauthorized()),
            Login::Unavailable => Err(unavailable()),
        }
    }

    /// Checks `user`'s `password` as an IMAP login does (the same argon2 pool and the
    /// same per-client penalty): JMAP's Basic authentication and the webmail's login
    /// form both come here.
    pub async fn login(&self, user: &str, password: &str, peer: IpAddr) -> Login {
        if user.is_empty() || user.len() > MAX_CREDENTIAL || password.len() > MAX_CREDENTIAL {
            return Login::Refused;
        }
        let lookup = user.to_string();
        let account = match self.blocking(move |s| s.find_account(&lookup)).await {
            Some(Ok(a)) => a,
            Some(Err(e)) => {
                warn!("JMAP login: the store failed: {e}");
                return Login::Unavailable;
            }
            None => return Login::Unavailable,
        };
        let stored = account.as_ref().map(|a| a.password_hash.as_str());
        if self.auth.verify(peer, password, stored).await
            && let Some(a) = account
        {
            return Login::Accepted(a.address);
        }
        debug!(%peer, "JMAP login refused");
        Login::Refused
    }

    /// Runs `calls` for `address` in-process, with every capability in use (the PEC
    /// one included): the webmail reads the mailbox through the same methods a JMAP
    /// client calls. It cannot submit (EmailSubmission/set needs the client's address
    /// for the access point). `None` when the store task failed.
    pub async fn call(&self, address: String, calls: Vec<Invocation>) -> Option<ApiResponse> {
        let request = crate::protocol::Request {
            using: session::CAPABILITIES
                .iter()
                .map(|c| c.to_string())
                .collect(),
            method_calls: calls,
            created_ids: None,
        };
        self.run(address, None, request).await
    }

    /// A blob of `address`'s: one they uploaded, or one of their messages or a part of
    /// one (see [`blob::read`]); `Ok(None)` when none of theirs is or holds it, `Err` when
    /// the store failed.
    pub async fn read_blob(
        &self,
        address: String,
        blob_id: ids::BlobId,
    ) -> Result<Option<Vec<u8>>, Unavailable> {
        let uploaded = blob_id
            .part
            .is_none()
            .then(|| self.uploads.get(&address, &blob_id.hash))
            .flatten();
        if let Some(bytes) = uploaded {
            return Ok(Some(bytes.as_ref().clone()));
        }
        let found = self
            .blocking(move |store| blob::read(store, &address, &blob_id))
            .await;
        match found {
            Some(Ok(b)) => Ok(b),
            Some(Err(e)) => {
                warn!("JMAP download: the store failed: {e}");
                Err(Unavailable)
            }
            None => Err(Unavailable),
        }
    }

    /// The answer to a request on one of the paths [`serves`] names: the event source's
    /// is a stream ([`EventStream`]), every other a whole body.
    pub async fn answer<B>(&self, req: Request<B>, peer: IpAddr) -> Response<ResponseBody>
    where
        B: Body + Send,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let address = match self.authenticate(&req, peer).await {
            Ok(a) => a,
            Err(r) => return r.map(Either::Left),
        };
        if req.uri().path() == EVENT_SOURCE_PATH {
            return self.event_source(&req, address, peer);
        }
        self.route(req, address, peer).await.map(Either::Left)
    }

    /// An event-source stream (RFC 8620 §7.3) for `address`, or why not.
    fn event_source<B>(
        &self,
        req: &Request<B>,
        address: String,
        peer: IpAddr,
    ) -> Response<ResponseBody> {
        if req.method() != Method::GET {
            return plain(StatusCode::METHOD_NOT_ALLOWED, "metodo non ammesso").map(Either::Left);
        }
        let last_event_id = req
            .headers()
            .get("last-event-id")
            .and_then(|v| v.to_str().ok());
        let query = req.uri().query().unwrap_or("");
        let opened = self
            .push
            .open(self.store.clone(), address, peer, query, last_event_id);
        match opened {
            Ok(stream) => {
                let mut r = Response::new(Either::Right(stream));
                for (name, value) in [
                    (CONTENT_TYPE, "text/event-stream"),
                    (CACHE_CONTROL, "no-cache, no-store"),
                ] {
                    if let Ok(v) = value.parse() {
                        r.headers_mut().insert(name, v);
                    }
                }
                r
            }
            Err(PushRefused::Busy) => plain(
                StatusCode::TOO_MANY_REQUESTS,
                "troppe connessioni di notifica aperte",
            )
            .map(Either::Left),
            Err(PushRefused::BadRequest(why)) => {
                plain(StatusCode::BAD_REQUEST, &why).map(Either::Left)
            }
        }
    }

    /// The answer to an authenticated request on a path other than the event source's.
    async fn route<B>(&self, req: Request<B>, address: String, peer: IpAddr) -> Reply
    where
        B: Body + Send,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let path = req.uri().path().to_string();
        let method = req.method().clone();
        if path == WELL_KNOWN {
            if method != Method::GET {
                return plain(StatusCode::METHOD_NOT_ALLOWED, "metodo non ammesso");
            }
            let host = req
                .headers()
                .get(HOST)
                .and_then(|h| h.to_str().ok())
                .filter(|h| usable_host(h))
                .unwrap_or(&self.public_host);
            let base = format!("https://{host}");
            return json(
                StatusCode::OK,
                &session::session(&address, &base, &self.limits),
            );
        }
        if path == API_PATH {
            if method != Method::POST {
                return plain(StatusCode::METHOD_NOT_ALLOWED, "metodo non ammesso");
            }
            return self.api(req, address, peer).await;
        }
        if let Some(rest) = path.strip_prefix(DOWNLOAD_PREFIX) {
            if method != Method::GET && method != Method::HEAD {
                return plain(StatusCode::METHOD_NOT_ALLOWED, "metodo non ammesso");
            }
            let query = req.uri().query().unwrap_or("").to_string();
            return self.download(rest, &query, address).await;
        }
        if let Some(rest) = path.strip_prefix(UPLOAD_PREFIX) {
            if method != Method::POST {
                return plain(StatusCode::METHOD_NOT_ALLOWED, "metodo non ammesso");
            }
            let account = rest.trim_end_matches('/').to_string();
            return self.upload(req, &account, address).await;
        }
        plain(StatusCode::NOT_FOUND, "risorsa inesistente")
    }

    /// The API endpoint: a bounded body, a checked request, the calls run off the
    /// async threads.
    async fn api<B>(&self, req: Request<B>, address: String, peer: IpAddr) -> Reply
    where
        B: Body + Send,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let max = self.limits.max_size_request;
        let body = match Limited::new(req.into_body(), max).collect().await {
            Ok(b) => b.to_bytes(),
            Err(e) => {
                debug!("JMAP request body not read: {e}");
                return problem(&Problem::limit(
                    "maxSizeRequest",
                    format!("the request is larger than {max} bytes"),
                ));
            }
        };
        let request = match api::parse_request(&body, &self.limits) {
            Ok(r) => r,
            Err(p) => return problem(&p),
        };
        match self.run(address, Some(peer), request).await {
            Some(r) => json(StatusCode::OK, &r),
            None => unavailable(),
        }
    }

    /// An upload (RFC 8620 §6.1): at most `maxSizeUpload` bytes kept for the user,
    /// answered with the blob's id, type and size.
    async fn upload<B>(&self, req: Request<B>, account: &str, address: String) -> Reply
    where
        B: Body + Send,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let account_id = ids::account_id(&address);
        if account != account_id {
            return plain(StatusCode::NOT_FOUND, "risorsa inesistente");
        }
        let content_type = req
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|t| blob::content_type(&format!("type={}", t.split(';').next().unwrap_or(""))))
            .unwrap_or_else(|| "application/octet-stream".to_string());
        let max = self.limits.max_size_upload;
        let body = match Limited::new(req.into_body(), max).collect().await {
            Ok(b) => b.to_bytes(),
            Err(e) => {
                debug!("JMAP upload not read: {e}");
                let mut p = Problem::limit(
                    "maxSizeUpload",
                    format!("the upload is larger than {max} bytes"),
                );
                p.status = StatusCode::PAYLOAD_TOO_LARGE.as_u16();
                return problem(&p);
            }
        };
        let size = body.len();
        match self.uploads.put(&address, body.to_vec()) {
            Ok(hash) => json(
                StatusCode::CREATED,
                &serde_json::json!({
                    "accountId": account_id,
                    "blobId": ids::BlobId { hash, part: None }.to_string(),
                    "type": content_type,
                    "size": size,
                }),
            ),
            Err(Refused::Full) => unavailable(),
        }
    }

    /// Runs a checked request for `address` off the async threads. `peer` is the
    /// client's address, which EmailSubmission hands to the access point; without it (an
    /// in-process call) the request cannot submit.
    async fn run(
        &self,
        address: String,
        peer: Option<IpAddr>,
        request: crate::protocol::Request,
    ) -> Option<ApiResponse> {
        let (trust, limits) = (self.trust.clone(), self.limits.clone());
        let (changed, uploads) = (self.changed.clone(), self.uploads.clone());
        let access = peer.and(self.access.clone());
        let peer = peer.unwrap_or(IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED));
        self.blocking(move |store| {
            let ctx = Ctx {
                store,
                address: &address,
                account_id: ids::account_id(&address),
                limits: &limits,
                trust: trust.as_ref(),
                changed: changed.as_ref(),
                uploads: uploads.as_ref(),
                access: access.as_deref(),
                peer,
                using_pec: request.using.iter().any(|u| u == session::PEC),
            };
            api::process(&ctx, request)
        })
        .await
    }

    /// A blob of the user's account, with the type and name the client asked for.
    async fn download(&self, rest: &str, query: &str, address: String) -> Reply {
        let mut segments = rest.splitn(3, '/');
        let (Some(account), Some(blob_id), Some(name)) =
            (segments.next(), segments.next(), segments.next())
        else {
            return plain(StatusCode::NOT_FOUND, "risorsa inesistente");
        };
        let Some(blob_id) = ids::BlobId::parse(blob_id) else {
            return plain(StatusCode::NOT_FOUND, "risorsa inesistente");
        };
        if account != ids::account_id(&address) {
            return plain(StatusCode::NOT_FOUND, "risorsa inesistente");
        }
        let bytes = match self.read_blob(address, blob_id).await {
            Ok(Some(b)) => b,
            Ok(None) => return plain(StatusCode::NOT_FOUND, "risorsa inesistente"),
            Err(Unavailable) => return unavailable(),
        };
        let content_type = blob::content_type(query);
        let mut r = reply(StatusCode::OK, &content_type, bytes);
        let disposition = format!("attachment; filename=\"{}\"", blob::safe_name(name));
        if let Ok(v) = disposition.parse() {
            r.headers_mut().insert(CONTENT_DISPOSITION, v);
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_are_decoded_within_bounds() {
        let encoded = base64::engine::general_purpose::STANDARD.encode("mario@pec.it:se:greto");
        assert_eq!(
            basic_credentials(&format!("Basic {encoded}")),
            Some(("mario@pec.it".into(), "se:greto".into()))
        );
        assert_eq!(basic_credentials(&format!("Bearer {encoded}")), None);
        assert_eq!(basic_credentials("Basic !!!"), None);
        let no_user = base64::engine::general_purpose::STANDARD.encode(":x");
        assert_eq!(basic_credentials(&format!("Basic {no_user}")), None);
        assert!(usable_host("pec.example.it:8443"));
        assert!(!usable_host("evil/\"host"));
        assert!(serves("/.well-known/jmap") && serves("/jmap/api") && !serves("/jmapx"));
    }
}
