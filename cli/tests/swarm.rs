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

/// A 60 s search from seed 1 with `who` (`--policy NAME` or `--widget PATH`) on `jobs`
/// workers, writing what it finds to `out`.
fn search(who: [&str; 2], jobs: &str, out: &std::path::Path) -> Output {
    picasso_sim(&[
        "swarm",
        "--seed",
        "1",
        "--time",
        "60s",
        who[0],
        who[1],
        "--jobs",
        jobs,
        "--out",
        out.to_str().unwrap(),
    ])
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
        let out = search(["--policy", "naive-fix"], jobs, &out_file);
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

/// The campaign runs a JavaScript widget as it runs a policy: the JS naive fix breaks,
/// the file it writes names `--widget` in its replay line, and replaying it with that
/// widget shows the same violations (a JS widget is judged like `corrected`: exit 1).
#[test]
fn a_javascript_widget_is_searched_and_replayed_by_its_path() {
    let widgets = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../widgets");
    let naive = widgets.join("naive-fix");
    let dir = std::env::temp_dir().join(format!("picasso-swarm-js-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let found = dir.join("found.toml");
    let out = search(["--widget", naive.to_str().unwrap()], "1", &found);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}{}", text(&out.stderr));
    let replay_line = format!(
        "replay:  picasso-sim run {} --widget {} --replay",
        found.display(),
        naive.display()
    );
    assert!(stdout.contains(&replay_line), "{stdout}");
    let broken: Vec<&str> = stdout
        .lines()
        .filter_map(|l| l.trim().strip_prefix("VIOLATED "))
        .collect();
    assert!(!broken.is_empty(), "{stdout}");

    let replay = picasso_sim(&[
        "run",
        found.to_str().unwrap(),
        "--widget",
        naive.to_str().unwrap(),
        "--replay",
    ]);
    let replayed = text(&replay.stdout);
    assert_eq!(replay.status.code(), Some(1), "{replayed}");
    for v in &broken {
        assert!(replayed.contains(v), "{v} not in\n{replayed}");
    }
    assert!(replayed.contains("--widget "), "{replayed}");

    let corrected = picasso_sim(&[
        "swarm",
        "--seed",
        "3",
        "--cases",
        "30",
        "--widget",
        widgets.join("corrected").to_str().unwrap(),
    ]);
    let stdout = text(&corrected.stdout);
    assert_eq!(
        corrected.status.code(),
        Some(0),
        "{stdout}{}",
        text(&corrected.stderr)
    );
    assert!(stdout.contains("no invariant broke"), "{stdout}");
    let _ = std::fs::remove_dir_all(&dir);
}
