//! A live migration from ESO: Secrets created and owned by `external-secrets.io`
//! ExternalSecrets (ESO's CRD installed, the objects made by hand as ESO's controller would),
//! then the kuvert manifests `kuvert migrate` writes for the same ESO manifests applied. kuvert
//! adopts each Secret without rewriting its data, and no Secret is deleted on the way, not even
//! when ESO's ExternalSecret (its old owner) is deleted afterwards.

mod support;

use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, PostParams};
use kuvert_core::api::{ExternalSecret, SecretStore};
use kuvert_core::manifest::Manifest;
use support::{Backend, Cluster, Operator, eventually, yaml};

/// ESO's ExternalSecret CRD, reduced to what the API server needs to store the objects.
const ESO_CRD: &str = r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: externalsecrets.external-secrets.io}
spec:
  group: external-secrets.io
  scope: Namespaced
  names: {kind: ExternalSecret, listKind: ExternalSecretList, plural: externalsecrets, singular: externalsecret, shortNames: [es]}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}
"#;

/// The ESO manifests of the cluster being migrated.
const ESO_MANIFESTS: &str = r#"
apiVersion: external-secrets.io/v1
kind: SecretStore
metadata: {name: demo, namespace: default}
spec:
  provider:
    fake:
      data: [{key: shared, value: s3cr3t}, {key: user, value: admin}]
---
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata: {name: app, namespace: default}
spec:
  refreshInterval: 1h
  secretStoreRef: {name: demo, kind: SecretStore}
  target:
    name: app
    template:
      engineVersion: v2
      data:
        password: "{{ .pw }}"
        url: '{{ printf "postgres://%s:%s@db" .user .pw }}'
  data:
  - {secretKey: pw, remoteRef: {key: shared}}
  - {secretKey: user, remoteRef: {key: user}}
"#;

fn eso_external_secrets(cluster: &Cluster) -> Api<DynamicObject> {
    let resource = ApiResource {
        group: "external-secrets.io".into(),
        version: "v1".into(),
        api_version: "external-secrets.io/v1".into(),
        kind: "ExternalSecret".into(),
        plural: "externalsecrets".into(),
    };
    Api::namespaced_with(cluster.client.clone(), "default", &resource)
}

on_both_backends!(esos_secrets_are_adopted_with_their_data_unchanged_and_never_deleted);

async fn esos_secrets_are_adopted_with_their_data_unchanged_and_never_deleted(backend: Backend) {
    let cluster = Cluster::start_on(backend).await;
    let crds: Api<CustomResourceDefinition> = Api::all(cluster.client.clone());
    crds.create(&PostParams::default(), &yaml(ESO_CRD))
        .await
        .unwrap();
    let eso = eso_external_secrets(&cluster);
    eventually("ESO's CRD to serve", || async {
        eso.list(&Default::default()).await.is_ok()
    })
    .await;

    // What ESO left: its ExternalSecret, and the Secret its controller wrote and owns.
    let docs: Vec<serde_json::Value> = serde_saphyr::from_multiple(ESO_MANIFESTS).unwrap();
    let eso_es: DynamicObject = serde_json::from_value(docs[1].clone()).unwrap();
    let eso_es = eso.create(&PostParams::default(), &eso_es).await.unwrap();
    let secrets: Api<Secret> = Api::namespaced(cluster.client.clone(), "default");
    let written_by_eso: Secret = yaml(&format!(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: app\n  namespace: default\n  labels: {{reconcile.external-secrets.io/managed: 'true'}}\n  ownerReferences:\n  - {{apiVersion: external-secrets.io/v1, kind: ExternalSecret, name: app, uid: {}, controller: true, blockOwnerDeletion: true}}\nstringData: {{password: s3cr3t, url: 'postgres://admin:s3cr3t@db'}}\n",
        eso_es.metadata.uid.clone().unwrap()
    ));
    let before = secrets
        .create(&PostParams::default(), &written_by_eso)
        .await
        .unwrap();

    // The move: kuvert migrate's output, applied.
    let mut problems = Vec::new();
    let migrated =
        kuvert_operator::migrate::migrate_text("eso.yaml", ESO_MANIFESTS, &mut problems).unwrap();
    assert_eq!(problems, Vec::<String>::new());
    for object in Manifest::parse_all("migrated", &migrated).unwrap() {
        match object {
            Manifest::SecretStore(s) => {
                Api::<SecretStore>::namespaced(cluster.client.clone(), "default")
                    .create(&PostParams::default(), &s)
                    .await
                    .unwrap();
            }
            Manifest::ExternalSecret(es) => {
                Api::<ExternalSecret>::namespaced(cluster.client.clone(), "default")
                    .create(&PostParams::default(), &es)
                    .await
                    .unwrap();
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    let operator = Operator::start(&cluster, &[]);
    operator.wait_ready().await;

    eventually(
        "the Secret to be adopted by kuvert's ExternalSecret",
        || async {
            let s = secrets.get("app").await.unwrap();
            s.metadata
                .owner_references
                .unwrap_or_default()
                .iter()
                .any(|r| r.api_version.starts_with("kuvert.io/") && r.controller == Some(true))
        },
    )
    .await;
    let adopted = secrets.get("app").await.unwrap();
    assert_eq!(adopted.metadata.uid, before.metadata.uid, "the same Secret");
    assert_eq!(adopted.data, before.data, "its data unchanged");
    let owners = adopted.metadata.owner_references.clone().unwrap();
    assert_eq!(owners.len(), 1, "ESO's reference is gone: {owners:?}");
    let ess: Api<ExternalSecret> = Api::namespaced(cluster.client.clone(), "default");
    let es = ess.get("app").await.unwrap();
    let ready = &es.status.unwrap().conditions[0];
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_str()),
        ("True", "SecretSynced")
    );

    // ESO is uninstalled: its ExternalSecret goes, the Secret stays (the garbage collector
    // would delete a Secret that still named it as owner).
    eso.delete("app", &DeleteParams::default()).await.unwrap();
    eventually("ESO's ExternalSecret to be gone", || async {
        eso.get_opt("app").await.unwrap().is_none()
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = secrets.get("app").await.unwrap();
    assert_eq!(after.metadata.uid, before.metadata.uid);
    assert_eq!(after.data, before.data);
}
