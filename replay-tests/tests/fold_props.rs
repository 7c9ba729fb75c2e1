//! One fold per fact: for generated customer streams, every read that shows a customer's
//! owner or status tells the same story as the domain's fold, and that story is the one of
//! business order (`domain::state`: events by (`occurred_at`, `position`)).
//!
//! The streams are generated with late entries (an `occurred_at` before events already in
//! the log, never before the registration), ties of `occurred_at` (broken by `position`),
//! interleaved customers, and `CustomerUpdated.owner` (refused on append today, but a log
//! written before that rule, or imported, holds it). They are not run through the rules: the
//! folds are total, and the reads must agree on any log.
//!
//! Compared, for the whole log and as of a generated time:
//! - a plain oracle written here: the owner is the rep of the last ownership event in
//!   business order (registration, claim, assignment, update with an owner; a release
//!   empties it), churned once a `CustomerChurned` is in;
//! - `domain::state::fold_stream` over the stream, given in log order and shuffled (what
//!   `GET /v1/customers/{id}?as_of` returns: the events with `occurred_at ≤ as_of`, folded);
//! - the API's scope: `api::http::ownership::ownership_of` (its owner index, `domain::state::Owners`);
//! - the read model's customer (`ReadModel::customer_view`, the state every report reads);
//! - the pool report: a customer is listed iff it has no owner and is not churned, with the
//!   fold's `in_pool_since`; `customers_per_rep` counts the owned, unchurned ones.
//!
//! Deals, over generated deal streams (stage changes, amounts, reassignments, quotes,
//! competitors, activities, wins, losses, reopenings, payments, late and tied): the domain's
//! `DealState` (the rules' state) against an oracle (last stage, owner and outcome in
//! business order) and against the read model's deal (what the deal GET and `as_of`
//! return: the same `DealState`, folded from the model's compact ops), whole; replay's last
//! step; the scope's owner; the installments (amount and received of each id, as SPEC §2.8
//! sums them: a payment dated before its scheduling counts) against an oracle, and the
//! owner's follow-up list (`overdue_payments`) against the same oracle.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use domain::state::{fold_stream, CustomerState};
use domain::{RecordedEvent, StreamName};
use projections::{pool, ReadModel};
use proptest::prelude::*;
use replay_tests::{t, LogBuilder};
use serde_json::json;

use api::http::ownership::{ownership_of, Ownership};

const REPS: [&str; 3] = ["wukong", "bajie", "wujing"];
const CUSTOMERS: usize = 3;

/// One generated event of a customer stream: which customer, how many hours after the
/// registrations it occurred, and what.
#[derive(Debug, Clone)]
struct Op {
    customer: usize,
    hours: i64,
    kind: Kind,
}

#[derive(Debug, Clone)]
enum Kind {
    Updated { owner: Option<usize>, name: bool },
    Claimed(usize),
    Assigned(usize),
    Released,
    Churned,
    Activity(usize),
    Complaint,
}

