//! `sourceRef.generatorRef`: entries whose values a generator makes.

use std::sync::Mutex;

use super::*;
use crate::api::GeneratorRef;
use crate::generator::{GeneratedValues, GeneratorError, GeneratorResolver, checked_kind};

/// Generators of namespace `ns`: `Fake/creds` makes `user` and `pass`, `Password/pw` makes
/// `password` (a new one per call: `pw-1`, `pw-2`, ...), `Fake/down` fails as unreachable.
/// Records each call's field.
#[derive(Default)]
pub(super) struct TestGenerators {
    calls: Mutex<Vec<String>>,
}

#[async_trait]
impl GeneratorResolver for TestGenerators {
    async fn generate(
        &self,
        namespace: &str,
        field: &str,
        generator_ref: &GeneratorRef,
    ) -> Result<GeneratedValues, GeneratorError> {
        let kind = checked_kind(generator_ref)?;
        let generator = crate::generator::display_name(kind, namespace, &generator_ref.name);
        let mut calls = self.calls.lock().unwrap();
        calls.push(field.to_owned());
        let values = match (kind.as_str(), generator_ref.name.as_str()) {
            ("Fake", "creds") => BTreeMap::from([
                ("user".to_owned(), SecretBytes::from("app")),
                ("pass".to_owned(), SecretBytes::from("s3cret")),
            ]),
            ("Password", "pw") => BTreeMap::from([(
                "password".to_owned(),
                SecretBytes::from(format!("pw-{}", calls.len())),
            )]),
            ("Fake", "down") => {
                return Err(GeneratorError::Generator {
                    generator,
                    source: ProviderError::Unavailable {
                        message: "connection refused".to_owned(),
                        source: None,
                    }
                    .into(),
                });
            }
            _ => return Err(GeneratorError::NotFound { generator }),
        };
        Ok(GeneratedValues { generator, values })
    }
}

fn run_counting(spec: &str, generators: &TestGenerators) -> Result<SyncOutcome, SyncError> {
    block_on(sync(
        &es(spec),
        &Stores(Arc::new(store())),
        generators,
        &MemoryKube::new(),
        None,
        now(),
    ))
}

#[test]
fn data_from_a_generator_writes_every_generated_key() {
    let out = run("dataFrom:\n- sourceRef: {generatorRef: {kind: Fake, name: creds}}").unwrap();
    assert_eq!(data(&out), pairs(&[("pass", "s3cret"), ("user", "app")]));
    // Generated values were not read from a store: no remote version to report.
    assert_eq!(out.status.synced_versions, vec![]);
}

