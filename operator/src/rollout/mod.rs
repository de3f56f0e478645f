//! Rollout restarts: workloads follow the Secrets kuvert manages.
//!
//! Who follows what: an ExternalSecret's `spec.target.rolloutRestartTargets` (recorded by each
//! of its reconciles, [`Rollouts::es_synced`]) and the Deployments, StatefulSets and DaemonSets
//! labelled `kuvert.io/reload: "true"` (a label-selected watch, [`watch`]), with the Secrets
//! their pod templates use ([`kuvert_core::rollout::followed`]).
//!
//! When: a reconcile reporting a data hash a follower was not last seen with, or a labelled
//! workload seen behind, schedules that workload. A scheduled workload is checked once its
//! debounce window has passed since it was first scheduled, so Secrets changing together
//! cause one rollout. The check reads the workload and patches its pod template annotations
//! (`kuvert.io/secret-hash.NAME`) where they differ from the Secrets' current hashes: the
//! workload's own controller rolls the pods. After a restart nothing was seen yet: every
//! follower is checked once (a read) and patched only if it is behind, so a crash between the
//! Secret write and the patch is finished by the next process, and a restart of kuvert
//! restarts nothing. A workload that is missing or refuses the patch is reported (an Event,
//! a log line) and checked again only when a reconcile or a watch event schedules it.
//!
//! Which workloads run which data: each check (and, for labelled workloads, each watch event)
//! records what the workload's template carries and whether its rollout has finished
//! ([`Rollouts::statuses`], the ExternalSecret's `status.workloads`). A named workload still
//! rolling out is read again after 2 s, doubling to a minute; a change of what was observed
//! wakes the ExternalSecrets concerned, whose reconcile writes it into their status. A workload
//! whose rollout has not finished `--rollout-behind-threshold` after it started is a Warning
//! Event (`RolloutBehind`), once per rollout.

pub mod watch;
pub mod workloads;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::runtime::events::{Event, EventType};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Resource, ResourceExt};
use kuvert_core::api::{ExternalSecret, WorkloadStatus};
use kuvert_core::rollout::{annotations_to_set, hash_annotation, template_patch};
use tokio::time::Instant;

use crate::context::Context;
use crate::externalsecret::target::TargetCache;
pub use workloads::Workload;

/// The rollout restarts' shared state and its runner.
pub struct Rollouts {
    ctx: Arc<Context>,
    targets: TargetCache,
    window: Duration,
    behind_after: Duration,
    inner: Mutex<Inner>,
    wake: tokio::sync::Notify,
}

/// An ExternalSecret's `rolloutRestartTargets`, as its last reconcile recorded them.
struct Named {
    reference: ObjectReference,
    secret: String,
    workloads: Vec<Workload>,
}

/// A workload as last observed.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Observation {
    /// Its pod template's `kuvert.io/secret-hash.*` annotations.
    hashes: BTreeMap<String, String>,
    /// Its rollout has finished.
    rolled_out: bool,
    /// When it was first observed in this state.
    at: jiff::Timestamp,
    /// A `RolloutBehind` Event was published about this state.
    warned: bool,
}

/// The first read of a named workload still rolling out comes this long after the patch; each
/// next one twice as long, up to [`LAST_POLL`].
const FIRST_POLL: Duration = Duration::from_secs(2);
const LAST_POLL: Duration = Duration::from_secs(60);

#[derive(Default)]
struct Inner {
    /// By (namespace, ExternalSecret name).
    named: HashMap<(String, String), Named>,
    /// Labelled workloads and the Secrets they follow.
    labelled: HashMap<Workload, BTreeSet<String>>,
    /// Each workload as last seen or patched.
    seen: HashMap<Workload, Observation>,
    /// Named workloads still rolling out: how long until the next read.
    polls: HashMap<Workload, Duration>,
    /// Data hashes reconciles reported for Secrets someone follows, by (namespace, Secret).
    reported: HashMap<(String, String), String>,
    /// Workloads to check, each at the end of its debounce window.
    due: HashMap<Workload, Instant>,
}

