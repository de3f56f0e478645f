//! Go's formatting, as ESO's templates print values: `fmt`'s `%v` (what `toString`, `print` and
//! a bare `{{ . }}` write), `%q` (`quote`), `printf`'s verbs, and `encoding/json` (`toJson`).
//!
//! Values are minijinja values standing for the Go values ESO's templates see: strings (and
//! bytes, which are Go strings there), integers (`int`), floats (`float64`, e.g. from
//! `fromJson`), booleans, nil, lists (`[]interface {}`), maps (`map[string]interface {}`) and
//! times (`time.Time`, from `now`).

use std::fmt::Write as _;

use minijinja::value::{Value, ValueKind};

use super::time::GoTime;

/// Go's `%v` of a value (`fmt.Sprint`).
pub(super) fn v(value: &Value) -> String {
    let mut out = String::new();
    write_v(&mut out, value, 0);
    out
}

fn write_v(out: &mut String, value: &Value, depth: usize) {
    if depth > 32 {
        out.push_str("...");
        return;
    }
    if let Some(t) = value.downcast_object_ref::<GoTime>() {
        out.push_str(&t.to_string());
        return;
    }
    match value.kind() {
        ValueKind::Undefined | ValueKind::None => out.push_str("<nil>"),
        ValueKind::Bool => out.push_str(if value.is_true() { "true" } else { "false" }),
        ValueKind::Number => out.push_str(&number_v(value)),
        ValueKind::String => out.push_str(value.as_str().unwrap_or_default()),
        ValueKind::Bytes => out.push_str(&String::from_utf8_lossy(
            value.as_bytes().unwrap_or_default(),
        )),
        ValueKind::Seq | ValueKind::Iterable => {
            out.push('[');
            if let Ok(items) = value.try_iter() {
                for (i, item) in items.enumerate() {
                    if i > 0 {
                        out.push(' ');
                    }
                    write_v(out, &item, depth + 1);
                }
            }
            out.push(']');
        }
        ValueKind::Map => {
            out.push_str("map[");
            for (i, (key, item)) in sorted_entries(value).into_iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                out.push_str(&key);
                out.push(':');
                write_v(out, &item, depth + 1);
            }
            out.push(']');
        }
        _ => out.push_str(&value.to_string()),
    }
}

/// A map's entries with string keys, sorted as Go prints and marshals maps.
pub(super) fn sorted_entries(value: &Value) -> Vec<(String, Value)> {
    let mut entries: Vec<(String, Value)> = value
        .try_iter()
        .map(|keys| {
            keys.map(|key| {
                let item = value.get_item(&key).unwrap_or_default();
                let key = key.as_str().map_or_else(|| v(&key), str::to_string);
                (key, item)
            })
            .collect()
        })
        .unwrap_or_default();
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    entries
}

fn number_v(value: &Value) -> String {
    if is_float(value) {
        float_v(f64::try_from(value.clone()).unwrap_or(f64::NAN))
    } else if let Some(i) = value.as_i64() {
        i.to_string()
    } else {
        value.to_string()
    }
}

/// A float value (as opposed to an integer).
pub(super) fn is_float(value: &Value) -> bool {
    value.is_number() && !value.is_integer()
}

/// Go's `%v` of a float64: the shortest representation, in `%e` form when the exponent is below
/// -4 or at least 6 (e.g. `1e+06`, `5432`, `0.5`).
pub(super) fn float_v(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "+Inf" } else { "-Inf" }.into();
    }
    let (negative, digits, exp) = shortest_digits(f);
    let sign = if negative { "-" } else { "" };
    if !(-4..6).contains(&exp) {
        format!("{sign}{}", e_form(&digits, exp))
    } else {
        format!("{sign}{}", f_form(&digits, exp))
    }
}

