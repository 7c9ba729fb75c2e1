//! The scope matrix (issue 12): every read endpoint × every role × a target that is the
//! caller's own, a team-mate's, another team's, or a pool customer carrying another team's
//! deal. What each caller should see comes from a plain model of SPEC §3 written here
//! ([`Reach`]), not from the code under test; the organisation is built through the HTTP API
//! on a store with the domain's rules. Then: writes out of scope, which must not reveal
//! whether the stream exists.

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::http::{Method, StatusCode};
use eventlog::memory::MemoryStore;
use eventlog::rules::DomainRules;
use serde_json::{json, Value};
use tower::ServiceExt;

use crate::helpers::*;

/// (rep, team)
const REPS: [(&str, &str); 3] = [("wukong", "east"), ("shaseng", "east"), ("bajie", "west")];

/// (customer id, owner): wukong's own, a team-mate's, another team's, the pool.
const CUSTOMERS: [(&str, Option<&str>); 4] = [
    ("C-own", Some("wukong")),
    ("C-team", Some("shaseng")),
    ("C-other", Some("bajie")),
    ("C-pool", None),
];

#[derive(Clone, Copy, PartialEq)]
enum Outcome {
    Open,
    Won,
    Lost(&'static str),
}

/// (deal id, customer, owner, outcome).
type Deal = (&'static str, &'static str, &'static str, Outcome);

/// One deal per customer, and two on the pool customer, one of them another team's.
const DEALS: [Deal; 5] = [
    ("D-own", "C-own", "wukong", Outcome::Open),
    ("D-team", "C-team", "shaseng", Outcome::Lost("price")),
    ("D-other", "C-other", "bajie", Outcome::Won),
    ("D-pool-other", "C-pool", "bajie", Outcome::Lost("budget")),
    ("D-pool-own", "C-pool", "wukong", Outcome::Open),
];

/// Whose deals and customers a caller sees.
#[derive(Clone, Copy)]
enum Reach {
    All,
    Reps(&'static [&'static str]),
}

impl Reach {
    fn deal(self, owner: &str) -> bool {
        match self {
            Reach::All => true,
            Reach::Reps(reps) => reps.contains(&owner),
        }
    }

