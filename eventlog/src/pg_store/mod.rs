//! The PostgreSQL backend: any number of `dealtrail serve` processes (nodes) share one log.
//!
//! Why tokio-postgres with deadpool-postgres (and not sqlx): the store needs the driver's
//! pipelining (a group commit sends its insert, head update, notification and `COMMIT` in one
//! round trip), `LISTEN/NOTIFY` through the connection's message stream, and binary arrays
//! for the one-statement insert of a whole group; all three are first-class in
//! tokio-postgres. sqlx would bring its macros, its own runtime features and its migration
//! machinery, of which we need a page (see `migrate`). deadpool-postgres is the small pool
//! built for tokio-postgres (a `Manager` around the same `Config`).
//!
//! Layout:
//! - `config`: the store URL (`?schema=`, `?pool_size=`).
//! - `migrate`: the schema, as embedded versioned migrations run at start.
//! - `writer`: one writer thread per node: the group commit, run in one transaction that
//!   first locks the `head` row. Appends from every node are therefore serialised on that
//!   row: positions are taken from it in commit order (gap-free, and a reader never sees
//!   n+1 before n: the transaction that wrote n committed before the one writing n+1 could
//!   take the lock), and the domain's rules are checked inside that transaction against the
//!   log as it stands, so no race between nodes beats a rule.
//! - `view`: the [`LogView`](crate::LogView) the validator reads inside that transaction.
//! - `read`: reads through the pool (`page`: the catch-up pages, by binary COPY); `listen`: one `LISTEN` connection per node that
//!   carries every node's appends to this node's subscribers, reconnecting when it drops;
//!   `subscribe`: catch-up then live; `verify`: the integrity walk; `documents`: the API's
//!   shared state (tokens, consumer checkpoints).

mod config;
mod documents;
mod keys;
mod listen;
mod migrate;
mod page;
mod read;
mod subscribe;
mod verify;
mod view;
mod writer;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;

use async_trait::async_trait;
use futures::stream::BoxStream;
use tokio::sync::{oneshot, watch};

use crate::{
    AppendOutcome, AppendValidator, EventStore, ExpectedVersion, Filter, MultiAppendError,
    ProposedEvent, RecordedEvent, StoreError, StreamBatch, VerifyReport,
};

pub use config::{is_postgres_url, PgConfig, DEFAULT_POOL_SIZE, DEFAULT_SCHEMA};
pub use documents::Documents;
pub use keys::PgKeys;

/// A driver error as a [`StoreError`]: the server's own refusal is `Backend`, a connection
/// that cannot be made or was lost is `Unavailable` (retry later).
pub(crate) fn db_error(e: tokio_postgres::Error) -> StoreError {
    match e.as_db_error() {
        // The connection is going away (class 08), the server shutting down or starting
        // (57P01-57P03), or out of connections (53300): try again later.
        Some(db)
            if db.code().code().starts_with("08")
                || ["57P01", "57P02", "57P03", "53300"].contains(&db.code().code()) =>
        {
            StoreError::Unavailable(format!("PostgreSQL: {}", db.message()))
        }
        Some(db) => StoreError::Backend(format!(
            "PostgreSQL: {} ({})",
            db.message(),
            db.code().code()
        )),
        None => StoreError::Unavailable(format!("PostgreSQL: {e}")),
    }
}

fn pool_error(e: deadpool_postgres::PoolError) -> StoreError {
    match e {
        deadpool_postgres::PoolError::Backend(e) => db_error(e),
        other => StoreError::Unavailable(format!("PostgreSQL connection pool: {other}")),
    }
}

/// What the store handle, its writer, its listener and its subscribers share.
pub(crate) struct Shared {
    /// The newest position known to be committed (by any node).
    head_tx: watch::Sender<u64>,
    /// Set when the store handle is dropped: subscriptions end once caught up.
    closed: AtomicBool,
    /// The prefixes the validator has read (`LogView::streams_with_prefix`): when another
    /// node appended to a stream under one of them, the validator's caches are reset.
    prefixes: Mutex<HashSet<String>>,
    /// The NOTIFY channel of this schema.
    channel: String,
    /// Why the last group could not be written for want of the database (`None` once a
    /// group went through again): what `health` reports.
    unavailable: Mutex<Option<String>>,
}

