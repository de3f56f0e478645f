//! Tests of the certificate, key and PKCS#12 filters against fixtures made by OpenSSL
//! (`testdata/gen.sh`), and of PKCS#12 output read back by OpenSSL when it is installed.

use std::process::Command;

use super::tests::{
    assert_no_planted_value, ctx, planted_context, render_err, render_ok, render_str,
};
use super::*;

const ROOT: &str = include_str!("testdata/root.crt");
const INT: &str = include_str!("testdata/int.crt");
const LEAF: &str = include_str!("testdata/leaf.crt");
const CHAIN: &str = include_str!("testdata/chain.crt");
const LEAF_KEY: &str = include_str!("testdata/leaf.key");
const LEAF_RSA_KEY: &str = include_str!("testdata/leaf.rsa.key");
const LEAF_PUB: &str = include_str!("testdata/leaf.pub");
const LEAF_JWK: &str = include_str!("testdata/leaf.jwk.json");
const INT_KEY: &str = include_str!("testdata/int.key");
const INT_EC_KEY: &str = include_str!("testdata/int.ec.key");
const INT_PUB: &str = include_str!("testdata/int.pub");
const INT_JWK: &str = include_str!("testdata/int.jwk.json");
const MODERN_P12: &[u8] = include_bytes!("testdata/modern.p12");
const LEGACY_P12: &[u8] = include_bytes!("testdata/legacy.p12");
const NOPASS_P12: &[u8] = include_bytes!("testdata/nopass.p12");
const DISJUNCT_P12: &[u8] = include_bytes!("testdata/disjunct.p12");
const MULTIBAG_P12: &[u8] = include_bytes!("testdata/multibag.p12");
const DISJUNCT: &str = include_str!("testdata/disjunct.crt");
const OAEP256: &[u8] = include_bytes!("testdata/oaep256.bin");
const OAEP1: &[u8] = include_bytes!("testdata/oaep1.bin");
const PKCS1: &[u8] = include_bytes!("testdata/pkcs1.bin");

fn fixtures() -> TemplateContext {
    ctx(&[
        ("root", ROOT.as_bytes()),
        ("int", INT.as_bytes()),
        ("leaf", LEAF.as_bytes()),
        ("chain", CHAIN.as_bytes()),
        ("leaf_key", LEAF_KEY.as_bytes()),
        ("leaf_rsa_key", LEAF_RSA_KEY.as_bytes()),
        ("leaf_jwk", LEAF_JWK.as_bytes()),
        ("int_key", INT_KEY.as_bytes()),
        ("int_ec_key", INT_EC_KEY.as_bytes()),
        ("int_jwk", INT_JWK.as_bytes()),
        ("modern", MODERN_P12),
        ("legacy", LEGACY_P12),
        ("nopass", NOPASS_P12),
        ("oaep256", OAEP256),
        ("oaep1", OAEP1),
        ("pkcs1", PKCS1),
    ])
}

fn err_text(template: &str) -> String {
    let err = render_err(template, &fixtures());
    assert_eq!(err.reason(), "TemplateFilter", "{template}: {err}");
    err.to_string()
}

// ---- filter_pem, filter_cert_chain, cert_sans ----

#[test]
fn filter_pem_keeps_blocks_of_one_type() {
    let c = ctx(&[(
        "bundle",
        format!("{LEAF_KEY}{LEAF}comment\n{INT}").as_bytes(),
    )]);
    assert_eq!(
        render_str("{{ bundle | filter_pem('CERTIFICATE') }}", &c),
        format!("{LEAF}{INT}")
    );
    assert_eq!(
        render_str("{{ bundle | filter_pem('private key') }}", &c),
        LEAF_KEY
    );
    assert_eq!(
        render_str("{{ bundle | filter_pem('EC PRIVATE KEY') }}", &c),
        ""
    );
}

#[test]
fn filter_pem_reports_broken_pem() {
    let c = ctx(&[(
        "bad",
        b"-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n",
    )]);
    let err = render_err("{{ bad | filter_pem('CERTIFICATE') }}", &c);
    assert_eq!(
        err.to_string(),
        "filter `filter_pem` failed at line 1: invalid PEM: a block's base64 does not decode"
    );
}

