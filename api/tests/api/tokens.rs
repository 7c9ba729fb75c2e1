//! Token management (SPEC §7): the lifecycle (issue, list, use, revoke, expire), each
//! refusal told apart in the 401's problem+json, admin-only management, the audit trail.

use axum::http::Method;
use serde_json::{json, Value};

use crate::helpers::*;

async fn delete(app: &TestApp, path: &str, token: &str) -> Reply {
    app.call(request(Method::DELETE, path, Some(token), None))
        .await
}

async fn issue(app: &TestApp, body: Value) -> Value {
    let r = app.post("/v1/tokens", ADMIN, &body.to_string()).await;
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    r.json()
}

fn listed(app_list: &Value, id: &str) -> Value {
    app_list["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == id)
        .cloned()
        .unwrap_or_else(|| panic!("token {id} not listed in {app_list}"))
}

#[tokio::test]
async fn a_token_is_issued_listed_used_and_revoked_and_then_refused_as_revoked() {
    let app = TestApp::new();
    let issued = issue(&app, json!({"role": "service", "subject": "billing"})).await;
    let token = issued["token"].as_str().unwrap().to_string();
    let id = issued["id"].as_str().unwrap().to_string();
    assert_eq!(issued["expires_at"], Value::Null);

    let list = app.get("/v1/tokens", ADMIN).await;
    assert_eq!(list.status, 200);
    let raw = String::from_utf8_lossy(&list.body).to_string();
    assert!(!raw.contains(&token) && !raw.contains(ADMIN), "{raw}");
    let hash = blake3::hash(token.as_bytes()).to_hex().to_string();
    assert!(!raw.contains(&hash), "the full hash is not shown either");
    let row = listed(&list.json(), &id);
    assert_eq!(row["role"], "service");
    assert_eq!(row["subject"], "billing");
    assert_eq!(row["status"], "active");
    assert_eq!(row["last_used_at"], Value::Null, "never used yet");
    assert_eq!(row["expires_at"], Value::Null);
    assert!(row["created_at"].as_str().unwrap().ends_with('Z'));
    // The start admin token is listed, marked as such.
    let start: Vec<Value> = list.json()["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["start_admin"] == true)
        .cloned()
        .collect();
    assert_eq!(start.len(), 1);
    assert_eq!(start[0]["role"], "admin");

    let before = chrono::Utc::now();
    assert_eq!(app.get("/v1/events", &token).await.status, 200);
    let row = listed(&app.get("/v1/tokens", ADMIN).await.json(), &id);
    let used: chrono::DateTime<chrono::Utc> =
        row["last_used_at"].as_str().unwrap().parse().unwrap();
    assert!(
        used >= before - chrono::Duration::seconds(1),
        "{used} vs {before}"
    );

    assert_eq!(
        delete(&app, &format!("/v1/tokens/{id}"), ADMIN)
            .await
            .status,
        204
    );
    let p = app.get("/v1/events", &token).await.problem(401);
    assert_eq!(p["reason"], "revoked", "{p}");
    assert!(p["detail"].as_str().unwrap().contains("revoked"), "{p}");
    let row = listed(&app.get("/v1/tokens", ADMIN).await.json(), &id);
    assert_eq!(row["status"], "revoked");
    assert!(row["revoked_at"].is_string());
    // Revoking again changes nothing; an unknown id is a 404.
    assert_eq!(
        delete(&app, &format!("/v1/tokens/{id}"), ADMIN)
            .await
            .status,
        204
    );
    delete(&app, "/v1/tokens/0123456789abcdef", ADMIN)
        .await
        .problem(404);
    // An unknown token says so.
    let p = app.get("/v1/events", "dt_never_issued").await.problem(401);
    assert_eq!(p["reason"], "unknown", "{p}");
    // Revoked survives a restart (the token file).
    let (state, _) = api::http::AppState::open(
        app.state.store.clone(),
        app.dir.path(),
        test_config(),
        Some(ADMIN),
    )
    .unwrap();
    let again = TestApp {
        state,
        dir: tempfile::tempdir().unwrap(),
    };
    let p = again.get("/v1/events", &token).await.problem(401);
    assert_eq!(p["reason"], "revoked");
}

#[tokio::test]
async fn the_start_admin_token_is_not_revoked_by_delete() {
    let app = TestApp::new();
    let list = app.get("/v1/tokens", ADMIN).await.json();
    let start = list["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["start_admin"] == true)
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let p = delete(&app, &format!("/v1/tokens/{start}"), ADMIN)
        .await
        .problem(409);
    assert!(p["detail"]
        .as_str()
        .unwrap()
        .contains("DEALTRAIL_ADMIN_TOKEN"));
    assert_eq!(app.get("/v1/tokens", ADMIN).await.status, 200);
}

#[tokio::test]
async fn a_token_expires_at_its_expires_at_and_then_is_refused_as_expired() {
    let app = TestApp::new();
    let at = chrono::Utc::now() + chrono::Duration::milliseconds(1500);
    let issued = issue(
        &app,
        json!({"role": "analyst", "subject": "bi", "expires_at": at.to_rfc3339()}),
    )
    .await;
    let token = issued["token"].as_str().unwrap().to_string();
    let back: chrono::DateTime<chrono::Utc> =
        issued["expires_at"].as_str().unwrap().parse().unwrap();
    assert_eq!(back, at);
    assert_eq!(app.get("/v1/events", &token).await.status, 200);
    tokio::time::sleep((at - chrono::Utc::now()).to_std().unwrap_or_default()).await;
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let p = app.get("/v1/events", &token).await.problem(401);
    assert_eq!(p["reason"], "expired", "{p}");
    assert!(p["detail"].as_str().unwrap().contains("expired"), "{p}");
    let row = listed(
        &app.get("/v1/tokens", ADMIN).await.json(),
        issued["id"].as_str().unwrap(),
    );
    assert_eq!(row["status"], "expired");
}

#[tokio::test]
async fn expires_at_in_the_past_or_malformed_is_refused_naming_the_field() {
    let app = TestApp::new();
    let past = (chrono::Utc::now() - chrono::Duration::seconds(5)).to_rfc3339();
    let p = app
        .post(
            "/v1/tokens",
            ADMIN,
            &json!({"role": "analyst", "expires_at": past}).to_string(),
        )
        .await
        .problem(422);
    assert_eq!(p["field"], "expires_at");
    let p = app
        .post(
            "/v1/tokens",
            ADMIN,
            &json!({"role": "analyst", "expires_at": "tomorrow"}).to_string(),
        )
        .await
        .problem(400);
    assert_eq!(p["field"], "expires_at");
    let list = app.get("/v1/tokens", ADMIN).await.json();
    assert_eq!(
        list["tokens"].as_array().unwrap().len(),
        1,
        "nothing issued"
    );
}

#[tokio::test]
async fn only_an_admin_lists_and_revokes_tokens() {
    let app = TestApp::new();
    let issued = issue(&app, json!({"role": "analyst", "subject": "bi"})).await;
    let id = issued["id"].as_str().unwrap();
    for role in ["manager", "rep", "analyst", "service"] {
        let token = app.token(role, "someone");
        app.get("/v1/tokens", &token).await.problem(403);
        delete(&app, &format!("/v1/tokens/{id}"), &token)
            .await
            .problem(403);
    }
    let analyst = issued["token"].as_str().unwrap();
    assert_eq!(
        app.get("/v1/events", analyst).await.status,
        200,
        "not revoked"
    );
}

/// Team east: wukong (active) and shaseng (left); team west: bajie.
async fn org(app: &TestApp) {
    app.seed(
        "org-acme",
        json!([
            {"type": "RepJoined", "data": {"rep": "wukong", "name": "Sun Wukong", "team": "east"}},
            {"type": "RepJoined", "data": {"rep": "bajie", "name": "Zhu Bajie", "team": "west"}},
            {"type": "RepJoined", "data": {"rep": "shaseng", "name": "Sha Wujing", "team": "east"}},
            {"type": "RepLeft", "data": {"rep": "shaseng"}},
        ]),
    )
    .await;
}

#[tokio::test]
async fn tokens_for_unknown_or_left_reps_and_teamless_managers_are_422_naming_subject() {
    let app = TestApp::new();
    org(&app).await;
    for (role, subject, says) in [
        ("rep", "nobody", "has not joined"),
        ("rep", "shaseng", "has left"),
        ("manager", "north", "no rep"),
    ] {
        let p = app
            .post(
                "/v1/tokens",
                ADMIN,
                &json!({"role": role, "subject": subject}).to_string(),
            )
            .await
            .problem(422);
        assert_eq!(p["field"], "subject", "{role} {subject}: {p}");
        assert!(p["detail"].as_str().unwrap().contains(says), "{p}");
    }
    let list = app.get("/v1/tokens", ADMIN).await.json();
    assert_eq!(
        list["tokens"].as_array().unwrap().len(),
        1,
        "nothing issued"
    );
    // Those who are there get theirs.
    issue(&app, json!({"role": "rep", "subject": "wukong"})).await;
    issue(&app, json!({"role": "manager", "subject": "west"})).await;
}

#[tokio::test]
async fn a_reps_token_stops_working_once_rep_left_is_appended_and_again_if_they_rejoin() {
    let app = TestApp::new();
    org(&app).await;
    let issued = issue(&app, json!({"role": "rep", "subject": "wukong"})).await;
    let token = issued["token"].as_str().unwrap().to_string();
    assert_eq!(app.get("/v1/deals", &token).await.status, 200);
    app.seed(
        "org-acme",
        json!([{"type": "RepLeft", "data": {"rep": "wukong"}}]),
    )
    .await;
    let p = app.get("/v1/deals", &token).await.problem(401);
    assert_eq!(p["reason"], "rep-left", "{p}");
    assert!(p["detail"].as_str().unwrap().contains("wukong"), "{p}");
    // Other reps' tokens are unaffected.
    let bajie = issue(&app, json!({"role": "rep", "subject": "bajie"})).await;
    assert_eq!(
        app.get("/v1/deals", bajie["token"].as_str().unwrap())
            .await
            .status,
        200
    );
    // Joining again brings the token back (it was never revoked).
    app.seed(
        "org-acme",
        json!([{"type": "RepJoined", "data": {"rep": "wukong", "name": "Sun Wukong", "team": "west"}}]),
    )
    .await;
    assert_eq!(app.get("/v1/deals", &token).await.status, 200);
}

#[tokio::test]
async fn every_token_issued_and_revoked_is_an_audit_event_without_the_secret() {
    let app = TestApp::new();
    org(&app).await;
    let a = issue(&app, json!({"role": "rep", "subject": "wukong"})).await;
    let at = (chrono::Utc::now() + chrono::Duration::days(30)).to_rfc3339();
    let b = issue(
        &app,
        json!({"role": "manager", "subject": "east", "expires_at": at}),
    )
    .await;
    let (a_id, b_id) = (a["id"].as_str().unwrap(), b["id"].as_str().unwrap());
    assert_eq!(
        delete(&app, &format!("/v1/tokens/{a_id}"), ADMIN)
            .await
            .status,
        204
    );
    // A second revocation records nothing more; a refused issue records nothing.
    delete(&app, &format!("/v1/tokens/{a_id}"), ADMIN).await;
    app.post(
        "/v1/tokens",
        ADMIN,
        r#"{"role": "rep", "subject": "nobody"}"#,
    )
    .await
    .problem(422);

    let r = app.get("/v1/streams/org-access", ADMIN).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let raw = String::from_utf8_lossy(&r.body).to_string();
    for secret in [
        a["token"].as_str().unwrap(),
        b["token"].as_str().unwrap(),
        ADMIN,
    ] {
        assert!(!raw.contains(secret), "a secret in the log: {raw}");
    }
    let body = r.json();
    let events = body["events"].as_array().expect("events");
    let seen: Vec<(String, Value, String)> = events
        .iter()
        .map(|e| {
            (
                e["type"].as_str().unwrap().to_string(),
                e["data"].clone(),
                e["actor"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let expires: chrono::DateTime<chrono::Utc> = at.parse().unwrap();
    assert_eq!(
        seen,
        vec![
            (
                "TokenIssued".to_string(),
                json!({"token_id": a_id, "role": "rep", "subject": "wukong"}),
                "admin".to_string()
            ),
            (
                "TokenIssued".to_string(),
                json!({"token_id": b_id, "role": "manager", "subject": "east",
                       "expires_at": serde_json::to_value(expires).unwrap()}),
                "admin".to_string()
            ),
            (
                "TokenRevoked".to_string(),
                json!({"token_id": a_id}),
                "admin".to_string()
            ),
        ]
    );
    // The whole log holds no secret either.
    let all = app.get("/v1/events", ADMIN).await;
    let raw = String::from_utf8_lossy(&all.body).to_string();
    assert!(!raw.contains(a["token"].as_str().unwrap()));
}

mod pg {
    //! The same on a PostgreSQL store shared by two nodes (`DEALTRAIL_TEST_PG`, default
    //! `postgres://postgres@127.0.0.1:5432/test`; a schema of its own, dropped afterwards;
    //! skipped, saying so, when no server answers, unless `DEALTRAIL_REQUIRE_PG=1`).

    use std::sync::Arc;

    use super::*;

    fn pg_url() -> String {
        std::env::var("DEALTRAIL_TEST_PG")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_string())
    }

    async fn sql(statement: &str) -> Result<(), String> {
        let url = pg_url();
        let connect = tokio_postgres::connect(&url, tokio_postgres::NoTls);
        let (client, conn) = tokio::time::timeout(std::time::Duration::from_secs(5), connect)
            .await
            .map_err(|_| "no answer within 5 s".to_string())?
            .map_err(|e| e.to_string())?;
        tokio::spawn(conn);
        client
            .batch_execute(statement)
            .await
            .map_err(|e| e.to_string())
    }

    async fn node(url: &str) -> TestApp {
        let rules = Arc::new(eventlog::rules::DomainRules::default());
        let store = Arc::new(eventlog::PgStore::open(url, rules).await.unwrap());
        let documents = store.documents();
        let dir = tempfile::tempdir().unwrap();
        let (state, _) = api::http::AppState::open_shared(
            store,
            documents,
            dir.path(),
            test_config(),
            Some(ADMIN),
        )
        .await
        .unwrap();
        TestApp { state, dir }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_token_revoked_on_one_node_is_refused_on_the_other_at_once() {
        if let Err(e) = sql("SELECT 1").await {
            if std::env::var("DEALTRAIL_REQUIRE_PG").is_ok_and(|v| v == "1") {
                panic!(
                    "DEALTRAIL_REQUIRE_PG=1 but no PostgreSQL at {}: {e}",
                    pg_url()
                );
            }
            eprintln!("PostgreSQL tests skipped: no server at {} ({e})", pg_url());
            return;
        }
        let schema = format!("tok_{}", uuid::Uuid::new_v4().simple());
        let base = pg_url();
        let sep = if base.contains('?') { '&' } else { '?' };
        let url = format!("{base}{sep}schema={schema}");
        let outcome = tokio::spawn(async move {
            let a = node(&url).await;
            let b = node(&url).await;
            a.seed(
                "org-acme",
                json!([
                    {"type": "RepJoined", "data": {"rep": "wukong", "name": "Sun Wukong", "team": "east"}},
                ]),
            )
            .await;
            let issued = issue(&a, json!({"role": "rep", "subject": "wukong"})).await;
            let token = issued["token"].as_str().unwrap().to_string();
            let id = issued["id"].as_str().unwrap().to_string();
            // Used on B (which records its last use), listed on B.
            assert_eq!(b.get("/v1/deals", &token).await.status, 200);
            let row = listed(&b.get("/v1/tokens", ADMIN).await.json(), &id);
            assert_eq!(row["subject"], "wukong");
            assert!(row["last_used_at"].is_string(), "{row}");
            // Revoked on B: refused on A at once, and on B.
            assert_eq!(delete(&b, &format!("/v1/tokens/{id}"), ADMIN).await.status, 204);
            for n in [&a, &b] {
                let p = n.get("/v1/deals", &token).await.problem(401);
                assert_eq!(p["reason"], "revoked", "{p}");
            }
            let p = a.get("/v1/deals", "dt_unknown").await.problem(401);
            assert_eq!(p["reason"], "unknown");
            // The audit trail, in the shared log, without the secret.
            let r = a.get("/v1/streams/org-access", ADMIN).await;
            assert!(!String::from_utf8_lossy(&r.body).contains(&token));
            let types: Vec<String> = r.json()["events"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["type"].as_str().unwrap().to_string())
                .collect();
            assert_eq!(types, ["TokenIssued", "TokenRevoked"]);
            // RepLeft appended through A stops a fresh token of the rep on B.
            let fresh = issue(&b, json!({"role": "rep", "subject": "wukong"})).await;
            let fresh = fresh["token"].as_str().unwrap();
            a.seed("org-acme", json!([{"type": "RepLeft", "data": {"rep": "wukong"}}]))
                .await;
            let p = b.get("/v1/deals", fresh).await.problem(401);
            assert_eq!(p["reason"], "rep-left", "{p}");
        })
        .await;
        let dropped = sql(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE")).await;
        if let Err(panic) = outcome {
            std::panic::resume_unwind(panic.into_panic());
        }
        dropped.unwrap();
    }
}

#[tokio::test]
async fn me_says_the_callers_role_and_subject_and_nothing_without_a_token() {
    let app = TestApp::new();
    let rep = app.token("rep", "wukong");
    let manager = app.token("manager", "east");
    for (token, role, subject) in [
        (rep.as_str(), "rep", "wukong"),
        (manager.as_str(), "manager", "east"),
    ] {
        let r = app.get("/v1/me", token).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.json(), json!({"role": role, "subject": subject}));
    }
    let admin = app.get("/v1/me", ADMIN).await.json();
    assert_eq!(admin["role"], "admin");
    assert!(
        !admin.to_string().contains(ADMIN),
        "never the token: {admin}"
    );
    let none = app.call(request(Method::GET, "/v1/me", None, None)).await;
    assert_eq!(none.status, 401);
}
