//! Just enough of the Kubernetes protobuf encoding to accept what `kubectl create
//! namespace|secret|configmap|serviceaccount|token` sends (client-go's typed clientsets write
//! protobuf bodies). The `k8s\0` envelope (`runtime.Unknown`) is unwrapped and the object is
//! decoded for the kinds below into the same JSON a JSON client would have sent; other kinds are
//! refused with 415. Field numbers are those of the upstream `generated.proto` files.

use base64::Engine as _;
use serde_json::{Map, Value, json};

use crate::error::ApiError;

/// One field: number and raw value.
enum Field<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
}

struct Reader<'a> {
    buf: &'a [u8],
}

fn malformed() -> ApiError {
    ApiError::bad_request("the protobuf request body is malformed")
}

impl<'a> Reader<'a> {
    fn varint(&mut self) -> Result<u64, ApiError> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let (&b, rest) = self.buf.split_first().ok_or_else(malformed)?;
            self.buf = rest;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(malformed())
    }

    fn next(&mut self) -> Result<Option<(u64, Field<'a>)>, ApiError> {
        if self.buf.is_empty() {
            return Ok(None);
        }
        let key = self.varint()?;
        let field = match key & 7 {
            0 => Field::Varint(self.varint()?),
            2 => {
                let len = usize::try_from(self.varint()?).map_err(|_| malformed())?;
                if len > self.buf.len() {
                    return Err(malformed());
                }
                let (data, rest) = self.buf.split_at(len);
                self.buf = rest;
                Field::Bytes(data)
            }
            1 => {
                let (_, rest) = self.buf.split_at_checked(8).ok_or_else(malformed)?;
                self.buf = rest;
                Field::Varint(0)
            }
            5 => {
                let (_, rest) = self.buf.split_at_checked(4).ok_or_else(malformed)?;
                self.buf = rest;
                Field::Varint(0)
            }
            _ => return Err(malformed()),
        };
        Ok(Some((key >> 3, field)))
    }
}

fn fields(buf: &[u8]) -> Result<Vec<(u64, Field<'_>)>, ApiError> {
    let mut r = Reader { buf };
    let mut out = Vec::new();
    while let Some(f) = r.next()? {
        out.push(f);
    }
    Ok(out)
}

fn text(b: &[u8]) -> Value {
    Value::String(String::from_utf8_lossy(b).into_owned())
}

/// A `map<string, string>` (or `bytes` values, base64-encoded as JSON carries them) entry.
fn map_entry(b: &[u8], bytes_value: bool, into: &mut Map<String, Value>) -> Result<(), ApiError> {
    let (mut k, mut v) = (String::new(), Value::String(String::new()));
    for (n, f) in fields(b)? {
        match (n, f) {
            (1, Field::Bytes(x)) => k = String::from_utf8_lossy(x).into_owned(),
            (2, Field::Bytes(x)) if bytes_value => {
                v = json!(base64::engine::general_purpose::STANDARD.encode(x))
            }
            (2, Field::Bytes(x)) => v = text(x),
            _ => {}
        }
    }
    into.insert(k, v);
    Ok(())
}

fn object_meta(b: &[u8]) -> Result<Value, ApiError> {
    let mut m = Map::new();
    let (mut labels, mut annotations, mut finalizers, mut owners) =
        (Map::new(), Map::new(), Vec::new(), Vec::new());
    for (n, f) in fields(b)? {
        match (n, f) {
            (1, Field::Bytes(x)) if !x.is_empty() => drop(m.insert("name".into(), text(x))),
            (2, Field::Bytes(x)) if !x.is_empty() => drop(m.insert("generateName".into(), text(x))),
            (3, Field::Bytes(x)) if !x.is_empty() => drop(m.insert("namespace".into(), text(x))),
            (11, Field::Bytes(x)) => map_entry(x, false, &mut labels)?,
            (12, Field::Bytes(x)) => map_entry(x, false, &mut annotations)?,
            (13, Field::Bytes(x)) => {
                let mut o = Map::new();
                for (n, f) in fields(x)? {
                    match (n, f) {
                        (1, Field::Bytes(v)) => drop(o.insert("kind".into(), text(v))),
                        (3, Field::Bytes(v)) => drop(o.insert("name".into(), text(v))),
                        (4, Field::Bytes(v)) => drop(o.insert("uid".into(), text(v))),
                        (5, Field::Bytes(v)) => drop(o.insert("apiVersion".into(), text(v))),
                        (6, Field::Varint(v)) => drop(o.insert("controller".into(), json!(v != 0))),
                        (7, Field::Varint(v)) => {
                            drop(o.insert("blockOwnerDeletion".into(), json!(v != 0)))
                        }
                        _ => {}
                    }
                }
                owners.push(Value::Object(o));
            }
            (14, Field::Bytes(x)) => finalizers.push(text(x)),
            _ => {}
        }
    }
    for (k, v) in [
        ("labels", Value::Object(labels)),
        ("annotations", Value::Object(annotations)),
    ] {
        if v.as_object().is_some_and(|o| !o.is_empty()) {
            m.insert(k.into(), v);
        }
    }
    if !finalizers.is_empty() {
        m.insert("finalizers".into(), Value::Array(finalizers));
    }
    if !owners.is_empty() {
        m.insert("ownerReferences".into(), Value::Array(owners));
    }
    Ok(Value::Object(m))
}

