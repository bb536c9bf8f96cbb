//! Moving a gestore from the embedded store to PostgreSQL (`pecd store migrate`): every
//! row of every table of an embedded store, and the bytes of every blob it references,
//! copied into an empty PostgreSQL database in one transaction.
//!
//! The copy keeps what clients and auditors rely on: ids (so UIDVALIDITY, which is a
//! folder's id, does not change), UIDs, modseqs and flags (IMAP clients do not resync),
//! queue entries and timers as they were (the workers carry on where the embedded store
//! stopped), the legal log record for record with its chain state (its hashes verify
//! unchanged: they are computed over the records, not over either database's encoding),
//! the effect keys (nothing happens twice after the move). Sequences continue after the
//! highest id the embedded store ever gave, so an id is never given twice.
//!
//! [`TABLES`] names every column of every table and how it is carried over; a test
//! compares it with both schemas, so a table or a column added to either without being
//! migrated fails the build's tests. What PostgreSQL computes itself is not copied:
//! accounts' usage counters (its trigger adds the messages up as they are inserted) and
//! blobs' reference counts (counted from the copied rows).
//!
//! The source is read in one read transaction (one consistent snapshot), but what the
//! server writes after the snapshot is not copied: run it with the server stopped, or on
//! a copy made by `pecd backup`.

use std::path::Path;

use postgres::Transaction;
use postgres::binary_copy::BinaryCopyInWriter;
use postgres::types::{ToSql, Type};
use rusqlite::OptionalExtension;

use super::pool::Connector;
use super::{blobs as pg_blobs, connection_config, schema as pg_schema};
use crate::blobs::{self, SqliteBlobs};
use crate::error::{Error, Result};

/// How one column is carried from SQLite to PostgreSQL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// INTEGER to BIGINT.
    Int,
    /// INTEGER to INTEGER (a small key).
    Int4,
    /// INTEGER or NULL to BIGINT or NULL.
    OptInt,
    /// INTEGER 0/1 to BOOLEAN.
    Bool,
    /// TEXT to TEXT.
    Text,
    /// TEXT or NULL to TEXT or NULL.
    OptText,
    /// A JSON array of strings (TEXT) to TEXT[].
    List,
    /// BLOB to BYTEA.
    Bytes,
    /// Not copied: PostgreSQL computes it from the copied rows.
    Derived,
}

/// A table copied row by row, with its columns in SQLite's names (the same in both).
pub(crate) struct Table {
    /// The table's name in both schemas.
    pub name: &'static str,
    /// Every column of the SQLite table and how it is carried over.
    pub columns: &'static [(&'static str, Kind)],
    /// The integer primary key whose sequence continues after the copy (with the name of
    /// the row of `sqlite_sequence` when the table is AUTOINCREMENT), if any.
    pub serial: Option<&'static str>,
}

