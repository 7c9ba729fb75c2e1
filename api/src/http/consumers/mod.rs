//! Durable consumers: `PUT /v1/consumers/{name}`, `POST /v1/consumers/{name}/ack`,
//! `GET /v1/consumers/{name}`. `GET /v1/subscribe?consumer=NAME` resumes after the last ack.
//! Managing them (SPEC §6): `GET /v1/consumers` (each with its lag behind the log's head),
//! `DELETE /v1/consumers/{name}`, `POST /v1/consumers/{name}/reset`.
//!
//! Who: a consumer is not owned by a token (any service token may create, ack, reset or
//! delete any consumer; a service is usually one token shared by its instances), so managing
//! is for admin and service tokens, as creating and acking are; an analyst may look (list,
//! get); reps and managers may not.

pub mod checkpoints;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

use crate::http::auth::{Principal, Role};
use crate::http::extract::Json;
use crate::http::openapi::ProblemDoc;
use crate::http::problem::ApiError;
use crate::http::state::AppState;
use checkpoints::Checkpoint;

/// An acknowledgement: everything up to and including `position` is processed.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Ack {
    pub position: u64,
}

/// A reset: the checkpoint becomes `position` (the last position processed; 0 = from the
/// start), backwards included.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Reset {
    pub position: u64,
}

/// A consumer and how far behind the log it is.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ConsumerLag {
    pub name: String,
    /// The last acknowledged position (0 = nothing yet).
    pub position: u64,
    /// Events in the log after `position`: the log's head position minus `position`.
    pub lag: u64,
}

/// `GET /v1/consumers`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ConsumerList {
    /// By name.
    pub consumers: Vec<ConsumerLag>,
    /// The log's head position the lags are measured against.
    pub head: u64,
}

/// Who may manage consumers; who may look at them.
const MANAGERS: &[Role] = &[Role::Admin, Role::Service];
const READERS: &[Role] = &[Role::Admin, Role::Service, Role::Analyst];

/// Every consumer with its lag behind `head` (a checkpoint past it, after a store was
/// replaced, counts as no lag).
pub async fn lags(state: &AppState, head: u64) -> Result<Vec<ConsumerLag>, ApiError> {
    Ok(state
        .consumers
        .list()
        .await
        .map_err(io)?
        .into_iter()
        .map(|c| ConsumerLag {
            lag: head.saturating_sub(c.position),
            name: c.name,
            position: c.position,
        })
        .collect())
}

pub fn check_name(name: &str) -> Result<(), ApiError> {
    if domain::envelope::is_entity_id(name) {
        Ok(())
    } else {
        Err(ApiError::bad_field(
            "name",
            format!("consumer name {name:?} must be 1-64 characters from [A-Za-z0-9_.:-]"),
        ))
    }
}

fn io(e: std::io::Error) -> ApiError {
    ApiError::Internal(format!("saving consumer checkpoints: {e}"))
}

fn unknown(name: &str) -> ApiError {
    ApiError::NotFound(format!(
        "consumer {name} does not exist (create it with PUT)"
    ))
}

#[utoipa::path(put, path = "/v1/consumers/{name}", tag = "consumers",
    params(("name" = String, Path, description = "Consumer name, 1-64 of [A-Za-z0-9_.:-]")),
    responses(
        (status = 201, description = "Created at position 0", body = Checkpoint),
        (status = 200, description = "Already existed; unchanged", body = Checkpoint),
        (status = 400, body = ProblemDoc, content_type = "application/problem+json"),
        (status = 401, body = ProblemDoc, content_type = "application/problem+json"),
        (status = 403, body = ProblemDoc, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn put_consumer(
    State(state): State<AppState>,
    who: Principal,
    Path(name): Path<String>,
) -> Result<(StatusCode, axum::Json<Checkpoint>), ApiError> {
    who.require(MANAGERS, "manage consumers")?;
    check_name(&name)?;
    let (c, created) = state.consumers.create(&name).await.map_err(io)?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, axum::Json(c)))
}

