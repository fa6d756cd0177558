//! What the browser's network stack decides before a page sees a response: the CORS
//! check, the preflight a cross-origin request with a JSON body needs first, which
//! response headers a cross-origin page may read, and the keep-alive connection a
//! request reuses (`widget-and-determinism.md` §B.2).
//!
//! The driver calls these so that a widget, Rust or JavaScript, learns only what a page
//! in Chromium would: a response that fails CORS is a network error with no status, and
//! of its headers only the CORS-safelisted ones and those the server exposes.

use http::HeaderMap;
use http::header::{
    ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_ORIGIN, ACCESS_CONTROL_EXPOSE_HEADERS,
    ACCESS_CONTROL_MAX_AGE, RETRY_AFTER,
};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

/// Whether a page at `origin` may read this response. No origin means the request was
/// not cross-origin (a same-origin page, or a test that sends none).
pub fn cors_allows(origin: Option<&str>, headers: &HeaderMap) -> bool {
    let Some(origin) = origin else {
        return true;
    };
    headers
        .get(ACCESS_CONTROL_ALLOW_ORIGIN)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == "*" || v == origin)
}

/// Whether a cross-origin page may read header `name` (lower case): the Fetch
/// standard's CORS-safelisted response headers, plus what `Access-Control-Expose-Headers`
/// lists.
pub fn exposed(origin: Option<&str>, headers: &HeaderMap, name: &str) -> bool {
    const SAFELISTED: [&str; 7] = [
        "cache-control",
        "content-language",
        "content-length",
        "content-type",
        "expires",
        "last-modified",
        "pragma",
    ];
    if origin.is_none() || SAFELISTED.contains(&name) {
        return true;
    }
    headers
        .get_all(ACCESS_CONTROL_EXPOSE_HEADERS)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .any(|h| h == "*" || h.eq_ignore_ascii_case(name))
}

/// How long a preflight answer is cached when it names no `Access-Control-Max-Age`
/// (the Fetch standard's default).
pub const PREFLIGHT_DEFAULT_MAX_AGE_S: u64 = 5;

/// The longest Chromium caches a preflight answer, whatever `Access-Control-Max-Age` says.
pub const PREFLIGHT_MAX_AGE_CAP_S: u64 = 7_200;

/// The preflight of a cross-origin `POST` with `Content-Type: application/json` (not a
/// CORS-safelisted value, so the browser asks first): whether its answer lets the
/// request go, and if so for how many milliseconds the answer is cached. The answer
/// must be an ok status (2xx), pass the CORS check, and list `content-type` (or `*`) in
/// `Access-Control-Allow-Headers`; `POST` itself is a CORS-safelisted method and needs
/// no `Access-Control-Allow-Methods`. A refused preflight is a network error for the
/// page, and the request itself is never sent.
pub fn json_post_preflight(origin: &str, status: u16, headers: &HeaderMap) -> Option<u64> {
    if !(200..300).contains(&status) || !cors_allows(Some(origin), headers) {
        return None;
    }
    let allows_content_type = headers
        .get_all(ACCESS_CONTROL_ALLOW_HEADERS)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .any(|h| h == "*" || h.eq_ignore_ascii_case("content-type"));
    if !allows_content_type {
        return None;
    }
    let max_age_s = headers
        .get(ACCESS_CONTROL_MAX_AGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(PREFLIGHT_DEFAULT_MAX_AGE_S)
        .min(PREFLIGHT_MAX_AGE_CAP_S);
    Some(max_age_s * 1000)
}

/// `Retry-After` in ms, when present, in seconds, and readable by the page.
pub fn retry_after_ms(origin: Option<&str>, headers: &HeaderMap) -> Option<u64> {
    if !exposed(origin, headers, "retry-after") {
        return None;
    }
    let v = headers.get(RETRY_AFTER)?.to_str().ok()?;
    v.trim().parse::<u64>().ok().map(|s| s.saturating_mul(1000))
}

/// The page's idle keep-alive connections to the gateway. A stream body that ends
/// cleanly leaves its connection idle; the next request takes it. When a request on a
/// reused connection fails before any response byte, Chromium's network stack re-sends
/// it at once on a fresh connection, with no `error` event and no reconnection wait
/// (the server may have closed an idle connection just as it was reused).
#[derive(Debug, Clone, Default)]
pub struct KeepAlive(Arc<AtomicU32>);

impl KeepAlive {
    /// Takes an idle connection, if there is one: whether the request reuses one.
    pub fn take(&self) -> bool {
        self.0
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
            .is_ok()
    }

    /// A response ended cleanly: its connection goes back to the pool.
    pub fn put(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn cors_needs_the_page_origin_echoed() {
        let page = Some("https://a.example");
        assert!(cors_allows(None, &HeaderMap::new()));
        assert!(!cors_allows(page, &HeaderMap::new()));
        assert!(!cors_allows(
            page,
            &headers(&[("access-control-allow-origin", "https://b.example")])
        ));
        assert!(cors_allows(
            page,
            &headers(&[("access-control-allow-origin", "https://a.example")])
        ));
    }

    /// A cross-origin page cannot read `Retry-After` unless the server exposes it.
    #[test]
    fn retry_after_is_hidden_unless_exposed() {
        let page = Some("https://a.example");
        let plain = headers(&[("retry-after", "7")]);
        assert_eq!(retry_after_ms(None, &plain), Some(7000));
        assert_eq!(retry_after_ms(page, &plain), None);
        let exposed = headers(&[
            ("retry-after", "7"),
            ("access-control-expose-headers", "X-Other, Retry-After"),
        ]);
        assert_eq!(retry_after_ms(page, &exposed), Some(7000));
        assert!(super::exposed(page, &plain, "content-type"));
    }

    #[test]
    fn a_json_post_goes_only_after_a_preflight_that_allows_it() {
        let page = "https://a.example";
        let granted = headers(&[
            ("access-control-allow-origin", "https://a.example"),
            ("access-control-allow-headers", "X-Other, Content-Type"),
            ("access-control-max-age", "600"),
        ]);
        assert_eq!(json_post_preflight(page, 204, &granted), Some(600_000));
        // Not an ok status, another origin, or no `content-type` granted: refused.
        assert_eq!(json_post_preflight(page, 403, &granted), None);
        assert_eq!(
            json_post_preflight("https://b.example", 204, &granted),
            None
        );
        let no_headers = headers(&[("access-control-allow-origin", "https://a.example")]);
        assert_eq!(json_post_preflight(page, 204, &no_headers), None);
        // A wildcard grants it; no max-age is 5 s; Chromium caps a long one at 2 h.
        let wildcard = headers(&[
            ("access-control-allow-origin", "*"),
            ("access-control-allow-headers", "*"),
        ]);
        assert_eq!(json_post_preflight(page, 200, &wildcard), Some(5_000));
        let long = headers(&[
            ("access-control-allow-origin", "https://a.example"),
            ("access-control-allow-headers", "content-type"),
            ("access-control-max-age", "86400"),
        ]);
        assert_eq!(json_post_preflight(page, 204, &long), Some(7_200_000));
    }

    #[test]
    fn keep_alive_pool_counts_idle_connections() {
        let pool = KeepAlive::default();
        assert!(!pool.take());
        pool.put();
        let clone = pool.clone();
        assert!(clone.take());
        assert!(!pool.take());
    }
}
