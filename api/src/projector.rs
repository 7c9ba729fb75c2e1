//! Keeps the projections' read model current inside the service, persists it with the log
//! position it reflects, and rebuilds it beside the live one.
//!
//! - Start: load the snapshot (`<data>/projections/readmodel.json`, see [`crate::snapshot`]:
//!   the model with a checksum, the position it reflects and the log's chain hash there,
//!   written to a temp file, fsynced, then renamed), then catch up from that position + 1. A
//!   snapshot that fails a check (changed, of another log, ahead of the log) is ignored with
//!   a warning and the model rebuilt.
//! - Live: a task follows the store's subscription and applies what has arrived as one batch
//!   under the write lock, on a blocking thread; readers take the read lock and never see
//!   half an event applied.
//! - Reads: reports run on blocking threads ([`Projector::query`]), never on the async
//!   workers: a long report (an "as of" over a big log) waiting for or holding the lock must
//!   not stall `/healthz`, appends or the follower (the runtime has as many workers as cores).
//! - Rebuild: a new model is built from the log without any lock, caught up under the write
//!   lock, and swapped in; readers see the old model until the swap, then the new one.

use std::path::{Path, PathBuf};

use crate::snapshot;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use eventlog::{EventStore, Filter, StoreError};
use futures::StreamExt;
use projections::ReadModel;

// Private to the server's user (0600, its directory 0700).
use crate::http::files::write_parts_atomically;

/// The service's read model.
pub struct Projector {
    model: RwLock<ReadModel>,
    /// `model.last_position`, readable without the lock (metrics, the follower).
    position: AtomicU64,
    snapshot: Option<PathBuf>,
    /// The position of the newest model built from scratch after an erasure (see
    /// [`Projector::follow`]): an erasure at or before it is already reflected.
    clean_through: AtomicU64,
}

/// The type whose appearance makes the model rebuild (SPEC §7): the model holds the erased
/// person's fields as they read before; the log now reads them `"[erased]"`.
const ERASURE: &str = "PersonalDataErased";

/// The most events the follower applies under one write lock.
const BATCH: usize = 4_096;

const PAGE: usize = 10_000;

/// Applies every durable event after the model's position.
async fn catch_up(store: &dyn EventStore, model: &mut ReadModel) -> Result<u64, StoreError> {
    catch_up_with(store, model, |_| {}).await
}

/// `catch_up`, calling `progress` with each page's size. Reading and applying overlap: this
/// task reads the log page by page while a blocking thread applies the pages already read
/// (on two cores a rebuild runs at about the slower of the two rates instead of their sum).
pub async fn catch_up_with(
    store: &dyn EventStore,
    model: &mut ReadModel,
    mut progress: impl FnMut(u64),
) -> Result<u64, StoreError> {
    let view = store.projection_view();
    let store = view.as_deref().unwrap_or(store);
    let (pages, mut incoming) = tokio::sync::mpsc::channel::<Vec<eventlog::RecordedEvent>>(2);
    let mut taken = std::mem::take(model);
    let mut next = taken.last_position + 1;
    let applier = tokio::task::spawn_blocking(move || {
        let mut applied = 0;
        while let Some(page) = incoming.blocking_recv() {
            for ev in &page {
                taken.apply(ev);
            }
            applied += page.len() as u64;
        }
        (taken, applied)
    });
    let read = async {
        loop {
            let page = store.read_all(next, PAGE, &Filter::default()).await?;
            let Some(last) = page.last() else {
                return Ok(());
            };
            next = last.position + 1;
            progress(page.len() as u64);
            if pages.send(page).await.is_err() {
                return Ok(()); // the applier is gone: its join below says why
            }
        }
    };
    let outcome: Result<(), StoreError> = read.await;
    drop(pages);
    let (back, applied) = applier.await.map_err(|e| {
        StoreError::Backend(format!("applying the log to the read model failed: {e}"))
    })?;
    *model = back;
    outcome.map(|()| applied)
}

/// Whether the log holds an erasure after `position`.
async fn erased_after(store: &dyn EventStore, position: u64) -> Result<bool, StoreError> {
    let filter = Filter {
        types: vec![ERASURE.to_string()],
        stream_prefix: None,
    };
    Ok(!store.read_all(position + 1, 1, &filter).await?.is_empty())
}

impl Projector {
    /// A projector without persistence (tests, offline reports).
    pub fn in_memory() -> Projector {
        Projector {
            model: RwLock::new(ReadModel::new()),
            position: AtomicU64::new(0),
            snapshot: None,
            clean_through: AtomicU64::new(0),
        }
    }

