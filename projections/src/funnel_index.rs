//! The funnel over the whole history (no period, no `as_of`), overall and per current
//! owner, kept current as events arrive, so `GET /v1/reports/funnel` and `?group_by=rep`
//! read a few counters and order statistics instead of every deal.
//!
//! Each deal contributes one [`Fact`] (status, furthest stage reached, stage it was lost in,
//! time spent in each stage it left), computed for the pipeline in force now. When a deal
//! changes in a way that can change its fact (a stage change, a reopen, a close, a
//! reassignment, a refold after a late event), the old fact is taken out and the new one put
//! in; a new `PipelineDefined` recomputes every fact. Stage durations live in
//! [`SortedBag`]s, so medians and p90s are exact order statistics. The report with a period,
//! `as_of` or another grouping still scans (see [`crate::funnel`]); the property tests
//! compare the two paths.

use std::collections::HashMap;
use std::sync::Arc;

use crate::deal::{DealStatus, DealView};
use crate::num::days_between;

/// A multiset of numbers kept sorted in blocks: insert and remove in O(√n)-ish time, the
/// k-th smallest by walking block lengths.
#[derive(Debug, Clone, Default)]
pub struct SortedBag {
    blocks: Vec<Vec<f64>>,
    /// The largest value of each block, side by side: finding a block touches one array.
    maxes: Vec<f64>,
    len: usize,
}

const BLOCK: usize = 128;

impl SortedBag {
    /// A bag of these values (sorted once).
    pub fn from_values(mut values: Vec<f64>) -> SortedBag {
        values.sort_by(f64::total_cmp);
        let blocks: Vec<Vec<f64>> = values.chunks(BLOCK).map(<[f64]>::to_vec).collect();
        SortedBag {
            maxes: blocks.iter().filter_map(|b| b.last().copied()).collect(),
            len: values.len(),
            blocks,
        }
    }

    /// The first block whose largest value is ≥ x (`blocks.len()` if none).
    fn block_for(&self, x: f64) -> usize {
        self.maxes.partition_point(|m| m.total_cmp(&x).is_lt())
    }

    pub fn insert(&mut self, x: f64) {
        let b = self.block_for(x).min(self.blocks.len().saturating_sub(1));
        let Some(block) = self.blocks.get_mut(b) else {
            self.blocks.push(vec![x]);
            self.maxes.push(x);
            self.len += 1;
            return;
        };
        let i = block.partition_point(|y| y.total_cmp(&x).is_lt());
        block.insert(i, x);
        if block.len() > 2 * BLOCK {
            let tail = block.split_off(BLOCK);
            let (head_max, tail_max) = (block[BLOCK - 1], tail[tail.len() - 1]);
            self.blocks.insert(b + 1, tail);
            self.maxes[b] = head_max;
            self.maxes.insert(b + 1, tail_max);
        } else if let Some(&last) = block.last() {
            self.maxes[b] = last;
        }
        self.len += 1;
    }

    /// Removes one occurrence of `x`; false if there is none.
    pub fn remove(&mut self, x: f64) -> bool {
        let b = self.block_for(x);
        let Some(block) = self.blocks.get_mut(b) else {
            return false;
        };
        let i = block.partition_point(|y| y.total_cmp(&x).is_lt());
        if block.get(i).is_none_or(|y| y.total_cmp(&x).is_ne()) {
            return false;
        }
        block.remove(i);
        match block.last() {
            Some(&last) => self.maxes[b] = last,
            None => {
                self.blocks.remove(b);
                self.maxes.remove(b);
            }
        }
        self.len -= 1;
        true
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The k-th smallest (0-based).
    pub fn kth(&self, mut k: usize) -> Option<f64> {
        for b in &self.blocks {
            if k < b.len() {
                return b.get(k).copied();
            }
            k -= b.len();
        }
        None
    }

    /// As [`crate::num::median`].
    pub fn median(&self) -> Option<f64> {
        let n = self.len;
        if n == 0 {
            return None;
        }
        if n % 2 == 1 {
            self.kth(n / 2)
        } else {
            Some((self.kth(n / 2 - 1)? + self.kth(n / 2)?) / 2.0)
        }
    }

    /// As [`crate::num::p90`]: the ⌈0.9·n⌉-th smallest.
    pub fn p90(&self) -> Option<f64> {
        if self.len == 0 {
            return None;
        }
        self.kth((9 * self.len).div_ceil(10).max(1) - 1)
    }

    fn values(&self) -> impl Iterator<Item = f64> + '_ {
        self.blocks.iter().flatten().copied()
    }
}

