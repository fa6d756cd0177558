//! The `{"code", "message"}` JSON body every refusal of the gateway and the Master
//! carries (system.md), written once: the same bytes whichever server refuses.
//! (Mock Bedrock answers with Bedrock's own error shape, `mock_bedrock::ApiError`.)

use axum::body::Body;
use axum::response::Response;
use http::{HeaderValue, StatusCode, header};
use picasso_core::wire::ErrorBody;

/// A `status` answer whose body is `{"code": code, "message": message}`, as
/// `application/json`.
pub fn error_response(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    json_response(
        status,
        &ErrorBody {
            code: code.into(),
            message: message.into(),
        },
    )
}

/// A `status` answer with `body` as JSON.
pub fn json_response(status: StatusCode, body: &ErrorBody) -> Response {
    // Serialising two strings cannot fail.
    let mut response = Response::new(Body::from(serde_json::to_vec(body).unwrap_or_default()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::response::IntoResponse;
    use http_body_util::BodyExt;

    async fn bytes(response: Response) -> (http::HeaderMap, bytes::Bytes) {
        let (parts, body) = response.into_parts();
        (parts.headers, body.collect().await.unwrap().to_bytes())
    }

    /// The same bytes and headers as axum's `Json` (what the Master used to write), so
    /// moving a server onto this helper changes nothing on the wire.
    #[tokio::test]
    async fn same_bytes_as_axum_json() {
        let body = ErrorBody {
            code: "NOT_FOUND".into(),
            message: "quote \" and é".into(),
        };
        let ours = bytes(error_response(
            StatusCode::NOT_FOUND,
            &body.code,
            body.message.clone(),
        ))
        .await;
        let axums = bytes((StatusCode::NOT_FOUND, axum::Json(body)).into_response()).await;
        assert_eq!(ours, axums);
        assert_eq!(
            ours.1,
            r#"{"code":"NOT_FOUND","message":"quote \" and é"}"#.as_bytes()
        );
    }
}
