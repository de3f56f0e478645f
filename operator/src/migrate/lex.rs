//! The lexer of Go template actions (`{{ ... }}`): tokens for the translator.

/// The end of an action (the index of its `}}`), skipping string literals.
pub(super) fn find_action_end(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'"' => {
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    if b[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
            }
            b'`' => {
                i += 1;
                while i < b.len() && b[i] != b'`' {
                    i += 1;
                }
            }
            b'}' if b.get(i + 1) == Some(&b'}') => return Some(i),
            _ => {}
        }
        i += 1;
    }
    None
}

#[derive(Debug, Clone)]
pub(super) enum Tok {
    Ident(String),
    /// `.a.b` (names after the dot).
    Field(Vec<String>),
    /// `$x.a.b` (`$` alone is the root).
    Var(String, Vec<String>),
    Dot,
    Str(String),
    Number(String),
    /// `( pipeline )` with an optional field chain after it.
    Group(Vec<Tok>, Vec<String>),
    Pipe,
    Declare,
    Assign,
    Comma,
}

pub(super) fn lex(s: &str) -> Result<Vec<Tok>, String> {
    let chars: Vec<char> = s.chars().collect();
    let (tokens, end) = lex_until(&chars, 0, false)?;
    if end < chars.len() {
        return Err("unbalanced parentheses in an action".into());
    }
    Ok(tokens)
}

fn read_chain(chars: &[char], mut i: usize) -> (Vec<String>, usize) {
    let mut chain = Vec::new();
    while i < chars.len() && chars[i] == '.' {
        let start = i + 1;
        let mut j = start;
        while j < chars.len() && (chars[j].is_alphanumeric() || chars[j] == '_') {
            j += 1;
        }
        if j == start {
            break;
        }
        chain.push(chars[start..j].iter().collect());
        i = j;
    }
    (chain, i)
}

fn lex_until(chars: &[char], mut i: usize, in_group: bool) -> Result<(Vec<Tok>, usize), String> {
    let mut out = Vec::new();
    while i < chars.len() {
        let c = chars[i];
        match c {
            c if c.is_whitespace() => i += 1,
            ')' if in_group => return Ok((out, i)),
            ')' => return Err("unbalanced parentheses in an action".into()),
            '(' => {
                let (inner, end) = lex_until(chars, i + 1, true)?;
                if end >= chars.len() {
                    return Err("unbalanced parentheses in an action".into());
                }
                let (chain, next) = read_chain(chars, end + 1);
                out.push(Tok::Group(inner, chain));
                i = next;
            }
            '|' => {
                out.push(Tok::Pipe);
                i += 1;
            }
            ',' => {
                out.push(Tok::Comma);
                i += 1;
            }
            ':' if chars.get(i + 1) == Some(&'=') => {
                out.push(Tok::Declare);
                i += 2;
            }
            '=' => {
                out.push(Tok::Assign);
                i += 1;
            }
            '"' => {
                let mut s = String::new();
                i += 1;
                loop {
                    let Some(&c) = chars.get(i) else {
                        return Err("unterminated string in an action".into());
                    };
                    i += 1;
                    match c {
                        '"' => break,
                        '\\' => {
                            let e = chars.get(i).copied().unwrap_or('\\');
                            i += 1;
                            s.push(match e {
                                'n' => '\n',
                                't' => '\t',
                                'r' => '\r',
                                '0' => '\0',
                                other => other,
                            });
                        }
                        c => s.push(c),
                    }
                }
                out.push(Tok::Str(s));
            }
            '`' => {
                let start = i + 1;
                let end = chars[start..]
                    .iter()
                    .position(|c| *c == '`')
                    .ok_or("unterminated raw string in an action")?;
                out.push(Tok::Str(chars[start..start + end].iter().collect()));
                i = start + end + 1;
            }
            '\'' => {
                let ch = chars.get(i + 1).copied().ok_or("unterminated character")?;
                if chars.get(i + 2) != Some(&'\'') {
                    return Err("unsupported character constant in an action".into());
                }
                out.push(Tok::Number((ch as u32).to_string()));
                i += 3;
            }
            '.' => {
                let (chain, next) = read_chain(chars, i);
                if chain.is_empty() {
                    out.push(Tok::Dot);
                    i += 1;
                } else {
                    out.push(Tok::Field(chain));
                    i = next;
                }
            }
            '$' => {
                let start = i;
                let mut j = i + 1;
                while j < chars.len() && (chars[j].is_alphanumeric() || chars[j] == '_') {
                    j += 1;
                }
                let name: String = chars[start..j].iter().collect();
                let (chain, next) = read_chain(chars, j);
                out.push(Tok::Var(name, chain));
                i = next;
            }
            c if c.is_ascii_digit() || c == '-' || c == '+' => {
                let start = i;
                i += 1;
                while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                    i += 1;
                }
                let text: String = chars[start..i].iter().collect();
                out.push(Tok::Number(number(&text)?));
            }
            c if c.is_alphabetic() || c == '_' => {
                let start = i;
                while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                    i += 1;
                }
                out.push(Tok::Ident(chars[start..i].iter().collect()));
            }
            other => return Err(format!("unexpected character `{other}` in an action")),
        }
    }
    if in_group {
        return Err("unbalanced parentheses in an action".into());
    }
    Ok((out, i))
}

/// A Go number literal as a Jinja one (hex, octal and binary become decimal).
fn number(text: &str) -> Result<String, String> {
    let (sign, digits) = match text.strip_prefix('-') {
        Some(d) => ("-", d),
        None => ("", text.trim_start_matches('+')),
    };
    let digits = digits.replace('_', "");
    let radix = |p: &str, r: u32| {
        i64::from_str_radix(&digits[p.len()..], r)
            .map(|n| format!("{sign}{n}"))
            .map_err(|_| format!("invalid number `{text}`"))
    };
    if digits.starts_with("0x") || digits.starts_with("0X") {
        radix("0x", 16)
    } else if digits.starts_with("0b") || digits.starts_with("0B") {
        radix("0b", 2)
    } else if digits.starts_with("0o") || digits.starts_with("0O") {
        radix("0o", 8)
    } else if digits.parse::<f64>().is_ok() {
        Ok(format!("{sign}{digits}"))
    } else {
        Err(format!("invalid number `{text}`"))
    }
}
