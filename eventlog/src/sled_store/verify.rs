//! The integrity walk over the whole durable log.

use std::collections::HashMap;

use std::cell::Cell;

use super::fault::at;
use super::keys::{self, Run};
use super::read::{self, Streams};
use super::{backend, frame, Shared};
use crate::record::decode_record;
use crate::StoreError;

/// What a clean verification found.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct VerifyReport {
    /// Number of events checked (equal to the last position).
    pub events: u64,
    /// Number of distinct streams.
    pub streams: u64,
    /// The chain hash of the last record, hex; it commits to the whole history.
    pub head_hash: String,
}

/// Report progress every this many events.
const PROGRESS_EVERY: u64 = 4096;

/// `reached`: the position being checked, kept current (for a panic in sled: see
/// `SledStore::verify`).
pub(crate) fn verify(
    shared: &Shared,
    reached: &Cell<u64>,
    progress: &mut dyn FnMut(u64),
) -> Result<VerifyReport, StoreError> {
    let durable = shared.durable();
    let sled = shared.sled()?;
    let tree = &sled.tree;
    let mut prev_hash = frame::GENESIS;
    let mut versions: HashMap<String, u64> = HashMap::new();
    let mut expected = 1u64;
    'chunks: for item in tree.range(keys::log_key(1)..=keys::log_key(durable)) {
        reached.set(expected);
        let (k, chunk) = item.map_err(at(expected))?;
        let first = keys::position_of_log_key(&k).ok_or_else(|| StoreError::Corrupt {
            position: expected,
            reason: "malformed log key".into(),
        })?;
        let chunk = sled.checked_chunk(first, chunk)?;
        if first != expected {
            return Err(StoreError::Corrupt {
                position: expected,
                reason: format!("position gap: the next chunk starts at position {first}"),
            });
        }
        for f in frame::frames(&chunk) {
            if expected > durable {
                break 'chunks;
            }
            reached.set(expected);
            let corrupt = |reason: String| StoreError::Corrupt {
                position: expected,
                reason,
            };
            let f = f.map_err(corrupt)?;
            f.check_crc().map_err(corrupt)?;
            let hash = frame::chain_hash(&prev_hash, f.record);
            if hash != f.hash {
                return Err(corrupt(
                    "hash chain broken: the stored hash does not follow from the previous record"
                        .into(),
                ));
            }
            let ev = decode_record(f.record).map_err(|e| corrupt(e.to_string()))?;
            if ev.position != expected {
                return Err(corrupt(format!("record says position {}", ev.position)));
            }
            let want_version = versions.get(&ev.stream).map_or(0, |v| v + 1);
            if ev.version != want_version {
                return Err(corrupt(format!(
                    "stream {} has version {} here, expected {want_version}",
                    ev.stream, ev.version
                )));
            }
            let by_stream = stream_index_position(shared, tree, &ev.stream, ev.version)?;
            if by_stream != Some(expected) {
                return Err(corrupt(format!(
                    "stream index mismatch: {}@{} points to {by_stream:?}",
                    ev.stream, ev.version
                )));
            }
            let by_id = read::id_position(shared, &ev.id)?;
            if by_id != Some(expected) {
                return Err(corrupt(format!(
                    "id index mismatch: {} points to {by_id:?}",
                    ev.id
                )));
            }
            versions.insert(ev.stream, ev.version);
            prev_hash = hash;
            if expected.is_multiple_of(PROGRESS_EVERY) {
                progress(expected);
            }
            expected += 1;
        }
    }
    if expected <= durable {
        return Err(StoreError::Corrupt {
            position: expected,
            reason: format!("missing record (the log should reach position {durable})"),
        });
    }
    if index_entries(shared, &sled, durable)? != [durable, durable] {
        check_no_stray_index_entries(shared, &sled, durable)?;
        return Err(StoreError::Corrupt {
            position: durable,
            reason: "the indexes hold more entries than the log has events".into(),
        });
    }
    progress(durable);
    Ok(VerifyReport {
        events: durable,
        streams: versions.len() as u64,
        head_hash: blake3::Hash::from(prev_hash).to_hex().to_string(),
    })
}

