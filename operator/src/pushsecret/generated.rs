//! `spec.selector.generatorRef`: a generator's values, generated once and kept in the companion
//! Secret `<name>.kuvert-push-generated` (owned by the PushSecret, so it goes with it), then
//! pushed like a Secret's keys on every reconcile. A new `generatorRef` generates anew.
//! Generators whose values hold a lease (`VaultDynamicSecret`) are refused: a pushed credential
//! would outlive the lease nobody renews.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{Api, ObjectMeta, PostParams};
use kube::{Resource, ResourceExt};
use kuvert_core::api::{GeneratorRef, MANAGED_LABEL, PushSecret};
use kuvert_core::generator::{Kind, checked_kind, display_name};
use kuvert_core::push::Reason;
use kuvert_core::secret::SecretBytes;

use super::Failure;
use crate::context::Context;
use crate::externalsecret::calls::generator_for;

/// The annotation of the companion naming the generator its values came from.
const GENERATOR_ANNOTATION: &str = "kuvert.io/generator";

/// The companion Secret's name.
pub fn companion_name(ps: &PushSecret) -> String {
    format!("{}.kuvert-push-generated", ps.name_any())
}

/// The kept values, generated now if there are none (or they came from another generator).
pub async fn values(
    ctx: &Context,
    ps: &PushSecret,
    generator_ref: &GeneratorRef,
) -> Result<BTreeMap<String, SecretBytes>, Failure> {
    let field = "spec.selector.generatorRef";
    let errored = |message: String| (Reason::Errored, format!("{field}: {message}"));
    let namespace = ps.namespace().unwrap_or_default();
    let kind = checked_kind(generator_ref).map_err(|e| errored(e.to_string()))?;
    if kind == Kind::VaultDynamicSecret {
        return Err(errored(
            "VaultDynamicSecret values hold a lease, which a PushSecret does not renew; push a Secret an ExternalSecret writes instead".to_owned(),
        ));
    }
    let generator_name = display_name(kind, &namespace, &generator_ref.name);
    let api: Api<Secret> = Api::namespaced(ctx.client.clone(), &namespace);
    let name = companion_name(ps);
    let unavailable = |e: kube::Error| {
        (
            Reason::PushFailed,
            format!("{field}: Secret {namespace}/{name}: the Kubernetes API call failed: {e}"),
        )
    };
    let existing = api.get_opt(&name).await.map_err(unavailable)?;
    if let Some(secret) = &existing {
        let owned = secret.owner_references().iter().any(|r| {
            r.controller == Some(true)
                && r.kind == "PushSecret"
                && Some(&r.uid) == ps.uid().as_ref()
        });
        if !owned {
            return Err(errored(format!(
                "Secret {namespace}/{name} exists and is not this PushSecret's: it is never used or overwritten"
            )));
        }
        if secret.annotations().get(GENERATOR_ANNOTATION) == Some(&generator_name) {
            return Ok(secret
                .data
                .iter()
                .flatten()
                .map(|(k, v)| (k.clone(), SecretBytes::new(v.0.clone())))
                .collect());
        }
    }
    let (_, generator) = generator_for(ctx, &namespace, kind, &generator_ref.name)
        .await
        .map_err(|e| errored(e.to_string()))?;
    let generated = generator.generate().await.map_err(|e| {
        (
            Reason::PushFailed,
            format!("{field}: {generator_name}: {e}"),
        )
    })?;
    let companion = Secret {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            namespace: Some(namespace.clone()),
            labels: Some([(MANAGED_LABEL.to_owned(), "true".to_owned())].into()),
            annotations: Some([(GENERATOR_ANNOTATION.to_owned(), generator_name.clone())].into()),
            owner_references: Some(vec![OwnerReference {
                api_version: PushSecret::api_version(&()).into_owned(),
                kind: PushSecret::kind(&()).into_owned(),
                name: ps.name_any(),
                uid: ps.uid().unwrap_or_default(),
                controller: Some(true),
                block_owner_deletion: Some(true),
            }]),
            resource_version: existing.as_ref().and_then(|s| s.resource_version()),
            ..ObjectMeta::default()
        },
        data: Some(
            generated
                .values
                .iter()
                .map(|(k, v)| (k.clone(), ByteString(v.expose().to_vec())))
                .collect(),
        ),
        ..Secret::default()
    };
    // Created, or replaced at the version read: a concurrent writer conflicts (and the next
    // reconcile reads what it wrote) instead of two values being pushed.
    let written = match existing {
        Some(_) => api.replace(&name, &PostParams::default(), &companion).await,
        None => api.create(&PostParams::default(), &companion).await,
    };
    written.map_err(unavailable)?;
    tracing::info!(namespace, name = ps.name_any(), generator = %generator_name, "generated values kept for pushing");
    Ok(generated.values)
}
