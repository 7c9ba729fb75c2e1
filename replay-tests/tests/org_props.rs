//! One fold of the organisation, in business order: for generated `org-` streams (reps
//! joining, leaving and joining again, targets, pipelines; two org streams; late entries and
//! ties of `occurred_at`), every reader of the organisation tells the same story as a plain
//! oracle written here, which folds the events by (`occurred_at`, `position`):
//! - the reports' organisation: the read model's `reps`, `pipeline` and `target`, now and as
//!   of a generated time;
//! - the domain's `OrgState::fold`, and `OrgFold` (what the rules, the import's check and the
//!   API's team index follow the log with), which must equal it;
//! - the API's team index (`LogIndex`: a rep's team and whether they left, for scope
//!   decisions), fed the log in log order.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use domain::state::{OrgFold, OrgState};
use domain::{Month, RecordedEvent};
use projections::ReadModel;
use proptest::prelude::*;
use replay_tests::{t, LogBuilder};
use serde_json::{json, Value};

use api::http::ownership::{LogIndex, RepStatus};

const REPS: [&str; 3] = ["wukong", "bajie", "wujing"];
const TEAMS: [&str; 2] = ["east", "west"];
const MONTHS: [&str; 2] = ["2026-04", "2026-05"];
/// The default pipeline of SPEC §1.2, in force until a `PipelineDefined`.
const SPEC_STAGES: [&str; 5] = [
    "qualified",
    "presentation",
    "quote",
    "negotiation",
    "contract",
];

/// A month's targets, each the latest: org-wide, per team, per rep (in cents).
type MonthTargets = (Option<i64>, BTreeMap<String, i64>, BTreeMap<String, i64>);

fn base() -> DateTime<Utc> {
    t("2026-03-01T00:00:00Z")
}

#[derive(Debug, Clone)]
enum Kind {
    Joined(usize, usize),
    Left(usize),
    /// Month, amount, and for whom: `None` the organisation, `Some(Ok(team))`,
    /// `Some(Err(rep))`.
    Target(usize, i64, Option<Result<usize, usize>>),
    /// One of two pipelines, told apart by their first stage.
    Pipeline(usize),
}

fn kind() -> impl Strategy<Value = Kind> {
    let whom = proptest::option::of(prop_oneof![
        (0..TEAMS.len()).prop_map(Ok),
        (0..REPS.len()).prop_map(Err),
    ]);
    prop_oneof![
        3 => (0..REPS.len(), 0..TEAMS.len()).prop_map(|(r, t)| Kind::Joined(r, t)),
        2 => (0..REPS.len()).prop_map(Kind::Left),
        3 => (0..MONTHS.len(), 1i64..100, whom).prop_map(|(m, a, w)| Kind::Target(m, a, w)),
        1 => (0usize..2).prop_map(Kind::Pipeline),
    ]
}

fn stages(variant: usize) -> Vec<String> {
    let first = ["lead", "prospect"][variant];
    vec![first.to_string(), "quote".to_string()]
}

fn data(kind: &Kind) -> (&'static str, Value) {
    match kind {
        Kind::Joined(r, t) => (
            "RepJoined",
            json!({"rep": REPS[*r], "name": REPS[*r], "team": TEAMS[*t]}),
        ),
        Kind::Left(r) => ("RepLeft", json!({"rep": REPS[*r]})),
        Kind::Target(m, amount, whom) => {
            let mut d = json!({"month": MONTHS[*m], "amount": amount});
            match whom {
                Some(Ok(team)) => d["team"] = json!(TEAMS[*team]),
                Some(Err(rep)) => d["rep"] = json!(REPS[*rep]),
                None => {}
            }
            ("TargetSet", d)
        }
        Kind::Pipeline(v) => {
            let stages: Vec<Value> = stages(*v)
                .into_iter()
                .map(|id| json!({"id": id, "name": id, "probability": 0.5}))
                .collect();
            ("PipelineDefined", json!({ "stages": stages }))
        }
    }
}

/// What the organisation says, as the oracle folds it: reps (team, left), pipeline stage
/// ids, the target of each month.
#[derive(Debug, PartialEq)]
struct Org {
    reps: BTreeMap<String, (String, bool)>,
    stages: Vec<String>,
    targets: Vec<Option<i64>>,
}

