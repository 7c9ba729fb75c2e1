//! Appends: expected versions, idempotency, validation, atomicity, locking, persistence.

#[macro_use]
mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use common::{note, note_with_id, open};
use eventlog::rules::DomainRules;
use eventlog::{
    AppendValidator, EventStore, ExpectedVersion, Filter, LogView, RecordedEvent, Rejection,
    StoreError, StreamBatch, ValidateError,
};
use serde_json::json;

async fn all(store: &dyn EventStore) -> Vec<RecordedEvent> {
    store
        .read_all(0, usize::MAX, &Filter::default())
        .await
        .unwrap()
}

contract! {
async fn appends_assign_versions_positions_and_defaults(backend: Backend) {
    let store = backend.open().await;
    let mut unnamed = note(1);
    unnamed.actor = None;
    let out = store
        .append(
            "deal-D-1",
            ExpectedVersion::NoStream,
            vec![unnamed, note(2)],
        )
        .await
        .unwrap();
    assert_eq!(
        (
            out.first_position,
            out.last_position,
            out.next_expected_version
        ),
        (1, 2, 1)
    );
    let out = store
        .append("lead-L-1", ExpectedVersion::Any, vec![note(3)])
        .await
        .unwrap();
    assert_eq!(
        (
            out.first_position,
            out.last_position,
            out.next_expected_version
        ),
        (3, 3, 0)
    );
    let out = store
        .append("deal-D-1", ExpectedVersion::Exact(1), vec![note(4)])
        .await
        .unwrap();
    assert_eq!((out.first_position, out.next_expected_version), (4, 2));

    let evs = all(&*store).await;
    assert_eq!(
        evs.iter().map(|e| e.position).collect::<Vec<_>>(),
        [1, 2, 3, 4]
    );
    assert_eq!(evs[0].actor, eventlog::DEFAULT_ACTOR);
    assert_eq!(evs[1].actor, "wukong");
    assert_eq!(evs[0].occurred_at, evs[0].recorded_at);
    assert_eq!(evs[0].id.get_version_num(), 7);
    let d1 = store.read_stream("deal-D-1", 0, 100).await.unwrap();
    assert_eq!(
        d1.iter()
            .map(|e| (e.version, e.position))
            .collect::<Vec<_>>(),
        [(0, 1), (1, 2), (2, 4)]
    );
    assert_eq!(
        store.read_stream("deal-D-1", 2, 100).await.unwrap().len(),
        1
    );
    assert_eq!(store.stream_version("deal-D-1").await.unwrap(), Some(2));
    assert_eq!(store.stream_version("deal-D-2").await.unwrap(), None);
    assert_eq!(store.last_position().await.unwrap(), 4);

    let only_leads = Filter {
        types: vec![],
        stream_prefix: Some("lead-".into()),
    };
    assert_eq!(
        store.read_all(0, 10, &only_leads).await.unwrap()[0].position,
        3
    );
    assert_eq!(
        store.read_all(3, 1, &Filter::default()).await.unwrap()[0].position,
        3
    );
}
}

contract! {
async fn imported_times_are_kept(backend: Backend) {
    let store = backend.open().await;
    let t = domain::envelope::parse_time("2026-06-03T09:30:02.118Z").unwrap();
    let o = domain::envelope::parse_time("2026-06-01T08:00:00Z").unwrap();
    let mut ev = note(1);
    ev.recorded_at = Some(t);
    let mut ev2 = note(2);
    ev2.recorded_at = Some(t);
    ev2.occurred_at = Some(o);
    store
        .append("deal-D-1", ExpectedVersion::Any, vec![ev, ev2])
        .await
        .unwrap();
    let evs = all(&*store).await;
    assert_eq!((evs[0].recorded_at, evs[0].occurred_at), (t, t));
    assert_eq!((evs[1].recorded_at, evs[1].occurred_at), (t, o));
}
}

