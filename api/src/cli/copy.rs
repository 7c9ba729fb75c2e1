//! `dealtrail copy --to URL`: the whole log of the selected store into another, empty store
//! (sled → PostgreSQL, PostgreSQL → sled, …). Events are appended in log order, each
//! stream's run with the expected version it must land on, with their ids, times and actors;
//! in an empty store that gives every event its original position and version, and so the
//! same records and the same hash chain. The target takes the events as they are (envelope
//! checks only: the domain's rules judged them when they were first written). The log is
//! copied as stored, personal data sealed, and the keys of persons (erased ones as
//! tombstones) before it (SPEC §7). Then both stores are verified and their reports
//! compared.

use std::path::Path;
use std::sync::Arc;

use eventlog::{
    EventStore, ExpectedVersion, Filter, ProposedEvent, RecordedEvent, StreamBatch, VerifyReport,
};

use super::store::{open_at, Location, Store};
use super::{open_existing_store, progress, CliError, ExitCode};

/// Events copied per atomic append.
const PAGE: usize = 5000;

#[derive(Debug, clap::Args)]
pub struct CopyArgs {
    /// The empty store to copy into: `postgres://…` or `sled:DIR`.
    #[arg(long, value_name = "URL")]
    pub to: String,
}

pub async fn run(data: &Path, args: &CopyArgs) -> Result<(), CliError> {
    let target_at = Location::parse(&args.to)?;
    let source = open_existing_store(data).await?;
    let target = open_at(&target_at, Arc::new(eventlog::EnvelopeOnly)).await?;
    let to = target_at.display();
    if target.last_position().await? != 0 {
        return Err(CliError::new(
            ExitCode::Usage,
            format!("{to} already holds events: copy only into an empty store"),
        ));
    }
    let keys = source.keys().entries().await?;
    let persons = keys.len();
    target.keys().put(keys).await?;
    if persons > 0 {
        eprintln!("copied the keys of {persons} persons to {to}");
    }
    let (source_log, target_log) = (source.raw(), target.raw());
    let last = source.last_position().await?;
    let bar = progress::bar(Some(last), "copying");
    let started = std::time::Instant::now();
    let mut next = 1;
    while next <= last {
        let page = source_log.read_all(next, PAGE, &Filter::default()).await?;
        let Some(end) = page.last().map(|e| e.position) else {
            break;
        };
        copy_page(target_log.as_ref(), page).await?;
        bar.inc(end + 1 - next);
        next = end + 1;
    }
    bar.finish_and_clear();
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "copied {last} events to {to} in {secs:.2} s ({:.0} events/s); verifying both",
        last as f64 / secs.max(1e-9)
    );
    let from = verify(&source).await?;
    let copied = verify(&target).await?;
    println!("source: {}", summary(&from));
    println!("copy:   {}", summary(&copied));
    if from != copied {
        return Err(CliError::failure(
            "the copy's verification differs from the source's (see above)",
        ));
    }
    println!("ok: both verified, same events, streams and head hash");
    Ok(())
}

fn summary(r: &VerifyReport) -> String {
    format!(
        "{} events, {} streams, head hash {}",
        r.events, r.streams, r.head_hash
    )
}

async fn verify(store: &Store) -> Result<VerifyReport, CliError> {
    Ok(store.verify(&mut |_| {}).await?)
}

/// Appends one page of the source's log, in order, as one atomic append of stream runs.
async fn copy_page(target: &dyn EventStore, page: Vec<RecordedEvent>) -> Result<(), CliError> {
    let first = page[0].position;
    let mut batches: Vec<StreamBatch> = Vec::new();
    for ev in page {
        if ev.schema_version != 0 {
            return Err(CliError::failure(format!(
                "position {}: schema version {} cannot be copied by this dealtrail",
                ev.position, ev.schema_version
            )));
        }
        let proposed = ProposedEvent {
            id: Some(ev.id),
            event_type: ev.event_type,
            occurred_at: Some(ev.occurred_at),
            actor: Some(ev.actor),
            data: ev.data,
            metadata: Some(ev.metadata),
            recorded_at: Some(ev.recorded_at),
        };
        match batches.last_mut() {
            Some(b) if b.stream == ev.stream => b.events.push(proposed),
            _ => batches.push(StreamBatch {
                expected: match ev.version {
                    0 => ExpectedVersion::NoStream,
                    v => ExpectedVersion::Exact(v - 1),
                },
                stream: ev.stream,
                events: vec![proposed],
            }),
        }
    }
    let outcomes = target
        .append_multi(batches)
        .await
        .map_err(|e| CliError::failure(format!("copying from position {first}: {e}")))?;
    if outcomes.first().map(|o| o.first_position) != Some(first) {
        return Err(CliError::failure(format!(
            "copying from position {first}: the target placed it at {:?}",
            outcomes.first().map(|o| o.first_position)
        )));
    }
    Ok(())
}
