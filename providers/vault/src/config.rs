//! From a store spec to [`ConnectionSettings`]: checking the spec without I/O, then resolving its
//! references (Secrets, ConfigMaps, ServiceAccount tokens) through [`KubeAccess`].

use std::path::Path;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use kuvert_core::api::{CaProviderType, SecretKeySelector, VaultAuth, VaultProvider};
use kuvert_core::provider::{KubeAccess, ProviderError, StoreContext, secret_key};
use kuvert_core::secret::SecretBytes;
use sha2::{Digest, Sha256};

use crate::connection::{ClientIdentity, ConnectionSettings, Login};

const FIELD: &str = "spec.provider.vault";
/// Default lifetime of a ServiceAccount token requested for JWT login, as in ESO.
const DEFAULT_JWT_SA_TOKEN_SECONDS: i64 = 600;
/// Lifetime of a ServiceAccount token requested for Kubernetes login.
const KUBERNETES_SA_TOKEN: Duration = Duration::from_secs(600);

fn invalid(field: &str, message: impl Into<String>) -> ProviderError {
    ProviderError::InvalidSpec {
        field: format!("{FIELD}.{field}"),
        message: message.into(),
    }
}

/// Mount paths and names are single path segments or slash-separated paths without `.`/`..`.
fn check_mount(field: &str, value: &str) -> Result<(), ProviderError> {
    let trimmed = value.trim_matches('/');
    if trimmed.is_empty()
        || trimmed
            .split('/')
            .any(|s| s.is_empty() || s == "." || s == "..")
        || trimmed.contains(['?', '#'])
    {
        return Err(invalid(field, format!("{value:?} is not a mount path")));
    }
    Ok(())
}

fn check_name(field: &str, value: &str) -> Result<(), ProviderError> {
    if value.is_empty() || value.contains(['/', '?', '#']) || value == "." || value == ".." {
        return Err(invalid(field, format!("{value:?} is not a valid name")));
    }
    Ok(())
}

fn check_key(field: &str, selector: &SecretKeySelector) -> Result<(), ProviderError> {
    if selector.name.is_empty() {
        return Err(invalid(
            &format!("{field}.name"),
            "the Secret name is required",
        ));
    }
    if selector.key.as_deref().unwrap_or_default().is_empty() {
        return Err(invalid(
            &format!("{field}.key"),
            "the Secret key is required",
        ));
    }
    Ok(())
}

/// Every `(field, named namespace)` the spec refers to.
fn references<'a>(spec: &'a VaultProvider) -> Vec<(String, Option<&'a str>)> {
    let mut refs = Vec::new();
    let mut add =
        |field: &str, ns: Option<&'a String>| refs.push((field.to_owned(), ns.map(String::as_str)));
    if let Some(ca) = &spec.ca_provider {
        add("caProvider", ca.namespace.as_ref());
    }
    if let Some(tls) = &spec.tls {
        if let Some(r) = &tls.cert_secret_ref {
            add("tls.certSecretRef", r.namespace.as_ref());
        }
        if let Some(r) = &tls.key_secret_ref {
            add("tls.keySecretRef", r.namespace.as_ref());
        }
    }
    match &spec.auth {
        VaultAuth::TokenSecretRef(r) => add("auth.tokenSecretRef", r.namespace.as_ref()),
        VaultAuth::AppRole(a) => {
            add("auth.appRole.secretRef", a.secret_ref.namespace.as_ref());
            if let Some(r) = &a.role_ref {
                add("auth.appRole.roleRef", r.namespace.as_ref());
            }
        }
        VaultAuth::Kubernetes(k) => {
            if let Some(r) = &k.secret_ref {
                add("auth.kubernetes.secretRef", r.namespace.as_ref());
            }
            if let Some(sa) = &k.service_account_ref {
                add("auth.kubernetes.serviceAccountRef", sa.namespace.as_ref());
            }
        }
        VaultAuth::Jwt(j) => {
            if let Some(r) = &j.secret_ref {
                add("auth.jwt.secretRef", r.namespace.as_ref());
            }
            if let Some(t) = &j.kubernetes_service_account_token {
                add(
                    "auth.jwt.kubernetesServiceAccountToken.serviceAccountRef",
                    t.service_account_ref.namespace.as_ref(),
                );
            }
        }
        VaultAuth::UserPass(u) => add("auth.userPass.secretRef", u.secret_ref.namespace.as_ref()),
        VaultAuth::Ldap(l) => add("auth.ldap.secretRef", l.secret_ref.namespace.as_ref()),
        VaultAuth::Cert(c) => {
            add("auth.cert.clientCert", c.client_cert.namespace.as_ref());
            add("auth.cert.secretRef", c.secret_ref.namespace.as_ref());
        }
    }
    refs
}

