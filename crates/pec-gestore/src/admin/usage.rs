//! Usage for billing: mailbox-days, messages sent and received and storage, per mailbox
//! and per ente, over a period of Italian calendar days, so that the province can
//! pro-rate its yearly fee among the enti.
//!
//! A mailbox counts one mailbox-day for each day on which it was active (created and
//! neither removed nor suspended) at any moment: created on the 10th at 23:00 and
//! removed on the 12th at 01:00 is three days. Days are counted from the mailbox events
//! the administration records ([`pec_store::MailboxEvent`]); a mailbox that exists but
//! has none (created before they were recorded) counts as active from the period's start.
//! Messages sent are the mailbox's `accettazione` records in the legal log, messages
//! received its `consegna` records; storage is what the mailbox holds now.

use std::collections::BTreeMap;

use chrono::{DateTime, Days, NaiveDate, TimeZone, Utc};
use chrono_tz::Europe::Rome;
use pec_store::{
    LogQuery, MAILBOX_CREATED, MAILBOX_REACTIVATED, MAILBOX_REMOVED, MAILBOX_SUSPENDED,
    MailboxEvent,
};

use super::{Actor, Administration};
use crate::clock::italian;
use crate::error::{Refusal, Result};
use crate::service::domain_of;

/// The longest period asked at once (ten years of days).
pub const MAX_PERIOD_DAYS: u64 = 3660;

/// Days from `from` to `to`, both included, in Italian time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    /// The first day.
    pub from: NaiveDate,
    /// The last day.
    pub to: NaiveDate,
}

impl Period {
    /// The period between two `YYYY-MM-DD` dates, both included; refused when reversed
    /// or longer than [`MAX_PERIOD_DAYS`].
    pub fn parse(from: &str, to: &str) -> Result<Period> {
        let date = |s: &str| {
            NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").map_err(|_| {
                Refusal::invalid(
                    "bad-date",
                    format!("data non valida {s:?}: si attende AAAA-MM-GG"),
                )
            })
        };
        let (from, to) = (date(from)?, date(to)?);
        let days = (to - from).num_days();
        if days < 0 || days as u64 >= MAX_PERIOD_DAYS {
            return Err(Refusal::invalid(
                "bad-period",
                format!(
                    "periodo non valido: la fine non precede l'inizio e dura al più \
                     {MAX_PERIOD_DAYS} giorni"
                ),
            ));
        }
        Ok(Period { from, to })
    }

    /// The first instant of `day` in Italy.
    fn start_of(day: NaiveDate) -> i64 {
        Rome.from_local_datetime(&day.and_time(chrono::NaiveTime::MIN))
            .earliest()
            .map_or_else(
                || day.and_time(chrono::NaiveTime::MIN).and_utc(),
                |t| t.with_timezone(&Utc),
            )
            .timestamp()
    }

    /// The instants `[start, end)` the period covers.
    pub fn instants(&self) -> (i64, i64) {
        let after = self.to.checked_add_days(Days::new(1)).unwrap_or(self.to);
        (Self::start_of(self.from), Self::start_of(after))
    }
}

/// The Italian calendar day of an instant.
fn day_of(at: i64) -> NaiveDate {
    let t = DateTime::<Utc>::from_timestamp(at, 0).unwrap_or_default();
    italian(t).date_naive()
}

/// Mailbox-days of one mailbox in `period`, from its events in time order; an active
/// stretch still open runs to `today`. `active_from_start` counts the mailbox active
/// from before its first event (one that existed before events were recorded).
pub fn mailbox_days(
    events: &[MailboxEvent],
    period: Period,
    today: NaiveDate,
    active_from_start: bool,
) -> u64 {
    // Active stretches as (first day, last day), in time order.
    let mut stretches: Vec<(NaiveDate, NaiveDate)> = Vec::new();
    let mut open: Option<i64> = active_from_start.then(|| Period::start_of(period.from));
    for e in events {
        match e.kind.as_str() {
            MAILBOX_CREATED | MAILBOX_REACTIVATED => {
                open.get_or_insert(e.at);
            }
            MAILBOX_SUSPENDED | MAILBOX_REMOVED => {
                if let Some(start) = open.take()
                    && e.at > start
                {
                    stretches.push((day_of(start), day_of(e.at - 1)));
                }
            }
            _ => {}
        }
    }
    if let Some(start) = open {
        stretches.push((day_of(start), today));
    }
    let mut days = 0u64;
    let mut counted_to: Option<NaiveDate> = None;
    for (first, last) in stretches {
        let first = first.max(period.from);
        let first = match counted_to {
            Some(c) if c >= first => c.succ_opt().unwrap_or(c),
            _ => first,
        };
        let last = last.min(period.to);
        if last < first {
            continue;
        }
        days += (last - first).num_days() as u64 + 1;
        counted_to = Some(counted_to.map_or(last, |c| c.max(last)));
    }
    days
}

