//! The sled store's keys: `<data>/personal-keys`, a file of fixed 128-byte slots, never a
//! sled tree (sled writes changes to new pages and keeps old ones until it reclaims them, so
//! a destroyed key could stay on disk).
//!
//! ```text
//! slot 0:  "dealtrail personal keys 1\n", zero padded            (header)
//! slot n:  state (1: live, 2: erased) | person length | person (80 bytes, zero padded)
//!          | key (32 bytes; zeros once erased) | 6 zero bytes | blake3(bytes 0..120)[..8]
//! ```
//!
//! - A new key is written in a new slot and `fdatasync`ed before the event it seals is
//!   appended (callers that create keys together share one sync: group commit).
//! - Erasing overwrites the person's slot in place (key bytes zeroed) and syncs it before the
//!   erasure is answered: the file's blocks that held the key now hold zeros. (A file system
//!   that writes elsewhere on overwrite, copy-on-write ones like btrfs or ZFS, and SSD
//!   wear-levelling can keep the old block below the file system: see the README.)
//! - A slot whose checksum fails at open is a write a crash interrupted (before its sync: no
//!   event relies on it, or an erasure that must not be undone): it is zeroed.

use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use async_trait::async_trait;

use super::cipher::PersonKey;
use super::keys::{KeyState, KeyStore};
use crate::StoreError;

const SLOT: usize = 128;
const HEADER: &[u8] = b"dealtrail personal keys 1\n";
const PERSON_MAX: usize = 80;
const LIVE: u8 = 1;
const ERASED: u8 = 2;

/// The file's name in a data directory.
pub const FILE_NAME: &str = "personal-keys";

/// Keys in a file of their own (see the module doc).
#[derive(Clone)]
pub struct KeyFile {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    file: File,
    slots: RwLock<Slots>,
    /// Writes made (a counter), and the count the last sync covered (read without a lock:
    /// a reader of keys never waits for a sync in progress).
    written: AtomicU64,
    durable: AtomicU64,
    /// Taken by the one caller syncing; the others wait for it, then find their write covered.
    syncing: Mutex<()>,
}

#[derive(Default)]
struct Slots {
    next: u64,
    by_person: HashMap<String, Entry>,
}

struct Entry {
    slot: u64,
    key: Option<Arc<PersonKey>>,
    /// The write that made this entry what it is (durable once `Inner::durable` reaches it).
    written: u64,
}

fn io_error(path: &Path, what: &str, e: std::io::Error) -> StoreError {
    crate::sled_store::fault::io_error(&format!("{what} {}", path.display()), e)
}

fn encode(state: u8, person: &str, key: Option<&[u8; 32]>) -> [u8; SLOT] {
    let mut slot = [0u8; SLOT];
    slot[0] = state;
    slot[1] = person.len() as u8;
    slot[2..2 + person.len()].copy_from_slice(person.as_bytes());
    if let Some(k) = key {
        slot[82..114].copy_from_slice(k);
    }
    let sum = blake3::hash(&slot[..120]);
    slot[120..].copy_from_slice(&sum.as_bytes()[..8]);
    slot
}

/// A slot's content; `None` for an empty or torn one.
fn decode(slot: &[u8]) -> Option<(u8, String, Option<[u8; 32]>)> {
    if slot.iter().all(|b| *b == 0) || blake3::hash(&slot[..120]).as_bytes()[..8] != slot[120..] {
        return None;
    }
    let len = slot[1] as usize;
    let person = std::str::from_utf8(slot.get(2..2 + len)?).ok()?.to_string();
    match slot[0] {
        LIVE => {
            let mut key = [0u8; 32];
            key.copy_from_slice(&slot[82..114]);
            Some((LIVE, person, Some(key)))
        }
        ERASED => Some((ERASED, person, None)),
        _ => None,
    }
}

