//! Server-side sessions of the webmail: a random id (256 bits) in a cookie, the user's
//! address and the session's CSRF token on the server. Bounded in number (the least
//! recently used goes first) and forgotten after an idle time. Time is tokio's, so tests
//! run expiry on a paused clock.

use std::collections::HashMap;
use std::time::Duration;

use tokio::time::Instant;

/// How many sessions, for how long.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionLimits {
    /// Most sessions kept at once (a login beyond it ends the least recently used).
    pub max_sessions: usize,
    /// A session unused for this long is over.
    pub idle: Duration,
}

impl Default for SessionLimits {
    /// 10,000 sessions (a few MiB), 30 minutes idle.
    fn default() -> Self {
        SessionLimits {
            max_sessions: 10_000,
            idle: Duration::from_secs(30 * 60),
        }
    }
}

/// One logged-in user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// The mailbox address.
    pub address: String,
    /// The token every form of this session must carry.
    pub csrf: String,
    last: Instant,
}

/// The sessions of a webmail.
#[derive(Debug)]
pub struct Sessions {
    map: HashMap<String, Session>,
    limits: SessionLimits,
}

/// A fresh random token: 32 bytes from OpenSSL's CSPRNG, in hex. `None` if the generator
/// failed (then no session is made).
pub fn token() -> Option<String> {
    let mut bytes = [0u8; 32];
    openssl::rand::rand_bytes(&mut bytes).ok()?;
    Some(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Whether two tokens are equal, in constant time.
pub fn same_token(a: &str, b: &str) -> bool {
    a.len() == b.len() && !a.is_empty() && openssl::memcmp::eq(a.as_bytes(), b.as_bytes())
}

impl Sessions {
    /// No sessions yet.
    pub fn new(limits: SessionLimits) -> Self {
        Sessions {
            map: HashMap::new(),
            limits,
        }
    }

    /// A new session for `address`: its id, or `None` if no random id could be made.
    pub fn open(&mut self, address: &str, now: Instant) -> Option<String> {
        let (id, csrf) = (token()?, token()?);
        let idle = self.limits.idle;
        self.map.retain(|_, s| now.duration_since(s.last) < idle);
        while self.map.len() >= self.limits.max_sessions.max(1) {
            let oldest = self
                .map
                .iter()
                .min_by_key(|(_, s)| s.last)
                .map(|(k, _)| k.clone());
            match oldest {
                Some(k) => self.map.remove(&k),
                None => break,
            };
        }
        let session = Session {
            address: address.to_string(),
            csrf,
            last: now,
        };
        self.map.insert(id.clone(), session);
        Some(id)
    }

    /// The live session `id`, its idle time restarted; an expired one is removed.
    pub fn get(&mut self, id: &str, now: Instant) -> Option<Session> {
        let idle = self.limits.idle;
        let s = self.map.get_mut(id)?;
        if now.duration_since(s.last) >= idle {
            self.map.remove(id);
            return None;
        }
        s.last = now;
        Some(s.clone())
    }

    /// Ends session `id` (logout).
    pub fn close(&mut self, id: &str) {
        self.map.remove(id);
    }

    /// How many sessions are kept.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> SessionLimits {
        SessionLimits {
            max_sessions: 2,
            idle: Duration::from_secs(60),
        }
    }

    #[test]
    fn tokens_are_long_random_and_compared_whole() {
        let (a, b) = (token().unwrap(), token().unwrap());
        assert_eq!(a.len(), 64);
        assert_ne!(a, b);
        assert!(same_token(&a, &a.clone()));
        assert!(!same_token(&a, &b) && !same_token("", "") && !same_token(&a, &a[1..]));
    }

    #[test]
    fn sessions_expire_when_idle_and_stay_bounded() {
        let mut s = Sessions::new(limits());
        let t0 = Instant::now();
        let a = s.open("a@pec.it", t0).unwrap();
        assert_eq!(
            s.get(&a, t0 + Duration::from_secs(59)).unwrap().address,
            "a@pec.it"
        );
        // Used at 59 s: still alive at 118 s, gone at 119 s.
        assert!(s.get(&a, t0 + Duration::from_secs(118)).is_some());
        assert!(s.get(&a, t0 + Duration::from_secs(178)).is_none());
        assert!(s.is_empty());
        let b = s.open("b@pec.it", t0).unwrap();
        let c = s.open("c@pec.it", t0 + Duration::from_secs(1)).unwrap();
        let d = s.open("d@pec.it", t0 + Duration::from_secs(2)).unwrap();
        assert_eq!(s.len(), 2);
        let now = t0 + Duration::from_secs(3);
        assert!(s.get(&b, now).is_none(), "the least recently used went");
        assert!(s.get(&c, now).is_some() && s.get(&d, now).is_some());
        s.close(&c);
        assert!(s.get(&c, now).is_none());
    }
}