impl Inner {
    /// The workloads following Secret `namespace/secret`.
    fn followers(&self, namespace: &str, secret: &str) -> BTreeSet<Workload> {
        let named = self
            .named
            .values()
            .filter(|n| n.secret == secret && n.reference.namespace.as_deref() == Some(namespace))
            .flat_map(|n| n.workloads.iter().cloned());
        let labelled = self
            .labelled
            .iter()
            .filter(|(w, secrets)| w.namespace == namespace && secrets.contains(secret))
            .map(|(w, _)| w.clone());
        named.chain(labelled).collect()
    }

    /// The Secrets `workload` follows, and the ExternalSecrets naming it.
    fn follows(&self, workload: &Workload) -> (BTreeSet<String>, Vec<ObjectReference>) {
        let mut secrets = self.labelled.get(workload).cloned().unwrap_or_default();
        let mut naming = Vec::new();
        for named in self.named.values() {
            if named.workloads.contains(workload) {
                secrets.insert(named.secret.clone());
                naming.push(named.reference.clone());
            }
        }
        (secrets, naming)
    }

    /// Whether `workload` was last seen without `hash` for `secret`.
    fn behind(&self, workload: &Workload, secret: &str, hash: &str) -> bool {
        self.seen
            .get(workload)
            .and_then(|seen| seen.hashes.get(&hash_annotation(secret)))
            .is_none_or(|seen| seen != hash)
    }

    /// Records `workload` as observed now; returns whether that changed what was known.
    fn observed(
        &mut self,
        workload: &Workload,
        hashes: BTreeMap<String, String>,
        rolled_out: bool,
        now: jiff::Timestamp,
    ) -> bool {
        let previous = self.seen.get(workload);
        if previous.is_some_and(|p| p.hashes == hashes && p.rolled_out == rolled_out) {
            return false;
        }
        let at = jiff::Timestamp::from_second(now.as_second()).unwrap_or(now);
        self.seen.insert(
            workload.clone(),
            Observation {
                hashes,
                rolled_out,
                at,
                warned: false,
            },
        );
        true
    }

    /// The ExternalSecrets whose status lists `workload`: those naming it, and the writers of
    /// the Secrets it follows by its label.
    fn concerned(&self, workload: &Workload, ctx: &Context) -> Vec<ObjectRef<ExternalSecret>> {
        let mut concerned: Vec<ObjectRef<ExternalSecret>> = self
            .named
            .iter()
            .filter(|(_, n)| n.workloads.contains(workload))
            .map(|((namespace, name), _)| ObjectRef::new(name).within(namespace))
            .collect();
        for secret in self.labelled.get(workload).into_iter().flatten() {
            concerned.extend(ctx.index.writer_of(&workload.namespace, secret));
        }
        concerned
    }
}

