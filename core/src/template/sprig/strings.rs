//! sprig's string, regex, encoding, hash, path and number functions, and Go's `printf`/`print`.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use minijinja::value::{Value, ValueKind};
use minijinja::{Error, State};
use sha2::Digest as _;

use super::{Func, arg, arity, fail, fits, gofmt, int_of, items, string_bytes, strval};

pub(super) const FUNCTIONS: &[(&str, Func)] = &[
    ("toString", to_string),
    ("printf", printf),
    ("print", |_, a| Ok(Value::from(gofmt::sprint(a)))),
    ("println", |_, a| Ok(Value::from(gofmt::sprintln(a)))),
    ("quote", quote),
    ("squote", squote),
    ("cat", cat),
    ("hasPrefix", |_, a| {
        two_str("hasPrefix", a, |p, s| Value::from(s.starts_with(p)))
    }),
    ("hasSuffix", |_, a| {
        two_str("hasSuffix", a, |p, s| Value::from(s.ends_with(p)))
    }),
    ("contains", |_, a| {
        two_str("contains", a, |p, s| Value::from(s.contains(p)))
    }),
    ("trimPrefix", |_, a| {
        two_str("trimPrefix", a, |p, s| {
            Value::from(s.strip_prefix(p).unwrap_or(s))
        })
    }),
    ("trimSuffix", |_, a| {
        two_str("trimSuffix", a, |p, s| {
            Value::from(s.strip_suffix(p).unwrap_or(s))
        })
    }),
    ("trimAll", trim_all),
    ("trimall", trim_all),
    ("trim", |_, a| one_str("trim", a, |s| s.trim().to_string())),
    ("upper", |_, a| one_str("upper", a, str::to_uppercase)),
    ("lower", |_, a| one_str("lower", a, str::to_lowercase)),
    ("title", |_, a| one_str("title", a, title)),
    ("nospace", |_, a| {
        one_str("nospace", a, |s| {
            s.chars().filter(|c| !c.is_whitespace()).collect()
        })
    }),
    ("repeat", repeat),
    ("substr", substr),
    ("trunc", trunc),
    ("replace", replace),
    ("indent", |_, a| indent("indent", a, false)),
    ("nindent", |_, a| indent("nindent", a, true)),
    ("split", split),
    ("splitList", split_list),
    ("splitn", splitn),
    ("join", join),
    ("regexMatch", |_, a| regex_match("regexMatch", a)),
    ("mustRegexMatch", |_, a| regex_match("mustRegexMatch", a)),
    ("regexFind", |_, a| regex_find("regexFind", a)),
    ("mustRegexFind", |_, a| regex_find("mustRegexFind", a)),
    ("regexFindAll", |_, a| regex_find_all("regexFindAll", a)),
    ("mustRegexFindAll", |_, a| {
        regex_find_all("mustRegexFindAll", a)
    }),
    ("regexReplaceAll", |_, a| {
        regex_replace("regexReplaceAll", a, false)
    }),
    ("mustRegexReplaceAll", |_, a| {
        regex_replace("mustRegexReplaceAll", a, false)
    }),
    ("regexReplaceAllLiteral", |_, a| {
        regex_replace("regexReplaceAllLiteral", a, true)
    }),
    ("mustRegexReplaceAllLiteral", |_, a| {
        regex_replace("mustRegexReplaceAllLiteral", a, true)
    }),
    ("regexSplit", |_, a| regex_split("regexSplit", a)),
    ("mustRegexSplit", |_, a| regex_split("mustRegexSplit", a)),
    ("regexQuoteMeta", |_, a| {
        one_str("regexQuoteMeta", a, regex::escape)
    }),
    ("b64enc", |_, a| {
        one_bytes("b64enc", a, |b| Ok(Value::from(STANDARD.encode(b))))
    }),
    ("b64dec", b64dec),
    ("b32enc", |_, a| {
        one_bytes("b32enc", a, |b| Ok(Value::from(base32_encode(b))))
    }),
    ("b32dec", b32dec),
    ("hexdec", hexdec),
    ("sha1sum", |_, a| {
        one_bytes("sha1sum", a, |b| Ok(Value::from(hex(&sha1_digest(b)))))
    }),
    ("sha256sum", |_, a| {
        one_bytes("sha256sum", a, |b| {
            Ok(Value::from(hex(&sha2::Sha256::digest(b))))
        })
    }),
    ("sha512sum", |_, a| {
        one_bytes("sha512sum", a, |b| {
            Ok(Value::from(hex(&sha2::Sha512::digest(b))))
        })
    }),
    ("adler32sum", |_, a| {
        one_bytes("adler32sum", a, |b| Ok(Value::from(adler32(b).to_string())))
    }),
    ("bcrypt", |s, a| {
        arity("bcrypt", a, 1, 1)?;
        Ok(Value::from(bcrypt(s, "bcrypt", &string_bytes(&a[0]))?))
    }),
    ("htpasswd", htpasswd),
    ("base", |_, a| one_str("base", a, path_base)),
    ("dir", |_, a| one_str("dir", a, path_dir)),
    ("clean", |_, a| one_str("clean", a, path_clean)),
    ("ext", |_, a| one_str("ext", a, path_ext)),
    ("isAbs", |_, a| {
        arity("isAbs", a, 1, 1)?;
        Ok(Value::from(strval(&a[0]).starts_with('/')))
    }),
    ("atoi", |_, a| {
        arity("atoi", a, 1, 1)?;
        Ok(Value::from(strval(&a[0]).parse::<i64>().unwrap_or(0)))
    }),
    ("int", |_, a| number("int", a)),
    ("int64", |_, a| number("int64", a)),
    ("float64", float64),
    ("add", |_, a| {
        Ok(Value::from(
            a.iter().map(int_of).fold(0i64, i64::wrapping_add),
        ))
    }),
    ("add1", |_, a| {
        arity("add1", a, 1, 1)?;
        Ok(Value::from(int_of(&a[0]).wrapping_add(1)))
    }),
    ("sub", |_, a| {
        int_op("sub", a, |x, y| Some(x.wrapping_sub(y)))
    }),
    ("mul", |_, a| {
        Ok(Value::from(
            a.iter().map(int_of).fold(1i64, i64::wrapping_mul),
        ))
    }),
    ("div", |_, a| int_op("div", a, i64::checked_div)),
    ("mod", |_, a| int_op("mod", a, i64::checked_rem)),
    ("max", |_, a| extreme("max", a, true)),
    ("biggest", |_, a| extreme("biggest", a, true)),
    ("min", |_, a| extreme("min", a, false)),
    ("urlquery", |_, a| {
        Ok(Value::from(url_query(&gofmt::sprint(a))))
    }),
];

