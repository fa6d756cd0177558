//! `validate` and `run` end to end on the scenarios of issue 11: numbers beyond their
//! bounds are refused with file:line:field, and the largest accepted run to a verdict.
//! (The property test that every valid scenario runs to an end is in
//! `sim/tests/runnable.rs`.)

mod common;

use picasso_core::bounds::MAX_MS;

fn picasso_sim(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_picasso-sim"))
        .args(args)
        .current_dir(common::repo_root())
        .output()
        .expect("the binary runs")
}

/// The two files, end to end: `validate` refuses them with file:line:column and
/// field (exit 1), `run` refuses them the same way as an input error (exit 2) and
/// returns, without a panic. The same files at the largest values `validate` accepts
/// run to a verdict under every policy: exit 0 or 1, never a panic.
#[test]
fn the_cli_refuses_unbounded_times_and_runs_the_largest_accepted() {
    let cases = [
        (
            "core/tests/broken/26-at-ms-beyond-a-day.toml",
            ":16:11: sessions[0].messages[0].at_ms: expected at most 86400000 ms",
        ),
        (
            "core/tests/broken/27-post-timeout-overflows.toml",
            ":10:19: widget.post_timeout_ms: expected at most 86400000 ms",
        ),
    ];
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"));
    for (file, located) in cases {
        let out = picasso_sim(&["validate", file]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains(&format!("{file}{located}")), "{stderr}");

        let out = picasso_sim(&["run", file, "--policy", "all"]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains(located), "{stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");

        // The same file at the bound: accepted, and it runs to a verdict.
        let text = std::fs::read_to_string(common::repo_root().join(file)).unwrap();
        let at_bound = text.replace("9223372036854775807", &MAX_MS.to_string());
        let name = std::path::Path::new(file).file_name().unwrap();
        let path = dir.join(name);
        std::fs::write(&path, at_bound).unwrap();
        let path = path.to_str().unwrap();
        let out = picasso_sim(&["validate", path]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let out = picasso_sim(&["run", path, "--policy", "all"]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(matches!(out.status.code(), Some(0 | 1)), "{stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}
