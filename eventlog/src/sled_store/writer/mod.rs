//! The single writer thread. It drains every queued request and decides them one after the
//! other (so each validator call sees exactly the state its batch lands on, including what
//! earlier requests of the same group were accepted with), then writes the whole group
//! atomically, in sled and as one record of the commit journal (see `journal`), and hands
//! the answers to the flushers (see `commit`), which sync the journal for everything handed
//! to them so far and only then move the durable watermark and acknowledge.
//!
//! A group's records are one sled insert when they fit in one chunk, else one `apply_batch`;
//! its index entries (stream runs, ids) go to memory and are written in rounds, by plain
//! inserts, once they fall due (see `index`). Keeping most groups to inserts matters beyond
//! the work saved: `apply_batch` takes sled's concurrency lock exclusively, so while one
//! runs (or waits for a sled flush in progress, which holds that lock shared for its whole
//! duration: see `Sled::gate`) every other sled reader and writer waits too.
//!
//! Answers travel through the flushers in order even when their group wrote nothing (a
//! deduplicated retry may point at a group still being synced).
//!
//! A failed write or sync (a full disk, an I/O error) refuses appends until the writer has
//! recovered by reopening the store's files (see `recover`).

mod indexer;
mod recover;

use std::collections::HashMap;
use std::ops::Range;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{mpsc, Arc};

use tokio::sync::oneshot;
use uuid::Uuid;

use super::commit::{fail_successes, Commits, Reply, Written};
use super::fault::at;
use super::fault::Fault;
use super::journal::{Journal, SledFlush};
use super::view::WriterView;
use super::{backend, frame, keys, read, Shared, Tail};
use crate::prepare;
use crate::record::encode_record_into;
use crate::{
    AppendOutcome, AppendValidator, MultiAppendError, RecordedEvent, StoreError, StreamBatch,
};

/// The writer's maps: foldhash, seeded per process (SipHash was 1-2% of an import's CPU).
type Map<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// A group's write (sled, then the journal) at least this long is logged as a warning.
const SLOW_WRITE: std::time::Duration = std::time::Duration::from_millis(50);

/// At most this many requests share one flush...
const MAX_GROUP: usize = 4096;
/// ...and no more requests join a group once it holds this many events.
const MAX_GROUP_EVENTS: usize = 50_000;
/// A chunk is closed once it holds this many bytes.
const CHUNK_BYTES: usize = 64 * 1024;
pub(crate) struct Request {
    pub batches: Vec<StreamBatch>,
    /// The result of [`prepare::check_envelope`] for each batch, done by the caller (it needs
    /// no log) so that the writer thread only has to look at it, in order.
    pub envelopes: Vec<Result<(), StoreError>>,
    /// Set for [`crate::EventStore::append_checked`]: the log's last position the caller
    /// checked the batches against.
    pub checked_at: Option<u64>,
    pub reply: oneshot::Sender<Reply>,
}

impl Request {
    pub(crate) fn new(
        batches: Vec<StreamBatch>,
        checked_at: Option<u64>,
        reply: oneshot::Sender<Reply>,
    ) -> Request {
        let envelopes = batches.iter().map(prepare::check_envelope).collect();
        Request {
            batches,
            envelopes,
            checked_at,
            reply,
        }
    }
}

/// Events accepted into the current group commit, not written yet.
#[derive(Default)]
struct Pending {
    events: Vec<RecordedEvent>,
    /// Event id → index in `events`, for the events of unchecked requests; those of checked
    /// (bulk) requests only once [`Pending::index_ids`] has run. Only a later unchecked
    /// request of the same group looks ids up here, and indexing a bulk import's 8,192 ids a
    /// request, twice (the request's map, then the group's), was a tenth of the writer's work.
    ids: Map<Uuid, usize>,
    /// Stream → its last version after these events.
    versions: Map<String, u64>,
    /// One range of `events` per accepted batch.
    runs: Vec<Range<usize>>,
    /// Some of the events come from checked (bulk) appends.
    bulk: bool,
}

