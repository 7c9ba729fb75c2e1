//! Property tests over random valid event logs (the sled habit: random operations, restarts
//! mixed in, results compared with a plain model).
//!
//! A small action model ([`Sim`]) turns random numbers into a *valid* log: reps join,
//! customers register / are claimed / released, leads are captured / qualified / converted,
//! deals are opened / moved / quoted / reassigned / won / lost / reopened / paid, activities
//! and spend are recorded. Activities are sometimes logged late (an `occurred_at` before
//! events already in the log, never before their stream's opening event).
//!
//! Properties:
//! 1. applying one event at a time, with restarts mixed in (serialise + deserialise the
//!    model, or rebuild it from the prefix), gives the same model as a rebuild from scratch;
//! 2. every deal's state matches the plain model kept by [`Sim`];
//! 3. every report as of T equals the same report over a model built from only the events
//!    with `occurred_at ≤ T`;
//! 4. a rebuild is deterministic: serialised twice, the bytes are the same.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration, Utc};
use domain::{Month, RecordedEvent};
use projections::params::{Period, PeriodQuery, Scope};
use projections::{
    activity, channels, funnel, l2c, pipeline, pool, replay, reps, timeline, winloss,
};
use projections::{DealStatus, ReadModel};
use proptest::prelude::*;
use replay_tests::{t, LogBuilder};
use serde_json::json;

const REPS: [&str; 4] = ["wukong", "bajie", "wujing", "tang"];
const STAGES: [&str; 5] = [
    "qualified",
    "presentation",
    "quote",
    "negotiation",
    "contract",
];
const CHANNELS: [&str; 3] = ["web", "fair", "referral"];
const KINDS: [&str; 6] = ["call", "email", "sms", "meeting", "visit", "note"];
/// Deal currencies: most deals in the default (CNY, no `currency` field), some in others.
const CURRENCIES: [Option<&str>; 6] = [None, None, None, Some("USD"), Some("EUR"), Some("CNY")];

/// The plain model of a deal, kept in log order (only activities are ever logged late, and
/// they do not change these fields).
#[derive(Debug, Clone, PartialEq)]
struct SimDeal {
    opened_at: DateTime<Utc>,
    customer: String,
    owner: String,
    stage: usize,
    amount: i64,
    status: DealStatus,
    quotes: u32,
    activities: u32,
    paid: i64,
}

#[derive(Default)]
struct Sim {
    log: LogBuilder,
    now: Option<DateTime<Utc>>,
    reps: Vec<&'static str>,
    /// customer id → (owner, registered at)
    customers: Vec<(String, Option<&'static str>, DateTime<Utc>)>,
    /// lead id → (captured at, qualified, converted)
    leads: Vec<(String, DateTime<Utc>, bool, bool)>,
    deals: BTreeMap<String, SimDeal>,
    /// The reporting currency in force (no rate is set for it: the rules refuse that).
    reporting: &'static str,
}

type Action = (u8, u8, u8, u16, bool, u16);

impl Sim {
    fn pick<T>(v: &[T], x: u8) -> Option<&T> {
        (!v.is_empty()).then(|| &v[x as usize % v.len()])
    }

    fn rep(&self, x: u8) -> &'static str {
        Self::pick(&self.reps, x)
            .copied()
            .unwrap_or(REPS[x as usize % 4])
    }

    fn run(actions: &[Action]) -> Sim {
        let mut s = Sim {
            now: Some(t("2026-01-05T08:00:00Z")),
            reporting: "CNY",
            ..Sim::default()
        };
        for &(kind, a, b, step_min, late, late_min) in actions {
            let now = s.now.unwrap() + Duration::minutes(i64::from(step_min));
            s.now = Some(now);
            s.act(kind, a, b, now, late.then_some(late_min));
        }
        s
    }

    fn deal_ids(&self, f: impl Fn(&SimDeal) -> bool) -> Vec<String> {
        self.deals
            .iter()
            .filter(|(_, d)| f(d))
            .map(|(k, _)| k.clone())
            .collect()
    }

