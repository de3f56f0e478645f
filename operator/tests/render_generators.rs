//! `kuvert render` and `kuvert dev --once` run the generators of `examples/generators`: a
//! password of the asked shape and a version 4 UUID, fresh on every render.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

fn example() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/generators")
}

/// The `stringData` of the one Secret printed.
fn string_data(stdout: &str) -> BTreeMap<String, String> {
    let doc = stdout
        .split("\n---\n")
        .last()
        .unwrap()
        .trim_start_matches("---\n");
    let secret: serde_json::Value = serde_saphyr::from_str(doc).unwrap();
    serde_json::from_value(secret["stringData"].clone()).unwrap()
}

fn assert_generated_shape(data: &BTreeMap<String, String>) {
    assert_eq!(data.keys().collect::<Vec<_>>(), ["instance-id", "password"]);
    let password = &data["password"];
    assert_eq!(password.chars().count(), 32);
    assert_eq!(password.chars().filter(|c| c.is_ascii_digit()).count(), 6);
    assert_eq!(password.chars().filter(|c| "-_.+!".contains(*c)).count(), 4);
    assert_eq!(
        password.chars().filter(|c| c.is_ascii_alphabetic()).count(),
        22
    );
    let id = &data["instance-id"];
    assert_eq!(id.len(), 36);
    assert_eq!(&id[14..15], "4", "{id}");
    assert!("89ab".contains(&id[19..20]), "{id}");
}

fn render() -> BTreeMap<String, String> {
    let output = Command::new(env!("CARGO_BIN_EXE_kuvert"))
        .args(["render", "--decode", "-f"])
        .arg(example())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    string_data(&String::from_utf8(output.stdout).unwrap())
}

#[test]
fn render_generates_a_password_and_uuid_of_the_asked_shape_afresh_each_time() {
    let first = render();
    assert_generated_shape(&first);
    let second = render();
    assert_generated_shape(&second);
    assert_ne!(first["password"], second["password"]);
    assert_ne!(first["instance-id"], second["instance-id"]);
}

#[test]
#[cfg(feature = "dev")]
fn dev_once_syncs_the_generators_example_without_vault() {
    let dir = std::env::temp_dir().join(format!("kuvert-dev-generators-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_kuvert"))
        .current_dir(&dir)
        .args(["dev", "--once", "-f"])
        .arg(example())
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.starts_with("---\n# ExternalSecret default/app-generated: Ready=True (SecretSynced) Secret default/app-generated is in sync (2 keys)\n"),
        "{stdout}"
    );
    assert_generated_shape(&string_data(&stdout));
}
