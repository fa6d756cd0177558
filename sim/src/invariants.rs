//! The invariants of `widget-and-determinism.md` §B.7, checked over a finished run.
//!
//! Each [`Property`] reads only the [`Outcome`] (the widgets' records, the network's
//! view of streaming GETs, mock Bedrock's journal) and the scenario, so the checks are
//! independent of the code they check.

use crate::simulator::Outcome;
use crate::widget::{Mode, Terminal, decide};
use picasso_core::bounds::sum_ms;
use picasso_core::scenario::{Answer, AnswerBook, Scenario};
use std::collections::BTreeMap;
use std::fmt;

/// A checked property.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Property {
    /// #1: each message ends in exactly one outcome, within the liveness bound.
    OneOutcome,
    /// #2: the text shown is the scripted answer, never doubled, mixed or foreign; while
    /// streaming, only prefixes of it.
    ExactText,
    /// #3: no fallback POST for a message whose `end` arrived.
    NoFallbackAfterEnd,
    /// #4: at most one streaming GET per message, except resumes carrying `Last-Event-ID`.
    NoHiddenReconnects,
    /// #5: Bedrock calls per message: ≤ 1 if the stream completed, ≤ 2 overall.
    BedrockBudget,
    /// #6: p = 0, streaming disabled or no EventSource ⇒ no GET; p = 100 ⇒ every message streams.
    RolloutGate,
    /// A tenant without streaming never reaches the gateway.
    NonStreamingTenantOffGateway,
    /// #7: a session's mode never flips and is the sticky function of (tenant, session, p).
    StickyMode,
    /// #12: every message shows an answer or a visible error: no silent drop.
    NoSilentDrop,
    /// #13: started = completed + failed + cancelled; fallbacks counted once each.
    MetricArithmetic,
    /// #11: a fault-free run logs no error, falls back never, one GET and one Bedrock call per message.
    CleanPath,
    /// #10: nothing open after the page closes.
    NoLeaks,
    /// The gateway's limits: ≤ N streams per session per window, none longer than the cap.
    LimitsHold,
    /// The rollback plan's promises under a config change: streams in flight at the
    /// change finish naturally; once streaming is disabled, the gateway serves no new
    /// stream for that tenant after its cached config expires (`config_ttl_ms`).
    RollbackHolds,
    /// The widget's own code ran to the end: no JavaScript error escaped an entry point,
    /// no task ran out of its instruction budget.
    WidgetRuns,
}

impl Property {
    /// Every property.
    pub const ALL: [Property; 15] = [
        Property::OneOutcome,
        Property::ExactText,
        Property::NoFallbackAfterEnd,
        Property::NoHiddenReconnects,
        Property::BedrockBudget,
        Property::RolloutGate,
        Property::NonStreamingTenantOffGateway,
        Property::StickyMode,
        Property::NoSilentDrop,
        Property::MetricArithmetic,
        Property::CleanPath,
        Property::NoLeaks,
        Property::LimitsHold,
        Property::RollbackHolds,
        Property::WidgetRuns,
    ];

    /// A kebab-case name.
    pub fn name(self) -> &'static str {
        match self {
            Property::OneOutcome => "one-outcome",
            Property::ExactText => "exact-text",
            Property::NoFallbackAfterEnd => "no-fallback-after-end",
            Property::NoHiddenReconnects => "no-hidden-reconnects",
            Property::BedrockBudget => "bedrock-budget",
            Property::RolloutGate => "rollout-gate",
            Property::NonStreamingTenantOffGateway => "non-streaming-tenant-off-gateway",
            Property::StickyMode => "sticky-mode",
            Property::NoSilentDrop => "no-silent-drop",
            Property::MetricArithmetic => "metric-arithmetic",
            Property::CleanPath => "clean-path",
            Property::NoLeaks => "no-leaks",
            Property::LimitsHold => "limits-hold",
            Property::RollbackHolds => "rollback-holds",
            Property::WidgetRuns => "widget-runs",
        }
    }
}

/// One broken invariant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// Which.
    pub property: Property,
    /// Where: `session` or `session/message`.
    pub place: String,
    /// What was seen.
    pub detail: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "VIOLATED {} at {}: {}",
            self.property.name(),
            self.place,
            self.detail
        )
    }
}

