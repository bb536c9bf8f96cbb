//! The administration console at [`PREFIX`] on the HTTPS listener: server-rendered
//! pages in Italian for the province's administrators and the enti's, on the webmail's
//! web stack ([`pec_webmail::web`]: headers and content security policy, `Secure`
//! cookies, bounded forms, the login form's double-submit token; [`pec_webmail::sessions`]
//! for sessions and CSRF tokens). The login checks the administrator's password in the
//! same argon2 pool, with the same per-client penalty, as the API and mail logins.
//!
//! Every action goes through [`Administration`], as the API's do: the same checks (an
//! ente's administrator sees and touches only its own domains, 403 elsewhere, even by
//! URL), the same legal log record naming who acted, new passwords hashed in the pool.
//! After an action the browser is sent back to the page (`303`) with the outcome named
//! in the query (`esito`), from a fixed list.

mod pages;

use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use hyper::body::Body;
use hyper::{Method, Request, StatusCode};
use pec_store::{ArchiveOptions, ArchiveScope};
use pec_webmail::html::url_segment;
use pec_webmail::sessions::{SessionLimits, Sessions, same_token};
use pec_webmail::web::{
    Form, Reply, attachment, cookie_value, html, login_page, login_token_matches, percent_decode,
    read_form, redirect, set_cookie,
};
use tokio::time::Instant;
use tracing::debug;

use super::api::{AdminApi, explain};
use super::size::parse_size;
use super::usage::Period;
use super::{Actor, Administration, NewPassword};
use crate::error::{Error, Refusal, Result};
use crate::service::blocking;
use pages::Who;

/// Where the console lives.
pub const PREFIX: &str = "/console/";
/// The session cookie.
pub const COOKIE_NAME: &str = "pecadm";
/// The login form's double-submit CSRF cookie.
pub const LOGIN_COOKIE: &str = "pecadm_login";

/// Whether `path` is the console's (the HTTP server hands those to [`Console::answer`]).
pub fn serves(path: &str) -> bool {
    path == "/console" || path.starts_with(PREFIX)
}

/// The console: the API's administration and password check, and its own sessions.
pub struct Console {
    api: Arc<AdminApi>,
    sessions: Mutex<Sessions>,
}

/// The page of a refusal or a failure.
fn failure(who: Option<Who<'_>>, e: &Error) -> Reply {
    let (status, _, message) = explain(e);
    let title = match status {
        StatusCode::FORBIDDEN => "Operazione non consentita",
        StatusCode::NOT_FOUND => "Non trovato",
        StatusCode::SERVICE_UNAVAILABLE => "Servizio non disponibile",
        _ => "Richiesta non accolta",
    };
    html(status, pages::notice(who, title, &message))
}

/// The page of a path the console does not have.
fn not_found(who: Who<'_>) -> Reply {
    html(
        StatusCode::NOT_FOUND,
        pages::notice(
            Some(who),
            "Pagina inesistente",
            "La pagina richiesta non esiste.",
        ),
    )
}

/// A quota typed in a form: empty is `None`.
fn quota_field(text: &str) -> Result<Option<u64>> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    parse_size(text).map(Some)
}

/// A mailbox page's path.
fn mailbox_path(address: &str) -> String {
    format!("{PREFIX}caselle/{}", url_segment(address))
}

impl Console {
    /// The console over the API's administration and password check.
    pub fn new(api: Arc<AdminApi>, limits: SessionLimits) -> Self {
        Console {
            api,
            sessions: Mutex::new(Sessions::new(limits)),
        }
    }

    fn sessions(&self) -> MutexGuard<'_, Sessions> {
        self.sessions.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn admin(&self) -> &Administration {
        &self.api.admin
    }

    fn login_page(status: StatusCode, error: Option<&str>) -> Reply {
        login_page(status, LOGIN_COOKIE, PREFIX, |token| {
            pages::login(token, error)
        })
        .unwrap_or_else(|| {
            failure(
                None,
                &Error::Stored("no randomness for a login token".into()),
            )
        })
    }

