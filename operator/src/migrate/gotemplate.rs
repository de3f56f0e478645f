//! Go templates (ESO's `engineVersion: v2`, sprig) translated to kuvert's Jinja.
//!
//! - `{{ .key }}` becomes `{{ key }}` (`{{ data["tls.crt"] }}` for a key that is not a plain
//!   name); `.` is `data`; `$x` is `_x`; `$` is `data`.
//! - A call `f a b` becomes `f(a, b)`, and a pipeline `x | f a` becomes `f(a, x)`: kuvert has
//!   every sprig and ESO function under its Go name with Go's argument order, so the meaning is
//!   kept. Go's built-ins become Jinja operators (`eq a b` → `(a == b)`, `and`, `or`, `not`,
//!   `len`, `index`).
//! - A printed value that is not known to be a string goes through `toString`, which prints as
//!   Go prints (`true`, `map[a:1]`, `1e+06`), where Jinja would print `True`.
//! - `if`/`else if`/`else`, `with` (its value becomes `.`), `range` (over `range_pairs(x)`, so
//!   a map yields its values in key order as in Go), variables, `{{-`/`-}}` trimming and
//!   comments keep their meaning.
//!
//! What has no translation (`define`/`template`/`block`, `call`, `html`, `js`, an assignment to
//! an outer variable inside `range`, a function kuvert lacks) is reported as a [`Problem`] and
//! the template is not used.

use std::fmt::Write as _;

use super::lex::{Tok, find_action_end, lex};

/// A construct that could not be translated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem(pub String);

/// Translates one Go template; every problem found is returned (the output is then unusable).
pub fn translate(source: &str, v1: bool) -> Result<String, Vec<Problem>> {
    let mut t = Translator {
        mutable: reassigned(source),
        out: String::new(),
        problems: Vec::new(),
        blocks: Vec::new(),
        dots: vec![Dot::Root],
        counter: 0,
        v1,
    };
    t.run(source);
    if !t.blocks.is_empty() {
        t.problem("a block ({{ if }}, {{ range }} or {{ with }}) has no {{ end }}");
    }
    if t.problems.is_empty() {
        Ok(t.out)
    } else {
        Err(t.problems)
    }
}

#[derive(Clone)]
enum Dot {
    /// The template's data: `.key` is a top-level variable.
    Root,
    /// A Jinja expression (a loop or `with` variable).
    Expr(String),
}

#[derive(Clone, Copy, PartialEq)]
enum Block {
    If,
    Range,
    With,
}

struct Translator {
    /// Variables the template assigns again (`$x = ...`): they live in a Jinja namespace
    /// (`_x.v`), since a Jinja loop cannot change an outer variable otherwise.
    mutable: Vec<String>,
    out: String,
    problems: Vec<Problem>,
    blocks: Vec<Block>,
    dots: Vec<Dot>,
    counter: usize,
    v1: bool,
}

/// Names that cannot be bare Jinja variables.
const RESERVED: &[&str] = &[
    "and",
    "or",
    "not",
    "in",
    "is",
    "if",
    "else",
    "elif",
    "endif",
    "for",
    "endfor",
    "set",
    "true",
    "false",
    "none",
    "True",
    "False",
    "None",
    "loop",
    "data",
    "self",
    "super",
    "namespace",
    "range",
    "debug",
];

impl Translator {
    fn problem(&mut self, message: impl Into<String>) {
        let message = message.into();
        if !self.problems.iter().any(|p| p.0 == message) {
            self.problems.push(Problem(message));
        }
    }

    fn run(&mut self, source: &str) {
        let mut rest = source;
        while let Some(start) = rest.find("{{") {
            self.text(&rest[..start]);
            let after = &rest[start + 2..];
            let Some(end) = find_action_end(after) else {
                self.problem("an action {{ has no closing }}");
                return;
            };
            let mut inner = &after[..end];
            let mut trim_left = false;
            let mut trim_right = false;
            if let Some(stripped) = inner.strip_prefix("- ") {
                trim_left = true;
                inner = stripped;
            } else if inner.starts_with('-') && inner[1..].starts_with(['\n', '\t', '\r']) {
                trim_left = true;
                inner = &inner[1..];
            }
            if let Some(stripped) = inner.strip_suffix(" -") {
                trim_right = true;
                inner = stripped;
            } else if inner.ends_with('-') && inner[..inner.len() - 1].ends_with(['\n', '\t', '\r'])
            {
                trim_right = true;
                inner = &inner[..inner.len() - 1];
            }
            self.action(inner.trim(), trim_left, trim_right);
            rest = &after[end + 2..];
        }
        self.text(rest);
    }

