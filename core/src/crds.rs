//! The CustomResourceDefinitions generated from the API types: what `kuvert crds` prints and
//! what `crds/` holds.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;

use crate::api;
use crate::generator::Kind;

/// Every CRD kuvert serves, in a stable order.
pub fn all() -> Vec<CustomResourceDefinition> {
    vec![
        api::SecretStore::crd(),
        api::ClusterSecretStore::crd(),
        api::ExternalSecret::crd(),
        api::ClusterExternalSecret::crd(),
        api::PushSecret::crd(),
    ]
    .into_iter()
    .chain(Kind::ALL.iter().map(|kind| kind.crd()))
    .collect()
}

/// The file name a CRD is kept under in `crds/`: `<plural>.<group>.yaml`.
pub fn file_name(crd: &CustomResourceDefinition) -> String {
    format!("{}.yaml", crd.metadata.name.as_deref().unwrap_or("unnamed"))
}

/// One CRD as a YAML document (without the leading `---`).
pub fn to_yaml(crd: &CustomResourceDefinition) -> String {
    serde_saphyr::to_string(crd).expect("a CRD always serialises")
}

/// Every CRD as one multi-document YAML stream.
pub fn all_yaml() -> String {
    all()
        .iter()
        .map(|crd| format!("---\n{}", to_yaml(crd)))
        .collect()
}