/// The shortest decimal digits of |f| and the exponent of the first digit.
fn shortest_digits(f: f64) -> (bool, String, i32) {
    let text = format!("{:e}", f.abs());
    let (mantissa, exp) = text.split_once('e').unwrap_or((&text, "0"));
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let digits = digits.trim_end_matches('0');
    let digits = if digits.is_empty() { "0" } else { digits };
    (
        f.is_sign_negative() && f != 0.0,
        digits.to_string(),
        exp.parse().unwrap_or(0),
    )
}

fn e_form(digits: &str, exp: i32) -> String {
    let (first, rest) = digits.split_at(1);
    let mantissa = if rest.is_empty() {
        first.to_string()
    } else {
        format!("{first}.{rest}")
    };
    let sign = if exp < 0 { '-' } else { '+' };
    format!("{mantissa}e{sign}{:02}", exp.abs())
}

fn f_form(digits: &str, exp: i32) -> String {
    if exp < 0 {
        format!("0.{}{digits}", "0".repeat((-exp - 1) as usize))
    } else {
        let int_len = exp as usize + 1;
        if digits.len() <= int_len {
            format!("{digits}{}", "0".repeat(int_len - digits.len()))
        } else {
            format!("{}.{}", &digits[..int_len], &digits[int_len..])
        }
    }
}

/// Go's `strconv.Quote`: a double-quoted string with Go escapes.
pub(super) fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Go's type name of a value, as `printf` writes it in `%!verb(type=value)`.
pub(super) fn type_name(value: &Value) -> &'static str {
    if value.downcast_object_ref::<GoTime>().is_some() {
        return "time.Time";
    }
    match value.kind() {
        ValueKind::Undefined | ValueKind::None => "<nil>",
        ValueKind::Bool => "bool",
        ValueKind::Number if is_float(value) => "float64",
        ValueKind::Number => "int",
        ValueKind::String | ValueKind::Bytes => "string",
        ValueKind::Seq | ValueKind::Iterable => "[]interface {}",
        ValueKind::Map => "map[string]interface {}",
        _ => "interface {}",
    }
}

/// Go's `fmt.Sprint`: operands separated by a space when neither side is a string.
pub(super) fn sprint(args: &[Value]) -> String {
    let mut out = String::new();
    for (i, arg) in args.iter().enumerate() {
        let is_string = |v: &Value| matches!(v.kind(), ValueKind::String | ValueKind::Bytes);
        if i > 0 && !is_string(arg) && !is_string(&args[i - 1]) {
            out.push(' ');
        }
        out.push_str(&v(arg));
    }
    out
}

/// Go's `fmt.Sprintln`: operands always separated by a space, then a newline.
pub(super) fn sprintln(args: &[Value]) -> String {
    let mut text = args.iter().map(v).collect::<Vec<_>>().join(" ");
    text.push('\n');
    text
}

#[derive(Default)]
struct Spec {
    minus: bool,
    plus: bool,
    zero: bool,
    space: bool,
    sharp: bool,
    width: Option<usize>,
    precision: Option<usize>,
}

