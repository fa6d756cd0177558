//! Fuzz target: everything the gateway reads from a request before it streams — the
//! query string (`params.rs`), the `Origin` check and the preflight (`cors.rs`), and the
//! `Last-Event-ID` parse (`picasso_core::wire::parse_event_id`).
//!
//! Inputs are structure-aware: a valid query (known tenant, Unicode input, ids), each
//! value percent-encoded at random (literal, `%XX` in either case, `+` for space), then
//! at most one labelled defect (a missing, empty, over-long, duplicated parameter; a
//! control character, invalid UTF-8, a broken `%` escape, a line break in an id, a bad
//! tenant hash, a URL over the cap) and any number of harmless changes (unknown extra
//! parameters, empty pairs, shuffled order, encoded keys, newline and tab in the input).
//! The label says what the contract (`system.md`) answers, so the oracle does not
//! re-run the code under test:
//! - the pure parse gives exactly the original values, or exactly the defect's variant;
//! - the router, called in-process with `oneshot` under a paused clock, answers `400` /
//!   `414` `STREAM_003`, `403` `STREAM_002` / `ORIGIN_NOT_ALLOWED`, or a stream that
//!   ends with `end` or an error frame (`204` and `429` with `Retry-After` for repeats);
//!   every case runs under a 10-minute budget of virtual time, so a hang fails the case
//!   without any wall-clock timing.
//!
//! Cases: `PICASSO_FUZZ_CASES` (default 500); `PROPTEST_RNG_SEED` replays a run.

use aws_sdk_bedrockruntime::Client;
use axum::Router;
use axum::body::Body;
use bedrock_client::{BedrockConfig, Runtime, build_client};
use futures_util::future::BoxFuture;
use gateway::cors::{self, OriginCheck};
use gateway::params::{MAX_URI_BYTES, ParamError, parse_query, validate};
use gateway::{ConfigError, ConfigSource, GatewayOptions, GatewayState};
use http::{HeaderValue, Request, StatusCode, header};
use picasso_core::Scenario;
use picasso_core::scenario::Limits;
use picasso_core::wire::{StreamFrame, TenantConfig, event_id, parse_event_id};
use proptest::prelude::*;
use std::cell::RefCell;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;
use tower::ServiceExt;

fn cases() -> u32 {
    picasso_core::testing::fuzz_cases(500)
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: cases(),
        ..ProptestConfig::default()
    }
}

const FOSTER: &str = "fo85e6a06dcdf4";
const AUSTIN: &str = "au47d9f8e2c31b";
const FOSTER_ORIGIN: &str = "https://fostervillage.org";
const NAMES: [&str; 4] = ["tenant_hash", "user_input", "session_id", "message_id"];
/// Each parameter's cap in characters (`user_input`'s is the default `limits`).
const MAX_CHARS: [usize; 4] = [64, 4000, 128, 128];
/// A fresh world every this many cases, so kept answers do not pile up in a campaign.
const WORLD_CASES: u32 = 2000;
/// The most a case may take, in virtual time: far above the 30 s stream cap.
const BUDGET: Duration = Duration::from_secs(600);

// ---------------------------------------------------------------------------------
// The world: the gateway and mock Bedrock in-process, tenant configs from the scenario.

#[derive(Debug)]
struct FromScenario(Scenario);

impl ConfigSource for FromScenario {
    fn tenant_config<'a>(
        &'a self,
        tenant_hash: &'a str,
    ) -> BoxFuture<'a, Result<Option<TenantConfig>, ConfigError>> {
        let config = self
            .0
            .tenant(tenant_hash)
            .map(|t| t.config("http://master.test/chat", Some("http://gateway.test/")));
        Box::pin(async move { Ok(config) })
    }
}

/// The default scenario's tenants and answers, without its faults: the oracle is about
/// the checks, and a scripted fault would be a second source of refusals.
fn scenario() -> Scenario {
    let mut s = Scenario::default_scenario();
    s.faults.clear();
    s
}

fn world() -> Router {
    let bedrock = mock_bedrock::MockState::new(scenario());
    let client: Client = build_client(
        &BedrockConfig::mock("http://bedrock.test"),
        Runtime {
            http_client: Some(bedrock_client::in_process::http_client(mock_bedrock::app(
                bedrock,
            ))),
            ..Runtime::default()
        },
    );
    let state = GatewayState::new(
        scenario(),
        GatewayOptions {
            config: Arc::new(FromScenario(scenario())),
            bedrock: client.into(),
        },
    );
    gateway::app(state)
}

