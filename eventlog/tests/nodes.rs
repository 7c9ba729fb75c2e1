//! Several nodes on one log (several `PgStore`s on one schema; on the embedded stores, one
//! store shared): positions are never visible out of order while appends race from every
//! node, every node's subscribers get every node's appends, and the domain's rules that read
//! other streams are not beaten by races between nodes.

#[macro_use]
mod common;

use std::sync::Arc;
use std::time::Duration;

use common::note;
use common::stores::Subject;
use eventlog::rules::DomainRules;
use eventlog::{AppendValidator, EnvelopeOnly, ExpectedVersion, Filter, ProposedEvent, StoreError};
use futures::StreamExt;
use serde_json::json;

const NODES: usize = 3;
const WRITERS_PER_NODE: usize = 4;
const APPENDS_PER_WRITER: u64 = 40;
/// Against hanging when an event is lost, not a timing assertion.
const HANG_GUARD: Duration = Duration::from_secs(60);

fn envelope_only() -> Arc<dyn AppendValidator> {
    Arc::new(EnvelopeOnly)
}

fn rules() -> Arc<dyn AppendValidator> {
    Arc::new(DomainRules::default())
}

contract! {
/// Writers on every node append single events and small batches; a reader on every node
/// reads the log from where it stopped, again and again, and must find each page starting
/// exactly at the next position (a gap seen, even for a moment, would show as a page
/// starting later); subscribers on every node must get 1..N once each, in order.
async fn no_reader_ever_sees_a_position_before_the_ones_below_it(backend: Backend) {
    let nodes = backend.open_nodes(NODES, envelope_only).await;
    let total = (NODES * WRITERS_PER_NODE) as u64 * APPENDS_PER_WRITER * 3 / 2;
    let subscribers: Vec<_> = nodes
        .iter()
        .map(|n| {
            let sub = n.subscribe(1, Filter::default());
            tokio::spawn(async move {
                tokio::time::timeout(
                    HANG_GUARD,
                    sub.take(total as usize).map(|r| r.unwrap().position).collect::<Vec<_>>(),
                )
                .await
                .expect("a subscriber stalled: an event was lost")
            })
        })
        .collect();
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let readers: Vec<_> = nodes
        .iter()
        .map(|n| {
            let (n, done) = (n.clone(), done.clone());
            tokio::spawn(async move {
                let mut next = 1u64;
                let mut pages = 0u64;
                loop {
                    let finished = done.load(std::sync::atomic::Ordering::Acquire);
                    let page = n.read_all(next, 50, &Filter::default()).await.unwrap();
                    for ev in &page {
                        assert_eq!(ev.position, next, "saw position {} before {next}", ev.position);
                        next += 1;
                    }
                    pages += 1;
                    if finished && page.is_empty() {
                        return (next - 1, pages);
                    }
                }
            })
        })
        .collect();
    let mut writers = Vec::new();
    for (k, node) in nodes.iter().enumerate() {
        for w in 0..WRITERS_PER_NODE {
            let node = node.clone();
            writers.push(tokio::spawn(async move {
                let stream = format!("deal-N{k}W{w}");
                let mut acknowledged = Vec::new();
                for i in 0..APPENDS_PER_WRITER {
                    // Every other append is a batch of two: 3/2 events per append.
                    let events = if i % 2 == 0 { vec![note(i)] } else { vec![note(i), note(i)] };
                    let out = node.append(&stream, ExpectedVersion::Any, events).await.unwrap();
                    acknowledged.extend(out.first_position..=out.last_position);
                }
                acknowledged
            }));
        }
    }
    let mut acknowledged = Vec::new();
    for w in writers {
        acknowledged.extend(w.await.unwrap());
    }
    done.store(true, std::sync::atomic::Ordering::Release);
    acknowledged.sort_unstable();
    assert_eq!(acknowledged, (1..=total).collect::<Vec<_>>(), "acknowledged positions");
    for r in readers {
        let (last, _) = r.await.unwrap();
        assert_eq!(last, total);
    }
    for s in subscribers {
        assert_eq!(s.await.unwrap(), (1..=total).collect::<Vec<_>>());
    }
    for node in &nodes {
        assert_eq!(node.last_position().await.unwrap(), total);
        if let Some(r) = node.verify().await {
            assert_eq!(r.events, total);
        }
    }
}
}

fn event(t: &str, data: serde_json::Value) -> Vec<ProposedEvent> {
    vec![serde_json::from_value(json!({"type": t, "data": data})).unwrap()]
}

fn rule_of(r: &Result<eventlog::AppendOutcome, StoreError>) -> Option<&'static str> {
    match r {
        Err(StoreError::Rejected(r)) => Some(r.rule),
        Err(other) => panic!("unexpected error: {other}"),
        Ok(_) => None,
    }
}

