//! Keeps the projections' read model current inside the service, persists it with the log
//! position it reflects, and rebuilds it beside the live one.
//!
//! - Start: load the snapshot (`<data>/projections/readmodel.json`, see [`crate::snapshot`]:
//!   the model with a checksum, the position it reflects and the log's chain hash there,
//!   written to a temp file, fsynced, then renamed), then catch up from that position + 1. A
//!   snapshot that fails a check (changed, of another log, ahead of the log) is ignored with
//!   a warning and the model rebuilt.
//! - Live: a task follows the store's subscription and applies events in small batches under
//!   the write lock; readers take the read lock and never see half an event applied.
//! - Rebuild: a new model is built from the log without any lock, caught up under the write
//!   lock, and swapped in; readers see the old model until the swap, then the new one.

use std::path::{Path, PathBuf};

use crate::snapshot;
use std::sync::{Arc, RwLock, RwLockReadGuard};

use eventlog::{EventStore, Filter, StoreError};
use futures::StreamExt;
use projections::ReadModel;

// Private to the server's user (0600, its directory 0700).
use crate::http::files::write_atomically;

/// The service's read model.
pub struct Projector {
    model: RwLock<ReadModel>,
    snapshot: Option<PathBuf>,
}

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

impl Projector {
    /// A projector without persistence (tests, offline reports).
    pub fn in_memory() -> Projector {
        Projector {
            model: RwLock::new(ReadModel::new()),
            snapshot: None,
        }
    }

    /// A projector for `data` holding `model` (e.g. just rebuilt), not yet saved.
    pub fn with_model(data: &Path, model: ReadModel) -> Projector {
        Projector {
            model: RwLock::new(model),
            snapshot: Some(snapshot::path(data)),
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
        let from = model.last_position;
        let applied = catch_up(store, &mut model).await?;
        model.finish();
        tracing::info!(from, applied, "read model ready");
        Ok(Projector {
            model: RwLock::new(model),
            snapshot: Some(path),
        })
    }

    /// Read access to the model (held briefly: one report).
    pub fn read(&self) -> RwLockReadGuard<'_, ReadModel> {
        self.model.read().unwrap_or_else(|p| p.into_inner())
    }

    /// The log position the model reflects.
    pub fn position(&self) -> u64 {
        self.read().last_position
    }

    /// Applies what is new in the log now (used after appends when a caller wants its own
    /// writes reflected, and by the live task).
    pub async fn refresh(&self, store: &dyn EventStore) -> Result<u64, StoreError> {
        let from = self.position() + 1;
        let page = store.read_all(from, PAGE, &Filter::default()).await?;
        let mut model = self.model.write().unwrap_or_else(|p| p.into_inner());
        for ev in &page {
            model.apply(ev);
        }
        Ok(page.len() as u64)
    }

    /// Follows the log until `shutdown` resolves; saves a snapshot after `snapshot_every`
    /// events or a quarter of the log, whichever is more, and at the end.
    pub async fn follow(
        self: Arc<Self>,
        store: Arc<dyn EventStore>,
        snapshot_every: u64,
        shutdown: impl std::future::Future<Output = ()>,
    ) {
        let mut events = store.subscribe(self.position() + 1, Filter::default());
        let mut since_save = 0u64;
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                _ = &mut shutdown => break,
                next = events.next() => match next {
                    Some(Ok(ev)) => {
                        let mut model = self.model.write().unwrap_or_else(|p| p.into_inner());
                        model.apply(&ev);
                        since_save += 1;
                    }
                    Some(Err(e)) => {
                        tracing::error!(error = %e, "read model subscription failed; resubscribing");
                        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
                        events = store.subscribe(self.position() + 1, Filter::default());
                    }
                    None => break,
                },
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
    pub async fn rebuild(&self, store: &dyn EventStore) -> Result<u64, StoreError> {
        let mut fresh = ReadModel::deferred();
        catch_up(store, &mut fresh).await?;
        fresh.finish();
        // Whatever arrived meanwhile is applied under the lock, then the swap.
        let tail = store
            .read_all(fresh.last_position + 1, usize::MAX, &Filter::default())
            .await?;
        let mut model = self.model.write().unwrap_or_else(|p| p.into_inner());
        for ev in &tail {
            fresh.apply(ev);
        }
        *model = fresh;
        Ok(model.last_position)
    }

    /// Writes the snapshot atomically (temp file, fsync, rename, fsync the directory), tied
    /// to `store`'s log at the position the model reflects. The model is serialised and the
    /// file written on a blocking thread.
    pub async fn save(self: &Arc<Self>, store: &dyn EventStore) -> std::io::Result<()> {
        let Some(path) = self.snapshot.clone() else {
            return Ok(());
        };
        let me = self.clone();
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
        tokio::task::spawn_blocking(move || {
            write_atomically(&path, &snapshot::encode(position, chain, &model))
        })
        .await
        .map_err(std::io::Error::other)?
    }
}
