//! Exactly-once effects (SQLite backend): every PEC effect that must happen at most once
//! — an envelope taken in charge for a recipient, a receipt filed, a 12 h / 24 h notice
//! sent, an acceptance issued — is named by an [`EffectKey`] that a [`crate::Batch`]
//! stores in the same transaction as the effect. The key is unique in the table
//! `effects`, so two retries, two concurrent receptions or two nodes can never both
//! commit it: the second batch finds the key and stores nothing
//! ([`crate::AlreadyDone`]).
//!
//! Keys are made from signed data only (identificativo, certified recipients, the signing
//! gestore), never from what a relay may rewrite (the outer Message-ID, the SMTP
//! envelope), and are hashed so that their size does not depend on the input.

use rusqlite::{Connection, params};

use crate::blobs;
use crate::cached;
use crate::error::{Error, Result};
use crate::model::NoticeKind;

/// Domain separation: the hashed form of a key starts with this.
const KEY_TAG: &[u8] = b"pec-store effect key v1\0";

/// The name of an effect that must happen at most once, e.g. "the envelope `opec…` of
/// Alfa PEC was taken in charge for anna@…". Stored as `<kind>/<SHA-256 hex>` of its
/// parts, so a key has a bounded size whatever the message.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EffectKey(String);

/// An address as keys compare it.
fn address(a: &str) -> String {
    a.trim().to_lowercase()
}

impl EffectKey {
    /// The key of kind `kind` over `parts` (each length-prefixed, so no two lists of
    /// parts hash alike).
    fn of(kind: &str, parts: &[&str]) -> Self {
        let mut canonical = Vec::with_capacity(128);
        canonical.extend_from_slice(KEY_TAG);
        for part in std::iter::once(&kind).chain(parts) {
            canonical.extend_from_slice(&(part.len() as u64).to_be_bytes());
            canonical.extend_from_slice(part.as_bytes());
        }
        EffectKey(format!("{kind}/{}", blobs::hash_hex(&canonical)))
    }

    /// A transport envelope signed by `provider` (the index name of the signing
    /// certificate) taken in charge for one certified `recipient`: its part of the presa
    /// in carico and its consegna or mancata consegna (or rilevazione virus).
    pub fn envelope(provider: &str, identificativo: &str, recipient: &str) -> Self {
        EffectKey::of(
            "busta",
            &[provider.trim(), identificativo.trim(), &address(recipient)],
        )
    }

    /// A receipt of `kind` (`avvenuta-consegna`, `presa-in-carico`, ...) signed by
    /// `provider`, filed: named by what its daticert certifies — the transaction, the
    /// recipient it is about (`consegna`) and, for a presa in carico, the recipients it
    /// covers (`ricezione`, in any order).
    pub fn receipt(
        kind: &str,
        provider: &str,
        identificativo: &str,
        consegna: &str,
        ricezione: &[String],
    ) -> Self {
        let mut covered: Vec<String> = ricezione.iter().map(|r| address(r)).collect();
        covered.sort();
        covered.dedup();
        let covered = covered.join("\n");
        EffectKey::of(
            "ricevuta",
            &[
                kind.trim(),
                provider.trim(),
                identificativo.trim(),
                &address(consegna),
                &covered,
            ],
        )
    }

    /// The 12 h or 24 h notice about one recipient of a transaction, sent.
    pub fn notice(kind: NoticeKind, identificativo: &str, recipient: &str) -> Self {
        let kind = match kind {
            NoticeKind::Twelve => "preavviso-12h",
            NoticeKind::TwentyFour => "preavviso-24h",
        };
        EffectKey::of(kind, &[identificativo.trim(), &address(recipient)])
    }

    /// The ricevuta di accettazione of a submission, issued under its new identificativo.
    pub fn acceptance(identificativo: &str) -> Self {
        EffectKey::of("accettazione", &[identificativo.trim()])
    }

