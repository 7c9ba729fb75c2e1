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
