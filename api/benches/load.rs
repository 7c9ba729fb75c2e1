//! HTTP load test against a real `dealtrail serve` on loopback (issue: HTTP API). Prints
//! figures; the only assertion is the durability check after SIGTERM.
//!
//!     cargo bench -p api --bench load
//!     LOAD_SECONDS=5 LOAD_CLIENTS=64 cargo bench -p api --bench load
//!     LOAD_SERVER_BIN=path/to/other/dealtrail cargo bench -p api --bench load
//!     LOAD_SUBSCRIBERS=0 cargo bench -p api --bench load   # phase 2 without subscribers
//!     LOAD_WEBHOOKS=10 cargo bench -p api --bench load     # phase 2 with webhooks instead
//!
//! Phases (each bounded in time and count; traffic only to 127.0.0.1):
//! 1. single-event appends from `LOAD_CLIENTS` concurrent clients: appends/s, p50/p99;
//! 2. phase 1 again while 100 SSE subscribers follow the log: the slowdown against phase 1.
//!    Phases 1 and 2 alternate `LOAD_ROUNDS` times (default 3); the totals of each kind are
//!    compared. It runs before the batches so that both see a log of about the same size: after
//!    phase 3 the log (and the read model) is several times larger, and the read model's
//!    periodic snapshot, whose cost grows with it, would dominate whichever phase it fell
//!    in. The subscribers count events by scanning bytes, to cost the shared cores little,
//!    on a runtime of their own; the line after shows when the last had every event;
//!    With `LOAD_WEBHOOKS=N`, phase 2 runs with N webhooks registered instead of the
//!    subscribers: N-1 to receivers on loopback that answer 204 at once, one to a receiver
//!    that never answers (the server times out and retries it with backoff); they are
//!    deleted after the phase, and the line after says how many events the quick receivers
//!    had been sent by then;
//! 3. 100-event batches: events/s, p50/p99 per request;
//! 4. SIGTERM mid-load: every append answered 201 must be in the log afterwards.

use std::io::BufRead;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::json;

type Http = Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>;

const TOKEN: &str = "load-test-admin-token-0123456789";

struct Server {
    child: Child,
    base: String,
}

/// The `dealtrail` binary: this build's, or `LOAD_SERVER_BIN` (to compare builds).
fn server_bin() -> String {
    std::env::var("LOAD_SERVER_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_dealtrail").into())
}

fn start(data: &std::path::Path) -> Server {
    let mut child = Command::new(server_bin())
        .arg("--data")
        .arg(data)
        .args(["serve", "--addr", "127.0.0.1:0"])
        .env("DEALTRAIL_ADMIN_TOKEN", TOKEN)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start dealtrail serve");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = std::io::BufReader::new(stdout).lines();
    let base = loop {
        let line = lines
            .next()
            .expect("server printed its address")
            .expect("read stdout");
        if let Some(rest) = line.strip_prefix("dealtrail listening on ") {
            break rest
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .to_string();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    Server { child, base }
}

async fn post(client: &Http, url: &str, body: String) -> u16 {
    let req = hyper::Request::post(url)
        .header("authorization", format!("Bearer {TOKEN}"))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body)))
        .expect("request");
    match client.request(req).await {
        Ok(resp) => {
            let status = resp.status().as_u16();
            let _ = resp.into_body().collect().await;
            status
        }
        Err(_) => 0,
    }
}

fn registration(n: u64) -> serde_json::Value {
    json!({"type": "CustomerRegistered", "data": {"name": format!("Load {n}"), "owner": "wukong"}})
}

fn activity() -> serde_json::Value {
    json!({"type": "ActivityLogged", "data": {"kind": "call", "rep": "wukong"}})
}

/// Counts SSE events by their `id: ` field in a byte stream, across chunk boundaries, with a
/// vectorised substring search and no allocation, so the subscribers cost the bench's own
/// cores little. (`id: ` appears nowhere else in this test's frames: compact JSON puts no
/// space after a colon.)
#[derive(Default)]
struct IdLines {
    /// The last bytes of the previous chunk, for a field split between two chunks.
    tail: Vec<u8>,
}

