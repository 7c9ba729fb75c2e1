//! The commit journal: what makes an append durable before sled has flushed it.
//!
//! Making a group durable through sled costs several disk round trips in series: sled's
//! flush (`pwrite`, then a `sync_file_range` that waits for the write), then our `fdatasync`
//! of sled's file, which has grown, so its inode is written too (this ext4 runs without a
//! journal), then the cache flush. So every group's log chunks (exactly the bytes inserted
//! in sled) are also written to `journal`, a file of fixed size filled with zeros when
//! created, and a group is acknowledged once an `fdatasync` of the journal returned after its
//! record was written. Overwriting blocks that are already allocated and written changes no
//! metadata that `fdatasync` must write, so it costs the data write and one cache flush.
//!
//! The journal is two regions (its halves) used in turn; records are written one after the
//! other from the start of a region, and never cross its end. When the writer leaves a
//! region, it asks [`SledFlush`] (a thread) to flush sled and sync its files (see
//! `Shared::flush`) for everything written so far, and before it starts writing a region
//! again, it waits until that region's records are durable in sled (the flush asked for when
//! it left it, normally done long before). So a record is overwritten only once it is in
//! sled on disk. A group too big for a region is not journaled: the writer flushes sled
//! right after writing it instead.
//!
//! At open, before anything else, [`replay`] reads the records of each region (from its
//! start, up to the first that is not whole and intact: torn by a crash, or the remains of
//! an older record) and inserts in sled those that continue its log: in position order from
//! right after sled's last position, each must start where the previous one ended. Records
//! from an earlier turn of a region hold positions sled has already. A record that was
//! acknowledged was synced after every record before it, so a torn or missing record is
//! never followed by an acknowledged one.
//!
//! Record: magic, payload length (u32), CRC-32 of the rest of the header and the payload,
//! first and last position (u64), then the payload: for each chunk, its first position
//! (u64), its length (u32) and its bytes. Little-endian.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex};

use super::{backend, keys};
use crate::StoreError;

/// The journal's size: two regions of half of it.
pub(crate) const JOURNAL_BYTES: u64 = 16 << 20;
const REGION: u64 = JOURNAL_BYTES / 2;
const NAME: &str = "journal";
const MAGIC: [u8; 4] = *b"DTJ1";
const HEADER: usize = 28;

pub(crate) struct Journal {
    file: File,
    path: PathBuf,
    /// The region being written, and where in it the next record goes.
    region: usize,
    offset: u64,
    /// The last position written in each region (0: none since the journal was opened).
    last_in: [u64; 2],
    /// The record being built, and its last position.
    record: Vec<u8>,
    record_last: u64,
}

