//! The PostgreSQL store's keys of persons: the `personal_keys` table of the store's schema
//! (never in the log), read through the pool and cached per node. Another node's erasure is
//! seen when its `PersonalDataErased` is read (`KeyStore::forget`) or, for a key never
//! cached here, at once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use super::{db_error, pool_error};
use crate::personal::{KeyState, KeyStore, PersonKey};
use crate::StoreError;

/// The `personal_keys` table (cheap to clone: it shares the store's pool).
#[derive(Clone)]
pub struct PgKeys {
    pool: deadpool_postgres::Pool,
    /// person → its key, `None` once erased.
    cache: Arc<Mutex<HashMap<String, Option<Arc<PersonKey>>>>>,
}

impl PgKeys {
    pub(crate) fn new(pool: deadpool_postgres::Pool) -> PgKeys {
        PgKeys {
            pool,
            cache: Arc::default(),
        }
    }

    fn cached(&self, persons: &[String]) -> (Vec<KeyState>, Vec<String>) {
        let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        let mut missing = Vec::new();
        let states = persons
            .iter()
            .map(|p| match cache.get(p) {
                Some(Some(k)) => KeyState::Live(k.clone()),
                Some(None) => KeyState::Erased,
                None => {
                    missing.push(p.clone());
                    KeyState::Absent
                }
            })
            .collect();
        (states, missing)
    }

    /// Loads the rows of `persons` into the cache.
    async fn load(&self, persons: &[String]) -> Result<(), StoreError> {
        let client = self.pool.get().await.map_err(pool_error)?;
        let rows = client
            .query(
                "SELECT person, key FROM personal_keys WHERE person = ANY($1)",
                &[&persons],
            )
            .await
            .map_err(db_error)?;
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        for row in rows {
            let person: String = row.get(0);
            let key: Option<Vec<u8>> = row.get(1);
            let key = match key {
                Some(bytes) => {
                    let bytes: [u8; 32] = bytes.try_into().map_err(|_| StoreError::Corrupt {
                        position: 0,
                        reason: format!("the key of {person} is not 32 bytes"),
                    })?;
                    Some(Arc::new(PersonKey::from_bytes(bytes)))
                }
                None => None,
            };
            cache.insert(person, key);
        }
        Ok(())
    }

    async fn states(&self, persons: &[String]) -> Result<Vec<KeyState>, StoreError> {
        let (states, missing) = self.cached(persons);
        if missing.is_empty() {
            return Ok(states);
        }
        self.load(&missing).await?;
        Ok(self.cached(persons).0)
    }
}

#[async_trait]
impl KeyStore for PgKeys {
    async fn for_writing(&self, persons: &[String]) -> Result<Vec<KeyState>, StoreError> {
        let states = self.states(persons).await?;
        let absent: Vec<String> = persons
            .iter()
            .zip(&states)
            .filter(|(_, s)| matches!(s, KeyState::Absent))
            .map(|(p, _)| p.clone())
            .collect();
        if absent.is_empty() {
            return Ok(states);
        }
        let mut keys = Vec::with_capacity(absent.len());
        for _ in &absent {
            let key = PersonKey::generate()
                .map_err(|e| StoreError::Backend(format!("no random key: {e}")))?;
            keys.push(key.bytes().to_vec());
        }
        let client = self.pool.get().await.map_err(pool_error)?;
        // Committed (durable) before any event sealed with them is appended; a key another
        // node created meanwhile wins (the conflict leaves its row), and is loaded below.
        client
            .execute(
                "INSERT INTO personal_keys (person, key) \
                 SELECT * FROM unnest($1::text[], $2::bytea[]) ON CONFLICT (person) DO NOTHING",
                &[&absent, &keys],
            )
            .await
            .map_err(db_error)?;
        drop(client);
        self.load(&absent).await?;
        Ok(self.cached(persons).0)
    }

    async fn for_reading(&self, persons: &[String]) -> Result<Vec<KeyState>, StoreError> {
        self.states(persons).await
    }

    async fn destroy(&self, person: &str) -> Result<(), StoreError> {
        let client = self.pool.get().await.map_err(pool_error)?;
        client
            .execute(
                "INSERT INTO personal_keys (person, key, erased_at) VALUES ($1, NULL, now()) \
                 ON CONFLICT (person) DO UPDATE SET key = NULL, erased_at = now()",
                &[&person],
            )
            .await
            .map_err(db_error)?;
        // The old row version (with the key) stays in the table's pages until rewritten.
        client
            .batch_execute("VACUUM FULL personal_keys")
            .await
            .map_err(db_error)?;
        self.cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(person.to_string(), None);
        Ok(())
    }

    async fn entries(&self) -> Result<Vec<(String, Option<PersonKey>)>, StoreError> {
        let client = self.pool.get().await.map_err(pool_error)?;
        let rows = client
            .query("SELECT person, key FROM personal_keys ORDER BY person", &[])
            .await
            .map_err(db_error)?;
        rows.into_iter()
            .map(|row| {
                let person: String = row.get(0);
                let key: Option<Vec<u8>> = row.get(1);
                let key = key
                    .map(|b| {
                        <[u8; 32]>::try_from(b)
                            .map(PersonKey::from_bytes)
                            .map_err(|_| StoreError::Corrupt {
                                position: 0,
                                reason: format!("the key of {person} is not 32 bytes"),
                            })
                    })
                    .transpose()?;
                Ok((person, key))
            })
            .collect()
    }

    async fn put(&self, entries: Vec<(String, Option<PersonKey>)>) -> Result<(), StoreError> {
        let persons: Vec<&str> = entries.iter().map(|(p, _)| p.as_str()).collect();
        let keys: Vec<Option<Vec<u8>>> = entries
            .iter()
            .map(|(_, k)| k.as_ref().map(|k| k.bytes().to_vec()))
            .collect();
        let client = self.pool.get().await.map_err(pool_error)?;
        client
            .execute(
                "INSERT INTO personal_keys (person, key, erased_at) \
                 SELECT p, k, CASE WHEN k IS NULL THEN now() END \
                 FROM unnest($1::text[], $2::bytea[]) AS t(p, k) ON CONFLICT (person) DO NOTHING",
                &[&persons, &keys],
            )
            .await
            .map_err(db_error)?;
        Ok(())
    }

    fn forget(&self, person: &str) {
        self.cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(person);
    }
}
