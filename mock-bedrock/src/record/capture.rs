//! What a recorder reads from one answer as it passes: each token's text and when it
//! arrived, the usage and the stop reason, for both streaming formats and both whole
//! bodies. An answer that ends in an exception, a bad frame or an error status is
//! not captured (it is not an answer to replay).

use crate::operations::Operation;
use aws_smithy_eventstream::frame::{DecodedFrame, MessageFrameDecoder};
use aws_smithy_types::event_stream::Message;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::BytesMut;
use picasso_core::scenario::{Answer, StopReason, Token};
use serde_json::Value;
use tokio::time::Instant;

/// One answer being captured.
#[derive(Debug)]
pub struct Capture {
    op: Operation,
    model: String,
    prompt: String,
    started: Instant,
    decoder: MessageFrameDecoder,
    buffer: BytesMut,
    /// Token texts with their arrival, in microseconds since the request.
    tokens: Vec<(u128, String)>,
    input_tokens: Option<u32>,
    output_tokens: Option<u32>,
    stop: Option<String>,
    failed: bool,
    /// When the last chunk arrived: a whole body's answer time.
    last: Option<Instant>,
}

impl Capture {
    /// Starts capturing the answer to `prompt` on `model`, asked at `started`.
    pub fn new(op: Operation, model: String, prompt: String, started: Instant) -> Capture {
        Capture {
            op,
            model,
            prompt,
            started,
            decoder: MessageFrameDecoder::new(),
            buffer: BytesMut::new(),
            tokens: Vec::new(),
            input_tokens: None,
            output_tokens: None,
            stop: None,
            failed: false,
            last: None,
        }
    }

    /// Reads a chunk of the body that arrived at `at`.
    pub fn feed(&mut self, chunk: &[u8], at: Instant) {
        self.buffer.extend_from_slice(chunk);
        self.last = Some(at);
        if !self.op.is_streaming() || self.failed {
            return;
        }
        let micros = at.duration_since(self.started).as_micros();
        loop {
            match self.decoder.decode_frame(&mut self.buffer) {
                Ok(DecodedFrame::Complete(message)) => self.event(&message, micros),
                Ok(DecodedFrame::Incomplete) => break,
                Err(_) => {
                    self.failed = true;
                    break;
                }
            }
        }
    }

    fn event(&mut self, message: &Message, micros: u128) {
        let header = |name: &str| {
            message
                .headers()
                .iter()
                .find(|h| h.name().as_str() == name)
                .and_then(|h| h.value().as_string().ok())
                .map(|s| s.as_str().to_owned())
        };
        if header(":message-type").as_deref() != Some("event") {
            self.failed = true;
            return;
        }
        let Ok(payload) = serde_json::from_slice::<Value>(message.payload()) else {
            self.failed = true;
            return;
        };
        match header(":event-type").as_deref() {
            Some("contentBlockDelta") => {
                if let Some(text) = payload["delta"]["text"].as_str() {
                    self.tokens.push((micros, text.to_owned()));
                }
            }
            Some("messageStop") => self.stop = payload["stopReason"].as_str().map(str::to_owned),
            Some("metadata") => {
                self.input_tokens = as_u32(&payload["usage"]["inputTokens"]);
                self.output_tokens = as_u32(&payload["usage"]["outputTokens"]);
            }
            Some("chunk") => {
                let native = payload["bytes"]
                    .as_str()
                    .and_then(|b| BASE64.decode(b).ok())
                    .and_then(|b| serde_json::from_slice::<Value>(&b).ok());
                match native {
                    Some(native) => self.native(&native, micros),
                    None => self.failed = true,
                }
            }
            _ => {}
        }
    }

    /// One of Anthropic's native stream events.
    fn native(&mut self, event: &Value, micros: u128) {
        match event["type"].as_str() {
            Some("message_start") => {
                self.input_tokens = as_u32(&event["message"]["usage"]["input_tokens"]);
            }
            Some("content_block_delta") => {
                if let Some(text) = event["delta"]["text"].as_str() {
                    self.tokens.push((micros, text.to_owned()));
                }
            }
            Some("message_delta") => {
                self.stop = event["delta"]["stop_reason"].as_str().map(str::to_owned);
                self.output_tokens = as_u32(&event["usage"]["output_tokens"]);
            }
            _ => {}
        }
    }

    /// The answer read so far; `None` when it failed or is not whole (a stream
    /// without its stop and metadata events, a body that is not whole JSON), so it
    /// is safe to ask when the body is dropped, however it ended.
    pub fn finish(mut self) -> Option<Answer> {
        if !self.op.is_streaming() {
            let at = self.last.unwrap_or(self.started);
            self.whole_body(at.duration_since(self.started).as_micros())?;
        }
        if self.failed || !self.buffer.is_empty() || self.stop.is_none() {
            return None;
        }
        // Delays from arrival times rounded on the running total, so rounding never
        // adds up along a long answer.
        let mut before = 0u64;
        let tokens: Vec<Token> = self
            .tokens
            .iter()
            .map(|(micros, text)| {
                let at_ms = ((micros + 500) / 1000) as u64;
                let delay_ms = at_ms.saturating_sub(before);
                before = before.max(at_ms);
                Token::new(text.clone(), delay_ms)
            })
            .collect();
        let mut answer = Answer::from_tokens(tokens)
            .for_model(self.model)
            .for_prompt(self.prompt)
            .stop_reason(stop_reason(self.stop.as_deref()));
        if let (Some(input), Some(output)) = (self.input_tokens, self.output_tokens) {
            answer = answer.usage(input, output);
        }
        Some(answer)
    }

    /// Reads a `Converse` or `InvokeModel` body: one token, arriving with the body.
    fn whole_body(&mut self, micros: u128) -> Option<()> {
        let json: Value = serde_json::from_slice(&self.buffer).ok()?;
        self.buffer.clear();
        let (text, stop, usage) = if self.op.is_converse() {
            let blocks = json["output"]["message"]["content"].as_array()?;
            let text: String = blocks.iter().filter_map(|b| b["text"].as_str()).collect();
            let usage = &json["usage"];
            (
                text,
                &json["stopReason"],
                (&usage["inputTokens"], &usage["outputTokens"]),
            )
        } else {
            let blocks = json["content"].as_array()?;
            let text: String = blocks.iter().filter_map(|b| b["text"].as_str()).collect();
            let usage = &json["usage"];
            (
                text,
                &json["stop_reason"],
                (&usage["input_tokens"], &usage["output_tokens"]),
            )
        };
        self.tokens = vec![(micros, text)];
        self.stop = stop.as_str().map(str::to_owned);
        self.input_tokens = as_u32(usage.0);
        self.output_tokens = as_u32(usage.1);
        Some(())
    }
}

fn as_u32(value: &Value) -> Option<u32> {
    value.as_u64().and_then(|n| u32::try_from(n).ok())
}

/// The scenario's stop reason for a wire one; reasons a scenario cannot script
/// (`tool_use`, `guardrail_intervened`, …) replay as `end_turn`.
fn stop_reason(wire: Option<&str>) -> StopReason {
    match wire {
        Some("max_tokens") => StopReason::MaxTokens,
        Some("stop_sequence") => StopReason::StopSequence,
        _ => StopReason::EndTurn,
    }
}
