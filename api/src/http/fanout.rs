//! The shared fan-out behind `GET /v1/subscribe`: the log is read, decoded and serialised
//! once per server, not once per subscriber.
//!
//! - A [`Feed`] is filled by one background task subscribed to the store (no filter) from
//!   the log's end at the time it started. Each event it receives is rendered once as its SSE frame
//!   (`id: <position>\nevent: <type>\ndata: <canonical JSON>\n\n`, the bytes axum's
//!   `sse::Event` would produce) and pushed into a ring of the last `ApiConfig::sse_window`
//!   frames, with its type and stream for the subscribers' filters. Events that arrive
//!   together are pushed under one lock; a `watch` send then wakes the subscribers, at once
//!   after a quiet spell, otherwise at most every `WAKE_EVERY` (25 ms), so that under load
//!   each wake-up carries many frames.
//! - Positions are gap-free and increasing, so the ring is indexed by position: the frame
//!   of position `p` is at `p - base`. A subscriber only tracks `next`, the next position it
//!   has not examined. If `next` is in the ring it takes every frame from there to the ring's
//!   head at once (one body chunk); if `next` is older than the ring (a subscriber catching
//!   up, or one that lagged behind the window) it reads a page from the store instead and
//!   advances `next` past it; if `next` is past the head it waits for the feed. Switching
//!   between the store and the ring therefore loses and repeats nothing, whatever the timing.
//! - The feed never waits for a subscriber: a slow one falls out of the window and goes
//!   back to the store on its own. The feed stops when it finds, after a batch, that nobody
//!   follows it any more; the next subscriber starts a new one.
//! - If the store subscription fails the feed keeps the `event: error` frame; subscribers
//!   send it once they have delivered everything before it, then end. If the store's
//!   subscription ends (store closed, server shutting down) subscribers end after the last
//!   frame.

use std::collections::VecDeque;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::body::Bytes;
use eventlog::{EventStore, Filter, RecordedEvent, StoreError};
use futures::StreamExt;
use tokio::sync::{watch, Mutex};
use tokio::time::Instant;

use super::problem::ApiError;

/// Most events read from the store per page while a subscriber is behind the window.
pub(crate) const STORE_PAGE: usize = 256;

/// Most events the feed takes from the store subscription before publishing them.
const FEED_BATCH: usize = 512;

/// Under a steady flow of events subscribers are woken at most this often, so that each
/// wake-up sends a larger chunk (fewer writes and wake-ups per event). The first event after
/// a quiet spell wakes them at once.
const WAKE_EVERY: Duration = Duration::from_millis(25);

/// One event as sent to subscribers.
struct Frame {
    event_type: String,
    stream: String,
    bytes: Bytes,
}

/// How the feed ended.
#[derive(Clone)]
pub(crate) enum End {
    /// No more events will come (store closed or server shutting down).
    Closed,
    /// The store failed: this `event: error` frame is the last thing to send.
    Failed(Bytes),
}

struct Ring {
    /// The position of `frames[0]`.
    base: u64,
    frames: VecDeque<Frame>,
    end: Option<End>,
}

impl Ring {
    /// The last position published (`base - 1` while empty).
    fn head(&self) -> u64 {
        self.base + self.frames.len() as u64 - 1
    }
}

/// What a subscriber gets from the feed for its `next` position.
pub(crate) enum Take {
    /// Frames from `next` to the head, filtered (possibly none); continue at `next`.
    Frames { chunk: Vec<Bytes>, next: u64 },
    /// `next` is older than the window: read it from the store.
    Behind,
    /// Nothing published at or after `next` yet: wait.
    Wait,
    /// Nothing more will be published.
    Ended(End),
}

/// The shared, already-serialised tail of the log.
pub(crate) struct Feed {
    ring: RwLock<Ring>,
    window: usize,
    /// Carries the head position; only used to wake subscribers.
    head: watch::Sender<u64>,
}

/// Where the server keeps its feed while one runs.
#[derive(Default)]
pub(crate) struct FeedSlot(Mutex<Option<Arc<Feed>>>);

