//! The API's own state that every node must see alike (tokens, consumer checkpoints): JSON
//! documents by kind and key, in the store's `documents` table. Each change is one statement
//! (atomic, durable at commit); readers always read the table, never a node's copy.

use serde_json::Value;

use super::{db_error, pool_error};
use crate::StoreError;

/// A handle on the store's documents (cheap to clone: it shares the store's pool).
#[derive(Clone)]
pub struct Documents {
    pool: deadpool_postgres::Pool,
}

impl Documents {
    pub(crate) fn new(pool: deadpool_postgres::Pool) -> Documents {
        Documents { pool }
    }

    async fn client(&self) -> Result<deadpool_postgres::Object, StoreError> {
        self.pool.get().await.map_err(pool_error)
    }

    pub async fn get(&self, kind: &str, key: &str) -> Result<Option<Value>, StoreError> {
        let row = self
            .client()
            .await?
            .query_opt(
                "SELECT body::text FROM documents WHERE kind = $1 AND key = $2",
                &[&kind, &key],
            )
            .await
            .map_err(db_error)?;
        row.map(|r| parse(r.get(0))).transpose()
    }

    /// Every document of `kind`, by key.
    pub async fn list(&self, kind: &str) -> Result<Vec<(String, Value)>, StoreError> {
        let rows = self
            .client()
            .await?
            .query(
                "SELECT key, body::text FROM documents WHERE kind = $1 ORDER BY key",
                &[&kind],
            )
            .await
            .map_err(db_error)?;
        rows.iter()
            .map(|r| Ok((r.get::<_, String>(0), parse(r.get(1))?)))
            .collect()
    }

    /// Writes (inserts or replaces) one document.
    pub async fn put(&self, kind: &str, key: &str, body: &Value) -> Result<(), StoreError> {
        self.client()
            .await?
            .execute(
                "INSERT INTO documents (kind, key, body) VALUES ($1, $2, $3::text::jsonb) \
                 ON CONFLICT (kind, key) DO UPDATE SET body = EXCLUDED.body, updated_at = now()",
                &[&kind, &key, &body.to_string()],
            )
            .await
            .map_err(db_error)?;
        Ok(())
    }

    /// Merges the top-level fields of `fields` (an object) into the stored document, in one
    /// statement (a concurrent change to other fields is kept); `true` if it existed.
    pub async fn patch(&self, kind: &str, key: &str, fields: &Value) -> Result<bool, StoreError> {
        let n = self
            .client()
            .await?
            .execute(
                "UPDATE documents SET body = body || $3::text::jsonb, updated_at = now() \
                 WHERE kind = $1 AND key = $2",
                &[&kind, &key, &fields.to_string()],
            )
            .await
            .map_err(db_error)?;
        Ok(n == 1)
    }

    /// Inserts the document unless one exists; `true` if it was inserted.
    pub async fn insert_new(
        &self,
        kind: &str,
        key: &str,
        body: &Value,
    ) -> Result<bool, StoreError> {
        let n = self
            .client()
            .await?
            .execute(
                "INSERT INTO documents (kind, key, body) VALUES ($1, $2, $3::text::jsonb) \
                 ON CONFLICT (kind, key) DO NOTHING",
                &[&kind, &key, &body.to_string()],
            )
            .await
            .map_err(db_error)?;
        Ok(n == 1)
    }

    /// Replaces the document only if its number field `field` is below `value` in the
    /// stored one (a checkpoint that only moves forward); `true` if it was replaced.
    pub async fn put_if_greater(
        &self,
        kind: &str,
        key: &str,
        field: &str,
        value: u64,
        body: &Value,
    ) -> Result<bool, StoreError> {
        let n = self
            .client()
            .await?
            .execute(
                "UPDATE documents SET body = $5::text::jsonb, updated_at = now() \
                 WHERE kind = $1 AND key = $2 AND (body->>$3)::bigint < $4",
                &[&kind, &key, &field, &(value as i64), &body.to_string()],
            )
            .await
            .map_err(db_error)?;
        Ok(n == 1)
    }

    /// Removes one document; `true` if it existed.
    pub async fn delete(&self, kind: &str, key: &str) -> Result<bool, StoreError> {
        let n = self
            .client()
            .await?
            .execute(
                "DELETE FROM documents WHERE kind = $1 AND key = $2",
                &[&kind, &key],
            )
            .await
            .map_err(db_error)?;
        Ok(n == 1)
    }
}

fn parse(text: &str) -> Result<Value, StoreError> {
    serde_json::from_str(text)
        .map_err(|e| StoreError::Backend(format!("a stored document is not JSON: {e}")))
}
