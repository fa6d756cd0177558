//! The model of a scenario: the world a run takes place in.
//!
//! A scenario names the tenants and their configs, the answers Bedrock is scripted to
//! give, the faults and when they strike, the sessions and their messages, and the seed.
//! Every field has a default where a sensible one exists, so small files stay small.
//! The file format is in [`crate::load`]; the JSON Schema is derived from these types.

mod build;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The model the design document names for streaming (§1.3).
pub const DEFAULT_MODEL: &str = "anthropic.claude-3-haiku-20240307-v1:0";

/// The embedded default scenario: the design document's own world.
pub const DEFAULT_SCENARIO_TOML: &str = include_str!("default_scenario.toml");

/// A whole scenario file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// A short name, shown in reports.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// What the scenario demonstrates.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// Drives every random choice of a run (0 to 2^63 - 1). Same scenario + same seed = same transcript.
    #[serde(default)]
    #[schemars(range(max = 9_223_372_036_854_775_807u64))]
    pub seed: u64,
    /// Model ids mock Bedrock knows. Empty: any well-formed id answers. Otherwise a
    /// call for a model not listed here, nor any tenant's `streaming_model` or an
    /// answer's `model`, gets Bedrock's `ValidationException` ("The provided model
    /// identifier is invalid."); inference profiles (`us.…`) and ARNs name the model they end in.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub models: Vec<String>,
    /// The widget's tenants.
    pub tenants: Vec<Tenant>,
    /// Scripted Bedrock answers, tried in order: exact prompt, then pattern, then default.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub answers: Vec<Answer>,
    /// Faults and when they strike.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub faults: Vec<Fault>,
    /// Widget sessions and their messages.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sessions: Vec<Session>,
    /// The gateway's limits (the design document's §Security).
    #[serde(default)]
    pub limits: Limits,
    /// The widget's timers.
    #[serde(default)]
    pub widget: WidgetSettings,
    /// The rollout rehearsal (`picasso-sim rollout`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout: Option<Rollout>,
    /// Which servers the world runs: ours (`hardened`, the default) or the design
    /// document's as its code and text specify (`as-written`).
    #[serde(default, skip_serializing_if = "Servers::is_hardened")]
    pub servers: Servers,
    /// Changes to tenants' configs at a virtual time while sessions run (the rollback
    /// plan: `streaming_percentage` to 0, streaming disabled). The Master serves the new
    /// config from that instant; the gateway sees it when its cached config expires
    /// (`limits.config_ttl_ms`); a widget reads it when its page loads.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub config_changes: Vec<ConfigChange>,
}

/// A change to one tenant's config (or every tenant's) at a virtual time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfigChange {
    /// Virtual milliseconds from the run's start.
    pub at_ms: u64,
    /// The tenant hash; every tenant when absent (the full rollback).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// The new `streaming_percentage` (0 is the instant rollback).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub streaming_percentage: Option<f64>,
    /// The new `streaming_enabled` (false is the full rollback).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub streaming_enabled: Option<bool>,
}

impl ConfigChange {
    /// Applies the change to the tenants it names.
    pub fn apply(&self, tenants: &mut [Tenant]) {
        for t in tenants
            .iter_mut()
            .filter(|t| self.tenant.as_ref().is_none_or(|h| *h == t.hash))
        {
            if let Some(p) = self.streaming_percentage {
                t.streaming_percentage = p;
            }
            if let Some(e) = self.streaming_enabled {
                t.streaming_enabled = e;
            }
        }
    }

    /// `tenant X: streaming_percentage 0, streaming_enabled false`, for transcripts.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(p) = self.streaming_percentage {
            parts.push(format!("streaming_percentage {p}"));
        }
        if let Some(e) = self.streaming_enabled {
            parts.push(format!("streaming_enabled {e}"));
        }
        format!(
            "{}: {}",
            self.tenant
                .as_ref()
                .map_or_else(|| "every tenant".to_owned(), |t| format!("tenant {t}")),
            parts.join(", ")
        )
    }
}

/// Which gateway and Master a world runs.
///
/// `as-written` is the design document's Streaming Lambda and Master as printed:
/// `Access-Control-Allow-Origin: *` and no origin check, frames without `id:` lines,
/// every request a new Bedrock call (no kept answers: no `204`, no replay, no join), no
/// rate limit (the document's code has none) and no heartbeats; and the config shaped by
/// `get_config_for_tenant_by_hash`, which replaces `endpoints` with
/// `{"streaming": …}` for a streaming tenant and so drops `endpoints.chat`. Parameter
/// and tenant checks and the 30 s cap stay (the document's "security improvements
/// (tenant isolation)" and its 30 s timeout).
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum Servers {
    /// This project's gateway and Master: the contracts of `system.md`.
    #[default]
    Hardened,
    /// The design document's Streaming Lambda and Master as written.
    AsWritten,
}

