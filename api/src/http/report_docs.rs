//! The OpenAPI description of each report of `GET /v1/reports/{name}` as a path of its own
//! (`/v1/reports/funnel`, …): its query parameters and its body are the projections' own
//! types (`…Params`, and the report struct the handler serialises), so the document cannot
//! drift from what is served. The functions are never called: the one route
//! [`super::reads::report`] serves them all.
#![allow(dead_code)]

use projections::{
    activity, channels, follow_up, funnel, l2c, params, pipeline, pool, reps, service, winloss,
};

use super::openapi::ProblemDoc;

/// What any report may answer instead of its body.
#[derive(utoipa::IntoResponses)]
pub enum ReportErrors {
    /// Bad parameter (the `field` names it).
    #[response(status = 400, content_type = "application/problem+json")]
    BadParameter(ProblemDoc),
    /// No, unknown, revoked or expired token.
    #[response(status = 401, content_type = "application/problem+json")]
    Unauthorized(ProblemDoc),
    /// A service token; channels and l2c for a rep or manager token; the follow-up list of a
    /// rep outside the caller's scope.
    #[response(status = 403, content_type = "application/problem+json")]
    Forbidden(ProblemDoc),
    /// (follow-up) a rep the log does not know.
    #[response(status = 404, content_type = "application/problem+json")]
    NotFound(ProblemDoc),
    /// An amount the report shows is in a currency without an exchange rate for the month it
    /// needs (`currency`, `month`: the first; `missing`: all).
    #[response(status = 422, content_type = "application/problem+json")]
    MissingRate(ProblemDoc),
}

#[utoipa::path(get, path = "/v1/reports/funnel", tag = "reports", operation_id = "report_funnel",
    description = "SPEC §2.3. A rep or manager token: over its own scope.",
    params(funnel::FunnelParams),
    responses((status = 200, body = funnel::Funnel), ReportErrors),
    security(("bearer" = [])))]
pub async fn funnel() {}

#[utoipa::path(get, path = "/v1/reports/reps", tag = "reports", operation_id = "report_reps",
    description = "SPEC §2.4. A rep or manager token: over its own scope.",
    params(reps::RepsParams),
    responses((status = 200, body = reps::Reps), ReportErrors),
    security(("bearer" = [])))]
pub async fn reps() {}

#[utoipa::path(get, path = "/v1/reports/pipeline", tag = "reports", operation_id = "report_pipeline",
    description = "SPEC §2.5. A rep or manager token: over its own scope.",
    params(pipeline::PipelineParams),
    responses((status = 200, body = pipeline::Pipeline), ReportErrors),
    security(("bearer" = [])))]
pub async fn pipeline() {}

#[utoipa::path(get, path = "/v1/reports/channels", tag = "reports", operation_id = "report_channels",
    description = "SPEC §2.6. Organisation-wide only (admin, analyst).",
    params(params::PeriodParams),
    responses((status = 200, body = channels::Channels), ReportErrors),
    security(("bearer" = [])))]
pub async fn channels() {}

#[utoipa::path(get, path = "/v1/reports/win-loss", tag = "reports", operation_id = "report_win_loss",
    description = "SPEC §2.6. A rep or manager token: over its own scope.",
    params(params::PeriodParams),
    responses((status = 200, body = winloss::WinLoss), ReportErrors),
    security(("bearer" = [])))]
pub async fn win_loss() {}

#[utoipa::path(get, path = "/v1/reports/l2c", tag = "reports", operation_id = "report_l2c",
    description = "SPEC §2.6, lead to cash. Organisation-wide only (admin, analyst).",
    params(params::PeriodParams),
    responses((status = 200, body = l2c::LeadToCash), ReportErrors),
    security(("bearer" = [])))]
pub async fn l2c() {}

#[utoipa::path(get, path = "/v1/reports/activity", tag = "reports", operation_id = "report_activity",
    description = "SPEC §2.6. A rep or manager token: over its own scope.",
    params(params::PeriodParams),
    responses((status = 200, body = activity::Activity), ReportErrors),
    security(("bearer" = [])))]
pub async fn activity() {}

#[utoipa::path(get, path = "/v1/reports/pool", tag = "reports", operation_id = "report_pool",
    description = "SPEC §2.6, the public pool (the same as `GET /v1/pool`).",
    params(pool::PoolParams),
    responses((status = 200, body = pool::Pool), ReportErrors),
    security(("bearer" = [])))]
pub async fn pool() {}

#[utoipa::path(get, path = "/v1/reports/service", tag = "reports", operation_id = "report_service",
    description = "SPEC §2.7. A rep or manager token: the customers owned in scope at each month's end.",
    params(service::ServiceParams),
    responses((status = 200, body = service::Service), ReportErrors),
    security(("bearer" = [])))]
pub async fn service() {}

#[utoipa::path(get, path = "/v1/reports/follow-up", tag = "reports", operation_id = "report_follow_up",
    description = "SPEC §2.8. A rep reads their own list (`rep` may be left out), a manager names a rep of the team, an admin or analyst any known rep.",
    params(follow_up::FollowUpParams),
    responses((status = 200, body = follow_up::FollowUp), ReportErrors),
    security(("bearer" = [])))]
pub async fn follow_up() {}
