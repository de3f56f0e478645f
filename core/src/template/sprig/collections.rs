//! sprig's lists, dicts, defaults and JSON/YAML functions, and Go's template built-ins (`index`,
//! `len`, `eq`, `lt`, ...).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use minijinja::value::{Enumerator, Object, ObjectRepr, Value, ValueKind};
use minijinja::{Error, State};

use super::{Func, arg, arity, fail, gofmt, int_of, is_empty, items, strval};

pub(super) const FUNCTIONS: &[(&str, Func)] = &[
    ("list", |_, a| Ok(Value::from(a.to_vec()))),
    ("tuple", |_, a| Ok(Value::from(a.to_vec()))),
    ("append", |_, a| push("append", a)),
    ("push", |_, a| push("push", a)),
    ("mustAppend", |_, a| push("mustAppend", a)),
    ("prepend", prepend),
    ("first", |_, a| {
        one_list("first", a, |l| l.first().cloned().unwrap_or_default())
    }),
    ("last", |_, a| {
        one_list("last", a, |l| l.last().cloned().unwrap_or_default())
    }),
    ("rest", |_, a| {
        one_list("rest", a, |l| {
            Value::from(l.get(1..).unwrap_or_default().to_vec())
        })
    }),
    ("initial", |_, a| {
        one_list("initial", a, |l| {
            Value::from(l[..l.len().saturating_sub(1)].to_vec())
        })
    }),
    ("reverse", |_, a| {
        one_list("reverse", a, |l| {
            Value::from(l.iter().rev().cloned().collect::<Vec<_>>())
        })
    }),
    ("uniq", |_, a| {
        one_list("uniq", a, |l| {
            let mut out: Vec<Value> = Vec::new();
            for v in l {
                if !out.contains(v) {
                    out.push(v.clone());
                }
            }
            Value::from(out)
        })
    }),
    ("compact", |_, a| {
        one_list("compact", a, |l| {
            Value::from(
                l.iter()
                    .filter(|v| !is_empty(v))
                    .cloned()
                    .collect::<Vec<_>>(),
            )
        })
    }),
    ("sortAlpha", |_, a| {
        one_list("sortAlpha", a, |l| {
            let mut s: Vec<String> = l.iter().map(strval).collect();
            s.sort();
            Value::from(s)
        })
    }),
    ("without", without),
    ("has", has),
    ("concat", concat),
    ("until", until),
    ("dict", dict),
    ("range_pairs", range_pairs),
    ("get", get),
    ("set", set),
    ("unset", unset),
    ("hasKey", has_key),
    ("keys", keys),
    ("values", values),
    ("pick", |_, a| pick("pick", a, true)),
    ("omit", |_, a| pick("omit", a, false)),
    ("pluck", pluck),
    ("merge", |_, a| merge("merge", a, false)),
    ("mergeOverwrite", |_, a| merge("mergeOverwrite", a, true)),
    ("dig", dig),
    ("default", default),
    ("empty", |_, a| {
        arity("empty", a, 1, 1)?;
        Ok(Value::from(is_empty(&a[0])))
    }),
    ("coalesce", |_, a| {
        Ok(a.iter()
            .find(|v| !is_empty(v))
            .cloned()
            .unwrap_or(Value::from(())))
    }),
    ("all", |_, a| {
        Ok(Value::from(a.iter().all(|v| !is_empty(v))))
    }),
    ("any", |_, a| {
        Ok(Value::from(a.iter().any(|v| !is_empty(v))))
    }),
    ("ternary", |_, a| {
        arity("ternary", a, 3, 3)?;
        Ok(if a[2].is_true() {
            a[0].clone()
        } else {
            a[1].clone()
        })
    }),
    ("toJson", |_, a| to_json("toJson", a, true, None)),
    ("mustToJson", |_, a| to_json("mustToJson", a, true, None)),
    ("toRawJson", |_, a| to_json("toRawJson", a, false, None)),
    ("mustToRawJson", |_, a| {
        to_json("mustToRawJson", a, false, None)
    }),
    ("toPrettyJson", |_, a| {
        to_json("toPrettyJson", a, true, Some("  "))
    }),
    ("mustToPrettyJson", |_, a| {
        to_json("mustToPrettyJson", a, true, Some("  "))
    }),
    ("fromJson", |_, a| from_json("fromJson", a)),
    ("mustFromJson", |_, a| from_json("mustFromJson", a)),
    ("index", index),
    ("len", len),
    ("eq", |_, a| {
        let first = arg("eq", a, 0)?;
        arg("eq", a, 1)?;
        Ok(Value::from(a[1..].iter().any(|v| v == first)))
    }),
    ("ne", |_, a| {
        compare("ne", a, |o| o != std::cmp::Ordering::Equal)
    }),
    ("lt", |_, a| {
        compare("lt", a, |o| o == std::cmp::Ordering::Less)
    }),
    ("le", |_, a| {
        compare("le", a, |o| o != std::cmp::Ordering::Greater)
    }),
    ("gt", |_, a| {
        compare("gt", a, |o| o == std::cmp::Ordering::Greater)
    }),
    ("ge", |_, a| {
        compare("ge", a, |o| o != std::cmp::Ordering::Less)
    }),
    ("kindOf", |_, a| {
        arity("kindOf", a, 1, 1)?;
        Ok(Value::from(go_reflect_kind(&a[0])))
    }),
    ("kindIs", |_, a| {
        arity("kindIs", a, 2, 2)?;
        Ok(Value::from(strval(&a[0]) == go_reflect_kind(&a[1])))
    }),
    ("typeOf", |_, a| {
        arity("typeOf", a, 1, 1)?;
        Ok(Value::from(gofmt::type_name(&a[0])))
    }),
    ("deepEqual", |_, a| {
        arity("deepEqual", a, 2, 2)?;
        Ok(Value::from(a[0] == a[1]))
    }),
    ("fail", |_, a| {
        arity("fail", a, 1, 1)?;
        // The message may be built from secret values, so it is not repeated.
        Err(fail("fail", "the template called fail"))
    }),
];

