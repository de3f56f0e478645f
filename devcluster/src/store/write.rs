//! Creating and updating objects: namespaces, schema validation, kind-specific rules,
//! generation, status separation, CRD registration.

use std::sync::Arc;

use base64::Engine as _;
use serde_json::{Value, json};

use super::{EventKind, FieldValidation, Part, State, WriteOpts, stored_shape, versioned};
use crate::error::{ApiError, Cause, qualified};
use crate::meta::{invalid_name, meta_mut, meta_str, name_suffix, now, spec_part, uuid};
use crate::registry::{GroupResource, ResourceInfo, from_crd};

impl State {
    fn check_namespace(&self, info: &ResourceInfo, ns: &str) -> Result<(), ApiError> {
        if !info.namespaced {
            return Ok(());
        }
        let namespaces = GroupResource {
            group: String::new(),
            plural: "namespaces".into(),
        };
        match self
            .objects
            .get(&namespaces)
            .and_then(|t| t.get(&(String::new(), ns.to_string())))
        {
            None => Err(ApiError::not_found("", "namespaces", ns)),
            Some(n) if !n["metadata"]["deletionTimestamp"].is_null() => {
                Err(ApiError::forbidden(format!(
                    "{} is forbidden: unable to create new content in namespace {ns} because it is being terminated",
                    qualified(&info.group, &info.plural)
                )))
            }
            Some(_) => Ok(()),
        }
    }

    /// Validates a custom resource against its version's schema (pruning, defaulting, CEL).
    fn validate_custom(
        &self,
        info: &ResourceInfo,
        version: &str,
        obj: &mut Value,
        old: Option<&Value>,
        opts: &WriteOpts,
        warnings: &mut Vec<String>,
    ) -> Result<(), ApiError> {
        let Some(schema) = info.schemas.get(version) else {
            return Ok(());
        };
        let name = meta_str(obj, "name").to_string();
        let out = schema.validate(obj, old);
        // As on kube-apiserver, unknown fields fail the strict decoding of the body, before
        // the object is validated at all.
        if !out.unknown.is_empty() {
            match opts.field_validation {
                FieldValidation::Apply => {
                    let mut unknown: Vec<String> = out
                        .unknown
                        .iter()
                        .map(|u| format!(".{u}: field not declared in schema"))
                        .collect();
                    unknown.sort();
                    let errors = match unknown.as_slice() {
                        [one] => one.clone(),
                        many => format!("errors:\n  {}", many.join("\n  ")),
                    };
                    let ns = meta_str(obj, "namespace");
                    return Err(ApiError::new(
                        500,
                        "",
                        format!(
                            "failed to create typed patch object ({ns}/{name}; {}, Kind={}): {errors}",
                            info.api_version(version),
                            info.kind
                        ),
                    ));
                }
                FieldValidation::Strict => {
                    let list: Vec<String> = out
                        .unknown
                        .iter()
                        .map(|u| format!("unknown field \"{u}\""))
                        .collect();
                    return Err(ApiError::bad_request(format!(
                        "{kind} in version \"{version}\" cannot be handled as a {kind}: strict decoding error: {}",
                        list.join(", "),
                        kind = info.kind,
                    )));
                }
                FieldValidation::Warn => {
                    warnings.extend(out.unknown.iter().map(|u| format!("unknown field \"{u}\"")))
                }
                FieldValidation::Ignore => {}
            }
        }
        if !out.causes.is_empty() {
            return Err(ApiError::invalid(
                &info.group,
                &info.kind,
                &name,
                out.causes,
            ));
        }
        Ok(())
    }