    fn act(&mut self, kind: u8, a: u8, b: u8, now: DateTime<Utc>, late: Option<u16>) {
        let at = now.to_rfc3339();
        match kind % 21 {
            0 => {
                let r = REPS[a as usize % 4];
                if !self.reps.contains(&r) {
                    self.reps.push(r);
                    self.log.ev(&at, "org-main", "RepJoined", "admin",
                        json!({"rep": r, "name": r.to_uppercase(), "team": if a & 1 == 0 { "east" } else { "west" }}));
                }
            }
            1 => {
                let id = format!("C{}", self.customers.len() + 1);
                let owner = matches!(b % 3, 1 | 2).then(|| self.rep(a));
                let mut data = json!({"name": format!("Customer {id}"), "industry": (["retail", "energy"][b as usize % 2])});
                if let Some(o) = owner {
                    data["owner"] = json!(o);
                }
                self.log.ev(&at, &format!("customer-{id}"), "CustomerRegistered", "admin", data);
                self.customers.push((id, owner, now));
            }
            2 | 3 => {
                let claim = kind % 21 == 2;
                let rep = self.rep(b);
                let cands: Vec<usize> = (0..self.customers.len())
                    .filter(|&i| self.customers[i].1.is_none() == claim)
                    .collect();
                if let Some(&i) = Self::pick(&cands, a) {
                    let stream = format!("customer-{}", self.customers[i].0);
                    if claim {
                        self.log.ev(&at, &stream, "CustomerClaimed", rep, json!({"rep": rep}));
                        self.customers[i].1 = Some(rep);
                    } else {
                        self.log.ev(&at, &stream, "CustomerReleased", "system", json!({"reason": "no_follow_up"}));
                        self.customers[i].1 = None;
                    }
                }
            }
            4 => {
                let id = format!("L{}", self.leads.len() + 1);
                self.log.ev(&at, &format!("lead-{id}"), "LeadCaptured", "web",
                    json!({"channel": CHANNELS[a as usize % 3], "name": format!("Lead {id}")}));
                self.leads.push((id, now, false, false));
            }
            5 => {
                let rep = self.rep(b);
                let cands: Vec<usize> = (0..self.leads.len()).filter(|&i| !self.leads[i].2 && !self.leads[i].3).collect();
                if let Some(&i) = Self::pick(&cands, a) {
                    self.log.ev(&at, &format!("lead-{}", self.leads[i].0), "LeadQualified", rep,
                        json!({"rep": rep, "fit_score": 70}));
                    self.leads[i].2 = true;
                }
            }
            6 => {
                let cands: Vec<usize> = (0..self.leads.len()).filter(|&i| !self.leads[i].3).collect();
                let (Some(&i), Some(c)) = (Self::pick(&cands, a), Self::pick(&self.customers, b).cloned()) else {
                    return;
                };
                let lead = self.leads[i].0.clone();
                let deal = format!("D{}", self.deals.len() + 1);
                let with_deal = b & 1 == 0;
                let mut data = json!({"customer_id": c.0});
                if with_deal {
                    data["deal_id"] = json!(deal);
                }
                self.log.ev(&at, &format!("lead-{lead}"), "LeadConverted", "system", data);
                self.leads[i].3 = true;
                if with_deal {
                    self.open_deal(&deal, &c.0, self.rep(a), a, Some(&lead), now);
                }
            }
            7 => {
                if let Some(c) = Self::pick(&self.customers, a).cloned() {
                    let deal = format!("D{}", self.deals.len() + 1);
                    self.open_deal(&deal, &c.0, self.rep(b), b, None, now);
                }
            }
            8 => self.on_open(a, |d| {
                let to = (d.stage + 1 + b as usize % 4) % 5;
                let data = json!({"from": STAGES[d.stage], "to": STAGES[to]});
                d.stage = to;
                ("DealStageChanged", data)
            }, &at),
            9 => self.on_open(a, |d| {
                d.quotes += 1;
                ("QuoteIssued", json!({"quote_id": format!("Q{}", d.quotes), "amount": 1000.0 * f64::from(b)}))
            }, &at),
            10 => self.on_open(a, |d| {
                d.status = DealStatus::Won;
                d.amount = 100_000 * i64::from(b);
                ("DealWon", json!({"amount": 1000.0 * f64::from(b)}))
            }, &at),
            11 => self.on_open(a, |d| {
                d.status = DealStatus::Lost;
                let mut data = json!({"reason": (["price", "timing", "no_budget"][b as usize % 3])});
                if b & 1 == 0 {
                    data["competitor"] = json!(["Acme", "Globex"][b as usize % 4 / 2]);
                }
                ("DealLost", data)
            }, &at),
            12 => {
                let ids = self.deal_ids(|d| d.status != DealStatus::Open);
                if let Some(id) = Self::pick(&ids, a).cloned() {
                    let d = self.deals.get_mut(&id).unwrap();
                    d.status = DealStatus::Open;
                    d.stage = b as usize % 5;
                    self.log.ev(&at, &format!("deal-{id}"), "DealReopened", &d.owner.clone(), json!({"stage": STAGES[d.stage]}));
                }
            }
            13 => {
                let ids = self.deal_ids(|d| d.status == DealStatus::Won);
                if let Some(id) = Self::pick(&ids, a).cloned() {
                    let d = self.deals.get_mut(&id).unwrap();
                    d.paid += 50_000 * i64::from(b);
                    self.log.ev(&at, &format!("deal-{id}"), "PaymentReceived", "finance", json!({"amount": 500.0 * f64::from(b)}));
                }
            }
            14 => {
                // An activity on a deal (odd b) or a customer, sometimes logged late.
                let rep = self.rep(b);
                let kind = KINDS[b as usize % 6];
                let (stream, opened) = if b % 2 == 1 && !self.deals.is_empty() {
                    let ids = self.deal_ids(|_| true);
                    let id = Self::pick(&ids, a).unwrap().clone();
                    let d = self.deals.get_mut(&id).unwrap();
                    d.activities += 1;
                    (format!("deal-{id}"), d.opened_at)
                } else if let Some(c) = Self::pick(&self.customers, a) {
                    (format!("customer-{}", c.0), c.2)
                } else {
                    return;
                };
                let occurred = match late {
                    Some(m) => (now - Duration::minutes(i64::from(m))).max(opened),
                    None => now,
                };
                self.log.ev_at(occurred, &stream, "ActivityLogged", rep, json!({"kind": kind, "rep": rep}));
            }
            15 => {
                let m = Month::of(&now);
                self.log.ev(&at, &format!("channel-{}", CHANNELS[a as usize % 3]), "SpendRecorded", "finance",
                    json!({"month": m.to_string(), "amount": 100.0 * f64::from(b)}));
            }
            16 => {
                let to = self.rep(b);
                self.on_open(a, |d| {
                    let data = json!({"from": d.owner, "to": to});
                    d.owner = to.to_string();
                    ("DealReassigned", data)
                }, &at)
            }
            19 => {
                // A rate for this month or one of the two before (often set after the deals
                // it converts have closed), sometimes none at all for a month.
                let currency = ["USD", "EUR", "JPY", "CNY"][a as usize % 4];
                let mut month = Month::of(&now);
                for _ in 0..(b % 3) {
                    month = month.prev();
                }
                if currency != self.reporting {
                    self.log.ev(&at, "org-main", "ExchangeRateSet", "admin",
                        json!({"currency": currency, "month": month.to_string(), "rate": 0.5 + f64::from(b) / 16.0}));
                }
            }
            20 => {
                // Rarely, the org changes its reporting currency (its rates then no longer apply).
                if b.is_multiple_of(8) {
                    let currency = ["CNY", "USD"][a as usize % 2];
                    self.log.ev(&at, "org-main", "ReportingCurrencySet", "admin", json!({"currency": currency}));
                    self.reporting = currency;
                }
            }
            17 => self.on_open(a, |_| ("CompetitorNoted", json!({"competitor": (["Acme", "Globex", "Initech"][b as usize % 3])})), &at),
            _ => self.on_open(a, |d| {
                d.amount = 100_000 * i64::from(b);
                ("DealAmountChanged", json!({"amount": 1000.0 * f64::from(b)}))
            }, &at),
        }
    }

