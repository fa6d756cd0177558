//! The official Rust SDK (`aws-sdk-bedrockruntime`) against the mock over loopback.

use crate::support::*;
use aws_sdk_bedrockruntime::Client;
use aws_sdk_bedrockruntime::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_bedrockruntime::operation::converse_stream::ConverseStreamError;
use aws_sdk_bedrockruntime::primitives::Blob;
use aws_sdk_bedrockruntime::types::error::{ConverseStreamOutputError, ResponseStreamError};
use aws_sdk_bedrockruntime::types::{
    ContentBlock, ContentBlockDelta, ConversationRole, ConverseStreamOutput, Message,
    ResponseStream,
};
use mock_bedrock::Outcome;
use picasso_core::scenario::{Caller, FaultKind};

fn user(prompt: &str) -> Message {
    Message::builder()
        .role(ConversationRole::User)
        .content(ContentBlock::Text(prompt.into()))
        .build()
        .unwrap()
}

fn anthropic_body(prompt: &str) -> Blob {
    Blob::new(
        serde_json::json!({
            "anthropic_version": "bedrock-2023-05-31",
            "max_tokens": 100,
            "messages": [{"role": "user", "content": [{"type": "text", "text": prompt}]}],
        })
        .to_string(),
    )
}

/// Each text delta of a ConverseStream, or the error that ended it.
async fn converse_stream_deltas(
    client: &Client,
    model: &str,
) -> Result<
    Vec<String>,
    SdkError<ConverseStreamOutputError, aws_smithy_types::event_stream::RawMessage>,
> {
    let mut out = client
        .converse_stream()
        .model_id(model)
        .messages(user(PROMPT))
        .send()
        .await
        .expect("the stream opens");
    let mut deltas = Vec::new();
    let mut saw_metadata = false;
    while let Some(event) = out.stream.recv().await? {
        match event {
            ConverseStreamOutput::ContentBlockDelta(d) => {
                if let Some(ContentBlockDelta::Text(t)) = d.delta {
                    deltas.push(t);
                }
            }
            ConverseStreamOutput::Metadata(m) => {
                let usage = m.usage.unwrap();
                assert_eq!(usage.output_tokens, TOKENS.len() as i32);
                saw_metadata = true;
            }
            _ => {}
        }
    }
    assert!(saw_metadata, "metadata is the last event");
    Ok(deltas)
}

/// Each text delta of an InvokeModelWithResponseStream (native Anthropic events).
async fn invoke_stream_deltas(
    client: &Client,
) -> Result<Vec<String>, SdkError<ResponseStreamError, aws_smithy_types::event_stream::RawMessage>>
{
    let mut out = client
        .invoke_model_with_response_stream()
        .model_id(MODEL)
        .content_type("application/json")
        .body(anthropic_body(PROMPT))
        .send()
        .await
        .expect("the stream opens");
    assert_eq!(out.content_type(), "application/json");
    let mut deltas = Vec::new();
    while let Some(event) = out.body.recv().await? {
        if let ResponseStream::Chunk(part) = event {
            let native: serde_json::Value =
                serde_json::from_slice(part.bytes().unwrap().as_ref()).unwrap();
            if native["type"] == "content_block_delta" {
                deltas.push(native["delta"]["text"].as_str().unwrap().to_owned());
            }
        }
    }
    Ok(deltas)
}

/// All four operations give the scripted text; the streams give it token by token.
#[tokio::test]
async fn all_four_operations_return_the_scripted_text() {
    let mock = start().await;
    let client = client(&mock);
    let whole: String = TOKENS.concat();

    let deltas = converse_stream_deltas(&client, MODEL).await.unwrap();
    assert_eq!(deltas, TOKENS);

    let deltas = invoke_stream_deltas(&client).await.unwrap();
    assert_eq!(deltas, TOKENS);

    let out = client
        .converse()
        .model_id(MODEL)
        .messages(user(PROMPT))
        .send()
        .await
        .unwrap();
    let text = out.output.unwrap().as_message().unwrap().content[0]
        .as_text()
        .unwrap()
        .clone();
    assert_eq!(text, whole);
    assert_eq!(out.usage.unwrap().output_tokens, TOKENS.len() as i32);

    let out = client
        .invoke_model()
        .model_id(MODEL)
        .content_type("application/json")
        .body(anthropic_body(PROMPT))
        .send()
        .await
        .unwrap();
    let native: serde_json::Value = serde_json::from_slice(out.body.as_ref()).unwrap();
    assert_eq!(native["content"][0]["text"], whole);

    let journal = mock.journal();
    let ops: Vec<&str> = journal.iter().map(|e| e.operation.as_str()).collect();
    assert_eq!(
        ops,
        [
            "ConverseStream",
            "InvokeModelWithResponseStream",
            "Converse",
            "InvokeModel"
        ]
    );
    assert!(
        journal
            .iter()
            .all(|e| e.outcome == Outcome::Completed && e.prompt == PROMPT)
    );
}

