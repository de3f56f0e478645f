//! One ESO object to its kuvert object: the kind's group, the fields kuvert spells differently
//! or lacks, and every Go template in it.

use serde_json::{Map, Value};

use super::gotemplate;

/// ESO's groups and the kuvert groups they map to.
const ESO_GROUP: &str = "external-secrets.io";
const ESO_GENERATORS_GROUP: &str = "generators.external-secrets.io";

/// The ESO kinds `kuvert migrate` reads.
const KINDS: &[&str] = &[
    "ExternalSecret",
    "SecretStore",
    "ClusterSecretStore",
    "ClusterExternalSecret",
    "PushSecret",
];

/// The providers kuvert has (a store with another one cannot move).
const PROVIDERS: &[&str] = &["vault", "kubernetes", "fake"];

/// Go templates kept in ConfigMaps and Secrets (`templateFrom[].configMap/secret` of ESO's
/// ExternalSecrets): namespace, kind, name and key. Those keys are translated too when the
/// object is among the input.
#[derive(Debug, Default)]
pub struct Sources {
    refs: Vec<(String, &'static str, String, String)>,
    /// The ConfigMaps and Secrets of the input.
    present: Vec<(String, String, String)>,
}

impl Sources {
    /// Records the template keys an ESO ExternalSecret reads from other objects, and the
    /// ConfigMaps and Secrets of the input.
    pub fn collect(&mut self, doc: &Value) {
        if doc["apiVersion"] == "v1" && matches!(doc["kind"].as_str(), Some("ConfigMap" | "Secret"))
        {
            let name = doc
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or_default();
            self.present.push((
                namespace_of(doc),
                doc["kind"].as_str().unwrap_or_default().to_owned(),
                name.to_owned(),
            ));
        }
        let eso = doc["apiVersion"]
            .as_str()
            .is_some_and(|a| a.starts_with("external-secrets.io/"));
        if !eso || doc["kind"] != "ExternalSecret" {
            return;
        }
        let namespace = namespace_of(doc);
        let Some(Value::Array(sources)) = doc.pointer("/spec/target/template/templateFrom") else {
            return;
        };
        for source in sources {
            for (field, kind) in [("configMap", "ConfigMap"), ("secret", "Secret")] {
                let Some(r) = source.get(field) else {
                    continue;
                };
                let name = r["name"].as_str().unwrap_or_default().to_owned();
                for item in r["items"].as_array().into_iter().flatten() {
                    if let Some(key) = item["key"].as_str() {
                        self.refs
                            .push((namespace.clone(), kind, name.clone(), key.to_owned()));
                    }
                }
            }
        }
    }

    fn is_present(&self, namespace: &str, kind: &str, name: &str) -> bool {
        self.present
            .iter()
            .any(|(n, k, o)| n == namespace && k == kind && o == name)
    }

