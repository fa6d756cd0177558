//! The wire contracts that outside clients test against. Keep them exactly.
//!
//! Shapes follow the design document (§1.3, Appendix A, §Technical Specifications)
//! and `shared/docs/system.md`.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A tenant's config as the Master Function's `get_config` returns it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TenantConfig {
    /// The tenant's hash, 1–64 characters of `a-z0-9`.
    pub tenant_hash: String,
    /// A display name (not in the design document, harmless to clients).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_name: Option<String>,
    /// The rollout switches.
    pub features: Features,
    /// Where the widget sends messages. `chat` is always present.
    pub endpoints: Endpoints,
    /// Full origins (`https://fostervillage.org`) the gateway's CORS answers.
    pub allowed_origins: Vec<String>,
}

/// `features` of a tenant config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Features {
    /// Whether the tenant may stream at all.
    pub streaming_enabled: bool,
    /// Share of sessions that stream, 0–100.
    pub streaming_percentage: f64,
    /// The Bedrock model id used for this tenant.
    pub streaming_model: String,
}

/// `endpoints` of a tenant config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Endpoints {
    /// The regular chat endpoint: always present from our Master; the document's Python
    /// drops it for streaming tenants (see [`crate::scenario::Servers::AsWritten`]), so a
    /// widget reading a config must cope with its absence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chat: Option<String>,
    /// The streaming endpoint: absent (not null) unless streaming is enabled and configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub streaming: Option<String>,
}

/// The body of `POST /Master_Function?action=chat`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatRequest {
    /// The tenant.
    pub tenant_hash: String,
    /// What the user typed.
    pub user_input: String,
    /// The widget session.
    pub session_id: String,
    /// The message, unique within the session.
    pub message_id: String,
}

/// The answer of `POST /Master_Function?action=chat`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatResponse {
    /// Echoes the request.
    pub message_id: String,
    /// Echoes the request.
    pub session_id: String,
    /// The whole answer.
    pub content: String,
    /// Always `"text"`.
    #[serde(rename = "type")]
    pub kind: String,
}

/// The JSON body of every refusal: `{"code", "message"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// A machine-readable code such as `STREAM_003` or `RATE_LIMITED`.
    pub code: String,
    /// A sentence for a person.
    pub message: String,
}

/// The error codes of the design document's Appendix B, plus the gateway's own two.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Code {
    /// EventSource connection failed (recorded by the widget).
    #[serde(rename = "STREAM_001")]
    Stream001,
    /// Tenant not authorized for streaming.
    #[serde(rename = "STREAM_002")]
    Stream002,
    /// Invalid streaming parameters.
    #[serde(rename = "STREAM_003")]
    Stream003,
    /// Streaming timeout exceeded.
    #[serde(rename = "STREAM_004")]
    Stream004,
    /// Fallback to regular chat triggered (recorded by the widget).
    #[serde(rename = "STREAM_005")]
    Stream005,
    /// More than the allowed stream requests in the rolling window.
    #[serde(rename = "RATE_LIMITED")]
    RateLimited,
    /// The request's `Origin` is not one of the tenant's widget origins.
    #[serde(rename = "ORIGIN_NOT_ALLOWED")]
    OriginNotAllowed,
}

impl Code {
    /// The code as it appears on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Code::Stream001 => "STREAM_001",
            Code::Stream002 => "STREAM_002",
            Code::Stream003 => "STREAM_003",
            Code::Stream004 => "STREAM_004",
            Code::Stream005 => "STREAM_005",
            Code::RateLimited => "RATE_LIMITED",
            Code::OriginNotAllowed => "ORIGIN_NOT_ALLOWED",
        }
    }

    /// Parses a wire code.
    pub fn parse(s: &str) -> Option<Code> {
        [
            Code::Stream001,
            Code::Stream002,
            Code::Stream003,
            Code::Stream004,
            Code::Stream005,
            Code::RateLimited,
            Code::OriginNotAllowed,
        ]
        .into_iter()
        .find(|c| c.as_str() == s)
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One SSE frame's `data:` payload on the streaming endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamFrame {
    /// `{"content": "Hello", "type": "text"}`
    Text(String),
    /// `{"type": "end"}`
    End,
    /// `{"type": "error", "code": "STREAM_004", "message": "…"}`
    Error {
        /// The wire code (usually `STREAM_00x`).
        code: String,
        /// A sentence for a person.
        message: String,
    },
}

