//! The key layout of the one sled tree that holds the log.
//!
//! Everything lives in a single tree. A group commit's records are one sled insert (or one
//! atomic `apply_batch` when they fill several chunks); the indexes are written in bulk, in
//! rounds, behind a watermark (see `W`).
//!
//! - `L` + position (u64 big-endian) → a chunk: the framed records (see `frame`) of
//!   consecutive positions starting at that one. One chunk per group commit (split when it
//!   grows large), so sled holds few big values rather than many small ones. Big-endian keeps
//!   sled's iteration order equal to log order; the chunk holding position p is the last key
//!   ≤ `L` + p.
//! - `S` + stream name + `0x00` + version (u64 big-endian) → one or more runs, each the
//!   position of its first event (u64 big-endian) + number of events (u32 big-endian). A run
//!   is consecutive versions at consecutive positions (usually one appended batch); the runs
//!   of one entry have consecutive versions, the first one starting at the key's version.
//!   Stores written before the stream index was deferred hold one run per entry, which is the
//!   same format. Stream names never contain `0x00`, so a prefix scan of `S` + name + `0x00`
//!   is exactly one stream, and a scan of `S` + prefix is every stream with that prefix.
//! - `W` → the index watermark (u64 big-endian): every event at or before that position has
//!   its `S` and `I`/`J` entries. The entries of later events are not written with their
//!   group commit but kept in memory (`Shared::unindexed`, see `index`) and inserted many at
//!   a time, in rounds; the watermark moves over a round once the round is durable (and when
//!   the store closes). On open, the entries after the watermark are rebuilt from the log,
//!   which is the durable truth (the tree may hold some of them already: see `index`). A
//!   store without `W` (written before it existed) has every entry, so `W` is set to its
//!   tail then.
//! - `I` + event id (16 bytes) → position (u64 big-endian), for ids the client supplied.
//! - `J` + event id (16 bytes) → an id run: `(id (16 bytes), position (u64 big-endian))`
//!   pairs in ascending id order, the first being the key's id. For ids the store generated:
//!   UUIDv7s, increasing, so runs cover disjoint, increasing id ranges and the run that may
//!   hold an id is the last key ≤ `J` + id. Written with the rest of the deferred index
//!   (below): every id greater than the last one in the runs joins a run, the others (most
//!   client ids) get an `I` entry.
//! - `K` + seq (u64 big-endian) → entries (u64 LE) + CRC-32 (u32 LE): a run of the ids of
//!   bulk (checked) appends, kept in the file `ids/<seq>` (see `id_runs`). The ids of an
//!   index round that holds bulk events go there instead of `I`/`J` entries.

use uuid::Uuid;

pub const LOG: u8 = b'L';
pub const STREAM: u8 = b'S';
pub const ID: u8 = b'I';
pub const ID_RUN: u8 = b'J';
/// `K` + seq (u64 big-endian): the record of a run of bulk ids (see `id_runs`).
pub const BULK_ID_RUN: u8 = b'K';
/// The key of the stream index watermark.
pub const INDEXED: [u8; 1] = [b'W'];

pub fn log_key(position: u64) -> [u8; 9] {
    let mut k = [0u8; 9];
    k[0] = LOG;
    k[1..].copy_from_slice(&position.to_be_bytes());
    k
}

/// The position in a log key, `None` if the key is not one.
pub fn position_of_log_key(key: &[u8]) -> Option<u64> {
    match key {
        [LOG, rest @ ..] => Some(u64::from_be_bytes(rest.try_into().ok()?)),
        _ => None,
    }
}

/// `S` + stream + `0x00`: the prefix of one stream's index entries.
pub fn stream_prefix(stream: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(stream.len() + 10);
    k.push(STREAM);
    k.extend_from_slice(stream.as_bytes());
    k.push(0);
    k
}

/// `S` + prefix: the index entries of every stream whose name starts with `prefix`.
pub fn streams_prefix(prefix: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(prefix.len() + 1);
    k.push(STREAM);
    k.extend_from_slice(prefix.as_bytes());
    k
}

