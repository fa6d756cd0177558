//! The scenario file format as users meet it: broken files get errors that name the
//! file, line, column and field; every example in `scenarios/` is valid; the checked-in
//! JSON Schema is the one derived from the types; any scenario survives a round trip.

use picasso_core::scenario::json_schema;
use picasso_core::{Scenario, load_file, parse_scenario};
use std::path::{Path, PathBuf};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn toml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    files
}

/// Each broken file gives its own diagnostic, naming file, line, column and field;
/// the messages are pinned as snapshots so a change in wording shows up in review.
#[test]
fn broken_files_are_rejected_with_located_messages() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/broken");
    let files = toml_files(&dir);
    assert!(
        files.len() >= 15,
        "want at least 15 broken files, have {}",
        files.len()
    );
    let mut report = String::new();
    for file in &files {
        let name = format!("broken/{}", file.file_name().unwrap().to_string_lossy());
        let text = std::fs::read_to_string(file).unwrap();
        let err = parse_scenario(&name, &text).expect_err(&format!("{name} should be rejected"));
        let diagnostics = err.diagnostics();
        assert!(!diagnostics.is_empty(), "{name}: no diagnostics");
        for d in diagnostics {
            assert_eq!(d.file, name);
            assert!(d.line >= 1 && d.column >= 1);
            assert!(!d.message.is_empty());
        }
        report.push_str(&err.to_string());
        report.push_str("\n\n");
    }
    insta::with_settings!({snapshot_path => repo_root().join("snapshots"), prepend_module_to_snapshot => false}, {
        insta::assert_snapshot!("broken_scenario_messages", report);
    });
}

/// Field paths point at the right place, not only somewhere in the file.
#[test]
fn diagnostics_point_at_the_offending_field() {
    let text = "seed = 1\n[[tenants]]\nhash = \"ab\"\nstreaming_percentage = 140\n";
    let err = parse_scenario("x.toml", text).unwrap_err();
    let d = &err.diagnostics()[0];
    assert_eq!((d.line, d.column), (4, 24));
    assert_eq!(d.path, "tenants[0].streaming_percentage");

    let text = "seed = 1\n[[tenants]]\nhash = \"ab\"\n\n[[tenants]]\nhash = \"cd\"\nstreaming_enable = true\n";
    let d = &parse_scenario("y.toml", text).unwrap_err().diagnostics()[0].clone();
    assert_eq!(d.line, 7);
    assert!(d.path.starts_with("tenants[1]"), "{}", d.path);
    assert!(d.message.contains("streaming_enable"), "{}", d.message);
}

/// Every example shipped in `scenarios/` is valid, and the embedded default too.
#[test]
fn every_example_scenario_is_valid() {
    let files = toml_files(&repo_root().join("scenarios"));
    assert!(!files.is_empty());
    for file in files {
        load_file(&file).unwrap_or_else(|e| panic!("{e}"));
    }
    Scenario::default_scenario();
}

/// Each fault kind has an example file that uses it.
#[test]
fn every_fault_kind_has_an_example() {
    let scenarios: Vec<Scenario> = toml_files(&repo_root().join("scenarios"))
        .iter()
        .map(|f| load_file(f).unwrap())
        .collect();
    for kind in picasso_core::scenario::FaultKind::ALL {
        assert!(
            scenarios
                .iter()
                .any(|s| s.faults.iter().any(|f| f.kind == kind)),
            "no example in scenarios/ uses fault kind {}",
            kind.as_str()
        );
    }
}

/// The schema editors read is the one the types derive; regenerate with
/// `cargo run -p picasso-sim -- schema > docs/scenario.schema.json`.
#[test]
fn checked_in_schema_matches_the_types() {
    let checked_in =
        std::fs::read_to_string(repo_root().join("docs/scenario.schema.json")).unwrap();
    assert_eq!(
        checked_in.trim_end(),
        json_schema().trim_end(),
        "docs/scenario.schema.json is stale"
    );
}
