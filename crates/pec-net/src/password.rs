//! The password format of accounts: argon2id PHC strings (`$argon2id$v=19$...`), made by
//! the admin tool with [`hash_password`] and checked with [`verify_password`] (through the
//! bounded pool of [`crate::Authenticator`] when a client logs in).

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Argon2, Params};

use crate::{Error, Result};

/// Hashes a password with argon2id, the default parameters and a fresh random salt.
pub fn hash_password(password: &str) -> Result<String> {
    let mut salt = [0u8; 16];
    rustls::crypto::aws_lc_rs::default_provider()
        .secure_random
        .fill(&mut salt)
        .map_err(|e| Error::Password(format!("no randomness for the salt: {e:?}")))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| Error::Password(e.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| Error::Password(e.to_string()))
}

/// Whether `password` matches the stored PHC string; a malformed stored hash never
/// matches (so a broken account cannot be entered).
pub fn verify_password(password: &str, phc: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(hash) => Argon2::default()
            .verify_password(password.as_bytes(), &hash)
            .is_ok(),
        Err(_) => false,
    }
}

/// A hash with the parameters [`hash_password`] uses, that no password matches in
/// practice (its output is fixed bytes, not the hash of anything): verifying against it
/// costs what verifying a real account costs, so unknown users take as long as known ones.
pub(crate) fn dummy_hash() -> String {
    format!(
        "$argon2id$v=19$m={},t={},p={}$cGVjZCBkdW1teSBzYWx0IQ$\
         cGVjZDogbm8gcGFzc3dvcmQgbWF0Y2hlcyB0aGlzLiE",
        Params::DEFAULT_M_COST,
        Params::DEFAULT_T_COST,
        Params::DEFAULT_P_COST,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_then_verify() {
        let h = hash_password("segreta").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("segreta", &h));
        assert!(!verify_password("sbagliata", &h));
        assert!(!verify_password("segreta", "not a hash"));
        assert_ne!(h, hash_password("segreta").unwrap(), "salt must differ");
    }

    #[test]
    fn the_dummy_hash_has_the_parameters_of_real_ones() {
        let dummy = dummy_hash();
        let dummy = PasswordHash::new(&dummy).unwrap();
        let real = hash_password("segreta").unwrap();
        let real = PasswordHash::new(&real).unwrap();
        assert_eq!(dummy.algorithm, real.algorithm);
        assert_eq!(dummy.version, real.version);
        assert_eq!(dummy.params, real.params);
        assert_eq!(dummy.hash.map(|h| h.len()), real.hash.map(|h| h.len()));
        assert!(!verify_password("", &dummy_hash()));
    }
}
