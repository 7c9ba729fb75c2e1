//! Operations: `GET /healthz`, `GET /metrics`.

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use eventlog::StoreHealth;

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
        (status = 503, description = "The store does not answer, refuses appends (a full disk: `storage-full`; a failed write: `store-write-failed`), or found damage (`store-damaged`, naming the first damaged position)", body = ProblemDoc, content_type = "application/problem+json"),
    ))]
pub async fn healthz(State(state): State<AppState>) -> Response {
    if let Some(problem) = unhealthy(state.store.health()) {
        return problem.into_response();
    }
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

/// The 503 for a store that refuses appends or has found damage (the details are in the
/// log), `None` for a healthy one.
fn unhealthy(health: StoreHealth) -> Option<Problem> {
    let problem = |kind, title, detail: String| {
        Problem::new(StatusCode::SERVICE_UNAVAILABLE, kind, title, detail)
    };
    Some(match health {
        StoreHealth::Ok => return None,
        StoreHealth::StorageFull(_) => problem(
            "storage-full",
            "Insufficient storage",
            "the disk holding the event store is full: appends are refused until space is freed"
                .into(),
        ),
        StoreHealth::WriteFailed(_) => problem(
            "store-write-failed",
            "Event store failing",
            "a write of the event store failed: appends are refused while it recovers".into(),
        ),
        StoreHealth::Damaged { position, .. } => {
            let at = match position {
                0 => "in its files (position unknown)".to_string(),
                p => format!("at log position {p}"),
            };
            problem(
                "store-damaged",
                "Event store damaged",
                format!("the event store found damage {at}: run `dealtrail verify` and restore from a backup"),
            )
            .with("position", position)
        }
    })
}

#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text exposition", content_type = "text/plain", body = String)))]
pub async fn metrics(State(state): State<AppState>) -> Response {
    let mut text = state.metrics.render();
    let head = state.store.last_position().await.unwrap_or(0);
    let applied = state.projector.position();
    text.push_str(&format!(
        "# HELP dealtrail_log_head_position Position of the last durable event.\n\
         # TYPE dealtrail_log_head_position gauge\n\
         dealtrail_log_head_position {head}\n\
         # HELP dealtrail_projection_position Log position the read model reflects.\n\
         # TYPE dealtrail_projection_position gauge\n\
         dealtrail_projection_position {applied}\n\
         # HELP dealtrail_projection_lag_events Durable events the read model has not applied yet.\n\
         # TYPE dealtrail_projection_lag_events gauge\n\
         dealtrail_projection_lag_events {}\n",
        head.saturating_sub(applied)
    ));
    consumer_lags(&state, head, &mut text).await;
    let mut res = text.into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    res
}

/// Each durable consumer's lag as a labelled gauge (names are `[A-Za-z0-9_.:-]`, nothing to
/// escape). Unreadable checkpoints leave the gauge out rather than failing the scrape.
async fn consumer_lags(state: &AppState, head: u64, text: &mut String) {
    let lags = match super::consumers::lags(state, head).await {
        Ok(lags) => lags,
        Err(e) => {
            tracing::warn!(error = %e, "metrics: consumer checkpoints unreadable");
            return;
        }
    };
    text.push_str(
        "# HELP dealtrail_consumer_lag_events Events in the log after a durable consumer's checkpoint.\n\
         # TYPE dealtrail_consumer_lag_events gauge\n",
    );
    for c in lags {
        text.push_str(&format!(
            "dealtrail_consumer_lag_events{{consumer=\"{}\"}} {}\n",
            c.name, c.lag
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_store_refusing_appends_or_damaged_is_unhealthy_and_says_why() {
        assert!(unhealthy(StoreHealth::Ok).is_none());
        let full = unhealthy(StoreHealth::StorageFull("os error 28 on /srv".into())).unwrap();
        assert_eq!(full.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(full.kind, "storage-full");
        assert!(!full.body().to_string().contains("/srv"));
        let failing = unhealthy(StoreHealth::WriteFailed("EIO".into())).unwrap();
        assert_eq!(failing.kind, "store-write-failed");
        let damaged = unhealthy(StoreHealth::Damaged {
            position: 12,
            reason: "checksum mismatch".into(),
        })
        .unwrap();
        assert_eq!(damaged.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(damaged.body()["position"], 12);
        assert!(damaged.detail.contains("position 12"), "{}", damaged.detail);
    }
}
