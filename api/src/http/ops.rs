//! Operations: `GET /healthz`, `GET /metrics`.

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::openapi::ProblemDoc;
use super::problem::Problem;
use super::state::AppState;

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Health {
    /// `ok`.
    pub status: &'static str,
    /// The log's last position.
    pub last_position: u64,
}

#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses(
        (status = 200, description = "The store answers", body = Health),
        (status = 503, description = "The store does not answer", body = ProblemDoc, content_type = "application/problem+json"),
    ))]
pub async fn healthz(State(state): State<AppState>) -> Response {
    match state.store.last_position().await {
        Ok(last_position) => axum::Json(Health {
            status: "ok",
            last_position,
        })
        .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "health check failed");
            Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "Service unavailable",
                "the event store does not answer",
            )
            .into_response()
        }
    }
}

#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text exposition", content_type = "text/plain", body = String)))]
pub async fn metrics(State(state): State<AppState>) -> Response {
    let mut res = state.metrics.render().into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    res
}
