//! The four query parameters of a stream request, checked before anything else.
//!
//! The query is decoded by hand rather than by axum's `Query`: a refusal must carry the
//! contract's JSON body (`STREAM_003`), and invalid UTF-8 after percent-decoding must be
//! told apart from a missing parameter.

use picasso_core::scenario::Limits;
use picasso_core::wire::{is_forbidden_char, is_valid_tenant_hash};
use std::collections::BTreeMap;

/// Longest request target (path and query) the gateway reads; longer gets `414`.
///
/// 4,000 characters of four-byte UTF-8, percent-encoded, take 48,000 bytes: the cap
/// leaves room for that so a valid `user_input` never meets a `414`. It stays under
/// the 65,534 bytes hyper reads, above which hyper itself answers `414` (given the
/// contract's body by [`crate::server::ParseErrorBodies`]).
pub const MAX_URI_BYTES: usize = 56 * 1024;

/// Longest `session_id` or `message_id`, in characters.
pub const MAX_ID_CHARS: usize = 128;

/// A valid stream request's parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamParams {
    /// The tenant hash, 1–64 of `a-z0-9`.
    pub tenant_hash: String,
    /// What the user typed.
    pub user_input: String,
    /// The widget session.
    pub session_id: String,
    /// The message within the session.
    pub message_id: String,
}

/// Why the parameters were refused; the text goes into the `STREAM_003` message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParamError {
    /// A parameter is absent.
    #[error("missing parameter `{0}`")]
    Missing(&'static str),
    /// A parameter is present but empty.
    #[error("empty parameter `{0}`")]
    Empty(&'static str),
    /// A parameter is longer than allowed.
    #[error("parameter `{name}` is longer than {max} characters")]
    TooLong {
        /// The parameter.
        name: &'static str,
        /// Its limit in characters.
        max: usize,
    },
    /// Control characters, a bad tenant hash, a repeated parameter, a broken escape.
    #[error("malformed parameter `{name}`: {why}")]
    Malformed {
        /// The parameter (or `query`).
        name: String,
        /// What is wrong.
        why: &'static str,
    },
}

/// Decodes a query string into its parameters. Invalid UTF-8 (after percent-decoding),
/// a broken `%` escape or a repeated parameter is an error; unknown parameters are kept
/// (and later ignored), so cache-busting extras do no harm.
pub fn parse_query(query: &str) -> Result<BTreeMap<String, String>, ParamError> {
    let mut out = BTreeMap::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let key = decode(key).ok_or(ParamError::Malformed {
            name: "query".into(),
            why: "not UTF-8 or a broken % escape",
        })?;
        let value = decode(value).ok_or_else(|| ParamError::Malformed {
            name: key.clone(),
            why: "not UTF-8 or a broken % escape",
        })?;
        if out.insert(key.clone(), value).is_some() {
            return Err(ParamError::Malformed {
                name: key,
                why: "given more than once",
            });
        }
    }
    Ok(out)
}

/// Checks the four parameters against the contract and the scenario's limits.
pub fn validate(
    mut query: BTreeMap<String, String>,
    limits: &Limits,
) -> Result<StreamParams, ParamError> {
    let mut take = |name: &'static str, max: usize| -> Result<String, ParamError> {
        let value = query.remove(name).ok_or(ParamError::Missing(name))?;
        if value.is_empty() {
            return Err(ParamError::Empty(name));
        }
        if value.chars().count() > max {
            return Err(ParamError::TooLong { name, max });
        }
        if value.chars().any(is_forbidden_char) {
            return Err(ParamError::Malformed {
                name: name.into(),
                why: "control characters other than newline, carriage return and tab",
            });
        }
        Ok(value)
    };
    let tenant_hash = take("tenant_hash", 64)?;
    let user_input = take("user_input", limits.max_input_chars as usize)?;
    let session_id = take("session_id", MAX_ID_CHARS)?;
    let message_id = take("message_id", MAX_ID_CHARS)?;
    // The ids go on the stream's `id: {message_id}:{seq}` line: a line break in one
    // would let a client inject lines (a forged `end` frame) into its own stream.
    for (name, id) in [("session_id", &session_id), ("message_id", &message_id)] {
        if id.contains(['\n', '\r']) {
            return Err(ParamError::Malformed {
                name: name.into(),
                why: "an id is one line: no newline or carriage return",
            });
        }
    }
    if !is_valid_tenant_hash(&tenant_hash) {
        return Err(ParamError::Malformed {
            name: "tenant_hash".into(),
            why: "a tenant hash is 1-64 characters of a-z0-9",
        });
    }
    Ok(StreamParams {
        tenant_hash,
        user_input,
        session_id,
        message_id,
    })
}

