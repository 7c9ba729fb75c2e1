//! Organisation D — "Silk Road": deals in CNY, USD and EUR, exchange rates set (and
//! corrected) after the deals they convert, a rate missing, and a change of reporting
//! currency. May–July 2026. Figures worked out by hand below; every amount in a report is in
//! the reporting currency, each deal's converted at the rate of its close's month (open
//! deals: the latest rate up to the report's month).
//!
//! The log (position: date, stream, event):
//!  1 05-01 RepJoined wukong (east)                    2 05-01 RepJoined bajie (west)
//!  3 05-01 C1 registered (owner wukong)               4 05-01 C2 registered (owner bajie)
//!  5 05-02 D1 opened C1 wukong 100000 (CNY, no field) qualified
//!  6 05-03 D2 opened C1 wukong USD 10000 qualified    7 05-05 D3 opened C2 bajie EUR 20000 qualified
//!  8 05-20 D1 won 100000                              9 06-01 D4 opened C2 bajie USD 5000 quote
//! 10 06-02 D5 opened C1 wukong 30000 (CNY) negotiation
//! 11 06-10 D2 won 12000 (USD)                        12 06-12 D3 lost price (EUR 20000)
//! 13 06-20 D2 payment 6000 (USD)
//! 14 07-01 rate USD 2026-05 7.0                      15 07-01 rate USD 2026-06 7.2
//! 16 07-03 rate EUR 2026-06 7.8                      17 07-05 rate USD 2026-06 7.25 (corrected)
//! 18 07-10 ReportingCurrencySet USD                  19 07-11 rate CNY 2026-05 0.14 (USD per CNY)
//!
//! Rates (CNY per unit) as of 07-04: USD May 7.0, June 7.2; EUR June 7.8; EUR May none.
//! From 07-05 USD June is 7.25. From 07-10 the reporting currency is USD: the CNY-quoted
//! rates no longer apply; from 07-11 CNY May is 0.14.

use projections::l2c::lead_to_cash;
use projections::params::PeriodParams;
use projections::pipeline::{pipeline, PipelineParams};
use projections::reps::{reps, RepsParams};
use projections::winloss::win_loss;
use projections::{funnel, ReadModel};
use replay_tests::{t, LogBuilder};
use serde_json::{json, Value};

fn org_d() -> LogBuilder {
    let mut b = LogBuilder::new();
    let mut e = |day: &str, stream: &str, ty: &str, data: Value| {
        b.ev(&format!("2026-{day}T00:00:00Z"), stream, ty, "admin", data);
    };
    let rep = |r: &str, team: &str| json!({"rep": r, "name": r.to_uppercase(), "team": team});
    e("05-01", "org-main", "RepJoined", rep("wukong", "east"));
    e("05-01", "org-main", "RepJoined", rep("bajie", "west"));
    e(
        "05-01",
        "customer-C1",
        "CustomerRegistered",
        json!({"name": "Huaguo", "owner": "wukong"}),
    );
    e(
        "05-01",
        "customer-C2",
        "CustomerRegistered",
        json!({"name": "Gao", "owner": "bajie"}),
    );
    let deal = |c: &str, owner: &str, amount: f64, currency: Option<&str>, stage: &str| {
        let mut d = json!({"customer_id": c, "owner": owner, "title": "t", "amount": amount, "stage": stage});
        if let Some(cur) = currency {
            d["currency"] = json!(cur);
        }
        d
    };
    e(
        "05-02",
        "deal-D1",
        "DealOpened",
        deal("C1", "wukong", 100000.0, None, "qualified"),
    );
    e(
        "05-03",
        "deal-D2",
        "DealOpened",
        deal("C1", "wukong", 10000.0, Some("USD"), "qualified"),
    );
    e(
        "05-05",
        "deal-D3",
        "DealOpened",
        deal("C2", "bajie", 20000.0, Some("EUR"), "qualified"),
    );
    e("05-20", "deal-D1", "DealWon", json!({"amount": 100000.0}));
    e(
        "06-01",
        "deal-D4",
        "DealOpened",
        deal("C2", "bajie", 5000.0, Some("USD"), "quote"),
    );
    e(
        "06-02",
        "deal-D5",
        "DealOpened",
        deal("C1", "wukong", 30000.0, None, "negotiation"),
    );
    e("06-10", "deal-D2", "DealWon", json!({"amount": 12000.0}));
    e("06-12", "deal-D3", "DealLost", json!({"reason": "price"}));
    e(
        "06-20",
        "deal-D2",
        "PaymentReceived",
        json!({"amount": 6000.0}),
    );
    // Rates (CNY per unit), recorded in July for May and June; then USD becomes the
    // reporting currency and CNY gets a rate in USD.
    for (day, currency, month, rate) in [
        ("07-01", "USD", "2026-05", 7.0),
        ("07-01", "USD", "2026-06", 7.2),
        ("07-03", "EUR", "2026-06", 7.8),
        ("07-05", "USD", "2026-06", 7.25),
    ] {
        let data = json!({"currency": currency, "month": month, "rate": rate});
        e(day, "org-main", "ExchangeRateSet", data);
    }
    e(
        "07-10",
        "org-main",
        "ReportingCurrencySet",
        json!({"currency": "USD"}),
    );
    let cny = json!({"currency": "CNY", "month": "2026-05", "rate": 0.14});
    e("07-11", "org-main", "ExchangeRateSet", cny);
    b
}

