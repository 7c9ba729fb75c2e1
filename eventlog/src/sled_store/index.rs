//! The deferred part of the indexes (see `keys`, `W`).
//!
//! Writing one `S` entry per appended batch made the stream index the bulk of a group
//! commit's sled work: with many writers each appending one event to its own stream, a group
//! of N events cost N + 2 inserts. So the writer keeps the stream runs and event ids of events
//! after the index watermark in memory, here, and has them written in *rounds*: once
//! [`Unindexed::due`] is true, and no round is being written, it seals what it holds
//! ([`Held::sealed`]) and hands it to the index thread (see the writer's `indexer`), which
//! inserts their entries (multi-run `S` entries, one per stream per [`RUNS_PER_ENTRY`] runs;
//! id runs and id entries as before; the ids of a round that holds events of bulk appends
//! go to a sorted run of their own instead, see `id_runs`) and then drops them from memory. Readers combine the
//! tree with both (see `read::runs`, `read::id_position`).
//!
//! Not on the writer thread, and with plain inserts, not `apply_batch`: measured under the
//! HTTP append load on a store of ~2 M events, a round (64 streams' runs and 4,096 ids) cost
//! the writer 16–25 ms of CPU three or four times a second (sled copies a leaf for every
//! insert, and splits and rewrites leaves), and every append behind it waited; written as one
//! `apply_batch` it also took sled's concurrency lock exclusively, which stops every sled
//! reader and writer of the process. An insert shares that lock (with sled's flush too). A
//! bulk import's round still goes in batches (see the indexer's `insert_entries`).
//!
//! Since a round is not atomic, the watermark moves over it only once it is durable (the
//! index thread flushes sled, inserts the watermark and flushes again before it takes the
//! next round), so after a crash the tree may hold (some of) the entries of the one round
//! after the watermark, never more. At open, the entries after the watermark are rebuilt from
//! the log, and the rebuild yields that round's entries under the same keys (it starts at the
//! same position, and runs are merged and cut into entries the same way), so writing them
//! again overwrites those entries; until then readers skip what the tree already has
//! (`read::runs`), and an id already in the tree is not held again
//! (`read::rebuild_unindexed`).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use uuid::Uuid;

use super::keys::{self, Run};

/// The runs held in memory are written once there are this many...
pub(crate) const MAX_RUNS: usize = 4096;
/// ...or once they cover this many events (which bounds the rebuild work at open).
const MAX_EVENTS: u64 = 65_536;
/// For a group of [`crate::EventStore::append_checked`] (a bulk import), only once they
/// cover this many events (and a round's runs are never more than its events): a stream's
/// runs in a window this wide share one `S` entry, instead of an entry nearly per event when
/// an import interleaves many streams. The `S` entries were most of the index thread's work
/// (sled copies a leaf for each insert): on the 1 M-event Salesforce import, a round of
/// 131,072 events instead of 32,768 took the index thread from 19% of the import's CPU to
/// 13%, for 13 MiB more peak memory (at 262,144, +107 MiB). A round's entries go to sled in
/// batches of their own (see the indexer), and its ids to a run (see `id_runs`), so the
/// round's size no longer bounds what one sled batch holds. It bounds the rebuild at open
/// after a crash during an import: at most two rounds are read again.
const MAX_BULK_EVENTS: u64 = 131_072;
const MAX_BULK_RUNS: usize = MAX_BULK_EVENTS as usize;
/// At most this many runs go into one `S` entry.
const RUNS_PER_ENTRY: usize = 256;
/// An id run (`J` entry) is closed once it holds this many bytes. sled (0.34) copies a whole
/// leaf (up to 17 entries) for every insert into it, and writes it whole to its log every
/// few inserts, to a blob file of its own once it is over ~128 KB: with runs of 64 KiB the
/// leaf that takes the new runs was ~1 MB, copied twice and often written whole in each
/// round of the live appends.
const ID_RUN_BYTES: usize = 4 * 1024;

/// Runs (by stream, in version order) and ids of events after the index watermark.
#[derive(Default)]
pub(crate) struct Unindexed {
    streams: BTreeMap<String, Vec<Run>>,
    /// Event id → position.
    ids: HashMap<Uuid, u64>,
    runs: usize,
    events: u64,
    /// Some of the events come from checked (bulk) appends: the ids go to a run of their own
    /// (see `id_runs`) when the store has a directory.
    bulk: bool,
}

impl Unindexed {
    /// Adds the run of `len` events of `stream` from `first_version` at `first_position`
    /// (merged into the stream's last run when it continues it).
    pub(crate) fn push(&mut self, stream: &str, first_version: u64, first_position: u64, len: u32) {
        self.events += u64::from(len);
        let runs = match self.streams.get_mut(stream) {
            Some(runs) => runs,
            None => self.streams.entry(stream.to_string()).or_default(),
        };
        if let Some(last) = runs.last_mut() {
            if last.last_version() + 1 == first_version
                && last.last_position() + 1 == first_position
            {
                if let Some(merged) = last.len.checked_add(len) {
                    last.len = merged;
                    return;
                }
            }
        }
        runs.push(Run {
            first_version,
            first_position,
            len,
        });
        self.runs += 1;
    }

