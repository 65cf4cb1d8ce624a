//! The HTTP server loop (in place of `axum::serve`, which has no timeouts and no connection
//! limit): HTTP/1.1 and HTTP/2 through hyper-util's auto builder, with upgrades (WebSockets), the
//! peer address on every request (axum's `ConnectInfo<SocketAddr>`), `TCP_NODELAY`, and graceful
//! shutdown that lets in-flight requests finish. On top, three limits:
//!
//! - **Header-read timeout**: a request's headers must be complete within it, counted from the
//!   request's first byte (from the accept, for a connection's first request). A client that
//!   trickles a request line in (slowloris) is cut off instead of holding a connection.
//! - **Idle timeout**: a connection with no request in flight and no request begun is closed
//!   gracefully after it.
//! - **Connection limit**: at most `max_connections` are served at once. At the limit the loop
//!   stops accepting until one closes: further clients wait in the kernel's listen backlog and
//!   are served as soon as a slot frees, rather than being accepted only to be closed at once,
//!   which would spend the work on the very overload the limit protects against and turn a short
//!   wait into an error. A WebSocket keeps its slot until it closes.
//!
//! hyper's own `header_read_timeout` is not used: it also runs while a keep-alive connection
//! waits for its next request, so it would close idle connections after the header timeout and
//! leave no room for a longer idle timeout. Each connection instead has a small watchdog that
//! knows, from the bytes read and the requests in flight, which of the two timeouts applies.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use bytes::Bytes;
use hyper::body::{Frame, Incoming, SizeHint};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::Service as _;

/// The server's limits (`http.*` keys).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub header_read_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_connections: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            max_connections: 10_000,
        }
    }
}

/// Serves `app` on `listener` until `shutdown`, then stops accepting, closes idle connections
/// and waits for in-flight requests to finish.
pub async fn serve(listener: TcpListener, app: Router, limits: Limits, shutdown: CancellationToken) {
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new()).header_read_timeout(None);
    // The CONNECT protocol carries WebSockets over HTTP/2.
    builder.http2().timer(TokioTimer::new()).enable_connect_protocol();
    let builder = Arc::new(builder);
    let connections = TaskTracker::new();
    while let Some(slot) = free_slot(&slots, &shutdown).await {
        let Some((tcp, peer)) = accept(&listener, &shutdown).await else { break };
        // Answers are small: do not hold them back for Nagle's algorithm.
        let _ = tcp.set_nodelay(true);
        let conn = Connection {
            tcp,
            peer,
            slot,
            app: app.clone(),
            builder: builder.clone(),
            limits,
            shutdown: shutdown.clone(),
        };
        connections.spawn(conn.run());
    }
    drop(listener);
    connections.close();
    connections.wait().await;
}

async fn free_slot(slots: &Arc<Semaphore>, shutdown: &CancellationToken) -> Option<OwnedSemaphorePermit> {
    tokio::select! {
        _ = shutdown.cancelled() => None,
        // The semaphore is never closed, so this fails only if it were.
        permit = slots.clone().acquire_owned() => permit.ok(),
    }
}

