//! Customer timeline — `GET /v1/customers/{id}/timeline?limit&before&types&kinds&as_of` (SPEC §2.1).
//!
//! Every event of the customer's stream, of its deals (`DealOpened.customer_id`), and of the
//! leads converted into it, newest first by (`occurred_at`, `position`). Paging: `limit`
//! (default 50, 1..=1000) and `before` = the position of the last event of the previous
//! page (the page continues strictly after it in this order; `next_before` gives it).
//! Filters: `types` (comma-separated event types) and `kinds` (comma-separated activity
//! kinds: keeps only `ActivityLogged` of those kinds); both apply when both are given.
//! With `as_of`, only events with `occurred_at ≤ as_of`, and a lead's events only if it had
//! been converted into the customer by then. With a narrower scope than the organisation,
//! only the deals its reps own now (as `GET /v1/deals/{id}` decides who sees a deal): the
//! other deals on the customer are left out entirely, as if they were not there.

use chrono::{DateTime, Utc};
use domain::events::{categories_of, ActivityKind};
use domain::{Event, RecordedEvent};
use serde::{Deserialize, Serialize};

use crate::deal::DealOp;
use crate::model::{prefix, DealRecord, Entry, EventSource, Keyed, ReadModel};
use crate::params::{ParamError, Scope};

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimelineParams {
    pub limit: Option<u32>,
    pub before: Option<u64>,
    pub types: Option<String>,
    pub kinds: Option<String>,
    #[serde(
        default,
        deserialize_with = "crate::params::query_time::deserialize_as_of"
    )]
    pub as_of: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct TimelineQuery {
    pub limit: usize,
    pub before: Option<u64>,
    pub types: Vec<String>,
    pub kinds: Vec<ActivityKind>,
    pub as_of: Option<DateTime<Utc>>,
    /// Not a query parameter: set by the API from the caller's token.
    pub scope: Scope,
}

fn list(s: &Option<String>) -> impl Iterator<Item = &str> {
    s.as_deref()
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|x| !x.is_empty())
}

impl TimelineParams {
    pub fn validate(&self) -> Result<TimelineQuery, ParamError> {
        let limit = self.limit.unwrap_or(50);
        if !(1..=1000).contains(&limit) {
            return Err(ParamError::new(
                "limit",
                format!("must be between 1 and 1000, got {limit}"),
            ));
        }
        let mut types = Vec::new();
        for t in list(&self.types) {
            if categories_of(t).is_none() {
                return Err(ParamError::new(
                    "types",
                    format!("unknown event type {t:?}"),
                ));
            }
            types.push(t.to_string());
        }
        let mut kinds = Vec::new();
        for k in list(&self.kinds) {
            let kind = ActivityKind::ALL
                .into_iter()
                .find(|x| x.as_str() == k)
                .ok_or_else(|| {
                    ParamError::new(
                        "kinds",
                        format!("unknown activity kind {k:?}: expected call, email, sms, meeting, visit or note"),
                    )
                })?;
            kinds.push(kind);
        }
        Ok(TimelineQuery {
            limit: limit as usize,
            before: self.before,
            types,
            kinds,
            as_of: self.as_of,
            scope: Scope::Organisation,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Timeline {
    pub customer_id: String,
    #[schema(value_type = Vec<domain::openapi::CanonicalEvent>)]
    pub events: Vec<RecordedEvent>,
    pub next_before: Option<u64>,
}

/// A timeline page before its events are read from the log: their positions, in order.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    pub customer_id: String,
    pub positions: Vec<u64>,
    pub next_before: Option<u64>,
}

impl Page {
    /// The page with its events, read from `log`.
    pub fn fill(self, log: &(impl EventSource + ?Sized)) -> Timeline {
        Timeline {
            events: log.events_at(&self.positions),
            customer_id: self.customer_id,
            next_before: self.next_before,
        }
    }
}

/// One line of a timeline: when, where, what type, and the activity kind if any.
struct Item {
    key: (DateTime<Utc>, u64),
    ty: &'static str,
    kind: Option<ActivityKind>,
}

fn item(e: &Entry) -> Item {
    Item {
        key: e.key(),
        ty: e.event.type_name(),
        kind: match &e.event {
            Event::ActivityLogged(a) => Some(a.kind),
            _ => None,
        },
    }
}

/// The page of the customer's timeline that `q` asks for; `Ok(None)` for an unknown customer.
pub fn page(
    model: &ReadModel,
    customer_id: &str,
    q: &TimelineQuery,
) -> Result<Option<Page>, ParamError> {
    let Some(c) = model.customers.get(customer_id) else {
        return Ok(None);
    };
    if model.customer_view(customer_id, q.as_of).is_none() {
        return Ok(None); // not registered (yet)
    }
    let mut all: Vec<Item> = prefix(&c.entries, q.as_of).iter().map(item).collect();
    let visible = |r: &DealRecord| {
        q.scope.is_organisation()
            || r.current
                .as_ref()
                .is_some_and(|v| q.scope.covers(&v.state.owner))
    };
    for d in &c.deals {
        if let Some(r) = model.deals.get(d).filter(|r| visible(r)) {
            all.extend(prefix(&r.entries, q.as_of).iter().map(|e| Item {
                key: e.key(),
                ty: e.type_name(),
                kind: match &e.op {
                    DealOp::Activity(kind, _) => Some(*kind),
                    _ => None,
                },
            }));
        }
    }
    for l in &c.leads {
        // As of a time before the conversion, the lead is not (yet) the customer's.
        let converted = q.as_of.is_none()
            || model
                .lead_view(l, q.as_of)
                .is_some_and(|v| v.customer_id.as_deref() == Some(customer_id));
        if let (true, Some(r)) = (converted, model.leads.get(l)) {
            all.extend(prefix(&r.entries, q.as_of).iter().map(item));
        }
    }
    all.sort_by_key(|e| std::cmp::Reverse(e.key));
    let start = match q.before {
        None => 0,
        Some(p) => {
            all.iter().position(|e| e.key.1 == p).ok_or_else(|| {
                ParamError::new("before", format!("position {p} is not in this timeline"))
            })? + 1
        }
    };
    let keep = |e: &&Item| {
        (q.types.is_empty() || q.types.iter().any(|t| t == e.ty))
            && (q.kinds.is_empty() || e.kind.is_some_and(|k| q.kinds.contains(&k)))
    };
    let mut page = all[start..].iter().filter(keep);
    let positions: Vec<u64> = page.by_ref().take(q.limit).map(|e| e.key.1).collect();
    let next_before = if page.next().is_some() {
        positions.last().copied()
    } else {
        None
    };
    Ok(Some(Page {
        customer_id: customer_id.to_string(),
        positions,
        next_before,
    }))
}

/// The timeline page `q` asks for, with its events read from `log`.
pub fn timeline(
    model: &ReadModel,
    log: &(impl EventSource + ?Sized),
    customer_id: &str,
    q: &TimelineQuery,
) -> Result<Option<Timeline>, ParamError> {
    Ok(page(model, customer_id, q)?.map(|p| p.fill(log)))
}
