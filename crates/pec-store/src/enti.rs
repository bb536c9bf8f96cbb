//! Enti, their administrators and the mailbox events billing counts (SQLite backend).

use rusqlite::{Connection, OptionalExtension, params};

use crate::accounts::unique;
use crate::cached;
use crate::error::{Error, Result};
use crate::lookup::{self, from_db, to_db};
use crate::model::{Admin, Ente, MailboxEvent};

/// Adds an ente and its domains, which must be hosted.
pub fn add_ente(conn: &Connection, ente: &Ente) -> Result<()> {
    cached::execute(
        conn,
        "INSERT INTO enti (name, allotment) VALUES (?1, ?2)",
        params![ente.name, to_db(ente.allotment)],
    )
    .map_err(|e| unique(e, &ente.name))?;
    let id = conn.last_insert_rowid();
    for domain in &ente.domains {
        let domain = lookup::domain_name(domain)?;
        let hosted: bool = cached::query_row(
            conn,
            "SELECT EXISTS (SELECT 1 FROM domains WHERE name = ?1)",
            [&domain],
            |r| r.get(0),
        )?;
        if !hosted {
            return Err(Error::NoSuchDomain(domain));
        }
        cached::execute(
            conn,
            "INSERT INTO ente_domains (domain, ente_id) VALUES (?1, ?2)",
            params![domain, id],
        )
        .map_err(|e| unique(e, &domain))?;
    }
    Ok(())
}

/// Every ente with its domains, by name.
pub fn list_enti(conn: &Connection) -> Result<Vec<Ente>> {
    let mut stmt = conn.prepare_cached(
        "SELECT e.name, e.allotment, d.domain FROM enti e
         LEFT JOIN ente_domains d ON d.ente_id = e.id ORDER BY e.name, d.domain",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, i64>(1)?,
            r.get::<_, Option<String>>(2)?,
        ))
    })?;
    let mut enti: Vec<Ente> = Vec::new();
    for row in rows {
        let (name, allotment, domain) = row?;
        if enti.last().is_none_or(|e| e.name != name) {
            enti.push(Ente {
                name,
                domains: Vec::new(),
                allotment: from_db(allotment, "allotment")?,
            });
        }
        if let (Some(e), Some(d)) = (enti.last_mut(), domain) {
            e.domains.push(d);
        }
    }
    Ok(enti)
}

/// Adds an administrator.
pub fn add_admin(conn: &Connection, admin: &Admin) -> Result<()> {
    let login = admin.login.trim().to_lowercase();
    let ente_id: Option<i64> = match &admin.ente {
        None => None,
        Some(name) => Some(
            cached::query_row(conn, "SELECT id FROM enti WHERE name = ?1", [name], |r| {
                r.get(0)
            })
            .optional()?
            .ok_or_else(|| Error::NoSuchEnte(name.clone()))?,
        ),
    };
    cached::execute(
        conn,
        "INSERT INTO admins (login, ente_id, password_hash) VALUES (?1, ?2, ?3)",
        params![login, ente_id, admin.password_hash],
    )
    .map_err(|e| unique(e, &login))?;
    Ok(())
}

/// The administrator with this login.
pub fn find_admin(conn: &Connection, login: &str) -> Result<Option<Admin>> {
    Ok(cached::query_row(
        conn,
        "SELECT a.login, e.name, a.password_hash FROM admins a
         LEFT JOIN enti e ON e.id = a.ente_id WHERE a.login = ?1",
        [login.trim().to_lowercase()],
        |r| {
            Ok(Admin {
                login: r.get(0)?,
                ente: r.get(1)?,
                password_hash: r.get(2)?,
            })
        },
    )
    .optional()?)
}

/// Keeps a mailbox event.
pub fn record_mailbox_event(conn: &Connection, event: &MailboxEvent) -> Result<()> {
    cached::execute(
        conn,
        "INSERT INTO mailbox_events (address, kind, at) VALUES (?1, ?2, ?3)",
        params![event.address.to_lowercase(), event.kind, event.at],
    )?;
    Ok(())
}

/// Mailbox events before `to`, by address, time and id.
pub fn mailbox_events(conn: &Connection, to: i64) -> Result<Vec<MailboxEvent>> {
    let mut stmt = conn.prepare_cached(
        "SELECT address, kind, at FROM mailbox_events WHERE at < ?1 ORDER BY address, at, id",
    )?;
    let rows = stmt.query_map([to], |r| {
        Ok(MailboxEvent {
            address: r.get(0)?,
            kind: r.get(1)?,
            at: r.get(2)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}
