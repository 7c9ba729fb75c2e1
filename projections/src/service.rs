//! Customer service — `GET /v1/reports/service?months=12&end&group_by=none|rep&as_of`
//! (SPEC §2.7): NPS, churn and retention, complaints, per calendar month.
//!
//! Choices:
//! - `months` defaults to 12 (1..=120); `end` as in the rep trends ([`crate::reps`]): the last
//!   month over at `as_of` (or now), or the month of the latest event if earlier; a running
//!   month asked for as `end` is marked `"partial": true`.
//! - A customer counts, in each month, for its owner at the month's end (`pool` while in the
//!   pool), with `group_by=rep` and for the scope alike: a rep or manager sees the customers
//!   owned by the scope's reps at each month's end (never the pool's).
//! - `nps`: each customer's latest `NpsRecorded` of the month (business order) counts once.
//! - `churned`: customers with a `CustomerChurned` in the month (once each);
//!   `active_at_start`: registered before the month, no `CustomerChurned` before it.
//! - Complaints: `complaints_opened` / `complaints_resolved` count the events of the month.
//!   A complaint is open from its `ComplaintFiled` to the next `ComplaintResolved` with the
//!   same `complaint_id` (a second filing while open changes nothing; after a resolution it
//!   opens it again); the resolution time is that resolution minus that filing. A resolution
//!   of a complaint that was not open counts as resolved but has no resolution time.
//! - `group_by=rep`: groups sorted by rep, `pool` last; only groups with a customer by `end`.
//!
//! Without `as_of` (or with one after the latest event) the figures come from the model's
//! [`ServiceIndex`]; otherwise the same index is built from the customers' events up to then.

use chrono::{DateTime, Utc};
use domain::Month;
use serde::{Deserialize, Serialize};

use crate::model::{Interner, ReadModel};
use crate::num::{median_days, ratio, round1, round4};
use crate::params::{ParamError, Scope};
use crate::service_index::{Bucket, Group, ServiceIndex};

#[derive(Debug, Clone, Default, PartialEq, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ServiceParams {
    pub months: Option<u32>,
    pub end: Option<Month>,
    pub group_by: Option<String>,
    #[serde(
        default,
        deserialize_with = "crate::params::query_time::deserialize_as_of"
    )]
    pub as_of: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ServiceQuery {
    pub months: u32,
    pub end: Option<Month>,
    pub by_rep: bool,
    pub as_of: Option<DateTime<Utc>>,
    pub scope: Scope,
}

