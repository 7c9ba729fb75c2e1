//! Reads. The public ones stop at the durable watermark: an event is visible only once it
//! is on disk, so a crash can never take back an event somebody has seen.

use super::fault::at;
use super::frame::{self, Frame};
use super::keys::{self, Run};
use super::{backend, Shared, Sled, Tail};
use crate::record::decode_record;
use crate::{Filter, RecordedEvent, StoreError};

/// Decodes the frame stored for `position`, checking its checksum.
pub fn decode_frame(position: u64, f: &Frame<'_>) -> Result<RecordedEvent, StoreError> {
    let corrupt = |reason: String| StoreError::Corrupt { position, reason };
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

/// The log chunks holding positions `from` through `to`: from the chunk holding `from` (the
/// last key at or before it) to the last key at or before `to`.
fn chunks_from(tree: &sled::Tree, from: u64, to: u64) -> Result<sled::Iter, StoreError> {
    let start = match tree
        .range(keys::log_key(0)..=keys::log_key(from))
        .next_back()
        .transpose()
        .map_err(at(from))?
    {
        Some((k, _)) => k.to_vec(),
        None => keys::log_key(from).to_vec(),
    };
    Ok(tree.range(start..=keys::log_key(to).to_vec()))
}

/// Calls `visit` with the frame of every position from `from` through `to`, in order, until
/// it returns `false`; durable or not (callers bound `to`). Returns the last position
/// visited (`from - 1` if none).
pub(crate) fn for_each_frame(
    sled: &Sled,
    from: u64,
    to: u64,
    mut visit: impl FnMut(u64, Frame<'_>) -> Result<bool, StoreError>,
) -> Result<u64, StoreError> {
    let from = from.max(1);
    let mut last = from - 1;
    if from > to {
        return Ok(last);
    }
    for item in chunks_from(&sled.tree, from, to)? {
        let (k, chunk) = item.map_err(at(last + 1))?;
        let first = keys::position_of_log_key(&k).ok_or_else(|| StoreError::Corrupt {
            position: last + 1,
            reason: "malformed log key".into(),
        })?;
        let chunk = sled.chunk(first, chunk)?;
        for (i, f) in frame::frames(&chunk).enumerate() {
            let position = first + i as u64;
            let f = f.map_err(|reason| StoreError::Corrupt { position, reason })?;
            if position < from {
                continue;
            }
            if position > to {
                return Ok(last);
            }
            last = position;
            if !visit(position, f)? {
                return Ok(last);
            }
        }
    }
    Ok(last)
}

/// The record at `position`, whether or not it is durable yet (the writer's own view).
pub(crate) fn record_at(sled: &Sled, position: u64) -> Result<RecordedEvent, StoreError> {
    let mut found = None;
    for_each_frame(sled, position, position, |p, f| {
        found = Some(decode_frame(p, &f)?);
        Ok(false)
    })?;
    found.ok_or_else(|| StoreError::Corrupt {
        position,
        reason: "an index points to this position but the log holds no record there".into(),
    })
}

/// The chain hash stored with the record at `position` (its checksum checked).
pub(crate) fn chain_hash_at(sled: &Sled, position: u64) -> Result<[u8; 32], StoreError> {
    let mut found = None;
    for_each_frame(sled, position, position, |p, f| {
        f.check_crc().map_err(|reason| StoreError::Corrupt {
            position: p,
            reason,
        })?;
        found = Some(f.hash);
        Ok(false)
    })?;
    found.ok_or_else(|| StoreError::Corrupt {
        position,
        reason: "the log holds no record at this durable position".into(),
    })
}

/// The last record's position and chain hash (position 0 and the genesis hash if empty).
pub(crate) fn tail(sled: &Sled) -> Result<Tail, StoreError> {
    let mut tail = Tail {
        position: 0,
        hash: frame::GENESIS,
    };
    let last = sled
        .tree
        .scan_prefix([keys::LOG])
        .next_back()
        .transpose()
        .map_err(at(0))?;
    if let Some((k, chunk)) = last {
        let first = keys::position_of_log_key(&k).ok_or_else(|| StoreError::Corrupt {
            position: 0,
            reason: "malformed log key at the end of the log".into(),
        })?;
        let chunk = sled.checked_chunk(first, chunk)?;
        for (i, f) in frame::frames(&chunk).enumerate() {
            let position = first + i as u64;
            let f = f.map_err(|reason| StoreError::Corrupt { position, reason })?;
            tail = Tail {
                position,
                hash: f.hash,
            };
        }
    }
    Ok(tail)
}

/// The greatest id in the id runs (nil if there are none).
pub(crate) fn last_id_run_id(tree: &sled::Tree) -> Result<uuid::Uuid, StoreError> {
    let last = tree
        .scan_prefix([keys::ID_RUN])
        .next_back()
        .transpose()
        .map_err(at(0))?;
    let Some((_, v)) = last else {
        return Ok(uuid::Uuid::nil());
    };
    keys::id_run_entries(&v)
        .and_then(|mut e| e.next_back())
        .map(|(id, _)| id)
        .ok_or_else(|| StoreError::Corrupt {
            position: 0,
            reason: "malformed id run at the end of the id index".into(),
        })
}

/// At most this many frames are decoded per round of [`scan`].
const ROUND: usize = 16_384;
/// Rounds smaller than this are decoded on the calling thread alone.
const PARALLEL_MIN: usize = 512;

fn decode_threads() -> usize {
    static N: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *N.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get().min(8)))
}

