//! ESO's behaviours that ESO users' manifests depend on (issue 18).

use super::*;

#[test]
fn values_decoding_strategy_decodes_rendered_values_not_keys() {
    // ESO's documented example: the template picks base64 text, the Secret stores its bytes.
    let out = run(r#"target:
  template:
    templateFrom:
    - valuesDecodingStrategy: Base64
      literal: "greeting: {{ b64 }}"
data:
- secretKey: b64
  remoteRef: {key: b64}"#)
    .unwrap();
    assert_eq!(data(&out), pairs(&[("greeting", "hello")]));
}

#[test]
fn values_decoding_strategy_names_the_field_when_a_value_does_not_decode() {
    let e = err(r#"target:
  template:
    templateFrom:
    - valuesDecodingStrategy: Base64
      literal: "k: {{ b64 }}!"
data:
- secretKey: b64
  remoteRef: {key: b64}"#);
    let text = e.to_string();
    assert!(
        text.contains("spec.target.template.templateFrom[0].literal.valuesDecodingStrategy"),
        "{text}"
    );
    assert!(!text.contains("aGVsbG8"), "{text}");
}

#[test]
fn templates_see_the_syncs_clock() {
    let out = run(r#"target:
  template:
    data:
      stamp: '{{ now() | date("2006-01-02") }}'
data:
- secretKey: password
  remoteRef: {key: password}"#)
    .unwrap();
    // now() is 1_800_000_000 s after the epoch: 2027-01-15.
    assert_eq!(data(&out), pairs(&[("stamp", "2027-01-15")]));
}

#[test]
fn owner_adopts_a_secret_with_no_controller_as_eso_does() {
    let unowned = existing("app", &[], None);
    let out = run_with(&es(ONE_KEY), &MemoryKube::new(), Some(&unowned)).unwrap();
    assert_eq!(out.action, TargetAction::Update);
    assert_eq!(data(&out), pairs(&[("pw", "hunter2")]));
    let refs = out.secret.unwrap().metadata.owner_references.unwrap();
    assert_eq!(refs.len(), 1);
    assert_eq!(
        (refs[0].kind.as_str(), refs[0].uid.as_str()),
        ("ExternalSecret", "uid-1")
    );
    let message = &out.status.conditions[0].message;
    assert!(
        message.contains("adopted the existing Secret ns/app: it had no controller"),
        "{message}"
    );
}

#[test]
fn owner_adopts_the_secret_of_esos_external_secret_of_the_same_name() {
    let mut esos = existing("app", &[], Some("uid-ESO"));
    esos.metadata.owner_references.as_mut().unwrap()[0].api_version =
        "external-secrets.io/v1".into();
    let out = run_with(&es(ONE_KEY), &MemoryKube::new(), Some(&esos)).unwrap();
    let secret = out.secret.unwrap();
    // ESO's reference goes: deleting ESO's object must not delete the Secret.
    let refs = secret.metadata.owner_references.unwrap();
    assert_eq!(refs.len(), 1);
    assert_eq!(refs[0].api_version, "kuvert.io/v1alpha1");
    assert_eq!(refs[0].uid, "uid-1");
    assert!(out.status.conditions[0].message.contains("it was ESO's"));

    // ESO's ExternalSecret of another name still owns its Secret.
    let mut other = esos_named("other");
    other.metadata.owner_references.as_mut().unwrap()[0].api_version =
        "external-secrets.io/v1beta1".into();
    assert_eq!(
        run_with(&es(ONE_KEY), &MemoryKube::new(), Some(&other))
            .unwrap_err()
            .reason(),
        "NotOwned"
    );
}

fn esos_named(name: &str) -> Secret {
    let mut s = existing("app", &[], Some("uid-ESO"));
    s.metadata.owner_references.as_mut().unwrap()[0].name = name.into();
    s
}

#[test]
fn null_byte_policy_fail_refuses_a_value_with_nul_bytes_after_decoding() {
    // "AGE=" is base64 of the bytes 0x00 'a'.
    let spec = |policy: &str| {
        format!(
            "data:\n- secretKey: k\n  remoteRef: {{key: nul, decodingStrategy: Base64{policy}}}"
        )
    };
    let out = run_with(&es(&spec("")), &MemoryKube::new(), None);
    assert!(out.is_ok(), "Ignore (the default) keeps binary data");
    let e = err_with_nul(&spec(", nullBytePolicy: Fail"));
    assert_eq!(e.reason(), "NullBytes");
    assert_eq!(e.field(), "spec.data[0].remoteRef.nullBytePolicy");
    assert!(
        e.to_string()
            .contains(r#"the value of "k" contains NUL bytes"#),
        "{e}"
    );
    // The same on dataFrom.extract: a JSON object whose field decodes to NUL bytes.
    let e = err_with_nul(
        "dataFrom:\n- extract: {key: nul-json, decodingStrategy: Base64, nullBytePolicy: Fail}",
    );
    assert_eq!(e.field(), "spec.dataFrom[0].extract.nullBytePolicy");
}

fn err_with_nul(spec: &str) -> SyncError {
    run_with(&es(spec), &MemoryKube::new(), None).expect_err("NUL bytes refused")
}

#[test]
fn template_metadata_finalizers_are_added_to_the_secret() {
    let out = run(r#"target:
  template:
    metadata:
      finalizers: [example.com/keep]
data:
- secretKey: pw
  remoteRef: {key: password}"#)
    .unwrap();
    let secret = out.secret.unwrap();
    assert_eq!(
        secret.metadata.finalizers.as_deref(),
        Some(&["example.com/keep".to_owned()][..])
    );
    // Present already: not added twice.
    let again = run_with(
        &es("target:\n  template:\n    metadata:\n      finalizers: [example.com/keep]\ndata:\n- secretKey: pw\n  remoteRef: {key: password}"),
        &MemoryKube::new(),
        Some(&secret),
    )
    .unwrap();
    assert_eq!(again.secret.unwrap().metadata.finalizers.unwrap().len(), 1);
}