/// The position the stream index (the tree's entries, then the runs held in memory) gives
/// for `stream`@`version`.
fn stream_index_position(
    shared: &Shared,
    tree: &sled::Tree,
    stream: &str,
    version: u64,
) -> Result<Option<u64>, StoreError> {
    let prefix = keys::stream_prefix(stream);
    let entry = tree
        .range(prefix.clone()..=keys::stream_key(stream, version))
        .next_back()
        .transpose()
        .map_err(at(0))?;
    if let Some(p) = entry
        .and_then(|(k, v)| keys::parse_runs(&k, &v).map(|(_, runs)| runs))
        .and_then(|runs| position_in(runs, version))
    {
        return Ok(Some(p));
    }
    let pending = shared
        .unindexed
        .read()
        .map_err(|_| backend("the index lock is poisoned"))?
        .runs(Streams::One(stream));
    Ok(position_in(pending.into_iter().map(|(_, r)| r), version))
}

/// The position of `version` among a stream's `runs`. Each run answers by arithmetic: an
/// entry holds a whole round's runs of the stream, and walking their events one by one made
/// `verify` quadratic in a round's size.
fn position_in(runs: impl IntoIterator<Item = Run>, version: u64) -> Option<u64> {
    runs.into_iter().find_map(|r| r.position_of(version))
}

/// How many (stream index, id index) entries point at durable positions. The walk checked
/// that every record is reachable through both indexes; if the counts equal the number of
/// records there is no stray entry either.
fn index_entries(
    shared: &Shared,
    sled: &super::Sled,
    durable: u64,
) -> Result<[u64; 2], StoreError> {
    let tree = &sled.tree;
    let id_runs = sled.id_runs();
    let mut counts = [0u64; 2];
    for (_, run) in read::runs(shared, Streams::Prefix(""))? {
        counts[0] += run.events().filter(|&(_, p)| p <= durable).count() as u64;
    }
    for item in tree.scan_prefix([keys::ID_RUN]) {
        let (k, v) = item.map_err(at(0))?;
        let entries = keys::id_run_entries(&v).ok_or_else(|| StoreError::Corrupt {
            position: 0,
            reason: format!("malformed id run {k:?}"),
        })?;
        counts[1] += entries.filter(|&(_, p)| p <= durable).count() as u64;
    }
    for item in tree.scan_prefix([keys::ID]) {
        let (_, v) = item.map_err(at(0))?;
        counts[1] += u64::from(read::index_position(&v)? <= durable);
    }
    counts[1] += id_runs.entries().filter(|&(_, p)| p <= durable).count() as u64;
    // An id held in memory whose `I` entry is also in the tree, or in a run of bulk ids
    // (written before a crash kept the watermark from moving: see `index`), is one entry, not
    // two.
    let held: Vec<uuid::Uuid> = shared
        .unindexed
        .read()
        .map_err(|_| backend("the index lock is poisoned"))?
        .id_positions()
        .filter(|&(_, p)| p <= durable)
        .map(|(id, _)| *id)
        .collect();
    for id in held {
        if tree.get(keys::id_key(&id)).map_err(at(0))?.is_none()
            && id_runs.position_of(&id).is_none()
        {
            counts[1] += 1;
        }
    }
    Ok(counts)
}

