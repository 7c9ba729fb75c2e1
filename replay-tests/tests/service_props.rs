//! Property tests for the customer service report (SPEC §2.7) and the follow-up list (§2.8)
//! over random valid logs: customers registered, claimed, assigned, released, asked for NPS,
//! complaining, churning; deals opened, reassigned, won, lost, paid by installment; leads
//! qualified, disqualified, qualified again, converted. Customer events and activities are
//! sometimes logged late (an `occurred_at` before events already in the log).
//!
//! Properties:
//! 1. one event at a time, with restarts mixed in, gives the model (indexes included) and
//!    the reports of a rebuild;
//! 2. the service report equals a plain count written here from the SPEC's words, over the
//!    events themselves (grouped by the owner at each month's end, or not);
//! 3. both reports as of T equal the same reports over a model of the events with
//!    `occurred_at ≤ T` (the scan against the kept index);
//! 4. the generator writes logs the domain accepts.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration, Utc};
use domain::{Month, RecordedEvent};
use projections::follow_up::{follow_up, FollowUpParams};
use projections::service::{service, ServiceParams};
use projections::ReadModel;
use proptest::prelude::*;
use replay_tests::{t, LogBuilder};
use serde_json::{json, Value};

const REPS: [&str; 3] = ["tang", "wukong", "bajie"];

#[derive(Debug, Clone)]
struct Customer {
    id: String,
    owner: Option<&'static str>,
    registered: DateTime<Utc>,
    open: Vec<String>,
    complaints: u32,
}

#[derive(Debug, Clone)]
struct Deal {
    id: String,
    owner: &'static str,
    opened: DateTime<Utc>,
    /// 0 open, 1 won, 2 lost
    status: u8,
    installments: Vec<String>,
    paid: i64,
}

#[derive(Debug, Clone)]
struct Lead {
    id: String,
    /// 0 captured, 1 qualified, 2 disqualified, 3 converted
    state: u8,
}

#[derive(Default)]
struct Sim {
    log: LogBuilder,
    now: DateTime<Utc>,
    reps: Vec<&'static str>,
    customers: Vec<Customer>,
    deals: Vec<Deal>,
    leads: Vec<Lead>,
}

type Action = (u8, u8, u8, u16, bool, u16);

impl Sim {
    fn run(actions: &[Action]) -> Sim {
        let mut s = Sim {
            now: t("2026-01-03T08:00:00Z"),
            ..Sim::default()
        };
        for &(kind, a, b, step, late, late_min) in actions {
            // Steps of up to ~4 days: a run spans a few months.
            s.now += Duration::minutes(i64::from(step) * 3);
            s.act(kind, a, b, late.then_some(late_min));
        }
        s
    }

