//! PushSecrets through `kuvert run` on both API servers. Against a real OpenBao: a Secret's
//! keys pushed to Vault (one property at a time, and the whole Secret as one JSON object),
//! pushed again when the Secret changes, merged into the remote map keeping properties others
//! added; a remote secret written by someone else left untouched (`Conflict`, naming the key);
//! `IfNotExists` writing once; a missing source Secret (`SecretNotFound`) pushed once it
//! appears; `deletionPolicy: Delete` removing a dropped entry and, through
//! the finalizer, everything on deletion, and `None` leaving what it pushed. With the
//! kubernetes provider, into a second cluster: a whole Secret and a property pushed, marked
//! as kuvert's, a foreign Secret refused, a remote key kept, all taken back on deletion.
//! Also: the force-sync annotation pushing again at once; `labelSelector` store refs; KV v1
//! stores through `kuvert run`; OpenBao stopped (`StoreNotReady`) and back, with the Events of
//! each `Ready` transition.

mod support;

use std::collections::BTreeMap;

use base64::Engine as _;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use kuvert_core::api::{PushSecret, SecretStore};
use kuvert_testkit::OpenBao;
use serde_json::{Value, json};
use support::{Backend, Cluster, Operator, RemoteCluster, eventually, yaml};

/// The data of `secret/<path>`, or `None` when there is no such secret.
async fn remote(bao: &OpenBao, path: &str) -> Option<Value> {
    bao.api_as(
        bao.root_token(),
        None,
        "GET",
        &format!("secret/data/{path}"),
        None,
    )
    .await
    .ok()
    .map(|v| v["data"]["data"].clone())
}

fn push_secret(name: &str, store: &str, extra: &str, data: &str) -> PushSecret {
    yaml(&format!(
        "apiVersion: kuvert.io/v1alpha1\nkind: PushSecret\nmetadata: {{name: {name}, namespace: default}}\nspec:\n  refreshInterval: 1h\n  secretStoreRefs: [{{name: {store}}}]\n  selector: {{secret: {{name: db}}}}\n{extra}  data:\n{data}"
    ))
}

/// `(status, reason, message)` of the `Ready` condition.
async fn ready(api: &Api<PushSecret>, name: &str) -> Option<(String, String, String)> {
    let ps = api.get_opt(name).await.unwrap()?;
    let c = ps
        .status?
        .conditions
        .into_iter()
        .find(|c| c.type_ == "Ready")?;
    Some((c.status, c.reason, c.message))
}

/// Waits until PushSecret `name`'s `Ready` condition has `status`.
async fn until_ready(pss: &Api<PushSecret>, name: &str, status: &str) {
    eventually(&format!("{name} Ready={status}"), || async {
        ready(pss, name).await.is_some_and(|(s, _, _)| s == status)
    })
    .await;
}

async fn set_password(secrets: &Api<Secret>, password: &str) {
    secrets
        .patch(
            "db",
            &PatchParams::default(),
            &Patch::Merge(json!({"stringData": {"password": password}})),
        )
        .await
        .unwrap();
}

/// OpenBao with `secret/theirs` written by someone else; a cluster with the Secret `db`
/// (`password: p1`, `user: app`) and a SecretStore `vault` logged in with the root token; kuvert
/// running.
async fn vault_and_cluster(backend: Backend) -> (OpenBao, Cluster, Operator) {
    let bao = OpenBao::start().await;
    bao.kv2_put("secret", "theirs", json!({"password": "not-kuverts"}))
        .await;
    let cluster = Cluster::start_on(backend).await;
    let client = cluster.client.clone();
    let secrets: Api<Secret> = Api::namespaced(client.clone(), "default");
    let token = bao.root_token().to_owned();
    for manifest in [
        format!(
            "apiVersion: v1\nkind: Secret\nmetadata: {{name: vault-token, namespace: default}}\nstringData: {{token: {token}}}\n"
        ),
        "apiVersion: v1\nkind: Secret\nmetadata: {name: db, namespace: default}\nstringData: {password: p1, user: app}\n".to_owned(),
    ] {
        secrets
            .create(&PostParams::default(), &yaml(&manifest))
            .await
            .unwrap();
    }
    let store: SecretStore = yaml(&format!(
        "apiVersion: kuvert.io/v1alpha1\nkind: SecretStore\nmetadata: {{name: vault, namespace: default}}\nspec:\n  provider:\n    vault:\n      server: {addr}\n      path: secret\n      auth: {{tokenSecretRef: {{name: vault-token, key: token}}}}\n",
        addr = bao.addr(),
    ));
    Api::<SecretStore>::namespaced(client.clone(), "default")
        .create(&PostParams::default(), &store)
        .await
        .unwrap();
    let operator = Operator::start(&cluster, &[]);
    operator.wait_ready().await;
    (bao, cluster, operator)
}

