//! Organisation B — "Gaolaozhuang": a custom pipeline (lead .2, demo .5, contract .8), two reps
//! of team north, a reassigned deal, a deal lost then reopened and won, team and rep targets,
//! February–April 2026. Figures worked out by hand below.
//!
//! The log (position: date, stream, event):
//!  1 01-01 PipelineDefined lead/demo/contract      2 01-01 RepJoined sha (Sha Wujing, north)
//!  3 01-01 RepJoined long (Bai Long, north)          4 01-01 TargetSet team north 2026-04 200000
//!  5 01-01 TargetSet rep sha 2026-04 50000           6 01-02 C1 registered (agri, owner sha)
//!  7 01-02 C2 registered (fishing, owner long)
//!  8 02-01 E1 opened C1 sha 10000 lead              9 02-02 F1 opened C2 long 8000 lead
//! 10 02-03 F2 opened C2 long 8000 lead             11 02-03 C1 call sha (customer stream)
//! 12 02-04 C2 meeting long                         13 02-05 E1 lead→demo
//! 14 02-05 F1 won 8000                             15 02-11 E1 won 10000
//! 16 02-13 F2 won 8000                             17 02-20 E2 opened C1 sha 20000 lead
//! 18 03-01 E3 opened C2 long 30000 lead            19 03-02 E2 won 20000
//! 20 03-03 F5 opened C2 long 20000 lead            21 03-05 E3 reassigned long→sha
//! 22 03-05 F5 lead→contract                        23 03-10 E6 opened C1 sha 150000 lead
//! 24 03-12 E6 email sha                            25 03-15 E6 competitor Baigujing
//! 26 03-15 F5 lost price, competitor Baigujing     27 03-20 E6 lost timing
//! 28 03-21 E3 won 30000 (owner now sha)            29 04-01 E4 opened C1 sha 5000 lead
//! 30 04-01 E5 opened C1 sha 5000 lead              31 04-01 E6 reopened at demo
//! 32 04-02 F3 opened C2 long 1000 lead             33 04-02 F4 opened C2 long 1000 lead
//! 34 04-03 E4 won 5000                             35 04-04 F3 won 1000
//! 36 04-05 E5 won 5000                             37 04-11 E6 won 140000
//! 38 04-12 F4 won 1000                             39 04-20 E6 payment 70000
//! 40 03-02 E3 visit long — logged late

use projections::funnel::{funnel, FunnelParams};
use projections::l2c::lead_to_cash;
use projections::params::PeriodParams;
use projections::pipeline::{pipeline, PipelineParams};
use projections::replay::replay;
use projections::reps::{reps, RepsParams};
use projections::winloss::win_loss;
use projections::{activity, ReadModel};
use replay_tests::{t, LogBuilder};
use serde_json::{json, Value};

