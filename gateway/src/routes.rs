//! The routes: `GET /` (the stream), `OPTIONS /` (the CORS preflight), `GET /metrics`.
//!
//! The stream handler runs the contract's checks in its order: the network edge
//! (injected faults), the URL length, the parameters (`400`), tenant and origin (`403`),
//! the rate limit (`429`), the gateway's own injected faults, then one answer per
//! message (`204`, replay, join, or a new Bedrock call).

use crate::cors::{self, OriginCheck};
use crate::error::GatewayError;
use crate::faults::{self, Frames};
use crate::generation::{Generation, Lookup, MessageKey};
use crate::metrics::{Metrics, RouteLabels};
use crate::outcome::Pending;
use crate::params::{self, MAX_URI_BYTES};
use crate::rate_limit::Admission;
use crate::sse;
use crate::state::GatewayState;
use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures_util::StreamExt;
use http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use http_serve::metrics::CountRequestsLayer;
use picasso_core::fault::RequestFacts;
use picasso_core::scenario::{FaultKind, FaultTarget, Servers};
use picasso_core::wire::parse_event_id;
use std::time::Duration;

/// The gateway's router.
pub fn router(state: GatewayState) -> Router {
    let count = CountRequestsLayer::new(state.metrics().requests.clone(), route_label);
    Router::new()
        // A HEAD would run the GET handler and start an answer no one reads (the
        // real GET for that message would then get 204): refuse it instead.
        .route(
            "/",
            get(stream)
                .options(preflight)
                .head(method_not_allowed)
                .fallback(method_not_allowed)
                .layer(count),
        )
        .route("/metrics", get(metrics))
        .fallback(not_found)
        .with_state(state)
}

/// What `gateway_requests_total` counts on `/`, under which `route`: the stream and
/// its preflight (a refused method is not a request of either).
fn route_label(method: &Method, _uri: &Uri) -> Option<RouteLabels> {
    let route = match *method {
        Method::GET => "stream",
        Method::OPTIONS => "preflight",
        _ => return None,
    };
    Some(RouteLabels { route })
}

/// `405`, with the contract's JSON body; the stream is `GET /` only.
async fn method_not_allowed() -> Response {
    let mut response = http_serve::error_response(
        StatusCode::METHOD_NOT_ALLOWED,
        "METHOD_NOT_ALLOWED",
        "the stream is GET / (and OPTIONS for a CORS preflight)",
    );
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("GET, OPTIONS"));
    response
}

/// `404`, with the contract's JSON body.
async fn not_found() -> Response {
    http_serve::error_response(
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
        "the stream is GET /?tenant_hash=…&user_input=…&session_id=…&message_id=…",
    )
}

async fn metrics(State(state): State<GatewayState>) -> Response {
    http_serve::metrics::exposition(state.metrics_text())
}

/// `GET /?tenant_hash&user_input&session_id&message_id`.
async fn stream(State(state): State<GatewayState>, headers: HeaderMap, uri: Uri) -> Response {
    // Counted `cancelled` if this future is dropped before it answers.
    let mut pending = Pending::begin(state.metrics_handle());
    let query = uri.query().unwrap_or("");
    let lenient = params::parse_query(query).unwrap_or_default();
    let field = |k: &str| lenient.get(k).map(String::as_str);
    let facts = RequestFacts {
        tenant: field("tenant_hash"),
        session: field("session_id"),
        message: field("message_id"),
        ..RequestFacts::default()
    };
    let network = state.strike(FaultTarget::Network, &facts);
    let mut cut = None;
    if let Some(fault) = network {
        match fault.kind {
            FaultKind::Refuse => {
                pending.settle("error");
                return faults::refused();
            }
            FaultKind::Latency => sleep_ms(fault.delay_ms).await,
            FaultKind::Drop | FaultKind::Stall => cut = Some(fault),
            _ => {}
        }
    }
    let mut origin = None;
    let mut response = match checked(&state, &headers, &uri, &mut origin, &mut pending).await {
        Ok(response) => response,
        Err(err) => {
            state
                .metrics()
                .error(err.status_and_code().1, pending.tenant());
            err.into_response()
        }
    };
    cors::apply(response.headers_mut(), origin.as_deref());
    let response = match cut {
        Some(f) if f.kind == FaultKind::Drop => {
            let n = f.after_tokens.unwrap_or(0);
            faults::wrap_body(response, |b| faults::drop_after(b, n))
        }
        Some(f) => {
            let (n, delay) = (
                f.after_tokens.unwrap_or(0),
                f.delay_ms.map(Duration::from_millis),
            );
            let token = state.shutdown_token();
            faults::wrap_body(response, |b| faults::stall_after(b, n, delay, token))
        }
        None => response,
    };
    settle(response, pending)
}

