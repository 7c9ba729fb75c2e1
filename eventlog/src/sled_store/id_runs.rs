//! The ids of bulk appends: sorted runs in files of their own, held in memory.
//!
//! An import's ids are random (UUIDv5 of the source keys), and one sled key per id (`I`) was
//! the largest single cost of a bulk import: sled copies a leaf for every insert and keeps
//! every leaf it touched in memory, and random ids touch them all (a 1 M-event import: a
//! third of its CPU and ~200 MiB of its peak). So the ids of an index round that holds
//! events of checked (bulk) appends go, sorted, into a *run*: a file `ids/<seq>` of
//! `(id (16 bytes), position (u64 big-endian))` entries in ascending id order, recorded in
//! sled under `K` + seq (u64 big-endian) → entries (u64 LE) + CRC-32 of the file (u32 LE).
//! Every run is in memory while the store is open (24 bytes an id), and a lookup searches
//! each, newest first. Runs are merged as they accumulate, like a binary counter: a new run
//! absorbs the newest runs no larger than it (then than the merged run), so there are
//! O(log n) of them and an id is rewritten O(log n) times.
//!
//! Crash safety. A run's file is written and synced (with the directory) before its record
//! goes into sled; the records of the runs a merge replaces are removed in the same atomic
//! batch that adds the merged one; their files are deleted only once that is durable (the
//! round's watermark flush). So sled never records a run whose file may be incomplete, and
//! a crash leaves at worst files that no record names, which the next open deletes. The
//! watermark moves over a round once its run is recorded and durable (see `index`); after a
//! crash before that, the round's events are rebuilt from the log, except the ids a run
//! already holds (`read::rebuild_unindexed`), so an id is in one place only.

use std::collections::HashSet;
use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use uuid::Uuid;

use super::fault::at;
use super::keys;
use crate::StoreError;

/// The directory of the run files, in the store's directory.
pub(crate) const DIR: &str = "ids";
const ENTRY: usize = 24;

/// One sorted run.
pub(crate) struct IdRun {
    seq: u64,
    /// Ascending ids, each with its position.
    entries: Vec<(Uuid, u64)>,
}

/// The runs recorded, oldest (and largest) first.
#[derive(Default, Clone)]
pub(crate) struct IdRuns {
    runs: Vec<Arc<IdRun>>,
}

/// What adding a round's run takes: the runs after it, the sled batch that records it, and
/// the files to delete once that batch is durable.
pub(crate) struct Added {
    pub runs: IdRuns,
    pub batch: sled::Batch,
    pub stale: Vec<PathBuf>,
}

fn file_name(seq: u64) -> String {
    format!("{seq:016x}")
}

fn record_key(seq: u64) -> [u8; 9] {
    let mut k = [0u8; 9];
    k[0] = keys::BULK_ID_RUN;
    k[1..].copy_from_slice(&seq.to_be_bytes());
    k
}

