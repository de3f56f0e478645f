//! The Helm chart `charts/kuvert`, checked with the real Helm 4 and Helm 3 (both built from Go
//! modules beside the control plane, `scripts/control-plane.sh`) and, where a cluster is
//! needed, the real control plane. Each check that users' Helm can change runs once per Helm:
//! - `helm lint --strict` on the defaults and on every value file in `charts/kuvert/ci/`;
//!   `values.schema.json` refuses misspelt and mistyped values, naming them;
//! - Helm 3 and Helm 4 render the same documents from every value file, so what the checks
//!   below find in Helm 4's rendering holds for Helm 3's;
//! - what the templates render: `kuvert run`'s flags, the restricted Pod Security profile,
//!   leader election from two replicas on, RBAC rendered from the chart's rule files;
//! - the PrometheusRule's alerts pass `promtool check rules` and `promtool test rules`, and
//!   they and the Grafana dashboard use only metrics kuvert exports;
//! - with each Helm: `helm template` output for every value file passes `kubectl apply --dry-run=server
//!   --validate=strict` on kube-apiserver (with minimal stand-ins for prometheus-operator's
//!   ServiceMonitor and PrometheusRule CRDs, which a bare control plane lacks);
//! - `helm install` cluster-wide, then `kuvert run` started as a process with exactly the
//!   Deployment's arguments and a token of the chart's ServiceAccount (no kubelet runs Pods
//!   here), syncs an ExternalSecret under the chart's ClusterRole; `helm upgrade` to three
//!   replicas switches leader election on and kuvert takes the Lease under the same RBAC;
//!   `helm uninstall` leaves only the CRDs and the user's objects;
//! - a namespace-scoped install (`scope.namespace`, CRDs managed outside the release) syncs
//!   under its Role alone.
//!
//! The API server's audit log must show no request of kuvert that RBAC refused.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Namespace, Secret, Service, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ListParams, PostParams};
use kuvert_core::api::{ExternalSecret, SecretStore};
use kuvert_testkit::{ControlPlane, control_plane_bin_dir};
use serde_json::Value;
use support::{eventually, free_port, map, secret_data, yaml};

fn chart() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../charts/kuvert")
}

/// The value files the chart is linted, rendered and dry-run with: the defaults (no file)
/// and `ci/*.yaml` (scoped, HA, monitoring, CRDs off).
fn value_files() -> Vec<Option<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(chart().join("ci"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert_eq!(
        files
            .iter()
            .map(|f| f.file_name().unwrap().to_str().unwrap())
            .collect::<Vec<_>>(),
        [
            "ha-values.yaml",
            "monitoring-values.yaml",
            "no-crds-values.yaml",
            "scoped-values.yaml"
        ]
    );
    std::iter::once(None)
        .chain(files.into_iter().map(Some))
        .collect()
}

/// The Helms the chart supports, both built by `scripts/control-plane.sh`: Helm 4 as `helm`,
/// Helm 3 as `helm3` (a Go module of its own, `tests/control-plane/helm3`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Helm {
    V3,
    V4,
}

impl Helm {
    fn binary(self) -> PathBuf {
        static BIN_DIR: OnceLock<PathBuf> = OnceLock::new();
        let dir = BIN_DIR.get_or_init(control_plane_bin_dir);
        dir.join(match self {
            Helm::V3 => "helm3",
            Helm::V4 => "helm",
        })
    }

    /// `helm ARGS`, with Helm's own folders in `home` (never the user's), and `kubeconfig`
    /// when the command talks to a cluster.
    fn run(self, home: &Path, kubeconfig: Option<&Path>, args: &[&str]) -> Output {
        let mut command = Command::new(self.binary());
        command
            .args(args)
            .env("HELM_CONFIG_HOME", home.join("config"))
            .env("HELM_CACHE_HOME", home.join("cache"))
            .env("HELM_DATA_HOME", home.join("data"));
        if let Some(kubeconfig) = kubeconfig {
            command.env("KUBECONFIG", kubeconfig);
        }
        command
            .output()
            .unwrap_or_else(|e| panic!("running {}: {e}", self.binary().display()))
    }

    /// `helm ARGS` that must succeed: its stdout.
    fn ok(self, home: &Path, kubeconfig: Option<&Path>, args: &[&str]) -> String {
        let out = self.run(home, kubeconfig, args);
        assert!(
            out.status.success(),
            "{self:?} {args:?} failed:\n{}{}",
            text(&out.stdout),
            text(&out.stderr)
        );
        text(&out.stdout)
    }

