//! The accept loop behind [`super::serve`]: HTTP/1.1 connections served by hyper, with live
//! subscriptions kept off the threads that answer appends.
//!
//! A connection whose first request is `GET /v1/subscribe` is served by the subscription
//! runtime: one worker thread of its own, at a lower CPU priority (on Linux,
//! [`ApiConfig::subscriber_nice`](super::ApiConfig::subscriber_nice) nice steps below the
//! rest, 10 by default). Why: sending the live stream is, after appending itself, the
//! server's largest steady cost (every event goes to every subscriber), and it comes in
//! bursts. On the shared runtime the appends' responses queued behind those writes: on the
//! load test, a hundred subscribers cut the single-event append rate by about a quarter and
//! more than doubled its p99 latency. On their own thread the kernel interleaves the two, and at a
//! lower priority the subscriptions take the CPU that appends leave, so that when the
//! machine is saturated the live stream lags a little rather than slowing acknowledged
//! writes (with the feed's turns, see `fanout`, less again; the load bench prints the
//! figures with and without subscribers). Every event is still
//! delivered; a subscriber that falls behind the feed's window reads from the store until it
//! is back.
//!
//! The first request is recognised by peeking at the connection's first bytes (nothing is
//! consumed; hyper then reads the request as usual). Any other connection, and a
//! subscription on a connection that served something else first, stays on the main runtime.
//!
//! Shutdown: stop accepting, ask every connection to finish (the request in flight is
//! answered, keep-alive ends; subscriptions end by themselves when the server's shutdown flag
//! flips), wait for all of them, then stop the subscription runtime.

use std::convert::Infallible;
use std::future::Future;
use std::pin::pin;
use std::time::Duration;

use axum::extract::Request;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::sync::watch;
use tower::ServiceExt;

use super::connections::{ConnectionLimits, Connections, Registered, Tracked, Watched};

/// The start of a subscription's request line; the byte after it must end the path.
const SUBSCRIBE: &[u8] = b"GET /v1/subscribe";

/// How long the first bytes of a request line may take to arrive in pieces before the
/// connection is served on the main runtime regardless.
const PEEK_PATIENCE: Duration = Duration::from_millis(100);

