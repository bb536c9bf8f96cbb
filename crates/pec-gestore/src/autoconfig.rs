//! Automatic set-up of users' mail clients over HTTP and HTTPS: Thunderbird's autoconfig
//! (`/mail/config-v1.1.xml`, `/.well-known/autoconfig/mail/config-v1.1.xml`) and
//! Outlook's Autodiscover (`/autodiscover/autodiscover.xml`), so that a municipality's
//! employee types an address and a password and the client finds IMAP, POP3 and SMTP
//! submission by itself. Only the gestore's hosted domains get an answer (404 otherwise).
//!
//! The documents name the public host and ports ([`ClientSetup`]), which may differ from
//! the bound addresses behind NAT or a port-forwarding firewall.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use http_body_util::{BodyExt, Either, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::header::{CONTENT_TYPE, HOST};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use pec_net::{Accepted, ListenerLimits, Shutdown};
use pec_store::Store;
use quick_xml::escape::escape;
use quick_xml::events::Event;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio_rustls::rustls;
use tracing::{debug, warn};

use crate::clock::Clock;
use crate::metrics::{self, Metrics};
use crate::service::blocking;

/// Thunderbird's autoconfig path on the mail domain's `autoconfig.` host.
pub const THUNDERBIRD_PATH: &str = "/mail/config-v1.1.xml";
/// Thunderbird's autoconfig path on the mail domain itself.
pub const THUNDERBIRD_WELL_KNOWN: &str = "/.well-known/autoconfig/mail/config-v1.1.xml";
/// Outlook's Autodiscover (POX) path.
pub const AUTODISCOVER_PATH: &str = "/autodiscover/autodiscover.xml";

/// Largest Autodiscover request body read (a real one is a few hundred bytes).
const MAX_BODY: usize = 16 * 1024;

/// What the clients are told: the public name and ports of the gestore's services.
/// A `None` port leaves that service out of the documents.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientSetup {
    /// The host name clients connect to (it must match the TLS certificate).
    pub host: String,
    /// The provider's name shown by the client.
    pub display_name: String,
    /// IMAP with implicit TLS (993).
    pub imaps: Option<u16>,
    /// IMAP with STARTTLS (143).
    pub imap: Option<u16>,
    /// POP3 with implicit TLS (995).
    pub pop3s: Option<u16>,
    /// Submission with implicit TLS (465).
    pub submission_tls: Option<u16>,
    /// Submission with STARTTLS (587).
    pub submission: Option<u16>,
}

/// How a client secures one service.
#[derive(Clone, Copy)]
enum Security {
    /// TLS from the first byte.
    Implicit,
    /// STARTTLS (or STLS) before login.
    StartTls,
}

/// One service a client may use.
struct Service {
    protocol: &'static str,
    port: u16,
    security: Security,
}

impl ClientSetup {
    /// Incoming services, preferred first (IMAPS, IMAP with STARTTLS, POP3S).
    fn incoming(&self) -> Vec<Service> {
        let all = [
            ("imap", self.imaps, Security::Implicit),
            ("imap", self.imap, Security::StartTls),
            ("pop3", self.pop3s, Security::Implicit),
        ];
        services(&all)
    }

    /// Submission services, preferred first (465, then 587 with STARTTLS).
    fn outgoing(&self) -> Vec<Service> {
        let all = [
            ("smtp", self.submission_tls, Security::Implicit),
            ("smtp", self.submission, Security::StartTls),
        ];
        services(&all)
    }

