//! Generators through `kuvert run`: a Password ExternalSecret gets a password of the asked
//! shape that stays the same through drift repair, a deleted Secret, an unrelated spec change
//! and an operator restart, and changes on force-sync; deleting the ExternalSecret lets it go.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kuvert_core::api::ExternalSecret;
use support::{Backend, Cluster, Operator, eventually, secret_data, yaml};

const PASSWORD: &str = "apiVersion: generators.kuvert.io/v1alpha1\nkind: Password\nmetadata: {name: pw, namespace: default}\nspec: {length: 32, digits: 5, symbols: 4, symbolCharacters: '#%+', allowRepeat: true}\n";
const UUID: &str = "apiVersion: generators.kuvert.io/v1alpha1\nkind: UUID\nmetadata: {name: id, namespace: default}\nspec: {}\n";
const ES: &str = "apiVersion: kuvert.io/v1alpha1\nkind: ExternalSecret\nmetadata: {name: app, namespace: default}\nspec:\n  refreshInterval: 1h\n  dataFrom:\n  - sourceRef: {generatorRef: {apiVersion: generators.kuvert.io/v1alpha1, kind: Password, name: pw}}\n  data:\n  - secretKey: instance-id\n    sourceRef: {generatorRef: {kind: UUID, name: id}}\n";

async fn create_generic(cluster: &Cluster, text: &str, plural: &str) {
    let object: kube::api::DynamicObject = yaml(text);
    let resource = kube::api::ApiResource {
        group: "generators.kuvert.io".into(),
        version: "v1alpha1".into(),
        api_version: "generators.kuvert.io/v1alpha1".into(),
        kind: object.types.as_ref().unwrap().kind.clone(),
        plural: plural.into(),
    };
    Api::<kube::api::DynamicObject>::namespaced_with(cluster.client.clone(), "default", &resource)
        .create(&PostParams::default(), &object)
        .await
        .unwrap();
}

fn assert_password_shape(password: &str) {
    assert_eq!(password.chars().count(), 32, "length");
    assert_eq!(password.chars().filter(|c| c.is_ascii_digit()).count(), 5);
    assert_eq!(password.chars().filter(|c| "#%+".contains(*c)).count(), 4);
    assert_eq!(
        password.chars().filter(|c| c.is_ascii_alphabetic()).count(),
        23
    );
}

/// How many times this operator process ran generators of `kind`, successfully.
async fn generated(operator: &Operator, kind: &str) -> u64 {
    let (_, metrics) = operator.get("/metrics").await;
    let prefix = format!(
        "kuvert_generator_requests_total{{kind=\"{kind}\",operation=\"generate\",outcome=\"ok\"}} "
    );
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .map_or(0, |v| v.parse().unwrap())
}

async fn current(secrets: &Api<Secret>) -> Option<BTreeMap<String, String>> {
    secret_data(secrets, "app").await
}

async fn a_generated_password_stays_until_force_sync_through_drift_restarts_and_spec_changes(
    backend: Backend,
) {
    let cluster = Cluster::start_on(backend).await;
    create_generic(&cluster, PASSWORD, "passwords").await;
    create_generic(&cluster, UUID, "uuids").await;
    let ess: Api<ExternalSecret> = Api::namespaced(cluster.client.clone(), "default");
    ess.create(&PostParams::default(), &yaml(ES)).await.unwrap();
    let secrets: Api<Secret> = Api::namespaced(cluster.client.clone(), "default");

    let mut operator = Operator::start(&cluster, &[]);
    operator.wait_ready().await;
    eventually("the Secret to be written", || async {
        current(&secrets).await.is_some()
    })
    .await;
    let first = current(&secrets).await.unwrap();
    assert_eq!(
        first.keys().collect::<Vec<_>>(),
        ["instance-id", "password"]
    );
    assert_password_shape(&first["password"]);
    assert_eq!(first["instance-id"].len(), 36);
    assert_eq!(&first["instance-id"][14..15], "4");

    // The values are kept in a companion Secret owned by the ExternalSecret, never in status.
    let companion = secrets.get("app.kuvert-generated").await.unwrap();
    assert_eq!(
        companion
            .labels()
            .get("kuvert.io/managed")
            .map(String::as_str),
        Some("true")
    );
    assert_eq!(companion.owner_references()[0].name, "app");
    let es = ess.get("app").await.unwrap();
    assert!(
        es.finalizers()
            .contains(&"kuvert.io/generator-leases".to_owned())
    );
    let status = serde_json::to_string(&es.status).unwrap();
    assert!(!status.contains(&first["password"]), "{status}");

    // Drift: an edited Secret is restored with the same password.
    let mut edited = secrets.get("app").await.unwrap();
    edited
        .data
        .as_mut()
        .unwrap()
        .insert("password".into(), ByteString(b"tampered".to_vec()));
    secrets
        .replace("app", &PostParams::default(), &edited)
        .await
        .unwrap();
    eventually("the edited Secret to be restored", || async {
        current(&secrets)
            .await
            .is_some_and(|d| d["password"] != "tampered")
    })
    .await;
    assert_eq!(current(&secrets).await.unwrap(), first);

    // A deleted Secret comes back with the same values.
    secrets
        .delete("app", &DeleteParams::default())
        .await
        .unwrap();
    eventually("the deleted Secret to be re-created", || async {
        current(&secrets).await.is_some()
    })
    .await;
    assert_eq!(current(&secrets).await.unwrap(), first);

    // A change of something else in the spec keeps them too.
    ess.patch(
        "app",
        &PatchParams::default(),
        &Patch::Merge(serde_json::json!({"spec": {"target": {"template": {"metadata": {"labels": {"team": "a"}}}}}})),
    )
    .await
    .unwrap();
    eventually("the label to be applied", || async {
        secrets
            .get("app")
            .await
            .unwrap()
            .labels()
            .get("team")
            .is_some()
    })
    .await;
    assert_eq!(current(&secrets).await.unwrap(), first);

    // Through drift, deletion and a spec change, each generator ran exactly once.
    assert_eq!(generated(&operator, "Password").await, 1);
    assert_eq!(generated(&operator, "UUID").await, 1);

    // A restarted operator regenerates nothing.
    operator.stop();
    let before_restart = secrets.get("app").await.unwrap().resource_version();
    let mut operator = Operator::start(&cluster, &[]);
    operator.wait_ready().await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(current(&secrets).await.unwrap(), first);
    assert_eq!(
        secrets.get("app").await.unwrap().resource_version(),
        before_restart,
        "the Secret was rewritten after a restart"
    );

    // Force-sync generates new values.
    ess.patch(
        "app",
        &PatchParams::default(),
        &Patch::Merge(
            serde_json::json!({"metadata": {"annotations": {"kuvert.io/force-sync": "1"}}}),
        ),
    )
    .await
    .unwrap();
    eventually("force-sync to generate a new password", || async {
        current(&secrets)
            .await
            .is_some_and(|d| d["password"] != first["password"])
    })
    .await;
    let forced = current(&secrets).await.unwrap();
    assert_eq!(
        generated(&operator, "Password").await,
        1,
        "only the force-sync generated"
    );
    assert_password_shape(&forced["password"]);
    assert_ne!(forced["instance-id"], first["instance-id"]);

    // Deleting the ExternalSecret completes: the finalizer is removed once nothing is held.
    ess.delete("app", &DeleteParams::default()).await.unwrap();
    eventually("the ExternalSecret to be gone", || async {
        ess.get_opt("app").await.unwrap().is_none()
    })
    .await;
    operator.stop();
}

