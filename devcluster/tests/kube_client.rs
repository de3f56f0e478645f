//! Conformance-style tests: an unmodified kube-rs client against devcluster.

use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenReview};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret, ServiceAccount};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{
    Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams, WatchEvent,
    WatchParams,
};
use kube::core::{ApiResource, GroupVersionKind, PartialObjectMeta};
use kube::runtime::watcher;
use kuvert_devcluster::{Config, DevCluster, DevClusterHandle};
use serde_json::json;

async fn cluster() -> DevClusterHandle {
    DevCluster::start(Config::plain_http())
        .await
        .expect("devcluster starts")
}

fn api_error(e: kube::Error) -> kube::core::Status {
    match e {
        kube::Error::Api(s) => *s,
        other => panic!("expected an API error, got {other:?}"),
    }
}

fn secret(name: &str, labels: serde_json::Value) -> Secret {
    serde_json::from_value(
        json!({"metadata": {"name": name, "labels": labels}, "stringData": {"k": "v"}}),
    )
    .unwrap()
}

async fn eventually<F: AsyncFnMut() -> bool>(mut check: F) {
    for _ in 0..200 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("condition not reached within 10s");
}

#[tokio::test]
async fn secrets_support_crud_selectors_paging_and_conflicts() {
    let dc = cluster().await;
    let secrets: Api<Secret> = Api::namespaced(dc.client().unwrap(), "default");
    let pp = PostParams::default();
    let a = secrets
        .create(&pp, &secret("a", json!({"app": "web", "tier": "front"})))
        .await
        .unwrap();
    secrets
        .create(&pp, &secret("b", json!({"app": "api"})))
        .await
        .unwrap();
    secrets.create(&pp, &secret("c", json!({}))).await.unwrap();
    assert_eq!(a.data.unwrap()["k"].0, b"v", "stringData is stored as data");
    assert!(a.metadata.uid.is_some() && a.metadata.creation_timestamp.is_some());

    let names = |l: kube::core::ObjectList<Secret>| {
        l.items
            .into_iter()
            .map(|s| s.metadata.name.unwrap())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        names(
            secrets
                .list(&ListParams::default().labels("app=web"))
                .await
                .unwrap()
        ),
        ["a"]
    );
    assert_eq!(
        names(
            secrets
                .list(&ListParams::default().labels("app in (web,api)"))
                .await
                .unwrap()
        ),
        ["a", "b"]
    );
    assert_eq!(
        names(
            secrets
                .list(&ListParams::default().labels("!app"))
                .await
                .unwrap()
        ),
        ["c"]
    );
    assert_eq!(
        names(
            secrets
                .list(&ListParams::default().labels("app,tier notin (back)"))
                .await
                .unwrap()
        ),
        ["a", "b"]
    );
    assert_eq!(
        names(
            secrets
                .list(&ListParams::default().fields("metadata.name=b"))
                .await
                .unwrap()
        ),
        ["b"]
    );

    let page1 = secrets.list(&ListParams::default().limit(2)).await.unwrap();
    let token = page1.metadata.continue_.clone().expect("a continue token");
    assert_eq!(names(page1), ["a", "b"]);
    let page2 = secrets
        .list(&ListParams::default().limit(2).continue_token(&token))
        .await
        .unwrap();
    assert_eq!(page2.metadata.continue_, None);
    assert_eq!(names(page2), ["c"]);

    let generated = secrets
        .create(
            &pp,
            &serde_json::from_value(json!({"metadata": {"generateName": "gen-"}})).unwrap(),
        )
        .await
        .unwrap();
    let gname = generated.metadata.name.unwrap();
    assert!(gname.starts_with("gen-") && gname.len() == 9, "{gname}");

    let copied = secrets.get("b").await.unwrap();
    let mut copied_with_rv = copied.clone();
    copied_with_rv.metadata.name = Some("b-copy".into());
    copied_with_rv.metadata.uid = None;
    let rv_set = api_error(secrets.create(&pp, &copied_with_rv).await.unwrap_err());
    assert_eq!(
        (rv_set.code, rv_set.message.as_str()),
        (
            500,
            "resourceVersion should not be set on objects to be created"
        )
    );

    let dup = api_error(
        secrets
            .create(&pp, &secret("a", json!({})))
            .await
            .unwrap_err(),
    );
    assert_eq!((dup.code, dup.reason.as_str()), (409, "AlreadyExists"));

    let mut stale = secrets.get("a").await.unwrap();
    secrets
        .patch(
            "a",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"x": "1"}}})),
        )
        .await
        .unwrap();
    stale
        .metadata
        .labels
        .get_or_insert_default()
        .insert("y".into(), "2".into());
    let conflict = api_error(secrets.replace("a", &pp, &stale).await.unwrap_err());
    assert_eq!((conflict.code, conflict.reason.as_str()), (409, "Conflict"));
    assert!(
        conflict.message.contains("the object has been modified"),
        "{}",
        conflict.message
    );

    let fresh = secrets.get("a").await.unwrap();
    let rv = fresh.metadata.resource_version.clone();
    let same = secrets.replace("a", &pp, &fresh).await.unwrap();
    assert_eq!(
        same.metadata.resource_version, rv,
        "a no-op update keeps the resourceVersion"
    );

    let patched = secrets
        .patch(
            "a",
            &PatchParams::default(),
            &Patch::Json::<()>(
                serde_json::from_value(
                    json!([{"op": "add", "path": "/metadata/annotations", "value": {"n": "1"}}]),
                )
                .unwrap(),
            ),
        )
        .await
        .unwrap();
    assert_eq!(patched.metadata.annotations.unwrap()["n"], "1");
    let applied = secrets
        .patch("d", &PatchParams::apply("tester"), &Patch::Apply(json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "d"}, "stringData": {"x": "y"}})))
        .await
        .unwrap();
    assert_eq!(
        applied.metadata.managed_fields.unwrap()[0]
            .manager
            .as_deref(),
        Some("tester")
    );
    let no_manager = api_error(
        secrets
            .patch(
                "d",
                &PatchParams::default(),
                &Patch::Apply(json!({"metadata": {"name": "d"}})),
            )
            .await
            .unwrap_err(),
    );
    assert_eq!(no_manager.code, 422);

    secrets.delete("a", &DeleteParams::default()).await.unwrap();
    let gone = api_error(secrets.get("a").await.unwrap_err());
    assert_eq!(
        (gone.code, gone.reason.as_str(), gone.message.as_str()),
        (404, "NotFound", "secrets \"a\" not found")
    );
    let missing_ns = api_error(
        Api::<Secret>::namespaced(dc.client().unwrap(), "nope")
            .create(&pp, &secret("z", json!({})))
            .await
            .unwrap_err(),
    );
    assert_eq!(
        (missing_ns.code, missing_ns.message.as_str()),
        (404, "namespaces \"nope\" not found")
    );

    secrets
        .delete_collection(
            &DeleteParams::default(),
            &ListParams::default().labels("app"),
        )
        .await
        .unwrap();
    assert_eq!(
        names(secrets.list(&ListParams::default()).await.unwrap()),
        ["c", "d", gname.as_str()]
    );
    assert_eq!(dc.request_count("create", "secrets"), 7);
    assert_eq!(dc.request_count("update", "secrets"), 2);
}