    /// Literal text; Jinja's own delimiters in it are written as strings.
    fn text(&mut self, text: &str) {
        let mut rest = text;
        while let Some(i) = rest.find(['{', '}']) {
            self.out.push_str(&rest[..i]);
            let tail = &rest[i..];
            if tail.starts_with("{%") || tail.starts_with("{#") || tail.starts_with("{{") {
                let _ = write!(self.out, "{{{{ \"{}\" }}}}", &tail[..2]);
                rest = &tail[2..];
            } else {
                self.out.push_str(&tail[..1]);
                rest = &tail[1..];
            }
        }
        self.out.push_str(rest);
    }

    fn tag(&mut self, body: &str, trim_left: bool, trim_right: bool, block: bool) {
        let (open, close) = if block { ("{%", "%}") } else { ("{{", "}}") };
        let l = if trim_left { "-" } else { "" };
        let r = if trim_right { "-" } else { "" };
        let _ = write!(self.out, "{open}{l} {body} {r}{close}");
    }

    fn action(&mut self, inner: &str, tl: bool, tr: bool) {
        if inner.starts_with("/*") {
            let comment = inner.trim_start_matches("/*").trim_end_matches("*/").trim();
            let l = if tl { "-" } else { "" };
            let r = if tr { "-" } else { "" };
            let _ = write!(self.out, "{{#{l} {} {r}#}}", comment.replace("#}", "# }"));
            return;
        }
        let tokens = match lex(inner) {
            Ok(t) => t,
            Err(e) => return self.problem(e),
        };
        let keyword = match tokens.first() {
            Some(Tok::Ident(k)) => k.as_str(),
            _ => "",
        };
        match keyword {
            "if" => {
                let cond = self.pipeline_expr(&tokens[1..]);
                self.blocks.push(Block::If);
                self.dots.push(self.dot().clone());
                self.tag(&format!("if {cond}"), tl, tr, true);
            }
            "else" => self.else_branch(&tokens[1..], tl, tr),
            "end" => match self.blocks.pop() {
                Some(Block::Range) => {
                    self.dots.pop();
                    self.tag("endfor", tl, tr, true);
                }
                Some(_) => {
                    self.dots.pop();
                    self.tag("endif", tl, tr, true);
                }
                None => self.problem("{{ end }} without a block"),
            },
            "range" => self.range(&tokens[1..], tl, tr),
            "with" => {
                let (decl, cmds) = split_decl(&tokens[1..]);
                let value = self.commands_expr(cmds);
                self.counter += 1;
                let name = match decl.and_then(|(vars, _)| vars.last().cloned()) {
                    Some(v) => var_name(&v),
                    None => format!("_with{}", self.counter),
                };
                self.tag(&format!("set {name} = {value}"), tl, false, true);
                self.tag(&format!("if {name}"), false, tr, true);
                self.blocks.push(Block::With);
                self.dots.push(Dot::Expr(name));
            }
            "break" => self.tag("break", tl, tr, true),
            "continue" => self.tag("continue", tl, tr, true),
            "define" | "template" | "block" => self.problem(format!(
                "{{{{ {keyword} }}}}: named templates have no translation (write the template inline)"
            )),
            _ => {
                let (decl, cmds) = split_decl(&tokens);
                if let Some((vars, declares)) = decl {
                    let value = self.commands_expr(cmds);
                    let go = vars.last().map(String::as_str).unwrap_or("$_");
                    let name = var_name(go);
                    let body = match (self.is_mutable(go), declares) {
                        (true, true) => format!("set {name} = namespace(v={value})"),
                        (true, false) => format!("set {name}.v = {value}"),
                        (false, _) => format!("set {name} = {value}"),
                    };
                    self.tag(&body, tl, tr, true);
                    return;
                }
                let expr = self.commands_expr(cmds);
                let printed = if prints_as_is(cmds) {
                    expr
                } else {
                    format!("toString({expr})")
                };
                self.tag(&printed, tl, tr, false);
            }
        }
    }

