//! # api — the `dealtrail` binary: command line, HTTP API, dashboard, projector
//!
//! Layout:
//! - [`cli`]: the command line of SPEC §4, one module per command (`import`, `export`,
//!   `report`/`replay`/`rebuild`, `demo`, `verify`, `serve`), and the exit codes scripts use.
//! - [`http`]: the HTTP API of SPEC §3 — `router(state)`, `serve(listener, state, shutdown)`,
//!   `AppState::open(store, data_dir, config, admin_token)`. See its module doc.
//! - [`dashboard`]: the managers' web pages, embedded; they read the JSON API.
//! - [`reports`]: the one dispatcher from a report name and query string to a report body,
//!   shared by HTTP and `dealtrail report --json`, so both print the same bytes.
//! - [`projector`]: the service's read model — snapshot + catch-up at start, live updates
//!   from the log's subscription, rebuild beside the live model.
//! - [`snapshot`]: the read model's snapshot file, checksummed and tied to the log.
//! - [`pool_policy`]: the public pool's release policy, appending ordinary events.
//! - [`demo`]: the deterministic demo organisation.
//! - [`telemetry`]: structured logs.
//! - [`nats`]: `serve --nats`, the log published to NATS JetStream (SPEC §6).
//! - [`webhooks`]: outbound webhooks (SPEC §6), one delivery task per webhook.
//!
//! Place in the whole: data walks one way — HTTP/CLI → domain rules (inside the store's
//! append) → `eventlog` → subscription → `projections` → HTTP/CLI reads.

pub mod cli;
pub mod dashboard;
pub mod demo;
pub mod http;
pub mod nats;
pub mod pool_policy;
pub mod projector;
pub mod reports;
pub mod snapshot;
pub mod telemetry;
pub mod webhooks;
