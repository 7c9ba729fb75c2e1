//! Organisation C — "Westward": leads from two channels with spend, conversions into
//! customers and deals, a public pool with claims, releases and a churned customer,
//! March–April 2026. Figures worked out by hand below.
//!
//! The log (position: date, stream, event):
//!  1 03-01 RepJoined tang (Tang Sanzang, west)      2 03-01 RepJoined wukong (Sun Wukong, west)
//!  3 03-01 channel-web spend 2026-03 3000           4 03-01 channel-fair spend 2026-03 2000
//!  5 03-01 channel-web spend 2026-04 1000           6 03-02 L1 captured (web)
//!  7 03-03 L2 captured (web)                        8 03-04 L3 captured (fair)
//!  9 03-05 L4 captured (web)                       10 03-06 L1 qualified by tang
//! 11 03-07 L2 qualified by tang                    12 03-08 L3 disqualified
//! 13 03-09 K1 registered (logistics, pool)         14 03-10 K1 claimed by tang
//! 15 03-10 L1 converted into K1, deal G1           16 03-10 G1 opened K1 tang 12000 qualified, lead L1
//! 17 03-11 K2 registered (milling, owner wukong)   18 03-12 L2 converted into K2 (no deal id)
//! 19 03-12 G2 opened K2 wukong 6000 presentation, lead L2
//! 20 03-15 G1 call tang                            21 03-20 G1 won 12000
//! 22 03-22 G1 payment 6000                         23 03-25 G2 lost price
//! 24 03-26 K2 released (handover)                  25 03-28 K3 registered (pool, no industry)
//! 26 04-02 K3 claimed by wukong                    27 04-03 K2 claimed by tang
//! 28 04-05 G3 opened K1 tang 4000 qualified        29 04-06 K2 visit tang (customer stream)
//! 30 04-10 K3 released (no_follow_up, system)      31 04-12 K4 registered (owner wukong)
//! 32 04-13 K4 churned                              33 03-14 L4 qualified by wukong — logged late
//! 34 04-15 L5 captured (fair)

use projections::channels::channels;
use projections::funnel::{funnel, FunnelParams};
use projections::l2c::lead_to_cash;
use projections::params::PeriodParams;
use projections::pipeline::{pipeline, PipelineParams};
use projections::pool::{due_for_release, pool, PoolParams};
use projections::reps::{reps, RepsParams};
use projections::timeline::{timeline, TimelineParams};
use projections::winloss::win_loss;
use projections::{activity, ReadModel};
use replay_tests::{t, LogBuilder};
use serde_json::{json, Value};