impl Pending {
    /// For the events of an unchecked request (`bulk`: of a checked one, see `ids`), room for
    /// `capacity` of them.
    fn new(bulk: bool, capacity: usize) -> Pending {
        Pending {
            events: Vec::with_capacity(capacity),
            bulk,
            ..Pending::default()
        }
    }

    /// Whether `ids` holds every event's id (the ids of a group are unique: a repeat is
    /// deduplicated or refused before it is accepted).
    fn ids_complete(&self) -> bool {
        self.ids.len() == self.events.len()
    }

    /// The accepted event with this id; [`Pending::index_ids`] must have run since the last
    /// checked request was absorbed.
    fn find(&self, id: &Uuid) -> Option<&RecordedEvent> {
        debug_assert!(self.ids_complete());
        self.ids.get(id).map(|&i| &self.events[i])
    }

    /// Makes `ids` hold every event's id.
    fn index_ids(&mut self) {
        if !self.ids_complete() {
            self.ids.clear();
            self.ids.reserve(self.events.len());
            self.ids
                .extend(self.events.iter().enumerate().map(|(i, ev)| (ev.id, i)));
        }
    }

    /// Adds one accepted batch (all of one stream, in version order).
    fn push_run(&mut self, events: Vec<RecordedEvent>) {
        let start = self.events.len();
        if let Some(last) = events.last() {
            self.versions.insert(last.stream.clone(), last.version);
        }
        for ev in events {
            if !self.bulk {
                self.ids.insert(ev.id, self.events.len());
            }
            self.events.push(ev);
        }
        self.runs.push(start..self.events.len());
    }

    /// Appends `other` (a later request's batches) after these events.
    fn absorb(&mut self, other: Pending) {
        let offset = self.events.len();
        if offset == 0 {
            *self = other;
            return;
        }
        self.ids
            .extend(other.ids.into_iter().map(|(id, i)| (id, i + offset)));
        self.versions.extend(other.versions);
        self.runs.extend(
            other
                .runs
                .into_iter()
                .map(|r| r.start + offset..r.end + offset),
        );
        self.events.extend(other.events);
        self.bulk |= other.bulk;
    }
}

pub(crate) struct Writer {
    shared: Arc<Shared>,
    validator: Arc<dyn AppendValidator>,
    /// The position the next event gets.
    next_position: u64,
    /// The chain hash of the last written record.
    last_hash: [u8; frame::HASH_LEN],
    /// Last version of streams seen so far (authoritative once present).
    versions: Map<String, u64>,
    /// The greatest id in the id runs (see `keys`), while no session's index thread has it.
    last_run_id: Uuid,
    /// `None` for a temporary store.
    journal: Option<Journal>,
    /// Flushes sled in the background for the journal (see `journal`).
    sled_flush: Arc<SledFlush>,
    /// Writes the deferred index's rounds (see `index`); `None` between sessions.
    indexer: Option<indexer::Indexer>,
}

fn lock_error() -> StoreError {
    backend("the index lock is poisoned")
}

impl Writer {
    pub(crate) fn new(
        shared: Arc<Shared>,
        validator: Arc<dyn AppendValidator>,
        tail: Tail,
        last_run_id: Uuid,
        journal: Option<Journal>,
    ) -> Writer {
        Writer {
            sled_flush: Arc::new(SledFlush::new(tail.position)),
            indexer: None,
            journal,
            last_run_id,
            shared,
            validator,
            next_position: tail.position + 1,
            last_hash: tail.hash,
            versions: Map::default(),
        }
    }

    /// The thread: serves requests in sessions (see `recover`) until the store is dropped.
    pub(crate) fn run(mut self, requests: mpsc::Receiver<Request>) {
        // Requests received while the store was refusing appends, or when a fault was found.
        let mut waiting = Vec::new();
        loop {
            if self.shared.faulted() && !self.await_recovery(&requests, &mut waiting) {
                break;
            }
            let session = match self.start_session() {
                Ok(s) => s,
                Err(e) => {
                    self.shared.set_fault(&e);
                    continue;
                }
            };
            let open = self.serve(&session.commits, &requests, &mut waiting);
            self.end_session(session);
            if !open {
                break;
            }
        }
        if let Err(e) = self.write_index() {
            // The next open rebuilds these entries from the log.
            tracing::error!(error = %e, "writing the stream index at close failed");
        }
    }