/// A Go `map[string]interface{}` built by `dict`: `set` and `unset` change it in place, as the
/// Helm idiom `{{ $_ := set $d "k" "v" }}` expects.
#[derive(Debug, Default)]
pub(crate) struct GoDict(Mutex<BTreeMap<String, Value>>);

impl GoDict {
    fn value(map: BTreeMap<String, Value>) -> Value {
        Value::from_object(GoDict(Mutex::new(map)))
    }

    fn entries(&self) -> BTreeMap<String, Value> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

impl Object for GoDict {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Map
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let key = key.as_str()?;
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(key)
            .cloned()
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        let keys: Vec<Value> = self.entries().into_keys().map(Value::from).collect();
        Enumerator::Values(keys)
    }
}

/// A map's entries (a dict, or a map from `fromJson`/`fromYaml`).
fn map_entries(name: &'static str, value: &Value) -> Result<BTreeMap<String, Value>, Error> {
    if let Some(d) = value.downcast_object_ref::<GoDict>() {
        return Ok(d.entries());
    }
    match value.kind() {
        ValueKind::Map => Ok(gofmt::sorted_entries(value).into_iter().collect()),
        ValueKind::None | ValueKind::Undefined => Ok(BTreeMap::new()),
        kind => Err(fail(
            name,
            format!("expects a dict, got {}", super::go_kind(kind)),
        )),
    }
}

fn one_list(
    name: &'static str,
    args: &[Value],
    f: impl Fn(&[Value]) -> Value,
) -> Result<Value, Error> {
    arity(name, args, 1, 1)?;
    Ok(f(&items(name, &args[0])?))
}

fn push(name: &'static str, args: &[Value]) -> Result<Value, Error> {
    arity(name, args, 2, 2)?;
    let mut list = items(name, &args[0])?;
    list.push(args[1].clone());
    Ok(Value::from(list))
}

fn prepend(_: &State, args: &[Value]) -> Result<Value, Error> {
    arity("prepend", args, 2, 2)?;
    let mut list = vec![args[1].clone()];
    list.extend(items("prepend", &args[0])?);
    Ok(Value::from(list))
}

fn without(_: &State, args: &[Value]) -> Result<Value, Error> {
    let list = items("without", arg("without", args, 0)?)?;
    let omit = &args[1..];
    Ok(Value::from(
        list.into_iter()
            .filter(|v| !omit.contains(v))
            .collect::<Vec<_>>(),
    ))
}

fn has(_: &State, args: &[Value]) -> Result<Value, Error> {
    arity("has", args, 2, 2)?;
    Ok(Value::from(items("has", &args[1])?.contains(&args[0])))
}

