//! `GET /openapi.json`: OpenAPI 3.1, generated from the handlers' `#[utoipa::path]`
//! annotations and the request/response types: every body is described by the schema derived
//! from the type the handler serialises (the projections' reports and states, the domain's
//! events, the API's own), so a change to a type changes the document. The reports are one
//! route but a path each here ([`super::report_docs`]). Problems and the expected version
//! (hand-serialised) are described by `*Doc` schemas; `api/tests/api/openapi.rs` checks real
//! responses of every operation against the document.

use axum::response::{IntoResponse, Response};
use serde_json::Value;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

/// An RFC 9457 problem document (`application/problem+json`): `type`, `title`, `status`,
/// `detail`, and the extension members of the problems that have them.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ProblemDoc {
    /// `urn:dealtrail:problem:<kind>`.
    #[schema(rename = "type", pattern = "^urn:dealtrail:problem:[a-z-]+$")]
    r#type: String,
    title: String,
    status: u16,
    /// What exactly was wrong.
    detail: String,
    /// Extension: the offending field or parameter.
    field: Option<String>,
    /// Extension (422): the rule broken, e.g. `deal.stage_exists`.
    rule: Option<String>,
    /// Extension (422): the offending value, as JSON text.
    value: Option<String>,
    /// Extension (422): the index of the offending event in the batch.
    index: Option<u64>,
    /// Extension (409): the stream of the append.
    stream: Option<String>,
    /// Extension (409): the expected version sent.
    #[schema(value_type = Option<ExpectedVersionDoc>)]
    expected: Option<Value>,
    /// Extension (409): the stream's actual version (null: no stream).
    actual: Option<u64>,
    /// Extension (409 `event-id-conflict`): the event id; with `position`, where it is.
    id: Option<String>,
    /// Extension: a log position (the event with a conflicting id; the first damaged one).
    position: Option<u64>,
    /// Extension (401): why a token was refused: `unknown`, `revoked`, `expired`, `rep-left`.
    reason: Option<String>,
    /// Extension (422 `missing-exchange-rate`): the first currency without a rate…
    currency: Option<String>,
    /// …for this month…
    month: Option<domain::events::Month>,
    /// …into this reporting currency.
    reporting_currency: Option<String>,
    /// Extension (422 `missing-exchange-rate`): every rate the request needed and lacks.
    missing: Option<Vec<projections::currency::Needed>>,
}

/// An event in the canonical JSON form (SPEC §1.1): the envelope's schema and a `oneOf` on
/// `type` for `data`, both derived from the domain's types.
pub type EventDoc = domain::openapi::CanonicalEvent;

/// An event to append; the server assigns the rest. Unknown fields are refused.
pub type ProposedEventDoc = domain::openapi::ProposedCanonicalEvent;

#[derive(ToSchema)]
#[allow(dead_code)]
#[schema(rename_all = "snake_case")]
pub enum ExpectedVersionKeyword {
    Any,
    NoStream,
}

/// `"any"`, `"no_stream"`, or the version of the stream's last event.
#[derive(ToSchema)]
#[allow(dead_code)]
#[serde(untagged)]
pub enum ExpectedVersionDoc {
    Keyword(ExpectedVersionKeyword),
    Version(u64),
}

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// Answers every operation with a JSON body may give, documented once rather than on each:
/// 413 (body over the limit) and 415 (not `application/json`).
struct BodyProblems;

impl Modify for BodyProblems {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
        let problem = |description: &str| {
            ResponseBuilder::new()
                .description(description)
                .content(
                    "application/problem+json",
                    ContentBuilder::new()
                        .schema(Some(Ref::from_schema_name("ProblemDoc")))
                        .build(),
                )
                .build()
        };
        for item in openapi.paths.paths.values_mut() {
            for operation in [&mut item.post, &mut item.put, &mut item.patch]
                .into_iter()
                .flatten()
            {
                if operation.request_body.is_none() {
                    continue;
                }
                let responses = &mut operation.responses.responses;
                for (status, description) in [
                    ("413", "The body is larger than the server accepts"),
                    ("415", "The body is not `application/json`"),
                ] {
                    responses
                        .entry(status.to_string())
                        .or_insert_with(|| problem(description).into());
                }
            }
        }
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "dealtrail", description = "Event-sourced CRM: the event log over HTTP (SPEC §3)."),
    paths(
        super::streams::append,
        super::streams::read_stream,
        super::events::read_log,
        super::subscribe::subscribe,
        super::consumers::put_consumer,
        super::consumers::ack,
        super::consumers::get_consumer,
        super::consumers::list,
        super::consumers::delete,
        super::consumers::reset,
        super::auth::routes::create_token,
        crate::webhooks::routes::create,
        crate::webhooks::routes::list,
        crate::webhooks::routes::get,
        crate::webhooks::routes::delete,
        crate::webhooks::routes::deliveries,
        super::auth::routes::list_tokens,
        super::auth::routes::revoke_token,
        super::auth::routes::me,
        super::report_docs::funnel,
        super::report_docs::reps,
        super::report_docs::pipeline,
        super::report_docs::channels,
        super::report_docs::win_loss,
        super::report_docs::l2c,
        super::report_docs::activity,
        super::report_docs::pool,
        super::report_docs::service,
        super::report_docs::follow_up,
        super::reads::pool,
        super::reads::deal,
        super::deals::list,
        super::reads::replay,
        super::reads::customer,
        super::reads::timeline,
        super::reads::rebuild,
        super::erase::erase_customer,
        super::erase::erase_lead,
        super::ops::healthz,
        super::ops::metrics,
        openapi_json,
    ),
    components(schemas(ProblemDoc, EventDoc, ProposedEventDoc, ExpectedVersionDoc, ExpectedVersionKeyword)),
    modifiers(&BearerAuth, &BodyProblems),
)]
pub struct ApiDoc;

#[utoipa::path(get, path = "/openapi.json", tag = "operations",
    responses((status = 200, description = "This document (OpenAPI 3.1)", content_type = "application/json", body = Object)))]
pub async fn openapi_json() -> Response {
    axum::Json(ApiDoc::openapi()).into_response()
}
