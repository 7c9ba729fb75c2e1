//! Real-world data nobody here wrote: the Maven Analytics "CRM Sales Opportunities" set
//! (`../shared/data/maven-crm/`). The product's `maven` import profile
//! (`api::cli::import_csv`, whose module doc lists the set's flaws and what it does with them)
//! turns its rows into events; every event passes the domain's rules, and the reports'
//! figures are compared with figures computed directly from the CSV by plain counting in this
//! file.
//!
//! The mapping, restated for the counting below: a row with an engage date is a deal (the
//! 500 `Prospecting` rows without one are skipped), opened in `qualified` at the product's
//! list price; `Engaging` moves to `presentation`; `Won` closes with `close_value` and
//! `Lost` closes lost, both on the close date; reps are the agents.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use api::cli::import_csv::{map_files, Profile, ReadOptions, Source};
use chrono::{DateTime, NaiveDate, Utc};
use domain::rules::{check_batch, Context};
use domain::state::{OrgState, StreamState};
use domain::RecordedEvent;
use projections::ReadModel;
use serde_json::{json, Value};

fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/maven-crm")
}

fn csv(name: &str) -> Vec<Vec<String>> {
    let path = data_dir().join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.split(',').map(|f| f.trim().to_string()).collect())
        .collect()
}

/// A rep id from an agent's name, as the counting below names reps: lower case, spaces → `-`.
fn slug(name: &str) -> String {
    name.to_lowercase().replace(' ', "-")
}

fn day(s: &str, hour: u32) -> DateTime<Utc> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .unwrap()
        .and_hms_opt(hour, 0, 0)
        .unwrap()
        .and_utc()
}

struct Row {
    agent: String,
    product: String,
    stage: String,
    engage: String,
    close: String,
    value: String,
}

fn rows() -> Vec<Row> {
    csv("sales_pipeline.csv")
        .into_iter()
        .map(|f| Row {
            agent: f[1].clone(),
            product: f[2].clone(),
            stage: f[4].clone(),
            engage: f[5].clone(),
            close: f[6].clone(),
            value: f.get(7).cloned().unwrap_or_default(),
        })
        .collect()
}

fn list_prices() -> HashMap<String, i64> {
    csv("products.csv")
        .into_iter()
        .map(|f| (f[0].replace(' ', ""), f[2].parse().unwrap()))
        .collect()
}

/// The events of the product's `maven` profile as a log, every one checked by the domain's
/// rules on the way in; and how many rows the profile skipped.
fn log() -> (Vec<RecordedEvent>, usize) {
    let source = Source::Profile(Profile::Maven);
    let mapped = map_files(&source, &[data_dir()], &ReadOptions::default())
        .unwrap_or_else(|e| panic!("{}", e.message));
    assert!(mapped.problems.is_empty(), "{}", mapped.problems);
    let skipped = mapped.skipped.values().sum();
    let now = day("2018-01-01", 0);
    let mut org = OrgState::default();
    let mut states: HashMap<String, (u64, StreamState)> = HashMap::new();
    let mut log = Vec::new();
    for (i, m) in mapped.events().enumerate() {
        let (next_version, state) = states
            .get(&m.stream)
            .cloned()
            .unwrap_or((0, StreamState::Empty));
        let at = m.event.occurred_at.expect("imports date every event");
        let ev = RecordedEvent {
            id: m.event.id.expect("imports name every event"),
            stream: m.stream.clone(),
            event_type: m.event.event_type.clone(),
            version: next_version,
            position: i as u64 + 1,
            occurred_at: at,
            recorded_at: at,
            actor: m.event.actor.clone().unwrap_or_default(),
            data: m.event.data,
            metadata: m.event.metadata.unwrap_or_default(),
            schema_version: 1,
        };
        let customers = |id: &str| {
            states
                .get(&format!("customer-{id}"))
                .and_then(|(_, s)| s.as_customer().cloned())
        };
        let ctx = Context {
            org: &org,
            now,
            customers: &customers,
        };
        let after =
            check_batch(&ctx, &state, &m.stream, std::slice::from_ref(&ev)).unwrap_or_else(|r| {
                panic!("event {i} ({} on {}) refused: {r}", ev.event_type, m.stream)
            });
        if m.stream.starts_with("org-") {
            org.apply(&ev);
        }
        states.insert(m.stream, (next_version + 1, after));
        log.push(ev);
    }
    (log, skipped)
}

fn ratio4(n: usize, d: usize) -> Value {
    if d == 0 {
        Value::Null
    } else {
        json!(((n as f64 / d as f64) * 10_000.0).round() / 10_000.0)
    }
}

