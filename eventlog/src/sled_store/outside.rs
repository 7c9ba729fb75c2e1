//! Log chunks kept outside sled's tree: a bulk import's.
//!
//! sled (0.34) keeps what it has read or written in memory far past its cache limit (which
//! counts serialised bytes), copies a leaf for every insert, and writes every value to its own
//! log before our journal has it again: a 1 M-event import held ~180 MB of its own log chunks
//! in sled's memory at its peak. So the chunks of a group of checked (bulk) appends are
//! written to `chunks`, a file of the store's own that only grows, and sled holds, under the
//! chunk's `L` key (see `keys`), a *pointer* to them: where they are in the file, how long,
//! and their CRC-32. Every other group's chunks stay in sled as before; a reader asks
//! [`super::Sled::chunk`] for a chunk's bytes, and gets the same bytes either way.
//!
//! A pointer starts with four zero bytes, where a chunk starts with the length of its first
//! record, never zero (a record holds at least its format byte): so the two never look
//! alike. Pointer, 21 bytes: `00 00 00 00`, `X`, offset (u64), length (u32), CRC-32 (u32),
//! little-endian.
//!
//! # Durability
//!
//! The writer writes a group's chunks to the file, then their pointers to sled, then the
//! same chunks to the commit journal (see `journal`), whose sync acknowledges the group, as
//! for every group. Before any flush of sled (`Sled::flush`), the file is synced, so that a
//! flush that makes pointers durable makes durable the chunks they point to: the journal's
//! records are overwritten only after such a flush. But sled also flushes by itself (every
//! 500 ms), so a power loss can leave pointers on disk whose chunks were not: their records
//! are still in the journal then, and its replay writes those chunks back into sled, in
//! place of their pointers (see `journal::replay`). A chunk the journal no longer holds and
//! the file has lost (or that fails its CRC) is damage at its first position, like a damaged
//! chunk in sled. What a crash leaves in the file past the last pointer is never read.
//!
//! Stores written before this hold no pointers and no file, and are read as before. A store
//! that took a bulk import with this version cannot be read by an earlier one (it reports
//! the pointers as damaged records).

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// The file's name in the store's directory.
pub(crate) const NAME: &str = "chunks";

const MARK: [u8; 5] = [0, 0, 0, 0, b'X'];
const POINTER_LEN: usize = MARK.len() + 8 + 4 + 4;

/// Where a chunk is in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Pointer {
    pub offset: u64,
    pub len: u32,
    pub crc: u32,
}

impl Pointer {
    /// The pointer stored in `value` (a log key's value), `None` if the value is a chunk.
    /// `Err` if it starts like a pointer but is not one.
    pub(crate) fn of(value: &[u8]) -> Result<Option<Pointer>, String> {
        if !value.starts_with(&MARK[..4]) {
            return Ok(None);
        }
        let rest = value
            .strip_prefix(&MARK[..])
            .filter(|rest| rest.len() == POINTER_LEN - MARK.len())
            .ok_or_else(|| "a log chunk starts with an empty record".to_string())?;
        let (offset, rest) = rest.split_at(8);
        let (len, crc) = rest.split_at(4);
        let le4 = |b: &[u8]| u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        let mut o = [0u8; 8];
        o.copy_from_slice(offset);
        Ok(Some(Pointer {
            offset: u64::from_le_bytes(o),
            len: le4(len),
            crc: le4(crc),
        }))
    }

    pub(crate) fn encode(&self) -> [u8; POINTER_LEN] {
        let mut out = [0u8; POINTER_LEN];
        out[..MARK.len()].copy_from_slice(&MARK);
        out[5..13].copy_from_slice(&self.offset.to_le_bytes());
        out[13..17].copy_from_slice(&self.len.to_le_bytes());
        out[17..21].copy_from_slice(&self.crc.to_le_bytes());
        out
    }
}

/// The store's `chunks` file. One writer appends (the store's writer thread); any thread
/// reads and syncs.
pub(crate) struct ChunkFile {
    file: File,
    /// Where the next chunk goes: the file's length when it was opened, then past each
    /// chunk written.
    end: AtomicU64,
    /// A chunk was written since the last sync.
    dirty: AtomicBool,
}

