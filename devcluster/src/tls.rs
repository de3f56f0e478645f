//! The generated certificate authority, the server certificate, and client certificates.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::WebPkiClientVerifier;

use crate::error::StartError;

/// A client identity the server recognises by its certificate.
#[derive(Debug, Clone)]
pub(crate) struct CertUser {
    pub name: String,
    pub groups: Vec<String>,
}

/// The CA, able to sign server and client certificates; remembers the client certificates it
/// issued so that a presented certificate maps straight to its user.
pub(crate) struct Authority {
    issuer: Issuer<'static, KeyPair>,
    pub ca_pem: String,
    ca_der: CertificateDer<'static>,
    clients: Mutex<HashMap<Vec<u8>, CertUser>>,
}

impl std::fmt::Debug for Authority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authority").finish_non_exhaustive()
    }
}

impl Authority {
    pub fn generate() -> Result<Self, StartError> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params
            .distinguished_name
            .push(DnType::CommonName, "devcluster-ca");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let key = KeyPair::generate()?;
        let cert = params.self_signed(&key)?;
        let ca_pem = cert.pem();
        let ca_der = cert.der().clone();
        Ok(Self {
            issuer: Issuer::new(params, key),
            ca_pem,
            ca_der,
            clients: Mutex::new(HashMap::new()),
        })
    }

    /// A server certificate for loopback names and the given IP; returns (cert chain, key).
    pub fn server_cert(
        &self,
        ip: std::net::IpAddr,
    ) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), StartError> {
        let mut params = CertificateParams::new(vec![
            "localhost".to_string(),
            "kubernetes.default.svc".to_string(),
        ])?;
        params
            .distinguished_name
            .push(DnType::CommonName, "devcluster");
        for addr in [
            ip,
            "127.0.0.1".parse().expect("ip"),
            "::1".parse().expect("ip"),
        ] {
            let san = SanType::IpAddress(addr);
            if !params.subject_alt_names.contains(&san) {
                params.subject_alt_names.push(san);
            }
        }
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &self.issuer)?;
        let key_der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        Ok((vec![cert.der().clone(), self.ca_der.clone()], key_der))
    }

    /// Issues a client certificate for `user` (CN) in `groups` (O); returns (cert PEM, key PEM).
    pub fn client_cert(
        &self,
        user: &str,
        groups: &[String],
    ) -> Result<(String, String), StartError> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.distinguished_name.push(DnType::CommonName, user);
        for g in groups {
            params
                .distinguished_name
                .push(DnType::OrganizationName, g.as_str());
        }
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &self.issuer)?;
        self.clients
            .lock()
            .expect("client certificate registry")
            .insert(
                cert.der().to_vec(),
                CertUser {
                    name: user.to_string(),
                    groups: groups.to_vec(),
                },
            );
        Ok((cert.pem(), key.serialize_pem()))
    }

    /// The CA certificate (DER).
    pub fn ca_der(&self) -> &[u8] {
        &self.ca_der
    }

    /// The user a presented (and already chain-verified) client certificate belongs to.
    pub fn user_of(&self, der: &[u8]) -> Option<CertUser> {
        self.clients
            .lock()
            .expect("client certificate registry")
            .get(der)
            .cloned()
    }

    /// A rustls server config that offers client-certificate authentication without requiring it.
    pub fn server_config(
        &self,
        ip: std::net::IpAddr,
    ) -> Result<Arc<rustls::ServerConfig>, StartError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.ca_der.clone())?;
        let verifier =
            WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                .allow_unauthenticated()
                .build()
                .map_err(|e| StartError::Tls(rustls::Error::General(e.to_string())))?;
        let (chain, key) = self.server_cert(ip)?;
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_client_cert_verifier(verifier)
            .with_single_cert(chain, key)?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }
}