impl Servers {
    /// Both, in a fixed order.
    pub const ALL: [Servers; 2] = [Servers::Hardened, Servers::AsWritten];

    /// Whether these are our own servers.
    pub fn is_hardened(&self) -> bool {
        *self == Servers::Hardened
    }

    /// `hardened` or `as-written`.
    pub fn name(self) -> &'static str {
        match self {
            Servers::Hardened => "hardened",
            Servers::AsWritten => "as-written",
        }
    }
}

impl std::str::FromStr for Servers {
    type Err = String;

    fn from_str(s: &str) -> Result<Servers, String> {
        match s {
            "hardened" => Ok(Servers::Hardened),
            "as-written" => Ok(Servers::AsWritten),
            other => Err(format!("expected hardened or as-written, got {other:?}")),
        }
    }
}

/// A tenant and its config, as the Master Function serves it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Tenant {
    /// The tenant hash: 1–64 characters of `a-z0-9`.
    #[schemars(regex(pattern = r"^[a-z0-9]{1,64}$"))]
    pub hash: String,
    /// A display name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// `features.streaming_enabled`.
    #[serde(default)]
    pub streaming_enabled: bool,
    /// `features.streaming_percentage`: share of sessions that stream, 0–100.
    #[serde(default)]
    #[schemars(range(min = 0, max = 100))]
    pub streaming_percentage: f64,
    /// `features.streaming_model`: the Bedrock model id.
    #[serde(default = "default_model")]
    pub streaming_model: String,
    /// Full origins of the tenant's widget pages, e.g. `https://fostervillage.org`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_origins: Vec<String>,
}

fn default_model() -> String {
    DEFAULT_MODEL.to_owned()
}

impl Tenant {
    /// The tenant's config as the Master Function serves it (design document §1.3):
    /// `endpoints.chat` always, `endpoints.streaming` only when streaming is enabled
    /// and a streaming URL is configured.
    pub fn config(&self, chat_url: &str, streaming_url: Option<&str>) -> crate::wire::TenantConfig {
        use crate::wire::{Endpoints, Features, TenantConfig};
        TenantConfig {
            tenant_hash: self.hash.clone(),
            tenant_name: (!self.name.is_empty()).then(|| self.name.clone()),
            features: Features {
                streaming_enabled: self.streaming_enabled,
                streaming_percentage: self.streaming_percentage,
                streaming_model: self.streaming_model.clone(),
            },
            endpoints: Endpoints {
                chat: Some(chat_url.to_owned()),
                streaming: streaming_url
                    .filter(|_| self.streaming_enabled)
                    .map(str::to_owned),
            },
            allowed_origins: self.allowed_origins.clone(),
        }
    }

    /// The config as the design document's `get_config_for_tenant_by_hash` shapes it:
    /// the base config (§1.3: `endpoints.chat`), whose whole `endpoints` object is
    /// replaced by `{"streaming": STREAMING_LAMBDA_URL}` when streaming is enabled. So a
    /// streaming tenant's config has no `endpoints.chat`: its widget's regular chat and
    /// fallback have nowhere to go unless the widget knows the URL by other means.
    pub fn config_as_written(
        &self,
        chat_url: &str,
        streaming_url: Option<&str>,
    ) -> crate::wire::TenantConfig {
        let mut config = self.config(chat_url, None);
        if self.streaming_enabled {
            config.endpoints.chat = None;
            config.endpoints.streaming = streaming_url.map(str::to_owned);
        }
        config
    }
}

/// A scripted Bedrock answer.
///
/// Matched by `prompt` (exact text) or `pattern` (a regular expression); with neither,
/// it is a default answer. Give the answer either as `tokens` (each with the delay
/// before it) or as `text` with a `pacing` rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Answer {
    /// A name for the answer, used in transcripts.
    pub id: String,
    /// Only for this model id; any model when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Matches a prompt equal to this text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt: Option<String>,
    /// Matches a prompt this regular expression finds a match in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pattern: Option<String>,
    /// The answer as tokens, each with the delay before it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tokens: Vec<Token>,
    /// The answer as text, cut into word tokens and paced by `pacing`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// How `text` is paced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pacing: Option<Pacing>,
    /// Usage numbers reported; counted from prompt and tokens when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
    /// The stop reason reported.
    #[serde(default)]
    pub stop_reason: StopReason,
}

