//! Every rule of the catalogue, shown refusing an invalid event: the rejection names the
//! rule code, the field and the value, carries the index of the bad event in its batch, and
//! nothing of the batch is written (a valid event before the bad one is not written either).

mod common;

use std::collections::BTreeSet;

use common::{at, Log};
use domain::rules::{rule, RULES};
use domain::RecordedEvent;
use serde_json::{json, Value};

struct Case {
    name: &'static str,
    rule: &'static str,
    log: Log,
    stream: String,
    batch: Vec<RecordedEvent>,
    index: Option<usize>,
    field: &'static str,
    value: &'static str,
}

/// A valid event for a deal or customer stream: a call.
fn call(log: &mut Log, stream: &str) -> RecordedEvent {
    log.ev(
        stream,
        "ActivityLogged",
        json!({"kind": "call", "rep": "wukong", "direction": "outbound"}),
    )
}

/// `[valid event, bad event]` on a deal or customer stream: the bad one is at index 1.
fn after_call(log: &mut Log, stream: &str, event_type: &str, data: Value) -> Vec<RecordedEvent> {
    let first = call(log, stream);
    vec![first, log.ev(stream, event_type, data)]
}

#[allow(clippy::too_many_arguments)] // one row of the table, read left to right
fn case(
    name: &'static str,
    rule: &'static str,
    log: Log,
    stream: &str,
    batch: Vec<RecordedEvent>,
    index: Option<usize>,
    field: &'static str,
    value: &'static str,
) -> Case {
    Case {
        name,
        rule,
        log,
        stream: stream.to_string(),
        batch,
        index,
        field,
        value,
    }
}

