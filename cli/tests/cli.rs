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

/// A directory is read as `run` reads it: each of its `.toml` files, in name order; a
/// directory without any is an input error that names it.
#[test]
fn validate_reads_a_directory_as_run_does() {
    let out = picasso_sim(&["validate", "scenarios"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let listed: Vec<String> = text(&out.stdout)
        .lines()
        .filter_map(|l| l.strip_prefix("ok  scenarios/"))
        .map(|l| l.split(' ').next().unwrap_or_default().to_owned())
        .collect();
    let mut on_disk: Vec<String> = std::fs::read_dir(repo_root().join("scenarios"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".toml"))
        .collect();
    on_disk.sort();
    assert_eq!(listed, on_disk);
    let empty = std::env::temp_dir().join(format!("picasso-empty-{}", std::process::id()));
    std::fs::create_dir_all(&empty).unwrap();
    let out = picasso_sim(&["validate", empty.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("no .toml scenario files"),
        "{}",
        text(&out.stderr)
    );
    let _ = std::fs::remove_dir(&empty);
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

/// A reader that goes away (`picasso-sim run … | head`) ends the command quietly with
/// 141, as SIGPIPE ends `cat`, never with a panic. The pipe's read end is closed before
/// the child starts, so its first write fails, whatever the timing (closing it after
/// `spawn` raced the child on a loaded machine: a short output could be written whole
/// first).
#[test]
fn a_closed_stdout_ends_the_command_quietly() {
    for args in [&["run", "scenarios/"][..], &["schema"][..], &["demo"][..]] {
        let (reader, writer) = std::io::pipe().expect("a pipe");
        drop(reader);
        let child = Command::new(env!("CARGO_BIN_EXE_picasso-sim"))
            .args(args)
            .current_dir(repo_root())
            .stdout(writer)
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("the binary runs");
        let out = child.wait_with_output().expect("it ends");
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(141), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
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

/// `run --seed 7 scenarios/*.toml` gives a CI log of the same bytes whatever `--jobs`
/// or the timing: stdout, stderr, and the two interleaved as a CI log holds them.
///
/// This test once compared stdout alone, which was already in job order; the progress
/// lines went to stderr in the order the threads finished, so every CI log differed.
/// Now each stream is compared, and the merged log, over two runs with the default
/// thread count, one with a single thread, and one with more threads than cores.
#[test]
fn run_output_is_the_same_bytes_whatever_the_jobs_and_timing() {
    let dir = temp_dir("same-bytes");
    let scenarios = scenario_files();
    let run = |tag: &str, jobs: Option<&str>| {
        let mut args = vec!["run", "--seed", "7"];
        if let Some(jobs) = jobs {
            args.extend(["--jobs", jobs]);
        }
        args.extend(scenarios.iter().map(String::as_str));
        let log = dir.join(format!("{tag}.log"));
        let file = std::fs::File::create(&log).unwrap();
        let merged = picasso_sim_to(&args, file);
        let out = picasso_sim(&args);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        assert_eq!(merged, Some(0));
        (out.stdout, out.stderr, std::fs::read(&log).unwrap())
    };
    let first = run("default-1", None);
    assert!(
        text(&first.0).contains(&format!("{0} jobs: {0} passed, 0 failed", scenarios.len())),
        "{}",
        text(&first.0)
    );
    assert!(text(&first.1).contains("[1/"), "{}", text(&first.1));
    for (tag, jobs) in [("default-2", None), ("one", Some("1")), ("four", Some("4"))] {
        let other = run(tag, jobs);
        assert_eq!(text(&first.0), text(&other.0), "stdout, {tag}");
        assert_eq!(text(&first.1), text(&other.1), "stderr, {tag}");
        assert_eq!(
            text(&first.2),
            text(&other.2),
            "stdout and stderr merged, {tag}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// `scenarios/*.toml`, sorted as a shell expands it.
fn scenario_files() -> Vec<String> {
    let mut files: Vec<String> = std::fs::read_dir(repo_root().join("scenarios"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".toml"))
        .map(|n| format!("scenarios/{n}"))
        .collect();
    files.sort();
    files
}

/// Runs the binary with stdout and stderr into one file, as a CI log; the exit code.
fn picasso_sim_to(args: &[&str], log: std::fs::File) -> Option<i32> {
    Command::new(env!("CARGO_BIN_EXE_picasso-sim"))
        .args(args)
        .current_dir(repo_root())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .status()
        .expect("the binary runs")
        .code()
}

/// A fresh directory under the system's temp dir, for this test and process.
fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("picasso-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The shipped snapshots are golden transcripts `run --snapshots` accepts: every
/// scenario in `scenarios/` and the embedded default, under the three policies.
#[test]
fn run_snapshots_accepts_the_shipped_snapshots() {
    let out = picasso_sim(&[
        "run",
        "--policy",
        "all",
        "--snapshots",
        "snapshots/",
        "scenarios/",
    ]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    let jobs = scenario_files().len() * 3;
    assert!(
        stdout.contains(&format!("snapshots in snapshots/: {jobs} match\n")),
        "{stdout}"
    );
    let out = picasso_sim(&["run", "--policy", "all", "--snapshots", "snapshots"]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains("snapshots in snapshots: 3 match\n"),
        "{stdout}"
    );
}

/// An edited snapshot fails its job (exit 1) with a unified diff; a missing one names
/// the file and the flag; `--update-snapshots` puts back exactly what insta wrote.
#[test]
fn run_snapshots_fails_with_a_diff_and_update_restores() {
    let dir = temp_dir("snap-edit");
    let names = ["happy-path", "bedrock-drop"];
    for name in names {
        for policy in ["as-written", "naive-fix", "corrected"] {
            let file = format!("transcript__{name}__{policy}.snap");
            std::fs::copy(repo_root().join("snapshots").join(&file), dir.join(&file)).unwrap();
        }
    }
    let edited = dir.join("transcript__happy-path__corrected.snap");
    let shipped = std::fs::read_to_string(&edited).unwrap();
    let needle = "user sends \"Hello\"";
    assert!(shipped.contains(needle));
    std::fs::write(
        &edited,
        shipped.replacen(needle, "user sends \"Goodbye\"", 1),
    )
    .unwrap();
    let missing = dir.join("transcript__bedrock-drop__naive-fix.snap");
    std::fs::remove_file(&missing).unwrap();

    let dir_arg = dir.to_str().unwrap();
    let args = [
        "run",
        "--policy",
        "all",
        "--snapshots",
        dir_arg,
        "scenarios/happy-path.toml",
        "scenarios/bedrock-drop.toml",
    ];
    let out = picasso_sim(&args);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("6 jobs: 4 passed, 2 failed"), "{stdout}");
    assert!(
        stdout.contains("FAILED happy-path · corrected:"),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("--- {}\n", edited.display()))
            && stdout.contains("+++ this run\n"),
        "{stdout}"
    );
    let minus = stdout
        .lines()
        .find(|l| l.trim_start().starts_with('-') && l.contains("Goodbye"));
    let plus = stdout
        .lines()
        .find(|l| l.trim_start().starts_with('+') && l.contains(needle));
    assert!(minus.is_some() && plus.is_some(), "{stdout}");
    assert!(stdout.contains("@@ -"), "{stdout}");
    assert!(
        stdout.contains("FAILED bedrock-drop · naive-fix:"),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!(
            "{}: no such snapshot; run with --update-snapshots to write it",
            missing.display()
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains("4 match, 1 missing, 1 differ, 0 unusable"),
        "{stdout}"
    );

    let mut update = args.to_vec();
    update.push("--update-snapshots");
    let out = picasso_sim(&update);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains("4 match, 2 written (1 new, 1 changed)"),
        "{stdout}"
    );
    // The changed file keeps insta's header: it is the shipped file again, byte for byte.
    assert_eq!(std::fs::read_to_string(&edited).unwrap(), shipped);
    assert_eq!(picasso_sim(&args).status.code(), Some(0));
    let _ = std::fs::remove_dir_all(&dir);
}

/// `--update-snapshots` into an empty directory writes insta snapshot files: insta's own
/// parser reads back the transcript the shipped snapshot holds, and a second run passes.
#[test]
fn run_update_snapshots_writes_files_insta_reads() {
    let dir = temp_dir("snap-new").join("golden");
    let dir_arg = dir.to_str().unwrap();
    let scenarios = ["scenarios/happy-path.toml", "scenarios/rate-limit.toml"];
    let mut args = vec!["run", "--policy", "all", "--snapshots", dir_arg];
    args.extend(scenarios);
    let mut update = args.clone();
    update.push("--update-snapshots");
    let out = picasso_sim(&update);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains("0 match, 6 written (6 new, 0 changed)"),
        "{stdout}"
    );
    for scenario in scenarios {
        let name = scenario
            .trim_start_matches("scenarios/")
            .trim_end_matches(".toml");
        for policy in ["as-written", "naive-fix", "corrected"] {
            let file = format!("transcript__{name}__{policy}.snap");
            let written = insta::Snapshot::from_file(&dir.join(&file)).expect("insta reads it");
            let shipped =
                insta::Snapshot::from_file(&repo_root().join("snapshots").join(&file)).unwrap();
            assert_eq!(
                written.as_text().map(ToString::to_string),
                shipped.as_text().map(ToString::to_string),
                "{file}"
            );
            assert_eq!(written.metadata().source(), Some("picasso-sim run"));
            assert_eq!(written.metadata().expression(), Some("transcript"));
            assert_eq!(written.metadata().input_file(), Some(scenario));
            // Past the header, the bytes are the shipped file's.
            let body = |p: PathBuf| {
                let t = std::fs::read_to_string(p).unwrap();
                t.splitn(3, "---\n").nth(2).unwrap().to_owned()
            };
            assert_eq!(
                body(dir.join(&file)),
                body(repo_root().join("snapshots").join(&file))
            );
        }
    }
    let out = picasso_sim(&args);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains(": 6 match\n"), "{stdout}");
    let _ = std::fs::remove_dir_all(dir.parent().unwrap());
}

/// Two scenario files with one name would share a snapshot: an input error, before any
/// job runs. A snapshot directory that does not exist is one too, unless updating.
#[test]
fn run_snapshots_input_errors() {
    let dir = temp_dir("snap-clash");
    std::fs::copy(
        repo_root().join("scenarios/happy-path.toml"),
        dir.join("happy-path.toml"),
    )
    .unwrap();
    let copy = dir.join("happy-path.toml");
    let golden = dir.join("golden");
    let out = picasso_sim(&[
        "run",
        "--snapshots",
        golden.to_str().unwrap(),
        "--update-snapshots",
        "scenarios/happy-path.toml",
        copy.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("would share the snapshot"),
        "{}",
        text(&out.stderr)
    );
    let out = picasso_sim(&[
        "run",
        "--snapshots",
        golden.to_str().unwrap(),
        "scenarios/happy-path.toml",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("no such directory of snapshots; run with --update-snapshots"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(
        picasso_sim(&["run", "--update-snapshots"]).status.code(),
        Some(2)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// `serve --record-from URL --record-to FILE`: Bedrock calls go to the upstream (here
/// a mock Bedrock), come back unchanged, and the file holds the answer as a scenario
/// `[[answers]]` entry that replays it.
#[test]
fn serve_records_an_upstream_answer_into_a_replayable_file() {
    use picasso_core::scenario::{Answer, AnswerBook};
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let mut scenario = picasso_core::Scenario::default_scenario();
    scenario.answers = vec![Answer::from_text("Recorded words, paced").paced(40, 15)];
    let upstream = runtime.block_on(mock_bedrock::MockBedrock::start(scenario));
    let file = std::env::temp_dir().join(format!("picasso-record-{}.toml", std::process::id()));
    let served = Served::start(&[
        "--record-from",
        &upstream.endpoint(),
        "--record-to",
        file.to_str().unwrap(),
    ]);
    assert!(served.banner.contains("recording "), "{}", served.banner);
    let model = "anthropic.claude-3-haiku-20240307-v1:0";
    let body = serde_json::json!({"messages": [{"role": "user", "content": [{"text": "Say it"}]}]});
    let answer: serde_json::Value = runtime.block_on(async {
        reqwest::Client::new()
            .post(format!("{}/model/{model}/converse", served.bedrock_url))
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .map(|b| serde_json::from_slice(&b).unwrap())
            .unwrap()
    });
    assert_eq!(
        answer["output"]["message"]["content"][0]["text"],
        "Recorded words, paced"
    );
    assert_eq!(upstream.journal().len(), 1, "the call reached the upstream");
    assert_eq!(served.stop(), Some(0));
    let replayed = picasso_core::load_file(&file).expect("the recording loads");
    std::fs::remove_file(&file).unwrap();
    let book = AnswerBook::new(&replayed.answers);
    let recorded = book.answer_for(model, "Say it").unwrap();
    assert_eq!(recorded.id, "recorded-1");
    assert_eq!(recorded.full_text(), "Recorded words, paced");
}
