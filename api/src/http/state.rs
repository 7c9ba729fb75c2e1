//! What every handler shares: the store, limits, tokens, consumer checkpoints, metrics,
//! the SSE fan-out.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use eventlog::EventStore;
use tokio::sync::watch;

use super::auth::tokens::TokenStore;
use super::connections::ConnectionLimits;
use super::consumers::checkpoints::Checkpoints;
use super::fanout::FeedSlot;
use super::metrics::Metrics;
use super::ownership::{LogOwnership, OwnershipResolver};

/// Limits and timings of the HTTP API.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// Largest accepted request body (413 beyond).
    pub max_body_bytes: usize,
    /// Most events in one append (413 beyond).
    pub max_events_per_append: usize,
    /// Largest `limit` of a read (400 beyond).
    pub max_page_size: usize,
    /// `limit` when a read gives none.
    pub default_page_size: usize,
    /// Time allowed for a request (not applied to subscriptions).
    pub request_timeout: Duration,
    /// Interval of SSE heartbeat comments.
    pub heartbeat: Duration,
    /// How many of the latest events the SSE fan-out keeps, serialised, for subscribers to
    /// share; a subscriber further behind reads from the store until it is back within it.
    pub sse_window: usize,
    /// How many nice steps (Linux, 0–19) below the rest of the server the thread that
    /// serves subscriptions runs, so that when the machine is saturated the live stream
    /// yields to appends; 0 = the same priority as everything else.
    pub subscriber_nice: i32,
    /// How many connections may be open, and how long they may wait for a request.
    pub connections: ConnectionLimits,
    /// The pool policy's `release_after_days` when it is on: the follow-up list warns of
    /// customers about to go back to the pool.
    pub pool_release_after_days: Option<u32>,
    /// Timings of webhook deliveries.
    pub webhooks: crate::webhooks::DeliveryConfig,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            max_body_bytes: 1024 * 1024,
            max_events_per_append: 1000,
            max_page_size: 1000,
            default_page_size: 100,
            request_timeout: Duration::from_secs(30),
            heartbeat: Duration::from_secs(15),
            // About half a second of the load test's fastest flow: subscribers keep up to
            // a turn (50 ms) behind the head, and one starved of CPU for a moment should
            // not drop to reading the store, which costs it far more per event.
            sse_window: 16384,
            subscriber_nice: 10,
            connections: ConnectionLimits::default(),
            pool_release_after_days: None,
            webhooks: crate::webhooks::DeliveryConfig::default(),
        }
    }
}

/// The handlers' shared state: one `Arc`, so the clone axum makes for every request is one
/// reference count, not one per field (the fields are reached through `Deref`; changing one
/// through `DerefMut` copies the handles first if the state is shared).
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

/// What [`AppState`] holds.
#[derive(Clone)]
pub struct Shared {
    pub store: Arc<dyn EventStore>,
    pub config: Arc<ApiConfig>,
    pub tokens: Arc<TokenStore>,
    pub consumers: Arc<Checkpoints>,
    /// Outbound webhooks and their delivery tasks.
    pub webhooks: Arc<crate::webhooks::Webhooks>,
    pub metrics: Arc<Metrics>,
    pub ownership: Arc<dyn OwnershipResolver>,
    /// The projections' read model (reports, deals, customers, pool).
    pub projector: Arc<crate::projector::Projector>,
    /// The SSE fan-out, while subscribers follow the log.
    pub(crate) feed: Arc<FeedSlot>,
    /// Flips to `true` when the server starts shutting down; open subscriptions end then.
    pub(crate) shutdown: Arc<watch::Sender<bool>>,
}

impl std::ops::Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

impl std::ops::DerefMut for AppState {
    fn deref_mut(&mut self) -> &mut Shared {
        Arc::make_mut(&mut self.0)
    }
}

/// The webhooks kept in `data_dir`, delivered from `store`.
fn webhooks_in(
    data_dir: &Path,
    store: &Arc<dyn EventStore>,
    config: &ApiConfig,
) -> std::io::Result<crate::webhooks::Webhooks> {
    crate::webhooks::Webhooks::new(
        Arc::new(crate::webhooks::FileStorage::open(data_dir)?),
        store.clone(),
        config.webhooks.clone(),
        config.subscriber_nice,
    )
}

