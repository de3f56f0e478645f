//! Every read shape against a real OpenBao server: whole secret, version, metadata, KV v1,
//! full-path keys, plain values, find by name and by tags.

mod support;

use std::collections::BTreeMap;

use kuvert_core::api::VaultKvVersion;
use kuvert_core::memory::MemoryKube;
use kuvert_core::provider::{FindRequest, GetRequest, ProviderError};
use kuvert_provider_vault::VaultProvider;
use serde_json::json;
use support::*;

#[tokio::test]
async fn a_kv2_secret_reads_as_its_whole_data_map_with_its_version() {
    let bao = OpenBao::start().await;
    bao.kv2_put(
        "secret",
        "app/db",
        json!({"user": "app", "password": "s3cr3t", "port": 5432}),
    )
    .await;
    let v2 = bao
        .kv2_put(
            "secret",
            "app/db",
            json!({"user": "app", "password": "n3w", "port": 5432}),
        )
        .await;
    let mut kube = MemoryKube::new();
    let spec = root_spec(&bao, &mut kube);
    let client = client(&VaultProvider::new(), &spec, &kube).await.unwrap();

    let secret = client
        .get(&GetRequest {
            key: "app/db".into(),
            ..GetRequest::default()
        })
        .await
        .unwrap();
    assert_eq!(
        json(secret.value.expose_str().unwrap()),
        json!({"user": "app", "password": "n3w", "port": 5432})
    );
    assert_eq!(secret.version, Some(v2.to_string()));
}

#[tokio::test]
async fn a_given_version_reads_that_version() {
    let bao = OpenBao::start().await;
    let v1 = bao
        .kv2_put("secret", "app", json!({"password": "old"}))
        .await;
    bao.kv2_put("secret", "app", json!({"password": "new"}))
        .await;
    let mut kube = MemoryKube::new();
    let spec = root_spec(&bao, &mut kube);
    let client = client(&VaultProvider::new(), &spec, &kube).await.unwrap();

    let old = client
        .get(&GetRequest {
            key: "app".into(),
            version: Some(v1.to_string()),
            metadata: false,
        })
        .await
        .unwrap();
    assert_eq!(
        json(old.value.expose_str().unwrap()),
        json!({"password": "old"})
    );
    assert_eq!(old.version.as_deref(), Some("1"));

    let bad = client
        .get(&GetRequest {
            key: "app".into(),
            version: Some("latest".into()),
            metadata: false,
        })
        .await
        .unwrap_err();
    assert_eq!(bad.reason(), "InvalidSpec", "{bad}");
    assert!(bad.to_string().contains("remoteRef.version"), "{bad}");
}

#[tokio::test]
async fn metadata_reads_the_system_fields_and_the_custom_metadata() {
    let bao = OpenBao::start().await;
    bao.kv2_put("secret", "app", json!({"password": "x"})).await;
    bao.kv2_metadata("secret", "app", json!({"owner": "team-a", "env": "prod"}))
        .await;
    bao.kv2_put("secret", "bare", json!({"password": "x"}))
        .await;
    let mut kube = MemoryKube::new();
    let spec = root_spec(&bao, &mut kube);
    let client = client(&VaultProvider::new(), &spec, &kube).await.unwrap();

    let meta = |key: &str| GetRequest {
        key: key.into(),
        version: None,
        metadata: true,
    };
    // As ESO: created_time, current_version and delete_version_after, then the custom
    // metadata, all strings (so `property: current_version` works).
    let secret = client.get(&meta("app")).await.unwrap();
    let mut value = json(secret.value.expose_str().unwrap());
    let created = value
        .as_object_mut()
        .unwrap()
        .remove("created_time")
        .expect("created_time");
    assert!(created.as_str().unwrap().ends_with('Z'), "{created}");
    assert_eq!(
        value,
        json!({"owner": "team-a", "env": "prod", "current_version": "1", "delete_version_after": "0s"})
    );
    assert_eq!(secret.version.as_deref(), Some("1"));
    let bare = client.get(&meta("bare")).await.unwrap();
    let bare = json(bare.value.expose_str().unwrap());
    assert_eq!(bare["current_version"], "1");
    assert!(bare.get("owner").is_none());
    let missing = client.get(&meta("nope")).await.unwrap_err();
    assert_eq!(missing.reason(), "NotFound");
}