/// The servers' own calls (`bedrock_client::stream`) carry requestMetadata, which
/// the journal shows and scripted faults match on.
#[tokio::test]
async fn request_metadata_reaches_the_journal() {
    let mock = start().await;
    let client = client(&mock);
    let call = bedrock_client::Call {
        model: MODEL,
        prompt: PROMPT,
        tenant: "t1",
        session: "s1",
        message: "m1",
        caller: Caller::Gateway,
    };
    let mut stream = bedrock_client::stream(&client, call).await.unwrap();
    let mut text = String::new();
    while let Some(delta) = stream.next().await {
        text.push_str(&delta.unwrap());
    }
    assert_eq!(text, TOKENS.concat());
    assert_eq!(
        bedrock_client::complete(&client, call).await.unwrap(),
        TOKENS.concat()
    );
    let entry = &mock.journal()[0];
    assert_eq!(entry.tenant.as_deref(), Some("t1"));
    assert_eq!(entry.session.as_deref(), Some("s1"));
    assert_eq!(entry.message.as_deref(), Some("m1"));
    assert_eq!(entry.caller, Some(Caller::Gateway));
}

/// Model ids with `:` and inference-profile ARNs with `/` reach the mock whole.
#[tokio::test]
async fn model_ids_and_arns_round_trip() {
    let mock = start().await;
    let client = client(&mock);
    let arn = "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-3-haiku-20240307-v1:0";
    assert_eq!(converse_stream_deltas(&client, arn).await.unwrap(), TOKENS);
    assert_eq!(mock.journal()[0].model, arn);
}

/// Every pre-stream fault arrives as the SDK's typed error, with Bedrock's status.
#[tokio::test]
async fn pre_stream_faults_are_the_sdks_typed_errors() {
    type Check = fn(&ConverseStreamError) -> bool;
    let cases: [(FaultKind, Check, u16); 8] = [
        (
            FaultKind::Throttling,
            ConverseStreamError::is_throttling_exception,
            429,
        ),
        (
            FaultKind::Validation,
            ConverseStreamError::is_validation_exception,
            400,
        ),
        (
            FaultKind::AccessDenied,
            ConverseStreamError::is_access_denied_exception,
            403,
        ),
        (
            FaultKind::ResourceNotFound,
            ConverseStreamError::is_resource_not_found_exception,
            404,
        ),
        (
            FaultKind::ModelTimeout,
            ConverseStreamError::is_model_timeout_exception,
            408,
        ),
        (
            FaultKind::ModelNotReady,
            ConverseStreamError::is_model_not_ready_exception,
            429,
        ),
        (
            FaultKind::ServiceUnavailable,
            ConverseStreamError::is_service_unavailable_exception,
            503,
        ),
        (
            FaultKind::Internal,
            ConverseStreamError::is_internal_server_exception,
            500,
        ),
    ];
    let mock = start().await;
    let client = client_with_attempts(&mock, 1);
    for (kind, is_kind, status) in cases {
        mock.arm(bedrock_fault(kind)).unwrap();
        let err = client
            .converse_stream()
            .model_id(MODEL)
            .messages(user(PROMPT))
            .send()
            .await
            .unwrap_err();
        let SdkError::ServiceError(service) = &err else {
            panic!("{kind:?}: not a service error: {err:?}");
        };
        assert!(is_kind(service.err()), "{kind:?}: {:?}", service.err());
        assert_eq!(service.raw().status().as_u16(), status, "{kind:?}");
        assert!(service.err().message().is_some_and(|m| !m.is_empty()));
        // The same fault on InvokeModel: the code is the same, too.
        mock.arm(bedrock_fault(kind)).unwrap();
        let err = client
            .invoke_model()
            .model_id(MODEL)
            .body(anthropic_body(PROMPT))
            .send()
            .await
            .unwrap_err();
        let code = err
            .as_service_error()
            .and_then(|e| e.code())
            .map(str::to_owned);
        assert_eq!(
            code.as_deref(),
            kind.bedrock_error().map(|(c, _)| c),
            "{kind:?}"
        );
    }
    assert!(mock.journal().iter().all(|e| e.outcome == Outcome::Fault));
}

/// A fault limited to the first attempts is retried through by the SDK.
#[tokio::test]
async fn attempt_limited_faults_are_let_through_on_retry() {
    let mock = start().await;
    let mut fault = bedrock_fault(FaultKind::Throttling);
    fault.attempts = Some(2);
    let mut scenario = scenario();
    scenario.faults.push(fault);
    mock.state().set_scenario(scenario);
    let client = client_with_attempts(&mock, 3);
    assert_eq!(
        converse_stream_deltas(&client, MODEL).await.unwrap(),
        TOKENS
    );
    let attempts: Vec<(u32, Outcome)> = mock
        .journal()
        .iter()
        .map(|e| (e.attempt, e.outcome))
        .collect();
    assert_eq!(
        attempts,
        [
            (1, Outcome::Fault),
            (2, Outcome::Fault),
            (3, Outcome::Completed)
        ]
    );
}