    /// Kind-specific rules applied to every write of a built-in kind.
    fn normalize(
        &self,
        info: &ResourceInfo,
        obj: &mut Value,
        old: Option<&Value>,
    ) -> Result<(), ApiError> {
        if info.custom {
            return Ok(());
        }
        match (info.group.as_str(), info.plural.as_str()) {
            ("", "secrets") => {
                if let Some(Value::Object(string_data)) =
                    obj.as_object_mut().and_then(|m| m.remove("stringData"))
                {
                    let data = obj
                        .as_object_mut()
                        .expect("object")
                        .entry("data")
                        .or_insert_with(|| json!({}));
                    if !data.is_object() {
                        *data = json!({});
                    }
                    for (k, v) in string_data {
                        let text = v.as_str().unwrap_or_default().to_string();
                        data[k] = json!(base64::engine::general_purpose::STANDARD.encode(text));
                    }
                }
                if obj["type"].is_null() {
                    obj["type"] = json!("Opaque");
                }
                if let Some(old) = old
                    && old["immutable"] == json!(true)
                    && (old["data"] != obj["data"] || obj["immutable"] != json!(true))
                {
                    return Err(ApiError::invalid(
                        "",
                        "Secret",
                        meta_str(obj, "name"),
                        vec![Cause {
                            field: "data".into(),
                            reason: "FieldValueForbidden",
                            message: "Forbidden: field is immutable when `immutable` is set".into(),
                        }],
                    ));
                }
            }
            ("", "namespaces") => {
                if obj["spec"]["finalizers"].is_null() {
                    obj["spec"]["finalizers"] = json!(["kubernetes"]);
                }
                if obj["status"]["phase"].is_null() {
                    obj["status"] = json!({"phase": "Active"});
                }
                // The API server keeps this label equal to the name on every write, so label
                // selectors can pick a namespace by name.
                let name = json!(meta_str(obj, "name"));
                let metadata = &mut obj["metadata"];
                if !metadata["labels"].is_object() {
                    metadata["labels"] = json!({});
                }
                metadata["labels"]["kubernetes.io/metadata.name"] = name;
            }
            ("apiextensions.k8s.io", "customresourcedefinitions") => {
                let parsed = from_crd(obj).map_err(|msg| {
                    let (field, message) = msg.split_once(": ").unwrap_or(("spec", &msg));
                    ApiError::invalid(
                        &info.group,
                        &info.kind,
                        meta_str(obj, "name"),
                        vec![Cause {
                            field: field.into(),
                            reason: "FieldValueInvalid",
                            message: message.into(),
                        }],
                    )
                })?;
                let expected = format!("{}.{}", parsed.plural, parsed.group);
                if meta_str(obj, "name") != expected {
                    return Err(ApiError::invalid(
                        &info.group,
                        &info.kind,
                        meta_str(obj, "name"),
                        vec![Cause {
                            field: "metadata.name".into(),
                            reason: "FieldValueInvalid",
                            message: format!(
                                "Invalid value: {:?}: must be spec.names.plural+\".\"+spec.group",
                                meta_str(obj, "name")
                            ),
                        }],
                    ));
                }
                let stored: Vec<Value> = obj["spec"]["versions"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|v| v["storage"] == json!(true))
                    .map(|v| v["name"].clone())
                    .collect();
                obj["status"] = json!({
                    "acceptedNames": obj["spec"]["names"].clone(),
                    "storedVersions": stored,
                    "conditions": [
                        {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts", "message": "no conflicts found", "lastTransitionTime": now()},
                        {"type": "Established", "status": "True", "reason": "InitialNamesAccepted", "message": "the initial names have been accepted", "lastTransitionTime": now()}
                    ]
                });
            }
            _ => {}
        }
        Ok(())
    }

    /// After a CRD write: serve (or re-serve) its kind.
    fn crd_written(&mut self, crd: &Value) {
        if let Ok(info) = from_crd(crd) {
            self.registry
                .set_custom(meta_str(crd, "name"), Arc::new(info));
        }
    }

    /// `POST`: creates an object. `body` has been parsed already; `ns` is the request's namespace.
    pub fn create(
        &mut self,
        info: &Arc<ResourceInfo>,
        version: &str,
        ns: &str,
        mut body: Value,
        opts: &WriteOpts,
        warnings: &mut Vec<String>,
    ) -> Result<Value, ApiError> {
        if !body.is_object() {
            return Err(ApiError::bad_request(
                "the request body must be a JSON or YAML object",
            ));
        }
        if let Some(kind) = body["kind"].as_str()
            && kind != info.kind
        {
            return Err(ApiError::bad_request(format!(
                "the kind of the provided object {kind:?} does not match the resource {:?}",
                info.kind
            )));
        }
        let body_ns = meta_str(&body, "namespace").to_string();
        if info.namespaced && !body_ns.is_empty() && body_ns != ns {
            return Err(ApiError::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            ));
        }
        let mut name = meta_str(&body, "name").to_string();
        if name.is_empty() {
            let prefix = meta_str(&body, "generateName");
            if !prefix.is_empty() {
                name = format!("{prefix}{}", name_suffix());
            }
        }
        if let Some(why) = invalid_name(&name, info.plural == "namespaces") {
            let field = "metadata.name";
            let message = if name.is_empty() {
                "Required value: name or generateName is required".to_string()
            } else {
                format!("Invalid value: {name:?}: {why}")
            };
            return Err(ApiError::invalid(
                &info.group,
                &info.kind,
                &name,
                vec![Cause {
                    field: field.into(),
                    reason: if name.is_empty() {
                        "FieldValueRequired"
                    } else {
                        "FieldValueInvalid"
                    },
                    message,
                }],
            ));
        }
        if !meta_str(&body, "resourceVersion").is_empty() {
            // The storage layer's error, surfaced as is by the real server.
            return Err(ApiError::new(
                500,
                "InternalError",
                "resourceVersion should not be set on objects to be created",
            ));
        }
        self.check_namespace(info, ns)?;
        if self.stored(info, ns, &name).is_some() {
            return Err(ApiError::already_exists(&info.group, &info.plural, &name));
        }
        body["apiVersion"] = json!(info.api_version(version));
        body["kind"] = json!(info.kind);
        if info.status_subresource
            && info.custom
            && let Some(m) = body.as_object_mut()
        {
            m.remove("status");
        }
        {
            let meta = meta_mut(&mut body);
            meta.insert("name".into(), json!(name));
            if info.namespaced {
                meta.insert("namespace".into(), json!(ns));
            } else {
                meta.remove("namespace");
            }
            meta.insert("uid".into(), json!(uuid()));
            meta.insert("creationTimestamp".into(), json!(now()));
            meta.remove("deletionTimestamp");
            meta.remove("deletionGracePeriodSeconds");
            meta.remove("resourceVersion");
            if info.generation {
                meta.insert("generation".into(), json!(1));
            } else {
                meta.remove("generation");
            }
        }
        self.validate_custom(info, version, &mut body, None, opts, warnings)?;
        self.normalize(info, &mut body, None)?;
        crate::validation::check(info, &body, None)?;
        let body = stored_shape(body, info);
        if opts.dry_run {
            return Ok(versioned(body, info, version));
        }
        let stored = self.commit(info, body, EventKind::Added);
        match (info.group.as_str(), info.plural.as_str()) {
            ("apiextensions.k8s.io", "customresourcedefinitions") => self.crd_written(&stored),
            ("", "namespaces") => {
                if let Some(sa) = self.registry.find("", "v1", "serviceaccounts") {
                    let default_sa = json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default"}});
                    let _ = self.create(
                        &sa,
                        "v1",
                        &name,
                        default_sa,
                        &WriteOpts::default(),
                        &mut Vec::new(),
                    );
                }
            }
            _ => {}
        }
        Ok(versioned(stored, info, version))
    }

