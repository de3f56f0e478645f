//! A secret value never leaves the target Secret (issue 22): a planted value, held by OpenBao,
//! a fake SecretStore, a ClusterSecretStore and a generator, goes through syncs that succeed,
//! syncs that fail in every way that handles the value (template errors, a bad
//! `decodingStrategy`, a `property` path into it, an invalid label value made of it (refused by
//! kuvert before the API server sees it), a failing template over a generator's output, a
//! dockerconfigjson Secret kube-apiserver refuses), a PushSecret and a ClusterExternalSecret,
//! with `kuvert run --log-level trace`; it is then in the target Secrets and in none of: the
//! operator's whole output, any Event, any object's status, the `/metrics` scrape, whether as
//! text or base64.

mod support;

use std::hash::BuildHasher;

use base64::Engine;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::api::{Api, ListParams, PostParams};
use kuvert_core::api::{
    ClusterExternalSecret, ClusterSecretStore, ExternalSecret, PushSecret, SecretStore,
};
use kuvert_testkit::OpenBao;
use serde_json::json;
use support::{Backend, Cluster, Operator, create, eventually, fake_store, secret_data, yaml};

/// `PLANTED-` and 32 random hex digits: found nowhere by chance.
fn planted() -> String {
    let state = std::collections::hash_map::RandomState::new();
    format!(
        "PLANTED-{:016x}{:016x}",
        state.hash_one(1u8),
        state.hash_one(std::time::SystemTime::now())
    )
}

/// The forms `value` can take in text: itself, and what stays the same of its base64 (standard
/// and URL-safe) whatever bytes come before or after it.
fn forms(value: &str) -> Vec<String> {
    let mut forms = vec![value.to_owned()];
    for engine in [
        base64::engine::general_purpose::STANDARD,
        base64::engine::general_purpose::URL_SAFE,
    ] {
        for offset in 0..3 {
            let encoded = engine.encode(format!("{}{value}", "x".repeat(offset)));
            // The first group holds the preceding bytes, the last may hold following ones.
            let start = if offset == 0 { 0 } else { 4 };
            forms.push(encoded[start..encoded.len() - 4].to_owned());
        }
    }
    forms
}

/// Panics naming `place` when `text` holds any of `forms`.
fn assert_absent(place: &str, text: &str, forms: &[String]) {
    for form in forms {
        if let Some(at) = text.find(form.as_str()) {
            let from = text[..at]
                .char_indices()
                .rev()
                .nth(300)
                .map_or(0, |(i, _)| i);
            let to = (at + form.len() + 300).min(text.len());
            let to = (to..=text.len())
                .find(|i| text.is_char_boundary(*i))
                .unwrap();
            panic!(
                "the planted value ({form}) is in {place}:\n…{}…",
                &text[from..to]
            );
        }
    }
}

fn es(name: &str, namespace: &str, spec: &str) -> ExternalSecret {
    yaml(&format!(
        "apiVersion: kuvert.io/v1alpha1\nkind: ExternalSecret\nmetadata: {{name: {name}, namespace: {namespace}}}\nspec:\n  refreshInterval: 1h\n{spec}"
    ))
}

/// `(status, reason)` of the `Ready` condition of each ExternalSecret named.
async fn readiness(ess: &Api<ExternalSecret>, names: &[&str]) -> Vec<(String, String)> {
    let mut shown = Vec::new();
    for name in names {
        shown.push(
            support::ready(ess, name)
                .await
                .unwrap_or(("-".into(), "-".into())),
        );
    }
    shown
}

/// The `status` of every object of kind `K` in the cluster, as JSON text.
async fn statuses<K>(client: &kube::Client) -> String
where
    K: kube::Resource<DynamicType = ()>
        + Clone
        + serde::Serialize
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    let listed = Api::<K>::all(client.clone())
        .list(&ListParams::default())
        .await
        .unwrap();
    let statuses: Vec<serde_json::Value> = listed
        .items
        .iter()
        .map(|o| serde_json::to_value(o).unwrap()["status"].clone())
        .collect();
    serde_json::to_string(&statuses).unwrap()
}