    fn customer(self, owner: Option<&str>) -> bool {
        owner.is_none_or(|o| self.deal(o))
    }
}

/// What a role may read besides entities (SPEC §3).
#[derive(Clone, Copy, PartialEq)]
enum Reports {
    /// admin, analyst: every report, for the whole organisation.
    Organisation,
    /// rep, manager: their scope's reports; organisation-only reports are 403.
    Scoped,
    /// service: events and subscribe, no reports.
    Refused,
}

struct Caller {
    name: &'static str,
    token: String,
    reach: Reach,
    /// May read `/v1/events` and `/v1/subscribe`.
    log: bool,
    reports: Reports,
}

struct World {
    app: TestApp,
    callers: Vec<Caller>,
}

fn events(list: Value) -> Value {
    json!({ "events": list })
}

async fn seed(app: &TestApp, stream: &str, list: Value) {
    let r = app.append(stream, ADMIN, events(list)).await;
    assert_eq!(
        r.status,
        StatusCode::CREATED,
        "{stream}: {}",
        String::from_utf8_lossy(&r.body)
    );
}

async fn world() -> World {
    let store = Arc::new(MemoryStore::with_validator(
        Arc::new(DomainRules::default()),
    ));
    let app = TestApp::with_store(store, tempfile::tempdir().unwrap());
    let joined: Vec<Value> = REPS
        .iter()
        .map(|(rep, team)| json!({"type": "RepJoined", "data": {"rep": rep, "name": rep, "team": team}}))
        .collect();
    seed(&app, "org-acme", json!(joined)).await;
    for (id, owner) in CUSTOMERS {
        let mut data = json!({"name": format!("Customer {id}")});
        if let Some(o) = owner {
            data["owner"] = json!(o);
        }
        // An NPS answer each: the service report has a figure for every customer.
        seed(
            &app,
            &format!("customer-{id}"),
            json!([{"type": "CustomerRegistered", "data": data},
                {"type": "NpsRecorded", "data": {"score": 9}}]),
        )
        .await;
    }
    for (i, (id, customer, owner, outcome)) in DEALS.into_iter().enumerate() {
        let amount = 1000 * (i + 1);
        let mut story = vec![
            json!({"type": "DealOpened", "actor": owner, "data": {"customer_id": customer, "owner": owner, "title": id, "amount": amount, "stage": "qualified"}}),
            json!({"type": "QuoteIssued", "actor": owner, "data": {"quote_id": format!("Q-{id}"), "amount": amount}}),
            json!({"type": "ActivityLogged", "actor": owner, "data": {"kind": "call", "rep": owner}}),
        ];
        story.push(match outcome {
            Outcome::Open => json!({"type": "DealStageChanged", "actor": owner, "data": {"from": "qualified", "to": "quote"}}),
            Outcome::Won => json!({"type": "DealWon", "actor": owner, "data": {"amount": amount}}),
            Outcome::Lost(reason) => json!({"type": "DealLost", "actor": owner, "data": {"reason": reason, "competitor": "Acme"}}),
        });
        seed(&app, &format!("deal-{id}"), json!(story)).await;
    }
    seed(
        &app,
        "lead-L-1",
        json!([{"type": "LeadCaptured", "data": {"channel": "web", "name": "Tang"}}]),
    )
    .await;
    app.refresh().await;
    let callers = vec![
        Caller {
            name: "admin",
            token: ADMIN.to_string(),
            reach: Reach::All,
            log: true,
            reports: Reports::Organisation,
        },
        Caller {
            name: "analyst",
            token: app.token("analyst", "bi"),
            reach: Reach::All,
            log: true,
            reports: Reports::Organisation,
        },
        Caller {
            name: "service",
            token: app.token("service", "billing"),
            reach: Reach::All,
            log: true,
            reports: Reports::Refused,
        },
        Caller {
            name: "manager east",
            token: app.token("manager", "east"),
            reach: Reach::Reps(&["wukong", "shaseng"]),
            log: false,
            reports: Reports::Scoped,
        },
        Caller {
            name: "manager west",
            token: app.token("manager", "west"),
            reach: Reach::Reps(&["bajie"]),
            log: false,
            reports: Reports::Scoped,
        },
        Caller {
            name: "rep wukong",
            token: app.token("rep", "wukong"),
            reach: Reach::Reps(&["wukong"]),
            log: false,
            reports: Reports::Scoped,
        },
        Caller {
            name: "rep bajie",
            token: app.token("rep", "bajie"),
            reach: Reach::Reps(&["bajie"]),
            log: false,
            reports: Reports::Scoped,
        },
    ];
    World { app, callers }
}

fn set<'a>(items: impl IntoIterator<Item = &'a str>) -> BTreeSet<String> {
    items.into_iter().map(str::to_string).collect()
}

/// The distinct `stream`s of a list of events.
fn streams_of(events: &Value) -> BTreeSet<String> {
    events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["stream"].as_str().unwrap().to_string())
        .collect()
}

fn strings_at(rows: &Value, field: &str) -> BTreeSet<String> {
    rows.as_array()
        .unwrap()
        .iter()
        .map(|r| r[field].as_str().unwrap().to_string())
        .collect()
}

/// Asserts `status`; a refusal is a problem document.
async fn get(w: &World, c: &Caller, path: &str, status: u16) -> Option<Value> {
    let r = w.app.get(path, &c.token).await;
    assert_eq!(
        r.status.as_u16(),
        status,
        "{} GET {path}: {}",
        c.name,
        String::from_utf8_lossy(&r.body)
    );
    if status == 200 {
        Some(r.json())
    } else {
        r.problem(status);
        None
    }
}

fn status(visible: bool) -> u16 {
    if visible {
        200
    } else {
        404
    }
}