/// One mailbox's usage in a period.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct MailboxUsage {
    /// The ente owning its domain (empty for a domain of no ente).
    pub ente: String,
    /// The address.
    pub mailbox: String,
    /// Days it was active.
    pub mailbox_days: u64,
    /// Messages it sent (accepted by the access point).
    pub sent: u64,
    /// Messages delivered to it.
    pub received: u64,
    /// Bytes it holds now (0 once removed).
    pub storage_bytes: u64,
}

/// An ente's usage in a period: its mailboxes' added up.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct EnteUsage {
    /// The ente (empty for domains of no ente).
    pub ente: String,
    /// Mailboxes with any mailbox-day in the period.
    pub mailboxes: u64,
    /// Their mailbox-days.
    pub mailbox_days: u64,
    /// Messages they sent.
    pub sent: u64,
    /// Messages delivered to them.
    pub received: u64,
    /// Bytes they hold now.
    pub storage_bytes: u64,
}

/// The usage report of a period.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct UsageReport {
    /// First day (`YYYY-MM-DD`).
    pub from: String,
    /// Last day, included.
    pub to: String,
    /// Per ente, by name.
    pub enti: Vec<EnteUsage>,
    /// Per mailbox, by ente and address.
    pub mailboxes: Vec<MailboxUsage>,
}

/// The CSV header of [`UsageReport::csv`].
pub const CSV_HEADER: [&str; 6] = [
    "ente",
    "casella",
    "giorni_casella",
    "inviati",
    "ricevuti",
    "spazio_byte",
];

impl UsageReport {
    /// The report as CSV: [`CSV_HEADER`], one row per mailbox, then one total row per
    /// ente with an empty `casella`.
    pub fn csv(&self) -> String {
        let mut w = csv::Writer::from_writer(Vec::new());
        let rows = self
            .mailboxes
            .iter()
            .map(|m| {
                [
                    m.ente.clone(),
                    m.mailbox.clone(),
                    m.mailbox_days.to_string(),
                    m.sent.to_string(),
                    m.received.to_string(),
                    m.storage_bytes.to_string(),
                ]
            })
            .chain(self.enti.iter().map(|e| {
                [
                    e.ente.clone(),
                    String::new(),
                    e.mailbox_days.to_string(),
                    e.sent.to_string(),
                    e.received.to_string(),
                    e.storage_bytes.to_string(),
                ]
            }));
        // Writing to a Vec cannot fail.
        let _ = w.write_record(CSV_HEADER);
        for r in rows {
            let _ = w.write_record(&r);
        }
        String::from_utf8(w.into_inner().unwrap_or_default()).unwrap_or_default()
    }
}

/// A size as people read it: bytes in B, KiB, MiB, GiB or TiB (binary units), with
/// up to two decimals (`1.5 GiB`, `512 MiB`).
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut unit = 0;
    let mut value = bytes as f64;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        return format!("{bytes} B");
    }
    let text = format!("{value:.2}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    format!("{text} {}", UNITS[unit])
}

impl Administration {
    /// The usage of `ente` (every ente's for the province without one) in `period`;
    /// an ente's administrator sees only their own ente's.
    pub fn usage(&self, actor: &Actor, ente: Option<&str>, period: Period) -> Result<UsageReport> {
        let ente = match (&actor.ente, ente) {
            (Some(mine), Some(asked)) if mine != asked => {
                return Err(Refusal::forbidden(
                    "other-ente",
                    "si può consultare solo l'uso del proprio ente".into(),
                ));
            }
            (Some(mine), _) => Some(mine.clone()),
            (None, asked) => asked.map(str::to_string),
        };
        let enti = self.store.list_enti()?;
        if let Some(name) = &ente
            && !enti.iter().any(|e| e.name == *name)
        {
            return Err(pec_store::Error::NoSuchEnte(name.clone()).into());
        }
        let owner = |address: &str| -> String {
            let d = domain_of(address);
            enti.iter()
                .find(|e| e.domains.contains(&d))
                .map_or_else(String::new, |e| e.name.clone())
        };
        let (start, end) = period.instants();
        let now = self.clock.now();
        let today = italian(now).date_naive();
        let mut by_address: BTreeMap<String, Vec<MailboxEvent>> = BTreeMap::new();
        for e in self.store.mailbox_events(end)? {
            by_address.entry(e.address.clone()).or_default().push(e);
        }
        let existing = self.store.list_accounts(None)?;
        for a in &existing {
            by_address.entry(a.address.clone()).or_default();
        }
        let mut mailboxes = Vec::new();
        for (address, events) in &by_address {
            let ente_of = owner(address);
            if ente.as_ref().is_some_and(|e| *e != ente_of) {
                continue;
            }
            let exists = existing.iter().any(|a| a.address == *address);
            let days = mailbox_days(events, period, today, exists && events.is_empty());
            if days == 0 {
                continue;
            }
            let (sent, received) = self.messages(address, start, end)?;
            let storage_bytes = if exists {
                self.store.usage(address)?.used
            } else {
                0
            };
            mailboxes.push(MailboxUsage {
                ente: ente_of,
                mailbox: address.clone(),
                mailbox_days: days,
                sent,
                received,
                storage_bytes,
            });
        }
        mailboxes.sort_by(|a, b| (&a.ente, &a.mailbox).cmp(&(&b.ente, &b.mailbox)));
        let mut totals: Vec<EnteUsage> = Vec::new();
        for m in &mailboxes {
            if totals.last().is_none_or(|t| t.ente != m.ente) {
                totals.push(EnteUsage {
                    ente: m.ente.clone(),
                    mailboxes: 0,
                    mailbox_days: 0,
                    sent: 0,
                    received: 0,
                    storage_bytes: 0,
                });
            }
            if let Some(t) = totals.last_mut() {
                t.mailboxes += 1;
                t.mailbox_days += m.mailbox_days;
                t.sent += m.sent;
                t.received += m.received;
                t.storage_bytes += m.storage_bytes;
            }
        }
        Ok(UsageReport {
            from: period.from.to_string(),
            to: period.to.to_string(),
            enti: totals,
            mailboxes,
        })
    }