#[rustfmt::skip] // a table: one case per line
fn envelope_cases() -> Vec<Case> {
    let mut v = Vec::new();

    let mut log = Log::new();
    let b = vec![log.ev("deals-D-1", "DealOpened", json!({}))];
    v.push(case("unknown category", "stream.name", log, "deals-D-1", b, None, "stream", "\"deals-D-1\""));

    let mut log = Log::new();
    let b = vec![log.ev("deal-D 1", "DealOpened", json!({}))];
    v.push(case("bad entity id", "stream.name", log, "deal-D 1", b, None, "stream", "\"deal-D 1\""));

    let mut log = Log::new();
    let s = log.open_deal("D-1", "qualified");
    let mut b = after_call(&mut log, &s, "ActivityLogged", json!({"kind": "note", "rep": "wukong"}));
    b[1].stream = "deal-D-2".into();
    v.push(case("event names another stream", "stream.match", log, &s, b, Some(1), "stream", "\"deal-D-2\""));

    let mut log = Log::new();
    let s = log.open_deal("D-1", "qualified");
    let mut b = after_call(&mut log, &s, "ActivityLogged", json!({"kind": "note", "rep": "wukong"}));
    b[1].actor = "  ".into();
    v.push(case("blank actor", "event.actor", log, &s, b, Some(1), "actor", "\"  \""));

    let mut log = Log::new();
    let s = log.open_deal("D-1", "qualified");
    let mut b = after_call(&mut log, &s, "ActivityLogged", json!({"kind": "note", "rep": "wukong"}));
    b[1].metadata.insert("blob".into(), json!("x".repeat(4090)));
    // {"blob":"xxx…"} = 1 + 6 + 1 + (4090 + 2) + 1 = 4101 bytes.
    v.push(case("metadata over 4 KiB", "event.metadata_size", log, &s, b, Some(1), "metadata", "4101"));

    let mut log = Log::new();
    let s = log.open_deal("D-1", "qualified");
    let mut b = after_call(&mut log, &s, "ActivityLogged", json!({"kind": "note", "rep": "wukong"}));
    b[1].recorded_at = at("2027-03-01T00:00:00Z"); // now is 2027-01-01
    b[1].occurred_at = at("2027-03-01T00:00:00Z");
    v.push(case("far-future import", "time.recorded_in_future", log, &s, b, Some(1), "recorded_at", "\"2027-03-01T00:00:00Z\""));

    let mut log = Log::new();
    let s = log.open_deal("D-1", "qualified");
    let mut b = after_call(&mut log, &s, "ActivityLogged", json!({"kind": "note", "rep": "wukong"}));
    b[1].recorded_at = at("2026-06-02T10:00:00Z");
    b[1].occurred_at = at("2026-06-02T10:05:01Z");
    v.push(case("occurred 5m01s after recorded", "time.occurred_after_recorded", log, &s, b, Some(1), "occurred_at", "\"2026-06-02T10:05:01Z\""));

    let mut log = Log::new();
    let s = log.open_deal("D-1", "qualified");
    let b = after_call(&mut log, &s, "DealSigned", json!({}));
    v.push(case("unknown type", "event.type_known", log, &s, b, Some(1), "type", "\"DealSigned\""));

    let mut log = Log::new();
    let s = log.register_customer("C-1", Some("wukong"));
    let b = after_call(&mut log, &s, "DealWon", json!({"amount": 5.0}));
    v.push(case("deal type on a customer", "event.type_category", log, &s, b, Some(1), "type", "\"DealWon\""));

    let mut log = Log::new();
    let s = log.open_deal("D-1", "qualified");
    let b = after_call(&mut log, &s, "DealAmountChanged", json!({"amount": "lots"}));
    v.push(case("wrong JSON type", "event.data", log, &s, b, Some(1), "data.amount", "\"lots\""));

    let mut log = Log::new();
    let s = log.open_deal("D-1", "qualified");
    let b = after_call(&mut log, &s, "DealAmountChanged", json!({"amount": 1.005}));
    v.push(case("three decimals", "event.data", log, &s, b, Some(1), "data.amount", "1.005"));

    let mut log = Log::new();
    let s = log.open_deal("D-1", "qualified");
    let b = after_call(&mut log, &s, "DealAmountChanged", json!({}));
    v.push(case("missing field", "event.data", log, &s, b, Some(1), "data", "{}"));

    let mut log = Log::new();
    let s = log.open_deal("D-1", "qualified");
    let b = after_call(&mut log, &s, "DealAmountChanged", json!({"amount": 1.0, "amout": 2.0}));
    v.push(case("unknown field", "event.data", log, &s, b, Some(1), "data.amout", "2.0"));

    let mut log = Log::new();
    let s = log.open_deal("D-1", "qualified");
    let b = after_call(&mut log, &s, "ActivityLogged", json!({"kind": "fax", "rep": "wukong"}));
    v.push(case("unknown activity kind", "event.data", log, &s, b, Some(1), "data.kind", "\"fax\""));

    let mut log = Log::new();
    let b = vec![log.ev("deal-D-9", "DealStageChanged", json!({"from": "qualified", "to": "quote"}))];
    v.push(case("deal not opened", "stream.opening_first", log, "deal-D-9", b, Some(0), "type", "\"DealStageChanged\""));

    let mut log = Log::new();
    let b = vec![log.ev("lead-L-9", "LeadQualified", json!({"rep": "wukong"}))];
    v.push(case("lead not captured", "stream.opening_first", log, "lead-L-9", b, Some(0), "type", "\"LeadQualified\""));

    let mut log = Log::new();
    let s = log.register_customer("C-1", None);
    let b = after_call(&mut log, &s, "CustomerRegistered", json!({"name": "Again"}));
    v.push(case("registered twice", "stream.opening_once", log, &s, b, Some(1), "type", "\"CustomerRegistered\""));

    let mut log = Log::new();
    let s = log.open_deal("D-1", "qualified");
    let mut b = after_call(&mut log, &s, "ActivityLogged", json!({"kind": "call", "rep": "wukong"}));
    b[1].occurred_at = at("2026-05-31T12:00:00Z"); // opened at 2026-06-01T10:00:00Z
    v.push(case("call before the deal opened", "time.before_opening", log, &s, b, Some(1), "occurred_at", "\"2026-05-31T12:00:00Z\""));
    v
}