    fn rep(&self, x: u8) -> Option<&'static str> {
        (!self.reps.is_empty()).then(|| self.reps[x as usize % self.reps.len()])
    }

    /// When a late event on a stream opened at `opened` happens.
    fn when(&self, late: Option<u16>, opened: DateTime<Utc>) -> DateTime<Utc> {
        match late {
            Some(m) => (self.now - Duration::minutes(i64::from(m) * 6)).max(opened),
            None => self.now,
        }
    }

    fn ev(&mut self, at: DateTime<Utc>, stream: &str, ty: &str, actor: &str, data: Value) {
        self.log.ev_at(at, stream, ty, actor, data);
    }

    fn act(&mut self, kind: u8, a: u8, b: u8, late: Option<u16>) {
        let now = self.now;
        let nc = self.customers.len();
        let ci = (a as usize) % nc.max(1);
        match kind % 16 {
            0 => {
                let r = REPS[a as usize % 3];
                if !self.reps.contains(&r) {
                    self.reps.push(r);
                    let team = if a.is_multiple_of(2) { "west" } else { "east" };
                    self.ev(
                        now,
                        "org-main",
                        "RepJoined",
                        "admin",
                        json!({"rep": r, "name": r, "team": team}),
                    );
                }
            }
            1 => {
                let id = format!("K{}", nc + 1);
                let owner = if b.is_multiple_of(3) {
                    None
                } else {
                    self.rep(b)
                };
                let mut data = json!({"name": format!("Customer {id}")});
                if let Some(o) = owner {
                    data["owner"] = json!(o);
                }
                self.ev(
                    now,
                    &format!("customer-{id}"),
                    "CustomerRegistered",
                    "admin",
                    data,
                );
                self.customers.push(Customer {
                    id,
                    owner,
                    registered: now,
                    open: vec![],
                    complaints: 0,
                });
            }
            2 if nc > 0 => {
                let c = self.customers[ci].clone();
                let Some(r) = self.rep(b) else { return };
                let stream = format!("customer-{}", c.id);
                match c.owner {
                    None => self.ev(now, &stream, "CustomerClaimed", r, json!({"rep": r})),
                    Some(_) if b.is_multiple_of(2) => {
                        self.ev(
                            now,
                            &stream,
                            "CustomerReleased",
                            "admin",
                            json!({"reason": "test"}),
                        );
                        self.customers[ci].owner = None;
                        return;
                    }
                    Some(_) => {
                        self.ev(now, &stream, "CustomerAssigned", "admin", json!({"rep": r}))
                    }
                }
                self.customers[ci].owner = Some(r);
            }
            3 | 4 if nc > 0 => {
                let c = &self.customers[ci];
                let at = self.when(late, c.registered);
                let stream = format!("customer-{}", c.id);
                self.ev(
                    at,
                    &stream,
                    "NpsRecorded",
                    "survey",
                    json!({"score": b % 11}),
                );
            }
            5 if nc > 0 => {
                let c = &mut self.customers[ci];
                c.complaints += 1;
                let id = format!("X{}", c.complaints);
                c.open.push(id.clone());
                let (stream, reg) = (format!("customer-{}", c.id), c.registered);
                let at = self.when(late, reg);
                self.ev(
                    at,
                    &stream,
                    "ComplaintFiled",
                    "service",
                    json!({"complaint_id": id}),
                );
            }
            6 if nc > 0 => {
                let c = &mut self.customers[ci];
                if c.open.is_empty() {
                    return;
                }
                let id = c.open.remove(b as usize % c.open.len());
                let (stream, reg) = (format!("customer-{}", c.id), c.registered);
                let at = self.when(late, reg);
                self.ev(
                    at,
                    &stream,
                    "ComplaintResolved",
                    "service",
                    json!({"complaint_id": id}),
                );
            }
            7 if nc > 0 && b.is_multiple_of(3) => {
                let c = &self.customers[ci];
                let (stream, reg) = (format!("customer-{}", c.id), c.registered);
                let at = self.when(late, reg);
                self.ev(at, &stream, "CustomerChurned", "service", json!({}));
            }
            8 if nc > 0 => {
                let Some(r) = self.rep(b) else { return };
                let c = &self.customers[ci];
                let (stream, reg) = (format!("customer-{}", c.id), c.registered);
                let at = self.when(late, reg);
                self.ev(
                    at,
                    &stream,
                    "ActivityLogged",
                    r,
                    json!({"kind": "call", "rep": r}),
                );
            }
            9 if nc > 0 => {
                let c = self.customers[ci].clone();
                let Some(owner) = c.owner.or_else(|| self.rep(b)) else {
                    return;
                };
                let id = format!("F{}", self.deals.len() + 1);
                self.ev(now, &format!("deal-{id}"), "DealOpened", owner,
                    json!({"customer_id": c.id, "owner": owner, "title": format!("Deal {id}"), "amount": 1000, "stage": "qualified"}));
                self.deals.push(Deal {
                    id,
                    owner,
                    opened: now,
                    status: 0,
                    installments: vec![],
                    paid: 0,
                });
            }
            10 | 11 if !self.deals.is_empty() => {
                let di = a as usize % self.deals.len();
                let d = self.deals[di].clone();
                let stream = format!("deal-{}", d.id);
                match d.status {
                    0 if b.is_multiple_of(4) => {
                        self.ev(
                            now,
                            &stream,
                            "DealLost",
                            d.owner,
                            json!({"reason": "price"}),
                        );
                        self.deals[di].status = 2;
                    }
                    0 if b % 4 == 1 => {
                        let Some(to) = self.rep(b / 4).filter(|r| *r != d.owner) else {
                            return;
                        };
                        self.ev(
                            now,
                            &stream,
                            "DealReassigned",
                            "admin",
                            json!({"from": d.owner, "to": to}),
                        );
                        self.deals[di].owner = to;
                    }
                    0 => {
                        self.ev(now, &stream, "DealWon", d.owner, json!({"amount": 1000}));
                        self.deals[di].status = 1;
                    }
                    1 if d.installments.len() < 3 && b.is_multiple_of(2) => {
                        let id = format!("P{}", d.installments.len() + 1);
                        let due = (now + Duration::days(i64::from(b % 40)) - Duration::days(10))
                            .date_naive()
                            .to_string();
                        self.ev(
                            now,
                            &stream,
                            "PaymentScheduled",
                            "finance",
                            json!({"installment_id": id, "amount": 300, "due": due}),
                        );
                        self.deals[di].installments.push(id);
                    }
                    1 if !d.installments.is_empty() && d.paid + 100 <= 1000 => {
                        let id = d.installments[b as usize % d.installments.len()].clone();
                        self.ev(
                            now,
                            &stream,
                            "PaymentReceived",
                            "finance",
                            json!({"amount": 100, "installment_id": id}),
                        );
                        self.deals[di].paid += 100;
                    }
                    _ => {}
                }
            }
            12 if !self.deals.is_empty() => {
                let d = &self.deals[a as usize % self.deals.len()];
                let (stream, opened, owner) = (format!("deal-{}", d.id), d.opened, d.owner);
                let at = self.when(late, opened);
                self.ev(
                    at,
                    &stream,
                    "ActivityLogged",
                    owner,
                    json!({"kind": "email", "rep": owner}),
                );
            }
            13 => {
                let id = format!("L{}", self.leads.len() + 1);
                self.ev(
                    now,
                    &format!("lead-{id}"),
                    "LeadCaptured",
                    "web",
                    json!({"channel": "web", "name": format!("Lead {id}")}),
                );
                self.leads.push(Lead { id, state: 0 });
            }
            14 | 15 if !self.leads.is_empty() => {
                let li = a as usize % self.leads.len();
                let l = self.leads[li].clone();
                let stream = format!("lead-{}", l.id);
                match (l.state, b % 3) {
                    (3, _) => {}
                    (1, 0) if nc > 0 => {
                        let c = self.customers[b as usize % nc].id.clone();
                        self.ev(
                            now,
                            &stream,
                            "LeadConverted",
                            "admin",
                            json!({"customer_id": c}),
                        );
                        self.leads[li].state = 3;
                    }
                    (0 | 1, 1) => {
                        self.ev(
                            now,
                            &stream,
                            "LeadDisqualified",
                            "admin",
                            json!({"reason": "no"}),
                        );
                        self.leads[li].state = 2;
                    }
                    _ => {
                        let Some(r) = self.rep(b) else { return };
                        let mut data = json!({"rep": r, "fit_score": b % 101});
                        if !b.is_multiple_of(5) {
                            data["intent_score"] = json!(a % 101);
                        }
                        self.ev(now, &stream, "LeadQualified", r, data);
                        self.leads[li].state = 1;
                    }
                }
            }
            _ => {}
        }
    }
}