impl PartialEq for SortedBag {
    /// Equal as multisets, whatever the blocks.
    fn eq(&self, other: &SortedBag) -> bool {
        self.len == other.len
            && self
                .values()
                .zip(other.values())
                .all(|(a, b)| a.total_cmp(&b).is_eq())
    }
}

/// What one deal adds to the funnel, for a given pipeline.
#[derive(Debug, Clone, PartialEq)]
pub struct Fact {
    pub owner: Arc<str>,
    pub status: DealStatus,
    /// Index of the furthest stage reached (the last one once won); `None` if it never
    /// visited a stage of the pipeline.
    pub furthest: Option<usize>,
    /// Stage index of the final loss, if lost now.
    pub lost_here: Option<usize>,
    /// (stage index, days) of each stay that ended.
    pub durations: Vec<(usize, f64)>,
}

/// The funnel figures of one group of deals.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Group {
    pub opened: u32,
    pub won: u32,
    pub lost: u32,
    pub open: u32,
    /// Deals per furthest stage index.
    pub furthest: Vec<u32>,
    pub lost_here: Vec<u32>,
    pub durations: Vec<SortedBag>,
}

impl Group {
    pub(crate) fn new(n: usize) -> Group {
        Group {
            furthest: vec![0; n],
            lost_here: vec![0; n],
            durations: vec![SortedBag::default(); n],
            ..Group::default()
        }
    }

    pub(crate) fn count(&mut self, f: &Fact, sign: i32) {
        let bump = |n: &mut u32| *n = n.saturating_add_signed(sign);
        bump(&mut self.opened);
        match f.status {
            DealStatus::Won => bump(&mut self.won),
            DealStatus::Lost => bump(&mut self.lost),
            DealStatus::Open => bump(&mut self.open),
        }
        if let Some(n) = f.furthest.and_then(|i| self.furthest.get_mut(i)) {
            bump(n);
        }
        if let Some(n) = f.lost_here.and_then(|i| self.lost_here.get_mut(i)) {
            bump(n);
        }
    }

    fn durations(&mut self, remove: &[(usize, f64)], add: &[(usize, f64)]) {
        for (i, d) in remove {
            if let Some(b) = self.durations.get_mut(*i) {
                b.remove(*d);
            }
        }
        for (i, d) in add {
            if let Some(b) = self.durations.get_mut(*i) {
                b.insert(*d);
            }
        }
    }

    /// Deals that reached stage `i` or further.
    pub fn reached(&self, i: usize) -> u32 {
        self.furthest.iter().skip(i).sum()
    }
}

/// `a` minus `b`, as multisets.
fn minus(a: &[(usize, f64)], b: &[(usize, f64)]) -> Vec<(usize, f64)> {
    let mut left: Vec<(usize, f64)> = b.to_vec();
    let mut out = Vec::new();
    for x in a {
        match left
            .iter()
            .position(|y| y.0 == x.0 && y.1.total_cmp(&x.1).is_eq())
        {
            Some(p) => {
                left.swap_remove(p);
            }
            None => out.push(*x),
        }
    }
    out
}

/// The whole-history funnel, overall and per current owner.
#[derive(Debug, Clone, PartialEq)]
pub struct FunnelIndex {
    /// Stage ids of the pipeline the facts are computed for.
    pub stages: Vec<String>,
    pub all: Group,
    pub by_owner: HashMap<Arc<str>, Group>,
}

impl Default for FunnelIndex {
    /// For the default pipeline (until a `PipelineDefined`).
    fn default() -> FunnelIndex {
        FunnelIndex::new(
            crate::model::default_pipeline()
                .into_iter()
                .map(|s| s.id)
                .collect(),
        )
    }
}

