//! The log recorded by schema version 1 (`replay-tests/logs/v1-small.ndjson`) must be read
//! and accepted by every later version: each line parses, is canonical, upcasts, and passes
//! the rules again, event by event in log order. Never edit that file; add a new one.

use std::collections::{BTreeMap, BTreeSet};

use domain::envelope::parse_time;
use domain::rules::{check_batch, Context};
use domain::state::{fold_stream, CustomerState, DealStatus, OrgState, StreamState, TargetScope};
use domain::{typed, upcast, Money, Month, RecordedEvent, StreamName};

fn read_log() -> (Vec<String>, Vec<RecordedEvent>) {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../replay-tests/logs/v1-small.ndjson"
    );
    let text = std::fs::read_to_string(path).expect("the recorded log is in the repository");
    let lines: Vec<String> = text.lines().map(String::from).collect();
    let events = lines
        .iter()
        .enumerate()
        .map(|(i, l)| serde_json::from_str(l).unwrap_or_else(|e| panic!("line {}: {e}", i + 1)))
        .collect();
    (lines, events)
}

/// After the last event of the log (2026-07-20).
fn now() -> chrono::DateTime<chrono::Utc> {
    parse_time("2026-08-01T00:00:00Z").unwrap()
}

#[test]
fn every_line_is_canonical_and_typed() {
    let (lines, events) = read_log();
    assert!((40..=80).contains(&events.len()));
    let mut ids = BTreeSet::new();
    let mut versions: BTreeMap<&str, u64> = BTreeMap::new();
    for (i, (line, ev)) in lines.iter().zip(&events).enumerate() {
        let n = i + 1;
        assert_eq!(
            &serde_json::to_string(ev).unwrap(),
            line,
            "line {n} is not canonical"
        );
        let ev = upcast(ev.clone());
        let typed = typed(&ev).unwrap_or_else(|r| panic!("line {n}: {r}"));
        assert_eq!(
            typed.to_data(),
            ev.data,
            "line {n}: data not in canonical form"
        );
        assert!(ids.insert(ev.id), "line {n}: duplicate id");
        assert_eq!(
            ev.position, n as u64,
            "line {n}: positions are 1-based and gap-free"
        );
        let v = versions.entry(events[i].stream.as_str()).or_insert(0);
        assert_eq!(
            ev.version, *v,
            "line {n}: stream versions are 0-based and gap-free"
        );
        *v += 1;
        if i > 0 {
            assert!(
                ev.recorded_at >= events[i - 1].recorded_at,
                "line {n}: recorded out of order"
            );
        }
    }
    let mut types: BTreeSet<&str> = events.iter().map(|e| e.event_type.as_str()).collect();
    // Types added after this log was recorded (at the end of `EVENT_TYPES`).
    types.extend([
        "ReportingCurrencySet",
        "ExchangeRateSet",
        "TokenIssued",
        "TokenRevoked",
        "PersonalDataErased",
        "PersonalDataErasureAudited",
    ]);
    let all: BTreeSet<&str> = domain::events::EVENT_TYPES.iter().map(|t| t.0).collect();
    assert_eq!(types, all, "every event type of its time appears");
}

fn customer(states: &BTreeMap<String, StreamState>, id: &str) -> Option<CustomerState> {
    states
        .get(&format!("customer-{id}"))
        .and_then(|s| s.as_customer().cloned())
}

/// Replays the log through the rules, one event at a time, as an import would.
fn replay(events: &[RecordedEvent]) -> (OrgState, BTreeMap<String, StreamState>) {
    let mut org = OrgState::default();
    let mut states: BTreeMap<String, StreamState> = BTreeMap::new();
    for ev in events {
        let ev = upcast(ev.clone());
        let state = states
            .get(&ev.stream)
            .cloned()
            .unwrap_or(StreamState::Empty);
        let customers = |id: &str| customer(&states, id);
        let ctx = Context {
            org: &org,
            now: now(),
            customers: &customers,
        };
        let after = check_batch(&ctx, &state, &ev.stream, std::slice::from_ref(&ev))
            .unwrap_or_else(|r| panic!("position {}: {r}", ev.position));
        if StreamName::parse(&ev.stream).unwrap().category == domain::Category::Org {
            org.apply(&ev);
        }
        states.insert(ev.stream.clone(), after);
    }
    (org, states)
}

