//! Tokens and what each role may do.

use rand::RngCore;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use suanli_ledger::Ledger;

use suanli_proto::{ErrorCode, Request, Response, Role};

use crate::CoordinatorError;
use crate::connections::REVOKED;
use crate::server::{Caller, Peer, blocking};
use crate::state::Shared;

/// A new random 256-bit secret, shown once. Only its hash is stored.
pub(crate) fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("sl_{}", hex::encode(bytes))
}

/// What the ledger stores and looks up. Lookup by a hash of the whole secret
/// leaks nothing about how much of a guess was right, unlike comparing
/// secrets byte by byte.
pub(crate) fn token_hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Creates the first admin token when there is none.
pub(crate) fn ensure_admin(ledger: &mut Ledger) -> Result<Option<String>, CoordinatorError> {
    if ledger.has_tokens(Role::Admin)? {
        return Ok(None);
    }
    let token = new_token();
    ledger.add_token(&token_hash(&token), Role::Admin, "admin", now_ms())?;
    Ok(Some(token))
}

/// What a presented token is. The one lookup the QUIC handshake and the
/// dashboard's login and pages share, so the two cannot drift apart.
pub(crate) enum Identity {
    Unknown,
    /// Revoked, with the reason a peer hears.
    Revoked(String),
    Known(Caller),
}

/// Looks `presented` (a token's SHA-256) up: by digest, confirmed in
/// constant time all the same; revoked before anything else, so a revoked
/// token hears why whatever it asks. Blocking (SQLite).
pub(crate) fn identify(
    shared: &Shared,
    presented: &[u8; 32],
) -> Result<Identity, suanli_ledger::LedgerError> {
    let reader = shared.reader();
    let found = reader.find_token(presented)?.filter(|(_, _, stored)| {
        bool::from(subtle::ConstantTimeEq::ct_eq(&stored[..], &presented[..]))
    });
    let Some((role, name, _)) = found else {
        return Ok(Identity::Unknown);
    };
    if reader.token_revoked(presented)?.is_some() {
        return Ok(Identity::Revoked(format!(
            "{REVOKED}: an admin revoked it (suanli token revoke); ask for a new token"
        )));
    }
    Ok(Identity::Known(Caller { role, name }))
}

/// Records an accepted handshake as the token's last use (at most once a
/// minute; see the ledger). Informational: a failure never refuses anyone.
pub(crate) fn touch(shared: &Shared, token: &[u8; 32], now_ms: u64) {
    let token = *token;
    if let Err(e) = shared.write(move |l| l.touch_token(&token, now_ms)) {
        tracing::warn!(%e, "cannot record a token's last use");
    }
}

/// Revokes every token named `name` (admin), then closes their live
/// connections at once: the ledger first, so a handshake racing the
/// revocation is refused either by the ledger or by the registry.
pub(crate) async fn revoke(shared: &Arc<Shared>, peer: &Peer, name: String) -> Response {
    let revoked = {
        let (shared, name) = (shared.clone(), name.clone());
        blocking(move || shared.write(move |l| l.revoke_tokens(&name, now_ms()))).await
    };
    let hashes = match revoked {
        Ok(Ok(hashes)) => hashes,
        Ok(Err(e)) => return error_response(ErrorCode::Internal, e.to_string()),
        Err(e) => return error_response(ErrorCode::Internal, e),
    };
    if hashes.is_empty() {
        return error_response(
            ErrorCode::NotFound,
            format!("no live token is named {name} (suanli token list shows them)"),
        );
    }
    let closed = peer.connections.revoke(&hashes);
    tracing::warn!(%name, tokens = hashes.len(), closed, "token revoked");
    Response::Ok
}

fn error_response(code: ErrorCode, message: impl Into<String>) -> Response {
    Response::Error {
        code,
        message: message.into(),
    }
}

/// Why a token of `actual` role cannot be used as `claimed`.
pub(crate) fn role_mismatch(claimed: Role, actual: Role) -> String {
    let advice = match claimed {
        Role::Tenant => {
            "tenants submit jobs with a tenant token (suanli token create --role tenant)"
        }
        Role::Node => "nodes register with a node token (suanli token create --role node)",
        Role::Admin => "admin commands need the admin token from the coordinator's client.toml",
    };
    let article = |r: Role| if r == Role::Admin { "an" } else { "a" };
    format!(
        "token rejected: it is {} {} token, not {} {} token; {advice}",
        article(actual),
        actual.as_str(),
        article(claimed),
        claimed.as_str()
    )
}

/// Whether `role` may make `request` at all (ownership is checked later).
/// The table in the README mirrors this function.
pub(crate) fn allowed(role: Role, request: &Request) -> Result<(), String> {
    use Request::*;
    let ok = match request {
        HasBlobs(_) | Submit(_) | Status(_) | Wait(_) | Logs { .. } | Cancel(_) | ListJobs(_) => {
            matches!(role, Role::Tenant | Role::Admin)
        }
        PutBlob { .. } | GetBlob(_) | ListPrices | Usage(_) | UsageRecords { .. } => true,
        ShowTenant(_) => matches!(role, Role::Tenant | Role::Admin),
        ListNodes
        | CreateToken { .. }
        | SetPrice { .. }
        | SetNodeClass { .. }
        | SetCreditLimit { .. }
        | DrainNode(_)
        | ListTokens
        | RevokeToken(_)
        | UndrainNode(_)
        | RestoreNode(_)
        | Gc
        | SetStorageQuota { .. }
        | Backup
        | Check => role == Role::Admin,
        Register(_) => role == Role::Node,
    };
    if ok {
        return Ok(());
    }
    Err(match (role, request) {
        (_, Register(_)) => {
            "a tenant or admin token cannot register a node; use a node token".into()
        }
        (
            Role::Node,
            HasBlobs(_)
            | Submit(_)
            | Status(_)
            | Wait(_)
            | Logs { .. }
            | Cancel(_)
            | ListJobs(_)
            | ShowTenant(_),
        ) => {
            format!("a node token cannot {}; use a tenant token", request.kind())
        }
        _ => format!("{} needs the admin token", request.kind()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_hashes_are_stable() {
        let a = new_token();
        let b = new_token();
        assert_ne!(a, b);
        assert_eq!(a.len(), 3 + 64);
        assert_eq!(token_hash(&a), token_hash(&a));
        assert_ne!(token_hash(&a), token_hash(&b));
    }

    #[test]
    fn roles_are_checked_per_request() {
        assert!(allowed(Role::Tenant, &Request::ListJobs(Default::default())).is_ok());
        assert!(allowed(Role::Tenant, &Request::ListNodes).is_err());
        assert!(allowed(Role::Tenant, &Request::ShowTenant(None)).is_ok());
        assert!(allowed(Role::Node, &Request::ShowTenant(None)).is_err());
        assert!(
            allowed(Role::Node, &Request::ListJobs(Default::default()))
                .unwrap_err()
                .contains("node token")
        );
        assert!(
            allowed(
                Role::Admin,
                &Request::CreateToken {
                    role: Role::Tenant,
                    name: "x".into(),
                    max_slots: None,
                }
            )
            .is_ok()
        );
        assert!(
            allowed(
                Role::Tenant,
                &Request::CreateToken {
                    role: Role::Tenant,
                    name: "x".into(),
                    max_slots: None,
                }
            )
            .is_err()
        );
    }
}
