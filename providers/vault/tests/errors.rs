//! Error classification against a real OpenBao server, and that no error ever carries a secret
//! value or a token (planted and looked for).

mod support;

use std::collections::BTreeMap;

use kuvert_core::api::{SecretStoreKind, VaultAppRole, VaultAuth};
use kuvert_core::memory::MemoryKube;
use kuvert_core::provider::{
    FindRequest, GetRequest, Provider, ProviderError, PushRequest, StoreContext,
};
use kuvert_core::secret::SecretBytes;
use kuvert_provider_vault::VaultProvider;
use serde_json::json;
use support::*;

/// Every string an error shows: Display, Debug and its source chain.
fn all_text(err: &ProviderError) -> String {
    let mut text = format!("{err} | {err:?}");
    let mut source = std::error::Error::source(err);
    while let Some(s) = source {
        text.push_str(&format!(" | {s} | {s:?}"));
        source = s.source();
    }
    text
}

#[tokio::test]
async fn a_wrong_token_is_unauthenticated() {
    let bao = OpenBao::start().await;
    bao.kv2_put("secret", "app", json!({"k": "v"})).await;
    let mut kube = MemoryKube::new();
    let mut spec = root_spec(&bao, &mut kube);
    kube.add_secret(&secret("bad-token", &[("token", "s.not-a-real-token-42")]));
    spec.auth = VaultAuth::TokenSecretRef(key_ref("bad-token", "token"));
    let c = client(&VaultProvider::new(), &spec, &kube).await.unwrap();

    let err = get_text(c.as_ref(), "app").await.unwrap_err();
    assert_eq!(err.reason(), "Unauthenticated", "{err}");
    let err = c.validate().await.unwrap_err();
    assert_eq!(err.reason(), "Unauthenticated", "{err}");
    assert!(!all_text(&err).contains("not-a-real-token-42"));
}

#[tokio::test]
async fn an_unreachable_server_is_unavailable() {
    let port = kuvert_testkit::free_port();
    let mut kube = MemoryKube::new();
    kube.add_secret(&secret("t", &[("token", "tok")]));
    let spec = spec(
        &format!("http://127.0.0.1:{port}"),
        VaultAuth::TokenSecretRef(key_ref("t", "token")),
    );
    // A static token connects lazily; the first request finds nobody listening.
    let c = client(&VaultProvider::new(), &spec, &kube).await.unwrap();
    let err = get_text(c.as_ref(), "app").await.unwrap_err();
    assert_eq!(err.reason(), "Unavailable", "{err}");
    assert!(err.is_transient());
    assert!(err.to_string().contains("secret/data/app"), "{err}");

    // A login to nowhere fails the same way.
    let mut approle = spec.clone();
    kube.add_secret(&secret("approle", &[("secret-id", "sid")]));
    approle.auth = VaultAuth::AppRole(VaultAppRole {
        path: None,
        role_id: Some("rid".into()),
        role_ref: None,
        secret_ref: key_ref("approle", "secret-id"),
    });
    let err = client_err(&VaultProvider::new(), &approle, &kube).await;
    assert_eq!(err.reason(), "Unavailable", "{err}");
}

#[tokio::test]
async fn bad_specs_are_refused_before_any_request() {
    let mut kube = MemoryKube::new();
    kube.add_secret(&secret("t", &[("token", "tok")]));
    let base = spec(
        "http://127.0.0.1:1",
        VaultAuth::TokenSecretRef(key_ref("t", "token")),
    );
    let provider = VaultProvider::new();
    let check = |spec: &kuvert_core::api::VaultProvider, field: &str| {
        let store = StoreContext {
            kind: SecretStoreKind::SecretStore,
            name: "vault",
            namespace: Some(NS),
        };
        let err = provider.validate(&store, spec).unwrap_err();
        assert_eq!(err.reason(), "InvalidSpec", "{err}");
        assert!(err.to_string().contains(field), "{field}: {err}");
    };

    let mut s = base.clone();
    s.server = "vault.example.com".into();
    check(&s, "spec.provider.vault.server");

    let mut s = base.clone();
    s.auth = VaultAuth::AppRole(VaultAppRole {
        path: None,
        role_id: None,
        role_ref: None,
        secret_ref: key_ref("t", "x"),
    });
    check(&s, "spec.provider.vault.auth.appRole");

    let mut s = base.clone();
    s.auth = VaultAuth::TokenSecretRef(kuvert_core::api::SecretKeySelector {
        name: "t".into(),
        namespace: Some("elsewhere".into()),
        key: Some("token".into()),
    });
    check(&s, "spec.provider.vault.auth.tokenSecretRef");

    let mut s = base.clone();
    s.ca_bundle = Some("not base64!".into());
    check(&s, "spec.provider.vault.caBundle");

    // A missing Secret is NotFound naming the field.
    let mut s = base.clone();
    s.auth = VaultAuth::TokenSecretRef(key_ref("absent", "token"));
    let err = client_err(&provider, &s, &kube).await;
    assert_eq!(err.reason(), "NotFound");
    assert!(err.to_string().contains("auth.tokenSecretRef"), "{err}");
}