impl FunnelIndex {
    /// An empty index for a pipeline.
    pub fn new(stages: Vec<String>) -> FunnelIndex {
        let n = stages.len();
        FunnelIndex {
            stages,
            all: Group::new(n),
            by_owner: HashMap::new(),
        }
    }

    /// The index of these deals, built in one pass (a rebuild), values sorted once.
    pub fn build<'a>(
        stages: Vec<String>,
        deals: impl Iterator<Item = &'a DealView>,
    ) -> FunnelIndex {
        let mut ix = FunnelIndex::new(stages);
        let n = ix.stages.len();
        let mut all: Vec<Vec<f64>> = vec![Vec::new(); n];
        let mut owners: HashMap<Arc<str>, Vec<Vec<f64>>> = HashMap::new();
        for d in deals {
            let f = ix.fact(d);
            ix.all.count(&f, 1);
            ix.by_owner
                .entry(f.owner.clone())
                .or_insert_with(|| Group::new(n))
                .count(&f, 1);
            let mine = owners
                .entry(f.owner.clone())
                .or_insert_with(|| vec![Vec::new(); n]);
            for &(i, days) in &f.durations {
                all[i].push(days);
                mine[i].push(days);
            }
        }
        let bags = |v: Vec<Vec<f64>>| v.into_iter().map(SortedBag::from_values).collect();
        ix.all.durations = bags(all);
        for (owner, d) in owners {
            if let Some(g) = ix.by_owner.get_mut(&owner) {
                g.durations = bags(d);
            }
        }
        ix
    }

    /// The deal's fact for this index's pipeline (the scan in [`crate::funnel`] computes
    /// the same per deal).
    pub fn fact(&self, d: &DealView) -> Fact {
        let idx = |s: &str| self.stages.iter().position(|x| x == s);
        let n = self.stages.len();
        let furthest = if d.closes.iter().any(|c| c.won) {
            n.checked_sub(1)
        } else {
            d.visits.iter().filter_map(|v| idx(&v.stage)).max()
        };
        Fact {
            owner: d.state.owner.clone(),
            status: d.state.status,
            furthest,
            lost_here: d
                .final_close()
                .filter(|c| !c.won)
                .and_then(|c| idx(&c.stage)),
            durations: d
                .visits
                .iter()
                .filter_map(|v| Some((idx(&v.stage)?, days_between(v.entered, v.exited?))))
                .collect(),
        }
    }

    /// Replaces a deal's fact `before` with `after` (`None`: no deal).
    pub fn change(&mut self, before: Option<&Fact>, after: Option<&Fact>) {
        if before == after {
            return;
        }
        let n = self.stages.len();
        let none: &[(usize, f64)] = &[];
        let old = before.map_or(none, |f| &f.durations[..]);
        let new = after.map_or(none, |f| &f.durations[..]);
        let (gone, added) = (minus(old, new), minus(new, old));
        // Overall: counts, then only the durations that differ.
        if let Some(f) = before {
            self.all.count(f, -1);
        }
        if let Some(f) = after {
            self.all.count(f, 1);
        }
        self.all.durations(&gone, &added);
        // Per owner: the same when the owner stays; otherwise move the whole fact.
        let same_owner = matches!((before, after), (Some(b), Some(a)) if b.owner == a.owner);
        if same_owner {
            if let (Some(b), Some(a)) = (before, after) {
                let g = self
                    .by_owner
                    .entry(a.owner.clone())
                    .or_insert_with(|| Group::new(n));
                g.count(b, -1);
                g.count(a, 1);
                g.durations(&gone, &added);
            }
            return;
        }
        if let Some(b) = before {
            if let Some(g) = self.by_owner.get_mut(&b.owner) {
                g.count(b, -1);
                g.durations(&b.durations, none);
                if g.opened == 0 {
                    self.by_owner.remove(&b.owner);
                }
            }
        }
        if let Some(a) = after {
            let g = self
                .by_owner
                .entry(a.owner.clone())
                .or_insert_with(|| Group::new(n));
            g.count(a, 1);
            g.durations(none, &a.durations);
        }
    }
}