impl Shared {
    pub(crate) fn set_unavailable(&self, why: Option<String>) {
        *self.unavailable.lock().unwrap_or_else(|p| p.into_inner()) = why;
    }

    pub(crate) fn publish_head(&self, position: u64) {
        self.head_tx.send_if_modified(|h| {
            let newer = position > *h;
            if newer {
                *h = position;
            }
            newer
        });
    }
}

/// The PostgreSQL-backed [`EventStore`]. Dropping it stops its writer (after the groups in
/// flight) and its listener, and ends its subscriptions once they are caught up.
pub struct PgStore {
    config: PgConfig,
    pool: deadpool_postgres::Pool,
    shared: Arc<Shared>,
    requests: Option<mpsc::Sender<writer::Request>>,
    writer: Option<JoinHandle<()>>,
    listener: tokio::task::JoinHandle<()>,
}

impl PgStore {
    /// Connects to the store at `url` (see `config`), creating its schema and applying the
    /// schema migrations if needed. Must be called inside a tokio runtime (the listener runs
    /// on it).
    pub async fn open(
        url: &str,
        validator: Arc<dyn AppendValidator>,
    ) -> Result<PgStore, StoreError> {
        PgStore::open_with(PgConfig::parse(url)?, validator).await
    }

    pub async fn open_with(
        config: PgConfig,
        validator: Arc<dyn AppendValidator>,
    ) -> Result<PgStore, StoreError> {
        let mut client = connect(&config.driver).await?;
        migrate::migrate(&mut client, &config.schema).await?;
        let head = read::head(&client).await?;
        drop(client);
        let manager = deadpool_postgres::Manager::from_config(
            config.driver.clone(),
            tokio_postgres::NoTls,
            deadpool_postgres::ManagerConfig {
                recycling_method: deadpool_postgres::RecyclingMethod::Fast,
            },
        );
        let pool = deadpool_postgres::Pool::builder(manager)
            .max_size(config.pool_size)
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .create_timeout(Some(std::time::Duration::from_secs(5)))
            .wait_timeout(Some(std::time::Duration::from_secs(30)))
            .build()
            .map_err(|e| StoreError::Backend(format!("cannot build the connection pool: {e}")))?;
        let (head_tx, _) = watch::channel(head.0);
        let shared = Arc::new(Shared {
            head_tx,
            closed: AtomicBool::new(false),
            prefixes: Mutex::new(HashSet::new()),
            channel: channel_name(&config.schema),
            unavailable: Mutex::new(None),
        });
        let listener = tokio::spawn(listen::run(config.driver.clone(), shared.clone()));
        let (tx, rx) = mpsc::channel();
        let w = writer::Writer::new(config.driver.clone(), shared.clone(), validator)?;
        let handle = std::thread::Builder::new()
            .name("eventlog-pg-writer".into())
            .spawn(move || w.run(rx))
            .map_err(|e| StoreError::Backend(format!("cannot start the writer thread: {e}")))?;
        Ok(PgStore {
            config,
            pool,
            shared,
            requests: Some(tx),
            writer: Some(handle),
            listener,
        })
    }

    /// Whether the store at `config` exists (its schema holds the log), without creating
    /// anything: for the commands that only read.
    pub async fn exists(config: &PgConfig) -> Result<bool, StoreError> {
        let client = connect(&config.driver).await?;
        let row = client
            .query_one(
                "SELECT to_regclass($1) IS NOT NULL",
                &[&format!("{}.head", config.schema)],
            )
            .await
            .map_err(db_error)?;
        Ok(row.get(0))
    }

    /// The schema this store lives in.
    pub fn schema(&self) -> &str {
        &self.config.schema
    }

    /// Walks the whole log checking every record (see `verify`).
    pub async fn verify(&self, progress: &mut dyn FnMut(u64)) -> Result<VerifyReport, StoreError> {
        let client = self.client().await?;
        verify::verify(&client, progress).await
    }

    /// The keys of persons (`personal_keys`): what [`crate::Sealed`] in front of this store
    /// uses. One per store handle (it caches).
    pub fn personal_keys(&self) -> PgKeys {
        PgKeys::new(self.pool.clone())
    }