fn org_c() -> LogBuilder {
    let mut b = LogBuilder::new();
    let d = |day: &str| format!("2026-{day}T00:00:00Z");
    let mut e = |day: &str, stream: &str, ty: &str, actor: &str, data: Value| {
        b.ev(&d(day), stream, ty, actor, data);
    };
    let lead = |ch: &str, name: &str| json!({"channel": ch, "name": name});
    e(
        "03-01",
        "org-main",
        "RepJoined",
        "admin",
        json!({"rep": "tang", "name": "Tang Sanzang", "team": "west"}),
    );
    e(
        "03-01",
        "org-main",
        "RepJoined",
        "admin",
        json!({"rep": "wukong", "name": "Sun Wukong", "team": "west"}),
    );
    e(
        "03-01",
        "channel-web",
        "SpendRecorded",
        "finance",
        json!({"month": "2026-03", "amount": 3000.0}),
    );
    e(
        "03-01",
        "channel-fair",
        "SpendRecorded",
        "finance",
        json!({"month": "2026-03", "amount": 2000.0}),
    );
    e(
        "03-01",
        "channel-web",
        "SpendRecorded",
        "finance",
        json!({"month": "2026-04", "amount": 1000.0}),
    );
    e(
        "03-02",
        "lead-L1",
        "LeadCaptured",
        "web",
        lead("web", "Lead One"),
    );
    e(
        "03-03",
        "lead-L2",
        "LeadCaptured",
        "web",
        lead("web", "Lead Two"),
    );
    e(
        "03-04",
        "lead-L3",
        "LeadCaptured",
        "fair",
        lead("fair", "Lead Three"),
    );
    e(
        "03-05",
        "lead-L4",
        "LeadCaptured",
        "web",
        lead("web", "Lead Four"),
    );
    e(
        "03-06",
        "lead-L1",
        "LeadQualified",
        "tang",
        json!({"rep": "tang"}),
    );
    e(
        "03-07",
        "lead-L2",
        "LeadQualified",
        "tang",
        json!({"rep": "tang"}),
    );
    e(
        "03-08",
        "lead-L3",
        "LeadDisqualified",
        "tang",
        json!({"reason": "student"}),
    );
    e(
        "03-09",
        "customer-K1",
        "CustomerRegistered",
        "tang",
        json!({"name": "Liusha Trading", "industry": "logistics"}),
    );
    e(
        "03-10",
        "customer-K1",
        "CustomerClaimed",
        "tang",
        json!({"rep": "tang"}),
    );
    e(
        "03-10",
        "lead-L1",
        "LeadConverted",
        "tang",
        json!({"customer_id": "K1", "deal_id": "G1"}),
    );
    e(
        "03-10",
        "deal-G1",
        "DealOpened",
        "tang",
        json!({"customer_id": "K1", "owner": "tang", "title": "Scrolls",
        "amount": 12000.0, "stage": "qualified", "source_lead": "L1"}),
    );
    e(
        "03-11",
        "customer-K2",
        "CustomerRegistered",
        "wukong",
        json!({"name": "Black Wind Mill", "industry": "milling", "owner": "wukong"}),
    );
    e(
        "03-12",
        "lead-L2",
        "LeadConverted",
        "wukong",
        json!({"customer_id": "K2"}),
    );
    e(
        "03-12",
        "deal-G2",
        "DealOpened",
        "wukong",
        json!({"customer_id": "K2", "owner": "wukong", "title": "Robes",
        "amount": 6000.0, "stage": "presentation", "source_lead": "L2"}),
    );
    e(
        "03-15",
        "deal-G1",
        "ActivityLogged",
        "tang",
        json!({"kind": "call", "rep": "tang"}),
    );
    e(
        "03-20",
        "deal-G1",
        "DealWon",
        "tang",
        json!({"amount": 12000.0}),
    );
    e(
        "03-22",
        "deal-G1",
        "PaymentReceived",
        "finance",
        json!({"amount": 6000.0}),
    );
    e(
        "03-25",
        "deal-G2",
        "DealLost",
        "wukong",
        json!({"reason": "price"}),
    );
    e(
        "03-26",
        "customer-K2",
        "CustomerReleased",
        "wukong",
        json!({"reason": "handover"}),
    );
    e(
        "03-28",
        "customer-K3",
        "CustomerRegistered",
        "admin",
        json!({"name": "Flaming Mountain Fans"}),
    );
    e(
        "04-02",
        "customer-K3",
        "CustomerClaimed",
        "wukong",
        json!({"rep": "wukong"}),
    );
    e(
        "04-03",
        "customer-K2",
        "CustomerClaimed",
        "tang",
        json!({"rep": "tang"}),
    );
    e(
        "04-05",
        "deal-G3",
        "DealOpened",
        "tang",
        json!({"customer_id": "K1", "owner": "tang", "title": "Bowls",
        "amount": 4000.0, "stage": "qualified"}),
    );
    e(
        "04-06",
        "customer-K2",
        "ActivityLogged",
        "tang",
        json!({"kind": "visit", "rep": "tang"}),
    );
    e(
        "04-10",
        "customer-K3",
        "CustomerReleased",
        "system",
        json!({"reason": "no_follow_up"}),
    );
    e(
        "04-12",
        "customer-K4",
        "CustomerRegistered",
        "wukong",
        json!({"name": "Spider Cave", "owner": "wukong"}),
    );
    e(
        "04-13",
        "customer-K4",
        "CustomerChurned",
        "wukong",
        json!({}),
    );
    e(
        "03-14",
        "lead-L4",
        "LeadQualified",
        "wukong",
        json!({"rep": "wukong"}),
    );
    e(
        "04-15",
        "lead-L5",
        "LeadCaptured",
        "fair",
        lead("fair", "Lead Five"),
    );
    b
}

