//! `GET /v1/subscribe`: the log as Server-Sent Events — catch-up, then live.
//!
//! Each event is `id: <position>`, `event: <type>`, `data: <canonical JSON, one line>`.
//! Where delivery starts, first rule that applies:
//! 1. a `Last-Event-ID` header: after that position (a reconnecting browser sends it);
//! 2. `consumer=NAME`: after the consumer's last acknowledged position;
//! 3. `from_position` (inclusive; 0 or 1 = the start; default the start).
//!
//! Heartbeats are SSE comments (`: heartbeat`) after `ApiConfig::heartbeat` without anything
//! sent. A store error mid-stream is sent as an `event: error` with a problem document, then
//! the stream ends. Subscriptions end when the server shuts down.
//!
//! Subscribers do not each read the log: they share one reader, the fan-out of
//! `super::fanout`, which serialises every new event once. A subscriber that starts behind
//! it (or falls behind its window) reads pages from the store until it is back within the
//! window. The body is written directly (`text/event-stream`, `cache-control: no-cache`) so
//! that every frame ready at once goes out in one chunk, which for a subscriber following the
//! feed is a slice of the feed's own buffer (no copy); the bytes of each event are those
//! axum's `sse::Event` would produce. Under a steady flow a subscriber takes from the feed
//! once per 50 ms at a turn of its own, so that subscribers do not all write at once.
//! Subscriptions are served on a thread of their own at a lower CPU priority (`accept`).

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use eventlog::{EventStore, Filter, StoreError};
use futures::StreamExt;
use serde::Deserialize;
use tokio::sync::watch;
use tokio::time::Instant;

use super::auth::Principal;
use super::consumers::check_name;
use super::events::LOG_READERS;
use super::extract::Query;
use super::fanout::{error_frame, write_frame, End, Feed, Take, STORE_PAGE};
use super::metrics::{Metrics, SubscriberGuard};
use super::openapi::ProblemDoc;
use super::params::filter;
use super::problem::ApiError;
use super::state::AppState;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct SubscribeParams {
    /// First position to deliver, inclusive (0 or 1 = the start).
    pub from_position: Option<u64>,
    /// Comma-separated event types (default: all).
    pub types: Option<String>,
    /// Only streams whose name starts with this.
    pub stream_prefix: Option<String>,
    /// A durable consumer: delivery resumes after its last acknowledged position.
    pub consumer: Option<String>,
}

async fn start_position(
    state: &AppState,
    headers: &HeaderMap,
    p: &SubscribeParams,
) -> Result<u64, ApiError> {
    if let Some(v) = headers.get("last-event-id") {
        let id = v
            .to_str()
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
            .ok_or_else(|| {
                ApiError::bad_field(
                    "Last-Event-ID",
                    "the Last-Event-ID header must be an event position (a non-negative integer)",
                )
            })?;
        return Ok(id.saturating_add(1));
    }
    if let Some(name) = &p.consumer {
        check_name(name)?;
        let c = state
            .consumers
            .get(name)
            .await
            .map_err(|e| ApiError::Internal(format!("reading the consumer {name}: {e}")))?
            .ok_or_else(|| {
                ApiError::NotFound(format!(
                    "consumer {name} does not exist (create it with PUT /v1/consumers/{name})"
                ))
            })?;
        return Ok(c.position + 1);
    }
    Ok(p.from_position.unwrap_or(0).max(1))
}

