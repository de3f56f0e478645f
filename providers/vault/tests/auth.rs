//! Every auth method OpenBao supports without outside services, TLS (caBundle, caProvider,
//! client certificates), namespaces and headers, against a real OpenBao server.

mod support;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kuvert_core::api::{
    CaProvider, CaProviderType, ServiceAccountSelector, StoreCapabilities, VaultAppRole, VaultAuth,
    VaultCertAuth, VaultClientTls, VaultJwtAuth, VaultKubernetesAuth,
    VaultKubernetesServiceAccountTokenAuth, VaultLdapAuth, VaultUserPassAuth,
};
use kuvert_core::memory::MemoryKube;
use kuvert_provider_vault::VaultProvider;
use kuvert_testkit::{JwtSigner, unix_now};
use serde_json::json;
use support::*;

const READ_POLICY: &str = r#"
path "secret/data/*" { capabilities = ["read"] }
path "secret/metadata/*" { capabilities = ["read", "list"] }
"#;

/// Seeds `secret/app` and a read-only policy `reader`.
async fn seed(bao: &OpenBao) {
    bao.kv2_put("secret", "app", json!({"password": "from-vault"}))
        .await;
    bao.policy("reader", READ_POLICY).await;
}

async fn assert_reads(bao_spec: &kuvert_core::api::VaultProvider, kube: &MemoryKube) {
    let client = client(&VaultProvider::new(), bao_spec, kube).await.unwrap();
    assert_eq!(
        json(&get_text(client.as_ref(), "app").await.unwrap()),
        json!({"password": "from-vault"})
    );
}

#[tokio::test]
async fn a_token_from_a_secret_reads_and_validates_capabilities() {
    let bao = OpenBao::start().await;
    seed(&bao).await;
    let mut kube = MemoryKube::new();
    let spec = root_spec(&bao, &mut kube);
    let provider = VaultProvider::new();
    let root = client(&provider, &spec, &kube).await.unwrap();
    assert_eq!(root.validate().await.unwrap(), StoreCapabilities::ReadWrite);

    // A reader token, with a trailing newline as pasted into Secrets.
    let reader = bao.token(&["reader"], json!({})).await;
    kube.add_secret(&secret(
        "reader-token",
        &[("token", &format!("{reader}\n"))],
    ));
    let spec = spec_for(
        &bao,
        VaultAuth::TokenSecretRef(key_ref("reader-token", "token")),
    );
    assert_reads(&spec, &kube).await;
    let c = client(&provider, &spec, &kube).await.unwrap();
    assert_eq!(c.validate().await.unwrap(), StoreCapabilities::ReadOnly);

    bao.policy(
        "writer",
        r#"path "secret/data/*" { capabilities = ["create", "update"] }"#,
    )
    .await;
    let writer = bao.token(&["writer"], json!({})).await;
    kube.add_secret(&secret("writer-token", &[("token", &writer)]));
    let spec = spec_for(
        &bao,
        VaultAuth::TokenSecretRef(key_ref("writer-token", "token")),
    );
    let c = client(&provider, &spec, &kube).await.unwrap();
    assert_eq!(c.validate().await.unwrap(), StoreCapabilities::WriteOnly);
}

#[tokio::test]
async fn a_token_that_may_read_only_some_paths_validates_and_is_forbidden_elsewhere_only() {
    let bao = OpenBao::start().await;
    seed(&bao).await;
    bao.kv2_put("secret", "team-a/db", json!({"password": "team-a-pw"}))
        .await;
    bao.policy(
        "team-a",
        r#"path "secret/data/team-a/*" { capabilities = ["read"] }"#,
    )
    .await;
    let token = bao.token(&["team-a"], json!({})).await;
    let mut kube = MemoryKube::new();
    kube.add_secret(&secret("team-a-token", &[("token", &token)]));
    let spec = spec_for(
        &bao,
        VaultAuth::TokenSecretRef(key_ref("team-a-token", "token")),
    );
    let provider = VaultProvider::new();
    let c = client(&provider, &spec, &kube).await.unwrap();
    assert_eq!(c.validate().await.unwrap(), StoreCapabilities::ReadWrite);
    assert_eq!(
        json(&get_text(c.as_ref(), "team-a/db").await.unwrap()),
        json!({"password": "team-a-pw"})
    );
    let err = get_text(c.as_ref(), "app").await.unwrap_err();
    assert_eq!(err.reason(), "Forbidden", "{err}");
}

