//! Connection limits end to end: idle sockets, half-sent request heads and a full house do
//! not lock a normal client out; the keep-alive and header-read timeouts close what they
//! should and nothing else; a live subscription is never cut for being quiet.
//!
//! The first two tests run the real binary with the usual soft limit of 1,024 open files
//! (set with `ulimit -S` in a shell that then `exec`s it), or with a hard limit of 64; the
//! others run the server in this process with short timeouts. This test process opens up to
//! 2,000 sockets itself: it raises its own soft open-file limit to the hard one first.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream as StdStream};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use api::http::connections::ConnectionLimits;
use api::http::{serve, ApiConfig, AppState};
use eventlog::memory::MemoryStore;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

mod common;

const ADMIN: &str = "connections-test-admin-token-0123456789";
/// Bounded wait for anything a test expects to happen.
const WAIT: Duration = Duration::from_secs(10);
const HALF_SENT_HEAD: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: x\r\n";

/// `dealtrail serve` on port 0 in a fresh data directory, started by `sh -c "ulimit_cmd;
/// exec dealtrail ..."`; killed on drop.
struct Server {
    child: Child,
    addr: SocketAddr,
    _output: common::Output,
    _dir: tempfile::TempDir,
}

impl Server {
    fn start(ulimit_cmd: &str, flags: &[&str]) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(format!(r#"{ulimit_cmd} && exec "$0" "$@""#))
            .arg(env!("CARGO_BIN_EXE_dealtrail"))
            .arg("--data")
            .arg(dir.path().join("data"))
            .args(["serve", "--addr", "127.0.0.1:0"])
            .args(flags)
            .env("DEALTRAIL_ADMIN_TOKEN", ADMIN)
            .env("RUST_LOG", "error")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let (addr, output) = common::listening_address(&mut child);
        Server {
            child,
            addr: addr.parse().unwrap(),
            _output: output,
            _dir: dir,
        }
    }

    /// `GET path` on a new connection, as a normal client does: (status, body).
    fn get(&self, path: &str) -> (u16, String) {
        let mut s = StdStream::connect_timeout(&self.addr, WAIT).expect("connect in time");
        s.set_read_timeout(Some(WAIT)).unwrap();
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut raw = String::new();
        s.read_to_string(&mut raw).expect("a response in time");
        status_and_body(&raw)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn status_and_body(raw: &str) -> (u16, String) {
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((raw, ""));
    let status = head.split_whitespace().nth(1).and_then(|c| c.parse().ok());
    (status.unwrap_or(0), body.to_string())
}

/// Raises this process's soft open-file limit to the hard one; returns the limit in force.
#[cfg(target_os = "linux")]
fn raise_own_open_files_limit() -> u64 {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let limit = getrlimit(Resource::Nofile);
    if let Some(hard) = limit.maximum {
        let raised = Rlimit {
            current: Some(hard),
            maximum: Some(hard),
        };
        if setrlimit(Resource::Nofile, raised).is_ok() {
            return hard;
        }
    }
    limit.current.unwrap_or(u64::MAX)
}

/// Whether the server closed `s` (end of stream or reset) within `WAIT`, reading and
/// dropping anything it sent first.
fn closed_by_server(s: &mut StdStream) -> bool {
    s.set_read_timeout(Some(WAIT)).unwrap();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return false
            }
            Err(_) => return true,
        }
    }
}

#[cfg(target_os = "linux")]
#[test]
fn two_thousand_idle_connections_and_half_sent_heads_do_not_lock_out_a_normal_client() {
    let limit = raise_own_open_files_limit();
    // 2,000 idle sockets, 20 half-sent heads, the normal client and this process's own files.
    assert!(
        limit >= 2100,
        "this test needs 2,100 open files; the hard limit is {limit}"
    );
    // The usual soft limit; the hard one stays as it is.
    let server = Server::start("ulimit -S -n 1024", &["--header-read-timeout", "1"]);
    let idle: Vec<StdStream> = (0..2000)
        .map(|i| {
            StdStream::connect_timeout(&server.addr, WAIT)
                .unwrap_or_else(|e| panic!("idle connection {i}: {e}"))
        })
        .collect();
    let mut half_sent: Vec<StdStream> = (0..20)
        .map(|_| {
            let mut s = StdStream::connect_timeout(&server.addr, WAIT).unwrap();
            s.write_all(HALF_SENT_HEAD).unwrap();
            s
        })
        .collect();

    let (status, body) = server.get("/healthz");
    assert_eq!(status, 200, "{body}");
    for (i, s) in half_sent.iter_mut().enumerate() {
        assert!(closed_by_server(s), "half-sent head {i} still open");
    }
    drop(idle);
}

