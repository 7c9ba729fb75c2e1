//! The rules of SPEC §1.3 (and a few more a careful user expects), as pure functions.
//!
//! Decide and apply are separate: each event is checked against the state left by the
//! events before it ([`crate::state`] folds), and the whole batch passes or nothing does.
//! Files: `catalog` (the rule codes), `envelope` (stream, actor, metadata, times, type,
//! opening events), `values` (field values), `deal`, `customer`, `lead`, `org`.

mod catalog;
mod customer;
mod deal;
mod envelope;
mod erased;
mod lead;
mod org;
mod values;

use std::borrow::Cow;

use chrono::{DateTime, Utc};

pub use catalog::*;
pub use envelope::{check_metadata_size, serialised_len};

use crate::envelope::{Category, RecordedEvent, StreamName};
use crate::events::Event;
use crate::rejection::Rejection;
use crate::state::{CustomerState, OrgState, StreamState};

/// What the rules need besides the stream itself.
#[derive(Clone, Copy)]
pub struct Context<'a> {
    /// The organisation in force: pipeline, reps, targets.
    pub org: &'a OrgState,
    /// The validator's current time; `recorded_at` may not be later than this + 5 minutes.
    pub now: DateTime<Utc>,
    /// The customers as they stand before the batch (`deal.customer_owner` reads the one a
    /// `DealOpened` names; [`customer_named`] says which, so a caller can fold it first).
    pub customers: &'a dyn Customers,
}

impl std::fmt::Debug for Context<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("org", self.org)
            .field("now", &self.now)
            .finish_non_exhaustive()
    }
}

/// Other streams' state the rules read: customers, folded by the caller like any stream.
pub trait Customers {
    /// The customer's state now; `None` when no customer is registered under `customer_id`.
    fn customer(&self, customer_id: &str) -> Option<CustomerState>;

    /// What the rules read of it: its owner (`Some(None)`: in the public pool); `None` when
    /// no customer is registered under `customer_id`. A caller that holds the states can
    /// answer without copying one.
    fn owner(&self, customer_id: &str) -> Option<Option<String>> {
        self.customer(customer_id).map(|c| c.owner)
    }
}

impl<F: Fn(&str) -> Option<CustomerState>> Customers for F {
    fn customer(&self, customer_id: &str) -> Option<CustomerState> {
        self(customer_id)
    }
}

/// The customer whose state the rules read to check `batch` on `stream` (the one a deal's
/// `DealOpened` names), if any: a caller that folds states on demand loads it first.
pub fn customer_named(stream: &str, batch: &[RecordedEvent]) -> Option<String> {
    let first = batch.first()?;
    if !stream.starts_with("deal-") || first.event_type != "DealOpened" {
        return None;
    }
    match crate::schema::typed(first) {
        Ok(Event::DealOpened(o)) => Some(o.customer_id),
        _ => None,
    }
}

