//! The bulk path of an import: `append_checked` (refused unless the log still ends where the
//! caller checked it; chained calls in flight; the validator forgets its cache) and
//! `events_by_ids` (the answers in the order asked, from the index in memory and in the tree).

mod common;

use std::sync::Arc;

use common::{note_with_id, open, open_with};
use eventlog::rules::DomainRules;
use eventlog::{EventStore, ExpectedVersion, ProposedEvent, StoreError, StreamBatch};
use serde_json::json;

fn batch(stream: &str, events: Vec<ProposedEvent>) -> StreamBatch {
    StreamBatch {
        stream: stream.into(),
        expected: ExpectedVersion::Any,
        events,
    }
}

#[tokio::test]
async fn a_checked_append_is_refused_once_the_log_has_moved() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let first = batch("customer-C-1", vec![note_with_id(1), note_with_id(2)]);
    let second = batch("customer-C-2", vec![note_with_id(3)]);
    // Two chunks in flight, the second checked against the end of the first.
    let (a, b) = tokio::join!(
        store.append_checked(vec![first], 0),
        store.append_checked(vec![second], 2)
    );
    assert_eq!(a.unwrap()[0].last_position, 2);
    let b = b.unwrap();
    assert_eq!((b[0].first_position, b[0].next_expected_version), (3, 0));
    // Checked against position 2, but the log ends at 3: nothing is written.
    let stale = store
        .append_checked(vec![batch("customer-C-1", vec![note_with_id(4)])], 2)
        .await
        .unwrap_err();
    assert!(
        matches!(&stale.error, StoreError::Invalid(m) if m.contains("moved")),
        "{stale}"
    );
    assert_eq!(store.last_position().await.unwrap(), 3);
    // Versions continue the stream as it is.
    let next = store
        .append_checked(vec![batch("customer-C-1", vec![note_with_id(5)])], 3)
        .await
        .unwrap();
    assert_eq!(next[0].next_expected_version, 2);
}

/// A checked append passes the validator by; the domain's rules then forget the organisation
/// they had cached, so the next ordinary append sees the rep the bulk path added.
#[tokio::test]
async fn the_rules_see_what_a_checked_append_wrote() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_with(dir.path(), Arc::new(DomainRules::default()));
    let event = |t: &str, data: serde_json::Value| ProposedEvent {
        id: None,
        event_type: t.into(),
        occurred_at: None,
        actor: None,
        data,
        metadata: None,
        recorded_at: None,
    };
    let joined = |rep: &str| {
        event(
            "RepJoined",
            json!({"rep": rep, "name": rep, "team": "east"}),
        )
    };
    store
        .append("org-acme", ExpectedVersion::Any, vec![joined("bajie")])
        .await
        .unwrap();
    // The organisation is cached now (bajie only); wukong joins through the bulk path.
    store
        .append_checked(vec![batch("org-acme", vec![joined("wukong")])], 1)
        .await
        .unwrap();
    store
        .append(
            "org-acme",
            ExpectedVersion::Any,
            vec![event("RepLeft", json!({"rep": "wukong"}))],
        )
        .await
        .expect("wukong is known to the rules");
}

#[tokio::test]
async fn events_by_ids_answers_in_order_from_memory_and_from_the_tree() {
    let dir = tempfile::tempdir().unwrap();
    let written: Vec<ProposedEvent> = (0..300).map(note_with_id).collect();
    let ids: Vec<uuid::Uuid> = written.iter().map(|e| e.id.unwrap()).collect();
    {
        // Closing writes the index to the tree.
        let store = open(dir.path());
        store
            .append(
                "customer-C-1",
                ExpectedVersion::Any,
                written[..200].to_vec(),
            )
            .await
            .unwrap();
    }
    let store = open(dir.path());
    for chunk in written[200..].chunks(10) {
        store
            .append("customer-C-2", ExpectedVersion::Any, chunk.to_vec())
            .await
            .unwrap();
    }
    let missing = uuid::Uuid::now_v7();
    // Out of log order, with a missing id and a repeat.
    let asked = vec![
        ids[250], missing, ids[3], ids[199], ids[3], ids[299], ids[0],
    ];
    let found = store.events_by_ids(&asked).await.unwrap();
    assert_eq!(found.len(), asked.len());
    let positions: Vec<Option<u64>> = found
        .iter()
        .map(|e| e.as_ref().map(|e| e.position))
        .collect();
    assert_eq!(
        positions,
        [
            Some(251),
            None,
            Some(4),
            Some(200),
            Some(4),
            Some(300),
            Some(1)
        ]
    );
    for (id, ev) in asked.iter().zip(&found) {
        if let Some(ev) = ev {
            assert_eq!(ev.id, *id);
            assert_eq!(Some(ev), store.event_by_id(*id).await.unwrap().as_ref());
        }
    }
}

/// An import's ids are random (UUIDv5 of the source key), so they get single `I` entries,
/// which the index writes in batches of their own, before the rest and the watermark. A
/// checked append of more of them than one such batch holds, spread over several streams,
/// each id found by `events_by_ids` before and after the store closes (which writes the
/// index), and `verify` walks the log and its indexes.
#[tokio::test]
async fn many_random_ids_are_indexed_and_verify() {
    const N: u64 = 10_000;
    let dir = tempfile::tempdir().unwrap();
    // A store-generated (UUIDv7) id first: every random id after it below it gets an `I`
    // entry, the others join id runs.
    let events: Vec<ProposedEvent> = (0..N)
        .map(|n| ProposedEvent {
            id: Some(uuid::Uuid::new_v4()),
            ..common::note(n)
        })
        .collect();
    let ids: Vec<uuid::Uuid> = events.iter().map(|e| e.id.unwrap()).collect();
    {
        let store = open(dir.path());
        store
            .append("customer-C-0", ExpectedVersion::Any, vec![common::note(0)])
            .await
            .unwrap();
        let batches: Vec<StreamBatch> = events
            .chunks(100)
            .enumerate()
            .map(|(i, c)| batch(&format!("customer-C-{}", i % 7 + 1), c.to_vec()))
            .collect();
        store.append_checked(batches, 1).await.unwrap();
        let found = store.events_by_ids(&ids).await.unwrap();
        assert!(found
            .iter()
            .zip(2..)
            .all(|(e, p)| e.as_ref().is_some_and(|e| e.position == p)));
    }
    let store = open(dir.path());
    assert_eq!(store.verify(&mut |_| {}).unwrap().events, N + 1);
    let found = store.events_by_ids(&ids).await.unwrap();
    for ((e, id), p) in found.iter().zip(&ids).zip(2..) {
        let e = e.as_ref().expect("every id is found");
        assert_eq!((e.id, e.position), (*id, p));
    }
}
