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
//! - [`model`]: the read model — each entity's events in business order (deal events as
//!   compact [`deal::DealOp`]s, no envelopes: [`model::EventSource`] reads whole events back
//!   from the log for the timeline and the replay), current deal folds, and the indexes.
//! - [`entries`]: each entity's entries in business order ([`entries::Entries`]: one `Vec`,
//!   or sorted chunks past 512, so a late event costs the same at any length of the stream).
//! - [`deal`]: one deal as reports see it: the domain's `DealState` plus stage visits,
//!   closes and activity kinds.
//! - [`rep_months`], [`funnel_index`]: figures kept current as events arrive (rep trends per
//!   month; the whole-history funnel overall and per owner), so the reports without `as_of`
//!   do not scan every deal. The model also keeps the open deals' states and each rep's won
//!   deals. A rebuild ([`ReadModel::deferred`] … [`ReadModel::finish`]) builds them in one
//!   pass at the end; property tests check both against the scans.
//! - [`deal_list`]: the deal list (SPEC §5.1) and its index ([`deal_list::DealIndex`]: deals
//!   per status and per owner, by the deal's time), kept current like the others.
//! - [`num`]: rounding, medians, p90, ratios — the number conventions.
//! - [`currency`]: the reporting currency, exchange rates, and converting each deal's amount
//!   when a report runs (the model keeps native amounts, so rates may arrive late).
//! - [`params`]: [`ParamError`] and the period type shared by report parameters.
//! - one module per report: [`timeline`] (§2.1), [`replay`] (§2.2 state as of, replay),
//!   [`funnel`] (§2.3), [`reps`] (§2.4), [`pipeline`] (§2.5), [`channels`], [`winloss`],
//!   [`l2c`], [`pool`], [`activity`] (§2.6), [`service`] (§2.7), [`follow_up`] (§2.8).
//! - [`service_index`], [`follow_up_index`]: the figures those two read at "now", kept
//!   current like [`rep_months`].
//!
//! Time: a deal's (customer's, lead's) events are folded in business order, by
//! (`occurred_at`, `position`), so late-logged events land where they happened; "as of T"
//! keeps only events with `occurred_at ≤ T`. Months and weeks are calendar periods of
//! `occurred_at`, UTC.
//!
//! Numbers (see [`num`]): ratios to 4 decimals, `null` on a zero denominator; days as
//! fractional days to 1 decimal (statistics on unrounded values); amounts as [`domain::Money`].
//!
//! Parameters: each report has a `…Params` struct (query-string names, `Deserialize`,
//! all optional) whose `validate()` applies the defaults and returns the checked query or a
//! [`ParamError`] naming the parameter. Times accept RFC 3339 or a bare date (midnight UTC).
//!
//! Where this crate meets `domain`: [`typed::typed`] is the only
//! place an envelope is parsed (→ `domain::schema::typed`); every state (deals, customers,
//! leads) is the domain's fold (`domain::state`), which this crate only adds history to.
//!
//! Persistence: the [`ReadModel`] is `Serialize`/`Deserialize` (without its indexes and
//! deal folds, which are rebuilt when it is read back) and carries `last_position`, so persisting it as one
//! blob records the position it reflects atomically; resuming means applying events after
//! that position (re-delivered ones are ignored). "As of" keeps each entity's events sorted
//! so a past state is a prefix fold. Still scanning every deal: reports with `as_of`, a
//! period or a grouping other than none/rep (funnel), and channels, win/loss, l2c, activity
//! (service and follow-up with an `as_of` before the latest event scan the customers, deals
//! and leads too).
//!
//! Place in the whole: reads `domain` types; `api` and the CLI call the report functions.

pub mod activity;
pub mod channels;
pub mod currency;
pub mod deal;
pub mod deal_list;
pub mod entries;
pub mod follow_up;
pub mod follow_up_index;
pub mod funnel;
pub mod funnel_index;
pub mod l2c;
pub mod model;
pub mod num;
pub mod params;
pub mod pipeline;
pub mod pool;
pub mod rep_months;
pub mod replay;
pub mod reps;
pub mod service;
pub mod service_index;
pub mod timeline;
pub mod typed;
pub mod winloss;

pub use deal::{DealState, DealStatus, DealView};
pub use model::ReadModel;
pub use params::ParamError;
