//! Structural-schema handling for custom resources: validation, pruning of unknown fields,
//! defaulting, and `x-kubernetes-validations` CEL rules (through kube's `cel` feature).
//!
//! Covered keywords: `type`, `properties`, `additionalProperties`, `items`, `required`, `enum`,
//! `pattern`, `minimum`/`maximum` (+ exclusive), `minLength`/`maxLength`, `minItems`/`maxItems`,
//! `minProperties`/`maxProperties`, `nullable`, `default`, `allOf`/`anyOf`/`oneOf`/`not`,
//! `x-kubernetes-preserve-unknown-fields`, `x-kubernetes-int-or-string`,
//! `x-kubernetes-embedded-resource`, `x-kubernetes-validations`. `format` is not checked.

use std::collections::HashMap;

use regex::Regex;
use serde_json::{Map, Value};

use crate::error::Cause;

/// A CRD version's `openAPIV3Schema`, with its regular expressions and CEL rules compiled once.
#[derive(Debug)]
pub(crate) struct CompiledSchema {
    root: Value,
    patterns: HashMap<String, Regex>,
    /// The `x-kubernetes-validations` rules, if the schema has any.
    cel: Option<kube::core::cel::CompiledSchema>,
}

thread_local! {
    /// CEL's function registry, built once per thread. Built (and the rules compiled) on
    /// every write, CEL took about 30 % of devcluster's time under kuvert-bench's stream of
    /// ExternalSecret writes, a third of that in building the registry alone.
    static CEL: kube::core::cel::Validator = kube::core::cel::Validator::new();
}

/// What validating an object produced.
#[derive(Debug, Default)]
pub(crate) struct Outcome {
    /// Violations: the object must be rejected with 422.
    pub causes: Vec<Cause>,
    /// Paths of fields the schema does not declare (already pruned from the object).
    pub unknown: Vec<String>,
}

fn collect(
    schema: &Value,
    patterns: &mut HashMap<String, Regex>,
    cel: &mut bool,
) -> Result<(), String> {
    match schema {
        Value::Object(m) => {
            if let Some(Value::String(p)) = m.get("pattern") {
                let re =
                    Regex::new(p).map_err(|e| format!("pattern {p:?} does not compile: {e}"))?;
                patterns.insert(p.clone(), re);
            }
            if m.contains_key("x-kubernetes-validations") {
                *cel = true;
            }
            for (k, v) in m {
                if k != "default" && k != "enum" && k != "example" {
                    collect(v, patterns, cel)?;
                }
            }
        }
        Value::Array(a) => {
            for v in a {
                collect(v, patterns, cel)?;
            }
        }
        _ => {}
    }
    Ok(())
}