async fn secrets_are_pushed_kept_in_step_and_taken_back(backend: Backend) {
    let (bao, cluster, operator) = vault_and_cluster(backend).await;
    let client = cluster.client.clone();
    let secrets: Api<Secret> = Api::namespaced(client.clone(), "default");

    let pss: Api<PushSecret> = Api::namespaced(client.clone(), "default");
    let main = push_secret(
        "main",
        "vault",
        "  deletionPolicy: Delete\n",
        "    - match: {secretKey: password, remoteRef: {remoteKey: app/db, property: password}}\n    - match: {secretKey: user, remoteRef: {remoteKey: app/db, property: user}}\n    - match: {remoteRef: {remoteKey: app/all}}\n",
    );
    pss.create(&PostParams::default(), &main).await.unwrap();
    let conflict = push_secret(
        "conflict",
        "vault",
        "",
        "    - match: {secretKey: password, remoteRef: {remoteKey: theirs, property: password}}\n",
    );
    pss.create(&PostParams::default(), &conflict).await.unwrap();
    let once = push_secret(
        "once",
        "vault",
        "  updatePolicy: IfNotExists\n  deletionPolicy: None\n",
        "    - match: {secretKey: password, remoteRef: {remoteKey: app/once, property: password}}\n",
    );
    pss.create(&PostParams::default(), &once).await.unwrap();

    until_ready(&pss, "main", "True").await;
    assert_eq!(
        ready(&pss, "main").await.unwrap(),
        (
            "True".to_owned(),
            "Synced".to_owned(),
            "3 remote secrets pushed to 1 store".to_owned()
        )
    );
    assert_eq!(
        remote(&bao, "app/db").await,
        Some(json!({"password": "p1", "user": "app"}))
    );
    assert_eq!(
        remote(&bao, "app/all").await,
        Some(json!({"password": "p1", "user": "app"}))
    );
    let custom = bao.read("secret/metadata/app/db").await["data"]["custom_metadata"].clone();
    assert_eq!(custom["kuvert-owner"], json!("default/main"), "{custom}");
    let status = pss.get("main").await.unwrap().status.unwrap();
    let keys: Vec<&String> = status.synced_push_secrets["SecretStore/default/vault"]
        .keys()
        .collect();
    assert_eq!(keys, ["app/all", "app/db/password", "app/db/user"]);
    assert!(
        !serde_json::to_string(&status).unwrap().contains("p1"),
        "no value in the status"
    );

    // Someone else's secret: Conflict naming the key, and nothing overwritten.
    eventually("conflict reported", || async {
        ready(&pss, "conflict")
            .await
            .is_some_and(|(s, r, _)| s == "False" && r == "Conflict")
    })
    .await;
    // Pushes are counted like syncs: the successful ones and the refused one by its reason.
    let metrics = operator.get("/metrics").await.1;
    let count = |name: &str, labels: &[(&str, &str)]| support::metric_sum(&metrics, name, labels);
    assert!(
        count(
            "kuvert_sync_total",
            &[("kind", "PushSecret"), ("result", "success")]
        ) >= 1.0,
        "{metrics}"
    );
    assert!(
        count(
            "kuvert_sync_errors_total",
            &[("kind", "PushSecret"), ("reason", "Conflict")]
        ) >= 1.0,
        "{metrics}"
    );
    let (_, _, message) = ready(&pss, "conflict").await.unwrap();
    assert!(
        message.starts_with("SecretStore/default/vault: pushing \"theirs/password\": conflict: ")
            && message.contains("not managed by kuvert"),
        "{message}"
    );
    assert_eq!(
        remote(&bao, "theirs").await,
        Some(json!({"password": "not-kuverts"}))
    );
    eventually("once pushed", || async {
        remote(&bao, "app/once").await.is_some()
    })
    .await;
    assert_eq!(
        remote(&bao, "app/once").await,
        Some(json!({"password": "p1"}))
    );

    // Someone adds a property to kuvert's secret; a changed source Secret is pushed again at
    // once (the refresh is an hour away), merged into the remote map.
    let current = remote(&bao, "app/db").await.unwrap();
    let mut with_extra = current.clone();
    with_extra["extra"] = json!("kept");
    bao.kv2_put("secret", "app/db", with_extra).await;
    set_password(&secrets, "p2").await;
    eventually("p2 pushed", || async {
        remote(&bao, "app/db").await
            == Some(json!({"password": "p2", "user": "app", "extra": "kept"}))
    })
    .await;
    eventually("the whole Secret pushed again", || async {
        remote(&bao, "app/all").await == Some(json!({"password": "p2", "user": "app"}))
    })
    .await;
    assert_eq!(
        remote(&bao, "app/once").await,
        Some(json!({"password": "p1"})),
        "IfNotExists never overwrites"
    );

    // A source Secret that does not exist yet: SecretNotFound, then pushed when it appears
    // (the read was recorded as missing, so its creation wakes the PushSecret).
    let mut late = push_secret(
        "late",
        "vault",
        "",
        "    - match: {secretKey: token, remoteRef: {remoteKey: app/late, property: token}}\n",
    );
    late.spec.selector = yaml("secret: {name: not-yet}");
    pss.create(&PostParams::default(), &late).await.unwrap();
    eventually("late waits for its Secret", || async {
        ready(&pss, "late").await
            == Some((
                "False".to_owned(),
                "SecretNotFound".to_owned(),
                "Secret default/not-yet not found".to_owned(),
            ))
    })
    .await;
    secrets
        .create(
            &PostParams::default(),
            &yaml("metadata: {name: not-yet, namespace: default}\nstringData: {token: t1}\n"),
        )
        .await
        .unwrap();
    eventually("late pushed once its Secret exists", || async {
        remote(&bao, "app/late").await == Some(json!({"token": "t1"}))
    })
    .await;

    // An entry dropped with deletionPolicy Delete: its property goes, the others stay.
    let mut edited = pss.get("main").await.unwrap();
    edited.spec.data.remove(1);
    pss.replace("main", &PostParams::default(), &edited)
        .await
        .unwrap();
    eventually("user property removed", || async {
        remote(&bao, "app/db").await == Some(json!({"password": "p2", "extra": "kept"}))
    })
    .await;

    // Deleted: Delete takes back what it pushed and only that (the property someone else added
    // stays; the finalizer holds the object until then), None leaves it, and the conflicting secret is still untouched.
    let main = pss.get("main").await.unwrap();
    assert_eq!(main.finalizers(), ["kuvert.io/push-secret"]);
    for name in ["main", "once", "conflict", "late"] {
        pss.delete(name, &DeleteParams::default()).await.unwrap();
    }
    eventually("main's remote secrets deleted and main gone", || async {
        remote(&bao, "app/db").await == Some(json!({"extra": "kept"}))
            && remote(&bao, "app/all").await.is_none()
            && pss.get_opt("main").await.unwrap().is_none()
    })
    .await;
    assert_eq!(
        remote(&bao, "app/once").await,
        Some(json!({"password": "p1"}))
    );
    assert_eq!(
        remote(&bao, "theirs").await,
        Some(json!({"password": "not-kuverts"}))
    );
}

