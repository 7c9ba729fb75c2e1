//! Funnel — `GET /v1/reports/funnel?from&to&group_by&as_of` (SPEC §2.3).
//!
//! Cohort: deals whose `DealOpened.occurred_at` is in `[from, to)` (an open end is
//! unbounded), folded as of `as_of`. Choices: `group_by=source` uses the `channel` of the
//! `source_lead` (`"direct"` without one, `"unknown"` when the lead is not in the log);
//! `group_by=industry` uses the customer's industry as of `as_of` (`"unknown"` when none);
//! groups are sorted by key; with `group_by=none` there is always one group `"all"`.
//! Visits to stages outside the pipeline in force are ignored. A deal counts as having
//! passed every stage once it has been won, even if it was reopened since; `won`, `lost`,
//! `open` and `lost_here` use its status as of `as_of`. With a narrower scope than the
//! organisation, the cohort is the deals owned (as of `as_of`) by the scope's reps.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use domain::envelope::rfc3339_opt;
use serde::{Deserialize, Serialize};

use crate::funnel_index::{FunnelIndex, Group};
use crate::model::ReadModel;
use crate::num::{median, p90, ratio, round1};
use crate::params::{ParamError, Period, Scope};

#[derive(Debug, Clone, Default, PartialEq, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct FunnelParams {
    #[serde(default, deserialize_with = "crate::params::query_time::deserialize")]
    pub from: Option<DateTime<Utc>>,
    #[serde(default, deserialize_with = "crate::params::query_time::deserialize")]
    pub to: Option<DateTime<Utc>>,
    /// `none` (default), `rep`, `source`, `industry`.
    pub group_by: Option<String>,
    #[serde(
        default,
        deserialize_with = "crate::params::query_time::deserialize_as_of"
    )]
    pub as_of: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupBy {
    None,
    Rep,
    Source,
    Industry,
}

#[derive(Debug, Clone, PartialEq)]
pub struct FunnelQuery {
    pub period: Period,
    pub group_by: GroupBy,
    pub as_of: Option<DateTime<Utc>>,
    pub scope: Scope,
}