/// Serves `app` on `listener` until `shutdown` resolves, then finishes as described above;
/// subscriptions run `subscriber_nice` nice steps below the rest; `limits` cap the
/// connections and bound how long they may wait (see `connections`).
pub(crate) async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    subscriber_nice: i32,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let subscriptions = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("dealtrail-subscriptions")
        .on_thread_start(move || lower_priority(subscriber_nice))
        .enable_all()
        .build()?;
    let connections = Connections::new(limits);
    // Connections watch `stop` to begin their graceful shutdown; each holds a clone of
    // `open`, so that `open_tx.closed()` resolves when the last one has ended.
    let (stop_tx, stop) = watch::channel(false);
    let (open_tx, open) = watch::channel(());
    let mut shutdown = pin!(shutdown);
    let mut failing = AcceptFailures::default();
    loop {
        // Room first: beyond the cap, new connections wait in the kernel's queue.
        let permit = tokio::select! {
            permit = connections.room() => permit,
            () = &mut shutdown => break,
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    failing.recovered();
                    stream
                }
                Err(e) => {
                    // E.g. out of file descriptors: free one if a connection is only waiting,
                    // and wait a little longer each time rather than spin.
                    if is_out_of_files(&e) {
                        connections.evict_longest_waiting();
                    }
                    tokio::time::sleep(failing.failed(&e)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // Small writes (a response, an SSE heartbeat) go out at once.
        let _ = stream.set_nodelay(true);
        let registered = connections.register(permit);
        let (app, mut stop, open) = (app.clone(), stop.clone(), open.clone());
        let limits = connections.limits.clone();
        let subscriptions = subscriptions.handle().clone();
        tokio::spawn(async move {
            let first_bytes = tokio::time::timeout(
                limits.keep_alive_timeout,
                first_request_is_subscription(&stream),
            );
            let subscription = tokio::select! {
                s = first_bytes => match s {
                    Ok(s) => s,
                    // Nothing sent for the keep-alive timeout: close.
                    Err(_) => return,
                },
                // Nothing requested yet: just close.
                _ = stop.wait_for(|s| *s) => return,
                () = registered.connection.evicted() => return,
            };
            if !subscription {
                return connection(stream, app, registered, limits, stop, open).await;
            }
            // A tokio socket belongs to the runtime that registered it: hand over the OS
            // socket and register it again there.
            match stream.into_std() {
                Ok(socket) => {
                    subscriptions.spawn(async move {
                        match TcpStream::from_std(socket) {
                            Ok(stream) => {
                                connection(stream, app, registered, limits, stop, open).await
                            }
                            Err(e) => tracing::warn!(error = %e, "moving a subscription failed"),
                        }
                    });
                }
                Err(e) => tracing::warn!(error = %e, "moving a subscription failed"),
            }
        });
    }
    drop(listener);
    drop((stop, open));
    let _ = stop_tx.send(true);
    open_tx.closed().await;
    // Every connection has ended; what may remain there (the feed's task) ends with the
    // shutdown flag. A runtime cannot be dropped inside another one's task.
    subscriptions.shutdown_background();
    Ok(())
}

/// Whether accepting failed for want of file descriptors (the process's or the system's).
fn is_out_of_files(e: &std::io::Error) -> bool {
    // EMFILE, ENFILE.
    matches!(e.raw_os_error(), Some(24 | 23))
}

/// Accept failures: how long to wait before the next try, and when to log.
#[derive(Default)]
struct AcceptFailures {
    /// Failures since the last accepted connection.
    in_a_row: u32,
    /// Failures since the last warning, and when that was.
    unreported: u64,
    warned_at: Option<tokio::time::Instant>,
}

/// At most one warning about failing accepts in this time (they may come in the thousands).
const ACCEPT_WARNING_EVERY: Duration = Duration::from_secs(10);

impl AcceptFailures {
    /// The wait after another failure: 2 ms, doubling up to one second.
    fn failed(&mut self, e: &std::io::Error) -> Duration {
        self.unreported += 1;
        let now = tokio::time::Instant::now();
        if self
            .warned_at
            .is_none_or(|at| now >= at + ACCEPT_WARNING_EVERY)
        {
            tracing::warn!(error = %e, failures = self.unreported,
                "accepting connections fails; retrying with back-off");
            self.warned_at = Some(now);
            self.unreported = 0;
        }
        self.in_a_row = self.in_a_row.saturating_add(1);
        Duration::from_millis(1u64 << self.in_a_row.min(10)).min(Duration::from_secs(1))
    }

    fn recovered(&mut self) {
        self.in_a_row = 0;
    }
}

/// Serves one connection until it closes, times out or is evicted, or finishes it gracefully
/// once `stop` flips.
async fn connection(
    stream: TcpStream,
    app: Router,
    registered: Registered,
    limits: ConnectionLimits,
    mut stop: watch::Receiver<bool>,
    _open: watch::Receiver<()>,
) {
    let this = registered.connection.clone();
    let service = hyper::service::service_fn(move |req: Request<Incoming>| {
        let in_progress = this.begin_request();
        let call = app.clone().oneshot(req);
        async move {
            let res = call.await?;
            Ok::<_, Infallible>(res.map(|body| Tracked {
                body,
                _in_progress: in_progress,
            }))
        }
    });
    let io = Watched::new(stream, registered.connection.clone(), limits);
    let mut conn = pin!(hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(io), service)
        .with_upgrades());
    let mut stopping = false;
    loop {
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
                return;
            }
            _ = stop.wait_for(|s| *s), if !stopping => {
                stopping = true;
                conn.as_mut().graceful_shutdown();
            }
            // Closed to make room for a new connection (only while waiting for a request).
            () = registered.connection.evicted() => return,
        }
    }
}