#[test]
fn maven_data_passes_the_rules_and_reports_match_plain_counting() {
    let (log, skipped) = log();
    assert_eq!(skipped, 500, "the Prospecting rows without an engage date");
    let model = ReadModel::rebuild(&log);
    let rows: Vec<Row> = rows()
        .into_iter()
        .filter(|r| !r.engage.is_empty())
        .collect();

    // Funnel over everything, against counting rows.
    let count = |stage: &str| rows.iter().filter(|r| r.stage == stage).count();
    let (won, lost, engaging) = (count("Won"), count("Lost"), count("Engaging"));
    assert_eq!((won, lost, engaging), (4238, 2473, 1589));
    let q: projections::funnel::FunnelParams = serde_json::from_value(json!({})).unwrap();
    let funnel =
        serde_json::to_value(projections::funnel::funnel(&model, &q.validate().unwrap())).unwrap();
    let all = &funnel["groups"][0];
    assert_eq!(all["opened"], json!(rows.len()));
    assert_eq!(all["won"], json!(won));
    assert_eq!(all["lost"], json!(lost));
    assert_eq!(all["open"], json!(engaging));
    assert_eq!(all["win_rate"], ratio4(won, won + lost));
    // Every deal entered `qualified`; those still engaging or won passed `presentation`.
    assert_eq!(all["stages"][0]["reached"], json!(rows.len()));
    assert_eq!(all["stages"][1]["reached"], json!(engaging + won));
    assert_eq!(all["stages"][0]["lost_here"], json!(lost));

    // Funnel by rep: each agent's won, lost and win rate.
    let q: projections::funnel::FunnelParams =
        serde_json::from_value(json!({"group_by": "rep"})).unwrap();
    let by_rep =
        serde_json::to_value(projections::funnel::funnel(&model, &q.validate().unwrap())).unwrap();
    let mut expected: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for r in &rows {
        let e = expected.entry(slug(&r.agent)).or_default();
        match r.stage.as_str() {
            "Won" => e.0 += 1,
            "Lost" => e.1 += 1,
            _ => {}
        }
    }
    let groups = by_rep["groups"].as_array().unwrap();
    assert_eq!(groups.len(), expected.len());
    for g in groups {
        let (w, l) = expected[g["key"].as_str().unwrap()];
        assert_eq!(
            (g["won"].clone(), g["lost"].clone()),
            (json!(w), json!(l)),
            "{}",
            g["key"]
        );
        assert_eq!(g["win_rate"], ratio4(w, w + l), "{}", g["key"]);
    }

    // Rep trends: deals won and won amount per agent per close month, over the 15 months.
    let q: projections::reps::RepsParams =
        serde_json::from_value(json!({"months": 15, "end": "2017-12"})).unwrap();
    let reps = serde_json::to_value(
        projections::reps::reps(&model, &q.validate().unwrap(), chrono::Utc::now()).unwrap(),
    )
    .unwrap();
    let mut won_by: HashMap<(String, String), (usize, i64)> = HashMap::new();
    for r in rows.iter().filter(|r| r.stage == "Won") {
        let e = won_by
            .entry((slug(&r.agent), r.close[..7].to_string()))
            .or_default();
        e.0 += 1;
        e.1 += r.value.parse::<i64>().unwrap();
    }
    let mut checked = 0;
    for rep in reps["reps"].as_array().unwrap() {
        let name = rep["rep"].as_str().unwrap().to_string();
        for s in rep["series"].as_array().unwrap() {
            let month = s["month"].as_str().unwrap().to_string();
            let (n, amount) = won_by
                .get(&(name.clone(), month.clone()))
                .copied()
                .unwrap_or_default();
            assert_eq!(s["deals_won"], json!(n), "{name} {month}");
            assert_eq!(
                s["won_amount"].as_f64().unwrap(),
                amount as f64,
                "{name} {month}"
            );
            checked += n;
        }
    }
    assert_eq!(
        checked, won,
        "every won deal is credited to one rep and month"
    );

    // Pipeline: the open deals (engaging) at their list prices, in `presentation`.
    let prices = list_prices();
    let open_amount: i64 = rows
        .iter()
        .filter(|r| r.stage == "Engaging")
        .map(|r| prices[&r.product.replace(' ', "")])
        .sum();
    let q: projections::pipeline::PipelineParams =
        serde_json::from_value(json!({"as_of": "2018-01-01T00:00:00Z"})).unwrap();
    let now = day("2018-01-01", 0);
    let pipeline = serde_json::to_value(
        projections::pipeline::pipeline(&model, &q.validate().unwrap(), now).unwrap(),
    )
    .unwrap();
    assert_eq!(pipeline["open_count"], json!(engaging));
    assert_eq!(
        pipeline["open_amount"].as_f64().unwrap(),
        open_amount as f64
    );
    let presentation = pipeline["stages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["stage"] == "presentation")
        .unwrap();
    assert_eq!(presentation["count"], json!(engaging));
    // weighted = amount × 0.25 (the default pipeline's presentation probability)
    assert_eq!(
        pipeline["forecast"].as_f64().unwrap(),
        open_amount as f64 * 0.25
    );
}
