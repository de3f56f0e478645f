//! `kuvert run` end to end against a real OpenBao server and both API servers: sync,
//! force-sync, periodic refresh, an unreachable store, and Kubernetes auth through the API
//! server's TokenRequest and TokenReview (OpenBao reviews the token with the real
//! kube-apiserver on the control plane).

mod support;

use k8s_openapi::api::authentication::v1::TokenRequest;
use k8s_openapi::api::core::v1::{Secret, ServiceAccount};
use k8s_openapi::api::rbac::v1::ClusterRoleBinding;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kuvert_core::api::{ExternalSecret, SecretStore};
use kuvert_testkit::OpenBao;
use serde_json::json;
use support::{Backend, Cluster, Operator, eventually, ready, yaml};

async fn password(secrets: &Api<Secret>, name: &str) -> Option<String> {
    let secret = secrets.get_opt(name).await.unwrap()?;
    let value = secret.data?.remove("password")?;
    Some(String::from_utf8(value.0).unwrap())
}

fn vault_store(bao: &OpenBao, auth: &str) -> SecretStore {
    yaml(&format!(
        "apiVersion: kuvert.io/v1alpha1\nkind: SecretStore\nmetadata: {{name: vault, namespace: default}}\nspec:\n  provider:\n    vault:\n      server: http://{addr}\n      path: secret\n      auth:\n{auth}\n",
        addr = bao.addr().trim_start_matches("http://"),
    ))
}

fn external_secret(name: &str, interval: &str) -> ExternalSecret {
    yaml(&format!(
        "apiVersion: kuvert.io/v1alpha1\nkind: ExternalSecret\nmetadata: {{name: {name}, namespace: default}}\nspec:\n  refreshInterval: {interval}\n  secretStoreRef: {{name: vault}}\n  data:\n    - secretKey: password\n      remoteRef: {{key: app, property: password}}\n"
    ))
}

async fn vault_values_sync_follow_changes_and_survive_an_outage(backend: Backend) {
    let mut bao = OpenBao::start().await;
    bao.kv2_put("secret", "app", json!({"password": "v1"}))
        .await;
    // The dev server's root token outlives a restart (a created token would not).
    let token = bao.root_token().to_owned();

    let cluster = Cluster::start_on(backend).await;
    let secrets: Api<Secret> = Api::namespaced(cluster.client.clone(), "default");
    let creds: Secret = yaml(&format!(
        "apiVersion: v1\nkind: Secret\nmetadata: {{name: vault-token, namespace: default}}\nstringData: {{token: {token}}}\n"
    ));
    secrets
        .create(&PostParams::default(), &creds)
        .await
        .unwrap();
    Api::<SecretStore>::namespaced(cluster.client.clone(), "default")
        .create(
            &PostParams::default(),
            &vault_store(
                &bao,
                "        tokenSecretRef: {name: vault-token, key: token}",
            ),
        )
        .await
        .unwrap();
    // The 2s refresh below is under the default floor of 10s.
    let operator = Operator::start(&cluster, &["--min-refresh-interval", "1s"]);
    operator.wait_ready().await;
    let ess: Api<ExternalSecret> = Api::namespaced(cluster.client.clone(), "default");
    ess.create(&PostParams::default(), &external_secret("hourly", "1h"))
        .await
        .unwrap();
    ess.create(&PostParams::default(), &external_secret("fast", "2s"))
        .await
        .unwrap();
    eventually("both Secrets to hold v1", || async {
        password(&secrets, "hourly").await.as_deref() == Some("v1")
            && password(&secrets, "fast").await.as_deref() == Some("v1")
    })
    .await;

    // A new version in OpenBao: the 2s refresh picks it up; the hourly one waits for a
    // force-sync.
    bao.kv2_put("secret", "app", json!({"password": "v2"}))
        .await;
    eventually("the periodic refresh to pick up v2", || async {
        password(&secrets, "fast").await.as_deref() == Some("v2")
    })
    .await;
    assert_eq!(password(&secrets, "hourly").await.as_deref(), Some("v1"));
    // ESO users' habit, as the README shows it: kubectl and the unprefixed annotation.
    // Off the runtime thread: devcluster serves kubectl from this very runtime.
    let kubeconfig = cluster.kubeconfig();
    let annotated = tokio::task::spawn_blocking(move || {
        std::process::Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .args([
                "annotate",
                "es",
                "hourly",
                "force-sync=1764300000",
                "--overwrite",
            ])
            .output()
            .expect("kubectl (scripts/install-test-deps.sh installs it)")
    })
    .await
    .unwrap();
    assert!(
        annotated.status.success(),
        "{}",
        String::from_utf8_lossy(&annotated.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&annotated.stdout).trim(),
        "externalsecret.kuvert.io/hourly annotated"
    );
    eventually("the force-sync to pick up v2", || async {
        password(&secrets, "hourly").await.as_deref() == Some("v2")
    })
    .await;

    // OpenBao goes away: the refreshing ExternalSecret fails as Unavailable, its Secret stays.
    bao.stop().await;
    eventually("Ready=False while OpenBao is down", || async {
        ready(&ess, "fast").await == Some(("False".into(), "Unavailable".into()))
    })
    .await;
    assert_eq!(password(&secrets, "fast").await.as_deref(), Some("v2"));

    // It comes back (empty, as a dev server does, and is seeded again): the operator recovers
    // on its own.
    bao.start_again().await;
    bao.kv2_put("secret", "app", json!({"password": "v3"}))
        .await;
    eventually("recovery after OpenBao is back", || async {
        ready(&ess, "fast").await == Some(("True".into(), "SecretSynced".into()))
            && password(&secrets, "fast").await.as_deref() == Some("v3")
    })
    .await;
}

