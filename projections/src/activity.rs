//! Activity — `GET /v1/reports/activity?from&to&as_of` (SPEC §2.6).
//!
//! One row per rep and ISO week (Monday-based, `"2026-W23"`, with `week_start`) that has an
//! activity or a win in the period: activities by kind (only kinds with a count), `total`,
//! `deals_won` (`DealWon`s in that week credited to the owner at the win) and
//! `activities_per_won_deal` = total ÷ deals_won (4 decimals). Sorted by rep, then week.
//! With a narrower scope than the organisation, only the scope's reps have rows.

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use domain::envelope::rfc3339_opt;
use domain::events::ActivityKind;
use serde::Serialize;

use crate::model::ReadModel;
use crate::num::ratio;
use crate::params::PeriodQuery;

pub use crate::params::PeriodParams as ActivityParams;

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ActivityRow {
    pub rep: String,
    pub week: String,
    pub week_start: NaiveDate,
    pub activities: BTreeMap<ActivityKind, u32>,
    pub total: u32,
    pub deals_won: u32,
    pub activities_per_won_deal: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[schema(as = ActivityReport)]
pub struct Activity {
    /// The reporting currency (SPEC §2: every report names it; this one has no amounts).
    pub currency: String,
    #[serde(with = "rfc3339_opt")]
    pub from: Option<DateTime<Utc>>,
    #[serde(with = "rfc3339_opt")]
    pub to: Option<DateTime<Utc>>,
    pub rows: Vec<ActivityRow>,
}

/// The ISO week of a time: (`"2026-W23"`, its Monday).
pub fn iso_week(t: DateTime<Utc>) -> (String, NaiveDate) {
    let d = t.date_naive();
    let w = d.iso_week();
    let monday = d - chrono::Days::new(u64::from(d.weekday().num_days_from_monday()));
    (format!("{:04}-W{:02}", w.year(), w.week()), monday)
}

pub fn activity(model: &ReadModel, q: &PeriodQuery) -> Activity {
    let mut rows: BTreeMap<(String, NaiveDate), ActivityRow> = BTreeMap::new();
    fn row<'r>(
        rows: &'r mut BTreeMap<(String, NaiveDate), ActivityRow>,
        rep: &str,
        t: DateTime<Utc>,
    ) -> &'r mut ActivityRow {
        let (week, week_start) = iso_week(t);
        rows.entry((rep.to_string(), week_start))
            .or_insert_with(|| ActivityRow {
                rep: rep.to_string(),
                week,
                week_start,
                activities: BTreeMap::new(),
                total: 0,
                deals_won: 0,
                activities_per_won_deal: None,
            })
    }
    for a in model.activities(q.as_of) {
        if q.period.contains(a.at) && q.scope.covers(a.rep) {
            let r = row(&mut rows, a.rep, a.at);
            *r.activities.entry(a.kind).or_default() += 1;
            r.total += 1;
        }
    }
    for d in model.deal_views(q.as_of) {
        for c in d
            .closes
            .iter()
            .filter(|c| c.won && q.period.contains(c.at) && q.scope.covers(&c.owner))
        {
            row(&mut rows, &c.owner, c.at).deals_won += 1;
        }
    }
    Activity {
        currency: crate::currency::reporting_currency(model, q.as_of),
        from: q.period.from,
        to: q.period.to,
        rows: rows
            .into_values()
            .map(|mut r| {
                r.activities_per_won_deal = ratio(f64::from(r.total), f64::from(r.deals_won));
                r
            })
            .collect(),
    }
}