impl IdLines {
    const ID: &'static [u8] = b"id: ";

    fn count(&mut self, bytes: &[u8]) -> u64 {
        let keep = Self::ID.len() - 1;
        // A field split between chunks starts in the tail (which is too short to hold one).
        let mut seam = std::mem::take(&mut self.tail);
        let in_tail = seam.len();
        seam.extend_from_slice(&bytes[..bytes.len().min(keep)]);
        let split = memchr::memmem::find_iter(&seam, Self::ID)
            .filter(|&i| i < in_tail)
            .count();
        let whole = memchr::memmem::find_iter(bytes, Self::ID).count();
        self.tail = if bytes.len() >= keep {
            bytes[bytes.len() - keep..].to_vec()
        } else {
            seam[seam.len().saturating_sub(keep)..].to_vec()
        };
        (split + whole) as u64
    }

    /// Checks the counting on a small stream cut in every way into three chunks.
    fn self_check() {
        let stream: &[u8] = b"id: 1\nevent: A\ndata: {\"id\":\"x\"}\n\n: heartbeat\n\nid: 2\nevent: B\ndata: {}\n\n";
        for a in 0..=stream.len() {
            for b in a..=stream.len() {
                let mut c = IdLines::default();
                let n = c.count(&stream[..a]) + c.count(&stream[a..b]) + c.count(&stream[b..]);
                assert_eq!(n, 2, "stream cut at {a} and {b}");
            }
        }
    }
}

/// CPU time (user + system, in clock ticks) of a process, from `/proc/<pid>/stat`; and of
/// the whole machine (busy, total) from `/proc/stat`. Linux only; zeros elsewhere. Lets the
/// phases be compared by CPU per event, which the shared machine's noise moves less than
/// the rates.
#[derive(Clone, Copy, Default)]
struct Cpu {
    server: u64,
    bench: u64,
    machine_busy: u64,
    machine_total: u64,
}

impl Cpu {
    fn now(server: u32) -> Cpu {
        let ticks = |path: String| -> u64 {
            let Ok(stat) = std::fs::read_to_string(path) else {
                return 0;
            };
            // Fields after the command name (which may hold spaces) in parentheses.
            let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
            let f: Vec<u64> = rest
                .split_whitespace()
                .map(|x| x.parse().unwrap_or(0))
                .collect();
            // utime and stime are fields 14 and 15, i.e. 12 and 13 after the name.
            f.get(11).copied().unwrap_or(0) + f.get(12).copied().unwrap_or(0)
        };
        let (mut busy, mut total) = (0, 0);
        if let Ok(stat) = std::fs::read_to_string("/proc/stat") {
            if let Some(line) = stat.lines().next() {
                let f: Vec<u64> = line
                    .split_whitespace()
                    .skip(1)
                    .map(|x| x.parse().unwrap_or(0))
                    .collect();
                total = f.iter().sum();
                // idle and iowait
                busy = total - f.get(3).copied().unwrap_or(0) - f.get(4).copied().unwrap_or(0);
            }
        }
        Cpu {
            server: ticks(format!("/proc/{server}/stat")),
            bench: ticks("/proc/self/stat".into()),
            machine_busy: busy,
            machine_total: total,
        }
    }

    /// What was used between `earlier` and this reading, added to `self`.
    fn add_since(&mut self, earlier: Cpu, later: Cpu) {
        self.server += later.server - earlier.server;
        self.bench += later.bench - earlier.bench;
        self.machine_busy += later.machine_busy - earlier.machine_busy;
        self.machine_total += later.machine_total - earlier.machine_total;
    }

    /// For CPU used (see [`Cpu::add_since`]): "CPU ms per 1000 events" for the server and the
    /// bench, and what share of the machine's CPU time the two used (the rest went to other
    /// work on the shared cores).
    fn describe(&self, events: u64) -> String {
        let ms = |ticks: u64| ticks as f64 * 10.0 / (events.max(1) as f64 / 1000.0);
        let (s, b) = (self.server, self.bench);
        let busy = self.machine_busy;
        let total = self.machine_total.max(1);
        format!(
            "CPU per 1000 appends: server {:.1} ms, bench {:.1} ms; machine busy {:.0}%, this test {:.0}% of it",
            ms(s),
            ms(b),
            busy as f64 * 100.0 / total as f64,
            (s + b) as f64 * 100.0 / busy.max(1) as f64
        )
    }
}

