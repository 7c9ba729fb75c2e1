//! The `salesforce` profile (SPEC §4): `Opportunity.csv` and, optionally,
//! `OpportunityHistory.csv`, recognised by their headers.
//!
//! - Deal id = the opportunity `Id`, customer = `AccountId` (named by `Account.Name` when the
//!   export has it; no account → the customer `unknown`), rep = `OwnerId` (named by
//!   `Owner.Name` when present; team `salesforce`).
//! - Stages: the names of every stage an opportunity is or was in, except the closed ones,
//!   ordered by probability (the history's `Probability`, else an optional `Probability`
//!   column of the opportunities, else Salesforce's default for its standard stage names; a
//!   stage with none comes last), with ids from `cells::stage_id`. Closed stages are those of
//!   opportunities with `IsClosed` (won when `IsWon`), and `Closed Won`/`Closed Lost`.
//! - With history: the first row (by `CreatedDate`) opens the deal with its stage and amount
//!   at the earlier of its time and the opportunity's `CreatedDate`; each later row is a step
//!   (stage change, amount change, close or reopening) at its `CreatedDate`, except that the
//!   close of a deal that is closed now is dated by its `CloseDate` (the date Salesforce's own
//!   reports count it in). Without history: the deal opens at `CreatedDate` in its current
//!   stage (the first stage when it is closed), and a closed one closes at `CloseDate`.
//! - `DealWon.amount` = the closing row's `Amount` (the opportunity's without history);
//!   `DealLost.reason` = an optional `Loss_Reason__c` column, else `unknown`.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use domain::events::StageDef;
use domain::money::Money;

use super::cells;
use super::story::{
    self, CustomerInfo, Dataset, Deal, Origin, Outcome, RepInfo, Stage, Step, UNKNOWN_CUSTOMER,
};
use super::table::{ReadOptions, Row, Table};
use super::{Problem, Problems};

const SOURCE: &str = "salesforce";

const OPPORTUNITY: [&str; 10] = [
    "Id",
    "AccountId",
    "OwnerId",
    "Name",
    "StageName",
    "Amount",
    "CloseDate",
    "CreatedDate",
    "IsClosed",
    "IsWon",
];
const HISTORY: [&str; 6] = [
    "OpportunityId",
    "StageName",
    "Amount",
    "Probability",
    "CloseDate",
    "CreatedDate",
];

/// Salesforce's default probabilities of its standard open stages (percent).
const DEFAULT_PROBABILITY: [(&str, f64); 10] = [
    ("Prospecting", 10.0),
    ("Qualification", 10.0),
    ("Needs Analysis", 20.0),
    ("Value Proposition", 50.0),
    ("Id. Decision Makers", 60.0),
    ("Perception Analysis", 70.0),
    ("Proposal/Price Quote", 75.0),
    ("Negotiation/Review", 90.0),
    ("Closed Won", 100.0),
    ("Closed Lost", 0.0),
];

struct Opportunity {
    id: String,
    origin: Origin,
    account: Option<String>,
    account_name: Option<String>,
    owner: String,
    owner_name: Option<String>,
    name: String,
    stage: String,
    amount: Money,
    close: DateTime<Utc>,
    created: DateTime<Utc>,
    closed: bool,
    won: bool,
    currency: Option<String>,
    lead_source: Option<String>,
    probability: Option<f64>,
    loss_reason: Option<String>,
}

struct HistoryRow {
    line: u64,
    stage: std::sync::Arc<str>,
    amount: Option<Money>,
    probability: Option<f64>,
    created: DateTime<Utc>,
}

