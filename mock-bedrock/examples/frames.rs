//! What one streamed token's event-stream frame costs to write: the way mock Bedrock
//! writes it (`StreamFormat::Converse.token`: a header block made once, the payload
//! written straight) against the general path (`eventstream::event` with a JSON tree,
//! what every token cost before), in the same run.
//! `cargo run --release -p mock-bedrock --example frames [-- N [straight|tree]]`; under
//! `valgrind --tool=callgrind` with one path named, it counts instructions per frame.

use mock_bedrock::answers::StreamFormat;
use mock_bedrock::eventstream;
use serde_json::json;
use std::hint::black_box;
use std::time::Instant;

fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let only = args.next();
    let text = "tok ";
    let mut bytes = 0usize;
    for (name, straight) in [("straight", true), ("tree", false)] {
        if only.as_deref().is_some_and(|o| o != name) {
            continue;
        }
        let t0 = Instant::now();
        for _ in 0..n {
            let frame = if straight {
                StreamFormat::Converse.token(black_box(text))
            } else {
                eventstream::event(
                    "contentBlockDelta",
                    &json!({"delta": {"text": black_box(text)}, "contentBlockIndex": 0}),
                )
            };
            bytes += frame.expect("a frame").len();
        }
        let ns = t0.elapsed().as_nanos() as f64 / n as f64;
        println!("{name:<8} {n} token frames: {ns:.0} ns per frame");
    }
    black_box(bytes);
}