fn model() -> ReadModel {
    ReadModel::rebuild(org_d().events())
}

fn q<T: serde::de::DeserializeOwned>(query: &str) -> T {
    serde_urlencoded::from_str(query).unwrap()
}

fn v<T: serde::Serialize>(x: &T) -> Value {
    serde_json::to_value(x).unwrap()
}

const JUNE: &str = "from=2026-06-01T00:00:00Z&to=2026-07-01T00:00:00Z";

#[test]
fn the_log_is_one_the_rules_accept() {
    assert_eq!(org_d().refusals(t("2026-08-01T00:00:00Z")), vec![]);
}

#[test]
fn incremental_equals_rebuild_with_rates_after_the_deals() {
    let events = org_d();
    let mut m = ReadModel::new();
    for e in events.events() {
        m.apply(e);
    }
    assert!(m == model());
}

/// As of 07-04 (rates 07-01 and 07-03 known, CNY reporting). Closed in June: D2 won
/// 12000 USD × 7.2 = 86400; D3 lost 20000 EUR × 7.8 = 156000 (reason price).
#[test]
fn win_loss_converts_each_deal_at_its_close_month() {
    let m = model();
    let p: PeriodParams = q(&format!("{JUNE}&as_of=2026-07-04T00:00:00Z"));
    let r = v(&win_loss(&m, &p.validate().unwrap()).unwrap());
    assert_eq!(
        (&r["currency"], &r["won_amount"], &r["lost_amount"]),
        (&json!("CNY"), &json!(86400.0), &json!(156000.0))
    );
    assert_eq!(
        r["by_reason"],
        json!([{"reason": "price", "count": 1, "amount": 156000.0}])
    );
    // May: D1 100000 CNY needs no rate.
    let p: PeriodParams =
        q("from=2026-05-01T00:00:00Z&to=2026-06-01T00:00:00Z&as_of=2026-07-04T00:00:00Z");
    let r = v(&win_loss(&m, &p.validate().unwrap()).unwrap());
    assert_eq!(r["won_amount"], json!(100000.0));
}

