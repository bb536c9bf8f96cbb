//! `pecd.toml`: every setting of a gestore, documented key by key in `conf/pecd.toml`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use pec_gestore::protocol::ProtocolOffice;
use pec_net::{AuthLimits, ListenerLimits};
use serde::Deserialize;

/// The whole configuration file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Who the gestore is and where its state lives.
    pub gestore: GestoreConfig,
    /// Where the durable state lives when it is not the embedded store.
    #[serde(default)]
    pub store: StoreConfig,
    /// Where its keys, certificates and provider index are.
    #[serde(default)]
    pub certificates: CertificatesConfig,
    /// The listening sockets.
    #[serde(default)]
    pub listen: ListenConfig,
    /// Size, recipient and connection limits.
    #[serde(default)]
    pub limits: LimitsConfig,
    /// Who accepts ordinary mail.
    #[serde(default)]
    pub policy: PolicyConfig,
    /// Static routes: recipient domain → `host:port`.
    #[serde(default)]
    pub routes: BTreeMap<String, String>,
    /// How other domains' mail servers are found.
    #[serde(default)]
    pub dns: DnsConfig,
    /// The virus scanner.
    #[serde(default)]
    pub antivirus: AntivirusConfig,
    /// Retries of the outbound queue.
    #[serde(default)]
    pub queue: QueueConfig,
    /// Conveniences of a lab set-up.
    #[serde(default)]
    pub lab: LabConfig,
    /// What users' mail clients are told by autoconfig and Autodiscover.
    #[serde(default)]
    pub client: ClientConfig,
    /// How the server writes its operational log.
    #[serde(default)]
    pub logging: LoggingConfig,
    /// The legal message log's daily time stamp.
    #[serde(default)]
    pub log: LegalLogConfig,
    /// Protocol offices: mailboxes or domains with a document policy.
    #[serde(default)]
    pub protocol_office: Vec<ProtocolOfficeConfig>,
}

/// One `[[protocol_office]]`: a mailbox (or every mailbox of a domain) whose PEC is
/// registered in a protocol, and the documents it registers. Its PEC is always
/// delivered; one with an attachment outside the policy gets the IMAP keyword
/// `$NonConforme` and, with `ripudio`, a ripudio to its sender.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProtocolOfficeConfig {
    /// The office's mailbox (one of `mailbox` and `domain`).
    pub mailbox: Option<String>,
    /// A hosted domain whose every mailbox is an office (one of `mailbox` and `domain`).
    pub domain: Option<String>,
    /// The formats registered, judged by content: `pdf` (PDF/A included), `pdf/a`,
    /// `rtf`, `tiff`, `xml`. All of them by default.
    #[serde(default = "default_office_formats")]
    pub formats: Vec<String>,
    /// Whether those formats are accepted inside CAdES `.p7m` envelopes (signature
    /// verified with OpenSSL). Yes by default.
    #[serde(default = "default_true")]
    pub signed: bool,
    /// The largest attachment accepted (`"20MiB"`); no limit by default beyond
    /// `limits.max_message_size`.
    pub max_attachment_size: Option<String>,
    /// Whether a message outside the policy gets a ripudio: a PEC from the office's
    /// mailbox to its sender, through our own access point. No by default.
    #[serde(default)]
    pub ripudio: bool,
    /// The Italian opening of the ripudio (the message's subject, identificativo, date
    /// and the reason for each attachment follow it); a standard one by default.
    pub ripudio_text: Option<String>,
    /// A competent-office mailbox that gets a copy of each ripudio.
    pub copy_to: Option<String>,
    /// Where the office's registry events are posted (`https://host[:port]/path`, or
    /// `http://` on the province's own network); they wait in the store and are retried
    /// until the registry answers 2xx.
    pub webhook: Option<String>,
    /// The CA certificates (PEM file) an `https://` registry's certificate must chain to;
    /// the system's CA certificates without it.
    pub webhook_ca: Option<PathBuf>,
    /// The key of the HMAC-SHA256 in each post's `X-Pecd-Signature` (needed with
    /// `webhook`).
    pub webhook_secret: Option<String>,
}

fn default_office_formats() -> Vec<String> {
    pec_gestore::protocol::policy::Allowed::NAMES
        .iter()
        .map(|n| n.to_string())
        .collect()
}

fn default_true() -> bool {
    true
}

