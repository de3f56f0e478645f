//! `target.template`: Jinja templates shaping the Secret's data, labels and annotations.
//!
//! ESO's order: the fetched keys first (with `mergePolicy: Merge`, or when the template has no
//! `data` and no `templateFrom`), then `templateFrom[]` in order, then `data` (explicit
//! templates win), then the templated labels and annotations. Every fetched key is a top-level
//! variable, and `data` maps them all (see [`crate::template`]).

use std::collections::BTreeMap;

use serde_json::Value;

use crate::api::{
    DecodingStrategy, ExternalSecretTemplate, TemplateMergePolicy, TemplateRef, TemplateScope,
    TemplateTarget,
};
use crate::secret::SecretBytes;

use super::fetch::FetchedTemplateSource;
use super::tpl::{self, TemplateContext};
use super::{Entries, Entry, MAX_TEMPLATE_OUTPUT, SyncError};

/// The Secret's content before it becomes a Secret.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Shaped {
    /// Data keys, with the field each came from.
    pub data: Entries,
    /// Labels from templates.
    pub labels: BTreeMap<String, String>,
    /// Annotations from templates.
    pub annotations: BTreeMap<String, String>,
    /// Finalizers from `template.metadata.finalizers`.
    pub finalizers: Vec<String>,
    /// `template.type`.
    pub type_: Option<String>,
}

/// Applies the template (if any) to the fetched keys; `now` is what the template's `now()` returns.
pub fn apply(
    template: Option<&ExternalSecretTemplate>,
    fetched: &Entries,
    sources: &[FetchedTemplateSource],
    now: jiff::Timestamp,
) -> Result<Shaped, SyncError> {
    apply_at("spec.target.template", template, fetched, sources, now)
}

/// [`apply`] for a template at `field` (a PushSecret's is `spec.template`): errors name fields
/// below it.
pub fn apply_at(
    field: &str,
    template: Option<&ExternalSecretTemplate>,
    fetched: &Entries,
    sources: &[FetchedTemplateSource],
    now: jiff::Timestamp,
) -> Result<Shaped, SyncError> {
    let base = field;
    let Some(template) = template else {
        return Ok(Shaped {
            data: fetched.clone(),
            ..Shaped::default()
        });
    };
    let values: BTreeMap<String, SecretBytes> = fetched
        .iter()
        .map(|(k, e)| (k.clone(), e.value.clone()))
        .collect();
    let renderer = Renderer {
        ctx: TemplateContext::from_data(&values).with_now(now),
        template,
    };
    let mut out = Shaped {
        type_: template.type_.clone().filter(|t| !t.is_empty()),
        ..Shaped::default()
    };
    let no_data_templates = template.data.is_empty() && template.template_from.is_empty();
    if template.merge_policy.unwrap_or_default() == TemplateMergePolicy::Merge || no_data_templates
    {
        out.data = fetched.clone();
    }
    for (i, source) in template.template_from.iter().enumerate() {
        let field = format!("{base}.templateFrom[{i}]");
        let target = Output {
            target: source.target.unwrap_or_default(),
            decoding: source.values_decoding_strategy,
        };
        match (
            &source.config_map,
            &source.secret,
            &source.literal,
            sources.get(i),
        ) {
            (Some(r), None, None, Some(FetchedTemplateSource::Object { object, data })) => renderer
                .items(
                    &mut out,
                    &format!("{field}.configMap"),
                    r,
                    object,
                    data,
                    target,
                )?,
            (None, Some(r), None, Some(FetchedTemplateSource::Object { object, data })) => renderer
                .items(
                    &mut out,
                    &format!("{field}.secret"),
                    r,
                    object,
                    data,
                    target,
                )?,
            (None, None, Some(literal), _) => {
                let field = format!("{field}.literal");
                let rendered = renderer.render(&field, literal)?;
                for (k, v) in keys_and_values(&field, &rendered)? {
                    put(&mut out, target, &field, k, v)?;
                }
            }
            _ => {
                return Err(SyncError::InvalidSpec {
                    field,
                    message: "exactly one of configMap, secret and literal must be set".to_owned(),
                });
            }
        }
    }
    for (key, text) in &template.data {
        let field = format!("{base}.data[{key:?}]");
        let value = renderer.render(&field, text)?;
        out.data.insert(
            key.clone(),
            Entry {
                value,
                origin: field,
            },
        );
    }
    if let Some(metadata) = &template.metadata {
        out.finalizers = metadata.finalizers.clone();
        for (key, text) in &metadata.labels {
            let field = format!("{base}.metadata.labels[{key:?}]");
            let value = renderer.render(&field, text)?;
            out.labels.insert(key.clone(), utf8(&field, value)?);
        }
        for (key, text) in &metadata.annotations {
            let field = format!("{base}.metadata.annotations[{key:?}]");
            let value = renderer.render(&field, text)?;
            out.annotations.insert(key.clone(), utf8(&field, value)?);
        }
    }
    Ok(out)
}