contract! {
async fn wrong_expected_versions_are_typed_and_write_nothing(backend: Backend) {
    let store = backend.open().await;
    let e = store
        .append("deal-D-1", ExpectedVersion::Exact(0), vec![note(1)])
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            StoreError::WrongExpectedVersion {
                expected: ExpectedVersion::Exact(0),
                actual: None,
                ..
            }
        ),
        "{e}"
    );
    store
        .append("deal-D-1", ExpectedVersion::NoStream, vec![note(1)])
        .await
        .unwrap();
    let e = store
        .append("deal-D-1", ExpectedVersion::NoStream, vec![note(2)])
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            StoreError::WrongExpectedVersion {
                actual: Some(0),
                ..
            }
        ),
        "{e}"
    );
    assert_eq!(store.last_position().await.unwrap(), 1);
}
}

contract! {
async fn racing_exact_appends_let_exactly_one_per_version_through(backend: Backend) {
    let store = Arc::new(backend.open().await);
    const TASKS: u64 = 16;
    const ROUNDS: u64 = 10;
    let wins = Arc::new(AtomicUsize::new(0));
    let mut handles = Vec::new();
    for t in 0..TASKS {
        let (store, wins) = (store.clone(), wins.clone());
        handles.push(tokio::spawn(async move {
            // Every task tries to write version v for v in 0..ROUNDS; conflicts are expected.
            for v in 0..ROUNDS {
                let expected = if v == 0 {
                    ExpectedVersion::NoStream
                } else {
                    ExpectedVersion::Exact(v - 1)
                };
                match store
                    .append("deal-race", expected, vec![note(t * 1000 + v)])
                    .await
                {
                    Ok(out) => {
                        assert_eq!(out.next_expected_version, v);
                        wins.fetch_add(1, Ordering::SeqCst);
                    }
                    Err(StoreError::WrongExpectedVersion {
                        expected: e,
                        actual,
                        ..
                    }) => {
                        assert_eq!(e, expected);
                        assert!(
                            actual.is_some_and(|a| Some(a) != v.checked_sub(1)),
                            "actual {actual:?} for v {v}"
                        );
                    }
                    Err(other) => panic!("unexpected error: {other}"),
                }
            }
        }));
    }
    for h in handles {
        h.await.unwrap();
    }
    // Each version was won exactly once.
    assert_eq!(wins.load(Ordering::SeqCst), ROUNDS as usize);
    let evs = store.read_stream("deal-race", 0, 1000).await.unwrap();
    assert_eq!(
        evs.iter().map(|e| e.version).collect::<Vec<_>>(),
        (0..ROUNDS).collect::<Vec<_>>()
    );
    assert_eq!(
        evs.iter().map(|e| e.position).collect::<Vec<_>>(),
        (1..=ROUNDS).collect::<Vec<_>>()
    );
}
}

contract! {
async fn retrying_a_batch_returns_the_original_positions_and_writes_nothing(backend: Backend) {
    let store = backend.open().await;
    store
        .append("deal-D-0", ExpectedVersion::Any, vec![note(0)])
        .await
        .unwrap();
    let batch = vec![note_with_id(1), note_with_id(2)];
    let first = store
        .append("deal-D-1", ExpectedVersion::NoStream, batch.clone())
        .await
        .unwrap();
    store
        .append("deal-D-1", ExpectedVersion::Any, vec![note(3)])
        .await
        .unwrap();
    let before = all(&*store).await;
    // Same batch again: the stale expected version is not checked.
    let again = store
        .append("deal-D-1", ExpectedVersion::NoStream, batch.clone())
        .await
        .unwrap();
    assert_eq!(again, first);
    assert_eq!(all(&*store).await, before);

    // Same id, other content: a conflict naming the original position.
    let mut changed = batch[1].clone();
    changed.data = json!({ "kind": "note", "n": 99 }).into();
    match store
        .append("deal-D-1", ExpectedVersion::Any, vec![changed])
        .await
    {
        Err(StoreError::IdConflict { id, position }) => {
            assert_eq!((id, position), (batch[1].id.unwrap(), 3));
        }
        other => panic!("expected IdConflict, got {other:?}"),
    }
    // Same id and content but another stream is a conflict too.
    let e = store
        .append("deal-D-9", ExpectedVersion::Any, vec![batch[0].clone()])
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::IdConflict { .. }), "{e}");
    // Part of a batch already written: refused, nothing written.
    let e = store
        .append(
            "deal-D-1",
            ExpectedVersion::Any,
            vec![batch[0].clone(), note_with_id(5)],
        )
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::Invalid(_)), "{e}");
    assert_eq!(all(&*store).await, before);
}
}

