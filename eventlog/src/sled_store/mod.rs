//! The embedded backend: one sled tree, one writer thread, durable-only reads. The index
//! entries of the newest events are kept in memory and written in bulk (see `index`); an
//! append is durable once its group's record in the commit journal is synced (see
//! `journal`, `commit`); every sled flush is followed by a real sync of sled's files (see
//! `sync`).

mod commit;
mod frame;
mod index;
mod journal;
mod keys;
mod read;
mod subscribe;
mod sync;
#[cfg(test)]
mod test_support;
mod verify;
mod view;
mod writer;

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex, RwLock};
use std::thread::JoinHandle;

use async_trait::async_trait;
use futures::stream::BoxStream;
use tokio::sync::{oneshot, watch};

use crate::{
    AppendOutcome, AppendValidator, EventStore, ExpectedVersion, Filter, MultiAppendError,
    ProposedEvent, RecordedEvent, StoreError, StreamBatch,
};

pub use verify::VerifyReport;

/// The decoding of stored chunks, for the fuzz targets in `eventlog/fuzz`; not an API.
#[doc(hidden)]
pub mod fuzzing {
    pub use super::frame::{chain_hash, frames, seal_encoded, Frame, GENESIS};
    pub use super::read::decode_frame;
}

/// The name of the sled tree that holds the log and its indexes.
const TREE: &str = "log";

/// State shared by the store handle, its writer thread and its subscribers.
pub(crate) struct Shared {
    db: sled::Db,
    tree: sled::Tree,
    /// The last position known to be on disk. Readers never look past it.
    durable: AtomicU64,
    /// Carries `durable` to subscribers; never blocks the writer.
    durable_tx: watch::Sender<u64>,
    /// Set when a flush failed: nothing more is acknowledged until a restart.
    poisoned: AtomicBool,
    /// Set when the store handle is dropped: subscriptions end once caught up.
    closed: AtomicBool,
    /// The index entries (stream runs, ids) of events after the index watermark (see `index`).
    unindexed: RwLock<index::Unindexed>,
    /// Syncs what sled flushed (see `sync`); `None` for a temporary store.
    syncer: Mutex<Option<sync::Syncer>>,
}

impl Shared {
    pub(crate) fn durable(&self) -> u64 {
        self.durable.load(Ordering::Acquire)
    }

    /// Flushes sled and syncs its files: once this returns `Ok`, everything written is on disk.
    fn flush(&self) -> Result<(), String> {
        self.db.flush().map_err(|e| e.to_string())?;
        let mut syncer = self
            .syncer
            .lock()
            .map_err(|_| "the sync lock is poisoned".to_string())?;
        match syncer.as_mut() {
            Some(s) => s
                .sync()
                .map_err(|e| format!("cannot sync the store's files: {e}")),
            None => Ok(()),
        }
    }

    fn publish_durable(&self, position: u64) {
        self.durable.store(position, Ordering::Release);
        self.durable_tx.send_replace(position);
    }
}

pub(crate) fn backend(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(e.to_string())
}

/// The sled-backed [`EventStore`]. Dropping it stops the writer and ends its subscriptions
/// (after they have delivered every durable event); the directory is released once those
/// are dropped or have ended.
pub struct SledStore {
    shared: Arc<Shared>,
    requests: Option<mpsc::Sender<writer::Request>>,
    writer: Option<JoinHandle<()>>,
}

/// Whether sled refused to open because another handle holds the directory's file lock.
fn is_lock_error(e: &sled::Error) -> bool {
    e.to_string().contains("could not acquire lock")
}

