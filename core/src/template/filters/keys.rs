//! Key filters: `jwk_public_key_pem`, `jwk_private_key_pem`, `rsa_decrypt`, and the private-key
//! parsing the PKCS#12 filters share.
//!
//! JWK key types: RSA, EC P-256, P-384 and P-521, and OKP Ed25519 (what ESO's JWK helpers read).
//! PEM keys for PKCS#12: RSA and EC P-256 are parsed; other PKCS#8 keys are kept as they are.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use minijinja::Error;
use minijinja::value::{Value, ValueKind};
use p256::pkcs8::{DecodePrivateKey as _, EncodePrivateKey as _, EncodePublicKey as _};
use rsa::pkcs1::DecodeRsaPrivateKey as _;
use rsa::{BoxedUint, PrivateKey as RsaPrivateKey, PublicKey as RsaPublicKey};

use super::pem::parse_blocks;
use super::{bytes_value, filter_error, input_bytes, input_text, value_to_json};

/// A private key as PKCS#8 DER, with the SubjectPublicKeyInfo DER of its public half when the key
/// type is one kuvert knows (RSA, P-256).
pub(super) struct PrivateKey {
    pub(super) pkcs8_der: Vec<u8>,
    pub(super) public_spki_der: Option<Vec<u8>>,
}

/// Reads the first private key of PEM text: `PRIVATE KEY` (PKCS#8, any algorithm), `RSA PRIVATE
/// KEY` (PKCS#1) or `EC PRIVATE KEY` (SEC1, P-256).
pub(super) fn parse_private_key_pem(filter: &'static str, text: &str) -> Result<PrivateKey, Error> {
    let blocks = parse_blocks(filter, text)?;
    let block = blocks
        .iter()
        .find(|b| b.tag().ends_with("PRIVATE KEY"))
        .ok_or_else(|| filter_error(filter, "the key argument holds no PEM private key"))?;
    let invalid = |what: &'static str| filter_error(filter, what);
    match block.tag() {
        "PRIVATE KEY" => {
            let der = block.contents().to_vec();
            let public_spki_der = if let Ok(key) = RsaPrivateKey::from_pkcs8_der(&der) {
                key.to_public_key()
                    .to_public_key_der()
                    .ok()
                    .map(|d| d.into_vec())
            } else if let Ok(key) = p256::SecretKey::from_pkcs8_der(&der) {
                key.public_key()
                    .to_public_key_der()
                    .ok()
                    .map(|d| d.into_vec())
            } else {
                // Another algorithm (Ed25519, P-384, ...): kept as it is, only its DER is checked.
                rsa::pkcs8::PrivateKeyInfoRef::try_from(der.as_slice())
                    .map_err(|_| invalid("the PKCS#8 private key does not decode"))?;
                None
            };
            Ok(PrivateKey {
                pkcs8_der: der,
                public_spki_der,
            })
        }
        "RSA PRIVATE KEY" => {
            let key = RsaPrivateKey::from_pkcs1_der(block.contents())
                .map_err(|_| invalid("the PKCS#1 RSA private key does not decode"))?;
            rsa_private_key(filter, &key)
        }
        "EC PRIVATE KEY" => {
            let key = p256::SecretKey::from_sec1_der(block.contents())
                .map_err(|_| invalid("the EC private key is not a valid P-256 SEC1 key"))?;
            p256_private_key(filter, &key)
        }
        _ => Err(invalid(
            "unsupported private key PEM (expected PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY)",
        )),
    }
}

fn rsa_private_key(filter: &'static str, key: &RsaPrivateKey) -> Result<PrivateKey, Error> {
    let pkcs8 = key
        .to_pkcs8_der()
        .map_err(|_| filter_error(filter, "the RSA key cannot be encoded as PKCS#8"))?;
    let spki = key
        .to_public_key()
        .to_public_key_der()
        .map_err(|_| filter_error(filter, "the RSA public key cannot be encoded"))?;
    Ok(PrivateKey {
        pkcs8_der: pkcs8.as_bytes().to_vec(),
        public_spki_der: Some(spki.into_vec()),
    })
}

