//! Deal state as of any time, and the step-by-step replay of a deal (SPEC §2.2).
//!
//! Steps follow business order (`occurred_at`, `position`), the order the deal's story
//! happened in. Analysis choices:
//! - `competitor`: the `DealLost.competitor` of the final loss (`null` otherwise).
//! - `days_open`: opening → final close, or → `now` for an open deal.
//! - `stage_regressions`: `DealStageChanged` to a stage earlier in the pipeline in force
//!   (reopens are not moves); stages outside the pipeline never count.
//! - `longest_silence_days`: largest gap between consecutive events where the deal was open
//!   after the first of the two; `null` when there is no such pair.
//! - `last_activity_before_close_days`: final close − latest `ActivityLogged` at or before it.
//! - `won_deals_of_rep`: other deals currently owned by the deal's current owner and won.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use domain::envelope::rfc3339;
use domain::events::ActivityKind;
use domain::{Event, RecordedEvent};
use serde::{Deserialize, Serialize};

use crate::deal::{DealOp, DealState, DealStatus, DealView};
use crate::model::{DealEntry, EventSource, ReadModel};
use crate::num::{days_between, median, round1, OrderedMap};
use crate::params::ParamError;
use crate::typed::typed;

/// `GET /v1/deals/{id}?as_of=`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DealStateParams {
    #[serde(
        default,
        deserialize_with = "crate::params::query_time::deserialize_as_of"
    )]
    pub as_of: Option<DateTime<Utc>>,
}

impl DealStateParams {
    pub fn validate(&self) -> Result<Option<DateTime<Utc>>, ParamError> {
        Ok(self.as_of)
    }
}

