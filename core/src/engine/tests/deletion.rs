//! `target.deletionPolicy`: what a sync does when remote secrets are gone.

use super::*;
use crate::api::MERGED_KEYS_ANNOTATION;

fn ours() -> Secret {
    let mut s = existing("app", &[("kuvert.io/managed", "true")], Some("uid-1"));
    s.data = Some(BTreeMap::from([
        ("pw".to_owned(), ByteString(b"old".to_vec())),
        ("gone".to_owned(), ByteString(b"old".to_vec())),
    ]));
    s
}

fn ready(outcome: &SyncOutcome) -> (String, String, String) {
    let c = crate::conditions::find_ready(&outcome.status.conditions).unwrap();
    (c.status.clone(), c.reason.clone(), c.message.clone())
}

const TWO_GONE: &str = "data:\n- secretKey: a\n  remoteRef: {key: nope}\n- secretKey: b\n  remoteRef: {key: nope, property: x}";

#[test]
fn delete_policy_deletes_the_owned_secret_once_every_remote_secret_is_gone() {
    let spec = format!("target: {{deletionPolicy: Delete}}\n{TWO_GONE}");
    let out = run_with(&es(&spec), &MemoryKube::new(), Some(&ours())).unwrap();
    assert_eq!(out.action, TargetAction::Delete);
    let secret = out.secret.as_ref().unwrap();
    assert_eq!(secret.metadata.name.as_deref(), Some("app"));
    assert_eq!(secret.metadata.resource_version.as_deref(), Some("42"));
    assert_eq!(
        ready(&out),
        (
            "True".to_owned(),
            "SecretDeleted".to_owned(),
            "every remote secret is gone; deletionPolicy Delete deleted Secret ns/app".to_owned()
        )
    );
    assert_eq!(out.status.synced_versions, vec![]);
    assert_eq!(out.status.binding, None);
}

#[test]
fn delete_policy_without_a_secret_writes_nothing() {
    let spec = format!("target: {{deletionPolicy: Delete}}\n{TWO_GONE}");
    let out = run(&spec).unwrap();
    assert_eq!(out.action, TargetAction::Skip);
    assert!(out.secret.is_none());
    assert_eq!(
        ready(&out).2,
        "every remote secret is gone; deletionPolicy Delete keeps Secret ns/app absent"
    );
}

#[test]
fn delete_policy_never_deletes_a_secret_it_does_not_own() {
    let spec = format!("target: {{deletionPolicy: Delete}}\n{TWO_GONE}");
    let foreign = existing("app", &[], None);
    let e = run_with(&es(&spec), &MemoryKube::new(), Some(&foreign)).unwrap_err();
    assert_eq!(e.reason(), "NotOwned");
    let orphan = format!("target: {{deletionPolicy: Delete, creationPolicy: Orphan}}\n{TWO_GONE}");
    let managed = existing("app", &[("kuvert.io/managed", "true")], None);
    let out = run_with(&es(&orphan), &MemoryKube::new(), Some(&managed)).unwrap();
    assert_eq!(
        out.action,
        TargetAction::Delete,
        "Orphan deletes what kuvert wrote"
    );
}

#[test]
fn delete_policy_drops_the_keys_of_gone_secrets_while_others_remain() {
    let spec = "target: {deletionPolicy: Delete}\ndata:\n- secretKey: pw\n  remoteRef: {key: password}\n- secretKey: gone\n  remoteRef: {key: nope}";
    let out = run_with(&es(spec), &MemoryKube::new(), Some(&ours())).unwrap();
    assert_eq!(out.action, TargetAction::Update);
    assert_eq!(data(&out), pairs(&[("pw", "hunter2")]));
    assert_eq!(ready(&out).1, "SecretSynced");
    let keys: Vec<_> = out
        .status
        .synced_versions
        .iter()
        .map(|v| v.remote_key.as_str())
        .collect();
    assert_eq!(keys, ["password"], "a gone secret has no synced version");
}

#[test]
fn delete_policy_counts_a_find_matching_nothing_as_gone() {
    let spec = "target: {deletionPolicy: Delete}\ndataFrom:\n- find: {path: nothing-here/}\n- extract: {key: nope}";
    let out = run_with(&es(spec), &MemoryKube::new(), Some(&ours())).unwrap();
    assert_eq!(out.action, TargetAction::Delete);
}

