//! The mock Master Function: tenant config and the regular (non-streaming) chat,
//! exactly as `system.md` gives them, answered through Bedrock like production.
//!
//! - `GET /Master_Function?action=get_config&t={tenant_hash}` → `200` with the
//!   tenant's config (design document §1.3: `tenant_hash`, `features`, `endpoints`,
//!   plus `allowed_origins`); `endpoints.chat` always, `endpoints.streaming` only for
//!   streaming tenants when a streaming URL is configured. Unknown tenant `404`,
//!   missing or malformed `t` `400`, both JSON.
//! - `POST /Master_Function?action=chat` with `{"tenant_hash", "user_input",
//!   "session_id", "message_id"}` → `200 {"message_id", "session_id", "content",
//!   "type": "text"}` from Bedrock's `Converse` (caller `master`).
//! - Scripted faults at `master_config` / `master_chat`: latency, status, drop,
//!   malformed body, per tenant, session and message.
//! - `GET /metrics`: Prometheus text.
//!
//! Time comes from `tokio::time` only and every `select!` is `biased;`, so the
//! simulator can run this router in-process under a paused clock.
//!
//! Error codes: `INVALID_REQUEST` (400), `TENANT_NOT_FOUND` (404), `BEDROCK_THROTTLED`
//! (429, `Retry-After: 1`), `BEDROCK_ERROR` (502), `INJECTED_FAULT` (the scripted status).

pub mod error;
pub mod faults;
pub mod metrics;
#[cfg(test)]
mod route_tests;
pub mod routes;
pub mod server;
mod state;
#[cfg(test)]
mod testing;

pub use error::MasterError;
pub use faults::ConnectionDropped;
pub use server::{serve, serve_router};
pub use state::{MasterOptions, MasterState, config_of};

/// The Master's router: `/Master_Function` (GET, POST, OPTIONS) and `/metrics`.
pub fn app(state: MasterState) -> axum::Router {
    routes::router(state)
}
