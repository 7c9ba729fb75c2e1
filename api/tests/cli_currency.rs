//! `dealtrail report` over deals in several currencies: a report that needs a missing
//! exchange rate exits 5 naming the currency and the month; once the rate is imported (after
//! the deal closed), the same report converts, and `--json` carries `currency`.

use serde_json::{json, Value};

#[path = "support/cli.rs"]
mod cli;
use cli::{dealtrail, ok, store_with};

fn line(n: u32, at: &str, stream: &str, ty: &str, data: Value) -> String {
    json!({"id": format!("00000000-0000-4000-8000-{n:012}"), "stream": stream, "type": ty,
        "occurred_at": at, "actor": "admin", "data": data})
    .to_string()
}

/// D1 100000 CNY won 05-20; D2 20000 EUR lost 06-12 (20000 < 100000, but 156000 CNY at 7.8).
fn log() -> String {
    [
        line(1, "2026-05-01T00:00:00Z", "org-main", "RepJoined", json!({"rep": "wukong", "name": "Sun Wukong", "team": "east"})),
        line(2, "2026-05-01T00:00:00Z", "customer-C1", "CustomerRegistered", json!({"name": "Huaguo", "owner": "wukong"})),
        line(3, "2026-05-02T00:00:00Z", "deal-D1", "DealOpened", json!({"customer_id": "C1", "owner": "wukong", "title": "T", "amount": 100000, "stage": "quote"})),
        line(4, "2026-05-20T00:00:00Z", "deal-D1", "DealWon", json!({"amount": 100000})),
        line(5, "2026-05-05T00:00:00Z", "deal-D2", "DealOpened", json!({"customer_id": "C1", "owner": "wukong", "title": "T", "amount": 20000, "currency": "EUR", "stage": "quote"})),
        line(6, "2026-06-12T00:00:00Z", "deal-D2", "DealLost", json!({"reason": "price"})),
    ]
    .join("\n")
        + "\n"
}

#[test]
fn a_missing_rate_exits_5_and_a_late_rate_converts() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    store_with(&data, &log());
    let args = [
        "report", "reps", "--months", "2", "--window", "2", "--end", "2026-06", "--json",
    ];
    let refused = dealtrail(&data, &args);
    assert_eq!(refused.status.code(), Some(5));
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(err.contains("no exchange rate for EUR in 2026-06"), "{err}");
    // May alone needs no rate (D1 is in CNY).
    let may = ok(dealtrail(
        &data,
        &[
            "report",
            "win-loss",
            "--from",
            "2026-05-01",
            "--to",
            "2026-06-01",
            "--json",
        ],
    ));
    let may: Value = serde_json::from_str(&may).unwrap();
    assert_eq!(
        (&may["currency"], &may["won_amount"]),
        (&json!("CNY"), &json!(100000.0))
    );

    // The rate, recorded in July for June.
    let rate = line(
        7,
        "2026-07-01T00:00:00Z",
        "org-main",
        "ExchangeRateSet",
        json!({"currency": "EUR", "month": "2026-06", "rate": 7.8}),
    );
    let file = dir.path().join("rate.ndjson");
    std::fs::write(&file, rate + "\n").unwrap();
    ok(dealtrail(&data, &["import", file.to_str().unwrap()]));
    let r: Value = serde_json::from_str(&ok(dealtrail(&data, &args))).unwrap();
    assert_eq!(r["currency"], "CNY");
    let june = &r["reps"][0]["series"][1];
    // 20000 EUR × 7.8 = 156000 CNY ≥ 100000: a big deal lost.
    assert_eq!(
        (&june["deals_lost"], &june["big_deals_lost"]),
        (&json!(1), &json!(1)),
        "{r}"
    );
    let wl: Value =
        serde_json::from_str(&ok(dealtrail(&data, &["report", "win-loss", "--json"]))).unwrap();
    assert_eq!(
        (&wl["won_amount"], &wl["lost_amount"]),
        (&json!(100000.0), &json!(156000.0))
    );
}
