//! Organisation A — "Huaguoshan": two reps, three customers, five deals in May–June 2026.
//! Default pipeline (qualified .10, presentation .25, quote .50, negotiation .70, contract .90).
//! Every expected figure below is worked out by hand from the log in `org_a()`.
//!
//! The log (position: time, stream, event):
//!  1 05-01 org RepJoined wukong (Sun Wukong, east)      2 05-01 org RepJoined bajie (Zhu Bajie, west)
//!  3 05-02 C1 registered (manufacturing, owner wukong)  4 05-02 C2 registered (retail, owner bajie)
//!  5 05-03 C3 registered (retail, no owner: pool)
//!  6 05-20 D5 opened C1 wukong 80000 qualified          7 05-25 D5 call wukong
//!  8 05-30 D5 won 80000
//!  9 06-01 D1 opened C1 wukong 100000 qualified        10 06-02 D2 opened C1 wukong 50000 qualified
//! 11 06-03 D1 qualified→presentation                    12 06-04 D1 call wukong
//! 13 06-04 D2 qualified→quote (skips presentation)      14 06-05 D3 opened C2 bajie 200000 presentation
//! 15 06-05 D2 meeting wukong                            16 06-06 D1 presentation→quote
//! 17 06-06T12 D1 quote Q1 90000                         18 06-07 D3 call bajie
//! 19 06-08 D1 competitor Acme                           20 06-09 D2 won 48000
//! 21 06-10 D1 quote Q2 85000                            22 06-10 D2 payment 20000
//! 23 06-10 D3 presentation→negotiation                  24 06-10 D4 opened C2 bajie 30000 qualified
//! 25 06-11 D1 quote→presentation (regression)           26 06-12 D1 email wukong
//! 27 06-12 D4 lost no_budget                            28 06-13 D1 presentation→quote
//! 29 06-15 D1 quote→negotiation                         30 06-20 D1 lost price, competitor Acme
//! 31 06-08 D3 visit bajie — LOGGED LATE (recorded after 30)
//! 32 06-21 C1 call wukong (customer stream)
//! 33 05-01 org TargetSet 2026-06 500000 (org-wide) — logged late

use projections::funnel::{funnel, FunnelParams};
use projections::l2c::lead_to_cash;
use projections::params::PeriodParams;
use projections::pipeline::{pipeline, PipelineParams};
use projections::pool::{due_for_release, pool};
use projections::replay::{deal_state, replay};
use projections::reps::{reps, RepsParams};
use projections::timeline::{timeline, TimelineParams};
use projections::winloss::win_loss;
use projections::{activity, channels, ReadModel};
use replay_tests::{t, LogBuilder};
use serde_json::{json, Value};

