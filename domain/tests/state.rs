//! State folding: the deal state of SPEC §2.2, customers, leads and the org.

mod common;

use common::{at, Log};
use domain::state::{fold_stream, DealStatus, LeadStatus, StreamState, TargetScope};
use domain::{Money, Month};
use serde_json::json;

#[test]
fn deal_state_serialises_like_the_spec_example() {
    let mut log = Log::new();
    log.register_customer("C-77", Some("wukong"));
    let s = "deal-D-1001";
    let mut e = log.ev(
        s,
        "DealOpened",
        json!({"customer_id": "C-77", "owner": "wukong",
        "title": "ERP", "amount": 120000.0, "stage": "presentation"}),
    );
    e.occurred_at = at("2026-05-20T08:00:00Z");
    log.append(s, vec![e]).unwrap();
    log.ok(s, "CompetitorNoted", json!({"competitor": "Acme"}));
    log.ok(
        s,
        "QuoteIssued",
        json!({"quote_id": "Q1", "amount": 118000.0, "discount_pct": 1.5}),
    );
    for _ in 0..7 {
        log.ok(
            s,
            "ActivityLogged",
            json!({"kind": "call", "rep": "wukong"}),
        );
    }
    let mut e = log.ev(
        s,
        "DealStageChanged",
        json!({"from": "presentation", "to": "quote"}),
    );
    e.occurred_at = at("2026-06-03T09:30:00Z");
    e.recorded_at = at("2026-06-03T09:30:02.118Z");
    log.append(s, vec![e]).unwrap();

    let StreamState::Deal(deal) = log.state(s) else {
        panic!("not a deal")
    };
    let expected = json!({ "deal_id": "D-1001", "customer_id": "C-77", "owner": "wukong", "stage": "quote",
      "amount": 120000.0, "status": "open", "opened_at": "2026-05-20T08:00:00Z",
      "stage_entered_at": "2026-06-03T09:30:00Z", "quotes": 1, "competitors": ["Acme"],
      "activities": 7, "last_touch_at": "2026-06-03T09:30:00Z", "paid": 0.0 });
    assert_eq!(serde_json::to_value(&deal).unwrap(), expected);
    // The state check_batch returns is the state a plain fold gives.
    assert_eq!(fold_stream(s, &log.events), StreamState::Deal(deal));
}

#[test]
fn won_lost_reopened_and_paid() {
    let mut log = Log::new();
    let s = log.open_deal("D-1", "negotiation");
    log.ok(&s, "DealAmountChanged", json!({"amount": 90000.0}));
    log.ok(
        &s,
        "DealLost",
        json!({"reason": "price", "competitor": "Acme"}),
    );
    let StreamState::Deal(d) = log.state(&s) else {
        panic!()
    };
    assert_eq!(d.status, DealStatus::Lost);
    assert_eq!(
        &*d.stage, "negotiation",
        "a closed deal keeps the stage it closed in"
    );
    assert_eq!(d.competitors, vec![std::sync::Arc::from("Acme")]);
    assert_eq!(d.lost_reason.as_deref(), Some("price"));

    let reopen = log.ok(&s, "DealReopened", json!({"stage": "quote"}));
    log.ok(&s, "CompetitorNoted", json!({"competitor": "Acme"}));
    log.ok(&s, "DealWon", json!({"amount": 85000.5}));
    log.ok(
        &s,
        "PaymentScheduled",
        json!({"installment_id": "I1", "amount": 50000.0, "due": "2026-08-01"}),
    );
    log.ok(
        &s,
        "PaymentReceived",
        json!({"installment_id": "I1", "amount": 30000.0}),
    );
    log.ok(&s, "PaymentReceived", json!({"amount": 0.5}));
    let StreamState::Deal(d) = log.state(&s) else {
        panic!()
    };
    assert_eq!(d.status, DealStatus::Won);
    assert_eq!(&*d.stage, "quote");
    assert_eq!(d.stage_entered_at, reopen.occurred_at);
    assert_eq!(d.amount, Money(8_500_050));
    assert_eq!(d.won_amount, Some(Money(8_500_050)));
    assert_eq!(d.paid, Money(3_000_050));
    assert_eq!(d.installment("I1").map(|i| i.paid), Some(Money(3_000_000)));
    assert_eq!(d.competitors.len(), 1, "no repeats");
    assert_eq!(&*d.currency, "CNY");
}

