//! SSE: catch-up then live, `Last-Event-ID`, filters, heartbeats, durable consumers; the
//! shared fan-out: hand-over from catch-up, lagging behind its window.

use std::sync::Arc;
use std::time::Duration;

use api::http::{ApiConfig, AppState};
use axum::http::{Method, StatusCode};
use eventlog::memory::MemoryStore;
use eventlog::rules::DomainRules;
use eventlog::{EventStore, Filter, RecordedEvent, StoreError};
use futures::stream::{BoxStream, StreamExt};
use serde_json::{json, Value};
use tower::ServiceExt;

use crate::helpers::*;

/// A customer's opening event (a customer in the pool: no rep, no organisation needed).
pub(crate) fn registered() -> Value {
    json!({"type": "CustomerRegistered", "data": {"name": "x"}})
}

/// An event that may follow it, again and again.
pub(crate) fn nps(score: i64) -> Value {
    json!({"type": "NpsRecorded", "data": {"score": score}})
}

fn updated() -> Value {
    json!({"type": "CustomerUpdated", "data": {"industry": "retail"}})
}

pub(crate) async fn open(
    app: &TestApp,
    path: &str,
    last_event_id: Option<&str>,
) -> SseReader<axum::body::Body> {
    let mut req = request(Method::GET, path, Some(ADMIN), None);
    if let Some(id) = last_event_id {
        req.headers_mut()
            .insert("last-event-id", id.parse().unwrap());
    }
    let res = app.router().oneshot(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    SseReader::new(res.into_body())
}

/// Asserts that `/metrics` has this line.
pub(crate) async fn assert_metric(app: &TestApp, line: &str) {
    let body = app.get("/metrics", ADMIN).await.body;
    let text = String::from_utf8_lossy(&body);
    assert!(text.lines().any(|l| l == line), "no {line:?} in {text}");
}

#[tokio::test]
async fn catch_up_then_live_in_canonical_form() {
    let app = TestApp::new();
    app.seed("customer-C0", json!([registered(), nps(9), updated()]))
        .await;
    let mut sse = open(&app, "/v1/subscribe?from_position=2", None).await;
    let b = sse.next_event().await;
    assert_eq!(b.id.as_deref(), Some("2"));
    assert_eq!(b.event.as_deref(), Some("NpsRecorded"));
    let stored = app
        .get("/v1/streams/customer-C0?from_version=1&limit=1", ADMIN)
        .await
        .json();
    assert_eq!(
        serde_json::from_str::<Value>(&b.data).unwrap(),
        stored["events"][0]
    );
    assert!(!b.data.contains('\n'));
    assert_eq!(sse.next_event().await.id.as_deref(), Some("3"));

    // Live: appended after the subscription started.
    app.seed("customer-C1", json!([registered()])).await;
    let live = sse.next_event().await;
    assert_eq!(
        (live.id.as_deref(), live.event.as_deref()),
        (Some("4"), Some("CustomerRegistered"))
    );
    let data: Value = serde_json::from_str(&live.data).unwrap();
    assert_eq!(data["stream"], "customer-C1");
    assert_eq!(data["position"], 4);

    assert_metric(&app, "dealtrail_subscribers 1").await;
    drop(sse);
}

#[tokio::test]
async fn last_event_id_takes_precedence_and_resumes_after_it() {
    let app = TestApp::new();
    app.seed("customer-C1", json!([registered(), nps(1), nps(2), nps(3)]))
        .await;
    let mut sse = open(&app, "/v1/subscribe?from_position=1", Some("2")).await;
    assert_eq!(sse.next_event().await.id.as_deref(), Some("3"));
    assert_eq!(sse.next_event().await.id.as_deref(), Some("4"));
    let bad = {
        let mut req = request(Method::GET, "/v1/subscribe", Some(ADMIN), None);
        req.headers_mut()
            .insert("last-event-id", "abc".parse().unwrap());
        app.call(req).await
    };
    bad.problem(400);
    // The largest id is no panic: nothing comes after it (the stream waits, heartbeating).
    let mut last = open(&app, "/v1/subscribe", Some(&u64::MAX.to_string())).await;
    nothing_more(&mut last).await;
}

#[tokio::test]
async fn filters_apply_and_heartbeats_flow_while_idle() {
    let app = TestApp::new();
    // Positions 1-2 are of another stream, 3 of the right stream but another type.
    app.seed("customer-C2", json!([registered(), nps(1)])).await;
    app.seed("customer-C1", json!([registered(), nps(2)])).await;
    let mut sse = open(
        &app,
        "/v1/subscribe?types=NpsRecorded&stream_prefix=customer-C1",
        None,
    )
    .await;
    let b = sse.next_event().await;
    assert_eq!(
        (b.id.as_deref(), b.event.as_deref()),
        (Some("4"), Some("NpsRecorded"))
    );
    // Nothing else matches: the next block is a heartbeat comment (interval 100 ms in tests).
    let hb = sse.next_block().await;
    assert_eq!(hb.comment.as_deref(), Some("heartbeat"));
    app.seed("customer-C2", json!([nps(3)])).await;
    app.seed("customer-C1", json!([updated(), nps(4)])).await;
    assert_eq!(sse.next_event().await.id.as_deref(), Some("7"));
}

#[tokio::test]
async fn a_consumer_resumes_after_its_last_ack() {
    let app = TestApp::new();
    let service = app.token("service", "billing");
    let r = app
        .call(request(
            Method::PUT,
            "/v1/consumers/billing",
            Some(&service),
            None,
        ))
        .await;
    assert_eq!(r.status, 201);
    assert_eq!(r.json()["position"], 0);
    let again = app
        .call(request(
            Method::PUT,
            "/v1/consumers/billing",
            Some(&service),
            None,
        ))
        .await;
    assert_eq!(again.status, 200);

    app.seed("customer-C1", json!([registered(), nps(1), nps(2)]))
        .await;
    let acked = app
        .post("/v1/consumers/billing/ack", &service, r#"{"position": 2}"#)
        .await;
    assert_eq!(acked.json()["position"], 2);
    // An older ack does not move it back; an ack past the end of the log is refused.
    let older = app
        .post("/v1/consumers/billing/ack", &service, r#"{"position": 1}"#)
        .await;
    assert_eq!(older.json()["position"], 2);
    app.post("/v1/consumers/billing/ack", &service, r#"{"position": 99}"#)
        .await
        .problem(400);
    app.post("/v1/consumers/ghost/ack", &service, r#"{"position": 1}"#)
        .await
        .problem(404);
    assert_eq!(
        app.get("/v1/consumers/billing", &service).await.json()["position"],
        2
    );

    let mut sse = open(&app, "/v1/subscribe?consumer=billing", None).await;
    assert_eq!(sse.next_event().await.id.as_deref(), Some("3"));

    // Consumers are for admin and service; an analyst may look.
    let analyst = app.token("analyst", "bi");
    assert_eq!(app.get("/v1/consumers/billing", &analyst).await.status, 200);
    app.call(request(
        Method::PUT,
        "/v1/consumers/x",
        Some(&analyst),
        None,
    ))
    .await
    .problem(403);
    let rep = app.token("rep", "wukong");
    app.get("/v1/consumers/billing", &rep).await.problem(403);
}

fn app_with_window(sse_window: usize) -> Arc<TestApp> {
    let config = ApiConfig {
        sse_window,
        ..test_config()
    };
    Arc::new(TestApp::with_config(
        Arc::new(MemoryStore::with_validator(
            Arc::new(DomainRules::default()),
        )),
        tempfile::tempdir().unwrap(),
        config,
    ))
}

/// Reads `n` events and returns their positions.
async fn positions(sse: &mut SseReader<axum::body::Body>, n: usize) -> Vec<u64> {
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        out.push(sse.next_event().await.id.unwrap().parse().unwrap());
    }
    out
}

/// Asserts that the next block is a heartbeat, i.e. no further event is pending.
async fn nothing_more(sse: &mut SseReader<axum::body::Body>) {
    let b = sse.next_block().await;
    assert_eq!(b.comment.as_deref(), Some("heartbeat"), "unexpected {b:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catch_up_hands_over_to_the_shared_feed_without_loss_or_repeat() {
    let app = app_with_window(64);
    // 600 events before anyone subscribes: more than two store pages of catch-up.
    for i in 0..6 {
        let batch: Vec<Value> = (0..100)
            .map(|k| if k == 0 { registered() } else { nps(9) })
            .collect();
        app.seed(&format!("customer-S{i}"), json!(batch)).await;
    }
    // The fan-out starts with the first subscriber, at the end of the log.
    let mut live = open(&app, "/v1/subscribe?from_position=601", None).await;
    let writer = tokio::spawn({
        let app = app.clone();
        async move {
            for k in 0..200 {
                let first = if k == 0 { registered() } else { nps(1) };
                app.seed("customer-W", json!([first, nps(2)])).await;
            }
        }
    });
    // Subscribers from the start join while the writer appends: each catches up from the
    // store and switches to the shared feed at some moment during the appends.
    let mut readers = Vec::new();
    for k in 0..4u64 {
        let app = app.clone();
        readers.push(tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(k * 7)).await;
            let mut sse = open(&app, "/v1/subscribe", None).await;
            let got = positions(&mut sse, 1000).await;
            nothing_more(&mut sse).await;
            got
        }));
    }
    assert_eq!(
        positions(&mut live, 400).await,
        (601..=1000).collect::<Vec<u64>>()
    );
    writer.await.unwrap();
    for r in readers {
        assert_eq!(r.await.unwrap(), (1..=1000).collect::<Vec<u64>>());
    }
    nothing_more(&mut live).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_behind_the_window_still_gets_everything_in_order() {
    let app = app_with_window(2);
    let mut all = open(&app, "/v1/subscribe", None).await;
    let mut only_b = open(&app, "/v1/subscribe?types=NpsRecorded", None).await;
    // Neither body is read while 60 events are appended: both fall far behind a window
    // of 2 (and the appends do not wait for them).
    for k in 0..20 {
        let first = if k == 0 { registered() } else { updated() };
        app.seed("customer-C1", json!([first, nps(k % 11), updated()]))
            .await;
    }
    assert_eq!(
        positions(&mut all, 60).await,
        (1..=60).collect::<Vec<u64>>()
    );
    let bs: Vec<u64> = (0..20).map(|i| 3 * i + 2).collect();
    assert_eq!(positions(&mut only_b, 20).await, bs);
    // Back within the window: live events still come, once.
    app.seed("customer-C1", json!([nps(9)])).await;
    assert_eq!(positions(&mut all, 1).await, vec![61]);
    assert_eq!(positions(&mut only_b, 1).await, vec![61]);
    nothing_more(&mut all).await;
    nothing_more(&mut only_b).await;
    assert_metric(&app, "dealtrail_events_streamed_total 82").await;
}

#[tokio::test]
async fn a_new_subscriber_after_all_left_gets_a_working_feed() {
    let app = app_with_window(8);
    let mut first = open(&app, "/v1/subscribe", None).await;
    app.seed("customer-C1", json!([registered()])).await;
    assert_eq!(positions(&mut first, 1).await, vec![1]);
    drop(first);
    // The feed notices nobody follows it at its next batch, and stops.
    app.seed("customer-C1", json!([nps(1)])).await;
    app.seed("customer-C1", json!([nps(2)])).await;
    let mut second = open(&app, "/v1/subscribe?from_position=2", None).await;
    app.seed("customer-C1", json!([nps(3)])).await;
    assert_eq!(positions(&mut second, 3).await, vec![2, 3, 4]);
    nothing_more(&mut second).await;
}

/// A store whose subscriptions fail with a backend error after `ok` events.
struct SubscriptionFails {
    inner: MemoryStore,
    ok: usize,
}

impl Hooks for SubscriptionFails {
    fn inner(&self) -> &MemoryStore {
        &self.inner
    }

    fn subscribe(
        &self,
        from: u64,
        filter: Filter,
    ) -> BoxStream<'static, Result<RecordedEvent, StoreError>> {
        let failure = futures::stream::iter([Err(StoreError::Backend("disk on fire".into()))]);
        self.inner
            .subscribe(from, filter)
            .take(self.ok)
            .chain(failure)
            .boxed()
    }
}

#[tokio::test]
async fn a_store_error_in_the_feed_ends_subscriptions_with_an_error_event() {
    let store = SubscriptionFails {
        inner: MemoryStore::with_validator(Arc::new(DomainRules::default())),
        ok: 2,
    };
    let dir = tempfile::tempdir().unwrap();
    let (state, _) = AppState::open(
        Arc::new(Hooked(store)),
        dir.path(),
        test_config(),
        Some(ADMIN),
    )
    .unwrap();
    let app = TestApp { state, dir };
    app.seed("customer-C1", json!([registered()])).await;
    let mut sse = open(&app, "/v1/subscribe", None).await;
    assert_eq!(positions(&mut sse, 1).await, vec![1]);
    // The feed follows from position 2: two events, then the failure.
    app.seed("customer-C1", json!([nps(1), nps(2), nps(3)]))
        .await;
    assert_eq!(positions(&mut sse, 2).await, vec![2, 3]);
    let err = sse.next_event().await;
    assert_eq!(err.event.as_deref(), Some("error"));
    let problem: Value = serde_json::from_str(&err.data).unwrap();
    assert_eq!(problem["status"], 500, "{problem}");
    assert!(
        !err.data.contains("disk on fire"),
        "backend details stay in the log"
    );
    assert!(sse.ends().await);
}
