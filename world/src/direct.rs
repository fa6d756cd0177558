//! The campaign transport: the gateway's `ConverseStream` answered by mock Bedrock's
//! state in process ([`MockState::converse_stream_direct`]), with no SDK, no HTTP and
//! no event-stream bytes in between, and the SDK for every call the direct path
//! declines (refusals and their retries, drops, corrupt frames, endless stalls).
//!
//! What the gateway gets is what the SDK transport would have given it, item for item
//! and at the same virtual instants: the tokens, and an exception frame as the
//! [`BedrockError::StreamException`] `bedrock_client` makes of the SDK's error. A test
//! (`sim/tests/transports.rs`) runs every shipped scenario and generated ones under
//! both transports and compares the transcripts byte for byte.

use bedrock_client::{BedrockError, Call, SdkTransport, StreamTransport, Tokens};
use futures_util::StreamExt;
use futures_util::future::BoxFuture;
use mock_bedrock::{DirectCall, DirectItem, DirectStream, MockState};

/// Which transport the gateway of an in-process world opens its streams with.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Transport {
    /// The official SDK over mock Bedrock's router: full fidelity (the default).
    #[default]
    Sdk,
    /// Mock Bedrock's state asked directly ([`DirectTransport`]), for campaigns.
    Direct,
}

impl Transport {
    /// `sdk` or `direct`.
    pub fn name(self) -> &'static str {
        match self {
            Transport::Sdk => "sdk",
            Transport::Direct => "direct",
        }
    }

    /// The transport named `name` (`sdk` or `direct`).
    pub fn from_name(name: &str) -> Option<Transport> {
        match name {
            "sdk" => Some(Transport::Sdk),
            "direct" => Some(Transport::Direct),
            _ => None,
        }
    }
}

/// Streams from mock Bedrock's state, or through `sdk` when the direct path declines.
#[derive(Debug, Clone)]
pub struct DirectTransport {
    mock: MockState,
    sdk: SdkTransport,
}

impl DirectTransport {
    /// Direct streams from `mock`; `sdk` (a client calling the same mock) for the rest.
    pub fn new(mock: MockState, sdk: aws_sdk_bedrockruntime::Client) -> DirectTransport {
        DirectTransport {
            mock,
            sdk: SdkTransport(sdk),
        }
    }
}

impl StreamTransport for DirectTransport {
    fn converse_stream<'a>(
        &'a self,
        call: Call<'a>,
    ) -> BoxFuture<'a, Result<Tokens, BedrockError>> {
        let direct = self.mock.converse_stream_direct(DirectCall {
            model: call.model,
            prompt: call.prompt,
            tenant: call.tenant,
            session: call.session,
            message: call.message,
            caller: call.caller,
        });
        match direct {
            Some(stream) => Box::pin(std::future::ready(Ok(tokens(stream)))),
            None => self.sdk.converse_stream(call),
        }
    }
}

/// The items as `bedrock_client::TokenStream` reports the same frames.
fn tokens(stream: DirectStream) -> Tokens {
    futures_util::stream::unfold(stream, |mut s| async move {
        let item = match s.next().await? {
            DirectItem::Text(text) => Ok(text),
            DirectItem::Exception { kind, message } => {
                Err(BedrockError::StreamException { kind, message })
            }
        };
        Some((item, s))
    })
    .boxed()
}