#[test]
fn the_whole_log_passes_the_rules_again_and_folds_to_the_known_figures() {
    let (_, events) = read_log();
    let (org, states) = replay(&events);

    // Figures checked by hand against the log.
    let StreamState::Deal(d) = &states["deal-D-1001"] else {
        panic!()
    };
    assert_eq!(d.status, DealStatus::Won);
    assert_eq!(&*d.stage, "contract");
    assert_eq!(d.amount, Money(11_500_050));
    assert_eq!(d.paid, Money(5_750_025));
    assert_eq!((d.quotes, d.activities), (1, 2));
    assert_eq!(d.competitors, [std::sync::Arc::from("Acme")]);
    assert_eq!(d.opened_at, parse_time("2026-05-08T01:00:01Z").unwrap());
    assert_eq!(
        d.stage_entered_at,
        parse_time("2026-06-10T02:00:00Z").unwrap()
    );
    assert_eq!(d.last_touch_at, parse_time("2026-07-20T05:00:00Z").unwrap());
    assert_eq!(d.source_lead.as_deref(), Some("L-2001"));

    let StreamState::Deal(d) = &states["deal-D-1002"] else {
        panic!()
    };
    assert_eq!(d.status, DealStatus::Lost);
    assert_eq!(
        (&*d.owner, &*d.stage, &*d.currency),
        ("wukong", "negotiation", "USD")
    );
    assert_eq!((d.quotes, d.activities), (1, 2));
    assert_eq!(d.lost_reason.as_deref(), Some("budget"));

    let StreamState::Customer(c) = &states["customer-C-77"] else {
        panic!()
    };
    assert_eq!(
        (c.nps, c.complaints, c.open_complaints.len(), c.activities),
        (Some(8), 1, 0, 1)
    );
    assert_eq!(c.region.as_deref(), Some("east-shanghai"));
    let StreamState::Customer(c) = &states["customer-C-78"] else {
        panic!()
    };
    assert!(c.churned);
    assert_eq!(c.owner.as_deref(), Some("wukong"));

    let StreamState::Lead(l) = &states["lead-L-2001"] else {
        panic!()
    };
    assert_eq!(l.deal_id.as_deref(), Some("D-1001"));

    assert_eq!(org.pipeline.stages.len(), 5);
    assert!(org.rep_has_left("shaseng"));
    let june = Month::parse("2026-06").unwrap();
    assert_eq!(
        org.target(&TargetScope::Rep("wukong".into()), june),
        Some(Money(30_000_000))
    );
    assert_eq!(
        org.target(&TargetScope::Team("east".into()), june),
        Some(Money(80_000_000))
    );

    // A plain fold agrees with what the rules carried along, and each stream also passes as one batch.
    for (stream, state) in &states {
        let evs: Vec<RecordedEvent> = events
            .iter()
            .filter(|e| &e.stream == stream)
            .cloned()
            .collect();
        assert_eq!(&fold_stream(stream, &evs), state, "{stream}");
        // Each stream on its own; a deal's customer as it stood when the deal was opened.
        let opened_at = evs.first().map_or(0, |e| e.position);
        let customers = |id: &str| {
            let stream = format!("customer-{id}");
            let before: Vec<RecordedEvent> = events
                .iter()
                .filter(|e| e.stream == stream && e.position < opened_at)
                .cloned()
                .collect();
            fold_stream(&stream, &before).as_customer().cloned()
        };
        let ctx = Context {
            org: &org,
            now: now(),
            customers: &customers,
        };
        if !stream.starts_with("org-") {
            assert_eq!(
                &check_batch(&ctx, &StreamState::Empty, stream, &evs).unwrap(),
                state
            );
        }
    }
}

#[test]
fn the_recorded_log_is_refused_if_replayed_before_it_was_recorded() {
    // The rules use `now` as given: the same log checked as of May 2026 holds far-future events.
    let (_, events) = read_log();
    let org = OrgState::default();
    let ctx = Context {
        org: &org,
        now: parse_time("2026-05-01T00:00:00Z").unwrap(),
        customers: &|_: &str| None,
    };
    let r = check_batch(&ctx, &StreamState::Empty, "org-acme", &events[..1]).unwrap_err();
    assert_eq!(r.rule, "time.recorded_in_future");
}