impl KeyFile {
    /// Opens (or creates) the key file of the data directory `dir`.
    pub fn open(dir: &Path) -> Result<KeyFile, StoreError> {
        let path = dir.join(FILE_NAME);
        let created = !path.exists();
        let file =
            crate::open_private_file(&path).map_err(|e| io_error(&path, "cannot open", e))?;
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut &file, &mut bytes)
            .map_err(|e| io_error(&path, "cannot read", e))?;
        if bytes.is_empty() {
            let mut header = [0u8; SLOT];
            header[..HEADER.len()].copy_from_slice(HEADER);
            file.write_all_at(&header, 0)
                .and_then(|_| file.sync_all())
                .map_err(|e| io_error(&path, "cannot write", e))?;
            if created {
                File::open(dir)
                    .and_then(|d| d.sync_all())
                    .map_err(|e| io_error(dir, "cannot sync", e))?;
            }
            bytes = header.to_vec();
        }
        if !bytes.starts_with(HEADER) {
            return Err(StoreError::Corrupt {
                position: 0,
                reason: format!("{} is not a dealtrail key file", path.display()),
            });
        }
        let mut slots = Slots::default();
        let count = bytes.len().div_ceil(SLOT) as u64;
        let mut torn = Vec::new();
        for n in 1..count {
            let start = n as usize * SLOT;
            let mut slot = [0u8; SLOT];
            let end = bytes.len().min(start + SLOT);
            slot[..end - start].copy_from_slice(&bytes[start..end]);
            match decode(&slot) {
                Some((state, person, key)) => {
                    let key = (state == LIVE)
                        .then(|| key.map(|k| Arc::new(PersonKey::from_bytes(k))))
                        .flatten();
                    slots.by_person.insert(
                        person,
                        Entry {
                            slot: n,
                            key,
                            written: 0,
                        },
                    );
                }
                None if slot.iter().any(|b| *b != 0) => torn.push(n),
                None => {}
            }
        }
        slots.next = count.max(1);
        for n in &torn {
            file.write_all_at(&[0u8; SLOT], n * SLOT as u64)
                .map_err(|e| io_error(&path, "cannot write", e))?;
        }
        if !torn.is_empty() {
            tracing::warn!(path = %path.display(), slots = ?torn, "key slots torn by a crash were zeroed");
            file.sync_data()
                .map_err(|e| io_error(&path, "cannot sync", e))?;
        }
        Ok(KeyFile {
            inner: Arc::new(Inner {
                path,
                file,
                slots: RwLock::new(slots),
                written: AtomicU64::new(0),
                durable: AtomicU64::new(0),
                syncing: Mutex::new(()),
            }),
        })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }
}

impl Inner {
    fn lookup(&self, persons: &[String]) -> (Vec<KeyState>, u64) {
        let slots = self.slots.read().unwrap_or_else(|p| p.into_inner());
        let mut newest = 0;
        let states = persons
            .iter()
            .map(|p| match slots.by_person.get(p) {
                Some(e) => {
                    newest = newest.max(e.written);
                    match &e.key {
                        Some(k) => KeyState::Live(k.clone()),
                        None => KeyState::Erased,
                    }
                }
                None => KeyState::Absent,
            })
            .collect();
        (states, newest)
    }

    fn write_slot(&self, slot: u64, bytes: &[u8; SLOT]) -> Result<u64, StoreError> {
        self.file
            .write_all_at(bytes, slot * SLOT as u64)
            .map_err(|e| io_error(&self.path, "cannot write", e))?;
        Ok(self.written.fetch_add(1, Ordering::AcqRel) + 1)
    }

    /// Returns once every write up to `written` is durable (one sync covers all the writes
    /// made before it, whoever made them).
    fn sync_to(&self, written: u64) -> Result<(), StoreError> {
        if self.durable.load(Ordering::Acquire) >= written {
            return Ok(());
        }
        let _one = self.syncing.lock().unwrap_or_else(|p| p.into_inner());
        if self.durable.load(Ordering::Acquire) >= written {
            return Ok(());
        }
        let target = self.written.load(Ordering::Acquire);
        self.file
            .sync_data()
            .map_err(|e| io_error(&self.path, "cannot sync", e))?;
        self.durable.fetch_max(target, Ordering::AcqRel);
        Ok(())
    }