/// A rate set after the deal closed changes the report: as of 07-02 there is no EUR rate
/// for June (refused, naming EUR 2026-06); from 07-03 there is; from 07-05 USD June is
/// corrected to 7.25: D2 = 12000 × 7.25 = 87000.
#[test]
fn rates_set_after_the_close_change_the_report() {
    let m = model();
    let p: PeriodParams = q(&format!("{JUNE}&as_of=2026-07-02T00:00:00Z"));
    let e = win_loss(&m, &p.validate().unwrap()).unwrap_err();
    assert_eq!(
        (e.currency.as_str(), e.month.to_string().as_str()),
        ("EUR", "2026-06")
    );
    assert_eq!(e.reporting, "CNY");
    assert!(e.to_string().contains("EUR in 2026-06"), "{e}");
    // Before any rate: both USD and EUR June are missing; the first (by currency) is named.
    let p: PeriodParams = q(&format!("{JUNE}&as_of=2026-06-30T00:00:00Z"));
    let e = win_loss(&m, &p.validate().unwrap()).unwrap_err();
    assert_eq!((e.currency.as_str(), e.missing.len()), ("EUR", 2));
    assert!(
        e.to_string().contains("missing: EUR 2026-06, USD 2026-06"),
        "{e}"
    );

    let p: PeriodParams = q(&format!("{JUNE}&as_of=2026-07-06T00:00:00Z"));
    let r = v(&win_loss(&m, &p.validate().unwrap()).unwrap());
    assert_eq!(r["won_amount"], json!(87000.0));
}

/// Rep trends for May and June as of 07-04, big deals from 100000 (CNY):
/// wukong May: opened D1, D2; won D1 100000. June: opened D5; won D2 86400 (avg 86400).
/// bajie May: opened D3. June: opened D4; lost D3 = 156000 CNY ≥ 100000 → a big deal lost
/// (20000 in its own currency would not have been).
#[test]
fn rep_trends_convert_won_and_lost_amounts() {
    let m = model();
    let p: RepsParams = q("months=2&window=2&end=2026-06&as_of=2026-07-04T00:00:00Z");
    let r = v(&reps(&m, &p.validate().unwrap(), t("2026-08-01T00:00:00Z")).unwrap());
    assert_eq!(r["currency"], "CNY");
    let series = |rep: &str| {
        r["reps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["rep"] == rep)
            .unwrap()["series"]
            .clone()
    };
    let (w, b) = (series("wukong"), series("bajie"));
    assert_eq!(
        (
            &w[0]["won_amount"],
            &w[1]["won_amount"],
            &w[1]["avg_won_amount"]
        ),
        (&json!(100000.0), &json!(86400.0), &json!(86400.0))
    );
    assert_eq!(
        (&b[1]["deals_lost"], &b[1]["big_deals_lost"]),
        (&json!(1), &json!(1))
    );
    // Without as_of (the read model's index), with the rates as they are now: USD is the
    // reporting currency, CNY May has its rate (0.14), EUR June has none in USD: refused,
    // naming EUR 2026-06 (the lost D3).
    let p: RepsParams = q("months=2&window=2&end=2026-06");
    let e = reps(&m, &p.validate().unwrap(), t("2026-08-01T00:00:00Z")).unwrap_err();
    assert_eq!(
        (e.currency.as_str(), e.month.to_string().as_str()),
        ("EUR", "2026-06")
    );
    assert_eq!(e.reporting, "USD");
}

/// Pipeline as of 06-30 23:59:59 with the rates known then (none): D4 (USD, open) needs the
/// latest USD rate up to June → refused, naming USD 2026-06. As of 07-04 (a July report:
/// the latest rate up to July is June's 7.2): D4 5000 × 7.2 = 36000 in quote (weighted
/// 0.5 → 18000), D5 30000 in negotiation (0.7 → 21000); open 66000, forecast 39000.
/// Nothing won in July.
#[test]
fn open_deals_use_the_latest_rate() {
    let m = model();
    let p: PipelineParams = q("as_of=2026-06-30T23:59:59Z");
    let e = pipeline(&m, &p.validate().unwrap(), t("2026-08-01T00:00:00Z")).unwrap_err();
    assert_eq!(
        (e.currency.as_str(), e.month.to_string().as_str()),
        ("USD", "2026-06")
    );

    let p: PipelineParams = q("as_of=2026-07-04T00:00:00Z");
    let r = v(&pipeline(&m, &p.validate().unwrap(), t("2026-08-01T00:00:00Z")).unwrap());
    assert_eq!(
        (
            &r["currency"],
            &r["open_count"],
            &r["open_amount"],
            &r["forecast"],
            &r["won_this_month"]
        ),
        (
            &json!("CNY"),
            &json!(2),
            &json!(66000.0),
            &json!(39000.0),
            &json!(0.0)
        )
    );
    let quote = r["stages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["stage"] == "quote")
        .unwrap();
    assert_eq!(
        (&quote["amount"], &quote["weighted"]),
        (&json!(36000.0), &json!(18000.0))
    );
    // Top deals ranked by converted amount: D4 (36000) before D5 (30000), though 5000 < 30000.
    let top: Vec<(&str, f64)> = r["top"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["deal_id"].as_str().unwrap(),
                d["amount"].as_f64().unwrap(),
            )
        })
        .collect();
    assert_eq!(top, [("D4", 36000.0), ("D5", 30000.0)]);
}

