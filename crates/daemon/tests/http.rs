//! `daemon::http::serve` against raw TCP clients on 127.0.0.1: every limit fires, and what must
//! keep working (keep-alive, streamed responses, the peer address, shutdown) does.

use axum::extract::ConnectInfo;
use axum::response::sse::{Event, Sse};
use axum::routing::get;
use axum::Router;
use daemon::http::{serve, Limits};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Generous upper bound for anything that should happen "soon" on a loaded 2-core machine.
const SOON: Duration = Duration::from_secs(5);

fn limits() -> Limits {
    Limits {
        max_connections: 16,
        header_timeout: Duration::from_secs(10),
        request_timeout: Duration::from_secs(10),
        idle_timeout: Duration::from_secs(60),
        grace: Duration::from_secs(10),
    }
}

fn app() -> Router {
    Router::new()
        .route("/", get(|| async { "ok" }))
        .route(
            "/peer",
            get(|ConnectInfo(peer): ConnectInfo<SocketAddr>| async move { peer.to_string() }),
        )
        .route(
            "/transport",
            get(
                |axum::Extension(t): axum::Extension<daemon::http::Transport>| async move {
                    format!("{t:?}")
                },
            ),
        )
        .route("/hang", get(std::future::pending::<&'static str>))
        .route("/big", get(|| async { vec![b'x'; 64 << 20] }))
        .route(
            "/events",
            get(|| async { Sse::new(ticks(Duration::from_millis(100))) }),
        )
}

/// An endless event stream, one `data: <n>` every `every` (the first at once).
fn ticks(every: Duration) -> impl futures::Stream<Item = Result<Event, std::convert::Infallible>> {
    let interval = tokio::time::interval(every);
    futures::stream::unfold((interval, 0u64), |(mut interval, n)| async move {
        interval.tick().await;
        let n = n + 1;
        Some((Ok(Event::default().data(n.to_string())), (interval, n)))
    })
}

struct Server {
    addr: SocketAddr,
    cancel: CancellationToken,
    task: JoinHandle<std::io::Result<()>>,
}

async fn start(limits: Limits) -> Server {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let cancel = CancellationToken::new();
    let task = tokio::spawn(serve(listener, app(), limits, None, cancel.clone()));
    Server { addr, cancel, task }
}

fn get_request(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: arch\r\n\r\n")
}

/// Reads one response with a `Content-Length` body; returns (status line, body).
async fn read_response(s: &mut TcpStream) -> (String, String) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    let head_end = loop {
        if let Some(i) = find(&buf, b"\r\n\r\n") {
            break i + 4;
        }
        let n = s.read(&mut chunk).await.expect("read");
        assert!(
            n > 0,
            "closed before a response: {:?}",
            String::from_utf8_lossy(&buf)
        );
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let len: usize = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().parse().expect("length"))
        })
        .unwrap_or(0);
    while buf.len() < head_end + len {
        let n = s.read(&mut chunk).await.expect("read body");
        assert!(n > 0, "closed in the body");
        buf.extend_from_slice(&chunk[..n]);
    }
    let status = head.lines().next().unwrap_or_default().to_owned();
    let body = String::from_utf8_lossy(&buf[head_end..head_end + len]).to_string();
    (status, body)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Reads until the server closes; returns what was received.
async fn read_to_close(s: &mut TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    let mut chunk = [0u8; 1024];
    loop {
        match s.read(&mut chunk).await {
            Ok(0) | Err(_) => return out,
            Ok(n) => out.extend_from_slice(&chunk[..n]),
        }
    }
}

async fn get_ok(s: &mut TcpStream, path: &str) -> String {
    s.write_all(get_request(path).as_bytes())
        .await
        .expect("write");
    let (status, body) = tokio::time::timeout(SOON, read_response(s))
        .await
        .expect("response in time");
    assert_eq!(status, "HTTP/1.1 200 OK");
    body
}