#[test]
fn filter_cert_chain_splits_a_chain_in_any_order() {
    let shuffled = ctx(&[("chain", format!("{ROOT}{LEAF}{INT}").as_bytes())]);
    for c in [fixtures(), shuffled] {
        assert_eq!(
            render_str("{{ chain | filter_cert_chain('leaf') }}", &c),
            LEAF
        );
        assert_eq!(
            render_str("{{ chain | filter_cert_chain('intermediate') }}", &c),
            INT
        );
        assert_eq!(
            render_str("{{ chain | filter_cert_chain('root') }}", &c),
            ROOT
        );
    }
}

#[test]
fn filter_cert_chain_renders_nothing_for_a_missing_part() {
    let c = fixtures();
    assert_eq!(render_str("{{ leaf | filter_cert_chain('root') }}", &c), "");
    assert_eq!(
        render_str("{{ leaf | filter_cert_chain('intermediate') }}", &c),
        ""
    );
    assert_eq!(render_str("{{ root | filter_cert_chain('leaf') }}", &c), "");
    assert_eq!(
        render_str("{{ root | filter_cert_chain('root') }}", &c),
        ROOT
    );
}

#[test]
fn filter_cert_chain_refuses_an_unknown_kind() {
    assert_eq!(
        err_text("{{ chain | filter_cert_chain('middle') }}"),
        "filter `filter_cert_chain` failed at line 1: the certificate kind must be leaf, intermediate or root"
    );
}

#[test]
fn cert_sans_lists_every_name() {
    assert_eq!(
        render_str("{{ leaf | cert_sans | join(',') }}", &fixtures()),
        "app.example.com,*.app.example.com,10.0.0.1,2001:db8::1,ops@example.com,spiffe://example.com/app"
    );
    assert_eq!(
        render_str("{{ root | cert_sans | length }}", &fixtures()),
        "0"
    );
    assert_eq!(
        err_text("{{ leaf_key | cert_sans }}"),
        "filter `cert_sans` failed at line 1: the input holds no PEM certificate"
    );
}

// ---- PKCS#12 reading ----

#[test]
fn pkcs12_key_reads_modern_and_legacy_keystores() {
    let c = fixtures();
    assert_eq!(
        render_str("{{ modern | pkcs12_key('changeit') }}", &c),
        LEAF_KEY
    );
    assert_eq!(
        render_str("{{ legacy | pkcs12_key('changeit') }}", &c),
        LEAF_KEY
    );
    assert_eq!(render_str("{{ nopass | pkcs12_key }}", &c), INT_KEY);
    assert_eq!(render_str("{{ nopass | pkcs12_key('') }}", &c), INT_KEY);
}

#[test]
fn pkcs12_cert_returns_the_leaf_then_its_chain() {
    let c = fixtures();
    assert_eq!(
        render_str("{{ modern | pkcs12_cert('changeit') }}", &c),
        CHAIN
    );
    assert_eq!(
        render_str("{{ legacy | pkcs12_cert('changeit') }}", &c),
        CHAIN
    );
    assert_eq!(render_str("{{ nopass | pkcs12_cert }}", &c), INT);
}

#[test]
fn pkcs12_reading_reports_a_wrong_password_or_bad_input() {
    assert_eq!(
        err_text("{{ modern | pkcs12_key('wrong') }}"),
        "filter `pkcs12_key` failed at line 1: wrong password or corrupted keystore"
    );
    assert!(err_text("{{ leaf | pkcs12_cert }}").contains("not a valid PKCS#12 keystore"));
    assert!(err_text("{{ 42 | pkcs12_key }}").contains("expects a string or bytes, got number"));
}

#[test]
fn a_base64_keystore_is_read_through_b64dec() {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(MODERN_P12);
    let c = ctx(&[("p12", b64.as_bytes())]);
    assert_eq!(
        render_str("{{ p12 | b64dec | pkcs12_key('changeit') }}", &c),
        LEAF_KEY
    );
}

// ---- PKCS#12 writing ----

fn read_back(p12: &[u8], password: &str) -> (String, String) {
    let c = ctx(&[("p12", p12), ("pw", password.as_bytes())]);
    (
        render_str("{{ p12 | pkcs12_key(pw) }}", &c),
        render_str("{{ p12 | pkcs12_cert(pw) }}", &c),
    )
}

