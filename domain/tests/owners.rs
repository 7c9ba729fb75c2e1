//! The owner index ([`Owners`]) against the fold it stands for: for generated deal and
//! customer streams, given to the index in log order and in reverse, the owner it names is
//! the one `fold_stream` ends with. The streams have late entries and ties of
//! `occurred_at`, changes and second openings before the first opening in business order,
//! `CustomerUpdated.owner`, and events whose data does not parse.

use chrono::{DateTime, Duration, Utc};
use domain::state::{fold_stream, Owner, Owners, StreamState};
use domain::RecordedEvent;
use proptest::prelude::*;
use serde_json::{json, Value};

const REPS: [&str; 3] = ["wukong", "bajie", "wujing"];

fn base() -> DateTime<Utc> {
    domain::envelope::parse_time("2026-03-01T00:00:00Z").unwrap()
}

/// One generated event: what, and how many hours after `base` it occurred.
#[derive(Debug, Clone)]
enum Kind {
    Opened(Option<usize>),
    /// A deal's reassignment, a customer's claim.
    Taken(usize),
    /// A customer's assignment (deals: a stage change).
    Assigned(usize),
    /// A customer's release (deals: an amount change).
    Released,
    /// `CustomerUpdated` with or without an owner (deals: an activity).
    Updated(Option<usize>),
    /// Data that does not parse as the type.
    Garbled,
}

fn kind() -> impl Strategy<Value = Kind> {
    prop_oneof![
        1 => proptest::option::of(0..REPS.len()).prop_map(Kind::Opened),
        3 => (0..REPS.len()).prop_map(Kind::Taken),
        2 => (0..REPS.len()).prop_map(Kind::Assigned),
        2 => Just(Kind::Released),
        2 => proptest::option::of(0..REPS.len()).prop_map(Kind::Updated),
        1 => Just(Kind::Garbled),
    ]
}

fn event(deal: bool, kind: &Kind) -> (&'static str, Value) {
    let rep = |i: &usize| REPS[*i];
    match (deal, kind) {
        (true, Kind::Opened(o)) => (
            "DealOpened",
            json!({"customer_id": "C1", "owner": o.as_ref().map_or("bajie", rep),
                   "title": "ERP", "amount": 100.0, "stage": "qualify"}),
        ),
        (true, Kind::Taken(i)) => ("DealReassigned", json!({"from": "x", "to": rep(i)})),
        (true, Kind::Assigned(_)) => (
            "DealStageChanged",
            json!({"from": "qualify", "to": "quote"}),
        ),
        (true, Kind::Released) => ("DealAmountChanged", json!({"amount": 5.0})),
        (true, Kind::Updated(_)) => ("ActivityLogged", json!({"kind": "call", "rep": "wukong"})),
        (true, Kind::Garbled) => ("DealReassigned", json!({"to": 7})),
        (false, Kind::Opened(o)) => (
            "CustomerRegistered",
            match o {
                Some(i) => json!({"name": "Acme", "owner": rep(i)}),
                None => json!({"name": "Acme"}),
            },
        ),
        (false, Kind::Taken(i)) => ("CustomerClaimed", json!({"rep": rep(i)})),
        (false, Kind::Assigned(i)) => ("CustomerAssigned", json!({"rep": rep(i)})),
        (false, Kind::Released) => ("CustomerReleased", json!({"reason": "idle"})),
        (false, Kind::Updated(o)) => (
            "CustomerUpdated",
            match o {
                Some(i) => json!({"owner": rep(i)}),
                None => json!({"name": "Acme Ltd"}),
            },
        ),
        (false, Kind::Garbled) => ("CustomerClaimed", json!({"rep": ["x"]})),
    }
}

fn stream(deal: bool, ops: &[(Kind, i64)]) -> (String, Vec<RecordedEvent>) {
    let name = if deal { "deal-D1" } else { "customer-C1" };
    let events = ops
        .iter()
        .enumerate()
        .map(|(i, (kind, hours))| {
            let (event_type, data) = event(deal, kind);
            RecordedEvent {
                id: uuid::Uuid::from_u128(i as u128 + 1),
                stream: name.into(),
                event_type: event_type.into(),
                version: i as u64,
                position: 10 + 2 * i as u64,
                occurred_at: base() + Duration::hours(*hours),
                recorded_at: base() + Duration::hours(100 + i as i64),
                actor: "admin".into(),
                data: data.into(),
                metadata: Default::default(),
                schema_version: 1,
            }
        })
        .collect();
    (name.to_string(), events)
}

/// What the fold says (the API's scope maps the same way).
fn folded(stream: &str, events: &[RecordedEvent]) -> Option<Option<String>> {
    if events.is_empty() {
        return None;
    }
    Some(match fold_stream(stream, events) {
        StreamState::Deal(d) => Some(d.owner.to_string()),
        StreamState::Customer(c) => c.owner,
        _ => None,
    })
}

fn indexed(owners: &Owners, stream: &str) -> Option<Option<String>> {
    match owners.owner(stream) {
        Owner::Missing => None,
        Owner::Nobody => Some(None),
        Owner::Rep(r) => Some(Some(r.to_string())),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn the_index_names_the_owner_the_fold_ends_with(
        deal in any::<bool>(),
        ops in proptest::collection::vec((kind(), 0i64..6), 0..12),
    ) {
        let (name, events) = stream(deal, &ops);
        let want = folded(&name, &events);
        let mut forward = Owners::new();
        let mut backward = Owners::new();
        for ev in &events {
            forward.apply(ev);
        }
        for ev in events.iter().rev() {
            backward.apply(ev);
        }
        prop_assert_eq!(indexed(&forward, &name), want.clone());
        prop_assert_eq!(indexed(&backward, &name), want);
    }
}

/// Hand-checked: a claim logged after the registration but dated before it is ignored by
/// the fold (the customer did not exist yet), so by the index; a later release empties it.
#[test]
fn a_change_dated_before_the_opening_does_not_count() {
    let (name, events) = stream(
        false,
        &[
            (Kind::Opened(Some(0)), 3),
            (Kind::Taken(1), 1),
            (Kind::Updated(None), 4),
        ],
    );
    let mut owners = Owners::new();
    for ev in &events {
        owners.apply(ev);
    }
    assert_eq!(owners.owner(&name), Owner::Rep("wukong"));
    assert_eq!(owners.owner("customer-C2"), Owner::Missing);
    let (_, more) = stream(false, &[(Kind::Released, 5)]);
    let mut release = more[0].clone();
    release.position = 99;
    owners.apply(&release);
    assert_eq!(owners.owner(&name), Owner::Nobody);
    // A deal stream whose only event does not parse exists, without an owner.
    let (deal, garbled) = stream(true, &[(Kind::Garbled, 0)]);
    owners.apply(&garbled[0]);
    assert_eq!(owners.owner(&deal), Owner::Nobody);
}
