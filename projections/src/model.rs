//! The read model: every event, typed, filed under its entity in business order, plus the
//! current fold of every deal. Updated one event at a time by [`ReadModel::apply`]; built
//! from scratch by [`ReadModel::rebuild`], which is nothing but `apply` in a loop, so
//! "rebuild == incremental" holds by construction (and `replay-tests` checks it).
//!
//! Cost per event: an insert into the entity's own [`Entries`] (a push at the end unless the
//! event was logged late; a late one moves at most one chunk, whatever the stream's
//! length), one deal-fold step; a late deal event refolds only that deal. Nothing global
//! is re-sorted.
//!
//! Business order: each entity's events are kept sorted by (`occurred_at`, `position`), so
//! "as of T" is always a prefix of each list.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use domain::envelope::{Category, StreamName};
use domain::events::{ActivityKind, StageDef, EVENT_TYPES};
use domain::state::{CustomerState, LeadState, OrgState, TargetScope};
use domain::{Event, Money, Month, RecordedEvent};
use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

use crate::deal::DealStatus;
use crate::deal::{DealOp, DealView};
use crate::deal_list::{self, DealIndex};
use crate::entries::{Entries, Prefix};
use crate::follow_up_index::{deal_key, FollowUpIndex};
use crate::funnel_index::FunnelIndex;
use crate::rep_months::{won_key, RepMonths};
use crate::service_index::{concerns_service, CustomerFacts, ServiceIndex};
use crate::typed::typed;

/// One event of an org, customer, lead or channel stream: where and when, and its typed
/// form. The envelope itself (id, actor, metadata, JSON) stays in the log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub position: u64,
    pub at: DateTime<Utc>,
    pub event: Event,
}

/// One event of a deal stream, reduced to [`DealOp`] (deals are most of a log, so their
/// entries are kept small: see [`DealOp`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DealEntry {
    pub position: u64,
    pub at: DateTime<Utc>,
    /// The event's type, as an index into [`domain::events::EVENT_TYPES`].
    pub ty: u8,
    pub op: DealOp,
}

// Deal entries are most of the model's memory (10 million in the benchmark): keep them small.
const _: () = assert!(std::mem::size_of::<DealEntry>() <= 48);

impl DealEntry {
    /// The event's `type`.
    pub fn type_name(&self) -> &'static str {
        EVENT_TYPES.get(usize::from(self.ty)).map_or("", |t| t.0)
    }
}

fn type_index(name: &str) -> u8 {
    EVENT_TYPES
        .iter()
        .position(|t| t.0 == name)
        .and_then(|i| u8::try_from(i).ok())
        .unwrap_or(u8::MAX)
}

/// An entry filed in business order: (`occurred_at`, `position`).
pub trait Keyed {
    fn key(&self) -> (DateTime<Utc>, u64);
    fn at(&self) -> DateTime<Utc> {
        self.key().0
    }
    fn position(&self) -> u64 {
        self.key().1
    }
}

impl Keyed for Entry {
    fn key(&self) -> (DateTime<Utc>, u64) {
        (self.at, self.position)
    }
}

impl Keyed for DealEntry {
    fn key(&self) -> (DateTime<Utc>, u64) {
        (self.at, self.position)
    }
}

/// The entries with `occurred_at ≤ as_of` (all when `as_of` is `None`): a prefix.
pub fn prefix<E: Keyed>(entries: &Entries<E>, as_of: Option<DateTime<Utc>>) -> Prefix<'_, E> {
    entries.up_to(as_of)
}

/// Where the reports that show whole events (timeline, replay) get them: the log. The read
/// model keeps positions, not envelopes.
pub trait EventSource {
    /// The events at `positions` that it has, in the order asked.
    fn events_at(&self, positions: &[u64]) -> Vec<RecordedEvent>;
}

impl EventSource for [RecordedEvent] {
    fn events_at(&self, positions: &[u64]) -> Vec<RecordedEvent> {
        let sorted = self.windows(2).all(|w| w[0].position < w[1].position);
        positions
            .iter()
            .filter_map(|&p| {
                if sorted {
                    let i = self.binary_search_by_key(&p, |e| e.position).ok()?;
                    self.get(i).cloned()
                } else {
                    self.iter().find(|e| e.position == p).cloned()
                }
            })
            .collect()
    }
}

impl EventSource for Vec<RecordedEvent> {
    fn events_at(&self, positions: &[u64]) -> Vec<RecordedEvent> {
        self.as_slice().events_at(positions)
    }
}