fn to_string(_: &State, args: &[Value]) -> Result<Value, Error> {
    arity("toString", args, 1, 1)?;
    // A binary value stays binary: it is a Go string of those bytes in ESO.
    if args[0].kind() == ValueKind::Bytes {
        return Ok(args[0].clone());
    }
    Ok(Value::from(strval(&args[0])))
}

fn printf(_: &State, args: &[Value]) -> Result<Value, Error> {
    let format = arg("printf", args, 0)?;
    if !matches!(format.kind(), ValueKind::String | ValueKind::Bytes) {
        return Err(fail("printf", "the format must be a string"));
    }
    gofmt::sprintf(&strval(format), &args[1..])
        .map(Value::from)
        .ok_or_else(|| fail("printf", "the result would exceed the output limit"))
}

fn is_nil(v: &Value) -> bool {
    matches!(v.kind(), ValueKind::None | ValueKind::Undefined)
}

fn quote(_: &State, args: &[Value]) -> Result<Value, Error> {
    let parts: Vec<String> = args
        .iter()
        .filter(|v| !is_nil(v))
        .map(|v| gofmt::quote(&strval(v)))
        .collect();
    Ok(Value::from(parts.join(" ")))
}

fn squote(_: &State, args: &[Value]) -> Result<Value, Error> {
    let parts: Vec<String> = args
        .iter()
        .filter(|v| !is_nil(v))
        .map(|v| format!("'{}'", gofmt::v(v)))
        .collect();
    Ok(Value::from(parts.join(" ")))
}

fn cat(_: &State, args: &[Value]) -> Result<Value, Error> {
    let parts: Vec<String> = args.iter().filter(|v| !is_nil(v)).map(strval).collect();
    Ok(Value::from(parts.join(" ")))
}

