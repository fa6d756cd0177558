//! The browser's side of a stream, end to end in the simulator: what Chromium's network
//! stack and `EventSource` do that a widget cannot change (`widget-and-determinism.md`
//! §B.2). The parser and model fixes have unit tests beside the code; these check the
//! ones that need the driver.

use picasso_core::parse_scenario;
use picasso_simulator::widget::{Source, Terminal};
use picasso_simulator::{Policy, run_scenario};

const WORLD: &str = r#"
seed = 7
name = "browser-model"

[[tenants]]
hash = "fo85e6a06dcdf4"
name = "Foster Village"
streaming_enabled = true
streaming_percentage = 100
allowed_origins = ["https://fostervillage.org"]

[[answers]]
id = "default"
text = "One two three."
pacing = { first_token_ms = 100, gap_ms = 10 }
"#;

fn scenario(extra: &str) -> picasso_core::Scenario {
    parse_scenario("browser-model.toml", &format!("{WORLD}\n{extra}")).expect("valid scenario")
}

/// The second stream of a session reuses the first one's keep-alive connection; a
/// refusal there is re-sent at once by the network stack: no `error`, no fallback, one
/// GET as far as the page knows, and the answer streams.
#[test]
fn a_refusal_on_a_reused_connection_is_resent_without_an_error() {
    let s = scenario(
        r#"
[[sessions]]
id = "s1"
tenant = "fo85e6a06dcdf4"
  [[sessions.messages]]
  id = "m1"
  text = "Hi"
  [[sessions.messages]]
  id = "m2"
  text = "Again"

[[faults]]
where = "network"
kind = "refuse"
message = "m2"
times = 1
"#,
    );
    let outcome = run_scenario(&s, Policy::Corrected).expect("run");
    assert!(outcome.violations.is_empty(), "{:?}", outcome.violations);
    let (_, m2) = outcome
        .messages()
        .find(|(_, m)| m.id == "m2")
        .expect("m2 sent");
    assert_eq!(m2.terminal, Some(Terminal::Complete(Source::Stream)));
    assert_eq!((m2.gets, m2.posts), (1, 0));
    assert!(
        outcome
            .transcript
            .contains("refused on a reused keep-alive connection; the browser re-sends at once"),
        "{}",
        outcome.transcript
    );
    assert_eq!(outcome.metrics.fallback_triggered, 0);
}

/// The same refusal on the session's first stream (a fresh connection) is an `error`,
/// and the corrected widget falls back.
#[test]
fn a_refusal_on_a_fresh_connection_is_an_error() {
    let s = scenario(
        r#"
[[sessions]]
id = "s1"
tenant = "fo85e6a06dcdf4"
  [[sessions.messages]]
  id = "m1"
  text = "Hi"

[[faults]]
where = "network"
kind = "refuse"
message = "m1"
times = 1
"#,
    );
    let outcome = run_scenario(&s, Policy::Corrected).expect("run");
    let (_, m1) = outcome.messages().next().expect("m1 sent");
    assert_eq!(m1.terminal, Some(Terminal::Complete(Source::Post)));
    assert_eq!(m1.fallback_posts, 1);
}

/// A page on an origin the tenant does not allow: the gateway's 403 carries no
/// `Access-Control-Allow-Origin`, the CORS check fails, and that is fatal for the
/// `EventSource`. Even the naive fix, which ignores transient errors and lets the
/// browser reconnect, sees exactly one GET, and the widget never learns the status.
#[test]
fn a_cors_failure_is_fatal_and_hides_the_status() {
    let s = scenario(
        r#"
[[sessions]]
id = "s1"
tenant = "fo85e6a06dcdf4"
origin = "https://evil.example"
  [[sessions.messages]]
  id = "m1"
  text = "Hi"
"#,
    );
    for policy in [Policy::NaiveFix, Policy::Corrected] {
        let outcome = run_scenario(&s, policy).expect("run");
        assert_eq!(outcome.streams.len(), 1, "{policy}: {}", outcome.transcript);
        assert!(
            outcome.transcript.contains("blocked by CORS: fatal"),
            "{}",
            outcome.transcript
        );
        let widget_lines: Vec<&str> = outcome
            .transcript
            .lines()
            .filter(|l| l.contains("onerror") || l.contains("console.error"))
            .collect();
        assert!(!widget_lines.is_empty());
        for l in widget_lines {
            assert!(
                l.contains("(CLOSED)") && !l.contains("403") && !l.contains("STREAM_002"),
                "{policy}: the widget saw more than a page can: {l}"
            );
        }
    }
}