fn deployment(name: &str, image: &str) -> Deployment {
    serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [{"name": "app", "image": image}]}}}
    }))
    .unwrap()
}

#[tokio::test]
async fn deployment_generation_and_status_subresource_are_separate() {
    let dc = cluster().await;
    let deploys: Api<Deployment> = Api::namespaced(dc.client().unwrap(), "default");
    let created = deploys
        .create(&PostParams::default(), &deployment("web", "nginx:1"))
        .await
        .unwrap();
    assert_eq!(created.metadata.generation, Some(1));

    let labelled = deploys
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"a": "b"}}})),
        )
        .await
        .unwrap();
    assert_eq!(
        labelled.metadata.generation,
        Some(1),
        "metadata changes do not bump generation"
    );

    let status = deploys
        .patch_status(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"replicas": 1}, "spec": {"replicas": 5}})),
        )
        .await
        .unwrap();
    assert_eq!(status.status.unwrap().replicas, Some(1));
    assert_eq!(
        status.spec.replicas,
        Some(1),
        "a status write does not change spec"
    );
    assert_eq!(status.metadata.generation, Some(1));

    let mut changed = deploys.get("web").await.unwrap();
    changed.spec.replicas = Some(3);
    changed.status.as_mut().unwrap().replicas = Some(9);
    let updated = deploys
        .replace("web", &PostParams::default(), &changed)
        .await
        .unwrap();
    assert_eq!(
        updated.metadata.generation,
        Some(2),
        "a spec change bumps generation"
    );
    assert_eq!(
        updated.status.unwrap().replicas,
        Some(1),
        "a main-resource write does not change status"
    );

    let strategic = deploys
        .patch("web", &PatchParams::default(), &Patch::Strategic(json!({"spec": {"template": {"spec": {"containers": [{"name": "side", "image": "busybox"}]}}}})))
        .await
        .unwrap();
    let containers: Vec<String> =
        serde_json::to_value(&strategic).unwrap()["spec"]["template"]["spec"]["containers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap().to_string())
            .collect();
    assert_eq!(
        containers,
        ["app", "side"],
        "strategic merge merges containers by name"
    );
}

fn widget_crd() -> CustomResourceDefinition {
    serde_json::from_value(json!({
        "metadata": {"name": "widgets.example.com"},
        "spec": {
            "group": "example.com",
            "scope": "Namespaced",
            "names": {"kind": "Widget", "plural": "widgets", "singular": "widget", "shortNames": ["wd"]},
            "versions": [{
                "name": "v1", "served": true, "storage": true,
                "subresources": {"status": {}},
                "schema": {"openAPIV3Schema": {
                    "type": "object",
                    "properties": {
                        "spec": {"type": "object", "required": ["size"], "properties": {
                            "size": {"type": "integer", "minimum": 1},
                            "color": {"type": "string", "enum": ["red", "blue"]}
                        }, "x-kubernetes-validations": [{"rule": "self.size != 13", "message": "size 13 is not allowed"}]},
                        "status": {"type": "object", "properties": {"ready": {"type": "boolean"}}}
                    }
                }}
            }]
        }
    }))
    .unwrap()
}

