//! The [`LogView`] a validator sees while the writer decides a batch: the committed log, read
//! inside the writer's transaction (which holds the head lock, so no node can append
//! meanwhile), plus what was accepted earlier in the same group commit (not written yet).

use tokio::runtime::Runtime;
use tokio_postgres::Client;

use super::read::{decode_all, RECORD};
use super::{db_error, Shared};
use crate::{LogView, RecordedEvent, StoreError};

pub(crate) struct PgView<'a> {
    pub rt: &'a Runtime,
    pub client: &'a Client,
    pub shared: &'a Shared,
    /// Accepted but not yet written events of the current group commit, in log order.
    pub group: &'a [RecordedEvent],
    /// Accepted events of the current request (earlier batches of a multi-stream append).
    pub request: &'a [RecordedEvent],
}

impl PgView<'_> {
    fn load(
        &self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
        pending: impl Fn(&RecordedEvent) -> bool,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let rows = self
            .rt
            .block_on(self.client.query(sql, params))
            .map_err(db_error)?;
        let mut out = decode_all(&rows)?;
        // Pending events come after everything committed.
        out.extend(
            self.group
                .iter()
                .chain(self.request)
                .filter(|e| pending(e))
                .cloned(),
        );
        Ok(out)
    }
}

impl LogView for PgView<'_> {
    fn stream(&self, stream: &str) -> Result<Vec<RecordedEvent>, StoreError> {
        self.load(
            &format!("SELECT {RECORD} FROM events WHERE stream = $1 ORDER BY version"),
            &[&stream],
            |e| e.stream == stream,
        )
    }

    fn streams_with_prefix(&self, prefix: &str) -> Result<Vec<RecordedEvent>, StoreError> {
        self.shared
            .prefixes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(prefix.to_string());
        // Stream names are ASCII (`domain::StreamName`) and compare bytewise (C collation),
        // so the streams under `prefix` are the index range [prefix, prefix + DEL).
        let upper = format!("{prefix}\u{7f}");
        self.load(
            &format!(
                "SELECT {RECORD} FROM events WHERE stream >= $1 AND stream < $2 \
                 AND starts_with(stream, $1) ORDER BY position"
            ),
            &[&prefix, &upper],
            |e| e.stream.starts_with(prefix),
        )
    }
}
