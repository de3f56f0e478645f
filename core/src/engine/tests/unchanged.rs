//! `target::unchanged_since_written`: deciding from a digest of a written Secret's metadata
//! that a sync changes nothing, and never when a build against the whole Secret would write.

use super::*;
use crate::api::{DATA_HASH_ANNOTATION, ExternalSecretStatus, MERGED_KEYS_ANNOTATION};

/// `es(spec)` as last synced at its generation.
fn synced(spec: &str) -> ExternalSecret {
    let mut es = es(spec);
    es.status = Some(ExternalSecretStatus {
        observed_generation: es.metadata.generation,
        ..ExternalSecretStatus::default()
    });
    es
}

/// What a sync of `es` builds without an existing Secret, and that Secret as the API server
/// stored it when kuvert created it.
fn fresh_and_written(es: &ExternalSecret) -> (Secret, Secret) {
    let out = run_with(es, &MemoryKube::new(), None).unwrap();
    assert_eq!(out.action, TargetAction::Create);
    let fresh = out.secret.unwrap();
    let mut written = fresh.clone();
    written.metadata.resource_version = Some("7".into());
    written.metadata.uid = Some("secret-uid".into());
    (fresh, written)
}

fn unchanged(es: &ExternalSecret, fresh: &Secret, written: &Secret) -> bool {
    target::unchanged_since_written(es, fresh, target::metadata_digest(&written.metadata))
}

/// Whether a build against the whole Secret `written` leaves it unchanged.
fn build_leaves(es: &ExternalSecret, written: &Secret) -> bool {
    run_with(es, &MemoryKube::new(), Some(written))
        .unwrap()
        .action
        == TargetAction::Unchanged
}

const TEMPLATED: &str = "target:\n  template:\n    type: kubernetes.io/basic-auth\n    metadata:\n      labels: {team: a}\n      annotations: {note: b}\n    data:\n      password: '{{ pw }}'\ndata:\n- secretKey: pw\n  remoteRef: {key: password}";

#[test]
fn the_same_values_under_owner_or_orphan_are_unchanged_by_metadata_alone() {
    for spec in [
        ONE_KEY.to_owned(),
        TEMPLATED.to_owned(),
        format!("target: {{creationPolicy: Orphan}}\n{ONE_KEY}"),
        format!("target: {{immutable: true}}\n{ONE_KEY}"),
    ] {
        let es = synced(&spec);
        let (fresh, written) = fresh_and_written(&es);
        assert!(unchanged(&es, &fresh, &written), "{spec}");
        assert!(build_leaves(&es, &written), "{spec}");
    }
}

#[test]
fn another_tools_label_makes_the_secret_read_though_the_build_would_keep_it() {
    let es = synced(TEMPLATED);
    let (fresh, mut written) = fresh_and_written(&es);
    let labels = written.metadata.labels.get_or_insert_default();
    labels.insert("app".into(), "x".into());
    assert!(!unchanged(&es, &fresh, &written), "conservative");
    assert!(build_leaves(&es, &written));
}

#[test]
fn new_values_a_lost_label_or_a_foreign_owner_need_the_whole_secret() {
    let es = synced(TEMPLATED);
    let (fresh, written) = fresh_and_written(&es);

    let mut new_value = written.clone();
    let annotations = new_value.metadata.annotations.as_mut().unwrap();
    annotations.insert(DATA_HASH_ANNOTATION.into(), "another-hash".into());
    assert!(!unchanged(&es, &fresh, &new_value));

    let mut relabelled = written.clone();
    relabelled
        .metadata
        .labels
        .as_mut()
        .unwrap()
        .insert("team".into(), "z".into());
    assert!(!unchanged(&es, &fresh, &relabelled));
    assert!(
        !build_leaves(&es, &relabelled),
        "the build restores the label"
    );

    let mut shared = written.clone();
    let mut foreign = shared.metadata.owner_references.clone().unwrap()[0].clone();
    foreign.name = "other".into();
    foreign.controller = None;
    shared
        .metadata
        .owner_references
        .as_mut()
        .unwrap()
        .insert(0, foreign);
    assert!(!unchanged(&es, &fresh, &shared));

    let mut merged = written.clone();
    let annotations = merged.metadata.annotations.as_mut().unwrap();
    annotations.insert(MERGED_KEYS_ANNOTATION.into(), "pw".into());
    assert!(!unchanged(&es, &fresh, &merged));
    assert!(
        !build_leaves(&es, &merged),
        "the build drops the merged-keys record"
    );
}

#[test]
fn merging_policies_and_a_changed_spec_always_need_the_whole_secret() {
    for policy in ["Merge", "CreateOrMerge"] {
        let es = synced(&format!("target: {{creationPolicy: {policy}}}\n{ONE_KEY}"));
        let (fresh, written) = fresh_and_written(&synced(ONE_KEY));
        assert!(!unchanged(&es, &fresh, &written), "{policy}");
    }
    let mut changed = synced(ONE_KEY);
    let (fresh, written) = fresh_and_written(&changed);
    changed.metadata.generation = Some(4);
    assert!(!unchanged(&changed, &fresh, &written));
    let never_synced = es(ONE_KEY);
    assert!(!unchanged(&never_synced, &fresh, &written));
}