/// Go's functions take strings: a list or map where a string is expected is an error, as text
/// /template reports it.
fn text(name: &'static str, value: &Value) -> Result<String, Error> {
    match value.kind() {
        ValueKind::String | ValueKind::Bytes | ValueKind::Number | ValueKind::Bool => {
            Ok(strval(value))
        }
        ValueKind::Undefined => Err(fail(name, "an argument is undefined")),
        kind => Err(fail(
            name,
            format!("expects a string, got {}", super::go_kind(kind)),
        )),
    }
}

fn one_str(name: &'static str, args: &[Value], f: impl Fn(&str) -> String) -> Result<Value, Error> {
    arity(name, args, 1, 1)?;
    Ok(Value::from(f(&text(name, &args[0])?)))
}

fn two_str(
    name: &'static str,
    args: &[Value],
    f: impl Fn(&str, &str) -> Value,
) -> Result<Value, Error> {
    arity(name, args, 2, 2)?;
    Ok(f(&text(name, &args[0])?, &text(name, &args[1])?))
}

fn one_bytes(
    name: &'static str,
    args: &[Value],
    f: impl Fn(&[u8]) -> Result<Value, Error>,
) -> Result<Value, Error> {
    arity(name, args, 1, 1)?;
    if args[0].kind() == ValueKind::Undefined {
        return Err(fail(name, "the input is undefined"));
    }
    f(&string_bytes(&args[0]))
}

fn trim_all(_: &State, args: &[Value]) -> Result<Value, Error> {
    two_str("trimAll", args, |cutset, s| {
        Value::from(s.trim_matches(|c| cutset.contains(c)))
    })
}