fn encode(entries: &[(Uuid, u64)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(entries.len() * ENTRY);
    for (id, position) in entries {
        out.extend_from_slice(id.as_bytes());
        out.extend_from_slice(&position.to_be_bytes());
    }
    out
}

/// Merges two ascending runs (an id in both is kept once: the same event).
fn merge(older: &[(Uuid, u64)], newer: &[(Uuid, u64)]) -> Vec<(Uuid, u64)> {
    let mut out = Vec::with_capacity(older.len() + newer.len());
    let (mut i, mut j) = (0, 0);
    while i < older.len() && j < newer.len() {
        match older[i].0.cmp(&newer[j].0) {
            std::cmp::Ordering::Less => {
                out.push(older[i]);
                i += 1;
            }
            std::cmp::Ordering::Greater => {
                out.push(newer[j]);
                j += 1;
            }
            std::cmp::Ordering::Equal => {
                out.push(newer[j]);
                i += 1;
                j += 1;
            }
        }
    }
    out.extend_from_slice(&older[i..]);
    out.extend_from_slice(&newer[j..]);
    out
}

impl IdRuns {
    /// The position of the event with this id, if a run holds it.
    pub(crate) fn position_of(&self, id: &Uuid) -> Option<u64> {
        self.runs.iter().rev().find_map(|run| {
            run.entries
                .binary_search_by(|(e, _)| e.cmp(id))
                .ok()
                .map(|i| run.entries[i].1)
        })
    }

    /// Every id and its position (an id merged twice is in one run only).
    pub(crate) fn entries(&self) -> impl Iterator<Item = (Uuid, u64)> + '_ {
        self.runs.iter().flat_map(|run| run.entries.iter().copied())
    }

    /// How many runs there are.
    #[cfg(test)]
    pub(crate) fn count(&self) -> usize {
        self.runs.len()
    }

    /// The runs `tree` records, read from their files in `dir`; files no record names (left
    /// by a crash) are deleted.
    pub(crate) fn load(dir: &Path, tree: &sled::Tree) -> Result<IdRuns, StoreError> {
        let files = dir.join(DIR);
        let mut runs = Vec::new();
        let mut named = HashSet::new();
        for item in tree.scan_prefix([keys::BULK_ID_RUN]) {
            let (k, v) = item.map_err(at(0))?;
            let damaged = |reason: String| StoreError::Corrupt {
                position: 0,
                reason: format!("the bulk id index is damaged: {reason}"),
            };
            let seq = k
                .get(1..9)
                .and_then(|b| b.try_into().ok())
                .map(u64::from_be_bytes)
                .ok_or_else(|| damaged(format!("malformed run key {k:?}")))?;
            let (count, crc) = match v.as_ref() {
                [c @ .., r0, r1, r2, r3] if c.len() == 8 => (
                    u64::from_le_bytes(c.try_into().unwrap_or_default()),
                    u32::from_le_bytes([*r0, *r1, *r2, *r3]),
                ),
                _ => return Err(damaged(format!("malformed record of run {seq}"))),
            };
            let name = file_name(seq);
            let path = files.join(&name);
            let bytes = std::fs::read(&path)
                .map_err(|e| damaged(format!("cannot read {}: {e}", path.display())))?;
            if bytes.len() as u64 != count * ENTRY as u64 || crc32fast::hash(&bytes) != crc {
                return Err(damaged(format!(
                    "{} does not hold the {count} entries its record names",
                    path.display()
                )));
            }
            let entries: Vec<(Uuid, u64)> = bytes
                .chunks_exact(ENTRY)
                .map(|e| {
                    let mut id = [0u8; 16];
                    id.copy_from_slice(&e[..16]);
                    let mut p = [0u8; 8];
                    p.copy_from_slice(&e[16..]);
                    (Uuid::from_bytes(id), u64::from_be_bytes(p))
                })
                .collect();
            if entries.windows(2).any(|w| w[0].0 >= w[1].0) {
                return Err(damaged(format!("{} is not in id order", path.display())));
            }
            named.insert(name);
            runs.push(Arc::new(IdRun { seq, entries }));
        }
        // Files a crash left before their record was written, or after a merge replaced them.
        if let Ok(listing) = std::fs::read_dir(&files) {
            for entry in listing.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                if !named.contains(&name) {
                    let _ = std::fs::remove_file(entry.path());
                }
            }
        }
        Ok(IdRuns { runs })
    }

    /// Adds `ids` (a round's, in any order) as a run in `dir` (see the module's
    /// documentation): merged with the newest runs no larger than it, written and synced. The caller applies the batch, then, once it is durable, deletes `stale`.
    pub(crate) fn add(&self, dir: &Path, mut ids: Vec<(Uuid, u64)>) -> io::Result<Added> {
        ids.sort_unstable();
        ids.dedup_by(|a, b| a.0 == b.0);
        let mut runs = self.runs.clone();
        let mut merged = ids;
        let mut batch = sled::Batch::default();
        let mut stale = Vec::new();
        let files = dir.join(DIR);
        while let Some(newest) = runs.last() {
            if newest.entries.len() > merged.len() {
                break;
            }
            merged = merge(&newest.entries, &merged);
            batch.remove(&record_key(newest.seq));
            stale.push(files.join(file_name(newest.seq)));
            runs.pop();
        }
        let seq = self.runs.iter().map(|r| r.seq + 1).max().unwrap_or(0);
        let bytes = encode(&merged);
        let created = !files.is_dir();
        if created {
            std::fs::create_dir_all(&files)?;
        }
        let path = files.join(file_name(seq));
        let mut file = crate::open_private_file(&path)?;
        file.set_len(0)?;
        file.write_all(&bytes)?;
        file.sync_data()?;
        File::open(&files)?.sync_all()?;
        if created {
            File::open(dir)?.sync_all()?;
        }
        let mut value = Vec::with_capacity(12);
        value.extend_from_slice(&(merged.len() as u64).to_le_bytes());
        value.extend_from_slice(&crc32fast::hash(&bytes).to_le_bytes());
        batch.insert(&record_key(seq), value);
        runs.push(Arc::new(IdRun {
            seq,
            entries: merged,
        }));
        Ok(Added {
            runs: IdRuns { runs },
            batch,
            stale,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u64) -> Uuid {
        // Spread over the id space, not in the order numbered.
        Uuid::from_u64_pair(n.wrapping_mul(0x9e37_79b9_7f4a_7c15), n)
    }

    /// Runs merge like a binary counter, every id stays found at its position, and what is
    /// loaded back (stale files deleted) is what was added.
    #[test]
    fn runs_merge_stay_few_and_load_back() {
        let dir = tempfile::tempdir().unwrap();
        let tree = sled::Config::new()
            .temporary(true)
            .open()
            .unwrap()
            .open_tree("t")
            .unwrap();
        let mut runs = IdRuns::default();
        let mut next = 1u64;
        for round in 0..40u64 {
            let n = 100 + (round % 3) * 50;
            let ids: Vec<(Uuid, u64)> = (next..next + n).rev().map(|p| (id(p), p)).collect();
            next += n;
            let added = runs.add(dir.path(), ids).unwrap();
            tree.apply_batch(added.batch).unwrap();
            for f in added.stale {
                std::fs::remove_file(f).unwrap();
            }
            runs = added.runs;
            assert!(
                runs.count() <= 8,
                "{} runs after round {round}",
                runs.count()
            );
        }
        for p in 1..next {
            assert_eq!(runs.position_of(&id(p)), Some(p));
        }
        assert_eq!(runs.position_of(&id(next)), None);
        assert_eq!(runs.entries().count() as u64, next - 1);
        // A file no record names (a crash before its record) is deleted at load.
        std::fs::write(dir.path().join(DIR).join(file_name(999)), b"partial").unwrap();
        let loaded = IdRuns::load(dir.path(), &tree).unwrap();
        assert_eq!(loaded.count(), runs.count());
        assert_eq!(
            loaded.entries().collect::<Vec<_>>(),
            runs.entries().collect::<Vec<_>>()
        );
        assert!(!dir.path().join(DIR).join(file_name(999)).exists());
        // A damaged run file refuses to load, naming the file.
        let victim = std::fs::read_dir(dir.path().join(DIR))
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path();
        let mut bytes = std::fs::read(&victim).unwrap();
        bytes[5] ^= 1;
        std::fs::write(&victim, bytes).unwrap();
        match IdRuns::load(dir.path(), &tree) {
            Err(StoreError::Corrupt { reason, .. }) => {
                assert!(reason.contains("bulk id index"), "{reason}")
            }
            other => panic!("{:?}", other.map(|r| r.count())),
        }
    }
}
