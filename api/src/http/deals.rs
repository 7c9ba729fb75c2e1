//! `GET /v1/deals` (SPEC §5.1): the deal list, filtered, newest first, paged by an opaque
//! cursor. Served from the read model's deal index ([`projections::deal_list`]); the body is
//! [`crate::reports::deal_list`], what `dealtrail deals --json` prints. Scoped like the deal
//! reads ([`super::auth::scope`]): a rep lists own deals, a manager the team's; admin,
//! analyst and service every deal.

use axum::extract::{RawQuery, State};
use axum::Json;

use super::auth::{scope, Principal};
use super::openapi::ProblemDoc;
use super::problem::ApiError;
use super::state::AppState;
use crate::reports;

/// `GET /v1/deals?status&rep&team&customer_id&stage&reason&competitor&from&to&min_amount&q&limit&cursor`.
#[utoipa::path(get, path = "/v1/deals", tag = "reports",
    params(
        ("status" = Option<String>, Query, description = "open, won or lost"),
        ("rep" = Option<String>, Query, description = "current owner"),
        ("team" = Option<String>, Query, description = "the current owner's team"),
        ("customer_id" = Option<String>, Query),
        ("stage" = Option<String>, Query, description = "current stage, or the stage at close for a won or lost deal"),
        ("reason" = Option<String>, Query, description = "of the DealLost"),
        ("competitor" = Option<String>, Query, description = "of the DealLost"),
        ("from" = Option<String>, Query, description = "RFC 3339 or a date (its midnight), inclusive; bounds the close time of a won or lost deal, the open time of an open one"),
        ("to" = Option<String>, Query, description = "RFC 3339 or a date (the end of that day), inclusive"),
        ("min_amount" = Option<String>, Query),
        ("q" = Option<String>, Query, description = "case-insensitive substring of the deal id, title or customer name"),
        ("limit" = Option<u32>, Query, description = "1..1000, default 100"),
        ("cursor" = Option<String>, Query, description = "the `next_cursor` of the previous page"),
    ),
    responses(
        (status = 200, description = "A page of deals, newest first (SPEC §5.1)", body = projections::deal_list::DealList),
        (status = 400, description = "Bad parameter (the `field` names it)", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 401, body = ProblemDoc, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn list(
    State(state): State<AppState>,
    who: Principal,
    RawQuery(query): RawQuery,
) -> Result<Json<reports::Body>, ApiError> {
    // On a blocking thread, as every read of the model (see `Projector::query`).
    let query = query.unwrap_or_default();
    let body = state
        .projector
        .query(move |model| {
            let scope = scope::reps_in_scope(&who, model);
            reports::deal_list(model, &query, scope)
        })
        .await?;
    Ok(Json(body))
}