type Item<'a> = Result<(u64, Frame<'a>), StoreError>;

fn decode_item(item: &Item<'_>) -> Result<RecordedEvent, StoreError> {
    match item {
        Ok((position, f)) => decode_frame(*position, f),
        Err(StoreError::Corrupt { position, reason }) => Err(StoreError::Corrupt {
            position: *position,
            reason: reason.clone(),
        }),
        Err(StoreError::StorageFull(d)) => Err(StoreError::StorageFull(d.clone())),
        Err(e) => Err(backend(e)),
    }
}

/// Decodes `items` in order, split over the available cores when there are enough of them;
/// returns the results in parts, in order (so no part is copied into another).
/// Every frame's checksum is checked (see [`decode_frame`]).
fn decode_items(items: &[Item<'_>]) -> Vec<Vec<Result<RecordedEvent, StoreError>>> {
    let threads = decode_threads();
    if threads < 2 || items.len() < PARALLEL_MIN {
        return vec![items.iter().map(decode_item).collect()];
    }
    let per = items.len().div_ceil(threads);
    std::thread::scope(|s| {
        let mut parts = items.chunks(per);
        let mine = parts.next().unwrap_or_default();
        let helpers: Vec<_> = parts
            .map(|part| {
                let job = move || part.iter().map(decode_item).collect::<Vec<_>>();
                (part, std::thread::Builder::new().spawn_scoped(s, job))
            })
            .collect();
        let mut out = vec![mine.iter().map(decode_item).collect()];
        for (part, helper) in helpers {
            match helper {
                Ok(h) => match h.join() {
                    Ok(v) => out.push(v),
                    Err(panic) => std::panic::resume_unwind(panic),
                },
                // No thread to spare: decode it here.
                Err(_) => out.push(part.iter().map(decode_item).collect()),
            }
        }
        out
    })
}

/// Records from `from` (inclusive) through `to` (inclusive) matching `filter`, at most
/// `limit`. Returns them and the last position examined.
///
/// Works in rounds: the frames of a round are gathered from whole chunks, decoded (in
/// parallel when there are many; every checksum is checked), then filtered in log order, so
/// the result, the last position and the first error are those of a one-by-one walk.
pub(crate) fn scan(
    shared: &Shared,
    from: u64,
    to: u64,
    limit: usize,
    filter: &Filter,
) -> Result<(Vec<RecordedEvent>, u64), StoreError> {
    let from = from.max(1);
    let mut last = from - 1;
    if limit == 0 || from > to {
        return Ok((Vec::new(), last));
    }
    let everything = filter.types.is_empty() && filter.stream_prefix.is_none();
    // Sized once when the size is known (every event, a bounded range): no regrowth.
    let expected = if everything {
        limit.min(usize::try_from(to - from + 1).unwrap_or(usize::MAX))
    } else {
        0
    };
    let mut out = Vec::with_capacity(expected.min(4 * ROUND));
    let sled = shared.sled()?;
    let tree = &sled.tree;
    let mut chunks = chunks_from(tree, from, to)?;
    let mut carry: Option<(u64, sled::IVec)> = None;
    let mut next = from;
    loop {
        let remaining = limit - out.len();
        let want = if everything {
            remaining
        } else {
            remaining.max(1024)
        }
        .min(ROUND);
        // Gather whole chunks holding `want` frames from `next` on.
        let mut held: Vec<(u64, sled::IVec)> = Vec::new();
        let mut counted = 0usize;
        let mut pending_error = None;
        while counted < want {
            let (first, chunk) = match carry.take() {
                Some(c) => c,
                None => match chunks.next() {
                    None => break,
                    Some(Err(e)) => {
                        pending_error = Some(at(next)(e));
                        break;
                    }
                    Some(Ok((k, v))) => match keys::position_of_log_key(&k) {
                        Some(first) => match sled.chunk(first, v) {
                            Ok(chunk) => (first, chunk),
                            Err(e) => {
                                pending_error = Some(e);
                                break;
                            }
                        },
                        None => {
                            pending_error = Some(StoreError::Corrupt {
                                position: next,
                                reason: "malformed log key".into(),
                            });
                            break;
                        }
                    },
                },
            };
            let after = first + frame::frames(&chunk).count() as u64;
            counted += (after.min(to + 1).saturating_sub(next.max(first))) as usize;
            held.push((first, chunk));
        }
        // Split them into frames.
        let mut items: Vec<Item<'_>> = Vec::with_capacity(counted.min(want));
        let mut end = held.is_empty();
        'build: for (first, chunk) in &held {
            for (i, f) in frame::frames(chunk).enumerate() {
                let position = first + i as u64;
                match f {
                    Err(reason) => {
                        items.push(Err(StoreError::Corrupt { position, reason }));
                        end = true;
                        break 'build;
                    }
                    Ok(f) => {
                        if position < next {
                            continue;
                        }
                        if position > to {
                            end = true;
                            break 'build;
                        }
                        if items.len() >= want {
                            carry = Some((*first, chunk.clone()));
                            break 'build;
                        }
                        items.push(Ok((position, f)));
                    }
                }
            }
        }
        if items.is_empty() {
            end = true;
        }
        for (item, ev) in items.iter().zip(decode_items(&items).into_iter().flatten()) {
            let ev = ev?;
            if let Ok((position, _)) = item {
                last = *position;
            }
            if filter.matches(&ev) {
                out.push(ev);
                if out.len() >= limit {
                    return Ok((out, last));
                }
            }
        }
        next = last + 1;
        if let Some(e) = pending_error {
            return Err(e);
        }
        if end || next > to {
            return Ok((out, last));
        }
    }
}