    fn is_mutable(&self, go: &str) -> bool {
        self.mutable.iter().any(|m| m == go.trim_start_matches('$'))
    }

    fn dot(&self) -> &Dot {
        self.dots.last().unwrap_or(&Dot::Root)
    }

    fn else_branch(&mut self, tokens: &[Tok], tl: bool, tr: bool) {
        match (self.blocks.last().copied(), tokens.first()) {
            (Some(Block::If), Some(Tok::Ident(k))) if k == "if" => {
                let cond = self.pipeline_expr(&tokens[1..]);
                self.tag(&format!("elif {cond}"), tl, tr, true);
            }
            (Some(_), None) => {
                // `else` of a `with` or `range`: the dot is the outer one again.
                if matches!(self.blocks.last(), Some(Block::With | Block::Range)) {
                    let outer = self.dots.len().checked_sub(2).map(|i| self.dots[i].clone());
                    if let (Some(outer), Some(last)) = (outer, self.dots.last_mut()) {
                        *last = outer;
                    }
                }
                self.tag("else", tl, tr, true);
            }
            (None, _) => self.problem("{{ else }} without a block"),
            _ => self.problem("{{ else with }} / {{ else if }} here has no translation"),
        }
    }

    fn range(&mut self, tokens: &[Tok], tl: bool, tr: bool) {
        let (decl, cmds) = split_decl(tokens);
        let over = self.commands_expr(cmds);
        self.counter += 1;
        let (key, value) = match decl.map(|(v, _)| v) {
            Some(vars) if vars.len() == 2 => (var_name(&vars[0]), var_name(&vars[1])),
            Some(vars) if vars.len() == 1 => ("_".to_owned(), var_name(&vars[0])),
            _ => ("_".to_owned(), format!("_it{}", self.counter)),
        };
        self.tag(
            &format!("for {key}, {value} in range_pairs({over})"),
            tl,
            tr,
            true,
        );
        self.blocks.push(Block::Range);
        self.dots.push(Dot::Expr(value));
    }

    fn pipeline_expr(&mut self, tokens: &[Tok]) -> String {
        let (decl, cmds) = split_decl(tokens);
        if decl.is_some() {
            self.problem("a variable declared in an {{ if }} condition has no translation");
        }
        self.commands_expr(cmds)
    }

    /// A pipeline `c1 | c2 | ...` as one Jinja expression.
    fn commands_expr(&mut self, tokens: &[Tok]) -> String {
        let commands: Vec<&[Tok]> = split_top(tokens, |t| matches!(t, Tok::Pipe));
        let mut acc: Option<String> = None;
        for cmd in commands {
            if cmd.is_empty() {
                self.problem("an empty command in a pipeline");
                return "none".into();
            }
            acc = Some(self.command(cmd, acc.take()));
        }
        acc.unwrap_or_else(|| {
            self.problem("an empty action");
            "none".into()
        })
    }

    fn command(&mut self, cmd: &[Tok], piped: Option<String>) -> String {
        let (head, args) = cmd.split_first().expect("non-empty");
        let Tok::Ident(name) = head else {
            if cmd.len() > 1 || piped.is_some() {
                self.problem("a value cannot take arguments or be piped into");
            }
            return self.operand(head);
        };
        let mut args: Vec<String> = args.iter().map(|a| self.operand(a)).collect();
        if let Some(p) = piped {
            args.push(p);
        }
        let name = self.function_name(name);
        let binary = |op: &str, args: &[String]| format!("({} {op} {})", args[0], args[1]);
        match name.as_str() {
            "and" | "or" if !args.is_empty() => format!("({})", args.join(&format!(" {name} "))),
            "not" if args.len() == 1 => format!("(not {})", args[0]),
            "eq" if args.len() >= 2 => {
                let tests: Vec<String> = args[1..]
                    .iter()
                    .map(|a| format!("{} == {a}", args[0]))
                    .collect();
                format!("({})", tests.join(" or "))
            }
            "ne" if args.len() == 2 => binary("!=", &args),
            "lt" if args.len() == 2 => binary("<", &args),
            "le" if args.len() == 2 => binary("<=", &args),
            "gt" if args.len() == 2 => binary(">", &args),
            "ge" if args.len() == 2 => binary(">=", &args),
            "len" if args.len() == 1 => format!("len({})", args[0]),
            "index" if !args.is_empty() => format!("index({})", args.join(", ")),
            "html" | "js" | "call" | "slice" => {
                self.problem(format!("the Go built-in `{name}` has no translation"));
                format!("{name}({})", args.join(", "))
            }
            _ => {
                if !kuvert_core::template::has_function(&name) && !self.reported_v1(&name) {
                    self.problem(format!("the function `{name}` has no kuvert equivalent"));
                }
                format!("{name}({})", args.join(", "))
            }
        }
    }

