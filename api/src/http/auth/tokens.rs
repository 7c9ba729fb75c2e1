//! Bearer tokens, stored as blake3 hashes (never the token itself) in
//! `<data dir>/http/tokens.json` (0600).
//!
//! The admin token the server starts with (from `DEALTRAIL_ADMIN_TOKEN`, or generated at the
//! first start) is one: a configured token replaces the previous configured or generated
//! one, so that changing the variable revokes the old secret. Tokens issued by
//! `POST /v1/tokens` stay. A configured token must be at least [`MIN_ADMIN_TOKEN_CHARS`]
//! visible ASCII characters: anything shorter is guessable, and a bearer token outside
//! visible ASCII could never be presented in a header.
//!
//! Each token has an id (the first 16 hex digits of its hash: it names the token in
//! `GET /v1/tokens` and `DELETE /v1/tokens/{id}` and says nothing of the secret), may expire
//! (`expires_at`), and is revoked by marking it (`revoked_at`), never by forgetting it, so
//! that a revoked token is told apart from an unknown one. `last_used_at` is written lazily:
//! at most once a [`TOUCH_EVERY`] per token and node, not on every request.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

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
    /// After this instant the token is refused (401, expired).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    expires_at: Option<DateTime<Utc>>,
    /// When it was last presented, to within [`TOUCH_EVERY`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last_used_at: Option<DateTime<Utc>>,
    /// When `DELETE /v1/tokens/{id}` revoked it (401, revoked, from then on).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    revoked_at: Option<DateTime<Utc>>,
}

/// How often at most `last_used_at` is written for one token (per node).
pub const TOUCH_EVERY: Duration = Duration::from_secs(60);

/// A token as `GET /v1/tokens` shows it: never the secret, nor its hash.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct TokenInfo {
    /// Names the token in `DELETE /v1/tokens/{id}`.
    pub id: String,
    pub role: Role,
    pub subject: String,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: DateTime<Utc>,
    /// Lazily recorded: exact to within a minute.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_used_at: Option<DateTime<Utc>>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub expires_at: Option<DateTime<Utc>>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub revoked_at: Option<DateTime<Utc>>,
    /// `active`, `expired` or `revoked`.
    pub status: &'static str,
    /// The admin token the server starts with (`DEALTRAIL_ADMIN_TOKEN` or generated): it
    /// is replaced by restarting with another `DEALTRAIL_ADMIN_TOKEN`, not revoked.
    pub start_admin: bool,
}

/// What a presented token turns out to be.
#[derive(Debug, Clone, PartialEq)]
pub enum Presented {
    Valid(Principal),
    /// No token has this hash.
    Unknown,
    Revoked(DateTime<Utc>),
    Expired(DateTime<Utc>),
}

/// The outcome of `DELETE /v1/tokens/{id}`.
#[derive(Debug, Clone, PartialEq)]
pub enum Revocation {
    /// Revoked now.
    Revoked(TokenInfo),
    /// It already was: nothing changed.
    AlreadyRevoked(TokenInfo),
    /// The start admin token (see [`TokenInfo::start_admin`]).
    StartAdmin,
    NotFound,
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

    fn presented(&self, now: DateTime<Utc>) -> Presented {
        if let Some(at) = self.revoked_at {
            return Presented::Revoked(at);
        }
        match self.expires_at {
            Some(at) if at <= now => Presented::Expired(at),
            _ => Presented::Valid(Principal {
                role: self.role,
                subject: self.subject.clone(),
            }),
        }
    }

    fn info(&self, key: &str, now: DateTime<Utc>) -> TokenInfo {
        TokenInfo {
            id: id_of(key),
            role: self.role,
            subject: self.subject.clone(),
            created_at: self.created_at,
            last_used_at: self.last_used_at,
            expires_at: self.expires_at,
            revoked_at: self.revoked_at,
            status: match self.presented(now) {
                Presented::Revoked(_) => "revoked",
                Presented::Expired(_) => "expired",
                _ => "active",
            },
            start_admin: self.is_start_admin(),
        }
    }
}