impl SledStore {
    /// Opens (or creates) the store in `dir`. `StoreError::Locked` if another process holds it.
    pub fn open(dir: &Path, validator: Arc<dyn AppendValidator>) -> Result<SledStore, StoreError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| backend(format!("cannot create {}: {e}", dir.display())))?;
        // sled releases its file lock when its last background handle is gone, a moment
        // after the previous store in this process was dropped: wait a little for that
        // before calling the directory locked (a lock held by another process stays held).
        let mut tries = 0;
        let db = loop {
            match sled::Config::new().path(dir).open() {
                Ok(db) => break db,
                Err(e) if tries < 30 && is_lock_error(&e) => {
                    tries += 1;
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
                Err(e) => return Err(open_error(dir, e)),
            }
        };
        SledStore::start(db, Some(dir), validator)
    }

    /// A throw-away store (in `/dev/shm` on Linux, deleted when dropped) for fast tests: the
    /// same code as [`SledStore::open`], so the same behaviour.
    pub fn temporary(validator: Arc<dyn AppendValidator>) -> Result<SledStore, StoreError> {
        let db = sled::Config::new()
            .temporary(true)
            .open()
            .map_err(|e| backend(format!("cannot open a temporary store: {e}")))?;
        SledStore::start(db, None, validator)
    }

    /// `dir`: where the store lives, `None` for a temporary one (nothing to sync).
    fn start(
        db: sled::Db,
        dir: Option<&Path>,
        validator: Arc<dyn AppendValidator>,
    ) -> Result<SledStore, StoreError> {
        let tree = db.open_tree(TREE).map_err(backend)?;
        if let Some(dir) = dir {
            // Acknowledged groups sled had not flushed when the last process ended.
            journal::replay(dir, &tree)?;
        }
        let tail = read::tail(&tree)?;
        let indexed = match read::indexed_through(&tree)? {
            Some(position) => position,
            None => {
                // A new store, or one from before the watermark, whose index is complete.
                tree.insert(keys::INDEXED, &keys::position_value(tail.position))
                    .map_err(backend)?;
                tail.position
            }
        };
        // What sled recovered may only be in the OS cache (the last process was killed
        // before its flush): make it (and a new watermark) durable before anyone reads it
        // (sled's flush, then the syncer's sync of its files).
        db.flush().map_err(backend)?;
        let syncer = dir
            .map(sync::Syncer::open)
            .transpose()
            .map_err(|e| backend(format!("cannot sync the store's files: {e}")))?;
        // Everything the journal holds is durable in sled now: it may be overwritten.
        let journal = dir
            .map(journal::Journal::open)
            .transpose()
            .map_err(|e| backend(format!("cannot open the commit journal: {e}")))?;
        let unindexed = read::rebuild_unindexed(&tree, indexed + 1, tail.position)?;
        let last_run_id = read::last_id_run_id(&tree)?;
        let (durable_tx, _) = watch::channel(tail.position);
        let shared = Arc::new(Shared {
            db,
            tree,
            durable: AtomicU64::new(tail.position),
            durable_tx,
            poisoned: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            unindexed: RwLock::new(unindexed),
            syncer: Mutex::new(syncer),
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
    /// position.
    pub fn verify(&self, progress: &mut dyn FnMut(u64)) -> Result<VerifyReport, StoreError> {
        verify::verify(&self.shared, progress)
    }

    async fn submit(
        &self,
        batches: Vec<StreamBatch>,
    ) -> Result<Vec<AppendOutcome>, MultiAppendError> {
        let stopped = || MultiAppendError::general(backend("the store's writer has stopped"));
        let (reply, answer) = oneshot::channel();
        self.requests
            .as_ref()
            .ok_or_else(stopped)?
            .send(writer::Request::new(batches, reply))
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

fn open_error(dir: &Path, e: sled::Error) -> StoreError {
    let text = e.to_string();
    if text.contains("could not acquire lock") {
        StoreError::Locked(dir.display().to_string())
    } else {
        backend(format!(
            "cannot open the store in {}: {text}",
            dir.display()
        ))
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
        let mut outcomes = self.submit(vec![batch]).await.map_err(|e| e.error)?;
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
        self.submit(batches).await
    }

    async fn read_stream(
        &self,
        stream: &str,
        from_version: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        read::read_stream(&self.shared, stream, from_version, limit)
    }

    async fn read_all(
        &self,
        from_position: u64,
        limit: usize,
        filter: &Filter,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        read::read_all(&self.shared, from_position, limit, filter)
    }

    async fn last_position(&self) -> Result<u64, StoreError> {
        Ok(self.shared.durable())
    }

    async fn stream_version(&self, stream: &str) -> Result<Option<u64>, StoreError> {
        read::stream_version(&self.shared, stream)
    }

    async fn event_by_id(&self, id: uuid::Uuid) -> Result<Option<RecordedEvent>, StoreError> {
        read::event_by_id(&self.shared, &id)
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
