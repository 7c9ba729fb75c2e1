//! `GET /v1/subscribe`: the log as Server-Sent Events — catch-up, then live.
//!
//! Each event is `id: <position>`, `event: <type>`, `data: <canonical JSON, one line>`.
//! Where delivery starts, first rule that applies:
//! 1. a `Last-Event-ID` header: after that position (a reconnecting browser sends it);
//! 2. `consumer=NAME`: after the consumer's last acknowledged position;
//! 3. `from_position` (inclusive; 0 or 1 = the start; default the start).
//!
//! Heartbeats are SSE comments (`: heartbeat`) every `ApiConfig::heartbeat`. A store error
//! mid-stream is sent as an `event: error` with a problem document, then the stream ends.
//! Subscriptions end when the server shuts down.

use std::convert::Infallible;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::{Stream, StreamExt};
use serde::Deserialize;

use super::auth::Principal;
use super::consumers::check_name;
use super::events::LOG_READERS;
use super::extract::Query;
use super::openapi::ProblemDoc;
use super::params::filter;
use super::problem::ApiError;
use super::state::AppState;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct SubscribeParams {
    /// First position to deliver, inclusive (0 or 1 = the start).
    pub from_position: Option<u64>,
    /// Comma-separated event types (default: all).
    pub types: Option<String>,
    /// Only streams whose name starts with this.
    pub stream_prefix: Option<String>,
    /// A durable consumer: delivery resumes after its last acknowledged position.
    pub consumer: Option<String>,
}

fn start_position(
    state: &AppState,
    headers: &HeaderMap,
    p: &SubscribeParams,
) -> Result<u64, ApiError> {
    if let Some(v) = headers.get("last-event-id") {
        let id = v
            .to_str()
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
            .ok_or_else(|| {
                ApiError::bad_field(
                    "Last-Event-ID",
                    "the Last-Event-ID header must be an event position (a non-negative integer)",
                )
            })?;
        return Ok(id + 1);
    }
    if let Some(name) = &p.consumer {
        check_name(name)?;
        let c = state.consumers.get(name).ok_or_else(|| {
            ApiError::NotFound(format!(
                "consumer {name} does not exist (create it with PUT /v1/consumers/{name})"
            ))
        })?;
        return Ok(c.position + 1);
    }
    Ok(p.from_position.unwrap_or(0).max(1))
}

/// An SSE event name may not contain line breaks.
fn event_name(t: &str) -> String {
    t.chars()
        .map(|c| if c == '\n' || c == '\r' { '_' } else { c })
        .collect()
}

#[utoipa::path(get, path = "/v1/subscribe", tag = "events",
    params(SubscribeParams,
        ("Last-Event-ID" = Option<u64>, Header, description = "Resume after this position; takes precedence")),
    responses(
        (status = 200, description = "`text/event-stream`: `id:` position, `event:` type, `data:` the canonical event JSON", content_type = "text/event-stream", body = String),
        (status = 400, body = ProblemDoc, content_type = "application/problem+json"),
        (status = 401, body = ProblemDoc, content_type = "application/problem+json"),
        (status = 403, body = ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "Unknown consumer", body = ProblemDoc, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn subscribe(
    State(state): State<AppState>,
    who: Principal,
    headers: HeaderMap,
    Query(p): Query<SubscribeParams>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    who.require(LOG_READERS, "subscribe to the log")?;
    let from = start_position(&state, &headers, &p)?;
    let filter = filter(p.types.as_deref(), p.stream_prefix.clone());
    let guard = state.metrics.subscriber();
    let metrics = state.metrics.clone();
    let events = state
        .store
        .subscribe(from, filter)
        .take_until(state.shutting_down())
        .scan(false, move |failed, item| {
            let _counted = &guard;
            if *failed {
                return futures::future::ready(None);
            }
            let ev = match item {
                Ok(ev) => {
                    metrics.event_streamed();
                    let data = serde_json::to_string(&ev).unwrap_or_default();
                    Event::default()
                        .id(ev.position.to_string())
                        .event(event_name(&ev.event_type))
                        .data(data)
                }
                Err(e) => {
                    *failed = true;
                    let problem = ApiError::Store(e).to_problem();
                    tracing::warn!(detail = %problem.detail, "subscription ended by a store error");
                    Event::default()
                        .event("error")
                        .data(problem.body().to_string())
                }
            };
            futures::future::ready(Some(Ok(ev)))
        });
    Ok(Sse::new(events).keep_alive(
        KeepAlive::new()
            .interval(state.config.heartbeat)
            .text("heartbeat"),
    ))
}
