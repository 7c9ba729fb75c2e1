//! Secrets and files: the configured admin token replaces the previous one (issued tokens
//! stay), a short one is refused at start, and the data directory and the API's files are
//! private to the server's user.

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use eventlog::memory::MemoryStore;
use http_body_util::BodyExt;
use tower::ServiceExt;

mod common;

const OLD: &str = "the-previous-admin-token-0123456789";
const NEW: &str = "the-configured-admin-token-0123456789";

async fn call(
    app: &axum::Router,
    method: &str,
    path: &str,
    token: &str,
    body: &str,
) -> (StatusCode, serde_json::Value) {
    let req = Request::builder()
        .method(method)
        .uri(path)
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
    let res = app.clone().oneshot(req).await.unwrap();
    let status = res.status();
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap_or_default())
}

#[tokio::test]
async fn changing_the_admin_token_revokes_the_previous_one_and_keeps_issued_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(MemoryStore::new());
    let open = |token: &str| {
        let (state, _) =
            api::http::AppState::open(store.clone(), dir.path(), Default::default(), Some(token))
                .unwrap();
        api::http::router(state)
    };
    let before = open(OLD);
    let (status, issued) = call(&before, "POST", "/v1/tokens", OLD, r#"{"role":"analyst"}"#).await;
    assert_eq!(status, StatusCode::CREATED, "{issued}");
    let analyst = issued["token"].as_str().unwrap().to_string();
    drop(before);

    // Restarted with another DEALTRAIL_ADMIN_TOKEN.
    let after = open(NEW);
    let (status, _) = call(&after, "GET", "/v1/events", OLD, "").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "the previous admin token");
    let (status, _) = call(&after, "GET", "/v1/events", NEW, "").await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = call(&after, "GET", "/v1/events", &analyst, "").await;
    assert_eq!(status, StatusCode::OK, "a token issued by POST /v1/tokens");
}

#[test]
fn an_admin_token_shorter_than_32_characters_is_refused_at_start_with_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_dealtrail"))
        .arg("--data")
        .arg(dir.path().join("data"))
        .args(["serve", "--addr", "127.0.0.1:0"])
        .env("DEALTRAIL_ADMIN_TOKEN", "short-admin-token")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("serve started with a 17-character admin token");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert_eq!(status.code(), Some(2), "{err}");
    assert!(
        err.contains("DEALTRAIL_ADMIN_TOKEN") && err.contains("32"),
        "{err}"
    );
    assert!(
        !dir.path().join("data").exists(),
        "refused before touching the data"
    );
}

/// A plain HTTP/1.1 request as admin; the status.
fn request(addr: &str, method: &str, path: &str, body: &str) -> u16 {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {NEW}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    raw.split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

#[cfg(unix)]
#[test]
fn the_data_directory_is_0700_and_the_apis_files_0600() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut child = Command::new(env!("CARGO_BIN_EXE_dealtrail"))
        .arg("--data")
        .arg(&data)
        .args(["serve", "--addr", "127.0.0.1:0"])
        .env("DEALTRAIL_ADMIN_TOKEN", NEW)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (addr, output) = common::listening_address(&mut child);
    assert_eq!(request(&addr, "PUT", "/v1/consumers/billing", ""), 201);
    let event = r#"{"events":[{"type":"LeadCaptured","data":{"channel":"web","name":"n"}}]}"#;
    assert_eq!(
        request(&addr, "POST", "/v1/streams/lead-L1/events", event),
        201
    );
    // SIGTERM: the read model is saved on the way out.
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    assert!(child.wait().unwrap().success());
    drop(output);

    let mode = |p: &Path| {
        format!(
            "{:o}",
            std::fs::metadata(p).unwrap().permissions().mode() & 0o777
        )
    };
    assert_eq!(mode(&data), "700", "the data directory");
    for d in ["http", "projections"] {
        assert_eq!(mode(&data.join(d)), "700", "{d}");
    }
    for f in [
        "http/tokens.json",
        "http/consumers.json",
        "projections/readmodel.json",
    ] {
        assert_eq!(mode(&data.join(f)), "600", "{f}");
    }
}