/// Webhook receivers on loopback for `LOAD_WEBHOOKS`: `/ok/{n}` answers 204 at once and
/// counts; `/hang` never answers. Returns the base URL and the count of requests to `/ok/…`.
async fn receivers() -> (String, Arc<AtomicU64>) {
    use axum::routing::post;
    let received = Arc::new(AtomicU64::new(0));
    let counted = received.clone();
    let app = axum::Router::new()
        .route(
            "/ok/{n}",
            post(move || {
                let counted = counted.clone();
                async move {
                    counted.fetch_add(1, Ordering::Relaxed);
                    hyper::StatusCode::NO_CONTENT
                }
            }),
        )
        .route("/hang", post(std::future::pending::<hyper::StatusCode>));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the receivers");
    let addr = listener.local_addr().expect("receivers' address");
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), received)
}

/// Registers `n` webhooks for every event: `n - 1` quick ones and one that hangs. Their ids.
async fn register_webhooks(http: &Http, base: &str, receivers: &str, n: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for i in 0..n {
        let url = if i == 0 {
            format!("{receivers}/hang")
        } else {
            format!("{receivers}/ok/{i}")
        };
        let req = hyper::Request::post(format!("{base}/v1/webhooks"))
            .header("authorization", format!("Bearer {TOKEN}"))
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(json!({ "url": url }).to_string())))
            .expect("request");
        let resp = http.request(req).await.expect("create a webhook");
        assert_eq!(resp.status(), 201, "webhook refused");
        let body = resp.into_body().collect().await.expect("body").to_bytes();
        let v: serde_json::Value = serde_json::from_slice(&body).expect("JSON");
        ids.push(v["id"].as_str().expect("an id").to_string());
    }
    ids
}

/// The log's last position (`/healthz`). The log holds more than the bench's appends (the
/// token's audit event, webhooks' registrations), so subscribers start from here.
async fn head(http: &Http, base: &str) -> u64 {
    let req = hyper::Request::get(format!("{base}/healthz"))
        .body(Full::new(Bytes::new()))
        .expect("request");
    let resp = http.request(req).await.expect("healthz");
    assert_eq!(resp.status(), 200, "healthz");
    let body = resp.into_body().collect().await.expect("body").to_bytes();
    let v: serde_json::Value = serde_json::from_slice(&body).expect("JSON");
    v["last_position"].as_u64().expect("last_position")
}

async fn delete_webhooks(http: &Http, base: &str, ids: &[String]) {
    for id in ids {
        let req = hyper::Request::delete(format!("{base}/v1/webhooks/{id}"))
            .header("authorization", format!("Bearer {TOKEN}"))
            .body(Full::new(Bytes::new()))
            .expect("request");
        let _ = http.request(req).await;
    }
}

/// What the SSE subscribers received, all together.
#[derive(Default)]
struct Tally {
    events: AtomicU64,
    chunks: AtomicU64,
    bytes: AtomicU64,
}

/// One SSE subscriber on its own connection: counts the events it receives until it has
/// `target` of them (`u64::MAX` until phase 2 ends; 0 = stop now). Returns the count.
async fn follow(
    base: String,
    from: u64,
    mut target: tokio::sync::watch::Receiver<u64>,
    tally: Arc<Tally>,
) -> u64 {
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let req = hyper::Request::get(format!("{base}/v1/subscribe?from_position={from}"))
        .header("authorization", format!("Bearer {TOKEN}"))
        .body(Full::new(Bytes::new()))
        .expect("request");
    let Ok(resp) = client.request(req).await else {
        return 0;
    };
    assert_eq!(resp.status(), 200, "SSE subscription refused");
    let mut body = resp.into_body();
    let (mut ids, mut events) = (IdLines::default(), 0u64);
    while events < *target.borrow_and_update() {
        tokio::select! {
            biased;
            changed = target.changed() => {
                if changed.is_err() {
                    break;
                }
            }
            frame = body.frame() => match frame {
                Some(Ok(f)) => {
                    if let Some(d) = f.data_ref() {
                        let n = ids.count(d);
                        events += n;
                        tally.events.fetch_add(n, Ordering::Relaxed);
                        tally.chunks.fetch_add(1, Ordering::Relaxed);
                        tally.bytes.fetch_add(d.len() as u64, Ordering::Relaxed);
                    }
                }
                _ => break,
            },
        }
    }
    events
}