fn kind() -> impl Strategy<Value = Kind> {
    let rep = 0..REPS.len();
    prop_oneof![
        (proptest::option::of(rep.clone()), any::<bool>())
            .prop_map(|(owner, name)| Kind::Updated { owner, name }),
        rep.clone().prop_map(Kind::Claimed),
        rep.clone().prop_map(Kind::Assigned),
        Just(Kind::Released),
        Just(Kind::Churned),
        rep.prop_map(Kind::Activity),
        Just(Kind::Complaint),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    // Hours in a few days' range: many ties and many late entries.
    (0..CUSTOMERS, 0i64..96, kind()).prop_map(|(customer, hours, kind)| Op {
        customer,
        // Whole days half of the time: ties of occurred_at.
        hours: if hours % 2 == 0 {
            hours / 24 * 24
        } else {
            hours
        },
        kind,
    })
}

fn base() -> DateTime<Utc> {
    t("2026-03-01T00:00:00Z")
}

/// The log: the customers registered (some with an owner) at `base`, then the ops in the
/// order generated, each at its own business time.
fn build(owners: &[Option<usize>], ops: &[Op]) -> LogBuilder {
    let mut log = LogBuilder::new();
    for (i, owner) in owners.iter().enumerate() {
        let mut data = json!({"name": format!("Customer {i}")});
        if let Some(o) = owner {
            data["owner"] = json!(REPS[*o]);
        }
        log.ev_at(
            base(),
            &format!("customer-C{i}"),
            "CustomerRegistered",
            "system",
            data,
        );
    }
    for (n, op) in ops.iter().enumerate() {
        let (ty, data) = match &op.kind {
            Kind::Updated { owner, name } => {
                let mut d = json!({});
                if *name {
                    d["name"] = json!(format!("Renamed {n}"));
                }
                if let Some(o) = owner {
                    d["owner"] = json!(REPS[*o]);
                }
                if d.as_object().is_some_and(|m| m.is_empty()) {
                    d["region"] = json!("west");
                }
                ("CustomerUpdated", d)
            }
            Kind::Claimed(r) => ("CustomerClaimed", json!({"rep": REPS[*r]})),
            Kind::Assigned(r) => ("CustomerAssigned", json!({"rep": REPS[*r], "by": "tang"})),
            Kind::Released => ("CustomerReleased", json!({"reason": "idle"})),
            Kind::Churned => ("CustomerChurned", json!({})),
            Kind::Activity(r) => ("ActivityLogged", json!({"kind": "call", "rep": REPS[*r]})),
            Kind::Complaint => ("ComplaintFiled", json!({"complaint_id": format!("K{n}")})),
        };
        log.ev_at(
            base() + Duration::hours(op.hours),
            &format!("customer-C{}", op.customer),
            ty,
            "system",
            data,
        );
    }
    log
}

/// The oracle: (owner, churned) of each customer from its events with `occurred_at ≤ as_of`,
/// taken in business order.
fn oracle(
    events: &[RecordedEvent],
    as_of: Option<DateTime<Utc>>,
) -> BTreeMap<String, (Option<String>, bool)> {
    let mut sorted: Vec<&RecordedEvent> = events
        .iter()
        .filter(|e| as_of.is_none_or(|t| e.occurred_at <= t))
        .collect();
    sorted.sort_by_key(|e| (e.occurred_at, e.position));
    let mut out: BTreeMap<String, (Option<String>, bool)> = BTreeMap::new();
    for e in sorted {
        let id = e.stream.trim_start_matches("customer-").to_string();
        let rep = e.data.get("rep").and_then(|v| v.as_str()).map(String::from);
        let owner = e
            .data
            .get("owner")
            .and_then(|v| v.as_str())
            .map(String::from);
        let c = out.entry(id).or_default();
        match e.event_type.as_str() {
            "CustomerRegistered" => c.0 = owner,
            "CustomerUpdated" if owner.is_some() => c.0 = owner,
            "CustomerClaimed" | "CustomerAssigned" => c.0 = rep,
            "CustomerReleased" => c.0 = None,
            "CustomerChurned" => c.1 = true,
            _ => {}
        }
    }
    out
}

fn stream_events(events: &[RecordedEvent], stream: &str) -> Vec<RecordedEvent> {
    events
        .iter()
        .filter(|e| e.stream == stream)
        .cloned()
        .collect()
}

/// What `GET /v1/customers/{id}?as_of` folds: the stream's events with `occurred_at ≤ as_of`.
fn customer_get(
    events: &[RecordedEvent],
    stream: &str,
    as_of: Option<DateTime<Utc>>,
) -> Option<CustomerState> {
    let events: Vec<RecordedEvent> = stream_events(events, stream)
        .into_iter()
        .filter(|e| as_of.is_none_or(|t| e.occurred_at <= t))
        .collect();
    fold_stream(stream, &events).as_customer().cloned()
}

fn check_all(
    events: &[RecordedEvent],
    model: &ReadModel,
    as_of: Option<DateTime<Utc>>,
    shuffle: &[usize],
) -> Result<(), TestCaseError> {
    let expected = oracle(events, as_of);
    let now = base() + Duration::days(30);
    let report = pool::pool(model, as_of, now);
    let mut per_rep: BTreeMap<String, u32> = BTreeMap::new();
    for i in 0..CUSTOMERS {
        let id = format!("C{i}");
        let stream = format!("customer-{id}");
        let (owner, churned) = expected[&id].clone();

        let get = customer_get(events, &stream, as_of);
        let state = get.clone().expect("registered at base, before any as_of");
        prop_assert_eq!(&state.owner, &owner, "GET owner of {}", id);
        prop_assert_eq!(state.in_pool, owner.is_none());
        prop_assert_eq!(state.churned, churned);

        // The fold takes any order of the same events to business order.
        let mut mine = stream_events(events, &stream);
        mine.retain(|e| as_of.is_none_or(|t| e.occurred_at <= t));
        let mut shuffled = mine.clone();
        for (k, &s) in shuffle.iter().enumerate() {
            let n = shuffled.len();
            shuffled.swap(k % n, s % n);
        }
        let refolded = fold_stream(&stream, &shuffled);
        prop_assert_eq!(refolded.as_customer(), get.as_ref());

        // The scope's owner (the scope asks about now: the whole stream).
        if as_of.is_none() {
            let name = StreamName::parse(&stream).expect("a valid stream name");
            let scope = ownership_of(&name, &mine);
            let want = owner.clone().map_or(Ownership::Pool, Ownership::Owned);
            prop_assert_eq!(scope, want, "scope owner of {}", id);
        }

        // The read model's customer is the domain's state, field for field.
        prop_assert_eq!(model.customer_view(&id, as_of), get, "read model of {}", id);

        // The pool report.
        let listed = report.customers.iter().find(|c| c.customer_id == id);
        if owner.is_none() && !churned {
            let listed = listed.ok_or_else(|| TestCaseError::fail(format!("{id} not in pool")))?;
            prop_assert_eq!(Some(listed.pool_since), state.in_pool_since);
            prop_assert_eq!(&listed.name, &state.name);
        } else {
            prop_assert!(listed.is_none(), "{} listed in the pool", id);
        }
        if let (Some(o), false) = (&owner, churned) {
            *per_rep.entry(o.clone()).or_default() += 1;
        }
    }
    let reported: BTreeMap<String, u32> = report
        .customers_per_rep
        .iter()
        .map(|r| (r.rep.clone(), r.customers))
        .collect();
    prop_assert_eq!(reported, per_rep);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn every_read_of_a_customer_is_the_domain_fold_in_business_order(
        owners in proptest::collection::vec(proptest::option::of(0..REPS.len()), CUSTOMERS),
        ops in proptest::collection::vec(op(), 0..40),
        as_of_hours in 0i64..120,
        shuffle in proptest::collection::vec(any::<usize>(), 0..12),
    ) {
        let log = build(&owners, &ops);
        let events = log.events();
        let model = ReadModel::rebuild(events);
        check_all(events, &model, None, &shuffle)?;
        check_all(events, &model, Some(base() + Duration::hours(as_of_hours)), &shuffle)?;
    }
}

/// A log of customer C0 registered on 1 March without an owner, then `rest` (time, type,
/// data), logged in that order.
fn customer_c0(rest: &[(&str, &str, serde_json::Value)]) -> LogBuilder {
    let mut log = LogBuilder::new();
    let registered = json!({"name": "Flower Fruit Mountain"});
    log.ev(
        "2026-03-01T00:00:00Z",
        "customer-C0",
        "CustomerRegistered",
        "system",
        registered,
    );
    for (at, ty, data) in rest {
        log.ev(at, "customer-C0", ty, "tang", data.clone());
    }
    log
}

/// The case: two back-dated assignments. Business order says the later-dated one
/// owns the customer, whatever order they were logged in; every read agrees.
#[test]
fn two_back_dated_assignments_name_one_owner_everywhere() {
    let log = customer_c0(&[
        (
            "2026-03-20T00:00:00Z",
            "CustomerAssigned",
            json!({"rep": "wukong"}),
        ),
        // Logged after, but occurred before: wukong's is the latest in business time.
        (
            "2026-03-10T00:00:00Z",
            "CustomerAssigned",
            json!({"rep": "bajie"}),
        ),
    ]);
    let events = log.events();
    let name = StreamName::parse("customer-C0").unwrap();
    let get = customer_get(events, "customer-C0", None).unwrap();
    assert_eq!(get.owner.as_deref(), Some("wukong"));
    assert_eq!(get.owned_since, Some(t("2026-03-20T00:00:00Z")));
    assert_eq!(
        ownership_of(&name, events),
        Ownership::Owned("wukong".into())
    );
    let model = ReadModel::rebuild(events);
    assert_eq!(model.customer_view("C0", None).as_ref(), Some(&get));
    let report = pool::pool(&model, None, t("2026-04-01T00:00:00Z"));
    assert!(report.customers.is_empty());
    assert_eq!(report.customers_per_rep.len(), 1);
    assert_eq!(report.customers_per_rep[0].rep, "wukong");
    // As of the 15th, bajie's assignment is the only one.
    let mid = customer_get(events, "customer-C0", Some(t("2026-03-15T00:00:00Z"))).unwrap();
    assert_eq!(mid.owner.as_deref(), Some("bajie"));
    assert_eq!(
        model.customer_view("C0", Some(t("2026-03-15T00:00:00Z"))),
        Some(mid)
    );
}

/// `CustomerUpdated.owner` (a log from before the rule that refuses it) moves the customer
/// in every read, the domain's fold included.
#[test]
fn an_update_with_an_owner_moves_the_customer_everywhere() {
    let log = customer_c0(&[(
        "2026-03-02T00:00:00Z",
        "CustomerUpdated",
        json!({"owner": "wujing"}),
    )]);
    let events = log.events();
    let get = customer_get(events, "customer-C0", None).unwrap();
    assert_eq!(get.owner.as_deref(), Some("wujing"));
    assert!(!get.in_pool);
    assert_eq!(get.in_pool_since, None);
    assert_eq!(get.owned_since, Some(t("2026-03-02T00:00:00Z")));
    let name = StreamName::parse("customer-C0").unwrap();
    assert_eq!(
        ownership_of(&name, events),
        Ownership::Owned("wujing".into())
    );
    let model = ReadModel::rebuild(events);
    assert_eq!(model.customer_view("C0", None), Some(get));
}

// ---- Deals: the domain's `DealState` and the read model's deal fold (projections'
// `DealView`, which is what the deal GET, as-of and replay show) over generated streams.

const DEAL_STAGES: [&str; 4] = ["qualified", "presentation", "quote", "negotiation"];

#[derive(Debug, Clone)]
enum DealKind {
    Stage(usize),
    Amount(i64),
    Reassigned(usize),
    Quote,
    Competitor(usize),
    Activity,
    Won(i64),
    Lost(Option<usize>),
    Reopened(usize),
    Paid(i64),
    /// An installment (`I0`/`I1`) scheduled (again: a rescheduling) for an amount.
    Scheduled(usize, i64),
    PaidInstallment(usize, i64),
}

fn deal_kind() -> impl Strategy<Value = DealKind> {
    prop_oneof![
        (0..DEAL_STAGES.len()).prop_map(DealKind::Stage),
        (1i64..500).prop_map(DealKind::Amount),
        (0..REPS.len()).prop_map(DealKind::Reassigned),
        Just(DealKind::Quote),
        (0usize..3).prop_map(DealKind::Competitor),
        Just(DealKind::Activity),
        (1i64..500).prop_map(DealKind::Won),
        proptest::option::of(0usize..3).prop_map(DealKind::Lost),
        (0..DEAL_STAGES.len()).prop_map(DealKind::Reopened),
        (1i64..100).prop_map(DealKind::Paid),
        (0usize..2, 1i64..100).prop_map(|(i, a)| DealKind::Scheduled(i, a)),
        (0usize..2, 1i64..100).prop_map(|(i, a)| DealKind::PaidInstallment(i, a)),
    ]
}

fn build_deal(ops: &[(i64, DealKind)]) -> LogBuilder {
    let mut log = LogBuilder::new();
    log.ev_at(
        base(),
        "customer-C0",
        "CustomerRegistered",
        "system",
        json!({"name": "Customer 0", "owner": REPS[0]}),
    );
    log.ev_at(
        base(),
        "deal-D0",
        "DealOpened",
        REPS[0],
        json!({"customer_id": "C0", "owner": REPS[0], "title": "ERP", "amount": 100, "stage": DEAL_STAGES[0]}),
    );
    for (hours, kind) in ops {
        let (ty, data) = match kind {
            DealKind::Stage(s) => (
                "DealStageChanged",
                json!({"from": "any", "to": DEAL_STAGES[*s]}),
            ),
            DealKind::Amount(a) => ("DealAmountChanged", json!({"amount": a})),
            DealKind::Reassigned(r) => ("DealReassigned", json!({"from": "any", "to": REPS[*r]})),
            DealKind::Quote => ("QuoteIssued", json!({"quote_id": "Q", "amount": 90})),
            DealKind::Competitor(c) => ("CompetitorNoted", json!({"competitor": format!("X{c}")})),
            DealKind::Activity => ("ActivityLogged", json!({"kind": "call", "rep": REPS[1]})),
            DealKind::Won(a) => ("DealWon", json!({"amount": a})),
            DealKind::Lost(c) => match c {
                Some(c) => (
                    "DealLost",
                    json!({"reason": "price", "competitor": format!("X{c}")}),
                ),
                None => ("DealLost", json!({"reason": "price"})),
            },
            DealKind::Reopened(s) => ("DealReopened", json!({"stage": DEAL_STAGES[*s]})),
            DealKind::Paid(a) => ("PaymentReceived", json!({"amount": a})),
            DealKind::Scheduled(i, a) => (
                "PaymentScheduled",
                json!({"installment_id": format!("I{i}"), "amount": a, "due": "2026-09-01"}),
            ),
            DealKind::PaidInstallment(i, a) => (
                "PaymentReceived",
                json!({"installment_id": format!("I{i}"), "amount": a}),
            ),
        };
        log.ev_at(
            base() + Duration::hours(*hours),
            "deal-D0",
            ty,
            "system",
            data,
        );
    }
    log
}

/// (installment id, (amount, received)), amounts in cents.
type Installments = BTreeMap<String, (i64, i64)>;

fn in_cents<'a>(
    rows: impl Iterator<Item = (&'a str, domain::Money, domain::Money)>,
) -> Installments {
    rows.map(|(id, amount, received)| (id.to_string(), (amount.cents(), received.cents())))
        .collect()
}

fn check_deal(
    events: &[RecordedEvent],
    model: &ReadModel,
    as_of: Option<DateTime<Utc>>,
) -> Result<(), TestCaseError> {
    let mine: Vec<RecordedEvent> = stream_events(events, "deal-D0")
        .into_iter()
        .filter(|e| as_of.is_none_or(|t| e.occurred_at <= t))
        .collect();
    // The plain oracle: the last word of each kind, in business order.
    let mut sorted: Vec<&RecordedEvent> = mine.iter().collect();
    sorted.sort_by_key(|e| (e.occurred_at, e.position));
    let (mut stage, mut owner, mut status) = (String::new(), String::new(), "open");
    for e in &sorted {
        let s = |f: &str| e.data.get(f).and_then(|v| v.as_str()).map(String::from);
        match e.event_type.as_str() {
            "DealOpened" => {
                stage = s("stage").unwrap_or_default();
                owner = s("owner").unwrap_or_default();
            }
            "DealStageChanged" => stage = s("to").unwrap_or_default(),
            "DealReassigned" => owner = s("to").unwrap_or_default(),
            "DealWon" => status = "won",
            "DealLost" => status = "lost",
            "DealReopened" => {
                status = "open";
                stage = s("stage").unwrap_or_default();
            }
            _ => {}
        }
    }
    let domain = fold_stream("deal-D0", &mine);
    let d = domain.as_deal().expect("opened at base, before any as_of");
    prop_assert_eq!(&*d.stage, stage.as_str());
    prop_assert_eq!(&*d.owner, owner.as_str());
    prop_assert_eq!(serde_json::to_value(d.status).unwrap(), json!(status));
    // Installments as SPEC §2.8 reads them: the latest `PaymentScheduled` of an id (business
    // order) gives its amount; `received` sums every `PaymentReceived` naming it, wherever it
    // falls (a payment dated before the scheduling too). (id, amount, received) in cents.
    let mut installments = Installments::new();
    let mut received: BTreeMap<String, i64> = BTreeMap::new();
    for e in &sorted {
        let id = e.data.get("installment_id").and_then(|v| v.as_str());
        let cents = (e.data.get("amount").and_then(|v| v.as_f64()).unwrap_or(0.0) * 100.0) as i64;
        match (e.event_type.as_str(), id) {
            ("PaymentScheduled", Some(id)) => {
                installments.insert(id.to_string(), (cents, 0));
            }
            ("PaymentReceived", Some(id)) => *received.entry(id.to_string()).or_default() += cents,
            _ => {}
        }
    }
    for (id, (_, got)) in installments.iter_mut() {
        *got = received.get(id).copied().unwrap_or(0);
    }
    let folded = in_cents(
        d.installments
            .iter()
            .map(|i| (&*i.installment_id, i.amount, i.paid)),
    );
    prop_assert_eq!(&folded, &installments);
    // The read model's deal (what the deal GET and `as_of` reports show) is the domain's
    // state, every field (those of SPEC §2.2 and those kept for the rules and reports).
    let view = model
        .deal_view("D0", as_of)
        .expect("the read model has the deal");
    let p = &view.state;
    prop_assert_eq!(p, d);
    let get = projections::replay::deal_state(model, "D0", as_of).expect("the deal GET");
    prop_assert_eq!(
        serde_json::to_value(&get).unwrap(),
        serde_json::to_value(d).unwrap()
    );
    // What the read model adds: the stays in stages end where the state's stage starts.
    let last_visit = view.visits.last().expect("the opening stage at least");
    prop_assert_eq!(&last_visit.stage, &d.stage);
    prop_assert_eq!(last_visit.entered, d.stage_entered_at);
    prop_assert_eq!(view.final_close().is_some(), d.is_closed());
    if as_of.is_none() {
        // Replay's last step, and the scope's owner.
        let now = base() + Duration::days(30);
        let r = projections::replay::replay(model, "D0", events, now).expect("a replay");
        let last = r.steps.last().expect("at least the opening step");
        prop_assert_eq!(&last.state, p);
        let name = StreamName::parse("deal-D0").expect("a valid stream name");
        prop_assert_eq!(ownership_of(&name, &mine), Ownership::Owned(owner.clone()));
        // The owner's follow-up list, long after every due date: the won deal's installments
        // not fully received, as the oracle has them.
        let q = projections::follow_up::FollowUpQuery {
            rep: Some(owner),
            as_of: None,
            stale_days: 14,
            release_after_days: None,
        };
        let list = projections::follow_up::follow_up(model, &q, base() + Duration::days(365));
        let overdue = in_cents(
            list.overdue_payments
                .iter()
                .map(|o| (o.installment_id.as_str(), o.amount, o.received)),
        );
        let want: Installments = installments
            .into_iter()
            .filter(|(_, (amount, got))| status == "won" && got < amount)
            .collect();
        prop_assert_eq!(overdue, want);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn every_read_of_a_deal_agrees_with_the_domain_fold_in_business_order(
        ops in proptest::collection::vec(
            (0i64..96, deal_kind()).prop_map(|(h, k)| (if h % 2 == 0 { h / 24 * 24 } else { h }, k)),
            0..30,
        ),
        as_of_hours in 0i64..120,
    ) {
        let log = build_deal(&ops);
        let events = log.events();
        let model = ReadModel::rebuild(events);
        check_deal(events, &model, None)?;
        check_deal(events, &model, Some(base() + Duration::hours(as_of_hours)))?;
    }
}