/// Go's `fmt.Sprintf` for the verbs templates use: `%v %s %d %q %x %X %o %b %c %t %f %F %e %E
/// %g %G %%`, with flags `- + # 0 space`, width and precision. Wrong types, missing and extra
/// arguments are written as Go writes them (`%!d(string=...)`, `%!s(MISSING)`, `%!(EXTRA ...)`).
///
/// `None` when the result would exceed the output limit: each width is capped at 2^20, but a
/// format of many wide verbs multiplies it.
pub(super) fn sprintf(format: &str, args: &[Value]) -> Option<String> {
    let mut out = String::new();
    let mut next = 0;
    let mut chars = format.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut spec = Spec::default();
        while let Some(&f) = chars.peek() {
            match f {
                '-' => spec.minus = true,
                '+' => spec.plus = true,
                '0' => spec.zero = true,
                ' ' => spec.space = true,
                '#' => spec.sharp = true,
                _ => break,
            }
            chars.next();
        }
        spec.width = read_number(&mut chars);
        if chars.peek() == Some(&'.') {
            chars.next();
            spec.precision = Some(read_number(&mut chars).unwrap_or(0));
        }
        let Some(verb) = chars.next() else {
            out.push_str("%!(NOVERB)");
            break;
        };
        if verb == '%' {
            out.push('%');
            continue;
        }
        let Some(arg) = args.get(next) else {
            let _ = write!(out, "%!{verb}(MISSING)");
            continue;
        };
        next += 1;
        // Bound what the verb can build before building it: a list pads every item.
        let grows = spec.width.unwrap_or(0)
            + if matches!(verb, 'f' | 'F' | 'e' | 'E') {
                spec.precision.unwrap_or(0)
            } else {
                0
            };
        let items = if arg.kind() == ValueKind::Seq {
            arg.len().unwrap_or(0).max(1)
        } else {
            1
        };
        if out.len() + grows.saturating_mul(items) > super::super::MAX_OUTPUT_BYTES {
            return None;
        }
        let padded = pad(&spec, format_one(verb, &spec, arg), verb);
        if out.len() + padded.len() > super::super::MAX_OUTPUT_BYTES {
            return None;
        }
        out.push_str(&padded);
    }
    if next < args.len() {
        out.push_str("%!(EXTRA ");
        let extra: Vec<String> = args[next..]
            .iter()
            .map(|a| format!("{}={}", type_name(a), v(a)))
            .collect();
        out.push_str(&extra.join(", "));
        out.push(')');
    }
    Some(out)
}

fn read_number(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) -> Option<usize> {
    let mut n: Option<usize> = None;
    while let Some(d) = chars.peek().and_then(|c| c.to_digit(10)) {
        n = Some(
            n.unwrap_or(0)
                .saturating_mul(10)
                .saturating_add(d as usize)
                .min(1 << 20),
        );
        chars.next();
    }
    n
}

enum Body {
    Text(String),
    /// A number whose padding may use zeros after its sign.
    Number(String),
}

fn pad(spec: &Spec, body: Body, _verb: char) -> String {
    let (text, numeric) = match body {
        Body::Text(t) => (t, false),
        Body::Number(t) => (t, true),
    };
    let width = spec.width.unwrap_or(0);
    let len = text.chars().count();
    if len >= width {
        return text;
    }
    let fill = width - len;
    if spec.minus {
        format!("{text}{}", " ".repeat(fill))
    } else if spec.zero && numeric {
        let (sign, digits) = match text.strip_prefix(['-', '+', ' ']) {
            Some(rest) => (&text[..1], rest),
            None => ("", text.as_str()),
        };
        format!("{sign}{}{digits}", "0".repeat(fill))
    } else if spec.zero {
        format!("{}{text}", "0".repeat(fill))
    } else {
        format!("{}{text}", " ".repeat(fill))
    }
}

fn bad_verb(verb: char, arg: &Value) -> Body {
    Body::Text(match arg.kind() {
        ValueKind::None | ValueKind::Undefined => format!("%!{verb}(<nil>)"),
        _ => format!("%!{verb}({}={})", type_name(arg), v(arg)),
    })
}

fn signed(spec: &Spec, negative: bool, digits: String) -> String {
    let sign = if negative {
        "-"
    } else if spec.plus {
        "+"
    } else if spec.space {
        " "
    } else {
        ""
    };
    format!("{sign}{digits}")
}

