//! State folding: what a stream looks like after its events. `apply` is total: it never
//! fails and never panics; events it does not understand are ignored (the rules keep them
//! out of the log in the first place).

mod customer;
mod deal;
mod lead;
mod org;

use chrono::{DateTime, Utc};

pub use customer::CustomerState;
pub use deal::{DealState, DealStatus, Installment};
pub use lead::{LeadState, LeadStatus};
pub use org::{OrgState, Pipeline, Rep, TargetScope, DEFAULT_CURRENCY};

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
            (StreamState::Empty, Category::Deal, Event::DealOpened(o)) => {
                *self = StreamState::Deal(DealState::opened(&name.entity, o, at));
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

/// Folds a stream's events, in order, from nothing. A stream name that does not parse
/// gives [`StreamState::Empty`].
pub fn fold_stream(stream: &str, events: &[RecordedEvent]) -> StreamState {
    let mut state = StreamState::Empty;
    if let Ok(name) = StreamName::parse(stream) {
        for ev in events {
            state.apply(&name, ev);
        }
    }
    state
}
