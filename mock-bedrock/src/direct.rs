//! `ConverseStream` and `Converse` without HTTP: the same admission (faults, journal),
//! the same answer and the same virtual-time pacing as [`crate::app`] gives an SDK,
//! handed over as text deltas (or the whole text) instead of event-stream bytes or JSON.
//!
//! This is the campaign transport's half inside mock Bedrock (the other half, which
//! turns these items into what the SDK would have reported, lives in
//! `picasso_world`). It only takes the calls whose every outcome it reproduces
//! exactly as the SDK would see it: a clean answer, a slow first token, a finite
//! stall, an exception frame. It declines (returns `None`, having counted and
//! journaled nothing) the rest, which the caller sends through the SDK instead:
//! a model the HTTP path would refuse, a refusal before the stream (the SDK
//! retries those, with its backoff and retry quota), a dropped connection or a
//! corrupt frame (whose errors are the SDK's own wording), a stall with no end,
//! any silence long enough for the SDK's stalled-stream protection to act on
//! ([`LONGEST_SILENCE_MS`]), and any request while wiremock-style mocks are mounted.

use crate::faults::{Effect, exception_payload};
use crate::journal::{EntryGuard, JournalEntry, Outcome};
use crate::operations::Operation;
use crate::pacer::Clock;
use crate::request::{self, ParsedRequest};
use crate::respond::{pick, request_id};
use crate::state::MockState;
use crate::stream::{advance, sleep_for};
use picasso_core::bounds::{add_ms, sum_ms};
use picasso_core::scenario::Token;
use std::collections::BTreeMap;
use tokio::time::Instant;

/// The longest silence (ms) the direct path takes on: the SDK's stalled-stream
/// protection (on for downloads; 1 B/s over a 1 s window, then a 20 s grace period)
/// fails a stream that is silent for over 20 s, so a call that may be silent that
/// long goes through the SDK, which reports it in its own words.
pub const LONGEST_SILENCE_MS: u64 = 15_000;

/// One `ConverseStream` call, as the gateway makes it (`requestMetadata` included): the
/// same value the SDK path takes.
pub type DirectCall<'a> = picasso_core::scenario::Call<'a>;

/// What the stream carries next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DirectItem {
    /// A text delta (`contentBlockDelta`).
    Text(String),
    /// A modeled exception frame, the stream's last item.
    Exception {
        /// The union member as an SDK names its error, e.g. `ThrottlingException`.
        kind: String,
        /// The exception's `message`.
        message: String,
    },
}

/// A paced answer, item by item. Dropped before its end, the journal records the
/// call as cut short (as when an SDK drops the response body).
#[derive(Debug)]
pub struct DirectStream {
    clock: Clock,
    tokens: Vec<Token>,
    effect: Option<Effect>,
    next: usize,
    deadline: Instant,
    done: bool,
    entry: EntryGuard,
}

impl MockState {
    /// Admits `call` to `ConverseStream` as the HTTP path would and returns its paced
    /// answer, or `None` (nothing counted, struck or journaled) when the call must take
    /// the HTTP path for its outcome to be the SDK's (see the module's documentation).
    pub fn converse_stream_direct(&self, call: DirectCall<'_>) -> Option<DirectStream> {
        let started = Instant::now();
        let (entry, tokens, effect) =
            self.admit_direct(Operation::ConverseStream, call, stream_takes)?;
        Some(DirectStream {
            clock: self.clock(),
            tokens,
            effect,
            next: 0,
            deadline: started,
            done: false,
            entry,
        })
    }

    /// Admits `call` to `Converse` (the whole answer at once) as the HTTP path would,
    /// or `None` as [`Self::converse_stream_direct`] declines. It takes a clean answer,
    /// a slow first token and a finite stall (which only delay the response); the
    /// rest (refusals, mid-stream faults, which make an error response or a broken body
    /// the SDK reads, and retries, and a stall with no end) go through the SDK.
    pub fn converse_direct(&self, call: DirectCall<'_>) -> Option<DirectAnswer> {
        let started = Instant::now();
        let (entry, tokens, effect) = self.admit_direct(Operation::Converse, call, whole_takes)?;
        Some(DirectAnswer {
            clock: self.clock(),
            tokens,
            effect,
            started,
            entry,
        })
    }

