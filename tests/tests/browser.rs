//! A real `EventSource` in headless Chromium (Debian's `chromium`, driven by
//! playwright-core; `scripts/install-browser.sh` installs both).
//!
//! A page served from a loopback origin listed in Foster Village's `allowed_origins`
//! opens the stream and gets the whole answer exactly once: after `end` the stream
//! closes, Chromium reconnects 3 s later on its own, the gateway answers `204`, and
//! the EventSource closes for good; Bedrock is called once. A page on another origin
//! is blocked by CORS and never reaches Bedrock.
//!
//! Without the tools the test is skipped, unless `PICASSO_REQUIRE_BROWSER_TESTS=1`.

use axum::Router;
use axum::response::Html;
use axum::routing::get;
use picasso_core::Scenario;
use picasso_e2e::{FOSTER, Stack};
use std::path::{Path, PathBuf};
use tokio::net::TcpListener;

fn tools_present(script_dir: &Path) -> Result<(), String> {
    if !Path::new("/usr/bin/chromium").exists() {
        return Err("/usr/bin/chromium is missing".into());
    }
    if !script_dir.join("node_modules/playwright-core").exists() {
        return Err("tests/browser/node_modules is missing (npm ci)".into());
    }
    if std::process::Command::new("node")
        .arg("--version")
        .output()
        .is_err()
    {
        return Err("node is missing".into());
    }
    Ok(())
}

/// Serves a blank page on `127.0.0.1:0`; returns its origin.
async fn page_server() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let origin = format!("http://{}", listener.local_addr().expect("addr"));
    let app = Router::new().route(
        "/",
        get(|| async { Html("<!doctype html><title>widget page</title><p>widget") }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    origin
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eventsource_in_chromium_gets_the_answer_once_and_cors_blocks_others() {
    let script_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("browser");
    if let Err(missing) = tools_present(&script_dir) {
        if std::env::var("PICASSO_REQUIRE_BROWSER_TESTS").as_deref() == Ok("1") {
            panic!("browser test required but {missing}: run scripts/install-browser.sh");
        }
        eprintln!("skipping the browser test: {missing} (scripts/install-browser.sh)");
        return;
    }
    let allowed = page_server().await;
    let other = page_server().await;
    let mut scenario = Scenario::default_scenario();
    for tenant in &mut scenario.tenants {
        if tenant.hash == FOSTER {
            tenant.allowed_origins.push(allowed.clone());
        }
    }
    let stack = Stack::start(scenario).await;
    let stream_url = stack.stream_url(FOSTER, "browser-s1", "browser-m1", "Hello");
    let other_url = stack.stream_url(FOSTER, "browser-s2", "browser-m2", "Hello");

    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new("node")
            .arg(script_dir.join("eventsource.mjs"))
            .env("GATEWAY_STREAM_URL", stream_url)
            .env("GATEWAY_OTHER_URL", other_url)
            .env("ALLOWED_PAGE", format!("{allowed}/"))
            .env("OTHER_PAGE", format!("{other}/"))
            .output()
            .expect("run node")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "node failed: {}\n{stdout}",
        String::from_utf8_lossy(&output.stderr)
    );
    let seen: serde_json::Value = serde_json::from_str(stdout.trim()).expect(&stdout);
    eprintln!("{seen:#}");

    let allowed = &seen["allowed"];
    let messages: Vec<&str> = allowed["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.as_str().unwrap())
        .collect();
    assert_eq!(
        messages,
        [
            r#"{"content": "Hello", "type": "text"}"#,
            r#"{"content": ", how", "type": "text"}"#,
            r#"{"content": " can I", "type": "text"}"#,
            r#"{"content": " help?", "type": "text"}"#,
            r#"{"type": "end"}"#,
        ],
        "the whole answer, exactly once"
    );
    assert_eq!(allowed["ids"][4], "browser-m1:4");
    assert_eq!(allowed["finalState"], 2, "CLOSED: the reconnect got 204");
    assert_eq!(allowed["opens"], 1, "one 200 stream, no second");

    let other = &seen["other"];
    assert!(other["messages"].as_array().unwrap().is_empty());
    assert_eq!(other["opens"], 0);
    assert_eq!(other["finalState"], 2);
    assert!(
        other["fetch"].as_str().unwrap().starts_with("blocked"),
        "{other}"
    );

    let journal = stack.bedrock.journal();
    assert_eq!(
        journal.len(),
        1,
        "one Bedrock call, for the allowed page: {journal:?}"
    );
    assert_eq!(journal[0].message.as_deref(), Some("browser-m1"));
    stack.stop().await;
}
