//! `dealtrail demo`: writes the demo organisation (see [`crate::demo`]) into the store.

use std::path::Path;

use chrono::{DurationRound, TimeDelta, Utc};
use eventlog::{EventStore, ExpectedVersion, StreamBatch};

use super::{open_store, progress, CliError};

pub async fn run(data: &Path) -> Result<(), CliError> {
    let store = open_store(data).await?;
    let written = write_demo(store.as_ref()).await?;
    eprintln!("demo organisation written: {written} new events");
    Ok(())
}

/// Appends the demo organisation (12 months ending today) and returns how many events were
/// new. Idempotent on the same day: the events carry deterministic ids.
pub async fn write_demo(store: &dyn EventStore) -> Result<u64, CliError> {
    let end = Utc::now()
        .duration_trunc(TimeDelta::days(1))
        .map_err(|e| CliError::failure(e.to_string()))?;
    let events = crate::demo::generate(end, crate::demo::SEED);
    let before = store.last_position().await?;
    let bar = progress::bar(Some(events.len() as u64), "writing demo");
    for chunk in events.chunks(2000) {
        let batches = chunk
            .iter()
            .map(|e| StreamBatch {
                stream: e.stream.clone(),
                expected: ExpectedVersion::Any,
                events: vec![e.event.clone()],
            })
            .collect();
        store.append_multi(batches).await.map_err(|e| {
            let at = e
                .index
                .and_then(|i| chunk.get(i))
                .map(|d| format!(" ({} on {})", d.event.event_type, d.stream))
                .unwrap_or_default();
            CliError::failure(format!("demo event refused{at}: {}", e.error))
        })?;
        bar.inc(chunk.len() as u64);
    }
    bar.finish_and_clear();
    Ok(store.last_position().await? - before)
}