    /// Thunderbird's `config-v1.1.xml` for a mailbox of `domain`.
    pub fn thunderbird(&self, domain: &str) -> String {
        let host = escape(&self.host);
        let domain = escape(domain);
        let name = escape(&self.display_name);
        let mut x = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<clientConfig version=\"1.1\">\n  \
             <emailProvider id=\"{domain}\">\n    <domain>{domain}</domain>\n    \
             <displayName>{name}</displayName>\n    <displayShortName>{name}</displayShortName>\n"
        );
        let socket = |s: Security| match s {
            Security::Implicit => "SSL",
            Security::StartTls => "STARTTLS",
        };
        for (element, list) in [
            ("incomingServer", self.incoming()),
            ("outgoingServer", self.outgoing()),
        ] {
            for s in list {
                x.push_str(&format!(
                    "    <{element} type=\"{}\">\n      <hostname>{host}</hostname>\n      \
                     <port>{}</port>\n      <socketType>{}</socketType>\n      \
                     <authentication>password-cleartext</authentication>\n      \
                     <username>%EMAILADDRESS%</username>\n    </{element}>\n",
                    s.protocol,
                    s.port,
                    socket(s.security)
                ));
            }
        }
        x.push_str("  </emailProvider>\n</clientConfig>\n");
        x
    }

    /// Outlook's Autodiscover (POX) response for `address`.
    pub fn autodiscover(&self, address: &str) -> String {
        let host = escape(&self.host);
        let login = escape(address);
        let name = escape(&self.display_name);
        let mut x = format!(
            "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<Autodiscover \
             xmlns=\"http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006\">\n  \
             <Response xmlns=\"http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a\">\n    \
             <User><DisplayName>{login}</DisplayName></User>\n    <Account>\n      \
             <AccountType>email</AccountType>\n      <Action>settings</Action>\n      \
             <ServiceHome>{name}</ServiceHome>\n"
        );
        for s in self.incoming().into_iter().chain(self.outgoing()) {
            let (ssl, encryption) = match s.security {
                Security::Implicit => ("on", "SSL"),
                Security::StartTls => ("off", "TLS"),
            };
            x.push_str(&format!(
                "      <Protocol>\n        <Type>{}</Type>\n        <Server>{host}</Server>\n        \
                 <Port>{}</Port>\n        <LoginName>{login}</LoginName>\n        \
                 <DomainRequired>off</DomainRequired>\n        <SPA>off</SPA>\n        \
                 <SSL>{ssl}</SSL>\n        <Encryption>{encryption}</Encryption>\n        \
                 <AuthRequired>on</AuthRequired>\n      </Protocol>\n",
                s.protocol.to_ascii_uppercase(),
                s.port
            ));
        }
        x.push_str("    </Account>\n  </Response>\n</Autodiscover>\n");
        x
    }
}

