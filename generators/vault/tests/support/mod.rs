//! Fixtures shared by the VaultDynamicSecret tests: generator objects in memory, with the
//! Secrets their Vault login reads.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::Secret;
use kuvert_core::api::VaultDynamicSecretSpec;
use kuvert_core::generator::{GenerateError, Generator, GeneratorContext, GeneratorKind, Kind};
use kuvert_core::memory::MemoryKube;
use kuvert_generator_vault::VaultDynamicSecretKind;
use serde_json::{Value, json};

pub use kuvert_testkit::OpenBao;

/// The namespace of the generator objects.
pub const NS: &str = "apps";

/// A Secret in [`NS`] with string data.
pub fn secret(name: &str, data: &[(&str, &str)]) -> Secret {
    kuvert_testkit::string_secret(NS, name, data)
}

/// Objects holding the Secret `vault-token` with `bao`'s root token.
pub fn kube_with_root_token(bao: &OpenBao) -> MemoryKube {
    let mut kube = MemoryKube::new();
    kube.add_secret(&secret("vault-token", &[("token", bao.root_token())]));
    kube
}

/// A `VaultDynamicSecret` spec: `fields` (path, method, parameters, ...) plus a `provider`
/// for `bao` logging in with the token in the Secret `vault-token`.
pub fn spec(bao: &OpenBao, fields: Value) -> VaultDynamicSecretSpec {
    let mut spec = json!({
        "provider": {
            "server": bao.addr(),
            "auth": {"tokenSecretRef": {"name": "vault-token", "key": "token"}}
        }
    });
    for (k, v) in fields.as_object().expect("fields are a map") {
        spec[k] = v.clone();
    }
    serde_json::from_value(spec).expect("a valid spec")
}

/// The generator `NS/name` with `spec`, validated and connected.
pub async fn generator(
    kind: &VaultDynamicSecretKind,
    spec: &VaultDynamicSecretSpec,
    kube: &MemoryKube,
) -> Result<Arc<dyn Generator>, GenerateError> {
    let context = GeneratorContext {
        kind: Kind::VaultDynamicSecret,
        name: "gen",
        namespace: NS,
    };
    kind.validate(&context, spec)?;
    kind.generator(&context, spec, kube).await
}

/// The values of a generation as text.
pub fn text(
    values: &BTreeMap<String, kuvert_core::secret::SecretBytes>,
) -> BTreeMap<String, String> {
    values
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                String::from_utf8(v.expose().to_vec()).expect("utf-8"),
            )
        })
        .collect()
}

/// The error of running a generator with `fields` (which connects).
pub async fn generation_error(
    kind: &VaultDynamicSecretKind,
    bao: &OpenBao,
    kube: &MemoryKube,
    fields: Value,
) -> GenerateError {
    let generator = generator(kind, &spec(bao, fields), kube)
        .await
        .unwrap_or_else(|e| panic!("connecting failed: {e}"));
    generator.generate().await.expect_err("generating fails")
}

/// The error of connecting a generator with `fields`.
pub async fn connect_error(
    kind: &VaultDynamicSecretKind,
    bao: &OpenBao,
    kube: &MemoryKube,
    fields: Value,
) -> GenerateError {
    generator(kind, &spec(bao, fields), kube)
        .await
        .err()
        .expect("connecting fails")
}

/// Checks that the lease `lease_id` is gone for good: revoking it again succeeds (the
/// credentials do not work, as asked) and renewing it is `NotFound` (generate anew), not an
/// invalid spec.
pub async fn assert_lease_gone(generator: &dyn Generator, lease_id: &str) {
    generator.revoke(lease_id).await.unwrap();
    let gone = generator
        .renew(lease_id, std::time::Duration::from_secs(60))
        .await
        .unwrap_err();
    assert_eq!(gone.to_string(), format!("lease {lease_id} not found"));
}