#[test]
fn generated_keys_are_rewritten_and_mix_with_store_values() {
    let out = run(r#"dataFrom:
- sourceRef: {generatorRef: {apiVersion: generators.kuvert.io/v1alpha1, kind: Fake, name: creds}}
  rewrite: [{regexp: {source: "^(.*)$", target: "db_$1"}}]
data:
- secretKey: stored
  remoteRef: {key: password}"#)
    .unwrap();
    assert_eq!(
        data(&out),
        pairs(&[
            ("db_pass", "s3cret"),
            ("db_user", "app"),
            ("stored", "hunter2")
        ])
    );
    assert_eq!(out.status.synced_versions.len(), 1);
    assert_eq!(out.status.synced_versions[0].remote_key, "password");
}

#[test]
fn a_data_entry_takes_the_generated_key_its_remote_ref_names_or_the_only_one() {
    let out = run(r#"data:
- secretKey: db-user
  remoteRef: {key: user}
  sourceRef: {generatorRef: {kind: Fake, name: creds}}
- secretKey: db-password
  sourceRef: {generatorRef: {kind: Password, name: pw}}"#)
    .unwrap();
    assert_eq!(
        data(&out),
        pairs(&[("db-password", "pw-2"), ("db-user", "app")])
    );
}

#[test]
fn a_data_entry_must_name_a_key_the_generator_made() {
    let e = err("data:\n- secretKey: a\n  sourceRef: {generatorRef: {kind: Fake, name: creds}}");
    assert_eq!(
        e.to_string(),
        "spec.data[0].remoteRef.key: Fake/ns/creds made several keys (pass, user); name the one to use"
    );
    assert_eq!(e.reason(), "InvalidSpec");
    let e = err(
        "data:\n- secretKey: a\n  remoteRef: {key: token}\n  sourceRef: {generatorRef: {kind: Fake, name: creds}}",
    );
    assert_eq!(
        e.to_string(),
        "spec.data[0].remoteRef.key: Fake/ns/creds made no key \"token\" (it made: pass, user)"
    );
}

#[test]
fn generator_errors_name_the_field_and_keep_their_classification() {
    let e = err("dataFrom:\n- sourceRef: {generatorRef: {kind: Password, name: missing}}");
    assert_eq!(
        e.to_string(),
        "spec.dataFrom[0].sourceRef.generatorRef: Password/ns/missing not found"
    );
    assert_eq!((e.reason(), e.is_transient()), ("GeneratorNotFound", true));

    let e = err("dataFrom:\n- sourceRef: {generatorRef: {kind: ACRAccessToken, name: x}}");
    assert_eq!(
        e.to_string(),
        "spec.dataFrom[0].sourceRef.generatorRef: unknown generator kind \"ACRAccessToken\" of generators.kuvert.io/v1alpha1 (known: Password, UUID, Fake, VaultDynamicSecret of generators.kuvert.io/v1alpha1)"
    );
    assert_eq!((e.reason(), e.is_transient()), ("InvalidSpec", false));

    let e = err("data:\n- secretKey: a\n  sourceRef: {generatorRef: {kind: Fake, name: down}}");
    assert_eq!(
        e.to_string(),
        "spec.data[0].sourceRef.generatorRef: Fake/ns/down: store unavailable: connection refused"
    );
    assert_eq!((e.reason(), e.is_transient()), ("Unavailable", true));
    assert_eq!(e.field(), "spec.data[0].sourceRef.generatorRef");
}

#[test]
fn a_generator_entry_cannot_also_extract_find_or_name_a_store() {
    let e = err(
        "dataFrom:\n- extract: {key: db}\n  sourceRef: {generatorRef: {kind: Fake, name: creds}}",
    );
    assert_eq!(
        e.to_string(),
        "spec.dataFrom[0]: exactly one of extract, find and sourceRef.generatorRef must be set"
    );
    let e = err(
        "data:\n- secretKey: a\n  sourceRef: {storeRef: {name: store}, generatorRef: {kind: Fake, name: creds}}",
    );
    assert_eq!(
        e.to_string(),
        "spec.data[0].sourceRef: exactly one of storeRef and generatorRef must be set"
    );
}

#[test]
fn generators_run_only_after_every_read_succeeded_and_in_spec_order() {
    let generators = TestGenerators::default();
    let e = run_counting(
        "dataFrom:\n- sourceRef: {generatorRef: {kind: Password, name: pw}}\ndata:\n- secretKey: a\n  remoteRef: {key: unavailable}",
        &generators,
    )
    .unwrap_err();
    assert_eq!(e.reason(), "Unavailable");
    assert!(
        generators.calls.lock().unwrap().is_empty(),
        "no generator ran"
    );

    run_counting(
        "dataFrom:\n- sourceRef: {generatorRef: {kind: Password, name: pw}}\n- sourceRef: {generatorRef: {kind: Fake, name: creds}}\ndata:\n- secretKey: a\n  sourceRef: {generatorRef: {kind: Password, name: pw}}",
        &generators,
    )
    .unwrap();
    assert_eq!(
        *generators.calls.lock().unwrap(),
        ["spec.dataFrom[0]", "spec.dataFrom[1]", "spec.data[0]"]
    );
}

#[test]
fn generated_values_go_through_templates_like_read_ones() {
    let out = run(r#"target:
  template:
    data:
      dsn: "postgres://{{ user }}:{{ pass }}@db"
dataFrom:
- sourceRef: {generatorRef: {kind: Fake, name: creds}}"#)
    .unwrap();
    assert_eq!(data(&out), pairs(&[("dsn", "postgres://app:s3cret@db")]));
}
