//! The webhook sender: posts each protocol office's registry events to its registry,
//! at least once. The events wait in the store ([`pec_store::Ledger::registry_events_due`]):
//! each pass claims the due ones, posts them [`CONCURRENCY`] at a time, and marks each
//! acknowledged (any 2xx) or schedules its next attempt, doubling from [`RETRY_BASE`]
//! up to [`RETRY_MAX`]. A crash or a restart loses none: a claimed event not marked is
//! due again when its claim runs out. The receiver tells a repeated event by its
//! `Idempotency-Key` (the event id) and checks `X-Pecd-Signature` (HMAC-SHA256 of the
//! body with the office's secret).
//!
//! `https://` (the registry's certificate checked against `webhook_ca`, or the system's
//! CA certificates) or plain `http://` for a registry on the province's own network.

use std::sync::Arc;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::{Request, StatusCode, Uri};
use openssl::hash::MessageDigest;
use openssl::pkey::PKey;
use openssl::sign::Signer;
use pec_store::RegistryEvent;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::{self, RootCertStore, pki_types::ServerName};
use tracing::{debug, info, warn};

use super::{event, office_for};
use crate::antivirus::Scanner;
use crate::service::{Gestore, blocking};

/// Events claimed per pass.
pub const BATCH: usize = 64;

/// Events posted at the same time.
pub const CONCURRENCY: usize = 4;

/// The first retry comes this long after a failure; each next one twice as long.
pub const RETRY_BASE: i64 = 30;

/// The longest wait between two attempts.
pub const RETRY_MAX: i64 = 3600;

/// How long one attempt may take (connect, send, response head).
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// How long a claimed event stays this sender's before it is due again (a sender that
/// died); longer than an attempt.
const CLAIM_SECS: i64 = 60;

/// How often the sender looks for due events.
const TICK: Duration = Duration::from_millis(500);

/// The longest response body read (and thrown away) to keep the connection tidy.
const MAX_RESPONSE: usize = 64 * 1024;

/// Where an office's events go and the secret that signs them.
#[derive(Clone)]
pub struct Webhook {
    /// The receiver, `https://host[:port]/path` or `http://…`; private, so that it
    /// cannot become `https://` without [`Webhook::tls`].
    url: Uri,
    /// The HMAC-SHA256 key.
    secret: String,
    /// The CA certificates (PEM) an `https://` receiver's certificate must chain to;
    /// `None`: the system's.
    ca: Option<Vec<u8>>,
    /// The TLS client of an `https://` receiver.
    tls: Option<Arc<rustls::ClientConfig>>,
}

impl PartialEq for Webhook {
    fn eq(&self, other: &Webhook) -> bool {
        (&self.url, &self.secret, &self.ca) == (&other.url, &other.secret, &other.ca)
    }
}

impl Eq for Webhook {}

impl std::fmt::Debug for Webhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhook")
            .field("url", &self.url)
            .field("secret", &"…")
            .finish()
    }
}