    fn create(&self, persons: &[String]) -> Result<Vec<KeyState>, StoreError> {
        let mut newest = 0;
        {
            let mut slots = self.slots.write().unwrap_or_else(|p| p.into_inner());
            for p in persons {
                if slots.by_person.contains_key(p) {
                    continue;
                }
                if p.len() > PERSON_MAX {
                    return Err(StoreError::Invalid(format!(
                        "a person's stream name is at most {PERSON_MAX} bytes: {p:?}"
                    )));
                }
                let key = PersonKey::generate()
                    .map_err(|e| StoreError::Backend(format!("no random key: {e}")))?;
                let slot = slots.next;
                let written = self.write_slot(slot, &encode(LIVE, p, Some(key.bytes())))?;
                slots.next += 1;
                newest = written;
                slots.by_person.insert(
                    p.clone(),
                    Entry {
                        slot,
                        key: Some(Arc::new(key)),
                        written,
                    },
                );
            }
        }
        let (states, older) = self.lookup(persons);
        self.sync_to(newest.max(older))?;
        Ok(states)
    }

    fn put(&self, entries: Vec<(String, Option<PersonKey>)>) -> Result<(), StoreError> {
        let mut newest = 0;
        {
            let mut slots = self.slots.write().unwrap_or_else(|p| p.into_inner());
            for (person, key) in entries {
                if slots.by_person.contains_key(&person) {
                    continue;
                }
                if person.len() > PERSON_MAX {
                    return Err(StoreError::Invalid(format!(
                        "a person's stream name is at most {PERSON_MAX} bytes: {person:?}"
                    )));
                }
                let slot = slots.next;
                let bytes = match &key {
                    Some(k) => encode(LIVE, &person, Some(k.bytes())),
                    None => encode(ERASED, &person, None),
                };
                newest = self.write_slot(slot, &bytes)?;
                slots.next += 1;
                slots.by_person.insert(
                    person,
                    Entry {
                        slot,
                        key: key.map(Arc::new),
                        written: newest,
                    },
                );
            }
        }
        self.sync_to(newest)
    }

    fn destroy(&self, person: &str) -> Result<(), StoreError> {
        if person.len() > PERSON_MAX {
            return Err(StoreError::Invalid(format!(
                "a person's stream name is at most {PERSON_MAX} bytes: {person:?}"
            )));
        }
        let written = {
            let mut slots = self.slots.write().unwrap_or_else(|p| p.into_inner());
            let slot = match slots.by_person.get(person) {
                Some(e) => e.slot,
                None => {
                    slots.next += 1;
                    slots.next - 1
                }
            };
            let written = self.write_slot(slot, &encode(ERASED, person, None))?;
            slots.by_person.insert(
                person.to_string(),
                Entry {
                    slot,
                    key: None,
                    written,
                },
            );
            written
        };
        self.sync_to(written)
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| StoreError::Backend(format!("the key file's task failed: {e}")))?
}

#[async_trait]
impl KeyStore for KeyFile {
    async fn for_writing(&self, persons: &[String]) -> Result<Vec<KeyState>, StoreError> {
        let (states, newest) = self.inner.lookup(persons);
        let durable = self.inner.durable.load(Ordering::Acquire) >= newest;
        if durable && !states.iter().any(|s| matches!(s, KeyState::Absent)) {
            return Ok(states);
        }
        let inner = self.inner.clone();
        let persons = persons.to_vec();
        blocking(move || inner.create(&persons)).await
    }

    async fn for_reading(&self, persons: &[String]) -> Result<Vec<KeyState>, StoreError> {
        Ok(self.inner.lookup(persons).0)
    }

    async fn destroy(&self, person: &str) -> Result<(), StoreError> {
        let inner = self.inner.clone();
        let person = person.to_string();
        blocking(move || inner.destroy(&person)).await
    }

