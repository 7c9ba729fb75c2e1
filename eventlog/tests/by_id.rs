//! `event_by_id`: finds store-generated and client-supplied ids, durable events only.

#[macro_use]
mod common;

use common::{note, note_with_id};
use eventlog::ExpectedVersion;

contract! {
async fn finds_generated_and_client_ids(backend: Backend) {
    let store = backend.open().await;
    let client = note_with_id(1);
    let client_id = client.id.unwrap();
    store
        .append(
            "customer-C-1",
            ExpectedVersion::Any,
            vec![client, note(2), note(3)],
        )
        .await
        .unwrap();
    store
        .append("customer-C-2", ExpectedVersion::Any, vec![note(4)])
        .await
        .unwrap();
    let all = store.read_all(1, 100, &Default::default()).await.unwrap();
    assert_eq!(all.len(), 4);
    for ev in &all {
        let found = store.event_by_id(ev.id).await.unwrap().expect("indexed");
        assert_eq!(&found, ev);
    }
    assert_eq!(
        store
            .event_by_id(client_id)
            .await
            .unwrap()
            .unwrap()
            .position,
        1
    );
    assert!(store
        .event_by_id(uuid::Uuid::now_v7())
        .await
        .unwrap()
        .is_none());
    assert!(store
        .event_by_id(uuid::Uuid::nil())
        .await
        .unwrap()
        .is_none());
}
}