#[tokio::test]
async fn a_crd_created_at_runtime_is_served_validated_and_removed() {
    let dc = cluster().await;
    let client = dc.client().unwrap();
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let crd = crds
        .create(&PostParams::default(), &widget_crd())
        .await
        .unwrap();
    let established = crd
        .status
        .unwrap()
        .conditions
        .unwrap()
        .into_iter()
        .any(|c| c.type_ == "Established" && c.status == "True");
    assert!(established);

    let aggregated = kube::Discovery::new(client.clone())
        .run_aggregated()
        .await
        .unwrap();
    let (_, secret_caps) = aggregated
        .resolve_gvk(&GroupVersionKind::gvk("", "v1", "Secret"))
        .expect("Secret in aggregated discovery");
    assert_eq!(secret_caps.scope, kube::discovery::Scope::Namespaced);
    assert!(
        aggregated
            .resolve_gvk(&GroupVersionKind::gvk("example.com", "v1", "Widget"))
            .is_some(),
        "the new kind is in aggregated discovery"
    );
    let discovery = kube::Discovery::new(client.clone()).run().await.unwrap();
    let (ar, caps) = discovery
        .resolve_gvk(&GroupVersionKind::gvk("example.com", "v1", "Widget"))
        .expect("Widget is discoverable");
    assert_eq!(caps.scope, kube::discovery::Scope::Namespaced);

    let widgets: Api<DynamicObject> = Api::namespaced_with(client.clone(), "default", &ar);
    let w: DynamicObject = serde_json::from_value(
        json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w1"},
        "spec": {"size": 2, "unknown": true}, "status": {"ready": true}}),
    )
    .unwrap();
    let created = widgets.create(&PostParams::default(), &w).await.unwrap();
    assert_eq!(
        created.data["spec"],
        json!({"size": 2}),
        "unknown fields are pruned"
    );
    assert!(
        created.data.get("status").is_none(),
        "status is ignored on create"
    );
    assert_eq!(created.metadata.generation, Some(1));

    let invalid = |size: serde_json::Value| -> DynamicObject {
        serde_json::from_value(json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "bad"}, "spec": {"size": size, "color": "green"}})).unwrap()
    };
    let e = api_error(
        widgets
            .create(&PostParams::default(), &invalid(json!("big")))
            .await
            .unwrap_err(),
    );
    assert_eq!((e.code, e.reason.as_str()), (422, "Invalid"));
    assert!(
        e.message
            .starts_with("Widget.example.com \"bad\" is invalid: ["),
        "{}",
        e.message
    );
    assert!(e.message.contains("spec.size: Invalid value: \"string\": spec.size in body must be of type integer: \"string\""), "{}", e.message);
    assert!(
        e.message
            .contains("spec.color: Unsupported value: \"green\""),
        "{}",
        e.message
    );
    let cel = api_error(widgets.create(&PostParams::default(), &serde_json::from_value(json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "bad"}, "spec": {"size": 13}})).unwrap()).await.unwrap_err());
    assert_eq!(cel.code, 422);
    assert!(
        cel.message.contains("size 13 is not allowed"),
        "{}",
        cel.message
    );
    let strict = api_error(
        widgets
            .patch(
                "w1",
                &PatchParams::default().validation_strict(),
                &Patch::Merge(json!({"spec": {"bogus": 1}})),
            )
            .await
            .unwrap_err(),
    );
    assert_eq!(strict.code, 400);
    assert!(
        strict.message.contains("unknown field \"spec.bogus\""),
        "{}",
        strict.message
    );

    let mut unconditional = widgets.get("w1").await.unwrap();
    unconditional.metadata.resource_version = None;
    let refused = api_error(
        widgets
            .replace("w1", &PostParams::default(), &unconditional)
            .await
            .unwrap_err(),
    );
    assert_eq!(
        (refused.code, refused.message.as_str()),
        (
            422,
            "Widget.example.com \"w1\" is invalid: metadata.resourceVersion: Invalid value: 0x0: must be specified for an update"
        )
    );

    let with_status = widgets
        .patch_status(
            "w1",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"ready": true}})),
        )
        .await
        .unwrap();
    assert_eq!(with_status.data["status"], json!({"ready": true}));
    assert_eq!(with_status.metadata.generation, Some(1));
    let bumped = widgets
        .patch(
            "w1",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"size": 4}})),
        )
        .await
        .unwrap();
    assert_eq!(bumped.metadata.generation, Some(2));
    let strategic = api_error(
        widgets
            .patch(
                "w1",
                &PatchParams::default(),
                &Patch::Strategic(json!({"spec": {"size": 5}})),
            )
            .await
            .unwrap_err(),
    );
    assert_eq!(
        strategic.code, 415,
        "strategic merge patch is refused for custom resources"
    );

    crds.delete("widgets.example.com", &DeleteParams::default())
        .await
        .unwrap();
    let unserved = api_error(widgets.list(&ListParams::default()).await.unwrap_err());
    assert_eq!(unserved.code, 404);
    let _ = ApiResource::erase::<Secret>(&());
}

#[tokio::test]
async fn a_watcher_survives_410_by_relisting() {
    let dc = DevCluster::start(Config {
        watch_history: 4,
        bookmark_interval: Duration::from_secs(3600),
        ..Config::plain_http()
    })
    .await
    .unwrap();
    let client = dc.client().unwrap();
    let watched: Api<Secret> = Api::namespaced(client.clone(), "default");
    let other: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    watched
        .create(&PostParams::default(), &secret("before", json!({})))
        .await
        .unwrap();

    let (reader, writer) = kube::runtime::reflector::store();
    let mut stream =
        kube::runtime::reflector(writer, watcher(watched.clone(), watcher::Config::default()))
            .boxed();
    let mut seen = Vec::new();
    loop {
        match stream.try_next().await.unwrap().unwrap() {
            watcher::Event::InitApply(s) => seen.push(s.metadata.name.unwrap()),
            watcher::Event::InitDone => break,
            _ => {}
        }
    }
    assert_eq!(seen, ["before"]);

    // Push the watch's resourceVersion out of the bounded history, then cut the watch.
    let old_rv = dc.resource_version();
    for i in 0..10 {
        other
            .create(
                &PostParams::default(),
                &serde_json::from_value(json!({"metadata": {"name": format!("cm{i}")}})).unwrap(),
            )
            .await
            .unwrap();
    }
    let direct = watched
        .watch(&WatchParams::default(), &old_rv.to_string())
        .await
        .unwrap()
        .boxed()
        .next()
        .await
        .unwrap()
        .unwrap();
    match direct {
        WatchEvent::Error(e) => assert_eq!(e.code, 410),
        other => panic!("expected a 410 ERROR event, got {other:?}"),
    }
    dc.end_watches();

    let (mut saw_410, mut relisted) = (false, false);
    loop {
        match tokio::time::timeout(Duration::from_secs(10), stream.next())
            .await
            .expect("watcher event")
            .unwrap()
        {
            Err(watcher::Error::WatchError(e)) if e.code == 410 => saw_410 = true,
            Err(other) => panic!("unexpected watcher error {other:?}"),
            Ok(watcher::Event::Init) => relisted = true,
            Ok(watcher::Event::InitDone) => break,
            Ok(_) => {}
        }
    }
    assert!(saw_410 && relisted, "the watcher got 410 and re-listed");
    assert_eq!(dc.request_count("list", "secrets"), 2);

    watched
        .create(&PostParams::default(), &secret("after", json!({})))
        .await
        .unwrap();
    match tokio::time::timeout(Duration::from_secs(10), stream.try_next())
        .await
        .unwrap()
        .unwrap()
        .unwrap()
    {
        watcher::Event::Apply(s) => assert_eq!(s.metadata.name.as_deref(), Some("after")),
        other => panic!("expected the new secret, got {other:?}"),
    }
    let mut cached: Vec<String> = reader
        .state()
        .iter()
        .map(|s| s.metadata.name.clone().unwrap())
        .collect();
    cached.sort();
    assert_eq!(
        cached,
        ["after", "before"],
        "the reflector's cache is whole after the re-list"
    );
}

