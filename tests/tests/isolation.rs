//! Tenant isolation over real loopback HTTP, with the three servers wired as `serve`
//! wires them: the issue's own two requests, then each path where the gateway keeps
//! state (replay, join while streaming, `204`, the rate limit) and the journal query.
//! Two streaming tenants send the same session and message ids; each tenant's answer
//! carries a marker (`ALPHA-A` / `BRAVO-B`) that must never show in the other's bodies.

use picasso_core::parse_scenario;
use picasso_e2e::{Stack, http, read_stream};
use std::time::Duration;

const IDLE: Duration = Duration::from_secs(5);

const TWO_TENANTS: &str = r#"
name = "two-tenants"
seed = 1

[[tenants]]
hash = "tenanta"
name = "Tenant A"
streaming_enabled = true
streaming_percentage = 100
streaming_model = "anthropic.claude-3-haiku-20240307-v1:0"
allowed_origins = ["https://a.example"]

[[tenants]]
hash = "tenantb"
name = "Tenant B"
streaming_enabled = true
streaming_percentage = 100
streaming_model = "anthropic.claude-3-haiku-20240307-v1:0"
allowed_origins = ["https://b.example"]

[[answers]]
id = "a-secret"
prompt = "alpha"
tokens = [
  { text = "ALPHA-A one", delay_ms = 20 },
  { text = " ALPHA-A two", delay_ms = 150 },
  { text = " ALPHA-A three", delay_ms = 150 },
]

[[answers]]
id = "b-answer"
pattern = "."
tokens = [{ text = "BRAVO-B", delay_ms = 10 }]
"#;

async fn stack() -> Stack {
    Stack::start(parse_scenario("<two-tenants>", TWO_TENANTS).unwrap()).await
}

/// Sends a GET and reads the whole body (an event stream to its end, or a refusal).
async fn get(url: &str, headers: &[(&str, &str)]) -> (u16, String) {
    let mut request = http().get(url).header("accept", "text/event-stream");
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    let response = request.send().await.expect("the gateway answers");
    let status = response.status().as_u16();
    let read = read_stream(response, IDLE).await;
    assert!(!read.timed_out, "the body must end");
    (status, read.frames.join("\n\n"))
}

/// The issue's reproduction: tenant B, from its own allowed origin, with tenant A's
/// session, message and a `Last-Event-ID` of A's answer.
#[tokio::test]
async fn tenant_b_replaying_tenant_a_ids_never_gets_a_text() {
    let stack = stack().await;
    let (status, a) = get(&stack.stream_url("tenanta", "s1", "m1", "alpha"), &[]).await;
    assert_eq!(status, 200);
    assert!(a.contains("ALPHA-A three"), "{a}");
    let (status, b) = get(
        &stack.stream_url("tenantb", "s1", "m1", "hello"),
        &[("origin", "https://b.example"), ("last-event-id", "m1:0")],
    )
    .await;
    // B has no kept answer for its m1: nothing to resume, and no Bedrock call.
    assert_eq!(status, 204, "{b}");
    assert!(!b.contains("ALPHA-A"), "{b}");
    // Without the Last-Event-ID, B gets an answer of its own: not a 204 for A's.
    let (status, b) = get(
        &stack.stream_url("tenantb", "s1", "m1", "hello"),
        &[("origin", "https://b.example")],
    )
    .await;
    assert_eq!(status, 200);
    assert!(b.contains("BRAVO-B") && !b.contains("ALPHA-A"), "{b}");
    // And B's resume now replays B's answer, never A's.
    let (status, b) = get(
        &stack.stream_url("tenantb", "s1", "m1", "hello"),
        &[("origin", "https://b.example"), ("last-event-id", "m1:0")],
    )
    .await;
    assert_eq!(status, 200);
    assert!(!b.contains("ALPHA-A"), "{b}");
    assert!(b.contains(r#"{"type": "end"}"#), "{b}");
    stack.stop().await;
}

/// While A's answer streams, B asks with the same ids: B's own Bedrock call, not a
/// join of A's generation.
#[tokio::test]
async fn a_join_while_streaming_stays_within_the_tenant() {
    let stack = stack().await;
    let a_url = stack.stream_url("tenanta", "s1", "m1", "alpha");
    let a = tokio::spawn(async move { get(&a_url, &[]).await });
    assert!(
        stack
            .wait_for_journal(|j| j.iter().any(|e| e.tenant.as_deref() == Some("tenanta")))
            .await
    );
    let (status, b) = get(
        &stack.stream_url("tenantb", "s1", "m1", "hello"),
        &[("origin", "https://b.example")],
    )
    .await;
    assert_eq!(status, 200);
    assert!(b.contains("BRAVO-B") && !b.contains("ALPHA-A"), "{b}");
    let (status, a) = a.await.unwrap();
    assert_eq!(status, 200);
    assert!(a.contains("ALPHA-A three") && !a.contains("BRAVO-B"), "{a}");
    let journal = stack.bedrock.journal();
    assert_eq!(journal.len(), 2, "{journal:?}");
    stack.stop().await;
}

/// A's session at its limit does not limit B's session of the same id.
#[tokio::test]
async fn the_rate_limit_counts_a_session_within_its_tenant() {
    let stack = stack().await;
    let url = stack.stream_url("tenanta", "s1", "m1", "alpha");
    for _ in 0..10 {
        let (status, _) = get(&url, &[]).await;
        assert!(status == 200 || status == 204);
    }
    assert_eq!(get(&url, &[]).await.0, 429);
    let (status, b) = get(
        &stack.stream_url("tenantb", "s1", "m1", "hello"),
        &[("origin", "https://b.example")],
    )
    .await;
    assert_eq!(status, 200);
    assert!(b.contains("BRAVO-B"));
    stack.stop().await;
}

/// Mock Bedrock's journal answers per tenant, session and message over HTTP.
#[tokio::test]
async fn the_journal_is_queried_per_tenant() {
    let stack = stack().await;
    get(&stack.stream_url("tenanta", "s1", "m1", "alpha"), &[]).await;
    get(
        &stack.stream_url("tenantb", "s1", "m1", "hello"),
        &[("origin", "https://b.example")],
    )
    .await;
    let url = format!(
        "{}/__admin/requests?tenant=tenantb&session=s1",
        stack.bedrock.endpoint()
    );
    let body = http().get(&url).send().await.unwrap().text().await.unwrap();
    let entries: serde_json::Value = serde_json::from_str(&body).unwrap();
    let entries = entries.as_array().unwrap();
    assert_eq!(entries.len(), 1, "{body}");
    assert_eq!(entries[0]["tenant"], "tenantb");
    assert_eq!(entries[0]["prompt"], "hello");
    stack.stop().await;
}
