//! `import`'s steps one by one (read, dry-run check, append), for the fuzz targets in
//! `api/fuzz`, which check that a file the check accepts is accepted by the append. Not an
//! API.

use chrono::{DateTime, Utc};
use eventlog::{EventStore, ProposedEvent};

use super::import::{self, Line};
use super::{import_check, CliError};

/// NDJSON lines as `import` read them.
pub struct ImportLines(Vec<Line>);

impl ImportLines {
    /// Reads NDJSON as `import` reads a file.
    pub fn read(ndjson: &[u8]) -> Result<ImportLines, CliError> {
        let mut lines = Vec::new();
        import::read_lines("<fuzz>".into(), ndjson, false, &mut lines)?;
        Ok(ImportLines(lines))
    }

    /// Each line as its stream and the event `import` appends.
    pub fn events(&self) -> Vec<(String, ProposedEvent)> {
        let line = |l: &Line| (l.event.stream.clone(), import::proposed(&l.event));
        self.0.iter().map(line).collect()
    }

    /// `import`'s dry run; `Ok` with how many lines are already in the log.
    pub async fn check(
        &self,
        store: &dyn EventStore,
        now: DateTime<Utc>,
    ) -> Result<usize, CliError> {
        let checked = import_check::check(store, &self.0, now).await?;
        Ok(checked.already_present)
    }

    /// `import`'s check, then its append of the checked lines (the store's bulk path, which
    /// the in-memory store serves by checking everything again).
    pub async fn append(&self, store: &dyn EventStore) -> Result<(), CliError> {
        let checked = import_check::check(store, &self.0, Utc::now()).await?;
        import::append_checked(store, &self.0, &checked, |_| {}).await?;
        Ok(())
    }
}
