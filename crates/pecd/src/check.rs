//! `pecd config check`: everything `pecd serve` would trip over in a configuration,
//! found before a restart and reported as `file:line: level: key: problem`, so that an
//! operator fixes them all at once instead of one failed start at a time.
//!
//! Beyond the syntax and types of `pecd.toml` it checks what the file points at: the
//! certificates and their keys, the data directory, the listen and store addresses.

use std::borrow::Borrow;
use std::collections::BTreeSet;
use std::fmt;
use std::net::SocketAddr;
use std::ops::Range;
use std::path::Path;
use std::process::ExitCode;

use openssl::asn1::Asn1Time;
use openssl::pkey::PKey;
use openssl::x509::X509;
use toml::Spanned;
use toml::de::DeTable;

use crate::config::{Config, parse_size};

/// Certificates expiring within this many days are reported as a warning.
pub const EXPIRY_WARNING_DAYS: i64 = 30;

/// A day in seconds.
const DAY: i64 = 86_400;

/// How deep the key path of an offset is looked for (the file has two levels).
const MAX_KEY_DEPTH: usize = 8;

/// Whether a problem stops the server from starting correctly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Worth fixing soon; the server runs.
    Warning,
    /// The server would not start, or would not work.
    Error,
}

/// One problem of a configuration (displayed as `level: key: message`), located by its dotted key and the line of that key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Error or warning.
    pub level: Level,
    /// 1-based line in the file; 0 when the file has no line for it.
    pub line: usize,
    /// The dotted key, e.g. `listen.mx`; empty for the file as a whole.
    pub key: String,
    /// What is wrong, in English.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let level = match self.level {
            Level::Warning => "warning",
            Level::Error => "error",
        };
        let key = if self.key.is_empty() {
            String::new()
        } else {
            format!("{}: ", self.key)
        };
        write!(f, "{level}: {key}{}", self.message)
    }
}

/// A problem before it is located: a key and what is wrong with it.
struct Finding {
    level: Level,
    key: String,
    message: String,
}

fn error(key: &str, message: impl Into<String>) -> Finding {
    Finding {
        level: Level::Error,
        key: key.into(),
        message: message.into(),
    }
}

fn warning(key: &str, message: impl Into<String>) -> Finding {
    Finding {
        level: Level::Warning,
        key: key.into(),
        message: message.into(),
    }
}

/// Runs `pecd config check`: prints each problem of the file at `path` on standard error
/// and a verdict on standard output; fails when there is an error (warnings pass).
pub fn run(path: &Path) -> anyhow::Result<ExitCode> {
    let problems = check_file(path);
    for p in &problems {
        match p.line {
            0 => eprintln!("{}: {p}", path.display()),
            line => eprintln!("{}:{line}: {p}", path.display()),
        }
    }
    let errors = problems.iter().filter(|p| p.level == Level::Error).count();
    let warnings = problems.len() - errors;
    if errors > 0 {
        println!(
            "{}: {errors} error(s), {warnings} warning(s)",
            path.display()
        );
        return Ok(ExitCode::FAILURE);
    }
    println!("{}: valid, {warnings} warning(s)", path.display());
    Ok(ExitCode::SUCCESS)
}

/// Every problem of the configuration file at `path`, in file order.
pub fn check_file(path: &Path) -> Vec<Problem> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            return vec![Problem {
                level: Level::Error,
                line: 0,
                key: String::new(),
                message: format!("cannot read the file: {e}"),
            }];
        }
    };
    let tree = match DeTable::parse(&text) {
        Ok(t) => t,
        Err(e) => {
            return vec![Problem {
                level: Level::Error,
                line: e.span().map_or(0, |s| line_of(&text, s.start)),
                key: String::new(),
                message: e.message().trim().to_string(),
            }];
        }
    };
    let config = match toml::from_str::<Config>(&text) {
        Ok(c) => c,
        Err(e) => {
            let span = e.span();
            return vec![Problem {
                level: Level::Error,
                line: span.as_ref().map_or(0, |s| line_of(&text, s.start)),
                key: span.map(|s| key_at(&tree, s)).unwrap_or_default(),
                message: e.message().trim().to_string(),
            }];
        }
    };
    let config = Config::resolved(config, path);
    let mut problems: Vec<Problem> = findings(&config)
        .into_iter()
        .map(|f| Problem {
            level: f.level,
            line: line_of_key(&text, &tree, &f.key),
            key: f.key,
            message: f.message,
        })
        .collect();
    problems.sort_by_key(|p| p.line);
    problems
}

