//! How long `validate` takes on a large scenario: builds a ~10 MB file in memory
//! (many sessions and messages, a few answers and faults) and times parsing plus
//! validation, the work `picasso-sim validate` does per file.
//!
//! Run: `cargo bench -p picasso-core --bench parse`

use picasso_core::parse_scenario;
use std::fmt::Write;
use std::time::Instant;

fn big_scenario(target_bytes: usize) -> String {
    let mut text = String::from(
        "seed = 7\nname = \"big\"\n\n[[tenants]]\nhash = \"fo85e6a06dcdf4\"\nstreaming_enabled = true\nstreaming_percentage = 50\nallowed_origins = [\"https://fostervillage.org\"]\n\n[[answers]]\nid = \"default\"\ntext = \"Thanks for your message.\"\n",
    );
    let mut session = 0;
    while text.len() < target_bytes {
        write!(
            text,
            "\n[[sessions]]\nid = \"s{session}\"\ntenant = \"fo85e6a06dcdf4\"\nstart_ms = {}\n",
            session * 10
        )
        .unwrap();
        for m in 0..8 {
            write!(
                text,
                "\n  [[sessions.messages]]\n  id = \"s{session}-m{m}\"\n  text = \"How do I become a foster parent in Austin, and what training do you offer?\"\n  think_ms = 1200\n"
            )
            .unwrap();
        }
        session += 1;
    }
    for i in 0..50 {
        write!(text, "\n[[faults]]\nwhere = \"network\"\nkind = \"drop\"\nafter_tokens = 3\nsession = \"s{i}\"\nprobability = 0.1\n").unwrap();
    }
    text
}

fn main() {
    let text = big_scenario(10 * 1024 * 1024);
    let runs = 5;
    let mut best = f64::MAX;
    let mut sessions = 0;
    for _ in 0..runs {
        let start = Instant::now();
        let scenario = parse_scenario("big.toml", &text).expect("the generated scenario is valid");
        best = best.min(start.elapsed().as_secs_f64());
        sessions = scenario.sessions.len();
    }
    println!(
        "validate: {:.1} MB, {} sessions, {} messages: best of {runs} = {:.0} ms ({:.0} MB/s)",
        text.len() as f64 / 1e6,
        sessions,
        sessions * 8,
        best * 1e3,
        text.len() as f64 / 1e6 / best
    );
}
