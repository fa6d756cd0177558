//! The server edge the three servers share (mock Bedrock, the Master Function and the
//! streaming gateway), as functions and `tower` layers:
//!
//! - [`serve`] ([`accept`]): the one accept loop: HTTP/1.1 and h2c on one port,
//!   graceful shutdown within a grace period, per-server [`Edge`] settings;
//! - [`close`]: closing a connection on purpose, the way scripted refused and dropped
//!   connections are played ([`CloseConnection`], [`CloseConnectionLayer`]);
//! - [`parse_errors`]: JSON bodies on the few answers hyper writes by itself;
//! - [`error_body`]: the `{"code", "message"}` refusal body;
//! - [`metrics`]: requests counted on arrival ([`metrics::CountRequestsLayer`]) and the
//!   `/metrics` answer;
//! - [`cors`]: CORS mechanics (exact origin match, answer and preflight headers).
//!
//! What stays with each server, because it differs: which faults strike where and
//! what they do to a body (the gateway counts SSE frames, mock Bedrock event-stream
//! frames), which routes count under which label, and each server's CORS policy.

pub mod accept;
pub mod close;
pub mod cors;
pub mod error_body;
pub mod metrics;
pub mod on_wake;
pub mod parse_errors;

pub use accept::{Edge, SHUTDOWN_GRACE, serve};
pub use close::{CloseConnection, CloseConnectionLayer, closed_connection};
pub use error_body::{error_response, json_response};
pub use parse_errors::ParseErrorBodies;
