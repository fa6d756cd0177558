//! The streaming gateway: the design document's "Streaming Lambda".
//!
//! `GET /?tenant_hash&user_input&session_id&message_id` answers with Server-Sent
//! Events exactly as `system.md` specifies: `text` frames as Bedrock's tokens arrive,
//! then `end`, each with `id: {message_id}:{seq}`; refusals before the stream are a
//! status with `{"code", "message"}`; failures after it are an error frame, then close.
//!
//! Time comes only from `tokio::time`, every `select!` is `biased;`, and maps that can
//! reach output are `BTreeMap`s, so the simulator can run this very router in-process
//! under a paused clock and get the same answer every time.
//!
//! Layout:
//! - [`params`]: the query parameters and their checks (`STREAM_003`);
//! - [`tenants`]: tenant configs from the Master, cached for `limits.config_ttl_ms`;
//! - [`cors`]: the tenant's widget origins only, and the preflight;
//! - [`rate_limit`]: N stream requests per session per rolling window (`429`);
//! - [`generation`]: one answer per message (`204`, replay, join; the Bedrock call);
//! - [`sse`]: the frame bytes and response headers;
//! - [`faults`]: injected `gateway` and `network` faults;
//! - [`metrics`]: `/metrics` in Prometheus text format;
//! - [`error`]: the one error type that becomes a refusal;
//! - [`routes`] and [`server`]: the router and `serve` with graceful shutdown.
//!
//! Error frame codes: `STREAM_004` when the stream cap strikes; `STREAM_001` when
//! Bedrock fails, when the server shuts down, and (in a kept answer) when the last
//! reader left before the end. A tenant config that cannot be fetched is refused
//! with `502` and code `CONFIG_UNAVAILABLE`.

pub mod cors;
pub mod error;
pub mod faults;
pub mod generation;
#[cfg(test)]
mod isolation_tests;
pub mod metrics;
pub mod outcome;
pub mod params;
pub mod rate_limit;
#[cfg(test)]
mod route_tests;
pub mod routes;
pub mod server;
pub mod sse;
mod state;
pub mod tenants;
#[cfg(test)]
mod testing;

pub use error::GatewayError;
pub use faults::ConnectionRefused;
pub use server::serve;
pub use state::{GatewayOptions, GatewayState};
pub use tenants::{
    ConfigError, ConfigSource, HttpConfigSource, HttpTransport, MasterConfigSource,
    MasterTransport, RouterConfigSource, RouterTransport,
};

/// The gateway's router: `GET /`, `OPTIONS /`, `GET /metrics`.
pub fn app(state: GatewayState) -> axum::Router {
    routes::router(state)
}

/// Sleeps until `deadline`, or forever when there is none (a limit too large to add
/// to the clock: scenario numbers never overflow an `Instant`).
pub(crate) async fn sleep_until_or_never(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
