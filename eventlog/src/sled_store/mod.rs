//! The embedded backend: one sled tree, one writer thread, durable-only reads. The index
//! entries of the newest events are kept in memory and written in bulk (see `index`); an
//! append is durable once its group's record in the commit journal is synced (see
//! `journal`, `commit`); every sled flush is followed by a real sync of sled's files (see
//! `sync`).

mod commit;
pub(crate) mod fault;
mod frame;
mod id_runs;
mod index;
mod journal;
mod keys;
mod open;
mod outside;
mod read;
mod subscribe;
mod sync;
#[cfg(test)]
mod test_support;
mod verify;
mod view;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex, RwLock};
use std::thread::JoinHandle;

use async_trait::async_trait;
use futures::stream::BoxStream;
use tokio::sync::{oneshot, watch};

use crate::{
    AppendOutcome, AppendValidator, EventStore, ExpectedVersion, Filter, MultiAppendError,
    ProposedEvent, RecordedEvent, StoreError, StoreHealth, StreamBatch,
};

pub(crate) use fault::backend;
use fault::{no_panic, Fault};
/// The hash chain, shared with the PostgreSQL store (same records, same chain).
pub(crate) use frame::{chain_hash, GENESIS};
pub use verify::VerifyReport;

/// The decoding of stored chunks, for the fuzz targets in `eventlog/fuzz`; not an API.
#[doc(hidden)]
pub mod fuzzing {
    pub use super::frame::{chain_hash, frames, seal_encoded, Frame, GENESIS};
    pub use super::read::decode_frame;
}

/// The name of the sled tree that holds the log and its indexes.
const TREE: &str = "log";

/// sled and what syncs its files: replaced as a whole when the writer reopens the store's
/// files after a failed write (see `writer`).
pub(crate) struct Sled {
    pub db: sled::Db,
    pub tree: sled::Tree,
    /// Syncs what sled flushed (see `sync`); `None` for a temporary store.
    syncer: Mutex<Option<sync::Syncer>>,
    /// Held for the whole of `sled::Db::flush`, and by the writer around each `apply_batch`.
    /// sled's flush holds its concurrency lock shared until every buffer is on disk (tens to
    /// hundreds of milliseconds under load), and `apply_batch` takes that lock exclusively:
    /// an `apply_batch` that meets a flush waits for it, and, the lock being fair, every sled
    /// read and insert of every thread queues behind the waiting `apply_batch`. With this gate
    /// the writer waits here instead, and readers go on (the deferred index is written with
    /// inserts, which do not wait: see `index`).
    gate: Mutex<()>,
    /// The file that holds the log chunks of bulk appends (see `outside`); `None` for a
    /// temporary store.
    chunks: Option<outside::ChunkFile>,
    /// The runs of bulk ids (see `id_runs`), replaced whole when a round adds one.
    id_runs: RwLock<Arc<id_runs::IdRuns>>,
}

