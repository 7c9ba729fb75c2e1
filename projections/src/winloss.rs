//! Win/loss — `GET /v1/reports/win-loss?from&to&as_of` (SPEC §2.6).
//!
//! Deals closed in the period: deals won or lost (as of `as_of`) whose final close
//! (`DealWon`/`DealLost`) occurred in `[from, to)`; with a narrower scope than the
//! organisation, only deals owned (as of `as_of`) by the scope's reps. Choices:
//! - `by_reason`: lost deals by `DealLost.reason`; `amount` = the deal's amount at the loss;
//!   sorted by count, amount (descending), then reason.
//! - `by_competitor`: every competitor named on a closed deal (`CompetitorNoted` or
//!   `DealLost.competitor`): `lost_to` = lost deals whose `DealLost.competitor` is it,
//!   `noted` = closed deals naming it, `won` = of those, the won ones, `win_rate` = won ÷ noted;
//!   sorted by lost_to, noted (descending), then name.
//! - Amounts are in the reporting currency (`currency`): each deal's at the rate of its
//!   close's month (see [`crate::currency`]).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use domain::envelope::rfc3339_opt;
use domain::{Money, Month};
use serde::Serialize;

use crate::currency::{Converter, MissingRate};
use crate::model::ReadModel;
use crate::num::ratio;
use crate::params::PeriodQuery;

pub use crate::params::PeriodParams as WinLossParams;

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ReasonRow {
    pub reason: String,
    pub count: u32,
    pub amount: Money,
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct CompetitorRow {
    pub competitor: String,
    pub lost_to: u32,
    pub noted: u32,
    pub won: u32,
    pub win_rate: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct WinLoss {
    /// The reporting currency of every amount (SPEC §2).
    pub currency: String,
    #[serde(with = "rfc3339_opt")]
    pub from: Option<DateTime<Utc>>,
    #[serde(with = "rfc3339_opt")]
    pub to: Option<DateTime<Utc>>,
    pub closed: u32,
    pub won: u32,
    pub lost: u32,
    pub win_rate: Option<f64>,
    pub won_amount: Money,
    pub lost_amount: Money,
    pub by_reason: Vec<ReasonRow>,
    pub by_competitor: Vec<CompetitorRow>,
}

/// Win/loss; refused when an amount needs a rate the log lacks.
pub fn win_loss(model: &ReadModel, q: &PeriodQuery) -> Result<WinLoss, MissingRate> {
    let conv = Converter::new(model, q.as_of);
    let (mut won, mut lost) = (0u32, 0u32);
    let (mut won_amount, mut lost_amount) = (Money::ZERO, Money::ZERO);
    let mut reasons: BTreeMap<String, ReasonRow> = BTreeMap::new();
    let mut comps: BTreeMap<String, CompetitorRow> = BTreeMap::new();
    for d in model.deal_views(q.as_of) {
        let Some(c) = d.final_close() else { continue };
        if !q.period.contains(c.at) || !q.scope.covers(&d.state.owner) {
            continue;
        }
        let amount = conv.at(c.amount, &d.state.currency, Month::of(&c.at));
        if c.won {
            won += 1;
            won_amount += amount;
        } else {
            lost += 1;
            lost_amount += amount;
            let reason = c.reason.as_deref().unwrap_or_default().to_string();
            let r = reasons.entry(reason.clone()).or_insert(ReasonRow {
                reason,
                count: 0,
                amount: Money::ZERO,
            });
            r.count += 1;
            r.amount += amount;
        }
        for name in &d.state.competitors {
            let r = comps.entry(name.to_string()).or_insert(CompetitorRow {
                competitor: name.to_string(),
                lost_to: 0,
                noted: 0,
                won: 0,
                win_rate: None,
            });
            r.noted += 1;
            r.won += u32::from(c.won);
            r.lost_to += u32::from(!c.won && c.competitor.as_deref() == Some(&**name));
        }
    }
    let mut by_reason: Vec<ReasonRow> = reasons.into_values().collect();
    by_reason.sort_by(|a, b| {
        b.count
            .cmp(&a.count)
            .then(b.amount.cmp(&a.amount))
            .then_with(|| a.reason.cmp(&b.reason))
    });
    let mut by_competitor: Vec<CompetitorRow> = comps
        .into_values()
        .map(|mut r| {
            r.win_rate = ratio(f64::from(r.won), f64::from(r.noted));
            r
        })
        .collect();
    by_competitor.sort_by(|a, b| {
        b.lost_to
            .cmp(&a.lost_to)
            .then(b.noted.cmp(&a.noted))
            .then_with(|| a.competitor.cmp(&b.competitor))
    });
    Ok(WinLoss {
        currency: conv.finish()?,
        from: q.period.from,
        to: q.period.to,
        closed: won + lost,
        won,
        lost,
        win_rate: ratio(f64::from(won), f64::from(won + lost)),
        won_amount,
        lost_amount,
        by_reason,
        by_competitor,
    })
}
