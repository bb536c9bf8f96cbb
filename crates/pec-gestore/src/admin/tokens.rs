//! API tokens: an administrator makes a bearer token for an application (a protocol
//! registry, a billing script), which then calls the API as that administrator, with the
//! same confinement; the token is shown once and only its SHA-256 is stored, so a copy
//! of the store gives no working token. Managing tokens takes the administrator's
//! password (the console, or Basic credentials): a token cannot make or revoke tokens.

use pec_store::{AdminAction, ApiToken};

use super::{Actor, Administration};
use crate::error::{Refusal, Result};

/// What every token starts with, so that a leaked one is recognisable (secret scanners).
pub const TOKEN_PREFIX: &str = "pecd_";

/// Most tokens one administrator may have.
pub const MAX_TOKENS: usize = 20;

/// Longest token name.
const MAX_NAME: usize = 64;

/// The stored form of `token`: its SHA-256, in hex.
pub fn token_hash(token: &str) -> String {
    openssl::sha::sha256(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Whether `text` has the shape of a token (checked before any lookup).
pub fn looks_like_token(text: &str) -> bool {
    text.strip_prefix(TOKEN_PREFIX)
        .is_some_and(|hex| hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Refuses a token name that is empty, long, or not letters, digits, `.`, `_`, `-`.
fn check_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(Refusal::invalid(
            "bad-token-name",
            format!("nome del token non valido: da 1 a {MAX_NAME} tra lettere, cifre, . _ -"),
        ))
    }
}

impl Administration {
    /// Makes a token named `name` acting for `actor` (an administrator); returns the
    /// token, which is not kept anywhere and cannot be shown again.
    pub fn create_token(&self, actor: &Actor, name: &str) -> Result<String> {
        let name = name.trim();
        check_name(name)?;
        if self.store.list_tokens(Some(&actor.name))?.len() >= MAX_TOKENS {
            return Err(Refusal::conflict(
                "too-many-tokens",
                format!("al massimo {MAX_TOKENS} token per amministratore: revocarne uno"),
            ));
        }
        let secret = pec_webmail::sessions::token()
            .ok_or_else(|| crate::error::Error::Stored("no randomness for a new token".into()))?;
        let token = format!("{TOKEN_PREFIX}{secret}");
        let action = AdminAction::CreateToken(ApiToken {
            login: actor.name.clone(),
            name: name.to_string(),
            hash: token_hash(&token),
            created_at: self.clock.now().timestamp(),
        });
        let what = format!("token API {name} creato");
        self.apply(actor, &actor.name, &what, action, None)?;
        Ok(token)
    }

    /// The tokens acting for `actor`.
    pub fn tokens(&self, actor: &Actor) -> Result<Vec<ApiToken>> {
        Ok(self.store.list_tokens(Some(&actor.name))?)
    }

    /// Revokes `actor`'s token `name`: it stops working at once.
    pub fn revoke_token(&self, actor: &Actor, name: &str) -> Result<()> {
        let action = AdminAction::RevokeToken {
            login: actor.name.clone(),
            name: name.to_string(),
        };
        let what = format!("token API {name} revocato");
        self.apply(actor, &actor.name, &what, action, None)
            .map(drop)
    }

    /// The administrator `token` acts for, if it is a live token.
    pub fn token_actor(&self, token: &str) -> Result<Option<Actor>> {
        if !looks_like_token(token) {
            return Ok(None);
        }
        Ok(self.store.find_token(&token_hash(token))?.map(|a| Actor {
            name: a.login,
            ente: a.ente,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_have_a_recognisable_shape_and_are_stored_hashed() {
        let t = format!("{TOKEN_PREFIX}{}", "ab".repeat(32));
        assert!(looks_like_token(&t));
        assert!(!looks_like_token(&t[..t.len() - 1]));
        assert!(!looks_like_token(&format!(
            "{TOKEN_PREFIX}{}",
            "zz".repeat(32)
        )));
        assert!(!looks_like_token(&"ab".repeat(32)));
        // SHA-256 of "abc" (FIPS 180-2, appendix B.1).
        assert_eq!(
            token_hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert!(check_name("protocollo-2026_v1.0").is_ok());
        assert!(check_name("").is_err() && check_name("a b").is_err());
        assert!(check_name(&"x".repeat(MAX_NAME + 1)).is_err());
    }
}