    /// A projector for `data` holding `model` (e.g. just rebuilt), not yet saved.
    pub fn with_model(data: &Path, model: ReadModel) -> Projector {
        Projector {
            position: AtomicU64::new(model.last_position),
            model: RwLock::new(model),
            snapshot: Some(snapshot::path(data)),
            clean_through: AtomicU64::new(0),
        }
    }

    /// Opens the projector of a data directory: snapshot if any, then catch-up from the log.
    pub async fn open(data: &Path, store: &dyn EventStore) -> Result<Projector, StoreError> {
        let path = snapshot::path(data);
        let mut model = match snapshot::check(&path, store).await? {
            snapshot::Check::Valid(m) => *m,
            snapshot::Check::Absent => ReadModel::deferred(),
            snapshot::Check::Invalid(why) => {
                tracing::warn!(path = %path.display(), "read model snapshot not used, rebuilding from the log: {why}");
                ReadModel::deferred()
            }
        };
        let mut from = model.last_position;
        if from > 0 && erased_after(store, from).await? {
            // The snapshot holds text erased since: not used, and removed (a new one is
            // saved from the model rebuilt from the log).
            tracing::info!(path = %path.display(), "personal data erased since the read model snapshot: rebuilding");
            if let Err(e) = std::fs::remove_file(&path) {
                tracing::error!(error = %e, path = %path.display(), "cannot remove the read model snapshot");
            }
            model = ReadModel::deferred();
            from = 0;
        }
        let applied = catch_up(store, &mut model).await?;
        model.finish();
        tracing::info!(from, applied, "read model ready");
        Ok(Projector {
            position: AtomicU64::new(model.last_position),
            clean_through: AtomicU64::new(model.last_position),
            model: RwLock::new(model),
            snapshot: Some(path),
        })
    }

    /// Read access to the model, blocking while a batch is applied: for blocking threads and
    /// offline commands. Async code uses [`Projector::query`].
    pub fn read(&self) -> RwLockReadGuard<'_, ReadModel> {
        self.model.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `f` over the model on a blocking thread (a report, a page of a list): the async
    /// workers stay free for `/healthz`, appends and the follower however long it takes.
    pub async fn query<T, F>(self: &Arc<Self>, f: F) -> T
    where
        F: FnOnce(&ReadModel) -> T + Send + 'static,
        T: Send + 'static,
    {
        let me = self.clone();
        match tokio::task::spawn_blocking(move || f(&me.read())).await {
            Ok(out) => out,
            // A report that panicked: the same as a panic in the handler itself.
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        }
    }

    /// The write lock, as the follower takes it for a batch. Blocking; tests hold it to stand
    /// for a very long batch or report.
    pub fn write(&self) -> RwLockWriteGuard<'_, ReadModel> {
        self.model.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Applies `events` (in log order) under one write lock.
    fn apply_all(&self, events: &[eventlog::RecordedEvent]) {
        let mut model = self.write();
        for ev in events {
            model.apply(ev);
        }
        self.position.store(model.last_position, Ordering::Release);
    }

    /// The log position the model reflects (no lock taken).
    pub fn position(&self) -> u64 {
        self.position.load(Ordering::Acquire)
    }

    /// Applies what is new in the log now (one page), on a blocking thread.
    pub async fn refresh(self: &Arc<Self>, store: &dyn EventStore) -> Result<u64, StoreError> {
        let view = store.projection_view();
        let store = view.as_deref().unwrap_or(store);
        let from = self.position() + 1;
        let page = store.read_all(from, PAGE, &Filter::default()).await?;
        let n = page.len() as u64;
        let me = self.clone();
        tokio::task::spawn_blocking(move || me.apply_all(&page))
            .await
            .map_err(|e| StoreError::Backend(format!("applying to the read model failed: {e}")))?;
        Ok(n)
    }