#[utoipa::path(post, path = "/v1/consumers/{name}/ack", tag = "consumers",
    params(("name" = String, Path, description = "Consumer name")),
    request_body = Ack,
    responses(
        (status = 200, description = "The checkpoint (never moves back)", body = Checkpoint),
        (status = 400, description = "Bad body, or a position beyond the end of the log", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 401, body = ProblemDoc, content_type = "application/problem+json"),
        (status = 403, body = ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "No such consumer", body = ProblemDoc, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn ack(
    State(state): State<AppState>,
    who: Principal,
    Path(name): Path<String>,
    Json(ack): Json<Ack>,
) -> Result<axum::Json<Checkpoint>, ApiError> {
    who.require(MANAGERS, "manage consumers")?;
    check_name(&name)?;
    let head = state.store.last_position().await?;
    if ack.position > head {
        return Err(ApiError::bad_field(
            "position",
            format!(
                "position {} is beyond the end of the log ({head})",
                ack.position
            ),
        ));
    }
    state
        .consumers
        .ack(&name, ack.position)
        .await
        .map_err(io)?
        .map(axum::Json)
        .ok_or_else(|| unknown(&name))
}

#[utoipa::path(get, path = "/v1/consumers/{name}", tag = "consumers",
    params(("name" = String, Path, description = "Consumer name")),
    responses(
        (status = 200, body = Checkpoint),
        (status = 400, description = "Not a consumer name", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 401, body = ProblemDoc, content_type = "application/problem+json"),
        (status = 403, body = ProblemDoc, content_type = "application/problem+json"),
        (status = 404, body = ProblemDoc, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn get_consumer(
    State(state): State<AppState>,
    who: Principal,
    Path(name): Path<String>,
) -> Result<axum::Json<Checkpoint>, ApiError> {
    who.require(READERS, "read consumers")?;
    check_name(&name)?;
    state
        .consumers
        .get(&name)
        .await
        .map_err(io)?
        .map(axum::Json)
        .ok_or_else(|| unknown(&name))
}

#[utoipa::path(get, path = "/v1/consumers", tag = "consumers",
    responses(
        (status = 200, description = "Every consumer by name, with its lag behind the log's head", body = ConsumerList),
        (status = 401, body = ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin, service or analyst token", body = ProblemDoc, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn list(
    State(state): State<AppState>,
    who: Principal,
) -> Result<axum::Json<ConsumerList>, ApiError> {
    who.require(READERS, "read consumers")?;
    let head = state.store.last_position().await?;
    Ok(axum::Json(ConsumerList {
        consumers: lags(&state, head).await?,
        head,
    }))
}

#[utoipa::path(delete, path = "/v1/consumers/{name}", tag = "consumers",
    params(("name" = String, Path, description = "Consumer name")),
    responses(
        (status = 204, description = "Removed; a subscription naming it is refused from now on"),
        (status = 400, body = ProblemDoc, content_type = "application/problem+json"),
        (status = 401, body = ProblemDoc, content_type = "application/problem+json"),
        (status = 403, body = ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "No such consumer", body = ProblemDoc, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn delete(
    State(state): State<AppState>,
    who: Principal,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    who.require(MANAGERS, "manage consumers")?;
    check_name(&name)?;
    if state.consumers.delete(&name).await.map_err(io)? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(unknown(&name))
    }
}

#[utoipa::path(post, path = "/v1/consumers/{name}/reset", tag = "consumers",
    params(("name" = String, Path, description = "Consumer name")),
    request_body = Reset,
    responses(
        (status = 200, description = "The checkpoint, now at `position`; a subscription with this consumer resumes after it", body = Checkpoint),
        (status = 400, description = "Bad body or name", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 401, body = ProblemDoc, content_type = "application/problem+json"),
        (status = 403, body = ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "No such consumer", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "A position past the log's head (`field`: position)", body = ProblemDoc, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn reset(
    State(state): State<AppState>,
    who: Principal,
    Path(name): Path<String>,
    Json(reset): Json<Reset>,
) -> Result<axum::Json<Checkpoint>, ApiError> {
    who.require(MANAGERS, "manage consumers")?;
    check_name(&name)?;
    let head = state.store.last_position().await?;
    if reset.position > head {
        return Err(ApiError::Unprocessable {
            field: "position".to_string(),
            detail: format!(
                "position {} is past the log's head ({head})",
                reset.position
            ),
        });
    }
    state
        .consumers
        .reset(&name, reset.position)
        .await
        .map_err(io)?
        .map(axum::Json)
        .ok_or_else(|| unknown(&name))
}