contract! {
async fn envelope_errors_are_precise(backend: Backend) {
    let store = backend.open().await;
    let msg = |e: StoreError| match e {
        StoreError::Invalid(m) => m,
        other => panic!("expected Invalid, got {other}"),
    };
    let m = msg(store
        .append("deals-1", ExpectedVersion::Any, vec![note(1)])
        .await
        .unwrap_err());
    assert!(m.contains("unknown stream category"), "{m}");
    let m = msg(store
        .append("deal-1", ExpectedVersion::Any, vec![])
        .await
        .unwrap_err());
    assert!(m.contains("no events"), "{m}");
    let mut big = note(2);
    big.metadata = Some(serde_json::Map::from_iter([(
        "x".to_string(),
        json!("y".repeat(5000)),
    )]).into());
    // Oversized metadata is the domain's rule (code, field, index), whatever the validator.
    match store
        .append("deal-1", ExpectedVersion::Any, vec![note(1), big])
        .await
        .unwrap_err()
    {
        StoreError::Rejected(r) => {
            assert_eq!(
                (r.rule, r.field.as_str(), r.index),
                ("event.metadata_size", "metadata", Some(1))
            );
        }
        other => panic!("expected a rejection, got {other}"),
    }
    let twice = note_with_id(3);
    let m = msg(store
        .append("deal-1", ExpectedVersion::Any, vec![twice.clone(), twice])
        .await
        .unwrap_err());
    assert!(m.contains("appears twice"), "{m}");
    assert_eq!(store.last_position().await.unwrap(), 0);
}
}

/// Rejects any event whose data has `"bad": true`, and checks what it is shown.
struct Picky {
    applied: AtomicUsize,
}

impl AppendValidator for Picky {
    fn validate(
        &self,
        view: &dyn LogView,
        stream: &str,
        batch: &[RecordedEvent],
    ) -> Result<(), ValidateError> {
        // The view holds everything before the batch, including earlier batches of a
        // multi-stream append.
        let before = view.stream(stream).unwrap();
        let first = batch[0].version;
        assert_eq!(
            before.len() as u64,
            first,
            "view of {stream} is not the state the batch lands on"
        );
        for (i, ev) in batch.iter().enumerate() {
            if ev.data.get("bad") == Some(&json!(true)) {
                return Err(Rejection::new(
                    "test.bad",
                    "data.bad",
                    "true",
                    "bad events are refused",
                )
                .at(i)
                .into());
            }
        }
        Ok(())
    }

    fn applied(&self, batch: &[RecordedEvent]) {
        self.applied.fetch_add(batch.len(), Ordering::SeqCst);
    }
}

fn bad() -> eventlog::ProposedEvent {
    let mut e = note(0);
    e.data = json!({ "bad": true }).into();
    e
}

contract! {
async fn a_rejected_batch_writes_nothing_and_names_the_event(backend: Backend) {
    let picky = Arc::new(Picky {
        applied: AtomicUsize::new(0),
    });
    let store = backend.open_with(picky.clone()).await;
    store
        .append("deal-D-1", ExpectedVersion::Any, vec![note(1)])
        .await
        .unwrap();
    match store
        .append(
            "deal-D-1",
            ExpectedVersion::Any,
            vec![note(2), bad(), note(3)],
        )
        .await
    {
        Err(StoreError::Rejected(r)) => {
            assert_eq!((r.index, r.rule), (Some(1), "test.bad"));
        }
        other => panic!("expected Rejected, got {other:?}"),
    }
    assert_eq!(store.last_position().await.unwrap(), 1);
    assert_eq!(picky.applied.load(Ordering::SeqCst), 1);
    // The next append lands right after, with no gap.
    let out = store
        .append("deal-D-1", ExpectedVersion::Exact(0), vec![note(4)])
        .await
        .unwrap();
    assert_eq!((out.first_position, out.next_expected_version), (2, 1));
}
}

