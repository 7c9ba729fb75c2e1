//! The customer service report's figures (SPEC §2.7) per (group, month), kept current as
//! customer events arrive, so the report reads a few hundred buckets instead of folding
//! every customer.
//!
//! A group is the customer's owner at the month's end (`None` = in the pool). A customer
//! contributes two kinds of figures:
//! - *point* figures of a month: its latest NPS score of the month, whether it churned in it,
//!   complaints filed and resolved in it (with the resolution times), all counted for the
//!   group at that month's end;
//! - *running* figures: whether it is active at the month's start (registered before it,
//!   not churned before it) and how many of its complaints are open at the month's end.
//!   These hold for every month from some month on, so they are kept as changes: +1 in the
//!   month it starts to count for a group, −1 in the month it stops (the same customer moving
//!   to another owner is −1 for the old group and +1 for the new). A month's value is the
//!   sum of the changes up to it.
//!
//! Why this is exact: a customer's contributions are a function of its own events only
//! ([`CustomerFacts::of`]). When one of them arrives (in any order: a late event refolds
//! the customer), the customer's old contributions are taken out and the new ones put in,
//! as [`crate::rep_months`] does for deals. The report with `as_of` builds the same index
//! from the prefixes of the customers' streams; the property tests compare both with a
//! plain count.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use domain::{Event, Month};

use crate::entries::{Entries, Prefix};
use crate::model::{Entry, Interner};
use crate::num::days_between;

/// A customer's group in a month: its owner at the month's end, `None` in the pool.
pub type Group = Option<Arc<str>>;

/// What one group's customers did in one month (or, for the running figures, the change
/// from the month before).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Bucket {
    /// Change of "active at the month's start".
    pub active_change: i64,
    /// Change of "complaints open at the month's end".
    pub open_change: i64,
    pub promoters: u32,
    pub passives: u32,
    pub detractors: u32,
    pub churned: u32,
    pub complaints_opened: u32,
    pub complaints_resolved: u32,
    /// Filing → resolution, in days, of the complaints resolved in the month (sorted).
    pub resolution_days: Vec<f64>,
}

impl Bucket {
    fn is_empty(&self) -> bool {
        *self == Bucket::default()
    }

    /// Adds (`sign` 1) or takes out (-1) `c`.
    fn add(&mut self, c: &Bucket, sign: i32) {
        let n = |x: &mut u32, y: u32| {
            *x = if sign > 0 {
                x.saturating_add(y)
            } else {
                x.saturating_sub(y)
            }
        };
        let s = i64::from(sign);
        self.active_change += s * c.active_change;
        self.open_change += s * c.open_change;
        n(&mut self.promoters, c.promoters);
        n(&mut self.passives, c.passives);
        n(&mut self.detractors, c.detractors);
        n(&mut self.churned, c.churned);
        n(&mut self.complaints_opened, c.complaints_opened);
        n(&mut self.complaints_resolved, c.complaints_resolved);
        for &d in &c.resolution_days {
            let i = self
                .resolution_days
                .partition_point(|y| y.total_cmp(&d).is_lt());
            if sign > 0 {
                self.resolution_days.insert(i, d);
            } else if self
                .resolution_days
                .get(i)
                .is_some_and(|y| y.total_cmp(&d).is_eq())
            {
                self.resolution_days.remove(i);
            }
        }
    }
}

/// One customer's contributions: (month, group, figures), in month order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CustomerFacts(pub Vec<(Month, Group, Bucket)>);

/// The event types that change a customer's service figures.
pub fn concerns_service(event: &Event) -> bool {
    matches!(
        event,
        Event::CustomerRegistered(_)
            | Event::CustomerUpdated(_)
            | Event::CustomerClaimed(_)
            | Event::CustomerAssigned(_)
            | Event::CustomerReleased(_)
            | Event::CustomerChurned(_)
            | Event::NpsRecorded(_)
            | Event::ComplaintFiled(_)
            | Event::ComplaintResolved(_)
    )
}

