//! What a gestore must be able to prove, gathered while it runs: the daily RFC 3161 time
//! stamp of the legal log (spec §8.1) and the minutes the service was up, from which
//! `pecd report` computes unavailability against the 99.8 % of spec §7.2.
//!
//! Both run in their own task, apart from the queue and the sessions: a slow or failing
//! time-stamping authority is retried and logged, and never holds up mail.

use std::sync::Arc;
use std::time::Duration;

use pec_proto::tsp;
use pec_store::{Ledger, LogTimestamp, NewLogTimestamp};
use tracing::{info, warn};

use crate::antivirus::Scanner;
use crate::error::{Error, Result};
use crate::service::{Gestore, blocking};

/// How often the legal log is time-stamped (spec §8.1: every day).
pub const STAMP_EVERY: i64 = 24 * 3600;
/// How long after a failed time stamp the next attempt is made.
pub const STAMP_RETRY: i64 = 300;
/// How often the task wakes: three times a minute, so that no minute of the uptime
/// record is missed however the wake-ups drift.
pub const TICK: Duration = Duration::from_secs(20);
/// The media type of an RFC 3161 request over HTTP.
pub const TIMESTAMP_QUERY: &str = "application/timestamp-query";

/// The 32 bytes of a hex SHA-256 (a chain hash of the legal log).
fn digest_of(hex: &str) -> Result<[u8; 32]> {
    let mut out = [0u8; 32];
    if hex.len() != 64 || !hex.is_ascii() {
        return Err(Error::Stored(format!(
            "{hex:?} is not a SHA-256 hex digest"
        )));
    }
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16)
            .map_err(|_| Error::Stored(format!("{hex:?} is not a SHA-256 hex digest")))?;
    }
    Ok(out)
}

/// Asks the authority at `tsa_url` to time-stamp the legal log's current head (the
/// imprint is the head's chain hash itself, a SHA-256), checks the answer covers it, and
/// keeps the answer with the head. `now` is when it was asked. `None` for an empty log:
/// there is nothing to prove yet.
pub async fn stamp_log(
    store: &dyn Ledger,
    tsa_url: &str,
    now: i64,
) -> Result<Option<LogTimestamp>> {
    let head = blocking(|| store.log_head())?;
    if head.seq == 0 {
        return Ok(None);
    }
    let digest = digest_of(&head.hash)?;
    let mut nonce = [0u8; 8];
    openssl::rand::rand_bytes(&mut nonce).map_err(pec_proto::Error::from)?;
    let request = tsp::request(&digest, &nonce)?;
    let response = crate::fetch::post(tsa_url, TIMESTAMP_QUERY, request, tsp::MAX_RESPONSE).await?;
    tsp::check_response(&response, &digest, &nonce)?;
    let stamp = NewLogTimestamp {
        seq: head.seq,
        head_hash: head.hash,
        requested_at: now,
        tsa_url: tsa_url.to_string(),
        response,
    };
    Ok(Some(blocking(|| store.store_log_timestamp(&stamp))?))
}

/// When the next time stamp is due, given the last one kept (`None`: at once).
pub fn next_stamp_due(last: Option<i64>) -> i64 {
    last.map_or(i64::MIN, |t| t.saturating_add(STAMP_EVERY))
}

/// Records the current minute as up, and time-stamps the legal log at `tsa_url` (if
/// configured) once a day, until `shutdown` resolves.
pub async fn run<S: Scanner>(
    g: Arc<Gestore<S>>,
    tsa_url: Option<String>,
    shutdown: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    let last = match blocking(|| g.store.list_log_timestamps()) {
        Ok(stamps) => stamps.last().map(|s| s.requested_at),
        Err(e) => {
            warn!("cannot read the legal log's time stamps: {e}");
            None
        }
    };
    let mut due = next_stamp_due(last);
    loop {
        let now = g.now().timestamp();
        if let Err(e) = blocking(|| g.store.record_uptime(now - now.rem_euclid(60))) {
            warn!("cannot record the service's uptime: {e}");
        }
        if let Some(url) = tsa_url.as_deref().filter(|_| now >= due) {
            // A slow authority never holds up shutdown either.
            let result = tokio::select! {
                _ = &mut shutdown => break,
                r = stamp_log(g.store.as_ref(), url, now) => r,
            };
            match result {
                Ok(Some(s)) => {
                    info!(seq = s.seq, head = %s.head_hash, "legal log time-stamped");
                    due = next_stamp_due(Some(now));
                }
                // Nothing logged yet: look again later, quietly.
                Ok(None) => due = now.saturating_add(STAMP_RETRY),
                Err(e) => {
                    warn!(
                        "cannot time-stamp the legal log at {url}, retrying in {STAMP_RETRY} s: {e}"
                    );
                    due = now.saturating_add(STAMP_RETRY);
                }
            }
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
    fn digests_are_64_hex_digits() {
        let hex = "00ff".repeat(16);
        let d = digest_of(&hex).unwrap();
        assert_eq!((d[0], d[1], d[31]), (0, 255, 255));
        assert!(digest_of("abc").is_err());
        assert!(digest_of(&"zz".repeat(32)).is_err());
        assert!(digest_of(&"é".repeat(32)).is_err());
    }

    #[test]
    fn stamps_are_due_a_day_after_the_last() {
        assert_eq!(next_stamp_due(None), i64::MIN);
        assert_eq!(next_stamp_due(Some(1000)), 1000 + STAMP_EVERY);
    }
}
