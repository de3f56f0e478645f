//! Per-template delimiters and the environment cache keyed by them.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock, RwLock};

use minijinja::Environment;
use minijinja::syntax::SyntaxConfig;

use super::TemplateError;
use crate::api::TemplateDelimiters;

/// Environments kept for custom delimiter sets. Real clusters use one or two sets (`[[ ]]`); a
/// set beyond this bound still works, it is just built for each render.
const MAX_CACHED: usize = 32;

/// A delimiter longer than this is a mistake, not a syntax.
const MAX_DELIMITER_LEN: usize = 8;

/// The six delimiters of a template, defaults filled in: the cache key.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub(super) struct Resolved {
    variable: (String, String),
    block: (String, String),
    comment: (String, String),
}

impl Resolved {
    fn is_default(&self) -> bool {
        self.variable == pair("{{", "}}")
            && self.block == pair("{%", "%}")
            && self.comment == pair("{#", "#}")
    }
}

fn pair(start: &str, end: &str) -> (String, String) {
    (start.to_string(), end.to_string())
}

/// Fills in defaults and checks that the delimiters can be told apart.
pub(super) fn resolve(delimiters: Option<&TemplateDelimiters>) -> Result<Resolved, TemplateError> {
    let d = delimiters.cloned().unwrap_or_default();
    let pick = |value: Option<String>, default: &str| value.unwrap_or_else(|| default.to_string());
    let resolved = Resolved {
        variable: (pick(d.variable_start, "{{"), pick(d.variable_end, "}}")),
        block: (pick(d.block_start, "{%"), pick(d.block_end, "%}")),
        comment: (pick(d.comment_start, "{#"), pick(d.comment_end, "#}")),
    };
    let named = [
        ("variableStart", &resolved.variable.0),
        ("variableEnd", &resolved.variable.1),
        ("blockStart", &resolved.block.0),
        ("blockEnd", &resolved.block.1),
        ("commentStart", &resolved.comment.0),
        ("commentEnd", &resolved.comment.1),
    ];
    for (field, value) in named {
        if value.is_empty() {
            return Err(invalid(format!("{field} is empty")));
        }
        if value.chars().count() > MAX_DELIMITER_LEN {
            return Err(invalid(format!(
                "{field} is longer than {MAX_DELIMITER_LEN} characters"
            )));
        }
        if value
            .chars()
            .any(|c| c.is_whitespace() || c.is_alphanumeric())
        {
            return Err(invalid(format!(
                "{field} `{value}` contains a letter, digit or whitespace"
            )));
        }
    }
    // The lexer finds the next start marker; two markers where one starts the other would make
    // the choice depend on the lexer's internals, so they are refused.
    let starts = [named[0], named[2], named[4]];
    for (i, (a_field, a)) in starts.iter().enumerate() {
        for (b_field, b) in starts.iter().skip(i + 1) {
            if a.starts_with(b.as_str()) || b.starts_with(a.as_str()) {
                return Err(invalid(format!(
                    "{a_field} `{a}` and {b_field} `{b}` conflict (one starts the other)"
                )));
            }
        }
    }
    Ok(resolved)
}

fn invalid(reason: String) -> TemplateError {
    TemplateError::InvalidDelimiters { reason }
}

fn syntax(resolved: &Resolved) -> Result<SyntaxConfig, TemplateError> {
    SyntaxConfig::builder()
        .variable_delimiters(resolved.variable.0.clone(), resolved.variable.1.clone())
        .block_delimiters(resolved.block.0.clone(), resolved.block.1.clone())
        .comment_delimiters(resolved.comment.0.clone(), resolved.comment.1.clone())
        // ESO's Go templates keep a template's final newline; config files rendered into
        // Secrets depend on it, so Jinja's default of dropping it would silently change them.
        .keep_trailing_newline(true)
        .build()
        .map_err(|err| invalid(format!("rejected by the template engine: {}", err.kind())))
}

type Cache = RwLock<HashMap<Resolved, Arc<Environment<'static>>>>;

/// The environment for `resolved`, from the cache or built by `build` (and cached).
pub(super) fn cached(
    resolved: Resolved,
    build: fn(SyntaxConfig) -> Environment<'static>,
) -> Result<Arc<Environment<'static>>, TemplateError> {
    static DEFAULT: OnceLock<Arc<Environment<'static>>> = OnceLock::new();
    static CUSTOM: OnceLock<Cache> = OnceLock::new();

    if resolved.is_default() {
        if let Some(env) = DEFAULT.get() {
            return Ok(env.clone());
        }
        let env = Arc::new(build(syntax(&resolved)?));
        return Ok(DEFAULT.get_or_init(|| env).clone());
    }
    let cache = CUSTOM.get_or_init(Cache::default);
    if let Some(env) = cache
        .read()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .get(&resolved)
    {
        return Ok(env.clone());
    }
    let env = Arc::new(build(syntax(&resolved)?));
    let mut map = cache
        .write()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if map.len() < MAX_CACHED {
        map.insert(resolved, env.clone());
    }
    Ok(env)
}