fn p256_private_key(filter: &'static str, key: &p256::SecretKey) -> Result<PrivateKey, Error> {
    let pkcs8 = key
        .to_pkcs8_der()
        .map_err(|_| filter_error(filter, "the EC key cannot be encoded as PKCS#8"))?;
    let spki = key
        .public_key()
        .to_public_key_der()
        .map_err(|_| filter_error(filter, "the EC public key cannot be encoded"))?;
    Ok(PrivateKey {
        pkcs8_der: pkcs8.as_bytes().to_vec(),
        public_spki_der: Some(spki.into_vec()),
    })
}

fn pem_text(tag: &str, der: &[u8]) -> String {
    super::pem::encode_blocks([&::pem::Pem::new(tag, der.to_vec())])
}

// ---- JWK ----

/// A JWK as a JSON object, from JSON text or from a map (`x | fromjson`).
fn jwk_object(
    filter: &'static str,
    value: &Value,
) -> Result<serde_json::Map<String, serde_json::Value>, Error> {
    let json = if value.kind() == ValueKind::Map {
        value_to_json(filter, value, 0)?
    } else {
        let bytes = input_bytes(filter, value)?;
        serde_json::from_slice(&bytes).map_err(|_| filter_error(filter, "the input is not JSON"))?
    };
    match json {
        serde_json::Value::Object(map) => Ok(map),
        _ => Err(filter_error(filter, "the input is not a JSON object")),
    }
}

/// A base64url member of a JWK (`n`, `e`, `x`, ...).
fn member(
    filter: &'static str,
    jwk: &serde_json::Map<String, serde_json::Value>,
    name: &'static str,
) -> Result<Vec<u8>, Error> {
    let text = jwk
        .get(name)
        .and_then(|v| v.as_str())
        .ok_or_else(|| filter_error(filter, format!("the JWK has no `{name}` member")))?;
    URL_SAFE_NO_PAD
        .decode(text.trim_end_matches('='))
        .map_err(|_| filter_error(filter, format!("the JWK member `{name}` is not base64url")))
}

fn kty<'a>(
    filter: &'static str,
    jwk: &'a serde_json::Map<String, serde_json::Value>,
) -> Result<&'a str, Error> {
    jwk.get("kty")
        .and_then(|v| v.as_str())
        .ok_or_else(|| filter_error(filter, "the JWK has no `kty` member"))
}

fn check_p256(
    filter: &'static str,
    jwk: &serde_json::Map<String, serde_json::Value>,
) -> Result<(), Error> {
    match jwk.get("crv").and_then(|v| v.as_str()) {
        Some("P-256") => Ok(()),
        Some(_) => Err(filter_error(filter, "unsupported EC curve (only P-256)")),
        None => Err(filter_error(filter, "the JWK has no `crv` member")),
    }
}

fn uint(bytes: &[u8]) -> BoxedUint {
    BoxedUint::from_be_slice_vartime(bytes)
}

fn jwk_rsa_public(
    filter: &'static str,
    jwk: &serde_json::Map<String, serde_json::Value>,
) -> Result<RsaPublicKey, Error> {
    let n = member(filter, jwk, "n")?;
    let e = member(filter, jwk, "e")?;
    RsaPublicKey::new(uint(&n), uint(&e))
        .map_err(|_| filter_error(filter, "the JWK is not a valid RSA public key"))
}

fn jwk_p256_public(
    filter: &'static str,
    jwk: &serde_json::Map<String, serde_json::Value>,
) -> Result<p256::PublicKey, Error> {
    check_p256(filter, jwk)?;
    let (x, y) = (member(filter, jwk, "x")?, member(filter, jwk, "y")?);
    if x.len() != 32 || y.len() != 32 {
        return Err(filter_error(
            filter,
            "the JWK coordinates are not 32 bytes (P-256)",
        ));
    }
    let mut sec1 = Vec::with_capacity(65);
    sec1.push(0x04);
    sec1.extend_from_slice(&x);
    sec1.extend_from_slice(&y);
    p256::PublicKey::from_sec1_bytes(&sec1)
        .map_err(|_| filter_error(filter, "the JWK point is not on the P-256 curve"))
}