/// The deal folded over its events with `occurred_at ≤ as_of`; `None` if it did not exist.
pub fn deal_state(
    model: &ReadModel,
    deal_id: &str,
    as_of: Option<DateTime<Utc>>,
) -> Option<DealState> {
    model.deal_view(deal_id, as_of).map(|v| v.state.clone())
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Step {
    pub position: u64,
    pub version: u64,
    #[serde(with = "rfc3339")]
    pub occurred_at: DateTime<Utc>,
    #[serde(rename = "type")]
    pub event_type: String,
    pub actor: String,
    pub summary: String,
    pub state: DealState,
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct WonDealsOfRep {
    pub count: u32,
    pub median_activities: Option<f64>,
    pub median_days_open: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Analysis {
    pub outcome: DealStatus,
    pub lost_reason: Option<String>,
    pub competitor: Option<String>,
    pub stage_at_close: Option<String>,
    pub days_open: f64,
    #[schema(value_type = BTreeMap<String, f64>)]
    pub days_in_stage: OrderedMap<f64>,
    pub stage_regressions: u32,
    pub quote_revisions: u32,
    pub activities: BTreeMap<ActivityKind, u32>,
    pub longest_silence_days: Option<f64>,
    pub last_activity_before_close_days: Option<f64>,
    pub won_deals_of_rep: WonDealsOfRep,
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Replay {
    pub deal_id: String,
    /// The deal's own currency: the steps' amounts are in it, unconverted (a replay tells
    /// the deal's story; the reports convert, see [`crate::currency`]).
    pub currency: String,
    pub steps: Vec<Step>,
    pub analysis: Analysis,
}

/// A one-line human summary of a deal event.
pub fn summary(event: &Event) -> String {
    match event {
        Event::DealOpened(o) => format!(
            "opened \"{}\" at {} for {} by {}",
            o.title, o.stage, o.amount, o.owner
        ),
        Event::DealStageChanged(c) => format!("{} → {}", c.from, c.to),
        Event::DealAmountChanged(a) => format!("amount → {}", a.amount),
        Event::DealReassigned(r) => format!("reassigned {} → {}", r.from, r.to),
        Event::QuoteIssued(q) => match q.discount_pct {
            Some(d) => format!("quote {}: {} ({d}% off)", q.quote_id, q.amount),
            None => format!("quote {}: {}", q.quote_id, q.amount),
        },
        Event::CompetitorNoted(c) => format!("competitor noted: {}", c.competitor),
        Event::ActivityLogged(a) => match &a.summary {
            Some(s) => format!("{} by {}: {s}", a.kind.as_str(), a.rep),
            None => format!("{} by {}", a.kind.as_str(), a.rep),
        },
        Event::DealWon(w) => format!("won for {}", w.amount),
        Event::DealLost(l) => match &l.competitor {
            Some(c) => format!("lost: {} (to {c})", l.reason),
            None => format!("lost: {}", l.reason),
        },
        Event::DealReopened(r) => format!("reopened at {}", r.stage),
        Event::PaymentScheduled(p) => {
            format!("payment {} of {} due {}", p.installment_id, p.amount, p.due)
        }
        Event::PaymentReceived(p) => format!("payment received: {}", p.amount),
        other => other.type_name().to_string(),
    }
}

/// Replays a deal step by step, with the analysis; `now` ends open visits of an open deal.
pub fn replay(
    model: &ReadModel,
    deal_id: &str,
    log: &(impl EventSource + ?Sized),
    now: DateTime<Utc>,
) -> Option<Replay> {
    let rec = model.deals.get(deal_id)?;
    // From the opening event on (nothing can precede it in a validated log).
    let entries: Vec<&DealEntry> = rec
        .entries
        .iter()
        .skip_while(|e| !matches!(e.op, DealOp::Opened(_)))
        .collect();
    let positions: Vec<u64> = entries.iter().map(|e| e.position).collect();
    let events = log.events_at(&positions);
    if events.len() != entries.len() {
        return None; // the log does not hold what the model says: not this log's deal
    }
    let first = entries.first()?;
    let mut view = DealView::open(deal_id, first)?;
    let pipeline = model.pipeline(None);
    let idx = |s: &str| pipeline.iter().position(|d| d.id == s);

    let step = |e: &DealEntry, ev: &RecordedEvent, typed: Option<&Event>, view: &DealView| Step {
        position: e.position,
        version: ev.version,
        occurred_at: e.at,
        event_type: ev.event_type.clone(),
        actor: ev.actor.clone(),
        summary: typed.map_or_else(|| ev.event_type.clone(), summary),
        state: view.state.clone(),
    };
    let mut steps = Vec::with_capacity(entries.len());
    steps.push(step(first, &events[0], typed(&events[0]).as_ref(), &view));
    let mut regressions = 0;
    let mut silence: Option<f64> = None;
    let mut prev = first;
    for (e, ev) in entries.iter().zip(&events).skip(1) {
        let event = typed(ev);
        if view.state.status == DealStatus::Open {
            let gap = days_between(prev.at, e.at);
            silence = Some(silence.map_or(gap, |s: f64| s.max(gap)));
        }
        if let Some(Event::DealStageChanged(c)) = &event {
            if let (Some(f), Some(t)) = (idx(&c.from), idx(&c.to)) {
                if t < f {
                    regressions += 1;
                }
            }
        }
        view.apply(e);
        steps.push(step(e, ev, event.as_ref(), &view));
        prev = e;
    }

    let close = view.final_close().cloned();
    let end = close.as_ref().map_or(now, |c| c.at);
    let mut per_stage: BTreeMap<&str, f64> = BTreeMap::new();
    for v in &view.visits {
        *per_stage.entry(&v.stage).or_default() += days_between(v.entered, v.exited.unwrap_or(end));
    }
    // Pipeline order first, then any stage outside the pipeline, by name.
    let mut days_in_stage = OrderedMap::default();
    for s in &pipeline {
        if let Some(d) = per_stage.remove(s.id.as_str()) {
            days_in_stage.0.push((s.id.clone(), round1(d)));
        }
    }
    for (s, d) in per_stage {
        days_in_stage.0.push((s.to_string(), round1(d)));
    }

    let last_activity_before_close_days = close.as_ref().and_then(|c| {
        entries
            .iter()
            .filter(|e| matches!(e.op, DealOp::Activity(..)) && e.at <= c.at)
            .map(|e| e.at)
            .max()
            .map(|t| round1(days_between(t, c.at)))
    });

    let mut acts = Vec::new();
    let mut days = Vec::new();
    let won = model.rep_months.won_deals(&view.state.owner);
    for (id, (a, d)) in won.into_iter().flatten() {
        if id != deal_id {
            acts.push(f64::from(*a));
            days.push(*d);
        }
    }

    let analysis = Analysis {
        outcome: view.state.status,
        lost_reason: close
            .as_ref()
            .filter(|c| !c.won)
            .and_then(|c| c.reason.as_deref().map(str::to_string)),
        competitor: close
            .as_ref()
            .filter(|c| !c.won)
            .and_then(|c| c.competitor.as_deref().map(str::to_string)),
        stage_at_close: close.as_ref().map(|c| c.stage.to_string()),
        days_open: round1(view.days_open(now)),
        days_in_stage,
        stage_regressions: regressions,
        quote_revisions: view.state.quotes.saturating_sub(1),
        activities: view.activities_by_kind(),
        longest_silence_days: silence.map(round1),
        last_activity_before_close_days,
        won_deals_of_rep: WonDealsOfRep {
            count: acts.len() as u32,
            median_activities: median(&acts),
            median_days_open: median(&days).map(round1),
        },
    };
    Some(Replay {
        deal_id: deal_id.to_string(),
        currency: view.state.currency.to_string(),
        steps,
        analysis,
    })
}
