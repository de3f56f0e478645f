//! The provider conformance suite: the contract of `providers/README.md`, executable.
//!
//! Every provider crate runs it against a store of its kind (the fake provider against its
//! spec, Vault against a real OpenBao, Kubernetes against devcluster), through a [`Harness`]
//! that puts the suite's secrets into the store and hands out clients:
//!
//! ```ignore
//! // providers/<name>/tests/conformance.rs, with kuvert-core's `test-support` feature
//! #[tokio::test]
//! async fn the_provider_keeps_the_contract() {
//!     kuvert_core::provider::conformance::run(&MyHarness::start().await).await;
//! }
//! ```
//!
//! What it checks: `get` returns a whole secret (a map as a JSON object) and its version;
//! older versions are read by version; metadata reads return a JSON object carrying the
//! secret's tags; `find` selects by path, by an (unanchored) name expression and by tags, and
//! names what it finds by key; a missing key is `NotFound` and refused credentials are
//! `Unauthenticated` or `Forbidden`; a push records its owner and another owner's push or
//! delete — or a push over a secret kuvert did not write — is a `Conflict`; and no secret
//! value appears in any error, in any `Debug` output or in metadata. What a store cannot do
//! (versions, paths, auth, push) its harness declares in [`Features`], and that part is
//! skipped.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;

use super::{FindRequest, GetRequest, ProviderError, PushRequest, RemoteSecret, SecretsClient};
use crate::secret::SecretBytes;

/// Values the suite plants in the store; none may appear in an error or a `Debug` output.
pub const PLANTED: [&str; 4] = [
    "planted-db-password-7f3a",
    "planted-api-token-91c2",
    "planted-old-value-55e0",
    "planted-pushed-value-c4d8",
];

/// What the store under test can do beyond reading current values.
#[derive(Clone, Copy, Debug)]
pub struct Features {
    /// Secrets have versions; the suite writes two of `versioned` (`"1"` then `"2"`, which a
    /// store numbering its versions itself, like Vault KV v2, also calls them).
    pub versions: bool,
    /// Keys are paths (`app/db`) and `find.path` selects a subtree. Without paths the suite's
    /// keys are flat (`app-db`) and `find` is by name and tags only.
    pub paths: bool,
    /// The store checks credentials: [`Harness::refused`] gives a client (or the error
    /// building one) with credentials it refuses.
    pub auth: bool,
    /// `push` and `delete` are supported.
    pub push: bool,
}

/// One secret the suite needs in the store.
#[derive(Clone, Debug)]
pub struct Seed {
    /// Its key ([`Seed::key`] spells it for the store's [`Features::paths`]).
    pub key: String,
    /// Its versions, oldest first, each a map of keys to values. Stores without versions get
    /// only the last.
    pub versions: Vec<BTreeMap<String, String>>,
    /// Its tags (Vault's custom metadata, Kubernetes labels, the fake store's tags).
    pub tags: BTreeMap<String, String>,
}

impl Seed {
    /// `dir/leaf` for a store with paths, `dir-leaf` for one without.
    pub fn key(features: Features, dir: &str, leaf: &str) -> String {
        if features.paths {
            format!("{dir}/{leaf}")
        } else {
            format!("{dir}-{leaf}")
        }
    }
}

/// A provider crate's way into a store of its kind.
#[async_trait]
pub trait Harness: Send + Sync {
    /// What the store can do.
    fn features(&self) -> Features;

    /// A client of a store holding exactly `seeds` (written into the store, or into the spec).
    /// It may write and push.
    async fn client(&self, seeds: &[Seed]) -> Arc<dyn SecretsClient>;

    /// A client with credentials the store refuses, or the error building it returned. Only
    /// called when [`Features::auth`] is set.
    async fn refused(&self) -> Result<Arc<dyn SecretsClient>, ProviderError> {
        unreachable!("a harness with Features::auth implements refused")
    }
}

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The suite's secrets: `app/db` and `app/api` (tagged by team), `other/db` (untagged), and
/// `app/versioned` with two versions.
pub fn seeds(features: Features) -> Vec<Seed> {
    let key = |dir, leaf| Seed::key(features, dir, leaf);
    vec![
        Seed {
            key: key("app", "db"),
            versions: vec![map(&[("user", "app"), ("password", PLANTED[0])])],
            tags: map(&[("team", "a")]),
        },
        Seed {
            key: key("app", "api"),
            versions: vec![map(&[("token", PLANTED[1])])],
            tags: map(&[("team", "b")]),
        },
        Seed {
            key: key("other", "db"),
            versions: vec![map(&[("user", "other")])],
            tags: BTreeMap::new(),
        },
        Seed {
            key: key("app", "versioned"),
            versions: vec![map(&[("n", PLANTED[2])]), map(&[("n", "2")])],
            tags: BTreeMap::new(),
        },
    ]
}

