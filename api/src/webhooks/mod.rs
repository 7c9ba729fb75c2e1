//! Outbound webhooks (SPEC §6): each matching event POSTed as its canonical JSON, one per
//! request, in log order per webhook, signed as Standard Webhooks does.
//!
//! Layout:
//! - [`signature`]: `whsec_` secrets and `v1,` signatures (the specification's test vectors).
//! - [`storage`]: the webhooks and their checkpoints ([`WebhookStorage`]; in the data
//!   directory: [`FileStorage`]).
//! - [`delivery`]: one task per webhook following the log; retries, backoff, disabling.
//! - [`routes`]: `POST/GET /v1/webhooks`, `GET/DELETE /v1/webhooks/{id}`,
//!   `GET /v1/webhooks/{id}/deliveries` (admin).
//!
//! [`Webhooks`] ties them together: it starts a task per enabled webhook when the server
//! starts, one for each webhook created, stops one that is deleted, and all at shutdown (each
//! saves its checkpoint). The tasks run on a thread of their own at a lower CPU priority and
//! read the log through the store's subscriptions: an append never waits for a delivery.

pub mod delivery;
pub mod routes;
pub mod signature;
pub mod storage;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use eventlog::EventStore;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use uuid::Uuid;

pub use delivery::{Attempt, DeliveryConfig, Status};
pub use signature::Secret;
pub use storage::{Disabled, FileStorage, Progress, Webhook, WebhookStorage};

struct Running {
    status: Arc<Mutex<Status>>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

/// A webhook's delivery state as the API shows it.
#[derive(Debug, Clone)]
pub struct DeliveryState {
    pub position: u64,
    pub failing_since: Option<DateTime<Utc>>,
    pub next_retry_at: Option<DateTime<Utc>>,
    /// Oldest first.
    pub attempts: Vec<Attempt>,
}

/// The webhooks of this server and their delivery tasks.
pub struct Webhooks {
    storage: Arc<dyn WebhookStorage>,
    store: Arc<dyn EventStore>,
    client: reqwest::Client,
    config: DeliveryConfig,
    running: Mutex<HashMap<Uuid, Running>>,
    /// Where the delivery tasks run (see [`Webhooks::new`]).
    deliveries: tokio::runtime::Handle,
    _runtime: DeliveryRuntime,
}

/// The deliveries' own runtime, stopped without waiting when the webhooks are dropped
/// ([`Webhooks::shutdown`] has let each task save its checkpoint before).
struct DeliveryRuntime(Option<tokio::runtime::Runtime>);

impl Drop for DeliveryRuntime {
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

impl Webhooks {
    /// The delivery tasks run on a thread of their own, `nice` steps below the request
    /// handlers (as SSE subscriptions do, `serve --subscriber-nice`): when the cores are busy,
    /// appends go first and deliveries catch up after (measured: README, "Measured figures").
    pub fn new(
        storage: Arc<dyn WebhookStorage>,
        store: Arc<dyn EventStore>,
        config: DeliveryConfig,
        nice: i32,
    ) -> std::io::Result<Webhooks> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("dealtrail-webhooks")
            .on_thread_start(move || crate::http::accept::lower_priority(nice))
            .enable_all()
            .build()?;
        // One client for every webhook: it keeps connections to each receiver open and
        // reuses them. Redirects are not followed: a 3xx is a failed delivery.
        let client = reqwest::Client::builder()
            .user_agent(concat!("dealtrail-webhooks/", env!("CARGO_PKG_VERSION")))
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(config.request_timeout)
            .pool_idle_timeout(std::time::Duration::from_secs(60))
            .build()
            .map_err(std::io::Error::other)?;
        Ok(Webhooks {
            storage,
            store,
            client,
            config,
            running: Mutex::new(HashMap::new()),
            deliveries: runtime.handle().clone(),
            _runtime: DeliveryRuntime(Some(runtime)),
        })
    }

    fn running(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, Running>> {
        self.running.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts delivering for every enabled webhook not delivering yet (at server start).
    pub async fn start(&self) -> std::io::Result<()> {
        for hook in self.storage.list().await? {
            if hook.disabled.is_none() && !self.running().contains_key(&hook.id) {
                self.spawn(hook);
            }
        }
        Ok(())
    }

    fn spawn(&self, hook: Webhook) {
        let (stop, stop_rx) = watch::channel(false);
        let status = Arc::new(Mutex::new(Status::default()));
        let id = hook.id;
        let worker = delivery::Worker {
            hook,
            storage: self.storage.clone(),
            store: self.store.clone(),
            client: self.client.clone(),
            config: self.config.clone(),
            status: status.clone(),
            stop: stop_rx,
        };
        let task = self.deliveries.spawn(worker.run());
        self.running().insert(id, Running { status, stop, task });
    }

    /// Saves a new webhook that delivers the events after `head` (the log's last position
    /// now), and starts delivering.
    pub async fn create(
        &self,
        url: String,
        types: Vec<String>,
        stream_prefix: Option<String>,
        head: u64,
    ) -> std::io::Result<Webhook> {
        let hook = Webhook {
            id: Uuid::now_v7(),
            url,
            types,
            stream_prefix,
            secret: Secret::generate(),
            created_at: Utc::now(),
            disabled: None,
        };
        let start = Progress {
            position: head,
            failing_since: None,
        };
        self.storage.create(&hook, &start).await?;
        self.spawn(hook.clone());
        Ok(hook)
    }

    /// Stops a webhook's deliveries and removes it; `false` if there was none.
    pub async fn delete(&self, id: Uuid) -> std::io::Result<bool> {
        let running = self.running().remove(&id);
        if let Some(r) = running {
            let _ = r.stop.send(true);
            let _ = r.task.await;
        }
        self.storage.delete(id).await
    }

    pub async fn list(&self) -> std::io::Result<Vec<Webhook>> {
        self.storage.list().await
    }

    /// The webhook as configured, with a disabling that happened since it was read.
    pub async fn get(&self, id: Uuid) -> std::io::Result<Option<Webhook>> {
        Ok(self.list().await?.into_iter().find(|h| h.id == id))
    }

    /// Where a webhook's deliveries stand: its task's state, or its saved checkpoint when no
    /// task runs (disabled).
    pub async fn state(&self, id: Uuid) -> std::io::Result<DeliveryState> {
        let status = self.running().get(&id).map(|r| r.status.clone());
        if let Some(status) = status {
            let s = status.lock().unwrap_or_else(|p| p.into_inner());
            return Ok(DeliveryState {
                position: s.position,
                failing_since: s.failing_since,
                next_retry_at: s.next_retry_at,
                attempts: s.attempts.iter().cloned().collect(),
            });
        }
        let p = self.storage.progress(id).await?;
        Ok(DeliveryState {
            position: p.position,
            failing_since: p.failing_since,
            next_retry_at: None,
            attempts: Vec::new(),
        })
    }

    /// Stops every delivery task; each saves its checkpoint before this returns.
    pub async fn shutdown(&self) {
        let running: Vec<Running> = self.running().drain().map(|(_, r)| r).collect();
        for r in &running {
            let _ = r.stop.send(true);
        }
        for r in running {
            let _ = r.task.await;
        }
    }
}