/// Checks a batch about to be appended to `stream`, whose state before the batch is `state`.
/// Each event is checked against the state left by the previous ones; on success the state
/// after the whole batch is returned. On failure the rejection's `index` is the position of
/// the offending event in the batch (`None` when the stream name itself is refused) and the
/// caller must write nothing. Events are upcast to the current schema before checking.
///
/// ```
/// use domain::rules::{check_batch, Context};
/// use domain::state::{CustomerState, OrgState, StreamState};
/// use domain::RecordedEvent;
///
/// let line = |v: u64, t: &str, data: &str| -> RecordedEvent {
///     serde_json::from_str(&format!(
///         r#"{{"id":"0192f4c2-6b1e-7c3a-9d2e-1f00c0ffee0{v}","stream":"deal-D-1","type":"{t}","version":{v},
///            "position":{v},"occurred_at":"2026-06-03T09:30:0{v}Z","recorded_at":"2026-06-03T09:30:0{v}Z",
///            "actor":"wukong","data":{data}}}"#
///     ))
///     .unwrap()
/// };
/// let opened = line(0, "DealOpened",
///     r#"{"customer_id":"C-77","owner":"wukong","title":"ERP","amount":120000.0,"stage":"qualified"}"#);
/// let moved = line(1, "DealStageChanged", r#"{"from":"qualified","to":"quote"}"#);
/// let bad = line(2, "DealStageChanged", r#"{"from":"qualified","to":"contract"}"#);
///
/// // The org in force: wukong joined (`rep.active` accepts only reps who joined).
/// let mut joined = line(0, "RepJoined", r#"{"rep":"wukong","name":"Sun Wukong","team":"east"}"#);
/// joined.stream = "org-acme".into();
/// let mut org = OrgState::default();
/// org.apply(&joined);
/// // The deal's customer, owned by its rep (see `deal.customer_owner`).
/// let customers = |id: &str| (id == "C-77").then(|| {
///     let reg = serde_json::from_value(serde_json::json!({"name": "Huaguo", "owner": "wukong"})).unwrap();
///     CustomerState::registered(id, &reg, domain::envelope::parse_time("2026-05-01T00:00:00Z").unwrap())
/// });
/// let ctx = Context { org: &org, now: domain::envelope::parse_time("2026-06-04T00:00:00Z").unwrap(), customers: &customers };
/// let state = check_batch(&ctx, &StreamState::Empty, "deal-D-1", &[opened.clone(), moved.clone()]).unwrap();
/// assert_eq!(&*state.as_deal().unwrap().stage, "quote");
///
/// let refused = check_batch(&ctx, &StreamState::Empty, "deal-D-1", &[opened, moved, bad]).unwrap_err();
/// assert_eq!((refused.index, refused.rule, refused.field.as_str()), (Some(2), "deal.stage_from", "data.from"));
/// ```
pub fn check_batch(
    ctx: &Context,
    state: &StreamState,
    stream: &str,
    batch: &[RecordedEvent],
) -> Result<StreamState, Rejection> {
    check_batch_owned(ctx, state.clone(), stream, batch)
}

/// [`check_batch`] on a state the caller gives up (no copy of it: a customer's state is
/// strings that every append to the customer copied otherwise).
pub fn check_batch_owned(
    ctx: &Context,
    mut state: StreamState,
    stream: &str,
    batch: &[RecordedEvent],
) -> Result<StreamState, Rejection> {
    let name = StreamName::parse(stream)
        .map_err(|e| STREAM_NAME.reject("stream", json_text(stream), e.to_string()))?;
    let mut org = Cow::Borrowed(ctx.org);
    for (i, ev) in batch.iter().enumerate() {
        let event = check_event(ctx, &org, &state, &name, ev).map_err(|r| r.at(i))?;
        if name.category == Category::Org {
            org.to_mut().apply_event(&event, ev.occurred_at);
        }
        state.apply_event(&name, &event, ev.occurred_at);
    }
    Ok(state)
}

/// Checks one event against the state before it; gives the typed event.
fn check_event(
    ctx: &Context,
    org: &OrgState,
    state: &StreamState,
    name: &StreamName,
    ev: &RecordedEvent,
) -> Result<Event, Rejection> {
    envelope::check_envelope(ctx.now, name, ev)?;
    let event = envelope::check_type_and_data(name, ev)?;
    envelope::check_opening(state, name, &event, ev)?;
    values::check_values(&event)?;
    erased::check(state, name, ev)?;
    match &event {
        Event::RepJoined(_)
        | Event::RepLeft(_)
        | Event::TargetSet(_)
        | Event::ExchangeRateSet(_)
        | Event::PipelineDefined(_) => org::check(org, &event)?,
        Event::ActivityLogged(a) => org::rep_active(org, "rep", &a.rep)?,
        _ => {}
    }
    match name.category {
        Category::Deal => deal::check(org, ctx.customers, state, &event)?,
        Category::Customer => customer::check(org, state, &event)?,
        Category::Lead => lead::check(org, state, &event)?,
        Category::Org | Category::Channel => {}
    }
    Ok(event)
}