fn org_b() -> LogBuilder {
    let mut b = LogBuilder::new();
    let open = |c: &str, o: &str, amount: f64| json!({"customer_id": c, "owner": o, "title": "order", "amount": amount, "stage": "lead"});
    let won = |amount: f64| json!({"amount": amount});
    let act = |kind: &str, rep: &str| json!({"kind": kind, "rep": rep});
    let d = |day: &str| format!("2026-{day}T00:00:00Z");
    let mut e = |day: &str, stream: &str, ty: &str, actor: &str, data: Value| {
        b.ev(&d(day), stream, ty, actor, data);
    };
    e(
        "01-01",
        "org-main",
        "PipelineDefined",
        "admin",
        json!({"stages": [
        {"id": "lead", "name": "Lead", "probability": 0.2},
        {"id": "demo", "name": "Demo", "probability": 0.5},
        {"id": "contract", "name": "Contract", "probability": 0.8}]}),
    );
    e(
        "01-01",
        "org-main",
        "RepJoined",
        "admin",
        json!({"rep": "sha", "name": "Sha Wujing", "team": "north"}),
    );
    e(
        "01-01",
        "org-main",
        "RepJoined",
        "admin",
        json!({"rep": "long", "name": "Bai Long", "team": "north"}),
    );
    e(
        "01-01",
        "org-main",
        "TargetSet",
        "admin",
        json!({"team": "north", "month": "2026-04", "amount": 200000.0}),
    );
    e(
        "01-01",
        "org-main",
        "TargetSet",
        "admin",
        json!({"rep": "sha", "month": "2026-04", "amount": 50000.0}),
    );
    e(
        "01-02",
        "customer-C1",
        "CustomerRegistered",
        "sha",
        json!({"name": "Pigsy Farms", "industry": "agri", "owner": "sha"}),
    );
    e(
        "01-02",
        "customer-C2",
        "CustomerRegistered",
        "long",
        json!({"name": "River Co", "industry": "fishing", "owner": "long"}),
    );
    e(
        "02-01",
        "deal-E1",
        "DealOpened",
        "sha",
        open("C1", "sha", 10000.0),
    );
    e(
        "02-02",
        "deal-F1",
        "DealOpened",
        "long",
        open("C2", "long", 8000.0),
    );
    e(
        "02-03",
        "deal-F2",
        "DealOpened",
        "long",
        open("C2", "long", 8000.0),
    );
    e(
        "02-03",
        "customer-C1",
        "ActivityLogged",
        "sha",
        act("call", "sha"),
    );
    e(
        "02-04",
        "customer-C2",
        "ActivityLogged",
        "long",
        act("meeting", "long"),
    );
    e(
        "02-05",
        "deal-E1",
        "DealStageChanged",
        "sha",
        json!({"from": "lead", "to": "demo"}),
    );
    e("02-05", "deal-F1", "DealWon", "long", won(8000.0));
    e("02-11", "deal-E1", "DealWon", "sha", won(10000.0));
    e("02-13", "deal-F2", "DealWon", "long", won(8000.0));
    e(
        "02-20",
        "deal-E2",
        "DealOpened",
        "sha",
        open("C1", "sha", 20000.0),
    );
    e(
        "03-01",
        "deal-E3",
        "DealOpened",
        "long",
        open("C2", "long", 30000.0),
    );
    e("03-02", "deal-E2", "DealWon", "sha", won(20000.0));
    e(
        "03-03",
        "deal-F5",
        "DealOpened",
        "long",
        open("C2", "long", 20000.0),
    );
    e(
        "03-05",
        "deal-E3",
        "DealReassigned",
        "admin",
        json!({"from": "long", "to": "sha"}),
    );
    e(
        "03-05",
        "deal-F5",
        "DealStageChanged",
        "long",
        json!({"from": "lead", "to": "contract"}),
    );
    e(
        "03-10",
        "deal-E6",
        "DealOpened",
        "sha",
        open("C1", "sha", 150000.0),
    );
    e(
        "03-12",
        "deal-E6",
        "ActivityLogged",
        "sha",
        act("email", "sha"),
    );
    e(
        "03-15",
        "deal-E6",
        "CompetitorNoted",
        "sha",
        json!({"competitor": "Baigujing"}),
    );
    e(
        "03-15",
        "deal-F5",
        "DealLost",
        "long",
        json!({"reason": "price", "competitor": "Baigujing"}),
    );
    e(
        "03-20",
        "deal-E6",
        "DealLost",
        "sha",
        json!({"reason": "timing"}),
    );
    e("03-21", "deal-E3", "DealWon", "sha", won(30000.0));
    e(
        "04-01",
        "deal-E4",
        "DealOpened",
        "sha",
        open("C1", "sha", 5000.0),
    );
    e(
        "04-01",
        "deal-E5",
        "DealOpened",
        "sha",
        open("C1", "sha", 5000.0),
    );
    e(
        "04-01",
        "deal-E6",
        "DealReopened",
        "sha",
        json!({"stage": "demo"}),
    );
    e(
        "04-02",
        "deal-F3",
        "DealOpened",
        "long",
        open("C2", "long", 1000.0),
    );
    e(
        "04-02",
        "deal-F4",
        "DealOpened",
        "long",
        open("C2", "long", 1000.0),
    );
    e("04-03", "deal-E4", "DealWon", "sha", won(5000.0));
    e("04-04", "deal-F3", "DealWon", "long", won(1000.0));
    e("04-05", "deal-E5", "DealWon", "sha", won(5000.0));
    e("04-11", "deal-E6", "DealWon", "sha", won(140000.0));
    e("04-12", "deal-F4", "DealWon", "long", won(1000.0));
    e(
        "04-20",
        "deal-E6",
        "PaymentReceived",
        "finance",
        json!({"amount": 70000.0}),
    );
    e(
        "03-02",
        "deal-E3",
        "ActivityLogged",
        "long",
        act("visit", "long"),
    );
    b
}