/// `application/x-www-form-urlencoded` decoding: `+` is a space, `%XX` a byte.
fn decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                // Exactly two hex digits: `u8::from_str_radix` alone would also take a
                // sign, so `%+A` would decode to a newline instead of being refused.
                let hex = bytes.get(i + 1..i + 3)?;
                if !hex.iter().all(u8::is_ascii_hexdigit) {
                    return None;
                }
                let hex = std::str::from_utf8(hex).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    /// A line break in an id would split the `id:` line of every frame.
    #[test]
    fn ids_are_one_line() {
        let limits = Limits::default();
        for (name, value) in [("session_id", "s%0A1"), ("message_id", "m%0D%0Adata:+x")] {
            let other = if name == "session_id" {
                "message_id=m"
            } else {
                "session_id=s"
            };
            let q = format!("tenant_hash=fo85&user_input=a%0Ab&{name}={value}&{other}");
            let parsed = super::parse_query(&q).expect("decodes");
            assert!(
                matches!(
                    super::validate(parsed, &limits),
                    Err(ParamError::Malformed { .. })
                ),
                "{q}"
            );
        }
        let ok =
            super::parse_query("tenant_hash=fo85&user_input=a%0Ab&session_id=s&message_id=m%09x")
                .unwrap();
        assert!(
            super::validate(ok, &limits).is_ok(),
            "newline in user_input and tab in an id are fine"
        );
    }

    use super::*;

    fn check(query: &str) -> Result<StreamParams, ParamError> {
        validate(parse_query(query)?, &Limits::default())
    }

    const GOOD: &str =
        "tenant_hash=fo85e6a06dcdf4&user_input=Hello%2C+world&session_id=s1&message_id=m1";

    #[test]
    fn a_good_query_decodes() {
        let p = check(GOOD).unwrap();
        assert_eq!(p.user_input, "Hello, world");
        assert_eq!(p.message_id, "m1");
        // Unknown extras are ignored.
        assert!(check(&format!("{GOOD}&_=123")).is_ok());
    }

    #[test]
    fn missing_empty_and_repeated_parameters_are_refused() {
        assert_eq!(
            check("tenant_hash=fo85&session_id=s&message_id=m"),
            Err(ParamError::Missing("user_input"))
        );
        assert_eq!(
            check("tenant_hash=fo85&user_input=&session_id=s&message_id=m"),
            Err(ParamError::Empty("user_input"))
        );
        assert!(matches!(
            check(&format!("{GOOD}&message_id=m2")),
            Err(ParamError::Malformed { .. })
        ));
    }

    #[test]
    fn input_length_counts_characters_not_bytes() {
        let ok = "%C3%A9".repeat(4000); // 4,000 × "é", 8,000 bytes
        let q = format!("tenant_hash=fo85&user_input={ok}&session_id=s&message_id=m");
        assert!(check(&q).is_ok());
        let q = format!("tenant_hash=fo85&user_input={ok}x&session_id=s&message_id=m");
        assert!(matches!(check(&q), Err(ParamError::TooLong { .. })));
    }

    #[test]
    fn control_characters_utf8_and_hash_shape() {
        let with = |input: &str| {
            check(&format!(
                "tenant_hash=fo85&user_input={input}&session_id=s&message_id=m"
            ))
        };
        assert!(
            with("a%0Ab%09c%0D").is_ok(),
            "newline, tab and CR are allowed"
        );
        // `%+A` is not an escape, though `u8::from_str_radix("+A", 16)` is 10 (a newline).
        for bad in [
            "%00", "%1B", "%7F", "%C2%85", "%FF", "%E2%82", "%G1", "%4", "%+A", "%+9", "%+D",
        ] {
            assert!(
                matches!(with(bad), Err(ParamError::Malformed { .. })),
                "{bad}"
            );
        }
        assert!(matches!(
            check("tenant_hash=FO85&user_input=x&session_id=s&message_id=m"),
            Err(ParamError::Malformed { .. })
        ));
    }
}
