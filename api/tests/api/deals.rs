//! `GET /v1/deals` (SPEC §5.1) over the demo organisation. What each filter should select is
//! computed here from `GET /v1/events` alone: a plain fold of every deal stream in business
//! order ([`Plain`]), independent of the read model and its index. Then: paging covers every
//! deal exactly once, also while deals are being appended; bad parameters are 400s naming
//! the parameter.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use eventlog::memory::MemoryStore;
use eventlog::rules::DomainRules;
use eventlog::{EventStore, ExpectedVersion, StreamBatch};
use serde_json::{json, Value};

use crate::helpers::*;

/// A deal as the log says, folded by hand.
#[derive(Debug, Clone, Default)]
struct PlainDeal {
    /// Position of its first event: the tie-break of the list's order.
    first: u64,
    title: String,
    customer: String,
    owner: String,
    stage: String,
    amount: f64,
    status: &'static str,
    opened_at: Option<DateTime<Utc>>,
    closed_at: Option<DateTime<Utc>>,
    reason: Option<String>,
    competitor: Option<String>,
}

impl PlainDeal {
    fn time(&self) -> DateTime<Utc> {
        self.closed_at.or(self.opened_at).unwrap()
    }
}

struct Plain {
    deals: BTreeMap<String, PlainDeal>,
    teams: BTreeMap<String, String>,
    customer_names: BTreeMap<String, String>,
}

fn time(v: &Value) -> DateTime<Utc> {
    domain::envelope::parse_time(v.as_str().unwrap()).unwrap()
}

/// Every event of the log, read through `GET /v1/events` page by page.
async fn whole_log(app: &TestApp) -> Vec<Value> {
    let mut out = Vec::new();
    let mut from = 1;
    loop {
        let page = app
            .get(
                &format!("/v1/events?from_position={from}&limit=1000"),
                ADMIN,
            )
            .await
            .json();
        let events = page["events"].as_array().unwrap().clone();
        if events.is_empty() {
            return out;
        }
        from = events.last().unwrap()["position"].as_u64().unwrap() + 1;
        out.extend(events);
    }
}

impl Plain {
    fn of(log: &[Value]) -> Plain {
        let mut by_deal: BTreeMap<String, Vec<&Value>> = BTreeMap::new();
        let mut teams = BTreeMap::new();
        let mut names: BTreeMap<String, Vec<&Value>> = BTreeMap::new();
        for e in log {
            let stream = e["stream"].as_str().unwrap();
            let d = &e["data"];
            if let Some(id) = stream.strip_prefix("deal-") {
                by_deal.entry(id.to_string()).or_default().push(e);
            } else if let Some(id) = stream.strip_prefix("customer-") {
                if d["name"].is_string() {
                    names.entry(id.to_string()).or_default().push(e);
                }
            } else if e["type"] == "RepJoined" {
                teams.insert(
                    d["rep"].as_str().unwrap().to_string(),
                    d["team"].as_str().unwrap().to_string(),
                );
            }
        }
        let business = |v: &mut Vec<&Value>| {
            v.sort_by_key(|e| (time(&e["occurred_at"]), e["position"].as_u64().unwrap()))
        };
        let customer_names = names
            .into_iter()
            .map(|(id, mut evs)| {
                business(&mut evs);
                let last = evs.last().unwrap();
                (id, last["data"]["name"].as_str().unwrap().to_string())
            })
            .collect();
        let mut deals = BTreeMap::new();
        for (id, mut evs) in by_deal {
            let first = evs
                .iter()
                .map(|e| e["position"].as_u64().unwrap())
                .min()
                .unwrap();
            business(&mut evs);
            let mut p = PlainDeal {
                first,
                ..PlainDeal::default()
            };
            for e in evs {
                let d = &e["data"];
                let s = |k: &str| d[k].as_str().unwrap().to_string();
                match e["type"].as_str().unwrap() {
                    "DealOpened" => {
                        p.title = s("title");
                        p.customer = s("customer_id");
                        p.owner = s("owner");
                        p.stage = s("stage");
                        p.amount = d["amount"].as_f64().unwrap();
                        p.status = "open";
                        p.opened_at = Some(time(&e["occurred_at"]));
                    }
                    "DealStageChanged" => p.stage = s("to"),
                    "DealAmountChanged" => p.amount = d["amount"].as_f64().unwrap(),
                    "DealReassigned" => p.owner = s("to"),
                    "DealWon" => {
                        p.status = "won";
                        p.amount = d["amount"].as_f64().unwrap();
                        p.closed_at = Some(time(&e["occurred_at"]));
                        (p.reason, p.competitor) = (None, None);
                    }
                    "DealLost" => {
                        p.status = "lost";
                        p.closed_at = Some(time(&e["occurred_at"]));
                        p.reason = Some(s("reason"));
                        p.competitor = d["competitor"].as_str().map(str::to_string);
                    }
                    "DealReopened" => {
                        p.status = "open";
                        p.stage = s("stage");
                        (p.closed_at, p.reason, p.competitor) = (None, None, None);
                    }
                    _ => {}
                }
            }
            deals.insert(id, p);
        }
        Plain {
            deals,
            teams,
            customer_names,
        }
    }

