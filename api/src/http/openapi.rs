//! `GET /openapi.json`: OpenAPI 3.1, generated from the handlers' `#[utoipa::path]`
//! annotations and the request/response types. Types owned by other crates
//! (`RecordedEvent`, `ProposedEvent`, `ExpectedVersion`) are described here by `*Doc` schemas.

use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

/// An RFC 9457 problem document (`application/problem+json`).
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ProblemDoc {
    /// `urn:dealtrail:problem:<kind>`.
    #[schema(rename = "type")]
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
    /// Extension (409): the expected version sent.
    #[schema(value_type = Option<ExpectedVersionDoc>)]
    expected: Option<Value>,
    /// Extension (409): the stream's actual version (null: no stream).
    actual: Option<u64>,
}

/// An event in the canonical JSON form (SPEC §1.1).
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct EventDoc {
    #[schema(format = "uuid")]
    id: String,
    stream: String,
    #[schema(rename = "type")]
    r#type: String,
    /// 0-based index within the stream.
    version: u64,
    /// 1-based global position.
    position: u64,
    #[schema(format = DateTime)]
    occurred_at: String,
    #[schema(format = DateTime)]
    recorded_at: String,
    actor: String,
    data: Map<String, Value>,
    metadata: Map<String, Value>,
}

/// An event to append; the server assigns the rest. Unknown fields are refused.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ProposedEventDoc {
    /// Idempotency key; a UUIDv7 is assigned when absent.
    #[schema(format = "uuid")]
    id: Option<String>,
    #[schema(rename = "type")]
    r#type: String,
    /// Business time; defaults to the recording time.
    #[schema(format = DateTime)]
    occurred_at: Option<String>,
    /// Defaults to the caller (a rep's id, the token subject).
    actor: Option<String>,
    data: Map<String, Value>,
    /// At most 4 KiB serialised.
    metadata: Option<Map<String, Value>>,
}

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
        super::auth::routes::create_token,
        crate::webhooks::routes::create,
        crate::webhooks::routes::list,
        crate::webhooks::routes::get,
        crate::webhooks::routes::delete,
        crate::webhooks::routes::deliveries,
        super::auth::routes::list_tokens,
        super::auth::routes::revoke_token,
        super::auth::routes::me,
        super::reads::report,
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
    modifiers(&BearerAuth),
)]
pub struct ApiDoc;

#[utoipa::path(get, path = "/openapi.json", tag = "operations",
    responses((status = 200, description = "This document (OpenAPI 3.1)", content_type = "application/json", body = Object)))]
pub async fn openapi_json() -> Response {
    axum::Json(ApiDoc::openapi()).into_response()
}