fn org_a() -> LogBuilder {
    let mut b = LogBuilder::new();
    let rep = |rep: &str, name: &str, team: &str| json!({"rep": rep, "name": name, "team": team});
    let open = |c: &str, o: &str, title: &str, amount: f64, stage: &str| json!({"customer_id": c, "owner": o, "title": title, "amount": amount, "stage": stage});
    let mv = |f: &str, to: &str| json!({"from": f, "to": to});
    let act = |kind: &str, rep: &str| json!({"kind": kind, "rep": rep});
    b.ev(
        "2026-05-01T00:00:00Z",
        "org-main",
        "RepJoined",
        "admin",
        rep("wukong", "Sun Wukong", "east"),
    );
    b.ev(
        "2026-05-01T00:00:00Z",
        "org-main",
        "RepJoined",
        "admin",
        rep("bajie", "Zhu Bajie", "west"),
    );
    b.ev(
        "2026-05-02T00:00:00Z",
        "customer-C1",
        "CustomerRegistered",
        "wukong",
        json!({"name": "Flower Fruit Co", "industry": "manufacturing", "owner": "wukong"}),
    );
    b.ev(
        "2026-05-02T00:00:00Z",
        "customer-C2",
        "CustomerRegistered",
        "bajie",
        json!({"name": "Gao Village Farm", "industry": "retail", "owner": "bajie"}),
    );
    b.ev(
        "2026-05-03T00:00:00Z",
        "customer-C3",
        "CustomerRegistered",
        "admin",
        json!({"name": "Tang Temple Supplies", "industry": "retail"}),
    );
    b.ev(
        "2026-05-20T00:00:00Z",
        "deal-D5",
        "DealOpened",
        "wukong",
        open("C1", "wukong", "Peach orchard", 80000.0, "qualified"),
    );
    b.ev(
        "2026-05-25T00:00:00Z",
        "deal-D5",
        "ActivityLogged",
        "wukong",
        act("call", "wukong"),
    );
    b.ev(
        "2026-05-30T00:00:00Z",
        "deal-D5",
        "DealWon",
        "wukong",
        json!({"amount": 80000.0}),
    );
    b.ev(
        "2026-06-01T00:00:00Z",
        "deal-D1",
        "DealOpened",
        "wukong",
        open("C1", "wukong", "ERP", 100000.0, "qualified"),
    );
    b.ev(
        "2026-06-02T00:00:00Z",
        "deal-D2",
        "DealOpened",
        "wukong",
        open("C1", "wukong", "Support", 50000.0, "qualified"),
    );
    b.ev(
        "2026-06-03T00:00:00Z",
        "deal-D1",
        "DealStageChanged",
        "wukong",
        mv("qualified", "presentation"),
    );
    b.ev(
        "2026-06-04T00:00:00Z",
        "deal-D1",
        "ActivityLogged",
        "wukong",
        act("call", "wukong"),
    );
    b.ev(
        "2026-06-04T00:00:00Z",
        "deal-D2",
        "DealStageChanged",
        "wukong",
        mv("qualified", "quote"),
    );
    b.ev(
        "2026-06-05T00:00:00Z",
        "deal-D3",
        "DealOpened",
        "bajie",
        open("C2", "bajie", "Irrigation", 200000.0, "presentation"),
    );
    b.ev(
        "2026-06-05T00:00:00Z",
        "deal-D2",
        "ActivityLogged",
        "wukong",
        act("meeting", "wukong"),
    );
    b.ev(
        "2026-06-06T00:00:00Z",
        "deal-D1",
        "DealStageChanged",
        "wukong",
        mv("presentation", "quote"),
    );
    b.ev(
        "2026-06-06T12:00:00Z",
        "deal-D1",
        "QuoteIssued",
        "wukong",
        json!({"quote_id": "Q1", "amount": 90000.0}),
    );
    b.ev(
        "2026-06-07T00:00:00Z",
        "deal-D3",
        "ActivityLogged",
        "bajie",
        act("call", "bajie"),
    );
    b.ev(
        "2026-06-08T00:00:00Z",
        "deal-D1",
        "CompetitorNoted",
        "wukong",
        json!({"competitor": "Acme"}),
    );
    b.ev(
        "2026-06-09T00:00:00Z",
        "deal-D2",
        "DealWon",
        "wukong",
        json!({"amount": 48000.0}),
    );
    b.ev(
        "2026-06-10T00:00:00Z",
        "deal-D1",
        "QuoteIssued",
        "wukong",
        json!({"quote_id": "Q2", "amount": 85000.0}),
    );
    b.ev(
        "2026-06-10T00:00:00Z",
        "deal-D2",
        "PaymentReceived",
        "wukong",
        json!({"amount": 20000.0}),
    );
    b.ev(
        "2026-06-10T00:00:00Z",
        "deal-D3",
        "DealStageChanged",
        "bajie",
        mv("presentation", "negotiation"),
    );
    b.ev(
        "2026-06-10T00:00:00Z",
        "deal-D4",
        "DealOpened",
        "bajie",
        open("C2", "bajie", "Feed", 30000.0, "qualified"),
    );
    b.ev(
        "2026-06-11T00:00:00Z",
        "deal-D1",
        "DealStageChanged",
        "wukong",
        mv("quote", "presentation"),
    );
    b.ev(
        "2026-06-12T00:00:00Z",
        "deal-D1",
        "ActivityLogged",
        "wukong",
        act("email", "wukong"),
    );
    b.ev(
        "2026-06-12T00:00:00Z",
        "deal-D4",
        "DealLost",
        "bajie",
        json!({"reason": "no_budget"}),
    );
    b.ev(
        "2026-06-13T00:00:00Z",
        "deal-D1",
        "DealStageChanged",
        "wukong",
        mv("presentation", "quote"),
    );
    b.ev(
        "2026-06-15T00:00:00Z",
        "deal-D1",
        "DealStageChanged",
        "wukong",
        mv("quote", "negotiation"),
    );
    b.ev(
        "2026-06-20T00:00:00Z",
        "deal-D1",
        "DealLost",
        "wukong",
        json!({"reason": "price", "competitor": "Acme"}),
    );
    b.ev(
        "2026-06-08T00:00:00Z",
        "deal-D3",
        "ActivityLogged",
        "bajie",
        act("visit", "bajie"),
    );
    b.ev(
        "2026-06-21T00:00:00Z",
        "customer-C1",
        "ActivityLogged",
        "wukong",
        act("call", "wukong"),
    );
    b.ev(
        "2026-05-01T00:00:00Z",
        "org-main",
        "TargetSet",
        "admin",
        json!({"month": "2026-06", "amount": 500000.0}),
    );
    b
}

fn model() -> ReadModel {
    ReadModel::rebuild(org_a().events())
}

fn v<T: serde::Serialize>(x: &T) -> Value {
    serde_json::to_value(x).unwrap()
}

fn q<T: serde::de::DeserializeOwned>(s: &str) -> T {
    serde_urlencoded::from_str(s).unwrap_or_else(|e| panic!("{s}: {e}"))
}

const JUNE: &str = "from=2026-06-01T00:00:00Z&to=2026-07-01T00:00:00Z";

#[test]
fn log_is_what_the_comments_say() {
    let b = org_a();
    assert_eq!(b.events().len(), 33);
    let m = model();
    assert_eq!(m.last_position, 33);
    assert_eq!(m.deals.len(), 5);
}

