//! Durable append and read throughput of the sled store. Plain timing, printed.
//!
//! `cargo bench -p eventlog` (optionally `-- --quick`, or `-- --case 64x1` for one append
//! case only, or `-- --case read` for the read + decode and verify figures only; `--sealed`
//! puts `Sealed` in front of the store, with its key file: every event's `summary` is then
//! sealed on append and opened on read, as personal data is, SPEC §7). Every acknowledged append has been
//! synced to disk (group commit: one `fdatasync` of the commit journal per group of
//! concurrent requests, see `sled_store::journal` and `sled_store::commit`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use eventlog::personal::KeyFile;
use eventlog::{
    EnvelopeOnly, EventStore, ExpectedVersion, Filter, ProposedEvent, Sealed, SledStore,
};

/// The store of `dir`, behind `Sealed` when `sealed`.
fn open(dir: &std::path::Path, sealed: bool) -> (Arc<SledStore>, Arc<dyn EventStore>) {
    let store = Arc::new(SledStore::open(dir, Arc::new(EnvelopeOnly)).unwrap());
    let front: Arc<dyn EventStore> = if sealed {
        Arc::new(Sealed::new(
            store.clone(),
            Arc::new(KeyFile::open(dir).unwrap()),
        ))
    } else {
        store.clone()
    };
    (store, front)
}
use serde_json::json;

/// The CPU time this process has used (user + system, every thread, ended ones included),
/// from `/proc/self/stat` in clock ticks of 1/100 s; NaN where that file is not readable.
/// Read rates per CPU-second vary less with the other jobs on a shared machine than wall rates.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let ticks: Vec<f64> = after_name
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|t| t.parse().ok())
        .collect();
    match ticks[..] {
        [user, system] => (user + system) / 100.0,
        _ => f64::NAN,
    }
}

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