    /// Decides and writes groups of requests until the store is dropped (`false`) or a write
    /// or sync failed (`true`; the requests not decided yet are left in `waiting`).
    fn serve(
        &mut self,
        commits: &Commits,
        requests: &mpsc::Receiver<Request>,
        waiting: &mut Vec<Request>,
    ) -> bool {
        loop {
            let mut group = std::mem::take(waiting);
            if group.is_empty() {
                match requests.recv() {
                    Ok(first) => group.push(first),
                    Err(_) => return false,
                }
            }
            let count = |r: &Request| r.batches.iter().map(|b| b.events.len()).sum::<usize>();
            let mut events = group.iter().map(count).sum::<usize>();
            while group.len() < MAX_GROUP && events < MAX_GROUP_EVENTS {
                match requests.try_recv() {
                    Ok(r) => {
                        events += count(&r);
                        group.push(r);
                    }
                    Err(_) => break,
                }
            }
            if self.shared.faulted() {
                *waiting = group;
                return true;
            }
            commits.push(self.commit_group(group));
            if self.shared.faulted() {
                return true;
            }
        }
    }

    fn commit_group(&mut self, requests: Vec<Request>) -> Written {
        let mut group = Pending::default();
        let mut answers = Vec::with_capacity(requests.len());
        for req in requests {
            let answer = match req.checked_at {
                None => self.accept(&mut group, req.batches, req.envelopes),
                Some(at) => self.accept_checked(&mut group, req.batches, req.envelopes, at),
            };
            if let Err(e) = &answer {
                self.shared.note(&e.error);
            }
            answers.push((req.reply, answer));
        }
        if group.events.is_empty() {
            return Written {
                last_position: None,
                answers,
            };
        }
        match self.write(&group) {
            Ok(hash) => {
                self.next_position += group.events.len() as u64;
                self.last_hash = hash;
                self.versions.extend(group.versions);
                Written {
                    last_position: Some(self.next_position - 1),
                    answers,
                }
            }
            Err(e) => {
                self.shared.note(&e);
                self.shared.set_fault(&e);
                fail_successes(&mut answers, &Fault::of(&e));
                Written {
                    last_position: None,
                    answers,
                }
            }
        }
    }