struct Renderer<'a> {
    ctx: TemplateContext,
    template: &'a ExternalSecretTemplate,
}

impl Renderer<'_> {
    /// Renders one template; the output is bounded.
    fn render(&self, field: &str, text: &str) -> Result<SecretBytes, SyncError> {
        let out =
            tpl::render(text, &self.ctx, self.template.delimiters.as_ref()).map_err(|source| {
                SyncError::Template {
                    field: field.to_owned(),
                    source,
                }
            })?;
        if out.len() > MAX_TEMPLATE_OUTPUT {
            return Err(SyncError::TooLarge {
                field: field.to_owned(),
                what: "the rendered value".to_owned(),
                size: out.len(),
                limit: MAX_TEMPLATE_OUTPUT,
            });
        }
        Ok(out)
    }

    /// The items of a ConfigMap or Secret used as templates.
    fn items(
        &self,
        out: &mut Shaped,
        field: &str,
        reference: &TemplateRef,
        object: &str,
        data: &BTreeMap<String, SecretBytes>,
        target: Output,
    ) -> Result<(), SyncError> {
        for (j, item) in reference.items.iter().enumerate() {
            let item_field = format!("{field}.items[{j}]");
            let text = data
                .get(&item.key)
                .and_then(SecretBytes::expose_str)
                .ok_or_else(|| SyncError::InvalidSpec {
                    field: format!("{item_field}.key"),
                    message: format!("{object} has no UTF-8 key {:?}", item.key),
                })?;
            let rendered = self.render(&item_field, text)?;
            match item.template_as.unwrap_or_default() {
                TemplateScope::Values => put(out, target, &item_field, item.key.clone(), rendered)?,
                TemplateScope::KeysAndValues => {
                    for (k, v) in keys_and_values(&item_field, &rendered)? {
                        put(out, target, &item_field, k, v)?;
                    }
                }
            }
        }
        Ok(())
    }
}

/// Where a `templateFrom` entry's output goes, and how its values are decoded.
#[derive(Clone, Copy)]
struct Output {
    target: TemplateTarget,
    decoding: Option<DecodingStrategy>,
}

/// Puts one rendered key into the Secret's data, labels or annotations, its value decoded with
/// `valuesDecodingStrategy` first (as ESO does, for every target).
fn put(
    out: &mut Shaped,
    output: Output,
    field: &str,
    key: String,
    value: SecretBytes,
) -> Result<(), SyncError> {
    let value = match output.decoding {
        None | Some(DecodingStrategy::None) => value,
        Some(strategy) => super::decode::decode(strategy, value.expose())
            .map(SecretBytes::new)
            .map_err(|()| SyncError::Decode {
                field: format!("{field}.valuesDecodingStrategy"),
                key: key.clone(),
                strategy: super::decode::name(strategy),
            })?,
    };
    match output.target {
        TemplateTarget::Data => {
            out.data.insert(
                key,
                Entry {
                    value,
                    origin: field.to_owned(),
                },
            );
        }
        TemplateTarget::Labels => {
            out.labels.insert(key, utf8(field, value)?);
        }
        TemplateTarget::Annotations => {
            out.annotations.insert(key, utf8(field, value)?);
        }
    }
    Ok(())
}

/// Reads a rendered `KeysAndValues` template (or literal): a YAML map of keys to scalars.
/// The parser's message is withheld: it could quote the rendered secret.
fn keys_and_values(
    field: &str,
    rendered: &SecretBytes,
) -> Result<Vec<(String, SecretBytes)>, SyncError> {
    let not_a_map = || SyncError::InvalidSpec {
        field: field.to_owned(),
        message: "the rendered output is not a YAML map of keys to values".to_owned(),
    };
    let text = rendered.expose_str().ok_or_else(not_a_map)?;
    if text.trim().is_empty() {
        return Ok(Vec::new());
    }
    let Ok(Value::Object(map)) = serde_saphyr::from_str::<Value>(text) else {
        return Err(not_a_map());
    };
    map.into_iter()
        .map(|(k, v)| {
            let bytes = match v {
                Value::String(s) => s.into_bytes(),
                Value::Null => Vec::new(),
                Value::Bool(_) | Value::Number(_) => v.to_string().into_bytes(),
                Value::Array(_) | Value::Object(_) => {
                    return Err(SyncError::InvalidSpec {
                        field: field.to_owned(),
                        message: format!(
                            "the rendered value of {k:?} is a list or map; quote it or use tojson"
                        ),
                    });
                }
            };
            Ok((k, SecretBytes::new(bytes)))
        })
        .collect()
}

fn utf8(field: &str, value: SecretBytes) -> Result<String, SyncError> {
    String::from_utf8(value.into_inner()).map_err(|_| SyncError::InvalidSpec {
        field: field.to_owned(),
        message: "the rendered label or annotation is not UTF-8".to_owned(),
    })
}
