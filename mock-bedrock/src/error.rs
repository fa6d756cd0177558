//! Bedrock's HTTP error shape (bedrock-wire.md §6.1): a status, the code in
//! `x-amzn-errortype`, and a body `{"message": …}` with a lowercase key.
//!
//! Every SDK reads the code from the header first, so the header is what makes an
//! error arrive as the SDK's typed exception (`is_throttling_exception()`, boto3's
//! `client.exceptions.ThrottlingException`, JS's `ThrottlingException` class).

use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use picasso_core::scenario::FaultKind;

/// The suffix real Bedrock appends to the error type; every SDK strips it.
const ERRORTYPE_SUFFIX: &str = ":http://internal.amazon.com/coral/com.amazon.bedrock/";

/// An error response as Bedrock sends it before any body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code} ({status}): {message}")]
pub struct ApiError {
    /// The error code, e.g. `ThrottlingException`.
    pub code: &'static str,
    /// The HTTP status.
    pub status: StatusCode,
    /// The human message (always present: SDKs show "Unknown" without one).
    pub message: String,
    /// Extra members of the error shape (`ModelErrorException` has two).
    pub extra: Vec<(&'static str, serde_json::Value)>,
}

impl ApiError {
    fn new(code: &'static str, status: u16, message: impl Into<String>) -> ApiError {
        ApiError {
            code,
            status: StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            message: message.into(),
            extra: Vec::new(),
        }
    }

    /// `ValidationException` (400): the request is malformed.
    pub fn validation(message: impl Into<String>) -> ApiError {
        ApiError::new("ValidationException", 400, message)
    }

    /// `UnknownOperationException` (404): no Bedrock operation lives at this path.
    pub fn unknown_operation() -> ApiError {
        ApiError::new("UnknownOperationException", 404, "Unknown operation")
    }

    /// The error a pre-stream fault kind stands for; `None` for kinds that are not
    /// HTTP errors (delays and mid-stream faults).
    pub fn for_fault(kind: FaultKind) -> Option<ApiError> {
        let (code, status) = kind.bedrock_error()?;
        Some(ApiError::new(code, status, fault_message(kind)))
    }

    /// The HTTP error closest to a mid-stream exception, for the operations that do
    /// not stream: a broken generation on `Converse` surfaces as a model error.
    pub fn for_stream_exception(exception_type: &str) -> ApiError {
        let kind = match exception_type {
            "throttlingException" => FaultKind::Throttling,
            "validationException" => FaultKind::Validation,
            "internalServerException" => FaultKind::Internal,
            "serviceUnavailableException" => FaultKind::ServiceUnavailable,
            "modelTimeoutException" => FaultKind::ModelTimeout,
            _ => {
                let mut err = ApiError::new(
                    "ModelErrorException",
                    424,
                    "The model failed while generating the answer (mock fault).",
                );
                err.extra = vec![
                    ("originalStatusCode", serde_json::json!(500)),
                    ("resourceName", serde_json::json!("mock-bedrock")),
                ];
                return err;
            }
        };
        ApiError::for_fault(kind).unwrap_or_else(ApiError::unknown_operation)
    }

    /// The response, stamped with the request id every Bedrock answer carries.
    pub fn into_response_with_id(self, request_id: &str) -> Response {
        let mut response = self.into_response();
        if let Ok(value) = HeaderValue::from_str(request_id) {
            response.headers_mut().insert("x-amzn-RequestId", value);
        }
        response
    }
}

impl ApiError {
    /// The body: `{"message": …}` plus the shape's extra members.
    pub fn body(&self) -> String {
        let mut body = serde_json::Map::new();
        body.insert("message".into(), self.message.clone().into());
        for (key, value) in &self.extra {
            body.insert((*key).into(), value.clone());
        }
        serde_json::Value::Object(body).to_string()
    }

    /// The `x-amzn-errortype` header value, with the suffix real Bedrock appends.
    pub fn errortype(&self) -> String {
        format!("{}{}", self.code, ERRORTYPE_SUFFIX)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let errortype = self.errortype();
        let mut response = (self.status, self.body()).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if let Ok(value) = HeaderValue::from_str(&errortype) {
            headers.insert("x-amzn-errortype", value);
        }
        response
    }
}

/// Messages in the words real Bedrock uses, so logs in tests read like production.
fn fault_message(kind: FaultKind) -> &'static str {
    match kind {
        FaultKind::Throttling => "Too many requests, please wait before trying again.",
        FaultKind::Validation => "The provided request is not valid.",
        FaultKind::AccessDenied => {
            "You don't have access to the model with the specified model ID."
        }
        FaultKind::ResourceNotFound => "The requested resource could not be found.",
        FaultKind::ModelTimeout => "Model has timed out in processing the request.",
        FaultKind::ModelNotReady => "Model is not ready to serve inference requests.",
        FaultKind::ServiceUnavailable => "Bedrock is unable to process your request.",
        FaultKind::Internal => "The system encountered an unexpected error during processing.",
        _ => "Mock fault.",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_pre_stream_fault_has_its_status_and_errortype() {
        for kind in FaultKind::ALL {
            let Some(err) = ApiError::for_fault(kind) else {
                continue;
            };
            let (code, status) = kind.bedrock_error().unwrap();
            let response = err.into_response_with_id("r-1");
            assert_eq!(response.status().as_u16(), status);
            let errortype = response.headers()["x-amzn-errortype"].to_str().unwrap();
            assert_eq!(errortype.split(':').next(), Some(code));
            assert_eq!(response.headers()["x-amzn-RequestId"], "r-1");
        }
    }

    #[test]
    fn model_error_carries_its_extra_members() {
        let err = ApiError::for_stream_exception("modelStreamErrorException");
        assert_eq!(err.status.as_u16(), 424);
        assert_eq!(err.code, "ModelErrorException");
        assert!(err.extra.iter().any(|(k, _)| *k == "originalStatusCode"));
    }
}
