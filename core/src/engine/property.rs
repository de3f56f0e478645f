//! `remoteRef.property`: a path into a JSON value.
//!
//! Syntax: segments separated by dots, `a.b.c`. A key that itself contains dots (or brackets)
//! is written in brackets and quotes, with or without the dot before it: `a.["tls.crt"]`,
//! `a["tls.crt"]`, `["tls.crt"]`. Inside double quotes JSON escapes apply (`\"`, `\\`); single
//! quotes take the text as is (`['tls.crt']`). A segment of digits indexes an array
//! (`items.0.name` or `items[0].name`).
//!
//! Like ESO, a property that is literally a top-level key of the object (`tls.crt`) selects
//! that key before it is read as a path, so ESO manifests keep working.

use std::borrow::Cow;

use serde_json::Value;

/// Splits a property path into its segments.
pub fn parse(path: &str) -> Result<Vec<String>, String> {
    let mut segments = Vec::new();
    let mut rest = path;
    if rest.is_empty() {
        return Err("the path is empty".to_owned());
    }
    loop {
        let (segment, after) = if let Some(inner) = rest.strip_prefix('[') {
            bracketed(inner)?
        } else {
            let end = rest.find(['.', '[']).unwrap_or(rest.len());
            if end == 0 {
                return Err("a segment is empty (two dots in a row, or a leading dot)".to_owned());
            }
            (rest[..end].to_owned(), &rest[end..])
        };
        segments.push(segment);
        if after.is_empty() {
            return Ok(segments);
        }
        rest = match after.strip_prefix('.') {
            Some("") => return Err("the path ends with a dot".to_owned()),
            Some(r) => r,
            None if after.starts_with('[') => after,
            None => return Err("expected a dot or a bracket after a bracketed key".to_owned()),
        };
    }
}

/// Reads `"..."]`, `'...']` or `digits]` after an opening bracket.
fn bracketed(inner: &str) -> Result<(String, &str), String> {
    let unclosed = || "a bracket is not closed with `\"]`, `']` or `]`".to_owned();
    if let Some(body) = inner.strip_prefix('"') {
        // Find the closing quote, skipping escaped characters.
        let mut escaped = false;
        for (i, c) in body.char_indices() {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => {
                    let quoted = &inner[..i + 2];
                    let key: String = serde_json::from_str(quoted)
                        .map_err(|_| "invalid escape inside a quoted key".to_owned())?;
                    let after = body[i + 1..].strip_prefix(']').ok_or_else(unclosed)?;
                    return Ok((key, after));
                }
                _ => {}
            }
        }
        Err(unclosed())
    } else if let Some(body) = inner.strip_prefix('\'') {
        let end = body.find("']").ok_or_else(unclosed)?;
        Ok((body[..end].to_owned(), &body[end + 2..]))
    } else {
        let end = inner.find(']').ok_or_else(unclosed)?;
        let index = &inner[..end];
        if index.is_empty() || !index.bytes().all(|b| b.is_ascii_digit()) {
            return Err(
                "a bracketed key must be quoted: [\"key\"] (only array indexes go bare)".to_owned(),
            );
        }
        Ok((index.to_owned(), &inner[end + 1..]))
    }
}

/// Selects `path` in `value`: `Ok(None)` when nothing is there, `Err` when the path is invalid.
///
/// A key with the whole path as its name wins. Where the path reaches a string before its end,
/// the string is read as JSON and the rest of the path applies inside it: ESO's Kubernetes
/// provider reads `config.db.host` as key `config`, path `db.host` in that key's JSON value
/// (a Secret's values are strings). Other providers' values simply gain the same reach.
pub fn select<'v>(value: &'v Value, path: &str) -> Result<Option<Cow<'v, Value>>, String> {
    if let Some(v) = value.as_object().and_then(|o| o.get(path)) {
        return Ok(Some(Cow::Borrowed(v)));
    }
    Ok(walk(value, &parse(path)?))
}

fn walk<'v>(value: &'v Value, segments: &[String]) -> Option<Cow<'v, Value>> {
    let mut current = value;
    for (i, segment) in segments.iter().enumerate() {
        current = match current {
            Value::Object(map) => map.get(segment)?,
            Value::Array(items) => segment.parse::<usize>().ok().and_then(|i| items.get(i))?,
            Value::String(text) => {
                let inner: Value = serde_json::from_str(text).ok()?;
                return walk(&inner, &segments[i..]).map(|v| Cow::Owned(v.into_owned()));
            }
            _ => return None,
        };
    }
    Some(Cow::Borrowed(current))
}

