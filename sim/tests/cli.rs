//! End-to-end tests of the `picasso-sim` binary: each subcommand as a user runs it,
//! checking output and exit codes (0 good, 1 a check failed, 2 a usage or input error).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn picasso_sim(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_picasso-sim"))
        .args(args)
        .current_dir(repo_root())
        .output()
        .expect("the binary runs")
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `validate` accepts every shipped scenario and exits 0.
#[test]
fn validate_accepts_the_examples() {
    let mut files: Vec<String> = std::fs::read_dir(repo_root().join("scenarios"))
        .unwrap()
        .map(|e| format!("scenarios/{}", e.unwrap().file_name().to_string_lossy()))
        .collect();
    files.sort();
    let args: Vec<&str> = std::iter::once("validate")
        .chain(files.iter().map(String::as_str))
        .collect();
    let out = picasso_sim(&args);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout)
            .lines()
            .filter(|l| l.starts_with("ok  "))
            .count(),
        files.len()
    );
}

/// A broken file: exit 1, and the message names file, line, column and field.
#[test]
fn validate_rejects_a_broken_file_with_its_location() {
    let out = picasso_sim(&[
        "validate",
        "core/tests/broken/05-percentage-out-of-range.toml",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("core/tests/broken/05-percentage-out-of-range.toml:5:24: tenants[0].streaming_percentage:"),
        "{stderr}"
    );
}

/// A missing file is an input error: exit 2.
#[test]
fn validate_missing_file_is_an_input_error() {
    let out = picasso_sim(&["validate", "no/such/file.toml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("no/such/file.toml: cannot read"));
}

/// A bad flag is a usage error: exit 2.
#[test]
fn unknown_flag_is_a_usage_error() {
    assert_eq!(
        picasso_sim(&["validate", "--frobnicate"]).status.code(),
        Some(2)
    );
}

/// `schema` prints the JSON Schema that is checked in under docs/.
#[test]
fn schema_prints_the_checked_in_schema() {
    let out = picasso_sim(&["schema"]);
    assert_eq!(out.status.code(), Some(0));
    let printed: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("the schema is JSON");
    let checked_in: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(repo_root().join("docs/scenario.schema.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(printed, checked_in);
    assert_eq!(printed["title"], "Scenario");
}
