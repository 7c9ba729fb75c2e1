//! A deal folded over its stream (SPEC §2.2 `state`).

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;

use crate::envelope::rfc3339;
use crate::events::{DealOpened, Event};
use crate::money::Money;

/// Whether a deal is still being worked on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DealStatus {
    Open,
    Won,
    Lost,
}

/// A scheduled installment of a won deal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Installment {
    pub amount: Money,
    pub due: NaiveDate,
    /// Sum of the `PaymentReceived` naming this installment.
    pub paid: Money,
}

/// The state of one deal. Serialises to exactly the `state` object of SPEC §2.2; the fields
/// after `paid` are kept for the rules and reports and are not part of that JSON.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DealState {
    pub deal_id: String,
    pub customer_id: String,
    pub owner: String,
    /// The current stage; for a closed deal, the stage it was closed in.
    pub stage: String,
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
    pub competitors: Vec<String>,
    /// Number of `ActivityLogged` on the deal stream.
    pub activities: u32,
    /// Latest `occurred_at` of any event of the deal.
    #[serde(with = "rfc3339")]
    pub last_touch_at: DateTime<Utc>,
    /// Sum of `PaymentReceived`.
    pub paid: Money,

    #[serde(skip)]
    pub title: String,
    /// ISO 4217 code; "CNY" when `DealOpened` gave none.
    #[serde(skip)]
    pub currency: String,
    #[serde(skip)]
    pub expected_close: Option<NaiveDate>,
    #[serde(skip)]
    pub source_lead: Option<String>,
    /// Amount of the latest `DealWon`, while the deal is won.
    #[serde(skip)]
    pub won_amount: Option<Money>,
    /// Time of the `DealWon`/`DealLost` that closed the deal, while it is closed.
    #[serde(skip)]
    pub closed_at: Option<DateTime<Utc>>,
    #[serde(skip)]
    pub lost_reason: Option<String>,
    /// Amount of the latest quote.
    #[serde(skip)]
    pub last_quote: Option<Money>,
    /// Installments by `installment_id`.
    #[serde(skip)]
    pub installments: BTreeMap<String, Installment>,
}

impl DealState {
    /// The state right after the opening event.
    pub fn opened(deal_id: &str, o: &DealOpened, at: DateTime<Utc>) -> DealState {
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
            title: o.title.clone(),
            currency: o
                .currency
                .clone()
                .unwrap_or_else(|| super::DEFAULT_CURRENCY.to_string()),
            expected_close: o.expected_close,
            source_lead: o.source_lead.clone(),
            won_amount: None,
            closed_at: None,
            lost_reason: None,
            last_quote: None,
            installments: BTreeMap::new(),
        }
    }

    pub fn is_closed(&self) -> bool {
        self.status != DealStatus::Open
    }

    /// Folds one event of the deal's stream. Total: events that do not concern an open deal
    /// state (the opening event again, other streams' types) are ignored.
    pub fn apply_event(&mut self, event: &Event, at: DateTime<Utc>) {
        if at > self.last_touch_at {
            self.last_touch_at = at;
        }
        match event {
            Event::DealStageChanged(c) => {
                self.stage = c.to.clone();
                self.stage_entered_at = at;
            }
            Event::DealAmountChanged(c) => self.amount = c.amount,
            Event::DealReassigned(r) => self.owner = r.to.clone(),
            Event::QuoteIssued(q) => {
                self.quotes = self.quotes.saturating_add(1);
                self.last_quote = Some(q.amount);
            }
            Event::CompetitorNoted(c) => self.note_competitor(&c.competitor),
            Event::DealWon(w) => {
                self.status = DealStatus::Won;
                self.amount = w.amount;
                self.won_amount = Some(w.amount);
                self.closed_at = Some(at);
                self.lost_reason = None;
            }
            Event::DealLost(l) => {
                self.status = DealStatus::Lost;
                self.closed_at = Some(at);
                self.lost_reason = Some(l.reason.clone());
                self.won_amount = None;
                if let Some(c) = &l.competitor {
                    self.note_competitor(c);
                }
            }
            Event::DealReopened(r) => {
                self.status = DealStatus::Open;
                self.stage = r.stage.clone();
                self.stage_entered_at = at;
                self.closed_at = None;
                self.won_amount = None;
                self.lost_reason = None;
            }
            Event::PaymentScheduled(p) => {
                self.installments.insert(
                    p.installment_id.clone(),
                    Installment {
                        amount: p.amount,
                        due: p.due,
                        paid: Money::ZERO,
                    },
                );
            }
            Event::PaymentReceived(p) => {
                self.paid += p.amount;
                if let Some(i) = p
                    .installment_id
                    .as_ref()
                    .and_then(|id| self.installments.get_mut(id))
                {
                    i.paid += p.amount;
                }
            }
            Event::ActivityLogged(_) => self.activities = self.activities.saturating_add(1),
            _ => {}
        }
    }

    fn note_competitor(&mut self, name: &str) {
        if !self.competitors.iter().any(|c| c == name) {
            self.competitors.push(name.to_string());
        }
    }
}
