//! The single writer thread. It drains every queued request, decides and writes them one
//! after the other (so each validator call sees exactly the state its batch lands on), then
//! flushes once for the whole group and only then acknowledges. A failed flush poisons the
//! store: nothing more is acknowledged until a restart.

use std::collections::HashMap;
use std::ops::Range;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::Ordering;
use std::sync::{mpsc, Arc};

use tokio::sync::oneshot;
use uuid::Uuid;

use super::view::WriterView;
use super::{backend, frame, keys, prepare, read, Shared, Tail};
use crate::record::encode_record;
use crate::{
    AppendOutcome, AppendValidator, MultiAppendError, RecordedEvent, StoreError, StreamBatch,
};

/// At most this many requests share one flush.
const MAX_GROUP: usize = 4096;

type Reply = Result<Vec<AppendOutcome>, MultiAppendError>;

pub(crate) struct Request {
    pub batches: Vec<StreamBatch>,
    pub reply: oneshot::Sender<Reply>,
}

pub(crate) struct Writer {
    shared: Arc<Shared>,
    validator: Arc<dyn AppendValidator>,
    /// The position the next event gets.
    next_position: u64,
    /// The chain hash of the last written record.
    last_hash: [u8; frame::HASH_LEN],
    /// Last version of streams seen so far (authoritative once present).
    versions: HashMap<String, u64>,
}

fn poisoned_error() -> MultiAppendError {
    MultiAppendError::general(backend(
        "the store refuses appends after a failed disk flush; restart the service",
    ))
}

impl Writer {
    pub(crate) fn new(
        shared: Arc<Shared>,
        validator: Arc<dyn AppendValidator>,
        tail: Tail,
    ) -> Writer {
        Writer {
            shared,
            validator,
            next_position: tail.position + 1,
            last_hash: tail.hash,
            versions: HashMap::new(),
        }
    }

    pub(crate) fn run(mut self, requests: mpsc::Receiver<Request>) {
        while let Ok(first) = requests.recv() {
            let mut group = vec![first];
            while group.len() < MAX_GROUP {
                match requests.try_recv() {
                    Ok(r) => group.push(r),
                    Err(_) => break,
                }
            }
            self.commit_group(group);
        }
    }

    fn poisoned(&self) -> bool {
        self.shared.poisoned.load(Ordering::Acquire)
    }

    fn commit_group(&mut self, group: Vec<Request>) {
        let mut answers = Vec::with_capacity(group.len());
        let mut wrote = false;
        for req in group {
            let answer = if self.poisoned() {
                Err(poisoned_error())
            } else {
                self.apply_request(req.batches).map(|(outcomes, w)| {
                    wrote |= w;
                    outcomes
                })
            };
            answers.push((req.reply, answer));
        }
        if wrote {
            match self.shared.db.flush() {
                Ok(_) => self.shared.publish_durable(self.next_position - 1),
                Err(e) => {
                    tracing::error!(error = %e, "flushing the event log failed; refusing further appends");
                    self.shared.poisoned.store(true, Ordering::Release);
                    for (_, answer) in answers.iter_mut() {
                        if answer.is_ok() {
                            *answer = Err(MultiAppendError::general(backend(format!(
                                "the append could not be made durable: {e}"
                            ))));
                        }
                    }
                }
            }
        }
        for (reply, answer) in answers {
            // The caller may have gone away; its append stands regardless.
            let _ = reply.send(answer);
        }
    }

    fn stream_version(&mut self, stream: &str) -> Result<Option<u64>, StoreError> {
        if let Some(v) = self.versions.get(stream) {
            return Ok(Some(*v));
        }
        let last = self
            .shared
            .tree
            .scan_prefix(keys::stream_prefix(stream))
            .next_back()
            .transpose()
            .map_err(backend)?;
        let version = last.and_then(|(k, _)| keys::parse_stream_key(&k).map(|(_, v)| v));
        if let Some(v) = version {
            self.versions.insert(stream.to_string(), v);
        }
        Ok(version)
    }

