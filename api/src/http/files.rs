//! The API's own files in the data directory (tokens, consumer checkpoints, the read-model
//! snapshot): replaced atomically (write a temporary file, fsync it, rename it over the old
//! one, fsync the directory), and private to the server's user: directories 0700, files
//! 0600, whatever the umask. A file an older version left readable by others is made
//! private when it is read.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::Serialize;

/// Permissions of the API's files and directories (Unix).
const PRIVATE_FILE: u32 = 0o600;
const PRIVATE_DIR: u32 = 0o700;

/// Reads `path`, or `T::default()` if it does not exist yet.
pub fn load<T: DeserializeOwned + Default>(path: &Path) -> std::io::Result<T> {
    match std::fs::read(path) {
        Ok(bytes) => {
            make_private(path)?;
            serde_json::from_slice(&bytes).map_err(|e| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("{}: {e}", path.display()),
                )
            })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(T::default()),
        Err(e) => Err(e),
    }
}

/// Replaces `path` with `value` as JSON; either the old or the new content survives a crash.
pub fn store<T: Serialize>(path: &Path, value: &T) -> std::io::Result<()> {
    write_atomically(path, &serde_json::to_vec_pretty(value)?)
}

/// A big file is synced every time this much more of it has been written.
///
/// Written whole and synced once, the read-model snapshot (hundreds of MB at a few million
/// events) reached the disk as one burst, and every sync of the commit journal meanwhile
/// (which waits for whatever the disk has queued) took 50–190 ms instead of ~3: each append
/// waiting for one waited that long. Synced in pieces, the disk never has more than this of
/// the file queued. (Measured on this project's VM disk: a 4 KiB write + `fdatasync` in a
/// loop while 280 MiB are written beside it: p99 40–108 ms written whole, 14–18 ms in 2 MiB
/// pieces, for a write taking 0.4–1.6 s instead of 0.4–2.4 s.)
const SYNC_EVERY: usize = 2 << 20;

/// Replaces `path` with `bytes` so that a crash leaves either the old or the new file; the
/// file is 0600 and a directory created for it 0700.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    write_parts_atomically(path, &[bytes])
}

/// [`write_atomically`] of `parts` one after the other (synced every 2 MiB: see `SYNC_EVERY`).
pub fn write_parts_atomically(path: &Path, parts: &[&[u8]]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    create_private_dir(dir)?;
    let tmp = temporary(path);
    {
        let mut f = create_private_file(&tmp)?;
        let mut unsynced = 0;
        for piece in parts.iter().flat_map(|p| p.chunks(SYNC_EVERY)) {
            f.write_all(piece)?;
            unsynced += piece.len();
            if unsynced >= SYNC_EVERY {
                f.sync_data()?;
                unsynced = 0;
            }
        }
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    std::fs::File::open(dir)?.sync_all()
}

/// `path` with `.tmp` added to its name.
fn temporary(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    path.with_file_name(name)
}

/// Creates `dir` and its missing parents, each 0700; an existing directory is left as it is.
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, PRIVATE_DIR);
    builder.create(dir)
}

/// Opens `path` for writing, truncated, 0600 (also if a crash left it with other permissions).
fn create_private_file(path: &Path) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, PRIVATE_FILE);
    let file = options.open(path)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(PRIVATE_FILE))?;
    }
    Ok(file)
}

/// Takes group and other permissions away from an existing file of ours.
fn make_private(path: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if std::fs::metadata(path)?.permissions().mode() & 0o077 != 0 {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(PRIVATE_FILE))?;
        }
    }
    Ok(())
}

/// `path`'s permission bits (for tests).
#[cfg(all(test, unix))]
pub(crate) fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn files_are_0600_and_their_new_directories_0700_whatever_was_there() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("projections").join("readmodel.json");
        // A temporary file a crash left behind, readable by everyone.
        create_private_dir(path.parent().unwrap()).unwrap();
        std::fs::write(temporary(&path), b"old").unwrap();
        std::fs::set_permissions(temporary(&path), std::fs::Permissions::from_mode(0o644)).unwrap();
        write_atomically(&path, b"{}").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"{}");
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(path.parent().unwrap()), 0o700);
    }

    #[test]
    fn parts_written_in_synced_pieces_make_the_file_they_add_up_to() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("readmodel.json");
        std::fs::write(&path, b"the previous snapshot").unwrap();
        // Sizes around the piece boundary: a part ending one byte short of it, one crossing
        // it twice, an empty one.
        let a: Vec<u8> = (0..SYNC_EVERY - 1).map(|i| (i % 251) as u8).collect();
        let b: Vec<u8> = (0..2 * SYNC_EVERY + 3).map(|i| (i % 241) as u8).collect();
        write_parts_atomically(&path, &[b"head\n", &a, &[], &b]).unwrap();
        let mut expected = b"head\n".to_vec();
        expected.extend_from_slice(&a);
        expected.extend_from_slice(&b);
        assert!(std::fs::read(&path).unwrap() == expected);
        assert!(!temporary(&path).exists());
        assert_eq!(mode(&path), 0o600);
    }

    #[test]
    fn a_file_an_older_version_left_readable_is_made_private_when_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens.json");
        std::fs::write(&path, b"{}").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let _: std::collections::BTreeMap<String, String> = load(&path).unwrap();
        assert_eq!(mode(&path), 0o600);
    }
}
