//! The PostgreSQL store against the plain baseline a user would write instead, in one run.
//! Plain timing, printed; nothing asserted.
//!
//! `cargo bench -p eventlog --bench pg` (`-- --quick` for short phases). The server is
//! `DEALTRAIL_TEST_PG` (default `postgres://postgres@127.0.0.1:5432/test`); everything lives
//! in a schema of its own, dropped at the end.
//!
//! - baseline: 64 clients, each on its own connection, each `INSERT`ing one row per
//!   transaction (autocommit) into an events table with a `bigserial` position and a unique
//!   (stream, version) index. (Its positions are what we avoid: taken at insert, visible at
//!   commit, so out of order and with gaps on failure.)
//! - dealtrail: 64 concurrent single-event appends on one node, then spread over 3 nodes
//!   (3 stores on the schema); 100-event batches; then catch-up reads of the whole log
//!   (`read_all` pages, and a subscription from position 1).
//!
//! The baseline and the one-node phase alternate twice so the machine's drift falls on both.

use std::sync::Arc;
use std::time::{Duration, Instant};

use eventlog::{EnvelopeOnly, EventStore, ExpectedVersion, Filter, PgStore, ProposedEvent};
use futures::StreamExt;
use serde_json::json;

fn event(n: u64) -> ProposedEvent {
    ProposedEvent {
        id: None,
        event_type: "ActivityLogged".into(),
        occurred_at: None,
        actor: Some("wukong".into()),
        data: json!({
            "kind": "call", "rep": "wukong", "direction": "outbound",
            "duration_s": 320 + n % 60, "outcome": "interested",
            "summary": "Discussed the quote; follow up next week"
        })
        .into(),
        metadata: Some(
            serde_json::Map::from_iter([("correlation_id".to_string(), json!(format!("c-{n}")))])
                .into(),
        ),
        recorded_at: None,
    }
}

async fn connect(url: &str) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .expect("connect to PostgreSQL");
    tokio::spawn(conn);
    client
}

/// 64 clients inserting single rows for `duration`: events/s.
async fn baseline(url: &str, schema: &str, round: u32, duration: Duration) -> f64 {
    let start = Instant::now();
    let tasks: Vec<_> = (0..64u64)
        .map(|w| {
            let (url, schema) = (url.to_string(), schema.to_string());
            tokio::spawn(async move {
                let client = connect(&url).await;
                let insert = client
                    .prepare(&format!(
                        "INSERT INTO {schema}.baseline (id, stream, version, type, data) \
                         VALUES ($1, $2, $3, $4, $5::text::jsonb)"
                    ))
                    .await
                    .unwrap();
                let stream = format!("deal-B{round}-{w}");
                let mut n = 0i64;
                while start.elapsed() < duration {
                    let data = serde_json::to_string(&event(n as u64).data).unwrap();
                    client
                        .execute(
                            &insert,
                            &[&uuid::Uuid::now_v7(), &stream, &n, &"ActivityLogged", &data],
                        )
                        .await
                        .unwrap();
                    n += 1;
                }
                n as u64
            })
        })
        .collect();
    let mut rows = 0;
    for t in tasks {
        rows += t.await.unwrap();
    }
    rows as f64 / start.elapsed().as_secs_f64()
}

/// The old read path: the rows of a query, then each checked and decoded.
async fn query_page(c: &tokio_postgres::Client, from: u64) -> Vec<eventlog::RecordedEvent> {
    let rows = c
        .query(
            "SELECT position, record, crc FROM events WHERE position >= $1 ORDER BY position LIMIT 10000",
            &[&(from as i64)],
        )
        .await
        .unwrap();
    rows.iter()
        .map(|r| {
            let (position, bytes, crc): (i64, &[u8], i32) = (r.get(0), r.get(1), r.get(2));
            assert_eq!(crc32fast::hash(bytes), crc as u32);
            let ev = eventlog::record::decode_record(bytes).unwrap();
            assert_eq!(ev.position, position as u64);
            ev
        })
        .collect()
}