#[test]
fn last_touch_is_the_latest_occurred_at_even_with_late_entries() {
    let mut log = Log::new();
    let s = log.open_deal("D-1", "qualified");
    let call = log.ok(
        &s,
        "ActivityLogged",
        json!({"kind": "call", "rep": "wukong"}),
    );
    let mut late = log.ev(
        &s,
        "ActivityLogged",
        json!({"kind": "note", "rep": "wukong"}),
    );
    late.occurred_at = log.state(&s).opened_at().unwrap() + chrono::Duration::minutes(30);
    log.append(&s, vec![late]).unwrap();
    let StreamState::Deal(d) = log.state(&s) else {
        panic!()
    };
    assert_eq!(d.last_touch_at, call.occurred_at);
    assert_eq!(d.activities, 2);
}

#[test]
fn customer_ownership_pool_and_complaints() {
    let mut log = Log::new();
    let s = log.register_customer("C-1", None);
    let StreamState::Customer(c) = log.state(&s) else {
        panic!()
    };
    assert!(c.in_pool && c.owner.is_none());
    assert_eq!(c.in_pool_since, Some(c.registered_at));
    log.ok(&s, "CustomerClaimed", json!({"rep": "wukong"}));
    log.ok(&s, "ComplaintFiled", json!({"complaint_id": "K1"}));
    log.ok(&s, "ComplaintFiled", json!({"complaint_id": "K2"}));
    log.ok(&s, "ComplaintResolved", json!({"complaint_id": "K1"}));
    log.ok(&s, "NpsRecorded", json!({"score": 3}));
    log.ok(&s, "CustomerUpdated", json!({"name": "Huaguo Holdings"}));
    let StreamState::Customer(c) = log.state(&s) else {
        panic!()
    };
    assert_eq!(c.owner.as_deref(), Some("wukong"));
    assert!(!c.in_pool && c.in_pool_since.is_none());
    assert_eq!(c.open_complaints.iter().collect::<Vec<_>>(), vec!["K2"]);
    assert_eq!(c.complaints, 2);
    assert_eq!(c.nps, Some(3));
    assert_eq!(c.name, "Huaguo Holdings");
    assert_eq!(
        c.industry.as_deref(),
        Some("retail"),
        "untouched by the update"
    );
    let released = log.ok(&s, "CustomerReleased", json!({"reason": "no_follow_up"}));
    log.ok(&s, "CustomerChurned", json!({"reason": "bankrupt"}));
    let StreamState::Customer(c) = log.state(&s) else {
        panic!()
    };
    assert!(c.in_pool && c.churned);
    assert_eq!(c.in_pool_since, Some(released.occurred_at));
}

#[test]
fn lead_lifecycle() {
    let mut log = Log::new();
    log.ok(
        "lead-L-1",
        "LeadCaptured",
        json!({"channel": "baidu", "name": "Tang"}),
    );
    log.ok(
        "lead-L-1",
        "LeadQualified",
        json!({"rep": "wukong", "fit_score": 80}),
    );
    log.ok(
        "lead-L-1",
        "LeadConverted",
        json!({"customer_id": "C-9", "deal_id": "D-9"}),
    );
    let StreamState::Lead(l) = log.state("lead-L-1") else {
        panic!()
    };
    assert_eq!(l.status, LeadStatus::Converted);
    assert_eq!((l.fit_score, l.intent_score), (Some(80), None));
    assert_eq!(l.customer_id.as_deref(), Some("C-9"));
    assert_eq!(l.deal_id.as_deref(), Some("D-9"));
    assert_eq!(l.rep.as_deref(), Some("wukong"));
}