/// Cohort = D1..D4 (opened in June; D5 opened in May).
/// Status: D1 lost, D2 won, D3 open, D4 lost → opened 4, won 1, lost 2, open 1,
/// win_rate 1/(1+2) = 0.3333.
/// Furthest stage (index q0 p1 quote2 n3 c4): D1 3, D2 won (all), D3 3, D4 0.
/// reached: qualified 4; presentation 3 (D1 D2 D3); quote 3; negotiation 3; contract 1 (D2).
/// conversion: 3/4 = 0.75; 3/3 = 1.0; 3/3 = 1.0; 1/3 = 0.3333; contract: won 1 / 1 = 1.0.
/// Ended visits (days): qualified D1 2 (06-01→03), D2 2 (06-02→04), D4 2 (06-10→12 lost);
/// presentation D1 3 (06-03→06) and 2 (06-11→13), D3 5 (06-05→10);
/// quote D1 5 (06-06→11) and 2 (06-13→15), D2 5 (06-04→09 won); negotiation D1 5 (06-15→20);
/// D3's negotiation visit is still open → not counted.
/// qualified [2,2,2] median 2, p90 rank ⌈2.7⌉=3 → 2; presentation [2,3,5] → 3, 5;
/// quote [2,5,5] → 5, 5; negotiation [5] → 5, 5; contract none → null.
/// lost_here: D4 at qualified, D1 at negotiation.
#[test]
fn funnel_all() {
    let m = model();
    let p: FunnelParams = q(JUNE);
    let f = funnel(&m, &p.validate().unwrap());
    assert_eq!(
        v(&f),
        json!({"currency": "CNY", "from": "2026-06-01T00:00:00Z", "to": "2026-07-01T00:00:00Z", "groups": [
            {"key": "all", "opened": 4, "won": 1, "lost": 2, "open": 1, "win_rate": 0.3333, "stages": [
                {"stage": "qualified", "reached": 4, "conversion_to_next": 0.75, "median_days_in_stage": 2.0, "p90_days_in_stage": 2.0, "lost_here": 1},
                {"stage": "presentation", "reached": 3, "conversion_to_next": 1.0, "median_days_in_stage": 3.0, "p90_days_in_stage": 5.0, "lost_here": 0},
                {"stage": "quote", "reached": 3, "conversion_to_next": 1.0, "median_days_in_stage": 5.0, "p90_days_in_stage": 5.0, "lost_here": 0},
                {"stage": "negotiation", "reached": 3, "conversion_to_next": 0.3333, "median_days_in_stage": 5.0, "p90_days_in_stage": 5.0, "lost_here": 1},
                {"stage": "contract", "reached": 1, "conversion_to_next": 1.0, "median_days_in_stage": null, "p90_days_in_stage": null, "lost_here": 0}
            ]}
        ]})
    );
}

/// bajie: D3 (open, furthest negotiation), D4 (lost at qualified): opened 2, won 0, lost 1,
/// open 1, win_rate 0/1 = 0.0; reached q2 p1 quote1 n1 c0; conversion 1/2=0.5, 1/1, 1/1,
/// 0/1 = 0.0, contract 0/0 = null. Ended visits: qualified [2] (D4), presentation [5] (D3).
/// wukong: D1 (lost at negotiation), D2 (won): opened 2, won 1, lost 1, open 0, 0.5;
/// reached 2,2,2,2,1; conversion 1,1,1, 1/2 = 0.5, contract 1/1 = 1.0.
/// qualified [2,2] → median 2, p90 rank ⌈1.8⌉=2 → 2; presentation [3,2] → 2.5, 3;
/// quote [5,2,5] → 5, 5; negotiation [5] → 5, 5.
fn by_rep_groups(bajie_key: &str, wukong_key: &str) -> Value {
    json!([
        {"key": bajie_key, "opened": 2, "won": 0, "lost": 1, "open": 1, "win_rate": 0.0, "stages": [
            {"stage": "qualified", "reached": 2, "conversion_to_next": 0.5, "median_days_in_stage": 2.0, "p90_days_in_stage": 2.0, "lost_here": 1},
            {"stage": "presentation", "reached": 1, "conversion_to_next": 1.0, "median_days_in_stage": 5.0, "p90_days_in_stage": 5.0, "lost_here": 0},
            {"stage": "quote", "reached": 1, "conversion_to_next": 1.0, "median_days_in_stage": null, "p90_days_in_stage": null, "lost_here": 0},
            {"stage": "negotiation", "reached": 1, "conversion_to_next": 0.0, "median_days_in_stage": null, "p90_days_in_stage": null, "lost_here": 0},
            {"stage": "contract", "reached": 0, "conversion_to_next": null, "median_days_in_stage": null, "p90_days_in_stage": null, "lost_here": 0}
        ]},
        {"key": wukong_key, "opened": 2, "won": 1, "lost": 1, "open": 0, "win_rate": 0.5, "stages": [
            {"stage": "qualified", "reached": 2, "conversion_to_next": 1.0, "median_days_in_stage": 2.0, "p90_days_in_stage": 2.0, "lost_here": 0},
            {"stage": "presentation", "reached": 2, "conversion_to_next": 1.0, "median_days_in_stage": 2.5, "p90_days_in_stage": 3.0, "lost_here": 0},
            {"stage": "quote", "reached": 2, "conversion_to_next": 1.0, "median_days_in_stage": 5.0, "p90_days_in_stage": 5.0, "lost_here": 0},
            {"stage": "negotiation", "reached": 2, "conversion_to_next": 0.5, "median_days_in_stage": 5.0, "p90_days_in_stage": 5.0, "lost_here": 1},
            {"stage": "contract", "reached": 1, "conversion_to_next": 1.0, "median_days_in_stage": null, "p90_days_in_stage": null, "lost_here": 0}
        ]}
    ])
}

