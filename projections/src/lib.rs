//! # projections — read models and reports (SPEC §2)
//!
//! Every report is a pure function of the log: the service keeps a [`ReadModel`] current
//! by calling [`ReadModel::apply`] for each event it is told about; `dealtrail report`
//! builds the same model offline with [`ReadModel::rebuild`]; both then call the same report
//! functions with the same parameter structs, so figures (and JSON bodies) are identical.
//! No report reads a clock: "now" is a parameter.
//!
//! Layout:
//! - [`typed`]: the one place an envelope becomes a typed event (seam for `domain::schema`).
//! - [`model`]: the read model — each entity's events in business order, current deal folds.
//! - [`deal`]: one deal folded (seam for `domain::state::DealState`).
//! - [`num`]: rounding, medians, p90, ratios — the number conventions.
//! - [`params`]: [`ParamError`] and the period type shared by report parameters.
//! - one module per report: [`timeline`] (§2.1), [`replay`] (§2.2 state as of, replay),
//!   [`funnel`] (§2.3), [`reps`] (§2.4), [`pipeline`] (§2.5), [`channels`], [`winloss`],
//!   [`l2c`], [`pool`], [`activity`] (§2.6).
//!
//! Time: a deal's (customer's, lead's) events are folded in business order, by
//! (`occurred_at`, `position`), so late-logged events land where they happened; "as of T"
//! keeps only events with `occurred_at ≤ T`. Months and weeks are calendar periods of
//! `occurred_at`, UTC.
//!
//! Place in the whole: reads `domain` types; `api` and the CLI call the report functions.

pub mod activity;
pub mod channels;
pub mod deal;
pub mod funnel;
pub mod l2c;
pub mod model;
pub mod num;
pub mod params;
pub mod pipeline;
pub mod pool;
pub mod replay;
pub mod reps;
pub mod timeline;
pub mod typed;
pub mod winloss;

pub use deal::{DealState, DealStatus, DealView};
pub use model::ReadModel;
pub use params::ParamError;