    /// `PUT` (and the last step of `PATCH`): replaces an object, or only its status for `Part::Status`.
    #[allow(clippy::too_many_arguments)]
    pub fn update(
        &mut self,
        info: &Arc<ResourceInfo>,
        version: &str,
        ns: &str,
        name: &str,
        mut body: Value,
        part: Part,
        opts: &WriteOpts,
        warnings: &mut Vec<String>,
    ) -> Result<Value, ApiError> {
        let old = self
            .stored(info, ns, name)
            .cloned()
            .ok_or_else(|| ApiError::not_found(&info.group, &info.plural, name))?;
        if !body.is_object() {
            return Err(ApiError::bad_request(
                "the request body must be a JSON or YAML object",
            ));
        }
        let body_name = meta_str(&body, "name");
        if !body_name.is_empty() && body_name != name {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({body_name}) does not match the name on the URL ({name})"
            )));
        }
        let rv = meta_str(&body, "resourceVersion");
        // Custom resources, unlike most built-in kinds, refuse unconditional updates.
        if rv.is_empty() && info.custom {
            return Err(ApiError::invalid(
                &info.group,
                &info.kind,
                name,
                vec![Cause {
                    field: "metadata.resourceVersion".into(),
                    reason: "FieldValueInvalid",
                    message: "Invalid value: 0x0: must be specified for an update".into(),
                }],
            ));
        }
        if !rv.is_empty() && rv != meta_str(&old, "resourceVersion") {
            return Err(ApiError::stale(&info.group, &info.plural, name));
        }
        let mut new = match part {
            Part::Status => {
                let mut n = old.clone();
                n["status"] = body.get("status").cloned().unwrap_or(Value::Null);
                // A status apply records its manager; nothing else of metadata changes.
                if let Some(fields) = body["metadata"].get("managedFields") {
                    meta_mut(&mut n).insert("managedFields".into(), fields.clone());
                }
                n
            }
            Part::Main => {
                if info.status_subresource {
                    body["status"] = old.get("status").cloned().unwrap_or(Value::Null);
                }
                body
            }
        };
        if new.get("status").is_some_and(Value::is_null)
            && let Some(m) = new.as_object_mut()
        {
            m.remove("status");
        }
        // Identity and server-owned metadata always come from the stored object.
        {
            let old_meta = old["metadata"].as_object().cloned().unwrap_or_default();
            let meta = meta_mut(&mut new);
            for k in [
                "uid",
                "creationTimestamp",
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
                "generation",
                "name",
                "namespace",
            ] {
                match old_meta.get(k) {
                    Some(v) => meta.insert(k.into(), v.clone()),
                    None => meta.remove(k),
                };
            }
            meta.remove("resourceVersion");
        }
        new = versioned(new, info, version);
        let deleting = !old["metadata"]["deletionTimestamp"].is_null();
        if deleting {
            let old_f: Vec<&Value> = old["metadata"]["finalizers"]
                .as_array()
                .map(|a| a.iter().collect())
                .unwrap_or_default();
            if let Some(added) = new["metadata"]["finalizers"]
                .as_array()
                .and_then(|a| a.iter().find(|f| !old_f.contains(f)))
            {
                return Err(ApiError::invalid(
                    &info.group,
                    &info.kind,
                    name,
                    vec![Cause {
                        field: "metadata.finalizers".into(),
                        reason: "FieldValueForbidden",
                        message: format!(
                            "Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers [{}]",
                            added.as_str().unwrap_or_default()
                        ),
                    }],
                ));
            }
        }
        if part == Part::Main || info.custom {
            self.validate_custom(
                info,
                version,
                &mut new,
                Some(&versioned(old.clone(), info, version)),
                opts,
                warnings,
            )?;
        }
        self.normalize(info, &mut new, Some(&old))?;
        crate::validation::check(info, &new, Some(&old))?;
        if info.generation
            && spec_part(&new, info.status_subresource) != spec_part(&old, info.status_subresource)
        {
            let g = old["metadata"]["generation"].as_i64().unwrap_or(0) + 1;
            meta_mut(&mut new).insert("generation".into(), json!(g));
        }
        let new = stored_shape(new, info);
        let mut unchanged = old.clone();
        meta_mut(&mut unchanged).remove("resourceVersion");
        if new == unchanged {
            // A no-op write keeps the resourceVersion and emits no event, as the API server does.
            return Ok(versioned(old, info, version));
        }
        if opts.dry_run {
            return Ok(versioned(new, info, version));
        }
        let finalizers_empty = new["metadata"]["finalizers"]
            .as_array()
            .is_none_or(Vec::is_empty);
        if deleting && finalizers_empty {
            let gone = self.remove(info, new);
            return Ok(versioned(gone, info, version));
        }
        let stored = self.commit(info, new, EventKind::Modified);
        if info.group == "apiextensions.k8s.io" && info.plural == "customresourcedefinitions" {
            self.crd_written(&stored);
        }
        Ok(versioned(stored, info, version))
    }
}