fn model() -> ReadModel {
    let b = org_b();
    assert_eq!(b.events().len(), 40);
    ReadModel::rebuild(b.events())
}

fn v<T: serde::Serialize>(x: &T) -> Value {
    serde_json::to_value(x).unwrap()
}

fn q<T: serde::de::DeserializeOwned>(s: &str) -> T {
    serde_urlencoded::from_str(s).unwrap_or_else(|e| panic!("{s}: {e}"))
}

/// One row of a rep's series, in the SPEC's field order (a table row, hence the arity).
#[allow(clippy::too_many_arguments)]
fn month(
    m: &str,
    opened: u32,
    won: u32,
    won_amount: f64,
    lost: u32,
    big: u32,
    active: u32,
    acts: Value,
    rate: Value,
    avg: Value,
    cycle: Value,
) -> Value {
    json!({"month": m, "deals_opened": opened, "deals_won": won, "won_amount": won_amount,
        "deals_lost": lost, "big_deals_lost": big, "active_customers": active, "activities": acts,
        "win_rate": rate, "avg_won_amount": avg, "median_cycle_days": cycle})
}

/// months=3, end=2026-04 → Feb, Mar, Apr. Opened deals go to the opener (E3 → long);
/// wins/losses to the owner at the time (E3 won by sha after the reassignment).
/// sha  Feb: opened E1 E2; won E1 10000 (cycle 02-01→11 = 10); call on C1 → 1 customer.
///      Mar: opened E6; won E2 20000 (02-20→03-02 = 10 days, Feb has 28), E3 30000
///           (03-01→21 = 20) → 50000, avg 25000, median cycle 15; lost E6 (150000 ≥ 100000:
///           big); win_rate 2/3 = 0.6667; email on E6 (C1) → 1 customer.
///      Apr: opened E4 E5; won E4 5000 (2 days), E5 5000 (4), E6 140000 (03-10→04-11 = 32)
///           → 150000, avg 50000, median cycle 4; no activity.
/// long Feb: opened F1 F2; won both 8000 + 8000 = 16000, avg 8000, cycles 3 and 10 → 6.5;
///           meeting on C2.
///      Mar: opened E3 F5; lost F5 (20000, not big) → win_rate 0/1 = 0.0; visit on E3 (C2,
///           logged late but counted in March).
///      Apr: opened F3 F4; won both 1000 + 1000, avg 1000, cycles 2 and 10 → 6.0.
/// Trend (deals_won, window 3): sha [1, 2, 3]: m = 2, |1 − 2| = 1 > 0.2, strictly increasing
/// → improving. long [2, 0, 2]: m = 4/3, |0 − 4/3| > 0.133, neither → volatile.
#[test]
fn rep_trends() {
    let m = model();
    let p: RepsParams = q("months=3&end=2026-04");
    let r = reps(&m, &p.validate().unwrap(), chrono::Utc::now()).unwrap();
    assert_eq!(
        v(&r),
        json!({"currency": "CNY", "end": "2026-04", "partial": false, "months": ["2026-02", "2026-03", "2026-04"], "metric": "deals_won", "window": 3, "big_deal_amount": 100000.0,
        "reps": [
            {"rep": "long", "name": "Bai Long", "team": "north", "trend": "volatile", "series": [
                month("2026-02", 2, 2, 16000.0, 0, 0, 1, json!({"meeting": 1}), json!(1.0), json!(8000.0), json!(6.5)),
                month("2026-03", 2, 0, 0.0, 1, 0, 1, json!({"visit": 1}), json!(0.0), json!(null), json!(null)),
                month("2026-04", 2, 2, 2000.0, 0, 0, 0, json!({}), json!(1.0), json!(1000.0), json!(6.0))]},
            {"rep": "sha", "name": "Sha Wujing", "team": "north", "trend": "improving", "series": [
                month("2026-02", 2, 1, 10000.0, 0, 0, 1, json!({"call": 1}), json!(1.0), json!(10000.0), json!(10.0)),
                month("2026-03", 1, 2, 50000.0, 1, 1, 1, json!({"email": 1}), json!(0.6667), json!(25000.0), json!(15.0)),
                month("2026-04", 2, 3, 150000.0, 0, 0, 0, json!({}), json!(1.0), json!(50000.0), json!(4.0))]}
        ]})
    );
    let trend = |metric: &str| {
        let p: RepsParams = q(&format!("months=3&end=2026-04&metric={metric}"));
        reps(&m, &p.validate().unwrap(), chrono::Utc::now())
            .unwrap()
            .reps
            .iter()
            .map(|x| v(&x.trend))
            .collect::<Vec<_>>()
    };
    // median_cycle_days: long [6.5, null, 6.0] → [6.5, 6.0], m = 6.25, deviations 0.25 ≤ 0.625
    // → stable; sha [10, 15, 4] → volatile.
    assert_eq!(
        trend("median_cycle_days"),
        [json!("stable"), json!("volatile")]
    );
    // deals_opened: long [2, 2, 2] → stable; sha [2, 1, 2] → m = 5/3, not within 10 % → volatile.
    assert_eq!(trend("deals_opened"), [json!("stable"), json!("volatile")]);
    // won_amount: long [16000, 0, 2000] → volatile; sha [10000, 50000, 150000] → improving.
    assert_eq!(trend("won_amount"), [json!("volatile"), json!("improving")]);
    // activities (total): both [1, 1, 0] → m = 2/3, |0 − 2/3| > 0.067, not strict → volatile.
    assert_eq!(trend("activities"), [json!("volatile"), json!("volatile")]);
}