    /// Follows the log until `shutdown` resolves: takes what the subscription has ready (up
    /// to `BATCH` events) and applies it on a blocking thread; saves a snapshot after
    /// `snapshot_every` events or a quarter of the log, whichever is more, and at the end.
    pub async fn follow(
        self: Arc<Self>,
        store: Arc<dyn EventStore>,
        snapshot_every: u64,
        shutdown: impl std::future::Future<Output = ()>,
    ) {
        use futures::FutureExt;
        let store = store.projection_view().unwrap_or(store);
        let mut events = store.subscribe(self.position() + 1, Filter::default());
        let mut since_save = 0u64;
        tokio::pin!(shutdown);
        loop {
            let mut batch = Vec::new();
            let mut failed = None;
            let mut ended = false;
            tokio::select! {
                _ = &mut shutdown => break,
                next = events.next() => match next {
                    Some(Ok(ev)) => batch.push(ev),
                    Some(Err(e)) => failed = Some(e),
                    None => ended = true,
                },
            }
            // Whatever else is ready joins the batch, without waiting.
            while failed.is_none() && !ended && !batch.is_empty() && batch.len() < BATCH {
                match events.next().now_or_never() {
                    Some(Some(Ok(ev))) => batch.push(ev),
                    Some(Some(Err(e))) => failed = Some(e),
                    Some(None) => ended = true,
                    None => break,
                }
            }
            if !batch.is_empty() {
                since_save += batch.len() as u64;
                let erasure = batch
                    .iter()
                    .filter(|ev| ev.event_type == ERASURE)
                    .map(|ev| ev.position)
                    .max();
                let me = self.clone();
                if let Err(e) = tokio::task::spawn_blocking(move || me.apply_all(&batch)).await {
                    tracing::error!(error = %e, "applying a batch to the read model failed");
                    break;
                }
                // Before any save: the model still holds what the erasure erased.
                if erasure.is_some_and(|p| p > self.clean_through.load(Ordering::Acquire)) {
                    match self.rebuild(store.as_ref()).await {
                        Ok(_) => self.save_logged(store.as_ref()).await,
                        Err(e) => {
                            tracing::error!(error = %e, "rebuilding the read model after an erasure failed")
                        }
                    }
                }
            }
            if let Some(e) = failed {
                tracing::error!(error = %e, "read model subscription failed; resubscribing");
                tokio::time::sleep(std::time::Duration::from_millis(500)).await;
                events = store.subscribe(self.position() + 1, Filter::default());
            }
            if ended {
                break;
            }
            // A snapshot writes the whole model: spacing them by at least a quarter of the
            // log keeps their total cost linear in the log (a fixed spacing made it quadratic:
            // the load test spent half its CPU in snapshots on a 700k-event log).
            if since_save >= snapshot_every.max(self.position() / 4) {
                since_save = 0;
                self.save_logged(store.as_ref()).await;
            }
        }
        self.save_logged(store.as_ref()).await;
    }

    async fn save_logged(self: &Arc<Self>, store: &dyn EventStore) {
        if let Err(e) = self.save(store).await {
            tracing::error!(error = %e, "cannot save the read model snapshot");
        }
    }

    /// Rebuilds the model from the log beside the live one and swaps it in atomically.
    pub async fn rebuild(self: &Arc<Self>, store: &dyn EventStore) -> Result<u64, StoreError> {
        let view = store.projection_view();
        let store = view.as_deref().unwrap_or(store);
        let mut fresh = ReadModel::deferred();
        catch_up(store, &mut fresh).await?;
        fresh.finish();
        // Whatever arrived meanwhile is applied, then the swap under the write lock, unless the
        // live model has moved past the fresh one by then (the follower applied more): then
        // again from there.
        loop {
            let tail = store
                .read_all(fresh.last_position + 1, usize::MAX, &Filter::default())
                .await?;
            let me = self.clone();
            let swapped = tokio::task::spawn_blocking(move || {
                for ev in &tail {
                    fresh.apply(ev);
                }
                let mut model = me.write();
                if model.last_position > fresh.last_position {
                    return Err(Box::new(fresh));
                }
                *model = fresh;
                me.position.store(model.last_position, Ordering::Release);
                me.clean_through
                    .fetch_max(model.last_position, Ordering::AcqRel);
                Ok(model.last_position)
            })
            .await
            .map_err(|e| {
                StoreError::Backend(format!("swapping in the rebuilt read model failed: {e}"))
            })?;
            match swapped {
                Ok(position) => return Ok(position),
                Err(behind) => fresh = *behind,
            }
        }
    }

    /// Writes the snapshot atomically (temp file, fsync, rename, fsync the directory), tied
    /// to `store`'s log at the position the model reflects. The model is serialised and the
    /// file written on a blocking thread.
    pub async fn save(self: &Arc<Self>, store: &dyn EventStore) -> std::io::Result<()> {
        let Some(path) = self.snapshot.clone() else {
            return Ok(());
        };
        let me = self.clone();
        let started = std::time::Instant::now();
        let (position, model) = tokio::task::spawn_blocking(move || {
            let model = me.read();
            serde_json::to_vec(&*model).map(|json| (model.last_position, json))
        })
        .await
        .map_err(std::io::Error::other)?
        .map_err(std::io::Error::other)?;
        let chain = store
            .chain_hash_at(position)
            .await
            .map_err(std::io::Error::other)?;
        let serialised = started.elapsed();
        let bytes = model.len();
        tokio::task::spawn_blocking(move || {
            let header = snapshot::header(position, chain, &model);
            write_parts_atomically(&path, &[&header, &model])
        })
        .await
        .map_err(std::io::Error::other)??;
        tracing::info!(
            position,
            bytes,
            serialise_ms = serialised.as_millis() as u64,
            "read model snapshot saved in {} ms",
            started.elapsed().as_millis()
        );
        Ok(())
    }
}
