use std::collections::BTreeMap;

use futures::executor::block_on;
use kuvert_core::api::{FakeProvider, FakeProviderData, SecretStoreKind};
use kuvert_core::memory::MemoryKube;
use kuvert_core::provider::{
    FindRequest, GetRequest, Provider, ProviderError, PushRequest, SecretsClient, StoreContext,
};
use kuvert_core::secret::SecretBytes;

use super::FakeStoreProvider;

fn entry(key: &str, value: &str) -> FakeProviderData {
    FakeProviderData {
        key: key.to_owned(),
        value: Some(value.to_owned()),
        ..Default::default()
    }
}

fn tagged(key: &str, value: &str, tags: &[(&str, &str)]) -> FakeProviderData {
    FakeProviderData {
        tags: tags
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..entry(key, value)
    }
}

fn versioned(key: &str, value: &str, version: &str) -> FakeProviderData {
    FakeProviderData {
        version: Some(version.to_owned()),
        ..entry(key, value)
    }
}

fn client(data: Vec<FakeProviderData>) -> std::sync::Arc<dyn SecretsClient> {
    let store = StoreContext {
        kind: SecretStoreKind::SecretStore,
        name: "fake",
        namespace: Some("default"),
    };
    let spec = FakeProvider { data };
    block_on(FakeStoreProvider.client(&store, &spec, Some("default"), &MemoryKube::new())).unwrap()
}

fn get(c: &dyn SecretsClient, key: &str, version: Option<&str>) -> Result<String, ProviderError> {
    block_on(c.get(&GetRequest {
        key: key.to_owned(),
        version: version.map(str::to_owned),
        metadata: false,
    }))
    .map(|r| r.value.expose_str().unwrap().to_owned())
}

