//! Re-importing an event whose id is in the log: the same content is a no-op, any other
//! content (data, `occurred_at`, actor, metadata) is refused, naming the line (SPEC §1.1).

#[path = "support/cli.rs"]
mod cli;
use cli::{dealtrail, ok, store_with, SMALL_LOG};

#[test]
fn a_reimported_event_with_other_envelope_content_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let log = std::fs::read_to_string(SMALL_LOG).unwrap();
    store_with(&data, &log);
    let again = dir.path().join("again.ndjson");
    std::fs::write(&again, &log).unwrap();
    let out = dealtrail(&data, &["import", again.to_str().unwrap()]);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && said.contains("0 new events"),
        "{said}"
    );

    // Line 2 is wukong's RepJoined, at 2026-05-04T01:05:00Z, by tangseng, metadata {}.
    let line2 = log.lines().nth(1).unwrap();
    for (what, from, to) in [
        (
            "occurred_at",
            "01:05:00Z\",\"recorded",
            "01:06:00Z\",\"recorded",
        ),
        ("actor", "\"actor\":\"tangseng\"", "\"actor\":\"bajie\""),
        (
            "metadata",
            "\"metadata\":{}",
            "\"metadata\":{\"source\":\"crm\"}",
        ),
    ] {
        assert!(line2.contains(from), "{what}: {line2}");
        let changed = log.replacen(line2, &line2.replacen(from, to, 1), 1);
        std::fs::write(&again, changed).unwrap();
        let out = dealtrail(&data, &["import", again.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(5), "{what}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("line 2") && err.contains("other content"),
            "{what}: {err}"
        );
    }
    let last = ok(dealtrail(&data, &["verify"]));
    assert!(last.contains("49 events"), "nothing was written: {last}");
}