/// The next connection, or `None` once `shutdown` fires.
async fn accept(listener: &TcpListener, shutdown: &CancellationToken) -> Option<(TcpStream, SocketAddr)> {
    loop {
        let result = tokio::select! {
            _ = shutdown.cancelled() => return None,
            r = listener.accept() => r,
        };
        match result {
            Ok(conn) => return Some(conn),
            // The client gave up before we accepted: nothing to do.
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::ConnectionAborted
                        | std::io::ErrorKind::ConnectionReset
                        | std::io::ErrorKind::ConnectionRefused
                ) => {}
            // Out of file descriptors, most likely: retrying at once would spin. Connections
            // closing meanwhile free some.
            Err(e) => {
                tracing::error!(error = %e, "cannot accept HTTP connections; retrying in 1 s");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

/// One accepted connection and what serving it needs.
struct Connection {
    tcp: TcpStream,
    peer: SocketAddr,
    slot: OwnedSemaphorePermit,
    app: Router,
    builder: Arc<auto::Builder<TokioExecutor>>,
    limits: Limits,
    shutdown: CancellationToken,
}

impl Connection {
    async fn run(self) {
        let Connection { tcp, peer, slot, app, builder, limits, shutdown } = self;
        let activity = Arc::new(Activity::new());
        let io = TokioIo::new(Watched { tcp, activity: activity.clone(), _slot: slot });
        let service = hyper::service::service_fn({
            let activity = activity.clone();
            move |req: hyper::Request<Incoming>| {
                let busy = activity.begin();
                let mut req = req.map(Body::new);
                req.extensions_mut().insert(ConnectInfo(peer));
                let response = app.clone().call(req);
                async move {
                    let response = response.await?;
                    Ok::<_, Infallible>(response.map(|inner| Tracked { inner, _busy: busy }))
                }
            }
        });
        let conn = builder.serve_connection_with_upgrades(io, service);
        tokio::pin!(conn);
        // When graceful shutdown began (the server stopping, or the connection idle too long).
        let mut closing: Option<Instant> = None;
        loop {
            let deadline = match activity.check(&limits) {
                Check::Wait(until) => until,
                Check::HeaderTimeout => {
                    tracing::debug!(%peer, "request headers did not arrive in time; closing the connection");
                    return;
                }
                Check::Idle => match closing {
                    None => {
                        conn.as_mut().graceful_shutdown();
                        closing = Some(Instant::now());
                        Instant::now() + limits.idle_timeout
                    }
                    Some(since) if since + limits.idle_timeout > Instant::now() => since + limits.idle_timeout,
                    // Closing gracefully did not end it within another idle period: drop it.
                    Some(_) => return,
                },
            };
            tokio::select! {
                result = conn.as_mut() => {
                    if let Err(e) = result {
                        tracing::debug!(%peer, error = %e, "HTTP connection ended with an error");
                    }
                    return;
                }
                _ = shutdown.cancelled(), if closing.is_none() => {
                    closing = Some(Instant::now());
                    conn.as_mut().graceful_shutdown();
                }
                _ = activity.changed.notified() => {}
                _ = tokio::time::sleep_until(deadline) => {}
            }
        }
    }
}

/// What a connection is doing, for its watchdog.
#[derive(Debug)]
struct Activity {
    state: Mutex<State>,
    /// Signalled on every change (a request's first byte, its start, its end), which may move
    /// the deadline the watchdog sleeps towards earlier.
    changed: Notify,
}

#[derive(Debug)]
struct State {
    /// Requests whose response has not been sent completely.
    in_flight: usize,
    /// When the last response was sent (or the connection accepted).
    idle_since: Instant,
    /// When the first byte of a request not yet handed to the router arrived.
    head_since: Option<Instant>,
    /// Whether the first bytes read were HTTP/2's preface.
    http2: bool,
    /// Whether anything was read yet.
    read_any: bool,
}

/// What the watchdog should do now.
#[derive(Debug, PartialEq, Eq)]
enum Check {
    Wait(Instant),
    HeaderTimeout,
    Idle,
}

/// Marks a request in flight until its response body is dropped (sent, or abandoned).
#[derive(Debug)]
struct Busy(Arc<Activity>);

impl Drop for Busy {
    fn drop(&mut self) {
        let mut s = self.0.state();
        s.in_flight = s.in_flight.saturating_sub(1);
        if s.in_flight == 0 {
            s.idle_since = Instant::now();
            self.0.changed.notify_one();
        }
    }
}

impl Activity {
    fn new() -> Activity {
        let now = Instant::now();
        Activity {
            // The first request's headers are due from the accept on: a client that connects and
            // says nothing holds its slot no longer than one that trickles.
            state: Mutex::new(State {
                in_flight: 0,
                idle_since: now,
                head_since: Some(now),
                http2: false,
                read_any: false,
            }),
            changed: Notify::new(),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // Every update is a few plain assignments, consistent even after a panic.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn begin(self: &Arc<Self>) -> Busy {
        let mut s = self.state();
        s.in_flight += 1;
        s.head_since = None;
        self.changed.notify_one();
        Busy(self.clone())
    }

    fn read(&self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        let mut s = self.state();
        if !s.read_any {
            s.read_any = true;
            s.http2 = bytes.starts_with(b"PRI * HTTP/2");
        }
        // HTTP/2 frames between requests (pings, window updates) start no request: an HTTP/2
        // connection is timed by the idle timeout alone, and hyper limits its streams.
        if s.http2 {
            s.head_since = None;
            return;
        }
        if s.in_flight == 0 && s.head_since.is_none() {
            s.head_since = Some(Instant::now());
            self.changed.notify_one();
        }
    }

    fn check(&self, limits: &Limits) -> Check {
        let s = self.state();
        let now = Instant::now();
        if s.in_flight > 0 {
            // Nothing is due while a request runs; look again an idle period later at the latest.
            return Check::Wait(now + limits.idle_timeout);
        }
        let (due, expired) = match s.head_since {
            Some(since) => (since + limits.header_read_timeout, Check::HeaderTimeout),
            None => (s.idle_since + limits.idle_timeout, Check::Idle),
        };
        if due <= now { expired } else { Check::Wait(due) }
    }
}

/// The TCP stream, telling the watchdog what it reads, and holding the connection's slot for as
/// long as the socket lives (an upgraded connection takes it along).
struct Watched {
    tcp: TcpStream,
    activity: Arc<Activity>,
    _slot: OwnedSemaphorePermit,
}

impl AsyncRead for Watched {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.tcp).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = polled {
            this.activity.read(&buf.filled()[before..]);
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().tcp).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().tcp).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.tcp.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_shutdown(cx)
    }
}

/// A response body that keeps its request in flight until it is dropped.
struct Tracked {
    inner: Body,
    _busy: Busy,
}

impl hyper::body::Body for Tracked {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.get_mut().inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        header_read_timeout: Duration::from_secs(10),
        idle_timeout: Duration::from_secs(60),
        max_connections: 1,
    };

    #[tokio::test(start_paused = true)]
    async fn the_header_timeout_runs_from_a_requests_first_byte_and_idle_time_between_requests() {
        let a = Arc::new(Activity::new());
        let start = Instant::now();
        assert_eq!(a.check(&LIMITS), Check::Wait(start + LIMITS.header_read_timeout), "due from the accept");
        a.read(b"GET / HT");
        tokio::time::advance(Duration::from_secs(11)).await;
        assert_eq!(a.check(&LIMITS), Check::HeaderTimeout);

        let busy = a.begin();
        tokio::time::advance(Duration::from_secs(120)).await;
        assert!(matches!(a.check(&LIMITS), Check::Wait(_)), "a slow handler is never cut off");
        drop(busy);
        let idle = Instant::now();
        assert_eq!(a.check(&LIMITS), Check::Wait(idle + LIMITS.idle_timeout), "idle, not waiting for headers");
        tokio::time::advance(Duration::from_secs(30)).await;
        a.read(b"G");
        let head = Instant::now();
        assert_eq!(a.check(&LIMITS), Check::Wait(head + LIMITS.header_read_timeout));
        drop(a.begin());
        tokio::time::advance(Duration::from_secs(61)).await;
        assert_eq!(a.check(&LIMITS), Check::Idle);
    }

    #[tokio::test(start_paused = true)]
    async fn the_watchdog_hears_of_a_finished_request_whose_idle_deadline_comes_sooner() {
        let short_idle = Limits { idle_timeout: Duration::from_secs(1), ..LIMITS };
        let a = Arc::new(Activity::new());
        // Asleep towards the first request's header deadline (10 s after the accept)...
        assert_eq!(a.check(&short_idle), Check::Wait(Instant::now() + Duration::from_secs(10)));
        drop(a.begin());
        // ...it must wake now: the connection is idle, and idle for 1 s is due much sooner.
        tokio::time::timeout(Duration::from_millis(1), a.changed.notified()).await.expect("woken");
        assert_eq!(a.check(&short_idle), Check::Wait(Instant::now() + Duration::from_secs(1)));
    }

    #[tokio::test(start_paused = true)]
    async fn http2_frames_between_requests_start_no_header_timeout() {
        let a = Arc::new(Activity::new());
        a.read(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
        drop(a.begin());
        tokio::time::advance(Duration::from_secs(20)).await;
        a.read(b"\x00\x00\x08\x06"); // a PING frame
        assert_eq!(a.check(&LIMITS), Check::Wait(Instant::now() + Duration::from_secs(40)));
    }
}