on_both_backends!(secrets_are_pushed_kept_in_step_and_taken_back);

async fn a_generators_password_is_pushed_once_and_kept(backend: Backend) {
    let (bao, cluster, _operator) = vault_and_cluster(backend).await;
    let client = cluster.client.clone();
    let kind = kuvert_core::generator::Kind::Password;
    let generators: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), "default", &kind.api_resource());
    generators
        .create(
            &PostParams::default(),
            &yaml("apiVersion: generators.kuvert.io/v1alpha1\nkind: Password\nmetadata: {name: pw, namespace: default}\nspec: {length: 24}\n"),
        )
        .await
        .unwrap();
    let pss: Api<PushSecret> = Api::namespaced(client.clone(), "default");
    let generated: PushSecret = yaml(
        "apiVersion: kuvert.io/v1alpha1\nkind: PushSecret\nmetadata: {name: generated, namespace: default}\nspec:\n  secretStoreRefs: [{name: vault}]\n  selector: {generatorRef: {kind: Password, name: pw}}\n  data:\n    - match: {secretKey: password, remoteRef: {remoteKey: gen/one, property: password}}\n",
    );
    pss.create(&PostParams::default(), &generated)
        .await
        .unwrap();
    until_ready(&pss, "generated", "True").await;
    let first = remote(&bao, "gen/one").await.unwrap()["password"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(first.len(), 24);
    let companion = Api::<Secret>::namespaced(client.clone(), "default")
        .get("generated.kuvert-push-generated")
        .await
        .unwrap();
    assert_eq!(
        companion.owner_references()[0].uid,
        pss.get("generated").await.unwrap().uid().unwrap()
    );

    // A spec change reconciles again: the kept password is pushed, not a new one.
    let mut edited = pss.get("generated").await.unwrap();
    edited.spec.data.push(yaml(
        "match: {secretKey: password, remoteRef: {remoteKey: gen/two, property: password}}",
    ));
    pss.replace("generated", &PostParams::default(), &edited)
        .await
        .unwrap();
    eventually("the second remote key written", || async {
        remote(&bao, "gen/two").await.is_some()
    })
    .await;
    assert_eq!(
        remote(&bao, "gen/two").await,
        Some(json!({"password": first}))
    );
    assert_eq!(
        remote(&bao, "gen/one").await,
        Some(json!({"password": first}))
    );
}

