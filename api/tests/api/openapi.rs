//! The OpenAPI document against the server: the document is a valid OpenAPI 3.1 document
//! (checked against the OpenAPI Initiative's schema, `fixtures/openapi-3.1.schema.json`),
//! and a real answer of every operation, on the demo organisation's log, has a documented
//! status, content type and a body that validates against the documented schema
//! (JSON Schema 2020-12). A type changed without its schema, or a status left undocumented,
//! fails here.

use std::collections::BTreeSet;

use axum::http::Method;
use serde_json::{json, Value};

use crate::deals::demo_app;
use crate::helpers::*;

/// Checks answers against the document and remembers which operations were checked.
struct Checker {
    doc: Value,
    seen: BTreeSet<(String, String)>,
}

impl Checker {
    fn new(doc: Value) -> Checker {
        Checker {
            doc,
            seen: BTreeSet::new(),
        }
    }

    /// Asserts that `reply` is what the document says `method template` answers.
    fn check(&mut self, method: &str, template: &str, reply: &Reply) {
        let status = reply.status.as_u16().to_string();
        let operation = &self.doc["paths"][template][method];
        assert!(
            operation.is_object(),
            "{method} {template} is not documented"
        );
        let response = &operation["responses"][&status];
        assert!(
            response.is_object(),
            "{method} {template}: status {status} is not documented (body {})",
            String::from_utf8_lossy(&reply.body)
        );
        self.seen.insert((method.to_string(), template.to_string()));
        let Some(content) = response.get("content").and_then(Value::as_object) else {
            assert!(
                reply.body.is_empty(),
                "{method} {template} {status}: a body where none is documented"
            );
            return;
        };
        let media = reply.content_type().split(';').next().unwrap_or("").trim();
        let Some(entry) = content.get(media) else {
            panic!(
                "{method} {template} {status}: content type {media:?} is not among {:?}",
                content.keys().collect::<Vec<_>>()
            );
        };
        if !media.ends_with("json") {
            return;
        }
        let body = reply.json();
        let schema = json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "components": self.doc["components"],
            "allOf": [entry["schema"]],
        });
        let validator = jsonschema::options()
            .should_validate_formats(true)
            .build(&schema)
            .unwrap_or_else(|e| panic!("{method} {template} {status}: invalid schema: {e}"));
        let errors: Vec<String> = validator
            .iter_errors(&body)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .take(5)
            .collect();
        assert!(
            errors.is_empty(),
            "{method} {template} {status}: the body does not match its schema: {errors:#?}"
        );
    }

    /// Every documented operation, as (method, path template).
    fn operations(&self) -> BTreeSet<(String, String)> {
        let mut out = BTreeSet::new();
        for (path, item) in self.doc["paths"].as_object().unwrap() {
            for method in item.as_object().unwrap().keys() {
                out.insert((method.clone(), path.clone()));
            }
        }
        out
    }
}

#[tokio::test]
async fn the_document_is_valid_openapi_3_1() {
    let app = TestApp::new();
    let doc = app.get("/openapi.json", "").await.json();
    let meta: Value =
        serde_json::from_str(include_str!("../fixtures/openapi-3.1.schema.json")).unwrap();
    let validator = jsonschema::validator_for(&meta).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(&doc)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .take(10)
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
    // Every component schema is a valid JSON Schema 2020-12 schema on its own.
    for (name, schema) in doc["components"]["schemas"].as_object().unwrap() {
        let standalone = json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "components": doc["components"],
            "allOf": [schema],
        });
        if let Err(e) = jsonschema::validator_for(&standalone) {
            panic!("schema {name}: {e}");
        }
    }
    // Each event type's `data` is tied to its `type`: one alternative per type.
    let alternatives = doc["components"]["schemas"]["Event"]["oneOf"]
        .as_array()
        .expect("Event is a oneOf");
    let types: BTreeSet<&str> = alternatives
        .iter()
        .map(|a| a["properties"]["type"]["enum"][0].as_str().unwrap())
        .collect();
    let known: BTreeSet<&str> = domain::events::EVENT_TYPES
        .iter()
        .map(|(t, _)| *t)
        .collect();
    assert_eq!(types, known);
}

