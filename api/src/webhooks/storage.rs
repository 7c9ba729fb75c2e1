//! Where webhooks and their delivery checkpoints live: the [`WebhookStorage`] trait, and its
//! implementation in the data directory, [`FileStorage`]: `http/webhooks.json` (the
//! webhooks, secrets included) and `http/webhook-progress/<id>.json` (each one's checkpoint),
//! both replaced atomically and fsynced (see [`crate::http::files`]), 0600. A store shared
//! by several nodes (PostgreSQL) implements the same trait.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::signature::Secret;
use crate::http::files;

/// One webhook as configured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Webhook {
    pub id: Uuid,
    pub url: String,
    /// Only these event types (empty = all).
    pub types: Vec<String>,
    /// Only streams whose name starts with this.
    pub stream_prefix: Option<String>,
    pub secret: Secret,
    pub created_at: DateTime<Utc>,
    /// Set when deliveries failed for longer than allowed; nothing is delivered any more.
    pub disabled: Option<Disabled>,
}

/// Why and when a webhook was disabled.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Disabled {
    #[schema(value_type = String, format = DateTime)]
    pub at: DateTime<Utc>,
    pub reason: String,
}

/// A webhook's durable checkpoint.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    /// The last position delivered (or skipped as not matching); delivery resumes after it.
    pub position: u64,
    /// Since when deliveries have been failing without a success in between.
    pub failing_since: Option<DateTime<Utc>>,
}

/// Webhooks and their checkpoints, durable before each call returns.
#[async_trait]
pub trait WebhookStorage: Send + Sync + 'static {
    async fn list(&self) -> std::io::Result<Vec<Webhook>>;
    /// Saves a new webhook with its starting checkpoint.
    async fn create(&self, hook: &Webhook, start: &Progress) -> std::io::Result<()>;
    /// Removes a webhook and its checkpoint; `false` if there was none.
    async fn delete(&self, id: Uuid) -> std::io::Result<bool>;
    async fn disable(&self, id: Uuid, why: &Disabled) -> std::io::Result<()>;
    async fn progress(&self, id: Uuid) -> std::io::Result<Progress>;
    async fn save_progress(&self, id: Uuid, progress: &Progress) -> std::io::Result<()>;
}

/// [`WebhookStorage`] in the data directory.
pub struct FileStorage {
    hooks_path: PathBuf,
    progress_dir: PathBuf,
    hooks: Arc<Mutex<BTreeMap<Uuid, Webhook>>>,
}

impl FileStorage {
    pub fn open(data_dir: &Path) -> std::io::Result<FileStorage> {
        let hooks_path = data_dir.join("http").join("webhooks.json");
        let hooks = files::load(&hooks_path)?;
        Ok(FileStorage {
            hooks_path,
            progress_dir: data_dir.join("http").join("webhook-progress"),
            hooks: Arc::new(Mutex::new(hooks)),
        })
    }

    fn progress_path(&self, id: Uuid) -> PathBuf {
        self.progress_dir.join(format!("{id}.json"))
    }

    /// Applies `change` to a copy of the table, writes it, then keeps it (on a blocking thread:
    /// the write ends with fsyncs).
    async fn update<R: Send + 'static>(
        &self,
        change: impl FnOnce(&mut BTreeMap<Uuid, Webhook>) -> R + Send + 'static,
    ) -> std::io::Result<R> {
        let hooks = self.hooks.clone();
        let path = self.hooks_path.clone();
        blocking(move || {
            let mut table = hooks.lock().unwrap_or_else(|p| p.into_inner());
            let mut next = table.clone();
            let r = change(&mut next);
            files::store(&path, &next)?;
            *table = next;
            Ok(r)
        })
        .await
    }
}

async fn blocking<R: Send + 'static>(
    f: impl FnOnce() -> std::io::Result<R> + Send + 'static,
) -> std::io::Result<R> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(std::io::Error::other)?
}

#[async_trait]
impl WebhookStorage for FileStorage {
    async fn list(&self) -> std::io::Result<Vec<Webhook>> {
        let hooks = self.hooks.lock().unwrap_or_else(|p| p.into_inner());
        Ok(hooks.values().cloned().collect())
    }

    async fn create(&self, hook: &Webhook, start: &Progress) -> std::io::Result<()> {
        // The checkpoint first: a webhook never exists without one.
        self.save_progress(hook.id, start).await?;
        let hook = hook.clone();
        self.update(move |t| {
            t.insert(hook.id, hook);
        })
        .await
    }

    async fn delete(&self, id: Uuid) -> std::io::Result<bool> {
        let existed = self.update(move |t| t.remove(&id).is_some()).await?;
        let path = self.progress_path(id);
        blocking(move || match std::fs::remove_file(path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        })
        .await?;
        Ok(existed)
    }

    async fn disable(&self, id: Uuid, why: &Disabled) -> std::io::Result<()> {
        let why = why.clone();
        self.update(move |t| {
            if let Some(h) = t.get_mut(&id) {
                h.disabled = Some(why);
            }
        })
        .await
    }

    async fn progress(&self, id: Uuid) -> std::io::Result<Progress> {
        let path = self.progress_path(id);
        blocking(move || files::load(&path)).await
    }

    async fn save_progress(&self, id: Uuid, progress: &Progress) -> std::io::Result<()> {
        let path = self.progress_path(id);
        let progress = progress.clone();
        blocking(move || files::store(&path, &progress)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hook() -> Webhook {
        Webhook {
            id: Uuid::now_v7(),
            url: "http://127.0.0.1:9/hook".into(),
            types: vec!["DealWon".into()],
            stream_prefix: Some("deal-".into()),
            secret: Secret::generate(),
            created_at: Utc::now(),
            disabled: None,
        }
    }

    #[tokio::test]
    async fn webhooks_and_checkpoints_survive_reopen_and_delete_removes_both() {
        let dir = tempfile::tempdir().unwrap();
        let s = FileStorage::open(dir.path()).unwrap();
        let h = hook();
        let start = Progress {
            position: 5,
            failing_since: None,
        };
        s.create(&h, &start).await.unwrap();
        let later = Progress {
            position: 9,
            failing_since: Some(Utc::now()),
        };
        s.save_progress(h.id, &later).await.unwrap();
        let why = Disabled {
            at: Utc::now(),
            reason: "failing".into(),
        };
        s.disable(h.id, &why).await.unwrap();

        let again = FileStorage::open(dir.path()).unwrap();
        let listed = again.list().await.unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].secret, h.secret);
        assert_eq!(listed[0].disabled.as_ref(), Some(&why));
        assert_eq!(again.progress(h.id).await.unwrap(), later);
        #[cfg(unix)]
        {
            assert_eq!(files::mode(&dir.path().join("http/webhooks.json")), 0o600);
            assert_eq!(files::mode(&again.progress_path(h.id)), 0o600);
        }

        assert!(again.delete(h.id).await.unwrap());
        assert!(!again.delete(h.id).await.unwrap());
        assert!(again.list().await.unwrap().is_empty());
        assert!(!again.progress_path(h.id).exists());
    }
}