#[test]
fn retain_policy_reports_a_gone_secret_and_writes_nothing() {
    let e = run_with(&es(TWO_GONE), &MemoryKube::new(), Some(&ours())).unwrap_err();
    assert_eq!(e.reason(), "RemoteSecretNotFound");
    let other_errors =
        "target: {deletionPolicy: Delete}\ndata:\n- secretKey: a\n  remoteRef: {key: unavailable}";
    assert_eq!(
        run_with(&es(other_errors), &MemoryKube::new(), Some(&ours()))
            .unwrap_err()
            .reason(),
        "Unavailable",
        "only NotFound counts as gone"
    );
}

#[test]
fn merge_policy_removes_gone_keys_and_keeps_the_secret() {
    let spec = "target: {deletionPolicy: Merge}\ndata:\n- secretKey: pw\n  remoteRef: {key: password}\n- secretKey: gone\n  remoteRef: {key: nope}";
    let out = run_with(&es(spec), &MemoryKube::new(), Some(&ours())).unwrap();
    assert_eq!(out.action, TargetAction::Update);
    assert_eq!(data(&out), pairs(&[("pw", "hunter2")]));
    let all_gone = format!("target: {{deletionPolicy: Merge}}\n{TWO_GONE}");
    let out = run_with(&es(&all_gone), &MemoryKube::new(), Some(&ours())).unwrap();
    assert_eq!(out.action, TargetAction::Update, "Merge never deletes");
    assert_eq!(data(&out), vec![]);
}

#[test]
fn merging_removes_only_the_keys_kuvert_merged_and_no_longer_produces() {
    let spec = "target: {creationPolicy: Merge, deletionPolicy: Merge}\ndata:\n- secretKey: pw\n  remoteRef: {key: password}\n- secretKey: gone\n  remoteRef: {key: nope}";
    let mut foreign = existing("app", &[("team", "x")], None);
    foreign.data = Some(BTreeMap::from([
        ("other".to_owned(), ByteString(b"other".to_vec())),
        ("gone".to_owned(), ByteString(b"old".to_vec())),
    ]));
    foreign.metadata.annotations = Some(BTreeMap::from([(
        MERGED_KEYS_ANNOTATION.to_owned(),
        "gone,pw".to_owned(),
    )]));
    let out = run_with(&es(spec), &MemoryKube::new(), Some(&foreign)).unwrap();
    assert_eq!(data(&out), pairs(&[("other", "other"), ("pw", "hunter2")]));
    let secret = out.secret.unwrap();
    assert_eq!(
        secret.metadata.annotations.unwrap()[MERGED_KEYS_ANNOTATION],
        "pw"
    );
    // A key kuvert did not merge is never removed, even when the spec names it.
    let mut unlisted = foreign_with_gone();
    unlisted.metadata.annotations = None;
    let out = run_with(&es(spec), &MemoryKube::new(), Some(&unlisted)).unwrap();
    assert_eq!(
        data(&out),
        pairs(&[("gone", "old"), ("other", "other"), ("pw", "hunter2")])
    );
}

fn foreign_with_gone() -> Secret {
    let mut s = existing("app", &[], None);
    s.data = Some(BTreeMap::from([
        ("other".to_owned(), ByteString(b"other".to_vec())),
        ("gone".to_owned(), ByteString(b"old".to_vec())),
    ]));
    s
}

#[test]
fn owned_secrets_carry_no_merged_keys_annotation() {
    let out = run(ONE_KEY).unwrap();
    let annotations = out.secret.unwrap().metadata.annotations.unwrap();
    assert!(!annotations.contains_key(MERGED_KEYS_ANNOTATION));
}

#[test]
fn delete_policy_cannot_combine_with_merge_creation() {
    let e = err(&format!(
        "target: {{deletionPolicy: Delete, creationPolicy: Merge}}\n{ONE_KEY}"
    ));
    assert_eq!(
        e.to_string(),
        "spec.target.deletionPolicy: Delete cannot be combined with creationPolicy Merge: kuvert never deletes a Secret it did not create (use deletionPolicy Merge or Retain)"
    );
    assert_eq!(e.reason(), "InvalidSpec");
}