#[tokio::test]
async fn watches_replay_filter_by_selector_and_end_at_timeout() {
    let dc = cluster().await;
    let secrets: Api<Secret> = Api::namespaced(dc.client().unwrap(), "default");
    let start = dc.resource_version().to_string();
    secrets
        .create(&PostParams::default(), &secret("in", json!({"w": "yes"})))
        .await
        .unwrap();
    secrets
        .create(&PostParams::default(), &secret("out", json!({})))
        .await
        .unwrap();
    secrets
        .patch(
            "in",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"w": "no"}}})),
        )
        .await
        .unwrap();
    let events: Vec<_> = secrets
        .watch(&WatchParams::default().labels("w=yes").timeout(1), &start)
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    let summary: Vec<(String, String)> = events
        .into_iter()
        .map(|e| match e {
            WatchEvent::Added(s) => ("ADDED".into(), s.metadata.name.unwrap()),
            WatchEvent::Modified(s) => ("MODIFIED".into(), s.metadata.name.unwrap()),
            WatchEvent::Deleted(s) => ("DELETED".into(), s.metadata.name.unwrap()),
            other => ("OTHER".into(), format!("{other:?}")),
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("ADDED".to_string(), "in".to_string()),
            ("DELETED".to_string(), "in".to_string())
        ],
        "leaving the selector is a DELETED"
    );
}

#[tokio::test]
async fn metadata_watcher_gets_partial_objects() {
    let dc = cluster().await;
    let secrets: Api<Secret> = Api::namespaced(dc.client().unwrap(), "default");
    secrets
        .create(
            &PostParams::default(),
            &secret("m1", json!({"kuvert.io/managed": "true"})),
        )
        .await
        .unwrap();
    let list = secrets.list_metadata(&ListParams::default()).await.unwrap();
    assert_eq!(list.items[0].metadata.name.as_deref(), Some("m1"));
    let metas: Api<PartialObjectMeta<Secret>> = Api::namespaced(dc.client().unwrap(), "default");
    let mut stream = watcher(
        metas,
        watcher::Config::default().labels("kuvert.io/managed=true"),
    )
    .boxed();
    loop {
        if let watcher::Event::InitDone = stream.try_next().await.unwrap().unwrap() {
            break;
        }
    }
    secrets
        .create(
            &PostParams::default(),
            &secret("m2", json!({"kuvert.io/managed": "true"})),
        )
        .await
        .unwrap();
    match tokio::time::timeout(Duration::from_secs(5), stream.try_next())
        .await
        .unwrap()
        .unwrap()
        .unwrap()
    {
        watcher::Event::Apply(meta) => assert_eq!(meta.metadata.name.as_deref(), Some("m2")),
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(dc.request_count("watch", "secrets"), 1);
}

#[tokio::test]
async fn finalizers_hold_deletion_until_removed() {
    let dc = cluster().await;
    let cms: Api<ConfigMap> = Api::namespaced(dc.client().unwrap(), "default");
    cms.create(
        &PostParams::default(),
        &serde_json::from_value(
            json!({"metadata": {"name": "f", "finalizers": ["kuvert.io/cleanup"]}}),
        )
        .unwrap(),
    )
    .await
    .unwrap();
    let pending = cms.delete("f", &DeleteParams::default()).await.unwrap();
    let held = pending.left().expect("the object is still there");
    assert!(held.metadata.deletion_timestamp.is_some());
    let again = cms.get("f").await.unwrap();
    assert!(again.metadata.deletion_timestamp.is_some());
    let added = api_error(
        cms.patch(
            "f",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"finalizers": ["kuvert.io/cleanup", "x/y"]}})),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(added.code, 422, "no new finalizers on a deleting object");
    cms.patch(
        "f",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .unwrap();
    assert_eq!(api_error(cms.get("f").await.unwrap_err()).code, 404);
}

