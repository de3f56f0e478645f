//! What each `data[]` and `dataFrom[]` entry contributes to the Secret, from what was fetched:
//! `property`, `extract`, rewrites or key conversion, then decoding (ESO's order).

use std::collections::BTreeMap;

use serde_json::Value;

use crate::api::{
    DecodingStrategy, ExternalSecretData, ExternalSecretDataFromRemoteRef, NullBytePolicy,
};
use crate::secret::SecretBytes;

use super::fetch::{FetchedDataFrom, FetchedValue};
use super::{Entries, Entry, SyncError, decode, keys, property, rewrite};

/// One `data[i]`: the key `secretKey` with the (selected, decoded) remote value.
pub fn shape_data(
    i: usize,
    spec: &ExternalSecretData,
    got: &FetchedValue,
) -> Result<(String, Entry), SyncError> {
    let field = format!("spec.data[{i}].remoteRef");
    let remote_ref = spec.remote_ref.clone().unwrap_or_default();
    let value = match &remote_ref.property {
        Some(path) => {
            let json = parse_json(&field, got, "JSON (property is set)")?;
            let selected = property::select(&json, path)
                .map_err(|problem| SyncError::InvalidProperty {
                    field: format!("{field}.property"),
                    property: path.clone(),
                    problem,
                })?
                .ok_or_else(|| SyncError::PropertyNotFound {
                    field: format!("{field}.property"),
                    key: got.key.clone(),
                    property: path.clone(),
                })?;
            property::leaf_bytes(&selected)
        }
        None => got.secret.value.expose().to_vec(),
    };
    let value = decoded(
        &format!("{field}.decodingStrategy"),
        remote_ref.decoding_strategy,
        &spec.secret_key,
        &value,
    )?;
    check_null_bytes(
        &format!("{field}.nullBytePolicy"),
        remote_ref.null_byte_policy,
        &spec.secret_key,
        value.expose(),
    )?;
    Ok((
        spec.secret_key.clone(),
        Entry {
            value,
            origin: format!("spec.data[{i}].secretKey"),
        },
    ))
}

/// One `dataFrom[i]`: the keys of an extracted object or of the secrets found, rewritten (or
/// converted) and decoded.
pub fn expand_data_from(
    i: usize,
    spec: &ExternalSecretDataFromRemoteRef,
    got: &FetchedDataFrom,
) -> Result<Entries, SyncError> {
    let field = format!("spec.dataFrom[{i}]");
    let (map, conversion, (decoding, null_bytes), sub) = match got {
        FetchedDataFrom::Extract(value) => {
            let extract = spec.extract.clone().unwrap_or_default();
            let json = parse_json(&format!("{field}.extract"), value, "a JSON object")?;
            let object = match &extract.property {
                Some(path) => property::select(&json, path)
                    .map_err(|problem| SyncError::InvalidProperty {
                        field: format!("{field}.extract.property"),
                        property: path.clone(),
                        problem,
                    })?
                    .ok_or_else(|| SyncError::PropertyNotFound {
                        field: format!("{field}.extract.property"),
                        key: value.key.clone(),
                        property: path.clone(),
                    })?,
                None => std::borrow::Cow::Borrowed(&json),
            };
            let Value::Object(object) = &*object else {
                return Err(SyncError::NotJson {
                    field: format!("{field}.extract"),
                    key: value.key.clone(),
                    expected: "a JSON object",
                });
            };
            let map: BTreeMap<String, SecretBytes> = object
                .iter()
                .map(|(k, v)| (k.clone(), SecretBytes::new(property::leaf_bytes(v))))
                .collect();
            (
                map,
                extract.conversion_strategy,
                (extract.decoding_strategy, extract.null_byte_policy),
                "extract",
            )
        }
        FetchedDataFrom::Generated(generated) => (
            generated.values.clone(),
            None,
            (None, None),
            "sourceRef.generatorRef",
        ),
        FetchedDataFrom::Find { found, .. } => {
            let find = spec.find.clone().unwrap_or_default();
            let map = found
                .iter()
                .map(|(name, secret)| (name.clone(), secret.value.clone()))
                .collect();
            (
                map,
                find.conversion_strategy,
                (find.decoding_strategy, find.null_byte_policy),
                "find",
            )
        }
    };
    // With rewrites the keys are used as rewritten (and checked as Secret keys later);
    // without, they are converted into valid keys (ESO's rule).
    let map = if spec.rewrite.is_empty() {
        keys::convert_all(conversion.unwrap_or_default(), &field, map)?
    } else {
        rewrite::apply(&spec.rewrite, &format!("{field}.rewrite"), map)?
    };
    let decoding_field = format!("{field}.{sub}.decodingStrategy");
    map.into_iter()
        .map(|(key, value)| {
            let value = decoded(&decoding_field, decoding, &key, value.expose())?;
            check_null_bytes(
                &format!("{field}.{sub}.nullBytePolicy"),
                null_bytes,
                &key,
                value.expose(),
            )?;
            Ok((
                key,
                Entry {
                    value,
                    origin: field.clone(),
                },
            ))
        })
        .collect()
}

fn parse_json(field: &str, got: &FetchedValue, expected: &'static str) -> Result<Value, SyncError> {
    serde_json::from_slice(got.secret.value.expose()).map_err(|_| SyncError::NotJson {
        field: field.to_owned(),
        key: got.key.clone(),
        expected,
    })
}

/// `nullBytePolicy: Fail`: a decoded value must not hold NUL bytes (ESO's check).
fn check_null_bytes(
    field: &str,
    policy: Option<NullBytePolicy>,
    key: &str,
    value: &[u8],
) -> Result<(), SyncError> {
    if policy == Some(NullBytePolicy::Fail) && value.contains(&0) {
        return Err(SyncError::NullBytes {
            field: field.to_owned(),
            key: key.to_owned(),
        });
    }
    Ok(())
}

fn decoded(
    field: &str,
    strategy: Option<DecodingStrategy>,
    key: &str,
    value: &[u8],
) -> Result<SecretBytes, SyncError> {
    let strategy = strategy.unwrap_or_default();
    decode::decode(strategy, value)
        .map(SecretBytes::new)
        .map_err(|()| SyncError::Decode {
            field: field.to_owned(),
            key: key.to_owned(),
            strategy: decode::name(strategy),
        })
}