/// Every exception of the ConverseStream union arrives as the SDK's stream error,
/// after the tokens sent before it.
#[tokio::test]
async fn mid_stream_exceptions_are_stream_errors() {
    let mock = start().await;
    let client = client(&mock);
    for exception in [
        "internalServerException",
        "modelStreamErrorException",
        "validationException",
        "throttlingException",
        "serviceUnavailableException",
    ] {
        let mut fault = mid_stream(FaultKind::Exception, 2);
        fault.exception = Some(exception.into());
        mock.arm(fault).unwrap();
        let mut out = client
            .converse_stream()
            .model_id(MODEL)
            .messages(user(PROMPT))
            .send()
            .await
            .unwrap();
        let mut deltas = 0;
        let err = loop {
            match out.stream.recv().await {
                Ok(Some(ConverseStreamOutput::ContentBlockDelta(_))) => deltas += 1,
                Ok(Some(_)) => {}
                Ok(None) => panic!("{exception}: the stream ended cleanly"),
                Err(err) => break err,
            }
        };
        assert_eq!(deltas, 2, "{exception}");
        let service = err
            .as_service_error()
            .unwrap_or_else(|| panic!("{exception}: {err:?}"));
        let matched = match exception {
            "internalServerException" => service.is_internal_server_exception(),
            "modelStreamErrorException" => service.is_model_stream_error_exception(),
            "validationException" => service.is_validation_exception(),
            "throttlingException" => service.is_throttling_exception(),
            _ => service.is_service_unavailable_exception(),
        };
        assert!(matched, "{exception}: {service:?}");
        assert!(service.message().is_some());
    }
    // IMWRS's union also has modelTimeoutException.
    let mut fault = mid_stream(FaultKind::Exception, 1);
    fault.exception = Some("modelTimeoutException".into());
    mock.arm(fault).unwrap();
    let err = invoke_stream_deltas(&client).await.unwrap_err();
    assert!(
        err.as_service_error().unwrap().is_model_timeout_exception(),
        "{err:?}"
    );
}

/// A corrupt frame is caught by the SDK's CRC check.
#[tokio::test]
async fn a_corrupt_frame_fails_the_sdks_checksum() {
    let mock = start().await;
    let client = client(&mock);
    mock.arm(mid_stream(FaultKind::CorruptFrame, 1)).unwrap();
    let err = converse_stream_deltas(&client, MODEL).await.unwrap_err();
    let text = format!("{:?}", err);
    assert!(
        text.contains("Checksum") || text.contains("checksum"),
        "{text}"
    );
    mock.arm(mid_stream(FaultKind::CorruptFrame, 3)).unwrap();
    let err = invoke_stream_deltas(&client).await.unwrap_err();
    assert!(
        format!("{err:?}").to_lowercase().contains("checksum"),
        "{err:?}"
    );
}

/// A dropped connection is an error, not a clean end.
#[tokio::test]
async fn a_dropped_connection_is_an_error() {
    let mock = start().await;
    let client = client(&mock);
    mock.arm(mid_stream(FaultKind::Drop, 2)).unwrap();
    let err = converse_stream_deltas(&client, MODEL).await.unwrap_err();
    assert!(
        matches!(
            err,
            SdkError::DispatchFailure(_) | SdkError::ResponseError(_)
        ),
        "{err:?}"
    );
    mock.arm(mid_stream(FaultKind::Drop, 0)).unwrap();
    assert!(invoke_stream_deltas(&client).await.is_err());
    // On Converse, a drop is a body cut short: the SDK fails to read it.
    mock.arm(bedrock_fault(FaultKind::Drop)).unwrap();
    let result = client_with_attempts(&mock, 1)
        .converse()
        .model_id(MODEL)
        .messages(user(PROMPT))
        .send()
        .await;
    assert!(result.is_err(), "{result:?}");
}

/// A client that drops the stream early shows up as `cut_short`.
#[tokio::test]
async fn a_client_that_leaves_early_is_cut_short() {
    let mock = start().await;
    let client = client(&mock);
    let mut out = client
        .converse_stream()
        .model_id(MODEL)
        .messages(user(PROMPT))
        .send()
        .await
        .unwrap();
    loop {
        if let Some(ConverseStreamOutput::ContentBlockDelta(_)) = out.stream.recv().await.unwrap() {
            break;
        }
    }
    drop(out);
    let entry = settled(&mock).await;
    assert_eq!(entry.outcome, Outcome::CutShort);
    assert!(entry.tokens_sent < TOKENS.len() as u32);
}

/// A stall with no end holds the stream open until the client gives up.
#[tokio::test]
async fn an_endless_stall_is_left_by_the_client() {
    let mock = start().await;
    let client = client(&mock);
    mock.arm(mid_stream(FaultKind::Stall, 1)).unwrap();
    let mut out = client
        .converse_stream()
        .model_id(MODEL)
        .messages(user(PROMPT))
        .send()
        .await
        .unwrap();
    let waited = tokio::time::timeout(std::time::Duration::from_millis(300), async {
        while let Ok(Some(_)) = out.stream.recv().await {}
    })
    .await;
    assert!(waited.is_err(), "the stream should stall");
    drop(out);
    let entry = settled(&mock).await;
    assert_eq!(entry.fault.as_deref(), Some("bedrock/stall"));
    assert_eq!(entry.tokens_sent, 1);
}