fn model() -> ReadModel {
    let b = org_c();
    assert_eq!(b.events().len(), 34);
    ReadModel::rebuild(b.events())
}

fn v<T: serde::Serialize>(x: &T) -> Value {
    serde_json::to_value(x).unwrap()
}

fn q<T: serde::de::DeserializeOwned>(s: &str) -> T {
    serde_urlencoded::from_str(s).unwrap_or_else(|e| panic!("{s}: {e}"))
}

const MARCH: &str = "from=2026-03-01T00:00:00Z&to=2026-04-01T00:00:00Z";

/// March: spend web 3000 (the April month's 1000 starts 04-01, outside), fair 2000.
/// Leads captured in March: web L1 L2 L4 (3), fair L3 (1); L5 is April.
/// web: qualified L1 L2 L4 (L4's late-logged qualification of 03-14 counts) = 3; converted
/// L1 L2 = 2; deals G1 G2 = 2; won G1 → 1, revenue 12000; cost per lead 3000/3 = 1000;
/// per win 3000/1 = 3000; roi (12000 − 3000)/3000 = 3.0.
/// fair: L3 disqualified → 0 qualified, 0 converted, 0 deals; cost per lead 2000/1 = 2000;
/// per win 2000/0 → null; roi (0 − 2000)/2000 = −1.0.
#[test]
fn channels_march() {
    let m = model();
    let p: PeriodParams = q(MARCH);
    assert_eq!(
        v(&channels(&m, &p.validate().unwrap()).unwrap()),
        json!({"currency": "CNY", "from": "2026-03-01T00:00:00Z", "to": "2026-04-01T00:00:00Z", "channels": [
            {"channel": "fair", "spend": 2000.0, "leads": 1, "qualified": 0, "converted": 0, "deals": 0,
             "won": 0, "revenue": 0.0, "cost_per_lead": 2000.0, "cost_per_win": null, "roi": -1.0},
            {"channel": "web", "spend": 3000.0, "leads": 3, "qualified": 3, "converted": 2, "deals": 2,
             "won": 1, "revenue": 12000.0, "cost_per_lead": 1000.0, "cost_per_win": 3000.0, "roi": 3.0}]})
    );
}

/// as_of 03-13, no period: spend recorded by then: web 3000 + 1000 = 4000, fair 2000.
/// Leads L1–L4 (L5 later). web qualified as of 03-13: L1, L2 (L4's is dated 03-14) = 2;
/// converted L1 (03-10), L2 (03-12) = 2; deals G1, G2; nothing won yet (G1 on 03-20).
/// web cost per lead 4000/3 = 1333.333… → 1333.33; roi (0 − 4000)/4000 = −1.0.
#[test]
fn channels_as_of() {
    let m = model();
    let p: PeriodParams = q("as_of=2026-03-13T00:00:00Z");
    assert_eq!(
        v(&channels(&m, &p.validate().unwrap()).unwrap())["channels"],
        json!([
            {"channel": "fair", "spend": 2000.0, "leads": 1, "qualified": 0, "converted": 0, "deals": 0,
             "won": 0, "revenue": 0.0, "cost_per_lead": 2000.0, "cost_per_win": null, "roi": -1.0},
            {"channel": "web", "spend": 4000.0, "leads": 3, "qualified": 2, "converted": 2, "deals": 2,
             "won": 0, "revenue": 0.0, "cost_per_lead": 1333.33, "cost_per_win": null, "roi": -1.0}])
    );
}