fn actions() -> impl Strategy<Value = Vec<Action>> {
    prop::collection::vec(
        (
            0u8..16,
            any::<u8>(),
            any::<u8>(),
            0u16..2000,
            prop::bool::weighted(0.2),
            0u16..20000,
        ),
        1..140,
    )
}

fn q<T: serde::de::DeserializeOwned>(s: &str) -> T {
    serde_urlencoded::from_str(s).unwrap_or_else(|e| panic!("{s}: {e}"))
}

fn service_json(m: &ReadModel, query: &str, now: DateTime<Utc>) -> Value {
    let sq = q::<ServiceParams>(query).validate().unwrap();
    serde_json::to_value(service(m, &sq, now)).unwrap()
}

fn follow_json(m: &ReadModel, rep: &str, as_of: DateTime<Utc>) -> Value {
    let query = format!("rep={rep}&as_of={}", domain::envelope::format_time(&as_of));
    let mut fq = q::<FollowUpParams>(&query).validate().unwrap();
    fq.release_after_days = Some(5);
    serde_json::to_value(follow_up(m, &fq, as_of)).unwrap()
}

/// Both reports, every way they can be asked, as JSON.
fn all_reports(m: &ReadModel, as_of: DateTime<Utc>, end: Month) -> Vec<Value> {
    let at = domain::envelope::format_time(&as_of);
    let mut out = vec![
        service_json(m, &format!("months=4&end={end}&as_of={at}"), as_of),
        service_json(
            m,
            &format!("months=4&end={end}&group_by=rep&as_of={at}"),
            as_of,
        ),
    ];
    for rep in REPS {
        out.push(follow_json(m, rep, as_of));
    }
    out
}

