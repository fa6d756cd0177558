//! The Master's monitoring numbers in Prometheus text under `/metrics`: requests by
//! action, errors by code, and how long the regular chat took (its "time to answer").
//! Durations are on tokio's clock, virtual in the simulator.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::fmt;

/// Label set: which action.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ActionLabels {
    /// `get_config`, `chat`, `other`.
    pub action: &'static str,
}

/// Label set: which error code.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CodeLabels {
    /// `TENANT_NOT_FOUND`, `BEDROCK_ERROR`, ...
    pub code: String,
}

/// The Master's metrics.
pub struct Metrics {
    registry: Registry,
    /// Requests by action, counted by the router's `http_serve::metrics::CountRequestsLayer`.
    pub requests: Family<ActionLabels, Counter>,
    /// Error answers by code (injected drops and malformed bodies included).
    pub errors: Family<CodeLabels, Counter>,
    /// Chat request to answer, seconds (the whole answer: Bedrock's `Converse`).
    pub chat_duration: Histogram,
}

impl fmt::Debug for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("master");
        let requests = Family::<ActionLabels, Counter>::default();
        let errors = Family::<CodeLabels, Counter>::default();
        let chat_duration = Histogram::new(exponential_buckets(0.01, 2.0, 14));
        registry.register("requests", "Requests by action", requests.clone());
        registry.register("errors", "Error answers by code", errors.clone());
        registry.register(
            "chat_duration_seconds",
            "Regular chat: request to whole answer",
            chat_duration.clone(),
        );
        Metrics {
            registry,
            requests,
            errors,
            chat_duration,
        }
    }
}

impl Metrics {
    /// Counts an error answer.
    pub fn error(&self, code: &str) {
        self.errors
            .get_or_create(&CodeLabels {
                code: code.to_owned(),
            })
            .inc();
    }

    /// The text exposition.
    pub fn render(&self) -> String {
        http_serve::metrics::render(&self.registry)
    }
}
