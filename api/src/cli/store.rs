//! Which event store a command works on (SPEC §6): `--store URL` (or `DEALTRAIL_STORE`),
//! `postgres://user@host:port/db[?schema=NAME]` or `sled:DIR`; without it, `--data DIR` (the
//! embedded store in DIR, the default). With PostgreSQL, `--data` is still the node's own
//! directory for what stays per node: the read model's snapshot.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use eventlog::personal::KeyFile;
use eventlog::{AppendValidator, EventStore, PgStore, Sealed, SledStore, StoreError, VerifyReport};

use super::{CliError, ExitCode};

/// Where the log lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    Sled(PathBuf),
    Postgres(String),
}

impl Location {
    /// Parses a `--store` value.
    pub fn parse(url: &str) -> Result<Location, CliError> {
        if let Some(dir) = url.strip_prefix("sled:") {
            if dir.is_empty() {
                return Err(usage(
                    "--store sled:DIR needs a directory, e.g. sled:./dealtrail-data",
                ));
            }
            return Ok(Location::Sled(PathBuf::from(dir)));
        }
        if eventlog::is_postgres_url(url) {
            eventlog::PgConfig::parse(url).map_err(|e| usage(&format!("--store: {e}")))?;
            return Ok(Location::Postgres(url.to_string()));
        }
        Err(usage(
            "--store takes postgres://user@host:port/db[?schema=NAME] or sled:DIR",
        ))
    }

    /// For messages: the URL without a password.
    pub fn display(&self) -> String {
        match self {
            Location::Sled(dir) => format!("sled:{}", dir.display()),
            Location::Postgres(url) => redact(url),
        }
    }
}

fn usage(m: &str) -> CliError {
    CliError::new(ExitCode::Usage, m)
}

/// `postgres://user:secret@host/db` → `postgres://user:***@host/db`.
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    match rest.split_once('@') {
        Some((auth, host)) => match auth.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
            None => url.to_string(),
        },
        None => url.to_string(),
    }
}

/// The PostgreSQL store chosen by `--store` for this process (set once by `cli::run`);
/// `None`: the embedded store in the data directory.
static POSTGRES: RwLock<Option<String>> = RwLock::new(None);

pub(super) fn select_postgres(url: Option<String>) {
    *POSTGRES.write().unwrap_or_else(|p| p.into_inner()) = url;
}

fn selected_postgres() -> Option<String> {
    POSTGRES.read().unwrap_or_else(|p| p.into_inner()).clone()
}

/// The backend of an open store.
enum Backend {
    Sled(Arc<SledStore>),
    Postgres(Arc<PgStore>),
}

/// An open event store of either kind, behind [`Sealed`]: personal data is sealed with a key
/// per person on its way in and opened on its way out (SPEC §7), for every command alike.
pub struct Store {
    backend: Backend,
    sealed: Arc<Sealed>,
}

impl std::ops::Deref for Store {
    type Target = dyn EventStore;
    fn deref(&self) -> &(dyn EventStore + 'static) {
        self.sealed.as_ref()
    }
}

impl AsRef<dyn EventStore> for Store {
    fn as_ref(&self) -> &(dyn EventStore + 'static) {
        &**self
    }
}

impl Store {
    /// The store as the API and the projector share it.
    pub fn shared(&self) -> Arc<dyn EventStore> {
        self.sealed.clone()
    }

    /// The log as stored (personal data sealed), for `dealtrail copy`.
    pub fn raw(&self) -> Arc<dyn EventStore> {
        self.sealed.inner().clone()
    }

    /// The keys of persons, beside the log.
    pub fn keys(&self) -> Arc<dyn eventlog::personal::KeyStore> {
        self.sealed.keys().clone()
    }

    /// The integrity walk (see `dealtrail verify`): over the log as stored (sealed).
    pub async fn verify(&self, progress: &mut dyn FnMut(u64)) -> Result<VerifyReport, StoreError> {
        match &self.backend {
            Backend::Sled(s) => s.verify(progress),
            Backend::Postgres(s) => s.verify(progress).await,
        }
    }

    /// The shared documents (tokens, consumer checkpoints) of a PostgreSQL store; `None` for
    /// the embedded store, whose API state lives in the data directory.
    pub fn documents(&self) -> Option<eventlog::Documents> {
        match &self.backend {
            Backend::Sled(_) => None,
            Backend::Postgres(s) => Some(s.documents()),
        }
    }
}

/// Opens the store at `location` with `validator` in front of every append.
pub async fn open_at(
    location: &Location,
    validator: Arc<dyn AppendValidator>,
) -> Result<Store, CliError> {
    open_with(location, validator, None).await
}

/// [`open_at`]; `sled_cache`: the embedded store's page cache in bytes (`None`: sled's
/// default, 1 GiB), see [`SledStore::open_with_cache`].
pub async fn open_with(
    location: &Location,
    validator: Arc<dyn AppendValidator>,
    sled_cache: Option<u64>,
) -> Result<Store, CliError> {
    Ok(match location {
        Location::Sled(dir) => {
            let store = Arc::new(match sled_cache {
                Some(bytes) => SledStore::open_with_cache(dir, validator, bytes)?,
                None => SledStore::open(dir, validator)?,
            });
            // Opened after the store: its lock keeps a second process out of the directory.
            let keys = Arc::new(KeyFile::open(dir)?);
            Store {
                sealed: Arc::new(Sealed::new(store.clone(), keys)),
                backend: Backend::Sled(store),
            }
        }
        Location::Postgres(url) => {
            let store = Arc::new(
                PgStore::open(url, validator)
                    .await
                    .map_err(|e| CliError::from(e).prefixed(&location.display()))?,
            );
            let keys = Arc::new(store.personal_keys());
            Store {
                sealed: Arc::new(Sealed::new(store.clone(), keys)),
                backend: Backend::Postgres(store),
            }
        }
    })
}

/// The selected store: PostgreSQL if `--store` named it, else the embedded one in `data`.
pub(super) fn selected(data: &Path) -> Location {
    match selected_postgres() {
        Some(url) => Location::Postgres(url),
        None => Location::Sled(data.to_path_buf()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_urls_are_parsed_and_passwords_never_shown() {
        assert_eq!(
            Location::parse("sled:/srv/crm").unwrap(),
            Location::Sled("/srv/crm".into())
        );
        let pg = Location::parse("postgres://crm:hunter2@db:5432/crm?schema=eu").unwrap();
        assert_eq!(pg.display(), "postgres://crm:***@db:5432/crm?schema=eu");
        for bad in ["sled:", "mysql://x/y", "postgres://x@y/z?schema=Bad"] {
            assert_eq!(
                Location::parse(bad).unwrap_err().code,
                ExitCode::Usage,
                "{bad}"
            );
        }
    }
}
