//! PostgreSQL restarted in the middle of a load (issue #14, SPEC §6): two `dealtrail serve`
//! nodes on one store, eight concurrent appenders, and the server restarted twice under
//! them (`pg_ctl restart -m fast`, then `-m immediate`, a crash and WAL recovery). Every
//! append answers either with its positions or with 503 + `Retry-After`, never anything
//! else; an append refused with 503 is not in the log, an acknowledged one is, at its
//! position; the nodes take appends again by themselves, and an SSE subscriber on each
//! node sees positions 1..N exactly once, in order, across both restarts.
//!
//! The shared server (`DEALTRAIL_TEST_PG`) serves every other test running at the same
//! time, so this test restarts a private server of its own: `initdb` and `pg_ctl` from
//! `DEALTRAIL_PG_BIN` (default `/usr/lib/postgresql/15/bin`), in a temporary directory, on a
//! free port, run as the `postgres` user when the test runs as root (initdb refuses root).
//! Where those programs are missing the test says it was skipped and passes, unless
//! `DEALTRAIL_REQUIRE_PG=1` (CI), where that is a failure.

use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

mod common;

use common::{dealtrail, Node};

const TOKEN: &str = "restart-admin-token-0123456789abcdefgh";
const WRITERS: usize = 8;

/// A PostgreSQL server of this test's own, stopped and removed when dropped.
struct PrivateServer {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
    /// Run its programs as `postgres` (we are root).
    as_postgres: bool,
}

impl PrivateServer {
    /// Creates and starts the server; `None` (said so) when PostgreSQL's programs are not
    /// installed here, unless `DEALTRAIL_REQUIRE_PG=1`.
    fn start() -> Option<PrivateServer> {
        let bin = PathBuf::from(
            std::env::var("DEALTRAIL_PG_BIN")
                .unwrap_or_else(|_| "/usr/lib/postgresql/15/bin".to_string()),
        );
        if !bin.join("initdb").exists() || !bin.join("pg_ctl").exists() {
            let why = format!("no initdb and pg_ctl in {}", bin.display());
            if std::env::var("DEALTRAIL_REQUIRE_PG").is_ok_and(|v| v == "1") {
                panic!("DEALTRAIL_REQUIRE_PG=1 but {why} (set DEALTRAIL_PG_BIN)");
            }
            eprintln!("PostgreSQL restart test skipped: {why} (set DEALTRAIL_PG_BIN)");
            return None;
        }
        let as_postgres = rustix::process::geteuid().is_root();
        let dir = tempfile::tempdir().unwrap();
        if as_postgres {
            run(Command::new("chown").arg("postgres:").arg(dir.path()));
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let server = PrivateServer {
            dir,
            bin,
            port,
            as_postgres,
        };
        let data = server.data();
        run(server
            .command("initdb")
            .args(["-A", "trust", "-U", "postgres", "--no-sync", "-D"])
            .arg(&data));
        server.pg_ctl(&["start"]);
        Some(server)
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// One of PostgreSQL's programs, as the user that may run it.
    fn command(&self, program: &str) -> Command {
        let program = self.bin.join(program);
        if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(program);
            c
        } else {
            Command::new(program)
        }
    }

    /// `pg_ctl <args> -w` on this server (its port, its socket in its own directory).
    fn pg_ctl(&self, args: &[&str]) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c max_connections=40",
            self.port,
            self.dir.path().display()
        );
        run(self
            .command("pg_ctl")
            .args(args)
            .args(["-w", "-t", "60", "-D"])
            .arg(self.data())
            .arg("-l")
            .arg(self.dir.path().join("log"))
            .args(["-o", &options]));
    }

    fn store_url(&self) -> String {
        format!(
            "postgres://postgres@127.0.0.1:{}/postgres?schema=restart",
            self.port
        )
    }
}

impl Drop for PrivateServer {
    fn drop(&mut self) {
        let _ = self
            .command("pg_ctl")
            .args(["stop", "-m", "immediate", "-D"])
            .arg(self.data())
            .output();
    }
}