pub(super) fn read(tables: Vec<Table>, opts: &ReadOptions, problems: &mut Problems) -> Dataset {
    let mut data = Dataset {
        source: SOURCE.into(),
        ..Dataset::default()
    };
    let (mut opportunities, mut history) = (None, None);
    for t in tables {
        let slot = if t.has("OpportunityId") {
            &mut history
        } else if t.has("StageName") && t.has("Id") {
            &mut opportunities
        } else {
            problems.push(unknown_file(&t));
            continue;
        };
        if let Some(first) = slot.replace(t) {
            let t = slot.as_ref().map_or("", |t| &t.name);
            problems.push(at_header(
                &first.name,
                format!("{t} is the same kind of export: give one of each"),
            ));
        }
    }
    let Some(mut opportunities) = opportunities else {
        problems.push(Problem {
            file: "(files)".into(),
            line: 0,
            column: None,
            why: "the salesforce profile needs Opportunity.csv (a file with Id and StageName columns)".into(),
        });
        return data;
    };
    // The two files are read side by side, the history on a thread of its own, and joined
    // once both are read.
    let history_file = history.as_ref().map(|h| h.name.clone());
    let (opps, history) = std::thread::scope(|scope| {
        let read = history.map(|mut h| {
            std::thread::Builder::new()
                .name("import-history".into())
                .spawn_scoped(scope, move || read_history(&mut h, opts))
        });
        let opps = read_opportunities(&mut opportunities, opts, problems, &mut data.rows);
        // A table holds its file's bytes: gone once read (the 1 M-row export's are 128 MB).
        drop(opportunities);
        // `Err`: no thread could be started, or it stopped unexpectedly.
        let history = read.map(|thread| thread.ok().and_then(|t| t.join().ok()).ok_or(()));
        (opps, history.transpose())
    });
    let Ok(history) = history else {
        problems.push(Problem {
            file: history_file.unwrap_or_else(|| "".into()),
            line: 0,
            column: None,
            why: "could not be read: a thread to read it could not be started or stopped \
                  unexpectedly"
                .into(),
        });
        return data;
    };
    let rows = match history {
        Some(history) => {
            data.rows += history.read;
            join_history(&opps, history, problems)
        }
        None => std::iter::repeat_with(Vec::new).take(opps.len()).collect(),
    };
    let stages = Stages::new(&opps, &rows);
    data.pipeline = stages.pipeline();
    let first = stages.first();
    // Sized once: growing it copied the deals made so far while the old copy was still held
    // (the 1 M-row export's deals are ~90 MB).
    data.deals.reserve_exact(opps.len());
    for (opp, history) in opps.into_iter().zip(rows) {
        let file = history_file
            .clone()
            .unwrap_or_else(|| opp.origin.file.clone());
        add_deal(&mut data, &stages, &first, opp, history, file);
    }
    data
}

fn unknown_file(t: &Table) -> Problem {
    at_header(
        &t.name,
        "is neither Opportunity.csv (Id, StageName, …) nor OpportunityHistory.csv (OpportunityId, StageName, …)".into(),
    )
}

fn at_header(file: &str, why: String) -> Problem {
    Problem {
        file: file.into(),
        line: 1,
        column: None,
        why,
    }
}

fn read_opportunities(
    t: &mut Table,
    opts: &ReadOptions,
    problems: &mut Problems,
    rows: &mut usize,
) -> Vec<Opportunity> {
    let c = match t.columns(OPPORTUNITY, "a Salesforce Opportunity export") {
        Ok(c) => c,
        Err(p) => {
            problems.push(p);
            return Vec::new();
        }
    };
    let [id, account, owner, name, stage, amount, close, created, is_closed, is_won] = c;
    let currency = t.column("CurrencyIsoCode");
    let lead_source = t.column("LeadSource");
    let account_name = t.column("Account.Name");
    let owner_name = t.column("Owner.Name");
    let probability = t.column("Probability");
    let loss_reason = t.column("Loss_Reason__c");
    let mut seen: HashMap<String, u64> = HashMap::new();
    let mut out = Vec::new();
    let time = |r: &Row, col| r.parse(col, |s| cells::time(s, &opts.date_formats, opts.utc_offset));
    t.for_each_row(problems, |r| {
        *rows += 1;
        let opp_id = r.parse(id, cells::entity_id)?;
        if let Some(line) = seen.insert(opp_id.clone(), r.line) {
            return Err(r.problem(
                id,
                format!("opportunity {opp_id} already appears on line {line}"),
            ));
        }
        let account = r
            .opt(Some(account))
            .map(|a| cells::entity_id(a).map_err(|why| r.problem(account, why)));
        out.push(Opportunity {
            id: opp_id,
            origin: r.origin(),
            account: account.transpose()?,
            account_name: r.opt(account_name).map(str::to_string),
            owner: r.required(owner)?.to_string(),
            owner_name: r.opt(owner_name).map(str::to_string),
            name: r.required(name)?.to_string(),
            stage: r.required(stage)?.to_string(),
            amount: r.parse(amount, cells::amount)?,
            close: time(r, close)?,
            created: time(r, created)?,
            closed: r.parse(is_closed, cells::flag)?,
            won: r.parse(is_won, cells::flag)?,
            currency: r.opt(currency).map(str::to_uppercase),
            lead_source: r.opt(lead_source).map(str::to_string),
            probability: probability
                .and_then(|p| r.opt(Some(p)).map(|_| r.parse(p, cells::percent)))
                .transpose()?,
            loss_reason: r.opt(loss_reason).map(str::to_string),
        });
        Ok(())
    });
    out
}

