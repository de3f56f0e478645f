//! The table's ExternalSecret rows, written by hand: the "exactly one of" CEL rules, required
//! fields, lengths, types and durations. Each is also sent as a ClusterExternalSecret.

use serde_json::json;

use super::table::{
    CES, DURATION, ES, Expect, REQUIRED, Row, SKIPPED_CEL, bad, min_length, ok, pattern,
};

/// ExternalSecret rows; each also becomes a ClusterExternalSecret row (see [`in_cluster_es`]).
pub(crate) fn external_secret_rows() -> Vec<Row> {
    let sr = "exactly one of storeRef and generatorRef must be set";
    let df = "exactly one of extract, find and sourceRef.generatorRef must be set";
    let rw = "exactly one of regexp, transform and merge must be set";
    let tf = "exactly one of configMap, secret and literal must be set";
    let iv = |m: &str| format!("Invalid value: {m}");
    let (sr, df, rw, tf) = (iv(sr), iv(df), iv(rw), iv(tf));
    let mut rows = vec![
        // The "exactly one of" CEL rules: none, and two.
        bad(
            ES,
            "data[].sourceRef with neither",
            "{data: [{secretKey: a, sourceRef: {}}]}",
            &[("spec.data[0].sourceRef", &sr)],
        ),
        bad(
            ES,
            "data[].sourceRef with both",
            "{data: [{secretKey: a, sourceRef: {storeRef: {name: s}, generatorRef: {kind: UUID, name: u}}}]}",
            &[("spec.data[0].sourceRef", &sr)],
        ),
        bad(
            ES,
            "dataFrom[] with none",
            "{secretStoreRef: {name: s}, dataFrom: [{}]}",
            &[("spec.dataFrom[0]", &df)],
        ),
        bad(
            ES,
            "dataFrom[] with extract and find",
            "{secretStoreRef: {name: s}, dataFrom: [{extract: {key: k}, find: {path: p}}]}",
            &[("spec.dataFrom[0]", &df)],
        ),
        bad(
            ES,
            "dataFrom[] with only a storeRef",
            "{dataFrom: [{sourceRef: {storeRef: {name: s}}}]}",
            &[("spec.dataFrom[0]", &df)],
        ),
        bad(
            ES,
            "dataFrom[] with extract and a generator",
            "{dataFrom: [{extract: {key: k}, sourceRef: {generatorRef: {kind: UUID, name: u}}}]}",
            &[("spec.dataFrom[0]", &df)],
        ),
        bad(
            ES,
            "dataFrom[].sourceRef with neither",
            "{secretStoreRef: {name: s}, dataFrom: [{extract: {key: k}, sourceRef: {}}]}",
            &[("spec.dataFrom[0].sourceRef", &sr)],
        ),
        bad(
            ES,
            "dataFrom[].rewrite[] with none",
            "{secretStoreRef: {name: s}, dataFrom: [{find: {path: p}, rewrite: [{}]}]}",
            &[("spec.dataFrom[0].rewrite[0]", &rw)],
        ),
        bad(
            ES,
            "dataFrom[].rewrite[] with two",
            "{secretStoreRef: {name: s}, dataFrom: [{find: {path: p}, rewrite: [{regexp: {source: a, target: b}}, {regexp: {source: a, target: b}, transform: {template: x}}]}]}",
            &[("spec.dataFrom[0].rewrite[1]", &rw)],
        ),
        bad(
            ES,
            "templateFrom[] with none",
            "{secretStoreRef: {name: s}, target: {template: {templateFrom: [{target: Data}]}}}",
            &[("spec.target.template.templateFrom[0]", &tf)],
        ),
        bad(
            ES,
            "templateFrom[] with two",
            "{secretStoreRef: {name: s}, target: {template: {templateFrom: [{literal: x, secret: {name: s, items: []}}]}}}",
            &[("spec.target.template.templateFrom[0]", &tf)],
        ),
        ok(
            ES,
            "a generator entry needs no store",
            "{data: [{secretKey: a, sourceRef: {generatorRef: {kind: Fake, name: f}}}]}",
        ),
        // Violations that do not block CEL are reported beside the rules'; blocking ones skip them.
        bad(
            ES,
            "a bad duration and a broken rule",
            "{refreshInterval: 1d, dataFrom: [{}]}",
            &[
                (
                    "spec.refreshInterval",
                    &pattern("1d", "spec.refreshInterval", DURATION),
                ),
                ("spec.dataFrom[0]", &df),
            ],
        ),
        bad(
            ES,
            "a bad enum and a broken rule",
            "{secretStoreRef: {name: s, kind: Nope}, dataFrom: [{}]}",
            &[
                (
                    "spec.secretStoreRef.kind",
                    "Unsupported value: \"Nope\": supported values: \"SecretStore\", \"ClusterSecretStore\"",
                ),
                SKIPPED_CEL,
            ],
        ),
        // Required fields.
        bad(
            ES,
            "secretStoreRef without name",
            "{secretStoreRef: {kind: SecretStore}}",
            &[("spec.secretStoreRef.name", REQUIRED), SKIPPED_CEL],
        ),
        bad(
            ES,
            "data[] without secretKey",
            "{secretStoreRef: {name: s}, data: [{remoteRef: {key: k}}]}",
            &[("spec.data[0].secretKey", REQUIRED), SKIPPED_CEL],
        ),
        bad(
            ES,
            "data[].remoteRef without key",
            "{secretStoreRef: {name: s}, data: [{secretKey: a, remoteRef: {property: p}}]}",
            &[("spec.data[0].remoteRef.key", REQUIRED), SKIPPED_CEL],
        ),
        bad(
            ES,
            "generatorRef without kind",
            "{data: [{secretKey: a, sourceRef: {generatorRef: {name: g}}}]}",
            &[
                ("spec.data[0].sourceRef.generatorRef.kind", REQUIRED),
                SKIPPED_CEL,
            ],
        ),
        bad(
            ES,
            "generatorRef without name",
            "{dataFrom: [{sourceRef: {generatorRef: {kind: UUID}}}]}",
            &[
                ("spec.dataFrom[0].sourceRef.generatorRef.name", REQUIRED),
                SKIPPED_CEL,
            ],
        ),
        bad(
            ES,
            "find.name without regexp",
            "{secretStoreRef: {name: s}, dataFrom: [{find: {name: {}}}]}",
            &[("spec.dataFrom[0].find.name.regexp", REQUIRED), SKIPPED_CEL],
        ),
        bad(
            ES,
            "rewrite regexp without target",
            "{secretStoreRef: {name: s}, dataFrom: [{find: {path: p}, rewrite: [{regexp: {source: a}}]}]}",
            &[
                ("spec.dataFrom[0].rewrite[0].regexp.target", REQUIRED),
                SKIPPED_CEL,
            ],
        ),
        bad(
            ES,
            "templateFrom configMap without items",
            "{secretStoreRef: {name: s}, target: {template: {templateFrom: [{configMap: {name: c}}]}}}",
            &[
                (
                    "spec.target.template.templateFrom[0].configMap.items",
                    REQUIRED,
                ),
                SKIPPED_CEL,
            ],
        ),
        // Lengths.
        bad(
            ES,
            "empty secretKey",
            "{secretStoreRef: {name: s}, data: [{secretKey: '', remoteRef: {key: k}}]}",
            &[(
                "spec.data[0].secretKey",
                &min_length("spec.data[0].secretKey"),
            )],
        ),
        bad(
            ES,
            "empty remoteRef.key",
            "{secretStoreRef: {name: s}, data: [{secretKey: a, remoteRef: {key: ''}}]}",
            &[(
                "spec.data[0].remoteRef.key",
                &min_length("spec.data[0].remoteRef.key"),
            )],
        ),
        bad(
            ES,
            "empty extract.key",
            "{secretStoreRef: {name: s}, dataFrom: [{extract: {key: ''}}]}",
            &[(
                "spec.dataFrom[0].extract.key",
                &min_length("spec.dataFrom[0].extract.key"),
            )],
        ),
        ok(
            ES,
            "253-character secretKey and target name",
            &format!(
                "{{secretStoreRef: {{name: s}}, target: {{name: {0}}}, data: [{{secretKey: {0}, remoteRef: {{key: k}}}}]}}",
                "k".repeat(253)
            ),
        ),
        bad(
            ES,
            "254-character secretKey",
            &format!(
                "{{secretStoreRef: {{name: s}}, data: [{{secretKey: {}, remoteRef: {{key: k}}}}]}}",
                "k".repeat(254)
            ),
            &[
                (
                    "spec.data[0].secretKey",
                    "Too long: may not be more than 253 bytes",
                ),
                SKIPPED_CEL,
            ],
        ),
        bad(
            ES,
            "254-character target name",
            &format!(
                "{{secretStoreRef: {{name: s}}, target: {{name: {}}}}}",
                "n".repeat(254)
            ),
            &[
                (
                    "spec.target.name",
                    "Too long: may not be more than 253 bytes",
                ),
                SKIPPED_CEL,
            ],
        ),
        bad(
            ES,
            "rolloutRestartTargets of an unknown kind, an empty and a 254-character name",
            &format!(
                "{{secretStoreRef: {{name: s}}, target: {{rolloutRestartTargets: [{{kind: Pod, name: a}}, {{kind: Deployment, name: ''}}, {{kind: DaemonSet, name: {}}}]}}}}",
                "n".repeat(254)
            ),
            &[
                (
                    "spec.target.rolloutRestartTargets[0].kind",
                    "Unsupported value: \"Pod\": supported values: \"Deployment\", \"StatefulSet\", \"DaemonSet\"",
                ),
                (
                    "spec.target.rolloutRestartTargets[1].name",
                    &min_length("spec.target.rolloutRestartTargets[1].name"),
                ),
                (
                    "spec.target.rolloutRestartTargets[2].name",
                    "Too long: may not be more than 253 bytes",
                ),
                SKIPPED_CEL,
            ],
        ),
        // Types.
        bad(
            ES,
            "refreshInterval as a number",
            "{secretStoreRef: {name: s}, refreshInterval: 5}",
            &[
                (
                    "spec.refreshInterval",
                    "Invalid value: \"integer\": spec.refreshInterval in body must be of type string: \"integer\"",
                ),
                SKIPPED_CEL,
            ],
        ),
        bad(
            ES,
            "target as a string",
            "{secretStoreRef: {name: s}, target: app}",
            &[
                (
                    "spec.target",
                    "Invalid value: \"string\": spec.target in body must be of type object: \"string\"",
                ),
                SKIPPED_CEL,
            ],
        ),
    ];
    // refreshInterval: a Go duration, or 0.
    for good in [
        "0", "1h", "1h30m", "1.5h", "500ms", "10µs", "3us", "100ns", "1m0s",
    ] {
        rows.push(ok(
            ES,
            &format!("refreshInterval {good}"),
            &format!("{{secretStoreRef: {{name: s}}, refreshInterval: '{good}'}}"),
        ));
    }
    for wrong in ["1d", "", "1", "-1h", "1h 30m", "01", "1H"] {
        let message = pattern(wrong, "spec.refreshInterval", DURATION);
        rows.push(bad(
            ES,
            &format!("refreshInterval {wrong:?}"),
            &format!("{{secretStoreRef: {{name: s}}, refreshInterval: '{wrong}'}}"),
            &[("spec.refreshInterval", &message)],
        ));
    }
    rows
}

/// The same row for a ClusterExternalSecret, whose `spec.externalSecretSpec` is an
/// ExternalSecret's spec.
pub(crate) fn in_cluster_es(row: &Row) -> Row {
    let moved = |s: &str| s.replacen("spec.", "spec.externalSecretSpec.", 1);
    Row {
        what: row.what.clone(),
        kind: CES.into(),
        spec: row.spec.clone().map(|s| json!({"externalSecretSpec": s})),
        expect: match &row.expect {
            Expect::Accepted => Expect::Accepted,
            Expect::BadRequest(m) => Expect::BadRequest(m.clone()),
            Expect::Invalid(causes) => Expect::Invalid(
                causes
                    .iter()
                    .map(|(f, m)| {
                        let f = if f.starts_with("spec.") {
                            moved(f)
                        } else {
                            f.clone()
                        };
                        let m = m.replace(": spec.", ": spec.externalSecretSpec.");
                        (f, m)
                    })
                    .collect(),
            ),
        },
    }
}
