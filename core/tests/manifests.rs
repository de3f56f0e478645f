//! Manifests written the way ESO users write them parse into the Rust types, serialise back
//! without losing or adding a field, and the CRD schemas reject fields that do not exist.

use std::path::{Path, PathBuf};

use kuvert_core::manifest::{Manifest, ManifestError};
use serde_json::Value;

/// An ExternalSecret using nearly every field, as an ESO user would write it.
const FULL_EXTERNAL_SECRET: &str = r#"
apiVersion: kuvert.io/v1alpha1
kind: ExternalSecret
metadata:
  name: everything
  namespace: team-a
spec:
  refreshInterval: 1h30m
  refreshPolicy: Periodic
  secretStoreRef:
    name: vault-backend
    kind: ClusterSecretStore
  target:
    name: app-secret
    creationPolicy: Merge
    deletionPolicy: Delete
    immutable: false
    template:
      type: kubernetes.io/tls
      mergePolicy: Merge
      metadata:
        labels:
          app: web
        annotations:
          owner: "{{ team }}"
      data:
        tls.crt: "{{ data['cert.pem'] | filter_pem('CERTIFICATE') }}"
      templateFrom:
        - configMap:
            name: tpl
            items:
              - key: config.yaml
                templateAs: KeysAndValues
          target: Data
        - literal: "{{ password }}"
          target: Annotations
      delimiters:
        variableStart: "[["
        variableEnd: "]]"
  data:
    - secretKey: password
      remoteRef:
        key: secret/app
        property: db.password
        version: "2"
        decodingStrategy: Base64
        conversionStrategy: Default
        metadataPolicy: None
    - secretKey: generated
      sourceRef:
        generatorRef:
          apiVersion: generators.kuvert.io/v1alpha1
          kind: Password
          name: pw
  dataFrom:
    - extract:
        key: secret/app
        metadataPolicy: Fetch
    - find:
        path: secret/team-a
        name:
          regexp: "^db-.*"
        tags:
          env: prod
        conversionStrategy: Unicode
        decodingStrategy: Auto
      rewrite:
        - regexp:
            source: "db-(.*)"
            target: "DB_$1"
        - transform:
            template: "{{ value | upper }}"
        - merge:
            into: merged
            priority: [a, b]
            conflictPolicy: Ignore
            strategy: JSON
      sourceRef:
        storeRef:
          name: other
          kind: SecretStore
"#;

const VAULT_STORE_EVERY_FIELD: &str = r#"
apiVersion: kuvert.io/v1alpha1
kind: SecretStore
metadata:
  name: vault
  namespace: team-a
spec:
  controller: dev
  refreshInterval: 60
  retrySettings:
    maxRetries: 3
    retryInterval: 10s
  provider:
    vault:
      server: https://vault.example.com:8200
      path: secret
      version: v1
      namespace: team-a
      caBundle: LS0tLS1CRUdJTg==
      caProvider:
        type: ConfigMap
        name: ca
        key: ca.crt
      tls:
        certSecretRef: {name: client, key: tls.crt}
        keySecretRef: {name: client, key: tls.key}
      readYourWrites: true
      forwardInconsistent: true
      headers:
        X-Extra: "1"
      checkAndSet:
        required: true
      auth:
        kubernetes:
          mountPath: k8s
          role: app
          serviceAccountRef:
            name: kuvert
            audiences: [vault]
"#;

fn schema_of(kind: &str) -> Value {
    let crd = kuvert_core::crds::all()
        .into_iter()
        .find(|c| c.spec.names.kind == kind)
        .unwrap_or_else(|| panic!("no CRD for {kind}"));
    serde_json::to_value(
        &crd.spec.versions[0]
            .schema
            .as_ref()
            .unwrap()
            .open_api_v3_schema,
    )
    .unwrap()
}