/// Counts the request's outcome: at once for a refusal or a `204`, from what goes out
/// for an event stream (see [`crate::outcome`]).
fn settle(response: Response, mut pending: Pending) -> Response {
    let is_stream = response.status() == StatusCode::OK
        && response
            .headers()
            .get(header::CONTENT_TYPE)
            .is_some_and(|v| v.as_bytes() == b"text/event-stream");
    if !is_stream {
        pending.settle(if response.status().is_success() {
            "completed"
        } else {
            "error"
        });
        return response;
    }
    faults::wrap_body(response, |frames| pending.track(frames).boxed())
}

/// The checks and the answer; `origin` is set once the origin is known to be allowed,
/// so every later answer (refusals included) carries the CORS header; `pending` learns
/// the tenant once it is known to exist.
async fn checked(
    state: &GatewayState,
    headers: &HeaderMap,
    uri: &Uri,
    origin: &mut Option<String>,
    pending: &mut Pending,
) -> Result<Response, GatewayError> {
    let target_len = uri.path_and_query().map_or(0, |pq| pq.as_str().len());
    if target_len > MAX_URI_BYTES {
        return Err(GatewayError::UriTooLong(MAX_URI_BYTES));
    }
    let scenario = state.scenario();
    let limits = scenario.limits;
    // The design document's Lambda as written: see `picasso_core::scenario::Servers`.
    let as_written = scenario.servers == Servers::AsWritten;
    drop(scenario);
    let params = params::validate(params::parse_query(uri.query().unwrap_or(""))?, &limits)?;

    let ttl = Duration::from_millis(limits.config_ttl_ms);
    let config = state
        .tenants()
        .get(&params.tenant_hash, ttl)
        .await?
        .ok_or(GatewayError::UnknownTenant)?;
    pending.set_tenant(&params.tenant_hash);
    if as_written {
        // `responseStream.setHeader("Access-Control-Allow-Origin", "*")`, no check.
        *origin = Some("*".to_owned());
    } else {
        match cors::check(headers.get(header::ORIGIN), &config) {
            OriginCheck::Refused => return Err(GatewayError::OriginNotAllowed),
            OriginCheck::Allowed(o) => *origin = Some(o),
            OriginCheck::NoOrigin => {}
        }
    }
    if !config.features.streaming_enabled {
        return Err(GatewayError::StreamingDisabled);
    }
    // The document's code has no rate limit.
    if !as_written
        && let Admission::Limited { retry_after_s } =
            state.admit(&params.tenant_hash, &params.session_id, &limits)
    {
        return Err(GatewayError::RateLimited { retry_after_s });
    }

    let facts = RequestFacts {
        tenant: Some(&params.tenant_hash),
        session: Some(&params.session_id),
        message: Some(&params.message_id),
        ..RequestFacts::default()
    };
    let mut edge = None;
    if let Some(fault) = state.strike(FaultTarget::Gateway, &facts) {
        match fault.kind {
            FaultKind::Latency => sleep_ms(fault.delay_ms).await,
            FaultKind::Status => {
                state
                    .metrics()
                    .error("INJECTED_STATUS", &params.tenant_hash);
                return Ok(faults::status_response(&fault));
            }
            FaultKind::WrongContentType => return Ok(faults::wrong_content_type()),
            _ => edge = Some(fault),
        }
    }

    // One answer per message, of this tenant: the key holds the tenant, so no id a
    // client sends reaches another tenant's answer. A Last-Event-ID for another
    // message is ignored.
    let key = MessageKey::new(&params.tenant_hash, &params.session_id, &params.message_id);
    let resume_from = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(parse_event_id)
        .filter(|(message, _)| *message == params.message_id && !as_written)
        .map(|(_, seq)| seq.saturating_add(1) as usize);
    let lookup = match resume_from {
        // As written, every request is a new Bedrock call, kept nowhere.
        _ if as_written => Lookup::Started(Generation::as_written(&params.message_id)),
        // A resume for an answer this gateway no longer keeps (reloaded, restarted):
        // nothing to resume, and a resume must never start a second Bedrock call.
        Some(_) => match state.generations().get(&key) {
            Some(g) => Lookup::Existing(g),
            None => return Ok(no_content(state.metrics())),
        },
        None => state.generations().get_or_start(&key),
    };
    let frames = match lookup {
        Lookup::Started(generation) => {
            let frames = generation.subscribe(0);
            state.spawn_generation(
                generation,
                &params,
                &config.features.streaming_model,
                &limits,
            );
            frames
        }
        Lookup::Existing(generation) => {
            let from = resume_from.unwrap_or(0);
            if generation.is_done() && (resume_from.is_none() || from >= generation.len()) {
                return Ok(no_content(state.metrics()));
            }
            state.metrics().repeats.inc();
            generation.subscribe(from)
        }
    };

    // The document's Lambda sends no heartbeats.
    let heartbeat = if as_written { 0 } else { limits.heartbeat_ms };
    let mut frames: Frames =
        sse::with_heartbeat(frames.map(Ok).boxed(), Duration::from_millis(heartbeat));
    if let Some(fault) = edge {
        let n = fault.after_tokens.unwrap_or(0);
        frames = match fault.kind {
            FaultKind::Drop => faults::drop_after(frames, n),
            FaultKind::Stall => faults::stall_after(
                frames,
                n,
                fault.delay_ms.map(Duration::from_millis),
                state.shutdown_token(),
            ),
            FaultKind::MalformedFrame => faults::malformed_after(frames, n),
            _ => frames,
        };
    }
    // The cap is a promise to the client: outside the gateway's own faults, so even a
    // stalled edge ends with `STREAM_004` (a stalled *network* holds that frame too).
    let cap = Duration::from_millis(limits.max_stream_ms).saturating_add(sse::CAP_MARGIN);
    let first_seq = resume_from.unwrap_or(0) as u64;
    let ids = (!as_written).then(|| params.message_id.clone());
    let frames = sse::capped(frames, cap, ids, first_seq);
    Ok(sse::response(Body::from_stream(frames)))
}