#[test]
fn funnel_grouped() {
    let m = model();
    let run = |g: &str| {
        let p: FunnelParams = q(&format!("{JUNE}&group_by={g}"));
        v(&funnel(&m, &p.validate().unwrap()))["groups"].clone()
    };
    assert_eq!(run("rep"), by_rep_groups("bajie", "wukong"));
    // C1 (manufacturing) holds D1, D2 = wukong's; C2 (retail) holds D3, D4 = bajie's.
    let mut ind = by_rep_groups("retail", "manufacturing");
    ind.as_array_mut().unwrap().reverse(); // keys sort: manufacturing < retail
    assert_eq!(run("industry"), ind);
    // No deal has a source lead: one group "direct", equal to "all" but for the key.
    let mut all = run("none");
    all[0]["key"] = json!("direct");
    assert_eq!(run("source"), all);
}

#[test]
fn funnel_params_are_checked() {
    let e = q::<FunnelParams>("group_by=team").validate().unwrap_err();
    assert_eq!(e.param, "group_by");
    let e = q::<FunnelParams>("from=2026-07-01T00:00:00Z&to=2026-06-01T00:00:00Z")
        .validate()
        .unwrap_err();
    assert_eq!(e.param, "from");
    assert!(serde_urlencoded::from_str::<FunnelParams>("grup_by=rep").is_err());
    // Bare dates mean midnight UTC; an empty value is absent; anything else is refused.
    let m = model();
    let dates: FunnelParams = q("from=2026-06-01&to=2026-07-01&as_of=");
    let full: FunnelParams = q(JUNE);
    assert_eq!(dates, full);
    assert_eq!(
        v(&funnel(&m, &dates.validate().unwrap())),
        v(&funnel(&m, &full.validate().unwrap()))
    );
    let e = serde_urlencoded::from_str::<FunnelParams>("from=June").unwrap_err();
    assert!(e.to_string().contains("invalid time \"June\""), "{e}");
}

/// D1 replay: 12 steps in business order = positions 9 11 12 16 17 19 21 25 26 28 29 30.
/// days_open 06-01→06-20 = 19.0. days_in_stage: qualified 2; presentation 3 + 2 = 5;
/// quote 5 + 2 = 7; negotiation 5 (06-15→20 close). One regression (quote→presentation on
/// 06-11). quotes 2 → 1 revision. activities call 1 (06-04), email 1 (06-12).
/// Gaps between consecutive events (all while open): 2,1,2,.5,1.5,2,1,1,1,2,5 → 5.0.
/// Last activity 06-12 → close 06-20: 8.0.
/// wukong's other won deals: D2 (1 activity, 06-02→06-09 = 7 days), D5 (1 activity,
/// 05-20→05-30 = 10 days): count 2, median activities 1.0, median days (7+10)/2 = 8.5.
#[test]
fn replay_of_a_lost_deal() {
    let m = model();
    let r = replay(&m, "D1", org_a().events(), t("2026-07-01T00:00:00Z")).unwrap();
    let j = v(&r);
    let positions: Vec<u64> = r.steps.iter().map(|s| s.position).collect();
    assert_eq!(positions, [9, 11, 12, 16, 17, 19, 21, 25, 26, 28, 29, 30]);
    assert_eq!(
        j["steps"][7],
        json!({"position": 25, "version": 7, "occurred_at": "2026-06-11T00:00:00Z",
            "type": "DealStageChanged", "actor": "wukong", "summary": "quote → presentation",
            "state": {"deal_id": "D1", "customer_id": "C1", "owner": "wukong", "stage": "presentation",
                "amount": 100000.0, "status": "open", "opened_at": "2026-06-01T00:00:00Z",
                "stage_entered_at": "2026-06-11T00:00:00Z", "quotes": 2, "competitors": ["Acme"],
                "activities": 1, "last_touch_at": "2026-06-11T00:00:00Z", "paid": 0.0}})
    );
    assert_eq!(j["steps"][4]["summary"], json!("quote Q1: 90000.00"));
    assert_eq!(j["steps"][11]["summary"], json!("lost: price (to Acme)"));
    assert_eq!(
        j["steps"][11]["state"],
        json!({"deal_id": "D1", "customer_id": "C1", "owner": "wukong", "stage": "negotiation",
            "amount": 100000.0, "status": "lost", "opened_at": "2026-06-01T00:00:00Z",
            "stage_entered_at": "2026-06-15T00:00:00Z", "quotes": 2, "competitors": ["Acme"],
            "activities": 2, "last_touch_at": "2026-06-20T00:00:00Z", "paid": 0.0})
    );
    assert_eq!(
        j["analysis"],
        json!({"outcome": "lost", "lost_reason": "price", "competitor": "Acme",
            "stage_at_close": "negotiation", "days_open": 19.0,
            "days_in_stage": {"qualified": 2.0, "presentation": 5.0, "quote": 7.0, "negotiation": 5.0},
            "stage_regressions": 1, "quote_revisions": 1, "activities": {"call": 1, "email": 1},
            "longest_silence_days": 5.0, "last_activity_before_close_days": 8.0,
            "won_deals_of_rep": {"count": 2, "median_activities": 1.0, "median_days_open": 8.5}})
    );
    // days_in_stage keeps pipeline order in the JSON text.
    let text = serde_json::to_string(&r.analysis.days_in_stage).unwrap();
    assert_eq!(
        text,
        r#"{"qualified":2.0,"presentation":5.0,"quote":7.0,"negotiation":5.0}"#
    );
}

