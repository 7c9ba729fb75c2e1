//! An in-memory [`EventStore`] for fast tests: a `Mutex`'d vector of events, a per-stream
//! index, an id map for idempotency and a `broadcast` channel for live subscribers.
//!
//! It honours the same contract as the durable stores: expected versions, idempotency by
//! event id, envelope checks, the [`AppendValidator`], and gap-free, duplicate-free
//! subscriptions (catch-up, then live). Nothing survives the process.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use futures::stream::BoxStream;
use tokio::sync::broadcast;
use uuid::Uuid;

use crate::prepare;
use crate::{
    AppendOutcome, AppendValidator, EnvelopeOnly, EventStore, ExpectedVersion, Filter, LogView,
    ProposedEvent, RecordedEvent, StoreError, StreamBatch,
};

/// How many events a live subscriber may fall behind before it re-reads from the log.
const LIVE_BUFFER: usize = 1024;

#[derive(Default)]
struct Log {
    /// `events[i]` has position `i + 1`.
    events: Vec<RecordedEvent>,
    /// Positions of each stream's events, by version.
    streams: HashMap<String, Vec<u64>>,
    /// Event id → position.
    ids: HashMap<Uuid, u64>,
}

impl Log {
    /// Drops every event after `len` (undoing a multi-stream append that failed part-way).
    fn truncate(&mut self, len: usize) {
        for ev in self.events.drain(len..) {
            self.ids.remove(&ev.id);
            if let Some(ps) = self.streams.get_mut(&ev.stream) {
                ps.retain(|&p| p != ev.position);
                if ps.is_empty() {
                    self.streams.remove(&ev.stream);
                }
            }
        }
    }

    fn at(&self, position: u64) -> &RecordedEvent {
        &self.events[(position - 1) as usize]
    }

    fn stream_version(&self, stream: &str) -> Option<u64> {
        self.streams.get(stream).map(|p| p.len() as u64 - 1)
    }
}

impl LogView for Log {
    fn stream(&self, stream: &str) -> Result<Vec<RecordedEvent>, StoreError> {
        Ok(self
            .streams
            .get(stream)
            .map(|ps| ps.iter().map(|p| self.at(*p).clone()).collect())
            .unwrap_or_default())
    }

    fn streams_with_prefix(&self, prefix: &str) -> Result<Vec<RecordedEvent>, StoreError> {
        Ok(self
            .events
            .iter()
            .filter(|e| e.stream.starts_with(prefix))
            .cloned()
            .collect())
    }
}

