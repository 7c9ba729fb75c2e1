//! `POST/GET /v1/webhooks`, `GET/DELETE /v1/webhooks/{id}`, `GET /v1/webhooks/{id}/deliveries`:
//! admin only (a webhook sends the whole log, filtered, to any address).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{Attempt, Disabled, Webhook};
use crate::http::auth::{Principal, Role};
use crate::http::extract::Json;
use crate::http::openapi::ProblemDoc;
use crate::http::problem::ApiError;
use crate::http::state::AppState;

/// Longest accepted `url` and `stream_prefix`.
const MAX_URL_CHARS: usize = 2048;
const MAX_PREFIX_CHARS: usize = 200;

/// A webhook to create.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewWebhook {
    /// Where events are POSTed: `http://` or `https://`.
    pub url: String,
    /// Only these event types (default: all).
    #[serde(default)]
    pub types: Option<Vec<String>>,
    /// Only events of streams whose name starts with this, e.g. `deal-`.
    #[serde(default)]
    pub stream_prefix: Option<String>,
}

/// The created webhook, with its signing secret: the only time the secret is shown.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CreatedWebhook {
    #[schema(format = "uuid")]
    pub id: String,
    /// `whsec_` + base64 of the HMAC-SHA256 key (Standard Webhooks).
    pub secret: String,
    pub url: String,
    pub types: Vec<String>,
    pub stream_prefix: Option<String>,
    /// Events after this position are delivered.
    pub position: u64,
}

/// A webhook (never its secret) and where its deliveries stand.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct WebhookView {
    #[schema(format = "uuid")]
    pub id: String,
    pub url: String,
    pub types: Vec<String>,
    pub stream_prefix: Option<String>,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: DateTime<Utc>,
    /// `active` or `disabled`.
    pub state: String,
    /// When and why deliveries stopped, for a disabled webhook.
    pub disabled: Option<Disabled>,
    /// The last position delivered (or passed over as not matching).
    pub position: u64,
    /// Since when every attempt has failed, while failing.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub failing_since: Option<DateTime<Utc>>,
    /// When the failing event is tried again.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub next_retry_at: Option<DateTime<Utc>>,
}

/// `GET /v1/webhooks`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct WebhookList {
    pub webhooks: Vec<WebhookView>,
}

/// A webhook's recent delivery attempts.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Deliveries {
    #[schema(format = "uuid")]
    pub id: String,
    pub state: String,
    /// The last position delivered; the next delivery is of the first matching event after it.
    pub position: u64,
    /// The log's last position.
    pub head_position: u64,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub failing_since: Option<DateTime<Utc>>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub next_retry_at: Option<DateTime<Utc>>,
    /// The most recent attempts since the server started (up to 100), newest first.
    pub attempts: Vec<Attempt>,
}

fn io(e: std::io::Error) -> ApiError {
    ApiError::Internal(format!("webhook storage: {e}"))
}

fn admin(who: &Principal, what: &str) -> Result<(), ApiError> {
    who.require(&[Role::Admin], what)
}

fn parse_id(id: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(id)
        .map_err(|_| ApiError::bad_field("id", format!("webhook id {id:?} is not a UUID")))
}

fn not_found(id: Uuid) -> ApiError {
    ApiError::NotFound(format!("webhook {id} does not exist"))
}

/// The webhook `id` names, for an admin reading it (`what`): 400, 403 or 404 otherwise.
async fn readable(
    state: &AppState,
    who: &Principal,
    id: &str,
    what: &str,
) -> Result<(Uuid, Webhook), ApiError> {
    admin(who, what)?;
    let id = parse_id(id)?;
    let hook = state
        .webhooks
        .get(id)
        .await
        .map_err(io)?
        .ok_or_else(|| not_found(id))?;
    Ok((id, hook))
}

/// Checks a new webhook's fields; the cleaned `(url, types, stream_prefix)`.
fn check(req: NewWebhook) -> Result<(String, Vec<String>, Option<String>), ApiError> {
    if req.url.len() > MAX_URL_CHARS {
        return Err(ApiError::bad_field(
            "url",
            format!("url is longer than {MAX_URL_CHARS} characters"),
        ));
    }
    let url = reqwest::Url::parse(&req.url)
        .map_err(|e| ApiError::bad_field("url", format!("url {:?}: {e}", req.url)))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none_or(str::is_empty) {
        return Err(ApiError::bad_field(
            "url",
            format!("url {:?} must be an http:// or https:// address", req.url),
        ));
    }
    let types = req.types.unwrap_or_default();
    for (i, t) in types.iter().enumerate() {
        if domain::events::categories_of(t).is_none() {
            return Err(ApiError::bad_field(
                format!("types[{i}]"),
                format!("{t:?} is not an event type (SPEC §1.2)"),
            ));
        }
    }
    let stream_prefix = req.stream_prefix.filter(|p| !p.is_empty());
    if stream_prefix
        .as_ref()
        .is_some_and(|p| p.chars().count() > MAX_PREFIX_CHARS)
    {
        return Err(ApiError::bad_field(
            "stream_prefix",
            format!("stream_prefix is longer than {MAX_PREFIX_CHARS} characters"),
        ));
    }
    Ok((url.to_string(), types, stream_prefix))
}

