//! SSE: catch-up then live, `Last-Event-ID`, filters, heartbeats, durable consumers.

use axum::http::{Method, StatusCode};
use serde_json::{json, Value};
use tower::ServiceExt;

use crate::helpers::*;

fn ev(t: &str) -> Value {
    json!({"type": t, "data": {}})
}

async fn open(
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

#[tokio::test]
async fn catch_up_then_live_in_canonical_form() {
    let app = TestApp::new();
    app.seed("deal-D1", json!([ev("A"), ev("B"), ev("C")]))
        .await;
    let mut sse = open(&app, "/v1/subscribe?from_position=2", None).await;
    let b = sse.next_event().await;
    assert_eq!(b.id.as_deref(), Some("2"));
    assert_eq!(b.event.as_deref(), Some("B"));
    let stored = app
        .get("/v1/streams/deal-D1?from_version=1&limit=1", ADMIN)
        .await
        .json();
    assert_eq!(
        serde_json::from_str::<Value>(&b.data).unwrap(),
        stored["events"][0]
    );
    assert!(!b.data.contains('\n'));
    assert_eq!(sse.next_event().await.id.as_deref(), Some("3"));

    // Live: appended after the subscription started.
    app.seed("customer-C1", json!([ev("D")])).await;
    let live = sse.next_event().await;
    assert_eq!(
        (live.id.as_deref(), live.event.as_deref()),
        (Some("4"), Some("D"))
    );
    let data: Value = serde_json::from_str(&live.data).unwrap();
    assert_eq!(data["stream"], "customer-C1");
    assert_eq!(data["position"], 4);

    assert!(app
        .get("/metrics", ADMIN)
        .await
        .body
        .windows(24)
        .any(|w| w == b"dealtrail_subscribers 1\n"));
    drop(sse);
}

#[tokio::test]
async fn last_event_id_takes_precedence_and_resumes_after_it() {
    let app = TestApp::new();
    app.seed("deal-D1", json!([ev("A"), ev("B"), ev("C"), ev("D")]))
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
}

#[tokio::test]
async fn filters_apply_and_heartbeats_flow_while_idle() {
    let app = TestApp::new();
    app.seed("deal-D1", json!([ev("A"), ev("B")])).await;
    app.seed("customer-C1", json!([ev("B")])).await;
    let mut sse = open(&app, "/v1/subscribe?types=B&stream_prefix=customer-", None).await;
    let b = sse.next_event().await;
    assert_eq!(
        (b.id.as_deref(), b.event.as_deref()),
        (Some("3"), Some("B"))
    );
    // Nothing else matches: the next block is a heartbeat comment (interval 100 ms in tests).
    let hb = sse.next_block().await;
    assert_eq!(hb.comment.as_deref(), Some("heartbeat"));
    app.seed("deal-D1", json!([ev("B")])).await;
    app.seed("customer-C1", json!([ev("A"), ev("B")])).await;
    assert_eq!(sse.next_event().await.id.as_deref(), Some("6"));
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

    app.seed("deal-D1", json!([ev("A"), ev("B"), ev("C")]))
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