/// The bytes a JSON value is written as: a string as itself (unquoted), anything else as its
/// JSON text (ESO's rule), e.g. `42`, `true`, `{"a":1}`.
pub fn leaf_bytes(value: &Value) -> Vec<u8> {
    match value {
        Value::String(s) => s.as_bytes().to_vec(),
        other => other.to_string().into_bytes(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn dotted_paths_split_on_dots() {
        assert_eq!(parse("a.b.c").unwrap(), ["a", "b", "c"]);
        assert_eq!(parse("password").unwrap(), ["password"]);
    }

    #[test]
    fn keys_with_dots_are_written_in_brackets() {
        assert_eq!(parse(r#"a.["tls.crt"]"#).unwrap(), ["a", "tls.crt"]);
        assert_eq!(parse(r#"a["tls.crt"]"#).unwrap(), ["a", "tls.crt"]);
        assert_eq!(parse(r#"["tls.crt"]"#).unwrap(), ["tls.crt"]);
        assert_eq!(parse(r#"['tls.crt'].x"#).unwrap(), ["tls.crt", "x"]);
        assert_eq!(parse(r#"a.["q\"uote"]"#).unwrap(), ["a", "q\"uote"]);
        assert_eq!(parse("items[0].name").unwrap(), ["items", "0", "name"]);
    }

    #[test]
    fn malformed_paths_are_errors() {
        for bad in [
            "",
            ".a",
            "a.",
            "a..b",
            r#"a.["x"#,
            "a[x]",
            r#"["x"]y"#,
            r#"["\q"]"#,
        ] {
            assert!(parse(bad).is_err(), "{bad:?} should not parse");
        }
    }

    #[test]
    fn select_walks_objects_and_arrays() {
        let v = json!({"db": {"user": "app", "port": 5432, "tls.crt": "PEM"}, "items": [{"n": 1}]});
        assert_eq!(
            select(&v, "db.user").unwrap().as_deref(),
            Some(&json!("app"))
        );
        assert_eq!(
            select(&v, r#"db.["tls.crt"]"#).unwrap().as_deref(),
            Some(&json!("PEM"))
        );
        assert_eq!(select(&v, "items.0.n").unwrap().as_deref(), Some(&json!(1)));
        assert_eq!(
            select(&v, "items[0].n").unwrap().as_deref(),
            Some(&json!(1))
        );
        assert_eq!(select(&v, "db.missing").unwrap(), None);
        assert_eq!(select(&v, "db.user.deeper").unwrap(), None);
    }

    #[test]
    fn a_literal_top_level_key_wins_over_the_path() {
        let v = json!({"tls.crt": "top", "tls": {"crt": "nested"}});
        assert_eq!(
            select(&v, "tls.crt").unwrap().as_deref(),
            Some(&json!("top"))
        );
    }

    #[test]
    fn a_path_continues_into_a_string_holding_json() {
        // ESO's Kubernetes provider: `config.db.host` is key `config`, path `db.host` inside.
        let v = json!({"config": r#"{"db":{"host":"pg","port":5432}}"#, "plain": "text"});
        assert_eq!(
            select(&v, "config.db.host").unwrap().as_deref(),
            Some(&json!("pg"))
        );
        assert_eq!(
            select(&v, "config.db.port").unwrap().as_deref(),
            Some(&json!(5432))
        );
        assert_eq!(select(&v, "config.db.missing").unwrap(), None);
        assert_eq!(select(&v, "plain.x").unwrap(), None);
    }

    #[test]
    fn leaves_are_strings_unquoted_and_others_as_json() {
        assert_eq!(leaf_bytes(&json!("s")), b"s");
        assert_eq!(leaf_bytes(&json!(42)), b"42");
        assert_eq!(leaf_bytes(&json!(true)), b"true");
        assert_eq!(leaf_bytes(&json!(null)), b"null");
        assert_eq!(
            leaf_bytes(&json!({"b": 1, "a": [1, "x"]})),
            br#"{"a":[1,"x"],"b":1}"#
        );
    }

    proptest::proptest! {
        #[test]
        fn parsing_and_selecting_never_panic(path in ".{0,40}") {
            let _ = parse(&path);
            let _ = select(&json!({"a": {"b": [1, {"c": "d"}]}}), &path);
        }

        #[test]
        fn bracketed_keys_round_trip(key in ".{1,20}") {
            let path = format!("x[{}]", serde_json::to_string(&key).unwrap());
            proptest::prop_assert_eq!(parse(&path).unwrap(), vec!["x".to_owned(), key]);
        }
    }
}
