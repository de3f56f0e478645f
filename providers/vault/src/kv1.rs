//! Writes to a KV v1 mount (PushSecret). KV v1 keeps no metadata, so ownership lives in the
//! secret itself: the key [`KV1_OWNER_KEY`] holds the pushing object (`namespace/name`). Readers
//! see it (an ExternalSecret extracting the secret gets it as one more key); a secret without
//! it, or naming another owner, is never overwritten or deleted (`Conflict`). KV v1 has no
//! check-and-set: a write made by someone else between kuvert's read and write is overwritten,
//! which is why KV v2 is the store to push to.

use reqwest::Method;
use serde_json::{Map, Value};

use kuvert_core::provider::{ProviderError, PushRequest};

use crate::kv::{KvPath, VaultClient};

/// The key of a KV v1 secret naming the PushSecret that wrote it.
pub const KV1_OWNER_KEY: &str = "kuvert.io/pushed-by";

impl VaultClient {
    /// The current data of a KV v1 secret; `None` when there is none.
    async fn read_v1(&self, p: &KvPath) -> Result<Option<Map<String, Value>>, ProviderError> {
        match self
            .conn()
            .request(Method::GET, &self.data_path(p), None)
            .await
        {
            Ok(resp) => Ok(resp.data().and_then(Value::as_object).cloned()),
            Err(ProviderError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Refuses a secret that is not `owner`'s.
    fn check_v1_owner(
        where_: &str,
        data: &Map<String, Value>,
        owner: &str,
        doing: &str,
    ) -> Result<(), ProviderError> {
        match data.get(KV1_OWNER_KEY).and_then(Value::as_str) {
            Some(o) if o == owner => Ok(()),
            Some(other) => Err(ProviderError::Conflict {
                message: format!(
                    "{where_} was pushed by {other}, not {owner}: refusing to {doing} it"
                ),
            }),
            None => Err(ProviderError::Conflict {
                message: format!(
                    "{where_} exists without the {KV1_OWNER_KEY} key (not written by kuvert): refusing to {doing} it"
                ),
            }),
        }
    }

    /// [`kuvert_core::provider::SecretsClient::push`] on KV v1.
    pub(crate) async fn push_v1(
        &self,
        p: &KvPath,
        request: &PushRequest,
        data: impl FnOnce(Option<Map<String, Value>>) -> Result<Map<String, Value>, ProviderError>,
    ) -> Result<(), ProviderError> {
        let where_ = self.data_path(p);
        if request.property.as_deref() == Some(KV1_OWNER_KEY) {
            return Err(ProviderError::InvalidSpec {
                field: "data.match.remoteRef.property".to_owned(),
                message: format!("{KV1_OWNER_KEY:?} is kuvert's ownership marker on KV v1"),
            });
        }
        let current = self.read_v1(p).await?;
        if let Some(current) = &current {
            Self::check_v1_owner(&where_, current, &request.owner, "overwrite")?;
        }
        let mut next = data(current.clone())?;
        next.insert(
            KV1_OWNER_KEY.to_owned(),
            Value::String(request.owner.clone()),
        );
        if current.as_ref() == Some(&next) {
            return Ok(());
        }
        self.conn()
            .request(Method::POST, &where_, Some(&Value::Object(next)))
            .await
            .map(|_| ())
    }

    /// [`kuvert_core::provider::SecretsClient::delete`] on KV v1.
    pub(crate) async fn delete_v1(
        &self,
        p: &KvPath,
        property: Option<&str>,
        owner: &str,
    ) -> Result<(), ProviderError> {
        let where_ = self.data_path(p);
        let Some(mut current) = self.read_v1(p).await? else {
            return Ok(());
        };
        Self::check_v1_owner(&where_, &current, owner, "delete")?;
        if let Some(property) = property {
            if current.remove(property).is_none() {
                return Ok(());
            }
            if current.keys().any(|k| k != KV1_OWNER_KEY) {
                return self
                    .conn()
                    .request(Method::POST, &where_, Some(&Value::Object(current)))
                    .await
                    .map(|_| ());
            }
        }
        match self.conn().request(Method::DELETE, &where_, None).await {
            Ok(_) | Err(ProviderError::NotFound { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }
}
