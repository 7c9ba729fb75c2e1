//! The index thread: writes the rounds of the deferred index the writer seals (see `index`),
//! so that the writer never waits for one.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;

use uuid::Uuid;

use super::super::fault::{at, backend, io_error};
use super::super::{keys, Shared, Sled};
use crate::StoreError;

/// A bulk round of index entries goes to sled in atomic batches of this many (see
/// [`insert_entries`]): sled applies a batch under one epoch guard, so every tree node an
/// insert replaces stays allocated until the whole batch is done, and a batch of 32,768
/// random ids held ~190 MB that way.
const ENTRY_BATCH: usize = 4096;

/// A sealed round: the entries held in `Held::sealed`, of the events through `through`.
struct Round {
    through: u64,
    /// Sealed by a group of checked (bulk) appends.
    bulk: bool,
}

/// The handle of the index thread of one writer session.
pub(super) struct Indexer {
    rounds: mpsc::Sender<Round>,
    /// A round is sealed and not durable yet, watermark included.
    busy: Arc<AtomicBool>,
    thread: JoinHandle<Uuid>,
}

impl Indexer {
    /// Starts the thread; `last_run_id`: the greatest id in the tree's id runs.
    pub(super) fn start(shared: Arc<Shared>, last_run_id: Uuid) -> std::io::Result<Indexer> {
        let (rounds, rx) = mpsc::channel();
        let busy = Arc::new(AtomicBool::new(false));
        let done = busy.clone();
        let thread = std::thread::Builder::new()
            .name("eventlog-index".into())
            .spawn(move || run(&shared, rx, &done, last_run_id))?;
        Ok(Indexer {
            rounds,
            busy,
            thread,
        })
    }

    /// Whether the last round is durable, watermark included (the next may be sealed).
    pub(super) fn idle(&self) -> bool {
        !self.busy.load(Ordering::Acquire)
    }

    /// Hands over the round just sealed (see [`Indexer::idle`]).
    pub(super) fn write(&self, through: u64, bulk: bool) {
        self.busy.store(true, Ordering::Release);
        if self.rounds.send(Round { through, bulk }).is_err() {
            // The thread is gone (it only ends when this handle is dropped).
            self.busy.store(false, Ordering::Release);
        }
    }

    /// Waits for the round in progress and ends the thread; the greatest id in the tree's id
    /// runs then (`None` if the thread panicked: the store is faulted then).
    pub(super) fn stop(self) -> Option<Uuid> {
        drop(self.rounds);
        self.thread.join().ok()
    }
}

fn run(
    shared: &Shared,
    rounds: mpsc::Receiver<Round>,
    busy: &AtomicBool,
    mut last_run_id: Uuid,
) -> Uuid {
    for round in rounds {
        // After a fault, the writer reopens the store and rebuilds what is held from the log.
        if !shared.faulted() {
            let result = catch_unwind(AssertUnwindSafe(|| {
                write_round(shared, round.through, round.bulk, &mut last_run_id)
            }))
            .unwrap_or_else(|_| Err(backend("the index thread panicked")));
            if let Err(e) = result {
                shared.note(&e);
                shared.set_fault(&e);
            }
        }
        busy.store(false, Ordering::Release);
    }
    last_run_id
}

/// Inserts the sealed round's entries (of the events through `through`; `bulk`: sealed by
/// checked appends, see [`insert_entries`]), drops them from memory, and moves the watermark
/// over them, each step durable before the next (see `index`). The index thread's work, and
/// the writer's when the store closes.
pub(super) fn write_round(
    shared: &Shared,
    through: u64,
    bulk: bool,
    last_run_id: &mut Uuid,
) -> Result<(), StoreError> {
    let lock_error = || backend("the index lock is poisoned");
    let sealed = shared
        .unindexed
        .read()
        .map_err(|_| lock_error())?
        .sealed
        .clone();
    // The ids of bulk appends go to a run of their own (see `id_runs`).
    let id_run = match &shared.dir {
        Some(dir) if sealed.has_bulk() && sealed.id_positions().next().is_some() => {
            Some((dir, sealed.id_list()))
        }
        _ => None,
    };
    let entries = sealed.entries(last_run_id, id_run.is_some());
    drop(sealed);
    let sled = shared.sled()?;
    insert_entries(&sled, entries, bulk).map_err(at(through))?;
    let mut stale = Vec::new();
    if let Some((dir, ids)) = id_run {
        let added = sled
            .id_runs()
            .add(dir, ids)
            .map_err(|e| io_error("cannot write a run of the bulk id index", e))?;
        {
            let _gate = sled.gate();
            sled.tree.apply_batch(added.batch).map_err(at(through))?;
        }
        *sled.id_runs.write().map_err(|_| lock_error())? = Arc::new(added.runs);
        stale = added.stale;
    }
    // Readers find these in the tree (and the runs) now (see `read::runs`).
    shared.unindexed.write().map_err(|_| lock_error())?.sealed = Arc::default();
    mark(shared, &sled, through)?;
    // The merged runs' files, once the batch that replaced their records is durable.
    for path in stale {
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                tracing::warn!(path = %path.display(), error = %e, "cannot delete a merged id run")
            }
            _ => {}
        }
    }
    Ok(())
}

/// Moves the watermark to `through`, whose entries are all inserted: flushes sled first, so
/// that the watermark never names entries a crash could lose, and after, so that the next
/// round's entries never reach the disk before it.
fn mark(shared: &Shared, sled: &Sled, through: u64) -> Result<(), StoreError> {
    let durable = shared.dir.is_some();
    if durable {
        sled.flush()?;
    }
    sled.tree
        .insert(keys::INDEXED, &keys::position_value(through))
        .map_err(at(through))?;
    if durable {
        sled.flush()?;
    }
    Ok(())
}

/// Inserts index entries one by one, or, `batched`, in atomic batches of [`ENTRY_BATCH`], in
/// order. One by one does not hold up other sled readers and writers (see `index`), and
/// suits a round of the live appends (tens of entries). A bulk import's round holds thousands
/// of random ids, and sled wrote far more blob files for them inserted one by one: for
/// 10,000 random ids, the sync after them met 1,620 blob files, 18 when they came in batches.
fn insert_entries(
    sled: &Sled,
    entries: Vec<(Vec<u8>, Vec<u8>)>,
    batched: bool,
) -> Result<(), sled::Error> {
    if !batched {
        for (key, value) in entries {
            sled.tree.insert(key, value)?;
        }
        return Ok(());
    }
    let mut entries = entries.into_iter().peekable();
    while entries.peek().is_some() {
        let mut batch = sled::Batch::default();
        entries
            .by_ref()
            .take(ENTRY_BATCH)
            .for_each(|(key, value)| batch.insert(key, value));
        let _gate = sled.gate();
        sled.tree.apply_batch(batch)?;
    }
    Ok(())
}