fn show(v: &Value) -> String {
    match v {
        Value::Object(_) => "\"object\"".into(),
        Value::Array(_) => "\"array\"".into(),
        other => other.to_string(),
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_f64() => "number",
        Value::Number(_) => "integer",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

struct Walker<'a> {
    patterns: &'a HashMap<String, Regex>,
    out: Outcome,
    /// Prune and default (false while probing `anyOf`/`oneOf` branches).
    mutate: bool,
}

impl Walker<'_> {
    fn invalid(&mut self, path: &str, value: &Value, what: String) {
        self.out.causes.push(Cause {
            field: path.to_string(),
            reason: "FieldValueInvalid",
            message: format!("Invalid value: {}: {path} in body {what}", show(value)),
        });
    }

    fn probe(&self, value: &Value, schema: &Value, path: &str) -> bool {
        let mut w = Walker {
            patterns: self.patterns,
            out: Outcome::default(),
            mutate: false,
        };
        let mut v = value.clone();
        w.walk(&mut v, schema, path);
        w.out.causes.is_empty()
    }

    /// Validates `value` against `schema`, pruning and defaulting in place.
    fn walk(&mut self, value: &mut Value, schema: &Value, path: &str) {
        let Some(s) = schema.as_object() else { return };
        let flag = |k: &str| s.get(k).and_then(Value::as_bool) == Some(true);
        if value.is_null() {
            if !flag("nullable") && self.mutate {
                // The API server drops nulls of non-nullable fields rather than rejecting them.
                *value = Value::Null;
            }
            return;
        }
        if flag("x-kubernetes-int-or-string") {
            if !(value.is_string() || value.is_i64() || value.is_u64()) {
                self.invalid(path, value, "must be of type int-or-string".into());
            }
            return;
        }
        let ty = s.get("type").and_then(Value::as_str);
        if let Some(ty) = ty {
            let ok = match ty {
                "object" => value.is_object(),
                "array" => value.is_array(),
                "string" => value.is_string(),
                "boolean" => value.is_boolean(),
                "integer" => value.is_i64() || value.is_u64(),
                "number" => value.is_number(),
                _ => true,
            };
            if !ok {
                let v = value.clone();
                self.invalid(
                    path,
                    &v,
                    format!("must be of type {ty}: \"{}\"", type_name(&v)),
                );
                return;
            }
        }
        if let Some(Value::Array(allowed)) = s.get("enum")
            && !allowed.contains(value)
        {
            let list: Vec<String> = allowed.iter().map(Value::to_string).collect();
            self.out.causes.push(Cause {
                field: path.into(),
                reason: "FieldValueNotSupported",
                message: format!(
                    "Unsupported value: {}: supported values: {}",
                    show(value),
                    list.join(", ")
                ),
            });
        }
        for key in ["allOf", "anyOf", "oneOf"] {
            if let Some(Value::Array(branches)) = s.get(key) {
                let passing = branches
                    .iter()
                    .filter(|b| self.probe(value, b, path))
                    .count();
                let ok = match key {
                    "allOf" => passing == branches.len(),
                    "anyOf" => passing > 0,
                    _ => passing == 1,
                };
                if !ok {
                    let v = value.clone();
                    self.invalid(path, &v, format!("must validate {key}"));
                }
            }
        }
        if let Some(not) = s.get("not")
            && self.probe(value, not, path)
        {
            let v = value.clone();
            self.invalid(path, &v, "must not validate the schema (not)".into());
        }
        match value {
            Value::String(text) => self.string(text.clone(), s, path),
            Value::Number(n) => self.number(n.as_f64().unwrap_or_default(), s, path, value.clone()),
            Value::Array(items) => {
                let n = items.len() as u64;
                if let Some(max) = s.get("maxItems").and_then(Value::as_u64)
                    && n > max
                {
                    self.out.causes.push(Cause {
                        field: path.into(),
                        reason: "FieldValueTooMany",
                        message: format!("Too many: {n}: must have at most {max} items"),
                    });
                }
                if let Some(min) = s.get("minItems").and_then(Value::as_u64)
                    && n < min
                {
                    let v = Value::Array(items.clone());
                    self.invalid(path, &v, format!("should have at least {min} items"));
                }
                if let Some(item_schema) = s.get("items") {
                    for (i, item) in items.iter_mut().enumerate() {
                        self.walk(item, item_schema, &format!("{path}[{i}]"));
                    }
                    if self.mutate {
                        items.retain(|v| !v.is_null());
                    }
                }
            }
            Value::Object(map) => self.object(map, s, path),
            _ => {}
        }
    }

    fn string(&mut self, text: String, s: &Map<String, Value>, path: &str) {
        let v = Value::String(text.clone());
        let len = text.chars().count() as u64;
        if let Some(max) = s.get("maxLength").and_then(Value::as_u64)
            && len > max
        {
            self.out.causes.push(Cause {
                field: path.into(),
                reason: "FieldValueTooLong",
                message: format!("Too long: may not be more than {max} bytes"),
            });
        }
        if let Some(min) = s.get("minLength").and_then(Value::as_u64)
            && len < min
        {
            self.invalid(path, &v, format!("should be at least {min} chars long"));
        }
        if let Some(Value::String(p)) = s.get("pattern")
            && let Some(re) = self.patterns.get(p)
            && !re.is_match(&text)
        {
            self.invalid(path, &v, format!("should match '{p}'"));
        }
    }

    fn number(&mut self, n: f64, s: &Map<String, Value>, path: &str, v: Value) {
        let excl = |k: &str| s.get(k).and_then(Value::as_bool) == Some(true);
        if let Some(min) = s.get("minimum").and_then(Value::as_f64) {
            if excl("exclusiveMinimum") && n <= min {
                self.invalid(path, &v, format!("should be greater than {min}"));
            } else if n < min {
                self.invalid(
                    path,
                    &v,
                    format!("should be greater than or equal to {min}"),
                );
            }
        }
        if let Some(max) = s.get("maximum").and_then(Value::as_f64) {
            if excl("exclusiveMaximum") && n >= max {
                self.invalid(path, &v, format!("should be less than {max}"));
            } else if n > max {
                self.invalid(path, &v, format!("should be less than or equal to {max}"));
            }
        }
    }

    fn object(&mut self, map: &mut Map<String, Value>, s: &Map<String, Value>, path: &str) {
        let props = s.get("properties").and_then(Value::as_object);
        let preserve = s
            .get("x-kubernetes-preserve-unknown-fields")
            .and_then(Value::as_bool)
            == Some(true);
        let embedded = s
            .get("x-kubernetes-embedded-resource")
            .and_then(Value::as_bool)
            == Some(true);
        if self.mutate
            && let Some(props) = props
        {
            for (k, prop) in props {
                if !map.contains_key(k)
                    && let Some(d) = prop.get("default")
                {
                    map.insert(k.clone(), d.clone());
                }
            }
        }
        let child = |k: &str| {
            if path.is_empty() {
                k.to_string()
            } else {
                format!("{path}.{k}")
            }
        };
        let keys: Vec<String> = map.keys().cloned().collect();
        for k in keys {
            let is_root_meta = (path.is_empty() || embedded)
                && matches!(k.as_str(), "apiVersion" | "kind" | "metadata");
            let sub = props
                .and_then(|p| p.get(&k))
                .or_else(|| s.get("additionalProperties").filter(|a| a.is_object()));
            match sub {
                Some(sub) if !is_root_meta => {
                    let p = child(&k);
                    if let Some(v) = map.get_mut(&k) {
                        self.walk(v, sub, &p);
                    }
                    if self.mutate
                        && map.get(&k).is_some_and(Value::is_null)
                        && sub.get("nullable").and_then(Value::as_bool) != Some(true)
                    {
                        map.remove(&k);
                    }
                }
                _ if is_root_meta => {}
                _ => {
                    let allowed = preserve
                        || s.get("additionalProperties").and_then(Value::as_bool) == Some(true);
                    if !allowed
                        && (props.is_some()
                            || s.contains_key("additionalProperties")
                            || s.get("type").and_then(Value::as_str) == Some("object"))
                    {
                        self.out.unknown.push(child(&k));
                        if self.mutate {
                            map.remove(&k);
                        }
                    }
                }
            }
        }
        if let Some(Value::Array(required)) = s.get("required") {
            for r in required.iter().filter_map(Value::as_str) {
                if !map.contains_key(r) {
                    self.out.causes.push(Cause {
                        field: child(r),
                        reason: "FieldValueRequired",
                        message: "Required value".into(),
                    });
                }
            }
        }
        let n = map.len() as u64;
        if let Some(max) = s.get("maxProperties").and_then(Value::as_u64)
            && n > max
        {
            self.out.causes.push(Cause {
                field: path.into(),
                reason: "FieldValueTooMany",
                message: format!("Too many: {n}: must have at most {max} items"),
            });
        }
        if let Some(min) = s.get("minProperties").and_then(Value::as_u64)
            && n < min
        {
            self.out.causes.push(Cause {
                field: path.into(),
                reason: "FieldValueInvalid",
                message: format!(
                    "Invalid value: {n}: {path} in body should have at least {min} properties"
                ),
            });
        }
    }
}