fn services(all: &[(&'static str, Option<u16>, Security)]) -> Vec<Service> {
    all.iter()
        .filter_map(|(protocol, port, security)| {
            port.map(|port| Service {
                protocol,
                port,
                security: *security,
            })
        })
        .collect()
}

/// Prometheus's scrape path.
pub const METRICS_PATH: &str = "/metrics";
/// Liveness: 200 while the process answers.
pub const HEALTH_PATH: &str = "/healthz";
/// Readiness: 200 when the store answers and the listeners run, else 503 and why.
pub const READY_PATH: &str = "/readyz";

/// What the HTTP server needs: the public set-up and the store (for the hosted domains).
pub struct Http {
    /// The public host and ports.
    pub setup: ClientSetup,
    /// The store, asked which domains are hosted.
    pub store: Arc<dyn Store>,
    /// The operator's endpoints ([`METRICS_PATH`], [`HEALTH_PATH`], [`READY_PATH`]);
    /// `None` where they are not served (the HTTPS listener faces mail clients only).
    pub operations: Option<Operations>,
    /// JMAP ([`pec_jmap::serves`] names its paths); `None` where it is not served (the
    /// plain HTTP listener: JMAP logs in with the mailbox password).
    pub jmap: Option<Arc<pec_jmap::Jmap>>,
    /// The administration API under [`crate::admin::api::PREFIX`]; `None` where it is
    /// not served (plain HTTP).
    pub admin: Option<Arc<crate::admin::api::AdminApi>>,
    /// The administration console at [`crate::admin::console::PREFIX`], over the same
    /// administration as the API; `None` where it is not served (plain HTTP).
    pub console: Option<Arc<crate::admin::console::Console>>,
    /// The webmail at `/webmail/` ([`pec_webmail::serves`]), over the same JMAP service;
    /// `None` where it is not served (the plain HTTP listener: it logs in with the mailbox
    /// password and its cookies are `Secure`).
    pub webmail: Option<Arc<pec_webmail::Webmail>>,
}

/// What the operator's endpoints read.
pub struct Operations {
    /// The server's metrics.
    pub metrics: Arc<Metrics>,
    /// The gestore's clock (ages and days left are counted from it).
    pub clock: Arc<dyn Clock>,
}

/// The mailbox address in `value`, lower case, if it looks like one.
fn mail_address(value: &str) -> Option<String> {
    let a = value.trim();
    let (local, domain) = a.rsplit_once('@')?;
    let ok = !local.is_empty()
        && domain.contains('.')
        && !a
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '<' || c == '>');
    ok.then(|| a.to_ascii_lowercase())
}

/// The `<EMailAddress>` of an Autodiscover request body.
fn requested_address(body: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?;
    let mut reader = quick_xml::Reader::from_str(text);
    let mut inside = false;
    loop {
        match reader.read_event().ok()? {
            Event::Start(e) => inside = e.local_name().as_ref() == b"EMailAddress",
            Event::Text(t) if inside => return mail_address(&t.xml10_content().ok()?),
            Event::End(_) => inside = false,
            Event::Eof => return None,
            _ => {}
        }
    }
}

impl Http {
    /// Whether `domain` is hosted here.
    fn hosted(&self, domain: &str) -> bool {
        match self.store.list_domains() {
            Ok(ds) => ds.iter().any(|d| d.name.eq_ignore_ascii_case(domain)),
            Err(e) => {
                warn!("cannot list the hosted domains: {e}");
                false
            }
        }
    }

    /// The answer to an operator's endpoint, `None` for other paths.
    fn operation(&self, ops: &Operations, path: &str) -> Option<Response<Full<Bytes>>> {
        match path {
            HEALTH_PATH => Some(plain(StatusCode::OK, "ok")),
            READY_PATH => Some(match self.readiness(ops) {
                Ok(()) => plain(StatusCode::OK, "ready"),
                Err(why) => plain(StatusCode::SERVICE_UNAVAILABLE, &why),
            }),
            METRICS_PATH => {
                let text = blocking(|| ops.metrics.render(self.store.as_ref(), ops.clock.now()));
                Some(response(StatusCode::OK, metrics::CONTENT_TYPE, text))
            }
            _ => None,
        }
    }

    /// Whether the server can serve: its listeners run and its store answers.
    fn readiness(&self, ops: &Operations) -> Result<(), String> {
        if !ops.metrics.listeners_running() {
            return Err("not ready: the listeners are not running".into());
        }
        blocking(|| self.store.queue_summary())
            .map(|_| ())
            .map_err(|e| format!("not ready: the store does not answer: {e}"))
    }

    /// The answer to one request from `peer`: JMAP's (whose event source is a stream:
    /// `streaming` is then set) or [`Http::answer`]'s.
    async fn respond(
        &self,
        req: Request<Incoming>,
        peer: SocketAddr,
        streaming: &AtomicBool,
    ) -> Response<pec_jmap::ResponseBody> {
        if let Some(jmap) = &self.jmap
            && pec_jmap::serves(req.uri().path())
        {
            let r = jmap.answer(req, peer.ip()).await;
            if matches!(r.body(), Either::Right(_)) {
                streaming.store(true, Ordering::Relaxed);
            }
            return r;
        }
        self.answer(req, peer).await.map(Either::Left)
    }

    /// The answer to one request from `peer` on a path other than JMAP's.
    async fn answer(&self, req: Request<Incoming>, peer: SocketAddr) -> Response<Full<Bytes>> {
        let path = req.uri().path().to_string();
        if let Some(api) = &self.admin
            && path.starts_with(crate::admin::api::PREFIX)
        {
            return api.answer(req, peer.ip()).await;
        }
        if let Some(console) = &self.console
            && crate::admin::console::serves(&path)
        {
            return console.answer(req, peer.ip()).await;
        }
        if let Some(webmail) = &self.webmail
            && pec_webmail::serves(&path)
        {
            return webmail.answer(req, peer.ip()).await;
        }
        if let Some(ops) = &self.operations
            && let Some(r) = self.operation(ops, &path)
        {
            return r;
        }
        let query = req.uri().query().unwrap_or("").to_string();
        let method = req.method().clone();
        let host = req
            .headers()
            .get(HOST)
            .and_then(|h| h.to_str().ok())
            .map(|h| h.split(':').next().unwrap_or(h).to_ascii_lowercase());
        if path == THUNDERBIRD_PATH || path == THUNDERBIRD_WELL_KNOWN {
            if method != Method::GET && method != Method::HEAD {
                return plain(StatusCode::METHOD_NOT_ALLOWED, "metodo non ammesso");
            }
            let from_query = form_urlencoded::parse(query.as_bytes())
                .find(|(k, _)| k == "emailaddress")
                .and_then(|(_, v)| mail_address(&v));
            // Without the address Thunderbird still names the domain in the host it asks
            // (autoconfig.<domain> or <domain> itself).
            let domain = match (from_query, host) {
                (Some(a), _) => a.rsplit_once('@').map(|(_, d)| d.to_string()),
                (None, Some(h)) => Some(h.strip_prefix("autoconfig.").unwrap_or(&h).to_string()),
                (None, None) => None,
            };
            return match domain {
                Some(d) if self.hosted(&d) => xml(self.setup.thunderbird(&d)),
                _ => plain(StatusCode::NOT_FOUND, "dominio non gestito"),
            };
        }
        if path.eq_ignore_ascii_case(AUTODISCOVER_PATH) {
            let address = match method {
                Method::POST => match Limited::new(req.into_body(), MAX_BODY).collect().await {
                    Ok(body) => requested_address(&body.to_bytes()),
                    Err(e) => {
                        debug!("autodiscover body not read: {e}");
                        return plain(StatusCode::BAD_REQUEST, "richiesta non valida");
                    }
                },
                Method::GET => form_urlencoded::parse(query.as_bytes())
                    .find(|(k, _)| k.eq_ignore_ascii_case("emailaddress"))
                    .and_then(|(_, v)| mail_address(&v)),
                _ => return plain(StatusCode::METHOD_NOT_ALLOWED, "metodo non ammesso"),
            };
            let Some(address) = address else {
                return plain(StatusCode::BAD_REQUEST, "indirizzo mancante");
            };
            let hosted = address
                .rsplit_once('@')
                .is_some_and(|(_, d)| self.hosted(d));
            return if hosted {
                xml(self.setup.autodiscover(&address))
            } else {
                plain(StatusCode::NOT_FOUND, "dominio non gestito")
            };
        }
        plain(StatusCode::NOT_FOUND, "risorsa inesistente")
    }
}

fn response(status: StatusCode, content_type: &str, body: String) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    if let Ok(v) = content_type.parse() {
        r.headers_mut().insert(CONTENT_TYPE, v);
    }
    r
}

