//! The database schema and its migrations, and how every connection is opened.
//!
//! The schema version is SQLite's `PRAGMA user_version`; [`MIGRATIONS`] is the
//! ordered list of scripts, and version *n* means the first *n* have been applied.
//! Each pending script runs in its own transaction together with the version bump,
//! so a crash mid-migration leaves the previous version intact.

use std::path::Path;
use std::time::Duration;

use rusqlite::config::DbConfig;
use rusqlite::{Connection, TransactionBehavior};

use crate::error::{Error, Result};

/// The migration scripts, oldest first. Never edit a released one: append a new one.
const MIGRATIONS: &[&str] = &[
    // 1: domains, accounts, folders, messages, security archive.
    "
    CREATE TABLE domains (
        id            INTEGER PRIMARY KEY,
        name          TEXT NOT NULL UNIQUE,
        default_quota INTEGER NOT NULL CHECK (default_quota >= 0)
    );
    CREATE TABLE accounts (
        id              INTEGER PRIMARY KEY,
        domain_id       INTEGER NOT NULL REFERENCES domains(id) ON DELETE RESTRICT,
        address         TEXT NOT NULL UNIQUE CHECK (address = lower(address)),
        password_hash   TEXT NOT NULL,
        quota           INTEGER NOT NULL CHECK (quota >= 0),
        receipts_folder INTEGER NOT NULL DEFAULT 0
    );
    -- AUTOINCREMENT: ids are never reused, so uidvalidity (= id) grows even
    -- when a folder is deleted and created again under the same name.
    CREATE TABLE folders (
        id            INTEGER PRIMARY KEY AUTOINCREMENT,
        account_id    INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
        name          TEXT NOT NULL,
        special_use   TEXT,
        system        INTEGER NOT NULL DEFAULT 0,
        uidvalidity   INTEGER NOT NULL,
        uidnext       INTEGER NOT NULL DEFAULT 1,
        highestmodseq INTEGER NOT NULL DEFAULT 1,
        subscribed    INTEGER NOT NULL DEFAULT 1,
        UNIQUE (account_id, name)
    );
    -- expunged = 1 keeps a tombstone (uid, modseq) for QRESYNC VANISHED.
    CREATE TABLE messages (
        folder_id    INTEGER NOT NULL REFERENCES folders(id) ON DELETE CASCADE,
        uid          INTEGER NOT NULL,
        blob         TEXT NOT NULL,
        size         INTEGER NOT NULL CHECK (size >= 0),
        internaldate INTEGER NOT NULL,
        flags        TEXT NOT NULL DEFAULT '',
        modseq       INTEGER NOT NULL,
        expunged     INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (folder_id, uid)
    ) WITHOUT ROWID;
    CREATE INDEX messages_modseq ON messages(folder_id, modseq);
    CREATE INDEX messages_blob ON messages(blob);
    -- Security archive: a copy of PEC traffic, kept by address (not by account
    -- id) so it outlives the mailbox; never counted in the quota.
    CREATE TABLE archive (
        id        INTEGER PRIMARY KEY,
        address   TEXT NOT NULL,
        blob      TEXT NOT NULL,
        size      INTEGER NOT NULL CHECK (size >= 0),
        direction TEXT NOT NULL CHECK (direction IN ('sent', 'received')),
        kind      TEXT NOT NULL,
        stored_at INTEGER NOT NULL
    );
    CREATE INDEX archive_address ON archive(address, stored_at);
    CREATE INDEX archive_stored_at ON archive(stored_at);
    CREATE INDEX archive_blob ON archive(blob);
    ",
    // 2: legal message log (hash-chained), outbound queue, 12 h / 24 h timers, virus store.
    "
    -- The legal log: append-only; hash = SHA-256(previous hash || canonical record).
    -- Lists are JSON arrays of strings.
    CREATE TABLE legal_log (
        seq            INTEGER PRIMARY KEY,
        at             INTEGER NOT NULL,
        at_local       TEXT NOT NULL,
        event          TEXT NOT NULL,
        msgid          TEXT NOT NULL,
        original_msgid TEXT NOT NULL,
        sender         TEXT NOT NULL,
        recipients     TEXT NOT NULL,
        subject        TEXT NOT NULL,
        generated_ids  TEXT NOT NULL,
        gestore        TEXT NOT NULL,
        detail         TEXT NOT NULL,
        hash           TEXT NOT NULL
    );
    CREATE INDEX legal_log_msgid ON legal_log(msgid);
    CREATE INDEX legal_log_original_msgid ON legal_log(original_msgid);
    CREATE INDEX legal_log_at ON legal_log(at);
    -- Where the chain starts (the last purged record, or genesis) and where it
    -- ends (the last appended record): one row, updated with every append/purge.
    CREATE TABLE legal_log_chain (
        id              INTEGER PRIMARY KEY CHECK (id = 1),
        checkpoint_seq  INTEGER NOT NULL,
        checkpoint_hash TEXT NOT NULL,
        head_seq        INTEGER NOT NULL,
        head_hash       TEXT NOT NULL
    );
    INSERT INTO legal_log_chain VALUES
        (1, 0, lower(hex(zeroblob(32))), 0, lower(hex(zeroblob(32))));
    -- Outbound queue: one entry per destination domain, deleted when done.
    CREATE TABLE queue (
        id              INTEGER PRIMARY KEY AUTOINCREMENT,
        msgid           TEXT NOT NULL,
        mail_from       TEXT NOT NULL,
        rcpt_to         TEXT NOT NULL,
        domain          TEXT NOT NULL,
        blob            TEXT NOT NULL,
        size            INTEGER NOT NULL CHECK (size >= 0),
        created_at      INTEGER NOT NULL,
        next_attempt_at INTEGER NOT NULL,
        attempts        INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
        last_error      TEXT,
        expires_at      INTEGER NOT NULL
    );
    CREATE INDEX queue_next_attempt ON queue(next_attempt_at, id);
    -- 12 h / 24 h timers, one row per (identificativo, PEC recipient).
    CREATE TABLE timers (
        identificativo     TEXT NOT NULL,
        recipient          TEXT NOT NULL CHECK (recipient = lower(recipient)),
        sender             TEXT NOT NULL,
        subject            TEXT NOT NULL,
        envelope_blob      TEXT,
        dispatched_at      INTEGER NOT NULL,
        presa_in_carico_at INTEGER,
        delivered          INTEGER NOT NULL DEFAULT 0,
        outcome            TEXT NOT NULL DEFAULT 'pending'
            CHECK (outcome IN ('pending', 'delivered', 'error', 'virus', 'timeout24')),
        notice12_sent      INTEGER NOT NULL DEFAULT 0,
        notice24_sent      INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (identificativo, recipient)
    ) WITHOUT ROWID;
    CREATE INDEX timers_pending ON timers(dispatched_at) WHERE outcome = 'pending';
    CREATE INDEX timers_envelope ON timers(envelope_blob);
    -- Virus store: infected messages, kept 30 months apart from any mailbox.
    CREATE TABLE virus_store (
        id         INTEGER PRIMARY KEY AUTOINCREMENT,
        stored_at  INTEGER NOT NULL,
        msgid      TEXT NOT NULL,
        sender     TEXT NOT NULL,
        recipients TEXT NOT NULL,
        virus      TEXT NOT NULL,
        blob       TEXT NOT NULL,
        size       INTEGER NOT NULL CHECK (size >= 0)
    );
    CREATE INDEX virus_store_stored_at ON virus_store(stored_at);
    CREATE INDEX virus_store_blob ON virus_store(blob);
    CREATE INDEX queue_blob ON queue(blob);
    ",
    // 3: blobs up to 256 KiB stored inside the database (larger ones stay files); a
    // store written before keeps its files, which readers look for when no row exists.
    "
    CREATE TABLE blobs (
        hash  TEXT PRIMARY KEY,
        bytes BLOB NOT NULL
    );
    ",
    // 4: bytes used per account kept up to date by triggers, so the quota check of every
    // delivery reads one row instead of summing the whole mailbox. Messages are deleted
    // before their folder (see folders::delete), so the trigger still finds the account.
    "
    ALTER TABLE accounts ADD COLUMN used INTEGER NOT NULL DEFAULT 0;
    UPDATE accounts SET used = (
        SELECT COALESCE(SUM(m.size), 0) FROM messages m JOIN folders f ON m.folder_id = f.id
        WHERE f.account_id = accounts.id AND m.expunged = 0);
    CREATE TRIGGER messages_used_insert AFTER INSERT ON messages WHEN NEW.expunged = 0
    BEGIN
        UPDATE accounts SET used = used + NEW.size
        WHERE id = (SELECT account_id FROM folders WHERE id = NEW.folder_id);
    END;
    CREATE TRIGGER messages_used_expunge AFTER UPDATE OF expunged ON messages
    WHEN OLD.expunged = 0 AND NEW.expunged <> 0
    BEGIN
        UPDATE accounts SET used = used - OLD.size
        WHERE id = (SELECT account_id FROM folders WHERE id = OLD.folder_id);
    END;
    CREATE TRIGGER messages_used_delete AFTER DELETE ON messages WHEN OLD.expunged = 0
    BEGIN
        UPDATE accounts SET used = used - OLD.size
        WHERE id = (SELECT account_id FROM folders WHERE id = OLD.folder_id);
    END;
    ",
    // 5: the keys of the effects that must happen once (see effects.rs), filled from the
    // legal log and the timers by [`crate::effects::backfill`] in the same transaction.
    "
    CREATE TABLE effects (
        key TEXT PRIMARY KEY,
        at  INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX effects_at ON effects(at);
    ",
    // 6: subscriptions apart from folders (RFC 3501 6.3.6): a deleted folder stays
    // subscribed (LIST shows it \NonExistent), a name may be subscribed without a folder,
    // and a folder a user creates starts unsubscribed; the folders an account is created
    // with are subscribed then (accounts::insert_folder). Existing subscriptions are kept;
    // folders.subscribed is no longer read.
    "
    CREATE TABLE subscriptions (
        account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
        name       TEXT NOT NULL,
        PRIMARY KEY (account_id, name)
    ) WITHOUT ROWID;
    INSERT INTO subscriptions (account_id, name)
        SELECT account_id, name FROM folders WHERE subscribed <> 0;
    ",
    // 7: the archive entries their address has read (\Seen over IMAP). Each entry
    // belongs to one address, so this is per user; the entry itself never changes, and
    // the mark goes with it when it is purged.
    "
    CREATE TABLE archive_seen (
        archive_id INTEGER PRIMARY KEY REFERENCES archive(id) ON DELETE CASCADE
    );
    ",
    // 8: what the gestore must prove (spec §7.2, §8.1): the RFC 3161 time stamps of the
    // legal log's head (the TSA's whole DER answer), the minutes the service was up (one
    // row per minute, written by the running gestore), and queue entries the
    // administrator holds from relay.
    "
    CREATE TABLE log_timestamps (
        id           INTEGER PRIMARY KEY AUTOINCREMENT,
        seq          INTEGER NOT NULL,
        head_hash    TEXT NOT NULL,
        requested_at INTEGER NOT NULL,
        tsa_url      TEXT NOT NULL,
        response     BLOB NOT NULL
    );
    CREATE TABLE uptime (
        minute INTEGER PRIMARY KEY
    ) WITHOUT ROWID;
    ALTER TABLE queue ADD COLUMN held INTEGER NOT NULL DEFAULT 0;
    ",
    // 9: each address's archive is an IMAP folder of its own (issue 10): its entries get
    // UIDs 1, 2, 3... in arrival (id) order and a modseq (1 for the existing ones, the
    // next one of the folder when their read mark changes); the folder's UIDVALIDITY,
    // UIDNEXT and HIGHESTMODSEQ are kept per address in `archive_folders`, whose rows
    // are never deleted. UIDVALIDITY is never 1, the value under which UIDs used to be
    // global entry ids (see archive::NEW_UIDVALIDITY).
    "
    CREATE TABLE archive_folders (
        address       TEXT PRIMARY KEY CHECK (address = lower(address)),
        uidvalidity   INTEGER NOT NULL CHECK (uidvalidity > 1),
        uidnext       INTEGER NOT NULL DEFAULT 1,
        highestmodseq INTEGER NOT NULL DEFAULT 1
    ) WITHOUT ROWID;
    ALTER TABLE archive ADD COLUMN uid INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE archive ADD COLUMN modseq INTEGER NOT NULL DEFAULT 1;
    UPDATE archive SET uid = numbered.uid
    FROM (SELECT id, row_number() OVER (PARTITION BY address ORDER BY id) AS uid
          FROM archive) AS numbered
    WHERE numbered.id = archive.id;
    CREATE UNIQUE INDEX archive_uid ON archive(address, uid);
    INSERT INTO archive_folders (address, uidvalidity, uidnext)
        SELECT address, row_number() OVER (ORDER BY address) + 1, max(uid) + 1
        FROM archive GROUP BY address;
    ",
    // 10: enti (issue 14): the bodies that own domains, their administrators (an
    // administrator without an ente is the province's, of the whole gestore), and the
    // mailbox events billing counts mailbox-days from (kept after the mailbox is gone).
    "
    CREATE TABLE enti (
        id        INTEGER PRIMARY KEY,
        name      TEXT NOT NULL UNIQUE,
        allotment INTEGER NOT NULL CHECK (allotment >= 0)
    );
    CREATE TABLE ente_domains (
        domain  TEXT PRIMARY KEY CHECK (domain = lower(domain)),
        ente_id INTEGER NOT NULL REFERENCES enti(id) ON DELETE CASCADE
    ) WITHOUT ROWID;
    CREATE TABLE admins (
        login         TEXT PRIMARY KEY CHECK (login = lower(login)),
        ente_id       INTEGER REFERENCES enti(id) ON DELETE CASCADE,
        password_hash TEXT NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE mailbox_events (
        id      INTEGER PRIMARY KEY,
        address TEXT NOT NULL CHECK (address = lower(address)),
        kind    TEXT NOT NULL,
        at      INTEGER NOT NULL
    );
    CREATE INDEX mailbox_events_at ON mailbox_events(at);
    ",
    // 11: what each address's archive keeps (everything or only certified mail, sent
    // and/or received) and its quota, apart from the mailbox quota; an address without
    // a row keeps everything up to ArchiveOptions::default's quota. `used` counts the
    // bytes of an archive's entries, kept with each entry and each purge.
    "
    CREATE TABLE archive_options (
        address  TEXT PRIMARY KEY CHECK (address = lower(address)),
        scope    TEXT NOT NULL CHECK (scope IN ('tutto', 'pec')),
        sent     INTEGER NOT NULL,
        received INTEGER NOT NULL,
        quota    INTEGER NOT NULL CHECK (quota > 0)
    ) WITHOUT ROWID;
    ALTER TABLE archive_folders ADD COLUMN used INTEGER NOT NULL DEFAULT 0;
    UPDATE archive_folders SET used = (
        SELECT COALESCE(SUM(size), 0) FROM archive WHERE archive.address = archive_folders.address);
    ",
    // 12: the registry events of protocol offices, written with the delivery they are
    // about (one per mailbox and key), and their webhook outbox: `pending` until the
    // webhook acknowledges, tried again at `next_attempt_at`. `folder`/`uid` name the
    // message delivered; the protocol number the registry writes back is kept here.
    "
    CREATE TABLE registry_events (
        id              INTEGER PRIMARY KEY AUTOINCREMENT,
        address         TEXT NOT NULL CHECK (address = lower(address)),
        domain          TEXT NOT NULL,
        key             TEXT NOT NULL,
        kind            TEXT NOT NULL,
        body            TEXT NOT NULL,
        created_at      INTEGER NOT NULL,
        folder          TEXT,
        uid             INTEGER,
        pending         INTEGER NOT NULL,
        attempts        INTEGER NOT NULL DEFAULT 0,
        next_attempt_at INTEGER NOT NULL,
        sent_at         INTEGER,
        last_error      TEXT,
        protocol_number TEXT,
        protocol_date   TEXT,
        protocol_at     INTEGER,
        UNIQUE (address, key)
    );
    CREATE INDEX registry_events_domain ON registry_events(domain, id);
    CREATE INDEX registry_events_due ON registry_events(next_attempt_at) WHERE pending = 1;
    ",
    // 13: API tokens (issue 14): bearer tokens applications use for the administration
    // API on behalf of an administrator; only the SHA-256 of each is kept.
    "
    CREATE TABLE api_tokens (
        login      TEXT NOT NULL REFERENCES admins(login) ON DELETE CASCADE,
        name       TEXT NOT NULL,
        hash       TEXT NOT NULL UNIQUE,
        created_at INTEGER NOT NULL,
        PRIMARY KEY (login, name)
    ) WITHOUT ROWID;
    ",
    // 14: registry events are purged by age with the rest of a message's records
    // (Maintenance::purge_events): an index on when they were made.
    "
    CREATE INDEX registry_events_created ON registry_events(created_at);
    ",
];

/// The version whose migration creates the effect keys, which the store fills from what
/// an older store recorded.
const EFFECTS_VERSION: usize = 5;

/// Prepared statements kept per connection: more than the store has.
const STATEMENT_CACHE: usize = 256;

/// The schema version this program writes.
pub fn current_version() -> i64 {
    MIGRATIONS.len() as i64
}

/// Opens a connection to the database at `path` with the settings every
/// connection needs: WAL journal, `synchronous=FULL` (a commit is on disk when
/// it returns), foreign keys enforced, and a busy timeout for the rare lock wait.
pub fn connect(path: &Path) -> Result<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(Duration::from_secs(10))?;
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(Error::Corrupt(format!(
            "could not enable WAL journal, got {mode:?}"
        )));
    }
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    // Temporary storage (savepoint and statement journals, sorts and temporary indices)
    // holds only what one statement or transaction needs, never what a commit makes
    // durable: keep it in memory rather than in temporary files (the writer's per-job
    // savepoints wrote every page they touched). The store's queries sort small sets.
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    // Room for every statement the store runs (see `cached`), so none is parsed twice.
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    // Query planner stability: plans do not depend on the values bound to parameters.
    // Without it SQLite marks a statement whose plan looked at a bound value (an `=`
    // against `?1` outside the index it scans, a `LIMIT ?2`) as expiring when that value
    // changes, and the statement cache's clear_bindings then re-prepares it at every use:
    // the account look-up of every delivery was parsed and planned again each time.
    // The store runs no ANALYZE, so no plan could gain from the values.
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)?;
    Ok(conn)
}

