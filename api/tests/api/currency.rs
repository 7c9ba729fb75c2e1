//! Reports over deals in several currencies (SPEC §2): amounts converted to the reporting
//! currency at the rate of each deal's close month, `currency` in every report body, and a
//! 422 problem naming the currency and month when a rate is missing.

use serde_json::json;

use crate::helpers::{TestApp, ADMIN};

/// Won in June: D1 100000 CNY, D2 10000 USD. USD June's rate arrives after the win.
async fn app() -> TestApp {
    let app = TestApp::new();
    app.seed_org(&["wukong"]).await;
    app.seed_customer("C1", "wukong").await;
    let opened = |amount: f64, currency: Option<&str>| {
        let mut d = json!({"customer_id": "C1", "owner": "wukong", "title": "T", "amount": amount, "stage": "quote"});
        if let Some(c) = currency {
            d["currency"] = json!(c);
        }
        json!({"type": "DealOpened", "occurred_at": "2026-06-01T08:00:00Z", "data": d})
    };
    for (id, amount, currency) in [("D1", 100000.0, None), ("D2", 10000.0, Some("USD"))] {
        app.seed(
            &format!("deal-{id}"),
            json!([opened(amount, currency),
                {"type": "DealWon", "occurred_at": "2026-06-10T08:00:00Z", "data": {"amount": amount}}]),
        )
        .await;
    }
    app.refresh().await;
    app
}

#[tokio::test]
async fn a_report_needing_a_missing_rate_is_a_422_naming_currency_and_month() {
    let app = app().await;
    let june = "/v1/reports/win-loss?from=2026-06-01&to=2026-07-01";
    let p = app.get(june, ADMIN).await.problem(422);
    assert_eq!(p["type"], "urn:dealtrail:problem:missing-exchange-rate");
    assert_eq!(
        (&p["currency"], &p["month"]),
        (&json!("USD"), &json!("2026-06"))
    );
    assert_eq!(p["reporting_currency"], "CNY");
    assert_eq!(
        p["missing"],
        json!([{"currency": "USD", "month": "2026-06"}])
    );
    let detail = p["detail"].as_str().unwrap();
    assert!(
        detail.contains("USD") && detail.contains("2026-06"),
        "{detail}"
    );
    // Every report that shows the win needs it; the funnel (counts only) does not.
    for r in [
        "reps?months=1&window=1&end=2026-06",
        "l2c",
        "pipeline?as_of=2026-06-30",
    ] {
        let p = app
            .get(&format!("/v1/reports/{r}"), ADMIN)
            .await
            .problem(422);
        assert_eq!(p["currency"], "USD", "{r}");
    }
    let f = app.get("/v1/reports/funnel", ADMIN).await;
    assert_eq!(
        (f.status.as_u16(), f.json()["currency"].clone()),
        (200, json!("CNY"))
    );

    // The rate, set after the win: 10000 USD × 7.2 = 72000 CNY; + 100000 CNY = 172000.
    app.seed(
        "org-main",
        json!([{"type": "ExchangeRateSet", "occurred_at": "2026-07-01T00:00:00Z",
            "data": {"currency": "USD", "month": "2026-06", "rate": 7.2}}]),
    )
    .await;
    app.refresh().await;
    let r = app.get(june, ADMIN).await;
    assert_eq!(r.status.as_u16(), 200);
    let body = r.json();
    assert_eq!(
        (&body["currency"], &body["won_amount"], &body["won"]),
        (&json!("CNY"), &json!(172000.0), &json!(2))
    );
    let reps = app
        .get("/v1/reports/reps?months=1&window=1&end=2026-06", ADMIN)
        .await
        .json();
    assert_eq!(reps["currency"], "CNY");
    assert_eq!(reps["reps"][0]["series"][0]["won_amount"], json!(172000.0));
    assert_eq!(
        reps["reps"][0]["series"][0]["avg_won_amount"],
        json!(86000.0)
    );
}
