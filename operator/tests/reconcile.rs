//! The reconcile pipeline in process: `externalsecret::reconcile` called directly against an
//! in-memory devcluster, with a settable clock and seeded randomness. No binary, no watch, no
//! waiting: each reconcile is one call, so each decision (first sync, refresh, force-sync,
//! drift, failure) is tested in milliseconds. The end-to-end suites keep what only a running
//! `kuvert` can show (watches, restarts, leader election, RBAC).

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::controller::Action;
use kube::runtime::reflector::{self, store::Writer};
use kube::runtime::watcher;
use kuvert_core::api::{ExternalSecret, SecretStore};
use kuvert_devcluster::{Config, DevCluster, DevClusterHandle};
use kuvert_generator_random::SeededRandom;
use kuvert_operator::context::{Context, Settings};
use kuvert_operator::externalsecret::priority::BackgroundSlots;
use kuvert_operator::externalsecret::stores::StoreCaches;
use kuvert_operator::externalsecret::target::TargetCache;
use kuvert_operator::externalsecret::{Error, State, reconcile};
use kuvert_operator::rollout::Rollouts;
use support::{APP_EXTERNAL_SECRET, app_store, yaml};

mod support;

/// An in-process devcluster with kuvert's CRDs, and the ExternalSecret controller's state
/// around a test [`Context`]: the fake provider, a clock the test sets, seeded randomness.
struct Harness {
    server: DevClusterHandle,
    client: kube::Client,
    state: Arc<State>,
    stores: Writer<SecretStore>,
    /// The clock's time, in seconds since the epoch.
    now: Arc<AtomicI64>,
}

impl Harness {
    async fn start() -> Harness {
        let server = DevCluster::start(Config::default()).await.unwrap();
        let client = server.client().unwrap();
        let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
        for crd in kuvert_core::crds::all() {
            crds.create(&PostParams::default(), &crd).await.unwrap();
        }
        let now = Arc::new(AtomicI64::new(1_800_000_000));
        let clock = {
            let now = now.clone();
            Arc::new(move || jiff::Timestamp::from_second(now.load(Ordering::SeqCst)).unwrap())
        };
        let ctx = Context::with(
            client.clone(),
            Settings::default(),
            clock,
            Arc::new(SeededRandom::new(7)),
        );
        let (cache, stores) = reflector::store();
        let targets = TargetCache::default();
        let rollouts = Rollouts::new(
            ctx.clone(),
            targets.clone(),
            Duration::ZERO,
            Duration::from_secs(600),
        );
        let state = Arc::new(State {
            ctx,
            caches: StoreCaches {
                stores: cache,
                cluster_stores: None,
            },
            targets,
            background: BackgroundSlots::new(4),
            rollouts,
        });
        Harness {
            server,
            client,
            state,
            stores,
            now,
        }
    }

    /// A harness with the store and the ExternalSecret created, not yet reconciled.
    async fn with_external_secret() -> Harness {
        let mut harness = Harness::start().await;
        harness.put_store(app_store("pw-1")).await;
        harness.create(APP_EXTERNAL_SECRET).await;
        harness
    }

    /// Moves the clock on.
    fn advance(&self, by: Duration) {
        self.now.fetch_add(by.as_secs() as i64, Ordering::SeqCst);
    }

    /// Creates or replaces the store, in the API server and in the controller's cache.
    async fn put_store(&mut self, mut store: SecretStore) {
        let api: Api<SecretStore> = Api::namespaced(self.client.clone(), "default");
        let name = store.metadata.name.clone().unwrap();
        let stored = match api.get_opt(&name).await.unwrap() {
            Some(old) => {
                store.metadata.resource_version = old.metadata.resource_version;
                api.replace(&name, &PostParams::default(), &store).await
            }
            None => api.create(&PostParams::default(), &store).await,
        };
        self.stores
            .apply_watcher_event(&watcher::Event::Apply(stored.unwrap()));
    }

    async fn create(&self, external_secret: &str) {
        self.external_secrets()
            .create(&PostParams::default(), &yaml(external_secret))
            .await
            .unwrap();
    }

    fn external_secrets(&self) -> Api<ExternalSecret> {
        Api::namespaced(self.client.clone(), "default")
    }

    fn secrets(&self) -> Api<Secret> {
        Api::namespaced(self.client.clone(), "default")
    }

    /// Sets `app`'s `force-sync` annotation to `value`, as `kubectl annotate` would.
    async fn force_sync(&self, value: &str) {
        let annotate = serde_json::json!({"metadata": {"annotations": {"force-sync": value}}});
        self.external_secrets()
            .patch("app", &PatchParams::default(), &Patch::Merge(&annotate))
            .await
            .unwrap();
    }