impl ProtocolOfficeConfig {
    /// The office as the gestore runs it; what is wrong, keyed by the entry's key name,
    /// when the entry cannot be one.
    pub fn office(&self) -> Result<ProtocolOffice, (&'static str, String)> {
        use pec_gestore::protocol::Scope;
        use pec_gestore::protocol::policy::{Allowed, DocumentPolicy};
        use pec_gestore::protocol::ripudio::{DEFAULT_TEXT, Ripudio};
        let lower = |s: &String| s.trim().to_ascii_lowercase();
        let scope = match (&self.mailbox, &self.domain) {
            (Some(m), None) => Scope::Mailbox(lower(m)),
            (None, Some(d)) => Scope::Domain(lower(d)),
            _ => return Err(("mailbox", "give exactly one of mailbox and domain".into())),
        };
        if self.formats.is_empty() {
            return Err(("formats", "name at least one format".into()));
        }
        let formats = self
            .formats
            .iter()
            .map(|f| {
                Allowed::parse(f).ok_or_else(|| {
                    (
                        "formats",
                        format!(
                            "unknown format {f:?} (known: {})",
                            Allowed::NAMES.join(", ")
                        ),
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let max_attachment_size = match &self.max_attachment_size {
            None => None,
            Some(text) => {
                Some(parse_size(text).map_err(|e| ("max_attachment_size", format!("{e:#}")))?)
            }
        };
        let copy_to = match &self.copy_to {
            None => None,
            Some(c) => Some(
                pec_proto::mime::bare_address(c)
                    .ok_or_else(|| ("copy_to", format!("{c:?} is not an e-mail address")))?
                    .to_ascii_lowercase(),
            ),
        };
        if !self.ripudio && (self.ripudio_text.is_some() || copy_to.is_some()) {
            return Err((
                "ripudio",
                "ripudio_text and copy_to need ripudio = true".into(),
            ));
        }
        let ripudio = self.ripudio.then(|| Ripudio {
            text: self
                .ripudio_text
                .clone()
                .unwrap_or_else(|| DEFAULT_TEXT.to_string()),
            copy_to,
        });
        let ca = match &self.webhook_ca {
            None => None,
            Some(path) => Some(
                std::fs::read(path)
                    .map_err(|e| ("webhook_ca", format!("{}: {e}", path.display())))?,
            ),
        };
        let webhook = match (&self.webhook, &self.webhook_secret) {
            (None, None) if ca.is_some() => {
                return Err(("webhook_ca", "webhook_ca needs a webhook".into()));
            }
            (None, None) => None,
            (Some(url), Some(secret)) => Some(
                pec_gestore::protocol::webhook::Webhook::new(url, secret, ca.as_deref())
                    .map_err(|e| ("webhook", e))?,
            ),
            _ => {
                return Err((
                    "webhook",
                    "give both webhook and webhook_secret, or neither".into(),
                ));
            }
        };
        Ok(ProtocolOffice {
            scope,
            ripudio,
            webhook,
            policy: DocumentPolicy {
                formats,
                signed: self.signed,
                max_attachment_size,
            },
        })
    }
}

/// The `[log]` table: the legal message log (spec §8.1), not the operational log of
/// `[logging]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LegalLogConfig {
    /// `http://` URL of an RFC 3161 time-stamping authority: the running gestore
    /// time-stamps the log's head there every day, and `pecd log timestamp` on demand.
    pub tsa_url: Option<String>,
}

/// The `[logging]` table: the operational log on standard error (not the legal log).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoggingConfig {
    /// `text` (the default) or `json`, one object per line for a log collector.
    #[serde(default)]
    pub format: LogFormat,
}

/// How each line of the operational log is written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines; coloured only when standard error is a terminal.
    #[default]
    Text,
    /// One JSON object per line (timestamp, level, target, fields).
    Json,
}

/// The `[gestore]` table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GestoreConfig {
    /// `providerName` in the index, `gestore-emittente` in daticert.
    #[serde(default = "default_name")]
    pub name: String,
    /// Host name in SMTP greetings.
    #[serde(default = "default_hostname")]
    pub hostname: String,
    /// Directory of the durable state (mailboxes, queue, log).
    pub data_dir: PathBuf,
    /// Default quota of new mailboxes, e.g. `"2GiB"`.
    #[serde(default = "default_quota")]
    pub default_quota: String,
    /// Domains hosted from the start (created in the store if missing).
    #[serde(default)]
    pub domains: Vec<String>,
}

/// The `[store]` table: the embedded store in `gestore.data_dir` (no `url`), or a
/// PostgreSQL database shared by every node of the gestore.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// `postgresql://user@host:port/dbname`; absent: the embedded store.
    pub url: Option<String>,
    /// Connections of this node to PostgreSQL, at most.
    #[serde(default = "default_store_connections")]
    pub connections: usize,
    /// Seconds a node holds the queue entries and timers it claimed; another node takes
    /// over the work of a node that died this long after its claim.
    #[serde(default = "default_lease")]
    pub lease_secs: u64,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            url: None,
            connections: default_store_connections(),
            lease_secs: default_lease(),
        }
    }
}