struct Shared {
    log: Mutex<Log>,
    live: broadcast::Sender<RecordedEvent>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Log> {
        // A panic while holding the lock cannot leave the log half-written (appends build
        // the batch first and push it afterwards), so a poisoned lock is still usable.
        self.log.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// An in-memory event store. Cheap to clone (clones share the log).
#[derive(Clone)]
pub struct MemoryStore {
    shared: Arc<Shared>,
    validator: Arc<dyn AppendValidator>,
}

impl Default for MemoryStore {
    fn default() -> Self {
        MemoryStore::new()
    }
}

impl MemoryStore {
    /// A store that accepts every well-formed envelope.
    pub fn new() -> MemoryStore {
        MemoryStore::with_validator(Arc::new(EnvelopeOnly))
    }

    /// A store that asks `validator` before every append.
    pub fn with_validator(validator: Arc<dyn AppendValidator>) -> MemoryStore {
        let (live, _) = broadcast::channel(LIVE_BUFFER);
        MemoryStore {
            shared: Arc::new(Shared {
                log: Mutex::new(Log::default()),
                live,
            }),
            validator,
        }
    }

    fn append_locked(
        &self,
        log: &mut Log,
        stream: &str,
        expected: ExpectedVersion,
        events: Vec<ProposedEvent>,
    ) -> Result<(AppendOutcome, Vec<RecordedEvent>), StoreError> {
        // The same envelope checks, expected-version check and assignment of ids, versions,
        // positions, times and actor as the durable store (`sled_store::prepare`).
        let request = StreamBatch {
            stream: stream.to_string(),
            expected,
            events,
        };
        prepare::check_envelope(&request)?;
        if let Some(outcome) = idempotent_outcome(log, stream, &request.events)? {
            return Ok((outcome, Vec::new()));
        }
        let actual = log.stream_version(stream);
        prepare::check_expected(stream, expected, actual)?;
        let now = prepare::now();
        let first_position = log.events.len() as u64 + 1;
        let first_version = actual.map_or(0, |v| v + 1);
        let batch: Vec<RecordedEvent> = (request.events.into_iter().enumerate())
            .map(|(i, p)| {
                let i = i as u64;
                prepare::assign(stream, p, first_version + i, first_position + i, now)
            })
            .collect();
        self.validator
            .validate(&*log, stream, &batch)
            .map_err(StoreError::from)?;
        for ev in &batch {
            log.ids.insert(ev.id, ev.position);
            log.streams
                .entry(ev.stream.clone())
                .or_default()
                .push(ev.position);
            log.events.push(ev.clone());
        }
        self.validator.applied(&batch);
        let last = batch.last().map_or((0, 0), |e| (e.position, e.version));
        Ok((
            AppendOutcome {
                first_position,
                last_position: last.0,
                next_expected_version: last.1,
            },
            batch,
        ))
    }
}

/// If the batch's ids are already in the log: the original outcome (same content) or a
/// conflict (other content). `None` when the batch is new.
fn idempotent_outcome(
    log: &Log,
    stream: &str,
    events: &[ProposedEvent],
) -> Result<Option<AppendOutcome>, StoreError> {
    // Ids appearing twice in the batch were refused by `prepare::check_envelope`.
    let mut known = Vec::new();
    for p in events {
        let Some(id) = p.id else { continue };
        if let Some(&position) = log.ids.get(&id) {
            let original = log.at(position);
            if !prepare::same_content(stream, p, original) {
                return Err(StoreError::IdConflict { id, position });
            }
            known.push(original);
        }
    }
    match known.len() {
        0 => Ok(None),
        n if n == events.len() => {
            let first = known.iter().map(|e| e.position).min().unwrap_or(0);
            let last = known.iter().max_by_key(|e| e.position).copied();
            Ok(last.map(|last| AppendOutcome {
                first_position: first,
                last_position: last.position,
                next_expected_version: last.version,
            }))
        }
        _ => Err(StoreError::Invalid(
            "the batch mixes events already in the log with new ones".into(),
        )),
    }
}

#[async_trait]
impl EventStore for MemoryStore {
    async fn append(
        &self,
        stream: &str,
        expected: ExpectedVersion,
        events: Vec<ProposedEvent>,
    ) -> Result<AppendOutcome, StoreError> {
        let mut log = self.shared.lock();
        let (outcome, written) = self.append_locked(&mut log, stream, expected, events)?;
        // Sent while the lock is held, so subscribers see events in log order and a new
        // subscriber's snapshot and live feed meet exactly.
        for ev in written {
            let _ = self.shared.live.send(ev);
        }
        Ok(outcome)
    }

    async fn append_multi(
        &self,
        batches: Vec<crate::StreamBatch>,
    ) -> Result<Vec<AppendOutcome>, crate::MultiAppendError> {
        let mut log = self.shared.lock();
        let before = log.events.len();
        let mut outcomes = Vec::with_capacity(batches.len());
        let mut written = Vec::new();
        for (i, b) in batches.into_iter().enumerate() {
            match self.append_locked(&mut log, &b.stream, b.expected, b.events) {
                Ok((outcome, events)) => {
                    outcomes.push(outcome);
                    written.extend(events);
                }
                Err(e) => {
                    log.truncate(before);
                    return Err(crate::MultiAppendError::at(i, e));
                }
            }
        }
        for ev in written {
            let _ = self.shared.live.send(ev);
        }
        Ok(outcomes)
    }

    async fn event_by_id(&self, id: Uuid) -> Result<Option<RecordedEvent>, StoreError> {
        let log = self.shared.lock();
        Ok(log.ids.get(&id).map(|&p| log.at(p).clone()))
    }

    async fn read_stream(
        &self,
        stream: &str,
        from_version: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let log = self.shared.lock();
        Ok(log
            .streams
            .get(stream)
            .map(|ps| {
                ps.iter()
                    .skip(usize::try_from(from_version).unwrap_or(usize::MAX))
                    .take(limit)
                    .map(|p| log.at(*p).clone())
                    .collect()
            })
            .unwrap_or_default())
    }

    async fn read_all(
        &self,
        from_position: u64,
        limit: usize,
        filter: &Filter,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let log = self.shared.lock();
        Ok(read_from(&log, from_position, filter, limit))
    }

    async fn last_position(&self) -> Result<u64, StoreError> {
        Ok(self.shared.lock().events.len() as u64)
    }

    async fn stream_version(&self, stream: &str) -> Result<Option<u64>, StoreError> {
        Ok(self.shared.lock().stream_version(stream))
    }

    fn subscribe(
        &self,
        from_position: u64,
        filter: Filter,
    ) -> BoxStream<'static, Result<RecordedEvent, StoreError>> {
        let sub = Subscription::start(self.shared.clone(), from_position.max(1), filter);
        Box::pin(futures::stream::unfold(sub, |mut sub| async move {
            sub.next().await.map(|ev| (Ok(ev), sub))
        }))
    }
}

fn read_from(log: &Log, from_position: u64, filter: &Filter, limit: usize) -> Vec<RecordedEvent> {
    let start = usize::try_from(from_position.max(1) - 1).unwrap_or(usize::MAX);
    log.events
        .iter()
        .skip(start)
        .filter(|e| filter.matches(e))
        .take(limit)
        .cloned()
        .collect()
}

/// One subscriber: a buffer of caught-up events, then the live channel. `next` is the
/// position of the next event to consider (filtered or not), so nothing is skipped twice.
struct Subscription {
    shared: Arc<Shared>,
    filter: Filter,
    next: u64,
    buffer: VecDeque<RecordedEvent>,
    live: broadcast::Receiver<RecordedEvent>,
}

impl Subscription {
    fn start(shared: Arc<Shared>, from: u64, filter: Filter) -> Subscription {
        let (buffer, live) = Self::catch_up(&shared, from);
        Subscription {
            shared,
            filter,
            next: from,
            buffer,
            live,
        }
    }

