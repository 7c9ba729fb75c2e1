//! Public pool — `GET /v1/pool?as_of` (SPEC §2.6), and the release policy's selection.
//!
//! - `customers`: registered, not churned, without owner as of `as_of` (default `now`), with
//!   `days_in_pool` since they last entered it (registration without owner, or release);
//!   sorted by days descending, then id.
//! - `by_month`: `CustomerClaimed` and `CustomerReleased` per calendar month (months with
//!   neither are left out), ascending.
//! - `customers_per_rep`: owned, not churned customers per owner, by rep; with a narrower
//!   scope than the organisation, the scope's reps only (the pool itself is everyone's).
//! - [`due_for_release`]: owned, not churned customers whose last activity — the latest
//!   `ActivityLogged` on their stream or their deals' streams, or, if later, the moment the
//!   current owner got them — is more than `release_after_days` before `now`. The service
//!   appends `CustomerReleased{reason:"no_follow_up"}` (actor `system`) for each.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use domain::envelope::rfc3339;
use domain::{Event, Month};
use serde::{Deserialize, Serialize};

use crate::deal::DealOp;
use crate::model::{fold_customer, prefix, ReadModel};
use crate::num::{days_between, round1};
use crate::params::{ParamError, Scope};

#[derive(Debug, Clone, Default, PartialEq, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PoolParams {
    #[serde(
        default,
        deserialize_with = "crate::params::query_time::deserialize_as_of"
    )]
    pub as_of: Option<DateTime<Utc>>,
}

impl PoolParams {
    pub fn validate(&self) -> Result<Option<DateTime<Utc>>, ParamError> {
        Ok(self.as_of)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct PoolCustomer {
    pub customer_id: String,
    pub name: String,
    #[serde(with = "rfc3339")]
    pub pool_since: DateTime<Utc>,
    pub days_in_pool: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct PoolMonth {
    pub month: Month,
    pub claims: u32,
    pub releases: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct RepCustomers {
    pub rep: String,
    pub customers: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[schema(as = PoolReport)]
pub struct Pool {
    #[serde(with = "rfc3339")]
    pub as_of: DateTime<Utc>,
    pub customers: Vec<PoolCustomer>,
    pub by_month: Vec<PoolMonth>,
    pub customers_per_rep: Vec<RepCustomers>,
}

/// The pool for the whole organisation.
pub fn pool(model: &ReadModel, as_of: Option<DateTime<Utc>>, now: DateTime<Utc>) -> Pool {
    pool_in(model, as_of, now, &Scope::Organisation)
}

/// The pool as a caller with `scope` sees it.
pub fn pool_in(
    model: &ReadModel,
    as_of: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    scope: &Scope,
) -> Pool {
    let at = as_of.unwrap_or(now);
    let mut customers = Vec::new();
    let mut months: BTreeMap<Month, (u32, u32)> = BTreeMap::new();
    let mut per_rep: BTreeMap<String, u32> = BTreeMap::new();
    for (id, rec) in &model.customers {
        let entries = prefix(&rec.entries, Some(at));
        for e in entries {
            match &e.event {
                Event::CustomerClaimed(_) => months.entry(Month::of(&e.at)).or_default().0 += 1,
                Event::CustomerReleased(_) => months.entry(Month::of(&e.at)).or_default().1 += 1,
                _ => {}
            }
        }
        // Folded from the record at hand (not `customer_view`: a second lookup of the id).
        let Some(c) = fold_customer(id, entries) else {
            continue;
        };
        if c.churned {
            continue;
        }
        match (&c.owner, c.in_pool_since) {
            (Some(rep), _) if scope.covers(rep) => *per_rep.entry(rep.clone()).or_default() += 1,
            (Some(_), _) => {}
            (None, Some(since)) => customers.push((
                days_between(since, at),
                PoolCustomer {
                    customer_id: c.customer_id,
                    name: c.name,
                    pool_since: since,
                    days_in_pool: round1(days_between(since, at)),
                },
            )),
            (None, None) => {}
        }
    }
    customers.sort_by(|a, b| {
        b.0.total_cmp(&a.0)
            .then_with(|| a.1.customer_id.cmp(&b.1.customer_id))
    });
    Pool {
        as_of: at,
        customers: customers.into_iter().map(|x| x.1).collect(),
        by_month: months
            .into_iter()
            .map(|(month, (claims, releases))| PoolMonth {
                month,
                claims,
                releases,
            })
            .collect(),
        customers_per_rep: per_rep
            .into_iter()
            .map(|(rep, customers)| RepCustomers { rep, customers })
            .collect(),
    }
}

/// An owned customer the release policy should send back to the pool.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReleaseCandidate {
    pub customer_id: String,
    pub owner: String,
    #[serde(with = "rfc3339")]
    pub idle_since: DateTime<Utc>,
    pub days_idle: f64,
}

/// Owned customers with no activity for more than `release_after_days` days before `now`.
pub fn due_for_release(
    model: &ReadModel,
    release_after_days: u32,
    now: DateTime<Utc>,
) -> Vec<ReleaseCandidate> {
    let mut out = Vec::new();
    for (id, rec) in &model.customers {
        let Some(c) = fold_customer(id, prefix(&rec.entries, Some(now))) else {
            continue;
        };
        let (Some(owner), Some(owned_since)) = (c.owner, c.owned_since) else {
            continue;
        };
        if c.churned {
            continue;
        }
        let mut last = owned_since.max(c.last_activity_at.unwrap_or(owned_since));
        for d in &rec.deals {
            let Some(deal) = model.deals.get(d) else {
                continue;
            };
            for e in prefix(&deal.entries, Some(now)).iter().rev() {
                if matches!(e.op, DealOp::Activity(..)) {
                    last = last.max(e.at);
                    break;
                }
            }
        }
        let idle = days_between(last, now);
        if idle > f64::from(release_after_days) {
            out.push(ReleaseCandidate {
                customer_id: id.clone(),
                owner,
                idle_since: last,
                days_idle: round1(idle),
            });
        }
    }
    out
}