fn xml(body: String) -> Response<Full<Bytes>> {
    response(StatusCode::OK, "application/xml; charset=utf-8", body)
}

fn plain(status: StatusCode, text: &str) -> Response<Full<Bytes>> {
    response(status, "text/plain; charset=utf-8", format!("{text}\n"))
}

/// Bytes an HTTP connection buffers at most: the whole request head must fit.
const HTTP_BUFFER: usize = 16 * 1024;

/// Serves autoconfig and Autodiscover on `listener` until `stopped` resolves, within
/// `limits` (connections per client and in all: more are closed at once; the TLS
/// handshake); open connections then finish their request and close. With `tls` every
/// connection is HTTPS (Outlook asks Autodiscover only over HTTPS); without it, plain HTTP
/// (Thunderbird, or behind a proxy).
pub async fn serve_http(
    listener: TcpListener,
    http: Arc<Http>,
    tls: Option<Arc<rustls::ServerConfig>>,
    limits: ListenerLimits,
    stopped: impl Future<Output = ()>,
) -> Result<(), pec_net::Error> {
    let service = pec_net::Service {
        name: if tls.is_some() { "https" } else { "http" },
        tls,
        busy: Vec::new(),
        // Client set-up and scrapes are not mail sessions.
        observer: None,
    };
    let session = move |accepted: Accepted| {
        serve_connection(
            accepted.conn,
            http.clone(),
            accepted.peer,
            accepted.shutdown,
        )
    };
    pec_net::serve(listener, service, limits, session, stopped).await
}

