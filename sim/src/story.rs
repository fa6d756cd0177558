//! What a run shows, in words a person watching a demo can check: every sentence is
//! computed from the run's own records (what the bubble showed, the streaming GETs the
//! network saw and their statuses, the POSTs, mock Bedrock's journal, the invariant
//! results), never written by hand. The demos print these; their tests check each one
//! against the run by a second route.

use crate::Outcome;
use crate::invariants::expected_answer;
use crate::widget::{MessageRecord, Source, Terminal};
use picasso_core::Scenario;
use picasso_core::scenario::AnswerBook;
use std::fmt;

/// One thing a run showed about one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// The bubble ended holding the scripted answer this many times (2+: doubled).
    AnswerShown {
        /// How many times.
        times: usize,
        /// From the stream or the regular chat.
        source: Option<Source>,
    },
    /// The bubble ended holding the scripted answer this many times (2+: doubled),
    /// mixed with other text (another message's answer, interleaved tokens).
    AnswerShownMixed {
        /// How many whole copies of the answer it holds.
        times: usize,
        /// The bubble's length in characters.
        chars: usize,
    },
    /// The bubble ended holding text that is not the scripted answer.
    OtherTextShown(String),
    /// The user saw neither an answer nor an error.
    NothingShown,
    /// While streaming, the bubble showed text the scripted answer does not start with
    /// (another message's text, or the answer twice).
    WrongTextWhileStreaming(String),
    /// The user saw an error with this code.
    ErrorShown(String),
    /// The widget fell back to the regular chat with this many POSTs.
    FellBack {
        /// Fallback POSTs.
        posts: u32,
    },
    /// The browser opened the stream again, unasked by the user: each repeat's status
    /// (`None`: no response).
    Reconnected {
        /// The statuses of the repeated GETs, in order.
        statuses: Vec<Option<u16>>,
    },
    /// Mock Bedrock was called this many times for the message (2+: a second call).
    BedrockCalls(usize),
}

impl fmt::Display for Claim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Claim::AnswerShown { times: 1, source } => {
                write!(f, "the answer shown once{}", from(*source))
            }
            Claim::AnswerShown { times, source } => write!(
                f,
                "the answer shown {times} times over (doubled text){}",
                from(*source)
            ),
            Claim::AnswerShownMixed { times, chars } => write!(
                f,
                "the answer shown {times} time{} over (doubled text), mixed with other text ({chars} characters in the bubble)",
                if *times == 1 { "" } else { "s" }
            ),
            Claim::OtherTextShown(t) => write!(f, "shown {t:?}, not the scripted answer"),
            Claim::NothingShown => write!(f, "nothing shown: no answer, no error"),
            Claim::WrongTextWhileStreaming(t) => {
                write!(f, "while streaming, showed {t:?}, which is not this answer")
            }
            Claim::ErrorShown(code) => write!(f, "an error shown ({code})"),
            Claim::FellBack { posts } => write!(
                f,
                "fell back to the regular chat ({posts} POST{})",
                if *posts == 1 { "" } else { "s" }
            ),
            Claim::Reconnected { statuses } => {
                // Runs of one status: "200 ×59, then 204".
                let mut runs: Vec<(Option<u16>, usize)> = Vec::new();
                for s in statuses {
                    match runs.last_mut() {
                        Some((last, n)) if last == s => *n += 1,
                        _ => runs.push((*s, 1)),
                    }
                }
                let list: Vec<String> = runs
                    .iter()
                    .map(|(s, n)| {
                        let s = s.map_or_else(|| "no response".to_owned(), |s| s.to_string());
                        if *n == 1 { s } else { format!("{s} ×{n}") }
                    })
                    .collect();
                write!(
                    f,
                    "the browser reconnected by itself {} time{} (answered {})",
                    statuses.len(),
                    if statuses.len() == 1 { "" } else { "s" },
                    list.join(", then ")
                )
            }
            Claim::BedrockCalls(n) => write!(f, "{n} Bedrock calls for one message"),
        }
    }
}

fn from(source: Option<Source>) -> &'static str {
    match source {
        Some(Source::Stream) => ", streamed",
        Some(Source::Post) => ", from the regular chat",
        None => "",
    }
}

