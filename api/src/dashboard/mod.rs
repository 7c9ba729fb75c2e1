//! The managers' dashboard (served by `dealtrail serve` at `/`): one HTML shell for every
//! page URL, and our own small JavaScript and CSS, embedded in the binary (nothing from a
//! CDN, no third-party code). The pages read the JSON API with the bearer token the user
//! typed (or passed as `#token=…` for a wall screen); charts are inline SVG drawn by `app.js`.
//! No inline script, style attribute or event handler anywhere: the Content-Security-Policy
//! (`http::headers::DASHBOARD_CSP`) allows only `app.js` and `app.css` from this server.
//!
//! Pages: `/` overview, `/funnel`, `/reps/{rep}`, `/deals` (the deal list, `deals.js`),
//! `/deals/{id}` (replay with a scrubber), `/win-loss`, `/channels`, `/activity`, `/l2c`,
//! `/customers/{id}` (timeline), `/pool`, `/service` (customer service), `/today` (the rep's
//! follow-up list, a rep's home after sign-in), `/leads/{id}`. Labels in English and
//! Simplified Chinese.

use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

const SHELL: &str = include_str!("shell.html");
/// The client, one ES module: the core and its first pages, then one file per further page
/// (each registers itself with `page(…)` and `labels(…)`), then the router. A new page adds
/// its file here and its URL to `routes`.
const APP_JS: &str = concat!(
    include_str!("app.js"),
    include_str!("vocab.js"),
    include_str!("service.js"),
    include_str!("today.js"),
    include_str!("lead.js"),
    include_str!("deals.js"),
    include_str!("winloss.js"),
    include_str!("channels.js"),
    include_str!("activity.js"),
    include_str!("l2c.js"),
    include_str!("forms.js"),
    include_str!("story.js"),
    include_str!("live.js"),
    include_str!("boot.js")
);
const APP_CSS: &str = include_str!("app.css");

/// `body` with its type and the dashboard's security headers (`http::headers`).
fn with_type(body: &'static str, content_type: &'static str) -> Response {
    let mut res = body.into_response();
    let headers = res.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    crate::http::headers::dashboard(headers);
    res
}

async fn shell() -> Response {
    with_type(SHELL, "text/html; charset=utf-8")
}

async fn app_js() -> Response {
    with_type(APP_JS, "text/javascript; charset=utf-8")
}

async fn app_css() -> Response {
    with_type(APP_CSS, "text/css; charset=utf-8")
}

/// The dashboard's routes, to merge into the API router.
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/", get(shell))
        .route("/funnel", get(shell))
        .route("/deals", get(shell))
        .route("/win-loss", get(shell))
        .route("/channels", get(shell))
        .route("/activity", get(shell))
        .route("/l2c", get(shell))
        .route("/pool", get(shell))
        .route("/reps/{rep}", get(shell))
        .route("/deals/{id}", get(shell))
        .route("/customers/{id}", get(shell))
        .route("/service", get(shell))
        .route("/today", get(shell))
        .route("/leads/{id}", get(shell))
        .route("/assets/app.js", get(app_js))
        .route("/assets/app.css", get(app_css))
}