thread_local! {
    static RUNTIME: tokio::runtime::Runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("a current-thread runtime");
    static WORLD: RefCell<(u32, Option<Router>)> = const { RefCell::new((0, None)) };
}

/// Calls the router with `request` and reads the whole body, within [`BUDGET`].
fn call(request: Request<Body>) -> Result<(http::response::Parts, Vec<u8>), TestCaseError> {
    let router = WORLD.with(|w| {
        let mut w = w.borrow_mut();
        if w.1.is_none() || w.0 >= WORLD_CASES {
            *w = (0, Some(RUNTIME.with(|rt| rt.block_on(async { world() }))));
        }
        w.0 += 1;
        w.1.clone().expect("built above")
    });
    RUNTIME.with(|rt| {
        rt.block_on(async {
            let answered = tokio::time::timeout(BUDGET, async {
                let response = router.oneshot(request).await.unwrap_or_else(|e| match e {});
                let (parts, body) = response.into_parts();
                // A body error (a cut stream) keeps what came before it.
                let mut bytes = Vec::new();
                let mut body = body.into_data_stream();
                while let Some(Ok(chunk)) = futures_util::StreamExt::next(&mut body).await {
                    bytes.extend_from_slice(&chunk);
                }
                (parts, bytes)
            })
            .await;
            answered
                .map_err(|_| TestCaseError::fail("hang: no answer within the virtual-time budget"))
        })
    })
}

// ---------------------------------------------------------------------------------
// Structure-aware queries.

/// Percent-encodes `s`, choosing per character (from `seed`) among the spellings a
/// client may use: literal when safe, `+` for a space, `%XX` in upper or lower case.
fn encode(s: &str, seed: u64) -> String {
    let mut x = seed | 1;
    let mut out = String::new();
    for c in s.chars() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let literal = c.is_ascii_alphanumeric() || "-._~!$'()*,;:@/?".contains(c);
        if c == ' ' && x.is_multiple_of(2) {
            out.push('+');
        } else if literal && !x.is_multiple_of(3) {
            out.push(c);
        } else {
            for b in c.to_string().bytes() {
                if x & 4 == 0 {
                    let _ = write!(out, "%{b:02X}");
                } else {
                    let _ = write!(out, "%{b:02x}");
                }
            }
        }
    }
    out
}

