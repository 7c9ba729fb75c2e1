//! One webhook's delivery task: follows the log from its checkpoint (the store's
//! `subscribe`, filtered), POSTs each matching event, signed, and moves on only after a 2xx.
//! A failure (non-2xx, timeout, refused connection) is retried after an exponential backoff
//! with jitter, capped by [`DeliveryConfig::max_backoff`]; an endpoint that has failed for
//! [`DeliveryConfig::disable_after`] without a success is disabled. The checkpoint is saved
//! at most every [`SAVE_EVERY`] while busy, at once when idle, and at shutdown: after a
//! crash the events since the last save are delivered again (at least once; receivers
//! deduplicate by `webhook-id`, the event id). Each webhook has its own task, so a receiver
//! that hangs holds only its own queue, and appends never wait for any of them.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use eventlog::{EventStore, Filter, RecordedEvent};
use futures::StreamExt;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde::Serialize;
use tokio::sync::watch;

use super::storage::{Disabled, Progress, Webhook, WebhookStorage};

/// How often, at most, a busy webhook's checkpoint is saved.
pub const SAVE_EVERY: Duration = Duration::from_secs(1);

/// How many attempts each webhook remembers for `GET /v1/webhooks/{id}/deliveries`.
const ATTEMPTS_KEPT: usize = 100;

/// Timings of deliveries.
#[derive(Debug, Clone)]
pub struct DeliveryConfig {
    /// Time allowed for one request, from connecting to the end of the response.
    pub request_timeout: Duration,
    /// The wait before the first retry; each further retry waits twice as long (with
    /// jitter), up to `max_backoff`.
    pub first_retry: Duration,
    pub max_backoff: Duration,
    /// An endpoint failing for this long without a success is disabled.
    pub disable_after: Duration,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        DeliveryConfig {
            request_timeout: Duration::from_secs(10),
            first_retry: Duration::from_secs(1),
            max_backoff: Duration::from_secs(3600),
            disable_after: Duration::from_secs(3 * 24 * 3600),
        }
    }
}

/// One delivery attempt.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Attempt {
    pub position: u64,
    pub event_id: String,
    /// 1 for the first attempt at this event.
    pub attempt: u32,
    #[schema(value_type = String, format = DateTime)]
    pub at: DateTime<Utc>,
    pub duration_ms: u64,
    /// The receiver's HTTP status, when it answered.
    pub status: Option<u16>,
    /// Why the attempt failed, when it did.
    pub error: Option<String>,
    pub delivered: bool,
}

/// What a running webhook's task knows, shared with the API.
#[derive(Debug, Default)]
pub struct Status {
    /// The last position delivered.
    pub position: u64,
    pub failing_since: Option<DateTime<Utc>>,
    pub next_retry_at: Option<DateTime<Utc>>,
    pub disabled: Option<Disabled>,
    /// Newest last.
    pub attempts: VecDeque<Attempt>,
}

pub(super) struct Worker {
    pub hook: Webhook,
    pub storage: Arc<dyn WebhookStorage>,
    pub store: Arc<dyn EventStore>,
    pub client: reqwest::Client,
    pub config: DeliveryConfig,
    pub status: Arc<Mutex<Status>>,
    /// Flips to `true` when the webhook is deleted or the server shuts down.
    pub stop: watch::Receiver<bool>,
}

enum Outcome {
    Delivered,
    Stopped,
    Disabled(Disabled),
}