impl FeedSlot {
    /// The running feed, or a new one started from the current end of the log, with a
    /// receiver that wakes on every publication (and keeps the feed running).
    pub(crate) async fn join(
        self: &Arc<Self>,
        store: &Arc<dyn EventStore>,
        window: usize,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Result<(Arc<Feed>, watch::Receiver<u64>), StoreError> {
        let mut slot = self.0.lock().await;
        if let Some(feed) = slot.as_ref() {
            if feed.ring().end.is_none() {
                return Ok((feed.clone(), feed.head.subscribe()));
            }
        }
        let last = store.last_position().await?;
        let (head, rx) = watch::channel(last);
        let feed = Arc::new(Feed {
            ring: RwLock::new(Ring {
                base: last + 1,
                frames: VecDeque::new(),
                end: None,
            }),
            window: window.max(1),
            head,
        });
        *slot = Some(feed.clone());
        let events = store
            .subscribe(last + 1, Filter::default())
            .take_until(shutdown)
            .ready_chunks(FEED_BATCH)
            .boxed();
        tokio::spawn(run(self.clone(), feed.clone(), events));
        Ok((feed, rx))
    }
}

/// The feed's task: pushes each batch the store subscription yields into the ring, and
/// wakes the subscribers at most once per [`WAKE_EVERY`] (at once after a quiet spell).
async fn run(
    slot: Arc<FeedSlot>,
    feed: Arc<Feed>,
    mut events: impl futures::Stream<Item = Vec<Result<RecordedEvent, StoreError>>> + Unpin,
) {
    let mut ended = EndOnDrop(&feed, End::Closed);
    let mut next_wake = Instant::now();
    let mut unannounced = false;
    loop {
        let batch = if unannounced {
            tokio::select! {
                batch = events.next() => batch,
                () = tokio::time::sleep_until(next_wake) => {
                    feed.wake();
                    unannounced = false;
                    next_wake = Instant::now() + WAKE_EVERY;
                    continue;
                }
            }
        } else {
            events.next().await
        };
        let Some(batch) = batch else { return };
        let mut frames = Vec::with_capacity(batch.len());
        let mut failed = None;
        for item in batch {
            match item {
                Ok(ev) => frames.push((ev.position, frame_of(&ev))),
                Err(e) => {
                    failed = Some(error_frame(e));
                    break;
                }
            }
        }
        feed.push(frames);
        if let Some(error) = failed {
            ended.1 = End::Failed(error);
            return;
        }
        if Instant::now() >= next_wake {
            feed.wake();
            next_wake = Instant::now() + WAKE_EVERY;
        } else {
            unannounced = true;
        }
        if feed.head.receiver_count() == 0 {
            // Decided under the slot's lock, so no subscriber can join this feed meanwhile.
            let mut current = slot.0.lock().await;
            if feed.head.receiver_count() == 0 {
                if current.as_ref().is_some_and(|f| Arc::ptr_eq(f, &feed)) {
                    *current = None;
                }
                return;
            }
        }
    }
}

/// Marks the feed ended however its task stops (a panic included), and wakes subscribers.
struct EndOnDrop<'a>(&'a Feed, End);

impl Drop for EndOnDrop<'_> {
    fn drop(&mut self) {
        self.0.ring_mut().end = Some(self.1.clone());
        self.0.head.send_modify(|_| {});
    }
}

impl Feed {
    fn ring(&self) -> std::sync::RwLockReadGuard<'_, Ring> {
        self.ring.read().unwrap_or_else(|p| p.into_inner())
    }

    fn ring_mut(&self) -> std::sync::RwLockWriteGuard<'_, Ring> {
        self.ring.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds frames to the ring (without waking anyone).
    fn push(&self, frames: Vec<(u64, Frame)>) {
        let mut ring = self.ring_mut();
        for (position, frame) in frames {
            if position != ring.head() + 1 {
                // Not expected from a gap-free log; restart the window rather than
                // mis-index it (subscribers before it go back to the store).
                ring.frames.clear();
                ring.base = position;
            }
            ring.frames.push_back(frame);
            if ring.frames.len() > self.window {
                ring.frames.pop_front();
                ring.base += 1;
            }
        }
    }

    /// Wakes the subscribers to take what the ring holds.
    fn wake(&self) {
        let head = self.ring().head();
        self.head.send_replace(head);
    }

    /// The frames from `next` on that pass `filter`.
    pub(crate) fn take(&self, next: u64, filter: &Filter) -> Take {
        let ring = self.ring();
        if next < ring.base {
            return Take::Behind;
        }
        let head = ring.head();
        if next > head {
            return match &ring.end {
                Some(end) => Take::Ended(end.clone()),
                None => Take::Wait,
            };
        }
        let skip = (next - ring.base) as usize;
        let chunk = ring
            .frames
            .iter()
            .skip(skip)
            .filter(|f| wanted(filter, &f.event_type, &f.stream))
            .map(|f| f.bytes.clone())
            .collect();
        Take::Frames {
            chunk,
            next: head + 1,
        }
    }
}

/// [`Filter::matches`] for a frame, which keeps only the type and stream of its event.
fn wanted(filter: &Filter, event_type: &str, stream: &str) -> bool {
    (filter.types.is_empty() || filter.types.iter().any(|t| t == event_type))
        && filter
            .stream_prefix
            .as_deref()
            .is_none_or(|p| stream.starts_with(p))
}

