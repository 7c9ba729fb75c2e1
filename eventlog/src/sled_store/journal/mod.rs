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
//! `Sled::flush`) for everything written so far, and before it starts writing a region
//! again, it waits until that region's records are durable in sled (the flush asked for when
//! it left it, normally done long before). So a record is overwritten only once it is in
//! sled on disk. A group too big for a region is not journaled: the writer flushes sled
//! right after writing it instead. The journal is emptied (zeros, a new salt) whenever the
//! store opens its files, once everything in it is durable in sled.
//!
//! # Layout
//!
//! A region starts with a *marker*: a header without payload whose first position is the
//! first one of the region's turn (its last is the one before). Records follow, each at a
//! *slot*: the next offset where a header fits inside one 512-byte sector. A record is a
//! header and a payload: for each chunk, its first position (u64), its length (u32) and its
//! bytes. Header, 40 bytes: magic `DTJ2`, CRC-32 of the rest of the header, the journal's
//! salt (u64, random, new each time the journal is emptied), payload length (u32), payload
//! CRC-32, first and last position (u64). Little-endian.
//!
//! # Telling damage from a crash
//!
//! A record is written in two steps: its payload, followed by zeros over the next slot, and
//! only then its header (one write inside one sector: after a killed process it is there
//! whole or not at all). So in what a crash leaves:
//! - the slot after the last record holds zeros: a record whose header was not written yet
//!   leaves its slot as it was, zero. Zeros are the end of a region's records; the group
//!   there was not acknowledged (its sync had not returned) and may be lost.
//! - an intact header (its CRC holds) was written after its whole payload: a payload that
//!   fails its CRC is damage, never a torn write.
//! - a slot that holds neither zeros (at most 4 bits set: a header has 11 in its magic
//!   alone) nor an intact header is a damaged header.
//!
//! So `replay` reads a region from slot to slot up to zeros. At a damaged header it searches
//! the bytes after it for the next intact header with the region's salt and later positions:
//! the records after the damage are found, and the damaged record's positions follow from
//! its neighbours (the previous record, or the marker, gives its first). The salt keeps
//! event data that happens to look like a header (clients choose those bytes) and records of
//! an earlier turn of the region out of that search. Then, against sled's last position:
//! - a record, intact or damaged, whose positions sled already has is harmless and skipped
//!   (sled holds a group whole or not at all, so a damaged record starting at or before
//!   sled's last position ends there too);
//! - every intact record after it is inserted in sled, in position order, each starting
//!   right after the previous one;
//! - if positions after sled's last one are unreadable — a damaged record holds them, they
//!   are missing before a later record, or they come before a marker (sled held them
//!   durably when that turn began, and has lost them since) — the store refuses to open with
//!   `StoreError::Corrupt` naming them: never a log that opens without acknowledged events.
//!   (Moving `journal` aside opens the store with what sled holds, without those events.)
//!
//! Limits: after a power loss (not just a killed process), writes after the last sync may
//! have reached the disk in any order; damage found in those records also refuses to open,
//! although they were never acknowledged. Damage that turns the last record's header into
//! zeros looks like the end. A journal of the first format (`DTJ1`: one CRC over header and
//! payload, no marker), left by an earlier version, is replayed as that version did: each
//! region up to its first record that is not whole.

mod replay;

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex};

use super::fault::{backend, io_error, Fault};
use crate::StoreError;

pub(crate) use replay::replay;

/// The journal's size: two regions of half of it.
pub(crate) const JOURNAL_BYTES: u64 = 16 << 20;
const REGION: u64 = JOURNAL_BYTES / 2;
const NAME: &str = "journal";
const MAGIC: [u8; 4] = *b"DTJ2";
const HEADER: usize = 40;
const SECTOR: u64 = 512;

/// The first slot at or after `offset`: where a header fits inside one sector.
fn slot(offset: u64) -> u64 {
    if offset % SECTOR + HEADER as u64 <= SECTOR {
        offset
    } else {
        offset.next_multiple_of(SECTOR)
    }
}

/// A record's header (see the module's documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Header {
    salt: u64,
    len: u32,
    payload_crc: u32,
    first: u64,
    last: u64,
}

