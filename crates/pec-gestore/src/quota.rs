//! The notice a user gets in INBOX when deliveries take the mailbox past
//! [`WARNING_PERCENT`] of its quota: once it is full, certified mail for it is refused
//! with a non-delivery receipt to the sender, so the user is told in time. The same for
//! the security archive, which has a quota of its own: once it is full, new copies are
//! no longer kept in it (the messages are still delivered).
//!
//! The notice is sent once per crossing: a delivery warns only when the mailbox was
//! below the threshold without it and is at or above it with it, by the usage its own
//! durable step saw. The archive's usage is read after the commit, so two copies
//! committed in the same instant may both see the crossing: at worst two notices. A
//! plain message from the gestore's service address, not signed: it is not a PEC
//! receipt.

use chrono::{DateTime, Utc};
use pec_store::Usage;
use tracing::{info, warn};

use crate::antivirus::Scanner;
use crate::clock::italian;
use crate::service::Gestore;

/// The share of the quota, in percent, at which the user is warned.
pub const WARNING_PERCENT: u64 = 90;

/// Whether going from `before` to `after` bytes used crosses [`WARNING_PERCENT`] of `quota`.
pub fn crosses(before: u64, after: u64, quota: u64) -> bool {
    let threshold = u128::from(quota) * u128::from(WARNING_PERCENT);
    quota > 0 && u128::from(before) * 100 < threshold && u128::from(after) * 100 >= threshold
}

/// `used` as a whole percentage of `quota` (rounded down).
fn percent(used: u64, quota: u64) -> u64 {
    if quota == 0 {
        return 100;
    }
    u64::try_from(u128::from(used) * 100 / u128::from(quota)).unwrap_or(u64::MAX)
}

/// Bytes as megabytes with one decimal, Italian style (`12,5`).
fn megabytes(bytes: u64) -> String {
    let tenths = bytes.saturating_mul(10) / 1_000_000;
    format!("{},{}", tenths / 10, tenths % 10)
}

/// What a quota notice is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Space {
    /// The mailbox's folders.
    Mailbox,
    /// The mailbox's security archive.
    Archive,
}

impl Space {
    /// The notice's subject, before the percentage.
    fn subject(self) -> &'static str {
        match self {
            Space::Mailbox => "Avviso: casella quasi piena",
            Space::Archive => "Avviso: archivio di sicurezza quasi pieno",
        }
    }

    /// What takes the space, as the first sentence names it.
    fn what(self) -> &'static str {
        match self {
            Space::Mailbox => "la casella",
            Space::Archive => "l'archivio di sicurezza della casella",
        }
    }

    /// What happens when it is full, and what to do.
    fn advice(self) -> &'static str {
        match self {
            Space::Mailbox => {
                "Quando la casella è piena i messaggi di posta elettronica certificata in arrivo\r\n\
                 non possono essere consegnati e il mittente riceve un avviso di mancata consegna.\r\n\
                 Si consiglia di eliminare i messaggi non più necessari, dopo averli salvati\r\n\
                 se occorre conservarli.\r\n"
            }
            Space::Archive => {
                "Quando l'archivio è pieno le copie dei nuovi messaggi non vi sono più\r\n\
                 conservate; i messaggi sono comunque consegnati nella casella.\r\n\
                 Per ampliare l'archivio o scegliere che cosa conservarvi rivolgersi\r\n\
                 all'amministratore del proprio ente.\r\n"
            }
        }
    }
}

