//! The official Rust SDK streaming from a plain `wiremock::MockServer` that answers
//! with our `BedrockResponder`.

use crate::support::MODEL;
use aws_sdk_bedrockruntime::Client;
use aws_sdk_bedrockruntime::config::retry::RetryConfig;
use aws_sdk_bedrockruntime::error::ProvideErrorMetadata;
use aws_sdk_bedrockruntime::primitives::Blob;
use aws_sdk_bedrockruntime::types::{
    ContentBlock, ContentBlockDelta, ConversationRole, ConverseStreamOutput, Message,
    ResponseStream,
};
use bedrock_client::{BedrockConfig, Runtime, build_client};
use mock_bedrock::{BedrockResponder, Operation, Reply, model_is, operation_is};
use picasso_core::scenario::{Answer, Fault, FaultKind, StopReason};
use wiremock::matchers::{method, path_regex};
use wiremock::{Mock, MockServer};

const NOVA: &str = "amazon.nova-lite-v1:0";

fn client(server: &MockServer) -> Client {
    let base = build_client(&BedrockConfig::mock(server.uri()), Runtime::default());
    let config = base
        .config()
        .to_builder()
        .retry_config(RetryConfig::standard().with_max_attempts(1))
        .build();
    Client::from_conf(config)
}

fn user(text: &str) -> Message {
    Message::builder()
        .role(ConversationRole::User)
        .content(ContentBlock::Text(text.into()))
        .build()
        .unwrap()
}

#[tokio::test]
async fn the_sdk_streams_converse_and_invoke_from_wiremock() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(model_is(MODEL))
        .and(operation_is(Operation::ConverseStream))
        .respond_with(BedrockResponder::new(
            Answer::from_text("Open nine to five")
                .usage(7, 4)
                .stop_reason(StopReason::MaxTokens),
        ))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        // The SDK percent-encodes the `:` of the id: plain path matchers see `%3A`.
        .and(path_regex(
            "^/model/amazon.nova-lite-v1%3A0/invoke-with-response-stream$",
        ))
        .respond_with(BedrockResponder::new(Answer::from_text("Hi from invoke")))
        .mount(&server)
        .await;
    let client = client(&server);

    let mut out = client
        .converse_stream()
        .model_id(MODEL)
        .messages(user("Hours?"))
        .send()
        .await
        .unwrap();
    let (mut text, mut usage, mut stop) = (String::new(), None, None);
    while let Some(event) = out.stream.recv().await.unwrap() {
        match event {
            ConverseStreamOutput::ContentBlockDelta(d) => {
                if let Some(ContentBlockDelta::Text(t)) = d.delta {
                    text.push_str(&t);
                }
            }
            ConverseStreamOutput::MessageStop(s) => stop = Some(s.stop_reason),
            ConverseStreamOutput::Metadata(m) => usage = m.usage,
            _ => {}
        }
    }
    assert_eq!(text, "Open nine to five");
    let usage = usage.expect("a metadata event");
    assert_eq!((usage.input_tokens, usage.output_tokens), (7, 4));
    assert_eq!(stop.unwrap().as_str(), "max_tokens");

    let body = serde_json::json!({
        "anthropic_version": "bedrock-2023-05-31",
        "max_tokens": 50,
        "messages": [{"role": "user", "content": "Hi"}],
    });
    let mut out = client
        .invoke_model_with_response_stream()
        .model_id(NOVA)
        .body(Blob::new(body.to_string()))
        .send()
        .await
        .unwrap();
    let mut text = String::new();
    while let Some(event) = out.body.recv().await.unwrap() {
        if let ResponseStream::Chunk(chunk) = event {
            let native: serde_json::Value =
                serde_json::from_slice(chunk.bytes.unwrap().as_ref()).unwrap();
            if native["type"] == "content_block_delta" {
                text.push_str(native["delta"]["text"].as_str().unwrap());
            }
        }
    }
    assert_eq!(text, "Hi from invoke");
}

#[tokio::test]
async fn errors_and_mid_stream_faults_reach_the_sdk_typed() {
    let server = MockServer::start().await;
    Mock::given(model_is(NOVA))
        .respond_with(BedrockResponder::new(Fault::bedrock(FaultKind::Throttling)))
        .mount(&server)
        .await;
    Mock::given(model_is(MODEL))
        .respond_with(BedrockResponder::new(
            Reply::answer(Answer::from_text("one two three")).with_fault(
                Fault::bedrock(FaultKind::Exception)
                    .after_tokens(2)
                    .exception("modelStreamErrorException"),
            ),
        ))
        .mount(&server)
        .await;
    let client = client(&server);

    let err = client
        .converse_stream()
        .model_id(NOVA)
        .messages(user("Hi"))
        .send()
        .await
        .unwrap_err();
    let service = err.as_service_error().expect("a modeled error");
    assert!(service.is_throttling_exception(), "{service:?}");
    assert_eq!(
        service.message(),
        Some("Too many requests, please wait before trying again.")
    );

    let mut out = client
        .converse_stream()
        .model_id(MODEL)
        .messages(user("Hi"))
        .send()
        .await
        .unwrap();
    let mut deltas = Vec::new();
    let err = loop {
        match out.stream.recv().await {
            Ok(Some(ConverseStreamOutput::ContentBlockDelta(d))) => {
                if let Some(ContentBlockDelta::Text(t)) = d.delta {
                    deltas.push(t);
                }
            }
            Ok(Some(_)) => {}
            Ok(None) => panic!("the stream ended cleanly"),
            Err(err) => break err,
        }
    };
    assert_eq!(deltas, ["one", " two"]);
    let service = err.as_service_error().expect("a modeled stream exception");
    assert!(service.is_model_stream_error_exception(), "{service:?}");
}