fn decode_kind(kind: &str, raw: &[u8]) -> Result<Value, ApiError> {
    let mut obj = Map::new();
    let (mut data, mut extra) = (Map::new(), Map::new());
    for (n, f) in fields(raw)? {
        match (kind, n, f) {
            (_, 1, Field::Bytes(x)) => drop(obj.insert("metadata".into(), object_meta(x)?)),
            ("Secret", 2, Field::Bytes(x)) => map_entry(x, true, &mut data)?,
            ("Secret", 3, Field::Bytes(x)) => drop(obj.insert("type".into(), text(x))),
            ("Secret", 4, Field::Bytes(x)) => map_entry(x, false, &mut extra)?,
            ("Secret", 5, Field::Varint(v)) | ("ConfigMap", 4, Field::Varint(v)) => {
                drop(obj.insert("immutable".into(), json!(v != 0)))
            }
            ("ConfigMap", 2, Field::Bytes(x)) => map_entry(x, false, &mut data)?,
            ("ConfigMap", 3, Field::Bytes(x)) => map_entry(x, true, &mut extra)?,
            ("ServiceAccount", 4, Field::Varint(v)) => {
                drop(obj.insert("automountServiceAccountToken".into(), json!(v != 0)))
            }
            ("TokenRequest", 2, Field::Bytes(x)) => {
                let mut spec = Map::new();
                let mut audiences = Vec::new();
                for (n, f) in fields(x)? {
                    match (n, f) {
                        (1, Field::Bytes(a)) => audiences.push(text(a)),
                        (4, Field::Varint(v)) => {
                            drop(spec.insert("expirationSeconds".into(), json!(v)))
                        }
                        _ => {}
                    }
                }
                spec.insert("audiences".into(), Value::Array(audiences));
                obj.insert("spec".into(), Value::Object(spec));
            }
            _ => {}
        }
    }
    if !data.is_empty() {
        obj.insert("data".into(), Value::Object(data));
    }
    if !extra.is_empty() {
        let key = if kind == "Secret" {
            "stringData"
        } else {
            "binaryData"
        };
        obj.insert(key.into(), Value::Object(extra));
    }
    obj.insert("kind".into(), json!(kind));
    Ok(Value::Object(obj))
}

/// Decodes a `k8s\0`-framed protobuf body of one of the supported kinds into JSON.
pub(crate) fn decode(body: &[u8], content_type: &str) -> Result<Value, ApiError> {
    let unsupported = || ApiError::unsupported_media_type(content_type);
    let envelope = body.strip_prefix(b"k8s\0").ok_or_else(unsupported)?;
    let (mut api_version, mut kind, mut raw) = (String::new(), String::new(), &[][..]);
    for (n, f) in fields(envelope)? {
        match (n, f) {
            (1, Field::Bytes(tm)) => {
                for (n, f) in fields(tm)? {
                    match (n, f) {
                        (1, Field::Bytes(v)) => {
                            api_version = String::from_utf8_lossy(v).into_owned()
                        }
                        (2, Field::Bytes(v)) => kind = String::from_utf8_lossy(v).into_owned(),
                        _ => {}
                    }
                }
            }
            (2, Field::Bytes(r)) => raw = r,
            _ => {}
        }
    }
    if !matches!(
        kind.as_str(),
        "Secret" | "ConfigMap" | "Namespace" | "ServiceAccount" | "TokenRequest"
    ) {
        return Err(unsupported());
    }
    let mut obj = decode_kind(&kind, raw)?;
    obj["apiVersion"] = json!(api_version);
    Ok(obj)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_the_secret_kubectl_create_secret_generic_sends() {
        // Captured from `kubectl create secret generic x --from-literal=a=b` (kubectl 1.37).
        let body: &[u8] = b"k8s\0\x0a\x0c\x0a\x02v1\x12\x06Secret\x12\x23\x0a\x11\x0a\x01x\x12\x00\x1a\x00\x22\x00\x2a\x00\x32\x00\x38\x00\x42\x00\x12\x06\x0a\x01a\x12\x01b\x1a\x06Opaque\x1a\x00\x22\x00";
        let obj = decode(body, "application/vnd.kubernetes.protobuf").unwrap();
        assert_eq!(
            obj,
            json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "x"}, "data": {"a": "Yg=="}, "type": "Opaque"})
        );
    }

    #[test]
    fn other_kinds_and_garbage_are_refused() {
        let deployment: &[u8] = b"k8s\0\x0a\x15\x0a\x07apps/v1\x12\x0aDeployment\x12\x00";
        assert_eq!(
            decode(deployment, "application/vnd.kubernetes.protobuf")
                .unwrap_err()
                .code,
            415
        );
        assert_eq!(
            decode(b"k8s\0\x0a\xff", "application/vnd.kubernetes.protobuf")
                .unwrap_err()
                .code,
            400
        );
    }
}
