//! Rep trends' figures per (rep, month), kept current as events arrive, so the rep report
//! without `as_of` reads a few hundred buckets instead of scanning every deal and activity.
//!
//! Why this is exact: each figure of SPEC §2.4 counts a *fact* that happened at one time —
//! a deal opened, a close (with the owner and amount at that moment), an activity — and a
//! deal's facts come from its fold in business order. A deal's facts change only when its
//! fold does: an event appended at the end adds at most one fact (a close or an activity);
//! an event logged late refolds the deal, and then the deal's old facts are taken out and
//! the new ones put in ([`RepMonths::deal`] with `-1` / `+1`). Activities on customer streams
//! never change once logged. Amounts stay in their deals' currencies (a rate may be set after
//! the close it converts): the report converts them when it runs. The report with `as_of`
//! still scans (see [`crate::reps`]), and the property tests compare the two paths.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use domain::events::ActivityKind;
use domain::{Money, Month};

use crate::currency::{convert, Converter};
use crate::deal::DealView;
use crate::model::Interner;
use crate::num::days_between;

/// Won amounts in one currency, unconverted (rates may arrive later: reports convert).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Amounts {
    /// Their exact sum: the total when this is the reporting currency.
    pub sum: Money,
    /// Each amount (sorted), converted one by one otherwise.
    pub each: Vec<Money>,
}

/// What one rep did in one month. Amounts are kept per deal currency, as the deals have
/// them; [`Bucket::won_amount`] and [`Bucket::big_lost`] convert them when a report asks,
/// each amount at the month's rate (all closes of a bucket are in its month).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Bucket {
    pub opened: u32,
    pub won: u32,
    /// The won amounts per currency.
    pub won_amounts: BTreeMap<Arc<str>, Amounts>,
    /// Opening → win, in days, of each win (sorted).
    pub cycles: Vec<f64>,
    /// The deal's amount at each loss per currency (sorted), for `big_deals_lost` at any
    /// threshold.
    pub lost_amounts: BTreeMap<Arc<str>, Vec<Money>>,
    /// Customers reached by the rep's activities, with how many activities each.
    pub customers: HashMap<Arc<str>, u32>,
    /// Activities per kind, in [`ActivityKind::ALL`] order.
    pub kinds: [u32; 6],
}

impl Bucket {
    /// Adds (`sign` 1) or takes out (-1) a won amount.
    pub fn won_amount_edit(&mut self, currency: &Arc<str>, amount: Money, sign: Sign) {
        let a = self.won_amounts.entry(currency.clone()).or_default();
        if sign > 0 {
            a.sum += amount;
        } else {
            a.sum = a.sum - amount;
        }
        sorted_edit(&mut a.each, amount, sign, Ord::cmp);
        if a.each.is_empty() {
            self.won_amounts.remove(currency);
        }
    }

    /// Adds (`sign` 1) or takes out (-1) a lost deal's amount.
    pub fn lost_amount_edit(&mut self, currency: &Arc<str>, amount: Money, sign: Sign) {
        let v = self.lost_amounts.entry(currency.clone()).or_default();
        sorted_edit(v, amount, sign, Ord::cmp);
        if v.is_empty() {
            self.lost_amounts.remove(currency);
        }
    }

    /// Adds a won amount, unsorted: call [`Bucket::sort`] before reading (the scans).
    pub fn push_won(&mut self, currency: &Arc<str>, amount: Money) {
        let a = self.won_amounts.entry(currency.clone()).or_default();
        a.sum += amount;
        a.each.push(amount);
    }

    /// Adds a lost deal's amount, unsorted: call [`Bucket::sort`] before reading.
    pub fn push_lost(&mut self, currency: &Arc<str>, amount: Money) {
        self.lost_amounts
            .entry(currency.clone())
            .or_default()
            .push(amount);
    }

