//! The gestore's Prometheus metrics, served at `/metrics` on the HTTP listener: one
//! [`Metrics`] per server, passed to where the events happen (the commit of each PEC
//! step, the submission handler, the signer, the listeners, the store), and the gauges
//! that describe state (queue, certificates, provider index) computed at scrape time.
//!
//! Every label takes a bounded set of values: event and method names from the code,
//! listener names, the refusal causes.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use pec_proto::smime::{CountedSigner, Signer};
use pec_store::Store;
use pec_store::timed::CallObserver;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::access::RefusalCause;

/// The content type of [`Metrics::render`]'s text: Prometheus's text format, which
/// every scraper and `promtool check metrics` read.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EventLabels {
    event: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SubmissionLabels {
    outcome: &'static str,
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ServiceLabels {
    service: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MethodLabels {
    method: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CertificateLabels {
    certificate: &'static str,
}

/// The buckets of the store latency, in seconds: 100 µs to about 13 s.
fn store_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.0001, 4.0, 9))
}

/// The metrics of one server; see the module documentation.
pub struct Metrics {
    registry: Registry,
    events: Family<EventLabels, Counter>,
    submissions: Family<SubmissionLabels, Counter>,
    signatures: Counter,
    verification_failures: Counter,
    delayed_submissions: Counter,
    sessions_open: Family<ServiceLabels, Gauge>,
    sessions: Family<ServiceLabels, Counter>,
    store_seconds: Family<MethodLabels, Histogram, fn() -> Histogram>,
    store_up: Gauge,
    listeners_up: Gauge,
    queue_entries: Gauge,
    queue_oldest_seconds: Gauge,
    certificate_seconds: Family<CertificateLabels, Gauge>,
    index_age_seconds: Gauge,
    /// Each certificate watched and when it expires (seconds since the epoch).
    expiries: Mutex<Vec<(&'static str, i64)>>,
    /// When the provider index file in force was written; `i64::MIN` if unknown.
    index_written_at: AtomicI64,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// Registers every metric, all at zero.
    pub fn new() -> Metrics {
        let mut m = Metrics {
            registry: Registry::with_prefix("pecd"),
            events: Family::default(),
            submissions: Family::default(),
            signatures: Counter::default(),
            verification_failures: Counter::default(),
            delayed_submissions: Counter::default(),
            sessions_open: Family::default(),
            sessions: Family::default(),
            store_seconds: Family::new_with_constructor(store_histogram),
            store_up: Gauge::default(),
            listeners_up: Gauge::default(),
            queue_entries: Gauge::default(),
            queue_oldest_seconds: Gauge::default(),
            certificate_seconds: Family::default(),
            index_age_seconds: Gauge::default(),
            expiries: Mutex::new(Vec::new()),
            index_written_at: AtomicI64::new(i64::MIN),
        };
        let r = &mut m.registry;
        r.register(
            "events",
            "PEC events recorded in the legal log (receipts and notices emitted, messages received), by event",
            m.events.clone(),
        );
        r.register(
            "submissions",
            "Messages submitted by users, by outcome and refusal reason",
            m.submissions.clone(),
        );
        r.register(
            "signatures",
            "S/MIME signatures made (envelopes, receipts, notices)",
            m.signatures.clone(),
        );
        r.register(
            "signature_verification_failures",
            "Received PEC messages whose signature did not verify",
            m.verification_failures.clone(),
        );
        r.register(
            "submissions_delayed",
            "Submissions that waited for the outbound queue to catch up (in-flow control)",
            m.delayed_submissions.clone(),
        );
        r.register(
            "sessions_open",
            "Client sessions open now, by listener",
            m.sessions_open.clone(),
        );
        r.register(
            "sessions",
            "Client sessions opened, by listener",
            m.sessions.clone(),
        );
        r.register(
            "store_operation_duration_seconds",
            "Duration of store operations, by method",
            m.store_seconds.clone(),
        );
        r.register(
            "store_up",
            "Whether the store answered the last scrape (1) or not (0)",
            m.store_up.clone(),
        );
        r.register(
            "listeners_up",
            "Whether every listener is running (1) or not (0)",
            m.listeners_up.clone(),
        );
        r.register(
            "queue_entries",
            "Messages in the outbound queue",
            m.queue_entries.clone(),
        );
        r.register(
            "queue_oldest_age_seconds",
            "Age of the oldest message in the outbound queue (0 when empty)",
            m.queue_oldest_seconds.clone(),
        );
        r.register(
            "certificate_expiry_seconds",
            "Time left until the certificate expires (negative once expired; / 86400 for days), by certificate",
            m.certificate_seconds.clone(),
        );
        r.register(
            "provider_index_age_seconds",
            "Time since the provider index in force was written",
            m.index_age_seconds.clone(),
        );
        m
    }

    /// Counts the legal log events of a committed step (`LogEntry::event`).
    pub fn committed<'a>(&self, events: impl IntoIterator<Item = &'a str>) {
        for event in events {
            self.events
                .get_or_create(&EventLabels {
                    event: event.to_string(),
                })
                .inc();
        }
    }

