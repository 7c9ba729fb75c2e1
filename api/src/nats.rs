//! `serve --nats URL`: every event of the log published to NATS JetStream (SPEC §6), on
//! subject `<prefix>.<category>.<type>` (`dealtrail.deal.DealWon`), as its canonical JSON,
//! with the header `Nats-Msg-Id` = the event id (JetStream drops a message whose id it has
//! seen within its duplicate window) and `Dealtrail-Position` = its position. The stream
//! (`DEALTRAIL`, subjects `<prefix>.>`) is created if absent.
//!
//! Order and resumption: one task follows the log (the store's subscription) and publishes
//! in log order on one connection, up to [`IN_FLIGHT`] messages ahead of their acks; after
//! any error it drops what is in flight and starts again after the last acknowledged
//! position, so nothing is skipped, and what is sent again is dropped by JetStream as a
//! duplicate. The position acknowledged last is saved in `http/nats-<stream>.json` (at
//! most every second while busy, when idle, and at shutdown); at start the task resumes
//! after the later of that checkpoint and the `Dealtrail-Position` of the stream's last
//! message, so a crash between a publish and the next save sends nothing twice, even after
//! the duplicate window.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use eventlog::{EventStore, Filter, RecordedEvent};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::http::files;

/// Messages published ahead of their acknowledgements.
pub const IN_FLIGHT: usize = 256;

/// The header that carries an event's position.
pub const POSITION_HEADER: &str = "Dealtrail-Position";

/// How often, at most, the checkpoint is saved while busy.
const SAVE_EVERY: Duration = Duration::from_secs(1);

/// Where and how to publish.
#[derive(Debug, Clone)]
pub struct NatsConfig {
    pub url: String,
    /// The JetStream stream's name.
    pub stream: String,
    /// The first token(s) of every subject.
    pub subject_prefix: String,
}

/// Checks a stream name: 1-64 characters of `[A-Za-z0-9_-]`.
pub fn check_stream_name(name: &str) -> Result<String, String> {
    if !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        Ok(name.to_string())
    } else {
        Err(format!(
            "{name:?}: a stream name is 1-64 characters of [A-Za-z0-9_-]"
        ))
    }
}

/// Checks a subject prefix: tokens of `[A-Za-z0-9_-]` separated by dots.
pub fn check_subject_prefix(prefix: &str) -> Result<String, String> {
    let ok = prefix.len() <= 128
        && prefix.split('.').all(|t| {
            !t.is_empty()
                && t.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        });
    if ok {
        Ok(prefix.to_string())
    } else {
        Err(format!(
            "{prefix:?}: a subject prefix is tokens of [A-Za-z0-9_-] separated by dots"
        ))
    }
}

/// The subject of an event: `<prefix>.<category>.<type>`.
pub fn subject(prefix: &str, event: &RecordedEvent) -> String {
    let category = event.stream.split('-').next().unwrap_or("");
    format!("{prefix}.{category}.{}", event.event_type)
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Serialize, Deserialize)]
struct Checkpoint {
    /// The last position JetStream acknowledged.
    position: u64,
}

