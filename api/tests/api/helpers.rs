//! Test harness: a fresh temp data dir and `MemoryStore` with the domain's rules
//! (`DomainRules`) per test, a minimal organisation to seed, tokens per role, request
//! helpers for the router, an SSE reader, and `spawn_app` for a real server on port 0.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use api::http::{router, serve, ApiConfig, AppState};
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Method, Request, StatusCode};
use axum::Router;
use eventlog::memory::MemoryStore;
use eventlog::rules::DomainRules;
use eventlog::{
    AppendOutcome, EventStore, ExpectedVersion, Filter, MultiAppendError, ProposedEvent,
    RecordedEvent, StoreError, StreamBatch,
};
use futures::stream::BoxStream;
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

pub const ADMIN: &str = "test-admin-token-0123456789abcdef";
/// Bounded wait for anything asynchronous a test expects.
pub const WAIT: Duration = Duration::from_secs(10);
/// When the organisation of [`TestApp::seed_org`] was set up (business time).
pub const ORG_SINCE: &str = "2026-01-01T00:00:00Z";

/// What a test store changes about a [`MemoryStore`]; [`Hooked`] delegates the rest.
#[async_trait::async_trait]
pub trait Hooks: Send + Sync + 'static {
    fn inner(&self) -> &MemoryStore;

    /// Runs before each single-stream append.
    async fn before_append(&self) {}

    fn subscribe(
        &self,
        from: u64,
        filter: Filter,
    ) -> BoxStream<'static, Result<RecordedEvent, StoreError>> {
        self.inner().subscribe(from, filter)
    }
}

/// A store made of a [`MemoryStore`] and some [`Hooks`].
pub struct Hooked<H>(pub H);

#[async_trait::async_trait]
impl<H: Hooks> EventStore for Hooked<H> {
    async fn append(
        &self,
        stream: &str,
        expected: ExpectedVersion,
        events: Vec<ProposedEvent>,
    ) -> Result<AppendOutcome, StoreError> {
        self.0.before_append().await;
        self.0.inner().append(stream, expected, events).await
    }
    async fn append_multi(
        &self,
        batches: Vec<StreamBatch>,
    ) -> Result<Vec<AppendOutcome>, MultiAppendError> {
        self.0.inner().append_multi(batches).await
    }
    async fn event_by_id(&self, id: uuid::Uuid) -> Result<Option<RecordedEvent>, StoreError> {
        self.0.inner().event_by_id(id).await
    }
    async fn read_stream(
        &self,
        stream: &str,
        from: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.0.inner().read_stream(stream, from, limit).await
    }
    async fn read_all(
        &self,
        from: u64,
        limit: usize,
        filter: &Filter,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.0.inner().read_all(from, limit, filter).await
    }
    async fn last_position(&self) -> Result<u64, StoreError> {
        self.0.inner().last_position().await
    }
    async fn stream_version(&self, stream: &str) -> Result<Option<u64>, StoreError> {
        self.0.inner().stream_version(stream).await
    }
    fn subscribe(
        &self,
        from: u64,
        filter: Filter,
    ) -> BoxStream<'static, Result<RecordedEvent, StoreError>> {
        self.0.subscribe(from, filter)
    }
}

/// A fresh [`MemoryStore`] that checks every append with the domain's rules.
pub fn rules_store() -> MemoryStore {
    MemoryStore::with_validator(Arc::new(DomainRules::default()))
}

pub struct TestApp {
    pub state: AppState,
    pub dir: tempfile::TempDir,
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    pub fn content_type(&self) -> &str {
        self.headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    /// Asserts a problem+json answer with `status` and a detail; returns the body.
    pub fn problem(&self, status: u16) -> Value {
        assert_eq!(
            self.status.as_u16(),
            status,
            "body: {}",
            String::from_utf8_lossy(&self.body)
        );
        assert_eq!(self.content_type(), "application/problem+json");
        let p = self.json();
        assert_eq!(p["status"], status);
        assert!(p["type"]
            .as_str()
            .unwrap()
            .starts_with("urn:dealtrail:problem:"));
        assert!(!p["title"].as_str().unwrap().is_empty());
        assert!(!p["detail"].as_str().unwrap().is_empty(), "{p}");
        p
    }
}

pub fn test_config() -> ApiConfig {
    ApiConfig {
        heartbeat: Duration::from_millis(100),
        ..ApiConfig::default()
    }
}

impl TestApp {
    pub fn new() -> TestApp {
        let store = Arc::new(rules_store());
        TestApp::with_store(store, tempfile::tempdir().unwrap())
    }

    /// An app whose store seals personal data (SPEC §7) with keys in memory, and the store
    /// behind it (its events as stored: sealed).
    pub fn sealed() -> (TestApp, Arc<MemoryStore>) {
        let inner = Arc::new(rules_store());
        let keys = Arc::new(eventlog::personal::MemoryKeys::new());
        let store = Arc::new(eventlog::Sealed::new(inner.clone(), keys));
        let dir = tempfile::tempdir().unwrap();
        let (state, _) = AppState::open(store, dir.path(), test_config(), Some(ADMIN)).unwrap();
        (TestApp { state, dir }, inner)
    }