/// Paths of fields the schema does not define (what the API server rejects under
/// `fieldValidation=Strict`, kubectl's default).
fn unknown_fields(schema: &Value, value: &Value, path: &str, out: &mut Vec<String>) {
    if schema.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true)) {
        return;
    }
    match value {
        Value::Object(map) => {
            let props = schema.get("properties").and_then(Value::as_object);
            let additional = schema.get("additionalProperties");
            for (k, v) in map {
                let sub = props.and_then(|p| p.get(k)).or(additional);
                match sub {
                    Some(sub) => unknown_fields(sub, v, &format!("{path}.{k}"), out),
                    None if path.is_empty() && k == "metadata" => {}
                    None if path.is_empty() && (k == "apiVersion" || k == "kind") => {}
                    None => out.push(format!("{path}.{k}")),
                }
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                if let Some(sub) = schema.get("items") {
                    unknown_fields(sub, item, &format!("{path}[{i}]"), out);
                }
            }
        }
        _ => {}
    }
}

fn yaml_to_json(text: &str) -> Value {
    serde_saphyr::from_str(text).unwrap()
}

fn reserialised(manifest: &Manifest) -> Value {
    match manifest {
        Manifest::ExternalSecret(o) => serde_json::to_value(o),
        Manifest::SecretStore(o) => serde_json::to_value(o),
        Manifest::ClusterSecretStore(o) => serde_json::to_value(o),
        Manifest::ClusterExternalSecret(o) => serde_json::to_value(o),
        Manifest::PushSecret(o) => serde_json::to_value(o),
        Manifest::Generator(o) => Ok(o.to_json()),
        Manifest::Secret(o) => serde_json::to_value(o),
        Manifest::ConfigMap(o) => serde_json::to_value(o),
        Manifest::Namespace(o) => serde_json::to_value(o),
    }
    .unwrap()
}

#[test]
fn eso_style_external_secret_round_trips_without_losing_fields() {
    let parsed = Manifest::parse_all("full", FULL_EXTERNAL_SECRET).unwrap();
    assert_eq!(parsed.len(), 1);
    assert_eq!(reserialised(&parsed[0]), yaml_to_json(FULL_EXTERNAL_SECRET));
}

#[test]
fn vault_store_with_every_connection_field_round_trips() {
    let parsed = Manifest::parse_all("vault", VAULT_STORE_EVERY_FIELD).unwrap();
    assert_eq!(
        reserialised(&parsed[0]),
        yaml_to_json(VAULT_STORE_EVERY_FIELD)
    );
}

#[test]
fn full_manifests_use_only_fields_the_schema_defines() {
    for (kind, text) in [
        ("ExternalSecret", FULL_EXTERNAL_SECRET),
        ("SecretStore", VAULT_STORE_EVERY_FIELD),
    ] {
        let mut unknown = Vec::new();
        unknown_fields(&schema_of(kind), &yaml_to_json(text), "", &mut unknown);
        assert_eq!(unknown, Vec::<String>::new(), "{kind}");
    }
}

#[test]
fn schema_rejects_misspelt_and_invented_fields() {
    let text = FULL_EXTERNAL_SECRET
        .replace("refreshInterval: 1h30m", "refreshIntervall: 1h30m")
        .replace(
            "        property: db.password",
            "        property: db.password\n        jsonPath: x",
        );
    let mut unknown = Vec::new();
    unknown_fields(
        &schema_of("ExternalSecret"),
        &yaml_to_json(&text),
        "",
        &mut unknown,
    );
    assert_eq!(
        unknown,
        vec![
            ".spec.data[0].remoteRef.jsonPath".to_owned(),
            ".spec.refreshIntervall".to_owned()
        ]
    );
}