impl Worker {
    fn status(&self) -> std::sync::MutexGuard<'_, Status> {
        self.status.lock().unwrap_or_else(|p| p.into_inner())
    }

    async fn stopped(stop: &mut watch::Receiver<bool>) {
        let _ = stop.wait_for(|s| *s).await;
    }

    pub async fn run(self) {
        let id = self.hook.id;
        let mut progress = match self.storage.progress(id).await {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(webhook = %id, error = %e, "cannot read the webhook's checkpoint: not delivering");
                return;
            }
        };
        {
            let mut s = self.status();
            s.position = progress.position;
            s.failing_since = progress.failing_since;
        }
        let filter = Filter {
            types: self.hook.types.clone(),
            stream_prefix: self.hook.stream_prefix.clone(),
        };
        let mut rng = StdRng::seed_from_u64(uuid::Uuid::new_v4().as_u128() as u64);
        let mut saved = progress.clone();
        let mut last_save = Instant::now();
        let mut stop = self.stop.clone();
        'subscription: loop {
            let mut events = self.store.subscribe(progress.position + 1, filter.clone());
            loop {
                let next = tokio::select! {
                    _ = Self::stopped(&mut stop) => break 'subscription,
                    next = tokio::time::timeout(SAVE_EVERY, events.next()) => next,
                };
                let event = match next {
                    Err(_idle) => {
                        self.save(&progress, &mut saved, &mut last_save).await;
                        continue;
                    }
                    Ok(Some(Ok(event))) => event,
                    Ok(end) => {
                        if let Some(Err(e)) = end {
                            tracing::warn!(webhook = %id, error = %e, "reading the log for a webhook failed; retrying");
                        }
                        tokio::select! {
                            _ = Self::stopped(&mut stop) => break 'subscription,
                            _ = tokio::time::sleep(Duration::from_secs(1)) => continue 'subscription,
                        }
                    }
                };
                match self
                    .deliver(&event, &mut progress, &mut rng, &mut stop)
                    .await
                {
                    Outcome::Delivered => {
                        progress.position = event.position;
                        self.status().position = event.position;
                        if last_save.elapsed() >= SAVE_EVERY {
                            self.save(&progress, &mut saved, &mut last_save).await;
                        }
                    }
                    Outcome::Stopped => break 'subscription,
                    Outcome::Disabled(why) => {
                        tracing::warn!(webhook = %id, reason = %why.reason, "webhook disabled");
                        self.save(&progress, &mut saved, &mut last_save).await;
                        if let Err(e) = self.storage.disable(id, &why).await {
                            tracing::error!(webhook = %id, error = %e, "cannot save that the webhook is disabled");
                        }
                        self.status().disabled = Some(why);
                        return;
                    }
                }
            }
        }
        self.save(&progress, &mut saved, &mut last_save).await;
    }

    async fn save(&self, progress: &Progress, saved: &mut Progress, last_save: &mut Instant) {
        if progress == saved {
            return;
        }
        match self.storage.save_progress(self.hook.id, progress).await {
            Ok(()) => {
                *saved = progress.clone();
                *last_save = Instant::now();
            }
            Err(e) => {
                tracing::error!(webhook = %self.hook.id, error = %e, "cannot save the webhook's checkpoint")
            }
        }
    }

    /// Delivers `event` until a 2xx, a stop, or the endpoint has failed too long.
    async fn deliver(
        &self,
        event: &RecordedEvent,
        progress: &mut Progress,
        rng: &mut StdRng,
        stop: &mut watch::Receiver<bool>,
    ) -> Outcome {
        let body = match serde_json::to_vec(event) {
            Ok(b) => b,
            Err(e) => {
                // Cannot happen for an event read from the log; never skip it silently.
                tracing::error!(position = event.position, error = %e, "cannot serialise an event");
                Self::stopped(stop).await;
                return Outcome::Stopped;
            }
        };
        let event_id = event.id.to_string();
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let at = Utc::now();
            let timestamp = at.timestamp();
            let request = self
                .client
                .post(&self.hook.url)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .header("webhook-id", &event_id)
                .header("webhook-timestamp", timestamp.to_string())
                .header(
                    "webhook-signature",
                    self.hook.secret.sign(&event_id, timestamp, &body),
                )
                .timeout(self.config.request_timeout)
                .body(body.clone());
            let started = Instant::now();
            let result = tokio::select! {
                _ = Self::stopped(stop) => return Outcome::Stopped,
                r = send(request) => r,
            };
            let duration_ms = started.elapsed().as_millis() as u64;
            let (status, error) = match result {
                Ok(s) if (200..300).contains(&s) => (Some(s), None),
                Ok(s) => (Some(s), Some(format!("HTTP {s}"))),
                Err(e) => (None, Some(e)),
            };
            let delivered = error.is_none();
            let wait = {
                let mut s = self.status();
                s.attempts.push_back(Attempt {
                    position: event.position,
                    event_id: event_id.clone(),
                    attempt,
                    at,
                    duration_ms,
                    status,
                    error: error.clone(),
                    delivered,
                });
                while s.attempts.len() > ATTEMPTS_KEPT {
                    s.attempts.pop_front();
                }
                if delivered {
                    s.failing_since = None;
                    s.next_retry_at = None;
                    progress.failing_since = None;
                    return Outcome::Delivered;
                }
                let since = *progress.failing_since.get_or_insert(at);
                s.failing_since = Some(since);
                let failing_for = (Utc::now() - since).to_std().unwrap_or_default();
                let error = error.unwrap_or_default();
                if failing_for >= self.config.disable_after {
                    return Outcome::Disabled(Disabled {
                    at: Utc::now(),
                    reason: format!(
                        "every delivery failed for {}s (since {}); the last attempt, at position {}: {error}",
                        failing_for.as_secs(),
                        since.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                        event.position
                    ),
                });
                }
                let wait = backoff(&self.config, attempt, rng);
                s.next_retry_at = Some(Utc::now() + wait);
                wait
            };
            tokio::select! {
                _ = Self::stopped(stop) => return Outcome::Stopped,
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }
}

