//! Helpers shared by the CLI tests: the repository root, and `picasso-sim serve`
//! started on free loopback ports and stopped (SIGTERM) when dropped.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The workspace root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// A running `picasso-sim serve`.
pub struct Served {
    pub child: Child,
    pub master_url: String,
    pub gateway_url: String,
    pub bedrock_url: String,
    /// What it printed before "Ctrl-C stops."
    pub banner: String,
}

impl Served {
    /// Starts `serve` with `args`, on ports the OS picks, and waits for its banner.
    pub fn start(args: &[&str]) -> Served {
        let mut child = Command::new(env!("CARGO_BIN_EXE_picasso-sim"))
            .args([
                "serve",
                "--master-port",
                "0",
                "--gateway-port",
                "0",
                "--bedrock-port",
                "0",
            ])
            .args(args)
            .current_dir(repo_root())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("serve starts");
        let mut lines = BufReader::new(child.stdout.take().expect("stdout"));
        let mut banner = String::new();
        loop {
            let mut line = String::new();
            if lines.read_line(&mut line).expect("read banner") == 0 {
                panic!("serve exited before it was ready:\n{banner}");
            }
            banner.push_str(&line);
            if line.starts_with("Ctrl-C stops.") {
                break;
            }
        }
        // Keep draining stdout so the server never blocks on a full pipe.
        std::thread::spawn(move || {
            let mut sink = Vec::new();
            let _ = lines.read_to_end(&mut sink);
        });
        let url_after = |label: &str| {
            banner
                .lines()
                .find(|l| l.starts_with(label))
                .and_then(|l| l.split_whitespace().find(|w| w.starts_with("http://")))
                .map(|u| u.trim_end_matches('/').to_owned())
                .unwrap_or_else(|| panic!("no {label} URL in:\n{banner}"))
        };
        let master_url = url_after("demo page");
        let gateway_url = url_after("streaming gateway");
        let bedrock_url = url_after("mock Bedrock");
        Served {
            child,
            master_url,
            gateway_url,
            bedrock_url,
            banner,
        }
    }

    /// Sends SIGTERM and waits for the exit code.
    pub fn stop(mut self) -> Option<i32> {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        for _ in 0..200 {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        None
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A plain HTTP/1.1 GET; returns status and body. Enough for a smoke test, no client crate.
pub fn http_get(url: &str) -> (u16, String) {
    http("GET", url, "")
}

/// A plain HTTP/1.1 request with a body (`Content-Length`, no chunking).
pub fn http(method: &str, url: &str, body: &str) -> (u16, String) {
    let rest = url.strip_prefix("http://").expect("http URL");
    let (host, path) = rest
        .split_once('/')
        .map_or((rest, "/".to_owned()), |(h, p)| (h, format!("/{p}")));
    let mut stream = TcpStream::connect(host).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_owned();
    (status, body)
}
