//! Durable consumers: `PUT /v1/consumers/{name}`, `POST /v1/consumers/{name}/ack`,
//! `GET /v1/consumers/{name}`. `GET /v1/subscribe?consumer=NAME` resumes after the last ack.

pub mod checkpoints;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;

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
    who.require(&[Role::Admin, Role::Service], "manage consumers")?;
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
    who.require(&[Role::Admin, Role::Service], "manage consumers")?;
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
    who.require(
        &[Role::Admin, Role::Service, Role::Analyst],
        "read consumers",
    )?;
    check_name(&name)?;
    state
        .consumers
        .get(&name)
        .await
        .map_err(io)?
        .map(axum::Json)
        .ok_or_else(|| unknown(&name))
}
