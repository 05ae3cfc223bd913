//! Dashboard logins. A person logs in with a token (the same tokens the
//! CLI uses); the browser then holds a random session id in an `HttpOnly`,
//! `SameSite=Strict` cookie, never the token. The server keeps only a hash
//! of the id, with the token's hash: every page checks again that the token
//! exists and is not revoked, so `suanli token revoke` ends its sessions.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::server::Caller;

/// Most dashboard sessions kept at once; past it new logins are refused
/// (rather than ending someone else's session).
pub(crate) const MAX_SESSIONS: usize = 10_000;

/// Most sessions of one token; a new login past it ends that token's
/// oldest session, so one token cannot fill the table.
pub(crate) const MAX_SESSIONS_PER_TOKEN: usize = 8;

/// The cookie that carries a session id.
pub(crate) const COOKIE: &str = "suanli_session";

struct Session {
    token_hash: [u8; 32],
    expires: Instant,
    created: Instant,
}

/// Live sessions by the SHA-256 of their id.
pub(crate) struct Sessions {
    inner: Mutex<HashMap<[u8; 32], Session>>,
    ttl: Duration,
    max: usize,
}

impl Sessions {
    /// Sessions last `ttl`; at most `max` ([`MAX_SESSIONS`]) are kept.
    pub(crate) fn new(ttl: Duration, max: usize) -> Sessions {
        Sessions {
            inner: Mutex::new(HashMap::new()),
            ttl,
            max: max.max(1),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Session>> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts a session for a token that was just verified; its id, for
    /// the cookie. `None` when [`MAX_SESSIONS`] are live.
    pub(crate) fn open(&self, token_hash: [u8; 32]) -> Option<String> {
        let mut raw = [0u8; 32];
        rand::rng().fill_bytes(&mut raw);
        let id = hex::encode(raw);
        let now = Instant::now();
        let mut sessions = self.lock();
        sessions.retain(|_, s| s.expires > now);
        let own = sessions
            .values()
            .filter(|s| s.token_hash == token_hash)
            .count();
        if own >= MAX_SESSIONS_PER_TOKEN
            && let Some(oldest) = sessions
                .iter()
                .filter(|(_, s)| s.token_hash == token_hash)
                .min_by_key(|(_, s)| s.created)
                .map(|(k, _)| *k)
        {
            sessions.remove(&oldest);
        }
        if sessions.len() >= self.max {
            return None;
        }
        sessions.insert(
            digest(&id),
            Session {
                token_hash,
                expires: now + self.ttl,
                created: now,
            },
        );
        Some(id)
    }

    /// The token hash behind a live session id.
    pub(crate) fn token_of(&self, id: &str) -> Option<[u8; 32]> {
        let now = Instant::now();
        let mut sessions = self.lock();
        let key = digest(id);
        match sessions.get(&key) {
            Some(s) if s.expires > now => Some(s.token_hash),
            Some(_) => {
                sessions.remove(&key);
                None
            }
            None => None,
        }
    }

    pub(crate) fn close(&self, id: &str) {
        self.lock().remove(&digest(id));
    }
}

fn digest(id: &str) -> [u8; 32] {
    Sha256::digest(id.as_bytes()).into()
}

/// Who a token is, if it is known and not revoked ([`crate::auth::identify`],
/// as at a handshake). Blocking (the ledger).
pub(crate) fn caller_of(
    shared: &crate::state::Shared,
    token_hash: &[u8; 32],
) -> Result<Option<Caller>, suanli_ledger::LedgerError> {
    Ok(match crate::auth::identify(shared, token_hash)? {
        crate::auth::Identity::Known(caller) => Some(caller),
        crate::auth::Identity::Unknown | crate::auth::Identity::Revoked(_) => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_ends_when_closed_or_expired_and_ids_are_not_guessable() {
        let sessions = Sessions::new(Duration::from_millis(50), MAX_SESSIONS);
        let a = sessions.open([1; 32]).unwrap();
        let b = sessions.open([2; 32]).unwrap();
        assert_ne!(a, b);
        assert_eq!(a.len(), 64);
        assert_eq!(sessions.token_of(&a), Some([1; 32]));
        assert_eq!(sessions.token_of("not-a-session"), None);
        sessions.close(&a);
        assert_eq!(sessions.token_of(&a), None);
        std::thread::sleep(Duration::from_millis(80));
        assert_eq!(sessions.token_of(&b), None, "expired");
    }

    #[test]
    fn one_token_cannot_fill_the_table_and_a_full_table_refuses_new_logins() {
        let sessions = Sessions::new(Duration::from_secs(60), 16);
        let first = sessions.open([0; 32]).unwrap();
        std::thread::sleep(Duration::from_millis(2));
        for _ in 0..MAX_SESSIONS_PER_TOKEN {
            sessions.open([0; 32]).unwrap();
        }
        assert_eq!(sessions.lock().len(), MAX_SESSIONS_PER_TOKEN);
        assert_eq!(sessions.token_of(&first), None, "its own oldest ended");
        let others: Vec<String> = (1..=8).map(|n| sessions.open([n; 32]).unwrap()).collect();
        assert_eq!(sessions.lock().len(), 16);
        assert_eq!(sessions.open([9; 32]), None, "full: refused");
        assert!(
            others.iter().all(|id| sessions.token_of(id).is_some()),
            "nobody else was logged out"
        );
    }
}