/// The 1-based line of byte `offset` of `text`.
fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

/// The line of dotted `key`, or of the nearest table above it that the file has (a
/// default value has no line of its own); 0 when not even that. A name may hold dots
/// itself (`routes.pec.beta.test`): the entry whose name the key goes on with is taken.
fn line_of_key(text: &str, tree: &Spanned<DeTable<'_>>, key: &str) -> usize {
    let mut table = tree.get_ref();
    let mut rest = key;
    let mut line = 0;
    for _ in 0..MAX_KEY_DEPTH {
        let found = table.iter().find(|(k, _)| {
            let name: &str = k.get_ref().borrow();
            rest == name || rest.strip_prefix(name).is_some_and(|r| r.starts_with('.'))
        });
        let Some((k, v)) = found else { break };
        line = line_of(text, k.span().start);
        let name: &str = k.get_ref().borrow();
        match (v.get_ref().as_table(), rest.get(name.len() + 1..)) {
            (Some(t), Some(r)) => (table, rest) = (t, r),
            _ => break,
        }
    }
    line
}

/// The dotted key whose name or value holds `span` (where a type error points).
fn key_at(tree: &Spanned<DeTable<'_>>, span: Range<usize>) -> String {
    let inside = |s: Range<usize>| s.start <= span.start && span.start < s.end.max(s.start + 1);
    let mut stack: Vec<(Vec<&str>, &DeTable<'_>)> = vec![(Vec::new(), tree.get_ref())];
    while let Some((path, table)) = stack.pop() {
        for (k, v) in table.iter() {
            let mut here = path.clone();
            here.push(k.get_ref().borrow());
            let sub = v.get_ref().as_table();
            if inside(k.span()) || (sub.is_none() && inside(v.span())) {
                return here.join(".");
            }
            if let Some(t) = sub
                && here.len() < MAX_KEY_DEPTH
            {
                stack.push((here, t));
            }
        }
    }
    String::new()
}

/// What is wrong with a configuration that parsed.
fn findings(config: &Config) -> Vec<Finding> {
    let mut out = Vec::new();
    sizes(config, &mut out);
    out.extend(
        config
            .limits
            .problems()
            .into_iter()
            .map(|(key, message)| error(&format!("limits.{key}"), message)),
    );
    domains(config, &mut out);
    listeners(config, &mut out);
    addresses(config, &mut out);
    store(config, &mut out);
    data_dir(&config.gestore.data_dir, &mut out);
    certificates(config, &mut out);
    protocol_offices(config, &mut out);
    out
}

/// `[[protocol_office]]` entries: each a valid office, one per mailbox or domain, on a
/// hosted domain.
fn protocol_offices(config: &Config, out: &mut Vec<Finding>) {
    use pec_gestore::protocol::Scope;
    let mut seen = BTreeSet::new();
    for entry in &config.protocol_office {
        let office = match entry.office() {
            Ok(o) => o,
            Err((key, message)) => {
                out.push(error(&format!("protocol_office.{key}"), message));
                continue;
            }
        };
        let (key, name) = match &office.scope {
            Scope::Mailbox(m) => ("protocol_office.mailbox", m.clone()),
            Scope::Domain(d) => ("protocol_office.domain", d.clone()),
        };
        if !seen.insert(office.scope.clone()) {
            out.push(error(key, format!("{name} has two protocol offices")));
        }
        let domain = pec_gestore::service::domain_of(&name);
        if !config
            .gestore
            .domains
            .iter()
            .any(|d| d.eq_ignore_ascii_case(&domain))
        {
            out.push(warning(key, format!("{domain} is not a hosted domain")));
        }
    }
}

fn sizes(config: &Config, out: &mut Vec<Finding>) {
    for (key, value) in [
        ("gestore.default_quota", &config.gestore.default_quota),
        ("limits.max_message_size", &config.limits.max_message_size),
        (
            "limits.max_size_times_recipients",
            &config.limits.max_size_times_recipients,
        ),
    ] {
        if let Err(e) = parse_size(value) {
            out.push(error(key, format!("{e:#}")));
        }
    }
}

/// Hosted domains: lower-case DNS names, each once.
fn domains(config: &Config, out: &mut Vec<Finding>) {
    let mut seen = BTreeSet::new();
    for d in &config.gestore.domains {
        if !pec_proto::labpki::is_domain(d) {
            out.push(error(
                "gestore.domains",
                format!("{d:?} is not a lower-case DNS name"),
            ));
        }
        if !seen.insert(d.to_ascii_lowercase()) {
            out.push(error("gestore.domains", format!("{d:?} is listed twice")));
        }
    }
    if config.gestore.domains.is_empty() {
        out.push(warning(
            "gestore.domains",
            "no domain: add them with `pecd domain add`",
        ));
    }
}

/// Two listeners cannot share an address.
fn listeners(config: &Config, out: &mut Vec<Finding>) {
    let l = &config.listen;
    let all = [
        ("submission_tls", l.submission_tls),
        ("submission", l.submission),
        ("mx", l.mx),
        ("imaps", l.imaps),
        ("imap", l.imap),
        ("pop3s", l.pop3s),
        ("pop3", l.pop3),
        ("http", l.http),
        ("https", l.https),
    ];
    let bound: Vec<(&str, SocketAddr)> =
        all.iter().filter_map(|(k, a)| a.map(|a| (*k, a))).collect();
    for (i, (key, addr)) in bound.iter().enumerate() {
        let clash = bound[..i]
            .iter()
            .find(|(_, other)| other == addr && addr.port() != 0);
        if let Some((other, _)) = clash {
            out.push(error(
                &format!("listen.{key}"),
                format!("{addr} is also listen.{other}"),
            ));
        }
    }
    if bound.is_empty() {
        out.push(warning("listen", "no listener: the server serves nobody"));
    }
}

/// `host:port` with a host and a port number.
fn host_port(value: &str) -> bool {
    value
        .rsplit_once(':')
        .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok())
}