    /// A v1-only function already reported by [`Self::function_name`].
    fn reported_v1(&self, name: &str) -> bool {
        self.v1 && matches!(name, "pemPrivateKey" | "pemCertificate")
    }

    /// ESO's `engineVersion: v1` names where they differ from v2's.
    fn function_name(&mut self, name: &str) -> String {
        if self.v1 {
            match name {
                "base64encode" => return "b64enc".into(),
                "base64decode" => return "b64dec".into(),
                "fromJSON" => return "fromJson".into(),
                "toJSON" => return "toJson".into(),
                "toBytes" => return "toString".into(),
                "pemPrivateKey" | "pemCertificate" => {
                    self.problem(format!(
                        "the v1 function `{name}` has no translation (v2's pkcs12key/pkcs12cert already write PEM)"
                    ));
                }
                _ => {}
            }
        }
        name.to_owned()
    }

    fn operand(&mut self, tok: &Tok) -> String {
        match tok {
            Tok::Dot => self.dot_expr(),
            Tok::Field(chain) => {
                let (first, rest) = chain.split_first().expect("a field has a name");
                let base = match self.dot().clone() {
                    Dot::Root => root_key(first),
                    Dot::Expr(e) => format!("{e}{}", access(first)),
                };
                format!("{base}{}", chain_access(rest))
            }
            Tok::Var(name, chain) => {
                let base = if name == "$" {
                    "data".to_owned()
                } else if self.is_mutable(name) {
                    format!("{}.v", var_name(name))
                } else {
                    var_name(name)
                };
                match (name.as_str(), chain.split_first()) {
                    ("$", Some((first, rest))) => {
                        format!("{}{}", root_key(first), chain_access(rest))
                    }
                    _ => format!("{base}{}", chain_access(chain)),
                }
            }
            Tok::Str(s) => jinja_string(s),
            Tok::Number(n) => n.clone(),
            Tok::Ident(name) => match name.as_str() {
                "true" | "false" => name.clone(),
                "nil" => "none".into(),
                _ => {
                    // A function named as an argument is called with no arguments (Go).
                    let name = self.function_name(name);
                    if !kuvert_core::template::has_function(&name) && !self.reported_v1(&name) {
                        self.problem(format!("the function `{name}` has no kuvert equivalent"));
                    }
                    format!("{name}()")
                }
            },
            Tok::Group(inner, chain) => {
                let expr = self.commands_expr(inner);
                format!("({expr}){}", chain_access(chain))
            }
            Tok::Pipe | Tok::Declare | Tok::Assign | Tok::Comma => {
                self.problem("unexpected punctuation in an action");
                "none".into()
            }
        }
    }

    fn dot_expr(&self) -> String {
        match self.dot() {
            Dot::Root => "data".into(),
            Dot::Expr(e) => e.clone(),
        }
    }
}

/// Whether a command's result prints the same in Jinja and Go: a key of the data (a string),
/// or a function that returns a string.
fn prints_as_is(tokens: &[Tok]) -> bool {
    let commands = split_top(tokens, |t| matches!(t, Tok::Pipe));
    let Some(last) = commands.last() else {
        return true;
    };
    match last.first() {
        Some(Tok::Field(_)) if commands.len() == 1 && last.len() == 1 => true,
        Some(Tok::Str(_)) if last.len() == 1 => true,
        Some(Tok::Ident(name)) => STRING_FUNCTIONS.contains(&name.as_str()),
        _ => false,
    }
}