on_both_backends!(a_generators_password_is_pushed_once_and_kept);

/// The remote cluster's Secret `remote/name` as text, with its annotations; `None`: absent.
async fn remote_secret(
    api: &Api<Secret>,
    name: &str,
) -> Option<(BTreeMap<String, String>, BTreeMap<String, String>)> {
    let secret = api.get_opt(name).await.unwrap()?;
    let data = secret
        .data
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, String::from_utf8(v.0).unwrap()))
        .collect();
    Some((data, secret.metadata.annotations.unwrap_or_default()))
}

async fn remote_data(api: &Api<Secret>, name: &str) -> Option<BTreeMap<String, String>> {
    remote_secret(api, name).await.map(|(data, _)| data)
}

fn text_map(pairs: &[(&str, &str)]) -> Option<BTreeMap<String, String>> {
    Some(
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
    )
}

async fn secrets_are_pushed_to_another_cluster(backend: Backend) {
    let remote = RemoteCluster::start_on(backend).await;
    // The remote credentials may also write Secrets in `remote` (a pushing store's grant;
    // devcluster has no RBAC: its admin token is used).
    if backend == Backend::ControlPlane {
        Api::<Role>::namespaced(remote.client.clone(), "remote")
            .create(
                &PostParams::default(),
                &yaml("metadata: {name: writer, namespace: remote}\nrules: [{apiGroups: [''], resources: [secrets], verbs: [create, update, delete]}]\n"),
            )
            .await
            .unwrap();
        Api::<RoleBinding>::namespaced(remote.client.clone(), "remote")
            .create(
                &PostParams::default(),
                &yaml("metadata: {name: writer, namespace: remote}\nroleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: writer}\nsubjects: [{kind: ServiceAccount, name: reader, namespace: remote}]\n"),
            )
            .await
            .unwrap();
    }
    let remote_secrets: Api<Secret> = Api::namespaced(remote.client.clone(), "remote");
    remote_secrets
        .create(
            &PostParams::default(),
            &yaml("metadata: {name: theirs, namespace: remote}\nstringData: {password: not-kuverts}\n"),
        )
        .await
        .unwrap();

    let cluster = Cluster::start_on(backend).await;
    let client = cluster.client.clone();
    let secrets: Api<Secret> = Api::namespaced(client.clone(), "default");
    for manifest in [
        format!(
            "metadata: {{name: cluster-b, namespace: default}}\nstringData: {{token: {}}}\n",
            remote.token
        ),
        "metadata: {name: db, namespace: default}\nstringData: {password: p1, user: app}\n"
            .to_owned(),
    ] {
        secrets
            .create(&PostParams::default(), &yaml(&manifest))
            .await
            .unwrap();
    }
    let store: SecretStore = yaml(&format!(
        "apiVersion: kuvert.io/v1alpha1\nkind: SecretStore\nmetadata: {{name: cluster-b, namespace: default}}\nspec:\n  provider:\n    kubernetes:\n      remoteNamespace: remote\n      server: {{url: {url}, caBundle: {ca}}}\n      auth: {{token: {{bearerToken: {{name: cluster-b, key: token}}}}}}\n",
        url = remote.url(),
        ca = base64::engine::general_purpose::STANDARD.encode(remote.ca_pem()),
    ));
    Api::<SecretStore>::namespaced(client.clone(), "default")
        .create(&PostParams::default(), &store)
        .await
        .unwrap();
    let operator = Operator::start(&cluster, &[]);
    operator.wait_ready().await;

    let pss: Api<PushSecret> = Api::namespaced(client.clone(), "default");
    let main = push_secret(
        "main",
        "cluster-b",
        "  deletionPolicy: Delete\n",
        "    - match: {remoteRef: {remoteKey: whole}}\n    - match: {secretKey: password, remoteRef: {remoteKey: merged, property: password}}\n",
    );
    pss.create(&PostParams::default(), &main).await.unwrap();
    let conflict = push_secret(
        "conflict",
        "cluster-b",
        "",
        "    - match: {secretKey: password, remoteRef: {remoteKey: theirs, property: password}}\n",
    );
    pss.create(&PostParams::default(), &conflict).await.unwrap();

    until_ready(&pss, "main", "True").await;
    let (data, annotations) = remote_secret(&remote_secrets, "whole").await.unwrap();
    assert_eq!(Some(data), text_map(&[("password", "p1"), ("user", "app")]));
    assert_eq!(
        annotations.get("kuvert.io/pushed-by").map(String::as_str),
        Some("default/main")
    );
    assert_eq!(
        remote_data(&remote_secrets, "merged").await,
        text_map(&[("password", "p1")])
    );
    eventually("conflict reported", || async {
        ready(&pss, "conflict")
            .await
            .is_some_and(|(s, r, _)| s == "False" && r == "Conflict")
    })
    .await;
    let (_, _, message) = ready(&pss, "conflict").await.unwrap();
    assert_eq!(
        message,
        "SecretStore/default/cluster-b: pushing \"theirs/password\": conflict: Secret remote/theirs was not written by kuvert; it is never overwritten or deleted"
    );
    assert_eq!(
        remote_data(&remote_secrets, "theirs").await,
        text_map(&[("password", "not-kuverts")])
    );

    // A key added remotely survives a push of the changed source.
    let mut merged = remote_secrets.get("merged").await.unwrap();
    merged.data.get_or_insert_with(Default::default).insert(
        "extra".to_owned(),
        k8s_openapi::ByteString(b"kept".to_vec()),
    );
    remote_secrets
        .replace("merged", &PostParams::default(), &merged)
        .await
        .unwrap();
    set_password(&secrets, "p2").await;
    eventually("p2 pushed to both remote Secrets", || async {
        remote_data(&remote_secrets, "merged").await
            == text_map(&[("extra", "kept"), ("password", "p2")])
            && remote_data(&remote_secrets, "whole").await
                == text_map(&[("password", "p2"), ("user", "app")])
    })
    .await;

    // Deleted: what main pushed goes (the property only, where another key is left).
    pss.delete("main", &DeleteParams::default()).await.unwrap();
    eventually("main's remote Secrets taken back", || async {
        remote_data(&remote_secrets, "whole").await.is_none()
            && remote_data(&remote_secrets, "merged").await == text_map(&[("extra", "kept")])
            && pss.get_opt("main").await.unwrap().is_none()
    })
    .await;
}

