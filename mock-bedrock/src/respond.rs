//! Answering one operation call: read the request, admit it (faults, journal), pick
//! the scripted answer, and send it whole or paced.

use crate::answers::{self, Latency, StreamFormat};
use crate::error::ApiError;
use crate::faults::Effect;
use crate::journal::{EntryGuard, JournalEntry, Outcome};
use crate::matchers::Incoming;
use crate::operations::Operation;
use crate::pacer::Clock;
use crate::request::{self, ParsedRequest};
use crate::state::MockState;
use crate::stream::sleep_for;
use crate::stream::{self, Script};
use axum::body::Body;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use picasso_core::bounds::{add_ms, sum_ms};
use picasso_core::rng;
use picasso_core::scenario::{Answer, AnswerBook, Token};
use tokio::time::Instant;

/// The request id of the `seq`-th request under `seed`: the same on every run.
pub fn request_id(seed: u64, seq: u64) -> String {
    rng::uuid(seed, &["mock-bedrock", "request", &seq.to_string()])
}

/// Answers a call to `op` on `model` (already percent-decoded).
pub(crate) async fn answer(
    state: &MockState,
    op: Operation,
    model: String,
    headers: &HeaderMap,
    body: &[u8],
) -> Response {
    let started = Instant::now();
    let attempt = request::attempt(headers);
    let scenario = state.scenario();
    let parsed = request::check_model_id(&model)
        .and_then(|()| {
            if scenario.knows_model(&model) {
                Ok(())
            } else {
                Err(crate::ApiError::validation(
                    "The provided model identifier is invalid.",
                ))
            }
        })
        .and_then(|()| request::parse(op, headers, body));
    let empty = ParsedRequest::default();
    let req = parsed.as_ref().unwrap_or(&empty);
    let facts = req.facts(&model, attempt);
    let incoming = Incoming {
        operation: op,
        model: &model,
        prompt: &req.prompt,
        tenant: facts.tenant,
        session: facts.session,
        message: facts.message,
    };
    // A refused request meets no mock and no fault: Bedrock validates before anything else.
    let admitted = parsed.is_ok().then_some((&facts, &incoming));
    let admission = state.admit(admitted, |seq, scenario| JournalEntry {
        seq,
        request_id: request_id(scenario.seed, seq),
        operation: op,
        model: model.clone(),
        prompt: req.prompt.clone(),
        tenant: req.meta("tenant_hash").map(str::to_owned),
        session: req.meta("session_id").map(str::to_owned),
        message: req.meta("message_id").map(str::to_owned),
        caller: req.caller(),
        attempt,
        answer: None,
        outcome: super::journal::Outcome::InProgress,
        fault: None,
        tokens_sent: 0,
    });
    let mut entry = admission.entry;
    let request_id = entry.request_id().to_owned();
    if let Err(err) = parsed {
        entry.finish(Outcome::Refused);
        return err.into_response_with_id(&request_id);
    }
    let effect = admission
        .fault
        .as_ref()
        .and_then(Effect::of)
        .map(|effect| effect.for_operation(op));
    if let Some(Effect::Refuse(err)) = effect {
        entry.finish(Outcome::Fault);
        return err.into_response_with_id(&request_id);
    }
    let answer = admission
        .mock_answer
        .unwrap_or_else(|| pick(&admission.answers, &model, &req.prompt));
    entry.answer(&answer.id);
    let plan = Plan {
        op,
        model,
        request_id,
        tokens: answer.resolved_tokens(),
        usage: answer.usage_for(&req.prompt),
        stop: answer.stop_reason,
        effect,
        started,
        clock: state.clock(),
    };
    if op.is_streaming() {
        streamed(plan, entry)
    } else {
        whole(plan, entry).await
    }
}

pub(crate) fn pick(answers: &AnswerBook, model: &str, prompt: &str) -> Answer {
    answers
        .answer_for(model, prompt)
        .cloned()
        .unwrap_or_else(Answer::unscripted)
}

/// One admitted request's answer, ready to send.
#[derive(Debug)]
struct Plan {
    op: Operation,
    model: String,
    request_id: String,
    tokens: Vec<Token>,
    usage: picasso_core::scenario::Usage,
    stop: picasso_core::scenario::StopReason,
    effect: Option<Effect>,
    started: Instant,
    clock: Clock,
}