    /// One reconcile of `app`, as the controller would run it on the object as stored.
    async fn reconcile(&self) -> Result<Action, Error> {
        let es = self.external_secrets().get("app").await.unwrap();
        reconcile(Arc::new(es), self.state.clone()).await
    }

    async fn password(&self) -> Option<String> {
        let secret = self.secrets().get_opt("app-secret").await.unwrap()?;
        let bytes = secret.data?.remove("password")?.0;
        Some(String::from_utf8(bytes).unwrap())
    }

    async fn ready(&self) -> Option<(String, String)> {
        support::ready(&self.external_secrets(), "app").await
    }

    async fn events(&self) -> Vec<(String, String)> {
        let events: Api<Event> = Api::namespaced(self.client.clone(), "default");
        let list = events.list(&Default::default()).await.unwrap();
        list.items
            .into_iter()
            .map(|e| (e.type_.unwrap_or_default(), e.reason.unwrap_or_default()))
            .collect()
    }

    /// The notes of the Events with this reason.
    async fn notes(&self, reason: &str) -> Vec<String> {
        let events: Api<Event> = Api::namespaced(self.client.clone(), "default");
        let list = events.list(&Default::default()).await.unwrap();
        list.items
            .into_iter()
            .filter(|e| e.reason.as_deref() == Some(reason))
            .map(|e| e.note.unwrap_or_default())
            .collect()
    }

    async fn refresh_time(&self) -> Option<jiff::Timestamp> {
        let es = self.external_secrets().get("app").await.unwrap();
        Some(es.status?.refresh_time?.0)
    }

    fn secret_writes(&self) -> u64 {
        self.server.write_count("secrets")
    }
}

/// The delay an `Action` requeues after (it keeps the field private; its `Debug` shows it).
fn delay(action: &Action) -> Option<Duration> {
    let shown = format!("{action:?}");
    let seconds = shown.split("Some(").nth(1)?.split("s)").next()?;
    Some(Duration::from_secs_f64(seconds.parse().ok()?))
}

fn requeued_within(action: &Action, low: u64, high: u64) -> bool {
    delay(action).is_some_and(|d| (low as f64..=high as f64).contains(&d.as_secs_f64()))
}

#[tokio::test]
async fn a_first_sync_writes_the_secret_and_reports_ready_with_one_event() {
    let harness = Harness::with_external_secret().await;
    let action = harness.reconcile().await.unwrap();
    assert_eq!(harness.password().await.as_deref(), Some("pw-1"));
    assert_eq!(
        harness.ready().await,
        Some(("True".to_owned(), "SecretSynced".to_owned()))
    );
    assert_eq!(
        harness.events().await,
        [("Normal".to_owned(), "SecretSynced".to_owned())]
    );
    // The next look is the refresh, spread into the last tenth of the hour.
    assert!(requeued_within(&action, 3240, 3600), "{action:?}");
}

#[tokio::test]
async fn nothing_is_synced_before_the_refresh_is_due_and_a_changed_store_is_followed_at_once() {
    let mut harness = Harness::with_external_secret().await;
    harness.reconcile().await.unwrap();
    let synced_at = harness.refresh_time().await;
    let writes = harness.secret_writes();

    harness.advance(Duration::from_secs(600));
    let action = harness.reconcile().await.unwrap();
    assert!(requeued_within(&action, 2640, 3000), "{action:?}");
    assert_eq!(harness.refresh_time().await, synced_at, "no sync yet");
    assert_eq!(harness.secret_writes(), writes);

    harness.advance(Duration::from_secs(3000));
    harness.reconcile().await.unwrap();
    let refreshed_at = harness.refresh_time().await;
    assert!(refreshed_at > synced_at, "refreshed once due");

    // A changed store is followed at once by the ExternalSecrets that use it.
    harness.put_store(app_store("pw-2")).await;
    harness.advance(Duration::from_secs(1));
    harness.reconcile().await.unwrap();
    assert_eq!(harness.password().await.as_deref(), Some("pw-2"));
    assert!(harness.refresh_time().await > refreshed_at);
    // The rotation leaves an audit trail naming the key, never the value; the refresh that
    // read the same value left none.
    assert_eq!(
        harness.notes("DataChanged").await,
        ["Secret default/app-secret: changed key password"]
    );
}