async fn a_planted_value_reaches_the_target_secret_and_nothing_else(backend: Backend) {
    let value = planted();
    let json_value = json!({"password": value}).to_string();
    let bao = OpenBao::start().await;
    bao.kv2_put("secret", "planted", json!({"password": value}))
        .await;
    let cluster = Cluster::start_on(backend).await;
    let client = cluster.client.clone();
    support::vault_token_store(&cluster, bao.addr(), bao.root_token()).await;
    create(
        &client,
        &fake_store(
            "default",
            &[("planted", &value), ("planted-json", &json_value)],
        ),
    )
    .await;
    let shared: ClusterSecretStore = serde_json::from_value(json!({
        "apiVersion": "kuvert.io/v1alpha1",
        "kind": "ClusterSecretStore",
        "metadata": {"name": "shared"},
        "spec": {"provider": {"fake": {"data": [{"key": "k", "value": value, "version": "1"}]}}},
    }))
    .unwrap();
    Api::<ClusterSecretStore>::all(client.clone())
        .create(&PostParams::default(), &shared)
        .await
        .unwrap();
    let generator: kuvert_core::api::Fake = serde_json::from_value(json!({
        "apiVersion": "generators.kuvert.io/v1alpha1",
        "kind": "Fake",
        "metadata": {"name": "gen", "namespace": "default"},
        "spec": {"data": {"k": value}},
    }))
    .unwrap();
    create(&client, &generator).await;

    let log = cluster.dir.join("operator.log");
    let operator = Operator::start_captured(&cluster, &["--log-level", "trace"], &log);
    operator.wait_ready().await;

    let demo = "  secretStoreRef: {name: demo}\n";
    let vault = "  secretStoreRef: {name: vault}\n";
    // Syncs that succeed.
    let good = [
        (
            "fake-ok",
            format!("{demo}  data: [{{secretKey: k, remoteRef: {{key: planted}}}}]\n"),
        ),
        (
            "vault-ok",
            format!(
                "{vault}  data: [{{secretKey: k, remoteRef: {{key: planted, property: password}}}}]\n"
            ),
        ),
        (
            "vault-extract",
            format!("{vault}  dataFrom: [{{extract: {{key: planted}}}}]\n"),
        ),
        (
            "templated",
            format!(
                "{demo}  target:\n    template:\n      data: {{k: 'value={{{{ k }}}}'}}\n  data: [{{secretKey: k, remoteRef: {{key: planted}}}}]\n"
            ),
        ),
        (
            "generated",
            "  dataFrom: [{sourceRef: {generatorRef: {kind: Fake, name: gen}}}]\n".to_owned(),
        ),
    ];
    // Syncs that fail on the value.
    let bad = [
        ("template-fromjson", "TemplateFilter", format!("{demo}  target:\n    template:\n      data: {{k: '{{{{ k | fromJson }}}}'}}\n  data: [{{secretKey: k, remoteRef: {{key: planted}}}}]\n")),
        ("template-b64dec", "TemplateFilter", format!("{demo}  target:\n    template:\n      data: {{k: '{{{{ k | b64dec }}}}'}}\n  data: [{{secretKey: k, remoteRef: {{key: planted}}}}]\n")),
        ("template-fail", "TemplateFilter", format!("{demo}  target:\n    template:\n      data: {{k: '{{{{ fail(k) }}}}'}}\n  data: [{{secretKey: k, remoteRef: {{key: planted}}}}]\n")),
        ("template-attribute", "UndefinedVariable", format!("{demo}  target:\n    template:\n      data: {{k: '{{{{ k.nope.deeper }}}}'}}\n  data: [{{secretKey: k, remoteRef: {{key: planted}}}}]\n")),
        ("decoding", "DecodingError", format!("{demo}  data: [{{secretKey: k, remoteRef: {{key: planted, decodingStrategy: Base64}}}}]\n")),
        ("decoding-extract", "DecodingError", format!("{demo}  dataFrom: [{{extract: {{key: planted-json, decodingStrategy: Base64}}}}]\n")),
        ("property-fake", "NotJson", format!("{demo}  data: [{{secretKey: k, remoteRef: {{key: planted, property: a.b}}}}]\n")),
        ("property-json", "PropertyNotFound", format!("{demo}  data: [{{secretKey: k, remoteRef: {{key: planted-json, property: password.deeper}}}}]\n")),
        ("property-vault", "PropertyNotFound", format!("{vault}  data: [{{secretKey: k, remoteRef: {{key: planted, property: password.deeper}}}}]\n")),
        ("extract-not-json", "NotJson", format!("{demo}  dataFrom: [{{extract: {{key: planted}}}}]\n")),
        ("label", "InvalidSpec", format!("{demo}  target:\n    template:\n      metadata:\n        labels: {{bad: '{{{{ k }}}}!!'}}\n  data: [{{secretKey: k, remoteRef: {{key: planted}}}}]\n")),
        ("generated-template", "TemplateFilter", "  target:\n    template:\n      data: {x: '{{ k | fromJson }}'}\n  dataFrom: [{sourceRef: {generatorRef: {kind: Fake, name: gen}}}]\n".to_owned()),
    ];
    for (name, spec) in good
        .iter()
        .map(|(n, s)| (n, s))
        .chain(bad.iter().map(|(n, _, s)| (n, s)))
    {
        create(&client, &es(name, "default", spec)).await;
    }
    let ess: Api<ExternalSecret> = Api::namespaced(client.clone(), "default");
    let good_names: Vec<&str> = good.iter().map(|(n, _)| *n).collect();
    let bad_names: Vec<&str> = bad.iter().map(|(n, _, _)| *n).collect();
    eventually("the good ExternalSecrets to be Ready", || async {
        let shown = readiness(&ess, &good_names).await;
        shown.iter().all(|(s, _)| s == "True")
    })
    .await;
    eventually("the bad ExternalSecrets to have failed", || async {
        readiness(&ess, &bad_names)
            .await
            .iter()
            .all(|(s, _)| s == "False")
    })
    .await;

    let reasons: Vec<(String, String)> = bad
        .iter()
        .map(|(_, reason, _)| ("False".to_owned(), reason.to_string()))
        .collect();
    assert_eq!(readiness(&ess, &bad_names).await, reasons);
    // A Secret the API server refuses, quoting the field: kube-apiserver checks a
    // dockerconfigjson is JSON (and redacts the value in its answer); devcluster does not check
    // it and stores it.
    create(
        &client,
        &es(
            "docker",
            "default",
            &format!("{demo}  target:\n    template:\n      type: kubernetes.io/dockerconfigjson\n      data: {{.dockerconfigjson: '{{{{ k }}}}'}}\n  data: [{{secretKey: k, remoteRef: {{key: planted}}}}]\n"),
        ),
    )
    .await;
    let docker = match backend {
        Backend::ControlPlane => ("False".to_owned(), "TargetInvalid".to_owned()),
        Backend::DevCluster => ("True".to_owned(), "SecretSynced".to_owned()),
    };
    eventually("the dockerconfigjson ExternalSecret to report", || async {
        support::ready(&ess, "docker").await.as_ref() == Some(&docker)
    })
    .await;

    // A PushSecret pushes the synced Secret to OpenBao.
    let push: PushSecret = yaml(
        "apiVersion: kuvert.io/v1alpha1\nkind: PushSecret\nmetadata: {name: push, namespace: default}\nspec:\n  refreshInterval: 1h\n  secretStoreRefs: [{name: vault}]\n  selector: {secret: {name: fake-ok}}\n  data:\n    - match: {secretKey: k, remoteRef: {remoteKey: pushed, property: password}}\n",
    );
    create(&client, &push).await;
    let pss: Api<PushSecret> = Api::namespaced(client.clone(), "default");
    eventually("the PushSecret to be Ready", || async {
        pss.get("push").await.unwrap().status.is_some_and(|s| {
            s.conditions
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == "True")
        })
    })
    .await;
    let pushed = bao
        .api_as(bao.root_token(), None, "GET", "secret/data/pushed", None)
        .await
        .unwrap();
    assert_eq!(pushed["data"]["data"]["password"], json!(value));

    // A ClusterExternalSecret stamps an ExternalSecret of the ClusterSecretStore into `team`.
    let team: Namespace = yaml("metadata: {name: team, labels: {leaks: test}}");
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &team)
        .await
        .unwrap();
    let ces: ClusterExternalSecret = yaml(
        "apiVersion: kuvert.io/v1alpha1\nkind: ClusterExternalSecret\nmetadata: {name: stamped}\nspec:\n  namespaceSelectors: [{matchLabels: {leaks: test}}]\n  refreshTime: 1h\n  externalSecretSpec:\n    refreshInterval: 1h\n    secretStoreRef: {name: shared, kind: ClusterSecretStore}\n    target: {name: stamped}\n    data: [{secretKey: k, remoteRef: {key: k}}]\n",
    );
    Api::<ClusterExternalSecret>::all(client.clone())
        .create(&PostParams::default(), &ces)
        .await
        .unwrap();
    let team_secrets: Api<Secret> = Api::namespaced(client.clone(), "team");
    eventually("the stamped ExternalSecret to sync", || async {
        secret_data(&team_secrets, "stamped")
            .await
            .is_some_and(|d| d.get("k") == Some(&value))
    })
    .await;
    let team_ess: Api<ExternalSecret> = Api::namespaced(client.clone(), "team");
    eventually("the stamped ExternalSecret to be Ready", || async {
        readiness(&team_ess, &["stamped"]).await[0].0 == "True"
    })
    .await;

    // The test is live: the value is where it belongs.
    let secrets: Api<Secret> = Api::namespaced(client.clone(), "default");
    let expect = |pairs: &[(&str, &str)]| support::map(pairs);
    assert_eq!(
        secret_data(&secrets, "fake-ok").await,
        expect(&[("k", &value)])
    );
    assert_eq!(
        secret_data(&secrets, "vault-ok").await,
        expect(&[("k", &value)])
    );
    assert_eq!(
        secret_data(&secrets, "vault-extract").await,
        expect(&[("password", &value)])
    );
    assert_eq!(
        secret_data(&secrets, "templated").await,
        expect(&[("k", &format!("value={value}"))])
    );
    assert_eq!(
        secret_data(&secrets, "generated").await,
        expect(&[("k", &value)])
    );
    for name in &bad_names {
        assert_eq!(secret_data(&secrets, name).await, None, "{name}");
    }

    // Let every failure be retried once more, so retries are looked at too.
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    let forms = forms(&value);
    let (status, metrics) = operator.get("/metrics").await;
    assert_eq!(status, 200);
    assert!(metrics.contains("kuvert_"), "{metrics}");
    assert_absent("the /metrics scrape", &metrics, &forms);

    let events = Api::<k8s_openapi::api::events::v1::Event>::all(client.clone())
        .list(&ListParams::default())
        .await
        .unwrap();
    assert!(
        events
            .items
            .iter()
            .any(|e| e.type_.as_deref() == Some("Warning")),
        "no Warning Event about the failures"
    );
    assert_absent(
        "an Event",
        &serde_json::to_string(&events.items).unwrap(),
        &forms,
    );
    let core_events = Api::<k8s_openapi::api::core::v1::Event>::all(client.clone())
        .list(&ListParams::default())
        .await
        .unwrap();
    assert_absent(
        "an Event (core/v1)",
        &serde_json::to_string(&core_events.items).unwrap(),
        &forms,
    );

    let es_statuses = statuses::<ExternalSecret>(&client).await;
    assert!(es_statuses.contains("False"), "{es_statuses}");
    assert_absent("an ExternalSecret's status", &es_statuses, &forms);
    assert_absent(
        "a SecretStore's status",
        &statuses::<SecretStore>(&client).await,
        &forms,
    );
    assert_absent(
        "a ClusterSecretStore's status",
        &statuses::<ClusterSecretStore>(&client).await,
        &forms,
    );
    assert_absent(
        "a PushSecret's status",
        &statuses::<PushSecret>(&client).await,
        &forms,
    );
    assert_absent(
        "a ClusterExternalSecret's status",
        &statuses::<ClusterExternalSecret>(&client).await,
        &forms,
    );

    drop(operator);
    let output = std::fs::read_to_string(&log).unwrap();
    assert!(
        output.contains("TRACE"),
        "no trace lines in the operator's output"
    );
    assert_absent("the operator's output", &output, &forms);
}

on_both_backends!(a_planted_value_reaches_the_target_secret_and_nothing_else);
