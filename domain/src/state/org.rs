//! The organisation: the pipeline in force, the reps, the targets and the reporting
//! currency (the `org` stream).
//!
//! ## Order
//! The organisation is folded like every stream, in business order ([`crate::state`]): the
//! events of every `org-` stream together, by (`occurred_at`, `position`). So a `RepJoined`
//! or `TargetSet` entered late takes its place in business time, and the organisation "now"
//! is the one as of the end of time, of which the organisation as of T (the reports' `as_of`)
//! is a prefix. Every reader folds it so: [`OrgState::fold`] for a set of events, the read
//! model's `org_state` (the reports), and [`OrgFold`] for those that follow the log as it
//! grows (the rules, the import's check, the API's team index), which folds again when an
//! org event comes late.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::envelope::RecordedEvent;
use crate::events::{Event, Month, StageDef};
use crate::money::Money;

/// The ordered stages a deal moves through. Won and lost are not stages.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Pipeline {
    pub stages: Vec<StageDef>,
}

impl Default for Pipeline {
    /// The default pipeline of SPEC §1.2, in force until a `PipelineDefined`.
    fn default() -> Pipeline {
        let stage = |id: &str, name: &str, probability: f64| StageDef {
            id: id.into(),
            name: name.into(),
            probability,
        };
        Pipeline {
            stages: vec![
                stage("qualified", "Qualified", 0.10),
                stage("presentation", "Presentation", 0.25),
                stage("quote", "Quote", 0.50),
                stage("negotiation", "Negotiation", 0.70),
                stage("contract", "Contract", 0.90),
            ],
        }
    }
}

impl Pipeline {
    /// Position of a stage in the pipeline (0 = first), `None` if it is not a stage.
    pub fn index_of(&self, stage: &str) -> Option<usize> {
        self.stages.iter().position(|s| s.id == stage)
    }

    pub fn contains(&self, stage: &str) -> bool {
        self.index_of(stage).is_some()
    }

    /// Win probability of a stage; 0 for a stage not in the pipeline.
    pub fn probability(&self, stage: &str) -> f64 {
        self.stages
            .iter()
            .find(|s| s.id == stage)
            .map_or(0.0, |s| s.probability)
    }

    pub fn stage_ids(&self) -> impl Iterator<Item = &str> {
        self.stages.iter().map(|s| s.id.as_str())
    }
}

/// A sales rep as known from `RepJoined` / `RepLeft` (a later `RepJoined` updates it).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Rep {
    pub rep: String,
    pub name: String,
    pub team: String,
    pub manager: Option<String>,
    pub active: bool,
    #[serde(with = "crate::envelope::rfc3339")]
    pub joined_at: DateTime<Utc>,
    #[serde(with = "crate::envelope::rfc3339_opt")]
    pub left_at: Option<DateTime<Utc>>,
}

/// Whom a sales target is for.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TargetScope {
    /// The whole organisation (`TargetSet` with neither `rep` nor `team`).
    Org,
    Team(String),
    Rep(String),
}

/// The state of the `org` stream. The rules read it as "the organisation in force".
#[derive(Debug, Clone, PartialEq, Default)]
pub struct OrgState {
    /// The pipeline in force: the latest `PipelineDefined`, or the default one.
    pub pipeline: Pipeline,
    /// When the pipeline in force was defined (`None` = the default pipeline).
    pub pipeline_defined_at: Option<DateTime<Utc>>,
    /// Reps by rep id, including those who left (`active == false`).
    pub reps: BTreeMap<String, Rep>,
    /// The latest target per scope and month.
    pub targets: BTreeMap<(TargetScope, Month), Money>,
    /// The latest `ReportingCurrencySet` (`None` = the default, [`DEFAULT_CURRENCY`]).
    pub reporting_currency: Option<String>,
}

/// The currency of a deal without `currency`, and the reporting currency until a
/// `ReportingCurrencySet` (SPEC §1.2).
pub const DEFAULT_CURRENCY: &str = "CNY";