    /// The admission both operations share: the request the SDK would have sent,
    /// admitted under mock Bedrock's lock if `takes` accepts its answer and effect.
    fn admit_direct(
        &self,
        op: Operation,
        call: DirectCall<'_>,
        takes: fn(&[Token], Option<&Effect>) -> bool,
    ) -> Option<(EntryGuard, Vec<Token>, Option<Effect>)> {
        let scenario = self.scenario();
        if request::check_model_id(call.model).is_err() || !scenario.knows_model(call.model) {
            return None;
        }
        let req = ParsedRequest {
            prompt: call.prompt.to_owned(),
            metadata: BTreeMap::from([
                ("caller".to_owned(), call.caller.as_str().to_owned()),
                ("message_id".to_owned(), call.message.to_owned()),
                ("session_id".to_owned(), call.session.to_owned()),
                ("tenant_hash".to_owned(), call.tenant.to_owned()),
            ]),
        };
        // The SDK's first attempt: a retry only follows a refusal, which is declined.
        let attempt = 1;
        let facts = req.facts(call.model, attempt);
        let make_entry = |seq, scenario: &picasso_core::Scenario| JournalEntry {
            seq,
            request_id: request_id(scenario.seed, seq),
            operation: op,
            model: call.model.to_owned(),
            prompt: req.prompt.clone(),
            tenant: Some(call.tenant.to_owned()),
            session: Some(call.session.to_owned()),
            message: Some(call.message.to_owned()),
            caller: Some(call.caller),
            attempt,
            answer: None,
            outcome: Outcome::InProgress,
            fault: None,
            tokens_sent: 0,
        };
        let (admission, (answer, tokens, effect)) =
            self.admit_if(&facts, make_entry, |fault, answers, _| {
                let effect = fault
                    .and_then(Effect::of)
                    .map(|effect| effect.for_operation(op));
                let answer = pick(answers, call.model, call.prompt);
                let tokens = answer.resolved_tokens();
                takes(&tokens, effect.as_ref()).then_some((answer, tokens, effect))
            })?;
        let entry = admission.entry;
        entry.answer(&answer.id);
        Some((entry, tokens, effect))
    }
}

/// The whole answer of a `Converse` call, sent at its scripted (virtual) time.
/// Dropped before then, the journal records the call as cut short.
#[derive(Debug)]
pub struct DirectAnswer {
    clock: Clock,
    tokens: Vec<Token>,
    effect: Option<Effect>,
    started: Instant,
    entry: EntryGuard,
}

impl DirectAnswer {
    /// Waits out the whole scripted generation (as the HTTP path does before it
    /// answers), then the text: every token's, joined.
    pub async fn text(mut self) -> String {
        let mut delay_ms: Vec<u64> = self.tokens.iter().map(|t| t.delay_ms).collect();
        if let (Some(Effect::SlowFirstToken { delay_ms: extra }), Some(first)) =
            (&self.effect, delay_ms.first_mut())
        {
            *first = add_ms(*first, *extra);
        }
        let mut total = sum_ms(delay_ms.iter().copied());
        if let Some(Effect::Stall {
            delay_ms: Some(ms), ..
        }) = &self.effect
        {
            total = add_ms(total, *ms);
        }
        sleep_for(self.clock, self.started, total).await;
        for _ in &self.tokens {
            self.entry.token_sent();
        }
        self.entry.finish(Outcome::Completed);
        self.tokens.iter().map(|t| t.text.as_str()).collect()
    }
}

/// Whether `Converse`'s direct path gives this answer and effect as the SDK sees it:
/// a delay before the response is all a slow first token or a finite stall does there.
fn whole_takes(_tokens: &[Token], effect: Option<&Effect>) -> bool {
    matches!(
        effect,
        None | Some(Effect::SlowFirstToken { .. })
            | Some(Effect::Stall {
                delay_ms: Some(_),
                ..
            })
    )
}

/// Whether `ConverseStream`'s direct path reproduces every outcome of this answer and
/// effect.
fn stream_takes(tokens: &[Token], effect: Option<&Effect>) -> bool {
    let mut gaps: Vec<u64> = tokens.iter().map(|t| t.delay_ms).collect();
    match effect {
        None | Some(Effect::Exception { .. }) => {}
        Some(Effect::SlowFirstToken { delay_ms }) => {
            if let Some(first) = gaps.first_mut() {
                *first = add_ms(*first, *delay_ms);
            }
        }
        // The stall's silence runs into the next token's own delay.
        Some(Effect::Stall {
            after_tokens,
            delay_ms: Some(ms),
        }) => match gaps.get_mut(*after_tokens as usize) {
            Some(gap) => *gap = add_ms(*gap, *ms),
            None => gaps.push(*ms),
        },
        Some(
            Effect::Refuse(_)
            | Effect::Stall { delay_ms: None, .. }
            | Effect::Drop { .. }
            | Effect::CorruptFrame { .. },
        ) => return false,
    }
    gaps.iter().all(|&ms| ms <= LONGEST_SILENCE_MS)
}