async fn a_missing_generator_is_reported_and_picked_up_once_created(backend: Backend) {
    let cluster = Cluster::start_on(backend).await;
    let ess: Api<ExternalSecret> = Api::namespaced(cluster.client.clone(), "default");
    ess.create(&PostParams::default(), &yaml(ES)).await.unwrap();
    let secrets: Api<Secret> = Api::namespaced(cluster.client.clone(), "default");
    let mut operator = Operator::start(&cluster, &[]);
    operator.wait_ready().await;
    eventually("the missing generator to be reported", || async {
        ess.get("app").await.unwrap().status.is_some_and(|s| {
            s.conditions.iter().any(|c| {
                c.reason == "GeneratorNotFound"
                    && c.message
                        == "spec.dataFrom[0].sourceRef.generatorRef: Password/default/pw not found"
            })
        })
    })
    .await;
    create_generic(&cluster, PASSWORD, "passwords").await;
    create_generic(&cluster, UUID, "uuids").await;
    eventually(
        "the Secret to be written once the generators exist",
        || async { current(&secrets).await.is_some() },
    )
    .await;
    assert_password_shape(&current(&secrets).await.unwrap()["password"]);
    operator.stop();
}

async fn a_generator_of_another_controller_class_is_refused_naming_the_field(backend: Backend) {
    let cluster = Cluster::start_on(backend).await;
    create_generic(
        &cluster,
        "apiVersion: generators.kuvert.io/v1alpha1\nkind: Fake\nmetadata: {name: blue, namespace: default}\nspec: {controller: blue, data: {k: v}}\n",
        "fakes",
    )
    .await;
    let ess: Api<ExternalSecret> = Api::namespaced(cluster.client.clone(), "default");
    ess.create(
        &PostParams::default(),
        &yaml("apiVersion: kuvert.io/v1alpha1\nkind: ExternalSecret\nmetadata: {name: app, namespace: default}\nspec:\n  dataFrom:\n  - sourceRef: {generatorRef: {kind: Fake, name: blue}}\n"),
    )
    .await
    .unwrap();
    let mut operator = Operator::start(&cluster, &[]);
    operator.wait_ready().await;
    eventually("the class mismatch to be reported", || async {
        ess.get("app").await.unwrap().status.is_some_and(|s| {
            s.conditions.iter().any(|c| {
                c.reason == "InvalidSpec"
                    && c.message
                        == "spec.dataFrom[0].sourceRef.generatorRef: Fake/default/blue: invalid spec: spec.controller: the generator belongs to controller class \"blue\", and this kuvert serves \"\""
            })
        })
    })
    .await;
    let secrets: Api<Secret> = Api::namespaced(cluster.client.clone(), "default");
    assert_eq!(current(&secrets).await, None);
    operator.stop();
}

on_both_backends!(
    a_generated_password_stays_until_force_sync_through_drift_restarts_and_spec_changes,
    a_missing_generator_is_reported_and_picked_up_once_created,
    a_generator_of_another_controller_class_is_refused_naming_the_field,
);
