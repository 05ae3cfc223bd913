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

/// Most dashboard sessions kept at once; past it the oldest is dropped.
pub(crate) const MAX_SESSIONS: usize = 10_000;

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

    /// Starts a session for a token that was just verified; its id, for the cookie.
    pub(crate) fn open(&self, token_hash: [u8; 32]) -> String {
        let mut raw = [0u8; 32];
        rand::rng().fill_bytes(&mut raw);
        let id = hex::encode(raw);
        let now = Instant::now();
        let mut sessions = self.lock();
        sessions.retain(|_, s| s.expires > now);
        if sessions.len() >= self.max
            && let Some(oldest) = sessions
                .iter()
                .min_by_key(|(_, s)| s.created)
                .map(|(k, _)| *k)
        {
            sessions.remove(&oldest);
        }
        sessions.insert(
            digest(&id),
            Session {
                token_hash,
                expires: now + self.ttl,
                created: now,
            },
        );
        id
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

/// Who a token is, if it is known and not revoked. Blocking (the ledger).
pub(crate) fn caller_of(
    shared: &crate::state::Shared,
    token_hash: &[u8; 32],
) -> Result<Option<Caller>, suanli_ledger::LedgerError> {
    let reader = shared.reader();
    let Some((role, name, stored)) = reader.find_token(token_hash)? else {
        return Ok(None);
    };
    if !bool::from(subtle::ConstantTimeEq::ct_eq(&stored[..], &token_hash[..])) {
        return Ok(None);
    }
    if reader.token_revoked(token_hash)?.is_some() {
        return Ok(None);
    }
    Ok(Some(Caller { role, name }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_ends_when_closed_or_expired_and_ids_are_not_guessable() {
        let sessions = Sessions::new(Duration::from_millis(50), MAX_SESSIONS);
        let a = sessions.open([1; 32]);
        let b = sessions.open([2; 32]);
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
    fn sessions_are_bounded() {
        let sessions = Sessions::new(Duration::from_secs(60), 16);
        let first = sessions.open([0; 32]);
        std::thread::sleep(Duration::from_millis(2));
        for n in 0..16 {
            sessions.open([n; 32]);
        }
        assert_eq!(sessions.lock().len(), 16);
        assert_eq!(sessions.token_of(&first), None, "the oldest was dropped");
    }
}