impl Journal {
    /// Opens the journal in `dir`, filled with zeros (created so, or emptied). Every record
    /// in it must be durable in sled already (after [`replay`] and a flush). Emptied, not
    /// just written over from the start: a record an earlier process left after a gap (never
    /// acknowledged, so not replayed) would otherwise still be there, and after a crash of
    /// this process could be taken for one of its own groups at the same positions.
    pub(crate) fn open(dir: &Path) -> io::Result<Journal> {
        let path = dir.join(NAME);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)?;
        let created = file.metadata()?.len() < JOURNAL_BYTES;
        let zeros = vec![0u8; 1 << 20];
        let mut at = 0;
        while at < JOURNAL_BYTES {
            let n = (JOURNAL_BYTES - at).min(zeros.len() as u64);
            file.write_all_at(&zeros[..n as usize], at)?;
            at += n;
        }
        file.sync_all()?;
        if created {
            File::open(dir)?.sync_all()?;
        }
        Ok(Journal {
            file,
            path,
            region: 0,
            offset: 0,
            last_in: [0, 0],
            record: Vec::new(),
            record_last: 0,
        })
    }

    /// A handle of the journal for one flushing thread (see `commit` on why each has its own).
    pub(crate) fn handle(&self) -> io::Result<File> {
        File::open(&self.path)
    }

    /// Starts the record of a group of positions `first..=last`.
    pub(crate) fn begin(&mut self, first: u64, last: u64) {
        self.record.clear();
        self.record.extend_from_slice(&MAGIC);
        self.record.extend_from_slice(&[0; 8]); // length and CRC, see `finish`
        self.record.extend_from_slice(&first.to_le_bytes());
        self.record.extend_from_slice(&last.to_le_bytes());
        self.record_last = last;
    }

    /// Adds a log chunk (its first position, its bytes as inserted in sled).
    pub(crate) fn add_chunk(&mut self, first: u64, chunk: &[u8]) {
        self.record.extend_from_slice(&first.to_le_bytes());
        self.record
            .extend_from_slice(&(chunk.len() as u32).to_le_bytes());
        self.record.extend_from_slice(chunk);
    }

    /// Whether the record begun fits in a region at all.
    pub(crate) fn fits(&self) -> bool {
        self.record.len() as u64 <= REGION
    }

    /// Writes the record begun (not synced; call after its chunks were inserted in sled).
    /// When it does not fit in the rest of the region, moves on to the other one (see the
    /// module's documentation).
    pub(crate) fn write(&mut self, sled: &SledFlush) -> Result<(), String> {
        let payload = self.record.len() - HEADER;
        let len = u32::try_from(payload).map_err(|_| "journal record too big".to_string())?;
        self.record[4..8].copy_from_slice(&len.to_le_bytes());
        let crc = crc32fast::hash(&self.record[12..]);
        self.record[8..12].copy_from_slice(&crc.to_le_bytes());
        if self.offset + self.record.len() as u64 > REGION {
            sled.request(self.last_in[self.region]);
            self.region = 1 - self.region;
            sled.wait(self.last_in[self.region])?;
            self.offset = 0;
        }
        let at = self.region as u64 * REGION + self.offset;
        self.file
            .write_all_at(&self.record, at)
            .map_err(|e| format!("cannot write the journal: {e}"))?;
        self.offset += self.record.len() as u64;
        self.last_in[self.region] = self.record_last;
        Ok(())
    }
}

/// The background flush of sled that lets the journal reuse a region (see the module's
/// documentation): [`SledFlush::run`] is its thread.
pub(crate) struct SledFlush {
    state: Mutex<FlushState>,
    changed: Condvar,
}

struct FlushState {
    /// The last position asked to be durable in sled, and the last one known to be.
    asked: u64,
    done: u64,
    failed: Option<String>,
    stopped: bool,
}

