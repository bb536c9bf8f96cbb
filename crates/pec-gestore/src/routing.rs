//! Where to relay mail for a domain: a static route from the configuration, else the
//! domain's MX records by preference (RFC 5321 §5.1), else its address records (the
//! implicit MX). A domain that does not exist, or publishes a null MX (RFC 7505), cannot
//! be reached: the sender then gets a mancata consegna with `no-dominio`.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

use hickory_resolver::config::{NameServerConfigGroup, ResolverConfig, ResolverOpts};
use hickory_resolver::name_server::TokioConnectionProvider;
use hickory_resolver::proto::ProtoErrorKind;
use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::{ResolveError, TokioResolver};

/// Why no target could be found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    /// The domain does not exist or refuses mail: give up.
    #[error("domain {0} cannot receive mail")]
    NoDomain(String),
    /// DNS did not answer: try again later.
    #[error("DNS lookup for {0} failed: {1}")]
    Temporary(String, String),
}

/// One place to relay to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The server's name: what its TLS certificate must carry.
    pub name: String,
    /// Where to connect (`host:port` or `ip:port`).
    pub connect: String,
}

/// Finds relay targets for recipient domains.
pub struct Router {
    routes: BTreeMap<String, String>,
    resolver: Option<TokioResolver>,
    port: u16,
}

impl Router {
    /// Static routes only (no DNS): a lab, or a gestore behind a smart host.
    pub fn static_only(routes: BTreeMap<String, String>) -> Router {
        Router {
            routes,
            resolver: None,
            port: 25,
        }
    }

    /// Static routes, then DNS through the system's resolver configuration.
    pub fn with_system_dns(routes: BTreeMap<String, String>) -> Result<Router, RouteError> {
        let builder = TokioResolver::builder_tokio()
            .map_err(|e| RouteError::Temporary("resolv.conf".into(), e.to_string()))?;
        Ok(Router {
            routes,
            resolver: Some(builder.build()),
            port: 25,
        })
    }

    /// Static routes, then DNS through the given name server; MX hosts are contacted on
    /// `smtp_port` (25 in production). For tests and special set-ups.
    pub fn with_dns_server(
        routes: BTreeMap<String, String>,
        server: std::net::SocketAddr,
        smtp_port: u16,
    ) -> Router {
        let group = NameServerConfigGroup::from_ips_clear(&[server.ip()], server.port(), true);
        let config = ResolverConfig::from_parts(None, vec![], group);
        let mut opts = ResolverOpts::default();
        opts.attempts = 1;
        opts.timeout = std::time::Duration::from_secs(3);
        let resolver =
            TokioResolver::builder_with_config(config, TokioConnectionProvider::default())
                .with_options(opts)
                .build();
        Router {
            routes,
            resolver: Some(resolver),
            port: smtp_port,
        }
    }

    /// The targets for `domain`, best first.
    pub async fn targets(&self, domain: &str) -> Result<Vec<Target>, RouteError> {
        let domain = domain.trim().trim_end_matches('.').to_ascii_lowercase();
        if let Some(route) = self.routes.get(&domain) {
            let name = route.rsplit_once(':').map_or(route.as_str(), |(h, _)| h);
            return Ok(vec![Target {
                name: name.trim_matches(['[', ']']).to_string(),
                connect: route.clone(),
            }]);
        }
        let Some(resolver) = &self.resolver else {
            return Err(RouteError::NoDomain(domain));
        };
        let fqdn = format!("{domain}.");
        match resolver.mx_lookup(fqdn.as_str()).await {
            Ok(mx) => {
                let mut records: Vec<(u16, String)> = mx
                    .iter()
                    .map(|r| {
                        let host = r.exchange().to_ascii();
                        (r.preference(), host.trim_end_matches('.').to_string())
                    })
                    .collect();
                records.sort();
                // A single "." exchange is the null MX: the domain takes no mail.
                if records.iter().any(|(_, h)| h.is_empty()) {
                    return Err(RouteError::NoDomain(domain));
                }
                let mut targets = Vec::new();
                for (_, host) in records {
                    targets.extend(self.addresses(resolver, &host).await);
                }
                if targets.is_empty() {
                    return Err(RouteError::Temporary(domain, "no MX host resolves".into()));
                }
                Ok(targets)
            }
            Err(e) if e.is_nx_domain() => Err(RouteError::NoDomain(domain)),
            Err(e) if empty_answer(&e) => self.implicit_mx(resolver, &fqdn, domain).await,
            Err(e) => Err(RouteError::Temporary(domain, e.to_string())),
        }
    }

    /// The domain itself as its only MX (RFC 5321 §5.1), by its IPv4 then IPv6 addresses:
    /// a domain without any only when both questions are answered without one, a
    /// temporary failure when either could not be asked and the other found none.
    async fn implicit_mx(
        &self,
        resolver: &TokioResolver,
        fqdn: &str,
        domain: String,
    ) -> Result<Vec<Target>, RouteError> {
        let (v4, v6) = tokio::join!(resolver.ipv4_lookup(fqdn), resolver.ipv6_lookup(fqdn));
        let mut ips: Vec<IpAddr> = Vec::new();
        let mut failed = None;
        match v4 {
            Ok(found) => ips.extend(found.iter().map(|a| IpAddr::V4(a.0))),
            Err(e) if e.is_nx_domain() || empty_answer(&e) => {}
            Err(e) => failed = Some(e),
        }
        match v6 {
            Ok(found) => ips.extend(found.iter().map(|a| IpAddr::V6(a.0))),
            Err(e) if e.is_nx_domain() || empty_answer(&e) => {}
            Err(e) => failed = failed.or(Some(e)),
        }
        match (ips.is_empty(), failed) {
            (false, _) => Ok(ips
                .into_iter()
                .map(|ip| Target {
                    name: domain.clone(),
                    connect: SocketAddr::new(ip, self.port).to_string(),
                })
                .collect()),
            (true, Some(e)) => Err(RouteError::Temporary(domain, e.to_string())),
            (true, None) => Err(RouteError::NoDomain(domain)),
        }
    }

    /// The addresses of an MX host, as targets named after it.
    async fn addresses(&self, resolver: &TokioResolver, host: &str) -> Vec<Target> {
        match resolver.lookup_ip(format!("{host}.").as_str()).await {
            Ok(ips) => ips
                .iter()
                .map(|ip| Target {
                    name: host.to_string(),
                    connect: std::net::SocketAddr::new(ip, self.port).to_string(),
                })
                .collect(),
            Err(_) => Vec::new(),
        }
    }
}

/// Whether `e` is a name server's answer without records of the type asked (`NOERROR`
/// with an empty answer). hickory reports a `SERVFAIL`, `REFUSED` or other failed exchange
/// as "no records found" too: those say nothing of the domain and are retried, never
/// turned into a mancata consegna for a domain that does not exist.
fn empty_answer(e: &ResolveError) -> bool {
    matches!(
        e.proto().map(|p| p.kind()),
        Some(ProtoErrorKind::NoRecordsFound {
            response_code: ResponseCode::NoError,
            ..
        })
    )
}
