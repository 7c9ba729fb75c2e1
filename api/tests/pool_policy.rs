//! The pool release policy appends `CustomerReleased` (actor `system`) for owned customers
//! idle longer than the configured days, once, and leaves active ones alone.

use std::sync::Arc;

use api::projector::Projector;
use chrono::{Duration, Utc};
use domain::{ExpectedVersion, ProposedEvent};
use eventlog::{EventStore, SledStore};
use serde_json::json;

fn event(ty: &str, days_ago: i64, data: serde_json::Value) -> ProposedEvent {
    ProposedEvent {
        id: None,
        event_type: ty.into(),
        occurred_at: Some(Utc::now() - Duration::days(days_ago)),
        actor: Some("wukong".into()),
        data: data.into(),
        metadata: None,
        recorded_at: None,
    }
}

#[tokio::test]
async fn idle_owned_customers_go_back_to_the_pool_once() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn EventStore> = Arc::new(
        SledStore::open(
            dir.path(),
            Arc::new(eventlog::rules::DomainRules::default()),
        )
        .unwrap(),
    );
    // wukong joined: the rules accept only reps who did (`rep.active`).
    store
        .append(
            "org-acme",
            ExpectedVersion::NoStream,
            vec![event(
                "RepJoined",
                90,
                json!({"rep": "wukong", "name": "Sun Wukong", "team": "east"}),
            )],
        )
        .await
        .unwrap();
    let call = json!({"kind": "call", "rep": "wukong"});
    store
        .append(
            "customer-IDLE",
            ExpectedVersion::NoStream,
            vec![
                event(
                    "CustomerRegistered",
                    60,
                    json!({"name": "Idle", "owner": "wukong"}),
                ),
                event("ActivityLogged", 45, call.clone()),
            ],
        )
        .await
        .unwrap();
    store
        .append(
            "customer-BUSY",
            ExpectedVersion::NoStream,
            vec![
                event(
                    "CustomerRegistered",
                    60,
                    json!({"name": "Busy", "owner": "wukong"}),
                ),
                event("ActivityLogged", 3, call),
            ],
        )
        .await
        .unwrap();
    store
        .append(
            "customer-POOL",
            ExpectedVersion::NoStream,
            vec![event("CustomerRegistered", 60, json!({"name": "In pool"}))],
        )
        .await
        .unwrap();

    let projector = Arc::new(Projector::in_memory());
    projector.refresh(store.as_ref()).await.unwrap();
    let released = api::pool_policy::release_due(store.as_ref(), &projector, 30)
        .await
        .unwrap();
    assert_eq!(released, 1);
    let idle = store.read_stream("customer-IDLE", 0, 10).await.unwrap();
    let last = idle.last().unwrap();
    assert_eq!(last.event_type, "CustomerReleased");
    assert_eq!(last.actor, "system");
    assert_eq!(last.data, json!({"reason": "no_follow_up"}));
    assert_eq!(
        store
            .read_stream("customer-BUSY", 0, 10)
            .await
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        store
            .read_stream("customer-POOL", 0, 10)
            .await
            .unwrap()
            .len(),
        1
    );

    // Run again after the model saw the release: nothing more to do.
    projector.refresh(store.as_ref()).await.unwrap();
    assert_eq!(
        api::pool_policy::release_due(store.as_ref(), &projector, 30)
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        store
            .read_stream("customer-IDLE", 0, 10)
            .await
            .unwrap()
            .len(),
        3
    );
}
