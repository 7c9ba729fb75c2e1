//! `import` of files larger than one check block (4,096 events) and one append chunk (8,192):
//! a refused line at the very end writes nothing; conflicts with the log (other
//! `occurred_at`, actor, metadata) and within the file are found by the batched check; a
//! re-import adds nothing and an extended file adds only its new lines.

use std::path::Path;
use std::process::Output;

use serde_json::json;

#[path = "support/cli.rs"]
mod cli;
use cli::{dealtrail, ok};

/// Events in the big file: wukong joins, then `CUSTOMERS` customers each registered and
/// given `PER - 1` activities, interleaved (customer by customer within each round), so the
/// streams' events are spread over the file as an export's are.
const CUSTOMERS: usize = 1_000;
const PER: usize = 10;

fn line(id: u128, stream: &str, ty: &str, minute: usize, data: serde_json::Value) -> String {
    let at = format!(
        "2026-03-{:02}T{:02}:{:02}:00Z",
        1 + minute / 1440,
        minute / 60 % 24,
        minute % 60
    );
    json!({
        "id": uuid::Uuid::from_u128(0x0192_f4c2_0000_7000_8000_0000_0000_0000 + id),
        "stream": stream,
        "type": ty,
        "occurred_at": at,
        "actor": "wukong",
        "data": data,
        "metadata": {"batch": "b1"},
    })
    .to_string()
}

fn big_file() -> Vec<String> {
    let mut lines = vec![line(
        0,
        "org-acme",
        "RepJoined",
        0,
        json!({"rep": "wukong", "name": "Sun Wukong", "team": "east"}),
    )];
    for round in 0..PER {
        for c in 0..CUSTOMERS {
            let id = (1 + round * CUSTOMERS + c) as u128;
            let stream = format!("customer-C-{c}");
            let minute = 1 + round * 60 + c % 60;
            lines.push(if round == 0 {
                line(
                    id,
                    &stream,
                    "CustomerRegistered",
                    minute,
                    json!({"name": format!("C {c}")}),
                )
            } else {
                line(
                    id,
                    &stream,
                    "ActivityLogged",
                    minute,
                    json!({"kind": "call", "rep": "wukong", "duration_s": round}),
                )
            });
        }
    }
    lines
}

fn write(dir: &Path, name: &str, lines: &[String]) -> String {
    let p = dir.join(name);
    std::fs::write(&p, lines.join("\n") + "\n").unwrap();
    p.to_str().unwrap().to_string()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// How many events the log in `data` holds (0 when there is no store).
fn log_len(data: &Path) -> usize {
    let o = dealtrail(data, &["export"]);
    String::from_utf8(o.stdout).unwrap().lines().count()
}

fn refused(data: &Path, file: &str, want: &[&str]) {
    let o = dealtrail(data, &["import", file]);
    assert_eq!(o.status.code(), Some(5), "{}", stderr(&o));
    for w in want {
        assert!(stderr(&o).contains(w), "want {w:?} in: {}", stderr(&o));
    }
}

#[test]
fn a_refused_last_line_of_a_big_file_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let mut lines = big_file();
    let n = lines.len();
    // The rep never joined (`rep.active`): found only at the very end of the check.
    lines.push(line(
        99_999,
        "customer-C-7",
        "ActivityLogged",
        5_000,
        json!({"kind": "call", "rep": "bajie"}),
    ));
    let file = write(tmp.path(), "bad-end.ndjson", &lines);
    refused(&data, &file, &[&format!("line {}", n + 1), "bajie"]);
    assert_eq!(log_len(&data), 0);
    // A malformed last line likewise.
    lines[n] = lines[n].replace("\"data\"", "\"dat\"");
    let file = write(tmp.path(), "malformed-end.ndjson", &lines);
    refused(&data, &file, &[&format!("line {}", n + 1), "dat"]);
    assert_eq!(log_len(&data), 0);
    // Without it, everything goes in, in the file's order.
    let file = write(tmp.path(), "good.ndjson", &lines[..n]);
    let out = dealtrail(&data, &["import", &file]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!("{n} new events (positions 1..={n})")),
        "{}",
        stderr(&out)
    );
    let exported = ok(dealtrail(&data, &["export"]));
    let ids: Vec<String> = exported
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["id"].to_string())
        .collect();
    let want: Vec<String> = lines[..n]
        .iter()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["id"].to_string())
        .collect();
    assert_eq!(ids, want);
}

#[test]
fn conflicts_with_the_log_and_within_the_file_are_found_by_the_batched_check() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let lines = big_file();
    let n = lines.len();
    // The first half in, then the whole file: only the second half is new.
    let half = write(tmp.path(), "half.ndjson", &lines[..n / 2]);
    ok(dealtrail(&data, &["import", &half]));
    let all = write(tmp.path(), "all.ndjson", &lines);
    let o = dealtrail(&data, &["import", &all]);
    assert!(o.status.success(), "{}", stderr(&o));
    let want = format!(
        "{} new events (positions {}..={n}), {} already in the log",
        n - n / 2,
        n / 2 + 1,
        n / 2
    );
    assert!(stderr(&o).contains(&want), "{}", stderr(&o));
    // Again: nothing new.
    let o = dealtrail(&data, &["import", &all]);
    assert!(
        stderr(&o).contains(&format!("0 new events, {n} already in the log")),
        "{}",
        stderr(&o)
    );
    // An event near the end, already in the log, with other content of each kind.
    let k = n - 3;
    let changes = [
        (
            "occurred_at",
            lines[k].replace(
                "\"occurred_at\":\"2026-03-01T",
                "\"occurred_at\":\"2026-03-02T",
            ),
        ),
        (
            "actor",
            lines[k].replace("\"actor\":\"wukong\"", "\"actor\":\"bajie\""),
        ),
        ("metadata", lines[k].replace("\"b1\"", "\"b2\"")),
        (
            "data",
            lines[k].replace("\"duration_s\":", "\"duration_s\":1"),
        ),
    ];
    for (what, changed) in changes {
        assert_ne!(changed, lines[k], "{what}");
        let mut edited = lines.clone();
        edited[k] = changed;
        let file = write(tmp.path(), "edited.ndjson", &edited);
        refused(
            &data,
            &file,
            &[&format!("line {}", k + 1), "already in the log"],
        );
    }
    assert_eq!(log_len(&data), n);
    // Within one file: the same event twice (keys in another order) counts once; the same
    // id with other content names both lines.
    let fresh = tmp.path().join("fresh");
    let mut twice = lines[..20].to_vec();
    let repeat: serde_json::Value = serde_json::from_str(&lines[5]).unwrap();
    let mut reordered = serde_json::Map::new();
    for key in [
        "metadata",
        "data",
        "actor",
        "occurred_at",
        "type",
        "stream",
        "id",
    ] {
        reordered.insert(key.into(), repeat[key].clone());
    }
    twice.push(serde_json::Value::Object(reordered).to_string());
    let file = write(tmp.path(), "twice.ndjson", &twice);
    let o = dealtrail(&fresh, &["import", &file]);
    assert!(
        stderr(&o).contains("20 new events (positions 1..=20), 1 already in the log"),
        "{}",
        stderr(&o)
    );
    let fresh = tmp.path().join("fresh2");
    let last = twice.len() - 1;
    twice[last] = twice[last].replace("\"b1\"", "\"b3\"");
    let file = write(tmp.path(), "twice-other.ndjson", &twice);
    refused(&fresh, &file, &["line 21", "already appears on line 6"]);
    assert_eq!(log_len(&fresh), 0);
}
