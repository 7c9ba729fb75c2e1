//! One deal as the reports see it: the domain's fold ([`DealState`], SPEC §2.2, over the
//! compact [`DealOp`]s the read model keeps) plus the history only reports need: stays in
//! stages, closes, activities per kind.
//!
//! Order: a deal's events are folded in business order, (`occurred_at`, `position`), so a
//! call logged late lands where it happened (`domain::state`'s ordering rule).

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use domain::events::ActivityKind;
pub use domain::state::{DealOp, DealState, DealStatus, Lost, Opened, Scheduled};
use domain::Money;

use crate::model::DealEntry;

/// Counts per activity kind kept in [`ActivityKind::ALL`] order, as a map of the kinds seen.
pub fn kind_counts(counts: &[u32; 6]) -> BTreeMap<ActivityKind, u32> {
    ActivityKind::ALL
        .iter()
        .zip(counts)
        .filter(|(_, n)| **n > 0)
        .map(|(k, n)| (*k, *n))
        .collect()
}

/// One stay in a stage: from entering (open, stage change, reopen) to leaving (stage change,
/// won, lost); `exited` is `None` while the deal is still in it.
#[derive(Debug, Clone, PartialEq)]
pub struct Visit {
    pub stage: Arc<str>,
    pub entered: DateTime<Utc>,
    pub exited: Option<DateTime<Utc>>,
}

/// A `DealWon` or `DealLost`, with who owned the deal then and what it was worth.
#[derive(Debug, Clone, PartialEq)]
pub struct Close {
    pub at: DateTime<Utc>,
    pub won: bool,
    pub owner: Arc<str>,
    /// Won amount for a win; the deal's amount at the time for a loss.
    pub amount: Money,
    pub stage: Arc<str>,
    pub reason: Option<Arc<str>>,
    pub competitor: Option<Arc<str>>,
}

/// A deal folded over a prefix (in business order) of its events.
#[derive(Debug, Clone, PartialEq)]
pub struct DealView {
    /// The domain's fold of the deal.
    pub state: DealState,
    /// The owner named in `DealOpened`.
    pub opened_by: Arc<str>,
    pub visits: Vec<Visit>,
    pub closes: Vec<Close>,
    /// `ActivityLogged` per kind, in [`ActivityKind::ALL`] order.
    pub activity_kinds: [u32; 6],
}

impl DealView {
    /// Starts a deal from its opening event; `None` for any other event.
    pub fn open(deal_id: &str, entry: &DealEntry) -> Option<DealView> {
        let DealOp::Opened(o) = &entry.op else {
            return None;
        };
        Some(DealView {
            state: DealState::opened(deal_id, o, entry.at),
            opened_by: o.owner.clone(),
            visits: vec![Visit {
                stage: o.stage.clone(),
                entered: entry.at,
                exited: None,
            }],
            closes: Vec::new(),
            activity_kinds: [0; 6],
        })
    }

    /// Folds the events (already in business order) from the `DealOpened` on; `None` without
    /// one. Anything before it (impossible in a validated log) is ignored, never a panic.
    pub fn fold<'a>(
        deal_id: &str,
        entries: impl IntoIterator<Item = &'a DealEntry>,
    ) -> Option<DealView> {
        let mut it = entries
            .into_iter()
            .skip_while(|e| !matches!(e.op, DealOp::Opened(_)));
        let mut view = DealView::open(deal_id, it.next()?)?;
        for e in it {
            view.apply(e);
        }
        Some(view)
    }

    fn leave(&mut self, at: DateTime<Utc>) {
        if let Some(v) = self.visits.last_mut() {
            if v.exited.is_none() {
                v.exited = Some(at);
            }
        }
    }

    /// Applies the next event (in business order): the domain's transition, then the
    /// history it adds to.
    pub fn apply(&mut self, entry: &DealEntry) {
        let at = entry.at;
        self.state.apply(&entry.op, at);
        let close = match &entry.op {
            DealOp::Stage(_) | DealOp::Reopened(_) => {
                self.leave(at);
                self.visits.push(Visit {
                    stage: self.state.stage.clone(),
                    entered: at,
                    exited: None,
                });
                return;
            }
            DealOp::Activity(kind, _) => {
                self.activity_kinds[crate::rep_months::kind_index(*kind)] += 1;
                return;
            }
            // The amount is the won amount after a win, the deal's amount at a loss.
            DealOp::Won(won) => (true, won.1.clone(), None),
            DealOp::Lost(l) => (false, Some(l.reason.clone()), l.competitor.clone()),
            _ => return,
        };
        self.leave(at);
        self.closes.reserve_exact(1); // most deals close once: no spare room
        self.closes.push(Close {
            at,
            won: close.0,
            owner: self.state.owner.clone(),
            amount: self.state.amount,
            stage: self.state.stage.clone(),
            reason: close.1,
            competitor: close.2,
        });
    }

    /// Activities per kind, only the kinds logged.
    pub fn activities_by_kind(&self) -> BTreeMap<ActivityKind, u32> {
        kind_counts(&self.activity_kinds)
    }

    /// The last close (`DealWon`/`DealLost`) if the deal is closed now.
    pub fn final_close(&self) -> Option<&Close> {
        match self.state.status {
            DealStatus::Open => None,
            _ => self.closes.last(),
        }
    }

    /// Days from opening to the final close (or to `now` for an open deal), unrounded.
    pub fn days_open(&self, now: DateTime<Utc>) -> f64 {
        let end = self.final_close().map_or(now, |c| c.at);
        crate::num::days_between(self.state.opened_at, end)
    }
}