/// The service report counted plainly from the events, as SPEC §2.7 words it.
fn plain_service(events: &[RecordedEvent], months: &[Month], by_rep: bool) -> Value {
    let mut per_customer: BTreeMap<String, Vec<&RecordedEvent>> = BTreeMap::new();
    for e in events.iter().filter(|e| e.stream.starts_with("customer-")) {
        per_customer
            .entry(e.stream[9..].to_string())
            .or_default()
            .push(e);
    }
    let first = events
        .iter()
        .map(|e| Month::of(&e.occurred_at))
        .min()
        .unwrap_or(months[0])
        .min(months[0]);
    let end = *months.last().unwrap();
    // (group, month) → [responses, promoters, passives, detractors, active, churned, opened,
    // resolved, open at end] and the resolution days.
    type Figures = ([i64; 9], Vec<f64>);
    let mut table: BTreeMap<(Option<String>, Month), Figures> = BTreeMap::new();
    for evs in per_customer.values_mut() {
        evs.sort_by_key(|e| (e.occurred_at, e.position));
        let Some(reg) = evs
            .iter()
            .find(|e| e.event_type == "CustomerRegistered")
            .map(|e| e.occurred_at)
        else {
            continue;
        };
        let mut m = first;
        while m <= end {
            let (start, next) = (m.start(), m.next().start());
            let upto: Vec<&&RecordedEvent> = evs.iter().filter(|e| e.occurred_at < next).collect();
            if reg >= next {
                m = m.next();
                continue;
            }
            let mut owner: Option<String> = None;
            let mut open: BTreeMap<String, DateTime<Utc>> = BTreeMap::new();
            let mut f = [0i64; 9];
            let mut days = Vec::new();
            let mut nps = None;
            let mut churned_before = false;
            for e in &upto {
                let d: &Value = &e.data;
                let s = |k: &str| d[k].as_str().map(str::to_string);
                let in_month = e.occurred_at >= start;
                match e.event_type.as_str() {
                    "CustomerRegistered" => owner = s("owner"),
                    "CustomerClaimed" | "CustomerAssigned" => owner = s("rep"),
                    "CustomerReleased" => owner = None,
                    "CustomerChurned" if in_month => f[5] = 1,
                    "CustomerChurned" => churned_before = true,
                    "NpsRecorded" if in_month => nps = d["score"].as_i64(),
                    "ComplaintFiled" => {
                        f[6] += i64::from(in_month);
                        open.entry(s("complaint_id").unwrap())
                            .or_insert(e.occurred_at);
                    }
                    "ComplaintResolved" => {
                        f[7] += i64::from(in_month);
                        if let Some(at) = open.remove(&s("complaint_id").unwrap()) {
                            if in_month {
                                days.push(
                                    (e.occurred_at - at).num_milliseconds() as f64 / 86_400_000.0,
                                );
                            }
                        }
                    }
                    _ => {}
                }
            }
            if let Some(score) = nps {
                f[0] = 1;
                f[if score >= 9 {
                    1
                } else if score >= 7 {
                    2
                } else {
                    3
                }] = 1;
            }
            f[4] = i64::from(reg < start && !churned_before);
            f[8] = open.len() as i64;
            let key = (if by_rep { owner } else { Some("all".into()) }, m);
            let x = table.entry(key).or_default();
            for (sum, n) in x.0.iter_mut().zip(f) {
                *sum += n;
            }
            x.1.extend(days);
            m = m.next();
        }
    }
    let mut groups: BTreeSet<Option<String>> = table
        .iter()
        .filter(|(_, v)| v.0.iter().any(|n| *n != 0))
        .map(|(k, _)| k.0.clone())
        .collect();
    if !by_rep {
        groups.insert(Some("all".into()));
    }
    // Reps by name, the pool last.
    let mut groups: Vec<Option<String>> = groups.into_iter().collect();
    groups.sort_by_key(|g| (g.is_none(), g.clone()));
    let r4 = |x: f64| (x * 10_000.0).round() / 10_000.0;
    let groups: Vec<Value> = groups
        .into_iter()
        .map(|g| {
            let series: Vec<Value> = months
                .iter()
                .map(|m| {
                    let (f, mut days) = table.get(&(g.clone(), *m)).cloned().unwrap_or_default();
                    let score = (f[0] > 0).then(|| ((100.0 * (f[1] - f[3]) as f64 / f[0] as f64) * 10.0).round() / 10.0);
                    let churn = (f[4] > 0).then(|| r4(f[5] as f64 / f[4] as f64));
                    days.sort_by(f64::total_cmp);
                    let n = days.len();
                    let median = (n > 0).then(|| {
                        let x = if n % 2 == 1 { days[n / 2] } else { (days[n / 2 - 1] + days[n / 2]) / 2.0 };
                        (x * 10.0).round() / 10.0
                    });
                    json!({"month": m, "nps": {"responses": f[0], "promoters": f[1], "passives": f[2], "detractors": f[3], "score": score},
                        "active_at_start": f[4], "churned": f[5], "churn_rate": churn, "retention_rate": churn.map(|c| r4(1.0 - c)),
                        "complaints_opened": f[6], "complaints_resolved": f[7], "median_resolution_days": median,
                        "open_complaints_at_end": f[8]})
                })
                .collect();
            json!({"key": g.unwrap_or_else(|| "pool".into()), "series": series})
        })
        .collect();
    json!(groups)
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
                0 => m = serde_json::from_slice(&serde_json::to_vec(&m).unwrap()).unwrap(),
                1 => m = ReadModel::rebuild(&events[..=i]),
                _ => {}
            }
        }
        prop_assert!(m == full);
        let end = Month::of(&sim.now);
        prop_assert_eq!(all_reports(&m, sim.now, end), all_reports(&full, sim.now, end));
    }

    #[test]
    fn service_equals_a_plain_count(acts in actions()) {
        let sim = Sim::run(&acts);
        let events = sim.log.events();
        let m = ReadModel::rebuild(events);
        let end = Month::of(&sim.now);
        let months = [end.prev().prev().prev(), end.prev().prev(), end.prev(), end];
        for by_rep in [false, true] {
            let query = format!("months=4&end={end}{}", if by_rep { "&group_by=rep" } else { "" });
            let got = service_json(&m, &query, sim.now);
            prop_assert_eq!(&got["groups"], &plain_service(events, &months, by_rep), "{}", query);
        }
    }

    #[test]
    fn as_of_equals_the_model_of_earlier_events(acts in actions(), picks in prop::collection::vec(any::<prop::sample::Index>(), 3)) {
        let sim = Sim::run(&acts);
        let events: &[RecordedEvent] = sim.log.events();
        if events.is_empty() {
            return Ok(());
        }
        let full = ReadModel::rebuild(events);
        for p in picks {
            let e = p.get(events);
            let at = if p.index(2) == 0 { e.occurred_at } else { e.occurred_at - Duration::seconds(1) };
            let earlier: Vec<RecordedEvent> = events.iter().filter(|e| e.occurred_at <= at).cloned().collect();
            let part = ReadModel::rebuild(&earlier);
            let end = Month::of(&at);
            prop_assert_eq!(all_reports(&full, at, end), all_reports(&part, at, end));
        }
    }

    #[test]
    fn the_generator_writes_logs_the_domain_accepts(acts in actions()) {
        let sim = Sim::run(&acts);
        let refused = sim.log.refusals(t("2030-01-01T00:00:00Z"));
        prop_assert!(refused.is_empty(), "{:?}", refused);
    }
}