/// What starting the API produced that the binary must tell the operator.
#[derive(Debug)]
pub struct Bootstrap {
    /// A freshly generated admin token: print it once, it is never shown again.
    /// `None` when `DEALTRAIL_ADMIN_TOKEN` was given or an admin token already existed.
    pub generated_admin_token: Option<String>,
}

impl AppState {
    /// Opens the API's own state (tokens, consumer checkpoints, webhooks) in `data_dir` and
    /// makes sure an admin token exists: `admin_token` (`serve --admin-token` or
    /// `DEALTRAIL_ADMIN_TOKEN`, see [`admin_token`]) or a generated one returned in
    /// [`Bootstrap`].
    pub fn open(
        store: Arc<dyn EventStore>,
        data_dir: &Path,
        config: ApiConfig,
        admin_token: Option<&str>,
    ) -> std::io::Result<(AppState, Bootstrap)> {
        let tokens = TokenStore::open(data_dir)?;
        let generated_admin_token = tokens.bootstrap_admin(admin_token)?;
        let consumers = Checkpoints::open(data_dir)?;
        let webhooks = webhooks_in(data_dir, &store, &config)?;
        Ok(AppState::assemble(
            store,
            config,
            tokens,
            consumers,
            webhooks,
            generated_admin_token,
        ))
    }

    fn assemble(
        store: Arc<dyn EventStore>,
        config: ApiConfig,
        tokens: TokenStore,
        consumers: Checkpoints,
        webhooks: crate::webhooks::Webhooks,
        generated_admin_token: Option<String>,
    ) -> (AppState, Bootstrap) {
        let ownership = Arc::new(LogOwnership::new(store.clone()));
        let (shutdown, _) = watch::channel(false);
        (
            AppState(Arc::new(Shared {
                store,
                config: Arc::new(config),
                tokens: Arc::new(tokens),
                consumers: Arc::new(consumers),
                webhooks: Arc::new(webhooks),
                metrics: Arc::new(Metrics::default()),
                ownership,
                projector: Arc::new(crate::projector::Projector::in_memory()),
                feed: Arc::default(),
                shutdown: Arc::new(shutdown),
            })),
            Bootstrap {
                generated_admin_token,
            },
        )
    }

    /// [`AppState::open`] for a store shared by several nodes (PostgreSQL): tokens and
    /// consumer checkpoints live in the store's `documents`, so every node sees the same.
    /// Webhooks are still the node's own, in `data_dir` (not yet in the store): register them
    /// on one node only, or each node delivers them.
    pub async fn open_shared(
        store: Arc<dyn EventStore>,
        documents: eventlog::Documents,
        data_dir: &Path,
        config: ApiConfig,
        admin_token: Option<&str>,
    ) -> std::io::Result<(AppState, Bootstrap)> {
        let (tokens, generated_admin_token) =
            TokenStore::open_shared(documents.clone(), admin_token).await?;
        let consumers = Checkpoints::shared(documents);
        let webhooks = webhooks_in(data_dir, &store, &config)?;
        Ok(AppState::assemble(
            store,
            config,
            tokens,
            consumers,
            webhooks,
            generated_admin_token,
        ))
    }

    /// Serves reports from `projector` (which the caller keeps following the log).
    pub fn with_projector(mut self, projector: Arc<crate::projector::Projector>) -> AppState {
        self.projector = projector;
        self
    }

    /// Replaces the ownership resolver (e.g. with one over the projections read model).
    pub fn with_ownership(mut self, ownership: Arc<dyn OwnershipResolver>) -> AppState {
        self.ownership = ownership;
        self
    }

    /// Resolves once the server has started shutting down.
    pub(crate) fn shutting_down(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut rx = self.shutdown.subscribe();
        async move {
            let _ = rx.wait_for(|down| *down).await;
        }
    }
}

/// The admin token given to `serve` (`--admin-token` or `DEALTRAIL_ADMIN_TOKEN`), if given and
/// not blank; an error saying why if it is not a usable admin token (see
/// [`check_admin_token`](super::auth::tokens::check_admin_token)).
pub fn admin_token(given: Option<&str>) -> Result<Option<String>, String> {
    match given {
        Some(token) if !token.trim().is_empty() => {
            super::auth::tokens::check_admin_token(token)?;
            Ok(Some(token.to_string()))
        }
        _ => Ok(None),
    }
}