/// March: leads 4 (L1–L4), converted L1 L2 → 0.5. Final closes in March: G1 won 12000,
/// G2 lost → 0.5. Received 6000/12000 = 0.5. Cycle G1 03-10→20 = 10.0. G1 has 1 activity.
#[test]
fn lead_to_cash_march() {
    let m = model();
    let p: PeriodParams = q(MARCH);
    assert_eq!(
        v(&lead_to_cash(&m, &p.validate().unwrap()).unwrap()),
        json!({"currency": "CNY", "from": "2026-03-01T00:00:00Z", "to": "2026-04-01T00:00:00Z",
            "leads": 4, "converted_leads": 2, "lead_conversion_rate": 0.5,
            "deals_won": 1, "deals_lost": 1, "win_rate": 0.5,
            "won_amount": 12000.0, "avg_won_amount": 12000.0, "received": 6000.0,
            "collection_ratio": 0.5, "median_sales_cycle_days": 10.0,
            "activities_per_won_deal": 1.0})
    );
}

/// All deals (no period), by source: G3 has no source lead → "direct"; G1 (L1) and G2 (L2)
/// → "web".
/// direct: G3 open at qualified: reached 1, 0, 0, 0, 0; conversion 0/1 = 0.0 then 0/0 = null;
/// no ended visit; win_rate 0/0 = null.
/// web: G1 won (from qualified, 03-10→20 = 10 days), G2 lost at presentation (opened there,
/// 03-12→25 = 13 days): reached qualified 2 (presentation ≥ qualified), presentation 2,
/// quote 1, negotiation 1, contract 1 → 2/2 = 1.0, 1/2 = 0.5, 1.0, 1.0, contract 1/1 = 1.0.
#[test]
fn funnel_by_source() {
    let m = model();
    let p: FunnelParams = q("group_by=source");
    let stage = |s: &str, r: u32, c: Value, med: Value, lost: u32| {
        json!({"stage": s, "reached": r, "conversion_to_next": c, "median_days_in_stage": med,
            "p90_days_in_stage": med, "lost_here": lost})
    };
    let n = || json!(null);
    assert_eq!(
        v(&funnel(&m, &p.validate().unwrap())),
        json!({"currency": "CNY", "from": null, "to": null, "groups": [
            {"key": "direct", "opened": 1, "won": 0, "lost": 0, "open": 1, "win_rate": null, "stages": [
                stage("qualified", 1, json!(0.0), n(), 0), stage("presentation", 0, n(), n(), 0),
                stage("quote", 0, n(), n(), 0), stage("negotiation", 0, n(), n(), 0),
                stage("contract", 0, n(), n(), 0)]},
            {"key": "web", "opened": 2, "won": 1, "lost": 1, "open": 0, "win_rate": 0.5, "stages": [
                stage("qualified", 2, json!(1.0), json!(10.0), 0),
                stage("presentation", 2, json!(0.5), json!(13.0), 1),
                stage("quote", 1, json!(1.0), n(), 0), stage("negotiation", 1, json!(1.0), n(), 0),
                stage("contract", 1, json!(1.0), n(), 0)]}]})
    );
}

/// now 04-20: K1 tang (claimed 03-10); K2 tang (released 03-26, claimed 04-03); K3 back in the
/// pool since 04-10 → 10.0 days; K4 churned → left out.
/// Claims: K1 03-10 (March), K3 04-02, K2 04-03 (April); releases: K2 03-26 (March),
/// K3 04-10 (April).
/// as_of 03-27: K1 tang; K2 in the pool since 03-26 → 1.0 day; K3, K4 not registered yet.
#[test]
fn pool_now_and_as_of() {
    let m = model();
    let now = t("2026-04-20T00:00:00Z");
    let p: PoolParams = q("");
    assert_eq!(
        v(&pool(&m, p.validate().unwrap(), now)),
        json!({"as_of": "2026-04-20T00:00:00Z",
            "customers": [{"customer_id": "K3", "name": "Flaming Mountain Fans",
                "pool_since": "2026-04-10T00:00:00Z", "days_in_pool": 10.0}],
            "by_month": [{"month": "2026-03", "claims": 1, "releases": 1},
                         {"month": "2026-04", "claims": 2, "releases": 1}],
            "customers_per_rep": [{"rep": "tang", "customers": 2}]})
    );
    let p: PoolParams = q("as_of=2026-03-27T00:00:00Z");
    assert_eq!(
        v(&pool(&m, p.validate().unwrap(), now)),
        json!({"as_of": "2026-03-27T00:00:00Z",
            "customers": [{"customer_id": "K2", "name": "Black Wind Mill",
                "pool_since": "2026-03-26T00:00:00Z", "days_in_pool": 1.0}],
            "by_month": [{"month": "2026-03", "claims": 1, "releases": 1}],
            "customers_per_rep": [{"rep": "tang", "customers": 1}]})
    );
}

