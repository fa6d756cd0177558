//! What the mock reads from a request: the prompt, the `requestMetadata` our
//! servers send (tenant, session, message, caller), and the SDK's attempt number.
//!
//! Everything here is pure and total: bad input becomes the `ValidationException`
//! Bedrock would send, never a panic.

use crate::error::ApiError;
use crate::operations::Operation;
use http::HeaderMap;
use picasso_core::fault::RequestFacts;
use picasso_core::scenario::Caller;
use serde_json::Value;
use std::collections::BTreeMap;

/// The metadata header of the InvokeModel operations (Converse carries the same
/// key-value pairs as the body field `requestMetadata`).
const METADATA_HEADER: &str = "x-amzn-bedrock-request-metadata";

/// The parts of a request the mock acts on.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ParsedRequest {
    /// The text of the last user message (text blocks joined by newlines).
    pub prompt: String,
    /// `requestMetadata`, in key order.
    pub metadata: BTreeMap<String, String>,
}

impl ParsedRequest {
    /// A metadata value, if sent.
    pub fn meta(&self, key: &str) -> Option<&str> {
        self.metadata.get(key).map(String::as_str)
    }

    /// What the fault books know of this request (its `requestMetadata`, the model
    /// it calls, the SDK's attempt): the same facts whether the server or
    /// `BedrockResponder` answers, so a fault strikes the same calls in both.
    pub fn facts<'a>(&'a self, model: &'a str, attempt: u32) -> RequestFacts<'a> {
        RequestFacts {
            tenant: self.meta("tenant_hash"),
            session: self.meta("session_id"),
            message: self.meta("message_id"),
            via: self.caller(),
            model: Some(model),
            attempt,
        }
    }

    /// Which of our servers made the call, from the `caller` metadata key.
    pub fn caller(&self) -> Option<Caller> {
        match self.meta("caller")? {
            "gateway" => Some(Caller::Gateway),
            "master" => Some(Caller::Master),
            _ => None,
        }
    }
}

/// Reads the prompt and metadata of a request to `op`.
///
/// # Errors
///
/// `ValidationException` for a body that is not JSON, lacks `messages`, or has no
/// user message, with Bedrock's own wording where it is known.
pub fn parse(op: Operation, headers: &HeaderMap, body: &[u8]) -> Result<ParsedRequest, ApiError> {
    let json: Value = serde_json::from_slice(body).map_err(|e| {
        ApiError::validation(format!(
            "Malformed input request: {e}, please reformat your input and try again."
        ))
    })?;
    if op.is_converse() {
        parse_converse(&json)
    } else {
        parse_anthropic(&json, headers)
    }
}

fn parse_converse(json: &Value) -> Result<ParsedRequest, ApiError> {
    let messages = messages_of(json)?;
    let metadata = match json.get("requestMetadata") {
        None | Some(Value::Null) => BTreeMap::new(),
        Some(value) => string_map(value)
            .ok_or_else(|| ApiError::validation("requestMetadata must map strings to strings."))?,
    };
    let prompt = last_user_text(messages, |block| {
        block.get("text").and_then(Value::as_str).map(str::to_owned)
    })?;
    Ok(ParsedRequest { prompt, metadata })
}

fn parse_anthropic(json: &Value, headers: &HeaderMap) -> Result<ParsedRequest, ApiError> {
    let messages = messages_of(json)?;
    let prompt = last_user_text(messages, |block| match block {
        Value::String(text) => Some(text.clone()),
        Value::Object(_) if block.get("type").and_then(Value::as_str) == Some("text") => {
            block.get("text").and_then(Value::as_str).map(str::to_owned)
        }
        _ => None,
    })?;
    // The header's value is the key-value pairs as a JSON object; anything else is
    // kept out of the metadata rather than refused, as it only feeds logs upstream.
    let metadata = headers
        .get(METADATA_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| serde_json::from_str::<Value>(v).ok())
        .and_then(|v| string_map(&v))
        .unwrap_or_default();
    Ok(ParsedRequest { prompt, metadata })
}

fn messages_of(json: &Value) -> Result<&Vec<Value>, ApiError> {
    if !json.is_object() {
        return Err(ApiError::validation(
            "Malformed input request: expected a JSON object, please reformat your input and try again.",
        ));
    }
    match json.get("messages") {
        Some(Value::Array(messages)) if !messages.is_empty() => Ok(messages),
        Some(Value::Array(_)) => Err(ApiError::validation(
            "A conversation must start with a user message. Try again with a conversation that starts with a user message.",
        )),
        Some(_) => Err(ApiError::validation(
            "Malformed input request: #/messages: expected type: JSONArray, please reformat your input and try again.",
        )),
        None => Err(ApiError::validation(
            "Malformed input request: #: required key [messages] not found, please reformat your input and try again.",
        )),
    }
}

