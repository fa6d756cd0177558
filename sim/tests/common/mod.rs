//! What several test files share: the shipped scenarios, loaded once per call.

use picasso_core::Scenario;
use std::path::{Path, PathBuf};

/// The embedded default scenario (as `default`), then every `scenarios/*.toml` by file
/// stem, in name order.
pub fn shipped_scenarios() -> Vec<(String, Scenario)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    files.retain(|p| p.extension().is_some_and(|e| e == "toml"));
    files.sort();
    let mut out = vec![("default".to_owned(), Scenario::default_scenario())];
    for f in files {
        let name = f
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let scenario = picasso_core::load_file(&f).unwrap_or_else(|e| panic!("{e}"));
        out.push((name, scenario));
    }
    out
}