/// D3 is open; the visit of 06-08 was logged late (position 31, version 3) and is replayed
/// where it happened: positions 14 18 31 23, versions 0 1 3 2.
/// now = 06-30: days_open 25.0; presentation 06-05→10 = 5.0, negotiation 06-10→now = 20.0.
/// Gaps 2, 1, 2 → 2.0. No close → close fields null. bajie has no won deal.
#[test]
fn replay_of_an_open_deal_with_a_late_event() {
    let m = model();
    let r = replay(&m, "D3", org_a().events(), t("2026-06-30T00:00:00Z")).unwrap();
    let pv: Vec<(u64, u64)> = r.steps.iter().map(|s| (s.position, s.version)).collect();
    assert_eq!(pv, [(14, 0), (18, 1), (31, 3), (23, 2)]);
    assert_eq!(
        v(&r.analysis),
        json!({"outcome": "open", "lost_reason": null, "competitor": null, "stage_at_close": null,
            "days_open": 25.0, "days_in_stage": {"presentation": 5.0, "negotiation": 20.0},
            "stage_regressions": 0, "quote_revisions": 0, "activities": {"call": 1, "visit": 1},
            "longest_silence_days": 2.0, "last_activity_before_close_days": null,
            "won_deals_of_rep": {"count": 0, "median_activities": null, "median_days_open": null}})
    );
    assert!(replay(&m, "D9", org_a().events(), t("2026-06-30T00:00:00Z")).is_none());
}

/// D1 as of 06-10T12: events 9 11 12 16 17 19 21 → stage quote since 06-06, 2 quotes, Acme,
/// 1 activity, last touch 06-10. D3 as of 06-09: includes the late visit of 06-08.
#[test]
fn deal_state_as_of() {
    let m = model();
    assert_eq!(
        v(&deal_state(&m, "D1", Some(t("2026-06-10T12:00:00Z"))).unwrap()),
        json!({"deal_id": "D1", "customer_id": "C1", "owner": "wukong", "stage": "quote",
            "amount": 100000.0, "status": "open", "opened_at": "2026-06-01T00:00:00Z",
            "stage_entered_at": "2026-06-06T00:00:00Z", "quotes": 2, "competitors": ["Acme"],
            "activities": 1, "last_touch_at": "2026-06-10T00:00:00Z", "paid": 0.0})
    );
    assert!(deal_state(&m, "D1", Some(t("2026-05-31T00:00:00Z"))).is_none());
    let d3 = deal_state(&m, "D3", Some(t("2026-06-09T00:00:00Z"))).unwrap();
    assert_eq!((d3.activities, &*d3.stage), (2, "presentation"));
    assert_eq!(d3.last_touch_at, t("2026-06-08T00:00:00Z"));
    let d2 = deal_state(&m, "D2", None).unwrap();
    assert_eq!((d2.paid.cents(), d2.amount.cents()), (2_000_000, 4_800_000));
}

/// as_of 06-30: only D3 open (negotiation, 200000): weighted 200000 × .7 = 140000 = forecast.
/// won this June: D2 48000. Target June 500000 (org-wide) → coverage 200000/500000 = 0.4.
/// D3 last touch 06-10 → 20.0 days > 14 → stale; in stage since 06-10: 20.0 ≤ 30 → not stuck.
/// Leaderboard: wukong won 48000 (1), open 0; bajie won 0, open 200000.
#[test]
fn pipeline_end_of_june() {
    let m = model();
    let p: PipelineParams = q("as_of=2026-06-30T00:00:00Z");
    let r = pipeline(&m, &p.validate().unwrap(), t("2026-12-01T00:00:00Z")).unwrap();
    let zero = |s: &str, name: &str| json!({"stage": s, "name": name, "count": 0, "amount": 0.0, "weighted": 0.0});
    assert_eq!(
        v(&r),
        json!({"currency": "CNY", "as_of": "2026-06-30T00:00:00Z", "open_count": 1, "open_amount": 200000.0,
            "forecast": 140000.0, "won_this_month": 48000.0, "coverage": 0.4,
            "stages": [zero("qualified", "Qualified"), zero("presentation", "Presentation"), zero("quote", "Quote"),
                {"stage": "negotiation", "name": "Negotiation", "count": 1, "amount": 200000.0, "weighted": 140000.0},
                zero("contract", "Contract")],
            "stale": [{"deal_id": "D3", "owner": "bajie", "stage": "negotiation", "amount": 200000.0,
                "last_touch_at": "2026-06-10T00:00:00Z", "days_since_touch": 20.0}],
            "stuck": [],
            "top": [{"deal_id": "D3", "owner": "bajie", "stage": "negotiation", "amount": 200000.0}],
            "leaderboard": [
                {"rep": "wukong", "won_amount": 48000.0, "deals_won": 1, "open_amount": 0.0},
                {"rep": "bajie", "won_amount": 0.0, "deals_won": 0, "open_amount": 200000.0}]})
    );
    // stuck_days=10: 20.0 > 10.
    let p: PipelineParams = q("as_of=2026-06-30T00:00:00Z&stuck_days=10");
    let r = pipeline(&m, &p.validate().unwrap(), t("2026-12-01T00:00:00Z")).unwrap();
    assert_eq!(
        v(&r.stuck),
        json!([{"deal_id": "D3", "owner": "bajie", "stage": "negotiation", "days_in_stage": 20.0}])
    );
    // `now` is the default as_of.
    let r2 = pipeline(
        &m,
        &PipelineParams::default().validate().unwrap(),
        t("2026-06-30T00:00:00Z"),
    )
    .unwrap();
    assert_eq!(v(&r2)["forecast"], json!(140000.0));
}

