//! The KV secrets engine (v1 and v2) as a [`SecretsClient`].

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use kuvert_core::api::{StoreCapabilities, VaultKvVersion};
use kuvert_core::provider::{
    FindRequest, GetRequest, ProviderError, PushRequest, RemoteSecret, SecretsClient,
};
use kuvert_core::secret::SecretBytes;
use reqwest::Method;
use serde_json::{Map, Value, json};

use crate::connection::VaultConnection;
use crate::{MANAGED_BY_KEY, MANAGED_BY_VALUE, OWNER_KEY};

/// A logged-in client for one KV mount (or, without a store `path`, for keys naming their mount).
pub struct VaultClient {
    conn: Arc<VaultConnection>,
    mount: Option<String>,
    version: VaultKvVersion,
    cas_required: bool,
}

impl std::fmt::Debug for VaultClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VaultClient")
            .field("mount", &self.mount)
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

/// A key split into its mount and the path inside the mount.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct KvPath {
    pub mount: String,
    pub rest: String,
}

fn invalid(field: &str, message: impl Into<String>) -> ProviderError {
    ProviderError::InvalidSpec {
        field: field.to_owned(),
        message: message.into(),
    }
}

/// Splits `key` by the rule documented in the crate docs: with a store mount, a key starting
/// with `mount/` is already a full path (and a `data/` after the mount of a v2 store is dropped);
/// without one, the first segment is the mount.
pub(crate) fn split_key(
    mount: Option<&str>,
    version: VaultKvVersion,
    key: &str,
    field: &str,
    allow_empty: bool,
) -> Result<KvPath, ProviderError> {
    let key = key.trim_matches('/');
    let (mount, rest) = match mount {
        Some(m) => {
            let m = m.trim_matches('/');
            match key.strip_prefix(m) {
                Some("") => (m, ""),
                Some(after) if after.starts_with('/') => (m, &after[1..]),
                _ => (m, key),
            }
        }
        None => match key.split_once('/') {
            Some((m, rest)) => (m, rest),
            None if allow_empty && !key.is_empty() => (key, ""),
            None => {
                return Err(invalid(
                    field,
                    format!(
                        "{key:?} names no mount: without the store's path, the key must start \
                         with the mount (e.g. secret/app)"
                    ),
                ));
            }
        },
    };
    let rest = match version {
        VaultKvVersion::V2 => rest
            .strip_prefix("data/")
            .or_else(|| (rest == "data").then_some(""))
            .unwrap_or(rest),
        VaultKvVersion::V1 => rest,
    };
    if rest.is_empty() && !allow_empty {
        return Err(invalid(
            field,
            format!("{key:?} names no secret inside mount {mount:?}"),
        ));
    }
    if rest.split('/').any(|s| s == "." || s == "..")
        || (!allow_empty && rest.split('/').any(str::is_empty))
    {
        return Err(invalid(field, format!("{key:?} is not a secret path")));
    }
    Ok(KvPath {
        mount: mount.to_owned(),
        rest: rest.to_owned(),
    })
}

fn join(a: &str, b: &str) -> String {
    match (a.is_empty(), b.is_empty()) {
        (true, _) => b.to_owned(),
        (_, true) => a.to_owned(),
        _ => format!("{a}/{b}"),
    }
}

/// The bytes of a secret's data: a JSON object as JSON; a bare string (never written by KV
/// itself, but by other engines mounted where a key points) as its text.
fn value_bytes(data: &Value) -> SecretBytes {
    match data {
        Value::String(s) => SecretBytes::from(s.as_str()),
        other => SecretBytes::new(serde_json::to_vec(other).unwrap_or_default()),
    }
}

/// Who owns a remote secret, per its custom metadata.
enum Owner {
    /// kuvert, pushed by this owner.
    Us,
    /// kuvert, pushed by another object.
    Other(String),
    /// Not kuvert.
    Foreign,
}

