//! Fuzz target: what the Master Function reads from outside — the query of
//! `GET /Master_Function?action=get_config&t=…` and the JSON body of
//! `POST /Master_Function?action=chat`.
//!
//! Inputs are structure-aware: valid requests (known, unknown and malformed tenant
//! hashes; any Unicode in the chat fields), then labelled defects (a field dropped,
//! emptied, of the wrong type, given twice; the body cut short, not JSON, not UTF-8,
//! nested 100,000 deep, with trailing bytes; the wrong action) and harmless changes
//! (unknown extra fields, reordered keys, whitespace, encoded query keys). The label
//! says what `system.md` answers, so the oracle does not re-run the code under test:
//! `400 INVALID_REQUEST` for anything malformed, `404 TENANT_NOT_FOUND` for a well-formed
//! unknown tenant, `200` with the config or the echoed chat answer otherwise, always
//! with the JSON body `{"code", "message"}` on errors. The router is called in-process
//! with `oneshot` under a paused clock, each case within 10 minutes of virtual time.
//!
//! Cases: `PICASSO_FUZZ_CASES` (default 500); `PROPTEST_RNG_SEED` replays a run.

use axum::Router;
use axum::body::Body;
use bedrock_client::{BedrockConfig, Runtime, build_client};
use http::{Request, StatusCode, header};
use mock_master::{MasterOptions, MasterState};
use picasso_core::Scenario;
use proptest::prelude::*;
use serde_json::{Value, json};
use std::cell::RefCell;
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
const FIELDS: [&str; 4] = ["tenant_hash", "user_input", "session_id", "message_id"];
const WORLD_CASES: u32 = 2000;
const BUDGET: Duration = Duration::from_secs(600);

/// The default scenario without its faults: the oracle is about the parsing.
fn scenario() -> Scenario {
    let mut s = Scenario::default_scenario();
    s.faults.clear();
    s
}

fn world() -> Router {
    let bedrock = mock_bedrock::MockState::new(scenario());
    let client = build_client(
        &BedrockConfig::mock("http://bedrock.test"),
        Runtime {
            http_client: Some(bedrock_client::in_process::http_client(mock_bedrock::app(
                bedrock,
            ))),
            ..Runtime::default()
        },
    );
    mock_master::app(MasterState::new(
        scenario(),
        MasterOptions {
            chat_url: "http://master.test/Master_Function?action=chat".into(),
            streaming_url: Some("http://gateway.test/".into()),
            bedrock: client.into(),
        },
    ))
}

thread_local! {
    static RUNTIME: tokio::runtime::Runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("a current-thread runtime");
    static WORLD: RefCell<(u32, Option<Router>)> = const { RefCell::new((0, None)) };
}

/// Calls the Master with `request`; the status, headers and JSON body, within [`BUDGET`].
fn call(request: Request<Body>) -> Result<(http::response::Parts, Value), TestCaseError> {
    let router = WORLD.with(|w| {
        let mut w = w.borrow_mut();
        if w.1.is_none() || w.0 >= WORLD_CASES {
            *w = (0, Some(RUNTIME.with(|rt| rt.block_on(async { world() }))));
        }
        w.0 += 1;
        w.1.clone().expect("built above")
    });
    let answered = RUNTIME.with(|rt| {
        // The timer is made inside the runtime: `timeout` needs its clock.
        rt.block_on(async {
            tokio::time::timeout(BUDGET, async {
                let response = router.oneshot(request).await.unwrap_or_else(|e| match e {});
                let (parts, body) = response.into_parts();
                let bytes = http_body_util::BodyExt::collect(body)
                    .await
                    .map(|c| c.to_bytes());
                (parts, bytes)
            })
            .await
        })
    });
    let (parts, bytes) = answered
        .map_err(|_| TestCaseError::fail("hang: no answer within the virtual-time budget"))?;
    let bytes = bytes.map_err(|e| TestCaseError::fail(format!("the body failed: {e}")))?;
    let value = serde_json::from_slice(&bytes).map_err(|e| {
        TestCaseError::fail(format!(
            "not a JSON body ({e}): {:?}",
            String::from_utf8_lossy(&bytes)
        ))
    })?;
    Ok((parts, value))
}

