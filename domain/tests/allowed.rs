//! The other side of the rules: what must pass, including the edges of each limit.

mod common;

use chrono::Duration;
use common::{at, Log};
use serde_json::json;

#[test]
fn time_limits_are_inclusive_at_five_minutes() {
    let mut log = Log::new();
    let s = log.open_deal("D-1", "qualified");
    let mut e = log.ev(
        &s,
        "ActivityLogged",
        json!({"kind": "note", "rep": "wukong"}),
    );
    e.recorded_at = at("2026-06-02T10:00:00Z");
    e.occurred_at = at("2026-06-02T10:05:00Z");
    log.append(&s, vec![e.clone()]).unwrap();

    // recorded_at up to now + 5 minutes is accepted; one second more is not.
    let mut e = log.ev(
        &s,
        "ActivityLogged",
        json!({"kind": "note", "rep": "wukong"}),
    );
    e.recorded_at = log.now + Duration::minutes(5);
    e.occurred_at = e.recorded_at;
    log.append(&s, vec![e.clone()]).unwrap();
    e.recorded_at += Duration::seconds(1);
    assert_eq!(
        log.check(&s, &[e]).unwrap_err().rule,
        "time.recorded_in_future"
    );
}

#[test]
fn late_entries_may_go_back_to_the_opening_but_not_before() {
    let mut log = Log::new();
    let s = log.open_deal("D-1", "qualified");
    let opened = log.events.last().unwrap().occurred_at;
    for _ in 0..3 {
        log.ok(
            &s,
            "ActivityLogged",
            json!({"kind": "call", "rep": "wukong"}),
        );
    }
    let mut e = log.ev(
        &s,
        "ActivityLogged",
        json!({"kind": "visit", "rep": "wukong"}),
    );
    e.occurred_at = opened;
    log.append(&s, vec![e]).unwrap();
}

#[test]
fn metadata_of_exactly_4_kib_is_accepted() {
    let mut log = Log::new();
    let s = log.open_deal("D-1", "qualified");
    let mut e = log.ev(
        &s,
        "ActivityLogged",
        json!({"kind": "note", "rep": "wukong"}),
    );
    // {"blob":"…"} is 11 bytes around the string.
    e.metadata
        .insert("blob".into(), json!("x".repeat(4096 - 11)));
    log.append(&s, vec![e]).unwrap();
}

#[test]
fn a_closed_deal_takes_activities_payments_and_a_reopening() {
    let mut log = Log::new();
    let s = log.open_deal("D-1", "contract");
    log.ok(
        &s,
        "DealWon",
        json!({"amount": 1000.0, "reason": "relationship"}),
    );
    log.ok(
        &s,
        "ActivityLogged",
        json!({"kind": "visit", "rep": "wukong"}),
    );
    log.ok(
        &s,
        "PaymentScheduled",
        json!({"installment_id": "I1", "amount": 600.0, "due": "2026-07-01"}),
    );
    log.ok(
        &s,
        "PaymentReceived",
        json!({"installment_id": "I1", "amount": 600.0}),
    );
    log.ok(&s, "PaymentReceived", json!({"amount": 400.0})); // exactly the won amount in total
    log.ok(&s, "DealReopened", json!({"stage": "negotiation"}));
    // Reopened: stage changes are allowed again, from the reopening stage.
    log.ok(
        &s,
        "DealStageChanged",
        json!({"from": "negotiation", "to": "contract"}),
    );
    log.ok(&s, "DealLost", json!({"reason": "budget cut"}));
    log.ok(&s, "DealReopened", json!({"stage": "qualified"}));
}

#[test]
fn moving_back_a_stage_and_skipping_stages_are_allowed() {
    let mut log = Log::new();
    let s = log.open_deal("D-1", "qualified");
    log.ok(
        &s,
        "DealStageChanged",
        json!({"from": "qualified", "to": "negotiation"}),
    );
    log.ok(
        &s,
        "DealStageChanged",
        json!({"from": "negotiation", "to": "presentation"}),
    );
    log.ok(
        &s,
        "DealReassigned",
        json!({"from": "wukong", "to": "bajie"}),
    );
    log.ok(
        &s,
        "DealReassigned",
        json!({"from": "bajie", "to": "wukong"}),
    );
}

#[test]
fn a_defined_pipeline_replaces_the_default_one() {
    let mut log = Log::new();
    log.ok(
        "org-acme",
        "PipelineDefined",
        json!({"stages": [
        {"id": "lead", "name": "Lead", "probability": 0.0},
        {"id": "demo", "name": "Demo", "probability": 1.0}]}),
    );
    log.register_customer("C-1", Some("wukong"));
    log.ok("deal-D-1", "DealOpened", json!({"customer_id": "C-1", "owner": "wukong", "title": "t", "amount": 0.0, "stage": "lead"}));
    log.ok(
        "deal-D-1",
        "DealStageChanged",
        json!({"from": "lead", "to": "demo"}),
    );
}

#[test]
fn pool_claims_releases_and_assignments() {
    let mut log = Log::new();
    let s = log.register_customer("C-1", None);
    log.ok(&s, "CustomerClaimed", json!({"rep": "wukong"}));
    log.ok(
        &s,
        "CustomerAssigned",
        json!({"rep": "bajie", "by": "tangseng"}),
    );
    log.ok(&s, "CustomerReleased", json!({"reason": "no_follow_up"}));
    log.ok(&s, "CustomerAssigned", json!({"rep": "wukong"}));
    log.ok(&s, "CustomerReleased", json!({"reason": "moved"}));
    log.ok(&s, "CustomerClaimed", json!({"rep": "bajie"}));
    log.ok(
        &s,
        "CustomerUpdated",
        json!({"industry": "manufacturing", "tags": ["vip"]}),
    );
    log.ok(&s, "ComplaintFiled", json!({"complaint_id": "K1"}));
    log.ok(&s, "ComplaintResolved", json!({"complaint_id": "K1"}));
    log.ok(
        &s,
        "ComplaintFiled",
        json!({"complaint_id": "K1", "summary": "again"}),
    );
    log.ok(&s, "NpsRecorded", json!({"score": 0}));
    log.ok(&s, "NpsRecorded", json!({"score": 10}));
    log.ok(&s, "CustomerChurned", json!({}));
}