/// The history file read: its rows and their problems, in file order, the opportunity of
/// each still to be looked up (the two files are read side by side).
struct History {
    /// The rows that could be read, each with the opportunity id it names.
    rows: Vec<(Box<str>, HistoryRow)>,
    /// Rows read, those with a problem included.
    read: usize,
    problems: Problems,
    /// `OpportunityId`'s column and header, for a row naming no known opportunity.
    opp_column: (usize, String),
    file: std::sync::Arc<str>,
}

fn read_history(t: &mut Table, opts: &ReadOptions) -> History {
    let mut history = History {
        rows: Vec::new(),
        read: 0,
        problems: Problems::default(),
        opp_column: (1, "OpportunityId".into()),
        file: t.name.clone(),
    };
    let c = match t.columns(HISTORY, "a Salesforce OpportunityHistory export") {
        Ok(c) => c,
        Err(p) => {
            history.problems.push(p);
            return history;
        }
    };
    // CloseDate is required of the export but not used: the opportunity's counts.
    let [opp, stage, amount, probability, _close, created] = c;
    history.opp_column = (opp + 1, t.headers[opp].clone());
    // A few stage names, on a million rows: each kept once.
    let mut names: HashMap<String, std::sync::Arc<str>> = HashMap::new();
    let (rows, read) = (&mut history.rows, &mut history.read);
    t.for_each_row(&mut history.problems, |r| {
        *read += 1;
        let opp: Box<str> = r.required(opp)?.into();
        let name = r.required(stage)?;
        let stage = match names.get(name) {
            Some(n) => n.clone(),
            None => names.entry(name.to_string()).or_insert(name.into()).clone(),
        };
        let row = HistoryRow {
            line: r.line,
            stage,
            amount: r
                .opt(Some(amount))
                .map(|_| r.parse(amount, cells::amount))
                .transpose()?,
            probability: r
                .opt(Some(probability))
                .map(|_| r.parse(probability, cells::percent))
                .transpose()?,
            created: r.parse(created, |s| {
                cells::time(s, &opts.date_formats, opts.utc_offset)
            })?,
        };
        rows.push((opp, row));
        Ok(())
    });
    history
}

/// The history's rows by opportunity (in file order within each); a row naming no
/// opportunity of the export is a problem. The problems of the history file go after the
/// opportunities' in `problems`, in line order.
fn join_history(
    opps: &[Opportunity],
    history: History,
    problems: &mut Problems,
) -> Vec<Vec<HistoryRow>> {
    let History {
        rows,
        read: _,
        problems: mut read,
        opp_column,
        file,
    } = history;
    let index: HashMap<&str, usize> = opps
        .iter()
        .enumerate()
        .map(|(i, o)| (o.id.as_str(), i))
        .collect();
    let mut by_opp: Vec<Vec<HistoryRow>> =
        std::iter::repeat_with(Vec::new).take(opps.len()).collect();
    let mut unknown = Problems::default();
    for (opp, row) in rows {
        match index.get(&*opp) {
            Some(&i) => by_opp[i].push(row),
            None => unknown.push(Problem {
                file: file.clone(),
                line: row.line,
                column: Some(opp_column.clone()),
                why: format!("no opportunity {opp} in the Opportunity export"),
            }),
        }
    }
    read.merge_by_line(unknown);
    problems.append(read);
    by_opp
}

/// The stages of the export: which are closed (and won), the open ones in pipeline order.
struct Stages {
    closed: HashMap<String, bool>,
    /// Open stage name → (probability if known, id).
    open: BTreeMap<String, Option<f64>>,
    ids: HashMap<String, String>,
}

impl Stages {
    fn new(opps: &[Opportunity], history: &[Vec<HistoryRow>]) -> Stages {
        let mut closed: HashMap<String, bool> = HashMap::new();
        for o in opps.iter().filter(|o| o.closed) {
            closed.entry(o.stage.clone()).or_insert(o.won);
        }
        closed.entry("Closed Won".into()).or_insert(true);
        closed.entry("Closed Lost".into()).or_insert(false);
        let mut open: BTreeMap<String, Option<f64>> = BTreeMap::new();
        let mut see = |name: &str, p: Option<f64>| {
            if !closed.contains_key(name) {
                let e = open.entry(name.to_string()).or_insert(None);
                if e.is_none() {
                    *e = p;
                }
            }
        };
        for r in history.iter().flatten() {
            see(&r.stage, r.probability);
        }
        for o in opps {
            see(&o.stage, o.probability);
        }
        for (name, p) in open.iter_mut() {
            if p.is_none() {
                *p = DEFAULT_PROBABILITY
                    .iter()
                    .find(|(n, _)| n == name)
                    .map(|(_, p)| p / 100.0);
            }
        }
        let ids = open
            .keys()
            .chain(closed.keys())
            .map(|n| (n.clone(), cells::stage_id(n)))
            .collect();
        Stages { closed, open, ids }
    }

