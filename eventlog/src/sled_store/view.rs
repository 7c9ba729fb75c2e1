//! The [`LogView`] a validator sees while the writer decides a batch: everything written so
//! far (durable or still in the current group commit) plus the earlier batches of the same
//! multi-stream request, which are not in the tree yet.

use super::{backend, keys, read};
use crate::{LogView, RecordedEvent, StoreError};

pub(crate) struct WriterView<'a> {
    pub tree: &'a sled::Tree,
    /// Accepted but not yet applied events of the current request, in log order.
    pub pending: &'a [RecordedEvent],
}

impl WriterView<'_> {
    fn positions_under(&self, prefix: &[u8]) -> Result<Vec<u64>, StoreError> {
        let mut positions = Vec::new();
        for item in self.tree.scan_prefix(prefix) {
            let (_, v) = item.map_err(backend)?;
            positions.push(read::index_position(&v)?);
        }
        Ok(positions)
    }

    fn load(
        &self,
        mut positions: Vec<u64>,
        pending: impl Fn(&RecordedEvent) -> bool,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        positions.sort_unstable();
        let mut out = positions
            .into_iter()
            .map(|p| read::record_at(self.tree, p))
            .collect::<Result<Vec<_>, _>>()?;
        // Pending events come after everything in the tree.
        out.extend(self.pending.iter().filter(|e| pending(e)).cloned());
        Ok(out)
    }
}

impl LogView for WriterView<'_> {
    fn stream(&self, stream: &str) -> Result<Vec<RecordedEvent>, StoreError> {
        let positions = self.positions_under(&keys::stream_prefix(stream))?;
        self.load(positions, |e| e.stream == stream)
    }

    fn streams_with_prefix(&self, prefix: &str) -> Result<Vec<RecordedEvent>, StoreError> {
        let positions = self.positions_under(&keys::streams_prefix(prefix))?;
        self.load(positions, |e| e.stream.starts_with(prefix))
    }
}
