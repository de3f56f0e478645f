//! Turning a store spec into an authenticated kube-rs `Client`.
//!
//! Both ways in — `server` + `auth`, or a kubeconfig held in a Secret (`authRef`) — become one
//! in-memory kubeconfig, so TLS and credentials are handled by kube-rs's own loader. A kubeconfig
//! from a Secret is untrusted input: anything that would make the operator run a command or read
//! its own files (exec plugins, auth providers, file paths) is refused.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use kube::config::{
    AuthInfo, Cluster, Context, KubeConfigOptions, Kubeconfig, NamedAuthInfo, NamedCluster,
    NamedContext,
};
use kuvert_core::api::{
    CaProviderType, KubernetesAuth, KubernetesProvider as Spec, SecretKeySelector,
};
use kuvert_core::provider::{KubeAccess, ProviderError, StoreContext, secret_key};
use kuvert_core::secret::SecretBytes;
use secrecy::SecretString;

const FIELD: &str = "spec.provider.kubernetes";
/// Where an in-cluster client finds the API server, as in ESO.
const DEFAULT_SERVER: &str = "https://kubernetes.default";
/// Lifetime of ServiceAccount tokens requested for `auth.serviceAccount`.
const TOKEN_LIFETIME: Duration = Duration::from_secs(600);

fn invalid(field: &str, message: impl Into<String>) -> ProviderError {
    ProviderError::InvalidSpec {
        field: format!("{FIELD}.{field}"),
        message: message.into(),
    }
}

/// Checks the spec without I/O: one way to authenticate, references a SecretStore may make, a
/// valid remote namespace.
pub(crate) fn validate(store: &StoreContext<'_>, spec: &Spec) -> Result<(), ProviderError> {
    if let Some(ns) = &spec.remote_namespace
        && !is_dns_label(ns)
    {
        return Err(invalid(
            "remoteNamespace",
            format!("{ns:?} is not a namespace name"),
        ));
    }
    let refs: Vec<(&str, Option<&str>)> = match (&spec.auth, &spec.auth_ref) {
        (Some(_), Some(_)) | (None, None) => {
            return Err(invalid(
                "auth",
                "exactly one of auth and authRef must be set",
            ));
        }
        (None, Some(r)) => vec![("authRef", r.namespace.as_deref())],
        (Some(KubernetesAuth::Token(t)), None) => {
            vec![(
                "auth.token.bearerToken",
                t.bearer_token.namespace.as_deref(),
            )]
        }
        (Some(KubernetesAuth::Cert(c)), None) => vec![
            ("auth.cert.clientCert", c.client_cert.namespace.as_deref()),
            ("auth.cert.clientKey", c.client_key.namespace.as_deref()),
        ],
        (Some(KubernetesAuth::ServiceAccount(sa)), None) => {
            vec![("auth.serviceAccount", sa.namespace.as_deref())]
        }
    };
    let ca = spec.server.as_ref().and_then(|s| s.ca_provider.as_ref());
    let ca_ref = ca.map(|c| ("server.caProvider", c.namespace.as_deref()));
    for (field, named) in refs.into_iter().chain(ca_ref) {
        // The namespace of the object using a ClusterSecretStore is not known here; any value
        // stands in, only a SecretStore's cross-namespace reference is an error now.
        store.resolve_namespace(&format!("{FIELD}.{field}"), named, Some("-"))?;
    }
    if let Some(url) = spec.server.as_ref().and_then(|s| s.url.as_deref()) {
        url.parse::<http::Uri>()
            .map_err(|e| invalid("server.url", format!("{url:?} is not a URL: {e}")))?;
    }
    Ok(())
}