fn refusal(
    parts: &http::response::Parts,
    body: &Value,
    status: StatusCode,
    code: &str,
) -> Result<(), TestCaseError> {
    prop_assert_eq!(parts.status, status, "{}", body);
    prop_assert_eq!(body["code"].as_str(), Some(code));
    prop_assert!(body["message"].is_string());
    Ok(())
}

/// Which tenant a request names.
#[derive(Debug, Clone)]
enum Tenant {
    Known(&'static str),
    Unknown(String),
    Malformed(String),
}

fn tenant() -> impl Strategy<Value = Tenant> {
    prop_oneof![
        3 => prop::sample::select(vec![FOSTER, AUSTIN]).prop_map(Tenant::Known),
        1 => "[a-z0-9]{1,64}".prop_filter("not a known tenant", |t| t != FOSTER && t != AUSTIN).prop_map(Tenant::Unknown),
        2 => prop_oneof![
            Just(String::new()),
            Just("FO85E6A06DCDF4".to_owned()),
            Just("fo85-e6".to_owned()),
            Just("fo85\u{0}".to_owned()),
            Just("fö85".to_owned()),
            Just("a".repeat(65)),
            Just(" fo85e6a06dcdf4".to_owned()),
            "[^a-z0-9]{1,8}",
        ].prop_map(Tenant::Malformed),
    ]
}

impl Tenant {
    fn hash(&self) -> &str {
        match self {
            Tenant::Known(t) => t,
            Tenant::Unknown(t) | Tenant::Malformed(t) => t,
        }
    }
}

/// Percent-encodes every byte that is not unreserved; `upper` picks the hex case.
fn encode(s: &str, upper: bool) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else if upper {
                format!("%{b:02X}")
            } else {
                format!("%{b:02x}")
            }
        })
        .collect()
}

/// What a request may carry as `Origin`.
fn origin() -> impl Strategy<Value = Option<&'static str>> {
    prop::option::of(prop::sample::select(vec![
        FOSTER_ORIGIN,
        "https://austinangels.com",
        "https://fostervillage.org/",
        "null",
        "https://evil.example",
    ]))
}

/// The allowed origin is echoed only for the tenant it belongs to, never `*`.
fn check_cors(parts: &http::response::Parts, origin: Option<&str>) -> Result<(), TestCaseError> {
    if let Some(echoed) = parts.headers.get(header::ACCESS_CONTROL_ALLOW_ORIGIN) {
        prop_assert_eq!(Some(echoed.to_str().unwrap_or("?")), origin);
        prop_assert!(origin.is_some_and(|o| o != "null"));
    }
    Ok(())
}

/// A defect of a chat body.
#[derive(Debug, Clone)]
enum BodyDefect {
    Drop(usize),
    Empty(usize),
    WrongType(usize, Value),
    DuplicateKey(usize),
    Truncate(usize),
    TrailingGarbage(String),
    NotUtf8(Vec<u8>),
    DeepNesting(usize),
    NotAnObject(Value),
}

fn body_defect() -> impl Strategy<Value = BodyDefect> {
    let wrong = prop_oneof![
        Just(Value::Null),
        Just(json!(1)),
        Just(json!(1.5)),
        Just(json!(true)),
        Just(json!([])),
        Just(json!(["a"])),
        Just(json!({})),
    ];
    prop_oneof![
        (0usize..4).prop_map(BodyDefect::Drop),
        (0usize..4).prop_map(BodyDefect::Empty),
        (0usize..4, wrong).prop_map(|(i, v)| BodyDefect::WrongType(i, v)),
        (0usize..4).prop_map(BodyDefect::DuplicateKey),
        any::<usize>().prop_map(BodyDefect::Truncate),
        prop_oneof![
            Just("x".to_owned()),
            Just("}".to_owned()),
            Just(",".to_owned()),
            Just("{}".to_owned())
        ]
        .prop_map(BodyDefect::TrailingGarbage),
        prop::collection::vec(any::<u8>(), 0..64).prop_map(BodyDefect::NotUtf8),
        prop_oneof![Just(200usize), Just(100_000usize)].prop_map(BodyDefect::DeepNesting),
        prop_oneof![
            Just(json!([])),
            Just(json!("chat")),
            Just(json!(null)),
            Just(json!(42))
        ]
        .prop_map(BodyDefect::NotAnObject),
    ]
}