    pub fn with_store(store: Arc<MemoryStore>, dir: tempfile::TempDir) -> TestApp {
        TestApp::with_config(store, dir, test_config())
    }

    pub fn with_config(
        store: Arc<MemoryStore>,
        dir: tempfile::TempDir,
        config: ApiConfig,
    ) -> TestApp {
        let (state, boot) = AppState::open(store, dir.path(), config, Some(ADMIN)).unwrap();
        assert!(boot.generated_admin_token.is_none());
        TestApp { state, dir }
    }

    pub fn router(&self) -> Router {
        router(self.state.clone())
    }

    pub fn token(&self, role: &str, subject: &str) -> String {
        let role = serde_json::from_value(Value::String(role.into())).unwrap();
        self.state.tokens.issue(role, subject).unwrap()
    }

    pub async fn call(&self, req: Request<Body>) -> Reply {
        let res = self.router().oneshot(req).await.unwrap();
        let (parts, body) = res.into_parts();
        let body = tokio::time::timeout(WAIT, body.collect())
            .await
            .expect("body in time")
            .unwrap()
            .to_bytes();
        Reply {
            status: parts.status,
            headers: parts.headers,
            body,
        }
    }

    pub async fn get(&self, path: &str, token: &str) -> Reply {
        self.call(request(Method::GET, path, Some(token), None))
            .await
    }

    pub async fn post(&self, path: &str, token: &str, body: &str) -> Reply {
        self.call(request(
            Method::POST,
            path,
            Some(token),
            Some(body.to_string()),
        ))
        .await
    }

    pub async fn append(&self, stream: &str, token: &str, body: Value) -> Reply {
        self.post(
            &format!("/v1/streams/{stream}/events"),
            token,
            &body.to_string(),
        )
        .await
    }

    /// Brings the read model up to the log (reports read it).
    pub async fn refresh(&self) {
        self.state
            .projector
            .refresh(self.state.store.as_ref())
            .await
            .unwrap();
    }

    /// Appends a minimal organisation to `org-acme` in one batch: the default pipeline
    /// (SPEC §1.2: qualified, presentation, quote, negotiation, contract) defined and `reps`
    /// joined (team `east`), so that events naming those reps and stages pass the domain's
    /// rules. Its business time is [`ORG_SINCE`], before any date the tests report on.
    /// Returns the log's last position after it (`reps.len() + 1` on an empty log).
    pub async fn seed_org(&self, reps: &[&str]) -> u64 {
        let mut events = vec![serde_json::json!({"type": "PipelineDefined",
            "occurred_at": ORG_SINCE, "data": {"stages": [
            {"id": "qualified", "name": "Qualified", "probability": 0.1},
            {"id": "presentation", "name": "Presentation", "probability": 0.25},
            {"id": "quote", "name": "Quote", "probability": 0.5},
            {"id": "negotiation", "name": "Negotiation", "probability": 0.7},
            {"id": "contract", "name": "Contract", "probability": 0.9}]}})];
        for rep in reps {
            events.push(
                serde_json::json!({"type": "RepJoined", "occurred_at": ORG_SINCE,
                "data": {"rep": rep, "name": rep, "team": "east"}}),
            );
        }
        self.seed("org-acme", Value::Array(events)).await["last_position"]
            .as_u64()
            .unwrap()
    }

    /// Registers `customer-{customer}` (owned by `owner`, who must have joined): a deal of
    /// `owner` may then be opened on it (registered at [`ORG_SINCE`]). Returns the log's last
    /// position after it.
    pub async fn seed_customer(&self, customer: &str, owner: &str) -> u64 {
        let registered = serde_json::json!([{"type": "CustomerRegistered",
            "occurred_at": ORG_SINCE, "data": {"name": format!("Customer {customer}"), "owner": owner}}]);
        self.seed(&format!("customer-{customer}"), registered).await["last_position"]
            .as_u64()
            .unwrap()
    }

