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

/// One HTTP/2 frame: (type, flags, stream id, payload).
type H2Frame = (u8, u8, u32, Vec<u8>);

fn h2_frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = payload.len() as u32;
    let mut out = len.to_be_bytes()[1..].to_vec();
    out.extend_from_slice(&[kind, flags]);
    out.extend_from_slice(&stream.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

async fn read_h2_frame(socket: &mut TcpStream) -> Option<H2Frame> {
    let mut head = [0u8; 9];
    socket.read_exact(&mut head).await.ok()?;
    let len = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
    let stream = u32::from_be_bytes([head[5] & 0x7f, head[6], head[7], head[8]]);
    let mut payload = vec![0u8; len];
    socket.read_exact(&mut payload).await.ok()?;
    Some((head[3], head[4], stream, payload))
}

/// HPACK "literal header field without indexing, new name", short strings only.
fn hpack_literal(out: &mut Vec<u8>, name: &str, value: &str) {
    assert!(name.len() < 127 && value.len() < 127);
    out.push(0x00);
    out.push(name.len() as u8);
    out.extend_from_slice(name.as_bytes());
    out.push(value.len() as u8);
    out.extend_from_slice(value.as_bytes());
}

/// h2c with prior knowledge, and a client GOAWAY as soon as the response headers
/// arrive, as the JS SDK sends it (bedrock-wire.md §1): the stream in flight still
/// runs to its last event.
#[tokio::test]
async fn h2c_streams_outlive_the_clients_goaway() {
    let mock = start().await;
    mock.script(picasso_core::scenario::Answer {
        id: "slow".into(),
        model: None,
        prompt: Some("slow".into()),
        pattern: None,
        tokens: ["a", "b", "c", "d"]
            .iter()
            .map(|t| picasso_core::scenario::Token {
                text: (*t).into(),
                delay_ms: 40,
            })
            .collect(),
        text: None,
        pacing: None,
        usage: None,
        stop_reason: Default::default(),
    });
    let mut socket = TcpStream::connect(mock.address()).await.unwrap();
    let body = serde_json::json!({"messages": [{"role": "user", "content": [{"text": "slow"}]}]})
        .to_string();
    let mut headers = Vec::new();
    hpack_literal(&mut headers, ":method", "POST");
    hpack_literal(&mut headers, ":scheme", "http");
    hpack_literal(
        &mut headers,
        ":path",
        &format!("/model/{}/converse-stream", MODEL.replace(':', "%3A")),
    );
    hpack_literal(&mut headers, ":authority", &mock.address().to_string());
    hpack_literal(&mut headers, "content-type", "application/json");
    let mut hello = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    hello.extend(h2_frame(4, 0, 0, &[]));
    hello.extend(h2_frame(1, 0x4, 1, &headers));
    hello.extend(h2_frame(0, 0x1, 1, body.as_bytes()));
    socket.write_all(&hello).await.unwrap();

    let mut status_seen = false;
    let mut data = Vec::new();
    let ended = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        while let Some((kind, flags, stream, payload)) = read_h2_frame(&mut socket).await {
            match (kind, stream) {
                // The server's SETTINGS: acknowledge them.
                (4, 0) if flags & 0x1 == 0 => {
                    socket.write_all(&h2_frame(4, 0x1, 0, &[])).await.unwrap();
                }
                // The response headers: the JS SDK closes its session right here.
                (1, 1) => {
                    status_seen = true;
                    let goaway = [0u8; 8]; // last stream 0, NO_ERROR
                    socket.write_all(&h2_frame(7, 0, 0, &goaway)).await.unwrap();
                }
                (0, 1) => {
                    data.extend_from_slice(&payload);
                    if flags & 0x1 != 0 {
                        return true;
                    }
                }
                (3, 1) => return false, // RST_STREAM: the stream was abandoned
                _ => {}
            }
        }
        false
    })
    .await
    .expect("the stream ends within 10 s");
    assert!(status_seen, "no response headers");
    assert!(
        ended,
        "the stream did not end cleanly after the client's GOAWAY"
    );
    let mut decoder = aws_smithy_eventstream::frame::MessageFrameDecoder::new();
    let mut buffer = bytes::BytesMut::from(&data[..]);
    let mut kinds = Vec::new();
    while let Ok(aws_smithy_eventstream::frame::DecodedFrame::Complete(m)) =
        decoder.decode_frame(&mut buffer)
    {
        let kind = m
            .headers()
            .iter()
            .find(|h| h.name().as_str() == ":event-type")
            .map(|h| h.value().as_string().unwrap().as_str().to_owned());
        kinds.extend(kind);
    }
    assert_eq!(
        kinds,
        [
            "messageStart",
            "contentBlockDelta",
            "contentBlockDelta",
            "contentBlockDelta",
            "contentBlockDelta",
            "contentBlockStop",
            "messageStop",
            "metadata"
        ]
    );
}
