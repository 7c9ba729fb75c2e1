//! Limits on connections, so that idle or stalled clients cannot hold the server's sockets
//! (and with them its open files) forever and lock everyone else out.
//!
//! A connection is *waiting* while no request of it is in progress: before its first request,
//! and on a kept-alive connection between two. A request is in progress from the moment its
//! head has been read until its response has been sent in full; a live subscription is one
//! long request, so nothing here ever closes a subscription that is streaming.
//!
//! - **Keep-alive timeout**: a waiting connection that sends nothing for
//!   [`ConnectionLimits::keep_alive_timeout`] is closed.
//! - **Header-read timeout**: once the first byte of a request has arrived, its whole head
//!   (request line and headers) must follow within [`ConnectionLimits::header_read_timeout`];
//!   a half-sent head is closed then.
//! - **Stalled reader**: a response of which the client accepts no byte for the keep-alive
//!   timeout is abandoned and the connection closed (a client that stopped reading).
//! - **Cap**: at most [`ConnectionLimits::max_connections`] connections are open. When the cap
//!   is reached, the connection that has been waiting longest is closed to make room; a
//!   connection with a request in progress never is. If every connection is busy, new ones
//!   are not accepted: they wait in the kernel's listen queue until one ends, so a normal
//!   client is delayed rather than refused, and one that arrives while idle sockets hold the
//!   server is served at once.
//!
//! Why not hyper's own `header_read_timeout`: its clock starts when hyper begins waiting for a
//! request, so it also bounds the idle time between kept-alive requests; a keep-alive longer
//! than the limit on a half-sent head is then impossible. Here the two are separate, as in
//! Go's `ReadHeaderTimeout`/`IdleTimeout`. The timeouts are enforced by `Watched`, the socket
//! as hyper sees it; requests in progress are counted by `Connection::begin_request`.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::body::{Body as HttpBody, Frame, SizeHint};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};

/// How many connections may be open and how long they may wait (see the module doc).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Most connections open at once, subscriptions included.
    pub max_connections: usize,
    /// Time from a request's first byte to the end of its head.
    pub header_read_timeout: Duration,
    /// Time a connection may stay silent while no request of it is in progress; also the time
    /// a client may accept no byte of a response.
    pub keep_alive_timeout: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            max_connections: 4096,
            header_read_timeout: Duration::from_secs(10),
            keep_alive_timeout: Duration::from_secs(60),
        }
    }
}

/// Every open connection, and the permits that cap their number.
pub(crate) struct Connections {
    pub(crate) limits: ConnectionLimits,
    permits: Arc<Semaphore>,
    open: Mutex<HashMap<u64, Arc<Connection>>>,
    next_id: AtomicU64,
    epoch: Instant,
}

/// One open connection as the cap and the timeouts see it.
pub(crate) struct Connection {
    /// Requests of this connection in progress (0 = waiting).
    in_flight: AtomicUsize,
    /// Requests begun so far: a wait belongs to the requests before it.
    begun: AtomicU64,
    /// When it began waiting, in milliseconds since `Connections::epoch`.
    waiting_since: AtomicU64,
    /// Asked to close to make room (cleared again if it turned out busy).
    evicting: AtomicBool,
    evict: Notify,
    epoch: Instant,
}

/// A registered connection: its slot in `Connections` and its permit, both given back on
/// drop.
pub(crate) struct Registered {
    pub(crate) connection: Arc<Connection>,
    id: u64,
    registry: Arc<Connections>,
    _permit: OwnedSemaphorePermit,
}

impl Connections {
    pub(crate) fn new(limits: ConnectionLimits) -> Arc<Connections> {
        Arc::new(Connections {
            permits: Arc::new(Semaphore::new(limits.max_connections.max(1))),
            limits,
            open: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(0),
            epoch: Instant::now(),
        })
    }