#[tokio::test]
async fn a_trickling_request_head_is_closed_after_the_header_timeout() {
    let server = start(Limits {
        header_timeout: Duration::from_millis(500),
        ..limits()
    })
    .await;
    let s = TcpStream::connect(server.addr).await.expect("connect");
    let (mut rd, mut wr) = s.into_split();
    let started = Instant::now();
    // Half a request line, then one byte of a header every 50 ms, never finishing the head (the
    // fixed pacing is the slow client under test, not a wait for a condition).
    let trickle = tokio::spawn(async move {
        if wr.write_all(b"GET / HT").await.is_err() {
            return;
        }
        let _ = wr.write_all(b"TP/1.1\r\nX-Slow: ").await;
        loop {
            tokio::time::sleep(Duration::from_millis(50)).await;
            if wr.write_all(b"a").await.is_err() {
                return;
            }
        }
    });
    let mut got = Vec::new();
    let closed = tokio::time::timeout(SOON, async {
        let mut chunk = [0u8; 256];
        loop {
            match rd.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&chunk[..n]),
            }
        }
    })
    .await;
    let elapsed = started.elapsed();
    trickle.abort();
    assert!(
        closed.is_ok(),
        "a trickling client is still connected after {SOON:?}"
    );
    assert!(
        elapsed >= Duration::from_millis(500),
        "closed after {elapsed:?}"
    );
    let got = String::from_utf8_lossy(&got);
    assert!(
        got.is_empty() || got.starts_with("HTTP/1.1 408"),
        "unexpected reply: {got:?}"
    );
    // The server still serves others.
    let mut other = TcpStream::connect(server.addr).await.expect("connect");
    assert_eq!(get_ok(&mut other, "/").await, "ok");
}

#[tokio::test]
async fn a_handler_slower_than_the_request_timeout_gets_408() {
    let server = start(Limits {
        request_timeout: Duration::from_millis(300),
        ..limits()
    })
    .await;
    let mut s = TcpStream::connect(server.addr).await.expect("connect");
    let started = Instant::now();
    s.write_all(get_request("/hang").as_bytes())
        .await
        .expect("write");
    let (status, body) = tokio::time::timeout(SOON, read_response(&mut s))
        .await
        .expect("a response, not a hang");
    assert_eq!(status, "HTTP/1.1 408 Request Timeout");
    assert_eq!(body, "");
    assert!(started.elapsed() >= Duration::from_millis(300));
    // The connection stays usable.
    assert_eq!(get_ok(&mut s, "/").await, "ok");
}

#[tokio::test]
async fn over_the_cap_a_connection_waits_until_one_closes() {
    let server = start(Limits {
        max_connections: 2,
        ..limits()
    })
    .await;
    let mut first = TcpStream::connect(server.addr).await.expect("connect");
    assert_eq!(get_ok(&mut first, "/").await, "ok");
    let mut second = TcpStream::connect(server.addr).await.expect("connect");
    assert_eq!(get_ok(&mut second, "/").await, "ok");

    // The third connects (the kernel's backlog) but is not served while two are open.
    let mut third = TcpStream::connect(server.addr).await.expect("connect");
    third
        .write_all(get_request("/").as_bytes())
        .await
        .expect("write");
    let early = tokio::time::timeout(Duration::from_millis(700), read_response(&mut third)).await;
    assert!(early.is_err(), "served over the cap: {early:?}");
    // Still served on the two open connections.
    assert_eq!(get_ok(&mut second, "/").await, "ok");

    drop(first);
    let (status, body) = tokio::time::timeout(SOON, read_response(&mut third))
        .await
        .expect("served once a connection closed");
    assert_eq!((status.as_str(), body.as_str()), ("HTTP/1.1 200 OK", "ok"));
}

#[tokio::test]
async fn a_streamed_response_outlives_the_request_timeout() {
    let timeout = Duration::from_millis(300);
    let server = start(Limits {
        request_timeout: timeout,
        ..limits()
    })
    .await;
    let mut s = TcpStream::connect(server.addr).await.expect("connect");
    let started = Instant::now();
    s.write_all(get_request("/events").as_bytes())
        .await
        .expect("write");
    // Ten events, 100 ms apart: the last arrives well after the request timeout.
    let got = tokio::time::timeout(SOON, async {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 1024];
        while find(&buf, b"data: 10\n").is_none() {
            let n = s.read(&mut chunk).await.expect("read");
            assert!(n > 0, "stream cut: {:?}", String::from_utf8_lossy(&buf));
            buf.extend_from_slice(&chunk[..n]);
        }
        buf
    })
    .await
    .expect("ten events in time");
    assert!(started.elapsed() > timeout, "{:?}", started.elapsed());
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
    assert!(text.contains("content-type: text/event-stream"), "{text}");
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed() {
    let server = start(Limits {
        idle_timeout: Duration::from_millis(400),
        ..limits()
    })
    .await;
    let mut s = TcpStream::connect(server.addr).await.expect("connect");
    assert_eq!(get_ok(&mut s, "/").await, "ok");
    let idle_since = Instant::now();
    let rest = tokio::time::timeout(SOON, read_to_close(&mut s))
        .await
        .expect("closed when idle");
    assert_eq!(rest, b"");
    assert!(idle_since.elapsed() >= Duration::from_millis(400));
}