/// A chat request and what was done to it.
#[derive(Debug, Clone)]
struct Chat {
    tenant: Tenant,
    user_input: String,
    session_id: String,
    message_id: String,
    defect: Option<BodyDefect>,
    extra: Option<(String, Value)>,
    pretty: bool,
    reversed: bool,
    action_ok: bool,
}

fn chat() -> impl Strategy<Value = Chat> {
    (
        tenant(),
        prop_oneof![4 => any::<String>().prop_filter("non-empty", |s| !s.is_empty()), 1 => Just("Hello".to_owned())],
        ".{1,40}",
        ".{1,40}",
        prop::option::weighted(0.5, body_defect()),
        prop::option::of(("[a-z_]{1,10}", prop_oneof![Just(json!(1)), Just(json!("x")), Just(json!({"a": [1]}))])),
        any::<bool>(),
        any::<bool>(),
        prop::bool::weighted(0.9),
    )
        .prop_map(|(tenant, user_input, session_id, message_id, defect, extra, pretty, reversed, action_ok)| Chat {
            tenant,
            user_input,
            session_id,
            message_id,
            defect,
            extra: extra.filter(|(k, _)| !FIELDS.contains(&k.as_str())),
            pretty,
            reversed,
            action_ok,
        })
}

impl Chat {
    fn body(&self) -> Vec<u8> {
        let values = [
            self.tenant.hash().to_owned(),
            self.user_input.clone(),
            self.session_id.clone(),
            self.message_id.clone(),
        ];
        let mut fields: Vec<(String, Value)> = FIELDS
            .iter()
            .zip(values)
            .map(|(k, v)| ((*k).to_owned(), Value::String(v)))
            .collect();
        match &self.defect {
            Some(BodyDefect::Drop(i)) => {
                fields.remove(*i);
            }
            Some(BodyDefect::Empty(i)) => fields[*i].1 = Value::String(String::new()),
            Some(BodyDefect::WrongType(i, v)) => fields[*i].1 = v.clone(),
            _ => {}
        }
        if let Some((k, v)) = &self.extra {
            fields.push((k.clone(), v.clone()));
        }
        if self.reversed {
            fields.reverse();
        }
        let sep = if self.pretty { ",\n  " } else { "," };
        let mut text = String::from("{");
        for (n, (k, v)) in fields.iter().enumerate() {
            if n > 0 {
                text.push_str(sep);
            }
            text.push_str(&format!("{}:{}", Value::String(k.clone()), v));
        }
        if let Some(BodyDefect::DuplicateKey(i)) = &self.defect {
            text.push_str(&format!(",\"{}\":\"again\"", FIELDS[*i]));
        }
        text.push('}');
        if self.pretty {
            text.push_str("\n\t ");
        }
        match &self.defect {
            Some(BodyDefect::Truncate(at)) => {
                // Anywhere before the closing brace (after it is only whitespace).
                let cut = at % text.rfind('}').expect("an object");
                text.as_bytes()[..cut].to_vec()
            }
            Some(BodyDefect::TrailingGarbage(g)) => (text + g).into_bytes(),
            Some(BodyDefect::NotUtf8(bytes)) => {
                let mut b = vec![0xff];
                b.extend_from_slice(bytes);
                b
            }
            Some(BodyDefect::DeepNesting(depth)) => format!(
                "{{\"tenant_hash\":{}{}}}",
                "[".repeat(*depth),
                "]".repeat(*depth)
            )
            .into_bytes(),
            Some(BodyDefect::NotAnObject(v)) => v.to_string().into_bytes(),
            _ => text.into_bytes(),
        }
    }
}

