//! Reads. Everything here stops at the durable watermark: an event is visible only once it
//! is on disk, so a crash can never take back an event somebody has seen.

use super::{backend, frame, keys, Shared, Tail};
use crate::record::decode_record;
use crate::{Filter, RecordedEvent, StoreError};

/// Decodes a stored log value, checking its checksum.
pub(crate) fn decode_stored(position: u64, value: &[u8]) -> Result<RecordedEvent, StoreError> {
    let corrupt = |reason: String| StoreError::Corrupt { position, reason };
    let f = frame::split(value).map_err(corrupt)?;
    f.check_crc().map_err(corrupt)?;
    let ev = decode_record(f.record).map_err(|e| corrupt(e.to_string()))?;
    if ev.position != position {
        return Err(corrupt(format!(
            "record says position {} but is stored at {position}",
            ev.position
        )));
    }
    Ok(ev)
}

/// The record at `position`, whether or not it is durable yet (the writer's own view).
pub(crate) fn record_at(tree: &sled::Tree, position: u64) -> Result<RecordedEvent, StoreError> {
    match tree.get(keys::log_key(position)).map_err(backend)? {
        Some(v) => decode_stored(position, &v),
        None => Err(StoreError::Corrupt {
            position,
            reason: "an index points to this position but it holds no record".into(),
        }),
    }
}

/// The last record's position and chain hash (position 0 and the genesis hash if empty).
pub(crate) fn tail(tree: &sled::Tree) -> Result<Tail, StoreError> {
    let last = tree
        .scan_prefix([keys::LOG])
        .next_back()
        .transpose()
        .map_err(backend)?;
    let Some((k, v)) = last else {
        return Ok(Tail {
            position: 0,
            hash: frame::GENESIS,
        });
    };
    let position = keys::position_of_log_key(&k).ok_or_else(|| StoreError::Corrupt {
        position: 0,
        reason: "malformed log key at the end of the log".into(),
    })?;
    let f = frame::split(&v).map_err(|reason| StoreError::Corrupt { position, reason })?;
    Ok(Tail {
        position,
        hash: f.hash,
    })
}

/// Durable records from `from` (inclusive) through `to` (inclusive) matching `filter`, at
/// most `limit`. Returns them and the last position examined.
pub(crate) fn scan(
    shared: &Shared,
    from: u64,
    to: u64,
    limit: usize,
    filter: &Filter,
) -> Result<(Vec<RecordedEvent>, u64), StoreError> {
    let from = from.max(1);
    let mut out = Vec::new();
    let mut last_seen = from - 1;
    if from > to || limit == 0 {
        return Ok((out, last_seen));
    }
    for item in shared.tree.range(keys::log_key(from)..=keys::log_key(to)) {
        let (k, v) = item.map_err(backend)?;
        let position = keys::position_of_log_key(&k).ok_or_else(|| StoreError::Corrupt {
            position: last_seen + 1,
            reason: "malformed log key".into(),
        })?;
        let ev = decode_stored(position, &v)?;
        last_seen = position;
        if filter.matches(&ev) {
            out.push(ev);
            if out.len() >= limit {
                break;
            }
        }
    }
    Ok((out, last_seen))
}

pub(crate) fn read_all(
    shared: &Shared,
    from_position: u64,
    limit: usize,
    filter: &Filter,
) -> Result<Vec<RecordedEvent>, StoreError> {
    Ok(scan(shared, from_position, shared.durable(), limit, filter)?.0)
}

pub(crate) fn read_stream(
    shared: &Shared,
    stream: &str,
    from_version: u64,
    limit: usize,
) -> Result<Vec<RecordedEvent>, StoreError> {
    let durable = shared.durable();
    let prefix = keys::stream_prefix(stream);
    let mut out = Vec::new();
    for item in shared.tree.range(keys::stream_key(stream, from_version)..) {
        if out.len() >= limit {
            break;
        }
        let (k, v) = item.map_err(backend)?;
        if !k.starts_with(&prefix) {
            break;
        }
        let position = index_position(&v)?;
        if position > durable {
            break;
        }
        out.push(record_at(&shared.tree, position)?);
    }
    Ok(out)
}

pub(crate) fn stream_version(shared: &Shared, stream: &str) -> Result<Option<u64>, StoreError> {
    let durable = shared.durable();
    for item in shared.tree.scan_prefix(keys::stream_prefix(stream)).rev() {
        let (k, v) = item.map_err(backend)?;
        if index_position(&v)? <= durable {
            return Ok(keys::parse_stream_key(&k).map(|(_, version)| version));
        }
    }
    Ok(None)
}

pub(crate) fn index_position(v: &[u8]) -> Result<u64, StoreError> {
    keys::parse_position_value(v).ok_or_else(|| StoreError::Corrupt {
        position: 0,
        reason: format!("malformed index value of {} bytes", v.len()),
    })
}

/// The durable event with this id, if any (the id index points at its position).
pub(crate) fn event_by_id(
    shared: &Shared,
    id: &uuid::Uuid,
) -> Result<Option<RecordedEvent>, StoreError> {
    let Some(v) = shared.tree.get(keys::id_key(id)).map_err(backend)? else {
        return Ok(None);
    };
    let position = index_position(&v)?;
    if position > shared.durable() {
        return Ok(None);
    }
    record_at(&shared.tree, position).map(Some)
}
