//! `pecd report`: what the gestore did and how available it was over a period, from the
//! legal log, the virus store and the uptime record — the figures the supervisor asks
//! a gestore for.
//!
//! Availability (spec §7.2: at least 99.8 % of the period, no single outage over half
//! of the 0.2 % allowed): the running gestore records every minute it is up (a row per
//! minute in the store, written while it can write its store; any node of a gestore
//! counts). A minute of the period without a row is a minute of unavailability. The
//! period is counted from the first minute ever recorded (before it the service did not
//! exist) up to the current minute (the future is not counted); the current minute
//! itself is left out, since it may not be recorded yet.

use std::collections::BTreeMap;
use std::process::ExitCode;

use anyhow::bail;
use chrono::{NaiveDate, Utc};
use serde::Serialize;

use crate::config::Config;

/// The least availability allowed, in thousandths (spec §7.2: 99.8 %).
pub const AVAILABILITY_PERMILLE: i64 = 998;

/// The longest period a report covers, in days (the reference period is four months).
pub const MAX_DAYS: i64 = 400;

/// `pecd report` arguments.
#[derive(clap::Args)]
pub struct ReportArgs {
    /// First day (`YYYY-MM-DD`, UTC).
    #[arg(long)]
    pub from: String,
    /// Last day, included (`YYYY-MM-DD`, UTC).
    #[arg(long)]
    pub to: String,
    /// Write JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Availability over the period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Availability {
    /// Minutes counted (from the first recorded minute, up to now).
    pub minutes: i64,
    /// Minutes without the service up.
    pub down_minutes: i64,
    /// The longest run of consecutive down minutes.
    pub longest_outage_minutes: i64,
    /// Down minutes allowed (0.2 % of `minutes`).
    pub allowed_down_minutes: i64,
    /// Availability in percent, two decimals.
    pub percent: String,
    /// Whether both rules of spec §7.2 hold.
    pub compliant: bool,
}

/// The report of one period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    /// First day.
    pub from: String,
    /// Last day (included).
    pub to: String,
    /// Submissions accepted (ricevute di accettazione issued).
    pub accepted: u64,
    /// Submissions refused (avvisi di non accettazione issued).
    pub refused: u64,
    /// Ricevute di presa in carico issued.
    pub prese_in_carico: u64,
    /// Receipts and notices issued, by legal log event.
    pub issued: BTreeMap<String, u64>,
    /// Receipts received from other gestori, by kind.
    pub received: BTreeMap<String, u64>,
    /// Infected messages kept in the virus store.
    pub viruses: u64,
    /// `None` when the service never recorded a minute up.
    pub availability: Option<Availability>,
}

/// Legal log events that are receipts or notices the gestore issues.
const ISSUED: &[&str] = &[
    "accettazione",
    "non-accettazione",
    "presa-in-carico",
    "consegna",
    "errore-consegna",
    "errore-consegna-virus",
    "rilevazione-virus",
    "preavviso-errore-consegna",
];

/// Availability of the minutes `[start, end)` (multiples of 60) given the recorded ones.
pub fn availability(start: i64, end: i64, recorded: &[i64]) -> Availability {
    let minutes = ((end - start) / 60).max(0);
    let mut down = 0;
    let mut longest = 0;
    let mut expected = start;
    let mut up = 0;
    for &m in recorded.iter().filter(|&&m| m >= start && m < end) {
        if m < expected {
            continue;
        }
        let gap = (m - expected) / 60;
        down += gap;
        longest = longest.max(gap);
        expected = m + 60;
        up += 1;
    }
    let tail = ((end - expected) / 60).max(0);
    down += tail;
    longest = longest.max(tail);
    let allowed = minutes * (1000 - AVAILABILITY_PERMILLE) / 1000;
    let hundredths = if minutes == 0 {
        10_000
    } else {
        up * 10_000 / minutes
    };
    Availability {
        minutes,
        down_minutes: down,
        longest_outage_minutes: longest,
        allowed_down_minutes: allowed,
        percent: format!("{}.{:02}", hundredths / 100, hundredths % 100),
        compliant: down <= allowed && longest * 2 <= allowed,
    }
}

/// Builds the report from the counts of legal log events, the viruses and the uptime.
pub fn build(
    (from, to): (&str, &str),
    events: &[(String, u64)],
    viruses: u64,
    window: Option<(i64, i64)>,
    uptime: &[i64],
) -> Report {
    let count = |e: &str| {
        events
            .iter()
            .find(|(name, _)| name == e)
            .map_or(0, |(_, n)| *n)
    };
    let issued = ISSUED.iter().map(|e| (e.to_string(), count(e))).collect();
    let received = events
        .iter()
        .filter_map(|(e, n)| e.strip_prefix("ricezione ").map(|k| (k.to_string(), *n)))
        .collect();
    Report {
        from: from.into(),
        to: to.into(),
        accepted: count("accettazione"),
        refused: count("non-accettazione"),
        prese_in_carico: count("presa-in-carico"),
        issued,
        received,
        viruses,
        availability: window.map(|(start, end)| availability(start, end, uptime)),
    }
}

