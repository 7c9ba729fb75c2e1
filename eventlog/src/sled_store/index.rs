//! The deferred part of the indexes (see `keys`, `W`).
//!
//! Writing one `S` entry per appended batch made the stream index the bulk of a group
//! commit's sled work: with many writers each appending one event to its own stream, a group
//! of N events cost N + 2 inserts. So the writer keeps the stream runs and event ids of events
//! after the index watermark in memory, here, and writes them in *rounds*: once
//! [`Unindexed::due`] is true it writes their entries (multi-run `S` entries, one per stream
//! per [`RUNS_PER_ENTRY`] runs; id runs and id entries as before) one by one, and clears
//! them. Readers combine the tree with this (see `read::runs`, `read::id_position`).
//!
//! A round of live appends is written with plain inserts, not `apply_batch`: sled's
//! `apply_batch` takes sled's concurrency lock exclusively, so every sled reader and writer of
//! the process waits for it, and it starts by rolling sled's I/O buffer (a write of the
//! buffer). Measured under the HTTP append load, a round written as one batch held the writer
//! 18–52 ms three or four times a second, which made the appends' p99. An insert shares the
//! lock (with sled's flush too). A bulk import's round still goes in batches (see the
//! writer's `insert_entries`).
//!
//! Since a round is not atomic, the watermark moves only once the round is durable: the
//! writer asks for a sled flush after a round, and inserts the round's watermark in a later
//! group, once that flush is done; the next round starts only after that. So after a crash
//! the tree may hold (some of) the entries of the one round after the watermark, never more.
//! At open, the entries after the watermark are rebuilt from the log, and the rebuild yields
//! that round's entries under the same keys (it starts at the same position, and runs are
//! merged and cut into entries the same way), so writing them again overwrites those entries;
//! until then readers skip what the tree already has (`read::runs`), and an id already in
//! the tree is not held again (`read::rebuild_unindexed`).

use std::collections::{BTreeMap, HashMap};

use uuid::Uuid;

use super::keys::{self, Run};

/// The runs held in memory are written once there are this many...
pub(crate) const MAX_RUNS: usize = 4096;
/// ...or once they cover this many events (which bounds the rebuild work at open).
const MAX_EVENTS: u64 = 65_536;
/// For a group of [`crate::EventStore::append_checked`] (a bulk import), only this many: a
/// stream's runs in a window this wide share one `S` entry, instead of an entry nearly per
/// event when an import interleaves many streams.
const MAX_BULK_RUNS: usize = 65_536;
/// ...and, for a bulk group, once they cover this many events: sled applies a batch under
/// one epoch guard, so every tree node an insert replaces stays allocated until the whole
/// batch is done (an import's memory jumped ~380 MB at its first batch of 65,536 ids, each
/// copying its leaf). Smaller batches cost more `S` entries: at 16,384, ~5% more CPU per
/// import than here for 50 MB less peak; at 32,768 the CPU was that of 65,536.
const MAX_BULK_EVENTS: u64 = 32_768;
/// At most this many runs go into one `S` entry.
const RUNS_PER_ENTRY: usize = 256;
/// An id run (`J` entry) is closed once it holds this many bytes.
const ID_RUN_BYTES: usize = 64 * 1024;

/// Runs (by stream, in version order) and ids of events after the index watermark.
#[derive(Default)]
pub(crate) struct Unindexed {
    streams: BTreeMap<String, Vec<Run>>,
    /// Event id → position.
    ids: HashMap<Uuid, u64>,
    runs: usize,
    events: u64,
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

    /// Whether the runs held, plus `runs` more covering `events` events, are due to be written;
    /// `bulk`: by a group of checked (bulk) appends.
    pub(crate) fn due(&self, runs: usize, events: u64, bulk: bool) -> bool {
        let (max_runs, max_events) = if bulk {
            (MAX_BULK_RUNS, MAX_BULK_EVENTS)
        } else {
            (MAX_RUNS, MAX_EVENTS)
        };
        self.runs + runs >= max_runs || self.events + events >= max_events
    }

    /// The last run of `stream` held here.
    pub(crate) fn last_run(&self, stream: &str) -> Option<Run> {
        self.streams
            .get(stream)
            .and_then(|runs| runs.last().copied())
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

    pub(crate) fn clear(&mut self) {
        *self = Unindexed::default();
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
    /// the runs; for the ids, in log order, id runs (`J`) for those greater than
    /// `last_run_id` (which moves on) and single entries (`I`) for the others, these in key
    /// order (a bulk import's random ids: each insert then touches the part of the tree the
    /// one before it did).
    pub(crate) fn entries(&self, last_run_id: &mut Uuid) -> Vec<(Vec<u8>, Vec<u8>)> {
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
        let entries = u.entries(&mut last_run_id);
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