/// The claims for one message of one session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageStory {
    /// The session.
    pub session: String,
    /// The message.
    pub message: String,
    /// What the run showed, in the order a reader wants it.
    pub claims: Vec<Claim>,
}

/// Every message's story in `outcome`, a run of `scenario`.
pub fn stories(scenario: &Scenario, outcome: &Outcome) -> Vec<MessageStory> {
    let answers = AnswerBook::new(&scenario.answers);
    let mut out = Vec::new();
    let bedrock = outcome.bedrock_index();
    // Each message's GETs' statuses in order, grouped once.
    let mut gets_of: std::collections::BTreeMap<(&str, &str), Vec<Option<u16>>> =
        std::collections::BTreeMap::new();
    for s in &outcome.streams {
        gets_of
            .entry((s.session.as_str(), s.message.as_str()))
            .or_default()
            .push(s.status);
    }
    for session in &outcome.sessions {
        for m in &session.messages {
            let expected = expected_answer(scenario, &answers, &session.tenant, &m.text);
            let mut claims = vec![shown(m, &expected)];
            if let Some(live) = m.live_texts.first_not_prefix_of(&expected) {
                claims.push(Claim::WrongTextWhileStreaming(clip(&live, 60)));
            }
            if m.fallback_posts > 0 {
                claims.push(Claim::FellBack {
                    posts: m.fallback_posts,
                });
            }
            let gets: &[Option<u16>] = gets_of
                .get(&(session.id.as_str(), m.id.as_str()))
                .map_or(&[], Vec::as_slice);
            if gets.len() > 1 {
                claims.push(Claim::Reconnected {
                    statuses: gets[1..].to_vec(),
                });
            }
            let calls = bedrock.get(&session.id, &m.id);
            if calls > 1 {
                claims.push(Claim::BedrockCalls(calls));
            }
            out.push(MessageStory {
                session: session.id.clone(),
                message: m.id.clone(),
                claims,
            });
        }
    }
    out
}

/// What the bubble ended holding.
fn shown(m: &MessageRecord, expected: &str) -> Claim {
    if let Some(code) = &m.error_shown {
        return Claim::ErrorShown(code.clone());
    }
    if m.final_text.is_empty() {
        return Claim::NothingShown;
    }
    let source = match &m.terminal {
        Some(Terminal::Complete(source)) => Some(*source),
        _ => None,
    };
    match repeats(&m.final_text, expected) {
        Some(times) => Claim::AnswerShown { times, source },
        None => match m.final_text.matches(expected).count() {
            0 => Claim::OtherTextShown(clip(&m.final_text, 80)),
            times => Claim::AnswerShownMixed {
                times,
                chars: m.final_text.chars().count(),
            },
        },
    }
}

fn clip(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_owned()
    } else {
        format!("{}…", s.chars().take(n - 1).collect::<String>())
    }
}

/// How many times `text` is `unit` repeated back to back (`None`: it is not).
fn repeats(text: &str, unit: &str) -> Option<usize> {
    if unit.is_empty() || !text.len().is_multiple_of(unit.len()) {
        return None;
    }
    let times = text.len() / unit.len();
    (unit.repeat(times) == text).then_some(times)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeats_counts_whole_copies_only() {
        assert_eq!(repeats("abab", "ab"), Some(2));
        assert_eq!(repeats("ab", "ab"), Some(1));
        assert_eq!(repeats("aba", "ab"), None);
        assert_eq!(repeats("ba", "ab"), None);
        assert_eq!(repeats("", "ab"), Some(0));
    }

    #[test]
    fn claims_read_as_sentences() {
        let doubled = Claim::AnswerShown {
            times: 2,
            source: Some(Source::Stream),
        };
        assert_eq!(
            doubled.to_string(),
            "the answer shown 2 times over (doubled text), streamed"
        );
        let reconnect = Claim::Reconnected {
            statuses: vec![Some(204)],
        };
        assert_eq!(
            reconnect.to_string(),
            "the browser reconnected by itself 1 time (answered 204)"
        );
        let many = Claim::Reconnected {
            statuses: vec![Some(200), Some(200), Some(200), Some(204), None],
        };
        assert_eq!(
            many.to_string(),
            "the browser reconnected by itself 5 times (answered 200 ×3, then 204, then no response)"
        );
    }
}
