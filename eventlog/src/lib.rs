//! # eventlog — the append-only event log
//!
//! One trait, [`EventStore`], that every backend implements (sled, PostgreSQL, memory);
//! no backend type appears in its signatures.
//!
//! Layout:
//! - `lib.rs`: the trait, its request/response types and errors.
//! - [`record`]: the encoding of one event (format byte + a compact binary body with
//!   `data`/`metadata` as a binary JSON tree; format 1, bincode with JSON text, still
//!   decodes).
//! - `prepare`: what every store does to a batch before its validator sees it: envelope
//!   checks (run on the caller's side), idempotency comparison, id/version/time assignment.
//! - [`memory`]: an in-memory store for fast tests (same `prepare`, no durability).
//! - `sled_store`: the embedded default backend [`SledStore`] (also [`SledStore::temporary`],
//!   a throw-away store for fast tests), one sled tree plus a commit journal:
//!   - `keys`: the key layout: log chunks by position, stream runs by stream + version,
//!     client ids one by one, store-generated ids in id runs, the index watermark;
//!   - `index`: the index entries of the newest events, held in memory and written in bulk
//!     with the watermark (rebuilt from the log after a crash);
//!   - `frame`: records framed in chunks with a crc32 and a blake3 hash chain;
//!   - `writer`: the one writer thread: decides queued requests in order, writes the group
//!     (one sled insert, or one atomic batch for a large group or when the index is due)
//!     and its record in the journal, then hands it to `commit`; after a failed write or
//!     sync it refuses appends and recovers by reopening the store's files (`recover`);
//!   - `commit`: two flusher threads taking turns: one `fdatasync` of the journal per
//!     turn makes every group written before it durable, then they are acknowledged
//!     (group commit);
//!   - `journal`: the commit journal (two regions used in turn; sled is flushed in the
//!     background when the writer leaves a region, and a region is reused only once that
//!     flush is done); at open, groups sled lost are replayed from it, and a damaged record
//!     is told from the torn tail of a crash;
//!   - `open`: opening the store's files (at open and when the writer recovers), private;
//!   - `fault`: storage errors as typed [`StoreError`]s (a full disk, damage with its
//!     position, sled's panics on damaged files), and the fault that refuses appends;
//!   - `sync`: the fdatasync of sled's files that makes a sled flush durable (sled's own
//!     flush does not, on Linux);
//!   - `view`: the [`LogView`] the validator sees (log + earlier, unwritten group members);
//!   - `read`: reads, bounded by the durable watermark; `subscribe`: catch-up then live off
//!     that watermark; `verify`: the integrity walk.
//! - [`personal`]: [`Sealed`], the store in front of a backend that seals personal data with a
//!   key per person and opens it on reads; erasure destroys the key (SPEC §7). Keys live in
//!   a file of the sled data directory or a table of the PostgreSQL schema, never in the log.
//! - `pg_store`: [`PgStore`], the PostgreSQL backend shared by several nodes (see its module
//!   doc: the head-row lock that keeps positions gap-free and in commit order, group commit,
//!   rules checked inside the serialised transaction, LISTEN/NOTIFY subscriptions).
//!
//! Place in the whole: `api` and the CLI append through this crate after the domain has
//! checked the batch (via [`AppendValidator`]); `projections` read and subscribe.

use async_trait::async_trait;

mod arenas;
pub use arenas::{give_back_freed_memory, spread_allocator_arenas};
pub mod memory;
pub use domain::{ExpectedVersion, ProposedEvent, RecordedEvent, Rejection};

pub mod personal;
pub use personal::{EraseError, Erasure, Sealed};
mod prepare;
pub use prepare::same_content;
mod pg_store;
pub mod record;
pub mod rules;
mod sled_store;

pub use pg_store::{
    is_postgres_url, Documents, PgConfig, PgKeys, PgStore, DEFAULT_POOL_SIZE, DEFAULT_SCHEMA,
};
pub use sled_store::{SledStore, VerifyReport};

#[doc(hidden)]
pub use sled_store::fuzzing;

/// The actor recorded when a proposed event names none.
pub const DEFAULT_ACTOR: &str = "system";

/// The most events one batch (one stream's part of an append) may hold.
pub const MAX_BATCH_EVENTS: usize = 10_000;

/// One stream's part of a multi-stream append ([`EventStore::append_multi`]).
#[derive(Debug, Clone, PartialEq)]
pub struct StreamBatch {
    pub stream: String,
    pub expected: ExpectedVersion,
    pub events: Vec<ProposedEvent>,
}