#[tokio::test]
async fn owned_objects_are_garbage_collected() {
    let dc = cluster().await;
    let client = dc.client().unwrap();
    let secrets: Api<Secret> = Api::namespaced(client.clone(), "default");
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    for (owner, policy) in [
        ("bg", DeleteParams::background()),
        ("fg", DeleteParams::foreground()),
        ("orphan", DeleteParams::orphan()),
    ] {
        let o = cms
            .create(
                &PostParams::default(),
                &serde_json::from_value(json!({"metadata": {"name": owner}})).unwrap(),
            )
            .await
            .unwrap();
        let owned = json!({"metadata": {"name": format!("{owner}-child"), "ownerReferences": [{"apiVersion": "v1", "kind": "ConfigMap", "name": owner, "uid": o.metadata.uid.unwrap()}]}});
        secrets
            .create(
                &PostParams::default(),
                &serde_json::from_value(owned).unwrap(),
            )
            .await
            .unwrap();
        cms.delete(owner, &policy).await.unwrap();
    }
    eventually(async || secrets.get_opt("bg-child").await.unwrap().is_none()).await;
    eventually(async || {
        secrets.get_opt("fg-child").await.unwrap().is_none()
            && cms.get_opt("fg").await.unwrap().is_none()
    })
    .await;
    eventually(async || cms.get_opt("orphan").await.unwrap().is_none()).await;
    let orphan = secrets.get("orphan-child").await.unwrap();
    assert!(
        orphan
            .metadata
            .owner_references
            .unwrap_or_default()
            .is_empty(),
        "orphaned dependents lose the owner reference"
    );
}

#[tokio::test]
async fn an_object_whose_owner_does_not_exist_is_collected_and_one_whose_owner_exists_is_kept() {
    let dc = cluster().await;
    let client = dc.client().unwrap();
    let secrets: Api<Secret> = Api::namespaced(client.clone(), "default");
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let owner = cms
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "owner"}})).unwrap(),
        )
        .await
        .unwrap();
    let owned_by = |name: &str, uid: &str| -> Secret {
        serde_json::from_value(json!({"metadata": {"name": name, "ownerReferences": [{"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": uid}]}})).unwrap()
    };
    let uid = owner.metadata.uid.unwrap();
    secrets
        .create(&PostParams::default(), &owned_by("kept", &uid))
        .await
        .unwrap();
    secrets
        .create(&PostParams::default(), &owned_by("dangling", "no-such-uid"))
        .await
        .unwrap();
    eventually(async || secrets.get_opt("dangling").await.unwrap().is_none()).await;
    assert!(secrets.get_opt("kept").await.unwrap().is_some());
    // An update that points an object at a missing owner releases it too.
    secrets
        .patch(
            "kept",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"ownerReferences": [{"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": "gone-uid"}]}})),
        )
        .await
        .unwrap();
    eventually(async || secrets.get_opt("kept").await.unwrap().is_none()).await;
}

#[tokio::test]
async fn a_namespace_carries_its_name_as_a_label_whatever_is_written() {
    let dc = cluster().await;
    let nss: Api<Namespace> = Api::all(dc.client().unwrap());
    let created = nss
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "team", "labels": {"a": "b"}}}))
                .unwrap(),
        )
        .await
        .unwrap();
    let name_label = ("kubernetes.io/metadata.name".to_owned(), "team".to_owned());
    assert_eq!(
        created.metadata.labels,
        Some([("a".to_owned(), "b".to_owned()), name_label.clone()].into())
    );
    let unlabel = json!({"metadata": {"labels": {"kubernetes.io/metadata.name": null, "a": null}}});
    let patched = nss
        .patch("team", &PatchParams::default(), &Patch::Merge(&unlabel))
        .await
        .unwrap();
    assert_eq!(patched.metadata.labels, Some([name_label].into()));
}

#[tokio::test]
async fn deleting_a_namespace_deletes_its_objects() {
    let dc = cluster().await;
    let client = dc.client().unwrap();
    let nss: Api<Namespace> = Api::all(client.clone());
    nss.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": "team"}})).unwrap(),
    )
    .await
    .unwrap();
    let secrets: Api<Secret> = Api::namespaced(client.clone(), "team");
    secrets
        .create(&PostParams::default(), &secret("s", json!({})))
        .await
        .unwrap();
    secrets
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "held", "finalizers": ["x/y"]}}))
                .unwrap(),
        )
        .await
        .unwrap();
    let sas: Api<ServiceAccount> = Api::namespaced(client.clone(), "team");
    assert!(
        sas.get_opt("default").await.unwrap().is_some(),
        "a namespace gets a default ServiceAccount"
    );
    nss.delete("team", &DeleteParams::default()).await.unwrap();
    let terminating = api_error(
        secrets
            .create(&PostParams::default(), &secret("late", json!({})))
            .await
            .unwrap_err(),
    );
    assert_eq!(terminating.code, 403);
    assert!(
        terminating
            .message
            .contains("because it is being terminated"),
        "{}",
        terminating.message
    );
    eventually(async || secrets.get_opt("s").await.unwrap().is_none()).await;
    assert_eq!(
        nss.get("team")
            .await
            .unwrap()
            .status
            .unwrap()
            .phase
            .as_deref(),
        Some("Terminating")
    );
    secrets
        .patch(
            "held",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"finalizers": null}})),
        )
        .await
        .unwrap();
    eventually(async || nss.get_opt("team").await.unwrap().is_none()).await;
    assert!(
        secrets
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
}

