//! `rep.active`: every field that names a rep accepts only a rep who joined and has not
//! left. One row per field, each refused for a rep who never joined and accepted for one of
//! the team; and a log written before the rule, with such reps in it, still folds.

mod common;

use common::Log;
use domain::state::{fold_stream, OrgState, StreamState};
use serde_json::{json, Value};

/// A rep who never joined `Log::new()`'s org.
const STRANGER: &str = "niumowang";

/// One field that names a rep: the stream and event that carry it, given the rep.
struct Row {
    field: &'static str,
    stream: &'static str,
    event_type: &'static str,
    data: fn(&str) -> Value,
}

#[rustfmt::skip] // a table: one field per line
const ROWS: &[Row] = &[
    Row { field: "DealOpened.owner", stream: "deal-D-2", event_type: "DealOpened", data: |r| json!({"customer_id": "C-P", "owner": r, "title": "t", "amount": 1.0, "stage": "qualified"}) },
    Row { field: "DealReassigned.to", stream: "deal-D-1", event_type: "DealReassigned", data: |r| json!({"from": "wukong", "to": r}) },
    Row { field: "CustomerRegistered.owner", stream: "customer-C-2", event_type: "CustomerRegistered", data: |r| json!({"name": "Huaguo", "owner": r}) },
    Row { field: "CustomerClaimed.rep", stream: "customer-C-P", event_type: "CustomerClaimed", data: |r| json!({"rep": r}) },
    Row { field: "CustomerAssigned.rep", stream: "customer-C-1", event_type: "CustomerAssigned", data: |r| json!({"rep": r, "by": "tangseng"}) },
    Row { field: "LeadQualified.rep", stream: "lead-L-1", event_type: "LeadQualified", data: |r| json!({"rep": r}) },
    Row { field: "ActivityLogged.rep", stream: "deal-D-1", event_type: "ActivityLogged", data: |r| json!({"kind": "call", "rep": r}) },
    Row { field: "TargetSet.rep", stream: "org-acme", event_type: "TargetSet", data: |r| json!({"rep": r, "month": "2026-06", "amount": 1.0}) },
];

/// The team joined, deal D-1 open on wukong's customer C-1, pool customer C-P, lead L-1.
fn org_with_work() -> Log {
    let mut log = Log::new();
    log.open_deal("D-1", "qualified");
    log.register_customer("C-P", None);
    log.ok(
        "lead-L-1",
        "LeadCaptured",
        json!({"channel": "baidu", "name": "Tang"}),
    );
    log
}

#[test]
fn every_field_that_names_a_rep_refuses_a_rep_who_never_joined() {
    for row in ROWS {
        let mut log = org_with_work();
        let e = log.ev(row.stream, row.event_type, (row.data)(STRANGER));
        let r = log.append(row.stream, vec![e]).expect_err(&format!(
            "{}: a rep who never joined should be refused",
            row.field
        ));
        let (_, name) = row.field.split_once('.').unwrap();
        assert_eq!(r.rule, "rep.active", "{}: {r}", row.field);
        assert_eq!(r.field, format!("data.{name}"), "{}: {r}", row.field);
        assert_eq!(r.value, format!("{STRANGER:?}"), "{}: {r}", row.field);
        assert!(r.message.contains("has not joined"), "{}: {r}", row.field);

        // The same event for a rep of the team passes: the rep is to blame, nothing else.
        let mut log = org_with_work();
        let e = log.ev(row.stream, row.event_type, (row.data)("shaseng"));
        if let Err(r) = log.append(row.stream, vec![e]) {
            panic!("{}: shaseng joined, should pass: {r}", row.field);
        }
    }
}

#[test]
fn the_rule_documents_every_field_it_checks() {
    let rule = domain::rules::rule("rep.active").unwrap();
    let docs = include_str!("../src/lib.rs");
    for row in ROWS {
        assert!(rule.description.contains(row.field), "{}", row.field);
        assert!(
            docs.contains(row.field),
            "{} missing from lib.rs docs",
            row.field
        );
    }
}

/// A log written before `rep.active`: wukong and bajie work without ever joining.
fn log_from_before_the_rule() -> Log {
    let mut log = Log::empty();
    let old = [
        (
            "customer-C-1",
            "CustomerRegistered",
            json!({"name": "Huaguo", "owner": "wukong"}),
        ),
        (
            "deal-D-1",
            "DealOpened",
            json!({"customer_id": "C-1", "owner": "wukong", "title": "t", "amount": 5.0, "stage": "qualified"}),
        ),
        (
            "deal-D-1",
            "ActivityLogged",
            json!({"kind": "call", "rep": "wukong"}),
        ),
        (
            "deal-D-1",
            "DealReassigned",
            json!({"from": "wukong", "to": "bajie"}),
        ),
        (
            "org-acme",
            "TargetSet",
            json!({"rep": "bajie", "month": "2026-06", "amount": 9.0}),
        ),
    ];
    for (position, (stream, event_type, data)) in old.into_iter().enumerate() {
        let mut e = log.ev(stream, event_type, data);
        e.position = position as u64 + 1;
        e.version = log.events.iter().filter(|x| x.stream == stream).count() as u64;
        log.events.push(e); // written as it was then: no rules
    }
    log
}

#[test]
fn a_log_from_before_the_rule_still_folds() {
    let log = log_from_before_the_rule();
    // The rule refuses the same events as new appends...
    let opened: Vec<_> = log
        .events
        .iter()
        .filter(|e| e.stream == "customer-C-1")
        .cloned()
        .collect();
    assert_eq!(
        log.check("customer-C-1", &opened).unwrap_err().rule,
        "rep.active"
    );
    // ...but reading the log folds them as before.
    let StreamState::Deal(deal) = fold_stream("deal-D-1", &log.events) else {
        panic!("deal-D-1 folds to a deal")
    };
    assert_eq!((&*deal.owner, deal.activities), ("bajie", 1));
    let mut org = OrgState::default();
    for e in log.events.iter().filter(|e| e.stream == "org-acme") {
        org.apply(e);
    }
    assert!(org.reps.is_empty());
    assert_eq!(org.targets.len(), 1);
}