    /// Writes the group atomically (not yet durable): its log chunk with one sled insert, or
    /// its chunks (a large group) with one `apply_batch` (a bulk group's to the chunk file
    /// first, sled getting pointers to them: see `outside`); its index entries go to memory (see
    /// `index`), and the deferred index moves on a step (see [`Writer::index`]). Then the
    /// same chunks as one journal record. Returns the new chain hash.
    fn write(&mut self, group: &Pending) -> Result<[u8; frame::HASH_LEN], StoreError> {
        let sled = self.shared.sled()?;
        let mut chunks: Vec<(u64, Vec<u8>)> = Vec::new();
        let mut hash = self.last_hash;
        let mut chunk = Vec::with_capacity(CHUNK_BYTES.min(group.events.len() * 512));
        let mut chunk_start = self.next_position;
        for ev in &group.events {
            if chunk.len() >= CHUNK_BYTES {
                let full = std::mem::replace(&mut chunk, Vec::with_capacity(CHUNK_BYTES));
                chunks.push((chunk_start, full));
                chunk_start = ev.position;
            }
            hash = frame::seal_encoded(&mut chunk, &hash, |out| encode_record_into(out, ev));
        }
        chunks.push((chunk_start, chunk));
        let last = self.next_position + group.events.len() as u64 - 1;
        if let Some(j) = &mut self.journal {
            j.begin(self.next_position, last);
            for (first, chunk) in &chunks {
                j.add_chunk(*first, chunk);
            }
        }
        let started = std::time::Instant::now();
        let cpu_started = thread_cpu();
        {
            let mut unindexed = self.shared.unindexed.write().map_err(|_| lock_error())?;
            for run in &group.runs {
                let first = &group.events[run.start];
                unindexed.current.push(
                    &first.stream,
                    first.version,
                    first.position,
                    run.len() as u32,
                );
            }
            for ev in &group.events {
                unindexed.current.push_id(ev.id, ev.position);
            }
            if group.bulk {
                unindexed.current.note_bulk();
            }
        }
        // A bulk group's chunks go to the chunk file, and sled gets pointers (see `outside`).
        let outside = sled.chunks.as_ref().filter(|_| group.bulk);
        let value = |chunk: Vec<u8>| -> Result<sled::IVec, StoreError> {
            match outside {
                None => Ok(chunk.into()),
                Some(file) => file
                    .append(&chunk)
                    .map(|p| p.encode()[..].into())
                    .map_err(|e| super::fault::io_error("cannot write the log's chunk file", e)),
            }
        };
        if chunks.len() == 1 {
            // One key: no `apply_batch`, so no waiting for a sled flush in progress.
            let (first, chunk) = chunks.pop().unwrap_or_default();
            sled.tree
                .insert(keys::log_key(first), value(chunk)?)
                .map_err(at(first))?;
        } else {
            let mut batch = sled::Batch::default();
            for (first, chunk) in chunks {
                batch.insert(&keys::log_key(first), value(chunk)?);
            }
            let _gate = sled.gate();
            sled.tree
                .apply_batch(batch)
                .map_err(at(self.next_position))?;
        }
        let sealed = self.seal(group.bulk, last)?;
        let inserted = started.elapsed();
        // Durable once the journal is synced (see `journal`). A group too big for the journal
        // is made durable here, by flushing sled (and syncing its files).
        if let Some(j) = &mut self.journal {
            if j.fits() {
                j.write(&self.sled_flush)?;
            } else {
                sled.flush()?;
            }
        }
        let took = started.elapsed();
        if took >= SLOW_WRITE {
            // Every append waiting for this group waited this long: say where it went.
            tracing::warn!(
                events = group.events.len(),
                sealed,
                cpu_ms = (thread_cpu() - cpu_started).as_millis() as u64,
                sled_ms = inserted.as_millis() as u64,
                journal_ms = (took - inserted).as_millis() as u64,
                "writing a group of appends took {} ms",
                took.as_millis()
            );
        }
        Ok(hash)
    }

    /// Hands the index entries held to the index thread when they are due and it is idle
    /// (see `index`); `last`: the last position of the group just written, `bulk`: a group
    /// of checked appends. Returns whether it did.
    fn seal(&mut self, bulk: bool, last: u64) -> Result<bool, StoreError> {
        let Some(indexer) = &self.indexer else {
            return Ok(false);
        };
        if !indexer.idle() {
            return Ok(false);
        }
        {
            let mut held = self.shared.unindexed.write().map_err(|_| lock_error())?;
            if !held.current.due(bulk) {
                return Ok(false);
            }
            let current = std::mem::take(&mut held.current);
            held.sealed = Arc::new(current);
        }
        indexer.write(last, bulk);
        Ok(true)
    }

    /// Writes the index entries held in memory and moves the watermark over them (when the
    /// store closes, after the index thread has stopped, so that the next open has nothing to
    /// rebuild): what the writer holds, sealed as a round and written as the index thread
    /// writes one.
    fn write_index(&mut self) -> Result<(), StoreError> {
        if self.shared.faulted() {
            return Ok(());
        }
        {
            let mut held = self.shared.unindexed.write().map_err(|_| lock_error())?;
            // A round left sealed means the index thread failed (the store is faulted then);
            // either way the next open rebuilds everything after the watermark.
            if held.current.is_empty() || !held.sealed.is_empty() {
                return Ok(());
            }
            held.sealed = Arc::new(std::mem::take(&mut held.current));
        }
        indexer::write_round(
            &self.shared,
            self.next_position - 1,
            true,
            &mut self.last_run_id,
        )
    }

