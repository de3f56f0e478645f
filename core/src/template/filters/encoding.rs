//! Encoding filters: `b64enc`, `b64dec`, `fromjson`, `fromyaml`, `toyaml`, `sha256`.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use minijinja::{Error, Value};
use sha2::{Digest, Sha256};

use super::{bytes_value, filter_error, input_bytes, input_text, json_to_value, value_to_json};

/// Standard base64 (with padding) of a string's UTF-8 bytes or of a bytes value.
pub(super) fn b64enc(value: Value) -> Result<Value, Error> {
    let bytes = input_bytes("b64enc", &value)?;
    Ok(Value::from(STANDARD.encode(bytes)))
}

/// Decodes standard base64 (padding required; surrounding whitespace ignored). The result is a
/// string when it is UTF-8, else bytes.
pub(super) fn b64dec(value: Value) -> Result<Value, Error> {
    let bytes = input_bytes("b64dec", &value)?;
    let decoded = STANDARD
        .decode(bytes.trim_ascii())
        .map_err(|err| filter_error("b64dec", base64_reason(&err)))?;
    Ok(bytes_value(decoded))
}

fn base64_reason(err: &base64::DecodeError) -> String {
    // The variants carry offsets and the offending byte; an offset is safe, a byte is not.
    match err {
        base64::DecodeError::InvalidByte(offset, _) => {
            format!("invalid base64: unexpected character at offset {offset}")
        }
        base64::DecodeError::InvalidLength(_) => "invalid base64: wrong length".to_string(),
        base64::DecodeError::InvalidLastSymbol(offset, _) => {
            format!("invalid base64: invalid last symbol at offset {offset}")
        }
        base64::DecodeError::InvalidPadding => "invalid base64: bad padding".to_string(),
    }
}

/// Parses JSON text into a value (maps, lists, strings, numbers, booleans, none).
pub(super) fn fromjson(value: Value) -> Result<Value, Error> {
    let bytes = input_bytes("fromjson", &value)?;
    let json: serde_json::Value = serde_json::from_slice(&bytes).map_err(|err| {
        filter_error(
            "fromjson",
            format!(
                "invalid JSON ({:?}) at line {} column {}",
                err.classify(),
                err.line(),
                err.column()
            ),
        )
    })?;
    Ok(json_to_value(json))
}

/// Parses YAML text (one document) into a value.
pub(super) fn fromyaml(value: Value) -> Result<Value, Error> {
    let text = input_text("fromyaml", &value)?;
    let json: serde_json::Value = serde_saphyr::from_str(&text).map_err(|err| {
        // The parser's message may quote the document; only its position is kept.
        let reason = match err.location() {
            Some(at) => format!("invalid YAML at line {} column {}", at.line(), at.column()),
            None => "invalid YAML".to_string(),
        };
        filter_error("fromyaml", reason)
    })?;
    Ok(json_to_value(json))
}

/// ESO's `fromYaml`: like `fromyaml`, with every number a float as Go's JSON decoding makes it
/// (sigs.k8s.io/yaml goes through JSON).
pub(super) fn from_yaml_eso(value: Value) -> Result<Value, Error> {
    let text = input_text("fromYaml", &value)?;
    let json: serde_json::Value = serde_saphyr::from_str(&text).map_err(|err| {
        let reason = match err.location() {
            Some(at) => format!("invalid YAML at line {} column {}", at.line(), at.column()),
            None => "invalid YAML".to_string(),
        };
        filter_error("fromYaml", reason)
    })?;
    Ok(json_to_value(super::super::sprig::go_numbers(json)))
}

/// Serializes a value as a YAML document.
pub(super) fn toyaml(value: Value) -> Result<Value, Error> {
    let json = value_to_json("toyaml", &value, 0)?;
    let text = serde_saphyr::to_string(&json)
        .map_err(|_| filter_error("toyaml", "the value cannot be written as YAML"))?;
    Ok(Value::from(text))
}

/// ESO's `toYaml`: go-yaml's style (sigs.k8s.io/yaml), without the final newline.
pub(super) fn to_yaml_eso(value: Value) -> Result<Value, Error> {
    let json = value_to_json("toYaml", &value, 0)?;
    Ok(Value::from(super::super::sprig::goyaml::to_yaml(&json)))
}

/// Lowercase hex SHA-256 of a string's UTF-8 bytes or of a bytes value.
pub(super) fn sha256(value: Value) -> Result<Value, Error> {
    let bytes = input_bytes("sha256", &value)?;
    let digest = Sha256::digest(&bytes);
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    Ok(Value::from(hex))
}