/// Hands out one shared `Arc<str>` per distinct name (stages, reps, reasons, customers).
#[derive(Debug, Clone, Default)]
pub struct Interner(HashSet<Arc<str>>);

impl Interner {
    pub fn get(&mut self, s: &str) -> Arc<str> {
        if let Some(a) = self.0.get(s) {
            return a.clone();
        }
        let a: Arc<str> = Arc::from(s);
        self.0.insert(a.clone());
        a
    }
}

impl PartialEq for Interner {
    /// The interner is a cache: two models are equal whatever it holds.
    fn eq(&self, _: &Interner) -> bool {
        true
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CustomerRecord {
    pub entries: Entries<Entry>,
    /// Deals whose `DealOpened.customer_id` is this customer.
    pub deals: BTreeSet<String>,
    /// Leads converted into this customer.
    pub leads: BTreeSet<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DealRecord {
    pub entries: Entries<DealEntry>,
    /// The fold of all `entries` (boxed: the map's nodes stay small). Not stored: folded
    /// again from `entries` when a stored model is read back.
    #[serde(skip)]
    pub current: Option<Box<DealView>>,
    /// Unix seconds of the first entry's `occurred_at` rounded down and of the last one's
    /// rounded up ((0, 0) without entries). An as-of scan visits every deal: with these it
    /// tells most deals wholly after `as_of` (nothing then) or wholly before it (its
    /// `current`) without reading their entries, one cache miss less per deal; the others
    /// (within a second of `as_of`, or spanning it) are folded. Not stored: set again when
    /// a stored model is read back.
    #[serde(skip)]
    span: (i64, i64),
}

/// Unix seconds of `t`, rounded down and up.
fn seconds(t: DateTime<Utc>) -> (i64, i64) {
    let down = t.timestamp();
    (down, down + i64::from(t.timestamp_subsec_nanos() > 0))
}

impl DealRecord {
    /// Inserts an entry in business order ([`Entries::insert`]); true when it went at the
    /// end. The only way entries are added, so that the span stays right.
    pub fn insert(&mut self, entry: DealEntry) -> bool {
        let (down, up) = seconds(entry.at);
        self.span = if self.entries.is_empty() {
            (down, up)
        } else {
            (self.span.0.min(down), self.span.1.max(up))
        };
        self.entries.insert(entry)
    }

    /// Whether every entry is after `t` (the deal did not exist then); false when unsure.
    pub fn begins_after(&self, t: DateTime<Utc>) -> bool {
        self.span.0 > seconds(t).0
    }

    /// Whether no entry is after `t` (the deal then is `current`); false when unsure.
    fn ends_by(&self, t: DateTime<Utc>) -> bool {
        self.span.1 <= seconds(t).0
    }

    /// Sets `current` and the span from the entries (a model read back from storage).
    fn refold(&mut self, id: &str) {
        self.current = DealView::fold(id, &self.entries).map(Box::new);
        let first = self.entries.iter().next().map(|e| seconds(e.at).0);
        let last = self.entries.last().map(|e| seconds(e.at).1);
        self.span = first.zip(last).unwrap_or_default();
    }

    /// A closed deal rarely gets more events: give back the vectors' spare room (a tenth
    /// of the model's memory on a large log).
    fn shrink(&mut self) {
        self.entries.shrink_to_fit();
        if let Some(view) = &mut self.current {
            view.visits.shrink_to_fit();
        }
    }

    /// The deal as of `as_of` (all events when `None`); `None` if it did not exist then.
    pub fn view(&self, id: &str, as_of: Option<DateTime<Utc>>) -> Option<Cow<'_, DealView>> {
        match as_of {
            Some(t) if self.begins_after(t) => None,
            Some(t) if !self.ends_by(t) => {
                DealView::fold(id, prefix(&self.entries, as_of)).map(Cow::Owned)
            }
            _ => self.current.as_deref().map(Cow::Borrowed),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LeadRecord {
    pub entries: Entries<Entry>,
}

/// Every projection's source, kept current one event at a time. Serialised (the service's
/// snapshot) without its indexes, which are rebuilt when it is read back.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(from = "Stored")]
pub struct ReadModel {
    /// Position of the last event applied (0 = none).
    pub last_position: u64,
    /// Latest `occurred_at` of any event applied.
    pub latest_occurred_at: Option<DateTime<Utc>>,
    /// `org` stream events (pipeline, reps, targets), business order.
    pub org: Entries<Entry>,
    pub customers: BTreeMap<String, CustomerRecord>,
    /// By id, in the order deals first appeared in the log (a hash map: a million deals
    /// are looked up on every event of a rebuild; reports that list deals sort them).
    pub deals: IndexMap<String, DealRecord>,
    pub leads: BTreeMap<String, LeadRecord>,
    /// `SpendRecorded` per channel (the channel stream's entity id), business order.
    pub spend: BTreeMap<String, Entries<Entry>>,
    #[serde(skip)]
    strings: Interner,
    /// Rep trends' figures per (rep, month): see [`RepMonths`].
    #[serde(skip)]
    pub rep_months: RepMonths,
    /// Ids of the deals open now: what the pipeline at "now" reads (their folds are in
    /// `deals`, a hash lookup away).
    #[serde(skip)]
    pub open_deals: BTreeSet<String>,
    /// The whole-history funnel: see [`FunnelIndex`].
    #[serde(skip)]
    pub funnel: FunnelIndex,
    /// The customer service report's figures: see [`ServiceIndex`].
    #[serde(skip)]
    pub service: ServiceIndex,
    /// What the follow-up lists read: see [`FollowUpIndex`].
    #[serde(skip)]
    pub follow_up: FollowUpIndex,
    /// The deal list's index (SPEC §5.1): see [`DealIndex`].
    #[serde(skip)]
    pub deal_index: DealIndex,
    /// Rebuilding: indexes are built by [`ReadModel::finish`], not kept current.
    #[serde(skip)]
    deferred: bool,
}

/// A [`ReadModel`] as stored: everything but the indexes.
#[derive(Deserialize)]
struct Stored {
    last_position: u64,
    latest_occurred_at: Option<DateTime<Utc>>,
    org: Entries<Entry>,
    customers: BTreeMap<String, CustomerRecord>,
    deals: IndexMap<String, DealRecord>,
    leads: BTreeMap<String, LeadRecord>,
    spend: BTreeMap<String, Entries<Entry>>,
}

impl From<Stored> for ReadModel {
    fn from(s: Stored) -> ReadModel {
        let mut m = ReadModel {
            last_position: s.last_position,
            latest_occurred_at: s.latest_occurred_at,
            org: s.org,
            customers: s.customers,
            deals: s.deals,
            leads: s.leads,
            spend: s.spend,
            strings: Interner::default(),
            rep_months: RepMonths::default(),
            open_deals: BTreeSet::new(),
            funnel: FunnelIndex::default(),
            service: ServiceIndex::default(),
            follow_up: FollowUpIndex::default(),
            deal_index: DealIndex::default(),
            deferred: false,
        };
        for (id, d) in &mut m.deals {
            d.refold(id);
        }
        m.reindex();
        m
    }
}

/// Adds (`sign` 1) or takes out (-1) everything a deal contributes to the indexes: its
/// opening, closes and owner, and the activities among `entries`.
fn deal_facts<'a>(
    index: &mut RepMonths,
    strings: &mut Interner,
    view: &DealView,
    entries: impl Iterator<Item = &'a DealEntry>,
    sign: i32,
) {
    index.deal(strings, view, sign);
    for e in entries {
        if let DealOp::Activity(kind, rep) = &e.op {
            index.activity(strings, rep, e.at, *kind, &view.state.customer_id, sign);
        }
    }
}

/// The default pipeline of SPEC §1.2 (the domain's).
pub fn default_pipeline() -> Vec<StageDef> {
    domain::state::Pipeline::default().stages
}

/// A rep as known from `RepJoined` / `RepLeft`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RepInfo {
    pub name: String,
    pub team: String,
    pub left: bool,
}

/// A customer folded over its stream: the domain's fold, nothing of its own.
pub type CustomerView = CustomerState;

/// Folds an entity's entries (business order, as the read model keeps them) from its
/// opening event (the first for which `open` gives a state) on, with the domain's `apply`.
fn fold_from<S>(
    entries: Prefix<'_, Entry>,
    open: impl Fn(&Event, DateTime<Utc>) -> Option<S>,
    apply: impl Fn(&mut S, &Event, DateTime<Utc>),
) -> Option<S> {
    let mut it = entries.iter();
    let mut state = it.by_ref().find_map(|e| open(&e.event, e.at))?;
    for e in it {
        apply(&mut state, &e.event, e.at);
    }
    Some(state)
}

/// Folds a customer's entries with the domain's [`CustomerState::apply_event`]; `None`
/// before its `CustomerRegistered`.
pub fn fold_customer(customer_id: &str, entries: Prefix<'_, Entry>) -> Option<CustomerView> {
    let open = |e: &Event, at| match e {
        Event::CustomerRegistered(r) => Some(CustomerState::registered(customer_id, r, at)),
        _ => None,
    };
    fold_from(entries, open, CustomerState::apply_event)
}

/// A lead folded over its stream: the domain's fold, nothing of its own.
pub type LeadView = LeadState;

/// Folds a lead's entries with the domain's [`LeadState::apply_event`]; `None` before its
/// `LeadCaptured`.
pub fn fold_lead(lead_id: &str, entries: Prefix<'_, Entry>) -> Option<LeadView> {
    let open = |e: &Event, at| match e {
        Event::LeadCaptured(c) => Some(LeadState::captured(lead_id, c, at)),
        _ => None,
    };
    fold_from(entries, open, LeadState::apply_event)
}

impl ReadModel {
    pub fn new() -> ReadModel {
        ReadModel::default()
    }

    /// Builds the model from scratch: `apply` over every event, in log order.
    pub fn rebuild<'a>(events: impl IntoIterator<Item = &'a RecordedEvent>) -> ReadModel {
        let mut m = ReadModel::deferred();
        for ev in events {
            m.apply(ev);
        }
        m.finish();
        m
    }

    /// Applies one event of the log. Events at or before `last_position` (re-delivery after a
    /// restart) and events that do not parse are ignored; never panics.
    pub fn apply(&mut self, ev: &RecordedEvent) {
        if ev.position <= self.last_position {
            return;
        }
        self.last_position = ev.position;
        let Some(event) = typed(ev) else { return };
        let Ok(stream) = StreamName::parse(&ev.stream) else {
            return;
        };
        if self.latest_occurred_at.is_none_or(|t| ev.occurred_at > t) {
            self.latest_occurred_at = Some(ev.occurred_at);
        }
        let id = stream.entity;
        if stream.category == Category::Deal {
            self.apply_deal(id, ev, &event);
            return;
        }
        let entry = Entry {
            position: ev.position,
            at: ev.occurred_at,
            event,
        };
        match stream.category {
            Category::Org => {
                let pipeline = matches!(entry.event, Event::PipelineDefined(_));
                self.org.insert(entry);
                if pipeline && !self.deferred {
                    self.refunnel();
                }
            }
            Category::Channel => {
                self.spend.entry(id).or_default().insert(entry);
            }
            Category::Customer => {
                if let (Event::ActivityLogged(a), false) = (&entry.event, self.deferred) {
                    let strings = &mut self.strings;
                    let at = entry.at;
                    self.rep_months
                        .activity(strings, &a.rep, at, a.kind, &id, 1);
                    self.follow_up.activity(&id, at);
                }
                let service = concerns_service(&entry.event) && !self.deferred;
                let renames = matches!(
                    entry.event,
                    Event::CustomerRegistered(_) | Event::CustomerUpdated(_)
                );
                let rec = self.customers.entry(id.clone()).or_default();
                let strings = &mut self.strings;
                let before = service.then(|| CustomerFacts::of(rec.entries.all(), strings));
                rec.entries.insert(entry);
                if let Some(before) = before {
                    let after = CustomerFacts::of(rec.entries.all(), strings);
                    self.service.change(&before, &after);
                    self.follow_up.customer(&id, rec.entries.all(), strings);
                }
                if renames && !self.deferred {
                    let rec = &self.customers[&id];
                    let name = fold_customer(&id, rec.entries.all()).map(|c| c.name);
                    self.deal_index.set_customer_name(&id, name.as_deref());
                }
            }
            Category::Lead => {
                if let Event::LeadConverted(c) = &entry.event {
                    let cust = self.customers.entry(c.customer_id.clone()).or_default();
                    cust.leads.insert(id.clone());
                }
                let rec = self.leads.entry(id.clone()).or_default();
                rec.entries.insert(entry);
                if !self.deferred {
                    self.follow_up
                        .lead(&id, rec.entries.all(), &mut self.strings);
                }
            }
            Category::Deal => {}
        }
    }

    fn apply_deal(&mut self, id: String, ev: &RecordedEvent, event: &Event) {
        let listed_before = (!self.deferred)
            .then(|| self.deals.get_full(&id))
            .flatten()
            .and_then(|(n, _, r)| r.current.as_deref().map(|v| deal_list::fact(n, v)));
        if let Event::DealOpened(o) = event {
            let cust = self.customers.entry(o.customer_id.clone()).or_default();
            cust.deals.insert(id.clone());
        }
        let strings = &mut self.strings;
        let entry = DealEntry {
            position: ev.position,
            at: ev.occurred_at,
            ty: type_index(&ev.event_type),
            op: DealOp::of(event, &mut |s| strings.get(s)),
        };
        let rec = self.deals.entry(id.clone()).or_default();
        let key_before = match (&rec.current, self.deferred) {
            (Some(view), false) => Some(deal_key(view)),
            _ => None,
        };
        let cheap = rec.current.is_some();
        let at_end = rec.insert(entry);
        if self.deferred {
            match (&mut rec.current, rec.entries.last()) {
                (Some(view), Some(last)) if at_end && cheap => view.apply(last),
                _ => rec.current = DealView::fold(&id, &rec.entries).map(Box::new),
            }
            if rec
                .current
                .as_ref()
                .is_some_and(|v| v.state.status != DealStatus::Open)
            {
                rec.shrink();
            }
            return;
        }
        let index = &mut self.rep_months;
        let won_before = rec.current.as_deref().and_then(won_key);
        // Only these change a deal's funnel fact (or a refold, which can change anything).
        let funnel_changes = !(at_end && cheap)
            || rec.entries.last().is_some_and(|e| {
                matches!(
                    e.op,
                    DealOp::Stage(_)
                        | DealOp::Reopened(_)
                        | DealOp::Reassigned(_)
                        | DealOp::Won(_)
                        | DealOp::Lost(_)
                )
            });
        let fact_before = funnel_changes
            .then(|| rec.current.as_ref().map(|v| self.funnel.fact(v)))
            .flatten();
        match (&mut rec.current, rec.entries.last()) {
            (Some(view), Some(last)) if at_end && cheap => {
                let owner_before =
                    matches!(last.op, DealOp::Reassigned(_)).then(|| view.state.owner.clone());
                view.apply(last);
                match &last.op {
                    DealOp::Activity(kind, rep) => {
                        let customer = &view.state.customer_id;
                        index.activity(strings, rep, last.at, *kind, customer, 1);
                    }
                    DealOp::Won(..) | DealOp::Lost(_) => index.close(strings, view),
                    _ => {}
                }
                if let Some(before) = owner_before {
                    index.owner(strings, &before, -1);
                    index.owner(strings, &view.state.owner, 1);
                }
            }
            _ => {
                // Refold: take the deal's old facts out of the indexes, put the new ones in.
                if let Some(old) = &rec.current {
                    let earlier = rec.entries.iter().filter(|e| e.position != ev.position);
                    deal_facts(index, strings, old, earlier, -1);
                }
                rec.current = DealView::fold(&id, &rec.entries).map(Box::new);
                if let Some(new) = &rec.current {
                    deal_facts(index, strings, new, rec.entries.iter(), 1);
                }
            }
        }
        index.won_change(
            strings,
            &id,
            won_before,
            rec.current.as_deref().and_then(won_key),
        );
        if funnel_changes {
            let fact_after = rec.current.as_ref().map(|v| self.funnel.fact(v));
            self.funnel
                .change(fact_before.as_ref(), fact_after.as_ref());
        }
        let key_after = rec.current.as_ref().map(|v| deal_key(v));
        self.follow_up
            .deal(&id, key_before.as_ref(), key_after.as_ref());
        if let (Event::ActivityLogged(_), Some(view)) = (event, &rec.current) {
            self.follow_up
                .activity(&view.state.customer_id, ev.occurred_at);
        }
        let listed_after = self
            .deals
            .get_full(&id)
            .and_then(|(n, _, r)| r.current.as_deref().map(|v| deal_list::fact(n, v)));
        self.deal_index
            .change(listed_before.as_ref(), listed_after.as_ref());
        if let (None, Some(f)) = (&listed_before, &listed_after) {
            if let Some(rec) = self.deals.get(&id) {
                self.deal_index.index_text(f.key.1 as usize, &id, rec);
            }
        }
        let Some(rec) = self.deals.get_mut(&id) else {
            return;
        };
        let open = rec
            .current
            .as_ref()
            .is_some_and(|v| v.state.status == DealStatus::Open);
        if open {
            if !self.open_deals.contains(&id) {
                self.open_deals.insert(id);
            }
        } else {
            self.open_deals.remove(&id);
            rec.shrink();
        }
    }

    /// Recomputes every deal's funnel fact for the pipeline in force now.
    fn refunnel(&mut self) {
        let stages = self.pipeline(None).into_iter().map(|s| s.id).collect();
        let deals = self.deals.values().filter_map(|d| d.current.as_deref());
        self.funnel = FunnelIndex::build(stages, deals);
    }

    /// A model for a rebuild: [`ReadModel::apply`] skips the indexes until
    /// [`ReadModel::finish`] builds them in one pass (much faster than keeping them current
    /// event by event). Reports must not be run before `finish`.
    pub fn deferred() -> ReadModel {
        ReadModel {
            deferred: true,
            ..ReadModel::default()
        }
    }

    /// Ends a rebuild started with [`ReadModel::deferred`]: builds the indexes.
    pub fn finish(&mut self) {
        if self.deferred {
            self.deferred = false;
            self.reindex();
        }
    }

    /// Rebuilds the indexes from the stored parts.
    fn reindex(&mut self) {
        self.refunnel();
        let (index, strings) = (&mut self.rep_months, &mut self.strings);
        *index = RepMonths::default();
        for (id, c) in &self.customers {
            for e in &c.entries {
                if let Event::ActivityLogged(a) = &e.event {
                    index.activity(strings, &a.rep, e.at, a.kind, id, 1);
                }
            }
        }
        let customers = self.customers.iter().map(|(id, c)| (id, &c.entries));
        self.service = ServiceIndex::build(customers, None, strings);
        let follow = &mut self.follow_up;
        *follow = FollowUpIndex::default();
        for (id, c) in &self.customers {
            follow.customer(id, c.entries.all(), strings);
            for e in &c.entries {
                if matches!(e.event, Event::ActivityLogged(_)) {
                    follow.activity(id, e.at);
                }
            }
        }
        for (id, l) in &self.leads {
            follow.lead(id, l.entries.all(), strings);
        }
        self.open_deals.clear();
        self.deal_index = DealIndex::default();
        for (id, c) in &self.customers {
            let name = fold_customer(id, c.entries.all()).map(|c| c.name);
            self.deal_index.set_customer_name(id, name.as_deref());
        }
        for (n, (id, d)) in self.deals.iter().enumerate() {
            if let Some(view) = &d.current {
                follow.deal(id, None, Some(&deal_key(view)));
                if let Some(at) = crate::follow_up_index::last_deal_activity(d.entries.all()) {
                    follow.activity(&view.state.customer_id, at);
                }
                self.deal_index
                    .change(None, Some(&deal_list::fact(n, view)));
                self.deal_index.index_text(n, id, d);
                deal_facts(index, strings, view, d.entries.iter(), 1);
                index.won_change(strings, id, None, won_key(view));
                if view.state.status == DealStatus::Open {
                    self.open_deals.insert(id.clone());
                }
            }
        }
    }

    /// The latest `occurred_at` of any event with `occurred_at ≤ as_of`.
    pub fn latest_at(&self, as_of: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
        let latest = self.latest_occurred_at?;
        let Some(t) = as_of else { return Some(latest) };
        if latest <= t {
            return Some(latest);
        }
        let last = |v: &Entries<Entry>| v.up_to(as_of).last().map(Keyed::at);
        let lists = std::iter::once(&self.org)
            .chain(self.customers.values().map(|c| &c.entries))
            .chain(self.leads.values().map(|l| &l.entries))
            .chain(self.spend.values());
        let deals = self
            .deals
            .values()
            .filter_map(|d| prefix(&d.entries, as_of).last().map(Keyed::at));
        lists.filter_map(last).chain(deals).max()
    }

    /// The deal as of `as_of` (all events when `None`); `None` if it did not exist then.
    pub fn deal_view(&self, id: &str, as_of: Option<DateTime<Utc>>) -> Option<Cow<'_, DealView>> {
        self.deals.get(id)?.view(id, as_of)
    }

    /// Every deal that existed as of `as_of`, in the order deals first appeared in the log.
    pub fn deal_views(
        &self,
        as_of: Option<DateTime<Utc>>,
    ) -> impl Iterator<Item = Cow<'_, DealView>> + '_ {
        self.deals
            .iter()
            .filter_map(move |(id, rec)| rec.view(id, as_of))
    }
    pub fn customer_view(&self, id: &str, as_of: Option<DateTime<Utc>>) -> Option<CustomerView> {
        fold_customer(id, prefix(&self.customers.get(id)?.entries, as_of))
    }

    pub fn lead_view(&self, id: &str, as_of: Option<DateTime<Utc>>) -> Option<LeadView> {
        fold_lead(id, prefix(&self.leads.get(id)?.entries, as_of))
    }

    pub fn lead_views(&self, as_of: Option<DateTime<Utc>>) -> impl Iterator<Item = LeadView> + '_ {
        self.leads
            .keys()
            .filter_map(move |id| self.lead_view(id, as_of))
    }

