//! What the tests that run the `dealtrail` binary share.

use std::io::{BufRead, BufReader, Lines};
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::{Arc, Mutex};

/// What a started `dealtrail serve` prints after its address. Keep it until the server has
/// stopped: a server whose stdout is closed fails when it prints.
pub type Output = Lines<BufReader<ChildStdout>>;

/// Reads `child`'s (piped) stdout up to the line that gives its address: `host:port`, and the
/// rest of the output.
pub fn listening_address(child: &mut Child) -> (String, Output) {
    let stdout = child.stdout.take().expect("stdout piped");
    let mut lines = BufReader::new(stdout).lines();
    loop {
        let line = lines
            .next()
            .expect("the server prints its address")
            .unwrap();
        if let Some(rest) = line.strip_prefix("dealtrail listening on http://") {
            return (rest.split_whitespace().next().unwrap().to_string(), lines);
        }
    }
}

/// A plain HTTP/1.1 GET with a bearer token; returns (status, body). The body is never
/// chunked (the reports are sent whole).
#[allow(dead_code)] // not every test binary that shares this module sends requests
pub fn http_get(addr: &str, path: &str, token: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n").unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").expect("a full response");
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    assert!(
        !head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked"),
        "unexpected chunked body"
    );
    (status, body.to_string())
}

/// One HTTP/1.0 exchange with a bearer token (the body is the rest of the connection), with
/// a 60 s timeout on each read: (status, head, body), or the I/O error.
#[allow(dead_code)] // not every test binary that shares this module sends requests
pub fn request(
    addr: &str,
    method: &str,
    path: &str,
    token: &str,
    body: Option<&str>,
) -> std::io::Result<(u16, String, String)> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr)?;
    s.set_read_timeout(Some(std::time::Duration::from_secs(60)))?;
    let body = body.unwrap_or_default();
    write!(
        s,
        "{method} {path} HTTP/1.0\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )?;
    let mut raw = String::new();
    s.read_to_string(&mut raw)?;
    let (head, body) = raw.split_once("\r\n\r\n").ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            format!("a cut answer: {raw}"),
        )
    })?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    Ok((status, head.to_string(), body.to_string()))
}

/// A `dealtrail serve` process on `store` (a store URL), killed when dropped.
#[allow(dead_code)] // not every test binary that shares this module starts nodes
pub struct Node {
    pub child: Child,
    pub addr: String,
    _output: Output,
}

#[allow(dead_code)]
impl Node {
    /// Starts a node with its own data directory `dir` and `token` as the admin token.
    pub fn start(store: &str, dir: &Path, token: &str) -> Node {
        let mut child = Command::new(env!("CARGO_BIN_EXE_dealtrail"))
            .args(["--store", store, "--data"])
            .arg(dir)
            .args(["serve", "--addr", "127.0.0.1:0"])
            .env("DEALTRAIL_ADMIN_TOKEN", token)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let (addr, output) = listening_address(&mut child);
        Node {
            child,
            addr,
            _output: output,
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An SSE subscriber (`query`: where from): the `id:` of every frame, as they come.
#[allow(dead_code)]
pub fn sse_ids(addr: &str, query: &str, token: &str) -> Arc<Mutex<Vec<u64>>> {
    use std::io::Write;
    let seen = Arc::new(Mutex::new(Vec::new()));
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(
        s,
        "GET /v1/subscribe?{query} HTTP/1.0\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\r\n"
    )
    .unwrap();
    let out = seen.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(s).lines() {
            let Ok(line) = line else { return };
            if let Some(id) = line.strip_prefix("id:") {
                out.lock().unwrap().push(id.trim().parse().unwrap());
            }
        }
    });
    seen
}

/// Runs `dealtrail --store <store> --data <dir> <args>`, which must succeed: its stdout.
#[allow(dead_code)]
pub fn dealtrail(store: &str, dir: &Path, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_dealtrail"))
        .args(["--store", store, "--data"])
        .arg(dir)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The position of every event id in the log of `store` (by `dealtrail export`).
#[allow(dead_code)]
pub fn logged_positions(store: &str, dir: &Path) -> std::collections::HashMap<String, u64> {
    dealtrail(store, dir, &["export"])
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (
                v["id"].as_str().unwrap().to_string(),
                v["position"].as_u64().unwrap(),
            )
        })
        .collect()
}

/// Waits (up to 60 s) until each subscriber (of [`sse_ids`]) saw positions 1..=`total`, and
/// checks it saw each exactly once, in order.
#[allow(dead_code)]
pub fn assert_saw_every_position(subscribers: &[Arc<Mutex<Vec<u64>>>], total: u64) {
    use std::time::{Duration, Instant};
    let deadline = Instant::now() + Duration::from_secs(60);
    for (i, seen) in subscribers.iter().enumerate() {
        while seen.lock().unwrap().len() < total as usize && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(
            *seen.lock().unwrap(),
            (1..=total).collect::<Vec<_>>(),
            "node {i}'s subscriber"
        );
    }
}