/// An SSE event name may not contain line breaks.
fn event_name(t: &str) -> String {
    t.replace(['\n', '\r'], "_")
}

/// The SSE bytes of one event: `id`, `event`, one `data` line of canonical JSON.
pub(crate) fn sse_bytes(ev: &RecordedEvent) -> Bytes {
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(b"id: ");
    out.extend_from_slice(ev.position.to_string().as_bytes());
    out.extend_from_slice(b"\nevent: ");
    out.extend_from_slice(event_name(&ev.event_type).as_bytes());
    out.extend_from_slice(b"\ndata: ");
    // Serialising a recorded event cannot fail (string keys, finite numbers); compact JSON
    // escapes line breaks inside strings, so it is one line.
    let _ = serde_json::to_writer(&mut out, ev);
    out.extend_from_slice(b"\n\n");
    Bytes::from(out)
}

fn frame_of(ev: &RecordedEvent) -> Frame {
    Frame {
        event_type: ev.event_type.clone(),
        stream: ev.stream.clone(),
        bytes: sse_bytes(ev),
    }
}

/// The `event: error` frame that ends a subscription on a store error.
pub(crate) fn error_frame(e: StoreError) -> Bytes {
    let problem = ApiError::Store(e).to_problem();
    tracing::warn!(detail = %problem.detail, "subscription ended by a store error");
    Bytes::from(format!("event: error\ndata: {}\n\n", problem.body()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::response::sse::Event;
    use axum::response::IntoResponse;
    use http_body_util::BodyExt;

    fn recorded(position: u64, event_type: &str) -> RecordedEvent {
        serde_json::from_value(serde_json::json!({
            "id": "0190a8e0-0000-7000-8000-000000000001",
            "stream": "deal-D1",
            "version": 1,
            "position": position,
            "type": event_type,
            "data": {"note": "two\nlines", "n": 1},
            "metadata": {},
            "recorded_at": "2026-01-01T00:00:00Z",
            "occurred_at": "2026-01-01T00:00:00Z",
            "actor": "system"
        }))
        .expect("a recorded event")
    }

    /// What axum's `Sse` sends for an event built as the handler did before the fan-out.
    async fn axum_bytes(ev: &RecordedEvent) -> Bytes {
        let event = Event::default()
            .id(ev.position.to_string())
            .event(event_name(&ev.event_type))
            .data(serde_json::to_string(ev).unwrap());
        let stream = futures::stream::iter([Ok::<_, std::convert::Infallible>(event)]);
        let body = axum::response::sse::Sse::new(stream)
            .into_response()
            .into_body();
        body.collect().await.unwrap().to_bytes()
    }

    #[tokio::test]
    async fn frames_are_byte_for_byte_what_axum_renders() {
        for ev in [recorded(7, "DealOpened"), recorded(12, "Odd\r\nType")] {
            assert_eq!(sse_bytes(&ev), axum_bytes(&ev).await);
        }
    }

    fn feed(window: usize) -> Feed {
        Feed {
            ring: RwLock::new(Ring {
                base: 1,
                frames: VecDeque::new(),
                end: None,
            }),
            window,
            head: watch::channel(0).0,
        }
    }

    fn positions(take: Take) -> (Vec<String>, u64) {
        match take {
            Take::Frames { chunk, next } => (
                chunk
                    .iter()
                    .map(|b| {
                        let text = std::str::from_utf8(b).unwrap();
                        text.lines().next().unwrap().to_string()
                    })
                    .collect(),
                next,
            ),
            _ => panic!("expected frames"),
        }
    }

    #[test]
    fn the_window_keeps_the_latest_frames_and_sends_older_positions_to_the_store() {
        let f = feed(3);
        assert!(matches!(f.take(1, &Filter::default()), Take::Wait));
        let evs: Vec<_> = (1..=5)
            .map(|p| {
                (
                    p,
                    frame_of(&recorded(p, if p % 2 == 0 { "B" } else { "A" })),
                )
            })
            .collect();
        f.push(evs);
        assert!(matches!(f.take(2, &Filter::default()), Take::Behind));
        assert_eq!(
            positions(f.take(3, &Filter::default())),
            (vec!["id: 3".into(), "id: 4".into(), "id: 5".into()], 6)
        );
        let only_b = Filter {
            types: vec!["B".into()],
            stream_prefix: None,
        };
        assert_eq!(positions(f.take(3, &only_b)), (vec!["id: 4".into()], 6));
        assert!(matches!(f.take(6, &Filter::default()), Take::Wait));
        f.ring_mut().end = Some(End::Closed);
        assert!(matches!(
            f.take(6, &Filter::default()),
            Take::Ended(End::Closed)
        ));
        assert_eq!(positions(f.take(5, &Filter::default())).1, 6);
    }
}