fn oracle(events: &[RecordedEvent], as_of: Option<DateTime<Utc>>) -> Org {
    let mut sorted: Vec<&RecordedEvent> = events
        .iter()
        .filter(|e| as_of.is_none_or(|t| e.occurred_at <= t))
        .collect();
    sorted.sort_by_key(|e| (e.occurred_at, e.position));
    let s = |e: &RecordedEvent, f: &str| e.data.get(f).and_then(|v| v.as_str()).map(String::from);
    let mut reps = BTreeMap::new();
    let mut stages = None;
    let mut targets: BTreeMap<String, MonthTargets> = BTreeMap::new();
    for e in sorted {
        match e.event_type.as_str() {
            "RepJoined" => {
                reps.insert(s(e, "rep").unwrap(), (s(e, "team").unwrap(), false));
            }
            "RepLeft" => {
                if let Some(r) = reps.get_mut(&s(e, "rep").unwrap()) {
                    r.1 = true;
                }
            }
            "PipelineDefined" => {
                let ids = e.data.get("stages").and_then(|v| v.as_array()).unwrap();
                stages = Some(
                    ids.iter()
                        .map(|st| st["id"].as_str().unwrap().to_string())
                        .collect(),
                );
            }
            "TargetSet" => {
                let cents = (e.data.get("amount").and_then(|v| v.as_f64()).unwrap() * 100.0) as i64;
                let month = targets.entry(s(e, "month").unwrap()).or_default();
                match (s(e, "team"), s(e, "rep")) {
                    (Some(team), _) => {
                        month.1.insert(team, cents);
                    }
                    (_, Some(rep)) => {
                        month.2.insert(rep, cents);
                    }
                    _ => month.0 = Some(cents),
                }
            }
            _ => {}
        }
    }
    let target = |m: &str| {
        let (org, teams, reps) = targets.get(m)?;
        let sum =
            |amounts: &BTreeMap<String, i64>| (!amounts.is_empty()).then(|| amounts.values().sum());
        org.or_else(|| sum(teams)).or_else(|| sum(reps))
    };
    Org {
        reps,
        stages: stages.unwrap_or_else(|| SPEC_STAGES.map(String::from).to_vec()),
        targets: MONTHS.iter().map(|m| target(m)).collect(),
    }
}

/// The reports' organisation, from the read model.
fn reports(model: &ReadModel, as_of: Option<DateTime<Utc>>) -> Org {
    Org {
        reps: model
            .reps(as_of)
            .into_iter()
            .map(|(rep, r)| (rep, (r.team, r.left)))
            .collect(),
        stages: model.pipeline(as_of).into_iter().map(|s| s.id).collect(),
        targets: MONTHS
            .iter()
            .map(|m| {
                let month = Month::parse(m).unwrap();
                model.target(month, as_of).map(|a| a.cents())
            })
            .collect(),
    }
}

fn build(ops: &[(i64, bool, Kind)]) -> LogBuilder {
    let mut log = LogBuilder::new();
    for (hours, second, kind) in ops {
        let stream = if *second { "org-beta" } else { "org-acme" };
        let (ty, data) = data(kind);
        log.ev_at(base() + Duration::hours(*hours), stream, ty, "admin", data);
    }
    log
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn every_reader_of_the_organisation_folds_it_in_business_order(
        ops in proptest::collection::vec(
            (0i64..96, any::<bool>(), kind())
                .prop_map(|(h, second, k)| (if h % 2 == 0 { h / 24 * 24 } else { h }, second, k)),
            0..30,
        ),
        as_of_hours in 0i64..100,
    ) {
        let log = build(&ops);
        let events = log.events();
        let model = ReadModel::rebuild(events);
        let as_of = base() + Duration::hours(as_of_hours);
        for when in [None, Some(as_of)] {
            let want = oracle(events, when);
            prop_assert_eq!(reports(&model, when), want);
        }
        let want = oracle(events, None);
        // The domain's fold (the rules'), given the log in log order.
        let folded = OrgState::fold(events);
        let reps: BTreeMap<String, (String, bool)> = folded
            .reps
            .into_values()
            .map(|r| (r.rep, (r.team, !r.active)))
            .collect();
        prop_assert_eq!(&reps, &want.reps);
        // The same, followed event by event (the rules' cache, the import's check), given
        // the log in log order: late entries fold it again.
        let mut followed = OrgFold::default();
        for ev in events {
            followed.apply(ev);
        }
        prop_assert_eq!(followed.state(), &OrgState::fold(events));
        // The API's team index, fed the log in log order.
        let mut index = LogIndex::default();
        for ev in events {
            index.apply(ev);
        }
        for rep in REPS {
            let status = match want.reps.get(rep) {
                None => RepStatus::Unknown,
                Some((_, true)) => RepStatus::Left,
                Some((_, false)) => RepStatus::Active,
            };
            prop_assert_eq!(index.rep_status(rep), status, "{}", rep);
            let team = want.reps.get(rep).map(|(team, _)| team.as_str());
            prop_assert_eq!(index.team_of(rep), team, "{}", rep);
        }
    }
}

/// Hand-checked: a `RepLeft` dated between two `RepJoined` but logged after both leaves the
/// rep on the team of the later join, active, for every reader.
#[test]
fn a_late_leave_between_two_joins_leaves_the_rep_active_everywhere() {
    let log = build(&[
        (0, false, Kind::Joined(0, 0)),
        (48, false, Kind::Joined(0, 1)),
        (24, false, Kind::Left(0)),
    ]);
    let events = log.events();
    let model = ReadModel::rebuild(events);
    let reps = model.reps(None);
    assert_eq!(reps["wukong"].team, "west");
    assert!(!reps["wukong"].left);
    // As of the day in between, he had left east.
    let between = model.reps(Some(base() + Duration::hours(30)));
    assert_eq!(
        (between["wukong"].team.as_str(), between["wukong"].left),
        ("east", true)
    );
    let mut index = LogIndex::default();
    for ev in events {
        index.apply(ev);
    }
    assert_eq!(index.rep_status("wukong"), RepStatus::Active);
    assert_eq!(index.team_of("wukong"), Some("west"));
    assert!(OrgState::fold(events).reps["wukong"].active);
}