fn owner_of(custom: &Value, owner: &str) -> Owner {
    if custom[MANAGED_BY_KEY].as_str() != Some(MANAGED_BY_VALUE) {
        return Owner::Foreign;
    }
    match custom[OWNER_KEY].as_str() {
        Some(o) if o == owner => Owner::Us,
        Some(o) => Owner::Other(o.to_owned()),
        None => Owner::Other("an unnamed owner".to_owned()),
    }
}

impl VaultClient {
    /// A client for `mount` (`None`: keys carry their mount) of a KV engine of `version`.
    pub fn new(
        conn: Arc<VaultConnection>,
        mount: Option<String>,
        version: VaultKvVersion,
        cas_required: bool,
    ) -> Self {
        VaultClient {
            conn,
            mount: mount
                .map(|m| m.trim_matches('/').to_owned())
                .filter(|m| !m.is_empty()),
            version,
            cas_required,
        }
    }

    /// The connection underneath.
    pub fn connection(&self) -> &Arc<VaultConnection> {
        &self.conn
    }

    fn split(&self, key: &str, field: &str, allow_empty: bool) -> Result<KvPath, ProviderError> {
        split_key(self.mount.as_deref(), self.version, key, field, allow_empty)
    }

    pub(crate) fn conn(&self) -> &VaultConnection {
        &self.conn
    }

    pub(crate) fn data_path(&self, p: &KvPath) -> String {
        match self.version {
            VaultKvVersion::V2 => join(&format!("{}/data", p.mount), &p.rest),
            VaultKvVersion::V1 => join(&p.mount, &p.rest),
        }
    }

    fn metadata_path(p: &KvPath) -> String {
        join(&format!("{}/metadata", p.mount), &p.rest)
    }