    /// Counts a submission accepted.
    pub fn accepted(&self) {
        self.submission("accepted", "none");
    }

    /// Counts a submission refused, by the rule that refused it.
    pub fn refused(&self, cause: RefusalCause) {
        self.submission("refused", cause.as_str());
    }

    fn submission(&self, outcome: &'static str, reason: &'static str) {
        self.submissions
            .get_or_create(&SubmissionLabels { outcome, reason })
            .inc();
    }

    /// Counts a submission that waited for the queue to catch up ([`crate::flow`]).
    pub fn delayed_submission(&self) {
        self.delayed_submissions.inc();
    }

    /// Counts a received message whose signature does not verify.
    pub fn verification_failed(&self) {
        self.verification_failures.inc();
    }

    /// Records when a certificate (`signing`, `tls`) expires.
    pub fn certificate(&self, name: &'static str, not_after: i64) {
        let mut expiries = self.expiries.lock().unwrap_or_else(|e| e.into_inner());
        expiries.retain(|(n, _)| *n != name);
        expiries.push((name, not_after));
    }

    /// Records when the provider index in force was written.
    pub fn index_written(&self, at: i64) {
        self.index_written_at.store(at, Ordering::Relaxed);
    }

    /// Records whether every listener runs.
    pub fn listeners(&self, up: bool) {
        self.listeners_up.set(i64::from(up));
    }

    /// Whether every listener runs.
    pub fn listeners_running(&self) -> bool {
        self.listeners_up.get() == 1
    }

    /// What the store wrapper ([`pec_store::timed::Timed`]) reports each call to.
    pub fn store_observer(self: &Arc<Self>) -> CallObserver {
        let metrics = Arc::downgrade(self);
        Arc::new(move |method: &'static str, took: Duration| {
            if let Some(m) = metrics.upgrade() {
                m.store_seconds
                    .get_or_create(&MethodLabels { method })
                    .observe(took.as_secs_f64());
            }
        })
    }

    /// `signer`, counting its signatures here.
    pub fn counting(self: &Arc<Self>, signer: Arc<dyn Signer>) -> Arc<dyn Signer> {
        let metrics = self.clone();
        Arc::new(CountedSigner::new(signer, move || {
            metrics.signatures.inc();
        }))
    }

    /// Every metric in Prometheus's text format ([`CONTENT_TYPE`]) at `now`, the state
    /// gauges read from `store` with one aggregate query (a failing store gives
    /// `pecd_store_up 0` and the other values as last seen).
    pub fn render(&self, store: &dyn Store, now: DateTime<Utc>) -> String {
        let now = now.timestamp();
        match store.queue_summary() {
            Ok(q) => {
                self.store_up.set(1);
                self.queue_entries
                    .set(i64::try_from(q.entries).unwrap_or(i64::MAX));
                let oldest = q.oldest_created_at.map_or(0, |t| now.saturating_sub(t));
                self.queue_oldest_seconds.set(oldest.max(0));
            }
            Err(_) => {
                self.store_up.set(0);
            }
        }
        let expiries = self
            .expiries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        for (certificate, not_after) in expiries {
            self.certificate_seconds
                .get_or_create(&CertificateLabels { certificate })
                .set(not_after.saturating_sub(now));
        }
        let written = self.index_written_at.load(Ordering::Relaxed);
        if written != i64::MIN {
            self.index_age_seconds
                .set(now.saturating_sub(written).max(0));
        }
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode_registry(&mut text, &self.registry);
        prometheus_text(&text)
    }
}