/// Sends `request` and reads (and drops) the response body, so that the connection can be
/// reused; the status, or why there is none.
async fn send(request: reqwest::RequestBuilder) -> Result<u16, String> {
    let mut response = request.send().await.map_err(describe)?;
    let status = response.status().as_u16();
    let mut read = 0usize;
    // Up to 64 KiB of the body is read and dropped; a longer one costs the connection.
    while read < 64 * 1024 {
        match response.chunk().await {
            Ok(Some(chunk)) => read += chunk.len(),
            Ok(None) => break,
            Err(e) => return Err(describe(e)),
        }
    }
    Ok(status)
}

fn describe(e: reqwest::Error) -> String {
    let what = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else {
        "request failed"
    };
    let mut causes = String::new();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        causes.push_str(": ");
        causes.push_str(&s.to_string());
        source = s.source();
    }
    format!("{what}: {}{causes}", e.without_url())
}

/// The wait after the `attempt`-th failure: `first_retry` × 2^(attempt-1), capped by
/// `max_backoff`, of which a random half is taken off ("equal jitter"), so that webhooks
/// failing together do not retry together.
pub fn backoff(config: &DeliveryConfig, attempt: u32, rng: &mut StdRng) -> Duration {
    let exp = config
        .first_retry
        .saturating_mul(1u32 << attempt.saturating_sub(1).min(30));
    let full = exp.min(config.max_backoff);
    let half = full / 2;
    half + half.mul_f64(rng.random::<f64>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_up_to_the_ceiling() {
        let config = DeliveryConfig {
            first_retry: Duration::from_millis(100),
            max_backoff: Duration::from_secs(2),
            ..DeliveryConfig::default()
        };
        let mut rng = StdRng::seed_from_u64(7);
        for attempt in 1..40u32 {
            let full = (100u64 << (attempt - 1).min(30)).min(2000);
            for _ in 0..50 {
                let d = backoff(&config, attempt, &mut rng).as_millis() as u64;
                assert!(
                    d >= full / 2 && d <= full,
                    "attempt {attempt}: {d} ms of {full}"
                );
            }
        }
    }
}