/// Publishes the log to JetStream until `stop` flips to `true`.
pub async fn run(
    store: Arc<dyn EventStore>,
    data_dir: &Path,
    config: NatsConfig,
    mut stop: watch::Receiver<bool>,
) {
    let path = data_dir
        .join("http")
        .join(format!("nats-{}.json", config.stream));
    let mut publisher = Publisher {
        store,
        path,
        config,
        acked: 0,
        saved: None,
    };
    let mut failures = 0u32;
    loop {
        let before = publisher.acked;
        let outcome = tokio::select! {
            _ = stop.wait_for(|s| *s) => break,
            r = publisher.session() => r,
        };
        if let Err(e) = outcome {
            if publisher.acked > before {
                failures = 0;
            }
            failures += 1;
            let wait = Duration::from_millis(200 * (1u64 << failures.min(7)));
            tracing::warn!(error = %e, retry_in_ms = wait.as_millis() as u64, "publishing to NATS failed");
            tokio::select! {
                _ = stop.wait_for(|s| *s) => break,
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }
    publisher.save().await;
}

struct Publisher {
    store: Arc<dyn EventStore>,
    path: PathBuf,
    config: NatsConfig,
    /// The last position acknowledged by JetStream.
    acked: u64,
    /// What the checkpoint file holds, once read.
    saved: Option<Checkpoint>,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl Publisher {
    async fn save(&mut self) {
        let Some(saved) = self.saved else { return };
        if saved.position == self.acked {
            return;
        }
        let c = Checkpoint {
            position: self.acked,
        };
        let path = self.path.clone();
        match tokio::task::spawn_blocking(move || files::store(&path, &c)).await {
            Ok(Ok(())) => self.saved = Some(c),
            Ok(Err(e)) => tracing::error!(error = %e, "cannot save the NATS checkpoint"),
            Err(e) => tracing::error!(error = %e, "cannot save the NATS checkpoint"),
        }
    }

    /// Connects, makes sure the stream exists, and publishes until an error.
    async fn session(&mut self) -> Result<(), BoxError> {
        if self.saved.is_none() {
            let path = self.path.clone();
            let c: Checkpoint = tokio::task::spawn_blocking(move || files::load(&path)).await??;
            self.acked = c.position;
            self.saved = Some(c);
        }
        let client = async_nats::connect(self.config.url.as_str()).await?;
        let js = async_nats::jetstream::new(client);
        let mut stream = js
            .get_or_create_stream(async_nats::jetstream::stream::Config {
                name: self.config.stream.clone(),
                subjects: vec![format!("{}.>", self.config.subject_prefix)],
                ..Default::default()
            })
            .await?;
        let last = stream.info().await?.state.last_sequence;
        if last > 0 {
            if let Ok(m) = stream.get_raw_message(last).await {
                let in_stream = m
                    .headers
                    .get(POSITION_HEADER)
                    .and_then(|v| v.as_str().parse::<u64>().ok());
                if let Some(p) = in_stream.filter(|p| *p > self.acked) {
                    tracing::info!(
                        checkpoint = self.acked,
                        in_stream = p,
                        "NATS: the stream already holds events after the checkpoint; resuming after them"
                    );
                    self.acked = p;
                }
            }
        }
        tracing::info!(stream = %self.config.stream, after = self.acked, "publishing the log to NATS JetStream");
        let mut events = self.store.subscribe(self.acked + 1, Filter::default());
        let mut in_flight: VecDeque<(u64, async_nats::jetstream::context::PublishAckFuture)> =
            VecDeque::new();
        let mut last_save = Instant::now();
        loop {
            // Publish what is ready; wait for acks when the window is full or the log is idle.
            let next = if in_flight.len() >= IN_FLIGHT {
                None
            } else if in_flight.is_empty() {
                match tokio::time::timeout(SAVE_EVERY, events.next()).await {
                    Ok(n) => Some(n),
                    Err(_idle) => {
                        self.save().await;
                        continue;
                    }
                }
            } else {
                futures::FutureExt::now_or_never(events.next())
            };
            match next {
                Some(Some(event)) => {
                    let event = event?;
                    let ack = self.publish(&js, &event).await?;
                    in_flight.push_back((event.position, ack));
                }
                Some(None) => return Err("the log's subscription ended".into()),
                None => {
                    let (position, ack) = in_flight.pop_front().expect("not empty");
                    ack.await?;
                    self.acked = position;
                    if last_save.elapsed() >= SAVE_EVERY {
                        self.save().await;
                        last_save = Instant::now();
                    }
                }
            }
        }
    }

    async fn publish(
        &self,
        js: &async_nats::jetstream::Context,
        event: &RecordedEvent,
    ) -> Result<async_nats::jetstream::context::PublishAckFuture, BoxError> {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert(
            async_nats::header::NATS_MESSAGE_ID,
            event.id.to_string().as_str(),
        );
        headers.insert(POSITION_HEADER, event.position.to_string().as_str());
        headers.insert("Content-Type", "application/json");
        let body = serde_json::to_vec(event)?;
        let subject = subject(&self.config.subject_prefix, event);
        Ok(js
            .publish_with_headers(subject, headers, body.into())
            .await?)
    }
}
