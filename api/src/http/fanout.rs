//! The shared fan-out behind `GET /v1/subscribe`: the log is read, decoded and serialised
//! once per server, not once per subscriber.
//!
//! - A [`Feed`] is filled by one background task subscribed to the store (no filter) from
//!   the log's end at the time it started. Each event it receives is rendered once as its SSE frame
//!   (`id: <position>\nevent: <type>\ndata: <canonical JSON>\n\n`, the bytes axum's
//!   `sse::Event` would produce). The frames are published to a ring of the last
//!   `ApiConfig::sse_window` frames, with each event's type and stream for the subscribers'
//!   filters, and a `watch` send wakes the subscribers that wait for it: at once after a
//!   quiet spell, otherwise at most every `PUBLISH_EVERY` (25 ms).
//! - Under a steady flow a subscriber does not wait for the feed: it takes what has been
//!   published once per `SEND_EVERY` (50 ms), at its own turn ([`Feed::next_turn`]). The
//!   turns of a feed's subscribers are spread evenly over the period, and so are their
//!   writes and their readers' wake-ups: with all of them woken by each publication, a
//!   hundred subscribers wrote megabytes in one burst each period on the load test, and the
//!   appends answered meanwhile waited (their p99 latency more than doubled; with turns, and
//!   the subscriptions on their own thread, it came back close to the figure without
//!   subscribers: the load bench prints both). The feed publishes more often than a turn
//!   comes round, so that a turn almost always finds something new; one that finds nothing
//!   waits for the feed again, so the first event after a quiet spell still goes out at
//!   once.
//! - The frames published together are one buffer (a block): each frame in the ring is a
//!   range of its block, so a subscriber takes a run of consecutive wanted frames as one
//!   slice of it (a reference count, no copy). A subscriber that keeps up sends each block
//!   as one body chunk, the same bytes as every other subscriber.
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
use std::sync::atomic::{AtomicU64, Ordering};
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

/// Under a steady flow the feed publishes what it has at most this often; the first event
/// after a quiet spell is published at once. Half of [`SEND_EVERY`]: a turn then finds
/// something new under a steady flow, where at 50 ms, as often as turns, it often found
/// nothing and its subscriber went back to waiting for the feed with the others, which
/// brought the bursts back. Each block is a separate slice (a separate HTTP chunk for the
/// client), so a turn sends two or three; at 10 ms it sent five or six, and the clients'
/// CPU per event went up by about a tenth, for no better append rate.
const PUBLISH_EVERY: Duration = Duration::from_millis(25);

/// Under a steady flow a subscriber sends at most once per this period, at its turn, so that
/// each write carries many frames: much of SSE's cost is per write (wake-ups, syscalls, the
/// reader's wake-ups); waking subscribers every 5 ms instead of 50 more than doubled its CPU
/// per append on the load test. The price: up to 75 ms of delivery delay under load.
pub(crate) const SEND_EVERY: Duration = Duration::from_millis(50);

/// One event as sent to subscribers: the range `start..end` of the block published with it.
struct Frame {
    event_type: String,
    stream: String,
    block: Bytes,
    start: usize,
    end: usize,
}

/// Frames rendered by the feed and not yet published: their bytes joined in one buffer.
#[derive(Default)]
struct Block {
    bytes: Vec<u8>,
    /// Position, type, stream and where the frame ends in `bytes` (it starts where the
    /// previous one ends).
    frames: Vec<(u64, String, String, usize)>,
}

impl Block {
    fn add(&mut self, ev: RecordedEvent) {
        write_frame(&mut self.bytes, &ev);
        let end = self.bytes.len();
        self.frames
            .push((ev.position, ev.event_type, ev.stream, end));
    }
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
    /// The `events` frames from `next` to the head that pass the filter (possibly none), as
    /// few slices as the blocks allow; continue at `next`.
    Frames {
        chunk: Vec<Bytes>,
        events: u64,
        next: u64,
    },
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
    /// Where the subscribers' turns are counted from.
    epoch: Instant,
    /// Subscribers that have joined; gives each its turn.
    joined: AtomicU64,
}

/// Where the server keeps its feed while one runs.
#[derive(Default)]
pub(crate) struct FeedSlot(Mutex<Option<Arc<Feed>>>);