#[rustfmt::skip] // a table: one case per line
fn value_cases() -> Vec<Case> {
    let mut v = Vec::new();

    let mut log = Log::new();
    let s = log.open_deal("D-1", "qualified");
    let b = after_call(&mut log, &s, "DealLost", json!({"reason": " "}));
    v.push(case("blank lost reason", "value.non_empty", log, &s, b, Some(1), "data.reason", "\" \""));

    let mut log = Log::new();
    let s = log.open_deal("D-1", "qualified");
    let b = after_call(&mut log, &s, "QuoteIssued", json!({"quote_id": "", "amount": 1.0}));
    v.push(case("blank quote id", "value.non_empty", log, &s, b, Some(1), "data.quote_id", "\"\""));

    let mut log = Log::new();
    let b = vec![log.ev("deal-D-1", "DealOpened", json!({"customer_id": "C 77", "owner": "wukong", "title": "t", "amount": 1.0, "stage": "qualified"}))];
    v.push(case("customer id with a space", "value.entity_id", log, "deal-D-1", b, Some(0), "data.customer_id", "\"C 77\""));

    let mut log = Log::new();
    let s = log.open_deal("D-1", "qualified");
    let b = after_call(&mut log, &s, "QuoteIssued", json!({"quote_id": "Q1", "amount": -1.0}));
    v.push(case("negative quote", "value.amount_non_negative", log, &s, b, Some(1), "data.amount", "-1.00"));

    let mut log = Log::new();
    let b = vec![log.ev("channel-baidu", "SpendRecorded", json!({"month": "2026-06", "amount": 10.0})), log.ev("channel-baidu", "SpendRecorded", json!({"month": "2026-06", "amount": -0.01}))];
    v.push(case("negative spend", "value.amount_non_negative", log, "channel-baidu", b, Some(1), "data.amount", "-0.01"));

    let mut log = Log::new();
    let s = log.register_customer("C-1", None);
    let b = after_call(&mut log, &s, "NpsRecorded", json!({"score": 11}));
    v.push(case("NPS 11", "value.in_range", log, &s, b, Some(1), "data.score", "11"));

    let mut log = Log::new();
    let s = log.register_customer("C-1", None);
    let b = after_call(&mut log, &s, "NpsRecorded", json!({"score": -1}));
    v.push(case("NPS -1", "value.in_range", log, &s, b, Some(1), "data.score", "-1"));

    let mut log = Log::new();
    log.ok("lead-L-1", "LeadCaptured", json!({"channel": "baidu", "name": "Tang"}));
    let b = vec![log.ev("lead-L-1", "LeadQualified", json!({"rep": "wukong", "fit_score": 100})), log.ev("lead-L-1", "LeadQualified", json!({"rep": "wukong", "intent_score": 101}))];
    v.push(case("intent 101", "value.in_range", log, "lead-L-1", b, Some(1), "data.intent_score", "101"));

    let mut log = Log::new();
    log.ok("lead-L-1", "LeadCaptured", json!({"channel": "baidu", "name": "Tang"}));
    let b = vec![log.ev("lead-L-1", "LeadQualified", json!({"rep": "wukong", "fit_score": -5}))];
    v.push(case("fit -5", "value.in_range", log, "lead-L-1", b, Some(0), "data.fit_score", "-5"));

    let mut log = Log::new();
    let s = log.open_deal("D-1", "qualified");
    let b = after_call(&mut log, &s, "QuoteIssued", json!({"quote_id": "Q1", "amount": 1.0, "discount_pct": 120.0}));
    v.push(case("discount 120%", "value.in_range", log, &s, b, Some(1), "data.discount_pct", "120.0"));

    let mut log = Log::new();
    let b = vec![log.ev("org-acme", "PipelineDefined", json!({"stages": [{"id": "a", "name": "A", "probability": 0.5}, {"id": "b", "name": "B", "probability": 1.5}]}))];
    v.push(case("probability 1.5", "value.in_range", log, "org-acme", b, Some(0), "data.stages[1].probability", "1.5"));

    let mut log = Log::new();
    let b = vec![log.ev("deal-D-1", "DealOpened", json!({"customer_id": "C-1", "owner": "wukong", "title": "t", "amount": 1.0, "stage": "qualified", "currency": "rmb"}))];
    v.push(case("lower-case currency", "value.currency", log, "deal-D-1", b, Some(0), "data.currency", "\"rmb\""));

    let mut log = Log::new();
    let b = vec![log.ev("org-acme", "ReportingCurrencySet", json!({"currency": "US$"}))];
    v.push(case("reporting currency US$", "value.currency", log, "org-acme", b, Some(0), "data.currency", "\"US$\""));

    let mut log = Log::new();
    let b = vec![log.ev("org-acme", "ExchangeRateSet", json!({"currency": "usd", "month": "2026-06", "rate": 7.1}))];
    v.push(case("rate for a lower-case currency", "value.currency", log, "org-acme", b, Some(0), "data.currency", "\"usd\""));

    let mut log = Log::new();
    let b = vec![log.ev("org-acme", "ExchangeRateSet", json!({"currency": "USD", "month": "2026-06", "rate": 7.1})), log.ev("org-acme", "ExchangeRateSet", json!({"currency": "EUR", "month": "2026-06", "rate": 0.0}))];
    v.push(case("rate 0", "value.rate_positive", log, "org-acme", b, Some(1), "data.rate", "0.0"));

    let mut log = Log::new();
    let b = vec![log.ev("org-acme", "ExchangeRateSet", json!({"currency": "EUR", "month": "2026-06", "rate": -7.8}))];
    v.push(case("negative rate", "value.rate_positive", log, "org-acme", b, Some(0), "data.rate", "-7.8"));
    v
}

