//! A whole Bedrock response computed at once from a [`Reply`]: the bytes mock Bedrock
//! would send for the same request and answer, for servers that send a body in one
//! piece (`wiremock`'s `ResponseTemplate`). The frames come from the same
//! [`StreamFormat`] and event-stream codec as the paced stream, and the latency
//! numbers are the scripted ones (the sum of the delays), which is what the paced
//! stream reports under a paused clock; a test checks the two byte for byte.
//!
//! What cannot be said at once: pacing (every token arrives together), and a stall
//! (its delay, or 24 h for a stall without end, holds the whole response back).

use crate::answers::{self, Latency, StreamFormat};
use crate::error::ApiError;
use crate::eventstream::{self, FrameError};
use crate::faults::{Effect, exception_payload};
use crate::mock::Reply;
use crate::operations::Operation;
use crate::request;
use bytes::{Bytes, BytesMut};
use http::{HeaderMap, StatusCode};
use picasso_core::bounds::{MAX_MS, add_ms, sum_ms};
use picasso_core::fault::FaultBook;
use picasso_core::scenario::{Answer, FaultTarget, Scenario, Token};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// A response to send in one piece.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WholeResponse {
    /// The HTTP status.
    pub status: StatusCode,
    /// Headers besides the body's length.
    pub headers: Vec<(&'static str, String)>,
    /// The whole body.
    pub body: Bytes,
    /// How long to hold the response back (a stall or a slow first token), if at all.
    pub delay_ms: u64,
}

impl WholeResponse {
    fn error(err: &ApiError, request_id: &str) -> WholeResponse {
        WholeResponse {
            status: err.status,
            headers: vec![
                ("content-type", "application/json".to_owned()),
                ("x-amzn-errortype", err.errortype()),
                ("x-amzn-RequestId", request_id.to_owned()),
            ],
            body: Bytes::from(err.body()),
            delay_ms: 0,
        }
    }

    /// A header's value, if set.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Answers Bedrock requests with one [`Reply`], numbering them for their request ids
/// (the ids mock Bedrock gives its own `n`-th request under the same seed).
#[derive(Debug)]
pub struct WholeResponder {
    reply: Reply,
    seed: u64,
    served: AtomicU64,
    /// The reply's fault in a book of one: its filters and `times` hold here too.
    book: Option<Mutex<FaultBook>>,
}

impl WholeResponder {
    /// A responder giving `reply`, with request ids drawn from `seed` (0 unless
    /// [`WholeResponder::seed`]).
    pub fn new(reply: impl Into<Reply>) -> WholeResponder {
        WholeResponder::with_seed(reply.into(), 0)
    }

    /// The same reply, with request ids drawn from `seed`.
    pub fn seed(self, seed: u64) -> WholeResponder {
        WholeResponder::with_seed(self.reply, seed)
    }

    fn with_seed(reply: Reply, seed: u64) -> WholeResponder {
        let book = reply.fault.as_ref().map(|fault| {
            let single = Scenario {
                seed,
                faults: vec![fault.clone()],
                answers: Vec::new(),
                sessions: Vec::new(),
                ..Scenario::default_scenario()
            };
            Mutex::new(FaultBook::new(&single, FaultTarget::Bedrock))
        });
        WholeResponder {
            reply,
            seed,
            served: AtomicU64::new(0),
            book,
        }
    }

    /// The response to a `POST` of `body` to `path` (as sent, percent-encoded).
    pub fn respond(&self, path: &str, headers: &HeaderMap, body: &[u8]) -> WholeResponse {
        let seq = self.served.fetch_add(1, Ordering::Relaxed) + 1;
        let request_id = crate::request_id(self.seed, seq);
        match self.answer(path, headers, body, &request_id) {
            Ok(response) => response,
            Err(err) => WholeResponse::error(&err, &request_id),
        }
    }

