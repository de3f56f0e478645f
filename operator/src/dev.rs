//! `kuvert dev`: the embedded default. Starts devcluster (an in-memory Kubernetes API server)
//! on loopback, installs kuvert's CRDs, writes a kubeconfig, runs the operator in-process
//! (unless `--no-operator`), applies the given manifests, and then either serves until Ctrl-C
//! or, with `--once`, waits for every ClusterExternalSecret and ExternalSecret (those of the
//! manifests and those stamped) to be Ready or failed, prints the Secrets and each Ready
//! condition, and exits.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::api::{Api, DynamicObject, ObjectMeta, Patch, PatchParams, PostParams};
use kube::{Resource, ResourceExt};
use kuvert_core::api::{ClusterExternalSecret, ExternalSecret};
use kuvert_core::conditions;
use kuvert_core::generator::GeneratorObject;
use kuvert_core::manifest::Manifest;
use kuvert_devcluster::{Config, DevCluster};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::run::{LogFormat, RunArgs};

/// Flags of `kuvert dev`.
#[derive(clap::Args, Debug, Clone)]
pub struct DevArgs {
    /// Manifests to apply once the cluster is up (files or folders of `*.yaml`).
    #[arg(short = 'f', long = "filename", num_args = 1..)]
    pub files: Vec<PathBuf>,
    /// Wait until every ExternalSecret is Ready or failed, print the Secrets and statuses,
    /// and exit (non-zero if any failed).
    #[arg(long)]
    pub once: bool,
    /// Address to listen on (default: a free loopback port).
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    /// Where to write the kubeconfig for the dev cluster.
    #[arg(long, default_value = "kuvert-dev.kubeconfig")]
    pub kubeconfig: PathBuf,
    /// Serve only the API server (e.g. to run `kuvert run` against it as a separate process).
    #[arg(long)]
    pub no_operator: bool,
    /// How long `--once` waits for every ExternalSecret to report.
    #[arg(long, default_value = "60s", value_parser = crate::run::parse_duration)]
    pub timeout: Duration,
    /// Log filter of the in-process operator (`--once` reports failures itself).
    #[arg(long, default_value = "error", env = "KUVERT_LOG")]
    pub log_level: String,
}

/// Runs `kuvert dev`; returns whether every ExternalSecret synced (always true without
/// `--once`).
pub async fn run(args: DevArgs) -> anyhow::Result<bool> {
    crate::run::init_logging(LogFormat::Text, &args.log_level)?;
    let mut config = Config::default();
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    let cluster = DevCluster::start(config)
        .await
        .context("starting the dev cluster")?;
    let client = cluster.client().context("connecting to the dev cluster")?;
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in kuvert_core::crds::all() {
        crds.create(&PostParams::default(), &crd)
            .await
            .with_context(|| format!("installing CRD {}", crd.name_any()))?;
    }
    cluster
        .write_kubeconfig(&args.kubeconfig)
        .with_context(|| format!("writing {}", args.kubeconfig.display()))?;

    // Every object exists before the operator starts, so its first reconciles find the stores
    // their ExternalSecrets name, whatever order the files list them in.
    let applied = apply_all(&client, &args.files).await?;
    if !args.no_operator {
        let run_args = RunArgs {
            metrics_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            concurrency: 16,
            namespace: None,
            cluster_stores: None,
            controller_class: None,
            coalesce_window: Duration::from_secs(5),
            per_object_metrics: false,
            log_format: LogFormat::Text,
            log_level: args.log_level.clone(),
            instance: Some("kuvert-dev".to_owned()),
            kube_qps: 0.0,
            kube_burst: 1,
            leader_election: false,
            leader_election_namespace: "default".to_owned(),
            leader_election_lease_duration: Duration::from_secs(15),
            lease_renew_fraction: kuvert_core::lease::DEFAULT_RENEW_FRACTION,
            rollout_window: Duration::from_secs(2),
            rollout_behind_threshold: Duration::from_secs(600),
            limits: crate::budget::LimitArgs::default(),
        };
        let operator_client = client.clone();
        tokio::spawn(async move {
            if let Err(e) = crate::run::run(run_args, operator_client).await {
                eprintln!("error: the operator stopped: {e:#}");
            }
        });
    }

    if args.once {
        if args.no_operator {
            anyhow::bail!("--once needs the operator: drop --no-operator");
        }
        let ok = report_once(&client, &applied, args.timeout).await?;
        // Exit at once: tearing the cluster down under the running operator would only log
        // the operator's lost connections.
        use std::io::Write as _;
        std::io::stdout().flush()?;
        std::process::exit(if ok { 0 } else { 1 });
    }

    eprintln!(
        "devcluster serving at {} with kuvert's CRDs installed",
        cluster.url()
    );
    if !args.no_operator {
        eprintln!("the kuvert operator is running against it");
    }
    eprintln!("kubeconfig written to {}; try:", args.kubeconfig.display());
    eprintln!("  export KUBECONFIG={}", args.kubeconfig.display());
    eprintln!("  kubectl get externalsecrets,secretstores -A");
    eprintln!("Press Ctrl-C to stop (state is kept in memory only).");
    crate::run::shutdown_signal().await?;
    cluster.shutdown().await;
    Ok(true)
}

