//! Tests of the whole pipeline: manifests in, Secrets and errors out.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use futures::executor::block_on;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};

use super::*;
use crate::api::{ExternalSecret, SecretStoreRef, StoreCapabilities};
use crate::memory::MemoryKube;
use crate::provider::{FindRequest, GetRequest, ProviderError, RemoteSecret, SecretsClient};

/// A store of `key → (value, version)`, with metadata; `find` matches a name prefix.
#[derive(Default)]
struct TestStore {
    values: BTreeMap<String, (String, Option<String>)>,
    metadata: BTreeMap<String, String>,
    calls: std::sync::Mutex<usize>,
}

#[async_trait]
impl SecretsClient for TestStore {
    async fn get(&self, request: &GetRequest) -> Result<RemoteSecret, ProviderError> {
        *self.calls.lock().unwrap() += 1;
        if request.key == "unavailable" {
            return Err(ProviderError::Unavailable {
                message: "connection refused".to_owned(),
                source: None,
            });
        }
        let source = if request.metadata {
            self.metadata.get(&request.key).map(|m| (m.clone(), None))
        } else {
            self.values.get(&request.key).cloned()
        };
        let (value, version) = source.ok_or_else(|| ProviderError::NotFound {
            key: format!("key {:?}", request.key),
        })?;
        Ok(RemoteSecret {
            value: SecretBytes::from(value),
            version,
        })
    }

    async fn find(
        &self,
        request: &FindRequest,
    ) -> Result<BTreeMap<String, RemoteSecret>, ProviderError> {
        let re = request.name_regexp.as_ref();
        Ok(self
            .values
            .iter()
            .filter(|(k, _)| request.path.as_ref().is_none_or(|p| k.starts_with(p)))
            .filter(|(k, _)| re.as_ref().is_none_or(|re| re.is_match(k)))
            .map(|(k, (v, version))| {
                (
                    k.clone(),
                    RemoteSecret {
                        value: SecretBytes::from(v.as_str()),
                        version: version.clone(),
                    },
                )
            })
            .collect())
    }

    async fn validate(&self) -> Result<StoreCapabilities, ProviderError> {
        Ok(StoreCapabilities::ReadOnly)
    }
}

struct Stores(Arc<TestStore>);

#[async_trait]
impl StoreResolver for Stores {
    async fn resolve(
        &self,
        namespace: &str,
        store_ref: &SecretStoreRef,
    ) -> Result<ResolvedStore, StoreError> {
        if store_ref.name != "store" {
            return Err(StoreError::NotFound {
                store: format!("SecretStore/{namespace}/{}", store_ref.name),
            });
        }
        Ok(ResolvedStore {
            client: self.0.clone(),
            name: format!("SecretStore/{namespace}/store"),
        })
    }
}

