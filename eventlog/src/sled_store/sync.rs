//! Real durability on top of sled's flush.
//!
//! `sled::Db::flush` (0.34) writes its buffers and then, on Linux, calls
//! `sync_file_range(2)`, which neither flushes the drive's write cache nor commits the file's
//! metadata: what it wrote survives a killed process but not a power loss or a kernel crash.
//! It also never syncs the files under `blobs/`, where it writes log messages larger than a
//! quarter of a segment (a node holding several big log chunks). So after each sled flush
//! the store syncs those itself: every blob file not synced yet, the `blobs` directory when
//! it gained files, then the main `db` file (`fdatasync`, whichever handle wrote the data).

use std::collections::HashSet;
use std::ffi::OsString;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

pub(crate) struct Syncer {
    db: File,
    blobs: PathBuf,
    /// Blob files synced already (those still present at the last sync).
    synced: HashSet<OsString>,
}

impl Syncer {
    /// For the store in `dir` (already opened by sled).
    pub(crate) fn open(dir: &Path) -> io::Result<Syncer> {
        let db = File::open(dir.join("db"))?;
        let mut syncer = Syncer {
            db,
            blobs: dir.join("blobs"),
            synced: HashSet::new(),
        };
        // Whatever an earlier process left in the directory, once.
        File::open(dir)?.sync_all()?;
        syncer.sync()?;
        Ok(syncer)
    }

    /// Makes everything sled has written so far durable (call after `sled::Db::flush`).
    pub(crate) fn sync(&mut self) -> io::Result<()> {
        let mut present = HashSet::new();
        let mut added = false;
        let entries = match std::fs::read_dir(&self.blobs) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            other => Some(other?),
        };
        for entry in entries.into_iter().flatten() {
            let name = entry?.file_name();
            if !self.synced.contains(&name) {
                match File::open(self.blobs.join(&name)).and_then(|f| f.sync_data()) {
                    // sled removed it meanwhile (garbage collection): nothing to keep.
                    Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                    other => other?,
                }
                added = true;
            }
            present.insert(name);
        }
        if added {
            File::open(&self.blobs)?.sync_all()?;
        }
        self.synced = present;
        self.db.sync_data()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Blob files come and go (sled collects them); syncing copes and remembers what it did.
    #[test]
    fn blob_files_are_synced_once_and_may_vanish() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("blobs")).unwrap();
        std::fs::write(dir.path().join("db"), b"log").unwrap();
        let mut s = Syncer::open(dir.path()).unwrap();
        assert!(s.synced.is_empty());
        std::fs::write(dir.path().join("blobs").join("17"), b"big value").unwrap();
        s.sync().unwrap();
        assert_eq!(s.synced.len(), 1);
        std::fs::remove_file(dir.path().join("blobs").join("17")).unwrap();
        s.sync().unwrap();
        assert!(s.synced.is_empty());
    }
}