/// What a phase did: requests answered 201, events appended, each request's latency (sorted),
/// requests that failed.
type Outcome = (u64, u64, Vec<Duration>, u64);

fn pct(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1].as_secs_f64() * 1e3
}

/// Runs `clients` loops for `secs` seconds (or `max` requests); each request appends `batch`
/// events to the client's own stream. Returns (requests ok, events, latencies, errors).
async fn phase(
    http: &Http,
    base: &str,
    tag: &str,
    clients: usize,
    batch: usize,
    secs: u64,
    max: u64,
) -> Outcome {
    let stop_at = Instant::now() + Duration::from_secs(secs);
    let sent = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for c in 0..clients {
        let (http, base, sent, tag) = (
            http.clone(),
            base.to_string(),
            sent.clone(),
            tag.to_string(),
        );
        tasks.push(tokio::spawn(async move {
            let url = format!("{base}/v1/streams/customer-{tag}-{c}/events");
            let mut lat = Vec::new();
            let (mut ok, mut errors, mut first) = (0u64, 0u64, true);
            while Instant::now() < stop_at && sent.fetch_add(1, Ordering::Relaxed) < max {
                let events: Vec<_> = (0..batch)
                    .map(|i| {
                        if first && i == 0 {
                            registration(c as u64)
                        } else {
                            activity()
                        }
                    })
                    .collect();
                let t = Instant::now();
                let status = post(&http, &url, json!({ "events": events }).to_string()).await;
                lat.push(t.elapsed());
                if status == 201 {
                    ok += 1;
                    first = false;
                } else {
                    errors += 1;
                }
            }
            (ok, lat, errors)
        }));
    }
    let (mut ok, mut lat, mut errors) = (0, Vec::new(), 0);
    for t in tasks {
        if let Ok((o, l, e)) = t.await {
            ok += o;
            lat.extend(l);
            errors += e;
        }
    }
    lat.sort();
    (ok, ok * batch as u64, lat, errors)
}

/// Phases of one kind added up over the rounds: what they did, how long they took, and the
/// CPU they used.
#[derive(Default)]
struct Sum {
    outcome: Outcome,
    time: Duration,
    cpu: Cpu,
}

impl Sum {
    /// Runs one phase of `clients` single-event appends to streams tagged `tag`, prints it as
    /// `name` and adds it up; returns its rate and events.
    #[allow(clippy::too_many_arguments)]
    async fn run(
        &mut self,
        http: &Http,
        base: &str,
        tag: &str,
        name: &str,
        clients: usize,
        secs: u64,
        server_pid: u32,
    ) -> (f64, u64) {
        let cpu = Cpu::now(server_pid);
        let t = Instant::now();
        let outcome = phase(http, base, tag, clients, 1, secs, 2_000_000).await;
        let time = t.elapsed();
        self.cpu.add_since(cpu, Cpu::now(server_pid));
        let rate = report(name, time, &outcome);
        let (ok, events, lat, errors) = outcome;
        self.outcome.0 += ok;
        self.outcome.1 += events;
        self.outcome.2.extend(lat);
        self.outcome.3 += errors;
        self.time += time;
        (rate, events)
    }

    /// Prints the totals as [`report`] does, and their CPU; returns events/s.
    fn report(&mut self, name: &str) -> f64 {
        self.outcome.2.sort();
        let rate = report(name, self.time, &self.outcome);
        println!("    {}", self.cpu.describe(self.outcome.1));
        rate
    }
}