impl Rollouts {
    /// Rollouts reading data hashes from `targets`, debounced by `window`, warning about
    /// rollouts unfinished after `behind_after`.
    pub fn new(
        ctx: Arc<Context>,
        targets: TargetCache,
        window: Duration,
        behind_after: Duration,
    ) -> Arc<Rollouts> {
        Arc::new(Rollouts {
            ctx,
            targets,
            window,
            behind_after,
            inner: Mutex::default(),
            wake: tokio::sync::Notify::new(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().expect("rollouts lock")
    }

    /// A reconcile of `es` found its Secret `secret` with data hash `hash` (`None`: no Secret):
    /// records the workloads it names and schedules every follower not seen with that hash.
    pub fn es_synced(&self, es: &ExternalSecret, secret: &str, hash: Option<&str>) {
        let namespace = es.namespace().unwrap_or_default();
        let key = (namespace.clone(), es.name_any());
        let targets = es
            .spec
            .target
            .as_ref()
            .map(|t| t.rollout_restart_targets.as_slice())
            .unwrap_or_default();
        let mut inner = self.lock();
        if targets.is_empty() {
            inner.named.remove(&key);
        } else {
            let workloads = targets
                .iter()
                .map(|t| Workload {
                    kind: t.kind,
                    namespace: namespace.clone(),
                    name: t.name.clone(),
                })
                .collect();
            let reference = es.object_ref(&());
            let secret = secret.to_owned();
            inner.named.insert(
                key,
                Named {
                    reference,
                    secret,
                    workloads,
                },
            );
        }
        let Some(hash) = hash else { return };
        let followers = inner.followers(&namespace, secret);
        let secret_key = (namespace, secret.to_owned());
        if followers.is_empty() {
            inner.reported.remove(&secret_key);
            return;
        }
        inner.reported.insert(secret_key, hash.to_owned());
        let behind: Vec<Workload> = followers
            .into_iter()
            .filter(|w| inner.behind(w, secret, hash))
            .collect();
        self.schedule(&mut inner, behind);
    }

    /// The watch saw labelled `workload` following `secrets`, its pod template carrying
    /// `annotations`: schedules it if it is behind a Secret kuvert manages.
    pub fn labelled_seen(
        &self,
        workload: Workload,
        secrets: BTreeSet<String>,
        annotations: &BTreeMap<String, String>,
        rolled_out: bool,
    ) {
        let mut inner = self.lock();
        let seen = seen_hashes(annotations);
        let behind = secrets.iter().any(|secret| {
            self.hash_of(&inner, &workload.namespace, secret)
                .is_some_and(|hash| seen.get(&hash_annotation(secret)) != Some(&hash))
        });
        inner.labelled.insert(workload.clone(), secrets);
        if inner.observed(&workload, seen, rolled_out, (self.ctx.clock)()) {
            self.wake(&inner, &workload);
        }
        if behind {
            self.schedule(&mut inner, vec![workload]);
        }
    }

    /// Wakes the ExternalSecrets whose status lists `workload`.
    fn wake(&self, inner: &Inner, workload: &Workload) {
        for es in inner.concerned(workload, &self.ctx) {
            self.ctx.wakes.external_secret(es);
        }
    }

    /// The workloads following `es`'s Secret `secret`, whose current data hash is `hash`, as
    /// last observed: its `status.workloads`.
    pub fn statuses(
        &self,
        es: &ExternalSecret,
        secret: &str,
        hash: Option<&str>,
    ) -> Vec<WorkloadStatus> {
        let inner = self.lock();
        let namespace = es.namespace().unwrap_or_default();
        let key = hash_annotation(secret);
        let named = inner
            .named
            .get(&(namespace.clone(), es.name_any()))
            .map(|n| n.workloads.clone())
            .unwrap_or_default();
        let labelled = inner
            .labelled
            .iter()
            .filter(|(w, secrets)| w.namespace == namespace && secrets.contains(secret))
            .map(|(w, _)| w.clone());
        let workloads: BTreeSet<Workload> = named.into_iter().chain(labelled).collect();
        workloads
            .into_iter()
            .map(|w| {
                let seen = inner.seen.get(&w);
                let secret_hash = seen.and_then(|s| s.hashes.get(&key)).cloned();
                let up_to_date = hash.is_some()
                    && secret_hash.as_deref() == hash
                    && seen.is_some_and(|s| s.rolled_out);
                WorkloadStatus {
                    kind: w.kind,
                    name: w.name,
                    secret_hash,
                    up_to_date,
                    observed_at: seen.map(|s| Time(s.at)),
                }
            })
            .collect()
    }

    /// A labelled workload was deleted or lost its label.
    pub fn labelled_gone(&self, workload: &Workload) {
        let mut inner = self.lock();
        inner.labelled.remove(workload);
        if !inner.named.values().any(|n| n.workloads.contains(workload)) {
            inner.seen.remove(workload);
            inner.due.remove(workload);
            inner.polls.remove(workload);
        }
    }

    fn hash_of(&self, inner: &Inner, namespace: &str, secret: &str) -> Option<String> {
        inner
            .reported
            .get(&(namespace.to_owned(), secret.to_owned()))
            .cloned()
            .or_else(|| self.targets.data_hash(namespace, secret))
    }

    fn schedule(&self, inner: &mut Inner, workloads: Vec<Workload>) {
        if workloads.is_empty() {
            return;
        }
        let at = Instant::now() + self.window;
        for workload in workloads {
            // A change ends the reads of a rollout in progress: the next check starts anew.
            inner.polls.remove(&workload);
            inner.due.entry(workload).or_insert(at);
        }
        self.wake.notify_one();
    }

    /// Checks scheduled workloads as their windows end, until the process ends. Starts once
    /// the managed Secrets' cache has listed (the hashes come from it).
    pub async fn run(self: Arc<Self>) {
        self.targets.wait_until_ready().await;
        loop {
            let next = self.lock().due.values().min().copied();
            let woken = self.wake.notified();
            match next {
                Some(at) if at <= Instant::now() => {}
                Some(at) => {
                    tokio::select! {
                        () = tokio::time::sleep_until(at) => {}
                        () = woken => continue,
                    }
                }
                None => {
                    woken.await;
                    continue;
                }
            }
            let now = Instant::now();
            let due: Vec<Workload> = {
                let mut inner = self.lock();
                let due: Vec<Workload> = inner
                    .due
                    .iter()
                    .filter(|(_, at)| **at <= now)
                    .map(|(w, _)| w.clone())
                    .collect();
                for workload in &due {
                    inner.due.remove(workload);
                }
                due
            };
            for workload in due {
                self.check(&workload).await;
            }
        }
    }

    /// Every 10 s, forgets what deleted ExternalSecrets named (the cache no longer holds them)
    /// and what is known of workloads nothing follows any more, until the process ends.
    pub async fn forget_deleted(self: Arc<Self>, cache: Store<ExternalSecret>) {
        loop {
            tokio::time::sleep(Duration::from_secs(10)).await;
            self.forget(|es| cache.get(es).is_some());
        }
    }

    /// Keeps what the ExternalSecrets `live` says exist named, and the workloads still followed.
    fn forget(&self, live: impl Fn(&ObjectRef<ExternalSecret>) -> bool) {
        let mut inner = self.lock();
        inner
            .named
            .retain(|(namespace, name), _| live(&ObjectRef::new(name).within(namespace)));
        let followed: BTreeSet<Workload> = inner
            .named
            .values()
            .flat_map(|n| n.workloads.iter().cloned())
            .chain(inner.labelled.keys().cloned())
            .collect();
        inner.seen.retain(|w, _| followed.contains(w));
        inner.polls.retain(|w, _| followed.contains(w));
        inner.due.retain(|w, _| followed.contains(w));
        let secrets: BTreeSet<(String, String)> =
            inner
                .named
                .values()
                .filter_map(|n| Some((n.reference.namespace.clone()?, n.secret.clone())))
                .chain(inner.labelled.iter().flat_map(|(w, secrets)| {
                    secrets.iter().map(|s| (w.namespace.clone(), s.clone()))
                }))
                .collect();
        inner.reported.retain(|key, _| secrets.contains(key));
    }

    /// Publishes a Warning Event (`RolloutBehind`) about each workload whose rollout has not
    /// finished `behind_after` after it was observed to start, once per rollout, until the
    /// process ends.
    pub async fn warn_behind(self: Arc<Self>) {
        let every = (self.behind_after / 4).clamp(Duration::from_secs(1), Duration::from_secs(60));
        let threshold = i64::try_from(self.behind_after.as_secs()).unwrap_or(i64::MAX);
        loop {
            tokio::time::sleep(every).await;
            let now = (self.ctx.clock)().as_second();
            let late: Vec<(Workload, Vec<ObjectRef<ExternalSecret>>)> = {
                let mut inner = self.lock();
                let mut late = Vec::new();
                for (workload, seen) in &mut inner.seen {
                    if !seen.rolled_out && !seen.warned && now - seen.at.as_second() >= threshold {
                        seen.warned = true;
                        late.push(workload.clone());
                    }
                }
                late.into_iter()
                    .map(|w| {
                        let concerned = inner.concerned(&w, &self.ctx);
                        (w, concerned)
                    })
                    .collect()
            };
            for (workload, concerned) in late {
                let message = format!(
                    "{workload} has not finished rolling out its current pod template for {}s",
                    self.behind_after.as_secs()
                );
                tracing::warn!(%workload, "rollout behind");
                let event = Event {
                    type_: EventType::Warning,
                    reason: "RolloutBehind".to_owned(),
                    note: Some(message),
                    action: "Restart".to_owned(),
                    secondary: None,
                };
                let references: Vec<ObjectReference> = if concerned.is_empty() {
                    vec![workload.reference()]
                } else {
                    concerned.iter().map(es_reference).collect()
                };
                for reference in &references {
                    crate::externalsecret::report::publish(&self.ctx, reference, &event).await;
                }
            }
        }
    }

    /// Brings `workload`'s pod template to the current hashes of the Secrets it follows.
    async fn check(&self, workload: &Workload) {
        let (wanted, naming) = {
            let inner = self.lock();
            let (secrets, naming) = inner.follows(workload);
            let wanted: BTreeMap<String, String> = secrets
                .into_iter()
                .filter_map(|s| Some((s.clone(), self.hash_of(&inner, &workload.namespace, &s)?)))
                .collect();
            (wanted, naming)
        };
        if wanted.is_empty() {
            return;
        }
        let client = &self.ctx.client;
        let (current, rolled_out) = match workloads::get(client, workload).await {
            Ok(Some(current)) => current,
            Ok(None) => {
                let message = format!("{workload} does not exist: it cannot be restarted");
                self.failed(workload, &naming, "RolloutTargetNotFound", message)
                    .await;
                return;
            }
            Err(e) => {
                let message = format!("reading {workload} to restart it: {e}");
                self.failed(workload, &naming, "RolloutFailed", message)
                    .await;
                return;
            }
        };
        let set = annotations_to_set(Some(&current), &wanted);
        if !set.is_empty() {
            if let Err(e) = workloads::patch(client, workload, &template_patch(&set)).await {
                let message = format!("patching the pod template of {workload}: {e}");
                self.failed(workload, &naming, "RolloutFailed", message)
                    .await;
                return;
            }
            let secrets: Vec<&str> = wanted
                .keys()
                .filter(|s| set.contains_key(&hash_annotation(s)))
                .map(String::as_str)
                .collect();
            tracing::info!(%workload, ?secrets, "restarting workload: its Secrets changed");
            counted(workload, "restarted");
            let event = Event {
                type_: EventType::Normal,
                reason: "RolloutRestarted".to_owned(),
                note: Some(format!(
                    "restarted by kuvert: Secret data changed ({})",
                    secrets.join(", ")
                )),
                action: "Restart".to_owned(),
                secondary: None,
            };
            crate::externalsecret::report::publish(&self.ctx, &workload.reference(), &event).await;
        }
        let patched = !set.is_empty();
        let mut seen = seen_hashes(&current);
        seen.extend(set);
        let mut inner = self.lock();
        // Patched: the new rollout has not started yet.
        if inner.observed(workload, seen, rolled_out && !patched, (self.ctx.clock)()) {
            self.wake(&inner, workload);
        }
        // A labelled workload's watch shows its rollout; a named one is read again.
        if !inner.labelled.contains_key(workload) && (patched || !rolled_out) {
            let wait = match inner.polls.get(workload) {
                Some(last) if !patched => (*last * 2).min(LAST_POLL),
                _ => FIRST_POLL,
            };
            inner.polls.insert(workload.clone(), wait);
            inner
                .due
                .entry(workload.clone())
                .or_insert(Instant::now() + wait);
        } else {
            inner.polls.remove(workload);
        }
    }

    /// Reports a workload that could not be checked or patched: a log line, and a Warning
    /// Event on each ExternalSecret naming it (or on the workload, for a labelled one).
    async fn failed(
        &self,
        workload: &Workload,
        naming: &[ObjectReference],
        reason: &'static str,
        message: String,
    ) {
        tracing::warn!(%workload, reason, error = %message, "rollout restart failed");
        counted(workload, reason);
        let event = Event {
            type_: EventType::Warning,
            reason: reason.to_owned(),
            note: Some(message),
            action: "Restart".to_owned(),
            secondary: None,
        };
        let references = if naming.is_empty() {
            vec![workload.reference()]
        } else {
            naming.to_vec()
        };
        for reference in &references {
            crate::externalsecret::report::publish(&self.ctx, reference, &event).await;
        }
    }
}

/// A reference to an ExternalSecret, for Events about it.
fn es_reference(es: &ObjectRef<ExternalSecret>) -> ObjectReference {
    ObjectReference {
        api_version: Some(format!(
            "{}/{}",
            kuvert_core::api::GROUP,
            kuvert_core::api::VERSION
        )),
        kind: Some("ExternalSecret".to_owned()),
        namespace: es.namespace.clone(),
        name: Some(es.name.clone()),
        ..ObjectReference::default()
    }
}

fn counted(workload: &Workload, result: &str) {
    let kind = format!("{:?}", workload.kind);
    ::metrics::counter!(crate::metrics::WORKLOAD_RESTARTS, "kind" => kind, "result" => result.to_owned())
        .increment(1);
}

/// The `kuvert.io/secret-hash.*` annotations among a pod template's.
fn seen_hashes(annotations: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    annotations
        .iter()
        .filter(|(k, _)| k.starts_with(kuvert_core::api::SECRET_HASH_ANNOTATION_PREFIX))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use kuvert_core::api::WorkloadKind;

    use super::*;

    /// Rollouts over a client that is never called: these rules make no request.
    fn rollouts() -> Arc<Rollouts> {
        let config = kube::Config::new("http://127.0.0.1:9".parse().unwrap());
        let client = kube::Client::try_from(config).unwrap();
        let clock: crate::context::Clock =
            Arc::new(|| jiff::Timestamp::from_second(1_800_000_000).unwrap());
        let ctx = Context::with(
            client,
            crate::context::Settings::default(),
            clock,
            Arc::new(kuvert_generator_random::OsRandom::default()),
        );
        Rollouts::new(
            ctx,
            TargetCache::default(),
            Duration::from_secs(2),
            Duration::from_secs(600),
        )
    }

    fn naming(targets: &str) -> ExternalSecret {
        serde_saphyr::from_str(&format!(
            "apiVersion: kuvert.io/v1alpha1\nkind: ExternalSecret\nmetadata: {{name: app, namespace: ns}}\nspec:\n  target: {{rolloutRestartTargets: {targets}}}\n"
        ))
        .unwrap()
    }

    fn web() -> Workload {
        Workload {
            kind: WorkloadKind::Deployment,
            namespace: "ns".to_owned(),
            name: "web".to_owned(),
        }
    }

    fn due(rollouts: &Rollouts) -> Vec<String> {
        let mut due: Vec<String> = rollouts
            .lock()
            .due
            .keys()
            .map(ToString::to_string)
            .collect();
        due.sort();
        due
    }

    /// What a check finds and records: `web` carrying `hash` for Secret `app`.
    fn checked(rollouts: &Rollouts, hash: &str, rolled_out: bool) {
        let mut inner = rollouts.lock();
        inner.due.clear();
        let hashes = BTreeMap::from([(hash_annotation("app"), hash.to_owned())]);
        inner.observed(&web(), hashes, rolled_out, (rollouts.ctx.clock)());
    }

    #[tokio::test]
    async fn a_named_workload_is_checked_when_the_hash_it_was_seen_with_changes_and_only_then() {
        let rollouts = rollouts();
        let es = naming("[{kind: Deployment, name: web}]");
        rollouts.es_synced(&es, "app", Some("h1"));
        assert_eq!(
            due(&rollouts),
            ["Deployment ns/web"],
            "never seen: checked once"
        );
        checked(&rollouts, "h1", true);
        rollouts.es_synced(&es, "app", Some("h1"));
        assert!(
            due(&rollouts).is_empty(),
            "a refresh reading the same values"
        );
        rollouts.es_synced(&es, "app", None);
        assert!(due(&rollouts).is_empty(), "no Secret: nothing to carry");
        rollouts.es_synced(&es, "app", Some("h2"));
        assert_eq!(due(&rollouts), ["Deployment ns/web"]);
    }

    #[tokio::test]
    async fn a_labelled_workload_is_scheduled_only_when_behind_a_known_hash() {
        let rollouts = rollouts();
        let secrets = BTreeSet::from(["app".to_owned(), "unmanaged".to_owned()]);
        let carried = BTreeMap::from([(hash_annotation("app"), "h1".to_owned())]);
        // No hash is known for either Secret yet (nothing reported, nothing cached).
        rollouts.labelled_seen(web(), secrets.clone(), &carried, true);
        assert!(due(&rollouts).is_empty());
        // Its ExternalSecret reports the hash the template already carries: nothing to do.
        rollouts.es_synced(&naming("[]"), "app", Some("h1"));
        assert!(due(&rollouts).is_empty());
        rollouts.es_synced(&naming("[]"), "app", Some("h2"));
        assert_eq!(due(&rollouts), ["Deployment ns/web"]);
        rollouts.labelled_gone(&web());
        assert!(due(&rollouts).is_empty(), "gone: forgotten");
    }

    #[tokio::test]
    async fn the_status_says_whether_each_workload_runs_the_current_data_and_has_rolled_out() {
        let rollouts = rollouts();
        let es = naming("[{kind: Deployment, name: web}, {kind: DaemonSet, name: agent}]");
        rollouts.es_synced(&es, "app", Some("h2"));
        checked(&rollouts, "h1", true);
        let listed = |hash| -> Vec<(String, Option<String>, bool)> {
            rollouts
                .statuses(&es, "app", Some(hash))
                .into_iter()
                .map(|w| (w.name, w.secret_hash, w.up_to_date))
                .collect()
        };
        // Sorted by kind, then name; the DaemonSet was never observed.
        assert_eq!(
            listed("h2"),
            [
                ("web".to_owned(), Some("h1".to_owned()), false),
                ("agent".to_owned(), None, false),
            ]
        );
        checked(&rollouts, "h2", false);
        assert!(!listed("h2")[0].2, "carries the hash, still rolling out");
        checked(&rollouts, "h2", true);
        assert!(listed("h2")[0].2);
        let statuses = rollouts.statuses(&es, "app", Some("h2"));
        assert_eq!(
            statuses[0].observed_at,
            Some(Time(jiff::Timestamp::from_second(1_800_000_000).unwrap()))
        );
    }

    #[tokio::test]
    async fn a_deleted_external_secret_stops_being_followed() {
        let rollouts = rollouts();
        rollouts.es_synced(
            &naming("[{kind: Deployment, name: web}]"),
            "app",
            Some("h1"),
        );
        checked(&rollouts, "h1", false);
        rollouts.forget(|_| true);
        assert!(rollouts.lock().seen.contains_key(&web()));
        rollouts.forget(|_| false);
        let inner = rollouts.lock();
        assert!(inner.named.is_empty() && inner.seen.is_empty() && inner.reported.is_empty());
    }
}
