//! ESO's own template helpers under their ESO names, with Go's argument order (the piped value
//! last): `pkcs12key`, `pemToPkcs12Pass`, `filterPEM`, `rsaDecrypt`, `toYaml`, ... Each one calls
//! the kuvert filter that does the work (`pkcs12_key`, `pem_to_pkcs12`, `filter_pem`, ...), so
//! both spellings give the same bytes.

use minijinja::value::{Value, ValueKind};
use minijinja::{Environment, Error, State};

use super::super::sprig::{self, arity};
use super::{KEY_FUEL, PKCS12_FUEL, encoding, keys, pem, pkcs12, x509};

type Func = fn(&State, &[Value]) -> Result<Value, Error>;

const FUNCTIONS: &[(&str, Func)] = &[
    ("pkcs12key", |s, a| {
        arity("pkcs12key", a, 1, 1)?;
        s.consume_fuel(PKCS12_FUEL)?;
        pkcs12::pkcs12_key(a[0].clone(), None)
    }),
    ("pkcs12keyPass", |s, a| {
        arity("pkcs12keyPass", a, 2, 2)?;
        s.consume_fuel(PKCS12_FUEL)?;
        pkcs12::pkcs12_key(a[1].clone(), Some(text(&a[0])))
    }),
    ("pkcs12cert", |s, a| {
        arity("pkcs12cert", a, 1, 1)?;
        s.consume_fuel(PKCS12_FUEL)?;
        pkcs12::pkcs12_cert(a[0].clone(), None)
    }),
    ("pkcs12certPass", |s, a| {
        arity("pkcs12certPass", a, 2, 2)?;
        s.consume_fuel(PKCS12_FUEL)?;
        pkcs12::pkcs12_cert(a[1].clone(), Some(text(&a[0])))
    }),
    ("pemToPkcs12", |s, a| {
        arity("pemToPkcs12", a, 2, 2)?;
        s.consume_fuel(PKCS12_FUEL)?;
        pkcs12::pem_to_pkcs12(a[0].clone(), a[1].clone(), None)
    }),
    ("pemToPkcs12Pass", |s, a| {
        arity("pemToPkcs12Pass", a, 3, 3)?;
        s.consume_fuel(PKCS12_FUEL)?;
        pkcs12::pem_to_pkcs12(a[0].clone(), a[1].clone(), Some(text(&a[2])))
    }),
    ("fullPemToPkcs12", |s, a| {
        arity("fullPemToPkcs12", a, 2, 2)?;
        s.consume_fuel(PKCS12_FUEL)?;
        pkcs12::full_pem_to_pkcs12(a[0].clone(), a[1].clone(), None)
    }),
    ("fullPemToPkcs12Pass", |s, a| {
        arity("fullPemToPkcs12Pass", a, 3, 3)?;
        s.consume_fuel(PKCS12_FUEL)?;
        pkcs12::full_pem_to_pkcs12(a[0].clone(), a[1].clone(), Some(text(&a[2])))
    }),
    ("pemTruststoreToPKCS12", |s, a| {
        arity("pemTruststoreToPKCS12", a, 1, 1)?;
        s.consume_fuel(PKCS12_FUEL)?;
        pkcs12::pem_truststore_to_pkcs12(a[0].clone(), None)
    }),
    ("pemTruststoreToPKCS12Pass", |s, a| {
        arity("pemTruststoreToPKCS12Pass", a, 2, 2)?;
        s.consume_fuel(PKCS12_FUEL)?;
        pkcs12::pem_truststore_to_pkcs12(a[0].clone(), Some(text(&a[1])))
    }),
    ("filterPEM", |_, a| {
        arity("filterPEM", a, 2, 2)?;
        pem::filter_pem(a[1].clone(), text(&a[0]))
    }),
    ("filterCertChain", |_, a| {
        arity("filterCertChain", a, 2, 2)?;
        x509::filter_cert_chain(a[1].clone(), text(&a[0]))
    }),
    ("certSANs", |_, a| {
        arity("certSANs", a, 1, 1)?;
        x509::cert_sans(a[0].clone())
    }),
    ("jwkPublicKeyPem", |s, a| {
        arity("jwkPublicKeyPem", a, 1, 1)?;
        s.consume_fuel(KEY_FUEL)?;
        keys::jwk_public_key_pem(a[0].clone())
    }),
    ("jwkPrivateKeyPem", |s, a| {
        arity("jwkPrivateKeyPem", a, 1, 1)?;
        s.consume_fuel(KEY_FUEL)?;
        keys::jwk_private_key_pem(a[0].clone())
    }),
    ("toYaml", |_, a| {
        arity("toYaml", a, 1, 1)?;
        encoding::to_yaml_eso(a[0].clone())
    }),
    ("fromYaml", |_, a| {
        arity("fromYaml", a, 1, 1)?;
        encoding::from_yaml_eso(a[0].clone())
    }),
    ("rsaDecrypt", |s, a| {
        arity("rsaDecrypt", a, 4, 4)?;
        s.consume_fuel(KEY_FUEL)?;
        keys::rsa_decrypt_eso(&text(&a[0]), &text(&a[1]), &a[2], &a[3])
    }),
];

fn text(value: &Value) -> String {
    match value.kind() {
        ValueKind::None | ValueKind::Undefined => String::new(),
        _ => sprig::strval(value),
    }
}

/// Adds ESO's helpers as functions (Go's order) and filters (piped value last).
pub(in crate::template) fn register(env: &mut Environment<'static>) {
    for &(name, f) in FUNCTIONS {
        sprig::add(env, name, f);
    }
}