/// as_of 06-08: D1 quote (100000), D2 quote (50000, won only on 06-09), D3 presentation
/// (200000); D4 not opened yet. quote: 2, 150000, ×.5 = 75000; presentation: 1, 200000,
/// ×.25 = 50000; forecast 125000; open 350000 → coverage 350000/500000 = 0.7.
/// Nothing won in June by 06-08. Last touches: D1 06-08, D2 06-05, D3 06-08 (late visit)
/// → none stale. Top: D3, D1, D2. Leaderboard (all won 0): bajie open 200000, wukong 150000.
#[test]
fn pipeline_as_of_a_past_date() {
    let m = model();
    let p: PipelineParams = q("as_of=2026-06-08T00:00:00Z");
    let r = v(&pipeline(&m, &p.validate().unwrap(), t("2026-12-01T00:00:00Z")).unwrap());
    assert_eq!(r["open_count"], json!(3));
    assert_eq!(r["open_amount"], json!(350000.0));
    assert_eq!(r["forecast"], json!(125000.0));
    assert_eq!(r["won_this_month"], json!(0.0));
    assert_eq!(r["coverage"], json!(0.7));
    assert_eq!(
        r["stages"][1],
        json!({"stage": "presentation", "name": "Presentation", "count": 1, "amount": 200000.0, "weighted": 50000.0})
    );
    assert_eq!(
        r["stages"][2],
        json!({"stage": "quote", "name": "Quote", "count": 2, "amount": 150000.0, "weighted": 75000.0})
    );
    assert_eq!(r["stale"], json!([]));
    let top: Vec<&str> = r["top"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["deal_id"].as_str().unwrap())
        .collect();
    assert_eq!(top, ["D3", "D1", "D2"]);
    assert_eq!(
        r["leaderboard"],
        json!([{"rep": "bajie", "won_amount": 0.0, "deals_won": 0, "open_amount": 200000.0},
               {"rep": "wukong", "won_amount": 0.0, "deals_won": 0, "open_amount": 150000.0}])
    );
}

/// months=2 → [2026-05, 2026-06] (end = month of the latest event, 06-21).
/// bajie May: nothing. June: opened D3 D4 (2), lost D4 (30000 < 100000: not big), activities
/// call (06-07) + visit (06-08) on D3 → customer C2 → 1 active; win_rate 0/1 = 0.0.
/// wukong May: opened D5, won D5 80000 (cycle 05-20→30 = 10.0), call on D5 (C1).
/// June: opened D1 D2; won D2 48000 (cycle 06-02→09 = 7.0); lost D1 at 100000 ≥ 100000 → big;
/// activities call (D1 06-04, C1 06-21), meeting (D2), email (D1) → all C1 → 1 active;
/// win_rate 1/2 = 0.5.
/// Trend of deals_won over the 2-month window: bajie [0, 0] → m = 0 → stable;
/// wukong [1, 1] → every |v − 1| = 0 ≤ 0.1 → stable.
#[test]
fn rep_trends() {
    let m = model();
    let p: RepsParams = q("months=2&window=2");
    let r = reps(&m, &p.validate().unwrap(), chrono::Utc::now()).unwrap();
    let empty = |mo: &str| {
        json!({"month": mo, "deals_opened": 0, "deals_won": 0, "won_amount": 0.0,
        "deals_lost": 0, "big_deals_lost": 0, "active_customers": 0, "activities": {},
        "win_rate": null, "avg_won_amount": null, "median_cycle_days": null})
    };
    assert_eq!(
        v(&r),
        json!({"currency": "CNY", "end": "2026-06", "partial": false, "months": ["2026-05", "2026-06"], "metric": "deals_won", "window": 2, "big_deal_amount": 100000.0,
        "reps": [
            {"rep": "bajie", "name": "Zhu Bajie", "team": "west", "trend": "stable", "series": [
                empty("2026-05"),
                {"month": "2026-06", "deals_opened": 2, "deals_won": 0, "won_amount": 0.0,
                 "deals_lost": 1, "big_deals_lost": 0, "active_customers": 1,
                 "activities": {"call": 1, "visit": 1}, "win_rate": 0.0,
                 "avg_won_amount": null, "median_cycle_days": null}]},
            {"rep": "wukong", "name": "Sun Wukong", "team": "east", "trend": "stable", "series": [
                {"month": "2026-05", "deals_opened": 1, "deals_won": 1, "won_amount": 80000.0,
                 "deals_lost": 0, "big_deals_lost": 0, "active_customers": 1,
                 "activities": {"call": 1}, "win_rate": 1.0,
                 "avg_won_amount": 80000.0, "median_cycle_days": 10.0},
                {"month": "2026-06", "deals_opened": 2, "deals_won": 1, "won_amount": 48000.0,
                 "deals_lost": 1, "big_deals_lost": 1, "active_customers": 1,
                 "activities": {"call": 2, "email": 1, "meeting": 1}, "win_rate": 0.5,
                 "avg_won_amount": 48000.0, "median_cycle_days": 7.0}]}
        ]})
    );
    // won_amount: wukong [80000, 48000], m = 64000, |80000 − 64000| = 16000 > 6400,
    // strictly decreasing → declining; bajie [0, 0] → stable.
    let p: RepsParams = q("months=2&window=2&metric=won_amount");
    let r = reps(&m, &p.validate().unwrap(), chrono::Utc::now()).unwrap();
    let trends: Vec<_> = r.reps.iter().map(|x| v(&x.trend)).collect();
    assert_eq!(trends, [json!("stable"), json!("declining")]);
    // win_rate: bajie [null, 0.0] → one value → insufficient_data; wukong [1.0, 0.5] → declining.
    let p: RepsParams = q("months=2&window=2&metric=win_rate");
    let r = reps(&m, &p.validate().unwrap(), chrono::Utc::now()).unwrap();
    let trends: Vec<_> = r.reps.iter().map(|x| v(&x.trend)).collect();
    assert_eq!(trends, [json!("insufficient_data"), json!("declining")]);
    // big_deal_amount=100000.01 → D1 (100000) is no longer big.
    let p: RepsParams = q("months=1&window=1&big_deal_amount=100000.01");
    let r = reps(&m, &p.validate().unwrap(), chrono::Utc::now()).unwrap();
    assert_eq!(r.reps[1].series[0].big_deals_lost, 0);
}

