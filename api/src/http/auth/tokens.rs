//! Bearer tokens, stored as blake3 hashes (never the token itself) in
//! `<data dir>/http/tokens.json` (0600).
//!
//! The admin token the server starts with (from `DEALTRAIL_ADMIN_TOKEN`, or generated at the
//! first start) is one: a configured token replaces the previous configured or generated
//! one, so that changing the variable revokes the old secret. Tokens issued by
//! `POST /v1/tokens` stay. A configured token must be at least [`MIN_ADMIN_TOKEN_CHARS`]
//! visible ASCII characters: anything shorter is guessable, and a bearer token outside
//! visible ASCII could never be presented in a header.

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
    /// Absent in files written before it was recorded (see [`TokenRecord::is_start_admin`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    origin: Option<Origin>,
}

/// Where a token came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Origin {
    /// `DEALTRAIL_ADMIN_TOKEN`.
    Configured,
    /// Generated at the first start without one.
    Generated,
    /// `POST /v1/tokens`.
    Issued,
}

impl TokenRecord {
    /// Whether this is the admin token the server starts with (configured or generated).
    /// A record without an origin is one if it has the shape the start gave it (role admin,
    /// subject `admin`); an admin token issued without a subject had that shape too, and is
    /// revoked with it the first time a configured token replaces them.
    fn is_start_admin(&self) -> bool {
        match self.origin {
            Some(origin) => origin != Origin::Issued,
            None => self.role == Role::Admin && self.subject == "admin",
        }
    }
}

/// The shortest admin token accepted from `DEALTRAIL_ADMIN_TOKEN`.
pub const MIN_ADMIN_TOKEN_CHARS: usize = 32;

/// Checks a configured admin token; the error names the variable and the rule.
pub fn check_admin_token(token: &str) -> Result<(), String> {
    let chars = token.chars().count();
    if chars < MIN_ADMIN_TOKEN_CHARS {
        return Err(format!(
            "DEALTRAIL_ADMIN_TOKEN is {chars} characters long; it must have at least \
             {MIN_ADMIN_TOKEN_CHARS} (e.g. the output of `openssl rand -hex 32`)"
        ));
    }
    if !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(
            "DEALTRAIL_ADMIN_TOKEN may contain only visible ASCII characters \
                    (no spaces): it is sent in an HTTP header"
                .to_string(),
        );
    }
    Ok(())
}

/// Token hash (hex) → who it belongs to.
type TokenTable = BTreeMap<String, TokenRecord>;

/// The issued tokens.
pub struct TokenStore {
    path: PathBuf,
    table: Mutex<TokenTable>,
    /// With a store shared by several nodes (PostgreSQL): the tokens live there, one
    /// document per token hash, and are read from there on every request (a token issued
    /// on one node works on every node at once). `path` and `table` are then unused.
    shared: Option<eventlog::Documents>,
}

/// The documents' kind for tokens in a shared store.
const KIND: &str = "token";

fn store_io(e: eventlog::StoreError) -> std::io::Error {
    std::io::Error::other(e.to_string())
}

/// Makes sure an admin token exists in `table` (see [`TokenStore::bootstrap_admin`]):
/// whether it changed the table, and the generated token.
fn bootstrap(
    table: &mut TokenTable,
    configured: Option<&str>,
) -> std::io::Result<(bool, Option<String>)> {
    if let Some(token) = configured {
        check_admin_token(token)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
        let key = hash(token);
        let mut start_admins = table.iter().filter(|(_, r)| r.is_start_admin());
        let already = start_admins
            .next()
            .is_some_and(|(k, r)| *k == key && r.origin == Some(Origin::Configured))
            && start_admins.next().is_none();
        if already {
            return Ok((false, None));
        }
        table.retain(|_, r| !r.is_start_admin());
        table.insert(key, record(Role::Admin, "admin", Origin::Configured));
        return Ok((true, None));
    }
    if table.values().any(|r| r.role == Role::Admin) {
        return Ok((false, None));
    }
    let token = generate();
    table.insert(
        hash(&token),
        record(Role::Admin, "admin", Origin::Generated),
    );
    Ok((true, Some(token)))
}

