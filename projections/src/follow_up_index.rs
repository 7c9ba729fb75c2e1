//! What the follow-up list (SPEC §2.8) reads at "now", kept current as events arrive, so a
//! rep's list looks at the rep's own deals, customers and leads instead of every one:
//! - per owner, the deals open now and the won deals with an installment not fully paid;
//! - per owner, the customers owned now and not churned (with when the owner got them),
//!   and per customer the latest activity on its stream or its deals' streams;
//! - per rep, the leads qualified to them and neither converted nor disqualified.
//!
//! Exact by the same argument as [`crate::rep_months`]: each entry is a function of one
//! deal's, customer's or lead's events, recomputed when one of them arrives (the deal's key
//! before and after; the customer's owner and the lead's state refolded); the latest
//! activity only ever grows, as events are only ever added. The list with `as_of` scans.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::deal::{DealOp, DealStatus, DealView};
use crate::entries::Prefix;
use crate::follow_up::LeadToWork;
use crate::model::{fold_customer, DealEntry, Entry, Interner};

/// Where a deal is filed: its owner, whether it is open, whether it is won with an
/// installment not fully paid.
#[derive(Debug, Clone, PartialEq)]
pub struct DealKey {
    owner: Arc<str>,
    open: bool,
    unpaid: bool,
}

/// The key of a deal folded as `view`.
pub fn deal_key(view: &DealView) -> DealKey {
    let s = &view.state;
    DealKey {
        owner: s.owner.clone(),
        open: s.status == DealStatus::Open,
        unpaid: s.status == DealStatus::Won && s.installments.iter().any(|i| i.paid < i.amount),
    }
}

type Sets = HashMap<Arc<str>, BTreeSet<String>>;

fn file(sets: &mut Sets, key: &Arc<str>, id: &str, on: bool) {
    if on {
        sets.entry(key.clone()).or_default().insert(id.to_string());
    } else if let Some(s) = sets.get_mut(key) {
        s.remove(id);
        if s.is_empty() {
            sets.remove(key);
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct FollowUpIndex {
    open: Sets,
    unpaid: Sets,
    customers: Sets,
    /// Customer → (owner, owned since), for owned customers not churned.
    owner_of: HashMap<String, (Arc<str>, DateTime<Utc>)>,
    last_activity: HashMap<String, DateTime<Utc>>,
    leads: Sets,
    lead_rep: HashMap<String, Arc<str>>,
}

impl FollowUpIndex {
    /// A deal's key went from `before` to `after`.
    pub fn deal(&mut self, id: &str, before: Option<&DealKey>, after: Option<&DealKey>) {
        if before == after {
            return;
        }
        if let Some(b) = before {
            file(&mut self.open, &b.owner, id, false);
            file(&mut self.unpaid, &b.owner, id, false);
        }
        if let Some(a) = after {
            file(&mut self.open, &a.owner, id, a.open);
            file(&mut self.unpaid, &a.owner, id, a.unpaid);
        }
    }

    /// An activity at `at` about `customer`.
    pub fn activity(&mut self, customer: &str, at: DateTime<Utc>) {
        match self.last_activity.get_mut(customer) {
            Some(t) => *t = (*t).max(at),
            None => {
                self.last_activity.insert(customer.to_string(), at);
            }
        }
    }

    /// The customer `id` now has the events `entries` (its owner may have changed).
    pub fn customer(&mut self, id: &str, entries: Prefix<'_, Entry>, strings: &mut Interner) {
        let now = fold_customer(id, entries)
            .filter(|c| !c.churned)
            .and_then(|c| Some((strings.get(c.owner.as_deref()?), c.owned_since?)));
        if let Some((old, _)) = self.owner_of.remove(id) {
            file(&mut self.customers, &old, id, false);
        }
        if let Some((owner, since)) = now {
            file(&mut self.customers, &owner, id, true);
            self.owner_of.insert(id.to_string(), (owner, since));
        }
    }

    /// The lead `id` now has the events `entries`.
    pub fn lead(&mut self, id: &str, entries: Prefix<'_, Entry>, strings: &mut Interner) {
        if let Some(old) = self.lead_rep.remove(id) {
            file(&mut self.leads, &old, id, false);
        }
        if let Some(l) = LeadToWork::of(id, entries) {
            let rep = strings.get(&l.rep);
            file(&mut self.leads, &rep, id, true);
            self.lead_rep.insert(id.to_string(), rep);
        }
    }

    fn of<'a>(sets: &'a Sets, rep: &str) -> impl Iterator<Item = &'a String> + 'a {
        sets.get(rep).into_iter().flatten()
    }

    /// The deals `rep` owns that are open now.
    pub fn open_deals<'a>(&'a self, rep: &str) -> impl Iterator<Item = &'a String> + 'a {
        Self::of(&self.open, rep)
    }

    /// The deals `rep` owns, won, with an installment not fully paid.
    pub fn unpaid_deals<'a>(&'a self, rep: &str) -> impl Iterator<Item = &'a String> + 'a {
        Self::of(&self.unpaid, rep)
    }

    /// The customers `rep` owns now (not churned), with when the rep got each.
    pub fn customers<'a>(
        &'a self,
        rep: &str,
    ) -> impl Iterator<Item = (&'a String, DateTime<Utc>)> + 'a {
        Self::of(&self.customers, rep).filter_map(|id| Some((id, self.owner_of.get(id)?.1)))
    }

    pub fn last_activity(&self, customer: &str) -> Option<DateTime<Utc>> {
        self.last_activity.get(customer).copied()
    }

    /// The leads qualified to `rep`, neither converted nor disqualified.
    pub fn leads<'a>(&'a self, rep: &str) -> impl Iterator<Item = &'a String> + 'a {
        Self::of(&self.leads, rep)
    }
}

/// The latest activity among a deal's `entries`.
pub fn last_deal_activity(entries: Prefix<'_, DealEntry>) -> Option<DateTime<Utc>> {
    entries
        .iter()
        .rev()
        .find(|e| matches!(e.op, DealOp::Activity(..)))
        .map(|e| e.at)
}
