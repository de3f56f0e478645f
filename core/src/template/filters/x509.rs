//! Certificate filters: `filter_cert_chain`, `cert_sans`, and the certificate parsing the PKCS#12
//! filters share.

use std::net::{Ipv4Addr, Ipv6Addr};

use minijinja::Error;
use minijinja::value::{Value, ValueKind};
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::prelude::{FromDer as _, X509Certificate};

use super::pem::{encode_blocks, parse_blocks};
use super::{filter_error, input_bytes, input_text};

/// One certificate: its DER and the parts the filters look at.
pub(super) struct Cert {
    pub(super) der: Vec<u8>,
    subject: Vec<u8>,
    issuer: Vec<u8>,
    pub(super) spki: Vec<u8>,
    /// Authority and subject key identifiers (empty when absent), how ESO links a chain.
    aki: Vec<u8>,
    ski: Vec<u8>,
}

impl Cert {
    pub(super) fn parse(filter: &'static str, der: Vec<u8>) -> Result<Cert, Error> {
        let (subject, issuer, spki, aki, ski) = {
            let (_, cert) = X509Certificate::from_der(&der).map_err(|_| {
                filter_error(
                    filter,
                    "a CERTIFICATE block is not a valid X.509 certificate",
                )
            })?;
            let mut aki = Vec::new();
            let mut ski = Vec::new();
            for ext in cert.extensions() {
                match ext.parsed_extension() {
                    ParsedExtension::AuthorityKeyIdentifier(a) => {
                        aki = a
                            .key_identifier
                            .as_ref()
                            .map(|k| k.0.to_vec())
                            .unwrap_or_default();
                    }
                    ParsedExtension::SubjectKeyIdentifier(k) => ski = k.0.to_vec(),
                    _ => {}
                }
            }
            (
                cert.subject().as_raw().to_vec(),
                cert.issuer().as_raw().to_vec(),
                cert.public_key().raw.to_vec(),
                aki,
                ski,
            )
        };
        Ok(Cert {
            der,
            subject,
            issuer,
            spki,
            aki,
            ski,
        })
    }

    /// Issued by itself: a root (or a self-signed leaf).
    fn is_self_issued(&self) -> bool {
        self.subject == self.issuer
    }

    fn pem(&self) -> ::pem::Pem {
        ::pem::Pem::new("CERTIFICATE", self.der.clone())
    }
}

/// Every `CERTIFICATE` block of PEM text, in order.
pub(super) fn parse_cert_pem(filter: &'static str, text: &str) -> Result<Vec<Cert>, Error> {
    parse_blocks(filter, text)?
        .into_iter()
        .filter(|b| b.tag() == "CERTIFICATE")
        .map(|b| Cert::parse(filter, b.into_contents()))
        .collect()
}

/// PEM text of certificates, in order.
pub(super) fn certs_pem<'a>(certs: impl IntoIterator<Item = &'a Cert>) -> String {
    let blocks: Vec<::pem::Pem> = certs.into_iter().map(Cert::pem).collect();
    encode_blocks(&blocks)
}

/// Orders a bundle leaf first, each certificate followed by its issuer; certificates outside that
/// chain follow in their input order.
pub(super) fn order_chain(certs: Vec<Cert>) -> Vec<Cert> {
    let n = certs.len();
    if n == 0 {
        return certs;
    }
    // The leaf issues no other certificate of the bundle.
    let start = (0..n)
        .find(|&i| {
            !(0..n).any(|j| {
                j != i && certs[j].issuer == certs[i].subject && !certs[j].is_self_issued()
            })
        })
        .unwrap_or(0);
    let mut order = Vec::with_capacity(n);
    let mut used = vec![false; n];
    let mut current = start;
    loop {
        order.push(current);
        used[current] = true;
        if certs[current].is_self_issued() {
            break;
        }
        match (0..n).find(|&j| !used[j] && certs[j].subject == certs[current].issuer) {
            Some(next) => current = next,
            None => break,
        }
    }
    order.extend((0..n).filter(|&i| !used[i]));
    let mut slots: Vec<Option<Cert>> = certs.into_iter().map(Some).collect();
    order.into_iter().filter_map(|i| slots[i].take()).collect()
}