#[tokio::test]
async fn a_force_sync_annotation_syncs_at_once_and_only_once_per_value() {
    let harness = Harness::with_external_secret().await;
    harness.reconcile().await.unwrap();
    let synced_at = harness.refresh_time().await;
    harness.advance(Duration::from_secs(5));
    harness.force_sync("1").await;
    harness.reconcile().await.unwrap();
    let forced_at = harness.refresh_time().await;
    assert!(forced_at > synced_at, "synced on the annotation");
    let es = harness.external_secrets().get("app").await.unwrap();
    assert_eq!(es.status.unwrap().force_sync.as_deref(), Some("1"));

    harness.advance(Duration::from_secs(5));
    harness.reconcile().await.unwrap();
    assert_eq!(
        harness.refresh_time().await,
        forced_at,
        "the same value again: no sync"
    );
}

#[tokio::test]
async fn an_edited_secret_is_restored_without_waiting_for_the_refresh() {
    let harness = Harness::with_external_secret().await;
    harness.reconcile().await.unwrap();
    let edit = serde_json::json!({"data": {"password": "ZWRpdGVk"}});
    harness
        .secrets()
        .patch("app-secret", &PatchParams::default(), &Patch::Merge(&edit))
        .await
        .unwrap();
    assert_eq!(harness.password().await.as_deref(), Some("edited"));
    harness.advance(Duration::from_secs(1));
    harness.reconcile().await.unwrap();
    assert_eq!(harness.password().await.as_deref(), Some("pw-1"));
    assert_eq!(
        harness.events().await,
        [
            ("Normal".to_owned(), "SecretSynced".to_owned()),
            ("Normal".to_owned(), "DataChanged".to_owned())
        ],
        "a repair is no transition, but it changes data"
    );
}

#[tokio::test]
async fn a_failed_sync_reports_why_in_the_status_and_an_event_and_leaves_the_secret_as_it_was() {
    let harness = Harness::with_external_secret().await;
    harness.reconcile().await.unwrap();
    let broken =
        serde_json::json!({"spec": {"target": {"template": {"data": {"url": "{{ nosuchvar }}"}}}}});
    harness
        .external_secrets()
        .patch("app", &PatchParams::default(), &Patch::Merge(&broken))
        .await
        .unwrap();
    let writes = harness.secret_writes();
    let error = harness.reconcile().await.unwrap_err();
    assert!(error.sync_error().is_some(), "{error}");
    let (status, reason) = harness.ready().await.unwrap();
    assert_eq!(status, "False");
    assert_eq!(reason, error.reason());
    let es = harness.external_secrets().get("app").await.unwrap();
    let message = &es.status.unwrap().conditions[0].message;
    assert!(message.contains("spec.target.template.data"), "{message}");
    assert!(
        !message.contains("pw-1"),
        "no value in the status: {message}"
    );
    assert_eq!(
        harness.events().await,
        [
            ("Normal".to_owned(), "SecretSynced".to_owned()),
            ("Warning".to_owned(), reason)
        ]
    );
    assert_eq!(harness.password().await.as_deref(), Some("pw-1"));
    assert_eq!(harness.secret_writes(), writes, "the Secret is untouched");
}

#[tokio::test]
async fn a_secret_kuvert_does_not_own_is_refused_and_left_as_it_was() {
    let harness = Harness::with_external_secret().await;
    // Controlled by something else: a Secret with no controller would be adopted, as ESO does.
    // The owner exists, or the garbage collector would remove the Secret.
    let owner =
        Api::<k8s_openapi::api::core::v1::ConfigMap>::namespaced(harness.client.clone(), "default")
            .create(&PostParams::default(), &yaml("metadata: {name: other}\n"))
            .await
            .unwrap();
    let theirs: Secret = yaml(&format!(
        "metadata:\n  name: app-secret\n  namespace: default\n  ownerReferences: [{{apiVersion: v1, kind: ConfigMap, name: other, uid: {}, controller: true}}]\nstringData: {{password: theirs}}\n",
        owner.metadata.uid.unwrap()
    ));
    harness
        .secrets()
        .create(&PostParams::default(), &theirs)
        .await
        .unwrap();
    let writes = harness.secret_writes();
    let error = harness.reconcile().await.unwrap_err();
    assert!(error.sync_error().is_some(), "{error}");
    assert_eq!(harness.ready().await.unwrap().0, "False");
    assert_eq!(harness.password().await.as_deref(), Some("theirs"));
    assert_eq!(harness.secret_writes(), writes);
}