    /// The binary is the Helm it claims to be (`helm version`), so a test of Helm 3 never
    /// quietly runs Helm 4.
    fn assert_version(self, home: &Path) {
        let version = self.ok(home, None, &["version", "--template", "{{.Version}}"]);
        let major = match self {
            Helm::V3 => "v3.",
            Helm::V4 => "v4.",
        };
        assert!(version.starts_with(major), "{self:?} is {version}");
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("kuvert-chart-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `helm template kuvert charts/kuvert -n kuvert ARGS` with Helm 4: the rendered documents
/// (Helm 3's are the same: `helm_3_and_4_render_the_same_documents_from_every_value_file`).
fn render(args: &[&str]) -> Vec<Value> {
    render_with(Helm::V4, args)
}

fn render_with(helm: Helm, args: &[&str]) -> Vec<Value> {
    let home = scratch("render");
    let chart = chart();
    let mut all = vec![
        "template",
        "kuvert",
        chart.to_str().unwrap(),
        "--namespace",
        "kuvert",
    ];
    all.extend_from_slice(args);
    documents(&helm.ok(&home, None, &all))
}

fn documents(stream: &str) -> Vec<Value> {
    serde_saphyr::from_multiple::<Value>(stream)
        .unwrap()
        .into_iter()
        .filter(|d| !d.is_null())
        .collect()
}

/// The one rendered document of `kind`.
fn only<'a>(docs: &'a [Value], kind: &str) -> &'a Value {
    let found: Vec<&Value> = docs.iter().filter(|d| d["kind"] == kind).collect();
    assert_eq!(found.len(), 1, "expected one {kind}");
    found[0]
}

fn kinds(docs: &[Value]) -> Vec<String> {
    docs.iter()
        .map(|d| d["kind"].as_str().unwrap().to_owned())
        .collect()
}

fn container_args(deployment: &Value) -> Vec<String> {
    serde_json::from_value(deployment["spec"]["template"]["spec"]["containers"][0]["args"].clone())
        .unwrap()
}

#[test]
fn chart_lints_clean_with_helm_4_with_the_defaults_and_every_ci_value_file() {
    lints_clean(Helm::V4);
}

#[test]
fn chart_lints_clean_with_helm_3_with_the_defaults_and_every_ci_value_file() {
    lints_clean(Helm::V3);
}

fn lints_clean(helm: Helm) {
    let home = scratch(&format!("lint-{helm:?}"));
    helm.assert_version(&home);
    let chart = chart();
    for file in value_files() {
        let mut args = vec!["lint", "--strict", chart.to_str().unwrap()];
        if let Some(file) = &file {
            args.extend(["--values", file.to_str().unwrap()]);
        }
        assert_eq!(
            helm.ok(&home, None, &args),
            format!(
                "==> Linting {}\n[INFO] Chart.yaml: icon is recommended\n\n1 chart(s) linted, 0 chart(s) failed\n",
                chart.display()
            ),
            "{helm:?} {file:?}"
        );
    }
}

#[test]
fn helm_3_and_4_render_the_same_documents_from_every_value_file() {
    for file in value_files() {
        let mut args = vec![];
        if let Some(file) = &file {
            args.extend(["--values", file.to_str().unwrap()]);
        }
        // Helm 4 separates documents with a blank line more; the documents are the same.
        assert_eq!(
            render_with(Helm::V3, &args),
            render_with(Helm::V4, &args),
            "{file:?}"
        );
    }
}

#[test]
fn the_values_schema_refuses_misspelt_and_mistyped_values_naming_them_with_helm_4() {
    schema_refuses_misspelt_and_mistyped_values(Helm::V4);
}

#[test]
fn the_values_schema_refuses_misspelt_and_mistyped_values_naming_them_with_helm_3() {
    schema_refuses_misspelt_and_mistyped_values(Helm::V3);
}

fn schema_refuses_misspelt_and_mistyped_values(helm: Helm) {
    let home = scratch(&format!("schema-{helm:?}"));
    let chart = chart();
    let values = home.join("bad-values.yaml");
    // Helm's message: a header, then one line per problem in no fixed order (sorted here).
    let refused = |args: &[&str]| -> Vec<String> {
        let mut all = vec!["template", "kuvert", chart.to_str().unwrap()];
        all.extend_from_slice(args);
        let out = helm.run(&home, None, &all);
        assert!(!out.status.success(), "{helm:?}: {args:?} was accepted");
        let stderr = text(&out.stderr);
        let problems = stderr
            .strip_prefix("Error: values don't meet the specifications of the schema(s) in the following chart(s):\nkuvert:\n")
            .unwrap_or_else(|| panic!("not a schema error: {stderr}"));
        let mut lines: Vec<String> = problems
            .lines()
            .filter(|l| !l.is_empty())
            .map(String::from)
            .collect();
        lines.sort();
        lines
    };
    assert_eq!(
        refused(&["--set", "replicaCont=3"]),
        ["- at '': additional properties 'replicaCont' not allowed"]
    );
    assert_eq!(
        refused(&["--set", "image.pulPolicy=Always"]),
        ["- at '/image': additional properties 'pulPolicy' not allowed"]
    );
    assert_eq!(
        refused(&["--set", "concurrency=lots", "--set", "log.format=xml"]),
        [
            "- at '/concurrency': got string, want integer",
            "- at '/log/format': value must be one of 'json', 'text'",
        ]
    );
    std::fs::write(
        &values,
        "scope: {namespace: Team_A}\nleaseRenewFraction: 1.5\nleaderElection: {leaseDuration: 15}\n",
    )
    .unwrap();
    assert_eq!(
        refused(&["--values", values.to_str().unwrap()]),
        [
            "- at '/leaderElection/leaseDuration': got number, want string",
            "- at '/leaseRenewFraction': exclusiveMaximum: got 1.5, want 1",
            "- at '/scope/namespace': 'Team_A' does not match pattern '^([a-z0-9]([-a-z0-9]*[a-z0-9])?)?$'",
        ]
    );
}

#[test]
fn the_deployment_runs_kuvert_with_the_values_as_flags_under_the_restricted_profile() {
    let docs = render(&[]);
    assert_eq!(
        kinds(&docs),
        [
            "ServiceAccount",
            "CustomResourceDefinition",
            "CustomResourceDefinition",
            "CustomResourceDefinition",
            "CustomResourceDefinition",
            "CustomResourceDefinition",
            "CustomResourceDefinition",
            "CustomResourceDefinition",
            "CustomResourceDefinition",
            "CustomResourceDefinition",
            "ClusterRole",
            "ClusterRoleBinding",
            "Service",
            "Deployment",
        ]
    );
    let deployment = only(&docs, "Deployment");
    assert_eq!(
        container_args(deployment),
        [
            "run",
            "--metrics-addr=0.0.0.0:8080",
            "--concurrency=16",
            "--log-format=json",
            "--log-level=info",
            "--lease-renew-fraction=0.667",
        ]
    );
    let pod = &deployment["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    assert_eq!(container["image"], "ghcr.io/kuvert/kuvert:0.1.0");
    assert_eq!(
        pod["securityContext"],
        serde_json::json!({"runAsNonRoot": true, "runAsUser": 65532, "runAsGroup": 65532,
            "seccompProfile": {"type": "RuntimeDefault"}})
    );
    assert_eq!(
        container["securityContext"],
        serde_json::json!({"allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true,
            "runAsNonRoot": true, "capabilities": {"drop": ["ALL"]}})
    );
    assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(
        container["resources"],
        serde_json::json!({"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"memory": "128Mi"}})
    );
    assert_eq!(deployment["spec"]["strategy"]["type"], "Recreate");
    assert_eq!(
        only(&docs, "ServiceAccount")["automountServiceAccountToken"],
        false
    );
    assert_eq!(pod["automountServiceAccountToken"], true);

    // Every value a user tunes becomes a flag.
    let docs = render(&[
        "--set",
        "replicaCount=3,concurrency=4,controllerClass=blue,log.level=debug,log.format=text",
        "--set",
        "metrics.port=9090,leaderElection.leaseDuration=30s,extraArgs={--kube-qps=50}",
        "--set-json",
        "leaseRenewFraction=0.5",
    ]);
    let deployment = only(&docs, "Deployment");
    assert_eq!(
        container_args(deployment),
        [
            "run",
            "--metrics-addr=0.0.0.0:9090",
            "--concurrency=4",
            "--log-format=text",
            "--log-level=debug",
            "--lease-renew-fraction=0.5",
            "--controller-class=blue",
            "--leader-election",
            "--leader-election-namespace=kuvert",
            "--leader-election-lease-duration=30s",
            "--kube-qps=50",
        ]
    );
    assert_eq!(deployment["spec"]["replicas"], 3);
    assert_eq!(
        deployment["spec"]["strategy"],
        serde_json::json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}})
    );
    // A standby replica answers /readyz with 200 (operator/tests/e2e_leader.rs), so the probe
    // is /readyz with leader election too: rollouts and evictions do not stall on standbys.
    let container = &deployment["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(container["ports"][0]["containerPort"], 9090);
    assert_eq!(only(&docs, "Service")["spec"]["ports"][0]["port"], 9090);
}

#[test]
fn a_scoped_install_gets_a_role_in_its_namespace_and_leases_there() {
    let docs = render(&[
        "--values",
        chart().join("ci/scoped-values.yaml").to_str().unwrap(),
        "--set",
        "replicaCount=2",
    ]);
    assert_eq!(
        kinds(&docs)
            .into_iter()
            .filter(|k| k != "CustomResourceDefinition")
            .collect::<Vec<_>>(),
        [
            "ServiceAccount",
            "Role",
            "Role",
            "RoleBinding",
            "RoleBinding",
            "Service",
            "Deployment"
        ]
    );
    for kind in ["Role", "RoleBinding"] {
        let placed: Vec<(&Value, &Value)> = docs
            .iter()
            .filter(|d| d["kind"] == kind)
            .map(|d| (&d["metadata"]["name"], &d["metadata"]["namespace"]))
            .collect();
        assert_eq!(
            placed,
            [
                (&"kuvert".into(), &"team-a".into()),
                (&"kuvert-leader-election".into(), &"team-a".into())
            ],
            "{kind}s"
        );
    }
    for binding in docs.iter().filter(|d| d["kind"] == "RoleBinding") {
        assert_eq!(
            binding["subjects"],
            serde_json::json!([{"kind": "ServiceAccount", "name": "kuvert", "namespace": "kuvert"}])
        );
    }
    assert_eq!(
        container_args(only(&docs, "Deployment")),
        [
            "run",
            "--metrics-addr=0.0.0.0:8080",
            "--concurrency=16",
            "--log-format=text",
            "--log-level=debug",
            "--lease-renew-fraction=0.667",
            "--namespace=team-a",
            "--controller-class=team-a",
            "--leader-election",
            "--leader-election-namespace=team-a",
            "--leader-election-lease-duration=15s",
        ]
    );
}

/// The rules of a rule file in `charts/kuvert/files/rbac/`.
fn chart_rules(file: &str) -> Vec<PolicyRule> {
    yaml(&std::fs::read_to_string(chart().join("files/rbac").join(file)).unwrap())
}

#[test]
fn rbac_is_rendered_from_the_charts_rule_files_and_matches_what_the_e2e_tests_run_with() {
    let cluster: ClusterRole =
        serde_json::from_value(only(&render(&[]), "ClusterRole").clone()).unwrap();
    assert_eq!(cluster.rules.unwrap(), chart_rules("cluster.yaml"));
    let scoped: Role =
        serde_json::from_value(only(&render(&["--set", "scope.namespace=team-a"]), "Role").clone())
            .unwrap();
    assert_eq!(scoped.rules.unwrap(), chart_rules("namespaced.yaml"));

    // Leader election's Lease rules only with leader election, in the Lease's namespace only.
    assert!(!kinds(&render(&[])).contains(&"Role".to_owned()));
    let leader: Role =
        serde_json::from_value(only(&render(&["--set", "replicaCount=2"]), "Role").clone())
            .unwrap();
    assert_eq!(leader.metadata.namespace.as_deref(), Some("kuvert"));
    assert_eq!(leader.rules.unwrap(), chart_rules("leader-election.yaml"));
}

/// One permission: where it is granted (`cluster-wide`: the ClusterRole, `scoped`: the Role of
/// `scope.namespace`, `leader election`: the Role of the Lease's namespace), API group,
/// resource (with its subresource) and verb.
type Grant = (String, String, String, String);

/// The rule files in `charts/kuvert/files/rbac/` as single grants.
fn grants_of_rule_files() -> std::collections::BTreeSet<Grant> {
    let mut grants = std::collections::BTreeSet::new();
    for (file, place) in [
        ("cluster.yaml", "cluster-wide"),
        ("namespaced.yaml", "scoped"),
        ("leader-election.yaml", "leader election"),
    ] {
        for rule in chart_rules(file) {
            // The table has no column for these: a rule using them must change the table first.
            assert!(
                rule.resource_names.is_none() && rule.non_resource_urls.is_none(),
                "{file}: {rule:?}"
            );
            for group in rule.api_groups.unwrap_or_default() {
                for resource in rule.resources.clone().unwrap_or_default() {
                    for verb in &rule.verbs {
                        grants.insert((
                            place.into(),
                            group.clone(),
                            resource.clone(),
                            verb.clone(),
                        ));
                    }
                }
            }
        }
    }
    grants
}

/// The README's RBAC table (`| Resource | Verbs | Granted | Why |` under `### RBAC`) as single
/// grants. A resource is written as `kubectl describe role` shows it: `resource.group/subresource`,
/// no group for the core API.
fn grants_of_readme_table(readme: &str) -> std::collections::BTreeSet<Grant> {
    let section = readme
        .split("\n### RBAC\n")
        .nth(1)
        .expect("README.md has a section `### RBAC`");
    let rows: Vec<Vec<&str>> = section
        .lines()
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .map(|l| l.trim_matches('|').split('|').map(str::trim).collect())
        .collect();
    assert_eq!(
        rows[0],
        ["Resource", "Verbs", "Granted", "Why"],
        "the table's header"
    );
    let list = |cell: &str| -> Vec<String> {
        cell.split(',')
            .map(|item| item.trim().trim_matches('`').to_owned())
            .collect()
    };
    let mut grants = std::collections::BTreeSet::new();
    for row in &rows[2..] {
        assert!(!row[3].is_empty(), "the row of {} says why", row[0]);
        for resource in list(row[0]) {
            let (name, subresource) = match resource.split_once('/') {
                Some((name, sub)) => (name, format!("/{sub}")),
                None => (resource.as_str(), String::new()),
            };
            let (name, group) = name.split_once('.').unwrap_or((name, ""));
            for verb in list(row[1]) {
                for place in list(row[2]) {
                    grants.insert((
                        place,
                        group.to_owned(),
                        format!("{name}{subresource}"),
                        verb.clone(),
                    ));
                }
            }
        }
    }
    grants
}

#[test]
fn the_readmes_rbac_table_grants_exactly_what_the_charts_rule_files_grant() {
    let readme =
        std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../README.md"))
            .unwrap();
    let table = grants_of_readme_table(&readme);
    let files = grants_of_rule_files();
    let show = |grants: Vec<&Grant>| -> String {
        grants
            .iter()
            .map(|(place, group, resource, verb)| {
                format!("\n  {place}: {verb} {resource} (group {group:?})")
            })
            .collect()
    };
    let missing = show(files.difference(&table).collect());
    let extra = show(table.difference(&files).collect());
    assert!(
        missing.is_empty() && extra.is_empty(),
        "README.md's RBAC table and charts/kuvert/files/rbac/*.yaml disagree.\n\
         Granted by the rule files, missing from the table:{missing}\n\
         In the table, granted by no rule file:{extra}"
    );
}

/// Every `kuvert_*` name kuvert exports (a histogram also as `_bucket`, `_sum`, `_count`).
fn exported_metrics() -> Vec<String> {
    use kuvert_operator::metrics::*;
    let mut names: Vec<String> = [
        SYNC_TOTAL,
        SYNC_ERRORS,
        STORE_REQUESTS,
        STORE_BUDGET_WAITS,
        GENERATOR_REQUESTS,
        OBJECTS,
        STORE_READY,
        QUEUE_DEPTH,
        OBJECT_READY,
        CONDITION,
        BUILD_INFO,
        LEADER,
        WORKLOAD_RESTARTS,
        WORKLOADS,
        kuvert_operator::kube_metrics::REQUESTS,
    ]
    .map(String::from)
    .to_vec();
    for histogram in [
        SYNC_DURATION,
        QUEUE_WAIT,
        kuvert_operator::kube_metrics::REQUEST_DURATION,
    ] {
        names.push(histogram.to_owned());
        for suffix in ["_bucket", "_sum", "_count"] {
            names.push(format!("{histogram}{suffix}"));
        }
    }
    names
}

#[test]
fn every_exported_metric_is_documented() {
    let docs = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/metrics.md"),
    )
    .unwrap();
    let missing: Vec<String> = exported_metrics()
        .into_iter()
        .filter(|name| {
            !name.ends_with("_bucket") && !name.ends_with("_sum") && !name.ends_with("_count")
        })
        .filter(|name| !docs.contains(&format!("`{name}`")))
        .collect();
    assert!(missing.is_empty(), "docs/metrics.md lacks {missing:?}");
}

/// The `kuvert_*` names in a text.
fn metric_names(text: &str) -> Vec<String> {
    let mut names: Vec<String> = text
        .match_indices("kuvert_")
        .map(|(at, _)| {
            text[at..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect()
        })
        .collect();
    names.sort();
    names.dedup();
    names
}

#[test]
fn the_alerts_pass_promtool_and_fire_on_kuverts_metrics() {
    let docs = render(&[
        "--values",
        chart().join("ci/monitoring-values.yaml").to_str().unwrap(),
    ]);
    let rule = only(&docs, "PrometheusRule");
    let dir = scratch("promtool");
    let rules = dir.join("rules.yaml");
    std::fs::write(&rules, serde_json::to_string(&rule["spec"]).unwrap()).unwrap();
    let check = Command::new("promtool")
        .args(["check", "rules"])
        .arg(&rules)
        .output()
        .expect("promtool (scripts/install-test-deps.sh installs it)");
    assert_eq!(
        (text(&check.stdout), check.status.success()),
        (
            format!("Checking {}\n  SUCCESS: 8 rules found\n\n", rules.display()),
            true
        ),
        "{}",
        text(&check.stderr)
    );
    let alerts = serde_json::to_string(&rule["spec"]).unwrap();
    let unknown: Vec<String> = metric_names(&alerts)
        .into_iter()
        .filter(|n| !exported_metrics().contains(n))
        .collect();
    assert!(
        unknown.is_empty(),
        "alerts on metrics kuvert lacks: {unknown:?}"
    );

    // Series as the ServiceMonitor's scrape labels them: one ExternalSecret failing for good,
    // a store failing every 10 minutes (its retry cap), one lease renewal refused.
    let labels =
        r#"job="kuvert-metrics", namespace="kuvert", instance="10.0.0.1:8080", pod="kuvert-0""#;
    let test = format!(
        r#"rule_files: [{rules}]
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: 'up{{{labels}}}'
        values: '1x60'
      - series: 'kuvert_objects{{kind="ExternalSecret", ready="False", {labels}}}'
        values: '0 0 1x58'
      - series: 'kuvert_sync_errors_total{{kind="SecretStore", reason="StoreUnreachable", {labels}}}'
        values: '0+0x4 1+0x9 2+0x9 3+0x9 4+0x9 5+0x9 6+0x5'
      - series: 'kuvert_generator_requests_total{{kind="VaultDynamicSecret", operation="renew", outcome="PermissionDenied", {labels}}}'
        values: '0x30 1+0x29'
      - series: 'kuvert_store_ready{{kind="SecretStore", exported_namespace="team-a", name="vault", {labels}}}'
        values: '1 1 0x58'
      - series: 'kuvert_store_ready{{kind="ClusterSecretStore", exported_namespace="", name="shared", {labels}}}'
        values: '1x60'
    alert_rule_test:
      - eval_time: 10m
        alertname: KuvertExternalSecretsNotReady
        exp_alerts: []
      - eval_time: 20m
        alertname: KuvertExternalSecretsNotReady
        exp_alerts:
          - exp_labels: {{severity: warning, kind: ExternalSecret, ready: "False", job: kuvert-metrics, namespace: kuvert}}
            exp_annotations:
              summary: 1 ExternalSecrets are not Ready
              description: "1 ExternalSecrets have failed to sync for 15 minutes; their Secrets keep the last synced data. `kubectl get externalsecrets -A` lists them, and each one's Ready condition says why."
      - eval_time: 40m
        alertname: KuvertStoreFailing
        exp_alerts:
          - exp_labels: {{severity: warning, kind: SecretStore, reason: StoreUnreachable}}
            exp_annotations:
              summary: "A SecretStore is not Ready: StoreUnreachable"
              description: "Validating a SecretStore has failed with StoreUnreachable for 15 minutes; ExternalSecrets using it cannot sync. `kubectl get secretstores -A` shows which store is not Ready."
      - eval_time: 40m
        alertname: KuvertLeaseRenewalFailing
        exp_alerts:
          - exp_labels: {{severity: warning, kind: VaultDynamicSecret, outcome: PermissionDenied}}
            exp_annotations:
              summary: "Renewing VaultDynamicSecret leases fails: PermissionDenied"
              description: "kuvert could not renew the lease of a generated credential (VaultDynamicSecret, PermissionDenied); it replaces such credentials, and if that fails too they expire while applications use them."
      - eval_time: 10m
        alertname: KuvertStoreNotReady
        exp_alerts: []
      - eval_time: 20m
        alertname: KuvertStoreNotReady
        exp_alerts:
          - exp_labels: {{severity: warning, kind: SecretStore, exported_namespace: team-a, name: vault, job: kuvert-metrics, namespace: kuvert}}
            exp_annotations:
              summary: "SecretStore team-a/vault is not Ready"
              description: "SecretStore team-a/vault has not been Ready for 10 minutes: ExternalSecrets using it cannot sync. Its Ready condition says why (`kubectl describe secretstore`)."
      - eval_time: 40m
        alertname: KuvertDown
        exp_alerts: []
"#,
        rules = rules.display()
    );
    let tests = dir.join("tests.yaml");
    std::fs::write(&tests, test).unwrap();
    let out = Command::new("promtool")
        .args(["test", "rules"])
        .arg(&tests)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "promtool test rules:\n{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
}

#[test]
fn the_grafana_dashboard_is_in_docs_and_the_chart_and_uses_kuverts_metrics() {
    let in_chart = std::fs::read_to_string(chart().join("files/dashboards/kuvert.json")).unwrap();
    let in_docs = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/grafana/kuvert.json"),
    )
    .unwrap();
    assert!(
        in_chart == in_docs,
        "docs/grafana/kuvert.json differs from charts/kuvert/files/dashboards/kuvert.json"
    );
    let unknown: Vec<String> = metric_names(&in_chart)
        .into_iter()
        .filter(|n| !exported_metrics().contains(n))
        .collect();
    assert!(
        unknown.is_empty(),
        "dashboard uses metrics kuvert lacks: {unknown:?}"
    );
    let configmap = only(
        &render(&["--set", "metrics.dashboard.enabled=true"]),
        "ConfigMap",
    )
    .clone();
    assert_eq!(configmap["metadata"]["labels"]["grafana_dashboard"], "1");
    assert_eq!(
        serde_json::from_str::<Value>(configmap["data"]["kuvert.json"].as_str().unwrap()).unwrap(),
        serde_json::from_str::<Value>(&in_chart).unwrap()
    );
}

// ---------------------------------------------------------------------------------------------
// On the real control plane.

/// Minimal stand-ins for prometheus-operator's CRDs (kind and group only, any content), so
/// that the server-side dry-run can place the chart's ServiceMonitor and PrometheusRule. Their
/// content is checked by `promtool` above, not by prometheus-operator's schema.
fn monitoring_crds() -> Vec<CustomResourceDefinition> {
    [
        ("ServiceMonitor", "servicemonitors"),
        ("PrometheusRule", "prometheusrules"),
    ]
    .map(|(kind, plural)| {
        yaml(&format!(
            "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata: {{name: {plural}.monitoring.coreos.com}}\nspec:\n  group: monitoring.coreos.com\n  scope: Namespaced\n  names: {{kind: {kind}, plural: {plural}, singular: {}}}\n  versions:\n  - name: v1\n    served: true\n    storage: true\n    schema: {{openAPIV3Schema: {{type: object, x-kubernetes-preserve-unknown-fields: true}}}}\n",
            kind.to_lowercase()
        ))
    })
    .to_vec()
}

async fn established(client: &kube::Client, names: &[String]) {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for name in names {
        eventually(&format!("CRD {name} to be established"), || async {
            crds.get(name).await.unwrap().status.is_some_and(|s| {
                s.conditions
                    .unwrap_or_default()
                    .iter()
                    .any(|c| c.type_ == "Established" && c.status == "True")
            })
        })
        .await;
    }
}

/// What `kubectl apply --dry-run=server` prints for a rendered document.
fn dry_run_line(doc: &Value) -> String {
    let kind = doc["kind"].as_str().unwrap().to_lowercase();
    let api_version = doc["apiVersion"].as_str().unwrap();
    let resource = match api_version.split_once('/') {
        Some((group, _)) => format!("{kind}.{group}"),
        None => kind,
    };
    format!(
        "{resource}/{} created (server dry run)",
        doc["metadata"]["name"].as_str().unwrap()
    )
}

/// `kuvert run` as the Deployment would run it: the container's arguments (but metrics on a
/// free loopback port), POD_NAME and POD_NAMESPACE as the downward API sets them, and the
/// chart's ServiceAccount's token in a kubeconfig.
struct Kuvert {
    child: Child,
    port: u16,
}

impl Kuvert {
    fn start(deployment: &Deployment, kubeconfig: &Path, pod: &str) -> Kuvert {
        let port = free_port();
        let container = &deployment.spec.template.spec.as_ref().unwrap().containers[0];
        let args: Vec<String> = container
            .args
            .clone()
            .unwrap()
            .into_iter()
            .map(|a| {
                if a.starts_with("--metrics-addr=") {
                    format!("--metrics-addr=127.0.0.1:{port}")
                } else {
                    a
                }
            })
            .collect();
        let child = Command::new(env!("CARGO_BIN_EXE_kuvert"))
            .args(&args)
            .env("KUBECONFIG", kubeconfig)
            .env("POD_NAME", pod)
            .env(
                "POD_NAMESPACE",
                deployment.metadata.namespace.as_deref().unwrap(),
            )
            .env_remove("KUVERT_LOG")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("starting kuvert run");
        Kuvert { child, port }
    }