#[cfg(target_os = "linux")]
#[test]
fn out_of_file_descriptors_the_server_closes_waiting_connections_and_keeps_serving() {
    raise_own_open_files_limit();
    // 64 open files in all; a cap far beyond that, so that accepting does run out of them.
    let server = Server::start("ulimit -n 64", &["--max-connections", "1000"]);
    let idle: Vec<StdStream> = (0..100)
        .map(|_| StdStream::connect_timeout(&server.addr, WAIT).unwrap())
        .collect();
    let (status, body) = server.get("/healthz");
    assert_eq!(status, 200, "{body}");
    // And again: the accept loop did not stop after running out once.
    let (status, _) = server.get("/healthz");
    assert_eq!(status, 200);
    drop(idle);
}

/// A server in this process over a memory store; stops when the sender is dropped.
struct InProcess {
    addr: SocketAddr,
    _stop: tokio::sync::oneshot::Sender<()>,
    _dir: tempfile::TempDir,
}

async fn serve_in_process(limits: ConnectionLimits) -> InProcess {
    let dir = tempfile::tempdir().unwrap();
    let config = ApiConfig {
        connections: limits,
        // Quiet subscriptions really are quiet.
        heartbeat: Duration::from_secs(600),
        ..ApiConfig::default()
    };
    let store = Arc::new(MemoryStore::new());
    let (state, _) = AppState::open(store, dir.path(), config, Some(ADMIN)).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(serve(listener, state, async move {
        let _ = stopped.await;
    }));
    InProcess {
        addr,
        _stop: stop,
        _dir: dir,
    }
}

fn limits(max_connections: usize, header_read: u64, keep_alive: u64) -> ConnectionLimits {
    ConnectionLimits {
        max_connections,
        header_read_timeout: Duration::from_secs(header_read),
        keep_alive_timeout: Duration::from_secs(keep_alive),
    }
}

/// Whether the server closed `s` within `WAIT`, reading and dropping anything it sent first.
async fn closed(s: &mut TcpStream) -> bool {
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(WAIT, s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
            Err(_) => return false,
        }
    }
}

/// Whether `s` is still open: nothing to read, no end of stream.
fn still_open(s: &TcpStream) -> bool {
    let mut buf = [0u8; 1];
    matches!(s.try_read(&mut buf), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
}

/// Reads until `needle` has arrived; `false` if the stream ends or `WAIT` passes first.
async fn read_until(s: &mut TcpStream, seen: &mut Vec<u8>, needle: &str) -> bool {
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(seen).contains(needle) {
        match tokio::time::timeout(WAIT, s.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => seen.extend_from_slice(&buf[..n]),
            _ => return false,
        }
    }
    true
}

async fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(WAIT, s.read_to_end(&mut raw))
        .await
        .expect("a response in time")
        .unwrap();
    status_and_body(&String::from_utf8_lossy(&raw))
}

