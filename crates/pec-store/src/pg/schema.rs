//! The PostgreSQL schema and its migrations: the same data model as the embedded store
//! (see [`crate::schema`]), in PostgreSQL's types, plus what several nodes need (the
//! leases of queue entries and timers) and reference counts on blobs.
//!
//! The version is the one row of `schema_version`; [`MIGRATIONS`] is the ordered list of
//! scripts, and version *n* means the first *n* have been applied. Each pending script
//! runs in its own transaction together with the version bump, under an advisory lock, so
//! nodes starting together apply it once and a crash mid-migration leaves the previous
//! version intact.

use postgres::Client;

use crate::error::{Error, Result};

/// Key of the advisory lock that serialises migrations (any fixed number: "pecd").
const MIGRATION_LOCK: i64 = 0x7065_6364;

/// The migration scripts, oldest first. Never edit a released one: append a new one.
const MIGRATIONS: &[&str] = &[
    // 1: everything the embedded store has at its version 5.
    r#"
    CREATE TABLE domains (
        id            BIGSERIAL PRIMARY KEY,
        name          TEXT NOT NULL UNIQUE,
        default_quota BIGINT NOT NULL CHECK (default_quota >= 0)
    );
    -- used: bytes of the account's live messages, kept by the trigger below; a
    -- delivery locks the row, checks and adds, so concurrent deliveries cannot pass the
    -- quota together.
    CREATE TABLE accounts (
        id              BIGSERIAL PRIMARY KEY,
        domain_id       BIGINT NOT NULL REFERENCES domains(id) ON DELETE RESTRICT,
        address         TEXT NOT NULL UNIQUE CHECK (address = lower(address)),
        password_hash   TEXT NOT NULL,
        quota           BIGINT NOT NULL CHECK (quota >= 0),
        receipts_folder BOOLEAN NOT NULL DEFAULT FALSE,
        used            BIGINT NOT NULL DEFAULT 0
    );
    -- uidvalidity = id, from a sequence that never gives a number twice. uidnext and
    -- highestmodseq are taken with UPDATE ... RETURNING, which locks the row: two
    -- deliveries to one folder, from any nodes, never get the same UID.
    CREATE TABLE folders (
        id            BIGSERIAL PRIMARY KEY,
        account_id    BIGINT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
        name          TEXT NOT NULL,
        special_use   TEXT,
        system        BOOLEAN NOT NULL DEFAULT FALSE,
        uidvalidity   BIGINT NOT NULL,
        uidnext       BIGINT NOT NULL DEFAULT 1,
        highestmodseq BIGINT NOT NULL DEFAULT 1,
        subscribed    BOOLEAN NOT NULL DEFAULT TRUE,
        UNIQUE (account_id, name)
    );
    -- expunged keeps a tombstone (uid, modseq) for QRESYNC VANISHED.
    CREATE TABLE messages (
        folder_id    BIGINT NOT NULL REFERENCES folders(id) ON DELETE CASCADE,
        uid          BIGINT NOT NULL,
        blob         TEXT NOT NULL,
        size         BIGINT NOT NULL CHECK (size >= 0),
        internaldate BIGINT NOT NULL,
        flags        TEXT NOT NULL DEFAULT '',
        modseq       BIGINT NOT NULL,
        expunged     BOOLEAN NOT NULL DEFAULT FALSE,
        PRIMARY KEY (folder_id, uid)
    );
    CREATE INDEX messages_modseq ON messages(folder_id, modseq);
    CREATE FUNCTION messages_used() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'INSERT' THEN
            IF NOT NEW.expunged THEN
                UPDATE accounts SET used = used + NEW.size
                WHERE id = (SELECT account_id FROM folders WHERE id = NEW.folder_id);
            END IF;
            RETURN NEW;
        ELSIF TG_OP = 'UPDATE' THEN
            IF NOT OLD.expunged AND NEW.expunged THEN
                UPDATE accounts SET used = used - OLD.size
                WHERE id = (SELECT account_id FROM folders WHERE id = OLD.folder_id);
            END IF;
            RETURN NEW;
        ELSE
            IF NOT OLD.expunged THEN
                UPDATE accounts SET used = used - OLD.size
                WHERE id = (SELECT account_id FROM folders WHERE id = OLD.folder_id);
            END IF;
            RETURN OLD;
        END IF;
    END $$;
    CREATE TRIGGER messages_used AFTER INSERT OR UPDATE OF expunged OR DELETE ON messages
        FOR EACH ROW EXECUTE FUNCTION messages_used();
    CREATE TABLE archive (
        id        BIGSERIAL PRIMARY KEY,
        address   TEXT NOT NULL,
        blob      TEXT NOT NULL,
        size      BIGINT NOT NULL CHECK (size >= 0),
        direction TEXT NOT NULL CHECK (direction IN ('sent', 'received')),
        kind      TEXT NOT NULL,
        stored_at BIGINT NOT NULL
    );
    CREATE INDEX archive_address ON archive(address, stored_at);
    CREATE INDEX archive_stored_at ON archive(stored_at);
    -- Message bytes, content-addressed: refs counts the rows that name the blob (live
    -- messages, archive entries, queue entries, virus store entries, timers); the row
    -- goes when the count reaches zero. Counting under the row's lock keeps two nodes
    -- from deleting a blob another is just starting to use.
    CREATE TABLE blobs (
        hash  TEXT PRIMARY KEY,
        bytes BYTEA NOT NULL,
        refs  BIGINT NOT NULL CHECK (refs >= 0)
    );
    CREATE TABLE legal_log (
        seq            BIGINT PRIMARY KEY,
        at             BIGINT NOT NULL,
        at_local       TEXT NOT NULL,
        event          TEXT NOT NULL,
        msgid          TEXT NOT NULL,
        original_msgid TEXT NOT NULL,
        sender         TEXT NOT NULL,
        recipients     TEXT[] NOT NULL,
        subject        TEXT NOT NULL,
        generated_ids  TEXT[] NOT NULL,
        gestore        TEXT NOT NULL,
        detail         TEXT NOT NULL,
        hash           TEXT NOT NULL
    );
    CREATE INDEX legal_log_msgid ON legal_log(msgid);
    CREATE INDEX legal_log_original_msgid ON legal_log(original_msgid);
    CREATE INDEX legal_log_at ON legal_log(at);
    -- One chain for the whole gestore: an append locks this row until it commits, so
    -- the appends of every node are serialised by the database.
    CREATE TABLE legal_log_chain (
        id              INTEGER PRIMARY KEY CHECK (id = 1),
        checkpoint_seq  BIGINT NOT NULL,
        checkpoint_hash TEXT NOT NULL,
        head_seq        BIGINT NOT NULL,
        head_hash       TEXT NOT NULL
    );
    INSERT INTO legal_log_chain VALUES (1, 0, repeat('0', 64), 0, repeat('0', 64));
    -- lease_owner / lease_until: the node that claimed the entry and until when (the
    -- caller's clock, seconds); nobody else gets it before then.
    CREATE TABLE queue (
        id              BIGSERIAL PRIMARY KEY,
        msgid           TEXT NOT NULL,
        mail_from       TEXT NOT NULL,
        rcpt_to         TEXT[] NOT NULL,
        domain          TEXT NOT NULL,
        blob            TEXT NOT NULL,
        size            BIGINT NOT NULL CHECK (size >= 0),
        created_at      BIGINT NOT NULL,
        next_attempt_at BIGINT NOT NULL,
        attempts        BIGINT NOT NULL DEFAULT 0 CHECK (attempts >= 0),
        last_error      TEXT,
        expires_at      BIGINT NOT NULL,
        lease_owner     TEXT,
        lease_until     BIGINT
    );
    CREATE INDEX queue_next_attempt ON queue(next_attempt_at, id);
    CREATE TABLE timers (
        identificativo     TEXT NOT NULL,
        recipient          TEXT NOT NULL CHECK (recipient = lower(recipient)),
        sender             TEXT NOT NULL,
        subject            TEXT NOT NULL,
        envelope_blob      TEXT,
        dispatched_at      BIGINT NOT NULL,
        presa_in_carico_at BIGINT,
        delivered          BOOLEAN NOT NULL DEFAULT FALSE,
        outcome            TEXT NOT NULL DEFAULT 'pending'
            CHECK (outcome IN ('pending', 'delivered', 'error', 'virus', 'timeout24')),
        notice12_sent      BOOLEAN NOT NULL DEFAULT FALSE,
        notice24_sent      BOOLEAN NOT NULL DEFAULT FALSE,
        lease_owner        TEXT,
        lease_until        BIGINT,
        PRIMARY KEY (identificativo, recipient)
    );
    CREATE INDEX timers_pending ON timers(dispatched_at) WHERE outcome = 'pending';
    CREATE TABLE virus_store (
        id         BIGSERIAL PRIMARY KEY,
        stored_at  BIGINT NOT NULL,
        msgid      TEXT NOT NULL,
        sender     TEXT NOT NULL,
        recipients TEXT[] NOT NULL,
        virus      TEXT NOT NULL,
        blob       TEXT NOT NULL,
        size       BIGINT NOT NULL CHECK (size >= 0)
    );
    CREATE INDEX virus_store_stored_at ON virus_store(stored_at);
    CREATE TABLE effects (
        key TEXT PRIMARY KEY,
        at  BIGINT NOT NULL
    );
    CREATE INDEX effects_at ON effects(at);
    "#,
    // 2: subscriptions apart from folders (RFC 3501 6.3.6): a deleted folder stays
    // subscribed (LIST shows it \NonExistent), a name may be subscribed without a folder,
    // and a folder a user creates starts unsubscribed; the folders an account is created
    // with are subscribed then (directory::insert_folder). Existing subscriptions are
    // kept; folders.subscribed is no longer read.
    r#"
    CREATE TABLE subscriptions (
        account_id BIGINT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
        name       TEXT NOT NULL,
        PRIMARY KEY (account_id, name)
    );
    INSERT INTO subscriptions (account_id, name)
        SELECT account_id, name FROM folders WHERE subscribed;
    "#,
    // 3: the archive entries their address has read (\Seen over IMAP). Each entry
    // belongs to one address, so this is per user; the entry itself never changes, and
    // the mark goes with it when it is purged.
    r#"
    CREATE TABLE archive_seen (
        archive_id BIGINT PRIMARY KEY REFERENCES archive(id) ON DELETE CASCADE
    );
    "#,
    // 4: the embedded store's version 8: log time stamps, the minutes the service was up
    // (any node), queue entries held by the administrator.
    r#"
    CREATE TABLE log_timestamps (
        id           BIGSERIAL PRIMARY KEY,
        seq          BIGINT NOT NULL,
        head_hash    TEXT NOT NULL,
        requested_at BIGINT NOT NULL,
        tsa_url      TEXT NOT NULL,
        response     BYTEA NOT NULL
    );
    CREATE TABLE uptime (
        minute BIGINT PRIMARY KEY
    );
    ALTER TABLE queue ADD COLUMN held BOOLEAN NOT NULL DEFAULT FALSE;
    "#,
    // 5: each address's archive is an IMAP folder of its own, as the embedded store's
    // version 9 (see there): UIDs per address in arrival order, a modseq per entry, and
    // the folder's counters in `archive_folders`. A new entry takes its UID with
    // UPDATE ... RETURNING on its folder's row, whose lock orders concurrent ones.
    r#"
    CREATE TABLE archive_folders (
        address       TEXT PRIMARY KEY CHECK (address = lower(address)),
        uidvalidity   BIGINT NOT NULL CHECK (uidvalidity > 1),
        uidnext       BIGINT NOT NULL DEFAULT 1,
        highestmodseq BIGINT NOT NULL DEFAULT 1
    );
    ALTER TABLE archive ADD COLUMN uid BIGINT NOT NULL DEFAULT 0;
    ALTER TABLE archive ADD COLUMN modseq BIGINT NOT NULL DEFAULT 1;
    UPDATE archive SET uid = numbered.uid
    FROM (SELECT id, row_number() OVER (PARTITION BY address ORDER BY id) AS uid
          FROM archive) AS numbered
    WHERE numbered.id = archive.id;
    CREATE UNIQUE INDEX archive_uid ON archive(address, uid);
    INSERT INTO archive_folders (address, uidvalidity, uidnext)
        SELECT address, row_number() OVER (ORDER BY address COLLATE "C") + 1, max(uid) + 1
        FROM archive GROUP BY address;
    "#,
    // 6: enti, their administrators and the mailbox events, as the embedded store's
    // version 10 (see there).
    r#"
    CREATE TABLE enti (
        id        BIGSERIAL PRIMARY KEY,
        name      TEXT NOT NULL UNIQUE,
        allotment BIGINT NOT NULL CHECK (allotment >= 0)
    );
    CREATE TABLE ente_domains (
        domain  TEXT PRIMARY KEY CHECK (domain = lower(domain)),
        ente_id BIGINT NOT NULL REFERENCES enti(id) ON DELETE CASCADE
    );
    CREATE TABLE admins (
        login         TEXT PRIMARY KEY CHECK (login = lower(login)),
        ente_id       BIGINT REFERENCES enti(id) ON DELETE CASCADE,
        password_hash TEXT NOT NULL
    );
    CREATE TABLE mailbox_events (
        id      BIGSERIAL PRIMARY KEY,
        address TEXT NOT NULL CHECK (address = lower(address)),
        kind    TEXT NOT NULL,
        at      BIGINT NOT NULL
    );
    CREATE INDEX mailbox_events_at ON mailbox_events(at);
    "#,
    // 7: archive options and the bytes each archive holds, as the embedded store's
    // version 11 (see there).
    r#"
    CREATE TABLE archive_options (
        address  TEXT PRIMARY KEY CHECK (address = lower(address)),
        scope    TEXT NOT NULL CHECK (scope IN ('tutto', 'pec')),
        sent     BOOLEAN NOT NULL,
        received BOOLEAN NOT NULL,
        quota    BIGINT NOT NULL CHECK (quota > 0)
    );
    ALTER TABLE archive_folders ADD COLUMN used BIGINT NOT NULL DEFAULT 0;
    UPDATE archive_folders SET used = (
        SELECT COALESCE(SUM(size), 0) FROM archive WHERE archive.address = archive_folders.address);
    "#,
    // 8: the registry events of protocol offices and their webhook outbox, as the
    // embedded store's version 12. Ids follow commit order: a batch inserts its events
    // last, under a transaction lock (crate::pg::registry::EVENTS_LOCK).
    r#"
    CREATE TABLE registry_events (
        id              BIGSERIAL PRIMARY KEY,
        address         TEXT NOT NULL CHECK (address = lower(address)),
        domain          TEXT NOT NULL,
        key             TEXT NOT NULL,
        kind            TEXT NOT NULL,
        body            TEXT NOT NULL,
        created_at      BIGINT NOT NULL,
        folder          TEXT,
        uid             BIGINT,
        pending         BOOLEAN NOT NULL,
        attempts        BIGINT NOT NULL DEFAULT 0,
        next_attempt_at BIGINT NOT NULL,
        sent_at         BIGINT,
        last_error      TEXT,
        protocol_number TEXT,
        protocol_date   TEXT,
        protocol_at     BIGINT,
        UNIQUE (address, key)
    );
    CREATE INDEX registry_events_domain ON registry_events(domain, id);
    CREATE INDEX registry_events_due ON registry_events(next_attempt_at) WHERE pending;
    "#,
    // 9: API tokens, as the embedded store's version 13 (see there).
    r#"
    CREATE TABLE api_tokens (
        login      TEXT NOT NULL REFERENCES admins(login) ON DELETE CASCADE,
        name       TEXT NOT NULL,
        hash       TEXT NOT NULL UNIQUE,
        created_at BIGINT NOT NULL,
        PRIMARY KEY (login, name)
    );
    "#,
    // 10: the index registry events are purged by, as the embedded store's version 14.
    r#"
    CREATE INDEX registry_events_created ON registry_events(created_at);
    "#,
];

/// The schema version this program writes.
pub fn current_version() -> i64 {
    MIGRATIONS.len() as i64
}

/// The version of the database behind `client` (0 for an empty one).
fn version(tx: &mut postgres::Transaction<'_>) -> Result<i64> {
    tx.batch_execute("CREATE TABLE IF NOT EXISTS schema_version (version BIGINT NOT NULL)")?;
    let rows = tx.query("SELECT version FROM schema_version", &[])?;
    match rows.as_slice() {
        [] => {
            tx.execute("INSERT INTO schema_version VALUES (0)", &[])?;
            Ok(0)
        }
        [row] => Ok(row.get(0)),
        _ => Err(Error::Corrupt("schema_version has several rows".into())),
    }
}

/// Brings the database up to [`current_version`], one migration per transaction.
/// Refuses a database written by a newer program.
pub fn migrate(client: &mut Client) -> Result<()> {
    loop {
        let mut tx = client.transaction()?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])?;
        let found = version(&mut tx)?;
        let known = current_version();
        if found > known {
            return Err(Error::SchemaTooNew { found, known });
        }
        let Some(script) = usize::try_from(found).ok().and_then(|i| MIGRATIONS.get(i)) else {
            return Ok(tx.commit()?);
        };
        tx.batch_execute(script)?;
        tx.execute("UPDATE schema_version SET version = $1", &[&(found + 1)])?;
        tx.commit()?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_3_database_numbers_its_archive_per_address() {
        let url = crate::test_util::shared_server().database();
        let mut client = Client::connect(&url, postgres::NoTls).unwrap();
        for script in &MIGRATIONS[..3] {
            client.batch_execute(script).unwrap();
        }
        client
            .batch_execute(
                "CREATE TABLE schema_version (version BIGINT NOT NULL);
                 INSERT INTO schema_version VALUES (3);
                 INSERT INTO archive (id, address, blob, size, direction, kind, stored_at)
                 VALUES (10, 'b@x.it', 'h', 1, 'sent', 'k', 5),
                        (11, 'a@x.it', 'h', 2, 'sent', 'k', 9),
                        (12, 'b@x.it', 'h', 4, 'sent', 'k', 1),
                        (13, 'a@x.it', 'h', 8, 'sent', 'k', 2);",
            )
            .unwrap();
        migrate(&mut client).unwrap();
        let rows: Vec<(i64, String, i64)> = client
            .query("SELECT id, address, uid FROM archive ORDER BY id", &[])
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect();
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
        let used: Vec<i64> = client
            .query("SELECT used FROM archive_folders ORDER BY address", &[])
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        assert_eq!(
            used,
            [10, 5],
            "version 7 counts the bytes each archive holds"
        );
        let folders: Vec<(String, i64, i64, i64)> = client
            .query(
                "SELECT address, uidvalidity, uidnext, highestmodseq FROM archive_folders
                 ORDER BY address",
                &[],
            )
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
            .collect();
        assert_eq!(
            folders,
            [
                ("a@x.it".to_string(), 2, 3, 1),
                ("b@x.it".to_string(), 3, 3, 1)
            ]
        );
    }
}