    fn open(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<Connection>>> {
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits until one more connection may be accepted; when the cap is reached, closes the
    /// connection that has waited longest (if any is waiting) to make room.
    pub(crate) async fn room(&self) -> OwnedSemaphorePermit {
        loop {
            if let Ok(permit) = self.permits.clone().try_acquire_owned() {
                return permit;
            }
            self.evict_longest_waiting();
            // The evicted connection gives its permit back as soon as its task ends; if every
            // connection was busy, look again shortly (one may have started waiting since).
            let wait = tokio::time::timeout(
                Duration::from_millis(100),
                self.permits.clone().acquire_owned(),
            );
            if let Ok(Ok(permit)) = wait.await {
                return permit;
            }
        }
    }

    /// Asks the connection that has been waiting longest, if any, to close.
    pub(crate) fn evict_longest_waiting(&self) {
        let open = self.open();
        // Ties (connections accepted in one burst begin waiting in the same millisecond) go
        // to the one accepted first: never to the newest, whose request may be on its way.
        let longest = open
            .iter()
            .filter(|(_, c)| c.in_flight.load(Ordering::Acquire) == 0)
            .filter(|(_, c)| !c.evicting.load(Ordering::Acquire))
            .min_by_key(|(id, c)| (c.waiting_since.load(Ordering::Acquire), **id));
        if let Some((_, c)) = longest {
            c.evicting.store(true, Ordering::Release);
            c.evict.notify_one();
        }
    }

    /// Registers a connection just accepted with `permit`; it starts waiting now.
    pub(crate) fn register(self: &Arc<Self>, permit: OwnedSemaphorePermit) -> Registered {
        let connection = Arc::new(Connection {
            in_flight: AtomicUsize::new(0),
            begun: AtomicU64::new(0),
            waiting_since: AtomicU64::new(millis_since(self.epoch)),
            evicting: AtomicBool::new(false),
            evict: Notify::new(),
            epoch: self.epoch,
        });
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.open().insert(id, connection.clone());
        Registered {
            connection,
            id,
            registry: self.clone(),
            _permit: permit,
        }
    }
}

impl Drop for Registered {
    fn drop(&mut self) {
        self.registry.open().remove(&self.id);
    }
}

fn millis_since(epoch: Instant) -> u64 {
    u64::try_from(epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
}

impl Connection {
    /// Marks a request in progress until the returned guard is dropped (with the response's
    /// body, once it has been sent).
    pub(crate) fn begin_request(self: &Arc<Self>) -> InProgress {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        self.begun.fetch_add(1, Ordering::AcqRel);
        InProgress(self.clone())
    }

    fn waiting(&self) -> bool {
        self.in_flight.load(Ordering::Acquire) == 0
    }

    /// Resolves when this connection should close to make room: it was chosen while waiting
    /// and is still waiting. (Chosen just as a request arrived, it stays.)
    pub(crate) async fn evicted(&self) {
        loop {
            self.evict.notified().await;
            if self.waiting() {
                return;
            }
            self.evicting.store(false, Ordering::Release);
        }
    }
}

/// A request in progress on a `Connection`.
pub(crate) struct InProgress(Arc<Connection>);

impl Drop for InProgress {
    fn drop(&mut self) {
        let c = &self.0;
        c.waiting_since
            .store(millis_since(c.epoch), Ordering::Release);
        c.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A response body that keeps its request `InProgress` until it is dropped.
pub(crate) struct Tracked<B> {
    pub(crate) body: B,
    pub(crate) _in_progress: InProgress,
}

impl<B: HttpBody + Unpin> HttpBody for Tracked<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// A connection's wait for a request.
#[derive(Clone, Copy)]
struct Wait {
    /// Requests begun before it (a later request ends it).
    after: u64,
    /// Whether the request's first byte has arrived (the deadline is then the head's).
    head_started: bool,
}

/// The socket as hyper sees it, enforcing the timeouts of the module doc.
pub(crate) struct Watched {
    stream: TcpStream,
    connection: Arc<Connection>,
    limits: ConnectionLimits,
    /// The wait under way, if any.
    wait: Option<Wait>,
    read_deadline: Pin<Box<Sleep>>,
    /// Whether the last write could not proceed, since when `write_deadline` runs.
    write_blocked: bool,
    write_deadline: Pin<Box<Sleep>>,
}

impl Watched {
    pub(crate) fn new(
        stream: TcpStream,
        connection: Arc<Connection>,
        limits: ConnectionLimits,
    ) -> Watched {
        let deadline = || Box::pin(tokio::time::sleep(limits.keep_alive_timeout));
        Watched {
            stream,
            connection,
            wait: None,
            read_deadline: deadline(),
            write_blocked: false,
            write_deadline: deadline(),
            limits,
        }
    }

    /// Whether the current wait's request has begun to arrive; starts a wait (the keep-alive
    /// deadline) if none is under way.
    fn start_wait(&mut self) -> bool {
        let after = self.connection.begun.load(Ordering::Acquire);
        match self.wait {
            Some(wait) if wait.after == after => wait.head_started,
            _ => {
                let deadline = Instant::now() + self.limits.keep_alive_timeout;
                self.read_deadline.as_mut().reset(deadline);
                self.wait = Some(Wait {
                    after,
                    head_started: false,
                });
                false
            }
        }
    }

    fn timed_out(what: &str) -> io::Error {
        io::Error::new(io::ErrorKind::TimedOut, what.to_string())
    }

    /// A write's `result`, or a time-out once writes have not proceeded for the keep-alive
    /// timeout (a client that stopped reading).
    fn wrote<T>(
        &mut self,
        result: Poll<io::Result<T>>,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<T>> {
        if result.is_ready() {
            self.write_blocked = false;
            return result;
        }
        if !self.write_blocked {
            self.write_blocked = true;
            let deadline = Instant::now() + self.limits.keep_alive_timeout;
            self.write_deadline.as_mut().reset(deadline);
        }
        if self.write_deadline.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Err(Self::timed_out("the client accepted no data in time")));
        }
        Poll::Pending
    }
}

impl AsyncRead for Watched {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.connection.waiting() {
            // A request's body, or hyper watching for the client closing while it answers.
            return Pin::new(&mut this.stream).poll_read(cx, buf);
        }
        let head_started = this.start_wait();
        let before = buf.filled().len();
        match Pin::new(&mut this.stream).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if let Some(wait) = this.wait.as_mut().filter(|w| !w.head_started) {
                    if buf.filled().len() > before {
                        wait.head_started = true;
                        let deadline = Instant::now() + this.limits.header_read_timeout;
                        this.read_deadline.as_mut().reset(deadline);
                    }
                }
                Poll::Ready(Ok(()))
            }
            Poll::Pending => {
                if this.read_deadline.as_mut().poll(cx).is_ready() {
                    let what = if head_started {
                        "the request's head did not arrive in time"
                    } else {
                        "the connection stayed idle"
                    };
                    return Poll::Ready(Err(Self::timed_out(what)));
                }
                Poll::Pending
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
        }
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let result = Pin::new(&mut this.stream).poll_write(cx, buf);
        this.wrote(result, cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let result = Pin::new(&mut this.stream).poll_write_vectored(cx, bufs);
        this.wrote(result, cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    /// hyper flushes after the last write of every response: if that was the end of the
    /// connection's last request in progress, the wait begins here, its deadline armed at once
    /// (hyper polls the socket again only once the client sends something).
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.connection.waiting() {
            this.start_wait();
            // Registers the deadline's waker; `poll_read` reports it when it has passed.
            let _ = this.read_deadline.as_mut().poll(cx);
        }
        let result = Pin::new(&mut this.stream).poll_flush(cx);
        this.wrote(result, cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}
