//! What the sled store's unit tests share: a small event, and sled opened behind the store's
//! back (to damage it or take records away, as a crash or the disk would).

use std::path::Path;

use crate::ProposedEvent;

/// An `ActivityLogged` note numbered `n`.
pub(crate) fn note(n: u64) -> ProposedEvent {
    ProposedEvent {
        id: None,
        event_type: "ActivityLogged".into(),
        occurred_at: None,
        actor: None,
        data: serde_json::json!({ "kind": "note", "n": n }).into(),
        metadata: None,
        recorded_at: None,
    }
}

/// Opens the store's sled database directly, waiting for a store just dropped to let go of
/// its file lock (it may hold it for a moment longer).
pub(crate) fn raw_sled(dir: &Path) -> sled::Db {
    let mut tries = 0;
    loop {
        match sled::open(dir) {
            Ok(db) => break db,
            Err(_) if tries < 60 => {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            Err(e) => panic!("cannot reopen the store: {e}"),
        }
    }
}

#[path = "../../tests/common/disk.rs"]
mod disk;
/// Copies the store in `from` (closed) to `to`, as it is on disk.
pub(crate) use disk::copy_dir as copy_store;