#[test]
fn a_disqualified_lead_can_be_qualified_again_and_converted() {
    let mut log = Log::new();
    log.ok(
        "lead-L-1",
        "LeadCaptured",
        json!({"channel": "baidu", "name": "Tang", "campaign": "spring"}),
    );
    log.ok(
        "lead-L-1",
        "LeadDisqualified",
        json!({"reason": "no budget"}),
    );
    log.ok(
        "lead-L-1",
        "LeadQualified",
        json!({"rep": "wukong", "fit_score": 0, "intent_score": 100}),
    );
    log.ok(
        "lead-L-1",
        "LeadConverted",
        json!({"customer_id": "C-1", "deal_id": "D-1"}),
    );
}

#[test]
fn a_rep_who_never_joined_is_refused_and_a_rep_who_rejoins_is_active() {
    let mut log = Log::new();
    let s = log.open_deal("D-1", "qualified");
    // niumowang never joined: not given the deal.
    let e = log.ev(
        &s,
        "DealReassigned",
        json!({"from": "wukong", "to": "niumowang"}),
    );
    let r = log.append(&s, vec![e]).unwrap_err();
    assert_eq!(
        (r.rule, r.field.as_str(), r.value.as_str()),
        ("rep.active", "data.to", "\"niumowang\"")
    );
    assert!(r.message.contains("has not joined"), "{r}");

    log.ok("org-acme", "RepLeft", json!({"rep": "bajie"}));
    let e = log.ev(
        &s,
        "DealReassigned",
        json!({"from": "wukong", "to": "bajie"}),
    );
    let r = log.append(&s, vec![e]).unwrap_err();
    assert_eq!((r.rule, r.field.as_str()), ("rep.active", "data.to"));
    assert!(r.message.contains("has left"), "{r}");

    log.ok(
        "org-acme",
        "RepJoined",
        json!({"rep": "bajie", "name": "Zhu Bajie", "team": "west", "manager": "tangseng"}),
    );
    log.ok(
        &s,
        "DealReassigned",
        json!({"from": "wukong", "to": "bajie"}),
    );
    log.ok(
        "org-acme",
        "TargetSet",
        json!({"team": "west", "month": "2026-06", "amount": 500000.0}),
    );
    log.ok(
        "org-acme",
        "TargetSet",
        json!({"month": "2026-06", "amount": 900000.0}),
    );
    assert_eq!(log.org.reps["bajie"].team, "west");
    assert!(log.org.reps["bajie"].active);
}

#[test]
fn an_empty_batch_changes_nothing() {
    let mut log = Log::new();
    let s = log.open_deal("D-1", "qualified");
    assert_eq!(log.check(&s, &[]).unwrap(), log.state(&s));
}

#[test]
fn times_at_the_end_of_the_calendar_are_refused_without_panicking() {
    let mut log = Log::new();
    let s = log.open_deal("D-1", "qualified");
    let mut e = log.ev(
        &s,
        "ActivityLogged",
        json!({"kind": "note", "rep": "wukong"}),
    );
    e.recorded_at = chrono::DateTime::<chrono::Utc>::MAX_UTC;
    e.occurred_at = chrono::DateTime::<chrono::Utc>::MAX_UTC;
    assert_eq!(
        log.check(&s, &[e]).unwrap_err().rule,
        "time.recorded_in_future"
    );
    log.now = chrono::DateTime::<chrono::Utc>::MAX_UTC;
    let mut e = log.ev(
        &s,
        "ActivityLogged",
        json!({"kind": "note", "rep": "wukong"}),
    );
    e.recorded_at = chrono::DateTime::<chrono::Utc>::MAX_UTC;
    e.occurred_at = chrono::DateTime::<chrono::Utc>::MAX_UTC;
    assert!(log.check(&s, &[e]).is_ok());
}

#[test]
fn a_deal_opens_on_the_owners_customer_or_a_pool_one_and_either_may_move_later() {
    let mut log = Log::new();
    log.register_customer("C-1", Some("wukong"));
    let pool = log.register_customer("C-P", None);
    let open = |customer: &str, owner: &str| json!({"customer_id": customer, "owner": owner, "title": "t", "amount": 1.0, "stage": "qualified"});
    log.ok("deal-D-1", "DealOpened", open("C-1", "wukong"));
    // A pool customer is nobody's: any rep may open a deal on it, without claiming it.
    log.ok("deal-D-2", "DealOpened", open("C-P", "bajie"));
    log.ok("deal-D-3", "DealOpened", open("C-P", "wukong"));
    // Later moves of the deal or of the customer are not this rule's business.
    log.ok(
        "deal-D-1",
        "DealReassigned",
        json!({"from": "wukong", "to": "bajie"}),
    );
    log.ok(&pool, "CustomerClaimed", json!({"rep": "shaseng"}));
    log.ok(
        "customer-C-1",
        "CustomerAssigned",
        json!({"rep": "shaseng", "by": "tangseng"}),
    );
    log.ok("deal-D-4", "DealOpened", open("C-1", "shaseng"));
}
