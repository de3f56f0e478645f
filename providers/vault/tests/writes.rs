//! PushSecret writes against a real OpenBao server: ownership marker, check-and-set, refusal to
//! overwrite or delete what kuvert does not own, deletes of only what it owns.

mod support;

use kuvert_core::api::{VaultCheckAndSet, VaultKvVersion};
use kuvert_core::memory::MemoryKube;
use kuvert_core::provider::{PushRequest, SecretsClient};
use kuvert_core::secret::SecretBytes;
use kuvert_provider_vault::VaultProvider;
use kuvert_provider_vault::connection::Method;
use serde_json::{Value, json};
use support::*;

const OWNER: &str = "apps/push-db";

fn push(key: &str, property: Option<&str>, value: &str) -> PushRequest {
    PushRequest {
        key: key.into(),
        property: property.map(Into::into),
        value: SecretBytes::from(value),
        owner: OWNER.into(),
        metadata: None,
    }
}

async fn data(bao: &OpenBao, path: &str) -> Value {
    bao.read(&format!("secret/data/{path}")).await["data"]["data"].clone()
}

async fn custom(bao: &OpenBao, path: &str) -> Value {
    bao.read(&format!("secret/metadata/{path}")).await["data"]["custom_metadata"].clone()
}

async fn setup(bao: &OpenBao) -> std::sync::Arc<dyn SecretsClient> {
    let mut kube = MemoryKube::new();
    let spec = root_spec(bao, &mut kube);
    client(&VaultProvider::new(), &spec, &kube).await.unwrap()
}

