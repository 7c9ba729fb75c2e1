//! Webhooks against a real `dealtrail serve` and a receiver on 127.0.0.1 that answers 500 to
//! every third request and hangs past the server's timeout on every seventh: every matching
//! event arrives, in log order, with a valid Standard Webhooks signature (checked here with
//! HMAC-SHA256 directly); a kill -9 mid-delivery and a restart lose nothing; the `types` and
//! `stream_prefix` filters hold; a dead endpoint is disabled and says why; only an admin may
//! manage webhooks.

use std::collections::{BTreeMap, HashSet};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{json, Value};

mod common;

const TOKEN: &str = "webhooks-admin-token-0123456789abcdef";

/// What one receiver path saw.
#[derive(Default)]
struct Inbox {
    requests: u64,
    /// (position, event id) of each delivery answered 2xx, in arrival order.
    accepted: Vec<(u64, String)>,
    bad_signatures: Vec<String>,
}

#[derive(Default)]
struct Receiver {
    inboxes: Mutex<BTreeMap<String, Inbox>>,
    /// Each path's key (the decoded secret).
    keys: Mutex<BTreeMap<String, Vec<u8>>>,
}

fn check_signature(key: &[u8], headers: &HeaderMap, body: &[u8]) -> Result<(), String> {
    let h = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
            .ok_or(format!("no {name} header"))
    };
    let (id, ts, sig) = (
        h("webhook-id")?,
        h("webhook-timestamp")?,
        h("webhook-signature")?,
    );
    let ts_value: i64 = ts.parse().map_err(|_| format!("timestamp {ts:?}"))?;
    if (chrono::Utc::now().timestamp() - ts_value).abs() > 300 {
        return Err(format!("timestamp {ts} is not now"));
    }
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key).unwrap();
    mac.update(format!("{id}.{ts}.").as_bytes());
    mac.update(body);
    let expected = format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()));
    if !sig.split(' ').any(|s| s == expected) {
        return Err(format!("signature {sig} is not {expected}"));
    }
    let event: Value = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    if event["id"] != id.as_str() {
        return Err(format!(
            "webhook-id {id} is not the event's id {}",
            event["id"]
        ));
    }
    Ok(())
}