    async fn entries(&self) -> Result<Vec<(String, Option<PersonKey>)>, StoreError> {
        let slots = self.inner.slots.read().unwrap_or_else(|p| p.into_inner());
        let mut all: Vec<(u64, String, Option<PersonKey>)> = slots
            .by_person
            .iter()
            .map(|(p, e)| (e.slot, p.clone(), e.key.as_deref().cloned()))
            .collect();
        all.sort_by_key(|(slot, _, _)| *slot);
        Ok(all.into_iter().map(|(_, p, k)| (p, k)).collect())
    }

    async fn put(&self, entries: Vec<(String, Option<PersonKey>)>) -> Result<(), StoreError> {
        let inner = self.inner.clone();
        blocking(move || inner.put(entries)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn persons(p: &[&str]) -> Vec<String> {
        p.iter().map(|s| s.to_string()).collect()
    }

    fn live(s: &KeyState) -> [u8; 32] {
        match s {
            KeyState::Live(k) => *k.bytes(),
            other => panic!("not live: {other:?}"),
        }
    }

    #[tokio::test]
    async fn keys_survive_a_reopen_and_an_erased_one_leaves_no_byte_behind() {
        let dir = tempfile::tempdir().unwrap();
        let keys = KeyFile::open(dir.path()).unwrap();
        let got = keys
            .for_writing(&persons(&["customer-C-1", "lead-L-1"]))
            .await
            .unwrap();
        let (c1, l1) = (live(&got[0]), live(&got[1]));
        assert_ne!(c1, l1);
        // Asked again: the same keys, none created.
        let again = keys.for_writing(&persons(&["customer-C-1"])).await.unwrap();
        assert_eq!(live(&again[0]), c1);
        keys.destroy("customer-C-1").await.unwrap();
        drop(keys);

        let bytes = std::fs::read(dir.path().join(FILE_NAME)).unwrap();
        assert_eq!(
            bytes.len(),
            3 * SLOT,
            "a header and two slots, the erased one in place"
        );
        assert!(
            !bytes.windows(32).any(|w| w == c1),
            "the erased key is gone"
        );
        assert!(bytes.windows(32).any(|w| w == l1));

        let keys = KeyFile::open(dir.path()).unwrap();
        let read = keys
            .for_reading(&persons(&["customer-C-1", "lead-L-1", "lead-L-2"]))
            .await
            .unwrap();
        assert!(matches!(read[0], KeyState::Erased));
        assert_eq!(live(&read[1]), l1);
        assert!(matches!(read[2], KeyState::Absent));
        // An erased person gets no new key.
        let w = keys.for_writing(&persons(&["customer-C-1"])).await.unwrap();
        assert!(matches!(w[0], KeyState::Erased));
    }

    #[tokio::test]
    async fn a_slot_torn_by_a_crash_is_zeroed_at_open() {
        let dir = tempfile::tempdir().unwrap();
        let keys = KeyFile::open(dir.path()).unwrap();
        let got = keys.for_writing(&persons(&["lead-L-1"])).await.unwrap();
        let key = live(&got[0]);
        drop(keys);
        let path = dir.path().join(FILE_NAME);
        let mut bytes = std::fs::read(&path).unwrap();
        // Half of an erasure written: state and the first key bytes, not the checksum.
        bytes[SLOT] = ERASED;
        bytes[SLOT + 82..SLOT + 98].fill(0);
        std::fs::write(&path, &bytes).unwrap();
        let keys = KeyFile::open(dir.path()).unwrap();
        let read = keys.for_reading(&persons(&["lead-L-1"])).await.unwrap();
        assert!(matches!(read[0], KeyState::Absent));
        let bytes = std::fs::read(&path).unwrap();
        assert!(bytes[SLOT..].iter().all(|b| *b == 0));
        assert!(!bytes.windows(16).any(|w| w == &key[16..]));
    }

    #[test]
    fn a_file_that_is_not_a_key_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(FILE_NAME), b"hello").unwrap();
        assert!(matches!(
            KeyFile::open(dir.path()),
            Err(StoreError::Corrupt { .. })
        ));
    }
}
