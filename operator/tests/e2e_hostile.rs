//! One namespace's hostile ExternalSecrets cost kuvert neither its life nor its service to
//! others (issue 22): a runaway template loop, a template nested 5000 deep, a huge rewrite
//! regexp, a value too big for a Secret, a `1ms` refreshInterval and a store naming a Secret of
//! another namespace each end Ready=False with their reason (the `1ms` one is refreshed at the
//! floor), the process stays up with its memory bounded, and an ExternalSecret of another
//! namespace picks up a changed value meanwhile. And a `kuvert run` SIGKILLed in the middle of
//! a bulk sync, started again, brings every ExternalSecret to Ready with its own data, and (on
//! devcluster, which counts writes) writes exactly the Secrets the killed process had not.

mod support;

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kuvert_core::api::{ExternalSecret, SecretStore};
use serde_json::json;
use support::{Backend, Cluster, Operator, create, eventually, fake_store, secret_data, yaml};

/// A safety bound on the operator's resident memory, not a speed goal.
const RSS_CAP_KIB: u64 = 512 * 1024;

async fn namespace(client: &kube::Client, name: &str) {
    let ns: Namespace = yaml(&format!("metadata: {{name: {name}}}"));
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await
        .unwrap();
}

/// The operator's resident memory in KiB; panics when the process is gone (or a zombie).
fn rss_kib(operator: &Operator) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", operator.pid()))
        .expect("the operator process is gone");
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|v| v.trim().to_owned())
    };
    let state = field("State:").unwrap();
    assert!(!state.starts_with('Z'), "the operator exited: {state}");
    field("VmRSS:")
        .and_then(|v| v.trim_end_matches(" kB").trim().parse().ok())
        .unwrap()
}

fn hostile(name: &str, spec: &str) -> ExternalSecret {
    yaml(&format!(
        "apiVersion: kuvert.io/v1alpha1\nkind: ExternalSecret\nmetadata: {{name: {name}, namespace: hostile}}\nspec:\n{spec}"
    ))
}