impl Webhook {
    /// The webhook at `url` signed with `secret`, an `https://` one trusting the CA
    /// certificates in `ca` (PEM) or, without, the system's; why not, when `url` is not
    /// an `http(s)://` URL with a host, the secret is empty, or `ca` comes with `http://`
    /// or holds no certificate.
    pub fn new(url: &str, secret: &str, ca: Option<&[u8]>) -> Result<Webhook, String> {
        let uri: Uri = url
            .trim()
            .parse()
            .map_err(|e| format!("{url:?} is not a URL: {e}"))?;
        let https = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            _ => return Err(format!("{url:?}: only https:// and http:// webhooks")),
        };
        if uri.host().is_none_or(str::is_empty) {
            return Err(format!("{url:?} has no host"));
        }
        if secret.is_empty() {
            return Err("webhook_secret must not be empty".into());
        }
        let tls = match (https, ca) {
            (false, Some(_)) => return Err("webhook_ca is for an https:// webhook".into()),
            (false, None) => None,
            (true, Some(pem)) => Some(pec_smtp::client_tls_config(pem).map_err(|e| e.to_string())?),
            (true, None) => Some(system_tls()?),
        };
        Ok(Webhook {
            url: uri,
            secret: secret.to_string(),
            ca: ca.map(<[u8]>::to_vec),
            tls,
        })
    }

    /// Where the events go.
    pub fn url(&self) -> &Uri {
        &self.url
    }

    /// `sha256=<hex HMAC-SHA256 of body with the secret>`, the `X-Pecd-Signature`.
    pub fn signature(&self, body: &[u8]) -> Result<String, openssl::error::ErrorStack> {
        let key = PKey::hmac(self.secret.as_bytes())?;
        let mut signer = Signer::new(MessageDigest::sha256(), &key)?;
        signer.update(body)?;
        let mac = signer.sign_to_vec()?;
        let hex: String = mac.iter().map(|b| format!("{b:02x}")).collect();
        Ok(format!("sha256={hex}"))
    }

    /// Posts `body` as event `id`; `Ok` when the receiver answered 2xx.
    pub async fn post(&self, id: i64, body: Vec<u8>) -> Result<(), String> {
        let signature = self.signature(&body).map_err(|e| e.to_string())?;
        let host = self.url.host().unwrap_or_default().to_string();
        let default_port = if self.tls.is_some() { 443 } else { 80 };
        let port = self.url.port_u16().unwrap_or(default_port);
        let authority = self
            .url
            .authority()
            .map_or_else(|| host.clone(), |a| a.to_string());
        let path = self
            .url
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_string();
        let request = Request::post(path)
            .header(hyper::header::HOST, authority)
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .header(hyper::header::USER_AGENT, "pecd")
            .header("X-Pecd-Signature", signature)
            .header("Idempotency-Key", id.to_string())
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| e.to_string())?;
        let attempt = async {
            let host = host.trim_start_matches('[').trim_end_matches(']');
            let stream = tokio::net::TcpStream::connect((host, port))
                .await
                .map_err(|e| format!("connect: {e}"))?;
            let status = match &self.tls {
                None => exchange(stream, request).await?,
                Some(config) => {
                    let name = ServerName::try_from(host.to_string())
                        .map_err(|e| format!("{host:?}: {e}"))?;
                    let stream = TlsConnector::from(config.clone())
                        .connect(name, stream)
                        .await
                        .map_err(|e| format!("TLS: {e}"))?;
                    exchange(stream, request).await?
                }
            };
            if status.is_success() {
                Ok(())
            } else {
                Err(format!("HTTP {status}"))
            }
        };
        tokio::time::timeout(TIMEOUT, attempt)
            .await
            .map_err(|_| format!("no answer within {} s", TIMEOUT.as_secs()))?
    }
}

/// The status of posting `request` over `io`; the answer's body is read (at most
/// [`MAX_RESPONSE`] bytes) and thrown away.
async fn exchange<IO>(io: IO, request: Request<Full<Bytes>>) -> Result<StatusCode, String>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (status, _body) = crate::fetch::send(io, request, MAX_RESPONSE)
        .await
        .map_err(|e| e.to_string())?;
    Ok(status)
}

/// A TLS client trusting the system's CA certificates (for a registry with a certificate
/// from a public CA); an error when the system has none.
fn system_tls() -> Result<Arc<rustls::ClientConfig>, String> {
    let found = rustls_native_certs::load_native_certs();
    let mut roots = RootCertStore::empty();
    let (added, _) = roots.add_parsable_certificates(found.certs);
    if added == 0 {
        return Err("no CA certificate found on the system: give webhook_ca".into());
    }
    pec_smtp::client_tls_config_with(roots).map_err(|e| e.to_string())
}

/// The wait before the attempt after `failures` failed ones.
pub fn backoff(failures: u32) -> i64 {
    let doublings = failures.saturating_sub(1).min(20);
    RETRY_BASE.saturating_mul(1 << doublings).min(RETRY_MAX)
}