impl DirectStream {
    /// The next item at its scripted (virtual) time; `None` after the answer's end
    /// or after an exception.
    pub async fn next(&mut self) -> Option<DirectItem> {
        if self.done {
            return None;
        }
        loop {
            if self.fault_is_due() {
                match self.effect.take() {
                    Some(Effect::Stall {
                        delay_ms: Some(ms), ..
                    }) => {
                        advance(self.clock, &mut self.deadline, ms).await;
                        continue;
                    }
                    Some(Effect::Exception { exception_type, .. }) => {
                        self.finish();
                        let payload = exception_payload(&exception_type);
                        let message = payload
                            .get("message")
                            .and_then(serde_json::Value::as_str)
                            .unwrap_or_default()
                            .to_owned();
                        return Some(DirectItem::Exception {
                            kind: upper_camel(&exception_type),
                            message,
                        });
                    }
                    // `stream_takes` admits no other mid-stream effect.
                    _ => continue,
                }
            }
            let Some(token) = self.tokens.get(self.next) else {
                self.finish();
                return None;
            };
            let mut delay_ms = token.delay_ms;
            if self.next == 0
                && let Some(Effect::SlowFirstToken { delay_ms: extra }) = self.effect
            {
                delay_ms = add_ms(delay_ms, extra);
            }
            advance(self.clock, &mut self.deadline, delay_ms).await;
            let text = token.text.clone();
            self.next += 1;
            self.entry.token_sent();
            return Some(DirectItem::Text(text));
        }
    }

    /// As the paced HTTP stream decides it: a mid-stream fault strikes before the
    /// next token, or before the closing when scripted after more tokens than there are.
    fn fault_is_due(&self) -> bool {
        match &self.effect {
            None | Some(Effect::Refuse(_)) | Some(Effect::SlowFirstToken { .. }) => false,
            Some(effect) => {
                let at = (effect.after_tokens() as usize).min(self.tokens.len());
                at == self.next
            }
        }
    }

    fn finish(&mut self) {
        self.done = true;
        self.entry.finish(Outcome::Completed);
    }
}

