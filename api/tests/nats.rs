//! `serve --nats` against the NATS JetStream server at 127.0.0.1:4222: the server is killed
//! (kill -9) while it is publishing, restarted, and the stream then holds every event of the
//! log exactly once, in log order, by `Nats-Msg-Id`. Skipped with a notice when NATS does
//! not answer, unless `DEALTRAIL_REQUIRE_NATS=1` (CI), where that is a failure. Each run uses
//! its own stream and subject prefix and deletes the stream afterwards.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

mod common;

const TOKEN: &str = "nats-admin-token-0123456789abcdefghij";
const NATS: &str = "127.0.0.1:4222";

fn nats_answers() -> bool {
    let answers =
        std::net::TcpStream::connect_timeout(&NATS.parse().unwrap(), Duration::from_secs(2))
            .is_ok();
    if !answers {
        if std::env::var("DEALTRAIL_REQUIRE_NATS").as_deref() == Ok("1") {
            panic!("NATS does not answer at {NATS} and DEALTRAIL_REQUIRE_NATS=1");
        }
        eprintln!("NOTICE: NATS does not answer at {NATS}: test skipped (set DEALTRAIL_REQUIRE_NATS=1 to fail instead)");
    }
    answers
}

fn start(data: &std::path::Path, stream: &str, prefix: &str) -> (Child, String, common::Output) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_dealtrail"))
        .arg("--data")
        .arg(data)
        .args(["serve", "--addr", "127.0.0.1:0"])
        .args(["--nats", &format!("nats://{NATS}")])
        .args(["--nats-stream", stream, "--nats-subject-prefix", prefix])
        .env("DEALTRAIL_ADMIN_TOKEN", TOKEN)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let (addr, out) = common::listening_address(&mut child);
    (child, format!("http://{addr}"), out)
}

/// Appends one batch; `false` when the server is gone.
async fn append(http: &reqwest::Client, base: &str, stream: &str, events: Value) -> bool {
    let sent = http
        .post(format!("{base}/v1/streams/{stream}/events"))
        .bearer_auth(TOKEN)
        .header("content-type", "application/json")
        .body(json!({ "events": events }).to_string())
        .send()
        .await;
    let Ok(resp) = sent else { return false };
    let status = resp.status().as_u16();
    assert_eq!(status, 201, "{}", resp.text().await.unwrap());
    true
}

/// Events per append.
const BATCH: usize = 1000;

/// Appends batches of [`BATCH`] events (`CustomerRegistered`, then `CustomerUpdated`) to
/// `customer-C-<batch>`, until `to` or the server is gone.
async fn append_batches(http: &reqwest::Client, base: &str, from: usize, to: usize) {
    for b in from..to {
        let stream = format!("customer-C-{b}");
        let mut events =
            vec![json!({"type": "CustomerRegistered", "data": {"name": format!("c{b}")}})];
        for i in 1..BATCH {
            events.push(json!({"type": "CustomerUpdated", "data": {"industry": format!("i{i}")}}));
        }
        if !append(http, base, &stream, Value::Array(events)).await {
            return;
        }
    }
}

/// Kills the server when the test ends, failing or not.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Deletes the test's stream even when the test fails.
struct DeleteStream(String);