#[test]
fn two_providers_in_one_store_do_not_parse() {
    let text = r#"
apiVersion: kuvert.io/v1alpha1
kind: SecretStore
metadata: {name: s, namespace: default}
spec:
  provider:
    fake: {data: []}
    vault: {server: "http://x", auth: {tokenSecretRef: {name: t, key: token}}}
"#;
    let err = Manifest::parse_all("two", text).unwrap_err();
    assert!(
        matches!(&err, ManifestError::Invalid { kind, name, .. } if kind == "SecretStore" && name == "s"),
        "{err}"
    );
}

#[test]
fn an_invalid_secret_is_reported_without_quoting_its_data() {
    let text = r#"
apiVersion: v1
kind: Secret
metadata: {name: creds, namespace: default}
data:
  password: "not base64 hunter2!"
"#;
    let err = Manifest::parse_all("secret.yaml", text)
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "secret.yaml: Secret \"creds\": data.password: does not match the Secret schema (data must be base64)"
    );
}

#[test]
fn a_schema_error_names_the_field_path() {
    let text = "apiVersion: kuvert.io/v1alpha1\nkind: ExternalSecret\nmetadata: {name: es, namespace: default}\nspec:\n  data:\n    - secretKey: k\n      remoteRef: {property: p}\n";
    let err = Manifest::parse_all("es.yaml", text)
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "es.yaml: ExternalSecret \"es\": spec.data[0].remoteRef: missing field `key`"
    );
}

#[test]
fn unknown_kinds_are_named_in_the_error() {
    let err = Manifest::parse_all(
        "x.yaml",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\n",
    )
    .unwrap_err()
    .to_string();
    assert_eq!(
        err,
        "x.yaml: document 1: unsupported kind apps/v1/Deployment"
    );
}

fn yaml_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            yaml_files(&path, out);
        } else if matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("yaml" | "yml")
        ) {
            out.push(path);
        }
    }
}

#[test]
fn every_example_parses_and_uses_only_schema_fields() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
    let mut files = Vec::new();
    yaml_files(&root, &mut files);
    assert!(files.len() >= 5, "examples/ lost files: {files:?}");
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let name = file.display().to_string();
        let manifests = Manifest::parse_all(&name, &text).unwrap_or_else(|e| panic!("{e}"));
        let docs: Vec<Value> = serde_saphyr::from_multiple(&text).unwrap();
        for (manifest, doc) in manifests.iter().zip(docs.iter().filter(|d| !d.is_null())) {
            let kind = doc["kind"].as_str().unwrap();
            if matches!(
                manifest,
                Manifest::Secret(_) | Manifest::ConfigMap(_) | Manifest::Namespace(_)
            ) {
                continue;
            }
            let mut unknown = Vec::new();
            unknown_fields(&schema_of(kind), doc, "", &mut unknown);
            assert_eq!(unknown, Vec::<String>::new(), "{name}: {kind}");
            assert_eq!(
                &reserialised(manifest),
                doc,
                "{name}: {kind} did not round-trip"
            );
        }
    }
}

#[test]
fn render_and_dev_reject_fields_kuvert_does_not_know_naming_them() {
    // A real API server prunes unknown fields silently; the manifest reader names them.
    let text = FULL_EXTERNAL_SECRET
        .replace("refreshInterval: 1h30m", "refreshIntervall: 1h30m")
        .replace(
            "        property: db.password",
            "        property: db.password\n        jsonPath: x",
        );
    let err = Manifest::parse_all("es.yaml", &text).unwrap_err();
    assert!(matches!(err, ManifestError::UnknownFields { .. }), "{err}");
    assert_eq!(
        err.to_string(),
        "es.yaml: ExternalSecret \"everything\": unknown fields spec.data[0].remoteRef.jsonPath, spec.refreshIntervall"
    );
    // Empty values are not reported (the types omit them when written back).
    let text = "apiVersion: kuvert.io/v1alpha1\nkind: ExternalSecret\nmetadata: {name: es, namespace: default, creationTimestamp: null}\nspec:\n  secretStoreRef: {name: s}\n  data: []\n";
    Manifest::parse_all("es.yaml", text).unwrap();
}
