//! The rep's follow-up list — `GET /v1/reports/follow-up?rep&as_of&stale_days=14` (SPEC §2.8).
//!
//! Choices:
//! - The rep's deals are the deals the rep owns as of `as_of` (default now); the rep's
//!   customers, those the rep owns then and not churned; the rep's leads, those whose latest
//!   `LeadQualified` names the rep.
//! - `overdue_payments`: the installments of the deal's fold (the domain's `DealState`: an
//!   installment is its latest `PaymentScheduled` with that `installment_id`, a rescheduling
//!   replacing amount and due date; `received` is its `paid`, the sum of the deal's
//!   `PaymentReceived` with that `installment_id`); listed when won now, `due` before
//!   `as_of`'s date and `received < amount`. `days_overdue` = whole days from `due` to
//!   `as_of`'s date. Most overdue first, then deal and installment id.
//! - `stale_deals`: as in the pipeline (§2.5), `as_of − last_touch_at > stale_days`; oldest
//!   touch first, then deal id.
//! - `pool_release_soon`: only when the pool policy is on (`pool_release_after_days`, the
//!   service's `--pool-release-after-days`); idle since the latest activity on the customer's
//!   stream or its deals' streams, or since the rep got the customer if later (the policy's
//!   own measure, [`crate::pool::due_for_release`]), listed when idle for more than
//!   `release_after_days − 3` days; `releases_in_days` = `release_after_days` − idle days
//!   (1 decimal, 0 when already due: the policy's next run releases it). Soonest first.
//! - `leads_to_work`: the leads whose fold (the domain's `LeadState`) is qualified;
//!   `score` = fit + intent, each the latest given (a score never given counts 0); highest
//!   first, then the earliest qualified, then lead id.

use std::borrow::Cow;

use chrono::{DateTime, NaiveDate, Utc};
use domain::envelope::rfc3339;
use domain::state::LeadStatus;
use domain::{Event, Money};
use serde::{Deserialize, Serialize};

use crate::deal::{DealOp, DealStatus, DealView};
use crate::entries::Prefix;
use crate::follow_up_index::last_deal_activity;
use crate::model::{fold_customer, prefix, DealEntry, Entry, ReadModel};
use crate::num::{days_between, round1};
use crate::params::ParamError;

#[derive(Debug, Clone, Default, PartialEq, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct FollowUpParams {
    pub rep: Option<String>,
    #[serde(
        default,
        deserialize_with = "crate::params::query_time::deserialize_as_of"
    )]
    pub as_of: Option<DateTime<Utc>>,
    pub stale_days: Option<u32>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct FollowUpQuery {
    /// Whose list: `None` until the caller's scope has decided (see the API).
    pub rep: Option<String>,
    pub as_of: Option<DateTime<Utc>>,
    pub stale_days: u32,
    /// The pool policy's `release_after_days`, when it is on.
    pub release_after_days: Option<u32>,
}

impl FollowUpParams {
    pub fn validate(&self) -> Result<FollowUpQuery, ParamError> {
        let stale_days = self.stale_days.unwrap_or(14);
        if stale_days > 3650 {
            return Err(ParamError::new("stale_days", "must be at most 3650"));
        }
        if let Some(rep) = &self.rep {
            let ok = (1..=64).contains(&rep.len())
                && rep
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_.:-".contains(c));
            if !ok {
                return Err(ParamError::new(
                    "rep",
                    format!("{rep:?} is not a rep id (1–64 characters of A-Z a-z 0-9 _ . : -)"),
                ));
            }
        }
        Ok(FollowUpQuery {
            rep: self.rep.clone(),
            as_of: self.as_of,
            stale_days,
            release_after_days: None,
        })
    }
}

/// A lead qualified to a rep, neither converted nor disqualified.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct LeadToWork {
    pub lead_id: String,
    pub name: String,
    pub channel: String,
    pub fit_score: Option<i64>,
    pub intent_score: Option<i64>,
    pub score: i64,
    #[serde(with = "rfc3339")]
    pub qualified_at: DateTime<Utc>,
    #[serde(skip)]
    pub rep: String,
}