impl CompiledSchema {
    pub fn compile(root: &Value) -> Result<Self, String> {
        let mut patterns = HashMap::new();
        let mut has_cel = false;
        collect(root, &mut patterns, &mut has_cel)?;
        Ok(Self {
            root: root.clone(),
            patterns,
            cel: has_cel.then(|| kube::core::cel::compile_schema(root)),
        })
    }

    /// Validates `obj`, pruning unknown fields and applying defaults in place. `old` is the
    /// stored object on update (for CEL transition rules using `oldSelf`).
    pub fn validate(&self, obj: &mut Value, old: Option<&Value>) -> Outcome {
        let mut w = Walker {
            patterns: &self.patterns,
            out: Outcome::default(),
            mutate: true,
        };
        w.walk(obj, &self.root, "");
        let mut out = w.out;
        if let Some(cel) = self.cel.as_ref().filter(|_| out.causes.is_empty()) {
            let checked = CEL.with(|validator| validator.validate_compiled(cel, obj, old));
            if let Err(errors) = checked {
                for e in errors.into_vec() {
                    let field = if e.field_path.is_empty() {
                        "<root>".to_string()
                    } else {
                        e.field_path.clone()
                    };
                    out.causes.push(Cause {
                        field,
                        reason: "FieldValueInvalid",
                        message: format!("Invalid value: \"object\": {}", e.message),
                    });
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> CompiledSchema {
        CompiledSchema::compile(&json!({
            "type": "object",
            "properties": {
                "spec": {
                    "type": "object",
                    "required": ["size"],
                    "properties": {
                        "size": {"type": "integer", "minimum": 1, "maximum": 10},
                        "color": {"type": "string", "enum": ["red", "blue"]},
                        "name": {"type": "string", "pattern": "^[a-z]+$", "default": "abc"},
                        "tags": {"type": "array", "maxItems": 2, "items": {"type": "string"}},
                        "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                        "port": {"x-kubernetes-int-or-string": true}
                    },
                    "x-kubernetes-validations": [{"rule": "self.size != 7", "message": "seven is unlucky"}]
                },
                "status": {"type": "object", "properties": {"ok": {"type": "boolean"}}}
            }
        }))
        .unwrap()
    }

    fn fields(o: &Outcome) -> Vec<(String, &'static str)> {
        o.causes
            .iter()
            .map(|c| (c.field.clone(), c.reason))
            .collect()
    }

    #[test]
    fn a_valid_object_is_defaulted_and_unknown_fields_are_pruned() {
        let mut obj = json!({"apiVersion": "x/v1", "kind": "W", "metadata": {"name": "a"},
            "spec": {"size": 3, "bogus": 1, "extra": {"free": true}, "port": "http"}});
        let out = schema().validate(&mut obj, None);
        assert!(out.causes.is_empty(), "{:?}", out.causes);
        assert_eq!(out.unknown, vec!["spec.bogus".to_string()]);
        assert_eq!(
            obj["spec"],
            json!({"size": 3, "name": "abc", "extra": {"free": true}, "port": "http"})
        );
        assert_eq!(obj["metadata"]["name"], "a");
    }

    #[test]
    fn types_required_enums_patterns_and_bounds_are_enforced() {
        let mut obj = json!({"spec": {"size": "big", "color": "green", "name": "ABC", "tags": ["a", "b", "c"]}});
        let out = schema().validate(&mut obj, None);
        assert_eq!(
            fields(&out),
            vec![
                ("spec.color".into(), "FieldValueNotSupported"),
                ("spec.name".into(), "FieldValueInvalid"),
                ("spec.size".into(), "FieldValueInvalid"),
                ("spec.tags".into(), "FieldValueTooMany"),
            ]
        );
        assert_eq!(
            out.causes[2].message,
            "Invalid value: \"big\": spec.size in body must be of type integer: \"string\""
        );
        let mut missing = json!({"spec": {}});
        assert_eq!(
            fields(&schema().validate(&mut missing, None)),
            vec![("spec.size".into(), "FieldValueRequired")]
        );
        let mut too_big = json!({"spec": {"size": 11}});
        assert_eq!(
            schema().validate(&mut too_big, None).causes[0].message,
            "Invalid value: 11: spec.size in body should be less than or equal to 10"
        );
    }

    #[test]
    fn cel_rules_are_evaluated() {
        let schema = schema();
        let mut obj = json!({"spec": {"size": 7}});
        let out = schema.validate(&mut obj, None);
        assert_eq!(out.causes.len(), 1, "{:?}", out.causes);
        assert!(
            out.causes[0].message.contains("seven is unlucky"),
            "{}",
            out.causes[0].message
        );
        // The rules are compiled once and serve every later object.
        let mut fine = json!({"spec": {"size": 6}});
        assert_eq!(schema.validate(&mut fine, None).causes.len(), 0);
        assert_eq!(schema.validate(&mut obj, None).causes.len(), 1);
    }

    #[test]
    fn cel_transition_rules_see_the_stored_object() {
        let schema = CompiledSchema::compile(&json!({
            "type": "object",
            "properties": {"spec": {
                "type": "object",
                "properties": {"size": {"type": "integer"}},
                "x-kubernetes-validations": [
                    {"rule": "self.size >= oldSelf.size", "message": "size may only grow"}
                ]
            }}
        }))
        .unwrap();
        let old = json!({"spec": {"size": 5}});
        let mut shrunk = json!({"spec": {"size": 4}});
        let causes = schema.validate(&mut shrunk, Some(&old)).causes;
        assert_eq!(causes.len(), 1, "{causes:?}");
        assert_eq!(causes[0].field, "spec");
        assert_eq!(
            causes[0].message,
            "Invalid value: \"object\": size may only grow"
        );
        let mut grown = json!({"spec": {"size": 6}});
        assert_eq!(schema.validate(&mut grown, Some(&old)).causes.len(), 0);
        // Without a stored object (a create) transition rules do not apply.
        assert_eq!(schema.validate(&mut shrunk, None).causes.len(), 0);
    }
}