/// Every table of the embedded store except `blobs`, in an order that satisfies the
/// foreign keys.
pub(crate) const TABLES: &[Table] = &[
    Table {
        name: "domains",
        columns: &[
            ("id", Kind::Int),
            ("name", Kind::Text),
            ("default_quota", Kind::Int),
        ],
        serial: Some("id"),
    },
    Table {
        name: "accounts",
        columns: &[
            ("id", Kind::Int),
            ("domain_id", Kind::Int),
            ("address", Kind::Text),
            ("password_hash", Kind::Text),
            ("quota", Kind::Int),
            ("receipts_folder", Kind::Bool),
            ("used", Kind::Derived),
        ],
        serial: Some("id"),
    },
    Table {
        name: "folders",
        columns: &[
            ("id", Kind::Int),
            ("account_id", Kind::Int),
            ("name", Kind::Text),
            ("special_use", Kind::OptText),
            ("system", Kind::Bool),
            ("uidvalidity", Kind::Int),
            ("uidnext", Kind::Int),
            ("highestmodseq", Kind::Int),
            ("subscribed", Kind::Bool),
        ],
        serial: Some("id"),
    },
    Table {
        name: "subscriptions",
        columns: &[("account_id", Kind::Int), ("name", Kind::Text)],
        serial: None,
    },
    Table {
        name: "messages",
        columns: &[
            ("folder_id", Kind::Int),
            ("uid", Kind::Int),
            ("blob", Kind::Text),
            ("size", Kind::Int),
            ("internaldate", Kind::Int),
            ("flags", Kind::Text),
            ("modseq", Kind::Int),
            ("expunged", Kind::Bool),
        ],
        serial: None,
    },
    Table {
        name: "archive",
        columns: &[
            ("id", Kind::Int),
            ("address", Kind::Text),
            ("blob", Kind::Text),
            ("size", Kind::Int),
            ("direction", Kind::Text),
            ("kind", Kind::Text),
            ("stored_at", Kind::Int),
            ("uid", Kind::Int),
            ("modseq", Kind::Int),
        ],
        serial: Some("id"),
    },
    Table {
        name: "archive_folders",
        columns: &[
            ("address", Kind::Text),
            ("uidvalidity", Kind::Int),
            ("uidnext", Kind::Int),
            ("highestmodseq", Kind::Int),
            ("used", Kind::Int),
        ],
        serial: None,
    },
    Table {
        name: "archive_options",
        columns: &[
            ("address", Kind::Text),
            ("scope", Kind::Text),
            ("sent", Kind::Bool),
            ("received", Kind::Bool),
            ("quota", Kind::Int),
        ],
        serial: None,
    },
    Table {
        name: "archive_seen",
        columns: &[("archive_id", Kind::Int)],
        serial: None,
    },
    Table {
        name: "legal_log",
        columns: &[
            ("seq", Kind::Int),
            ("at", Kind::Int),
            ("at_local", Kind::Text),
            ("event", Kind::Text),
            ("msgid", Kind::Text),
            ("original_msgid", Kind::Text),
            ("sender", Kind::Text),
            ("recipients", Kind::List),
            ("subject", Kind::Text),
            ("generated_ids", Kind::List),
            ("gestore", Kind::Text),
            ("detail", Kind::Text),
            ("hash", Kind::Text),
        ],
        serial: None,
    },
    Table {
        name: "legal_log_chain",
        columns: &[
            ("id", Kind::Int4),
            ("checkpoint_seq", Kind::Int),
            ("checkpoint_hash", Kind::Text),
            ("head_seq", Kind::Int),
            ("head_hash", Kind::Text),
        ],
        serial: None,
    },
    Table {
        name: "queue",
        columns: &[
            ("id", Kind::Int),
            ("msgid", Kind::Text),
            ("mail_from", Kind::Text),
            ("rcpt_to", Kind::List),
            ("domain", Kind::Text),
            ("blob", Kind::Text),
            ("size", Kind::Int),
            ("created_at", Kind::Int),
            ("next_attempt_at", Kind::Int),
            ("attempts", Kind::Int),
            ("last_error", Kind::OptText),
            ("expires_at", Kind::Int),
            ("held", Kind::Bool),
        ],
        serial: Some("id"),
    },
    Table {
        name: "timers",
        columns: &[
            ("identificativo", Kind::Text),
            ("recipient", Kind::Text),
            ("sender", Kind::Text),
            ("subject", Kind::Text),
            ("envelope_blob", Kind::OptText),
            ("dispatched_at", Kind::Int),
            ("presa_in_carico_at", Kind::OptInt),
            ("delivered", Kind::Bool),
            ("outcome", Kind::Text),
            ("notice12_sent", Kind::Bool),
            ("notice24_sent", Kind::Bool),
        ],
        serial: None,
    },
    Table {
        name: "virus_store",
        columns: &[
            ("id", Kind::Int),
            ("stored_at", Kind::Int),
            ("msgid", Kind::Text),
            ("sender", Kind::Text),
            ("recipients", Kind::List),
            ("virus", Kind::Text),
            ("blob", Kind::Text),
            ("size", Kind::Int),
        ],
        serial: Some("id"),
    },
    Table {
        name: "effects",
        columns: &[("key", Kind::Text), ("at", Kind::Int)],
        serial: None,
    },
    Table {
        name: "log_timestamps",
        columns: &[
            ("id", Kind::Int),
            ("seq", Kind::Int),
            ("head_hash", Kind::Text),
            ("requested_at", Kind::Int),
            ("tsa_url", Kind::Text),
            ("response", Kind::Bytes),
        ],
        serial: Some("id"),
    },
    Table {
        name: "uptime",
        columns: &[("minute", Kind::Int)],
        serial: None,
    },
    Table {
        name: "enti",
        columns: &[
            ("id", Kind::Int),
            ("name", Kind::Text),
            ("allotment", Kind::Int),
        ],
        serial: Some("id"),
    },
    Table {
        name: "ente_domains",
        columns: &[("domain", Kind::Text), ("ente_id", Kind::Int)],
        serial: None,
    },
    Table {
        name: "admins",
        columns: &[
            ("login", Kind::Text),
            ("ente_id", Kind::OptInt),
            ("password_hash", Kind::Text),
        ],
        serial: None,
    },
    Table {
        name: "mailbox_events",
        columns: &[
            ("id", Kind::Int),
            ("address", Kind::Text),
            ("kind", Kind::Text),
            ("at", Kind::Int),
        ],
        serial: Some("id"),
    },
    Table {
        name: "registry_events",
        columns: &[
            ("id", Kind::Int),
            ("address", Kind::Text),
            ("domain", Kind::Text),
            ("key", Kind::Text),
            ("kind", Kind::Text),
            ("body", Kind::Text),
            ("created_at", Kind::Int),
            ("folder", Kind::OptText),
            ("uid", Kind::OptInt),
            ("pending", Kind::Bool),
            ("attempts", Kind::Int),
            ("next_attempt_at", Kind::Int),
            ("sent_at", Kind::OptInt),
            ("last_error", Kind::OptText),
            ("protocol_number", Kind::OptText),
            ("protocol_date", Kind::OptText),
            ("protocol_at", Kind::OptInt),
        ],
        serial: Some("id"),
    },
    Table {
        name: "api_tokens",
        columns: &[
            ("login", Kind::Text),
            ("name", Kind::Text),
            ("hash", Kind::Text),
            ("created_at", Kind::Int),
        ],
        serial: None,
    },
];