    /// The ids `pick` selects, in the list's order (newest first).
    fn select(&self, pick: impl Fn(&str, &PlainDeal) -> bool) -> Vec<String> {
        let mut v: Vec<(&String, &PlainDeal)> =
            self.deals.iter().filter(|(id, d)| pick(id, d)).collect();
        v.sort_by_key(|(_, d)| std::cmp::Reverse((d.time(), d.first)));
        v.into_iter().map(|(id, _)| id.clone()).collect()
    }
}

/// The demo organisation (ending on a fixed day) on a store with the domain's rules.
pub(crate) async fn demo_app() -> TestApp {
    let store = Arc::new(MemoryStore::with_validator(
        Arc::new(DomainRules::default()),
    ));
    let end = domain::envelope::parse_time("2026-07-01T00:00:00Z").unwrap();
    for chunk in api::demo::generate(end, api::demo::SEED).chunks(2000) {
        let batches = chunk
            .iter()
            .map(|e| StreamBatch {
                stream: e.stream.clone(),
                expected: ExpectedVersion::Any,
                events: vec![e.event.clone()],
            })
            .collect();
        store.append_multi(batches).await.unwrap();
    }
    let app = TestApp::with_store(store, tempfile::tempdir().unwrap());
    // The whole log into the read model (a refresh applies one page).
    while app
        .state
        .projector
        .refresh(app.state.store.as_ref())
        .await
        .unwrap()
        > 0
    {}
    app
}

/// Every page of `query` (by `next_cursor`), joined: the ids and the rows.
async fn all_pages(app: &TestApp, token: &str, query: &str, limit: usize) -> Vec<Value> {
    let mut rows = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = format!("/v1/deals?{query}&limit={limit}");
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let r = app.get(&path, token).await;
        assert_eq!(
            r.status.as_u16(),
            200,
            "{path}: {}",
            String::from_utf8_lossy(&r.body)
        );
        let page = r.json();
        let deals = page["deals"].as_array().unwrap();
        assert!(deals.len() <= limit);
        rows.extend(deals.iter().cloned());
        match page["next_cursor"].as_str() {
            Some(c) => {
                assert_eq!(deals.len(), limit, "a page before the last is full");
                cursor = Some(c.to_string());
            }
            None => return rows,
        }
    }
}

