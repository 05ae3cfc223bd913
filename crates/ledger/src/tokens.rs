//! Token lifecycle: listing, last use and revocation (schema version 5).
//! Creation and lookup by hash stay in `lib.rs`.

use rusqlite::{OptionalExtension, params};
use suanli_proto::{Role, TokenView};

use crate::{Ledger, LedgerError, Result, i, u};

/// How stale `last_used_ms` may get: a handshake records its time only when
/// the stored one is older than this, so a burst of connections does not
/// cost one fsync each.
pub const LAST_USED_RESOLUTION_MS: u64 = 60_000;

impl Ledger {
    /// Every token, oldest first, without secrets.
    pub fn tokens(&self) -> Result<Vec<TokenView>> {
        let mut stmt = self.conn.prepare(
            "SELECT name, role, created_ms, last_used_ms, revoked_ms FROM tokens
             ORDER BY created_ms, name",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, Option<i64>>(3)?,
                r.get::<_, Option<i64>>(4)?,
            ))
        })?;
        rows.map(|row| {
            let (name, role, created, used, revoked) = row?;
            let role = Role::parse(&role)
                .ok_or_else(|| LedgerError::Corrupt(format!("unknown role {role:?}")))?;
            Ok(TokenView {
                name,
                role,
                created_ms: u(created),
                last_used_ms: used.map(u),
                revoked_ms: revoked.map(u),
            })
        })
        .collect()
    }

    /// Revokes every live token named `name`; returns their hashes (empty:
    /// no live token has that name). Revoking is final (a revoked secret
    /// never works again; create a new token).
    pub fn revoke_tokens(&mut self, name: &str, now_ms: u64) -> Result<Vec<[u8; 32]>> {
        let tx = self.conn.savepoint()?;
        let hashes = {
            let mut stmt =
                tx.prepare("SELECT hash FROM tokens WHERE name = ?1 AND revoked_ms IS NULL")?;
            let rows = stmt.query_map(params![name], |r| r.get::<_, Vec<u8>>(0))?;
            rows.map(|h| {
                <[u8; 32]>::try_from(h?.as_slice())
                    .map_err(|_| LedgerError::Corrupt("token hash is not 32 bytes".into()))
            })
            .collect::<Result<Vec<_>>>()?
        };
        tx.execute(
            "UPDATE tokens SET revoked_ms = ?2 WHERE name = ?1 AND revoked_ms IS NULL",
            params![name, i(now_ms)],
        )?;
        tx.commit()?;
        Ok(hashes)
    }

    /// When the token with this hash was revoked, if it was.
    pub fn token_revoked(&self, token_hash: &[u8; 32]) -> Result<Option<u64>> {
        let revoked: Option<Option<i64>> = self
            .conn
            .query_row(
                "SELECT revoked_ms FROM tokens WHERE hash = ?1",
                params![token_hash.as_slice()],
                |r| r.get(0),
            )
            .optional()?;
        Ok(revoked.flatten().map(u))
    }

    /// Records a use of the token (an accepted handshake), at most once per
    /// [`LAST_USED_RESOLUTION_MS`].
    pub fn touch_token(&mut self, token_hash: &[u8; 32], now_ms: u64) -> Result<()> {
        self.conn.execute(
            "UPDATE tokens SET last_used_ms = ?2
             WHERE hash = ?1 AND (last_used_ms IS NULL OR last_used_ms <= ?2 - ?3)",
            params![token_hash.as_slice(), i(now_ms), i(LAST_USED_RESOLUTION_MS)],
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::temp_ledger as ledger;

    #[test]
    fn tokens_are_listed_without_secrets_and_revoked_by_name() {
        let (_dir, mut l) = ledger();
        l.add_token(&[1; 32], Role::Tenant, "alice", 1_000).unwrap();
        l.add_token(&[2; 32], Role::Node, "rig", 2_000).unwrap();
        l.add_token(&[3; 32], Role::Tenant, "alice", 3_000).unwrap();
        assert_eq!(l.revoke_tokens("alice", 5_000).unwrap(), [[1; 32], [3; 32]]);
        // Revoking again changes nothing: the first revocation time stays.
        assert!(l.revoke_tokens("alice", 9_000).unwrap().is_empty());
        assert!(l.revoke_tokens("nobody", 9_000).unwrap().is_empty());
        assert_eq!(l.token_revoked(&[1; 32]).unwrap(), Some(5_000));
        assert_eq!(l.token_revoked(&[2; 32]).unwrap(), None);
        assert_eq!(l.token_revoked(&[9; 32]).unwrap(), None);
        let list = l.tokens().unwrap();
        let names: Vec<(&str, Role, Option<u64>)> = list
            .iter()
            .map(|t| (t.name.as_str(), t.role, t.revoked_ms))
            .collect();
        assert_eq!(
            names,
            [
                ("alice", Role::Tenant, Some(5_000)),
                ("rig", Role::Node, None),
                ("alice", Role::Tenant, Some(5_000)),
            ]
        );
    }

    #[test]
    fn last_use_is_recorded_at_most_once_per_resolution() {
        let (_dir, mut l) = ledger();
        l.add_token(&[1; 32], Role::Tenant, "alice", 0).unwrap();
        let used = |l: &Ledger| l.tokens().unwrap()[0].last_used_ms;
        assert_eq!(used(&l), None);
        l.touch_token(&[1; 32], 100_000).unwrap();
        assert_eq!(used(&l), Some(100_000));
        l.touch_token(&[1; 32], 100_000 + LAST_USED_RESOLUTION_MS - 1)
            .unwrap();
        assert_eq!(used(&l), Some(100_000), "within the resolution");
        l.touch_token(&[1; 32], 100_000 + LAST_USED_RESOLUTION_MS)
            .unwrap();
        assert_eq!(used(&l), Some(100_000 + LAST_USED_RESOLUTION_MS));
    }
}
