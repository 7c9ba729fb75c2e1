//! Reads of the projections (SPEC §2, §3): reports, the pool, deal state and replay,
//! customer state and timeline. Report bodies come from [`crate::reports`], the same
//! functions `dealtrail report --json` prints, so the two agree byte for byte. Who sees
//! what: the table in [`super::auth::scope`].

use axum::extract::{Path, RawQuery, State};
use axum::Json;
use chrono::Utc;
use domain::{Category, StreamName};
use serde_json::Value;

use super::auth::{scope, Principal, Role};
use super::openapi::ProblemDoc;
use super::problem::ApiError;
use super::state::AppState;
use crate::reports::{self, ReportError};

/// Who may read reports and the pool (a rep or a manager over their own scope).
const REPORT_READERS: &[Role] = &[Role::Admin, Role::Manager, Role::Rep, Role::Analyst];

impl From<ReportError> for ApiError {
    fn from(e: ReportError) -> ApiError {
        match e {
            ReportError::UnknownReport(_) => ApiError::NotFound(e.to_string()),
            ReportError::BadParameter { ref param, .. } => {
                ApiError::bad_field(param.clone(), e.to_string())
            }
            // Only an organisation-wide caller may read it: the role decides, like a 403.
            ReportError::OrganisationOnly(_) | ReportError::RepOutOfScope(_) => {
                ApiError::Forbidden(e.to_string())
            }
            ReportError::UnknownRep(_) => ApiError::NotFound(e.to_string()),
            // The request is fine; the log lacks a rate: 422, naming the currency and month.
            ReportError::MissingRate(m) => ApiError::MissingRate(Box::new(m)),
        }
    }
}

/// A report value as a JSON body; failing to serialise is ours, never the client's.
fn body<T: serde::Serialize>(v: T) -> Result<Value, ApiError> {
    serde_json::to_value(v).map_err(|e| ApiError::Internal(e.to_string()))
}

fn entity(category: Category, id: &str) -> Result<StreamName, ApiError> {
    StreamName::parse(&format!("{}-{id}", category.as_str()))
        .map_err(|e| ApiError::bad_field("id", e.to_string()))
}

