//! The demo page of `picasso-sim serve` in a real browser (headless Chromium driven by
//! playwright-core; `scripts/install-browser.sh` installs both): a streamed answer,
//! then a network drop mid-stream that the corrected widget turns into the regular
//! answer, with nothing of the partial text left; then the same with
//! `widgets/corrected/widget.js` imported unchanged. A screenshot lands in
//! `target/demo-page.png`.
//!
//! Without the tools the test is skipped, unless `PICASSO_REQUIRE_BROWSER_TESTS=1`.

mod common;

use common::{Served, repo_root};
use std::path::Path;

#[test]
fn demo_page_streams_and_falls_back_in_chromium() {
    let scripts = repo_root().join("tests/browser");
    let missing = if !Path::new("/usr/bin/chromium").exists() {
        Some("/usr/bin/chromium is missing")
    } else if !scripts.join("node_modules/playwright-core").exists() {
        Some("tests/browser/node_modules is missing")
    } else {
        None
    };
    if let Some(missing) = missing {
        assert!(
            std::env::var("PICASSO_REQUIRE_BROWSER_TESTS").as_deref() != Ok("1"),
            "browser test required but {missing}: run scripts/install-browser.sh"
        );
        eprintln!("skipping the demo page test: {missing}");
        return;
    }
    let served = Served::start(&[]);
    let screenshot = repo_root().join("target/demo-page.png");
    let _ = std::fs::remove_file(&screenshot);
    let out = std::process::Command::new("node")
        .arg(scripts.join("demo-page.mjs"))
        .env("DEMO_URL", format!("{}/", served.master_url))
        .env("SCREENSHOT", &screenshot)
        .output()
        .expect("node runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seen: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("the script prints JSON");
    assert_eq!(seen["streamed"], "Hello, how can I help?", "{seen:#}");
    // fv2-m1's text in the default scenario matches no prompt: the default answer.
    assert_eq!(
        seen["fallback"],
        "Thanks for your message. Our team helps foster families with mentoring, supplies and respite care.",
        "{seen:#}"
    );
    let log = seen["log"].as_str().unwrap_or_default();
    assert!(log.contains("armed fault \"network-drop\""), "{log}");
    assert!(
        log.contains("fallback to regular chat (STREAM_005)"),
        "{log}"
    );
    // widgets/corrected/widget.js, as it ships, in the same page: the answer once, then
    // the armed drop turned into the regular answer with nothing of the partial text.
    let js = &seen["js"];
    assert_eq!(js["streamed"], "Hello, how can I help?", "{seen:#}");
    assert_eq!(js["fallback"], seen["fallback"], "{seen:#}");
    assert_eq!(
        js["bots"],
        serde_json::json!([seen["streamed"], seen["fallback"]]),
        "each answer exactly once: {seen:#}"
    );
    let js_log = js["log"].as_str().unwrap_or_default();
    assert!(
        js_log.contains("fallback to regular chat (STREAM_005)"),
        "{js_log}"
    );
    assert_eq!(
        seen["errors"],
        serde_json::json!([]),
        "the page threw: {seen:#}"
    );
    assert!(
        std::fs::metadata(&screenshot)
            .map(|m| m.len() > 10_000)
            .unwrap_or(false),
        "no screenshot"
    );
}
