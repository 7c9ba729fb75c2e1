//! Every client mistake is a 4xx `application/problem+json` with a precise detail.

use axum::body::Body;
use axum::http::{Method, Request};
use serde_json::json;

use crate::helpers::*;

struct Case {
    name: &'static str,
    method: Method,
    path: String,
    body: Option<String>,
    status: u16,
    /// Text the detail must contain (case-insensitive).
    detail: &'static str,
    /// The `field` extension, when the problem names one.
    field: Option<&'static str>,
}

fn post(
    name: &'static str,
    path: &str,
    body: &str,
    status: u16,
    detail: &'static str,
    field: Option<&'static str>,
) -> Case {
    Case {
        name,
        method: Method::POST,
        path: path.into(),
        body: Some(body.into()),
        status,
        detail,
        field,
    }
}

fn get(
    name: &'static str,
    path: &str,
    status: u16,
    detail: &'static str,
    field: Option<&'static str>,
) -> Case {
    Case {
        name,
        method: Method::GET,
        path: path.into(),
        body: None,
        status,
        detail,
        field,
    }
}

const APPEND: &str = "/v1/streams/deal-D1/events";

#[tokio::test]
async fn bad_inputs_are_answered_with_the_right_problem() {
    let app = TestApp::new();
    // Positions 1-3: the organisation and wukong's customer C1; 4: deal D1 opened on it.
    app.seed_org(&["wukong"]).await;
    app.seed_customer("C1", "wukong").await;
    app.seed(
        "deal-D1",
        json!([{"type": "DealOpened", "data": {"customer_id": "C1", "owner": "wukong",
            "title": "t", "amount": 1, "stage": "qualified"}}]),
    )
    .await;
    let ev = r#"{"type":"X","data":{}}"#;
    let too_many = format!(r#"{{"events":[{}]}}"#, vec![ev; 1001].join(","));
    let oversized = format!(
        r#"{{"events":[{{"type":"X","data":{{"blob":"{}"}}}}]}}"#,
        "x".repeat(1024 * 1024 + 10)
    );
    let cases = vec![
        post(
            "malformed JSON",
            APPEND,
            r#"{"events": ["#,
            400,
            "malformed JSON",
            None,
        ),
        post("not an object", APPEND, r#"[1,2]"#, 400, "invalid", None),
        post(
            "events of the wrong type",
            APPEND,
            r#"{"events": "nope"}"#,
            400,
            "events",
            Some("events"),
        ),
        post(
            "data of the wrong type",
            APPEND,
            r#"{"events": [{"type": "X", "data": 5, "actor": 7}]}"#,
            400,
            "events[0]",
            Some("events[0].actor"),
        ),
        post(
            "event without a type",
            APPEND,
            r#"{"events": [{"data": {}}]}"#,
            400,
            "type",
            None,
        ),
        post(
            "unknown field in an event",
            APPEND,
            r#"{"events": [{"type": "X", "data": {}, "colour": 1}]}"#,
            400,
            "colour",
            None,
        ),
        post(
            "unknown top-level field",
            APPEND,
            &format!(r#"{{"expected": 1, "events": [{ev}]}}"#),
            400,
            "expected",
            None,
        ),
        post(
            "recorded_at is not the client's",
            APPEND,
            r#"{"events": [{"type": "X", "data": {}, "recorded_at": "2026-01-01T00:00:00Z"}]}"#,
            400,
            "recorded_at",
            None,
        ),
        post(
            "expected_version of the wrong type",
            APPEND,
            &format!(r#"{{"expected_version": "latest", "events": [{ev}]}}"#),
            400,
            "expected_version",
            Some("expected_version"),
        ),
        post(
            "negative expected_version",
            APPEND,
            &format!(r#"{{"expected_version": -1, "events": [{ev}]}}"#),
            400,
            "expected_version",
            Some("expected_version"),
        ),
        post(
            "bad occurred_at",
            APPEND,
            r#"{"events": [{"type": "X", "data": {}, "occurred_at": "yesterday"}]}"#,
            400,
            "RFC 3339",
            Some("events[0].occurred_at"),
        ),
        post(
            "bad id",
            APPEND,
            r#"{"events": [{"id": "not-a-uuid", "type": "X", "data": {}}]}"#,
            400,
            "events[0].id",
            Some("events[0].id"),
        ),
        post(
            "empty batch",
            APPEND,
            r#"{"events": []}"#,
            400,
            "at least one event",
            Some("events"),
        ),
        post(
            "unknown stream category",
            "/v1/streams/deals-D1/events",
            &format!(r#"{{"events": [{ev}]}}"#),
            400,
            "unknown stream category",
            Some("stream"),
        ),
        post(
            "no category separator",
            "/v1/streams/deal/events",
            &format!(r#"{{"events": [{ev}]}}"#),
            400,
            "<category>-<entity id>",
            Some("stream"),
        ),
        post(
            "bad entity id",
            "/v1/streams/deal-a%20b/events",
            &format!(r#"{{"events": [{ev}]}}"#),
            400,
            "entity id",
            Some("stream"),
        ),
        post(
            "too long entity id",
            &format!("/v1/streams/deal-{}/events", "x".repeat(65)),
            &format!(r#"{{"events": [{ev}]}}"#),
            400,
            "entity id",
            Some("stream"),
        ),
        post(
            "too many events",
            APPEND,
            &too_many,
            413,
            "at most 1000",
            None,
        ),
        post(
            "oversized body",
            APPEND,
            &oversized,
            413,
            "larger than",
            None,
        ),
        post(
            "consumer ack without position",
            "/v1/consumers/c1/ack",
            "{}",
            400,
            "position",
            None,
        ),
        post(
            "token with an unknown role",
            "/v1/tokens",
            r#"{"role": "king", "subject": "x"}"#,
            400,
            "role",
            Some("role"),
        ),
        post(
            "rep token without a subject",
            "/v1/tokens",
            r#"{"role": "rep"}"#,
            400,
            "subject",
            Some("subject"),
        ),
        get(
            "non-numeric limit",
            "/v1/events?limit=abc",
            400,
            "limit",
            Some("limit"),
        ),
        get(
            "limit over the page size",
            "/v1/events?limit=5000",
            400,
            "maximum page size 1000",
            Some("limit"),
        ),
        get(
            "zero limit",
            "/v1/events?limit=0",
            400,
            "at least 1",
            Some("limit"),
        ),
        get(
            "negative from_position",
            "/v1/events?from_position=-1",
            400,
            "from_position",
            Some("from_position"),
        ),
        get(
            "unknown query parameter",
            "/v1/events?form_position=1",
            400,
            "form_position",
            None,
        ),
        get(
            "bad from_version",
            "/v1/streams/deal-D1?from_version=x",
            400,
            "from_version",
            Some("from_version"),
        ),
        get(
            "bad stream name on read",
            "/v1/streams/nope-1",
            400,
            "unknown stream category",
            Some("stream"),
        ),
        get(
            "bad subscribe parameter",
            "/v1/subscribe?from_position=soon",
            400,
            "from_position",
            Some("from_position"),
        ),
        get(
            "unknown consumer on subscribe",
            "/v1/subscribe?consumer=ghost",
            404,
            "ghost",
            None,
        ),
        get(
            "bad consumer name",
            "/v1/consumers/a%20b",
            400,
            "consumer name",
            Some("name"),
        ),
        get(
            "unknown consumer",
            "/v1/consumers/ghost",
            404,
            "ghost",
            None,
        ),
        get("unknown route", "/v1/nope", 404, "no such route", None),
        get(
            "unknown route outside v1",
            "/favicon.ico",
            404,
            "no such route",
            None,
        ),
        Case {
            name: "wrong method",
            method: Method::DELETE,
            path: "/v1/events".into(),
            body: None,
            status: 405,
            detail: "method",
            field: None,
        },
        Case {
            name: "wrong method on append",
            method: Method::GET,
            path: APPEND.into(),
            body: None,
            status: 405,
            detail: "method",
            field: None,
        },
    ];
    for c in cases {
        let r = app
            .call(request(
                c.method.clone(),
                &c.path,
                Some(ADMIN),
                c.body.clone(),
            ))
            .await;
        assert_eq!(
            r.status.as_u16(),
            c.status,
            "{}: {}",
            c.name,
            String::from_utf8_lossy(&r.body[..r.body.len().min(500)])
        );
        let p = r.problem(c.status);
        let detail = p["detail"].as_str().unwrap();
        assert!(
            detail.to_lowercase().contains(&c.detail.to_lowercase()),
            "{}: detail {detail:?} should mention {:?}",
            c.name,
            c.detail
        );
        if let Some(f) = c.field {
            assert_eq!(p["field"], f, "{}: {p}", c.name);
        }
        if c.status == 405 {
            assert!(r.headers.contains_key("allow"), "{}", c.name);
        }
    }
    // Nothing of the above was written.
    assert_eq!(
        app.get("/v1/events", ADMIN).await.json()["head_position"],
        4
    );
}

/// Found with the `append_body` fuzz target's invariant (an accepted body is the JSON
/// document it appends): a body followed by anything (here a second body) was taken,
/// the rest silently dropped, and answered 201.
#[tokio::test]
async fn a_body_with_characters_after_its_json_is_refused_and_writes_nothing() {
    let app = TestApp::new();
    app.seed_org(&["wukong"]).await;
    app.seed_customer("C1", "wukong").await;
    let one = json!({"events": [{"type": "DealOpened", "data": {"customer_id": "C1",
        "owner": "wukong", "title": "t", "amount": 1, "stage": "qualified"}}]});
    let body = format!("{one} {one}");
    let p = app.post(APPEND, ADMIN, &body).await.problem(400);
    let detail = p["detail"].as_str().unwrap();
    assert!(detail.contains("trailing characters"), "{detail}");
    assert_eq!(
        app.get("/v1/streams/deal-D1", ADMIN).await.status.as_u16(),
        404
    );
    // Whitespace after the document is no mistake.
    assert_eq!(
        app.post(APPEND, ADMIN, &format!("{one} \n"))
            .await
            .status
            .as_u16(),
        201
    );
}

#[tokio::test]
async fn a_body_that_is_not_json_is_a_415() {
    let app = TestApp::new();
    let req = Request::builder()
        .method(Method::POST)
        .uri(APPEND)
        .header("authorization", format!("Bearer {ADMIN}"))
        .header("content-type", "text/plain")
        .body(Body::from("{}"))
        .unwrap();
    let p = app.call(req).await.problem(415);
    assert!(p["detail"].as_str().unwrap().contains("application/json"));
}

#[tokio::test]
async fn responses_carry_a_request_id() {
    let app = TestApp::new();
    let r = app.get("/v1/nope", ADMIN).await;
    assert!(r.headers.contains_key("x-request-id"));
    let ok = app.get("/healthz", ADMIN).await;
    assert!(ok.headers.contains_key("x-request-id"));
}
