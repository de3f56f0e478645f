//! The table's valid fixtures: objects of every kind that set every enum field and every list
//! with a limit, so that `schema.rs` can derive the enum and list-limit rows from them.

use serde_json::{Value, json};

use super::table::{CES, CSS, ES, Expect, FAKE, PASSWORD, PS, Row, SS, UUID, VDS, spec};

/// Valid objects that set every enum field and every list with a limit.
const ES_FULL: &str = r#"
refreshInterval: 1h30m
refreshPolicy: Periodic
secretStoreRef: {name: store, kind: SecretStore}
target:
  name: app-secret
  creationPolicy: Owner
  deletionPolicy: Retain
  immutable: false
  template:
    type: Opaque
    mergePolicy: Replace
    metadata: {labels: {app: web}, annotations: {team: a}, finalizers: [example.com/keep]}
    delimiters: {variableStart: "[[", variableEnd: "]]"}
    data: {config: "[[ password ]]"}
    templateFrom:
      - configMap: {name: tpl, items: [{key: a, templateAs: Values}]}
        target: Data
      - secret: {name: tpl, items: [{key: b, templateAs: KeysAndValues}]}
      - literal: "x: y"
        valuesDecodingStrategy: Base64
data:
  - secretKey: password
    remoteRef: {key: app/db, property: password, version: "2", conversionStrategy: Default, decodingStrategy: None, metadataPolicy: None, nullBytePolicy: Ignore}
    sourceRef: {storeRef: {name: other, kind: ClusterSecretStore}}
  - secretKey: id
    remoteRef: {key: uuid}
    sourceRef: {generatorRef: {apiVersion: generators.kuvert.io/v1alpha1, kind: UUID, name: id}}
dataFrom:
  - extract: {key: app/db, conversionStrategy: Default, decodingStrategy: Auto, metadataPolicy: Fetch, nullBytePolicy: Fail}
    sourceRef: {storeRef: {name: other, kind: SecretStore}}
    rewrite:
      - regexp: {source: "^", target: db_}
      - transform: {template: "{{ value | upper }}"}
      - merge: {into: all, priority: [a], priorityPolicy: Strict, conflictPolicy: Error, strategy: JSON}
  - find: {path: app/, name: {regexp: ".*"}, tags: {team: a}, conversionStrategy: Unicode, decodingStrategy: Base64, nullBytePolicy: Ignore}
  - sourceRef: {generatorRef: {kind: Password, name: pw}}
"#;

const PS_FULL: &str = r#"
refreshInterval: 10m
updatePolicy: Replace
deletionPolicy: Delete
secretStoreRefs:
  - {name: store, kind: SecretStore}
  - {labelSelector: {matchLabels: {push: "yes"}}, kind: ClusterSecretStore}
selector: {generatorRef: {kind: Password, name: pw}}
data:
  - match: {secretKey: password, remoteRef: {remoteKey: app/pw, property: pw}}
    conversionStrategy: Default
    metadata: {anything: [1, 2]}
template:
  mergePolicy: Merge
  type: Opaque
  data: {k: v}
  templateFrom:
    - configMap: {name: tpl, items: [{key: a, templateAs: Values}]}
      target: Annotations
    - secret: {name: tpl, items: [{key: b, templateAs: KeysAndValues}]}
      valuesDecodingStrategy: Auto
"#;

const VAULT_STORE: &str = r#"
refreshInterval: 60
retrySettings: {maxRetries: 3, retryInterval: 10s}
controller: dev
provider:
  vault:
    server: https://vault.example.com:8200
    path: secret
    version: v2
    namespace: team
    caBundle: LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0t
    caProvider: {type: Secret, name: ca, key: ca.crt}
    auth: {tokenSecretRef: {name: vault-token, key: token}}
"#;

const KUBERNETES_STORE: &str = r#"
provider:
  kubernetes:
    remoteNamespace: remote
    server: {url: "https://k8s.example.com", caProvider: {type: ConfigMap, name: kube-root-ca.crt, key: ca.crt}}
    auth: {serviceAccount: {name: reader, audiences: [api]}}
"#;

const FAKE_STORE: &str = r#"
provider:
  fake:
    data:
      - {key: a, value: b, version: "1", tags: {t: x}}
      - {key: m, valueMap: {u: v}}
"#;

const VDS_FULL: &str = r#"
path: database/creds/app
method: GET
resultType: Data
parameters: {ttl: 1h}
allowEmptyResponse: false
retrySettings: {maxRetries: 1, retryInterval: 1s}
provider:
  server: https://vault.example.com
  version: v2
  caProvider: {type: Secret, name: ca, key: ca.crt}
  auth: {appRole: {roleId: r, secretRef: {name: approle, key: secret-id}}}
"#;

pub(crate) fn fixtures() -> Vec<Row> {
    let es_full = spec(ES_FULL);
    let ces_full = json!({
        "externalSecretSpec": es_full,
        "externalSecretName": "app",
        "externalSecretMetadata": {"labels": {"a": "b"}, "annotations": {"c": "d"}},
        "namespaces": ["table"],
        "namespaceSelectors": [{"matchLabels": {"team": "a"}}],
        "refreshTime": "1m",
    });
    let with_conditions = |store: &str| {
        let mut spec = spec(store);
        spec["conditions"] = json!([
            {"namespaces": ["table"]},
            {"namespaceRegexes": ["team-.*"]},
            {"namespaceSelector": {"matchLabels": {"a": "b"}}}
        ]);
        spec
    };
    let row = |kind: &str, what: &str, spec: Value| Row {
        what: what.into(),
        kind: kind.into(),
        spec: Some(spec),
        expect: Expect::Accepted,
    };
    vec![
        row(ES, "every field", es_full),
        row(CES, "every field", ces_full),
        row(PS, "every field", spec(PS_FULL)),
        row(SS, "vault, every field", spec(VAULT_STORE)),
        row(SS, "kubernetes, every field", spec(KUBERNETES_STORE)),
        row(SS, "fake", spec(FAKE_STORE)),
        row(CSS, "vault, every field", with_conditions(VAULT_STORE)),
        row(
            CSS,
            "kubernetes, every field",
            with_conditions(KUBERNETES_STORE),
        ),
        row(VDS, "every field", spec(VDS_FULL)),
        row(
            PASSWORD,
            "every field",
            spec(
                "{length: 32, digits: 6, symbols: 4, symbolCharacters: '-_', noUpper: false, allowRepeat: true}",
            ),
        ),
        row(UUID, "empty", spec("{}")),
        row(FAKE, "data", spec("{data: {a: b}}")),
    ]
}