pub fn stream_key(stream: &str, version: u64) -> Vec<u8> {
    let mut k = stream_prefix(stream);
    k.extend_from_slice(&version.to_be_bytes());
    k
}

/// The stream name and version in a stream index key.
pub fn parse_stream_key(key: &[u8]) -> Option<(&str, u64)> {
    let rest = key.strip_prefix(&[STREAM])?;
    let (name, tail) = rest.split_at(rest.len().checked_sub(9)?);
    let (sep, version) = tail.split_first()?;
    if *sep != 0 {
        return None;
    }
    Some((
        std::str::from_utf8(name).ok()?,
        u64::from_be_bytes(version.try_into().ok()?),
    ))
}

pub fn id_key(id: &Uuid) -> [u8; 17] {
    let mut k = [0u8; 17];
    k[0] = ID;
    k[1..].copy_from_slice(id.as_bytes());
    k
}

/// One appended batch of a stream, as the stream index stores it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Run {
    pub first_version: u64,
    pub first_position: u64,
    pub len: u32,
}

impl Run {
    pub fn last_version(&self) -> u64 {
        self.first_version + u64::from(self.len) - 1
    }

    pub fn last_position(&self) -> u64 {
        self.first_position + u64::from(self.len) - 1
    }

    /// The part of the run from version `version` on (`None` if it ends before that).
    pub fn since(self, version: u64) -> Option<Run> {
        let skip = version.saturating_sub(self.first_version);
        let len = u32::try_from(u64::from(self.len).checked_sub(skip)?).ok()?;
        (len > 0).then_some(Run {
            first_version: self.first_version + skip,
            first_position: self.first_position + skip,
            len,
        })
    }

    /// The position of version `version`, if the run holds it.
    pub fn position_of(&self, version: u64) -> Option<u64> {
        let k = version.checked_sub(self.first_version)?;
        (k < u64::from(self.len)).then(|| self.first_position + k)
    }

    /// `(version, position)` of every event of the run.
    pub fn events(&self) -> impl Iterator<Item = (u64, u64)> {
        let (v, p) = (self.first_version, self.first_position);
        (0..u64::from(self.len)).map(move |k| (v + k, p + k))
    }
}

pub fn run_value(first_position: u64, len: u32) -> [u8; RUN_LEN] {
    let mut v = [0u8; RUN_LEN];
    v[..8].copy_from_slice(&first_position.to_be_bytes());
    v[8..].copy_from_slice(&len.to_be_bytes());
    v
}

/// Size of one run in a stream index value.
pub const RUN_LEN: usize = 12;

/// Decodes a stream index entry: its stream and runs (at least one, none empty).
pub fn parse_runs<'k>(key: &'k [u8], value: &[u8]) -> Option<(&'k str, Vec<Run>)> {
    let (stream, mut version) = parse_stream_key(key)?;
    if value.is_empty() || !value.len().is_multiple_of(RUN_LEN) {
        return None;
    }
    let mut runs = Vec::with_capacity(value.len() / RUN_LEN);
    for v in value.chunks_exact(RUN_LEN) {
        let len = u32::from_be_bytes(v[8..].try_into().ok()?);
        if len == 0 {
            return None;
        }
        runs.push(Run {
            first_version: version,
            first_position: u64::from_be_bytes(v[..8].try_into().ok()?),
            len,
        });
        version = version.checked_add(u64::from(len))?;
    }
    Some((stream, runs))
}

pub fn id_run_key(first: &Uuid) -> [u8; 17] {
    let mut k = [0u8; 17];
    k[0] = ID_RUN;
    k[1..].copy_from_slice(first.as_bytes());
    k
}

/// Size of one `(id, position)` pair of an id run.
pub const ID_RUN_ENTRY: usize = 24;

pub fn push_id_run_entry(value: &mut Vec<u8>, id: &Uuid, position: u64) {
    value.extend_from_slice(id.as_bytes());
    value.extend_from_slice(&position.to_be_bytes());
}

