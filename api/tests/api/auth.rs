//! Tokens, roles and scope: 401 without a valid token, 404 for out-of-scope reads and
//! writes (as for a missing stream), 403 for what a role may not do at all. The whole read
//! matrix and the writes that must not reveal existence: `scope.rs`.

use axum::http::Method;
use serde_json::{json, Value};

use crate::helpers::*;

pub(crate) struct Org {
    pub(crate) app: TestApp,
    pub(crate) manager: String,
    pub(crate) rep: String,
    pub(crate) analyst: String,
    pub(crate) service: String,
}

/// Team east: wukong; team west: bajie. Each owns a customer and a deal; one customer is
/// in the pool.
pub(crate) async fn org() -> Org {
    let app = TestApp::new();
    app.seed(
        "org-acme",
        json!([
            {"type": "RepJoined", "data": {"rep": "wukong", "name": "Sun Wukong", "team": "east"}},
            {"type": "RepJoined", "data": {"rep": "bajie", "name": "Zhu Bajie", "team": "west"}},
        ]),
    )
    .await;
    app.seed(
        "customer-C1",
        json!([{"type": "CustomerRegistered", "data": {"name": "one", "owner": "wukong"}}]),
    )
    .await;
    app.seed(
        "customer-C2",
        json!([{"type": "CustomerRegistered", "data": {"name": "two", "owner": "bajie"}}]),
    )
    .await;
    app.seed(
        "customer-P",
        json!([{"type": "CustomerRegistered", "data": {"name": "pooled"}}]),
    )
    .await;
    app.seed("deal-D1", json!([{"type": "DealOpened", "data": {"customer_id": "C1", "owner": "wukong", "title": "a", "amount": 1, "stage": "qualified"}}])).await;
    app.seed("deal-D2", json!([{"type": "DealOpened", "data": {"customer_id": "C2", "owner": "bajie", "title": "b", "amount": 1, "stage": "qualified"}}])).await;
    app.seed(
        "lead-L1",
        json!([{"type": "LeadCaptured", "data": {"channel": "web", "name": "l"}}]),
    )
    .await;
    Org {
        manager: app.token("manager", "east"),
        rep: app.token("rep", "wukong"),
        analyst: app.token("analyst", "bi"),
        service: app.token("service", "billing"),
        app,
    }
}

fn activity(rep: &str) -> Value {
    json!({"events": [{"type": "ActivityLogged", "data": {"kind": "call", "rep": rep}}]})
}

#[tokio::test]
async fn reads_follow_the_role_matrix() {
    let o = org().await;
    let streams = [
        "deal-D1",
        "deal-D2",
        "customer-C1",
        "customer-C2",
        "customer-P",
        "lead-L1",
        "org-acme",
    ];
    let expect: [(&str, &str, [u16; 7]); 5] = [
        ("admin", ADMIN, [200, 200, 200, 200, 200, 200, 200]),
        (
            "manager east",
            &o.manager,
            [200, 404, 200, 404, 200, 200, 404],
        ),
        ("rep wukong", &o.rep, [200, 404, 200, 404, 200, 200, 404]),
        ("analyst", &o.analyst, [200; 7]),
        ("service", &o.service, [200; 7]),
    ];
    for (who, token, statuses) in expect {
        for (stream, status) in streams.iter().zip(statuses) {
            let r = o.app.get(&format!("/v1/streams/{stream}"), token).await;
            assert_eq!(r.status.as_u16(), status, "{who} reading {stream}");
            if status == 404 {
                let p = r.problem(404);
                assert_eq!(
                    p["detail"],
                    format!("stream {stream} not found"),
                    "hidden, same as missing"
                );
            }
        }
        // A stream that does not exist looks the same as one out of scope.
        o.app.get("/v1/streams/deal-D404", token).await.problem(404);
    }
    for (who, token, status) in [
        ("admin", ADMIN, 200),
        ("analyst", o.analyst.as_str(), 200),
        ("service", o.service.as_str(), 200),
        ("manager", o.manager.as_str(), 403),
        ("rep", o.rep.as_str(), 403),
    ] {
        let r = o.app.get("/v1/events", token).await;
        assert_eq!(r.status.as_u16(), status, "{who} reading the log");
        if status == 403 {
            o.app.get("/v1/subscribe", token).await.problem(403);
        }
    }
}