/// A broken Vault policy makes reads `Forbidden`; restoring it, with nothing touched in the
/// cluster, brings the ExternalSecret back by itself (refused reads are retried from 10 s on,
/// never given up).
async fn a_forbidden_read_recovers_by_itself_once_the_policy_is_restored(backend: Backend) {
    let bao = OpenBao::start().await;
    bao.kv2_put("secret", "app", json!({"password": "v1"}))
        .await;
    let read_app = r#"path "secret/*" { capabilities = ["read", "list"] }"#;
    bao.policy("read-app", read_app).await;
    let token = bao.token(&["read-app"], json!({"ttl": "1h"})).await;
    let cluster = Cluster::start_on(backend).await;
    let secrets: Api<Secret> = Api::namespaced(cluster.client.clone(), "default");
    secrets
        .create(
            &PostParams::default(),
            &kuvert_testkit::string_secret("default", "vault-token", &[("token", &token)]),
        )
        .await
        .unwrap();
    Api::<SecretStore>::namespaced(cluster.client.clone(), "default")
        .create(
            &PostParams::default(),
            &vault_store(
                &bao,
                "        tokenSecretRef: {name: vault-token, key: token}",
            ),
        )
        .await
        .unwrap();
    let operator = Operator::start(&cluster, &[]);
    operator.wait_ready().await;
    let ess: Api<ExternalSecret> = Api::namespaced(cluster.client.clone(), "default");
    ess.create(&PostParams::default(), &external_secret("app", "1h"))
        .await
        .unwrap();
    eventually("the Secret", || async {
        password(&secrets, "app").await.as_deref() == Some("v1")
    })
    .await;

    // The policy loses the path; a force-sync reads and is refused.
    bao.policy("read-app", r#"path "other/*" { capabilities = ["read"] }"#)
        .await;
    bao.kv2_put("secret", "app", json!({"password": "v2"}))
        .await;
    let annotate = serde_json::json!({"metadata": {"annotations": {"force-sync": "1"}}});
    ess.patch("app", &PatchParams::default(), &Patch::Merge(&annotate))
        .await
        .unwrap();
    eventually("Ready=False Forbidden", || async {
        ready(&ess, "app").await == Some(("False".into(), "Forbidden".into()))
    })
    .await;
    assert_eq!(password(&secrets, "app").await.as_deref(), Some("v1"));

    // The policy is restored; nothing in the cluster changes.
    bao.policy("read-app", read_app).await;
    eventually("recovery without a touch", || async {
        ready(&ess, "app").await == Some(("True".into(), "SecretSynced".into()))
            && password(&secrets, "app").await.as_deref() == Some("v2")
    })
    .await;
}

async fn kubernetes_auth_logs_in_with_a_service_account_token_the_api_server_reviews(
    backend: Backend,
) {
    let cluster = Cluster::start_on(backend).await;
    let bao = OpenBao::start().await;
    bao.kv2_put("secret", "app", json!({"password": "via-k8s-auth"}))
        .await;
    bao.policy(
        "read-app",
        r#"path "secret/*" { capabilities = ["read", "list"] }"#,
    )
    .await;

    // OpenBao reviews tokens with a reviewer ServiceAccount's token, as in a real cluster.
    let sas: Api<ServiceAccount> = Api::namespaced(cluster.client.clone(), "default");
    for name in ["vault-reviewer", "app"] {
        sas.create(
            &PostParams::default(),
            &yaml(&format!("metadata: {{name: {name}}}")),
        )
        .await
        .unwrap();
    }
    // A reviewer needs `system:auth-delegator` to create TokenReviews on a cluster with RBAC
    // (devcluster has no authorization).
    if backend == Backend::ControlPlane {
        let binding: ClusterRoleBinding = yaml(
            "metadata: {name: vault-reviewer}\nroleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: system:auth-delegator}\nsubjects: [{kind: ServiceAccount, name: vault-reviewer, namespace: default}]\n",
        );
        Api::<ClusterRoleBinding>::all(cluster.client.clone())
            .create(&PostParams::default(), &binding)
            .await
            .unwrap();
    }
    let request: TokenRequest = yaml("spec: {expirationSeconds: 3600}");
    let reviewer = sas
        .create_token_request("vault-reviewer", &PostParams::default(), &request)
        .await
        .unwrap()
        .status
        .unwrap()
        .token
        .unwrap();
    bao.enable_auth("kubernetes", "kubernetes").await;
    bao.write(
        "auth/kubernetes/config",
        json!({
            "kubernetes_host": cluster.url(),
            "kubernetes_ca_cert": cluster.ca_pem(),
            "token_reviewer_jwt": reviewer,
        }),
    )
    .await;
    bao.write(
        "auth/kubernetes/role/app",
        json!({
            "bound_service_account_names": ["app"],
            "bound_service_account_namespaces": ["default"],
            "audience": "vault",
            "token_policies": ["read-app"],
            "token_ttl": "10m",
        }),
    )
    .await;

    Api::<SecretStore>::namespaced(cluster.client.clone(), "default")
        .create(
            &PostParams::default(),
            &vault_store(
                &bao,
                "        kubernetes:\n          role: app\n          serviceAccountRef: {name: app, audiences: [vault]}",
            ),
        )
        .await
        .unwrap();
    let operator = Operator::start(&cluster, &[]);
    operator.wait_ready().await;
    let ess: Api<ExternalSecret> = Api::namespaced(cluster.client.clone(), "default");
    ess.create(&PostParams::default(), &external_secret("k8s-auth", "1h"))
        .await
        .unwrap();
    let secrets: Api<Secret> = Api::namespaced(cluster.client.clone(), "default");
    eventually("the Secret read through Kubernetes auth", || async {
        password(&secrets, "k8s-auth").await.as_deref() == Some("via-k8s-auth")
    })
    .await;
    // The reviewer's token and the operator's request for `app` (devcluster counts requests).
    if backend == Backend::DevCluster {
        assert_eq!(
            cluster
                .dev()
                .request_count("create", "serviceaccounts/token"),
            2
        );
    }
}

/// An AppRole `kuvert` whose tokens may read `secret/*`; returns its role id.
async fn approle_reader(bao: &OpenBao) -> String {
    bao.policy(
        "read-app",
        r#"path "secret/*" { capabilities = ["read", "list"] }"#,
    )
    .await;
    bao.enable_auth("approle", "approle").await;
    bao.write(
        "auth/approle/role/kuvert",
        json!({"token_policies": ["read-app"]}),
    )
    .await;
    bao.read("auth/approle/role/kuvert/role-id").await["data"]["role_id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// A new secret id of the AppRole `kuvert`.
async fn new_secret_id(bao: &OpenBao) -> String {
    bao.write("auth/approle/role/kuvert/secret-id", json!({}))
        .await["data"]["secret_id"]
        .as_str()
        .unwrap()
        .to_owned()
}

// Multi-threaded: `terminate` blocks its thread while kuvert, shutting down, may still talk
// to devcluster, which this runtime serves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approle_login_is_shared_and_revoked_when_the_operator_stops() {
    let bao = OpenBao::start().await;
    bao.kv2_put("secret", "app", json!({"password": "via-approle"}))
        .await;
    let role_id = approle_reader(&bao).await;
    let secret_id = new_secret_id(&bao).await;
    let before = bao.token_accessor_count().await;

    let cluster = Cluster::start().await;
    let secrets: Api<Secret> = Api::namespaced(cluster.client.clone(), "default");
    let creds: Secret = yaml(&format!(
        "apiVersion: v1\nkind: Secret\nmetadata: {{name: approle, namespace: default}}\nstringData: {{secret-id: {secret_id}}}\n"
    ));
    secrets
        .create(&PostParams::default(), &creds)
        .await
        .unwrap();
    Api::<SecretStore>::namespaced(cluster.client.clone(), "default")
        .create(
            &PostParams::default(),
            &vault_store(
                &bao,
                &format!(
                    "        appRole:\n          roleId: {role_id}\n          secretRef: {{name: approle, key: secret-id}}"
                ),
            ),
        )
        .await
        .unwrap();
    let mut operator = Operator::start(&cluster, &[]);
    operator.wait_ready().await;
    let ess: Api<ExternalSecret> = Api::namespaced(cluster.client.clone(), "default");
    for name in ["one", "two", "three"] {
        ess.create(&PostParams::default(), &external_secret(name, "1h"))
            .await
            .unwrap();
    }
    eventually("all three Secrets", || async {
        let mut all = true;
        for name in ["one", "two", "three"] {
            all &= password(&secrets, name).await.as_deref() == Some("via-approle");
        }
        all
    })
    .await;
    // The store check and three ExternalSecrets share one login.
    assert_eq!(bao.token_accessor_count().await, before + 1);
    assert_eq!(operator.terminate(), Some(0));
    assert_eq!(
        bao.token_accessor_count().await,
        before,
        "the login was revoked on exit"
    );
}

/// Waits at most `bound` for `check`; the bound is the behaviour under test.
async fn within<F, Fut>(bound: std::time::Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + bound;
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "not within {bound:?}: {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// The AppRole secret-id is rotated in OpenBao (the old one destroyed, its tokens revoked): the
/// ExternalSecret turns Ready=False `Unauthenticated` and its Secret is untouched. Writing the
/// new secret-id into the Secret the store references brings it back by itself within 5 s,
/// although its retry is 8 s or more away: the change wakes the store's users.
async fn a_rotated_approle_secret_id_written_into_its_secret_recovers_within_seconds(
    backend: Backend,
) {
    let bao = OpenBao::start().await;
    bao.kv2_put("secret", "app", json!({"password": "v1"}))
        .await;
    let role_id = approle_reader(&bao).await;
    let old = new_secret_id(&bao).await;
    let cluster = Cluster::start_on(backend).await;
    let secrets: Api<Secret> = Api::namespaced(cluster.client.clone(), "default");
    secrets
        .create(
            &PostParams::default(),
            &kuvert_testkit::string_secret("default", "approle", &[("secret-id", &old)]),
        )
        .await
        .unwrap();
    Api::<SecretStore>::namespaced(cluster.client.clone(), "default")
        .create(
            &PostParams::default(),
            &vault_store(
                &bao,
                &format!(
                    "        appRole:\n          roleId: {role_id}\n          secretRef: {{name: approle, key: secret-id}}"
                ),
            ),
        )
        .await
        .unwrap();
    let operator = Operator::start(&cluster, &[]);
    operator.wait_ready().await;
    let ess: Api<ExternalSecret> = Api::namespaced(cluster.client.clone(), "default");
    ess.create(&PostParams::default(), &external_secret("app", "1h"))
        .await
        .unwrap();
    eventually("the Secret", || async {
        password(&secrets, "app").await.as_deref() == Some("v1")
    })
    .await;

    // Rotation in OpenBao: a new secret-id, the old one destroyed, its logins revoked.
    let new = new_secret_id(&bao).await;
    bao.write(
        "auth/approle/role/kuvert/secret-id/destroy",
        json!({"secret_id": old}),
    )
    .await;
    bao.write("sys/leases/revoke-prefix/auth/approle/login", json!({}))
        .await;
    bao.kv2_put("secret", "app", json!({"password": "v2"}))
        .await;
    let annotate = json!({"metadata": {"annotations": {"force-sync": "1"}}});
    ess.patch("app", &PatchParams::default(), &Patch::Merge(&annotate))
        .await
        .unwrap();
    eventually("Ready=False Unauthenticated", || async {
        ready(&ess, "app").await == Some(("False".into(), "Unauthenticated".into()))
    })
    .await;
    assert_eq!(password(&secrets, "app").await.as_deref(), Some("v1"));

    // The new secret-id reaches the Kubernetes Secret; nothing else is touched.
    let rotate = json!({"stringData": {"secret-id": new}});
    secrets
        .patch("approle", &PatchParams::default(), &Patch::Merge(&rotate))
        .await
        .unwrap();
    within(
        std::time::Duration::from_secs(5),
        "Ready again with the new value",
        || async {
            ready(&ess, "app").await == Some(("True".into(), "SecretSynced".into()))
                && password(&secrets, "app").await.as_deref() == Some("v2")
        },
    )
    .await;
}

/// AppRole logins OpenBao logged (request lines of `auth/approle/login`).
fn approle_logins(bao: &OpenBao) -> usize {
    std::fs::read_to_string(bao.audit_log())
        .unwrap_or_default()
        .lines()
        .filter(|line| line.ends_with('}'))
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|e| e["type"] == "request" && e["request"]["path"] == "auth/approle/login")
        .count()
}

/// Twenty ExternalSecrets on an AppRole store whose secret-id is destroyed in OpenBao (a
/// rotation, their tokens revoked), all force-synced at once: they share one failed login per
/// backoff step (10 s, 20 s, ...), counted in OpenBao's audit log — fewer than the 5 failures
/// after which OpenBao locks the role out (refusing even the new secret-id for 15 minutes).
/// Writing the new secret-id into the Secret then brings all twenty back.
async fn a_refused_approle_login_is_tried_once_per_step_for_all_its_external_secrets(
    backend: Backend,
) {
    const COUNT: usize = 20;
    let bao = OpenBao::start_audited().await;
    bao.kv2_put("secret", "app", json!({"password": "v1"}))
        .await;
    let role_id = approle_reader(&bao).await;
    let old = new_secret_id(&bao).await;
    let cluster = Cluster::start_on(backend).await;
    let secrets: Api<Secret> = Api::namespaced(cluster.client.clone(), "default");
    secrets
        .create(
            &PostParams::default(),
            &kuvert_testkit::string_secret("default", "approle", &[("secret-id", &old)]),
        )
        .await
        .unwrap();
    Api::<SecretStore>::namespaced(cluster.client.clone(), "default")
        .create(
            &PostParams::default(),
            &vault_store(
                &bao,
                &format!(
                    "        appRole:\n          roleId: {role_id}\n          secretRef: {{name: approle, key: secret-id}}"
                ),
            ),
        )
        .await
        .unwrap();
    let operator = Operator::start(&cluster, &[]);
    operator.wait_ready().await;
    let ess: Api<ExternalSecret> = Api::namespaced(cluster.client.clone(), "default");
    let names: Vec<String> = (0..COUNT).map(|i| format!("app-{i}")).collect();
    for name in &names {
        ess.create(&PostParams::default(), &external_secret(name, "1h"))
            .await
            .unwrap();
    }
    let all = |want: (&'static str, &'static str)| {
        let (ess, names) = (ess.clone(), names.clone());
        async move {
            for name in &names {
                if ready(&ess, name).await != Some((want.0.to_owned(), want.1.to_owned())) {
                    return false;
                }
            }
            true
        }
    };
    eventually("every ExternalSecret synced", || {
        all(("True", "SecretSynced"))
    })
    .await;
    let before = approle_logins(&bao);

    // Rotation in OpenBao; every ExternalSecret is force-synced at once.
    let new = new_secret_id(&bao).await;
    bao.write(
        "auth/approle/role/kuvert/secret-id/destroy",
        json!({"secret_id": old}),
    )
    .await;
    bao.write("sys/leases/revoke-prefix/auth/approle/login", json!({}))
        .await;
    bao.kv2_put("secret", "app", json!({"password": "v2"}))
        .await;
    let annotate = json!({"metadata": {"annotations": {"force-sync": "1"}}});
    for name in &names {
        ess.patch(name, &PatchParams::default(), &Patch::Merge(&annotate))
            .await
            .unwrap();
    }
    eventually("every ExternalSecret Ready=False Unauthenticated", || {
        all(("False", "Unauthenticated"))
    })
    .await;
    // Their retries come 10 s and more later, each on its own backoff; the login is tried
    // once per step of the store's connection, whoever asks.
    tokio::time::sleep(std::time::Duration::from_secs(25)).await;
    let refused = approle_logins(&bao) - before;
    eprintln!("measured: {refused} failed AppRole logins in 25 s for {COUNT} ExternalSecrets");
    assert!(
        (1..=3).contains(&refused),
        "{refused} failed AppRole logins for {COUNT} ExternalSecrets: OpenBao locks the role at 5"
    );

    let rotate = json!({"stringData": {"secret-id": new}});
    secrets
        .patch("approle", &PatchParams::default(), &Patch::Merge(&rotate))
        .await
        .unwrap();
    eventually("every ExternalSecret Ready again", || {
        all(("True", "SecretSynced"))
    })
    .await;
    for name in &names {
        assert_eq!(password(&secrets, name).await.as_deref(), Some("v2"));
    }
}

/// OpenBao sealed (every request answered 503 "Vault is sealed"): a refreshing ExternalSecret
/// turns Ready=False `Unavailable` naming the seal, its Secret untouched; unsealed (data and
/// tokens kept), it is Ready again by itself.
async fn a_sealed_store_is_unavailable_and_recovers_by_itself_once_unsealed(backend: Backend) {
    let bao = OpenBao::start().await;
    bao.kv2_put("secret", "app", json!({"password": "v1"}))
        .await;
    let cluster = Cluster::start_on(backend).await;
    let secrets: Api<Secret> = Api::namespaced(cluster.client.clone(), "default");
    secrets
        .create(
            &PostParams::default(),
            &kuvert_testkit::string_secret(
                "default",
                "vault-token",
                &[("token", bao.root_token())],
            ),
        )
        .await
        .unwrap();
    Api::<SecretStore>::namespaced(cluster.client.clone(), "default")
        .create(
            &PostParams::default(),
            &vault_store(
                &bao,
                "        tokenSecretRef: {name: vault-token, key: token}",
            ),
        )
        .await
        .unwrap();
    let operator = Operator::start(&cluster, &["--min-refresh-interval", "1s"]);
    operator.wait_ready().await;
    let ess: Api<ExternalSecret> = Api::namespaced(cluster.client.clone(), "default");
    ess.create(&PostParams::default(), &external_secret("app", "1s"))
        .await
        .unwrap();
    eventually("the Secret", || async {
        password(&secrets, "app").await.as_deref() == Some("v1")
    })
    .await;
    let written = secrets.get("app").await.unwrap().metadata.resource_version;

    bao.seal().await;
    eventually("Ready=False Unavailable while sealed", || async {
        ready(&ess, "app").await == Some(("False".into(), "Unavailable".into()))
    })
    .await;
    let status = ess.get("app").await.unwrap().status.unwrap();
    let message = &kuvert_core::conditions::find_ready(&status.conditions)
        .unwrap()
        .message;
    assert!(message.contains("Vault is sealed"), "{message}");
    assert_eq!(
        secrets.get("app").await.unwrap().metadata.resource_version,
        written,
        "the Secret is untouched"
    );

    bao.unseal().await;
    bao.kv2_put("secret", "app", json!({"password": "v2"}))
        .await;
    eventually("Ready again by itself, with the new value", || async {
        ready(&ess, "app").await == Some(("True".into(), "SecretSynced".into()))
            && password(&secrets, "app").await.as_deref() == Some("v2")
    })
    .await;
}

/// The Ready condition of the SecretStore `vault`: its status and reason.
async fn store_ready(stores: &Api<SecretStore>) -> Option<(String, String)> {
    let status = stores.get("vault").await.unwrap().status?;
    let c = kuvert_core::conditions::find_ready(&status.conditions)?;
    Some((c.status.clone(), c.reason.clone()))
}

/// OpenBao stops: the store (re-validated only hourly by itself) turns Ready=False
/// `Unavailable` as soon as its ExternalSecret finds it unreachable, and when OpenBao is back
/// both the store and the ExternalSecret are Ready again by themselves.
async fn a_store_found_down_by_its_external_secrets_says_so_and_recovers(backend: Backend) {
    let mut bao = OpenBao::start().await;
    bao.kv2_put("secret", "app", json!({"password": "v1"}))
        .await;
    let token = bao.root_token().to_owned();
    let cluster = Cluster::start_on(backend).await;
    let secrets: Api<Secret> = Api::namespaced(cluster.client.clone(), "default");
    secrets
        .create(
            &PostParams::default(),
            &kuvert_testkit::string_secret("default", "vault-token", &[("token", &token)]),
        )
        .await
        .unwrap();
    let mut store = vault_store(
        &bao,
        "        tokenSecretRef: {name: vault-token, key: token}",
    );
    store.spec.refresh_interval = Some(3600);
    let stores: Api<SecretStore> = Api::namespaced(cluster.client.clone(), "default");
    stores.create(&PostParams::default(), &store).await.unwrap();
    let operator = Operator::start(&cluster, &["--min-refresh-interval", "1s"]);
    operator.wait_ready().await;
    let ess: Api<ExternalSecret> = Api::namespaced(cluster.client.clone(), "default");
    ess.create(&PostParams::default(), &external_secret("app", "1s"))
        .await
        .unwrap();
    eventually("the Secret and a Ready store", || async {
        password(&secrets, "app").await.as_deref() == Some("v1")
            && store_ready(&stores).await == Some(("True".into(), "Valid".into()))
    })
    .await;

    bao.stop().await;
    eventually("the store Ready=False Unavailable", || async {
        store_ready(&stores).await == Some(("False".into(), "Unavailable".into()))
    })
    .await;
    assert_eq!(
        ready(&ess, "app").await,
        Some(("False".into(), "Unavailable".into()))
    );
    assert_eq!(password(&secrets, "app").await.as_deref(), Some("v1"));

    bao.start_again().await;
    bao.kv2_put("secret", "app", json!({"password": "v2"}))
        .await;
    eventually("both Ready again by themselves", || async {
        store_ready(&stores).await == Some(("True".into(), "Valid".into()))
            && ready(&ess, "app").await == Some(("True".into(), "SecretSynced".into()))
            && password(&secrets, "app").await.as_deref() == Some("v2")
    })
    .await;
}

on_both_backends!(
    vault_values_sync_follow_changes_and_survive_an_outage,
    a_forbidden_read_recovers_by_itself_once_the_policy_is_restored,
    a_rotated_approle_secret_id_written_into_its_secret_recovers_within_seconds,
    a_refused_approle_login_is_tried_once_per_step_for_all_its_external_secrets,
    a_sealed_store_is_unavailable_and_recovers_by_itself_once_unsealed,
    a_store_found_down_by_its_external_secrets_says_so_and_recovers,
    kubernetes_auth_logs_in_with_a_service_account_token_the_api_server_reviews,
);