/// Why a multi-stream append failed; nothing of it was written.
#[derive(Debug, thiserror::Error)]
#[error("{}{error}", index.map(|i| format!("batch {i}: ")).unwrap_or_default())]
pub struct MultiAppendError {
    /// Index of the failing batch, `None` when the failure concerns no batch in particular
    /// (I/O, a full disk, a store refusing appends after a failed write).
    pub index: Option<usize>,
    pub error: StoreError,
}

impl MultiAppendError {
    pub fn at(index: usize, error: StoreError) -> MultiAppendError {
        MultiAppendError {
            index: Some(index),
            error,
        }
    }

    pub fn general(error: StoreError) -> MultiAppendError {
        MultiAppendError { index: None, error }
    }
}

/// Which events of the global log a read or subscription wants.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// Only these types (empty = all).
    pub types: Vec<String>,
    /// Only streams whose name starts with this.
    pub stream_prefix: Option<String>,
}

impl Filter {
    pub fn matches(&self, ev: &RecordedEvent) -> bool {
        self.matches_type_and_stream(&ev.event_type, &ev.stream)
    }

    /// [`Filter::matches`] for a reader that kept only an event's type and stream.
    pub fn matches_type_and_stream(&self, event_type: &str, stream: &str) -> bool {
        (self.types.is_empty() || self.types.iter().any(|t| t == event_type))
            && self
                .stream_prefix
                .as_deref()
                .is_none_or(|p| stream.starts_with(p))
    }
}

/// The result of a successful append.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct AppendOutcome {
    pub first_position: u64,
    pub last_position: u64,
    /// The version of the stream's last event after the append.
    pub next_expected_version: u64,
}

/// Why an append or read failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// `expected_version` did not match; nothing was written.
    #[error(
        "wrong expected version for stream {stream}: expected {expected:?}, actual {actual:?}"
    )]
    WrongExpectedVersion {
        stream: String,
        expected: ExpectedVersion,
        /// The stream's last version, `None` if the stream does not exist.
        actual: Option<u64>,
    },
    /// An event id already in the log with other content; nothing was written.
    #[error("event id {id} is already in the log with other content (at position {position})")]
    IdConflict { id: uuid::Uuid, position: u64 },
    /// The domain refused the batch; nothing was written.
    #[error("{0}")]
    Rejected(Rejection),
    /// The request itself is malformed (empty batch, bad stream name, ...).
    #[error("invalid request: {0}")]
    Invalid(String),
    /// The data directory is held by another process.
    #[error("the data directory {0} is in use by another dealtrail process")]
    Locked(String),
    /// Damage found on disk: a record failing its checksum or decoding, a broken hash chain,
    /// data the storage engine itself finds damaged, acknowledged events the commit journal
    /// can no longer give back. `position` is the first damaged position, or the best known
    /// (0: none is known, e.g. the storage engine's own files).
    #[error("{}", corrupt_message(*position, reason))]
    Corrupt { position: u64, reason: String },
    /// The disk holding the store is full (`ENOSPC`): the append was not acknowledged. The store
    /// refuses appends until there is room again, then resumes by itself.
    #[error("the disk holding the event store is full: {0}")]
    StorageFull(String),
    /// Anything else from the backend (I/O, ...).
    #[error("storage error: {0}")]
    Backend(String),
    /// The database server cannot be reached (PostgreSQL store): nothing was written; retry
    /// later (with the same event ids).
    #[error("the event store's database is unavailable: {0}")]
    Unavailable(String),
}

/// Opens `path` to read and write, creating it private (0600) if missing; never truncated.
/// (The store's own files: the commit journal, the chunk file, the key file.)
pub(crate) fn open_private_file(path: &std::path::Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
}

fn corrupt_message(position: u64, reason: &str) -> String {
    match position {
        0 => format!("damaged store (position unknown): {reason}"),
        p => format!("corrupt log at position {p}: {reason}"),
    }
}

/// The refusal of [`EventStore::append_checked`] when the log no longer ends where the
/// events were checked.
pub fn log_moved(last: u64, checked_at: u64) -> StoreError {
    StoreError::Invalid(format!(
        "the log moved since these events were checked: it ends at position {last}, not \
         {checked_at}; check them again"
    ))
}

/// What a store knows about its own state ([`EventStore::health`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreHealth {
    /// Appends and reads work as far as the store knows.
    Ok,
    /// Appends are refused for want of disk space ([`StoreError::StorageFull`]); they resume
    /// by themselves once there is room.
    StorageFull(String),
    /// Appends are refused after a failed disk write; the store retries by itself.
    WriteFailed(String),
    /// A read found damage; `position` is the first damaged position known (0: unknown).
    /// Stays until the store is opened again (after a restore: see `dealtrail verify`).
    Damaged { position: u64, reason: String },
}