/// The `[certificates]` table: the layout `pecd certs init` writes.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CertificatesConfig {
    /// Directory with `ca.pem`, `index.ldif` and `<id>/{sign,tls}.{pem,key}`.
    #[serde(default = "default_cert_dir")]
    pub dir: PathBuf,
    /// This gestore's sub-directory.
    #[serde(default = "default_id")]
    pub id: String,
    /// Generate a lab PKI there when the files are missing. Never in production.
    #[serde(default)]
    pub lab_generate: bool,
    /// `http://` (or `file://`) URL of the provider index (`index.ldif.p7m`, or a plain
    /// `.ldif` in a lab) that `pecd certs refresh` downloads.
    pub index_url: Option<String>,
    /// `http://` (or `file://`) URLs of the CRLs (PEM or DER) that `pecd certs refresh`
    /// downloads into `crl/`.
    #[serde(default)]
    pub crl_urls: Vec<String>,
}

impl Default for CertificatesConfig {
    fn default() -> Self {
        CertificatesConfig {
            dir: default_cert_dir(),
            id: default_id(),
            lab_generate: false,
            index_url: None,
            crl_urls: Vec::new(),
        }
    }
}

/// The `[listen]` table; a missing key disables that listener.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenConfig {
    /// Submission with implicit TLS (port 465 in production).
    pub submission_tls: Option<SocketAddr>,
    /// Submission with STARTTLS (port 587).
    pub submission: Option<SocketAddr>,
    /// The MX for other gestori and the Internet (port 25).
    pub mx: Option<SocketAddr>,
    /// IMAP with implicit TLS (993).
    pub imaps: Option<SocketAddr>,
    /// IMAP with STARTTLS (143).
    pub imap: Option<SocketAddr>,
    /// POP3 with implicit TLS (995).
    pub pop3s: Option<SocketAddr>,
    /// POP3 with STLS (110).
    pub pop3: Option<SocketAddr>,
    /// HTTP for mail client set-up: Thunderbird autoconfig, Outlook Autodiscover (80).
    pub http: Option<SocketAddr>,
    /// The same over HTTPS with the gestore's TLS certificate (443): Outlook asks
    /// Autodiscover only over HTTPS.
    pub https: Option<SocketAddr>,
}

/// The `[client]` table: the public name and ports announced to mail clients, which
/// differ from the `[listen]` addresses behind NAT or port forwarding.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientConfig {
    /// Host name clients connect to; `gestore.hostname` by default.
    pub host: Option<String>,
    /// Public IMAPS port; the port of `listen.imaps` by default.
    pub imaps_port: Option<u16>,
    /// Public IMAP (STARTTLS) port; the port of `listen.imap` by default.
    pub imap_port: Option<u16>,
    /// Public POP3S port; the port of `listen.pop3s` by default.
    pub pop3s_port: Option<u16>,
    /// Public submission port with implicit TLS; the port of `listen.submission_tls` by default.
    pub submission_tls_port: Option<u16>,
    /// Public submission port with STARTTLS; the port of `listen.submission` by default.
    pub submission_port: Option<u16>,
}

