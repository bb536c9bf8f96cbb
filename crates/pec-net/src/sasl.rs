//! Decoding of the SASL mechanisms the servers offer: PLAIN (RFC 4616) and LOGIN (the
//! de-facto two-prompt mechanism Outlook still uses for SMTP). The protocol sessions do the
//! exchange (SMTP `334`, IMAP `+`, POP3 `+`); the bytes are judged here, once.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;

/// A user name and password taken from a SASL exchange.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The authentication identity (the mailbox address).
    pub user: String,
    /// The password, as typed.
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .field("password", &"<hidden>")
            .finish()
    }
}

/// One base64 client response; `=` is the empty response (RFC 4954 §4, RFC 5034 §4).
/// Surrounding white space is ignored; `None` for anything that is not base64.
pub fn decode(response: &[u8]) -> Option<Vec<u8>> {
    let response = response.trim_ascii();
    if response == b"=" {
        return Some(Vec::new());
    }
    BASE64.decode(response).ok()
}

/// A decoded PLAIN message, `authzid NUL authcid NUL password`. The user must not be empty;
/// an authorization identity other than the user itself is refused (nobody may act for
/// someone else); both parts must be UTF-8.
pub fn plain(message: &[u8]) -> Option<Credentials> {
    let mut parts = message.split(|&b| b == 0);
    let (authz, user, password) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || user.is_empty() {
        return None;
    }
    if !authz.is_empty() && !authz.eq_ignore_ascii_case(user) {
        return None;
    }
    Some(Credentials {
        user: String::from_utf8(user.to_vec()).ok()?,
        password: String::from_utf8(password.to_vec()).ok()?,
    })
}

/// The two base64 responses of LOGIN (user name, then password).
pub fn login(user: &[u8], password: &[u8]) -> Option<Credentials> {
    let user = String::from_utf8(decode(user)?).ok()?;
    let password = String::from_utf8(decode(password)?).ok()?;
    (!user.is_empty()).then_some(Credentials { user, password })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds(user: &str, password: &str) -> Option<Credentials> {
        Some(Credentials {
            user: user.into(),
            password: password.into(),
        })
    }

    #[test]
    fn plain_messages() {
        assert_eq!(plain(b"\0anna@pec.it\0pw"), creds("anna@pec.it", "pw"));
        assert_eq!(
            plain(b"ANNA@pec.it\0anna@pec.it\0pw"),
            creds("anna@pec.it", "pw")
        );
        assert_eq!(plain(b"\0anna@pec.it\0"), creds("anna@pec.it", ""));
        assert_eq!(plain(b"mario@pec.it\0anna@pec.it\0pw"), None);
        assert_eq!(plain(b"\0\0pw"), None);
        assert_eq!(plain(b"only"), None);
        assert_eq!(plain(b"\0a\0b\0c"), None);
        assert_eq!(plain(b"\0a\0\xff"), None);
    }

    #[test]
    fn base64_responses_and_login() {
        assert_eq!(decode(b"="), Some(Vec::new()));
        assert_eq!(
            decode(b" AGFsaWNlAHNlY3JldA==\r\n").unwrap(),
            b"\0alice\0secret"
        );
        assert_eq!(decode(b"not-base64!"), None);
        assert_eq!(login(b"YWxpY2U=", b"c2VjcmV0"), creds("alice", "secret"));
        assert_eq!(login(b"=", b"c2VjcmV0"), None);
        assert_eq!(login(b"YWxpY2U=", b"?"), None);
    }

    #[test]
    fn the_password_is_not_printed() {
        let shown = format!("{:?}", creds("alice", "secret").unwrap());
        assert!(
            shown.contains("alice") && !shown.contains("secret"),
            "{shown}"
        );
    }
}