    /// Sorts what `push_won`/`push_lost` added.
    pub fn sort(&mut self) {
        for a in self.won_amounts.values_mut() {
            a.each.sort_unstable();
        }
        for v in self.lost_amounts.values_mut() {
            v.sort_unstable();
        }
    }

    /// How many losses.
    pub fn lost(&self) -> u32 {
        self.lost_amounts.values().map(Vec::len).sum::<usize>() as u32
    }

    /// The won amount in the reporting currency: each amount converted at `month`'s rate.
    pub fn won_amount(&self, conv: &Converter, month: Month) -> Money {
        let mut total = Money::ZERO;
        for (currency, a) in &self.won_amounts {
            if conv.is_reporting(currency) {
                total += a.sum;
            } else if let Some(rate) = conv.needed_rate(currency, month) {
                total += a.each.iter().map(|x| convert(*x, rate)).sum();
            }
        }
        total
    }

    /// Losses whose amount, converted at `month`'s rate, is at least `threshold`.
    pub fn big_lost(&self, conv: &Converter, month: Month, threshold: Money) -> u32 {
        let mut n = 0;
        for (currency, v) in &self.lost_amounts {
            // Sorted, and converting keeps the order: the big ones are a suffix.
            let small = if conv.is_reporting(currency) {
                v.partition_point(|a| *a < threshold)
            } else if let Some(rate) = conv.needed_rate(currency, month) {
                v.partition_point(|a| convert(*a, rate) < threshold)
            } else {
                v.len()
            };
            n += v.len() - small;
        }
        n as u32
    }

    fn is_empty(&self) -> bool {
        self.opened == 0
            && self.won == 0
            && self.lost_amounts.is_empty()
            && self.customers.is_empty()
            && self.kinds.iter().all(|k| *k == 0)
    }
}

/// +1 to add a fact, -1 to take it out again.
pub type Sign = i32;

fn bump(n: &mut u32, sign: Sign) {
    *n = n.saturating_add_signed(sign);
}

/// Inserts into / removes from a sorted vector.
fn sorted_edit<T: Copy>(
    v: &mut Vec<T>,
    x: T,
    sign: Sign,
    cmp: impl Fn(&T, &T) -> std::cmp::Ordering,
) {
    let i = v.partition_point(|y| cmp(y, &x).is_lt());
    if sign > 0 {
        v.insert(i, x);
    } else if v.get(i).is_some_and(|y| cmp(y, &x).is_eq()) {
        v.remove(i);
    }
}

pub(crate) fn kind_index(kind: ActivityKind) -> usize {
    ActivityKind::ALL
        .iter()
        .position(|k| *k == kind)
        .unwrap_or(0)
}

/// The buckets, and how many deals each rep owns now (a rep with an open or closed deal is
/// listed even in months with nothing).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RepMonths {
    buckets: HashMap<(Arc<str>, Month), Bucket>,
    owners: HashMap<Arc<str>, u32>,
    /// Deals won now, per current owner: deal id → (activities, days open), for the
    /// replay's comparison with the rep's other wins.
    won: HashMap<Arc<str>, BTreeMap<String, (u32, f64)>>,
}

/// What a won deal adds to [`RepMonths::won_deals`]: `None` unless it is won now.
pub fn won_key(view: &DealView) -> Option<(String, u32, f64)> {
    let close = view.final_close().filter(|c| c.won)?;
    Some((
        view.state.owner.to_string(),
        view.state.activities,
        days_between(view.state.opened_at, close.at),
    ))
}

impl RepMonths {
    fn edit(
        &mut self,
        strings: &mut Interner,
        rep: &str,
        at: DateTime<Utc>,
        f: impl FnOnce(&mut Bucket),
    ) {
        let key = (strings.get(rep), Month::of(&at));
        let b = self.buckets.entry(key.clone()).or_default();
        f(b);
        if b.is_empty() {
            self.buckets.remove(&key);
        }
    }

