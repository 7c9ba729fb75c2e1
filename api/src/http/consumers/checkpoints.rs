//! Durable consumer checkpoints in `<data dir>/http/consumers.json` (0600), replaced atomically on
//! every change so an acknowledged position survives a crash or restart; with a store shared
//! by several nodes (PostgreSQL), in the store, one document per consumer, so that every node
//! sees the same checkpoint.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::http::files;

/// One consumer's checkpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Checkpoint {
    pub name: String,
    /// The last acknowledged position (0 = nothing yet); a subscription resumes after it.
    pub position: u64,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: DateTime<Utc>,
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: DateTime<Utc>,
}

pub struct Checkpoints {
    path: PathBuf,
    table: Mutex<BTreeMap<String, Checkpoint>>,
    /// The shared store's documents, when there is one (then `path` and `table` are unused).
    shared: Option<eventlog::Documents>,
}

/// The documents' kind for checkpoints in a shared store.
const KIND: &str = "consumer";

fn store_io(e: eventlog::StoreError) -> std::io::Error {
    std::io::Error::other(e.to_string())
}

fn parse(body: serde_json::Value) -> std::io::Result<Checkpoint> {
    serde_json::from_value(body)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}

impl Checkpoints {
    pub fn open(data_dir: &Path) -> std::io::Result<Checkpoints> {
        let path = data_dir.join("http").join("consumers.json");
        let table = files::load(&path)?;
        Ok(Checkpoints {
            path,
            table: Mutex::new(table),
            shared: None,
        })
    }

