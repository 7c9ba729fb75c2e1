//! Storage faults, with the real binary: damaged files make `verify` exit 4 (never a panic,
//! never a generic failure), and a full disk makes `serve` answer 507 and `/healthz` 503
//! until space is freed, after which it goes on by itself without losing an acknowledged
//! event.
//!
//! The full-disk test mounts a small tmpfs, which needs root (CI runs as root); elsewhere it
//! says so and passes.

#[path = "../../eventlog/tests/common/disk.rs"]
mod disk;

use std::io::{BufRead, Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use disk::{copy_dir, Tmpfs};

const TOKEN: &str = "storage-faults-admin-token-0123456789abcdef";
const SMALL_LOG: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../replay-tests/logs/v1-small.ndjson"
);

#[path = "support/cli.rs"]
mod cli;
use cli::dealtrail;

/// A store with the small recorded log, written by one process: sled has not written its
/// snapshot yet (it does when it opens a store again).
fn small_store(data: &Path) {
    let out = dealtrail(data, &["import", SMALL_LOG]);
    assert!(out.status.success(), "{out:?}");
}

fn sled_snapshots(data: &Path) -> usize {
    std::fs::read_dir(data)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with("snap.")
        })
        .count()
}

/// Flips one bit of `file` at `offset`.
fn flip(file: &Path, offset: u64) {
    let mut bytes = std::fs::read(file).unwrap();
    bytes[offset as usize] ^= 1 << (offset % 8);
    std::fs::write(file, bytes).unwrap();
}

/// For bits flipped at `offsets` of `db`, one at a time: `verify` exits 4 naming the damage,
/// or passes with every event (the bit was in space sled does not use). Returns how many
/// exited 4.
fn verify_each_flip(store: &Path, offsets: impl Iterator<Item = u64>) -> usize {
    let mut damaged = 0;
    for offset in offsets {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        copy_dir(store, &data);
        flip(&data.join("db"), offset);
        let out = dealtrail(&data, &["verify"]);
        let (stdout, stderr) = (
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
        );
        match out.status.code() {
            Some(0) => assert!(
                stdout.contains("ok: 49 events"),
                "offset {offset}: {stdout}"
            ),
            Some(4) => {
                assert!(
                    stderr.contains("corrupt log at position") || stderr.contains("damaged store"),
                    "offset {offset}: {stderr}"
                );
                damaged += 1;
            }
            code => panic!("offset {offset}: exit {code:?}\n{stderr}"),
        }
    }
    damaged
}

#[test]
fn a_flipped_bit_in_sleds_files_makes_verify_exit_4_never_panic() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    small_store(&store);
    assert_eq!(sled_snapshots(&store), 0);
    let len = std::fs::metadata(store.join("db")).unwrap().len();
    let damaged = verify_each_flip(&store, (0..len.min(24_000)).step_by(797));
    assert!(damaged > 0, "no flip was found");
}

/// The same once sled has written its snapshot (opening the store again).
#[test]
fn a_flipped_bit_in_a_store_with_a_sled_snapshot_makes_verify_exit_4_never_panic() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    small_store(&store);
    let out = dealtrail(&store, &["verify"]);
    assert!(out.status.success(), "{out:?}");
    assert!(sled_snapshots(&store) > 0, "sled wrote no snapshot");
    let len = std::fs::metadata(store.join("db")).unwrap().len();
    let damaged = verify_each_flip(&store, (0..len.min(24_000)).step_by(797));
    assert!(damaged > 0, "no flip was found");
}

/// `serve` on `data`, stopped (SIGTERM) when dropped.
struct Server {
    child: Child,
    addr: String,
}