impl OrgState {
    /// Folds the events of the `org-` streams, given in any order: they are taken in
    /// business order (see the module doc).
    pub fn fold<'a>(events: impl IntoIterator<Item = &'a RecordedEvent>) -> OrgState {
        let mut sorted: Vec<&RecordedEvent> = events.into_iter().collect();
        sorted.sort_by_key(|e| super::business_key(e));
        let mut org = OrgState::default();
        for ev in sorted {
            org.apply(ev);
        }
        org
    }

    /// Folds one event of the `org` stream, the next in business order (events given as
    /// they come: [`OrgFold`]). Total: anything else (or unparsable) is ignored.
    pub fn apply(&mut self, ev: &RecordedEvent) {
        if let Ok(event) = crate::schema::typed(ev) {
            self.apply_event(&event, ev.occurred_at);
        }
    }

    /// Folds one typed event; `at` is its `occurred_at`.
    pub fn apply_event(&mut self, event: &Event, at: DateTime<Utc>) {
        match event {
            Event::PipelineDefined(p) => {
                self.pipeline = Pipeline {
                    stages: p.stages.clone(),
                };
                self.pipeline_defined_at = Some(at);
            }
            Event::RepJoined(r) => {
                self.reps.insert(
                    r.rep.clone(),
                    Rep {
                        rep: r.rep.clone(),
                        name: r.name.clone(),
                        team: r.team.clone(),
                        manager: r.manager.clone(),
                        active: true,
                        joined_at: at,
                        left_at: None,
                    },
                );
            }
            Event::RepLeft(r) => {
                if let Some(rep) = self.reps.get_mut(&r.rep) {
                    rep.active = false;
                    rep.left_at = Some(at);
                }
            }
            Event::TargetSet(t) => {
                let scope = match (&t.rep, &t.team) {
                    (Some(rep), _) => TargetScope::Rep(rep.clone()),
                    (None, Some(team)) => TargetScope::Team(team.clone()),
                    (None, None) => TargetScope::Org,
                };
                self.targets.insert((scope, t.month), t.amount);
            }
            Event::ReportingCurrencySet(r) => self.reporting_currency = Some(r.currency.clone()),
            _ => {}
        }
    }

    /// The reporting currency in force: the latest `ReportingCurrencySet`, else "CNY".
    pub fn reporting_currency(&self) -> &str {
        self.reporting_currency
            .as_deref()
            .unwrap_or(DEFAULT_CURRENCY)
    }

    /// True when the rep joined and has since left. Unknown reps are not "gone".
    pub fn rep_has_left(&self, rep: &str) -> bool {
        self.reps.get(rep).is_some_and(|r| !r.active)
    }

    pub fn target(&self, scope: &TargetScope, month: Month) -> Option<Money> {
        self.targets.get(&(scope.clone(), month)).copied()
    }
}

/// The organisation kept current as org events come, in any order: [`OrgState::fold`] of the
/// events given so far. An event in business order is folded on; a late one
/// ([`is_late`](super::is_late)) takes its place and the organisation is folded again. What
/// every reader that follows the log keeps (the rules' cache, the import's check, the API's
/// team index).
#[derive(Debug, Clone, Default)]
pub struct OrgFold {
    state: OrgState,
    /// The events taken, typed, in business order.
    events: Vec<((DateTime<Utc>, u64), Event)>,
}

impl OrgFold {
    /// The fold of `events` (in any order), sorted once rather than folded again at every
    /// late one.
    pub fn of<'a>(events: impl IntoIterator<Item = &'a RecordedEvent>) -> OrgFold {
        let mut typed: Vec<_> = events
            .into_iter()
            .filter_map(|ev| Some((super::business_key(ev), crate::schema::typed(ev).ok()?)))
            .collect();
        typed.sort_by_key(|(key, _)| *key);
        let mut fold = OrgFold::default();
        for (key, event) in typed {
            fold.apply_event(key, event);
        }
        fold
    }

    pub fn state(&self) -> &OrgState {
        &self.state
    }

    /// Takes one event; unparsable ones are ignored, as [`OrgState::apply`] ignores them.
    pub fn apply(&mut self, ev: &RecordedEvent) {
        if let Ok(event) = crate::schema::typed(ev) {
            self.apply_event(super::business_key(ev), event);
        }
    }

    /// Takes one typed event whose business key is `key` (`occurred_at`, position).
    pub fn apply_event(&mut self, key: (DateTime<Utc>, u64), event: Event) {
        let late = self.events.last().is_some_and(|(last, _)| key < *last);
        if !late {
            self.state.apply_event(&event, key.0);
            self.events.push((key, event));
            return;
        }
        let at = self.events.partition_point(|(k, _)| *k < key);
        self.events.insert(at, (key, event));
        self.state = OrgState::default();
        for ((occurred_at, _), event) in &self.events {
            self.state.apply_event(event, *occurred_at);
        }
    }
}