#[test]
fn get_serves_values_and_value_maps_as_json() {
    let c = client(vec![
        entry("plain", "text"),
        FakeProviderData {
            key: "map".to_owned(),
            value_map: BTreeMap::from([("b".into(), "2".into()), ("a".into(), "1".into())]),
            ..Default::default()
        },
    ]);
    assert_eq!(get(&*c, "plain", None).unwrap(), "text");
    assert_eq!(get(&*c, "map", None).unwrap(), r#"{"a":"1","b":"2"}"#);
}

#[test]
fn versions_are_selectable_and_the_current_one_is_unversioned_or_last() {
    let c = client(vec![
        versioned("k", "one", "1"),
        versioned("k", "two", "2"),
        versioned("only", "v1", "1"),
        entry("only", "current"),
    ]);
    assert_eq!(get(&*c, "k", Some("1")).unwrap(), "one");
    assert_eq!(get(&*c, "k", None).unwrap(), "two");
    assert_eq!(get(&*c, "only", None).unwrap(), "current");
    let got = block_on(c.get(&GetRequest {
        key: "k".into(),
        ..Default::default()
    }))
    .unwrap();
    assert_eq!(got.version.as_deref(), Some("2"));
}

#[test]
fn missing_keys_and_versions_are_not_found_naming_the_key() {
    let c = client(vec![versioned("k", "s3cret", "1")]);
    let err = get(&*c, "nope", None).unwrap_err();
    assert_eq!(err.reason(), "NotFound");
    assert_eq!(err.to_string(), r#"key "nope" not found"#);
    let err = get(&*c, "k", Some("9")).unwrap_err();
    assert_eq!(err.to_string(), r#"key "k" at version "9" not found"#);
}

#[test]
fn metadata_requests_return_the_tags_as_json() {
    let c = client(vec![tagged("k", "v", &[("env", "prod"), ("team", "a")])]);
    let got = block_on(c.get(&GetRequest {
        key: "k".into(),
        version: None,
        metadata: true,
    }))
    .unwrap();
    assert_eq!(
        got.value.expose_str().unwrap(),
        r#"{"env":"prod","team":"a"}"#
    );
}

#[test]
fn find_filters_by_path_name_and_tags() {
    let c = client(vec![
        tagged("app/db-password", "p", &[("env", "prod")]),
        tagged("app/db-user", "u", &[("env", "dev")]),
        tagged("app/token", "t", &[("env", "prod")]),
        tagged("other/db-x", "x", &[("env", "prod")]),
    ]);
    let find = |path: Option<&str>, re: Option<&str>, tags: &[(&str, &str)]| {
        let found = block_on(
            c.find(&FindRequest {
                path: path.map(str::to_owned),
                name_regexp: re.map(|re| regex::Regex::new(re).unwrap()),
                tags: tags
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            }),
        )
        .unwrap();
        found.into_keys().collect::<Vec<_>>()
    };
    assert_eq!(
        find(Some("app/"), None, &[]),
        ["app/db-password", "app/db-user", "app/token"]
    );
    assert_eq!(
        find(None, Some("db-"), &[]),
        ["app/db-password", "app/db-user", "other/db-x"]
    );
    assert_eq!(
        find(Some("app/"), Some("db-"), &[("env", "prod")]),
        ["app/db-password"]
    );
    assert_eq!(find(None, None, &[("env", "dev")]), ["app/db-user"]);
}

#[test]
fn validate_names_the_field_at_fault() {
    let check = |data: Vec<FakeProviderData>| {
        let store = StoreContext {
            kind: SecretStoreKind::SecretStore,
            name: "fake",
            namespace: Some("default"),
        };
        FakeStoreProvider
            .validate(&store, &FakeProvider { data })
            .map_err(|e| e.to_string())
    };
    assert!(check(vec![entry("a", "1"), versioned("a", "2", "2")]).is_ok());
    assert_eq!(
        check(vec![entry("a", "1"), entry("a", "2")]).unwrap_err(),
        r#"invalid store spec: spec.provider.fake.data[1].version: key "a" at this version is already data[0]"#
    );
    assert_eq!(
        check(vec![entry("", "1")]).unwrap_err(),
        "invalid store spec: spec.provider.fake.data[0].key: the key may not be empty"
    );
}

#[test]
fn push_writes_only_keys_kuvert_owns() {
    let c = client(vec![entry("from-spec", "s3cret")]);
    let push = |key: &str, property: Option<&str>, value: &str, owner: &str| {
        block_on(c.push(&PushRequest {
            key: key.to_owned(),
            property: property.map(str::to_owned),
            value: SecretBytes::from(value),
            owner: owner.to_owned(),
            metadata: None,
        }))
    };
    push("pushed", None, "v1", "ns/a").unwrap();
    assert_eq!(get(&*c, "pushed", None).unwrap(), "v1");
    let err = push("pushed", None, "v2", "ns/b").unwrap_err();
    assert_eq!(err.reason(), "Conflict");
    let err = push("from-spec", None, "x", "ns/a").unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"conflict: key "from-spec" exists and was not written by kuvert"#
    );
    push("obj", Some("user"), "u", "ns/a").unwrap();
    push("obj", Some("pass"), "p", "ns/a").unwrap();
    assert_eq!(get(&*c, "obj", None).unwrap(), r#"{"pass":"p","user":"u"}"#);
    block_on(c.delete("obj", Some("user"), "ns/a")).unwrap();
    assert_eq!(get(&*c, "obj", None).unwrap(), r#"{"pass":"p"}"#);
    // A property pushed into a whole JSON object pushed before keeps its other properties.
    push("whole", None, r#"{"a":"1","b":"2"}"#, "ns/a").unwrap();
    push("whole", Some("b"), "3", "ns/a").unwrap();
    assert_eq!(get(&*c, "whole", None).unwrap(), r#"{"a":"1","b":"3"}"#);
    assert!(block_on(c.delete("pushed", None, "ns/b")).is_err());
    block_on(c.delete("pushed", None, "ns/a")).unwrap();
    assert!(!block_on(c.exists("pushed")).unwrap());
    assert!(block_on(c.exists("from-spec")).unwrap());
}
