//! A deterministic PKCS#12 writer.
//!
//! Keystores written with random salts differ on every render although their content is the same,
//! so every refresh would rewrite the Secret (and restart whatever watches it). Here every salt and
//! IV is derived from the password and the content with HMAC-SHA256: the same inputs give the same
//! bytes; different content or password gives unrelated salts. This reveals only whether two
//! keystores hold the same content under the same password, which their Secrets' hashes show anyway.
//!
//! Layout (as OpenSSL 3 writes it): a PBES2-encrypted SafeContents of certificate bags, a plain
//! SafeContents with the PKCS#8-shrouded key bag, and an HMAC-SHA256 MAC over both.

use der::asn1::{BmpString, ObjectIdentifier, OctetString, OctetStringRef, SetOfVec};
use der::{Any, Decode as _, Encode as _};
use hmac::Mac as _;
use pkcs5::pbes2;
use pkcs12::cms::cert::x509::attr::{Attribute, AttributeValue, Attributes};
use pkcs12::cms::cert::x509::spki::AlgorithmIdentifierOwned;
use pkcs12::cms::content_info::{CmsVersion, ContentInfo};
use pkcs12::cms::encrypted_data::EncryptedData;
use pkcs12::cms::enveloped_data::EncryptedContentInfo;
use pkcs12::pbe_params::EncryptedPrivateKeyInfo;
use pkcs12::pfx::{Pfx, Version};
use pkcs12::{CertBag, DigestInfo, MacData, SafeBag, kdf};
use rsa::sha2::Sha256;

const OID_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.1");
const OID_ENCRYPTED_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.6");
const OID_SHROUDED_KEY_BAG: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.12.10.1.2");
const OID_CERT_BAG: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.12.10.1.3");
const OID_X509_CERT: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.22.1");
const OID_FRIENDLY_NAME: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.20");
const OID_LOCAL_KEY_ID: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.21");
const OID_PBES2: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.5.13");
const OID_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.1");
/// Java's "trusted certificate" bag attribute, valued anyExtendedKeyUsage.
const OID_JAVA_TRUSTED: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("2.16.840.1.113894.746875.1.1");
const OID_ANY_EKU: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.37.0");

/// PBKDF2 and MAC iterations (the JDK's and p12-keystore's default).
const ITERATIONS: u32 = 10_000;

/// A certificate to store.
pub(super) struct CertEntry<'a> {
    pub(super) der: &'a [u8],
    pub(super) friendly_name: Option<&'a str>,
    pub(super) local_key_id: Option<&'a [u8]>,
    /// A truststore entry (Java reads only these as trusted certificates).
    pub(super) trusted: bool,
}

/// A private key to store (PKCS#8 DER).
pub(super) struct KeyEntry<'a> {
    pub(super) pkcs8_der: &'a [u8],
    pub(super) friendly_name: &'a str,
    pub(super) local_key_id: &'a [u8],
}

/// Why writing failed (an encoding error; never carries content).
#[derive(Debug)]
pub(super) struct WriteError;

impl From<der::Error> for WriteError {
    fn from(_: der::Error) -> Self {
        WriteError
    }
}

/// Salts and IVs derived from the password and the content.
struct Seeds {
    seed: [u8; 32],
}

impl Seeds {
    fn new(password: &str, key: Option<&KeyEntry>, certs: &[CertEntry]) -> Self {
        let mut mac = hmac_sha256(password.as_bytes());
        mac.update(b"kuvert pkcs12 v1");
        if let Some(key) = key {
            mac.update(&(key.pkcs8_der.len() as u64).to_be_bytes());
            mac.update(key.pkcs8_der);
        }
        for cert in certs {
            mac.update(&(cert.der.len() as u64).to_be_bytes());
            mac.update(cert.der);
        }
        Seeds {
            seed: mac.finalize().into_bytes().into(),
        }
    }

    fn derive<const N: usize>(&self, label: &str) -> [u8; N] {
        let mut mac = hmac_sha256(&self.seed);
        mac.update(label.as_bytes());
        let full: [u8; 32] = mac.finalize().into_bytes().into();
        let mut out = [0u8; N];
        out.copy_from_slice(&full[..N]);
        out
    }
}

fn hmac_sha256(key: &[u8]) -> hmac::Hmac<Sha256> {
    // HMAC accepts keys of any length.
    <hmac::Hmac<Sha256> as hmac::KeyInit>::new_from_slice(key).expect("HMAC takes any key length")
}