impl FeedSlot {
    /// Returns once the running feed (if any) has published `position` or ended (at most
    /// `within`): an erasure's frame drops the frames before it from the window (see
    /// `Feed::publish`), so none rendered while its person's fields still opened is served.
    pub(crate) async fn published(&self, position: u64, within: Duration) {
        let feed = self.0.lock().await.clone();
        let Some(feed) = feed.filter(|f| f.ring().end.is_none()) else {
            return;
        };
        let mut head = feed.head.subscribe();
        let reached = head.wait_for(|h| *h >= position);
        if tokio::time::timeout(within, reached).await.is_err() {
            tracing::warn!(position, "the SSE feed did not publish an erasure in time");
        }
    }

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
            epoch: Instant::now(),
            joined: AtomicU64::new(0),
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
/// wakes the subscribers at most once per [`PUBLISH_EVERY`] (at once after a quiet spell).
async fn run(
    slot: Arc<FeedSlot>,
    feed: Arc<Feed>,
    mut events: impl futures::Stream<Item = Vec<Result<RecordedEvent, StoreError>>> + Unpin,
) {
    let mut ended = EndOnDrop(&feed, End::Closed);
    let mut next_wake = Instant::now();
    let mut pending = Block::default();
    loop {
        let batch = if pending.frames.is_empty() {
            events.next().await
        } else {
            tokio::select! {
                batch = events.next() => batch,
                () = tokio::time::sleep_until(next_wake) => {
                    feed.publish(std::mem::take(&mut pending));
                    next_wake = Instant::now() + PUBLISH_EVERY;
                    continue;
                }
            }
        };
        let Some(batch) = batch else {
            feed.publish(pending);
            return;
        };
        let mut failed = None;
        for item in batch {
            match item {
                Ok(ev) => pending.add(ev),
                Err(e) => {
                    failed = Some(error_frame(e));
                    break;
                }
            }
        }
        if let Some(error) = failed {
            feed.publish(pending);
            ended.1 = End::Failed(error);
            return;
        }
        if Instant::now() >= next_wake {
            feed.publish(std::mem::take(&mut pending));
            next_wake = Instant::now() + PUBLISH_EVERY;
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

    /// Adds a block's frames to the ring and wakes the subscribers (if it has any).
    fn publish(&self, block: Block) {
        if block.frames.is_empty() {
            return;
        }
        let bytes = Bytes::from(block.bytes);
        let mut ring = self.ring_mut();
        let mut start = 0;
        for (position, event_type, stream, end) in block.frames {
            // An erasure (SPEC §7) drops the frames before it: they were rendered while its
            // person's fields still opened; a subscriber asking for them again reads the
            // store, where they read "[erased]".
            if position != ring.head() + 1 || event_type == "PersonalDataErased" {
                // Otherwise not expected from a gap-free log; restart the window rather than
                // mis-index it (subscribers before it go back to the store).
                ring.frames.clear();
                ring.base = position;
            }
            ring.frames.push_back(Frame {
                event_type,
                stream,
                block: bytes.clone(),
                start,
                end,
            });
            start = end;
            if ring.frames.len() > self.window {
                ring.frames.pop_front();
                ring.base += 1;
            }
        }
        let head = ring.head();
        drop(ring);
        self.head.send_replace(head);
    }

    /// A new subscriber's turn: where in each [`SEND_EVERY`] period it sends under a steady
    /// flow. The `n`th subscriber's is the fractional part of `n × 0.618…` of the period,
    /// which spreads any number of them evenly, however many have left meanwhile.
    pub(crate) fn turn(&self) -> Duration {
        let n = self.joined.fetch_add(1, Ordering::Relaxed);
        // 2^64 / golden ratio: the multiplication wraps to the fractional part in 64 bits.
        let fraction = n.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let nanos = SEND_EVERY.as_nanos() as u64;
        Duration::from_nanos(((u128::from(fraction) * u128::from(nanos)) >> 64) as u64)
    }

    /// The first instant after `now` that is `turn` into a [`SEND_EVERY`] period.
    pub(crate) fn next_turn(&self, turn: Duration, now: Instant) -> Instant {
        let period = SEND_EVERY.as_nanos();
        let into = now.saturating_duration_since(self.epoch).as_nanos() % period;
        let wait = (turn.as_nanos() % period + period - into) % period;
        let wait = if wait == 0 { period } else { wait };
        now + Duration::from_nanos(wait as u64)
    }

    /// The frames from `next` on that pass `filter`: each run of consecutive wanted frames
    /// of one block as one slice of it.
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
        let mut chunk = Vec::new();
        let mut events = 0;
        // The run being extended: its block, start and end.
        let mut run: Option<(&Bytes, usize, usize)> = None;
        for f in ring.frames.range(skip..) {
            if !filter.matches_type_and_stream(&f.event_type, &f.stream) {
                continue;
            }
            events += 1;
            match &mut run {
                Some((block, _, end)) if *end == f.start && block.as_ptr() == f.block.as_ptr() => {
                    *end = f.end;
                }
                _ => {
                    if let Some((block, start, end)) = run {
                        chunk.push(block.slice(start..end));
                    }
                    run = Some((&f.block, f.start, f.end));
                }
            }
        }
        if let Some((block, start, end)) = run {
            chunk.push(block.slice(start..end));
        }
        Take::Frames {
            chunk,
            events,
            next: head + 1,
        }
    }
}

/// An SSE event name may not contain line breaks.
fn event_name(t: &str) -> String {
    t.replace(['\n', '\r'], "_")
}

/// The SSE bytes of one event: `id`, `event`, one `data` line of canonical JSON.
#[cfg(test)]
fn sse_bytes(ev: &RecordedEvent) -> Bytes {
    let mut out = Vec::with_capacity(256);
    write_frame(&mut out, ev);
    Bytes::from(out)
}

/// Appends the SSE bytes of one event to `out`: `id`, `event`, one `data` line of canonical
/// JSON.
pub(crate) fn write_frame(out: &mut Vec<u8>, ev: &RecordedEvent) {
    out.extend_from_slice(b"id: ");
    out.extend_from_slice(ev.position.to_string().as_bytes());
    out.extend_from_slice(b"\nevent: ");
    out.extend_from_slice(event_name(&ev.event_type).as_bytes());
    out.extend_from_slice(b"\ndata: ");
    // Serialising a recorded event cannot fail (string keys, finite numbers); compact JSON
    // escapes line breaks inside strings, so it is one line.
    let _ = serde_json::to_writer(&mut *out, ev);
    out.extend_from_slice(b"\n\n");
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
            epoch: Instant::now(),
            joined: AtomicU64::new(0),
        }
    }

