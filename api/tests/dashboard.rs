//! The dashboard's pages and assets through the router: every page URL answers the HTML
//! shell, assets come with their content types, nothing is loaded from elsewhere, and every
//! response carries the security headers (the browser test runs the pages under them).

use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use http_body_util::BodyExt;
use tower::ServiceExt;

const ADMIN: &str = "dashboard-test-admin-token-0123456789";

async fn get(path: &str) -> (StatusCode, String, String) {
    let (status, headers, body) = get_with_headers(path).await;
    let ct = headers
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (status, ct, body)
}

async fn get_with_headers(path: &str) -> (StatusCode, HeaderMap, String) {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(eventlog::SledStore::temporary(Arc::new(eventlog::EnvelopeOnly)).unwrap());
    let (state, _) =
        api::http::AppState::open(store, dir.path(), Default::default(), Some(ADMIN)).unwrap();
    let res = api::http::router(state)
        .oneshot(Request::get(path).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let (parts, body) = res.into_parts();
    let body = String::from_utf8(body.collect().await.unwrap().to_bytes().to_vec()).unwrap();
    (parts.status, parts.headers, body)
}

/// A URL of each of the dashboard's pages.
const PAGES: [&str; 15] = [
    "/",
    "/win-loss",
    "/channels?from=2026-01-01",
    "/activity",
    "/l2c",
    "/funnel",
    "/deals",
    "/deals?status=lost&rep=wukong",
    "/pool",
    "/reps/wukong",
    "/deals/D-1001",
    "/customers/C-1",
    "/service",
    "/today",
    "/leads/L-1",
];

#[tokio::test]
async fn every_page_url_serves_the_shell() {
    for path in PAGES.into_iter().chain(["/deals/NO-SUCH-DEAL"]) {
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

#[tokio::test]
async fn every_dashboard_response_has_the_security_headers() {
    for path in PAGES
        .into_iter()
        .chain(["/assets/app.js", "/assets/app.css"])
    {
        let (status, headers, _) = get_with_headers(path).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        let header = |name: &str| {
            headers
                .get(name)
                .map(|v| v.to_str().unwrap().to_string())
                .unwrap_or_else(|| panic!("{path}: no {name}"))
        };
        let csp = header("content-security-policy");
        let directives: Vec<&str> = csp.split(';').map(str::trim).collect();
        for wanted in [
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            "frame-ancestors 'none'",
            "base-uri 'none'",
        ] {
            assert!(directives.contains(&wanted), "{path}: {wanted} in {csp}");
        }
        assert!(!csp.contains("unsafe-"), "{path}: {csp}");
        assert_eq!(header("x-content-type-options"), "nosniff", "{path}");
        assert_eq!(header("referrer-policy"), "no-referrer", "{path}");
        assert_eq!(header("x-frame-options"), "DENY", "{path}");
    }
}

#[tokio::test]
async fn api_responses_say_nosniff_too() {
    for path in ["/healthz", "/openapi.json", "/v1/events", "/v1/nope"] {
        let (_, headers, _) = get_with_headers(path).await;
        assert_eq!(
            headers
                .get("x-content-type-options")
                .and_then(|v| v.to_str().ok()),
            Some("nosniff"),
            "{path}"
        );
    }
}

/// Inline event handler attributes (`onclick="…"`) in `text`.
fn inline_handlers(text: &str) -> Vec<String> {
    let bytes = text.as_bytes();
    let mut found = Vec::new();
    for (i, _) in text.match_indices(" on") {
        let name_end = bytes[i + 3..]
            .iter()
            .position(|b| !b.is_ascii_lowercase())
            .map_or(bytes.len(), |n| i + 3 + n);
        if name_end > i + 3 && bytes.get(name_end) == Some(&b'=') {
            found.push(text[i + 1..name_end].to_string());
        }
    }
    found
}

#[tokio::test]
async fn the_pages_need_no_inline_script_style_attribute_or_handler() {
    let (_, _, html) = get("/").await;
    let (_, _, js) = get("/assets/app.js").await;
    for tag in html.split("<script").skip(1) {
        let open = &tag[..tag.find('>').unwrap()];
        assert!(open.contains("src="), "an inline script: <script{open}>");
    }
    assert!(!js.contains("<script"), "app.js writes a script element");
    for (name, text) in [("shell.html", &html), ("app.js", &js)] {
        assert!(!text.contains("style="), "{name}: a style attribute");
        assert!(!text.contains("javascript:"), "{name}: a javascript: URL");
        assert_eq!(inline_handlers(text), Vec::<String>::new(), "{name}");
    }
    // The check itself sees a handler.
    assert_eq!(
        inline_handlers(r#"<a href="/" onclick="go()">"#),
        vec!["onclick"]
    );
}