#[test]
fn rep_params_are_checked() {
    for (s, param) in [
        ("months=0", "months"),
        ("months=121", "months"),
        ("months=2&window=3", "window"),
        ("metric=happiness", "metric"),
    ] {
        assert_eq!(
            q::<RepsParams>(s).validate().unwrap_err().param,
            param,
            "{s}"
        );
    }
    assert!(q::<RepsParams>("months=120&end=2026-06").validate().is_ok());
}

/// Closed in June: D2 won 48000 (06-09), D4 lost 30000 (06-12), D1 lost 100000 (06-20);
/// D5 closed in May. closed 3, won 1, lost 2, win_rate 0.3333, lost amount 130000.
/// Reasons: price 1 (100000), no_budget 1 (30000): equal counts → larger amount first.
/// Acme: noted on D1 only → noted 1, won 0, lost_to 1, win_rate 0/1 = 0.0.
#[test]
fn win_loss_june() {
    let m = model();
    let p: PeriodParams = q(JUNE);
    assert_eq!(
        v(&win_loss(&m, &p.validate().unwrap()).unwrap()),
        json!({"currency": "CNY", "from": "2026-06-01T00:00:00Z", "to": "2026-07-01T00:00:00Z",
            "closed": 3, "won": 1, "lost": 2, "win_rate": 0.3333,
            "won_amount": 48000.0, "lost_amount": 130000.0,
            "by_reason": [{"reason": "price", "count": 1, "amount": 100000.0},
                          {"reason": "no_budget", "count": 1, "amount": 30000.0}],
            "by_competitor": [{"competitor": "Acme", "lost_to": 1, "noted": 1, "won": 0, "win_rate": 0.0}]})
    );
}

/// No leads → lead figures 0 / null. Won in June: D2 48000, lost D1 D4 → win_rate 0.3333.
/// Received on D2: 20000 → 20000/48000 = 0.41666… → 0.4167. Cycle 7.0. D2 has 1 activity.
#[test]
fn lead_to_cash_june() {
    let m = model();
    let p: PeriodParams = q(JUNE);
    assert_eq!(
        v(&lead_to_cash(&m, &p.validate().unwrap()).unwrap()),
        json!({"currency": "CNY", "from": "2026-06-01T00:00:00Z", "to": "2026-07-01T00:00:00Z",
            "leads": 0, "converted_leads": 0, "lead_conversion_rate": null,
            "deals_won": 1, "deals_lost": 2, "win_rate": 0.3333,
            "won_amount": 48000.0, "avg_won_amount": 48000.0, "received": 20000.0,
            "collection_ratio": 0.4167, "median_sales_cycle_days": 7.0,
            "activities_per_won_deal": 1.0})
    );
    let p: PeriodParams = q(JUNE);
    assert_eq!(
        v(&channels::channels(&m, &p.validate().unwrap()).unwrap())["channels"],
        json!([])
    );
}

/// June 1 2026 is a Monday (ISO week 23). Activities: wukong 06-04 call, 06-05 meeting (W23),
/// 06-12 email (W24), 06-21 call (Sunday, W25); bajie 06-07 call (Sunday, W23), 06-08 visit
/// (W24). Wins: D2 on 06-09 (W24) for wukong → wukong W24: 1 activity / 1 win = 1.0.
#[test]
fn activity_by_week() {
    let m = model();
    let p: PeriodParams = q(JUNE);
    let row = |rep: &str, w: &str, start: &str, acts: Value, total: u32, won: u32, per: Value| {
        json!({"rep": rep, "week": w, "week_start": start, "activities": acts, "total": total,
            "deals_won": won, "activities_per_won_deal": per})
    };
    assert_eq!(
        v(&activity::activity(&m, &p.validate().unwrap()))["rows"],
        json!([
            row(
                "bajie",
                "2026-W23",
                "2026-06-01",
                json!({"call": 1}),
                1,
                0,
                json!(null)
            ),
            row(
                "bajie",
                "2026-W24",
                "2026-06-08",
                json!({"visit": 1}),
                1,
                0,
                json!(null)
            ),
            row(
                "wukong",
                "2026-W23",
                "2026-06-01",
                json!({"call": 1, "meeting": 1}),
                2,
                0,
                json!(null)
            ),
            row(
                "wukong",
                "2026-W24",
                "2026-06-08",
                json!({"email": 1}),
                1,
                1,
                json!(1.0)
            ),
            row(
                "wukong",
                "2026-W25",
                "2026-06-15",
                json!({"call": 1}),
                1,
                0,
                json!(null)
            ),
        ])
    );
}

