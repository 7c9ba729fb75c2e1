//! Erasure of personal data (SPEC §7) through the API, on a store that seals it: who may,
//! what every read shows after, what stays (figures, other persons), what may still be
//! appended, and that the sealed form is what the store holds.

use axum::http::{Method, StatusCode};
use eventlog::{EventStore, Filter};
use serde_json::{json, Value};
use tower::ServiceExt;

use super::helpers::*;

const ZHUGE: &str = "Zhuge Liang Kongming";
const T: &str = "2026-03-02T09:00:00Z";

/// wukong's customer C-1 (named ZHUGE, a call about him), his deal D-1 lost with a note on
/// him, and a lead L-1 with its own personal data. Ids fixed, so they can be sent again.
async fn seeded() -> (TestApp, std::sync::Arc<eventlog::memory::MemoryStore>) {
    let (app, inner) = TestApp::sealed();
    app.seed_org(&["wukong"]).await;
    app.seed(
        "customer-C-1",
        json!([
            {"id": "00000000-0000-7000-8000-000000000001", "type": "CustomerRegistered", "occurred_at": T,
             "data": {"name": ZHUGE, "owner": "wukong", "industry": "retail"}},
            {"id": "00000000-0000-7000-8000-000000000002", "type": "ActivityLogged", "occurred_at": T,
             "data": {"kind": "call", "rep": "wukong", "summary": "Zhuge Liang Kongming asked for a quote"}},
        ]),
    )
    .await;
    app.seed(
        "deal-D-1",
        json!([
            {"id": "00000000-0000-7000-8000-000000000003", "type": "DealOpened", "occurred_at": T,
             "data": {"customer_id": "C-1", "owner": "wukong", "title": "ERP", "amount": 1000, "stage": "qualified"}},
            {"id": "00000000-0000-7000-8000-000000000004", "type": "DealLost", "occurred_at": T,
             "data": {"reason": "price", "note": "Zhuge Liang Kongming went elsewhere"}},
        ]),
    )
    .await;
    app.seed(
        "lead-L-1",
        json!([{"type": "LeadCaptured", "occurred_at": T,
                "data": {"channel": "web", "name": "Diaochan", "company": "Lu Bu Trading", "contact": "diaochan@example.com"}}]),
    )
    .await;
    (app, inner)
}

async fn erase(app: &TestApp, path: &str, token: &str, reason: &str) -> Reply {
    app.post(path, token, &json!({ "reason": reason }).to_string())
        .await
}

fn data_of(events: &Value, i: usize) -> &Value {
    &events["events"][i]["data"]
}

#[tokio::test]
async fn the_store_holds_personal_fields_sealed_and_reads_give_them_back() {
    let (app, inner) = seeded().await;
    let raw = inner
        .read_all(1, usize::MAX, &Filter::default())
        .await
        .unwrap();
    let text: String = raw
        .iter()
        .map(|e| serde_json::to_string(&e.data).unwrap())
        .collect();
    for secret in [ZHUGE, "Zhuge", "Diaochan", "Lu Bu", "example.com"] {
        assert!(!text.contains(secret), "{secret} in the stored log: {text}");
    }
    // Clear fields stay clear: the deal's figures and reasons, the lead's channel.
    for clear in ["\"price\"", "\"ERP\"", "\"web\"", "\"retail\""] {
        assert!(text.contains(clear), "{clear} missing: {text}");
    }
    let c = app.get("/v1/streams/customer-C-1", ADMIN).await.json();
    assert_eq!(data_of(&c, 0)["name"], ZHUGE);
    let customer = app.get("/v1/customers/C-1", ADMIN).await.json();
    assert_eq!(customer["name"], ZHUGE);
}

#[tokio::test]
async fn only_an_admin_erases_and_only_someone_who_exists() {
    let (app, _) = seeded().await;
    let rep = app.token("rep", "wukong");
    let analyst = app.token("analyst", "bi");
    for token in [&rep, &analyst] {
        erase(&app, "/v1/customers/C-1/erase", token, "asked")
            .await
            .problem(403);
    }
    erase(&app, "/v1/customers/C-9/erase", ADMIN, "asked")
        .await
        .problem(404);
    erase(&app, "/v1/leads/L-9/erase", ADMIN, "asked")
        .await
        .problem(404);
    erase(&app, "/v1/customers/C-1/erase", ADMIN, "  ")
        .await
        .problem(400);
    // Nothing was erased by any of them.
    let c = app.get("/v1/customers/C-1", ADMIN).await.json();
    assert_eq!(c["name"], ZHUGE);
}

