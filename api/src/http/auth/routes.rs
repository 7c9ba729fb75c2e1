//! `POST /v1/tokens`, `GET /v1/tokens`, `DELETE /v1/tokens/{id}` (admin only).
//!
//! Every token issued or revoked here is also an event in [`AUDIT_STREAM`] (`TokenIssued`,
//! `TokenRevoked`; the actor is the caller's subject; never the secret). The admin token the
//! server starts with is not issued here and has no such event.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use eventlog::{ExpectedVersion, ProposedEvent};
use serde::{Deserialize, Serialize};

use super::tokens::{Revocation, TokenInfo};
use super::{Principal, Role};
use crate::http::extract::Json;
use crate::http::ownership::RepStatus;
use crate::http::problem::ApiError;
use crate::http::state::AppState;

/// The org stream of the access audit trail.
pub const AUDIT_STREAM: &str = "org-access";

/// Appends one audit event, by `who`.
async fn audit(state: &AppState, who: &Principal, event: domain::Event) -> Result<(), ApiError> {
    let event_type = event.type_name().to_string();
    let data = match serde_json::to_value(&event) {
        Ok(serde_json::Value::Object(mut tagged)) => tagged.remove("data").unwrap_or_default(),
        other => return Err(ApiError::Internal(format!("an audit event: {other:?}"))),
    };
    let proposed = ProposedEvent {
        id: Some(uuid::Uuid::new_v4()),
        event_type,
        occurred_at: None,
        actor: Some(who.subject.clone()),
        data: data.into(),
        metadata: None,
        recorded_at: None,
    };
    state
        .store
        .append(AUDIT_STREAM, ExpectedVersion::Any, vec![proposed])
        .await?;
    Ok(())
}

/// A token to create.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewToken {
    pub role: Role,
    /// Team for a manager, rep id for a rep (both required); a free name for the others.
    #[serde(default)]
    pub subject: Option<String>,
    /// RFC 3339; must be in the future. Without it the token does not expire.
    #[serde(default)]
    pub expires_at: Option<String>,
}

/// The created token; the only time it is ever shown.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct IssuedToken {
    pub token: String,
    pub role: Role,
    pub subject: String,
    /// Names it in `GET /v1/tokens` and `DELETE /v1/tokens/{id}`.
    pub id: String,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub expires_at: Option<chrono::DateTime<chrono::Utc>>,
}

#[utoipa::path(post, path = "/v1/tokens", tag = "auth",
    request_body = NewToken,
    responses(
        (status = 201, description = "Token created", body = IssuedToken),
        (status = 400, description = "Bad role, subject or expires_at", body = crate::http::openapi::ProblemDoc, content_type = "application/problem+json"),
        (status = 401, description = "No or unknown token", body = crate::http::openapi::ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = crate::http::openapi::ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "expires_at not in the future; a rep who has not joined or has left; a team with no rep", body = crate::http::openapi::ProblemDoc, content_type = "application/problem+json"),
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
    match req.role {
        Role::Rep => match state.ownership.rep_status(&subject).await? {
            RepStatus::Active => {}
            RepStatus::Unknown => {
                return Err(ApiError::Unprocessable {
                    detail: format!("rep {subject:?} has not joined (no RepJoined for it)"),
                    field: "subject".into(),
                })
            }
            RepStatus::Left => {
                return Err(ApiError::Unprocessable {
                    detail: format!("rep {subject:?} has left the organisation (RepLeft)"),
                    field: "subject".into(),
                })
            }
        },
        Role::Manager if !state.ownership.team_exists(&subject).await? => {
            return Err(ApiError::Unprocessable {
                detail: format!("team {subject:?} has no rep (no RepJoined names it)"),
                field: "subject".into(),
            })
        }
        _ => {}
    }
    let expires_at = match &req.expires_at {
        None => None,
        Some(text) => {
            let at = chrono::DateTime::parse_from_rfc3339(text)
                .map_err(|e| {
                    ApiError::bad_field(
                        "expires_at",
                        format!("expires_at {text:?} is not an RFC 3339 date-time: {e}"),
                    )
                })?
                .with_timezone(&chrono::Utc);
            if at <= chrono::Utc::now() {
                return Err(ApiError::Unprocessable {
                    detail: format!("expires_at {text:?} is not in the future"),
                    field: "expires_at".into(),
                });
            }
            Some(at)
        }
    };
    let (token, info) = state
        .tokens
        .issue_token(req.role, &subject, expires_at)
        .await
        .map_err(|e| ApiError::Internal(format!("saving the token: {e}")))?;
    let issued = domain::Event::TokenIssued(domain::events::TokenIssued {
        token_id: info.id.clone(),
        role: req.role.as_str().to_string(),
        subject: subject.clone(),
        expires_at,
    });
    if let Err(e) = audit(&state, &who, issued).await {
        // No token without its audit event: the new one is revoked before it is shown.
        if let Err(undo) = state.tokens.revoke(&info.id).await {
            tracing::error!(error = %undo, token_id = %info.id, "revoking an unaudited token");
        }
        return Err(e);
    }
    Ok((
        StatusCode::CREATED,
        axum::Json(IssuedToken {
            token,
            role: req.role,
            subject,
            id: info.id,
            expires_at,
        }),
    ))
}