impl Drop for DeleteStream {
    fn drop(&mut self) {
        let name = self.0.clone();
        let _ = std::thread::spawn(move || {
            tokio::runtime::Runtime::new().unwrap().block_on(async {
                if let Ok(c) = async_nats::connect(NATS).await {
                    let _ = async_nats::jetstream::new(c).delete_stream(&name).await;
                }
            })
        })
        .join();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_mid_stream_and_a_restart_publish_every_event_once_in_order() {
    if !nats_answers() {
        return;
    }
    let tag = uuid::Uuid::new_v4().simple().to_string()[..12].to_string();
    let stream_name = format!("DT_TEST_{tag}");
    let prefix = format!("dttest{tag}");
    let _cleanup = DeleteStream(stream_name.clone());
    let js = async_nats::jetstream::new(async_nats::connect(NATS).await.unwrap());

    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let http = reqwest::Client::new();
    let (child, base, _out) = start(&data, &stream_name, &prefix);
    let mut server = Server(child);
    // 10,000 events, appended while the server publishes; kill -9 in the middle of
    // publishing a batch (a count that is not a multiple of the batch size: more of the log
    // is there).
    let appender = tokio::spawn({
        let (http, base) = (http.clone(), base.clone());
        async move { append_batches(&http, &base, 0, 10).await }
    });
    let until = Instant::now() + Duration::from_secs(60);
    let in_stream = loop {
        if let Ok(mut s) = js.get_stream(&stream_name).await {
            let n = s.info().await.unwrap().state.messages;
            if n >= 1500 && n % BATCH as u64 != 0 {
                break n;
            }
        }
        assert!(Instant::now() < until, "nothing published");
        tokio::time::sleep(Duration::from_millis(1)).await;
    };
    server.0.kill().unwrap();
    server.0.wait().unwrap();
    appender.await.unwrap();

    let (child, base, _out) = start(&data, &stream_name, &prefix);
    let _server = Server(child);
    let before = http
        .get(format!("{base}/v1/events?limit=1"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .map(|t| serde_json::from_str::<Value>(&t).unwrap())
        .unwrap()["head_position"]
        .as_u64()
        .unwrap();
    eprintln!("killed with {in_stream} of {before} events in the stream");
    append_batches(&http, &base, 10, 11).await; // one more batch, live
    let page: Value = http
        .get(format!("{base}/v1/events?limit=1000&from_position=0"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .map(|t| serde_json::from_str(&t).unwrap())
        .unwrap();
    let head = page["head_position"].as_u64().unwrap();
    assert_eq!(head, before + BATCH as u64);

    let mut stream = js.get_stream(&stream_name).await.unwrap();
    let until = Instant::now() + Duration::from_secs(90);
    loop {
        let state = stream.info().await.unwrap().state.clone();
        assert!(
            state.messages <= head,
            "{} messages for {head} events",
            state.messages
        );
        if state.messages == head {
            break;
        }
        assert!(
            Instant::now() < until,
            "{} of {head} published",
            state.messages
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // The log's ids in order, read page by page.
    let mut ids = Vec::new();
    let mut from = 1;
    while from <= head {
        let page: Value = http
            .get(format!("{base}/v1/events?limit=1000&from_position={from}"))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .map(|t| serde_json::from_str(&t).unwrap())
            .unwrap();
        for e in page["events"].as_array().unwrap() {
            ids.push((
                e["id"].as_str().unwrap().to_string(),
                e["stream"].as_str().unwrap().to_string(),
                e["type"].as_str().unwrap().to_string(),
            ));
        }
        from = page["next_position"].as_u64().unwrap();
    }
    assert_eq!(ids.len() as u64, head);
    // Every message, by sequence: its Nats-Msg-Id, subject and body are the log's, in order.
    let state = stream.info().await.unwrap().state.clone();
    assert_eq!(state.first_sequence, 1);
    assert_eq!(state.last_sequence, head, "no sequence was used twice");
    for (i, (id, stream_of, event_type)) in ids.iter().enumerate() {
        let m = stream.get_raw_message(i as u64 + 1).await.unwrap();
        let got = m
            .headers
            .get(async_nats::header::NATS_MESSAGE_ID)
            .map(|v| v.as_str().to_string());
        assert_eq!(
            got.as_deref(),
            Some(id.as_str()),
            "message {}: {:?}",
            i + 1,
            m.headers
        );
        let category = stream_of.split('-').next().unwrap();
        assert_eq!(
            m.subject.as_str(),
            format!("{prefix}.{category}.{event_type}")
        );
        let body: Value = serde_json::from_slice(&m.payload).unwrap();
        assert_eq!(body["id"], id.as_str());
        assert_eq!(body["position"], i as u64 + 1);
    }
}