#[tokio::test]
async fn after_erasure_every_read_shows_erased_and_the_figures_are_unchanged() {
    let (app, inner) = seeded().await;
    app.refresh().await;
    let funnel_before = app.get("/v1/reports/funnel", ADMIN).await.json();
    let win_loss_before = app.get("/v1/reports/win-loss", ADMIN).await.json();

    let r = erase(
        &app,
        "/v1/customers/C-1/erase",
        ADMIN,
        "GDPR art. 17 request",
    )
    .await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    let done = r.json();
    assert_eq!(done["person"], "customer-C-1");
    // CustomerRegistered.name, ActivityLogged.summary, DealLost.note: three events.
    assert_eq!(done["events"], 3);
    assert_eq!(done["fields"], json!(["name", "note", "summary"]));
    assert_eq!(done["now_reads"], "[erased]");

    let c = app.get("/v1/streams/customer-C-1", ADMIN).await.json();
    assert_eq!(data_of(&c, 0)["name"], "[erased]");
    assert_eq!(data_of(&c, 0)["industry"], "retail");
    assert_eq!(data_of(&c, 1)["summary"], "[erased]");
    assert_eq!(c["events"][2]["type"], "PersonalDataErased");
    assert_eq!(data_of(&c, 2)["reason"], "GDPR art. 17 request");
    let d = app.get("/v1/streams/deal-D-1", ADMIN).await.json();
    assert_eq!(
        data_of(&d, 1),
        &json!({"reason": "price", "note": "[erased]"})
    );
    let customer = app.get("/v1/customers/C-1", ADMIN).await.json();
    assert_eq!(customer["name"], "[erased]");
    // The read model was rebuilt: the timeline and the whole log show no trace.
    for path in [
        "/v1/customers/C-1/timeline",
        "/v1/events",
        "/v1/deals",
        "/v1/reports/win-loss",
    ] {
        let body = app.get(path, ADMIN).await;
        assert_eq!(body.status, StatusCode::OK, "{path}");
        let text = String::from_utf8_lossy(&body.body);
        assert!(!text.contains("Zhuge"), "{path}: {text}");
    }
    // The other person is untouched.
    let l = app.get("/v1/streams/lead-L-1", ADMIN).await.json();
    assert_eq!(data_of(&l, 0)["name"], "Diaochan");
    // Figures are the same.
    assert_eq!(
        app.get("/v1/reports/funnel", ADMIN).await.json(),
        funnel_before
    );
    assert_eq!(
        app.get("/v1/reports/win-loss", ADMIN).await.json(),
        win_loss_before
    );
    // The audit trail says who erased whom.
    let audit = app.get("/v1/streams/org-access", ADMIN).await.json();
    let last = audit["events"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["type"], "PersonalDataErasureAudited");
    assert_eq!(
        last["data"],
        json!({"person": "customer-C-1", "reason": "GDPR art. 17 request"})
    );
    // Stored: still sealed (the chain covers what is stored), the erasure in clear.
    let raw = inner.read_stream("customer-C-1", 0, 10).await.unwrap();
    assert!(raw[0].data.value()["name"]
        .as_str()
        .unwrap()
        .starts_with("$dt-sealed-1$customer-C-1$"));

    // Twice: 409, naming the first.
    let again = erase(&app, "/v1/customers/C-1/erase", ADMIN, "again")
        .await
        .problem(409);
    assert!(
        again["detail"].as_str().unwrap().contains("already erased"),
        "{again}"
    );
}