    /// The `id:` lines of the frames taken, how many slices they came in, and `next`.
    fn positions(take: Take) -> (Vec<String>, usize, u64) {
        match take {
            Take::Frames {
                chunk,
                events,
                next,
            } => {
                let ids: Vec<String> = chunk
                    .iter()
                    .flat_map(|b| {
                        let text = std::str::from_utf8(b).unwrap();
                        assert!(text.starts_with("id: ") && text.ends_with("\n\n"));
                        text.lines()
                            .filter(|l| l.starts_with("id: "))
                            .map(str::to_string)
                            .collect::<Vec<_>>()
                    })
                    .collect();
                assert_eq!(ids.len() as u64, events);
                (ids, chunk.len(), next)
            }
            _ => panic!("expected frames"),
        }
    }

    fn block(positions: std::ops::RangeInclusive<u64>) -> Block {
        let mut block = Block::default();
        for p in positions {
            block.add(recorded(p, if p % 2 == 0 { "B" } else { "A" }));
        }
        block
    }

    #[test]
    fn the_window_keeps_the_latest_frames_and_sends_older_positions_to_the_store() {
        let f = feed(3);
        assert!(matches!(f.take(1, &Filter::default()), Take::Wait));
        f.publish(block(1..=5));
        assert!(matches!(f.take(2, &Filter::default()), Take::Behind));
        assert_eq!(
            positions(f.take(3, &Filter::default())),
            (vec!["id: 3".into(), "id: 4".into(), "id: 5".into()], 1, 6)
        );
        let only_b = Filter {
            types: vec!["B".into()],
            stream_prefix: None,
        };
        assert_eq!(positions(f.take(3, &only_b)), (vec!["id: 4".into()], 1, 6));
        assert!(matches!(f.take(6, &Filter::default()), Take::Wait));
        f.ring_mut().end = Some(End::Closed);
        assert!(matches!(
            f.take(6, &Filter::default()),
            Take::Ended(End::Closed)
        ));
        assert_eq!(positions(f.take(5, &Filter::default())).2, 6);
    }

    #[test]
    fn consecutive_frames_of_a_block_are_taken_as_one_slice_of_it() {
        let f = feed(100);
        f.publish(block(1..=4));
        f.publish(block(5..=6));
        let all = Filter::default();
        let ids = |r: std::ops::RangeInclusive<u64>| -> Vec<String> {
            r.map(|p| format!("id: {p}")).collect()
        };
        // One slice per block, from any position inside the first one.
        assert_eq!(positions(f.take(1, &all)), (ids(1..=6), 2, 7));
        assert_eq!(positions(f.take(3, &all)), (ids(3..=6), 2, 7));
        assert_eq!(positions(f.take(5, &all)), (ids(5..=6), 1, 7));
        // The block is shared, not copied: the slice points into the ring's buffer.
        let Take::Frames { chunk, .. } = f.take(5, &all) else {
            panic!("expected frames")
        };
        assert_eq!(chunk[0].as_ptr(), f.ring().frames[4].block.as_ptr());
        // A filter breaks runs where it skips frames: A is at 1, 3, 5.
        let only_a = Filter {
            types: vec!["A".into()],
            stream_prefix: None,
        };
        assert_eq!(
            positions(f.take(1, &only_a)),
            (vec!["id: 1".into(), "id: 3".into(), "id: 5".into()], 3, 7)
        );
    }

