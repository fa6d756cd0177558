//! Prints the default scenario's transcript under a policy: `cargo run -p picasso-simulator --example run_default -- corrected`.
fn main() {
    let policy = std::env::args()
        .nth(1)
        .and_then(|n| picasso_simulator::Policy::from_name(&n))
        .unwrap_or(picasso_simulator::Policy::Corrected);
    let scenario = match std::env::args().nth(2) {
        Some(path) => match picasso_core::load_file(std::path::Path::new(&path)) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("{e}");
                std::process::exit(2);
            }
        },
        None => picasso_core::Scenario::default_scenario(),
    };
    match picasso_simulator::run_scenario(&scenario, policy) {
        Ok(o) => print!("{}", o.transcript),
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    }
}
