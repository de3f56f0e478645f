//! The container image recipe (`Dockerfile`, `.dockerignore`), checked without a container
//! engine (none runs where the tests do): the runtime stage copies the binary
//! `cargo build --release` makes, every shared library kuvert links is one the runtime base
//! ships, it runs as the non-root UID the chart's Pod security context names, it needs no
//! shell, and the chart's default image is this release's.

use std::path::PathBuf;
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn read(path: &str) -> String {
    std::fs::read_to_string(root().join(path)).unwrap()
}

/// The Dockerfile's instructions per stage: (instruction, arguments), continuation lines
/// joined and comments dropped.
fn stages() -> Vec<Vec<(String, String)>> {
    let text = read("Dockerfile").replace("\\\n", " ");
    let mut stages: Vec<Vec<(String, String)>> = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (instruction, args) = line.split_once(' ').unwrap_or((line, ""));
        let instruction = instruction.to_uppercase();
        if instruction == "FROM" {
            stages.push(Vec::new());
        }
        let args = args.split_whitespace().collect::<Vec<_>>().join(" ");
        stages
            .last_mut()
            .expect("FROM first")
            .push((instruction, args));
    }
    stages
}

fn args<'a>(stage: &'a [(String, String)], instruction: &str) -> Vec<&'a str> {
    stage
        .iter()
        .filter(|(i, _)| i == instruction)
        .map(|(_, a)| a.as_str())
        .collect()
}

#[test]
fn the_image_builds_the_release_binary_and_runs_it_as_the_charts_non_root_user_without_a_shell() {
    let stages = stages();
    assert_eq!(stages.len(), 2, "a build stage and a runtime stage");
    let (build, runtime) = (&stages[0], &stages[1]);

    assert_eq!(
        args(build, "FROM"),
        ["docker.io/library/rust:1.95-slim-bookworm AS build"]
    );
    assert_eq!(
        args(build, "RUN"),
        [
            "--mount=type=cache,target=/usr/local/cargo/registry --mount=type=cache,target=/src/target cargo build --release --locked -p kuvert-operator --bin kuvert --no-default-features && install -D -m 0755 target/release/kuvert /out/kuvert"
        ]
    );
    // `target/release/kuvert` is where that command leaves the binary: the operator package
    // has a bin target `kuvert`, and the workspace's target directory is `target`.
    let metadata = Command::new(env!("CARGO"))
        .args(["metadata", "--no-deps", "--format-version", "1"])
        .current_dir(root())
        .output()
        .unwrap();
    let metadata: serde_json::Value = serde_json::from_slice(&metadata.stdout).unwrap();
    assert_eq!(
        PathBuf::from(metadata["target_directory"].as_str().unwrap()),
        root().canonicalize().unwrap().join("target")
    );
    let operator = metadata["packages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "kuvert-operator")
        .unwrap();
    assert!(
        operator["targets"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["name"] == "kuvert" && t["kind"][0] == "bin")
    );

    assert_eq!(
        args(runtime, "FROM"),
        ["gcr.io/distroless/cc-debian12:nonroot"]
    );
    assert_eq!(
        args(runtime, "COPY"),
        ["--from=build /out/kuvert /usr/local/bin/kuvert"]
    );
    // Exec form only, and no RUN or SHELL: the runtime base has no shell to run them with.
    assert_eq!(
        args(runtime, "ENTRYPOINT"),
        [r#"["/usr/local/bin/kuvert"]"#]
    );
    assert_eq!(args(runtime, "CMD"), [r#"["run"]"#]);
    assert_eq!(args(runtime, "RUN"), Vec::<&str>::new());
    assert_eq!(args(runtime, "SHELL"), Vec::<&str>::new());
    // A numeric UID, so that the kubelet can enforce the chart's runAsNonRoot, and the same
    // one the chart's securityContext names.
    assert_eq!(args(runtime, "USER"), ["65532:65532"]);
    let deployment = read("charts/kuvert/templates/deployment.yaml");
    assert!(
        deployment.contains("runAsUser: 65532\n") && deployment.contains("runAsGroup: 65532\n")
    );
    assert_eq!(args(runtime, "EXPOSE"), ["8080"]);
    assert!(read("charts/kuvert/values.yaml").contains("\n  port: 8080\n"));
}

/// What distroless `cc` ships besides the kernel's vDSO: glibc (libc, libm, the dynamic
/// loader) and libgcc.
const RUNTIME_LIBRARIES: &[&str] = &[
    "linux-vdso.so.1",
    "libc.so.6",
    "libm.so.6",
    "libgcc_s.so.1",
    "/lib64/ld-linux-x86-64.so.2",
];

#[test]
fn kuvert_links_only_libraries_the_runtime_base_ships() {
    // The release build links the same libraries as this one (its profile changes only
    // optimisation and LTO, and leaving out the `dev` feature only drops pure-Rust code); TLS
    // is rustls and mimalloc is compiled in, so no OpenSSL.
    let out = Command::new("ldd")
        .arg(env!("CARGO_BIN_EXE_kuvert"))
        .output()
        .expect("ldd");
    let linked: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| l.split_whitespace().next().unwrap().to_owned())
        .collect();
    let missing: Vec<&String> = linked
        .iter()
        .filter(|l| !RUNTIME_LIBRARIES.contains(&l.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "kuvert links libraries distroless/cc lacks: {missing:?}"
    );
}

#[test]
fn the_charts_default_image_is_this_release() {
    // The root manifest's `[workspace.package]` version.
    let manifest = read("Cargo.toml");
    let version = manifest
        .split_once("[workspace.package]\nversion = \"")
        .unwrap()
        .1
        .split_once('"')
        .unwrap()
        .0;
    assert!(
        read("charts/kuvert/Chart.yaml").contains(&format!("\nappVersion: \"{version}\"\n")),
        "Chart.yaml's appVersion is not the workspace version {version}"
    );
    assert!(read("charts/kuvert/values.yaml").contains("\n  repository: ghcr.io/kuvert/kuvert\n"));
}

#[test]
fn the_build_context_leaves_out_build_output_history_and_kubeconfigs_but_not_the_sources() {
    let ignored: Vec<String> = read(".dockerignore")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(String::from)
        .collect();
    for must in ["/target", "/.git", "*.kubeconfig"] {
        assert!(ignored.iter().any(|i| i == must), "{must} is not ignored");
    }
    // `cargo build --locked` needs Cargo.lock and every workspace member's sources.
    let manifest = read("Cargo.toml");
    let members = manifest
        .split_once("members = [")
        .unwrap()
        .1
        .split_once(']')
        .unwrap()
        .0;
    for member in members.split(',').map(|m| m.trim().trim_matches('"')) {
        assert!(
            !ignored
                .iter()
                .any(|i| member.starts_with(i.trim_start_matches('/'))),
            "workspace member {member} is left out of the build context"
        );
    }
    assert!(!ignored.iter().any(|i| i.contains("Cargo")));
}