#[tokio::test]
async fn service_account_tokens_are_issued_and_reviewed() {
    let dc = DevCluster::start(Config::default()).await.unwrap();
    let client = dc.client().unwrap();
    let sas: Api<ServiceAccount> = Api::namespaced(client.clone(), "default");
    sas.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": "app"}})).unwrap(),
    )
    .await
    .unwrap();
    let req: TokenRequest =
        serde_json::from_value(json!({"spec": {"audiences": ["vault"], "expirationSeconds": 600}}))
            .unwrap();
    let issued = sas
        .create_token_request("app", &PostParams::default(), &req)
        .await
        .unwrap();
    let token = issued.status.unwrap().token.unwrap();

    let reviews: Api<TokenReview> = Api::all(client.clone());
    let review = |token: String, audiences: Vec<String>| -> TokenReview {
        serde_json::from_value(json!({"spec": {"token": token, "audiences": audiences}})).unwrap()
    };
    let ok = reviews
        .create(
            &PostParams::default(),
            &review(token.clone(), vec!["vault".into()]),
        )
        .await
        .unwrap()
        .status
        .unwrap();
    assert_eq!(ok.authenticated, Some(true));
    let user = ok.user.unwrap();
    assert_eq!(
        user.username.as_deref(),
        Some("system:serviceaccount:default:app")
    );
    assert_eq!(user.uid, sas.get("app").await.unwrap().metadata.uid);
    let wrong_aud = reviews
        .create(
            &PostParams::default(),
            &review(token.clone(), vec!["other".into()]),
        )
        .await
        .unwrap()
        .status
        .unwrap();
    assert_eq!(wrong_aud.authenticated, Some(false));

    let other = DevCluster::start(Config::plain_http()).await.unwrap();
    let other_sas: Api<ServiceAccount> = Api::namespaced(other.client().unwrap(), "default");
    other_sas
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "app"}})).unwrap(),
        )
        .await
        .unwrap();
    let forged = other_sas
        .create_token_request("app", &PostParams::default(), &req)
        .await
        .unwrap()
        .status
        .unwrap()
        .token
        .unwrap();
    let refused = reviews
        .create(
            &PostParams::default(),
            &review(forged, vec!["vault".into()]),
        )
        .await
        .unwrap()
        .status
        .unwrap();
    assert_eq!(
        refused.authenticated,
        Some(false),
        "a token signed by another key is refused"
    );

    sas.delete("app", &DeleteParams::default()).await.unwrap();
    let deleted = reviews
        .create(&PostParams::default(), &review(token, vec!["vault".into()]))
        .await
        .unwrap()
        .status
        .unwrap();
    assert_eq!(
        deleted.authenticated,
        Some(false),
        "a token of a deleted ServiceAccount is refused"
    );
    let missing = api_error(
        sas.create_token_request("app", &PostParams::default(), &req)
            .await
            .unwrap_err(),
    );
    assert_eq!(missing.code, 404);
}

#[tokio::test]
async fn requests_need_credentials_and_client_certificates_work() {
    let dc = DevCluster::start(Config {
        credential: kuvert_devcluster::Credential::ClientCertificate,
        ..Config::default()
    })
    .await
    .unwrap();
    let secrets: Api<Secret> = Api::namespaced(dc.client().unwrap(), "default");
    secrets
        .list(&ListParams::default())
        .await
        .expect("the client certificate authenticates");
    assert!(dc.kubeconfig_yaml().contains("client-certificate-data"));

    let mut anonymous = dc.kube_config().unwrap();
    anonymous.auth_info = Default::default();
    let anon: Api<Secret> = Api::namespaced(kube::Client::try_from(anonymous).unwrap(), "default");
    assert_eq!(
        api_error(anon.list(&ListParams::default()).await.unwrap_err()).code,
        401
    );

    let mut wrong = dc.kube_config().unwrap();
    wrong.auth_info = serde_json::from_value(json!({"token": "not-a-valid-token"})).unwrap();
    let wrong: Api<Secret> = Api::namespaced(kube::Client::try_from(wrong).unwrap(), "default");
    assert_eq!(
        api_error(wrong.list(&ListParams::default()).await.unwrap_err()).code,
        401
    );

    let open = DevCluster::start(Config {
        anonymous: true,
        ..Config::plain_http()
    })
    .await
    .unwrap();
    let mut anonymous = open.kube_config().unwrap();
    anonymous.auth_info = Default::default();
    let anon: Api<Secret> = Api::namespaced(kube::Client::try_from(anonymous).unwrap(), "default");
    anon.list(&ListParams::default())
        .await
        .expect("anonymous access when asked for");

    let extra = DevCluster::start(Config {
        tokens: vec![kuvert_devcluster::StaticToken {
            token: "t0ken".into(),
            user: "ci".into(),
            groups: vec![],
        }],
        ..Config::plain_http()
    })
    .await
    .unwrap();
    let mut with_token = extra.kube_config().unwrap();
    with_token.auth_info = serde_json::from_value(json!({"token": "t0ken"})).unwrap();
    let api: Api<Secret> = Api::namespaced(kube::Client::try_from(with_token).unwrap(), "default");
    api.list(&ListParams::default())
        .await
        .expect("a configured static token authenticates");
}

#[tokio::test]
async fn server_side_apply_removes_fields_its_manager_stopped_applying() {
    let dc = cluster().await;
    let secrets: Api<Secret> = Api::namespaced(dc.client().unwrap(), "default");
    let apply = |manager: &'static str, data: serde_json::Value| {
        let secrets = secrets.clone();
        async move {
            let body = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "ssa"}, "data": data});
            secrets
                .patch(
                    "ssa",
                    &PatchParams::apply(manager).force(),
                    &Patch::Apply(body),
                )
                .await
                .unwrap()
        }
    };
    apply("kuvert", json!({"a": "MQ==", "b": "Mg=="})).await;
    apply("other", json!({"c": "Mw=="})).await;
    let after = apply("kuvert", json!({"a": "MQ=="})).await;
    let keys: Vec<String> = after.data.unwrap().into_keys().collect();
    assert_eq!(
        keys,
        ["a", "c"],
        "b was dropped by its only applier, c belongs to another manager"
    );
    let managers: Vec<String> = after
        .metadata
        .managed_fields
        .unwrap()
        .into_iter()
        .filter_map(|f| f.manager)
        .collect();
    assert_eq!(managers, ["other", "kuvert"]);

    let body = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "ssa"}, "data": {"c": "Nw=="}});
    let conflict = api_error(
        secrets
            .patch(
                "ssa",
                &PatchParams::apply("kuvert"),
                &Patch::Apply(body.clone()),
            )
            .await
            .unwrap_err(),
    );
    assert_eq!((conflict.code, conflict.reason.as_str()), (409, "Conflict"));
    assert_eq!(
        conflict.message,
        "Apply failed with 1 conflict: conflict with \"other\": .data.c"
    );
    let same_value = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "ssa"}, "data": {"a": "MQ==", "c": "Mw=="}});
    secrets
        .patch(
            "ssa",
            &PatchParams::apply("kuvert"),
            &Patch::Apply(same_value),
        )
        .await
        .expect("sharing a field with the same value is no conflict");
    let forced = secrets
        .patch(
            "ssa",
            &PatchParams::apply("kuvert").force(),
            &Patch::Apply(body),
        )
        .await
        .unwrap();
    assert_eq!(forced.data.unwrap()["c"].0, b"7");
}

