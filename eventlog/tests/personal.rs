//! Personal data on the PostgreSQL store (SPEC §7): sealed in the `events` table, keys in
//! `personal_keys` only; two nodes read the text; an erasure on one is seen by the other;
//! afterwards no row and no file of the table holds the key; `verify` passes.

mod common;

use std::sync::Arc;

use common::stores::PgSchema;
use eventlog::{
    EnvelopeOnly, EraseError, EventStore, ExpectedVersion, PgStore, ProposedEvent, Sealed,
};
use serde_json::{json, Value};

const ZHUGE: &str = "Zhuge Liang Kongming";

fn event(ty: &str, data: Value) -> ProposedEvent {
    serde_json::from_value(json!({"type": ty, "actor": "wukong", "data": data})).unwrap()
}

async fn node(url: &str) -> (Arc<PgStore>, Sealed) {
    let pg = Arc::new(PgStore::open(url, Arc::new(EnvelopeOnly)).await.unwrap());
    let keys = Arc::new(pg.personal_keys());
    let sealed = Sealed::new(pg.clone(), keys);
    (pg, sealed)
}

async fn sql(schema: &PgSchema) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(&common::stores::pg_url(), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    client
        .batch_execute(&format!("SET search_path TO {}", schema.name))
        .await
        .unwrap();
    client
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_keeps_names_sealed_and_an_erasure_removes_the_key_for_every_node() {
    let Some(schema) = PgSchema::new().await else {
        return;
    };
    let url = schema.url();
    let (pg, a) = node(&url).await;
    a.append(
        "customer-C-1",
        ExpectedVersion::NoStream,
        vec![
            event(
                "CustomerRegistered",
                json!({"name": ZHUGE, "region": "west"}),
            ),
            event(
                "ActivityLogged",
                json!({"kind": "call", "rep": "wukong", "summary": "Zhuge called"}),
            ),
        ],
    )
    .await
    .unwrap();
    a.append(
        "lead-L-1",
        ExpectedVersion::NoStream,
        vec![event(
            "LeadCaptured",
            json!({"channel": "web", "name": "Diaochan"}),
        )],
    )
    .await
    .unwrap();

    let db = sql(&schema).await;
    let records: Vec<Vec<u8>> = db
        .query("SELECT record FROM events ORDER BY position", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(records.len(), 3);
    for r in &records {
        assert!(!contains(r, b"Zhuge") && !contains(r, b"Diaochan"));
    }
    assert!(contains(&records[0], b"west"), "clear fields stay clear");
    let key: Vec<u8> = db
        .query_one(
            "SELECT key FROM personal_keys WHERE person = 'customer-C-1'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(key.len(), 32);

    // Another node reads the text (the key from the table), and caches it.
    let (_pg_b, b) = node(&url).await;
    let read = b.read_stream("customer-C-1", 0, 10).await.unwrap();
    assert_eq!(read[0].data.value()["name"], ZHUGE);

    let done = a
        .erase("customer-C-1", "GDPR art. 17", "dpo")
        .await
        .unwrap();
    assert_eq!(
        (done.events, done.fields.clone()),
        (2, vec!["name".to_string(), "summary".to_string()])
    );
    assert!(matches!(
        a.erase("customer-C-1", "again", "dpo").await,
        Err(EraseError::AlreadyErased { .. })
    ));
    assert!(matches!(
        a.erase("customer-C-9", "x", "dpo").await,
        Err(EraseError::NotFound(_))
    ));

    // The other node sees the erasure with the event that announces it.
    let read = b.read_stream("customer-C-1", 0, 10).await.unwrap();
    assert_eq!(
        read[0].data.value(),
        &json!({"name": "[erased]", "region": "west"})
    );
    assert_eq!(read[1].data.value()["summary"], "[erased]");
    assert_eq!(read[2].event_type, "PersonalDataErased");
    let lead = b.read_stream("lead-L-1", 0, 10).await.unwrap();
    assert_eq!(lead[0].data.value()["name"], "Diaochan");

    // The key: in no row, and in no file of the table (rewritten by the erasure).
    let row: Option<Vec<u8>> = db
        .query_one(
            "SELECT key FROM personal_keys WHERE person = 'customer-C-1'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(row, None);
    let dir: String = db
        .query_one("SHOW data_directory", &[])
        .await
        .unwrap()
        .get(0);
    let file: String = db
        .query_one("SELECT pg_relation_filepath('personal_keys')", &[])
        .await
        .unwrap()
        .get(0);
    db.batch_execute("CHECKPOINT").await.unwrap();
    let table = std::path::Path::new(&dir).join(file);
    let bytes = std::fs::read(&table).unwrap_or_else(|e| panic!("{}: {e}", table.display()));
    assert!(
        !contains(&bytes, &key),
        "the erased key is in {}",
        table.display()
    );
    assert!(
        contains(&bytes, b"lead-L-1"),
        "the table file is the live one"
    );

    let report = pg.verify(&mut |_| {}).await.unwrap();
    assert_eq!(report.events, 5, "3 events, the erasure and its audit");
}