/// now 06-30: C3 in the pool since 05-03 → 28 days to 05-31 + 30 = 58.0. No claims/releases.
/// Owned: C1 wukong, C2 bajie.
/// Release policy: C1's latest activity is the call of 06-21 (9 days); C2's is the late-logged
/// visit on D3 of 06-08 (22 days). After 30 days: nobody; after 20: C2; after 5: both.
#[test]
fn pool_and_release_policy() {
    let m = model();
    let now = t("2026-06-30T00:00:00Z");
    assert_eq!(
        v(&pool(&m, None, now)),
        json!({"as_of": "2026-06-30T00:00:00Z",
            "customers": [{"customer_id": "C3", "name": "Tang Temple Supplies",
                "pool_since": "2026-05-03T00:00:00Z", "days_in_pool": 58.0}],
            "by_month": [],
            "customers_per_rep": [{"rep": "bajie", "customers": 1}, {"rep": "wukong", "customers": 1}]})
    );
    assert!(due_for_release(&m, 30, now).is_empty());
    assert_eq!(
        v(&due_for_release(&m, 20, now)),
        json!([{"customer_id": "C2", "owner": "bajie", "idle_since": "2026-06-08T00:00:00Z", "days_idle": 22.0}])
    );
    let ids: Vec<String> = due_for_release(&m, 5, now)
        .into_iter()
        .map(|c| c.customer_id)
        .collect();
    assert_eq!(ids, ["C1", "C2"]);
}

/// C1's timeline: its stream (3, 32) + D5 (6 7 8) + D1 (9 11 12 16 17 19 21 25 26 28 29 30)
/// and D2 (10 13 15 20 22) = 22 events, newest first by (occurred_at, position):
/// 06-21 32, 06-20 30, 06-15 29, 06-13 28, 06-12 26, 06-11 25, 06-10 22 then 21, 06-09 20,
/// 06-08 19, 06-06T12 17, 06-06 16, 06-05 15, 06-04 13 then 12, 06-03 11, 06-02 10,
/// 06-01 9, 05-30 8, 05-25 7, 05-20 6, 05-02 3.
#[test]
fn customer_timeline() {
    let m = model();
    let run = |s: &str| {
        let p: TimelineParams = q(s);
        let tl = timeline(&m, org_a().events(), "C1", &p.validate().unwrap())
            .unwrap()
            .unwrap();
        let pos: Vec<u64> = tl.events.iter().map(|e| e.position).collect();
        (pos, tl.next_before)
    };
    assert_eq!(
        run("limit=100"),
        (
            vec![32, 30, 29, 28, 26, 25, 22, 21, 20, 19, 17, 16, 15, 13, 12, 11, 10, 9, 8, 7, 6, 3],
            None
        )
    );
    assert_eq!(run("limit=5"), (vec![32, 30, 29, 28, 26], Some(26)));
    assert_eq!(
        run("limit=5&before=26"),
        (vec![25, 22, 21, 20, 19], Some(19))
    );
    assert_eq!(run("limit=5&before=6"), (vec![3], None));
    assert_eq!(run("kinds=call"), (vec![32, 12, 7], None));
    assert_eq!(run("types=DealWon,DealLost"), (vec![30, 20, 8], None));
    assert_eq!(
        run("as_of=2026-06-05T00:00:00Z"),
        (vec![15, 13, 12, 11, 10, 9, 8, 7, 6, 3], None)
    );
    // C2: 4 + D3 (14 18 31 23) + D4 (24 27): the late visit (31) sits at 06-08.
    let p = TimelineParams::default().validate().unwrap();
    let tl = timeline(&m, org_a().events(), "C2", &p).unwrap().unwrap();
    let pos: Vec<u64> = tl.events.iter().map(|e| e.position).collect();
    assert_eq!(pos, [27, 24, 23, 31, 18, 14, 4]);
    // Events come back in canonical form.
    assert_eq!(tl.events[3], org_a().events()[30]);
    assert!(timeline(&m, org_a().events(), "C9", &p).unwrap().is_none());
    let bad = q::<TimelineParams>("before=2").validate().unwrap();
    assert_eq!(
        timeline(&m, org_a().events(), "C1", &bad)
            .unwrap_err()
            .param,
        "before"
    );
    assert_eq!(
        q::<TimelineParams>("kinds=fax")
            .validate()
            .unwrap_err()
            .param,
        "kinds"
    );
    assert_eq!(
        q::<TimelineParams>("types=Nope")
            .validate()
            .unwrap_err()
            .param,
        "types"
    );
    assert_eq!(
        q::<TimelineParams>("limit=0").validate().unwrap_err().param,
        "limit"
    );
}

#[test]
fn incremental_equals_rebuild_and_redelivery_is_ignored() {
    let b = org_a();
    let mut m = ReadModel::new();
    for (i, e) in b.events().iter().enumerate() {
        m.apply(e);
        // A subscription resuming one event too early re-delivers it: no effect.
        m.apply(e);
        if i == 10 {
            let text = serde_json::to_string(&m).unwrap();
            m = serde_json::from_str(&text).unwrap();
        }
    }
    assert_eq!(m, model());
}

#[test]
fn the_domain_rules_accept_the_whole_log() {
    let refused = org_a().refusals(replay_tests::t("2030-01-01T00:00:00Z"));
    assert!(refused.is_empty(), "{refused:#?}");
}
