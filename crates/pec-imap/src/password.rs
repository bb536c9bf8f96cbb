//! Password hashing for accounts: the store keeps the argon2 PHC string the
//! admin tool computes with [`hash_password`], and the IMAP and POP3 servers
//! check logins with [`verify_password`].

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};

use crate::error::{Error, Result};

/// Hashes a password with argon2id and a fresh random salt, giving the PHC
/// string to store in the account (`$argon2id$v=19$...`).
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

/// Whether `password` matches the stored PHC string; a malformed stored hash
/// never matches (so a broken account cannot be entered).
pub fn verify_password(password: &str, phc: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(hash) => Argon2::default()
            .verify_password(password.as_bytes(), &hash)
            .is_ok(),
        Err(_) => false,
    }
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
}