    /// An activity by `rep` at `at` about `customer`.
    pub fn activity(
        &mut self,
        strings: &mut Interner,
        rep: &str,
        at: DateTime<Utc>,
        kind: ActivityKind,
        customer: &str,
        sign: Sign,
    ) {
        let customer = strings.get(customer);
        self.edit(strings, rep, at, |b| {
            bump(&mut b.kinds[kind_index(kind)], sign);
            let n = b.customers.entry(customer.clone()).or_default();
            bump(n, sign);
            if *n == 0 {
                b.customers.remove(&customer);
            }
        });
    }

    /// A deal's opening, its closes and its current owner (not its activities).
    pub fn deal(&mut self, strings: &mut Interner, view: &DealView, sign: Sign) {
        let opened = view.state.opened_at;
        self.edit(strings, &view.opened_by, opened, |b| {
            bump(&mut b.opened, sign)
        });
        for c in &view.closes {
            self.edit(strings, &c.owner, c.at, |b| {
                if c.won {
                    bump(&mut b.won, sign);
                    b.won_amount_edit(&view.state.currency, c.amount, sign);
                    sorted_edit(
                        &mut b.cycles,
                        days_between(opened, c.at),
                        sign,
                        f64::total_cmp,
                    );
                } else {
                    b.lost_amount_edit(&view.state.currency, c.amount, sign);
                }
            });
        }
        self.owner(strings, &view.state.owner, sign);
    }

    /// One close just added at the end of a deal's fold.
    pub fn close(&mut self, strings: &mut Interner, view: &DealView) {
        let Some(c) = view.closes.last() else { return };
        let opened = view.state.opened_at;
        self.edit(strings, &c.owner, c.at, |b| {
            if c.won {
                b.won += 1;
                b.won_amount_edit(&view.state.currency, c.amount, 1);
                sorted_edit(&mut b.cycles, days_between(opened, c.at), 1, f64::total_cmp);
            } else {
                b.lost_amount_edit(&view.state.currency, c.amount, 1);
            }
        });
    }

    /// Moves a deal in the won-deals index from `before` to `after` (see [`won_key`]).
    pub fn won_change(
        &mut self,
        strings: &mut Interner,
        deal_id: &str,
        before: Option<(String, u32, f64)>,
        after: Option<(String, u32, f64)>,
    ) {
        if before == after {
            return;
        }
        if let Some((owner, ..)) = before {
            let owner = strings.get(&owner);
            if let Some(m) = self.won.get_mut(&owner) {
                m.remove(deal_id);
                if m.is_empty() {
                    self.won.remove(&owner);
                }
            }
        }
        if let Some((owner, acts, days)) = after {
            let owner = strings.get(&owner);
            self.won
                .entry(owner)
                .or_default()
                .insert(deal_id.to_string(), (acts, days));
        }
    }

    /// The deals `owner` owns and has won now: id → (activities, days open).
    pub fn won_deals(&self, owner: &str) -> Option<&BTreeMap<String, (u32, f64)>> {
        self.won.get(owner)
    }

    pub fn owner(&mut self, strings: &mut Interner, rep: &str, sign: Sign) {
        let rep = strings.get(rep);
        let n = self.owners.entry(rep.clone()).or_default();
        bump(n, sign);
        if *n == 0 {
            self.owners.remove(&rep);
        }
    }

    pub fn get(&self, rep: &str, month: Month) -> Option<&Bucket> {
        // Keys hold interned names; look up through a temporary Arc only when needed.
        self.buckets.get(&(Arc::from(rep), month))
    }

    /// Every rep's figures for `month`.
    pub fn month(&self, month: Month) -> impl Iterator<Item = (&str, &Bucket)> + '_ {
        self.buckets
            .iter()
            .filter(move |(k, _)| k.1 == month)
            .map(|(k, b)| (&*k.0, b))
    }

    /// Every rep with a fact in any month or a deal owned now.
    pub fn reps(&self) -> impl Iterator<Item = &str> + '_ {
        self.buckets
            .keys()
            .map(|k| &*k.0)
            .chain(self.owners.keys().map(|r| &**r))
    }
}
