//! Who is calling: bearer tokens, roles, and what each role may see and do.
//!
//! - [`tokens`]: the hashed token file and the admin bootstrap.
//! - [`scope`]: per-stream read/write decisions (needs an [`OwnershipResolver`](crate::http::ownership::OwnershipResolver)).
//! - [`routes`]: `POST /v1/tokens`, `GET /v1/tokens`, `DELETE /v1/tokens/{id}`.

pub mod routes;
pub mod scope;
pub mod tokens;

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use serde::{Deserialize, Serialize};

use super::ownership::RepStatus;
use super::problem::ApiError;
use super::state::AppState;

/// A caller's role (SPEC §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Everything.
    Admin,
    /// A team (the subject): its reps' deals and customers, the pool, leads.
    Manager,
    /// A rep (the subject is the rep id): own deals and customers, the pool, leads.
    Rep,
    /// Reads the whole log and reports; writes nothing.
    Analyst,
    /// Reads the log, subscribes, keeps consumer checkpoints.
    Service,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Manager => "manager",
            Role::Rep => "rep",
            Role::Analyst => "analyst",
            Role::Service => "service",
        }
    }
}

/// The authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub role: Role,
    /// The team of a manager, the rep id of a rep, a free name otherwise.
    pub subject: String,
}

impl Principal {
    /// Fails with 403 unless the caller has one of `roles`.
    pub fn require(&self, roles: &[Role], what: &str) -> Result<(), ApiError> {
        if roles.contains(&self.role) {
            Ok(())
        } else {
            Err(ApiError::Forbidden(format!(
                "role {} may not {what}",
                self.role.as_str()
            )))
        }
    }

    /// The actor recorded for events this caller appends without naming one.
    pub fn default_actor(&self) -> String {
        match self.role {
            Role::Admin => "admin".to_string(),
            _ => self.subject.clone(),
        }
    }
}

impl FromRequestParts<AppState> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let header = parts
            .headers
            .get(AUTHORIZATION)
            .ok_or_else(|| ApiError::Unauthorized("missing Authorization: Bearer token".into()))?;
        let token = header
            .to_str()
            .ok()
            .and_then(|v| {
                let (scheme, token) = v.split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
            })
            .ok_or_else(|| {
                ApiError::Unauthorized("the Authorization header must be `Bearer <token>`".into())
            })?;
        use tokens::Presented;
        match state.tokens.find(token).await? {
            Presented::Valid(who) if who.role == Role::Rep => {
                // A rep who left is refused at once (the index follows the log's head).
                match state.ownership.rep_status(&who.subject).await? {
                    RepStatus::Left => Err(ApiError::TokenRefused {
                        reason: "rep-left",
                        detail: format!(
                            "rep {:?} has left the organisation (RepLeft): their token no \
                             longer works",
                            who.subject
                        ),
                    }),
                    RepStatus::Active | RepStatus::Unknown => Ok(who),
                }
            }
            Presented::Valid(who) => Ok(who),
            Presented::Unknown => Err(ApiError::TokenRefused {
                reason: "unknown",
                detail: "unknown token".into(),
            }),
            Presented::Revoked(at) => Err(ApiError::TokenRefused {
                reason: "revoked",
                detail: format!("this token was revoked at {}", at.to_rfc3339()),
            }),
            Presented::Expired(at) => Err(ApiError::TokenRefused {
                reason: "expired",
                detail: format!("this token expired at {}", at.to_rfc3339()),
            }),
        }
    }
}
