//! The webmail's paths under `/webmail/`: the login form and logout, the folder and
//! message pages, search, downloads. Sessions live in a cookie `Secure; HttpOnly;
//! SameSite=Strict; Path=/webmail/`; every POST carries a CSRF token (the session's, or
//! before login a double-submit token also set in a cookie); the password check is
//! pec-jmap's ([`Jmap::login`]), so logins share IMAP's argon2 pool and per-client
//! penalty. Every page reads the mailbox through pec-jmap's methods, in-process.

use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use hyper::body::Body;
use hyper::{Method, Request, StatusCode};
use pec_jmap::ids::{BlobId, Place, account_id};
use pec_jmap::protocol::Invocation;
use pec_jmap::{Jmap, Login};
use serde_json::{Value, json};
use tokio::time::Instant;
use tracing::{debug, warn};

use crate::error::{Error, Result};
use crate::original::{self, Original};
use crate::pages::{self, Extras, Listing, Quota, Receipts, User};
use crate::receipts;
use crate::sessions::{Session, SessionLimits, Sessions, same_token};
use crate::signed;
use crate::web::{
    PAGE_POLICY, Reply, attachment, cookie_value, html, login_page, login_token_matches,
    percent_decode, read_form, redirect, reply, set_cookie,
};

/// Where the webmail lives.
pub const PREFIX: &str = "/webmail/";
/// The session cookie.
pub const COOKIE_NAME: &str = "pecwm";
/// The login form's double-submit CSRF cookie.
pub const LOGIN_COOKIE: &str = "pecwm_login";
/// Messages per page of a folder.
const PAGE: usize = 50;
/// Most receipts read for one message.
const MAX_RECEIPTS: usize = 256;
/// Longest text shown of a message's body values.
const MAX_BODY_VALUE: usize = 256 * 1024;
/// Longest search text read (in characters).
const MAX_SEARCH: usize = 200;
/// Whether `path` is the webmail's (the HTTP server hands those to [`Webmail::answer`]).
pub fn serves(path: &str) -> bool {
    path == "/webmail" || path.starts_with(PREFIX)
}

/// The webmail of a gestore: pec-jmap for the mail (and its access point, to send), the
/// sessions, and the largest message the access point takes.
pub struct Webmail {
    pub(crate) jmap: Arc<Jmap>,
    sessions: Mutex<Sessions>,
    pub(crate) max_message: usize,
}

/// What the folder page says after the user did something (`?esito=`): fixed texts, so
/// that a link cannot make the page say anything else.
const OUTCOMES: &[(&str, &str)] = &[
    (
        "inviato",
        "Messaggio accettato dal gestore: la ricevuta di accettazione è in arrivo.",
    ),
    (
        "senza-copia",
        "Messaggio accettato dal gestore: la ricevuta di accettazione è in arrivo. \
         La copia in Posta inviata non è stata salvata.",
    ),
];

/// The page of a POST whose form does not carry the session's CSRF token.
pub(crate) fn forged(peer: IpAddr) -> Reply {
    debug!(%peer, "webmail: a POST without the session's CSRF token");
    html(
        StatusCode::FORBIDDEN,
        pages::notice(
            None,
            "Richiesta rifiutata",
            "Il modulo non proviene da questa sessione.",
        ),
    )
}

/// The page of a failure.
pub(crate) fn failure(user: Option<User<'_>>, e: &Error) -> Reply {
    match e {
        Error::BadForm(why) => html(
            StatusCode::BAD_REQUEST,
            pages::notice(user, "Richiesta non valida", why),
        ),
        Error::Unavailable => html(
            StatusCode::SERVICE_UNAVAILABLE,
            pages::notice(
                user,
                "Servizio non disponibile",
                "Il servizio è temporaneamente non disponibile: riprovare tra poco.",
            ),
        ),
        Error::Method(kind, _) if kind == "serverUnavailable" => failure(user, &Error::Unavailable),
        Error::Method(..) | Error::NotFound => html(
            StatusCode::NOT_FOUND,
            pages::notice(
                user,
                "Pagina inesistente",
                "Il messaggio o la cartella non esiste.",
            ),
        ),
    }
}