    /// The answer to a request on one of the paths [`serves`] names, from `peer`.
    pub async fn answer<B>(&self, req: Request<B>, peer: IpAddr) -> Reply
    where
        B: Body + Send,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let path = req.uri().path().to_string();
        let method = req.method().clone();
        if path == "/console" {
            return redirect(PREFIX);
        }
        if path == "/console/accedi" && method == Method::POST {
            return self.login(req, peer).await;
        }
        let id = cookie_value(req.headers(), COOKIE_NAME);
        let session = id
            .as_deref()
            .and_then(|id| self.sessions().get(id, Instant::now()));
        // The administrator as stored now: one removed since the login is out.
        let found = match &session {
            Some(s) => match blocking(|| self.admin().store.find_admin(&s.address)) {
                Ok(a) => a.map(|a| {
                    (
                        s.clone(),
                        Actor {
                            name: a.login,
                            ente: a.ente,
                        },
                    )
                }),
                Err(e) => return failure(None, &e.into()),
            },
            None => None,
        };
        let Some((session, actor)) = found else {
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
        let who = Who {
            actor: &actor,
            csrf: &session.csrf,
        };
        let rest = path.strip_prefix(PREFIX).unwrap_or("");
        let segments: Vec<String> = rest.split('/').take(4).map(percent_decode).collect();
        let segs: Vec<&str> = segments.iter().map(String::as_str).collect();
        let query = req.uri().query().unwrap_or("").to_string();
        match method {
            Method::POST => {
                let Some(form) = read_form(req).await else {
                    return html(
                        StatusCode::BAD_REQUEST,
                        pages::notice(
                            Some(who),
                            "Richiesta non valida",
                            "Il modulo è troppo grande.",
                        ),
                    );
                };
                if !same_token(form.get("csrf"), &session.csrf) {
                    debug!(%peer, "console: a POST without the session's CSRF token");
                    return html(
                        StatusCode::FORBIDDEN,
                        pages::notice(
                            None,
                            "Richiesta rifiutata",
                            "Il modulo non proviene da questa sessione.",
                        ),
                    );
                }
                if segs.as_slice() == ["esci"] {
                    if let Some(id) = id {
                        self.sessions().close(&id);
                    }
                    let mut r = redirect(PREFIX);
                    set_cookie(&mut r, COOKIE_NAME, "", PREFIX);
                    return r;
                }
                self.act(who, &segs, &form)
                    .await
                    .unwrap_or_else(|e| failure(Some(who), &e))
            }
            Method::GET | Method::HEAD => self
                .page(who, &segs, &query)
                .unwrap_or_else(|e| failure(Some(who), &e)),
            _ => html(
                StatusCode::METHOD_NOT_ALLOWED,
                pages::notice(Some(who), "Metodo non ammesso", "Richiesta non valida."),
            ),
        }
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
        let login = form.get("username").trim().to_lowercase();
        let admin = match blocking(|| self.admin().store.find_admin(&login)) {
            Ok(a) => a,
            Err(_) => {
                return Self::login_page(
                    StatusCode::SERVICE_UNAVAILABLE,
                    Some("Servizio temporaneamente non disponibile: riprovare."),
                );
            }
        };
        let stored = admin.as_ref().map(|a| a.password_hash.as_str());
        let matched = self
            .api
            .auth
            .verify(peer, form.get("password"), stored)
            .await;
        match admin {
            Some(a) if matched => {
                let Some(id) = self.sessions().open(&a.login, Instant::now()) else {
                    return Self::login_page(
                        StatusCode::SERVICE_UNAVAILABLE,
                        Some("Servizio temporaneamente non disponibile: riprovare."),
                    );
                };
                let mut r = redirect(PREFIX);
                set_cookie(&mut r, COOKIE_NAME, &id, PREFIX);
                set_cookie(&mut r, LOGIN_COOKIE, "", PREFIX);
                r
            }
            _ => Self::login_page(
                StatusCode::UNAUTHORIZED,
                Some("Nome utente o password non corretti."),
            ),
        }
    }

