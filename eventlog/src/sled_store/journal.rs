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
//! The journal is circular. Before a record is written at its start again, the writer
//! flushes sled and syncs its files (see `Shared::flush`): from then on, every record in the
//! journal is durable in sled as well, and may be overwritten. A group too big for the
//! journal is not journaled: the writer flushes sled right after writing it instead.
//!
//! At open, before anything else, [`replay`] inserts in sled the records that continue its
//! log: starting right after sled's last position, each record must start where the
//! previous one ended. Records from an earlier turn of the journal, beyond the newest ones,
//! hold positions sled has already (it was flushed before they were overwritten), and a
//! record torn by a crash fails its checksum: both end the replay. A record that was
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

use super::{backend, keys};
use crate::StoreError;

/// The journal's size: a record never crosses its end.
pub(crate) const JOURNAL_BYTES: u64 = 8 << 20;
const NAME: &str = "journal";
const MAGIC: [u8; 4] = *b"DTJ1";
const HEADER: usize = 28;

pub(crate) struct Journal {
    file: File,
    path: PathBuf,
    /// Where the next record goes.
    offset: u64,
    /// The record being built.
    record: Vec<u8>,
}

impl Journal {
    /// Opens (creating and filling it with zeros if needed) the journal in `dir`. Every
    /// record in it must be durable in sled already (after [`replay`] and a flush): the next
    /// record is written at its start.
    pub(crate) fn open(dir: &Path) -> io::Result<Journal> {
        let path = dir.join(NAME);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)?;
        let len = file.metadata()?.len();
        if len < JOURNAL_BYTES {
            let zeros = vec![0u8; 1 << 20];
            let mut at = len;
            while at < JOURNAL_BYTES {
                let n = (JOURNAL_BYTES - at).min(zeros.len() as u64);
                file.write_all_at(&zeros[..n as usize], at)?;
                at += n;
            }
            file.sync_all()?;
            File::open(dir)?.sync_all()?;
        }
        Ok(Journal {
            file,
            path,
            offset: 0,
            record: Vec::new(),
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
    }

    /// Adds a log chunk (its first position, its bytes as inserted in sled).
    pub(crate) fn add_chunk(&mut self, first: u64, chunk: &[u8]) {
        self.record.extend_from_slice(&first.to_le_bytes());
        self.record
            .extend_from_slice(&(chunk.len() as u32).to_le_bytes());
        self.record.extend_from_slice(chunk);
    }

    /// Whether the record begun fits in the journal at all.
    pub(crate) fn fits(&self) -> bool {
        self.record.len() as u64 <= JOURNAL_BYTES
    }

    /// Writes the record begun (not synced). When it does not fit before the end of the
    /// journal, calls `make_all_durable` (which must make everything written so far durable
    /// in sled) and writes it at the start.
    pub(crate) fn write(
        &mut self,
        make_all_durable: impl FnOnce() -> Result<(), String>,
    ) -> Result<(), String> {
        let payload = self.record.len() - HEADER;
        let len = u32::try_from(payload).map_err(|_| "journal record too big".to_string())?;
        self.record[4..8].copy_from_slice(&len.to_le_bytes());
        let crc = crc32fast::hash(&self.record[12..]);
        self.record[8..12].copy_from_slice(&crc.to_le_bytes());
        if self.offset + self.record.len() as u64 > JOURNAL_BYTES {
            make_all_durable()?;
            self.offset = 0;
        }
        self.file
            .write_all_at(&self.record, self.offset)
            .map_err(|e| format!("cannot write the journal: {e}"))?;
        self.offset += self.record.len() as u64;
        Ok(())
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

/// Inserts in `tree` the journal's records that continue its log (see the module's
/// documentation), after which the caller must flush sled. Returns how many events it added.
pub(crate) fn replay(dir: &Path, tree: &sled::Tree) -> Result<u64, StoreError> {
    let data = match std::fs::read(dir.join(NAME)) {
        Ok(d) => d,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(backend(format!("cannot read the journal: {e}"))),
    };
    let tail = super::read::tail(tree)?.position;
    let mut next = tail + 1;
    let mut at = 0;
    let mut added = 0;
    while let Some((record, end)) = record_at(&data, at) {
        at = end;
        if record.last < next {
            continue; // in sled already
        }
        if record.first != next {
            if record.first < next {
                return Err(StoreError::Corrupt {
                    position: next,
                    reason: format!(
                        "the journal holds positions {}..={} but sled's log ends at {}",
                        record.first,
                        record.last,
                        next - 1
                    ),
                });
            }
            break; // not a continuation: an older turn of the journal
        }
        for (first, chunk) in record.chunks {
            tree.insert(keys::log_key(first), chunk).map_err(backend)?;
        }
        added += record.last - record.first + 1;
        next = record.last + 1;
    }
    if added > 0 {
        tracing::info!(events = added, "replayed the commit journal");
    }
    Ok(added)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{EnvelopeOnly, EventStore, ExpectedVersion, Filter, ProposedEvent};
    use std::sync::Arc;

    fn note(n: u64) -> ProposedEvent {
        ProposedEvent {
            id: None,
            event_type: "ActivityLogged".into(),
            occurred_at: None,
            actor: None,
            data: serde_json::json!({ "kind": "note", "n": n }),
            metadata: None,
            recorded_at: None,
        }
    }

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
            // The store just dropped may hold sled's file lock for a moment longer.
            let mut tries = 0;
            let db = loop {
                match sled::open(dir.path()) {
                    Ok(db) => break db,
                    Err(_) if tries < 60 => {
                        tries += 1;
                        std::thread::sleep(std::time::Duration::from_millis(50));
                    }
                    Err(e) => panic!("cannot reopen the store: {e}"),
                }
            };
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
        j.write(|| Ok(())).unwrap();
        j.begin(4, 4);
        j.add_chunk(4, b"four");
        j.write(|| Ok(())).unwrap();
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

    #[test]
    fn a_record_that_does_not_fit_goes_to_the_start_after_making_all_durable() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = Journal::open(dir.path()).unwrap();
        let big = vec![7u8; (JOURNAL_BYTES / 2) as usize];
        let mut durable_calls = 0;
        for k in 0..3u64 {
            j.begin(k + 1, k + 1);
            j.add_chunk(k + 1, &big);
            j.write(|| {
                durable_calls += 1;
                Ok(())
            })
            .unwrap();
        }
        assert_eq!(durable_calls, 2);
        let data = std::fs::read(dir.path().join(NAME)).unwrap();
        let (r, _) = record_at(&data, 0).unwrap();
        assert_eq!(r.first, 3);
    }
}