/// A read-only view of the committed log that a validator may consult while an append is
/// being decided. Appends are serialised while the validator runs, so what it sees is
/// exactly the state the batch will be appended to (including earlier, not yet flushed,
/// appends of the same group commit).
pub trait LogView {
    /// All events of one stream, oldest first.
    fn stream(&self, stream: &str) -> Result<Vec<RecordedEvent>, StoreError>;
    /// All events of every stream whose name starts with `prefix`, in log order.
    fn streams_with_prefix(&self, prefix: &str) -> Result<Vec<RecordedEvent>, StoreError>;
}

/// Why [`AppendValidator::validate`] did not accept a batch.
#[derive(Debug, thiserror::Error)]
pub enum ValidateError {
    /// The domain refused the batch: the store answers [`StoreError::Rejected`].
    #[error("{0}")]
    Rejected(Rejection),
    /// The validator could not read the log (a [`LogView`] read failed): the store answers
    /// this error as it is, never as a rejection.
    #[error("{0}")]
    Store(StoreError),
}

impl From<Rejection> for ValidateError {
    fn from(r: Rejection) -> ValidateError {
        ValidateError::Rejected(r)
    }
}

impl From<StoreError> for ValidateError {
    fn from(e: StoreError) -> ValidateError {
        ValidateError::Store(e)
    }
}

impl ValidateError {
    /// The store error an append of `batch_len` events answers: a rejection of a one-event
    /// batch names that event (index 0); a failed read is the store error it is.
    pub(crate) fn for_batch(self, batch_len: usize) -> StoreError {
        match self {
            ValidateError::Rejected(mut r) => {
                if r.index.is_none() && batch_len == 1 {
                    r.index = Some(0);
                }
                StoreError::Rejected(r)
            }
            ValidateError::Store(e) => e,
        }
    }
}

impl From<ValidateError> for StoreError {
    fn from(e: ValidateError) -> StoreError {
        match e {
            ValidateError::Rejected(r) => StoreError::Rejected(r),
            ValidateError::Store(e) => e,
        }
    }
}

/// Decides whether a batch may be appended (the domain's rules plug in here).
pub trait AppendValidator: Send + Sync + 'static {
    /// `batch` has ids, versions, positions and times assigned as they will be written.
    /// A failed read of `view` is [`ValidateError::Store`], never a rejection.
    fn validate(
        &self,
        view: &dyn LogView,
        stream: &str,
        batch: &[RecordedEvent],
    ) -> Result<(), ValidateError>;
    /// Called, in log order, with every batch that passed (for caches), as soon as it is
    /// accepted into the current group commit, so the next `validate` can rely on it. If
    /// writing that group then fails, the store refuses appends until it has gone back to what
    /// is on disk, and then calls [`AppendValidator::reset`].
    fn applied(&self, _batch: &[RecordedEvent]) {}
    /// The store went back to what is on disk after a failed write: batches passed to
    /// `validate` or `applied` since the last reset may not be in the log. Forget anything
    /// learned from them.
    fn reset(&self) {}
}

/// A validator that accepts every well-formed envelope.
pub struct EnvelopeOnly;

impl AppendValidator for EnvelopeOnly {
    fn validate(
        &self,
        _view: &dyn LogView,
        _stream: &str,
        _batch: &[RecordedEvent],
    ) -> Result<(), ValidateError> {
        Ok(())
    }
}

