//! The seam of the servers' Bedrock calls: who answers the gateway's `ConverseStream`
//! and the Master's `Converse`.
//!
//! The default is [`SdkTransport`], the official SDK (signing, retries, interceptors,
//! event-stream decoding), which is what production runs and what every fidelity
//! check is about. A campaign of millions of simulated messages spends most of its
//! time in those layers, so a world may hand the servers another [`BedrockTransport`]
//! (`picasso_world`'s direct one asks mock Bedrock's state in process) that gives the
//! same answers and the same [`BedrockError`]s at the same virtual instants.

use crate::{BedrockError, Call, TokenStream};
use aws_sdk_bedrockruntime::Client;
use futures_util::StreamExt;
use futures_util::future::BoxFuture;
use futures_util::stream::BoxStream;
use std::fmt;
use std::sync::Arc;

/// The text deltas of a streamed answer: `None` after a complete answer, an error
/// (then `None`) when it broke. Dropping it ends the call on Bedrock's side.
pub type Tokens = BoxStream<'static, Result<String, BedrockError>>;

/// Answers the servers' Bedrock calls.
pub trait BedrockTransport: Send + Sync + fmt::Debug {
    /// Opens `ConverseStream` for `call`: the tokens, or why there is no stream.
    fn converse_stream<'a>(&'a self, call: Call<'a>)
    -> BoxFuture<'a, Result<Tokens, BedrockError>>;

    /// Asks `Converse` for the whole answer to `call`.
    fn converse<'a>(&'a self, call: Call<'a>) -> BoxFuture<'a, Result<String, BedrockError>>;
}

/// The official SDK ([`crate::stream`], [`crate::complete`]): full fidelity.
#[derive(Debug, Clone)]
pub struct SdkTransport(pub Client);

impl BedrockTransport for SdkTransport {
    fn converse_stream<'a>(
        &'a self,
        call: Call<'a>,
    ) -> BoxFuture<'a, Result<Tokens, BedrockError>> {
        Box::pin(async move { Ok(crate::stream(&self.0, call).await?.into_tokens()) })
    }

    fn converse<'a>(&'a self, call: Call<'a>) -> BoxFuture<'a, Result<String, BedrockError>> {
        Box::pin(crate::complete(&self.0, call))
    }
}

/// A cheap handle on a [`BedrockTransport`], what a server keeps.
#[derive(Debug, Clone)]
pub struct Bedrock(Arc<dyn BedrockTransport>);

impl Bedrock {
    /// A handle on `transport`.
    pub fn new(transport: impl BedrockTransport + 'static) -> Bedrock {
        Bedrock(Arc::new(transport))
    }

    /// Opens `ConverseStream` for `call`.
    ///
    /// # Errors
    /// Why Bedrock gave no stream (as [`crate::stream`] reports it).
    pub async fn converse_stream(&self, call: Call<'_>) -> Result<Tokens, BedrockError> {
        self.0.converse_stream(call).await
    }

    /// Asks `Converse` for the whole answer to `call`.
    ///
    /// # Errors
    /// Why Bedrock gave no answer (as [`crate::complete`] reports it).
    pub async fn converse(&self, call: Call<'_>) -> Result<String, BedrockError> {
        self.0.converse(call).await
    }
}

impl From<Client> for Bedrock {
    /// The SDK transport over `client`.
    fn from(client: Client) -> Bedrock {
        Bedrock::new(SdkTransport(client))
    }
}

impl TokenStream {
    /// The stream as [`Tokens`].
    pub fn into_tokens(self) -> Tokens {
        futures_util::stream::unfold(self, |mut s| async move {
            let item = s.next().await?;
            Some((item, s))
        })
        .boxed()
    }
}