proptest! {
    #![proptest_config(config())]

    /// `get_config`: the config for a known tenant, `404` for a well-formed unknown one,
    /// `400` for a missing or malformed `t` or a wrong action.
    #[test]
    fn get_config_answers_per_contract(
        tenant in prop::option::of(tenant()),
        action in prop_oneof![4 => Just(Some("get_config")), 1 => prop::option::of(prop::sample::select(vec!["chat", "", "GET_CONFIG", "get_config ", "get_configs"]))],
        encoded_keys in any::<bool>(),
        upper in any::<bool>(),
        extras in prop::collection::vec(("[a-z]{1,3}", "[a-zA-Z0-9%]{0,6}"), 0..3),
        origin in origin(),
    ) {
        let key = |k: &str| if encoded_keys { k.replace('_', "%5F").replace('t', "%74") } else { k.to_owned() };
        let mut pairs = Vec::new();
        if let Some(a) = action {
            pairs.push(format!("{}={}", key("action"), encode(a, upper)));
        }
        if let Some(t) = &tenant {
            pairs.push(format!("{}={}", key("t"), encode(t.hash(), upper)));
        }
        for (k, v) in &extras {
            if k != "t" && k != "action" {
                pairs.push(format!("{k}={v}"));
            }
        }
        let mut request = Request::get(format!("/Master_Function?{}", pairs.join("&")));
        if let Some(o) = origin {
            request = request.header(header::ORIGIN, o);
        }
        let (parts, body) = call(request.body(Body::empty()).expect("a valid request"))?;
        match (action, &tenant) {
            (Some("get_config"), Some(Tenant::Known(t))) => {
                prop_assert_eq!(parts.status, StatusCode::OK);
                prop_assert_eq!(body["tenant_hash"].as_str(), Some(*t));
                prop_assert!(body["endpoints"]["chat"].is_string());
                let streams = body["features"]["streaming_enabled"].as_bool();
                prop_assert_eq!(body["endpoints"].get("streaming").is_some(), streams == Some(true));
            }
            (Some("get_config"), Some(Tenant::Unknown(_))) => refusal(&parts, &body, StatusCode::NOT_FOUND, "TENANT_NOT_FOUND")?,
            _ => refusal(&parts, &body, StatusCode::BAD_REQUEST, "INVALID_REQUEST")?,
        }
        check_cors(&parts, origin)?;
    }

    /// `chat`: the echoed answer for a well-formed body of a known tenant, `404` for an
    /// unknown one, `400 INVALID_REQUEST` for every defect.
    #[test]
    fn chat_bodies_answer_per_contract(chat in chat(), origin in origin()) {
        let action = if chat.action_ok { "chat" } else { "get_config" };
        let mut request = Request::post(format!("/Master_Function?action={action}"))
            .header(header::CONTENT_TYPE, "application/json");
        if let Some(o) = origin {
            request = request.header(header::ORIGIN, o);
        }
        let (parts, body) = call(request.body(Body::from(chat.body())).expect("a valid request"))?;
        match (&chat.defect, &chat.tenant, chat.action_ok) {
            (None, Tenant::Known(_), true) => {
                prop_assert_eq!(parts.status, StatusCode::OK, "{}", body);
                prop_assert_eq!(body["message_id"].as_str(), Some(chat.message_id.as_str()));
                prop_assert_eq!(body["session_id"].as_str(), Some(chat.session_id.as_str()));
                prop_assert_eq!(body["type"].as_str(), Some("text"));
                prop_assert!(body["content"].as_str().is_some_and(|c| !c.is_empty()));
            }
            (None, Tenant::Unknown(_), true) => refusal(&parts, &body, StatusCode::NOT_FOUND, "TENANT_NOT_FOUND")?,
            _ => refusal(&parts, &body, StatusCode::BAD_REQUEST, "INVALID_REQUEST")?,
        }
        check_cors(&parts, origin)?;
    }
}

/// The deepest body in the generator, alone: serde_json's depth limit refuses it with
/// a `400`, where an unlimited recursive parse would overflow the stack.
#[test]
fn a_body_nested_100000_deep_is_a_400() {
    let chat = Chat {
        tenant: Tenant::Known(FOSTER),
        user_input: "x".into(),
        session_id: "s".into(),
        message_id: "m".into(),
        defect: Some(BodyDefect::DeepNesting(100_000)),
        extra: None,
        pretty: false,
        reversed: false,
        action_ok: true,
    };
    let request = Request::post("/Master_Function?action=chat")
        .body(Body::from(chat.body()))
        .expect("a valid request");
    let (parts, body) = call(request).expect("an answer");
    assert_eq!(parts.status, StatusCode::BAD_REQUEST);
    assert_eq!(body["code"], "INVALID_REQUEST");
}