    /// Messages `address` sent and received in `[start, end)`, from the legal log.
    fn messages(&self, address: &str, start: i64, end: i64) -> Result<(u64, u64)> {
        let records = self.store.search_log(&LogQuery {
            address: Some(address.to_string()),
            from: Some(start),
            to: Some(end),
            ..LogQuery::default()
        })?;
        let sent = records
            .iter()
            .filter(|r| r.entry.event == "accettazione" && r.entry.sender == address)
            .count();
        let received = records
            .iter()
            .filter(|r| r.entry.event == "consegna" && r.entry.detail == address)
            .count();
        Ok((sent as u64, received as u64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(y: i32, m: u32, d: u32, h: u32) -> i64 {
        Rome.with_ymd_and_hms(y, m, d, h, 0, 0).unwrap().timestamp()
    }

    fn ev(kind: &str, at: i64) -> MailboxEvent {
        MailboxEvent {
            address: "a@x.it".into(),
            kind: kind.into(),
            at,
        }
    }

    #[test]
    fn days_count_any_part_of_an_italian_day_once() {
        let p = Period::parse("2026-03-01", "2026-03-31").unwrap();
        let today = NaiveDate::from_ymd_opt(2026, 6, 1).unwrap();
        let e = [
            ev(MAILBOX_CREATED, at(2026, 3, 10, 23)),
            ev(MAILBOX_REMOVED, at(2026, 3, 12, 1)),
        ];
        assert_eq!(mailbox_days(&e, p, today, false), 3);
        // Suspended on the 5th at noon, reactivated the same day: the 5th once.
        let e = [
            ev(MAILBOX_CREATED, at(2026, 3, 4, 9)),
            ev(MAILBOX_SUSPENDED, at(2026, 3, 5, 12)),
            ev(MAILBOX_REACTIVATED, at(2026, 3, 5, 18)),
            ev(MAILBOX_REMOVED, at(2026, 3, 6, 0)),
        ];
        assert_eq!(mailbox_days(&e, p, today, false), 2);
        // Still open: to the period's end; before the period: clipped.
        let e = [ev(MAILBOX_CREATED, at(2026, 2, 1, 9))];
        assert_eq!(mailbox_days(&e, p, today, false), 31);
        // Open and today inside the period: up to today.
        let today = NaiveDate::from_ymd_opt(2026, 3, 20).unwrap();
        assert_eq!(mailbox_days(&e, p, today, false), 20);
        assert_eq!(mailbox_days(&[], p, today, true), 20);
        assert_eq!(mailbox_days(&[], p, today, false), 0);
    }

    #[test]
    fn periods_are_bounded_and_ordered() {
        assert!(Period::parse("2026-03-02", "2026-03-01").is_err());
        assert!(Period::parse("2000-01-01", "2026-03-01").is_err());
        assert!(Period::parse("2026-3-1x", "2026-03-01").is_err());
        let p = Period::parse("2026-01-01", "2026-12-31").unwrap();
        assert_eq!(p.instants().1 - p.instants().0, 365 * 86400);
    }

    #[test]
    fn sizes_read_in_binary_units() {
        assert_eq!(human_size(0), "0 B");
        assert_eq!(human_size(1023), "1023 B");
        assert_eq!(human_size(1536 << 20), "1.5 GiB");
        assert_eq!(human_size(512 << 20), "512 MiB");
        assert_eq!(human_size(3 << 30), "3 GiB");
    }
}