/// Writes a PKCS#12 keystore.
pub(super) fn write(
    password: &str,
    key: Option<&KeyEntry>,
    certs: &[CertEntry],
) -> Result<Vec<u8>, WriteError> {
    let seeds = Seeds::new(password, key, certs);
    let mut safes = Vec::new();

    let cert_bags = certs.iter().map(cert_bag).collect::<Result<Vec<_>, _>>()?;
    let (alg, encrypted) = pbes2_encrypt(&seeds, "certs", password, &cert_bags.to_der()?)?;
    let encrypted_data = EncryptedData {
        version: CmsVersion::V0,
        enc_content_info: EncryptedContentInfo {
            content_type: OID_DATA,
            content_enc_alg: alg,
            encrypted_content: Some(OctetString::new(encrypted)?),
        },
        unprotected_attrs: None,
    };
    safes.push(ContentInfo {
        content_type: OID_ENCRYPTED_DATA,
        content: Any::from_der(&encrypted_data.to_der()?)?,
    });

    if let Some(key) = key {
        let (alg, encrypted) = pbes2_encrypt(&seeds, "key", password, key.pkcs8_der)?;
        let info = EncryptedPrivateKeyInfo {
            encryption_algorithm: alg,
            encrypted_data: OctetString::new(encrypted)?,
        };
        let mut attrs = Attributes::new();
        attrs.insert(friendly_name(key.friendly_name)?)?;
        attrs.insert(local_key_id(key.local_key_id)?)?;
        let bag = SafeBag {
            bag_id: OID_SHROUDED_KEY_BAG,
            bag_value: info.to_der()?,
            bag_attributes: Some(attrs),
        };
        safes.push(data_content(&vec![bag].to_der()?)?);
    }

    let auth_safe = data_content(&safes.to_der()?)?;
    let mac_salt: [u8; 16] = seeds.derive("mac salt");
    let mac_key = kdf::derive_key_utf8::<Sha256>(
        password,
        &mac_salt,
        kdf::Pkcs12KeyType::Mac,
        ITERATIONS as i32,
        32,
    )?;
    let mut mac = hmac_sha256(&mac_key);
    mac.update(auth_safe.content.value());
    let pfx = Pfx {
        version: Version::V3,
        auth_safe,
        mac_data: Some(MacData {
            mac: DigestInfo {
                algorithm: AlgorithmIdentifierOwned {
                    oid: OID_SHA256,
                    parameters: None,
                },
                digest: OctetString::new(mac.finalize().into_bytes().to_vec())?,
            },
            mac_salt: OctetString::new(mac_salt.to_vec())?,
            iterations: ITERATIONS as i32,
        }),
    };
    Ok(pfx.to_der()?)
}

fn data_content(octets: &[u8]) -> Result<ContentInfo, WriteError> {
    Ok(ContentInfo {
        content_type: OID_DATA,
        content: Any::from_der(&OctetString::new(octets.to_vec())?.to_der()?)?,
    })
}

fn pbes2_encrypt(
    seeds: &Seeds,
    label: &str,
    password: &str,
    plaintext: &[u8],
) -> Result<(AlgorithmIdentifierOwned, Vec<u8>), WriteError> {
    let salt: [u8; 32] = seeds.derive(&format!("{label} salt"));
    let iv: [u8; 16] = seeds.derive(&format!("{label} iv"));
    let params = pbes2::Parameters::generate_pbkdf2_sha256_aes256cbc(ITERATIONS, &salt, iv)
        .map_err(|_| WriteError)?;
    let encrypted = params
        .encrypt(password.as_bytes(), plaintext)
        .map_err(|_| WriteError)?;
    let alg = AlgorithmIdentifierOwned {
        oid: OID_PBES2,
        parameters: Some(Any::from_der(&params.to_der()?)?),
    };
    Ok((alg, encrypted))
}

fn cert_bag(cert: &CertEntry) -> Result<SafeBag, WriteError> {
    let mut attrs = Attributes::new();
    if let Some(name) = cert.friendly_name {
        attrs.insert(friendly_name(name)?)?;
    }
    if let Some(id) = cert.local_key_id {
        attrs.insert(local_key_id(id)?)?;
    }
    if cert.trusted {
        attrs.insert(Attribute {
            oid: OID_JAVA_TRUSTED,
            values: SetOfVec::<AttributeValue>::from_iter([Any::from_der(
                &OID_ANY_EKU.to_der()?,
            )?])?,
        })?;
    }
    let bag = CertBag {
        cert_id: OID_X509_CERT,
        cert_value: OctetString::new(cert.der.to_vec())?,
    };
    Ok(SafeBag {
        bag_id: OID_CERT_BAG,
        bag_value: bag.to_der()?,
        bag_attributes: (!attrs.is_empty()).then_some(attrs),
    })
}

fn friendly_name(name: &str) -> Result<Attribute, WriteError> {
    Ok(Attribute {
        oid: OID_FRIENDLY_NAME,
        values: SetOfVec::<AttributeValue>::from_iter([Any::from_der(
            &BmpString::from_utf8(name)?.to_der()?,
        )?])?,
    })
}

fn local_key_id(id: &[u8]) -> Result<Attribute, WriteError> {
    Ok(Attribute {
        oid: OID_LOCAL_KEY_ID,
        values: SetOfVec::<AttributeValue>::from_iter([Any::from_der(
            &OctetStringRef::new(id)?.to_der()?,
        )?])?,
    })
}
