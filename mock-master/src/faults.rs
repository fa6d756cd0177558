//! What a struck `master_config` / `master_chat` fault does to the answer.
//!
//! `latency` delays the real answer; `status` replaces it with an error status;
//! `drop` cuts the connection (in-process: a response marked [`ConnectionDropped`]
//! whose body fails at once; under `serve`: the connection closes with no answer);
//! `malformed_body` is a `200` whose JSON is cut off mid-way. Only `latency` lets the
//! request reach Bedrock.

use axum::body::Body;
use axum::response::Response;
use http::{HeaderValue, StatusCode, header};

/// Marks a response that stands for a dropped connection. `serve` closes the
/// connection instead of answering; in-process callers should check for it.
pub use http_serve::CloseConnection as ConnectionDropped;

/// The body error of a dropped connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the connection dropped (injected fault)")]
pub struct Dropped;

/// The stand-in for a dropped connection.
pub fn dropped() -> Response {
    http_serve::closed_connection(StatusCode::OK, Dropped)
}

/// A `200` whose body is JSON cut off mid-way.
pub fn malformed(partial: &str) -> Response {
    let mut response = Response::new(Body::from(partial.to_owned()));
    *response.status_mut() = StatusCode::OK;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}
