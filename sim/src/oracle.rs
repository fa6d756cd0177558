//! What the Rust policies and a JavaScript widget must agree on, when one is the
//! other's oracle: per message its mode, outcome, final text, visible error, streaming
//! GETs, POSTs and fallback POSTs, and Bedrock calls; per session the widget's metrics.
//! Transcripts are left out on purpose: a widget's own log lines differ by design
//! (the Rust policies write notes, a JavaScript widget writes `console.*`).

use crate::simulator::Outcome;
use crate::widget::{Mode, Terminal};

/// One message, as both sides must see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageView {
    /// `session/message`.
    pub id: String,
    /// Stream or regular.
    pub mode: Mode,
    /// How it ended.
    pub terminal: Option<Terminal>,
    /// The text the bubble holds at the end.
    pub final_text: String,
    /// The error shown, if any.
    pub error_shown: Option<String>,
    /// Streaming GETs, with `Last-Event-ID` ones.
    pub gets: (u32, u32),
    /// POSTs, with fallback ones.
    pub posts: (u32, u32),
    /// Bedrock calls in the journal.
    pub bedrock: usize,
}

/// A whole run, as both sides must see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OracleView {
    /// Every message in session and send order.
    pub messages: Vec<MessageView>,
    /// Per session: started, completed, failed, fallback, cancelled.
    pub metrics: Vec<(String, [u32; 5])>,
}

/// The view of a run.
pub fn view(outcome: &Outcome) -> OracleView {
    let calls = outcome.bedrock_index();
    let messages = outcome
        .messages()
        .map(|(session, m)| MessageView {
            id: format!("{session}/{}", m.id),
            mode: m.mode,
            terminal: m.terminal.clone(),
            final_text: m.final_text.clone(),
            error_shown: m.error_shown.clone(),
            gets: (m.gets, m.gets_with_last_event_id),
            posts: (m.posts, m.fallback_posts),
            bedrock: calls.get(session, &m.id),
        })
        .collect();
    let metrics = outcome
        .sessions
        .iter()
        .map(|s| {
            let m = &s.metrics;
            (
                s.id.clone(),
                [
                    m.streaming_started,
                    m.streaming_completed,
                    m.streaming_failed,
                    m.fallback_triggered,
                    m.streaming_cancelled,
                ],
            )
        })
        .collect();
    OracleView { messages, metrics }
}