#[test]
fn org_pipeline_reps_and_targets() {
    let mut log = Log::new();
    assert_eq!(
        log.org.pipeline.stage_ids().collect::<Vec<_>>(),
        [
            "qualified",
            "presentation",
            "quote",
            "negotiation",
            "contract"
        ]
    );
    assert_eq!(log.org.pipeline.probability("negotiation"), 0.70);
    log.ok(
        "org-acme",
        "RepJoined",
        json!({"rep": "wukong", "name": "Sun Wukong", "team": "east"}),
    );
    log.ok(
        "org-acme",
        "TargetSet",
        json!({"rep": "wukong", "month": "2026-06", "amount": 100.0}),
    );
    log.ok(
        "org-acme",
        "TargetSet",
        json!({"rep": "wukong", "month": "2026-06", "amount": 200.0}),
    );
    log.ok(
        "org-acme",
        "TargetSet",
        json!({"team": "east", "month": "2026-07", "amount": 300.0}),
    );
    log.ok(
        "org-acme",
        "PipelineDefined",
        json!({"stages": [{"id": "demo", "name": "Demo", "probability": 0.4}]}),
    );
    log.ok("org-acme", "RepLeft", json!({"rep": "wukong"}));
    let june = Month::parse("2026-06").unwrap();
    assert_eq!(
        log.org.target(&TargetScope::Rep("wukong".into()), june),
        Some(Money(20000))
    );
    assert_eq!(
        log.org
            .target(&TargetScope::Team("east".into()), june.next()),
        Some(Money(30000))
    );
    assert_eq!(log.org.target(&TargetScope::Org, june), None);
    assert_eq!(log.org.pipeline.stage_ids().collect::<Vec<_>>(), ["demo"]);
    assert!(log.org.rep_has_left("wukong"));
    assert!(!log.org.rep_has_left("nobody"));
    assert_eq!(log.state("org-acme"), StreamState::Org);
}

#[test]
fn folding_is_total() {
    let mut log = Log::new();
    let s = log.open_deal("D-1", "qualified");
    let mut garbage: Vec<_> = log
        .events
        .iter()
        .filter(|e| e.stream == s)
        .cloned()
        .collect();
    let mut bad = garbage[0].clone();
    bad.event_type = "NoSuchThing".into();
    garbage.push(bad);
    let mut bad = garbage[0].clone();
    bad.data = json!({"amount": [1, 2]}).into();
    bad.event_type = "DealAmountChanged".into();
    garbage.push(bad);
    // The opening event again is ignored by the fold (the rules refuse it on append).
    garbage.push(garbage[0].clone());
    assert_eq!(fold_stream(&s, &garbage), log.state(&s));
    assert_eq!(fold_stream("not a stream", &garbage), StreamState::Empty);
    assert_eq!(fold_stream("deal-D-2", &garbage[1..2]), StreamState::Empty);
}

/// Regression: a payment dated before its installment's scheduling (entered late: the rules
/// check it against the deal as it stands, where the installment is scheduled) counts for the
/// installment, as SPEC §2.8's `received` sums it. The fold used to leave it out of the
/// installment's `paid`, and the follow-up list, reading the fold, would have called the
/// installment unpaid.
#[test]
fn a_payment_dated_before_its_scheduling_counts_for_the_installment() {
    let mut log = Log::new();
    let s = log.open_deal("D-1", "negotiation");
    let won = log.ok(&s, "DealWon", json!({"amount": 1000.0}));
    log.ok(
        &s,
        "PaymentScheduled",
        json!({"installment_id": "I1", "amount": 600.0, "due": "2026-08-01"}),
    );
    let mut late = log.ev(
        &s,
        "PaymentReceived",
        json!({"installment_id": "I1", "amount": 250.0}),
    );
    late.occurred_at = won.occurred_at + chrono::Duration::minutes(30);
    log.append(&s, vec![late]).unwrap();
    log.ok(
        &s,
        "PaymentReceived",
        json!({"installment_id": "I1", "amount": 100.0}),
    );
    // Folded in business order (the state the rules kept folded the late payment last).
    let StreamState::Deal(d) = fold_stream(&s, &log.events) else {
        panic!("not a deal")
    };
    let i = d.installment("I1").expect("scheduled");
    assert_eq!(i.paid, Money::from_cents(35_000));
    assert_eq!(d.paid, Money::from_cents(35_000));
    assert!(d.paid_unscheduled.is_empty());
}