impl Sled {
    /// The runs of bulk ids as they are now.
    pub(crate) fn id_runs(&self) -> Arc<id_runs::IdRuns> {
        self.id_runs
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The bytes of the log chunk whose key's value is `value` (the first position it holds:
    /// `first`): `value` itself, or the chunk it points to in the chunk file (see `outside`).
    pub(crate) fn chunk(&self, first: u64, value: sled::IVec) -> Result<sled::IVec, StoreError> {
        self.resolve(first, value, false)
    }

    /// [`Sled::chunk`], checking the CRC of a chunk kept in the chunk file too (each record
    /// has its own: readers need not).
    pub(crate) fn checked_chunk(
        &self,
        first: u64,
        value: sled::IVec,
    ) -> Result<sled::IVec, StoreError> {
        self.resolve(first, value, true)
    }

    fn resolve(
        &self,
        first: u64,
        value: sled::IVec,
        check: bool,
    ) -> Result<sled::IVec, StoreError> {
        let corrupt = |reason: String| StoreError::Corrupt {
            position: first,
            reason,
        };
        match outside::Pointer::of(&value).map_err(corrupt)? {
            None => Ok(value),
            Some(p) => match &self.chunks {
                Some(file) => file.read(&p, check).map(sled::IVec::from).map_err(corrupt),
                None => Err(corrupt(format!(
                    "the log keeps this chunk in `{}`, which this store has not",
                    outside::NAME
                ))),
            },
        }
    }

    /// The gate of `apply_batch` (see the field): waits while a flush holds it.
    pub(crate) fn gate(&self) -> std::sync::MutexGuard<'_, ()> {
        self.gate.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Flushes sled and syncs its files: once this returns `Ok`, everything written is on disk.
    /// The chunk file first, so that no pointer sled makes durable points past what is
    /// durable there (see `outside`).
    fn flush(&self) -> Result<(), StoreError> {
        if let Some(chunks) = &self.chunks {
            chunks
                .sync()
                .map_err(|e| fault::io_error("cannot sync the log's chunk file", e))?;
        }
        {
            let _gate = self.gate();
            self.db.flush().map_err(fault::at(0))?;
        }
        let mut syncer = self
            .syncer
            .lock()
            .map_err(|_| backend("the sync lock is poisoned"))?;
        match syncer.as_mut() {
            Some(s) => s
                .sync()
                .map_err(|e| fault::io_error("cannot sync the store's files", e)),
            None => Ok(()),
        }
    }
}

/// State shared by the store handle, its writer thread and its subscribers.
pub(crate) struct Shared {
    /// Where the store lives, `None` for a temporary one.
    dir: Option<PathBuf>,
    /// `None` only while the writer reopens the store's files (readers get the fault's error).
    sled: RwLock<Option<Arc<Sled>>>,
    /// The last position known to be on disk. Readers never look past it.
    durable: AtomicU64,
    /// Carries `durable` to subscribers; never blocks the writer.
    durable_tx: watch::Sender<u64>,
    /// Why appends are refused until the writer has recovered (see `writer`); `faulted` is
    /// `fault.is_some()`, for a lock-free look.
    fault: Mutex<Option<Fault>>,
    faulted: AtomicBool,
    /// The first damage (lowest position) a read has found: reported by `health`.
    damage: Mutex<Option<(u64, String)>>,
    /// Set when the store handle is dropped: subscriptions end once caught up.
    closed: AtomicBool,
    /// The index entries (stream runs, ids) of events after the index watermark (see `index`).
    unindexed: RwLock<index::Held>,
}

impl Shared {
    pub(crate) fn durable(&self) -> u64 {
        self.durable.load(Ordering::Acquire)
    }

    /// The current sled (its files may be being reopened: then the fault's error).
    pub(crate) fn sled(&self) -> Result<Arc<Sled>, StoreError> {
        let current = self.sled.read().unwrap_or_else(|e| e.into_inner()).clone();
        current.ok_or_else(|| match self.fault() {
            Some(f) => f.error(),
            None => backend("the store's files are being reopened"),
        })
    }

    /// Flushes sled and syncs its files (see [`Sled::flush`]).
    fn flush(&self) -> Result<(), StoreError> {
        self.sled()?.flush()
    }

    fn publish_durable(&self, position: u64) {
        self.durable.store(position, Ordering::Release);
        self.durable_tx.send_replace(position);
    }

    pub(crate) fn faulted(&self) -> bool {
        self.faulted.load(Ordering::Acquire)
    }

