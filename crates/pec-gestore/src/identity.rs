//! Who this gestore is: its name, signing key, service addresses and the provider index it
//! trusts; and the identifiers it hands out.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use chrono::{DateTime, Datelike, Timelike, Utc};
use pec_proto::daticert::TipoDestinatario;
use pec_proto::index::ProviderIndex;
use pec_proto::smime::{Signer, TrustAnchors};

/// What the gestore trusts: the provider index and the CAs with their CRLs. Refreshed
/// as a whole while the server runs (the index at least daily, spec §9.1), so a message
/// is judged against one consistent version.
#[derive(Debug, Clone)]
pub struct TrustMaterial {
    /// The gestore's copy of the provider index.
    pub index: ProviderIndex,
    /// The CAs gestore certificates must chain to (the AgID PEC CA in production), with
    /// the CRLs they publish.
    pub anchors: Option<TrustAnchors>,
}

/// The gestore as the rules need it.
pub struct Identity {
    /// `providerName` in the index and `gestore-emittente` in daticert.
    pub name: String,
    /// Signs everything the gestore emits; its address is the `From:` of all of it.
    pub signer: Arc<dyn Signer>,
    /// The current trust material.
    trust: RwLock<Arc<TrustMaterial>>,
    /// Makes identifiers unique.
    ids: IdGenerator,
}

impl Identity {
    /// An identity; identifiers are made under the signer's domain.
    pub fn new(
        name: String,
        signer: Arc<dyn Signer>,
        index: ProviderIndex,
        anchors: Option<TrustAnchors>,
    ) -> Identity {
        let domain = signer
            .address()
            .rsplit_once('@')
            .map_or("localhost", |(_, d)| d)
            .to_string();
        Identity {
            name,
            signer,
            trust: RwLock::new(Arc::new(TrustMaterial { index, anchors })),
            ids: IdGenerator::new(domain),
        }
    }

    /// The trust material in force now.
    pub fn trust(&self) -> Arc<TrustMaterial> {
        // A writer cannot leave the Arc half-replaced, so a poisoned lock is still sound.
        self.trust.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Puts `material` in force for every message judged from now on.
    pub fn replace_trust(&self, material: TrustMaterial) {
        *self.trust.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(material);
    }

    /// The service address (`posta-certificata@…`), `From:` of every generated message.
    pub fn address(&self) -> &str {
        self.signer.address()
    }

    /// Whether `address` is in a PEC domain: one of the `hosted` domains (lower case),
    /// certified from the moment they are added whatever the index says yet, or one
    /// the provider index lists (case-insensitive).
    pub fn classify(&self, address: &str, hosted: &[String]) -> TipoDestinatario {
        let domain = address
            .rsplit_once('@')
            .map_or("", |(_, d)| d)
            .trim()
            .to_ascii_lowercase();
        if hosted.contains(&domain) || self.trust().index.is_certified(address) {
            TipoDestinatario::Certificato
        } else {
            TipoDestinatario::Esterno
        }
    }

    /// A new unique identifier `local@domain` (no angle brackets), for a PEC msgid or a
    /// receipt's Message-ID.
    pub fn new_id(&self, now: DateTime<Utc>) -> String {
        self.ids.next(now)
    }

    /// A new MIME boundary seed.
    pub fn new_boundary(&self) -> String {
        self.ids.boundary()
    }
}

/// Identifiers in the style the network uses (`opec…`, spec §6), unique across restarts:
/// time, process id, a counter and 64 random bits.
struct IdGenerator {
    domain: String,
    counter: AtomicU64,
    salt: u64,
    pid: u32,
}

impl IdGenerator {
    fn new(domain: String) -> IdGenerator {
        IdGenerator {
            domain,
            counter: AtomicU64::new(0),
            salt: random_u64(),
            pid: std::process::id(),
        }
    }

    fn next(&self, now: DateTime<Utc>) -> String {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        // Written field by field: chrono's `format` parses its pattern at every call.
        format!(
            "opec{}.{:04}{:02}{:02}{:02}{:02}{:02}.{}.{:x}.{:016x}@{}",
            self.pid,
            now.year(),
            now.month(),
            now.day(),
            now.hour(),
            now.minute(),
            now.second(),
            n,
            self.salt,
            random_u64(),
            self.domain
        )
    }

    fn boundary(&self) -> String {
        format!("{:016x}{:016x}", random_u64(), random_u64())
    }
}

fn random_u64() -> u64 {
    let mut b = [0u8; 8];
    // OpenSSL's CSPRNG only fails when the system has no entropy source at all; a
    // time-derived value still keeps identifiers distinct through the counter.
    if openssl::rand::rand_bytes(&mut b).is_err() {
        return u64::from(Utc::now().timestamp_subsec_nanos());
    }
    u64::from_le_bytes(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn identifiers_carry_the_time_and_differ() {
        let ids = IdGenerator::new("pec.alfa.test".into());
        let at = Utc.with_ymd_and_hms(2025, 3, 9, 7, 5, 4).unwrap();
        let (a, b) = (ids.next(at), ids.next(at));
        assert_ne!(a, b);
        let expected = format!(
            "opec{}.{}.0.",
            std::process::id(),
            at.format("%Y%m%d%H%M%S")
        );
        assert!(a.starts_with(&expected), "{a} vs {expected}");
        assert!(a.ends_with("@pec.alfa.test"), "{a}");
        assert!(b.contains(".20250309070504.1."), "{b}");
    }
}
