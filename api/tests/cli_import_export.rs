//! The command line's import, export and verify, run as a real process on a temp data dir.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use serde_json::json;

#[path = "support/cli.rs"]
mod cli;
use cli::dealtrail;

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A valid canonical log: wukong joins (position 1), then `customers` customers, each
/// registered then given `per` activities by wukong. Written exactly as `export` writes it
/// (positions 1.., versions per stream), so an import into an empty store followed by an
/// export must reproduce it byte for byte.
fn canonical_log(customers: usize, per: usize) -> String {
    let time = |s: &str| domain::envelope::parse_time(s).unwrap();
    let joined = domain::RecordedEvent {
        id: uuid::Uuid::from_u128(0x0192_f4c2_0000_7000_8000_0000_0000_0001),
        stream: "org-acme".into(),
        event_type: "RepJoined".into(),
        version: 0,
        position: 1,
        occurred_at: time("2026-03-01T08:00:00Z"),
        recorded_at: time("2026-03-01T08:00:02.118Z"),
        actor: "admin".into(),
        data: json!({"rep": "wukong", "name": "Sun Wukong", "team": "east"}).into(),
        metadata: Default::default(),
        schema_version: 0,
    };
    let mut out = serde_json::to_string(&joined).unwrap() + "\n";
    let mut position = 1u64;
    for c in 0..customers {
        for v in 0..=per {
            position += 1;
            let (ty, data) = if v == 0 {
                (
                    "CustomerRegistered",
                    json!({"name": format!("Customer {c}"), "industry": "retail", "tags": ["a, \"b\""]}),
                )
            } else {
                (
                    "ActivityLogged",
                    json!({"kind": "call", "rep": "wukong", "duration_s": 60 + v, "summary": "talked \u{4e2d}\u{6587}"}),
                )
            };
            let minute = (position % 60) as u32;
            let day = 1 + (c % 27) as u32 + if v > 0 { 1 } else { 0 };
            let mut metadata = serde_json::Map::new();
            metadata.insert("correlation_id".into(), json!(format!("corr-{position}")));
            let ev = domain::RecordedEvent {
                id: uuid::Uuid::from_u128(
                    0x0192_f4c2_0000_7000_8000_0000_0000_0000 + position as u128,
                ),
                stream: format!("customer-C-{c}"),
                event_type: ty.to_string(),
                version: v as u64,
                position,
                occurred_at: time(&format!("2026-03-{day:02}T09:{minute:02}:00Z")),
                recorded_at: time(&format!("2026-03-{day:02}T09:{minute:02}:02.118Z")),
                actor: "wukong".into(),
                data: data.into(),
                metadata: metadata.into(),
                schema_version: 0,
            };
            out.push_str(&serde_json::to_string(&ev).unwrap());
            out.push('\n');
        }
    }
    out
}

/// Compares two NDJSON texts line by line, reporting the first difference only.
fn assert_same(got: &str, want: &str) {
    let (g, w): (Vec<&str>, Vec<&str>) = (got.lines().collect(), want.lines().collect());
    if let Some(i) = (0..g.len().min(w.len())).find(|&i| g[i] != w[i]) {
        panic!("line {} differs:\n got: {}\nwant: {}", i + 1, g[i], w[i]);
    }
    assert_eq!(g.len(), w.len(), "line counts differ");
}

fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn import_then_export_reproduces_the_file_and_reimport_adds_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let log = canonical_log(30, 4);
    let file = write(tmp.path(), "log.ndjson", &log);

    let o = dealtrail(&data, &["import", file.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let exported = dealtrail(&data, &["export"]);
    assert!(exported.status.success(), "{}", stderr(&exported));
    assert_same(&String::from_utf8(exported.stdout).unwrap(), &log);

    let again = dealtrail(&data, &["import", file.to_str().unwrap()]);
    assert!(again.status.success(), "{}", stderr(&again));
    assert!(
        stderr(&again).contains("0 new events"),
        "{}",
        stderr(&again)
    );
    let exported = dealtrail(&data, &["export"]);
    assert_same(&String::from_utf8(exported.stdout).unwrap(), &log);

    let v = dealtrail(&data, &["verify"]);
    assert!(v.status.success(), "{}", stderr(&v));
}

#[test]
fn import_from_stdin_and_export_from_a_position() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let log = canonical_log(3, 2);
    let mut child = Command::new(env!("CARGO_BIN_EXE_dealtrail"))
        .arg("--data")
        .arg(&data)
        .args(["import", "-"])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(log.as_bytes())
        .unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let tail = dealtrail(&data, &["export", "--from-position", "4"]);
    let expected: String = log.lines().skip(3).map(|l| format!("{l}\n")).collect();
    assert_same(&String::from_utf8(tail.stdout).unwrap(), &expected);
}

