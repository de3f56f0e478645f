//! Leases of generated credentials: renewing and revoking them.
//!
//! A secret's lease (`Data` results: database credentials, cloud keys, ...) is renewed with
//! `sys/leases/renew` and revoked with `sys/leases/revoke`. A token's lease (`Auth` results) is
//! the token itself: it is named by its accessor, never by the token (the lease id is recorded
//! in the ExternalSecret's status), and renewed and revoked through `auth/token/renew-accessor`
//! and `auth/token/revoke-accessor`. Its recorded id carries the prefix
//! [`TOKEN_ACCESSOR_PREFIX`] so a later renewal or revocation knows which it is even if the
//! generator's `resultType` changed meanwhile.
//!
//! Revoking what is already gone (expired, revoked by hand) succeeds: the goal — the
//! credentials no longer work — is reached. Renewing it is `NotFound` naming the lease, so the
//! caller generates anew instead of waiting for a spec change (Vault answers 400, which would
//! otherwise read as an invalid spec).

use std::time::Duration;

use kuvert_core::provider::ProviderError;
use kuvert_provider_vault::VaultConnection;
use kuvert_provider_vault::connection::Method;
use serde_json::{Value, json};

/// Prefix of the recorded lease id of a token (`Auth` result): `token-accessor:<accessor>`.
pub const TOKEN_ACCESSOR_PREFIX: &str = "token-accessor:";

/// What a lease belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LeaseKind {
    /// A secret's lease, in `sys/leases`.
    Secret,
    /// A token, named by its accessor.
    TokenAccessor,
}

/// A lease as Vault reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Lease {
    pub kind: LeaseKind,
    /// The lease id, or the token's accessor.
    pub id: String,
    pub duration: Duration,
    pub renewable: bool,
}

impl Lease {
    /// The id as recorded: the lease id, or `token-accessor:<accessor>`.
    pub fn recorded_id(&self) -> String {
        match self.kind {
            LeaseKind::Secret => self.id.clone(),
            LeaseKind::TokenAccessor => format!("{TOKEN_ACCESSOR_PREFIX}{}", self.id),
        }
    }

    /// Reads a recorded id back.
    pub fn parse_recorded(recorded: &str) -> (LeaseKind, &str) {
        match recorded.strip_prefix(TOKEN_ACCESSOR_PREFIX) {
            Some(accessor) => (LeaseKind::TokenAccessor, accessor),
            None => (LeaseKind::Secret, recorded),
        }
    }
}

fn with_increment(mut body: Value, increment: Option<Duration>) -> Value {
    if let Some(inc) = increment {
        body["increment"] = json!(inc.as_secs());
    }
    body
}

/// Renews the lease recorded as `recorded` by `increment` (Vault's default when `None`); the
/// lease as Vault granted it (its duration may be shorter than asked: the max TTL is near).
/// A lease that is gone is `NotFound`.
pub(crate) async fn renew(
    conn: &VaultConnection,
    recorded: &str,
    increment: Option<Duration>,
) -> Result<Lease, ProviderError> {
    renew_call(conn, recorded, increment)
        .await
        .map_err(|e| match e {
            e if already_gone(&e) => ProviderError::NotFound {
                key: format!("lease {recorded}"),
            },
            e => e,
        })
}

async fn renew_call(
    conn: &VaultConnection,
    recorded: &str,
    increment: Option<Duration>,
) -> Result<Lease, ProviderError> {
    match Lease::parse_recorded(recorded) {
        (LeaseKind::Secret, id) => {
            let body = with_increment(json!({ "lease_id": id }), increment);
            let resp = conn
                .request(Method::PUT, "sys/leases/renew", Some(&body))
                .await?;
            Ok(Lease {
                kind: LeaseKind::Secret,
                id: id.to_owned(),
                duration: Duration::from_secs(resp.body()["lease_duration"].as_u64().unwrap_or(0)),
                renewable: resp.body()["renewable"].as_bool().unwrap_or(false),
            })
        }
        (LeaseKind::TokenAccessor, accessor) => {
            let body = with_increment(json!({ "accessor": accessor }), increment);
            let resp = conn
                .request(Method::POST, "auth/token/renew-accessor", Some(&body))
                .await?;
            let auth = resp.auth().cloned().unwrap_or(Value::Null);
            Ok(Lease {
                kind: LeaseKind::TokenAccessor,
                id: accessor.to_owned(),
                duration: Duration::from_secs(auth["lease_duration"].as_u64().unwrap_or(0)),
                renewable: auth["renewable"].as_bool().unwrap_or(false),
            })
        }
    }
}

/// Revokes the lease recorded as `recorded`; one that is already gone counts as revoked.
pub(crate) async fn revoke(conn: &VaultConnection, recorded: &str) -> Result<(), ProviderError> {
    let result = match Lease::parse_recorded(recorded) {
        (LeaseKind::Secret, id) => {
            conn.request(
                Method::PUT,
                "sys/leases/revoke",
                Some(&json!({ "lease_id": id })),
            )
            .await
        }
        (LeaseKind::TokenAccessor, accessor) => {
            conn.request(
                Method::POST,
                "auth/token/revoke-accessor",
                Some(&json!({ "accessor": accessor })),
            )
            .await
        }
    };
    match result {
        Ok(_) => Ok(()),
        Err(e) if already_gone(&e) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Vault's answers for a lease or accessor it does not know (any more).
fn already_gone(e: &ProviderError) -> bool {
    match e {
        ProviderError::NotFound { .. } => true,
        ProviderError::InvalidSpec { message, .. } => {
            message.contains("invalid lease")
                || message.contains("lease not found")
                || message.contains("invalid accessor")
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recorded_ids_round_trip_for_both_kinds() {
        let token = Lease {
            kind: LeaseKind::TokenAccessor,
            id: "acc".to_owned(),
            duration: Duration::ZERO,
            renewable: false,
        };
        assert_eq!(token.recorded_id(), "token-accessor:acc");
        assert_eq!(
            Lease::parse_recorded("token-accessor:acc"),
            (LeaseKind::TokenAccessor, "acc")
        );
        assert_eq!(
            Lease::parse_recorded("database/creds/app/x"),
            (LeaseKind::Secret, "database/creds/app/x")
        );
    }
}
