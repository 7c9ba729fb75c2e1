//! The customer service report and the follow-up list (issue 18) through a real
//! `dealtrail serve --demo --pool-release-after-days 60`: every rep still on the team has an
//! item in each of the four lists on the demo's last day, every figure of the service report
//! moves, bad parameters are named (400 over HTTP, exit 5 offline), and the HTTP bodies equal
//! `dealtrail report … --json` byte for byte.

use std::process::{Command, Stdio};

use serde_json::Value;

mod common;

const TOKEN: &str = "e2e-admin-token-0123456789abcdefgh";

fn get(addr: &str, path: &str) -> (u16, String) {
    common::http_get(addr, path, TOKEN)
}

#[test]
fn the_demo_fills_every_list_and_http_equals_the_offline_reports() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut child = Command::new(env!("CARGO_BIN_EXE_dealtrail"))
        .arg("--data")
        .arg(&data)
        .args(["serve", "--demo", "--addr", "127.0.0.1:0"])
        .args(["--pool-release-after-days", "60"])
        .env("DEALTRAIL_ADMIN_TOKEN", TOKEN)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (addr, _output) = common::listening_address(&mut child);

    // The demo ends at today's midnight: its last day is yesterday.
    let today = chrono::Utc::now().date_naive();
    for rep in [
        "wukong", "bajie", "wujing", "longma", "nezha", "erlang", "change",
    ] {
        let (status, body) = get(&addr, &format!("/v1/reports/follow-up?rep={rep}"));
        assert_eq!(status, 200, "{body}");
        let f: Value = serde_json::from_str(&body).unwrap();
        for list in [
            "overdue_payments",
            "stale_deals",
            "pool_release_soon",
            "leads_to_work",
        ] {
            assert!(!f[list].as_array().unwrap().is_empty(), "{rep}: no {list}");
        }
    }
    let (status, body) = get(&addr, "/v1/reports/service?months=12");
    assert_eq!(status, 200, "{body}");
    let s: Value = serde_json::from_str(&body).unwrap();
    let series = s["groups"][0]["series"].as_array().unwrap();
    assert_eq!(series.len(), 12);
    for m in series {
        let nps = &m["nps"];
        for band in ["promoters", "passives", "detractors"] {
            assert!(nps[band].as_u64() > Some(0), "{}: no {band}", m["month"]);
        }
        for field in [
            "active_at_start",
            "churned",
            "complaints_opened",
            "complaints_resolved",
        ] {
            assert!(m[field].as_u64() > Some(0), "{}: {field} is 0", m["month"]);
        }
        assert!(m["median_resolution_days"].as_f64() > Some(0.0), "{m}");
    }
    assert!(series
        .iter()
        .any(|m| m["open_complaints_at_end"].as_u64() > Some(0)));

    // Bad parameters name themselves.
    for (path, param) in [
        ("/v1/reports/service?group_by=team", "group_by"),
        ("/v1/reports/service?months=0", "months"),
        (
            "/v1/reports/follow-up?rep=nezha&stale_days=soon",
            "stale_days",
        ),
        ("/v1/reports/follow-up", "rep"),
    ] {
        let (status, body) = get(&addr, path);
        assert_eq!(status, 400, "{path}: {body}");
        assert!(body.contains(param), "{path}: {body}");
    }
    let (status, _) = get(&addr, "/v1/reports/follow-up?rep=nobody");
    assert_eq!(status, 404);

    // As of the demo's end (the pool policy's releases at start come after it).
    let end = format!("{today}T00:00:00Z");
    let queries = [
        (
            "service",
            format!("months=12&group_by=rep&as_of={end}"),
            vec!["--months", "12", "--group-by", "rep", "--as-of", &end],
        ),
        (
            "follow-up",
            format!("rep=nezha&as_of={end}&stale_days=10"),
            vec![
                "--rep",
                "nezha",
                "--as-of",
                &end,
                "--stale-days",
                "10",
                "--pool-release-after-days",
                "60",
            ],
        ),
    ];
    let mut bodies = Vec::new();
    for (name, q, _) in &queries {
        let (status, body) = get(&addr, &format!("/v1/reports/{name}?{q}"));
        assert_eq!(status, 200, "{name}: {body}");
        bodies.push(body);
    }
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "serve exit: {:?}", out.status);

    let dealtrail = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_dealtrail"))
            .arg("--data")
            .arg(&data)
            .arg("report")
            .args(args)
            .output()
            .unwrap()
    };
    for ((name, _, flags), http_body) in queries.iter().zip(&bodies) {
        let o = dealtrail(&[&[*name, "--json"], &flags[..]].concat());
        assert!(
            o.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let offline = String::from_utf8(o.stdout).unwrap();
        assert_eq!(
            offline.trim_end(),
            http_body,
            "{name}: HTTP and offline differ"
        );
    }
    for (args, param) in [
        (vec!["service", "--months", "0"], "months"),
        (vec!["service", "--group-by", "team"], "group_by"),
        (vec!["follow-up"], "rep"),
        (vec!["follow-up", "--rep", "nobody"], "nobody"),
    ] {
        let o = dealtrail(&args);
        assert_eq!(o.status.code(), Some(5), "{args:?}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(param), "{args:?}: {err}");
    }
}
