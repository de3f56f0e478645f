//! VaultDynamicSecret with OpenBao's PKI engine: an issued certificate verifies against the
//! issuing CA (checked by `openssl verify`) and carries the requested names.

mod support;

use std::net::{IpAddr, Ipv4Addr};

use kuvert_generator_vault::VaultDynamicSecretKind;
use serde_json::{Value, json};
use support::*;
use x509_parser::extensions::GeneralName;
use x509_parser::pem::parse_x509_pem;

/// `openssl verify -CAfile ca cert`: its output, or its error.
async fn openssl_verify(ca_pem: &str, cert_pem: &str) -> Result<String, String> {
    let dir = std::env::temp_dir().join(format!(
        "kuvert-pki-{}-{}",
        std::process::id(),
        kuvert_testkit::random_hex(4)
    ));
    tokio::fs::create_dir_all(&dir).await.unwrap();
    tokio::fs::write(dir.join("ca.pem"), ca_pem).await.unwrap();
    tokio::fs::write(dir.join("cert.pem"), cert_pem)
        .await
        .unwrap();
    let out = tokio::process::Command::new("openssl")
        .arg("verify")
        .arg("-CAfile")
        .arg(dir.join("ca.pem"))
        .arg(dir.join("cert.pem"))
        .output()
        .await
        .expect("run openssl (the openssl CLI is needed for this test)");
    let _ = tokio::fs::remove_dir_all(&dir).await;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() {
        Ok(text)
    } else {
        Err(text)
    }
}

#[tokio::test]
async fn an_issued_certificate_verifies_against_the_issuing_ca_and_has_the_requested_names() {
    let bao = OpenBao::start().await;
    let root_pem = bao.pki_engine("web", "example.com").await;
    let kube = kube_with_root_token(&bao);
    let kind = VaultDynamicSecretKind::new();
    let spec = spec(
        &bao,
        json!({
            "path": "pki/issue/web",
            "method": "POST",
            "parameters": {
                "common_name": "app.example.com",
                "alt_names": "www.example.com,api.example.com",
                "ip_sans": "127.0.0.1",
                "ttl": "1h"
            }
        }),
    );
    let generated = generator(&kind, &spec, &kube)
        .await
        .unwrap()
        .generate()
        .await
        .unwrap();
    let values = text(&generated.values);
    assert_eq!(
        values.keys().collect::<Vec<_>>(),
        [
            "ca_chain",
            "certificate",
            "expiration",
            "issuing_ca",
            "not_before",
            "private_key",
            "private_key_type",
            "serial_number"
        ]
    );
    assert_eq!(values["private_key_type"], "ec");
    assert!(values["private_key"].starts_with("-----BEGIN EC PRIVATE KEY-----"));
    // Arrays are JSON text: the chain is a list of PEMs, the issuing CA first.
    let chain: Vec<String> = serde_json::from_str(&values["ca_chain"]).unwrap();
    assert_eq!(chain, [values["issuing_ca"].clone()]);
    // Numbers are JSON text too.
    let expiration: i64 = values["expiration"].parse().unwrap();
    let not_before: i64 = values["not_before"].parse().unwrap();
    // PKI issues without a lease unless the role asks for one (generate_lease).
    assert_eq!(generated.lease, None);

    let cert_pem = &values["certificate"];
    assert_eq!(
        values["issuing_ca"].trim(),
        root_pem.trim(),
        "issued by the mount's root"
    );
    let verified = openssl_verify(&root_pem, cert_pem).await.unwrap();
    assert!(verified.trim().ends_with(": OK"), "{verified}");
    let other = kuvert_testkit::TestCa::generate();
    let refused = openssl_verify(other.pem(), cert_pem).await.unwrap_err();
    assert!(
        refused.contains("unable to get local issuer certificate"),
        "{refused}"
    );

    let (_, pem) = parse_x509_pem(cert_pem.as_bytes()).unwrap();
    let cert = pem.parse_x509().unwrap();
    let cn: Vec<&str> = cert
        .subject()
        .iter_common_name()
        .map(|c| c.as_str().unwrap())
        .collect();
    assert_eq!(cn, ["app.example.com"]);
    let san = cert.subject_alternative_name().unwrap().unwrap();
    let mut dns: Vec<&str> = Vec::new();
    let mut ips: Vec<IpAddr> = Vec::new();
    for name in &san.value.general_names {
        match name {
            GeneralName::DNSName(d) => dns.push(d),
            GeneralName::IPAddress(b) => {
                let octets: [u8; 4] = (*b).try_into().unwrap();
                ips.push(IpAddr::V4(Ipv4Addr::from(octets)));
            }
            other => panic!("unexpected SAN {other:?}"),
        }
    }
    dns.sort_unstable();
    assert_eq!(
        dns,
        ["api.example.com", "app.example.com", "www.example.com"]
    );
    assert_eq!(ips, [IpAddr::V4(Ipv4Addr::LOCALHOST)]);
    assert_eq!(cert.validity().not_after.timestamp(), expiration);
    assert_eq!(cert.validity().not_before.timestamp(), not_before);
    let lifetime = expiration - not_before;
    assert!(
        (3590..=3660).contains(&lifetime),
        "the requested 1h ttl, got {lifetime}s"
    );
}

#[tokio::test]
async fn a_pki_role_with_generate_lease_gives_a_lease_whose_revocation_revokes_the_certificate() {
    let bao = OpenBao::start().await;
    bao.pki_engine("web", "example.com").await;
    bao.write(
        "pki/roles/leased",
        json!({"allowed_domains": ["example.com"], "allow_subdomains": true, "key_type": "ec",
               "max_ttl": "72h", "generate_lease": true}),
    )
    .await;
    let kube = kube_with_root_token(&bao);
    let kind = VaultDynamicSecretKind::new();
    let spec = spec(
        &bao,
        json!({
            "path": "pki/issue/leased",
            "method": "POST",
            "parameters": {"common_name": "db.example.com", "ttl": "2h"}
        }),
    );
    let generator = generator(&kind, &spec, &kube).await.unwrap();
    let generated = generator.generate().await.unwrap();
    let serial = text(&generated.values)["serial_number"].clone();
    let lease = generated.lease.expect("generate_lease gives a lease");
    assert!(lease.id.starts_with("pki/issue/leased/"), "{}", lease.id);
    // The lease ends with the certificate (2h from issue, counted by Vault in whole seconds).
    assert!(
        (7190..=7200).contains(&lease.duration.as_secs()),
        "{:?}",
        lease.duration
    );

    let revoked_at = |v: Value| v["data"]["revocation_time"].as_i64().unwrap();
    assert_eq!(revoked_at(bao.read(&format!("pki/cert/{serial}")).await), 0);
    generator.revoke(&lease.id).await.unwrap();
    assert!(
        revoked_at(bao.read(&format!("pki/cert/{serial}")).await) > 0,
        "the certificate is on the CRL"
    );
}
