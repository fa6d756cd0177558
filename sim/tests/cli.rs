//! End-to-end tests of the `picasso-sim` binary: each subcommand as a user runs it,
//! checking output and exit codes (0 good, 1 a check failed, 2 a usage or input error).

mod common;

use common::{Served, http, http_get};
use std::path::PathBuf;
use std::process::{Command, Output};

fn picasso_sim(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_picasso-sim"))
        .args(args)
        .current_dir(repo_root())
        .output()
        .expect("the binary runs")
}

fn repo_root() -> PathBuf {
    common::repo_root()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `validate` accepts every shipped scenario and exits 0.
#[test]
fn validate_accepts_the_examples() {
    let mut files: Vec<String> = std::fs::read_dir(repo_root().join("scenarios"))
        .unwrap()
        .map(|e| format!("scenarios/{}", e.unwrap().file_name().to_string_lossy()))
        .collect();
    files.sort();
    let args: Vec<&str> = std::iter::once("validate")
        .chain(files.iter().map(String::as_str))
        .collect();
    let out = picasso_sim(&args);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout)
            .lines()
            .filter(|l| l.starts_with("ok  "))
            .count(),
        files.len()
    );
}

/// A broken file: exit 1, and the message names file, line, column and field.
#[test]
fn validate_rejects_a_broken_file_with_its_location() {
    let out = picasso_sim(&[
        "validate",
        "core/tests/broken/05-percentage-out-of-range.toml",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("core/tests/broken/05-percentage-out-of-range.toml:5:24: tenants[0].streaming_percentage:"),
        "{stderr}"
    );
}

/// A missing file is an input error: exit 2.
#[test]
fn validate_missing_file_is_an_input_error() {
    let out = picasso_sim(&["validate", "no/such/file.toml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("no/such/file.toml: cannot read"));
}

/// A bad flag is a usage error: exit 2.
#[test]
fn unknown_flag_is_a_usage_error() {
    assert_eq!(
        picasso_sim(&["validate", "--frobnicate"]).status.code(),
        Some(2)
    );
}

/// `schema` prints the JSON Schema that is checked in under docs/.
#[test]
fn schema_prints_the_checked_in_schema() {
    let out = picasso_sim(&["schema"]);
    assert_eq!(out.status.code(), Some(0));
    let printed: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("the schema is JSON");
    let checked_in: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(repo_root().join("docs/scenario.schema.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(printed, checked_in);
    assert_eq!(printed["title"], "Scenario");
}

/// The README's first command: `run` on the embedded default scenario, no file needed.
#[test]
fn run_on_the_embedded_default_scenario() {
    let out = picasso_sim(&["run"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("1 jobs: 1 passed, 0 failed"), "{stdout}");
    assert!(stdout.contains("default"), "{stdout}");
}

/// `--replay` prints the transcript, with its timeline and invariant verdict.
#[test]
fn run_replay_prints_the_transcript() {
    let out = picasso_sim(&["run", "scenarios/bedrock-drop.toml", "--replay"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("## timeline"), "{stdout}");
    assert!(stdout.contains("## invariants"), "{stdout}");
}

/// A bad scenario file is an input error (exit 2) naming file, line and field.
#[test]
fn run_rejects_a_broken_scenario() {
    let out = picasso_sim(&["run", "core/tests/broken/09-session-unknown-tenant.toml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("09-session-unknown-tenant.toml:10:10: sessions[0].tenant"),
        "{}",
        text(&out.stderr)
    );
}

/// The test cases of a JUnit report: (name, failed).
fn junit_cases(xml: &str) -> Vec<(String, bool)> {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut cases: Vec<(String, bool)> = Vec::new();
    loop {
        match reader.read_event().expect("well-formed XML") {
            Event::Start(e) | Event::Empty(e) if e.name().as_ref() == b"testcase" => {
                let name = e
                    .attributes()
                    .flatten()
                    .find(|a| a.key.as_ref() == b"name")
                    .map(|a| String::from_utf8_lossy(&a.value).into_owned())
                    .expect("a testcase has a name");
                cases.push((name, false));
            }
            Event::Start(e) | Event::Empty(e) if e.name().as_ref() == b"failure" => {
                cases.last_mut().expect("failure inside a testcase").1 = true;
            }
            Event::Eof => break,
            _ => {}
        }
    }
    cases
}

/// `--junit` writes a report a CI system reads, and `--shard K/N` partitions the jobs:
/// the shards' test cases add up to the whole suite, each exactly once.
#[test]
fn junit_report_parses_and_shards_add_up() {
    let dir = std::env::temp_dir().join(format!("picasso-junit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let whole = dir.join("whole.xml");
    let scenarios = [
        "scenarios/happy-path.toml",
        "scenarios/bedrock-drop.toml",
        "scenarios/network-refuse.toml",
        "scenarios/gateway-status.toml",
    ];
    let mut args = vec!["run", "--policy", "all", "--junit", whole.to_str().unwrap()];
    args.extend(scenarios);
    let out = picasso_sim(&args);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let all = junit_cases(&std::fs::read_to_string(&whole).unwrap());
    assert_eq!(all.len(), scenarios.len() * 3);
    assert!(
        all.iter().any(|(n, _)| n == "happy-path::corrected"),
        "{all:?}"
    );
    assert!(all.iter().all(|(_, failed)| !failed), "{all:?}");

    let mut from_shards: Vec<String> = Vec::new();
    for k in 1..=3 {
        let file = dir.join(format!("shard{k}.xml"));
        let shard = format!("{k}/3");
        let mut args = vec![
            "run",
            "--policy",
            "all",
            "--shard",
            &shard,
            "--junit",
            file.to_str().unwrap(),
        ];
        args.extend(scenarios);
        assert_eq!(picasso_sim(&args).status.code(), Some(0));
        from_shards.extend(
            junit_cases(&std::fs::read_to_string(&file).unwrap())
                .into_iter()
                .map(|(n, _)| n),
        );
    }
    let mut whole_names: Vec<String> = all.into_iter().map(|(n, _)| n).collect();
    whole_names.sort();
    from_shards.sort();
    assert_eq!(from_shards, whole_names);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The as-written and naive-fix policies break invariants by design: `run` reports
/// those defects as expected and does not fail; only the corrected policy must be clean.
#[test]
fn defective_policies_show_their_defects_without_failing_the_run() {
    let out = picasso_sim(&["run", "scenarios/happy-path.toml", "--policy", "as-written"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("expected defects"), "{stdout}");
}

/// `demo` lists the demos; `demo NAME` shows the three policies side by side.
#[test]
fn demo_lists_and_runs() {
    let list = picasso_sim(&["demo"]);
    assert_eq!(list.status.code(), Some(0));
    let listing = text(&list.stdout);
    for name in [
        "mid-stream-drop",
        "throttling",
        "slow-first-token",
        "stream-cap",
        "rate-limit",
        "happy-path",
    ] {
        assert!(listing.contains(name), "{name} missing from:\n{listing}");
    }
    let out = picasso_sim(&["demo", "mid-stream-drop"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let shown = text(&out.stdout);
    let header = shown
        .lines()
        .find(|l| l.trim_start().starts_with("time"))
        .expect("a timeline header");
    assert!(
        header.contains("as-written")
            && header.contains("naive-fix")
            && header.contains("corrected"),
        "{header}"
    );
    assert!(shown.contains("── corrected ──"), "{shown}");
    assert_eq!(
        picasso_sim(&["demo", "no-such-demo"]).status.code(),
        Some(2)
    );
}

/// `rollout` on the embedded rehearsal: every step judged by the document's success
/// criteria, all met, streaming's first text well below the regular chat's; the JSON
/// report holds every criterion with value, threshold and pass. With 0.5 % of streams
/// failing the tree still proceeds but the criteria fail (exit 1), and with the
/// network dropping 5 % of streams the verdict is roll back.
#[test]
fn rollout_is_judged_by_the_documents_criteria() {
    let dir = std::env::temp_dir();
    let html = dir.join(format!("picasso-rollout-{}.html", std::process::id()));
    let json = dir.join(format!("picasso-rollout-{}.json", std::process::id()));
    let out = picasso_sim(&[
        "rollout",
        "--html",
        html.to_str().unwrap(),
        "--json",
        json.to_str().unwrap(),
    ]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    assert!(
        stdout.contains("verdict: rollout complete: every step passed"),
        "{stdout}"
    );
    let report = std::fs::read_to_string(&html).unwrap();
    assert!(report.contains("<svg") && report.contains("proceed"));
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let _ = std::fs::remove_file(&html);
    let _ = std::fs::remove_file(&json);
    assert_eq!(report["overall"]["pass"], true);
    let names = [
        "streaming_error_rate",
        "fallback_rate",
        "adoption",
        "ttft_reduction",
        "non_streaming_stream_requests",
        "non_streaming_latency_change",
        "overall_error_rate",
    ];
    for step in report["steps"].as_array().unwrap() {
        let criteria = step["criteria"].as_array().unwrap();
        let got: Vec<&str> = criteria
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(got, names, "{step}");
        for c in criteria {
            assert!(c["threshold"].is_number(), "{c}");
            assert!(
                c["pass"].is_boolean() || (c["pass"].is_null() && c["value"].is_null()),
                "{c}"
            );
        }
        for key in [
            "stream_requests",
            "errors_by_type",
            "latency_ms",
            "fallback_rate",
        ] {
            assert!(!step["dashboard"][key].is_null(), "{key}: {step}");
        }
    }
    // Streaming's first text at least 80 % sooner than the regular answer (the
    // document's target), measured on the steps that streamed.
    let reduction = report["overall"]["criteria"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "ttft_reduction")
        .unwrap()["value"]
        .as_f64()
        .unwrap();
    assert!(reduction >= 0.8, "{reduction}");

    // 0.5 % streaming errors: the tree proceeds, the criteria do not pass.
    let out = picasso_sim(&[
        "rollout",
        repo_root()
            .join("scenarios/rollout-errors.toml")
            .to_str()
            .unwrap(),
    ]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("does NOT meet the success criteria: streaming_error_rate"),
        "{stdout}"
    );
    assert!(!stdout.contains("ROLL BACK"), "{stdout}");

    // The network drops 5 % of streams: roll back.
    let scenario = std::fs::read_to_string(repo_root().join("scenarios/rollout.toml"))
        .unwrap()
        .replace("probability = 0.0005", "probability = 0.05");
    let file = dir.join(format!("picasso-rollout-{}.toml", std::process::id()));
    std::fs::write(&file, scenario).unwrap();
    let out = picasso_sim(&["rollout", file.to_str().unwrap()]);
    let _ = std::fs::remove_file(&file);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("ROLL BACK"), "{stdout}");
    assert!(stdout.contains("error_rate"), "{stdout}");
    assert!(stdout.contains("fo85e6a06dcdf4 at 0 %"), "{stdout}");
}

/// `serve` brings up the three servers on loopback, wired together, prints what a
/// widget needs, serves the demo page, and stops cleanly on SIGTERM.
#[test]
fn serve_answers_on_loopback_and_stops_cleanly() {
    let served = Served::start(&[]);
    assert!(
        served.banner.contains("fo85e6a06dcdf4"),
        "{}",
        served.banner
    );
    let (status, body) = http_get(&format!(
        "{}/Master_Function?action=get_config&t=fo85e6a06dcdf4",
        served.master_url
    ));
    assert_eq!(status, 200, "{body}");
    let config: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        config["endpoints"]["streaming"],
        format!("{}/", served.gateway_url)
    );
    assert!(
        config["allowed_origins"]
            .as_array()
            .unwrap()
            .iter()
            .any(|o| o.as_str() == Some(served.master_url.as_str()))
    );
    let (status, page) = http_get(&format!("{}/", served.master_url));
    assert_eq!(status, 200);
    assert!(page.contains("EventSource"));
    let (status, journal) = http_get(&format!("{}/__admin/requests", served.bedrock_url));
    assert_eq!(status, 200);
    assert!(journal.trim_start().starts_with('['), "{journal}");
    assert_eq!(served.stop(), Some(0));
}

/// `serve` on a scenario file reloads it when the file changes.
#[test]
fn serve_reloads_a_changed_scenario() {
    let file = std::env::temp_dir().join(format!("picasso-serve-{}.toml", std::process::id()));
    let original = std::fs::read_to_string(repo_root().join("scenarios/happy-path.toml")).unwrap();
    std::fs::write(&file, &original).unwrap();
    let served = Served::start(&[file.to_str().unwrap()]);
    let config_url = format!(
        "{}/Master_Function?action=get_config&t=au47d9f8e2c31b",
        served.master_url
    );
    let (_, before) = http_get(&config_url);
    assert!(before.contains("\"streaming_enabled\":false"), "{before}");
    // Modification times can be coarse: make sure the new one differs.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let changed = original.replacen("streaming_enabled = false", "streaming_enabled = true", 1);
    std::fs::write(&file, changed).unwrap();
    let mut after = String::new();
    for _ in 0..50 {
        std::thread::sleep(std::time::Duration::from_millis(200));
        after = http_get(&config_url).1;
        if after.contains("\"streaming_enabled\":true") {
            break;
        }
    }
    assert!(
        after.contains("\"streaming_enabled\":true"),
        "not reloaded: {after}"
    );
    let _ = std::fs::remove_file(&file);
}

/// `PUT /__admin/scenario` on the Master's port replaces the scenario in all three
/// servers; a broken one is refused with its diagnostics and the old one stays.
#[test]
fn serve_admin_replaces_the_scenario_everywhere() {
    let served = Served::start(&[]);
    let config_url = format!(
        "{}/Master_Function?action=get_config&t=au47d9f8e2c31b",
        served.master_url
    );
    assert!(
        http_get(&config_url)
            .1
            .contains("\"streaming_enabled\":false")
    );
    let admin = format!("{}/__admin/scenario", served.master_url);

    let (status, body) = http(
        "PUT",
        &admin,
        "seed = 1\n[[tenants]]\nhash = \"au47d9f8e2c31b\"\nstreaming_percentage = 140\n",
    );
    assert_eq!(status, 400);
    assert!(
        body.contains("<admin>:4:24: tenants[0].streaming_percentage"),
        "{body}"
    );
    assert!(
        http_get(&config_url)
            .1
            .contains("\"streaming_enabled\":false")
    );

    let (status, _) = http(
        "PUT",
        &admin,
        "seed = 1\n[[tenants]]\nhash = \"au47d9f8e2c31b\"\nstreaming_enabled = true\nstreaming_percentage = 100\n",
    );
    assert_eq!(status, 204);
    let config = http_get(&config_url).1;
    assert!(config.contains("\"streaming_enabled\":true"), "{config}");
    let (status, current) = http_get(&admin);
    assert_eq!(status, 200);
    assert!(current.contains("streaming_percentage = 100"), "{current}");
    // Mock Bedrock got it too: its scenario has the one tenant.
    let (_, bedrock) = http_get(&format!("{}/__admin/scenario", served.bedrock_url));
    assert!(!bedrock.contains("fo85e6a06dcdf4"), "{bedrock}");
}

/// `run` reports the same results whatever the number of worker threads: jobs run in
/// their own virtual-time worlds and are reported in job order.
#[test]
fn run_output_does_not_depend_on_the_thread_count() {
    let scenarios = [
        "scenarios/happy-path.toml",
        "scenarios/bedrock-drop.toml",
        "scenarios/rate-limit.toml",
        "scenarios/network-drop.toml",
    ];
    let output = |jobs: &str| {
        let mut args = vec!["run", "--policy", "all", "--jobs", jobs];
        args.extend(scenarios);
        let out = picasso_sim(&args);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        text(&out.stdout)
    };
    let one = output("1");
    assert!(one.contains("12 jobs: 12 passed"), "{one}");
    assert_eq!(one, output("3"));
}
