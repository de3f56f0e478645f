//! kuvert's template filters: one for each of ESO's template helpers (names fixed by DESIGN.md §3,
//! reference in `docs/templates.md`).
//!
//! Every filter fails through [`filter_error`], whose reason never contains its input. A filter's
//! text output is a string; binary output (a PKCS#12 keystore) is a bytes value.

/// A filter that charges the render's fuel before it runs: `$fuel` for its fixed work plus
/// the size of its inputs (`sprig::charge_inputs`). minijinja charges a filter's result, never
/// its work, so a loop over `pem_to_pkcs12` (PBKDF2) or `rsa_decrypt` ran for minutes on the
/// fuel of a few instructions per iteration.
macro_rules! charged {
    ($fuel:expr, $f:path, ( $($arg:ident : $ty:ty),* )) => {
        move |state: &minijinja::State, value: Value, $($arg: $ty),*| -> Result<Value, Error> {
            super::sprig::charge_inputs(state, std::slice::from_ref(&value))?;
            $( super::sprig::charge_inputs(state, &[Input::value(&$arg)])?; )*
            state.consume_fuel($fuel)?;
            $f(value, $($arg),*)
        }
    };
}

/// A filter argument as the value its size is charged by.
trait Input {
    fn value(&self) -> Value;
}

impl Input for Value {
    fn value(&self) -> Value {
        self.clone()
    }
}

impl Input for String {
    fn value(&self) -> Value {
        Value::from(self.as_str())
    }
}

impl Input for Option<String> {
    fn value(&self) -> Value {
        self.as_deref().map_or(Value::from(()), Value::from)
    }
}

/// Fuel of one PKCS#12 read or write: PBKDF2 and the MAC run 10,000 iterations each (a read
/// at most what p12-keystore allows), about as long as 50,000 template instructions. This
/// allows 40 keystores per render.
const PKCS12_FUEL: u64 = 50_000;

/// Fuel of one private-key operation or key check (`rsa_decrypt`, the JWK filters).
const KEY_FUEL: u64 = 20_000;

mod encoding;
pub(super) mod eso;
mod keys;
mod pem;
mod pkcs12;
mod pkcs12_write;
mod x509;

use std::borrow::Cow;

use minijinja::value::{Value, ValueKind};
use minijinja::{Environment, Error};

use super::error::filter_error;

/// Adds kuvert's filters to `env` (next to minijinja's built-ins).
pub(super) fn register(env: &mut Environment<'static>) {
    env.add_filter("b64enc", charged!(0, encoding::b64enc, ()));
    env.add_filter("b64dec", charged!(0, encoding::b64dec, ()));
    env.add_filter("fromjson", charged!(0, encoding::fromjson, ()));
    env.add_filter("fromyaml", charged!(0, encoding::fromyaml, ()));
    env.add_filter("toyaml", charged!(0, encoding::toyaml, ()));
    env.add_filter("sha256", charged!(0, encoding::sha256, ()));
    env.add_filter("filter_pem", charged!(0, pem::filter_pem, (kind: String)));
    env.add_filter(
        "filter_cert_chain",
        charged!(0, x509::filter_cert_chain, (kind: String)),
    );
    env.add_filter("cert_sans", charged!(0, x509::cert_sans, ()));
    env.add_filter(
        "pkcs12_key",
        charged!(PKCS12_FUEL, pkcs12::pkcs12_key, (password: Option<String>)),
    );
    env.add_filter(
        "pkcs12_cert",
        charged!(PKCS12_FUEL, pkcs12::pkcs12_cert, (password: Option<String>)),
    );
    env.add_filter(
        "pem_to_pkcs12",
        charged!(PKCS12_FUEL, pkcs12::pem_to_pkcs12, (key_pem: Value, password: Option<String>)),
    );
    env.add_filter(
        "full_pem_to_pkcs12",
        charged!(PKCS12_FUEL, pkcs12::full_pem_to_pkcs12, (key_pem: Value, password: Option<String>)),
    );
    env.add_filter(
        "pem_truststore_to_pkcs12",
        charged!(PKCS12_FUEL, pkcs12::pem_truststore_to_pkcs12, (password: Option<String>)),
    );
    env.add_filter(
        "jwk_public_key_pem",
        charged!(KEY_FUEL, keys::jwk_public_key_pem, ()),
    );
    env.add_filter(
        "jwk_private_key_pem",
        charged!(KEY_FUEL, keys::jwk_private_key_pem, ()),
    );
    env.add_filter(
        "rsa_decrypt",
        charged!(KEY_FUEL, keys::rsa_decrypt, (key_pem: Value, scheme: Option<String>)),
    );
}

