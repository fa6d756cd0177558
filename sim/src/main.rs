//! `picasso-sim`: the one binary users run. Parses the command line and hands off to
//! `cli`; exit codes are 0 (all good), 1 (a check or scenario failed) and 2 (a usage
//! or input error), so scripts and CI jobs can act on them.

mod cli;

use std::process::ExitCode;

fn main() -> ExitCode {
    cli::main()
}