/// Cohort Feb 1 – May 1: all 11 deals. Final status: 10 won (E6 won after its reopen), F5 lost.
/// win_rate 10/11 = 0.9091. Won deals reach every stage; F5 reached contract (skipping demo)
/// → reached 11, 11, 11; conversion 1.0, 1.0, contract 10/11 = 0.9091.
/// Ended lead visits: E1 4 (02-01→05), E2 10, E3 20, E4 2, E5 4, E6 10 (03-10→20, lost),
/// F1 3, F2 10, F3 2, F4 10, F5 2 → sorted 2 2 2 3 4 4 10 10 10 10 20: median 4 (6th),
/// p90 rank ⌈9.9⌉ = 10 → 10. demo: E1 6 (02-05→11), E6 10 (04-01→11) → median 8, p90 10.
/// contract: F5 10 (03-05→15). lost_here: F5 at contract (E6's loss at lead is not final).
#[test]
fn funnel_with_a_custom_pipeline() {
    let m = model();
    let p: FunnelParams = q("from=2026-02-01T00:00:00Z&to=2026-05-01T00:00:00Z");
    assert_eq!(
        v(&funnel(&m, &p.validate().unwrap()))["groups"],
        json!([{"key": "all", "opened": 11, "won": 10, "lost": 1, "open": 0, "win_rate": 0.9091, "stages": [
            {"stage": "lead", "reached": 11, "conversion_to_next": 1.0, "median_days_in_stage": 4.0, "p90_days_in_stage": 10.0, "lost_here": 0},
            {"stage": "demo", "reached": 11, "conversion_to_next": 1.0, "median_days_in_stage": 8.0, "p90_days_in_stage": 10.0, "lost_here": 0},
            {"stage": "contract", "reached": 11, "conversion_to_next": 0.9091, "median_days_in_stage": 10.0, "p90_days_in_stage": 10.0, "lost_here": 1}]}])
    );
}

