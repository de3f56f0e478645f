//! The `fake` provider's store spec: static data, for tests and demos.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_with::skip_serializing_none;

/// A store that serves the secrets written inline in its spec.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct FakeProvider {
    /// The secrets this store holds.
    pub data: Vec<FakeProviderData>,
}

/// One secret of a fake store.
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FakeProviderData {
    /// The secret's key (its path in the store).
    pub key: String,
    /// The secret's value. A JSON object can be addressed with `property` or `dataFrom.extract`.
    pub value: Option<String>,
    /// A map value; equivalent to `value` holding the map as a JSON object (ESO compatibility).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub value_map: BTreeMap<String, String>,
    /// The version this value is served as; a `remoteRef.version` selects it. Default: none.
    pub version: Option<String>,
    /// Tags (metadata) of the secret, matched by `dataFrom.find.tags`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
}
