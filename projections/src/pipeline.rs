//! Pipeline — `GET /v1/reports/pipeline?as_of&stale_days=14&stuck_days=30` (SPEC §2.5).
//!
//! Choices:
//! - `weighted` per stage = stage amount × probability, rounded to the cent; `forecast` is
//!   the sum of the stage rows as written. Open deals in a stage outside the pipeline in
//!   force get a row after the pipeline's stages, weighted 0.
//! - `won_this_month` / leaderboard `won_amount`, `deals_won`: `DealWon`s from the start of
//!   `as_of`'s month up to `as_of`, credited to the owner at the win.
//! - `coverage` = open amount ÷ the month's target (see [`ReadModel::target`]); `null` if none.
//! - `stale`: `as_of − last_touch_at > stale_days`; `stuck`: `as_of − stage_entered_at >
//!   stuck_days` (strictly more); both sorted by days descending, then deal id.
//! - `top`: 10 largest open deals, ties by deal id. Leaderboard: reps with a win this month or
//!   an open deal, by won amount, deals won, open amount (descending), then rep.
//! - Amounts are in the reporting currency (`currency`, see [`crate::currency`]): an open
//!   deal's at the latest rate up to `as_of`'s month, a win's at its month's rate; `top` and
//!   the stale list show converted amounts and rank by them; targets are taken to be in the
//!   reporting currency.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use domain::envelope::rfc3339;
use domain::{Money, Month};
use serde::{Deserialize, Serialize};

use crate::currency::{Converter, MissingRate};
use crate::deal::{DealState, DealStatus};
use crate::model::ReadModel;
use crate::num::{days_between, ratio, round1, round2};
use crate::params::{ParamError, Scope};

#[derive(Debug, Clone, Default, PartialEq, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PipelineParams {
    #[serde(
        default,
        deserialize_with = "crate::params::query_time::deserialize_as_of"
    )]
    pub as_of: Option<DateTime<Utc>>,
    pub stale_days: Option<u32>,
    pub stuck_days: Option<u32>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PipelineQuery {
    pub as_of: Option<DateTime<Utc>>,
    pub stale_days: u32,
    pub stuck_days: u32,
    /// Only deals owned (as of `as_of`) by the scope's reps, and their wins. With a narrower
    /// scope than the organisation, `coverage` is `null` (targets are organisation-wide).
    pub scope: Scope,
}