/// Same cohort as of 03-25: E1 E2 E3 E6 F1 F2 F5 exist (E4 E5 F3 F4 open in April).
/// Won E1 E2 E3 F1 F2 = 5; lost E6 (at lead, then) and F5 = 2 → win_rate 5/7 = 0.7143.
/// reached: lead 7; demo 6 (not E6); contract 6 → conversion 6/7 = 0.8571, 1.0, 5/6 = 0.8333.
/// lead visits: E1 4, E2 10, E3 20, E6 10, F1 3, F2 10, F5 2 → 2 3 4 10 10 10 20: median 10,
/// p90 rank ⌈6.3⌉ = 7 → 20. demo: E1 6. contract: F5 10. lost_here: lead 1, contract 1.
#[test]
fn funnel_as_of() {
    let m = model();
    let p: FunnelParams =
        q("from=2026-02-01T00:00:00Z&to=2026-05-01T00:00:00Z&as_of=2026-03-25T00:00:00Z");
    assert_eq!(
        v(&funnel(&m, &p.validate().unwrap()))["groups"],
        json!([{"key": "all", "opened": 7, "won": 5, "lost": 2, "open": 0, "win_rate": 0.7143, "stages": [
            {"stage": "lead", "reached": 7, "conversion_to_next": 0.8571, "median_days_in_stage": 10.0, "p90_days_in_stage": 20.0, "lost_here": 1},
            {"stage": "demo", "reached": 6, "conversion_to_next": 1.0, "median_days_in_stage": 6.0, "p90_days_in_stage": 6.0, "lost_here": 0},
            {"stage": "contract", "reached": 6, "conversion_to_next": 0.8333, "median_days_in_stage": 10.0, "p90_days_in_stage": 10.0, "lost_here": 1}]}])
    );
}

/// as_of 04-01T12: open E4 (lead 5000), E5 (lead 5000), E6 (reopened at demo, 150000 — the
/// loss did not change the amount). lead: 2, 10000, ×.2 = 2000; demo: 1, 150000, ×.5 = 75000;
/// forecast 77000; open 160000. April target: no org-wide one, team north 200000 (the rep
/// target is not added when a team target exists) → coverage 160000/200000 = 0.8.
/// Nothing won in April yet. All touched on 04-01 → not stale, not stuck.
/// Top: E6, then E4 and E5 (equal, by id). Leaderboard: only sha (long has nothing open or won).
#[test]
fn pipeline_with_team_target() {
    let m = model();
    let p: PipelineParams = q("as_of=2026-04-01T12:00:00Z");
    let r = pipeline(&m, &p.validate().unwrap(), t("2026-12-31T00:00:00Z")).unwrap();
    assert_eq!(
        v(&r),
        json!({"currency": "CNY", "as_of": "2026-04-01T12:00:00Z", "open_count": 3, "open_amount": 160000.0,
            "forecast": 77000.0, "won_this_month": 0.0, "coverage": 0.8,
            "stages": [{"stage": "lead", "name": "Lead", "count": 2, "amount": 10000.0, "weighted": 2000.0},
                       {"stage": "demo", "name": "Demo", "count": 1, "amount": 150000.0, "weighted": 75000.0},
                       {"stage": "contract", "name": "Contract", "count": 0, "amount": 0.0, "weighted": 0.0}],
            "stale": [], "stuck": [],
            "top": [{"deal_id": "E6", "owner": "sha", "stage": "demo", "amount": 150000.0},
                    {"deal_id": "E4", "owner": "sha", "stage": "lead", "amount": 5000.0},
                    {"deal_id": "E5", "owner": "sha", "stage": "lead", "amount": 5000.0}],
            "leaderboard": [{"rep": "sha", "won_amount": 0.0, "deals_won": 0, "open_amount": 160000.0}]})
    );
    // as_of 03-31: nothing open; March wins E2 20000 + E3 30000 (sha) = 50000; no March target.
    let p: PipelineParams = q("as_of=2026-03-31T00:00:00Z");
    let r = v(&pipeline(&m, &p.validate().unwrap(), t("2026-12-31T00:00:00Z")).unwrap());
    assert_eq!(
        (
            r["open_count"].clone(),
            r["won_this_month"].clone(),
            r["coverage"].clone()
        ),
        (json!(0), json!(50000.0), json!(null))
    );
    assert_eq!(
        r["leaderboard"],
        json!([{"rep": "sha", "won_amount": 50000.0, "deals_won": 2, "open_amount": 0.0}])
    );
}