impl StreamFrame {
    /// The `data:` payload, spelled byte for byte as the design document shows it
    /// (`{"content": "Hello", "type": "text"}`: a space after each `:` and `,`).
    pub fn to_data(&self) -> String {
        // A JSON string literal, written straight from the `&str` (the same bytes as
        // through `serde_json::Value`, without copying the text into one first).
        let q = |s: &str| serde_json::to_string(s).unwrap_or_default();
        match self {
            StreamFrame::Text(content) => {
                format!(r#"{{"content": {}, "type": "text"}}"#, q(content))
            }
            StreamFrame::End => r#"{"type": "end"}"#.to_owned(),
            StreamFrame::Error { code, message } => format!(
                r#"{{"type": "error", "code": {}, "message": {}}}"#,
                q(code),
                q(message)
            ),
        }
    }

    /// Reads a `data:` payload back; `None` for anything that is not one of the three frames.
    pub fn parse(data: &str) -> Option<StreamFrame> {
        let value: serde_json::Value = serde_json::from_str(data).ok()?;
        let text = |k: &str| value.get(k).and_then(|v| v.as_str()).map(str::to_owned);
        match value.get("type")?.as_str()? {
            "text" => Some(StreamFrame::Text(text("content")?)),
            "end" => Some(StreamFrame::End),
            "error" => Some(StreamFrame::Error {
                code: text("code")?,
                message: text("message").unwrap_or_default(),
            }),
            _ => None,
        }
    }
}

/// The SSE `id:` of a frame: `{message_id}:{seq}`, so a client can resume.
pub fn event_id(message_id: &str, seq: u64) -> String {
    format!("{message_id}:{seq}")
}

/// Splits an `id:` back into message id and sequence number.
///
/// Only the spelling [`event_id`] writes is read: the sequence number in plain decimal
/// digits, no sign and no leading zero (`u64::from_str` alone would take `m:+3` and
/// `m:03` as `m:3`, ids the gateway never sent).
pub fn parse_event_id(id: &str) -> Option<(&str, u64)> {
    let (message, seq) = id.rsplit_once(':')?;
    let canonical = !seq.is_empty()
        && seq.bytes().all(|b| b.is_ascii_digit())
        && (seq == "0" || !seq.starts_with('0'));
    if !canonical {
        return None;
    }
    Some((message, seq.parse().ok()?))
}

/// A tenant hash is 1–64 characters of `a-z0-9`.
pub fn is_valid_tenant_hash(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

/// The characters the gateway refuses in parameters: every C0 and C1 control
/// character and DEL, except newline, carriage return and tab.
pub fn is_forbidden_char(c: char) -> bool {
    (c.is_control() && !matches!(c, '\n' | '\r' | '\t')) || c == '\u{7f}'
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_spelled_as_the_design_document_shows() {
        assert_eq!(
            StreamFrame::Text("Hello".into()).to_data(),
            r#"{"content": "Hello", "type": "text"}"#
        );
        assert_eq!(StreamFrame::End.to_data(), r#"{"type": "end"}"#);
        let err = StreamFrame::Error {
            code: "STREAM_004".into(),
            message: "too \"long\"".into(),
        };
        assert_eq!(
            err.to_data(),
            r#"{"type": "error", "code": "STREAM_004", "message": "too \"long\""}"#
        );
    }

    #[test]
    fn frames_round_trip() {
        for f in [
            StreamFrame::Text(", how\n\"x\" ✓".into()),
            StreamFrame::End,
            StreamFrame::Error {
                code: "STREAM_004".into(),
                message: "m".into(),
            },
        ] {
            assert_eq!(StreamFrame::parse(&f.to_data()), Some(f));
        }
        assert_eq!(StreamFrame::parse("not json"), None);
        assert_eq!(StreamFrame::parse(r#"{"type":"other"}"#), None);
    }

    #[test]
    fn config_without_streaming_has_no_streaming_key() {
        let cfg = TenantConfig {
            tenant_hash: "au47d9f8e2c31b".into(),
            tenant_name: None,
            features: Features {
                streaming_enabled: false,
                streaming_percentage: 0.0,
                streaming_model: "m".into(),
            },
            endpoints: Endpoints {
                chat: Some("http://x/chat".into()),
                streaming: None,
            },
            allowed_origins: vec![],
        };
        let json = serde_json::to_value(&cfg).unwrap();
        assert!(json["endpoints"].get("streaming").is_none());
        assert_eq!(json["endpoints"]["chat"], "http://x/chat");
    }

    #[test]
    fn tenant_hash_and_control_characters() {
        assert!(is_valid_tenant_hash("fo85e6a06dcdf4"));
        assert!(!is_valid_tenant_hash(""));
        assert!(!is_valid_tenant_hash("Fo85"));
        assert!(!is_valid_tenant_hash(&"a".repeat(65)));
        assert!(!is_forbidden_char('\n') && !is_forbidden_char('\t') && !is_forbidden_char('\r'));
        assert!(
            is_forbidden_char('\u{0}')
                && is_forbidden_char('\u{7f}')
                && is_forbidden_char('\u{85}')
        );
        assert_eq!(parse_event_id("m-1:7"), Some(("m-1", 7)));
        assert_eq!(parse_event_id("a:b:0"), Some(("a:b", 0)));
        // Found by the fuzz target (gateway/tests/fuzz_query.rs): spellings the gateway
        // never writes are not its ids.
        for junk in [
            ":+0",
            "m:+3",
            "m:03",
            "m:",
            "m: 3",
            "m:-1",
            "m:18446744073709551616",
        ] {
            assert_eq!(parse_event_id(junk), None, "{junk}");
        }
        assert_eq!(Code::parse("STREAM_003"), Some(Code::Stream003));
    }
}