impl PipelineParams {
    pub fn validate(&self) -> Result<PipelineQuery, ParamError> {
        let stale_days = self.stale_days.unwrap_or(14);
        let stuck_days = self.stuck_days.unwrap_or(30);
        if stale_days > 3650 {
            return Err(ParamError::new("stale_days", "must be at most 3650"));
        }
        if stuck_days > 3650 {
            return Err(ParamError::new("stuck_days", "must be at most 3650"));
        }
        Ok(PipelineQuery {
            scope: Scope::Organisation,
            as_of: self.as_of,
            stale_days,
            stuck_days,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct StageRow {
    pub stage: String,
    /// The stage's name in the pipeline in force (its id for a stage no longer in it): what
    /// a page shows (an addition to SPEC §2.5's example).
    pub name: String,
    pub count: u32,
    pub amount: Money,
    pub weighted: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[schema(as = PipelineStaleDeal)]
pub struct StaleDeal {
    pub deal_id: String,
    pub owner: Arc<str>,
    pub stage: Arc<str>,
    pub amount: Money,
    #[serde(with = "rfc3339")]
    pub last_touch_at: DateTime<Utc>,
    pub days_since_touch: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct StuckDeal {
    pub deal_id: String,
    pub owner: Arc<str>,
    pub stage: Arc<str>,
    pub days_in_stage: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct TopDeal {
    pub deal_id: String,
    pub owner: String,
    pub stage: String,
    pub amount: Money,
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct LeaderRow {
    pub rep: String,
    pub won_amount: Money,
    pub deals_won: u32,
    pub open_amount: Money,
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[schema(as = PipelineReport)]
pub struct Pipeline {
    /// The reporting currency of every amount (SPEC §2).
    pub currency: String,
    #[serde(with = "rfc3339")]
    pub as_of: DateTime<Utc>,
    pub open_count: u32,
    pub open_amount: Money,
    pub forecast: f64,
    pub won_this_month: Money,
    pub coverage: Option<f64>,
    pub stages: Vec<StageRow>,
    pub stale: Vec<StaleDeal>,
    pub stuck: Vec<StuckDeal>,
    pub top: Vec<TopDeal>,
    pub leaderboard: Vec<LeaderRow>,
}

/// The pipeline; refused when an amount it shows needs a rate the log lacks.
pub fn pipeline(
    model: &ReadModel,
    q: &PipelineQuery,
    now: DateTime<Utc>,
) -> Result<Pipeline, MissingRate> {
    let as_of = q.as_of.unwrap_or(now);
    let month = Month::of(&as_of);
    let conv = Converter::new(model, Some(as_of));
    let month_start = month.start();
    let defs = model.pipeline(Some(as_of));
    let mut stages: Vec<(StageRow, f64)> = defs
        .iter()
        .map(|s| {
            let row = StageRow {
                stage: s.id.clone(),
                name: s.name.clone(),
                count: 0,
                amount: Money::ZERO,
                weighted: 0.0,
            };
            (row, s.probability)
        })
        .collect();
    let mut open_count = 0;
    let mut open_amount = Money::ZERO;
    let mut won_this_month = Money::ZERO;
    let (mut stale, mut stuck, mut top) = (Vec::new(), Vec::new(), Vec::new());
    let mut board: BTreeMap<String, LeaderRow> = BTreeMap::new();
    let row = |board: &mut BTreeMap<String, LeaderRow>, rep: &str| {
        if !board.contains_key(rep) {
            board.insert(
                rep.to_string(),
                LeaderRow {
                    rep: rep.to_string(),
                    won_amount: Money::ZERO,
                    deals_won: 0,
                    open_amount: Money::ZERO,
                },
            );
        }
    };

    let mine = |rep: &str| q.scope.covers(rep);
    let mut credit = |board: &mut BTreeMap<String, LeaderRow>, rep: &str, amount: Money, n: u32| {
        won_this_month += amount;
        row(board, rep);
        if let Some(r) = board.get_mut(rep) {
            r.won_amount += amount;
            r.deals_won += n;
        }
    };
    // Nothing happened after `as_of` (the usual "now"): every deal is as it is now, so read
    // the open deals and the month's wins from the model's indexes instead of every deal.
    let current = model.latest_occurred_at.is_none_or(|t| t <= as_of);
    // Otherwise every deal as of then: the month's wins, and the states of the open ones.
    let mut open_then: Vec<DealState> = Vec::new();
    if current {
        for (rep, b) in model.rep_months.month(month) {
            if b.won > 0 && mine(rep) {
                credit(&mut board, rep, b.won_amount(&conv, month), b.won);
            }
        }
    } else {
        for d in model.deal_views(Some(as_of)) {
            for c in &d.closes {
                if c.won && c.at >= month_start && mine(&c.owner) {
                    let amount = conv.at(c.amount, &d.state.currency, month);
                    credit(&mut board, &c.owner, amount, 1);
                }
            }
            if d.state.status == DealStatus::Open {
                open_then.push(d.into_owned().state);
            }
        }
    }
    let states: Box<dyn Iterator<Item = &DealState>> = if current {
        Box::new(
            model
                .open_deals
                .iter()
                .filter_map(|id| model.deals.get(id)?.current.as_deref())
                .map(|v| &v.state),
        )
    } else {
        Box::new(open_then.iter())
    };
    for s in states {
        if s.status != DealStatus::Open || !mine(&s.owner) {
            continue;
        }
        // An open deal: at the latest rate known as of `as_of`.
        let amount = conv.latest(s.amount, &s.currency, month);
        open_count += 1;
        open_amount += amount;
        row(&mut board, &s.owner);
        if let Some(r) = board.get_mut(&*s.owner) {
            r.open_amount += amount;
        }
        match stages.iter_mut().find(|(r, _)| *r.stage == *s.stage) {
            Some((r, _)) => {
                r.count += 1;
                r.amount += amount;
            }
            None => stages.push((
                StageRow {
                    stage: s.stage.to_string(),
                    name: s.stage.to_string(),
                    count: 1,
                    amount,
                    weighted: 0.0,
                },
                0.0,
            )),
        }
        let since_touch = days_between(s.last_touch_at, as_of);
        if since_touch > f64::from(q.stale_days) {
            stale.push((
                since_touch,
                StaleDeal {
                    deal_id: s.deal_id.clone(),
                    owner: s.owner.clone(),
                    stage: s.stage.clone(),
                    amount,
                    last_touch_at: s.last_touch_at,
                    days_since_touch: round1(since_touch),
                },
            ));
        }
        let in_stage = days_between(s.stage_entered_at, as_of);
        if in_stage > f64::from(q.stuck_days) {
            stuck.push((
                in_stage,
                StuckDeal {
                    deal_id: s.deal_id.clone(),
                    owner: s.owner.clone(),
                    stage: s.stage.clone(),
                    days_in_stage: round1(in_stage),
                },
            ));
        }
        top.push((amount, s));
    }

    let stages: Vec<StageRow> = stages
        .into_iter()
        .map(|(mut r, p)| {
            r.weighted = round2(r.amount.as_f64() * p);
            r
        })
        .collect();
    let forecast = round2(stages.iter().map(|r| r.weighted).sum());
    stale.sort_by(|a, b| {
        b.0.total_cmp(&a.0)
            .then_with(|| a.1.deal_id.cmp(&b.1.deal_id))
    });
    stuck.sort_by(|a, b| {
        b.0.total_cmp(&a.0)
            .then_with(|| a.1.deal_id.cmp(&b.1.deal_id))
    });
    // Rows for the ten only (the others are references, not copies).
    top.sort_by(|(a_amount, a), (b_amount, b)| {
        b_amount
            .cmp(a_amount)
            .then_with(|| a.deal_id.cmp(&b.deal_id))
    });
    let top: Vec<TopDeal> = top
        .into_iter()
        .take(10)
        .map(|(amount, s)| TopDeal {
            deal_id: s.deal_id.clone(),
            owner: s.owner.to_string(),
            stage: s.stage.to_string(),
            amount,
        })
        .collect();
    let mut leaderboard: Vec<LeaderRow> = board.into_values().collect();
    leaderboard.sort_by(|a, b| {
        b.won_amount
            .cmp(&a.won_amount)
            .then(b.deals_won.cmp(&a.deals_won))
            .then(b.open_amount.cmp(&a.open_amount))
            .then_with(|| a.rep.cmp(&b.rep))
    });
    let coverage = model
        .target(month, Some(as_of))
        .filter(|_| q.scope.is_organisation())
        .and_then(|t| ratio(open_amount.as_f64(), t.as_f64()));
    Ok(Pipeline {
        currency: conv.finish()?,
        as_of,
        open_count,
        open_amount,
        forecast,
        won_this_month,
        coverage,
        stages,
        stale: stale.into_iter().map(|x| x.1).collect(),
        stuck: stuck.into_iter().map(|x| x.1).collect(),
        top,
        leaderboard,
    })
}
