//! Every message the gestore emits, signed at one temporal reference: the small step from
//! a rule's decision to the bytes to store or send.

use chrono::{DateTime, Utc};
use pec_proto::build::{self, Emission, Notice, Transaction};
use pec_proto::daticert::Daticert;

use crate::Result;
use crate::clock::italian;
use crate::identity::Identity;

/// A message the gestore generated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Generated {
    /// Where it goes (the SMTP forward path).
    pub to: String,
    /// Its Message-ID, without angle brackets.
    pub message_id: String,
    /// The signed bytes.
    pub bytes: Vec<u8>,
    /// What a receipt or avviso certifies (`None` for an anomaly envelope): what the
    /// gestore files when the notice is for one of its own mailboxes.
    pub daticert: Option<Daticert>,
}

impl Identity {
    fn emission<'a>(
        &'a self,
        now: DateTime<Utc>,
        message_id: &'a str,
        boundary: &'a str,
    ) -> Emission<'a> {
        Emission {
            signer: self.signer.as_ref(),
            gestore: &self.name,
            time: italian(now),
            message_id,
            boundary,
        }
    }

    /// A receipt or avviso about `tx`, addressed to `to`, at `now`.
    pub fn notice(
        &self,
        tx: &Transaction,
        notice: &Notice<'_>,
        to: &str,
        now: DateTime<Utc>,
    ) -> Result<Generated> {
        let message_id = self.new_id(now);
        let boundary = self.new_boundary();
        let (bytes, daticert) =
            build::notice_certified(&self.emission(now, &message_id, &boundary), tx, notice, to)?;
        Ok(Generated {
            to: to.to_string(),
            message_id,
            bytes,
            daticert: Some(daticert),
        })
    }

    /// The busta di trasporto of `original` (its Message-ID is the PEC msgid).
    pub fn transport_envelope(
        &self,
        tx: &Transaction,
        original: &pec_proto::original::Original<'_>,
        now: DateTime<Utc>,
    ) -> Result<build::Envelope> {
        let boundary = self.new_boundary();
        let e = self.emission(now, &tx.identificativo, &boundary);
        Ok(build::transport_envelope(&e, tx, original)?)
    }

    /// The busta di anomalia wrapping `received` for delivery to `to`.
    pub fn anomaly(
        &self,
        received: &[u8],
        sender: &str,
        reason: &str,
        to: &str,
        now: DateTime<Utc>,
    ) -> Result<Generated> {
        let message_id = self.new_id(now);
        let boundary = self.new_boundary();
        let e = self.emission(now, &message_id, &boundary);
        let bytes = build::anomaly_envelope(&e, received, sender, reason)?;
        Ok(Generated {
            to: to.to_string(),
            message_id,
            bytes,
            daticert: None,
        })
    }
}