/// A defect the contract says is a `400 STREAM_003` (or `414`).
#[derive(Debug, Clone)]
enum Defect {
    Missing(usize),
    Empty(usize),
    TooLong(usize, usize),
    Control(usize, char, usize),
    BadUtf8(usize, &'static str),
    BrokenEscape(usize, &'static str),
    Duplicate(usize),
    LineBreak(usize, char, usize),
    BadTenant(String),
    HugeUrl,
}

/// A change that must not make a valid query invalid.
#[derive(Debug, Clone)]
enum Harmless {
    Extra(String, String),
    EmptyPairs(usize),
    Shuffle(u64),
    EncodedKey(usize),
    Whitespace(char, usize),
}

#[derive(Debug, Clone)]
struct Case {
    /// The four values, in [`NAMES`] order.
    values: [String; 4],
    defect: Option<Defect>,
    harmless: Vec<Harmless>,
    seed: u64,
}

fn forbidden_char() -> impl Strategy<Value = char> {
    prop_oneof![
        (0u32..0x20)
            .prop_filter("newline, CR and tab are allowed", |c| !matches!(
                c,
                9 | 10 | 13
            ))
            .prop_map(|c| char::from_u32(c).expect("ASCII")),
        Just('\u{7f}'),
        (0x80u32..0xa0).prop_map(|c| char::from_u32(c).expect("C1")),
    ]
}

fn defect() -> impl Strategy<Value = Defect> {
    prop_oneof![
        (0usize..4).prop_map(Defect::Missing),
        (0usize..4).prop_map(Defect::Empty),
        (0usize..4, 1usize..20).prop_map(|(i, n)| Defect::TooLong(i, n)),
        (0usize..4, forbidden_char(), any::<usize>())
            .prop_map(|(i, c, at)| Defect::Control(i, c, at)),
        (
            0usize..4,
            prop::sample::select(vec![
                "%FF",
                "%C0%80",
                "%E2%82",
                "%ED%A0%80",
                "%F4%90%80%80",
                "%80"
            ])
        )
            .prop_map(|(i, b)| Defect::BadUtf8(i, b)),
        (
            0usize..4,
            prop::sample::select(vec!["%G1", "%4", "%", "%+A", "%-1", "%+0"])
        )
            .prop_map(|(i, b)| Defect::BrokenEscape(i, b)),
        (0usize..4).prop_map(Defect::Duplicate),
        (
            2usize..4,
            prop::sample::select(vec!['\n', '\r']),
            any::<usize>()
        )
            .prop_map(|(i, c, at)| Defect::LineBreak(i, c, at)),
        prop::sample::select(vec![
            "FO85E6A06DCDF4",
            "fo85-e6a0",
            "fo85_e6",
            "fö85",
            "fo85 e6",
            "a.b"
        ])
        .prop_map(|s| Defect::BadTenant(s.to_owned())),
        Just(Defect::HugeUrl),
    ]
}

fn harmless() -> impl Strategy<Value = Harmless> {
    prop_oneof![
        (
            prop::sample::select(vec!["_", "cb", "utm_source", "lang", "tenant", "t"]),
            "[a-zA-Z0-9 é✓]{0,10}"
        )
            .prop_map(|(k, v)| Harmless::Extra(k.to_owned(), v)),
        any::<usize>().prop_map(Harmless::EmptyPairs),
        any::<u64>().prop_map(Harmless::Shuffle),
        (0usize..4).prop_map(Harmless::EncodedKey),
        (prop::sample::select(vec!['\n', '\t', '\r']), any::<usize>())
            .prop_map(|(c, at)| Harmless::Whitespace(c, at)),
    ]
}

fn text(max: usize) -> impl Strategy<Value = String> {
    prop_oneof![
        8 => prop::string::string_regex(&format!("[^\\p{{Cc}}]{{1,{max}}}")).expect("a valid regex"),
        // Near the 4,000-character cap, leaving room for the harmless whitespace.
        1 => Just("é".repeat(3997)),
        1 => Just("✓".repeat(3996) + "x"),
    ]
}

fn case() -> impl Strategy<Value = Case> {
    let tenant = prop_oneof![
        4 => Just(FOSTER.to_owned()),
        1 => Just(AUSTIN.to_owned()),
        1 => "[a-z0-9]{1,64}",
    ];
    let id = prop_oneof![
        2 => "[sm][0-3]",
        1 => prop::string::string_regex("[^\\p{Cc}]{1,128}").expect("a valid regex"),
    ];
    (
        tenant,
        text(60),
        id.clone(),
        id,
        prop::option::weighted(0.6, defect()),
        prop::collection::vec(harmless(), 0..4),
        any::<u64>(),
    )
        .prop_map(
            |(t, input, session, message, defect, harmless, seed)| Case {
                values: [t, input, session, message],
                defect,
                harmless,
                seed,
            },
        )
}

/// At most 300 characters of `s`, for failure messages.
fn short(s: &str) -> String {
    s.chars().take(300).collect()
}

fn insert_at(s: &mut String, at: usize, c: char) {
    let n = s.chars().count();
    let i = s
        .char_indices()
        .nth(at % (n + 1))
        .map_or(s.len(), |(i, _)| i);
    s.insert(i, c);
}

impl Case {
    /// The query string and, for a valid one, the values the gateway must read.
    fn query(&self) -> String {
        let mut values: Vec<Option<String>> = self.values.iter().cloned().map(Some).collect();
        let mut suffix: [&str; 4] = [""; 4];
        let mut duplicate = None;
        for h in &self.harmless {
            if let Harmless::Whitespace(c, at) = h
                && let Some(v) = &mut values[1]
            {
                insert_at(v, *at, *c);
            }
        }
        match &self.defect {
            Some(Defect::Missing(i)) => values[*i] = None,
            Some(Defect::Empty(i)) => values[*i] = Some(String::new()),
            Some(Defect::TooLong(i, n)) => {
                values[*i] = Some("a".repeat(MAX_CHARS[*i] + n));
            }
            Some(Defect::Control(i, c, at)) => {
                if let Some(v) = &mut values[*i] {
                    insert_at(v, *at, *c);
                }
            }
            Some(Defect::BadUtf8(i, b) | Defect::BrokenEscape(i, b)) => suffix[*i] = b,
            Some(Defect::Duplicate(i)) => duplicate = Some(*i),
            Some(Defect::LineBreak(i, c, at)) => {
                if let Some(v) = &mut values[*i] {
                    insert_at(v, *at, *c);
                }
            }
            Some(Defect::BadTenant(t)) => values[0] = Some(t.clone()),
            Some(Defect::HugeUrl) => values[1] = Some("a".repeat(MAX_URI_BYTES)),
            None => {}
        }
        let mut pairs: Vec<String> = Vec::new();
        for (i, v) in values.iter().enumerate() {
            let Some(v) = v else { continue };
            let encoded_key = self
                .harmless
                .iter()
                .any(|h| matches!(h, Harmless::EncodedKey(k) if *k == i));
            let key = if encoded_key {
                NAMES[i].replace('_', "%5F")
            } else {
                NAMES[i].to_owned()
            };
            // The over-long URL stays literal: encoded, it could pass the 64 KiB
            // that `http::Uri` itself takes, and never reach the gateway.
            let encoded = if matches!(self.defect, Some(Defect::HugeUrl)) && i == 1 {
                v.clone()
            } else {
                encode(v, self.seed ^ i as u64)
            };
            pairs.push(format!("{key}={encoded}{}", suffix[i]));
            if duplicate == Some(i) {
                pairs.push(format!("{key}={}", encode(v, !self.seed)));
            }
        }
        for h in &self.harmless {
            match h {
                // A repeated parameter, even an unknown one, is malformed: one each.
                Harmless::Extra(k, v) if !pairs.iter().any(|p| p.starts_with(&format!("{k}="))) => {
                    pairs.push(format!("{k}={}", encode(v, self.seed)));
                }
                Harmless::Shuffle(s) => {
                    let n = pairs.len();
                    if n > 1 {
                        pairs.swap((*s as usize) % n, (*s as usize >> 8) % n);
                    }
                }
                Harmless::EmptyPairs(at) => {
                    let n = pairs.len();
                    pairs.insert(at % (n + 1), String::new());
                }
                _ => {}
            }
        }
        pairs.join("&")
    }

    /// The values the gateway must read when there is no defect.
    fn expected_values(&self) -> [String; 4] {
        let mut v = self.values.clone();
        for h in &self.harmless {
            if let Harmless::Whitespace(c, at) = h {
                insert_at(&mut v[1], *at, *c);
            }
        }
        v
    }

    /// Whether the parse must give exactly this error (checked for a lone defect).
    fn matches(&self, err: &ParamError) -> bool {
        let name = |i: usize| NAMES[i];
        let malformed =
            |e: &ParamError, n: &str| matches!(e, ParamError::Malformed { name, .. } if name == n);
        match &self.defect {
            None => false,
            Some(Defect::Missing(i)) => *err == ParamError::Missing(name(*i)),
            Some(Defect::Empty(i)) => *err == ParamError::Empty(name(*i)),
            Some(Defect::TooLong(i, _)) => {
                matches!(err, ParamError::TooLong { name: n, .. } if *n == name(*i))
            }
            Some(Defect::HugeUrl) => matches!(
                err,
                ParamError::TooLong {
                    name: "user_input",
                    ..
                }
            ),
            // A character inserted into a value already at its cap makes it too long
            // first: the length is checked before the characters (both are `400`).
            Some(Defect::Control(i, ..) | Defect::LineBreak(i, ..))
                if self.expected_values()[*i].chars().count() + 1 > MAX_CHARS[*i] =>
            {
                matches!(err, ParamError::TooLong { name: n, .. } if *n == name(*i))
            }
            Some(Defect::Control(i, ..) | Defect::BadUtf8(i, _) | Defect::BrokenEscape(i, _))
            | Some(Defect::Duplicate(i) | Defect::LineBreak(i, ..)) => malformed(err, name(*i)),
            Some(Defect::BadTenant(_)) => malformed(err, "tenant_hash"),
        }
    }
}

// ---------------------------------------------------------------------------------
// Checking the router's answers.

fn json_code(body: &[u8]) -> Result<String, TestCaseError> {
    let value: serde_json::Value = serde_json::from_slice(body)
        .map_err(|e| TestCaseError::fail(format!("a refusal without a JSON body: {e}")))?;
    prop_assert!(value["message"].is_string(), "no message in {value}");
    Ok(value["code"].as_str().unwrap_or_default().to_owned())
}

/// A `200` stream: `id: {message}:{seq}` on every frame, text frames, then one `end` or
/// error frame and nothing after it (a heartbeat comment may come anywhere).
fn check_stream(body: &[u8], message_id: &str, resumed: bool) -> Result<(), TestCaseError> {
    let text = std::str::from_utf8(body).map_err(|_| TestCaseError::fail("non-UTF-8 stream"))?;
    let mut ended = false;
    let mut last_seq: Option<u64> = None;
    for block in text.split_terminator("\n\n") {
        if block.starts_with(':') {
            continue;
        }
        prop_assert!(!ended, "a frame after the last one: {text:?}");
        let mut lines = block.lines();
        let id = lines
            .next()
            .and_then(|l| l.strip_prefix("id: "))
            .unwrap_or_default();
        let data = lines
            .next()
            .and_then(|l| l.strip_prefix("data: "))
            .unwrap_or_default();
        prop_assert!(lines.next().is_none(), "three lines in a frame: {block:?}");
        let (message, seq) = parse_event_id(id)
            .ok_or_else(|| TestCaseError::fail(format!("bad id line in {block:?}")))?;
        prop_assert_eq!(message, message_id);
        if let Some(last) = last_seq {
            prop_assert_eq!(seq, last + 1);
        } else if !resumed {
            prop_assert_eq!(seq, 0);
        }
        last_seq = Some(seq);
        match StreamFrame::parse(data) {
            Some(StreamFrame::Text(_)) => {}
            Some(StreamFrame::End) => ended = true,
            Some(StreamFrame::Error { code, .. }) => {
                prop_assert!(code.starts_with("STREAM_00"), "{code}");
                ended = true;
            }
            None => return Err(TestCaseError::fail(format!("not a frame: {data:?}"))),
        }
    }
    prop_assert!(ended, "the stream ended without end or error: {text:?}");
    Ok(())
}

/// The origin a request carries, and whether the contract counts it as the tenant's.
#[derive(Debug, Clone)]
enum OriginCase {
    None,
    Tenant,
    Other(String),
}

fn origin_case() -> impl Strategy<Value = OriginCase> {
    prop_oneof![
        3 => Just(OriginCase::None),
        2 => Just(OriginCase::Tenant),
        2 => origin_mutation().prop_map(OriginCase::Other),
    ]
}

/// Near misses of the allowed origin, and `null` and `*`.
fn origin_mutation() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("null".to_owned()),
        Just("*".to_owned()),
        Just(format!("{FOSTER_ORIGIN}/")),
        Just(FOSTER_ORIGIN.to_uppercase()),
        Just(FOSTER_ORIGIN.replace("https", "http")),
        Just(format!("{FOSTER_ORIGIN}:443")),
        Just(format!(" {FOSTER_ORIGIN}")),
        Just("https://evil.fostervillage.org".to_owned()),
        (0usize..FOSTER_ORIGIN.len(), "[ -~]").prop_map(|(i, c)| {
            let mut o = FOSTER_ORIGIN.to_owned();
            o.replace_range(i..=i, &c);
            o
        }),
    ]
    .prop_filter("a real change", |o| o != FOSTER_ORIGIN)
}

