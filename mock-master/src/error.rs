//! Every error the Master answers: a status with the JSON body `{"code", "message"}`.

use axum::response::{IntoResponse, Response};
use bedrock_client::BedrockError;
use http::{HeaderValue, StatusCode, header};

/// Why the Master refused or failed a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MasterError {
    /// Missing or malformed `action`, `t` or chat body: `400 INVALID_REQUEST`.
    #[error("invalid request: {0}")]
    Invalid(String),
    /// The tenant hash is well formed but unknown: `404 TENANT_NOT_FOUND`.
    #[error("unknown tenant `{0}`")]
    UnknownTenant(String),
    /// Bedrock throttled the call (after the SDK's retries): `429 BEDROCK_THROTTLED`.
    #[error("the model is busy: {0}")]
    Throttled(String),
    /// Bedrock failed otherwise: `502 BEDROCK_ERROR`.
    #[error("the model failed: {0}")]
    Bedrock(String),
    /// A scripted `status` fault: `INJECTED_FAULT` with the scripted status.
    #[error("injected fault: status {0}")]
    Injected(u16),
}

impl MasterError {
    /// The status and wire code.
    pub fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            MasterError::Invalid(_) => (StatusCode::BAD_REQUEST, "INVALID_REQUEST"),
            MasterError::UnknownTenant(_) => (StatusCode::NOT_FOUND, "TENANT_NOT_FOUND"),
            MasterError::Throttled(_) => (StatusCode::TOO_MANY_REQUESTS, "BEDROCK_THROTTLED"),
            MasterError::Bedrock(_) => (StatusCode::BAD_GATEWAY, "BEDROCK_ERROR"),
            MasterError::Injected(status) => (
                StatusCode::from_u16(*status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                "INJECTED_FAULT",
            ),
        }
    }
}

impl From<BedrockError> for MasterError {
    fn from(e: BedrockError) -> Self {
        match &e {
            BedrockError::Refused {
                status: Some(429), ..
            } => MasterError::Throttled(e.to_string()),
            _ => MasterError::Bedrock(e.to_string()),
        }
    }
}

impl IntoResponse for MasterError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        let mut response = http_serve::error_response(status, code, self.to_string());
        if status == StatusCode::TOO_MANY_REQUESTS {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}