    /// The stream's last version, from memory or (`search_tree`) the tree.
    fn stream_version(
        &mut self,
        stream: &str,
        search_tree: bool,
    ) -> Result<Option<u64>, StoreError> {
        if let Some(v) = self.versions.get(stream) {
            return Ok(Some(*v));
        }
        // Memory first: runs held there are newer than any in the tree.
        let held = self
            .shared
            .unindexed
            .read()
            .map_err(|_| lock_error())?
            .last_run(stream);
        let last = match held {
            Some(run) => Some(run),
            None if search_tree => read::tree_last_run(&self.shared.sled()?.tree, stream)?,
            None => None,
        };
        let version = last.map(|run| run.last_version());
        if let Some(v) = version {
            self.versions.insert(stream.to_string(), v);
        }
        Ok(version)
    }

    /// If every event of the batch is already in the log (or accepted earlier in this group)
    /// with the same content, the original outcome. `None` if none of them is.
    fn deduplicate(
        &self,
        batch: &StreamBatch,
        earlier: [&Pending; 2],
    ) -> Result<Option<AppendOutcome>, StoreError> {
        let sled = self.shared.sled()?;
        let mut found = Vec::new();
        for (k, ev) in batch.events.iter().enumerate() {
            let Some(id) = ev.id else { continue };
            let existing = match earlier.iter().find_map(|p| p.find(&id)) {
                Some(e) => Some(e.clone()),
                None => match read::id_position(&self.shared, &id)? {
                    Some(position) => Some(read::record_at(&sled, position)?),
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
        prepare::already_written(&found, batch.events.len())
    }

    fn validate(
        &self,
        view: &WriterView<'_>,
        stream: &str,
        batch: &[RecordedEvent],
    ) -> Result<(), StoreError> {
        let verdict = catch_unwind(AssertUnwindSafe(|| {
            self.validator.validate(view, stream, batch)
        }))
        .map_err(|_| backend("the append validator panicked"))?;
        verdict.map_err(|e| e.for_batch(batch.len()))
    }

    /// The events of `batch` as they will be written after the log plus `group` and `mine`
    /// (the request's batches before it), from `position` on, once its expected version holds.
    /// `checked`: the request is a checked one, whose `NoStream` is taken at the caller's word
    /// unless memory (this request, the group, the writer's versions, the unindexed runs)
    /// holds the stream: the tree is not searched (a lookup per new stream was a third of
    /// the writer's work in an import).
    fn assign(
        &mut self,
        group: &Pending,
        mine: &Pending,
        batch: StreamBatch,
        position: u64,
        now: chrono::DateTime<chrono::Utc>,
        checked: bool,
    ) -> Result<(Vec<RecordedEvent>, AppendOutcome), StoreError> {
        let stream = batch.stream;
        let trust_absent = checked && batch.expected == crate::ExpectedVersion::NoStream;
        let current = match mine
            .versions
            .get(&stream)
            .or_else(|| group.versions.get(&stream))
        {
            Some(v) => Some(*v),
            None => self.stream_version(&stream, !trust_absent)?,
        };
        prepare::check_expected(&stream, batch.expected, current)?;
        let first_version = current.map_or(0, |v| v + 1);
        let recorded: Vec<RecordedEvent> = batch
            .events
            .into_iter()
            .enumerate()
            .map(|(k, ev)| {
                let k = k as u64;
                prepare::assign(&stream, ev, first_version + k, position + k, now)
            })
            .collect();
        let last = recorded.len() as u64 - 1;
        let outcome = AppendOutcome {
            first_position: position,
            last_position: position + last,
            next_expected_version: first_version + last,
        };
        Ok((recorded, outcome))
    }

    /// Decides a request of batches the caller checked against the log ending at
    /// `checked_at` (see [`crate::EventStore::append_checked`]): if the log (plus `group`)
    /// still ends there, the check holds, so neither the id index nor the validator is
    /// consulted; versions are assigned from the streams as they are. The validator then
    /// forgets what it cached, which these events may have made stale (the organisation).
    /// On error `group` is unchanged.
    fn accept_checked(
        &mut self,
        group: &mut Pending,
        batches: Vec<StreamBatch>,
        envelopes: Vec<Result<(), StoreError>>,
        checked_at: u64,
    ) -> Reply {
        let last = self.next_position + group.events.len() as u64 - 1;
        if last != checked_at {
            return Err(MultiAppendError::general(crate::log_moved(
                last, checked_at,
            )));
        }
        let now = prepare::now();
        let events: usize = batches.iter().map(|b| b.events.len()).sum();
        let repeated = repeated_id(&batches);
        // Sized once: growing it moved every event accepted so far, again and again.
        let mut mine = Pending::new(true, events);
        let mut outcomes = Vec::with_capacity(batches.len());
        let mut position = last + 1;
        for (i, (batch, envelope)) in batches.into_iter().zip(envelopes).enumerate() {
            let at = |e| MultiAppendError::at(i, e);
            envelope.map_err(at)?;
            if let Some((_, id)) = repeated.filter(|(b, _)| *b == i) {
                return Err(at(StoreError::Invalid(format!(
                    "id {id} appears twice in the request"
                ))));
            }
            let (recorded, outcome) = self
                .assign(group, &mine, batch, position, now, true)
                .map_err(at)?;
            position = outcome.last_position + 1;
            outcomes.push(outcome);
            mine.push_run(recorded);
        }
        if catch_unwind(AssertUnwindSafe(|| self.validator.reset())).is_err() {
            tracing::error!("the append validator panicked in `reset`");
        }
        group.absorb(mine);
        Ok(outcomes)
    }

    /// Decides one request against the log plus `group`; on success adds its events to
    /// `group`. On error `group` is unchanged.
    fn accept(
        &mut self,
        group: &mut Pending,
        batches: Vec<StreamBatch>,
        envelopes: Vec<Result<(), StoreError>>,
    ) -> Reply {
        let now = prepare::now();
        // The ids of a checked request before this one, looked up by `deduplicate`.
        group.index_ids();
        let mut mine = Pending::new(false, 0);
        let mut outcomes = Vec::with_capacity(batches.len());
        let mut position = self.next_position + (group.events.len() as u64);
        for (i, (batch, envelope)) in batches.into_iter().zip(envelopes).enumerate() {
            let at = |e| MultiAppendError::at(i, e);
            envelope.map_err(at)?;
            if let Some(outcome) = self.deduplicate(&batch, [group, &mine]).map_err(at)? {
                outcomes.push(outcome);
                continue;
            }
            let (recorded, outcome) = self
                .assign(group, &mine, batch, position, now, false)
                .map_err(at)?;
            let view = WriterView {
                shared: &self.shared,
                group: &group.events,
                request: &mine.events,
            };
            self.validate(&view, &recorded[0].stream, &recorded)
                .map_err(at)?;
            position = outcome.last_position + 1;
            outcomes.push(outcome);
            mine.push_run(recorded);
        }
        for run in &mine.runs {
            let batch = &mine.events[run.clone()];
            if catch_unwind(AssertUnwindSafe(|| self.validator.applied(batch))).is_err() {
                tracing::error!("the append validator panicked in `applied`");
            }
        }
        group.absorb(mine);
        Ok(outcomes)
    }
}

/// The first batch of `batches` with an id that an earlier batch has too, and the id (a
/// repeat within one batch is the envelope's error; events without an id get a fresh one).
fn repeated_id(batches: &[StreamBatch]) -> Option<(usize, Uuid)> {
    let mut ids: Vec<(Uuid, usize)> = batches
        .iter()
        .enumerate()
        .flat_map(|(i, b)| b.events.iter().filter_map(move |e| e.id.map(|id| (id, i))))
        .collect();
    // By id, then batch: of two events with one id, the later batch is the one to name.
    ids.sort_unstable();
    ids.windows(2)
        .filter(|w| w[0].0 == w[1].0 && w[0].1 != w[1].1)
        .map(|w| (w[1].1, w[1].0))
        .min()
}

/// The CPU time this thread has used (zero if the clock cannot be read): the slow-group
/// warning tells the writer's own work from its waiting (for the disk, or for a core).
fn thread_cpu() -> std::time::Duration {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    std::time::Duration::new(
        t.tv_sec.max(0) as u64,
        t.tv_nsec.clamp(0, 999_999_999) as u32,
    )
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::super::test_support::note;
    use super::super::{index::MAX_RUNS, keys, SledStore};
    use crate::{EnvelopeOnly, EventStore, ExpectedVersion, StreamBatch};

    fn recorded(id: u128, stream: &str) -> crate::RecordedEvent {
        let mut ev =
            crate::prepare::assign(stream, note(id as u64), 0, id as u64, crate::prepare::now());
        ev.id = uuid::Uuid::from_u128(id);
        ev
    }

    /// A group that absorbed a checked request finds its events once indexed, at their place
    /// after the events before them, and those of an unchecked request at once.
    #[test]
    fn a_checked_requests_ids_are_found_once_indexed() {
        let mut group = super::Pending::new(false, 0);
        let mut unchecked = super::Pending::new(false, 0);
        unchecked.push_run(vec![recorded(1, "deal-A"), recorded(2, "deal-A")]);
        group.absorb(unchecked);
        let mut checked = super::Pending::new(true, 2);
        checked.push_run(vec![recorded(3, "deal-B")]);
        checked.push_run(vec![recorded(4, "deal-C")]);
        group.absorb(checked);
        assert!(!group.ids_complete());
        group.index_ids();
        for id in 1..=4u128 {
            let found = group.find(&uuid::Uuid::from_u128(id)).expect("found");
            assert_eq!(found.id.as_u128(), id);
        }
        assert!(group.find(&uuid::Uuid::from_u128(5)).is_none());
        let mut later = super::Pending::new(false, 0);
        later.push_run(vec![recorded(5, "deal-D")]);
        group.absorb(later);
        assert!(group.ids_complete());
        assert_eq!(
            group.find(&uuid::Uuid::from_u128(5)).unwrap().stream,
            "deal-D"
        );
        assert_eq!(group.versions.len(), 4);
    }

    /// The batch named for an id repeated across batches is the first that repeats one; a
    /// repeat within a batch is left to the envelope's check.
    #[test]
    fn a_repeated_id_names_the_first_batch_that_repeats_it() {
        let batch = |stream: &str, ids: &[u64]| StreamBatch {
            stream: stream.to_string(),
            expected: ExpectedVersion::Any,
            events: ids
                .iter()
                .map(|i| {
                    let mut e = note(*i);
                    e.id = Some(uuid::Uuid::from_u128(u128::from(*i)));
                    e
                })
                .collect(),
        };
        let id = |i: u128| uuid::Uuid::from_u128(i);
        assert_eq!(super::repeated_id(&[batch("deal-A", &[1, 2])]), None);
        assert_eq!(super::repeated_id(&[batch("deal-A", &[1, 1])]), None);
        let three = [
            batch("deal-A", &[9, 1]),
            batch("deal-B", &[2, 3]),
            batch("deal-C", &[4, 3]),
            batch("deal-D", &[1]),
        ];
        assert_eq!(super::repeated_id(&three), Some((2, id(3))));
        assert_eq!(super::repeated_id(&three[..2]), None);
        let mut without_ids = batch("deal-E", &[7]);
        without_ids.events[0].id = None;
        let mut other = batch("deal-F", &[8]);
        other.events[0].id = None;
        assert_eq!(super::repeated_id(&[without_ids, other]), None);
    }

    /// A checked request whose batches repeat an id is refused at the batch that repeats it,
    /// and nothing of it is written.
    #[tokio::test]
    async fn a_checked_request_repeating_an_id_is_refused() {
        let store = SledStore::temporary(Arc::new(EnvelopeOnly)).unwrap();
        let mut a = note(1);
        a.id = Some(uuid::Uuid::from_u128(11));
        let mut b = note(2);
        b.id = Some(uuid::Uuid::from_u128(11));
        let batches = vec![
            StreamBatch {
                stream: "deal-A".into(),
                expected: ExpectedVersion::NoStream,
                events: vec![a],
            },
            StreamBatch {
                stream: "deal-B".into(),
                expected: ExpectedVersion::NoStream,
                events: vec![b],
            },
        ];
        let err = store.append_checked(batches, 0).await.unwrap_err();
        assert_eq!(err.index, Some(1), "{err:?}");
        assert!(
            err.error.to_string().contains("appears twice"),
            "{}",
            err.error
        );
        assert_eq!(store.last_position().await.unwrap(), 0);
    }

    /// The index watermark as the tree has it (0: none written yet).
    fn watermark(store: &SledStore) -> u64 {
        let sled = store.shared.sled().unwrap();
        sled.tree
            .get(keys::INDEXED)
            .unwrap()
            .map_or(0, |v| u64::from_be_bytes(v.as_ref().try_into().unwrap()))
    }

    /// `n` single-event batches, each to its own stream (`n` runs), in appends of at most
    /// 200 (a group of one log chunk: a group of several chunks waits for the flush).
    async fn spread(store: &SledStore, from: usize, n: usize) {
        for start in (from..from + n).step_by(200) {
            let batches = (start..(start + 200).min(from + n))
                .map(|i| StreamBatch {
                    stream: format!("customer-G{i}"),
                    expected: ExpectedVersion::NoStream,
                    events: vec![note(i as u64)],
                })
                .collect();
            store.append_multi(batches).await.unwrap();
        }
    }

    async fn all_found(store: &SledStore, n: usize) {
        for i in (0..n).step_by(97).chain([n - 1]) {
            let events = store
                .read_stream(&format!("customer-G{i}"), 0, 10)
                .await
                .unwrap();
            assert_eq!(events.len(), 1, "customer-G{i}");
            let by_id = store.event_by_id(events[0].id).await.unwrap().unwrap();
            assert_eq!(by_id.position, events[0].position);
        }
    }

    /// While a sled flush is in progress (it holds the gate), an index round that falls due
    /// is still written by the index thread (inserts do not wait for the flush, and the
    /// appends never wait for the round), but the watermark moves over it only once a flush
    /// has made it durable. Across a reopen, nothing is lost either way.
    #[tokio::test]
    #[allow(clippy::await_holding_lock)] // the gate held across appends: a flush in progress
    async fn an_index_round_is_written_during_a_sled_flush_and_marked_after_one() {
        let dir = tempfile::tempdir().unwrap();
        let n = MAX_RUNS + 10;
        let mut appended = n;
        {
            let store = SledStore::open(dir.path(), Arc::new(EnvelopeOnly)).unwrap();
            let sled = store.shared.sled().unwrap();
            let before = watermark(&store);
            let flushing = sled.gate();
            spread(&store, 0, n).await;
            let mut waited = 0;
            while sled
                .tree
                .get(keys::stream_key("customer-G0", 0))
                .unwrap()
                .is_none()
            {
                assert!(waited < 2000, "the round waited for the flush");
                waited += 1;
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
            assert_eq!(watermark(&store), before, "marked before it was durable");
            all_found(&store, n).await;
            drop(flushing);
            // The flush asked for after the round runs now; a later group marks the round.
            while watermark(&store) == before {
                assert!(appended < n + 2000, "the watermark never moved");
                spread(&store, appended, 1).await;
                appended += 1;
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
            assert_eq!(watermark(&store), n as u64, "the round's last position");
            all_found(&store, appended).await;
        }
        let store = SledStore::open(dir.path(), Arc::new(EnvelopeOnly)).unwrap();
        all_found(&store, appended).await;
        let report = store.verify(&mut |_| {}).unwrap();
        assert_eq!(report.events, appended as u64);
    }
}
