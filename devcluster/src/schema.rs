//! Structural-schema handling for custom resources: validation, pruning of unknown fields,
//! defaulting, and `x-kubernetes-validations` CEL rules (through kube's `cel` feature).
//!
//! Covered keywords: `type`, `properties`, `additionalProperties`, `items`, `required`, `enum`,
//! `pattern`, `minimum`/`maximum` (+ exclusive), `minLength`/`maxLength`, `minItems`/`maxItems`,
//! `minProperties`/`maxProperties`, `nullable`, `default`, `allOf`/`anyOf`/`oneOf`/`not`,
//! `x-kubernetes-preserve-unknown-fields`, `x-kubernetes-int-or-string`,
//! `x-kubernetes-embedded-resource`, `x-kubernetes-validations`, and the formats `int32`, `int64`
//! and `byte`; other formats are not checked.
//!
//! Violations are reported with kube-apiserver's wording, field paths and reasons (checked
//! against kube-apiserver v1.37 by `operator/tests/e2e_crds.rs`): a composite keyword's or a
//! format range's failure has no field (`<nil>`), a wrong type is `FieldValueTypeInvalid` naming
//! the type rather than the value, and CEL rules are skipped (with a `<nil>` cause saying so)
//! only after a blocking violation.

use std::collections::HashMap;

use base64::Engine as _;
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

/// The field of causes kube-apiserver reports without one (composite keywords, format ranges,
/// CEL rules skipped).
const NO_FIELD: &str = "<nil>";

