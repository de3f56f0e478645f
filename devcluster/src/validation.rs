//! Field rules the API server enforces on every write and that operators trip over: label and
//! annotation syntax, Secret and ConfigMap keys, base64 data, size limits, immutable `type`.

use base64::Engine as _;
use serde_json::Value;

use crate::error::{ApiError, Cause};
use crate::meta::meta_str;
use crate::registry::ResourceInfo;

fn invalid(field: String, value: &str, why: &str) -> Cause {
    Cause {
        field,
        reason: "FieldValueInvalid",
        message: format!("Invalid value: {value:?}: {why}"),
    }
}

/// `[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?`, at most 63 characters (a label value may be empty).
fn is_name_part(s: &str, allow_empty: bool) -> bool {
    if s.is_empty() {
        return allow_empty;
    }
    let ok = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    s.len() <= 63
        && s.chars().all(ok)
        && s.starts_with(|c: char| c.is_ascii_alphanumeric())
        && s.ends_with(|c: char| c.is_ascii_alphanumeric())
}

/// A qualified name: `[prefix/]name`, the prefix a DNS subdomain.
fn qualified_name_error(key: &str) -> Option<&'static str> {
    let (prefix, name) = match key.split_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    if let Some(p) = prefix
        && (p.is_empty() || crate::meta::invalid_name(p, false).is_some())
    {
        return Some(
            "prefix part a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character",
        );
    }
    if !is_name_part(name, false) {
        return Some(
            "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with at most 63 characters",
        );
    }
    None
}

fn config_key_ok(k: &str) -> bool {
    !k.is_empty()
        && k.len() <= 253
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
        && k != "."
        && k != ".."
}

const CONFIG_KEY: &str = "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')";

fn metadata(obj: &Value, causes: &mut Vec<Cause>) {
    if let Some(labels) = obj["metadata"]["labels"].as_object() {
        for (k, v) in labels {
            if let Some(why) = qualified_name_error(k) {
                causes.push(invalid("metadata.labels".to_string(), k, why));
            }
            let value = v.as_str().unwrap_or_default();
            if !is_name_part(value, true) {
                causes.push(invalid(
                    "metadata.labels".to_string(),
                    value,
                    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?') with at most 63 characters",
                ));
            }
        }
    }
    if let Some(annotations) = obj["metadata"]["annotations"].as_object() {
        let mut total = 0usize;
        for (k, v) in annotations {
            total += k.len() + v.as_str().map_or(0, str::len);
            if let Some(why) = qualified_name_error(k) {
                causes.push(invalid("metadata.annotations".into(), k, why));
            }
        }
        if total > 256 * 1024 {
            causes.push(Cause {
                field: "metadata.annotations".into(),
                reason: "FieldValueTooLong",
                message: "Too long: must have at most 262144 bytes".into(),
            });
        }
    }
}

fn config_data(
    obj: &Value,
    field: &str,
    base64: bool,
    causes: &mut Vec<Cause>,
) -> Result<usize, ApiError> {
    let mut size = 0;
    for (k, v) in obj[field].as_object().into_iter().flatten() {
        if !config_key_ok(k) {
            causes.push(invalid(format!("{field}[{k}]"), k, CONFIG_KEY));
        }
        let text = v.as_str().unwrap_or_default();
        size += if base64 {
            base64::engine::general_purpose::STANDARD
                .decode(text)
                .map_err(|e| {
                    ApiError::bad_request(format!("{field}[{k}]: illegal base64 data: {e}"))
                })?
                .len()
        } else {
            text.len()
        };
    }
    Ok(size)
}

/// Checks a built-in object about to be stored; `old` is the stored version on update.
pub(crate) fn check(info: &ResourceInfo, obj: &Value, old: Option<&Value>) -> Result<(), ApiError> {
    let mut causes = Vec::new();
    metadata(obj, &mut causes);
    if !info.custom && info.group.is_empty() {
        let size = match info.plural.as_str() {
            "secrets" => {
                if let Some(old) = old
                    && old["type"] != obj["type"]
                {
                    causes.push(Cause {
                        field: "type".into(),
                        reason: "FieldValueInvalid",
                        message: format!("Invalid value: {}: field is immutable", obj["type"]),
                    });
                }
                config_data(obj, "data", true, &mut causes)?
            }
            "configmaps" => {
                let both = obj["data"]
                    .as_object()
                    .into_iter()
                    .flatten()
                    .filter(|(k, _)| obj["binaryData"].get(k.as_str()).is_some());
                for (k, _) in both {
                    causes.push(invalid(
                        format!("data[{k}]"),
                        k,
                        "duplicate of key present in binaryData",
                    ));
                }
                config_data(obj, "data", false, &mut causes)?
                    + config_data(obj, "binaryData", true, &mut causes)?
            }
            _ => 0,
        };
        if size > 1024 * 1024 {
            causes.push(Cause {
                field: "data".into(),
                reason: "FieldValueTooLong",
                message: "Too long: must have at most 1048576 bytes".into(),
            });
        }
    }
    if causes.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid(
            &info.group,
            &info.kind,
            meta_str(obj, "name"),
            causes,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::Registry;
    use serde_json::json;

    fn secrets() -> std::sync::Arc<ResourceInfo> {
        Registry::with_builtins().find("", "v1", "secrets").unwrap()
    }

    #[test]
    fn labels_annotations_and_keys_follow_the_api_rules() {
        let ok = json!({"metadata": {"name": "s", "labels": {"kuvert.io/managed": "true", "empty": ""}, "annotations": {"kuvert.io/hash": "x".repeat(100)}}, "data": {"tls.crt": "YQ==", "A_b-1": ""}});
        check(&secrets(), &ok, None).unwrap();
        let bad = json!({"metadata": {"name": "s", "labels": {"a": "x".repeat(64), "bad key!": "v"}}, "data": {"no/slash": "YQ=="}});
        let err = check(&secrets(), &bad, None).unwrap_err();
        assert_eq!(err.code, 422);
        assert!(
            err.message.starts_with("Secret \"s\" is invalid: ["),
            "{}",
            err.message
        );
        assert!(
            err.message
                .contains("data[no/slash]: Invalid value: \"no/slash\": a valid config key"),
            "{}",
            err.message
        );
        assert_eq!(err.details.unwrap()["causes"].as_array().unwrap().len(), 3);
    }

    #[test]
    fn secret_data_must_be_base64_and_type_is_immutable() {
        let bad = json!({"metadata": {"name": "s"}, "data": {"k": "not base64!"}});
        assert_eq!(check(&secrets(), &bad, None).unwrap_err().code, 400);
        let old = json!({"metadata": {"name": "s"}, "type": "Opaque"});
        let new = json!({"metadata": {"name": "s"}, "type": "kubernetes.io/tls"});
        let err = check(&secrets(), &new, Some(&old)).unwrap_err();
        assert!(
            err.message
                .contains("type: Invalid value: \"kubernetes.io/tls\": field is immutable"),
            "{}",
            err.message
        );
    }
}
