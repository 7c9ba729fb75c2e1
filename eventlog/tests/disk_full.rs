//! A full disk, for real: the store on a small tmpfs, the rest of it filled with a file.
//! Appends are refused with `StorageFull` (and health says so) while the disk is full; once
//! the file is deleted the store recovers by itself, and nothing acknowledged is lost.
//!
//! Mounting needs root (CI runs as root); elsewhere the test says so and passes.

mod common;

use std::time::{Duration, Instant};

use common::disk::Tmpfs;
use common::{note_with_id, open};
use eventlog::{EventStore, ExpectedVersion, Filter, SledStore, StoreError, StoreHealth};

/// Appends note `n`; its position and id once acknowledged.
async fn append(store: &SledStore, n: u64) -> Result<(u64, uuid::Uuid), StoreError> {
    let ev = note_with_id(n);
    let id = ev.id.unwrap();
    let out = store
        .append(&format!("deal-{}", n % 4), ExpectedVersion::Any, vec![ev])
        .await?;
    Ok((out.first_position, id))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_refuses_appends_until_space_is_back_and_loses_nothing() {
    let Some(disk) = Tmpfs::mount(48) else {
        return;
    };
    let data = disk.dir.join("data");
    let store = open(&data);
    let mut acked = Vec::new();
    for n in 0..20 {
        acked.push(append(&store, n).await.unwrap());
    }
    let filler = disk.fill();
    // The journal has room (it is written in place): appends go on until sled's next write
    // meets the full disk, within a second or so.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut n = 100;
    let refusal = loop {
        match append(&store, n).await {
            Ok(a) => acked.push(a),
            Err(e) => break e,
        }
        assert!(Instant::now() < deadline, "no append was refused");
        n += 1;
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(matches!(refusal, StoreError::StorageFull(_)), "{refusal}");
    assert!(
        matches!(store.health(), StoreHealth::StorageFull(_)),
        "{:?}",
        store.health()
    );
    let again = append(&store, 1000).await.unwrap_err();
    assert!(matches!(again, StoreError::StorageFull(_)), "{again}");
    // Reads go on (from what sled holds in memory), or say why not.
    match store.read_all(1, usize::MAX, &Filter::default()).await {
        Ok(events) => assert_eq!(events.len(), acked.len()),
        Err(e) => assert!(matches!(e, StoreError::StorageFull(_)), "{e}"),
    }

    std::fs::remove_file(filler).unwrap();
    // The next append finds room again: the store reopens its files and takes it.
    for k in 0..20 {
        acked.push(append(&store, 2000 + k).await.unwrap());
    }
    assert_eq!(store.health(), StoreHealth::Ok);
    let events = store
        .read_all(1, usize::MAX, &Filter::default())
        .await
        .unwrap();
    for &(position, id) in &acked {
        assert_eq!(events[position as usize - 1].id, id, "position {position}");
    }
    drop(store);

    let store = open(&data);
    let report = store.verify(&mut |_| {}).unwrap();
    let events = store
        .read_all(1, usize::MAX, &Filter::default())
        .await
        .unwrap();
    assert_eq!(report.events, events.len() as u64);
    for &(position, id) in &acked {
        assert_eq!(
            events[position as usize - 1].id,
            id,
            "position {position} after reopening"
        );
    }
}
