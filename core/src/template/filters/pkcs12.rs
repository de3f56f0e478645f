//! PKCS#12 filters: `pkcs12_key`, `pkcs12_cert`, `pem_to_pkcs12`, `full_pem_to_pkcs12`,
//! `pem_truststore_to_pkcs12`.
//!
//! Reading accepts modern (PBES2/AES + HMAC-SHA-2) and legacy (3DES/RC2 + SHA-1) keystores.
//! Writing uses PBES2 with PBKDF2-HMAC-SHA256 and AES-256-CBC, and an HMAC-SHA256 MAC (what
//! OpenSSL 3 and Java 12+ write and read), deterministically (see `pkcs12_write.rs`): the same
//! input renders the same bytes, so a refresh does not rewrite an unchanged Secret.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use minijinja::{Error, Value};
use p12_keystore::Pkcs12Archive;
use sha2::{Digest as _, Sha256};

use super::keys::parse_private_key_pem;
use super::pkcs12_write::{self, CertEntry, KeyEntry};
use super::x509::{Cert, certs_pem, eso_chain_order, order_chain, parse_cert_pem};
use super::{filter_error, input_bytes, input_text};

/// Alias of the key entry in keystores kuvert writes.
const KEY_ALIAS: &str = "1";

fn read_archive(
    filter: &'static str,
    value: &Value,
    password: Option<&str>,
) -> Result<Pkcs12Archive, Error> {
    let bytes = input_bytes(filter, value)?;
    Pkcs12Archive::from_pkcs12(&bytes, password.unwrap_or("")).map_err(|err| {
        let reason = match err {
            p12_keystore::error::Error::MacError(_) => "wrong password or corrupted keystore",
            p12_keystore::error::Error::UnsupportedEncryptionScheme
            | p12_keystore::error::Error::UnsupportedMacAlgorithm => {
                "the keystore uses an unsupported algorithm"
            }
            _ => "the input is not a valid PKCS#12 keystore (or the password is wrong)",
        };
        filter_error(filter, reason)
    })
}

/// PKCS#12 keystore (bytes) → its private key as `PRIVATE KEY` PEM (PKCS#8).
pub(super) fn pkcs12_key(value: Value, password: Option<String>) -> Result<Value, Error> {
    const F: &str = "pkcs12_key";
    let archive = read_archive(F, &value, password.as_deref())?;
    let key = archive
        .keys
        .first()
        .ok_or_else(|| filter_error(F, "the keystore holds no private key"))?;
    let pem = ::pem::Pem::new("PRIVATE KEY", key.key.as_der().to_vec());
    Ok(Value::from(super::pem::encode_blocks([&pem])))
}

/// PKCS#12 keystore (bytes) → its certificates as PEM in ESO's order (see
/// [`x509::eso_chain_order`]): leaf → root when they form one chain, else as stored.
pub(super) fn pkcs12_cert(value: Value, password: Option<String>) -> Result<Value, Error> {
    const F: &str = "pkcs12_cert";
    let archive = read_archive(F, &value, password.as_deref())?;
    let certs = archive
        .certs
        .iter()
        .map(|bag| Cert::parse(F, bag.cert.as_der().to_vec()))
        .collect::<Result<Vec<_>, _>>()?;
    if certs.is_empty() {
        return Err(filter_error(F, "the keystore holds no certificate"));
    }
    Ok(Value::from(certs_pem(&eso_chain_order(certs))))
}

/// Certificate PEM (piped) + private key PEM → PKCS#12 with the key and the first certificate.
pub(super) fn pem_to_pkcs12(
    value: Value,
    key_pem: Value,
    password: Option<String>,
) -> Result<Value, Error> {
    keystore_with_key(
        "pem_to_pkcs12",
        &value,
        &key_pem,
        password.as_deref(),
        false,
    )
}

/// Certificate chain PEM (piped) + private key PEM → PKCS#12 with the key, its certificate and
/// the rest of the chain.
pub(super) fn full_pem_to_pkcs12(
    value: Value,
    key_pem: Value,
    password: Option<String>,
) -> Result<Value, Error> {
    keystore_with_key(
        "full_pem_to_pkcs12",
        &value,
        &key_pem,
        password.as_deref(),
        true,
    )
}

fn keystore_with_key(
    filter: &'static str,
    cert_pem: &Value,
    key_pem: &Value,
    password: Option<&str>,
    with_chain: bool,
) -> Result<Value, Error> {
    let cert_text = input_text(filter, cert_pem)?;
    let mut certs = parse_cert_pem(filter, &cert_text)?;
    if certs.is_empty() {
        return Err(filter_error(filter, "the input holds no PEM certificate"));
    }
    let key_text = input_text(filter, key_pem)?;
    let key = parse_private_key_pem(filter, &key_text)?;
    // The key's certificate goes first whatever the order of the input.
    if let Some(spki) = &key.public_spki_der {
        let position = certs.iter().position(|c| &c.spki == spki).ok_or_else(|| {
            filter_error(filter, "the private key does not match the certificate")
        })?;
        if with_chain {
            let leaf = certs.remove(position);
            let rest = order_chain(certs);
            certs = std::iter::once(leaf).chain(rest).collect();
        } else {
            certs = vec![certs.remove(position)];
        }
    } else if with_chain {
        certs = order_chain(certs);
    } else {
        certs.truncate(1);
    }
    // OpenSSL and Java name the key by a hash of its certificate.
    let local_key_id = Sha256::digest(&certs[0].der)[..20].to_vec();
    let entries: Vec<CertEntry> = certs
        .iter()
        .enumerate()
        .map(|(i, c)| CertEntry {
            der: &c.der,
            friendly_name: (i == 0).then_some(KEY_ALIAS),
            local_key_id: (i == 0).then_some(local_key_id.as_slice()),
            trusted: false,
        })
        .collect();
    let key = KeyEntry {
        pkcs8_der: &key.pkcs8_der,
        friendly_name: KEY_ALIAS,
        local_key_id: &local_key_id,
    };
    write(filter, password, Some(&key), &entries)
}

/// Certificates PEM (piped) → PKCS#12 truststore: every certificate as a trusted entry (Java
/// reads it as a truststore).
pub(super) fn pem_truststore_to_pkcs12(
    value: Value,
    password: Option<String>,
) -> Result<Value, Error> {
    const F: &str = "pem_truststore_to_pkcs12";
    let text = input_text(F, &value)?;
    let certs = parse_cert_pem(F, &text)?;
    if certs.is_empty() {
        return Err(filter_error(F, "the input holds no PEM certificate"));
    }
    let names: Vec<String> = (1..=certs.len()).map(|i| format!("cert-{i}")).collect();
    let entries: Vec<CertEntry> = certs
        .iter()
        .zip(&names)
        .map(|(c, name)| CertEntry {
            der: &c.der,
            friendly_name: Some(name),
            local_key_id: None,
            trusted: true,
        })
        .collect();
    write(F, password.as_deref(), None, &entries)
}

fn write(
    filter: &'static str,
    password: Option<&str>,
    key: Option<&KeyEntry>,
    certs: &[CertEntry],
) -> Result<Value, Error> {
    let bytes = pkcs12_write::write(password.unwrap_or(""), key, certs)
        .map_err(|_| filter_error(filter, "the keystore could not be written"))?;
    // Base64 text, as ESO's writers return: its documented pipelines end in `| b64dec`.
    Ok(Value::from(STANDARD.encode(bytes)))
}