/// The remote secrets every test reads from.
fn store() -> TestStore {
    let v = |s: &str| (s.to_owned(), None);
    let mut values = BTreeMap::from([
        (
            "password".to_owned(),
            ("hunter2".to_owned(), Some("7".to_owned())),
        ),
        (
            "db".to_owned(),
            v(
                r#"{"user":"app","port":5432,"tls.crt":"PEM","nested":{"a":{"b":"deep"}},"list":[1,2]}"#,
            ),
        ),
        ("b64".to_owned(), v("aGVsbG8=")),
        ("nul".to_owned(), v("AGE=")),
        ("nul-json".to_owned(), v(r#"{"f":"AGE="}"#)),
        ("bad-b64".to_owned(), v("not base64!")),
        ("services/billing/db-password".to_owned(), v("bpw")),
        ("services/billing/api key".to_owned(), v("bkey")),
        ("services/search/api-key".to_owned(), v("skey")),
        ("collide/a b".to_owned(), v("1")),
        ("collide/a?b".to_owned(), v("2")),
        ("json-a".to_owned(), v(r#"{"x":"1","shared":"a"}"#)),
        ("json-b".to_owned(), v(r#"{"y":"2","shared":"b"}"#)),
    ]);
    values.insert("big".to_owned(), v(&"x".repeat(MAX_SECRET_SIZE + 1)));
    TestStore {
        values,
        metadata: BTreeMap::from([("password".to_owned(), r#"{"owner":"team-a"}"#.to_owned())]),
        ..TestStore::default()
    }
}

fn now() -> jiff::Timestamp {
    jiff::Timestamp::from_second(1_800_000_000).unwrap()
}

/// An ExternalSecret named `app` in `ns`, reading `store`, with the spec given in YAML.
fn es(spec: &str) -> ExternalSecret {
    let spec = spec.replace('\n', "\n  ");
    let text = format!(
        "apiVersion: kuvert.io/v1alpha1\nkind: ExternalSecret\nmetadata:\n  name: app\n  namespace: ns\n  uid: uid-1\n  generation: 3\nspec:\n  secretStoreRef:\n    name: store\n  {spec}\n"
    );
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

fn run_with(
    es: &ExternalSecret,
    kube: &MemoryKube,
    existing: Option<&Secret>,
) -> Result<SyncOutcome, SyncError> {
    block_on(sync(
        es,
        &Stores(Arc::new(store())),
        &TestGenerators::default(),
        kube,
        existing,
        now(),
    ))
}

fn run(spec: &str) -> Result<SyncOutcome, SyncError> {
    run_with(&es(spec), &MemoryKube::new(), None)
}

/// The data of the synced Secret, as strings.
fn data(outcome: &SyncOutcome) -> Vec<(String, String)> {
    outcome
        .secret
        .as_ref()
        .unwrap()
        .data
        .iter()
        .flatten()
        .map(|(k, v)| (k.clone(), String::from_utf8(v.0.clone()).unwrap()))
        .collect()
}

fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
    p.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn err(spec: &str) -> SyncError {
    run(spec).expect_err("the sync should fail")
}

// --- data[] ---------------------------------------------------------------------------------

#[test]
fn data_reads_whole_values_and_properties() {
    let out = run(r#"data:
- secretKey: pw
  remoteRef: {key: password}
- secretKey: user
  remoteRef: {key: db, property: user}
- secretKey: port
  remoteRef: {key: db, property: port}
- secretKey: cert
  remoteRef: {key: db, property: tls.crt}
- secretKey: deep
  remoteRef: {key: db, property: 'nested.["a"].b'}
- secretKey: obj
  remoteRef: {key: db, property: nested}
- secretKey: second
  remoteRef: {key: db, property: 'list[1]'}"#)
    .unwrap();
    assert_eq!(
        data(&out),
        pairs(&[
            ("cert", "PEM"),
            ("deep", "deep"),
            ("obj", r#"{"a":{"b":"deep"}}"#),
            ("port", "5432"),
            ("pw", "hunter2"),
            ("second", "2"),
            ("user", "app"),
        ])
    );
}

#[test]
fn identical_reads_cost_one_store_call() {
    let client = Arc::new(store());
    let es = es(
        "data:\n- secretKey: a\n  remoteRef: {key: db, property: user}\n- secretKey: b\n  remoteRef: {key: db, property: port}",
    );
    block_on(sync(
        &es,
        &Stores(client.clone()),
        &TestGenerators::default(),
        &MemoryKube::new(),
        None,
        now(),
    ))
    .unwrap();
    assert_eq!(*client.calls.lock().unwrap(), 1);
}

#[test]
fn a_missing_remote_key_names_field_store_and_key() {
    let e = err("data:\n- secretKey: a\n  remoteRef: {key: nope}");
    assert_eq!(
        e.to_string(),
        r#"spec.data[0].remoteRef.key: reading "nope" from SecretStore/ns/store: key "nope" not found"#
    );
    assert_eq!(e.reason(), "RemoteSecretNotFound");
    assert!(e.is_transient());
}

#[test]
fn provider_errors_keep_their_classification() {
    let e = err("data:\n- secretKey: a\n  remoteRef: {key: unavailable}");
    assert_eq!(e.reason(), "Unavailable");
    assert!(e.is_transient());
    let e =
        err("data:\n- secretKey: a\n  remoteRef: {key: x}\n  sourceRef: {storeRef: {name: other}}");
    assert_eq!(
        e.to_string(),
        "spec.data[0].sourceRef.storeRef: SecretStore/ns/other not found"
    );
    assert_eq!(e.reason(), "StoreNotFound");
    assert!(!e.is_transient());
}

#[test]
fn a_missing_property_names_the_property() {
    let e = err("data:\n- secretKey: a\n  remoteRef: {key: db, property: nested.a.c}");
    assert_eq!(
        e.to_string(),
        r#"spec.data[0].remoteRef.property: remote secret "db" has no property "nested.a.c""#
    );
    assert_eq!(e.reason(), "PropertyNotFound");
    assert!(!e.is_transient());
    let e = err("data:\n- secretKey: a\n  remoteRef: {key: password, property: x}");
    assert_eq!(
        e.to_string(),
        r#"spec.data[0].remoteRef: the value of "password" is not JSON (property is set)"#
    );
    let e = err("data:\n- secretKey: a\n  remoteRef: {key: db, property: 'a..b'}");
    assert_eq!(e.reason(), "InvalidProperty");
}

#[test]
fn metadata_policy_fetch_reads_the_metadata() {
    let out = run("data:\n- secretKey: owner\n  remoteRef: {key: password, metadataPolicy: Fetch, property: owner}").unwrap();
    assert_eq!(data(&out), pairs(&[("owner", "team-a")]));
}

#[test]
fn decoding_strategies_apply_after_property() {
    let out = run("data:\n- secretKey: a\n  remoteRef: {key: b64, decodingStrategy: Base64}\n- secretKey: b\n  remoteRef: {key: password, decodingStrategy: Auto}").unwrap();
    assert_eq!(data(&out), pairs(&[("a", "hello"), ("b", "hunter2")]));
    let e = err("data:\n- secretKey: a\n  remoteRef: {key: bad-b64, decodingStrategy: Base64}");
    assert_eq!(
        e.to_string(),
        r#"spec.data[0].remoteRef.decodingStrategy: the value of "a" is not valid Base64"#
    );
    assert_eq!(e.reason(), "DecodingError");
}

#[test]
fn an_invalid_secret_key_names_the_field_that_made_it() {
    let e = err("data:\n- secretKey: 'a/b'\n  remoteRef: {key: password}");
    assert_eq!(
        e.to_string(),
        r#"spec.data[0].secretKey: "a/b" is not a valid Secret key: a key may only contain letters, digits, '-', '.' and '_'"#
    );
    assert_eq!(e.reason(), "InvalidSecretKey");
}

// --- dataFrom[] -----------------------------------------------------------------------------

#[test]
fn extract_turns_an_object_into_keys() {
    let out = run("dataFrom:\n- extract: {key: db}").unwrap();
    assert_eq!(
        data(&out),
        pairs(&[
            ("list", "[1,2]"),
            ("nested", r#"{"a":{"b":"deep"}}"#),
            ("port", "5432"),
            ("tls.crt", "PEM"),
            ("user", "app"),
        ])
    );
    let out = run("dataFrom:\n- extract: {key: db, property: nested.a}").unwrap();
    assert_eq!(data(&out), pairs(&[("b", "deep")]));
    let e = err("dataFrom:\n- extract: {key: password}");
    assert_eq!(
        e.to_string(),
        r#"spec.dataFrom[0].extract: the value of "password" is not a JSON object"#
    );
}

#[test]
fn find_converts_names_into_valid_keys() {
    let out = run("dataFrom:\n- find: {path: services/billing}").unwrap();
    assert_eq!(
        data(&out),
        pairs(&[
            ("services_billing_api_key", "bkey"),
            ("services_billing_db-password", "bpw"),
        ])
    );
    let out =
        run("dataFrom:\n- find: {name: {regexp: 'search'}, conversionStrategy: Unicode}").unwrap();
    assert_eq!(
        data(&out),
        pairs(&[("services_U002f_search_U002f_api-key", "skey")])
    );
    let e = err("dataFrom:\n- find: {path: collide/}");
    assert_eq!(
        e.to_string(),
        r#"spec.dataFrom[0]: "collide/a b" and "collide/a?b" both become the key "collide_a_b""#
    );
    let e = err("dataFrom:\n- find: {name: {regexp: '('}}");
    assert_eq!(e.field(), "spec.dataFrom[0].find.name.regexp");
    assert_eq!(e.reason(), "InvalidRegexp");
}

#[test]
fn rewritten_keys_are_used_as_rewritten_and_checked() {
    let out = run(r#"dataFrom:
- find: {path: services/billing/}
  rewrite:
  - regexp: {source: 'services/billing/(.*)', target: '$1'}
  - regexp: {source: ' ', target: '-'}"#)
    .unwrap();
    assert_eq!(
        data(&out),
        pairs(&[("api-key", "bkey"), ("db-password", "bpw")])
    );
    let e = err(r#"dataFrom:
- find: {path: services/billing/}
  rewrite:
  - regexp: {source: 'services/billing/', target: ''}"#);
    assert_eq!(
        e.to_string(),
        r#"spec.dataFrom[0]: "api key" is not a valid Secret key: a key may only contain letters, digits, '-', '.' and '_'"#
    );
}

#[test]
fn rewrite_merge_combines_found_values() {
    let out = run(r#"dataFrom:
- find: {name: {regexp: '^json-'}}
  rewrite:
  - merge: {conflictPolicy: Ignore, priority: [json-a]}"#)
    .unwrap();
    assert_eq!(
        data(&out),
        pairs(&[("shared", "a"), ("x", "1"), ("y", "2")])
    );
}

#[test]
fn data_from_in_order_then_data_later_keys_win() {
    let out = run(r#"dataFrom:
- extract: {key: json-a}
- extract: {key: json-b}
data:
- secretKey: x
  remoteRef: {key: password}"#)
    .unwrap();
    assert_eq!(
        data(&out),
        pairs(&[("shared", "b"), ("x", "hunter2"), ("y", "2")])
    );
}

// --- target ---------------------------------------------------------------------------------

#[test]
fn the_secret_is_named_labelled_hashed_and_owned() {
    let out = run("data:\n- secretKey: pw\n  remoteRef: {key: password}").unwrap();
    let secret = out.secret.unwrap();
    assert_eq!(out.action, TargetAction::Create);
    assert_eq!(secret.metadata.name.as_deref(), Some("app"));
    assert_eq!(secret.metadata.namespace.as_deref(), Some("ns"));
    assert_eq!(secret.type_.as_deref(), Some("Opaque"));
    assert_eq!(
        secret.metadata.labels.unwrap(),
        BTreeMap::from([("kuvert.io/managed".to_owned(), "true".to_owned())])
    );
    let hash = target::data_hash(&BTreeMap::from([(
        "pw".to_owned(),
        ByteString(b"hunter2".to_vec()),
    )]));
    assert_eq!(hash.len(), 64);
    assert_eq!(
        secret.metadata.annotations.unwrap(),
        BTreeMap::from([("kuvert.io/data-hash".to_owned(), hash)])
    );
    let owner = &secret.metadata.owner_references.unwrap()[0];
    assert_eq!(
        (
            owner.kind.as_str(),
            owner.name.as_str(),
            owner.uid.as_str(),
            owner.controller
        ),
        ("ExternalSecret", "app", "uid-1", Some(true))
    );
    assert_eq!(secret.immutable, None);
}

#[test]
fn target_name_type_and_immutable_are_applied() {
    let out = run("target:\n  name: other\n  immutable: true\n  creationPolicy: Orphan\n  template: {type: kubernetes.io/basic-auth}\ndata:\n- secretKey: password\n  remoteRef: {key: password}").unwrap();
    let secret = out.secret.unwrap();
    assert_eq!(secret.metadata.name.as_deref(), Some("other"));
    assert_eq!(secret.type_.as_deref(), Some("kubernetes.io/basic-auth"));
    assert_eq!(secret.immutable, Some(true));
    assert_eq!(
        secret.metadata.owner_references, None,
        "Orphan sets no owner"
    );
}

fn existing(name: &str, labels: &[(&str, &str)], owner: Option<&str>) -> Secret {
    let mut s: Secret = serde_saphyr::from_str(&format!(
        "metadata: {{name: {name}, namespace: ns, resourceVersion: '42'}}\ndata: {{other: b3RoZXI=}}"
    ))
    .unwrap();
    s.metadata.labels = Some(
        labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    );
    if let Some(uid) = owner {
        s.metadata.owner_references = Some(vec![
            k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference {
                api_version: "kuvert.io/v1alpha1".into(),
                kind: "ExternalSecret".into(),
                name: "app".into(),
                uid: uid.into(),
                controller: Some(true),
                block_owner_deletion: Some(true),
            },
        ]);
    }
    s
}

const ONE_KEY: &str = "data:\n- secretKey: pw\n  remoteRef: {key: password}";

#[test]
fn owner_never_overwrites_a_secret_it_does_not_own() {
    let kube = MemoryKube::new();
    let mut foreign = existing("app", &[], Some("uid-DEPLOY"));
    let refs = foreign.metadata.owner_references.as_mut().unwrap();
    refs[0].api_version = "apps/v1".into();
    refs[0].kind = "Deployment".into();
    let e = run_with(&es(ONE_KEY), &kube, Some(&foreign)).unwrap_err();
    assert_eq!(
        e.to_string(),
        "spec.target.name: Secret ns/app already exists and is not owned by this ExternalSecret (its controller is Deployment app); kuvert never overwrites a Secret it does not own"
    );
    assert_eq!(e.reason(), "NotOwned");
    let others = existing("app", &[("kuvert.io/managed", "true")], Some("uid-OTHER"));
    let e = run_with(&es(ONE_KEY), &kube, Some(&others)).unwrap_err();
    assert_eq!(e.reason(), "NotOwned");

    let ours = existing("app", &[("kuvert.io/managed", "true")], Some("uid-1"));
    let out = run_with(&es(ONE_KEY), &kube, Some(&ours)).unwrap();
    assert_eq!(out.action, TargetAction::Update);
    assert_eq!(
        data(&out),
        pairs(&[("pw", "hunter2")]),
        "Owner replaces the data"
    );
    let secret = out.secret.unwrap();
    assert_eq!(secret.metadata.resource_version.as_deref(), Some("42"));
    // Syncing again against what was written changes nothing.
    let again = run_with(&es(ONE_KEY), &kube, Some(&secret)).unwrap();
    assert_eq!(again.action, TargetAction::Unchanged);
}

#[test]
fn merge_needs_an_existing_secret_and_keeps_its_keys() {
    let spec = format!("target: {{creationPolicy: Merge}}\n{ONE_KEY}");
    let e = err(&spec);
    assert_eq!(
        e.to_string(),
        "spec.target.creationPolicy: Merge needs the Secret ns/app to exist, and it does not"
    );
    assert!(e.is_transient());
    let foreign = existing("app", &[("team", "x")], None);
    let out = run_with(&es(&spec), &MemoryKube::new(), Some(&foreign)).unwrap();
    assert_eq!(data(&out), pairs(&[("other", "other"), ("pw", "hunter2")]));
    let secret = out.secret.unwrap();
    assert_eq!(secret.metadata.owner_references, None);
    assert_eq!(secret.metadata.labels.unwrap()["team"], "x");
}

#[test]
fn create_or_merge_creates_owned_or_merges() {
    let spec = format!("target: {{creationPolicy: CreateOrMerge}}\n{ONE_KEY}");
    let out = run(&spec).unwrap();
    assert!(out.secret.unwrap().metadata.owner_references.is_some());
    let foreign = existing("app", &[], None);
    let out = run_with(&es(&spec), &MemoryKube::new(), Some(&foreign)).unwrap();
    assert_eq!(data(&out), pairs(&[("other", "other"), ("pw", "hunter2")]));
    assert_eq!(out.secret.unwrap().metadata.owner_references, None);
}

#[test]
fn orphan_updates_managed_secrets_only() {
    let spec = format!("target: {{creationPolicy: Orphan}}\n{ONE_KEY}");
    let managed = existing("app", &[("kuvert.io/managed", "true")], None);
    assert_eq!(
        run_with(&es(&spec), &MemoryKube::new(), Some(&managed))
            .unwrap()
            .action,
        TargetAction::Update
    );
    let foreign = existing("app", &[], None);
    assert_eq!(
        run_with(&es(&spec), &MemoryKube::new(), Some(&foreign))
            .unwrap_err()
            .reason(),
        "NotOwned"
    );
}

#[test]
fn creation_policy_none_resolves_but_writes_nothing() {
    let out = run(&format!("target: {{creationPolicy: None}}\n{ONE_KEY}")).unwrap();
    assert_eq!(out.action, TargetAction::Skip);
    assert!(out.secret.is_none());
    assert_eq!(out.status.binding, None);
}

#[test]
fn an_immutable_secret_is_kept() {
    let mut ours = existing("app", &[("kuvert.io/managed", "true")], Some("uid-1"));
    ours.immutable = Some(true);
    let out = run_with(&es(ONE_KEY), &MemoryKube::new(), Some(&ours)).unwrap();
    assert_eq!(out.action, TargetAction::Unchanged);
    assert!(out.status.conditions[0].message.contains("immutable"));
}

#[test]
fn the_secret_type_cannot_change() {
    let ours = existing("app", &[("kuvert.io/managed", "true")], Some("uid-1"));
    let spec = format!("target: {{template: {{type: kubernetes.io/tls}}}}\n{ONE_KEY}");
    let e = run_with(&es(&spec), &MemoryKube::new(), Some(&ours)).unwrap_err();
    assert_eq!(e.field(), "spec.target.template.type");
}

#[test]
fn a_secret_over_one_mebibyte_is_refused() {
    let e = err("data:\n- secretKey: big\n  remoteRef: {key: big}");
    assert_eq!(
        e.to_string(),
        "spec.target: the data of Secret ns/app is 1048580 bytes, over the limit of 1048576"
    );
    assert_eq!(e.reason(), "TooLarge");
}

#[test]
fn key_changes_name_the_keys_a_write_changes_never_the_values() {
    let secret = |pairs: &[(&str, &str)]| Secret {
        data: Some(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), ByteString(v.as_bytes().to_vec())))
                .collect(),
        ),
        ..Secret::default()
    };
    let before = secret(&[("password", "hunter2"), ("user", "app"), ("old", "x")]);
    let after = secret(&[
        ("password", "s3cret-rotated"),
        ("user", "app"),
        ("host", "db"),
    ]);
    let changes = target::KeyChanges::between(&before, &after);
    assert_eq!(changes.changed, ["password"]);
    assert_eq!(changes.added, ["host"]);
    assert_eq!(changes.removed, ["old"]);
    let text = changes.to_string();
    assert_eq!(
        text,
        "changed key password; added key host; removed key old"
    );
    assert!(!text.contains("hunter2") && !text.contains("s3cret"));
    assert!(target::KeyChanges::between(&after, &after).is_empty());
}

// --- status ---------------------------------------------------------------------------------

#[test]
fn status_counts_one_key_in_the_singular() {
    let out = run("data:\n- secretKey: pw\n  remoteRef: {key: password}").unwrap();
    assert_eq!(
        out.status.conditions[0].message,
        "Secret ns/app is in sync (1 key)"
    );
}

#[test]
fn status_says_synced_with_versions_and_refresh() {
    let out = run("refreshInterval: 30m\ndata:\n- secretKey: pw\n  remoteRef: {key: password}\ndataFrom:\n- extract: {key: db}").unwrap();
    let ready = &out.status.conditions[0];
    assert_eq!(
        (
            ready.type_.as_str(),
            ready.status.as_str(),
            ready.reason.as_str()
        ),
        ("Ready", "True", "SecretSynced")
    );
    assert_eq!(ready.message, "Secret ns/app is in sync (6 keys)");
    assert_eq!(ready.observed_generation, Some(3));
    assert_eq!(out.status.binding.unwrap().name, "app");
    let versions: Vec<_> = out
        .status
        .synced_versions
        .iter()
        .map(|v| {
            (
                v.store.as_str(),
                v.remote_key.as_str(),
                v.version.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        versions,
        [
            ("SecretStore/ns/store", "db", None),
            ("SecretStore/ns/store", "password", Some("7"))
        ]
    );
    assert_eq!(
        out.requeue_after,
        Some(std::time::Duration::from_secs(1800))
    );
    assert_eq!(
        run(ONE_KEY).unwrap().requeue_after,
        Some(std::time::Duration::from_secs(3600))
    );
    assert_eq!(
        run(&format!("refreshInterval: '0'\n{ONE_KEY}"))
            .unwrap()
            .requeue_after,
        None
    );
}

#[test]
fn failed_status_carries_reason_and_message() {
    let es = es("data:\n- secretKey: a\n  remoteRef: {key: nope}");
    let e = run_with(&es, &MemoryKube::new(), None).unwrap_err();
    let status = failed_status(&es, &e, now());
    let ready = &status.conditions[0];
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_str()),
        ("False", "RemoteSecretNotFound")
    );
    assert_eq!(ready.message, e.to_string());
}

#[test]
fn a_bad_refresh_interval_is_an_error_before_any_read() {
    let e = err(&format!("refreshInterval: soon\n{ONE_KEY}"));
    assert_eq!(
        e.to_string(),
        r#"spec.refreshInterval: "soon" is not a duration such as 1h, 30m or 1h30m"#
    );
}

// --- templates ------------------------------------------------------------------------------

fn kube_with_templates() -> MemoryKube {
    let mut kube = MemoryKube::new();
    let cm: ConfigMap = serde_saphyr::from_str(
        "metadata: {name: tpl, namespace: ns}\ndata:\n  config.ini: 'user={{ user }}'\n  many: \"a: '{{ user }}'\\nb: '{{ port }}'\"\n",
    )
    .unwrap();
    kube.add_config_map(&cm);
    kube
}

#[test]
fn template_data_replaces_fetched_keys_by_default() {
    let out = run("target:\n  template:\n    data:\n      dsn: 'postgres://{{ user }}@db:{{ port }}'\ndataFrom:\n- extract: {key: db}").unwrap();
    assert_eq!(data(&out), pairs(&[("dsn", "postgres://app@db:5432")]));
}

#[test]
fn merge_policy_keeps_fetched_keys_beside_templated_ones() {
    let out = run("target:\n  template:\n    mergePolicy: Merge\n    data:\n      pw: 'x{{ pw }}'\ndata:\n- secretKey: pw\n  remoteRef: {key: password}\n- secretKey: user\n  remoteRef: {key: db, property: user}").unwrap();
    assert_eq!(data(&out), pairs(&[("pw", "xhunter2"), ("user", "app")]));
}

#[test]
fn a_template_without_data_keeps_the_fetched_keys() {
    let out = run("target:\n  template:\n    metadata:\n      labels: {owner: '{{ user }}'}\n      annotations: {note: 'for {{ user }}'}\ndata:\n- secretKey: user\n  remoteRef: {key: db, property: user}").unwrap();
    assert_eq!(data(&out), pairs(&[("user", "app")]));
    let meta = out.secret.unwrap().metadata;
    assert_eq!(meta.labels.unwrap()["owner"], "app");
    assert_eq!(meta.annotations.unwrap()["note"], "for app");
}

#[test]
fn template_from_reads_config_maps_and_literals() {
    let es = es(r#"target:
  template:
    templateFrom:
    - configMap:
        name: tpl
        items:
        - key: config.ini
        - key: many
          templateAs: KeysAndValues
    - literal: "lit: '{{ user }}'"
      target: Annotations
    data:
      b: overridden
dataFrom:
- extract: {key: db}"#);
    let out = run_with(&es, &kube_with_templates(), None).unwrap();
    assert_eq!(
        data(&out),
        pairs(&[
            ("a", "app"),
            ("b", "overridden"),
            ("config.ini", "user=app")
        ])
    );
    assert_eq!(
        out.secret.unwrap().metadata.annotations.unwrap()["lit"],
        "app"
    );
}

#[test]
fn template_from_a_missing_config_map_or_key_is_an_error() {
    let es1 = es(
        "target:\n  template:\n    templateFrom:\n    - configMap: {name: nope, items: [{key: x}]}\ndata:\n- secretKey: a\n  remoteRef: {key: password}",
    );
    let e = run_with(&es1, &kube_with_templates(), None).unwrap_err();
    assert_eq!(
        e.to_string(),
        "spec.target.template.templateFrom[0].configMap: reading ConfigMap ns/nope: ConfigMap ns/nope not found"
    );
    let es2 = es(
        "target:\n  template:\n    templateFrom:\n    - configMap: {name: tpl, items: [{key: x}]}\ndata:\n- secretKey: a\n  remoteRef: {key: password}",
    );
    let e = run_with(&es2, &kube_with_templates(), None).unwrap_err();
    assert_eq!(
        e.to_string(),
        r#"spec.target.template.templateFrom[0].configMap.items[0].key: ConfigMap ns/tpl has no UTF-8 key "x""#
    );
}

#[test]
fn an_undefined_variable_is_a_template_error_naming_the_key() {
    let e = err(
        "target:\n  template:\n    data:\n      x: '{{ nope }}'\ndata:\n- secretKey: pw\n  remoteRef: {key: password}",
    );
    assert_eq!(e.reason(), "UndefinedVariable");
    assert_eq!(e.field(), r#"spec.target.template.data["x"]"#);
}

#[test]
fn a_template_output_over_one_mebibyte_is_refused() {
    let e = err(
        "target:\n  template:\n    data:\n      x: '{{ big }}'\ndata:\n- secretKey: big\n  remoteRef: {key: big}",
    );
    assert_eq!(e.field(), r#"spec.target.template.data["x"]"#);
    assert!(matches!(e.reason(), "TooLarge" | "OutputTooLarge"), "{e}");
}

// --- no value ever leaks --------------------------------------------------------------------

#[test]
fn no_error_or_debug_output_contains_a_secret_value() {
    const PLANTED: &str = "PLANTED-s3cr3t-VALUE";
    let planted_store = || {
        let mut s = store();
        for key in ["password", "json-a", "bad-b64"] {
            s.values.insert(key.to_owned(), (PLANTED.to_owned(), None));
        }
        s.values.insert(
            "obj".to_owned(),
            (
                format!(r#"{{"k":"{PLANTED}","n":{{"x":"{PLANTED}"}}}}"#),
                None,
            ),
        );
        s.values.insert(
            "json-a".to_owned(),
            (format!(r#"{{"shared":"{PLANTED}"}}"#), None),
        );
        s.values.insert(
            "json-b".to_owned(),
            (format!(r#"{{"shared":"{PLANTED}"}}"#), None),
        );
        Arc::new(s)
    };
    let failing = [
        "data:\n- secretKey: a\n  remoteRef: {key: password, property: x}",
        "data:\n- secretKey: a\n  remoteRef: {key: obj, property: nope}",
        "data:\n- secretKey: a\n  remoteRef: {key: password, decodingStrategy: Base64}",
        "data:\n- secretKey: 'a/b'\n  remoteRef: {key: password}",
        "dataFrom:\n- extract: {key: password}",
        "dataFrom:\n- find: {name: {regexp: '^json-'}}\n  rewrite:\n  - merge: {}",
        "dataFrom:\n- find: {name: {regexp: '^password'}}\n  rewrite:\n  - merge: {}",
        "target:\n  template:\n    data:\n      x: '{{ password | nope }}'\ndata:\n- secretKey: password\n  remoteRef: {key: password}",
        "target:\n  template:\n    data:\n      x: '{{ password.x.y }}'\ndata:\n- secretKey: password\n  remoteRef: {key: password}",
        "target:\n  template:\n    templateFrom:\n    - literal: '{{ password }}'\ndata:\n- secretKey: password\n  remoteRef: {key: password}",
        "target:\n  template:\n    metadata: {labels: {l: '{{ password }}!'}}\ndata:\n- secretKey: password\n  remoteRef: {key: password}",
    ];
    for spec in failing {
        let es = es(spec);
        let result = block_on(sync(
            &es,
            &Stores(planted_store()),
            &TestGenerators::default(),
            &MemoryKube::new(),
            None,
            now(),
        ));
        let e = result.expect_err(spec);
        for shown in [
            e.to_string(),
            format!("{e:?}"),
            format!("{:?}", failed_status(&es, &e, now())),
        ] {
            assert!(!shown.contains(PLANTED), "{spec}\nleaked: {shown}");
        }
    }
    // Successful outcomes' Debug output is redacted too (Secret data is ByteString, so only
    // the engine's own types are checked here).
    let es = es("dataFrom:\n- extract: {key: obj}");
    let fetched = block_on(fetch(
        &es,
        &Stores(planted_store()),
        &TestGenerators::default(),
        &MemoryKube::new(),
    ))
    .unwrap();
    assert!(!format!("{fetched:?}").contains(PLANTED));
    let outcome = build(&es, &fetched, None, now()).unwrap();
    assert!(data(&outcome).iter().any(|(_, v)| v.contains(PLANTED)));
    let shown = format!("{outcome:?}");
    assert!(shown.contains(r#""k", "n""#), "{shown}");
    assert!(!shown.contains(PLANTED), "{shown}");
}

// --- templates through core::template -------------------------------------------------------

#[test]
fn transform_rewrites_render_each_key_as_value() {
    let out = run(r#"dataFrom:
- find: {path: services/billing/}
  rewrite:
  - regexp: {source: 'services/billing/', target: ''}
  - transform: {template: "{{ value | upper | replace('-', '_') | replace(' ', '_') }}"}"#)
    .unwrap();
    assert_eq!(
        data(&out),
        pairs(&[("API_KEY", "bkey"), ("DB_PASSWORD", "bpw")])
    );
    let e = err(
        "dataFrom:\n- find: {path: services/billing/}\n  rewrite:\n  - transform: {template: '{{ nope }}'}",
    );
    assert_eq!(e.field(), "spec.dataFrom[0].rewrite[0].transform.template");
    assert_eq!(e.reason(), "UndefinedVariable");
}

#[test]
fn a_template_syntax_error_names_the_template_and_line() {
    let e = err(
        "target:\n  template:\n    data:\n      x: \"ok\\n{{ pw \"\ndata:\n- secretKey: pw\n  remoteRef: {key: password}",
    );
    assert_eq!(e.reason(), "TemplateSyntax");
    assert!(
        e.to_string()
            .starts_with(r#"spec.target.template.data["x"]: template syntax error at line 2"#),
        "{e}"
    );
}

#[test]
fn an_undefined_variable_is_never_an_empty_string() {
    let e = err(
        "target:\n  template:\n    data:\n      x: '{{ pw }}-{{ nope }}'\ndata:\n- secretKey: pw\n  remoteRef: {key: password}",
    );
    assert_eq!(
        e.to_string(),
        r#"spec.target.template.data["x"]: undefined variable or key at line 1 in `nope`"#
    );
}

#[test]
fn templates_see_every_key_and_the_data_map_with_filters() {
    let out = run(r#"target:
  template:
    data:
      dsn: "{{ user }}:{{ data['tls.crt'] }}"
      encoded: "{{ user | b64enc }}"
      port: "{{ (nested | fromjson).a.b }}"
dataFrom:
- extract: {key: db}"#)
    .unwrap();
    assert_eq!(
        data(&out),
        pairs(&[("dsn", "app:PEM"), ("encoded", "YXBw"), ("port", "deep")])
    );
}

#[test]
fn alternative_delimiters_leave_helm_braces_alone() {
    let out = run(r#"target:
  template:
    delimiters: {variableStart: '[[', variableEnd: ']]'}
    data:
      x: "{{ .Values.kept }} [[ pw ]]"
data:
- secretKey: pw
  remoteRef: {key: password}"#)
    .unwrap();
    assert_eq!(data(&out), pairs(&[("x", "{{ .Values.kept }} hunter2")]));
}

#[test]
fn template_from_secrets_can_target_labels() {
    let mut kube = MemoryKube::new();
    let s: Secret = serde_saphyr::from_str(
        "metadata: {name: tpl, namespace: ns}\nstringData:\n  labels.yaml: \"team: '{{ user }}'\"\n",
    )
    .unwrap();
    kube.add_secret(&s);
    let es = es(r#"target:
  template:
    mergePolicy: Merge
    templateFrom:
    - secret: {name: tpl, items: [{key: labels.yaml, templateAs: KeysAndValues}]}
      target: Labels
data:
- secretKey: user
  remoteRef: {key: db, property: user}"#);
    let out = run_with(&es, &kube, None).unwrap();
    assert_eq!(data(&out), pairs(&[("user", "app")]));
    let labels = out.secret.unwrap().metadata.labels.unwrap();
    assert_eq!(labels["team"], "app");
    assert_eq!(labels["kuvert.io/managed"], "true");
}

#[test]
fn an_invalid_templated_label_value_is_an_error() {
    let e = err(
        "target:\n  template:\n    metadata: {labels: {l: '{{ pw }} !'}}\ndata:\n- secretKey: pw\n  remoteRef: {key: password}",
    );
    assert_eq!(e.field(), r#"spec.target.template.metadata.labels["l"]"#);
}

#[test]
fn an_invalid_templated_label_or_annotation_key_is_an_invalid_spec_naming_it() {
    let spec = |what: &str, key: &str| {
        format!(
            "target:\n  template:\n    metadata: {{{what}: {{'{key}': v}}}}\ndata:\n- secretKey: pw\n  remoteRef: {{key: password}}"
        )
    };
    for (what, key) in [
        ("labels", "bad key"),
        ("labels", "-lead"),
        ("annotations", "Example.com/x"),
        ("annotations", "example.com/"),
        ("labels", "a/b/c"),
    ] {
        let e = err(&spec(what, key));
        assert_eq!(e.reason(), "InvalidSpec", "{what} {key}");
        assert_eq!(
            e.field(),
            format!("spec.target.template.metadata.{what}[{key:?}]")
        );
    }
    // Templated keys are checked as rendered.
    let e = err(
        "target:\n  template:\n    metadata: {labels: {'{{ pw }} x': v}}\ndata:\n- secretKey: pw\n  remoteRef: {key: password}",
    );
    assert_eq!(e.reason(), "InvalidSpec");
    assert!(!e.to_string().contains("hunter2"), "{e}");
    for key in ["app", "app.kubernetes.io/name", "a_b.c-d", "x.y/Z9"] {
        let out = run(&spec("annotations", key)).unwrap();
        assert_eq!(out.secret.unwrap().metadata.annotations.unwrap()[key], "v");
    }
}

#[test]
fn a_template_looping_past_one_mebibyte_is_refused() {
    let e = err(
        "target:\n  template:\n    data:\n      x: '{% for i in range(300000) %}xxxxxxxxxx{% endfor %}'\ndata:\n- secretKey: pw\n  remoteRef: {key: password}",
    );
    assert_eq!(e.field(), r#"spec.target.template.data["x"]"#);
    assert_eq!(e.reason(), "TemplateRender");
}

#[test]
fn reads_run_together_but_the_first_failing_entry_is_reported() {
    let e = err(
        "data:\n- secretKey: a\n  remoteRef: {key: password}\n- secretKey: b\n  remoteRef: {key: nope}\n- secretKey: c\n  remoteRef: {key: unavailable}",
    );
    assert_eq!(e.field(), "spec.data[1].remoteRef.key");
    let e = err(
        "dataFrom:\n- extract: {key: unavailable}\ndata:\n- secretKey: b\n  remoteRef: {key: nope}",
    );
    assert_eq!(e.field(), "spec.dataFrom[0].extract.key");
}

#[test]
fn a_fetched_key_dropped_by_a_replace_template_need_not_be_a_valid_secret_key() {
    let out = run(r#"target:
  template:
    data:
      pw: "{{ data['a/b'] }}"
data:
- secretKey: 'a/b'
  remoteRef: {key: password}"#)
    .unwrap();
    assert_eq!(data(&out), pairs(&[("pw", "hunter2")]));
}

mod deletion;
mod eso;
mod generators;
mod unchanged;

use generators::TestGenerators;