/// Runs every check the store's features allow; panics naming the first broken rule.
pub async fn run(harness: &dyn Harness) {
    let features = harness.features();
    let client = harness.client(&seeds(features)).await;
    let client = client.as_ref();
    get_returns_the_whole_secret_as_json(client, features).await;
    versions_are_reported_and_read(client, features).await;
    metadata_is_a_json_object_with_the_tags(client, features).await;
    find_selects_by_name_path_and_tags(client, features).await;
    a_missing_key_is_not_found(client, features).await;
    if features.auth {
        refused_credentials_are_unauthenticated_or_forbidden(harness).await;
    }
    if features.push {
        pushes_are_owned(client, features).await;
    }
}

fn get(key: &str) -> GetRequest {
    GetRequest {
        key: key.to_owned(),
        ..GetRequest::default()
    }
}

fn json_of(secret: &RemoteSecret) -> serde_json::Value {
    serde_json::from_slice(secret.value.expose()).unwrap_or_else(|_| {
        panic!("a secret of key/value pairs is returned as a JSON object");
    })
}

/// No planted value in `text` (an error message, a `Debug` output).
fn assert_clean(what: &str, text: &str) {
    for value in PLANTED {
        assert!(!text.contains(value), "{what} shows a secret value");
    }
}

/// An error, checked for hygiene in both its message and its `Debug`.
fn checked(what: &str, error: ProviderError) -> ProviderError {
    assert_clean(what, &error.to_string());
    assert_clean(what, &format!("{error:?}"));
    error
}

async fn get_returns_the_whole_secret_as_json(client: &dyn SecretsClient, features: Features) {
    let key = Seed::key(features, "app", "db");
    let secret = client
        .get(&get(&key))
        .await
        .unwrap_or_else(|e| panic!("get {key}: {}", checked("get", e)));
    assert_eq!(
        json_of(&secret),
        serde_json::json!({"user": "app", "password": PLANTED[0]}),
        "get returns every key of the secret, unchanged"
    );
    assert_clean("a RemoteSecret's Debug", &format!("{secret:?}"));
}

async fn versions_are_reported_and_read(client: &dyn SecretsClient, features: Features) {
    if !features.versions {
        return;
    }
    let key = Seed::key(features, "app", "versioned");
    let current = client
        .get(&get(&key))
        .await
        .expect("get the current version");
    assert_eq!(
        current.version.as_deref(),
        Some("2"),
        "the current version is reported"
    );
    assert_eq!(json_of(&current), serde_json::json!({"n": "2"}));
    let old = client
        .get(&GetRequest {
            version: Some("1".to_owned()),
            ..get(&key)
        })
        .await
        .expect("get version 1");
    assert_eq!(old.version.as_deref(), Some("1"));
    assert_eq!(json_of(&old), serde_json::json!({"n": PLANTED[2]}));
    let missing = client
        .get(&GetRequest {
            version: Some("99".to_owned()),
            ..get(&key)
        })
        .await
        .expect_err("a version that does not exist");
    let missing = checked("a missing version's error", missing);
    assert_eq!(missing.reason(), "NotFound", "{missing}");
}

/// Whether `tags` appear in `metadata` at its top level or one level down (Kubernetes nests
/// labels under `labels`).
fn carries(metadata: &serde_json::Value, tags: &BTreeMap<String, String>) -> bool {
    let has = |object: &serde_json::Value| {
        tags.iter()
            .all(|(k, v)| object.get(k).and_then(|x| x.as_str()) == Some(v.as_str()))
    };
    has(metadata) || metadata.as_object().is_some_and(|o| o.values().any(has))
}

async fn metadata_is_a_json_object_with_the_tags(client: &dyn SecretsClient, features: Features) {
    let key = Seed::key(features, "app", "db");
    let metadata = client
        .get(&GetRequest {
            metadata: true,
            ..get(&key)
        })
        .await
        .unwrap_or_else(|e| panic!("metadata of {key}: {}", checked("metadata", e)));
    let text = String::from_utf8_lossy(metadata.value.expose()).into_owned();
    assert_clean("metadata", &text);
    let json: serde_json::Value =
        serde_json::from_str(&text).expect("metadata is returned as JSON");
    assert!(json.is_object(), "metadata is a JSON object");
    assert!(
        carries(&json, &map(&[("team", "a")])),
        "metadata carries the secret's tags: {json}"
    );
}

