//! The rustls configuration of a connection: which CAs are trusted and which client certificate
//! is presented. Always built with the ring crypto provider, the one kube-rs uses in this
//! workspace, so no process-wide default provider has to be installed.

use std::sync::Arc;

use kuvert_core::provider::ProviderError;
use kuvert_core::secret::SecretBytes;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// A client certificate chain and its private key, both PEM.
#[derive(Clone)]
pub struct ClientIdentity {
    /// The certificate chain (leaf first), PEM.
    pub cert_pem: Vec<u8>,
    /// The private key (PKCS#8, PKCS#1 or SEC1), PEM.
    pub key_pem: SecretBytes,
}

impl std::fmt::Debug for ClientIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientIdentity")
            .field("key_pem", &"<redacted>")
            .finish_non_exhaustive()
    }
}

fn invalid(field: &str, message: impl Into<String>) -> ProviderError {
    ProviderError::InvalidSpec {
        field: field.to_owned(),
        message: message.into(),
    }
}

/// Builds the TLS configuration: `ca_pem` (when given) replaces the system roots.
pub(crate) fn client_config(
    ca_pem: Option<&[u8]>,
    ca_field: &str,
    identity: Option<(&ClientIdentity, &str)>,
) -> Result<rustls::ClientConfig, ProviderError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    match ca_pem {
        Some(pem) => {
            let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(pem)
                .collect::<Result<_, _>>()
                .map_err(|e| invalid(ca_field, format!("the CA bundle is not PEM: {e}")))?;
            if certs.is_empty() {
                return Err(invalid(ca_field, "the CA bundle holds no certificate"));
            }
            for cert in certs {
                roots.add(cert).map_err(|e| {
                    invalid(
                        ca_field,
                        format!("the CA bundle holds a bad certificate: {e}"),
                    )
                })?;
            }
        }
        None => {
            // Unreadable system certificates are skipped; a server they would have vouched for
            // then fails its handshake with a clear TLS error.
            let native = rustls_native_certs::load_native_certs();
            for cert in native.certs {
                let _ = roots.add(cert);
            }
        }
    }
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ProviderError::Unavailable {
            message: format!("tls setup failed: {e}"),
            source: None,
        })?
        .with_root_certificates(roots);
    match identity {
        None => Ok(builder.with_no_client_auth()),
        Some((id, field)) => {
            let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&id.cert_pem)
                .collect::<Result<_, _>>()
                .map_err(|e| invalid(field, format!("the client certificate is not PEM: {e}")))?;
            if chain.is_empty() {
                return Err(invalid(
                    field,
                    "no certificate found in the client certificate PEM",
                ));
            }
            // The key's parse error is not quoted: it could echo key material.
            let key = PrivateKeyDer::from_pem_slice(id.key_pem.expose())
                .map_err(|_| invalid(field, "the client private key is not a PEM private key"))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| invalid(field, format!("client certificate and key do not fit: {e}")))
        }
    }
}