    /// Everything from `from` on, plus a live receiver that starts exactly after it.
    fn catch_up(
        shared: &Shared,
        from: u64,
    ) -> (VecDeque<RecordedEvent>, broadcast::Receiver<RecordedEvent>) {
        let log = shared.lock();
        let all = Filter::default();
        let buffer = read_from(&log, from, &all, usize::MAX).into();
        (buffer, shared.live.subscribe())
    }

    async fn next(&mut self) -> Option<RecordedEvent> {
        loop {
            let ev = match self.buffer.pop_front() {
                Some(ev) => ev,
                None => match self.live.recv().await {
                    Ok(ev) => ev,
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        let (buffer, live) = Self::catch_up(&self.shared, self.next);
                        self.buffer = buffer;
                        self.live = live;
                        continue;
                    }
                    Err(broadcast::error::RecvError::Closed) => return None,
                },
            };
            if ev.position < self.next {
                continue; // already delivered from the catch-up buffer
            }
            self.next = ev.position + 1;
            if self.filter.matches(&ev) {
                return Some(ev);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;
    use serde_json::json;

    fn ev(t: &str) -> ProposedEvent {
        serde_json::from_value(json!({"type": t, "data": {}})).unwrap()
    }

    #[tokio::test]
    async fn appends_check_versions_and_ids() {
        let s = MemoryStore::new();
        let o = s
            .append("deal-1", ExpectedVersion::NoStream, vec![ev("A"), ev("B")])
            .await
            .unwrap();
        assert_eq!(
            (o.first_position, o.last_position, o.next_expected_version),
            (1, 2, 1)
        );
        let err = s
            .append("deal-1", ExpectedVersion::Exact(0), vec![ev("C")])
            .await
            .unwrap_err();
        assert!(matches!(
            err,
            StoreError::WrongExpectedVersion {
                actual: Some(1),
                ..
            }
        ));

        let mut with_id = ev("C");
        with_id.id = Some(Uuid::now_v7());
        let first = s
            .append("deal-1", ExpectedVersion::Exact(1), vec![with_id.clone()])
            .await
            .unwrap();
        let again = s
            .append("deal-1", ExpectedVersion::Exact(1), vec![with_id.clone()])
            .await
            .unwrap();
        assert_eq!(first, again);
        with_id.data = json!({"x": 1}).into();
        assert!(matches!(
            s.append("deal-1", ExpectedVersion::Any, vec![with_id])
                .await,
            Err(StoreError::IdConflict { position: 3, .. })
        ));
        assert!(matches!(
            s.append("nope-1", ExpectedVersion::Any, vec![ev("A")])
                .await,
            Err(StoreError::Invalid(_))
        ));
        assert!(matches!(
            s.append("deal-1", ExpectedVersion::Any, vec![]).await,
            Err(StoreError::Invalid(_))
        ));
    }

    #[tokio::test]
    async fn subscribe_catches_up_then_goes_live_without_gaps() {
        let s = MemoryStore::new();
        s.append("deal-1", ExpectedVersion::Any, vec![ev("A"), ev("B")])
            .await
            .unwrap();
        let mut sub = s.subscribe(2, Filter::default());
        s.append("deal-2", ExpectedVersion::Any, vec![ev("C")])
            .await
            .unwrap();
        let got: Vec<u64> = (&mut sub)
            .take(2)
            .map(|e| e.unwrap().position)
            .collect()
            .await;
        assert_eq!(got, vec![2, 3]);
    }
}