#[tokio::test]
async fn streaming_list_watchers_get_initial_events_and_the_end_bookmark() {
    let dc = cluster().await;
    let secrets: Api<Secret> = Api::namespaced(dc.client().unwrap(), "default");
    secrets
        .create(&PostParams::default(), &secret("s1", json!({})))
        .await
        .unwrap();
    let mut stream = watcher(
        secrets.clone(),
        watcher::Config::default().streaming_lists(),
    )
    .boxed();
    let mut seen = Vec::new();
    loop {
        match tokio::time::timeout(Duration::from_secs(5), stream.try_next())
            .await
            .unwrap()
            .unwrap()
            .unwrap()
        {
            watcher::Event::Init => seen.push("Init".to_string()),
            watcher::Event::InitApply(s) => seen.push(s.metadata.name.unwrap()),
            watcher::Event::InitDone => break,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(seen, ["Init", "s1"]);
    assert_eq!(
        dc.request_count("list", "secrets"),
        0,
        "a streaming list needs no list call"
    );
    secrets
        .create(&PostParams::default(), &secret("s2", json!({})))
        .await
        .unwrap();
    match tokio::time::timeout(Duration::from_secs(5), stream.try_next())
        .await
        .unwrap()
        .unwrap()
        .unwrap()
    {
        watcher::Event::Apply(s) => assert_eq!(s.metadata.name.as_deref(), Some("s2")),
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn kube_runtime_finalizer_helper_adds_runs_cleanup_and_releases() {
    use kube::runtime::controller::Action;
    use kube::runtime::finalizer::{Event, finalizer};
    use std::sync::Arc;

    let dc = cluster().await;
    let cms: Api<ConfigMap> = Api::namespaced(dc.client().unwrap(), "default");
    cms.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": "fin"}})).unwrap(),
    )
    .await
    .unwrap();
    let step = async |cms: &Api<ConfigMap>| -> &'static str {
        let obj = Arc::new(cms.get("fin").await.unwrap());
        let mut seen = "added";
        finalizer(cms, "kuvert.io/cleanup", obj, |event| {
            seen = match event {
                Event::Apply(_) => "apply",
                Event::Cleanup(_) => "cleanup",
            };
            async { Ok::<_, std::io::Error>(Action::await_change()) }
        })
        .await
        .unwrap();
        seen
    };
    assert_eq!(step(&cms).await, "added");
    assert_eq!(
        cms.get("fin").await.unwrap().metadata.finalizers,
        Some(vec!["kuvert.io/cleanup".to_string()])
    );
    assert_eq!(step(&cms).await, "apply");
    cms.delete("fin", &DeleteParams::default()).await.unwrap();
    assert_eq!(step(&cms).await, "cleanup");
    assert!(
        cms.get_opt("fin").await.unwrap().is_none(),
        "released once the finalizer is removed"
    );
}

#[tokio::test]
async fn crds_serve_every_version_and_cluster_scope() {
    let dc = cluster().await;
    let client = dc.client().unwrap();
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let crd: CustomResourceDefinition = serde_json::from_value(json!({
        "metadata": {"name": "gadgets.example.com"},
        "spec": {
            "group": "example.com", "scope": "Cluster",
            "names": {"kind": "Gadget", "plural": "gadgets"},
            "versions": [
                {"name": "v1beta1", "served": true, "storage": false, "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}},
                {"name": "v1", "served": true, "storage": true, "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}
            ]
        }
    }))
    .unwrap();
    crds.create(&PostParams::default(), &crd).await.unwrap();
    let gvk = |v: &str| GroupVersionKind::gvk("example.com", v, "Gadget");
    let beta: Api<DynamicObject> =
        Api::all_with(client.clone(), &ApiResource::from_gvk(&gvk("v1beta1")));
    let v1: Api<DynamicObject> = Api::all_with(client.clone(), &ApiResource::from_gvk(&gvk("v1")));
    let g: DynamicObject = serde_json::from_value(json!({"apiVersion": "example.com/v1beta1", "kind": "Gadget", "metadata": {"name": "g1"}, "spec": {"x": 1}})).unwrap();
    beta.create(&PostParams::default(), &g).await.unwrap();
    let read = v1.get("g1").await.unwrap();
    assert_eq!(read.types.unwrap().api_version, "example.com/v1");
    assert_eq!(read.data["spec"], json!({"x": 1}));
    assert_eq!(
        read.metadata.namespace, None,
        "cluster-scoped objects have no namespace"
    );
    let with_status = v1
        .patch(
            "g1",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"seen": true}})),
        )
        .await
        .unwrap();
    assert_eq!(
        with_status.metadata.generation,
        Some(2),
        "without a status subresource a status change is a change"
    );
    let namespaced: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        "default",
        &ApiResource::from_gvk(&gvk("v1")),
    );
    assert_eq!(api_error(namespaced.get("g1").await.unwrap_err()).code, 404);
}