fn report(name: &str, time: Duration, (ok, events, lat, errors): &Outcome) -> f64 {
    let rate = *events as f64 / time.as_secs_f64();
    println!(
        "  {name:<44} {ok:>7} requests ({errors} failed)  {rate:>9.0} events/s  p50 {:>6.2} ms  p99 {:>6.2} ms",
        pct(lat, 0.5),
        pct(lat, 0.99)
    );
    rate
}

/// A number from the environment variable `name`, or `default`.
fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

#[tokio::main]
async fn main() {
    let secs: u64 = env_or("LOAD_SECONDS", 8);
    let clients: usize = env_or("LOAD_CLIENTS", 64);
    IdLines::self_check();
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let mut server = start(&data);
    let base = server.base.clone();
    let http: Http = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(256)
        .build_http();
    println!("HTTP load test on {base} ({clients} clients, {secs} s a phase; machine: {} cores, shared; client and server on the same cores)", std::thread::available_parallelism().map_or(0, |n| n.get()));

    // The rep every event names must have joined (rule `rep.active`).
    let rep = json!({"events": [{"type": "RepJoined", "data": {"rep": "wukong", "name": "Wukong", "team": "east"}}]});
    let joined = post(
        &http,
        &format!("{base}/v1/streams/org-acme/events"),
        rep.to_string(),
    )
    .await;
    assert_eq!(joined, 201, "the rep could not join");

    let server_pid = server.child.id();
    let rounds: usize = env_or("LOAD_ROUNDS", 3usize).max(1);
    let n_subs: usize = env_or("LOAD_SUBSCRIBERS", 100);
    // The subscribers run on their own runtime, as separate client processes would, so
    // that their reads do not hold up the load clients' tasks on a shared executor (a wait
    // that would be counted as append latency). They still share the machine's two cores.
    let subscribers = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("sse-subscriber")
        .enable_all()
        .build()
        .expect("subscribers' runtime");
    // Phases 1 and 2 alternate, so that both see the machine (shared; its speed drifts by
    // tens of percent within a minute) and the log at about the same sizes.
    let (mut without, mut with) = (Sum::default(), Sum::default());
    let tally = Arc::new(Tally::default());
    // Subscriptions that did not end with exactly the events of their phase.
    let (mut short, mut slowest_drain) = (0usize, Duration::ZERO);
    let n_hooks: usize = env_or("LOAD_WEBHOOKS", 0);
    let hooks = if n_hooks > 0 {
        Some(subscribers.spawn(receivers()).await.expect("receivers"))
    } else {
        None
    };
    for round in 0..rounds {
        let name = format!("round {round}, no subscribers");
        let tag = format!("single{round}");
        let (rate, _) = without
            .run(&http, &base, &tag, &name, clients, secs, server_pid)
            .await;
        if let Some((receivers, received)) = &hooks {
            let ids = register_webhooks(&http, &base, receivers, n_hooks).await;
            let before = received.load(Ordering::Relaxed);
            let name = format!("round {round}, {n_hooks} webhooks (one hanging)");
            let tag = format!("hooks{round}");
            let (hook_rate, events) = with
                .run(&http, &base, &tag, &name, clients, secs, server_pid)
                .await;
            let sent = received.load(Ordering::Relaxed) - before;
            println!(
                "    {:+.1}% against the phase before; the {} quick receivers were sent {sent} of {} events during the phase",
                (hook_rate / rate - 1.0) * 100.0,
                n_hooks - 1,
                events * (n_hooks as u64 - 1)
            );
            delete_webhooks(&http, &base, &ids).await;
            continue;
        }

        // Subscribers from the current end of the log, each on its own connection, reading
        // until each has every event of the phase (or told to stop).
        let (target, watching) = tokio::sync::watch::channel(u64::MAX);
        let from = head(&http, &base).await + 1;
        let mut subs: Vec<_> = (0..n_subs)
            .map(|_| {
                let (base, watching, tally) = (base.clone(), watching.clone(), tally.clone());
                subscribers.spawn(follow(base, from, watching, tally))
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(500)).await;
        let name = format!("round {round}, {n_subs} SSE subscribers");
        let tag = format!("sse{round}");
        let (sse_rate, events) = with
            .run(&http, &base, &tag, &name, clients, secs, server_pid)
            .await;
        println!(
            "    {:+.1}% against the phase before",
            (sse_rate / rate - 1.0) * 100.0
        );
        // Every subscriber should now receive each event appended in the phase, then stop.
        let _ = target.send(events);
        let drain = Instant::now();
        let mut got = Vec::new();
        let drained = tokio::time::timeout(Duration::from_secs(10), async {
            for s in &mut subs {
                got.push(s.await.unwrap_or(0));
            }
        })
        .await;
        if drained.is_err() {
            let _ = target.send(0);
            got.clear();
            for s in subs {
                got.push(s.await.unwrap_or(0));
            }
        }
        slowest_drain = slowest_drain.max(drain.elapsed());
        short += got.iter().filter(|&&g| g != events).count();
    }
    // (A runtime may not be dropped where blocking is not allowed.)
    subscribers.shutdown_background();
    let single_rate = without.report("single-event appends, all rounds");
    if n_hooks > 0 {
        let hook_rate = with.report(&format!("... with {n_hooks} webhooks, all rounds"));
        println!(
            "  webhooks: append rate {:+.1}% vs without",
            (hook_rate / single_rate - 1.0) * 100.0
        );
    } else {
        let sse_rate = with.report(&format!("... with {n_subs} SSE subscribers, all rounds"));
        println!(
        "  SSE: {} events ({} MB) delivered in {} body chunks; {} of {} subscriptions got exactly the events of their phase{}; the slowest had them all {:.0} ms after the appends ended; append rate {:+.1}% vs without subscribers",
        tally.events.load(Ordering::Relaxed),
        tally.bytes.load(Ordering::Relaxed) / 1_000_000,
        tally.chunks.load(Ordering::Relaxed),
        rounds * n_subs - short,
        rounds * n_subs,
        if short == 0 { " (all)" } else { " (NOT ALL)" },
        slowest_drain.as_secs_f64() * 1e3,
        (sse_rate / single_rate - 1.0) * 100.0
    );
    }

    let t = Instant::now();
    let batches = phase(&http, &base, "batch", clients.min(16), 100, secs, 2_000_000).await;
    report(
        "100-event batches (events/s; latency per request)",
        t.elapsed(),
        &batches,
    );

    // SIGTERM mid-load: remember every id answered 201, then check them in the log.
    let acked: Arc<Mutex<Vec<String>>> = Arc::new(Mutex::new(Vec::new()));
    let mut writers = Vec::new();
    for c in 0..clients {
        let (http, base, acked) = (http.clone(), base.clone(), acked.clone());
        writers.push(tokio::spawn(async move {
            let url = format!("{base}/v1/streams/customer-term-{c}/events");
            for i in 0u64.. {
                let id = uuid::Uuid::now_v7().to_string();
                let mut ev = if i == 0 {
                    registration(c as u64)
                } else {
                    activity()
                };
                ev["id"] = json!(id);
                match post(&http, &url, json!({ "events": [ev] }).to_string()).await {
                    201 => acked.lock().unwrap_or_else(|p| p.into_inner()).push(id),
                    0 => return,
                    _ => {}
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let _ = Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status();
    let exit = server.child.wait();
    for w in writers {
        let _ = w.await;
    }
    let acked = acked.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let export = Command::new(server_bin())
        .arg("--data")
        .arg(&data)
        .arg("export")
        .output()
        .expect("export");
    let log = String::from_utf8_lossy(&export.stdout);
    let ids: std::collections::HashSet<&str> = log.lines().filter_map(|l| l.get(7..43)).collect();
    let missing = acked.iter().filter(|id| !ids.contains(id.as_str())).count();
    println!("  SIGTERM mid-load: server exit {exit:?}; {} appends acknowledged in the last phase, {missing} missing from the log", acked.len());
    assert_eq!(missing, 0, "acknowledged appends lost after SIGTERM");
}
