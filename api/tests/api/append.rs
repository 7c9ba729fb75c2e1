//! Appending and reading back, idempotency, conflicts, rule violations.

use std::sync::Arc;

use eventlog::memory::MemoryStore;
use eventlog::rules::DomainRules;
use eventlog::{AppendValidator, LogView, RecordedEvent, StoreError, ValidateError};
use serde_json::json;
use uuid::Uuid;

use crate::helpers::*;

fn call(rep: &str) -> serde_json::Value {
    json!({"type": "ActivityLogged", "data": {"kind": "call", "rep": rep}})
}

fn deal_opened(customer: &str, owner: &str) -> serde_json::Value {
    json!({"type": "DealOpened", "data": {"customer_id": customer, "owner": owner, "title": "t",
        "amount": 10, "stage": "qualified"}})
}

/// An organisation with rep `a`, customer C1 of hers and deal D1 opened on it (version 0):
/// positions 1-2 (org), 3 (customer), 4 (deal).
async fn app_with_a_deal() -> TestApp {
    let app = TestApp::new();
    assert_eq!(app.seed_org(&["a"]).await, 2);
    assert_eq!(app.seed_customer("C1", "a").await, 3);
    app.seed("deal-D1", json!([deal_opened("C1", "a")])).await;
    app
}