/// The embedded store's blob table: its rows, and the files of larger blobs, become
/// PostgreSQL's `blobs` rows with reference counts (see [`copy_blobs`]).
pub(crate) const BLOBS_TABLE: &str = "blobs";

#[cfg(test)]
/// Columns only PostgreSQL has, left to their defaults by the copy: the leases of
/// several nodes (nobody holds one after the move) and the blobs' reference counts.
pub(crate) const PG_ONLY_COLUMNS: &[(&str, &str)] = &[
    ("queue", "lease_owner"),
    ("queue", "lease_until"),
    ("timers", "lease_owner"),
    ("timers", "lease_until"),
    ("blobs", "refs"),
];

/// What [`from_sqlite`] copied.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Migrated {
    /// Rows copied per table, in copy order (blobs last).
    pub rows: Vec<(String, u64)>,
    /// Bytes of the blobs copied.
    pub blob_bytes: u64,
}

/// Copies the embedded store at `root` (its `store.db` and blob files) into the empty
/// PostgreSQL database at `url`, whose schema it creates. Refuses a database that holds
/// anything already. The embedded store is brought up to the current schema first and
/// otherwise left unchanged. A referenced blob that is missing or does not match its
/// hash stops the copy (`pecd store check` finds them); nothing is committed then.
pub fn from_sqlite(root: &Path, url: &str) -> Result<Migrated> {
    let (root, config) = (root.to_path_buf(), connection_config(url)?);
    // On a thread of its own: the synchronous client must not run inside a runtime.
    std::thread::Builder::new()
        .name("pec-store-migrate".into())
        .spawn(move || copy(&root, &Connector::new(config)))
        .map_err(|e| Error::io("<migration thread>", e))?
        .join()
        .map_err(|_| Error::Unavailable("the migration panicked".into()))?
}

/// The copy itself, on the calling thread.
fn copy(root: &Path, connect: &Connector) -> Result<Migrated> {
    let db_path = root.join(crate::maintenance::DB_FILE);
    if !db_path.is_file() {
        return Err(Error::io(
            &db_path,
            std::io::Error::new(std::io::ErrorKind::NotFound, "no embedded store here"),
        ));
    }
    let mut conn = crate::schema::connect(&db_path)?;
    crate::schema::migrate(&mut conn)?;
    let files = SqliteBlobs::open(root)?;
    let source = conn.transaction()?;

    let mut client = connect.connect()?;
    pg_schema::migrate(&mut client)?;
    let mut tx = client.transaction()?;
    let names: Vec<&str> = TABLES.iter().map(|t| t.name).chain([BLOBS_TABLE]).collect();
    // Nobody else writes while the copy runs (a node started too early waits).
    tx.batch_execute(&format!(
        "LOCK TABLE {} IN ACCESS EXCLUSIVE MODE",
        names.join(", ")
    ))?;
    refuse_non_empty(&mut tx)?;
    tx.execute("DELETE FROM legal_log_chain", &[])?;

    let mut migrated = Migrated::default();
    for table in TABLES {
        let n = copy_table(&source, &mut tx, table)?;
        migrated.rows.push((table.name.to_string(), n));
        if let Some(id) = table.serial {
            continue_sequence(&source, &mut tx, table.name, id)?;
        }
    }
    let (n, bytes) = copy_blobs(&source, &files, &mut tx)?;
    migrated.rows.push((BLOBS_TABLE.to_string(), n));
    migrated.blob_bytes = bytes;
    tx.commit()?;
    Ok(migrated)
}

