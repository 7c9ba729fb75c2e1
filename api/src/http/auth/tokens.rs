//! Bearer tokens, stored as blake3 hashes (never the token itself) in
//! `<data dir>/http/tokens.json`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use super::{Principal, Role};
use crate::http::files;

#[derive(Debug, Clone, Serialize, Deserialize)]
struct TokenRecord {
    role: Role,
    subject: String,
    created_at: chrono::DateTime<chrono::Utc>,
}

/// Token hash (hex) → who it belongs to.
type TokenTable = BTreeMap<String, TokenRecord>;

/// The issued tokens.
pub struct TokenStore {
    path: PathBuf,
    table: Mutex<TokenTable>,
}

fn hash(token: &str) -> String {
    blake3::hash(token.as_bytes()).to_hex().to_string()
}

/// A fresh random token: 244 bits from two v4 UUIDs.
fn generate() -> String {
    format!(
        "dt_{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

impl TokenStore {
    /// Opens (or starts) the token file in `data_dir`.
    pub fn open(data_dir: &Path) -> std::io::Result<TokenStore> {
        let path = data_dir.join("http").join("tokens.json");
        let table = files::load(&path)?;
        Ok(TokenStore {
            path,
            table: Mutex::new(table),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, TokenTable> {
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Makes sure an admin token exists. With `configured` (from `DEALTRAIL_ADMIN_TOKEN`)
    /// that token becomes valid for admin. Without it, a token is generated the first time
    /// only and returned so the caller can print it once; later starts return `None`.
    pub fn bootstrap_admin(&self, configured: Option<&str>) -> std::io::Result<Option<String>> {
        if let Some(token) = configured {
            self.insert(token, Role::Admin, "admin")?;
            return Ok(None);
        }
        if self.lock().values().any(|r| r.role == Role::Admin) {
            return Ok(None);
        }
        let token = generate();
        self.insert(&token, Role::Admin, "admin")?;
        Ok(Some(token))
    }

    /// Issues a new token for `role`/`subject`; the plain token is returned once.
    pub fn issue(&self, role: Role, subject: &str) -> std::io::Result<String> {
        let token = generate();
        self.insert(&token, role, subject)?;
        Ok(token)
    }

    fn insert(&self, token: &str, role: Role, subject: &str) -> std::io::Result<()> {
        let mut table = self.lock();
        let record = TokenRecord {
            role,
            subject: subject.to_string(),
            created_at: chrono::Utc::now(),
        };
        let mut next = table.clone();
        next.insert(hash(token), record);
        files::store(&self.path, &next)?;
        *table = next;
        Ok(())
    }

    /// Who presents `token`, if anyone.
    pub fn authenticate(&self, token: &str) -> Option<Principal> {
        self.lock().get(&hash(token)).map(|r| Principal {
            role: r.role,
            subject: r.subject.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_survive_reopen_and_are_stored_hashed() {
        let dir = tempfile::tempdir().unwrap();
        let store = TokenStore::open(dir.path()).unwrap();
        let admin = store
            .bootstrap_admin(None)
            .unwrap()
            .expect("generated once");
        assert!(store.bootstrap_admin(None).unwrap().is_none());
        let rep = store.issue(Role::Rep, "wukong").unwrap();
        let raw = std::fs::read_to_string(dir.path().join("http/tokens.json")).unwrap();
        assert!(!raw.contains(&admin) && !raw.contains(&rep));

        let reopened = TokenStore::open(dir.path()).unwrap();
        assert_eq!(reopened.authenticate(&admin).unwrap().role, Role::Admin);
        assert_eq!(reopened.authenticate(&rep).unwrap().subject, "wukong");
        assert!(reopened.authenticate("dt_nope").is_none());
    }
}