fn concat(_: &State, args: &[Value]) -> Result<Value, Error> {
    let mut out = Vec::new();
    for list in args {
        out.extend(items("concat", list)?);
    }
    Ok(Value::from(out))
}

fn until(_: &State, args: &[Value]) -> Result<Value, Error> {
    arity("until", args, 1, 1)?;
    let n = int_of(&args[0]);
    if n.unsigned_abs() > 100_000 {
        return Err(fail("until", "the list would be too long"));
    }
    let list: Vec<Value> = if n >= 0 {
        (0..n).map(Value::from).collect()
    } else {
        (n + 1..=0).rev().map(Value::from).collect()
    };
    Ok(Value::from(list))
}

/// What Go's `range` walks, as `[key, value]` pairs: a map's entries in key order, a list's
/// `[index, item]`, an integer n's `[i, i]` for i < n (Go 1.22). `kuvert migrate` writes
/// `{% for k, v in range_pairs(x) %}` for `{{ range $k, $v := x }}`, since a Jinja loop over a
/// map yields its keys where Go's yields its values.
fn range_pairs(_: &State, args: &[Value]) -> Result<Value, Error> {
    arity("range_pairs", args, 1, 1)?;
    let v = &args[0];
    let pairs: Vec<Value> = match v.kind() {
        ValueKind::Map => map_entries("range_pairs", v)?
            .into_iter()
            .map(|(k, item)| Value::from(vec![Value::from(k), item]))
            .collect(),
        ValueKind::Number if v.is_integer() => {
            let n = int_of(v).clamp(0, 100_000);
            (0..n)
                .map(|i| Value::from(vec![Value::from(i), Value::from(i)]))
                .collect()
        }
        _ => items("range_pairs", v)?
            .into_iter()
            .enumerate()
            .map(|(i, item)| Value::from(vec![Value::from(i), item]))
            .collect(),
    };
    Ok(Value::from(pairs))
}

/// `dict K1 V1 K2 V2 ...` (keys as strings; a missing last value is ""), and Jinja's
/// `dict(a=1)` keyword form too.
fn dict(_: &State, args: &[Value]) -> Result<Value, Error> {
    let mut map = BTreeMap::new();
    for pair in args.chunks(2) {
        // Jinja's keyword arguments arrive as one trailing map.
        if pair.len() == 1 && pair[0].is_kwargs() {
            map.extend(map_entries("dict", &pair[0])?);
            continue;
        }
        let value = pair.get(1).cloned().unwrap_or(Value::from(""));
        map.insert(strval(&pair[0]), value);
    }
    Ok(GoDict::value(map))
}

fn get(_: &State, args: &[Value]) -> Result<Value, Error> {
    arity("get", args, 2, 2)?;
    let map = map_entries("get", &args[0])?;
    Ok(map
        .get(&strval(&args[1]))
        .cloned()
        .unwrap_or(Value::from("")))
}

fn set(_: &State, args: &[Value]) -> Result<Value, Error> {
    arity("set", args, 3, 3)?;
    if let Some(d) = args[0].downcast_object_ref::<GoDict>() {
        d.0.lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(strval(&args[1]), args[2].clone());
        return Ok(args[0].clone());
    }
    let mut map = map_entries("set", &args[0])?;
    map.insert(strval(&args[1]), args[2].clone());
    Ok(GoDict::value(map))
}

fn unset(_: &State, args: &[Value]) -> Result<Value, Error> {
    arity("unset", args, 2, 2)?;
    if let Some(d) = args[0].downcast_object_ref::<GoDict>() {
        d.0.lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&strval(&args[1]));
        return Ok(args[0].clone());
    }
    let mut map = map_entries("unset", &args[0])?;
    map.remove(&strval(&args[1]));
    Ok(GoDict::value(map))
}

fn has_key(_: &State, args: &[Value]) -> Result<Value, Error> {
    arity("hasKey", args, 2, 2)?;
    Ok(Value::from(
        map_entries("hasKey", &args[0])?.contains_key(&strval(&args[1])),
    ))
}

/// `keys D...`: the keys of every dict (sorted here; Go's map order is random, so templates
/// sort them with `sortAlpha` anyway).
fn keys(_: &State, args: &[Value]) -> Result<Value, Error> {
    let mut out = Vec::new();
    for d in args {
        out.extend(map_entries("keys", d)?.into_keys().map(Value::from));
    }
    Ok(Value::from(out))
}