    /// The API's state shared by every node (tokens, consumer checkpoints).
    pub fn documents(&self) -> Documents {
        Documents::new(self.pool.clone())
    }

    async fn client(&self) -> Result<deadpool_postgres::Object, StoreError> {
        self.pool.get().await.map_err(pool_error)
    }

    async fn submit(
        &self,
        batches: Vec<StreamBatch>,
    ) -> Result<Vec<AppendOutcome>, MultiAppendError> {
        let stopped = || {
            MultiAppendError::general(StoreError::Backend("the store's writer has stopped".into()))
        };
        let (reply, answer) = oneshot::channel();
        self.requests
            .as_ref()
            .ok_or_else(stopped)?
            .send(writer::Request::new(batches, reply))
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

/// The NOTIFY channel of a schema (an identifier: at most 63 bytes, whatever the schema).
fn channel_name(schema: &str) -> String {
    let h = blake3::hash(schema.as_bytes()).to_hex();
    format!("dealtrail_{}", &h[..24])
}

/// One connection outside the pool, driven on the current runtime.
pub(crate) async fn connect(
    config: &tokio_postgres::Config,
) -> Result<tokio_postgres::Client, StoreError> {
    let (client, connection) = config
        .connect(tokio_postgres::NoTls)
        .await
        .map_err(db_error)?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %e, "a PostgreSQL connection ended");
        }
    });
    Ok(client)
}

impl Drop for PgStore {
    fn drop(&mut self) {
        self.requests.take();
        if let Some(h) = self.writer.take() {
            let _ = h.join();
        }
        self.listener.abort();
        self.shared.closed.store(true, Ordering::Release);
        self.shared.head_tx.send_modify(|_| {});
    }
}

#[async_trait]
impl EventStore for PgStore {
    async fn append(
        &self,
        stream: &str,
        expected: ExpectedVersion,
        events: Vec<ProposedEvent>,
    ) -> Result<AppendOutcome, StoreError> {
        let batch = StreamBatch {
            stream: stream.to_string(),
            expected,
            events,
        };
        let mut outcomes = self.submit(vec![batch]).await.map_err(|e| e.error)?;
        outcomes
            .pop()
            .ok_or_else(|| StoreError::Backend("the writer returned no outcome".into()))
    }

    async fn append_multi(
        &self,
        batches: Vec<StreamBatch>,
    ) -> Result<Vec<AppendOutcome>, MultiAppendError> {
        if batches.is_empty() {
            return Ok(Vec::new());
        }
        self.submit(batches).await
    }

    async fn read_stream(
        &self,
        stream: &str,
        from_version: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        read::read_stream(&**self.client().await?, stream, from_version, limit).await
    }

    async fn read_all(
        &self,
        from_position: u64,
        limit: usize,
        filter: &Filter,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        read::read_all(&**self.client().await?, from_position, limit, filter).await
    }

    async fn last_position(&self) -> Result<u64, StoreError> {
        let head = read::head(&**self.client().await?).await?.0;
        self.shared.publish_head(head);
        Ok(head)
    }

    async fn chain_hash_at(&self, position: u64) -> Result<Option<[u8; 32]>, StoreError> {
        if position == 0 {
            return Ok(None);
        }
        read::chain_hash_at(&**self.client().await?, position).await
    }

    async fn stream_version(&self, stream: &str) -> Result<Option<u64>, StoreError> {
        read::stream_version(&**self.client().await?, stream).await
    }

    async fn event_by_id(&self, id: uuid::Uuid) -> Result<Option<RecordedEvent>, StoreError> {
        read::event_by_id(&**self.client().await?, id).await
    }

    fn health(&self) -> crate::StoreHealth {
        match &*self
            .shared
            .unavailable
            .lock()
            .unwrap_or_else(|p| p.into_inner())
        {
            Some(why) => crate::StoreHealth::WriteFailed(why.clone()),
            None => crate::StoreHealth::Ok,
        }
    }

    fn subscribe(
        &self,
        from_position: u64,
        filter: Filter,
    ) -> BoxStream<'static, Result<RecordedEvent, StoreError>> {
        subscribe::subscribe(
            self.pool.clone(),
            self.shared.clone(),
            from_position,
            filter,
        )
    }
}