#[tokio::test]
async fn no_error_carries_a_secret_value_or_a_token() {
    const VALUE: &str = "PLANTED-SECRET-VALUE-7f3a";
    const SECRET_ID: &str = "PLANTED-BAD-SECRET-ID-91c2";
    let bao = OpenBao::start().await;
    bao.kv2_put("secret", "planted", json!({"password": VALUE}))
        .await;
    bao.kv2_metadata("secret", "planted", json!({"note": VALUE}))
        .await;
    bao.mount("private", "kv", json!({"version": "2"})).await;
    bao.kv2_put("private", "planted", json!({"password": VALUE}))
        .await;
    bao.policy(
        "reader",
        r#"path "secret/data/*" { capabilities = ["read"] }
           path "secret/metadata/*" { capabilities = ["read", "list"] }"#,
    )
    .await;
    let reader = bao.token(&["reader"], json!({})).await;
    let mut kube = MemoryKube::new();
    kube.add_secret(&secret("reader", &[("token", &reader)]));
    let mut spec = spec(
        bao.addr(),
        VaultAuth::TokenSecretRef(key_ref("reader", "token")),
    );
    spec.path = None;
    let provider = VaultProvider::new();
    let c = client(&provider, &spec, &kube).await.unwrap();

    let mut errors = Vec::new();
    // Denied by policy.
    errors.push(get_text(c.as_ref(), "private/planted").await.unwrap_err());
    // A push over a foreign secret, and one the token may not write.
    let push = PushRequest {
        key: "secret/planted".into(),
        property: Some("password".into()),
        value: SecretBytes::from(VALUE),
        owner: "apps/p".into(),
        metadata: None,
    };
    errors.push(c.push(&push).await.unwrap_err());
    let mut denied_push = push.clone();
    denied_push.key = "secret/new".into();
    errors.push(c.push(&denied_push).await.unwrap_err());
    // A whole-secret push of a value that is not JSON.
    let mut not_json = push.clone();
    not_json.property = None;
    errors.push(c.push(&not_json).await.unwrap_err());
    // Bad version, missing secret, find without a mount.
    errors.push(
        c.get(&GetRequest {
            key: "secret/planted".into(),
            version: Some("99".into()),
            metadata: false,
        })
        .await
        .unwrap_err(),
    );
    errors.push(
        c.find(&FindRequest {
            path: None,
            name_regexp: Some(regex::Regex::new(".*").unwrap()),
            tags: BTreeMap::new(),
        })
        .await
        .unwrap_err(),
    );
    // A failed login.
    kube.add_secret(&secret("approle", &[("secret-id", SECRET_ID)]));
    bao.enable_auth("approle", "approle").await;
    let mut approle = spec.clone();
    approle.auth = VaultAuth::AppRole(VaultAppRole {
        path: None,
        role_id: Some("no-such-role".into()),
        role_ref: None,
        secret_ref: key_ref("approle", "secret-id"),
    });
    errors.push(client_err(&provider, &approle, &kube).await);

    let reasons: Vec<&str> = errors.iter().map(ProviderError::reason).collect();
    assert_eq!(
        reasons,
        [
            "Forbidden",
            "Conflict",
            "Forbidden",
            "Conflict",
            "NotFound",
            "InvalidSpec",
            "Unauthenticated"
        ]
    );
    for err in &errors {
        let text = all_text(err);
        for planted in [VALUE, SECRET_ID, reader.as_str(), bao.root_token()] {
            assert!(!text.contains(planted), "{planted:?} leaked into {text}");
        }
    }
    // Nor do the client's and connection's Debug.
    let conn_debug = format!("{:?}", provider.cache());
    assert!(!conn_debug.contains(&reader));
}