#[tokio::test]
async fn every_read_shows_each_role_exactly_its_scope() {
    let w = world().await;
    for c in &w.callers {
        // Customers: state, stream, timeline (and what the timeline holds).
        for (id, owner) in CUSTOMERS {
            let visible = c.reach.customer(owner);
            get(&w, c, &format!("/v1/customers/{id}"), status(visible)).await;
            get(
                &w,
                c,
                &format!("/v1/streams/customer-{id}"),
                status(visible),
            )
            .await;
            let Some(t) = get(
                &w,
                c,
                &format!("/v1/customers/{id}/timeline?limit=1000"),
                status(visible),
            )
            .await
            else {
                continue;
            };
            let mut expected = set([format!("customer-{id}").as_str()]);
            for (deal, customer, deal_owner, _) in DEALS {
                if customer == id && c.reach.deal(deal_owner) {
                    expected.insert(format!("deal-{deal}"));
                }
            }
            assert_eq!(
                streams_of(&t["events"]),
                expected,
                "{} timeline of {id}",
                c.name
            );
        }
        // Deals: state, state as of a time, replay, stream.
        for (id, _, owner, _) in DEALS {
            let s = status(c.reach.deal(owner));
            get(&w, c, &format!("/v1/deals/{id}"), s).await;
            get(
                &w,
                c,
                &format!("/v1/deals/{id}?as_of=2100-01-01T00:00:00Z"),
                s,
            )
            .await;
            get(&w, c, &format!("/v1/deals/{id}/replay"), s).await;
            get(&w, c, &format!("/v1/streams/deal-{id}"), s).await;
        }
        // The deal list: exactly the deals in reach, whatever the filters ask for; a filter
        // naming a rep out of reach lists nothing (never 403 or 404: nothing is revealed).
        let listed = |v: &Value| strings_at(&v["deals"], "id");
        let reach = |pick: &dyn Fn(&Deal) -> bool| {
            set(DEALS
                .iter()
                .filter(|d| c.reach.deal(d.2) && pick(d))
                .map(|d| d.0))
        };
        let all = get(&w, c, "/v1/deals", 200).await.unwrap();
        assert_eq!(listed(&all), reach(&|_| true), "{} deal list", c.name);
        assert_eq!(all["next_cursor"], Value::Null, "{} deal list", c.name);
        for (rep, team) in REPS {
            let by_rep = get(&w, c, &format!("/v1/deals?rep={rep}"), 200)
                .await
                .unwrap();
            assert_eq!(
                listed(&by_rep),
                reach(&|d| d.2 == rep),
                "{} deals of {rep}",
                c.name
            );
            let of_team = |o: &str| REPS.iter().any(|r| r.0 == o && r.1 == team);
            let by_team = get(&w, c, &format!("/v1/deals?team={team}"), 200)
                .await
                .unwrap();
            assert_eq!(
                listed(&by_team),
                reach(&|d| of_team(d.2)),
                "{} deals of {team}",
                c.name
            );
        }
        let lost = get(&w, c, "/v1/deals?status=lost", 200).await.unwrap();
        let is_lost = |d: &Deal| matches!(d.3, Outcome::Lost(_));
        assert_eq!(listed(&lost), reach(&is_lost), "{} lost deals", c.name);
        let pool = get(&w, c, "/v1/deals?customer_id=C-pool", 200)
            .await
            .unwrap();
        assert_eq!(
            listed(&pool),
            reach(&|d| d.1 == "C-pool"),
            "{} pool deals",
            c.name
        );

        // Leads belong to nobody; org streams are for the organisation-wide roles.
        get(&w, c, "/v1/streams/lead-L-1", 200).await;
        get(
            &w,
            c,
            "/v1/streams/org-acme",
            status(matches!(c.reach, Reach::All)),
        )
        .await;

        // The global log, paged and live.
        let log = get(
            &w,
            c,
            "/v1/events?limit=1000",
            if c.log { 200 } else { 403 },
        )
        .await;
        if let Some(log) = log {
            let all: BTreeSet<String> = DEALS.iter().map(|d| format!("deal-{}", d.0)).collect();
            assert!(streams_of(&log["events"]).is_superset(&all), "{}", c.name);
        }
        let req = request(Method::GET, "/v1/subscribe", Some(&c.token), None);
        let res = w.app.router().oneshot(req).await.unwrap();
        assert_eq!(
            res.status(),
            if c.log { 200 } else { 403 },
            "{} subscribe",
            c.name
        );
        if c.log {
            let mut sse = SseReader::new(res.into_body());
            let mut seen = BTreeSet::new();
            let head = w.app.state.store.last_position().await.unwrap();
            for _ in 0..head {
                let e: Value = serde_json::from_str(&sse.next_event().await.data).unwrap();
                seen.insert(e["stream"].as_str().unwrap().to_string());
            }
            let all: BTreeSet<String> = DEALS.iter().map(|d| format!("deal-{}", d.0)).collect();
            assert!(seen.is_superset(&all), "{}", c.name);
        }

        reports(&w, c).await;
    }
}