async fn hostile_external_secrets_fail_alone_and_the_operator_keeps_serving(backend: Backend) {
    let cluster = Cluster::start_on(backend).await;
    let client = cluster.client.clone();
    namespace(&client, "hostile").await;
    namespace(&client, "good").await;
    // Over a Secret's 1 MiB, under etcd's 1.5 MiB for the store holding it.
    let huge = "x".repeat(1200 * 1024);
    let keys = json!({"a": "1", "b": "2"}).to_string();
    create(
        &client,
        &fake_store("hostile", &[("k", "v"), ("huge", &huge), ("keys", &keys)]),
    )
    .await;
    create(&client, &fake_store("good", &[("k", "before")])).await;
    let log = cluster.dir.join("operator.log");
    let operator = Operator::start_captured(&cluster, &["--log-level", "info"], &log);
    operator.wait_ready().await;

    let demo = "  refreshInterval: 1h\n  secretStoreRef: {name: demo}\n";
    let read_k = "  data: [{secretKey: k, remoteRef: {key: k}}]\n";
    let cases = [
        (
            "loop",
            "TemplateRender",
            format!(
                "{demo}  target:\n    template:\n      data: {{k: '{{% for i in range(10000) %}}{{% for j in range(10000) %}}{{{{ k }}}}{{% endfor %}}{{% endfor %}}'}}\n{read_k}"
            ),
        ),
        (
            "nesting",
            "TemplateSyntax",
            format!(
                "{demo}  target:\n    template:\n      data: {{k: '{{{{ {}k{} }}}}'}}\n{read_k}",
                "(".repeat(5000),
                ")".repeat(5000)
            ),
        ),
        (
            "regexp",
            "InvalidRegexp",
            format!(
                "{demo}  dataFrom:\n    - extract: {{key: keys}}\n      rewrite: [{{regexp: {{source: '((a{{1000}}){{1000}}){{1000}}', target: x}}}}]\n"
            ),
        ),
        (
            "huge",
            "TooLarge",
            format!("{demo}  data: [{{secretKey: k, remoteRef: {{key: huge}}}}]\n"),
        ),
        (
            "other-namespace",
            "StoreNotReady",
            format!("  refreshInterval: 1h\n  secretStoreRef: {{name: vault}}\n{read_k}"),
        ),
    ];
    // A store of `hostile` naming a Secret of `good` for its login.
    let vault: SecretStore = yaml(
        "apiVersion: kuvert.io/v1alpha1\nkind: SecretStore\nmetadata: {name: vault, namespace: hostile}\nspec:\n  provider:\n    vault:\n      server: http://127.0.0.1:1\n      path: secret\n      auth:\n        tokenSecretRef: {name: vault-token, key: token, namespace: good}\n",
    );
    create(&client, &vault).await;
    for (name, _, spec) in &cases {
        create(&client, &hostile(name, spec)).await;
    }
    create(
        &client,
        &hostile(
            "fast",
            &format!("  refreshInterval: 1ms\n  secretStoreRef: {{name: demo}}\n{read_k}"),
        ),
    )
    .await;
    let good_es: ExternalSecret = yaml(
        "apiVersion: kuvert.io/v1alpha1\nkind: ExternalSecret\nmetadata: {name: app, namespace: good}\nspec:\n  refreshInterval: 1h\n  secretStoreRef: {name: demo}\n  data: [{secretKey: k, remoteRef: {key: k}}]\n",
    );
    create(&client, &good_es).await;

    let hostile_ess: Api<ExternalSecret> = Api::namespaced(client.clone(), "hostile");
    let names: Vec<&str> = cases.iter().map(|(n, _, _)| *n).collect();
    let expected: Vec<Option<(String, String)>> = cases
        .iter()
        .map(|(_, reason, _)| Some(("False".to_owned(), reason.to_string())))
        .collect();
    let shown = std::cell::RefCell::new(Vec::new());
    eventually("each hostile ExternalSecret to fail", || async {
        let mut now = Vec::new();
        for name in &names {
            now.push(support::ready(&hostile_ess, name).await);
        }
        let done = now.iter().all(|r| r.is_some());
        *shown.borrow_mut() = now;
        done
    })
    .await;
    assert_eq!(shown.into_inner(), expected);
    // Each says what limit it hit.
    let said = [
        "the template exceeded its work budget (too many loop iterations)",
        "template exceeds maximum recursion limits",
        "Compiled regex exceeds size limit of 10485760 bytes",
        "the data of Secret hostile/huge is 1228801 bytes, over the limit of 1048576",
        "a SecretStore may only refer to its own namespace \"hostile\", not \"good\"",
    ];
    for (name, said) in names.iter().zip(said) {
        let status = hostile_ess.get(name).await.unwrap().status.unwrap();
        let message = &kuvert_core::conditions::find_ready(&status.conditions)
            .unwrap()
            .message;
        assert!(message.contains(said), "{name}: {message}");
    }
    let rss = rss_kib(&operator);
    assert!(rss < RSS_CAP_KIB, "the operator holds {rss} KiB");

    // The 1ms one is served at the floor.
    eventually("the 1ms ExternalSecret to sync at the floor", || async {
        hostile_ess
            .get("fast")
            .await
            .unwrap()
            .status
            .is_some_and(|s| s.refresh_interval.as_deref() == Some("10s"))
    })
    .await;

    // The good namespace is served: a changed value arrives on force-sync.
    let good_secrets: Api<Secret> = Api::namespaced(client.clone(), "good");
    eventually("the good Secret", || async {
        secret_data(&good_secrets, "app").await == support::map(&[("k", "before")])
    })
    .await;
    Api::<SecretStore>::namespaced(client.clone(), "good")
        .patch(
            "demo",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"provider": {"fake": {"data": [{"key": "k", "value": "after", "version": "2"}]}}}})),
        )
        .await
        .unwrap();
    Api::<ExternalSecret>::namespaced(client.clone(), "good")
        .patch(
            "app",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": {"kuvert.io/force-sync": "1"}}})),
        )
        .await
        .unwrap();
    eventually("the good Secret to change", || async {
        secret_data(&good_secrets, "app").await == support::map(&[("k", "after")])
    })
    .await;

    // Still up, still bounded, after the hostile ones were retried a while.
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    let rss = rss_kib(&operator);
    eprintln!("operator RSS after the hostile objects: {rss} KiB");
    assert!(rss < RSS_CAP_KIB, "the operator holds {rss} KiB");
    for name in &names {
        assert_eq!(
            secret_data(&Api::namespaced(client.clone(), "hostile"), name).await,
            None,
            "{name}"
        );
    }
    drop(operator);
}