impl Server {
    fn start(data: &Path) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_dealtrail"))
            .arg("--data")
            .arg(data)
            .args(["serve", "--addr", "127.0.0.1:0"])
            .env("DEALTRAIL_ADMIN_TOKEN", TOKEN)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
        let addr = loop {
            let line = lines
                .next()
                .expect("the server prints its address")
                .unwrap();
            if let Some(rest) = line.strip_prefix("dealtrail listening on http://") {
                break rest.split_whitespace().next().unwrap().to_string();
            }
        };
        // The server prints more: keep reading (a closed pipe would fail its prints).
        std::thread::spawn(move || lines.for_each(drop));
        Server { child, addr }
    }

    /// One HTTP/1.1 request; (status, body).
    fn call(&self, method: &str, path: &str, body: &str) -> (u16, String) {
        let mut s = std::net::TcpStream::connect(&self.addr).unwrap();
        write!(
            s,
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {TOKEN}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.addr,
            body.len()
        )
        .unwrap();
        let mut raw = String::new();
        s.read_to_string(&mut raw).unwrap();
        let (head, body) = raw.split_once("\r\n\r\n").expect("a whole response");
        let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
        (status, body.to_string())
    }

    /// Appends a note (of some 8 kB, to fill the disk sooner) on a customer of the small
    /// log; (status, body).
    fn append_note(&self, id: &str) -> (u16, String) {
        let body = serde_json::json!({ "events": [{
            "id": id,
            "type": "ActivityLogged",
            "data": { "kind": "visit", "rep": "wukong", "summary": "disk test ".repeat(800) },
        }]});
        self.call(
            "POST",
            "/v1/streams/customer-C-77/events",
            &body.to_string(),
        )
    }

    fn stop(mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Appends a note with a new id; an acknowledged one joins `acked` (position, id).
fn append(server: &Server, acked: &mut Vec<(u64, String)>) -> (u16, String) {
    let id = uuid::Uuid::now_v7().to_string();
    let (status, body) = server.append_note(&id);
    if status == 201 {
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        acked.push((v["first_position"].as_u64().unwrap(), id));
    }
    (status, body)
}

#[test]
fn a_full_disk_answers_507_and_the_service_recovers_by_itself() {
    let Some(disk) = Tmpfs::mount(64) else {
        return;
    };
    let data = disk.dir.join("data");
    let out = dealtrail(&data, &["import", SMALL_LOG]);
    assert!(out.status.success(), "{out:?}");
    let server = Server::start(&data);
    let mut acked: Vec<(u64, String)> = Vec::new();
    for _ in 0..5 {
        let (status, body) = append(&server, &mut acked);
        assert_eq!(status, 201, "{body}");
    }
    let filler = disk.fill();
    let deadline = Instant::now() + Duration::from_secs(60);
    let refused = loop {
        let (status, body) = append(&server, &mut acked);
        match status {
            201 => {}
            _ => break (status, body),
        }
        assert!(Instant::now() < deadline, "no append was refused");
        std::thread::sleep(Duration::from_millis(5));
    };
    assert_eq!(refused.0, 507, "{}", refused.1);
    let problem: serde_json::Value = serde_json::from_str(&refused.1).unwrap();
    assert_eq!(
        problem["type"], "urn:dealtrail:problem:storage-full",
        "{problem}"
    );
    let (status, body) = server.call("GET", "/healthz", "");
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("storage-full"), "{body}");

    std::fs::remove_file(filler).unwrap();
    let (status, body) = append(&server, &mut acked);
    assert_eq!(status, 201, "{body}");
    let (status, body) = server.call("GET", "/healthz", "");
    assert_eq!(status, 200, "{body}");
    for _ in 0..5 {
        let (status, body) = append(&server, &mut acked);
        assert_eq!(status, 201, "{body}");
    }
    server.stop();

    let out = dealtrail(&data, &["verify"]);
    assert!(out.status.success(), "{out:?}");
    let out = dealtrail(&data, &["export"]);
    assert!(out.status.success(), "{out:?}");
    let log: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    for (position, id) in &acked {
        let ev = &log[*position as usize - 1];
        assert_eq!(ev["id"], id.as_str(), "position {position}");
    }
}