/// Builds the client: reads credentials through `kube`, resolving references against the
/// store's rules.
pub(crate) async fn connect(
    store: &StoreContext<'_>,
    spec: &Spec,
    namespace: Option<&str>,
    kube: &dyn KubeAccess,
) -> Result<kube::Client, ProviderError> {
    let kubeconfig = match &spec.auth_ref {
        Some(auth_ref) => {
            let text = read_key(store, kube, namespace, "authRef", auth_ref).await?;
            let text = text
                .expose_str()
                .ok_or_else(|| invalid("authRef", "the kubeconfig is not UTF-8"))?;
            let kubeconfig = Kubeconfig::from_yaml(text)
                .map_err(|_| invalid("authRef", "the Secret does not hold a valid kubeconfig"))?;
            refuse_local_access(&kubeconfig)?;
            kubeconfig
        }
        None => build_kubeconfig(store, spec, namespace, kube).await?,
    };
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .map_err(|e| invalid("authRef", format!("unusable kubeconfig: {e}")))?;
    kube::Client::try_from(config).map_err(|e| ProviderError::Unavailable {
        message: "cannot build a client for the remote API server".to_owned(),
        source: Some(Box::new(e)),
    })
}

async fn build_kubeconfig(
    store: &StoreContext<'_>,
    spec: &Spec,
    namespace: Option<&str>,
    kube: &dyn KubeAccess,
) -> Result<Kubeconfig, ProviderError> {
    let server = spec.server.clone().unwrap_or_default();
    let ca_data = match (&server.ca_bundle, &server.ca_provider) {
        (Some(bundle), _) => Some(bundle.clone()),
        (None, Some(ca)) => {
            let ns = store.resolve_namespace(
                &format!("{FIELD}.server.caProvider"),
                ca.namespace.as_deref(),
                namespace,
            )?;
            let pem = match ca.type_ {
                CaProviderType::Secret => secret_key(
                    kube,
                    &format!("{FIELD}.server.caProvider"),
                    ns,
                    &ca.name,
                    &ca.key,
                )
                .await?
                .into_inner(),
                CaProviderType::ConfigMap => kube
                    .config_map(ns, &ca.name)
                    .await?
                    .remove(&ca.key)
                    .ok_or_else(|| ProviderError::NotFound {
                        key: format!(
                            "{FIELD}.server.caProvider: key {:?} of ConfigMap {ns}/{}",
                            ca.key, ca.name
                        ),
                    })?
                    .into_bytes(),
            };
            Some(STANDARD.encode(pem))
        }
        (None, None) => None,
    };
    let mut auth_info = AuthInfo::default();
    match &spec.auth {
        Some(KubernetesAuth::Token(t)) => {
            let token = read_key(
                store,
                kube,
                namespace,
                "auth.token.bearerToken",
                &t.bearer_token,
            )
            .await?;
            auth_info.token = Some(secret_string(token, "auth.token.bearerToken")?);
        }
        Some(KubernetesAuth::Cert(c)) => {
            let cert = read_key(
                store,
                kube,
                namespace,
                "auth.cert.clientCert",
                &c.client_cert,
            )
            .await?;
            let key =
                read_key(store, kube, namespace, "auth.cert.clientKey", &c.client_key).await?;
            auth_info.client_certificate_data = Some(STANDARD.encode(cert.expose()));
            auth_info.client_key_data = Some(SecretString::from(STANDARD.encode(key.expose())));
        }
        Some(KubernetesAuth::ServiceAccount(sa)) => {
            let field = format!("{FIELD}.auth.serviceAccount");
            let ns = store.resolve_namespace(&field, sa.namespace.as_deref(), namespace)?;
            let token = kube
                .service_account_token(ns, &sa.name, &sa.audiences, TOKEN_LIFETIME)
                .await?;
            auth_info.token = Some(secret_string(token, "auth.serviceAccount")?);
        }
        None => {
            return Err(invalid(
                "auth",
                "exactly one of auth and authRef must be set",
            ));
        }
    }
    const NAME: &str = "remote";
    Ok(Kubeconfig {
        clusters: vec![NamedCluster {
            name: NAME.to_owned(),
            cluster: Some(Cluster {
                server: Some(server.url.unwrap_or_else(|| DEFAULT_SERVER.to_owned())),
                certificate_authority_data: ca_data,
                ..Cluster::default()
            }),
            ..NamedCluster::default()
        }],
        auth_infos: vec![NamedAuthInfo {
            name: NAME.to_owned(),
            auth_info: Some(auth_info),
            ..NamedAuthInfo::default()
        }],
        contexts: vec![NamedContext {
            name: NAME.to_owned(),
            context: Some(Context {
                cluster: NAME.to_owned(),
                user: Some(NAME.to_owned()),
                ..Context::default()
            }),
            ..NamedContext::default()
        }],
        current_context: Some(NAME.to_owned()),
        ..Kubeconfig::default()
    })
}

