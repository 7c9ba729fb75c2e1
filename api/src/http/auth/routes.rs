//! `POST /v1/tokens` (admin only).

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

use super::{Principal, Role};
use crate::http::extract::Json;
use crate::http::problem::ApiError;
use crate::http::state::AppState;

/// A token to create.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewToken {
    pub role: Role,
    /// Team for a manager, rep id for a rep (both required); a free name for the others.
    #[serde(default)]
    pub subject: Option<String>,
}

/// The created token; the only time it is ever shown.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct IssuedToken {
    pub token: String,
    pub role: Role,
    pub subject: String,
}

#[utoipa::path(post, path = "/v1/tokens", tag = "auth",
    request_body = NewToken,
    responses(
        (status = 201, description = "Token created", body = IssuedToken),
        (status = 400, description = "Bad role or subject", body = crate::http::openapi::ProblemDoc, content_type = "application/problem+json"),
        (status = 401, description = "No or unknown token", body = crate::http::openapi::ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = crate::http::openapi::ProblemDoc, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn create_token(
    State(state): State<AppState>,
    who: Principal,
    Json(req): Json<NewToken>,
) -> Result<(StatusCode, axum::Json<IssuedToken>), ApiError> {
    who.require(&[Role::Admin], "create tokens")?;
    let subject = match (req.role, req.subject) {
        (_, Some(s)) if domain::envelope::is_entity_id(&s) => s,
        (_, Some(s)) => {
            return Err(ApiError::bad_field(
                "subject",
                format!("subject {s:?} must be 1-64 characters from [A-Za-z0-9_.:-]"),
            ))
        }
        (Role::Manager | Role::Rep, None) => {
            return Err(ApiError::bad_field(
                "subject",
                "a manager token needs its team and a rep token its rep id as `subject`",
            ))
        }
        (role, None) => role.as_str().to_string(),
    };
    let token = state
        .tokens
        .issue_token(req.role, &subject)
        .await
        .map_err(|e| ApiError::Internal(format!("saving the token: {e}")))?;
    Ok((
        StatusCode::CREATED,
        axum::Json(IssuedToken {
            token,
            role: req.role,
            subject,
        }),
    ))
}
