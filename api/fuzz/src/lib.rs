//! What the `import_lines` and `append_body` fuzz targets check, as plain functions: the
//! fuzz targets call them with libFuzzer's inputs, and `api/tests/fuzz_seeds.rs` (under
//! `cargo test`) with the committed seed corpus. They panic where an invariant does not hold.
//!
//! Each input runs against a fresh in-memory store with the domain's rules, holding the first
//! [`SEEDED`] events of `replay-tests/logs/v1-small.ndjson` (the org, two leads, two
//! customers, two open deals), so that inputs can continue a real history.

use std::sync::{Arc, OnceLock};

use api::cli::fuzzing::ImportLines;
use api::cli::ExitCode;
use api::http::ownership::LogOwnership;
use api::http::{router, ApiConfig, AppState};
use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use domain::RecordedEvent;
use eventlog::memory::MemoryStore;
use eventlog::rules::DomainRules;
use eventlog::{EventStore, ExpectedVersion, Filter, ProposedEvent};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

/// The recorded log the store starts from.
const LOG: &str = include_str!("../../../replay-tests/logs/v1-small.ndjson");
/// How many of its events the store holds before each input.
pub const SEEDED: usize = 16;
/// The admin token of the fuzzed API (long enough for any minimum length).
const ADMIN: &str = "fuzz-admin-token-0123456789abcdef0123456789";
/// The actor the API records for the admin when an event names none.
const ADMIN_ACTOR: &str = "admin";

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime")
    })
}

/// A fresh store with the domain's rules and the seeded history.
async fn seeded_store() -> Arc<MemoryStore> {
    let store = Arc::new(MemoryStore::with_validator(
        Arc::new(DomainRules::default()),
    ));
    for line in LOG.lines().take(SEEDED) {
        let ev: RecordedEvent = serde_json::from_str(line).expect("a canonical line");
        let proposed = ProposedEvent {
            id: Some(ev.id),
            event_type: ev.event_type.clone(),
            occurred_at: Some(ev.occurred_at),
            actor: Some(ev.actor.clone()),
            data: ev.data.clone(),
            metadata: Some(ev.metadata.clone()),
            recorded_at: Some(ev.recorded_at),
        };
        store
            .append(&ev.stream, ExpectedVersion::Any, vec![proposed])
            .await
            .expect("the recorded log is accepted");
    }
    store
}

/// All events of the log from `from` on.
async fn log_from(store: &dyn EventStore, from: u64) -> Vec<RecordedEvent> {
    let all = Filter::default();
    store
        .read_all(from, usize::MAX, &all)
        .await
        .expect("a memory store reads")
}

/// The `import_lines` target: bytes as an NDJSON file given to `import`. A file the dry run
/// accepts is appended without error (the import never stops half-way on a line the check
/// let through), every line is then in the log as it was written, and importing the file
/// again adds nothing. Refusals are exit code 5 (input refused), never a failure.
pub fn import_lines(ndjson: &[u8]) {
    runtime().block_on(async {
        let store = seeded_store().await;
        let refused = |e: api::cli::CliError| {
            assert_eq!(e.code, ExitCode::Refused, "{}", e.message);
            assert!(!e.message.is_empty());
        };
        let lines = match ImportLines::read(ndjson) {
            Ok(lines) => lines,
            Err(e) => return refused(e),
        };
        let now = chrono::Utc::now();
        if let Err(e) = lines.check(store.as_ref(), now).await {
            return refused(e);
        }
        let before = store.last_position().await.expect("position");
        if let Err(e) = lines.append(store.as_ref()).await {
            panic!(
                "the check accepted the file but the append refused it: {}",
                e.message
            );
        }
        let mut seen = std::collections::HashSet::new();
        for (stream, proposed) in lines.events() {
            let id = proposed.id.expect("import lines have ids");
            let ev = store
                .event_by_id(id)
                .await
                .expect("by id")
                .expect("imported");
            assert_eq!(ev.stream, stream);
            assert_eq!(ev.event_type, proposed.event_type);
            assert_eq!(*ev.data, proposed.data);
            assert_eq!(ev.metadata, proposed.metadata.clone().unwrap_or_default());
            if seen.insert(id) && ev.position > before {
                // Written by this line (not by an earlier line or event with its id, which
                // may name another actor or recording time).
                check_times_and_actor(&ev, &proposed, eventlog::DEFAULT_ACTOR);
                if let Some(t) = proposed.recorded_at {
                    assert_eq!(ev.recorded_at, t);
                }
            }
        }
        let after = store.last_position().await.expect("position");
        let present = lines
            .check(store.as_ref(), now)
            .await
            .map_err(|e| e.message);
        assert_eq!(present, Ok(lines.events().len()), "a second import's check");
        lines
            .append(store.as_ref())
            .await
            .expect("the second import");
        assert_eq!(store.last_position().await.expect("position"), after);
    });
}

fn check_times_and_actor(ev: &RecordedEvent, proposed: &ProposedEvent, default_actor: &str) {
    assert_eq!(
        ev.occurred_at,
        proposed.occurred_at.unwrap_or(ev.recorded_at),
        "occurred_at"
    );
    assert_eq!(ev.actor, proposed.actor.as_deref().unwrap_or(default_actor));
}