/// The `[limits]` table: sizes, recipients, and how much any client may take.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    /// Largest message accepted over SMTP.
    #[serde(default = "default_max_size")]
    pub max_message_size: String,
    /// Most recipients of one message (at least 50 by law).
    #[serde(default = "default_max_recipients")]
    pub max_recipients: usize,
    /// Size × recipients allowed at the access point (30 MB at least by law).
    #[serde(default = "default_size_times")]
    pub max_size_times_recipients: String,
    /// Simultaneous connections from one address (an IPv6 /64), on each listener.
    #[serde(default = "default_conns_per_ip")]
    pub max_connections_per_ip: usize,
    /// Simultaneous connections on each listener.
    #[serde(default = "default_conns")]
    pub max_connections: usize,
    /// Longest TLS handshake, implicit or after STARTTLS/STLS, in seconds.
    #[serde(default = "default_tls_handshake")]
    pub tls_handshake_secs: u64,
    /// A write blocked this long by a client that does not read ends the session.
    #[serde(default = "default_write_timeout")]
    pub write_timeout_secs: u64,
    /// At shutdown, how long sessions may finish before being cut, in seconds.
    #[serde(default = "default_shutdown_grace")]
    pub shutdown_grace_secs: u64,
    /// Failed logins before a session is closed.
    #[serde(default = "default_auth_failures")]
    pub max_auth_failures: u32,
    /// Password verifications (argon2, 19 MiB each) running at once; the number of CPUs
    /// when absent.
    #[serde(default)]
    pub auth_workers: Option<usize>,
    /// The wait before the next login attempt from an address after one failure, in
    /// seconds; it doubles with each failure.
    #[serde(default = "default_auth_penalty")]
    pub auth_penalty_secs: u64,
    /// The longest such wait, in seconds.
    #[serde(default = "default_auth_penalty_max")]
    pub auth_penalty_max_secs: u64,
    /// An address without failures for this long starts afresh, in seconds.
    #[serde(default = "default_auth_penalty_forget")]
    pub auth_penalty_forget_secs: u64,
    /// Longest IMAP command line after login, literals aside (e.g. `"64KiB"`).
    #[serde(default = "default_imap_max_line")]
    pub imap_max_line: String,
    /// Most folders an account may have.
    #[serde(default = "default_max_folders")]
    pub max_folders: usize,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            max_message_size: default_max_size(),
            max_recipients: default_max_recipients(),
            max_size_times_recipients: default_size_times(),
            max_connections_per_ip: default_conns_per_ip(),
            max_connections: default_conns(),
            tls_handshake_secs: default_tls_handshake(),
            write_timeout_secs: default_write_timeout(),
            shutdown_grace_secs: default_shutdown_grace(),
            max_auth_failures: default_auth_failures(),
            auth_workers: None,
            auth_penalty_secs: default_auth_penalty(),
            auth_penalty_max_secs: default_auth_penalty_max(),
            auth_penalty_forget_secs: default_auth_penalty_forget(),
            imap_max_line: default_imap_max_line(),
            max_folders: default_max_folders(),
        }
    }
}

impl LimitsConfig {
    /// The connection limits of every listener.
    pub fn connections(&self) -> ListenerLimits {
        ListenerLimits {
            max_connections: self.max_connections,
            max_connections_per_ip: self.max_connections_per_ip,
            tls_handshake: Duration::from_secs(self.tls_handshake_secs),
            write_timeout: Duration::from_secs(self.write_timeout_secs),
            shutdown_grace: Duration::from_secs(self.shutdown_grace_secs),
        }
    }

    /// The IMAP line limit in bytes (checked at load).
    pub fn imap_max_line(&self) -> usize {
        parse_size(&self.imap_max_line)
            .ok()
            .and_then(|n| usize::try_from(n).ok())
            .unwrap_or(64 * 1024)
    }

    /// The limits of the password check shared by SMTP, IMAP and POP3.
    pub fn auth(&self) -> AuthLimits {
        let defaults = AuthLimits::default();
        AuthLimits {
            workers: self.auth_workers.unwrap_or(defaults.workers),
            penalty: Duration::from_secs(self.auth_penalty_secs),
            penalty_max: Duration::from_secs(self.auth_penalty_max_secs),
            penalty_forget: Duration::from_secs(self.auth_penalty_forget_secs),
            ..defaults
        }
    }

    /// The values that cannot work: each key of this table with what is wrong.
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if self.max_recipients < 50 {
            out.push(("max_recipients", "must be at least 50 (PEC rules)".into()));
        }
        let zero = [
            ("max_connections", self.max_connections == 0),
            ("max_connections_per_ip", self.max_connections_per_ip == 0),
            ("auth_workers", self.auth_workers == Some(0)),
            ("tls_handshake_secs", self.tls_handshake_secs == 0),
            ("write_timeout_secs", self.write_timeout_secs == 0),
            ("max_folders", self.max_folders == 0),
        ];
        for (key, _) in zero.iter().filter(|(_, is_zero)| *is_zero) {
            out.push((key, "must be at least 1".into()));
        }
        match parse_size(&self.imap_max_line) {
            Err(e) => out.push(("imap_max_line", format!("{e:#}"))),
            Ok(line) if !(1024..=1 << 20).contains(&line) => {
                out.push(("imap_max_line", "must be between 1KiB and 1MiB".into()))
            }
            Ok(_) => {}
        }
        out
    }
}

