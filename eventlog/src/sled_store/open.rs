//! Opening the store's files, when the store opens and when the writer reopens them after a
//! failed write (see `writer`): sled (its panics on damaged data caught, see `fault`), the
//! commit journal's replay (see `journal`), the tail, and the index entries after the
//! watermark (rebuilt from the log); then a flush and sync, so that everything recovered is
//! on disk before anyone reads it and before the journal is emptied.
//!
//! Files are private: a data directory the store creates is 0700; `db`, `conf` and `blobs/`
//! are created 0600 / 0700 before sled opens them (sled keeps the mode of a file that
//! exists), the journal and the chunk file 0600 (see `journal`, `outside`); sled's snapshot (`snap.*`, written while it
//! opens) and files of the store that an earlier version left open to others are made
//! private once sled is open. sled creates its blob files with the process's default mode,
//! inside `blobs/`.

use std::fs::{DirBuilder, OpenOptions, Permissions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::sync::{Arc, Mutex, RwLock};

use super::fault::{at, io_error, no_panic, sled_error};
use super::index::Unindexed;
use super::{id_runs, journal, outside, read, sync, Sled, Tail, TREE};
use crate::StoreError;

/// What opening the files found.
pub(crate) struct Opened {
    pub sled: Sled,
    pub tail: Tail,
    pub unindexed: Unindexed,
    pub last_run_id: uuid::Uuid,
}

/// Opens the store in `dir`, creating it if needed (see the module's documentation);
/// `cache_bytes`: the size of sled's page cache, `None` for sled's default (1 GiB).
pub(crate) fn open(dir: &Path, cache_bytes: Option<u64>) -> Result<Opened, StoreError> {
    let private = |r: io::Result<()>| {
        r.map_err(|e| io_error(&format!("cannot make {} private", dir.display()), e))
    };
    private(create_private(dir))?;
    let db = no_panic(0, || open_sled(dir, cache_bytes))?;
    // sled writes its snapshot while it opens.
    private(make_private(dir))?;
    no_panic(0, || recover(db, Some(dir)))
}

/// A throw-away store (see `SledStore::temporary`).
pub(crate) fn temporary() -> Result<Opened, StoreError> {
    let db = sled::Config::new()
        .temporary(true)
        .open()
        .map_err(|e| super::backend(format!("cannot open a temporary store: {e}")))?;
    recover(db, None)
}

/// Whether sled's open failed because another handle holds the directory's file lock: sled
/// reports that only as text, so ask the lock itself (sled takes an exclusive `flock` on
/// `DIR/db`, which `File::try_lock` tries the same way).
fn is_lock_error(dir: &Path, e: &sled::Error) -> bool {
    if !matches!(e, sled::Error::Io(_)) {
        return false;
    }
    let Ok(file) = std::fs::OpenOptions::new().read(true).open(dir.join("db")) else {
        return false;
    };
    matches!(file.try_lock(), Err(std::fs::TryLockError::WouldBlock))
}

fn open_sled(dir: &Path, cache_bytes: Option<u64>) -> Result<sled::Db, StoreError> {
    // sled releases its file lock when its last background handle is gone, a moment after the
    // previous store in this process was dropped (or the writer let go of sled to reopen it):
    // wait a little for that before calling the directory locked (a lock held by another
    // process stays held). Seen taking over 1.5 s while the disk was busy with other writes.
    let mut tries = 0;
    loop {
        let mut config = sled::Config::new().path(dir);
        if let Some(bytes) = cache_bytes {
            config = config.cache_capacity(bytes);
        }
        match config.open() {
            Ok(db) => return Ok(db),
            Err(e) if is_lock_error(dir, &e) && tries < 100 => {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            Err(e) if is_lock_error(dir, &e) => {
                return Err(StoreError::Locked(dir.display().to_string()))
            }
            Err(e) => {
                return Err(match sled_error(e, 0) {
                    StoreError::Backend(m) => StoreError::Backend(format!(
                        "cannot open the store in {}: {m}",
                        dir.display()
                    )),
                    other => other,
                })
            }
        }
    }
}

/// Replays the journal into `db` (when there is one), finds the tail, rebuilds the index
/// entries after the watermark and makes it all durable.
fn recover(db: sled::Db, dir: Option<&Path>) -> Result<Opened, StoreError> {
    let tree = db.open_tree(TREE).map_err(at(0))?;
    let chunks = dir
        .map(outside::ChunkFile::open)
        .transpose()
        .map_err(|e| io_error("cannot open the log's chunk file", e))?;
    let id_runs = match dir {
        Some(dir) => id_runs::IdRuns::load(dir, &tree)?,
        None => id_runs::IdRuns::default(),
    };
    let sled = Sled {
        db,
        tree,
        syncer: Mutex::new(None),
        gate: Mutex::new(()),
        chunks,
        id_runs: RwLock::new(Arc::new(id_runs)),
    };
    if let Some(dir) = dir {
        // Acknowledged groups sled had not flushed when the last process ended.
        journal::replay(dir, &sled)?;
    }
    let tree = &sled.tree;
    let tail = read::tail(&sled)?;
    let indexed = match read::indexed_through(tree)? {
        Some(position) => position,
        None => {
            // A new store, or one from before the watermark, whose index is complete.
            tree.insert(
                super::keys::INDEXED,
                &super::keys::position_value(tail.position),
            )
            .map_err(at(0))?;
            tail.position
        }
    };
    // What sled recovered may only be in the OS cache (the last process was killed before
    // its flush): make it (and a new watermark) durable before anyone reads it (sled's
    // flush, then the syncer's sync of its files; the journal's replay writes nothing to the
    // chunk file).
    sled.db.flush().map_err(at(0))?;
    let syncer = dir
        .map(sync::Syncer::open)
        .transpose()
        .map_err(|e| io_error("cannot sync the store's files", e))?;
    *sled
        .syncer
        .lock()
        .map_err(|_| super::backend("the sync lock is poisoned"))? = syncer;
    let unindexed = read::rebuild_unindexed(&sled, indexed + 1, tail.position)?;
    let last_run_id = read::last_id_run_id(tree)?;
    Ok(Opened {
        sled,
        tail,
        unindexed,
        last_run_id,
    })
}

/// Creates `dir` (0700) and sled's files (0600, `blobs/` 0700) if missing.
fn create_private(dir: &Path) -> io::Result<()> {
    let exists = |r: io::Result<()>| match r {
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        other => other,
    };
    if !dir.is_dir() {
        exists(DirBuilder::new().recursive(true).mode(0o700).create(dir))?;
    }
    exists(DirBuilder::new().mode(0o700).create(dir.join("blobs")))?;
    exists(DirBuilder::new().mode(0o700).create(dir.join(id_runs::DIR)))?;
    for name in ["db", "conf"] {
        let created = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(dir.join(name));
        exists(created.map(drop))?;
    }
    Ok(())
}

/// Makes the store's files that others may read private.
fn make_private(dir: &Path) -> io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let mode = match name.as_ref() {
            "blobs" | id_runs::DIR => 0o700,
            "db" | "conf" | "journal" | outside::NAME => 0o600,
            n if n.starts_with("snap.") => 0o600,
            _ => continue,
        };
        let meta = entry.metadata()?;
        if meta.permissions().mode() & 0o077 != 0 {
            std::fs::set_permissions(entry.path(), Permissions::from_mode(mode))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;
    use std::path::Path;
    use std::sync::Arc;

    use crate::{EnvelopeOnly, SledStore};

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    /// The files of a store are its own: nobody else on the machine reads the log.
    #[test]
    fn the_store_creates_its_directory_and_files_private() {
        let parent = tempfile::tempdir().unwrap();
        let dir = parent.path().join("data");
        drop(SledStore::open(&dir, Arc::new(EnvelopeOnly)).unwrap());
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&dir.join("blobs")), 0o700);
        for name in ["db", "conf", "journal", "chunks"] {
            assert_eq!(mode(&dir.join(name)), 0o600, "{name}");
        }
        // Opened again: sled writes its snapshot, and an earlier version's loose modes are
        // tightened (the directory, not created by the store this time, is left as it is).
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o750)).unwrap();
        std::fs::set_permissions(dir.join("db"), std::fs::Permissions::from_mode(0o644)).unwrap();
        drop(SledStore::open(&dir, Arc::new(EnvelopeOnly)).unwrap());
        assert_eq!(mode(&dir), 0o750);
        let mut snapshots = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_file() {
                assert_eq!(mode(&path), 0o600, "{}", path.display());
                snapshots += path.to_string_lossy().contains("snap.") as usize;
            }
        }
        assert!(snapshots > 0, "sled wrote no snapshot");
    }
}