#[rustfmt::skip] // a table: one case per line
fn org_cases() -> Vec<Case> {
    let mut v = Vec::new();
    let joined = |log: &mut Log, rep: &str| {
        log.ev("org-acme", "RepJoined", json!({"rep": rep, "name": "Zhu Bajie", "team": "east"}))
    };

    let mut log = Log::new();
    let b = vec![joined(&mut log, "bajie"), log.ev("org-acme", "PipelineDefined", json!({"stages": []}))];
    v.push(case("empty pipeline", "pipeline.non_empty", log, "org-acme", b, Some(1), "data.stages", "[]"));

    let mut log = Log::new();
    let b = vec![log.ev("org-acme", "PipelineDefined", json!({"stages": [{"id": "demo", "name": "Demo", "probability": 0.2}, {"id": "demo", "name": "Demo again", "probability": 0.4}]}))];
    v.push(case("duplicate stage id", "pipeline.unique_ids", log, "org-acme", b, Some(0), "data.stages[1].id", "\"demo\""));

    let mut log = Log::new();
    let b = vec![log.ev("org-acme", "PipelineDefined", json!({"stages": [{"id": "demo", "name": "Demo", "probability": 0.2}, {"id": "won", "name": "Won", "probability": 1.0}]}))];
    v.push(case("won as a stage", "pipeline.reserved_ids", log, "org-acme", b, Some(0), "data.stages[1].id", "\"won\""));

    let mut log = Log::new();
    let b = vec![joined(&mut log, "bajie"), log.ev("org-acme", "RepLeft", json!({"rep": "niumowang"}))];
    v.push(case("unknown rep leaves", "rep.leave_active", log, "org-acme", b, Some(1), "data.rep", "\"niumowang\""));

    let mut log = Log::new();
    // Within one batch: the second RepLeft sees the state left by the first.
    let b = vec![joined(&mut log, "bajie"), log.ev("org-acme", "RepLeft", json!({"rep": "bajie"})), log.ev("org-acme", "RepLeft", json!({"rep": "bajie"}))];
    v.push(case("rep leaves twice in one batch", "rep.leave_active", log, "org-acme", b, Some(2), "data.rep", "\"bajie\""));

    let mut log = Log::new();
    let b = vec![log.ev("org-acme", "ExchangeRateSet", json!({"currency": "CNY", "month": "2026-06", "rate": 1.0}))];
    v.push(case("rate for the default reporting currency", "rate.not_reporting_currency", log, "org-acme", b, Some(0), "data.currency", "\"CNY\""));

    let mut log = Log::new();
    // Within one batch: after the switch to USD, a CNY rate is fine and a USD one is not.
    let b = vec![
        log.ev("org-acme", "ReportingCurrencySet", json!({"currency": "USD"})),
        log.ev("org-acme", "ExchangeRateSet", json!({"currency": "CNY", "month": "2026-06", "rate": 0.14})),
        log.ev("org-acme", "ExchangeRateSet", json!({"currency": "USD", "month": "2026-06", "rate": 1.0})),
    ];
    v.push(case("rate for the reporting currency set in the batch", "rate.not_reporting_currency", log, "org-acme", b, Some(2), "data.currency", "\"USD\""));

    let mut log = Log::new();
    let b = vec![log.ev("org-acme", "TargetSet", json!({"rep": "wukong", "team": "east", "month": "2026-06", "amount": 1.0}))];
    v.push(case("target for rep and team", "target.scope", log, "org-acme", b, Some(0), "data.team", "\"east\""));

    let left = |log: &mut Log| {
        log.ok("org-acme", "RepJoined", json!({"rep": "bajie", "name": "Zhu Bajie", "team": "east"}));
        log.ok("org-acme", "RepLeft", json!({"rep": "bajie"}));
    };
    let mut log = Log::new();
    left(&mut log);
    let b = vec![log.ev("deal-D-1", "DealOpened", json!({"customer_id": "C-1", "owner": "bajie", "title": "t", "amount": 1.0, "stage": "qualified"}))];
    v.push(case("deal for a rep who left", "rep.active", log, "deal-D-1", b, Some(0), "data.owner", "\"bajie\""));

    let mut log = Log::new();
    left(&mut log);
    let s = log.open_deal("D-1", "qualified");
    let b = after_call(&mut log, &s, "DealReassigned", json!({"from": "wukong", "to": "bajie"}));
    v.push(case("reassign to a rep who left", "rep.active", log, &s, b, Some(1), "data.to", "\"bajie\""));

    let mut log = Log::new();
    left(&mut log);
    let s = log.register_customer("C-1", None);
    let b = after_call(&mut log, &s, "CustomerClaimed", json!({"rep": "bajie"}));
    v.push(case("claim by a rep who left", "rep.active", log, &s, b, Some(1), "data.rep", "\"bajie\""));

    let mut log = Log::new();
    left(&mut log);
    let s = log.register_customer("C-1", Some("wukong"));
    let b = after_call(&mut log, &s, "CustomerAssigned", json!({"rep": "bajie", "by": "tangseng"}));
    v.push(case("assign to a rep who left", "rep.active", log, &s, b, Some(1), "data.rep", "\"bajie\""));

    let mut log = Log::new();
    left(&mut log);
    let b = vec![log.ev("customer-C-1", "CustomerRegistered", json!({"name": "Huaguo", "owner": "bajie"}))];
    v.push(case("register for a rep who left", "rep.active", log, "customer-C-1", b, Some(0), "data.owner", "\"bajie\""));

    let mut log = Log::new();
    left(&mut log);
    log.ok("lead-L-1", "LeadCaptured", json!({"channel": "baidu", "name": "Tang"}));
    let b = vec![log.ev("lead-L-1", "LeadQualified", json!({"rep": "wukong"})), log.ev("lead-L-1", "LeadQualified", json!({"rep": "bajie"}))];
    v.push(case("lead to a rep who left", "rep.active", log, "lead-L-1", b, Some(1), "data.rep", "\"bajie\""));

    let mut log = Log::new();
    let s = log.open_deal("D-1", "qualified");
    let b = after_call(&mut log, &s, "ActivityLogged", json!({"kind": "visit", "rep": "niumowang"}));
    v.push(case("call by a rep who never joined", "rep.active", log, &s, b, Some(1), "data.rep", "\"niumowang\""));
    v
}