/// now 04-20. K1 (tang since 03-10): latest activity the call on G1, 03-15 → 16 + 20 = 36.0
/// days. K2 (tang since 04-03): visit 04-06 → 14.0 days (G2's history has no activity).
/// K3 is in the pool, K4 churned. After 10 days: K1 and K2; after 20: K1 only.
#[test]
fn release_policy() {
    let m = model();
    let now = t("2026-04-20T00:00:00Z");
    assert_eq!(
        v(&due_for_release(&m, 10, now)),
        json!([{"customer_id": "K1", "owner": "tang", "idle_since": "2026-03-15T00:00:00Z", "days_idle": 36.0},
               {"customer_id": "K2", "owner": "tang", "idle_since": "2026-04-06T00:00:00Z", "days_idle": 14.0}])
    );
    let ids: Vec<String> = due_for_release(&m, 20, now)
        .into_iter()
        .map(|c| c.customer_id)
        .collect();
    assert_eq!(ids, ["K1"]);
}

/// K1: its stream (13, 14) + G1 (16 20 21 22) + G3 (28) + lead L1 converted into it (6 10 15).
/// Newest first: 28 (04-05), 22, 21, 20, then 03-10 holds 14, 15, 16 → 16 15 14, then 13
/// (03-09), 10 (03-06), 6 (03-02).
/// As of 03-09T12, L1 was not converted yet: only 13.
/// K2: 17 24 27 29 + G2 (19 23) + L2 (7 11 18): 29, 27, 24, 23, (03-12) 19 18, 17, 11, 7.
#[test]
fn timelines_include_converted_leads() {
    let m = model();
    let run = |c: &str, s: &str| {
        let p: TimelineParams = q(s);
        let tl = timeline(&m, org_c().events(), c, &p.validate().unwrap())
            .unwrap()
            .unwrap();
        tl.events.iter().map(|e| e.position).collect::<Vec<u64>>()
    };
    assert_eq!(run("K1", ""), [28, 22, 21, 20, 16, 15, 14, 13, 10, 6]);
    assert_eq!(run("K1", "types=LeadCaptured,LeadConverted"), [15, 6]);
    assert_eq!(run("K1", "as_of=2026-03-09T12:00:00Z"), [13]);
    assert_eq!(run("K2", ""), [29, 27, 24, 23, 19, 18, 17, 11, 7]);
    assert_eq!(run("K2", "kinds=visit"), [29]);
    assert_eq!(run("K2", "kinds=visit&types=DealLost"), Vec::<u64>::new());
}

/// months=2, end 2026-04, window 2.
/// tang Mar: opened G1; won G1 12000 (cycle 10.0); call on G1 → K1; win_rate 1.0.
///      Apr: opened G3; visit on K2 → 1 customer; no close → nulls.
///      deals_won [1, 0]: m = 0.5, |1 − 0.5| > 0.05, strictly decreasing → declining.
/// wukong Mar: opened G2; lost G2 (6000, not big) → win_rate 0.0; Apr: nothing.
///      deals_won [0, 0] → stable.
#[test]
fn rep_trends() {
    let m = model();
    let p: RepsParams = q("months=2&window=2");
    let r = v(&reps(&m, &p.validate().unwrap(), chrono::Utc::now()).unwrap());
    assert_eq!(r["end"], json!("2026-04"));
    let s = |m: &str,
             o: u32,
             w: u32,
             wa: f64,
             l: u32,
             ac: u32,
             acts: Value,
             wr: Value,
             avg: Value,
             cy: Value| {
        json!({"month": m, "deals_opened": o, "deals_won": w, "won_amount": wa, "deals_lost": l,
            "big_deals_lost": 0, "active_customers": ac, "activities": acts, "win_rate": wr,
            "avg_won_amount": avg, "median_cycle_days": cy})
    };
    let n = || json!(null);
    assert_eq!(
        r["reps"],
        json!([
            {"rep": "tang", "name": "Tang Sanzang", "team": "west", "trend": "declining", "series": [
                s("2026-03", 1, 1, 12000.0, 0, 1, json!({"call": 1}), json!(1.0), json!(12000.0), json!(10.0)),
                s("2026-04", 1, 0, 0.0, 0, 1, json!({"visit": 1}), n(), n(), n())]},
            {"rep": "wukong", "name": "Sun Wukong", "team": "west", "trend": "stable", "series": [
                s("2026-03", 1, 0, 0.0, 1, 0, json!({}), json!(0.0), n(), n()),
                s("2026-04", 0, 0, 0.0, 0, 0, json!({}), n(), n(), n())]}])
    );
}

