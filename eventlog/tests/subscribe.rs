//! Subscriptions: catch-up then live, no gap and no duplicate at the switch, slow readers.

#[macro_use]
mod common;

use std::sync::Arc;

use common::note;
use common::stores::Subject;
use eventlog::{ExpectedVersion, Filter};
use futures::StreamExt;

const WRITERS: u64 = 8;
/// A guard against hanging when an event is lost, not a timing assertion.
const HANG_GUARD: std::time::Duration = std::time::Duration::from_secs(60);

async fn within_guard<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(HANG_GUARD, f)
        .await
        .expect("the subscription stalled: an event was lost")
}
const PER_WRITER: u64 = 60;

/// Starts `WRITERS` tasks that each append `PER_WRITER` single-event batches to their own
/// stream.
fn spawn_writers(store: Arc<Subject>) -> Vec<tokio::task::JoinHandle<()>> {
    (0..WRITERS)
        .map(|w| {
            let store = store.clone();
            tokio::spawn(async move {
                for i in 0..PER_WRITER {
                    store
                        .append(&format!("deal-W{w}"), ExpectedVersion::Any, vec![note(i)])
                        .await
                        .unwrap();
                    if i % 7 == 0 {
                        tokio::task::yield_now().await;
                    }
                }
            })
        })
        .collect()
}

contract! {
async fn switch_from_catch_up_to_live_loses_and_duplicates_nothing(backend: Backend) {
    let store = Arc::new(backend.open().await);
    // Some history to catch up on.
    for i in 0..50 {
        store
            .append("org-main", ExpectedVersion::Any, vec![note(i)])
            .await
            .unwrap();
    }
    let writers = spawn_writers(store.clone());
    let total = 50 + WRITERS * PER_WRITER;
    // Several subscribers, started while the writers run.
    let mut readers = Vec::new();
    for from in [0, 1, 25] {
        let sub = store.subscribe(from, Filter::default());
        readers.push(tokio::spawn(within_guard(async move {
            sub.take((total - from.max(1) + 1) as usize)
                .map(|r| r.unwrap().position)
                .collect::<Vec<_>>()
                .await
        })));
        tokio::task::yield_now().await;
    }
    for w in writers {
        w.await.unwrap();
    }
    for (from, reader) in [0u64, 1, 25].into_iter().zip(readers) {
        let got = reader.await.unwrap();
        assert_eq!(
            got,
            (from.max(1)..=total).collect::<Vec<_>>(),
            "subscriber from {from}"
        );
    }
}
}

contract! {
async fn filtered_subscriptions_see_only_matching_events_in_order(backend: Backend) {
    let store = Arc::new(backend.open().await);
    let filter = Filter {
        types: vec![],
        stream_prefix: Some("deal-W3".into()),
    };
    let sub = store.subscribe(1, filter);
    let writers = spawn_writers(store.clone());
    let got: Vec<_> =
        within_guard(sub.take(PER_WRITER as usize).map(|r| r.unwrap()).collect()).await;
    for w in writers {
        w.await.unwrap();
    }
    assert!(got.iter().all(|e| e.stream == "deal-W3"));
    assert_eq!(
        got.iter().map(|e| e.version).collect::<Vec<_>>(),
        (0..PER_WRITER).collect::<Vec<_>>()
    );
}
}

contract! {
async fn a_subscriber_that_is_not_polled_blocks_nothing_and_still_gets_everything(backend: Backend) {
    let store = Arc::new(backend.open().await);
    let mut lazy = store.subscribe(1, Filter::default());
    // Take one event live, then stop polling while many appends happen.
    store
        .append("org-main", ExpectedVersion::Any, vec![note(0)])
        .await
        .unwrap();
    assert_eq!(lazy.next().await.unwrap().unwrap().position, 1);
    for w in spawn_writers(store.clone()) {
        // Completes although `lazy` is never polled meanwhile.
        w.await.unwrap();
    }
    let total = 1 + WRITERS * PER_WRITER;
    assert_eq!(store.last_position().await.unwrap(), total);
    let rest: Vec<_> = within_guard(
        lazy.take((total - 1) as usize)
            .map(|r| r.unwrap().position)
            .collect(),
    )
    .await;
    assert_eq!(rest, (2..=total).collect::<Vec<_>>());
}
}

contract! {
async fn a_subscription_from_beyond_the_end_waits_for_that_position(backend: Backend) {
    let store = Arc::new(backend.open().await);
    store
        .append("org-main", ExpectedVersion::Any, vec![note(0), note(1)])
        .await
        .unwrap();
    let sub = store.subscribe(4, Filter::default());
    let reader = tokio::spawn(async move {
        sub.take(2)
            .map(|r| r.unwrap().position)
            .collect::<Vec<_>>()
            .await
    });
    for i in 2..6 {
        store
            .append("org-main", ExpectedVersion::Any, vec![note(i)])
            .await
            .unwrap();
    }
    assert_eq!(reader.await.unwrap(), [4, 5]);
}
}

contract! {
async fn dropping_the_store_ends_its_subscriptions_and_frees_the_directory(backend: Backend) {
    if !backend.is_durable() {
        return; // clones of a memory store share the log: there is no "the store" to drop
    }
    let store = backend.open().await;
    store
        .append("org-main", ExpectedVersion::Any, vec![note(0), note(1)])
        .await
        .unwrap();
    let sub = store.subscribe(1, Filter::default());
    let reader =
        tokio::spawn(async move { sub.map(|r| r.unwrap().position).collect::<Vec<_>>().await });
    drop(store);
    // The subscription delivers what was durable, then ends.
    assert_eq!(reader.await.unwrap(), [1, 2]);
    let store = backend.open().await;
    assert_eq!(store.last_position().await.unwrap(), 2);
}
}
