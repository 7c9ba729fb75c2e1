//! The HTTP API (SPEC §3): [`router`] builds it, [`serve`] runs it.
//!
//! Layout:
//! - [`state`]: [`AppState`] (store, limits, tokens, checkpoints, metrics) and its bootstrap.
//! - [`problem`]: errors as `application/problem+json`.
//! - [`extract`]: JSON body and query extractors whose rejections are problems.
//! - [`auth`]: bearer tokens, roles, per-stream scope; `POST /v1/tokens`.
//! - [`ownership`]: who owns a deal/customer, which team a rep is on.
//! - [`streams`], [`events`], [`subscribe`], [`consumers`]: the log endpoints; `fanout`:
//!   the one reader of the log that every SSE subscriber shares.
//! - [`erase`]: erasure of a customer's or lead's personal data (SPEC §7).
//! - [`reads`], [`deals`]: the projections (reports, deal state and replay, the deal list).
//! - [`ops`], [`metrics`], [`openapi`]: `/healthz`, `/metrics`, `/openapi.json`.
//! - [`headers`]: security headers (`nosniff` everywhere, the dashboard's CSP).
//! - [`files`], [`params`]: atomic state files; query-parameter helpers.
//! - `accept`, [`connections`]: the accept loop; limits on connections (cap, timeouts).

pub(crate) mod accept;
pub mod auth;
pub mod connections;
pub mod consumers;
pub mod deals;
pub mod erase;
pub mod events;
pub mod extract;
pub(crate) mod fanout;
pub mod files;
pub mod headers;
pub mod metrics;
pub mod openapi;
pub mod ops;
pub mod ownership;
pub mod params;
pub mod problem;
pub mod reads;
pub mod report_docs;
pub mod state;
pub mod streams;
pub mod subscribe;

use std::future::Future;

use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{delete, get, post, put};
use axum::Router;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

pub use state::{admin_token, ApiConfig, AppState, Bootstrap};

/// The whole API as a router (tests drive it with `tower::ServiceExt::oneshot`).
pub fn router(state: AppState) -> Router {
    let config = state.config.clone();
    let requests = Router::new()
        .route("/v1/streams/{stream}/events", post(streams::append))
        .route("/v1/streams/{stream}", get(streams::read_stream))
        .route("/v1/events", get(events::read_log))
        .route("/v1/consumers", get(consumers::list))
        .route(
            "/v1/consumers/{name}",
            put(consumers::put_consumer)
                .get(consumers::get_consumer)
                .delete(consumers::delete),
        )
        .route("/v1/consumers/{name}/ack", post(consumers::ack))
        .route("/v1/consumers/{name}/reset", post(consumers::reset))
        .route(
            "/v1/tokens",
            post(auth::routes::create_token).get(auth::routes::list_tokens),
        )
        .route("/v1/tokens/{id}", delete(auth::routes::revoke_token))
        .route("/v1/me", get(auth::routes::me))
        .route(
            "/v1/webhooks",
            post(crate::webhooks::routes::create).get(crate::webhooks::routes::list),
        )
        .route(
            "/v1/webhooks/{id}",
            get(crate::webhooks::routes::get).delete(crate::webhooks::routes::delete),
        )
        .route(
            "/v1/webhooks/{id}/deliveries",
            get(crate::webhooks::routes::deliveries),
        )
        .route("/v1/reports/{name}", get(reads::report))
        .route("/v1/pool", get(reads::pool))
        .route("/v1/admin/rebuild", post(reads::rebuild))
        .route("/v1/deals", get(deals::list))
        .route("/v1/deals/{id}", get(reads::deal))
        .route("/v1/deals/{id}/replay", get(reads::replay))
        .route("/v1/customers/{id}", get(reads::customer))
        .route("/v1/customers/{id}/timeline", get(reads::timeline))
        .route("/v1/customers/{id}/erase", post(erase::erase_customer))
        .route("/v1/leads/{id}/erase", post(erase::erase_lead))
        .route("/healthz", get(ops::healthz))
        .route("/metrics", get(ops::metrics))
        .route("/openapi.json", get(openapi::openapi_json))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            config.request_timeout,
        ));
    // Subscriptions are long-lived: no request timeout.
    let long_lived = Router::new().route("/v1/subscribe", get(subscribe::subscribe));
    let trace = TraceLayer::new_for_http().make_span_with(|req: &Request| {
        let request_id = req
            .headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let route = req
            .extensions()
            .get::<MatchedPath>()
            .map_or(req.uri().path(), |m| m.as_str());
        tracing::info_span!("http", method = %req.method(), route, request_id)
    });
    requests
        .merge(long_lived)
        .merge(crate::dashboard::routes())
        .fallback(problem::no_route)
        .layer(DefaultBodyLimit::max(config.max_body_bytes))
        .layer(CatchPanicLayer::custom(problem::panic_response))
        .layer(tower::util::MapResponseLayer::new(finish_response))
        .layer(trace)
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .with_state(state)
}

/// What every response gets on its way out: a problem body for a bare error status, and
/// `nosniff`. One plain function behind tower's `MapResponseLayer` rather than axum's
/// `map_response`/`from_fn` middleware, which box a future and clone the whole inner service
/// for every request (issue 19's profile: `CloneService::clone_box` per request). It sits
/// outside the panic catcher, whose answer is already a problem and gets `nosniff` here.
fn finish_response(res: Response) -> Response {
    headers::nosniff(problem::problem_for_bare_errors(res))
}

/// Serves the API on `listener` until `shutdown` resolves; then open subscriptions end,
/// in-flight requests (appends included) finish, and the function returns. Webhook
/// deliveries start here; the caller stops them afterwards ([`crate::webhooks::Webhooks::shutdown`]). Subscriptions
/// are served on a thread of their own at a lower CPU priority (see `accept`); connections
/// are capped and time out as [`ApiConfig::connections`] says.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let notify = state.shutdown.clone();
    let nice = state.config.subscriber_nice;
    let limits = state.config.connections.clone();
    state.webhooks.start().await?;
    let app = router(state);
    accept::serve(listener, app, nice, limits, async move {
        shutdown.await;
        tracing::info!("shutting down: finishing in-flight requests");
        let _ = notify.send(true);
    })
    .await
}