impl CustomerFacts {
    /// The contributions of a customer whose events (business order) are `entries`.
    pub fn of(entries: Prefix<'_, Entry>, strings: &mut Interner) -> CustomerFacts {
        let mut it = entries
            .iter()
            .skip_while(|e| !matches!(e.event, Event::CustomerRegistered(_)))
            .peekable();
        let Some(first) = it.peek() else {
            return CustomerFacts::default();
        };
        let registered = Month::of(&first.at);
        let last = entries.last().map_or(registered, |e| Month::of(&e.at));
        let mut out = Vec::new();
        let mut owner: Group = None;
        let mut churned_before = false;
        // Complaint id → filed at, while open.
        let mut open: BTreeMap<&str, DateTime<Utc>> = BTreeMap::new();
        // What counted in the month before: (group, active, open complaints).
        let mut before: (Group, i64, i64) = (None, 0, 0);
        let mut month = registered;
        loop {
            let active = i64::from(month > registered && !churned_before);
            let mut point = Bucket::default();
            let mut nps: Option<i64> = None;
            while let Some(e) = it.next_if(|e| Month::of(&e.at) == month) {
                match &e.event {
                    Event::CustomerRegistered(r) => {
                        owner = r.owner.as_deref().map(|o| strings.get(o))
                    }
                    Event::CustomerUpdated(u) => {
                        if let Some(o) = &u.owner {
                            owner = Some(strings.get(o));
                        }
                    }
                    Event::CustomerClaimed(c) => owner = Some(strings.get(&c.rep)),
                    Event::CustomerAssigned(a) => owner = Some(strings.get(&a.rep)),
                    Event::CustomerReleased(_) => owner = None,
                    Event::CustomerChurned(_) => {
                        point.churned = 1;
                        churned_before = true;
                    }
                    Event::NpsRecorded(n) => nps = Some(n.score),
                    Event::ComplaintFiled(c) => {
                        point.complaints_opened += 1;
                        open.entry(c.complaint_id.as_str()).or_insert(e.at);
                    }
                    Event::ComplaintResolved(c) => {
                        point.complaints_resolved += 1;
                        if let Some(filed) = open.remove(c.complaint_id.as_str()) {
                            point.resolution_days.push(days_between(filed, e.at));
                        }
                    }
                    _ => {}
                }
            }
            match nps {
                Some(9..) => point.promoters = 1,
                Some(7..=8) => point.passives = 1,
                Some(_) => point.detractors = 1,
                None => {}
            }
            point.resolution_days.sort_by(f64::total_cmp);
            let now = (owner.clone(), active, open.len() as i64);
            if now != before {
                if before.1 != 0 || before.2 != 0 {
                    let undo = Bucket {
                        active_change: -before.1,
                        open_change: -before.2,
                        ..Bucket::default()
                    };
                    push(&mut out, month, before.0.clone(), undo);
                }
                point.active_change += now.1;
                point.open_change += now.2;
                before = now;
            }
            push(&mut out, month, owner.clone(), point);
            // One month past the last event: from then on nothing changes.
            if month > last {
                break;
            }
            month = month.next();
        }
        CustomerFacts(out)
    }
}

/// Adds `b` for (`month`, `group`), merging with an entry already there; drops empty ones.
fn push(out: &mut Vec<(Month, Group, Bucket)>, month: Month, group: Group, b: Bucket) {
    if b.is_empty() {
        return;
    }
    if let Some(x) = out.iter_mut().find(|x| x.0 == month && x.1 == group) {
        x.2.add(&b, 1);
        if x.2.is_empty() {
            out.retain(|x| !(x.0 == month && x.1 == group));
        }
        return;
    }
    out.push((month, group, b));
}

/// Every group's buckets by month. A customer's contributions are not kept: the model
/// computes them again from the customer's events before and after a change (a customer
/// has few events; 200,000 customers' contributions would cost tens of MiB).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ServiceIndex {
    groups: HashMap<Group, BTreeMap<Month, Bucket>>,
}

impl ServiceIndex {
    /// The index of the customers' events with `occurred_at ≤ as_of` (all when `None`).
    pub fn build<'a>(
        customers: impl Iterator<Item = (&'a String, &'a Entries<Entry>)>,
        as_of: Option<DateTime<Utc>>,
        strings: &mut Interner,
    ) -> ServiceIndex {
        let mut index = ServiceIndex::default();
        for (_, entries) in customers {
            let facts = CustomerFacts::of(entries.up_to(as_of), strings);
            index.apply(&facts, 1);
        }
        index
    }

    /// A customer's contributions went from `before` to `after`.
    pub fn change(&mut self, before: &CustomerFacts, after: &CustomerFacts) {
        if before != after {
            self.apply(before, -1);
            self.apply(after, 1);
        }
    }

    fn apply(&mut self, facts: &CustomerFacts, sign: i32) {
        for (month, group, b) in &facts.0 {
            let months = self.groups.entry(group.clone()).or_default();
            let bucket = months.entry(*month).or_default();
            bucket.add(b, sign);
            if bucket.is_empty() {
                months.remove(month);
                if months.is_empty() {
                    self.groups.remove(group);
                }
            }
        }
    }

    /// Every group with figures, and its buckets by month.
    pub fn groups(&self) -> impl Iterator<Item = (&Group, &BTreeMap<Month, Bucket>)> + '_ {
        self.groups.iter()
    }
}