/// Feb–Apr: final closes 10 won (10000+20000+30000+5000+5000+140000+8000+8000+1000+1000 =
/// 228000), 1 lost (F5 20000, price) → 10/11 = 0.9091. Baigujing: noted on E6 (won) and F5
/// (lost to it) → noted 2, won 1, lost_to 1, win_rate 0.5.
/// March only: finals E2 won, E3 won, F5 lost (E6's March loss is superseded by its April win).
#[test]
fn win_loss_feb_to_april() {
    let m = model();
    let p: PeriodParams = q("from=2026-02-01T00:00:00Z&to=2026-05-01T00:00:00Z");
    assert_eq!(
        v(&win_loss(&m, &p.validate().unwrap()).unwrap()),
        json!({"currency": "CNY", "from": "2026-02-01T00:00:00Z", "to": "2026-05-01T00:00:00Z",
            "closed": 11, "won": 10, "lost": 1, "win_rate": 0.9091,
            "won_amount": 228000.0, "lost_amount": 20000.0,
            "by_reason": [{"reason": "price", "count": 1, "amount": 20000.0}],
            "by_competitor": [{"competitor": "Baigujing", "lost_to": 1, "noted": 2, "won": 1, "win_rate": 0.5}]})
    );
    let p: PeriodParams = q("from=2026-03-01T00:00:00Z&to=2026-04-01T00:00:00Z");
    let r = v(&win_loss(&m, &p.validate().unwrap()).unwrap());
    assert_eq!(
        (
            r["closed"].clone(),
            r["won"].clone(),
            r["win_rate"].clone(),
            r["won_amount"].clone()
        ),
        (json!(3), json!(2), json!(0.6667), json!(50000.0))
    );
    assert_eq!(
        r["by_competitor"],
        json!([{"competitor": "Baigujing", "lost_to": 1, "noted": 1, "won": 0, "win_rate": 0.0}])
    );
}

/// Feb–Apr: won 10 (228000, avg 22800), lost 1 → 0.9091. Received: E6 70000 →
/// 70000/228000 = 0.30701… → 0.307. Cycles 10 10 20 2 4 32 3 10 2 10 → sorted
/// 2 2 3 4 10 10 10 10 20 32 → (10 + 10)/2 = 10.0. Activities on won deals' streams:
/// E6 email + E3 visit = 2 → 2/10 = 0.2.
#[test]
fn lead_to_cash_feb_to_april() {
    let m = model();
    let p: PeriodParams = q("from=2026-02-01T00:00:00Z&to=2026-05-01T00:00:00Z");
    assert_eq!(
        v(&lead_to_cash(&m, &p.validate().unwrap()).unwrap()),
        json!({"currency": "CNY", "from": "2026-02-01T00:00:00Z", "to": "2026-05-01T00:00:00Z",
            "leads": 0, "converted_leads": 0, "lead_conversion_rate": null,
            "deals_won": 10, "deals_lost": 1, "win_rate": 0.9091,
            "won_amount": 228000.0, "avg_won_amount": 22800.0, "received": 70000.0,
            "collection_ratio": 0.307, "median_sales_cycle_days": 10.0,
            "activities_per_won_deal": 0.2})
    );
}

/// ISO weeks (Monday start): W06 02-02, W07 02-09, W10 03-02, W11 03-09, W12 03-16,
/// W14 03-30, W15 04-06.
/// long: W06 meeting (02-04) + win F1 (02-05) → 1/1 = 1.0; W07 win F2 → 0/1 = 0.0;
///       W10 visit on E3 (late-logged, 03-02); W14 win F3 (04-04); W15 win F4 (04-12).
/// sha:  W06 call (02-03); W07 win E1 (02-11); W10 win E2 (03-02); W11 email (03-12);
///       W12 win E3 (03-21); W14 wins E4 (04-03), E5 (04-05); W15 win E6 (04-11).
#[test]
fn activity_by_week() {
    let m = model();
    let p: PeriodParams = q("from=2026-02-01T00:00:00Z&to=2026-05-01T00:00:00Z");
    let row = |rep: &str, w: u32, start: &str, acts: Value, total: u32, won: u32, per: Value| {
        json!({"rep": rep, "week": format!("2026-W{w:02}"), "week_start": start, "activities": acts,
            "total": total, "deals_won": won, "activities_per_won_deal": per})
    };
    let none = || json!({});
    assert_eq!(
        v(&activity::activity(&m, &p.validate().unwrap()))["rows"],
        json!([
            row(
                "long",
                6,
                "2026-02-02",
                json!({"meeting": 1}),
                1,
                1,
                json!(1.0)
            ),
            row("long", 7, "2026-02-09", none(), 0, 1, json!(0.0)),
            row(
                "long",
                10,
                "2026-03-02",
                json!({"visit": 1}),
                1,
                0,
                json!(null)
            ),
            row("long", 14, "2026-03-30", none(), 0, 1, json!(0.0)),
            row("long", 15, "2026-04-06", none(), 0, 1, json!(0.0)),
            row(
                "sha",
                6,
                "2026-02-02",
                json!({"call": 1}),
                1,
                0,
                json!(null)
            ),
            row("sha", 7, "2026-02-09", none(), 0, 1, json!(0.0)),
            row("sha", 10, "2026-03-02", none(), 0, 1, json!(0.0)),
            row(
                "sha",
                11,
                "2026-03-09",
                json!({"email": 1}),
                1,
                0,
                json!(null)
            ),
            row("sha", 12, "2026-03-16", none(), 0, 1, json!(0.0)),
            row("sha", 14, "2026-03-30", none(), 0, 2, json!(0.0)),
            row("sha", 15, "2026-04-06", none(), 0, 1, json!(0.0)),
        ])
    );
}