    async fn status(&self, path: &str) -> Option<u16> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", self.port))
            .await
            .ok()?;
        let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.ok()?;
        let mut response = String::new();
        stream.read_to_string(&mut response).await.ok()?;
        response.get(9..12)?.parse().ok()
    }

    async fn wait_ready(&self) {
        eventually("kuvert to answer /readyz with 200", || async {
            self.status("/readyz").await == Some(200)
        })
        .await;
    }
}

impl Drop for Kuvert {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A kubeconfig holding a token of ServiceAccount `namespace/name` (TokenRequest).
async fn token_kubeconfig(
    plane: &ControlPlane,
    client: &kube::Client,
    namespace: &str,
    name: &str,
) -> PathBuf {
    let token = support::service_account_token(client, namespace, name).await;
    let path = plane.dir().join(format!("{namespace}-{name}.kubeconfig"));
    std::fs::write(&path, plane.kubeconfig_with_token(&token)).unwrap();
    path
}

fn fake_store(namespace: &str, controller: Option<&str>) -> SecretStore {
    let controller = controller.map_or(String::new(), |c| format!("  controller: {c}\n"));
    yaml(&format!(
        "apiVersion: kuvert.io/v1alpha1\nkind: SecretStore\nmetadata: {{name: demo, namespace: {namespace}}}\nspec:\n{controller}  provider:\n    fake:\n      data: [{{key: db-password, value: s3cr3t}}]\n"
    ))
}

fn db_external_secret(namespace: &str) -> ExternalSecret {
    yaml(&format!(
        "apiVersion: kuvert.io/v1alpha1\nkind: ExternalSecret\nmetadata: {{name: db, namespace: {namespace}}}\nspec:\n  refreshInterval: 1h\n  secretStoreRef: {{name: demo}}\n  target: {{name: db}}\n  data: [{{secretKey: password, remoteRef: {{key: db-password}}}}]\n"
    ))
}

async fn create_namespace(client: &kube::Client, name: &str) {
    Api::<Namespace>::all(client.clone())
        .create(
            &PostParams::default(),
            &yaml(&format!("metadata: {{name: {name}}}")),
        )
        .await
        .unwrap();
}

/// Names of the objects of `K` labelled as the release's (`app.kubernetes.io/instance`).
async fn release_objects<K>(api: &Api<K>, release: &str) -> Vec<String>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let params = ListParams::default().labels(&format!("app.kubernetes.io/instance={release}"));
    let mut names: Vec<String> = api
        .list(&params)
        .await
        .unwrap()
        .items
        .iter()
        .map(|o| o.meta().name.clone().unwrap())
        .collect();
    names.sort();
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_helm_4_the_chart_installs_syncs_under_its_own_rbac_upgrades_and_uninstalls_on_the_real_control_plane()
 {
    installs_syncs_upgrades_and_uninstalls(Helm::V4).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_helm_3_the_chart_installs_syncs_under_its_own_rbac_upgrades_and_uninstalls_on_the_real_control_plane()
 {
    installs_syncs_upgrades_and_uninstalls(Helm::V3).await;
}

/// Dry-run, install, sync, upgrade, uninstall and a scoped install, all with `helm`, on a
/// control plane of its own.
async fn installs_syncs_upgrades_and_uninstalls(helm: Helm) {
    let plane = ControlPlane::start().await;
    eprintln!(
        "{helm:?}: control plane at {} ready in {:.1} s",
        plane.url(),
        plane.startup().as_secs_f64()
    );
    let admin = plane.admin_kubeconfig();
    let client = support::kube_client(&admin).await;
    let home = plane.dir().join("helm");
    helm.assert_version(&home);
    let chart = chart();
    let chart = chart.to_str().unwrap();
    for namespace in ["kuvert", "team-a"] {
        create_namespace(&client, namespace).await;
    }

    // 1. Every rendering is accepted by the API server as it is (strict field validation).
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in monitoring_crds() {
        crds.create(&PostParams::default(), &crd).await.unwrap();
    }
    established(
        &client,
        &[
            "servicemonitors.monitoring.coreos.com".into(),
            "prometheusrules.monitoring.coreos.com".into(),
        ],
    )
    .await;
    for file in value_files() {
        let mut args = vec!["template", "kuvert", chart, "--namespace", "kuvert"];
        if let Some(file) = &file {
            args.extend(["--values", file.to_str().unwrap()]);
        }
        let rendered = helm.ok(&home, None, &args);
        let mut kubectl = Command::new("kubectl")
            .args(["apply", "--dry-run=server", "--validate=strict", "-f", "-"])
            .env("KUBECONFIG", &admin)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("kubectl");
        use std::io::Write;
        kubectl
            .stdin
            .take()
            .unwrap()
            .write_all(rendered.as_bytes())
            .unwrap();
        let out = kubectl.wait_with_output().unwrap();
        let expected: Vec<String> = documents(&rendered).iter().map(dry_run_line).collect();
        assert_eq!(
            (text(&out.stderr), text(&out.stdout)),
            (String::new(), expected.join("\n") + "\n"),
            "{helm:?}: dry run of {file:?}"
        );
    }

    // 2. A cluster-wide install: the CRDs come with it.
    let installed = helm.ok(
        &home,
        Some(&admin),
        &[
            "install",
            "kuvert",
            chart,
            "--namespace",
            "kuvert",
            "--output",
            "json",
        ],
    );
    let release: Value = serde_json::from_str(&installed).unwrap();
    assert_eq!(
        (&release["info"]["status"], &release["version"]),
        (&Value::from("deployed"), &Value::from(1))
    );
    let kuvert_crds: Vec<String> = kuvert_core::crds::all()
        .into_iter()
        .map(|c| c.metadata.name.unwrap())
        .collect();
    established(&client, &kuvert_crds).await;
    let mut kept = kuvert_crds.clone();
    kept.sort();
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "kuvert");
    let deployment = deployments.get("kuvert").await.unwrap();
    assert_eq!(deployment.spec.replicas, Some(1));
    assert_eq!(
        deployment
            .spec
            .template
            .spec
            .as_ref()
            .unwrap()
            .service_account_name
            .as_deref(),
        Some("kuvert")
    );

    // kuvert with exactly the chart's ClusterRole syncs an ExternalSecret.
    let kubeconfig = token_kubeconfig(&plane, &client, "kuvert", "kuvert").await;
    let kuvert = Kuvert::start(&deployment, &kubeconfig, "kuvert-7d9f-a");
    kuvert.wait_ready().await;
    Api::<SecretStore>::namespaced(client.clone(), "default")
        .create(&PostParams::default(), &fake_store("default", None))
        .await
        .unwrap();
    Api::<ExternalSecret>::namespaced(client.clone(), "default")
        .create(&PostParams::default(), &db_external_secret("default"))
        .await
        .unwrap();
    let secrets: Api<Secret> = Api::namespaced(client.clone(), "default");
    eventually("Secret default/db", || async {
        secret_data(&secrets, "db").await == map(&[("password", "s3cr3t")])
    })
    .await;
    drop(kuvert);

    // 3. helm upgrade to three replicas: leader election comes on, and the Lease is taken in
    // the release's namespace under the same ClusterRole.
    let upgraded = helm.ok(
        &home,
        Some(&admin),
        &[
            "upgrade",
            "kuvert",
            chart,
            "--namespace",
            "kuvert",
            "--reuse-values",
            "--set",
            "replicaCount=3,concurrency=4,log.level=warn",
            "--output",
            "json",
        ],
    );
    let release: Value = serde_json::from_str(&upgraded).unwrap();
    assert_eq!(
        (&release["info"]["status"], &release["version"]),
        (&Value::from("deployed"), &Value::from(2))
    );
    let deployment = deployments.get("kuvert").await.unwrap();
    let spec = &deployment.spec;
    assert_eq!(spec.replicas, Some(3));
    assert_eq!(
        spec.strategy.as_ref().unwrap().type_.as_deref(),
        Some("RollingUpdate")
    );
    assert_eq!(
        spec.template.spec.as_ref().unwrap().containers[0]
            .args
            .as_ref()
            .unwrap()[2..],
        [
            "--concurrency=4",
            "--log-format=json",
            "--log-level=warn",
            "--lease-renew-fraction=0.667",
            "--leader-election",
            "--leader-election-namespace=kuvert",
            "--leader-election-lease-duration=15s",
        ]
    );
    let leader = Kuvert::start(&deployment, &kubeconfig, "kuvert-5c4b-b");
    leader.wait_ready().await;
    let lease = Api::<Lease>::namespaced(client.clone(), "kuvert")
        .get("kuvert-leader")
        .await
        .unwrap();
    assert_eq!(
        lease.spec.unwrap().holder_identity.as_deref(),
        Some("kuvert-5c4b-b")
    );
    drop(leader);

    // 4. helm uninstall: the release's objects go; the CRDs (kept), the user's objects and the
    // Lease kuvert wrote stay.
    assert_eq!(
        helm.ok(
            &home,
            Some(&admin),
            &["uninstall", "kuvert", "--namespace", "kuvert"]
        ),
        format!(
            "These resources were kept due to the resource policy:\n{}\nrelease \"kuvert\" uninstalled\n",
            kept.iter()
                .map(|name| format!("[CustomResourceDefinition] {name}\n"))
                .collect::<String>()
        )
    );
    let nothing: Vec<String> = Vec::new();
    assert_eq!(release_objects(&deployments, "kuvert").await, nothing);
    assert_eq!(
        release_objects(
            &Api::<Service>::namespaced(client.clone(), "kuvert"),
            "kuvert"
        )
        .await,
        nothing
    );
    assert_eq!(
        release_objects(
            &Api::<ServiceAccount>::namespaced(client.clone(), "kuvert"),
            "kuvert"
        )
        .await,
        nothing
    );
    assert_eq!(
        release_objects(&Api::<ClusterRole>::all(client.clone()), "kuvert").await,
        nothing
    );
    assert_eq!(
        release_objects(&Api::<ClusterRoleBinding>::all(client.clone()), "kuvert").await,
        nothing
    );
    assert_eq!(release_objects(&crds, "kuvert").await, kept);
    assert_eq!(
        secret_data(&secrets, "db").await,
        map(&[("password", "s3cr3t")])
    );
    assert_eq!(
        helm.ok(
            &home,
            Some(&admin),
            &["list", "--all-namespaces", "--short"]
        ),
        ""
    );

    // 5. A namespace-scoped install beside CRDs managed outside it (those left behind above):
    // release `team-a` in `kuvert`, serving only `team-a`, with two replicas electing a leader
    // in `team-a` — all under its Role there.
    helm.ok(
        &home,
        Some(&admin),
        &[
            "install",
            "team-a",
            chart,
            "--namespace",
            "kuvert",
            "--set",
            "scope.namespace=team-a,crds.install=false,replicaCount=2",
        ],
    );
    assert_eq!(
        release_objects(&Api::<Role>::namespaced(client.clone(), "team-a"), "team-a").await,
        ["team-a-kuvert", "team-a-kuvert-leader-election"]
    );
    assert_eq!(
        release_objects(
            &Api::<RoleBinding>::namespaced(client.clone(), "team-a"),
            "team-a"
        )
        .await,
        ["team-a-kuvert", "team-a-kuvert-leader-election"]
    );
    assert_eq!(
        release_objects(&Api::<ClusterRole>::all(client.clone()), "team-a").await,
        nothing
    );
    let deployment = deployments.get("team-a-kuvert").await.unwrap();
    let kubeconfig = token_kubeconfig(&plane, &client, "kuvert", "team-a-kuvert").await;
    let scoped = Kuvert::start(&deployment, &kubeconfig, "team-a-kuvert-0");
    scoped.wait_ready().await;
    Api::<SecretStore>::namespaced(client.clone(), "team-a")
        .create(&PostParams::default(), &fake_store("team-a", None))
        .await
        .unwrap();
    Api::<ExternalSecret>::namespaced(client.clone(), "team-a")
        .create(&PostParams::default(), &db_external_secret("team-a"))
        .await
        .unwrap();
    let team_secrets: Api<Secret> = Api::namespaced(client.clone(), "team-a");
    eventually("Secret team-a/db", || async {
        secret_data(&team_secrets, "db").await == map(&[("password", "s3cr3t")])
    })
    .await;
    let lease = Api::<Lease>::namespaced(client.clone(), "team-a")
        .get("kuvert-leader")
        .await
        .unwrap();
    assert_eq!(
        lease.spec.unwrap().holder_identity.as_deref(),
        Some("team-a-kuvert-0")
    );
    drop(scoped);
    helm.ok(
        &home,
        Some(&admin),
        &["uninstall", "team-a", "--namespace", "kuvert"],
    );
    assert_eq!(
        release_objects(&Api::<Role>::namespaced(client.clone(), "team-a"), "team-a").await,
        nothing
    );

    // Neither install's kuvert was refused anything.
    for user in ["kuvert", "team-a-kuvert"] {
        let refused = plane.refused(&format!("system:serviceaccount:kuvert:{user}"));
        assert!(
            refused.is_empty(),
            "the API server refused kuvert ({user}) under the chart's RBAC:\n{}",
            refused.join("\n")
        );
    }
}
