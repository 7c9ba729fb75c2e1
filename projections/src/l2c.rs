//! Lead-to-cash — `GET /v1/reports/l2c?from&to&as_of` (SPEC §2.6).
//!
//! - `leads`: leads captured in the period; `converted_leads`: of those, converted (as of
//!   `as_of`); `lead_conversion_rate` = converted_leads ÷ leads.
//! - `deals_won` / `deals_lost`: deals whose final close is a win / loss in the period;
//!   `win_rate` = won ÷ (won + lost); `won_amount`, `avg_won_amount` (to the cent).
//! - `received`: all `PaymentReceived` (≤ `as_of`) on the deals won in the period;
//!   `collection_ratio` = received ÷ won_amount.
//! - `median_sales_cycle_days`: opening → final `DealWon`, deals won in the period.
//! - `activities_per_won_deal`: `ActivityLogged` on the streams of the deals won in the
//!   period ÷ deals won (4 decimals).
//! - Amounts are in the reporting currency (`currency`): a won amount at the rate of the
//!   win's month, and the deal's payments at that same rate (see [`crate::currency`]).

use chrono::{DateTime, Utc};
use domain::envelope::rfc3339_opt;
use domain::{Money, Month};
use serde::Serialize;

use crate::currency::{Converter, MissingRate};
use crate::deal::DealStatus;
use crate::model::ReadModel;
use crate::num::{median_days, money_div, ratio};
use crate::params::PeriodQuery;

pub use crate::params::PeriodParams as L2cParams;

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct LeadToCash {
    /// The reporting currency of every amount (SPEC §2).
    pub currency: String,
    #[serde(with = "rfc3339_opt")]
    pub from: Option<DateTime<Utc>>,
    #[serde(with = "rfc3339_opt")]
    pub to: Option<DateTime<Utc>>,
    pub leads: u32,
    pub converted_leads: u32,
    pub lead_conversion_rate: Option<f64>,
    pub deals_won: u32,
    pub deals_lost: u32,
    pub win_rate: Option<f64>,
    pub won_amount: Money,
    pub avg_won_amount: Option<Money>,
    pub received: Money,
    pub collection_ratio: Option<f64>,
    pub median_sales_cycle_days: Option<f64>,
    pub activities_per_won_deal: Option<f64>,
}

/// Lead-to-cash; refused when an amount needs a rate the log lacks.
pub fn lead_to_cash(model: &ReadModel, q: &PeriodQuery) -> Result<LeadToCash, MissingRate> {
    let conv = Converter::new(model, q.as_of);
    let (mut leads, mut converted) = (0u32, 0u32);
    for l in model.lead_views(q.as_of) {
        if q.period.contains(l.captured_at) {
            leads += 1;
            converted += u32::from(l.customer_id.is_some());
        }
    }
    let (mut won, mut lost, mut activities) = (0u32, 0u32, 0u32);
    let (mut won_amount, mut received) = (Money::ZERO, Money::ZERO);
    let mut cycles = Vec::new();
    for d in model.deal_views(q.as_of) {
        let Some(c) = d.final_close() else { continue };
        if !q.period.contains(c.at) {
            continue;
        }
        if d.state.status == DealStatus::Won {
            let month = Month::of(&c.at);
            won += 1;
            won_amount += conv.at(c.amount, &d.state.currency, month);
            received += conv.at(d.state.paid, &d.state.currency, month);
            activities += d.state.activities;
            cycles.push(crate::num::days_between(d.state.opened_at, c.at));
        } else {
            lost += 1;
        }
    }
    Ok(LeadToCash {
        currency: conv.finish()?,
        from: q.period.from,
        to: q.period.to,
        leads,
        converted_leads: converted,
        lead_conversion_rate: ratio(f64::from(converted), f64::from(leads)),
        deals_won: won,
        deals_lost: lost,
        win_rate: ratio(f64::from(won), f64::from(won + lost)),
        won_amount,
        avg_won_amount: money_div(won_amount, u64::from(won)),
        received,
        collection_ratio: ratio(received.as_f64(), won_amount.as_f64()),
        median_sales_cycle_days: median_days(&cycles),
        activities_per_won_deal: ratio(f64::from(activities), f64::from(won)),
    })
}