#[tokio::test]
async fn after_erasure_nothing_personal_about_the_person_is_accepted_but_repeats_are() {
    let (app, _) = seeded().await;
    let r = erase(&app, "/v1/customers/C-1/erase", ADMIN, "asked").await;
    assert_eq!(r.status, StatusCode::OK);
    let before = app.get("/v1/events", ADMIN).await.json();

    let renamed = app
        .append(
            "customer-C-1",
            ADMIN,
            json!({"events": [{"type": "CustomerUpdated", "data": {"name": "Kongming"}}]}),
        )
        .await
        .problem(422);
    assert_eq!(
        renamed["rule"], "person.erased_no_personal_data",
        "{renamed}"
    );
    let note = app
        .append("deal-D-1", ADMIN, json!({"events": [{"type": "ActivityLogged", "data": {"kind": "note", "rep": "wukong", "summary": "about Zhuge"}}]}))
        .await
        .problem(422);
    assert_eq!(note["rule"], "person.erased_no_personal_data", "{note}");
    // An event already in the log, sent again with its text: the same event, nothing added.
    let repeat = app
        .append("customer-C-1", ADMIN, json!({"events": [
            {"id": "00000000-0000-7000-8000-000000000002", "type": "ActivityLogged", "occurred_at": T,
             "data": {"kind": "call", "rep": "wukong", "summary": "Zhuge Liang Kongming asked for a quote"}}]}))
        .await;
    assert!(
        repeat.status.is_success(),
        "{}",
        String::from_utf8_lossy(&repeat.body)
    );
    assert_eq!(app.get("/v1/events", ADMIN).await.json(), before);
    // Clear fields still go in.
    let updated = app
        .append(
            "customer-C-1",
            ADMIN,
            json!({"events": [{"type": "CustomerUpdated", "data": {"industry": "tech"}}]}),
        )
        .await;
    assert_eq!(updated.status, StatusCode::CREATED);
    // PersonalDataErased is not an ordinary event: it comes with the key's destruction.
    let forged = app
        .append(
            "lead-L-1",
            ADMIN,
            json!({"events": [{"type": "PersonalDataErased", "data": {"reason": "x"}}]}),
        )
        .await
        .problem(422);
    assert_eq!(forged["rule"], "person.erased_no_personal_data", "{forged}");
    let l = app.get("/v1/streams/lead-L-1", ADMIN).await.json();
    assert_eq!(data_of(&l, 0)["name"], "Diaochan");
}

#[tokio::test]
async fn a_lead_is_erased_with_its_three_fields_and_sse_replays_them_erased() {
    let (app, _) = seeded().await;
    // A subscriber live before the lead exists: the feed's window then holds its frame.
    let end = app.get("/healthz", ADMIN).await.json();
    let from = end["last_position"].as_u64().unwrap() + 1;
    let mut live = sse(&app, &format!("/v1/subscribe?from_position={from}")).await;
    app.seed(
        "lead-L-2",
        json!([{"type": "LeadCaptured", "occurred_at": T,
                "data": {"channel": "fair", "name": "Xiaoqiao", "company": "Qiao Silk", "contact": "+86 555"}}]),
    )
    .await;
    let mut frame = live.next_event().await;
    while !frame.data.contains("lead-L-2") {
        frame = live.next_event().await;
    }
    assert!(frame.data.contains("Xiaoqiao"), "{}", frame.data);
    let r = erase(&app, "/v1/leads/L-2/erase", ADMIN, "asked").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["fields"], json!(["company", "contact", "name"]));
    // A subscriber from the lead's position after it (served from the window, were it
    // kept) reads that lead erased; one from the start reads the other lead as it is.
    let mut after = sse(&app, &format!("/v1/subscribe?from_position={from}")).await;
    let e = after.next_event().await;
    let ev: Value = serde_json::from_str(&e.data).unwrap();
    assert_eq!(
        ev["data"],
        json!({"channel": "fair", "name": "[erased]", "company": "[erased]", "contact": "[erased]"})
    );
    let mut start = sse(&app, "/v1/subscribe?from_position=1").await;
    let mut e = start.next_event().await;
    while e.event.as_deref() != Some("LeadCaptured") {
        e = start.next_event().await;
    }
    assert!(e.data.contains("Diaochan"), "{}", e.data);
}

async fn sse(app: &TestApp, path: &str) -> SseReader<axum::body::Body> {
    let req = request(Method::GET, path, Some(ADMIN), None);
    let res = app.router().oneshot(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    SseReader::new(res.into_body())
}