/// The pairs of an id run value; `None` if its length is not a multiple of a pair.
pub fn id_run_entries(value: &[u8]) -> Option<impl DoubleEndedIterator<Item = (Uuid, u64)> + '_> {
    if value.is_empty() || !value.len().is_multiple_of(ID_RUN_ENTRY) {
        return None;
    }
    Some(value.chunks_exact(ID_RUN_ENTRY).map(|e| {
        let (id, pos) = e.split_at(16);
        (
            Uuid::from_slice(id).unwrap_or_default(),
            u64::from_be_bytes(pos.try_into().unwrap_or_default()),
        )
    }))
}

/// Binary search of an id run for `id`.
pub fn id_run_lookup(value: &[u8], id: &Uuid) -> Option<u64> {
    if !value.len().is_multiple_of(ID_RUN_ENTRY) {
        return None;
    }
    let n = value.len() / ID_RUN_ENTRY;
    let at = |i: usize| &value[i * ID_RUN_ENTRY..(i + 1) * ID_RUN_ENTRY];
    let (mut lo, mut hi) = (0, n);
    while lo < hi {
        let mid = (lo + hi) / 2;
        match at(mid)[..16].cmp(id.as_bytes()) {
            std::cmp::Ordering::Less => lo = mid + 1,
            std::cmp::Ordering::Greater => hi = mid,
            std::cmp::Ordering::Equal => return parse_position_value(&at(mid)[16..]),
        }
    }
    None
}

pub fn position_value(position: u64) -> [u8; 8] {
    position.to_be_bytes()
}

/// Decodes an index value (a big-endian position).
pub fn parse_position_value(v: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(v.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_runs_position_of_a_version_is_the_one_its_events_pair_with_it() {
        for run in [
            Run {
                first_version: 0,
                first_position: 1,
                len: 1,
            },
            Run {
                first_version: 7,
                first_position: 40,
                len: 5,
            },
            Run {
                first_version: u64::MAX - 2,
                first_position: 3,
                len: 3,
            },
        ] {
            for version in [
                0,
                1,
                6,
                7,
                8,
                11,
                12,
                13,
                u64::MAX - 3,
                u64::MAX - 2,
                u64::MAX,
            ] {
                let walked = run.events().find(|&(v, _)| v == version).map(|(_, p)| p);
                assert_eq!(run.position_of(version), walked, "{run:?} at {version}");
            }
        }
    }

    #[test]
    fn keys_round_trip_and_sort_in_log_order() {
        assert!(log_key(255) < log_key(256));
        assert_eq!(position_of_log_key(&log_key(42)), Some(42));
        assert_eq!(
            parse_stream_key(&stream_key("deal-D-1", 7)),
            Some(("deal-D-1", 7))
        );
        // A stream's entries do not mix with a stream whose name extends it.
        assert!(stream_key("deal-D-1", u64::MAX) < stream_key("deal-D-10", 0));
        assert!(!stream_key("deal-D-10", 0).starts_with(&stream_prefix("deal-D-1")));
        let ids: Vec<Uuid> = (1..=5u128).map(|i| Uuid::from_u128(i * 10)).collect();
        let mut run = Vec::new();
        for (i, id) in ids.iter().enumerate() {
            push_id_run_entry(&mut run, id, 100 + i as u64);
        }
        assert_eq!(id_run_lookup(&run, &ids[0]), Some(100));
        assert_eq!(id_run_lookup(&run, &ids[4]), Some(104));
        assert_eq!(id_run_lookup(&run, &Uuid::from_u128(25)), None);
        assert_eq!(id_run_entries(&run).unwrap().nth(2), Some((ids[2], 102)));
        // An entry of two runs: versions 7..=8 at 40, then 9 at 50.
        let mut runs = run_value(40, 2).to_vec();
        runs.extend_from_slice(&run_value(50, 1));
        let key = stream_key("deal-D-1", 7);
        let (name, parsed) = parse_runs(&key, &runs).unwrap();
        assert_eq!(name, "deal-D-1");
        assert_eq!(
            parsed.iter().flat_map(Run::events).collect::<Vec<_>>(),
            [(7, 40), (8, 41), (9, 50)]
        );
        assert!(parse_runs(&stream_key("deal-D-1", 7), &runs[..13]).is_none());
        assert!(parse_runs(&stream_key("deal-D-1", 7), &run_value(1, 0)).is_none());
    }
}
