//! `kuvert migrate` as users run it: the binary's output, problems on stderr, exit codes, and
//! nothing written when anything cannot move.

use std::path::PathBuf;
use std::process::Command;

const GOOD: &str = "apiVersion: external-secrets.io/v1\nkind: ExternalSecret\nmetadata: {name: app, namespace: apps}\nspec:\n  secretStoreRef: {name: s}\n  target:\n    template:\n      engineVersion: v2\n      data: {url: '{{ .host | printf \"https://%s\" }}'}\n  data:\n  - {secretKey: host, remoteRef: {key: host}}\n";
const BAD: &str = "apiVersion: external-secrets.io/v1\nkind: SecretStore\nmetadata: {name: aws, namespace: apps}\nspec:\n  provider:\n    aws: {service: SecretsManager, region: eu-west-1}\n";

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("kuvert-migrate-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn kuvert(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_kuvert"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn a_clean_set_is_printed_written_or_checked() {
    let d = dir("good");
    let input = d.join("eso.yaml");
    std::fs::write(&input, GOOD).unwrap();
    let input = input.to_str().unwrap();

    let (code, stdout, _) = kuvert(&["migrate", "-f", input]);
    assert_eq!(code, 0);
    assert!(
        stdout.contains("apiVersion: kuvert.io/v1alpha1"),
        "{stdout}"
    );
    assert!(
        stdout.contains(r#"printf(\"https://%s\", host)"#),
        "{stdout}"
    );
    assert!(!stdout.contains("engineVersion"), "{stdout}");

    let (code, stdout, stderr) = kuvert(&["migrate", "-f", input, "--check"]);
    assert_eq!((code, stdout.as_str()), (0, ""), "{stderr}");

    let out = d.join("out");
    let (code, _, _) = kuvert(&["migrate", "-f", input, "--out", out.to_str().unwrap()]);
    assert_eq!(code, 0);
    assert!(
        std::fs::read_to_string(out.join("eso.yaml"))
            .unwrap()
            .contains("kind: ExternalSecret")
    );
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn a_problem_is_named_on_stderr_exits_1_and_writes_nothing() {
    let d = dir("bad");
    std::fs::write(d.join("a-good.yaml"), GOOD).unwrap();
    std::fs::write(d.join("b-bad.yaml"), BAD).unwrap();
    let out = d.join("out");
    let (code, stdout, stderr) = kuvert(&[
        "migrate",
        "-f",
        d.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 1);
    assert_eq!(stdout, "");
    assert!(
        stderr.contains(
            "b-bad.yaml: SecretStore apps/aws: spec.provider.aws: kuvert has no aws provider"
        ),
        "{stderr}"
    );
    assert!(stderr.contains("nothing was written"), "{stderr}");
    assert!(!out.exists(), "not even the good file");
    std::fs::remove_dir_all(&d).unwrap();
}