on_both_backends!(secrets_are_pushed_to_another_cluster);

/// A SecretStore `name` on the OpenBao mount `path` (KV `version`), with `labels`.
async fn vault_store(
    client: &kube::Client,
    bao: &OpenBao,
    name: &str,
    path: &str,
    version: &str,
    labels: &str,
) {
    let store: SecretStore = yaml(&format!(
        "apiVersion: kuvert.io/v1alpha1\nkind: SecretStore\nmetadata: {{name: {name}, namespace: default, labels: {{{labels}}}}}\nspec:\n  provider:\n    vault:\n      server: {addr}\n      path: {path}\n      version: {version}\n      auth: {{tokenSecretRef: {{name: vault-token, key: token}}}}\n",
        addr = bao.addr(),
    ));
    Api::<SecretStore>::namespaced(client.clone(), "default")
        .create(&PostParams::default(), &store)
        .await
        .unwrap();
}

/// The data of the KV v2 secret `mount/path`, or `None`.
async fn remote_at(bao: &OpenBao, mount: &str, path: &str) -> Option<Value> {
    bao.api_as(
        bao.root_token(),
        None,
        "GET",
        &format!("{mount}/data/{path}"),
        None,
    )
    .await
    .ok()
    .map(|v| v["data"]["data"].clone())
}

/// A value changed by hand in OpenBao stays while the refresh is an hour away; the force-sync
/// annotation pushes again at once and restores it.
async fn the_force_sync_annotation_pushes_again_at_once(backend: Backend) {
    let (bao, cluster, _operator) = vault_and_cluster(backend).await;
    let pss: Api<PushSecret> = Api::namespaced(cluster.client.clone(), "default");
    let ps = push_secret(
        "forced",
        "vault",
        "",
        "    - match: {secretKey: password, remoteRef: {remoteKey: app/forced, property: password}}\n",
    );
    pss.create(&PostParams::default(), &ps).await.unwrap();
    eventually("pushed", || async {
        remote(&bao, "app/forced").await == Some(json!({"password": "p1"}))
    })
    .await;
    bao.kv2_put("secret", "app/forced", json!({"password": "by-hand"}))
        .await;
    pss.patch(
        "forced",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"annotations": {"kuvert.io/force-sync": "1"}}})),
    )
    .await
    .unwrap();
    eventually("the pushed value restored", || async {
        remote(&bao, "app/forced").await == Some(json!({"password": "p1"}))
    })
    .await;
    assert_eq!(
        ready(&pss, "forced").await.unwrap(),
        (
            "True".to_owned(),
            "Synced".to_owned(),
            "1 remote secret pushed to 1 store".to_owned()
        )
    );
}

