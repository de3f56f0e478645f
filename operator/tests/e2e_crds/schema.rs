//! What the CRDs constrain, read from `kuvert_core::crds::all()`: every CEL rule, enum, pattern,
//! list limit, bound, length and one-of (a "site"). The table's rows for enums and list limits
//! are generated from these sites and the table's valid fixtures, and [`uncovered`] lists the
//! sites no rejected row exercises, so a constraint added to the Rust types without a row here
//! fails the test.

use serde_json::{Value, json};

use super::table::{Expect, Row, SKIPPED_CEL};

/// One CRD, as the table needs it.
pub struct Crd {
    pub kind: String,
    pub group: String,
    pub plural: String,
    pub namespaced: bool,
    /// Whether any rule of its schema is a CEL rule (rows that fail a blocking check then also
    /// get [`SKIPPED_CEL`]).
    pub has_cel: bool,
    sites: Vec<Site>,
}

/// One constrained field: its path (`spec.data[].remoteRef.decodingStrategy`, split into
/// tokens, `[]` for "any item") and the constraint.
struct Site {
    tokens: Vec<String>,
    keyword: Keyword,
}

#[derive(Debug)]
enum Keyword {
    Cel(String),
    Enum(Vec<String>),
    Pattern(String),
    MaxItems(u64),
    Minimum,
    Maximum,
    MinLength,
    MaxLength,
    OneOf,
}

impl Site {
    fn path(&self) -> String {
        let mut path = String::new();
        for t in &self.tokens {
            if t != "[]" && !path.is_empty() {
                path.push('.');
            }
            path.push_str(t);
        }
        path
    }
}

fn walk(schema: &Value, tokens: &mut Vec<String>, out: &mut Vec<Site>) {
    let mut site = |keyword| {
        out.push(Site {
            tokens: tokens.clone(),
            keyword,
        })
    };
    for rule in schema["x-kubernetes-validations"]
        .as_array()
        .into_iter()
        .flatten()
    {
        site(Keyword::Cel(rule["message"].as_str().unwrap().to_owned()));
    }
    if let Some(values) = schema["enum"].as_array() {
        site(Keyword::Enum(
            values
                .iter()
                .map(|v| v.as_str().unwrap().to_owned())
                .collect(),
        ));
    }
    if let Some(p) = schema["pattern"].as_str() {
        site(Keyword::Pattern(p.to_owned()));
    }
    if let Some(n) = schema["maxItems"].as_u64() {
        site(Keyword::MaxItems(n));
    }
    for (key, keyword) in [
        ("minimum", Keyword::Minimum),
        ("maximum", Keyword::Maximum),
        ("minLength", Keyword::MinLength),
        ("maxLength", Keyword::MaxLength),
        ("oneOf", Keyword::OneOf),
    ] {
        if !schema[key].is_null() {
            out.push(Site {
                tokens: tokens.clone(),
                keyword,
            });
        }
    }
    for (name, property) in schema["properties"].as_object().into_iter().flatten() {
        tokens.push(name.clone());
        walk(property, tokens, out);
        tokens.pop();
    }
    if schema["items"].is_object() {
        tokens.push("[]".into());
        walk(&schema["items"], tokens, out);
        tokens.pop();
    }
}

/// Every CRD kuvert installs.
pub fn crds() -> Vec<Crd> {
    kuvert_core::crds::all()
        .into_iter()
        .map(|crd| {
            let version = serde_json::to_value(&crd.spec.versions[0]).unwrap();
            let root = &version["schema"]["openAPIV3Schema"];
            let mut sites = Vec::new();
            walk(
                &root["properties"]["spec"],
                &mut vec!["spec".into()],
                &mut sites,
            );
            Crd {
                has_cel: root.to_string().contains("x-kubernetes-validations"),
                kind: crd.spec.names.kind.clone(),
                group: crd.spec.group.clone(),
                plural: crd.spec.names.plural.clone(),
                namespaced: crd.spec.scope == "Namespaced",
                sites,
            }
        })
        .collect()
}

/// Where the path of `tokens` is in `value`, trying list items in order: the dotted path with
/// indexes (`spec.dataFrom[1].find.conversionStrategy`) and the JSON pointer.
fn locate(
    value: &Value,
    tokens: &[String],
    path: String,
    pointer: String,
) -> Option<(String, String)> {
    let Some((first, rest)) = tokens.split_first() else {
        return Some((path, pointer));
    };
    if first == "[]" {
        value.as_array()?.iter().enumerate().find_map(|(i, item)| {
            locate(item, rest, format!("{path}[{i}]"), format!("{pointer}/{i}"))
        })
    } else {
        let child = value.get(first)?;
        let path = if path.is_empty() {
            first.clone()
        } else {
            format!("{path}.{first}")
        };
        locate(child, rest, path, format!("{pointer}/{first}"))
    }
}