#[tokio::test]
async fn a_missing_store_fails_and_the_sync_succeeds_once_it_exists() {
    let mut harness = Harness::start().await;
    harness.create(APP_EXTERNAL_SECRET).await;
    let error = harness.reconcile().await.unwrap_err();
    assert_eq!(error.reason(), error.sync_error().unwrap().reason());
    assert_eq!(harness.ready().await.unwrap().0, "False");
    harness.put_store(app_store("pw-1")).await;
    harness.advance(Duration::from_secs(1));
    harness.reconcile().await.unwrap();
    assert_eq!(harness.password().await.as_deref(), Some("pw-1"));
    assert_eq!(harness.ready().await.unwrap().0, "True");
}

#[tokio::test]
async fn a_generated_password_is_kept_through_drift_repair_and_made_anew_on_force_sync() {
    let harness = Harness::start().await;
    let generator: kuvert_core::api::Password = yaml(
        "apiVersion: generators.kuvert.io/v1alpha1\nkind: Password\nmetadata: {name: pw, namespace: default}\nspec: {length: 32}\n",
    );
    Api::<kuvert_core::api::Password>::namespaced(harness.client.clone(), "default")
        .create(&PostParams::default(), &generator)
        .await
        .unwrap();
    harness
        .create("apiVersion: kuvert.io/v1alpha1\nkind: ExternalSecret\nmetadata: {name: app, namespace: default}\nspec:\n  refreshInterval: 1h\n  target: {name: app-secret}\n  dataFrom:\n  - sourceRef: {generatorRef: {kind: Password, name: pw}}\n")
        .await;
    harness.reconcile().await.unwrap();
    let first = harness.password().await.expect("a generated password");
    assert_eq!(first.len(), 32);
    let es = harness.external_secrets().get("app").await.unwrap();
    assert!(
        es.metadata
            .finalizers
            .unwrap_or_default()
            .contains(&"kuvert.io/generator-leases".to_owned()),
        "the finalizer is in place before anything is generated"
    );
    let kept = harness.secrets().get_opt("app.kuvert-generated").await;
    assert!(
        kept.unwrap().is_some(),
        "the companion Secret keeps the value"
    );

    let edit = serde_json::json!({"data": {"password": "ZWRpdGVk"}});
    harness
        .secrets()
        .patch("app-secret", &PatchParams::default(), &Patch::Merge(&edit))
        .await
        .unwrap();
    harness.advance(Duration::from_secs(1));
    harness.reconcile().await.unwrap();
    assert_eq!(
        harness.password().await,
        Some(first.clone()),
        "restored, not regenerated"
    );

    harness.force_sync("1").await;
    harness.reconcile().await.unwrap();
    let second = harness.password().await.unwrap();
    assert_ne!(second, first, "a force-sync generates anew");
}

/// `creationPolicy: Merge` into a Secret kuvert does not own: the merged Secret carries
/// kuvert's label, so the cache of managed Secrets holds it at the version written; a later
/// sync must still read it (a merge needs its other keys) instead of failing `SecretMissing`.
#[tokio::test]
async fn a_merged_into_secret_keeps_following_remote_changes_once_the_cache_holds_it() {
    let mut harness = Harness::start().await;
    harness.put_store(app_store("pw-1")).await;
    let theirs: Secret =
        yaml("metadata: {name: app-secret, namespace: default}\nstringData: {other: kept}\n");
    harness
        .secrets()
        .create(&PostParams::default(), &theirs)
        .await
        .unwrap();
    harness
        .create(&APP_EXTERNAL_SECRET.replace(
            "target: {name: app-secret}",
            "target: {name: app-secret, creationPolicy: Merge}",
        ))
        .await;
    harness.reconcile().await.unwrap();
    assert_eq!(harness.password().await.as_deref(), Some("pw-1"));
    // The watch of managed Secrets shows the merged Secret as written.
    let meta =
        watcher::Event::InitApply(harness.secrets().get_metadata("app-secret").await.unwrap());
    harness.state.targets.apply(&watcher::Event::Init);
    harness.state.targets.apply(&meta);
    harness.state.targets.apply(&watcher::Event::InitDone);

    harness.put_store(app_store("pw-2")).await;
    harness.reconcile().await.unwrap();
    harness.advance(Duration::from_secs(3600));
    harness.reconcile().await.unwrap();
    assert_eq!(
        harness.ready().await,
        Some(("True".to_owned(), "SecretSynced".to_owned()))
    );
    assert_eq!(harness.password().await.as_deref(), Some("pw-2"));
    let secret = harness.secrets().get("app-secret").await.unwrap();
    assert_eq!(
        secret.data.unwrap().get("other").map(|v| v.0.as_slice()),
        Some(b"kept".as_slice())
    );
}
