//! The projections' reads over HTTP: reports, pool, deal state and replay, customers —
//! with the role matrix (out-of-scope reads are 404, reports over the caller's scope) and
//! parameter errors as problems.

use serde_json::json;

use crate::auth::org;
use crate::helpers::ADMIN;

#[tokio::test]
async fn reads_come_from_the_read_model_within_each_role_s_scope() {
    let o = org().await;
    o.app.refresh().await;

    // Deal D1 belongs to wukong (team east); D2 to bajie (team west).
    let r = o.app.get("/v1/deals/D1", ADMIN).await;
    assert_eq!(r.status.as_u16(), 200);
    let d = r.json();
    assert_eq!(
        (d["owner"].clone(), d["stage"].clone(), d["status"].clone()),
        (json!("wukong"), json!("qualified"), json!("open"))
    );
    for (who, token, d1, d2) in [
        ("rep wukong", &o.rep, 200, 404),
        ("manager east", &o.manager, 200, 404),
        ("analyst", &o.analyst, 200, 200),
    ] {
        assert_eq!(
            o.app.get("/v1/deals/D1", token).await.status.as_u16(),
            d1,
            "{who} D1"
        );
        assert_eq!(
            o.app
                .get("/v1/deals/D2/replay", token)
                .await
                .status
                .as_u16(),
            d2,
            "{who} D2 replay"
        );
    }
    let replay = o.app.get("/v1/deals/D1/replay", ADMIN).await.json();
    assert_eq!(replay["steps"].as_array().unwrap().len(), 1);
    assert_eq!(
        o.app.get("/v1/deals/NOPE", ADMIN).await.problem(404)["status"],
        404
    );
    o.app.get("/v1/deals/bad%20id", ADMIN).await.problem(400);

    // Customers: own visible, other 404, pool visible to a rep.
    assert_eq!(
        o.app.get("/v1/customers/C1", &o.rep).await.json()["owner"],
        "wukong"
    );
    o.app.get("/v1/customers/C2", &o.rep).await.problem(404);
    assert_eq!(
        o.app.get("/v1/customers/P", &o.rep).await.status.as_u16(),
        200
    );
    let t = o.app.get("/v1/customers/C1/timeline", &o.rep).await.json();
    assert_eq!(
        t["events"].as_array().unwrap().len(),
        2,
        "registration and D1's opening: {t}"
    );

    // Reports: a rep's funnel is the rep's own; organisation-only reports are 403 to a rep;
    // bad parameters are 400 naming them (the whole matrix: `scope.rs`).
    let f = o.app.get("/v1/reports/funnel", &o.analyst).await.json();
    assert_eq!(f["groups"][0]["opened"], 2);
    let own = o.app.get("/v1/reports/funnel", &o.rep).await.json();
    assert_eq!(own["groups"][0]["opened"], 1);
    o.app.get("/v1/reports/channels", &o.rep).await.problem(403);
    // The pipeline is scoped: admin sees both open deals, the rep and the east manager only D1.
    assert_eq!(
        o.app.get("/v1/reports/pipeline", ADMIN).await.json()["open_count"],
        2
    );
    for token in [&o.rep, &o.manager] {
        let p = o.app.get("/v1/reports/pipeline", token).await.json();
        assert_eq!(p["open_count"], 1, "{p}");
        assert_eq!(p["top"][0]["deal_id"], "D1");
        assert_eq!(p["leaderboard"].as_array().unwrap().len(), 1);
        assert!(p["coverage"].is_null());
    }
    let p = o
        .app
        .get("/v1/reports/pipeline?stale_days=soon", ADMIN)
        .await
        .problem(400);
    assert_eq!(p["field"], "stale_days");
    o.app.get("/v1/reports/nonsense", ADMIN).await.problem(404);
    let pool = o.app.get("/v1/pool", &o.rep).await;
    assert_eq!(pool.status.as_u16(), 200);

    // A rebuild beside the live model gives the same figures; only an admin may start one.
    o.app
        .post("/v1/admin/rebuild", &o.analyst, "")
        .await
        .problem(403);
    let r = o.app.post("/v1/admin/rebuild", ADMIN, "").await;
    assert_eq!(
        r.status.as_u16(),
        200,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    assert_eq!(r.json()["position"], 8, "2 org events + 6 seeded streams");
    assert_eq!(o.app.get("/v1/reports/funnel", &o.analyst).await.json(), f);

    // The projection lag is exported.
    let m = String::from_utf8(o.app.get("/metrics", ADMIN).await.body.to_vec()).unwrap();
    assert!(m.contains("dealtrail_projection_lag_events 0"), "{m}");
}

#[tokio::test]
async fn a_bare_as_of_date_is_the_end_of_that_day() {
    let app = crate::helpers::TestApp::new();
    app.seed_org(&["wukong"]).await;
    app.seed_customer("C7", "wukong").await;
    app.seed(
        "deal-D7",
        json!([{"type": "DealOpened", "occurred_at": "2026-06-12T08:00:00Z",
            "data": {"customer_id": "C7", "owner": "wukong", "title": "T", "amount": 10, "stage": "qualified"}}]),
    )
    .await;
    app.state
        .projector
        .refresh(app.state.store.as_ref())
        .await
        .unwrap();
    // Opened at 08:00 on the 12th: it existed "as of 2026-06-12", not at that midnight.
    let day = app.get("/v1/deals/D7?as_of=2026-06-12", ADMIN).await;
    assert_eq!(day.status.as_u16(), 200);
    assert_eq!(day.json()["status"], "open");
    app.get("/v1/deals/D7?as_of=2026-06-12T00:00:00Z", ADMIN)
        .await
        .problem(404);
}