/// The append-only event log.
#[async_trait]
pub trait EventStore: Send + Sync + 'static {
    /// Appends a batch to one stream, atomically, and returns once it is durable.
    ///
    /// An append that fails for want of disk space ([`StoreError::StorageFull`]) or another
    /// failed write was not acknowledged, yet it may be in the log once the store has
    /// recovered, as after a crash: retry it with the same event ids.
    ///
    /// Idempotent by event id: if every event of the batch is already in the log with the
    /// same stream, type, data, metadata (and `occurred_at`, when the client gave one), the
    /// original positions are returned, nothing is written and `expected` is not checked.
    /// An id already in the log with other content is [`StoreError::IdConflict`].
    async fn append(
        &self,
        stream: &str,
        expected: ExpectedVersion,
        events: Vec<ProposedEvent>,
    ) -> Result<AppendOutcome, StoreError>;

    /// Appends several batches (each to one stream, with its own expected version) as one
    /// atomic unit, in the given order, and returns once all of it is durable. Each batch is
    /// deduplicated by event id on its own (see [`EventStore::append`]). On error nothing of
    /// any batch was written.
    async fn append_multi(
        &self,
        batches: Vec<StreamBatch>,
    ) -> Result<Vec<AppendOutcome>, MultiAppendError>;

    /// Appends batches that the caller has already checked, as [`EventStore::append_multi`]
    /// would, against the log as it stood when its last position was `checked_at` (the bulk
    /// path of `dealtrail import`): none of their ids is in the log or appears twice, and they
    /// pass the domain's rules in this order. The append is refused, with nothing written,
    /// unless the log still ends at `checked_at` when it is decided (so that the check still
    /// holds); positions, versions and times are assigned, and the events written, as by
    /// `append_multi`. Several calls may be in flight, each naming the position the previous
    /// one ends at. A store may skip its own id lookups and validator for such a request
    /// (sled does, and then forgets what its validator cached); the default runs the ordinary
    /// path, which checks everything again. A batch's `expected` is checked as usual, except
    /// that a store may take [`ExpectedVersion::NoStream`] at the caller's word when nothing
    /// it holds in memory says otherwise (sled then skips looking the stream up in its tree):
    /// the caller's check saw the stream absent from the log at `checked_at`.
    async fn append_checked(
        &self,
        batches: Vec<StreamBatch>,
        checked_at: u64,
    ) -> Result<Vec<AppendOutcome>, MultiAppendError> {
        let last = self
            .last_position()
            .await
            .map_err(MultiAppendError::general)?;
        if last != checked_at {
            return Err(MultiAppendError::general(log_moved(last, checked_at)));
        }
        self.append_multi(batches).await
    }

    /// A stream's events from `from_version`, at most `limit`.
    async fn read_stream(
        &self,
        stream: &str,
        from_version: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError>;

    /// The global log from `from_position` (inclusive; 0 and 1 both mean the start), filtered, at most `limit`.
    async fn read_all(
        &self,
        from_position: u64,
        limit: usize,
        filter: &Filter,
    ) -> Result<Vec<RecordedEvent>, StoreError>;

    /// The position of the last durable event (0 for an empty log).
    async fn last_position(&self) -> Result<u64, StoreError>;

    /// The log's chain hash after the durable event at `position` (see `frame`): what ties
    /// something derived from the log (the read model's snapshot) to exactly this log.
    /// `None` when `position` is 0, past the durable end, or the store keeps no chain.
    async fn chain_hash_at(&self, _position: u64) -> Result<Option<[u8; 32]>, StoreError> {
        Ok(None)
    }

    /// The version of a stream's last event, `None` if it does not exist.
    async fn stream_version(&self, stream: &str) -> Result<Option<u64>, StoreError>;

    /// The durable event with this id, `None` if there is none (import's idempotency check).
    async fn event_by_id(&self, id: uuid::Uuid) -> Result<Option<RecordedEvent>, StoreError>;

    /// [`EventStore::event_by_id`] for many ids at once (import's idempotency check of a
    /// large file): one answer per id, in the order given.
    async fn events_by_ids(
        &self,
        ids: &[uuid::Uuid],
    ) -> Result<Vec<Option<RecordedEvent>>, StoreError> {
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            out.push(self.event_by_id(*id).await?);
        }
        Ok(out)
    }

    /// What the store knows about its own state (for a health check): a full disk or a failed
    /// write refusing appends, damage found by a read.
    fn health(&self) -> StoreHealth {
        StoreHealth::Ok
    }

    /// The store as the read model's projector should read it, if that differs: [`Sealed`]
    /// leaves free text (`summary`, `note`) sealed there, since the model never keeps it
    /// (timelines and replays read those events from the log itself), so a rebuild opens
    /// only names.
    fn projection_view(&self) -> Option<std::sync::Arc<dyn EventStore>> {
        None
    }

    /// Erases the personal data of `person` (a `customer-…` or `lead-…` stream; SPEC §7): its
    /// key is destroyed and `PersonalDataErased` appended. Only a store that seals personal
    /// data ([`Sealed`]) can; the others answer [`EraseError::Unsupported`].
    async fn erase_personal_data(
        &self,
        _person: &str,
        _reason: &str,
        _actor: &str,
    ) -> Result<Erasure, EraseError> {
        Err(EraseError::Unsupported)
    }

    /// Events from `from_position` (inclusive) on: catch-up from disk, then live, without gap
    /// or duplicate. A slow subscriber never blocks appends.
    fn subscribe(
        &self,
        from_position: u64,
        filter: Filter,
    ) -> futures::stream::BoxStream<'static, Result<RecordedEvent, StoreError>>;
}
