//! The registry events of protocol offices as administrators read them, and the protocol
//! number a registry writes back: the province sees every domain's, an ente's
//! administrator their own domains' only (403 for another's).

use pec_store::{AdminAction, EventQuery, ProtocolNumber, RegistryEvent};

use super::{Actor, Administration};
use crate::error::{Refusal, Result};
use crate::protocol::PROTOCOLLO;
use crate::service::domain_of;

/// Events listed when the request names no limit.
pub const DEFAULT_LIMIT: usize = 100;

/// Most events listed per request.
pub const MAX_LIMIT: usize = 1000;

/// Longest protocol number or date kept.
pub const MAX_PROTOCOL_FIELD: usize = 200;

impl Administration {
    /// The events after the cursor `after` (an event id; 0 from the first), of `domain`
    /// or of every domain `actor` may see, at most `limit` (bounded by [`MAX_LIMIT`]).
    pub fn events(
        &self,
        actor: &Actor,
        domain: Option<&str>,
        after: i64,
        limit: usize,
    ) -> Result<Vec<RegistryEvent>> {
        let domain = domain.map(|d| d.trim().to_ascii_lowercase());
        let domains = match (&actor.ente, domain) {
            (None, d) => d.map(|d| vec![d]),
            (Some(mine), d) => {
                let own: Vec<String> = self
                    .store
                    .list_enti()?
                    .into_iter()
                    .find(|e| e.name == *mine)
                    .map(|e| e.domains)
                    .unwrap_or_default();
                match d {
                    None => Some(own),
                    Some(d) if own.contains(&d) => Some(vec![d]),
                    Some(d) => {
                        return Err(Refusal::forbidden(
                            "other-ente",
                            format!("il dominio {d} non appartiene al proprio ente"),
                        ));
                    }
                }
            }
        };
        Ok(self.store.registry_events(&EventQuery {
            after: after.max(0),
            domains,
            limit: limit.clamp(1, MAX_LIMIT),
        })?)
    }

    /// Keeps the protocol number `number` (and `date`) the registry gave the message of
    /// event `id`, and marks the message with the keyword [`PROTOCOLLO`] (when it is
    /// still where it was delivered); the mailbox must be one `actor` may manage.
    pub fn set_protocol_number(
        &self,
        actor: &Actor,
        id: i64,
        number: &str,
        date: Option<&str>,
    ) -> Result<RegistryEvent> {
        let number = number.trim();
        let date = date.map(str::trim).filter(|d| !d.is_empty());
        if number.is_empty()
            || number.len() > MAX_PROTOCOL_FIELD
            || date.is_some_and(|d| d.len() > MAX_PROTOCOL_FIELD)
            || number
                .chars()
                .chain(date.unwrap_or("").chars())
                .any(char::is_control)
        {
            return Err(Refusal::invalid(
                "bad-protocol-number",
                format!(
                    "numero di protocollo (e data) da 1 a {MAX_PROTOCOL_FIELD} caratteri, \
                     senza caratteri di controllo"
                ),
            ));
        }
        let event = self.store.registry_event(id)?;
        // Checked on the domain, so that another ente's administrator learns nothing
        // but the refusal.
        super::scope(actor, &self.store.list_enti()?, &event.address)?;
        // The number, the keyword on the message and the legal log record naming who
        // wrote it back: one transaction.
        let what = format!(
            "protocollo {number}{} per l'evento {id} ({})",
            date.map(|d| format!(" del {d}")).unwrap_or_default(),
            domain_of(&event.address)
        );
        let protocol = ProtocolNumber {
            number: number.to_string(),
            date: date.map(str::to_string),
            at: self.clock.now().timestamp(),
        };
        let action = AdminAction::SetProtocolNumber {
            id,
            number: protocol.clone(),
            keyword: PROTOCOLLO.to_string(),
        };
        self.apply(actor, &event.address, &what, action, None)?;
        // What was committed, without a read after it that could fail and make a client
        // write the number back (and log it) twice.
        Ok(RegistryEvent {
            protocol: Some(protocol),
            ..event
        })
    }
}