#[tokio::test]
async fn a_new_connection_is_not_idle_however_long_the_server_has_run() {
    let idle_timeout = Duration::from_millis(300);
    let server = start(Limits {
        idle_timeout,
        ..limits()
    })
    .await;
    // Let the server outlive the idle limit: a first connection is served, then closed idle.
    let mut first = TcpStream::connect(server.addr).await.expect("connect");
    assert_eq!(get_ok(&mut first, "/").await, "ok");
    tokio::time::timeout(SOON, read_to_close(&mut first))
        .await
        .expect("closed when idle");
    // Fresh connections whose request comes a moment after the connect (well within the idle
    // limit) are served, every one.
    for i in 0..10 {
        let mut s = TcpStream::connect(server.addr).await.expect("connect");
        tokio::time::sleep(idle_timeout / 3).await;
        s.write_all(get_request("/").as_bytes())
            .await
            .expect("write");
        let (status, body) = tokio::time::timeout(SOON, read_response(&mut s))
            .await
            .unwrap_or_else(|_| panic!("connection {i} answered"));
        assert_eq!(
            (status.as_str(), body.as_str()),
            ("HTTP/1.1 200 OK", "ok"),
            "connection {i}"
        );
    }
}

#[tokio::test]
async fn waiting_for_the_next_request_counts_against_the_header_timeout() {
    let server = start(Limits {
        header_timeout: Duration::from_millis(400),
        ..limits()
    })
    .await;
    let mut s = TcpStream::connect(server.addr).await.expect("connect");
    assert_eq!(get_ok(&mut s, "/").await, "ok");
    let idle_since = Instant::now();
    let rest = tokio::time::timeout(SOON, read_to_close(&mut s))
        .await
        .expect("closed when idle");
    assert_eq!(rest, b"");
    assert!(idle_since.elapsed() >= Duration::from_millis(400));
}

#[tokio::test]
async fn a_client_that_stops_reading_does_not_keep_its_slot() {
    let server = start(Limits {
        max_connections: 1,
        idle_timeout: Duration::from_millis(300),
        grace: Duration::from_millis(300),
        ..limits()
    })
    .await;
    // Asks for 64 MiB and never reads: the server's writes stall once the socket buffers fill.
    let mut stalled = TcpStream::connect(server.addr).await.expect("connect");
    stalled
        .write_all(get_request("/big").as_bytes())
        .await
        .expect("write");
    let mut next = TcpStream::connect(server.addr).await.expect("connect");
    next.write_all(get_request("/").as_bytes())
        .await
        .expect("write");
    let (status, body) = tokio::time::timeout(SOON, read_response(&mut next))
        .await
        .expect("the stalled connection was dropped and the next one served");
    assert_eq!((status.as_str(), body.as_str()), ("HTTP/1.1 200 OK", "ok"));
    drop(stalled);
}

#[tokio::test]
async fn handlers_see_the_peer_address() {
    let server = start(limits()).await;
    let mut s = TcpStream::connect(server.addr).await.expect("connect");
    let me = s.local_addr().expect("local addr");
    assert_eq!(get_ok(&mut s, "/peer").await, me.to_string());
}