/// Every token, revoked and expired ones included; never a secret.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TokenList {
    pub tokens: Vec<TokenInfo>,
}

#[utoipa::path(get, path = "/v1/tokens", tag = "auth",
    responses(
        (status = 200, description = "The tokens, oldest first", body = TokenList),
        (status = 401, description = "No, unknown, revoked or expired token", body = crate::http::openapi::ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = crate::http::openapi::ProblemDoc, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn list_tokens(
    State(state): State<AppState>,
    who: Principal,
) -> Result<axum::Json<TokenList>, ApiError> {
    who.require(&[Role::Admin], "list tokens")?;
    let tokens = state
        .tokens
        .list()
        .await
        .map_err(|e| ApiError::Internal(format!("reading the tokens: {e}")))?;
    Ok(axum::Json(TokenList { tokens }))
}

#[utoipa::path(delete, path = "/v1/tokens/{id}", tag = "auth",
    params(("id" = String, Path, description = "The token's id (from GET /v1/tokens)")),
    responses(
        (status = 204, description = "Revoked (or already was): 401 on its next use, on every node"),
        (status = 401, description = "No, unknown, revoked or expired token", body = crate::http::openapi::ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = crate::http::openapi::ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "No token has this id", body = crate::http::openapi::ProblemDoc, content_type = "application/problem+json"),
        (status = 409, description = "The start admin token: replaced by restarting with another DEALTRAIL_ADMIN_TOKEN", body = crate::http::openapi::ProblemDoc, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn revoke_token(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    who.require(&[Role::Admin], "revoke tokens")?;
    let outcome = state
        .tokens
        .revoke(&id)
        .await
        .map_err(|e| ApiError::Internal(format!("revoking the token: {e}")))?;
    match outcome {
        Revocation::Revoked(info) => {
            // Revoked first (it must not wait on the log), then recorded.
            let revoked =
                domain::Event::TokenRevoked(domain::events::TokenRevoked { token_id: info.id });
            audit(&state, &who, revoked).await?;
            Ok(StatusCode::NO_CONTENT)
        }
        Revocation::AlreadyRevoked(_) => Ok(StatusCode::NO_CONTENT),
        Revocation::NotFound => Err(ApiError::NotFound(format!("no token has id {id:?}"))),
        Revocation::StartAdmin => Err(ApiError::Conflict(format!(
            "token {id} is the admin token the server starts with: it is replaced by \
             restarting with another DEALTRAIL_ADMIN_TOKEN, not revoked"
        ))),
    }
}

/// Who the caller is: what the dashboard needs to offer a rep's own actions (claim a customer
/// for oneself) and nothing more; never the token.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Me {
    pub role: Role,
    /// The team of a manager, the rep id of a rep, a free name otherwise.
    pub subject: String,
}

/// `GET /v1/me`: any valid token.
#[utoipa::path(get, path = "/v1/me", tag = "auth",
    responses(
        (status = 200, description = "The caller's role and subject", body = Me),
        (status = 401, description = "No, unknown, revoked or expired token", body = crate::http::openapi::ProblemDoc, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn me(who: Principal) -> axum::Json<Me> {
    axum::Json(Me {
        role: who.role,
        subject: who.subject,
    })
}