impl LeadToWork {
    /// The lead whose events (business order) are `entries`, if it is one to work: the
    /// domain's fold of it is qualified (again, after a disqualification) and not converted.
    pub fn of(lead_id: &str, entries: Prefix<'_, Entry>) -> Option<LeadToWork> {
        let l = crate::model::fold_lead(lead_id, entries)?;
        if l.status != LeadStatus::Qualified {
            return None;
        }
        Some(LeadToWork {
            score: l.fit_score.unwrap_or(0) + l.intent_score.unwrap_or(0),
            qualified_at: l.qualified_at?,
            rep: l.rep?,
            lead_id: l.lead_id,
            name: l.name,
            channel: l.channel,
            fit_score: l.fit_score,
            intent_score: l.intent_score,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct OverduePayment {
    pub deal_id: String,
    pub installment_id: String,
    pub due: NaiveDate,
    pub amount: Money,
    pub received: Money,
    pub days_overdue: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[schema(as = FollowUpStaleDeal)]
pub struct StaleDeal {
    pub deal_id: String,
    pub title: String,
    pub stage: String,
    pub amount: Money,
    #[serde(with = "rfc3339")]
    pub last_touch_at: DateTime<Utc>,
    pub days_since_touch: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ReleaseSoon {
    pub customer_id: String,
    pub name: String,
    #[serde(with = "rfc3339")]
    pub last_activity_at: DateTime<Utc>,
    pub releases_in_days: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct FollowUp {
    pub rep: String,
    #[serde(with = "rfc3339")]
    pub as_of: DateTime<Utc>,
    pub stale_days: u32,
    /// The pool policy's `release_after_days` (`null`: the policy is off).
    pub pool_release_after_days: Option<u32>,
    pub overdue_payments: Vec<OverduePayment>,
    pub stale_deals: Vec<StaleDeal>,
    pub pool_release_soon: Vec<ReleaseSoon>,
    pub leads_to_work: Vec<LeadToWork>,
}

/// The deal's title as opened.
fn title(entries: Prefix<'_, DealEntry>) -> String {
    entries
        .iter()
        .find_map(|e| match &e.op {
            DealOp::Opened(o) => Some(o.title.to_string()),
            _ => None,
        })
        .unwrap_or_default()
}

/// A customer of the rep: id, owned since, latest activity on it or its deals.
type RepCustomer<'a> = (&'a str, DateTime<Utc>, Option<DateTime<Utc>>);

/// Where the list's candidates come from: the model's index (now) or a scan (as of then).
struct Candidates<'a> {
    /// (id, deal as of then, its events up to then) of the rep's open and won deals.
    deals: Vec<(&'a str, Cow<'a, DealView>, Prefix<'a, DealEntry>)>,
    /// (customer id, owned since, latest activity) of the rep's customers.
    customers: Vec<RepCustomer<'a>>,
    leads: Vec<LeadToWork>,
}

fn from_index<'a>(model: &'a ReadModel, rep: &str) -> Candidates<'a> {
    let idx = &model.follow_up;
    let mut ids: Vec<&String> = idx.open_deals(rep).chain(idx.unpaid_deals(rep)).collect();
    ids.sort_unstable();
    ids.dedup();
    let deals = ids
        .into_iter()
        .filter_map(|id| {
            let rec = model.deals.get(id)?;
            let view = Cow::Borrowed(rec.current.as_deref()?);
            Some((id.as_str(), view, rec.entries.all()))
        })
        .collect();
    let customers = idx
        .customers(rep)
        .map(|(id, since)| (id.as_str(), since, idx.last_activity(id)))
        .collect();
    let leads = idx
        .leads(rep)
        .filter_map(|id| LeadToWork::of(id, model.leads.get(id)?.entries.all()))
        .collect();
    Candidates {
        deals,
        customers,
        leads,
    }
}

/// Whether any of a deal's `entries` makes `rep` its owner (the opening or a reassignment):
/// a deal none does cannot be the rep's then, and is not folded. As-of scans fold only the
/// rep's deals this way (a scan visits every deal of the organisation).
fn names_as_owner(entries: Prefix<'_, DealEntry>, rep: &str) -> bool {
    entries.iter().any(|e| match &e.op {
        DealOp::Opened(o) => &*o.owner == rep,
        DealOp::Reassigned(to) => &**to == rep,
        _ => false,
    })
}

/// Whether any of a lead's `entries` qualifies it to `rep` (a lead's rep is the one its
/// latest `LeadQualified` names): the scan's cheap filter before the lead's fold.
fn qualifies_to(entries: Prefix<'_, Entry>, rep: &str) -> bool {
    entries
        .iter()
        .any(|e| matches!(&e.event, Event::LeadQualified(q) if q.rep == rep))
}

fn by_scan<'a>(model: &'a ReadModel, rep: &str, as_of: DateTime<Utc>) -> Candidates<'a> {
    let t = Some(as_of);
    let deals = model
        .deals
        .iter()
        .filter_map(|(id, rec)| {
            if rec.begins_after(as_of) {
                return None;
            }
            let entries = prefix(&rec.entries, t);
            if !names_as_owner(entries, rep) {
                return None;
            }
            let view = rec.view(id, t)?;
            (&*view.state.owner == rep && view.state.status != DealStatus::Lost).then_some((
                id.as_str(),
                view,
                entries,
            ))
        })
        .collect();
    let customers = model
        .customers
        .iter()
        .filter_map(|(id, rec)| {
            let c = fold_customer(id, prefix(&rec.entries, t))?;
            if c.churned || c.owner.as_deref() != Some(rep) {
                return None;
            }
            let on_deals = rec
                .deals
                .iter()
                .filter_map(|d| last_deal_activity(prefix(&model.deals.get(d)?.entries, t)));
            let last = c.last_activity_at.into_iter().chain(on_deals).max();
            Some((id.as_str(), c.owned_since?, last))
        })
        .collect();
    let leads = model
        .leads
        .iter()
        .filter_map(|(id, l)| {
            let entries = prefix(&l.entries, t);
            if !qualifies_to(entries, rep) {
                return None;
            }
            LeadToWork::of(id, entries)
        })
        .filter(|l| l.rep == rep)
        .collect();
    Candidates {
        deals,
        customers,
        leads,
    }
}

/// `q.rep`'s list (an empty list for a rep with nothing; the caller checks who may see it).
pub fn follow_up(model: &ReadModel, q: &FollowUpQuery, now: DateTime<Utc>) -> FollowUp {
    let rep = q.rep.clone().unwrap_or_default();
    let as_of = q.as_of.unwrap_or(now);
    let current = model.latest_occurred_at.is_none_or(|l| l <= as_of);
    let c = if current {
        from_index(model, &rep)
    } else {
        by_scan(model, &rep, as_of)
    };
    let today = as_of.date_naive();
    let mut overdue = Vec::new();
    let mut stale = Vec::new();
    for (id, view, entries) in &c.deals {
        let s = &view.state;
        match s.status {
            DealStatus::Won => {
                for i in &s.installments {
                    if i.due < today && i.paid < i.amount {
                        overdue.push(OverduePayment {
                            deal_id: id.to_string(),
                            installment_id: i.installment_id.to_string(),
                            due: i.due,
                            amount: i.amount,
                            received: i.paid,
                            days_overdue: (today - i.due).num_days(),
                        });
                    }
                }
            }
            DealStatus::Open => {
                let since = days_between(s.last_touch_at, as_of);
                if since > f64::from(q.stale_days) {
                    stale.push(StaleDeal {
                        deal_id: id.to_string(),
                        title: title(*entries),
                        stage: s.stage.to_string(),
                        amount: s.amount,
                        last_touch_at: s.last_touch_at,
                        days_since_touch: round1(since),
                    });
                }
            }
            DealStatus::Lost => {}
        }
    }
    overdue.sort_by(|a, b| {
        a.due
            .cmp(&b.due)
            .then_with(|| a.deal_id.cmp(&b.deal_id))
            .then_with(|| a.installment_id.cmp(&b.installment_id))
    });
    stale.sort_by(|a, b| {
        a.last_touch_at
            .cmp(&b.last_touch_at)
            .then_with(|| a.deal_id.cmp(&b.deal_id))
    });
    let mut soon = Vec::new();
    if let Some(days) = q.release_after_days {
        let warn = f64::from(days) - 3.0;
        for (id, owned_since, last) in &c.customers {
            let since = last.map_or(*owned_since, |l| l.max(*owned_since));
            let idle = days_between(since, as_of);
            if idle > warn {
                // The name now is kept by the deal list's index; as of then, it is folded.
                let kept = current
                    .then(|| model.deal_index.customer_name(id))
                    .flatten();
                let name = match kept {
                    Some(n) => n.to_string(),
                    None => model
                        .customer_view(id, Some(as_of))
                        .map(|v| v.name)
                        .unwrap_or_default(),
                };
                soon.push((
                    idle,
                    ReleaseSoon {
                        customer_id: id.to_string(),
                        name,
                        last_activity_at: since,
                        releases_in_days: round1((f64::from(days) - idle).max(0.0)),
                    },
                ));
            }
        }
    }
    soon.sort_by(|a, b| {
        b.0.total_cmp(&a.0)
            .then_with(|| a.1.customer_id.cmp(&b.1.customer_id))
    });
    let mut leads = c.leads;
    leads.sort_by(|a, b| {
        b.score
            .cmp(&a.score)
            .then(a.qualified_at.cmp(&b.qualified_at))
            .then_with(|| a.lead_id.cmp(&b.lead_id))
    });
    FollowUp {
        rep,
        as_of,
        stale_days: q.stale_days,
        pool_release_after_days: q.release_after_days,
        overdue_payments: overdue,
        stale_deals: stale,
        pool_release_soon: soon.into_iter().map(|x| x.1).collect(),
        leads_to_work: leads,
    }
}
