//! boto3 and the JavaScript v3 SDK (HTTP/2 and HTTP/1.1) against the mock, through
//! the scripts in `tests/sdk/`, installed by `scripts/install-sdk-tests.sh`.
//!
//! Without the installs these tests say so and pass, unless
//! `PICASSO_REQUIRE_SDK_TESTS=1`, which makes a missing install a failure (CI sets it).

use crate::support::*;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::process::Command;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("mock-bedrock sits in the workspace")
        .to_path_buf()
}

fn script_json() -> String {
    serde_json::json!({"model": MODEL, "prompt": PROMPT, "tokens": TOKENS}).to_string()
}

/// Whether the SDK's install is there; when it is not, fails or skips as the
/// environment asks.
fn installed(what: &str, path: &Path) -> bool {
    if path.exists() {
        return true;
    }
    let required = std::env::var("PICASSO_REQUIRE_SDK_TESTS").is_ok_and(|v| v == "1");
    assert!(
        !required,
        "{what} is not installed at {} and PICASSO_REQUIRE_SDK_TESTS=1: run scripts/install-sdk-tests.sh",
        path.display()
    );
    eprintln!("skipped: {what} not installed (run scripts/install-sdk-tests.sh)");
    false
}

/// Runs one SDK script against a fresh mock and fails with its output if it failed.
async fn run_script(program: &Path, script: &Path, extra: &[&str]) {
    let mock = start().await;
    let endpoint = mock.endpoint();
    let mut command = Command::new(program);
    command
        .arg(script)
        .arg(&endpoint)
        .arg(script_json())
        .args(extra)
        .env_remove("AWS_BEARER_TOKEN_BEDROCK")
        .env_remove("AWS_PROFILE")
        .kill_on_drop(true);
    let output = tokio::time::timeout(Duration::from_secs(120), command.output())
        .await
        .expect("the SDK script finishes within 2 minutes")
        .expect("the SDK script starts");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}");
    assert!(
        output.status.success(),
        "{} {extra:?} failed:\n{stdout}\n{stderr}\njournal: {:#?}",
        script.display(),
        mock.journal()
    );
}

/// boto3: every operation, typed errors, retries, stream errors, CRC, drop.
#[tokio::test]
async fn boto3() {
    let python = workspace().join(".venv/bin/python");
    if !installed("boto3 (.venv)", &python) {
        return;
    }
    let script = workspace().join("tests/sdk/python/check_mock_bedrock.py");
    run_script(&python, &script, &[]).await;
}

fn js_installed() -> Option<PathBuf> {
    let js = workspace().join("tests/sdk/js");
    installed(
        "@aws-sdk/client-bedrock-runtime (tests/sdk/js/node_modules)",
        &js.join("node_modules/@aws-sdk/client-bedrock-runtime"),
    )
    .then(|| js.join("check_mock_bedrock.mjs"))
}

/// The JavaScript v3 SDK over its default transport, h2c with prior knowledge.
#[tokio::test]
async fn javascript_over_http2() {
    let Some(script) = js_installed() else { return };
    run_script(Path::new("node"), &script, &["http2"]).await;
}

/// The JavaScript v3 SDK over HTTP/1.1 (`NodeHttpHandler`).
#[tokio::test]
async fn javascript_over_http1() {
    let Some(script) = js_installed() else { return };
    run_script(Path::new("node"), &script, &["http1"]).await;
}
