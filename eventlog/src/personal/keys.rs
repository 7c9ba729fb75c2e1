//! Where the keys of persons live: beside the log, never in it ([`KeyStore`]). The sled
//! store's is a file of its own in the data directory ([`super::KeyFile`]), the PostgreSQL
//! store's a table of its own (`PgKeys`), tests may use [`MemoryKeys`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use super::cipher::PersonKey;
use crate::StoreError;

/// The key of one person as the key store has it.
#[derive(Debug, Clone)]
pub enum KeyState {
    Live(Arc<PersonKey>),
    /// Destroyed by an erasure.
    Erased,
    /// Never created (nothing of this person was sealed by this store).
    Absent,
}

/// The keys of persons (`customer-…`, `lead-…` stream names).
#[async_trait]
pub trait KeyStore: Send + Sync + 'static {
    /// The keys of `persons` (one answer each, in order); an absent key is created first,
    /// durably: it is on disk before this returns, as an event sealed with it will be.
    async fn for_writing(&self, persons: &[String]) -> Result<Vec<KeyState>, StoreError>;

    /// The keys of `persons` as they are; none is created.
    async fn for_reading(&self, persons: &[String]) -> Result<Vec<KeyState>, StoreError>;

    /// Destroys the key of `person`, durably, so that no byte of the store holds it any
    /// more; `person` is then [`KeyState::Erased`] (also if it had no key).
    async fn destroy(&self, person: &str) -> Result<(), StoreError>;

    /// Every person the store has a key or a tombstone for, with its key (`None`: erased):
    /// for `dealtrail copy`, which copies the log as stored and the keys with it.
    async fn entries(&self) -> Result<Vec<(String, Option<PersonKey>)>, StoreError>;

    /// Writes `entries` (from another store's [`KeyStore::entries`]) durably; a person
    /// already present keeps what it has.
    async fn put(&self, entries: Vec<(String, Option<PersonKey>)>) -> Result<(), StoreError>;

    /// An erasure of `person` was read from the log: a store that caches keys of a shared
    /// table (another node may have destroyed it) forgets it.
    fn forget(&self, _person: &str) {}
}

/// Keys in memory only (tests, the in-memory store).
#[derive(Default)]
pub struct MemoryKeys {
    keys: Mutex<HashMap<String, Option<Arc<PersonKey>>>>,
}

impl MemoryKeys {
    pub fn new() -> MemoryKeys {
        MemoryKeys::default()
    }
}

fn state(k: Option<&Option<Arc<PersonKey>>>) -> KeyState {
    match k {
        Some(Some(k)) => KeyState::Live(k.clone()),
        Some(None) => KeyState::Erased,
        None => KeyState::Absent,
    }
}

#[async_trait]
impl KeyStore for MemoryKeys {
    async fn for_writing(&self, persons: &[String]) -> Result<Vec<KeyState>, StoreError> {
        let mut keys = self.keys.lock().unwrap_or_else(|p| p.into_inner());
        persons
            .iter()
            .map(|p| {
                if !keys.contains_key(p) {
                    let key = PersonKey::generate()
                        .map_err(|e| StoreError::Backend(format!("no random key: {e}")))?;
                    keys.insert(p.clone(), Some(Arc::new(key)));
                }
                Ok(state(keys.get(p)))
            })
            .collect()
    }

    async fn for_reading(&self, persons: &[String]) -> Result<Vec<KeyState>, StoreError> {
        let keys = self.keys.lock().unwrap_or_else(|p| p.into_inner());
        Ok(persons.iter().map(|p| state(keys.get(p))).collect())
    }

    async fn destroy(&self, person: &str) -> Result<(), StoreError> {
        let mut keys = self.keys.lock().unwrap_or_else(|p| p.into_inner());
        keys.insert(person.to_string(), None);
        Ok(())
    }

    async fn entries(&self) -> Result<Vec<(String, Option<PersonKey>)>, StoreError> {
        let keys = self.keys.lock().unwrap_or_else(|p| p.into_inner());
        Ok(keys
            .iter()
            .map(|(p, k)| (p.clone(), k.as_deref().cloned()))
            .collect())
    }

    async fn put(&self, entries: Vec<(String, Option<PersonKey>)>) -> Result<(), StoreError> {
        let mut keys = self.keys.lock().unwrap_or_else(|p| p.into_inner());
        for (p, k) in entries {
            keys.entry(p).or_insert(k.map(Arc::new));
        }
        Ok(())
    }
}
