//! `GET /v1/events`: the global log, paged and filtered.

use axum::extract::State;
use eventlog::RecordedEvent;
use serde::{Deserialize, Serialize};

use super::auth::{Principal, Role};
use super::extract::Query;
use super::openapi::{EventDoc, ProblemDoc};
use super::params::{filter, page_limit};
use super::problem::ApiError;
use super::state::AppState;

/// Roles that may read the whole log.
pub const LOG_READERS: &[Role] = &[Role::Admin, Role::Analyst, Role::Service];

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct LogParams {
    /// First position to consider, inclusive (0 or 1 = the start).
    pub from_position: Option<u64>,
    /// Page size, 1..=1000 (default 100).
    pub limit: Option<usize>,
    /// Comma-separated event types (default: all).
    pub types: Option<String>,
    /// Only streams whose name starts with this, e.g. `deal-`.
    pub stream_prefix: Option<String>,
}

/// A page of the global log.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct LogPage {
    /// Matching events in log order.
    #[schema(value_type = Vec<EventDoc>)]
    pub events: Vec<RecordedEvent>,
    /// Pass as `from_position` to continue. Past the end of the log when this page reached
    /// it (everything up to `head_position` has been considered).
    pub next_position: u64,
    /// The log's last position when the read started.
    pub head_position: u64,
}

#[utoipa::path(get, path = "/v1/events", tag = "events",
    params(LogParams),
    responses(
        (status = 200, body = LogPage),
        (status = 400, description = "Bad query parameter", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 401, body = ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "Only admin, analyst and service read the whole log", body = ProblemDoc, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn read_log(
    State(state): State<AppState>,
    who: Principal,
    Query(p): Query<LogParams>,
) -> Result<axum::Json<LogPage>, ApiError> {
    who.require(LOG_READERS, "read the whole log")?;
    let limit = page_limit(&state.config, p.limit)?;
    let filter = filter(p.types.as_deref(), p.stream_prefix);
    let from = p.from_position.unwrap_or(0).max(1);
    let head = state.store.last_position().await?;
    let events = state.store.read_all(from, limit, &filter).await?;
    state.metrics.events_read(events.len());
    let after_last = events.last().map_or(from, |e| e.position + 1);
    let next_position = if events.len() < limit {
        after_last.max(head + 1)
    } else {
        after_last
    };
    Ok(axum::Json(LogPage {
        events,
        next_position,
        head_position: head,
    }))
}
