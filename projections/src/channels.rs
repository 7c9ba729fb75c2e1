//! Channels — `GET /v1/reports/channels?from&to&as_of` (SPEC §2.6).
//!
//! Per lead channel (the `LeadCaptured.channel`, which is also the entity id of the
//! `channel-…` stream carrying its `SpendRecorded`). Choices:
//! - `spend`: `SpendRecorded` whose `month` starts within `[from, to)`.
//! - `leads`: leads captured in the period; `qualified` / `converted`: of those, the ones with
//!   a `LeadQualified` / `LeadConverted` (as of `as_of`).
//! - `deals`: deals whose `source_lead` is one of those leads, or named by their
//!   `LeadConverted.deal_id`; `won` / `revenue`: those deals now won, and their won amounts.
//! - `cost_per_lead` = spend ÷ leads, `cost_per_win` = spend ÷ won (to the cent);
//!   `roi` = (revenue − spend) ÷ spend (4 decimals); `null` on a zero denominator.
//! - `revenue` is in the reporting currency (`currency`): each deal's won amount at the rate
//!   of its win's month (see [`crate::currency`]); spend carries no currency and is taken to
//!   be in the reporting currency.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use domain::envelope::rfc3339_opt;
use domain::{Event, Money, Month};
use serde::Serialize;

use crate::currency::{Converter, MissingRate};
use crate::deal::DealStatus;
use crate::model::{prefix, ReadModel};
use crate::num::{money_div, ratio};
use crate::params::PeriodQuery;

pub use crate::params::PeriodParams as ChannelsParams;

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ChannelRow {
    pub channel: String,
    pub spend: Money,
    pub leads: u32,
    pub qualified: u32,
    pub converted: u32,
    pub deals: u32,
    pub won: u32,
    pub revenue: Money,
    pub cost_per_lead: Option<Money>,
    pub cost_per_win: Option<Money>,
    pub roi: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[schema(as = ChannelsReport)]
pub struct Channels {
    /// The reporting currency of every amount (SPEC §2).
    pub currency: String,
    #[serde(with = "rfc3339_opt")]
    pub from: Option<DateTime<Utc>>,
    #[serde(with = "rfc3339_opt")]
    pub to: Option<DateTime<Utc>>,
    pub channels: Vec<ChannelRow>,
}

#[derive(Default)]
struct Acc {
    spend: Money,
    leads: u32,
    qualified: u32,
    converted: u32,
    deals: BTreeSet<String>,
}

/// Channels; refused when a won amount needs a rate the log lacks.
pub fn channels(model: &ReadModel, q: &PeriodQuery) -> Result<Channels, MissingRate> {
    let conv = Converter::new(model, q.as_of);
    let mut acc: BTreeMap<String, Acc> = BTreeMap::new();
    for (ch, entries) in &model.spend {
        for e in prefix(entries, q.as_of) {
            if let Event::SpendRecorded(s) = &e.event {
                if q.period.contains(s.month.start()) {
                    acc.entry(ch.clone()).or_default().spend += s.amount;
                }
            }
        }
    }
    let mut lead_channel: BTreeMap<String, String> = BTreeMap::new();
    for l in model.lead_views(q.as_of) {
        if !q.period.contains(l.captured_at) {
            continue;
        }
        let a = acc.entry(l.channel.clone()).or_default();
        a.leads += 1;
        a.qualified += u32::from(l.qualified_at.is_some());
        a.converted += u32::from(l.customer_id.is_some());
        if let Some(d) = &l.deal_id {
            a.deals.insert(d.clone());
        }
        lead_channel.insert(l.lead_id, l.channel);
    }
    let mut won_of: BTreeMap<String, (u32, Money)> = BTreeMap::new();
    for d in model.deal_views(q.as_of) {
        if let Some(ch) = d
            .state
            .source_lead
            .as_deref()
            .and_then(|l| lead_channel.get(l))
        {
            if let Some(a) = acc.get_mut(ch) {
                a.deals.insert(d.state.deal_id.clone());
            }
        }
    }
    for (ch, a) in &acc {
        let mut won = (0, Money::ZERO);
        for id in &a.deals {
            if let Some(d) = model.deal_view(id, q.as_of) {
                if let (DealStatus::Won, Some(c)) = (d.state.status, d.final_close()) {
                    won.0 += 1;
                    won.1 += conv.at(d.state.amount, &d.state.currency, Month::of(&c.at));
                }
            }
        }
        won_of.insert(ch.clone(), won);
    }
    let channels = acc
        .into_iter()
        .map(|(channel, a)| {
            let (won, revenue) = won_of.get(&channel).copied().unwrap_or_default();
            let deals = a
                .deals
                .iter()
                .filter(|id| model.deal_view(id, q.as_of).is_some())
                .count() as u32;
            ChannelRow {
                spend: a.spend,
                leads: a.leads,
                qualified: a.qualified,
                converted: a.converted,
                deals,
                won,
                revenue,
                cost_per_lead: money_div(a.spend, u64::from(a.leads)),
                cost_per_win: money_div(a.spend, u64::from(won)),
                roi: ratio((revenue - a.spend).as_f64(), a.spend.as_f64()),
                channel,
            }
        })
        .collect();
    Ok(Channels {
        currency: conv.finish()?,
        from: q.period.from,
        to: q.period.to,
        channels,
    })
}