/// The bytes of a string or bytes value.
fn input_bytes<'a>(filter: &'static str, value: &'a Value) -> Result<Cow<'a, [u8]>, Error> {
    match value.kind() {
        ValueKind::String => Ok(Cow::Borrowed(value.as_str().unwrap_or_default().as_bytes())),
        ValueKind::Bytes => Ok(Cow::Borrowed(value.as_bytes().unwrap_or_default())),
        ValueKind::Undefined => Err(filter_error(filter, "the input is undefined")),
        kind => Err(filter_error(
            filter,
            format!("expects a string or bytes, got {kind}"),
        )),
    }
}

/// The text of a string value, or of bytes that are UTF-8.
fn input_text<'a>(filter: &'static str, value: &'a Value) -> Result<Cow<'a, str>, Error> {
    match input_bytes(filter, value)? {
        Cow::Borrowed(bytes) => std::str::from_utf8(bytes)
            .map(Cow::Borrowed)
            .map_err(|_| filter_error(filter, "the input is not UTF-8 text")),
        Cow::Owned(bytes) => String::from_utf8(bytes)
            .map(Cow::Owned)
            .map_err(|_| filter_error(filter, "the input is not UTF-8 text")),
    }
}

/// A string when the bytes are UTF-8, else a bytes value (as template variables are).
fn bytes_value(bytes: Vec<u8>) -> Value {
    match String::from_utf8(bytes) {
        Ok(text) => Value::from(text),
        Err(err) => Value::from_bytes(err.into_bytes()),
    }
}

/// A JSON value as a template value (shared with the sprig functions).
pub(in crate::template) fn json_value(json: serde_json::Value) -> Value {
    json_to_value(json)
}

/// A JSON value as a template value.
fn json_to_value(json: serde_json::Value) -> Value {
    match json {
        serde_json::Value::Null => Value::from(()),
        serde_json::Value::Bool(b) => Value::from(b),
        serde_json::Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::from(i)
            } else if let Some(u) = n.as_u64() {
                Value::from(u)
            } else {
                Value::from(n.as_f64().unwrap_or(f64::NAN))
            }
        }
        serde_json::Value::String(s) => Value::from(s),
        serde_json::Value::Array(items) => {
            Value::from(items.into_iter().map(json_to_value).collect::<Vec<_>>())
        }
        serde_json::Value::Object(map) => Value::from(
            map.into_iter()
                .map(|(k, v)| (k, json_to_value(v)))
                .collect::<std::collections::BTreeMap<_, _>>(),
        ),
    }
}

/// A template value as JSON (maps, lists, strings, numbers, booleans, none).
fn value_to_json(
    filter: &'static str,
    value: &Value,
    depth: usize,
) -> Result<serde_json::Value, Error> {
    if depth > 64 {
        return Err(filter_error(filter, "the value is nested too deeply"));
    }
    Ok(match value.kind() {
        ValueKind::None => serde_json::Value::Null,
        ValueKind::Bool => serde_json::Value::Bool(value.is_true()),
        ValueKind::Number => {
            if let Some(i) = value.as_i64() {
                serde_json::Value::from(i)
            } else {
                let f = f64::try_from(value.clone())
                    .map_err(|_| filter_error(filter, "a number cannot be represented"))?;
                serde_json::Number::from_f64(f)
                    .map(serde_json::Value::Number)
                    .ok_or_else(|| filter_error(filter, "NaN and infinity cannot be serialized"))?
            }
        }
        ValueKind::String => serde_json::Value::String(value.as_str().unwrap_or_default().into()),
        ValueKind::Seq | ValueKind::Iterable => {
            let items = value
                .try_iter()
                .map_err(|_| filter_error(filter, "a list cannot be iterated"))?;
            serde_json::Value::Array(
                items
                    .map(|item| value_to_json(filter, &item, depth + 1))
                    .collect::<Result<_, _>>()?,
            )
        }
        ValueKind::Map => {
            let keys = value
                .try_iter()
                .map_err(|_| filter_error(filter, "a map cannot be iterated"))?;
            let mut map = serde_json::Map::new();
            for key in keys {
                let item = value
                    .get_item(&key)
                    .map_err(|_| filter_error(filter, "a map entry cannot be read"))?;
                let key = match key.as_str() {
                    Some(s) => s.to_string(),
                    None => key.to_string(),
                };
                map.insert(key, value_to_json(filter, &item, depth + 1)?);
            }
            serde_json::Value::Object(map)
        }
        ValueKind::Bytes => {
            return Err(filter_error(
                filter,
                "binary values cannot be serialized (encode them with b64enc first)",
            ));
        }
        ValueKind::Undefined => return Err(filter_error(filter, "the value is undefined")),
        kind => {
            return Err(filter_error(
                filter,
                format!("a value of type {kind} cannot be serialized"),
            ));
        }
    })
}
