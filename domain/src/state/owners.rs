//! Who owns each deal and customer, kept event by event: what the API's scope decisions ask
//! on every request, without folding the entity's stream each time.
//!
//! The owner a stream's fold ends with ([`fold_stream`](super::fold_stream), business order)
//! depends on two of its events only:
//! - the opening (`DealOpened`, `CustomerRegistered`) first in business order: the fold
//!   ignores what comes before it (the state is still empty) and every later opening;
//! - the ownership change last in business order (`DealReassigned`; for customers what
//!   [`CustomerState::owner_set_by`] says): each change sets the owner whatever it was, so
//!   the last one wins, if it comes after the opening; if it comes before, so do all the
//!   others, and the opening's owner stands.
//!
//! So [`Owners`] keeps, for each stream, the earliest opening and the latest change by
//! (`occurred_at`, `position`), whatever order the events are given in: a late event takes its
//! place as in the fold, and the owner is always the fold's (`replay-tests`' `fold_props`
//! and this module's property test compare them).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::{business_key, CustomerState};
use crate::envelope::{Category, RecordedEvent, StreamName};
use crate::events::Event;

/// The owner of a deal or customer stream, as its fold tells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner<'a> {
    /// The stream has no events.
    Missing,
    /// Nobody: a customer in the pool, or a stream without its opening event.
    Nobody,
    /// This rep.
    Rep(&'a str),
}

type Key = (DateTime<Utc>, u64);

/// What one stream's events say about its owner (see the module doc).
#[derive(Debug, Default)]
struct Stream {
    /// The opening first in business order, and the owner it names.
    opened: Option<(Key, Option<Arc<str>>)>,
    /// The ownership change last in business order, and the owner it leaves.
    changed: Option<(Key, Option<Arc<str>>)>,
}

/// The owners of every deal and customer stream of the events given to it.
#[derive(Debug, Default)]
pub struct Owners {
    streams: HashMap<String, Stream>,
    /// Rep ids, shared by the streams that name them.
    reps: HashSet<Arc<str>>,
}

impl Owners {
    pub fn new() -> Owners {
        Owners::default()
    }

    /// Takes one event into account, in any order; events of other categories, and
    /// unparsable ones (the fold ignores them too, but they make the stream exist), are
    /// ignored.
    pub fn apply(&mut self, ev: &RecordedEvent) {
        let Some(category) = category_of(&ev.stream) else {
            return;
        };
        let effect = match crate::schema::typed(ev) {
            Ok(event) => match effect(category, &event) {
                Effect::Opens(owner) => Some((true, owner.map(|rep| self.intern(rep)))),
                Effect::Sets(owner) => Some((false, owner.map(|rep| self.intern(rep)))),
                Effect::None => None,
            },
            Err(_) => None,
        };
        if !self.streams.contains_key(&ev.stream) {
            self.streams.insert(ev.stream.clone(), Stream::default());
        }
        let (Some((opening, owner)), Some(stream)) = (effect, self.streams.get_mut(&ev.stream))
        else {
            return;
        };
        let key = business_key(ev);
        if opening {
            if stream.opened.as_ref().is_none_or(|(first, _)| key < *first) {
                stream.opened = Some((key, owner));
            }
        } else if stream.changed.as_ref().is_none_or(|(last, _)| key > *last) {
            stream.changed = Some((key, owner));
        }
    }

    /// The owner of a deal or customer stream, as [`fold_stream`](super::fold_stream) of
    /// the events given so far ends with it.
    pub fn owner(&self, stream: &str) -> Owner<'_> {
        let Some(s) = self.streams.get(stream) else {
            return Owner::Missing;
        };
        let owner = match (&s.opened, &s.changed) {
            (None, _) => None,
            (Some((opened, _)), Some((changed, owner))) if changed > opened => owner.as_ref(),
            (Some((_, owner)), _) => owner.as_ref(),
        };
        owner.map_or(Owner::Nobody, |rep| Owner::Rep(rep))
    }

    fn intern(&mut self, rep: &str) -> Arc<str> {
        if let Some(r) = self.reps.get(rep) {
            return r.clone();
        }
        let r: Arc<str> = Arc::from(rep);
        self.reps.insert(r.clone());
        r
    }
}

/// Deal and customer streams only (others have no owner).
fn category_of(stream: &str) -> Option<Category> {
    let category = StreamName::parse(stream).ok()?.category;
    matches!(category, Category::Deal | Category::Customer).then_some(category)
}

/// What an event does to its stream's owner.
enum Effect<'e> {
    /// An opening (the first in business order counts), naming this owner.
    Opens(Option<&'e str>),
    /// Sets the owner, whatever it was.
    Sets(Option<&'e str>),
    None,
}

/// The effect the domain's folds give `event` in a stream of `category`: the openings as
/// [`StreamState::apply_event`](super::StreamState::apply_event) takes them, a deal's owner
/// as [`DealState::apply`](super::DealState::apply) sets it (`DealOp::Reassigned`, the
/// `to` of `DealReassigned`), a customer's as [`CustomerState::owner_set_by`].
fn effect(category: Category, event: &Event) -> Effect<'_> {
    match (category, event) {
        (Category::Deal, Event::DealOpened(o)) => Effect::Opens(Some(&o.owner)),
        (Category::Deal, Event::DealReassigned(r)) => Effect::Sets(Some(&r.to)),
        (Category::Customer, Event::CustomerRegistered(r)) => Effect::Opens(r.owner.as_deref()),
        (Category::Customer, _) => match CustomerState::owner_set_by(event) {
            Some(owner) => Effect::Sets(owner),
            None => Effect::None,
        },
        _ => Effect::None,
    }
}