    /// The checkpoints of a store shared by several nodes.
    pub fn shared(documents: eventlog::Documents) -> Checkpoints {
        Checkpoints {
            path: PathBuf::new(),
            table: Mutex::new(BTreeMap::new()),
            shared: Some(documents),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Checkpoint>> {
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub async fn get(&self, name: &str) -> std::io::Result<Option<Checkpoint>> {
        match &self.shared {
            Some(d) => d
                .get(KIND, name)
                .await
                .map_err(store_io)?
                .map(parse)
                .transpose(),
            None => Ok(self.lock().get(name).cloned()),
        }
    }

    /// Creates the consumer at position 0 unless it exists; `true` if it was created.
    pub async fn create(&self, name: &str) -> std::io::Result<(Checkpoint, bool)> {
        if let Some(d) = &self.shared {
            let now = Utc::now();
            let c = Checkpoint {
                name: name.to_string(),
                position: 0,
                created_at: now,
                updated_at: now,
            };
            if d.insert_new(KIND, name, &serde_json::to_value(&c)?)
                .await
                .map_err(store_io)?
            {
                return Ok((c, true));
            }
            let existing = self.get(name).await?.unwrap_or(c);
            return Ok((existing, false));
        }
        let mut table = self.lock();
        if let Some(c) = table.get(name) {
            return Ok((c.clone(), false));
        }
        let now = Utc::now();
        let c = Checkpoint {
            name: name.to_string(),
            position: 0,
            created_at: now,
            updated_at: now,
        };
        let mut next = table.clone();
        next.insert(name.to_string(), c.clone());
        files::store(&self.path, &next)?;
        *table = next;
        Ok((c, true))
    }

    /// Moves the checkpoint forward to `position` (never back: an older ack is a no-op, so
    /// acks that arrive out of order are harmless). `None` if the consumer does not exist.
    pub async fn ack(&self, name: &str, position: u64) -> std::io::Result<Option<Checkpoint>> {
        if let Some(d) = &self.shared {
            let Some(mut c) = self.get(name).await? else {
                return Ok(None);
            };
            if position <= c.position {
                return Ok(Some(c));
            }
            c.position = position;
            c.updated_at = Utc::now();
            // Only forward, also against another node's ack in between.
            d.put_if_greater(KIND, name, "position", position, &serde_json::to_value(&c)?)
                .await
                .map_err(store_io)?;
            return self.get(name).await;
        }
        let mut table = self.lock();
        let Some(current) = table.get(name) else {
            return Ok(None);
        };
        if position <= current.position {
            return Ok(Some(current.clone()));
        }
        let mut next = table.clone();
        let c = next.get_mut(name).expect("checked above");
        c.position = position;
        c.updated_at = Utc::now();
        let c = c.clone();
        files::store(&self.path, &next)?;
        *table = next;
        Ok(Some(c))
    }
    /// Every consumer, by name.
    pub async fn list(&self) -> std::io::Result<Vec<Checkpoint>> {
        match &self.shared {
            Some(d) => d
                .list(KIND)
                .await
                .map_err(store_io)?
                .into_iter()
                .map(|(_, body)| parse(body))
                .collect(),
            None => Ok(self.lock().values().cloned().collect()),
        }
    }

    /// Removes the consumer; `false` if it did not exist.
    pub async fn delete(&self, name: &str) -> std::io::Result<bool> {
        if let Some(d) = &self.shared {
            return d.delete(KIND, name).await.map_err(store_io);
        }
        let mut table = self.lock();
        if !table.contains_key(name) {
            return Ok(false);
        }
        let mut next = table.clone();
        next.remove(name);
        files::store(&self.path, &next)?;
        *table = next;
        Ok(true)
    }

    /// Sets the checkpoint to `position`, backwards included (the caller checks it against
    /// the log). `None` if the consumer does not exist. An ack still in flight from a
    /// subscriber may move it forward again afterwards, as any ack does.
    pub async fn reset(&self, name: &str, position: u64) -> std::io::Result<Option<Checkpoint>> {
        let now = Utc::now();
        if let Some(d) = &self.shared {
            // One statement: a consumer deleted meanwhile stays deleted.
            let fields = serde_json::json!({ "position": position, "updated_at": now });
            if !d.patch(KIND, name, &fields).await.map_err(store_io)? {
                return Ok(None);
            }
            return self.get(name).await;
        }
        let mut table = self.lock();
        if !table.contains_key(name) {
            return Ok(None);
        }
        let mut next = table.clone();
        let c = next.get_mut(name).expect("checked above");
        c.position = position;
        c.updated_at = now;
        let c = c.clone();
        files::store(&self.path, &next)?;
        *table = next;
        Ok(Some(c))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn acks_move_forward_and_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let c = Checkpoints::open(dir.path()).unwrap();
        assert!(c.create("billing").await.unwrap().1);
        assert!(!c.create("billing").await.unwrap().1);
        assert_eq!(c.ack("billing", 7).await.unwrap().unwrap().position, 7);
        assert_eq!(c.ack("billing", 3).await.unwrap().unwrap().position, 7);
        assert!(c.ack("nobody", 1).await.unwrap().is_none());
        let again = Checkpoints::open(dir.path()).unwrap();
        assert_eq!(again.get("billing").await.unwrap().unwrap().position, 7);
    }

    #[tokio::test]
    async fn a_reset_moves_back_and_a_delete_removes_durably() {
        let dir = tempfile::tempdir().unwrap();
        let c = Checkpoints::open(dir.path()).unwrap();
        c.create("billing").await.unwrap();
        c.create("audit").await.unwrap();
        c.ack("billing", 9).await.unwrap();
        assert_eq!(c.reset("billing", 2).await.unwrap().unwrap().position, 2);
        assert!(c.reset("nobody", 0).await.unwrap().is_none());
        assert!(c.delete("audit").await.unwrap());
        assert!(!c.delete("audit").await.unwrap());
        let again = Checkpoints::open(dir.path()).unwrap();
        let names: Vec<_> = again
            .list()
            .await
            .unwrap()
            .into_iter()
            .map(|c| (c.name, c.position))
            .collect();
        assert_eq!(names, vec![("billing".to_string(), 2)]);
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn the_checkpoint_file_is_private() {
        let dir = tempfile::tempdir().unwrap();
        Checkpoints::open(dir.path())
            .unwrap()
            .create("billing")
            .await
            .unwrap();
        assert_eq!(files::mode(&dir.path().join("http/consumers.json")), 0o600);
    }
}