/// JWK (RSA; EC P-256, P-384, P-521; OKP Ed25519; public or private) → `PUBLIC KEY` PEM
/// (SubjectPublicKeyInfo), the key types ESO's `jwkPublicKeyPem` reads.
pub(super) fn jwk_public_key_pem(value: Value) -> Result<Value, Error> {
    const F: &str = "jwk_public_key_pem";
    let jwk = jwk_object(F, &value)?;
    let der = match kty(F, &jwk)? {
        "RSA" => jwk_rsa_public(F, &jwk)?
            .to_public_key_der()
            .map(|d| d.into_vec()),
        "EC" if crv(&jwk) == Some("P-256") => jwk_p256_public(F, &jwk)?
            .to_public_key_der()
            .map(|d| d.into_vec()),
        "EC" => {
            let (curve, point) = ec_point(F, &jwk)?;
            Ok(ec_spki(curve, &point))
        }
        "OKP" => Ok(ed25519_spki(&ed25519_x(F, &jwk)?)),
        _ => return Err(unsupported_kty(F)),
    }
    .map_err(|_| filter_error(F, "the public key cannot be encoded"))?;
    Ok(Value::from(pem_text("PUBLIC KEY", &der)))
}

fn unsupported_kty(filter: &'static str) -> Error {
    filter_error(filter, "unsupported JWK key type (RSA, EC and OKP are)")
}

fn crv(jwk: &serde_json::Map<String, serde_json::Value>) -> Option<&str> {
    jwk.get("crv").and_then(|v| v.as_str())
}

/// A NIST curve beyond P-256: its DER OID and its coordinate size.
#[derive(Clone, Copy)]
struct Curve {
    oid: &'static [u8],
    size: usize,
}

const P384: Curve = Curve {
    oid: &[0x06, 0x05, 0x2B, 0x81, 0x04, 0x00, 0x22],
    size: 48,
};
const P521: Curve = Curve {
    oid: &[0x06, 0x05, 0x2B, 0x81, 0x04, 0x00, 0x23],
    size: 66,
};
const OID_EC_PUBLIC_KEY: &[u8] = &[0x06, 0x07, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x02, 0x01];
const OID_ED25519: &[u8] = &[0x06, 0x03, 0x2B, 0x65, 0x70];

/// A DER element.
fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = len
            .to_be_bytes()
            .into_iter()
            .skip_while(|b| *b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend_from_slice(&bytes);
    }
    out.extend_from_slice(content);
    out
}

fn seq(parts: &[&[u8]]) -> Vec<u8> {
    tlv(0x30, &parts.concat())
}

fn bit_string(bytes: &[u8]) -> Vec<u8> {
    tlv(0x03, &[&[0u8][..], bytes].concat())
}

/// The curve and uncompressed point (`04 || x || y`) of a P-384 or P-521 JWK. Only the lengths
/// are checked here; a private key is checked against its point where it is converted.
fn ec_point(
    filter: &'static str,
    jwk: &serde_json::Map<String, serde_json::Value>,
) -> Result<(Curve, Vec<u8>), Error> {
    let curve = match crv(jwk) {
        Some("P-384") => P384,
        Some("P-521") => P521,
        Some(_) => {
            return Err(filter_error(
                filter,
                "unsupported EC curve (P-256, P-384 and P-521 are)",
            ));
        }
        None => return Err(filter_error(filter, "the JWK has no `crv` member")),
    };
    let (x, y) = (member(filter, jwk, "x")?, member(filter, jwk, "y")?);
    if x.len() != curve.size || y.len() != curve.size {
        return Err(filter_error(
            filter,
            "the JWK coordinates do not have the curve's size",
        ));
    }
    Ok((curve, [&[0x04u8][..], &x, &y].concat()))
}

fn ec_spki(curve: Curve, point: &[u8]) -> Vec<u8> {
    seq(&[&seq(&[OID_EC_PUBLIC_KEY, curve.oid]), &bit_string(point)])
}

/// PKCS#8 of an EC key as Go's `x509.MarshalPKCS8PrivateKey` (and OpenSSL) write it: the curve
/// in the algorithm, an ECPrivateKey with the public point and no repeated parameters.
fn ec_pkcs8(curve: Curve, d: &[u8], point: &[u8]) -> Vec<u8> {
    let ec_private_key = seq(&[
        &[0x02, 0x01, 0x01],
        &tlv(0x04, d),
        &tlv(0xA1, &bit_string(point)),
    ]);
    seq(&[
        &[0x02, 0x01, 0x00],
        &seq(&[OID_EC_PUBLIC_KEY, curve.oid]),
        &tlv(0x04, &ec_private_key),
    ])
}

