//! `kuvert render` as a black box: every case in `tests/render/<case>/` is rendered by the real
//! binary and compared with what it must print.
//!
//! A case holds `input.yaml` (or an `input/` folder), `expected.yaml` (stdout), and, when
//! objects fail, `expected.stderr` (the exit status is then 1 when it holds an `error:` line,
//! else 0: `note:` lines only say what render does nothing with). An optional `args`
//! file holds extra arguments, one per line (e.g. `--decode`). `KUVERT_BLESS=1 cargo test`
//! rewrites the expectations from the current output (review the diff before committing).

use std::path::{Path, PathBuf};
use std::process::Command;

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/render")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

#[test]
fn every_render_case_prints_exactly_what_it_expects() {
    let bless = std::env::var_os("KUVERT_BLESS").is_some();
    let mut cases: Vec<PathBuf> = std::fs::read_dir(corpus())
        .expect("tests/render exists")
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    cases.sort();
    assert!(cases.len() >= 10, "the corpus lost cases: {cases:?}");
    let mut failures = Vec::new();
    for case in &cases {
        let input = if case.join("input").is_dir() {
            case.join("input")
        } else {
            case.join("input.yaml")
        };
        let args: Vec<String> = read(&case.join("args"))
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(str::to_owned)
            .collect();
        let output = Command::new(env!("CARGO_BIN_EXE_kuvert"))
            .current_dir(case)
            .arg("render")
            .arg("-f")
            .arg(input.file_name().unwrap())
            .args(&args)
            .output()
            .expect("kuvert runs");
        let stdout = String::from_utf8(output.stdout).unwrap();
        let stderr = String::from_utf8(output.stderr).unwrap();
        if bless {
            std::fs::write(case.join("expected.yaml"), &stdout).unwrap();
            if stderr.is_empty() {
                let _ = std::fs::remove_file(case.join("expected.stderr"));
            } else {
                std::fs::write(case.join("expected.stderr"), &stderr).unwrap();
            }
            continue;
        }
        let name = case.file_name().unwrap().to_string_lossy();
        let want_stderr = read(&case.join("expected.stderr"));
        // Notes (objects that do nothing offline) are said on stderr without failing.
        let want_code = i32::from(want_stderr.lines().any(|l| l.starts_with("error:")));
        if stdout != read(&case.join("expected.yaml")) {
            failures.push(format!("{name}: stdout differs:\n{stdout}"));
        }
        // Cases plant values named PLANTED-...: none may reach a message.
        if stderr.contains("PLANTED") {
            failures.push(format!("{name}: a planted secret value reached stderr"));
        }
        if stderr != want_stderr {
            failures.push(format!("{name}: stderr differs:\n{stderr}"));
        }
        if output.status.code() != Some(want_code) {
            failures.push(format!(
                "{name}: exit status {:?}, want {want_code}",
                output.status
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn render_reads_folders_in_name_order_and_several_paths() {
    let dir = corpus().join("folder-input");
    let output = Command::new(env!("CARGO_BIN_EXE_kuvert"))
        .args(["render", "-f"])
        .arg(dir.join("input"))
        .arg(corpus().join("basic-data").join("input.yaml"))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8(output.stdout).unwrap();
    let names: Vec<&str> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("  name: "))
        .collect();
    assert_eq!(names, ["first", "second", "basic"]);
}

#[test]
fn a_missing_file_is_an_error_line_and_a_failure() {
    let output = Command::new(env!("CARGO_BIN_EXE_kuvert"))
        .args(["render", "-f", "/nonexistent/kuvert.yaml"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        stderr.starts_with("error: /nonexistent/kuvert.yaml: cannot read:"),
        "{stderr}"
    );
}

#[test]
fn the_offline_examples_render_cleanly() {
    for example in ["quickstart", "templating"] {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../examples")
            .join(example);
        let output = Command::new(env!("CARGO_BIN_EXE_kuvert"))
            .args(["render", "--decode", "-f"])
            .arg(&dir)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{example}: {stderr}");
        let stdout = String::from_utf8(output.stdout).unwrap();
        assert!(
            stdout.starts_with("---\napiVersion: v1\nkind: Secret\n"),
            "{example}: {stdout}"
        );
    }
}
