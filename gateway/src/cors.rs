//! CORS for the tenant's widget origins only: exact match against `allowed_origins`,
//! never `*`, never `null` (the design document's `*` is one of its defects, §B.6 #18).
//!
//! A request with no `Origin` (curl, a server) is not a browser's cross-origin request
//! and is served; a browser's request from any other origin is refused with `403`
//! before any Bedrock call, and without `Access-Control-Allow-Origin`, so the browser
//! blocks it too.

use http::header::{self, HeaderMap, HeaderValue};
use picasso_core::wire::TenantConfig;

/// Request headers a widget may send on the stream request (a fetch-based client or a
/// resuming `EventSource` sends these; `EventSource` itself never preflights).
pub const ALLOWED_REQUEST_HEADERS: &[&str] = &["accept", "cache-control", "last-event-id"];

/// How long a browser may cache a preflight answer, in seconds.
pub const PREFLIGHT_MAX_AGE_S: u32 = 600;

pub use http_serve::cors::{OriginCheck, apply};

/// Exact, case-sensitive match of the request's `Origin` against the tenant's list.
pub fn check(origin: Option<&HeaderValue>, config: &TenantConfig) -> OriginCheck {
    http_serve::cors::check(origin, config.allowed_origins.iter().map(String::as_str))
}

/// Whether a preflight asks only for what the stream request may do: `GET` (or
/// `HEAD`) and headers from [`ALLOWED_REQUEST_HEADERS`].
pub fn preflight_acceptable(request_headers: &HeaderMap) -> bool {
    let method_ok = request_headers
        .get(header::ACCESS_CONTROL_REQUEST_METHOD)
        .and_then(|m| m.to_str().ok())
        .is_some_and(|m| m == "GET");
    let headers_ok = request_headers
        .get_all(header::ACCESS_CONTROL_REQUEST_HEADERS)
        .iter()
        .all(|v| {
            v.to_str().is_ok_and(|list| {
                list.split(',')
                    .map(|h| h.trim().to_ascii_lowercase())
                    .filter(|h| !h.is_empty())
                    .all(|h| ALLOWED_REQUEST_HEADERS.contains(&h.as_str()))
            })
        });
    method_ok && headers_ok
}

/// What an accepted preflight grants: `GET` with the stream's headers.
pub const PREFLIGHT: http_serve::cors::Preflight = http_serve::cors::Preflight {
    methods: "GET",
    headers: "accept, cache-control, last-event-id",
    max_age_s: PREFLIGHT_MAX_AGE_S,
};

/// The headers of an accepted preflight (besides those of [`apply`]).
pub fn apply_preflight(headers: &mut HeaderMap) {
    http_serve::cors::apply_preflight(headers, &PREFLIGHT);
}

#[cfg(test)]
mod tests {
    use super::*;
    use picasso_core::wire::{Endpoints, Features};

    /// The preflight offers only what the stream answers: `GET` (a `HEAD` gets 405).
    #[test]
    fn preflight_offers_get_only() {
        let ask = |method: &'static str| {
            let mut h = HeaderMap::new();
            h.insert(
                header::ACCESS_CONTROL_REQUEST_METHOD,
                HeaderValue::from_static(method),
            );
            preflight_acceptable(&h)
        };
        assert!(ask("GET"));
        assert!(!ask("HEAD"));
        assert!(!ask("POST"));
        let mut out = HeaderMap::new();
        apply_preflight(&mut out);
        assert_eq!(out[header::ACCESS_CONTROL_ALLOW_METHODS], "GET");
    }

    fn config() -> TenantConfig {
        TenantConfig {
            tenant_hash: "fo85".into(),
            tenant_name: None,
            features: Features {
                streaming_enabled: true,
                streaming_percentage: 100.0,
                streaming_model: "m".into(),
            },
            endpoints: Endpoints {
                chat: Some("c".into()),
                streaming: None,
            },
            allowed_origins: vec!["https://fostervillage.org".into()],
        }
    }

    #[test]
    fn only_exact_origins_are_allowed() {
        let c = config();
        let check_str = |o: &str| check(Some(&HeaderValue::from_str(o).unwrap()), &c);
        assert_eq!(
            check_str("https://fostervillage.org"),
            OriginCheck::Allowed("https://fostervillage.org".into())
        );
        for bad in [
            "https://fostervillage.org/",
            "http://fostervillage.org",
            "https://FosterVillage.org",
            "https://evil.fostervillage.org",
            "null",
            "*",
        ] {
            assert_eq!(check_str(bad), OriginCheck::Refused, "{bad}");
        }
        assert_eq!(check(None, &c), OriginCheck::NoOrigin);
    }

    #[test]
    fn preflight_accepts_get_and_the_stream_headers_only() {
        let mut h = HeaderMap::new();
        h.insert(
            header::ACCESS_CONTROL_REQUEST_METHOD,
            HeaderValue::from_static("GET"),
        );
        assert!(preflight_acceptable(&h));
        h.insert(
            header::ACCESS_CONTROL_REQUEST_HEADERS,
            HeaderValue::from_static("Last-Event-ID, cache-control"),
        );
        assert!(preflight_acceptable(&h));
        h.insert(
            header::ACCESS_CONTROL_REQUEST_HEADERS,
            HeaderValue::from_static("x-custom"),
        );
        assert!(!preflight_acceptable(&h));
        h.remove(header::ACCESS_CONTROL_REQUEST_HEADERS);
        h.insert(
            header::ACCESS_CONTROL_REQUEST_METHOD,
            HeaderValue::from_static("POST"),
        );
        assert!(!preflight_acceptable(&h));
    }

    #[test]
    fn apply_never_writes_a_wildcard() {
        let mut h = HeaderMap::new();
        apply(&mut h, None);
        assert!(h.get(header::ACCESS_CONTROL_ALLOW_ORIGIN).is_none());
        assert_eq!(h[header::VARY], "origin");
        apply(&mut h, Some("https://fostervillage.org"));
        assert_eq!(
            h[header::ACCESS_CONTROL_ALLOW_ORIGIN],
            "https://fostervillage.org"
        );
    }
}