async fn view(state: &AppState, hook: Webhook) -> Result<WebhookView, ApiError> {
    let d = state.webhooks.state(hook.id).await.map_err(io)?;
    Ok(WebhookView {
        id: hook.id.to_string(),
        url: hook.url,
        types: hook.types,
        stream_prefix: hook.stream_prefix,
        created_at: hook.created_at,
        state: if hook.disabled.is_some() {
            "disabled"
        } else {
            "active"
        }
        .to_string(),
        disabled: hook.disabled,
        position: d.position,
        failing_since: d.failing_since,
        next_retry_at: d.next_retry_at,
    })
}

#[utoipa::path(post, path = "/v1/webhooks", tag = "webhooks",
    request_body = NewWebhook,
    responses(
        (status = 201, description = "Created; events appended from now on are delivered", body = CreatedWebhook),
        (status = 400, description = "Bad url, type or prefix", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 401, body = ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = ProblemDoc, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn create(
    State(state): State<AppState>,
    who: Principal,
    Json(req): Json<NewWebhook>,
) -> Result<(StatusCode, axum::Json<CreatedWebhook>), ApiError> {
    admin(&who, "manage webhooks")?;
    let (url, types, stream_prefix) = check(req)?;
    let head = state.store.last_position().await?;
    let hook = state
        .webhooks
        .create(url, types, stream_prefix, head)
        .await
        .map_err(io)?;
    Ok((
        StatusCode::CREATED,
        axum::Json(CreatedWebhook {
            id: hook.id.to_string(),
            secret: hook.secret.serialise(),
            url: hook.url,
            types: hook.types,
            stream_prefix: hook.stream_prefix,
            position: head,
        }),
    ))
}

#[utoipa::path(get, path = "/v1/webhooks", tag = "webhooks",
    responses(
        (status = 200, body = WebhookList),
        (status = 401, body = ProblemDoc, content_type = "application/problem+json"),
        (status = 403, body = ProblemDoc, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn list(
    State(state): State<AppState>,
    who: Principal,
) -> Result<axum::Json<WebhookList>, ApiError> {
    admin(&who, "read webhooks")?;
    let mut webhooks = Vec::new();
    for hook in state.webhooks.list().await.map_err(io)? {
        webhooks.push(view(&state, hook).await?);
    }
    Ok(axum::Json(WebhookList { webhooks }))
}

#[utoipa::path(get, path = "/v1/webhooks/{id}", tag = "webhooks",
    params(("id" = String, Path, description = "Webhook id")),
    responses(
        (status = 200, body = WebhookView),
        (status = 400, body = ProblemDoc, content_type = "application/problem+json"),
        (status = 401, body = ProblemDoc, content_type = "application/problem+json"),
        (status = 403, body = ProblemDoc, content_type = "application/problem+json"),
        (status = 404, body = ProblemDoc, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn get(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
) -> Result<axum::Json<WebhookView>, ApiError> {
    let (_, hook) = readable(&state, &who, &id, "read webhooks").await?;
    Ok(axum::Json(view(&state, hook).await?))
}

#[utoipa::path(delete, path = "/v1/webhooks/{id}", tag = "webhooks",
    params(("id" = String, Path, description = "Webhook id")),
    responses(
        (status = 204, description = "Deleted; nothing more is delivered"),
        (status = 400, body = ProblemDoc, content_type = "application/problem+json"),
        (status = 401, body = ProblemDoc, content_type = "application/problem+json"),
        (status = 403, body = ProblemDoc, content_type = "application/problem+json"),
        (status = 404, body = ProblemDoc, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn delete(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    admin(&who, "manage webhooks")?;
    let id = parse_id(&id)?;
    if state.webhooks.delete(id).await.map_err(io)? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(not_found(id))
    }
}

#[utoipa::path(get, path = "/v1/webhooks/{id}/deliveries", tag = "webhooks",
    params(("id" = String, Path, description = "Webhook id")),
    responses(
        (status = 200, body = Deliveries),
        (status = 400, body = ProblemDoc, content_type = "application/problem+json"),
        (status = 401, body = ProblemDoc, content_type = "application/problem+json"),
        (status = 403, body = ProblemDoc, content_type = "application/problem+json"),
        (status = 404, body = ProblemDoc, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn deliveries(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
) -> Result<axum::Json<Deliveries>, ApiError> {
    let (id, hook) = readable(&state, &who, &id, "read webhooks").await?;
    let d = state.webhooks.state(id).await.map_err(io)?;
    let head_position = state.store.last_position().await?;
    Ok(axum::Json(Deliveries {
        id: id.to_string(),
        state: if hook.disabled.is_some() {
            "disabled"
        } else {
            "active"
        }
        .to_string(),
        position: d.position,
        head_position,
        failing_since: d.failing_since,
        next_retry_at: d.next_retry_at,
        attempts: d.attempts.into_iter().rev().collect(),
    }))
}
