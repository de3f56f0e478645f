//! `kuvert migrate -f PATH... [--out DIR] [--check]`: ESO manifests in, kuvert manifests out.
//!
//! Reads `external-secrets.io/v1` and `v1beta1` ExternalSecret, SecretStore,
//! ClusterSecretStore, ClusterExternalSecret and PushSecret (ESO's `v1alpha1`), and
//! `generators.external-secrets.io` Password, UUID, Fake and VaultDynamicSecret; other
//! documents (Secrets, ConfigMaps, ...) pass through unchanged. Each ESO object gets kuvert's
//! group, its Go templates translated to Jinja ([`gotemplate`]), ESO's `status` dropped, and is
//! then read back by kuvert's own manifest reader, so a field kuvert lacks and a template that
//! does not parse are found here rather than in the cluster.
//!
//! Anything that cannot move is listed, one line per problem naming the file, the object and
//! the field, and the exit is non-zero; then nothing at all is written (no half-converted set).
//! `--check` does everything but write, for a CI gate.

mod gotemplate;
mod lex;
mod objects;

use std::path::{Path, PathBuf};

use kuvert_core::manifest::{Manifest, ManifestError};
use serde_json::Value;

pub use gotemplate::{Problem, translate};

/// The outcome of a migration.
#[derive(Debug, Default)]
pub struct Migrated {
    /// Translated files: the input's file name and its multi-document YAML.
    pub files: Vec<(String, String)>,
    /// One line per problem (`FILE: KIND NAMESPACE/NAME: FIELD: MESSAGE`).
    pub problems: Vec<String>,
}

/// Translates the manifests at `paths` (files, or folders' `*.yaml`/`*.yml` sorted by name).
pub fn migrate(paths: &[PathBuf]) -> Migrated {
    let mut out = Migrated::default();
    let mut inputs = Vec::new();
    for file in files(paths, &mut out.problems) {
        let name = file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "manifests.yaml".to_owned());
        let shown = file.display().to_string();
        match std::fs::read_to_string(&file) {
            Ok(text) => {
                if let Some(docs) = parse(&shown, &text, &mut out.problems) {
                    inputs.push((name, shown, docs));
                }
            }
            Err(e) => out.problems.push(format!("{shown}: cannot be read: {e}")),
        }
    }
    // Templates kept in ConfigMaps and Secrets may sit in any of the files.
    let mut sources = objects::Sources::default();
    for doc in inputs.iter().flat_map(|(_, _, docs)| docs) {
        sources.collect(doc);
    }
    for (name, shown, docs) in inputs {
        let yaml = convert_all(&shown, docs, &sources, &mut out.problems);
        out.files.push((name, yaml));
    }
    out
}

/// Translates one file's text (its ConfigMaps and Secrets are the only template sources it
/// sees); `None` when it is not YAML.
pub fn migrate_text(source: &str, text: &str, problems: &mut Vec<String>) -> Option<String> {
    let docs = parse(source, text, problems)?;
    let mut sources = objects::Sources::default();
    for doc in &docs {
        sources.collect(doc);
    }
    Some(convert_all(source, docs, &sources, problems))
}

fn parse(source: &str, text: &str, problems: &mut Vec<String>) -> Option<Vec<Value>> {
    match serde_saphyr::from_multiple::<Value>(text) {
        Ok(docs) => Some(docs.into_iter().filter(|d| !d.is_null()).collect()),
        Err(e) => {
            problems.push(format!("{source}: invalid YAML: {e}"));
            None
        }
    }
}

fn convert_all(
    source: &str,
    docs: Vec<Value>,
    sources: &objects::Sources,
    problems: &mut Vec<String>,
) -> String {
    let mut yaml = String::new();
    for (index, doc) in docs.into_iter().enumerate() {
        let who = describe(&doc);
        match objects::convert(doc, sources) {
            objects::Converted::Problems(list) => {
                problems.extend(list.into_iter().map(|p| format!("{source}: {who}: {p}")));
            }
            objects::Converted::Object(object) => {
                if let Err(e) = Manifest::from_value(source, index + 1, object.clone()) {
                    match e {
                        // A kind kuvert does not read is passed through as it is.
                        ManifestError::UnsupportedKind { .. } => {}
                        ManifestError::UnknownFields { fields, .. } => problems.extend(
                            fields
                                .into_iter()
                                .map(|f| format!("{source}: {who}: {f}: kuvert has no such field")),
                        ),
                        other => problems.push(other.to_string()),
                    }
                }
                match serde_saphyr::to_string(&object) {
                    Ok(text) => {
                        yaml.push_str("---\n");
                        yaml.push_str(&text);
                    }
                    Err(e) => problems.push(format!("{source}: {who}: cannot be written: {e}")),
                }
            }
        }
    }
    yaml
}

fn describe(doc: &Value) -> String {
    let kind = doc["kind"].as_str().unwrap_or("document");
    let name = doc
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("?");
    match doc.pointer("/metadata/namespace").and_then(Value::as_str) {
        Some(ns) => format!("{kind} {ns}/{name}"),
        None => format!("{kind} {name}"),
    }
}

fn files(paths: &[PathBuf], problems: &mut Vec<String>) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for path in paths {
        if path.is_dir() {
            match std::fs::read_dir(path) {
                Ok(entries) => {
                    let mut found: Vec<PathBuf> = entries
                        .filter_map(|e| e.ok().map(|e| e.path()))
                        .filter(|p| {
                            p.is_file()
                                && matches!(
                                    p.extension().and_then(|e| e.to_str()),
                                    Some("yaml" | "yml")
                                )
                        })
                        .collect();
                    found.sort();
                    out.extend(found);
                }
                Err(e) => problems.push(format!("{}: cannot be read: {e}", path.display())),
            }
        } else {
            out.push(path.clone());
        }
    }
    out
}

/// `kuvert migrate`: prints or writes the translation, or lists the problems. Returns the exit
/// code: 0 when everything moved, 1 when anything could not.
pub fn run(paths: &[PathBuf], out_dir: Option<&Path>, check: bool) -> std::io::Result<i32> {
    let migrated = migrate(paths);
    if !migrated.problems.is_empty() {
        for p in &migrated.problems {
            eprintln!("error: {p}");
        }
        eprintln!(
            "kuvert migrate: {} problem(s); nothing was written",
            migrated.problems.len()
        );
        return Ok(1);
    }
    if check {
        eprintln!(
            "kuvert migrate --check: {} file(s) translate and parse",
            migrated.files.len()
        );
        return Ok(0);
    }
    match out_dir {
        Some(dir) => {
            std::fs::create_dir_all(dir)?;
            for (name, yaml) in &migrated.files {
                std::fs::write(dir.join(name), yaml)?;
            }
        }
        None => {
            for (_, yaml) in &migrated.files {
                print!("{yaml}");
            }
        }
    }
    Ok(0)
}

#[cfg(test)]
mod tests;
