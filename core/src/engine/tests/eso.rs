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
