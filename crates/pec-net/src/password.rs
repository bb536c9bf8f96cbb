//! The password format of accounts: argon2id PHC strings (`$argon2id$v=19$...`), made by
//! the admin tool with [`hash_password`] and checked with [`verify_password`] (through the
//! bounded pool of [`crate::Authenticator`] when a client logs in, which lends each
//! verification a reused work memory: `verify_in`).
//!
//! Parsing the PHC string and decoding its salt is the `password_hash` API's; only the
//! argon2 computation is run here, into caller-provided memory, and its output is compared
//! with the stored one in constant time (`password_hash::Output`'s equality).

use argon2::password_hash::{self, Output, PasswordHash, PasswordHasher, Salt, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};

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
    verify_in(password, phc, &mut Vec::new())
}

/// [`verify_password`] computing in `memory`, grown to the blocks the stored parameters
/// ask for (19 MiB with the defaults) and left as it is for the next verification, so a
/// pool of verifications does not allocate, fault in and free that memory each time.
pub(crate) fn verify_in(password: &str, phc: &str, memory: &mut Vec<Block>) -> bool {
    matches!(matches(password.as_bytes(), phc, memory), Ok(true))
}

/// What `argon2`'s `PasswordVerifier` does (algorithm, version, parameters, output length
/// and salt from the PHC string), with the work memory given instead of allocated.
fn matches(password: &[u8], phc: &str, memory: &mut Vec<Block>) -> password_hash::Result<bool> {
    let hash = PasswordHash::new(phc)?;
    let (Some(salt), Some(expected)) = (hash.salt, hash.hash) else {
        return Ok(false);
    };
    let algorithm = Algorithm::try_from(hash.algorithm)?;
    let version = hash
        .version
        .map(Version::try_from)
        .transpose()?
        .unwrap_or_default();
    let params = Params::try_from(&hash)?;
    let mut salt_bytes = [0u8; Salt::MAX_LENGTH];
    let salt = salt.decode_b64(&mut salt_bytes)?;
    if memory.len() < params.block_count() {
        memory.resize(params.block_count(), Block::new());
    }
    let argon2 = Argon2::new(algorithm, version, params);
    let computed = Output::init_with(expected.len(), |out| {
        Ok(argon2.hash_password_into_with_memory(password, salt, out, &mut memory[..])?)
    })?;
    Ok(computed == expected)
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
    use argon2::PasswordVerifier;

    use super::*;

    /// The verdict of `argon2`'s own verifier, which allocates its memory each time (the
    /// path used before [`verify_in`]).
    fn old_verdict(password: &str, phc: &str) -> bool {
        PasswordHash::new(phc).is_ok_and(|hash| {
            Argon2::default()
                .verify_password(password.as_bytes(), &hash)
                .is_ok()
        })
    }

    /// A hash of `password` made by `argon2`'s own `PasswordHasher`.
    fn made_by_argon2(password: &str, algorithm: Algorithm, version: Version, m: u32) -> String {
        let params = Params::new(m, 2, 1, None).unwrap();
        let salt = SaltString::encode_b64(b"a salt of 16 b!!").unwrap();
        Argon2::new(algorithm, version, params)
            .hash_password(password.as_bytes(), &salt)
            .unwrap()
            .to_string()
    }

    #[test]
    fn reused_memory_gives_the_verdicts_of_the_old_path() {
        let mut memory = Vec::new();
        let hashes = [
            hash_password("segreta").unwrap(),
            made_by_argon2("segreta", Algorithm::Argon2id, Version::V0x13, 64),
            made_by_argon2("segreta", Algorithm::Argon2i, Version::V0x13, 2048),
            made_by_argon2("segreta", Algorithm::Argon2d, Version::V0x10, 256),
            made_by_argon2("segreta", Algorithm::Argon2id, Version::V0x13, 8),
        ];
        // Passes over the same memory in both directions: a smaller hash after a larger
        // one runs in the larger buffer's first blocks, a larger one grows it.
        for phc in hashes.iter().chain(hashes.iter().rev()) {
            for (password, right) in [("segreta", true), ("sbagliata", false), ("", false)] {
                assert_eq!(
                    verify_in(password, phc, &mut memory),
                    right,
                    "{password} {phc}"
                );
                assert_eq!(old_verdict(password, phc), right, "{password} {phc}");
            }
        }
        assert_eq!(
            memory.len(),
            Params::DEFAULT_M_COST as usize,
            "grown once, to the largest"
        );
    }

    #[test]
    fn malformed_or_foreign_hashes_never_match() {
        let mut memory = Vec::new();
        let good = hash_password("segreta").unwrap();
        let cut = &good[..good.len() - 4];
        let no_hash = good.rsplit_once('$').unwrap().0;
        for phc in [
            "",
            "not a hash",
            cut,
            no_hash,
            "$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW",
            "$scrypt$ln=4,r=8,p=1$c2FsdHNhbHQ$dGVzdA",
            "$argon2id$v=19$m=8,t=1,p=9$c2FsdHNhbHRzYWx0$dGVzdHRlc3R0ZXN0",
        ] {
            assert!(!verify_in("segreta", phc, &mut memory), "{phc}");
        }
        assert!(verify_in("segreta", &good, &mut memory));
    }

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
