use super::*;

fn ps(spec: &str) -> PushSecret {
    serde_saphyr::from_str(&format!(
        "apiVersion: kuvert.io/v1alpha1
kind: PushSecret
metadata: {{name: db, namespace: app, generation: 2}}
spec:
  secretStoreRefs: [{{name: vault}}]
  selector: {{secret: {{name: db}}}}
{spec}"
    ))
    .unwrap()
}

fn source(pairs: &[(&str, &str)]) -> BTreeMap<String, SecretBytes> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), SecretBytes::from(*v)))
        .collect()
}

fn at(secs: i64) -> jiff::Timestamp {
    jiff::Timestamp::from_second(secs).unwrap()
}

/// (remote key, property, value) of each desired write.
fn writes(desired: &[Desired]) -> Vec<(String, Option<String>, String)> {
    desired
        .iter()
        .map(|d| {
            (
                d.remote_key.clone(),
                d.property.clone(),
                d.value.expose_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn w(key: &str, property: Option<&str>, value: &str) -> (String, Option<String>, String) {
    (
        key.to_owned(),
        property.map(str::to_owned),
        value.to_owned(),
    )
}

#[test]
fn each_entry_pushes_its_key_to_its_remote_key_and_property() {
    let ps = ps("  data:
    - match: {secretKey: password, remoteRef: {remoteKey: app/db, property: password}}
    - match: {secretKey: user, remoteRef: {remoteKey: app/user}}
");
    let desired = desired(
        &ps,
        &source(&[("password", "s3cret"), ("user", "app")]),
        &[],
        at(0),
    )
    .unwrap();
    assert_eq!(
        writes(&desired),
        vec![
            w("app/db", Some("password"), "s3cret"),
            w("app/user", None, "app")
        ]
    );
    assert_eq!(desired[0].status_key(), "app/db/password");
    assert_eq!(desired[1].status_key(), "app/user");
}

#[test]
fn without_a_secret_key_the_whole_secret_is_one_json_object() {
    let ps = ps("  data: [{match: {remoteRef: {remoteKey: app/all}}}]\n");
    let desired = desired(&ps, &source(&[("b", "2"), ("a", "1")]), &[], at(0)).unwrap();
    assert_eq!(
        writes(&desired),
        vec![w("app/all", None, r#"{"a":"1","b":"2"}"#)]
    );
}

#[test]
fn a_binary_value_cannot_be_part_of_the_whole_secret_json() {
    let ps = ps("  data: [{match: {remoteRef: {remoteKey: all}}}]\n");
    let data = BTreeMap::from([("p12".to_owned(), SecretBytes::new(vec![0xff, 0x00]))]);
    let err = desired(&ps, &data, &[], at(0)).unwrap_err();
    assert_eq!(err.reason(), "InvalidSpec");
    assert_eq!(
        err.to_string(),
        "spec.data[0].match.secretKey: key \"p12\" is binary; pushing the whole Secret as JSON needs text values (name the key in secretKey)"
    );
}

#[test]
fn a_missing_key_names_the_entry_and_the_key_never_a_value() {
    let ps = ps("  data: [{match: {secretKey: nope, remoteRef: {remoteKey: k}}}]\n");
    let err = desired(&ps, &source(&[("password", "s3cret")]), &[], at(0)).unwrap_err();
    assert_eq!(err.reason(), "SecretKeyNotFound");
    assert_eq!(
        err.to_string(),
        "spec.data[0].match.secretKey: the source Secret has no key \"nope\""
    );
}

#[test]
fn the_template_shapes_the_values_before_they_are_matched() {
    let ps = ps("  template:
    data:
      dsn: 'postgres://{{ user }}:{{ password }}@db'
  data:
    - match: {secretKey: dsn, remoteRef: {remoteKey: app/dsn}}
");
    let desired = desired(
        &ps,
        &source(&[("password", "pw"), ("user", "app")]),
        &[],
        at(0),
    )
    .unwrap();
    assert_eq!(
        writes(&desired),
        vec![w("app/dsn", None, "postgres://app:pw@db")]
    );
}

#[test]
fn template_errors_name_the_push_secret_field() {
    let ps = ps("  template: {data: {x: '{{ missing }}'}}
  data: [{match: {secretKey: x, remoteRef: {remoteKey: k}}}]
");
    let err = desired(&ps, &source(&[("a", "b")]), &[], at(0)).unwrap_err();
    assert_eq!(err.reason(), "TemplateError");
    assert!(
        err.to_string().starts_with("spec.template.data[\"x\"]"),
        "{err}"
    );
}

#[test]
fn template_from_a_config_map_renders_its_keys_with_the_secrets_values() {
    let ps = ps("  template:
    templateFrom: [{configMap: {name: tpl, items: [{key: dsn}]}}]
  data: [{match: {secretKey: dsn, remoteRef: {remoteKey: k}}}]
");
    let sources = [FetchedTemplateSource::Object {
        object: "ConfigMap app/tpl".to_owned(),
        data: source(&[("dsn", "postgres://{{ user }}:{{ password }}@db")]),
    }];
    let desired = desired(
        &ps,
        &source(&[("password", "pw"), ("user", "app")]),
        &sources,
        at(0),
    )
    .unwrap();
    assert_eq!(
        writes(&desired),
        [("k".to_owned(), None, "postgres://app:pw@db".to_owned())]
    );
}

#[test]
fn a_template_from_item_missing_from_its_config_map_names_the_field() {
    let ps = ps("  template:
    templateFrom: [{configMap: {name: tpl, items: [{key: absent}]}}]
  data: [{match: {secretKey: dsn, remoteRef: {remoteKey: k}}}]
");
    let sources = [FetchedTemplateSource::Object {
        object: "ConfigMap app/tpl".to_owned(),
        data: source(&[("dsn", "x")]),
    }];
    let err = desired(&ps, &source(&[("a", "b")]), &sources, at(0)).unwrap_err();
    assert_eq!(err.reason(), "TemplateError");
    assert!(
        err.to_string()
            .starts_with("spec.template.templateFrom[0].configMap"),
        "{err}"
    );
}

#[test]
fn unicode_conversion_turns_converted_keys_back_into_their_characters() {
    assert_eq!(reverse_unicode("a_U002f_b"), "a/b");
    assert_eq!(reverse_unicode("_U00e9_t_U00e9_"), "été");
    assert_eq!(reverse_unicode("keep_Unot_hex_"), "keep_Unot_hex_");
    assert_eq!(reverse_unicode("short_U2f_"), "short_U2f_");
    assert_eq!(reverse_unicode("trail_U"), "trail_U");
    let ps = ps("  data:
    - match: {secretKey: db/password, remoteRef: {remoteKey: k}}
      conversionStrategy: Unicode
");
    let desired = desired(&ps, &source(&[("db_U002f_password", "pw")]), &[], at(0)).unwrap();
    assert_eq!(writes(&desired), vec![w("k", None, "pw")]);
}

#[test]
fn two_entries_writing_one_place_are_refused() {
    let ps = ps("  data:
    - match: {secretKey: a, remoteRef: {remoteKey: k, property: p}}
    - match: {secretKey: b, remoteRef: {remoteKey: k, property: p}}
");
    let err = desired(&ps, &source(&[("a", "1"), ("b", "2")]), &[], at(0)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "spec.data[1].match.remoteRef: \"k/p\" is already written by spec.data[0]"
    );
}

fn synced(entries: &[(&str, &str, Option<&str>)]) -> Synced {
    let mut out = Synced::new();
    for (store, key, property) in entries {
        let data: PushSecretData = serde_saphyr::from_str(&format!(
            "match: {{secretKey: x, remoteRef: {{remoteKey: {key}{}}}}}",
            property
                .map(|p| format!(", property: {p}"))
                .unwrap_or_default()
        ))
        .unwrap();
        out.entry((*store).to_owned())
            .or_default()
            .insert(status_key(key, *property), data);
    }
    out
}

fn removal(store: &str, key: &str, property: Option<&str>) -> Removal {
    Removal {
        store: store.to_owned(),
        remote_key: key.to_owned(),
        property: property.map(str::to_owned),
    }
}

#[test]
fn delete_policy_removes_entries_and_stores_no_longer_in_the_spec() {
    let ps = ps("  deletionPolicy: Delete
  data: [{match: {secretKey: a, remoteRef: {remoteKey: keep}}}]
");
    let want = desired(&ps, &source(&[("a", "1")]), &[], at(0)).unwrap();
    let previous = synced(&[
        ("SecretStore/app/vault", "keep", None),
        ("SecretStore/app/vault", "gone", Some("p")),
        ("SecretStore/app/old", "keep", None),
    ]);
    assert_eq!(
        removals(&ps, &previous, &["SecretStore/app/vault".to_owned()], &want),
        vec![
            removal("SecretStore/app/old", "keep", None),
            removal("SecretStore/app/vault", "gone", Some("p")),
        ]
    );
    // Deleting the PushSecret: no store is kept, everything goes.
    assert_eq!(removals(&ps, &previous, &[], &[]).len(), 3);
}

#[test]
fn policy_none_removes_nothing() {
    let ps = ps("  data: []\n");
    let previous = synced(&[("SecretStore/app/vault", "k", None)]);
    assert!(removals(&ps, &previous, &[], &[]).is_empty());
}

#[test]
fn the_status_counts_what_was_pushed_and_fails_with_a_stable_reason() {
    let ps = ps("  data: []\n");
    let pushed = synced(&[
        ("SecretStore/app/vault", "a", None),
        ("SecretStore/app/vault", "b", Some("p")),
    ]);
    let ok = status(&ps, pushed.clone(), None, Some("41".to_owned()), at(100));
    let ready = &ok.conditions[0];
    assert_eq!(
        (
            ready.status.as_str(),
            ready.reason.as_str(),
            ready.message.as_str()
        ),
        ("True", "Synced", "2 remote secrets pushed to 1 store")
    );
    assert_eq!(ready.observed_generation, Some(2));
    assert_eq!(ok.refresh_time, Some(Time(at(100))));
    assert_eq!(ok.synced_resource_version.as_deref(), Some("41"));
    assert_eq!(ok.synced_push_secrets, pushed);

    let mut ps = ps;
    ps.status = Some(ok);
    let failed = status(
        &ps,
        Synced::from([("SecretStore/app/gone".to_owned(), BTreeMap::new())]),
        Some((Reason::Conflict, "k is owned by other/ps".to_owned())),
        None,
        at(200),
    );
    let ready = &failed.conditions[0];
    assert_eq!(
        (
            ready.status.as_str(),
            ready.reason.as_str(),
            ready.message.as_str()
        ),
        ("False", "Conflict", "k is owned by other/ps")
    );
    assert_eq!(ready.last_transition_time, Time(at(200)));
    assert_eq!(
        failed.synced_resource_version.as_deref(),
        Some("41"),
        "kept"
    );
    assert!(
        failed.synced_push_secrets.is_empty(),
        "empty stores dropped"
    );
}

#[test]
fn refresh_defaults_to_an_hour_and_zero_means_changes_only() {
    assert_eq!(refresh_interval(&ps("")).unwrap(), Some(DEFAULT_REFRESH));
    assert_eq!(
        refresh_interval(&ps("  refreshInterval: 30s\n")).unwrap(),
        Some(Duration::from_secs(30))
    );
    assert_eq!(
        refresh_interval(&ps("  refreshInterval: \"0\"\n")).unwrap(),
        None
    );
    assert_eq!(
        refresh_interval(&ps("  refreshInterval: soon\n"))
            .unwrap_err()
            .to_string(),
        "spec.refreshInterval: \"soon\" is not a duration such as 1h or 30m"
    );
}

#[test]
fn the_owner_is_namespace_and_name() {
    assert_eq!(owner(&ps("")), "app/db");
}