proptest! {
    #![proptest_config(config())]

    /// The pure parse: a valid query gives back exactly the values encoded into it; a
    /// query with one defect gives exactly that defect's error.
    #[test]
    fn query_parse_reads_values_or_names_the_defect(case in case()) {
        let query = case.query();
        let parsed = parse_query(&query).and_then(|q| validate(q, &Limits::default()));
        match (&case.defect, parsed) {
            (None, Ok(p)) => {
                let v = case.expected_values();
                prop_assert_eq!([p.tenant_hash, p.user_input, p.session_id, p.message_id], v);
            }
            (None, Err(e)) => return Err(TestCaseError::fail(format!("valid query refused: {e}: {query:?}"))),
            (Some(d), Ok(_)) => return Err(TestCaseError::fail(format!("defect {d:?} accepted: {query:?}"))),
            (Some(_), Err(e)) => prop_assert!(case.matches(&e), "wrong error {:?} for {:?}", e, case.defect),
        }
    }

    /// Through the router: the contract's status and code for every case, in its order
    /// (parameters, then origin and tenant, then the rate limit), and a well-formed stream.
    #[test]
    fn stream_requests_get_the_contracts_answer(case in case(), origin in origin_case(), resume in prop::option::of(0u64..8)) {
        let query = case.query();
        let mut request = Request::get(format!("/?{query}")).header("accept", "text/event-stream");
        match &origin {
            OriginCase::None => {}
            OriginCase::Tenant => request = request.header(header::ORIGIN, FOSTER_ORIGIN),
            OriginCase::Other(o) => request = request.header(header::ORIGIN, o.as_str()),
        }
        let [tenant, _, _, message] = case.expected_values();
        if let Some(seq) = resume {
            request = request.header("last-event-id", event_id(&message, seq));
        }
        let target_len = query.len() + 2;
        let Ok(request) = request.body(Body::empty()) else {
            // Over the 65,534 bytes `http::Uri` takes: hyper answers that itself.
            prop_assert!(target_len > 65_000, "the generator made an invalid URI: {:?}", short(&query));
            return Ok(());
        };
        let (parts, body) = call(request)?;
        let status = parts.status;
        let refusal = |want: StatusCode, code: &str| -> Result<(), TestCaseError> {
            prop_assert_eq!(status, want, "{:?} for {:?}", String::from_utf8_lossy(&body), case);
            prop_assert_eq!(json_code(&body)?, code);
            Ok(())
        };
        let origin_ok = match &origin {
            OriginCase::None => true,
            OriginCase::Tenant => tenant == FOSTER,
            OriginCase::Other(_) => false,
        };
        match &case.defect {
            _ if target_len > MAX_URI_BYTES => refusal(StatusCode::URI_TOO_LONG, "STREAM_003")?,
            Some(Defect::HugeUrl) => return Err(TestCaseError::fail("the huge URL is not huge")),
            Some(_) => refusal(StatusCode::BAD_REQUEST, "STREAM_003")?,
            None if tenant != FOSTER && tenant != AUSTIN => refusal(StatusCode::FORBIDDEN, "STREAM_002")?,
            None if !origin_ok => refusal(StatusCode::FORBIDDEN, "ORIGIN_NOT_ALLOWED")?,
            None if tenant == AUSTIN => refusal(StatusCode::FORBIDDEN, "STREAM_002")?,
            None => match status {
                StatusCode::OK => {
                    prop_assert_eq!(&parts.headers[header::CONTENT_TYPE], "text/event-stream");
                    check_stream(&body, &message, resume.is_some())?;
                }
                StatusCode::NO_CONTENT => prop_assert!(body.is_empty()),
                StatusCode::TOO_MANY_REQUESTS => {
                    prop_assert!(parts.headers.contains_key(header::RETRY_AFTER));
                    prop_assert_eq!(json_code(&body)?, "RATE_LIMITED");
                }
                other => return Err(TestCaseError::fail(format!("{other} for a valid request {case:?}"))),
            },
        }
        // CORS: the allowed origin is echoed once the origin is known to be the
        // tenant's; no other origin ever is, and never `*`.
        let echoed = parts.headers.get(header::ACCESS_CONTROL_ALLOW_ORIGIN);
        if let Some(echoed) = echoed {
            prop_assert_eq!(echoed, FOSTER_ORIGIN);
            prop_assert!(matches!(origin, OriginCase::Tenant));
        }
    }

    /// The preflight: `204` with the CORS headers exactly for a known tenant's own
    /// origin asking for `GET` and the stream's headers; `403 ORIGIN_NOT_ALLOWED` else.
    #[test]
    fn preflights_are_answered_for_the_tenants_origin_only(
        tenant in prop_oneof![Just(FOSTER.to_owned()), Just(AUSTIN.to_owned()), "[a-z0-9]{1,64}", "[A-Z%+-]{1,8}"],
        origin in origin_case(),
        method in prop::option::of(prop::sample::select(vec!["GET", "HEAD", "POST", "get", "GET ", "PUT"])),
        headers in prop::collection::vec(prop::sample::select(vec![
            "accept", "Cache-Control", " last-event-id ", "LAST-EVENT-ID", "", "x-custom", "content-type", "authorization",
        ]), 0..4),
        extra in "(&[a-z_]{1,5}=[a-z0-9]{0,5}){0,2}",
    ) {
        let mut request = Request::options(format!("/?tenant_hash={tenant}{extra}"));
        let origin_ok = match &origin {
            OriginCase::None => false,
            OriginCase::Tenant => {
                request = request.header(header::ORIGIN, FOSTER_ORIGIN);
                tenant == FOSTER
            }
            OriginCase::Other(o) => {
                request = request.header(header::ORIGIN, o.as_str());
                false
            }
        };
        if let Some(m) = method {
            request = request.header(header::ACCESS_CONTROL_REQUEST_METHOD, m);
        }
        if !headers.is_empty() {
            request = request.header(header::ACCESS_CONTROL_REQUEST_HEADERS, headers.join(","));
        }
        let Ok(request) = request.body(Body::empty()) else {
            return Ok(()); // not a URI: hyper refuses it before any handler
        };
        let (parts, body) = call(request)?;
        let headers_ok = headers.iter().all(|h| {
            let h = h.trim().to_ascii_lowercase();
            h.is_empty() || cors::ALLOWED_REQUEST_HEADERS.contains(&h.as_str())
        });
        // A repeated parameter, even an unknown one, makes the whole query malformed:
        // then no tenant is read, and no origin can be the tenant's.
        let keys: Vec<&str> = extra.split('&').filter(|p| !p.is_empty()).map(|p| p.split('=').next().unwrap_or(p)).collect();
        let repeated = keys.iter().enumerate().any(|(i, k)| *k == "tenant_hash" || keys[..i].contains(k));
        if origin_ok && method == Some("GET") && headers_ok && !repeated {
            prop_assert_eq!(parts.status, StatusCode::NO_CONTENT);
            prop_assert_eq!(&parts.headers[header::ACCESS_CONTROL_ALLOW_ORIGIN], FOSTER_ORIGIN);
            prop_assert_eq!(&parts.headers[header::ACCESS_CONTROL_ALLOW_METHODS], "GET");
        } else {
            prop_assert_eq!(parts.status, StatusCode::FORBIDDEN);
            prop_assert_eq!(json_code(&body)?, "ORIGIN_NOT_ALLOWED");
            prop_assert!(!parts.headers.contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN));
        }
    }

    /// Any printable query at all: no panic, and the router's status agrees with the
    /// parse (a `400` exactly when the parse refuses it).
    #[test]
    fn arbitrary_queries_never_panic(query in "[!-~&&[^#]]{0,80}") {
        let Ok(request) = Request::get(format!("/?{query}")).body(Body::empty()) else {
            return Ok(()); // not a URI: hyper refuses it before any handler
        };
        let refused = parse_query(&query).and_then(|q| validate(q, &Limits::default())).is_err();
        let (parts, body) = call(request)?;
        if refused {
            prop_assert_eq!(parts.status, StatusCode::BAD_REQUEST);
            prop_assert_eq!(json_code(&body)?, "STREAM_003");
        } else {
            prop_assert_ne!(parts.status, StatusCode::BAD_REQUEST);
        }
    }

    /// `Last-Event-ID`: what the gateway writes reads back, and anything that reads
    /// back is spelled exactly as the gateway would write it.
    #[test]
    fn event_ids_round_trip(message in ".{0,40}", seq in any::<u64>(), junk in "[0-9a-z:+ -]{0,24}") {
        let id = event_id(&message, seq);
        prop_assert_eq!(parse_event_id(&id), Some((message.as_str(), seq)));
        if let Some((m, s)) = parse_event_id(&junk) {
            prop_assert_eq!(event_id(m, s), junk);
        }
    }

    /// The origin check: allowed exactly for a byte-equal member of the list, and
    /// never for `null`; a header that is not visible ASCII is refused, not a panic.
    #[test]
    fn origins_match_exactly(other in origin_mutation(), raw in prop::collection::vec(any::<u8>(), 0..40)) {
        let config = scenario().tenant(FOSTER).expect("Foster Village").config("c", None);
        let check = |o: &HeaderValue| cors::check(Some(o), &config);
        prop_assert_eq!(
            check(&HeaderValue::from_static(FOSTER_ORIGIN)),
            OriginCheck::Allowed(FOSTER_ORIGIN.into())
        );
        if let Ok(v) = HeaderValue::from_str(&other) {
            prop_assert_eq!(check(&v), OriginCheck::Refused);
        }
        if let Ok(v) = HeaderValue::from_bytes(&raw) {
            let want = if raw == FOSTER_ORIGIN.as_bytes() {
                OriginCheck::Allowed(FOSTER_ORIGIN.into())
            } else {
                OriginCheck::Refused
            };
            prop_assert_eq!(check(&v), want);
        }
    }
}