    fn answer(
        &self,
        path: &str,
        headers: &HeaderMap,
        body: &[u8],
        request_id: &str,
    ) -> Result<WholeResponse, ApiError> {
        let (model, action) = split_path(path).ok_or_else(ApiError::unknown_operation)?;
        let op = Operation::from_action(action).ok_or_else(ApiError::unknown_operation)?;
        request::check_model_id(&model)?;
        let req = request::parse(op, headers, body)?;
        let facts = req.facts(&model, request::attempt(headers));
        let fault = self.book.as_ref().and_then(|book| {
            book.lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .strike(&facts)
        });
        let effect = fault
            .as_ref()
            .and_then(Effect::of)
            .map(|e| e.for_operation(op));
        if let Some(Effect::Refuse(err)) = effect {
            return Err(err);
        }
        let answer = self.reply.answer.clone().unwrap_or_else(Answer::unscripted);
        let tokens = answer.resolved_tokens();
        let usage = answer.usage_for(&req.prompt);
        let stop = answer.stop_reason;
        let delays = Delays::of(&tokens, effect.as_ref());
        let mut headers = vec![("x-amzn-RequestId", request_id.to_owned())];
        if op.is_streaming() {
            let format = match op {
                Operation::InvokeModelWithResponseStream => StreamFormat::Anthropic {
                    id: answers::message_id(request_id),
                    model: model.clone(),
                },
                _ => StreamFormat::Converse,
            };
            headers.push(("content-type", "application/vnd.amazon.eventstream".into()));
            if op == Operation::InvokeModelWithResponseStream {
                headers.push(("x-amzn-bedrock-content-type", "application/json".into()));
            }
            let body = stream_body(&format, &tokens, usage, stop, effect.as_ref(), &delays)
                .map_err(|e| ApiError::validation(e.to_string()))?;
            return Ok(WholeResponse {
                status: StatusCode::OK,
                headers,
                body,
                delay_ms: delays.hold_ms,
            });
        }
        if let Some(Effect::Exception { exception_type, .. }) = &effect {
            return Err(ApiError::for_stream_exception(exception_type));
        }
        let text: String = tokens.iter().map(|t| t.text.as_str()).collect();
        // A broken or corrupt body goes out when its fault strikes, not at the end.
        let latency = match &effect {
            Some(e @ (Effect::Drop { .. } | Effect::CorruptFrame { .. })) => {
                delays.latency((e.after_tokens() as usize).min(tokens.len()))
            }
            _ => delays.latency(tokens.len()),
        };
        let json = match op {
            Operation::InvokeModel => {
                let id = answers::message_id(request_id);
                answers::invoke_body(&id, &model, &text, stop, usage)
            }
            _ => answers::converse_body(&text, stop, usage, latency),
        };
        headers.push(("content-type", "application/json".into()));
        if op == Operation::InvokeModel {
            headers.push((
                "x-amzn-bedrock-input-token-count",
                usage.input_tokens.to_string(),
            ));
            headers.push((
                "x-amzn-bedrock-output-token-count",
                usage.output_tokens.to_string(),
            ));
            headers.push((
                "x-amzn-bedrock-invocation-latency",
                latency.total_ms.to_string(),
            ));
        }
        let body = Bytes::from(json.to_string());
        let body = match effect {
            // Half the JSON: the SDK cannot read it (a connection cannot break here).
            Some(Effect::Drop { .. } | Effect::CorruptFrame { .. }) => body.slice(..body.len() / 2),
            _ => body,
        };
        Ok(WholeResponse {
            status: StatusCode::OK,
            headers,
            body,
            delay_ms: delays.hold_ms,
        })
    }
}

/// The scripted times of one answer: each token's delay (a slow first token added),
/// and the stall's, in milliseconds.
#[derive(Debug)]
struct Delays {
    tokens: Vec<u64>,
    /// A finite stall's delay and the token it comes before.
    stall: Option<(usize, u64)>,
    /// What holds the whole response back: the slow first token's extra and the
    /// stall's delay (24 h for a stall without end).
    hold_ms: u64,
}

impl Delays {
    fn of(tokens: &[Token], effect: Option<&Effect>) -> Delays {
        let mut delays: Vec<u64> = tokens.iter().map(|t| t.delay_ms).collect();
        let mut stall = None;
        let mut hold_ms = 0;
        match effect {
            Some(Effect::SlowFirstToken { delay_ms }) => {
                if let Some(first) = delays.first_mut() {
                    *first = add_ms(*first, *delay_ms);
                }
                hold_ms = *delay_ms;
            }
            Some(Effect::Stall {
                after_tokens,
                delay_ms,
            }) => {
                let at = (*after_tokens as usize).min(tokens.len());
                stall = delay_ms.map(|ms| (at, ms));
                hold_ms = delay_ms.unwrap_or(MAX_MS);
            }
            _ => {}
        }
        Delays {
            tokens: delays,
            stall,
            hold_ms,
        }
    }

