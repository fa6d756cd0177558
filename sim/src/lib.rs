//! The Picasso widget model and the deterministic simulator.
//!
//! Layout:
//! - [`sse_parser`]: the WHATWG event-stream parser, sans-IO;
//! - [`eventsource`]: the browser's `EventSource` as a sans-IO state machine;
//! - [`netstack`]: the browser's CORS check, exposed headers and keep-alive reuse;
//! - [`widget`]: the widget as a pure state machine, three policies;
//! - [`inproc`]: the in-process wiring (SDK HTTP client, config source, virtual clock);
//! - [`driver`]: one session's widget driven against the servers' routers;
//! - [`simulator`]: a whole run, its transcript, the determinism check;
//! - [`invariants`]: the §B.7 invariants as checks over a run;
//! - [`story`]: what a run showed, in sentences computed from it;
//! - [`suite`]: the regression suite (jobs, golden transcripts) that `picasso-sim run` prints;
//! - [`demo`]: the fault-injection demos that `picasso-sim demo` prints;
//! - [`rollout`]: the rollout rehearsal (criteria, decision tree, dashboard, reports);
//! - [`swarm`]: generated campaigns that search for a broken invariant and shrink it;
//! - [`oracle`]: what a JavaScript widget and its Rust oracle must agree on.
//!
//! The `picasso-sim` binary (the `cli/` crate) parses arguments and prints; everything
//! it prints is computed here, so a team can drive the same from its own tests.

pub mod bench;
pub mod demo;
pub mod driver;
pub use picasso_browser::{eventsource, netstack, sse_parser};
pub mod inproc;
pub mod invariants;
pub mod oracle;
pub mod rollout;
pub mod simulator;
pub mod story;
pub mod suite;
pub mod swarm;
pub mod widget;

pub use invariants::{Property, Violation};
pub use picasso_world::Transport;
pub use simulator::{
    BedrockCalls, Outcome, RunOptions, SimError, check_determinism, check_determinism_via,
    run_scenario, run_with,
};
pub use widget::Policy;
