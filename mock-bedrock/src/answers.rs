//! A scripted answer, put on the wire the way each operation carries it
//! (bedrock-wire.md §3–§5): Converse JSON, Anthropic's native message JSON, and the
//! events of the two streams. All numbers are integers; all payloads unwrapped.

use crate::eventstream::{self, EventHeaders, FrameError};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::{Bytes, BytesMut};
use picasso_core::scenario::{StopReason, Usage};
use serde_json::{Value, json};
use std::sync::OnceLock;

/// The id Anthropic-format answers carry, derived from the request id so it repeats.
pub fn message_id(request_id: &str) -> String {
    let hex: String = request_id.chars().filter(|c| *c != '-').take(24).collect();
    format!("msg_bdrk_{hex}")
}

/// Latency numbers of one answer, in whole milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Latency {
    /// From the request to the last byte of the answer.
    pub total_ms: u64,
    /// From the request to the first token.
    pub first_byte_ms: u64,
}

/// The `Converse` response body.
pub fn converse_body(text: &str, stop: StopReason, usage: Usage, latency: Latency) -> Value {
    json!({
        "output": {"message": {"role": "assistant", "content": [{"text": text}]}},
        "stopReason": stop.as_str(),
        "usage": converse_usage(usage),
        "metrics": {"latencyMs": latency.total_ms},
    })
}

/// The `InvokeModel` response body: an Anthropic Messages API message.
pub fn invoke_body(id: &str, model: &str, text: &str, stop: StopReason, usage: Usage) -> Value {
    json!({
        "id": id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [{"type": "text", "text": text}],
        "stop_reason": stop.as_str(),
        "stop_sequence": null,
        "usage": {"input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens},
    })
}

fn converse_usage(usage: Usage) -> Value {
    json!({
        "inputTokens": usage.input_tokens,
        "outputTokens": usage.output_tokens,
        "totalTokens": u64::from(usage.input_tokens) + u64::from(usage.output_tokens),
    })
}

/// How one streaming operation spells the events of an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamFormat {
    /// `ConverseStream`: `messageStart`, `contentBlockDelta`…, `contentBlockStop`,
    /// `messageStop`, `metadata`.
    Converse,
    /// `InvokeModelWithResponseStream`: `chunk` events, each carrying one of
    /// Anthropic's native events as base64 JSON.
    Anthropic {
        /// The message id (`msg_bdrk_…`).
        id: String,
        /// The model id, echoed in `message_start`.
        model: String,
    },
}

impl StreamFormat {
    /// The frames before the first token.
    pub fn opening(&self, usage: Usage) -> Result<Bytes, FrameError> {
        match self {
            StreamFormat::Converse => {
                eventstream::event("messageStart", &json!({"role": "assistant"}))
            }
            StreamFormat::Anthropic { id, model } => concat(&[
                chunk(&json!({
                    "type": "message_start",
                    "message": {
                        "id": id, "type": "message", "role": "assistant", "model": model,
                        "content": [], "stop_reason": null, "stop_sequence": null,
                        "usage": {"input_tokens": usage.input_tokens, "output_tokens": 1},
                    },
                }))?,
                chunk(&json!({
                    "type": "content_block_start", "index": 0,
                    "content_block": {"type": "text", "text": ""},
                }))?,
            ]),
        }
    }