on_both_backends!(the_force_sync_annotation_pushes_again_at_once);

/// `secretStoreRefs[].labelSelector`: the two stores with the label get the push, the
/// unlabelled `vault` store does not; a store that loses the label is dropped, and with
/// `deletionPolicy: Delete` what was pushed there is taken back.
async fn a_label_selector_picks_the_stores_by_label(backend: Backend) {
    let (bao, cluster, _operator) = vault_and_cluster(backend).await;
    let client = cluster.client.clone();
    for mount in ["team-a", "team-b"] {
        bao.mount(mount, "kv", json!({"version": "2"})).await;
        vault_store(&client, &bao, mount, mount, "v2", "push: 'yes'").await;
    }
    let pss: Api<PushSecret> = Api::namespaced(client.clone(), "default");
    let mut ps = push_secret(
        "labelled",
        "vault",
        "  deletionPolicy: Delete\n",
        "    - match: {secretKey: password, remoteRef: {remoteKey: app/sel, property: password}}\n",
    );
    ps.spec.secret_store_refs = yaml("[{labelSelector: {matchLabels: {push: 'yes'}}}]");
    pss.create(&PostParams::default(), &ps).await.unwrap();
    until_ready(&pss, "labelled", "True").await;
    assert_eq!(
        ready(&pss, "labelled").await.unwrap(),
        (
            "True".to_owned(),
            "Synced".to_owned(),
            "2 remote secrets pushed to 2 stores".to_owned()
        )
    );
    for mount in ["team-a", "team-b"] {
        assert_eq!(
            remote_at(&bao, mount, "app/sel").await,
            Some(json!({"password": "p1"})),
            "{mount}"
        );
    }
    assert_eq!(remote(&bao, "app/sel").await, None, "the unlabelled store");
    let status = pss.get("labelled").await.unwrap().status.unwrap();
    let stores: Vec<&String> = status.synced_push_secrets.keys().collect();
    assert_eq!(
        stores,
        ["SecretStore/default/team-a", "SecretStore/default/team-b"]
    );

    // team-b loses the label: dropped at the next push (force-sync here), its secret deleted.
    Api::<SecretStore>::namespaced(client.clone(), "default")
        .patch(
            "team-b",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"push": null}}})),
        )
        .await
        .unwrap();
    pss.patch(
        "labelled",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"annotations": {"kuvert.io/force-sync": "1"}}})),
    )
    .await
    .unwrap();
    eventually("the dropped store's secret taken back", || async {
        remote_at(&bao, "team-b", "app/sel").await.is_none()
    })
    .await;
    assert_eq!(
        remote_at(&bao, "team-a", "app/sel").await,
        Some(json!({"password": "p1"}))
    );
    eventually("the status lists only team-a", || async {
        let status = pss.get("labelled").await.unwrap().status.unwrap();
        status.synced_push_secrets.keys().collect::<Vec<_>>() == ["SecretStore/default/team-a"]
    })
    .await;
    assert_eq!(
        ready(&pss, "labelled").await.unwrap(),
        (
            "True".to_owned(),
            "Synced".to_owned(),
            "1 remote secret pushed to 1 store".to_owned()
        )
    );
}

on_both_backends!(a_label_selector_picks_the_stores_by_label);

