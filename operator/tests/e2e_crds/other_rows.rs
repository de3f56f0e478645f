//! The table's rows for the other kinds, written by hand: PushSecret's CEL rules, the stores'
//! one-ofs, patterns and bounds, VaultDynamicSecret's required fields, Password's integer
//! bounds, a missing spec and a misspelt field.

use super::table::{
    CES, CSS, DURATION, ES, Expect, PASSWORD, PS, REQUIRED, RETRY_INTERVAL, Row, SKIPPED_CEL, SS,
    URL, VDS, bad, min_length, ok, one_of, pattern, spec,
};

pub(crate) fn other_rows() -> Vec<Row> {
    let iv = |m: &str| format!("Invalid value: {m}");
    let store_ref = iv("exactly one of name and labelSelector must be set");
    let selector = iv("exactly one of secret and generatorRef must be set");
    let template = iv("exactly one of configMap, secret and literal must be set");
    let ps = |extra: &str| {
        format!("{{secretStoreRefs: [{{name: s}}], selector: {{secret: {{name: x}}}}{extra}}}")
    };
    let vault = |extra: &str| {
        format!(
            "{{provider: {{vault: {{server: 'https://v', auth: {{tokenSecretRef: {{name: t}}}}{extra}}}}}}}"
        )
    };
    let store = |extra: &str| {
        format!(
            "{{provider: {{vault: {{server: 'https://v', auth: {{tokenSecretRef: {{name: t}}}}}}}}{extra}}}"
        )
    };
    let vds = |extra: &str| {
        format!(
            "{{path: p, provider: {{server: 'https://v', auth: {{tokenSecretRef: {{name: t}}}}}}{extra}}}"
        )
    };
    let mut rows = vec![
        // ClusterExternalSecret
        bad(
            CES,
            "refreshTime 1d",
            "{externalSecretSpec: {}, refreshTime: 1d}",
            &[(
                "spec.refreshTime",
                &pattern("1d", "spec.refreshTime", DURATION),
            )],
        ),
        bad(
            CES,
            "no externalSecretSpec",
            "{refreshTime: 1h}",
            &[("spec.externalSecretSpec", REQUIRED), SKIPPED_CEL],
        ),
        // PushSecret
        ok(PS, "a Secret selected by name", &ps("")),
        bad(
            PS,
            "secretStoreRefs[] with neither",
            "{secretStoreRefs: [{kind: SecretStore}], selector: {secret: {name: x}}}",
            &[("spec.secretStoreRefs[0]", &store_ref)],
        ),
        bad(
            PS,
            "secretStoreRefs[] with both",
            "{secretStoreRefs: [{name: s, labelSelector: {}}], selector: {secret: {name: x}}}",
            &[("spec.secretStoreRefs[0]", &store_ref)],
        ),
        bad(
            PS,
            "selector with neither",
            "{secretStoreRefs: [{name: s}], selector: {}}",
            &[("spec.selector", &selector)],
        ),
        bad(
            PS,
            "selector with both",
            "{secretStoreRefs: [{name: s}], selector: {secret: {name: x}, generatorRef: {kind: UUID, name: u}}}",
            &[("spec.selector", &selector)],
        ),
        bad(
            PS,
            "templateFrom[] with none",
            &ps(", template: {templateFrom: [{}]}"),
            &[("spec.template.templateFrom[0]", &template)],
        ),
        bad(
            PS,
            "no stores and no selector",
            "{}",
            &[
                ("spec.secretStoreRefs", REQUIRED),
                ("spec.selector", REQUIRED),
                SKIPPED_CEL,
            ],
        ),
        bad(
            PS,
            "data[] without match",
            &ps(", data: [{conversionStrategy: Default}]"),
            &[("spec.data[0].match", REQUIRED), SKIPPED_CEL],
        ),
        bad(
            PS,
            "empty remoteKey",
            &ps(", data: [{match: {remoteRef: {remoteKey: ''}}}]"),
            &[(
                "spec.data[0].match.remoteRef.remoteKey",
                &min_length("spec.data[0].match.remoteRef.remoteKey"),
            )],
        ),
        bad(
            PS,
            "refreshInterval 1d",
            &ps(", refreshInterval: 1d"),
            &[(
                "spec.refreshInterval",
                &pattern("1d", "spec.refreshInterval", DURATION),
            )],
        ),
        // SecretStore: one provider, one login method.
        bad(
            SS,
            "no provider",
            "{controller: x}",
            &[("spec.provider", REQUIRED)],
        ),
        bad(
            SS,
            "an empty provider",
            "{provider: {}}",
            &[
                ("<nil>", &one_of("spec.provider", "none valid")),
                ("spec.provider.vault", REQUIRED),
            ],
        ),
        bad(
            SS,
            "two providers",
            "{provider: {fake: {data: []}, kubernetes: {}}}",
            &[("<nil>", &one_of("spec.provider", "2 valid alternatives"))],
        ),
        bad(
            SS,
            "vault without auth",
            "{provider: {vault: {server: 'https://v'}}}",
            &[("spec.provider.vault.auth", REQUIRED)],
        ),
        bad(
            SS,
            "vault with an empty auth",
            "{provider: {vault: {server: 'https://v', auth: {}}}}",
            &[
                ("<nil>", &one_of("spec.provider.vault.auth", "none valid")),
                ("spec.provider.vault.auth.tokenSecretRef", REQUIRED),
            ],
        ),
        bad(
            SS,
            "vault with two logins",
            "{provider: {vault: {server: 'https://v', auth: {tokenSecretRef: {name: t}, appRole: {secretRef: {name: a}}}}}}",
            &[(
                "<nil>",
                &one_of("spec.provider.vault.auth", "2 valid alternatives"),
            )],
        ),
        bad(
            SS,
            "kubernetes with two logins",
            "{provider: {kubernetes: {auth: {serviceAccount: {name: a}, token: {bearerToken: {name: t}}}}}}",
            &[(
                "<nil>",
                &one_of("spec.provider.kubernetes.auth", "2 valid alternatives"),
            )],
        ),
        bad(
            SS,
            "fake without data",
            "{provider: {fake: {}}}",
            &[("spec.provider.fake.data", REQUIRED)],
        ),
        bad(
            SS,
            "vault server without a scheme",
            "{provider: {vault: {server: 'vault.example.com:8200', auth: {tokenSecretRef: {name: t}}}}}",
            &[(
                "spec.provider.vault.server",
                &pattern("vault.example.com:8200", "spec.provider.vault.server", URL),
            )],
        ),
        bad(
            SS,
            "retryInterval 0",
            &store(", retrySettings: {retryInterval: '0'}"),
            &[(
                "spec.retrySettings.retryInterval",
                &pattern("0", "spec.retrySettings.retryInterval", RETRY_INTERVAL),
            )],
        ),
        bad(
            SS,
            "maxRetries -1",
            &store(", retrySettings: {maxRetries: -1}"),
            &[(
                "spec.retrySettings.maxRetries",
                "Invalid value: -1: spec.retrySettings.maxRetries in body should be greater than or equal to 0",
            )],
        ),
        bad(
            SS,
            "refreshInterval -1",
            &store(", refreshInterval: -1"),
            &[(
                "spec.refreshInterval",
                "Invalid value: -1: spec.refreshInterval in body should be greater than or equal to 0",
            )],
        ),
        bad(
            SS,
            "caBundle not base64",
            &vault(", caBundle: 'not base64!'"),
            &[(
                "spec.provider.vault.caBundle",
                "Invalid value: \"not base64!\": spec.provider.vault.caBundle in body must be of type byte: \"not base64!\"",
            )],
        ),
        bad(
            SS,
            "refreshInterval 1.5",
            &store(", refreshInterval: 1.5"),
            &[
                (
                    "spec.refreshInterval",
                    "Invalid value: \"float64\": spec.refreshInterval in body must be of type int64: \"float64\"",
                ),
                (
                    "<nil>",
                    "Invalid value: \"\": Checked value must be of type integer with format int64 in spec.refreshInterval",
                ),
            ],
        ),
        // ClusterSecretStore
        bad(
            CSS,
            "an empty provider",
            "{provider: {}}",
            &[
                ("<nil>", &one_of("spec.provider", "none valid")),
                ("spec.provider.vault", REQUIRED),
            ],
        ),
        bad(
            CSS,
            "kubernetes with an empty auth",
            "{provider: {kubernetes: {auth: {}}}}",
            &[
                (
                    "<nil>",
                    &one_of("spec.provider.kubernetes.auth", "none valid"),
                ),
                ("spec.provider.kubernetes.auth.token", REQUIRED),
            ],
        ),
        bad(
            CSS,
            "vault with two logins",
            "{provider: {vault: {server: 'https://v', auth: {tokenSecretRef: {name: t}, ldap: {username: u, secretRef: {name: l}}}}}}",
            &[(
                "<nil>",
                &one_of("spec.provider.vault.auth", "2 valid alternatives"),
            )],
        ),
        bad(
            CSS,
            "two providers",
            "{provider: {fake: {data: []}, vault: {server: 'https://v', auth: {tokenSecretRef: {name: t}}}}}",
            &[("<nil>", &one_of("spec.provider", "2 valid alternatives"))],
        ),
        bad(
            CSS,
            "vault server ftp",
            "{provider: {vault: {server: 'ftp://v', auth: {tokenSecretRef: {name: t}}}}}",
            &[(
                "spec.provider.vault.server",
                &pattern("ftp://v", "spec.provider.vault.server", URL),
            )],
        ),
        bad(
            CSS,
            "retryInterval 5 s",
            "{provider: {fake: {data: []}}, retrySettings: {retryInterval: 5 s, maxRetries: -2}}",
            &[
                (
                    "spec.retrySettings.retryInterval",
                    &pattern("5 s", "spec.retrySettings.retryInterval", RETRY_INTERVAL),
                ),
                (
                    "spec.retrySettings.maxRetries",
                    "Invalid value: -2: spec.retrySettings.maxRetries in body should be greater than or equal to 0",
                ),
            ],
        ),
        bad(
            CSS,
            "refreshInterval -1",
            "{provider: {fake: {data: []}}, refreshInterval: -1}",
            &[(
                "spec.refreshInterval",
                "Invalid value: -1: spec.refreshInterval in body should be greater than or equal to 0",
            )],
        ),
        // VaultDynamicSecret
        bad(
            VDS,
            "no path and no provider",
            "{method: GET}",
            &[("spec.path", REQUIRED), ("spec.provider", REQUIRED)],
        ),
        bad(
            VDS,
            "empty path",
            "{path: '', provider: {server: 'https://v', auth: {tokenSecretRef: {name: t}}}}",
            &[("spec.path", &min_length("spec.path"))],
        ),
        bad(
            VDS,
            "provider without server",
            "{path: p, provider: {auth: {tokenSecretRef: {name: t}}}}",
            &[("spec.provider.server", REQUIRED)],
        ),
        bad(
            VDS,
            "provider server without a scheme",
            "{path: p, provider: {server: v, auth: {tokenSecretRef: {name: t}}}}",
            &[(
                "spec.provider.server",
                &pattern("v", "spec.provider.server", URL),
            )],
        ),
        bad(
            VDS,
            "provider with an empty auth",
            "{path: p, provider: {server: 'https://v', auth: {}}}",
            &[
                ("<nil>", &one_of("spec.provider.auth", "none valid")),
                ("spec.provider.auth.tokenSecretRef", REQUIRED),
            ],
        ),
        bad(
            VDS,
            "retrySettings out of bounds",
            &vds(", retrySettings: {maxRetries: -1, retryInterval: 1d}"),
            &[
                (
                    "spec.retrySettings.maxRetries",
                    "Invalid value: -1: spec.retrySettings.maxRetries in body should be greater than or equal to 0",
                ),
                (
                    "spec.retrySettings.retryInterval",
                    &pattern("1d", "spec.retrySettings.retryInterval", RETRY_INTERVAL),
                ),
            ],
        ),
        // Password's integer bounds.
        ok(PASSWORD, "length 1", "{length: 1}"),
        ok(
            PASSWORD,
            "length 4096, no digits or symbols",
            "{length: 4096, digits: 0, symbols: 0}",
        ),
        ok(PASSWORD, "length 8.0 (an integral number)", "{length: 8.0}"),
        bad(
            PASSWORD,
            "length 0",
            "{length: 0}",
            &[(
                "spec.length",
                "Invalid value: 0: spec.length in body should be greater than or equal to 1",
            )],
        ),
        bad(
            PASSWORD,
            "length 4097",
            "{length: 4097}",
            &[(
                "spec.length",
                "Invalid value: 4097: spec.length in body should be less than or equal to 4096",
            )],
        ),
        bad(
            PASSWORD,
            "digits -1, symbols -1",
            "{digits: -1, symbols: -1}",
            &[
                (
                    "spec.digits",
                    "Invalid value: -1: spec.digits in body should be greater than or equal to 0",
                ),
                (
                    "spec.symbols",
                    "Invalid value: -1: spec.symbols in body should be greater than or equal to 0",
                ),
            ],
        ),
        bad(
            PASSWORD,
            "digits beyond int32",
            "{digits: 3000000000}",
            &[(
                "<nil>",
                "Invalid value: \"\": Checked value must be of type integer with format int32 in spec.digits",
            )],
        ),
        bad(
            PASSWORD,
            "length 2.5",
            "{length: 2.5}",
            &[
                (
                    "spec.length",
                    "Invalid value: \"float64\": spec.length in body must be of type int32: \"float64\"",
                ),
                (
                    "<nil>",
                    "Invalid value: \"\": Checked value must be of type integer with format int32 in spec.length",
                ),
            ],
        ),
        bad(
            PASSWORD,
            "length as a string",
            "{length: '32'}",
            &[(
                "spec.length",
                "Invalid value: \"string\": spec.length in body must be of type integer: \"string\"",
            )],
        ),
    ];
    // A spec is required of every kind; unknown fields are refused (kubectl's Strict).
    for kind in [ES, PASSWORD] {
        let mut causes = vec![("spec".to_owned(), REQUIRED.to_owned())];
        if kind == ES {
            causes.push((SKIPPED_CEL.0.into(), SKIPPED_CEL.1.into()));
        }
        rows.push(Row {
            what: "no spec".into(),
            kind: kind.into(),
            spec: None,
            expect: Expect::Invalid(causes),
        });
    }
    rows.push(Row {
        what: "a misspelt field".into(),
        kind: ES.into(),
        spec: Some(spec("{secretStoreRef: {name: s}, refreshIntervall: 1h, data: [{secretKey: a, remoteRef: {key: k, kee: k}}]}")),
        expect: Expect::BadRequest(
            "ExternalSecret in version \"v1alpha1\" cannot be handled as a ExternalSecret: strict decoding error: unknown field \"spec.data[0].remoteRef.kee\", unknown field \"spec.refreshIntervall\"".into(),
        ),
    });
    rows
}
