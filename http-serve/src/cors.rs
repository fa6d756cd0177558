//! CORS mechanics both servers share: an exact origin match (never `*`, never `null`),
//! the headers of an answer and of an accepted preflight. Which origins, methods and
//! request headers are allowed is each server's policy (the gateway's `cors` module, the
//! Master's routes); how they go on the wire is written once, here.

use axum::http::header::{self, HeaderMap, HeaderValue};

/// What the origin check decided for one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OriginCheck {
    /// No `Origin` header: not a cross-origin browser request (curl, a server).
    NoOrigin,
    /// The origin is one of the allowed ones; echo it back.
    Allowed(String),
    /// Any other origin, `null` included.
    Refused,
}

impl OriginCheck {
    /// The origin to echo in `Access-Control-Allow-Origin`, if any.
    pub fn allowed(&self) -> Option<&str> {
        match self {
            OriginCheck::Allowed(o) => Some(o),
            _ => None,
        }
    }
}

/// Exact, case-sensitive match of a request's `Origin` against `allowed`; `null` (a
/// sandboxed or file page) never matches.
pub fn check<'a>(
    origin: Option<&HeaderValue>,
    allowed: impl IntoIterator<Item = &'a str>,
) -> OriginCheck {
    let Some(origin) = origin else {
        return OriginCheck::NoOrigin;
    };
    match origin.to_str() {
        Ok(o) if o != "null" && allowed.into_iter().any(|a| a == o) => {
            OriginCheck::Allowed(o.to_owned())
        }
        _ => OriginCheck::Refused,
    }
}

/// Adds the CORS answer to a response: always `Vary: Origin` (the answer depends on
/// it, so no cache may mix origins), and the echoed origin when it is allowed.
pub fn apply(headers: &mut HeaderMap, allowed: Option<&str>) {
    headers.append(header::VARY, HeaderValue::from_static("origin"));
    if let Some(value) = allowed.and_then(|o| HeaderValue::from_str(o).ok()) {
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, value);
    }
}

/// What an accepted preflight grants.
#[derive(Debug, Clone, Copy)]
pub struct Preflight {
    /// `Access-Control-Allow-Methods`.
    pub methods: &'static str,
    /// `Access-Control-Allow-Headers`.
    pub headers: &'static str,
    /// `Access-Control-Max-Age`, seconds.
    pub max_age_s: u32,
}

/// The headers of an accepted preflight (besides those of [`apply`]).
pub fn apply_preflight(headers: &mut HeaderMap, grant: &Preflight) {
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static(grant.methods),
    );
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static(grant.headers),
    );
    headers.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from(grant.max_age_s),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_match_exactly_and_never_null() {
        let allowed = ["https://a.example", "null"];
        let v = |s: &str| HeaderValue::from_str(s).unwrap();
        assert_eq!(check(None, allowed), OriginCheck::NoOrigin);
        assert_eq!(
            check(Some(&v("https://a.example")), allowed),
            OriginCheck::Allowed("https://a.example".into())
        );
        for refused in ["https://A.example", "https://a.example/", "null", "*"] {
            assert_eq!(
                check(Some(&v(refused)), allowed),
                OriginCheck::Refused,
                "{refused}"
            );
        }
        let mut h = HeaderMap::new();
        apply(&mut h, Some("https://a.example"));
        apply_preflight(
            &mut h,
            &Preflight {
                methods: "GET",
                headers: "accept",
                max_age_s: 600,
            },
        );
        assert_eq!(h[header::ACCESS_CONTROL_ALLOW_ORIGIN], "https://a.example");
        assert_eq!(h[header::VARY], "origin");
        assert_eq!(h[header::ACCESS_CONTROL_MAX_AGE], "600");
    }
}