#[rustfmt::skip] // a table: one case per line
fn deal_cases() -> Vec<Case> {
    let mut v = Vec::new();
    let won = |log: &mut Log| {
        let s = log.open_deal("D-1", "contract");
        log.ok(&s, "DealWon", json!({"amount": 1000.0}));
        s
    };
    let lost = |log: &mut Log| {
        let s = log.open_deal("D-1", "negotiation");
        log.ok(&s, "DealLost", json!({"reason": "price", "competitor": "Acme"}));
        s
    };

    let mut log = Log::new();
    let s = log.open_deal("D-1", "qualified");
    let b = after_call(&mut log, &s, "DealStageChanged", json!({"from": "qualified", "to": "signed"}));
    v.push(case("to a stage that does not exist", "deal.stage_exists", log, &s, b, Some(1), "data.to", "\"signed\""));

    let mut log = Log::new();
    let b = vec![log.ev("deal-D-1", "DealOpened", json!({"customer_id": "C-1", "owner": "wukong", "title": "t", "amount": 1.0, "stage": "won"}))];
    v.push(case("opened as won", "deal.stage_exists", log, "deal-D-1", b, Some(0), "data.stage", "\"won\""));

    let mut log = Log::new();
    let s = lost(&mut log);
    let b = after_call(&mut log, &s, "DealReopened", json!({"stage": "lobbying"}));
    v.push(case("reopened into no stage", "deal.stage_exists", log, &s, b, Some(1), "data.stage", "\"lobbying\""));

    let mut log = Log::new();
    log.register_customer("C-2", Some("bajie"));
    let b = vec![log.ev("deal-D-1", "DealOpened", json!({"customer_id": "C-2", "owner": "wukong", "title": "t", "amount": 1.0, "stage": "qualified"}))];
    v.push(case("deal on another rep's customer", "deal.customer_owner", log, "deal-D-1", b, Some(0), "data.customer_id", "\"C-2\""));

    let mut log = Log::new();
    let b = vec![log.ev("deal-D-1", "DealOpened", json!({"customer_id": "C-9", "owner": "wukong", "title": "t", "amount": 1.0, "stage": "qualified"}))];
    v.push(case("deal on a customer never registered", "deal.customer_owner", log, "deal-D-1", b, Some(0), "data.customer_id", "\"C-9\""));

    let mut log = Log::new();
    log.register_customer("C-2", Some("wukong"));
    log.ok("customer-C-2", "CustomerAssigned", json!({"rep": "bajie", "by": "tangseng"}));
    let b = vec![log.ev("deal-D-1", "DealOpened", json!({"customer_id": "C-2", "owner": "wukong", "title": "t", "amount": 1.0, "stage": "qualified"}))];
    v.push(case("deal on a customer assigned away", "deal.customer_owner", log, "deal-D-1", b, Some(0), "data.customer_id", "\"C-2\""));

    let mut log = Log::new();
    log.ok("org-acme", "PipelineDefined", json!({"stages": [{"id": "lead", "name": "Lead", "probability": 0.1}, {"id": "demo", "name": "Demo", "probability": 0.5}]}));
    let b = vec![log.ev("deal-D-1", "DealOpened", json!({"customer_id": "C-1", "owner": "wukong", "title": "t", "amount": 1.0, "stage": "qualified"}))];
    v.push(case("default stage after PipelineDefined", "deal.stage_exists", log, "deal-D-1", b, Some(0), "data.stage", "\"qualified\""));

    let mut log = Log::new();
    let s = log.open_deal("D-1", "qualified");
    let b = vec![log.ev(&s, "DealStageChanged", json!({"from": "qualified", "to": "presentation"})), log.ev(&s, "DealStageChanged", json!({"from": "qualified", "to": "quote"}))];
    v.push(case("from is stale inside the batch", "deal.stage_from", log, &s, b, Some(1), "data.from", "\"qualified\""));

    let mut log = Log::new();
    let s = log.open_deal("D-1", "quote");
    let b = after_call(&mut log, &s, "DealStageChanged", json!({"from": "quote", "to": "quote"}));
    v.push(case("to the same stage", "deal.stage_unchanged", log, &s, b, Some(1), "data.to", "\"quote\""));

    let mut log = Log::new();
    let s = won(&mut log);
    let b = after_call(&mut log, &s, "DealStageChanged", json!({"from": "contract", "to": "negotiation"}));
    v.push(case("stage change after won", "deal.closed", log, &s, b, Some(1), "type", "\"DealStageChanged\""));

    let mut log = Log::new();
    let s = lost(&mut log);
    let b = after_call(&mut log, &s, "DealWon", json!({"amount": 1.0}));
    v.push(case("won after lost", "deal.closed", log, &s, b, Some(1), "type", "\"DealWon\""));

    let mut log = Log::new();
    let s = lost(&mut log);
    let b = after_call(&mut log, &s, "QuoteIssued", json!({"quote_id": "Q9", "amount": 1.0}));
    v.push(case("quote after lost", "deal.closed", log, &s, b, Some(1), "type", "\"QuoteIssued\""));

    let mut log = Log::new();
    let s = log.open_deal("D-1", "quote");
    let b = after_call(&mut log, &s, "DealReopened", json!({"stage": "quote"}));
    v.push(case("reopen an open deal", "deal.reopen_only_closed", log, &s, b, Some(1), "type", "\"DealReopened\""));

    let mut log = Log::new();
    let s = log.open_deal("D-1", "quote");
    let b = after_call(&mut log, &s, "DealReassigned", json!({"from": "bajie", "to": "shaseng"}));
    v.push(case("reassign from a non-owner", "deal.reassign_from", log, &s, b, Some(1), "data.from", "\"bajie\""));

    let mut log = Log::new();
    let s = log.open_deal("D-1", "quote");
    let b = after_call(&mut log, &s, "DealReassigned", json!({"from": "wukong", "to": "wukong"}));
    v.push(case("reassign to the owner", "deal.reassign_from", log, &s, b, Some(1), "data.to", "\"wukong\""));

    let mut log = Log::new();
    let s = log.open_deal("D-1", "contract");
    let b = after_call(&mut log, &s, "PaymentReceived", json!({"amount": 10.0}));
    v.push(case("payment on an open deal", "deal.payment_only_won", log, &s, b, Some(1), "type", "\"PaymentReceived\""));

    let mut log = Log::new();
    let s = lost(&mut log);
    let b = after_call(&mut log, &s, "PaymentScheduled", json!({"installment_id": "I1", "amount": 10.0, "due": "2026-07-01"}));
    v.push(case("schedule on a lost deal", "deal.payment_only_won", log, &s, b, Some(1), "type", "\"PaymentScheduled\""));

    let mut log = Log::new();
    let s = won(&mut log);
    let b = vec![
        log.ev(&s, "PaymentScheduled", json!({"installment_id": "I1", "amount": 500.0, "due": "2026-07-01"})),
        log.ev(&s, "PaymentScheduled", json!({"installment_id": "I1", "amount": 500.0, "due": "2026-08-01"})),
    ];
    v.push(case("installment scheduled twice", "payment.installment_unique", log, &s, b, Some(1), "data.installment_id", "\"I1\""));

    let mut log = Log::new();
    let s = won(&mut log);
    let b = vec![
        log.ev(&s, "PaymentScheduled", json!({"installment_id": "I1", "amount": 500.0, "due": "2026-07-01"})),
        log.ev(&s, "PaymentReceived", json!({"installment_id": "I2", "amount": 500.0})),
    ];
    v.push(case("payment of an unknown installment", "payment.installment_known", log, &s, b, Some(1), "data.installment_id", "\"I2\""));

    let mut log = Log::new();
    let s = won(&mut log); // won for 1000.00
    let b = vec![log.ev(&s, "PaymentReceived", json!({"amount": 600.0})), log.ev(&s, "PaymentReceived", json!({"amount": 400.01}))];
    v.push(case("paid more than won", "payment.within_won", log, &s, b, Some(1), "data.amount", "400.01"));
    v
}

