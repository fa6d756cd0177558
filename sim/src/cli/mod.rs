//! The command line: clap types here, one module per subcommand below. Code below
//! this module never sees clap types.

mod schema;
mod validate;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// A deterministic simulation and mock environment for the Picasso streaming chat.
#[derive(Debug, Parser)]
#[command(name = "picasso-sim", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check scenario files; names file, line, column and field of every problem.
    Validate {
        /// Scenario files (TOML).
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Print the scenario format's JSON Schema.
    Schema,
}

/// What a subcommand reports back: how the process should exit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Status {
    /// Everything checked out.
    Ok,
    /// A check or a scenario failed.
    Failed,
    /// The input could not be used (unreadable file, bad arguments).
    InputError,
}

impl From<Status> for ExitCode {
    fn from(s: Status) -> ExitCode {
        match s {
            Status::Ok => ExitCode::SUCCESS,
            Status::Failed => ExitCode::from(1),
            Status::InputError => ExitCode::from(2),
        }
    }
}

pub(crate) fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            // clap: help and version are not errors.
            return if e.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    let status = match cli.command {
        Command::Validate { files } => validate::run(&files),
        Command::Schema => schema::run(),
    };
    status.into()
}