/// Reasons after which kube-apiserver does not evaluate CEL rules (apiextensions-apiserver's
/// `hasBlockingErr`): the rules could see values of the wrong type, length or count.
const BLOCKING: [&str; 5] = [
    "FieldValueNotSupported",
    "FieldValueRequired",
    "FieldValueTooLong",
    "FieldValueTooMany",
    "FieldValueTypeInvalid",
];

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

    /// A cause without a field, as kube-apiserver reports composite and format failures.
    fn unplaced(&mut self, message: String) {
        self.out.causes.push(Cause {
            field: NO_FIELD.into(),
            reason: "FieldValueInvalid",
            message: format!("Invalid value: \"\": {message}"),
        });
    }

    /// A value of the wrong type: kube-apiserver shows the type found, not the value.
    fn type_invalid(&mut self, path: &str, found: &str, expected: &str) {
        self.out.causes.push(Cause {
            field: path.to_string(),
            reason: "FieldValueTypeInvalid",
            message: format!(
                "Invalid value: \"{found}\": {path} in body must be of type {expected}: \"{found}\""
            ),
        });
    }

    /// The causes of validating `value` against `schema` alone (empty when it passes).
    fn probe(&self, value: &Value, schema: &Value, path: &str) -> Vec<Cause> {
        let mut w = Walker {
            patterns: self.patterns,
            out: Outcome::default(),
            mutate: false,
        };
        let mut v = value.clone();
        w.walk(&mut v, schema, path);
        w.out.causes
    }

    /// `allOf`, `anyOf`, `oneOf` and `not`, reported as go-openapi (kube-apiserver's validator)
    /// does: one cause without a field, plus the causes of the branch that came closest (the
    /// first with the fewest causes) when none passes, or of every failing `allOf` branch.
    fn composites(&mut self, value: &Value, s: &Map<String, Value>, path: &str) {
        for key in ["allOf", "anyOf", "oneOf"] {
            let Some(Value::Array(branches)) = s.get(key) else {
                continue;
            };
            let results: Vec<Vec<Cause>> = branches
                .iter()
                .map(|b| self.probe(value, b, path))
                .collect();
            let passing = results.iter().filter(|c| c.is_empty()).count();
            let closest = || {
                results
                    .iter()
                    .filter(|c| !c.is_empty())
                    .min_by_key(|c| c.len())
                    .cloned()
                    .unwrap_or_default()
            };
            let (message, merged) = match key {
                "allOf" if passing < branches.len() => {
                    let none = if passing == 0 { ". None validated" } else { "" };
                    (
                        format!("\"{path}\" must validate all the schemas (allOf){none}"),
                        results.iter().flatten().cloned().collect(),
                    )
                }
                "anyOf" if passing == 0 => (
                    format!("\"{path}\" must validate at least one schema (anyOf)"),
                    closest(),
                ),
                "oneOf" if passing == 0 => (
                    format!(
                        "\"{path}\" must validate one and only one schema (oneOf). Found none valid"
                    ),
                    closest(),
                ),
                "oneOf" if passing > 1 => (
                    format!(
                        "\"{path}\" must validate one and only one schema (oneOf). Found {passing} valid alternatives"
                    ),
                    Vec::new(),
                ),
                _ => continue,
            };
            self.unplaced(message);
            self.out.causes.extend(merged);
        }
        if let Some(not) = s.get("not")
            && self.probe(value, not, path).is_empty()
        {
            self.unplaced(format!("\"{path}\" must not validate the schema (not)"));
        }
    }

    /// An integer field: integral JSON numbers such as `2.0` are integers (kube-apiserver's
    /// decoder reads them as such, and stores them so); `int32`/`int64` formats bound the range.
    fn integer(&mut self, value: &mut Value, format: Option<&str>, path: &str) -> bool {
        let n = value.as_f64().unwrap_or_default();
        let integral = value.is_i64()
            || value.is_u64()
            || (value.is_f64() && n.fract() == 0.0 && n.abs() < 9.0e15);
        let format = format.filter(|f| matches!(*f, "int32" | "int64"));
        if !integral {
            match format {
                Some(f) => {
                    self.type_invalid(path, "float64", f);
                    self.unplaced(format!(
                        "Checked value must be of type integer with format {f} in {path}"
                    ));
                }
                None => self.type_invalid(path, "number", "integer"),
            }
            return false;
        }
        if value.is_f64() && self.mutate {
            *value = Value::from(n as i64);
        }
        let in_range = match format {
            Some("int32") => value.as_i64().is_some_and(|i| i32::try_from(i).is_ok()),
            Some(_) => value.is_i64(),
            None => true,
        };
        if !in_range {
            let f = format.unwrap_or_default();
            self.unplaced(format!(
                "Checked value must be of type integer with format {f} in {path}"
            ));
        }
        true
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
        let format = s.get("format").and_then(Value::as_str);
        if let Some(ty) = ty {
            let ok = match ty {
                "object" => value.is_object(),
                "array" => value.is_array(),
                "string" => value.is_string(),
                "boolean" => value.is_boolean(),
                "integer" if value.is_number() => {
                    if !self.integer(value, format, path) {
                        return;
                    }
                    true
                }
                "integer" => false,
                "number" => value.is_number(),
                _ => true,
            };
            if !ok {
                let found = type_name(value);
                self.type_invalid(path, found, ty);
                return;
            }
        }
        if format == Some("byte")
            && let Some(text) = value.as_str()
            && base64::engine::general_purpose::STANDARD
                .decode(text)
                .is_err()
        {
            let v = value.clone();
            self.out.causes.push(Cause {
                field: path.to_string(),
                reason: "FieldValueTypeInvalid",
                message: format!("Invalid value: {v}: {path} in body must be of type byte: {v}"),
            });
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
        self.composites(value, s, path);
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
        let Some(cel) = self.cel.as_ref() else {
            return out;
        };
        if out.causes.iter().any(|c| BLOCKING.contains(&c.reason)) {
            out.causes.push(Cause {
                field: NO_FIELD.into(),
                reason: "FieldValueInvalid",
                message: "Invalid value: null: some validation rules were not checked because the object was invalid; correct the existing errors to complete validation".into(),
            });
        } else {
            let checked = CEL.with(|validator| validator.validate_compiled(cel, obj, old));
            if let Err(errors) = checked {
                for e in errors.into_vec() {
                    let field = if e.field_path.is_empty() {
                        "<root>".to_string()
                    } else {
                        e.field_path.clone()
                    };
                    // kube-apiserver 1.37 omits the value of a failed rule.
                    out.causes.push(Cause {
                        field,
                        reason: "FieldValueInvalid",
                        message: format!("Invalid value: {}", e.message),
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
                ("spec.size".into(), "FieldValueTypeInvalid"),
                ("spec.tags".into(), "FieldValueTooMany"),
                (NO_FIELD.into(), "FieldValueInvalid"),
            ]
        );
        assert_eq!(
            out.causes[2].message,
            "Invalid value: \"string\": spec.size in body must be of type integer: \"string\""
        );
        assert_eq!(
            out.causes[4].message,
            "Invalid value: null: some validation rules were not checked because the object was invalid; correct the existing errors to complete validation"
        );
        let mut missing = json!({"spec": {}});
        assert_eq!(
            fields(&schema().validate(&mut missing, None)),
            vec![
                ("spec.size".into(), "FieldValueRequired"),
                (NO_FIELD.into(), "FieldValueInvalid")
            ]
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
        // A violation that does not block CEL (a pattern, a bound) is reported beside the rule's.
        let mut both = json!({"spec": {"size": 7, "name": "ABC"}});
        assert_eq!(
            fields(&schema.validate(&mut both, None)),
            vec![
                ("spec.name".into(), "FieldValueInvalid"),
                ("spec".into(), "FieldValueInvalid")
            ]
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
        assert_eq!(causes[0].message, "Invalid value: size may only grow");
        let mut grown = json!({"spec": {"size": 6}});
        assert_eq!(schema.validate(&mut grown, Some(&old)).causes.len(), 0);
        // Without a stored object (a create) transition rules do not apply.
        assert_eq!(schema.validate(&mut shrunk, None).causes.len(), 0);
    }

    #[test]
    fn composite_keywords_are_reported_like_go_openapi() {
        let schema = CompiledSchema::compile(&json!({
            "type": "object",
            "properties": {"spec": {
                "type": "object",
                "oneOf": [{"required": ["a"]}, {"required": ["b"]}],
                "properties": {"a": {"type": "string"}, "b": {"type": "string"}}
            }}
        }))
        .unwrap();
        let mut neither = json!({"spec": {}});
        let causes = schema.validate(&mut neither, None).causes;
        let shown: Vec<(&str, &str)> = causes
            .iter()
            .map(|c| (c.field.as_str(), c.message.as_str()))
            .collect();
        assert_eq!(
            shown,
            vec![
                (
                    NO_FIELD,
                    "Invalid value: \"\": \"spec\" must validate one and only one schema (oneOf). Found none valid"
                ),
                ("spec.a", "Required value"),
            ]
        );
        let mut both = json!({"spec": {"a": "x", "b": "y"}});
        let causes = schema.validate(&mut both, None).causes;
        assert_eq!(causes.len(), 1, "{causes:?}");
        assert_eq!(
            causes[0].message,
            "Invalid value: \"\": \"spec\" must validate one and only one schema (oneOf). Found 2 valid alternatives"
        );
        let mut one = json!({"spec": {"b": "y"}});
        assert_eq!(schema.validate(&mut one, None).causes.len(), 0);
    }

    #[test]
    fn integer_formats_and_bytes_are_checked() {
        let schema = CompiledSchema::compile(&json!({
            "type": "object",
            "properties": {"spec": {
                "type": "object",
                "properties": {
                    "small": {"type": "integer", "format": "int32"},
                    "big": {"type": "integer", "format": "int64"},
                    "ca": {"type": "string", "format": "byte"}
                }
            }}
        }))
        .unwrap();
        let messages = |spec: Value| {
            let mut obj = json!({ "spec": spec });
            let out = schema.validate(&mut obj, None);
            (
                obj["spec"].clone(),
                out.causes
                    .into_iter()
                    .map(|c| format!("{}: {}", c.field, c.message))
                    .collect::<Vec<_>>(),
            )
        };
        // An integral float is an integer, and stored as one.
        assert_eq!(
            messages(json!({"small": 2.0, "big": 5, "ca": "YQ=="})),
            (json!({"small": 2, "big": 5, "ca": "YQ=="}), vec![])
        );
        assert_eq!(
            messages(json!({"small": 3_000_000_000u64})).1,
            vec![
                "<nil>: Invalid value: \"\": Checked value must be of type integer with format int32 in spec.small"
            ]
        );
        assert_eq!(
            messages(json!({"big": 1.5})).1,
            vec![
                "spec.big: Invalid value: \"float64\": spec.big in body must be of type int64: \"float64\"",
                "<nil>: Invalid value: \"\": Checked value must be of type integer with format int64 in spec.big"
            ]
        );
        assert_eq!(
            messages(json!({"ca": "not base64!"})).1,
            vec![
                "spec.ca: Invalid value: \"not base64!\": spec.ca in body must be of type byte: \"not base64!\""
            ]
        );
    }
}