fn spec_for(bao: &OpenBao, auth: VaultAuth) -> kuvert_core::api::VaultProvider {
    spec(bao.addr(), auth)
}

async fn approle(bao: &OpenBao, options: serde_json::Value) -> (String, String) {
    bao.enable_auth("approle", "approle").await;
    let mut role = json!({"token_policies": ["reader"]});
    if let (Some(r), Some(o)) = (role.as_object_mut(), options.as_object()) {
        r.extend(o.clone());
    }
    bao.write("auth/approle/role/app", role).await;
    let role_id = bao.read("auth/approle/role/app/role-id").await["data"]["role_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let secret_id = bao
        .write("auth/approle/role/app/secret-id", json!({}))
        .await["data"]["secret_id"]
        .as_str()
        .unwrap()
        .to_owned();
    (role_id, secret_id)
}

#[tokio::test]
async fn approle_logs_in_with_an_inline_role_id_or_one_from_a_secret() {
    let bao = OpenBao::start().await;
    seed(&bao).await;
    let (role_id, secret_id) = approle(&bao, json!({})).await;
    let mut kube = MemoryKube::new();
    kube.add_secret(&secret(
        "approle",
        &[("role-id", &role_id), ("secret-id", &secret_id)],
    ));

    let inline = spec_for(
        &bao,
        VaultAuth::AppRole(VaultAppRole {
            path: None,
            role_id: Some(role_id.clone()),
            role_ref: None,
            secret_ref: key_ref("approle", "secret-id"),
        }),
    );
    assert_reads(&inline, &kube).await;

    let by_ref = spec_for(
        &bao,
        VaultAuth::AppRole(VaultAppRole {
            path: Some("approle".into()),
            role_id: None,
            role_ref: Some(key_ref("approle", "role-id")),
            secret_ref: key_ref("approle", "secret-id"),
        }),
    );
    assert_reads(&by_ref, &kube).await;

    // A wrong secret ID is an authentication failure, reported without the secret ID.
    kube.add_secret(&secret(
        "approle",
        &[("role-id", &role_id), ("secret-id", "wrong-secret-id-123")],
    ));
    let err = client_err(&VaultProvider::new(), &by_ref, &kube).await;
    assert_eq!(err.reason(), "Unauthenticated", "{err}");
    assert!(err.to_string().contains("auth/approle/login"), "{err}");
    assert!(!err.to_string().contains("wrong-secret-id-123"), "{err}");
}

#[tokio::test]
async fn userpass_logs_in() {
    let bao = OpenBao::start().await;
    seed(&bao).await;
    bao.enable_auth("people", "userpass").await;
    bao.write(
        "auth/people/users/ann",
        json!({"password": "ann-pw-4711", "token_policies": ["reader"]}),
    )
    .await;
    let mut kube = MemoryKube::new();
    kube.add_secret(&secret("ann", &[("password", "ann-pw-4711")]));
    let spec = spec_for(
        &bao,
        VaultAuth::UserPass(VaultUserPassAuth {
            path: Some("people".into()),
            username: "ann".into(),
            secret_ref: key_ref("ann", "password"),
        }),
    );
    assert_reads(&spec, &kube).await;

    kube.add_secret(&secret("ann", &[("password", "not-anns-password")]));
    let err = client_err(&VaultProvider::new(), &spec, &kube).await;
    assert_eq!(err.reason(), "Unauthenticated");
    assert!(!err.to_string().contains("not-anns-password"));
}

/// Mounts the JWT method at `mount`, trusting `signer`, with a role `app` for audience `vault`.
async fn jwt_method(bao: &OpenBao, mount: &str, signer: &JwtSigner) {
    bao.enable_auth(mount, "jwt").await;
    bao.write(
        &format!("auth/{mount}/config"),
        json!({"jwt_validation_pubkeys": [signer.public_key_pem()]}),
    )
    .await;
    bao.write(
        &format!("auth/{mount}/role/app"),
        json!({
            "role_type": "jwt",
            "bound_audiences": ["vault"],
            "user_claim": "sub",
            "token_policies": ["reader"],
        }),
    )
    .await;
}

fn claims(sub: &str) -> serde_json::Value {
    let now = unix_now();
    json!({"sub": sub, "aud": "vault", "iat": now, "nbf": now, "exp": now + 600, "iss": "kuvert-test"})
}

#[tokio::test]
async fn jwt_logs_in_with_a_token_from_a_secret_or_a_service_account() {
    let bao = OpenBao::start().await;
    seed(&bao).await;
    let signer = JwtSigner::generate();
    jwt_method(&bao, "jwt", &signer).await;
    let mut kube = MemoryKube::new();
    kube.add_secret(&secret("jwt", &[("token", &signer.sign(&claims("app")))]));
    let from_secret = spec_for(
        &bao,
        VaultAuth::Jwt(VaultJwtAuth {
            path: None,
            role: Some("app".into()),
            secret_ref: Some(key_ref("jwt", "token")),
            kubernetes_service_account_token: None,
        }),
    );
    assert_reads(&from_secret, &kube).await;

    kube.set_service_account_token(NS, "app-sa", signer.sign(&claims("sa")).into());
    let from_sa = spec_for(
        &bao,
        VaultAuth::Jwt(VaultJwtAuth {
            path: None,
            role: Some("app".into()),
            secret_ref: None,
            kubernetes_service_account_token: Some(VaultKubernetesServiceAccountTokenAuth {
                service_account_ref: ServiceAccountSelector {
                    name: "app-sa".into(),
                    ..ServiceAccountSelector::default()
                },
                audiences: vec![],
                expiration_seconds: None,
            }),
        }),
    );
    assert_reads(&from_sa, &kube).await;

    // A JWT signed by another key is refused.
    let forged = JwtSigner::generate().sign(&claims("app"));
    kube.add_secret(&secret("jwt", &[("token", &forged)]));
    let err = client_err(&VaultProvider::new(), &from_secret, &kube).await;
    assert_eq!(err.reason(), "Unauthenticated", "{err}");
    assert!(!err.to_string().contains(&forged));
}

/// The Kubernetes method's login (`{role, jwt}` to `auth/<mountPath>/login`) with a
/// ServiceAccount token from `KubeAccess`. The Kubernetes method itself needs an API server
/// that answers TokenReview (devcluster; its end-to-end test lives with the operator); here
/// OpenBao's JWT method, which takes the same login body, stands in at the mount so the request
/// the provider sends is checked by a real server.
#[tokio::test]
async fn kubernetes_login_presents_the_service_account_token() {
    let bao = OpenBao::start().await;
    seed(&bao).await;
    let signer = JwtSigner::generate();
    jwt_method(&bao, "k8s-stand-in", &signer).await;
    let mut kube = MemoryKube::new();
    kube.set_service_account_token(NS, "app-sa", signer.sign(&claims("app-sa")).into());
    let by_sa = spec_for(
        &bao,
        VaultAuth::Kubernetes(VaultKubernetesAuth {
            mount_path: Some("k8s-stand-in".into()),
            role: "app".into(),
            service_account_ref: Some(ServiceAccountSelector {
                name: "app-sa".into(),
                ..ServiceAccountSelector::default()
            }),
            secret_ref: None,
        }),
    );
    assert_reads(&by_sa, &kube).await;

    kube.add_secret(&secret(
        "sa-token",
        &[("token", &signer.sign(&claims("from-secret")))],
    ));
    let by_secret = spec_for(
        &bao,
        VaultAuth::Kubernetes(VaultKubernetesAuth {
            mount_path: Some("k8s-stand-in".into()),
            role: "app".into(),
            service_account_ref: None,
            secret_ref: Some(key_ref("sa-token", "token")),
        }),
    );
    assert_reads(&by_secret, &kube).await;

    // Neither set: the operator's own token file, here missing.
    let own = spec_for(
        &bao,
        VaultAuth::Kubernetes(VaultKubernetesAuth {
            mount_path: Some("k8s-stand-in".into()),
            role: "app".into(),
            service_account_ref: None,
            secret_ref: None,
        }),
    );
    let provider = VaultProvider::with_cache(std::sync::Arc::new(
        kuvert_provider_vault::ConnectionCache::new().with_own_token_path("/nonexistent/token"),
    ));
    let err = client_err(&provider, &own, &kube).await;
    assert_eq!(err.reason(), "InvalidSpec");
    assert!(err.to_string().contains("/nonexistent/token"), "{err}");
}

/// No LDAP server can run here, and OpenBao 2.7 ships no LDAP auth method (its plugin catalog
/// holds approle, cert, jwt, kubernetes, oidc, userpass). The LDAP login's shape —
/// `{password}` to `auth/<path>/login/<username>` — is the userpass method's, so userpass
/// mounted at the LDAP path stands in and checks the request the provider sends.
#[tokio::test]
async fn ldap_login_sends_username_and_password_where_the_ldap_method_expects() {
    let bao = OpenBao::start().await;
    seed(&bao).await;
    bao.enable_auth("corp-ldap", "userpass").await;
    bao.write(
        "auth/corp-ldap/users/ann",
        json!({"password": "ldap-pw-0815", "token_policies": ["reader"]}),
    )
    .await;
    let mut kube = MemoryKube::new();
    kube.add_secret(&secret("ldap", &[("password", "ldap-pw-0815")]));
    let spec = spec_for(
        &bao,
        VaultAuth::Ldap(VaultLdapAuth {
            path: Some("corp-ldap".into()),
            username: "ann".into(),
            secret_ref: key_ref("ldap", "password"),
        }),
    );
    assert_reads(&spec, &kube).await;

    // With the default path the login goes to auth/ldap, absent here: a clear failure.
    let mut default_path = spec.clone();
    default_path.auth = VaultAuth::Ldap(VaultLdapAuth {
        path: None,
        username: "ann".into(),
        secret_ref: key_ref("ldap", "password"),
    });
    let err = client_err(&VaultProvider::new(), &default_path, &kube).await;
    let text = err.to_string();
    assert!(text.contains("auth/ldap/login/ann"), "{text}");
    assert!(!text.contains("ldap-pw-0815"), "{text}");
}

#[tokio::test]
async fn ca_bundle_and_ca_provider_verify_the_server() {
    let bao = OpenBao::start_tls().await;
    seed(&bao).await;
    let mut kube = MemoryKube::new();
    let mut spec = root_spec(&bao, &mut kube);
    spec.server = bao.tls_addr().to_owned();

    // Unknown CA: the handshake fails, the store is unavailable.
    let err = client(&VaultProvider::new(), &spec, &kube)
        .await
        .unwrap()
        .validate()
        .await
        .unwrap_err();
    assert_eq!(err.reason(), "Unavailable", "{err}");

    let mut with_bundle = spec.clone();
    with_bundle.ca_bundle = Some(STANDARD.encode(bao.ca().pem()));
    assert_reads(&with_bundle, &kube).await;

    kube.add_secret(&secret("ca", &[("ca.crt", bao.ca().pem())]));
    let mut from_secret = spec.clone();
    from_secret.ca_provider = Some(CaProvider {
        type_: CaProviderType::Secret,
        name: "ca".into(),
        key: "ca.crt".into(),
        namespace: None,
    });
    assert_reads(&from_secret, &kube).await;

    kube.add_config_map(&ConfigMap {
        metadata: ObjectMeta {
            name: Some("ca".into()),
            namespace: Some(NS.into()),
            ..ObjectMeta::default()
        },
        data: Some([("bundle.pem".to_owned(), bao.ca().pem().to_owned())].into()),
        ..ConfigMap::default()
    });
    let mut from_config_map = spec.clone();
    from_config_map.ca_provider = Some(CaProvider {
        type_: CaProviderType::ConfigMap,
        name: "ca".into(),
        key: "bundle.pem".into(),
        namespace: None,
    });
    assert_reads(&from_config_map, &kube).await;
}

#[tokio::test]
async fn a_client_certificate_is_presented_for_mutual_tls() {
    let bao = OpenBao::start_mtls().await;
    seed(&bao).await;
    let (cert, key) = bao.ca().client_cert("kuvert");
    let mut kube = MemoryKube::new();
    let mut spec = root_spec(&bao, &mut kube);
    spec.server = bao.tls_addr().to_owned();
    spec.ca_bundle = Some(STANDARD.encode(bao.ca().pem()));

    let err = get_text(
        client(&VaultProvider::new(), &spec, &kube)
            .await
            .unwrap()
            .as_ref(),
        "app",
    )
    .await
    .unwrap_err();
    assert_eq!(err.reason(), "Unavailable", "{err}");

    kube.add_secret(&secret(
        "client-tls",
        &[("tls.crt", &cert), ("tls.key", &key)],
    ));
    spec.tls = Some(VaultClientTls {
        cert_secret_ref: Some(kuvert_core::api::SecretKeySelector {
            name: "client-tls".into(),
            namespace: None,
            key: None,
        }),
        key_secret_ref: Some(kuvert_core::api::SecretKeySelector {
            name: "client-tls".into(),
            namespace: None,
            key: None,
        }),
    });
    assert_reads(&spec, &kube).await;
}

#[tokio::test]
async fn the_cert_method_logs_in_with_the_client_certificate() {
    let bao = OpenBao::start_tls().await;
    seed(&bao).await;
    bao.enable_auth("cert", "cert").await;
    bao.write(
        "auth/cert/certs/web",
        json!({"certificate": bao.ca().pem(), "token_policies": ["reader"]}),
    )
    .await;
    let (cert, key) = bao.ca().client_cert("web");
    let mut kube = MemoryKube::new();
    kube.add_secret(&secret(
        "web-cert",
        &[("tls.crt", &cert), ("tls.key", &key)],
    ));
    let mut spec = spec(
        bao.tls_addr(),
        VaultAuth::Cert(VaultCertAuth {
            path: None,
            name: Some("web".into()),
            client_cert: key_ref("web-cert", "tls.crt"),
            secret_ref: key_ref("web-cert", "tls.key"),
        }),
    );
    spec.ca_bundle = Some(STANDARD.encode(bao.ca().pem()));
    assert_reads(&spec, &kube).await;

    // A certificate from another CA is refused at login.
    let (other_cert, other_key) = kuvert_testkit::TestCa::generate().client_cert("web");
    kube.add_secret(&secret(
        "web-cert",
        &[("tls.crt", &other_cert), ("tls.key", &other_key)],
    ));
    let err = client_err(&VaultProvider::new(), &spec, &kube).await;
    assert!(
        matches!(err.reason(), "Unauthenticated" | "Unavailable"),
        "{err}"
    );
}

#[tokio::test]
async fn a_vault_namespace_is_sent_on_every_request() {
    let bao = OpenBao::start().await;
    bao.write("sys/namespaces/team-a", json!({})).await;
    bao.api_as(
        bao.root_token(),
        Some("team-a"),
        "POST",
        "sys/mounts/secret",
        Some(json!({"type": "kv", "options": {"version": "2"}})),
    )
    .await
    .unwrap();
    bao.api_as(
        bao.root_token(),
        Some("team-a"),
        "POST",
        "secret/data/app",
        Some(json!({"data": {"where": "team-a"}})),
    )
    .await
    .unwrap();
    // AppRole inside the namespace: the login goes there too.
    bao.api_as(
        bao.root_token(),
        Some("team-a"),
        "POST",
        "sys/auth/approle",
        Some(json!({"type": "approle"})),
    )
    .await
    .unwrap();
    bao.api_as(
        bao.root_token(),
        Some("team-a"),
        "POST",
        "sys/policies/acl/reader",
        Some(json!({"policy": READ_POLICY})),
    )
    .await
    .unwrap();
    bao.api_as(
        bao.root_token(),
        Some("team-a"),
        "POST",
        "auth/approle/role/app",
        Some(json!({"token_policies": ["reader"]})),
    )
    .await
    .unwrap();
    let role_id = bao
        .api_as(
            bao.root_token(),
            Some("team-a"),
            "GET",
            "auth/approle/role/app/role-id",
            None,
        )
        .await
        .unwrap()["data"]["role_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let secret_id = bao
        .api_as(
            bao.root_token(),
            Some("team-a"),
            "POST",
            "auth/approle/role/app/secret-id",
            Some(json!({})),
        )
        .await
        .unwrap()["data"]["secret_id"]
        .as_str()
        .unwrap()
        .to_owned();

    let mut kube = MemoryKube::new();
    let mut spec = root_spec(&bao, &mut kube);
    spec.namespace = Some("team-a".into());
    let in_ns = client(&VaultProvider::new(), &spec, &kube).await.unwrap();
    assert_eq!(
        json(&get_text(in_ns.as_ref(), "app").await.unwrap()),
        json!({"where": "team-a"})
    );

    kube.add_secret(&secret("approle", &[("secret-id", &secret_id)]));
    let mut by_approle = spec_for(
        &bao,
        VaultAuth::AppRole(VaultAppRole {
            path: None,
            role_id: Some(role_id),
            role_ref: None,
            secret_ref: key_ref("approle", "secret-id"),
        }),
    );
    by_approle.namespace = Some("team-a".into());
    let c = client(&VaultProvider::new(), &by_approle, &kube)
        .await
        .unwrap();
    assert_eq!(
        json(&get_text(c.as_ref(), "app").await.unwrap()),
        json!({"where": "team-a"})
    );

    spec.namespace = None;
    let root_ns = client(&VaultProvider::new(), &spec, &kube).await.unwrap();
    let err = get_text(root_ns.as_ref(), "app").await.unwrap_err();
    assert_eq!(err.reason(), "NotFound", "{err}");
}

#[tokio::test]
async fn extra_and_consistency_headers_are_accepted() {
    let bao = OpenBao::start().await;
    seed(&bao).await;
    let mut kube = MemoryKube::new();
    let mut spec = root_spec(&bao, &mut kube);
    spec.headers = [("X-Team".to_owned(), "payments".to_owned())].into();
    spec.read_your_writes = Some(true);
    spec.forward_inconsistent = Some(true);
    assert_reads(&spec, &kube).await;

    // The token header is the auth method's alone.
    spec.headers = [("X-Vault-Token".to_owned(), "x".to_owned())].into();
    let err = client_err(&VaultProvider::new(), &spec, &kube).await;
    assert_eq!(err.reason(), "InvalidSpec");
    assert!(
        err.to_string().contains("spec.provider.vault.headers"),
        "{err}"
    );
}

/// A ClusterSecretStore's references without a namespace resolve in the namespace of the object
/// using it: each namespace logs in with its own credentials, in its own cache entry.
#[tokio::test]
async fn a_cluster_store_reads_credentials_from_the_using_namespace() {
    use kuvert_core::api::SecretStoreKind;
    use kuvert_core::provider::{Provider, StoreContext};

    let bao = OpenBao::start().await;
    seed(&bao).await;
    let reader = bao.token(&["reader"], json!({})).await;
    let mut kube = MemoryKube::new();
    for (ns, token) in [
        ("team-a", reader.as_str()),
        ("team-b", "s.not-valid-anywhere"),
    ] {
        let mut s = secret("vault-token", &[("token", token)]);
        s.metadata.namespace = Some(ns.into());
        kube.add_secret(&s);
    }
    let spec = spec_for(
        &bao,
        VaultAuth::TokenSecretRef(key_ref("vault-token", "token")),
    );
    let store = StoreContext {
        kind: SecretStoreKind::ClusterSecretStore,
        name: "vault",
        namespace: None,
    };
    let provider = VaultProvider::new();
    provider.validate(&store, &spec).unwrap();

    let a = provider
        .client(&store, &spec, Some("team-a"), &kube)
        .await
        .unwrap();
    assert_eq!(
        json(&get_text(a.as_ref(), "app").await.unwrap()),
        json!({"password": "from-vault"})
    );
    let b = provider
        .client(&store, &spec, Some("team-b"), &kube)
        .await
        .unwrap();
    let err = get_text(b.as_ref(), "app").await.unwrap_err();
    assert_eq!(err.reason(), "Unauthenticated", "{err}");
    assert_eq!(provider.cache().len(), 2);
}