#[tokio::test]
async fn writes_follow_the_role_matrix() {
    let o = org().await;
    let cases: Vec<(&str, &str, &str, Value, u16)> = vec![
        (
            "admin, other team's deal",
            ADMIN,
            "deal-D2",
            activity("bajie"),
            201,
        ),
        (
            "manager, own team's deal",
            &o.manager,
            "deal-D1",
            activity("wukong"),
            201,
        ),
        (
            "manager, other team's deal",
            &o.manager,
            "deal-D2",
            activity("bajie"),
            404,
        ),
        (
            "manager, other team's customer",
            &o.manager,
            "customer-C2",
            activity("bajie"),
            404,
        ),
        (
            "manager, org stream",
            &o.manager,
            "org-acme",
            json!({"events": [{"type": "RepLeft", "data": {"rep": "bajie"}}]}),
            403,
        ),
        ("rep, own deal", &o.rep, "deal-D1", activity("wukong"), 201),
        (
            "rep, own customer",
            &o.rep,
            "customer-C1",
            activity("wukong"),
            201,
        ),
        (
            "rep, other's deal",
            &o.rep,
            "deal-D2",
            activity("bajie"),
            404,
        ),
        (
            "rep, other's customer",
            &o.rep,
            "customer-C2",
            activity("bajie"),
            404,
        ),
        (
            "rep, a lead",
            &o.rep,
            "lead-L1",
            json!({"events": [{"type": "LeadQualified", "data": {"rep": "wukong"}}]}),
            201,
        ),
        (
            "rep, a channel",
            &o.rep,
            "channel-web",
            json!({"events": [{"type": "SpendRecorded", "data": {"month": "2026-06", "amount": 1}}]}),
            403,
        ),
        (
            "rep, pool customer without claiming",
            &o.rep,
            "customer-P",
            activity("wukong"),
            403,
        ),
        (
            "rep, claiming for someone else",
            &o.rep,
            "customer-P",
            json!({"events": [{"type": "CustomerClaimed", "data": {"rep": "bajie"}}]}),
            403,
        ),
        (
            "rep, as another actor",
            &o.rep,
            "deal-D1",
            json!({"events": [{"type": "ActivityLogged", "actor": "bajie", "data": {"kind": "call", "rep": "bajie"}}]}),
            403,
        ),
        (
            "rep, new deal for someone else",
            &o.rep,
            "deal-D3",
            json!({"events": [{"type": "DealOpened", "data": {"customer_id": "C1", "owner": "bajie", "title": "x", "amount": 1, "stage": "qualified"}}]}),
            403,
        ),
        (
            "rep, new deal of their own",
            &o.rep,
            "deal-D4",
            json!({"events": [{"type": "DealOpened", "data": {"customer_id": "C1", "owner": "wukong", "title": "x", "amount": 1, "stage": "qualified"}}]}),
            201,
        ),
        (
            "rep, new pool customer",
            &o.rep,
            "customer-C9",
            json!({"events": [{"type": "CustomerRegistered", "data": {"name": "new"}}]}),
            201,
        ),
        (
            "manager, new deal for a team rep",
            &o.manager,
            "deal-D5",
            json!({"events": [{"type": "DealOpened", "data": {"customer_id": "C1", "owner": "wukong", "title": "x", "amount": 1, "stage": "qualified"}}]}),
            201,
        ),
        (
            "manager, new deal for another team's rep",
            &o.manager,
            "deal-D6",
            json!({"events": [{"type": "DealOpened", "data": {"customer_id": "C2", "owner": "bajie", "title": "x", "amount": 1, "stage": "qualified"}}]}),
            403,
        ),
        (
            "analyst, anything",
            &o.analyst,
            "deal-D1",
            activity("wukong"),
            403,
        ),
        (
            "service, anything",
            &o.service,
            "deal-D1",
            activity("wukong"),
            403,
        ),
        (
            "rep, claiming a pool customer",
            &o.rep,
            "customer-P",
            json!({"events": [{"type": "CustomerClaimed", "data": {"rep": "wukong"}}, {"type": "ActivityLogged", "data": {"kind": "visit", "rep": "wukong"}}]}),
            201,
        ),
        (
            "rep, the claimed customer is now theirs",
            &o.rep,
            "customer-P",
            activity("wukong"),
            201,
        ),
    ];
    for (name, token, stream, body, status) in cases {
        let r = o.app.append(stream, token, body).await;
        if status == 201 {
            assert_eq!(
                r.status.as_u16(),
                201,
                "{name}: {}",
                String::from_utf8_lossy(&r.body)
            );
        } else {
            r.problem(status);
        }
    }
    // The rep's events carry the rep as actor.
    let d1 = o
        .app
        .get("/v1/streams/deal-D1?from_version=2", ADMIN)
        .await
        .json();
    assert_eq!(d1["events"][0]["actor"], "wukong");
    // The deal reassigned away from wukong leaves the rep's scope: 404 on read.
    o.app.append("deal-D1", ADMIN, json!({"events": [{"type": "DealReassigned", "data": {"from": "wukong", "to": "bajie"}}]})).await;
    o.app.get("/v1/streams/deal-D1", &o.rep).await.problem(404);
}