/// A token's id: the first 16 hex digits of its hash (64 bits of a hash of a 244-bit secret).
fn id_of(key: &str) -> String {
    key[..16.min(key.len())].to_string()
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
    /// When this node last wrote `last_used_at`, by token hash.
    touched: Mutex<HashMap<String, Instant>>,
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
        expires_at: None,
        last_used_at: None,
        revoked_at: None,
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
            touched: Mutex::default(),
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
            touched: Mutex::default(),
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

    /// Issues a new token for `role`/`subject` (in the token file); the plain token is
    /// returned once.
    pub fn issue(&self, role: Role, subject: &str) -> std::io::Result<String> {
        self.issue_file(role, subject, None).map(|(token, _)| token)
    }

    fn issue_file(
        &self,
        role: Role,
        subject: &str,
        expires_at: Option<DateTime<Utc>>,
    ) -> std::io::Result<(String, TokenInfo)> {
        let token = generate();
        let key = hash(&token);
        let r = TokenRecord {
            expires_at,
            ..record(role, subject, Origin::Issued)
        };
        let info = r.info(&key, Utc::now());
        self.update(|table| {
            table.insert(key.clone(), r);
            true
        })?;
        Ok((token, info))
    }

    /// Issues a new token, in the shared store when there is one: the plain token (shown
    /// once) and what `GET /v1/tokens` will show of it.
    pub async fn issue_token(
        &self,
        role: Role,
        subject: &str,
        expires_at: Option<DateTime<Utc>>,
    ) -> std::io::Result<(String, TokenInfo)> {
        let Some(documents) = &self.shared else {
            return self.issue_file(role, subject, expires_at);
        };
        let token = generate();
        let key = hash(&token);
        let r = TokenRecord {
            expires_at,
            ..record(role, subject, Origin::Issued)
        };
        let body = serde_json::to_value(&r)?;
        documents.put(KIND, &key, &body).await.map_err(store_io)?;
        Ok((token, r.info(&key, Utc::now())))
    }

    /// What `token` is, reading the shared store when there is one (an error: it cannot be
    /// reached). A valid token's `last_used_at` is written if this node has not written it
    /// for [`TOUCH_EVERY`]; a failure to write it is logged, not answered.
    pub async fn find(&self, token: &str) -> Result<Presented, eventlog::StoreError> {
        let key = hash(token);
        let now = Utc::now();
        let Some(documents) = &self.shared else {
            let presented = match self.lock().get(&key) {
                Some(r) => r.presented(now),
                None => Presented::Unknown,
            };
            if matches!(presented, Presented::Valid(_)) && self.touch_due(&key) {
                let touched = self.update(|table| match table.get_mut(&key) {
                    Some(r) => {
                        r.last_used_at = Some(now);
                        true
                    }
                    None => false,
                });
                if let Err(e) = touched {
                    tracing::warn!(error = %e, "recording a token's last use");
                }
            }
            return Ok(presented);
        };
        let Some(body) = documents.get(KIND, &key).await? else {
            return Ok(Presented::Unknown);
        };
        let r: TokenRecord = serde_json::from_value(body)
            .map_err(|e| eventlog::StoreError::Backend(format!("a stored token: {e}")))?;
        let presented = r.presented(now);
        if matches!(presented, Presented::Valid(_)) && self.touch_due(&key) {
            // A merge of one field: a revocation written meanwhile by another node stays.
            let fields = serde_json::json!({ "last_used_at": now });
            if let Err(e) = documents.patch(KIND, &key, &fields).await {
                tracing::warn!(error = %e, "recording a token's last use");
            }
        }
        Ok(presented)
    }

    /// Whether this node should write `last_used_at` for `key` now (and notes that it does).
    fn touch_due(&self, key: &str) -> bool {
        let mut touched = self.touched.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        match touched.get(key) {
            Some(at) if now.duration_since(*at) < TOUCH_EVERY => false,
            _ => {
                touched.insert(key.to_string(), now);
                true
            }
        }
    }

    /// Every token (revoked and expired ones too), oldest first.
    pub async fn list(&self) -> std::io::Result<Vec<TokenInfo>> {
        let now = Utc::now();
        let mut all: Vec<TokenInfo> = match &self.shared {
            None => self.lock().iter().map(|(k, r)| r.info(k, now)).collect(),
            Some(documents) => {
                let mut all = Vec::new();
                for (key, body) in documents.list(KIND).await.map_err(store_io)? {
                    let r: TokenRecord = serde_json::from_value(body).map_err(|e| {
                        std::io::Error::new(
                            std::io::ErrorKind::InvalidData,
                            format!("token {key}: {e}"),
                        )
                    })?;
                    all.push(r.info(&key, now));
                }
                all
            }
        };
        all.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        Ok(all)
    }

    /// Revokes the token `id`: refused from then on, on every node (they read the shared
    /// store on every request).
    pub async fn revoke(&self, id: &str) -> std::io::Result<Revocation> {
        let now = Utc::now();
        let decide = |key: &str, r: &TokenRecord| {
            if r.is_start_admin() {
                Revocation::StartAdmin
            } else if r.revoked_at.is_some() {
                Revocation::AlreadyRevoked(r.info(key, now))
            } else {
                let revoked = TokenRecord {
                    revoked_at: Some(now),
                    ..r.clone()
                };
                Revocation::Revoked(revoked.info(key, now))
            }
        };
        let Some(documents) = &self.shared else {
            let mut outcome = Revocation::NotFound;
            self.update(|table| {
                let Some((key, r)) = table.iter_mut().find(|(k, _)| id_of(k) == id) else {
                    return false;
                };
                outcome = decide(key, r);
                if let Revocation::Revoked(_) = outcome {
                    r.revoked_at = Some(now);
                    return true;
                }
                false
            })?;
            return Ok(outcome);
        };
        let listed = documents.list(KIND).await.map_err(store_io)?;
        let Some((key, body)) = listed.into_iter().find(|(k, _)| id_of(k) == id) else {
            return Ok(Revocation::NotFound);
        };
        let r: TokenRecord = serde_json::from_value(body)?;
        let outcome = decide(&key, &r);
        if let Revocation::Revoked(_) = outcome {
            let fields = serde_json::json!({ "revoked_at": now });
            documents
                .patch(KIND, &key, &fields)
                .await
                .map_err(store_io)?;
        }
        Ok(outcome)
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

    /// Who presents `token`, if anyone (in the token file; a revoked or expired token is
    /// no one).
    pub fn authenticate(&self, token: &str) -> Option<Principal> {
        match self.lock().get(&hash(token))?.presented(Utc::now()) {
            Presented::Valid(p) => Some(p),
            _ => None,
        }
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

    #[tokio::test]
    async fn last_use_is_written_lazily_and_revocation_and_expiry_are_kept_apart() {
        let dir = tempfile::tempdir().unwrap();
        let store = TokenStore::open(dir.path()).unwrap();
        let in_an_hour = Utc::now() + chrono::Duration::hours(1);
        let (token, info) = store
            .issue_token(Role::Analyst, "bi", Some(in_an_hour))
            .await
            .unwrap();
        assert_eq!(info.last_used_at, None);
        let file = dir.path().join("http/tokens.json");
        assert!(matches!(
            store.find(&token).await.unwrap(),
            Presented::Valid(_)
        ));
        let first = store.list().await.unwrap()[0]
            .last_used_at
            .expect("written");
        let written = std::fs::read(&file).unwrap();
        // Within TOUCH_EVERY: no write at all.
        for _ in 0..5 {
            assert!(matches!(
                store.find(&token).await.unwrap(),
                Presented::Valid(_)
            ));
        }
        assert_eq!(store.list().await.unwrap()[0].last_used_at, Some(first));
        assert_eq!(
            std::fs::read(&file).unwrap(),
            written,
            "the file was not rewritten"
        );

        assert_eq!(store.find("dt_other").await.unwrap(), Presented::Unknown);
        let Revocation::Revoked(revoked) = store.revoke(&info.id).await.unwrap() else {
            panic!("revoked");
        };
        assert_eq!(revoked.status, "revoked");
        assert!(matches!(
            store.find(&token).await.unwrap(),
            Presented::Revoked(_)
        ));
        assert!(store.authenticate(&token).is_none());
        let reopened = TokenStore::open(dir.path()).unwrap();
        assert!(matches!(
            reopened.find(&token).await.unwrap(),
            Presented::Revoked(_)
        ));
        assert_eq!(reopened.revoke("nope").await.unwrap(), Revocation::NotFound);

        // An expiry in the past (written by hand: the API refuses one).
        let (token2, info2) = reopened
            .issue_token(Role::Service, "s", None)
            .await
            .unwrap();
        let mut table: TokenTable = files::load(&file).unwrap();
        let key = table.keys().find(|k| id_of(k) == info2.id).unwrap().clone();
        table.get_mut(&key).unwrap().expires_at = Some(Utc::now() - chrono::Duration::seconds(1));
        files::store(&file, &table).unwrap();
        let reopened = TokenStore::open(dir.path()).unwrap();
        assert!(matches!(
            reopened.find(&token2).await.unwrap(),
            Presented::Expired(_)
        ));
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
