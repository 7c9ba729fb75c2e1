//! The [`LogView`] a validator sees while the writer decides a batch: everything written
//! (found through the stream index, in the tree or still in memory) plus what was accepted
//! earlier in the same group commit (not written yet).

use super::read::{self, Streams};
use super::Shared;
use crate::{LogView, RecordedEvent, StoreError};

pub(crate) struct WriterView<'a> {
    pub shared: &'a Shared,
    /// Accepted but not yet written events of the current group commit, in log order.
    pub group: &'a [RecordedEvent],
    /// Accepted events of the current request (earlier batches of a multi-stream append).
    pub request: &'a [RecordedEvent],
}

impl WriterView<'_> {
    fn load(
        &self,
        streams: Streams<'_>,
        pending: impl Fn(&RecordedEvent) -> bool,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let mut positions: Vec<u64> = read::runs(self.shared, streams)?
            .into_iter()
            .flat_map(|(_, run)| run.events().map(|(_, p)| p))
            .collect();
        positions.sort_unstable();
        let sled = self.shared.sled()?;
        let mut out = positions
            .into_iter()
            .map(|p| read::record_at(&sled, p))
            .collect::<Result<Vec<_>, _>>()?;
        // Pending events come after everything in the tree.
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

impl LogView for WriterView<'_> {
    fn stream(&self, stream: &str) -> Result<Vec<RecordedEvent>, StoreError> {
        self.load(Streams::One(stream), |e| e.stream == stream)
    }

    fn streams_with_prefix(&self, prefix: &str) -> Result<Vec<RecordedEvent>, StoreError> {
        self.load(Streams::Prefix(prefix), |e| e.stream.starts_with(prefix))
    }
}
