//! Defaults that must not mislead: a bare `--as-of` date is the end of that day, and rep
//! trends end with the last complete month unless asked otherwise (then marked partial).
//! The log is the recorded `v1-small` (D-1001 won 2026-06-12 08:00; last event 2026-07-20),
//! plus June's USD rate (its D-1002 is in USD).

use serde_json::Value;

#[path = "support/cli.rs"]
mod cli;
use cli::{dealtrail, ok, store_with, SMALL_LOG};

fn report(data: &std::path::Path, args: &[&str]) -> Value {
    let mut all = vec!["report"];
    all.extend_from_slice(args);
    all.push("--json");
    serde_json::from_str(&ok(dealtrail(data, &all))).unwrap()
}

fn store() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // D-1002 is in USD and lost in June: rep trends over June need June's USD rate.
    let rate = r#"{"id":"00000000-0000-4000-8000-000000000001","stream":"org-acme","type":"ExchangeRateSet","occurred_at":"2026-07-01T00:00:00Z","actor":"tangseng","data":{"currency":"USD","month":"2026-06","rate":7.2}}"#;
    let log = std::fs::read_to_string(SMALL_LOG).unwrap() + rate + "\n";
    store_with(&data, &log);
    (dir, data)
}

#[test]
fn a_bare_as_of_date_means_the_end_of_that_day() {
    let (_dir, data) = store();
    // D-1001 was won at 08:00 on the 12th: as of that day it is won, not open.
    let day = report(&data, &["pipeline", "--as-of", "2026-06-12"]);
    assert_eq!(day["open_count"], 0, "{day}");
    assert_eq!(day["won_this_month"], 115000.5);
    // An explicit midnight still means midnight: the deal was open then.
    let midnight = report(&data, &["pipeline", "--as-of", "2026-06-12T00:00:00Z"]);
    assert_eq!(midnight["open_count"], 1, "{midnight}");
}

#[test]
fn rep_trends_end_with_the_last_complete_month() {
    let (_dir, data) = store();
    let end = |args: &[&str]| {
        let mut all = vec!["reps"];
        all.extend_from_slice(args);
        let r = report(&data, &all);
        (r["end"].as_str().unwrap().to_string(), r["partial"].clone())
    };
    // On the 25th, July is still running: the trend ends with June.
    assert_eq!(
        end(&["--as-of", "2026-07-25"]),
        ("2026-06".into(), false.into())
    );
    // At the end of the 31st (a bare date), July is complete.
    assert_eq!(
        end(&["--as-of", "2026-07-31"]),
        ("2026-07".into(), false.into())
    );
    assert_eq!(
        end(&["--as-of", "2026-07-31T00:00:00Z"]),
        ("2026-06".into(), false.into())
    );
    // Asked for, the running month is shown and marked partial.
    assert_eq!(
        end(&["--as-of", "2026-07-25", "--end", "2026-07"]),
        ("2026-07".into(), true.into())
    );
    // Without as_of (the clock is past July 2026): the log's last month, complete.
    assert_eq!(end(&[]), ("2026-07".into(), false.into()));
}

#[test]
fn read_only_commands_refuse_a_directory_without_a_store_and_create_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let missing = dir.path().join("missing");
    for data in [&empty, &missing] {
        for args in [
            &["verify"][..],
            &["report", "funnel", "--json"],
            &["replay", "D-1"],
            &["export"],
            &["rebuild"],
        ] {
            let out = dealtrail(data, args);
            assert_eq!(out.status.code(), Some(2), "{args:?} on {}", data.display());
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(err.contains("--data"), "{args:?}: {err}");
        }
    }
    assert_eq!(std::fs::read_dir(&empty).unwrap().count(), 0);
    assert!(!missing.exists());
}