    /// The frame carrying one token of text.
    pub fn token(&self, text: &str) -> Result<Bytes, FrameError> {
        match self {
            // Every streamed token: its header block is made once, its payload written
            // straight, byte for byte what `event` writes for the tree
            // `{"delta": {"text": text}, "contentBlockIndex": 0}` (serde_json's map
            // sorts the keys; the property tests below compare the two).
            StreamFormat::Converse => {
                static HEADERS: OnceLock<EventHeaders> = OnceLock::new();
                let mut payload = Vec::with_capacity(text.len() + 48);
                payload.extend_from_slice(br#"{"contentBlockIndex":0,"delta":{"text":"#);
                push_json_str(&mut payload, text);
                payload.extend_from_slice(b"}}");
                Ok(eventstream::event_raw(
                    headers(&HEADERS, "contentBlockDelta")?,
                    &payload,
                ))
            }
            // The native event `{"type": "content_block_delta", "index": 0, "delta":
            // {"type": "text_delta", "text": text}}` (keys sorted, as above), base64 in
            // a `chunk`'s `bytes`.
            StreamFormat::Anthropic { .. } => {
                static HEADERS: OnceLock<EventHeaders> = OnceLock::new();
                let mut native = Vec::with_capacity(text.len() + 80);
                native.extend_from_slice(br#"{"delta":{"text":"#);
                push_json_str(&mut native, text);
                native.extend_from_slice(
                    br#","type":"text_delta"},"index":0,"type":"content_block_delta"}"#,
                );
                let mut payload = Vec::with_capacity(native.len() * 4 / 3 + 16);
                payload.extend_from_slice(br#"{"bytes":""#);
                payload.extend_from_slice(BASE64.encode(&native).as_bytes());
                payload.extend_from_slice(br#""}"#);
                Ok(eventstream::event_raw(
                    headers(&HEADERS, "chunk")?,
                    &payload,
                ))
            }
        }
    }

    /// The frames after the last token: block stop, message stop, usage and metrics.
    pub fn closing(
        &self,
        stop: StopReason,
        usage: Usage,
        latency: Latency,
    ) -> Result<Bytes, FrameError> {
        match self {
            StreamFormat::Converse => concat(&[
                eventstream::event("contentBlockStop", &json!({"contentBlockIndex": 0}))?,
                eventstream::event("messageStop", &json!({"stopReason": stop.as_str()}))?,
                eventstream::event(
                    "metadata",
                    &json!({"usage": converse_usage(usage), "metrics": {"latencyMs": latency.total_ms}}),
                )?,
            ]),
            StreamFormat::Anthropic { .. } => concat(&[
                chunk(&json!({"type": "content_block_stop", "index": 0}))?,
                chunk(&json!({
                    "type": "message_delta",
                    "delta": {"stop_reason": stop.as_str(), "stop_sequence": null},
                    "usage": {"output_tokens": usage.output_tokens},
                }))?,
                chunk(&json!({
                    "type": "message_stop",
                    "amazon-bedrock-invocationMetrics": {
                        "inputTokenCount": usage.input_tokens,
                        "outputTokenCount": usage.output_tokens,
                        "invocationLatency": latency.total_ms,
                        "firstByteLatency": latency.first_byte_ms,
                    },
                }))?,
            ]),
        }
    }
}

/// The header block of one event type, made once per process.
fn headers<'a>(
    cell: &'a OnceLock<EventHeaders>,
    event_type: &str,
) -> Result<&'a EventHeaders, FrameError> {
    if let Some(h) = cell.get() {
        return Ok(h);
    }
    let made = EventHeaders::new(event_type)?;
    Ok(cell.get_or_init(|| made))
}

/// Appends `text` as a JSON string, quoted and escaped as `serde_json` writes it.
fn push_json_str(out: &mut Vec<u8>, text: &str) {
    // Writing a `str` into a `Vec` cannot fail.
    let _ = serde_json::to_writer(out, text);
}

/// A `chunk` event: the native event's JSON, base64 in the `bytes` member.
fn chunk(native: &Value) -> Result<Bytes, FrameError> {
    let encoded = BASE64.encode(native.to_string());
    eventstream::event("chunk", &json!({"bytes": encoded}))
}

fn concat(frames: &[Bytes]) -> Result<Bytes, FrameError> {
    let mut out = BytesMut::with_capacity(frames.iter().map(Bytes::len).sum());
    for frame in frames {
        out.extend_from_slice(frame);
    }
    Ok(out.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_smithy_eventstream::frame::{DecodedFrame, MessageFrameDecoder};
    use aws_smithy_types::event_stream::Message;

    fn decode_all(bytes: &Bytes) -> Vec<Message> {
        let mut decoder = MessageFrameDecoder::new();
        let mut buffer = BytesMut::from(&bytes[..]);
        let mut out = Vec::new();
        while let Ok(DecodedFrame::Complete(message)) = decoder.decode_frame(&mut buffer) {
            out.push(message);
        }
        out
    }

    fn event_type(message: &Message) -> String {
        message
            .headers()
            .iter()
            .find(|h| h.name().as_str() == ":event-type")
            .map(|h| h.value().as_string().unwrap().as_str().to_owned())
            .unwrap()
    }

    fn payload(message: &Message) -> Value {
        serde_json::from_slice(message.payload()).unwrap()
    }

    const USAGE: Usage = Usage {
        input_tokens: 3,
        output_tokens: 2,
    };

    proptest::proptest! {
        /// The token frame written straight is the frame the JSON tree gives, byte for
        /// byte, whatever the text (quotes, control characters, any Unicode).
        #[test]
        fn converse_token_frames_are_the_codecs(text in proptest::prelude::any::<String>()) {
            let straight = StreamFormat::Converse.token(&text).unwrap();
            let tree = eventstream::event(
                "contentBlockDelta",
                &json!({"delta": {"text": text}, "contentBlockIndex": 0}),
            )
            .unwrap();
            proptest::prop_assert_eq!(straight, tree);
        }

        /// Likewise the InvokeModelWithResponseStream token (a `chunk` of the native
        /// `content_block_delta`, base64).
        #[test]
        fn anthropic_token_frames_are_the_codecs(text in proptest::prelude::any::<String>()) {
            let format = StreamFormat::Anthropic { id: "msg_bdrk_1".into(), model: "m".into() };
            let straight = format.token(&text).unwrap();
            let tree = chunk(&json!({
                "type": "content_block_delta", "index": 0,
                "delta": {"type": "text_delta", "text": text},
            }))
            .unwrap();
            proptest::prop_assert_eq!(straight, tree);
        }
    }

    #[test]
    fn converse_stream_events_are_in_order_and_unwrapped() {
        let f = StreamFormat::Converse;
        let mut all = BytesMut::new();
        all.extend_from_slice(&f.opening(USAGE).unwrap());
        all.extend_from_slice(&f.token("Hi").unwrap());
        let latency = Latency {
            total_ms: 12,
            first_byte_ms: 5,
        };
        all.extend_from_slice(&f.closing(StopReason::EndTurn, USAGE, latency).unwrap());
        let messages = decode_all(&all.freeze());
        let types: Vec<String> = messages.iter().map(event_type).collect();
        assert_eq!(
            types,
            [
                "messageStart",
                "contentBlockDelta",
                "contentBlockStop",
                "messageStop",
                "metadata"
            ]
        );
        assert_eq!(payload(&messages[0]), json!({"role": "assistant"}));
        assert_eq!(payload(&messages[1])["delta"]["text"], "Hi");
        let metadata = payload(&messages[4]);
        assert_eq!(metadata["usage"]["totalTokens"], 5);
        assert!(metadata["metrics"]["latencyMs"].is_u64());
    }

    #[test]
    fn invoke_stream_chunks_carry_native_anthropic_events() {
        let f = StreamFormat::Anthropic {
            id: "msg_bdrk_1".into(),
            model: "m".into(),
        };
        let latency = Latency {
            total_ms: 9,
            first_byte_ms: 4,
        };
        let mut all = BytesMut::new();
        all.extend_from_slice(&f.opening(USAGE).unwrap());
        all.extend_from_slice(&f.token("Hi").unwrap());
        all.extend_from_slice(&f.closing(StopReason::MaxTokens, USAGE, latency).unwrap());
        let natives: Vec<Value> = decode_all(&all.freeze())
            .iter()
            .map(|m| {
                assert_eq!(event_type(m), "chunk");
                let b64 = payload(m)["bytes"].as_str().unwrap().to_owned();
                serde_json::from_slice(&BASE64.decode(b64).unwrap()).unwrap()
            })
            .collect();
        let types: Vec<&str> = natives
            .iter()
            .map(|n| n["type"].as_str().unwrap())
            .collect();
        assert_eq!(
            types,
            [
                "message_start",
                "content_block_start",
                "content_block_delta",
                "content_block_stop",
                "message_delta",
                "message_stop"
            ]
        );
        assert_eq!(natives[4]["delta"]["stop_reason"], "max_tokens");
        assert_eq!(
            natives[5]["amazon-bedrock-invocationMetrics"]["firstByteLatency"],
            4
        );
    }

    #[test]
    fn bodies_have_integer_usage_and_metrics() {
        let body = converse_body("Hi", StopReason::EndTurn, USAGE, Latency::default());
        assert_eq!(body["output"]["message"]["content"][0]["text"], "Hi");
        assert_eq!(body["usage"]["totalTokens"], 5);
        let body = invoke_body("msg_bdrk_x", "m", "Hi", StopReason::EndTurn, USAGE);
        assert_eq!(body["content"][0]["text"], "Hi");
        assert_eq!(
            message_id("0a1b2c3d-0000-4000-8000-000000000000").len(),
            9 + 24
        );
    }
}
