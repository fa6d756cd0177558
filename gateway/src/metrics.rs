//! The design document's monitoring numbers (§4.2), in Prometheus text under `/metrics`:
//! requests, errors by code, stream durations and time to first token.
//!
//! Durations are measured on tokio's clock, so in the simulator they are virtual.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::fmt;
use std::time::Duration;

/// Label set: which route.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    /// `stream`, `preflight`.
    pub route: &'static str,
}

/// Label set: which code.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CodeLabels {
    /// `STREAM_003`, `RATE_LIMITED`, ...
    pub code: String,
}

/// Label set: how a generation ended.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    /// `completed`, `bedrock_error`, `timeout`, `abandoned`, `shutdown`.
    pub outcome: &'static str,
}

/// The gateway's metrics and the registry that renders them.
pub struct Metrics {
    registry: Registry,
    /// Requests by route.
    pub requests: Family<RouteLabels, Counter>,
    /// Refusals and error frames by code.
    pub errors: Family<CodeLabels, Counter>,
    /// Generations (Bedrock calls) by outcome.
    pub generations: Family<OutcomeLabels, Counter>,
    /// Repeats answered from a kept answer: 204s, replays and joins.
    pub repeats: Counter,
    /// Event-stream responses currently open.
    pub open_streams: Gauge,
    /// Generation start to terminal frame, seconds.
    pub stream_duration: Histogram,
    /// Generation start to first text frame, seconds.
    pub time_to_first_token: Histogram,
}

impl fmt::Debug for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("gateway");
        let requests = Family::<RouteLabels, Counter>::default();
        let errors = Family::<CodeLabels, Counter>::default();
        let generations = Family::<OutcomeLabels, Counter>::default();
        let repeats = Counter::default();
        let open_streams = Gauge::default();
        let stream_duration = Histogram::new(exponential_buckets(0.01, 2.0, 14));
        let time_to_first_token = Histogram::new(exponential_buckets(0.001, 2.0, 16));
        registry.register("requests", "Requests by route", requests.clone());
        registry.register(
            "errors",
            "Refusals and error frames by code",
            errors.clone(),
        );
        registry.register(
            "generations",
            "Bedrock generations by outcome",
            generations.clone(),
        );
        registry.register(
            "repeats",
            "Repeated requests answered without Bedrock",
            repeats.clone(),
        );
        registry.register(
            "open_streams",
            "Event streams open now",
            open_streams.clone(),
        );
        registry.register(
            "stream_duration_seconds",
            "Generation start to its last frame",
            stream_duration.clone(),
        );
        registry.register(
            "time_to_first_token_seconds",
            "Generation start to its first text frame",
            time_to_first_token.clone(),
        );
        Metrics {
            registry,
            requests,
            errors,
            generations,
            repeats,
            open_streams,
            stream_duration,
            time_to_first_token,
        }
    }
}

impl Metrics {
    /// Counts one request on `route`.
    pub fn request(&self, route: &'static str) {
        self.requests.get_or_create(&RouteLabels { route }).inc();
    }

    /// Counts one refusal or error frame with `code`.
    pub fn error(&self, code: &str) {
        self.errors
            .get_or_create(&CodeLabels {
                code: code.to_owned(),
            })
            .inc();
    }

    /// Records a finished generation.
    pub fn generation(&self, outcome: &'static str, duration: Duration) {
        self.generations
            .get_or_create(&OutcomeLabels { outcome })
            .inc();
        self.stream_duration.observe(duration.as_secs_f64());
    }

    /// The text exposition (OpenMetrics flavour of the Prometheus format).
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}