/// One token of a scripted answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Token {
    /// The token's text, leading space included (`" how"`).
    pub text: String,
    /// Virtual milliseconds before this token is sent.
    #[serde(default)]
    #[schemars(range(max = crate::bounds::MAX_MS))]
    pub delay_ms: u64,
}

/// A pacing rule for an answer given as `text`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Pacing {
    /// Milliseconds before the first token.
    #[serde(default = "default_first_token_ms")]
    #[schemars(range(max = crate::bounds::MAX_MS))]
    pub first_token_ms: u64,
    /// Milliseconds between tokens after the first.
    #[serde(default = "default_gap_ms")]
    #[schemars(range(max = crate::bounds::MAX_MS))]
    pub gap_ms: u64,
}

fn default_first_token_ms() -> u64 {
    300
}
fn default_gap_ms() -> u64 {
    50
}

impl Default for Pacing {
    fn default() -> Self {
        Pacing {
            first_token_ms: default_first_token_ms(),
            gap_ms: default_gap_ms(),
        }
    }
}

/// Token counts reported by Bedrock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Usage {
    /// Prompt tokens.
    pub input_tokens: u32,
    /// Answer tokens.
    pub output_tokens: u32,
}

/// Why the model stopped (the values both Bedrock APIs share).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// The answer is complete.
    #[default]
    EndTurn,
    /// Cut at the token limit.
    MaxTokens,
    /// A stop sequence was produced.
    StopSequence,
}

impl StopReason {
    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            StopReason::EndTurn => "end_turn",
            StopReason::MaxTokens => "max_tokens",
            StopReason::StopSequence => "stop_sequence",
        }
    }
}

impl Answer {
    /// Whether this answer is a default (matches any prompt).
    pub fn is_default(&self) -> bool {
        self.prompt.is_none() && self.pattern.is_none()
    }

    /// The answer as tokens with their delays, whichever way it was written.
    pub fn resolved_tokens(&self) -> Vec<Token> {
        match &self.text {
            Some(text) => pace(text, self.pacing.unwrap_or_default()),
            None => self.tokens.clone(),
        }
    }

    /// The whole answer text.
    pub fn full_text(&self) -> String {
        match &self.text {
            Some(text) => text.clone(),
            None => self.tokens.iter().map(|t| t.text.as_str()).collect(),
        }
    }

    /// Usage as scripted, or counted: whitespace-separated words of the prompt, tokens of the answer.
    pub fn usage_for(&self, prompt: &str) -> Usage {
        self.usage.unwrap_or(Usage {
            input_tokens: prompt.split_whitespace().count().max(1) as u32,
            output_tokens: self.resolved_tokens().len() as u32,
        })
    }

    /// What mock Bedrock says when no scripted answer matches: a real model always answers.
    pub fn unscripted() -> Answer {
        Answer {
            id: "unscripted".into(),
            model: None,
            prompt: None,
            pattern: None,
            tokens: Vec::new(),
            text: Some("This is mock Bedrock: no scripted answer matched this prompt.".into()),
            pacing: None,
            usage: None,
            stop_reason: StopReason::EndTurn,
        }
    }
}

/// Cuts text into word tokens (each keeps the whitespace before it) and paces them.
pub fn pace(text: &str, pacing: Pacing) -> Vec<Token> {
    let mut tokens: Vec<Token> = Vec::new();
    let mut current = String::new();
    let mut seen_word = false;
    for c in text.chars() {
        if c.is_whitespace() && seen_word {
            let delay_ms = if tokens.is_empty() {
                pacing.first_token_ms
            } else {
                pacing.gap_ms
            };
            tokens.push(Token {
                text: std::mem::take(&mut current),
                delay_ms,
            });
            seen_word = false;
        }
        if !c.is_whitespace() {
            seen_word = true;
        }
        current.push(c);
    }
    if !current.is_empty() {
        let delay_ms = if tokens.is_empty() {
            pacing.first_token_ms
        } else {
            pacing.gap_ms
        };
        tokens.push(Token {
            text: current,
            delay_ms,
        });
    }
    tokens
}

/// Where a fault strikes.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum FaultTarget {
    /// Mock Bedrock, on the calls the gateway and the Master make.
    Bedrock,
    /// The Master Function's `get_config`.
    MasterConfig,
    /// The Master Function's `chat`.
    MasterChat,
    /// The streaming gateway's own answer.
    Gateway,
    /// The network between the widget and the gateway.
    Network,
}