/// Functions whose result is always a string (or the bytes ESO treats as one).
const STRING_FUNCTIONS: &[&str] = &[
    "printf",
    "print",
    "println",
    "toString",
    "quote",
    "squote",
    "cat",
    "trim",
    "trimAll",
    "trimPrefix",
    "trimSuffix",
    "upper",
    "lower",
    "title",
    "nospace",
    "repeat",
    "substr",
    "trunc",
    "replace",
    "indent",
    "nindent",
    "join",
    "regexReplaceAll",
    "regexReplaceAllLiteral",
    "regexFind",
    "regexQuoteMeta",
    "b64enc",
    "b64dec",
    "b32enc",
    "b32dec",
    "hexdec",
    "sha1sum",
    "sha256sum",
    "sha512sum",
    "adler32sum",
    "bcrypt",
    "htpasswd",
    "base",
    "dir",
    "clean",
    "ext",
    "toJson",
    "toRawJson",
    "toPrettyJson",
    "toYaml",
    "date",
    "dateInZone",
    "htmlDate",
    "unixEpoch",
    "duration",
    "urlquery",
    "filterPEM",
    "filterCertChain",
    "pkcs12key",
    "pkcs12keyPass",
    "pkcs12cert",
    "pkcs12certPass",
    "pemToPkcs12",
    "pemToPkcs12Pass",
    "fullPemToPkcs12",
    "fullPemToPkcs12Pass",
    "pemTruststoreToPKCS12",
    "pemTruststoreToPKCS12Pass",
    "jwkPublicKeyPem",
    "jwkPrivateKeyPem",
    "rsaDecrypt",
    "base64encode",
    "base64decode",
    "toJSON",
];

/// The variables a template assigns with `=` (not declares with `:=`).
fn reassigned(source: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let b = source.as_bytes();
    for (i, _) in source.match_indices('$') {
        let name: String = source[i + 1..]
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        let mut j = i + 1 + name.len();
        while j < b.len() && (b[j] == b' ' || b[j] == b'\t') {
            j += 1;
        }
        if !name.is_empty()
            && b.get(j) == Some(&b'=')
            && b.get(j + 1) != Some(&b'=')
            && !out.contains(&name)
        {
            out.push(name);
        }
    }
    out
}

fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A top-level data key as a Jinja expression.
fn root_key(key: &str) -> String {
    if is_identifier(key) && !RESERVED.contains(&key) && !kuvert_core::template::has_function(key) {
        key.to_owned()
    } else {
        format!("data[{}]", jinja_string(key))
    }
}

fn access(key: &str) -> String {
    if is_identifier(key) && !RESERVED.contains(&key) {
        format!(".{key}")
    } else {
        format!("[{}]", jinja_string(key))
    }
}

fn chain_access(chain: &[String]) -> String {
    chain.iter().map(|k| access(k)).collect()
}

fn var_name(go: &str) -> String {
    let name = go.trim_start_matches('$');
    if name.is_empty() {
        "data".into()
    } else {
        format!("_{name}")
    }
}

/// A Jinja string literal with the same characters.
fn jinja_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn split_top(tokens: &[Tok], sep: impl Fn(&Tok) -> bool) -> Vec<&[Tok]> {
    tokens.split(sep).collect()
}

/// `$a, $b := rest` or `$a = rest`: the variables, whether they are declared, and the rest.
#[allow(clippy::type_complexity)]
fn split_decl(tokens: &[Tok]) -> (Option<(Vec<String>, bool)>, &[Tok]) {
    let Some(pos) = tokens
        .iter()
        .position(|t| matches!(t, Tok::Declare | Tok::Assign))
    else {
        return (None, tokens);
    };
    let vars: Vec<String> = tokens[..pos]
        .iter()
        .filter_map(|t| match t {
            Tok::Var(name, chain) if chain.is_empty() => Some(name.clone()),
            _ => None,
        })
        .collect();
    if vars.is_empty() {
        return (None, tokens);
    }
    let declares = matches!(tokens[pos], Tok::Declare);
    (Some((vars, declares)), &tokens[pos + 1..])
}