/// The `[policy]` table.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyConfig {
    /// Domains or mailboxes that receive ordinary mail wrapped in the busta di anomalia.
    /// Everyone else accepts only PEC: ordinary mail is refused during the SMTP session.
    #[serde(default)]
    pub accept_ordinary: Vec<String>,
}

/// The `[dns]` table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DnsConfig {
    /// `"system"` (resolv.conf), `"off"` (static routes only), or `"IP:PORT"` of a name
    /// server to ask.
    #[serde(default = "default_resolver")]
    pub resolver: String,
    /// The port of MX hosts found through DNS (25 outside a lab).
    #[serde(default = "default_mx_port")]
    pub mx_port: u16,
}

impl Default for DnsConfig {
    fn default() -> Self {
        DnsConfig {
            resolver: default_resolver(),
            mx_port: default_mx_port(),
        }
    }
}

fn default_resolver() -> String {
    "system".into()
}
fn default_mx_port() -> u16 {
    25
}

/// The `[antivirus]` table.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AntivirusConfig {
    /// `host:port` of clamd (TCPSocket); without it nothing is scanned (a warning at start).
    pub clamd: Option<String>,
}

/// The `[queue]` table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueConfig {
    /// First retry delay in seconds, doubled at each attempt.
    #[serde(default = "default_retry_base")]
    pub retry_base_secs: i64,
    /// Longest retry delay in seconds.
    #[serde(default = "default_retry_max")]
    pub retry_max_secs: i64,
    /// Relay sessions kept open to one destination (another gestore's MX) at most: how
    /// many transactions to it run at once. Keep it under the peer's per-address
    /// connection limit (pecd's `max_connections_per_ip`, 10 by default).
    #[serde(default = "default_relay_sessions")]
    pub relay_sessions_per_destination: usize,
    /// Queue entries for one destination sent at most back to back over one relay session
    /// (pipelined when the peer offers PIPELINING and CHUNKING); 1 sends each on its own.
    #[serde(default = "default_relay_batch")]
    pub relay_batch: usize,
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig {
            retry_base_secs: default_retry_base(),
            retry_max_secs: default_retry_max(),
            relay_sessions_per_destination: default_relay_sessions(),
            relay_batch: default_relay_batch(),
        }
    }
}

/// The `[lab]` table.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LabConfig {
    /// Mailboxes created at start when missing, with password `secret-<local part>`.
    /// For demos and the interoperability lab only.
    #[serde(default)]
    pub mailboxes: Vec<String>,
}

fn default_name() -> String {
    "Demo PEC (lab)".into()
}
fn default_hostname() -> String {
    "localhost".into()
}
fn default_quota() -> String {
    "2GiB".into()
}
fn default_store_connections() -> usize {
    pec_store::PgOptions::new("").connections
}
fn default_lease() -> u64 {
    pec_store::PgOptions::new("").lease.as_secs()
}
fn default_cert_dir() -> PathBuf {
    PathBuf::from("certs")
}
fn default_id() -> String {
    "demo".into()
}
fn default_max_size() -> String {
    "40MiB".into()
}
fn default_max_recipients() -> usize {
    100
}
fn default_size_times() -> String {
    "30MiB".into()
}
fn default_conns_per_ip() -> usize {
    ListenerLimits::default().max_connections_per_ip
}
fn default_conns() -> usize {
    ListenerLimits::default().max_connections
}
fn default_tls_handshake() -> u64 {
    ListenerLimits::default().tls_handshake.as_secs()
}
fn default_write_timeout() -> u64 {
    ListenerLimits::default().write_timeout.as_secs()
}
fn default_shutdown_grace() -> u64 {
    ListenerLimits::default().shutdown_grace.as_secs()
}
fn default_auth_penalty() -> u64 {
    AuthLimits::default().penalty.as_secs()
}
fn default_auth_penalty_max() -> u64 {
    AuthLimits::default().penalty_max.as_secs()
}
fn default_auth_penalty_forget() -> u64 {
    AuthLimits::default().penalty_forget.as_secs()
}
fn default_imap_max_line() -> String {
    "64KiB".into()
}
fn default_max_folders() -> usize {
    1000
}
fn default_auth_failures() -> u32 {
    3
}
fn default_retry_base() -> i64 {
    60
}
fn default_retry_max() -> i64 {
    3600
}