/// `throttlingException` → `ThrottlingException`: the wire's union member as the
/// SDK's error variant is named.
fn upper_camel(member: &str) -> String {
    let mut chars = member.chars();
    match chars.next() {
        Some(first) => first.to_ascii_uppercase().to_string() + chars.as_str(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use picasso_core::Scenario;
    use picasso_core::scenario::Caller;
    use picasso_core::scenario::{Answer, Fault, FaultKind};

    const MODEL: &str = "anthropic.claude-3-haiku-20240307-v1:0";

    fn call() -> DirectCall<'static> {
        DirectCall {
            model: MODEL,
            prompt: "Hello",
            tenant: "t1",
            session: "s1",
            message: "m1",
            caller: Caller::Gateway,
        }
    }

    fn state(faults: Vec<Fault>) -> MockState {
        let mut scenario = Scenario::default_scenario();
        scenario.answers = vec![Answer::from_text("one two three four").paced(300, 50)];
        scenario.faults = faults;
        MockState::new(scenario)
    }

    /// Each item (text, or `!Kind: message` for an error) with its virtual ms.
    type Seen = Vec<(u64, String)>;

    async fn direct(state: &MockState) -> Option<Seen> {
        let start = Instant::now();
        let mut stream = state.converse_stream_direct(call())?;
        let mut seen = Vec::new();
        while let Some(item) = stream.next().await {
            let ms = start.elapsed().as_millis() as u64;
            seen.push(match item {
                DirectItem::Text(t) => (ms, t),
                DirectItem::Exception { kind, message } => (ms, format!("!{kind}: {message}")),
            });
        }
        Some(seen)
    }

    /// The same call through the official SDK over this mock's router.
    async fn sdk(state: &MockState) -> Seen {
        let client = bedrock_client::in_process::client(crate::app(state.clone()));
        let start = Instant::now();
        let c = call();
        let call = bedrock_client::Call {
            model: c.model,
            prompt: c.prompt,
            tenant: c.tenant,
            session: c.session,
            message: c.message,
            caller: c.caller,
        };
        let mut seen = Vec::new();
        match bedrock_client::stream(&client, call).await {
            Ok(mut tokens) => {
                while let Some(item) = tokens.next().await {
                    let ms = start.elapsed().as_millis() as u64;
                    seen.push(match item {
                        Ok(t) => (ms, t),
                        Err(bedrock_client::BedrockError::StreamException { kind, message }) => {
                            (ms, format!("!{kind}: {message}"))
                        }
                        Err(e) => (ms, format!("!{e}")),
                    });
                }
            }
            Err(e) => seen.push((start.elapsed().as_millis() as u64, format!("!{e}"))),
        }
        seen
    }

    /// The faults that only move an answer in time: none, a slow first token, a finite
    /// stall. Both paths must keep the same clock through them.
    fn timing_faults() -> Vec<Option<Fault>> {
        vec![
            None,
            Some(Fault::bedrock(FaultKind::SlowFirstToken).delay_ms(2_000)),
            Some(
                Fault::bedrock(FaultKind::Stall)
                    .after_tokens(2)
                    .delay_ms(5_000),
            ),
        ]
    }

    /// What the direct path takes, it gives as the SDK sees it: the same items at the
    /// same virtual times, and the same journal entry.
    #[tokio::test(start_paused = true)]
    async fn direct_items_and_journal_match_the_sdk() {
        let mut faults = timing_faults();
        faults.extend([
            Some(Fault::bedrock(FaultKind::Exception).after_tokens(1)),
            Some(
                Fault::bedrock(FaultKind::Exception)
                    .after_tokens(9)
                    .exception("throttlingException"),
            ),
            Some(
                Fault::bedrock(FaultKind::Exception)
                    .after_tokens(0)
                    .exception("modelTimeoutException"),
            ),
        ]);
        for fault in faults {
            let (a, b) = (
                state(fault.iter().cloned().collect()),
                state(fault.iter().cloned().collect()),
            );
            let seen = direct(&a).await.expect("the direct path takes it");
            assert_eq!(seen, sdk(&b).await, "{fault:?}");
            assert_eq!(a.journal(), b.journal(), "{fault:?}");
        }
    }

    /// `Converse` through the direct path: the SDK's text at the SDK's virtual time,
    /// and the same journal entry.
    #[tokio::test(start_paused = true)]
    async fn direct_whole_answers_match_the_sdk() {
        let faults = timing_faults();
        let mut master = call();
        master.caller = Caller::Master;
        for fault in faults {
            let (a, b) = (
                state(fault.iter().cloned().collect()),
                state(fault.iter().cloned().collect()),
            );
            let start = Instant::now();
            let answer = a.converse_direct(master).expect("the direct path takes it");
            let direct = (answer.text().await, start.elapsed());
            let client = bedrock_client::in_process::client(crate::app(b.clone()));
            let start = Instant::now();
            let text = bedrock_client::complete(
                &client,
                bedrock_client::Call {
                    model: master.model,
                    prompt: master.prompt,
                    tenant: master.tenant,
                    session: master.session,
                    message: master.message,
                    caller: master.caller,
                },
            )
            .await
            .expect("an answer");
            assert_eq!(direct, (text, start.elapsed()), "{fault:?}");
            assert_eq!(a.journal(), b.journal(), "{fault:?}");
        }
        let refused = state(vec![Fault::bedrock(FaultKind::Exception).after_tokens(1)]);
        assert!(refused.converse_direct(master).is_none());
        assert!(refused.journal().is_empty());
    }

    /// A call the direct path declines leaves no trace: nothing journaled, the fault
    /// not counted, so the SDK's own request meets it.
    #[tokio::test(start_paused = true)]
    async fn declined_calls_leave_nothing_behind() {
        let once = |kind| {
            let mut f = Fault::bedrock(kind);
            f.times = Some(1);
            f
        };
        for fault in [
            once(FaultKind::Throttling),
            once(FaultKind::Drop),
            once(FaultKind::CorruptFrame),
            once(FaultKind::Stall),
            Fault::bedrock(FaultKind::SlowFirstToken).delay_ms(LONGEST_SILENCE_MS + 1),
        ] {
            let s = state(vec![fault.clone()]);
            assert!(s.converse_stream_direct(call()).is_none(), "{fault:?}");
            assert!(s.converse_stream_direct(call()).is_none(), "{fault:?}");
            assert!(s.journal().is_empty(), "{fault:?}");
        }
        let mut unknown = call();
        unknown.model = "not a model id";
        assert!(state(Vec::new()).converse_stream_direct(unknown).is_none());
    }

    /// Dropped before its end, the call is journaled as cut short.
    #[tokio::test(start_paused = true)]
    async fn a_stream_dropped_early_is_cut_short() {
        let s = state(Vec::new());
        let mut stream = s.converse_stream_direct(call()).expect("direct");
        assert_eq!(stream.next().await, Some(DirectItem::Text("one".into())));
        drop(stream);
        let journal = s.journal();
        assert_eq!(journal[0].outcome, Outcome::CutShort);
        assert_eq!(journal[0].tokens_sent, 1);
    }
}
