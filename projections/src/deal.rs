//! One deal folded over its events: the SPEC §2.2 state plus the history reports need.
//!
//! SEAM: [`DealState`] mirrors the state of SPEC §2.2 that `domain::state::DealState` is
//! being written to hold. At merge time, `DealView::state` can become the domain's type and
//! [`DealView::apply`] can delegate the state part to the domain's fold; the history kept
//! here (visits, closes, activity kinds) stays in this crate.
//!
//! Order: a deal's events are folded in business order, (`occurred_at`, `position`), so a
//! call logged late lands where it happened. The fold only ever *sets* fields from each
//! event (e.g. the stage from `DealStageChanged.to`), so it is total for any order.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use domain::envelope::rfc3339;
use domain::events::ActivityKind;
use domain::{Event, Money};
use serde::{Deserialize, Serialize};

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

/// What a `DealOpened` says, kept once per deal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Opened {
    pub customer_id: Arc<str>,
    pub owner: Arc<str>,
    pub amount: Money,
    /// `DealOpened.currency`, "CNY" when absent.
    pub currency: Arc<str>,
    pub stage: Arc<str>,
    pub source_lead: Option<String>,
    /// `DealOpened.title` (the follow-up list and the deal list show it).
    #[serde(default)]
    pub title: String,
}

/// A `DealLost`, as far as the fold needs it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Lost {
    pub reason: Arc<str>,
    pub competitor: Option<Arc<str>>,
}

/// A deal event reduced to what the fold and the reports use: a few bytes instead of the
/// envelope and its JSON. Names (stages, reps, competitors, reasons) are shared `Arc<str>`s
/// handed out by the read model's interner; the full event stays in the log, and the reports
/// that show it (timeline, replay) read it from there by position.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum DealOp {
    Opened(Box<Opened>),
    /// `DealStageChanged.to`.
    Stage(Arc<str>),
    Reopened(Arc<str>),
    Amount(Money),
    Reassigned(Arc<str>),
    Quote,
    Competitor(Arc<str>),
    Activity(ActivityKind, Arc<str>),
    /// Amount and reason (boxed: one a deal, and it keeps every other op small).
    Won(Box<(Money, Option<Arc<str>>)>),
    Lost(Box<Lost>),
    Paid(Money),
    /// A `PaymentReceived` for an installment: amount and `installment_id`.
    PaidInstallment(Box<(Money, String)>),
    /// A `PaymentScheduled`.
    Scheduled(Box<Installment>),
    /// Any other event of the deal's stream (it still touches the deal).
    Other,
}

impl DealOp {
    /// The deal-relevant part of `event`; `intern` shares repeated names.
    pub fn of(event: &Event, intern: &mut impl FnMut(&str) -> Arc<str>) -> DealOp {
        match event {
            Event::DealOpened(o) => DealOp::Opened(Box::new(Opened {
                customer_id: intern(&o.customer_id),
                owner: intern(&o.owner),
                amount: o.amount,
                currency: intern(
                    o.currency
                        .as_deref()
                        .unwrap_or(domain::state::DEFAULT_CURRENCY),
                ),
                stage: intern(&o.stage),
                source_lead: o.source_lead.clone(),
                title: o.title.clone(),
            })),
            Event::DealStageChanged(c) => DealOp::Stage(intern(&c.to)),
            Event::DealReopened(r) => DealOp::Reopened(intern(&r.stage)),
            Event::DealAmountChanged(a) => DealOp::Amount(a.amount),
            Event::DealReassigned(r) => DealOp::Reassigned(intern(&r.to)),
            Event::QuoteIssued(_) => DealOp::Quote,
            Event::CompetitorNoted(c) => DealOp::Competitor(intern(&c.competitor)),
            Event::ActivityLogged(a) => DealOp::Activity(a.kind, intern(&a.rep)),
            Event::DealWon(w) => {
                DealOp::Won(Box::new((w.amount, w.reason.as_deref().map(&mut *intern))))
            }
            Event::DealLost(l) => DealOp::Lost(Box::new(Lost {
                reason: intern(&l.reason),
                competitor: l.competitor.as_deref().map(&mut *intern),
            })),
            Event::PaymentReceived(p) => match &p.installment_id {
                Some(id) => DealOp::PaidInstallment(Box::new((p.amount, id.clone()))),
                None => DealOp::Paid(p.amount),
            },
            Event::PaymentScheduled(p) => DealOp::Scheduled(Box::new(Installment {
                installment_id: p.installment_id.clone(),
                amount: p.amount,
                due: p.due,
            })),
            _ => DealOp::Other,
        }
    }
}

/// A `PaymentScheduled`: what is due when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Installment {
    pub installment_id: String,
    pub amount: Money,
    pub due: chrono::NaiveDate,
}

/// open / won / lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DealStatus {
    Open,
    Won,
    Lost,
}