/// ESO's `pkcs12cert` order: the certificates as the keystore lists them (its first certificate
/// taken as the leaf), re-ordered leaf → root when they form exactly one chain linked by
/// authority → subject key identifiers; otherwise (a certificate that belongs to no chain, two
/// leaves, a cycle) the keystore's order is kept, as ESO keeps it.
pub(super) fn eso_chain_order(certs: Vec<Cert>) -> Vec<Cert> {
    let n = certs.len();
    // parent[i]: the first other certificate whose subject key id is i's authority key id
    // (two absent ids are equal, as Go's bytes.Equal finds them).
    let parent: Vec<Option<usize>> = (0..n)
        .map(|i| (0..n).find(|&j| j != i && certs[i].aki == certs[j].ski))
        .collect();
    let is_parent: Vec<bool> = (0..n).map(|j| parent.contains(&Some(j))).collect();
    let leaves: Vec<usize> = (0..n).filter(|&i| !is_parent[i]).collect();
    let [leaf] = leaves.as_slice() else {
        return certs;
    };
    let mut order = Vec::with_capacity(n);
    let mut current = Some(*leaf);
    while let Some(i) = current {
        if order.len() == n {
            // A cycle: ESO gives up ordering.
            return certs;
        }
        order.push(i);
        current = parent[i];
    }
    let mut slots: Vec<Option<Cert>> = certs.into_iter().map(Some).collect();
    order.into_iter().filter_map(|i| slots[i].take()).collect()
}

/// The leaf, the intermediates or the root of a PEM chain (as ESO's `filterCertChain`): the chain
/// is ordered leaf → root; `leaf` is its first certificate unless self-issued, `intermediate` the
/// ones after it up to the root, `root` the last one when self-issued. None renders as "".
pub(super) fn filter_cert_chain(value: Value, kind: String) -> Result<Value, Error> {
    const F: &str = "filter_cert_chain";
    let text = input_text(F, &value)?;
    let ordered = order_chain(parse_cert_pem(F, &text)?);
    let chain_len = ordered
        .iter()
        .position(Cert::is_self_issued)
        .map_or(ordered.len(), |root| root + 1);
    let chain = &ordered[..chain_len];
    let selected: Vec<&Cert> = match kind.as_str() {
        "leaf" => chain
            .first()
            .filter(|c| !c.is_self_issued())
            .into_iter()
            .collect(),
        "intermediate" => chain
            .iter()
            .skip(1)
            .take_while(|c| !c.is_self_issued())
            .collect(),
        "root" => chain
            .last()
            .filter(|c| c.is_self_issued())
            .into_iter()
            .collect(),
        _ => {
            return Err(filter_error(
                F,
                "the certificate kind must be leaf, intermediate or root",
            ));
        }
    };
    Ok(Value::from(certs_pem(selected)))
}

/// The subject alternative names of a certificate (the first of PEM text, or DER bytes): DNS
/// names, IP addresses, e-mail addresses and URIs, in the certificate's order.
pub(super) fn cert_sans(value: Value) -> Result<Value, Error> {
    const F: &str = "cert_sans";
    let der = if value.kind() == ValueKind::Bytes {
        input_bytes(F, &value)?.into_owned()
    } else {
        let text = input_text(F, &value)?;
        parse_blocks(F, &text)?
            .into_iter()
            .find(|b| b.tag() == "CERTIFICATE")
            .ok_or_else(|| filter_error(F, "the input holds no PEM certificate"))?
            .into_contents()
    };
    let (_, cert) = X509Certificate::from_der(&der)
        .map_err(|_| filter_error(F, "the input is not a valid X.509 certificate"))?;
    let san = cert
        .subject_alternative_name()
        .map_err(|_| filter_error(F, "the subject alternative name extension is invalid"))?;
    let names: Vec<Value> = san
        .map(|ext| {
            ext.value
                .general_names
                .iter()
                .filter_map(|name| match name {
                    GeneralName::DNSName(s) | GeneralName::RFC822Name(s) | GeneralName::URI(s) => {
                        Some(Value::from(*s))
                    }
                    GeneralName::IPAddress(ip) => ip_text(ip).map(Value::from),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(Value::from(names))
}

fn ip_text(bytes: &[u8]) -> Option<String> {
    match bytes.len() {
        4 => <[u8; 4]>::try_from(bytes)
            .ok()
            .map(|b| Ipv4Addr::from(b).to_string()),
        16 => <[u8; 16]>::try_from(bytes)
            .ok()
            .map(|b| Ipv6Addr::from(b).to_string()),
        _ => None,
    }
}