    /// Follows `feed` from position `next` as a subscriber does until `n` frames arrived or
    /// `limit` passed; the ids received, in order.
    async fn follow(
        feed: &Feed,
        woken: &mut watch::Receiver<u64>,
        mut next: u64,
        n: usize,
        limit: Duration,
    ) -> Vec<u64> {
        let mut ids = Vec::new();
        let deadline = Instant::now() + limit;
        while ids.len() < n {
            woken.borrow_and_update();
            match feed.take(next, &Filter::default()) {
                Take::Frames { chunk, next: n, .. } => {
                    next = n;
                    for piece in chunk {
                        let text = std::str::from_utf8(&piece).unwrap().to_string();
                        ids.extend(
                            text.lines()
                                .filter_map(|l| l.strip_prefix("id: "))
                                .map(|id| id.parse::<u64>().unwrap()),
                        );
                    }
                }
                Take::Wait => {
                    if tokio::time::timeout_at(deadline, woken.changed())
                        .await
                        .is_err()
                    {
                        break;
                    }
                }
                Take::Behind | Take::Ended(_) => panic!("unexpected end of the feed"),
            }
        }
        ids
    }

    #[test]
    fn subscribers_turns_are_spread_evenly_over_the_period() {
        let f = feed(10);
        let period = SEND_EVERY.as_nanos() as u64;
        for n in [1usize, 2, 7, 100, 1000] {
            let f = feed(10);
            let mut turns: Vec<u64> = (0..n).map(|_| f.turn().as_nanos() as u64).collect();
            assert!(turns.iter().all(|&t| t < period));
            turns.sort_unstable();
            turns.dedup();
            assert_eq!(turns.len(), n, "two subscribers share a turn");
            // The largest gap between neighbouring turns (round the period) is within a
            // small factor of the even spacing.
            let gaps = turns.windows(2).map(|w| w[1] - w[0]);
            let largest = gaps
                .chain([turns[0] + period - turns[n - 1]])
                .max()
                .unwrap();
            assert!(
                largest <= 3 * period / n as u64,
                "{n} subscribers: a gap of {largest} ns"
            );
        }
        // The count goes on from where it was: later subscribers fill the gaps.
        let early: Vec<Duration> = (0..3).map(|_| f.turn()).collect();
        assert!(!early.contains(&f.turn()));
    }

    #[test]
    fn the_next_turn_is_the_first_instant_after_now_at_the_turn() {
        let f = feed(10);
        let period = SEND_EVERY.as_nanos();
        for turn_ms in [0u64, 1, 17, 49] {
            let turn = Duration::from_millis(turn_ms);
            for after_ms in [0u64, 1, 17, 30, 49, 50, 51, 123_456] {
                let now = f.epoch + Duration::from_millis(after_ms);
                let next = f.next_turn(turn, now);
                assert!(
                    next > now && next - now <= SEND_EVERY,
                    "{turn_ms}/{after_ms}"
                );
                assert_eq!(
                    (next - f.epoch).as_nanos() % period,
                    turn.as_nanos() % period
                );
            }
        }
    }

    #[tokio::test]
    async fn the_last_events_of_a_burst_and_a_lone_event_are_published_without_waiting_for_more() {
        let store: Arc<dyn EventStore> = Arc::new(eventlog::memory::MemoryStore::new());
        let slot = Arc::new(FeedSlot::default());
        let (feed, mut woken) = slot
            .join(&store, 4096, futures::future::pending())
            .await
            .unwrap();
        let one = || -> Vec<domain::ProposedEvent> {
            vec![serde_json::from_value(serde_json::json!({"type": "A", "data": {}})).unwrap()]
        };
        // A burst of appends over more than a wake interval, coming faster than the feed
        // wakes its subscribers (so the last ones wait for its timer); nothing after it.
        for i in 0..300 {
            if i % 10 == 0 {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            store
                .append("deal-D1", eventlog::ExpectedVersion::Any, one())
                .await
                .unwrap();
        }
        let burst = follow(&feed, &mut woken, 1, 300, Duration::from_secs(5)).await;
        assert_eq!(burst, (1..=300).collect::<Vec<_>>());
        // After a quiet spell, one event alone: it is published at once, not after a wake
        // interval (let alone when another event comes).
        tokio::time::sleep(PUBLISH_EVERY * 20).await;
        let started = Instant::now();
        store
            .append("deal-D1", eventlog::ExpectedVersion::Any, one())
            .await
            .unwrap();
        let lone = follow(&feed, &mut woken, 301, 1, Duration::from_secs(5)).await;
        assert_eq!(lone, vec![301], "the lone event was not published");
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "the lone event took {:?}",
            started.elapsed()
        );
    }
}
