//! Secret keys: `conversionStrategy` for remote names, and the rules a Secret key must follow.

use std::collections::BTreeMap;

use crate::api::ConversionStrategy;

use super::SyncError;

/// Whether a character may stay in a Secret key as is.
fn allowed(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_')
}

/// Converts a remote name into a Secret key: `Default` turns every character outside ASCII
/// letters, digits, `-`, `.` and `_` into `_`; `Unicode` into `_Uxxxx_` (its code point in
/// lowercase hex, at least four digits). ESO keeps non-ASCII letters, which Kubernetes then
/// rejects; kuvert converts them so the key is valid.
pub fn convert(strategy: ConversionStrategy, name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        if allowed(c) {
            out.push(c);
        } else {
            match strategy {
                ConversionStrategy::Default => out.push('_'),
                ConversionStrategy::Unicode => out.push_str(&format!("_U{:04x}_", c as u32)),
            }
        }
    }
    out
}

/// Converts every key of a map; two names becoming the same key is an error.
pub fn convert_all<V>(
    strategy: ConversionStrategy,
    field: &str,
    map: BTreeMap<String, V>,
) -> Result<BTreeMap<String, V>, SyncError> {
    let mut out = BTreeMap::new();
    let mut from: BTreeMap<String, String> = BTreeMap::new();
    for (name, value) in map {
        let key = convert(strategy, &name);
        if let Some(first) = from.get(&key) {
            return Err(SyncError::KeyCollision {
                field: field.to_owned(),
                key,
                first: first.clone(),
                second: name,
            });
        }
        from.insert(key.clone(), name);
        out.insert(key, value);
    }
    Ok(out)
}

/// Checks a Secret key as the API server does: 1–253 characters of ASCII letters, digits, `-`,
/// `.` and `_`, and neither `.` nor `..`.
pub fn validate(key: &str) -> Result<(), &'static str> {
    if key.is_empty() {
        return Err("a key may not be empty");
    }
    if key.len() > 253 {
        return Err("a key may not be longer than 253 characters");
    }
    if key == "." || key == ".." {
        return Err("a key may not be '.' or '..'");
    }
    if !key.chars().all(allowed) {
        return Err("a key may only contain letters, digits, '-', '.' and '_'");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_conversion_turns_invalid_characters_into_underscores() {
        assert_eq!(
            convert(ConversionStrategy::Default, "db/pass word"),
            "db_pass_word"
        );
        assert_eq!(convert(ConversionStrategy::Default, "a-b.c_D9"), "a-b.c_D9");
        assert_eq!(convert(ConversionStrategy::Default, "café"), "caf_");
    }

    #[test]
    fn unicode_conversion_writes_code_points() {
        assert_eq!(convert(ConversionStrategy::Unicode, "db/pw"), "db_U002f_pw");
        assert_eq!(
            convert(ConversionStrategy::Unicode, "é🔑"),
            "_U00e9__U1f511_"
        );
    }

    #[test]
    fn collisions_after_conversion_are_errors_naming_both_names() {
        let map = BTreeMap::from([("a/b".to_owned(), 1), ("a?b".to_owned(), 2)]);
        let err = convert_all(ConversionStrategy::Default, "spec.dataFrom[0]", map).unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"spec.dataFrom[0]: "a/b" and "a?b" both become the key "a_b""#
        );
    }

    #[test]
    fn secret_keys_follow_the_api_server_rules() {
        assert!(validate("tls.crt").is_ok());
        assert!(validate("A-b_9").is_ok());
        for bad in ["", ".", "..", "a/b", "a b", "é"] {
            assert!(validate(bad).is_err(), "{bad:?}");
        }
        assert!(validate(&"a".repeat(254)).is_err());
    }

    proptest::proptest! {
        #[test]
        fn converted_keys_are_always_valid(name in ".{1,60}") {
            for s in [ConversionStrategy::Default, ConversionStrategy::Unicode] {
                let key = convert(s, &name);
                if key != "." && key != ".." && key.len() <= 253 {
                    proptest::prop_assert!(validate(&key).is_ok(), "{:?}", key);
                }
            }
        }
    }
}
