//! Jinja templates (minijinja) for `target.template` and `rewrite[].transform`.
//!
//! [`render`] turns a template source, a [`TemplateContext`] and optional [`TemplateDelimiters`]
//! into the bytes of one Secret value. The rules users rely on (DESIGN.md §3, `docs/templates.md`):
//!
//! - **Strict undefined**: using a variable that does not exist is an error, never an empty string
//!   (`is defined` and the `default` filter still work).
//! - **Context**: every fetched key is a top-level variable (a string when its bytes are UTF-8,
//!   bytes otherwise) and `data` maps every key (`{{ data["tls.crt"] }}`). In a rewrite template
//!   the key being rewritten is `value`.
//! - **Binary values pass through**: a bytes value printed with `{{ }}` is written as its raw
//!   bytes, so a PKCS#12 keystore can be produced by `{{ cert | pem_to_pkcs12(key) | b64dec }}`.
//! - **Sandboxed**: no loader (no `include`/`import` from disk), no network, no environment access;
//!   every render has a fuel budget (bounds loops and work), a recursion limit, and its output is
//!   capped at [`MAX_OUTPUT_BYTES`].
//! - **Errors never carry a secret**: messages name the line, the expression's source text, the
//!   filter and what was wrong, but never a value (see `error.rs` for how minijinja's own errors,
//!   which may quote values, are reduced).
//!
//! The module is pure: no I/O, no clock, and the only process-wide state is a cache of immutable
//! environments, one per delimiter set (templates are rendered on every sync). Output is a
//! function of the inputs: PKCS#12 salts are derived, not random (`filters/pkcs12_write.rs`); the
//! only randomness is RSA blinding inside `rsa_decrypt`, which does not change its result.
//!
//! The user reference (every filter with examples, delimiters, ESO helper names) is
//! `docs/templates.md`.

mod context;
mod delimiters;
mod error;
mod filters;
mod output;
mod sprig;

#[cfg(test)]
mod crypto_tests;
#[cfg(test)]
mod limit_tests;
#[cfg(test)]
mod tests;

use std::sync::Arc;

pub use context::TemplateContext;
pub use error::TemplateError;

use crate::api::TemplateDelimiters;
use crate::secret::SecretBytes;

/// Largest rendered value, in bytes (a Kubernetes Secret holds at most 1 MiB in total).
pub const MAX_OUTPUT_BYTES: usize = 1024 * 1024;

/// Instructions one render may execute. Ample for real templates (a loop over a few thousand keys
/// with filters) while stopping runaway loops quickly.
const FUEL: u64 = 2_000_000;

/// Nesting depth of calls, loops and blocks in one render.
const RECURSION_LIMIT: usize = 64;

/// Renders `template` with `ctx`.
///
/// `delimiters` replaces some or all of `{{ }}`, `{% %}` and `{# #}` for this template (e.g.
/// `[[ ]]` inside Helm charts). The result is the rendered bytes, at most [`MAX_OUTPUT_BYTES`].
pub fn render(
    template: &str,
    ctx: &TemplateContext,
    delimiters: Option<&TemplateDelimiters>,
) -> Result<SecretBytes, TemplateError> {
    let env = environment(delimiters)?;
    output::check_source(template)?;
    let compiled = env
        .template_from_str(template)
        .map_err(|err| error::from_minijinja(&err, template))?;
    let mut sink = output::BoundedSink::new(output::raw_limit(MAX_OUTPUT_BYTES));
    let result = compiled.render_captured_to(ctx.root(), &mut sink);
    if sink.overflowed() {
        return Err(TemplateError::OutputTooLarge {
            limit: MAX_OUTPUT_BYTES,
        });
    }
    result.map_err(|err| error::from_minijinja(&err, template))?;
    let bytes = output::decode(&sink.into_inner());
    if bytes.len() > MAX_OUTPUT_BYTES {
        return Err(TemplateError::OutputTooLarge {
            limit: MAX_OUTPUT_BYTES,
        });
    }
    Ok(SecretBytes::new(bytes))
}

/// Parses `template` without rendering it: what `kuvert migrate --check` runs on every
/// translated template.
pub fn check(template: &str, delimiters: Option<&TemplateDelimiters>) -> Result<(), TemplateError> {
    let env = environment(delimiters)?;
    output::check_source(template)?;
    env.template_from_str(template)
        .map(drop)
        .map_err(|err| error::from_minijinja(&err, template))
}

/// Whether templates can call a function of this name (sprig's, Go's and ESO's, in Go's
/// argument order; `kuvert migrate` maps a Go template's calls onto them).
pub fn has_function(name: &str) -> bool {
    environment(None).is_ok_and(|env| env.globals().any(|(n, _)| n == name))
}

/// The environment for a delimiter set, built once and shared.
fn environment(
    delimiters: Option<&TemplateDelimiters>,
) -> Result<Arc<minijinja::Environment<'static>>, TemplateError> {
    let syntax = delimiters::resolve(delimiters)?;
    delimiters::cached(syntax, build_environment)
}

fn build_environment(syntax: minijinja::syntax::SyntaxConfig) -> minijinja::Environment<'static> {
    // `Environment::new` registers the built-in filters, tests and functions but no loader:
    // `include`, `import` and `extends` can only fail.
    let mut env = minijinja::Environment::new();
    env.set_syntax(syntax);
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
    env.set_auto_escape_callback(|_| minijinja::AutoEscape::None);
    // Debug mode would capture the template's variables (secret values) into every error.
    env.set_debug(false);
    env.set_fuel(Some(FUEL));
    env.set_recursion_limit(RECURSION_LIMIT);
    env.set_formatter(output::formatter);
    // sprig's and ESO's functions first: kuvert's filters of the same name (`b64enc`) win.
    sprig::register(&mut env);
    filters::eso::register(&mut env);
    filters::register(&mut env);
    env
}