impl FaultTarget {
    /// The spelling in scenario files.
    pub fn as_str(self) -> &'static str {
        match self {
            FaultTarget::Bedrock => "bedrock",
            FaultTarget::MasterConfig => "master_config",
            FaultTarget::MasterChat => "master_chat",
            FaultTarget::Gateway => "gateway",
            FaultTarget::Network => "network",
        }
    }
}

/// What a fault does. Which kinds apply where: see [`FaultKind::allowed_at`].
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// Bedrock `ThrottlingException` (429) before the stream.
    Throttling,
    /// Bedrock `ValidationException` (400) before the stream.
    Validation,
    /// Bedrock `AccessDeniedException` (403) before the stream.
    AccessDenied,
    /// Bedrock `ResourceNotFoundException` (404) before the stream.
    ResourceNotFound,
    /// Bedrock `ModelTimeoutException` (408) before the stream.
    ModelTimeout,
    /// Bedrock `ModelNotReadyException` (429) before the stream.
    ModelNotReady,
    /// Bedrock `ServiceUnavailableException` (503) before the stream.
    ServiceUnavailable,
    /// Bedrock `InternalServerException` (500) before the stream.
    Internal,
    /// The first token comes `delay_ms` late.
    SlowFirstToken,
    /// After `after_tokens` tokens, nothing for `delay_ms` (forever when absent).
    Stall,
    /// After `after_tokens` tokens, a modeled exception frame (`exception`, default `modelStreamErrorException`).
    Exception,
    /// After `after_tokens` tokens, the connection drops.
    Drop,
    /// After `after_tokens` tokens, a frame with a bad CRC.
    CorruptFrame,
    /// The answer comes `delay_ms` late.
    Latency,
    /// An HTTP error `status` instead of the answer.
    Status,
    /// A body that is not the JSON the contract promises.
    MalformedBody,
    /// After `after_tokens` frames, a `data:` line that is not JSON.
    MalformedFrame,
    /// A 200 with `Content-Type: application/json` instead of `text/event-stream`.
    WrongContentType,
    /// The connection is refused before any response.
    Refuse,
}

impl FaultKind {
    /// Every kind, in declaration order.
    pub const ALL: [FaultKind; 19] = [
        FaultKind::Throttling,
        FaultKind::Validation,
        FaultKind::AccessDenied,
        FaultKind::ResourceNotFound,
        FaultKind::ModelTimeout,
        FaultKind::ModelNotReady,
        FaultKind::ServiceUnavailable,
        FaultKind::Internal,
        FaultKind::SlowFirstToken,
        FaultKind::Stall,
        FaultKind::Exception,
        FaultKind::Drop,
        FaultKind::CorruptFrame,
        FaultKind::Latency,
        FaultKind::Status,
        FaultKind::MalformedBody,
        FaultKind::MalformedFrame,
        FaultKind::WrongContentType,
        FaultKind::Refuse,
    ];

    /// The spelling in scenario files.
    pub fn as_str(self) -> &'static str {
        match self {
            FaultKind::Throttling => "throttling",
            FaultKind::Validation => "validation",
            FaultKind::AccessDenied => "access_denied",
            FaultKind::ResourceNotFound => "resource_not_found",
            FaultKind::ModelTimeout => "model_timeout",
            FaultKind::ModelNotReady => "model_not_ready",
            FaultKind::ServiceUnavailable => "service_unavailable",
            FaultKind::Internal => "internal",
            FaultKind::SlowFirstToken => "slow_first_token",
            FaultKind::Stall => "stall",
            FaultKind::Exception => "exception",
            FaultKind::Drop => "drop",
            FaultKind::CorruptFrame => "corrupt_frame",
            FaultKind::Latency => "latency",
            FaultKind::Status => "status",
            FaultKind::MalformedBody => "malformed_body",
            FaultKind::MalformedFrame => "malformed_frame",
            FaultKind::WrongContentType => "wrong_content_type",
            FaultKind::Refuse => "refuse",
        }
    }

    /// Whether this kind can be injected at `target`.
    pub fn allowed_at(self, target: FaultTarget) -> bool {
        use FaultKind::*;
        match target {
            FaultTarget::Bedrock => matches!(
                self,
                Throttling
                    | Validation
                    | AccessDenied
                    | ResourceNotFound
                    | ModelTimeout
                    | ModelNotReady
                    | ServiceUnavailable
                    | Internal
                    | SlowFirstToken
                    | Stall
                    | Exception
                    | Drop
                    | CorruptFrame
            ),
            FaultTarget::MasterConfig | FaultTarget::MasterChat => {
                matches!(self, Latency | Status | Drop | MalformedBody)
            }
            FaultTarget::Gateway => {
                matches!(
                    self,
                    Latency | Status | Drop | Stall | MalformedFrame | WrongContentType
                )
            }
            FaultTarget::Network => matches!(self, Refuse | Latency | Drop | Stall),
        }
    }

    /// The Bedrock error code and HTTP status of a pre-stream Bedrock error kind.
    pub fn bedrock_error(self) -> Option<(&'static str, u16)> {
        Some(match self {
            FaultKind::Throttling => ("ThrottlingException", 429),
            FaultKind::Validation => ("ValidationException", 400),
            FaultKind::AccessDenied => ("AccessDeniedException", 403),
            FaultKind::ResourceNotFound => ("ResourceNotFoundException", 404),
            FaultKind::ModelTimeout => ("ModelTimeoutException", 408),
            FaultKind::ModelNotReady => ("ModelNotReadyException", 429),
            FaultKind::ServiceUnavailable => ("ServiceUnavailableException", 503),
            FaultKind::Internal => ("InternalServerException", 500),
            _ => return None,
        })
    }

    /// Whether the kind needs `delay_ms`.
    pub fn needs_delay(self) -> bool {
        matches!(self, FaultKind::SlowFirstToken | FaultKind::Latency)
    }

    /// Whether the kind strikes after some tokens (and so takes `after_tokens`).
    pub fn takes_after_tokens(self) -> bool {
        matches!(
            self,
            FaultKind::Stall
                | FaultKind::Exception
                | FaultKind::Drop
                | FaultKind::CorruptFrame
                | FaultKind::MalformedFrame
        )
    }
}