impl ServiceParams {
    pub fn validate(&self) -> Result<ServiceQuery, ParamError> {
        let months = self.months.unwrap_or(12);
        if !(1..=120).contains(&months) {
            return Err(ParamError::new(
                "months",
                format!("must be between 1 and 120, got {months}"),
            ));
        }
        let by_rep = match self.group_by.as_deref() {
            None | Some("none") => false,
            Some("rep") => true,
            Some(other) => {
                return Err(ParamError::new(
                    "group_by",
                    format!("unknown grouping {other:?}: expected none or rep"),
                ))
            }
        };
        Ok(ServiceQuery {
            months,
            end: self.end,
            by_rep,
            as_of: self.as_of,
            scope: Scope::Organisation,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Nps {
    pub responses: u32,
    pub promoters: u32,
    pub passives: u32,
    pub detractors: u32,
    pub score: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ServiceMonth {
    pub month: Month,
    pub nps: Nps,
    pub active_at_start: u32,
    pub churned: u32,
    pub churn_rate: Option<f64>,
    pub retention_rate: Option<f64>,
    pub complaints_opened: u32,
    pub complaints_resolved: u32,
    pub median_resolution_days: Option<f64>,
    pub open_complaints_at_end: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ServiceGroup {
    pub key: String,
    pub series: Vec<ServiceMonth>,
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[schema(as = ServiceReport)]
pub struct Service {
    pub end: Month,
    /// `end` was not over at `as_of` (or now).
    pub partial: bool,
    pub months: Vec<Month>,
    pub groups: Vec<ServiceGroup>,
}

/// A month as the report shows it: `b` has the month's point figures, `active` and `open`
/// the running ones.
fn row(month: Month, b: &Bucket, active: i64, open: i64) -> ServiceMonth {
    let responses = b.promoters + b.passives + b.detractors;
    let score = (responses > 0).then(|| {
        round1(100.0 * (f64::from(b.promoters) - f64::from(b.detractors)) / f64::from(responses))
    });
    let active = u32::try_from(active.max(0)).unwrap_or(u32::MAX);
    let churn_rate = ratio(f64::from(b.churned), f64::from(active));
    ServiceMonth {
        month,
        nps: Nps {
            responses,
            promoters: b.promoters,
            passives: b.passives,
            detractors: b.detractors,
            score,
        },
        active_at_start: active,
        churned: b.churned,
        churn_rate,
        retention_rate: churn_rate.map(|r| round4(1.0 - r)),
        complaints_opened: b.complaints_opened,
        complaints_resolved: b.complaints_resolved,
        median_resolution_days: median_days(&b.resolution_days),
        open_complaints_at_end: u32::try_from(open.max(0)).unwrap_or(u32::MAX),
    }
}

/// The series of the groups `groups` taken together, over `months`.
fn series(
    groups: &[&std::collections::BTreeMap<Month, Bucket>],
    months: &[Month],
) -> Vec<ServiceMonth> {
    let (first, end) = (months[0], months[months.len() - 1]);
    let mut active = 0i64;
    let mut open = 0i64;
    let mut merged: std::collections::BTreeMap<Month, Bucket> = Default::default();
    for g in groups {
        for (m, b) in g.range(..=end) {
            if *m < first {
                active += b.active_change;
                open += b.open_change;
            } else {
                let x = merged.entry(*m).or_default();
                x.active_change += b.active_change;
                x.open_change += b.open_change;
                x.promoters += b.promoters;
                x.passives += b.passives;
                x.detractors += b.detractors;
                x.churned += b.churned;
                x.complaints_opened += b.complaints_opened;
                x.complaints_resolved += b.complaints_resolved;
                x.resolution_days.extend_from_slice(&b.resolution_days);
            }
        }
    }
    let empty = Bucket::default();
    months
        .iter()
        .map(|m| {
            let b = merged.get(m).unwrap_or(&empty);
            active += b.active_change;
            open += b.open_change;
            row(*m, b, active, open)
        })
        .collect()
}

pub fn service(model: &ReadModel, q: &ServiceQuery, now: DateTime<Utc>) -> Service {
    let (months, partial) = crate::reps::months_ending(model, q.end, q.months, q.as_of, now);
    let end = months[months.len() - 1];
    let current = q
        .as_of
        .is_none_or(|t| model.latest_occurred_at.is_none_or(|l| l <= t));
    let scanned;
    let index = if current {
        &model.service
    } else {
        let customers = model.customers.iter().map(|(id, c)| (id, &c.entries));
        scanned = ServiceIndex::build(customers, q.as_of, &mut Interner::default());
        &scanned
    };
    let in_scope = |g: &Group| match g {
        None => q.scope.is_organisation(),
        Some(rep) => q.scope.covers(rep),
    };
    let mut groups: Vec<(&Group, &std::collections::BTreeMap<Month, Bucket>)> = index
        .groups()
        .filter(|(g, m)| in_scope(g) && m.range(..=end).next().is_some())
        .collect();
    // By rep, the pool last.
    groups.sort_by(|a, b| match (a.0, b.0) {
        (None, None) => std::cmp::Ordering::Equal,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (Some(_), None) => std::cmp::Ordering::Less,
        (Some(x), Some(y)) => x.cmp(y),
    });
    let groups = if q.by_rep {
        groups
            .into_iter()
            .map(|(g, m)| ServiceGroup {
                key: g.as_deref().unwrap_or("pool").to_string(),
                series: series(&[m], &months),
            })
            .collect()
    } else {
        let all: Vec<_> = groups.into_iter().map(|(_, m)| m).collect();
        vec![ServiceGroup {
            key: "all".into(),
            series: series(&all, &months),
        }]
    };
    Service {
        end,
        partial,
        months,
        groups,
    }
}
