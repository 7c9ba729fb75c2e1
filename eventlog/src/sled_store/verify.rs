//! The integrity walk over the whole durable log.

use std::collections::HashMap;

use super::{backend, frame, keys, read, Shared};
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

pub(crate) fn verify(
    shared: &Shared,
    progress: &mut dyn FnMut(u64),
) -> Result<VerifyReport, StoreError> {
    let durable = shared.durable();
    let tree = &shared.tree;
    let mut prev_hash = frame::GENESIS;
    let mut versions: HashMap<String, u64> = HashMap::new();
    let mut expected = 1u64;
    for item in tree.range(keys::log_key(1)..=keys::log_key(durable)) {
        let (k, v) = item.map_err(backend)?;
        let corrupt = |reason: String| StoreError::Corrupt {
            position: expected,
            reason,
        };
        let position =
            keys::position_of_log_key(&k).ok_or_else(|| corrupt("malformed log key".into()))?;
        if position != expected {
            return Err(corrupt(format!(
                "position gap: the next record is at position {position}"
            )));
        }
        let f = frame::split(&v).map_err(corrupt)?;
        f.check_crc().map_err(corrupt)?;
        let hash = frame::chain_hash(&prev_hash, f.record);
        if hash != f.hash {
            return Err(corrupt(
                "hash chain broken: the stored hash does not follow from the previous record"
                    .into(),
            ));
        }
        let ev = decode_record(f.record).map_err(|e| corrupt(e.to_string()))?;
        if ev.position != position {
            return Err(corrupt(format!("record says position {}", ev.position)));
        }
        let want_version = versions.get(&ev.stream).map_or(0, |v| v + 1);
        if ev.version != want_version {
            return Err(corrupt(format!(
                "stream {} has version {} here, expected {want_version}",
                ev.stream, ev.version
            )));
        }
        let indexed = |key: &[u8]| -> Result<Option<u64>, StoreError> {
            tree.get(key)
                .map_err(backend)?
                .map(|v| read::index_position(&v))
                .transpose()
        };
        let by_stream = indexed(&keys::stream_key(&ev.stream, ev.version))?;
        if by_stream != Some(position) {
            return Err(corrupt(format!(
                "stream index mismatch: {}@{} points to {by_stream:?}",
                ev.stream, ev.version
            )));
        }
        let by_id = indexed(&keys::id_key(&ev.id))?;
        if by_id != Some(position) {
            return Err(corrupt(format!(
                "id index mismatch: {} points to {by_id:?}",
                ev.id
            )));
        }
        versions.insert(ev.stream, ev.version);
        prev_hash = hash;
        if position % PROGRESS_EVERY == 0 {
            progress(position);
        }
        expected += 1;
    }
    if expected <= durable {
        return Err(StoreError::Corrupt {
            position: expected,
            reason: format!("missing record (the log should reach position {durable})"),
        });
    }
    check_no_stray_index_entries(shared, durable)?;
    progress(durable);
    Ok(VerifyReport {
        events: durable,
        streams: versions.len() as u64,
        head_hash: blake3::Hash::from(prev_hash).to_hex().to_string(),
    })
}

/// Every index entry must belong to a record (the walk checked the converse).
fn check_no_stray_index_entries(shared: &Shared, durable: u64) -> Result<(), StoreError> {
    for prefix in [keys::STREAM, keys::ID] {
        for item in shared.tree.scan_prefix([prefix]) {
            let (k, v) = item.map_err(backend)?;
            let position = read::index_position(&v)?;
            if position > durable {
                continue;
            }
            let ev = read::record_at(&shared.tree, position)?;
            let matches = match prefix {
                keys::STREAM => keys::parse_stream_key(&k) == Some((&ev.stream, ev.version)),
                _ => k[..] == keys::id_key(&ev.id)[..],
            };
            if !matches {
                return Err(StoreError::Corrupt {
                    position,
                    reason: format!("a stray index entry points to this position (key {k:?})"),
                });
            }
        }
    }
    Ok(())
}