/// The deal state of SPEC §2.2 (`GET /v1/deals/{id}?as_of=`); JSON is exactly that shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DealState {
    pub deal_id: String,
    pub customer_id: Arc<str>,
    pub owner: Arc<str>,
    /// The current stage; for a closed deal, the stage it closed in.
    pub stage: Arc<str>,
    pub amount: Money,
    pub status: DealStatus,
    #[serde(with = "rfc3339")]
    pub opened_at: DateTime<Utc>,
    #[serde(with = "rfc3339")]
    pub stage_entered_at: DateTime<Utc>,
    /// Number of `QuoteIssued`.
    pub quotes: u32,
    /// Competitors noted (`CompetitorNoted`, and `DealLost.competitor`), first-noted order, distinct.
    pub competitors: Vec<Arc<str>>,
    /// Number of `ActivityLogged` on the deal.
    pub activities: u32,
    /// Latest `occurred_at` of any event of the deal.
    #[serde(with = "rfc3339")]
    pub last_touch_at: DateTime<Utc>,
    /// Sum of `PaymentReceived`.
    pub paid: Money,
}

/// One stay in a stage: from entering (open, stage change, reopen) to leaving (stage change,
/// won, lost); `exited` is `None` while the deal is still in it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Visit {
    pub stage: Arc<str>,
    pub entered: DateTime<Utc>,
    pub exited: Option<DateTime<Utc>>,
}

/// A `DealWon` or `DealLost`, with who owned the deal then and what it was worth.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DealView {
    pub state: DealState,
    pub source_lead: Option<String>,
    /// The owner named in `DealOpened`.
    pub opened_by: Arc<str>,
    /// The currency of every amount of the deal (`DealOpened.currency`, "CNY" when absent):
    /// reports convert them to the reporting currency ([`crate::currency`]).
    pub currency: Arc<str>,
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
        let at = entry.at;
        Some(DealView {
            state: DealState {
                deal_id: deal_id.to_string(),
                customer_id: o.customer_id.clone(),
                owner: o.owner.clone(),
                stage: o.stage.clone(),
                amount: o.amount,
                status: DealStatus::Open,
                opened_at: at,
                stage_entered_at: at,
                quotes: 0,
                competitors: Vec::new(),
                activities: 0,
                last_touch_at: at,
                paid: Money::ZERO,
            },
            source_lead: o.source_lead.clone(),
            opened_by: o.owner.clone(),
            currency: o.currency.clone(),
            visits: vec![Visit {
                stage: o.stage.clone(),
                entered: at,
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

    fn enter(&mut self, stage: &Arc<str>, at: DateTime<Utc>) {
        self.leave(at);
        self.visits.push(Visit {
            stage: stage.clone(),
            entered: at,
            exited: None,
        });
        self.state.stage = stage.clone();
        self.state.stage_entered_at = at;
    }

    fn leave(&mut self, at: DateTime<Utc>) {
        if let Some(v) = self.visits.last_mut() {
            if v.exited.is_none() {
                v.exited = Some(at);
            }
        }
    }

    fn note_competitor(&mut self, c: &Arc<str>) {
        if !self.state.competitors.iter().any(|x| x == c) {
            self.state.competitors.push(c.clone());
        }
    }

    /// Applies the next event (in business order). Events of other types are ignored.
    pub fn apply(&mut self, entry: &DealEntry) {
        let at = entry.at;
        if at > self.state.last_touch_at {
            self.state.last_touch_at = at;
        }
        match &entry.op {
            DealOp::Stage(to) => self.enter(to, at),
            DealOp::Reopened(stage) => {
                self.state.status = DealStatus::Open;
                self.enter(stage, at);
            }
            DealOp::Amount(a) => self.state.amount = *a,
            DealOp::Reassigned(to) => self.state.owner = to.clone(),
            DealOp::Quote => self.state.quotes += 1,
            DealOp::Competitor(c) => self.note_competitor(c),
            DealOp::Activity(kind, _) => {
                self.state.activities += 1;
                self.activity_kinds[crate::rep_months::kind_index(*kind)] += 1;
            }
            DealOp::Won(won) => {
                let (amount, reason) = &**won;
                self.leave(at);
                self.state.status = DealStatus::Won;
                self.state.amount = *amount;
                self.closes.reserve_exact(1); // most deals close once: no spare room
                self.closes.push(Close {
                    at,
                    won: true,
                    owner: self.state.owner.clone(),
                    amount: *amount,
                    stage: self.state.stage.clone(),
                    reason: reason.clone(),
                    competitor: None,
                });
            }
            DealOp::Lost(l) => {
                self.leave(at);
                self.state.status = DealStatus::Lost;
                if let Some(c) = &l.competitor {
                    self.note_competitor(c);
                }
                self.closes.reserve_exact(1); // most deals close once: no spare room
                self.closes.push(Close {
                    at,
                    won: false,
                    owner: self.state.owner.clone(),
                    amount: self.state.amount,
                    stage: self.state.stage.clone(),
                    reason: Some(l.reason.clone()),
                    competitor: l.competitor.clone(),
                });
            }
            DealOp::Paid(amount) => self.state.paid += *amount,
            DealOp::PaidInstallment(p) => self.state.paid += p.0,
            DealOp::Opened(_) | DealOp::Scheduled(_) | DealOp::Other => {}
        }
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