/// The text of the last `user` message; `content` is a string (Anthropic's short
/// form) or a list of blocks, each read by `text_of`.
fn last_user_text(
    messages: &[Value],
    text_of: impl Fn(&Value) -> Option<String>,
) -> Result<String, ApiError> {
    let last_user = messages
        .iter()
        .rev()
        .find(|m| m.get("role").and_then(Value::as_str) == Some("user"))
        .ok_or_else(|| {
            ApiError::validation(
                "A conversation must start with a user message. Try again with a conversation that starts with a user message.",
            )
        })?;
    let texts: Vec<String> = match last_user.get("content") {
        Some(Value::Array(blocks)) => blocks.iter().filter_map(&text_of).collect(),
        Some(content @ Value::String(_)) => text_of(content).into_iter().collect(),
        _ => {
            return Err(ApiError::validation(
                "Malformed input request: #/messages/content: expected a list of content blocks, please reformat your input and try again.",
            ));
        }
    };
    Ok(texts.join("\n"))
}

fn string_map(value: &Value) -> Option<BTreeMap<String, String>> {
    value
        .as_object()?
        .iter()
        .map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
        .collect()
}

/// The attempt number from `amz-sdk-request: attempt=N; max=M`; 1 when absent.
pub fn attempt(headers: &HeaderMap) -> u32 {
    headers
        .get("amz-sdk-request")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.split(';')
                .filter_map(|part| part.trim().strip_prefix("attempt="))
                .find_map(|n| n.trim().parse::<u32>().ok())
        })
        .unwrap_or(1)
        .max(1)
}

/// Checks a model id the way Bedrock's input validation does, loosely: 1–2048
/// characters of the sets model ids and ARNs use. Any such id answers; the scenario
/// decides what it says.
///
/// # Errors
///
/// `ValidationException` "The provided model identifier is invalid." otherwise.
pub fn check_model_id(model: &str) -> Result<(), ApiError> {
    let valid = !model.is_empty()
        && model.len() <= 2048
        && model
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':' | '/'));
    if valid {
        Ok(())
    } else {
        Err(ApiError::validation(
            "The provided model identifier is invalid.",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.insert(*k, v.parse().unwrap());
        }
        map
    }

    #[test]
    fn converse_reads_the_last_user_message_and_metadata() {
        let body = br#"{"messages":[
            {"role":"user","content":[{"text":"first"}]},
            {"role":"assistant","content":[{"text":"answer"}]},
            {"role":"user","content":[{"text":"Hello"},{"image":{}},{"text":"again"}]}],
            "requestMetadata":{"tenant_hash":"t1","session_id":"s","message_id":"m","caller":"gateway"}}"#;
        let parsed = parse(Operation::ConverseStream, &HeaderMap::new(), body).unwrap();
        assert_eq!(parsed.prompt, "Hello\nagain");
        assert_eq!(parsed.meta("tenant_hash"), Some("t1"));
        assert_eq!(parsed.caller(), Some(Caller::Gateway));
    }

    #[test]
    fn anthropic_reads_string_and_block_content_and_the_metadata_header() {
        let body = br#"{"anthropic_version":"bedrock-2023-05-31","max_tokens":10,
            "messages":[{"role":"user","content":"Hi there"}]}"#;
        let h = headers(&[(METADATA_HEADER, r#"{"message_id":"m9"}"#)]);
        let parsed = parse(Operation::InvokeModel, &h, body).unwrap();
        assert_eq!(parsed.prompt, "Hi there");
        assert_eq!(parsed.meta("message_id"), Some("m9"));
        let body = br#"{"messages":[{"role":"user","content":[{"type":"text","text":"Hey"}]}]}"#;
        let parsed = parse(
            Operation::InvokeModelWithResponseStream,
            &HeaderMap::new(),
            body,
        );
        assert_eq!(parsed.unwrap().prompt, "Hey");
    }

    #[test]
    fn bad_bodies_are_validation_errors() {
        for body in [
            &b"not json"[..],
            b"[]",
            b"{}",
            br#"{"messages":"x"}"#,
            br#"{"messages":[]}"#,
            br#"{"messages":[{"role":"assistant","content":[]}]}"#,
            br#"{"messages":[{"role":"user"}]}"#,
        ] {
            for op in [Operation::Converse, Operation::InvokeModel] {
                let err = parse(op, &HeaderMap::new(), body).unwrap_err();
                assert_eq!(err.code, "ValidationException", "{body:?}");
                assert_eq!(err.status.as_u16(), 400);
            }
        }
        let body =
            br#"{"messages":[{"role":"user","content":[{"text":"x"}]}],"requestMetadata":{"a":1}}"#;
        assert!(parse(Operation::Converse, &HeaderMap::new(), body).is_err());
    }

    #[test]
    fn attempt_comes_from_amz_sdk_request() {
        assert_eq!(
            attempt(&headers(&[("amz-sdk-request", "attempt=2; max=3")])),
            2
        );
        assert_eq!(
            attempt(&headers(&[("amz-sdk-request", "max=3;attempt=3")])),
            3
        );
        assert_eq!(attempt(&headers(&[("amz-sdk-request", "garbage")])), 1);
        assert_eq!(attempt(&HeaderMap::new()), 1);
    }

    #[test]
    fn model_ids_and_arns_pass_junk_does_not() {
        assert!(check_model_id("anthropic.claude-3-haiku-20240307-v1:0").is_ok());
        assert!(
            check_model_id("arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.x").is_ok()
        );
        assert!(check_model_id("").is_err());
        assert!(check_model_id("has space").is_err());
    }
}