    /// Whether the runs held are due to be written; `bulk`: by a group of checked (bulk)
    /// appends.
    pub(crate) fn due(&self, bulk: bool) -> bool {
        let (max_runs, max_events) = if bulk {
            (MAX_BULK_RUNS, MAX_BULK_EVENTS)
        } else {
            (MAX_RUNS, MAX_EVENTS)
        };
        self.runs >= max_runs || self.events >= max_events
    }

    /// The last run of `stream` held here.
    pub(crate) fn last_run(&self, stream: &str) -> Option<Run> {
        self.streams
            .get(stream)
            .and_then(|runs| runs.last().copied())
    }

    /// Notes that events of checked (bulk) appends are held.
    pub(crate) fn note_bulk(&mut self) {
        self.bulk = true;
    }

    /// Whether events of checked (bulk) appends are held.
    pub(crate) fn has_bulk(&self) -> bool {
        self.bulk
    }

    /// The ids held and their positions, as a list (for a run of bulk ids).
    pub(crate) fn id_list(&self) -> Vec<(Uuid, u64)> {
        self.ids.iter().map(|(id, p)| (*id, *p)).collect()
    }

    /// Adds the id of the event at `position`.
    pub(crate) fn push_id(&mut self, id: Uuid, position: u64) {
        self.ids.insert(id, position);
    }

    /// The position of the event with this id, if it is held here.
    pub(crate) fn position_of(&self, id: &Uuid) -> Option<u64> {
        self.ids.get(id).copied()
    }

    /// The ids held and their positions.
    pub(crate) fn id_positions(&self) -> impl Iterator<Item = (&Uuid, u64)> + '_ {
        self.ids.iter().map(|(id, p)| (id, *p))
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.streams.is_empty() && self.ids.is_empty()
    }

    /// The runs of `stream`, or of every stream whose name starts with `prefix`.
    pub(crate) fn runs(&self, streams: super::read::Streams<'_>) -> Vec<(String, Run)> {
        let one = |(name, runs): (&String, &Vec<Run>)| {
            runs.iter().map(|r| (name.clone(), *r)).collect::<Vec<_>>()
        };
        match streams {
            super::read::Streams::One(stream) => self
                .streams
                .get_key_value(stream)
                .map(one)
                .unwrap_or_default(),
            super::read::Streams::Prefix(prefix) => self
                .streams
                .range::<str, _>((
                    std::ops::Bound::Included(prefix),
                    std::ops::Bound::Unbounded,
                ))
                .take_while(|(name, _)| name.starts_with(prefix))
                .flat_map(one)
                .collect(),
        }
    }

    /// The index entries of everything held, in the order to insert them: `S` entries for
    /// the runs; unless `without_ids` (they go to a run of bulk ids then), for the ids, in log
    /// order, id runs (`J`) for those greater than
    /// `last_run_id` (which moves on) and single entries (`I`) for the others, these in key
    /// order (a bulk import's random ids: each insert then touches the part of the tree the
    /// one before it did).
    pub(crate) fn entries(
        &self,
        last_run_id: &mut Uuid,
        without_ids: bool,
    ) -> Vec<(Vec<u8>, Vec<u8>)> {
        let mut out = Vec::new();
        for (stream, runs) in &self.streams {
            for part in runs.chunks(RUNS_PER_ENTRY) {
                let mut value = Vec::with_capacity(part.len() * keys::RUN_LEN);
                for run in part {
                    value.extend_from_slice(&keys::run_value(run.first_position, run.len));
                }
                out.push((keys::stream_key(stream, part[0].first_version), value));
            }
        }
        if without_ids {
            return out;
        }
        let mut ids: Vec<(u64, Uuid)> = self.ids.iter().map(|(id, p)| (*p, *id)).collect();
        ids.sort_unstable();
        let mut run: Vec<u8> = Vec::new();
        let mut run_first = Uuid::nil();
        let mut singles: Vec<(Uuid, u64)> = Vec::new();
        for (position, id) in ids {
            if id > *last_run_id {
                if run.is_empty() {
                    run_first = id;
                }
                keys::push_id_run_entry(&mut run, &id, position);
                *last_run_id = id;
                if run.len() >= ID_RUN_BYTES {
                    out.push((
                        keys::id_run_key(&run_first).to_vec(),
                        std::mem::take(&mut run),
                    ));
                }
            } else {
                singles.push((id, position));
            }
        }
        if !run.is_empty() {
            out.push((keys::id_run_key(&run_first).to_vec(), run));
        }
        singles.sort_unstable();
        out.extend(singles.into_iter().map(|(id, position)| {
            (
                keys::id_key(&id).to_vec(),
                keys::position_value(position).to_vec(),
            )
        }));
        out
    }
}

/// The index entries held in memory: those the writer adds to, and those of the round the
/// index thread is writing (older; empty when it writes none).
#[derive(Default)]
pub(crate) struct Held {
    pub current: Unindexed,
    pub sealed: Arc<Unindexed>,
}