#[tokio::test]
async fn a_real_answer_of_every_operation_matches_the_document() {
    let app = demo_app().await;
    let mut c = Checker::new(app.get("/openapi.json", "").await.json());
    let get = |path: &str| {
        let (app, path) = (&app, path.to_string());
        async move { app.get(&path, ADMIN).await }
    };

    // Reads of the log.
    let log = get("/v1/events?limit=1000").await;
    c.check("get", "/v1/events", &log);
    c.check("get", "/v1/events", &get("/v1/events?limit=0").await);
    // Every event type the demo log holds, each `data` against the schema of its type.
    let mut from = 1;
    let mut types = BTreeSet::new();
    loop {
        let page = get(&format!("/v1/events?from_position={from}&limit=1000")).await;
        c.check("get", "/v1/events", &page);
        let body = page.json();
        for e in body["events"].as_array().unwrap() {
            types.insert(e["type"].as_str().unwrap().to_string());
        }
        from = body["next_position"].as_u64().unwrap();
        if from > body["head_position"].as_u64().unwrap() {
            break;
        }
    }
    assert!(types.len() >= 20, "the demo log has only {types:?}");

    let deals = get("/v1/deals?limit=5").await;
    c.check("get", "/v1/deals", &deals);
    c.check("get", "/v1/deals", &get("/v1/deals?limit=nope").await);
    let won = get("/v1/deals?status=won&limit=1").await.json();
    let deal = won["deals"][0].clone();
    let (deal_id, customer_id, rep) = (
        deal["id"].as_str().unwrap().to_string(),
        deal["customer_id"].as_str().unwrap().to_string(),
        deal["owner"].as_str().unwrap().to_string(),
    );
    c.check(
        "get",
        "/v1/streams/{stream}",
        &get(&format!("/v1/streams/deal-{deal_id}")).await,
    );
    c.check(
        "get",
        "/v1/streams/{stream}",
        &get("/v1/streams/deal-nobody").await,
    );
    c.check(
        "get",
        "/v1/deals/{id}",
        &get(&format!("/v1/deals/{deal_id}")).await,
    );
    c.check(
        "get",
        "/v1/deals/{id}",
        &get(&format!("/v1/deals/{deal_id}?as_of=2026-01-01T00:00:00Z")).await,
    );
    c.check("get", "/v1/deals/{id}", &get("/v1/deals/nobody").await);
    c.check(
        "get",
        "/v1/deals/{id}/replay",
        &get(&format!("/v1/deals/{deal_id}/replay")).await,
    );
    c.check(
        "get",
        "/v1/customers/{id}",
        &get(&format!("/v1/customers/{customer_id}")).await,
    );
    c.check(
        "get",
        "/v1/customers/{id}",
        &get("/v1/customers/bad%20id").await,
    );
    c.check(
        "get",
        "/v1/customers/{id}/timeline",
        &get(&format!("/v1/customers/{customer_id}/timeline?limit=50")).await,
    );
    c.check("get", "/v1/pool", &get("/v1/pool").await);

    // Every report, with and without parameters, and a bad one.
    for (name, query) in [
        ("funnel", "group_by=rep"),
        ("reps", "months=6"),
        ("pipeline", "stale_days=7"),
        ("channels", "from=2026-01-01T00:00:00Z"),
        ("win-loss", "to=2026-06-01T00:00:00Z"),
        ("l2c", ""),
        ("activity", ""),
        ("pool", ""),
        ("service", "group_by=rep"),
        ("follow-up", &format!("rep={rep}")),
    ] {
        let template = format!("/v1/reports/{name}");
        c.check("get", &template, &get(&format!("{template}?{query}")).await);
        c.check(
            "get",
            &template,
            &get(&format!("{template}?as_of=yesterday")).await,
        );
    }
    let service = app.token("service", "billing");
    c.check(
        "get",
        "/v1/reports/funnel",
        &app.get("/v1/reports/funnel", &service).await,
    );
    c.check(
        "get",
        "/v1/reports/follow-up",
        &get("/v1/reports/follow-up?rep=ghost").await,
    );

    // Appends: created, conflict, rule violated, malformed.
    let append = |stream: &str, body: Value| {
        let (stream, body) = (stream.to_string(), body.to_string());
        let app = &app;
        async move {
            app.call(request(
                Method::POST,
                &format!("/v1/streams/{stream}/events"),
                Some(ADMIN),
                Some(body),
            ))
            .await
        }
    };
    let t = "/v1/streams/{stream}/events";
    let nps = json!({"events": [{"type": "NpsRecorded", "data": {"score": 9}}]});
    c.check(
        "post",
        t,
        &append(&format!("customer-{customer_id}"), nps.clone()).await,
    );
    let stale = json!({"expected_version": 0, "events": nps["events"]});
    c.check(
        "post",
        t,
        &append(&format!("customer-{customer_id}"), stale).await,
    );
    let bad_stage =
        json!({"events": [{"type": "DealStageChanged", "data": {"from": "x", "to": "y"}}]});
    c.check(
        "post",
        t,
        &append(&format!("deal-{deal_id}"), bad_stage).await,
    );
    c.check(
        "post",
        t,
        &append("customer-X", json!({"events": "no"})).await,
    );
    c.check(
        "post",
        t,
        &app.call(request(
            Method::POST,
            "/v1/streams/customer-X/events",
            None,
            Some("{}".into()),
        ))
        .await,
    );

    // Consumers.
    let put = |name: &str| {
        request(
            Method::PUT,
            &format!("/v1/consumers/{name}"),
            Some(ADMIN),
            None,
        )
    };
    c.check(
        "put",
        "/v1/consumers/{name}",
        &app.call(put("billing")).await,
    );
    c.check(
        "put",
        "/v1/consumers/{name}",
        &app.call(put("billing")).await,
    );
    c.check(
        "put",
        "/v1/consumers/{name}",
        &app.call(put("bad%20name")).await,
    );
    c.check(
        "post",
        "/v1/consumers/{name}/ack",
        &app.post("/v1/consumers/billing/ack", ADMIN, r#"{"position": 3}"#)
            .await,
    );
    c.check(
        "post",
        "/v1/consumers/{name}/ack",
        &app.post("/v1/consumers/ghost/ack", ADMIN, r#"{"position": 3}"#)
            .await,
    );
    c.check(
        "get",
        "/v1/consumers/{name}",
        &get("/v1/consumers/billing").await,
    );
    c.check("get", "/v1/consumers", &get("/v1/consumers").await);
    c.check(
        "get",
        "/v1/consumers",
        &app.get("/v1/consumers", &app.token("rep", "x")).await,
    );
    c.check(
        "post",
        "/v1/consumers/{name}/reset",
        &app.post("/v1/consumers/billing/reset", ADMIN, r#"{"position": 1}"#)
            .await,
    );
    c.check(
        "post",
        "/v1/consumers/{name}/reset",
        &app.post(
            "/v1/consumers/billing/reset",
            ADMIN,
            r#"{"position": 99999999}"#,
        )
        .await,
    );
    let delete = |path: &str| request(Method::DELETE, path, Some(ADMIN), None);
    c.check(
        "delete",
        "/v1/consumers/{name}",
        &app.call(delete("/v1/consumers/billing")).await,
    );
    c.check(
        "delete",
        "/v1/consumers/{name}",
        &app.call(delete("/v1/consumers/billing")).await,
    );

    // Tokens.
    let issued = app
        .post(
            "/v1/tokens",
            ADMIN,
            r#"{"role": "analyst", "subject": "bi"}"#,
        )
        .await;
    c.check("post", "/v1/tokens", &issued);
    c.check(
        "post",
        "/v1/tokens",
        &app.post("/v1/tokens", ADMIN, r#"{"role": "king"}"#).await,
    );
    c.check("get", "/v1/tokens", &get("/v1/tokens").await);
    let id = issued.json()["id"].as_str().unwrap().to_string();
    c.check(
        "delete",
        "/v1/tokens/{id}",
        &app.call(delete(&format!("/v1/tokens/{id}"))).await,
    );
    c.check(
        "delete",
        "/v1/tokens/{id}",
        &app.call(delete("/v1/tokens/0000000000000000")).await,
    );

    // Webhooks.
    let hook = app
        .post(
            "/v1/webhooks",
            ADMIN,
            r#"{"url": "http://127.0.0.1:9/hook", "types": ["DealWon"]}"#,
        )
        .await;
    c.check("post", "/v1/webhooks", &hook);
    c.check(
        "post",
        "/v1/webhooks",
        &app.post("/v1/webhooks", ADMIN, r#"{"url": "ftp://x"}"#)
            .await,
    );
    let id = hook.json()["id"].as_str().unwrap().to_string();
    c.check("get", "/v1/webhooks", &get("/v1/webhooks").await);
    c.check(
        "get",
        "/v1/webhooks/{id}",
        &get(&format!("/v1/webhooks/{id}")).await,
    );
    c.check(
        "get",
        "/v1/webhooks/{id}/deliveries",
        &get(&format!("/v1/webhooks/{id}/deliveries")).await,
    );
    c.check(
        "delete",
        "/v1/webhooks/{id}",
        &app.call(delete(&format!("/v1/webhooks/{id}"))).await,
    );
    c.check(
        "get",
        "/v1/webhooks/{id}",
        &get(&format!("/v1/webhooks/{id}")).await,
    );

    // Who the caller is.
    c.check("get", "/v1/me", &get("/v1/me").await);
    // Erasure, on a store that seals personal data (the demo's does not): a customer and a
    // lead, each twice (the second is a 409), then nobody (404).
    let (sealed, _) = TestApp::sealed();
    for (stream, event) in [
        (
            "customer-C-1",
            r#"{"type": "CustomerRegistered", "data": {"name": "Acme"}}"#,
        ),
        (
            "lead-L-1",
            r#"{"type": "LeadCaptured", "data": {"channel": "web", "name": "Li Lei"}}"#,
        ),
    ] {
        let body = format!(r#"{{"events": [{event}]}}"#);
        let r = sealed
            .post(&format!("/v1/streams/{stream}/events"), ADMIN, &body)
            .await;
        assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    }
    for (template, path) in [
        ("/v1/customers/{id}/erase", "/v1/customers/C-1/erase"),
        ("/v1/customers/{id}/erase", "/v1/customers/C-1/erase"),
        ("/v1/leads/{id}/erase", "/v1/leads/L-1/erase"),
        ("/v1/customers/{id}/erase", "/v1/customers/nobody/erase"),
    ] {
        let reply = sealed.post(path, ADMIN, r#"{"reason": "asked"}"#).await;
        assert!(
            [200, 404, 409].contains(&reply.status.as_u16()),
            "{path}: {}",
            reply.status
        );
        c.check("post", template, &reply);
    }

    // Operations.
    c.check(
        "post",
        "/v1/admin/rebuild",
        &app.post("/v1/admin/rebuild", ADMIN, "").await,
    );
    c.check("get", "/healthz", &get("/healthz").await);
    c.check("get", "/metrics", &get("/metrics").await);
    c.check("get", "/openapi.json", &get("/openapi.json").await);

    // Every operation was checked but the subscription (an endless event stream).
    let mut missing = c.operations();
    missing.retain(|op| !c.seen.contains(op));
    let expected: BTreeSet<_> = [("get".to_string(), "/v1/subscribe".to_string())].into();
    assert_eq!(missing, expected);
}