/// The server processes of the connections named `application_name`.
async fn server_pids(admin: &tokio_postgres::Client, application_name: &str) -> Vec<i32> {
    admin
        .query(
            "SELECT pid FROM pg_stat_activity WHERE application_name = $1",
            &[&application_name],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

/// CPU time in ns of a process's threads (`/proc/<pid>/task/*/schedstat`), if readable.
fn cpu_ns(pid: &str) -> Option<u64> {
    let mut sum = 0;
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).ok()? {
        let stat = std::fs::read_to_string(task.ok()?.path().join("schedstat")).ok()?;
        sum += stat.split_whitespace().next()?.parse::<u64>().ok()?;
    }
    Some(sum)
}

/// A phase's wall clock, and CPU of this process and of the given server processes.
struct Cpu {
    wall: Instant,
    client: Option<u64>,
    server: Vec<(String, Option<u64>)>,
}

impl Cpu {
    fn start(server: Vec<i32>) -> Cpu {
        Cpu {
            server: server
                .into_iter()
                .map(|p| (p.to_string(), cpu_ns(&p.to_string())))
                .collect(),
            client: cpu_ns("self"),
            wall: Instant::now(),
        }
    }

    fn print(self, what: &str, events: u64) {
        let secs = self.wall.elapsed().as_secs_f64();
        let per = |ns: Option<u64>| {
            ns.map_or("n/a".into(), |ns| {
                format!("{:.2}", ns as f64 / events as f64 / 1000.0)
            })
        };
        let client = per(cpu_ns("self").zip(self.client).map(|(b, a)| b - a));
        let server: Option<u64> = self
            .server
            .iter()
            .map(|(p, a)| Some(cpu_ns(p)? - (*a)?))
            .sum();
        println!(
            "{what:<42} {:>9.0} events/s  ({events} events; CPU µs/event: client {client}, server {})",
            events as f64 / secs,
            per(server)
        );
    }
}

/// `writers` tasks spread over `nodes`, `batch` events per append, for `duration`: events/s.
async fn appends(
    nodes: &[Arc<PgStore>],
    writers: u64,
    batch: u64,
    tag: &str,
    duration: Duration,
) -> f64 {
    let start = Instant::now();
    let tasks: Vec<_> = (0..writers)
        .map(|w| {
            let store = nodes[w as usize % nodes.len()].clone();
            let stream = format!("deal-{tag}{w}");
            tokio::spawn(async move {
                let mut n = 0u64;
                while start.elapsed() < duration {
                    let events = (0..batch).map(|k| event(n + k)).collect();
                    store
                        .append(&stream, ExpectedVersion::Any, events)
                        .await
                        .expect("append");
                    n += batch;
                }
                n
            })
        })
        .collect();
    let mut events = 0;
    for t in tasks {
        events += t.await.unwrap();
    }
    events as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let duration = Duration::from_millis(if quick { 1000 } else { 4000 });
    let base = std::env::var("DEALTRAIL_TEST_PG")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_string());
    let schema = format!("bench_{}", uuid::Uuid::new_v4().simple());
    let sep = if base.contains('?') { '&' } else { '?' };
    let url = format!("{base}{sep}schema={schema}");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    println!(
        "PostgreSQL store benchmark ({} cores, {duration:?} a phase, server {})",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        base.split('@').next_back().unwrap_or("")
    );
    rt.block_on(async {
        let one = Arc::new(PgStore::open(&url, Arc::new(EnvelopeOnly)).await.unwrap());
        let admin = connect(&base).await;
        admin
            .batch_execute(&format!(
                "CREATE TABLE {schema}.baseline (position bigserial PRIMARY KEY, id uuid NOT NULL, \
                 stream text NOT NULL, version bigint NOT NULL, type text NOT NULL, data jsonb NOT NULL, \
                 UNIQUE (stream, version))"
            ))
            .await
            .unwrap();
        for round in 0..2 {
            let b = baseline(&base, &schema, round, duration).await;
            println!("baseline: 64 clients, single-row INSERTs       {b:>9.0} events/s");
            let d = appends(std::slice::from_ref(&one), 64, 1, &format!("S{round}-"), duration).await;
            println!(
                "dealtrail: 64 single-event appends, 1 node    {d:>9.0} events/s  ({:.2}× the baseline)",
                d / b
            );
        }
        let mut nodes = vec![one.clone()];
        for _ in 1..3 {
            nodes.push(Arc::new(PgStore::open(&url, Arc::new(EnvelopeOnly)).await.unwrap()));
        }
        let d = appends(&nodes, 64, 1, "M", duration).await;
        println!("dealtrail: 64 single-event appends, 3 nodes   {d:>9.0} events/s");
        drop(nodes);
        let d = appends(std::slice::from_ref(&one), 16, 100, "H", duration).await;
        println!("dealtrail: 16 writers × 100-event batches     {d:>9.0} events/s");
        let d = appends(std::slice::from_ref(&one), 1, 1, "O", duration).await;
        println!("dealtrail: 1 writer, single events            {d:>9.0} events/s");

        let total = one.last_position().await.unwrap();
        // Catch-up reads, with the CPU each side spent (this process's threads, and the
        // server processes of the reading connections, from /proc: the server is local).
        // The reading store has a name of its own so its server processes can be found.
        let tag = format!("bench_reader_{}", &schema[6..14]);
        let reader = Arc::new(
            PgStore::open(&format!("{url}&application_name={tag}"), Arc::new(EnvelopeOnly))
                .await
                .unwrap(),
        );
        reader.read_all(1, 1, &Filter::default()).await.unwrap();
        let rows = connect(&base).await;
        rows.batch_execute(&format!("SET search_path TO {schema}")).await.unwrap();
        let rows_pid: i32 = rows.query_one("SELECT pg_backend_pid()", &[]).await.unwrap().get(0);
        for pass in 0..2 {
            // The path before COPY (the rows of a query, decoded once all arrived), beside
            // the store's, alternated.
            let cpu = Cpu::start(vec![rows_pid]);
            let mut next = 1;
            while next <= total {
                let page = query_page(&rows, next).await;
                next = page.last().map_or(total + 1, |e| e.position + 1);
            }
            cpu.print(&format!("catch-up, query rows (old path, pass {pass})"), total);
            let cpu = Cpu::start(server_pids(&admin, &tag).await);
            let mut next = 1;
            while next <= total {
                let page = reader.read_all(next, 10_000, &Filter::default()).await.unwrap();
                next = page.last().map_or(total + 1, |e| e.position + 1);
            }
            cpu.print(&format!("catch-up, read_all pages (pass {pass})"), total);
        }
        let cpu = Cpu::start(server_pids(&admin, &tag).await);
        let n = reader
            .subscribe(1, Filter::default())
            .take(total as usize)
            .fold(0u64, |n, r| async move {
                r.unwrap();
                n + 1
            })
            .await;
        // (The subscription's prefetch may open pool connections the list above missed.)
        cpu.print("catch-up, subscription from 1", n);
        drop(reader);
        let start = Instant::now();
        let report = one.verify(&mut |_| {}).await.unwrap();
        println!(
            "verify                                     {:>9.0} events/s",
            report.events as f64 / start.elapsed().as_secs_f64()
        );
        drop(one);
        admin
            .batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
            .await
            .unwrap();
    });
}