fn ed25519_x(
    filter: &'static str,
    jwk: &serde_json::Map<String, serde_json::Value>,
) -> Result<Vec<u8>, Error> {
    match crv(jwk) {
        Some("Ed25519") => {}
        Some(_) => return Err(filter_error(filter, "unsupported OKP curve (Ed25519 is)")),
        None => return Err(filter_error(filter, "the JWK has no `crv` member")),
    }
    let x = member(filter, jwk, "x")?;
    if x.len() != 32 {
        return Err(filter_error(
            filter,
            "the JWK `x` is not 32 bytes (Ed25519)",
        ));
    }
    Ok(x)
}

fn ed25519_spki(x: &[u8]) -> Vec<u8> {
    seq(&[&seq(&[OID_ED25519]), &bit_string(x)])
}

/// Private JWK (RSA; EC P-256, P-384, P-521; OKP Ed25519) → `PRIVATE KEY` PEM (PKCS#8).
pub(super) fn jwk_private_key_pem(value: Value) -> Result<Value, Error> {
    const F: &str = "jwk_private_key_pem";
    let jwk = jwk_object(F, &value)?;
    let key = match kty(F, &jwk)? {
        "RSA" => {
            let (n, e) = (member(F, &jwk, "n")?, member(F, &jwk, "e")?);
            let d = member(F, &jwk, "d")?;
            let primes = match (member(F, &jwk, "p"), member(F, &jwk, "q")) {
                (Ok(p), Ok(q)) => vec![uint(&p), uint(&q)],
                _ => return Err(filter_error(F, "the RSA JWK has no `p` and `q` members")),
            };
            let key = RsaPrivateKey::from_components(uint(&n), uint(&e), uint(&d), primes)
                .map_err(|_| filter_error(F, "the JWK is not a consistent RSA private key"))?;
            rsa_private_key(F, &key)?
        }
        "EC" if crv(&jwk) == Some("P-256") => {
            let public = jwk_p256_public(F, &jwk)?;
            let d = member(F, &jwk, "d")?;
            let key = p256::SecretKey::from_slice(&d)
                .map_err(|_| filter_error(F, "the JWK `d` is not a valid P-256 scalar"))?;
            if key.public_key() != public {
                return Err(filter_error(
                    F,
                    "the JWK `d` does not match its `x` and `y`",
                ));
            }
            p256_private_key(F, &key)?
        }
        "EC" => {
            let (curve, point) = ec_point(F, &jwk)?;
            let d = member(F, &jwk, "d")?;
            if d.len() != curve.size {
                return Err(filter_error(
                    F,
                    "the JWK `d` does not have the curve's size",
                ));
            }
            if curve.size == P384.size {
                let rng = ring::rand::SystemRandom::new();
                ring::signature::EcdsaKeyPair::from_private_key_and_public_key(
                    &ring::signature::ECDSA_P384_SHA384_FIXED_SIGNING,
                    &d,
                    &point,
                    &rng,
                )
                .map_err(|_| filter_error(F, "the JWK `d` does not match its `x` and `y`"))?;
            }
            PrivateKey {
                pkcs8_der: ec_pkcs8(curve, &d, &point),
                public_spki_der: Some(ec_spki(curve, &point)),
            }
        }
        "OKP" => {
            let x = ed25519_x(F, &jwk)?;
            let d = member(F, &jwk, "d")?;
            ring::signature::Ed25519KeyPair::from_seed_and_public_key(&d, &x)
                .map_err(|_| filter_error(F, "the JWK `d` does not match its `x`"))?;
            PrivateKey {
                // Go (and RFC 8410): the seed as an OCTET STRING inside the PKCS#8 one.
                pkcs8_der: seq(&[
                    &[0x02, 0x01, 0x00],
                    &seq(&[OID_ED25519]),
                    &tlv(0x04, &tlv(0x04, &d)),
                ]),
                public_spki_der: Some(ed25519_spki(&x)),
            }
        }
        _ => return Err(unsupported_kty(F)),
    };
    Ok(Value::from(pem_text("PRIVATE KEY", &key.pkcs8_der)))
}