#[tokio::test]
async fn a_push_creates_the_secret_marked_as_kuverts() {
    let bao = OpenBao::start().await;
    let client = setup(&bao).await;
    let mut request = push("pushed/db", None, r#"{"user":"app","password":"p1"}"#);
    request.metadata = Some(json!({"customMetadata": {"team": "a"}}));
    client.push(&request).await.unwrap();

    assert_eq!(
        data(&bao, "pushed/db").await,
        json!({"user": "app", "password": "p1"})
    );
    assert_eq!(
        custom(&bao, "pushed/db").await,
        json!({"managed-by": "kuvert", "kuvert-owner": OWNER, "team": "a"})
    );
    // Pushing the same value again writes no new version.
    client.push(&request).await.unwrap();
    let meta = bao.read("secret/metadata/pushed/db").await;
    assert_eq!(meta["data"]["current_version"], json!(1));
}

#[tokio::test]
async fn a_property_push_updates_one_field_and_keeps_the_others() {
    let bao = OpenBao::start().await;
    let client = setup(&bao).await;
    client
        .push(&push("pushed/app", Some("user"), "app"))
        .await
        .unwrap();
    client
        .push(&push("pushed/app", Some("password"), "p2"))
        .await
        .unwrap();
    client
        .push(&push("pushed/app", Some("password"), "p3"))
        .await
        .unwrap();
    assert_eq!(
        data(&bao, "pushed/app").await,
        json!({"user": "app", "password": "p3"})
    );
    let meta = bao.read("secret/metadata/pushed/app").await;
    assert_eq!(meta["data"]["current_version"], json!(3));
}

#[tokio::test]
async fn a_secret_kuvert_does_not_own_is_never_overwritten_nor_deleted() {
    let bao = OpenBao::start().await;
    bao.kv2_put("secret", "theirs", json!({"password": "keep-me-safe"}))
        .await;
    let client = setup(&bao).await;

    for request in [
        push("theirs", None, r#"{"password":"x"}"#),
        push("theirs", Some("password"), "x"),
    ] {
        let err = client.push(&request).await.unwrap_err();
        assert_eq!(err.reason(), "Conflict", "{err}");
        assert!(err.to_string().contains("not managed by kuvert"), "{err}");
        assert!(err.to_string().contains("secret/data/theirs"), "{err}");
        assert!(!err.to_string().contains("keep-me-safe"));
    }
    for property in [None, Some("password")] {
        let err = client.delete("theirs", property, OWNER).await.unwrap_err();
        assert_eq!(err.reason(), "Conflict", "{err}");
    }
    assert_eq!(
        data(&bao, "theirs").await,
        json!({"password": "keep-me-safe"})
    );
}

#[tokio::test]
async fn another_pushsecrets_secret_is_refused_too() {
    let bao = OpenBao::start().await;
    let client = setup(&bao).await;
    client.push(&push("shared", Some("a"), "1")).await.unwrap();
    let mut other = push("shared", Some("b"), "2");
    other.owner = "apps/other".into();
    let err = client.push(&other).await.unwrap_err();
    assert_eq!(err.reason(), "Conflict");
    assert!(err.to_string().contains(OWNER), "{err}");
    let err = client
        .delete("shared", None, "apps/other")
        .await
        .unwrap_err();
    assert_eq!(err.reason(), "Conflict");
    assert_eq!(data(&bao, "shared").await, json!({"a": "1"}));
}

#[tokio::test]
async fn a_concurrent_change_loses_the_check_and_set_race() {
    let bao = OpenBao::start().await;

    // A create (cas=0) of a secret that appeared meanwhile, as a push would send it, conflicts.
    let conn = {
        let mut kube = MemoryKube::new();
        let spec = root_spec(&bao, &mut kube);
        VaultProvider::new()
            .cache()
            .connect(
                &kuvert_core::provider::StoreContext {
                    kind: kuvert_core::api::SecretStoreKind::SecretStore,
                    name: "vault",
                    namespace: Some(NS),
                },
                &spec,
                Some(NS),
                &kube,
            )
            .await
            .unwrap()
    };
    bao.kv2_put("secret", "fresh", json!({"k": "first"})).await;
    let err = conn
        .request(
            Method::POST,
            "secret/data/fresh",
            Some(&json!({"options": {"cas": 0}, "data": {"k": "second"}})),
        )
        .await
        .unwrap_err();
    assert_eq!(err.reason(), "Conflict", "{err}");
    assert!(err.to_string().contains("check-and-set"), "{err}");
}

#[tokio::test]
async fn writes_use_cas_unless_the_store_opts_out() {
    let bao = OpenBao::start().await;
    // A mount that requires cas on every write: kuvert's writes carry it.
    bao.write("secret/config", json!({"cas_required": true}))
        .await;
    let client_ = setup(&bao).await;
    client_.push(&push("cas/a", Some("k"), "1")).await.unwrap();
    client_.push(&push("cas/a", Some("k"), "2")).await.unwrap();
    assert_eq!(data(&bao, "cas/a").await, json!({"k": "2"}));

    // Opting out of cas on a mount that requires it fails loudly at Vault.
    let mut kube = MemoryKube::new();
    let mut spec = root_spec(&bao, &mut kube);
    spec.check_and_set = Some(VaultCheckAndSet {
        required: Some(false),
    });
    let no_cas = client(&VaultProvider::new(), &spec, &kube).await.unwrap();
    let err = no_cas
        .push(&push("cas/b", Some("k"), "1"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("check-and-set"), "{err}");
}

#[tokio::test]
async fn delete_removes_only_what_kuvert_pushed() {
    let bao = OpenBao::start().await;
    let client = setup(&bao).await;
    client.push(&push("del/app", Some("a"), "1")).await.unwrap();
    client.push(&push("del/app", Some("b"), "2")).await.unwrap();

    client.delete("del/app", Some("a"), OWNER).await.unwrap();
    assert_eq!(data(&bao, "del/app").await, json!({"b": "2"}));
    // A property that is not there: nothing to do.
    client.delete("del/app", Some("zzz"), OWNER).await.unwrap();
    // The last property takes the secret with it.
    client.delete("del/app", Some("b"), OWNER).await.unwrap();
    assert!(
        bao.api_as(
            bao.root_token(),
            None,
            "GET",
            "secret/metadata/del/app",
            None
        )
        .await
        .is_err()
    );

    client
        .push(&push("del/whole", None, r#"{"x":"1"}"#))
        .await
        .unwrap();
    client.delete("del/whole", None, OWNER).await.unwrap();
    assert!(
        bao.api_as(
            bao.root_token(),
            None,
            "GET",
            "secret/metadata/del/whole",
            None
        )
        .await
        .is_err()
    );
    // Deleting what is not there is fine.
    client.delete("del/never", None, OWNER).await.unwrap();
}

#[tokio::test]
async fn a_whole_secret_push_needs_a_json_object() {
    let bao = OpenBao::start().await;
    let client = setup(&bao).await;
    let err = client
        .push(&push("bad", None, "not json at all"))
        .await
        .unwrap_err();
    assert_eq!(err.reason(), "InvalidSpec");
    assert!(!err.to_string().contains("not json at all"));
}

#[tokio::test]
async fn kv1_stores_keep_the_owner_in_a_visible_key_and_refuse_what_is_not_theirs() {
    let bao = OpenBao::start().await;
    bao.mount("kv1", "kv", json!({"version": "1"})).await;
    let mut kube = MemoryKube::new();
    let mut spec = root_spec(&bao, &mut kube);
    spec.path = Some("kv1".into());
    spec.version = Some(VaultKvVersion::V1);
    let client = client(&VaultProvider::new(), &spec, &kube).await.unwrap();
    let read = |path: &'static str| {
        let bao = &bao;
        async move {
            bao.api_as(bao.root_token(), None, "GET", &format!("kv1/{path}"), None)
                .await
                .ok()
                .map(|v| v["data"].clone())
        }
    };

    // Pushed property by property: merged, the owner beside the values.
    client.push(&push("app", Some("user"), "u")).await.unwrap();
    client
        .push(&push("app", Some("password"), "p"))
        .await
        .unwrap();
    assert_eq!(
        read("app").await,
        Some(json!({"user": "u", "password": "p", "kuvert.io/pushed-by": OWNER}))
    );

    // Someone else's secret, and another PushSecret's: refused, untouched.
    bao.write("kv1/theirs", json!({"k": "theirs"})).await;
    let err = client
        .push(&push("theirs", Some("k"), "v"))
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "conflict: kv1/theirs exists without the kuvert.io/pushed-by key (not written by kuvert): refusing to overwrite it"
    );
    assert_eq!(
        client
            .delete("theirs", None, OWNER)
            .await
            .unwrap_err()
            .reason(),
        "Conflict"
    );
    assert_eq!(read("theirs").await, Some(json!({"k": "theirs"})));
    let mut other = push("app", Some("user"), "x");
    other.owner = "ns/other".into();
    assert_eq!(
        client.push(&other).await.unwrap_err().to_string(),
        format!("conflict: kv1/app was pushed by {OWNER}, not ns/other: refusing to overwrite it")
    );
    let marker = push("app", Some("kuvert.io/pushed-by"), "ns/other");
    assert_eq!(
        client.push(&marker).await.unwrap_err().reason(),
        "InvalidSpec"
    );

    // Deleted property by property; the secret goes with its last property.
    client.delete("app", Some("user"), OWNER).await.unwrap();
    assert_eq!(
        read("app").await,
        Some(json!({"password": "p", "kuvert.io/pushed-by": OWNER}))
    );
    client.delete("app", Some("password"), OWNER).await.unwrap();
    assert_eq!(read("app").await, None);

    // A whole secret, then deleted whole.
    client
        .push(&push("all", None, r#"{"a":"1"}"#))
        .await
        .unwrap();
    assert_eq!(
        read("all").await,
        Some(json!({"a": "1", "kuvert.io/pushed-by": OWNER}))
    );
    client.delete("all", None, OWNER).await.unwrap();
    assert_eq!(read("all").await, None);
    client.delete("all", None, OWNER).await.unwrap();
}
