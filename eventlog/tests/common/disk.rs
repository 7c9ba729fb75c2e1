//! What the storage-fault tests share (also the API's, which include this file): a tmpfs
//! mounted for a test, and a copy of a data directory.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// A tmpfs mounted for a test, unmounted when dropped (whatever happened). Mounting needs
/// root (CI runs as root): [`Tmpfs::mount`] says why it cannot and gives `None` otherwise.
pub struct Tmpfs {
    pub dir: PathBuf,
    _parent: tempfile::TempDir,
}

impl Tmpfs {
    pub fn mount(megabytes: u32) -> Option<Tmpfs> {
        let parent = tempfile::tempdir().unwrap();
        let dir = parent.path().join("disk");
        std::fs::create_dir(&dir).unwrap();
        let size = format!("size={megabytes}m");
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &size, "tmpfs"])
            .arg(&dir)
            .output();
        match mounted {
            Ok(o) if o.status.success() => Some(Tmpfs {
                dir,
                _parent: parent,
            }),
            other => {
                eprintln!("SKIPPED: cannot mount a tmpfs (not root?): {other:?}");
                None
            }
        }
    }

    /// Writes a file in it until it is full; returns the file's path.
    pub fn fill(&self) -> PathBuf {
        use std::io::Write;
        let path = self.dir.join("filler");
        let mut f = std::fs::File::create(&path).unwrap();
        let block = vec![0x5a; 1 << 20];
        while f.write_all(&block).and_then(|_| f.sync_all()).is_ok() {}
        path
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
    }
}

/// Copies a data directory (of a closed store) as it is on disk.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &to.join(entry.file_name()));
        } else {
            std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
    }
}
