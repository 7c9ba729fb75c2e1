//! A deal folded over its stream (SPEC §2.2 `state`): the one deal fold. The rules fold a
//! deal's events with [`DealState::apply_event`]; the read model (`projections`) keeps each
//! deal event as a compact [`DealOp`] (names shared through its interner) and folds those
//! with [`DealState::apply`], the same transitions; `apply_event` is `apply` of the event's
//! op. Reports add their own history (stage visits, closes, activity kinds) on top.

use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::envelope::rfc3339;
use crate::events::{ActivityKind, Event};
use crate::money::Money;

/// Whether a deal is still being worked on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DealStatus {
    Open,
    Won,
    Lost,
}

/// A `PaymentScheduled`: what is due when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scheduled {
    pub installment_id: Arc<str>,
    pub amount: Money,
    pub due: NaiveDate,
}

/// A scheduled installment of a won deal, with what was received for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Installment {
    pub installment_id: Arc<str>,
    pub amount: Money,
    pub due: NaiveDate,
    /// Sum of the `PaymentReceived` naming this installment (SPEC §2.8's `received`),
    /// wherever they fall in business order: one dated before the scheduling (a late entry)
    /// counts too.
    pub paid: Money,
}

/// What a `DealOpened` says, as the fold keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Opened {
    pub customer_id: Arc<str>,
    pub owner: Arc<str>,
    pub amount: Money,
    /// `DealOpened.currency`, "CNY" when absent.
    pub currency: Arc<str>,
    pub stage: Arc<str>,
    pub source_lead: Option<Arc<str>>,
    /// `DealOpened.title` (not part of the state: the read model's deal list shows it).
    pub title: Arc<str>,
}

/// A `DealLost`, as far as the fold needs it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Lost {
    pub reason: Arc<str>,
    pub competitor: Option<Arc<str>>,
}

/// A deal event reduced to what the fold (and the read model's reports) use: a few bytes
/// instead of the event. Names (stages, reps, competitors, reasons) are `Arc<str>`s, which a
/// caller keeping many deals shares through an interner ([`DealOp::of`]'s `intern`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum DealOp {
    Opened(Box<Opened>),
    /// `DealStageChanged.to`.
    Stage(Arc<str>),
    Reopened(Arc<str>),
    Amount(Money),
    Reassigned(Arc<str>),
    /// `QuoteIssued.amount`.
    Quote(Money),
    Competitor(Arc<str>),
    /// `ActivityLogged`: kind and rep.
    Activity(ActivityKind, Arc<str>),
    /// Amount and reason (boxed: one a deal, and it keeps every other op small).
    Won(Box<(Money, Option<Arc<str>>)>),
    Lost(Box<Lost>),
    Paid(Money),
    /// A `PaymentReceived` for an installment: amount and `installment_id`.
    PaidInstallment(Box<(Money, Arc<str>)>),
    Scheduled(Box<Scheduled>),
    /// Any other event of the deal's stream (it still touches the deal).
    Other,
}

impl DealOp {
    /// The deal-relevant part of `event`; `intern` turns each name into an `Arc<str>`
    /// (`Arc::from` will do; a read model shares repeated names).
    pub fn of(event: &Event, intern: &mut impl FnMut(&str) -> Arc<str>) -> DealOp {
        match event {
            Event::DealOpened(o) => DealOp::Opened(Box::new(Opened {
                customer_id: intern(&o.customer_id),
                owner: intern(&o.owner),
                amount: o.amount,
                currency: intern(o.currency.as_deref().unwrap_or(super::DEFAULT_CURRENCY)),
                stage: intern(&o.stage),
                source_lead: o.source_lead.as_deref().map(Arc::from),
                title: Arc::from(o.title.as_str()),
            })),
            Event::DealStageChanged(c) => DealOp::Stage(intern(&c.to)),
            Event::DealReopened(r) => DealOp::Reopened(intern(&r.stage)),
            Event::DealAmountChanged(a) => DealOp::Amount(a.amount),
            Event::DealReassigned(r) => DealOp::Reassigned(intern(&r.to)),
            Event::QuoteIssued(q) => DealOp::Quote(q.amount),
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
                Some(id) => DealOp::PaidInstallment(Box::new((p.amount, Arc::from(id.as_str())))),
                None => DealOp::Paid(p.amount),
            },
            Event::PaymentScheduled(p) => DealOp::Scheduled(Box::new(Scheduled {
                installment_id: Arc::from(p.installment_id.as_str()),
                amount: p.amount,
                due: p.due,
            })),
            _ => DealOp::Other,
        }
    }
}

