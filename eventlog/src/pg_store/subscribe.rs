//! Subscriptions: pages read through the pool from the next position on (catch-up), then,
//! once caught up, a wait for the node's head watermark to move (woken by this node's writer
//! or, for other nodes' appends, by `listen`). A read that fails for want of a connection is
//! retried with backoff: the subscription survives the database restarting.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use futures::stream::BoxStream;
use tokio::sync::watch;

use super::{pool_error, Shared};
use crate::{Filter, RecordedEvent, StoreError};

/// Events read per page.
const PAGE: usize = 10_000;
/// A caught-up subscriber reads anyway after this long without a wake-up (a safety net, not
/// the mechanism: at one read per subscriber every few seconds there is no polling storm).
const IDLE_CHECK: Duration = Duration::from_secs(3);
const MAX_BACKOFF: Duration = Duration::from_secs(2);

struct Sub {
    pool: deadpool_postgres::Pool,
    shared: Arc<Shared>,
    head: watch::Receiver<u64>,
    filter: Filter,
    /// Position of the next event to consider.
    next: u64,
    buffer: VecDeque<RecordedEvent>,
    backoff: Duration,
    /// While catching up: the next page, being read while this one is delivered.
    prefetch: Option<tokio::task::JoinHandle<Result<Vec<RecordedEvent>, StoreError>>>,
}

pub(crate) fn subscribe(
    pool: deadpool_postgres::Pool,
    shared: Arc<Shared>,
    from: u64,
    filter: Filter,
) -> BoxStream<'static, Result<RecordedEvent, StoreError>> {
    let sub = Sub {
        head: shared.head_tx.subscribe(),
        pool,
        shared,
        filter,
        next: from.max(1),
        buffer: VecDeque::new(),
        backoff: Duration::from_millis(50),
        prefetch: None,
    };
    Box::pin(futures::stream::unfold(sub, |mut sub| async move {
        sub.next_event().await.map(|r| (r, sub))
    }))
}

/// The page of the log from `from` (the catch-up path `read_all` takes too).
async fn page(pool: &deadpool_postgres::Pool, from: u64) -> Result<Vec<RecordedEvent>, StoreError> {
    let client = pool.get().await.map_err(pool_error)?;
    super::page::page(&client, from, PAGE).await
}

impl Sub {
    async fn page(&mut self) -> Result<Vec<RecordedEvent>, StoreError> {
        let read = match self.prefetch.take() {
            Some(h) => h
                .await
                .unwrap_or_else(|e| Err(StoreError::Backend(format!("a page read failed: {e}")))),
            None => page(&self.pool, self.next).await,
        };
        if let Ok(events) = &read {
            if events.len() == PAGE {
                // More to catch up on: read the next page while this one is delivered.
                let from = events[events.len() - 1].position + 1;
                let pool = self.pool.clone();
                self.prefetch = Some(tokio::spawn(async move { page(&pool, from).await }));
            }
        }
        read
    }

    async fn next_event(&mut self) -> Option<Result<RecordedEvent, StoreError>> {
        loop {
            if let Some(ev) = self.buffer.pop_front() {
                if self.filter.matches(&ev) {
                    return Some(Ok(ev));
                }
                continue;
            }
            // Seen before reading: a head that moves after this wakes the wait below.
            let seen = *self.head.borrow_and_update();
            match self.page().await {
                Ok(events) if !events.is_empty() => {
                    self.backoff = Duration::from_millis(50);
                    self.next = events[events.len() - 1].position + 1;
                    self.buffer = events.into();
                    continue;
                }
                Ok(_) => {
                    if self.shared.closed.load(Ordering::Acquire) {
                        return None;
                    }
                    if seen < self.next {
                        let _ = tokio::time::timeout(IDLE_CHECK, self.head.changed()).await;
                    } else {
                        // The head says more is committed than we read: a moment, then again.
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                }
                Err(e @ StoreError::Corrupt { .. }) => return Some(Err(e)),
                Err(e) => {
                    if self.shared.closed.load(Ordering::Acquire) {
                        return None;
                    }
                    tracing::warn!(error = %e, "a subscription's read failed; retrying");
                    tokio::time::sleep(self.backoff).await;
                    self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    }
}