/// The reports: over the whole organisation, over the caller's scope, or refused.
async fn reports(w: &World, c: &Caller) {
    let ok = |scoped_ok: bool| match c.reports {
        Reports::Organisation => 200,
        Reports::Scoped if scoped_ok => 200,
        _ => 403,
    };
    let deals: Vec<_> = DEALS.iter().filter(|d| c.reach.deal(d.2)).collect();
    let reps: BTreeSet<String> = REPS
        .iter()
        .map(|r| r.0)
        .filter(|r| c.reach.deal(r))
        .map(str::to_string)
        .collect();

    if let Some(f) = get(w, c, "/v1/reports/funnel", ok(true)).await {
        assert_eq!(f["groups"][0]["opened"], deals.len(), "{} funnel", c.name);
    }
    if let Some(f) = get(w, c, "/v1/reports/funnel?group_by=rep", ok(true)).await {
        let owners: BTreeSet<String> = deals.iter().map(|d| d.2.to_string()).collect();
        assert_eq!(
            strings_at(&f["groups"], "key"),
            owners,
            "{} funnel by rep",
            c.name
        );
    }
    if let Some(f) = get(w, c, "/v1/reports/funnel?group_by=industry", ok(true)).await {
        assert_eq!(
            f["groups"][0]["opened"],
            deals.len(),
            "{} funnel by industry",
            c.name
        );
    }
    if let Some(r) = get(w, c, "/v1/reports/reps", ok(true)).await {
        assert_eq!(strings_at(&r["reps"], "rep"), reps, "{} reps", c.name);
    }
    if let Some(p) = get(w, c, "/v1/reports/pipeline", ok(true)).await {
        let open = deals.iter().filter(|d| d.3 == Outcome::Open).map(|d| d.0);
        assert_eq!(
            strings_at(&p["top"], "deal_id"),
            set(open),
            "{} pipeline",
            c.name
        );
    }
    if let Some(wl) = get(w, c, "/v1/reports/win-loss", ok(true)).await {
        let closed = deals.iter().filter(|d| d.3 != Outcome::Open).count();
        assert_eq!(wl["closed"], closed, "{} win-loss", c.name);
        let reasons = deals.iter().filter_map(|d| match d.3 {
            Outcome::Lost(r) => Some(r),
            _ => None,
        });
        assert_eq!(
            strings_at(&wl["by_reason"], "reason"),
            set(reasons),
            "{} win-loss",
            c.name
        );
    }
    if let Some(a) = get(w, c, "/v1/reports/activity", ok(true)).await {
        let active: BTreeSet<String> = deals.iter().map(|d| d.2.to_string()).collect();
        assert_eq!(strings_at(&a["rows"], "rep"), active, "{} activity", c.name);
    }
    get(w, c, "/v1/reports/channels", ok(false)).await;
    get(w, c, "/v1/reports/l2c", ok(false)).await;
    for path in ["/v1/pool", "/v1/reports/pool"] {
        if let Some(p) = get(w, c, path, ok(true)).await {
            assert_eq!(
                strings_at(&p["customers"], "customer_id"),
                set(["C-pool"]),
                "{} {path}",
                c.name
            );
            let owners = CUSTOMERS
                .iter()
                .filter_map(|x| x.1)
                .filter(|o| c.reach.deal(o));
            assert_eq!(
                strings_at(&p["customers_per_rep"], "rep"),
                set(owners),
                "{} {path}",
                c.name
            );
        }
    }
    service_and_follow_up(w, c, ok(true)).await;
    get(
        w,
        c,
        "/v1/reports/nonsense",
        if c.reports == Reports::Refused {
            403
        } else {
            404
        },
    )
    .await;
}

fn deal_opened(customer: &str, owner: &str) -> Value {
    events(
        json!([{"type": "DealOpened", "data": {"customer_id": customer, "owner": owner, "title": "new", "amount": 1, "stage": "qualified"}}]),
    )
}

fn call(rep: &str) -> Value {
    events(json!([{"type": "ActivityLogged", "data": {"kind": "call", "rep": rep}}]))
}

/// The problem body with `name` (a stream or customer id) replaced by `…`.
fn anonymous(p: &Value, name: &str) -> Value {
    let mut p = p.clone();
    p["detail"] = json!(p["detail"].as_str().unwrap().replace(name, "…"));
    p
}