/// The notice's bytes (Italian text, UTF-8).
#[allow(clippy::too_many_arguments)]
pub fn notice(
    space: Space,
    gestore: &str,
    from: &str,
    to: &str,
    message_id: &str,
    used: u64,
    quota: u64,
    now: DateTime<Utc>,
) -> Vec<u8> {
    let pct = percent(used, quota);
    let display: String = gestore
        .chars()
        .filter(|c| !matches!(c, '"' | '\\') && !c.is_control())
        .collect();
    format!(
        "From: \"{display}\" <{from}>\r\n\
         To: <{to}>\r\n\
         Subject: {subject} ({pct} %)\r\n\
         Date: {date}\r\n\
         Message-ID: <{message_id}>\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=UTF-8\r\n\
         Content-Transfer-Encoding: 8bit\r\n\
         Auto-Submitted: auto-generated\r\n\
         \r\n\
         Gentile utente,\r\n\
         \r\n\
         {what} {to} occupa {used_mb} MB dei {quota_mb} MB disponibili ({pct} %).\r\n\
         \r\n\
         {advice}\
         \r\n\
         Questo è un messaggio automatico: non rispondere.\r\n\
         \r\n\
         {gestore}\r\n",
        subject = space.subject(),
        what = space.what(),
        advice = space.advice(),
        date = italian(now).to_rfc2822(),
        used_mb = megabytes(used),
        quota_mb = megabytes(quota),
    )
    .into_bytes()
}

impl<S: Scanner> Gestore<S> {
    /// After `added` bytes of copies were kept in `address`'s security archive, puts the
    /// quota notice in its INBOX if they took the archive past [`WARNING_PERCENT`]. Best
    /// effort: a failure is logged.
    pub fn warn_if_archive_nearly_full(&self, address: &str, added: u64) {
        match self.store.archive_usage(address) {
            Ok(usage) => self.warn_if_crossed(Space::Archive, address, usage, added),
            Err(e) => warn!(mailbox = address, "cannot read the archive's usage: {e}"),
        }
    }

    /// Puts the quota notice in `address`'s INBOX if the last `added` bytes of `usage`
    /// took its `space` past [`WARNING_PERCENT`]. Best effort: a failure is logged.
    pub fn warn_if_crossed(&self, space: Space, address: &str, usage: Usage, added: u64) {
        if !crosses(usage.used.saturating_sub(added), usage.used, usage.quota) {
            return;
        }
        let now = self.now();
        let bytes = notice(
            space,
            &self.id.name,
            self.id.address(),
            address,
            &self.id.new_id(now),
            usage.used,
            usage.quota,
            now,
        );
        match self
            .store
            .deliver(address, "INBOX", &bytes, &[], now.timestamp())
        {
            Ok(_) => {
                info!(
                    mailbox = address,
                    ?space,
                    used = usage.used,
                    quota = usage.quota,
                    "quota notice delivered"
                );
                if let Some(hook) = &self.on_delivery {
                    hook(address, "INBOX");
                }
            }
            Err(e) => warn!(mailbox = address, "quota notice not delivered: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crossing_is_detected_once() {
        assert!(crosses(899, 900, 1000));
        assert!(crosses(0, 1000, 1000));
        assert!(!crosses(900, 950, 1000), "already past: no new notice");
        assert!(!crosses(100, 899, 1000));
        assert!(!crosses(0, 0, 0));
        assert!(crosses(u64::MAX / 2, u64::MAX, u64::MAX), "no overflow");
    }

    #[test]
    fn notice_text() {
        let now = DateTime::parse_from_rfc3339("2025-03-01T10:00:00Z")
            .map(|d| d.with_timezone(&Utc))
            .unwrap();
        let n = notice(
            Space::Mailbox,
            "Demo PEC",
            "posta-certificata@pec.demo.test",
            "mario@pec.demo.test",
            "x@pec.demo.test",
            1_900_000,
            2_000_000,
            now,
        );
        let text = String::from_utf8(n).unwrap();
        assert!(text.contains("Subject: Avviso: casella quasi piena (95 %)\r\n"));
        assert!(text.contains("occupa 1,9 MB dei 2,0 MB disponibili (95 %)"));
        assert!(
            text.contains("Date: Sat, 1 Mar 2025 11:00:00 +0100\r\n"),
            "{text}"
        );
        let n = notice(
            Space::Archive,
            "Demo PEC",
            "posta-certificata@pec.demo.test",
            "mario@pec.demo.test",
            "y@pec.demo.test",
            5_400_000,
            6_000_000,
            now,
        );
        let text = String::from_utf8(n).unwrap();
        assert!(text.contains("Subject: Avviso: archivio di sicurezza quasi pieno (90 %)\r\n"));
        assert!(text.contains(
            "l'archivio di sicurezza della casella mario@pec.demo.test occupa 5,4 MB dei 6,0 MB"
        ));
    }
}
