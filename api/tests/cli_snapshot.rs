//! The read model's snapshot is a cache of the log, never a source of truth: a changed
//! snapshot, or one made from another log, is not served, and `verify` reports it.

use std::path::Path;

#[path = "support/cli.rs"]
mod cli;
use cli::{dealtrail, ok, store_with, SMALL_LOG as LOG};

/// A store holding `log`, with a snapshot saved by `rebuild`.
fn store_with_snapshot(data: &Path, log: &str) {
    store_with(data, log);
    ok(dealtrail(data, &["rebuild"]));
}

fn snapshot(data: &Path) -> std::path::PathBuf {
    data.join("projections").join("readmodel.json")
}

/// D-1001's amount when it was opened, as `replay --json` tells it.
fn opening_amount(data: &Path) -> f64 {
    let body: serde_json::Value =
        serde_json::from_str(&ok(dealtrail(data, &["replay", "D-1001", "--json"]))).unwrap();
    body["steps"][0]["state"]["amount"].as_f64().unwrap()
}

#[test]
fn an_amount_edited_in_the_snapshot_is_not_served_and_verify_reports_it() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    store_with_snapshot(&data, &std::fs::read_to_string(LOG).unwrap());
    assert_eq!(opening_amount(&data), 120000.0);
    let verified = ok(dealtrail(&data, &["verify"]));
    assert!(verified.contains("snapshot intact"), "{verified}");

    let text = std::fs::read_to_string(snapshot(&data)).unwrap();
    assert_eq!(text.matches("\"amount\":120000.0").count(), 1, "{text}");
    std::fs::write(
        snapshot(&data),
        text.replace("\"amount\":120000.0", "\"amount\":990000.0"),
    )
    .unwrap();

    let out = dealtrail(&data, &["verify"]);
    assert_eq!(
        out.status.code(),
        Some(4),
        "verify must refuse the snapshot"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("checksum") && err.contains("readmodel.json"),
        "{err}"
    );
    // The report is computed from the log, not from the edited snapshot.
    assert_eq!(opening_amount(&data), 120000.0);
    // `rebuild` replaces it with a good one.
    ok(dealtrail(&data, &["rebuild"]));
    assert!(ok(dealtrail(&data, &["verify"])).contains("snapshot intact"));
}

#[test]
fn a_snapshot_made_from_another_log_is_not_served() {
    let dir = tempfile::tempdir().unwrap();
    let log = std::fs::read_to_string(LOG).unwrap();
    let (ours, theirs) = (dir.path().join("ours"), dir.path().join("theirs"));
    // Same length, same streams, one amount different.
    let other = log.replacen("\"amount\":120000", "\"amount\":130000", 1);
    assert_ne!(other, log);
    store_with_snapshot(&ours, &other);
    store_with_snapshot(&theirs, &log);
    std::fs::copy(snapshot(&theirs), snapshot(&ours)).unwrap();

    assert_eq!(opening_amount(&ours), 130000.0);
    let out = dealtrail(&ours, &["verify"]);
    assert_eq!(out.status.code(), Some(4));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not made from this log"));
}
