//! ESO's template functions under their ESO and sprig names, with sprig's semantics: the Go
//! template functions ESO users write (`printf`, `quote`, `trimPrefix`, `regexReplaceAll`,
//! `now | date "2006-01-02"`, `dict`, `htpasswd`, ...), next to the Jinja built-ins.
//!
//! Each function is registered twice:
//!
//! - as a **function** taking Go's argument order: `trimPrefix("v", tag)` is Go's
//!   `trimPrefix "v" .tag` (this is what `kuvert migrate` writes);
//! - as a **filter** where the piped value is Go's *last* argument, as in a Go pipeline:
//!   `tag | trimPrefix("v")` is Go's `.tag | trimPrefix "v"`. A name that is already a Jinja
//!   built-in filter (`default`, `join`, `indent`, `replace`, `first`, ...) keeps Jinja's filter;
//!   the function of that name has sprig's semantics (`default("x", v)`, `indent(4, v)`).
//!
//! Where sprig silences an error into its output (`b64dec` returning the decoder's message,
//! `regexMatch` on a bad pattern returning false, `fromJson` returning nothing), kuvert fails with
//! a message that names the function and never the value: a Secret holding an error text is a
//! silent corruption (documented in `docs/migrating-from-eso.md`). Functions that draw random
//! numbers (`randAlphaNum`, `uuidv4`, `genPrivateKey`, ...) are not provided: a template runs on
//! every refresh, so they would rewrite the Secret each time (use a generator instead).

mod collections;
pub(crate) mod gofmt;
pub(crate) mod goyaml;
mod strings;
pub(crate) mod time;

#[cfg(test)]
mod tests;

pub(crate) use collections::go_numbers;
use minijinja::value::{Rest, Value, ValueKind};
use minijinja::{Environment, Error, State};

use super::error::filter_error;

/// The root-context key holding the render's clock (not an identifier, so no template can
/// shadow or read it except through `now`).
pub(crate) const NOW_KEY: &str = "kuvert:now";

/// A sprig/ESO function: Go's argument order.
type Func = fn(&State, &[Value]) -> Result<Value, Error>;

/// Jinja built-in filters (and kuvert's own filters) whose names sprig also uses: these names
/// stay Jinja's as filters, and are sprig's as functions.
const KEEP_FILTERS: &[&str] = &[
    "default", "join", "indent", "replace", "upper", "lower", "trim", "title", "first", "last",
    "list", "split", "min", "max", "round", "int", "float", "slice", "b64enc", "b64dec",
];