/// What `--once` waits for and reports.
#[derive(Default)]
struct Applied {
    /// The ExternalSecrets of the manifests, as `(namespace, name)`.
    external_secrets: Vec<(String, String)>,
    /// The ClusterExternalSecrets of the manifests, by name.
    cluster_external_secrets: Vec<String>,
}

/// Creates every object of the manifests (and any namespace they need), what others refer to
/// first ([`apply_order`]); returns what `--once` reports on.
async fn apply_all(client: &kube::Client, paths: &[PathBuf]) -> anyhow::Result<Applied> {
    let mut errors = Vec::new();
    let files = crate::render::files(paths, &mut errors);
    if let Some(error) = errors.first() {
        anyhow::bail!("{error}");
    }
    let mut manifests = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file)
            .with_context(|| format!("reading {}", file.display()))?;
        manifests.extend(Manifest::parse_all(&file.display().to_string(), &text)?);
    }
    manifests.sort_by_key(apply_order);
    let mut applied = Applied::default();
    for manifest in manifests {
        match &manifest {
            Manifest::ExternalSecret(es) => applied
                .external_secrets
                .push((namespace_of(&es.metadata), es.name_any())),
            Manifest::ClusterExternalSecret(ces) => {
                applied.cluster_external_secrets.push(ces.name_any())
            }
            _ => {}
        }
        apply(client, manifest).await?;
    }
    Ok(applied)
}

/// When a manifest is applied: what objects refer to (credentials, templates, generators,
/// stores) before what refers to them, so that an operator already running (`--no-operator`
/// beside a `kuvert run`) never sees a reference to an object about to be created.
fn apply_order(manifest: &Manifest) -> u8 {
    match manifest {
        // Namespaces first, with their labels: store admission reads them.
        Manifest::Namespace(_) => 0,
        Manifest::Secret(_) | Manifest::ConfigMap(_) => 1,
        Manifest::Generator(_) => 2,
        Manifest::SecretStore(_) | Manifest::ClusterSecretStore(_) => 3,
        Manifest::ExternalSecret(_)
        | Manifest::ClusterExternalSecret(_)
        | Manifest::PushSecret(_) => 4,
    }
}

fn namespace_of(meta: &ObjectMeta) -> String {
    meta.namespace
        .clone()
        .unwrap_or_else(|| "default".to_owned())
}

async fn apply(client: &kube::Client, manifest: Manifest) -> anyhow::Result<()> {
    match manifest {
        Manifest::SecretStore(o) => namespaced(client, o).await,
        Manifest::ClusterSecretStore(o) => cluster_scoped(client, o).await,
        Manifest::ExternalSecret(o) => namespaced(client, o).await,
        Manifest::ClusterExternalSecret(o) => cluster_scoped(client, o).await,
        Manifest::PushSecret(o) => namespaced(client, o).await,
        Manifest::Generator(o) => generator(client, o).await,
        Manifest::Secret(o) => namespaced::<Secret>(client, o).await,
        Manifest::ConfigMap(o) => namespaced::<ConfigMap>(client, o).await,
        Manifest::Namespace(o) => namespace(client, o).await,
    }
}