#[tokio::test]
async fn out_of_scope_writes_get_the_same_404_whether_the_stream_exists_or_not() {
    let w = world().await;
    let token = |name: &str| {
        w.callers
            .iter()
            .find(|c| c.name == name)
            .unwrap()
            .token
            .clone()
    };
    let (rep, manager) = (token("rep wukong"), token("manager east"));
    // (caller, existing stream out of scope, missing stream, body)
    let cases = [
        (&rep, "deal-D-other", "deal-D-missing", call("wukong")),
        (&rep, "deal-D-team", "deal-D-missing", call("wukong")),
        (
            &rep,
            "customer-C-other",
            "customer-C-missing",
            call("wukong"),
        ),
        (
            &rep,
            "customer-C-team",
            "customer-C-missing",
            call("wukong"),
        ),
        (&manager, "deal-D-other", "deal-D-missing", call("wukong")),
        (
            &manager,
            "deal-D-pool-other",
            "deal-D-missing",
            call("wukong"),
        ),
        (
            &manager,
            "customer-C-other",
            "customer-C-missing",
            call("wukong"),
        ),
    ];
    for (token, existing, missing, body) in cases {
        let a = w
            .app
            .append(existing, token, body.clone())
            .await
            .problem(404);
        let b = w.app.append(missing, token, body).await.problem(404);
        assert_eq!(
            anonymous(&a, existing),
            anonymous(&b, missing),
            "{existing} / {missing}"
        );
    }
    // A new deal on a customer the caller cannot see: the same 404 as on a missing one.
    for (token, owner) in [(&rep, "wukong"), (&manager, "shaseng")] {
        let a = w
            .app
            .append("deal-D-new", token, deal_opened("C-other", owner))
            .await
            .problem(404);
        let b = w
            .app
            .append("deal-D-new", token, deal_opened("C-missing", owner))
            .await
            .problem(404);
        assert_eq!(anonymous(&a, "C-other"), anonymous(&b, "C-missing"));
    }
    // Role-level refusals stay 403, and depend on the request alone.
    for (token, stream, body) in [
        (token("analyst"), "deal-D-own", call("wukong")),
        (token("service"), "deal-D-missing", call("wukong")),
        (
            rep.clone(),
            "org-acme",
            events(json!([{"type": "RepLeft", "data": {"rep": "bajie"}}])),
        ),
        (rep.clone(), "deal-D-other", deal_opened("C-own", "bajie")),
        (rep.clone(), "deal-D-new", deal_opened("C-own", "bajie")),
        (
            manager.clone(),
            "deal-D-new",
            deal_opened("C-other", "bajie"),
        ),
        (rep.clone(), "customer-C-pool", call("wukong")),
    ] {
        w.app.append(stream, &token, body).await.problem(403);
    }
}

#[tokio::test]
async fn a_deal_opens_only_on_its_owners_customer_or_a_pool_one() {
    let w = world().await;
    let rep = w.app.token("rep", "wukong");
    let manager = w.app.token("manager", "east");
    // The bug: a rep opened a deal on a team-mate's customer, and it showed in their timeline.
    w.app
        .append("deal-D-x", &rep, deal_opened("C-team", "wukong"))
        .await
        .problem(404);
    // The manager sees both customers; the domain refuses the deal, naming the rule.
    let p = w
        .app
        .append("deal-D-x", &manager, deal_opened("C-team", "wukong"))
        .await
        .problem(422);
    assert_eq!(
        (p["rule"].clone(), p["field"].clone(), p["value"].clone()),
        (
            json!("deal.customer_owner"),
            json!("data.customer_id"),
            json!("\"C-team\"")
        ),
        "{p}"
    );
    // An admin too, and for a customer that was never registered.
    for customer in ["C-other", "C-missing"] {
        let p = w
            .app
            .append("deal-D-x", ADMIN, deal_opened(customer, "wukong"))
            .await
            .problem(422);
        assert_eq!(p["rule"], "deal.customer_owner", "{p}");
    }
    w.app.refresh().await;
    let t = w
        .app
        .get("/v1/customers/C-team/timeline", ADMIN)
        .await
        .json();
    assert_eq!(
        streams_of(&t["events"]),
        set(["customer-C-team", "deal-D-team"])
    );
    // Own customer, pool customer: fine.
    for (id, customer) in [("D-new-own", "C-own"), ("D-new-pool", "C-pool")] {
        let r = w
            .app
            .append(&format!("deal-{id}"), &rep, deal_opened(customer, "wukong"))
            .await;
        assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    }
}