impl ChunkFile {
    /// Opens (creates, 0600) the file of the store in `dir`.
    pub(crate) fn open(dir: &Path) -> io::Result<ChunkFile> {
        let file = crate::open_private_file(&dir.join(NAME))?;
        let end = file.metadata()?.len();
        Ok(ChunkFile {
            file,
            end: AtomicU64::new(end),
            dirty: AtomicBool::new(false),
        })
    }

    /// Writes `chunk` after the last one (not synced: see [`ChunkFile::sync`]).
    pub(crate) fn append(&self, chunk: &[u8]) -> io::Result<Pointer> {
        let len = u32::try_from(chunk.len())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a log chunk over 4 GiB"))?;
        let offset = self.end.load(Ordering::Acquire);
        self.file.write_all_at(chunk, offset)?;
        self.end.store(offset + u64::from(len), Ordering::Release);
        self.dirty.store(true, Ordering::Release);
        Ok(Pointer {
            offset,
            len,
            crc: crc32fast::hash(chunk),
        })
    }

    /// The chunk `p` points to; `check`: whether to check its CRC too (readers need not:
    /// each record has its own).
    pub(crate) fn read(&self, p: &Pointer, check: bool) -> Result<Vec<u8>, String> {
        let mut buf = vec![0u8; p.len as usize];
        self.file
            .read_exact_at(&mut buf, p.offset)
            .map_err(|e| match e.kind() {
                io::ErrorKind::UnexpectedEof => format!(
                    "the log chunk at bytes {}..{} of `{NAME}` is missing (the file ends before)",
                    p.offset,
                    p.offset + u64::from(p.len)
                ),
                _ => format!("cannot read `{NAME}` at byte {}: {e}", p.offset),
            })?;
        if check && crc32fast::hash(&buf) != p.crc {
            return Err(format!(
                "the log chunk at bytes {}..{} of `{NAME}` fails its checksum",
                p.offset,
                p.offset + u64::from(p.len)
            ));
        }
        Ok(buf)
    }

    /// Makes every chunk written so far durable (before a flush of sled).
    pub(crate) fn sync(&self) -> io::Result<()> {
        if self.dirty.swap(false, Ordering::AcqRel) {
            if let Err(e) = self.file.sync_data() {
                self.dirty.store(true, Ordering::Release);
                return Err(e);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pointer_round_trips_and_never_looks_like_a_chunk() {
        let p = Pointer {
            offset: 1 << 40,
            len: 65_536,
            crc: 0xdead_beef,
        };
        assert_eq!(Pointer::of(&p.encode()), Ok(Some(p)));
        // A chunk starts with its first record's length, never zero.
        let mut chunk = Vec::new();
        super::super::frame::seal_into(&mut chunk, &super::super::GENESIS, b"\x01record");
        assert_eq!(Pointer::of(&chunk), Ok(None));
        // Four zero bytes that are not a whole pointer are damage, not a chunk.
        assert!(Pointer::of(&[0, 0, 0, 0, b'X', 1]).is_err());
        assert!(Pointer::of(&[0, 0, 0, 0, 7, 7, 7]).is_err());
    }

    #[test]
    fn chunks_read_back_and_damage_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let file = ChunkFile::open(dir.path()).unwrap();
        let a = file.append(b"first chunk").unwrap();
        let b = file.append(b"second").unwrap();
        file.sync().unwrap();
        assert_eq!((a.offset, b.offset), (0, 11));
        assert_eq!(file.read(&b, true).unwrap(), b"second");
        drop(file);
        // Reopened, it goes on after what it holds.
        let file = ChunkFile::open(dir.path()).unwrap();
        assert_eq!(file.append(b"third").unwrap().offset, 17);
        assert_eq!(file.read(&a, true).unwrap(), b"first chunk");
        // Damage: other bytes, then a file cut short.
        std::fs::OpenOptions::new()
            .write(true)
            .open(dir.path().join(NAME))
            .unwrap()
            .write_all_at(b"F", 0)
            .unwrap();
        assert!(file.read(&a, true).unwrap_err().contains("checksum"));
        assert_eq!(file.read(&a, false).unwrap(), b"First chunk");
        std::fs::OpenOptions::new()
            .write(true)
            .open(dir.path().join(NAME))
            .unwrap()
            .set_len(12)
            .unwrap();
        assert!(file.read(&b, false).unwrap_err().contains("missing"));
    }
}
