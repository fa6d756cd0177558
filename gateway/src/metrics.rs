//! The design document's monitoring numbers (§4.2), in Prometheus text under `/metrics`:
//! requests, errors by code, stream durations and time to first token.
//!
//! Durations are measured on tokio's clock, so in the simulator they are virtual.
//!
//! Errors, generations and stream outcomes carry a `tenant` label, so one tenant's
//! dashboard never mixes in another's numbers. The label is set only once the tenant
//! is known to exist (its config was found), so a client cannot grow the label set by
//! sending made-up hashes: refusals before that point have `tenant=""`.
//!
//! Every stream request ends as exactly one of `completed` (its answer, a `204`, or
//! the rest of a kept answer, through the terminal frame), `error` (a refusal or an
//! error frame or a connection the server cut) or `cancelled` (the client went away
//! first), so `requests{route="stream"}` = the sum of `stream_outcomes`.

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

/// Label set: which code, for which tenant.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CodeLabels {
    /// `STREAM_003`, `RATE_LIMITED`, ...
    pub code: String,
    /// The tenant hash, or empty before the tenant is known.
    pub tenant: String,
}

/// Label set: how a generation or a stream request ended, for which tenant.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    /// Generations: `completed`, `bedrock_error`, `timeout`, `abandoned`, `shutdown`.
    /// Stream requests: `completed`, `error`, `cancelled`.
    pub outcome: &'static str,
    /// The tenant hash, or empty before the tenant is known.
    pub tenant: String,
}

/// The gateway's metrics and the registry that renders them.
pub struct Metrics {
    registry: Registry,
    /// Errors by code, all tenants, for readers in the same process (the rollout's
    /// "error rates by type"): the same counts as `errors`, without parsing text.
    by_code: std::sync::Mutex<std::collections::BTreeMap<String, u64>>,
    /// Requests by route, counted by the router's `http_serve::metrics::CountRequestsLayer`.
    pub requests: Family<RouteLabels, Counter>,
    /// Refusals and error frames by code.
    pub errors: Family<CodeLabels, Counter>,
    /// Generations (Bedrock calls) by outcome.
    pub generations: Family<OutcomeLabels, Counter>,
    /// Stream requests by how they ended (see the module doc).
    pub stream_outcomes: Family<OutcomeLabels, Counter>,
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
        let stream_outcomes = Family::<OutcomeLabels, Counter>::default();
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
            "stream_outcomes",
            "Stream requests by how they ended: completed, error, cancelled",
            stream_outcomes.clone(),
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
            by_code: std::sync::Mutex::default(),
            requests,
            errors,
            generations,
            stream_outcomes,
            repeats,
            open_streams,
            stream_duration,
            time_to_first_token,
        }
    }
}

impl Metrics {
    /// Counts one refusal or error frame with `code` for `tenant` (empty: not known).
    pub fn error(&self, code: &str, tenant: &str) {
        self.errors
            .get_or_create(&CodeLabels {
                code: code.to_owned(),
                tenant: tenant.to_owned(),
            })
            .inc();
        *self
            .by_code
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(code.to_owned())
            .or_default() += 1;
    }

    /// Refusals and error frames so far, by code (all tenants).
    pub fn errors_by_code(&self) -> std::collections::BTreeMap<String, u64> {
        self.by_code
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Records a finished generation of `tenant`.
    pub fn generation(&self, outcome: &'static str, tenant: &str, duration: Duration) {
        self.generations
            .get_or_create(&OutcomeLabels {
                outcome,
                tenant: tenant.to_owned(),
            })
            .inc();
        self.stream_duration.observe(duration.as_secs_f64());
    }

    /// Counts how one stream request ended (see [`crate::outcome`]).
    pub fn stream_outcome(&self, outcome: &'static str, tenant: &str) {
        self.stream_outcomes
            .get_or_create(&OutcomeLabels {
                outcome,
                tenant: tenant.to_owned(),
            })
            .inc();
    }

    /// The text exposition (OpenMetrics flavour of the Prometheus format).
    pub fn render(&self) -> String {
        http_serve::metrics::render(&self.registry)
    }
}