async fn join_rep(node: &Subject, rep: &str) {
    node.append(
        "org-acme",
        ExpectedVersion::Any,
        event(
            "RepJoined",
            json!({"rep": rep, "name": rep, "team": "east"}),
        ),
    )
    .await
    .unwrap();
}

contract! {
/// A rep leaves on node A while node B opens a deal owned by that rep, at the same moment,
/// many times: the deal is accepted only if it lands before the rep left, and refused
/// (`rep.active`) otherwise, exactly as on one node. Node B's validator must not trust what
/// it cached of the organisation when node A changed it.
async fn a_rep_leaving_on_one_node_while_another_opens_a_deal_for_them(backend: Backend) {
    let nodes = backend.open_nodes(2, rules).await;
    let (a, b) = (nodes[0].clone(), nodes[1].clone());
    join_rep(&a, "anchor").await;
    b.append(
        "customer-C-pool",
        ExpectedVersion::Any,
        event("CustomerRegistered", json!({"name": "pooled"})),
    )
    .await
    .unwrap();
    let mut outcomes = [0usize; 2];
    for i in 0..30 {
        let rep = format!("r{i}");
        join_rep(&a, &rep).await;
        // Node B opens a deal for a rep it knows (so its cache holds the organisation).
        let warm = b
            .append(
                &format!("deal-W{i}"),
                ExpectedVersion::NoStream,
                event("DealOpened", json!({"customer_id": "C-pool", "owner": rep, "title": "t", "amount": 1.0, "stage": "qualified"})),
            )
            .await;
        assert!(warm.is_ok(), "{warm:?}");
        let left = {
            let (a, rep) = (a.clone(), rep.clone());
            tokio::spawn(async move {
                a.append("org-acme", ExpectedVersion::Any, event("RepLeft", json!({"rep": rep}))).await
            })
        };
        let deal = {
            let (b, rep) = (b.clone(), rep.clone());
            tokio::spawn(async move {
                b.append(
                    &format!("deal-D{i}"),
                    ExpectedVersion::NoStream,
                    event("DealOpened", json!({"customer_id": "C-pool", "owner": rep, "title": "t", "amount": 1.0, "stage": "qualified"})),
                )
                .await
            })
        };
        let left = left.await.unwrap().expect("the rep leaves");
        let deal = deal.await.unwrap();
        match (&deal, rule_of(&deal)) {
            (Ok(d), None) => {
                assert!(d.first_position < left.first_position, "round {i}: deal at {} after the rep left at {}", d.first_position, left.first_position);
                outcomes[0] += 1;
            }
            (_, Some(rule)) => {
                assert_eq!(rule, "rep.active", "round {i}");
                outcomes[1] += 1;
            }
            _ => unreachable!(),
        }
        // Afterwards, whichever node asks: the rep has left.
        for node in [&a, &b] {
            let later = node
                .append(
                    &format!("deal-L{i}-{}", Arc::as_ptr(node) as usize % 1000),
                    ExpectedVersion::NoStream,
                    event("DealOpened", json!({"customer_id": "C-pool", "owner": rep, "title": "t", "amount": 1.0, "stage": "qualified"})),
                )
                .await;
            assert_eq!(rule_of(&later), Some("rep.active"), "round {i}");
        }
    }
    eprintln!("deal first: {}, rep left first: {}", outcomes[0], outcomes[1]);
}
}

contract! {
/// Two nodes claim the same pool customer at once, many times: exactly one claim is
/// accepted, the other is refused (`customer.claim_from_pool`).
async fn one_pool_customer_claimed_from_two_nodes_at_once(backend: Backend) {
    let nodes = backend.open_nodes(2, rules).await;
    for rep in ["wukong", "bajie"] {
        join_rep(&nodes[0], rep).await;
    }
    for i in 0..30 {
        let customer = format!("customer-P{i}");
        nodes[1]
            .append(&customer, ExpectedVersion::NoStream, event("CustomerRegistered", json!({"name": "p"})))
            .await
            .unwrap();
        let claims: Vec<_> = nodes
            .iter()
            .zip(["wukong", "bajie"])
            .map(|(node, rep)| {
                let (node, customer) = (node.clone(), customer.clone());
                tokio::spawn(async move {
                    node.append(&customer, ExpectedVersion::Any, event("CustomerClaimed", json!({"rep": rep}))).await
                })
            })
            .collect();
        let mut accepted = 0;
        for c in claims {
            let r = c.await.unwrap();
            match rule_of(&r) {
                None => accepted += 1,
                Some(rule) => assert_eq!(rule, "customer.claim_from_pool", "round {i}"),
            }
        }
        assert_eq!(accepted, 1, "round {i}");
        assert_eq!(nodes[0].stream_version(&customer).await.unwrap(), Some(1));
    }
}
}
