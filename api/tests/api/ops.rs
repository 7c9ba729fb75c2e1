//! `/healthz`, `/metrics`, `/openapi.json`.

use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn healthz_reports_the_log_position() {
    let app = TestApp::new();
    app.seed(
        "customer-C1",
        json!([{"type": "CustomerRegistered", "data": {"name": "x"}}]),
    )
    .await;
    let r = app.get("/healthz", "").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json(), json!({"status": "ok", "last_position": 1}));
}

#[tokio::test]
async fn metrics_count_appends_latency_and_reads() {
    let app = TestApp::new();
    app.seed(
        "customer-C1",
        json!([{"type": "CustomerRegistered", "data": {"name": "x"}},
            {"type": "NpsRecorded", "data": {"score": 9}}]),
    )
    .await;
    app.append(
        "customer-C1",
        ADMIN,
        json!({"expected_version": 0, "events": [{"type": "NpsRecorded", "data": {"score": 8}}]}),
    )
    .await
    .problem(409);
    app.get("/v1/events", ADMIN).await;
    let r = app.get("/metrics", "").await;
    assert_eq!(r.status, 200);
    assert!(r.content_type().starts_with("text/plain; version=0.0.4"));
    let text = String::from_utf8(r.body.to_vec()).unwrap();
    for line in [
        "dealtrail_appends_total{result=\"ok\"} 1",
        "dealtrail_appends_total{result=\"conflict\"} 1",
        "dealtrail_events_appended_total 2",
        "dealtrail_append_duration_seconds_count 2",
        "dealtrail_append_duration_seconds_bucket{le=\"+Inf\"} 2",
        "dealtrail_events_read_total 2",
        "dealtrail_subscribers 0",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing {line:?} in\n{text}"
        );
    }
}

#[tokio::test]
async fn openapi_describes_every_endpoint() {
    let app = TestApp::new();
    let doc = app.get("/openapi.json", "").await.json();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    for (path, method) in [
        ("/v1/streams/{stream}/events", "post"),
        ("/v1/streams/{stream}", "get"),
        ("/v1/events", "get"),
        ("/v1/subscribe", "get"),
        ("/v1/consumers/{name}", "put"),
        ("/v1/consumers/{name}", "get"),
        ("/v1/consumers/{name}/ack", "post"),
        ("/v1/tokens", "post"),
        ("/healthz", "get"),
        ("/metrics", "get"),
        ("/openapi.json", "get"),
        ("/v1/reports/funnel", "get"),
        ("/v1/reports/follow-up", "get"),
        ("/v1/consumers", "get"),
        ("/v1/consumers/{name}", "delete"),
        ("/v1/consumers/{name}/reset", "post"),
        ("/v1/pool", "get"),
        ("/v1/deals/{id}", "get"),
        ("/v1/deals/{id}/replay", "get"),
        ("/v1/customers/{id}", "get"),
        ("/v1/customers/{id}/timeline", "get"),
    ] {
        assert!(
            doc["paths"][path][method].is_object(),
            "{method} {path} undocumented"
        );
    }
    let append = &doc["paths"]["/v1/streams/{stream}/events"]["post"];
    assert!(append["requestBody"].is_object());
    for status in ["201", "400", "401", "403", "409", "413", "422"] {
        assert!(append["responses"][status].is_object(), "append {status}");
    }
    for schema in [
        "AppendRequest",
        "Appended",
        "ProblemDoc",
        "CanonicalEvent",
        "ProposedCanonicalEvent",
        "Event",
        "EventEnvelope",
        "LogPage",
        "StreamPage",
        "Checkpoint",
    ] {
        assert!(
            doc["components"]["schemas"][schema].is_object(),
            "schema {schema}"
        );
    }
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
}
