//! Managing durable consumers (SPEC §6): list with lag, reset anywhere (backwards
//! included) and resume there, delete; who may; the lag gauge in `/metrics`.

use axum::http::Method;
use serde_json::json;

use crate::helpers::*;
use crate::subscribe::{assert_metric, nps, open, registered};

fn put(name: &str, token: &str) -> axum::http::Request<axum::body::Body> {
    request(
        Method::PUT,
        &format!("/v1/consumers/{name}"),
        Some(token),
        None,
    )
}

fn delete(name: &str, token: &str) -> axum::http::Request<axum::body::Body> {
    request(
        Method::DELETE,
        &format!("/v1/consumers/{name}"),
        Some(token),
        None,
    )
}

#[tokio::test]
async fn a_reset_backwards_replays_from_there_and_the_list_shows_each_lag() {
    let app = TestApp::new();
    let service = app.token("service", "billing");
    assert_eq!(app.call(put("billing", &service)).await.status, 201);
    assert_eq!(app.call(put("audit", &service)).await.status, 201);
    // Five events: positions 1..=5.
    app.seed(
        "customer-C1",
        json!([registered(), nps(1), nps(2), nps(3), nps(4)]),
    )
    .await;
    app.post("/v1/consumers/billing/ack", &service, r#"{"position": 4}"#)
        .await;

    let list = app.get("/v1/consumers", &service).await;
    assert_eq!(list.status, 200);
    assert_eq!(
        list.json(),
        json!({"consumers": [
            {"name": "audit", "position": 0, "lag": 5},
            {"name": "billing", "position": 4, "lag": 1},
        ], "head": 5})
    );
    assert_metric(
        &app,
        "dealtrail_consumer_lag_events{consumer=\"billing\"} 1",
    )
    .await;
    assert_metric(&app, "dealtrail_consumer_lag_events{consumer=\"audit\"} 5").await;

    // Backwards: the next subscription with this consumer starts at position 3.
    let reset = app
        .post(
            "/v1/consumers/billing/reset",
            &service,
            r#"{"position": 2}"#,
        )
        .await;
    assert_eq!(reset.status, 200);
    assert_eq!(reset.json()["position"], 2);
    assert_eq!(
        app.get("/v1/consumers/billing", &service).await.json()["position"],
        2
    );
    assert_metric(
        &app,
        "dealtrail_consumer_lag_events{consumer=\"billing\"} 3",
    )
    .await;
    let mut sse = open(&app, "/v1/subscribe?consumer=billing", None).await;
    let ids: Vec<_> = [
        sse.next_event().await,
        sse.next_event().await,
        sse.next_event().await,
    ]
    .into_iter()
    .map(|e| e.id.unwrap())
    .collect();
    assert_eq!(ids, ["3", "4", "5"]);

    // 0 = from the start; the head itself is allowed (nothing to replay); past it is a 422.
    let from_start = app
        .post(
            "/v1/consumers/billing/reset",
            &service,
            r#"{"position": 0}"#,
        )
        .await;
    assert_eq!(from_start.json()["position"], 0);
    let mut sse = open(&app, "/v1/subscribe?consumer=billing", None).await;
    assert_eq!(sse.next_event().await.id.as_deref(), Some("1"));
    let at_head = app
        .post(
            "/v1/consumers/billing/reset",
            &service,
            r#"{"position": 5}"#,
        )
        .await;
    assert_eq!(at_head.json()["position"], 5);
    let past = app
        .post(
            "/v1/consumers/billing/reset",
            &service,
            r#"{"position": 6}"#,
        )
        .await
        .problem(422);
    assert_eq!(past["field"], "position");
    assert_eq!(
        app.get("/v1/consumers/billing", &service).await.json()["position"],
        5
    );

    // Bad bodies and unknown consumers.
    app.post(
        "/v1/consumers/billing/reset",
        &service,
        r#"{"position": -1}"#,
    )
    .await
    .problem(400);
    app.post("/v1/consumers/billing/reset", &service, r#"{"pos": 1}"#)
        .await
        .problem(400);
    app.post("/v1/consumers/ghost/reset", &service, r#"{"position": 1}"#)
        .await
        .problem(404);

    // Delete: gone from the list, the gauge and subscriptions; a second delete is a 404.
    assert_eq!(app.call(delete("audit", &service)).await.status, 204);
    app.call(delete("audit", &service)).await.problem(404);
    app.call(delete("bad%20name", &service)).await.problem(400);
    let names: Vec<_> = app.get("/v1/consumers", &service).await.json()["consumers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].clone())
        .collect();
    assert_eq!(names, [json!("billing")]);
    let metrics = app.get("/metrics", ADMIN).await.body;
    assert!(!String::from_utf8_lossy(&metrics).contains("consumer=\"audit\""));
    app.get("/v1/subscribe?consumer=audit", ADMIN)
        .await
        .problem(404);
}

#[tokio::test]
async fn admin_and_service_manage_consumers_an_analyst_only_looks() {
    let app = TestApp::new();
    let service = app.token("service", "billing");
    app.call(put("billing", &service)).await;
    let analyst = app.token("analyst", "bi");
    assert_eq!(app.get("/v1/consumers", &analyst).await.status, 200);
    app.post(
        "/v1/consumers/billing/reset",
        &analyst,
        r#"{"position": 0}"#,
    )
    .await
    .problem(403);
    app.call(delete("billing", &analyst)).await.problem(403);
    for role in ["rep", "manager"] {
        let t = app.token(role, "wukong");
        app.get("/v1/consumers", &t).await.problem(403);
    }
    app.get("/v1/consumers", "not-a-token").await.problem(401);
    assert_eq!(
        app.post("/v1/consumers/billing/reset", ADMIN, r#"{"position": 0}"#)
            .await
            .status,
        200
    );
    assert_eq!(app.call(delete("billing", ADMIN)).await.status, 204);
}