/// Which server calls Bedrock (Bedrock faults can be limited to one of them).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Caller {
    /// The streaming gateway.
    Gateway,
    /// The Master Function (regular chat, and so the fallback).
    Master,
}

impl Caller {
    /// The spelling used in scenario files and in Bedrock's `requestMetadata`.
    pub fn as_str(self) -> &'static str {
        match self {
            Caller::Gateway => "gateway",
            Caller::Master => "master",
        }
    }
}

/// One Bedrock call as the servers make it: what to ask, and on whose behalf (sent as
/// `requestMetadata`). The SDK path (`bedrock_client`) and mock Bedrock's direct path
/// (`mock_bedrock::DirectCall`) take this same value.
#[derive(Debug, Clone, Copy)]
pub struct Call<'a> {
    /// The model id.
    pub model: &'a str,
    /// The user's text.
    pub prompt: &'a str,
    /// The tenant hash.
    pub tenant: &'a str,
    /// The widget session.
    pub session: &'a str,
    /// The message.
    pub message: &'a str,
    /// Which server calls.
    pub caller: Caller,
}

/// A fault: where, what, and when it strikes.
///
/// With no `tenant`, `session` or `message` it strikes every matching request; `times`
/// limits it to the first N matching requests, `attempts` to the SDK's first N attempts
/// of a call (so a retried call gets through), `probability` to a share of them,
/// decided by the seed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Fault {
    /// A name for the fault, used in transcripts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Where the fault strikes.
    #[serde(rename = "where")]
    pub target: FaultTarget,
    /// What it does.
    pub kind: FaultKind,
    /// Delay for `latency`, `slow_first_token` and `stall`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(max = crate::bounds::MAX_MS))]
    pub delay_ms: Option<u64>,
    /// HTTP status for `status` (400–599).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 400, max = 599))]
    pub status: Option<u16>,
    /// Tokens (or frames) sent before a mid-stream fault strikes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after_tokens: Option<u32>,
    /// The lowerCamel exception type of an `exception` fault.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exception: Option<String>,
    /// Only for this tenant hash.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// Only in this session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
    /// Only for this message id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Bedrock only: only on calls from this server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub via: Option<Caller>,
    /// Bedrock only: only on calls to this model id (as in the request path,
    /// percent-decoded), so one server can answer one model and fail another.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Bedrock only: strike while the SDK's attempt number is at most this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub attempts: Option<u32>,
    /// Strike on the first N matching requests only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub times: Option<u32>,
    /// Strike on this share of matching requests (0–1), decided by the seed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 1))]
    pub probability: Option<f64>,
}

impl Fault {
    /// A fault of `kind` at `target` that strikes every request.
    pub fn new(target: FaultTarget, kind: FaultKind) -> Fault {
        Fault {
            id: None,
            target,
            kind,
            delay_ms: None,
            status: None,
            after_tokens: None,
            exception: None,
            tenant: None,
            session: None,
            message: None,
            via: None,
            model: None,
            attempts: None,
            times: None,
            probability: None,
        }
    }