/// The real domain rules, shown a log view whose reads fail while `failing` is set (a disk
/// or database error in the middle of deciding a batch).
struct RulesOverFailingReads {
    rules: DomainRules,
    failing: AtomicBool,
}

struct FailingView<'a> {
    inner: &'a dyn LogView,
    failing: bool,
}

const READ_FAILURE: &str = "injected read failure at /srv/secret/db";

impl LogView for FailingView<'_> {
    fn stream(&self, stream: &str) -> Result<Vec<RecordedEvent>, StoreError> {
        match self.failing {
            true => Err(StoreError::Backend(READ_FAILURE.into())),
            false => self.inner.stream(stream),
        }
    }

    fn streams_with_prefix(&self, prefix: &str) -> Result<Vec<RecordedEvent>, StoreError> {
        match self.failing {
            true => Err(StoreError::Backend(READ_FAILURE.into())),
            false => self.inner.streams_with_prefix(prefix),
        }
    }
}

impl AppendValidator for RulesOverFailingReads {
    fn validate(
        &self,
        view: &dyn LogView,
        stream: &str,
        batch: &[RecordedEvent],
    ) -> Result<(), ValidateError> {
        let view = FailingView {
            inner: view,
            failing: self.failing.load(Ordering::SeqCst),
        };
        self.rules.validate(&view, stream, batch)
    }

    fn applied(&self, batch: &[RecordedEvent]) {
        self.rules.applied(batch)
    }

    fn reset(&self) {
        self.rules.reset()
    }
}

contract! {
/// A read that fails while the rules decide a batch is the store error it is, not a
/// rejection (which would tell the client its events broke a rule): nothing is written, and
/// the same append succeeds once reads work again.
async fn a_failed_read_during_validation_is_a_store_error_not_a_rejection(backend: Backend) {
    let v = Arc::new(RulesOverFailingReads {
        rules: DomainRules::default(),
        failing: AtomicBool::new(true),
    });
    let store = backend.open_with(v.clone()).await;
    let joined = || -> Vec<eventlog::ProposedEvent> {
        vec![serde_json::from_value(json!({
            "type": "RepJoined",
            "data": {"rep": "wukong", "name": "Wukong", "team": "east"}
        }))
        .unwrap()]
    };
    match store
        .append("org-acme", ExpectedVersion::Any, joined())
        .await
    {
        Err(StoreError::Backend(m)) => assert!(m.contains(READ_FAILURE), "{m}"),
        other => panic!("expected the read's Backend error, got {other:?}"),
    }
    assert_eq!(store.last_position().await.unwrap(), 0, "nothing written");
    v.failing.store(false, Ordering::SeqCst);
    let out = store
        .append("org-acme", ExpectedVersion::NoStream, joined())
        .await
        .unwrap();
    assert_eq!((out.first_position, out.next_expected_version), (1, 0));
}
}

