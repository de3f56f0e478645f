//! `kuvert run` keeps one namespace user from flooding a store (issue 22): an ExternalSecret
//! asking for `refreshInterval: 1ms` is refreshed at the floor (10 s by default), says so in
//! its status and an Event, and reads OpenBao once per refresh, counted on OpenBao's side from
//! its audit log; another ExternalSecret on the same store keeps syncing meanwhile.

mod support;

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kuvert_core::api::{ExternalSecret, SecretStore};
use kuvert_testkit::OpenBao;
use serde_json::json;
use support::{Backend, Cluster, Operator, eventually, external_secret_events, ready, yaml};

async fn password(secrets: &Api<Secret>, name: &str) -> Option<String> {
    let secret = secrets.get_opt(name).await.unwrap()?;
    let value = secret.data?.remove("password")?;
    Some(String::from_utf8(value.0).unwrap())
}

fn reading(name: &str, key: &str, interval: &str) -> ExternalSecret {
    yaml(&format!(
        "apiVersion: kuvert.io/v1alpha1\nkind: ExternalSecret\nmetadata: {{name: {name}, namespace: default}}\nspec:\n  refreshInterval: {interval}\n  secretStoreRef: {{name: vault}}\n  data:\n    - secretKey: password\n      remoteRef: {{key: {key}, property: password}}\n"
    ))
}

/// Read requests OpenBao logged for `path` (e.g. `secret/data/flood`) in the audit log text.
fn reads_of(log: &str, path: &str) -> usize {
    log.lines()
        .filter(|line| line.ends_with('}'))
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|entry| {
            entry["type"] == "request"
                && entry["request"]["operation"] == "read"
                && entry["request"]["path"] == path
        })
        .count()
}

fn audit_log(bao: &OpenBao) -> String {
    std::fs::read_to_string(bao.audit_log()).unwrap_or_default()
}

async fn status_of(
    ess: &Api<ExternalSecret>,
    name: &str,
) -> kuvert_core::api::ExternalSecretStatus {
    ess.get(name).await.unwrap().status.unwrap_or_default()
}

async fn a_one_millisecond_refresh_is_raised_to_the_floor_and_does_not_flood_the_store(
    backend: Backend,
) {
    let bao = OpenBao::start_audited().await;
    bao.kv2_put("secret", "flood", json!({"password": "f1"}))
        .await;
    bao.kv2_put("secret", "app", json!({"password": "a1"}))
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
    let store: SecretStore = yaml(&format!(
        "apiVersion: kuvert.io/v1alpha1\nkind: SecretStore\nmetadata: {{name: vault, namespace: default}}\nspec:\n  provider:\n    vault:\n      server: {addr}\n      path: secret\n      auth:\n        tokenSecretRef: {{name: vault-token, key: token}}\n",
        addr = bao.addr(),
    ));
    Api::<SecretStore>::namespaced(cluster.client.clone(), "default")
        .create(&PostParams::default(), &store)
        .await
        .unwrap();
    // The default flags: `--min-refresh-interval 10s`.
    let operator = Operator::start(&cluster, &[]);
    operator.wait_ready().await;
    let ess: Api<ExternalSecret> = Api::namespaced(cluster.client.clone(), "default");
    ess.create(&PostParams::default(), &reading("flood", "flood", "1ms"))
        .await
        .unwrap();
    ess.create(&PostParams::default(), &reading("app", "app", "1h"))
        .await
        .unwrap();
    eventually("both Secrets to be synced", || async {
        password(&secrets, "flood").await.as_deref() == Some("f1")
            && password(&secrets, "app").await.as_deref() == Some("a1")
            && ready(&ess, "flood").await == Some(("True".into(), "SecretSynced".into()))
    })
    .await;

    // The status shows the interval in effect and why.
    let status = status_of(&ess, "flood").await;
    assert_eq!(status.refresh_interval.as_deref(), Some("10s"));
    let condition = kuvert_core::conditions::find_ready(&status.conditions).unwrap();
    assert_eq!(
        condition.message,
        "Secret default/flood is in sync (1 key); spec.refreshInterval 1ms is below this kuvert's minimum 10s: refreshed every 10s"
    );
    eventually(
        "the Warning Event saying the interval was raised",
        || async {
            external_secret_events(&cluster.client, "default")
                .await
                .contains(&(
                    "flood".to_owned(),
                    "Warning".to_owned(),
                    "RefreshIntervalRaised".to_owned(),
                ))
        },
    )
    .await;
    let app_status = status_of(&ess, "app").await;
    assert_eq!(app_status.refresh_interval.as_deref(), Some("1h"));

    // From here, count OpenBao's reads of `flood` while the object refreshes twice.
    let before = reads_of(&audit_log(&bao), "secret/data/flood");
    let seen = std::cell::RefCell::new(vec![status.refresh_time.clone().unwrap()]);
    eventually("two more refreshes of flood", || async {
        let now = status_of(&ess, "flood").await.refresh_time.unwrap();
        let mut seen = seen.borrow_mut();
        if seen.last() != Some(&now) {
            seen.push(now);
        }
        seen.len() >= 3
    })
    .await;
    let seen = seen.into_inner();
    let reads = reads_of(&audit_log(&bao), "secret/data/flood") - before;
    // Two refreshes cost two reads (a third may have started since): at 1ms it was thousands.
    assert!(
        (2..=3).contains(&reads),
        "OpenBao logged {reads} reads of flood over two refreshes"
    );
    let gaps: Vec<i64> = seen
        .windows(2)
        .map(|w| w[1].0.as_second() - w[0].0.as_second())
        .collect();
    // Due 9 to 10 s after the last refresh, stamped in whole seconds.
    assert!(
        gaps.iter().all(|gap| *gap >= 8),
        "refreshes {gaps:?} s apart: more often than every 10 s"
    );

    // Meanwhile the other ExternalSecret on the same store syncs as asked.
    bao.kv2_put("secret", "app", json!({"password": "a2"}))
        .await;
    ess.patch(
        "app",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"annotations": {"kuvert.io/force-sync": "1"}}})),
    )
    .await
    .unwrap();
    eventually("the other ExternalSecret to sync a2", || async {
        password(&secrets, "app").await.as_deref() == Some("a2")
    })
    .await;
    drop(operator);
}

on_both_backends!(a_one_millisecond_refresh_is_raised_to_the_floor_and_does_not_flood_the_store);