async fn receive(
    State(r): State<Arc<Receiver>>,
    Path(path): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let n = {
        let mut inboxes = r.inboxes.lock().unwrap();
        let inbox = inboxes.entry(path.clone()).or_default();
        inbox.requests += 1;
        inbox.requests
    };
    if n % 3 == 0 {
        return StatusCode::INTERNAL_SERVER_ERROR;
    }
    if n % 7 == 0 {
        // Past the server's timeout: the server gives up on this attempt and retries.
        tokio::time::sleep(Duration::from_secs(3)).await;
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    let key = r
        .keys
        .lock()
        .unwrap()
        .get(&path)
        .cloned()
        .unwrap_or_default();
    let mut inboxes = r.inboxes.lock().unwrap();
    let inbox = inboxes.get_mut(&path).unwrap();
    if let Err(why) = check_signature(&key, &headers, &body) {
        inbox.bad_signatures.push(why);
        return StatusCode::BAD_REQUEST;
    }
    let event: Value = serde_json::from_slice(&body).unwrap();
    inbox.accepted.push((
        event["position"].as_u64().unwrap(),
        event["id"].as_str().unwrap().to_string(),
    ));
    StatusCode::NO_CONTENT
}

struct Server {
    child: Child,
    addr: String,
    _output: common::Output,
}

impl Drop for Server {
    /// A failing test leaves no server behind.
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(data: &std::path::Path) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_dealtrail"))
        .arg("--data")
        .arg(data)
        .args(["serve", "--addr", "127.0.0.1:0"])
        .args(["--webhook-timeout", "0.5", "--webhook-first-retry", "0.05"])
        .args([
            "--webhook-max-backoff",
            "0.3",
            "--webhook-disable-after",
            "4",
        ])
        .env("DEALTRAIL_ADMIN_TOKEN", TOKEN)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let (addr, output) = common::listening_address(&mut child);
    Server {
        child,
        addr,
        _output: output,
    }
}

struct Api {
    http: reqwest::Client,
    base: String,
}

impl Api {
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(token);
        if let Some(b) = body {
            req = req
                .header("content-type", "application/json")
                .body(b.to_string());
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }
    async fn get(&self, path: &str, token: &str) -> (u16, Value) {
        self.call(reqwest::Method::GET, path, token, None).await
    }
    async fn post(&self, path: &str, token: &str, body: Value) -> (u16, Value) {
        self.call(reqwest::Method::POST, path, token, Some(body))
            .await
    }
}

/// Appends events `from..to`: customers on even numbers, leads on odd ones.
async fn append(api: &Api, from: usize, to: usize) {
    for i in from..to {
        let (stream, event) = if i % 2 == 0 {
            (
                format!("customer-C-{i}"),
                json!({"type": "CustomerRegistered", "data": {"name": format!("c{i}")}}),
            )
        } else {
            (
                format!("lead-L-{i}"),
                json!({"type": "LeadCaptured", "data": {"channel": "web", "name": format!("l{i}")}}),
            )
        };
        let (status, body) = api
            .post(
                &format!("/v1/streams/{stream}/events"),
                TOKEN,
                json!({"events": [event]}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
    }
}

fn accepted(r: &Receiver, path: &str) -> Vec<(u64, String)> {
    r.inboxes
        .lock()
        .unwrap()
        .get(path)
        .map(|i| i.accepted.clone())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_matching_event_arrives_in_order_signed_across_a_kill_and_restart() {
    let receiver = Arc::new(Receiver::default());
    let app = axum::Router::new()
        .route("/{path}", axum::routing::post(receive))
        .with_state(receiver.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook_base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    // A port nobody listens on: bind one, then close it.
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}/dead", l.local_addr().unwrap())
    };

    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut server = start(&data);
    let mut api = Api {
        http: reqwest::Client::new(),
        base: format!("http://{}", server.addr),
    };

    // Scope: only an admin manages webhooks.
    let (status, body) = api
        .post("/v1/tokens", TOKEN, json!({"role": "service"}))
        .await;
    assert_eq!(status, 201, "{body}");
    let service = body["token"].as_str().unwrap().to_string();
    let new = json!({"url": format!("{hook_base}/all")});
    assert_eq!(api.post("/v1/webhooks", &service, new.clone()).await.0, 403);
    assert_eq!(api.get("/v1/webhooks", &service).await.0, 403);

    // Bad input names its field.
    for (body, field) in [
        (json!({"url": "ftp://example.com/x"}), "url"),
        (json!({"url": "not a url"}), "url"),
        (
            json!({"url": hook_base, "types": ["DealWon", "Nope"]}),
            "types[1]",
        ),
        (json!({"url": hook_base, "colour": "red"}), ""),
    ] {
        let (status, problem) = api.post("/v1/webhooks", TOKEN, body.clone()).await;
        assert_eq!(status, 400, "{body}: {problem}");
        if !field.is_empty() {
            assert_eq!(problem["field"], field, "{problem}");
        }
    }
    assert_eq!(api.get("/v1/webhooks/nope", TOKEN).await.0, 400);
    let unknown = format!("/v1/webhooks/{}", uuid::Uuid::new_v4());
    assert_eq!(api.get(&unknown, TOKEN).await.0, 404);

    let mut ids = BTreeMap::new();
    for (path, extra) in [
        ("all", json!({})),
        ("leads", json!({"types": ["LeadCaptured"]})),
        ("customers", json!({"stream_prefix": "customer-"})),
    ] {
        let mut body = json!({"url": format!("{hook_base}/{path}")});
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        let (status, created) = api.post("/v1/webhooks", TOKEN, body).await;
        assert_eq!(status, 201, "{created}");
        let secret = created["secret"].as_str().unwrap();
        let key = STANDARD
            .decode(secret.strip_prefix("whsec_").expect("whsec_ prefix"))
            .unwrap();
        receiver.keys.lock().unwrap().insert(path.to_string(), key);
        ids.insert(path, created["id"].as_str().unwrap().to_string());
    }
    let (status, created) = api.post("/v1/webhooks", TOKEN, json!({"url": dead})).await;
    assert_eq!(status, 201, "{created}");
    let dead_id = created["id"].as_str().unwrap().to_string();
    let (_, listed) = api.get("/v1/webhooks", TOKEN).await;
    assert_eq!(listed["webhooks"].as_array().unwrap().len(), 4, "{listed}");
    assert!(
        !listed.to_string().contains("whsec_"),
        "a listing never shows a secret"
    );

    // Half the events, then kill -9 while deliveries are under way, restart, the rest.
    append(&api, 0, 40).await;
    let until = Instant::now() + Duration::from_secs(30);
    while accepted(&receiver, "all").len() < 10 {
        assert!(Instant::now() < until, "no deliveries");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    let before_restart = accepted(&receiver, "all").len();
    assert!(
        before_restart < 40,
        "the kill came after everything was delivered"
    );
    server = start(&data);
    api.base = format!("http://{}", server.addr);
    append(&api, 40, 80).await;

    // The log as the server has it, read independently of the webhooks.
    let (_, page) = api.get("/v1/events?limit=1000", TOKEN).await;
    let log: Vec<(u64, String, String, String)> = page["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["position"].as_u64().unwrap(),
                e["id"].as_str().unwrap().to_string(),
                e["type"].as_str().unwrap().to_string(),
                e["stream"].as_str().unwrap().to_string(),
            )
        })
        // The service token issued above left its audit event (`TokenIssued`, org-access)
        // before any webhook existed: the webhooks deliver from their creation on.
        .filter(|(_, _, _, stream)| !stream.starts_with("org-"))
        .collect();
    assert_eq!(log.len(), 80);
    let expect = |keep: &dyn Fn(&str, &str) -> bool| -> Vec<(u64, String)> {
        log.iter()
            .filter(|(_, _, t, s)| keep(t, s))
            .map(|(p, id, _, _)| (*p, id.clone()))
            .collect()
    };
    let expected: BTreeMap<&str, Vec<(u64, String)>> = [
        ("all", expect(&|_, _| true)),
        ("leads", expect(&|t, _| t == "LeadCaptured")),
        ("customers", expect(&|_, s| s.starts_with("customer-"))),
    ]
    .into_iter()
    .collect();
    assert_eq!(expected["leads"].len(), 40);
    assert_eq!(expected["customers"].len(), 40);

    let until = Instant::now() + Duration::from_secs(120);
    for (path, want) in &expected {
        loop {
            let got = accepted(&receiver, path);
            let seen: HashSet<&String> = got.iter().map(|(_, id)| id).collect();
            if want.iter().all(|(_, id)| seen.contains(id)) {
                break;
            }
            assert!(
                Instant::now() < until,
                "{path}: {} of {} delivered",
                seen.len(),
                want.len()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    // Let anything still in flight land before judging order.
    tokio::time::sleep(Duration::from_millis(700)).await;

    {
        let inboxes = receiver.inboxes.lock().unwrap();
        for (path, want) in &expected {
            let inbox = &inboxes[*path];
            assert!(
                inbox.bad_signatures.is_empty(),
                "{path}: {:?}",
                inbox.bad_signatures
            );
            // Nothing that does not match, nothing twice except what the restart repeated, and
            // in log order: the first arrival of each event is exactly the expected list...
            let mut firsts = Vec::new();
            let mut seen = HashSet::new();
            for d in &inbox.accepted {
                if seen.insert(d.1.clone()) {
                    firsts.push(d.clone());
                }
            }
            assert_eq!(&firsts, want, "{path}");
            // ...and deliveries only went back once, at the restart, to the last checkpoint.
            let back = inbox
                .accepted
                .windows(2)
                .filter(|w| w[1].0 <= w[0].0)
                .count();
            assert!(
                back <= 1,
                "{path}: went back {back} times: {:?}",
                inbox.accepted
            );
            assert!(
                inbox.requests > inbox.accepted.len() as u64,
                "{path}: some failed"
            );
        }
    }

    // What the API says about a webhook that had failures.
    let all = &ids["all"];
    let (status, view) = api.get(&format!("/v1/webhooks/{all}"), TOKEN).await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(view["state"], "active");
    assert_eq!(view["position"], expected["all"].last().unwrap().0);
    let (status, d) = api
        .get(&format!("/v1/webhooks/{all}/deliveries"), TOKEN)
        .await;
    assert_eq!(status, 200, "{d}");
    // 81 events in the log: the token's audit event, then the 80 appended.
    assert_eq!(d["position"], 81);
    assert_eq!(d["head_position"], 81);
    let attempts = d["attempts"].as_array().unwrap();
    assert_eq!(attempts[0]["position"], 81, "newest first: {d}");
    assert_eq!(attempts[0]["delivered"], true);
    assert!(attempts.iter().any(|a| a["status"] == 500), "{d}");
    assert!(
        attempts
            .iter()
            .any(|a| a["error"].as_str().is_some_and(|e| e.contains("timed out"))),
        "{d}"
    );

    // The dead endpoint: disabled after failing for 4 s, and says why.
    let until = Instant::now() + Duration::from_secs(30);
    let view = loop {
        let (_, view) = api.get(&format!("/v1/webhooks/{dead_id}"), TOKEN).await;
        if view["state"] == "disabled" {
            break view;
        }
        assert!(Instant::now() < until, "not disabled: {view}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let reason = view["disabled"]["reason"].as_str().unwrap();
    assert!(reason.contains("could not connect"), "{reason}");
    // Created when the log held only the token's audit event: nothing delivered since.
    assert_eq!(view["position"], 1);

    // Deleting stops deliveries and forgets the webhook.
    let leads = &ids["leads"];
    let (status, _) = api
        .call(
            reqwest::Method::DELETE,
            &format!("/v1/webhooks/{leads}"),
            TOKEN,
            None,
        )
        .await;
    assert_eq!(status, 204);
    assert_eq!(
        api.get(&format!("/v1/webhooks/{leads}"), TOKEN).await.0,
        404
    );
    let before = accepted(&receiver, "leads").len();
    append(&api, 80, 84).await;
    let until = Instant::now() + Duration::from_secs(30);
    while accepted(&receiver, "all").len() < expected["all"].len() + 4 {
        assert!(Instant::now() < until);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(accepted(&receiver, "leads").len(), before);

    // A graceful stop saves every checkpoint: a restart delivers nothing again. (A delivery
    // the receiver accepted but whose answer the server had not read yet when it stopped
    // would be sent again: at least once. So first wait for the server to know.)
    let until = Instant::now() + Duration::from_secs(30);
    while api.get(&format!("/v1/webhooks/{all}"), TOKEN).await.1["position"] != 85 {
        assert!(Instant::now() < until);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let pid = server.child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    server.child.wait().unwrap();
    let delivered = accepted(&receiver, "all").len();
    let _server = start(&data);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(accepted(&receiver, "all").len(), delivered);
}