    fn keys_of(&self, namespace: &str, kind: &str, name: &str) -> Vec<&str> {
        self.refs
            .iter()
            .filter(|(n, k, o, _)| n == namespace && *k == kind && o == name)
            .map(|(_, _, _, key)| key.as_str())
            .collect()
    }
}

fn namespace_of(doc: &Value) -> String {
    doc.pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or("default")
        .to_owned()
}

/// What became of one document.
pub enum Converted {
    /// A kuvert object (or a document passed through unchanged, e.g. a Secret).
    Object(Value),
    /// The object cannot move; each problem is `field: message`.
    Problems(Vec<String>),
}

/// Converts one document; `sources` are the template keys of the whole input.
pub fn convert(doc: Value, sources: &Sources) -> Converted {
    let api_version = doc["apiVersion"].as_str().unwrap_or_default().to_owned();
    let kind = doc["kind"].as_str().unwrap_or_default().to_owned();
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", &api_version));
    let new_version = match group {
        ESO_GROUP if KINDS.contains(&kind.as_str()) => {
            // ESO serves PushSecret only as v1alpha1.
            let read = matches!(version, "v1" | "v1beta1")
                || (kind == "PushSecret" && version == "v1alpha1");
            if !read {
                return Converted::Problems(vec![format!(
                    "apiVersion: {api_version} is not read (external-secrets.io/v1 and v1beta1 are, and v1alpha1 for PushSecret)"
                )]);
            }
            format!("{}/{}", kuvert_core::api::GROUP, "v1alpha1")
        }
        // ESO's generator kinds that kuvert has carry the same names.
        ESO_GENERATORS_GROUP if kuvert_core::generator::Kind::from_name(&kind).is_some() => {
            kuvert_core::generator::GENERATORS_API_VERSION.to_owned()
        }
        ESO_GROUP | ESO_GENERATORS_GROUP => {
            return Converted::Problems(vec![format!(
                "kind: {api_version} {kind} has no kuvert equivalent"
            )]);
        }
        // A ConfigMap or Secret holding ESO templates: those keys are translated.
        "" if matches!(kind.as_str(), "ConfigMap" | "Secret") => {
            return template_object(doc, &kind, sources);
        }
        // Anything else is not ESO's: it passes through.
        _ => return Converted::Object(doc),
    };
    let mut doc = doc;
    doc["apiVersion"] = Value::String(new_version);
    let mut problems = Vec::new();
    let namespace = namespace_of(&doc);
    let mut cx = Cx {
        problems: &mut problems,
        sources,
        namespace: &namespace,
    };
    if let Some(spec) = doc.get_mut("spec") {
        match kind.as_str() {
            "ExternalSecret" => cx.external_secret_spec(spec, "spec"),
            "ClusterExternalSecret" => {
                if let Some(inner) = spec.get_mut("externalSecretSpec") {
                    cx.external_secret_spec(inner, "spec.externalSecretSpec");
                }
            }
            "SecretStore" | "ClusterSecretStore" => cx.store_spec(spec),
            "PushSecret" => {
                if let Some(t) = spec.get_mut("template") {
                    cx.template(t, "spec.template");
                }
            }
            _ => {}
        }
        cx.generator_refs(spec, "spec");
    }
    // ESO's status is ESO's: the operator writes kuvert's own.
    if let Some(o) = doc.as_object_mut() {
        o.remove("status");
    }
    if problems.is_empty() {
        Converted::Object(doc)
    } else {
        Converted::Problems(problems)
    }
}

struct Cx<'a> {
    problems: &'a mut Vec<String>,
    sources: &'a Sources,
    namespace: &'a str,
}

impl Cx<'_> {
    fn external_secret_spec(&mut self, spec: &mut Value, path: &str) {
        if let Some(template) = spec.pointer_mut("/target/template") {
            self.template(template, &format!("{path}.target.template"));
        }
        if let Some(Value::Array(entries)) = spec.get_mut("dataFrom") {
            for (i, entry) in entries.iter_mut().enumerate() {
                if let Some(Value::Array(rewrites)) = entry.get_mut("rewrite") {
                    for (j, rewrite) in rewrites.iter_mut().enumerate() {
                        let field = format!("{path}.dataFrom[{i}].rewrite[{j}].transform.template");
                        if let Some(t) = rewrite.pointer_mut("/transform/template") {
                            self.translate(t, &field, false);
                        }
                    }
                }
            }
        }
    }

    /// `target.template` (and a PushSecret's `template`): every template in it.
    fn template(&mut self, template: &mut Value, path: &str) {
        let Some(t) = template.as_object_mut() else {
            return;
        };
        let v1 = match t.remove("engineVersion").as_ref().and_then(Value::as_str) {
            Some("v1") => true,
            None | Some("v2") => false,
            Some(other) => {
                self.problems.push(format!(
                    "{path}.engineVersion: {other:?} is not an ESO engine version"
                ));
                false
            }
        };
        if let Some(Value::Object(data)) = t.get_mut("data") {
            for (key, value) in data.iter_mut() {
                self.translate(value, &format!("{path}.data[{key:?}]"), v1);
            }
        }
        if let Some(Value::Object(metadata)) = t.get_mut("metadata") {
            for part in ["labels", "annotations"] {
                if let Some(Value::Object(map)) = metadata.get_mut(part) {
                    for (key, value) in map.iter_mut() {
                        self.translate(value, &format!("{path}.metadata.{part}[{key:?}]"), v1);
                    }
                }
            }
        }
        if let Some(Value::Array(sources)) = t.get_mut("templateFrom") {
            for (i, source) in sources.iter_mut().enumerate() {
                if let Some(literal) = source.get_mut("literal") {
                    self.translate(literal, &format!("{path}.templateFrom[{i}].literal"), v1);
                }
                for (field, kind) in [("configMap", "ConfigMap"), ("secret", "Secret")] {
                    let Some(name) = source
                        .pointer(&format!("/{field}/name"))
                        .and_then(Value::as_str)
                    else {
                        continue;
                    };
                    // Translated where that object is converted, if it is in the input.
                    if !self.sources.is_present(self.namespace, kind, name)
                        || !path.starts_with("spec.target")
                    {
                        self.problems.push(format!(
                            "{path}.templateFrom[{i}].{field}: the templates of {kind} {name} are not in the input; add that {kind} to the files given to kuvert migrate, or inline them as a literal"
                        ));
                    }
                }
            }
        }
    }

    fn translate(&mut self, value: &mut Value, field: &str, v1: bool) {
        let Some(text) = value.as_str() else {
            return;
        };
        match gotemplate::translate(text, v1) {
            Ok(jinja) => match kuvert_core::template::check(&jinja, None) {
                Ok(()) => *value = Value::String(jinja),
                Err(e) => self.problems.push(format!(
                    "{field}: the translated template does not parse: {e}"
                )),
            },
            Err(problems) => self
                .problems
                .extend(problems.into_iter().map(|p| format!("{field}: {}", p.0))),
        }
    }

    fn store_spec(&mut self, spec: &mut Value) {
        if let Some(Value::Object(provider)) = spec.get("provider") {
            for name in provider.keys() {
                if !PROVIDERS.contains(&name.as_str()) {
                    self.problems.push(format!(
                        "spec.provider.{name}: kuvert has no {name} provider (it has vault, kubernetes and fake)"
                    ));
                }
            }
        }
    }

    /// `generatorRef.apiVersion` of ESO's generators group becomes kuvert's.
    fn generator_refs(&mut self, value: &mut Value, path: &str) {
        match value {
            Value::Object(map) => {
                rewrite_generator_ref(map);
                for (k, v) in map.iter_mut() {
                    self.generator_refs(v, &format!("{path}.{k}"));
                }
            }
            Value::Array(items) => {
                for (i, v) in items.iter_mut().enumerate() {
                    self.generator_refs(v, &format!("{path}[{i}]"));
                }
            }
            _ => {}
        }
    }
}

