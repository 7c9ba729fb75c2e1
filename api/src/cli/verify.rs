//! `dealtrail verify`: checksums and the hash chain over the whole log, then the read
//! model's snapshot (its checksum, and that it belongs to this log: see [`crate::snapshot`]).

use std::path::Path;

use super::{open_existing_store, progress, CliError, ExitCode};
use crate::snapshot;

pub async fn run(data: &Path) -> Result<(), CliError> {
    let store = open_existing_store(data).await?;
    let bar = progress::bar(None, "verifying");
    let mut seen = 0u64;
    let report = store
        .verify(&mut |position| {
            seen = position;
            if position % 10_000 == 0 {
                bar.set_position(position);
            }
        })
        .await;
    bar.finish_and_clear();
    let report = report?;
    println!(
        "ok: {} events verified, hash chain intact (last position {seen})",
        report.events
    );
    let file = snapshot::path(data);
    match snapshot::check(&file, store.as_ref()).await? {
        snapshot::Check::Absent => println!("no read model snapshot (it is built at start)"),
        snapshot::Check::Valid(model) => println!(
            "ok: read model snapshot intact, tied to the log at position {}",
            model.last_position
        ),
        snapshot::Check::Invalid(why) => {
            return Err(CliError::new(
                ExitCode::Corrupt,
                format!(
                    "the read model snapshot {} is not to be trusted: {why}\n\
                     the log itself is intact; `dealtrail rebuild` (or the next `serve`) rebuilds the snapshot from it",
                    file.display()
                ),
            ))
        }
    }
    Ok(())
}