fn ids(rows: &[Value]) -> Vec<String> {
    rows.iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn every_filter_lists_what_a_plain_fold_of_the_log_selects() {
    let app = demo_app().await;
    let plain = Plain::of(&whole_log(&app).await);
    assert!(plain.deals.len() > 1000, "the demo has its deals");
    let june = (
        time(&json!("2026-06-01T00:00:00Z")),
        time(&json!("2026-07-01T00:00:00Z")),
    );
    let in_june = move |d: &PlainDeal| d.time() >= june.0 && d.time() < june.1;
    // A rep with a big lost deal in June, as the dashboard's rep page links to them.
    let big_lost_rep = plain
        .deals
        .values()
        .find(|d| d.status == "lost" && d.amount >= 100000.0 && in_june(d))
        .map(|d| d.owner.clone())
        .expect("a big deal lost in June");
    let a_customer = plain.deals.values().next().unwrap().customer.clone();
    let name = plain.customer_names[&a_customer].clone();
    let chars: Vec<char> = name.chars().collect();
    let fragment: String = chars[chars.len() / 3..chars.len() / 3 + 3]
        .iter()
        .collect::<String>()
        .to_uppercase();
    let team = plain.teams.values().next().unwrap().clone();
    type Pick = Box<dyn Fn(&str, &PlainDeal) -> bool>;
    let teams = plain.teams.clone();
    let names = plain.customer_names.clone();
    let names2 = plain.customer_names.clone();
    let competitor = plain
        .deals
        .values()
        .find_map(|d| d.competitor.clone())
        .expect("a competitor");
    let march = (
        time(&json!("2026-03-01T00:00:00Z")),
        time(&json!("2026-04-01T00:00:00Z")),
    );
    let (r, t, c, f, k) = (
        big_lost_rep.clone(),
        team.clone(),
        a_customer.clone(),
        fragment.to_lowercase(),
        competitor.clone(),
    );
    let cases: Vec<(String, Pick)> = vec![
        (String::new(), Box::new(|_, _| true)),
        ("status=open".into(), Box::new(|_, d| d.status == "open")),
        (
            format!("rep={r}&status=lost&min_amount=100000&from=2026-06-01&to=2026-06-30"),
            Box::new(move |_, d| {
                d.owner == r && d.status == "lost" && d.amount >= 100000.0 && in_june(d)
            }),
        ),
        (
            format!("team={t}&status=won"),
            Box::new(move |_, d| d.status == "won" && teams.get(&d.owner) == Some(&t)),
        ),
        (
            "reason=price".into(),
            Box::new(|_, d| d.reason.as_deref() == Some("price")),
        ),
        (
            "status=lost&stage=negotiation".into(),
            Box::new(|_, d| d.status == "lost" && d.stage == "negotiation"),
        ),
        (
            format!("customer_id={c}"),
            Box::new(move |_, d| d.customer == c),
        ),
        (
            format!(
                "q={}",
                form_urlencoded::byte_serialize(fragment.as_bytes()).collect::<String>()
            ),
            Box::new(move |id, d| {
                names
                    .get(&d.customer)
                    .is_some_and(|n| n.to_lowercase().contains(&f))
                    || d.title.to_lowercase().contains(&f)
                    || id.to_lowercase().contains(&f)
            }),
        ),
        // A title's words in another case, and part of an id (the search arena's matches).
        (
            "q=ERP%20Rollout&status=won".into(),
            Box::new(|_, d| d.status == "won" && d.title.to_lowercase().contains("erp rollout")),
        ),
        (
            "q=d-11".into(),
            Box::new(move |id, d| {
                id.to_lowercase().contains("d-11")
                    || d.title.to_lowercase().contains("d-11")
                    || names2
                        .get(&d.customer)
                        .is_some_and(|n| n.to_lowercase().contains("d-11"))
            }),
        ),
        (
            "from=2026-03-01T00:00:00Z&to=2026-03-31".into(),
            Box::new(move |_, d| d.time() >= march.0 && d.time() < march.1),
        ),
        (
            format!("competitor={k}"),
            Box::new(move |_, d| d.competitor.as_deref() == Some(k.as_str())),
        ),
    ];
    for (query, pick) in &cases {
        let want = plain.select(|id, d| pick(id, d));
        assert!(!want.is_empty(), "{query}: the demo has such deals");
        let rows = all_pages(&app, ADMIN, query, 97).await;
        assert_eq!(ids(&rows), want, "{query}");
    }
    // Every field of every row, against the plain fold.
    let rows = all_pages(&app, ADMIN, "", 1000).await;
    assert_eq!(rows.len(), plain.deals.len());
    for r in &rows {
        let p = &plain.deals[r["id"].as_str().unwrap()];
        let at = |t: Option<DateTime<Utc>>| {
            t.map_or(Value::Null, |t| json!(domain::envelope::format_time(&t)))
        };
        assert_eq!(
            r,
            &json!({
                "id": r["id"], "title": p.title, "customer_id": p.customer,
                "customer_name": plain.customer_names.get(&p.customer),
                "owner": p.owner, "status": p.status, "stage": p.stage, "amount": p.amount,
                "currency": "CNY", "opened_at": at(p.opened_at), "closed_at": at(p.closed_at),
                "reason": p.reason, "competitor": p.competitor,
            })
        );
    }
    // Scoped: a rep's list is the rep's deals; a filter on another rep lists nothing.
    let rep = &big_lost_rep;
    let token = app.token("rep", rep);
    let own = all_pages(&app, &token, "", 500).await;
    assert_eq!(ids(&own), plain.select(|_, d| &d.owner == rep));
    let other = plain
        .deals
        .values()
        .find(|d| &d.owner != rep)
        .unwrap()
        .owner
        .clone();
    assert!(all_pages(&app, &token, &format!("rep={other}"), 10)
        .await
        .is_empty());
}

#[tokio::test]
async fn paging_lists_every_deal_once_while_deals_are_appended() {
    let app = demo_app().await;
    let rows = all_pages(&app, ADMIN, "", 1000).await;
    let before: BTreeSet<String> = ids(&rows).into_iter().collect();
    // New deals go on a pool customer, for a rep of the organisation.
    let rep = rows[0]["owner"].as_str().unwrap().to_string();
    app.seed(
        "customer-C-NEW",
        json!([{"type": "CustomerRegistered", "data": {"name": "New"}}]),
    )
    .await;
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut n = 0;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/deals?limit=100&cursor={c}"),
            None => "/v1/deals?limit=100".to_string(),
        };
        let page = app.get(&path, ADMIN).await.json();
        seen.extend(ids(page["deals"].as_array().unwrap()));
        // Between pages, new deals are opened (they sort first: never on a later page).
        n += 1;
        app.seed(
            &format!("deal-NEW-{n}"),
            json!([{"type": "DealOpened", "data": {"customer_id": "C-NEW", "owner": rep, "title": "new", "amount": 10, "stage": "qualified"}}]),
        )
        .await;
        app.refresh().await;
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    let distinct: BTreeSet<String> = seen.iter().cloned().collect();
    assert_eq!(distinct.len(), seen.len(), "no deal twice");
    assert_eq!(distinct, before, "every deal of the first read, none added");
    // The new deals are on a fresh first page, newest first.
    let first = app.get("/v1/deals?limit=3", ADMIN).await.json();
    assert_eq!(
        ids(first["deals"].as_array().unwrap()),
        [
            format!("NEW-{n}"),
            format!("NEW-{}", n - 1),
            format!("NEW-{}", n - 2)
        ]
    );
}

