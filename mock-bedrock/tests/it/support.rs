//! Helpers shared by the SDK tests: a scenario with known answers, SDK clients.

use aws_sdk_bedrockruntime::Client;
use aws_sdk_bedrockruntime::config::retry::RetryConfig;
use bedrock_client::{BedrockConfig, Runtime, build_client};
use mock_bedrock::{JournalEntry, MockBedrock, Outcome};
use picasso_core::Scenario;
use picasso_core::scenario::{Answer, Fault, FaultKind, FaultTarget, Token};
use std::time::Duration;

/// The model the tests call.
pub const MODEL: &str = "anthropic.claude-3-haiku-20240307-v1:0";

/// The prompt with a scripted answer, and its tokens.
pub const PROMPT: &str = "What are your hours?";
pub const TOKENS: [&str; 5] = ["We", " are", " open", " 9", " to 5."];

/// A scenario whose only answer is [`TOKENS`] for [`PROMPT`], 5 ms apart.
pub fn scenario() -> Scenario {
    let mut s = Scenario::default_scenario();
    s.faults.clear();
    s.answers = vec![Answer {
        id: "hours".into(),
        model: None,
        prompt: Some(PROMPT.into()),
        pattern: None,
        tokens: TOKENS
            .iter()
            .map(|t| Token {
                text: (*t).into(),
                delay_ms: 5,
            })
            .collect(),
        text: None,
        pacing: None,
        usage: None,
        stop_reason: Default::default(),
    }];
    s
}

pub async fn start() -> MockBedrock {
    MockBedrock::start(scenario()).await
}

/// The servers' own client (`bedrock-client`), pointed at the mock.
pub fn client(mock: &MockBedrock) -> Client {
    build_client(&BedrockConfig::mock(mock.endpoint()), Runtime::default())
}

/// The same client with `max_attempts` and a 1 ms backoff, so retry tests are quick.
pub fn client_with_attempts(mock: &MockBedrock, max_attempts: u32) -> Client {
    let base = client(mock);
    let config = base
        .config()
        .to_builder()
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(max_attempts)
                .with_initial_backoff(Duration::from_millis(1)),
        )
        .build();
    Client::from_conf(config)
}

pub fn bedrock_fault(kind: FaultKind) -> Fault {
    Fault::new(FaultTarget::Bedrock, kind)
}

pub fn mid_stream(kind: FaultKind, after_tokens: u32) -> Fault {
    let mut f = bedrock_fault(kind);
    f.after_tokens = Some(after_tokens);
    f
}

/// Waits (briefly, in real time) until the journal's last entry is no longer in progress.
pub async fn settled(mock: &MockBedrock) -> JournalEntry {
    for _ in 0..200 {
        if let Some(last) = mock.journal().pop()
            && last.outcome != Outcome::InProgress
        {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the request never finished: {:?}", mock.journal());
}