    pub(crate) fn fault(&self) -> Option<Fault> {
        self.fault.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Refuses appends from now on, because of `e` (a failed write or sync), until
    /// [`Shared::clear_fault`]. The first fault stays (it is the cause).
    pub(crate) fn set_fault(&self, e: &StoreError) {
        let mut fault = self.fault.lock().unwrap_or_else(|e| e.into_inner());
        if fault.is_none() {
            tracing::error!(error = %e, "a write of the event store failed; refusing appends until it recovers");
            *fault = Some(Fault::of(e));
        }
        self.faulted.store(true, Ordering::Release);
    }

    pub(crate) fn clear_fault(&self) {
        let mut fault = self.fault.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(f) = fault.take() {
            tracing::info!(fault = ?f, "the event store recovered: appends resume");
        }
        self.faulted.store(false, Ordering::Release);
    }

    /// Remembers the damage `e` reports, if it is `Corrupt` (see `health`).
    pub(crate) fn note(&self, e: &StoreError) {
        if let StoreError::Corrupt { position, reason } = e {
            let mut damage = self.damage.lock().unwrap_or_else(|e| e.into_inner());
            if damage.as_ref().is_none_or(|(p, _)| position < p) {
                tracing::error!(position, reason, "the event store is damaged");
                *damage = Some((*position, reason.clone()));
            }
        }
    }

    /// Passes `result` on, remembering damage it reports.
    pub(crate) fn watch<T>(&self, result: Result<T, StoreError>) -> Result<T, StoreError> {
        if let Err(e) = &result {
            self.note(e);
        }
        result
    }

    /// A read: sled's panics on damaged data become `Corrupt` at `position`, and damage is
    /// remembered.
    fn read<T>(
        &self,
        position: u64,
        f: impl FnOnce() -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.watch(no_panic(position, f))
    }

    fn health(&self) -> StoreHealth {
        if let Some((position, reason)) = self
            .damage
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
        {
            return StoreHealth::Damaged { position, reason };
        }
        match self.fault() {
            None => StoreHealth::Ok,
            Some(Fault::Full(d)) => StoreHealth::StorageFull(d),
            Some(Fault::Io(d)) => StoreHealth::WriteFailed(d),
        }
    }
}

/// The sled-backed [`EventStore`]. Dropping it stops the writer and ends its subscriptions
/// (after they have delivered every durable event); the directory is released once those
/// are dropped or have ended.
pub struct SledStore {
    shared: Arc<Shared>,
    requests: Option<mpsc::Sender<writer::Request>>,
    writer: Option<JoinHandle<()>>,
}

impl SledStore {
    /// Opens (or creates) the store in `dir` (created private, 0700, when missing; the store's
    /// files are 0600). `StoreError::Locked` if another process holds it, `Corrupt` naming the
    /// position if it is damaged (see `open`), `StorageFull` if the disk is full.
    pub fn open(dir: &Path, validator: Arc<dyn AppendValidator>) -> Result<SledStore, StoreError> {
        let opened = open::open(dir, None)?;
        SledStore::start(opened, Some(dir), validator)
    }

    /// [`SledStore::open`] with sled's page cache limited to `cache_bytes` (instead of 1 GiB):
    /// for a bulk import, which writes much and reads little, so that the cache does not fill
    /// with the written log. (A reopen after a failed write uses the default.)
    pub fn open_with_cache(
        dir: &Path,
        validator: Arc<dyn AppendValidator>,
        cache_bytes: u64,
    ) -> Result<SledStore, StoreError> {
        let opened = open::open(dir, Some(cache_bytes))?;
        SledStore::start(opened, Some(dir), validator)
    }

    /// A throw-away store (in `/dev/shm` on Linux, deleted when dropped) for fast tests: the
    /// same code as [`SledStore::open`], so the same behaviour (but it cannot reopen its
    /// files: after a failed write it refuses appends until dropped).
    pub fn temporary(validator: Arc<dyn AppendValidator>) -> Result<SledStore, StoreError> {
        SledStore::start(open::temporary()?, None, validator)
    }

    /// `dir`: where the store lives, `None` for a temporary one (nothing to sync).
    fn start(
        opened: open::Opened,
        dir: Option<&Path>,
        validator: Arc<dyn AppendValidator>,
    ) -> Result<SledStore, StoreError> {
        let open::Opened {
            sled,
            tail,
            unindexed,
            last_run_id,
        } = opened;
        // Everything the journal holds is durable in sled now: it may be overwritten.
        let journal = dir
            .map(|d| journal::Journal::open(d, tail.position))
            .transpose()
            .map_err(|e| fault::io_error("cannot open the commit journal", e))?;
        let (durable_tx, _) = watch::channel(tail.position);
        let shared = Arc::new(Shared {
            dir: dir.map(Path::to_path_buf),
            sled: RwLock::new(Some(Arc::new(sled))),
            durable: AtomicU64::new(tail.position),
            durable_tx,
            fault: Mutex::new(None),
            faulted: AtomicBool::new(false),
            damage: Mutex::new(None),
            closed: AtomicBool::new(false),
            unindexed: RwLock::new(unindexed.into()),
        });
        let (tx, rx) = mpsc::channel();
        let w = writer::Writer::new(shared.clone(), validator, tail, last_run_id, journal);
        let handle = std::thread::Builder::new()
            .name("eventlog-writer".into())
            .spawn(move || w.run(rx))
            .map_err(|e| backend(format!("cannot start the writer thread: {e}")))?;
        Ok(SledStore {
            shared,
            requests: Some(tx),
            writer: Some(handle),
        })
    }