    /// The organisation as of `as_of`: the domain's fold ([`OrgState`]) of every `org-`
    /// stream's events with `occurred_at ≤ as_of`, in business order (the one ordering rule,
    /// `domain::state`), the order the model keeps them in.
    pub fn org_state(&self, as_of: Option<DateTime<Utc>>) -> OrgState {
        let mut org = OrgState::default();
        for e in prefix(&self.org, as_of) {
            org.apply_event(&e.event, e.at);
        }
        org
    }

    /// The pipeline in force as of `as_of`: the latest `PipelineDefined`, else the default.
    pub fn pipeline(&self, as_of: Option<DateTime<Utc>>) -> Vec<StageDef> {
        self.org_state(as_of).pipeline.stages
    }

    /// Reps known from `RepJoined` (name, team) and `RepLeft`, as of `as_of`.
    pub fn reps(&self, as_of: Option<DateTime<Utc>>) -> BTreeMap<String, RepInfo> {
        self.org_state(as_of)
            .reps
            .into_values()
            .map(|r| {
                let info = RepInfo {
                    name: r.name,
                    team: r.team,
                    left: !r.active,
                };
                (r.rep, info)
            })
            .collect()
    }

    /// The target for `month` as of `as_of`: the latest org-wide `TargetSet` (neither `rep`
    /// nor `team`); else the sum of the latest per-team targets; else of the per-rep ones.
    pub fn target(&self, month: Month, as_of: Option<DateTime<Utc>>) -> Option<Money> {
        let org = self.org_state(as_of);
        // The sum of the month's team targets (`teams`), or of its rep targets.
        let sum = |teams: bool| {
            let mut amounts = org
                .targets
                .iter()
                .filter(|((scope, m), _)| {
                    *m == month
                        && match scope {
                            TargetScope::Team(_) => teams,
                            TargetScope::Rep(_) => !teams,
                            TargetScope::Org => false,
                        }
                })
                .map(|(_, amount)| *amount)
                .peekable();
            let any = amounts.peek().is_some();
            any.then(|| amounts.sum())
        };
        org.target(&TargetScope::Org, month)
            .or_else(|| sum(true))
            .or_else(|| sum(false))
    }

