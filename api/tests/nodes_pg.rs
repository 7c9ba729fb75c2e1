//! Three `dealtrail serve` processes on one PostgreSQL store (SPEC §6): 48 concurrent
//! writers spread over them, an SSE subscriber on each. Afterwards every subscriber saw
//! positions 1..N exactly once and in order, every acknowledged event id is in the log, and
//! every node's report is byte for byte the offline report of the same log.
//!
//! PostgreSQL as in eventlog's contract suite: `DEALTRAIL_TEST_PG` (default
//! `postgres://postgres@127.0.0.1:5432/test`), a schema of its own dropped afterwards;
//! skipped (said so) where no server answers, unless `DEALTRAIL_REQUIRE_PG=1`.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

mod common;

const TOKEN: &str = "nodes-admin-token-0123456789abcdefgh";
const NODES: usize = 3;
const WRITERS: usize = 48;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn pg_url() -> String {
    std::env::var("DEALTRAIL_TEST_PG")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_string())
}

/// Runs `sql` on the test server; `Err` if it cannot be reached.
fn sql(statement: &str) -> Result<(), String> {
    let statement = statement.to_string();
    runtime().block_on(async move {
        let url = pg_url();
        let connect = tokio_postgres::connect(&url, tokio_postgres::NoTls);
        let (client, conn) = tokio::time::timeout(Duration::from_secs(5), connect)
            .await
            .map_err(|_| "no answer within 5 s".to_string())?
            .map_err(|e| e.to_string())?;
        tokio::spawn(conn);
        client
            .batch_execute(&statement)
            .await
            .map_err(|e| e.to_string())
    })
}

/// A schema of its own, dropped when this is dropped.
struct Schema(String);

impl Schema {
    fn new() -> Option<Schema> {
        if let Err(e) = sql("SELECT 1") {
            if std::env::var("DEALTRAIL_REQUIRE_PG").is_ok_and(|v| v == "1") {
                panic!(
                    "DEALTRAIL_REQUIRE_PG=1 but no PostgreSQL server answers at {}: {e}",
                    pg_url()
                );
            }
            eprintln!("PostgreSQL tests skipped: no server at {} ({e})", pg_url());
            return None;
        }
        Some(Schema(format!("n_{}", uuid::Uuid::new_v4().simple())))
    }

    fn url(&self) -> String {
        let base = pg_url();
        let sep = if base.contains('?') { '&' } else { '?' };
        format!("{base}{sep}schema={}", self.0)
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        let _ = sql(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.0));
    }
}

use common::{dealtrail, Node};

/// One HTTP/1.0 exchange (the body is the rest of the connection): (status, body).
fn http(addr: &str, method: &str, path: &str, body: Option<&Value>) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    write!(
        s,
        "{method} {path} HTTP/1.0\r\nHost: {addr}\r\nAuthorization: Bearer {TOKEN}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").expect("a full response");
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, body.to_string())
}

/// Appends; the positions acknowledged, or `None` on a non-2xx answer.
fn append(addr: &str, stream: &str, events: Vec<Value>) -> Option<(u64, u64)> {
    let (status, body) = http(
        addr,
        "POST",
        &format!("/v1/streams/{stream}/events"),
        Some(&json!({ "events": events })),
    );
    if !(200..300).contains(&status) {
        eprintln!("{stream}: {status} {body}");
        return None;
    }
    let v: Value = serde_json::from_str(&body).unwrap();
    Some((v["first_position"].as_u64()?, v["last_position"].as_u64()?))
}

fn subscribe(addr: &str, query: &str) -> Arc<Mutex<Vec<u64>>> {
    common::sse_ids(addr, query, TOKEN)
}

fn ev(t: &str, data: Value) -> Value {
    json!({"id": uuid::Uuid::now_v7(), "type": t, "data": data})
}