/// A Namespace from the manifests: created, or (made earlier for an object in it) given its
/// labels and annotations, so its order in the files does not matter.
async fn namespace(client: &kube::Client, object: Namespace) -> anyhow::Result<()> {
    let name = object.name_any();
    let namespaces: Api<Namespace> = Api::all(client.clone());
    if namespaces.get_opt(&name).await?.is_none() {
        namespaces
            .create(&PostParams::default(), &object)
            .await
            .with_context(|| format!("creating Namespace {name}"))?;
        return Ok(());
    }
    let patch = serde_json::json!({"metadata": {
        "labels": object.metadata.labels,
        "annotations": object.metadata.annotations,
    }});
    namespaces
        .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .with_context(|| format!("labelling Namespace {name}"))?;
    Ok(())
}

async fn namespaced<K>(client: &kube::Client, mut object: K) -> anyhow::Result<()>
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + Serialize
        + DeserializeOwned
        + std::fmt::Debug,
{
    let namespace = namespace_of(object.meta());
    object.meta_mut().namespace = Some(namespace.clone());
    ensure_namespace(client, &namespace).await?;
    let kind = K::kind(&());
    let name = object.name_any();
    Api::<K>::namespaced(client.clone(), &namespace)
        .create(&PostParams::default(), &object)
        .await
        .with_context(|| format!("creating {kind} {namespace}/{name}"))?;
    Ok(())
}

/// A generator object of any kind, through its CRD's API resource.
async fn generator(client: &kube::Client, object: GeneratorObject) -> anyhow::Result<()> {
    let namespace = namespace_of(&object.metadata);
    ensure_namespace(client, &namespace).await?;
    let (kind, name) = (
        object.kind,
        object.metadata.name.clone().unwrap_or_default(),
    );
    let mut dynamic: DynamicObject = serde_json::from_value(object.to_json())?;
    dynamic.metadata.namespace = Some(namespace.clone());
    Api::<DynamicObject>::namespaced_with(client.clone(), &namespace, &kind.api_resource())
        .create(&PostParams::default(), &dynamic)
        .await
        .with_context(|| format!("creating {kind} {namespace}/{name}"))?;
    Ok(())
}

async fn cluster_scoped<K>(client: &kube::Client, object: K) -> anyhow::Result<()>
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::ClusterResourceScope>
        + Clone
        + Serialize
        + DeserializeOwned
        + std::fmt::Debug,
{
    let kind = K::kind(&());
    let name = object.name_any();
    Api::<K>::all(client.clone())
        .create(&PostParams::default(), &object)
        .await
        .with_context(|| format!("creating {kind} {name}"))?;
    Ok(())
}

async fn ensure_namespace(client: &kube::Client, name: &str) -> anyhow::Result<()> {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    if namespaces.get_opt(name).await?.is_none() {
        let namespace = Namespace {
            metadata: ObjectMeta {
                name: Some(name.to_owned()),
                ..ObjectMeta::default()
            },
            ..Namespace::default()
        };
        namespaces
            .create(&PostParams::default(), &namespace)
            .await
            .with_context(|| format!("creating Namespace {name}"))?;
    }
    Ok(())
}

/// How long an ExternalSecret must stay failed before `--once` reports it failed.
const SETTLE: Duration = Duration::from_secs(3);