/// Fails unless every table is empty and the legal log chain is at its genesis.
fn refuse_non_empty(tx: &mut Transaction<'_>) -> Result<()> {
    for name in TABLES.iter().map(|t| t.name).chain([BLOBS_TABLE]) {
        if name == "legal_log_chain" {
            continue;
        }
        let found: bool = tx
            .query_one(&format!("SELECT EXISTS (SELECT 1 FROM {name})"), &[])?
            .get(0);
        if found {
            return Err(Error::TargetNotEmpty(format!("table {name} has rows")));
        }
    }
    let moved: bool = tx
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM legal_log_chain WHERE head_seq <> 0 OR checkpoint_seq <> 0)",
            &[],
        )?
        .get(0);
    if moved {
        return Err(Error::TargetNotEmpty("its legal log has a history".into()));
    }
    Ok(())
}

/// PostgreSQL's type for a copied column.
fn pg_type(kind: Kind) -> Type {
    match kind {
        Kind::Int | Kind::OptInt => Type::INT8,
        Kind::Int4 => Type::INT4,
        Kind::Bool => Type::BOOL,
        Kind::Text | Kind::OptText => Type::TEXT,
        Kind::List => Type::TEXT_ARRAY,
        Kind::Bytes => Type::BYTEA,
        Kind::Derived => Type::UNKNOWN,
    }
}

/// Reads column `i` of `row` as PostgreSQL's value of `kind`.
fn value(
    row: &rusqlite::Row<'_>,
    i: usize,
    kind: Kind,
    table: &str,
) -> Result<Box<dyn ToSql + Sync>> {
    Ok(match kind {
        Kind::Int => Box::new(row.get::<_, i64>(i)?),
        Kind::OptInt => Box::new(row.get::<_, Option<i64>>(i)?),
        Kind::Int4 => Box::new(row.get::<_, i32>(i)?),
        Kind::Bool => Box::new(row.get::<_, i64>(i)? != 0),
        Kind::Text => Box::new(row.get::<_, String>(i)?),
        Kind::OptText => Box::new(row.get::<_, Option<String>>(i)?),
        Kind::List => {
            let json: String = row.get(i)?;
            let list: Vec<String> = serde_json::from_str(&json)
                .map_err(|e| Error::Corrupt(format!("{table}: a list that is not one: {e}")))?;
            Box::new(list)
        }
        Kind::Bytes => Box::new(row.get::<_, Vec<u8>>(i)?),
        Kind::Derived => Box::new(Option::<i64>::None),
    })
}

/// Copies every row of `table` with PostgreSQL's binary COPY; returns how many.
fn copy_table(
    source: &rusqlite::Connection,
    tx: &mut Transaction<'_>,
    table: &Table,
) -> Result<u64> {
    let copied: Vec<(&str, Kind)> = table
        .columns
        .iter()
        .copied()
        .filter(|(_, k)| *k != Kind::Derived)
        .collect();
    let list = copied
        .iter()
        .map(|(c, _)| *c)
        .collect::<Vec<_>>()
        .join(", ");
    let types: Vec<Type> = copied.iter().map(|(_, k)| pg_type(*k)).collect();
    let mut select = source.prepare(&format!("SELECT {list} FROM {}", table.name))?;
    let mut rows = select.query([])?;
    let sink = tx.copy_in(&format!(
        "COPY {} ({list}) FROM STDIN (FORMAT binary)",
        table.name
    ))?;
    let mut writer = BinaryCopyInWriter::new(sink, &types);
    let mut n = 0;
    while let Some(row) = rows.next()? {
        let values = copied
            .iter()
            .enumerate()
            .map(|(i, (_, kind))| value(row, i, *kind, table.name))
            .collect::<Result<Vec<_>>>()?;
        let refs: Vec<&(dyn ToSql + Sync)> = values.iter().map(|v| v.as_ref()).collect();
        writer.write(&refs)?;
        n += 1;
    }
    writer.finish()?;
    Ok(n)
}

