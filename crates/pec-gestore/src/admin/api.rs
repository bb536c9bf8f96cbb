//! The administration API over HTTPS, under [`PREFIX`] (documented in
//! `docs/openapi.yaml`): the province's administrators manage enti, their administrators
//! and every mailbox; an ente's administrators manage their own domains' mailboxes only
//! (403 elsewhere). Requests carry HTTP Basic credentials of an administrator (`pecd admin
//! add`, `pecd ente admin add`), checked by the same bounded argon2 pool, with the same
//! per-client penalties, as mail logins; or `Authorization: Bearer` with an API token of
//! an administrator ([`super::tokens`], managed under `tokens` in [`tokens`]), which acts
//! with the same confinement and earns the same penalties when wrong. New passwords are
//! hashed in that pool too ([`NewPassword::hash`]), never on the request's thread. Bodies are JSON, at most [`MAX_BODY`] bytes;
//! errors are JSON `{"code", "message"}`: a stable code for programs, an Italian message
//! for people.

use std::net::IpAddr;
use std::sync::Arc;

use base64::Engine;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, WWW_AUTHENTICATE};
use hyper::{Method, Request, Response, StatusCode};
use pec_net::Authenticator;
use pec_store::{ArchiveOptions, ArchiveScope, Ente};
use serde::Deserialize;
use tracing::warn;

use super::size::parse_size;
use super::usage::Period;
use super::{Actor, Administration, NewPassword};
use crate::error::{Error, Refusal, RefusalKind};
use crate::service::blocking;

mod tokens;

/// The path every API request starts with.
pub const PREFIX: &str = "/api/v1/";

/// Largest request body read.
pub const MAX_BODY: usize = 64 * 1024;

/// Longest path segment taken (an address is at most 320 bytes).
const MAX_SEGMENT: usize = 512;

/// The API: the administration rules and the password check of the gestore's logins.
pub struct AdminApi {
    /// The rules, over the gestore's store and clock.
    pub admin: Administration,
    /// The password check shared with SMTP, IMAP and POP3 (pool and penalties).
    pub auth: Arc<Authenticator>,
}

/// A size in a request: bytes as a number, or text such as `"2GiB"`.
#[derive(Deserialize)]
#[serde(untagged)]
enum Size {
    Bytes(u64),
    Text(String),
}

