//! Rep trends — `GET /v1/reports/reps?months&end&metric&window&big_deal_amount&as_of` (SPEC §2.4).
//!
//! Choices:
//! - `months` defaults to 6 (1..=120); `window` to 3 (1..=`months`); `metric` to `deals_won`;
//!   `end` to the last month that was over at `as_of` (or now), or the month of the latest
//!   event (≤ `as_of`) if that is earlier: a month five days old would make every rep look
//!   `volatile` (issue 17; SPEC §2.4 said "the month of the latest event"). A running month
//!   asked for as `end` is marked `"partial": true`.
//! - `deals_opened` is credited to the owner named in `DealOpened`, in the month it opened.
//! - Every `DealWon` / `DealLost` counts in the month it occurred, for the owner at that time
//!   (a deal lost, reopened and won counts once lost and once won); `big_deals_lost` compares
//!   the deal's amount at the loss with `big_deal_amount` (≥); `median_cycle_days` is
//!   opening → `DealWon` of the wins of the month.
//! - `activities` lists only kinds with a count; `active_customers` counts customers reached
//!   by the rep's activities on customer streams and on their deals' streams.
//! - With a narrower scope than the organisation, only the scope's reps are listed (each
//!   rep's figures are their own: deals credited to them, their activities).
//! - `metric` may be any numeric series field or `activities` (the total); the trend uses
//!   the values as written in the series (rounded), nulls skipped.
//! - Amounts are in the reporting currency (`currency`): each won or lost amount at the rate
//!   of its close's month (see [`crate::currency`]); `big_deal_amount` is in it too.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use domain::events::ActivityKind;
use domain::{Money, Month};
use serde::{Deserialize, Serialize};

use crate::currency::{Converter, MissingRate};
use crate::deal::kind_counts;
use crate::model::ReadModel;
use crate::num::{median_days, money_div, ratio};
use crate::params::{ParamError, Scope};
use crate::rep_months::{kind_index, Bucket};

pub const METRICS: [&str; 10] = [
    "deals_opened",
    "deals_won",
    "won_amount",
    "deals_lost",
    "big_deals_lost",
    "active_customers",
    "activities",
    "win_rate",
    "avg_won_amount",
    "median_cycle_days",
];

#[derive(Debug, Clone, Default, PartialEq, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RepsParams {
    pub months: Option<u32>,
    pub end: Option<Month>,
    pub metric: Option<String>,
    pub window: Option<u32>,
    pub big_deal_amount: Option<Money>,
    #[serde(
        default,
        deserialize_with = "crate::params::query_time::deserialize_as_of"
    )]
    pub as_of: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RepsQuery {
    pub months: u32,
    pub end: Option<Month>,
    pub metric: &'static str,
    pub window: u32,
    pub big_deal_amount: Money,
    pub as_of: Option<DateTime<Utc>>,
    pub scope: Scope,
}