#[tokio::test]
async fn kv1_reads_the_data_map_without_versions() {
    let bao = OpenBao::start().await;
    bao.mount("kv1", "kv", json!({"version": "1"})).await;
    bao.write("kv1/app/db", json!({"user": "app", "password": "v1pass"}))
        .await;
    let mut kube = MemoryKube::new();
    let mut spec = root_spec(&bao, &mut kube);
    spec.path = Some("kv1".into());
    spec.version = Some(VaultKvVersion::V1);
    let client = client(&VaultProvider::new(), &spec, &kube).await.unwrap();

    let secret = client
        .get(&GetRequest {
            key: "app/db".into(),
            ..GetRequest::default()
        })
        .await
        .unwrap();
    assert_eq!(
        json(secret.value.expose_str().unwrap()),
        json!({"user": "app", "password": "v1pass"})
    );
    assert_eq!(secret.version, None);
    // The same secret by its full path.
    assert_eq!(
        get_text(client.as_ref(), "kv1/app/db").await.unwrap(),
        secret.value.expose_str().unwrap()
    );

    let no_versions = client
        .get(&GetRequest {
            key: "app/db".into(),
            version: Some("1".into()),
            metadata: false,
        })
        .await
        .unwrap_err();
    assert_eq!(no_versions.reason(), "InvalidSpec");
    let no_metadata = client
        .get(&GetRequest {
            key: "app/db".into(),
            version: None,
            metadata: true,
        })
        .await
        .unwrap_err();
    assert!(
        no_metadata.to_string().contains("metadataPolicy"),
        "{no_metadata}"
    );

    let found = client
        .find(&FindRequest {
            path: Some("app".into()),
            name_regexp: Some(regex::Regex::new("db$").unwrap()),
            tags: BTreeMap::new(),
        })
        .await
        .unwrap();
    assert_eq!(found.keys().collect::<Vec<_>>(), ["app/db"]);
}

#[tokio::test]
async fn a_key_may_carry_the_full_path_or_name_its_mount() {
    let bao = OpenBao::start().await;
    bao.kv2_put("secret", "app", json!({"k": "in-secret"}))
        .await;
    bao.mount("other", "kv", json!({"version": "2"})).await;
    bao.kv2_put("other", "app", json!({"k": "in-other"})).await;
    let mut kube = MemoryKube::new();
    let spec = root_spec(&bao, &mut kube);
    let provider = VaultProvider::new();
    let client_ = client(&provider, &spec, &kube).await.unwrap();

    for key in ["app", "secret/app", "secret/data/app", "/app"] {
        assert_eq!(
            json(&get_text(client_.as_ref(), key).await.unwrap()),
            json!({"k": "in-secret"}),
            "{key}"
        );
    }

    // Without a store path the first segment is the mount.
    let mut no_mount = spec.clone();
    no_mount.path = None;
    let client_ = client(&provider, &no_mount, &kube).await.unwrap();
    assert_eq!(
        json(&get_text(client_.as_ref(), "other/app").await.unwrap()),
        json!({"k": "in-other"})
    );
    assert_eq!(
        json(&get_text(client_.as_ref(), "other/data/app").await.unwrap()),
        json!({"k": "in-other"})
    );
    let err = get_text(client_.as_ref(), "app").await.unwrap_err();
    assert_eq!(err.reason(), "InvalidSpec", "{err}");

    // A key cannot climb out of the mount to other endpoints.
    let err = get_text(client_.as_ref(), "secret/x/../../sys/mounts")
        .await
        .unwrap_err();
    assert_eq!(err.reason(), "InvalidSpec", "{err}");
}

#[tokio::test]
async fn a_plain_value_reads_as_a_single_value_map_byte_for_byte() {
    let bao = OpenBao::start().await;
    // What `bao kv put secret/cert value=@cert.pem` writes: one key named `value`.
    let pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
    bao.kv2_put("secret", "cert", json!({"value": pem})).await;
    bao.kv2_put(
        "secret",
        "nested",
        json!({"config": {"a": [1, 2]}, "flag": true}),
    )
    .await;
    let mut kube = MemoryKube::new();
    let spec = root_spec(&bao, &mut kube);
    let client = client(&VaultProvider::new(), &spec, &kube).await.unwrap();

    let value = json(&get_text(client.as_ref(), "cert").await.unwrap());
    assert_eq!(value, json!({"value": pem}));
    assert_eq!(value["value"].as_str().unwrap().as_bytes(), pem.as_bytes());
    // Non-string JSON values keep their types for the engine's property paths.
    assert_eq!(
        json(&get_text(client.as_ref(), "nested").await.unwrap()),
        json!({"config": {"a": [1, 2]}, "flag": true})
    );
}