    fn open_deal(
        &mut self,
        id: &str,
        customer: &str,
        owner: &'static str,
        x: u8,
        lead: Option<&str>,
        now: DateTime<Utc>,
    ) {
        let stage = x as usize % 5;
        let mut data = json!({"customer_id": customer, "owner": owner, "title": "deal",
            "amount": 1000.0 * f64::from(x), "stage": STAGES[stage]});
        if let Some(l) = lead {
            data["source_lead"] = json!(l);
        }
        if let Some(c) = CURRENCIES[usize::from(x / 7) % CURRENCIES.len()] {
            data["currency"] = json!(c);
        }
        self.log.ev(
            &now.to_rfc3339(),
            &format!("deal-{id}"),
            "DealOpened",
            owner,
            data,
        );
        self.deals.insert(
            id.to_string(),
            SimDeal {
                opened_at: now,
                customer: customer.to_string(),
                owner: owner.to_string(),
                stage,
                amount: 100_000 * i64::from(x),
                status: DealStatus::Open,
                quotes: 0,
                activities: 0,
                paid: 0,
            },
        );
    }

    fn on_open(
        &mut self,
        a: u8,
        f: impl FnOnce(&mut SimDeal) -> (&'static str, serde_json::Value),
        at: &str,
    ) {
        let ids = self.deal_ids(|d| d.status == DealStatus::Open);
        if let Some(id) = Self::pick(&ids, a).cloned() {
            let d = self.deals.get_mut(&id).unwrap();
            let actor = d.owner.clone();
            let (ty, data) = f(d);
            self.log.ev(at, &format!("deal-{id}"), ty, &actor, data);
        }
    }
}

fn actions() -> impl Strategy<Value = Vec<Action>> {
    prop::collection::vec(
        (
            0u8..21,
            any::<u8>(),
            any::<u8>(),
            0u16..2880,
            prop::bool::weighted(0.2),
            0u16..20000,
        ),
        1..100,
    )
}

fn bytes(m: &ReadModel) -> Vec<u8> {
    serde_json::to_vec(m).unwrap()
}

/// Every report of the model as of `at`, as JSON values (the comparison unit).
/// Deals and customers are listed from `ids` (the full model), so both sides name the same.
fn reports(
    m: &ReadModel,
    ids: &ReadModel,
    log: &[RecordedEvent],
    as_of: Option<DateTime<Utc>>,
    at: DateTime<Utc>,
) -> Vec<serde_json::Value> {
    let v = |x: &dyn erased::Ser| x.value();
    let period = PeriodQuery {
        period: Period::default(),
        as_of,
        scope: Scope::Organisation,
    };
    let june = PeriodQuery {
        period: Period::new(
            Some(t("2026-01-15T00:00:00Z")),
            Some(t("2026-02-15T00:00:00Z")),
        )
        .unwrap(),
        as_of,
        scope: Scope::Organisation,
    };
    let mut out = vec![
        refusable(pipeline::pipeline(
            m,
            &pipeline::PipelineQuery {
                as_of: Some(at),
                stale_days: 3,
                stuck_days: 5,
                scope: Scope::Organisation,
            },
            at,
        )),
        v(&pool::pool(m, Some(at), at)),
        refusable(channels::channels(m, &period)),
        refusable(channels::channels(m, &june)),
        refusable(winloss::win_loss(m, &period)),
        refusable(l2c::lead_to_cash(m, &june)),
        v(&activity::activity(m, &period)),
        refusable(reps::reps(
            m,
            &reps::RepsParams {
                months: Some(3),
                end: Some(Month::of(&at)),
                as_of,
                ..Default::default()
            }
            .validate()
            .unwrap(),
            at,
        )),
    ];
    for g in ["none", "rep", "source", "industry"] {
        let p = funnel::FunnelParams {
            group_by: Some(g.into()),
            as_of,
            ..Default::default()
        };
        out.push(v(&funnel::funnel(m, &p.validate().unwrap())));
    }
    for id in ids.deals.keys() {
        out.push(json!(replay::deal_state(m, id, as_of)));
    }
    let tq = timeline::TimelineParams {
        limit: Some(1000),
        as_of,
        ..Default::default()
    }
    .validate()
    .unwrap();
    for id in ids.customers.keys() {
        out.push(json!(timeline::timeline(m, log, id, &tq).unwrap()));
    }
    out
}

/// Every report without `as_of` (the index paths) against the same with `as_of` a year after
/// the last event (the scan paths, same figures by definition); the first difference, if any.
fn indexes_vs_scans(m: &ReadModel, events: &[RecordedEvent]) -> Option<String> {
    let last = events.iter().map(|e| e.occurred_at).max()?;
    let later = last + Duration::days(365);
    let fast = reports(m, m, events, None, later);
    let slow = reports(m, m, events, Some(later), later);
    fast.iter()
        .zip(&slow)
        .find(|(a, b)| a != b)
        .map(|(a, b)| format!("index: {a}\nscan:  {b}"))
}

/// The deal list (SPEC §5.1) for a spread of filters: every page (3 deals a page) walked by
/// its cursors, joined. Each must equal the plain scan of every deal, in the same order.
fn deal_lists(m: &ReadModel) -> Result<Vec<Vec<String>>, String> {
    use projections::deal_list::{list, scan, DealListParams};
    let last = m.latest_occurred_at.unwrap_or_default();
    let mid = domain::envelope::format_time(&(last - Duration::days(20)));
    let queries = [
        String::new(),
        "status=open".into(),
        "status=won".into(),
        "status=lost&reason=price".into(),
        "competitor=Acme".into(),
        "rep=wukong".into(),
        "team=east&status=lost".into(),
        "customer_id=C1".into(),
        "stage=quote".into(),
        "min_amount=200000".into(),
        "q=customer c2".into(),
        // Through the search arena: part of an id, a title in another case.
        "q=d1".into(),
        "q=DEAL&status=open".into(),
        format!("from={mid}"),
        format!("to={mid}&status=won"),
    ];
    let mut out = Vec::new();
    for query in queries {
        let params: DealListParams =
            serde_urlencoded::from_str(&query).map_err(|e| e.to_string())?;
        let mut q = params.validate().map_err(|e| e.to_string())?;
        for scope in [
            Scope::Organisation,
            Scope::Reps(["bajie".to_string(), "tang".to_string()].into()),
        ] {
            q.scope = scope;
            let want = scan(m, &q);
            let mut got = Vec::new();
            let mut page = q.clone();
            page.limit = 3;
            loop {
                let l = list(m, &page);
                got.extend(l.deals.iter().map(|d| d.id.clone()));
                match l.next_cursor {
                    Some(c) => page.after = projections::deal_list::decode_cursor(&c),
                    None => break,
                }
                if got.len() > m.deals.len() {
                    return Err(format!("{query}: paging does not end"));
                }
            }
            if got != want {
                return Err(format!(
                    "{query} ({:?}): pages {got:?}, scan {want:?}",
                    q.scope
                ));
            }
            out.push(got);
        }
    }
    Ok(out)
}

/// Named regression guard for the indexes: stage changes, a reassignment and a close logged
/// late land in the middle of deals' histories, so facts already counted (stage durations,
/// the owner at a close, the furthest stage) must be taken out and put back.
#[test]
fn late_stage_changes_reassignments_and_closes_keep_the_indexes_exact() {
    let mut b = LogBuilder::new();
    let open = |b: &mut LogBuilder, id: &str, owner: &str, at: &str| {
        b.ev(at, &format!("deal-{id}"), "DealOpened", owner,
            json!({"customer_id": "C1", "owner": owner, "title": id, "amount": 1000, "stage": "qualified"}));
    };
    b.ev(
        "2026-01-01T00:00:00Z",
        "customer-C1",
        "CustomerRegistered",
        "a",
        json!({"name": "C1", "owner": "a"}),
    );
    open(&mut b, "D1", "a", "2026-01-02T00:00:00Z");
    open(&mut b, "D2", "a", "2026-01-02T00:00:00Z");
    open(&mut b, "D3", "b", "2026-01-03T00:00:00Z");
    b.ev(
        "2026-01-20T00:00:00Z",
        "deal-D1",
        "DealStageChanged",
        "a",
        json!({"from": "qualified", "to": "quote"}),
    );
    b.ev(
        "2026-02-10T00:00:00Z",
        "deal-D1",
        "DealWon",
        "a",
        json!({"amount": 1200}),
    );
    b.ev(
        "2026-01-25T00:00:00Z",
        "deal-D2",
        "DealStageChanged",
        "a",
        json!({"from": "qualified", "to": "negotiation"}),
    );
    b.ev(
        "2026-02-05T00:00:00Z",
        "deal-D3",
        "DealLost",
        "b",
        json!({"reason": "price", "competitor": "K"}),
    );
    // Logged late: D1 went to presentation in between (splits a stay that was counted),
    // D2 was handed to b before it moved on, D3 had reached quote before it was lost.
    b.ev(
        "2026-01-10T00:00:00Z",
        "deal-D1",
        "DealStageChanged",
        "a",
        json!({"from": "qualified", "to": "presentation"}),
    );
    b.ev(
        "2026-01-21T00:00:00Z",
        "deal-D2",
        "DealReassigned",
        "a",
        json!({"from": "a", "to": "b"}),
    );
    b.ev(
        "2026-01-15T00:00:00Z",
        "deal-D3",
        "DealStageChanged",
        "b",
        json!({"from": "qualified", "to": "quote"}),
    );
    // And a close logged late on D2: its win moves into January, credited to b.
    b.ev(
        "2026-01-30T00:00:00Z",
        "deal-D2",
        "DealWon",
        "b",
        json!({"amount": 900}),
    );
    let events = b.events();
    let m = ReadModel::rebuild(events);
    assert_eq!(indexes_vs_scans(&m, events), None);
    // And after a restart (indexes rebuilt from the snapshot).
    let again: ReadModel = serde_json::from_slice(&bytes(&m)).unwrap();
    assert!(again == m);
    // Spot checks worked out by hand: D1 stayed in qualified 8 days (01-02 → 01-10), D2 in
    // qualified 23 days (01-02 → 01-25), D3 12 days (01-03 → 01-15): the median is 12.
    let f = funnel::funnel(&m, &funnel::FunnelParams::default().validate().unwrap());
    assert_eq!(f.groups[0].stages[0].median_days_in_stage, Some(12.0));
    let by_rep = funnel::funnel(
        &m,
        &funnel::FunnelParams {
            group_by: Some("rep".into()),
            ..Default::default()
        }
        .validate()
        .unwrap(),
    );
    let keys: Vec<&str> = by_rep.groups.iter().map(|g| g.key.as_str()).collect();
    assert_eq!(keys, ["a", "b"]); // D1 is a's; D2 (reassigned) and D3 are b's
    assert_eq!(
        (
            by_rep.groups[1].opened,
            by_rep.groups[1].won,
            by_rep.groups[1].lost
        ),
        (2, 1, 1)
    );
}

/// Tiny helper so `reports` can serialise any report the same way.
mod erased {
    pub trait Ser {
        fn value(&self) -> serde_json::Value;
    }
    impl<T: serde::Serialize> Ser for T {
        fn value(&self) -> serde_json::Value {
            serde_json::to_value(self).unwrap()
        }
    }
}

/// A report that may be refused for a missing exchange rate: the body, or the refusal (which
/// must then be the same refusal on both sides of a comparison).
fn refusable<T: serde::Serialize>(
    r: Result<T, projections::currency::MissingRate>,
) -> serde_json::Value {
    match r {
        Ok(body) => serde_json::to_value(body).unwrap(),
        Err(e) => json!({"refused": e.to_string()}),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn incremental_with_restarts_equals_rebuild(acts in actions(), restarts in prop::collection::vec(0u8..10, 100)) {
        let sim = Sim::run(&acts);
        let events = sim.log.events();
        let full = ReadModel::rebuild(events);
        let mut m = ReadModel::new();
        for (i, e) in events.iter().enumerate() {
            m.apply(e);
            match restarts[i % restarts.len()] {
                0 => m = serde_json::from_slice(&bytes(&m)).unwrap(),
                1 => m = ReadModel::rebuild(&events[..=i]),
                2 => m.apply(e), // re-delivery
                _ => {}
            }
        }
        prop_assert_eq!(bytes(&m), bytes(&full));
        prop_assert!(m == full);
        // Determinism.
        prop_assert_eq!(bytes(&ReadModel::rebuild(events)), bytes(&full));
        // The indexes the model keeps (funnel, rep months, open deals, won deals) answer
        // exactly what the scans answer: `as_of` after the last event takes the scan paths.
        prop_assert_eq!(indexes_vs_scans(&full, events), None);
        // The deal list's index, kept event by event (late events and restarts included),
        // answers what a scan of every deal answers, and what the rebuilt model answers.
        let (inc, reb) = (deal_lists(&m), deal_lists(&full));
        prop_assert!(inc.is_ok(), "{:?}", inc);
        prop_assert_eq!(inc, reb);
        prop_assert_eq!(m.deal_index.len(), m.deals.values().filter(|d| d.current.is_some()).count());
    }

    #[test]
    fn deal_states_match_the_plain_model(acts in actions()) {
        let sim = Sim::run(&acts);
        let m = ReadModel::rebuild(sim.log.events());
        prop_assert_eq!(m.deals.len(), sim.deals.len());
        // The cached fold (cheap appends, refolds on late events) equals a fold from scratch.
        for (id, rec) in &m.deals {
            let fresh = projections::DealView::fold(id, &rec.entries);
            prop_assert_eq!(rec.current.as_deref(), fresh.as_ref());
        }
        // Funnel totals over everything agree with the plain model's statuses.
        let f = funnel::funnel(&m, &funnel::FunnelParams::default().validate().unwrap());
        let g = &f.groups[0];
        let count = |st: DealStatus| sim.deals.values().filter(|d| d.status == st).count() as u32;
        prop_assert_eq!((g.opened, g.won, g.lost, g.open),
            (sim.deals.len() as u32, count(DealStatus::Won), count(DealStatus::Lost), count(DealStatus::Open)));
        // The pool holds exactly the plain model's unowned customers; owners add up.
        let now = sim.now.unwrap();
        let p = pool::pool(&m, None, now);
        let in_pool: Vec<&str> = sim.customers.iter().filter(|c| c.1.is_none()).map(|c| c.0.as_str()).collect();
        let mut got: Vec<&str> = p.customers.iter().map(|c| c.customer_id.as_str()).collect();
        let mut want = in_pool.clone();
        got.sort_unstable();
        want.sort_unstable();
        prop_assert_eq!(got, want);
        let owned: u32 = p.customers_per_rep.iter().map(|r| r.customers).sum();
        prop_assert_eq!(owned as usize, sim.customers.len() - in_pool.len());
        for (id, d) in &sim.deals {
            let s = replay::deal_state(&m, id, None).unwrap();
            prop_assert_eq!(&*s.customer_id, d.customer.as_str());
            prop_assert_eq!(&*s.owner, d.owner.as_str());
            prop_assert_eq!(&*s.stage, STAGES[d.stage]);
            prop_assert_eq!(s.amount.cents(), d.amount);
            prop_assert_eq!(s.status, d.status);
            prop_assert_eq!(s.quotes, d.quotes);
            prop_assert_eq!(s.activities, d.activities);
            prop_assert_eq!(s.paid.cents(), d.paid);
            prop_assert_eq!(s.opened_at, d.opened_at);
            // Every step of the replay is the state as of that step's event, and the last is now.
            let r = replay::replay(&m, id, sim.log.events(), sim.now.unwrap()).unwrap();
            prop_assert_eq!(&r.steps.last().unwrap().state, &s);
        }
    }

    #[test]
    fn as_of_equals_the_model_of_earlier_events(acts in actions(), picks in prop::collection::vec(any::<prop::sample::Index>(), 3)) {
        let sim = Sim::run(&acts);
        let events: &[RecordedEvent] = sim.log.events();
        let full = ReadModel::rebuild(events);
        if events.is_empty() {
            return Ok(());
        }
        for p in picks {
            // T: an event's occurred_at (ties included), or just before it.
            let e = p.get(events);
            let at = if p.index(2) == 0 { e.occurred_at } else { e.occurred_at - Duration::seconds(1) };
            let earlier: Vec<RecordedEvent> = events.iter().filter(|e| e.occurred_at <= at).cloned().collect();
            let part = ReadModel::rebuild(&earlier);
            prop_assert_eq!(reports(&full, &full, events, Some(at), at), reports(&part, &full, events, None, at));
        }
    }
}

#[test]
fn late_activity_is_folded_where_it_happened() {
    // Named regression guard: a late activity must not move last_touch_at backwards and must
    // count in the state as of its own time.
    let mut b = LogBuilder::new();
    b.ev("2026-03-01T00:00:00Z", "deal-D1", "DealOpened", "w",
        json!({"customer_id": "C1", "owner": "w", "title": "x", "amount": 10.0, "stage": "qualified"}));
    b.ev(
        "2026-03-05T00:00:00Z",
        "deal-D1",
        "DealStageChanged",
        "w",
        json!({"from": "qualified", "to": "quote"}),
    );
    b.ev(
        "2026-03-02T00:00:00Z",
        "deal-D1",
        "ActivityLogged",
        "w",
        json!({"kind": "call", "rep": "w"}),
    );
    let m = ReadModel::rebuild(b.events());
    let s = replay::deal_state(&m, "D1", None).unwrap();
    assert_eq!(
        (s.activities, s.last_touch_at),
        (1, t("2026-03-05T00:00:00Z"))
    );
    let s = replay::deal_state(&m, "D1", Some(t("2026-03-03T00:00:00Z"))).unwrap();
    assert_eq!((s.activities, &*s.stage), (1, "qualified"));
}

#[test]
fn the_generator_covers_the_vocabulary() {
    // Guard against vacuous properties: over a few generated logs, every kind of event the
    // action model knows appears, and some activities are logged late.
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut late = 0;
    // Reports over logs with deals in other currencies: both converted and refused ones.
    let (mut converted, mut refused) = (0, 0);
    for _ in 0..40 {
        let acts = actions().new_tree(&mut runner).unwrap().current();
        let sim = Sim::run(&acts);
        let evs = sim.log.events();
        let foreign_win = evs.iter().any(|e| {
            e.event_type == "DealOpened"
                && ["USD", "EUR"].contains(&e.data["currency"].as_str().unwrap_or("CNY"))
        }) && evs.iter().any(|e| e.event_type == "DealWon");
        if foreign_win {
            let m = ReadModel::rebuild(evs);
            let q = PeriodQuery {
                period: Period::default(),
                as_of: None,
                scope: Scope::Organisation,
            };
            match winloss::win_loss(&m, &q) {
                Ok(_) => converted += 1,
                Err(_) => refused += 1,
            }
        }
        for (i, e) in evs.iter().enumerate() {
            *seen.entry(e.event_type.clone()).or_default() += 1;
            if i > 0 && e.occurred_at < evs[i - 1].occurred_at {
                late += 1;
            }
        }
    }
    for ty in [
        "RepJoined",
        "CustomerRegistered",
        "CustomerClaimed",
        "CustomerReleased",
        "LeadCaptured",
        "LeadQualified",
        "LeadConverted",
        "DealOpened",
        "DealStageChanged",
        "QuoteIssued",
        "DealWon",
        "DealLost",
        "DealReopened",
        "PaymentReceived",
        "ActivityLogged",
        "SpendRecorded",
        "DealReassigned",
        "CompetitorNoted",
        "DealAmountChanged",
        "ExchangeRateSet",
        "ReportingCurrencySet",
    ] {
        assert!(
            seen.get(ty).copied().unwrap_or(0) > 0,
            "{ty} never generated: {seen:?}"
        );
    }
    assert!(late > 5, "only {late} late events");
    assert!(
        converted > 0 && refused > 0,
        "converted {converted}, refused {refused}"
    );
}

#[test]
fn events_a_validated_log_cannot_hold_are_ignored_without_panic() {
    // Unparseable data, an unknown type, a bad stream name, and a deal event dated before its
    // opening: the model neither panics nor lets them break rebuild == incremental.
    let mut b = LogBuilder::new();
    b.ev("2026-03-01T00:00:00Z", "deal-D1", "DealOpened", "w",
        json!({"customer_id": "C1", "owner": "w", "title": "x", "amount": 10.0, "stage": "qualified"}));
    b.ev(
        "2026-03-02T00:00:00Z",
        "deal-D1",
        "DealWon",
        "w",
        json!({"amount": "lots"}),
    );
    b.ev(
        "2026-03-02T00:00:00Z",
        "deal-D1",
        "DealTeleported",
        "w",
        json!({}),
    );
    b.ev(
        "2026-03-02T00:00:00Z",
        "nonsense",
        "RepLeft",
        "w",
        json!({"rep": "w"}),
    );
    b.ev(
        "2026-02-01T00:00:00Z",
        "deal-D1",
        "ActivityLogged",
        "w",
        json!({"kind": "call", "rep": "w"}),
    );
    b.ev(
        "2026-03-03T00:00:00Z",
        "deal-D1",
        "DealStageChanged",
        "w",
        json!({"from": "qualified", "to": "quote"}),
    );
    b.ev(
        "2026-01-01T00:00:00Z",
        "deal-D2",
        "DealStageChanged",
        "w",
        json!({"from": "qualified", "to": "quote"}),
    );
    let events = b.events();
    let full = ReadModel::rebuild(events);
    let mut m = ReadModel::new();
    for e in events {
        m.apply(e);
    }
    assert_eq!(bytes(&m), bytes(&full));
    assert_eq!(m.last_position, 7);
    let s = replay::deal_state(&m, "D1", None).unwrap();
    assert_eq!(
        (&*s.stage, s.status, s.activities),
        ("quote", DealStatus::Open, 0)
    );
    assert!(replay::deal_state(&m, "D2", None).is_none());
    let r = replay::replay(&m, "D1", events, t("2026-04-01T00:00:00Z")).unwrap();
    assert_eq!(r.steps.len(), 2);
    let _ = reports(&m, &m, events, None, t("2026-04-01T00:00:00Z"));
}

#[test]
fn funnel_counts_a_reopened_win_as_having_passed_every_stage() {
    // Opened at qualified 03-01, won 03-03, reopened at quote 03-04 (open now).
    // reached 1 everywhere ("or were won"); status open → won 0, open 1; conversions 1/1 up to
    // negotiation → contract, then won/reached[last] = 0/1 = 0.0. Ended visits: qualified
    // 03-01→03 = 2.0; the quote visit since 03-04 is still open.
    let mut b = LogBuilder::new();
    b.ev("2026-03-01T00:00:00Z", "deal-D1", "DealOpened", "w",
        json!({"customer_id": "C1", "owner": "w", "title": "x", "amount": 10.0, "stage": "qualified"}));
    b.ev(
        "2026-03-03T00:00:00Z",
        "deal-D1",
        "DealWon",
        "w",
        json!({"amount": 10.0}),
    );
    b.ev(
        "2026-03-04T00:00:00Z",
        "deal-D1",
        "DealReopened",
        "w",
        json!({"stage": "quote"}),
    );
    let m = ReadModel::rebuild(b.events());
    let f = funnel::funnel(&m, &funnel::FunnelParams::default().validate().unwrap());
    let g = serde_json::to_value(&f.groups[0]).unwrap();
    assert_eq!(
        (
            g["opened"].clone(),
            g["won"].clone(),
            g["open"].clone(),
            g["win_rate"].clone()
        ),
        (json!(1), json!(0), json!(1), json!(null))
    );
    let reached: Vec<u64> = g["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["reached"].as_u64().unwrap())
        .collect();
    assert_eq!(reached, [1, 1, 1, 1, 1]);
    let conv: Vec<f64> = g["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["conversion_to_next"].as_f64().unwrap())
        .collect();
    assert_eq!(conv, [1.0, 1.0, 1.0, 1.0, 0.0]);
    assert_eq!(g["stages"][0]["median_days_in_stage"], json!(2.0));
    assert_eq!(g["stages"][2]["median_days_in_stage"], json!(null));
}

#[test]
fn a_deal_as_of_a_time_within_a_second_of_its_events_is_folded_from_the_events_then() {
    // The model tells a deal wholly after or wholly before `as_of` from whole seconds
    // around its first and last event; times inside those seconds must still give exactly
    // the deal as of then: the deal of a model of the events up to then.
    let mut b = LogBuilder::new();
    b.ev("2026-03-01T10:00:00.500Z", "deal-D1", "DealOpened", "w",
        json!({"customer_id": "C1", "owner": "w", "title": "x", "amount": 10.0, "stage": "qualified"}));
    b.ev(
        "2026-03-01T10:00:01.250Z",
        "deal-D1",
        "DealStageChanged",
        "w",
        json!({"from": "qualified", "to": "quote"}),
    );
    b.ev(
        "2026-03-01T10:00:03Z",
        "deal-D1",
        "DealWon",
        "w",
        json!({"amount": 12.0}),
    );
    let events = b.events();
    let full = ReadModel::rebuild(events);
    // The same model written and read back (as the service's snapshot is): its deals' spans
    // are set again.
    let stored: ReadModel = serde_json::from_value(serde_json::to_value(&full).unwrap()).unwrap();
    let times = [
        "2026-03-01T09:59:59.900Z",
        "2026-03-01T10:00:00Z",
        "2026-03-01T10:00:00.400Z",
        "2026-03-01T10:00:00.500Z",
        "2026-03-01T10:00:00.999Z",
        "2026-03-01T10:00:01Z",
        "2026-03-01T10:00:01.250Z",
        "2026-03-01T10:00:02.500Z",
        "2026-03-01T10:00:03Z",
        "2026-03-01T10:00:03.001Z",
    ];
    let mut seen = BTreeSet::new();
    for at in times.map(t) {
        let earlier: Vec<RecordedEvent> = events
            .iter()
            .filter(|e| e.occurred_at <= at)
            .cloned()
            .collect();
        let then = ReadModel::rebuild(&earlier);
        let want = then.deal_view("D1", None).map(|v| v.into_owned());
        seen.insert(
            want.as_ref()
                .map(|v| (v.state.stage.to_string(), v.closes.len())),
        );
        for m in [&full, &stored] {
            assert_eq!(
                m.deal_view("D1", Some(at)).map(|v| v.into_owned()),
                want,
                "as of {at}"
            );
            let listed: Vec<_> = m.deal_views(Some(at)).map(|v| v.into_owned()).collect();
            assert_eq!(
                listed,
                want.iter().cloned().collect::<Vec<_>>(),
                "as of {at}"
            );
        }
    }
    // Before the opening, qualified, quote, won: every state was asked for.
    assert_eq!(seen.len(), 4, "{seen:?}");
}