    /// KV v2 metadata (`data` of the metadata endpoint); `None` when the secret does not exist.
    async fn read_metadata(&self, p: &KvPath) -> Result<Option<Value>, ProviderError> {
        match self
            .conn
            .request(Method::GET, &Self::metadata_path(p), None)
            .await
        {
            Ok(resp) => Ok(resp.data().cloned()),
            Err(ProviderError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// KV v2 data of the current version and that version; `None` when deleted or missing.
    async fn read_current(
        &self,
        p: &KvPath,
    ) -> Result<Option<(Map<String, Value>, u64)>, ProviderError> {
        match self
            .conn
            .request(Method::GET, &self.data_path(p), None)
            .await
        {
            Ok(resp) => {
                let data = resp.data().cloned().unwrap_or_default();
                let version = data["metadata"]["version"].as_u64().unwrap_or(0);
                Ok(data["data"].as_object().cloned().map(|m| (m, version)))
            }
            Err(ProviderError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Lists every secret under `dir` (relative to the mount), depth first; names are relative
    /// to the mount. A missing folder lists nothing.
    async fn list(&self, mount: &str, dir: &str) -> Result<Vec<String>, ProviderError> {
        let mut found = Vec::new();
        let mut pending = vec![dir.to_owned()];
        while let Some(dir) = pending.pop() {
            let path = match self.version {
                VaultKvVersion::V2 => join(&format!("{mount}/metadata"), &dir),
                VaultKvVersion::V1 => join(mount, &dir),
            };
            let keys = match self
                .conn
                .request(Method::from_bytes(b"LIST").expect("LIST"), &path, None)
                .await
            {
                Ok(resp) => resp.data().map(|d| d["keys"].clone()).unwrap_or_default(),
                Err(ProviderError::NotFound { .. }) => continue,
                Err(e) => return Err(e),
            };
            for key in keys
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
            {
                match key.strip_suffix('/') {
                    Some(folder) => pending.push(join(&dir, folder)),
                    None => found.push(join(&dir, key)),
                }
            }
        }
        found.sort();
        Ok(found)
    }

    /// Writes `data` with check-and-set against `version` (0: must not exist yet).
    async fn write(
        &self,
        p: &KvPath,
        data: Map<String, Value>,
        version: u64,
    ) -> Result<(), ProviderError> {
        let mut body = json!({ "data": data });
        if self.cas_required {
            body["options"] = json!({ "cas": version });
        }
        self.conn
            .request(Method::POST, &self.data_path(p), Some(&body))
            .await
            .map(|_| ())
    }

    async fn delete_all(&self, p: &KvPath) -> Result<(), ProviderError> {
        match self
            .conn
            .request(Method::DELETE, &Self::metadata_path(p), None)
            .await
        {
            Ok(_) | Err(ProviderError::NotFound { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

/// What `metadataPolicy: Fetch` reads, as ESO builds it: the KV v2 system fields
/// `created_time`, `current_version` and `delete_version_after`, then every custom metadata
/// entry (a custom entry of the same name wins), all as strings.
fn fetched_metadata(meta: &Value) -> Map<String, Value> {
    let text = |v: &Value| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let mut out = Map::new();
    for key in ["created_time", "current_version", "delete_version_after"] {
        match &meta[key] {
            Value::Null => {}
            v => {
                out.insert(key.to_owned(), Value::String(text(v)));
            }
        }
    }
    if let Value::Object(custom) = &meta["custom_metadata"] {
        for (k, v) in custom {
            out.insert(k.clone(), Value::String(text(v)));
        }
    }
    out
}

/// The map a push writes: the pushed JSON object, or `current` with `property` set to the value.
fn new_data(
    where_: &str,
    request: &PushRequest,
    current: Option<Map<String, Value>>,
) -> Result<Map<String, Value>, ProviderError> {
    match &request.property {
        None => match serde_json::from_slice::<Value>(request.value.expose()) {
            Ok(Value::Object(map)) => Ok(map),
            _ => Err(invalid(
                "data.match.remoteRef.property",
                format!("{where_}: without a property the pushed value must be a JSON object"),
            )),
        },
        Some(property) => {
            let text = request.value.expose_str().ok_or_else(|| {
                invalid(
                    "data.match.secretKey",
                    format!("{where_}: the value of property {property:?} is not UTF-8"),
                )
            })?;
            let mut map = current.unwrap_or_default();
            map.insert(property.clone(), Value::String(text.to_owned()));
            Ok(map)
        }
    }
}

/// Custom metadata a PushSecret asks for: `{"customMetadata": {...}}` or
/// `{"spec": {"customMetadata": {...}}}` (ESO's `PushSecretMetadata`); values as strings.
fn pushed_metadata(metadata: Option<&Value>) -> Map<String, Value> {
    let Some(m) = metadata else {
        return Map::new();
    };
    let custom = m
        .get("customMetadata")
        .or_else(|| m.get("spec").and_then(|s| s.get("customMetadata")));
    custom
        .and_then(Value::as_object)
        .map(|o| {
            o.iter()
                .map(|(k, v)| {
                    let v = match v {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    (k.clone(), Value::String(v))
                })
                .collect()
        })
        .unwrap_or_default()
}

#[async_trait]
impl SecretsClient for VaultClient {
    async fn get(&self, request: &GetRequest) -> Result<RemoteSecret, ProviderError> {
        let p = self.split(&request.key, "remoteRef.key", false)?;
        if self.version == VaultKvVersion::V1 {
            if request.metadata {
                return Err(invalid(
                    "remoteRef.metadataPolicy",
                    format!("{}: KV v1 secrets have no metadata", request.key),
                ));
            }
            if request.version.is_some() {
                return Err(invalid(
                    "remoteRef.version",
                    format!("{}: KV v1 secrets have no versions", request.key),
                ));
            }
            let path = self.data_path(&p);
            let resp = self.conn.request(Method::GET, &path, None).await?;
            let data = resp.data().ok_or_else(|| ProviderError::NotFound {
                key: format!("vault path GET {path}"),
            })?;
            return Ok(RemoteSecret {
                value: value_bytes(data),
                version: None,
            });
        }
        if request.metadata {
            let meta = self
                .read_metadata(&p)
                .await?
                .ok_or_else(|| ProviderError::NotFound {
                    key: format!("vault path GET {}", Self::metadata_path(&p)),
                })?;
            return Ok(RemoteSecret {
                value: value_bytes(&Value::Object(fetched_metadata(&meta))),
                version: meta["current_version"].as_u64().map(|v| v.to_string()),
            });
        }
        let path = self.data_path(&p);
        let mut query = Vec::new();
        if let Some(version) = &request.version {
            if version.is_empty() || !version.bytes().all(|b| b.is_ascii_digit()) {
                return Err(invalid(
                    "remoteRef.version",
                    format!("{}: {version:?} is not a KV v2 version number", request.key),
                ));
            }
            query.push(("version", version.as_str()));
        }
        let resp = self
            .conn
            .request_query(Method::GET, &path, &query, None)
            .await?;
        let data = resp.data().cloned().unwrap_or_default();
        let value = &data["data"];
        if value.is_null() {
            // A deleted (or destroyed) version answers with metadata and no data.
            return Err(ProviderError::NotFound {
                key: format!("vault path GET {path} (deleted)"),
            });
        }
        Ok(RemoteSecret {
            value: value_bytes(value),
            version: data["metadata"]["version"].as_u64().map(|v| v.to_string()),
        })
    }

    async fn find(
        &self,
        request: &FindRequest,
    ) -> Result<BTreeMap<String, RemoteSecret>, ProviderError> {
        if self.version == VaultKvVersion::V1 && !request.tags.is_empty() {
            return Err(invalid(
                "dataFrom.find.tags",
                "KV v1 secrets have no metadata to match tags against",
            ));
        }
        let given = request.path.as_deref().unwrap_or("").trim_matches('/');
        let (base, prefix) = match (&self.mount, given.is_empty()) {
            (None, true) => {
                return Err(invalid(
                    "dataFrom.find.path",
                    "the store has no path: find.path must name the mount",
                ));
            }
            _ => (self.split(given, "dataFrom.find.path", true)?, given),
        };
        let regexp = request.name_regexp.as_ref();
        let mut out = BTreeMap::new();
        for relative in self.list(&base.mount, &base.rest).await? {
            // Names as ESO gives them: the find path as written, then the path below it.
            let below = relative
                .strip_prefix(&base.rest)
                .map(|r| r.trim_start_matches('/'))
                .unwrap_or(&relative);
            let name = join(prefix, below);
            if let Some(re) = regexp
                && !re.is_match(&name)
            {
                continue;
            }
            let p = KvPath {
                mount: base.mount.clone(),
                rest: relative.clone(),
            };
            if !request.tags.is_empty() {
                let Some(meta) = self.read_metadata(&p).await? else {
                    continue;
                };
                let custom = &meta["custom_metadata"];
                if !request
                    .tags
                    .iter()
                    .all(|(k, v)| custom[k.as_str()].as_str() == Some(v.as_str()))
                {
                    continue;
                }
            }
            let full_key = join(&base.mount, &relative);
            match self
                .get(&GetRequest {
                    key: full_key,
                    ..GetRequest::default()
                })
                .await
            {
                Ok(secret) => {
                    out.insert(name, secret);
                }
                // Listed but deleted since (or only soft-deleted versions left).
                Err(ProviderError::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    async fn validate(&self) -> Result<StoreCapabilities, ProviderError> {
        self.conn.lookup_self().await?;
        let Some(mount) = &self.mount else {
            // Keys name their own mounts: nothing to ask about ahead of time (ESO reports the
            // same).
            return Ok(StoreCapabilities::ReadWrite);
        };
        let path = match self.version {
            VaultKvVersion::V2 => format!("{mount}/data/"),
            VaultKvVersion::V1 => format!("{mount}/"),
        };
        let resp = self
            .conn
            .request(
                Method::POST,
                "sys/capabilities-self",
                Some(&json!({ "paths": [path] })),
            )
            .await?;
        let caps: Vec<String> = resp
            .data()
            .and_then(|d| d.get(&path).or_else(|| d.get("capabilities")))
            .and_then(|c| serde_json::from_value(c.clone()).ok())
            .unwrap_or_default();
        let has = |c: &str| {
            caps.iter()
                .any(|x| x == c || x == "root" || x == "sudo" && c == "read")
        };
        let read = has("read");
        let write = has("create") || has("update");
        match (read, write) {
            (true, true) => Ok(StoreCapabilities::ReadWrite),
            (true, false) => Ok(StoreCapabilities::ReadOnly),
            (false, true) => Ok(StoreCapabilities::WriteOnly),
            // A least-privilege policy (`secret/data/team-a/*`) grants nothing at the mount's
            // root, so nothing can be told ahead of time: the login worked (the token lookup
            // above), each read is checked on its own path, and a denial there is `Forbidden`
            // on the ExternalSecret that asked. What Vault supports is reported, as ESO does.
            (false, false) => Ok(StoreCapabilities::ReadWrite),
        }
    }

    async fn push(&self, request: &PushRequest) -> Result<(), ProviderError> {
        let p = self.split(&request.key, "remoteRef.remoteKey", false)?;
        let where_ = self.data_path(&p);
        if self.version == VaultKvVersion::V1 {
            return self
                .push_v1(&p, request, |current| new_data(&where_, request, current))
                .await;
        }
        let meta = self.read_metadata(&p).await?;
        let existing_custom = meta
            .as_ref()
            .map(|m| m["custom_metadata"].clone())
            .unwrap_or(Value::Null);
        if meta.is_some() {
            match owner_of(&existing_custom, &request.owner) {
                Owner::Us => {}
                Owner::Other(other) => {
                    return Err(ProviderError::Conflict {
                        message: format!(
                            "{where_} was pushed by {other}, not {}: refusing to overwrite it",
                            request.owner
                        ),
                    });
                }
                Owner::Foreign => {
                    return Err(ProviderError::Conflict {
                        message: format!(
                            "{where_} exists and is not managed by kuvert: refusing to overwrite it"
                        ),
                    });
                }
            }
        }
        let (current, version) = match &meta {
            Some(m) if m["current_version"].as_u64().unwrap_or(0) > 0 => {
                match self.read_current(&p).await? {
                    Some((data, v)) => (Some(data), v),
                    None => (None, m["current_version"].as_u64().unwrap_or(0)),
                }
            }
            _ => (None, 0),
        };
        let data = new_data(&where_, request, current.clone())?;
        let mut custom: Map<String, Value> =
            existing_custom.as_object().cloned().unwrap_or_default();
        custom.extend(pushed_metadata(request.metadata.as_ref()));
        custom.insert(MANAGED_BY_KEY.to_owned(), json!(MANAGED_BY_VALUE));
        custom.insert(OWNER_KEY.to_owned(), json!(request.owner));
        let metadata_changed = existing_custom.as_object() != Some(&custom);
        if current.as_ref() == Some(&data) && !metadata_changed {
            return Ok(());
        }
        if metadata_changed {
            // Marked as ours before the first version exists: a failure between the two writes
            // leaves a secret kuvert still recognises as its own.
            self.conn
                .request(
                    Method::POST,
                    &Self::metadata_path(&p),
                    Some(&json!({ "custom_metadata": custom })),
                )
                .await?;
        }
        if current.as_ref() != Some(&data) {
            self.write(&p, data, version).await?;
        }
        Ok(())
    }

    async fn delete(
        &self,
        key: &str,
        property: Option<&str>,
        owner: &str,
    ) -> Result<(), ProviderError> {
        let p = self.split(key, "remoteRef.remoteKey", false)?;
        if self.version == VaultKvVersion::V1 {
            return self.delete_v1(&p, property, owner).await;
        }
        let where_ = self.data_path(&p);
        let Some(meta) = self.read_metadata(&p).await? else {
            return Ok(());
        };
        match owner_of(&meta["custom_metadata"], owner) {
            Owner::Us => {}
            Owner::Other(other) => {
                return Err(ProviderError::Conflict {
                    message: format!(
                        "{where_} was pushed by {other}, not {owner}: refusing to delete it"
                    ),
                });
            }
            Owner::Foreign => {
                return Err(ProviderError::Conflict {
                    message: format!("{where_} is not managed by kuvert: refusing to delete it"),
                });
            }
        }
        let Some(property) = property else {
            return self.delete_all(&p).await;
        };
        let Some((mut data, version)) = self.read_current(&p).await? else {
            return Ok(());
        };
        if data.remove(property).is_none() {
            return Ok(());
        }
        if data.is_empty() {
            return self.delete_all(&p).await;
        }
        self.write(&p, data, version).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(
        mount: Option<&str>,
        v: VaultKvVersion,
        key: &str,
    ) -> Result<(String, String), String> {
        split_key(mount, v, key, "remoteRef.key", false)
            .map(|p| (p.mount, p.rest))
            .map_err(|e| e.to_string())
    }

    #[test]
    fn keys_are_relative_to_the_store_mount_unless_they_start_with_it() {
        use VaultKvVersion::*;
        let s = |a: &str, b: &str| Ok((a.to_owned(), b.to_owned()));
        assert_eq!(split(Some("secret"), V2, "app/db"), s("secret", "app/db"));
        assert_eq!(
            split(Some("secret"), V2, "secret/app/db"),
            s("secret", "app/db")
        );
        assert_eq!(
            split(Some("secret"), V2, "secret/data/app"),
            s("secret", "app")
        );
        assert_eq!(split(Some("secret"), V2, "/app/"), s("secret", "app"));
        assert_eq!(
            split(Some("secret"), V2, "secretive/app"),
            s("secret", "secretive/app")
        );
        assert_eq!(split(Some("kv1"), V1, "kv1/data/x"), s("kv1", "data/x"));
        assert_eq!(split(None, V2, "kv/app"), s("kv", "app"));
        assert_eq!(split(None, V2, "kv/data/app"), s("kv", "app"));
        assert!(
            split(None, V2, "app")
                .unwrap_err()
                .contains("names no mount")
        );
        assert!(split(Some("secret"), V2, "secret").is_err());
        assert!(split(Some("secret"), V2, "a/../../sys/x").is_err());
        assert!(split(Some("secret"), V2, "a//b").is_err());
    }

    #[test]
    fn pushed_metadata_accepts_both_shapes() {
        let flat = json!({"customMetadata": {"team": "a", "n": 1}});
        let eso = json!({"kind": "PushSecretMetadata", "spec": {"customMetadata": {"team": "a"}}});
        assert_eq!(pushed_metadata(Some(&flat))["n"], json!("1"));
        assert_eq!(pushed_metadata(Some(&eso))["team"], json!("a"));
        assert!(pushed_metadata(None).is_empty());
    }
}

#[cfg(test)]
mod fetched_metadata_tests {
    use super::*;

    #[test]
    fn fetch_returns_the_system_fields_and_the_custom_metadata_as_strings() {
        // The shape of Vault's KV v2 metadata endpoint (its API documentation's example).
        let meta = serde_json::json!({
            "created_time": "2018-03-22T02:24:06.945319214Z",
            "current_version": 3,
            "delete_version_after": "3h25m19s",
            "max_versions": 0,
            "custom_metadata": {"owner": "team-a", "current_version": "custom"},
            "versions": {}
        });
        assert_eq!(
            Value::Object(fetched_metadata(&meta)),
            serde_json::json!({
                "created_time": "2018-03-22T02:24:06.945319214Z",
                "current_version": "custom",
                "delete_version_after": "3h25m19s",
                "owner": "team-a"
            })
        );
        let meta = serde_json::json!({"current_version": 1, "custom_metadata": null});
        assert_eq!(
            Value::Object(fetched_metadata(&meta)),
            serde_json::json!({"current_version": "1"})
        );
    }
}
