//! A store written before `rep.active` (reps named without ever joining) stays readable:
//! verify, export and reports read it as it is, and re-importing its own export is a no-op.
//! Rules apply to new appends only, so moving that export into a *new* store is refused by
//! `rep.active`, naming the line (the file needs the reps' `RepJoined` first).

use std::sync::Arc;

use domain::{ExpectedVersion, ProposedEvent};
use eventlog::{EnvelopeOnly, EventStore, SledStore};
use serde_json::json;

#[path = "support/cli.rs"]
mod cli;
use cli::{dealtrail, ok};

fn event(ty: &str, at: &str, data: serde_json::Value) -> ProposedEvent {
    serde_json::from_value(json!({"type": ty, "occurred_at": at, "actor": "wukong", "data": data}))
        .unwrap()
}

/// Writes, without the domain's rules (as the rules before `rep.active` allowed), a
/// customer and a deal of wukong's, who never joined, with a call.
async fn store_from_before_the_rule(data: &std::path::Path) {
    std::fs::create_dir_all(data).unwrap();
    let store = SledStore::open(data, Arc::new(EnvelopeOnly)).unwrap();
    let t = "2026-03-01T09:00:00Z";
    let appends = [
        (
            "customer-C-1",
            event(
                "CustomerRegistered",
                t,
                json!({"name": "Acme", "owner": "wukong"}),
            ),
        ),
        (
            "deal-D-1",
            event(
                "DealOpened",
                t,
                json!({"customer_id": "C-1", "owner": "wukong", "title": "ERP", "amount": 1000, "stage": "qualified"}),
            ),
        ),
        (
            "deal-D-1",
            event(
                "ActivityLogged",
                t,
                json!({"kind": "call", "rep": "wukong"}),
            ),
        ),
    ];
    for (stream, e) in appends {
        store
            .append(stream, ExpectedVersion::Any, vec![e])
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn a_store_with_reps_who_never_joined_still_reads_and_reimports_as_a_no_op() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    store_from_before_the_rule(&data).await;

    ok(dealtrail(&data, &["verify"]));
    let funnel = ok(dealtrail(&data, &["report", "funnel", "--json"]));
    assert!(funnel.contains("\"opened\""), "{funnel}");
    let exported = ok(dealtrail(&data, &["export"]));
    assert_eq!(exported.lines().count(), 3);

    let file = tmp.path().join("old.ndjson");
    std::fs::write(&file, &exported).unwrap();
    let again = dealtrail(&data, &["import", file.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&again.stderr);
    assert!(
        again.status.success() && err.contains("0 new events"),
        "{err}"
    );

    // Into a new store, the same lines are new appends: the rule refuses the first one.
    let fresh = tmp.path().join("fresh");
    let o = dealtrail(&fresh, &["import", file.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(5), "{err}");
    assert!(
        err.contains("line 1") && err.contains("rep.active"),
        "{err}"
    );
}