    /// Every `ActivityLogged` (customer and deal streams) with `occurred_at ≤ as_of`, with the
    /// customer it concerns (the deal's customer for deal activities).
    pub fn activities(&self, as_of: Option<DateTime<Utc>>) -> Vec<ActivityRef<'_>> {
        let mut out = Vec::new();
        for (cid, c) in &self.customers {
            for e in prefix(&c.entries, as_of) {
                if let Event::ActivityLogged(a) = &e.event {
                    out.push(ActivityRef {
                        at: e.at,
                        kind: a.kind,
                        rep: &a.rep,
                        customer_id: cid.as_str(),
                        deal_id: None,
                    });
                }
            }
        }
        for (did, d) in &self.deals {
            let Some(view) = &d.current else { continue };
            for e in prefix(&d.entries, as_of) {
                if let DealOp::Activity(kind, rep) = &e.op {
                    out.push(ActivityRef {
                        at: e.at,
                        kind: *kind,
                        rep,
                        customer_id: &view.state.customer_id,
                        deal_id: Some(did.as_str()),
                    });
                }
            }
        }
        out
    }
}

/// An `ActivityLogged`: when, what kind, by whom, and where it was logged.
#[derive(Debug, Clone, Copy)]
pub struct ActivityRef<'a> {
    pub at: DateTime<Utc>,
    pub kind: ActivityKind,
    pub rep: &'a str,
    pub customer_id: &'a str,
    pub deal_id: Option<&'a str>,
}
