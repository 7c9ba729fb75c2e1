//! # api — HTTP, auth, dashboard and the `dealtrail` binary
//!
//! Layout:
//! - [`http`]: the HTTP API of SPEC §3 — `router(state)`, `serve(listener, state, shutdown)`,
//!   `AppState::open(store, data_dir, config, admin_token)`. See its module doc.
//! - `main.rs` and `cli/` (the command line) call into `http`.
//!
//! Place in the whole: appends go through `eventlog` (whose validator applies the `domain`
//! rules); reads and subscriptions come straight from the log; reports come from
//! `projections` (added at the merge point marked in `http`).

pub mod http;