fn default_relay_batch() -> usize {
    pec_gestore::workers::RELAY_BATCH
}

fn default_relay_sessions() -> usize {
    pec_smtp::PoolLimits::default().per_destination
}

impl Config {
    /// Reads and checks a configuration file; relative paths in it are taken relative
    /// to the file's directory.
    pub fn load(path: &Path) -> anyhow::Result<Config> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the configuration {}", path.display()))?;
        let config: Config =
            toml::from_str(&text).with_context(|| format!("in {}", path.display()))?;
        let config = Config::resolved(config, path);
        for (key, value) in [
            ("gestore.default_quota", &config.gestore.default_quota),
            ("limits.max_message_size", &config.limits.max_message_size),
            (
                "limits.max_size_times_recipients",
                &config.limits.max_size_times_recipients,
            ),
        ] {
            parse_size(value).with_context(|| format!("{key} in {}", path.display()))?;
        }
        if let Some((key, problem)) = config.limits.problems().first() {
            bail!("limits.{key} {problem} in {}", path.display());
        }
        Ok(config)
    }

    /// `config` as read from the file at `path`, with its relative paths taken relative
    /// to the file's directory.
    pub fn resolved(mut config: Config, path: &Path) -> Config {
        let base = path.parent().unwrap_or(Path::new("."));
        config.gestore.data_dir = base.join(&config.gestore.data_dir);
        config.certificates.dir = base.join(&config.certificates.dir);
        for office in &mut config.protocol_office {
            if let Some(ca) = &mut office.webhook_ca {
                *ca = base.join(&*ca);
            }
        }
        config
    }

    /// The default quota in bytes.
    pub fn default_quota(&self) -> u64 {
        parse_size(&self.gestore.default_quota).unwrap_or(2 << 30)
    }

    /// A file of this gestore's certificate directory.
    pub fn own_file(&self, name: &str) -> PathBuf {
        self.certificates.dir.join(&self.certificates.id).join(name)
    }
}

