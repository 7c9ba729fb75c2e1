//! The contract suite's harness: every store promise is one test body run against each
//! store (memory, sled, PostgreSQL) by [`contract!`], so a store cannot skip a promise.
//!
//! PostgreSQL is reached through `DEALTRAIL_TEST_PG` (default
//! `postgres://postgres@127.0.0.1:5432/test`), each test in its own schema, dropped
//! afterwards. Where no server answers, the PostgreSQL variants print that they were skipped
//! and pass, unless `DEALTRAIL_REQUIRE_PG=1` (CI), where that is a failure.

use std::sync::Arc;

use eventlog::{AppendValidator, EventStore, VerifyReport};

/// The PostgreSQL server the tests use.
pub fn pg_url() -> String {
    std::env::var("DEALTRAIL_TEST_PG")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_string())
}

fn pg_required() -> bool {
    std::env::var("DEALTRAIL_REQUIRE_PG").is_ok_and(|v| v == "1")
}

/// A schema of its own for one test; dropped (with everything in it) when this is dropped.
pub struct PgSchema {
    pub name: String,
    base: String,
}

impl PgSchema {
    /// `None` (after saying so) when no server answers and none is required.
    pub async fn new() -> Option<PgSchema> {
        let base = pg_url();
        let probe = async {
            let (client, conn) = tokio_postgres::connect(&base, tokio_postgres::NoTls).await?;
            tokio::spawn(conn);
            client.simple_query("SELECT 1").await.map(|_| ())
        };
        match tokio::time::timeout(std::time::Duration::from_secs(5), probe).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return skipped(&base, &e.to_string()),
            Err(_) => return skipped(&base, "no answer within 5 s"),
        }
        let name = format!("t_{}", uuid::Uuid::new_v4().simple());
        Some(PgSchema { name, base })
    }

    /// The store URL for this schema.
    pub fn url(&self) -> String {
        let sep = if self.base.contains('?') { '&' } else { '?' };
        format!("{}{sep}schema={}", self.base, self.name)
    }
}

fn skipped<T>(url: &str, why: &str) -> Option<T> {
    if pg_required() {
        panic!("DEALTRAIL_REQUIRE_PG=1 but no PostgreSQL server answers at {url}: {why}");
    }
    eprintln!("PostgreSQL tests skipped: no server at {url} ({why}); set DEALTRAIL_TEST_PG");
    None
}

impl Drop for PgSchema {
    fn drop(&mut self) {
        let (base, name) = (self.base.clone(), self.name.clone());
        // Dropped inside a runtime: do it on a thread of its own, with its own runtime.
        let done = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                if let Ok((client, conn)) =
                    tokio_postgres::connect(&base, tokio_postgres::NoTls).await
                {
                    tokio::spawn(conn);
                    let _ = client
                        .batch_execute(&format!("DROP SCHEMA IF EXISTS {name} CASCADE"))
                        .await;
                }
            })
        });
        let _ = done.join();
    }
}

/// Where a test's store lives; opening it again gives the same log (but memory: the same
/// store).
pub enum Backend {
    Memory(std::sync::Mutex<Option<eventlog::memory::MemoryStore>>),
    Sled(tempfile::TempDir),
    Postgres(PgSchema),
}

/// An open store of some backend.
#[allow(clippy::large_enum_variant)] // a test's handful of stores
pub enum Subject {
    Memory(eventlog::memory::MemoryStore),
    Sled(eventlog::SledStore),
    Postgres(eventlog::PgStore),
}

impl std::ops::Deref for Subject {
    type Target = dyn EventStore;
    fn deref(&self) -> &(dyn EventStore + 'static) {
        match self {
            Subject::Memory(s) => s,
            Subject::Sled(s) => s,
            Subject::Postgres(s) => s,
        }
    }
}

impl Subject {
    /// The integrity walk of a durable store (`None` for memory, which keeps no chain).
    pub async fn verify(&self) -> Option<VerifyReport> {
        match self {
            Subject::Memory(_) => None,
            Subject::Sled(s) => Some(s.verify(&mut |_| {}).expect("verify")),
            Subject::Postgres(s) => Some(s.verify(&mut |_| {}).await.expect("verify")),
        }
    }

    /// As a shared trait object (clones share the log).
    pub fn into_arc(self) -> Arc<dyn EventStore> {
        match self {
            Subject::Memory(s) => Arc::new(s),
            Subject::Sled(s) => Arc::new(s),
            Subject::Postgres(s) => Arc::new(s),
        }
    }
}

impl Backend {
    pub fn memory() -> Backend {
        Backend::Memory(std::sync::Mutex::new(None))
    }

    pub fn sled() -> Backend {
        Backend::Sled(tempfile::tempdir().unwrap())
    }

    pub async fn postgres() -> Option<Backend> {
        PgSchema::new().await.map(Backend::Postgres)
    }

    pub fn is_durable(&self) -> bool {
        !matches!(self, Backend::Memory(_))
    }

    /// Opens the store with `validator`.
    pub async fn open_with(&self, validator: Arc<dyn AppendValidator>) -> Subject {
        match self {
            Backend::Memory(m) => {
                let mut m = m.lock().unwrap();
                Subject::Memory(
                    m.get_or_insert_with(|| {
                        eventlog::memory::MemoryStore::with_validator(validator)
                    })
                    .clone(),
                )
            }
            Backend::Sled(dir) => {
                Subject::Sled(eventlog::SledStore::open(dir.path(), validator).expect("open sled"))
            }
            Backend::Postgres(s) => Subject::Postgres(
                eventlog::PgStore::open(&s.url(), validator)
                    .await
                    .expect("open PostgreSQL"),
            ),
        }
    }

    /// `n` nodes on one log, each with its own validator from `validator` (as separate
    /// processes would have): `n` stores on PostgreSQL; one store shared `n` times on the
    /// embedded ones, which a single process holds.
    pub async fn open_nodes(
        &self,
        n: usize,
        validator: impl Fn() -> Arc<dyn AppendValidator>,
    ) -> Vec<Arc<Subject>> {
        match self {
            Backend::Postgres(_) => {
                let mut nodes = Vec::new();
                for _ in 0..n {
                    nodes.push(Arc::new(self.open_with(validator()).await));
                }
                nodes
            }
            _ => {
                let one = Arc::new(self.open_with(validator()).await);
                (0..n).map(|_| one.clone()).collect()
            }
        }
    }

    pub async fn open(&self) -> Subject {
        self.open_with(Arc::new(eventlog::EnvelopeOnly)).await
    }
}

/// One test body (`async fn name(backend: Backend)`) run against every store: generates
/// `name::memory`, `name::sled` and `name::postgres`.
#[macro_export]
macro_rules! contract {
    ($(#[$meta:meta])* async fn $name:ident($b:ident: Backend) $body:block) => {
        $(#[$meta])*
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            async fn body($b: $crate::common::stores::Backend) $body

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn memory() {
                body($crate::common::stores::Backend::memory()).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn sled() {
                body($crate::common::stores::Backend::sled()).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn postgres() {
                if let Some(b) = $crate::common::stores::Backend::postgres().await {
                    body(b).await
                }
            }
        }
    };
}
