//! End to end: real servers on 127.0.0.1:0, a real HTTP client, restarts over one data dir.

use std::sync::Arc;

use async_trait::async_trait;
use axum::http::{Method, StatusCode};
use eventlog::memory::MemoryStore;
use eventlog::EventStore;
use http_body_util::BodyExt;
use serde_json::json;
use tokio::sync::{oneshot, Mutex};

use crate::helpers::*;

fn body(v: serde_json::Value) -> Option<String> {
    Some(v.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn append_and_read_over_http() {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_app(Arc::new(rules_store()), dir.path()).await;
    let (status, out) = app
        .send_json(Method::POST, "/v1/streams/lead-L1/events", Some(ADMIN),
            body(json!({"events": [{"type": "LeadCaptured", "data": {"channel": "web", "name": "n"}}]})))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(out["last_position"], 1);
    let (status, page) = app
        .send_json(Method::GET, "/v1/streams/lead-L1", Some(ADMIN), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page["events"][0]["type"], "LeadCaptured");
    let (status, p) = app
        .send_json(Method::GET, "/v1/nowhere", Some(ADMIN), None)
        .await;
    assert_eq!(
        (status, p["status"].clone()),
        (StatusCode::NOT_FOUND, json!(404))
    );
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn exactly_one_of_n_racing_appends_with_the_same_expected_version_wins() {
    let dir = tempfile::tempdir().unwrap();
    let app = Arc::new(spawn_app(Arc::new(rules_store()), dir.path()).await);
    let (status, _) = app
        .send_json(
            Method::POST,
            "/v1/streams/customer-C1/events",
            Some(ADMIN),
            body(json!({"events": [customer_event(1)]})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let n = 16;
    let barrier = Arc::new(tokio::sync::Barrier::new(n));
    let mut tasks = Vec::new();
    for i in 0..n {
        let (app, barrier) = (app.clone(), barrier.clone());
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            app.send_json(
                Method::POST,
                "/v1/streams/customer-C1/events",
                Some(ADMIN),
                body(json!({"expected_version": 0,
                    "events": [{"type": "NpsRecorded", "data": {"score": i % 11}}]})),
            )
            .await
        }));
    }
    let mut statuses = Vec::new();
    for t in tasks {
        let (status, p) = t.await.unwrap();
        if status == StatusCode::CONFLICT {
            assert_eq!(
                (p["expected"].clone(), p["actual"].clone()),
                (json!(0), json!(1))
            );
        }
        statuses.push(status);
    }
    assert_eq!(
        statuses
            .iter()
            .filter(|s| **s == StatusCode::CREATED)
            .count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses
            .iter()
            .filter(|s| **s == StatusCode::CONFLICT)
            .count(),
        n - 1
    );
    let (_, page) = app
        .send_json(Method::GET, "/v1/streams/customer-C1", Some(ADMIN), None)
        .await;
    assert_eq!(page["version"], 1);
    Arc::try_unwrap(app)
        .ok()
        .expect("tasks done")
        .shutdown()
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sse_over_http_resumes_with_last_event_id() {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_app(sled_store(), dir.path()).await;
    append_customer_events(&app, 3).await;
    let res = app
        .send(
            Method::GET,
            "/v1/subscribe?from_position=1",
            Some(ADMIN),
            None,
            &[("last-event-id", "1")],
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let mut sse = SseReader::new(res.into_body());
    assert_eq!(sse.next_event().await.id.as_deref(), Some("2"));
    assert_eq!(sse.next_event().await.id.as_deref(), Some("3"));
    app.send_json(
        Method::POST,
        "/v1/streams/customer-C1/events",
        Some(ADMIN),
        body(json!({"events": [{"type": "CustomerUpdated", "data": {"industry": "retail"}}]})),
    )
    .await;
    assert_eq!(
        sse.next_event().await.event.as_deref(),
        Some("CustomerUpdated")
    );
    // Shutting down ends the open subscription instead of waiting for it forever.
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_durable_consumer_resumes_after_a_server_restart() {
    let dir = tempfile::tempdir().unwrap();
    // The store outlives the servers, as the on-disk log would; the API state is reopened
    // from the data dir.
    let store: Arc<dyn EventStore> = sled_store();
    let first = spawn_app(store.clone(), dir.path()).await;
    let (_, issued) = first
        .send_json(
            Method::POST,
            "/v1/tokens",
            Some(ADMIN),
            body(json!({"role": "service", "subject": "billing"})),
        )
        .await;
    let service = issued["token"].as_str().unwrap().to_string();
    let (status, _) = first
        .send_json(Method::PUT, "/v1/consumers/billing", Some(&service), None)
        .await;
    assert_eq!(status, StatusCode::CREATED);
    // Position 1 is the token's audit event (`TokenIssued` in `org-access`); the customer's
    // events are 2..6.
    append_customer_events(&first, 5).await;
    let (status, c) = first
        .send_json(
            Method::POST,
            "/v1/consumers/billing/ack",
            Some(&service),
            body(json!({"position": 4})),
        )
        .await;
    assert_eq!((status, c["position"].clone()), (StatusCode::OK, json!(4)));
    first.shutdown().await;

    let second = spawn_app(store, dir.path()).await;
    let (status, c) = second
        .send_json(Method::GET, "/v1/consumers/billing", Some(&service), None)
        .await;
    assert_eq!(
        (status, c["position"].clone()),
        (StatusCode::OK, json!(4)),
        "token and checkpoint survived"
    );
    let res = second
        .send(
            Method::GET,
            "/v1/subscribe?consumer=billing",
            Some(&service),
            None,
            &[],
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let mut sse = SseReader::new(res.into_body());
    let next = sse.next_event().await;
    assert_eq!(
        (next.id.as_deref(), next.event.as_deref()),
        (Some("5"), Some("NpsRecorded"))
    );
    let data: serde_json::Value = serde_json::from_str(&next.data).unwrap();
    assert_eq!(data["data"]["score"], 4, "the event at position 5");
    second.shutdown().await;
}

/// The real store in a temporary directory, with the domain's rules.
fn sled_store() -> Arc<dyn EventStore> {
    let rules = Arc::new(eventlog::rules::DomainRules::default());
    Arc::new(eventlog::SledStore::temporary(rules).unwrap())
}

/// Appends [`customer_event`] 1 to `n` to `customer-C1`, one request each.
async fn append_customer_events(app: &Running, n: u64) {
    for position in 1..=n {
        let (status, _) = app
            .send_json(
                Method::POST,
                "/v1/streams/customer-C1/events",
                Some(ADMIN),
                body(json!({"events": [customer_event(position)]})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED);
    }
}

/// The event appended at `position` of a log holding only `customer-C1`: its registration
/// (a customer in the pool: no organisation needed), then NPS answers scored `position`.
fn customer_event(position: u64) -> serde_json::Value {
    match position {
        1 => json!({"type": "CustomerRegistered", "data": {"name": "x"}}),
        p => json!({"type": "NpsRecorded", "data": {"score": p}}),
    }
}

/// A store whose appends wait for a go-ahead, to hold an append in flight.
struct Gated {
    inner: MemoryStore,
    entered: Mutex<Option<oneshot::Sender<()>>>,
    release: Mutex<Option<oneshot::Receiver<()>>>,
}

#[async_trait]
impl Hooks for Gated {
    fn inner(&self) -> &MemoryStore {
        &self.inner
    }

    async fn before_append(&self) {
        if let Some(entered) = self.entered.lock().await.take() {
            let _ = entered.send(());
            if let Some(release) = self.release.lock().await.take() {
                let _ = release.await;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_finishes_an_in_flight_append() {
    let dir = tempfile::tempdir().unwrap();
    let (entered_tx, entered_rx) = oneshot::channel();
    let (release_tx, release_rx) = oneshot::channel();
    let inner = rules_store();
    let store = Arc::new(Hooked(Gated {
        inner: inner.clone(),
        entered: Mutex::new(Some(entered_tx)),
        release: Mutex::new(Some(release_rx)),
    }));
    let app = spawn_app(store, dir.path()).await;
    let res = send(
        app.addr,
        Method::POST,
        "/v1/streams/customer-C1/events",
        Some(ADMIN),
        body(json!({"events": [customer_event(1)]})),
        &[],
    );
    let client = tokio::spawn(async move {
        let res = res.await;
        (
            res.status(),
            res.into_body().collect().await.unwrap().to_bytes(),
        )
    });
    tokio::time::timeout(WAIT, entered_rx)
        .await
        .unwrap()
        .unwrap();
    // The append is inside the store: ask the server to stop, then let the append finish.
    let stopping = tokio::spawn(app.shutdown());
    release_tx.send(()).unwrap();
    let (status, bytes) = tokio::time::timeout(WAIT, client).await.unwrap().unwrap();
    assert_eq!(
        status,
        StatusCode::CREATED,
        "{}",
        String::from_utf8_lossy(&bytes)
    );
    tokio::time::timeout(WAIT, stopping).await.unwrap().unwrap();
    assert_eq!(inner.last_position().await.unwrap(), 1);
}