/// The API's state without a store; each input gets a fresh store in a copy of it.
fn base_state() -> &'static AppState {
    static STATE: OnceLock<AppState> = OnceLock::new();
    STATE.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("dealtrail-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a data dir");
        let store: Arc<dyn EventStore> = Arc::new(MemoryStore::new());
        let (state, _) =
            AppState::open(store, &dir, ApiConfig::default(), Some(ADMIN)).expect("the API state");
        state
    })
}

/// The `append_body` target: bytes as `<stream>\n<body>` of `POST /v1/streams/{stream}/events`
/// by an admin, through the whole router. Never a 5xx; an error is problem+json naming its
/// own status; an append that answers 201 is in the log exactly as sent, and sending it
/// again (when every event has an id) answers the same positions and writes nothing.
pub fn append_body(input: &[u8]) {
    let (stream, body) = match input.iter().position(|&b| b == b'\n') {
        Some(i) => (&input[..i], &input[i + 1..]),
        None => (&b"deal-D-1001"[..], input),
    };
    let Ok(stream) = std::str::from_utf8(stream) else {
        return;
    };
    runtime().block_on(async {
        let store = seeded_store().await;
        let mut state = base_state().clone();
        state.store = store.clone();
        state.ownership = Arc::new(LogOwnership::new(store.clone()));
        let app = router(state);
        let post = || {
            Request::builder()
                .method(Method::POST)
                .uri(format!("/v1/streams/{stream}/events"))
                .header(header::AUTHORIZATION, format!("Bearer {ADMIN}"))
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(body.to_vec()))
        };
        // Not a request a client can send (the stream is no URI path segment).
        let Ok(request) = post() else { return };
        let before = store.last_position().await.expect("position");
        let (status, answer) = send(&app, request).await;
        if status != StatusCode::CREATED {
            assert_eq!(store.last_position().await.expect("position"), before);
            return;
        }
        let first = answer["first_position"].as_u64().expect("first_position");
        let last = answer["last_position"].as_u64().expect("last_position");
        let sent: Value = serde_json::from_slice(body).expect("an accepted body is JSON");
        let sent = sent["events"]
            .as_array()
            .expect("an accepted body has events");
        let written = log_from(store.as_ref(), first).await;
        assert_eq!(written.len(), sent.len(), "events written");
        assert_eq!(last, first + sent.len() as u64 - 1);
        for (ev, sent) in written.iter().zip(sent) {
            let proposed: ProposedEvent =
                serde_json::from_value(sent.clone()).expect("an accepted event");
            // The router percent-decodes the path: compare only names that need no decoding.
            if !stream.contains('%') {
                assert_eq!(ev.stream, stream);
            }
            assert_eq!(ev.stream, written[0].stream);
            assert_eq!(ev.event_type, proposed.event_type);
            assert_eq!(*ev.data, proposed.data);
            assert_eq!(ev.metadata, proposed.metadata.clone().unwrap_or_default());
            if let Some(id) = proposed.id {
                assert_eq!(ev.id, id);
            }
            check_times_and_actor(ev, &proposed, ADMIN_ACTOR);
        }
        if sent.iter().all(|e| e.get("id").is_some()) {
            let again = post().expect("the same request");
            let (status, answer_again) = send(&app, again).await;
            assert_eq!(
                status,
                StatusCode::CREATED,
                "sending it again: {answer_again}"
            );
            assert_eq!(answer_again, answer);
            assert_eq!(store.last_position().await.expect("position"), last);
        }
    });
}

/// Sends `request`; returns the status and the JSON body, after checking that it is not a
/// 5xx and that an error is a problem document naming its status.
async fn send(app: &axum::Router, request: Request<Body>) -> (StatusCode, Value) {
    let response = app.clone().oneshot(request).await.expect("infallible");
    let status = response.status();
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("a body")
        .to_bytes();
    let text = String::from_utf8_lossy(&bytes);
    assert!(!status.is_server_error(), "{status}: {text}");
    let body: Value = serde_json::from_slice(&bytes)
        .unwrap_or_else(|e| panic!("{status}: the body is not JSON ({e}): {text}"));
    if !status.is_success() {
        assert_eq!(content_type, "application/problem+json", "{status}: {text}");
        assert_eq!(
            body["status"].as_u64(),
            Some(u64::from(status.as_u16())),
            "{text}"
        );
    }
    (status, body)
}

/// The stream and request body of an append of one recorded event (for seeds).
pub fn append_seed(ev: &RecordedEvent, expected: Option<u64>) -> Vec<u8> {
    let mut event = serde_json::json!({
        "id": ev.id,
        "type": ev.event_type,
        "occurred_at": domain::envelope::format_time(&ev.occurred_at),
        "actor": ev.actor,
        "data": ev.data,
    });
    if !ev.metadata.is_empty() {
        event["metadata"] = serde_json::to_value(&ev.metadata).expect("metadata");
    }
    let mut body = serde_json::json!({ "events": [event] });
    if let Some(v) = expected {
        body["expected_version"] = v.into();
    }
    let mut out = format!("{}\n", ev.stream).into_bytes();
    out.extend_from_slice(body.to_string().as_bytes());
    out
}

/// The recorded log's events (for seeds).
pub fn recorded_log() -> Vec<RecordedEvent> {
    LOG.lines()
        .map(|l| serde_json::from_str(l).expect("a canonical line"))
        .collect()
}