fn format_one(verb: char, spec: &Spec, arg: &Value) -> Body {
    // Go applies the verb to each element of a list: `%d` of [1 2] is `[1 2]`.
    if arg.kind() == ValueKind::Seq {
        let items: Vec<String> = arg
            .try_iter()
            .map(|it| {
                it.map(|item| match format_one(verb, spec, &item) {
                    Body::Text(t) | Body::Number(t) => pad(spec, Body::Text(t), verb),
                })
                .collect()
            })
            .unwrap_or_default();
        return Body::Text(format!("[{}]", items.join(" ")));
    }
    let is_text = matches!(arg.kind(), ValueKind::String | ValueKind::Bytes);
    let is_int = arg.kind() == ValueKind::Number && !is_float(arg);
    let is_float = is_float(arg);
    let text = || super::strval(arg);
    match verb {
        'v' if is_int || is_float => Body::Number(signed(
            spec,
            number_v(arg).starts_with('-'),
            number_v(arg).trim_start_matches('-').to_string(),
        )),
        'v' => Body::Text(truncate(v(arg), spec.precision)),
        's' if is_text => Body::Text(truncate(text(), spec.precision)),
        's' if matches!(arg.kind(), ValueKind::Seq | ValueKind::Map) => Body::Text(v(arg)),
        's' if arg.downcast_object_ref::<GoTime>().is_some() => Body::Text(v(arg)),
        'q' if is_text => Body::Text(quote(&truncate(text(), spec.precision))),
        'q' if is_int => Body::Text(format!(
            "'{}'",
            char::from_u32(arg.as_i64().unwrap_or(0) as u32).unwrap_or('\u{fffd}')
        )),
        'd' | 'x' | 'X' | 'o' | 'b' | 'c' if is_int => {
            let i = arg.as_i64().unwrap_or(0);
            let magnitude = i.unsigned_abs();
            let digits = match verb {
                'd' => magnitude.to_string(),
                'x' => format!("{}{magnitude:x}", if spec.sharp { "0x" } else { "" }),
                'X' => format!("{}{magnitude:X}", if spec.sharp { "0X" } else { "" }),
                'o' => format!("{}{magnitude:o}", if spec.sharp { "0" } else { "" }),
                'b' => format!("{magnitude:b}"),
                _ => return Body::Text(char::from_u32(i as u32).unwrap_or('\u{fffd}').into()),
            };
            Body::Number(signed(spec, i < 0, digits))
        }
        'x' | 'X' if is_text => {
            let bytes = super::string_bytes(arg);
            let hex: String = bytes
                .iter()
                .map(|b| {
                    if verb == 'x' {
                        format!("{b:02x}")
                    } else {
                        format!("{b:02X}")
                    }
                })
                .collect();
            Body::Text(hex)
        }
        't' if arg.kind() == ValueKind::Bool => Body::Text(v(arg)),
        'f' | 'F' | 'e' | 'E' | 'g' | 'G' if is_float => {
            let f = f64::try_from(arg.clone()).unwrap_or(f64::NAN);
            let digits = match verb {
                'f' | 'F' => fixed_precision(f.abs(), spec.precision.unwrap_or(6)),
                'e' | 'E' => {
                    let s = exp_precision(f.abs(), spec.precision.unwrap_or(6));
                    if verb == 'E' { s.to_uppercase() } else { s }
                }
                _ => float_v(f.abs()),
            };
            Body::Number(signed(spec, f.is_sign_negative() && f != 0.0, digits))
        }
        _ => bad_verb(verb, arg),
    }
}

/// Digits after which an f64's exact decimal expansion has only zeros (its smallest
/// subnormal, 2^-1074, has 1074). Rust's formatter panics on a precision over 65,535, so
/// longer precisions are formatted to this many digits and padded with zeros: the same text.
const EXACT_DIGITS: usize = 1100;

/// `f` with `precision` digits after the point (Go's `%.Nf`).
fn fixed_precision(f: f64, precision: usize) -> String {
    let mut text = format!("{:.*}", precision.min(EXACT_DIGITS), f);
    text.extend(std::iter::repeat_n(
        '0',
        precision.saturating_sub(EXACT_DIGITS),
    ));
    text
}

fn exp_precision(f: f64, precision: usize) -> String {
    let text = format!("{:.*e}", precision.min(EXACT_DIGITS), f);
    let (mantissa, exp) = text.split_once('e').unwrap_or((&text, "0"));
    let zeros = "0".repeat(precision.saturating_sub(EXACT_DIGITS));
    let mantissa = format!("{mantissa}{zeros}");
    let exp: i32 = exp.parse().unwrap_or(0);
    let sign = if exp < 0 { '-' } else { '+' };
    format!("{mantissa}e{sign}{:02}", exp.abs())
}