/// The state of one deal. Serialises to exactly the `state` object of SPEC §2.2; the fields
/// after `paid` are kept for the rules and reports and are not part of that JSON.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct DealState {
    pub deal_id: String,
    #[schema(value_type = String)]
    pub customer_id: Arc<str>,
    #[schema(value_type = String)]
    pub owner: Arc<str>,
    /// The current stage; for a closed deal, the stage it was closed in.
    #[schema(value_type = String)]
    pub stage: Arc<str>,
    /// The deal's amount; once won, the won amount.
    pub amount: Money,
    pub status: DealStatus,
    #[serde(with = "rfc3339")]
    pub opened_at: DateTime<Utc>,
    #[serde(with = "rfc3339")]
    pub stage_entered_at: DateTime<Utc>,
    /// Number of `QuoteIssued`.
    pub quotes: u32,
    /// Competitors noted (`CompetitorNoted`, `DealLost.competitor`), first mention first, no repeats.
    #[schema(value_type = Vec<String>)]
    pub competitors: Vec<Arc<str>>,
    /// Number of `ActivityLogged` on the deal stream.
    pub activities: u32,
    /// Latest `occurred_at` of any event of the deal.
    #[serde(with = "rfc3339")]
    pub last_touch_at: DateTime<Utc>,
    /// Sum of `PaymentReceived`.
    pub paid: Money,

    /// ISO 4217 code of every amount of the deal; "CNY" when `DealOpened` gave none.
    #[serde(skip)]
    pub currency: Arc<str>,
    #[serde(skip)]
    pub source_lead: Option<Arc<str>>,
    /// Amount of the latest `DealWon`, while the deal is won.
    #[serde(skip)]
    pub won_amount: Option<Money>,
    /// Reason of the `DealLost` that closed the deal, while it is lost.
    #[serde(skip)]
    pub lost_reason: Option<Arc<str>>,
    /// Installments in the order first scheduled (a rescheduling replaces amount and due).
    #[serde(skip)]
    pub installments: Vec<Installment>,
    /// `PaymentReceived` naming an installment not scheduled before them in business order
    /// (late entries, or an id never scheduled), by id: added to the installment's `paid`
    /// when it is scheduled.
    #[serde(skip)]
    pub paid_unscheduled: Vec<(Arc<str>, Money)>,
}

impl DealState {
    /// The state right after the opening event.
    #[inline]
    pub fn opened(deal_id: &str, o: &Opened, at: DateTime<Utc>) -> DealState {
        DealState {
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
            currency: o.currency.clone(),
            source_lead: o.source_lead.clone(),
            won_amount: None,
            lost_reason: None,
            installments: Vec::new(),
            paid_unscheduled: Vec::new(),
        }
    }

    pub fn is_closed(&self) -> bool {
        self.status != DealStatus::Open
    }

    /// The installment scheduled with this id.
    pub fn installment(&self, id: &str) -> Option<&Installment> {
        self.installments.iter().find(|i| &*i.installment_id == id)
    }

    /// Folds one event of the deal's stream: [`DealState::apply`] of its [`DealOp`].
    pub fn apply_event(&mut self, event: &Event, at: DateTime<Utc>) {
        self.apply(&DealOp::of(event, &mut |s| Arc::from(s)), at);
    }

    /// Folds one op of the deal's stream. Total: ops that do not concern an open deal state
    /// (the opening again, other events) only touch it (`last_touch_at`). Inlined: the read
    /// model calls it for every deal event of a rebuild and of each as-of fold.
    #[inline]
    pub fn apply(&mut self, op: &DealOp, at: DateTime<Utc>) {
        if at > self.last_touch_at {
            self.last_touch_at = at;
        }
        match op {
            DealOp::Stage(to) => {
                self.stage = to.clone();
                self.stage_entered_at = at;
            }
            DealOp::Amount(a) => self.amount = *a,
            DealOp::Reassigned(to) => self.owner = to.clone(),
            DealOp::Quote(_) => self.quotes = self.quotes.saturating_add(1),
            DealOp::Competitor(c) => self.note_competitor(c),
            DealOp::Won(w) => {
                self.status = DealStatus::Won;
                self.amount = w.0;
                self.won_amount = Some(w.0);
                self.lost_reason = None;
            }
            DealOp::Lost(l) => {
                self.status = DealStatus::Lost;
                self.lost_reason = Some(l.reason.clone());
                self.won_amount = None;
                if let Some(c) = &l.competitor {
                    self.note_competitor(c);
                }
            }
            DealOp::Reopened(stage) => {
                self.status = DealStatus::Open;
                self.stage = stage.clone();
                self.stage_entered_at = at;
                self.won_amount = None;
                self.lost_reason = None;
            }
            DealOp::Scheduled(s) => {
                match self
                    .installments
                    .iter_mut()
                    .find(|i| i.installment_id == s.installment_id)
                {
                    Some(i) => (i.amount, i.due) = (s.amount, s.due),
                    None => {
                        // Deals are paid in one or two installments, most often: one
                        // allocation for those (reports fold every deal as of a past date).
                        if self.installments.capacity() == 0 {
                            self.installments.reserve_exact(2);
                        }
                        let paid = self.take_paid_unscheduled(&s.installment_id);
                        self.installments.push(Installment {
                            installment_id: s.installment_id.clone(),
                            amount: s.amount,
                            due: s.due,
                            paid,
                        });
                    }
                }
            }
            DealOp::Paid(amount) => self.paid += *amount,
            DealOp::PaidInstallment(p) => {
                self.paid += p.0;
                match self
                    .installments
                    .iter_mut()
                    .find(|i| i.installment_id == p.1)
                {
                    Some(i) => i.paid += p.0,
                    None => self.paid_unscheduled.push((p.1.clone(), p.0)),
                }
            }
            DealOp::Activity(..) => self.activities = self.activities.saturating_add(1),
            DealOp::Opened(_) | DealOp::Other => {}
        }
    }

    /// The sum of the payments for `id` received before it was scheduled, no longer kept
    /// apart.
    fn take_paid_unscheduled(&mut self, id: &Arc<str>) -> Money {
        let mut sum = Money::ZERO;
        self.paid_unscheduled.retain(|(paid_for, amount)| {
            let mine = paid_for == id;
            if mine {
                sum += *amount;
            }
            !mine
        });
        sum
    }

    fn note_competitor(&mut self, name: &Arc<str>) {
        if !self.competitors.iter().any(|c| c == name) {
            self.competitors.push(name.clone());
        }
    }
}