/// E6: opened 03-10 (lead, 150000), email 03-12, Baigujing 03-15, lost 03-20 (timing),
/// reopened 04-01 at demo, won 04-11 (140000), paid 70000 on 04-20.
/// days_open 03-10→04-11 = 21 + 11 = 32.0; lead 10.0 (03-10→20), demo 10.0 (04-01→11).
/// Silence while open: 2, 3, 5, (lost: 03-20→04-01 not counted), 10, (won: not counted) → 10.0.
/// Last activity 03-12 → close 04-11 = 30.0. sha's other won deals: E1 (0 activities, 10 days),
/// E2 (0, 10), E3 (1: long's visit, 20), E4 (0, 2), E5 (0, 4) → count 5, median activities 0,
/// median days 2 4 10 10 20 → 10.0.
#[test]
fn replay_of_a_reopened_deal() {
    let m = model();
    let r = replay(&m, "E6", org_b().events(), t("2026-12-31T00:00:00Z")).unwrap();
    let summaries: Vec<&str> = r.steps.iter().map(|s| s.summary.as_str()).collect();
    assert_eq!(
        summaries,
        [
            "opened \"order\" at lead for 150000.00 by sha",
            "email by sha",
            "competitor noted: Baigujing",
            "lost: timing",
            "reopened at demo",
            "won for 140000.00",
            "payment received: 70000.00",
        ]
    );
    assert_eq!(
        v(&r.steps[6].state),
        json!({"deal_id": "E6", "customer_id": "C1", "owner": "sha", "stage": "demo",
            "amount": 140000.0, "status": "won", "opened_at": "2026-03-10T00:00:00Z",
            "stage_entered_at": "2026-04-01T00:00:00Z", "quotes": 0, "competitors": ["Baigujing"],
            "activities": 1, "last_touch_at": "2026-04-20T00:00:00Z", "paid": 70000.0})
    );
    assert_eq!(v(&r.steps[3].state)["status"], json!("lost"));
    assert_eq!(
        v(&r.analysis),
        json!({"outcome": "won", "lost_reason": null, "competitor": null, "stage_at_close": "demo",
            "days_open": 32.0, "days_in_stage": {"lead": 10.0, "demo": 10.0},
            "stage_regressions": 0, "quote_revisions": 0, "activities": {"email": 1},
            "longest_silence_days": 10.0, "last_activity_before_close_days": 30.0,
            "won_deals_of_rep": {"count": 5, "median_activities": 0.0, "median_days_open": 10.0}})
    );
    // E3 was reassigned: the state after step 3 (03-05) names sha; the late visit (03-02)
    // is replayed second.
    let e3 = replay(&m, "E3", org_b().events(), t("2026-12-31T00:00:00Z")).unwrap();
    let types: Vec<&str> = e3.steps.iter().map(|s| s.event_type.as_str()).collect();
    assert_eq!(
        types,
        ["DealOpened", "ActivityLogged", "DealReassigned", "DealWon"]
    );
    assert_eq!(&*e3.steps[1].state.owner, "long");
    assert_eq!(&*e3.steps[2].state.owner, "sha");
    assert_eq!(e3.steps[2].summary, "reassigned long → sha");
}

#[test]
fn the_domain_rules_accept_the_whole_log() {
    let refused = org_b().refusals(replay_tests::t("2030-01-01T00:00:00Z"));
    assert!(refused.is_empty(), "{refused:#?}");
}