    /// The open stages by probability (unknown last), then name; one entry per stage id.
    fn pipeline(&self) -> Option<Vec<StageDef>> {
        let mut stages: Vec<(&String, &Option<f64>)> = self.open.iter().collect();
        stages.sort_by(|a, b| {
            let key = |p: &Option<f64>| p.unwrap_or(f64::INFINITY);
            key(a.1).total_cmp(&key(b.1)).then_with(|| a.0.cmp(b.0))
        });
        let mut out: Vec<StageDef> = Vec::new();
        for (name, p) in stages {
            let id = self.ids[name].clone();
            if !out.iter().any(|s| s.id == id) {
                out.push(StageDef {
                    id,
                    name: name.clone(),
                    probability: p.unwrap_or(0.0),
                });
            }
        }
        (!out.is_empty()).then_some(out)
    }

    /// The stage a deal opens in when the export does not say (the pipeline's first).
    fn first(&self) -> String {
        self.pipeline()
            .and_then(|p| p.into_iter().next())
            .map_or_else(|| "qualified".to_string(), |s| s.id)
    }

    fn stage(&self, name: &str) -> Stage {
        match self.closed.get(name) {
            Some(true) => Stage::Won,
            Some(false) => Stage::Lost,
            None => Stage::Open(
                self.ids
                    .get(name)
                    .cloned()
                    .unwrap_or_else(|| cells::stage_id(name)),
            ),
        }
    }
}

fn add_deal(
    data: &mut Dataset,
    stages: &Stages,
    first: &str,
    opp: Opportunity,
    history: Vec<HistoryRow>,
    history_file: std::sync::Arc<str>,
) {
    let customer = opp
        .account
        .clone()
        .unwrap_or_else(|| UNKNOWN_CUSTOMER.into());
    data.customer(&customer, || CustomerInfo {
        name: match &opp.account {
            Some(a) => opp.account_name.clone().unwrap_or_else(|| a.clone()),
            None => "Unknown account".into(),
        },
        source: opp.lead_source.clone(),
        ..CustomerInfo::default()
    });
    data.rep(&opp.owner, || RepInfo {
        name: opp.owner_name.clone().unwrap_or_else(|| opp.owner.clone()),
        team: SOURCE.into(),
        manager: None,
    });
    let outcome = opp.closed.then(|| Outcome {
        won: opp.won,
        at: opp.close,
        amount: opp.amount,
        reason: opp.loss_reason.clone().filter(|_| !opp.won),
        origin: opp.origin.clone(),
    });
    let mut steps: Vec<Step> = history
        .into_iter()
        .map(|h| {
            let stage = stages.stage(&h.stage);
            let cents = h.amount.map_or("-".to_string(), |m| m.cents().to_string());
            Step {
                key: format!(
                    "history/{}/{}/{cents}",
                    h.created.to_rfc3339(),
                    stages.ids[&*h.stage]
                ),
                at: h.created,
                origin: Origin {
                    file: history_file.clone(),
                    line: h.line,
                },
                reason: opp.loss_reason.clone().filter(|_| stage == Stage::Lost),
                stage: Some(stage),
                amount: h.amount,
            }
        })
        .collect();
    let opening = story::take_opening(&mut steps);
    story::date_final_close(&mut steps, outcome.as_ref());
    let (stage, amount, opened_at, expected_close) = match (opening, stages.stage(&opp.stage)) {
        (Some((stage, first)), _) => (
            stage,
            first.amount.unwrap_or(opp.amount),
            first.at.min(opp.created),
            None,
        ),
        (None, Stage::Open(stage)) if steps.is_empty() => {
            (stage, opp.amount, opp.created, Some(opp.close.date_naive()))
        }
        (None, _) => (first.to_string(), opp.amount, opp.created, None),
    };
    data.deals.push(Deal {
        id: opp.id,
        origin: opp.origin,
        opened_at,
        customer_id: customer,
        owner: opp.owner,
        title: opp.name,
        amount,
        currency: opp.currency,
        stage,
        expected_close,
        products: None,
        steps,
        outcome,
    });
}