contract! {
async fn multi_stream_appends_are_ordered_and_all_or_nothing(backend: Backend) {
    let picky = Arc::new(Picky {
        applied: AtomicUsize::new(0),
    });
    let store = backend.open_with(picky.clone()).await;
    let b = |stream: &str, expected, events| StreamBatch {
        stream: stream.into(),
        expected,
        events,
    };
    let dup = note_with_id(7);
    let outs = store
        .append_multi(vec![
            b("deal-A", ExpectedVersion::NoStream, vec![note(1), note(2)]),
            b("deal-B", ExpectedVersion::Any, vec![note(3)]),
            // Sees deal-A's first batch although it is not written yet.
            b(
                "deal-A",
                ExpectedVersion::Exact(1),
                vec![note(4), dup.clone()],
            ),
        ])
        .await
        .unwrap();
    let firsts: Vec<_> = outs
        .iter()
        .map(|o| (o.first_position, o.last_position, o.next_expected_version))
        .collect();
    assert_eq!(firsts, [(1, 2, 1), (3, 3, 0), (4, 5, 3)]);

    // A failing batch anywhere means nothing at all is written.
    let err = store
        .append_multi(vec![
            b("deal-C", ExpectedVersion::Any, vec![note(5)]),
            b("deal-A", ExpectedVersion::Exact(3), vec![bad()]),
        ])
        .await
        .unwrap_err();
    assert_eq!(err.index, Some(1));
    assert!(matches!(err.error, StoreError::Rejected(_)), "{err}");
    let err = store
        .append_multi(vec![
            b("deal-C", ExpectedVersion::Any, vec![note(5)]),
            b("deal-A", ExpectedVersion::Exact(0), vec![note(6)]),
        ])
        .await
        .unwrap_err();
    assert_eq!(err.index, Some(1));
    assert_eq!(store.last_position().await.unwrap(), 5);
    assert_eq!(store.stream_version("deal-C").await.unwrap(), None);

    // Each batch is deduplicated on its own: a repeated line is a no-op, the rest is written.
    let outs = store
        .append_multi(vec![
            b("deal-A", ExpectedVersion::Exact(0), vec![dup]),
            b("deal-C", ExpectedVersion::NoStream, vec![note(8)]),
        ])
        .await
        .unwrap();
    assert_eq!(outs[0].first_position, 5);
    assert_eq!(outs[1].first_position, 6);
}
}

#[tokio::test]
async fn the_log_survives_a_reopen_and_a_held_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    store
        .append("deal-D-1", ExpectedVersion::Any, vec![note(1), note(2)])
        .await
        .unwrap();
    match eventlog::SledStore::open(dir.path(), Arc::new(eventlog::EnvelopeOnly)) {
        Err(StoreError::Locked(d)) => assert!(d.contains(&dir.path().display().to_string())),
        Err(other) => panic!("expected Locked, got {other}"),
        Ok(_) => panic!("a held directory was opened twice"),
    }
    let before = all(&store).await;
    drop(store);
    let store = open(dir.path());
    assert_eq!(all(&store).await, before);
    let out = store
        .append("deal-D-1", ExpectedVersion::Exact(1), vec![note(3)])
        .await
        .unwrap();
    assert_eq!(out.first_position, 3);
    let report = store.verify(&mut |_| {}).unwrap();
    assert_eq!((report.events, report.streams), (3, 1));
}

contract! {
async fn large_batches_read_back_from_any_position_and_version(backend: Backend) {
    let store = backend.open().await;
    // ~300 KB in one batch: several chunks in one group commit.
    let events: Vec<_> = (0..600)
        .map(|i| {
            let mut e = note(i);
            e.data = json!({ "kind": "note", "n": i, "summary": "x".repeat(500) }).into();
            e
        })
        .collect();
    store
        .append("deal-big", ExpectedVersion::NoStream, vec![note(0)])
        .await
        .unwrap();
    store
        .append("deal-big", ExpectedVersion::Exact(0), events)
        .await
        .unwrap();
    store
        .append("deal-other", ExpectedVersion::Any, vec![note(1)])
        .await
        .unwrap();
    for from in [1u64, 2, 130, 131, 300, 601, 602] {
        let evs = store.read_all(from, 3, &Filter::default()).await.unwrap();
        let want: Vec<u64> = (from..=602).take(3).collect();
        assert_eq!(evs.iter().map(|e| e.position).collect::<Vec<_>>(), want);
    }
    for from_version in [0u64, 1, 299, 600] {
        let evs = store
            .read_stream("deal-big", from_version, 2)
            .await
            .unwrap();
        let want: Vec<u64> = (from_version..=600).take(2).collect();
        assert_eq!(evs.iter().map(|e| e.version).collect::<Vec<_>>(), want);
        assert!(evs.iter().all(|e| e.position == e.version + 1));
    }
    assert_eq!(store.stream_version("deal-big").await.unwrap(), Some(600));
    if let Some(r) = store.verify().await {
        assert_eq!(r.events, 602);
    }
}
}

