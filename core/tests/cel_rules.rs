//! The `x-kubernetes-validations` rules in the CRDs, evaluated by a CEL interpreter the way the
//! API server evaluates them: they admit what ESO admits and refuse ambiguous entries.

use kube::core::cel::validate_cel;
use kuvert_core::api::{ExternalSecret, PushSecret};

fn external_secret(spec_yaml: &str) -> ExternalSecret {
    let text = format!(
        "apiVersion: kuvert.io/v1alpha1\nkind: ExternalSecret\nmetadata: {{name: es, namespace: default}}\nspec:\n{spec_yaml}"
    );
    serde_saphyr::from_str(&text).unwrap()
}

fn messages(es: &ExternalSecret) -> Vec<String> {
    match validate_cel(es) {
        Ok(()) => Vec::new(),
        Err(errors) => errors.iter().map(|e| e.to_string()).collect(),
    }
}

#[test]
fn data_from_with_exactly_one_source_is_admitted() {
    let es = external_secret(
        "  dataFrom:\n  - extract: {key: a}\n  - find: {name: {regexp: x}}\n  - sourceRef: {generatorRef: {kind: Password, name: pw}}\n",
    );
    assert_eq!(messages(&es), Vec::<String>::new());
}

#[test]
fn data_from_with_extract_and_find_is_refused() {
    let es = external_secret("  dataFrom:\n  - extract: {key: a}\n    find: {path: b}\n");
    let got = messages(&es);
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(
        got[0].contains("exactly one of extract, find and sourceRef.generatorRef must be set"),
        "{got:?}"
    );
}

#[test]
fn data_from_with_nothing_to_read_is_refused() {
    let es = external_secret("  dataFrom:\n  - rewrite: [{regexp: {source: a, target: b}}]\n");
    assert_eq!(messages(&es).len(), 1);
}

#[test]
fn rewrite_with_two_operations_is_refused() {
    let es = external_secret(
        "  dataFrom:\n  - extract: {key: a}\n    rewrite:\n    - regexp: {source: a, target: b}\n      transform: {template: x}\n",
    );
    let got = messages(&es);
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(got[0].contains("exactly one of regexp, transform and merge must be set"));
}

#[test]
fn source_ref_naming_store_and_generator_is_refused() {
    let es = external_secret(
        "  data:\n  - secretKey: k\n    sourceRef:\n      storeRef: {name: s}\n      generatorRef: {kind: UUID, name: u}\n",
    );
    let got = messages(&es);
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(got[0].contains("exactly one of storeRef and generatorRef must be set"));
}

#[test]
fn template_from_with_literal_and_config_map_is_refused() {
    let es = external_secret(
        "  target:\n    template:\n      templateFrom:\n      - literal: x\n        configMap: {name: c, items: [{key: k}]}\n",
    );
    let got = messages(&es);
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(got[0].contains("exactly one of configMap, secret and literal must be set"));
}

#[test]
fn push_secret_needs_exactly_one_source() {
    let text = "apiVersion: kuvert.io/v1alpha1\nkind: PushSecret\nmetadata: {name: p, namespace: default}\nspec:\n  secretStoreRefs: [{name: s}]\n  selector:\n    secret: {name: a}\n    generatorRef: {kind: UUID, name: u}\n";
    let ps: PushSecret = serde_saphyr::from_str(text).unwrap();
    let got: Vec<String> = validate_cel(&ps)
        .err()
        .map(|e| e.iter().map(|e| e.to_string()).collect())
        .unwrap_or_default();
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(got[0].contains("exactly one of secret and generatorRef must be set"));
}