// ---- RSA decryption ----

/// Decrypts RSA ciphertext with a PEM private key (`PRIVATE KEY` or `RSA PRIVATE KEY`).
///
/// The input is the raw ciphertext as bytes, or a string holding it in standard base64. Schemes:
/// `RSA-OAEP-256` (default; OAEP with SHA-256), `RSA-OAEP` (OAEP with SHA-1), `PKCS1v15`.
pub(super) fn rsa_decrypt(
    value: Value,
    key_pem: Value,
    scheme: Option<String>,
) -> Result<Value, Error> {
    const F: &str = "rsa_decrypt";
    let ciphertext = match value.kind() {
        ValueKind::String => STANDARD
            .decode(value.as_str().unwrap_or_default().trim())
            .map_err(|_| filter_error(F, "a string input must be base64 ciphertext"))?,
        _ => input_bytes(F, &value)?.into_owned(),
    };
    let key = rsa_key(F, &key_pem)?;
    let scheme = scheme.as_deref().unwrap_or("RSA-OAEP-256");
    let plaintext = match scheme {
        "RSA-OAEP-256" | "RSA-OAEP-SHA256" => key.oaep_decrypt::<rsa::sha2::Sha256>(&ciphertext),
        "RSA-OAEP" | "RSA-OAEP-SHA1" => key.oaep_decrypt::<sha1::Sha1>(&ciphertext),
        "PKCS1v15" | "RSA1_5" => key.decrypt(rsa::Pkcs1v15Encrypt, &ciphertext),
        _ => {
            return Err(filter_error(
                F,
                "unknown scheme (RSA-OAEP-256, RSA-OAEP or PKCS1v15)",
            ));
        }
    }
    .map_err(|_| filter_error(F, "decryption failed (wrong key, scheme or ciphertext)"))?;
    Ok(bytes_value(plaintext))
}

fn rsa_key(filter: &'static str, key_pem: &Value) -> Result<RsaPrivateKey, Error> {
    let text = input_text(filter, key_pem)?;
    let blocks = parse_blocks(filter, &text)?;
    blocks
        .iter()
        .find_map(|b| match b.tag() {
            "PRIVATE KEY" => Some(RsaPrivateKey::from_pkcs8_der(b.contents()).ok()),
            "RSA PRIVATE KEY" => Some(RsaPrivateKey::from_pkcs1_der(b.contents()).ok()),
            _ => None,
        })
        .ok_or_else(|| filter_error(filter, "the key argument holds no PEM private key"))?
        .ok_or_else(|| filter_error(filter, "the private key is not a valid RSA key"))
}

/// ESO's `rsaDecrypt SCHEME HASH CIPHERTEXT KEY`: `SCHEME` is `None` (the ciphertext is returned
/// as it is) or `RSA-OAEP` with `HASH` `SHA1`, `SHA256` (also for `None`) or `SHA512`. The
/// ciphertext is binary (ESO users decode base64 first with `b64dec`).
pub(super) fn rsa_decrypt_eso(
    scheme: &str,
    hash: &str,
    ciphertext: &Value,
    key_pem: &Value,
) -> Result<Value, Error> {
    const F: &str = "rsaDecrypt";
    let ciphertext = input_bytes(F, ciphertext)?;
    match scheme {
        "None" => return Ok(bytes_value(ciphertext.into_owned())),
        "RSA-OAEP" => {}
        _ => return Err(filter_error(F, "unsupported scheme (None or RSA-OAEP)")),
    }
    let key = rsa_key(F, key_pem)?;
    let plaintext = match hash {
        "None" | "SHA256" => key.oaep_decrypt::<rsa::sha2::Sha256>(&ciphertext),
        "SHA1" => key.oaep_decrypt::<sha1::Sha1>(&ciphertext),
        "SHA512" => key.oaep_decrypt::<rsa::sha2::Sha512>(&ciphertext),
        _ => return Err(filter_error(F, "unsupported hash (SHA1, SHA256 or SHA512)")),
    }
    .map_err(|_| filter_error(F, "decryption failed (wrong key, hash or ciphertext)"))?;
    Ok(bytes_value(plaintext))
}