#[tokio::test]
async fn missing_or_unknown_tokens_are_401_with_a_bearer_challenge() {
    let app = TestApp::new();
    for req in [
        request(Method::GET, "/v1/events", None, None),
        request(Method::GET, "/v1/events", Some("dt_wrong"), None),
        request(
            Method::POST,
            "/v1/streams/deal-D1/events",
            None,
            Some(activity("x").to_string()),
        ),
        request(Method::GET, "/v1/subscribe", None, None),
    ] {
        let r = app.call(req).await;
        r.problem(401);
        assert!(r.headers["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer"));
    }
    let basic = axum::http::Request::builder()
        .uri("/v1/events")
        .header("authorization", "Basic YTpi")
        .body(axum::body::Body::empty())
        .unwrap();
    app.call(basic).await.problem(401);
}

#[tokio::test]
async fn only_an_admin_issues_tokens_and_issued_tokens_work() {
    let app = TestApp::new();
    let r = app
        .post(
            "/v1/tokens",
            ADMIN,
            r#"{"role": "service", "subject": "billing"}"#,
        )
        .await;
    assert_eq!(r.status, 201);
    let issued = r.json();
    assert_eq!(issued["role"], "service");
    let token = issued["token"].as_str().unwrap();
    assert_eq!(app.get("/v1/events", token).await.status, 200);
    app.post("/v1/tokens", token, r#"{"role": "admin"}"#)
        .await
        .problem(403);
    let rep = app.token("rep", "wukong");
    app.post("/v1/tokens", &rep, r#"{"role": "admin"}"#)
        .await
        .problem(403);
    // The token file holds hashes only.
    let raw = std::fs::read_to_string(app.dir.path().join("http/tokens.json")).unwrap();
    assert!(!raw.contains(token) && !raw.contains(ADMIN));
}

#[tokio::test]
async fn without_a_configured_admin_token_one_is_generated_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = std::sync::Arc::new(eventlog::memory::MemoryStore::new());
    let config = api::http::ApiConfig::default;
    let (_, boot) = api::http::AppState::open(store.clone(), dir.path(), config(), None).unwrap();
    let token = boot
        .generated_admin_token
        .expect("generated on first start");
    let (state, boot) = api::http::AppState::open(store, dir.path(), config(), None).unwrap();
    assert!(boot.generated_admin_token.is_none(), "printed only once");
    let app = api::http::router(state);
    use tower::ServiceExt;
    let res = app
        .oneshot(request(Method::GET, "/v1/events", Some(&token), None))
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}