const BULK: usize = 200;

async fn a_kill_during_a_bulk_sync_loses_no_secret_and_leaves_none_with_other_data(
    backend: Backend,
) {
    let cluster = Cluster::start_on(backend).await;
    let client = cluster.client.clone();
    let entries: Vec<(String, String)> = (0..BULK)
        .map(|i| (format!("k-{i}"), format!("v-{i}")))
        .collect();
    let borrowed: Vec<(&str, &str)> = entries
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    create(&client, &fake_store("default", &borrowed)).await;
    for i in 0..BULK {
        let es: ExternalSecret = yaml(&format!(
            "apiVersion: kuvert.io/v1alpha1\nkind: ExternalSecret\nmetadata: {{name: es-{i}, namespace: default}}\nspec:\n  refreshInterval: 1h\n  secretStoreRef: {{name: demo}}\n  data: [{{secretKey: k, remoteRef: {{key: k-{i}}}}}]\n"
        ));
        create(&client, &es).await;
    }
    let secrets: Api<Secret> = Api::namespaced(client.clone(), "default");
    let data_of = |s: &Secret| -> BTreeMap<String, String> {
        s.data
            .clone()
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k, String::from_utf8(v.0).unwrap()))
            .collect()
    };

    let mut first = Operator::start(&cluster, &[]);
    eventually("the first Secrets of the bulk sync", || async {
        secrets
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .len()
            >= 20
    })
    .await;
    first.stop(); // SIGKILL
    // A request the process sent just before it died may still be served: let it land before
    // looking.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let at_kill: Vec<(String, BTreeMap<String, String>)> = secrets
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .iter()
        .map(|s| (s.metadata.name.clone().unwrap(), data_of(s)))
        .collect();
    eprintln!("{} of {BULK} Secrets written when killed", at_kill.len());
    for (name, data) in &at_kill {
        let i: usize = name.strip_prefix("es-").unwrap().parse().unwrap();
        assert_eq!(
            data,
            &support::map(&[("k", &format!("v-{i}"))]).unwrap(),
            "{name}"
        );
    }

    if backend == Backend::DevCluster {
        cluster.dev().reset_request_counts();
    }
    let second = Operator::start(&cluster, &[]);
    second.wait_ready().await;
    let ess: Api<ExternalSecret> = Api::namespaced(client.clone(), "default");
    eventually("every ExternalSecret to be Ready", || async {
        ess.list(&ListParams::default())
            .await
            .unwrap()
            .items
            .iter()
            .filter(|es| {
                es.status.as_ref().is_some_and(|s| {
                    kuvert_core::conditions::find_ready(&s.conditions)
                        .is_some_and(|c| c.status == "True")
                })
            })
            .count()
            == BULK
    })
    .await;
    let after = secrets.list(&ListParams::default()).await.unwrap().items;
    assert_eq!(after.len(), BULK);
    for secret in &after {
        let name = secret.metadata.name.clone().unwrap();
        let i: usize = name.strip_prefix("es-").unwrap().parse().unwrap();
        assert_eq!(
            data_of(secret),
            support::map(&[("k", &format!("v-{i}"))]).unwrap(),
            "{name}"
        );
    }
    if backend == Backend::DevCluster {
        // The new process writes only the Secrets the killed one had not: none twice.
        assert_eq!(
            cluster.dev().write_count("secrets"),
            (BULK - at_kill.len()) as u64,
            "Secret writes after the restart"
        );
    }
    drop(second);
}

on_both_backends!(
    hostile_external_secrets_fail_alone_and_the_operator_keeps_serving,
    a_kill_during_a_bulk_sync_loses_no_secret_and_leaves_none_with_other_data,
);
