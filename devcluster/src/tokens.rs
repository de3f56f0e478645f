//! ServiceAccount tokens: ES256-signed JWTs shaped like the API server's bound tokens, issued by
//! the TokenRequest subresource and checked by TokenReview and by bearer authentication.

use base64::Engine as _;
use ring::rand::SystemRandom;
use ring::signature::{
    ECDSA_P256_SHA256_FIXED, ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair,
    UnparsedPublicKey,
};
use serde_json::{Value, json};

use crate::error::StartError;
use crate::meta::uuid;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// The claims devcluster puts into (and checks in) a ServiceAccount token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SaClaims {
    pub namespace: String,
    pub name: String,
    pub uid: String,
    pub audiences: Vec<String>,
    pub expires: i64,
}

/// Signs and verifies ServiceAccount tokens with one ECDSA P-256 key generated at start.
pub(crate) struct TokenIssuer {
    key: EcdsaKeyPair,
    key_id: String,
    pub issuer: String,
}

impl std::fmt::Debug for TokenIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenIssuer")
            .field("issuer", &self.issuer)
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

impl TokenIssuer {
    pub fn generate(issuer: String) -> Result<Self, StartError> {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .map_err(|_| StartError::SigningKey)?;
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
            .map_err(|_| StartError::SigningKey)?;
        let digest = ring::digest::digest(&ring::digest::SHA256, key.public_key().as_ref());
        let key_id = B64.encode(&digest.as_ref()[..16]);
        Ok(Self {
            key,
            key_id,
            issuer,
        })
    }

    /// Signs arbitrary claims with this issuer's key (also used by tests to sign claims that
    /// the issuer would never issue).
    pub fn sign(&self, claims: &Value) -> String {
        let header = json!({"alg": "ES256", "kid": self.key_id, "typ": "JWT"});
        let signing_input = format!(
            "{}.{}",
            B64.encode(header.to_string()),
            B64.encode(claims.to_string())
        );
        let sig = self
            .key
            .sign(&SystemRandom::new(), signing_input.as_bytes())
            .expect("ecdsa signing");
        format!("{signing_input}.{}", B64.encode(sig.as_ref()))
    }

    /// Issues a token for a ServiceAccount; returns the JWT and its expiry (unix seconds).
    pub fn issue(
        &self,
        ns: &str,
        name: &str,
        uid: &str,
        audiences: &[String],
        lifetime_secs: i64,
        now: i64,
    ) -> (String, i64) {
        let exp = now + lifetime_secs;
        let claims = json!({
            "aud": audiences,
            "exp": exp,
            "iat": now,
            "nbf": now,
            "iss": self.issuer,
            "jti": uuid(),
            "sub": format!("system:serviceaccount:{ns}:{name}"),
            "kubernetes.io": {"namespace": ns, "serviceaccount": {"name": name, "uid": uid}},
        });
        (self.sign(&claims), exp)
    }

    /// Checks signature, issuer, time window and audience; returns the claims. The caller
    /// checks that the ServiceAccount still exists with the same uid.
    pub fn verify(
        &self,
        token: &str,
        accepted_audiences: &[String],
        now: i64,
    ) -> Result<SaClaims, String> {
        let parts: Vec<&str> = token.split('.').collect();
        let [header, payload, sig] = parts[..] else {
            return Err("token is not a JWT".into());
        };
        let header: Value = B64
            .decode(header)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or("malformed token header")?;
        if header["alg"] != "ES256" {
            return Err("unexpected token signing algorithm".into());
        }
        let sig = B64.decode(sig).map_err(|_| "malformed token signature")?;
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, self.key.public_key().as_ref())
            .verify(format!("{}.{payload}", parts[0]).as_bytes(), &sig)
            .map_err(|_| {
                "invalid bearer token, square/go-jose: error in cryptographic primitive".to_string()
            })?;
        let claims: Value = B64
            .decode(payload)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or("malformed token claims")?;
        if claims["iss"] != self.issuer.as_str() {
            return Err("token issuer is not accepted".into());
        }
        let exp = claims["exp"].as_i64().ok_or("token has no expiry")?;
        if exp <= now {
            return Err("service account token has expired".into());
        }
        if claims["nbf"].as_i64().is_some_and(|nbf| nbf > now + 60) {
            return Err("service account token is not valid yet".into());
        }
        let audiences: Vec<String> = match &claims["aud"] {
            Value::String(s) => vec![s.clone()],
            Value::Array(a) => a
                .iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect(),
            _ => Vec::new(),
        };
        if !audiences.iter().any(|a| accepted_audiences.contains(a)) {
            return Err("token audiences are not accepted".into());
        }
        let k = &claims["kubernetes.io"];
        let field = |v: &Value| {
            v.as_str()
                .map(str::to_string)
                .ok_or("token is not a service account token")
        };
        Ok(SaClaims {
            namespace: field(&k["namespace"])?,
            name: field(&k["serviceaccount"]["name"])?,
            uid: field(&k["serviceaccount"]["uid"])?,
            audiences,
            expires: exp,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn issuer() -> TokenIssuer {
        TokenIssuer::generate("https://kubernetes.default.svc.cluster.local".into()).unwrap()
    }

    #[test]
    fn an_issued_token_verifies_with_its_claims() {
        let i = issuer();
        let aud = vec!["vault".to_string()];
        let (token, exp) = i.issue("ns1", "app", "u-1", &aud, 600, 1_000);
        assert_eq!(exp, 1_600);
        let c = i.verify(&token, &aud, 1_001).unwrap();
        assert_eq!(
            (c.namespace.as_str(), c.name.as_str(), c.uid.as_str()),
            ("ns1", "app", "u-1")
        );
    }

    #[test]
    fn expired_foreign_and_wrong_audience_tokens_are_refused() {
        let i = issuer();
        let aud = vec!["vault".to_string()];
        let (token, _) = i.issue("ns1", "app", "u-1", &aud, 600, 1_000);
        assert!(
            i.verify(&token, &aud, 1_600)
                .unwrap_err()
                .contains("expired")
        );
        assert!(
            i.verify(&token, &["other".to_string()], 1_001)
                .unwrap_err()
                .contains("audiences")
        );
        assert!(
            issuer().verify(&token, &aud, 1_001).is_err(),
            "another key's signature must not verify"
        );
        assert!(i.verify("not-a-jwt", &aud, 1_001).is_err());
    }
}