impl Header {
    fn to_bytes(self) -> [u8; HEADER] {
        let mut h = [0u8; HEADER];
        h[0..4].copy_from_slice(&MAGIC);
        h[8..16].copy_from_slice(&self.salt.to_le_bytes());
        h[16..20].copy_from_slice(&self.len.to_le_bytes());
        h[20..24].copy_from_slice(&self.payload_crc.to_le_bytes());
        h[24..32].copy_from_slice(&self.first.to_le_bytes());
        h[32..40].copy_from_slice(&self.last.to_le_bytes());
        let crc = crc32fast::hash(&h[8..]);
        h[4..8].copy_from_slice(&crc.to_le_bytes());
        h
    }

    /// The header in `bytes` if it is one and intact.
    fn parse(bytes: &[u8; HEADER]) -> Option<Header> {
        let u32_at = |i: usize| u32::from_le_bytes(bytes[i..i + 4].try_into().unwrap_or_default());
        let u64_at = |i: usize| u64::from_le_bytes(bytes[i..i + 8].try_into().unwrap_or_default());
        if bytes[0..4] != MAGIC || crc32fast::hash(&bytes[8..]) != u32_at(4) {
            return None;
        }
        Some(Header {
            salt: u64_at(8),
            len: u32_at(16),
            payload_crc: u32_at(20),
            first: u64_at(24),
            last: u64_at(32),
        })
    }
}

pub(crate) struct Journal {
    file: File,
    path: PathBuf,
    salt: u64,
    /// The region being written, and the slot in it where the next record goes.
    region: usize,
    offset: u64,
    /// The last position written in each region (0: none since the journal was opened).
    last_in: [u64; 2],
    /// The record being built (room for its header, then its payload) and its positions.
    record: Vec<u8>,
    record_first: u64,
    record_last: u64,
}

impl Journal {
    /// Opens the journal in `dir` (created 0600), emptied: zeros, a new salt, and the marker
    /// of region 0 for a log that ends at `base`. Every record in it must be durable in sled
    /// already (after [`replay`] and a flush). Emptied, not just written over from the start:
    /// a record an earlier process left (never acknowledged, so not replayed) could otherwise
    /// be taken, after a crash of this process, for one of its own groups.
    pub(crate) fn open(dir: &Path, base: u64) -> io::Result<Journal> {
        let path = dir.join(NAME);
        let file = crate::open_private_file(&path)?;
        let created = file.metadata()?.len() < JOURNAL_BYTES;
        let zeros = vec![0u8; 1 << 20];
        let mut at = 0;
        while at < JOURNAL_BYTES {
            let n = (JOURNAL_BYTES - at).min(zeros.len() as u64);
            file.write_all_at(&zeros[..n as usize], at)?;
            at += n;
        }
        let mut journal = Journal {
            file,
            path,
            salt: uuid::Uuid::new_v4().as_u64_pair().0,
            region: 0,
            offset: 0,
            last_in: [0, 0],
            record: Vec::new(),
            record_first: 0,
            record_last: 0,
        };
        journal.start_region(base + 1)?;
        journal.file.sync_all()?;
        if created {
            File::open(dir)?.sync_all()?;
        }
        Ok(journal)
    }

    /// A handle of the journal for one flushing thread (see `commit` on why each has its own).
    pub(crate) fn handle(&self) -> io::Result<File> {
        File::open(&self.path)
    }

    fn header(&self, len: u32, payload_crc: u32, first: u64, last: u64) -> [u8; HEADER] {
        let salt = self.salt;
        Header {
            salt,
            len,
            payload_crc,
            first,
            last,
        }
        .to_bytes()
    }

    /// Starts a turn of the current region whose first position is `first`: zeros over the
    /// first record's slot, then the marker.
    fn start_region(&mut self, first: u64) -> io::Result<()> {
        let base = self.region as u64 * REGION;
        self.file.write_all_at(&[0; HEADER], base + HEADER as u64)?;
        let marker = self.header(0, crc32fast::hash(&[]), first, first.saturating_sub(1));
        self.file.write_all_at(&marker, base)?;
        self.offset = HEADER as u64;
        Ok(())
    }

    /// Starts the record of a group of positions `first..=last`.
    pub(crate) fn begin(&mut self, first: u64, last: u64) {
        self.record.clear();
        self.record.extend_from_slice(&[0; HEADER]);
        self.record_first = first;
        self.record_last = last;
    }

    /// Adds a log chunk (its first position, its bytes as inserted in sled).
    pub(crate) fn add_chunk(&mut self, first: u64, chunk: &[u8]) {
        self.record.extend_from_slice(&first.to_le_bytes());
        self.record
            .extend_from_slice(&(chunk.len() as u32).to_le_bytes());
        self.record.extend_from_slice(chunk);
    }

