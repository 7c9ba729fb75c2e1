//! Kill -9 an appending process over and over: every acknowledged event must be there after
//! each restart, in order, and the log must verify. One of the child's writers appends
//! through the bulk path (`append_checked`), whose log chunks the store keeps in its chunk
//! file.
//!
//! The child is this same test binary, re-executed with `CHILD_ENV` set, running only
//! `crash_child_appender`; it prints `ACK <position> <id>` for every acknowledged event.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use common::{note, open};
use eventlog::{EventStore, ExpectedVersion, Filter};
use uuid::Uuid;

const CHILD_ENV: &str = "EVENTLOG_CRASH_CHILD_DIR";
const ROUNDS: u64 = 16;
const CHILD_WRITERS: u64 = 8;

/// Not a test on its own: the appender the crash test runs in a child process (hence
/// ignored; the parent passes `--ignored`).
#[test]
#[ignore = "the child of killed_appenders_lose_no_acknowledged_event, which launches it"]
fn crash_child_appender() {
    let dir = std::env::var(CHILD_ENV)
        .expect("crash_child_appender runs only as the child of killed_appenders_lose_no_acknowledged_event");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let store = Arc::new(open(Path::new(&dir)));
        let tasks: Vec<_> = (0..CHILD_WRITERS)
            .map(|w| {
                let store = store.clone();
                tokio::spawn(async move {
                    for n in 0u64.. {
                        let events: Vec<_> = (0..1 + (n + w) % 3)
                            .map(|k| eventlog::ProposedEvent {
                                id: Some(Uuid::now_v7()),
                                ..note(n * 10 + k)
                            })
                            .collect();
                        let ids: Vec<_> = events.iter().filter_map(|e| e.id).collect();
                        let stream = format!("deal-C{w}");
                        let out = if w == 0 {
                            // A bulk (checked) append, as an import makes: its log chunks go
                            // to the chunk file. Checked against the end of the log, which the
                            // other writers keep moving: tried again until it holds.
                            match bulk_append(&store, &stream, events).await {
                                Some(out) => out,
                                None => continue,
                            }
                        } else {
                            store
                                .append(&stream, ExpectedVersion::Any, events)
                                .await
                                .expect("append")
                        };
                        let mut stdout = std::io::stdout().lock();
                        for (i, id) in ids.iter().enumerate() {
                            writeln!(stdout, "ACK {} {id}", out.first_position + i as u64).unwrap();
                        }
                        stdout.flush().unwrap();
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
    });
}

/// `events` appended to `stream` through `append_checked`, checked against the log's end as
/// it is now; `None` if the log moved meanwhile (nothing written then).
async fn bulk_append(
    store: &eventlog::SledStore,
    stream: &str,
    events: Vec<eventlog::ProposedEvent>,
) -> Option<eventlog::AppendOutcome> {
    let at = store.last_position().await.expect("last position");
    let batch = eventlog::StreamBatch {
        stream: stream.into(),
        expected: ExpectedVersion::Any,
        events,
    };
    match store.append_checked(vec![batch], at).await {
        Ok(mut out) => out.pop(),
        Err(e) if matches!(&e.error, eventlog::StoreError::Invalid(m) if m.contains("moved")) => {
            None
        }
        Err(e) => panic!("bulk append: {e}"),
    }
}

fn parse_ack(line: &str) -> Option<(u64, Uuid)> {
    let mut parts = line.strip_prefix("ACK ")?.split(' ');
    Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
}

/// A delay between 5 and 120 ms that differs from round to round.
fn delay(round: u64) -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64;
    Duration::from_millis(5 + (nanos / 1000 + round * 37) % 115)
}

#[test]
fn killed_appenders_lose_no_acknowledged_event() {
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let mut acked: Vec<(u64, Uuid)> = Vec::new();
    for round in 0..ROUNDS {
        let mut child = Command::new(&exe)
            .args([
                "--exact",
                "crash_child_appender",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(ack) = parse_ack(&line) {
                    if tx.send(ack).is_err() {
                        break;
                    }
                }
            }
        });
        // Kill only once the child is really appending, at a varying moment.
        let first = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("the child acknowledged no append");
        std::thread::sleep(delay(round));
        child.kill().unwrap();
        child.wait().unwrap();
        reader.join().unwrap();
        acked.push(first);
        acked.extend(rx.try_iter());

        let store = open(dir.path());
        let report = store.verify(&mut |_| {}).expect("verify after kill");
        let events = rt
            .block_on(store.read_all(0, usize::MAX, &Filter::default()))
            .unwrap();
        assert_eq!(report.events, events.len() as u64);
        for &(position, id) in &acked {
            let ev = events.get(position as usize - 1).unwrap_or_else(|| {
                panic!("round {round}: acknowledged position {position} is gone")
            });
            assert_eq!(
                ev.id, id,
                "round {round}: position {position} holds another event"
            );
        }
        drop(store);
    }
    // Positions never repeat across rounds: every restart continued the same log.
    let mut positions: Vec<_> = acked.iter().map(|a| a.0).collect();
    positions.sort_unstable();
    positions.dedup();
    assert_eq!(positions.len(), acked.len());
    // The bulk writer's chunks went to the chunk file (and were checked above with the rest).
    let outside = std::fs::metadata(dir.path().join("chunks")).unwrap().len();
    assert!(outside > 0, "no bulk append reached the chunk file");
    eprintln!(
        "{ROUNDS} kills, {} acknowledged events checked",
        acked.len()
    );
}
