//! The `hubspot` profile (SPEC §4): the deals export, one row per deal — `Record ID`, `Deal
//! Name`, `Deal Stage`, `Amount`, `Create Date`, `Close Date`, `Deal owner`, `Associated
//! Company` — with the `Date entered "<stage> (<pipeline>)"` columns as the stage history.
//! Optional: `Closed Lost Reason`, `Closed Won Reason`, `Deal currency code` (or `Currency`).
//!
//! - Deal id = `Record ID`; rep = the owner's name as an id (`cells::slug`; no owner →
//!   `unassigned`), team `hubspot`; customer = the company's name as an id (none → `unknown`).
//! - Closed stages are those named `Closed won`/`Closed lost` (any case); the others are the
//!   pipeline, in the order of their `Date entered` columns (stages seen only in `Deal Stage`
//!   follow, in order of appearance). Probabilities: HubSpot's defaults for its standard
//!   stages, else evenly spread by position.
//! - Each filled `Date entered` cell is a step; the earliest, when open, opens the deal (at
//!   the earlier of it and `Create Date`). A deal closed now closes at its `Close Date`.
//!   Without dates the deal opens in its current stage (the first stage when closed).

use std::collections::{HashMap, HashSet};

use domain::events::StageDef;
use domain::money::Money;

use super::cells;
use super::story::{
    self, CustomerInfo, Dataset, Deal, Outcome, RepInfo, Stage, Step, UNKNOWN_CUSTOMER,
};
use super::table::{ReadOptions, Table};
use super::Problems;

const SOURCE: &str = "hubspot";

const DEALS: [&str; 8] = [
    "Record ID",
    "Deal Name",
    "Deal Stage",
    "Amount",
    "Create Date",
    "Close Date",
    "Deal owner",
    "Associated Company",
];

/// HubSpot's default probabilities of its default sales pipeline, by stage id.
const DEFAULT_PROBABILITY: [(&str, f64); 5] = [
    ("appointment_scheduled", 0.2),
    ("qualified_to_buy", 0.4),
    ("presentation_scheduled", 0.6),
    ("decision_maker_bought_in", 0.8),
    ("contract_sent", 0.9),
];

/// A `Date entered "…"` column: its index and the stage it dates.
struct Entered {
    column: usize,
    stage: String,
}