/// `204`: the answer was given in full already; this stops an `EventSource`.
fn no_content(metrics: &Metrics) -> Response {
    metrics.repeats.inc();
    StatusCode::NO_CONTENT.into_response()
}

async fn sleep_ms(ms: Option<u64>) {
    tokio::time::sleep(Duration::from_millis(ms.unwrap_or(0))).await;
}

/// `OPTIONS /`: the CORS preflight. Accepted only for one of the tenant's origins
/// asking for `GET` with the stream's headers; anything else is `403`.
async fn preflight(State(state): State<GatewayState>, headers: HeaderMap, uri: Uri) -> Response {
    let query = params::parse_query(uri.query().unwrap_or("")).unwrap_or_default();
    let tenant = query
        .get("tenant_hash")
        .filter(|t| picasso_core::wire::is_valid_tenant_hash(t));
    let config = match tenant {
        Some(t) => match state
            .tenants()
            .get(t, Duration::from_millis(state.limits().config_ttl_ms))
            .await
        {
            Ok(config) => config,
            Err(e) => {
                let err = GatewayError::Config(e);
                state.metrics().error(err.status_and_code().1, "");
                return err.into_response();
            }
        },
        None => None,
    };
    let as_written = state.scenario().servers == Servers::AsWritten;
    let allowed = config.and_then(|c| match cors::check(headers.get(header::ORIGIN), &c) {
        // As written, any origin: `Access-Control-Allow-Origin: *`.
        _ if as_written => Some("*".to_owned()),
        OriginCheck::Allowed(o) => Some(o),
        _ => None,
    });
    match allowed {
        Some(origin) if cors::preflight_acceptable(&headers) => {
            let mut response = StatusCode::NO_CONTENT.into_response();
            cors::apply(response.headers_mut(), Some(&origin));
            cors::apply_preflight(response.headers_mut());
            response
        }
        _ => {
            let err = GatewayError::OriginNotAllowed;
            state.metrics().error(err.status_and_code().1, "");
            let mut response = err.into_response();
            cors::apply(response.headers_mut(), None);
            response
        }
    }
}