    /// The name used in transcripts: the `id`, or `where/kind`.
    pub fn label(&self) -> String {
        self.id
            .clone()
            .unwrap_or_else(|| format!("{}/{}", self.target.as_str(), self.kind.as_str()))
    }
}

/// A widget session: one visitor on one tenant's page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Session {
    /// The session id, sent as `session_id`.
    pub id: String,
    /// The tenant hash.
    pub tenant: String,
    /// Virtual milliseconds from the run's start to the session's config load.
    #[serde(default)]
    #[schemars(range(max = crate::bounds::MAX_MS))]
    pub start_ms: u64,
    /// Whether the browser has `EventSource` (IE11 has not).
    #[serde(default = "yes")]
    pub event_source: bool,
    /// The page's origin; the tenant's first allowed origin when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
    /// The user closes the page this many virtual ms after the session starts, whatever
    /// is still pending: the widget's cancel and unmount paths run. Absent: the page
    /// closes once every message has ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub close_at_ms: Option<u64>,
    /// The messages the user sends, in order.
    #[serde(default)]
    pub messages: Vec<Message>,
}

fn yes() -> bool {
    true
}

/// One message a user sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Message {
    /// The message id, sent as `message_id`.
    pub id: String,
    /// What the user types.
    pub text: String,
    /// Sent this many virtual ms after the previous message ended (after the config for the first).
    #[serde(default = "default_think_ms")]
    #[schemars(range(max = crate::bounds::MAX_MS))]
    pub think_ms: u64,
    /// Sent at this virtual time from session start, whether or not the previous one ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(max = crate::bounds::MAX_MS))]
    pub at_ms: Option<u64>,
}

fn default_think_ms() -> u64 {
    1000
}

/// The gateway's limits, from the design document's §Security.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Longest stream before `STREAM_004`.
    #[serde(default = "default_max_stream_ms")]
    #[schemars(range(max = crate::bounds::MAX_MS))]
    pub max_stream_ms: u64,
    /// Stream requests allowed per session in the window.
    #[serde(default = "default_rate_limit")]
    pub rate_limit: u32,
    /// The rolling window of the rate limit.
    #[serde(default = "default_rate_window_ms")]
    #[schemars(range(max = crate::bounds::MAX_MS))]
    pub rate_window_ms: u64,
    /// Longest `user_input`, in Unicode scalar values.
    #[serde(default = "default_max_input_chars")]
    pub max_input_chars: u32,
    /// How long the gateway trusts a fetched tenant config.
    #[serde(default = "default_config_ttl_ms")]
    #[schemars(range(max = crate::bounds::MAX_MS))]
    pub config_ttl_ms: u64,
    /// A `:` comment line after this long without a frame on an open stream, so proxies
    /// keep the connection (an `EventSource` shows no event for it); 0 for none.
    #[serde(default = "default_heartbeat_ms")]
    #[schemars(range(max = crate::bounds::MAX_MS))]
    pub heartbeat_ms: u64,
}

fn default_max_stream_ms() -> u64 {
    30_000
}
fn default_rate_limit() -> u32 {
    10
}
fn default_rate_window_ms() -> u64 {
    60_000
}
fn default_max_input_chars() -> u32 {
    4_000
}
fn default_config_ttl_ms() -> u64 {
    5_000
}
fn default_heartbeat_ms() -> u64 {
    15_000
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_stream_ms: default_max_stream_ms(),
            rate_limit: default_rate_limit(),
            rate_window_ms: default_rate_window_ms(),
            max_input_chars: default_max_input_chars(),
            config_ttl_ms: default_config_ttl_ms(),
            heartbeat_ms: default_heartbeat_ms(),
        }
    }
}

/// The widget's timers (the corrected policy's state machine uses them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WidgetSettings {
    /// From `new EventSource` to `open`.
    #[serde(default = "default_connect_timeout_ms")]
    #[schemars(range(max = crate::bounds::MAX_MS))]
    pub connect_timeout_ms: u64,
    /// Longest silence on an open stream.
    #[serde(default = "default_idle_timeout_ms")]
    #[schemars(range(max = crate::bounds::MAX_MS))]
    pub idle_timeout_ms: u64,
    /// Longest stream, end to end.
    #[serde(default = "default_total_timeout_ms")]
    #[schemars(range(max = crate::bounds::MAX_MS))]
    pub total_timeout_ms: u64,
    /// Longest regular-chat POST.
    #[serde(default = "default_post_timeout_ms")]
    #[schemars(range(max = crate::bounds::MAX_MS))]
    pub post_timeout_ms: u64,
    /// The browser's reconnection time (Chromium: 3000 ms).
    #[serde(default = "default_reconnect_ms")]
    #[schemars(range(min = crate::bounds::MIN_RECONNECT_MS, max = crate::bounds::MAX_MS))]
    pub reconnect_ms: u64,
    /// Corrected policy: on a dropped stream, reconnect once with `Last-Event-ID` before falling back.
    #[serde(default)]
    pub resume: bool,
}

