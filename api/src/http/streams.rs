//! `POST /v1/streams/{stream}/events` (append) and `GET /v1/streams/{stream}` (read).

use std::time::Instant;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use eventlog::{AppendOutcome, ExpectedVersion, ProposedEvent, RecordedEvent, StoreError};
use serde::{Deserialize, Serialize};

use super::auth::{scope, Principal};
use super::extract::{Json, Query};
use super::metrics::AppendResult;
use super::openapi::{EventDoc, ExpectedVersionDoc, ProblemDoc, ProposedEventDoc};
use super::params::{page_limit, stream_name};
use super::problem::ApiError;
use super::state::AppState;

/// The body of an append.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AppendRequest {
    /// `"any"` (default), `"no_stream"`, or the version of the stream's last event.
    #[serde(default)]
    #[schema(value_type = Option<ExpectedVersionDoc>)]
    pub expected_version: ExpectedVersion,
    /// 1 to `max_events_per_append` (default 1000) events, appended all or nothing.
    #[schema(value_type = Vec<ProposedEventDoc>)]
    pub events: Vec<ProposedEvent>,
}

/// Where an append landed. Appending events whose ids are already in the log (same
/// content) answers the original positions.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Appended {
    pub first_position: u64,
    pub last_position: u64,
    /// The version of the stream's last event: pass it as `expected_version` next time.
    pub next_expected_version: u64,
}

impl From<AppendOutcome> for Appended {
    fn from(o: AppendOutcome) -> Appended {
        Appended {
            first_position: o.first_position,
            last_position: o.last_position,
            next_expected_version: o.next_expected_version,
        }
    }
}

#[utoipa::path(post, path = "/v1/streams/{stream}/events", tag = "events",
    params(("stream" = String, Path, description = "`<category>-<entity id>`, e.g. `deal-D-1001`")),
    request_body = AppendRequest,
    responses(
        (status = 201, description = "Appended (or already appended: the original positions)", body = Appended),
        (status = 400, description = "Malformed JSON, wrong types, unknown field, bad stream name, empty batch", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 401, body = ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "Not for this role: a read-only role, an org or channel stream, another actor, an owner outside the caller's scope, a pool customer not claimed first", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "A deal or customer stream outside the caller's scope, or one that does not exist (the same answer), or a new deal's customer the caller cannot see", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 409, description = "Wrong expected version (`expected`, `actual`) or event id reused with other content", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 413, description = "Body over the size limit or too many events", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 415, body = ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "A domain rule refused the batch (`rule`, `field`, `value`, `index`)", body = ProblemDoc, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn append(
    State(state): State<AppState>,
    who: Principal,
    Path(raw_stream): Path<String>,
    Json(req): Json<AppendRequest>,
) -> Result<(StatusCode, axum::Json<Appended>), ApiError> {
    let stream = stream_name(&raw_stream)?;
    let max = state.config.max_events_per_append;
    if req.events.is_empty() {
        return Err(ApiError::bad_field(
            "events",
            "an append needs at least one event",
        ));
    }
    if req.events.len() > max {
        return Err(ApiError::PayloadTooLarge(format!(
            "{} events in one append; at most {max} are allowed",
            req.events.len()
        )));
    }
    scope::check_write(&state, &who, &stream, &req.events).await?;
    let mut events = req.events;
    for ev in &mut events {
        ev.actor.get_or_insert_with(|| who.default_actor());
    }
    let n = events.len();
    let started = Instant::now();
    let result = state
        .store
        .append(&stream.to_string(), req.expected_version, events)
        .await;
    let counted = match &result {
        Ok(_) => AppendResult::Ok,
        Err(StoreError::WrongExpectedVersion { .. } | StoreError::IdConflict { .. }) => {
            AppendResult::Conflict
        }
        Err(StoreError::Rejected(_)) => AppendResult::Rejected,
        Err(StoreError::Invalid(_)) => AppendResult::Invalid,
        Err(_) => AppendResult::Error,
    };
    state.metrics.record_append(counted, n, started.elapsed());
    Ok((StatusCode::CREATED, axum::Json(result?.into())))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct StreamParams {
    /// First version to return (default 0).
    pub from_version: Option<u64>,
    /// Page size, 1..=1000 (default 100).
    pub limit: Option<usize>,
}

/// A page of one stream.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct StreamPage {
    pub stream: String,
    /// The version of the stream's last event.
    pub version: u64,
    #[schema(value_type = Vec<EventDoc>)]
    pub events: Vec<RecordedEvent>,
    /// `from_version` for the next page.
    pub next_version: u64,
}

#[utoipa::path(get, path = "/v1/streams/{stream}", tag = "events",
    params(("stream" = String, Path, description = "`<category>-<entity id>`"), StreamParams),
    responses(
        (status = 200, body = StreamPage),
        (status = 400, description = "Bad stream name or query parameter", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 401, body = ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "No such stream, or outside the caller's scope", body = ProblemDoc, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn read_stream(
    State(state): State<AppState>,
    who: Principal,
    Path(raw_stream): Path<String>,
    Query(p): Query<StreamParams>,
) -> Result<axum::Json<StreamPage>, ApiError> {
    let stream = stream_name(&raw_stream)?;
    let limit = page_limit(&state.config, p.limit)?;
    scope::check_read(&state, &who, &stream).await?;
    let name = stream.to_string();
    let version = state
        .store
        .stream_version(&name)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("stream {name} not found")))?;
    let from = p.from_version.unwrap_or(0);
    let events = state.store.read_stream(&name, from, limit).await?;
    state.metrics.events_read(events.len());
    let next_version = events.last().map_or(from, |e| e.version + 1);
    Ok(axum::Json(StreamPage {
        stream: name,
        version,
        events,
        next_version,
    }))
}
