//! The real `kubectl` against devcluster (TLS, generated CA, token from the written kubeconfig).
//! `kubectl` must be on PATH (or named by `KUBECTL`); these tests fail without it.

mod support;

use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;
use support::Kubectl;

const SECRET: &str = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: s1\n  labels: {app: web}\nstringData:\n  password: hunter2\n";

const DEPLOYMENT: &str = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: app
        image: IMAGE
        env: [{name: A, value: \"1\"}]
";

#[tokio::test]
async fn kubectl_creates_applies_labels_patches_and_deletes() {
    let k = Kubectl::start().await;
    let secret = k.file("secret.yaml", SECRET);
    assert_eq!(
        k.ok(&["create", "-f", &secret]).await.trim(),
        "secret/s1 created"
    );
    let yaml = k.ok(&["get", "secret", "s1", "-o", "yaml"]).await;
    assert!(yaml.contains("password: aHVudGVyMg=="), "{yaml}");
    assert!(
        yaml.contains("resourceVersion:") && yaml.contains("uid:"),
        "{yaml}"
    );

    let v1 = k.file("deploy1.yaml", &DEPLOYMENT.replace("IMAGE", "nginx:1"));
    let v2 = k.file("deploy2.yaml", &DEPLOYMENT.replace("IMAGE", "nginx:2"));
    assert_eq!(
        k.ok(&["apply", "-f", &v1]).await.trim(),
        "deployment.apps/web created"
    );
    assert_eq!(
        k.ok(&["apply", "-f", &v2]).await.trim(),
        "deployment.apps/web configured"
    );
    assert_eq!(
        k.ok(&["apply", "-f", &v2]).await.trim(),
        "deployment.apps/web unchanged"
    );
    let d = k.get_json(&["get", "deployment", "web"]).await;
    assert_eq!(
        d["spec"]["template"]["spec"]["containers"][0]["image"],
        "nginx:2"
    );
    assert_eq!(d["metadata"]["generation"], 2);
    assert!(
        d["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"]
            .is_string()
    );

    assert_eq!(
        k.ok(&["apply", "--server-side", "-f", &secret])
            .await
            .trim(),
        "secret/s1 serverside-applied"
    );
    let s = k
        .get_json(&["get", "secret", "s1", "--show-managed-fields"])
        .await;
    assert!(
        s["metadata"]["managedFields"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["manager"] == "kubectl" && f["operation"] == "Apply"),
        "{s}"
    );

    assert_eq!(
        k.ok(&["label", "secret", "s1", "tier=back"]).await.trim(),
        "secret/s1 labeled"
    );
    assert_eq!(
        k.ok(&["annotate", "secret", "s1", "note=hi"]).await.trim(),
        "secret/s1 annotated"
    );
    k.ok(&[
        "patch",
        "secret",
        "s1",
        "--type",
        "merge",
        "-p",
        r#"{"metadata":{"labels":{"m":"1"}}}"#,
    ])
    .await;
    k.ok(&[
        "patch",
        "secret",
        "s1",
        "--type",
        "json",
        "-p",
        r#"[{"op":"add","path":"/metadata/labels/j","value":"2"}]"#,
    ])
    .await;
    k.ok(&[
        "patch",
        "deployment",
        "web",
        "--type",
        "strategic",
        "-p",
        r#"{"spec":{"template":{"spec":{"containers":[{"name":"app","image":"nginx:3"}]}}}}"#,
    ])
    .await;
    let s = k.get_json(&["get", "secret", "s1"]).await;
    assert_eq!(
        s["metadata"]["labels"],
        json!({"app": "web", "tier": "back", "m": "1", "j": "2"})
    );
    assert_eq!(s["metadata"]["annotations"]["note"], "hi");
    let d = k.get_json(&["get", "deploy", "web"]).await;
    assert_eq!(
        d["spec"]["template"]["spec"]["containers"],
        json!([{"name": "app", "image": "nginx:3", "env": [{"name": "A", "value": "1"}]}])
    );

    let listing = k.ok(&["get", "secrets", "-l", "tier=back"]).await;
    assert!(
        listing.starts_with("NAME") && listing.contains("s1"),
        "{listing}"
    );

    let bad_json = k
        .run(&[
            "patch",
            "secret",
            "s1",
            "--type",
            "json",
            "-p",
            r#"[{"op":"remove","path":"/nope"}]"#,
        ])
        .await;
    assert!(!bad_json.ok);

    k.ok(&["delete", "secret", "s1"]).await;
    let gone = k.run(&["get", "secret", "s1"]).await;
    assert!(!gone.ok);
    assert!(
        gone.stderr.contains("secrets \"s1\" not found"),
        "{}",
        gone.stderr
    );
    k.ok(&["delete", "-f", &v2]).await;
    assert!(
        k.get_json(&["get", "deployments"]).await["items"]
            .as_array()
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn kubectl_get_watch_streams_changes_until_the_request_timeout() {
    let k = Kubectl::start().await;
    let watch = k
        .command(&[
            "get",
            "secrets",
            "-w",
            "--output-watch-events",
            "-o",
            "jsonpath={.type} {.object.metadata.name}{\"\\n\"}",
            "--request-timeout=4s",
        ])
        .output();
    let watch = tokio::spawn(watch);
    let secrets: Api<Secret> = Api::namespaced(k.dc.client().unwrap(), "default");
    for _ in 0..600 {
        if k.dc.request_count("watch", "secrets") > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        k.dc.request_count("watch", "secrets"),
        1,
        "kubectl started watching"
    );
    secrets
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "w1"}})).unwrap(),
        )
        .await
        .unwrap();
    secrets
        .patch(
            "w1",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"a": "b"}}})),
        )
        .await
        .unwrap();
    secrets.delete("w1", &Default::default()).await.unwrap();
    let out = watch.await.unwrap().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines,
        ["ADDED w1", "MODIFIED w1", "DELETED w1"],
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

