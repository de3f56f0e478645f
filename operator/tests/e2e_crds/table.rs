//! One table of valid and invalid objects of every kuvert kind, sent to both API servers with
//! `fieldValidation=Strict` (as kubectl sends them). Each row expects the same answer from
//! both: accepted, or 422 `Invalid` with exactly these causes (field path, message), or 400.
//!
//! The rows: the valid fixtures (`fixtures.rs`), which set every enum field and every list with a
//! limit; one near-miss row per enum and rows at and over each list limit, derived from them
//! (`schema.rs`); and rows written by hand (`external_secret_rows.rs`, `other_rows.rs`) for the
//! CEL rules, patterns, bounds, lengths, one-ofs, types and required fields. `schema.rs` fails the
//! test for any CEL rule, enum, pattern, list limit, bound, length or one-of of the CRDs that no
//! rejected row exercises; required fields are picked by hand.

use kube::api::{Api, PostParams};
use serde_json::{Value, json};

use super::schema::{self, Crd};
use super::support::{Cluster, yaml};
use super::{external_secret_rows, fixtures, other_rows};

/// The cause kube-apiserver adds when a blocking violation (enum, required, type, too long, too
/// many) kept it from evaluating the CEL rules of a kind that has some.
pub const SKIPPED_CEL: (&str, &str) = (
    "<nil>",
    "Invalid value: null: some validation rules were not checked because the object was invalid; correct the existing errors to complete validation",
);

pub(crate) const ES: &str = "ExternalSecret";
pub(crate) const CES: &str = "ClusterExternalSecret";
pub(crate) const PS: &str = "PushSecret";
pub(crate) const SS: &str = "SecretStore";
pub(crate) const CSS: &str = "ClusterSecretStore";
pub(crate) const PASSWORD: &str = "Password";
pub(crate) const UUID: &str = "UUID";
pub(crate) const FAKE: &str = "Fake";
pub(crate) const VDS: &str = "VaultDynamicSecret";

pub(crate) const DURATION: &str = r"^(0|([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+)$";
pub(crate) const RETRY_INTERVAL: &str = r"^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$";
pub(crate) const URL: &str = "^https?://";

/// One object and the answer expected for it.
pub struct Row {
    pub what: String,
    pub kind: String,
    /// `None`: the object has no `spec`.
    pub spec: Option<Value>,
    pub expect: Expect,
}

pub enum Expect {
    Accepted,
    /// 422 `Invalid` with these causes (field, message), in any order (kube-apiserver's order
    /// varies from one request to the next).
    Invalid(Vec<(String, String)>),
    /// 400 `BadRequest` with this message.
    BadRequest(String),
}

pub(crate) fn spec(text: &str) -> Value {
    yaml(text)
}

pub(crate) fn ok(kind: &str, what: &str, text: &str) -> Row {
    Row {
        what: what.into(),
        kind: kind.into(),
        spec: Some(spec(text)),
        expect: Expect::Accepted,
    }
}

pub(crate) fn bad(kind: &str, what: &str, text: &str, causes: &[(&str, &str)]) -> Row {
    Row {
        what: what.into(),
        kind: kind.into(),
        spec: Some(spec(text)),
        expect: Expect::Invalid(
            causes
                .iter()
                .map(|(f, m)| (f.to_string(), m.to_string()))
                .collect(),
        ),
    }
}

pub(crate) fn pattern(value: &str, path: &str, pattern: &str) -> String {
    format!("Invalid value: {value:?}: {path} in body should match '{pattern}'")
}

pub(crate) fn min_length(path: &str) -> String {
    format!("Invalid value: \"\": {path} in body should be at least 1 chars long")
}

pub(crate) fn one_of(path: &str, found: &str) -> String {
    format!(
        "Invalid value: \"\": {path:?} must validate one and only one schema (oneOf). Found {found}"
    )
}

pub(crate) const REQUIRED: &str = "Required value";

/// Every row, fixtures first.
fn rows(crds: &[Crd]) -> Vec<Row> {
    let mut rows = fixtures::fixtures();
    let generated = schema::generated(crds, &rows);
    rows.extend(generated);
    let es = external_secret_rows::external_secret_rows();
    rows.extend(es.iter().map(external_secret_rows::in_cluster_es));
    rows.extend(es);
    rows.extend(other_rows::other_rows());
    rows
}