    /// Whether the record begun fits in a region at all (after its marker).
    pub(crate) fn fits(&self) -> bool {
        self.record.len() as u64 <= REGION - HEADER as u64
    }

    /// Writes the record begun (not synced; call after its chunks were inserted in sled):
    /// payload and the zeros of the next slot first, then the header (see the module's
    /// documentation). When it does not fit in the rest of the region, moves on to the other
    /// one.
    pub(crate) fn write(&mut self, sled: &SledFlush) -> Result<(), StoreError> {
        let written = |e| io_error("cannot write the commit journal", e);
        let len = u32::try_from(self.record.len() - HEADER)
            .map_err(|_| backend("journal record too big"))?;
        if self.offset + self.record.len() as u64 > REGION {
            sled.request(self.last_in[self.region]);
            self.region = 1 - self.region;
            sled.wait(self.last_in[self.region])?;
            self.start_region(self.record_first).map_err(written)?;
        }
        let payload_crc = crc32fast::hash(&self.record[HEADER..]);
        let header = self.header(len, payload_crc, self.record_first, self.record_last);
        let end = self.offset + self.record.len() as u64;
        let next = slot(end);
        if next + HEADER as u64 <= REGION {
            self.record
                .resize((next - self.offset) as usize + HEADER, 0);
        }
        let at = self.region as u64 * REGION + self.offset;
        self.file
            .write_all_at(&self.record[HEADER..], at + HEADER as u64)
            .map_err(written)?;
        self.file.write_all_at(&header, at).map_err(written)?;
        self.offset = next;
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
    failed: Option<Fault>,
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
    pub(crate) fn wait(&self, position: u64) -> Result<(), StoreError> {
        let mut st = self.lock();
        loop {
            if let Some(f) = &st.failed {
                return Err(f.error());
            }
            if st.done >= position {
                return Ok(());
            }
            if st.stopped {
                return Err(backend("the sled flush thread has stopped"));
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
    /// durable) whenever more is asked, until stopped. A failure is kept and stops it (the
    /// writer then recovers with a new `SledFlush`).
    pub(crate) fn run(&self, flush: impl Fn() -> Result<(), StoreError>) {
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
                        st.failed = Some(Fault::of(&e));
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

#[cfg(test)]
mod tests {
    use super::super::test_support::{copy_store, note, raw_sled};
    use super::replay::{continuation, read_region, Item};
    use super::*;
    use crate::sled_store::keys;
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

    /// A store killed with its last groups only in the journal (sled lost them), then a bit
    /// flipped in each record of the journal in turn, at several places in each: either
    /// every acknowledged event is there after open, or the open fails with `Corrupt` naming a
    /// position only the journal held; never a short log that opens. Damage to a record whose
    /// events sled has loses nothing.
    #[tokio::test]
    async fn a_flipped_bit_in_any_journal_record_never_opens_a_short_log() {
        let template = tempfile::tempdir().unwrap();
        let mut firsts = Vec::new();
        let acked = {
            let store = crate::SledStore::open(template.path(), Arc::new(EnvelopeOnly)).unwrap();
            for g in 0..10u64 {
                let events = (0..1 + g % 3).map(|k| note(g * 10 + k)).collect();
                let out = store
                    .append(&format!("deal-F{}", g % 3), ExpectedVersion::Any, events)
                    .await
                    .unwrap();
                firsts.push(out.first_position);
            }
            store.read_all(1, 100, &Filter::default()).await.unwrap()
        };
        let last = acked.len() as u64;
        // Sled lost the last four groups.
        let lost_from = firsts[6];
        let first_lost_chunk = {
            let db = raw_sled(template.path());
            let tree = db.open_tree(super::super::TREE).unwrap();
            let chunk = tree
                .get(keys::log_key(lost_from))
                .unwrap()
                .unwrap()
                .to_vec();
            for p in lost_from..=last {
                tree.remove(keys::log_key(p)).unwrap();
            }
            db.flush().unwrap();
            chunk
        };
        let journal = std::fs::read(template.path().join(NAME)).unwrap();
        let written = &journal[..REGION as usize];
        let written = &written[..written.iter().rposition(|&b| b != 0).unwrap() + 1];
        let starts: Vec<usize> = memchr::memmem::find_iter(written, b"DTJ").collect();
        let lost_at = memchr::memmem::find(written, &first_lost_chunk).unwrap();
        let (mut opened, mut refused) = (0, 0);
        for (k, &start) in starts.iter().enumerate() {
            let end = starts.get(k + 1).copied().unwrap_or(written.len());
            let len = end - start;
            for offset in [0, 5, 9, 14, 18, 22, 27, 35, len / 2, len - 1] {
                if offset >= len {
                    continue;
                }
                let dir = tempfile::tempdir().unwrap();
                copy_store(template.path(), dir.path());
                let mut damaged = journal.clone();
                damaged[start + offset] ^= 1 << (offset % 8);
                std::fs::write(dir.path().join(NAME), &damaged).unwrap();
                let at = start + offset;
                match crate::SledStore::open(dir.path(), Arc::new(EnvelopeOnly)) {
                    Ok(store) => {
                        let events = store.read_all(1, 100, &Filter::default()).await.unwrap();
                        assert_eq!(events, acked, "flip at {at}: a short log opened");
                        assert_eq!(store.verify(&mut |_| {}).unwrap().events, last);
                        opened += 1;
                    }
                    Err(StoreError::Corrupt { position, reason }) => {
                        assert!(
                            (lost_from..=last).contains(&position),
                            "flip at {at}: {position}: {reason}"
                        );
                        assert!(end > lost_at, "flip at {at} in a record sled has: {reason}");
                        refused += 1;
                    }
                    Err(e) => panic!("flip at {at}: {e}"),
                }
            }
        }
        assert!(
            opened > 0 && refused > 0,
            "{opened} opened, {refused} refused"
        );
    }

    /// Sled loses events it held durably when the journal was last emptied (its files were
    /// damaged): the journal's marker says the log reached further, so the store refuses to
    /// open short, naming what is missing.
    #[tokio::test]
    async fn events_sled_held_before_the_journal_began_cannot_silently_vanish() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = crate::SledStore::open(dir.path(), Arc::new(EnvelopeOnly)).unwrap();
            for n in 0..5 {
                store
                    .append("deal-V", ExpectedVersion::Any, vec![note(n)])
                    .await
                    .unwrap();
            }
        }
        // Reopened: the journal is emptied, its marker at 6.
        drop(crate::SledStore::open(dir.path(), Arc::new(EnvelopeOnly)).unwrap());
        {
            let db = raw_sled(dir.path());
            let tree = db.open_tree(super::super::TREE).unwrap();
            tree.remove(keys::log_key(4)).unwrap();
            tree.remove(keys::log_key(5)).unwrap();
            db.flush().unwrap();
        }
        match crate::SledStore::open(dir.path(), Arc::new(EnvelopeOnly)) {
            Err(StoreError::Corrupt { position, reason }) => {
                assert_eq!(position, 4);
                assert!(reason.contains("4..=5"), "{reason}");
            }
            Ok(_) => panic!("opened without positions 4 and 5"),
            Err(e) => panic!("{e}"),
        }
    }

    type Chunks = Option<Vec<(u64, Vec<u8>)>>;

    /// The records of a region, as `(first, last, chunks)`.
    fn records(data: &[u8]) -> Vec<(u64, u64, Chunks)> {
        read_region(data)
            .into_iter()
            .filter_map(|item| match item {
                Item::Marker(_) => None,
                Item::Record(r) => Some((r.first, r.last, r.chunks)),
                Item::Damaged { .. } => panic!("damage in an undamaged journal"),
            })
            .collect()
    }

    #[test]
    fn records_read_back_after_the_marker_in_slots_with_zeros_after_the_last() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = Journal::open(dir.path(), 0).unwrap();
        assert_eq!(
            std::fs::metadata(dir.path().join(NAME)).unwrap().len(),
            JOURNAL_BYTES
        );
        j.begin(1, 3);
        j.add_chunk(1, b"one two");
        j.add_chunk(3, b"three");
        j.write(&SledFlush::new(0)).unwrap();
        // A record whose end leaves no room for a header in its sector: the next starts at
        // the next sector.
        j.begin(4, 4);
        j.add_chunk(4, &[7; 320]);
        j.write(&SledFlush::new(0)).unwrap();
        assert_eq!(j.offset, SECTOR);
        j.begin(5, 5);
        j.add_chunk(5, b"five");
        j.write(&SledFlush::new(0)).unwrap();
        let data = std::fs::read(dir.path().join(NAME)).unwrap();
        let region = &data[..REGION as usize];
        let marker = Header::parse(region[..HEADER].try_into().unwrap()).unwrap();
        assert_eq!((marker.len, marker.first, marker.last), (0, 1, 0));
        assert_eq!(
            records(region),
            vec![
                (
                    1,
                    3,
                    Some(vec![(1, b"one two".to_vec()), (3, b"three".to_vec())])
                ),
                (4, 4, Some(vec![(4, vec![7; 320])])),
                (5, 5, Some(vec![(5, b"five".to_vec())])),
            ]
        );
        let end = j.offset as usize;
        assert!(region[end..end + HEADER].iter().all(|&b| b == 0));
        assert!(read_region(&data[REGION as usize..]).is_empty());
    }

    /// A record whose payload was written but not its header (the process was killed
    /// between the two writes) leaves its slot zero: the end, not damage.
    #[test]
    fn a_record_killed_before_its_header_is_the_end_not_damage() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = Journal::open(dir.path(), 0).unwrap();
        j.begin(1, 1);
        j.add_chunk(1, b"one");
        j.write(&SledFlush::new(0)).unwrap();
        let slot_of_two = j.region as u64 * REGION + j.offset;
        j.begin(2, 2);
        j.add_chunk(2, b"two");
        j.write(&SledFlush::new(0)).unwrap();
        let mut data = std::fs::read(dir.path().join(NAME)).unwrap();
        data[slot_of_two as usize..slot_of_two as usize + HEADER].fill(0);
        let run = continuation(&data, 0).unwrap();
        assert_eq!(run.iter().map(|r| r.first).collect::<Vec<_>>(), [1]);
        // Sled had 1 already: nothing to replay, and nothing refused.
        assert!(continuation(&data, 1).unwrap().is_empty());
    }

    /// A process's records are never replayed after the next process emptied the journal:
    /// the next process writes its own groups at the same positions, crashes too, and only its
    /// own records come back (its first record, of the same size, would otherwise have left the
    /// earlier process's next one intact right after it).
    #[test]
    fn a_record_left_by_an_earlier_process_is_never_replayed() {
        let dir = tempfile::tempdir().unwrap();
        let flush = SledFlush::new(0);
        let mut a = Journal::open(dir.path(), 2).unwrap();
        for (first, bytes) in [(3, b"a-three"), (5, b"a-five!")] {
            a.begin(first, first + 1);
            a.add_chunk(first, bytes);
            a.write(&flush).unwrap();
        }
        let read = || std::fs::read(dir.path().join(NAME)).unwrap();
        let replayed = |tail| -> Vec<(u64, Vec<u8>)> {
            let records = continuation(&read(), tail).unwrap();
            records
                .into_iter()
                .flat_map(|r| r.chunks.unwrap())
                .collect()
        };
        assert_eq!(
            replayed(2),
            vec![(3, b"a-three".to_vec()), (5, b"a-five!".to_vec())]
        );
        let mut b = Journal::open(dir.path(), 4).unwrap();
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
                        data: serde_json::json!({ "n": g * per_group + k, "filler": filler })
                            .into(),
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
        let second = records(&data[REGION as usize..]);
        let lost_from = second[0].0 - 5 * per_group; // 5 groups before the switch
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
        let mut j = Journal::open(dir.path(), 0).unwrap();
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
        let firsts = |region: usize| -> Vec<u64> {
            let at = region * REGION as usize;
            records(&data[at..at + REGION as usize])
                .iter()
                .map(|r| r.0)
                .collect()
        };
        assert_eq!(firsts(0), [3]);
        assert_eq!(firsts(1), [2]);
        // Position 1 is in sled (it was flushed before region 0 was reused): the replay
        // goes on with 2 and 3, in position order whatever the region.
        let replayed = |tail| -> Result<Vec<u64>, StoreError> {
            Ok(continuation(&data, tail)?.iter().map(|r| r.first).collect())
        };
        assert_eq!(replayed(1).unwrap(), [2, 3]);
        assert_eq!(replayed(2).unwrap(), [3]);
        assert!(replayed(3).unwrap().is_empty());
        // Had sled lost position 1, which the journal no longer holds, the later records
        // would not continue the log: refused, naming it.
        match replayed(0) {
            Err(StoreError::Corrupt {
                position: 1,
                reason,
            }) => {
                assert!(reason.contains("1..=1"), "{reason}")
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_failed_sled_flush_fails_the_switch_to_the_other_region() {
        let sled = Arc::new(SledFlush::new(0));
        let thread = {
            let sled = sled.clone();
            std::thread::spawn(move || {
                sled.run(|| Err(StoreError::StorageFull("disk full".into())))
            })
        };
        sled.request(5);
        assert!(matches!(sled.wait(5), Err(StoreError::StorageFull(_))));
        thread.join().unwrap();
    }
}