async fn read_key(
    store: &StoreContext<'_>,
    kube: &dyn KubeAccess,
    namespace: Option<&str>,
    field: &str,
    selector: &SecretKeySelector,
) -> Result<SecretBytes, ProviderError> {
    let path = format!("{FIELD}.{field}");
    let ns = store.resolve_namespace(&path, selector.namespace.as_deref(), namespace)?;
    let key = selector
        .key
        .as_deref()
        .ok_or_else(|| invalid(&format!("{field}.key"), "the key of the Secret must be set"))?;
    secret_key(kube, &path, ns, &selector.name, key).await
}

fn secret_string(value: SecretBytes, field: &str) -> Result<SecretString, ProviderError> {
    let text = String::from_utf8(value.into_inner())
        .map_err(|_| invalid(field, "the token is not UTF-8"))?;
    Ok(SecretString::from(text.trim().to_owned()))
}

/// Refuses kubeconfig features that reach outside the Secret: exec plugins and auth providers
/// (which run commands in the operator) and file paths (which read the operator's own files,
/// such as its ServiceAccount token).
fn refuse_local_access(kubeconfig: &Kubeconfig) -> Result<(), ProviderError> {
    for named in &kubeconfig.auth_infos {
        let Some(info) = &named.auth_info else {
            continue;
        };
        let refused = [
            (info.exec.is_some(), "exec"),
            (info.auth_provider.is_some(), "auth-provider"),
            (info.token_file.is_some(), "tokenFile"),
            (info.client_certificate.is_some(), "client-certificate"),
            (info.client_key.is_some(), "client-key"),
        ];
        if let Some((_, what)) = refused.iter().find(|(set, _)| *set) {
            return Err(invalid(
                "authRef",
                format!(
                    "the kubeconfig's user {:?} uses {what}, which kuvert refuses: embed the credentials instead",
                    named.name
                ),
            ));
        }
    }
    for named in &kubeconfig.clusters {
        if named
            .cluster
            .as_ref()
            .is_some_and(|c| c.certificate_authority.is_some())
        {
            return Err(invalid(
                "authRef",
                format!(
                    "the kubeconfig's cluster {:?} names a certificate-authority file: embed certificate-authority-data instead",
                    named.name
                ),
            ));
        }
    }
    Ok(())
}

/// An RFC 1123 label: what namespace and Secret names must be.
pub(crate) fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_labels_exclude_paths_and_traversal() {
        assert!(is_dns_label("team-a"));
        for bad in ["", "a/b", "..", "A", "-a", "a-", "a.b", &"x".repeat(64)] {
            assert!(!is_dns_label(bad), "{bad:?}");
        }
    }

    #[test]
    fn kubeconfig_with_exec_plugin_is_refused() {
        let kc = Kubeconfig::from_yaml(
            "apiVersion: v1\nkind: Config\nusers:\n- name: u\n  user:\n    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: /bin/sh\n",
        )
        .unwrap();
        let err = refuse_local_access(&kc).unwrap_err().to_string();
        assert_eq!(
            err,
            "invalid store spec: spec.provider.kubernetes.authRef: the kubeconfig's user \"u\" uses exec, which kuvert refuses: embed the credentials instead"
        );
    }

    #[test]
    fn kubeconfig_reading_local_files_is_refused() {
        let kc = Kubeconfig::from_yaml(
            "apiVersion: v1\nkind: Config\nusers:\n- name: u\n  user:\n    tokenFile: /var/run/secrets/kubernetes.io/serviceaccount/token\n",
        )
        .unwrap();
        assert!(
            refuse_local_access(&kc)
                .unwrap_err()
                .to_string()
                .contains("uses tokenFile")
        );
        let kc = Kubeconfig::from_yaml(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: https://x\n    certificate-authority: /etc/ca.crt\n",
        )
        .unwrap();
        assert!(
            refuse_local_access(&kc)
                .unwrap_err()
                .to_string()
                .contains("certificate-authority file")
        );
    }
}