fn run(c: &mut Command) {
    let out = c.output().unwrap_or_else(|e| panic!("{c:?}: {e}"));
    assert!(
        out.status.success(),
        "{c:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn ev(t: &str, data: Value) -> Value {
    json!({"id": uuid::Uuid::now_v7(), "type": t, "data": data})
}

/// What one append got back.
#[derive(Debug)]
enum Outcome {
    Acknowledged {
        id: String,
        position: u64,
        at: Instant,
    },
    /// 503 with `Retry-After`.
    Refused { id: String },
    /// Anything else: a broken promise (its fields are printed when the test fails).
    #[allow(dead_code)]
    Other { id: String, answer: String },
}

fn append(addr: &str, stream: &str, e: Value) -> Outcome {
    let id = e["id"].as_str().unwrap().to_string();
    let body = json!({ "events": [e] }).to_string();
    let path = format!("/v1/streams/{stream}/events");
    match common::request(addr, "POST", &path, TOKEN, Some(&body)) {
        Ok((status, _, body)) if (200..300).contains(&status) => {
            let v: Value = serde_json::from_str(&body).unwrap();
            Outcome::Acknowledged {
                id,
                position: v["last_position"].as_u64().unwrap(),
                at: Instant::now(),
            }
        }
        Ok((503, head, _)) if head.to_ascii_lowercase().contains("\r\nretry-after: ") => {
            Outcome::Refused { id }
        }
        Ok((status, head, body)) => Outcome::Other {
            id,
            answer: format!("{status}: {head}\n{body}"),
        },
        Err(e) => Outcome::Other {
            id,
            answer: format!("no answer: {e}"),
        },
    }
}

/// Waits until every writer has had an append acknowledged after `since`.
fn wait_until_every_writer_appends(outcomes: &[Arc<Mutex<Vec<Outcome>>>], since: Instant) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let behind = outcomes
            .iter()
            .filter(|o| {
                !o.lock()
                    .unwrap()
                    .iter()
                    .any(|o| matches!(o, Outcome::Acknowledged { at, .. } if *at > since))
            })
            .count();
        if behind == 0 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{behind} writers had no append acknowledged within 60 s of the restart: the nodes did not recover"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn appends_survive_postgres_restarting_under_load() {
    let Some(server) = PrivateServer::start() else {
        return;
    };
    let store = server.store_url();
    let dirs = tempfile::tempdir().unwrap();
    let nodes: Vec<Node> = (0..2)
        .map(|i| Node::start(&store, &dirs.path().join(format!("node{i}")), TOKEN))
        .collect();
    let rep = ev(
        "RepJoined",
        json!({"rep": "wukong", "name": "Wukong", "team": "east"}),
    );
    assert!(matches!(
        append(&nodes[0].addr, "org-acme", rep),
        Outcome::Acknowledged { .. }
    ));
    for w in 0..WRITERS {
        let customer = ev(
            "CustomerRegistered",
            json!({"name": format!("R{w}"), "owner": "wukong"}),
        );
        let stream = format!("customer-R{w}");
        let got = append(&nodes[w % 2].addr, &stream, customer);
        assert!(matches!(got, Outcome::Acknowledged { .. }), "{got:?}");
    }
    let subscribers: Vec<_> = nodes
        .iter()
        .map(|n| common::sse_ids(&n.addr, "from_position=1", TOKEN))
        .collect();

    let stop = Arc::new(AtomicBool::new(false));
    let outcomes: Vec<Arc<Mutex<Vec<Outcome>>>> = (0..WRITERS)
        .map(|_| Arc::new(Mutex::new(Vec::new())))
        .collect();
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let (addr, stop, out) = (nodes[w % 2].addr.clone(), stop.clone(), outcomes[w].clone());
            std::thread::spawn(move || {
                let stream = format!("customer-R{w}");
                while !stop.load(Ordering::Relaxed) {
                    let e = ev("ActivityLogged", json!({"kind": "note", "rep": "wukong"}));
                    let got = append(&addr, &stream, e);
                    let refused = matches!(got, Outcome::Refused { .. });
                    out.lock().unwrap().push(got);
                    if refused {
                        std::thread::sleep(Duration::from_millis(100));
                    }
                }
            })
        })
        .collect();

    std::thread::sleep(Duration::from_millis(1500));
    let mut restarts = Vec::new();
    for mode in ["fast", "immediate"] {
        let started = Instant::now();
        server.pg_ctl(&["restart", "-m", mode]);
        let up = Instant::now();
        wait_until_every_writer_appends(&outcomes, up);
        restarts.push((mode, up - started, up.elapsed()));
        std::thread::sleep(Duration::from_millis(500));
    }
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.join().unwrap();
    }

    let outcomes: Vec<Outcome> = outcomes
        .iter()
        .flat_map(|o| std::mem::take(&mut *o.lock().unwrap()))
        .collect();
    let others: Vec<&Outcome> = outcomes
        .iter()
        .filter(|o| matches!(o, Outcome::Other { .. }))
        .collect();
    assert!(
        others.is_empty(),
        "answers other than 2xx or 503 + Retry-After: {others:#?}"
    );

    let offline = dirs.path().join("offline");
    let log = common::logged_positions(&store, &offline);
    let total = log.len() as u64;
    let mut positions: Vec<u64> = log.values().copied().collect();
    positions.sort_unstable();
    assert_eq!(positions, (1..=total).collect::<Vec<_>>());
    let (mut acknowledged, mut refused) = (0, 0);
    for o in &outcomes {
        match o {
            Outcome::Acknowledged { id, position, .. } => {
                acknowledged += 1;
                assert_eq!(
                    log.get(id),
                    Some(position),
                    "acknowledged {id} lost or moved"
                );
            }
            Outcome::Refused { id } => {
                refused += 1;
                assert_eq!(log.get(id), None, "{id} was refused with 503 yet written");
            }
            Outcome::Other { .. } => {}
        }
    }
    assert!(dealtrail(&store, &offline, &["verify"]).contains(&format!("{total} events verified")));

    common::assert_saw_every_position(&subscribers, total);
    eprintln!(
        "{acknowledged} appends acknowledged, {refused} refused with 503; \
         restarts (mode, pg_ctl took, every writer through again after): {restarts:?}"
    );
}