/// Finds the first stray index entry (slow: only once the counts disagree).
fn check_no_stray_index_entries(
    shared: &Shared,
    sled: &super::Sled,
    durable: u64,
) -> Result<(), StoreError> {
    let tree = &sled.tree;
    for (stream, run) in read::runs(shared, Streams::Prefix(""))? {
        for (version, position) in run.events() {
            if position > durable {
                break;
            }
            let ev = read::record_at(sled, position)?;
            if ev.stream != stream || ev.version != version {
                return Err(StoreError::Corrupt {
                    position,
                    reason: format!(
                        "a stray stream index entry for {stream}@{version} points to this position"
                    ),
                });
            }
        }
    }
    for item in tree.scan_prefix([keys::ID_RUN]) {
        let (k, v) = item.map_err(at(0))?;
        let stray = |position: u64, what: String| StoreError::Corrupt {
            position,
            reason: format!("a stray id run entry ({what}) points to this position"),
        };
        let entries = keys::id_run_entries(&v).ok_or_else(|| stray(0, format!("{k:?}")))?;
        let mut prev: Option<uuid::Uuid> = None;
        for (i, (id, position)) in entries.enumerate() {
            let in_order = prev.is_none_or(|p| p < id) && (i > 0 || k[1..] == id.as_bytes()[..]);
            if position <= durable && (!in_order || read::record_at(sled, position)?.id != id) {
                return Err(stray(position, id.to_string()));
            }
            prev = Some(id);
        }
    }
    for (id, position) in sled.id_runs().entries() {
        if position <= durable && read::record_at(sled, position)?.id != id {
            return Err(StoreError::Corrupt {
                position,
                reason: format!(
                    "a stray entry of the bulk id index ({id}) points to this position"
                ),
            });
        }
    }
    for item in tree.scan_prefix([keys::ID]) {
        let (k, v) = item.map_err(at(0))?;
        let position = read::index_position(&v)?;
        if position > durable {
            continue;
        }
        let ev = read::record_at(sled, position)?;
        if k[..] != keys::id_key(&ev.id)[..] {
            return Err(StoreError::Corrupt {
                position,
                reason: format!("a stray id index entry {k:?} points to this position"),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::sync::Arc;

    use super::super::test_support::{note, raw_sled};
    use super::super::{frame, keys, SledStore, TREE};
    use crate::record::{decode_record, encode_record, encode_record_v1, FORMAT_V1};
    use crate::{EnvelopeOnly, EventStore, ExpectedVersion, StoreError, StoreHealth};

    /// A store of 5 events in two streams, closed again.
    async fn five_events(dir: &Path) {
        let store = SledStore::open(dir, Arc::new(EnvelopeOnly)).unwrap();
        for i in 0..5 {
            let stream = if i % 2 == 0 { "deal-A" } else { "deal-B" };
            store
                .append(stream, ExpectedVersion::Any, vec![note(i)])
                .await
                .unwrap();
        }
        assert_eq!(store.verify(&mut |_| {}).unwrap().events, 5);
    }

    /// Changes the raw tree behind the store's back, as damage on disk would.
    fn tamper(dir: &Path, f: impl FnOnce(&sled::Tree)) {
        let db = raw_sled(dir);
        let tree = db.open_tree(TREE).unwrap();
        f(&tree);
        db.flush().unwrap();
    }

    fn verify_error(dir: &Path) -> (u64, String) {
        let store = SledStore::open(dir, Arc::new(EnvelopeOnly)).unwrap();
        match store.verify(&mut |_| {}) {
            Err(StoreError::Corrupt { position, reason }) => (position, reason),
            other => panic!("expected Corrupt, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_flipped_byte_is_found_at_its_position() {
        for (position, byte) in [(3u64, 5usize), (5, 1), (1, 0)] {
            let dir = tempfile::tempdir().unwrap();
            five_events(dir.path()).await;
            tamper(dir.path(), |t| {
                // Each append of `five_events` is its own chunk; skip the length prefix.
                let key = keys::log_key(position);
                let mut v = t.get(key).unwrap().unwrap().to_vec();
                v[frame::LEN_LEN + byte] ^= 0x40;
                t.insert(key, v).unwrap();
            });
            let (at, reason) = verify_error(dir.path());
            assert_eq!(at, position, "{reason}");
            assert!(reason.contains("checksum"), "{reason}");
        }
    }

    /// The store learns of damage from the first read that meets it, and says so in its
    /// health (the service's `/healthz`) from then on.
    #[tokio::test]
    async fn a_read_that_meets_damage_marks_the_store_damaged() {
        let dir = tempfile::tempdir().unwrap();
        five_events(dir.path()).await;
        tamper(dir.path(), |t| {
            let key = keys::log_key(3);
            let mut v = t.get(key).unwrap().unwrap().to_vec();
            v[frame::LEN_LEN + 2] ^= 0x40;
            t.insert(key, v).unwrap();
        });
        let store = SledStore::open(dir.path(), Arc::new(EnvelopeOnly)).unwrap();
        assert_eq!(store.health(), StoreHealth::Ok);
        let all = crate::Filter::default();
        assert_eq!(store.read_all(1, 2, &all).await.unwrap().len(), 2);
        let err = store.read_all(1, 100, &all).await.unwrap_err();
        assert!(
            matches!(err, StoreError::Corrupt { position: 3, .. }),
            "{err}"
        );
        match store.health() {
            StoreHealth::Damaged { position, reason } => {
                assert_eq!(position, 3);
                assert!(reason.contains("checksum"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
    }

    /// A long read is decoded in parts, one per core (`read::decode_items`): the events come
    /// in log order, equal to short reads (decoded by the reader alone), and damage in a
    /// later part is reported at its own position, with the events before it still readable.
    #[tokio::test]
    async fn a_long_read_decoded_in_parts_is_in_order_and_names_damage_in_any_part() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = SledStore::open(dir.path(), Arc::new(EnvelopeOnly)).unwrap();
            for b in 0..8 {
                let stream = format!("deal-{b}");
                let events = (0..500).map(|i| note(b * 500 + i)).collect();
                store
                    .append(&stream, ExpectedVersion::Any, events)
                    .await
                    .unwrap();
            }
        }
        let all = crate::Filter::default();
        let store = SledStore::open(dir.path(), Arc::new(EnvelopeOnly)).unwrap();
        let long = store.read_all(1, 4000, &all).await.unwrap();
        let mut short = Vec::new();
        while short.len() < 4000 {
            let from = short.len() as u64 + 1;
            short.extend(store.read_all(from, 100, &all).await.unwrap());
        }
        assert_eq!(long.len(), 4000);
        assert!(long.iter().zip(1..).all(|(e, p)| e.position == p));
        assert_eq!(long, short);
        drop(store);
        // Damage one record three quarters in (in the second part on two cores).
        let damaged = 3001u64;
        tamper(dir.path(), |t| {
            let (k, v) = t
                .range(..=keys::log_key(damaged))
                .next_back()
                .unwrap()
                .unwrap();
            let first = keys::position_of_log_key(&k).unwrap();
            let f = frame::frames(&v)
                .nth((damaged - first) as usize)
                .unwrap()
                .unwrap();
            let at = f.record.as_ptr() as usize - v.as_ptr() as usize;
            let mut bytes = v.to_vec();
            bytes[at + 3] ^= 0x40;
            t.insert(k, bytes).unwrap();
        });
        let store = SledStore::open(dir.path(), Arc::new(EnvelopeOnly)).unwrap();
        let err = store.read_all(1, 4000, &all).await.unwrap_err();
        assert!(
            matches!(err, StoreError::Corrupt { position, .. } if position == damaged),
            "{err}"
        );
        let before = store.read_all(1, 3000, &all).await.unwrap();
        assert_eq!(before[..], long[..3000]);
    }

    #[tokio::test]
    async fn a_rewritten_record_with_a_fresh_checksum_breaks_the_chain() {
        let dir = tempfile::tempdir().unwrap();
        five_events(dir.path()).await;
        tamper(dir.path(), |t| {
            let key = keys::log_key(2);
            let old = t.get(key).unwrap().unwrap();
            let f = frame::frames(&old).next().unwrap().unwrap();
            let mut ev = decode_record(f.record).unwrap();
            ev.data = serde_json::json!({ "kind": "note", "n": 1000 }).into();
            let record = encode_record(&ev);
            // A fresh, valid checksum, but the old chain hash.
            let mut v = Vec::new();
            v.extend_from_slice(&(record.len() as u32).to_le_bytes());
            v.extend_from_slice(&record);
            v.extend_from_slice(&crc32fast::hash(&record).to_le_bytes());
            v.extend_from_slice(&f.hash);
            t.insert(key, v).unwrap();
        });
        let (at, reason) = verify_error(dir.path());
        assert_eq!(at, 2, "{reason}");
        assert!(reason.contains("hash chain"), "{reason}");
    }

    /// A log written in format 1 (before format 2 existed) still reads and verifies.
    #[tokio::test]
    async fn format_1_logs_still_read_and_verify() {
        let dir = tempfile::tempdir().unwrap();
        five_events(dir.path()).await;
        let before = {
            let store = SledStore::open(dir.path(), Arc::new(EnvelopeOnly)).unwrap();
            store
                .read_all(0, 100, &crate::Filter::default())
                .await
                .unwrap()
        };
        tamper(dir.path(), |t| {
            let mut prev = frame::GENESIS;
            for position in 1..=5 {
                // Each append of `five_events` is its own chunk.
                let key = keys::log_key(position);
                let old = t.get(key).unwrap().unwrap();
                let f = frame::frames(&old).next().unwrap().unwrap();
                let record = encode_record_v1(&decode_record(f.record).unwrap());
                assert_eq!(record[0], FORMAT_V1);
                let mut v = Vec::new();
                prev = frame::seal_into(&mut v, &prev, &record);
                t.insert(key, v).unwrap();
            }
        });
        let store = SledStore::open(dir.path(), Arc::new(EnvelopeOnly)).unwrap();
        assert_eq!(store.verify(&mut |_| {}).unwrap().events, 5);
        let after = store
            .read_all(0, 100, &crate::Filter::default())
            .await
            .unwrap();
        assert_eq!(after, before);
        // New appends (format 2) continue the chain after format-1 records.
        store
            .append("deal-A", ExpectedVersion::Any, vec![note(9)])
            .await
            .unwrap();
        assert_eq!(store.verify(&mut |_| {}).unwrap().events, 6);
    }

    #[tokio::test]
    async fn index_damage_and_gaps_are_found() {
        let dir = tempfile::tempdir().unwrap();
        five_events(dir.path()).await;
        // Position 4 is deal-B version 1: the store wrote deal-B's index as one entry of two
        // runs (position 2, then 4) when it closed; keep only the first run.
        tamper(dir.path(), |t| {
            let key = keys::stream_key("deal-B", 0);
            let v = t.get(key.clone()).unwrap().unwrap();
            assert_eq!(v.len(), 2 * keys::RUN_LEN);
            t.insert(key, &v[..keys::RUN_LEN]).unwrap();
        });
        let (at, reason) = verify_error(dir.path());
        assert_eq!(at, 4, "{reason}");
        assert!(reason.contains("stream index"), "{reason}");

        let dir = tempfile::tempdir().unwrap();
        five_events(dir.path()).await;
        tamper(dir.path(), |t| {
            t.remove(keys::log_key(3)).unwrap();
        });
        let (at, reason) = verify_error(dir.path());
        assert_eq!(at, 3, "{reason}");
        assert!(reason.contains("gap"), "{reason}");

        let dir = tempfile::tempdir().unwrap();
        five_events(dir.path()).await;
        tamper(dir.path(), |t| {
            t.insert(keys::stream_key("deal-C", 0), &keys::run_value(2, 1))
                .unwrap();
        });
        let (at, reason) = verify_error(dir.path());
        assert_eq!(at, 2, "{reason}");
        assert!(reason.contains("stray"), "{reason}");
    }

    /// The stream index of a store from before the index watermark (one entry per batch, no
    /// `W` key) still reads and verifies, and the store carries on from it.
    #[tokio::test]
    async fn a_store_with_the_old_stream_index_layout_still_works() {
        let dir = tempfile::tempdir().unwrap();
        five_events(dir.path()).await;
        tamper(dir.path(), |t| {
            t.remove(keys::INDEXED).unwrap();
            for item in t.scan_prefix([keys::STREAM]) {
                let (k, _) = item.unwrap();
                t.remove(k).unwrap();
            }
            for (position, stream, version) in [
                (1, "deal-A", 0),
                (2, "deal-B", 0),
                (3, "deal-A", 1),
                (4, "deal-B", 1),
                (5, "deal-A", 2),
            ] {
                t.insert(
                    keys::stream_key(stream, version),
                    &keys::run_value(position, 1),
                )
                .unwrap();
            }
        });
        let store = SledStore::open(dir.path(), Arc::new(EnvelopeOnly)).unwrap();
        assert_eq!(store.verify(&mut |_| {}).unwrap().events, 5);
        let b = store.read_stream("deal-B", 0, 10).await.unwrap();
        assert_eq!(b.iter().map(|e| e.position).collect::<Vec<_>>(), [2, 4]);
        let out = store
            .append("deal-B", ExpectedVersion::Exact(1), vec![note(9)])
            .await
            .unwrap();
        assert_eq!((out.first_position, out.next_expected_version), (6, 2));
        assert_eq!(store.verify(&mut |_| {}).unwrap().events, 6);
    }

    /// Index entries that never reached the disk (a crash before the index was written) are
    /// rebuilt from the log at open.
    #[tokio::test]
    async fn a_missing_stream_index_tail_is_rebuilt_from_the_log() {
        let dir = tempfile::tempdir().unwrap();
        five_events(dir.path()).await;
        tamper(dir.path(), |t| {
            // As if the index had been written through position 1 only.
            for item in t.scan_prefix([keys::STREAM]) {
                let (k, _) = item.unwrap();
                t.remove(k).unwrap();
            }
            let (run_key, run) = t.scan_prefix([keys::ID_RUN]).next().unwrap().unwrap();
            assert_eq!(run.len(), 5 * keys::ID_RUN_ENTRY);
            t.insert(run_key, &run[..keys::ID_RUN_ENTRY]).unwrap();
            t.insert(keys::stream_key("deal-A", 0), &keys::run_value(1, 1))
                .unwrap();
            t.insert(keys::INDEXED, &keys::position_value(1)).unwrap();
        });
        let store = SledStore::open(dir.path(), Arc::new(EnvelopeOnly)).unwrap();
        assert_eq!(store.verify(&mut |_| {}).unwrap().events, 5);
        let a = store.read_stream("deal-A", 0, 10).await.unwrap();
        assert_eq!(a.iter().map(|e| e.position).collect::<Vec<_>>(), [1, 3, 5]);
        assert_eq!(store.stream_version("deal-B").await.unwrap(), Some(1));
        for e in &a {
            let by_id = store.event_by_id(e.id).await.unwrap().unwrap();
            assert_eq!(by_id.position, e.position);
        }
        let err = store
            .append("deal-A", ExpectedVersion::Exact(1), vec![note(9)])
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                StoreError::WrongExpectedVersion {
                    actual: Some(2),
                    ..
                }
            ),
            "{err}"
        );
        drop(store);
        // Closing wrote the whole index: nothing is left to rebuild.
        tamper(dir.path(), |t| {
            assert_eq!(
                t.get(keys::INDEXED).unwrap().map(|v| v.to_vec()),
                Some(keys::position_value(5).to_vec())
            );
        });
        let store = SledStore::open(dir.path(), Arc::new(EnvelopeOnly)).unwrap();
        assert_eq!(store.verify(&mut |_| {}).unwrap().events, 5);
    }

    /// A crash after a round of the deferred index was (partly) inserted but before the
    /// watermark moved over it (see `index`): the tree holds some entries of events after the
    /// watermark. The reopened store holds them again, rebuilt from the log: reads give every
    /// event once (a run the tree has, continued by a new append, too), `verify` passes, and
    /// writing the rebuilt entries overwrites the round's instead of adding to them.
    #[tokio::test]
    async fn a_round_inserted_after_the_watermark_is_written_again_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let append = |streams: &'static [&'static str]| {
            let dir = dir.path().to_path_buf();
            async move {
                let store = SledStore::open(&dir, Arc::new(EnvelopeOnly)).unwrap();
                for (i, stream) in streams.iter().enumerate() {
                    store
                        .append(stream, ExpectedVersion::Any, vec![note(i as u64)])
                        .await
                        .unwrap();
                }
                store
            }
        };
        // Each close writes the rest of the index as a round, then its watermark.
        drop(append(&["deal-A", "deal-B", "deal-C", "deal-A", "deal-B", "deal-C"]).await);
        // Positions 7 to 10; deal-A's two are one run (versions 2 and 3 at 9 and 10).
        drop(append(&["deal-B", "deal-C", "deal-A", "deal-A"]).await);
        tamper(dir.path(), |t| {
            assert!(t.get(keys::stream_key("deal-A", 2)).unwrap().is_some());
            // As if the crash came before the round's watermark, and before one of its
            // entries reached the disk.
            t.insert(keys::INDEXED, &keys::position_value(6)).unwrap();
            t.remove(keys::stream_key("deal-B", 2)).unwrap();
        });
        // Position 11 continues deal-A's run of the round the tree holds.
        let store = append(&["deal-A"]).await;
        check_after_round(&store).await;
        drop(store);
        tamper(dir.path(), |t| {
            assert_eq!(
                t.get(keys::INDEXED).unwrap().map(|v| v.to_vec()),
                Some(keys::position_value(11).to_vec())
            );
            let a: Vec<_> = t.scan_prefix(keys::stream_prefix("deal-A")).collect();
            assert_eq!(a.len(), 2, "one entry per round of deal-A: {a:?}");
        });
        check_after_round(&SledStore::open(dir.path(), Arc::new(EnvelopeOnly)).unwrap()).await;
    }

    /// Appends ids `from..to` (of [`bulk_id`]) through the bulk path, the log ending at `at`.
    async fn bulk_notes(store: &SledStore, from: u64, to: u64, at: u64) {
        let batches = (0..3)
            .map(|s| crate::StreamBatch {
                stream: format!("customer-C-{s}"),
                expected: ExpectedVersion::Any,
                events: (from..to)
                    .filter(|n| n % 3 == s)
                    .map(|n| crate::ProposedEvent {
                        id: Some(bulk_id(n)),
                        ..note(n)
                    })
                    .collect(),
            })
            .collect();
        store.append_checked(batches, at).await.unwrap();
    }

    /// Ids spread over the id space, as an import's UUIDv5 are.
    fn bulk_id(n: u64) -> uuid::Uuid {
        uuid::Uuid::from_u64_pair(n.wrapping_mul(0x9e37_79b9_7f4a_7c15), n)
    }

    /// Every id `0..n` found at the position of its event, and `verify` passes.
    async fn check_bulk_ids(store: &SledStore, n: u64) {
        assert_eq!(store.verify(&mut |_| {}).unwrap().events, n);
        for i in 0..n {
            let ev = store.event_by_id(bulk_id(i)).await.unwrap().unwrap();
            assert_eq!(ev.data.value()["n"], i, "{}", ev.position);
        }
    }

    /// The ids of bulk appends go to runs of their own (`id_runs`), not to `I`/`J` entries.
    /// A crash after a round's run was recorded but before the watermark moved over it: the
    /// reopened store rebuilds the round from the log but does not hold the run's ids again
    /// (each id is in one place: `verify` counts them); later rounds add runs and merge them,
    /// and the files of merged runs are deleted.
    #[tokio::test]
    async fn bulk_ids_in_runs_survive_a_crash_before_the_watermark() {
        let dir = tempfile::tempdir().unwrap();
        let open = || SledStore::open(dir.path(), Arc::new(EnvelopeOnly)).unwrap();
        // Each close writes what is held as a round: 1..=100, then 101..=200, whose run of
        // 100 ids merges with the first.
        let store = open();
        bulk_notes(&store, 0, 100, 0).await;
        drop(store);
        let store = open();
        bulk_notes(&store, 100, 200, 100).await;
        drop(store);
        tamper(dir.path(), |t| {
            assert!(t.scan_prefix([keys::ID]).next().is_none(), "an I entry");
            assert!(t.scan_prefix([keys::ID_RUN]).next().is_none(), "a J entry");
            assert_eq!(t.scan_prefix([keys::BULK_ID_RUN]).count(), 1);
            // As if the crash came after the second round's run was recorded but before its
            // watermark.
            t.insert(keys::INDEXED, &keys::position_value(100)).unwrap();
        });
        let store = open();
        check_bulk_ids(&store, 200).await;
        bulk_notes(&store, 200, 300, 200).await;
        check_bulk_ids(&store, 300).await;
        drop(store);
        let runs = |dir: &Path| {
            std::fs::read_dir(dir.join(super::super::id_runs::DIR))
                .unwrap()
                .count()
        };
        // 200 ids, then 100: two runs.
        assert_eq!(runs(dir.path()), 2);
        let store = open();
        check_bulk_ids(&store, 300).await;
        bulk_notes(&store, 300, 400, 300).await;
        drop(store);
        // 100 more merge with the 100, then with the 200: one run of 400, the others deleted.
        assert_eq!(runs(dir.path()), 1);
        tamper(dir.path(), |t| {
            assert_eq!(t.scan_prefix([keys::BULK_ID_RUN]).count(), 1);
        });
        check_bulk_ids(&open(), 400).await;
    }

    /// The store of the test above: each stream's events once, in version order, at the
    /// positions it appended them; each event found by its id; `verify` passes.
    async fn check_after_round(store: &SledStore) {
        for (stream, expected) in [
            ("deal-A", &[1u64, 4, 9, 10, 11][..]),
            ("deal-B", &[2, 5, 7]),
            ("deal-C", &[3, 6, 8]),
        ] {
            let events = store.read_stream(stream, 0, 100).await.unwrap();
            let versions: Vec<u64> = events.iter().map(|e| e.version).collect();
            assert_eq!(versions, (0..events.len() as u64).collect::<Vec<_>>());
            let positions: Vec<u64> = events.iter().map(|e| e.position).collect();
            assert_eq!(positions, expected, "{stream}");
        }
        assert_eq!(store.verify(&mut |_| {}).unwrap().events, 11);
        for p in 1..=11 {
            let ev = store.read_all(p, 1, &Default::default()).await.unwrap();
            let by_id = store.event_by_id(ev[0].id).await.unwrap().unwrap();
            assert_eq!(by_id.position, p);
        }
    }

    /// A crash after the `I` entries of a bulk index were written (they go in batches of
    /// their own, before the watermark: see `index`) but before the
    /// watermark moved: the events after it are indexed again from the log at open, and the
    /// ids found in both places count once.
    #[tokio::test]
    async fn id_entries_written_ahead_of_the_watermark_still_verify() {
        let dir = tempfile::tempdir().unwrap();
        let ids: Vec<uuid::Uuid> = (1..5u128).map(uuid::Uuid::from_u128).collect();
        {
            let store = SledStore::open(dir.path(), Arc::new(EnvelopeOnly)).unwrap();
            // A generated (UUIDv7) id first, so that the small ids after it get `I` entries.
            store
                .append("deal-A", ExpectedVersion::Any, vec![note(0)])
                .await
                .unwrap();
            for (i, id) in ids.iter().enumerate() {
                let stream = if i % 2 == 1 { "deal-A" } else { "deal-B" };
                let mut ev = note(i as u64 + 1);
                ev.id = Some(*id);
                store
                    .append(stream, ExpectedVersion::Any, vec![ev])
                    .await
                    .unwrap();
            }
        }
        tamper(dir.path(), |t| {
            assert_eq!(t.scan_prefix([keys::ID]).count(), 4);
            // As if the index had been written through position 1 only, but the `I` entries.
            for item in t.scan_prefix([keys::STREAM]) {
                let (k, _) = item.unwrap();
                t.remove(k).unwrap();
            }
            t.insert(keys::stream_key("deal-A", 0), &keys::run_value(1, 1))
                .unwrap();
            t.insert(keys::INDEXED, &keys::position_value(1)).unwrap();
        });
        for _ in 0..2 {
            // Once with the entries after the watermark rebuilt in memory, once after
            // closing wrote them.
            let store = SledStore::open(dir.path(), Arc::new(EnvelopeOnly)).unwrap();
            assert_eq!(store.verify(&mut |_| {}).unwrap().events, 5);
            for (id, position) in ids.iter().zip(2..) {
                let ev = store.event_by_id(*id).await.unwrap().unwrap();
                assert_eq!(ev.position, position);
            }
        }
    }

    /// Enough single-event appends from concurrent writers that the stream index held in
    /// memory is written in bulk while the store runs: reads, versions and the integrity walk
    /// agree before and after a reopen.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_stream_index_written_in_bulk_reads_and_verifies() {
        const STREAMS: u64 = 64;
        const EACH: u64 = 80;
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(SledStore::open(dir.path(), Arc::new(EnvelopeOnly)).unwrap());
        let tasks: Vec<_> = (0..STREAMS)
            .map(|s| {
                let store = store.clone();
                tokio::spawn(async move {
                    for n in 0..EACH {
                        let expected = match n {
                            0 => ExpectedVersion::NoStream,
                            n => ExpectedVersion::Exact(n - 1),
                        };
                        store
                            .append(&format!("deal-{s}"), expected, vec![note(n)])
                            .await
                            .unwrap();
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        // The index thread writes the round, then its watermark, while the store runs.
        let mut waited = 0;
        while super::read::indexed_through(&store.shared.sled().unwrap().tree)
            .unwrap()
            .unwrap()
            == 0
        {
            assert!(
                waited < 2000,
                "the index was not written while the store ran"
            );
            waited += 1;
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        let check = |store: &SledStore| {
            assert_eq!(store.verify(&mut |_| {}).unwrap().events, STREAMS * EACH);
        };
        check(&store);
        for s in 0..STREAMS {
            let evs = store
                .read_stream(&format!("deal-{s}"), 0, 1000)
                .await
                .unwrap();
            assert_eq!(evs.len() as u64, EACH);
            assert!(evs.iter().enumerate().all(|(v, e)| e.version == v as u64));
        }
        drop(store);
        let store = SledStore::open(dir.path(), Arc::new(EnvelopeOnly)).unwrap();
        check(&store);
        assert_eq!(
            store.stream_version("deal-7").await.unwrap(),
            Some(EACH - 1)
        );
    }
}
