//! Live connections by source address and by token: the per-address and
//! per-token connection limits, and closing a revoked token's connections.
//!
//! Without these, one token could hold every one of the coordinator's
//! connections and lock every node out (issue 11). Counting is done under
//! one mutex, so concurrent handshakes cannot both take the last place.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use suanli_net::CLOSE_REFUSED;

/// Close code of a connection whose token was revoked.
pub(crate) const CLOSE_REVOKED: u32 = 3;

/// The reason a revoked token's connections are closed and its handshakes
/// refused with.
pub(crate) const REVOKED: &str = "token revoked";

#[derive(Default)]
struct Inner {
    by_address: HashMap<IpAddr, usize>,
    /// Per token hash: (connection id, token name, connection).
    by_token: HashMap<[u8; 32], Vec<(u64, quinn::Connection)>>,
    /// Tokens revoked since this coordinator started: refused even when a
    /// handshake checked the ledger just before the revocation committed.
    revoked: HashSet<[u8; 32]>,
    /// When this process last recorded each token's use in the ledger.
    touched: HashMap<[u8; 32], u64>,
    next_id: u64,
}

/// The registry; cheap to share (`Arc`).
pub(crate) struct Connections {
    per_address: usize,
    per_token: usize,
    inner: Mutex<Inner>,
}

/// A place in the per-address count, given back on drop.
pub(crate) struct AddressSlot {
    registry: Arc<Connections>,
    ip: IpAddr,
}

/// A place in the per-token count, given back on drop.
pub(crate) struct TokenSlot {
    registry: Arc<Connections>,
    token: [u8; 32],
    id: u64,
}

impl Connections {
    pub(crate) fn new(per_address: usize, per_token: usize) -> Arc<Connections> {
        Arc::new(Connections {
            per_address,
            per_token,
            inner: Mutex::default(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes a place for a connection from `ip`, or says why not.
    pub(crate) fn admit_address(self: &Arc<Self>, ip: IpAddr) -> Result<AddressSlot, String> {
        let mut inner = self.lock();
        let count = inner.by_address.entry(ip).or_default();
        if *count >= self.per_address {
            return Err(format!(
                "too many connections from {ip}: it already holds {} (the coordinator's \
                 --max-connections-per-address); close some and retry",
                self.per_address
            ));
        }
        *count += 1;
        Ok(AddressSlot {
            registry: self.clone(),
            ip,
        })
    }

    /// Takes a place for `conn` authenticated by token `token` (named
    /// `name`), or says why not.
    pub(crate) fn admit_token(
        self: &Arc<Self>,
        token: [u8; 32],
        name: &str,
        conn: &quinn::Connection,
    ) -> Result<TokenSlot, String> {
        let mut inner = self.lock();
        if inner.revoked.contains(&token) {
            return Err(REVOKED.into());
        }
        let id = inner.next_id;
        inner.next_id += 1;
        let live = inner.by_token.entry(token).or_default();
        if live.len() >= self.per_token {
            return Err(format!(
                "token {name} already holds {} connections (the coordinator's \
                 --max-connections-per-token); close some and retry",
                self.per_token
            ));
        }
        live.push((id, conn.clone()));
        Ok(TokenSlot {
            registry: self.clone(),
            token,
            id,
        })
    }

    /// Marks `tokens` revoked and closes their live connections now; returns
    /// how many were closed.
    pub(crate) fn revoke(&self, tokens: &[[u8; 32]]) -> usize {
        let closing: Vec<quinn::Connection> = {
            let mut inner = self.lock();
            inner.revoked.extend(tokens.iter().copied());
            tokens
                .iter()
                .filter_map(|t| inner.by_token.remove(t))
                .flatten()
                .map(|(_, conn)| conn)
                .collect()
        };
        for conn in &closing {
            conn.close(CLOSE_REVOKED.into(), REVOKED.as_bytes());
        }
        closing.len()
    }

    /// Whether a use of `token` at `now_ms` should be written to the ledger:
    /// at most once per token per `resolution_ms`, so a burst of
    /// handshakes costs the ledger nothing.
    pub(crate) fn should_touch(&self, token: [u8; 32], now_ms: u64, resolution_ms: u64) -> bool {
        let mut inner = self.lock();
        let last = inner.touched.entry(token).or_insert(0);
        if *last != 0 && now_ms.saturating_sub(*last) < resolution_ms {
            return false;
        }
        *last = now_ms;
        true
    }

    /// Live connections of `token` (for tests and logs).
    #[cfg(test)]
    fn of_token(&self, token: &[u8; 32]) -> usize {
        self.lock().by_token.get(token).map_or(0, Vec::len)
    }
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        let mut inner = self.registry.lock();
        if let Some(count) = inner.by_address.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                inner.by_address.remove(&self.ip);
            }
        }
    }
}

impl Drop for TokenSlot {
    fn drop(&mut self) {
        let mut inner = self.registry.lock();
        if let Some(live) = inner.by_token.get_mut(&self.token) {
            live.retain(|(id, _)| *id != self.id);
            if live.is_empty() {
                inner.by_token.remove(&self.token);
            }
        }
    }
}

/// Closes `conn` as refused, with `reason` for the peer to show.
pub(crate) fn refuse(conn: &quinn::Connection, reason: &str) {
    conn.close(CLOSE_REFUSED.into(), reason.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_counted_up_to_the_limit_and_given_back() {
        let registry = Connections::new(2, 10);
        let ip: IpAddr = [10, 0, 0, 1].into();
        let a = registry.admit_address(ip).unwrap();
        let _b = registry.admit_address(ip).unwrap();
        let refused = registry.admit_address(ip).err().unwrap();
        assert!(
            refused.contains("--max-connections-per-address"),
            "{refused}"
        );
        // Another address is not affected.
        let _c = registry.admit_address([10, 0, 0, 2].into()).unwrap();
        drop(a);
        registry.admit_address(ip).expect("a place was given back");
        assert_eq!(registry.of_token(&[0; 32]), 0);
    }
}
