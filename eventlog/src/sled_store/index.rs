//! The deferred part of the indexes (see `keys`, `W`).
//!
//! Writing one `S` entry per appended batch made the stream index the bulk of a group
//! commit's sled work: with many writers each appending one event to its own stream, a group
//! of N events cost N + 2 inserts. And a group written with `apply_batch` waits for any sled
//! flush in progress (sled's flush holds, for its whole duration, a lock that `apply_batch`
//! takes exclusively), so the writer stalled behind the flusher. So the writer keeps the
//! stream runs and event ids of events after the index watermark in memory, here, and writes
//! them (multi-run `S` entries, one per stream per [`RUNS_PER_ENTRY`] runs; id runs and id
//! entries as before) together with the new watermark in the batch of the group during which
//! [`Unindexed::due`] becomes true, and when the store closes. Every other group that fits in
//! one chunk is a single sled insert. Readers combine the tree with this (see `read::runs`,
//! `read::id_position`). After a crash the entries after the watermark are rebuilt from the
//! log at open.

use std::collections::{BTreeMap, HashMap};

use uuid::Uuid;

use super::keys::{self, Run};

/// The runs held in memory are written once there are this many...
pub(crate) const MAX_RUNS: usize = 4096;
/// ...or once they cover this many events (which bounds the rebuild work at open).
const MAX_EVENTS: u64 = 65_536;
/// Held runs or events this many times the due size are overdue: the writer waits for a
/// sled flush in progress to write them (see `Unindexed::overdue`).
const OVERDUE: usize = 4;
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
/// Single id entries (`I`) beyond this many are written in batches of their own, this many
/// each, before the batch that holds the rest and the watermark (see
/// [`Unindexed::write_into`]).
const ID_BATCH: usize = 4096;

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

    /// Whether the runs held are so far past due (a sled flush kept them from being written
    /// several times over) that the next group must wait for the flush and write them.
    pub(crate) fn overdue(&self, bulk: bool) -> bool {
        let max_runs = if bulk { MAX_BULK_RUNS } else { MAX_RUNS };
        self.runs >= OVERDUE * max_runs || self.events >= OVERDUE as u64 * MAX_EVENTS
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

    /// Adds the index entries of everything held to `batch`: `S` entries for the runs; for the
    /// ids, in log order, id runs (`J`) for those greater than `last_run_id` (which moves on)
    /// and single entries (`I`) for the others. When there are more than [`ID_BATCH`] single
    /// entries (a bulk import's random ids), they are returned instead, in batches of that
    /// many, to be applied before `batch`: sled applies a batch under one epoch guard, so
    /// every tree node an insert replaces stays allocated until the whole batch is done, and
    /// a window of 32,768 random ids held ~190 MB that way. An `I` entry is right on its own
    /// (it names the position of an event already in the log), so one written before a crash
    /// that kept the watermark from moving is harmless: the entries after the watermark are
    /// rebuilt from the log at open, with the same values (and `verify` counts an id once).
    pub(crate) fn write_into(
        &self,
        batch: &mut sled::Batch,
        last_run_id: &mut Uuid,
    ) -> Vec<sled::Batch> {
        for (stream, runs) in &self.streams {
            for part in runs.chunks(RUNS_PER_ENTRY) {
                let mut value = Vec::with_capacity(part.len() * keys::RUN_LEN);
                for run in part {
                    value.extend_from_slice(&keys::run_value(run.first_position, run.len));
                }
                batch.insert(keys::stream_key(stream, part[0].first_version), value);
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
                    batch.insert(&keys::id_run_key(&run_first), std::mem::take(&mut run));
                }
            } else {
                singles.push((id, position));
            }
        }
        if !run.is_empty() {
            batch.insert(&keys::id_run_key(&run_first), run);
        }
        let single = |b: &mut sled::Batch, (id, position): &(Uuid, u64)| {
            b.insert(&keys::id_key(id), &keys::position_value(*position));
        };
        if singles.len() <= ID_BATCH {
            singles.iter().for_each(|s| single(batch, s));
            return Vec::new();
        }
        // In key order, so that each batch touches a narrow part of the tree.
        singles.sort_unstable();
        singles
            .chunks(ID_BATCH)
            .map(|part| {
                let mut b = sled::Batch::default();
                part.iter().for_each(|s| single(&mut b, s));
                b
            })
            .collect()
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
    fn many_single_ids_come_in_batches_of_their_own() {
        let mut u = Unindexed::default();
        let n = 2 * ID_BATCH + 1;
        // In log order, against id order: every id is a single entry.
        for i in 0..n {
            u.push_id(Uuid::from_u128((n - i) as u128), i as u64 + 1);
        }
        let mut last_run_id = Uuid::max();
        let mut batch = sled::Batch::default();
        let ids = u.write_into(&mut batch, &mut last_run_id);
        assert_eq!(ids.len(), 3);
        let db = sled::Config::new().temporary(true).open().unwrap();
        db.apply_batch(batch).unwrap();
        assert_eq!(db.len(), 0, "no id entry in the main batch");
        for b in ids {
            db.apply_batch(b).unwrap();
        }
        assert_eq!(db.len(), n);
        for i in 0..n {
            let v = db
                .get(keys::id_key(&Uuid::from_u128((n - i) as u128)))
                .unwrap();
            assert_eq!(v.as_deref(), Some(&keys::position_value(i as u64 + 1)[..]));
        }
    }
}
