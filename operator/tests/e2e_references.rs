//! A change to an object an ExternalSecret read itself (a `templateFrom` ConfigMap) re-syncs
//! exactly that ExternalSecret, although its refresh is an hour away.

mod support;

use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::{Api, Patch, PatchParams, PostParams};
use kuvert_core::api::{ExternalSecret, SecretStore};
use support::{Backend, Cluster, Operator, eventually, fake_store, yaml};

async fn value(secrets: &Api<Secret>, name: &str, key: &str) -> Option<String> {
    let secret = secrets.get_opt(name).await.unwrap()?;
    let bytes = secret.data?.remove(key)?.0;
    Some(String::from_utf8(bytes).unwrap())
}

fn templated(name: &str, config_map: &str) -> ExternalSecret {
    yaml(&format!(
        "apiVersion: kuvert.io/v1alpha1\nkind: ExternalSecret\nmetadata: {{name: {name}, namespace: default}}\nspec:\n  refreshInterval: 1h\n  secretStoreRef: {{name: demo}}\n  target:\n    template:\n      templateFrom:\n      - configMap: {{name: {config_map}, items: [{{key: conf}}]}}\n  data: [{{secretKey: k, remoteRef: {{key: k}}}}]\n"
    ))
}

/// Two ExternalSecrets template from two ConfigMaps; editing one ConfigMap re-renders its
/// ExternalSecret's Secret within 5 s, and the other Secret is not written again.
async fn an_edited_template_source_re_syncs_exactly_its_external_secret(backend: Backend) {
    let cluster = Cluster::start_on(backend).await;
    let client = cluster.client.clone();
    Api::<SecretStore>::namespaced(client.clone(), "default")
        .create(
            &PostParams::default(),
            &fake_store("default", &[("k", "v")]),
        )
        .await
        .unwrap();
    let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    for name in ["tpl-a", "tpl-b"] {
        let cm: ConfigMap = yaml(&format!(
            "metadata: {{name: {name}, namespace: default}}\ndata: {{conf: 'one={{{{ k }}}}'}}\n"
        ));
        config_maps
            .create(&PostParams::default(), &cm)
            .await
            .unwrap();
    }
    let operator = Operator::start(&cluster, &[]);
    operator.wait_ready().await;
    let ess: Api<ExternalSecret> = Api::namespaced(client.clone(), "default");
    ess.create(&PostParams::default(), &templated("a", "tpl-a"))
        .await
        .unwrap();
    ess.create(&PostParams::default(), &templated("b", "tpl-b"))
        .await
        .unwrap();
    let secrets: Api<Secret> = Api::namespaced(client.clone(), "default");
    eventually("both Secrets rendered", || async {
        value(&secrets, "a", "conf").await.as_deref() == Some("one=v")
            && value(&secrets, "b", "conf").await.as_deref() == Some("one=v")
    })
    .await;
    let b_version = secrets.get("b").await.unwrap().metadata.resource_version;

    let edit = serde_json::json!({"data": {"conf": "two={{ k }}"}});
    config_maps
        .patch("tpl-a", &PatchParams::default(), &Patch::Merge(&edit))
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while value(&secrets, "a", "conf").await.as_deref() != Some("two=v") {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the edited template not rendered within 5 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        secrets.get("b").await.unwrap().metadata.resource_version,
        b_version,
        "the other Secret is untouched"
    );
}

on_both_backends!(an_edited_template_source_re_syncs_exactly_its_external_secret);