#[rustfmt::skip] // a table: one case per line
fn customer_and_lead_cases() -> Vec<Case> {
    let mut v = Vec::new();

    let mut log = Log::new();
    let s = log.register_customer("C-1", Some("wukong"));
    let b = after_call(&mut log, &s, "CustomerClaimed", json!({"rep": "bajie"}));
    v.push(case("claim an owned customer", "customer.claim_from_pool", log, &s, b, Some(1), "data.rep", "\"bajie\""));

    let mut log = Log::new();
    let s = log.register_customer("C-1", None);
    let b = vec![log.ev(&s, "CustomerClaimed", json!({"rep": "wukong"})), log.ev(&s, "CustomerClaimed", json!({"rep": "bajie"}))];
    v.push(case("two claims in one batch", "customer.claim_from_pool", log, &s, b, Some(1), "data.rep", "\"bajie\""));

    let mut log = Log::new();
    let s = log.register_customer("C-1", None);
    let b = after_call(&mut log, &s, "CustomerReleased", json!({"reason": "no_follow_up"}));
    v.push(case("release a pool customer", "customer.release_owned", log, &s, b, Some(1), "type", "\"CustomerReleased\""));

    let mut log = Log::new();
    let s = log.register_customer("C-1", None);
    let b = after_call(&mut log, &s, "CustomerUpdated", json!({"region": "east", "owner": "wukong"}));
    v.push(case("owner through an update", "customer.update_owner", log, &s, b, Some(1), "data.owner", "\"wukong\""));

    let mut log = Log::new();
    let s = log.register_customer("C-1", None);
    let b = after_call(&mut log, &s, "CustomerUpdated", json!({}));
    v.push(case("update that changes nothing", "customer.update_empty", log, &s, b, Some(1), "data", "{}"));

    let mut log = Log::new();
    let s = log.register_customer("C-1", Some("wukong"));
    let b = vec![log.ev(&s, "ComplaintFiled", json!({"complaint_id": "K1", "summary": "late delivery"})), log.ev(&s, "ComplaintFiled", json!({"complaint_id": "K1"}))];
    v.push(case("complaint filed twice", "customer.complaint_unique", log, &s, b, Some(1), "data.complaint_id", "\"K1\""));

    let mut log = Log::new();
    let s = log.register_customer("C-1", Some("wukong"));
    let b = vec![log.ev(&s, "ComplaintFiled", json!({"complaint_id": "K1"})), log.ev(&s, "ComplaintResolved", json!({"complaint_id": "K2"}))];
    v.push(case("resolve an unknown complaint", "customer.complaint_open", log, &s, b, Some(1), "data.complaint_id", "\"K2\""));

    let mut log = Log::new();
    log.ok("lead-L-1", "LeadCaptured", json!({"channel": "baidu", "name": "Tang"}));
    let b = vec![log.ev("lead-L-1", "LeadConverted", json!({"customer_id": "C-1"})), log.ev("lead-L-1", "LeadDisqualified", json!({"reason": "duplicate"}))];
    v.push(case("anything after conversion", "lead.converted_final", log, "lead-L-1", b, Some(1), "type", "\"LeadDisqualified\""));

    let mut log = Log::new();
    log.ok("lead-L-1", "LeadCaptured", json!({"channel": "baidu", "name": "Tang"}));
    let b = vec![log.ev("lead-L-1", "LeadDisqualified", json!({"reason": "no budget"})), log.ev("lead-L-1", "LeadConverted", json!({"customer_id": "C-1"}))];
    v.push(case("convert a disqualified lead", "lead.convert_disqualified", log, "lead-L-1", b, Some(1), "type", "\"LeadConverted\""));

    let mut log = Log::new();
    let s = log.register_customer("C-1", Some("wukong"));
    log.ok(&s, "PersonalDataErased", json!({"reason": "asked"}));
    let b = after_call(&mut log, &s, "PersonalDataErased", json!({"reason": "again"}));
    v.push(case("erased twice", "person.erased_once", log, &s, b, Some(1), "type", "\"PersonalDataErased\""));

    let mut log = Log::new();
    let s = log.register_customer("C-1", Some("wukong"));
    log.ok(&s, "PersonalDataErased", json!({"reason": "asked"}));
    let b = after_call(&mut log, &s, "CustomerUpdated", json!({"name": "Zhuge"}));
    v.push(case("a name after erasure", "person.erased_no_personal_data", log, &s, b, Some(1), "data.name", "(personal data)"));
    v
}

