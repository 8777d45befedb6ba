//! HTTP serving with resource limits, shared by the panel / REST server of `arch-manager` and the
//! node API of `arch-node` (it replaces `axum::serve`, which has no limit of any kind).
//!
//! What a client can hold, and for how long:
//! - **Connections**: at most [`Limits::max_connections`] are served at once. Over the cap the
//!   server stops calling `accept`, so a new connection waits in the kernel's accept backlog
//!   (its TCP handshake completes, nothing is read) until a served one closes; when the backlog
//!   is full too, the kernel drops further SYNs and clients retry. Nothing is accepted only to be
//!   closed again.
//! - **Request head**: the request line and headers must arrive within
//!   [`Limits::header_timeout`] of the first byte being awaited, or the connection is closed
//!   without a response (hyper's `header_read_timeout`, on a tokio timer).
//! - **Request**: the handler, reading the request body included, must produce the response
//!   head within [`Limits::request_timeout`], or the client gets `408 Request Timeout` (tower-http's
//!   `TimeoutLayer`). The timeout ends when the response head is ready, so a streamed body such as
//!   the manager's Server-Sent Events on `/events` lives on after it.
//! - **Idle keep-alive**: hyper starts the header timeout as soon as a kept-alive connection waits
//!   for its next request, so an idle connection is closed after [`Limits::header_timeout`].
//!   Beyond that, a connection with no bytes read or written for [`Limits::idle_timeout`] in any
//!   state is shut down gracefully (closed at once when no request is in flight, otherwise after
//!   the response in progress) and dropped [`Limits::grace`] later if that response is still not
//!   done: a client that stopped reading a large response cannot hold a slot for ever.
//! - **Shutdown**: when `shutdown` is cancelled the listener closes, idle connections close,
//!   in-flight requests and streams may run for [`Limits::grace`]; whatever still runs then is
//!   dropped, so [`serve`] returns within the grace period.
//!
//! - **TLS** (when a [`rustls::ServerConfig`] is given): the handshake runs in the connection's
//!   own task and must finish within [`Limits::header_timeout`]; a failed or late handshake
//!   closes the connection without a response. A client that never speaks TLS thus holds a
//!   slot no longer than one that never sends its request head.
//!
//! HTTP/1.1 only (as both servers spoke before: hyper's HTTP/2 is not built in). Every request
//! carries axum's `ConnectInfo<SocketAddr>` with the peer address and the [`Transport`] it
//! arrived on.

use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt as _;

/// How a request reached the server: each request carries it as an extension, so handlers can
/// tell a direct HTTPS request (a `Secure` cookie, HSTS) from plain HTTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Plain,
    Tls,
}

/// A connection's byte stream, plain or TLS, boxed so that one serving loop handles both.
trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// Limits of one HTTP server. See the module documentation for what each one does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Connections served at once; more wait in the accept backlog.
    pub max_connections: usize,
    /// Time to receive a complete request head.
    pub header_timeout: Duration,
    /// Time from the request to the response head (408 after it).
    pub request_timeout: Duration,
    /// A connection without traffic for this long is closed gracefully (see the module docs).
    pub idle_timeout: Duration,
    /// How long in-flight requests may run after shutdown is requested.
    pub grace: Duration,
}

/// Default connection cap of the manager (panel, REST API and SSE streams).
pub const MANAGER_MAX_CONNECTIONS: usize = 1024;
/// Default connection cap of the node API (only the manager talks to it).
pub const NODE_MAX_CONNECTIONS: usize = 256;
/// Default time to receive a request head. Not 10 s: browsers (Chromium) drop a pre-opened
/// connection they never used after 10 s themselves, and a server closing it at the same moment
/// makes the browser's next request on it fail without a retry.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(20);
/// Default time to produce a response head.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Default idle keep-alive limit: longer than the 15 s SSE keep-alive interval.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Default drain time on shutdown.
pub const GRACE: Duration = Duration::from_secs(10);

impl Limits {
    /// The defaults with the given connection cap.
    pub fn with_max_connections(max_connections: usize) -> Limits {
        Limits {
            max_connections,
            header_timeout: HEADER_TIMEOUT,
            request_timeout: REQUEST_TIMEOUT,
            idle_timeout: IDLE_TIMEOUT,
            grace: GRACE,
        }
    }
}

/// Parses a duration flag of either binary: a number of seconds (`10`) or a number with a unit
/// (`500ms`, `10s`, `2m`, `1h`). Zero is refused: every limit and interval must be able to fire.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a duration (e.g. 10s, 500ms, 2m)"))?;
    let d = match unit {
        "" | "s" => Duration::from_secs(n),
        "ms" => Duration::from_millis(n),
        "m" => Duration::from_secs(n.saturating_mul(60)),
        "h" => Duration::from_secs(n.saturating_mul(3600)),
        _ => return Err(format!("unknown unit in `{s}` (use ms, s, m or h)")),
    };
    if d.is_zero() {
        return Err("must be greater than zero".into());
    }
    Ok(d)
}

/// Parses a connection cap: a positive number.
pub fn parse_max_connections(s: &str) -> Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) if n > Semaphore::MAX_PERMITS => {
            Err(format!("must be at most {}", Semaphore::MAX_PERMITS))
        }
        Ok(n) => Ok(n),
        Err(_) => Err(format!("`{s}` is not a number")),
    }
}

