//! Read-only views for the admin's setters and `suanli tenant show`: a
//! tenant's account, and whether a name a setting applies to exists yet.

use rusqlite::params;
use suanli_proto::{JobState, TenantView};

use crate::jobs::{credit_limit, held, max_price, parse_state, spend};
use crate::{Ledger, Result, u};

impl Ledger {
    /// `tenant`'s account: credit limit, spent, held (as admission computes
    /// it), storage used and quota (`default_quota` unless it has its own),
    /// and its jobs counted by state. One transaction, so the numbers agree.
    pub fn tenant_account(&mut self, tenant: &str, default_quota: u64) -> Result<TenantView> {
        let known = self.tenant_known(tenant)?;
        let storage_used_bytes = self.storage_used(tenant)?;
        let storage_quota_bytes = self.storage_quota(tenant, default_quota)?;
        let tx = self.conn.transaction()?;
        let credit_limit_micros = credit_limit(&tx, tenant)?;
        let spent_micros = spend(&tx, tenant)?;
        let held_micros = held(&tx, tenant, max_price(&tx)?)?;
        let jobs = {
            let mut stmt = tx.prepare_cached(
                "SELECT state, COUNT(*) FROM jobs WHERE tenant = ?1 GROUP BY state ORDER BY state",
            )?;
            let rows = stmt.query_map(params![tenant], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
            })?;
            let mut jobs: Vec<(JobState, u64)> = Vec::new();
            for row in rows {
                let (state, n) = row?;
                jobs.push((parse_state(&state)?, u(n)));
            }
            jobs
        };
        Ok(TenantView {
            name: tenant.to_owned(),
            known,
            credit_limit_micros,
            spent_micros,
            held_micros,
            storage_used_bytes,
            storage_quota_bytes,
            jobs,
        })
    }

    /// Whether a tenant token of this name exists (revoked or not). Admin
    /// tokens act as tenants too, so their names count.
    pub fn tenant_known(&self, name: &str) -> Result<bool> {
        Ok(self.token_named(name, "tenant")? || self.token_named(name, "admin")?)
    }

    /// Whether a node token of this name exists (revoked or not).
    pub fn node_token_known(&self, name: &str) -> Result<bool> {
        self.token_named(name, "node")
    }

    /// Whether `class` is `default`, was priced before, is some node's
    /// class (derived or set), or was given to a provider's nodes.
    pub fn class_known(&self, class: &str) -> Result<bool> {
        if class == "default" {
            return Ok(true);
        }
        Ok(self.conn.query_row(
            "SELECT EXISTS(SELECT 1 FROM prices WHERE class = ?1)
                 OR EXISTS(SELECT 1 FROM nodes WHERE gpu_class = ?1)
                 OR EXISTS(SELECT 1 FROM node_classes WHERE class = ?1)",
            params![class],
            |r| r.get(0),
        )?)
    }

    fn token_named(&self, name: &str, role: &str) -> Result<bool> {
        Ok(self.conn.query_row(
            "SELECT EXISTS(SELECT 1 FROM tokens WHERE name = ?1 AND role = ?2)",
            params![name, role],
            |r| r.get(0),
        )?)
    }
}

#[cfg(test)]
mod tests {
    use suanli_proto::Role;

    use crate::temp_ledger as ledger;

    #[test]
    fn names_are_known_once_a_token_or_class_exists() {
        let (_dir, mut l) = ledger();
        assert!(!l.tenant_known("alice").unwrap());
        assert!(!l.node_token_known("prov").unwrap());
        assert!(!l.class_known("premium").unwrap());
        assert!(l.class_known("default").unwrap());
        l.add_token(&[1; 32], Role::Tenant, "alice", 0).unwrap();
        l.add_token(&[2; 32], Role::Node, "prov", 0).unwrap();
        l.set_price("premium", 5, 0).unwrap();
        assert!(l.tenant_known("alice").unwrap());
        assert!(
            !l.node_token_known("alice").unwrap(),
            "roles are kept apart"
        );
        assert!(l.node_token_known("prov").unwrap());
        assert!(l.class_known("premium").unwrap());
    }

    #[test]
    fn an_account_without_jobs_or_limit_is_zero() {
        let (_dir, mut l) = ledger();
        let v = l.tenant_account("nobody", 1000).unwrap();
        assert!(!v.known);
        assert_eq!(v.credit_limit_micros, None);
        assert_eq!(v.available_micros(), None);
        assert_eq!((v.spent_micros, v.held_micros), (0, 0));
        assert_eq!((v.storage_used_bytes, v.storage_quota_bytes), (0, 1000));
        assert!(v.jobs.is_empty());
    }
}
