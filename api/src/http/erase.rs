//! `POST /v1/customers/{id}/erase` and `POST /v1/leads/{id}/erase` (admin only; SPEC §7):
//! the person's key is destroyed, `PersonalDataErased` appended to its stream and
//! `PersonalDataErasureAudited` to `org-access` (by the store: `eventlog::personal`). The
//! read model is then rebuilt from the log (where the person's fields now read
//! `"[erased]"`) and its snapshot rewritten, so that no copy of the text stays in memory or
//! in the data directory; the answer waits for that.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use eventlog::{EraseError, Erasure};
use serde::Deserialize;

use super::auth::{Principal, Role};
use super::extract::Json;
use super::problem::ApiError;
use super::state::AppState;

/// Why the personal data is erased (recorded in both events; not personal data itself).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EraseRequest {
    pub reason: String,
}

/// What was erased.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct Erased {
    /// The person's stream.
    pub person: String,
    /// The position of its `PersonalDataErased`.
    pub position: u64,
    /// How many events held its personal data (its own and its deals').
    pub events: u64,
    /// Which fields they held: `name`, `company`, `contact`, `summary`, `note`.
    pub fields: Vec<String>,
    /// What those fields read from now on.
    pub now_reads: &'static str,
}

impl From<Erasure> for Erased {
    fn from(e: Erasure) -> Erased {
        Erased {
            person: e.person,
            position: e.position,
            events: e.events,
            fields: e.fields,
            now_reads: eventlog::personal::ERASED,
        }
    }
}

/// The answer to an erasure that was not done.
pub fn erase_error(e: EraseError) -> ApiError {
    match e {
        EraseError::NotAPerson(p) | EraseError::NotFound(p) => {
            ApiError::NotFound(format!("{p} does not exist"))
        }
        EraseError::BlankReason => ApiError::bad_field("reason", "reason must not be blank"),
        e @ (EraseError::AlreadyErased { .. } | EraseError::WrittenInClear { .. }) => {
            ApiError::Conflict(e.to_string())
        }
        EraseError::Unsupported => ApiError::Internal(
            "this server's store does not seal personal data: erasure is not possible".into(),
        ),
        EraseError::Store(e) => ApiError::Store(e),
    }
}

async fn erase(
    state: &AppState,
    who: &Principal,
    category: &str,
    id: &str,
    reason: &str,
) -> Result<(StatusCode, axum::Json<Erased>), ApiError> {
    who.require(&[Role::Admin], "erase personal data")?;
    if !domain::envelope::is_entity_id(id) {
        return Err(ApiError::NotFound(format!(
            "{category}-{id} does not exist"
        )));
    }
    let erasure = state
        .store
        .erase_personal_data(&format!("{category}-{id}"), reason, &who.subject)
        .await
        .map_err(erase_error)?;
    // The SSE window held frames with the text: gone once the feed has published this.
    state
        .feed
        .published(erasure.position, std::time::Duration::from_secs(5))
        .await;
    // The model held the text: rebuilt from the log, which now reads "[erased]", then saved
    // over the snapshot that held it too.
    state.projector.rebuild(state.store.as_ref()).await?;
    if let Err(e) = state.projector.save(state.store.as_ref()).await {
        tracing::error!(error = %e, "saving the read model after an erasure");
    }
    Ok((StatusCode::OK, axum::Json(erasure.into())))
}

#[utoipa::path(post, path = "/v1/customers/{id}/erase", tag = "privacy",
    params(("id" = String, Path, description = "The customer's id")),
    request_body = EraseRequest,
    responses(
        (status = 200, description = "Erased: the key is destroyed; every read shows the fields as \"[erased]\"", body = Erased),
        (status = 400, description = "Blank reason", body = crate::http::openapi::ProblemDoc, content_type = "application/problem+json"),
        (status = 401, description = "No or unknown token", body = crate::http::openapi::ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = crate::http::openapi::ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "No such customer", body = crate::http::openapi::ProblemDoc, content_type = "application/problem+json"),
        (status = 409, description = "Already erased, or personal data written before encryption (then nothing is changed)", body = crate::http::openapi::ProblemDoc, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn erase_customer(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
    Json(req): Json<EraseRequest>,
) -> Result<(StatusCode, axum::Json<Erased>), ApiError> {
    erase(&state, &who, "customer", &id, &req.reason).await
}

#[utoipa::path(post, path = "/v1/leads/{id}/erase", tag = "privacy",
    params(("id" = String, Path, description = "The lead's id")),
    request_body = EraseRequest,
    responses(
        (status = 200, description = "Erased: the key is destroyed; every read shows the fields as \"[erased]\"", body = Erased),
        (status = 400, description = "Blank reason", body = crate::http::openapi::ProblemDoc, content_type = "application/problem+json"),
        (status = 401, description = "No or unknown token", body = crate::http::openapi::ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = crate::http::openapi::ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "No such lead", body = crate::http::openapi::ProblemDoc, content_type = "application/problem+json"),
        (status = 409, description = "Already erased, or personal data written before encryption (then nothing is changed)", body = crate::http::openapi::ProblemDoc, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn erase_lead(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
    Json(req): Json<EraseRequest>,
) -> Result<(StatusCode, axum::Json<Erased>), ApiError> {
    erase(&state, &who, "lead", &id, &req.reason).await
}