/// Checks the spec without I/O.
pub(crate) fn validate(
    store: &StoreContext<'_>,
    spec: &VaultProvider,
) -> Result<(), ProviderError> {
    let url = reqwest::Url::parse(&spec.server)
        .map_err(|e| invalid("server", format!("{:?} is not a URL: {e}", spec.server)))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(invalid(
            "server",
            "the address must be http:// or https:// with a host",
        ));
    }
    if let Some(path) = &spec.path {
        check_mount("path", path)?;
    }
    if let Some(bundle) = &spec.ca_bundle {
        if spec.ca_provider.is_some() {
            return Err(invalid("caBundle", "set caBundle or caProvider, not both"));
        }
        STANDARD
            .decode(bundle.trim())
            .map_err(|e| invalid("caBundle", format!("not base64: {e}")))?;
    }
    if let Some(ca) = &spec.ca_provider
        && (ca.name.is_empty() || ca.key.is_empty())
    {
        return Err(invalid("caProvider", "name and key are required"));
    }
    if let Some(tls) = &spec.tls
        && (tls.cert_secret_ref.is_none() != tls.key_secret_ref.is_none())
    {
        return Err(invalid("tls", "certSecretRef and keySecretRef go together"));
    }
    for (name, value) in &spec.headers {
        let header = reqwest::header::HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| invalid("headers", format!("{name:?} is not a header name")))?;
        if header == "x-vault-token" {
            return Err(invalid(
                "headers",
                "X-Vault-Token is set by the auth method",
            ));
        }
        reqwest::header::HeaderValue::from_str(value).map_err(|_| {
            invalid(
                "headers",
                format!("the value of {name:?} is not a header value"),
            )
        })?;
    }
    match &spec.auth {
        VaultAuth::TokenSecretRef(r) => check_key("auth.tokenSecretRef", r)?,
        VaultAuth::AppRole(a) => {
            if let Some(p) = &a.path {
                check_mount("auth.appRole.path", p)?;
            }
            match (&a.role_id, &a.role_ref) {
                (Some(_), Some(_)) | (None, None) => {
                    return Err(invalid(
                        "auth.appRole",
                        "exactly one of roleId and roleRef is required",
                    ));
                }
                (Some(id), None) if id.is_empty() => {
                    return Err(invalid("auth.appRole.roleId", "must not be empty"));
                }
                (None, Some(r)) => check_key("auth.appRole.roleRef", r)?,
                _ => {}
            }
            check_key("auth.appRole.secretRef", &a.secret_ref)?;
        }
        VaultAuth::Kubernetes(k) => {
            if let Some(p) = &k.mount_path {
                check_mount("auth.kubernetes.mountPath", p)?;
            }
            if k.role.is_empty() {
                return Err(invalid("auth.kubernetes.role", "is required"));
            }
            if k.secret_ref.is_some() && k.service_account_ref.is_some() {
                return Err(invalid(
                    "auth.kubernetes",
                    "set serviceAccountRef or secretRef, not both",
                ));
            }
            if let Some(r) = &k.secret_ref {
                check_key("auth.kubernetes.secretRef", r)?;
            }
            if let Some(sa) = &k.service_account_ref {
                check_name("auth.kubernetes.serviceAccountRef.name", &sa.name)?;
            }
        }
        VaultAuth::Jwt(j) => {
            if let Some(p) = &j.path {
                check_mount("auth.jwt.path", p)?;
            }
            match (&j.secret_ref, &j.kubernetes_service_account_token) {
                (Some(r), None) => check_key("auth.jwt.secretRef", r)?,
                (None, Some(t)) => {
                    check_name(
                        "auth.jwt.kubernetesServiceAccountToken.serviceAccountRef.name",
                        &t.service_account_ref.name,
                    )?;
                    if t.expiration_seconds.is_some_and(|s| s < 600) {
                        return Err(invalid(
                            "auth.jwt.kubernetesServiceAccountToken.expirationSeconds",
                            "must be at least 600 (the TokenRequest minimum)",
                        ));
                    }
                }
                _ => {
                    return Err(invalid(
                        "auth.jwt",
                        "exactly one of secretRef and kubernetesServiceAccountToken is required",
                    ));
                }
            }
        }
        VaultAuth::UserPass(u) => {
            if let Some(p) = &u.path {
                check_mount("auth.userPass.path", p)?;
            }
            check_name("auth.userPass.username", &u.username)?;
            check_key("auth.userPass.secretRef", &u.secret_ref)?;
        }
        VaultAuth::Ldap(l) => {
            if let Some(p) = &l.path {
                check_mount("auth.ldap.path", p)?;
            }
            check_name("auth.ldap.username", &l.username)?;
            check_key("auth.ldap.secretRef", &l.secret_ref)?;
        }
        VaultAuth::Cert(c) => {
            if let Some(p) = &c.path {
                check_mount("auth.cert.path", p)?;
            }
            check_key("auth.cert.clientCert", &c.client_cert)?;
            check_key("auth.cert.secretRef", &c.secret_ref)?;
            if url.scheme() != "https" {
                return Err(invalid(
                    "auth.cert",
                    "the cert method needs an https:// server",
                ));
            }
        }
    }
    for (field, named) in references(spec) {
        // The namespace of the object using a ClusterSecretStore is unknown here; any value
        // stands in: only a SecretStore's reference to another namespace is an error now.
        store.resolve_namespace(&format!("{FIELD}.{field}"), named, Some("-"))?;
    }
    Ok(())
}