/// The generator reaches every part of both reports (else the properties prove little).
#[test]
fn the_generator_covers_both_reports() {
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let acts: Vec<Action> = (0..600)
        .map(|i| {
            let r = next();
            let kind = if i < 6 { 0 } else { (r % 16) as u8 };
            (
                kind,
                (r >> 8) as u8,
                (r >> 16) as u8,
                ((r >> 24) % 400) as u16,
                (r >> 40) % 5 == 0,
                ((r >> 44) % 2000) as u16,
            )
        })
        .collect();
    let sim = Sim::run(&acts);
    let events = sim.log.events();
    for ty in [
        "NpsRecorded",
        "ComplaintResolved",
        "CustomerChurned",
        "CustomerAssigned",
        "CustomerReleased",
        "PaymentReceived",
        "DealReassigned",
        "LeadDisqualified",
        "LeadConverted",
    ] {
        assert!(events.iter().any(|e| e.event_type == ty), "no {ty}");
    }
    assert!(
        events
            .windows(2)
            .any(|w| w[1].occurred_at < w[0].occurred_at),
        "nothing logged late"
    );
    let m = ReadModel::rebuild(events);
    let end = Month::of(&sim.now);
    let s = service_json(&m, &format!("months=4&end={end}"), sim.now);
    let series = s["groups"][0]["series"].as_array().unwrap();
    for field in [
        "active_at_start",
        "churned",
        "complaints_resolved",
        "open_complaints_at_end",
    ] {
        assert!(
            series.iter().any(|x| x[field].as_u64() > Some(0)),
            "{field} always 0"
        );
    }
    assert!(series
        .iter()
        .any(|x| x["nps"]["responses"].as_u64() > Some(1)));
    let lists = [
        "overdue_payments",
        "stale_deals",
        "pool_release_soon",
        "leads_to_work",
    ];
    for list in lists {
        let any = REPS.iter().any(|r| {
            let f = follow_json(&m, r, sim.now);
            !f[list].as_array().unwrap().is_empty()
        });
        assert!(any, "{list} always empty");
    }
}
