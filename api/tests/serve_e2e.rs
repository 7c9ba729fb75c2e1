//! `dealtrail serve --demo` as a real process: reports over HTTP equal `dealtrail report
//! --json` on the same data directory, and SIGTERM stops the server cleanly (read model saved).

use std::process::{Command, Stdio};

mod common;

const TOKEN: &str = "e2e-admin-token-0123456789abcdefgh";

fn get(addr: &str, path: &str) -> (u16, String) {
    common::http_get(addr, path, TOKEN)
}

#[test]
fn http_reports_equal_the_offline_reports_and_sigterm_saves_the_model() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut child = Command::new(env!("CARGO_BIN_EXE_dealtrail"))
        .arg("--data")
        .arg(&data)
        .args(["serve", "--demo", "--addr", "127.0.0.1:0"])
        .env("DEALTRAIL_ADMIN_TOKEN", TOKEN)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (addr, _output) = common::listening_address(&mut child);
    let queries = [
        ("funnel", "group_by=rep", vec!["--group-by", "rep"]),
        (
            "reps",
            "months=6&end=2026-10",
            vec!["--months", "6", "--end", "2026-10"],
        ),
        (
            "pipeline",
            "as_of=2026-10-01T00:00:00Z&stale_days=10",
            vec!["--as-of", "2026-10-01T00:00:00Z", "--stale-days", "10"],
        ),
        (
            "win-loss",
            "from=2026-01-01T00:00:00Z",
            vec!["--from", "2026-01-01T00:00:00Z"],
        ),
        ("channels", "", vec![]),
    ];
    let mut bodies = Vec::new();
    for (name, q, _) in &queries {
        let (status, body) = get(&addr, &format!("/v1/reports/{name}?{q}"));
        assert_eq!(status, 200, "{name}: {body}");
        bodies.push(body);
    }
    // The deal list (SPEC §5.1), and its second page by the first one's cursor.
    let mut deal_queries: Vec<(String, Vec<String>)> = vec![
        (
            "status=lost&min_amount=100000&from=2026-01-01&limit=7".into(),
            [
                "--status",
                "lost",
                "--min-amount",
                "100000",
                "--from",
                "2026-01-01",
                "--limit",
                "7",
            ]
            .map(String::from)
            .to_vec(),
        ),
        (
            "team=east&q=d-1&limit=5".into(),
            ["--team", "east", "--q", "d-1", "--limit", "5"]
                .map(String::from)
                .to_vec(),
        ),
    ];
    let (_, first) = get(&addr, &format!("/v1/deals?{}", deal_queries[0].0));
    let first: serde_json::Value = serde_json::from_str(&first).unwrap();
    let cursor = first["next_cursor"]
        .as_str()
        .expect("a second page")
        .to_string();
    deal_queries.push((
        format!("{}&cursor={cursor}", deal_queries[0].0),
        [deal_queries[0].1.clone(), vec!["--cursor".into(), cursor]].concat(),
    ));
    let mut deal_bodies = Vec::new();
    for (q, _) in &deal_queries {
        let (status, body) = get(&addr, &format!("/v1/deals?{q}"));
        assert_eq!(status, 200, "deals?{q}: {body}");
        assert!(body.contains("\"id\""), "deals?{q}: {body}");
        deal_bodies.push(body);
    }

    let (status, body) = get(&addr, "/v1/reports/funnel?group_by=colour");
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("group_by"), "{body}");

    // While the server holds the directory, offline commands refuse it (exit 3), no panic.
    let locked = Command::new(env!("CARGO_BIN_EXE_dealtrail"))
        .arg("--data")
        .arg(&data)
        .args(["report", "funnel"])
        .output()
        .unwrap();
    assert_eq!(
        locked.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&locked.stderr)
    );
    assert!(
        String::from_utf8_lossy(&locked.stderr).contains("HTTP"),
        "points to the HTTP API"
    );

    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "serve exit: {:?}", out.status);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("read model saved"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    for ((name, _, flags), http_body) in queries.iter().zip(&bodies) {
        let o = Command::new(env!("CARGO_BIN_EXE_dealtrail"))
            .arg("--data")
            .arg(&data)
            .args(["report", name, "--json"])
            .args(flags)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let offline = String::from_utf8(o.stdout).unwrap();
        assert_eq!(
            offline.trim_end(),
            http_body,
            "{name}: HTTP and offline bodies differ"
        );
    }
    for ((q, flags), http_body) in deal_queries.iter().zip(&deal_bodies) {
        let o = Command::new(env!("CARGO_BIN_EXE_dealtrail"))
            .arg("--data")
            .arg(&data)
            .args(["deals", "--json"])
            .args(flags)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "{q}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let offline = String::from_utf8(o.stdout).unwrap();
        assert_eq!(
            offline.trim_end(),
            http_body,
            "deals?{q}: HTTP and offline bodies differ"
        );
    }
    // A bad filter: exit 5, naming it.
    let o = Command::new(env!("CARGO_BIN_EXE_dealtrail"))
        .arg("--data")
        .arg(&data)
        .args(["deals", "--status", "closed"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(5));
    assert!(String::from_utf8_lossy(&o.stderr).contains("status"));
}

/// Settings the server reads from its environment go through the command line's parser: a
/// bad one is a usage error (exit 2) naming it, before anything is opened or created.
#[test]
fn bad_log_filter_or_admin_token_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let serve = |env: (&str, &str)| {
        Command::new(env!("CARGO_BIN_EXE_dealtrail"))
            .arg("--data")
            .arg(&data)
            .args(["serve", "--addr", "127.0.0.1:0"])
            .env_remove("DEALTRAIL_ADMIN_TOKEN")
            .env_remove("RUST_LOG")
            .env(env.0, env.1)
            .output()
            .unwrap()
    };
    let out = serve(("RUST_LOG", "info,["));
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("log filter"));
    let out = serve(("DEALTRAIL_ADMIN_TOKEN", "too-short"));
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("at least 32"));
    assert!(!data.exists(), "nothing created");
}