/// The text the scripted Bedrock gives for a message of a tenant (`answers` is the
/// scenario's [`AnswerBook`], built once per check).
pub fn expected_answer(
    scenario: &Scenario,
    answers: &AnswerBook,
    tenant: &str,
    prompt: &str,
) -> String {
    let model = scenario
        .tenant(tenant)
        .map(|t| t.streaming_model.clone())
        .unwrap_or_else(|| picasso_core::scenario::DEFAULT_MODEL.to_owned());
    answers
        .answer_for(&model, prompt)
        .map(|a| a.full_text())
        .unwrap_or_else(|| Answer::unscripted().full_text())
}

/// Checks every property.
pub fn check(scenario: &Scenario, outcome: &Outcome) -> Vec<Violation> {
    let mut v = Checker {
        scenario,
        answers: AnswerBook::new(&scenario.answers),
        outcome,
        out: Vec::new(),
    };
    v.widget_runs();
    v.per_message();
    v.per_session();
    v.network();
    v.rollbacks();
    v.out
}

struct Checker<'a> {
    scenario: &'a Scenario,
    /// The scenario's answers, patterns compiled once for every message checked.
    answers: AnswerBook,
    outcome: &'a Outcome,
    out: Vec<Violation>,
}

impl Checker<'_> {
    fn fail(&mut self, property: Property, place: String, detail: String) {
        self.out.push(Violation {
            property,
            place,
            detail,
        });
    }

    fn widget_runs(&mut self) {
        for s in &self.outcome.sessions {
            if let Some(e) = &s.widget_error {
                self.fail(Property::WidgetRuns, s.id.clone(), e.clone());
            }
        }
    }

    fn liveness_bound(&self, retry_wait_ms: u64) -> u64 {
        let w = self.scenario.widget;
        let resume = if w.resume {
            w.reconnect_ms.saturating_add(w.connect_timeout_ms)
        } else {
            0
        };
        // Saturating: timers a scenario built in code sets near u64::MAX mean "no bound".
        sum_ms([
            w.connect_timeout_ms,
            w.total_timeout_ms,
            w.post_timeout_ms,
            w.post_timeout_ms,
            retry_wait_ms,
            resume,
        ])
    }

    /// Whether a run should be spotless: no faults, nothing over a limit or a timer.
    fn clean_scenario(&self) -> bool {
        let limits = self.scenario.limits;
        let w = self.scenario.widget;
        let fits = |tenant: &str, prompt: &str| {
            let model = self
                .scenario
                .tenant(tenant)
                .map(|t| t.streaming_model.clone())
                .unwrap_or_default();
            let tokens = self
                .answers
                .answer_for(&model, prompt)
                .map(|a| a.resolved_tokens())
                .unwrap_or_default();
            let total = sum_ms(tokens.iter().map(|t| t.delay_ms));
            let longest_gap = tokens.iter().map(|t| t.delay_ms).max().unwrap_or(0);
            total
                < limits
                    .max_stream_ms
                    .min(w.total_timeout_ms)
                    .min(w.post_timeout_ms)
                && longest_gap < w.idle_timeout_ms.min(w.connect_timeout_ms)
        };
        // A config change (a rollback) and a page on an origin the tenant does not
        // allow are causes of a fallback as real as a fault.
        self.scenario.faults.is_empty()
            && self.scenario.config_changes.is_empty()
            && self
                .scenario
                .sessions
                .iter()
                .all(|s| s.messages.iter().all(|m| fits(&s.tenant, &m.text)))
            && self.scenario.sessions.iter().all(|s| {
                let tenant = self.scenario.tenant(&s.tenant);
                tenant.is_some()
                    && s.origin
                        .as_ref()
                        .is_none_or(|o| tenant.is_some_and(|t| t.allowed_origins.contains(o)))
                    && s.messages.len() as u32 <= limits.rate_limit
                    && s.messages.iter().all(|m| {
                        !m.text.trim().is_empty()
                            && m.text.chars().count() as u32 <= limits.max_input_chars
                            && !m.text.chars().any(picasso_core::wire::is_forbidden_char)
                    })
            })
    }

    fn per_message(&mut self) {
        let clean = self.clean_scenario();
        let outcome = self.outcome;
        let bedrock = outcome.bedrock_index();
        for s in &outcome.sessions {
            for m in &s.messages {
                let place = format!("{}/{}", s.id, m.id);
                let expected = expected_answer(self.scenario, &self.answers, &s.tenant, &m.text);
                let calls = bedrock.get(&s.id, &m.id);
                // One outcome, in time.
                match (&m.terminal, m.finished_at) {
                    (None, _) => self.fail(
                        Property::OneOutcome,
                        place.clone(),
                        "no outcome: neither an answer nor an error".into(),
                    ),
                    (Some(_), Some(end)) => {
                        let took = end.saturating_sub(m.sent_at);
                        let bound = self.liveness_bound(m.retry_wait_ms);
                        if took > bound {
                            self.fail(
                                Property::OneOutcome,
                                place.clone(),
                                format!("ended after {took} ms, bound {bound} ms"),
                            );
                        }
                    }
                    (Some(_), None) => {}
                }
                if m.terminal_count > 1 {
                    self.fail(
                        Property::OneOutcome,
                        place.clone(),
                        format!("{} outcomes", m.terminal_count),
                    );
                }
                // Exact text.
                if let Some(live) = m.live_texts.first_not_prefix_of(&expected) {
                    self.fail(
                        Property::ExactText,
                        place.clone(),
                        format!(
                            "showed {} while streaming; the answer is {}",
                            q(&live),
                            q(&expected)
                        ),
                    );
                }
                match &m.terminal {
                    Some(Terminal::Complete(_)) if m.final_text != expected => {
                        self.fail(
                            Property::ExactText,
                            place.clone(),
                            format!("shows {}; the answer is {}", q(&m.final_text), q(&expected)),
                        );
                    }
                    Some(Terminal::Failed { .. }) if !m.final_text.is_empty() => {
                        self.fail(
                            Property::ExactText,
                            place.clone(),
                            format!("failed but shows {}", q(&m.final_text)),
                        );
                    }
                    _ => {}
                }
                if m.end_seen && m.posts > 0 {
                    self.fail(
                        Property::NoFallbackAfterEnd,
                        place.clone(),
                        format!("`end` arrived, then {} POST(s)", m.posts),
                    );
                }
                let plain_gets = m.gets - m.gets_with_last_event_id;
                let resumes_allowed = if self.scenario.widget.resume { 1 } else { 0 };
                if plain_gets > 1 || m.gets_with_last_event_id > resumes_allowed {
                    self.fail(
                        Property::NoHiddenReconnects,
                        place.clone(),
                        format!(
                            "{} streaming GETs ({} with Last-Event-ID)",
                            m.gets, m.gets_with_last_event_id
                        ),
                    );
                }
                let stream_done =
                    m.terminal == Some(Terminal::Complete(crate::widget::Source::Stream));
                // One generation for the stream, one per POST (the fallback and its one retry).
                let budget = 1 + m.posts.min(2) as usize;
                if calls > budget || m.posts > 2 || (stream_done && calls > 1) {
                    self.fail(
                        Property::BedrockBudget,
                        place.clone(),
                        format!(
                            "{calls} Bedrock calls{}",
                            if stream_done {
                                " for a completed stream"
                            } else {
                                ""
                            }
                        ),
                    );
                }
                let visible = match &m.terminal {
                    Some(Terminal::Complete(_)) => !m.final_text.is_empty() || expected.is_empty(),
                    Some(Terminal::Failed { code }) => !code.is_empty() && m.error_shown.is_some(),
                    Some(Terminal::Cancelled) => true,
                    None => false,
                };
                if !visible {
                    self.fail(
                        Property::NoSilentDrop,
                        place.clone(),
                        format!("the user sees {} and no error", q(&m.final_text)),
                    );
                }
                if clean {
                    let problem = if m.errors_logged > 0 {
                        Some(format!("{} error(s) logged", m.errors_logged))
                    } else if m.fallback_posts > 0 {
                        Some("fell back".to_owned())
                    } else if m.mode == Mode::Stream && (m.gets != 1 || m.posts != 0) {
                        Some(format!("{} GETs and {} POSTs", m.gets, m.posts))
                    } else if calls > 1
                        || (calls == 0 && !matches!(m.terminal, Some(Terminal::Cancelled)))
                    {
                        // A message the page closed on may end before its request
                        // reached Bedrock (the user sends and closes in the same
                        // instant): zero calls, and nothing wrong.
                        Some(format!("{calls} Bedrock calls"))
                    } else {
                        None
                    };
                    if let Some(p) = problem {
                        self.fail(
                            Property::CleanPath,
                            place.clone(),
                            format!("fault-free run: {p}"),
                        );
                    }
                }
            }
        }
    }

    fn per_session(&mut self) {
        let outcome = self.outcome;
        for s in &outcome.sessions {
            // The config the widget decided with: the one in force when its page loaded.
            let tenant = self
                .scenario
                .tenant_at(&s.tenant, s.config_at_ms.unwrap_or(0));
            let gets: u32 = s.messages.iter().map(|m| m.gets).sum();
            if let Some(t) = tenant {
                let p = t.streaming_percentage;
                let closed = !t.streaming_enabled || decide::admitted(p) == 0 || !s.event_source;
                if closed && gets > 0 {
                    self.fail(Property::RolloutGate, s.id.clone(), format!("{gets} streaming GET(s) with streaming_enabled={} p={p} EventSource={}", t.streaming_enabled, s.event_source));
                }
                let open = t.streaming_enabled
                    && decide::admitted(p) == decide::BUCKETS
                    && s.event_source
                    && s.config_loaded;
                if open && let Some(m) = s.messages.iter().find(|m| m.mode != Mode::Stream) {
                    self.fail(
                        Property::RolloutGate,
                        format!("{}/{}", s.id, m.id),
                        "p = 100 but the message did not stream".into(),
                    );
                }
                if s.config_loaded {
                    let want = if t.streaming_enabled
                        && s.event_source
                        && decide::sticky(&t.hash, &s.id, p)
                    {
                        Mode::Stream
                    } else {
                        Mode::Regular
                    };
                    if let Some(m) = s.messages.iter().find(|m| m.mode != want) {
                        self.fail(
                            Property::StickyMode,
                            format!("{}/{}", s.id, m.id),
                            format!("mode {:?}, the session's sticky mode is {want:?}", m.mode),
                        );
                    }
                }
            }
            let m = &s.metrics;
            if m.streaming_started
                != m.streaming_completed + m.streaming_failed + m.streaming_cancelled
            {
                self.fail(
                    Property::MetricArithmetic,
                    s.id.clone(),
                    format!(
                        "started {} ≠ completed {} + failed {} + cancelled {}",
                        m.streaming_started,
                        m.streaming_completed,
                        m.streaming_failed,
                        m.streaming_cancelled
                    ),
                );
            }
            let fell_back = s.messages.iter().filter(|r| r.fallback_posts > 0).count() as u32;
            if m.fallback_triggered != fell_back {
                self.fail(
                    Property::MetricArithmetic,
                    s.id.clone(),
                    format!(
                        "fallback_triggered {} ≠ {fell_back} messages that fell back",
                        m.fallback_triggered
                    ),
                );
            }
            let streamed = s.messages.iter().filter(|r| r.mode == Mode::Stream).count() as u32;
            if m.streaming_started != streamed {
                self.fail(
                    Property::MetricArithmetic,
                    s.id.clone(),
                    format!(
                        "streaming_started {} ≠ {streamed} streamed messages",
                        m.streaming_started
                    ),
                );
            }
            let l = s.leaks;
            if l.open_event_sources + l.posts_in_flight + l.timers > 0 {
                self.fail(Property::NoLeaks, s.id.clone(), format!(
                    "after the page closed: {} EventSource(s) open, {} POST(s) in flight, {} timer(s)",
                    l.open_event_sources, l.posts_in_flight, l.timers
                ));
            }
        }
    }

    /// [`Property::RollbackHolds`].
    fn rollbacks(&mut self) {
        let outcome = self.outcome;
        let scenario = self.scenario;
        // Each message by session and id, the first of a pair if ids repeat (as a
        // search in order would find it).
        let mut messages: BTreeMap<(&str, &str), &crate::widget::MessageRecord> = BTreeMap::new();
        if !scenario.config_changes.is_empty() {
            for (s, m) in outcome.messages() {
                messages.entry((s, m.id.as_str())).or_insert(m);
            }
        }
        for change in &scenario.config_changes {
            let t = change.at_ms;
            let names = |tenant: &str| change.tenant.as_ref().is_none_or(|h| h == tenant);
            // Streams in flight at the change finish naturally (only a fault may cut
            // one, so this is checked where none is scripted).
            if scenario.faults.is_empty() {
                for r in outcome.streams.iter().filter(|r| names(&r.tenant)) {
                    let in_flight =
                        r.status == Some(200) && r.at_ms < t && r.ended_ms.is_none_or(|e| e > t);
                    let Some(m) = messages
                        .get(&(r.session.as_str(), r.message.as_str()))
                        .copied()
                    else {
                        continue;
                    };
                    let page_closed = matches!(m.terminal, Some(Terminal::Cancelled));
                    if in_flight && !page_closed && !m.end_seen {
                        self.fail(
                            Property::RollbackHolds,
                            format!("{}/{}", r.session, r.message),
                            format!(
                                "a stream in flight at the config change (t={t} ms) never delivered its `end` ({:?})",
                                m.terminal
                            ),
                        );
                    }
                }
            }
            // Streaming disabled: no new stream served after the gateway's cache expires.
            if change.streaming_enabled == Some(false) {
                let after = t.saturating_add(scenario.limits.config_ttl_ms);
                if let Some(r) = outcome
                    .streams
                    .iter()
                    .find(|r| names(&r.tenant) && r.status == Some(200) && r.at_ms > after)
                {
                    self.fail(
                        Property::RollbackHolds,
                        format!("{}/{}", r.session, r.message),
                        format!(
                            "streaming disabled at t={t} ms, yet a stream was served at t={} ms (cache {} ms)",
                            r.at_ms, scenario.limits.config_ttl_ms
                        ),
                    );
                }
            }
        }
    }

    fn network(&mut self) {
        let outcome = self.outcome;
        let limits = self.scenario.limits;
        // Indexed once: looked up per stream and per session, a scan each made a run of
        // 30,000 sessions spend half its time here.
        let mut config_at: BTreeMap<&str, Option<u64>> = BTreeMap::new();
        for s in &outcome.sessions {
            config_at.entry(s.id.as_str()).or_insert(s.config_at_ms);
        }
        let mut served_by_session: BTreeMap<&str, Vec<&crate::driver::StreamRequest>> =
            BTreeMap::new();
        for r in outcome.streams.iter().filter(|r| r.status == Some(200)) {
            served_by_session
                .entry(r.session.as_str())
                .or_default()
                .push(r);
        }
        for r in &outcome.streams {
            let loaded_at = config_at
                .get(r.session.as_str())
                .copied()
                .flatten()
                .unwrap_or(0);
            if self
                .scenario
                .tenant_at(&r.tenant, loaded_at)
                .is_some_and(|t| !t.streaming_enabled)
            {
                self.fail(
                    Property::NonStreamingTenantOffGateway,
                    format!("{}/{}", r.session, r.message),
                    format!("GET reached the gateway at t={} ms", r.at_ms),
                );
            }
        }
        for s in &outcome.sessions {
            let served: &[&crate::driver::StreamRequest] = served_by_session
                .get(s.id.as_str())
                .map_or(&[], Vec::as_slice);
            // The rate limit is our gateway's promise; the document's code has none
            // (`Servers::AsWritten`), so there it is not checked.
            let rate_limited = self.scenario.servers.is_hardened();
            for (i, first) in served.iter().enumerate().filter(|_| rate_limited) {
                let within = served[i..]
                    .iter()
                    .take_while(|r| r.at_ms < first.at_ms.saturating_add(limits.rate_window_ms))
                    .count() as u32;
                if within > limits.rate_limit {
                    self.fail(
                        Property::LimitsHold,
                        s.id.clone(),
                        format!(
                            "{within} streams served within {} ms of t={}",
                            limits.rate_window_ms, first.at_ms
                        ),
                    );
                    break;
                }
            }
            // The gateway caps a stream at max_stream_ms from its start; allow the
            // pre-stream part (config fetch, Bedrock's first byte) on top.
            let slack = 1_000;
            for r in served {
                if let Some(end) = r.ended_ms
                    && end.saturating_sub(r.at_ms)
                        > sum_ms([
                            limits.max_stream_ms,
                            slack,
                            first_token_allowance(self.scenario),
                        ])
                {
                    self.fail(
                        Property::LimitsHold,
                        format!("{}/{}", r.session, r.message),
                        format!(
                            "stream open for {} ms, cap {} ms",
                            end.saturating_sub(r.at_ms),
                            limits.max_stream_ms
                        ),
                    );
                }
            }
        }
    }
}

/// Time before a stream's headers that the cap does not count (latency faults at the edge).
fn first_token_allowance(scenario: &Scenario) -> u64 {
    scenario
        .faults
        .iter()
        .filter(|f| matches!(f.kind, picasso_core::scenario::FaultKind::Latency))
        .filter_map(|f| f.delay_ms)
        .fold(0, u64::saturating_add)
}

fn q(s: &str) -> String {
    crate::widget::quote(s)
}