    /// If every event of the batch is already in the log (or earlier in this request) with
    /// the same content, the original outcome. `None` if none of them is.
    fn deduplicate(
        &self,
        batch: &StreamBatch,
        pending: &[RecordedEvent],
        pending_ids: &HashMap<Uuid, usize>,
    ) -> Result<Option<AppendOutcome>, StoreError> {
        let tree = &self.shared.tree;
        let mut found = Vec::new();
        for (k, ev) in batch.events.iter().enumerate() {
            let Some(id) = ev.id else { continue };
            let existing = match pending_ids.get(&id) {
                Some(&j) => Some(pending[j].clone()),
                None => match tree.get(keys::id_key(&id)).map_err(backend)? {
                    Some(v) => Some(read::record_at(tree, read::index_position(&v)?)?),
                    None => None,
                },
            };
            if let Some(existing) = existing {
                if !prepare::same_content(&batch.stream, ev, &existing) {
                    return Err(StoreError::IdConflict {
                        id,
                        position: existing.position,
                    });
                }
                found.push((k, existing));
            }
        }
        if found.is_empty() {
            return Ok(None);
        }
        if found.len() < batch.events.len() {
            let (k, e) = &found[0];
            return Err(StoreError::Invalid(format!(
                "event {k}: id {} is already in the log (position {}) but other events of the \
                 batch are not: retry a batch whole, or drop the events already written",
                e.id, e.position
            )));
        }
        Ok(Some(AppendOutcome {
            first_position: found.iter().map(|(_, e)| e.position).min().unwrap_or(0),
            last_position: found.iter().map(|(_, e)| e.position).max().unwrap_or(0),
            next_expected_version: found.iter().map(|(_, e)| e.version).max().unwrap_or(0),
        }))
    }

    fn validate(
        &self,
        stream: &str,
        pending: &[RecordedEvent],
        batch: &[RecordedEvent],
    ) -> Result<(), StoreError> {
        let view = WriterView {
            tree: &self.shared.tree,
            pending,
        };
        let verdict = catch_unwind(AssertUnwindSafe(|| {
            self.validator.validate(&view, stream, batch)
        }))
        .map_err(|_| backend("the append validator panicked"))?;
        verdict.map_err(|mut r| {
            if r.index.is_none() && batch.len() == 1 {
                r.index = Some(0);
            }
            StoreError::Rejected(r)
        })
    }

    /// Decides and writes (without flushing) one request. Returns the outcomes and whether
    /// anything was written. On error nothing of the request is written.
    fn apply_request(
        &mut self,
        batches: Vec<StreamBatch>,
    ) -> Result<(Vec<AppendOutcome>, bool), MultiAppendError> {
        let now = prepare::now();
        let mut pending: Vec<RecordedEvent> = Vec::new();
        let mut pending_ids: HashMap<Uuid, usize> = HashMap::new();
        let mut pending_versions: HashMap<String, u64> = HashMap::new();
        let mut written: Vec<Range<usize>> = Vec::new();
        let mut outcomes = Vec::with_capacity(batches.len());
        let mut position = self.next_position;
        for (i, batch) in batches.into_iter().enumerate() {
            let at = |e| MultiAppendError::at(i, e);
            prepare::check_envelope(&batch).map_err(at)?;
            if let Some(outcome) = self
                .deduplicate(&batch, &pending, &pending_ids)
                .map_err(at)?
            {
                outcomes.push(outcome);
                continue;
            }
            let current = match pending_versions.get(&batch.stream) {
                Some(v) => Some(*v),
                None => self.stream_version(&batch.stream).map_err(at)?,
            };
            prepare::check_expected(&batch.stream, batch.expected, current).map_err(at)?;
            let first_version = current.map_or(0, |v| v + 1);
            let first_position = position;
            let recorded: Vec<RecordedEvent> = batch
                .events
                .into_iter()
                .enumerate()
                .map(|(k, ev)| {
                    let r =
                        prepare::assign(&batch.stream, ev, first_version + k as u64, position, now);
                    position += 1;
                    r
                })
                .collect();
            self.validate(&batch.stream, &pending, &recorded)
                .map_err(at)?;
            let last = recorded.len() as u64 - 1;
            outcomes.push(AppendOutcome {
                first_position,
                last_position: first_position + last,
                next_expected_version: first_version + last,
            });
            pending_versions.insert(batch.stream, first_version + last);
            let start = pending.len();
            for ev in recorded {
                pending_ids.insert(ev.id, pending.len());
                pending.push(ev);
            }
            written.push(start..pending.len());
        }
        if pending.is_empty() {
            return Ok((outcomes, false));
        }
        let mut hash = self.last_hash;
        let mut sled_batch = sled::Batch::default();
        for ev in &pending {
            let (value, h) = frame::seal(&hash, &encode_record(ev));
            hash = h;
            let pos = keys::position_value(ev.position);
            sled_batch.insert(&keys::log_key(ev.position), value);
            sled_batch.insert(keys::stream_key(&ev.stream, ev.version), &pos);
            sled_batch.insert(&keys::id_key(&ev.id), &pos);
        }
        if let Err(e) = self.shared.tree.apply_batch(sled_batch) {
            tracing::error!(error = %e, "writing to the event log failed; refusing further appends");
            self.shared.poisoned.store(true, Ordering::Release);
            return Err(MultiAppendError::general(backend(e)));
        }
        self.next_position = position;
        self.last_hash = hash;
        self.versions.extend(pending_versions);
        for range in written {
            let batch = &pending[range];
            if catch_unwind(AssertUnwindSafe(|| self.validator.applied(batch))).is_err() {
                tracing::error!("the append validator panicked in `applied`");
            }
        }
        Ok((outcomes, true))
    }
}
