//! The dashboard's pages and assets through the router: every page URL answers the HTML
//! shell, assets come with their content types, and nothing is loaded from elsewhere.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use tower::ServiceExt;

const ADMIN: &str = "dashboard-test-admin-token-0123456789";

async fn get(path: &str) -> (StatusCode, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(eventlog::SledStore::temporary(Arc::new(eventlog::EnvelopeOnly)).unwrap());
    let (state, _) =
        api::http::AppState::open(store, dir.path(), Default::default(), Some(ADMIN)).unwrap();
    let res = api::http::router(state)
        .oneshot(Request::get(path).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = res.status();
    let ct = res
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let body =
        String::from_utf8(res.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap();
    (status, ct, body)
}

#[tokio::test]
async fn every_page_url_serves_the_shell() {
    for path in [
        "/",
        "/funnel",
        "/pool",
        "/reps/wukong",
        "/deals/D-1001",
        "/customers/C-1",
        "/deals/NO-SUCH-DEAL",
    ] {
        let (status, ct, body) = get(path).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert!(ct.starts_with("text/html"), "{path}: {ct}");
        assert!(
            body.contains(r#"<script type="module" src="/assets/app.js">"#),
            "{path}"
        );
        assert!(body.contains(r#"id="login-form""#), "{path}");
    }
}

#[tokio::test]
async fn assets_have_their_types_and_nothing_comes_from_elsewhere() {
    let (s, ct, js) = get("/assets/app.js").await;
    assert_eq!(s, StatusCode::OK);
    assert!(ct.starts_with("text/javascript"), "{ct}");
    assert!(
        js.contains("'nav.overview': '总览'"),
        "Chinese labels are there"
    );
    let (s, ct, css) = get("/assets/app.css").await;
    assert_eq!(s, StatusCode::OK);
    assert!(ct.starts_with("text/css"), "{ct}");
    let (_, _, html) = get("/").await;
    for text in [html.as_str(), js.as_str(), css.as_str()] {
        assert!(
            !text.contains("http://") && !text.contains("https://"),
            "no external URLs"
        );
    }
    // API routes still answer problems, not the shell.
    let (s, ct, _) = get("/v1/nope").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(ct, "application/problem+json");
}