/// Routes, the name server and clamd: `host:port`.
fn addresses(config: &Config, out: &mut Vec<Finding>) {
    for (domain, route) in &config.routes {
        if !host_port(route) {
            out.push(error(
                &format!("routes.{domain}"),
                format!("{route:?} is not host:port"),
            ));
        }
    }
    let resolver = config.dns.resolver.as_str();
    if !matches!(resolver, "system" | "off") && resolver.parse::<SocketAddr>().is_err() {
        out.push(error(
            "dns.resolver",
            format!("{resolver:?} is not system, off or IP:PORT"),
        ));
    }
    if let Some(clamd) = &config.antivirus.clamd {
        if !host_port(clamd) {
            out.push(error(
                "antivirus.clamd",
                format!("{clamd:?} is not host:port"),
            ));
        }
    } else {
        out.push(warning(
            "antivirus",
            "no clamd: messages are not scanned for viruses",
        ));
    }
}

fn store(config: &Config, out: &mut Vec<Finding>) {
    if let Some(url) = &config.store.url
        && let Err(e) = url.parse::<postgres::Config>()
    {
        out.push(error("store.url", format!("not a PostgreSQL URL: {e}")));
    }
    if config.store.connections == 0 {
        out.push(error("store.connections", "must be at least 1"));
    }
}

/// The data directory exists and is writable, or can be created.
fn data_dir(dir: &Path, out: &mut Vec<Finding>) {
    const KEY: &str = "gestore.data_dir";
    if dir.exists() {
        if !dir.is_dir() {
            out.push(error(KEY, format!("{} is not a directory", dir.display())));
        } else if let Err(e) = tempfile::tempfile_in(dir) {
            out.push(error(
                KEY,
                format!("{} is not writable: {e}", dir.display()),
            ));
        }
        return;
    }
    // A relative path's last ancestor is the empty path: the current directory.
    let parent = dir
        .ancestors()
        .skip(1)
        .map(|a| {
            if a.as_os_str().is_empty() {
                Path::new(".")
            } else {
                a
            }
        })
        .find(|a| a.exists());
    match parent {
        Some(p) if p.is_dir() && tempfile::tempfile_in(p).is_ok() => out.push(warning(
            KEY,
            format!("{} does not exist yet: created at start", dir.display()),
        )),
        _ => out.push(error(
            KEY,
            format!("{} does not exist and cannot be created", dir.display()),
        )),
    }
}