/// Lead-to-cash for June as of 07-04: D2 won 86400; its payment 6000 USD at the win's rate
/// 7.2 = 43200: collection ratio 0.5.
#[test]
fn payments_are_valued_at_their_deal_s_win_rate() {
    let m = model();
    let p: PeriodParams = q(&format!("{JUNE}&as_of=2026-07-04T00:00:00Z"));
    let r = v(&lead_to_cash(&m, &p.validate().unwrap()).unwrap());
    assert_eq!(
        (
            &r["currency"],
            &r["won_amount"],
            &r["received"],
            &r["collection_ratio"]
        ),
        (&json!("CNY"), &json!(86400.0), &json!(43200.0), &json!(0.5))
    );
}

/// After the switch to USD (07-10) the CNY-quoted rates no longer apply: May (D1, 100000
/// CNY) needs a CNY rate in USD — refused as of 07-10, 14000 USD from 07-11 (× 0.14).
#[test]
fn a_new_reporting_currency_needs_its_own_rates() {
    let m = model();
    let may = "from=2026-05-01T00:00:00Z&to=2026-06-01T00:00:00Z";
    let p: PeriodParams = q(&format!("{may}&as_of=2026-07-10T00:00:00Z"));
    let e = win_loss(&m, &p.validate().unwrap()).unwrap_err();
    assert_eq!(
        (
            e.currency.as_str(),
            e.month.to_string().as_str(),
            e.reporting.as_str()
        ),
        ("CNY", "2026-05", "USD")
    );
    let p: PeriodParams = q(may);
    let r = v(&win_loss(&m, &p.validate().unwrap()).unwrap());
    assert_eq!(
        (&r["currency"], &r["won_amount"]),
        (&json!("USD"), &json!(14000.0))
    );
    // The funnel has no amounts: it names the currency and is never refused.
    let f = funnel::funnel(&m, &funnel::FunnelParams::default().validate().unwrap());
    assert_eq!((f.currency.as_str(), f.groups[0].opened), ("USD", 5));
}

/// A replay tells the deal's own story: its amounts stay in its currency, which it names.
#[test]
fn a_replay_names_the_deal_s_own_currency() {
    let log = org_d();
    let m = ReadModel::rebuild(log.events());
    let now = t("2026-08-01T00:00:00Z");
    let r = projections::replay::replay(&m, "D2", log.events(), now).unwrap();
    assert_eq!(r.currency, "USD");
    assert_eq!(r.steps.last().unwrap().state.amount.as_f64(), 12000.0);
    let r = projections::replay::replay(&m, "D1", log.events(), now).unwrap();
    assert_eq!(r.currency, "CNY");
}