fn default_connect_timeout_ms() -> u64 {
    10_000
}
fn default_idle_timeout_ms() -> u64 {
    15_000
}
fn default_total_timeout_ms() -> u64 {
    35_000
}
fn default_post_timeout_ms() -> u64 {
    30_000
}
fn default_reconnect_ms() -> u64 {
    3_000
}

impl Default for WidgetSettings {
    fn default() -> Self {
        WidgetSettings {
            connect_timeout_ms: default_connect_timeout_ms(),
            idle_timeout_ms: default_idle_timeout_ms(),
            total_timeout_ms: default_total_timeout_ms(),
            post_timeout_ms: default_post_timeout_ms(),
            reconnect_ms: default_reconnect_ms(),
            resume: false,
        }
    }
}

/// The rollout rehearsal: the design document's §4.1 steps on a simulated population.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Rollout {
    /// The tenant rolled out first (the document's Foster Village).
    pub tenant: String,
    /// The percentages, in order.
    #[serde(default = "default_steps")]
    pub steps: Vec<f64>,
    /// Simulated sessions at each step.
    #[serde(default = "default_sessions_per_step")]
    pub sessions_per_step: u32,
    /// Messages each simulated session sends.
    #[serde(default = "default_messages_per_session")]
    pub messages_per_session: u32,
}

fn default_steps() -> Vec<f64> {
    vec![0.0, 10.0, 50.0, 100.0]
}
fn default_sessions_per_step() -> u32 {
    200
}
fn default_messages_per_session() -> u32 {
    2
}

impl Scenario {
    /// The tenant's config in force at virtual time `at_ms`: as the file gives it, with
    /// every config change at or before `at_ms` applied in order.
    pub fn tenant_at(&self, hash: &str, at_ms: u64) -> Option<Tenant> {
        let mut tenants = vec![self.tenant(hash)?.clone()];
        for c in self.config_changes.iter().filter(|c| c.at_ms <= at_ms) {
            c.apply(&mut tenants);
        }
        tenants.pop()
    }

    /// The embedded default scenario, parsed (it is checked by a test).
    pub fn default_scenario() -> Scenario {
        crate::load::parse_scenario("<default>", DEFAULT_SCENARIO_TOML)
            .expect("the embedded default scenario is valid (checked by a test)")
    }

    /// Whether mock Bedrock answers calls for `model` (see [`Scenario::models`]).
    pub fn knows_model(&self, model: &str) -> bool {
        if self.models.is_empty() {
            return true;
        }
        // An ARN names its resource after the last `/`; a cross-region inference
        // profile puts a region group before the model id.
        let resource = model.rsplit('/').next().unwrap_or(model);
        let base = ["us.", "eu.", "apac.", "us-gov.", "global."]
            .iter()
            .find_map(|p| resource.strip_prefix(p))
            .unwrap_or(resource);
        let known = self
            .models
            .iter()
            .chain(self.tenants.iter().map(|t| &t.streaming_model))
            .chain(self.answers.iter().filter_map(|a| a.model.as_ref()));
        known
            .into_iter()
            .any(|m| m == model || m == resource || m == base)
    }

    /// The tenant with this hash.
    pub fn tenant(&self, hash: &str) -> Option<&Tenant> {
        self.tenants.iter().find(|t| t.hash == hash)
    }
}

/// A scenario's answers with their patterns compiled once, so picking the answer for a
/// request costs no regex compilation.
#[derive(Debug, Clone, Default)]
pub struct AnswerBook {
    entries: Vec<(Answer, Option<regex::Regex>)>,
}

impl AnswerBook {
    /// The book of `answers`, in order. A pattern that does not compile (validation
    /// refuses those) matches nothing.
    pub fn new(answers: &[Answer]) -> AnswerBook {
        let entries = answers
            .iter()
            .map(|a| {
                (
                    a.clone(),
                    a.pattern.as_deref().and_then(|p| regex::Regex::new(p).ok()),
                )
            })
            .collect();
        AnswerBook { entries }
    }