#[test]
fn pem_to_pkcs12_holds_the_key_and_its_certificate() {
    let c = fixtures();
    let p12 = render_ok("{{ chain | pem_to_pkcs12(leaf_key, 'pw') | b64dec }}", &c);
    assert_eq!(
        read_back(&p12, "pw"),
        (LEAF_KEY.to_string(), LEAF.to_string())
    );
    // PKCS#1 and SEC1 keys are converted to PKCS#8.
    let p12 = render_ok("{{ leaf | pem_to_pkcs12(leaf_rsa_key) | b64dec }}", &c);
    assert_eq!(
        read_back(&p12, ""),
        (LEAF_KEY.to_string(), LEAF.to_string())
    );
    let p12 = render_ok("{{ int | pem_to_pkcs12(int_ec_key, 'x') | b64dec }}", &c);
    assert_eq!(read_back(&p12, "x").1, INT);
    assert_eq!(read_back(&p12, "x"), (INT_KEY.to_string(), INT.to_string()));
}

#[test]
fn full_pem_to_pkcs12_holds_the_chain() {
    let c = fixtures();
    let p12 = render_ok(
        "{{ chain | full_pem_to_pkcs12(leaf_key, 'pw') | b64dec }}",
        &c,
    );
    assert_eq!(
        read_back(&p12, "pw"),
        (LEAF_KEY.to_string(), CHAIN.to_string())
    );
    // The key's certificate is found wherever it is in the bundle.
    let c = ctx(&[
        ("bundle", format!("{ROOT}{INT}{LEAF}").as_bytes()),
        ("key", LEAF_KEY.as_bytes()),
    ]);
    let p12 = render_ok("{{ bundle | full_pem_to_pkcs12(key) | b64dec }}", &c);
    assert_eq!(
        read_back(&p12, ""),
        (LEAF_KEY.to_string(), CHAIN.to_string())
    );
}

#[test]
fn writing_refuses_a_key_that_does_not_match() {
    assert_eq!(
        err_text("{{ leaf | pem_to_pkcs12(int_key) | b64dec }}"),
        "filter `pem_to_pkcs12` failed at line 1: the private key does not match the certificate"
    );
    assert_eq!(
        err_text("{{ leaf | full_pem_to_pkcs12(leaf) | b64dec }}"),
        "filter `full_pem_to_pkcs12` failed at line 1: the key argument holds no PEM private key"
    );
    assert_eq!(
        err_text("{{ leaf_key | pem_to_pkcs12(leaf_key) | b64dec }}"),
        "filter `pem_to_pkcs12` failed at line 1: the input holds no PEM certificate"
    );
}

#[test]
fn pem_truststore_to_pkcs12_holds_every_certificate() {
    let c = fixtures();
    let p12 = render_ok(
        "{{ chain | pem_truststore_to_pkcs12('trust') | b64dec }}",
        &c,
    );
    let c2 = ctx(&[("p12", &p12)]);
    assert_eq!(render_str("{{ p12 | pkcs12_cert('trust') }}", &c2), CHAIN);
    assert!(
        render_err("{{ p12 | pkcs12_key('trust') }}", &c2)
            .to_string()
            .contains("holds no private key")
    );
    assert_eq!(
        err_text("{{ leaf_key | pem_truststore_to_pkcs12 | b64dec }}"),
        "filter `pem_truststore_to_pkcs12` failed at line 1: the input holds no PEM certificate"
    );
}

#[test]
fn keystores_are_base64_text_as_esos_are() {
    use base64::Engine as _;
    let c = fixtures();
    // ESO's writers return base64 text; users store the binary with `| b64dec`.
    let b64 = render_str("{{ chain | full_pem_to_pkcs12(leaf_key, 'pw') }}", &c);
    let p12 = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap();
    assert_eq!(read_back(&p12, "pw").1, CHAIN);
}

