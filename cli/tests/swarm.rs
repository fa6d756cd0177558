//! `picasso-sim swarm` end to end: the same seed explores the same cases and finds the
//! same break; against `naive-fix` it writes a shrunk scenario that `run --replay`
//! reproduces; against `corrected` nothing breaks.

use std::path::PathBuf;
use std::process::{Command, Output};

fn picasso_sim(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_picasso-sim"))
        .args(args)
        .output()
        .expect("the binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The lines that depend only on the inputs (not the rates, which depend on the machine).
fn deterministic(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .filter(|l| !l.starts_with("explored ") && !l.starts_with("swarm: "))
        .map(str::to_owned)
        .collect()
}

#[test]
fn naive_fix_breaks_shrinks_and_replays_the_same_every_time() {
    let dir = std::env::temp_dir().join(format!("picasso-swarm-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = |n: u32| -> PathBuf { dir.join(format!("found-{n}.toml")) };
    let mut outputs = Vec::new();
    for (n, jobs) in [(1, "1"), (2, "2")] {
        let out_file = file(n);
        let out = picasso_sim(&[
            "swarm",
            "--seed",
            "1",
            "--time",
            "60s",
            "--policy",
            "naive-fix",
            "--jobs",
            jobs,
            "--out",
            out_file.to_str().unwrap(),
        ]);
        let stdout = text(&out.stdout);
        assert_eq!(out.status.code(), Some(1), "{stdout}{}", text(&out.stderr));
        assert!(stdout.contains("BROKEN "), "{stdout}");
        outputs.push((
            deterministic(&stdout.replace(out_file.to_str().unwrap(), "FILE")),
            std::fs::read_to_string(&out_file).unwrap(),
        ));
    }
    assert_eq!(
        outputs[0], outputs[1],
        "the same seed, the same break and file"
    );

    // The file replays: the same violations, as naive-fix's expected defects.
    let replay = picasso_sim(&[
        "run",
        file(1).to_str().unwrap(),
        "--policy",
        "naive-fix",
        "--replay",
    ]);
    let replayed = text(&replay.stdout);
    assert_eq!(replay.status.code(), Some(0), "{replayed}");
    let broken = outputs[0]
        .0
        .iter()
        .filter_map(|l| l.trim().strip_prefix("VIOLATED "))
        .map(|l| format!("VIOLATED {l}"))
        .collect::<Vec<_>>();
    assert!(!broken.is_empty());
    for v in &broken {
        assert!(replayed.contains(v.as_str()), "{v} not in\n{replayed}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn corrected_holds_over_a_bounded_campaign() {
    let out = picasso_sim(&[
        "swarm",
        "--seed",
        "3",
        "--cases",
        "40",
        "--policy",
        "corrected",
        "--jobs",
        "2",
    ]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    assert!(stdout.contains("explored 40 cases"), "{stdout}");
    assert!(stdout.contains("no invariant broke"), "{stdout}");
}

#[test]
fn bad_arguments_are_usage_errors() {
    let out = picasso_sim(&["swarm", "--policy", "all"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let out = picasso_sim(&["swarm", "--time", "5 weeks"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
}