async fn find_selects_by_name_path_and_tags(client: &dyn SecretsClient, features: Features) {
    let key = |dir, leaf| Seed::key(features, dir, leaf);
    let names = |found: BTreeMap<String, RemoteSecret>| found.into_keys().collect::<Vec<_>>();
    let find = |request: FindRequest| async move {
        client
            .find(&request)
            .await
            .unwrap_or_else(|e| panic!("find: {}", checked("find", e)))
    };
    let regexp = |re: &str| Some(regex::Regex::new(re).expect("the suite's expressions compile"));

    // Unanchored, like ESO's: `db` matches `app/db` and `other/db`.
    let found = find(FindRequest {
        name_regexp: regexp("db"),
        ..FindRequest::default()
    })
    .await;
    let db = found.get(&key("app", "db")).map(json_of);
    assert_eq!(
        names(found),
        [key("app", "db"), key("other", "db")],
        "the name expression is unanchored"
    );
    assert_eq!(
        db.unwrap()["password"],
        PLANTED[0],
        "find returns whole values"
    );

    let by_tags = find(FindRequest {
        tags: map(&[("team", "b")]),
        ..FindRequest::default()
    })
    .await;
    assert_eq!(names(by_tags), [key("app", "api")], "every tag must match");

    let both = find(FindRequest {
        name_regexp: regexp("^app"),
        tags: map(&[("team", "a")]),
        ..FindRequest::default()
    })
    .await;
    assert_eq!(
        names(both),
        [key("app", "db")],
        "name and tags must both match"
    );

    if features.paths {
        let under = find(FindRequest {
            path: Some("app".to_owned()),
            ..FindRequest::default()
        })
        .await;
        assert_eq!(
            names(under),
            [key("app", "api"), key("app", "db"), key("app", "versioned")],
            "find.path selects the subtree, naming each secret by its whole key"
        );
    }
}

async fn a_missing_key_is_not_found(client: &dyn SecretsClient, features: Features) {
    let key = Seed::key(features, "app", "missing");
    let error = client.get(&get(&key)).await.expect_err("a missing key");
    let error = checked("a missing key's error", error);
    assert_eq!(error.reason(), "NotFound", "{error}");
    assert!(
        !client.exists(&key).await.expect("exists of a missing key"),
        "exists is false for a missing key"
    );
    assert!(
        client
            .exists(&Seed::key(features, "app", "db"))
            .await
            .expect("exists of a present key")
    );
}

async fn refused_credentials_are_unauthenticated_or_forbidden(harness: &dyn Harness) {
    let features = harness.features();
    let error = match harness.refused().await {
        Err(e) => e,
        Ok(client) => client
            .get(&get(&Seed::key(features, "app", "db")))
            .await
            .expect_err("refused credentials read nothing"),
    };
    let error = checked("an authentication error", error);
    assert!(
        matches!(
            error,
            ProviderError::Unauthenticated { .. } | ProviderError::Forbidden { .. }
        ),
        "refused credentials are Unauthenticated or Forbidden, not {}: {error}",
        error.reason()
    );
    assert!(
        !error.is_transient(),
        "refused credentials wait for a change"
    );
}

async fn pushes_are_owned(client: &dyn SecretsClient, features: Features) {
    let key = Seed::key(features, "app", "pushed");
    let push = |owner: &str, key: &str| PushRequest {
        key: key.to_owned(),
        property: Some("password".to_owned()),
        value: SecretBytes::from(PLANTED[3]),
        owner: owner.to_owned(),
        metadata: None,
    };
    let conflict = |what: &str, result: Result<(), ProviderError>| {
        let error = checked(what, result.expect_err(what));
        assert_eq!(error.reason(), "Conflict", "{what}: {error}");
    };
    assert_clean(
        "a PushRequest's Debug",
        &format!("{:?}", push("ns/a", &key)),
    );

    client
        .push(&push("ns/a", &key))
        .await
        .unwrap_or_else(|e| panic!("push: {}", checked("push", e)));
    let read = client.get(&get(&key)).await.expect("a push is read back");
    assert_eq!(json_of(&read)["password"], PLANTED[3]);
    client
        .push(&push("ns/a", &key))
        .await
        .expect("the owner pushes again");

    conflict(
        "another owner's push",
        client.push(&push("ns/b", &key)).await,
    );
    conflict(
        "another owner's delete",
        client.delete(&key, Some("password"), "ns/b").await,
    );
    conflict(
        "a push over a secret kuvert did not write",
        client
            .push(&push("ns/a", &Seed::key(features, "app", "db")))
            .await,
    );
    let untouched = client
        .get(&get(&Seed::key(features, "app", "db")))
        .await
        .expect("the refused secret is still there");
    assert_eq!(json_of(&untouched)["password"], PLANTED[0]);

    client
        .delete(&key, None, "ns/a")
        .await
        .unwrap_or_else(|e| panic!("delete: {}", checked("delete", e)));
    assert!(!client.exists(&key).await.expect("exists after delete"));
    client
        .delete(&key, None, "ns/a")
        .await
        .expect("deleting what is gone succeeds");
}