#[tokio::test]
async fn a_deleted_or_missing_secret_is_not_found() {
    let bao = OpenBao::start().await;
    bao.kv2_put("secret", "gone", json!({"k": "v"})).await;
    bao.api("DELETE", "secret/data/gone", None).await;
    let mut kube = MemoryKube::new();
    let spec = root_spec(&bao, &mut kube);
    let client = client(&VaultProvider::new(), &spec, &kube).await.unwrap();

    for key in ["gone", "never/was"] {
        let err = get_text(client.as_ref(), key).await.unwrap_err();
        assert!(
            matches!(err, ProviderError::NotFound { .. }),
            "{key}: {err}"
        );
        assert!(err.to_string().contains("secret/data/"), "{err}");
        assert!(!client.exists(key).await.unwrap());
    }
}

async fn seed_tree(bao: &OpenBao) {
    for (path, data) in [
        ("app/db", json!({"password": "db"})),
        ("app/api/key", json!({"key": "api"})),
        ("app/api/token", json!({"token": "t"})),
        ("other/db", json!({"password": "other"})),
    ] {
        bao.kv2_put("secret", path, data).await;
    }
    bao.kv2_metadata("secret", "app/db", json!({"team": "a", "env": "prod"}))
        .await;
    bao.kv2_metadata("secret", "app/api/key", json!({"team": "a", "env": "dev"}))
        .await;
    bao.kv2_metadata("secret", "other/db", json!({"team": "b", "env": "prod"}))
        .await;
}

#[tokio::test]
async fn find_lists_recursively_and_filters_by_name() {
    let bao = OpenBao::start().await;
    seed_tree(&bao).await;
    let mut kube = MemoryKube::new();
    let spec = root_spec(&bao, &mut kube);
    let client = client(&VaultProvider::new(), &spec, &kube).await.unwrap();

    let find = |path: Option<&str>, re: Option<&str>| FindRequest {
        path: path.map(Into::into),
        name_regexp: re.map(|re| regex::Regex::new(re).unwrap()),
        tags: BTreeMap::new(),
    };
    let all = client.find(&find(None, Some(".*"))).await.unwrap();
    assert_eq!(
        all.keys().collect::<Vec<_>>(),
        ["app/api/key", "app/api/token", "app/db", "other/db"]
    );
    assert_eq!(
        json(all["app/db"].value.expose_str().unwrap()),
        json!({"password": "db"})
    );
    assert_eq!(all["app/db"].version.as_deref(), Some("1"));

    let dbs = client.find(&find(None, Some("db$"))).await.unwrap();
    assert_eq!(dbs.keys().collect::<Vec<_>>(), ["app/db", "other/db"]);

    let under_api = client.find(&find(Some("app/api"), None)).await.unwrap();
    assert_eq!(
        under_api.keys().collect::<Vec<_>>(),
        ["app/api/key", "app/api/token"]
    );

    let with_mount = client
        .find(&find(Some("secret/app/api"), Some("token")))
        .await
        .unwrap();
    assert_eq!(
        with_mount.keys().collect::<Vec<_>>(),
        ["secret/app/api/token"]
    );

    let nothing = client.find(&find(Some("nowhere"), None)).await.unwrap();
    assert!(nothing.is_empty());
}

#[tokio::test]
async fn find_by_tags_matches_custom_metadata() {
    let bao = OpenBao::start().await;
    seed_tree(&bao).await;
    let mut kube = MemoryKube::new();
    let spec = root_spec(&bao, &mut kube);
    let client = client(&VaultProvider::new(), &spec, &kube).await.unwrap();

    let tags = |pairs: &[(&str, &str)]| FindRequest {
        path: None,
        name_regexp: None,
        tags: pairs
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect(),
    };
    let team_a = client.find(&tags(&[("team", "a")])).await.unwrap();
    assert_eq!(team_a.keys().collect::<Vec<_>>(), ["app/api/key", "app/db"]);
    let prod_a = client
        .find(&tags(&[("team", "a"), ("env", "prod")]))
        .await
        .unwrap();
    assert_eq!(prod_a.keys().collect::<Vec<_>>(), ["app/db"]);
    let none = client.find(&tags(&[("team", "c")])).await.unwrap();
    assert!(none.is_empty());

    // Name and tags together: both apply.
    let mut both = tags(&[("env", "prod")]);
    both.name_regexp = Some(regex::Regex::new("^other/").unwrap());
    let found = client.find(&both).await.unwrap();
    assert_eq!(found.keys().collect::<Vec<_>>(), ["other/db"]);
}