/// Prometheus's text format from the OpenMetrics text `prometheus-client` writes: the two
/// differ in how a counter family is named (OpenMetrics: `x` with samples `x_total`;
/// Prometheus: `x_total` throughout), and in the `# UNIT` lines, which Prometheus's format
/// has not.
fn prometheus_text(openmetrics: &str) -> String {
    let counter = |line: &str| {
        line.strip_prefix("# TYPE ")
            .and_then(|t| t.strip_suffix(" counter"))
            .map(str::to_string)
    };
    let mut out = String::with_capacity(openmetrics.len() + 256);
    let mut lines = openmetrics.lines().peekable();
    while let Some(line) = lines.next() {
        if line.starts_with("# UNIT ") {
            continue;
        }
        // A family's HELP comes just before its TYPE.
        if let Some(help) = line.strip_prefix("# HELP ")
            && let Some(family) = lines.peek().and_then(|next| counter(next))
        {
            let text = help.strip_prefix(family.as_str()).unwrap_or(help);
            out.push_str(&format!("# HELP {family}_total{text}\n"));
        } else if let Some(family) = counter(line) {
            out.push_str(&format!("# TYPE {family}_total counter\n"));
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// Counts the listeners' sessions.
impl pec_net::SessionObserver for Metrics {
    fn opened(&self, service: &'static str) {
        let labels = ServiceLabels { service };
        self.sessions.get_or_create(&labels).inc();
        self.sessions_open.get_or_create(&labels).inc();
    }

    fn closed(&self, service: &'static str) {
        self.sessions_open
            .get_or_create(&ServiceLabels { service })
            .dec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counter_families_take_their_samples_name() {
        let om = "# HELP a_x Things.\n# TYPE a_x counter\na_x_total{k=\"v\"} 2\n\
                  # HELP a_g Level.\n# TYPE a_g gauge\n# UNIT a_g bytes\na_g 1\n# EOF\n";
        assert_eq!(
            prometheus_text(om),
            "# HELP a_x_total Things.\n# TYPE a_x_total counter\na_x_total{k=\"v\"} 2\n\
             # HELP a_g Level.\n# TYPE a_g gauge\na_g 1\n# EOF\n"
        );
    }

    #[test]
    fn state_gauges_are_computed_at_scrape_time() {
        let dir = tempfile::tempdir().unwrap();
        let store = pec_store::SqliteStore::open(dir.path()).unwrap();
        let m = Metrics::new();
        let now = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        m.certificate("tls", now.timestamp() + 10 * 86_400 + 5);
        m.certificate("signing", now.timestamp() - 1);
        m.index_written(now.timestamp() - 3600);
        m.committed(["accettazione", "consegna", "consegna"]);
        m.refused(RefusalCause::Virus);
        let text = m.render(&store, now);
        for line in [
            "pecd_certificate_expiry_seconds{certificate=\"tls\"} 864005",
            "pecd_certificate_expiry_seconds{certificate=\"signing\"} -1",
            "# TYPE pecd_events_total counter",
            "# HELP pecd_signatures_total S/MIME signatures made (envelopes, receipts, notices).",
            "pecd_provider_index_age_seconds 3600",
            "pecd_queue_entries 0",
            "pecd_store_up 1",
            "pecd_events_total{event=\"consegna\"} 2",
            "pecd_submissions_total{outcome=\"refused\",reason=\"virus\"} 1",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
        }
        assert!(!text.contains("# EOF"), "{text}");
        assert!(!text.contains("# TYPE pecd_events counter"), "{text}");
    }
}