    /// Milliseconds from the request to token `n` going out (a stall before it included).
    fn token_at(&self, n: usize) -> u64 {
        let tokens = sum_ms(self.tokens.iter().take(n).copied());
        match self.stall {
            Some((at, ms)) if at < n => add_ms(tokens, ms),
            _ => tokens,
        }
    }

    /// Milliseconds from the request to the frame after `n` tokens: a stall due there
    /// (scripted after the last token) comes first.
    fn until(&self, n: usize) -> u64 {
        match self.stall {
            Some((at, ms)) if at == n => add_ms(self.token_at(n), ms),
            _ => self.token_at(n),
        }
    }

    /// The latency numbers reported after `n` tokens.
    fn latency(&self, n: usize) -> Latency {
        let total_ms = self.until(n);
        Latency {
            total_ms,
            first_byte_ms: if n == 0 { total_ms } else { self.token_at(1) },
        }
    }
}

/// The event-stream body: opening, tokens, then the closing or the fault's tail.
fn stream_body(
    format: &StreamFormat,
    tokens: &[Token],
    usage: picasso_core::scenario::Usage,
    stop: picasso_core::scenario::StopReason,
    effect: Option<&Effect>,
    delays: &Delays,
) -> Result<Bytes, FrameError> {
    let mut out = BytesMut::new();
    out.extend_from_slice(&format.opening(usage)?);
    let cut = effect.and_then(|e| match e {
        Effect::Exception { .. } | Effect::Drop { .. } | Effect::CorruptFrame { .. } => {
            Some((e.after_tokens() as usize).min(tokens.len()))
        }
        _ => None,
    });
    let sent = cut.unwrap_or(tokens.len());
    for token in &tokens[..sent] {
        out.extend_from_slice(&format.token(&token.text)?);
    }
    let latency = delays.latency(tokens.len());
    let upcoming = || match tokens.get(sent) {
        Some(token) => format.token(&token.text),
        None => format.closing(stop, usage, delays.latency(sent)),
    };
    match effect {
        Some(Effect::Exception { exception_type, .. }) => out.extend_from_slice(
            &eventstream::exception(exception_type, &exception_payload(exception_type))?,
        ),
        Some(Effect::CorruptFrame { .. }) => {
            out.extend_from_slice(&eventstream::corrupt(&upcoming()?))
        }
        Some(Effect::Drop { .. }) => {
            let frame = upcoming()?;
            out.extend_from_slice(&frame[..frame.len() / 2]);
        }
        _ => out.extend_from_slice(&format.closing(stop, usage, latency)?),
    }
    Ok(out.freeze())
}

/// `/model/{id}/{action}` → (the id percent-decoded, the action).
pub(crate) fn split_path(path: &str) -> Option<(String, &str)> {
    let rest = path.strip_prefix("/model/")?;
    let (model, action) = rest.rsplit_once('/')?;
    Some((percent_decode(model)?, action))
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matchers::any;
    use crate::{Mock, MockState, app};
    use axum::body::Body;
    use http_body_util::BodyExt;
    use picasso_core::scenario::{Fault, FaultKind};
    use proptest::prelude::*;
    use tower::ServiceExt;

    const OPS: [(&str, bool); 4] = [
        ("converse-stream", true),
        ("invoke-with-response-stream", true),
        ("converse", false),
        ("invoke", false),
    ];

    fn body(converse: bool) -> String {
        let messages = serde_json::json!([{"role": "user", "content": [{"text": "Hi there", "type": "text"}]}]);
        if converse {
            serde_json::json!({"messages": messages, "requestMetadata": {"message_id": "m1"}})
        } else {
            serde_json::json!({"anthropic_version": "bedrock-2023-05-31", "max_tokens": 50, "messages": messages})
        }
        .to_string()
    }

    /// Mock Bedrock's own response under a paused clock: status, headers we set, body.
    fn from_router(reply: &Reply, path: &str, body: String) -> (u16, Vec<(String, String)>, Bytes) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .unwrap();
        runtime.block_on(async {
            let state = MockState::new(Scenario::default_scenario());
            Mock::given(any())
                .respond_with(reply.clone())
                .mount_on(&state);
            let request = http::Request::post(path)
                .header("content-type", "application/json")
                .body(Body::from(body))
                .unwrap();
            let response = app(state).oneshot(request).await.unwrap();
            let status = response.status().as_u16();
            let headers = interesting(
                response
                    .headers()
                    .iter()
                    .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap().to_owned())),
            );
            let bytes = response.into_body().collect().await.unwrap().to_bytes();
            (status, headers, bytes)
        })
    }

    fn interesting(headers: impl Iterator<Item = (String, String)>) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = headers
            .map(|(k, v)| (k.to_ascii_lowercase(), v))
            .filter(|(k, _)| k.starts_with("x-amzn") || k == "content-type")
            .collect();
        out.sort();
        out
    }

    fn effect() -> impl Strategy<Value = Option<Fault>> {
        let after = 0u32..5;
        prop_oneof![
            Just(None),
            Just(Some(Fault::bedrock(FaultKind::Throttling))),
            Just(Some(Fault::bedrock(FaultKind::ModelTimeout))),
            (0u64..500).prop_map(|ms| Some(Fault::bedrock(FaultKind::SlowFirstToken).delay_ms(ms))),
            (after.clone(), 1u64..500).prop_map(|(n, ms)| Some(
                Fault::bedrock(FaultKind::Stall)
                    .after_tokens(n)
                    .delay_ms(ms)
            )),
            (
                after.clone(),
                prop_oneof![
                    Just("throttlingException"),
                    Just("modelStreamErrorException"),
                    Just("internalServerException")
                ]
            )
                .prop_map(|(n, e)| Some(
                    Fault::bedrock(FaultKind::Exception)
                        .after_tokens(n)
                        .exception(e)
                )),
            after.prop_map(|n| Some(Fault::bedrock(FaultKind::CorruptFrame).after_tokens(n))),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(picasso_core::testing::proptest_cases(24)))]

        /// The whole response is mock Bedrock's own, byte for byte, for every
        /// operation, answer and fault it can express (a drop breaks the socket there).
        #[test]
        fn whole_responses_are_mock_bedrocks_bytes(
            tokens in proptest::collection::vec(("[ a-z]{1,6}", 0u64..400), 0..6),
            op in 0usize..4,
            fault in effect(),
        ) {
            let answer = Answer::from_tokens(tokens.into_iter().map(|(t, d)| Token::new(t, d)));
            let reply = match fault {
                Some(f) => Reply::answer(answer).with_fault(f),
                None => Reply::answer(answer),
            };
            let (action, converse) = OPS[op];
            let path = format!("/model/anthropic.claude-3-haiku-20240307-v1%3A0/{action}");
            let (status, headers, bytes) = from_router(&reply, &path, body(converse));
            let responder = WholeResponder::new(reply).seed(Scenario::default_scenario().seed);
            let whole = responder.respond(&path, &HeaderMap::new(), body(converse).as_bytes());
            prop_assert_eq!(whole.status.as_u16(), status);
            let whole_headers = interesting(whole.headers.iter().map(|(k, v)| ((*k).to_owned(), v.clone())));
            prop_assert_eq!(whole_headers, headers);
            prop_assert_eq!(whole.body, bytes);
        }
    }

    #[test]
    fn paths_decode_and_unknown_ones_are_bedrocks_404() {
        assert_eq!(
            split_path("/model/us.m%3A0/converse"),
            Some(("us.m:0".to_owned(), "converse"))
        );
        let responder = WholeResponder::new(Answer::from_text("x"));
        let r = responder.respond("/nowhere", &HeaderMap::new(), b"{}");
        assert_eq!(r.status.as_u16(), 404);
        assert!(
            r.header("x-amzn-errortype")
                .unwrap()
                .starts_with("UnknownOperationException:")
        );
        let stall = WholeResponder::new(Fault::bedrock(FaultKind::Stall));
        let r = stall.respond(
            "/model/m/converse-stream",
            &HeaderMap::new(),
            body(true).as_bytes(),
        );
        assert_eq!(
            r.delay_ms, MAX_MS,
            "a stall without end holds the response for good"
        );
    }
}
