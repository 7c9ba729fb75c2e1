//! Which event store a command works on (SPEC §6): `--store URL` (or `DEALTRAIL_STORE`),
//! `postgres://user@host:port/db[?schema=NAME]` or `sled:DIR`; without it, `--data DIR` (the
//! embedded store in DIR, the default). With PostgreSQL, `--data` is still the node's own
//! directory for what stays per node: the read model's snapshot.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use eventlog::{AppendValidator, EventStore, PgStore, SledStore, StoreError, VerifyReport};

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

/// An open event store of either kind.
pub enum Store {
    Sled(Arc<SledStore>),
    Postgres(Arc<PgStore>),
}

impl std::ops::Deref for Store {
    type Target = dyn EventStore;
    fn deref(&self) -> &(dyn EventStore + 'static) {
        match self {
            Store::Sled(s) => s.as_ref(),
            Store::Postgres(s) => s.as_ref(),
        }
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
        match self {
            Store::Sled(s) => s.clone(),
            Store::Postgres(s) => s.clone(),
        }
    }

    /// The integrity walk (see `dealtrail verify`).
    pub async fn verify(&self, progress: &mut dyn FnMut(u64)) -> Result<VerifyReport, StoreError> {
        match self {
            Store::Sled(s) => s.verify(progress),
            Store::Postgres(s) => s.verify(progress).await,
        }
    }

    /// The shared documents (tokens, consumer checkpoints) of a PostgreSQL store; `None` for
    /// the embedded store, whose API state lives in the data directory.
    pub fn documents(&self) -> Option<eventlog::Documents> {
        match self {
            Store::Sled(_) => None,
            Store::Postgres(s) => Some(s.documents()),
        }
    }
}

/// Opens the store at `location` with `validator` in front of every append.
pub async fn open_at(
    location: &Location,
    validator: Arc<dyn AppendValidator>,
) -> Result<Store, CliError> {
    Ok(match location {
        Location::Sled(dir) => Store::Sled(Arc::new(SledStore::open(dir, validator)?)),
        Location::Postgres(url) => Store::Postgres(Arc::new(
            PgStore::open(url, validator)
                .await
                .map_err(|e| CliError::from(e).prefixed(&location.display()))?,
        )),
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