fn values(_: &State, args: &[Value]) -> Result<Value, Error> {
    arity("values", args, 1, 1)?;
    Ok(Value::from(
        map_entries("values", &args[0])?
            .into_values()
            .collect::<Vec<_>>(),
    ))
}

fn pick(name: &'static str, args: &[Value], keep: bool) -> Result<Value, Error> {
    let map = map_entries(name, arg(name, args, 0)?)?;
    let names: Vec<String> = args[1..].iter().map(strval).collect();
    Ok(GoDict::value(
        map.into_iter()
            .filter(|(k, _)| names.contains(k) == keep)
            .collect(),
    ))
}

fn pluck(_: &State, args: &[Value]) -> Result<Value, Error> {
    let key = strval(arg("pluck", args, 0)?);
    let mut out = Vec::new();
    for d in &args[1..] {
        if let Some(v) = map_entries("pluck", d)?.get(&key) {
            out.push(v.clone());
        }
    }
    Ok(Value::from(out))
}

fn is_map(v: &Value) -> bool {
    v.kind() == ValueKind::Map
}

fn deep_merge(dst: &mut BTreeMap<String, Value>, src: BTreeMap<String, Value>, overwrite: bool) {
    for (k, v) in src {
        match dst.get(&k) {
            Some(existing) if is_map(existing) && is_map(&v) => {
                let mut inner = map_entries("merge", existing).unwrap_or_default();
                deep_merge(
                    &mut inner,
                    map_entries("merge", &v).unwrap_or_default(),
                    overwrite,
                );
                dst.insert(k, GoDict::value(inner));
            }
            Some(existing) if !overwrite && !is_empty(existing) => {}
            Some(_) if !overwrite => {
                dst.insert(k, v);
            }
            _ => {
                if overwrite && is_empty(&v) && dst.contains_key(&k) {
                    // mergo's WithOverride keeps a destination value over an empty source one.
                    continue;
                }
                dst.insert(k, v);
            }
        }
    }
}

/// `merge DST SRC...` (sources fill what DST lacks) and `mergeOverwrite` (sources win); nested
/// dicts merge deeply. DST is changed in place when it is a dict.
fn merge(name: &'static str, args: &[Value], overwrite: bool) -> Result<Value, Error> {
    let target = arg(name, args, 0)?;
    let mut dst = map_entries(name, target)?;
    for src in &args[1..] {
        deep_merge(&mut dst, map_entries(name, src)?, overwrite);
    }
    if let Some(d) = target.downcast_object_ref::<GoDict>() {
        *d.0.lock().unwrap_or_else(|p| p.into_inner()) = dst;
        return Ok(target.clone());
    }
    Ok(GoDict::value(dst))
}

/// `dig K1 K2 ... DEFAULT DICT`.
fn dig(_: &State, args: &[Value]) -> Result<Value, Error> {
    if args.len() < 3 {
        return Err(fail("dig", "expects keys, a default and a dict"));
    }
    let (path, rest) = args.split_at(args.len() - 2);
    let default = &rest[0];
    let mut current = rest[1].clone();
    for key in path {
        match map_entries("dig", &current)?.get(&strval(key)) {
            Some(v) => current = v.clone(),
            None => return Ok(default.clone()),
        }
    }
    Ok(current)
}

/// `default DEFAULT VALUE`: VALUE unless it is empty (sprig's `empty`), else DEFAULT.
fn default(_: &State, args: &[Value]) -> Result<Value, Error> {
    arity("default", args, 1, 2)?;
    match args.get(1) {
        Some(v) if !is_empty(v) => Ok(v.clone()),
        _ => Ok(args[0].clone()),
    }
}

fn to_json(
    name: &'static str,
    args: &[Value],
    html: bool,
    indent: Option<&str>,
) -> Result<Value, Error> {
    arity(name, args, 1, 1)?;
    gofmt::json(&args[0], html, indent)
        .map(Value::from)
        .map_err(|reason| fail(name, reason))
}