/// Answers the requests of one connection, for at most a minute, or, once it carries a
/// JMAP event source, for as long as such a stream lasts besides; at shutdown the request
/// under way is answered, then the connection closes (an event source ends at once).
async fn serve_connection<IO>(io: IO, http: Arc<Http>, peer: SocketAddr, shutdown: Shutdown)
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let streaming = Arc::new(AtomicBool::new(false));
    let push_lifetime = http
        .jmap
        .as_ref()
        .map_or(Duration::ZERO, |j| j.push.lifetime());
    let service = service_fn({
        let streaming = streaming.clone();
        move |req| {
            let (http, streaming) = (http.clone(), streaming.clone());
            async move { Ok::<_, Infallible>(http.respond(req, peer, &streaming).await) }
        }
    });
    // The request head is read before anyone has logged in: a few KB (hyper's default
    // buffer, about 400 KB, is refused with 431 here), bodies stream through it.
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(10))
        .max_buf_size(HTTP_BUFFER)
        .serve_connection(TokioIo::new(io), service);
    tokio::pin!(conn);
    let time_up = async {
        tokio::time::sleep(Duration::from_secs(60)).await;
        if streaming.load(Ordering::Relaxed) {
            tokio::time::sleep(push_lifetime).await;
        }
    };
    let served = async {
        let finished = tokio::select! {
            result = conn.as_mut() => Some(result),
            () = shutdown.signalled() => None,
        };
        match finished {
            Some(result) => Some(result),
            // A stream has no end to wait for: the connection is dropped.
            None if streaming.load(Ordering::Relaxed) => None,
            None => {
                conn.as_mut().graceful_shutdown();
                Some(conn.as_mut().await)
            }
        }
    };
    tokio::select! {
        result = served => {
            if let Some(Err(e)) = result {
                debug!(%peer, "HTTP connection: {e}");
            }
        }
        () = time_up => debug!(%peer, "HTTP connection closed: its time is up"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup() -> ClientSetup {
        ClientSetup {
            host: "mail.pec.example.it".into(),
            display_name: "Demo & PEC".into(),
            imaps: Some(993),
            imap: None,
            pop3s: Some(995),
            submission_tls: Some(465),
            submission: Some(587),
        }
    }

    #[test]
    fn documents_list_the_enabled_services_escaped() {
        let t = setup().thunderbird("pec.example.it");
        assert!(
            t.contains("<displayName>Demo &amp; PEC</displayName>"),
            "{t}"
        );
        assert_eq!(t.matches("<incomingServer").count(), 2);
        assert_eq!(t.matches("<outgoingServer").count(), 2);
        assert!(t.contains("<port>587</port>\n      <socketType>STARTTLS</socketType>"));
        let a = setup().autodiscover("a&b@pec.example.it");
        assert!(a.contains("<LoginName>a&amp;b@pec.example.it</LoginName>"));
        assert_eq!(a.matches("<Type>SMTP</Type>").count(), 2);
    }

    #[test]
    fn autodiscover_request_addresses() {
        let body = br#"<?xml version="1.0"?><Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006"><Request><EMailAddress>Mario.Rossi@pec.example.it</EMailAddress><AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a</AcceptableResponseSchema></Request></Autodiscover>"#;
        assert_eq!(
            requested_address(body).as_deref(),
            Some("mario.rossi@pec.example.it")
        );
        assert_eq!(
            requested_address(b"<a><EMailAddress>x</EMailAddress>"),
            None
        );
        assert_eq!(requested_address(b"<a"), None);
        assert_eq!(requested_address(&[0xff, 0xfe]), None);
    }
}