contract! {
/// Store-generated ids are indexed too (in id runs): re-importing exported events, which now
/// carry those ids, is a no-op, also after a restart.
async fn reimporting_events_with_store_generated_ids_is_a_no_op(backend: Backend) {
    let mut store = backend.open().await;
    for i in 0..5 {
        store
            .append(
                "deal-D-1",
                ExpectedVersion::Any,
                vec![note(2 * i), note(2 * i + 1)],
            )
            .await
            .unwrap();
    }
    let exported = all(&*store).await;
    let as_import = |evs: &[RecordedEvent]| -> Vec<eventlog::ProposedEvent> {
        evs.iter()
            .map(|e| eventlog::ProposedEvent {
                id: Some(e.id),
                event_type: e.event_type.clone(),
                occurred_at: Some(e.occurred_at),
                actor: Some(e.actor.clone()),
                data: e.data.clone(),
                metadata: Some(e.metadata.clone()),
                recorded_at: Some(e.recorded_at),
            })
            .collect()
    };
    for round in 0..2 {
        for pair in exported.chunks(2) {
            let out = store
                .append("deal-D-1", ExpectedVersion::Any, as_import(pair))
                .await
                .unwrap();
            assert_eq!(
                (out.first_position, out.last_position),
                (pair[0].position, pair[1].position),
                "round {round}"
            );
        }
        assert_eq!(all(&*store).await[..exported.len()], exported[..]);
        // Again after a restart, with new appends in between.
        drop(store);
        store = backend.open().await;
        store
            .append("deal-D-2", ExpectedVersion::Any, vec![note(99)])
            .await
            .unwrap();
        exported_len_check(&*store, exported.len() as u64 + round + 1).await;
    }
    store.verify().await;
}
}

async fn exported_len_check(store: &dyn EventStore, n: u64) {
    assert_eq!(store.last_position().await.unwrap(), n);
}

contract! {
/// Concurrent appends land in shared group commits; every validator call must still see
/// exactly the stream it extends (`Picky` asserts it; a failed assertion fails the append).
async fn the_validator_sees_earlier_appends_of_the_same_group_commit(backend: Backend) {
    let picky = Arc::new(Picky {
        applied: AtomicUsize::new(0),
    });
    let store = Arc::new(backend.open_with(picky.clone()).await);
    let tasks: Vec<_> = (0..32u64)
        .map(|t| {
            let store = store.clone();
            tokio::spawn(async move {
                for i in 0..10 {
                    let stream = format!("deal-G{}", t % 4);
                    let events = if i % 3 == 0 {
                        vec![note(i), bad()]
                    } else {
                        vec![note(i)]
                    };
                    let r = store.append(&stream, ExpectedVersion::Any, events).await;
                    assert_eq!(r.is_err(), i % 3 == 0, "{r:?}");
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    // 32 tasks × 6 accepted single-event appends.
    assert_eq!(store.last_position().await.unwrap(), 192);
    assert_eq!(picky.applied.load(Ordering::SeqCst), 192);
    if let Some(r) = store.verify().await {
        assert_eq!(r.events, 192);
    }
}
}

#[tokio::test]
async fn a_temporary_store_behaves_like_a_durable_one() {
    let store = eventlog::SledStore::temporary(Arc::new(eventlog::EnvelopeOnly)).unwrap();
    let batch = vec![note_with_id(1)];
    let out = store
        .append("deal-T", ExpectedVersion::NoStream, batch.clone())
        .await
        .unwrap();
    assert_eq!(
        store
            .append("deal-T", ExpectedVersion::NoStream, batch)
            .await
            .unwrap(),
        out
    );
    assert_eq!(all(&store).await.len(), 1);
    // Two temporary stores do not share anything.
    let other = eventlog::SledStore::temporary(Arc::new(eventlog::EnvelopeOnly)).unwrap();
    assert_eq!(other.last_position().await.unwrap(), 0);
}