/// Waits for each ClusterExternalSecret (for the namespaces it stamps), then for each
/// ExternalSecret (those of the manifests and those stamped) to report on its current spec, and
/// prints each one's Ready condition (and its Secret, decoded); the ClusterExternalSecrets come
/// last, once they count their settled ExternalSecrets. Returns whether all are Ready.
async fn report_once(
    client: &kube::Client,
    applied: &Applied,
    timeout: Duration,
) -> anyhow::Result<bool> {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut all_ready = true;
    let mut external_secrets = applied.external_secrets.clone();
    let cess: Api<ClusterExternalSecret> = Api::all(client.clone());
    for name in &applied.cluster_external_secrets {
        let ces = settled(&cess, name, deadline, ces_ready).await?;
        let stamped = kuvert_core::stamping::external_secret_name(&ces);
        let status = ces.status.unwrap_or_default();
        external_secrets.extend(
            status
                .provisioned_namespaces
                .into_iter()
                .map(|namespace| (namespace, stamped.clone())),
        );
    }
    for (namespace, name) in &external_secrets {
        let api: Api<ExternalSecret> = Api::namespaced(client.clone(), namespace);
        let es = settled(&api, name, deadline, |es| {
            let status = es.status.as_ref();
            let ready = status.and_then(|s| conditions::find_ready(&s.conditions));
            let current = status.is_some_and(|s| s.observed_generation == es.metadata.generation);
            (ready.cloned(), current)
        })
        .await?;
        let status = es.status.clone().unwrap_or_default();
        let is_ready = print_ready(
            "ExternalSecret",
            &format!("{namespace}/{name}"),
            &status.conditions,
            timeout,
        );
        all_ready &= is_ready;
        if let (true, Some(binding)) = (is_ready, status.binding) {
            let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
            if let Some(secret) = secrets.get_opt(&binding.name).await? {
                print!("{}", crate::render::to_yaml(&secret, true));
            }
        }
    }
    // Each ClusterExternalSecret last, once it has counted its settled ExternalSecrets.
    for name in &applied.cluster_external_secrets {
        let counted = tokio::time::Instant::now() + SETTLE;
        let ces = loop {
            let ces = settled(&cess, name, deadline, ces_ready).await?;
            let now = tokio::time::Instant::now();
            let pending = ces
                .status
                .as_ref()
                .is_some_and(|s| !s.not_ready_namespaces.is_empty());
            if !pending || now > counted || now > deadline {
                break ces;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let status = ces.status.unwrap_or_default();
        all_ready &= print_ready("ClusterExternalSecret", name, &status.conditions, timeout);
        for failed in &status.failed_namespaces {
            println!(
                "#   {}: {}",
                failed.namespace,
                failed.reason.as_deref().unwrap_or_default()
            );
        }
    }
    Ok(all_ready)
}

/// A ClusterExternalSecret's Ready condition, and whether it is on its current spec.
fn ces_ready(ces: &ClusterExternalSecret) -> (Option<Condition>, bool) {
    let ready = ces
        .status
        .as_ref()
        .and_then(|s| conditions::find_ready(&s.conditions));
    let current = ready.is_some_and(|c| c.observed_generation == ces.metadata.generation);
    (ready.cloned(), current)
}

/// Polls an object until its Ready condition is on its current spec and either True or False
/// for [`SETTLE`], or the deadline passes; returns it as last read. A failure may be a race the
/// operator repairs by itself (an ExternalSecret synced before its store was seen): only a
/// failure that lasts counts. `ready` gives the Ready condition and whether it is current.
async fn settled<K>(
    api: &Api<K>,
    name: &str,
    deadline: tokio::time::Instant,
    ready: impl Fn(&K) -> (Option<Condition>, bool),
) -> anyhow::Result<K>
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug,
{
    let mut failing_since = None;
    loop {
        let object = api.get(name).await?;
        let (condition, current) = ready(&object);
        let now = tokio::time::Instant::now();
        match condition.as_ref().map(|c| c.status.as_str()) {
            Some("True") if current => return Ok(object),
            Some("False") if current => {
                let since = *failing_since.get_or_insert(now);
                if now - since >= SETTLE {
                    return Ok(object);
                }
            }
            _ => failing_since = None,
        }
        if now > deadline {
            return Ok(object);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Prints `# KIND NAME: Ready=...` (or that it has no status); returns whether it is Ready.
fn print_ready(kind: &str, name: &str, conditions: &[Condition], timeout: Duration) -> bool {
    println!("---");
    match conditions::find_ready(conditions) {
        Some(c) => {
            println!(
                "# {kind} {name}: Ready={} ({}) {}",
                c.status, c.reason, c.message
            );
            c.status == "True"
        }
        None => {
            println!("# {kind} {name}: no status after {}s", timeout.as_secs());
            false
        }
    }
}