/// Whether the connection's first bytes are a subscription's request line (`GET
/// /v1/subscribe` then `?`, a space or `/`). Looks without consuming; `false` as soon as the
/// bytes differ, at the end of the stream, or if they keep arriving in pieces.
async fn first_request_is_subscription(stream: &TcpStream) -> bool {
    let mut buf = [0u8; SUBSCRIBE.len() + 1];
    let deadline = tokio::time::Instant::now() + PEEK_PATIENCE;
    loop {
        let n = match stream.peek(&mut buf).await {
            Ok(0) | Err(_) => return false,
            Ok(n) => n,
        };
        let seen = &buf[..n.min(SUBSCRIBE.len())];
        if !SUBSCRIBE.starts_with(seen) {
            return false;
        }
        if n == buf.len() {
            return matches!(buf[SUBSCRIBE.len()], b'?' | b' ' | b'/');
        }
        // A prefix so far: the rest is on its way (`peek` would return at once again).
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Lowers the calling thread's CPU priority by `by` nice steps (Linux: each thread has its
/// own nice value; 19 is the lowest priority). Relative, as `nice(1)` is, so that it lowers
/// the priority whatever the server was started with. Failing is not fatal: subscriptions
/// then run at the same priority as the rest.
pub(crate) fn lower_priority(by: i32) {
    if by <= 0 {
        return;
    }
    #[cfg(target_os = "linux")]
    {
        use rustix::process::{getpriority_process, setpriority_process};
        let tid = Some(rustix::thread::gettid());
        let lowered =
            getpriority_process(tid).and_then(|now| setpriority_process(tid, (now + by).min(19)));
        if let Err(e) = lowered {
            tracing::warn!(error = %e, "could not lower the subscription thread's priority");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    /// What `first_request_is_subscription` decides for a client that sends `parts` with
    /// `pause` between them.
    async fn decide(parts: &[&[u8]], pause: Duration) -> bool {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let parts: Vec<Vec<u8>> = parts.iter().map(|p| p.to_vec()).collect();
        let client = tokio::spawn(async move {
            let mut c = TcpStream::connect(addr).await.unwrap();
            for p in parts {
                c.write_all(&p).await.unwrap();
                tokio::time::sleep(pause).await;
            }
            // Keep the connection open until the server has decided.
            tokio::time::sleep(Duration::from_millis(300)).await;
        });
        let (server, _) = listener.accept().await.unwrap();
        let decided = first_request_is_subscription(&server).await;
        // Nothing was consumed: the whole request is still there to read.
        let mut buf = [0u8; 64];
        let n = server.peek(&mut buf).await.unwrap();
        assert!(n > 0);
        client.abort();
        decided
    }

    /// The whole response to `request`, sent on a new connection to `addr`.
    async fn exchange(addr: std::net::SocketAddr, request: &str) -> String {
        use tokio::io::AsyncReadExt;
        let mut c = TcpStream::connect(addr).await.unwrap();
        c.write_all(request.as_bytes()).await.unwrap();
        let mut out = String::new();
        c.read_to_string(&mut out).await.unwrap();
        out
    }

    #[tokio::test]
    async fn subscriptions_are_served_on_their_own_thread_and_the_rest_on_the_callers() {
        use axum::routing::get;
        let thread = || async { std::thread::current().name().unwrap_or("").to_string() };
        let app = Router::new()
            .route("/v1/subscribe", get(thread))
            .route("/v1/events", get(thread));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let limits = ConnectionLimits::default();
        let server = tokio::spawn(serve(listener, app, 3, limits, async {
            let _ = stopped.await;
        }));
        let close = "HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n";
        let sub = exchange(addr, &format!("GET /v1/subscribe?types=A {close}")).await;
        assert!(sub.ends_with("\r\n\r\ndealtrail-subscriptions"), "{sub}");
        let other = exchange(addr, &format!("GET /v1/events {close}")).await;
        assert!(other.starts_with("HTTP/1.1 200"), "{other}");
        assert!(!other.contains("dealtrail-subscriptions"), "{other}");
        // Shutdown ends the loop once every connection has closed.
        stop.send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(5), server)
            .await
            .expect("serve returned")
            .unwrap()
            .unwrap();
    }

    /// Serves `app` with `limits` on a port of its own until the test ends.
    async fn serving(app: Router, limits: ConnectionLimits) -> std::net::SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(serve(listener, app, 0, limits, std::future::pending()));
        addr
    }

    #[tokio::test]
    async fn a_client_that_stops_reading_a_response_is_closed_after_the_keep_alive_timeout() {
        use axum::body::{Body, Bytes};
        use axum::routing::get;
        use tokio::io::AsyncReadExt;
        let endless = || async {
            let chunk = Bytes::from(vec![b'x'; 64 * 1024]);
            Body::from_stream(futures::stream::repeat_with(move || {
                Ok::<_, Infallible>(chunk.clone())
            }))
        };
        let app = Router::new().route("/endless", get(endless));
        let limits = ConnectionLimits {
            keep_alive_timeout: Duration::from_secs(1),
            ..ConnectionLimits::default()
        };
        let mut c = TcpStream::connect(serving(app, limits).await)
            .await
            .unwrap();
        c.write_all(b"GET /endless HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .unwrap();
        // Read nothing for longer than the timeout: the socket's buffers fill up and the
        // server's writes stop.
        tokio::time::sleep(Duration::from_secs(3)).await;
        let mut sink = Vec::new();
        let ended = tokio::time::timeout(Duration::from_secs(10), c.read_to_end(&mut sink)).await;
        assert!(ended.is_ok(), "the endless response was cut off");
    }

    #[tokio::test]
    async fn a_request_slower_than_the_header_timeout_leaves_its_connection_usable() {
        use axum::routing::get;
        use tokio::io::AsyncReadExt;
        let slow = || async {
            tokio::time::sleep(Duration::from_millis(2500)).await;
            "slow"
        };
        let app = Router::new()
            .route("/slow", get(slow))
            .route("/fast", get(|| async { "fast" }));
        let limits = ConnectionLimits {
            header_read_timeout: Duration::from_secs(1),
            ..ConnectionLimits::default()
        };
        let mut c = TcpStream::connect(serving(app, limits).await)
            .await
            .unwrap();
        let mut seen = Vec::new();
        for (path, body) in [("/slow", "slow"), ("/fast", "fast")] {
            let req = format!("GET {path} HTTP/1.1\r\nhost: x\r\n\r\n");
            c.write_all(req.as_bytes()).await.unwrap();
            seen.clear();
            let mut buf = [0u8; 1024];
            while !seen.ends_with(body.as_bytes()) {
                let n = tokio::time::timeout(Duration::from_secs(10), c.read(&mut buf))
                    .await
                    .expect("a response in time")
                    .unwrap();
                assert!(n > 0, "closed before answering {path}");
                seen.extend_from_slice(&buf[..n]);
            }
            assert!(seen.starts_with(b"HTTP/1.1 200"));
        }
    }

    /// The calling thread's nice value, from `/proc`.
    #[cfg(target_os = "linux")]
    fn own_nice() -> i32 {
        let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap();
        // Fields after the command name (in parentheses); nice is the 19th field.
        let after = stat.rsplit_once(')').unwrap().1;
        after.split_whitespace().nth(16).unwrap().parse().unwrap()
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn the_subscription_threads_priority_is_lowered_relative_to_the_rest() {
        let before = own_nice();
        let (base, lowered) = std::thread::spawn(|| {
            let base = own_nice();
            lower_priority(7);
            (base, own_nice())
        })
        .join()
        .unwrap();
        assert_eq!(lowered, (base + 7).min(19));
        // Only that thread.
        assert_eq!(own_nice(), before);
    }

    #[tokio::test]
    async fn subscriptions_are_told_from_other_requests_by_their_first_bytes() {
        let fast = Duration::ZERO;
        assert!(decide(&[b"GET /v1/subscribe?types=A HTTP/1.1\r\n\r\n"], fast).await);
        assert!(decide(&[b"GET /v1/subscribe HTTP/1.1\r\n\r\n"], fast).await);
        // In pieces, as a slow client sends it.
        let slow = Duration::from_millis(10);
        assert!(decide(&[b"GE", b"T /v1/sub", b"scribe?x=1 HTTP/1.1\r\n\r\n"], slow).await);
        assert!(!decide(&[b"POST /v1/streams/deal-D1/events HTTP/1.1\r\n\r\n"], fast).await);
        assert!(!decide(&[b"GET /v1/subscribers HTTP/1.1\r\n\r\n"], fast).await);
        assert!(!decide(&[b"GET /v1/events HTTP/1.1\r\n\r\n"], fast).await);
        // A prefix that stops arriving: decided "no" after the patience, not never.
        assert!(!decide(&[b"GET /v1/sub"], fast).await);
    }
}