pub(super) fn read(tables: Vec<Table>, opts: &ReadOptions, problems: &mut Problems) -> Dataset {
    let mut data = Dataset {
        source: SOURCE.into(),
        ..Dataset::default()
    };
    let mut order: Vec<String> = Vec::new();
    let mut deals: Vec<(Deal, Stage)> = Vec::new();
    let mut seen: HashMap<String, (std::sync::Arc<str>, u64)> = HashMap::new();
    for mut t in tables {
        let cols = match t.columns(DEALS, "a HubSpot deals export") {
            Ok(c) => c,
            Err(p) => {
                problems.push(p);
                continue;
            }
        };
        let [id, name, stage, amount, created, close, owner, company] = cols;
        let lost_reason = t.column("Closed Lost Reason");
        let won_reason = t.column("Closed Won Reason");
        let currency = t
            .column("Deal currency code")
            .or_else(|| t.column("Currency"));
        let entered: Vec<Entered> = t
            .headers
            .iter()
            .enumerate()
            .filter_map(|(column, h)| entered_stage(h).map(|stage| Entered { column, stage }))
            .collect();
        for e in &entered {
            if outcome_of(&e.stage).is_none() && !order.contains(&e.stage) {
                order.push(e.stage.clone());
            }
        }
        let time = |s: &str| cells::time(s, &opts.date_formats, opts.utc_offset);
        t.for_each_row(problems, |r| {
            data.rows += 1;
            let deal_id = r.parse(id, cells::entity_id)?;
            if let Some((file, line)) =
                seen.insert(deal_id.clone(), (std::sync::Arc::clone(r.table), r.line))
            {
                return Err(r.problem(
                    id,
                    format!("deal {deal_id} already appears in {file}, line {line}"),
                ));
            }
            let current_name = r.required(stage)?;
            if outcome_of(current_name).is_none() && !order.iter().any(|s| s == current_name) {
                order.push(current_name.to_string());
            }
            let current = stage_of(current_name);
            let lost = r.opt(lost_reason).map(str::to_string);
            let won = r.opt(won_reason).map(str::to_string);
            let mut steps = Vec::new();
            for e in &entered {
                if r.get(e.column).is_empty() {
                    continue;
                }
                let stage = stage_of(&e.stage);
                steps.push(Step {
                    key: format!("entered/{}", cells::stage_id(&e.stage)),
                    at: r.parse(e.column, time)?,
                    origin: r.origin(),
                    reason: match stage {
                        Stage::Won => won.clone(),
                        Stage::Lost => lost.clone(),
                        Stage::Open(_) => None,
                    },
                    stage: Some(stage),
                    amount: None,
                });
            }
            let amount: Money = r.parse(amount, cells::amount)?;
            let close_at = r
                .opt(Some(close))
                .map(|_| r.parse(close, time))
                .transpose()?;
            let outcome = match current {
                Stage::Open(_) => None,
                ref o => Some(Outcome {
                    won: *o == Stage::Won,
                    at: close_at.ok_or_else(|| {
                        r.problem(close, "is empty: a closed deal needs its close date")
                    })?,
                    amount,
                    reason: if *o == Stage::Won { won } else { lost },
                    origin: r.origin(),
                }),
            };
            let owner_name = r.get(owner);
            let rep = if owner_name.is_empty() {
                "unassigned".to_string()
            } else {
                cells::slug(owner_name)
            };
            data.rep(&rep, || RepInfo {
                name: if owner_name.is_empty() {
                    "Unassigned".into()
                } else {
                    owner_name.to_string()
                },
                team: SOURCE.into(),
                manager: None,
            });
            let company_name = r.get(company);
            let customer = if company_name.is_empty() {
                UNKNOWN_CUSTOMER.to_string()
            } else {
                cells::slug(company_name)
            };
            data.customer(&customer, || CustomerInfo {
                name: if company_name.is_empty() {
                    "Unknown account".into()
                } else {
                    company_name.to_string()
                },
                ..CustomerInfo::default()
            });
            let created_at = r.parse(created, time)?;
            let opening = story::take_opening(&mut steps);
            story::date_final_close(&mut steps, outcome.as_ref());
            let (stage, opened_at) = match opening {
                Some((stage, first)) => (stage, first.at.min(created_at)),
                None => (String::new(), created_at),
            };
            deals.push((
                Deal {
                    id: deal_id,
                    origin: r.origin(),
                    opened_at,
                    customer_id: customer,
                    owner: rep,
                    title: match r.get(name) {
                        "" => r.get(id).to_string(),
                        n => n.to_string(),
                    },
                    amount,
                    currency: r.opt(currency).map(str::to_uppercase),
                    stage,
                    expected_close: close_at
                        .filter(|_| matches!(current, Stage::Open(_)))
                        .map(|t| t.date_naive()),
                    products: None,
                    steps,
                    outcome,
                },
                current,
            ));
            Ok(())
        });
    }
    let pipeline = pipeline(&order);
    let first = pipeline
        .first()
        .map_or_else(|| "qualified".to_string(), |s| s.id.clone());
    for (mut deal, current) in deals {
        if deal.stage.is_empty() {
            deal.stage = match current {
                Stage::Open(s) if deal.steps.is_empty() => s,
                _ => first.clone(),
            };
        }
        data.deals.push(deal);
    }
    data.pipeline = (!pipeline.is_empty()).then_some(pipeline);
    data
}

/// The stage named by a `Date entered "Contract Sent (Sales Pipeline)"` header.
fn entered_stage(header: &str) -> Option<String> {
    let rest = header
        .strip_prefix("Date entered \"")
        .or_else(|| header.strip_prefix("Date entered “"))?;
    let inner = rest.trim_end_matches(['"', '”']);
    let stage = match inner.rfind(" (") {
        Some(i) if inner.ends_with(')') => &inner[..i],
        _ => inner,
    };
    Some(stage.trim().to_string())
}

fn outcome_of(name: &str) -> Option<Stage> {
    match cells::stage_id(name).as_str() {
        "closed_won" | "won" => Some(Stage::Won),
        "closed_lost" | "lost" => Some(Stage::Lost),
        _ => None,
    }
}

fn stage_of(name: &str) -> Stage {
    outcome_of(name).unwrap_or_else(|| Stage::Open(cells::stage_id(name)))
}

/// The open stages in order, one per id, with HubSpot's default or an even probability.
fn pipeline(order: &[String]) -> Vec<StageDef> {
    let mut ids = HashSet::new();
    let stages: Vec<(String, &String)> = order
        .iter()
        .map(|n| (cells::stage_id(n), n))
        .filter(|(id, _)| ids.insert(id.clone()))
        .collect();
    let n = stages.len() as f64;
    stages
        .into_iter()
        .enumerate()
        .map(|(i, (id, name))| StageDef {
            probability: DEFAULT_PROBABILITY.iter().find(|(d, _)| *d == id).map_or(
                ((i as f64 + 1.0) / (n + 1.0) * 100.0).round() / 100.0,
                |(_, p)| *p,
            ),
            id,
            name: name.clone(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn date_entered_headers_name_their_stage() {
        assert_eq!(
            entered_stage("Date entered \"Contract Sent (Sales Pipeline)\""),
            Some("Contract Sent".into())
        );
        assert_eq!(
            entered_stage("Date entered \"Closed won\""),
            Some("Closed won".into())
        );
        assert_eq!(entered_stage("Deal Stage"), None);
        assert_eq!(stage_of("Closed Won"), Stage::Won);
        assert_eq!(stage_of("Closed lost"), Stage::Lost);
    }
}