#[tokio::test]
async fn shutdown_finishes_within_the_grace_period() {
    let grace = Duration::from_millis(600);
    let server = start(Limits { grace, ..limits() }).await;
    // One idle keep-alive connection and one endless stream.
    let mut idle = TcpStream::connect(server.addr).await.expect("connect");
    assert_eq!(get_ok(&mut idle, "/").await, "ok");
    let mut stream = TcpStream::connect(server.addr).await.expect("connect");
    stream
        .write_all(get_request("/events").as_bytes())
        .await
        .expect("write");
    let mut first = [0u8; 64];
    let n = tokio::time::timeout(SOON, stream.read(&mut first))
        .await
        .expect("stream started")
        .expect("read");
    assert!(first[..n].starts_with(b"HTTP/1.1 200 OK"));

    let started = Instant::now();
    server.cancel.cancel();
    let rest = tokio::time::timeout(SOON, read_to_close(&mut idle))
        .await
        .expect("the idle connection is closed at once");
    assert_eq!(rest, b"");
    assert!(
        started.elapsed() < grace,
        "idle closed after {:?}",
        started.elapsed()
    );
    let result = tokio::time::timeout(SOON, server.task)
        .await
        .expect("serve returns within the grace period")
        .expect("join");
    assert!(result.is_ok(), "{result:?}");
    let took = started.elapsed();
    assert!(took >= grace, "the stream was given its grace: {took:?}");
    assert!(took < grace + Duration::from_secs(2), "took {took:?}");
    // The stream was cut and the listener is gone.
    tokio::time::timeout(SOON, read_to_close(&mut stream))
        .await
        .expect("stream closed");
    assert!(TcpStream::connect(server.addr).await.is_err());
}

/// A server on 127.0.0.1 speaking HTTPS with a fresh self-signed identity; returns it with the
/// identity's fingerprint.
async fn start_tls(limits: Limits) -> (Server, daemon::tls::Fingerprint, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let (identity, _) =
        daemon::tls::NodeIdentity::load_or_create(dir.path(), &["127.0.0.1".into()])
            .expect("identity");
    let config = daemon::tls::server_config(&identity).expect("server config");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let cancel = CancellationToken::new();
    let task = tokio::spawn(serve(listener, app(), limits, Some(config), cancel.clone()));
    (Server { addr, cancel, task }, identity.fingerprint(), dir)
}

#[tokio::test]
async fn with_tls_requests_arrive_over_https_and_say_so() {
    let (server, fingerprint, _dir) = start_tls(limits()).await;
    let (config, _) = daemon::tls::pinned_client_config(Some(fingerprint)).expect("client config");
    let client = reqwest::Client::builder()
        .use_preconfigured_tls(config)
        .no_proxy()
        .build()
        .expect("client");
    let url = format!("https://{}/transport", server.addr);
    let body = client
        .get(&url)
        .send()
        .await
        .expect("https request")
        .text()
        .await
        .expect("body");
    assert_eq!(body, "Tls");

    // Plain HTTP on the TLS port gets no HTTP answer at all.
    let mut s = TcpStream::connect(server.addr).await.expect("connect");
    s.write_all(get_request("/").as_bytes())
        .await
        .expect("write");
    let answer = tokio::time::timeout(SOON, read_to_close(&mut s))
        .await
        .expect("closed soon");
    assert!(
        !String::from_utf8_lossy(&answer).contains("HTTP/1.1 200"),
        "plain HTTP was served on the TLS port"
    );

    // Without TLS the extension says Plain.
    let plain = start(limits()).await;
    let mut s = TcpStream::connect(plain.addr).await.expect("connect");
    assert_eq!(get_ok(&mut s, "/transport").await, "Plain");
    server.cancel.cancel();
    plain.cancel.cancel();
}

#[tokio::test]
async fn a_client_that_never_finishes_the_tls_handshake_is_closed_after_the_header_timeout() {
    let limits = Limits {
        header_timeout: Duration::from_millis(500),
        ..limits()
    };
    let (server, _, _dir) = start_tls(limits).await;
    let started = Instant::now();
    let mut s = TcpStream::connect(server.addr).await.expect("connect");
    // Half a ClientHello record header, then silence.
    s.write_all(&[0x16, 0x03]).await.expect("write");
    let answer = tokio::time::timeout(SOON, read_to_close(&mut s))
        .await
        .expect("closed within the header timeout");
    assert!(answer.is_empty(), "nothing is sent before the handshake");
    assert!(started.elapsed() >= Duration::from_millis(450));
    server.cancel.cancel();
}