fn from_json(name: &'static str, args: &[Value]) -> Result<Value, Error> {
    arity(name, args, 1, 1)?;
    let bytes = super::string_bytes(&args[0]);
    let json: serde_json::Value = serde_json::from_slice(&bytes).map_err(|err| {
        fail(
            name,
            format!(
                "invalid JSON at line {} column {}",
                err.line(),
                err.column()
            ),
        )
    })?;
    Ok(crate::template::filters::json_value(go_numbers(json)))
}

/// Every number as a float, as Go's `encoding/json` decodes into `interface{}` (ESO's
/// `fromJson` and `fromYaml` values): printed through `toString` it is Go's float64 (`5432`,
/// `1.5`, `1e+06`), and `printf "%d"` of it is Go's `%!d(float64=...)`.
pub(crate) fn go_numbers(json: serde_json::Value) -> serde_json::Value {
    use serde_json::Value as J;
    match json {
        J::Number(n) => n
            .as_f64()
            .and_then(serde_json::Number::from_f64)
            .map_or(J::Number(n), J::Number),
        J::Array(items) => J::Array(items.into_iter().map(go_numbers).collect()),
        J::Object(map) => J::Object(map.into_iter().map(|(k, v)| (k, go_numbers(v))).collect()),
        other => other,
    }
}

/// Go's `index X K1 K2 ...`: map keys and list positions. A missing map key is an error here
/// (Go returns the zero value, which renders as nothing).
fn index(_: &State, args: &[Value]) -> Result<Value, Error> {
    let mut current = arg("index", args, 0)?.clone();
    for key in &args[1..] {
        current = match current.kind() {
            ValueKind::Map => {
                let k = Value::from(strval(key));
                let item = current.get_item(&k).unwrap_or_default();
                if item.is_undefined() {
                    return Err(fail("index", "the map has no such key"));
                }
                item
            }
            ValueKind::Seq => {
                let i = int_of(key);
                let len = current.len().unwrap_or(0) as i64;
                if i < 0 || i >= len {
                    return Err(fail("index", "index out of range"));
                }
                current.get_item(&Value::from(i)).unwrap_or_default()
            }
            ValueKind::String | ValueKind::Bytes => {
                let bytes = super::string_bytes(&current);
                let i = int_of(key);
                if i < 0 || i as usize >= bytes.len() {
                    return Err(fail("index", "index out of range"));
                }
                Value::from(i64::from(bytes[i as usize]))
            }
            ValueKind::Undefined => return Err(fail("index", "the value is undefined")),
            kind => {
                return Err(fail(
                    "index",
                    format!("cannot index a value of type {}", super::go_kind(kind)),
                ));
            }
        };
    }
    Ok(current)
}

fn len(_: &State, args: &[Value]) -> Result<Value, Error> {
    arity("len", args, 1, 1)?;
    let v = &args[0];
    let n = match v.kind() {
        ValueKind::String | ValueKind::Bytes => super::string_bytes(v).len(),
        ValueKind::Seq | ValueKind::Map => v.len().unwrap_or(0),
        kind => {
            return Err(fail(
                "len",
                format!("len of a value of type {}", super::go_kind(kind)),
            ));
        }
    };
    Ok(Value::from(n))
}

fn compare(
    name: &'static str,
    args: &[Value],
    test: impl Fn(std::cmp::Ordering) -> bool,
) -> Result<Value, Error> {
    arity(name, args, 2, 2)?;
    let (a, b) = (&args[0], &args[1]);
    let ordering = match (a.kind(), b.kind()) {
        (ValueKind::Number, ValueKind::Number)
        | (ValueKind::String, ValueKind::String)
        | (ValueKind::Bool, ValueKind::Bool)
            if name == "ne" || a.kind() != ValueKind::Bool =>
        {
            a.partial_cmp(b)
                .ok_or_else(|| fail(name, "the values cannot be compared"))?
        }
        _ => return Err(fail(name, "incompatible types for comparison")),
    };
    Ok(Value::from(test(ordering)))
}

fn go_reflect_kind(v: &Value) -> &'static str {
    match v.kind() {
        ValueKind::String | ValueKind::Bytes => "string",
        ValueKind::Number if gofmt::is_float(v) => "float64",
        ValueKind::Number => "int",
        ValueKind::Bool => "bool",
        ValueKind::Seq | ValueKind::Iterable => "slice",
        ValueKind::Map => "map",
        ValueKind::None | ValueKind::Undefined => "invalid",
        _ => "struct",
    }
}