    /// Appends as admin and insists on success.
    pub async fn seed(&self, stream: &str, events: Value) -> Value {
        let r = self
            .append(stream, ADMIN, serde_json::json!({ "events": events }))
            .await;
        assert_eq!(
            r.status,
            StatusCode::CREATED,
            "{}",
            String::from_utf8_lossy(&r.body)
        );
        r.json()
    }
}

pub fn request(
    method: Method,
    path: &str,
    token: Option<&str>,
    json: Option<String>,
) -> Request<Body> {
    let mut b = Request::builder().method(method).uri(path);
    if let Some(t) = token {
        b = b.header("authorization", format!("Bearer {t}"));
    }
    match json {
        Some(j) => b
            .header("content-type", "application/json")
            .body(Body::from(j))
            .unwrap(),
        None => b.body(Body::empty()).unwrap(),
    }
}

/// One Server-Sent Event.
#[derive(Debug, Clone, Default)]
pub struct Sse {
    pub id: Option<String>,
    pub event: Option<String>,
    pub data: String,
    pub comment: Option<String>,
}

/// Reads SSE blocks from any HTTP body, with a bounded wait for each.
pub struct SseReader<B> {
    body: B,
    buf: String,
}

impl<B> SseReader<B>
where
    B: http_body::Body<Data = Bytes> + Unpin,
    B::Error: std::fmt::Debug,
{
    pub fn new(body: B) -> Self {
        SseReader {
            body,
            buf: String::new(),
        }
    }

    /// The next block (event or comment); panics after `WAIT`.
    pub async fn next_block(&mut self) -> Sse {
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..end + 2).collect();
                let mut sse = Sse::default();
                for line in block.lines().filter(|l| !l.is_empty()) {
                    let (field, value) = line.split_once(':').unwrap_or((line, ""));
                    let value = value.strip_prefix(' ').unwrap_or(value).to_string();
                    match field {
                        "" => sse.comment = Some(value),
                        "id" => sse.id = Some(value),
                        "event" => sse.event = Some(value),
                        "data" => sse.data.push_str(&value),
                        _ => {}
                    }
                }
                return sse;
            }
            let frame = tokio::time::timeout(WAIT, self.body.frame())
                .await
                .expect("an SSE frame in time")
                .expect("the stream is still open")
                .unwrap();
            if let Ok(data) = frame.into_data() {
                self.buf.push_str(std::str::from_utf8(&data).unwrap());
            }
        }
    }

    /// Whether the body ends (after any heartbeats) with nothing else in it; panics after `WAIT`.
    pub async fn ends(&mut self) -> bool {
        loop {
            if !self.buf.is_empty() {
                let b = self.next_block().await;
                if b.comment.as_deref() != Some("heartbeat") {
                    return false;
                }
                continue;
            }
            let frame = tokio::time::timeout(WAIT, self.body.frame())
                .await
                .expect("the end or a frame in time");
            match frame {
                None => return true,
                Some(f) => {
                    if let Ok(data) = f.unwrap().into_data() {
                        self.buf.push_str(std::str::from_utf8(&data).unwrap());
                    }
                }
            }
        }
    }

    /// The next event, skipping heartbeat comments.
    pub async fn next_event(&mut self) -> Sse {
        loop {
            let b = self.next_block().await;
            if b.comment.is_none() {
                return b;
            }
        }
    }
}

/// A server on 127.0.0.1:0 over `store` and `dir`; stop it with `shutdown`.
pub struct Running {
    pub addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

pub async fn spawn_app(store: Arc<dyn EventStore>, dir: &std::path::Path) -> Running {
    let (state, _) = AppState::open(store, dir, test_config(), Some(ADMIN)).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(serve(listener, state, async move {
        let _ = stopped.await;
    }));
    Running {
        addr,
        stop: Some(stop),
        task,
    }
}

impl Running {
    /// Stops the server and waits until it has finished.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        tokio::time::timeout(WAIT, self.task)
            .await
            .expect("server stops in time")
            .unwrap()
            .unwrap();
    }

    /// Sends one request over a fresh HTTP/1.1 connection.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        json: Option<String>,
        extra: &[(&str, &str)],
    ) -> hyper::Response<hyper::body::Incoming> {
        send(self.addr, method, path, token, json, extra).await
    }

    /// `send` and collect the body as JSON.
    pub async fn send_json(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        json: Option<String>,
    ) -> (StatusCode, Value) {
        let res = self.send(method, path, token, json, &[]).await;
        let status = res.status();
        let body = res.into_body().collect().await.unwrap().to_bytes();
        (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
    }
}

/// Sends one request to `addr` over a fresh HTTP/1.1 connection.
pub async fn send(
    addr: SocketAddr,
    method: Method,
    path: &str,
    token: Option<&str>,
    json: Option<String>,
    extra: &[(&str, &str)],
) -> hyper::Response<hyper::body::Incoming> {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(conn);
    let mut b = hyper::Request::builder()
        .method(method)
        .uri(path)
        .header("host", addr.to_string());
    if let Some(t) = token {
        b = b.header("authorization", format!("Bearer {t}"));
    }
    for (k, v) in extra {
        b = b.header(*k, *v);
    }
    let body = match json {
        Some(j) => {
            b = b.header("content-type", "application/json");
            http_body_util::Full::new(Bytes::from(j))
        }
        None => http_body_util::Full::new(Bytes::new()),
    };
    tokio::time::timeout(WAIT, sender.send_request(b.body(body).unwrap()))
        .await
        .expect("response in time")
        .unwrap()
}