#[tokio::test]
async fn append_then_read_the_stream_and_the_log() {
    let app = TestApp::new();
    // Positions 1-2: the organisation (pipeline, wukong); 3: wukong's customer C1.
    assert_eq!(app.seed_org(&["wukong"]).await, 2);
    assert_eq!(app.seed_customer("C1", "wukong").await, 3);
    let r = app
        .append(
            "deal-D1",
            ADMIN,
            json!({"expected_version": "no_stream", "events": [
                {"type": "DealOpened", "actor": "wukong", "occurred_at": "2026-06-01T08:00:00Z",
                 "data": {"customer_id": "C1", "owner": "wukong", "title": "t", "amount": 10, "stage": "qualified"},
                 "metadata": {"correlation_id": "c-1"}},
                call("wukong")
            ]}),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert_eq!(
        r.json(),
        json!({"first_position": 4, "last_position": 5, "next_expected_version": 1})
    );

    let s = app.get("/v1/streams/deal-D1", ADMIN).await;
    assert_eq!(s.status, 200);
    let page = s.json();
    assert_eq!(page["version"], 1);
    assert_eq!(page["next_version"], 2);
    let evs = page["events"].as_array().unwrap();
    assert_eq!(evs.len(), 2);
    assert_eq!(evs[0]["type"], "DealOpened");
    assert_eq!(evs[0]["occurred_at"], "2026-06-01T08:00:00Z");
    assert_eq!(evs[0]["metadata"]["correlation_id"], "c-1");
    assert_eq!(evs[1]["actor"], "admin", "actor defaults to the caller");
    assert_eq!(evs[1]["version"], 1);

    let one = app
        .get("/v1/streams/deal-D1?from_version=1&limit=1", ADMIN)
        .await
        .json();
    assert_eq!(one["events"][0]["position"], 5);

    // Position 6: a customer in the pool.
    app.seed(
        "customer-C2",
        json!([{"type": "CustomerRegistered", "data": {"name": "x"}}]),
    )
    .await;
    let log = app
        .get("/v1/events?from_position=0&limit=2", ADMIN)
        .await
        .json();
    assert_eq!(log["events"].as_array().unwrap().len(), 2);
    assert_eq!(log["next_position"], 3);
    let rest = app.get("/v1/events?from_position=6", ADMIN).await.json();
    assert_eq!(rest["events"][0]["stream"], "customer-C2");
    assert_eq!(rest["next_position"], 7);
    let typed = app
        .get(
            "/v1/events?types=CustomerRegistered,DealOpened&stream_prefix=deal-",
            ADMIN,
        )
        .await
        .json();
    let types: Vec<_> = typed["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].clone())
        .collect();
    assert_eq!(types, vec![json!("DealOpened")]);
    assert_eq!(typed["next_position"], 7, "the whole log was considered");

    app.get("/v1/streams/deal-NOPE", ADMIN).await.problem(404);
}

#[tokio::test]
async fn an_id_already_in_the_log_returns_the_original_positions() {
    let app = TestApp::new();
    app.seed(
        "customer-C1",
        json!([{"type": "CustomerRegistered", "data": {"name": "x"}}]),
    )
    .await;
    let id = Uuid::now_v7().to_string();
    let body = json!({"events": [{"id": id, "type": "NpsRecorded", "data": {"score": 9}}]});
    let first = app.append("customer-C1", ADMIN, body.clone()).await;
    assert_eq!(first.status, 201);
    app.seed(
        "customer-C1",
        json!([{"type": "NpsRecorded", "data": {"score": 3}}]),
    )
    .await;
    let again = app.append("customer-C1", ADMIN, body).await;
    assert_eq!(again.status, 201);
    assert_eq!(again.json(), first.json());

    let other = app
        .append(
            "customer-C1",
            ADMIN,
            json!({"events": [{"id": id, "type": "NpsRecorded", "data": {"score": 1}}]}),
        )
        .await
        .problem(409);
    assert_eq!(other["id"], id);
    assert_eq!(other["position"], 2);

    // Other envelope content is other content too (SPEC §1.1); the same given again is not.
    let with = |extra: serde_json::Value| {
        let mut ev = json!({"id": id, "type": "NpsRecorded", "data": {"score": 9}});
        for (k, v) in extra.as_object().unwrap() {
            ev[k] = v.clone();
        }
        json!({ "events": [ev] })
    };
    for extra in [
        json!({"actor": "bajie"}),
        json!({"occurred_at": "2020-01-01T00:00:00Z"}),
        json!({"metadata": {"source": "crm"}}),
    ] {
        let r = app.append("customer-C1", ADMIN, with(extra.clone())).await;
        assert_eq!(r.status, 409, "{extra}");
    }
    let recorded = app.get("/v1/streams/customer-C1", ADMIN).await.json();
    let actor = recorded["events"][1]["actor"].clone();
    assert_eq!(recorded["events"][1]["id"], id);
    let same = app
        .append("customer-C1", ADMIN, with(json!({ "actor": actor })))
        .await;
    assert_eq!(
        same.status, 201,
        "the recorded actor {actor} given explicitly"
    );
}

#[tokio::test]
async fn a_stale_expected_version_is_a_409_naming_both_versions() {
    let app = app_with_a_deal().await;
    app.seed("deal-D1", json!([call("a"), call("a")])).await;
    let p = app
        .append(
            "deal-D1",
            ADMIN,
            json!({"expected_version": 1, "events": [call("a")]}),
        )
        .await
        .problem(409);
    assert_eq!(p["expected"], 1);
    assert_eq!(p["actual"], 2);
    assert_eq!(p["stream"], "deal-D1");
    let p = app
        .append(
            "deal-D1",
            ADMIN,
            json!({"expected_version": "no_stream", "events": [call("a")]}),
        )
        .await
        .problem(409);
    assert_eq!(p["expected"], "no_stream");
    let p = app
        .append(
            "deal-D9",
            ADMIN,
            json!({"expected_version": 0, "events": [call("a")]}),
        )
        .await
        .problem(409);
    assert_eq!(p["actual"], serde_json::Value::Null);
    let ok = app
        .append(
            "deal-D1",
            ADMIN,
            json!({"expected_version": 2, "events": [call("a")]}),
        )
        .await;
    assert_eq!(ok.json()["next_expected_version"], 3);
}

#[tokio::test]
async fn a_broken_rule_is_a_422_with_rule_field_value_and_index_and_nothing_is_written() {
    let app = app_with_a_deal().await;
    let p = app
        .append(
            "deal-D1",
            ADMIN,
            json!({"events": [call("a"), {"type": "DealAmountChanged", "data": {"amount": -5}}]}),
        )
        .await
        .problem(422);
    // The domain's own rule (SPEC's catalogue), not a stand-in's.
    assert_eq!(p["rule"], "value.amount_non_negative");
    assert!(domain::RULES.iter().any(|r| r.code == p["rule"]), "{p}");
    assert_eq!(p["field"], "data.amount");
    assert_eq!(p["value"], "-5.00", "an amount, shown with its 2 decimals");
    assert_eq!(p["index"], 1);
    // Nothing of the batch was written: the deal is still at its opening event.
    let stream = app.get("/v1/streams/deal-D1", ADMIN).await.json();
    assert_eq!(stream["version"], 0);
    assert_eq!(app.get("/healthz", "").await.json()["last_position"], 4);
}

#[tokio::test]
async fn oversized_metadata_is_refused_by_the_store() {
    let app = TestApp::new();
    let big = "x".repeat(5000);
    let p = app
        .append(
            "deal-D1",
            ADMIN,
            json!({"events": [{"type": "X", "data": {}, "metadata": {"m": big}}]}),
        )
        .await
        .problem(422);
    assert_eq!(p["field"], "metadata");
    assert_eq!(p["index"], 0);
}

/// The real domain rules, shown a log whose reads fail (a disk or database error while the
/// rules decide a batch).
struct RulesOverFailingReads(DomainRules);

struct FailingReads;

const SECRET: &str = "/srv/secret/db: Input/output error";

impl LogView for FailingReads {
    fn stream(&self, _: &str) -> Result<Vec<RecordedEvent>, StoreError> {
        Err(StoreError::Backend(SECRET.into()))
    }
    fn streams_with_prefix(&self, _: &str) -> Result<Vec<RecordedEvent>, StoreError> {
        Err(StoreError::Backend(SECRET.into()))
    }
}

impl AppendValidator for RulesOverFailingReads {
    fn validate(
        &self,
        _: &dyn LogView,
        stream: &str,
        batch: &[RecordedEvent],
    ) -> Result<(), ValidateError> {
        self.0.validate(&FailingReads, stream, batch)
    }
}

#[tokio::test]
async fn a_failed_read_while_validating_is_a_500_with_nothing_internal_in_the_body() {
    let store =
        MemoryStore::with_validator(Arc::new(RulesOverFailingReads(DomainRules::default())));
    let app = TestApp::with_store(Arc::new(store), tempfile::tempdir().unwrap());
    let r = app
        .append(
            "org-acme",
            ADMIN,
            json!({"events": [{"type": "RepJoined", "data": {"rep": "wukong", "name": "Wukong", "team": "east"}}]}),
        )
        .await;
    let p = r.problem(500);
    let body = String::from_utf8_lossy(&r.body);
    for internal in ["secret", "Input/output", "storage", "read"] {
        assert!(!body.contains(internal), "{internal:?} in {body}");
    }
    assert!(p.get("rule").is_none(), "not a rule violation: {p}");
    app.get("/v1/streams/org-acme", ADMIN).await.problem(404);
}
