//! The bytes on the wire, read over a raw TCP socket with no SDK in between:
//! what bedrock-wire.md says about HTTP/1.1 framing and response headers.

use crate::support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Sends one HTTP/1.1 request with `Connection: close` and returns the head (status
/// line and headers, lowercased names) and the raw body bytes as sent.
async fn raw_http1(endpoint: std::net::SocketAddr, path: &str, body: &str) -> (String, Vec<u8>) {
    let mut socket = TcpStream::connect(endpoint).await.unwrap();
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: {endpoint}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    socket.write_all(request.as_bytes()).await.unwrap();
    let mut all = Vec::new();
    tokio::time::timeout(
        std::time::Duration::from_secs(10),
        socket.read_to_end(&mut all),
    )
    .await
    .expect("the mock answers within 10 s")
    .unwrap();
    let split = all
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a complete head");
    let head = String::from_utf8_lossy(&all[..split]).to_lowercase();
    (head, all[split + 4..].to_vec())
}

fn converse_body() -> String {
    serde_json::json!({"messages": [{"role": "user", "content": [{"text": PROMPT}]}]}).to_string()
}

fn anthropic_body() -> String {
    serde_json::json!({
        "anthropic_version": "bedrock-2023-05-31",
        "max_tokens": 100,
        "messages": [{"role": "user", "content": PROMPT}],
    })
    .to_string()
}

/// Streams over HTTP/1.1 go chunked, with no `Content-Length` (§2), and carry
/// `x-amzn-RequestId`; IMWRS adds `X-Amzn-Bedrock-Content-Type` (§1).
#[tokio::test]
async fn http1_streams_are_chunked_with_bedrocks_headers() {
    let mock = start().await;
    let model = MODEL.replace(':', "%3A");
    for (action, body) in [
        ("converse-stream", converse_body()),
        ("invoke-with-response-stream", anthropic_body()),
    ] {
        let (head, raw) =
            raw_http1(mock.address(), &format!("/model/{model}/{action}"), &body).await;
        assert!(head.starts_with("http/1.1 200"), "{head}");
        assert!(head.contains("\r\ntransfer-encoding: chunked"), "{head}");
        assert!(!head.contains("\r\ncontent-length:"), "{head}");
        assert!(
            head.contains("\r\ncontent-type: application/vnd.amazon.eventstream"),
            "{head}"
        );
        assert!(head.contains("\r\nx-amzn-requestid: "), "{head}");
        let bedrock_content_type =
            head.contains("\r\nx-amzn-bedrock-content-type: application/json");
        assert_eq!(
            bedrock_content_type,
            action == "invoke-with-response-stream",
            "{head}"
        );
        assert!(
            raw.ends_with(b"0\r\n\r\n"),
            "the chunked body is terminated"
        );
    }
}

/// InvokeModel carries the token-count and latency headers (§1, §5).
#[tokio::test]
async fn invoke_model_sends_the_usage_headers() {
    let mock = start().await;
    let (head, _) = raw_http1(
        mock.address(),
        &format!("/model/{}/invoke", MODEL.replace(':', "%3A")),
        &anthropic_body(),
    )
    .await;
    assert!(head.starts_with("http/1.1 200"), "{head}");
    for header in [
        "x-amzn-bedrock-input-token-count: ",
        "x-amzn-bedrock-output-token-count: 5\r\n",
        "x-amzn-bedrock-invocation-latency: ",
        "x-amzn-requestid: ",
    ] {
        assert!(head.contains(header), "{header} missing: {head}");
    }
}

/// Every response carries `x-amzn-RequestId` (§1), errors refused before any
/// operation is reached included: an unknown path, an unknown action, a method
/// other than POST.
#[tokio::test]
async fn every_response_has_a_request_id() {
    let mock = start().await;
    for path in [
        "/nothing/here",
        "/model/m.x/chat",
        "/model/a/b/c/converse",
        "/model/m.x/converse",
    ] {
        let (head, _) = raw_http1(mock.address(), path, "{").await;
        assert!(head.contains("\r\nx-amzn-errortype: "), "{path}: {head}");
        assert!(head.contains("\r\nx-amzn-requestid: "), "{path}: {head}");
    }
}