#[test]
fn three_nodes_share_one_log() {
    let Some(schema) = Schema::new() else {
        return;
    };
    let store = schema.url();
    let dirs = tempfile::tempdir().unwrap();
    let nodes: Vec<Node> = (0..NODES)
        .map(|i| Node::start(&store, &dirs.path().join(format!("node{i}")), TOKEN))
        .collect();
    let rep = ev(
        "RepJoined",
        json!({"rep": "wukong", "name": "Wukong", "team": "east"}),
    );
    append(&nodes[0].addr, "org-acme", vec![rep]).expect("the rep joins");
    let subscribers: Vec<_> = nodes
        .iter()
        .map(|n| subscribe(&n.addr, "from_position=1"))
        .collect();

    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let addr = nodes[w % NODES].addr.clone();
            std::thread::spawn(move || {
                let customer = format!("W{w}");
                let steps = vec![
                    (format!("customer-{customer}"), ev("CustomerRegistered", json!({"name": customer, "owner": "wukong"}))),
                    (format!("deal-D{w}"), ev("DealOpened", json!({"customer_id": customer, "owner": "wukong", "title": "t", "amount": 100 + w, "stage": "qualified"}))),
                    (format!("customer-{customer}"), ev("ActivityLogged", json!({"kind": "call", "rep": "wukong"}))),
                    (format!("deal-D{w}"), ev("DealStageChanged", json!({"from": "qualified", "to": "quote"}))),
                    (format!("deal-D{w}"), if w % 2 == 0 { ev("DealWon", json!({"amount": 100 + w})) } else { ev("DealLost", json!({"reason": "price"})) }),
                ];
                let mut acknowledged = Vec::new();
                for (stream, e) in steps {
                    let id = e["id"].as_str().unwrap().to_string();
                    let (_, last) = append(&addr, &stream, vec![e]).expect("accepted");
                    acknowledged.push((id, last));
                }
                acknowledged
            })
        })
        .collect();
    let acknowledged: Vec<(String, u64)> = writers
        .into_iter()
        .flat_map(|w| w.join().unwrap())
        .collect();
    let total = 1 + (WRITERS * 5) as u64;
    assert_eq!(acknowledged.iter().map(|a| a.1).max(), Some(total));

    // Every subscriber: 1..N, once each, in order.
    common::assert_saw_every_position(&subscribers, total);

    // Every acknowledged id is in the log, at the position it was acknowledged at.
    let offline = dirs.path().join("offline");
    let log = common::logged_positions(&store, &offline);
    assert_eq!(log.len() as u64, total);
    for (id, position) in &acknowledged {
        assert_eq!(log.get(id), Some(position), "acknowledged {id}");
    }
    assert!(dealtrail(&store, &offline, &["verify"]).contains(&format!("{total} events verified")));

    // Each node's report equals the offline report of the log, byte for byte (once the
    // node's read model has caught up).
    for report in ["funnel", "pipeline?as_of=2030-01-01", "win-loss"] {
        let (name, query) = report.split_once('?').unwrap_or((report, ""));
        let mut args = vec!["report", name, "--json"];
        if !query.is_empty() {
            args.extend(["--as-of", "2030-01-01"]);
        }
        let expected = dealtrail(&store, &offline, &args);
        for (i, node) in nodes.iter().enumerate() {
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                let (status, body) = http(
                    &node.addr,
                    "GET",
                    &format!("/v1/reports/{name}?{query}"),
                    None,
                );
                assert_eq!(status, 200, "{body}");
                if body.trim_end() == expected.trim_end() {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "node {i}'s {name} report:\n{body}\nexpected:\n{expected}"
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }

    // A token issued on one node works on the others (tokens live in the store).
    let (status, body) = http(
        &nodes[1].addr,
        "POST",
        "/v1/tokens",
        Some(&json!({"role": "analyst"})),
    );
    assert_eq!(status, 201, "{body}");
    let token: Value = serde_json::from_str(&body).unwrap();
    let token = token["token"].as_str().unwrap();
    for node in &nodes {
        let mut s = TcpStream::connect(&node.addr).unwrap();
        write!(
            s,
            "GET /v1/reports/funnel HTTP/1.0\r\nAuthorization: Bearer {token}\r\n\r\n"
        )
        .unwrap();
        let mut raw = String::new();
        s.read_to_string(&mut raw).unwrap();
        assert!(
            raw.starts_with("HTTP/1.0 200") || raw.starts_with("HTTP/1.1 200"),
            "{}",
            &raw[..raw.len().min(200)]
        );
    }
    drop(nodes);
}

/// A node killed with `kill -9` in the middle of a load (perhaps holding the head lock in a
/// transaction) does not stop the others: the server ends its transaction when its
/// connection drops, the other nodes' writers all get through, and the log verifies.
#[test]
fn a_node_killed_mid_load_does_not_stop_the_others() {
    let Some(schema) = Schema::new() else {
        return;
    };
    let store = schema.url();
    let dirs = tempfile::tempdir().unwrap();
    let mut nodes: Vec<Node> = (0..NODES)
        .map(|i| Node::start(&store, &dirs.path().join(format!("node{i}")), TOKEN))
        .collect();
    let rep = ev(
        "RepJoined",
        json!({"rep": "wukong", "name": "Wukong", "team": "east"}),
    );
    append(&nodes[0].addr, "org-acme", vec![rep]).expect("the rep joins");
    let writers: Vec<_> = (0..12)
        .map(|w| {
            let addr = nodes[w % NODES].addr.clone();
            std::thread::spawn(move || {
                let stream = format!("customer-K{w}");
                let first = ev(
                    "CustomerRegistered",
                    json!({"name": "k", "owner": "wukong"}),
                );
                let mut acknowledged = Vec::new();
                let mut events = vec![first];
                for _ in 0..40 {
                    let e = events.pop().unwrap_or_else(|| {
                        ev("ActivityLogged", json!({"kind": "note", "rep": "wukong"}))
                    });
                    let id = e["id"].as_str().unwrap().to_string();
                    // Node 2's writers fail once it is gone (connection refused or cut).
                    let sent = std::panic::catch_unwind(|| append(&addr, &stream, vec![e]));
                    match sent {
                        Ok(Some((_, last))) => acknowledged.push((id, last)),
                        _ if w % NODES == 2 => break,
                        other => panic!("writer {w} on a live node: {other:?}"),
                    }
                }
                acknowledged
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let _ = nodes[2].child.kill(); // SIGKILL
    let acknowledged: Vec<(String, u64)> = writers
        .into_iter()
        .flat_map(|w| w.join().unwrap())
        .collect();
    let on_live_nodes = 8 * 40;
    assert!(
        acknowledged.len() >= on_live_nodes,
        "{}",
        acknowledged.len()
    );
    let offline = dirs.path().join("offline");
    let log = common::logged_positions(&store, &offline);
    for (id, position) in &acknowledged {
        assert_eq!(log.get(id), Some(position), "acknowledged {id}");
    }
    let total = log.len();
    assert!(dealtrail(&store, &offline, &["verify"]).contains(&format!("{total} events verified")));
    // The survivors still take appends.
    append(
        &nodes[0].addr,
        "customer-K0",
        vec![ev(
            "ActivityLogged",
            json!({"kind": "note", "rep": "wukong"}),
        )],
    )
    .expect("node 0 still appends");
    nodes.truncate(2);
}

/// `copy --to` moves a log from sled to PostgreSQL and back: the same events, streams and
/// head hash (verified on both sides by the command itself), the same reports; a read-only
/// command on a PostgreSQL schema that holds no store refuses it (exit 2), creating nothing.
#[test]
fn copy_moves_a_log_to_postgres_and_back() {
    let Some(schema) = Schema::new() else {
        return;
    };
    let store = schema.url();
    let dirs = tempfile::tempdir().unwrap();
    let sled = dirs.path().join("sled");
    let log = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../replay-tests/logs/v1-small.ndjson"
    ))
    .unwrap();
    // D-1002 is in USD and lost in June: the win-loss report needs June's USD rate.
    let rate = r#"{"id":"00000000-0000-4000-8000-000000000001","stream":"org-acme","type":"ExchangeRateSet","occurred_at":"2026-07-01T00:00:00Z","actor":"tangseng","data":{"currency":"USD","month":"2026-06","rate":7.2}}"#;
    let log = log + rate + "\n";
    let file = dirs.path().join("log.ndjson");
    std::fs::write(&file, &log).unwrap();
    let sled_url = format!("sled:{}", sled.display());
    let node = dirs.path().join("node");
    let run = |store: &str, args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_dealtrail"))
            .args(["--store", store, "--data"])
            .arg(&node)
            .args(args)
            .output()
            .unwrap()
    };

    let missing = run(&store, &["report", "funnel"]);
    assert_eq!(
        missing.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&missing.stderr)
    );
    assert!(String::from_utf8_lossy(&missing.stderr).contains("holds no dealtrail store"));

    assert!(run(&sled_url, &["import", file.to_str().unwrap()])
        .status
        .success());
    let to_pg = dealtrail(&sled_url, &node, &["copy", "--to", &store]);
    let lines: Vec<&str> = to_pg.lines().collect();
    assert!(
        lines.iter().any(|l| l.starts_with("ok: both verified")),
        "{to_pg}"
    );
    let events = log.lines().filter(|l| !l.trim().is_empty()).count();
    assert!(
        lines[0].contains(&format!("source: {events} events")),
        "{to_pg}"
    );
    assert_eq!(
        lines[0]["source: ".len()..],
        lines[1]["copy:   ".len()..],
        "{to_pg}"
    );

    let back = dirs.path().join("back");
    let back_url = format!("sled:{}", back.display());
    let to_sled = dealtrail(&store, &node, &["copy", "--to", &back_url]);
    assert_eq!(
        to_sled.lines().next(),
        to_pg
            .lines()
            .nth(1)
            .map(|l| l.replace("copy:   ", "source: "))
            .as_deref()
    );

    // A second copy into a store that now holds events is refused.
    let again = run(&sled_url, &["copy", "--to", &store]);
    assert_eq!(again.status.code(), Some(2));

    for report in ["funnel", "win-loss", "pipeline"] {
        let args = ["report", report, "--json", "--as-of", "2026-08-01"];
        let from_sled = dealtrail(&sled_url, &node, &args);
        assert_eq!(dealtrail(&store, &node, &args), from_sled, "{report}");
        assert_eq!(dealtrail(&back_url, &node, &args), from_sled, "{report}");
    }
    let exported = dealtrail(&store, &node, &["export"]);
    assert_eq!(exported, dealtrail(&sled_url, &node, &["export"]));
}

/// Consumers managed on one node are the same on the other (SPEC §6): the list and its lag,
/// a reset backwards that a subscription on the other node resumes from, the lag gauge, a
/// delete.
#[test]
fn consumers_are_managed_alike_on_every_node() {
    let Some(schema) = Schema::new() else {
        return;
    };
    let store = schema.url();
    let dirs = tempfile::tempdir().unwrap();
    let (a, b) = (
        Node::start(&store, &dirs.path().join("a"), TOKEN),
        Node::start(&store, &dirs.path().join("b"), TOKEN),
    );
    assert_eq!(http(&a.addr, "PUT", "/v1/consumers/billing", None).0, 201);
    let events: Vec<_> = (0..4)
        .map(|i| ev("CustomerUpdated", json!({"industry": format!("i{i}")})))
        .collect();
    let mut all = vec![ev("CustomerRegistered", json!({"name": "c"}))];
    all.extend(events);
    assert_eq!(append(&a.addr, "customer-C1", all), Some((1, 5)));
    let ack = json!({"position": 4});
    assert_eq!(
        http(&a.addr, "POST", "/v1/consumers/billing/ack", Some(&ack)).0,
        200
    );

    let (status, body) = http(&b.addr, "GET", "/v1/consumers", None);
    assert_eq!(status, 200);
    let list: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        list,
        json!({"consumers": [{"name": "billing", "position": 4, "lag": 1}], "head": 5})
    );

    let back = json!({"position": 1});
    let (status, body) = http(&b.addr, "POST", "/v1/consumers/billing/reset", Some(&back));
    assert_eq!(status, 200, "{body}");
    let (_, metrics) = http(&a.addr, "GET", "/metrics", None);
    assert!(
        metrics
            .lines()
            .any(|l| l == "dealtrail_consumer_lag_events{consumer=\"billing\"} 4"),
        "{metrics}"
    );
    let seen = subscribe(&a.addr, "consumer=billing");
    let deadline = Instant::now() + Duration::from_secs(10);
    while seen.lock().unwrap().len() < 4 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(*seen.lock().unwrap(), vec![2, 3, 4, 5]);

    let past = json!({"position": 6});
    assert_eq!(
        http(&a.addr, "POST", "/v1/consumers/billing/reset", Some(&past)).0,
        422
    );
    assert_eq!(
        http(&a.addr, "DELETE", "/v1/consumers/billing", None).0,
        204
    );
    assert_eq!(
        http(&b.addr, "DELETE", "/v1/consumers/billing", None).0,
        404
    );
    let (_, body) = http(&b.addr, "GET", "/v1/consumers", None);
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["consumers"],
        json!([])
    );
}