/// Reads a size such as `2GiB`, `500MB`, `1024` (bytes), by the rule the administration API
/// applies too ([`pec_gestore::admin::size::parse_size`]): `3G` is refused as ambiguous.
pub fn parse_size(text: &str) -> anyhow::Result<u64> {
    pec_gestore::admin::size::parse_size(text).with_context(|| {
        format!("{text:?} is not a size: write it as 2GiB, 500MiB, 3GB or a number of bytes")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("2GiB").unwrap(), 2 << 30);
        assert_eq!(parse_size("3 GB").unwrap(), 3_000_000_000);
        assert!(parse_size("3G").is_err(), "ambiguous");
        assert_eq!(parse_size("1024").unwrap(), 1024);
        assert!(parse_size("2 parsecs").is_err());
        assert!(parse_size("GiB").is_err());
        assert!(parse_size("99999999999999TiB").is_err());
    }

    #[test]
    fn the_shipped_configuration_loads() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../conf/pecd.toml");
        let c = Config::load(&path).unwrap();
        assert!(c.certificates.lab_generate);
        assert!(c.listen.submission_tls.is_some() && c.listen.mx.is_some());
        let defaults = LimitsConfig::default();
        assert_eq!(c.limits.connections(), defaults.connections());
        assert_eq!(c.limits.auth(), defaults.auth());
        assert_eq!(c.limits.max_auth_failures, defaults.max_auth_failures);
        assert_eq!(c.limits.imap_max_line(), defaults.imap_max_line());
        assert_eq!(c.limits.max_folders, defaults.max_folders);
        assert_eq!(c.store.url, None, "the embedded store by default");
        assert_eq!(
            (c.store.connections, c.store.lease_secs),
            (StoreConfig::default().connections, 300)
        );
    }

    #[test]
    fn two_nodes_share_the_store_their_url_names() {
        let url = pec_store::test_util::shared_server().database();
        let dir = tempfile::tempdir().unwrap();
        let node = |n: u16| {
            let path = dir.path().join(format!("node{n}.toml"));
            std::fs::write(
                &path,
                format!(
                    "[gestore]\ndata_dir = \"data{n}\"\n[store]\nurl = \"{url}\"\n\
                     connections = 2\nlease_secs = 60\n\
                     [listen]\nmx = \"127.0.0.1:{}\"\n",
                    pec_store::test_util::free_port()
                ),
            )
            .unwrap();
            Config::load(&path).unwrap()
        };
        let (a, b) = (node(1), node(2));
        assert_eq!(a.store.lease_secs, 60);
        crate::store::open(&a)
            .unwrap()
            .add_domain("pec.shared.test", 1000)
            .unwrap();
        let domains = crate::store::open(&b).unwrap().list_domains().unwrap();
        assert_eq!(domains.len(), 1);
        assert!(!a.gestore.data_dir.join("store.db").exists());
    }

    #[test]
    fn connection_and_password_limits_default_to_dovecot_and_postfix_strictness() {
        let c = LimitsConfig::default().connections();
        assert!(
            c.max_connections_per_ip <= 10,
            "Dovecot: 10 per user and IP"
        );
        assert!(
            c.max_connections <= 100,
            "Postfix and Dovecot: 100 processes"
        );
        let a = LimitsConfig::default().auth();
        assert_eq!((a.penalty.as_secs(), a.penalty_max.as_secs()), (2, 15));
        let l = LimitsConfig::default();
        assert!(
            l.imap_max_line() <= 64 * 1024,
            "Dovecot imap_max_line_length 64k"
        );
        assert!(l.max_folders <= 1000);
    }

    #[test]
    fn limits_that_cannot_work_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pecd.toml");
        for bad in [
            "max_connections = 0",
            "max_connections_per_ip = 0",
            "auth_workers = 0",
        ] {
            std::fs::write(
                &path,
                format!("[gestore]\ndata_dir = \"d\"\n[limits]\n{bad}\n"),
            )
            .unwrap();
            let e = Config::load(&path).unwrap_err();
            assert!(
                format!("{e:#}").contains("must be at least 1"),
                "{bad}: {e:#}"
            );
        }
    }
    #[test]
    fn a_ripudio_needs_ripudio_on_and_a_real_copy_address() {
        let office = |extra: &str| {
            let text = format!("mailbox = \"Protocollo@pec.comune.test\"\n{extra}");
            toml::from_str::<ProtocolOfficeConfig>(&text)
                .unwrap()
                .office()
        };
        assert_eq!(office("").unwrap().ripudio, None);
        let on = office("ripudio = true\ncopy_to = \"Segreteria <Seg@pec.comune.test>\"")
            .unwrap()
            .ripudio
            .unwrap();
        assert_eq!(on.copy_to.as_deref(), Some("seg@pec.comune.test"));
        assert_eq!(on.text, pec_gestore::protocol::ripudio::DEFAULT_TEXT);
        let (key, _) = office("ripudio_text = \"x\"").unwrap_err();
        assert_eq!(key, "ripudio");
        let (key, _) = office("ripudio = true\ncopy_to = \"not an address\"").unwrap_err();
        assert_eq!(key, "copy_to");
    }

    #[test]
    fn a_webhook_needs_an_http_or_https_url_and_a_secret() {
        let office = |extra: &str| {
            let text = format!("mailbox = \"protocollo@pec.comune.test\"\n{extra}");
            toml::from_str::<ProtocolOfficeConfig>(&text)
                .unwrap()
                .office()
        };
        assert_eq!(office("").unwrap().webhook, None);
        let on = office("webhook = \"http://127.0.0.1:39080/hook\"\nwebhook_secret = \"s\"")
            .unwrap()
            .webhook
            .unwrap();
        assert_eq!(on.url().path(), "/hook");
        for bad in [
            "webhook = \"http://127.0.0.1:39080/hook\"",
            "webhook_secret = \"s\"",
            "webhook = \"ftp://x/\"\nwebhook_secret = \"s\"",
        ] {
            let (key, _) = office(bad).unwrap_err();
            assert_eq!(key, "webhook", "{bad}");
        }
        for bad in [
            "webhook_ca = \"/nonexistent/ca.pem\"\nwebhook = \"https://r.test/\"\nwebhook_secret = \"s\"",
            "webhook_ca = \"/nonexistent/ca.pem\"",
        ] {
            let (key, _) = office(bad).unwrap_err();
            assert_eq!(key, "webhook_ca", "{bad}");
        }
    }
}
