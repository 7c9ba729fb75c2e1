//! Security headers. Every response says `X-Content-Type-Options: nosniff`, so that a
//! browser never runs a JSON body (which may echo what a client sent) as a script or page.
//! The dashboard's responses also carry [`dashboard`]'s set: a Content-Security-Policy that
//! lets its pages run only our own script and style (no inline script or style, no `eval`),
//! talk only to this server, and never be framed; and no `Referer` sent anywhere.

use axum::http::header::{
    CONTENT_SECURITY_POLICY, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use axum::http::{HeaderMap, HeaderValue};
use axum::response::Response;

/// The dashboard's Content-Security-Policy. `img-src 'self'` is for the browser's favicon
/// request; everything the pages draw is inline SVG, which needs no source.
pub const DASHBOARD_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self'; connect-src 'self'; form-action 'self'; base-uri 'none'; \
     frame-ancestors 'none'";

/// Adds `X-Content-Type-Options: nosniff` to a response (every response passes here, see
/// `finish_response` in the router).
pub fn nosniff(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    response
}

/// Adds the dashboard's headers to `headers`.
pub fn dashboard(headers: &mut HeaderMap) {
    headers.insert(
        CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(DASHBOARD_CSP),
    );
    // For browsers that predate `frame-ancestors`.
    headers.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
}