/// Sends `row` as `row-{index}` (namespaced kinds in `table`): the API server's `Status` if it
/// refused the object.
async fn send(
    cluster: &Cluster,
    crd: &Crd,
    index: usize,
    row: &Row,
) -> Result<(), Box<kube::core::Status>> {
    let name = format!("row-{index}");
    let mut object = json!({
        "apiVersion": format!("{}/v1alpha1", crd.group),
        "kind": crd.kind,
        "metadata": {"name": name},
    });
    let mut url = format!("/apis/{}/v1alpha1/", crd.group);
    if crd.namespaced {
        object["metadata"]["namespace"] = json!("table");
        url.push_str("namespaces/table/");
    }
    url.push_str(&format!("{}?fieldValidation=Strict", crd.plural));
    if let Some(spec) = &row.spec {
        object["spec"] = spec.clone();
    }
    let request = http::Request::post(url)
        .header("Content-Type", "application/json")
        .body(serde_json::to_vec(&object).unwrap())
        .unwrap();
    match cluster.client.request::<Value>(request).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) => Err(status),
        Err(e) => panic!("row {index}: {e}"),
    }
}

/// What went wrong with one row, if anything.
fn check(
    crd: &Crd,
    name: &str,
    row: &Row,
    answer: Result<(), Box<kube::core::Status>>,
) -> Option<String> {
    let got = match &answer {
        Ok(()) => "accepted".to_owned(),
        Err(s) => {
            let causes = s
                .details
                .as_ref()
                .map(|d| d.causes.as_slice())
                .unwrap_or_default();
            let causes: Vec<String> = causes
                .iter()
                .map(|c| format!("\n    {}: {}", c.field, c.message))
                .collect();
            format!("{} {}: {}{}", s.code, s.reason, s.message, causes.concat())
        }
    };
    let fine = match (&row.expect, &answer) {
        (Expect::Accepted, Ok(())) => true,
        (Expect::BadRequest(message), Err(s)) => {
            s.code == 400 && s.reason == "BadRequest" && s.message == *message
        }
        (Expect::Invalid(expected), Err(s)) => {
            let mut want: Vec<(String, String)> = expected.clone();
            want.sort();
            let Some(details) = &s.details else {
                return Some(format!(
                    "{name}: {} {}: no details in {got}",
                    row.kind, row.what
                ));
            };
            let mut causes: Vec<(String, String)> = details
                .causes
                .iter()
                .map(|c| (c.field.clone(), c.message.clone()))
                .collect();
            causes.sort();
            let prefix = format!("{}.{} {name:?} is invalid: ", crd.kind, crd.group);
            let summary = s.message.strip_prefix(&prefix).unwrap_or_default();
            let listed = want
                .iter()
                .all(|(f, m)| summary.contains(&format!("{f}: {m}")));
            let single = want.len() != 1 || summary == format!("{}: {}", want[0].0, want[0].1);
            s.code == 422
                && s.reason == "Invalid"
                && (
                    details.name.as_str(),
                    details.group.as_str(),
                    details.kind.as_str(),
                ) == (name, crd.group.as_str(), crd.kind.as_str())
                && causes == want
                && listed
                && single
        }
        _ => false,
    };
    (!fine).then(|| {
        let want = match &row.expect {
            Expect::Accepted => "accepted".to_owned(),
            Expect::BadRequest(m) => format!("400 BadRequest: {m}"),
            Expect::Invalid(c) => {
                let c: Vec<String> = c.iter().map(|(f, m)| format!("\n    {f}: {m}")).collect();
                format!("422 Invalid{}", c.concat())
            }
        };
        format!(
            "{name}: {} {}\n  expected {want}\n  got {got}",
            row.kind, row.what
        )
    })
}

/// Sends every row and compares each answer with the row's expectation.
pub async fn every_row_gets_the_expected_answer(cluster: &Cluster) {
    let crds = schema::crds();
    let rows = rows(&crds);
    let uncovered = schema::uncovered(&crds, &rows);
    assert!(
        uncovered.is_empty(),
        "no row rejects:\n{}",
        uncovered.join("\n")
    );

    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(cluster.client.clone());
    namespaces
        .create(&PostParams::default(), &yaml("metadata: {name: table}"))
        .await
        .unwrap();
    let mut failures = Vec::new();
    for (index, row) in rows.iter().enumerate() {
        let crd = crds.iter().find(|c| c.kind == row.kind).unwrap();
        let answer = send(cluster, crd, index, row).await;
        if let Some(failure) = check(crd, &format!("row-{index}"), row, answer) {
            failures.push(failure);
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} rows got another answer:\n\n{}",
        failures.len(),
        rows.len(),
        failures.join("\n\n")
    );
    eprintln!("{} rows answered as expected", rows.len());
}