#[test]
fn a_malformed_line_is_refused_by_number_and_nothing_is_written() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let mut lines: Vec<String> = canonical_log(2, 2).lines().map(String::from).collect();
    lines[3] = lines[3].replace("\"data\"", "\"dat\"");
    let file = write(tmp.path(), "bad.ndjson", &(lines.join("\n") + "\n"));
    let o = dealtrail(&data, &["import", file.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(5), "{}", stderr(&o));
    assert!(stderr(&o).contains("line 4"), "{}", stderr(&o));
    let exported = dealtrail(&data, &["export"]);
    assert_eq!(String::from_utf8(exported.stdout).unwrap(), "");
}

#[test]
fn export_csv_has_a_header_and_one_row_per_event() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let file = write(tmp.path(), "log.ndjson", &canonical_log(2, 1));
    assert!(dealtrail(&data, &["import", file.to_str().unwrap()])
        .status
        .success());
    let o = dealtrail(&data, &["export", "--format", "csv"]);
    let text = String::from_utf8(o.stdout).unwrap();
    let rows: Vec<&str> = text.lines().collect();
    assert_eq!(
        rows[0],
        "position,id,stream,type,version,occurred_at,recorded_at,actor,data,metadata"
    );
    assert_eq!(rows.len(), 6);
    assert!(rows[1].starts_with("1,"), "{}", rows[1]);
    assert!(rows[1].contains(",org-acme,RepJoined,0,"), "{}", rows[1]);
    assert!(
        rows[2].contains(",customer-C-0,CustomerRegistered,0,"),
        "{}",
        rows[2]
    );
}

/// `kill -9` in the middle of an import leaves a prefix of the file that passes verify, and
/// re-running the import completes it.
#[test]
fn killed_import_leaves_a_prefix_and_rerun_completes_it() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let log = canonical_log(2000, 9); // 20,001 events
    let file = write(tmp.path(), "big.ndjson", &log);
    let all: Vec<&str> = log.lines().collect();
    let mut interrupted = 0;
    for (round, delay_ms) in [20u64, 120, 300, 600].into_iter().enumerate() {
        let mut child = Command::new(env!("CARGO_BIN_EXE_dealtrail"))
            .arg("--data")
            .arg(&data)
            .args(["import", file.to_str().unwrap()])
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Let the child get as far as opening the store, then kill it a little later.
        let t0 = std::time::Instant::now();
        while !data.join("db").exists() && t0.elapsed() < std::time::Duration::from_secs(20) {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        let _ = child.kill(); // SIGKILL; the import may also have finished already
        let _ = child.wait();
        let v = dealtrail(&data, &["verify"]);
        assert!(
            v.status.success(),
            "round {round}: verify failed: {}",
            stderr(&v)
        );
        let exported = String::from_utf8(dealtrail(&data, &["export"]).stdout).unwrap();
        let got: Vec<&str> = exported.lines().collect();
        assert!(got.len() <= all.len());
        assert!(
            got[..] == all[..got.len()],
            "round {round}: the log is not a prefix of the file"
        );
        if got.len() < all.len() {
            interrupted += 1;
        }
        eprintln!(
            "round {round}: {} of {} events in the log after the kill",
            got.len(),
            all.len()
        );
    }
    eprintln!("{interrupted} of 4 imports were killed before they finished");
    let o = dealtrail(&data, &["import", file.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let exported = String::from_utf8(dealtrail(&data, &["export"]).stdout).unwrap();
    assert_same(&exported, &log);
    assert!(dealtrail(&data, &["verify"]).status.success());
}
