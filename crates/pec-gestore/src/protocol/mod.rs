//! Protocol offices (uffici protocollo): mailboxes whose PEC is registered in a
//! municipality's protocol, with a document policy judged at final delivery.
//!
//! The PEC is always delivered (legally it arrived); a message whose attachments break
//! the office's policy is flagged with the IMAP keyword [`NON_CONFORME`], stored with the
//! message in the delivery's own transaction, so the registry and the operator's client
//! see the verdict with the message. An office with a [`ripudio::Ripudio`] also sends
//! the sender a ripudio, queued in that same transaction — so exactly once per delivery,
//! under the delivery's effect key.
//!
//! Every PEC delivered to an office, and every receipt of a PEC it sent, also makes a
//! registry event ([`event`]) stored in that same transaction; the [`webhook`] sender
//! delivers it to the office's registry, which may write a protocol number back
//! ([`PROTOCOLLO`]).

pub mod event;
pub mod policy;
pub mod ripudio;
pub mod webhook;

use pec_proto::build::Transaction;
use pec_proto::daticert::Daticert;
use pec_store::{Batch, NewQueueEntry};
use policy::{DocumentPolicy, Verdict};
use ripudio::{ACCESS_POINT, Repudiated, Ripudio};
use tracing::info;
use webhook::Webhook;

use crate::antivirus::Scanner;
use crate::service::Gestore;

/// The IMAP keyword of a delivered PEC whose attachments break the office's policy.
pub const NON_CONFORME: &str = "$NonConforme";

/// The IMAP keyword of a delivered PEC its registry gave a protocol number (the number
/// itself is kept in the store, never in the message's signed bytes).
pub const PROTOCOLLO: &str = "$Protocollo";

/// Whom a protocol office covers.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Scope {
    /// One mailbox (address, lower case).
    Mailbox(String),
    /// Every mailbox of a domain (lower case).
    Domain(String),
}

/// A protocol office: its mailboxes and its document policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtocolOffice {
    /// The mailbox or domain it covers.
    pub scope: Scope,
    /// What its attachments may be.
    pub policy: DocumentPolicy,
    /// Whether it repudiates a message that breaks the policy, and how.
    pub ripudio: Option<Ripudio>,
    /// Where its registry events are posted, if anywhere (they can be read with
    /// `GET /api/v1/events` either way).
    pub webhook: Option<Webhook>,
}

/// The office covering `address`: one configured for the mailbox itself wins over one
/// for its domain.
pub fn office_for<'a>(offices: &'a [ProtocolOffice], address: &str) -> Option<&'a ProtocolOffice> {
    let address = address.trim().to_ascii_lowercase();
    let domain = crate::service::domain_of(&address);
    offices
        .iter()
        .find(|o| o.scope == Scope::Mailbox(address.clone()))
        .or_else(|| {
            offices
                .iter()
                .find(|o| o.scope == Scope::Domain(domain.clone()))
        })
}

impl<S: Scanner> Gestore<S> {
    /// The flags of `recipient`'s copy of the PEC `tx` certified by `daticert` whose
    /// original is `postacert`, about to be delivered as `b`'s next delivery. When
    /// `recipient` is a protocol office, its registry event is added to `b`, and when an
    /// attachment breaks the office's policy the flags are [`NON_CONFORME`] (each breach
    /// logged, and the ripudio queued in `b` when the office sends one); none otherwise.
    pub fn protocol_flags(
        &self,
        b: &mut Batch,
        (tx, daticert): (&Transaction, &Daticert),
        recipient: &str,
        postacert: Option<&[u8]>,
    ) -> Vec<String> {
        let Some(office) = office_for(&self.settings.protocol_offices, recipient) else {
            return Vec::new();
        };
        let (verdict, segnatura) = postacert
            .map(|o| office.policy.judge_and_read(o))
            .unwrap_or_default();
        let what = event::Occurrence {
            mailbox: recipient,
            daticert,
            kind: event::POSTA_CERTIFICATA,
            at: self.now(),
            delivery: b.deliveries.len(),
        };
        b.registry_events.push(event::new_event(
            office,
            &what,
            &verdict,
            segnatura.as_ref(),
        ));
        if verdict.complies() {
            return Vec::new();
        }
        for a in &verdict.attachments {
            if let Some(breach) = &a.breach {
                info!(
                    msgid = %tx.identificativo,
                    recipient,
                    attachment = %a.name,
                    sha256 = %a.sha256,
                    "protocol office: {}",
                    breach.italian(&office.policy)
                );
            }
        }
        if verdict.unjudged > 0 {
            info!(
                msgid = %tx.identificativo,
                recipient,
                "protocol office: {} attachments beyond the {} judged",
                verdict.unjudged,
                pec_proto::document::MAX_ATTACHMENTS
            );
        }
        if let Some(ripudio) = &office.ripudio {
            let now = self.now();
            let what = Repudiated {
                tx,
                office: recipient,
                delivered_at: now,
            };
            info!(msgid = %tx.identificativo, recipient, "protocol office: ripudio queued");
            b.queue.push(NewQueueEntry {
                msgid: tx.identificativo.clone(),
                mail_from: recipient.to_ascii_lowercase(),
                rcpt_to: ripudio.recipients(&tx.mittente),
                domain: ACCESS_POINT.to_string(),
                message: ripudio.message(&what, &office.policy, &verdict),
                created_at: now.timestamp(),
                due_at: now.timestamp(),
                expires_at: now.timestamp() + self.settings.queue_lifetime_secs,
            });
        }
        vec![NON_CONFORME.to_string()]
    }

    /// Adds to `b` the registry event of the receipt `raw`, about to be delivered to
    /// `recipient` as `b`'s next delivery, when `recipient` is a protocol office (and
    /// the receipt has its certified data).
    pub fn protocol_receipt(&self, b: &mut Batch, raw: &[u8], recipient: &str) {
        let Some(office) = office_for(&self.settings.protocol_offices, recipient) else {
            return;
        };
        let receipt = pec_proto::classify::classify(raw);
        let Some(daticert) = &receipt.daticert else {
            return;
        };
        let what = event::Occurrence {
            mailbox: recipient,
            daticert,
            kind: receipt.kind.as_str(),
            at: self.now(),
            delivery: b.deliveries.len(),
        };
        b.registry_events
            .push(event::new_event(office, &what, &Verdict::default(), None));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn office(scope: Scope, max: u64) -> ProtocolOffice {
        ProtocolOffice {
            scope,
            policy: DocumentPolicy {
                max_attachment_size: Some(max),
                ..DocumentPolicy::default()
            },
            ripudio: None,
            webhook: None,
        }
    }

    #[test]
    fn the_mailbox_office_wins_over_the_domain_one() {
        let offices = [
            office(Scope::Domain("pec.comune.test".into()), 1),
            office(Scope::Mailbox("protocollo@pec.comune.test".into()), 2),
        ];
        let size = |a: &str| office_for(&offices, a).and_then(|o| o.policy.max_attachment_size);
        assert_eq!(size("Protocollo@PEC.comune.test"), Some(2));
        assert_eq!(size("anagrafe@pec.comune.test"), Some(1));
        assert_eq!(size("protocollo@pec.altro.test"), None);
    }
}