fn rewrite_generator_ref(map: &mut Map<String, Value>) {
    if let Some(Value::Object(r)) = map.get_mut("generatorRef")
        && let Some(Value::String(api)) = r.get_mut("apiVersion")
        && api.starts_with(&format!("{ESO_GENERATORS_GROUP}/"))
    {
        *api = format!("{}/v1alpha1", kuvert_core::api::GENERATORS_GROUP);
    }
}

/// A ConfigMap or Secret whose keys are ESO templates: those keys translated, the rest as is.
fn template_object(mut doc: Value, kind: &str, sources: &Sources) -> Converted {
    let namespace = namespace_of(&doc);
    let name = doc
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let keys = sources.keys_of(&namespace, kind, &name);
    if keys.is_empty() {
        return Converted::Object(doc);
    }
    let mut problems = Vec::new();
    let mut cx = Cx {
        problems: &mut problems,
        sources,
        namespace: &namespace,
    };
    for key in keys {
        if let Some(v) = doc.pointer_mut(&format!("/data/{}", pointer_escape(key))) {
            if kind == "Secret" {
                // A Secret's data is base64: translated in between.
                use base64::Engine as _;
                let engine = base64::engine::general_purpose::STANDARD;
                let decoded = v
                    .as_str()
                    .and_then(|t| engine.decode(t).ok())
                    .and_then(|b| String::from_utf8(b).ok());
                match decoded {
                    Some(text) => {
                        let mut text = Value::String(text);
                        cx.translate(&mut text, &format!("data[{key:?}]"), false);
                        if let Some(t) = text.as_str() {
                            *v = Value::String(engine.encode(t));
                        }
                    }
                    None => cx
                        .problems
                        .push(format!("data[{key:?}]: not base64 of UTF-8 text")),
                }
            } else {
                cx.translate(v, &format!("data[{key:?}]"), false);
            }
        } else if let Some(v) = doc.pointer_mut(&format!("/stringData/{}", pointer_escape(key))) {
            cx.translate(v, &format!("stringData[{key:?}]"), false);
        }
    }
    if problems.is_empty() {
        Converted::Object(doc)
    } else {
        Converted::Problems(problems)
    }
}

fn pointer_escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}