/// Vault KV v1 through `kuvert run`: pushed with the visible owner key; a foreign KV v1 secret
/// is a Conflict and left as it was.
async fn kv1_stores_get_the_push_with_a_visible_owner_key(backend: Backend) {
    let (bao, cluster, _operator) = vault_and_cluster(backend).await;
    let client = cluster.client.clone();
    bao.mount("kv1", "kv", json!({"version": "1"})).await;
    bao.write("kv1/theirs", json!({"password": "not-kuverts"}))
        .await;
    vault_store(&client, &bao, "legacy", "kv1", "v1", "").await;
    let kv1 = |path: &'static str| {
        let bao = &bao;
        async move {
            bao.api_as(bao.root_token(), None, "GET", &format!("kv1/{path}"), None)
                .await
                .ok()
                .map(|v| v["data"].clone())
        }
    };
    let pss: Api<PushSecret> = Api::namespaced(client.clone(), "default");
    let ps = push_secret(
        "old",
        "legacy",
        "",
        "    - match: {secretKey: password, remoteRef: {remoteKey: app/db, property: password}}\n    - match: {remoteRef: {remoteKey: app/all}}\n",
    );
    pss.create(&PostParams::default(), &ps).await.unwrap();
    let conflict = push_secret(
        "conflict",
        "legacy",
        "",
        "    - match: {secretKey: password, remoteRef: {remoteKey: theirs, property: password}}\n",
    );
    pss.create(&PostParams::default(), &conflict).await.unwrap();
    until_ready(&pss, "old", "True").await;
    assert_eq!(
        kv1("app/db").await,
        Some(json!({"password": "p1", "kuvert.io/pushed-by": "default/old"}))
    );
    assert_eq!(
        kv1("app/all").await,
        Some(json!({"password": "p1", "user": "app", "kuvert.io/pushed-by": "default/old"}))
    );
    eventually("conflict reported", || async {
        ready(&pss, "conflict")
            .await
            .is_some_and(|(s, r, _)| s == "False" && r == "Conflict")
    })
    .await;
    assert_eq!(
        ready(&pss, "conflict").await.unwrap().2,
        "SecretStore/default/legacy: pushing \"theirs/password\": conflict: kv1/theirs exists without the kuvert.io/pushed-by key (not written by kuvert): refusing to overwrite it"
    );
    assert_eq!(
        kv1("theirs").await,
        Some(json!({"password": "not-kuverts"}))
    );
}

on_both_backends!(kv1_stores_get_the_push_with_a_visible_owner_key);

/// The distinct Events about the PushSecret `name`, as (type, reason, note), sorted.
async fn push_secret_events(client: &kube::Client, name: &str) -> Vec<(String, String, String)> {
    use k8s_openapi::api::events::v1::Event;
    let events: Api<Event> = Api::namespaced(client.clone(), "default");
    let mut about: Vec<_> = events
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|e| {
            e.regarding.as_ref().and_then(|r| r.kind.as_deref()) == Some("PushSecret")
                && e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name)
        })
        .map(|e| {
            (
                e.type_.unwrap_or_default(),
                e.reason.unwrap_or_default(),
                e.note.unwrap_or_default(),
            )
        })
        .collect();
    about.sort();
    about.dedup();
    about
}

/// OpenBao goes away: a push that cannot reach it says `StoreNotReady` and keeps what it holds
/// (nothing is deleted, the status still lists the key); OpenBao comes back and the push
/// recovers by itself. Each `Ready` transition is an Event with the condition's reason and
/// message, and no value in any of them.
async fn an_unreachable_store_is_not_ready_and_recovers_by_itself(backend: Backend) {
    let (mut bao, cluster, _operator) = vault_and_cluster(backend).await;
    let client = cluster.client.clone();
    let secrets: Api<Secret> = Api::namespaced(client.clone(), "default");
    let pss: Api<PushSecret> = Api::namespaced(client.clone(), "default");
    let ps = push_secret(
        "outage",
        "vault",
        "  deletionPolicy: Delete\n",
        "    - match: {secretKey: password, remoteRef: {remoteKey: app/outage, property: password}}\n",
    );
    pss.create(&PostParams::default(), &ps).await.unwrap();
    let synced = (
        "True".to_owned(),
        "Synced".to_owned(),
        "1 remote secret pushed to 1 store".to_owned(),
    );
    eventually("pushed", || async {
        ready(&pss, "outage").await.as_ref() == Some(&synced)
    })
    .await;
    let held = |ps: PushSecret| -> Vec<String> {
        ps.status.unwrap().synced_push_secrets["SecretStore/default/vault"]
            .keys()
            .cloned()
            .collect()
    };
    assert_eq!(
        held(pss.get("outage").await.unwrap()),
        ["app/outage/password"]
    );

    bao.stop().await;
    set_password(&secrets, "second-password-value").await;
    eventually("StoreNotReady while OpenBao is down", || async {
        ready(&pss, "outage")
            .await
            .is_some_and(|(s, r, _)| s == "False" && r == "StoreNotReady")
    })
    .await;
    let (_, _, message) = ready(&pss, "outage").await.unwrap();
    let prefix = "SecretStore/default/vault: pushing \"app/outage/password\": store unavailable: ";
    assert!(message.starts_with(prefix), "{message}");
    assert_eq!(
        held(pss.get("outage").await.unwrap()),
        ["app/outage/password"],
        "what was pushed is still held, not deleted"
    );

    // Back (empty, as a dev server restarts): pushed again without any change in the cluster.
    bao.start_again().await;
    eventually("recovered by itself", || async {
        remote(&bao, "app/outage").await == Some(json!({"password": "second-password-value"}))
            && ready(&pss, "outage").await.as_ref() == Some(&synced)
    })
    .await;

    eventually("an Event per Ready transition", || async {
        push_secret_events(&client, "outage").await.len() == 2
    })
    .await;
    let events = push_secret_events(&client, "outage").await;
    assert_eq!(
        (&events[0].0, &events[0].1, &events[0].2),
        (&synced.0.replace("True", "Normal"), &synced.1, &synced.2)
    );
    assert_eq!(
        (
            events[1].0.as_str(),
            events[1].1.as_str(),
            events[1].2.as_str()
        ),
        ("Warning", "StoreNotReady", message.as_str())
    );
    for (_, _, note) in &events {
        assert!(
            !note.contains("second-password-value") && !note.contains("p1"),
            "{note}"
        );
    }
}