impl From<Unindexed> for Held {
    fn from(current: Unindexed) -> Held {
        Held {
            current,
            sealed: Arc::default(),
        }
    }
}

impl Held {
    /// The last run of `stream` held.
    pub(crate) fn last_run(&self, stream: &str) -> Option<Run> {
        self.current
            .last_run(stream)
            .or_else(|| self.sealed.last_run(stream))
    }

    /// The position of the event with this id, if it is held.
    pub(crate) fn position_of(&self, id: &Uuid) -> Option<u64> {
        self.current
            .position_of(id)
            .or_else(|| self.sealed.position_of(id))
    }

    /// The ids held and their positions.
    pub(crate) fn id_positions(&self) -> impl Iterator<Item = (&Uuid, u64)> + '_ {
        self.sealed
            .id_positions()
            .chain(self.current.id_positions())
    }

    /// The runs held of the chosen streams, by stream name, each stream's in version order.
    pub(crate) fn runs(&self, streams: super::read::Streams<'_>) -> Vec<(String, Run)> {
        let mut runs = self.sealed.runs(streams);
        if runs.is_empty() {
            return self.current.runs(streams);
        }
        runs.extend(self.current.runs(streams));
        // Stable: a stream's sealed runs stay before its current ones.
        runs.sort_by(|a, b| a.0.cmp(&b.0));
        runs
    }
}

#[cfg(test)]
mod tests {
    use super::super::read::Streams;
    use super::*;

    #[test]
    fn runs_merge_when_contiguous_and_are_found_by_stream_and_prefix() {
        let mut u = Unindexed::default();
        u.push("deal-A", 0, 1, 1);
        u.push("deal-A", 1, 2, 2); // continues version 0 at position 1
        u.push("deal-AB", 0, 4, 1);
        u.push("deal-A", 3, 5, 1); // a gap in positions: a new run
        assert_eq!(u.runs, 3);
        assert_eq!(u.events, 5);
        let a: Vec<_> = u
            .runs(Streams::One("deal-A"))
            .iter()
            .flat_map(|(_, r)| r.events())
            .collect();
        assert_eq!(a, [(0, 1), (1, 2), (2, 3), (3, 5)]);
        assert_eq!(u.runs(Streams::Prefix("deal-A")).len(), 3);
        assert_eq!(u.runs(Streams::Prefix("deal-AB")).len(), 1);
        assert!(u.runs(Streams::Prefix("lead-")).is_empty());
        assert!(u.runs(Streams::One("deal-")).is_empty());
    }

    /// While a round is being written, readers see its runs and the newer ones together:
    /// each stream's in version order, streams by name.
    #[test]
    fn held_runs_put_the_sealed_round_first() {
        let mut sealed = Unindexed::default();
        sealed.push("deal-B", 0, 1, 1);
        sealed.push("deal-A", 0, 2, 1);
        let mut held = Held::from(Unindexed::default());
        held.sealed = Arc::new(sealed);
        held.current.push("deal-A", 1, 4, 1);
        held.current.push("deal-C", 0, 5, 1);
        held.current.push_id(Uuid::from_u128(7), 5);
        let runs: Vec<(String, u64)> = held
            .runs(Streams::Prefix("deal-"))
            .into_iter()
            .map(|(s, r)| (s, r.first_position))
            .collect();
        let expected = [("deal-A", 2), ("deal-A", 4), ("deal-B", 1), ("deal-C", 5)];
        assert_eq!(runs, expected.map(|(s, p)| (s.to_string(), p)));
        assert_eq!(held.last_run("deal-A").unwrap().first_position, 4);
        assert_eq!(held.last_run("deal-B").unwrap().first_position, 1);
        assert_eq!(held.position_of(&Uuid::from_u128(7)), Some(5));
    }

    #[test]
    fn single_ids_come_last_in_key_order_and_each_entry_finds_its_event() {
        let mut u = Unindexed::default();
        let n = 300u64;
        // In log order, against id order: every id is a single entry.
        for i in 0..n {
            u.push_id(Uuid::from_u128((n - i) as u128), i + 1);
        }
        u.push("deal-A", 0, 1, 2);
        let mut last_run_id = Uuid::max();
        let entries = u.entries(&mut last_run_id, false);
        assert_eq!(entries.len() as u64, n + 1);
        assert_eq!(entries[0].0, keys::stream_key("deal-A", 0));
        let singles: Vec<&Vec<u8>> = entries[1..].iter().map(|(k, _)| k).collect();
        assert!(singles.windows(2).all(|w| w[0] < w[1]), "not in key order");
        let db = sled::Config::new().temporary(true).open().unwrap();
        for (k, v) in entries {
            db.insert(k, v).unwrap();
        }
        for i in 0..n {
            let v = db
                .get(keys::id_key(&Uuid::from_u128((n - i) as u128)))
                .unwrap();
            assert_eq!(v.as_deref(), Some(&keys::position_value(i + 1)[..]));
        }
    }
}