impl RepsParams {
    pub fn validate(&self) -> Result<RepsQuery, ParamError> {
        let months = self.months.unwrap_or(6);
        if !(1..=120).contains(&months) {
            return Err(ParamError::new(
                "months",
                format!("must be between 1 and 120, got {months}"),
            ));
        }
        let window = self.window.unwrap_or(3);
        if window == 0 || window > months {
            return Err(ParamError::new(
                "window",
                format!("must be between 1 and `months` ({months}), got {window}"),
            ));
        }
        let metric = match &self.metric {
            None => "deals_won",
            Some(m) => METRICS.iter().copied().find(|x| x == m).ok_or_else(|| {
                ParamError::new(
                    "metric",
                    format!(
                        "unknown metric {m:?}: expected one of {}",
                        METRICS.join(", ")
                    ),
                )
            })?,
        };
        let big_deal_amount = self.big_deal_amount.unwrap_or(Money(10_000_000));
        if big_deal_amount < Money::ZERO {
            return Err(ParamError::new("big_deal_amount", "must not be negative"));
        }
        Ok(RepsQuery {
            months,
            end: self.end,
            metric,
            window,
            big_deal_amount,
            as_of: self.as_of,
            scope: Scope::Organisation,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Trend {
    Stable,
    Improving,
    Declining,
    Volatile,
    InsufficientData,
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct RepMonth {
    pub month: Month,
    pub deals_opened: u32,
    pub deals_won: u32,
    pub won_amount: Money,
    pub deals_lost: u32,
    pub big_deals_lost: u32,
    pub active_customers: u32,
    pub activities: BTreeMap<ActivityKind, u32>,
    pub win_rate: Option<f64>,
    pub avg_won_amount: Option<Money>,
    pub median_cycle_days: Option<f64>,
}

impl RepMonth {
    /// The value of a metric as written in the series.
    pub fn metric(&self, metric: &str) -> Option<f64> {
        match metric {
            "deals_opened" => Some(f64::from(self.deals_opened)),
            "deals_won" => Some(f64::from(self.deals_won)),
            "won_amount" => Some(self.won_amount.as_f64()),
            "deals_lost" => Some(f64::from(self.deals_lost)),
            "big_deals_lost" => Some(f64::from(self.big_deals_lost)),
            "active_customers" => Some(f64::from(self.active_customers)),
            "activities" => Some(f64::from(self.activities.values().sum::<u32>())),
            "win_rate" => self.win_rate,
            "avg_won_amount" => self.avg_won_amount.map(Money::as_f64),
            "median_cycle_days" => self.median_cycle_days,
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct RepTrend {
    pub rep: String,
    pub name: Option<String>,
    pub team: Option<String>,
    pub trend: Trend,
    pub series: Vec<RepMonth>,
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[schema(as = RepsReport)]
pub struct Reps {
    /// The reporting currency of every amount (SPEC §2).
    pub currency: String,
    pub end: Month,
    /// `end` was not over at `as_of` (or now): its figures are of a month still running.
    pub partial: bool,
    pub months: Vec<Month>,
    pub metric: &'static str,
    pub window: u32,
    /// The threshold `big_deals_lost` counted with (the query's, or the default), in the
    /// reporting currency: what a page needs to list the deals behind that count.
    pub big_deal_amount: Money,
    pub reps: Vec<RepTrend>,
}

/// Classifies values (nulls already skipped) per SPEC §2.4.
pub fn classify(values: &[f64]) -> Trend {
    let k = values.len();
    if k < 2 {
        return Trend::InsufficientData;
    }
    let sum: f64 = values.iter().sum();
    // |vᵢ − m| ≤ 0.10·m  ⇔  10·|k·vᵢ − Σ| ≤ Σ  (exact for integer-valued metrics).
    let kf = k as f64;
    if sum == 0.0 || values.iter().all(|v| 10.0 * (kf * v - sum).abs() <= sum) {
        return Trend::Stable;
    }
    if values.windows(2).all(|w| w[0] < w[1]) {
        Trend::Improving
    } else if values.windows(2).all(|w| w[0] > w[1]) {
        Trend::Declining
    } else {
        Trend::Volatile
    }
}

/// A rep's month as the report shows it, from the figures of either path; amounts in the
/// reporting currency (each deal's at the month's rate), `big_deal_amount` in it too.
fn row(b: &Bucket, month: Month, big_deal_amount: Money, conv: &Converter) -> RepMonth {
    let lost = b.lost();
    let won_amount = b.won_amount(conv, month);
    RepMonth {
        month,
        deals_opened: b.opened,
        deals_won: b.won,
        won_amount,
        deals_lost: lost,
        big_deals_lost: b.big_lost(conv, month, big_deal_amount),
        active_customers: b.customers.len() as u32,
        activities: kind_counts(&b.kinds),
        win_rate: ratio(f64::from(b.won), f64::from(b.won + lost)),
        avg_won_amount: money_div(won_amount, u64::from(b.won)),
        median_cycle_days: median_days(&b.cycles),
    }
}

type Rows = HashMap<(String, Month), RepMonth>;

/// With `as_of`: every deal folded as of then and every activity up to then, scanned.
fn by_scan(
    model: &ReadModel,
    q: &RepsQuery,
    months: &[Month],
    conv: &Converter,
) -> (Vec<String>, Rows) {
    let mut all: BTreeSet<String> = BTreeSet::new();
    let mut buckets: HashMap<(String, Month), Bucket> = HashMap::new();
    let (first, last) = (months[0], months[months.len() - 1]);
    let in_range = |m: Month| m >= first && m <= last;

    for d in model.deal_views(q.as_of) {
        all.insert(d.opened_by.to_string());
        all.insert(d.state.owner.to_string());
        let m = Month::of(&d.state.opened_at);
        if in_range(m) {
            buckets
                .entry((d.opened_by.to_string(), m))
                .or_default()
                .opened += 1;
        }
        for c in &d.closes {
            all.insert(c.owner.to_string());
            let m = Month::of(&c.at);
            if !in_range(m) {
                continue;
            }
            let b = buckets.entry((c.owner.to_string(), m)).or_default();
            if c.won {
                b.won += 1;
                b.push_won(&d.state.currency, c.amount);
                b.cycles
                    .push(crate::num::days_between(d.state.opened_at, c.at));
            } else {
                b.push_lost(&d.state.currency, c.amount);
            }
        }
    }
    for a in model.activities(q.as_of) {
        all.insert(a.rep.to_string());
        let m = Month::of(&a.at);
        if !in_range(m) {
            continue;
        }
        let b = buckets.entry((a.rep.to_string(), m)).or_default();
        *b.customers.entry(Arc::from(a.customer_id)).or_default() += 1;
        b.kinds[kind_index(a.kind)] += 1;
    }
    let rows = buckets
        .into_iter()
        .map(|((rep, m), mut b)| {
            b.sort();
            ((rep, m), row(&b, m, q.big_deal_amount, conv))
        })
        .collect();
    (all.into_iter().collect(), rows)
}

/// Without `as_of`: the figures kept per (rep, month) by the read model.
fn from_index(
    model: &ReadModel,
    q: &RepsQuery,
    months: &[Month],
    conv: &Converter,
) -> (Vec<String>, Rows) {
    let idx = &model.rep_months;
    let mut all: Vec<String> = idx.reps().map(str::to_string).collect();
    all.sort_unstable();
    all.dedup();
    let mut rows = Rows::new();
    for rep in &all {
        for &m in months {
            if let Some(b) = idx.get(rep, m) {
                rows.insert((rep.clone(), m), row(b, m, q.big_deal_amount, conv));
            }
        }
    }
    (all, rows)
}

/// The last month that was over at `at` (its own month if `at` is that month's last instant).
fn last_complete_month(at: DateTime<Utc>) -> Month {
    let month = Month::of(&at);
    if at + chrono::TimeDelta::nanoseconds(1) >= month.next().start() {
        month
    } else {
        month.prev()
    }
}

/// The `count` months ending with `end`, or by default with the last month complete at
/// `as_of` (or `now`), but not past the last month with events (a log of history that ended
/// long ago shows its own last months, not empty ones); and whether the last one was still
/// running then. Shared by the reports with a monthly series (rep trends, customer service).
pub fn months_ending(
    model: &ReadModel,
    end: Option<Month>,
    count: u32,
    as_of: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> (Vec<Month>, bool) {
    let complete = last_complete_month(as_of.unwrap_or(now));
    let end = end.unwrap_or_else(|| match model.latest_at(as_of) {
        Some(latest) => Month::of(&latest).min(complete),
        None => complete,
    });
    let mut months = vec![end];
    while months.len() < count as usize {
        let first = months[0];
        months.insert(0, first.prev());
    }
    (months, end > complete)
}

/// The rep trends. `now` is the clock: without `as_of`, what is "complete" is judged at `now`.
/// Refused when a won or lost amount in the months shown needs a rate the log lacks.
pub fn reps(model: &ReadModel, q: &RepsQuery, now: DateTime<Utc>) -> Result<Reps, MissingRate> {
    let (months, partial) = months_ending(model, q.end, q.months, q.as_of, now);
    let end = months[months.len() - 1];
    let known = model.reps(q.as_of);
    let conv = Converter::new(model, q.as_of);
    let (all, mut rows) = match q.as_of {
        None => from_index(model, q, &months, &conv),
        Some(_) => by_scan(model, q, &months, &conv),
    };
    let all = all
        .into_iter()
        .chain(known.keys().cloned())
        .filter(|rep| q.scope.covers(rep))
        .collect::<BTreeSet<String>>();

    let window_start = months.len().saturating_sub(q.window as usize);
    let reps = all
        .into_iter()
        .map(|rep| {
            let series: Vec<RepMonth> = months
                .iter()
                .map(|&m| {
                    rows.remove(&(rep.clone(), m))
                        .unwrap_or_else(|| row(&Bucket::default(), m, q.big_deal_amount, &conv))
                })
                .collect();
            let values: Vec<f64> = series[window_start..]
                .iter()
                .filter_map(|s| s.metric(q.metric))
                .collect();
            let info = known.get(&rep);
            RepTrend {
                name: info.map(|i| i.name.clone()),
                team: info.map(|i| i.team.clone()),
                rep,
                trend: classify(&values),
                series,
            }
        })
        .collect();
    Ok(Reps {
        currency: conv.finish()?,
        end,
        partial,
        months,
        metric: q.metric,
        window: q.window,
        big_deal_amount: q.big_deal_amount,
        reps,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trend_classification() {
        assert_eq!(classify(&[]), Trend::InsufficientData);
        assert_eq!(classify(&[5.0]), Trend::InsufficientData);
        assert_eq!(classify(&[0.0, 0.0, 0.0]), Trend::Stable);
        // m = 10: deviations of exactly 1 = 0.10·m are still stable; 1.5 is not.
        assert_eq!(classify(&[10.0, 11.0, 9.0]), Trend::Stable);
        assert_eq!(classify(&[10.0, 11.5, 8.5]), Trend::Volatile);
        assert_eq!(classify(&[1.0, 2.0, 3.0]), Trend::Improving);
        assert_eq!(classify(&[3.0, 2.0, 1.0]), Trend::Declining);
        assert_eq!(classify(&[1.0, 1.0, 3.0]), Trend::Volatile);
        // m = 2/3 (not exact in binary): 10·|3·1 − 2| = 10 > 2.
        assert_eq!(classify(&[1.0, 1.0, 0.0]), Trend::Volatile);
        assert_eq!(classify(&[0.3, 0.31, 0.29]), Trend::Stable);
    }
}