fn hash(token: &str) -> String {
    blake3::hash(token.as_bytes()).to_hex().to_string()
}

fn record(role: Role, subject: &str, origin: Origin) -> TokenRecord {
    TokenRecord {
        role,
        subject: subject.to_string(),
        created_at: chrono::Utc::now(),
        origin: Some(origin),
    }
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
            shared: None,
        })
    }

    /// The tokens of a store shared by several nodes, with an admin token made sure of as
    /// [`TokenStore::bootstrap_admin`] does (returned when generated).
    pub async fn open_shared(
        documents: eventlog::Documents,
        configured: Option<&str>,
    ) -> std::io::Result<(TokenStore, Option<String>)> {
        let mut table = TokenTable::new();
        for (key, body) in documents.list(KIND).await.map_err(store_io)? {
            let r = serde_json::from_value(body).map_err(|e| {
                std::io::Error::new(std::io::ErrorKind::InvalidData, format!("token {key}: {e}"))
            })?;
            table.insert(key, r);
        }
        let before = table.clone();
        let (changed, generated) = bootstrap(&mut table, configured)?;
        if changed {
            for key in before.keys().filter(|k| !table.contains_key(*k)) {
                documents.delete(KIND, key).await.map_err(store_io)?;
            }
            for (key, r) in &table {
                let body = serde_json::to_value(r)?;
                if before.get(key).map(serde_json::to_value).transpose()? != Some(body.clone()) {
                    documents.put(KIND, key, &body).await.map_err(store_io)?;
                }
            }
        }
        let store = TokenStore {
            path: PathBuf::new(),
            table: Mutex::new(TokenTable::new()),
            shared: Some(documents),
        };
        Ok((store, generated))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, TokenTable> {
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Makes sure an admin token exists. With `configured` (from `DEALTRAIL_ADMIN_TOKEN`,
    /// refused unless [`check_admin_token`] passes) that token replaces the previous
    /// configured or generated one. Without it, a token is generated the first time only and
    /// returned so the caller can print it once; later starts return `None`.
    pub fn bootstrap_admin(&self, configured: Option<&str>) -> std::io::Result<Option<String>> {
        let mut table = self.lock();
        let mut next = table.clone();
        let (changed, generated) = bootstrap(&mut next, configured)?;
        if changed {
            files::store(&self.path, &next)?;
            *table = next;
        }
        Ok(generated)
    }

    /// Issues a new token for `role`/`subject`; the plain token is returned once.
    pub fn issue(&self, role: Role, subject: &str) -> std::io::Result<String> {
        let token = generate();
        self.update(|table| {
            table.insert(hash(&token), record(role, subject, Origin::Issued));
            true
        })?;
        Ok(token)
    }

    /// [`TokenStore::issue`], in the shared store when there is one.
    pub async fn issue_token(&self, role: Role, subject: &str) -> std::io::Result<String> {
        let Some(documents) = &self.shared else {
            return self.issue(role, subject);
        };
        let token = generate();
        let body = serde_json::to_value(record(role, subject, Origin::Issued))?;
        documents
            .put(KIND, &hash(&token), &body)
            .await
            .map_err(store_io)?;
        Ok(token)
    }

    /// [`TokenStore::authenticate`], reading the shared store when there is one (an error:
    /// it cannot be reached).
    pub async fn find(&self, token: &str) -> Result<Option<Principal>, eventlog::StoreError> {
        let Some(documents) = &self.shared else {
            return Ok(self.authenticate(token));
        };
        let Some(body) = documents.get(KIND, &hash(token)).await? else {
            return Ok(None);
        };
        let r: TokenRecord = serde_json::from_value(body)
            .map_err(|e| eventlog::StoreError::Backend(format!("a stored token: {e}")))?;
        Ok(Some(Principal {
            role: r.role,
            subject: r.subject,
        }))
    }

    /// Applies `change` to the table and saves it, if `change` says it changed anything.
    fn update(&self, change: impl FnOnce(&mut TokenTable) -> bool) -> std::io::Result<()> {
        let mut table = self.lock();
        let mut next = table.clone();
        if change(&mut next) {
            files::store(&self.path, &next)?;
            *table = next;
        }
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

    const A: &str = "configured-admin-token-A-0123456789";
    const B: &str = "configured-admin-token-B-0123456789";

    #[test]
    fn a_configured_admin_token_replaces_the_previous_one_and_issued_tokens_stay() {
        let dir = tempfile::tempdir().unwrap();
        let store = TokenStore::open(dir.path()).unwrap();
        let generated = store.bootstrap_admin(None).unwrap().unwrap();
        // An issued admin token looks like the start's (role admin, subject admin).
        let issued_admin = store.issue(Role::Admin, "admin").unwrap();
        let rep = store.issue(Role::Rep, "wukong").unwrap();
        drop(store);

        let store = TokenStore::open(dir.path()).unwrap();
        assert!(store.bootstrap_admin(Some(A)).unwrap().is_none());
        assert!(
            store.authenticate(&generated).is_none(),
            "generated one revoked"
        );
        assert_eq!(store.authenticate(A).unwrap().role, Role::Admin);
        drop(store);

        let store = TokenStore::open(dir.path()).unwrap();
        store.bootstrap_admin(Some(B)).unwrap();
        assert!(
            store.authenticate(A).is_none(),
            "previous configured one revoked"
        );
        assert_eq!(store.authenticate(B).unwrap().role, Role::Admin);
        assert_eq!(store.authenticate(&issued_admin).unwrap().role, Role::Admin);
        assert_eq!(store.authenticate(&rep).unwrap().subject, "wukong");
        drop(store);

        // Started without the variable: the last configured token stays, none is generated.
        let store = TokenStore::open(dir.path()).unwrap();
        assert!(store.bootstrap_admin(None).unwrap().is_none());
        assert!(store.authenticate(B).is_some());
    }

    #[test]
    fn a_start_admin_token_in_a_file_without_origins_is_replaced_too() {
        let dir = tempfile::tempdir().unwrap();
        let old = "dt_an_old_generated_admin_token";
        let at = "2026-01-01T00:00:00Z";
        let file = serde_json::json!({
            hash(old): {"role": "admin", "subject": "admin", "created_at": at},
            hash("dt_rep"): {"role": "rep", "subject": "wukong", "created_at": at},
        });
        std::fs::create_dir_all(dir.path().join("http")).unwrap();
        std::fs::write(dir.path().join("http/tokens.json"), file.to_string()).unwrap();
        let store = TokenStore::open(dir.path()).unwrap();
        assert!(store.authenticate(old).is_some());
        store.bootstrap_admin(Some(A)).unwrap();
        assert!(store.authenticate(old).is_none());
        assert!(store.authenticate("dt_rep").is_some());
    }

    #[test]
    fn a_configured_admin_token_shorter_than_32_or_not_visible_ascii_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = TokenStore::open(dir.path()).unwrap();
        for bad in [
            "test-admin-token",
            &"x".repeat(31),
            &format!("{} x", "y".repeat(32)),
        ] {
            let e = store.bootstrap_admin(Some(bad)).unwrap_err();
            assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput, "{bad}");
            assert!(e.to_string().contains("DEALTRAIL_ADMIN_TOKEN"), "{e}");
            assert!(store.authenticate(bad).is_none());
        }
        assert!(store.bootstrap_admin(Some(&"x".repeat(32))).is_ok());
    }

    #[cfg(unix)]
    #[test]
    fn the_token_file_is_private() {
        let dir = tempfile::tempdir().unwrap();
        TokenStore::open(dir.path())
            .unwrap()
            .bootstrap_admin(None)
            .unwrap();
        assert_eq!(files::mode(&dir.path().join("http/tokens.json")), 0o600);
        assert_eq!(files::mode(&dir.path().join("http")), 0o700);
    }
}