/// Makes the sequence of `table.id` continue after the highest id the embedded store
/// gave (AUTOINCREMENT remembers ids of deleted rows too), so none is given twice: a
/// folder created after the move gets a UIDVALIDITY no folder ever had.
fn continue_sequence(
    source: &rusqlite::Connection,
    tx: &mut Transaction<'_>,
    table: &str,
    id: &str,
) -> Result<()> {
    let highest: i64 = source.query_row(
        &format!("SELECT coalesce(max({id}), 0) FROM {table}"),
        [],
        |r| r.get(0),
    )?;
    let remembered: Option<i64> = source
        .query_row(
            "SELECT seq FROM sqlite_sequence WHERE name = ?1",
            [table],
            |r| r.get(0),
        )
        .optional()?;
    let last = highest.max(remembered.unwrap_or(0));
    if last > 0 {
        tx.execute(
            "SELECT setval(pg_get_serial_sequence($1, $2), $3)",
            &[&table, &id, &last],
        )?;
    }
    Ok(())
}

/// Stores every blob the copied rows reference, with its reference count, reading it
/// from the embedded store's table or file and checking its hash. Returns how many blobs
/// and bytes.
fn copy_blobs(
    source: &rusqlite::Connection,
    files: &SqliteBlobs,
    tx: &mut Transaction<'_>,
) -> Result<(u64, u64)> {
    let wanted: Vec<(String, i64)> = pg_blobs::census(tx)?
        .into_iter()
        .filter(|(_, counted, _)| *counted > 0)
        .map(|(hash, counted, _)| (hash, counted))
        .collect();
    let sink = tx.copy_in("COPY blobs (hash, bytes, refs) FROM STDIN (FORMAT binary)")?;
    let mut writer = BinaryCopyInWriter::new(sink, &[Type::TEXT, Type::BYTEA, Type::INT8]);
    let (mut n, mut total) = (0, 0);
    for (hash, refs) in wanted {
        let bytes = match blobs::read_inline(source, &hash)? {
            Some(bytes) => bytes,
            None => files.read_file(&hash)?,
        };
        if !blobs::matches(&hash, &bytes) {
            return Err(Error::Corrupt(format!(
                "blob {hash} does not match its hash (run `pecd store check`)"
            )));
        }
        writer.write(&[&hash, &bytes, &refs])?;
        n += 1;
        total += bytes.len() as u64;
    }
    writer.finish()?;
    Ok((n, total))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    /// `(table, column)` of every column [`TABLES`] and [`BLOBS_TABLE`] account for.
    fn migrated_columns() -> BTreeSet<(String, String)> {
        TABLES
            .iter()
            .flat_map(|t| {
                t.columns
                    .iter()
                    .map(|(c, _)| (t.name.into(), c.to_string()))
            })
            .chain([
                (BLOBS_TABLE.into(), "hash".into()),
                (BLOBS_TABLE.into(), "bytes".into()),
            ])
            .collect()
    }

    #[test]
    fn every_column_of_the_embedded_schema_is_migrated() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = crate::schema::connect(&dir.path().join("t.db")).unwrap();
        crate::schema::migrate(&mut conn).unwrap();
        let mut found = BTreeSet::new();
        let tables: Vec<String> = conn
            .prepare(
                "SELECT name FROM sqlite_master WHERE type = 'table'
                 AND name NOT IN ('sqlite_sequence')",
            )
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        for table in tables {
            let columns: Vec<String> = conn
                .prepare(&format!("SELECT name FROM pragma_table_info('{table}')"))
                .unwrap()
                .query_map([], |r| r.get(0))
                .unwrap()
                .collect::<rusqlite::Result<_>>()
                .unwrap();
            found.extend(columns.into_iter().map(|c| (table.clone(), c)));
        }
        assert_eq!(
            found,
            migrated_columns(),
            "a table or column of the embedded store is not in pg::migrate::TABLES"
        );
    }

    #[test]
    fn every_column_of_the_postgres_schema_is_migrated_or_its_own() {
        let url = crate::test_util::shared_server().database();
        let found = std::thread::spawn(move || {
            let mut client = postgres::Client::connect(&url, postgres::NoTls).unwrap();
            pg_schema::migrate(&mut client).unwrap();
            client
                .query(
                    "SELECT table_name::text, column_name::text FROM information_schema.columns
                     WHERE table_schema = 'public' AND table_name <> 'schema_version'",
                    &[],
                )
                .unwrap()
                .iter()
                .map(|r| (r.get::<_, String>(0), r.get::<_, String>(1)))
                .collect::<BTreeSet<_>>()
        })
        .join()
        .unwrap();
        let mut expected = migrated_columns();
        expected.extend(
            PG_ONLY_COLUMNS
                .iter()
                .map(|(t, c)| (t.to_string(), c.to_string())),
        );
        assert_eq!(
            found, expected,
            "a table or column of the PostgreSQL store is not in pg::migrate::TABLES"
        );
    }
}
