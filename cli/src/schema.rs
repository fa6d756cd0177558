//! `picasso-sim schema`: the scenario format's JSON Schema, derived from the types.

use super::Status;

/// Prints the schema to stdout.
pub(crate) fn run() -> Status {
    out!("{}", picasso_core::scenario::json_schema());
    Status::Ok
}