fn all_cases() -> Vec<Case> {
    let mut v = envelope_cases();
    v.extend(value_cases());
    v.extend(org_cases());
    v.extend(deal_cases());
    v.extend(customer_and_lead_cases());
    v
}

#[test]
fn every_rule_refuses_its_invalid_event_and_the_whole_batch() {
    for mut c in all_cases() {
        let name = c.name;
        let written_before = c.log.events.len();
        let org_before = c.log.org.clone();
        let state_before = c.log.state(&c.stream);
        let r = c
            .log
            .append(&c.stream, c.batch.clone())
            .expect_err(&format!("{name}: should be refused"));
        assert_eq!(r.rule, c.rule, "{name}: {r}");
        assert_eq!(r.field, c.field, "{name}: {r}");
        assert_eq!(r.value, c.value, "{name}: {r}");
        assert_eq!(r.index, c.index, "{name}: {r}");
        assert!(rule(r.rule).is_some(), "{name}: {} not in RULES", r.rule);
        assert!(!r.message.is_empty(), "{name}");
        // Nothing of the batch was written, not even the valid events before the bad one.
        assert_eq!(c.log.events.len(), written_before, "{name}");
        assert_eq!(c.log.org, org_before, "{name}");
        assert_eq!(c.log.state(&c.stream), state_before, "{name}");
        // The events before the bad one are fine on their own: the bad one is to blame.
        if let Some(i) = c.index {
            if let Err(e) = c.log.check(&c.stream, &c.batch[..i]) {
                panic!("{name}: the prefix before index {i} should pass: {e}");
            }
        }
    }
}