/// OpenSSL reads what kuvert writes (skipped when `openssl` is not installed).
#[test]
fn openssl_reads_the_keystores_kuvert_writes() {
    if Command::new("openssl").arg("version").output().is_err() {
        eprintln!("openssl not installed: skipping the cross-check");
        return;
    }
    let dir = std::env::temp_dir().join(format!("kuvert-p12-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let c = fixtures();
    let cases = [
        (
            "{{ chain | full_pem_to_pkcs12(leaf_key, 's3cret') | b64dec }}",
            "s3cret",
            3,
            true,
        ),
        ("{{ leaf | pem_to_pkcs12(leaf_key) | b64dec }}", "", 1, true),
        (
            "{{ chain | pem_truststore_to_pkcs12('trust') | b64dec }}",
            "trust",
            3,
            false,
        ),
    ];
    for (i, (template, password, certs, has_key)) in cases.into_iter().enumerate() {
        let path = dir.join(format!("{i}.p12"));
        std::fs::write(&path, render_ok(template, &c)).unwrap();
        let out = Command::new("openssl")
            .args(["pkcs12", "-nodes", "-passin"])
            .arg(format!("pass:{password}"))
            .arg("-in")
            .arg(&path)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{template}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            stdout.matches("BEGIN CERTIFICATE").count(),
            certs,
            "{template}"
        );
        assert_eq!(stdout.contains("BEGIN PRIVATE KEY"), has_key, "{template}");
        if has_key {
            assert!(
                stdout.contains(LEAF_KEY.lines().nth(1).unwrap()),
                "{template}"
            );
        }
    }
    std::fs::remove_dir_all(&dir).ok();
}

// ---- JWK ----

#[test]
fn jwk_public_key_pem_matches_openssl() {
    let c = fixtures();
    assert_eq!(
        render_str("{{ leaf_jwk | jwk_public_key_pem }}", &c),
        LEAF_PUB
    );
    assert_eq!(
        render_str("{{ int_jwk | jwk_public_key_pem }}", &c),
        INT_PUB
    );
    // A parsed JWK (a map) works too.
    assert_eq!(
        render_str("{{ int_jwk | fromjson | jwk_public_key_pem }}", &c),
        INT_PUB
    );
}

#[test]
fn jwk_private_key_pem_matches_openssl() {
    let c = fixtures();
    assert_eq!(
        render_str("{{ leaf_jwk | jwk_private_key_pem }}", &c),
        LEAF_KEY
    );
    assert_eq!(
        render_str("{{ int_jwk | jwk_private_key_pem }}", &c),
        INT_KEY
    );
}

#[test]
fn jwk_errors_name_the_problem() {
    let c = ctx(&[
        ("pub_only", br#"{"kty":"EC","crv":"P-256","x":"MhYknl4z_MeMlhEq16GpW9eM_ZLoEdOa0sVNEGXo0g4","y":"0F2lYG0ziM6XPxbjT0jayQxG3WOZryZeXSZ-DPNPbiA"}"#),
        ("p384", br#"{"kty":"EC","crv":"P-384","x":"AA","y":"AA"}"#),
        ("okp", br#"{"kty":"OKP","crv":"Ed25519","x":"AA"}"#),
        ("oct", br#"{"kty":"oct","k":"AA"}"#),
        ("bad_n", br#"{"kty":"RSA","n":"***","e":"AQAB"}"#),
        ("not_json", b"nope"),
    ]);
    let cases = [
        (
            "{{ pub_only | jwk_private_key_pem }}",
            "filter `jwk_private_key_pem` failed at line 1: the JWK has no `d` member",
        ),
        (
            "{{ p384 | jwk_public_key_pem }}",
            "filter `jwk_public_key_pem` failed at line 1: the JWK coordinates do not have the curve's size",
        ),
        (
            "{{ okp | jwk_public_key_pem }}",
            "filter `jwk_public_key_pem` failed at line 1: the JWK `x` is not 32 bytes (Ed25519)",
        ),
        (
            "{{ oct | jwk_public_key_pem }}",
            "filter `jwk_public_key_pem` failed at line 1: unsupported JWK key type (RSA, EC and OKP are)",
        ),
        (
            "{{ bad_n | jwk_public_key_pem }}",
            "filter `jwk_public_key_pem` failed at line 1: the JWK member `n` is not base64url",
        ),
        (
            "{{ not_json | jwk_public_key_pem }}",
            "filter `jwk_public_key_pem` failed at line 1: the input is not JSON",
        ),
    ];
    for (template, expected) in cases {
        assert_eq!(render_err(template, &c).to_string(), expected);
    }
}

// ---- rsa_decrypt ----

#[test]
fn rsa_decrypt_supports_three_schemes() {
    let c = fixtures();
    assert_eq!(
        render_str("{{ oaep256 | rsa_decrypt(leaf_key) }}", &c),
        "hello kuvert"
    );
    assert_eq!(
        render_str(
            "{{ oaep256 | rsa_decrypt(leaf_rsa_key, 'RSA-OAEP-256') }}",
            &c
        ),
        "hello kuvert"
    );
    assert_eq!(
        render_str("{{ oaep1 | rsa_decrypt(leaf_key, 'RSA-OAEP') }}", &c),
        "hello kuvert"
    );
    assert_eq!(
        render_str("{{ pkcs1 | rsa_decrypt(leaf_key, 'PKCS1v15') }}", &c),
        "hello kuvert"
    );
}

#[test]
fn rsa_decrypt_takes_base64_strings() {
    let c = fixtures();
    assert_eq!(
        render_str("{{ oaep256 | b64enc | rsa_decrypt(leaf_key) }}", &c),
        "hello kuvert"
    );
}

#[test]
fn rsa_decrypt_errors_name_the_problem() {
    assert_eq!(
        err_text("{{ oaep1 | rsa_decrypt(leaf_key) }}"),
        "filter `rsa_decrypt` failed at line 1: decryption failed (wrong key, scheme or ciphertext)"
    );
    assert_eq!(
        err_text("{{ oaep1 | rsa_decrypt(leaf_key, 'ROT13') }}"),
        "filter `rsa_decrypt` failed at line 1: unknown scheme (RSA-OAEP-256, RSA-OAEP or PKCS1v15)"
    );
    assert_eq!(
        err_text("{{ oaep1 | rsa_decrypt(int_key) }}"),
        "filter `rsa_decrypt` failed at line 1: the private key is not a valid RSA key"
    );
    assert_eq!(
        err_text("{{ 'not base64!' | rsa_decrypt(leaf_key) }}"),
        "filter `rsa_decrypt` failed at line 1: a string input must be base64 ciphertext"
    );
}

// ---- no secret in any error ----

#[test]
fn crypto_filter_errors_never_contain_a_secret_value() {
    let c = planted_context();
    let templates = [
        "{{ password | pkcs12_key }}",
        "{{ password | pkcs12_cert(password) }}",
        "{{ pem | pem_to_pkcs12(password) | b64dec }}",
        "{{ password | full_pem_to_pkcs12(pem) | b64dec }}",
        "{{ pem | pem_truststore_to_pkcs12 | b64dec }}",
        "{{ pem | filter_cert_chain('leaf') }}",
        "{{ password | filter_cert_chain(password) }}",
        "{{ pem | cert_sans }}",
        "{{ json | jwk_public_key_pem }}",
        "{{ password | jwk_private_key_pem }}",
        "{{ b64 | rsa_decrypt(pem) }}",
        "{{ password | b64enc | rsa_decrypt(password, password) }}",
    ];
    for template in templates {
        let err = render_err(template, &c);
        assert_no_planted_value(template, &err);
    }
}

#[test]
fn an_empty_bundle_renders_nothing() {
    let c = ctx(&[("empty", b"")]);
    assert_eq!(
        render_str("{{ empty | filter_cert_chain('leaf') }}", &c),
        ""
    );
    assert_eq!(
        render_str("{{ empty | filter_pem('CERTIFICATE') }}", &c),
        ""
    );
}

#[test]
fn keystores_are_the_same_bytes_for_the_same_input() {
    let c = fixtures();
    for template in [
        "{{ chain | full_pem_to_pkcs12(leaf_key, 'pw') | b64dec }}",
        "{{ leaf | pem_to_pkcs12(leaf_key) | b64dec }}",
        "{{ chain | pem_truststore_to_pkcs12('pw') | b64dec }}",
    ] {
        assert_eq!(
            render_ok(template, &c),
            render_ok(template, &c),
            "{template}"
        );
    }
    let a = render_ok("{{ leaf | pem_to_pkcs12(leaf_key, 'a') | b64dec }}", &c);
    let b = render_ok("{{ leaf | pem_to_pkcs12(leaf_key, 'b') | b64dec }}", &c);
    assert_ne!(a, b);
}

/// Java reads what kuvert writes: a key entry, and trusted certificate entries (skipped when
/// `keytool` is not installed).
#[test]
fn keytool_reads_the_keystores_kuvert_writes() {
    if Command::new("keytool").arg("-help").output().is_err() {
        eprintln!("keytool not installed: skipping the cross-check");
        return;
    }
    let dir = std::env::temp_dir().join(format!("kuvert-jks-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let c = fixtures();
    let cases = [
        (
            "{{ chain | full_pem_to_pkcs12(leaf_key, 'changeit') | b64dec }}",
            "PrivateKeyEntry",
            1,
        ),
        (
            "{{ chain | pem_truststore_to_pkcs12('changeit') | b64dec }}",
            "trustedCertEntry",
            3,
        ),
    ];
    for (i, (template, entry, count)) in cases.into_iter().enumerate() {
        let path = dir.join(format!("{i}.p12"));
        std::fs::write(&path, render_ok(template, &c)).unwrap();
        let out = Command::new("keytool")
            .args([
                "-list",
                "-storetype",
                "PKCS12",
                "-storepass",
                "changeit",
                "-keystore",
            ])
            .arg(&path)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{template}: {stdout}");
        assert_eq!(stdout.matches(entry).count(), count, "{template}: {stdout}");
    }
    std::fs::remove_dir_all(&dir).ok();
}

/// ESO's `pkcs12cert` cases (its tests' "multibag" and "disjunct" keystores, rebuilt with our
/// certificates): one chain comes out leaf -> intermediate -> root whatever the stored order; a
/// certificate that belongs to no chain leaves the stored order as it is.
#[test]
fn pkcs12_cert_keeps_esos_order() {
    let c = ctx(&[("multibag", MULTIBAG_P12), ("disjunct", DISJUNCT_P12)]);
    assert_eq!(
        render_str("{{ multibag | pkcs12_cert }}", &c),
        format!("{LEAF}{INT}{ROOT}")
    );
    assert_eq!(
        render_str("{{ disjunct | pkcs12_cert }}", &c),
        format!("{LEAF}{ROOT}{INT}{DISJUNCT}")
    );
    assert_eq!(
        render_str("{{ pkcs12cert(disjunct) }}", &c),
        format!("{LEAF}{ROOT}{INT}{DISJUNCT}")
    );
}

/// ESO reads RSA, EC P-256/P-384/P-521 and Ed25519 JWKs (lestrrat-go/jwx, then Go's x509
/// marshalling). The expected PEMs are OpenSSL's for the same keys (testdata/gen.sh), whose
/// PKCS#8 layout is Go's: the curve in the algorithm, the public point in the ECPrivateKey.
#[test]
fn jwk_filters_read_p384_p521_and_ed25519() {
    let cases = [
        (
            include_str!("testdata/p384.jwk.json"),
            include_str!("testdata/p384.pub"),
            include_str!("testdata/p384.key"),
        ),
        (
            include_str!("testdata/p521.jwk.json"),
            include_str!("testdata/p521.pub"),
            include_str!("testdata/p521.key"),
        ),
        (
            include_str!("testdata/ed25519.jwk.json"),
            include_str!("testdata/ed25519.pub"),
            include_str!("testdata/ed25519.key"),
        ),
    ];
    for (jwk, public, private) in cases {
        let c = ctx(&[("jwk", jwk.as_bytes())]);
        assert_eq!(render_str("{{ jwk | jwk_public_key_pem }}", &c), public);
        assert_eq!(render_str("{{ jwkPublicKeyPem(jwk) }}", &c), public);
        assert_eq!(render_str("{{ jwk | jwk_private_key_pem }}", &c), private);
        assert_eq!(render_str("{{ jwk | jwkPrivateKeyPem }}", &c), private);
    }
}

#[test]
fn jwk_private_keys_must_match_their_public_half() {
    let mut p384: serde_json::Value =
        serde_json::from_str(include_str!("testdata/p384.jwk.json")).unwrap();
    let mut ed: serde_json::Value =
        serde_json::from_str(include_str!("testdata/ed25519.jwk.json")).unwrap();
    // Another key's private half.
    p384["d"] =
        serde_json::Value::from("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAB");
    ed["d"] = serde_json::Value::from("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAE");
    for jwk in [p384.to_string(), ed.to_string()] {
        let c = ctx(&[("jwk", jwk.as_bytes())]);
        let text = render_err("{{ jwk | jwk_private_key_pem }}", &c).to_string();
        assert!(text.contains("does not match"), "{text}");
    }
    let c = ctx(&[(
        "jwk",
        br#"{"kty":"EC","crv":"P-192","x":"AA","y":"AA"}"#.as_slice(),
    )]);
    assert!(
        render_err("{{ jwk | jwk_public_key_pem }}", &c)
            .to_string()
            .contains("P-256, P-384 and P-521 are")
    );
}