#[tokio::test]
async fn watches_send_bookmarks_and_metadata_only_gets_work() {
    let dc = DevCluster::start(Config {
        bookmark_interval: Duration::from_millis(200),
        ..Config::plain_http()
    })
    .await
    .unwrap();
    let secrets: Api<Secret> = Api::namespaced(dc.client().unwrap(), "default");
    secrets
        .create(&PostParams::default(), &secret("b1", json!({})))
        .await
        .unwrap();
    let rv = dc.resource_version();
    let mut stream = secrets
        .watch(&WatchParams::default().timeout(5), &rv.to_string())
        .await
        .unwrap()
        .boxed();
    match tokio::time::timeout(Duration::from_secs(3), stream.try_next())
        .await
        .unwrap()
        .unwrap()
        .unwrap()
    {
        WatchEvent::Bookmark(b) => assert_eq!(b.metadata.resource_version, rv.to_string()),
        other => panic!("expected a bookmark, got {other:?}"),
    }
    let meta = secrets.get_metadata("b1").await.unwrap();
    assert_eq!(meta.metadata.name.as_deref(), Some("b1"));
    assert_eq!(meta.types.unwrap().kind, "PartialObjectMetadata");
}

#[tokio::test]
async fn recorder_events_are_visible_as_core_events() {
    use k8s_openapi::api::core::v1::{Event as CoreEvent, ObjectReference};
    use kube::runtime::events::{Event, EventType, Recorder, Reporter};

    let dc = cluster().await;
    let client = dc.client().unwrap();
    let recorder = Recorder::new(
        client.clone(),
        Reporter {
            controller: "kuvert".into(),
            instance: None,
        },
    );
    let target: ObjectReference = serde_json::from_value(json!({"apiVersion": "v1", "kind": "Secret", "name": "s", "namespace": "default", "uid": "u1"})).unwrap();
    let event = Event {
        type_: EventType::Normal,
        reason: "Synced".into(),
        note: Some("synced from the store".into()),
        action: "Sync".into(),
        secondary: None,
    };
    recorder.publish(&event, &target).await.unwrap();
    recorder.publish(&event, &target).await.unwrap();

    let core: Api<CoreEvent> = Api::namespaced(client.clone(), "default");
    let listed = core
        .list(&ListParams::default().fields("involvedObject.name=s"))
        .await
        .unwrap();
    assert_eq!(listed.items.len(), 1, "the repeated event is one series");
    let e = &listed.items[0];
    assert_eq!(e.involved_object.kind.as_deref(), Some("Secret"));
    assert_eq!(e.message.as_deref(), Some("synced from the store"));
    assert_eq!(e.reporting_component.as_deref(), Some("kuvert"));
    assert_eq!(e.series.as_ref().and_then(|s| s.count), Some(2));
    assert_eq!(dc.request_count("patch", "events"), 1);
}

#[tokio::test]
async fn status_applies_are_tracked_apart_from_object_applies() {
    let dc = cluster().await;
    let client = dc.client().unwrap();
    Api::<CustomResourceDefinition>::all(client.clone())
        .create(&PostParams::default(), &widget_crd())
        .await
        .unwrap();
    let widgets: Api<DynamicObject> = Api::namespaced_with(
        client,
        "default",
        &ApiResource::from_gvk(&GroupVersionKind::gvk("example.com", "v1", "Widget")),
    );
    let pp = PatchParams::apply("kuvert").force();
    let body = |extra: serde_json::Value| {
        let mut b =
            json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}});
        b.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        b
    };
    widgets
        .patch(
            "w",
            &pp,
            &Patch::Apply(body(json!({"spec": {"size": 2, "color": "red"}}))),
        )
        .await
        .unwrap();
    widgets
        .patch_status(
            "w",
            &pp,
            &Patch::Apply(body(json!({"status": {"ready": true}}))),
        )
        .await
        .unwrap();
    widgets
        .patch_status("w", &pp, &Patch::Apply(body(json!({"status": {}}))))
        .await
        .unwrap();
    let w = widgets.get("w").await.unwrap();
    assert_eq!(
        w.data["spec"],
        json!({"size": 2, "color": "red"}),
        "a status apply leaves the applied spec alone"
    );
    assert_eq!(
        w.data["status"],
        json!({}),
        "the status field the manager stopped applying is gone"
    );
    let entries: Vec<(String, Option<String>)> = w
        .metadata
        .managed_fields
        .unwrap()
        .into_iter()
        .map(|f| (f.manager.unwrap(), f.subresource))
        .collect();
    assert_eq!(
        entries,
        [
            ("kuvert".to_string(), None),
            ("kuvert".to_string(), Some("status".to_string()))
        ]
    );
}

#[tokio::test]
async fn access_reviews_allow_everything_as_there_is_no_authorization() {
    use k8s_openapi::api::authorization::v1::{SelfSubjectAccessReview, SelfSubjectRulesReview};
    let dc = cluster().await;
    let client = dc.client().unwrap();
    let reviews: Api<SelfSubjectAccessReview> = Api::all(client.clone());
    let review: SelfSubjectAccessReview = serde_json::from_value(json!({"spec": {"resourceAttributes": {"namespace": "default", "verb": "list", "resource": "secrets"}}})).unwrap();
    let answered = reviews
        .create(&PostParams::default(), &review)
        .await
        .unwrap();
    assert!(answered.status.unwrap().allowed);
    assert_eq!(
        answered
            .spec
            .resource_attributes
            .unwrap()
            .resource
            .as_deref(),
        Some("secrets")
    );
    let rules: Api<SelfSubjectRulesReview> = Api::all(client);
    let review: SelfSubjectRulesReview =
        serde_json::from_value(json!({"spec": {"namespace": "default"}})).unwrap();
    let answered = rules.create(&PostParams::default(), &review).await.unwrap();
    assert_eq!(answered.status.unwrap().resource_rules[0].verbs, ["*"]);
}
