//! The floor under `picasso-sim bench bedrock`: the cheapest paced stream server tokio
//! allows on this machine, for `bench --attach` to measure with the same clients and
//! meter. No hyper, no router, no event-stream encoding: one task per connection reads a
//! request (head, then `content-length` bytes), answers HTTP/1.1 200 with a chunked body,
//! and writes the same pre-built 100-byte frame (a length prelude and the
//! `contentBlockDelta` the meter looks for, not a valid event-stream message) 40 times,
//! each at a running 20 ms deadline, one write per frame; then the last chunk.
//!
//! ```text
//! cargo run --release -p picasso-sim --example floor        # prints its port
//! picasso-sim bench bedrock --attach PORT --attach-pid PID --json
//! ```
//! README, *Benchmarks*, has what it measured.

use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Frames per answer and the gap before each: `bench`'s defaults.
const FRAMES: u32 = 40;
const GAP: Duration = Duration::from_millis(20);

fn main() -> std::io::Result<()> {
    let port: u16 = std::env::args()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(serve(port))
}

async fn serve(port: u16) -> std::io::Result<()> {
    let listener = TcpListener::bind(("127.0.0.1", port)).await?;
    println!("{}", listener.local_addr()?.port());
    let chunk: &'static [u8] = Box::leak(chunk().into_boxed_slice());
    loop {
        let (socket, _) = listener.accept().await?;
        let _ = socket.set_nodelay(true);
        tokio::spawn(connection(socket, chunk));
    }
}

/// One chunk of the body: the chunk's size line, the frame, CRLF.
fn chunk() -> Vec<u8> {
    let mut frame = vec![0u8; 4];
    frame.extend_from_slice(
        b"....:event-type contentBlockDelta {\"delta\":{\"text\":\"tok \"},\"contentBlockIndex\":0}....",
    );
    let len = u32::try_from(frame.len()).unwrap_or(u32::MAX);
    frame[..4].copy_from_slice(&len.to_be_bytes());
    let mut chunk = format!("{:x}\r\n", frame.len()).into_bytes();
    chunk.extend_from_slice(&frame);
    chunk.extend_from_slice(b"\r\n");
    chunk
}

/// Requests one after another on a kept-alive connection, each answered with the paced
/// frames; ends when the client closes or a read or write fails.
async fn connection(mut socket: TcpStream, chunk: &'static [u8]) {
    let mut buf = Vec::new();
    let mut read = [0u8; 4096];
    loop {
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            match socket.read(&mut read).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&read[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        while buf.len() < head_end + length {
            match socket.read(&mut read).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&read[..n]),
            }
        }
        buf.drain(..head_end + length);
        let head = b"HTTP/1.1 200 OK\r\ncontent-type: application/vnd.amazon.eventstream\r\n\
                     transfer-encoding: chunked\r\n\r\n";
        if socket.write_all(head).await.is_err() {
            return;
        }
        let start = tokio::time::Instant::now();
        for i in 1..=FRAMES {
            tokio::time::sleep_until(start + GAP * i).await;
            if socket.write_all(chunk).await.is_err() {
                return;
            }
        }
        if socket.write_all(b"0\r\n\r\n").await.is_err() {
            return;
        }
    }
}
