//! The live read model's apply on one ever-growing stream (issue 19): 1,000,000
//! `ActivityLogged` applied to one customer, in order, then as many again on a fresh model
//! with every tenth event logged late (an `occurred_at` an hour, 360,000 events, before the
//! latest). Prints the rate of the first and of the last 100,000 of each run: an apply
//! whose work grows with the stream's length shows as a last rate far below the first.
//! Prints figures (and every window's rate); asserts nothing.
//!
//!     cargo bench -p projections --bench one_customer
//!     BENCH_EVENTS=200000 cargo bench -p projections --bench one_customer

use std::time::Instant;

use chrono::{DateTime, Duration, TimeZone, Utc};
use domain::RecordedEvent;
use projections::ReadModel;
use serde_json::json;

fn event(
    position: u64,
    stream: &str,
    ty: &str,
    at: DateTime<Utc>,
    data: serde_json::Value,
) -> RecordedEvent {
    RecordedEvent {
        id: uuid::Uuid::from_u128(u128::from(position)),
        stream: stream.to_string(),
        event_type: ty.to_string(),
        version: position - 1,
        position,
        occurred_at: at,
        recorded_at: at,
        actor: "admin".to_string(),
        data: data.into(),
        metadata: Default::default(),
        schema_version: 0,
    }
}

/// Applies `n` activities to one customer; `late`: every tenth is logged an hour late.
fn run(n: u64, late: bool) {
    let start = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
    let mut model = ReadModel::new();
    model.apply(&event(
        1,
        "org-main",
        "RepJoined",
        start,
        json!({"rep": "p1", "name": "P 1", "team": "east"}),
    ));
    model.apply(&event(
        2,
        "customer-P1",
        "CustomerRegistered",
        start,
        json!({"name": "P1", "owner": "p1"}),
    ));
    let data = json!({"kind": "call", "rep": "p1", "duration_s": 120});
    // Made before timing: the figure is the model's apply, not building envelopes.
    let window = 100_000.min(n);
    let mut rates = Vec::new();
    let mut block = Vec::with_capacity(window as usize);
    let mut i = 0;
    while i < n {
        block.clear();
        for _ in 0..window.min(n - i) {
            i += 1;
            let mut at = start + Duration::milliseconds(i as i64 * 10);
            if late && i % 10 == 0 {
                at -= Duration::hours(1);
            }
            block.push(event(
                i + 2,
                "customer-P1",
                "ActivityLogged",
                at,
                data.clone(),
            ));
        }
        let t = Instant::now();
        for ev in &block {
            model.apply(ev);
        }
        rates.push(block.len() as f64 / t.elapsed().as_secs_f64());
    }
    let (first, last) = (rates[0], rates[rates.len() - 1]);
    println!(
        "{} activities to one customer{}: first {window}: {first:.0}/s, last {window}: {last:.0}/s (last/first {:.2})",
        n,
        if late { ", every tenth an hour late" } else { ", in order" },
        last / first
    );
    // Every window, in thousands a second: a trend shows through a noisy machine.
    let all: Vec<String> = rates.iter().map(|r| format!("{:.0}", r / 1e3)).collect();
    println!("  each {window} (k/s): {}", all.join(" "));
}

fn main() {
    let n = std::env::var("BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    run(n, false);
    run(n, true);
}