/// Adds every function to `env`, as a function (Go's order) and as a filter (piped value last).
pub(super) fn register(env: &mut Environment<'static>) {
    let tables: [&[(&'static str, Func)]; 2] = [strings::FUNCTIONS, collections::FUNCTIONS];
    for &(name, f) in tables.into_iter().flatten() {
        add(env, name, f);
    }
    for &(name, f) in TIME_FUNCTIONS {
        add(env, name, f);
    }
}

/// Adds one Go-ordered function as a function and, unless a Jinja filter has the name, a filter.
pub(super) fn add(env: &mut Environment<'static>, name: &'static str, f: Func) {
    env.add_function(name, move |state: &State, args: Rest<Value>| {
        charge_inputs(state, &args)?;
        f(state, &args)
    });
    if !KEEP_FILTERS.contains(&name) {
        env.add_filter(
            name,
            move |state: &State, piped: Value, args: Rest<Value>| {
                let mut all = args.0;
                all.push(piped);
                charge_inputs(state, &all)?;
                f(state, &all)
            },
        );
    }
}

/// Bytes of input a function may walk for one fuel (one instruction), as minijinja charges its
/// own filters (64 bytes a fuel).
const BYTES_PER_FUEL: u64 = 64;

/// Charges the render's fuel for the input a function walks. minijinja charges a function's
/// result, never its work: without this, a loop calling `sha256sum` or `regexReplaceAll` on a
/// 1 MiB value ran for minutes on the fuel of a few instructions per iteration.
pub(crate) fn charge_inputs(state: &State, args: &[Value]) -> Result<(), Error> {
    let bytes: usize = args
        .iter()
        .map(|a| match a.kind() {
            ValueKind::String => a.as_str().map_or(0, str::len),
            ValueKind::Bytes => a.as_bytes().map_or(0, <[u8]>::len),
            ValueKind::Seq | ValueKind::Map => a.len().unwrap_or(0).saturating_mul(16),
            _ => 0,
        })
        .sum();
    state.consume_fuel(bytes as u64 / BYTES_PER_FUEL)
}

/// Fails unless a result of `len` bytes fits in a rendered value: checked by functions whose
/// result can be far larger than their input (`indent`, `replace`, `printf`, ...) *before* they
/// build it, since minijinja only charges a result once it exists.
pub(crate) fn fits(name: &'static str, len: usize) -> Result<(), Error> {
    if len > super::MAX_OUTPUT_BYTES {
        return Err(fail(name, "the result would exceed the output limit"));
    }
    Ok(())
}

const TIME_FUNCTIONS: &[(&str, Func)] = &[
    ("now", time::now),
    ("date", time::date),
    ("dateInZone", time::date_in_zone),
    ("date_in_zone", time::date_in_zone),
    ("htmlDate", time::html_date),
    ("unixEpoch", time::unix_epoch),
    ("dateModify", |s, a| time::date_modify(s, a, false)),
    ("date_modify", |s, a| time::date_modify(s, a, false)),
    ("mustDateModify", |s, a| time::date_modify(s, a, true)),
    ("duration", time::duration),
];

/// A failure of function `name`; `reason` must not contain a value.
pub(crate) fn fail(name: &'static str, reason: impl Into<std::borrow::Cow<'static, str>>) -> Error {
    filter_error(name, reason)
}

/// Argument `i` of `name`, or an error saying how many it takes.
pub(crate) fn arg<'a>(name: &'static str, args: &'a [Value], i: usize) -> Result<&'a Value, Error> {
    args.get(i).ok_or_else(|| {
        fail(
            name,
            format!(
                "expects {} argument{}, got {}",
                i + 1,
                if i == 0 { "" } else { "s" },
                args.len()
            ),
        )
    })
}

/// Fails unless `args` has between `min` and `max` arguments.
pub(crate) fn arity(
    name: &'static str,
    args: &[Value],
    min: usize,
    max: usize,
) -> Result<(), Error> {
    if args.len() < min || args.len() > max {
        let expected = if min == max {
            min.to_string()
        } else {
            format!("{min} to {max}")
        };
        return Err(fail(
            name,
            format!("expects {expected} arguments, got {}", args.len()),
        ));
    }
    Ok(())
}

/// sprig's `strval` (what `toString` returns): strings as they are, anything else as Go's `%v`.
pub(crate) fn strval(value: &Value) -> String {
    match value.kind() {
        ValueKind::String => value.as_str().unwrap_or_default().to_string(),
        ValueKind::Bytes => String::from_utf8_lossy(value.as_bytes().unwrap_or_default()).into(),
        _ => gofmt::v(value),
    }
}

/// The bytes of a string or bytes value (other values: their `strval`).
pub(crate) fn string_bytes(value: &Value) -> Vec<u8> {
    match value.kind() {
        ValueKind::String => value.as_str().unwrap_or_default().as_bytes().to_vec(),
        ValueKind::Bytes => value.as_bytes().unwrap_or_default().to_vec(),
        _ => strval(value).into_bytes(),
    }
}

/// sprig's `toInt64` (spf13/cast): numbers truncated, strings parsed (`0x` hex too), booleans
/// 1/0, anything unparseable 0.
pub(crate) fn int_of(value: &Value) -> i64 {
    match value.kind() {
        ValueKind::Number if value.is_integer() => value.as_i64().unwrap_or(0),
        ValueKind::Number => f64::try_from(value.clone()).map_or(0, |f| f as i64),
        ValueKind::Bool => i64::from(value.is_true()),
        ValueKind::String | ValueKind::Bytes => parse_go_int(strval(value).trim()).unwrap_or(0),
        _ => 0,
    }
}

/// Go's `strconv.ParseInt(s, 0, 64)` (as spf13/cast calls it, `.0` suffixes dropped).
fn parse_go_int(text: &str) -> Option<i64> {
    let text = text.strip_suffix(".0").unwrap_or(text);
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let digits = digits.replace('_', "");
    let parsed = if let Some(hex) = digits.strip_prefix("0x").or(digits.strip_prefix("0X")) {
        i64::from_str_radix(hex, 16).ok()?
    } else if let Some(bin) = digits.strip_prefix("0b").or(digits.strip_prefix("0B")) {
        i64::from_str_radix(bin, 2).ok()?
    } else if let Some(oct) = digits.strip_prefix("0o").or(digits.strip_prefix("0O")) {
        i64::from_str_radix(oct, 8).ok()?
    } else if digits.len() > 1 && digits.starts_with('0') {
        i64::from_str_radix(&digits[1..], 8).ok()?
    } else {
        digits.parse().ok()?
    };
    Some(if negative { -parsed } else { parsed })
}

/// sprig's `empty`: nil, false, 0, "" and empty lists and maps are empty.
pub(crate) fn is_empty(value: &Value) -> bool {
    match value.kind() {
        ValueKind::Undefined | ValueKind::None => true,
        ValueKind::Bool => !value.is_true(),
        ValueKind::Number => {
            if value.is_integer() {
                value.as_i64() == Some(0)
            } else {
                f64::try_from(value.clone()).is_ok_and(|f| f == 0.0)
            }
        }
        ValueKind::String | ValueKind::Bytes | ValueKind::Seq | ValueKind::Map => {
            value.len() == Some(0)
        }
        _ => value.downcast_object_ref::<time::GoTime>().is_none() && !value.is_true(),
    }
}

/// The items of a list (or of any iterable); a nil value is an empty list.
pub(crate) fn items(name: &'static str, value: &Value) -> Result<Vec<Value>, Error> {
    match value.kind() {
        ValueKind::None | ValueKind::Undefined => Ok(Vec::new()),
        ValueKind::Seq | ValueKind::Iterable => Ok(value
            .try_iter()
            .map_err(|_| fail(name, "the list cannot be iterated"))?
            .collect()),
        kind => Err(fail(name, format!("expects a list, got {}", go_kind(kind)))),
    }
}

/// A value kind as Go's reflection names it, for error messages.
pub(crate) fn go_kind(kind: ValueKind) -> &'static str {
    match kind {
        ValueKind::String | ValueKind::Bytes => "string",
        ValueKind::Number => "number",
        ValueKind::Bool => "bool",
        ValueKind::Map => "map",
        ValueKind::Seq | ValueKind::Iterable => "list",
        ValueKind::None | ValueKind::Undefined => "nil",
        _ => "object",
    }
}
