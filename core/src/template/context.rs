//! The variables a template sees.

use std::collections::BTreeMap;
use std::fmt;

use minijinja::Value;

use crate::secret::SecretBytes;

/// The variables of one render. Built once per sync and reused for every template of it (values
/// are reference-counted, cloning the context is cheap).
///
/// `Debug` lists the variable names only: the values are secrets.
#[derive(Clone)]
pub struct TemplateContext {
    vars: BTreeMap<String, Value>,
    /// `vars` as one map value, built once: every render of the sync reuses it.
    root: Value,
    now: Option<jiff::Timestamp>,
}

impl TemplateContext {
    /// The context of `target.template`: every key of `data` becomes a top-level variable (a
    /// string when the bytes are UTF-8, else bytes), and `data` is the map of all keys (for keys
    /// like `tls.crt` that are not identifiers). A fetched key named `data` is reachable only as
    /// `data["data"]`.
    pub fn from_data(data: &BTreeMap<String, SecretBytes>) -> Self {
        let values: BTreeMap<String, Value> = data
            .iter()
            .map(|(key, value)| (key.clone(), to_value(value)))
            .collect();
        let mut vars = values.clone();
        vars.insert("data".to_string(), Value::from(values));
        TemplateContext::new(vars)
    }

    /// The context of a `rewrite[].transform` template: `value` is the key being rewritten.
    pub fn for_rewrite(key: &str) -> Self {
        let mut vars = BTreeMap::new();
        vars.insert("value".to_string(), Value::from(key));
        TemplateContext::new(vars)
    }

    /// Adds (or replaces) one variable.
    pub fn with_variable(mut self, name: &str, value: &SecretBytes) -> Self {
        self.vars.insert(name.to_string(), to_value(value));
        TemplateContext::build(self.vars, self.now)
    }

    /// Sets the render's clock: what `now` returns (the engine passes its `now`, so a render is
    /// a function of its inputs). Without it, `now` reads the process clock.
    pub fn with_now(mut self, now: jiff::Timestamp) -> Self {
        self.now = Some(now);
        let vars = std::mem::take(&mut self.vars);
        TemplateContext::build(vars, self.now)
    }

    /// The names of the top-level variables.
    pub fn variable_names(&self) -> impl Iterator<Item = &str> {
        self.vars.keys().map(String::as_str)
    }

    fn new(vars: BTreeMap<String, Value>) -> Self {
        TemplateContext::build(vars, None)
    }

    fn build(vars: BTreeMap<String, Value>, now: Option<jiff::Timestamp>) -> Self {
        let mut root_vars = vars.clone();
        if let Some(now) = now {
            root_vars.insert(
                super::sprig::NOW_KEY.to_string(),
                super::sprig::time::GoTime::value(now.to_zoned(jiff::tz::TimeZone::UTC)),
            );
        }
        let root = Value::from(root_vars);
        TemplateContext { vars, root, now }
    }

    pub(super) fn root(&self) -> Value {
        self.root.clone()
    }
}

fn to_value(bytes: &SecretBytes) -> Value {
    match bytes.expose_str() {
        Some(text) => Value::from(text),
        None => Value::from_bytes(bytes.expose().to_vec()),
    }
}

impl fmt::Debug for TemplateContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TemplateContext")
            .field("variables", &self.vars.keys().collect::<Vec<_>>())
            .finish()
    }
}
