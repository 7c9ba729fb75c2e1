//! The bulk path of an import: `append_checked` (refused unless the log still ends where the
//! caller checked it; chained calls in flight; the validator forgets its cache) and
//! `events_by_ids` (the answers in the order asked, from the index in memory and in the tree).

mod common;

use std::sync::Arc;

use common::{note_with_id, open, open_with};
use eventlog::rules::DomainRules;
use eventlog::{EventStore, ExpectedVersion, ProposedEvent, SledStore, StoreError, StreamBatch};
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

/// A checked batch's `NoStream` is taken at the caller's word (the tree is not searched), but
/// not against what the store holds in memory: the same request, the group, the streams the
/// writer has seen. Versions then start at 0 for the new stream and continue for the others.
#[tokio::test]
async fn a_checked_no_stream_is_trusted_only_where_memory_does_not_say_otherwise() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let opens = |stream: &str, events| StreamBatch {
        expected: ExpectedVersion::NoStream,
        ..batch(stream, events)
    };
    let out = store
        .append_checked(
            vec![
                opens("customer-C-1", vec![note_with_id(1), note_with_id(2)]),
                opens("customer-C-2", vec![note_with_id(3)]),
                batch("customer-C-1", vec![note_with_id(4)]),
            ],
            0,
        )
        .await
        .unwrap();
    let versions: Vec<u64> = out.iter().map(|o| o.next_expected_version).collect();
    assert_eq!(versions, [1, 0, 2]);
    // The same stream said new twice in one request: refused, nothing written.
    let twice = store
        .append_checked(
            vec![
                opens("customer-C-3", vec![note_with_id(5)]),
                opens("customer-C-3", vec![note_with_id(6)]),
            ],
            4,
        )
        .await
        .unwrap_err();
    assert_eq!(twice.index, Some(1), "{twice}");
    assert!(
        matches!(twice.error, StoreError::WrongExpectedVersion { .. }),
        "{twice}"
    );
    // A stream written by an earlier request, said new: refused.
    let known = store
        .append_checked(vec![opens("customer-C-2", vec![note_with_id(7)])], 4)
        .await
        .unwrap_err();
    assert!(
        matches!(known.error, StoreError::WrongExpectedVersion { .. }),
        "{known}"
    );
    assert_eq!(store.last_position().await.unwrap(), 4);
    let c1 = store.read_stream("customer-C-1", 0, 10).await.unwrap();
    assert_eq!(c1.iter().map(|e| e.version).collect::<Vec<_>>(), [0, 1, 2]);
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
        data: data.into(),
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

/// `n` notes of stream `customer-C-{s}`, each with a body big enough that a batch of them
/// fills several 64 KiB log chunks.
/// Their ids follow from `(round, s, i)`.
fn bulky(round: u64, s: u64, n: u64) -> StreamBatch {
    let body = "x".repeat(200);
    batch(
        &format!("customer-C-{s}"),
        (0..n)
            .map(|i| ProposedEvent {
                id: Some(uuid::Uuid::from_u64_pair(round << 32 | s, i)),
                data: json!({"kind": "note", "n": i, "body": body}).into(),
                ..note_with_id(i)
            })
            .collect(),
    )
}

/// Appends, alternating: bulk (checked) batches of three streams and an ordinary append.
async fn mixed_appends(store: &dyn EventStore) -> u64 {
    let mut last = 0;
    for round in 0..3 {
        store
            .append_checked(
                vec![
                    bulky(round, 1, 400),
                    bulky(round, 2, 300),
                    bulky(round, 3, 1),
                ],
                last,
            )
            .await
            .unwrap();
        let one = store
            .append(
                &format!("customer-C-{round}"),
                ExpectedVersion::Any,
                vec![ProposedEvent {
                    id: Some(uuid::Uuid::from_u64_pair(99, round)),
                    ..note_with_id(9)
                }],
            )
            .await
            .unwrap();
        last = one.last_position;
    }
    last
}

/// What a reader sees of the log: every event's position, stream, version, id and data.
async fn seen(store: &dyn EventStore) -> Seen {
    let all = store
        .read_all(0, usize::MAX, &eventlog::Filter::default())
        .await
        .unwrap();
    all.into_iter()
        .map(|e| (e.position, e.stream, e.version, e.id, e.data.into_inner()))
        .collect()
}

type Seen = Vec<(u64, String, u64, uuid::Uuid, serde_json::Value)>;