    /// The scripted answer for a prompt to a model: an exact prompt match first, then
    /// the first pattern that matches, then the first default; `None` if nothing matches.
    pub fn answer_for(&self, model: &str, prompt: &str) -> Option<&Answer> {
        let for_model = |(a, _): &&(Answer, Option<regex::Regex>)| {
            a.model.as_deref().is_none_or(|m| m == model)
        };
        let entries = || self.entries.iter().filter(for_model);
        entries()
            .find(|(a, _)| a.prompt.as_deref() == Some(prompt))
            .or_else(|| entries().find(|(_, re)| re.as_ref().is_some_and(|re| re.is_match(prompt))))
            .or_else(|| entries().find(|(a, _)| a.is_default()))
            .map(|(a, _)| a)
    }
}

/// The JSON Schema of the scenario format, derived from these types (what
/// `picasso-sim schema` prints and `docs/scenario.schema.json` holds).
pub fn json_schema() -> String {
    let schema = schemars::schema_for!(Scenario);
    let mut text = serde_json::to_string_pretty(&schema).expect("a schema is plain JSON");
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pacing_keeps_leading_spaces_and_delays() {
        let tokens = pace(
            "Hello, how can I help?",
            Pacing {
                first_token_ms: 800,
                gap_ms: 50,
            },
        );
        let texts: Vec<&str> = tokens.iter().map(|t| t.text.as_str()).collect();
        assert_eq!(texts, ["Hello,", " how", " can", " I", " help?"]);
        assert_eq!(tokens[0].delay_ms, 800);
        assert!(tokens[1..].iter().all(|t| t.delay_ms == 50));
        assert_eq!(texts.concat(), "Hello, how can I help?");
        assert!(pace("", Pacing::default()).is_empty());
        assert_eq!(pace("  a", Pacing::default())[0].text, "  a");
    }

    #[test]
    fn config_has_a_streaming_endpoint_only_when_streaming_and_configured() {
        let s = Scenario::default_scenario();
        let foster = s.tenant("fo85e6a06dcdf4").unwrap();
        let austin = s.tenant("au47d9f8e2c31b").unwrap();
        let c = foster.config("http://m/chat", Some("http://g/"));
        assert_eq!(c.endpoints.chat.as_deref(), Some("http://m/chat"));
        assert_eq!(c.endpoints.streaming.as_deref(), Some("http://g/"));
        assert_eq!(c.tenant_name.as_deref(), Some("Foster Village"));
        assert_eq!(
            foster.config("http://m/chat", None).endpoints.streaming,
            None
        );
        assert_eq!(
            austin
                .config("http://m/chat", Some("http://g/"))
                .endpoints
                .streaming,
            None
        );
        assert_eq!(
            austin.config("c", None).endpoints.chat.as_deref(),
            Some("c")
        );
        // As written, a streaming tenant loses `endpoints.chat`; a non-streaming one keeps it.
        let foster = s.tenant("fo85e6a06dcdf4").unwrap();
        let written = foster.config_as_written("c", Some("g"));
        assert_eq!(written.endpoints.chat, None);
        assert_eq!(written.endpoints.streaming.as_deref(), Some("g"));
        assert_eq!(
            austin
                .config_as_written("c", Some("g"))
                .endpoints
                .chat
                .as_deref(),
            Some("c")
        );
        assert_eq!(
            austin.config_as_written("c", Some("g")).endpoints.streaming,
            None
        );
    }

    #[test]
    fn model_catalogue() {
        let mut s = Scenario::default_scenario();
        assert!(s.knows_model("anything.at-all"));
        s.models = vec!["amazon.nova-lite-v1:0".into()];
        assert!(s.knows_model("amazon.nova-lite-v1:0"));
        assert!(s.knows_model(DEFAULT_MODEL), "a tenant's model is known");
        assert!(s.knows_model(&format!("us.{DEFAULT_MODEL}")));
        assert!(s.knows_model(&format!(
            "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.{DEFAULT_MODEL}"
        )));
        assert!(!s.knows_model("anthropic.claude-nonexistent-v9:0"));
    }

    #[test]
    fn answers_match_exact_then_pattern_then_default() {
        let s = AnswerBook::new(&Scenario::default_scenario().answers);
        let exact = s.answer_for(DEFAULT_MODEL, "Hello").unwrap();
        assert_eq!(exact.prompt.as_deref(), Some("Hello"));
        assert_eq!(
            s.answer_for(DEFAULT_MODEL, "How do I VOLUNTEER?")
                .unwrap()
                .id,
            "volunteering",
            "patterns come before the default"
        );
        assert!(
            s.answer_for(DEFAULT_MODEL, "something unheard of")
                .unwrap()
                .is_default()
        );
    }
}