/// What a resolved configuration is keyed by in the connection cache: the spec (which holds
/// no secrets, only references) plus a digest of everything the references resolved to.
pub(crate) struct Resolved {
    pub settings: ConnectionSettings,
    pub key: [u8; 32],
    /// Where a ServiceAccount token was requested (its material is refreshed, not keyed).
    pub requested_token: Option<RequestedToken>,
}

/// A ServiceAccount token requested through the TokenRequest API.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct RequestedToken {
    pub namespace: String,
    pub name: String,
    pub audiences: Vec<String>,
    pub lifetime: Duration,
}

/// Resolves every reference and digests the result.
pub(crate) async fn resolve(
    store: &StoreContext<'_>,
    spec: &VaultProvider,
    namespace: Option<&str>,
    kube: &dyn KubeAccess,
    own_token_path: &Path,
) -> Result<Resolved, ProviderError> {
    let mut digest = Sha256::new();
    digest.update(serde_json::to_vec(spec).unwrap_or_default());
    let mut feed = |label: &str, bytes: &[u8]| {
        digest.update((label.len() as u64).to_be_bytes());
        digest.update(label.as_bytes());
        digest.update((bytes.len() as u64).to_be_bytes());
        digest.update(bytes);
    };

    let ca_pem = match (&spec.ca_bundle, &spec.ca_provider) {
        (Some(bundle), _) => Some(
            STANDARD
                .decode(bundle.trim())
                .map_err(|e| invalid("caBundle", format!("not base64: {e}")))?,
        ),
        (None, Some(ca)) => {
            let field = format!("{FIELD}.caProvider");
            let ns = store.resolve_namespace(&field, ca.namespace.as_deref(), namespace)?;
            let pem = match ca.type_ {
                CaProviderType::Secret => secret_key(kube, &field, ns, &ca.name, &ca.key)
                    .await
                    .map_err(|e| naming(&field, e))?
                    .into_inner(),
                CaProviderType::ConfigMap => {
                    let mut data = kube
                        .config_map(ns, &ca.name)
                        .await
                        .map_err(|e| naming(&field, e))?;
                    data.remove(&ca.key)
                        .ok_or_else(|| ProviderError::NotFound {
                            key: format!("{field}: key {:?} of ConfigMap {ns}/{}", ca.key, ca.name),
                        })?
                        .into_bytes()
                }
            };
            Some(pem)
        }
        (None, None) => None,
    };
    if let Some(pem) = &ca_pem {
        feed("ca", pem);
    }

    let mut client_identity = match &spec.tls {
        Some(tls) => match (&tls.cert_secret_ref, &tls.key_secret_ref) {
            (Some(cert), Some(key)) => Some(ClientIdentity {
                cert_pem: read_default(
                    store,
                    namespace,
                    kube,
                    "tls.certSecretRef",
                    cert,
                    "tls.crt",
                )
                .await?
                .into_inner(),
                key_pem: read_default(store, namespace, kube, "tls.keySecretRef", key, "tls.key")
                    .await?,
            }),
            _ => None,
        },
        None => None,
    };

    let mut requested_token = None;
    let login = match &spec.auth {
        VaultAuth::TokenSecretRef(r) => {
            let token = read_key(store, namespace, kube, "auth.tokenSecretRef", r).await?;
            Login::Token(trimmed(token))
        }
        VaultAuth::AppRole(a) => {
            let role_id = match (&a.role_id, &a.role_ref) {
                (Some(id), _) => id.clone(),
                (None, Some(r)) => {
                    let bytes = read_key(store, namespace, kube, "auth.appRole.roleRef", r).await?;
                    String::from_utf8(trimmed(bytes).into_inner())
                        .map_err(|_| invalid("auth.appRole.roleRef", "the role ID is not UTF-8"))?
                }
                (None, None) => {
                    return Err(invalid(
                        "auth.appRole",
                        "exactly one of roleId and roleRef is required",
                    ));
                }
            };
            Login::AppRole {
                mount: mount_or(&a.path, "approle"),
                role_id,
                secret_id: trimmed(
                    read_key(
                        store,
                        namespace,
                        kube,
                        "auth.appRole.secretRef",
                        &a.secret_ref,
                    )
                    .await?,
                ),
            }
        }
        VaultAuth::Kubernetes(k) => {
            let jwt = match (&k.secret_ref, &k.service_account_ref) {
                (Some(r), _) => {
                    trimmed(read_key(store, namespace, kube, "auth.kubernetes.secretRef", r).await?)
                }
                (None, Some(sa)) => {
                    let field = format!("{FIELD}.auth.kubernetes.serviceAccountRef");
                    let ns = store.resolve_namespace(&field, sa.namespace.as_deref(), namespace)?;
                    let req = RequestedToken {
                        namespace: ns.to_owned(),
                        name: sa.name.clone(),
                        audiences: sa.audiences.clone(),
                        lifetime: KUBERNETES_SA_TOKEN,
                    };
                    // Requested by the cache only when it logs in (see `cache.rs`).
                    requested_token = Some(req);
                    SecretBytes::default()
                }
                (None, None) => {
                    // The operator's own ServiceAccount token, as mounted into its pod. It is
                    // re-read on every resolution (the kubelet rotates it).
                    let bytes = tokio::fs::read(own_token_path).await.map_err(|e| {
                        invalid(
                            "auth.kubernetes",
                            format!(
                                "neither serviceAccountRef nor secretRef is set and the operator's own \
                                 ServiceAccount token at {} cannot be read: {e}",
                                own_token_path.display()
                            ),
                        )
                    })?;
                    trimmed(SecretBytes::new(bytes))
                }
            };
            Login::Kubernetes {
                mount: mount_or(&k.mount_path, "kubernetes"),
                role: k.role.clone(),
                jwt,
            }
        }
        VaultAuth::Jwt(j) => {
            let jwt = match (&j.secret_ref, &j.kubernetes_service_account_token) {
                (Some(r), _) => {
                    trimmed(read_key(store, namespace, kube, "auth.jwt.secretRef", r).await?)
                }
                (None, Some(t)) => {
                    let field =
                        format!("{FIELD}.auth.jwt.kubernetesServiceAccountToken.serviceAccountRef");
                    let sa = &t.service_account_ref;
                    let ns = store.resolve_namespace(&field, sa.namespace.as_deref(), namespace)?;
                    let mut audiences = t.audiences.clone();
                    audiences.extend(sa.audiences.iter().cloned());
                    if audiences.is_empty() {
                        audiences.push("vault".to_owned());
                    }
                    let seconds = t.expiration_seconds.unwrap_or(DEFAULT_JWT_SA_TOKEN_SECONDS);
                    let req = RequestedToken {
                        namespace: ns.to_owned(),
                        name: sa.name.clone(),
                        audiences,
                        lifetime: Duration::from_secs(u64::try_from(seconds).unwrap_or(600)),
                    };
                    // Requested by the cache only when it logs in (see `cache.rs`).
                    requested_token = Some(req);
                    SecretBytes::default()
                }
                (None, None) => {
                    return Err(invalid(
                        "auth.jwt",
                        "exactly one of secretRef and kubernetesServiceAccountToken is required",
                    ));
                }
            };
            Login::Jwt {
                mount: mount_or(&j.path, "jwt"),
                role: j.role.clone(),
                jwt,
            }
        }
        VaultAuth::UserPass(u) => Login::UserPass {
            mount: mount_or(&u.path, "userpass"),
            username: u.username.clone(),
            password: read_key(
                store,
                namespace,
                kube,
                "auth.userPass.secretRef",
                &u.secret_ref,
            )
            .await?,
        },
        VaultAuth::Ldap(l) => Login::Ldap {
            mount: mount_or(&l.path, "ldap"),
            username: l.username.clone(),
            password: read_key(store, namespace, kube, "auth.ldap.secretRef", &l.secret_ref)
                .await?,
        },
        VaultAuth::Cert(c) => {
            // The cert method authenticates the TLS client certificate: this one replaces any
            // `tls` identity, as the login and every later request use one connection pool.
            client_identity = Some(ClientIdentity {
                cert_pem: read_key(
                    store,
                    namespace,
                    kube,
                    "auth.cert.clientCert",
                    &c.client_cert,
                )
                .await?
                .into_inner(),
                key_pem: read_key(store, namespace, kube, "auth.cert.secretRef", &c.secret_ref)
                    .await?,
            });
            Login::Cert {
                mount: mount_or(&c.path, "cert"),
                name: c.name.clone(),
            }
        }
    };
    if let Some(id) = &client_identity {
        feed("client-cert", &id.cert_pem);
        feed("client-key", id.key_pem.expose());
    }
    match (&requested_token, &login) {
        // A requested token differs on every request: key the cache by whose token it is.
        (Some(req), _) => feed(
            "service-account",
            format!(
                "{}/{}/{:?}/{:?}",
                req.namespace, req.name, req.audiences, req.lifetime
            )
            .as_bytes(),
        ),
        (None, login) => {
            if let Login::AppRole { role_id, .. } = login {
                feed("role-id", role_id.as_bytes());
            }
            for secret in login.secrets() {
                feed("credential", secret);
            }
        }
    }
    Ok(Resolved {
        settings: ConnectionSettings {
            server: spec.server.clone(),
            namespace: spec.namespace.clone().filter(|n| !n.is_empty()),
            headers: spec.headers.clone(),
            ca_pem,
            client_identity,
            read_your_writes: spec.read_your_writes.unwrap_or(false),
            forward_inconsistent: spec.forward_inconsistent.unwrap_or(false),
            login,
        },
        key: digest.finalize().into(),
        requested_token,
    })
}

