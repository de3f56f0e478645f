//! `kuvert dev`: the embedded default. Starts devcluster (an in-memory Kubernetes API server)
//! on loopback, installs kuvert's CRDs, writes a kubeconfig, runs the operator in-process
//! (unless `--no-operator`), applies the given manifests, and then either serves until Ctrl-C
//! or, with `--once`, waits for every ExternalSecret to be Ready or failed, prints the Secrets
//! and each Ready condition, and exits.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DynamicObject, ObjectMeta, Patch, PatchParams, PostParams};
use kube::{Resource, ResourceExt};
use kuvert_core::api::ExternalSecret;
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

/// Creates every object of the manifests (and any namespace they need), what others refer to
/// first ([`apply_order`]); returns the ExternalSecrets applied, as `(namespace, name)`.
async fn apply_all(
    client: &kube::Client,
    paths: &[PathBuf],
) -> anyhow::Result<Vec<(String, String)>> {
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
    let mut external_secrets = Vec::new();
    for manifest in manifests {
        if let Manifest::ExternalSecret(es) = &manifest {
            external_secrets.push((namespace_of(&es.metadata), es.name_any()));
        }
        apply(client, manifest).await?;
    }
    Ok(external_secrets)
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

/// Waits for each ExternalSecret to report on its current spec, then prints its Secret
/// (decoded) and Ready condition. Returns whether all are Ready.
async fn report_once(
    client: &kube::Client,
    external_secrets: &[(String, String)],
    timeout: Duration,
) -> anyhow::Result<bool> {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut all_ready = true;
    for (namespace, name) in external_secrets {
        let api: Api<ExternalSecret> = Api::namespaced(client.clone(), namespace);
        // A failure may be a race the operator repairs by itself (an ExternalSecret synced
        // before its store was seen): only a failure that lasts counts.
        let mut failing_since = None;
        let es = loop {
            let es = api.get(name).await?;
            let status = es.status.as_ref();
            let ready = status.and_then(|s| conditions::find_ready(&s.conditions));
            let current = status.is_some_and(|s| s.observed_generation == es.metadata.generation);
            let now = tokio::time::Instant::now();
            match ready.map(|c| c.status.as_str()) {
                Some("True") if current => break es,
                Some("False") if current => {
                    let since = *failing_since.get_or_insert(now);
                    if now - since >= SETTLE {
                        break es;
                    }
                }
                _ => failing_since = None,
            }
            if now > deadline {
                break es;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let ready = es
            .status
            .as_ref()
            .and_then(|s| conditions::find_ready(&s.conditions).cloned());
        println!("---");
        match &ready {
            Some(c) => println!(
                "# ExternalSecret {namespace}/{name}: Ready={} ({}) {}",
                c.status, c.reason, c.message
            ),
            None => println!(
                "# ExternalSecret {namespace}/{name}: no status after {}s",
                timeout.as_secs()
            ),
        }
        let is_ready = ready.as_ref().is_some_and(|c| c.status == "True");
        all_ready &= is_ready;
        let binding = es.status.as_ref().and_then(|s| s.binding.clone());
        if let (true, Some(binding)) = (is_ready, binding) {
            let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
            if let Some(secret) = secrets.get_opt(&binding.name).await? {
                print!("{}", crate::render::to_yaml(&secret, true));
            }
        }
    }
    Ok(all_ready)
}
