//! What the tests that run the `dealtrail` binary share.

use std::io::{BufRead, BufReader, Lines};
use std::process::{Child, ChildStdout};

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
