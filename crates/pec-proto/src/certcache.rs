//! Parsed certificates by fingerprint, for verification.
//!
//! OpenSSL 3 parses a certificate slowly (decoding its public key goes through the
//! provider decoders: ≈ 1.5 million instructions for an RSA-2048 certificate), and the
//! incoming point meets the same few certificates in every message it checks: the
//! signing certificate of each gestore and the CA that issued it. So each is parsed once
//! per process and found again by the SHA-256 of its DER bytes. SHA-256, not the SHA-1 of
//! the provider index: a chosen-prefix SHA-1 collision would let a forged certificate
//! stand in for a cached one.
//!
//! Bounded: at most [`CAPACITY`] certificates, the oldest one forgotten first, so
//! certificates sent by strangers cost memory only until they are pushed out.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, OnceLock};

use openssl::error::ErrorStack;
use openssl::x509::X509;

/// How many parsed certificates are kept: far more than the gestori of the provider
/// index and their CAs.
pub(crate) const CAPACITY: usize = 256;

/// SHA-256 of a DER certificate.
type Fingerprint = [u8; 32];

/// The certificates kept, and the order they came in (the first is forgotten first).
#[derive(Default)]
struct Cache {
    parsed: HashMap<Fingerprint, X509>,
    arrival: VecDeque<Fingerprint>,
}

fn cache() -> &'static Mutex<Cache> {
    static CACHE: OnceLock<Mutex<Cache>> = OnceLock::new();
    CACHE.get_or_init(Mutex::default)
}

/// The certificate `der` parsed: from the cache when it was parsed before, else parsed
/// now (outside the lock) and kept. The `X509` shares OpenSSL's reference-counted object.
pub(crate) fn parsed(der: &[u8]) -> Result<X509, ErrorStack> {
    let key = openssl::sha::sha256(der);
    let lock = || cache().lock().unwrap_or_else(|e| e.into_inner());
    if let Some(hit) = lock().parsed.get(&key) {
        return Ok(hit.clone());
    }
    let cert = X509::from_der(der)?;
    let mut c = lock();
    if !c.parsed.contains_key(&key) {
        if c.arrival.len() >= CAPACITY
            && let Some(oldest) = c.arrival.pop_front()
        {
            c.parsed.remove(&oldest);
        }
        c.arrival.push_back(key);
        c.parsed.insert(key, cert.clone());
    }
    Ok(cert)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn der(cn: &str) -> Vec<u8> {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, cn);
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        params.self_signed(&key).unwrap().der().to_vec()
    }

    fn cached(der: &[u8]) -> bool {
        let key = openssl::sha::sha256(der);
        cache().lock().unwrap().parsed.contains_key(&key)
    }

    #[test]
    fn a_certificate_is_parsed_once_and_the_cache_stays_bounded() {
        let first = der("first");
        let a = parsed(&first).unwrap();
        let b = parsed(&first).unwrap();
        // The same OpenSSL object, not a second parse.
        assert_eq!(a.as_ref() as *const _, b.as_ref() as *const _);
        assert_eq!(a.to_der().unwrap(), first);
        assert!(cached(&first));

        // Garbage is an error and is not kept.
        assert!(parsed(b"not a certificate").is_err());
        assert!(!cached(b"not a certificate"));

        // CAPACITY newer certificates push the first one out; the cache never grows past it.
        let others: Vec<Vec<u8>> = (0..CAPACITY).map(|i| der(&format!("n{i}"))).collect();
        for d in &others {
            parsed(d).unwrap();
            assert!(cache().lock().unwrap().parsed.len() <= CAPACITY);
        }
        assert!(!cached(&first));
        assert!(cached(&others[CAPACITY - 1]));
        // Parsed again when needed after being forgotten.
        assert_eq!(parsed(&first).unwrap().to_der().unwrap(), first);
    }
}