    /// The stored form.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for EffectKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Whether `key` is stored.
pub fn exists(conn: &Connection, key: &EffectKey) -> Result<bool> {
    let n: i64 = cached::query_row(
        conn,
        "SELECT count(*) FROM effects WHERE key = ?1",
        [key.as_str()],
        |r| r.get(0),
    )?;
    Ok(n > 0)
}

/// Stores `key` as done at `at`; `false` (and nothing changed) if it already was.
fn insert(conn: &Connection, key: &EffectKey, at: i64) -> Result<bool> {
    let inserted = cached::execute(
        conn,
        "INSERT INTO effects (key, at) VALUES (?1, ?2) ON CONFLICT (key) DO NOTHING",
        params![key.as_str(), at],
    )?;
    Ok(inserted > 0)
}

/// Stores `key` as done at `at`; a key already stored is [`Error::AlreadyExists`].
pub fn record(conn: &Connection, key: &EffectKey, at: i64) -> Result<()> {
    if insert(conn, key, at)? {
        Ok(())
    } else {
        Err(Error::AlreadyExists(key.to_string()))
    }
}

/// Removes the keys stored before `cutoff`; returns how many.
pub fn purge(conn: &Connection, cutoff: i64) -> Result<u64> {
    Ok(cached::execute(conn, "DELETE FROM effects WHERE at < ?1", [cutoff])? as u64)
}

/// Fills `effects` from what a store written before the keys existed recorded, so that
/// a message handled before the upgrade is still recognised after it: the envelopes taken
/// in charge (legal log `presa-in-carico`: the signer in `gestore`, the recipients in
/// `detail`), the receipts filed (`ricezione <kind>`: the recipient first in `detail`;
/// a presa in carico received is left out, its covered recipients were not logged) and
/// the notices sent (the timers' flags). Part of the schema migration that creates the
/// table, in its transaction.
pub fn backfill(conn: &Connection) -> Result<()> {
    let mut stmt = conn.prepare(
        "SELECT at, event, msgid, gestore, detail FROM legal_log
         WHERE event = 'presa-in-carico' OR event LIKE 'ricezione %'",
    )?;
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        let (at, event, msgid, gestore, detail): (i64, String, String, String, String) =
            (r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?);
        if event == "presa-in-carico" {
            for recipient in detail.split(", ").filter(|r| !r.trim().is_empty()) {
                insert(conn, &EffectKey::envelope(&gestore, &msgid, recipient), at)?;
            }
        } else if let Some(kind) = event.strip_prefix("ricezione ")
            && kind != "presa-in-carico"
        {
            // `recipient message-id`, or the message-id alone for a receipt about no
            // recipient.
            let consegna = detail.split_once(' ').map_or("", |(r, _)| r);
            insert(
                conn,
                &EffectKey::receipt(kind, &gestore, &msgid, consegna, &[]),
                at,
            )?;
        }
    }
    let mut stmt = conn.prepare(
        "SELECT identificativo, recipient, dispatched_at, notice12_sent, notice24_sent
         FROM timers WHERE notice12_sent <> 0 OR notice24_sent <> 0",
    )?;
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        let (id, recipient, at, twelve, twenty_four): (String, String, i64, bool, bool) =
            (r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?);
        for (sent, kind) in [
            (twelve, NoticeKind::Twelve),
            (twenty_four, NoticeKind::TwentyFour),
        ] {
            if sent {
                insert(conn, &EffectKey::notice(kind, &id, &recipient), at)?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_bounded_and_tell_their_parts_apart() {
        let k = EffectKey::envelope("Alfa PEC", "opec1@pec.alfa.test", "Anna@Pec.Beta.Test ");
        assert!(k.as_str().starts_with("busta/"));
        assert_eq!(k.as_str().len(), "busta/".len() + 64);
        assert_eq!(
            k,
            EffectKey::envelope(" Alfa PEC", "opec1@pec.alfa.test", "anna@pec.beta.test")
        );
        // Moving characters between parts makes another key.
        assert_ne!(
            EffectKey::envelope("Alfa", "x@y", "a@b"),
            EffectKey::envelope("Alf", "ax@y", "a@b")
        );
        assert_ne!(
            k,
            EffectKey::envelope("Beta PEC", "opec1@pec.alfa.test", "anna@pec.beta.test")
        );
        let huge = "x".repeat(1 << 20);
        assert_eq!(
            EffectKey::acceptance(&huge).as_str().len(),
            "accettazione/".len() + 64
        );
    }

    #[test]
    fn a_presa_in_carico_key_ignores_the_order_of_its_recipients() {
        let a = ["b@x.it".to_string(), "A@x.it".to_string()];
        let b = ["a@x.it".to_string(), "b@x.it".to_string()];
        let key = |r: &[String]| EffectKey::receipt("presa-in-carico", "Beta", "id", "", r);
        assert_eq!(key(&a), key(&b));
        assert_ne!(key(&a), key(&b[..1]));
        assert_ne!(
            EffectKey::receipt("avvenuta-consegna", "Beta", "id", "a@x.it", &[]),
            EffectKey::receipt("errore-consegna", "Beta", "id", "a@x.it", &[])
        );
        assert_ne!(
            EffectKey::notice(NoticeKind::Twelve, "id", "a@x.it"),
            EffectKey::notice(NoticeKind::TwentyFour, "id", "a@x.it")
        );
    }
}