/// The result of one method response: its arguments, or the error it is.
pub(crate) fn result(r: &Invocation) -> Result<Value> {
    if r.0 == "error" {
        let kind = r.1.get("type").and_then(Value::as_str).unwrap_or("");
        let description = r.1.get("description").and_then(Value::as_str).unwrap_or("");
        return Err(Error::Method(kind.to_string(), description.to_string()));
    }
    Ok(Value::Object(r.1.clone()))
}

pub(crate) fn list(v: &Value) -> Vec<Value> {
    v["list"].as_array().cloned().unwrap_or_default()
}

impl Webmail {
    /// A webmail over `jmap`, with sessions within `limits`, sending messages of at most
    /// `max_message` bytes (the SMTP submission limit: a compose form is read up to it).
    pub fn new(jmap: Arc<Jmap>, limits: SessionLimits, max_message: usize) -> Self {
        Webmail {
            jmap,
            sessions: Mutex::new(Sessions::new(limits)),
            max_message,
        }
    }

    fn sessions(&self) -> MutexGuard<'_, Sessions> {
        self.sessions.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs JMAP method calls for `address` (`[name, arguments, id]` each).
    pub(crate) async fn call(&self, address: &str, calls: Value) -> Result<Vec<Invocation>> {
        let calls: Vec<Invocation> = serde_json::from_value(calls)
            .map_err(|e| Error::Method("invalidArguments".into(), e.to_string()))?;
        let response = self
            .jmap
            .call(address.to_string(), calls)
            .await
            .ok_or(Error::Unavailable)?;
        Ok(response.method_responses)
    }

    /// The login page with a fresh double-submit token (in the form and a cookie).
    fn login_page(status: StatusCode, error: Option<&str>) -> Reply {
        login_page(status, LOGIN_COOKIE, PREFIX, |token| {
            pages::login(token, error)
        })
        .unwrap_or_else(|| failure(None, &Error::Unavailable))
    }