#[tokio::test]
async fn bad_parameters_are_400_naming_the_parameter() {
    let app = TestApp::new();
    for (query, field) in [
        ("status=closed", "status"),
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("limit=ten", "limit"),
        ("min_amount=-5", "min_amount"),
        ("min_amount=lots", "min_amount"),
        ("min_amount=1.005", "min_amount"),
        ("from=yesterday", "from"),
        ("to=2026-13-01", "to"),
        ("from=2026-06-02&to=2026-06-01", "from"),
        ("cursor=not-a-cursor", "cursor"),
        ("cursor=3132", "cursor"),
    ] {
        let p = app
            .get(&format!("/v1/deals?{query}"), ADMIN)
            .await
            .problem(400);
        assert_eq!(p["field"], field, "{query}: {p}");
    }
    let p = app.get("/v1/deals?colour=red", ADMIN).await.problem(400);
    assert!(p["detail"].as_str().unwrap().contains("colour"), "{p}");
    // Blank form fields are no filter; limit 1000 is allowed; a same-day period is one day.
    let r = app
        .get(
            "/v1/deals?status=&rep=&q=&limit=1000&from=2026-06-01&to=2026-06-01",
            ADMIN,
        )
        .await;
    assert_eq!(r.status.as_u16(), 200);
    assert_eq!(r.json(), json!({"deals": [], "next_cursor": null}));
    // No token: 401.
    let r = app
        .call(request(axum::http::Method::GET, "/v1/deals", None, None))
        .await;
    r.problem(401);
}
