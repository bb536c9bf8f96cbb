//! Exports of legal log records, for conservazione and for handing data to
//! a user or an authority: JSON lines (one record per line, every field, lists
//! as arrays) and CSV (RFC 4180 quoting; lists joined with `;`). Backend-free:
//! they take records from [`crate::Ledger::search_log`].

use std::io::Write;

use crate::error::{Error, Result};
use crate::model::LogRecord;

/// Separator of list items (recipients, generated Message-IDs) in a CSV cell.
pub const CSV_LIST_SEPARATOR: &str = ";";

/// The CSV header row, naming the columns in order.
const CSV_HEADER: [&str; 13] = [
    "seq",
    "at",
    "at_local",
    "event",
    "msgid",
    "original_msgid",
    "sender",
    "recipients",
    "subject",
    "generated_ids",
    "gestore",
    "detail",
    "hash",
];

/// Maps a write failure to the crate's error.
fn write_error(e: std::io::Error) -> Error {
    Error::io("<log export>", e)
}

/// Writes each record as one line of JSON (the fields of [`LogRecord`],
/// flattened); returns how many.
pub fn write_log_jsonl<'a>(
    records: impl IntoIterator<Item = &'a LogRecord>,
    mut out: impl Write,
) -> Result<u64> {
    let mut n = 0;
    for record in records {
        serde_json::to_writer(&mut out, record).map_err(|e| write_error(e.into()))?;
        out.write_all(b"\n").map_err(write_error)?;
        n += 1;
    }
    out.flush().map_err(write_error)?;
    Ok(n)
}

/// One CSV field: quoted when it holds a comma, a quote, CR or LF (quotes
/// doubled), as RFC 4180 requires; left bare otherwise.
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// Writes one CSV row, CRLF-terminated.
fn csv_row<S: AsRef<str>>(out: &mut impl Write, cells: &[S]) -> Result<()> {
    let line: Vec<String> = cells.iter().map(|c| csv_field(c.as_ref())).collect();
    out.write_all(line.join(",").as_bytes())
        .and_then(|()| out.write_all(b"\r\n"))
        .map_err(write_error)
}

/// Writes a header row and one row per record; returns how many records.
pub fn write_log_csv<'a>(
    records: impl IntoIterator<Item = &'a LogRecord>,
    mut out: impl Write,
) -> Result<u64> {
    csv_row(&mut out, &CSV_HEADER)?;
    let mut n = 0;
    for r in records {
        let e = &r.entry;
        csv_row(
            &mut out,
            &[
                r.seq.to_string(),
                e.at.to_string(),
                e.at_local.clone(),
                e.event.clone(),
                e.msgid.clone(),
                e.original_msgid.clone(),
                e.sender.clone(),
                e.recipients.join(CSV_LIST_SEPARATOR),
                e.subject.clone(),
                e.generated_ids.join(CSV_LIST_SEPARATOR),
                e.gestore.clone(),
                e.detail.clone(),
                r.hash.clone(),
            ],
        )?;
        n += 1;
    }
    out.flush().map_err(write_error)?;
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quoting() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("two\nlines"), "\"two\nlines\"");
        assert_eq!(csv_field(""), "");
    }
}
