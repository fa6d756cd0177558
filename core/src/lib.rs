//! What every part of the Picasso streaming-chat test world shares.
//!
//! The mock servers, the gateway and the simulator all speak in the types of this
//! crate, so a scenario file means the same thing to each of them.
//!
//! Layout:
//! - [`bounds`]: the largest numbers a scenario may hold, and saturating time arithmetic;
//! - [`scenario`]: the model of a scenario (tenants, scripted answers, faults,
//!   sessions, limits) and the embedded default scenario;
//! - [`load`]: the TOML file format, with errors that name file, line, column and field;
//! - [`wire`]: the wire contracts (tenant config, chat bodies, SSE frames, error codes);
//! - [`fault`]: which scripted fault strikes which request;
//! - [`live`]: the scenario a server plays now, with its fault books (reload, config change, strike);
//! - [`rng`]: the one seed and the labelled, order-independent random streams drawn from it;
//! - [`testing`]: the case count every property test in the workspace reads.
//!
//! This crate has no async runtime and no HTTP stack, so it builds and tests fast.

pub mod bounds;
pub mod fault;
pub mod live;
pub mod load;
pub mod rng;
pub mod scenario;
pub mod testing;
pub mod wire;

pub use load::{ScenarioError, load_file, parse_scenario};
pub use scenario::Scenario;