/// Appends for `duration` from `writers` tasks, `batch` events per append; returns
/// (events, appends, elapsed).
async fn run(
    store: Arc<dyn EventStore>,
    writers: u64,
    batch: u64,
    duration: Duration,
) -> (u64, u64, Duration) {
    let start = Instant::now();
    let tasks: Vec<_> = (0..writers)
        .map(|w| {
            let store = store.clone();
            tokio::spawn(async move {
                let mut appends = 0u64;
                while start.elapsed() < duration {
                    let events = (0..batch).map(|k| event(appends * batch + k)).collect();
                    store
                        .append(&format!("customer-B{w}"), ExpectedVersion::Any, events)
                        .await
                        .expect("append");
                    appends += 1;
                }
                appends
            })
        })
        .collect();
    let mut appends = 0;
    for t in tasks {
        appends += t.await.unwrap();
    }
    (appends * batch, appends, start.elapsed())
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|a| a == "--quick");
    let sealed = args.iter().any(|a| a == "--sealed");
    let only = args
        .iter()
        .position(|a| a == "--case")
        .and_then(|i| args.get(i + 1))
        .cloned();
    let duration = Duration::from_millis(if quick { 500 } else { 2000 });
    // As the `dealtrail` binary does at its start.
    let arenas = eventlog::spread_allocator_arenas();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    println!(
        "eventlog append benchmark ({} cores available, {:?} per case, glibc arenas: {}{})",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        duration,
        arenas.map_or("as the environment has them".to_string(), |n| format!(
            "up to {n}"
        )),
        if sealed { ", personal data sealed" } else { "" }
    );
    for writers in [1u64, 64] {
        for batch in [1u64, 10, 100] {
            if only
                .as_ref()
                .is_some_and(|c| *c != format!("{writers}x{batch}"))
            {
                continue;
            }
            let dir = tempfile::tempdir().unwrap();
            let (_, store) = open(dir.path(), sealed);
            let (events, appends, elapsed) = rt.block_on(run(store, writers, batch, duration));
            let secs = elapsed.as_secs_f64();
            println!(
                "durable append  writers {writers:>2}  batch {batch:>3}: {:>9.0} events/s  {:>8.0} appends/s  ({events} events)",
                events as f64 / secs,
                appends as f64 / secs
            );
        }
    }

    if only.as_ref().is_some_and(|c| c != "read") {
        return;
    }
    // Read + decode the whole log.
    let dir = tempfile::tempdir().unwrap();
    let (sled, store) = open(dir.path(), sealed);
    let target: u64 = if quick { 100_000 } else { 500_000 };
    rt.block_on(async {
        let tasks: Vec<_> = (0..16u64)
            .map(|w| {
                let store = store.clone();
                tokio::spawn(async move {
                    for chunk in 0..target / 16 / 500 {
                        let events = (0..500).map(|k| event(chunk * 500 + k)).collect();
                        store
                            .append(&format!("customer-R{w}"), ExpectedVersion::Any, events)
                            .await
                            .unwrap();
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
    });
    let total = rt.block_on(store.last_position()).unwrap();
    // Passes 0-2: events as `read_all` returns them (every record's checksum and encoding
    // checked; `data` and `metadata` kept in their stored form until looked at). Pass 3 also
    // builds every `data` and `metadata` JSON value, as a reader that looks at all of them would.
    for round in 0..4 {
        let build_values = round == 3;
        let cpu = cpu_seconds();
        let start = Instant::now();
        let mut next = 1;
        let mut read = 0u64;
        while next <= total {
            let evs = rt
                .block_on(store.read_all(next, 10_000, &Filter::default()))
                .unwrap();
            if build_values {
                for ev in &evs {
                    std::hint::black_box((ev.data.value(), ev.metadata.value()));
                }
            }
            read += evs.len() as u64;
            next = evs.last().map_or(total + 1, |e| e.position + 1);
        }
        assert_eq!(read, total);
        let secs = start.elapsed().as_secs_f64();
        let cpu = cpu_seconds() - cpu;
        let what = if build_values {
            "read + decode + every data Value"
        } else {
            "read + decode"
        };
        println!(
            "{what} (pass {round}): {:>9.0} events/s  ({total} events in {secs:.2}s; {:.0} per CPU-second)",
            total as f64 / secs,
            total as f64 / cpu
        );
    }
    // As the read model's projector reads the log (`EventStore::projection_view`: behind
    // `Sealed`, free text is left sealed, names opened).
    let view = store.projection_view().unwrap_or_else(|| store.clone());
    let start = Instant::now();
    let mut next = 1;
    while next <= total {
        let evs = rt
            .block_on(view.read_all(next, 10_000, &Filter::default()))
            .unwrap();
        next = evs.last().map_or(total + 1, |e| e.position + 1);
    }
    println!(
        "read + decode, the projector's view: {:>9.0} events/s",
        total as f64 / start.elapsed().as_secs_f64()
    );
    // Sealing and opening alone (one thread): the CPU one personal field costs.
    let key = eventlog::personal::PersonKey::from_bytes([7; 32]);
    let text = "Discussed the quote; follow up next week";
    let n = if quick { 100_000 } else { 500_000 };
    let ids: Vec<uuid::Uuid> = (0..n).map(|i| uuid::Uuid::from_u128(i as u128)).collect();
    let start = Instant::now();
    let sealed: Vec<String> = ids
        .iter()
        .map(|id| eventlog::personal::cipher::seal(&key, "customer-C-1", Some(id), "summary", text))
        .collect();
    let seal_secs = start.elapsed().as_secs_f64();
    // An event appended without an id (as the HTTP API's clients mostly do).
    let start = Instant::now();
    for _ in 0..n {
        std::hint::black_box(eventlog::personal::cipher::seal(
            &key,
            "customer-C-1",
            None,
            "summary",
            text,
        ));
    }
    let seal_no_id_secs = start.elapsed().as_secs_f64();
    let start = Instant::now();
    for (id, s) in ids.iter().zip(&sealed) {
        std::hint::black_box(eventlog::personal::cipher::open(&key, id, "summary", s).unwrap());
    }
    let open_secs = start.elapsed().as_secs_f64();
    println!(
        "seal one field, 1 thread: {:>9.0} fields/s ({:.2} µs; event without an id: {:.2} µs); open: {:>9.0} fields/s ({:.2} µs)",
        n as f64 / seal_secs,
        seal_secs * 1e6 / n as f64,
        seal_no_id_secs * 1e6 / n as f64,
        n as f64 / open_secs,
        open_secs * 1e6 / n as f64
    );
    // Decoding alone (one thread, no storage): format 1 (JSON text) against format 2.
    let sample = rt
        .block_on(sled.read_all(1, 100_000, &Filter::default()))
        .unwrap();
    for (name, records) in [
        (
            "format 1",
            sample
                .iter()
                .map(eventlog::record::encode_record_v1)
                .collect::<Vec<_>>(),
        ),
        (
            "format 2",
            sample
                .iter()
                .map(eventlog::record::encode_record)
                .collect::<Vec<_>>(),
        ),
    ] {
        let start = Instant::now();
        for r in &records {
            std::hint::black_box(eventlog::record::decode_record(r).unwrap());
        }
        let secs = start.elapsed().as_secs_f64();
        println!(
            "decode only, {name}, 1 thread: {:>9.0} events/s  ({} bytes/record)",
            records.len() as f64 / secs,
            records.iter().map(Vec::len).sum::<usize>() / records.len().max(1)
        );
    }
    let start = Instant::now();
    let report = sled.verify(&mut |_| {}).unwrap();
    let secs = start.elapsed().as_secs_f64();
    println!(
        "verify:              {:>9.0} events/s  ({} events in {secs:.2}s)",
        report.events as f64 / secs,
        report.events
    );
}