fn streamed(plan: Plan, entry: EntryGuard) -> Response {
    let format = match plan.op {
        Operation::InvokeModelWithResponseStream => StreamFormat::Anthropic {
            id: answers::message_id(&plan.request_id),
            model: plan.model.clone(),
        },
        _ => StreamFormat::Converse,
    };
    let script = Script {
        format,
        tokens: plan.tokens,
        usage: plan.usage,
        stop: plan.stop,
        effect: plan.effect,
        started: plan.started,
        clock: plan.clock,
    };
    let mut response = Body::from_stream(stream::paced(script, entry)).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/vnd.amazon.eventstream"),
    );
    if plan.op == Operation::InvokeModelWithResponseStream {
        headers.insert(
            "x-amzn-bedrock-content-type",
            HeaderValue::from_static("application/json"),
        );
    }
    stamp(response, &plan.request_id)
}

/// The non-streaming operations: wait out the whole scripted generation, then answer.
async fn whole(plan: Plan, mut entry: EntryGuard) -> Response {
    let mut delay_ms: Vec<u64> = plan.tokens.iter().map(|t| t.delay_ms).collect();
    if let (Some(Effect::SlowFirstToken { delay_ms: extra }), Some(first)) =
        (&plan.effect, delay_ms.first_mut())
    {
        *first = add_ms(*first, *extra);
    }
    // Saturating: a scenario built in code may hold delays that overflow when summed.
    let until = |n: usize| -> u64 { sum_ms(delay_ms.iter().take(n).copied()) };
    let all = delay_ms.len();
    let fault_at = plan
        .effect
        .as_ref()
        .map(|e| (e.after_tokens() as usize).min(all));
    match (&plan.effect, fault_at) {
        (Some(Effect::Stall { delay_ms: None, .. }), Some(at)) => {
            sleep_for(plan.clock, plan.started, until(at)).await;
            std::future::pending::<()>().await;
        }
        (
            Some(Effect::Stall {
                delay_ms: Some(ms), ..
            }),
            _,
        ) => {
            sleep_for(plan.clock, plan.started, add_ms(until(all), *ms)).await;
        }
        (Some(Effect::Exception { exception_type, .. }), Some(at)) => {
            sleep_for(plan.clock, plan.started, until(at)).await;
            entry.finish(Outcome::Fault);
            return ApiError::for_stream_exception(exception_type)
                .into_response_with_id(&plan.request_id);
        }
        (Some(Effect::Drop { .. } | Effect::CorruptFrame { .. }), Some(at)) => {
            sleep_for(plan.clock, plan.started, until(at)).await;
        }
        _ => sleep_for(plan.clock, plan.started, until(all)).await,
    }
    let first_ms = delay_ms.first().copied().unwrap_or(0);
    let latency = Latency {
        total_ms: plan.started.elapsed().as_millis() as u64,
        first_byte_ms: first_ms,
    };
    let text: String = plan.tokens.iter().map(|t| t.text.as_str()).collect();
    let json = match plan.op {
        Operation::InvokeModel => answers::invoke_body(
            &answers::message_id(&plan.request_id),
            &plan.model,
            &text,
            plan.stop,
            plan.usage,
        ),
        _ => answers::converse_body(&text, plan.stop, plan.usage, latency),
    };
    let body = Bytes::from(json.to_string());
    for _ in &plan.tokens {
        entry.token_sent();
    }
    entry.finish(Outcome::Completed);
    let body = match plan.effect {
        // A broken transfer: half the body arrives, then the chunked body breaks off unfinished.
        Some(Effect::Drop { .. }) => broken_body(body),
        // A corrupt body: the JSON is cut, so the SDK cannot read it.
        Some(Effect::CorruptFrame { .. }) => Body::from(body.slice(..body.len() / 2)),
        _ => Body::from(body),
    };
    let mut response = (StatusCode::OK, body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if plan.op == Operation::InvokeModel {
        let counts = [
            (
                "x-amzn-bedrock-input-token-count",
                u64::from(plan.usage.input_tokens),
            ),
            (
                "x-amzn-bedrock-output-token-count",
                u64::from(plan.usage.output_tokens),
            ),
            ("x-amzn-bedrock-invocation-latency", latency.total_ms),
        ];
        for (name, value) in counts {
            headers.insert(name, HeaderValue::from(value));
        }
    }
    stamp(response, &plan.request_id)
}

/// A body that sends its first half, then breaks the connection.
fn broken_body(body: Bytes) -> Body {
    let half = body.slice(..body.len() / 2);
    let chunks: [Result<Bytes, stream::StreamBroken>; 2] =
        [Ok(half), Err(stream::StreamBroken::Dropped)];
    Body::from_stream(futures_util::stream::iter(chunks))
}

fn stamp(mut response: Response, request_id: &str) -> Response {
    if let Ok(value) = HeaderValue::from_str(request_id) {
        response.headers_mut().insert("x-amzn-RequestId", value);
    }
    response
}
