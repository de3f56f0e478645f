//! `kuvert`: keeps Kubernetes Secrets in sync with external secret stores.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};

/// mimalloc rather than glibc's malloc: under a reconcile's many small, short-lived
/// allocations glibc kept several MiB more resident than the live heap (bench/README.md, P5).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// kuvert keeps Kubernetes Secrets in sync with external secret stores.
#[derive(Parser, Debug)]
#[command(
    name = "kuvert",
    version,
    about = "kuvert keeps Kubernetes Secrets in sync with external secret stores"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Print every CRD as multi-document YAML (what `crds/` holds).
    Crds {
        /// Write one file per CRD into this folder instead of printing; repeat it to write
        /// several (`make generate` writes `crds/` and the chart's `files/crds/`).
        #[arg(long)]
        out_dir: Vec<PathBuf>,
    },
    /// Run the operator against the cluster of the in-cluster config or KUBECONFIG.
    // Boxed: its many flags make it the largest variant by far (clippy's large_enum_variant).
    Run(Box<kuvert_operator::run::RunArgs>),
    /// The embedded default: an in-memory API server with the operator running against it.
    #[cfg(feature = "dev")]
    Dev(kuvert_operator::dev::DevArgs),
    /// Sync every ExternalSecret of some manifests once, offline, and print the Secrets.
    Render {
        /// Manifest files or folders (a folder's *.yaml and *.yml files, sorted).
        #[arg(short = 'f', long = "filename", required = true, num_args = 1..)]
        files: Vec<PathBuf>,
        /// Print values as plain `stringData` instead of base64 `data`.
        #[arg(long)]
        decode: bool,
    },
    /// Translate ESO manifests (external-secrets.io) into kuvert's, Go templates into Jinja;
    /// anything that cannot move is listed and the exit is non-zero, with nothing written.
    Migrate {
        /// ESO manifest files or folders (a folder's *.yaml and *.yml files, sorted).
        #[arg(short = 'f', long = "filename", required = true, num_args = 1..)]
        files: Vec<PathBuf>,
        /// Write one file per input file into this folder instead of printing.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Translate and check everything, write nothing (a CI gate).
        #[arg(long)]
        check: bool,
    },
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Crds { out_dir } if out_dir.is_empty() => {
            print!("{}", kuvert_core::crds::all_yaml())
        }
        Command::Crds { out_dir } => {
            for dir in &out_dir {
                write_crds(dir)?;
            }
        }
        Command::Render { files, decode } => render(&files, decode)?,
        Command::Migrate { files, out, check } => {
            let code = kuvert_operator::migrate::run(&files, out.as_deref(), check)?;
            if code != 0 {
                std::process::exit(code);
            }
        }
        Command::Run(args) => run(*args)?,
        #[cfg(feature = "dev")]
        Command::Dev(args) => dev(args)?,
    }
    Ok(())
}

/// `kuvert run`: the operator, until SIGTERM or Ctrl-C.
fn run(args: kuvert_operator::run::RunArgs) -> anyhow::Result<()> {
    kuvert_operator::run::init_logging(args.log_format, &args.log_level)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let config = kube::Config::infer()
            .await
            .context("finding Kubernetes (in-cluster config or KUBECONFIG)")?;
        let client = kuvert_operator::run::client(config, &args)?;
        kuvert_operator::run::run(args, client).await
    })
}

/// `kuvert dev`: exits 1 when `--once` found an ExternalSecret that did not sync.
#[cfg(feature = "dev")]
fn dev(args: kuvert_operator::dev::DevArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    if !runtime.block_on(kuvert_operator::dev::run(args))? {
        std::process::exit(1);
    }
    Ok(())
}

/// `kuvert render`: Secrets on stdout, one line per failure (and per object that does nothing
/// offline) on stderr, exit 1 on any failure.
fn render(files: &[PathBuf], decode: bool) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let registry = kuvert_operator::providers::Registry::builtin();
    let out = runtime.block_on(async {
        let out = kuvert_operator::render::render(files, decode, &registry).await;
        // Tokens logged in for (Vault AppRole, ...) are revoked, not left to expire.
        registry.shutdown().await;
        out
    });
    print!("{}", out.yaml);
    for note in &out.notes {
        eprintln!("note: {note}");
    }
    for error in &out.errors {
        eprintln!("error: {error}");
    }
    if !out.errors.is_empty() {
        std::process::exit(1);
    }
    Ok(())
}

/// Writes `<plural>.<group>.yaml` per CRD, removing stale files of kinds that no longer exist.
fn write_crds(dir: &std::path::Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let crds = kuvert_core::crds::all();
    let wanted: Vec<String> = crds.iter().map(kuvert_core::crds::file_name).collect();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if name.ends_with(".yaml") && !wanted.iter().any(|w| w == name) {
            std::fs::remove_file(&path)?;
        }
    }
    for (crd, name) in crds.iter().zip(&wanted) {
        let path = dir.join(name);
        std::fs::write(&path, kuvert_core::crds::to_yaml(crd))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}