on_both_backends!(an_unreachable_store_is_not_ready_and_recovers_by_itself);

/// `spec.template.templateFrom` with a ConfigMap and a Secret, rendered by the ExternalSecrets'
/// engine: pushed; a changed ConfigMap pushed again at once (its read is watched); a missing
/// ConfigMap is `Errored` naming the field, and pushed once it appears.
async fn template_from_config_maps_and_secrets_shape_the_push(backend: Backend) {
    use k8s_openapi::api::core::v1::ConfigMap;
    let (bao, cluster, _operator) = vault_and_cluster(backend).await;
    let client = cluster.client.clone();
    let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    config_maps
        .create(
            &PostParams::default(),
            &yaml("metadata: {name: tpl, namespace: default}\ndata: {dsn: 'postgres://{{ user }}:{{ password }}@db'}\n"),
        )
        .await
        .unwrap();
    Api::<Secret>::namespaced(client.clone(), "default")
        .create(
            &PostParams::default(),
            &yaml("metadata: {name: tpl-secret, namespace: default}\nstringData: {greeting: 'hello {{ user }}'}\n"),
        )
        .await
        .unwrap();
    let pss: Api<PushSecret> = Api::namespaced(client.clone(), "default");
    let templated = push_secret(
        "templated",
        "vault",
        "  template:\n    templateFrom:\n      - configMap: {name: tpl, items: [{key: dsn}]}\n      - secret: {name: tpl-secret, items: [{key: greeting}]}\n",
        "    - match: {secretKey: dsn, remoteRef: {remoteKey: app/tpl, property: dsn}}\n    - match: {secretKey: greeting, remoteRef: {remoteKey: app/tpl, property: greeting}}\n",
    );
    pss.create(&PostParams::default(), &templated)
        .await
        .unwrap();
    eventually("the rendered values pushed", || async {
        remote(&bao, "app/tpl").await
            == Some(json!({"dsn": "postgres://app:p1@db", "greeting": "hello app"}))
    })
    .await;

    config_maps
        .patch(
            "tpl",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"dsn": "mysql://{{ user }}@db"}})),
        )
        .await
        .unwrap();
    eventually("the changed template pushed", || async {
        remote(&bao, "app/tpl").await
            == Some(json!({"dsn": "mysql://app@db", "greeting": "hello app"}))
    })
    .await;

    let missing = push_secret(
        "missing",
        "vault",
        "  template:\n    templateFrom: [{configMap: {name: later, items: [{key: k}]}}]\n",
        "    - match: {secretKey: k, remoteRef: {remoteKey: app/later, property: k}}\n",
    );
    pss.create(&PostParams::default(), &missing).await.unwrap();
    eventually("Errored naming the field", || async {
        ready(&pss, "missing")
            .await
            .is_some_and(|(s, r, _)| s == "False" && r == "Errored")
    })
    .await;
    assert_eq!(
        ready(&pss, "missing").await.unwrap().2,
        "spec.template.templateFrom[0].configMap: reading ConfigMap default/later: ConfigMap default/later not found"
    );
    config_maps
        .create(
            &PostParams::default(),
            &yaml("metadata: {name: later, namespace: default}\ndata: {k: '{{ password }}!'}\n"),
        )
        .await
        .unwrap();
    eventually("pushed once the ConfigMap exists", || async {
        remote(&bao, "app/later").await == Some(json!({"k": "p1!"}))
    })
    .await;
}

on_both_backends!(template_from_config_maps_and_secrets_shape_the_push);
