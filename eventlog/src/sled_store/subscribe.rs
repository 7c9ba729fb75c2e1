//! Live subscriptions: catch up from disk, then follow the durable watermark.
//!
//! A subscriber only ever tracks `next`, the next position it has not looked at, and reads
//! from disk whatever lies between `next` and the durable watermark. The writer publishes the
//! watermark through a `watch` channel, which never blocks and never queues: a slow
//! subscriber just sees a later value. So the switch from catch-up to live has no gap and no
//! duplicate whatever the timing, and a subscriber never holds up an append.

use std::collections::VecDeque;
use std::sync::Arc;

use futures::stream::{BoxStream, StreamExt};
use tokio::sync::watch;

use super::{read, Shared};
use crate::{Filter, RecordedEvent, StoreError};

/// At most this many positions are examined per disk read.
const SPAN: u64 = 1024;

struct Subscription {
    shared: Arc<Shared>,
    durable: watch::Receiver<u64>,
    next: u64,
    buffered: VecDeque<RecordedEvent>,
    filter: Filter,
    failed: bool,
}

impl Subscription {
    /// Reads the next span up to `durable` into the buffer.
    fn fill(&mut self, durable: u64) -> Result<(), StoreError> {
        let to = durable.min(self.next.saturating_add(SPAN - 1));
        let shared = &self.shared;
        let (events, last_seen) = shared.read(self.next, || {
            read::scan(shared, self.next, to, usize::MAX, &self.filter)
        })?;
        if last_seen < to {
            return shared.watch(Err(StoreError::Corrupt {
                position: last_seen + 1,
                reason: "missing record below the durable watermark".into(),
            }));
        }
        self.next = to + 1;
        self.buffered.extend(events);
        Ok(())
    }
}

pub(crate) fn subscribe(
    shared: Arc<Shared>,
    from_position: u64,
    filter: Filter,
) -> BoxStream<'static, Result<RecordedEvent, StoreError>> {
    let sub = Subscription {
        durable: shared.durable_tx.subscribe(),
        shared,
        next: from_position.max(1),
        buffered: VecDeque::new(),
        filter,
        failed: false,
    };
    futures::stream::unfold(sub, |mut sub| async move {
        loop {
            if sub.failed {
                return None;
            }
            if let Some(ev) = sub.buffered.pop_front() {
                return Some((Ok(ev), sub));
            }
            // Marks the current value seen, so `changed` below wakes for any later one.
            let durable = *sub.durable.borrow_and_update();
            if sub.next <= durable {
                if let Err(e) = sub.fill(durable) {
                    sub.failed = true;
                    return Some((Err(e), sub));
                }
                continue;
            }
            if sub.shared.closed.load(std::sync::atomic::Ordering::Acquire) {
                return None;
            }
            if sub.durable.changed().await.is_err() {
                return None;
            }
        }
    })
    .boxed()
}