/// The report as text.
pub fn text(r: &Report) -> String {
    let mut out = format!("period: {} to {} (UTC, inclusive)\n", r.from, r.to);
    out.push_str(&format!("accepted: {}\n", r.accepted));
    out.push_str(&format!("refused (non accettazione): {}\n", r.refused));
    out.push_str(&format!("prese in carico: {}\n", r.prese_in_carico));
    out.push_str(&format!("viruses detected: {}\n", r.viruses));
    out.push_str("issued:\n");
    for (k, n) in &r.issued {
        out.push_str(&format!("  {k}: {n}\n"));
    }
    out.push_str("received:\n");
    for (k, n) in &r.received {
        out.push_str(&format!("  {k}: {n}\n"));
    }
    match &r.availability {
        None => out.push_str("availability: no uptime recorded in or before the period\n"),
        Some(a) => out.push_str(&format!(
            "availability: {} % of {} minutes; down {} minutes (allowed {}), longest outage \
             {} minutes (allowed {}); {}\n",
            a.percent,
            a.minutes,
            a.down_minutes,
            a.allowed_down_minutes,
            a.longest_outage_minutes,
            a.allowed_down_minutes / 2,
            if a.compliant {
                "within spec §7.2"
            } else {
                "NOT within spec §7.2"
            }
        )),
    }
    out
}

fn day(text: &str) -> anyhow::Result<i64> {
    let d = NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .map_err(|e| anyhow::anyhow!("{text:?} is not a date (YYYY-MM-DD): {e}"))?;
    Ok(d.and_hms_opt(0, 0, 0)
        .map(|t| t.and_utc().timestamp())
        .unwrap_or_default())
}

/// Runs `pecd report`.
pub fn run(config: &Config, args: ReportArgs) -> anyhow::Result<ExitCode> {
    let from = day(&args.from)?;
    let to = day(&args.to)? + 86_400;
    if to <= from || (to - from) / 86_400 > MAX_DAYS {
        bail!("the period must run forward and span at most {MAX_DAYS} days");
    }
    let store = crate::admin::open(config)?;
    let events = store.count_log_events(from, to)?;
    let viruses = store
        .list_virus()?
        .iter()
        .filter(|v| v.stored_at >= from && v.stored_at < to)
        .count() as u64;
    let now = Utc::now().timestamp();
    let current_minute = now - now.rem_euclid(60);
    let uptime = store.uptime(from, to)?;
    let window = uptime.since.map(|since| {
        let start = from.max(since);
        (start, to.min(current_minute).max(start))
    });
    let report = build(
        (&args.from, &args.to),
        &events,
        viruses,
        window,
        &uptime.minutes,
    );
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", text(&report));
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn down_minutes_are_the_gaps_and_the_tail() {
        // Ten minutes; up in 0, 1, 4, 5, 6, 7 (two down, then 8 and 9 missing).
        let up: Vec<i64> = [0, 1, 4, 5, 6, 7].iter().map(|m| m * 60).collect();
        let a = availability(0, 600, &up);
        assert_eq!(
            (a.minutes, a.down_minutes, a.longest_outage_minutes),
            (10, 4, 2)
        );
        assert_eq!(a.percent, "60.00");
        assert!(!a.compliant);
        // A quadrimestre up but for 5 h 50 min in two outages: compliant (≤ 50 % each).
        let minutes = 122 * 1440;
        let up: Vec<i64> = (0..minutes)
            .filter(|m| !(1000..1175).contains(m) && !(5000..5175).contains(m))
            .map(|m| m * 60)
            .collect();
        let a = availability(0, minutes * 60, &up);
        assert_eq!(a.down_minutes, 350);
        assert_eq!(a.allowed_down_minutes, 351);
        assert!(a.compliant, "{a:?}");
        // One outage of the same length: over half the allowance.
        let up: Vec<i64> = (0..minutes)
            .filter(|m| !(1000..1350).contains(m))
            .map(|m| m * 60)
            .collect();
        assert!(!availability(0, minutes * 60, &up).compliant);
    }

    #[test]
    fn counts_come_from_the_events() {
        let events = vec![
            ("accettazione".to_string(), 3),
            ("non-accettazione".to_string(), 1),
            ("ricezione avvenuta-consegna".to_string(), 2),
        ];
        let r = build(("2026-01-01", "2026-01-31"), &events, 1, None, &[]);
        assert_eq!(
            (r.accepted, r.refused, r.prese_in_carico, r.viruses),
            (3, 1, 0, 1)
        );
        assert_eq!(r.received.get("avvenuta-consegna"), Some(&2));
        assert_eq!(r.issued.get("consegna"), Some(&0));
        assert!(text(&r).contains("no uptime recorded"));
    }
}