impl Size {
    fn bytes(&self) -> crate::Result<u64> {
        match self {
            Size::Bytes(n) => Ok(*n),
            Size::Text(t) => parse_size(t),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewEnte {
    name: String,
    domains: Vec<String>,
    allotment: Size,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewAdmin {
    login: String,
    password: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewMailbox {
    address: String,
    password: String,
    quota: Option<Size>,
    #[serde(default)]
    ricevute: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Password {
    password: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Quota {
    quota: Size,
}

/// A protocol number written back by a registry.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Protocol {
    number: String,
    date: Option<String>,
}

/// A change of a mailbox's archive options: what is not given stays as it is.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ArchiveChange {
    /// `tutto` or `pec`.
    scope: Option<String>,
    sent: Option<bool>,
    received: Option<bool>,
    quota: Option<Size>,
}

impl ArchiveChange {
    /// `current` with this change applied.
    fn apply(&self, current: ArchiveOptions) -> crate::Result<ArchiveOptions> {
        let scope = match self.scope.as_deref() {
            None => current.scope,
            Some(s) => ArchiveScope::parse(s).ok_or_else(|| {
                Refusal::invalid(
                    "bad-scope",
                    format!("ambito {s:?} non valido: \"tutto\" oppure \"pec\""),
                )
            })?,
        };
        Ok(ArchiveOptions {
            scope,
            sent: self.sent.unwrap_or(current.sent),
            received: self.received.unwrap_or(current.received),
            quota: match &self.quota {
                Some(q) => q.bytes()?,
                None => current.quota,
            },
        })
    }
}

/// Archive options as the API shows them.
fn archive_json(o: &ArchiveOptions) -> serde_json::Value {
    serde_json::json!({
        "scope": o.scope.as_str(),
        "sent": o.sent,
        "received": o.received,
        "quota": o.quota,
    })
}

pub(crate) type Answer = Response<Full<Bytes>>;

pub(crate) fn json(status: StatusCode, value: &serde_json::Value) -> Answer {
    let mut r = Response::new(Full::new(Bytes::from(value.to_string())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    r
}

pub(crate) fn problem(status: StatusCode, code: &str, message: &str) -> Answer {
    json(
        status,
        &serde_json::json!({ "code": code, "message": message }),
    )
}

pub(crate) fn no_content() -> Answer {
    let mut r = Response::new(Full::new(Bytes::new()));
    *r.status_mut() = StatusCode::NO_CONTENT;
    r
}

/// The answer to an error of the rules or of the store.
pub(crate) fn failure(e: &Error) -> Answer {
    let (status, code, message) = explain(e);
    problem(status, code, &message)
}

/// What an error of the rules or of the store means to an administrator: the HTTP
/// status, a stable code and an Italian message (the API's and the console's).
pub(crate) fn explain(e: &Error) -> (StatusCode, &'static str, String) {
    use pec_store::Error as S;
    match e {
        Error::Refused(r) => {
            let status = match r.kind {
                RefusalKind::Forbidden => StatusCode::FORBIDDEN,
                RefusalKind::Invalid => StatusCode::BAD_REQUEST,
                RefusalKind::Conflict => StatusCode::CONFLICT,
            };
            (status, r.code, r.message.clone())
        }
        Error::Store(S::NoSuchAccount(a)) => (
            StatusCode::NOT_FOUND,
            "no-such-mailbox",
            format!("la casella {a} non esiste"),
        ),
        Error::Store(S::NoSuchDomain(d)) => (
            StatusCode::NOT_FOUND,
            "no-such-domain",
            format!("il dominio {d} non è gestito"),
        ),
        Error::Store(S::NoSuchEnte(n)) => (
            StatusCode::NOT_FOUND,
            "no-such-ente",
            format!("l'ente {n} non esiste"),
        ),
        Error::Store(S::NoSuchToken(n)) => (
            StatusCode::NOT_FOUND,
            "no-such-token",
            format!("il token {n} non esiste"),
        ),
        Error::Store(S::AlreadyExists(n)) => (
            StatusCode::CONFLICT,
            "already-exists",
            format!("{n} esiste già"),
        ),
        Error::Store(S::NoSuchEvent(id)) => (
            StatusCode::NOT_FOUND,
            "no-such-event",
            format!("l'evento {id} non esiste"),
        ),
        Error::Store(S::InvalidName(n)) => (
            StatusCode::BAD_REQUEST,
            "bad-name",
            format!("nome non valido: {n}"),
        ),
        other => {
            warn!("administration: {other}");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "servizio momentaneamente non disponibile, riprovare più tardi".into(),
            )
        }
    }
}

/// `%XX` escapes of a path segment decoded; `None` if malformed or too long.
fn decode_segment(s: &str) -> Option<String> {
    if s.len() > MAX_SEGMENT {
        return None;
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The credentials an `Authorization` header carries.
enum Credentials {
    /// HTTP Basic: a login and a password.
    Basic(String, String),
    /// A bearer token.
    Bearer(String),
}

/// The credentials of the request's `Authorization` header.
fn credentials(req: &Request<Incoming>) -> Option<Credentials> {
    let value = req.headers().get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if encoded.len() > 4096 {
        return None;
    }
    if scheme.eq_ignore_ascii_case("bearer") {
        return Some(Credentials::Bearer(encoded.trim().to_string()));
    }
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (login, password) = text.split_once(':')?;
    Some(Credentials::Basic(login.to_string(), password.to_string()))
}

/// The value of `key` in a query string.
fn query_value(query: &str, key: &str) -> Option<String> {
    form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
}

impl AdminApi {
    /// Who sent the request: the administrator whose Basic credentials it carries, or
    /// for whom its bearer token acts (then `true`).
    async fn actor(&self, req: &Request<Incoming>, peer: IpAddr) -> Result<(Actor, bool), Answer> {
        let unauthorized = || {
            let mut r = problem(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "credenziali mancanti o errate",
            );
            for scheme in [
                "Basic realm=\"pecd\", charset=\"UTF-8\"",
                "Bearer realm=\"pecd\"",
            ] {
                r.headers_mut().append(
                    WWW_AUTHENTICATE,
                    hyper::header::HeaderValue::from_static(scheme),
                );
            }
            r
        };
        match credentials(req) {
            None => Err(unauthorized()),
            Some(Credentials::Bearer(token)) => {
                let found = self
                    .auth
                    .penalised(peer, async {
                        match blocking(|| self.admin.token_actor(&token)) {
                            Ok(actor) => actor.map(Ok),
                            // The store did not answer: not the client's failure.
                            Err(e) => Some(Err(e)),
                        }
                    })
                    .await;
                match found {
                    Some(Ok(actor)) => Ok((actor, true)),
                    Some(Err(e)) => Err(failure(&e)),
                    None => Err(unauthorized()),
                }
            }
            Some(Credentials::Basic(login, password)) => {
                let admin = blocking(|| self.admin.store.find_admin(&login))
                    .map_err(|e| failure(&e.into()))?;
                let stored = admin.as_ref().map(|a| a.password_hash.as_str());
                if !self.auth.verify(peer, &password, stored).await {
                    return Err(unauthorized());
                }
                match admin {
                    Some(a) => Ok((
                        Actor {
                            name: a.login,
                            ente: a.ente,
                        },
                        false,
                    )),
                    None => Err(unauthorized()),
                }
            }
        }
    }

    /// A new password checked and hashed in the pool.
    async fn new_password(&self, password: &str) -> Result<NewPassword, Answer> {
        NewPassword::hash(&self.auth, password)
            .await
            .map_err(|e| failure(&e))
    }

    /// The request's JSON body as `T`.
    pub(crate) async fn body<T: for<'de> Deserialize<'de>>(
        req: Request<Incoming>,
    ) -> Result<T, Answer> {
        let bytes = Limited::new(req.into_body(), MAX_BODY)
            .collect()
            .await
            .map_err(|_| {
                problem(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "body-too-large",
                    &format!("corpo della richiesta oltre {MAX_BODY} byte o interrotto"),
                )
            })?
            .to_bytes();
        serde_json::from_slice(&bytes).map_err(|e| {
            problem(
                StatusCode::BAD_REQUEST,
                "bad-json",
                &format!("JSON non valido: {e}"),
            )
        })
    }

    /// The answer to a request under [`PREFIX`] from `peer`.
    pub async fn answer(&self, req: Request<Incoming>, peer: IpAddr) -> Answer {
        let (actor, bearer) = match self.actor(&req, peer).await {
            Ok(a) => a,
            Err(r) => return r,
        };
        let path = req.uri().path().to_string();
        let query = req.uri().query().unwrap_or("").to_string();
        let rest = path.strip_prefix(PREFIX).unwrap_or("");
        let segments: Option<Vec<String>> = rest
            .split('/')
            .filter(|s| !s.is_empty())
            .take(5)
            .map(decode_segment)
            .collect();
        let Some(segments) = segments else {
            return problem(StatusCode::BAD_REQUEST, "bad-path", "percorso non valido");
        };
        let segs: Vec<&str> = segments.iter().map(String::as_str).collect();
        let method = req.method().clone();
        let a = &self.admin;
        let done = |r: crate::Result<()>| r.map_or_else(|e| failure(&e), |()| no_content());
        match (method, segs.as_slice()) {
            (Method::GET, ["enti"]) => match blocking(|| a.enti(&actor)) {
                Ok(enti) => json(StatusCode::OK, &serde_json::Value::Array(enti_json(&enti))),
                Err(e) => failure(&e),
            },
            (Method::POST, ["enti"]) => {
                let new: NewEnte = match Self::body(req).await {
                    Ok(b) => b,
                    Err(r) => return r,
                };
                let result = new.allotment.bytes().and_then(|allotment| {
                    let ente = Ente {
                        name: new.name.trim().to_string(),
                        domains: new
                            .domains
                            .iter()
                            .map(|d| d.trim().to_lowercase())
                            .collect(),
                        allotment,
                    };
                    blocking(|| a.add_ente(&actor, &ente)).map(|()| ente)
                });
                match result {
                    Ok(ente) => json(StatusCode::CREATED, &enti_json(&[ente])[0]),
                    Err(e) => failure(&e),
                }
            }
            (Method::POST, ["enti", ente, "admins"]) => {
                let ente = ente.to_string();
                let new: NewAdmin = match Self::body(req).await {
                    Ok(b) => b,
                    Err(r) => return r,
                };
                let password = match self.new_password(&new.password).await {
                    Ok(p) => p,
                    Err(r) => return r,
                };
                match blocking(|| a.add_admin(&actor, &new.login, Some(&ente), &password)) {
                    Ok(()) => json(
                        StatusCode::CREATED,
                        &serde_json::json!({ "login": new.login.trim().to_lowercase(), "ente": ente }),
                    ),
                    Err(e) => failure(&e),
                }
            }
            (Method::GET, ["mailboxes"]) => {
                let domain = query_value(&query, "domain");
                match blocking(|| a.mailboxes(&actor, domain.as_deref())) {
                    Ok(list) => json(StatusCode::OK, &serde_json::json!(list)),
                    Err(e) => failure(&e),
                }
            }
            (Method::POST, ["mailboxes"]) => {
                let new: NewMailbox = match Self::body(req).await {
                    Ok(b) => b,
                    Err(r) => return r,
                };
                let password = match self.new_password(&new.password).await {
                    Ok(p) => p,
                    Err(r) => return r,
                };
                let result = new
                    .quota
                    .as_ref()
                    .map(Size::bytes)
                    .transpose()
                    .and_then(|quota| {
                        blocking(|| {
                            a.create_mailbox(&actor, &new.address, &password, quota, new.ricevute)
                        })
                    });
                match result {
                    Ok(account) => json(
                        StatusCode::CREATED,
                        &serde_json::json!({
                            "address": account.address,
                            "quota": account.quota,
                            "used": 0,
                            "suspended": false,
                        }),
                    ),
                    Err(e) => failure(&e),
                }
            }
            (Method::DELETE, ["mailboxes", address]) => {
                let address = address.to_string();
                done(blocking(|| a.remove_mailbox(&actor, &address)))
            }
            (Method::PUT, ["mailboxes", address, "password"]) => {
                let address = address.to_string();
                let p = match Self::body::<Password>(req).await {
                    Ok(p) => p,
                    Err(r) => return r,
                };
                match self.new_password(&p.password).await {
                    Ok(password) => done(blocking(|| a.set_password(&actor, &address, &password))),
                    Err(r) => r,
                }
            }
            (Method::PUT, ["mailboxes", address, "quota"]) => {
                let address = address.to_string();
                match Self::body::<Quota>(req).await {
                    Ok(q) => done(
                        q.quota
                            .bytes()
                            .and_then(|quota| blocking(|| a.set_quota(&actor, &address, quota))),
                    ),
                    Err(r) => r,
                }
            }
            (Method::GET, ["mailboxes", address, "archive"]) => {
                match blocking(|| a.archive_options(&actor, address)) {
                    Ok(o) => json(StatusCode::OK, &archive_json(&o)),
                    Err(e) => failure(&e),
                }
            }
            (Method::PUT, ["mailboxes", address, "archive"]) => {
                let address = address.to_string();
                let change = match Self::body::<ArchiveChange>(req).await {
                    Ok(c) => c,
                    Err(r) => return r,
                };
                let set = blocking(|| {
                    let options = change.apply(a.archive_options(&actor, &address)?)?;
                    a.set_archive_options(&actor, &address, &options)?;
                    Ok(options)
                });
                match set {
                    Ok(o) => json(StatusCode::OK, &archive_json(&o)),
                    Err(e) => failure(&e),
                }
            }
            (Method::POST, ["mailboxes", address, action @ ("suspend" | "reactivate")]) => {
                let on = *action == "suspend";
                done(blocking(|| a.suspend(&actor, address, on)))
            }
            (Method::GET, ["usage"]) => {
                let (Some(from), Some(to)) =
                    (query_value(&query, "from"), query_value(&query, "to"))
                else {
                    return problem(
                        StatusCode::BAD_REQUEST,
                        "missing-period",
                        "indicare il periodo con from=AAAA-MM-GG e to=AAAA-MM-GG",
                    );
                };
                let ente = query_value(&query, "ente");
                let report = Period::parse(&from, &to)
                    .and_then(|p| blocking(|| a.usage(&actor, ente.as_deref(), p)));
                match (report, query_value(&query, "format").as_deref()) {
                    (Err(e), _) => failure(&e),
                    (Ok(r), Some("csv")) => {
                        let mut resp = Response::new(Full::new(Bytes::from(r.csv())));
                        resp.headers_mut().insert(
                            CONTENT_TYPE,
                            hyper::header::HeaderValue::from_static("text/csv; charset=utf-8"),
                        );
                        resp
                    }
                    (Ok(r), _) => json(StatusCode::OK, &serde_json::json!(r)),
                }
            }
            (Method::GET, ["events"]) => {
                let number = |key: &str, default: i64| match query_value(&query, key) {
                    None => Some(default),
                    Some(v) => v.parse::<i64>().ok().filter(|n| *n >= 0),
                };
                let (Some(after), Some(limit)) = (
                    number("after", 0),
                    number("limit", super::events::DEFAULT_LIMIT as i64),
                ) else {
                    return problem(
                        StatusCode::BAD_REQUEST,
                        "bad-cursor",
                        "after e limit devono essere numeri interi non negativi",
                    );
                };
                let domain = query_value(&query, "domain");
                let limit = usize::try_from(limit).unwrap_or(usize::MAX);
                match blocking(|| a.events(&actor, domain.as_deref(), after, limit)) {
                    Ok(list) => {
                        let next = list.last().map_or(after, |e| e.id);
                        let events: Vec<serde_json::Value> = list
                            .iter()
                            .map(|e| crate::protocol::event::envelope(e, true))
                            .collect();
                        json(
                            StatusCode::OK,
                            &serde_json::json!({ "events": events, "next": next }),
                        )
                    }
                    Err(e) => failure(&e),
                }
            }
            (Method::PUT, ["events", id, "protocol"]) => {
                let Ok(id) = id.parse::<i64>() else {
                    return problem(
                        StatusCode::NOT_FOUND,
                        "no-such-event",
                        "identificativo di evento non valido",
                    );
                };
                let p = match Self::body::<Protocol>(req).await {
                    Ok(p) => p,
                    Err(r) => return r,
                };
                match blocking(|| a.set_protocol_number(&actor, id, &p.number, p.date.as_deref())) {
                    Ok(e) => json(StatusCode::OK, &crate::protocol::event::envelope(&e, true)),
                    Err(e) => failure(&e),
                }
            }
            (method, ["tokens", rest @ ..]) => {
                tokens::answer(a, &actor, bearer, method, rest, req).await
            }
            _ => problem(
                StatusCode::NOT_FOUND,
                "not-found",
                "risorsa o metodo inesistente",
            ),
        }
    }
}

fn enti_json(enti: &[Ente]) -> Vec<serde_json::Value> {
    enti.iter()
        .map(|e| {
            serde_json::json!({
                "name": e.name,
                "domains": e.domains,
                "allotment": e.allotment,
            })
        })
        .collect()
}
