//! Rules on the org stream (pipeline, reps, targets, exchange rates) and on naming reps.

use std::collections::BTreeSet;

use super::catalog::*;
use crate::events::Event;
use crate::rejection::Rejection;
use crate::state::{OrgState, Pipeline};

/// A rep named by an event (an owner, an assignee, a reassignment's target, an activity's or
/// a target's rep, a qualifier) must have joined (`RepJoined`) and not left. Rules apply to
/// new appends only: logs written before this rule stay readable as they are.
pub(super) fn rep_active(org: &OrgState, field: &str, rep: &str) -> Result<(), Rejection> {
    let why = match org.reps.get(rep) {
        Some(r) if r.active => return Ok(()),
        Some(_) => format!("rep {rep:?} has left the organisation"),
        None => format!("rep {rep:?} has not joined the organisation (no RepJoined for it)"),
    };
    Err(REP_ACTIVE.reject(format!("data.{field}"), json_text(rep), why))
}

/// A stage named by a deal event must be in the pipeline in force.
pub(super) fn stage_exists(pipeline: &Pipeline, field: &str, stage: &str) -> Result<(), Rejection> {
    if !pipeline.contains(stage) {
        let ids: Vec<&str> = pipeline.stage_ids().collect();
        return Err(DEAL_STAGE_EXISTS.reject(
            format!("data.{field}"),
            json_text(stage),
            format!(
                "{stage:?} is not a stage of the pipeline in force ({})",
                ids.join(", ")
            ),
        ));
    }
    Ok(())
}

pub(super) fn check(org: &OrgState, event: &Event) -> Result<(), Rejection> {
    match event {
        Event::PipelineDefined(p) => {
            if p.stages.is_empty() {
                return Err(PIPELINE_NON_EMPTY.reject(
                    "data.stages",
                    "[]",
                    "a pipeline has at least one stage",
                ));
            }
            let mut seen = BTreeSet::new();
            for (i, s) in p.stages.iter().enumerate() {
                if !seen.insert(s.id.as_str()) {
                    return Err(PIPELINE_UNIQUE_IDS.reject(
                        format!("data.stages[{i}].id"),
                        json_text(&s.id),
                        format!("stage id {:?} appears twice", s.id),
                    ));
                }
                if matches!(s.id.as_str(), "won" | "lost") {
                    return Err(PIPELINE_RESERVED_IDS.reject(
                        format!("data.stages[{i}].id"),
                        json_text(&s.id),
                        "won and lost are recorded by DealWon/DealLost, not as stages",
                    ));
                }
            }
        }
        Event::RepLeft(r) if !org.reps.get(&r.rep).is_some_and(|rep| rep.active) => {
            return Err(REP_LEAVE_ACTIVE.reject(
                "data.rep",
                json_text(&r.rep),
                format!("rep {:?} is not an active member of the org", r.rep),
            ));
        }
        Event::TargetSet(t) => {
            if let Some(rep) = &t.rep {
                rep_active(org, "rep", rep)?;
            }
            if let (Some(_), Some(team)) = (&t.rep, &t.team) {
                return Err(TARGET_SCOPE.reject(
                    "data.team",
                    json_text(team),
                    "a target is for a rep, a team or the org: give rep or team, not both",
                ));
            }
        }
        Event::ExchangeRateSet(r) if r.currency == org.reporting_currency() => {
            return Err(RATE_NOT_REPORTING.reject(
                "data.currency",
                json_text(&r.currency),
                format!(
                    "{} is the reporting currency: its rate is 1 by definition (ReportingCurrencySet changes the reporting currency)",
                    r.currency
                ),
            ));
        }
        _ => {}
    }
    Ok(())
}
