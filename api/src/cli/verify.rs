//! `dealtrail verify`: checksums and the hash chain over the whole log.

use std::path::Path;

use super::{open_existing_store, progress, CliError};

pub fn run(data: &Path) -> Result<(), CliError> {
    let store = open_existing_store(data)?;
    let bar = progress::bar(None, "verifying");
    let mut seen = 0u64;
    let report = store.verify(&mut |position| {
        seen = position;
        if position % 10_000 == 0 {
            bar.set_position(position);
        }
    });
    bar.finish_and_clear();
    let report = report?;
    println!(
        "ok: {} events verified, hash chain intact (last position {seen})",
        report.events
    );
    Ok(())
}