/// The CA bundle and provider index, the signing and TLS certificates with their keys.
fn certificates(config: &Config, out: &mut Vec<Finding>) {
    const KEY: &str = "certificates.dir";
    if config.certificates.lab_generate {
        out.push(warning(
            "certificates.lab_generate",
            "a lab PKI is generated when files are missing: never in production",
        ));
        if !config.own_file("sign.pem").exists() {
            return;
        }
    }
    if let Err(e) = crate::trust::load(&config.certificates.dir) {
        out.push(error(KEY, format!("{e:#}")));
    }
    for (what, cert, key) in [
        ("signing", "sign.pem", "sign.key"),
        ("TLS", "tls.pem", "tls.key"),
    ] {
        let (cert, key) = (config.own_file(cert), config.own_file(key));
        if let Err(message) = certificate_pair(&cert, &key) {
            out.push(error(KEY, format!("{what} certificate: {message}")));
            continue;
        }
        if let Err(e) = crate::private::check_key(&key) {
            out.push(error(KEY, format!("{e:#}")));
        }
        match days_left(&cert) {
            Ok(days) if days < 0 => out.push(error(
                KEY,
                format!("the {what} certificate {} has expired", cert.display()),
            )),
            Ok(days) if days < EXPIRY_WARNING_DAYS => out.push(warning(
                KEY,
                format!(
                    "the {what} certificate {} expires in {days} day(s)",
                    cert.display()
                ),
            )),
            Ok(_) => {}
            Err(message) => out.push(error(KEY, message)),
        }
    }
}

/// The first certificate of a PEM file.
fn read_certificate(path: &Path) -> Result<X509, String> {
    let pem = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    X509::from_pem(&pem).map_err(|e| format!("{} is not a PEM certificate: {e}", path.display()))
}

/// Both files read, and the key is the certificate's.
fn certificate_pair(cert: &Path, key: &Path) -> Result<(), String> {
    let x509 = read_certificate(cert)?;
    let pem = std::fs::read(key).map_err(|e| format!("cannot read {}: {e}", key.display()))?;
    let pkey = PKey::private_key_from_pem(&pem)
        .map_err(|e| format!("{} is not a PEM private key: {e}", key.display()))?;
    let public = x509
        .public_key()
        .map_err(|e| format!("{}: {e}", cert.display()))?;
    if !public.public_eq(&pkey) {
        return Err(format!(
            "the key {} is not the key of {}",
            key.display(),
            cert.display()
        ));
    }
    Ok(())
}

/// When the first certificate of `path` expires, in seconds since the Unix epoch.
pub fn not_after(path: &Path) -> Result<i64, String> {
    let x509 = read_certificate(path)?;
    let epoch = Asn1Time::from_unix(0).map_err(|e| e.to_string())?;
    let diff = epoch
        .diff(x509.not_after())
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(i64::from(diff.days) * DAY + i64::from(diff.secs))
}

/// Whole days until the first certificate of `path` expires; negative once expired.
pub fn days_left(path: &Path) -> Result<i64, String> {
    let left = not_after(path)? - chrono::Utc::now().timestamp();
    Ok(left.div_euclid(DAY))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_lines_of_offsets() {
        let text = "[gestore]\ndata_dir = \"d\"\n\n[listen]\nmx = \"nope\"\n";
        let tree = DeTable::parse(text).unwrap();
        let at = text.find("\"nope\"").unwrap();
        assert_eq!(key_at(&tree, at..at + 6), "listen.mx");
        assert_eq!(line_of(text, at), 5);
        assert_eq!(line_of_key(text, &tree, "listen.mx"), 5);
        assert_eq!(line_of_key(text, &tree, "listen.imap"), 4, "its table");
        assert_eq!(line_of_key(text, &tree, "store.url"), 0);
        let text = "[routes]\n\"pec.b.test\" = \"x\"\n\"pec.a.test\" = \"y\"\n";
        let tree = DeTable::parse(text).unwrap();
        assert_eq!(line_of_key(text, &tree, "routes.pec.a.test"), 3);
    }

    #[test]
    fn a_relative_data_directory_can_be_made_in_the_current_one() {
        let mut out = Vec::new();
        data_dir(Path::new("pecd-check-not-there/data"), &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].level, Level::Warning, "{}", out[0].message);
    }

    #[test]
    fn host_and_port() {
        assert!(host_port("127.0.0.1:3310"));
        assert!(host_port("clamd.internal:3310"));
        assert!(!host_port("clamd.internal"));
        assert!(!host_port(":25"));
        assert!(!host_port("mx:99999"));
    }
}