impl<S: Scanner> Gestore<S> {
    /// One pass over the due registry events; returns how many were claimed.
    pub async fn run_webhooks_once(self: &Arc<Self>) -> usize {
        let now = self.now().timestamp();
        let due = match blocking(|| self.store.registry_events_due(now, now + CLAIM_SECS, BATCH)) {
            Ok(d) => d,
            Err(e) => {
                warn!("cannot read the registry events: {e}");
                return 0;
            }
        };
        let n = due.len();
        let slots = Arc::new(Semaphore::new(CONCURRENCY));
        let mut tasks = JoinSet::new();
        for e in due {
            let Ok(slot) = slots.clone().acquire_owned().await else {
                break;
            };
            let g = self.clone();
            tasks.spawn(async move {
                g.post_event(e).await;
                drop(slot);
            });
        }
        while let Some(r) = tasks.join_next().await {
            if let Err(e) = r {
                warn!("a webhook task failed: {e}");
            }
        }
        n
    }

    /// Posts one event and records the outcome.
    async fn post_event(&self, e: RegistryEvent) {
        let webhook = office_for(&self.settings.protocol_offices, &e.address)
            .and_then(|o| o.webhook.as_ref());
        let outcome = match webhook {
            None => Err("no webhook configured for this mailbox".to_string()),
            Some(w) => {
                let body = event::envelope(&e, false).to_string().into_bytes();
                w.post(e.id, body).await
            }
        };
        let now = self.now().timestamp();
        let recorded = match &outcome {
            Ok(()) => {
                debug!(event = e.id, mailbox = %e.address, "registry event delivered");
                blocking(|| self.store.registry_event_sent(e.id, now))
            }
            Err(error) => {
                let failures = e.attempts.saturating_add(1);
                let wait = backoff(failures);
                // The first failure of an event, and then every tenth, is worth a
                // warning; the retries between them are not (a receiver down for a day
                // must not flood the log).
                if failures == 1 || failures.is_multiple_of(10) {
                    warn!(event = e.id, mailbox = %e.address, failures, "registry webhook: {error}; next attempt in {wait} s");
                } else {
                    info!(event = e.id, mailbox = %e.address, failures, "registry webhook: {error}; next attempt in {wait} s");
                }
                blocking(|| self.store.registry_event_retry(e.id, now + wait, error))
            }
        };
        if let Err(err) = recorded {
            // The claim runs out and the event is tried again: at least once.
            warn!(event = e.id, "cannot record the webhook outcome: {err}");
        }
    }
}

/// Posts registry events until `shutdown`; does nothing when no office has a webhook.
pub async fn run<S: Scanner>(g: Arc<Gestore<S>>, shutdown: impl std::future::Future<Output = ()>) {
    tokio::pin!(shutdown);
    if !g
        .settings
        .protocol_offices
        .iter()
        .any(|o| o.webhook.is_some())
    {
        shutdown.await;
        return;
    }
    loop {
        let claimed = g.run_webhooks_once().await;
        if claimed >= BATCH {
            continue;
        }
        tokio::select! {
            _ = &mut shutdown => break,
            _ = tokio::time::sleep(TICK) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_or_https_urls_with_a_host_and_a_secret() {
        assert!(Webhook::new("http://127.0.0.1:39080/hook", "s", None).is_ok());
        assert!(Webhook::new("registro.test/hook", "s", None).is_err());
        assert!(Webhook::new("ftp://registro.test/hook", "s", None).is_err());
        assert!(Webhook::new("http://registro.test/hook", "", None).is_err());
        // A CA is for https only, and must hold a certificate.
        assert!(Webhook::new("http://registro.test/hook", "s", Some(b"x")).is_err());
        assert!(Webhook::new("https://registro.test/hook", "s", Some(b"x")).is_err());
    }

    #[test]
    fn the_signature_is_rfc_4231_hmac_sha256() {
        // RFC 4231 test case 2.
        let w = Webhook::new("http://h/", "Jefe", None).unwrap();
        assert_eq!(
            w.signature(b"what do ya want for nothing?").unwrap(),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn the_backoff_doubles_up_to_its_cap() {
        assert_eq!(backoff(1), RETRY_BASE);
        assert_eq!(backoff(2), 2 * RETRY_BASE);
        assert_eq!(backoff(3), 4 * RETRY_BASE);
        assert_eq!(backoff(1000), RETRY_MAX);
    }
}