impl FunnelParams {
    pub fn validate(&self) -> Result<FunnelQuery, ParamError> {
        let group_by = match self.group_by.as_deref().unwrap_or("none") {
            "none" => GroupBy::None,
            "rep" => GroupBy::Rep,
            "source" => GroupBy::Source,
            "industry" => GroupBy::Industry,
            other => {
                return Err(ParamError::new(
                    "group_by",
                    format!("unknown value {other:?}: expected none, rep, source or industry"),
                ))
            }
        };
        Ok(FunnelQuery {
            period: Period::new(self.from, self.to)?,
            group_by,
            as_of: self.as_of,
            scope: Scope::Organisation,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct FunnelStage {
    pub stage: String,
    pub reached: u32,
    pub conversion_to_next: Option<f64>,
    pub median_days_in_stage: Option<f64>,
    pub p90_days_in_stage: Option<f64>,
    pub lost_here: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct FunnelGroup {
    pub key: String,
    pub opened: u32,
    pub won: u32,
    pub lost: u32,
    pub open: u32,
    pub win_rate: Option<f64>,
    pub stages: Vec<FunnelStage>,
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[schema(as = FunnelReport)]
pub struct Funnel {
    /// The reporting currency (SPEC §2: every report names it; the funnel counts deals).
    pub currency: String,
    #[serde(with = "rfc3339_opt")]
    pub from: Option<DateTime<Utc>>,
    #[serde(with = "rfc3339_opt")]
    pub to: Option<DateTime<Utc>>,
    pub groups: Vec<FunnelGroup>,
}

/// Counts of one group, and per stage: (reached, median days, p90 days, lost here).
struct Figures {
    key: String,
    opened: u32,
    won: u32,
    lost: u32,
    open: u32,
    stages: Vec<(u32, Option<f64>, Option<f64>, u32)>,
}

impl Figures {
    /// A group's counts, with each stage's (median, p90) days from `stats`.
    fn of(key: String, g: &Group, stats: impl Fn(usize) -> (Option<f64>, Option<f64>)) -> Figures {
        Figures {
            key,
            opened: g.opened,
            won: g.won,
            lost: g.lost,
            open: g.open,
            stages: (0..g.furthest.len())
                .map(|i| {
                    let (median, p90) = stats(i);
                    (g.reached(i), median, p90, g.lost_here[i])
                })
                .collect(),
        }
    }

    fn group(self, stage_ids: &[String]) -> FunnelGroup {
        let n = self.stages.len();
        let stages = stage_ids
            .iter()
            .zip(&self.stages)
            .enumerate()
            .map(|(i, (id, &(reached, median, p90, lost_here)))| {
                let next = if i + 1 < n {
                    self.stages[i + 1].0
                } else {
                    self.won
                };
                FunnelStage {
                    stage: id.clone(),
                    reached,
                    conversion_to_next: ratio(f64::from(next), f64::from(reached)),
                    median_days_in_stage: median.map(round1),
                    p90_days_in_stage: p90.map(round1),
                    lost_here,
                }
            })
            .collect();
        FunnelGroup {
            key: self.key,
            opened: self.opened,
            won: self.won,
            lost: self.lost,
            open: self.open,
            win_rate: ratio(f64::from(self.won), f64::from(self.won + self.lost)),
            stages,
        }
    }
}

/// The whole history, overall or per owner: read from the model's [`FunnelIndex`].
fn from_index(model: &ReadModel, q: &FunnelQuery) -> Funnel {
    let ix = &model.funnel;
    let mut groups: Vec<(String, &Group)> = match q.group_by {
        GroupBy::Rep => ix
            .by_owner
            .iter()
            .filter(|(k, _)| q.scope.covers(k))
            .map(|(k, g)| (k.to_string(), g))
            .collect(),
        _ => vec![("all".to_string(), &ix.all)],
    };
    groups.sort_by(|a, b| a.0.cmp(&b.0));
    let groups = groups
        .into_iter()
        .map(|(key, g)| {
            Figures::of(key, g, |i| (g.durations[i].median(), g.durations[i].p90()))
                .group(&ix.stages)
        })
        .collect();
    Funnel {
        currency: crate::currency::reporting_currency(model, q.as_of),
        from: None,
        to: None,
        groups,
    }
}

pub fn funnel(model: &ReadModel, q: &FunnelQuery) -> Funnel {
    let whole = q.as_of.is_none() && q.period.from.is_none() && q.period.to.is_none();
    let indexed = match q.group_by {
        GroupBy::Rep => true,
        GroupBy::None => q.scope.is_organisation(),
        GroupBy::Source | GroupBy::Industry => false,
    };
    if whole && indexed {
        return from_index(model, q);
    }
    // One pass: each deal's fact (as the index computes it) added to its group; the
    // durations kept for the medians. No list of deals is held.
    let ids: Vec<String> = model.pipeline(q.as_of).into_iter().map(|s| s.id).collect();
    let ix = FunnelIndex::new(ids.clone());
    let n = ids.len();
    let mut groups: BTreeMap<String, (Group, Vec<Vec<f64>>)> = BTreeMap::new();
    let fresh = || (Group::new(n), vec![Vec::new(); n]);
    if q.group_by == GroupBy::None {
        groups.insert("all".into(), fresh());
    }
    for d in model.deal_views(q.as_of) {
        if !q.period.contains(d.state.opened_at) || !q.scope.covers(&d.state.owner) {
            continue;
        }
        let key: std::borrow::Cow<'_, str> = match q.group_by {
            GroupBy::None => "all".into(),
            GroupBy::Rep => d.state.owner.to_string().into(),
            GroupBy::Source => match &d.state.source_lead {
                None => "direct".into(),
                Some(l) => model
                    .lead_view(l, q.as_of)
                    .map_or_else(|| "unknown".to_string(), |l| l.channel)
                    .into(),
            },
            GroupBy::Industry => model
                .customer_view(&d.state.customer_id, q.as_of)
                .and_then(|c| c.industry)
                .unwrap_or_else(|| "unknown".to_string())
                .into(),
        };
        let fact = ix.fact(&d);
        let (group, durations) = match groups.get_mut(&*key) {
            Some(g) => g,
            None => groups.entry(key.into_owned()).or_insert_with(fresh),
        };
        group.count(&fact, 1);
        for (i, days) in fact.durations {
            durations[i].push(days);
        }
    }
    let groups = groups
        .into_iter()
        .map(|(key, (g, durations))| {
            Figures::of(key, &g, |i| (median(&durations[i]), p90(&durations[i]))).group(&ids)
        })
        .collect();
    Funnel {
        currency: crate::currency::reporting_currency(model, q.as_of),
        from: q.period.from,
        to: q.period.to,
        groups,
    }
}
