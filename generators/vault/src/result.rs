//! From Vault's answer to the generated keys and their lease.

use std::collections::BTreeMap;
use std::time::Duration;

use kuvert_core::api::VaultDynamicSecretResultType;
use kuvert_core::provider::ProviderError;
use kuvert_core::secret::SecretBytes;
use kuvert_provider_vault::VaultResponse;
use serde_json::Value;

use crate::lease::{Lease, LeaseKind};

/// The keys and the lease of one answer.
#[derive(Debug, PartialEq)]
pub(crate) struct Shaped {
    pub values: BTreeMap<String, SecretBytes>,
    pub lease: Option<Lease>,
}

/// A JSON value as the bytes of a key: strings as they are, everything else (numbers,
/// booleans, arrays such as PKI's `ca_chain`, maps, null) as compact JSON text.
pub(crate) fn value_bytes(value: &Value) -> SecretBytes {
    match value {
        Value::String(s) => SecretBytes::from(s.as_str()),
        other => SecretBytes::from(other.to_string()),
    }
}

/// Picks the `data` or `auth` block of `response` (to `what`, e.g. `GET database/creds/app`).
/// An answer without keys is refused unless `allow_empty`.
pub(crate) fn shape(
    what: &str,
    response: &VaultResponse,
    result_type: VaultDynamicSecretResultType,
    allow_empty: bool,
) -> Result<Shaped, ProviderError> {
    let (block, name) = match result_type {
        VaultDynamicSecretResultType::Data => (response.data(), "data"),
        VaultDynamicSecretResultType::Auth => (response.auth(), "auth"),
    };
    let map = match block {
        None => None,
        Some(Value::Object(map)) => Some(map),
        Some(_) => {
            return Err(ProviderError::InvalidSpec {
                field: "spec.resultType".to_owned(),
                message: format!("{what} answered a {name} block that is not a map"),
            });
        }
    };
    let values: BTreeMap<String, SecretBytes> = map
        .into_iter()
        .flatten()
        .map(|(k, v)| (k.clone(), value_bytes(v)))
        .collect();
    if values.is_empty() && !allow_empty {
        let other = match result_type {
            VaultDynamicSecretResultType::Data if response.auth().is_some() => {
                " (it returned an auth block: set resultType: Auth)"
            }
            _ => "",
        };
        return Err(ProviderError::InvalidSpec {
            field: "spec.allowEmptyResponse".to_owned(),
            message: format!(
                "{what} answered without {name}{other}; set allowEmptyResponse: true to accept \
                 an empty result"
            ),
        });
    }
    let lease = match result_type {
        VaultDynamicSecretResultType::Data => response.lease().map(|l| Lease {
            kind: LeaseKind::Secret,
            id: l.id,
            duration: l.duration,
            renewable: l.renewable,
        }),
        // A token's lease is the token; the accessor names it without being it (the lease id
        // lands in status, where the token must never be).
        VaultDynamicSecretResultType::Auth => map
            .and_then(|auth| auth.get("accessor"))
            .and_then(Value::as_str)
            .filter(|a| !a.is_empty())
            .map(|accessor| {
                let auth = map.expect("an accessor comes from the auth map");
                Lease {
                    kind: LeaseKind::TokenAccessor,
                    id: accessor.to_owned(),
                    duration: Duration::from_secs(
                        auth.get("lease_duration")
                            .and_then(Value::as_u64)
                            .unwrap_or(0),
                    ),
                    renewable: auth
                        .get("renewable")
                        .and_then(Value::as_bool)
                        .unwrap_or(false),
                }
            }),
    };
    Ok(Shaped { values, lease })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn response(body: Value) -> VaultResponse {
        VaultResponse::new(200, body)
    }

    fn text(values: &BTreeMap<String, SecretBytes>) -> BTreeMap<&str, &str> {
        values
            .iter()
            .map(|(k, v)| (k.as_str(), v.expose_str().unwrap()))
            .collect()
    }

    #[test]
    fn strings_stay_as_they_are_and_other_values_become_json_text() {
        let shaped = shape(
            "POST pki/issue/web",
            &response(json!({
                "lease_id": "",
                "data": {
                    "certificate": "-----BEGIN CERTIFICATE-----\nMII\n-----END CERTIFICATE-----",
                    "ca_chain": ["a", "b"],
                    "expiration": 1795879558,
                    "revoked": false,
                    "extra": {"k": null}
                }
            })),
            VaultDynamicSecretResultType::Data,
            false,
        )
        .unwrap();
        assert_eq!(
            text(&shaped.values),
            BTreeMap::from([
                (
                    "certificate",
                    "-----BEGIN CERTIFICATE-----\nMII\n-----END CERTIFICATE-----"
                ),
                ("ca_chain", r#"["a","b"]"#),
                ("expiration", "1795879558"),
                ("revoked", "false"),
                ("extra", r#"{"k":null}"#),
            ])
        );
        assert_eq!(shaped.lease, None);
    }

    #[test]
    fn a_data_lease_is_recorded_with_its_duration_and_renewability() {
        let shaped = shape(
            "GET database/creds/app",
            &response(json!({
                "lease_id": "database/creds/app/abc",
                "lease_duration": 3600,
                "renewable": true,
                "data": {"username": "v-app", "password": "pw"}
            })),
            VaultDynamicSecretResultType::Data,
            false,
        )
        .unwrap();
        assert_eq!(
            shaped.lease,
            Some(Lease {
                kind: LeaseKind::Secret,
                id: "database/creds/app/abc".to_owned(),
                duration: Duration::from_secs(3600),
                renewable: true,
            })
        );
    }

    #[test]
    fn an_auth_result_is_the_auth_block_leased_by_its_accessor() {
        let shaped = shape(
            "POST auth/token/create",
            &response(json!({
                "data": null,
                "auth": {
                    "client_token": "s.token",
                    "accessor": "acc123",
                    "policies": ["default"],
                    "lease_duration": 600,
                    "renewable": true
                }
            })),
            VaultDynamicSecretResultType::Auth,
            false,
        )
        .unwrap();
        assert_eq!(
            text(&shaped.values),
            BTreeMap::from([
                ("accessor", "acc123"),
                ("client_token", "s.token"),
                ("lease_duration", "600"),
                ("policies", r#"["default"]"#),
                ("renewable", "true"),
            ])
        );
        assert_eq!(
            shaped.lease,
            Some(Lease {
                kind: LeaseKind::TokenAccessor,
                id: "acc123".to_owned(),
                duration: Duration::from_secs(600),
                renewable: true,
            })
        );
    }

    #[test]
    fn an_empty_answer_is_refused_unless_allowed() {
        let empty = response(json!({"data": {}}));
        let e = shape(
            "POST sys/tools/x",
            &empty,
            VaultDynamicSecretResultType::Data,
            false,
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid store spec: spec.allowEmptyResponse: POST sys/tools/x answered without data; \
             set allowEmptyResponse: true to accept an empty result"
        );
        let ok = shape(
            "POST sys/tools/x",
            &response(Value::Null),
            VaultDynamicSecretResultType::Data,
            true,
        )
        .unwrap();
        assert_eq!(
            ok,
            Shaped {
                values: BTreeMap::new(),
                lease: None
            }
        );

        let token = response(json!({"auth": {"client_token": "t", "accessor": "a"}}));
        let e = shape(
            "POST auth/token/create",
            &token,
            VaultDynamicSecretResultType::Data,
            false,
        )
        .unwrap_err();
        assert!(
            e.to_string()
                .contains("(it returned an auth block: set resultType: Auth)"),
            "{e}"
        );
        assert!(!e.to_string().contains("\"t\""));
    }
}
