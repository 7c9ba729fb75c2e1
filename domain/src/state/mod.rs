//! State folding: what a stream looks like after its events. `apply` is total: it never
//! fails and never panics; events it does not understand are ignored (the rules keep them
//! out of the log in the first place).
//!
//! ## The one ordering rule: business order
//! A stream's state is its events folded in **business order**: by (`occurred_at`,
//! `position`), `position` breaking ties. Log order (`position` alone) differs only for late
//! entries (`occurred_at` set in the past: imports, "the call was yesterday"), and then the
//! late event takes its place in business time. So the state "now" is the state as of the end
//! of time, and the state as of T is the fold of the events with `occurred_at ≤ T`, a prefix
//! of the same order (SPEC §2.1, §2.2). Every read folds this way: [`fold_stream`] (the
//! customer GET, the rules), [`Owners`] (the API's scope: the owner the fold ends with, kept
//! event by event), and `projections`, whose read model keeps each entity's events in this
//! order and folds them with these same `apply_event`s (deals: [`DealState::apply`] over the
//! compact [`DealOp`]s it keeps). The organisation is one state over the events of every
//! `org-` stream, folded in the same order ([`OrgState::fold`], [`OrgFold`]) by the rules,
//! the reports and the API's team index. The rules check an event against the stream's state
//! in this order as it stands before the append; an event that is late within its stream is
//! checked against that state, and then folded in its place (a cache of states must fold the
//! stream again: [`is_late`]).

mod customer;
mod deal;
mod lead;
mod org;
mod owners;

use std::sync::Arc;

use chrono::{DateTime, Utc};

pub use customer::CustomerState;
pub use deal::{DealOp, DealState, DealStatus, Installment, Lost, Opened, Scheduled};
pub use lead::{LeadState, LeadStatus};
pub use org::{OrgFold, OrgState, Pipeline, Rep, TargetScope, DEFAULT_CURRENCY};
pub use owners::{Owner, Owners};

use crate::envelope::{Category, RecordedEvent, StreamName};
use crate::events::Event;

/// For `skip_serializing_if`: a flag that is off is left out of the JSON.
pub(crate) fn is_false(b: &bool) -> bool {
    !*b
}

/// The state of one stream, as the rules need it.
#[derive(Debug, Clone, PartialEq)]
#[allow(clippy::large_enum_variant)]
pub enum StreamState {
    /// No opening event yet (a deal, customer or lead stream that does not exist yet,
    /// or an org/channel stream without events).
    Empty,
    Deal(DealState),
    Customer(CustomerState),
    Lead(LeadState),
    /// The org stream has events; its state is [`OrgState`], kept by the caller.
    Org,
    /// A channel stream has events (spend only; reports sum it).
    Channel,
}

impl StreamState {
    /// Folds one typed event of a stream of `name`'s category; `at` is its `occurred_at`.
    pub fn apply_event(&mut self, name: &StreamName, event: &Event, at: DateTime<Utc>) {
        match (&mut *self, name.category, event) {
            (StreamState::Empty, Category::Deal, Event::DealOpened(_)) => {
                if let DealOp::Opened(o) = DealOp::of(event, &mut |s| Arc::from(s)) {
                    *self = StreamState::Deal(DealState::opened(&name.entity, &o, at));
                }
            }
            (StreamState::Empty, Category::Customer, Event::CustomerRegistered(r)) => {
                *self = StreamState::Customer(CustomerState::registered(&name.entity, r, at));
            }
            (StreamState::Empty, Category::Lead, Event::LeadCaptured(c)) => {
                *self = StreamState::Lead(LeadState::captured(&name.entity, c, at));
            }
            (StreamState::Empty, Category::Org, _) => *self = StreamState::Org,
            (StreamState::Empty, Category::Channel, _) => *self = StreamState::Channel,
            (StreamState::Deal(d), _, e) => d.apply_event(e, at),
            (StreamState::Customer(c), _, e) => c.apply_event(e, at),
            (StreamState::Lead(l), _, e) => l.apply_event(e, at),
            _ => {}
        }
    }

    /// Folds one recorded event (upcast and parsed first; an unparsable event is ignored).
    pub fn apply(&mut self, name: &StreamName, ev: &RecordedEvent) {
        if let Ok(event) = crate::schema::typed(ev) {
            self.apply_event(name, &event, ev.occurred_at);
        }
    }

    pub fn as_deal(&self) -> Option<&DealState> {
        match self {
            StreamState::Deal(d) => Some(d),
            _ => None,
        }
    }

    pub fn as_customer(&self) -> Option<&CustomerState> {
        match self {
            StreamState::Customer(c) => Some(c),
            _ => None,
        }
    }

    pub fn as_lead(&self) -> Option<&LeadState> {
        match self {
            StreamState::Lead(l) => Some(l),
            _ => None,
        }
    }

    /// `occurred_at` of the stream's opening event, for deal, customer and lead streams.
    pub fn opened_at(&self) -> Option<DateTime<Utc>> {
        match self {
            StreamState::Deal(d) => Some(d.opened_at),
            StreamState::Customer(c) => Some(c.registered_at),
            StreamState::Lead(l) => Some(l.captured_at),
            _ => None,
        }
    }
}

/// The key of business order: (`occurred_at`, `position`).
pub fn business_key(ev: &RecordedEvent) -> (DateTime<Utc>, u64) {
    (ev.occurred_at, ev.position)
}

/// Whether `ev`, following events of which the latest in business order occurred at
/// `latest`, is late: it goes before one of them in business order, so a state folded by
/// appending it is not the stream's fold.
pub fn is_late(latest: Option<DateTime<Utc>>, ev: &RecordedEvent) -> bool {
    latest.is_some_and(|l| ev.occurred_at < l)
}

/// Folds a stream's events (in any order: they are taken in business order) from nothing. A
/// stream name that does not parse gives [`StreamState::Empty`].
pub fn fold_stream(stream: &str, events: &[RecordedEvent]) -> StreamState {
    let mut state = StreamState::Empty;
    let Ok(name) = StreamName::parse(stream) else {
        return state;
    };
    if events
        .windows(2)
        .all(|w| business_key(&w[0]) <= business_key(&w[1]))
    {
        for ev in events {
            state.apply(&name, ev);
        }
    } else {
        let mut sorted: Vec<&RecordedEvent> = events.iter().collect();
        sorted.sort_by_key(|e| business_key(e));
        for ev in sorted {
            state.apply(&name, ev);
        }
    }
    state
}
