//! Damage below the log: a bit flipped in sled's own file. Opening and verifying the store
//! either finds every event (the bit was in space sled does not use, or the journal gives the
//! events back) or fails with `Corrupt`: never a panic (sled 0.34 panics on some damaged
//! data), never another error.

mod common;

use std::path::Path;
use std::sync::Arc;

use common::disk::copy_dir;
use common::note;
use eventlog::{EnvelopeOnly, EventStore, ExpectedVersion, ProposedEvent, SledStore, StoreError};

const GROUPS: u64 = 300;
const PER_GROUP: u64 = 10;

/// A store of several sled segments written by one process (sled has written no snapshot).
async fn store(dir: &Path) {
    let store = SledStore::open(dir, Arc::new(EnvelopeOnly)).unwrap();
    let filler = "f".repeat(500);
    for g in 0..GROUPS {
        let events = (0..PER_GROUP)
            .map(|k| ProposedEvent {
                data: serde_json::json!({ "n": g * PER_GROUP + k, "filler": filler }).into(),
                ..note(0)
            })
            .collect();
        store
            .append(&format!("deal-{}", g % 7), ExpectedVersion::Any, events)
            .await
            .unwrap();
    }
}

/// Opens and verifies the store in `dir`: `Ok` with every event, or the `Corrupt` error.
fn open_and_verify(dir: &Path) -> Result<(), (u64, String)> {
    let corrupt = |e: StoreError| match e {
        StoreError::Corrupt { position, reason } => (position, reason),
        e => panic!("not Corrupt: {e}"),
    };
    let store = SledStore::open(dir, Arc::new(EnvelopeOnly)).map_err(corrupt)?;
    let report = store.verify(&mut |_| {}).map_err(corrupt)?;
    assert_eq!(report.events, GROUPS * PER_GROUP, "a short log verified");
    Ok(())
}

#[tokio::test]
async fn a_flipped_bit_in_sleds_file_is_corrupt_or_harmless_never_a_panic() {
    let template = tempfile::tempdir().unwrap();
    store(template.path()).await;
    let len = std::fs::metadata(template.path().join("db")).unwrap().len();
    let mut corrupt = 0;
    for k in 0..48 {
        let offset = k * len / 48 + 13 * k;
        let dir = tempfile::tempdir().unwrap();
        copy_dir(template.path(), dir.path());
        let db = dir.path().join("db");
        let mut bytes = std::fs::read(&db).unwrap();
        bytes[offset as usize] ^= 1 << (k % 8);
        std::fs::write(&db, bytes).unwrap();
        if let Err((position, reason)) = open_and_verify(dir.path()) {
            assert!(position <= GROUPS * PER_GROUP, "{position}: {reason}");
            corrupt += 1;
        }
    }
    assert!(corrupt > 0, "no flip was noticed");
}