/// Appends one event as admin on a new connection; the response's status.
async fn append_lead(addr: SocketAddr) -> u16 {
    let mut w = TcpStream::connect(addr).await.unwrap();
    let body = r#"{"events":[{"type":"LeadCaptured","data":{"channel":"web","name":"n"}}]}"#;
    let append = format!(
        "POST /v1/streams/lead-L1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {ADMIN}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    w.write_all(append.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(WAIT, w.read_to_end(&mut raw))
        .await
        .expect("a response in time")
        .unwrap();
    status_and_body(&String::from_utf8_lossy(&raw)).0
}

/// Opens a live subscription and reads its response head into `seen`.
async fn subscribe(addr: SocketAddr, seen: &mut Vec<u8>) -> TcpStream {
    let mut sub = TcpStream::connect(addr).await.unwrap();
    let req =
        format!("GET /v1/subscribe HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {ADMIN}\r\n\r\n");
    sub.write_all(req.as_bytes()).await.unwrap();
    assert!(
        read_until(&mut sub, seen, "\r\n\r\n").await,
        "the response head"
    );
    assert!(
        seen.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(seen)
    );
    sub
}

#[tokio::test]
async fn a_half_sent_head_is_closed_after_the_header_timeout_while_a_silent_connection_may_wait() {
    let server = serve_in_process(limits(100, 1, 600)).await;
    let mut silent = TcpStream::connect(server.addr).await.unwrap();
    let mut half = TcpStream::connect(server.addr).await.unwrap();
    half.write_all(HALF_SENT_HEAD).await.unwrap();
    assert!(closed(&mut half).await, "the half-sent head is closed");
    // Longer than the header-read timeout, and nothing sent: still waiting, still open.
    assert!(
        still_open(&silent),
        "a silent connection waits for the keep-alive timeout"
    );
    silent
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(WAIT, silent.read_to_end(&mut raw))
        .await
        .unwrap()
        .unwrap();
    assert!(
        raw.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&raw)
    );
}

#[tokio::test]
async fn a_kept_alive_connection_serves_requests_and_is_closed_once_idle_for_the_timeout() {
    let server = serve_in_process(limits(100, 600, 1)).await;
    let mut s = TcpStream::connect(server.addr).await.unwrap();
    let mut seen = Vec::new();
    for _ in 0..2 {
        seen.clear();
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        assert!(read_until(&mut s, &mut seen, "last_position").await);
        assert!(seen.starts_with(b"HTTP/1.1 200"));
    }
    assert!(closed(&mut s).await, "idle after its requests: closed");
    // A connection that never sends anything is closed too.
    let mut silent = TcpStream::connect(server.addr).await.unwrap();
    assert!(closed(&mut silent).await, "silent from the start: closed");
}

#[tokio::test]
async fn a_quiet_live_subscription_outlives_both_timeouts() {
    let server = serve_in_process(limits(100, 1, 1)).await;
    let mut seen = Vec::new();
    let mut sub = subscribe(server.addr, &mut seen).await;
    // Nothing to send for well over both timeouts (heartbeats every 10 minutes).
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(append_lead(server.addr).await, 201);
    assert!(
        read_until(&mut sub, &mut seen, "event: LeadCaptured").await,
        "the subscription is still open and delivers: {}",
        String::from_utf8_lossy(&seen)
    );
}

#[tokio::test]
async fn at_the_cap_the_longest_waiting_connections_make_room_and_busy_ones_stay() {
    let cap = 8;
    let server = serve_in_process(limits(cap, 600, 600)).await;
    // A live subscription first: the oldest connection, but busy.
    let mut seen = Vec::new();
    let mut sub = subscribe(server.addr, &mut seen).await;
    let mut idle = Vec::new();
    for _ in 0..20 {
        idle.push(TcpStream::connect(server.addr).await.unwrap());
    }
    // A normal client gets through, though all of them came first.
    let (status, body) = get(server.addr, "/healthz").await;
    assert_eq!(status, 200, "{body}");
    // At most `cap` open (the subscription, the newest idle ones, and the client's slot
    // before it closed): at least 20 + 1 - cap idle ones were closed.
    let deadline = tokio::time::Instant::now() + WAIT;
    let closed_now = |idle: &Vec<TcpStream>| idle.iter().filter(|s| !still_open(s)).count();
    while closed_now(&idle) < 21 - cap && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        closed_now(&idle) > 20 - cap,
        "{} of 20 closed",
        closed_now(&idle)
    );
    // The subscription was never chosen: it still delivers.
    assert_eq!(append_lead(server.addr).await, 201);
    assert!(read_until(&mut sub, &mut seen, "event: LeadCaptured").await);
}
