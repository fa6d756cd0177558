//! `picasso-sim validate PATH…`: checks scenario files (a directory: its `.toml` files,
//! as `run` reads it) and says what is wrong, where.

use super::Status;
use picasso_core::{ScenarioError, load_file};
use std::path::PathBuf;

/// Validates every file; reports each problem on stderr and a one-line verdict per file.
/// Exit status: 1 if any file is invalid, 2 if any could not be read.
pub(crate) fn run(files: &[PathBuf]) -> Status {
    let mut status = Status::Ok;
    let mut expanded = Vec::new();
    for path in files {
        match picasso_simulator::suite::expand(path) {
            Ok(found) => expanded.extend(found),
            Err(e) => {
                eprintln!("error: {e}");
                status = Status::InputError;
            }
        }
    }
    for file in &expanded {
        match load_file(file) {
            Ok(scenario) => outln!(
                "ok  {} ({} tenants, {} sessions, {} faults)",
                file.display(),
                scenario.tenants.len(),
                scenario.sessions.len(),
                scenario.faults.len()
            ),
            Err(e @ ScenarioError::Io { .. }) => {
                eprintln!("error: {e}");
                status = Status::InputError;
            }
            Err(e) => {
                eprintln!("{e}\n");
                outln!(
                    "bad {} ({} problems)",
                    file.display(),
                    e.diagnostics().len()
                );
                if status == Status::Ok {
                    status = Status::Failed;
                }
            }
        }
    }
    status
}