    /// Walks the whole durable log and checks every record: checksum, hash chain, decoding,
    /// gap-free positions and versions, and both indexes. `progress` is called now and then
    /// with the position reached. On damage: `StoreError::Corrupt` naming the first damaged
    /// position (sled's own damage, and its panics on it, included).
    pub fn verify(&self, progress: &mut dyn FnMut(u64)) -> Result<VerifyReport, StoreError> {
        let at = std::cell::Cell::new(0);
        let result =
            fault::no_panic_at(|| at.get(), || verify::verify(&self.shared, &at, progress));
        self.shared.watch(result)
    }

    /// `checked_at`: see [`EventStore::append_checked`].
    async fn submit(
        &self,
        batches: Vec<StreamBatch>,
        checked_at: Option<u64>,
    ) -> Result<Vec<AppendOutcome>, MultiAppendError> {
        let stopped = || MultiAppendError::general(backend("the store's writer has stopped"));
        let (reply, answer) = oneshot::channel();
        self.requests
            .as_ref()
            .ok_or_else(stopped)?
            .send(writer::Request::new(batches, checked_at, reply))
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

impl Drop for SledStore {
    fn drop(&mut self) {
        self.requests.take();
        if let Some(h) = self.writer.take() {
            let _ = h.join();
        }
        self.shared.closed.store(true, Ordering::Release);
        // Wakes every subscription so it can see `closed`.
        self.shared.durable_tx.send_modify(|_| {});
    }
}

#[async_trait]
impl EventStore for SledStore {
    async fn append(
        &self,
        stream: &str,
        expected: ExpectedVersion,
        events: Vec<ProposedEvent>,
    ) -> Result<AppendOutcome, StoreError> {
        let batch = StreamBatch {
            stream: stream.to_string(),
            expected,
            events,
        };
        let mut outcomes = self.submit(vec![batch], None).await.map_err(|e| e.error)?;
        outcomes
            .pop()
            .ok_or_else(|| backend("the writer returned no outcome"))
    }

    async fn append_multi(
        &self,
        batches: Vec<StreamBatch>,
    ) -> Result<Vec<AppendOutcome>, MultiAppendError> {
        if batches.is_empty() {
            return Ok(Vec::new());
        }
        self.submit(batches, None).await
    }

    async fn append_checked(
        &self,
        batches: Vec<StreamBatch>,
        checked_at: u64,
    ) -> Result<Vec<AppendOutcome>, MultiAppendError> {
        if batches.is_empty() {
            return Ok(Vec::new());
        }
        self.submit(batches, Some(checked_at)).await
    }

    async fn read_stream(
        &self,
        stream: &str,
        from_version: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.shared.read(0, || {
            read::read_stream(&self.shared, stream, from_version, limit)
        })
    }

    async fn read_all(
        &self,
        from_position: u64,
        limit: usize,
        filter: &Filter,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.shared.read(from_position.max(1), || {
            read::read_all(&self.shared, from_position, limit, filter)
        })
    }

    async fn last_position(&self) -> Result<u64, StoreError> {
        Ok(self.shared.durable())
    }

    async fn chain_hash_at(&self, position: u64) -> Result<Option<[u8; 32]>, StoreError> {
        if position == 0 || position > self.shared.durable() {
            return Ok(None);
        }
        self.shared.read(position, || {
            read::chain_hash_at(&*self.shared.sled()?, position).map(Some)
        })
    }

    async fn stream_version(&self, stream: &str) -> Result<Option<u64>, StoreError> {
        self.shared
            .read(0, || read::stream_version(&self.shared, stream))
    }

    async fn event_by_id(&self, id: uuid::Uuid) -> Result<Option<RecordedEvent>, StoreError> {
        self.shared.read(0, || read::event_by_id(&self.shared, &id))
    }

    async fn events_by_ids(
        &self,
        ids: &[uuid::Uuid],
    ) -> Result<Vec<Option<RecordedEvent>>, StoreError> {
        self.shared
            .read(0, || read::events_by_ids(&self.shared, ids))
    }

    fn health(&self) -> StoreHealth {
        self.shared.health()
    }

    fn subscribe(
        &self,
        from_position: u64,
        filter: Filter,
    ) -> BoxStream<'static, Result<RecordedEvent, StoreError>> {
        subscribe::subscribe(self.shared.clone(), from_position, filter)
    }
}

/// Where the log ends: the writer continues from here.
pub(crate) struct Tail {
    pub position: u64,
    pub hash: [u8; frame::HASH_LEN],
}