/// `GET /v1/reports/{name}`: described in the OpenAPI document as one path per report
/// ([`super::report_docs`]).
pub async fn report(
    State(state): State<AppState>,
    who: Principal,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Json<reports::Body>, ApiError> {
    scoped_report(&state, &who, &name, query.as_deref()).await
}

/// Report `name` over what `who` sees: the whole organisation for an admin or an analyst,
/// the deals and work of the rep or the manager's team otherwise (scope table). Computed on
/// a blocking thread ([`Projector::query`](crate::projector::Projector::query)).
async fn scoped_report(
    state: &AppState,
    who: &Principal,
    name: &str,
    query: Option<&str>,
) -> Result<Json<reports::Body>, ApiError> {
    who.require(REPORT_READERS, "read reports")?;
    if name == "follow-up" && who.role == Role::Manager && !names_a_rep(query.unwrap_or("")) {
        // A manager's own scope is a team, not a list: the manager names the rep.
        return Err(ApiError::bad_field(
            "rep",
            "required: a manager names a rep of the team whose follow-up list to show",
        ));
    }
    let options = reports::ReportOptions {
        pool_release_after_days: state.config.pool_release_after_days,
    };
    let (who, name, query) = (
        who.clone(),
        name.to_string(),
        query.unwrap_or("").to_string(),
    );
    let body = state
        .projector
        .query(move |model| {
            let scope = scope::reps_in_scope(&who, model);
            reports::run_with(model, &name, &query, Utc::now(), scope, &options)
        })
        .await?;
    Ok(Json(body))
}

/// Whether the query string has a non-empty `rep`.
fn names_a_rep(query: &str) -> bool {
    form_urlencoded::parse(query.as_bytes()).any(|(k, v)| k == "rep" && !v.is_empty())
}

/// `GET /v1/pool`.
#[utoipa::path(get, path = "/v1/pool", tag = "reports",
    params(("as_of" = Option<String>, Query, description = "RFC 3339")),
    responses(
        (status = 200, description = "The public pool (SPEC §2.6)", body = projections::pool::Pool),
        (status = 400, description = "Bad parameter (the `field` names it)", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 401, body = ProblemDoc, content_type = "application/problem+json"),
        (status = 403, body = ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "Unknown, or not visible to the caller", body = ProblemDoc, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn pool(
    State(state): State<AppState>,
    who: Principal,
    RawQuery(query): RawQuery,
) -> Result<Json<reports::Body>, ApiError> {
    scoped_report(&state, &who, "pool", query.as_deref()).await
}

/// `GET /v1/deals/{id}?as_of=`: the deal's state (SPEC §2.2).
#[utoipa::path(get, path = "/v1/deals/{id}", tag = "reports",
    params(("id" = String, Path), ("as_of" = Option<String>, Query, description = "RFC 3339")),
    responses(
        (status = 200, description = "The deal's state (SPEC §2.2)", body = projections::DealState),
        (status = 400, description = "Bad parameter (the `field` names it)", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 401, body = ProblemDoc, content_type = "application/problem+json"),
        (status = 403, body = ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "Unknown, or not visible to the caller", body = ProblemDoc, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn deal(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let stream = entity(Category::Deal, &id)?;
    scope::check_read(&state, &who, &stream).await?;
    let (deal_id, query) = (id.clone(), query.unwrap_or_default());
    state
        .projector
        .query(move |model| reports::deal_state(model, &deal_id, &query))
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::NotFound(format!("deal {id} not found")))
}

/// `GET /v1/deals/{id}/replay`.
#[utoipa::path(get, path = "/v1/deals/{id}/replay", tag = "reports",
    params(("id" = String, Path)),
    responses(
        (status = 200, description = "Every step with the state after it, and the analysis (SPEC §2.2)", body = projections::replay::Replay),
        (status = 400, description = "Bad parameter (the `field` names it)", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 401, body = ProblemDoc, content_type = "application/problem+json"),
        (status = 403, body = ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "Unknown, or not visible to the caller", body = ProblemDoc, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn replay(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let stream = entity(Category::Deal, &id)?;
    scope::check_read(&state, &who, &stream).await?;
    let events = reports::deal_events(state.store.as_ref(), &id).await?;
    let deal_id = id.clone();
    let replay = state
        .projector
        .query(move |model| {
            reports::replay(model, &deal_id, &events, Utc::now()).map(serde_json::to_value)
        })
        .await
        .ok_or_else(|| ApiError::NotFound(format!("deal {id} not found")))?
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(Json(replay))
}

/// `GET /v1/customers/{id}?as_of=`: the customer folded over its stream.
#[utoipa::path(get, path = "/v1/customers/{id}", tag = "reports",
    params(("id" = String, Path), ("as_of" = Option<String>, Query, description = "RFC 3339")),
    responses(
        (status = 200, description = "The customer's state", body = domain::state::CustomerState),
        (status = 400, description = "Bad parameter (the `field` names it)", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 401, body = ProblemDoc, content_type = "application/problem+json"),
        (status = 403, body = ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "Unknown, or not visible to the caller", body = ProblemDoc, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn customer(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let stream = entity(Category::Customer, &id)?;
    scope::check_read(&state, &who, &stream).await?;
    let as_of = reports::parse_query::<projections::replay::DealStateParams>(
        query.as_deref().unwrap_or(""),
    )?
    .as_of;
    let events: Vec<_> = state
        .store
        .read_stream(&stream.to_string(), 0, usize::MAX)
        .await?
        .into_iter()
        .filter(|e| as_of.is_none_or(|t| e.occurred_at <= t))
        .collect();
    match domain::state::fold_stream(&stream.to_string(), &events) {
        domain::state::StreamState::Customer(c) => Ok(Json(body(c)?)),
        _ => Err(ApiError::NotFound(format!("customer {id} not found"))),
    }
}

/// `GET /v1/customers/{id}/timeline?limit&before&types&kinds&as_of` (SPEC §2.1).
#[utoipa::path(get, path = "/v1/customers/{id}/timeline", tag = "reports",
    params(("id" = String, Path), ("limit" = Option<u32>, Query), ("before" = Option<u64>, Query, description = "position of the last event already seen"), ("types" = Option<String>, Query), ("kinds" = Option<String>, Query), ("as_of" = Option<String>, Query)),
    responses(
        (status = 200, description = "The timeline, newest first, paged (SPEC §2.1)", body = projections::timeline::Timeline),
        (status = 400, description = "Bad parameter (the `field` names it)", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 401, body = ProblemDoc, content_type = "application/problem+json"),
        (status = 403, body = ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "Unknown, or not visible to the caller", body = ProblemDoc, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn timeline(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let stream = entity(Category::Customer, &id)?;
    scope::check_read(&state, &who, &stream).await?;
    let mut q = reports::parse_query::<projections::timeline::TimelineParams>(
        query.as_deref().unwrap_or(""),
    )?
    .validate()
    .map_err(ReportError::from)?;
    let customer_id = id.clone();
    let page = state
        .projector
        .query(move |model| {
            q.scope = scope::reps_in_scope(&who, model);
            projections::timeline::page(model, &customer_id, &q)
        })
        .await
        .map_err(ReportError::from)?
        .ok_or_else(|| ApiError::NotFound(format!("customer {id} not found")))?;
    let events = reports::events_at(state.store.as_ref(), &page.positions).await?;
    Ok(Json(body(page.fill(&events))?))
}

/// `POST /v1/admin/rebuild`: rebuilds the read model from the log beside the live one and
/// swaps it in atomically; readers see the old model until the swap. Admin only.
#[utoipa::path(post, path = "/v1/admin/rebuild", tag = "operations",
    responses(
        (status = 200, description = "The log position the new model reflects", body = Rebuilt),
        (status = 401, body = ProblemDoc, content_type = "application/problem+json"),
        (status = 403, body = ProblemDoc, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn rebuild(
    State(state): State<AppState>,
    who: Principal,
) -> Result<Json<Rebuilt>, ApiError> {
    who.require(&[Role::Admin], "rebuild the read models")?;
    let started = std::time::Instant::now();
    let position = state.projector.rebuild(state.store.as_ref()).await?;
    Ok(Json(Rebuilt {
        position,
        seconds: started.elapsed().as_secs_f64(),
    }))
}

/// `POST /v1/admin/rebuild`'s answer.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct Rebuilt {
    /// The log position the new read model reflects.
    pub position: u64,
    /// How long the rebuild took.
    pub seconds: f64,
}