/// An erasure closes nothing but personal data: a converted lead may be erased, a customer's
/// clear fields and calls without a summary still go in.
#[test]
fn an_erased_person_takes_events_without_personal_data() {
    let mut log = Log::new();
    log.ok(
        "lead-L-1",
        "LeadCaptured",
        json!({"channel": "baidu", "name": "Tang"}),
    );
    log.ok("lead-L-1", "LeadConverted", json!({"customer_id": "C-1"}));
    log.ok("lead-L-1", "PersonalDataErased", json!({"reason": "asked"}));
    let s = log.register_customer("C-1", Some("wukong"));
    log.ok(&s, "PersonalDataErased", json!({"reason": "asked"}));
    log.ok(&s, "CustomerUpdated", json!({"region": "west"}));
    let c = call(&mut log, &s);
    log.append(&s, vec![c]).unwrap();
    log.ok(
        &s,
        "ActivityLogged",
        json!({"kind": "call", "rep": "wukong", "summary": "  "}),
    );
    assert!(log.state(&s).as_customer().unwrap().erased);
}

#[test]
fn every_rule_of_the_catalogue_has_a_case() {
    let covered: BTreeSet<&str> = all_cases().iter().map(|c| c.rule).collect();
    let listed: BTreeSet<&str> = RULES.iter().map(|r| r.code).collect();
    assert_eq!(covered, listed);
    assert_eq!(listed.len(), RULES.len(), "rule codes are unique");
    for r in RULES {
        assert!(!r.description.is_empty(), "{}", r.code);
    }
}

#[test]
fn the_crate_docs_list_every_rule() {
    let docs = include_str!("../src/lib.rs");
    for r in RULES {
        assert!(
            docs.contains(&format!("`{}`", r.code)),
            "{} missing from lib.rs docs",
            r.code
        );
    }
}