/// The customer service report counts the customers owned in scope at the month's end (the
/// pool only for the whole organisation); a follow-up list is the caller's own (a rep), a
/// team rep's (a manager) or any known rep's (admin, analyst).
async fn service_and_follow_up(w: &World, c: &Caller, ok: u16) {
    let month = domain::Month::of(&chrono::Utc::now());
    let whole = c.reports == Reports::Organisation;
    let mut owners: BTreeSet<String> = CUSTOMERS
        .iter()
        .filter_map(|x| x.1)
        .filter(|o| c.reach.deal(o))
        .map(str::to_string)
        .collect();
    if let Some(s) = get(
        w,
        c,
        &format!("/v1/reports/service?months=1&end={month}"),
        ok,
    )
    .await
    {
        let answers = owners.len() + usize::from(whole);
        let nps = &s["groups"][0]["series"][0]["nps"];
        assert_eq!(nps["responses"], answers, "{} service", c.name);
    }
    let path = format!("/v1/reports/service?months=1&end={month}&group_by=rep");
    if let Some(s) = get(w, c, &path, ok).await {
        if whole {
            owners.insert("pool".into());
        }
        assert_eq!(
            strings_at(&s["groups"], "key"),
            owners,
            "{} service by rep",
            c.name
        );
    }
    for (rep, _) in REPS {
        let status = match c.reports {
            Reports::Organisation => 200,
            Reports::Scoped if c.reach.deal(rep) => 200,
            _ => 403,
        };
        let path = format!("/v1/reports/follow-up?rep={rep}");
        if let Some(f) = get(w, c, &path, status).await {
            assert_eq!(f["rep"], rep, "{} follow-up", c.name);
        }
    }
    // Without a name: a rep's own list; everybody else names one (a manager too, even of
    // a team of one).
    let own = match c.reach {
        Reach::Reps([only]) if c.name.starts_with("rep ") => Some(*only),
        _ => None,
    };
    let status = match (c.reports, own) {
        (Reports::Refused, _) => 403,
        (_, Some(_)) => 200,
        _ => 400,
    };
    if let Some(f) = get(w, c, "/v1/reports/follow-up", status).await {
        assert_eq!(f["rep"], own.unwrap(), "{} own follow-up", c.name);
    }
    // A rep nobody knows: 404 for the whole organisation, out of scope (403) for the others.
    let unknown = match c.reports {
        Reports::Organisation => 404,
        _ => 403,
    };
    get(w, c, "/v1/reports/follow-up?rep=nobody", unknown).await;
}

/// An ownership change counts from the very next request after its append is acknowledged
/// (no refresh of the read model between): the owner index the scope asks is brought up to
/// the log's head by every question. The index is warmed by the requests before the change,
/// so what is checked is the incremental step.
#[tokio::test]
async fn an_ownership_change_is_honoured_by_the_next_request() {
    let w = world().await;
    let (wukong, bajie) = (w.app.token("rep", "wukong"), w.app.token("rep", "bajie"));
    let (east, west) = (
        w.app.token("manager", "east"),
        w.app.token("manager", "west"),
    );
    // What `/v1/streams/{stream}` answers wukong, the east manager, bajie, the west manager.
    let check = |stream: &'static str, statuses: [u16; 4]| {
        let app = &w.app;
        let callers = [
            ("wukong", &wukong),
            ("east", &east),
            ("bajie", &bajie),
            ("west", &west),
        ];
        async move {
            for ((name, token), status) in callers.into_iter().zip(statuses) {
                let r = app.get(&format!("/v1/streams/{stream}"), token).await;
                assert_eq!(r.status.as_u16(), status, "{name} GET {stream}");
            }
        }
    };
    check("deal-D-own", [200, 200, 404, 404]).await;
    // wukong's deal goes to bajie, on the other team.
    seed(
        &w.app,
        "deal-D-own",
        json!([{"type": "DealReassigned", "data": {"from": "wukong", "to": "bajie"}}]),
    )
    .await;
    check("deal-D-own", [404, 404, 200, 200]).await;
    // The rep who owned it, now on another team than its owner, may not write to it either.
    w.app
        .append("deal-D-own", &wukong, call("wukong"))
        .await
        .problem(404);
    let r = w.app.append("deal-D-own", &bajie, call("bajie")).await;
    assert_eq!(r.status, StatusCode::CREATED);

    // A customer: assigned away from wukong's team, then released to the pool.
    check("customer-C-own", [200, 200, 404, 404]).await;
    let assigned = json!([{"type": "CustomerAssigned", "data": {"rep": "bajie"}}]);
    seed(&w.app, "customer-C-own", assigned).await;
    check("customer-C-own", [404, 404, 200, 200]).await;
    w.app
        .append("customer-C-own", &wukong, call("wukong"))
        .await
        .problem(404);
    let released = json!([{"type": "CustomerReleased", "data": {"reason": "idle"}}]);
    seed(&w.app, "customer-C-own", released).await;
    check("customer-C-own", [200; 4]).await;
}