/// Brings the database up to [`current_version`], applying each pending
/// migration in its own transaction. Refuses a database from a newer program.
pub fn migrate(conn: &mut Connection) -> Result<()> {
    let found: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let known = current_version();
    if found > known {
        return Err(Error::SchemaTooNew { found, known });
    }
    for (i, script) in MIGRATIONS.iter().enumerate().skip(found.max(0) as usize) {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute_batch(script)?;
        if i + 1 == EFFECTS_VERSION {
            crate::effects::backfill(&tx)?;
        }
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
        tx.commit()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrate_sets_version_and_is_idempotent() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let mut conn = connect(&path).unwrap();
        migrate(&mut conn).unwrap();
        migrate(&mut conn).unwrap();
        let v: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(v, current_version());
        let n: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name IN
                 ('domains', 'accounts', 'folders', 'messages', 'archive')",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(n, 5);
    }

    #[test]
    fn version_1_database_upgrades_keeping_its_data() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = connect(&dir.path().join("t.db")).unwrap();
        conn.execute_batch(MIGRATIONS[0]).unwrap();
        conn.pragma_update(None, "user_version", 1).unwrap();
        conn.execute(
            "INSERT INTO domains (name, default_quota) VALUES ('x.it', 1)",
            [],
        )
        .unwrap();
        migrate(&mut conn).unwrap();
        let n: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name IN
                 ('legal_log', 'legal_log_chain', 'queue', 'timers', 'virus_store', 'domains')",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(n, 6);
        let genesis: (i64, String) = conn
            .query_row("SELECT head_seq, head_hash FROM legal_log_chain", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .unwrap();
        assert_eq!(genesis, (0, crate::legal_log::GENESIS.to_string()));
        let domains: i64 = conn
            .query_row("SELECT count(*) FROM domains", [], |r| r.get(0))
            .unwrap();
        assert_eq!(domains, 1);
    }

    #[test]
    fn version_3_database_gets_the_usage_of_its_accounts() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = connect(&dir.path().join("t.db")).unwrap();
        for script in &MIGRATIONS[..3] {
            conn.execute_batch(script).unwrap();
        }
        conn.pragma_update(None, "user_version", 3).unwrap();
        conn.execute_batch(
            "INSERT INTO domains (id, name, default_quota) VALUES (1, 'x.it', 100);
             INSERT INTO accounts (id, domain_id, address, password_hash, quota)
                 VALUES (1, 1, 'a@x.it', 'h', 100), (2, 1, 'b@x.it', 'h', 100);
             INSERT INTO folders (id, account_id, name, uidvalidity) VALUES (1, 1, 'INBOX', 1);
             INSERT INTO messages (folder_id, uid, blob, size, internaldate, modseq, expunged)
                 VALUES (1, 1, 'h1', 10, 0, 1, 0), (1, 2, 'h2', 5, 0, 2, 1), (1, 3, 'h3', 7, 0, 3, 0);",
        )
        .unwrap();
        migrate(&mut conn).unwrap();
        let used = |id: i64| -> i64 {
            conn.query_row("SELECT used FROM accounts WHERE id = ?1", [id], |r| {
                r.get(0)
            })
            .unwrap()
        };
        assert_eq!((used(1), used(2)), (17, 0));
        conn.execute("UPDATE messages SET expunged = 1 WHERE uid = 3", [])
            .unwrap();
        assert_eq!(used(1), 10);
        conn.execute("DELETE FROM messages WHERE uid IN (1, 2)", [])
            .unwrap();
        assert_eq!(used(1), 0);
    }

    #[test]
    fn version_4_database_gets_the_keys_of_what_it_handled() {
        use crate::effects::{EffectKey, exists};
        use crate::model::NoticeKind;
        let dir = tempfile::tempdir().unwrap();
        let mut conn = connect(&dir.path().join("t.db")).unwrap();
        for script in &MIGRATIONS[..4] {
            conn.execute_batch(script).unwrap();
        }
        conn.pragma_update(None, "user_version", 4).unwrap();
        // What version 4 logged: an envelope taken in charge for two recipients, a
        // delivery receipt filed (detail `recipient message-id`), a presa in carico
        // received (its covered recipients not logged); and a timer whose 12 h notice
        // was sent.
        conn.execute_batch(
            "INSERT INTO legal_log (seq, at, at_local, event, msgid, original_msgid, sender,
                 recipients, subject, generated_ids, gestore, detail, hash) VALUES
             (1, 10, '', 'presa-in-carico', 'opec.1@alfa', '', '', '[]', '', '[]',
                 'Alfa PEC', 'anna@beta, luca@beta', 'h'),
             (2, 11, '', 'consegna', 'opec.1@alfa', '', '', '[]', '', '[]',
                 'Alfa PEC', 'anna@beta', 'h'),
             (3, 12, '', 'ricezione avvenuta-consegna', 'opec.2@beta', '', '', '[]', '', '[]',
                 'Alfa PEC', 'Mario@Beta <r.1@alfa>', 'h'),
             (4, 13, '', 'ricezione presa-in-carico', 'opec.2@beta', '', '', '[]', '', '[]',
                 'Alfa PEC', '<r.2@alfa>', 'h');
             INSERT INTO timers (identificativo, recipient, sender, subject, dispatched_at,
                 notice12_sent) VALUES ('opec.3@beta', 'x@gamma', 'mario@beta', 's', 5, 1);",
        )
        .unwrap();
        migrate(&mut conn).unwrap();
        let has = |k: EffectKey| exists(&conn, &k).unwrap();
        assert!(has(EffectKey::envelope(
            "Alfa PEC",
            "opec.1@alfa",
            "anna@beta"
        )));
        assert!(has(EffectKey::envelope(
            "Alfa PEC",
            "opec.1@alfa",
            "luca@beta"
        )));
        assert!(has(EffectKey::receipt(
            "avvenuta-consegna",
            "Alfa PEC",
            "opec.2@beta",
            "mario@beta",
            &[]
        )));
        assert!(has(EffectKey::notice(
            NoticeKind::Twelve,
            "opec.3@beta",
            "x@gamma"
        )));
        assert!(!has(EffectKey::notice(
            NoticeKind::TwentyFour,
            "opec.3@beta",
            "x@gamma"
        )));
        let n: i64 = conn
            .query_row("SELECT count(*) FROM effects", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 4, "nothing else, the presa in carico received included");
    }

    #[test]
    fn version_7_database_numbers_its_archive_per_address() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = connect(&dir.path().join("t.db")).unwrap();
        for script in &MIGRATIONS[..7] {
            conn.execute_batch(script).unwrap();
        }
        conn.pragma_update(None, "user_version", 7).unwrap();
        conn.execute_batch(
            "INSERT INTO archive (id, address, blob, size, direction, kind, stored_at)
             VALUES (10, 'b@x.it', 'h', 1, 'sent', 'k', 5),
                    (11, 'a@x.it', 'h', 2, 'sent', 'k', 9),
                    (12, 'b@x.it', 'h', 4, 'sent', 'k', 1),
                    (13, 'a@x.it', 'h', 8, 'sent', 'k', 2);
             INSERT INTO archive_seen VALUES (12);",
        )
        .unwrap();
        migrate(&mut conn).unwrap();
        let rows: Vec<(i64, String, i64)> = conn
            .prepare("SELECT id, address, uid FROM archive ORDER BY id")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        let numbered = [
            (10, "b@x.it", 1),
            (11, "a@x.it", 1),
            (12, "b@x.it", 2),
            (13, "a@x.it", 2),
        ];
        assert_eq!(
            rows,
            numbered.map(|(id, a, uid)| (id, a.to_string(), uid)),
            "numbered in arrival (id) order, not by time"
        );
        let used: Vec<i64> = conn
            .prepare("SELECT used FROM archive_folders ORDER BY address")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert_eq!(
            used,
            [10, 5],
            "version 11 counts the bytes each archive holds"
        );
        let folders: Vec<(String, i64, i64, i64)> = conn
            .prepare(
                "SELECT address, uidvalidity, uidnext, highestmodseq FROM archive_folders
                 ORDER BY address",
            )
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert_eq!(
            folders,
            [
                ("a@x.it".to_string(), 2, 3, 1),
                ("b@x.it".to_string(), 3, 3, 1)
            ]
        );
        let seen: i64 = conn
            .query_row("SELECT archive_id FROM archive_seen", [], |r| r.get(0))
            .unwrap();
        assert_eq!(seen, 12, "read marks stay");
    }

    #[test]
    fn connection_settings_are_durable() {
        let dir = tempfile::tempdir().unwrap();
        let conn = connect(&dir.path().join("t.db")).unwrap();
        let mode: String = conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        let sync: i64 = conn
            .query_row("PRAGMA synchronous", [], |r| r.get(0))
            .unwrap();
        let fk: i64 = conn
            .query_row("PRAGMA foreign_keys", [], |r| r.get(0))
            .unwrap();
        assert_eq!((mode.as_str(), sync, fk), ("wal", 2, 1));
    }

    #[test]
    fn cached_statements_are_not_prepared_again_when_their_values_change() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = connect(&dir.path().join("t.db")).unwrap();
        migrate(&mut conn).unwrap();
        // The shape of the account look-up: an equality on a bound value next to a join.
        let sql = "SELECT a.address, d.name FROM accounts a JOIN domains d
                   ON a.domain_id = d.id WHERE a.address = ?1";
        for addr in ["a@x.it", "b@x.it", "c@x.it", "d@x.it"] {
            let mut stmt = conn.prepare_cached(sql).unwrap();
            let found = stmt.exists([addr]).unwrap();
            assert!(!found);
            // The cache clears the bindings when the statement goes back.
        }
        let stmt = conn.prepare_cached(sql).unwrap();
        assert_eq!(
            stmt.get_status(rusqlite::StatementStatus::RePrepare),
            0,
            "the statement was parsed again for new values"
        );
    }

    #[test]
    fn refuses_newer_schema() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = connect(&dir.path().join("t.db")).unwrap();
        conn.pragma_update(None, "user_version", current_version() + 1)
            .unwrap();
        assert!(matches!(
            migrate(&mut conn),
            Err(Error::SchemaTooNew { .. })
        ));
    }
}
