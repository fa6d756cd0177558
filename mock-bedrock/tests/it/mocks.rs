//! The wiremock-style API (`Mock::given(…).respond_with(…).expect(n)`), driven by the
//! official Rust SDK over loopback. These tests use only the new API and the builders.

use crate::support::client_with_attempts;
use aws_sdk_bedrockruntime::Client;
use aws_sdk_bedrockruntime::error::ProvideErrorMetadata;
use aws_sdk_bedrockruntime::types::{
    ContentBlock, ContentBlockDelta, ConversationRole, ConverseStreamOutput, Message,
};
use mock_bedrock::matchers::{message, model, operation, prompt, prompt_matches};
use mock_bedrock::{Mock, MockBedrock, Operation, Outcome, Reply};
use picasso_core::Scenario;
use picasso_core::scenario::{Answer, Fault, FaultKind};

const HAIKU: &str = "anthropic.claude-3-haiku-20240307-v1:0";
const NOVA: &str = "amazon.nova-lite-v1:0";

fn user(text: &str) -> Message {
    Message::builder()
        .role(ConversationRole::User)
        .content(ContentBlock::Text(text.into()))
        .build()
        .expect("a user message")
}

/// The text deltas of one ConverseStream call, or the error code that ended it.
async fn stream(client: &Client, model_id: &str, text: &str) -> Result<Vec<String>, String> {
    let mut out = client
        .converse_stream()
        .model_id(model_id)
        .messages(user(text))
        .send()
        .await
        .map_err(|e| e.code().unwrap_or("no code").to_owned())?;
    let mut deltas = Vec::new();
    loop {
        match out.stream.recv().await {
            Ok(Some(ConverseStreamOutput::ContentBlockDelta(d))) => {
                if let Some(ContentBlockDelta::Text(t)) = d.delta {
                    deltas.push(t);
                }
            }
            Ok(Some(_)) => {}
            Ok(None) => return Ok(deltas),
            Err(e) => {
                // The SDK leaves `code()` empty on stream exceptions: ask the variant.
                return match e.as_service_error() {
                    Some(s) if s.is_throttling_exception() => Err("throttlingException".into()),
                    _ => Err(format!("{e:?}")),
                };
            }
        }
    }
}

/// The example: a paced answer for one model, throttling for another, both
/// through the SDK; an `.expect(1)` nobody meets fails with a readable report.
#[tokio::test]
async fn one_model_answers_another_is_throttled_and_an_unmet_expectation_reports() {
    let server = MockBedrock::start(Scenario::default_scenario()).await;
    Mock::given(model(NOVA))
        .respond_with(Answer::from_text("Nova says hello").paced(30, 10))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(operation(Operation::ConverseStream))
        .and(model(HAIKU))
        .respond_with(Fault::bedrock(FaultKind::Throttling))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(prompt("never sent"))
        .respond_with(Answer::from_text("unused"))
        .named("the unsent prompt")
        .expect(1)
        .mount(&server)
        .await;

    let client = client_with_attempts(&server, 1);
    let nova = stream(&client, NOVA, "Hi").await;
    assert_eq!(
        nova,
        Ok(vec!["Nova".into(), " says".into(), " hello".into()])
    );
    let haiku = stream(&client, HAIKU, "Hi").await;
    assert_eq!(haiku, Err("ThrottlingException".into()));

    let report = server.verify().expect_err("one expectation is unmet");
    assert_eq!(
        report.to_string(),
        "mock Bedrock: 1 expectation not met\n\
         - \"the unsent prompt\" (prompt \"never sent\" -> answer \"scripted\"): expected exactly 1 request, got 0\n\
         2 request(s) arrived:\n  \
         #1 ConverseStream amazon.nova-lite-v1:0 prompt \"Hi\" -> Completed, answer \"scripted\", 3 tokens\n  \
         #2 ConverseStream anthropic.claude-3-haiku-20240307-v1:0 prompt \"Hi\" -> Fault, fault bedrock/throttling, 0 tokens"
    );
    // Dropping the server panics with the same report; this test has read it already.
    let dropped = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(server)));
    let message = dropped.expect_err("the drop panics");
    let text = message
        .downcast_ref::<String>()
        .expect("a formatted panic message");
    assert!(
        text.starts_with("mock Bedrock: 1 expectation not met\n"),
        "{text}"
    );
}

/// The paced answer really is paced: the journal fills token by token, and
/// `wait_for` wakes on each change instead of polling.
#[tokio::test]
async fn wait_for_wakes_on_journal_changes() {
    let server = MockBedrock::start(Scenario::default_scenario()).await;
    Mock::given(prompt_matches("(?i)hours"))
        .respond_with(Answer::from_text("Nine to five").paced(20, 20))
        .mount(&server)
        .await;
    let client = client_with_attempts(&server, 1);
    let call = tokio::spawn({
        let client = client.clone();
        async move { stream(&client, HAIKU, "Your HOURS?").await }
    });
    let seen = server
        .wait_for(|j| j.first().is_some_and(|e| e.outcome == Outcome::Completed))
        .await;
    assert_eq!(seen[0].tokens_sent, 3);
    assert_eq!(call.await.unwrap().unwrap().concat(), "Nine to five");
    assert_eq!(server.received_requests().await.len(), 1);
}

/// A scoped mount checks its expectation when its guard drops, then the scenario
/// answers again; a reply can pair an answer with a mid-stream fault.
#[tokio::test]
async fn scoped_mounts_end_with_their_guard() {
    let server = MockBedrock::start(Scenario::default_scenario()).await;
    let client = client_with_attempts(&server, 1);
    {
        let guard = Mock::given(model(HAIKU))
            .respond_with(
                Reply::answer(Answer::from_text("one two three four").paced(0, 1)).with_fault(
                    Fault::bedrock(FaultKind::Exception)
                        .after_tokens(2)
                        .exception("throttlingException"),
                ),
            )
            .expect(1)
            .mount_as_scoped(&server)
            .await;
        let cut = stream(&client, HAIKU, "Hi").await;
        assert_eq!(cut, Err("throttlingException".into()));
        let mine = guard.received_requests().await;
        assert_eq!(mine.len(), 1);
        assert_eq!(mine[0].tokens_sent, 2);
    }
    // The guard is gone: the default scenario's own answer comes back.
    let answer = stream(&client, HAIKU, "Hello").await.unwrap().concat();
    let scenario = Scenario::default_scenario();
    let expected = picasso_core::scenario::AnswerBook::new(&scenario.answers)
        .answer_for(HAIKU, "Hello")
        .unwrap()
        .full_text();
    assert_eq!(answer, expected);

    let guard = Mock::given(message("m-9"))
        .respond_with(Fault::bedrock(FaultKind::Internal))
        .expect(1..)
        .mount_as_scoped(&server)
        .await;
    let unmet = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(guard)));
    let text = unmet.expect_err("an unmet scoped expectation panics");
    let text = text.downcast_ref::<String>().unwrap();
    assert!(
        text.contains("message m-9 -> fault bedrock/internal: expected at least 1 request, got 0"),
        "{text}"
    );
    // Unmounted by its guard: the server's own drop has nothing left to report.
    assert!(server.verify().is_ok());
}