pub(crate) fn read_all(
    shared: &Shared,
    from_position: u64,
    limit: usize,
    filter: &Filter,
) -> Result<Vec<RecordedEvent>, StoreError> {
    Ok(scan(shared, from_position, shared.durable(), limit, filter)?.0)
}

/// Which streams' index entries to look at.
#[derive(Clone, Copy)]
pub(crate) enum Streams<'a> {
    /// Exactly this stream.
    One(&'a str),
    /// Every stream whose name starts with this (`""`: all of them).
    Prefix(&'a str),
}

/// The runs stored in the tree's stream index under `prefix` (a `keys::stream_prefix` or
/// `keys::streams_prefix`), in key order.
fn tree_runs(tree: &sled::Tree, prefix: &[u8]) -> Result<Vec<(String, Run)>, StoreError> {
    let mut out = Vec::new();
    for item in tree.scan_prefix(prefix) {
        let (k, v) = item.map_err(at(0))?;
        let (stream, runs) = keys::parse_runs(&k, &v).ok_or_else(|| StoreError::Corrupt {
            position: 0,
            reason: format!("malformed stream index entry {k:?}"),
        })?;
        out.extend(runs.into_iter().map(|r| (stream.to_string(), r)));
    }
    Ok(out)
}

/// The runs of the chosen streams: those in the tree, then those not written yet (see
/// `index`); each stream's runs in version order. Durable or not (callers filter).
pub(crate) fn runs(
    shared: &Shared,
    streams: Streams<'_>,
) -> Result<Vec<(String, Run)>, StoreError> {
    // Memory first: runs leave it only after they are in the tree, so whatever is missing
    // from this snapshot is found in the tree read after it.
    let pending = shared
        .unindexed
        .read()
        .map_err(|_| backend("the index lock is poisoned"))?
        .runs(streams);
    let prefix = match streams {
        Streams::One(stream) => keys::stream_prefix(stream),
        Streams::Prefix(prefix) => keys::streams_prefix(prefix),
    };
    let mut out = tree_runs(&shared.sled()?.tree, &prefix)?;
    if pending.is_empty() {
        return Ok(out);
    }
    // Skip what the tree already has: written between the snapshot and the tree read, or,
    // after a crash, the entries of the round after the watermark, which the rebuilt runs
    // held here overlap, a run's start or a part of one (see `index`).
    let mut next: std::collections::HashMap<&str, u64> = std::collections::HashMap::new();
    for (stream, run) in &out {
        next.insert(stream, run.last_version() + 1);
    }
    let pending: Vec<_> = pending
        .into_iter()
        .filter_map(|(stream, run)| {
            let next = next.get(stream.as_str()).copied().unwrap_or(0);
            run.since(next).map(|run| (stream, run))
        })
        .collect();
    out.extend(pending);
    Ok(out)
}

/// The last run of `stream` in the tree's stream index (one point lookup: the writer's
/// version of a stream it has not seen yet).
pub(crate) fn tree_last_run(tree: &sled::Tree, stream: &str) -> Result<Option<Run>, StoreError> {
    let prefix = keys::stream_prefix(stream);
    let mut upper = prefix.clone();
    if let Some(last) = upper.last_mut() {
        *last = 1;
    }
    let Some((k, v)) = tree.get_lt(&upper).map_err(at(0))? else {
        return Ok(None);
    };
    if !k.starts_with(&prefix) {
        return Ok(None);
    }
    let (_, runs) = keys::parse_runs(&k, &v).ok_or_else(|| StoreError::Corrupt {
        position: 0,
        reason: format!("malformed stream index entry {k:?}"),
    })?;
    Ok(runs.last().copied())
}

/// The stream index watermark (see `keys`), `None` if the store has none yet.
pub(crate) fn indexed_through(tree: &sled::Tree) -> Result<Option<u64>, StoreError> {
    match tree.get(keys::INDEXED).map_err(at(0))? {
        None => Ok(None),
        Some(v) => index_position(&v).map(Some),
    }
}

/// Rebuilds the index entries of positions `from` through `to` from the log (after a crash,
/// the index entries of events after the watermark exist nowhere else).
pub(crate) fn rebuild_unindexed(
    sled: &Sled,
    from: u64,
    to: u64,
) -> Result<super::index::Unindexed, StoreError> {
    let mut unindexed = super::index::Unindexed::default();
    for_each_frame(sled, from, to, |position, f| {
        let ev = decode_frame(position, &f)?;
        unindexed.push(&ev.stream, ev.version, position, 1);
        // (A store from before the id index was deferred has these in the tree already.)
        // (Nor the ids of a round whose run was recorded before the watermark moved.)
        if tree_id_position(&sled.tree, &ev.id)?.is_none()
            && sled.id_runs().position_of(&ev.id).is_none()
        {
            unindexed.push_id(ev.id, position);
        }
        Ok(true)
    })?;
    Ok(unindexed)
}

pub(crate) fn read_stream(
    shared: &Shared,
    stream: &str,
    from_version: u64,
    limit: usize,
) -> Result<Vec<RecordedEvent>, StoreError> {
    let durable = shared.durable();
    let positions: Vec<u64> = runs(shared, Streams::One(stream))?
        .into_iter()
        .flat_map(|(_, run)| run.events())
        .filter(|&(v, p)| v >= from_version && p <= durable)
        .map(|(_, p)| p)
        .take(limit)
        .collect();
    // Consecutive positions share chunks: walk each run of them once (one lookup per event
    // walked every chunk from its start, quadratic in the chunk for a big batch).
    let mut out = Vec::with_capacity(positions.len());
    let sled = shared.sled()?;
    let mut i = 0;
    while let Some(&first) = positions.get(i) {
        let mut last = first;
        while positions.get(i + 1) == Some(&(last + 1)) {
            i += 1;
            last += 1;
        }
        i += 1;
        let before = out.len();
        for_each_frame(&sled, first, last, |p, f| {
            out.push(decode_frame(p, &f)?);
            Ok(true)
        })?;
        let wanted = (last - first + 1) as usize;
        if out.len() - before != wanted {
            return Err(StoreError::Corrupt {
                position: first + (out.len() - before) as u64,
                reason: "an index points to this position but the log holds no record there".into(),
            });
        }
    }
    Ok(out)
}

pub(crate) fn stream_version(shared: &Shared, stream: &str) -> Result<Option<u64>, StoreError> {
    let durable = shared.durable();
    Ok(runs(shared, Streams::One(stream))?
        .into_iter()
        .rev()
        .find(|(_, run)| run.last_position() <= durable)
        .map(|(_, run)| run.last_version()))
}

/// Where the id index puts `id` (durable or not; in memory or in the tree), `None` if it is
/// not in the log.
pub(crate) fn id_position(shared: &Shared, id: &uuid::Uuid) -> Result<Option<u64>, StoreError> {
    // Memory first, as in `runs`.
    let held = shared
        .unindexed
        .read()
        .map_err(|_| backend("the index lock is poisoned"))?
        .position_of(id);
    if held.is_some() {
        return Ok(held);
    }
    let sled = shared.sled()?;
    if let Some(position) = tree_id_position(&sled.tree, id)? {
        return Ok(Some(position));
    }
    Ok(sled.id_runs().position_of(id))
}

/// Where the tree's id index puts `id`.
fn tree_id_position(tree: &sled::Tree, id: &uuid::Uuid) -> Result<Option<u64>, StoreError> {
    if let Some(v) = tree.get(keys::id_key(id)).map_err(at(0))? {
        return index_position(&v).map(Some);
    }
    let run = tree
        .range(keys::id_run_key(&uuid::Uuid::nil())..=keys::id_run_key(id))
        .next_back()
        .transpose()
        .map_err(at(0))?;
    Ok(run.and_then(|(_, v)| keys::id_run_lookup(&v, id)))
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
    let Some(position) = id_position(shared, id)? else {
        return Ok(None);
    };
    if position > shared.durable() {
        return Ok(None);
    }
    record_at(&*shared.sled()?, position).map(Some)
}

/// [`event_by_id`] for many ids: the positions from the id index, then the records read in
/// log order, each chunk once (a re-run of a large import finds long runs of them).
pub(crate) fn events_by_ids(
    shared: &Shared,
    ids: &[uuid::Uuid],
) -> Result<Vec<Option<RecordedEvent>>, StoreError> {
    /// Positions closer than this are read in one walk over the chunks between them.
    const GAP: u64 = 256;
    let durable = shared.durable();
    let mut wanted: Vec<(u64, usize)> = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        if let Some(p) = id_position(shared, id)?.filter(|p| *p <= durable) {
            wanted.push((p, i));
        }
    }
    wanted.sort_unstable();
    let mut out: Vec<Option<RecordedEvent>> = vec![None; ids.len()];
    let sled = shared.sled()?;
    let mut i = 0;
    while i < wanted.len() {
        let mut j = i;
        while j + 1 < wanted.len() && wanted[j + 1].0 <= wanted[j].0 + GAP {
            j += 1;
        }
        let mut k = i;
        for_each_frame(&sled, wanted[i].0, wanted[j].0, |p, f| {
            while k <= j && wanted[k].0 == p {
                out[wanted[k].1] = Some(decode_frame(p, &f)?);
                k += 1;
            }
            Ok(k <= j)
        })?;
        if k <= j {
            return Err(StoreError::Corrupt {
                position: wanted[k].0,
                reason: "an index points to this position but the log holds no record there".into(),
            });
        }
        i = j + 1;
    }
    Ok(out)
}
