//! Every refusal before a stream starts: an HTTP status with the contract's JSON body
//! `{"code", "message"}`. After the `200`, failures are error frames instead (see
//! [`crate::generation`]).

use crate::params::ParamError;
use crate::tenants::ConfigError;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use picasso_core::wire::Code;

/// Why the gateway refused a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GatewayError {
    /// Missing, empty, oversized or malformed parameters: `400 STREAM_003`.
    #[error("invalid streaming parameters: {0}")]
    Params(#[from] ParamError),
    /// The request target is longer than the gateway reads: `414 STREAM_003`.
    #[error("the URL is longer than {0} bytes")]
    UriTooLong(usize),
    /// The tenant is unknown to the Master: `403 STREAM_002`.
    #[error("unknown tenant")]
    UnknownTenant,
    /// The tenant exists but may not stream: `403 STREAM_002`.
    #[error("streaming is not enabled for this tenant")]
    StreamingDisabled,
    /// A browser on an origin that is not the tenant's: `403 ORIGIN_NOT_ALLOWED`.
    #[error("this origin may not use the tenant's stream")]
    OriginNotAllowed,
    /// Over the per-session limit: `429 RATE_LIMITED` with `Retry-After`.
    #[error("too many stream requests for this session; retry in {retry_after_s} s")]
    RateLimited {
        /// Seconds until a slot frees.
        retry_after_s: u64,
    },
    /// The Master could not say whether the tenant may stream: `502 CONFIG_UNAVAILABLE`.
    #[error("cannot check the tenant: {0}")]
    Config(#[from] ConfigError),
}

impl GatewayError {
    /// The status and wire code.
    pub fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            GatewayError::Params(_) => (StatusCode::BAD_REQUEST, Code::Stream003.as_str()),
            GatewayError::UriTooLong(_) => (StatusCode::URI_TOO_LONG, Code::Stream003.as_str()),
            GatewayError::UnknownTenant | GatewayError::StreamingDisabled => {
                (StatusCode::FORBIDDEN, Code::Stream002.as_str())
            }
            GatewayError::OriginNotAllowed => {
                (StatusCode::FORBIDDEN, Code::OriginNotAllowed.as_str())
            }
            GatewayError::RateLimited { .. } => {
                (StatusCode::TOO_MANY_REQUESTS, Code::RateLimited.as_str())
            }
            GatewayError::Config(_) => (StatusCode::BAD_GATEWAY, "CONFIG_UNAVAILABLE"),
        }
    }
}

impl IntoResponse for GatewayError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        let mut response = http_serve::error_response(status, code, self.to_string());
        if let GatewayError::RateLimited { retry_after_s } = self {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_s));
        }
        response
    }
}