/// March: G1 won 12000, G2 lost (price, 6000); no competitor anywhere.
/// Activity March–April: tang W11 (03-09) call on 03-15; W12 (03-16) G1 won 03-20;
/// W15 (04-06) visit. Pipeline as of 04-20: G3 open at qualified 4000 → weighted 400;
/// last touch 04-05 → 15.0 days > 14 → stale; not stuck; nothing won in April.
#[test]
fn win_loss_activity_and_pipeline() {
    let m = model();
    let p: PeriodParams = q(MARCH);
    assert_eq!(
        v(&win_loss(&m, &p.validate().unwrap()).unwrap()),
        json!({"currency": "CNY", "from": "2026-03-01T00:00:00Z", "to": "2026-04-01T00:00:00Z",
            "closed": 2, "won": 1, "lost": 1, "win_rate": 0.5, "won_amount": 12000.0, "lost_amount": 6000.0,
            "by_reason": [{"reason": "price", "count": 1, "amount": 6000.0}], "by_competitor": []})
    );
    let p: PeriodParams = q("from=2026-03-01T00:00:00Z&to=2026-05-01T00:00:00Z");
    assert_eq!(
        v(&activity::activity(&m, &p.validate().unwrap()))["rows"],
        json!([
            {"rep": "tang", "week": "2026-W11", "week_start": "2026-03-09", "activities": {"call": 1},
             "total": 1, "deals_won": 0, "activities_per_won_deal": null},
            {"rep": "tang", "week": "2026-W12", "week_start": "2026-03-16", "activities": {},
             "total": 0, "deals_won": 1, "activities_per_won_deal": 0.0},
            {"rep": "tang", "week": "2026-W15", "week_start": "2026-04-06", "activities": {"visit": 1},
             "total": 1, "deals_won": 0, "activities_per_won_deal": null}])
    );
    let p: PipelineParams = q("as_of=2026-04-20T00:00:00Z");
    let r = v(&pipeline(&m, &p.validate().unwrap(), t("2026-12-31T00:00:00Z")).unwrap());
    assert_eq!(
        (
            r["open_count"].clone(),
            r["forecast"].clone(),
            r["won_this_month"].clone(),
            r["coverage"].clone()
        ),
        (json!(1), json!(400.0), json!(0.0), json!(null))
    );
    assert_eq!(
        r["stages"][0],
        json!({"stage": "qualified", "name": "Qualified", "count": 1, "amount": 4000.0, "weighted": 400.0})
    );
    assert_eq!(
        r["stale"],
        json!([{"deal_id": "G3", "owner": "tang", "stage": "qualified", "amount": 4000.0,
        "last_touch_at": "2026-04-05T00:00:00Z", "days_since_touch": 15.0}])
    );
    assert_eq!(r["stuck"], json!([]));
    assert_eq!(
        r["leaderboard"],
        json!([{"rep": "tang", "won_amount": 0.0, "deals_won": 0, "open_amount": 4000.0}])
    );
}

#[test]
fn the_domain_rules_accept_the_whole_log() {
    let refused = org_c().refusals(replay_tests::t("2030-01-01T00:00:00Z"));
    assert!(refused.is_empty(), "{refused:#?}");
}