    /// The answer to a request on one of the paths [`serves`] names, from `peer`.
    pub async fn answer<B>(&self, req: Request<B>, peer: IpAddr) -> Reply
    where
        B: Body + Send,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let path = req.uri().path().to_string();
        let method = req.method().clone();
        if path == "/webmail" {
            return redirect(PREFIX);
        }
        if path == "/webmail/accedi" && method == Method::POST {
            return self.login(req, peer).await;
        }
        let id = cookie_value(req.headers(), COOKIE_NAME);
        let session = id
            .as_deref()
            .and_then(|id| self.sessions().get(id, Instant::now()));
        let Some(session) = session else {
            return match method {
                Method::GET | Method::HEAD if path == PREFIX => {
                    Self::login_page(StatusCode::OK, None)
                }
                Method::GET | Method::HEAD => redirect(PREFIX),
                _ => html(
                    StatusCode::FORBIDDEN,
                    pages::notice(None, "Sessione scaduta", "Accedere di nuovo."),
                ),
            };
        };
        if method == Method::POST && path == "/webmail/invia" {
            return self.send(req, &session, peer).await;
        }
        if method == Method::POST {
            let Some(form) = read_form(req).await else {
                return html(
                    StatusCode::BAD_REQUEST,
                    pages::notice(None, "Richiesta non valida", "Il modulo è troppo grande."),
                );
            };
            if !same_token(form.get("csrf"), &session.csrf) {
                return forged(peer);
            }
            return match (path.as_str(), id) {
                ("/webmail/esci", Some(id)) => {
                    self.sessions().close(&id);
                    let mut r = redirect(PREFIX);
                    set_cookie(&mut r, COOKIE_NAME, "", PREFIX);
                    r
                }
                _ => failure(None, &Error::NotFound),
            };
        }
        if method != Method::GET && method != Method::HEAD {
            return reply(
                StatusCode::METHOD_NOT_ALLOWED,
                "text/plain; charset=utf-8",
                "metodo non ammesso\n",
                PAGE_POLICY,
            );
        }
        let query = req.uri().query().unwrap_or("").to_string();
        self.page(&session, &path, &query).await
    }

    /// The login form's POST: the double-submit token, then the password check.
    async fn login<B>(&self, req: Request<B>, peer: IpAddr) -> Reply
    where
        B: Body + Send,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let headers = req.headers().clone();
        let Some(form) = read_form(req).await else {
            return Self::login_page(StatusCode::BAD_REQUEST, Some("Richiesta non valida."));
        };
        if !login_token_matches(&headers, LOGIN_COOKIE, &form) {
            return Self::login_page(
                StatusCode::FORBIDDEN,
                Some("Il modulo di accesso è scaduto: riprovare."),
            );
        }
        let user = form.get("username").trim().to_ascii_lowercase();
        match self.jmap.login(&user, form.get("password"), peer).await {
            Login::Accepted(address) => {
                let Some(id) = self.sessions().open(&address, Instant::now()) else {
                    return failure(None, &Error::Unavailable);
                };
                let mut r = redirect(PREFIX);
                set_cookie(&mut r, COOKIE_NAME, &id, PREFIX);
                set_cookie(&mut r, LOGIN_COOKIE, "", PREFIX);
                r
            }
            Login::Refused => Self::login_page(
                StatusCode::UNAUTHORIZED,
                Some("Indirizzo o password non corretti."),
            ),
            Login::Unavailable => Self::login_page(
                StatusCode::SERVICE_UNAVAILABLE,
                Some("Servizio temporaneamente non disponibile: riprovare."),
            ),
        }
    }

    /// The space used by `address`'s mailbox and archive; `None` (and a warning) when the
    /// store did not answer: the page goes without the bar.
    pub(crate) async fn quota(&self, address: &str) -> Option<Quota> {
        let (store, address) = (self.jmap.store.clone(), address.to_string());
        let read = tokio::task::spawn_blocking(move || {
            Ok::<_, pec_store::Error>(Quota {
                mailbox: store.usage(&address)?,
                archive: store.archive_usage(&address)?,
            })
        })
        .await;
        match read {
            Ok(Ok(q)) => Some(q),
            Ok(Err(e)) => {
                warn!("webmail: the quota was not read: {e}");
                None
            }
            Err(e) => {
                warn!("webmail: the quota task failed: {e}");
                None
            }
        }
    }

    /// The user's folders (Mailbox objects).
    pub(crate) async fn mailboxes(&self, address: &str) -> Result<Vec<Value>> {
        let account = account_id(address);
        let r = self
            .call(
                address,
                json!([["Mailbox/get", {"accountId": account}, "m"]]),
            )
            .await?;
        Ok(list(&result(&r[0])?))
    }

    /// A GET of a logged-in user.
    async fn page(&self, session: &Session, path: &str, query: &str) -> Reply {
        let quota = self.quota(&session.address).await;
        let user = User {
            address: &session.address,
            csrf: &session.csrf,
            quota: quota.as_ref(),
        };
        let rest = path.strip_prefix(PREFIX).unwrap_or("");
        let segments: Vec<String> = rest.split('/').take(4).map(percent_decode).collect();
        let segs: Vec<&str> = segments.iter().map(String::as_str).collect();
        let answer = match segs.as_slice() {
            [""] => self.folder(user, None, query).await,
            ["cartella", id] => self.folder(user, Some(id), query).await,
            ["messaggio", id] => self.message(user, id).await,
            ["cerca"] => self.search(user, query).await,
            ["scrivi"] => self.compose(user, query).await,
            ["verifica"] => self.verify(user, query).await,
            ["documento"] => self.document(user, query).await,
            ["scarica", blob, name] => self.download(user, blob, name, query).await,
            ["allegato", blob, part, name] => self.inner(user, blob, part, name).await,
            _ => Err(Error::NotFound),
        };
        answer.unwrap_or_else(|e| {
            if let Error::Method(kind, why) = &e {
                warn!(address = %session.address, "webmail: JMAP {kind}: {why}");
            }
            failure(Some(user), &e)
        })
    }

    /// A folder's page (`None`: the inbox).
    async fn folder(&self, user: User<'_>, id: Option<&str>, query: &str) -> Result<Reply> {
        let account = account_id(user.address);
        let mailboxes = self.mailboxes(user.address).await?;
        let mailbox = match id {
            Some(id) => mailboxes.iter().find(|m| m["id"] == id),
            None => mailboxes.iter().find(|m| m["role"] == "inbox"),
        }
        .ok_or(Error::NotFound)?;
        let position = param(query, "da")
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(0);
        let notice = param(query, "esito")
            .and_then(|e| OUTCOMES.iter().find(|(k, _)| *k == e))
            .map(|(_, text)| *text);
        let r = self
            .call(
                user.address,
                json!([
                    ["Email/query", {"accountId": account,
                        "filter": {"inMailbox": mailbox["id"]},
                        "sort": [{"property": "receivedAt", "isAscending": false}],
                        "position": position, "limit": PAGE, "calculateTotal": true}, "q"],
                    ["Email/get", {"accountId": account,
                        "#ids": {"resultOf": "q", "name": "Email/query", "path": "/ids"},
                        "properties": ["id", "subject", "from", "receivedAt", "keywords", "pec"]}, "g"]
                ]),
            )
            .await?;
        let q = result(&r[0])?;
        let emails = list(&result(&r[1])?);
        let total = q["total"].as_u64().unwrap_or(0) as usize;
        let position = q["position"].as_u64().unwrap_or(0) as usize;
        let listing = Listing {
            emails: &emails,
            position,
            total,
            size: PAGE,
        };
        Ok(html(
            StatusCode::OK,
            pages::folder(user, &mailboxes, mailbox, listing, notice),
        ))
    }

    /// The search page: messages of every folder whose text holds `q` (newest first, a
    /// page of them); pec-jmap refuses to read too many messages, and the page says so.
    async fn search(&self, user: User<'_>, query: &str) -> Result<Reply> {
        let text: String = param(query, "q")
            .map(|v| v.trim().chars().take(MAX_SEARCH).collect())
            .unwrap_or_default();
        let account = account_id(user.address);
        let mut calls = vec![json!(["Mailbox/get", {"accountId": account}, "m"])];
        if !text.is_empty() {
            calls.push(json!(["Email/query", {"accountId": account,
                "filter": {"text": text},
                "sort": [{"property": "receivedAt", "isAscending": false}],
                "limit": PAGE}, "q"]));
            calls.push(json!(["Email/get", {"accountId": account,
                "#ids": {"resultOf": "q", "name": "Email/query", "path": "/ids"},
                "properties": ["id", "subject", "from", "receivedAt", "keywords", "pec"]}, "g"]));
        }
        let r = self.call(user.address, Value::Array(calls)).await?;
        let mailboxes = list(&result(&r[0])?);
        let (emails, note) = match r.get(1).map(result) {
            None => (Vec::new(), Some("Scrivere il testo da cercare.")),
            Some(Err(Error::Method(kind, _))) if kind == "unsupportedFilter" => (
                Vec::new(),
                Some(
                    "Troppi messaggi per una ricerca sul testo: riprovare con parole più precise.",
                ),
            ),
            Some(Err(e)) => return Err(e),
            Some(Ok(_)) => (list(&result(&r[2])?), None),
        };
        Ok(html(
            StatusCode::OK,
            pages::search(user, &mailboxes, &text, &emails, note),
        ))
    }

    /// A message's page; opening an unread message marks it read (a read one is not
    /// written to again).
    async fn message(&self, user: User<'_>, id: &str) -> Result<Reply> {
        let account = account_id(user.address);
        let r = self
            .call(
                user.address,
                json!([
                    ["Email/get", {"accountId": account, "ids": [id],
                        "properties": ["id", "subject", "from", "to", "cc", "receivedAt",
                            "keywords", "pec", "attachments", "textBody", "bodyValues",
                            "mailboxIds", "blobId"],
                        "fetchTextBodyValues": true, "maxBodyValueBytes": MAX_BODY_VALUE}, "g"]
                ]),
            )
            .await?;
        let email = list(&result(&r[0])?)
            .into_iter()
            .next()
            .ok_or(Error::NotFound)?;
        if email["keywords"].get("$seen").is_none() {
            let r = self
                .call(
                    user.address,
                    json!([["Email/set", {"accountId": account,
                        "update": {id: {"keywords/$seen": true}}}, "s"]]),
                )
                .await?;
            result(&r[0])?;
        }
        let mailboxes = self.mailboxes(user.address).await?;
        let original = self.original(user.address, &email).await?;
        let found = self.receipts(user.address, &email).await?;
        let states = found.as_ref().map(|emails| {
            let pecs: Vec<Value> = emails.iter().map(|e| e["pec"].clone()).collect();
            receipts::states(&email["pec"], &pecs)
        });
        let extras = Extras {
            original: original.as_ref().map(|(b, o)| (b.as_str(), o)),
            receipts: found
                .as_deref()
                .zip(states.as_deref())
                .map(|(emails, states)| Receipts { emails, states }),
        };
        Ok(html(
            StatusCode::OK,
            pages::message(user, &mailboxes, &email, &extras),
        ))
    }

    /// The original an envelope carries: the blob id of its `postacert.eml` and what it
    /// says; `None` for a message without one.
    async fn original(&self, address: &str, email: &Value) -> Result<Option<(String, Original)>> {
        if email["pec"]["original"].is_null() {
            return Ok(None);
        }
        let blob = email["attachments"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|a| a["type"] == "message/rfc822")
            .and_then(|a| a["blobId"].as_str());
        let Some((text, parsed)) = blob.and_then(|b| BlobId::parse(b).map(|p| (b, p))) else {
            return Ok(None);
        };
        let bytes = self.blob(address, parsed).await?;
        Ok(original::read(&bytes).map(|o| (text.to_string(), o)))
    }

    /// For a PEC message the user sent (they are the daticert's mittente): every receipt
    /// of it, found by `pecRefersTo`, those outside the security archive if any.
    async fn receipts(&self, address: &str, email: &Value) -> Result<Option<Vec<Value>>> {
        let pec = &email["pec"];
        let sent_by_user = pec["daticert"]["mittente"]
            .as_str()
            .is_some_and(|m| m.eq_ignore_ascii_case(address));
        let key = pec["refersTo"]
            .as_str()
            .or_else(|| pec["daticert"]["msgid"].as_str());
        let (true, Some(key)) = (sent_by_user, key) else {
            return Ok(None);
        };
        let account = account_id(address);
        let r = self
            .call(
                address,
                json!([
                    ["Email/query", {"accountId": account, "filter": {"pecRefersTo": key},
                        "limit": MAX_RECEIPTS}, "q"],
                    ["Email/get", {"accountId": account,
                        "#ids": {"resultOf": "q", "name": "Email/query", "path": "/ids"},
                        "properties": ["id", "subject", "receivedAt", "pec", "mailboxIds"]}, "g"]
                ]),
            )
            .await?;
        let all = match result(&r[1]) {
            Ok(v) => list(&v),
            Err(Error::Method(kind, why)) if kind != "serverUnavailable" => {
                debug!("webmail: receipts not searched: {kind}: {why}");
                return Ok(None);
            }
            Err(e) => return Err(e),
        };
        let archive = Place::Archive.mailbox_id();
        let (archived, current): (Vec<Value>, Vec<Value>) = all
            .into_iter()
            .filter(|e| e["pec"]["kind"] != "posta-certificata")
            .partition(|e| e["mailboxIds"].get(&archive).is_some());
        Ok(Some(if current.is_empty() {
            archived
        } else {
            current
        }))
    }

    /// A blob of the user's messages.
    async fn blob(&self, address: &str, blob: BlobId) -> Result<Vec<u8>> {
        match self.jmap.read_blob(address.to_string(), blob).await {
            Ok(Some(b)) => Ok(b),
            Ok(None) => Err(Error::NotFound),
            Err(pec_jmap::Unavailable) => Err(Error::Unavailable),
        }
    }

    /// A download of a message (`.eml`) or one of its parts.
    async fn download(&self, user: User<'_>, blob: &str, name: &str, query: &str) -> Result<Reply> {
        let parsed = BlobId::parse(blob).ok_or(Error::NotFound)?;
        let bytes = self.blob(user.address, parsed).await?;
        Ok(attachment(
            bytes,
            name,
            &pec_jmap::blob::content_type(query),
        ))
    }

    /// A download of an attachment of the original inside `postacert.eml`.
    async fn inner(&self, user: User<'_>, blob: &str, part: &str, name: &str) -> Result<Reply> {
        let part: u32 = part.parse().map_err(|_| Error::NotFound)?;
        let (contents, media_type) = self
            .attachment_bytes(user.address, blob, Some(part))
            .await?;
        let query = format!("type={media_type}");
        Ok(attachment(
            contents,
            name,
            &pec_jmap::blob::content_type(&query),
        ))
    }

    /// The bytes and media type of an attachment: blob `blob` itself, or (`part` given)
    /// the attachment `part` of the original that blob is.
    async fn attachment_bytes(
        &self,
        address: &str,
        blob: &str,
        part: Option<u32>,
    ) -> Result<(Vec<u8>, String)> {
        let parsed = BlobId::parse(blob).ok_or(Error::NotFound)?;
        let bytes = self.blob(address, parsed).await?;
        match part {
            None => Ok((bytes, "application/octet-stream".to_string())),
            Some(part) => {
                let (contents, _, media_type) =
                    original::attachment(&bytes, part).ok_or(Error::NotFound)?;
                Ok((contents, media_type))
            }
        }
    }

    /// The attachment a `.p7m` query names (`blob`, `parte`, `nome`): its name and bytes.
    async fn named_attachment(&self, address: &str, query: &str) -> Result<(String, Vec<u8>)> {
        let blob = param(query, "blob").ok_or(Error::NotFound)?;
        let part = match param(query, "parte") {
            Some(p) => Some(p.parse::<u32>().map_err(|_| Error::NotFound)?),
            None => None,
        };
        let name = param(query, "nome").unwrap_or_default();
        let (bytes, _) = self.attachment_bytes(address, &blob, part).await?;
        Ok((name, bytes))
    }

    /// The compose form: empty, or (`rispondi=<id>`, `tutti=1`) a reply to a message.
    async fn compose(&self, user: User<'_>, query: &str) -> Result<Reply> {
        let draft = match param(query, "rispondi") {
            Some(id) => {
                let all = param(query, "tutti").is_some_and(|t| t == "1");
                self.reply(user.address, &id, all).await?
            }
            None => crate::compose::Draft::default(),
        };
        let mailboxes = self.mailboxes(user.address).await?;
        Ok(html(
            StatusCode::OK,
            pages::compose(user, &mailboxes, &draft, None),
        ))
    }

    /// The reply to message `id`, quoting its text (an envelope's: its original's).
    async fn reply(&self, address: &str, id: &str, all: bool) -> Result<crate::compose::Draft> {
        let r = self
            .call(
                address,
                json!([["Email/get", {"accountId": account_id(address), "ids": [id],
                    "properties": ["id", "subject", "from", "replyTo", "to", "cc", "messageId",
                        "pec", "attachments", "textBody", "bodyValues"],
                    "fetchTextBodyValues": true, "maxBodyValueBytes": MAX_BODY_VALUE}, "g"]]),
            )
            .await?;
        let email = list(&result(&r[0])?)
            .into_iter()
            .next()
            .ok_or(Error::NotFound)?;
        let text = match self.original(address, &email).await? {
            Some((_, o)) => o.text,
            None => pages::body_text(&email),
        };
        Ok(crate::reply::draft(&email, &text, address, all))
    }

    /// "Verifica firma" of a `.p7m` attachment.
    async fn verify(&self, user: User<'_>, query: &str) -> Result<Reply> {
        let (name, bytes) = self.named_attachment(user.address, query).await?;
        let mailboxes = self.mailboxes(user.address).await?;
        let given = name.clone();
        let verification =
            tokio::task::spawn_blocking(move || signed::verify(&bytes, &given, chrono::Utc::now()))
                .await
                .map_err(|_| Error::Unavailable)?;
        Ok(html(
            StatusCode::OK,
            pages::verification(user, &mailboxes, &name, verification.as_ref(), query),
        ))
    }

    /// The document inside a `.p7m` attachment, for download.
    async fn document(&self, user: User<'_>, query: &str) -> Result<Reply> {
        let (name, bytes) = self.named_attachment(user.address, query).await?;
        let opened = tokio::task::spawn_blocking(move || {
            let content = pec_proto::document::signed_content(&bytes)?;
            let format = pec_proto::document::sniff(&content);
            Some((signed::document_name(&name, &format), content))
        })
        .await
        .map_err(|_| Error::Unavailable)?;
        let (name, content) = opened.ok_or(Error::NotFound)?;
        Ok(attachment(content, &name, "application/octet-stream"))
    }
}

/// The value of parameter `name` of a query string.
fn param(query: &str, name: &str) -> Option<String> {
    form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        assert!(serves("/webmail") && serves("/webmail/x") && !serves("/webmailx"));
    }
}