impl SledFlush {
    /// Everything up to `durable` is durable in sled already.
    pub(crate) fn new(durable: u64) -> SledFlush {
        SledFlush {
            state: Mutex::new(FlushState {
                asked: durable,
                done: durable,
                failed: None,
                stopped: false,
            }),
            changed: Condvar::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, FlushState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Asks for everything inserted in sled so far, up to `position` at least, to be made
    /// durable.
    pub(crate) fn request(&self, position: u64) {
        let mut st = self.lock();
        if position > st.asked {
            st.asked = position;
            drop(st);
            self.changed.notify_all();
        }
    }

    /// Waits until everything up to `position` is durable in sled.
    pub(crate) fn wait(&self, position: u64) -> Result<(), String> {
        let mut st = self.lock();
        loop {
            if let Some(e) = &st.failed {
                return Err(e.clone());
            }
            if st.done >= position {
                return Ok(());
            }
            if st.stopped {
                return Err("the sled flush thread has stopped".into());
            }
            st = self.changed.wait(st).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Ends [`SledFlush::run`] (once it is done with what was asked).
    pub(crate) fn stop(&self) {
        self.lock().stopped = true;
        self.changed.notify_all();
    }

    /// The thread: calls `flush` (which makes everything inserted in sled before the call
    /// durable) whenever more is asked, until stopped. A failure is kept and stops it.
    pub(crate) fn run(&self, flush: impl Fn() -> Result<(), String>) {
        let mut st = self.lock();
        loop {
            if st.failed.is_some() {
                return;
            }
            if st.asked > st.done {
                let target = st.asked;
                drop(st);
                let result = flush();
                st = self.lock();
                match result {
                    Ok(()) => st.done = st.done.max(target),
                    Err(e) => {
                        tracing::error!(error = %e, "flushing sled in the background failed");
                        st.failed = Some(e);
                        st.stopped = true;
                    }
                }
                self.changed.notify_all();
                continue;
            }
            if st.stopped {
                return;
            }
            st = self.changed.wait(st).unwrap_or_else(|e| e.into_inner());
        }
    }
}

/// One record read back: its positions and chunks.
struct Record {
    first: u64,
    last: u64,
    chunks: Vec<(u64, Vec<u8>)>,
}

/// The record at `at` in `data`, if a whole, intact one is there.
fn record_at(data: &[u8], at: usize) -> Option<(Record, usize)> {
    let header = data.get(at..at.checked_add(HEADER)?)?;
    if header[0..4] != MAGIC {
        return None;
    }
    let len = u32::from_le_bytes(header[4..8].try_into().ok()?) as usize;
    let crc = u32::from_le_bytes(header[8..12].try_into().ok()?);
    let end = at.checked_add(HEADER)?.checked_add(len)?;
    let body = data.get(at + 12..end)?;
    if crc32fast::hash(body) != crc {
        return None;
    }
    let first = u64::from_le_bytes(header[12..20].try_into().ok()?);
    let last = u64::from_le_bytes(header[20..28].try_into().ok()?);
    let mut payload = &data[at + HEADER..end];
    let mut chunks = Vec::new();
    while !payload.is_empty() {
        let key = u64::from_le_bytes(payload.get(0..8)?.try_into().ok()?);
        let n = u32::from_le_bytes(payload.get(8..12)?.try_into().ok()?) as usize;
        chunks.push((key, payload.get(12..12 + n)?.to_vec()));
        payload = &payload[12 + n..];
    }
    Some((
        Record {
            first,
            last,
            chunks,
        },
        end,
    ))
}

/// The records of the journal `data` that continue a log ending at `tail`, in order.
fn continuation(data: &[u8], tail: u64) -> Result<Vec<Record>, StoreError> {
    let mut records = Vec::new();
    for region in data.chunks(REGION as usize) {
        let mut at = 0;
        while let Some((record, end)) = record_at(region, at) {
            at = end;
            if record.last > tail {
                records.push(record);
            }
        }
    }
    records.sort_by_key(|r| r.first);
    let mut next = tail + 1;
    let mut run = Vec::new();
    for record in records {
        if record.first != next {
            if record.first < next {
                return Err(StoreError::Corrupt {
                    position: next,
                    reason: format!(
                        "the journal holds positions {}..={} but the log ends at {}",
                        record.first,
                        record.last,
                        next - 1
                    ),
                });
            }
            break; // a gap: what follows was never acknowledged
        }
        next = record
            .last
            .checked_add(1)
            .ok_or_else(|| StoreError::Corrupt {
                position: record.last,
                reason: "the journal holds a record past the last possible position".into(),
            })?;
        run.push(record);
    }
    Ok(run)
}

/// Inserts in `tree` the journal's records that continue its log (see the module's
/// documentation), after which the caller must flush sled. Returns how many events it added.
pub(crate) fn replay(dir: &Path, tree: &sled::Tree) -> Result<u64, StoreError> {
    let data = match std::fs::read(dir.join(NAME)) {
        Ok(d) => d,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(backend(format!("cannot read the journal: {e}"))),
    };
    let tail = super::read::tail(tree)?.position;
    let mut added = 0;
    for record in continuation(&data, tail)? {
        for (first, chunk) in record.chunks {
            tree.insert(keys::log_key(first), chunk).map_err(backend)?;
        }
        added += record.last - record.first + 1;
    }
    if added > 0 {
        tracing::info!(events = added, "replayed the commit journal");
    }
    Ok(added)
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{note, raw_sled};
    use super::*;
    use crate::{EnvelopeOnly, EventStore, ExpectedVersion, Filter, ProposedEvent};
    use std::sync::Arc;

    /// As if sled had lost the last two groups in a crash: the journal brings them back,
    /// byte for byte (the log verifies).
    #[tokio::test]
    async fn groups_sled_lost_are_replayed_from_the_journal() {
        let dir = tempfile::tempdir().unwrap();
        let before = {
            let store = crate::SledStore::open(dir.path(), Arc::new(EnvelopeOnly)).unwrap();
            for n in 0..5 {
                store
                    .append("deal-J", ExpectedVersion::Any, vec![note(n)])
                    .await
                    .unwrap();
            }
            store.read_all(1, 100, &Filter::default()).await.unwrap()
        };
        {
            let db = raw_sled(dir.path());
            let tree = db.open_tree(super::super::TREE).unwrap();
            tree.remove(keys::log_key(4)).unwrap();
            tree.remove(keys::log_key(5)).unwrap();
            db.flush().unwrap();
        }
        let store = crate::SledStore::open(dir.path(), Arc::new(EnvelopeOnly)).unwrap();
        assert_eq!(store.verify(&mut |_| {}).unwrap().events, 5);
        let after = store.read_all(1, 100, &Filter::default()).await.unwrap();
        assert_eq!(after, before);
        // Appending goes on from there.
        let out = store
            .append("deal-J", ExpectedVersion::Exact(4), vec![note(5)])
            .await
            .unwrap();
        assert_eq!(out.first_position, 6);
    }

    #[test]
    fn records_read_back_and_damage_ends_them() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = Journal::open(dir.path()).unwrap();
        assert_eq!(
            std::fs::metadata(dir.path().join(NAME)).unwrap().len(),
            JOURNAL_BYTES
        );
        j.begin(1, 3);
        j.add_chunk(1, b"one two");
        j.add_chunk(3, b"three");
        j.write(&SledFlush::new(0)).unwrap();
        j.begin(4, 4);
        j.add_chunk(4, b"four");
        j.write(&SledFlush::new(0)).unwrap();
        let data = std::fs::read(dir.path().join(NAME)).unwrap();
        let (r, end) = record_at(&data, 0).unwrap();
        assert_eq!((r.first, r.last), (1, 3));
        assert_eq!(
            r.chunks,
            vec![(1, b"one two".to_vec()), (3, b"three".to_vec())]
        );
        let (r, end2) = record_at(&data, end).unwrap();
        assert_eq!((r.first, r.last, r.chunks.len()), (4, 4, 1));
        assert!(record_at(&data, end2).is_none());
        let mut torn = data.clone();
        torn[end + HEADER + 3] ^= 1;
        assert!(record_at(&torn, end).is_none());
        assert!(record_at(&data[..end + 10], end).is_none());
    }

    /// A process crashed with a record missing between two others: the one after the gap
    /// was never acknowledged and is not replayed. The next process opens the journal and
    /// writes its own groups at those positions, then crashes too: only its own records come
    /// back, never the earlier process's leftover (which its first record, of the same size,
    /// would have left intact right after it had the journal only been written over).
    #[test]
    fn a_record_left_by_an_earlier_process_is_never_replayed() {
        let dir = tempfile::tempdir().unwrap();
        let flush = SledFlush::new(0);
        let mut a = Journal::open(dir.path()).unwrap();
        for (first, bytes) in [(3, b"a-three"), (7, b"a-seven")] {
            a.begin(first, first + 1);
            a.add_chunk(first, bytes);
            a.write(&flush).unwrap();
        }
        let read = || std::fs::read(dir.path().join(NAME)).unwrap();
        let replayed = |tail| -> Vec<(u64, Vec<u8>)> {
            let records = continuation(&read(), tail).unwrap();
            records.into_iter().flat_map(|r| r.chunks).collect()
        };
        // Sled ends at 2; 5..=6 is missing: 3..=4 comes back, 7..=8 does not.
        assert_eq!(replayed(2), vec![(3, b"a-three".to_vec())]);
        let mut b = Journal::open(dir.path()).unwrap();
        b.begin(5, 6);
        b.add_chunk(5, b"b-five!");
        b.write(&flush).unwrap();
        // Sled ends at 4 (the next process's group was lost).
        assert_eq!(replayed(4), vec![(5, b"b-five!".to_vec())]);
    }

    /// Enough appends to go on to the second region; then sled loses the last groups, some
    /// of them in each region: all come back.
    #[tokio::test]
    async fn groups_lost_across_both_regions_are_replayed() {
        let dir = tempfile::tempdir().unwrap();
        let filler = "x".repeat(1000);
        let (groups, per_group) = (40u64, 250u64);
        let before = {
            let store = crate::SledStore::open(dir.path(), Arc::new(EnvelopeOnly)).unwrap();
            for g in 0..groups {
                let events = (0..per_group)
                    .map(|k| ProposedEvent {
                        data: serde_json::json!({ "n": g * per_group + k, "filler": filler }),
                        ..note(0)
                    })
                    .collect();
                store
                    .append("deal-R", ExpectedVersion::Any, events)
                    .await
                    .unwrap();
            }
            let last = store.last_position().await.unwrap();
            store.read_all(last, 1, &Filter::default()).await.unwrap()
        };
        let data = std::fs::read(dir.path().join(NAME)).unwrap();
        let second = record_at(&data[REGION as usize..], 0).expect("region 1 was written");
        let lost_from = second.0.first - 5 * per_group; // 5 groups before the switch
        {
            let db = raw_sled(dir.path());
            let tree = db.open_tree(super::super::TREE).unwrap();
            let lost: Vec<_> = tree
                .range(keys::log_key(lost_from)..=keys::log_key(u64::MAX))
                .keys()
                .map(|k| k.unwrap())
                .collect();
            assert!(lost.len() >= 10);
            for k in lost {
                tree.remove(k).unwrap();
            }
            db.flush().unwrap();
        }
        let store = crate::SledStore::open(dir.path(), Arc::new(EnvelopeOnly)).unwrap();
        assert_eq!(
            store.verify(&mut |_| {}).unwrap().events,
            groups * per_group
        );
        let last = store.last_position().await.unwrap();
        assert_eq!(
            store.read_all(last, 1, &Filter::default()).await.unwrap(),
            before
        );
    }

    #[test]
    fn regions_are_used_in_turn_and_reused_once_durable_in_sled() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = Journal::open(dir.path()).unwrap();
        let sled = Arc::new(SledFlush::new(0));
        let flushes = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let thread = {
            let (sled, flushes) = (sled.clone(), flushes.clone());
            std::thread::spawn(move || {
                sled.run(|| {
                    flushes.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    Ok(())
                })
            })
        };
        // Two of these do not fit in one region.
        let big = vec![7u8; (REGION / 2) as usize];
        for k in 1..=3u64 {
            j.begin(k, k);
            j.add_chunk(k, &big);
            j.write(&sled).unwrap();
        }
        sled.stop();
        thread.join().unwrap();
        // Region 0 was left after 1, region 1 after 2; the flush asked when leaving region 0
        // was waited for before writing 3 there.
        assert!(flushes.load(std::sync::atomic::Ordering::SeqCst) >= 1);
        let data = std::fs::read(dir.path().join(NAME)).unwrap();
        let (r, _) = record_at(&data, 0).unwrap();
        assert_eq!(r.first, 3);
        let (r, _) = record_at(&data[REGION as usize..], 0).unwrap();
        assert_eq!(r.first, 2);
        // Position 1 is in sled (it was flushed before region 0 was reused): the replay
        // goes on with 2 and 3, in position order whatever the region.
        let firsts = |tail| -> Vec<u64> {
            let run = continuation(&data, tail).unwrap();
            run.iter().map(|r| r.first).collect()
        };
        assert_eq!(firsts(1), [2, 3]);
        assert_eq!(firsts(2), [3]);
        assert!(firsts(3).is_empty());
        // Had sled lost position 1, nothing after the gap would be replayed.
        assert!(firsts(0).is_empty());
    }

    #[test]
    fn a_failed_sled_flush_fails_the_switch_to_the_other_region() {
        let sled = Arc::new(SledFlush::new(0));
        let thread = {
            let sled = sled.clone();
            std::thread::spawn(move || sled.run(|| Err("disk full".into())))
        };
        sled.request(5);
        assert_eq!(sled.wait(5), Err("disk full".to_string()));
        thread.join().unwrap();
    }
}