/// For each enum, one row with a near miss (the first value in the wrong case); for each list
/// limit, one row at the limit (accepted) and one over it. Each is a copy of the first valid
/// fixture of the kind that has the field.
pub fn generated(crds: &[Crd], fixtures: &[Row]) -> Vec<Row> {
    let mut rows = Vec::new();
    for crd in crds {
        for site in &crd.sites {
            let (Keyword::Enum(_) | Keyword::MaxItems(_)) = &site.keyword else {
                continue;
            };
            let found = fixtures.iter().find_map(|f| {
                let object = json!({"spec": f.spec.clone()?});
                let (path, pointer) = locate(&object, &site.tokens, String::new(), String::new())?;
                (f.kind == crd.kind).then_some((object, path, pointer))
            });
            let Some((object, path, pointer)) = found else {
                continue; // `uncovered` reports it
            };
            let blocked = |cause: (String, String)| {
                let mut causes = vec![cause];
                if crd.has_cel {
                    causes.push((SKIPPED_CEL.0.into(), SKIPPED_CEL.1.into()));
                }
                Expect::Invalid(causes)
            };
            let with = |value: Value| {
                let mut object = object.clone();
                *object.pointer_mut(&pointer).unwrap() = value;
                object["spec"].take()
            };
            match &site.keyword {
                Keyword::Enum(values) => {
                    let first = &values[0];
                    let bad = match first.to_lowercase() {
                        lower if lower != *first => lower,
                        _ => first.to_uppercase(),
                    };
                    let supported: Vec<String> = values.iter().map(|v| format!("{v:?}")).collect();
                    rows.push(Row {
                        what: format!("{path} = {bad:?} (enum)"),
                        kind: crd.kind.clone(),
                        spec: Some(with(json!(bad))),
                        expect: blocked((
                            path.clone(),
                            format!(
                                "Unsupported value: {bad:?}: supported values: {}",
                                supported.join(", ")
                            ),
                        )),
                    });
                }
                Keyword::MaxItems(max) => {
                    let item = object.pointer(&pointer).unwrap()[0].clone();
                    let items = |n: u64| Value::Array(vec![item.clone(); n as usize]);
                    rows.push(Row {
                        what: format!("{path} with {max} items (maxItems)"),
                        kind: crd.kind.clone(),
                        spec: Some(with(items(*max))),
                        expect: Expect::Accepted,
                    });
                    rows.push(Row {
                        what: format!("{path} with {} items (maxItems)", max + 1),
                        kind: crd.kind.clone(),
                        spec: Some(with(items(max + 1))),
                        expect: blocked((
                            path.clone(),
                            format!("Too many: {}: must have at most {max} items", max + 1),
                        )),
                    });
                }
                _ => unreachable!(),
            }
        }
    }
    rows
}

/// `spec.data[3].x` → `spec.data[].x`.
fn general(path: &str) -> String {
    let mut out = String::new();
    let mut in_index = false;
    for c in path.chars() {
        match c {
            '[' => {
                in_index = true;
                out.push_str("[]");
            }
            ']' => in_index = false,
            _ if in_index => {}
            c => out.push(c),
        }
    }
    out
}

/// The sites no rejected row exercises, as `Kind spec.path (keyword)`.
pub fn uncovered(crds: &[Crd], rows: &[Row]) -> Vec<String> {
    let mut missing = Vec::new();
    for crd in crds {
        let causes: Vec<&(String, String)> = rows
            .iter()
            .filter(|r| r.kind == crd.kind)
            .filter_map(|r| match &r.expect {
                Expect::Invalid(causes) => Some(causes),
                _ => None,
            })
            .flatten()
            .collect();
        for site in &crd.sites {
            let path = site.path();
            let covered = causes.iter().any(|(field, message)| {
                let at = general(field) == path;
                match &site.keyword {
                    Keyword::Cel(rule) => at && *message == format!("Invalid value: {rule}"),
                    Keyword::Enum(_) => at && message.starts_with("Unsupported value: "),
                    Keyword::Pattern(p) => at && message.ends_with(&format!("should match '{p}'")),
                    Keyword::MaxItems(_) => at && message.starts_with("Too many: "),
                    Keyword::Minimum => {
                        at && message.contains("should be greater than or equal to")
                    }
                    Keyword::Maximum => at && message.contains("should be less than or equal to"),
                    Keyword::MinLength => at && message.contains("should be at least"),
                    Keyword::MaxLength => at && message.starts_with("Too long: "),
                    Keyword::OneOf => {
                        field == "<nil>"
                            && message
                                .split('"')
                                .nth(3)
                                .is_some_and(|p| general(p) == path)
                            && message.contains("must validate one and only one schema (oneOf)")
                    }
                }
            });
            if !covered {
                missing.push(format!("{} {path} ({:?})", crd.kind, site.keyword));
            }
        }
    }
    missing
}