async fn read_key(
    store: &StoreContext<'_>,
    namespace: Option<&str>,
    kube: &dyn KubeAccess,
    field: &str,
    selector: &SecretKeySelector,
) -> Result<SecretBytes, ProviderError> {
    let field = format!("{FIELD}.{field}");
    let ns = store.resolve_namespace(&field, selector.namespace.as_deref(), namespace)?;
    let key = selector.key.as_deref().unwrap_or_default();
    secret_key(kube, &field, ns, &selector.name, key)
        .await
        .map_err(|e| naming(&field, e))
}

async fn read_default(
    store: &StoreContext<'_>,
    namespace: Option<&str>,
    kube: &dyn KubeAccess,
    field: &str,
    selector: &SecretKeySelector,
    default_key: &str,
) -> Result<SecretBytes, ProviderError> {
    let field = format!("{FIELD}.{field}");
    let ns = store.resolve_namespace(&field, selector.namespace.as_deref(), namespace)?;
    let key = selector.key.as_deref().unwrap_or(default_key);
    secret_key(kube, &field, ns, &selector.name, key)
        .await
        .map_err(|e| naming(&field, e))
}

/// A missing object names the field that referred to it.
fn naming(field: &str, error: impl Into<ProviderError>) -> ProviderError {
    match error.into() {
        ProviderError::NotFound { key } if !key.starts_with(field) => ProviderError::NotFound {
            key: format!("{field}: {key}"),
        },
        other => other,
    }
}

/// Requests a ServiceAccount token.
pub(crate) async fn request_token(
    kube: &dyn KubeAccess,
    req: &RequestedToken,
) -> Result<SecretBytes, ProviderError> {
    kube.service_account_token(&req.namespace, &req.name, &req.audiences, req.lifetime)
        .await
        .map(trimmed)
        .map_err(|e| naming(&format!("{FIELD}.auth ServiceAccount token"), e))
}

fn mount_or(path: &Option<String>, default: &str) -> String {
    path.as_deref()
        .map(|p| p.trim_matches('/').to_owned())
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| default.to_owned())
}

/// Credentials pasted into Secrets often end with a newline; Vault tokens, IDs and JWTs never
/// contain whitespace at either end.
fn trimmed(value: SecretBytes) -> SecretBytes {
    let bytes = value.expose();
    let start = bytes
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(start, |e| e + 1);
    if start == 0 && end == bytes.len() {
        return value;
    }
    SecretBytes::new(&bytes[start..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_lose_surrounding_whitespace_only() {
        assert_eq!(trimmed(" tok en\n".into()).expose(), b"tok en");
        assert_eq!(trimmed("\n".into()).expose(), b"");
    }
}