    /// A GET of a logged-in administrator.
    fn page(&self, who: Who<'_>, segs: &[&str], query: &str) -> Result<Reply> {
        let a = self.admin();
        let actor = who.actor;
        let param = |key: &str| {
            form_urlencoded::parse(query.as_bytes())
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.into_owned())
        };
        let outcome = param("esito");
        Ok(match segs {
            [""] => {
                let (enti, mailboxes) =
                    blocking(|| Ok::<_, Error>((a.enti(actor)?, a.mailboxes(actor, None)?)))?;
                let assigned = |domains: &[String]| {
                    mailboxes
                        .iter()
                        .filter(|m| domains.contains(&crate::service::domain_of(&m.address)))
                        .map(|m| m.quota)
                        .sum::<u64>()
                };
                let enti: Vec<_> = enti.iter().map(|e| (e, assigned(&e.domains))).collect();
                html(
                    StatusCode::OK,
                    pages::overview(who, &enti, &mailboxes, outcome.as_deref()),
                )
            }
            ["caselle", address] => {
                let (view, archive) = blocking(|| {
                    Ok::<_, Error>((
                        a.mailbox(actor, address)?,
                        a.archive_options(actor, address)?,
                    ))
                })?;
                html(
                    StatusCode::OK,
                    pages::mailbox(who, &view, &archive, outcome.as_deref()),
                )
            }
            ["utilizzo"] | ["utilizzo.csv"] => {
                let (from, to) = (param("da"), param("a"));
                let ente = param("ente").filter(|e| !e.is_empty());
                let report = match (&from, &to) {
                    (Some(f), Some(t)) => {
                        let period = Period::parse(f, t)?;
                        Some(blocking(|| a.usage(actor, ente.as_deref(), period))?)
                    }
                    _ => None,
                };
                match (segs, report) {
                    (["utilizzo.csv"], Some(r)) => attachment(
                        r.csv(),
                        &format!("utilizzo-{}-{}.csv", r.from, r.to),
                        "text/csv; charset=utf-8",
                    ),
                    (["utilizzo.csv"], None) => {
                        return Err(Refusal::invalid(
                            "missing-period",
                            "indicare il periodo (da, a)".into(),
                        ));
                    }
                    (_, report) => {
                        let enti = blocking(|| a.enti(actor))?;
                        html(
                            StatusCode::OK,
                            pages::usage(who, &enti, report.as_ref(), query),
                        )
                    }
                }
            }
            ["token"] => {
                let tokens = blocking(|| a.tokens(actor))?;
                html(
                    StatusCode::OK,
                    pages::tokens(who, &tokens, None, outcome.as_deref()),
                )
            }
            _ => not_found(who),
        })
    }

    /// A POST of a logged-in administrator, its CSRF token checked.
    async fn act(&self, who: Who<'_>, segs: &[&str], form: &Form) -> Result<Reply> {
        let a = self.admin();
        let actor = who.actor;
        let done = |address: &str, outcome: &str| {
            redirect(&format!("{}?esito={outcome}", mailbox_path(address)))
        };
        match segs {
            ["caselle"] => {
                let address = form.get("address").trim().to_lowercase();
                let quota = quota_field(form.get("quota"))?;
                let password = NewPassword::hash(&self.api.auth, form.get("password")).await?;
                let account =
                    blocking(|| a.create_mailbox(actor, &address, &password, quota, false))?;
                Ok(done(&account.address, "creata"))
            }
            ["caselle", address, "password"] => {
                let password = NewPassword::hash(&self.api.auth, form.get("password")).await?;
                blocking(|| a.set_password(actor, address, &password))?;
                Ok(done(address, "password"))
            }
            ["caselle", address, "quota"] => {
                let quota = quota_field(form.get("quota"))?.ok_or_else(|| {
                    Refusal::invalid("quota-zero", "indicare la nuova quota".into())
                })?;
                blocking(|| a.set_quota(actor, address, quota))?;
                Ok(done(address, "quota"))
            }
            ["caselle", address, action @ ("sospendi" | "riattiva")] => {
                let on = *action == "sospendi";
                blocking(|| a.suspend(actor, address, on))?;
                Ok(done(address, if on { "sospesa" } else { "riattivata" }))
            }
            ["caselle", address, "archivio"] => {
                let scope = ArchiveScope::parse(form.get("scope"))
                    .ok_or_else(|| Refusal::invalid("bad-scope", "ambito non valido".into()))?;
                let current = blocking(|| a.archive_options(actor, address))?;
                let options = ArchiveOptions {
                    scope,
                    sent: form.ticked("sent"),
                    received: form.ticked("received"),
                    quota: quota_field(form.get("quota"))?.unwrap_or(current.quota),
                };
                blocking(|| a.set_archive_options(actor, address, &options))?;
                Ok(done(address, "archivio"))
            }
            ["token"] => {
                let name = form.get("name").trim().to_string();
                let token = blocking(|| a.create_token(actor, &name))?;
                let tokens = blocking(|| a.tokens(actor))?;
                Ok(html(
                    StatusCode::CREATED,
                    pages::tokens(who, &tokens, Some((&name, &token)), None),
                ))
            }
            ["token", name, "revoca"] => {
                blocking(|| a.revoke_token(actor, name))?;
                Ok(redirect(&format!("{PREFIX}token?esito=revocato")))
            }
            _ => Ok(not_found(who)),
        }
    }
}