const CRD: &str = "apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  names: {kind: Widget, plural: widgets, singular: widget, shortNames: [wd]}
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    subresources: {status: {}}
    additionalPrinterColumns:
    - {name: Size, type: integer, jsonPath: .spec.size}
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            required: [size]
            properties:
              size: {type: integer, minimum: 1}
";

#[tokio::test]
async fn kubectl_serves_custom_resources_and_reports_schema_violations() {
    let k = Kubectl::start().await;
    let crd = k.file("crd.yaml", CRD);
    k.ok(&["apply", "-f", &crd]).await;
    k.ok(&[
        "wait",
        "--for",
        "condition=established",
        "crd/widgets.example.com",
        "--timeout=10s",
    ])
    .await;
    let w = k.file(
        "w.yaml",
        "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w1}\nspec: {size: 3}\n",
    );
    assert_eq!(
        k.ok(&["apply", "-f", &w]).await.trim(),
        "widget.example.com/w1 created"
    );
    let table = k.ok(&["get", "wd"]).await;
    let header: Vec<&str> = table.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["NAME", "SIZE", "AGE"]);
    assert!(table.lines().nth(1).unwrap().starts_with("w1"), "{table}");
    k.ok(&["apply", "--server-side", "-f", &w]).await;
    k.ok(&[
        "patch",
        "widget",
        "w1",
        "--type",
        "merge",
        "-p",
        r#"{"spec":{"size":5}}"#,
    ])
    .await;
    assert_eq!(
        k.get_json(&["get", "widget", "w1"]).await["metadata"]["generation"],
        2
    );

    let invalid = k.file(
        "bad.yaml",
        "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w2}\nspec: {size: big}\n",
    );
    let out = k.run(&["apply", "-f", &invalid]).await;
    assert!(!out.ok);
    assert!(out.stderr.contains("The Widget \"w2\" is invalid: spec.size: Invalid value: \"string\": spec.size in body must be of type integer: \"string\""), "{}", out.stderr);
    let unknown = k.file("unknown.yaml", "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w3}\nspec: {size: 1, extra: 1}\n");
    let out = k.run(&["create", "-f", &unknown]).await;
    assert!(!out.ok);
    assert!(
        out.stderr.contains("unknown field \"spec.extra\""),
        "{}",
        out.stderr
    );

    k.ok(&["delete", "-f", &crd]).await;
    let crds = k.get_json(&["get", "crds"]).await;
    assert!(crds["items"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn kubectl_imperative_creates_and_namespace_deletion_work() {
    // These commands go through client-go's typed clientset, which sends protobuf bodies.
    let k = Kubectl::start().await;
    assert_eq!(
        k.ok(&["create", "namespace", "team"]).await.trim(),
        "namespace/team created"
    );
    k.ok(&[
        "-n",
        "team",
        "create",
        "secret",
        "generic",
        "x",
        "--from-literal=a=b",
    ])
    .await;
    k.ok(&[
        "-n",
        "team",
        "create",
        "configmap",
        "c",
        "--from-literal=k=v",
    ])
    .await;
    k.ok(&["-n", "team", "create", "serviceaccount", "app"])
        .await;
    let token = k
        .ok(&[
            "-n",
            "team",
            "create",
            "token",
            "app",
            "--audience",
            "vault",
        ])
        .await;
    assert_eq!(token.trim().split('.').count(), 3, "a JWT: {token}");
    assert_eq!(
        k.get_json(&["-n", "team", "get", "secret", "x"]).await["data"],
        json!({"a": "Yg=="})
    );
    assert_eq!(
        k.get_json(&["-n", "team", "get", "configmap", "c"]).await["data"],
        json!({"k": "v"})
    );
    let refused = k
        .run(&["-n", "team", "create", "deployment", "d", "--image=nginx"])
        .await;
    assert!(
        !refused.ok && refused.stderr.contains("unknown format"),
        "{}",
        refused.stderr
    );

    k.ok(&["delete", "namespace", "team"]).await;
    let gone = k.run(&["get", "namespace", "team"]).await;
    assert!(
        !gone.ok && gone.stderr.contains("namespaces \"team\" not found"),
        "{}",
        gone.stderr
    );
}
