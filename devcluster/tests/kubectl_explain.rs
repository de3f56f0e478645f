//! `kubectl explain` against devcluster prints what it prints against kube-apiserver: the
//! descriptions, types and enums of a CRD's schema, and `meta/v1` ObjectMeta under `metadata`.
//! The CRDs are devcluster's reference CRDs (`src/openapi/reference-crds.yaml`); the expected
//! outputs were recorded from kube-apiserver v1.37.2 (`kubectl-explain-v1.37.2.txt`).

mod support;

use support::Kubectl;

const REFERENCE_CRDS: &str = include_str!("../src/openapi/reference-crds.yaml");

/// Sections `### kubectl explain ARGS`, each followed by what that command printed.
const RECORDED: &str = include_str!("kubectl-explain-v1.37.2.txt");

fn recorded(args: &str) -> &'static str {
    let marker = format!("### kubectl explain {args}\n");
    let start = RECORDED
        .find(&marker)
        .unwrap_or_else(|| panic!("no recorded output for `kubectl explain {args}`"))
        + marker.len();
    let end = RECORDED[start..]
        .find("\n### ")
        .map_or(RECORDED.len(), |i| start + i + 1);
    &RECORDED[start..end]
}

async fn cluster_with_reference_crds() -> Kubectl {
    let k = Kubectl::start().await;
    let crds = k.file("crds.yaml", REFERENCE_CRDS);
    k.ok(&["apply", "-f", &crds]).await;
    k
}

#[tokio::test]
async fn kubectl_explain_prints_a_crd_field_with_its_description_and_enum() {
    let k = cluster_with_reference_crds().await;
    let out = k.ok(&["explain", "widget.spec.color"]).await;
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        [
            "GROUP:      reference.example.com",
            "KIND:       Widget",
            "VERSION:    v1",
            "",
            "FIELD: color <string>",
            "ENUM:",
            "    red",
            "    green",
            "    blue",
            "",
            "DESCRIPTION:",
            "    The colour.",
            "    ",
            "",
        ]
    );
    let out = k.ok(&["explain", "widget.spec.port"]).await;
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        [
            "GROUP:      reference.example.com",
            "KIND:       Widget",
            "VERSION:    v1",
            "",
            "FIELD: port <Object>",
            "",
            "",
            "DESCRIPTION:",
            "    A port number or name.",
            "    ",
            "",
        ]
    );
}

#[tokio::test]
async fn kubectl_explain_prints_what_it_prints_against_kube_apiserver() {
    let k = cluster_with_reference_crds().await;
    for args in [
        "widget --recursive",
        "widget.spec.template",
        "widget.spec.ports",
        "widget.spec.quantity",
        "gadgets",
        "gadgets --recursive",
    ] {
        let mut argv = vec!["explain"];
        argv.extend(args.split(' '));
        let out = k.ok(&argv).await;
        assert_eq!(
            out.lines().collect::<Vec<_>>(),
            recorded(args).lines().collect::<Vec<_>>(),
            "kubectl explain {args}"
        );
    }
}

#[tokio::test]
async fn kubectl_explain_names_a_field_the_schema_does_not_have() {
    let k = cluster_with_reference_crds().await;
    let out = k.run(&["explain", "widget.spec.nope"]).await;
    assert!(!out.ok);
    assert_eq!(out.stderr, "error: field \"nope\" does not exist\n");
}

#[tokio::test]
async fn kubectl_explain_sees_a_changed_crd_although_it_caches_the_documents() {
    let k = cluster_with_reference_crds().await;
    let index = k.ok(&["get", "--raw", "/openapi/v3"]).await;
    let out = k.ok(&["explain", "widget.spec.color"]).await;
    assert!(out.contains("\n    The colour.\n"), "{out}");

    let changed = REFERENCE_CRDS.replace("description: The colour.", "description: The hue.");
    let crds = k.file("changed.yaml", &changed);
    k.ok(&["apply", "-f", &crds]).await;
    assert_ne!(k.ok(&["get", "--raw", "/openapi/v3"]).await, index);
    let out = k.ok(&["explain", "widget.spec.color"]).await;
    assert!(out.contains("\n    The hue.\n"), "{out}");
}

#[tokio::test]
async fn kubectl_explain_of_a_built_in_kind_fails_for_want_of_a_schema() {
    let k = Kubectl::start().await;
    let out = k.run(&["explain", "secret"]).await;
    assert!(!out.ok);
    assert_eq!(
        out.stderr,
        "error: GVK map[group: kind:Secret version:v1] not found in OpenAPI schema\n"
    );
}

#[tokio::test]
async fn kubectl_leaves_validating_custom_resources_to_the_server() {
    let k = cluster_with_reference_crds().await;
    let widget = "apiVersion: reference.example.com/v1\nkind: Widget\nmetadata: {name: w1}\nspec: {color: blue, size: 4}\n";
    let path = k.file("w1.yaml", widget);
    assert_eq!(
        k.ok(&["create", "-f", &path]).await,
        "widget.reference.example.com/w1 created\n"
    );
    let path = k.file("w1.yaml", &widget.replace("size: 4", "size: 6"));
    assert_eq!(
        k.ok(&["apply", "-f", &path]).await,
        "widget.reference.example.com/w1 configured\n"
    );
    let path = k.file(
        "w2.yaml",
        &widget
            .replace("w1", "w2")
            .replace("size: 4", "size: 4, bogus: 1"),
    );
    // The server's strict field validation refuses it, not kubectl's own (which would say
    // `error validating data`).
    let out = k.run(&["create", "-f", &path]).await;
    assert!(!out.ok);
    let server = format!("Error from server (BadRequest): error when creating {path:?}: ");
    assert!(out.stderr.starts_with(&server), "{}", out.stderr);
    assert!(
        out.stderr
            .ends_with("strict decoding error: unknown field \"spec.bogus\"\n"),
        "{}",
        out.stderr
    );
}