/// Go's `strings.Title`: the first letter of each word upper-cased.
fn title(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut previous: Option<char> = None;
    for c in s.chars() {
        let separator = match previous {
            None => true,
            Some(p) if p.is_ascii() => !(p.is_ascii_alphanumeric() || p == '_'),
            Some(p) => p.is_whitespace(),
        };
        if separator {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        previous = Some(c);
    }
    out
}

fn repeat(_: &State, args: &[Value]) -> Result<Value, Error> {
    arity("repeat", args, 2, 2)?;
    let count = int_of(&args[0]);
    let s = text("repeat", &args[1])?;
    if count < 0 {
        return Err(fail("repeat", "negative repeat count"));
    }
    fits("repeat", (count as usize).saturating_mul(s.len()))?;
    Ok(Value::from(s.repeat(count as usize)))
}

/// sprig's `substr START END S`: bytes START..END; a negative START is 0, a negative END (or
/// past the end) is the end.
fn substr(_: &State, args: &[Value]) -> Result<Value, Error> {
    arity("substr", args, 3, 3)?;
    let (start, end) = (int_of(&args[0]), int_of(&args[1]));
    let s = text("substr", &args[2])?;
    let b = s.as_bytes();
    let start = start.max(0) as usize;
    let end = if end < 0 || end as usize > b.len() {
        b.len()
    } else {
        end as usize
    };
    if start > end || start > b.len() {
        return Ok(Value::from(""));
    }
    Ok(Value::from(
        String::from_utf8_lossy(&b[start..end]).into_owned(),
    ))
}

/// sprig's `trunc N S`: the first N bytes; a negative N keeps the last -N.
fn trunc(_: &State, args: &[Value]) -> Result<Value, Error> {
    arity("trunc", args, 2, 2)?;
    let n = int_of(&args[0]);
    let s = text("trunc", &args[1])?;
    let b = s.as_bytes();
    let out = if n < 0 {
        let keep = n.unsigned_abs() as usize;
        if keep < b.len() {
            &b[b.len() - keep..]
        } else {
            b
        }
    } else if (n as usize) < b.len() {
        &b[..n as usize]
    } else {
        b
    };
    Ok(Value::from(String::from_utf8_lossy(out).into_owned()))
}

fn replace(_: &State, args: &[Value]) -> Result<Value, Error> {
    arity("replace", args, 3, 3)?;
    let (old, new) = (text("replace", &args[0])?, text("replace", &args[1])?);
    let s = text("replace", &args[2])?;
    let inserted = if old.is_empty() {
        s.chars().count() + 1
    } else {
        s.matches(old.as_str()).count()
    };
    fits(
        "replace",
        inserted.saturating_mul(new.len()).saturating_add(s.len()),
    )?;
    Ok(Value::from(go_replace_all(&s, &old, &new)))
}

/// Go's `strings.Replace(s, old, new, -1)`: an empty `old` inserts `new` around every character.
fn go_replace_all(s: &str, old: &str, new: &str) -> String {
    if old.is_empty() {
        let mut out = String::from(new);
        for c in s.chars() {
            out.push(c);
            out.push_str(new);
        }
        return out;
    }
    s.replace(old, new)
}

fn indent(name: &'static str, args: &[Value], leading_newline: bool) -> Result<Value, Error> {
    arity(name, args, 2, 2)?;
    let spaces = int_of(&args[0]).clamp(0, 1 << 16) as usize;
    let s = text(name, &args[1])?;
    let lines = s.matches('\n').count() + 1;
    fits(
        name,
        spaces.saturating_mul(lines).saturating_add(s.len() + 1),
    )?;
    let pad = " ".repeat(spaces);
    let body = format!("{pad}{}", s.replace('\n', &format!("\n{pad}")));
    Ok(Value::from(if leading_newline {
        format!("\n{body}")
    } else {
        body
    }))
}

fn split_parts(name: &'static str, sep: &str, s: &str, n: Option<i64>) -> Vec<String> {
    let _ = name;
    match n {
        Some(0) => Vec::new(),
        Some(n) if n > 0 => {
            if sep.is_empty() {
                let chars: Vec<String> = s.chars().map(String::from).collect();
                let n = n as usize;
                if chars.len() <= n {
                    return chars;
                }
                let mut out = chars[..n - 1].to_vec();
                out.push(chars[n - 1..].concat());
                return out;
            }
            s.splitn(n as usize, sep).map(String::from).collect()
        }
        _ if sep.is_empty() => s.chars().map(String::from).collect(),
        _ => s.split(sep).map(String::from).collect(),
    }
}

fn indexed_map(parts: Vec<String>) -> Value {
    Value::from(
        parts
            .into_iter()
            .enumerate()
            .map(|(i, p)| (format!("_{i}"), Value::from(p)))
            .collect::<std::collections::BTreeMap<_, _>>(),
    )
}

/// `split SEP S`: a map `_0`, `_1`, ... of the parts (sprig).
fn split(_: &State, args: &[Value]) -> Result<Value, Error> {
    arity("split", args, 2, 2)?;
    let (sep, s) = (text("split", &args[0])?, text("split", &args[1])?);
    Ok(indexed_map(split_parts("split", &sep, &s, None)))
}

fn splitn(_: &State, args: &[Value]) -> Result<Value, Error> {
    arity("splitn", args, 3, 3)?;
    let sep = text("splitn", &args[0])?;
    let n = int_of(&args[1]);
    let s = text("splitn", &args[2])?;
    Ok(indexed_map(split_parts("splitn", &sep, &s, Some(n))))
}

fn split_list(_: &State, args: &[Value]) -> Result<Value, Error> {
    arity("splitList", args, 2, 2)?;
    let (sep, s) = (text("splitList", &args[0])?, text("splitList", &args[1])?);
    Ok(Value::from(split_parts("splitList", &sep, &s, None)))
}

/// `join SEP LIST`: the items' `toString`, nil items skipped; a single value is a list of one.
fn join(_: &State, args: &[Value]) -> Result<Value, Error> {
    arity("join", args, 2, 2)?;
    let sep = text("join", &args[0])?;
    let list = match args[1].kind() {
        ValueKind::Seq | ValueKind::Iterable => items("join", &args[1])?,
        ValueKind::None | ValueKind::Undefined => Vec::new(),
        _ => vec![args[1].clone()],
    };
    let parts: Vec<String> = list.iter().filter(|v| !is_nil(v)).map(strval).collect();
    Ok(Value::from(parts.join(&sep)))
}

fn compile(name: &'static str, pattern: &str) -> Result<regex::Regex, Error> {
    regex::RegexBuilder::new(pattern)
        .size_limit(1 << 20)
        .build()
        .map_err(|err| match err {
            regex::Error::CompiledTooBig(_) => fail(name, "the regular expression is too large"),
            // The pattern is template text, not a secret: its parser message may be quoted.
            regex::Error::Syntax(msg) => fail(
                name,
                format!(
                    "invalid regular expression: {}",
                    msg.lines().last().unwrap_or("syntax error").trim()
                ),
            ),
            _ => fail(name, "invalid regular expression"),
        })
}

fn regex_match(name: &'static str, args: &[Value]) -> Result<Value, Error> {
    arity(name, args, 2, 2)?;
    let re = compile(name, &text(name, &args[0])?)?;
    Ok(Value::from(re.is_match(&text(name, &args[1])?)))
}

fn regex_find(name: &'static str, args: &[Value]) -> Result<Value, Error> {
    arity(name, args, 2, 2)?;
    let re = compile(name, &text(name, &args[0])?)?;
    let s = text(name, &args[1])?;
    Ok(Value::from(re.find(&s).map_or("", |m| m.as_str())))
}

fn regex_find_all(name: &'static str, args: &[Value]) -> Result<Value, Error> {
    arity(name, args, 3, 3)?;
    let re = compile(name, &text(name, &args[0])?)?;
    let s = text(name, &args[1])?;
    let n = int_of(&args[2]);
    let found = re.find_iter(&s).map(|m| Value::from(m.as_str()));
    Ok(Value::from(if n < 0 {
        found.collect::<Vec<_>>()
    } else {
        found.take(n as usize).collect()
    }))
}

fn regex_replace(name: &'static str, args: &[Value], literal: bool) -> Result<Value, Error> {
    arity(name, args, 3, 3)?;
    let re = compile(name, &text(name, &args[0])?)?;
    let s = text(name, &args[1])?;
    let replacement = text(name, &args[2])?;
    // Each match becomes the replacement with every `$` reference expanded to at most the whole
    // match: bounding that before building keeps `$0$0$0...` over a large input from allocating
    // far past the output limit.
    let references = if literal {
        0
    } else {
        replacement.matches('$').count()
    };
    let mut bound = s.len();
    for m in re.find_iter(&s) {
        bound = bound.saturating_add(
            replacement
                .len()
                .saturating_add(references.saturating_mul(m.len())),
        );
        fits(name, bound)?;
    }
    let out = if literal {
        re.replace_all(&s, regex::NoExpand(&replacement))
    } else {
        re.replace_all(&s, replacement.as_str())
    };
    Ok(Value::from(out.into_owned()))
}

fn regex_split(name: &'static str, args: &[Value]) -> Result<Value, Error> {
    arity(name, args, 3, 3)?;
    let re = compile(name, &text(name, &args[0])?)?;
    let s = text(name, &args[1])?;
    let n = int_of(&args[2]);
    let parts: Vec<Value> = match n {
        0 => Vec::new(),
        n if n < 0 => re.split(&s).map(Value::from).collect(),
        n => re.splitn(&s, n as usize).map(Value::from).collect(),
    };
    Ok(Value::from(parts))
}

fn decoded(bytes: Vec<u8>) -> Value {
    match String::from_utf8(bytes) {
        Ok(text) => Value::from(text),
        Err(err) => Value::from_bytes(err.into_bytes()),
    }
}

fn b64dec(_: &State, args: &[Value]) -> Result<Value, Error> {
    one_bytes("b64dec", args, |b| {
        // Go's decoder skips line breaks; anything else invalid is an error here, where sprig
        // would return the decoder's message as the value.
        let clean: Vec<u8> = b
            .iter()
            .copied()
            .filter(|c| *c != b'\n' && *c != b'\r')
            .collect();
        STANDARD
            .decode(clean)
            .map(decoded)
            .map_err(|_| fail("b64dec", "invalid base64"))
    })
}

const BASE32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// RFC 4648 base32 with padding (Go's `base32.StdEncoding`).
fn base32_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    for chunk in bytes.chunks(5) {
        let mut buf = [0u8; 5];
        buf[..chunk.len()].copy_from_slice(chunk);
        let n = u64::from_be_bytes([0, 0, 0, buf[0], buf[1], buf[2], buf[3], buf[4]]);
        let symbols = (chunk.len() * 8).div_ceil(5);
        for i in 0..8 {
            if i < symbols {
                out.push(BASE32[((n >> (35 - i * 5)) & 31) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn base32_decode(text: &[u8]) -> Option<Vec<u8>> {
    let text: Vec<u8> = text
        .iter()
        .copied()
        .filter(|c| *c != b'\n' && *c != b'\r')
        .collect();
    if !text.len().is_multiple_of(8) {
        return None;
    }
    let mut out = Vec::with_capacity(text.len() / 8 * 5);
    for (index, block) in text.chunks(8).enumerate() {
        let last = index == text.len() / 8 - 1;
        let padding = block.iter().rev().take_while(|c| **c == b'=').count();
        if padding > 0 && !last {
            return None;
        }
        let bytes = match padding {
            0 => 5,
            1 => 4,
            3 => 3,
            4 => 2,
            6 => 1,
            _ => return None,
        };
        let mut n: u64 = 0;
        for &c in &block[..8 - padding] {
            let v = BASE32.iter().position(|s| *s == c)? as u64;
            n = (n << 5) | v;
        }
        n <<= 5 * padding as u64;
        let all = n.to_be_bytes();
        out.extend_from_slice(&all[3..3 + bytes]);
    }
    Some(out)
}

fn b32dec(_: &State, args: &[Value]) -> Result<Value, Error> {
    one_bytes("b32dec", args, |b| {
        base32_decode(b)
            .map(decoded)
            .ok_or_else(|| fail("b32dec", "invalid base32"))
    })
}

fn hexdec(_: &State, args: &[Value]) -> Result<Value, Error> {
    one_bytes("hexdec", args, |b| {
        if b.len() % 2 != 0 {
            return Err(fail("hexdec", "invalid hex: odd length"));
        }
        b.chunks(2)
            .map(|pair| {
                let digit = |c: u8| (c as char).to_digit(16);
                match (digit(pair[0]), digit(pair[1])) {
                    (Some(h), Some(l)) => Ok((h * 16 + l) as u8),
                    _ => Err(fail("hexdec", "invalid hex: not a hex digit")),
                }
            })
            .collect::<Result<Vec<u8>, _>>()
            .map(decoded)
    })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn sha1_digest(bytes: &[u8]) -> Vec<u8> {
    <sha1::Sha1 as sha1::Digest>::digest(bytes).to_vec()
}

fn adler32(bytes: &[u8]) -> u32 {
    let (mut a, mut b) = (1u32, 0u32);
    for &byte in bytes {
        a = (a + u32::from(byte)) % 65521;
        b = (b + a) % 65521;
    }
    (b << 16) | a
}

/// Fuel one bcrypt hash costs. Cost 10 is 2^10 rounds of the key schedule, about as long as
/// 100,000 template instructions: without a charge, a loop over `htpasswd` ran for minutes on
/// the fuel of a few instructions per iteration. This allows 20 hashes per render.
const BCRYPT_FUEL: u64 = 100_000;

/// bcrypt with Go's default cost (10), written as `$2a$` as Go's `x/crypto/bcrypt` does. The
/// salt is derived from the input (HMAC-SHA256), not random: a random salt would change the
/// Secret on every refresh, as ESO's does.
fn bcrypt(state: &State, name: &'static str, password: &[u8]) -> Result<String, Error> {
    state.consume_fuel(BCRYPT_FUEL)?;
    let mut hasher = sha2::Sha256::new();
    hasher.update(b"kuvert bcrypt salt v1\0");
    hasher.update(password);
    let digest = hasher.finalize();
    let mut salt = [0u8; 16];
    salt.copy_from_slice(&digest[..16]);
    bcrypt::non_truncating_hash_with_salt(password, 10, salt)
        .map(|parts| parts.format_for_version(bcrypt::Version::TwoA))
        .map_err(|err| match err {
            bcrypt::BcryptError::Truncation(_) => {
                fail(name, "bcrypt takes at most 72 bytes of password")
            }
            _ => fail(name, "bcrypt hashing failed"),
        })
}

/// `htpasswd USER PASSWORD [ALGORITHM]`: `user:bcrypt-hash`, or with `"sha"` `user:{SHA}base64`.
fn htpasswd(state: &State, args: &[Value]) -> Result<Value, Error> {
    arity("htpasswd", args, 2, 3)?;
    let user = text("htpasswd", &args[0])?;
    let password = string_bytes(&args[1]);
    if user.contains(':') {
        // sprig returns "invalid username: ..." as the value; a Secret would hold that text.
        return Err(fail("htpasswd", "the username contains ':'"));
    }
    let algorithm = match args.get(2) {
        Some(v) => text("htpasswd", v)?,
        None => "bcrypt".to_string(),
    };
    let hash = if algorithm == "sha" {
        format!("{{SHA}}{}", STANDARD.encode(sha1_digest(&password)))
    } else {
        bcrypt(state, "htpasswd", &password)?
    };
    Ok(Value::from(format!("{user}:{hash}")))
}

/// Go's `path.Clean`.
fn path_clean(p: &str) -> String {
    if p.is_empty() {
        return ".".into();
    }
    let rooted = p.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in p.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|l| *l != "..") {
                    parts.pop();
                } else if !rooted {
                    parts.push("..");
                }
            }
            other => parts.push(other),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".into(),
        (false, false) => joined,
    }
}

/// Go's `path.Base`.
fn path_base(p: &str) -> String {
    if p.is_empty() {
        return ".".into();
    }
    let trimmed = p.trim_end_matches('/');
    if trimmed.is_empty() {
        return "/".into();
    }
    trimmed.rsplit('/').next().unwrap_or(trimmed).to_string()
}

/// Go's `path.Dir`.
fn path_dir(p: &str) -> String {
    let dir = match p.rfind('/') {
        Some(i) => &p[..=i],
        None => "",
    };
    path_clean(dir)
}

/// Go's `path.Ext`: the suffix from the last `.` of the last element, or "".
fn path_ext(p: &str) -> String {
    for (i, c) in p.char_indices().rev() {
        match c {
            '/' => return String::new(),
            '.' => return p[i..].to_string(),
            _ => {}
        }
    }
    String::new()
}

fn number(name: &'static str, args: &[Value]) -> Result<Value, Error> {
    arity(name, args, 1, 1)?;
    Ok(Value::from(int_of(&args[0])))
}

fn float64(_: &State, args: &[Value]) -> Result<Value, Error> {
    arity("float64", args, 1, 1)?;
    let v = &args[0];
    let f = match v.kind() {
        ValueKind::Number => f64::try_from(v.clone()).unwrap_or(0.0),
        ValueKind::Bool => f64::from(u8::from(v.is_true())),
        ValueKind::String | ValueKind::Bytes => strval(v).trim().parse().unwrap_or(0.0),
        _ => 0.0,
    };
    Ok(Value::from(f))
}

fn int_op(
    name: &'static str,
    args: &[Value],
    f: impl Fn(i64, i64) -> Option<i64>,
) -> Result<Value, Error> {
    arity(name, args, 2, 2)?;
    f(int_of(&args[0]), int_of(&args[1]))
        .map(Value::from)
        .ok_or_else(|| fail(name, "integer divide by zero"))
}

fn extreme(name: &'static str, args: &[Value], biggest: bool) -> Result<Value, Error> {
    let first = int_of(arg(name, args, 0)?);
    let rest = args[1..].iter().map(int_of);
    Ok(Value::from(if biggest {
        rest.fold(first, i64::max)
    } else {
        rest.fold(first, i64::min)
    }))
}

/// Go's `url.QueryEscape`.
fn url_query(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
pub(super) mod unit {
    use super::*;

    #[test]
    fn base32_round_trips_rfc4648_vectors() {
        let vectors = [
            ("", ""),
            ("f", "MY======"),
            ("fo", "MZXQ===="),
            ("foo", "MZXW6==="),
            ("foob", "MZXW6YQ="),
            ("fooba", "MZXW6YTB"),
            ("foobar", "MZXW6YTBOI======"),
        ];
        for (plain, encoded) in vectors {
            assert_eq!(base32_encode(plain.as_bytes()), encoded);
            assert_eq!(base32_decode(encoded.as_bytes()).unwrap(), plain.as_bytes());
        }
        assert!(base32_decode(b"MZXW6===x").is_none());
        assert!(base32_decode(b"MZ======MZ======").is_none());
    }

    #[test]
    fn paths_follow_go() {
        assert_eq!(path_ext("a/b.tar.gz"), ".gz");
        assert_eq!(path_ext("a.b/c"), "");
        assert_eq!(path_base("/a/b/"), "b");
        assert_eq!(path_base(""), ".");
        assert_eq!(path_dir("/a/b/c"), "/a/b");
        assert_eq!(path_dir("c"), ".");
        assert_eq!(path_clean("a/../../b/./c//"), "../b/c");
        assert_eq!(path_clean("/../a"), "/a");
    }

    #[test]
    fn adler32_matches_the_reference_vector() {
        // RFC 1950's worked example: "Wikipedia" is 0x11E60398.
        assert_eq!(adler32(b"Wikipedia"), 0x11E6_0398);
    }
}