/// Every read of `store` gives `expected`, and `verify` passes.
async fn check_log(store: &SledStore, expected: &Seen) {
    let seen = seen(store).await;
    assert_eq!(seen.len(), expected.len());
    // (Not `assert_eq!`: a difference would print a megabyte.)
    if let Some(i) = (0..seen.len()).find(|&i| seen[i] != expected[i]) {
        panic!("at {i}: {:?} instead of {:?}", seen[i], expected[i]);
    }
    let stream = store.read_stream("customer-C-1", 390, 20).await.unwrap();
    let versions: Vec<u64> = stream.iter().map(|e| e.version).collect();
    assert_eq!(versions, (390..410).collect::<Vec<_>>());
    for (position, _, _, id, _) in expected.iter().step_by(97) {
        let ev = store.event_by_id(*id).await.unwrap().unwrap();
        assert_eq!(ev.position, *position);
    }
    let ids: Vec<uuid::Uuid> = expected.iter().rev().map(|e| e.3).collect();
    let found = store.events_by_ids(&ids).await.unwrap();
    assert!(found
        .iter()
        .zip(&ids)
        .all(|(e, id)| e.as_ref().unwrap().id == *id));
    assert_eq!(
        store.verify(&mut |_| {}).unwrap().events,
        expected.len() as u64
    );
}

/// A bulk append's log chunks go to the store's `chunks` file, sled holding pointers to
/// them (eventlog's `outside`): every read gives what a store holding them in sled gives,
/// before and after a reopen, and `verify` passes.
#[tokio::test]
async fn bulk_chunks_kept_in_the_chunk_file_read_like_chunks_in_sled() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let last = mixed_appends(&store).await;
    assert_eq!(last, 3 * 702);
    // In sled (a temporary store has no chunk file): the same appends, the same log.
    let reference = eventlog::SledStore::temporary(Arc::new(eventlog::EnvelopeOnly)).unwrap();
    mixed_appends(&reference).await;
    let expected = seen(&reference).await;
    assert_eq!(expected.len(), 2106);
    // The 2,103 bulk events' bodies alone are over 400 KB: they are in the file.
    let file = std::fs::metadata(dir.path().join("chunks")).unwrap().len();
    assert!(file > 2103 * 200, "chunk file of {file} bytes");
    check_log(&store, &expected).await;
    drop(store);
    let store = open(dir.path());
    check_log(&store, &expected).await;
    // The log goes on after the reopen, in the file too.
    store
        .append_checked(vec![bulky(7, 4, 10)], 2106)
        .await
        .unwrap();
    assert!(std::fs::metadata(dir.path().join("chunks")).unwrap().len() > file);
    assert_eq!(store.verify(&mut |_| {}).unwrap().events, 2116);
}

/// A power loss can leave sled's pointers on disk (sled flushes by itself) without the
/// chunks they point to (the file is synced only before the store's own flushes): the commit
/// journal still holds those groups, and the open puts them back. Damage the journal no
/// longer covers is named by position.
#[tokio::test]
async fn chunks_the_file_lost_come_back_from_the_journal_and_other_damage_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let last = mixed_appends(&store).await;
    let before = seen(&store).await;
    drop(store);
    // As after a power loss: the file never reached the disk.
    let chunks = dir.path().join("chunks");
    std::fs::OpenOptions::new()
        .write(true)
        .open(&chunks)
        .unwrap()
        .set_len(0)
        .unwrap();
    let store = open(dir.path());
    assert!(seen(&store).await == before);
    assert_eq!(store.verify(&mut |_| {}).unwrap().events, last);
    drop(store);

    // Now outside the journal's reach (an open empties it): a byte of the file flipped.
    let dir = tempfile::tempdir().unwrap();
    drop(open(dir.path()));
    let store = open(dir.path());
    mixed_appends(&store).await;
    drop(store);
    drop(open(dir.path()));
    let chunks = dir.path().join("chunks");
    let mut bytes = std::fs::read(&chunks).unwrap();
    bytes[100] ^= 0x40;
    std::fs::write(&chunks, &bytes).unwrap();
    let store = open(dir.path());
    match store.verify(&mut |_| {}) {
        Err(StoreError::Corrupt { position, reason }) => {
            assert_eq!(position, 1, "{reason}");
            assert!(
                reason.contains("`chunks`") && reason.contains("checksum"),
                "{reason}"
            );
        }
        other => panic!("verify: {other:?}"),
    }
    let read = store
        .read_all(0, usize::MAX, &eventlog::Filter::default())
        .await;
    assert!(
        matches!(read, Err(StoreError::Corrupt { position: 1, .. })),
        "{read:?}"
    );
}