fn truncate(s: String, precision: Option<usize>) -> String {
    match precision {
        Some(p) => s.chars().take(p).collect(),
        None => s,
    }
}

/// Go's `encoding/json` marshalling of a value: compact, map keys sorted, and with `html` the
/// characters `<`, `>`, `&` (and U+2028, U+2029) written as `\u003c`, `\u003e`, `\u0026`, as
/// `json.Marshal` does (sprig's `toJson`); `indent` gives `json.MarshalIndent(v, "", indent)`.
pub(super) fn json(
    value: &Value,
    html: bool,
    indent: Option<&str>,
) -> Result<String, &'static str> {
    let mut out = String::new();
    write_json(&mut out, value, html, indent, 0)?;
    Ok(out)
}

fn newline(out: &mut String, indent: Option<&str>, depth: usize) {
    if let Some(unit) = indent {
        out.push('\n');
        for _ in 0..depth {
            out.push_str(unit);
        }
    }
}

fn write_json(
    out: &mut String,
    value: &Value,
    html: bool,
    indent: Option<&str>,
    depth: usize,
) -> Result<(), &'static str> {
    if depth > 64 {
        return Err("the value is nested too deeply");
    }
    if let Some(t) = value.downcast_object_ref::<GoTime>() {
        json_string(out, &t.rfc3339_nano(), html);
        return Ok(());
    }
    match value.kind() {
        ValueKind::Undefined | ValueKind::None => out.push_str("null"),
        ValueKind::Bool => out.push_str(if value.is_true() { "true" } else { "false" }),
        ValueKind::Number if is_float(value) => {
            let f = f64::try_from(value.clone()).unwrap_or(f64::NAN);
            if !f.is_finite() {
                return Err("NaN and infinity cannot be written as JSON");
            }
            out.push_str(&json_float(f));
        }
        ValueKind::Number => out.push_str(&number_v(value)),
        ValueKind::String => json_string(out, value.as_str().unwrap_or_default(), html),
        ValueKind::Bytes => json_string(
            out,
            &String::from_utf8_lossy(value.as_bytes().unwrap_or_default()),
            html,
        ),
        ValueKind::Seq | ValueKind::Iterable => {
            let items: Vec<Value> = value
                .try_iter()
                .map_err(|_| "a list cannot be iterated")?
                .collect();
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                newline(out, indent, depth + 1);
                write_json(out, item, html, indent, depth + 1)?;
            }
            if !items.is_empty() {
                newline(out, indent, depth);
            }
            out.push(']');
        }
        ValueKind::Map => {
            let entries = sorted_entries(value);
            out.push('{');
            for (i, (key, item)) in entries.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                newline(out, indent, depth + 1);
                json_string(out, key, html);
                out.push(':');
                if indent.is_some() {
                    out.push(' ');
                }
                write_json(out, item, html, indent, depth + 1)?;
            }
            if !entries.is_empty() {
                newline(out, indent, depth);
            }
            out.push('}');
        }
        _ => return Err("a value of this type cannot be written as JSON"),
    }
    Ok(())
}

/// encoding/json's float format: `%f`-style for 1e-6 <= |f| < 1e21, else `%e` with a short
/// exponent (`1e-07` becomes `1e-7`).
fn json_float(f: f64) -> String {
    let abs = f.abs();
    if abs == 0.0 || (1e-6..1e21).contains(&abs) {
        let (negative, digits, exp) = shortest_digits(f);
        let sign = if negative { "-" } else { "" };
        format!("{sign}{}", f_form(&digits, exp))
    } else {
        let (negative, digits, exp) = shortest_digits(f);
        let sign = if negative { "-" } else { "" };
        let text = e_form(&digits, exp);
        let text = text.replacen("e-0", "e-", 1).replacen("e+0", "e+", 1);
        format!("{sign}{text}")
    }
}

fn json_string(out: &mut String, s: &str, html: bool) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '<' | '>' | '&' if html => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            '\u{2028}' | '\u{2029}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}