/// Serves `router` on `listener` within `limits` until `shutdown` is cancelled, then drains for
/// at most `limits.grace`. With `tls`, every connection must complete a TLS handshake with that
/// configuration first (HTTPS); without, it is plain HTTP. Returns an error only when the
/// listener fails for good.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    tls: Option<Arc<rustls::ServerConfig>>,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    let transport = if acceptor.is_some() {
        Transport::Tls
    } else {
        Transport::Plain
    };
    let app = router.layer(tower_http::timeout::TimeoutLayer::with_status_code(
        axum::http::StatusCode::REQUEST_TIMEOUT,
        limits.request_timeout,
    ));
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .keep_alive(true);
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let mut connections = JoinSet::new();
    let clock = Instant::now();

    loop {
        while connections.try_join_next().is_some() {}
        // Over the cap, wait here: the next connection stays in the accept backlog.
        let permit = tokio::select! {
            _ = shutdown.cancelled() => break,
            p = permits.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        let (stream, peer) = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) if is_per_connection(&e) => continue,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "accepting an HTTP connection failed");
                    tokio::select! {
                        _ = shutdown.cancelled() => break,
                        _ = tokio::time::sleep(Duration::from_millis(200)) => continue,
                    }
                }
            },
        };
        let _ = stream.set_nodelay(true);
        // A new connection is quiet since its accept, not since the server started: counted
        // from the start, every connection accepted after `idle_timeout` of uptime looked idle
        // at once and could be closed before its first request was read.
        let activity = Arc::new(AtomicU64::new(millis_since(clock)));
        let tracked = Tracked {
            inner: stream,
            activity: activity.clone(),
            clock,
        };
        let app = app.clone();
        let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
            req.extensions_mut().insert(ConnectInfo(peer));
            req.extensions_mut().insert(transport);
            app.clone().oneshot(req)
        });
        let http = http.clone();
        let acceptor = acceptor.clone();
        let (header_timeout, idle_timeout, grace) =
            (limits.header_timeout, limits.idle_timeout, limits.grace);
        let shutdown = shutdown.clone();
        connections.spawn(async move {
            let _permit = permit;
            let io: Box<dyn Io> = match acceptor {
                None => Box::new(tracked),
                Some(acceptor) => {
                    let handshake = tokio::select! {
                        _ = shutdown.cancelled() => return,
                        r = tokio::time::timeout(header_timeout, acceptor.accept(tracked)) => r,
                    };
                    match handshake {
                        Ok(Ok(tls)) => Box::new(tls),
                        Ok(Err(e)) => {
                            tracing::debug!(peer = %peer, error = %e, "TLS handshake failed");
                            return;
                        }
                        Err(_) => {
                            tracing::debug!(peer = %peer, "TLS handshake timed out");
                            return;
                        }
                    }
                }
            };
            let conn = http
                .serve_connection(TokioIo::new(io), service)
                .with_upgrades();
            let mut conn = std::pin::pin!(conn);
            let mut closing = false;
            // Set when a graceful close starts: a response that is still not done then (a
            // client that stopped reading) is dropped.
            let mut deadline = tokio::time::Instant::now() + Duration::from_secs(u32::MAX.into());
            loop {
                let idle_for = idle(clock, &activity);
                let check = tokio::time::sleep(idle_timeout.saturating_sub(idle_for));
                tokio::select! {
                    _ = tokio::time::sleep_until(deadline), if closing => {
                        tracing::debug!(peer = %peer, "HTTP connection dropped: still busy after a graceful close");
                        break;
                    }
                    res = conn.as_mut() => {
                        if let Err(e) = res {
                            tracing::debug!(peer = %peer, error = %e, "HTTP connection ended with an error");
                        }
                        break;
                    }
                    _ = shutdown.cancelled(), if !closing => {
                        conn.as_mut().graceful_shutdown();
                        closing = true;
                        deadline = tokio::time::Instant::now() + grace;
                    }
                    _ = check, if !closing => {
                        if idle(clock, &activity) >= idle_timeout {
                            // Closes now when idle, or after the response in progress.
                            conn.as_mut().graceful_shutdown();
                            closing = true;
                            deadline = tokio::time::Instant::now() + grace;
                        }
                    }
                }
            }
        });
    }

    drop(listener);
    let open = connections.len();
    if open > 0 {
        tracing::info!(
            connections = open,
            "HTTP listener closed; draining connections"
        );
    }
    let drained = tokio::time::timeout(limits.grace, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            connections = connections.len(),
            grace = ?limits.grace,
            "HTTP connections still open after the grace period; closing them"
        );
        connections.shutdown().await;
    }
    Ok(())
}

/// How long the connection whose last activity is in `activity` has been quiet.
fn idle(clock: Instant, activity: &AtomicU64) -> Duration {
    clock
        .elapsed()
        .saturating_sub(Duration::from_millis(activity.load(Ordering::Relaxed)))
}

/// Accept errors that concern one connection only (the listener is fine).
fn is_per_connection(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::ConnectionRefused
            | std::io::ErrorKind::ConnectionAborted
            | std::io::ErrorKind::ConnectionReset
    )
}

/// A TCP stream that records, in milliseconds since `clock`, when bytes last moved.
struct Tracked {
    inner: TcpStream,
    activity: Arc<AtomicU64>,
    clock: Instant,
}

/// Milliseconds since `clock`, as connection activity is recorded.
fn millis_since(clock: Instant) -> u64 {
    u64::try_from(clock.elapsed().as_millis()).unwrap_or(u64::MAX)
}

impl Tracked {
    fn touch(&self) {
        self.activity
            .store(millis_since(self.clock), Ordering::Relaxed);
    }
}

impl AsyncRead for Tracked {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let res = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.touch();
        }
        res
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let res = Pin::new(&mut self.inner).poll_write(cx, data);
        if matches!(res, Poll::Ready(Ok(n)) if n > 0) {
            self.touch();
        }
        res
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let res = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(res, Poll::Ready(Ok(n)) if n > 0) {
            self.touch();
        }
        res
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