#[utoipa::path(get, path = "/v1/subscribe", tag = "events",
    params(SubscribeParams,
        ("Last-Event-ID" = Option<u64>, Header, description = "Resume after this position; takes precedence")),
    responses(
        (status = 200, description = "`text/event-stream`: `id:` position, `event:` type, `data:` the canonical event JSON", content_type = "text/event-stream", body = String),
        (status = 400, body = ProblemDoc, content_type = "application/problem+json"),
        (status = 401, body = ProblemDoc, content_type = "application/problem+json"),
        (status = 403, body = ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "Unknown consumer", body = ProblemDoc, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn subscribe(
    State(state): State<AppState>,
    who: Principal,
    headers: HeaderMap,
    Query(p): Query<SubscribeParams>,
) -> Result<Response, ApiError> {
    who.require(LOG_READERS, "subscribe to the log")?;
    let from = start_position(&state, &headers, &p).await?;
    let filter = filter(p.types.as_deref(), p.stream_prefix.clone());
    let (feed, woken) = state
        .feed
        .join(&state.store, state.config.sse_window, state.shutting_down())
        .await
        .map_err(ApiError::Store)?;
    let follower = Follower {
        _counted: state.metrics.subscriber(),
        store: state.store.clone(),
        metrics: state.metrics.clone(),
        turn: feed.turn(),
        due: None,
        feed,
        woken,
        next: from,
        filter,
        heartbeat: state.config.heartbeat,
        idle_until: Instant::now() + state.config.heartbeat,
        queued: VecDeque::new(),
        done: false,
    };
    let chunks = futures::stream::unfold(follower, |mut f| async move {
        let chunk = f.next_chunk().await?;
        Some((Ok::<_, Infallible>(chunk), f))
    })
    .take_until(state.shutting_down());
    Ok((
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        Body::from_stream(chunks),
    )
        .into_response())
}

const HEARTBEAT: &[u8] = b": heartbeat\n\n";

/// Slices of the feed's buffers at least this long (on average) are sent as they are, one
/// body chunk each (hyper writes consecutive chunks together); shorter ones are copied into
/// one chunk.
const SHARE_SLICES_FROM: usize = 4096;

/// One subscription: where it is in the log and how it gets there (see [`super::fanout`]).
struct Follower {
    _counted: SubscriberGuard,
    store: Arc<dyn EventStore>,
    metrics: Arc<Metrics>,
    feed: Arc<Feed>,
    /// Changes whenever the feed publishes or ends.
    woken: watch::Receiver<u64>,
    /// The next position not yet examined.
    next: u64,
    /// Where in each [`SEND_EVERY`](super::fanout::SEND_EVERY) period this subscriber takes
    /// from the feed under a steady flow ([`Feed::turn`]).
    turn: Duration,
    /// Set after a take from the feed: its next turn, before which it does not take again.
    due: Option<Instant>,
    filter: Filter,
    heartbeat: Duration,
    /// When a heartbeat is due if nothing is sent before.
    idle_until: Instant,
    /// Body chunks taken from the feed and not sent yet.
    queued: VecDeque<Bytes>,
    /// An error frame was sent: nothing more.
    done: bool,
}

impl Follower {
    /// The next body chunk: frames, a heartbeat or the error frame; `None` at the end.
    async fn next_chunk(&mut self) -> Option<Bytes> {
        if let Some(chunk) = self.queued.pop_front() {
            return Some(chunk);
        }
        while !self.done {
            // Just took from the feed: wait for this subscriber's turn (see `super::fanout`).
            if let Some(due) = self.due {
                if self.idle_until < due {
                    // Only frames it does not want have passed for a while.
                    tokio::time::sleep_until(self.idle_until).await;
                    self.idle_until = Instant::now() + self.heartbeat;
                    return Some(Bytes::from_static(HEARTBEAT));
                }
                tokio::time::sleep_until(due).await;
                self.due = None;
            }
            // Marks the feed's state seen before looking at it, so `changed` below wakes
            // for anything published after this look.
            self.woken.borrow_and_update();
            match self.feed.take(self.next, &self.filter) {
                Take::Frames {
                    chunk,
                    events,
                    next,
                } => {
                    self.next = next;
                    self.due = Some(self.feed.next_turn(self.turn, Instant::now()));
                    if events > 0 {
                        return Some(self.deliver(chunk, events));
                    }
                }
                Take::Behind => match self.store_page().await {
                    // Nothing wanted in that page: let other tasks run before the next one.
                    Ok((_, 0)) => tokio::task::yield_now().await,
                    Ok((chunk, events)) => return Some(self.deliver(vec![chunk], events)),
                    Err(e) => {
                        self.done = true;
                        return Some(error_frame(e));
                    }
                },
                Take::Wait => {
                    tokio::select! {
                        changed = self.woken.changed() => {
                            // The sender lives in the feed this follower holds: cannot fail.
                            changed.ok()?;
                        }
                        () = tokio::time::sleep_until(self.idle_until) => {
                            self.idle_until = Instant::now() + self.heartbeat;
                            return Some(Bytes::from_static(HEARTBEAT));
                        }
                    }
                }
                Take::Ended(End::Closed) => return None,
                Take::Ended(End::Failed(frame)) => {
                    self.done = true;
                    return Some(frame);
                }
            }
        }
        None
    }

    /// The matching frames of the next page of the log, read from the store (for a
    /// follower behind the feed's window), and how many; moves `next` past the page.
    async fn store_page(&mut self) -> Result<(Bytes, u64), StoreError> {
        let page = self
            .store
            .read_all(self.next, STORE_PAGE, &Filter::default())
            .await?;
        let Some(last) = page.last() else {
            // The feed has published past `next`, so the store must have it.
            return Err(StoreError::Corrupt {
                position: self.next,
                reason: "event missing from the log below its published end".into(),
            });
        };
        self.next = last.position + 1;
        let (mut out, mut events) = (Vec::new(), 0);
        for ev in page.iter().filter(|ev| self.filter.matches(ev)) {
            write_frame(&mut out, ev);
            events += 1;
        }
        Ok((Bytes::from(out), events))
    }

    /// The next body chunk of `slices` (holding `events` frames), queueing any others;
    /// counts the events and restarts the heartbeat interval.
    fn deliver(&mut self, slices: Vec<Bytes>, events: u64) -> Bytes {
        self.metrics.events_streamed(events);
        self.idle_until = Instant::now() + self.heartbeat;
        let len: usize = slices.iter().map(Bytes::len).sum();
        let mut slices = slices.into_iter();
        if slices.len() == 1 || len >= SHARE_SLICES_FROM * slices.len() {
            let first = slices.next().unwrap_or_default();
            self.queued.extend(slices);
            return first;
        }
        let mut chunk = Vec::with_capacity(len);
        for s in slices {
            chunk.extend_from_slice(&s);
        }
        Bytes::from(chunk)
    }
}
