//! A fault-injecting TCP proxy for the channel between the manager and a node.
//!
//! [`FaultProxy`] listens on 127.0.0.1 and forwards every connection to a target port on
//! 127.0.0.1, byte for byte: the channel is TLS with a pinned certificate, so the proxy never
//! sees a request or a reply in clear, only who speaks when. It passes the target's first flight
//! on each connection unchanged (for TLS, the server's handshake) and applies the current
//! [`Fault`] to everything the target sends after the client has spoken again: the replies.
//!
//! The fault is switchable while the proxy runs. A switch ends every open connection, so a
//! pooled keep-alive connection cannot carry on in the old mode: each connection lives in one
//! mode, the one in force when it was accepted. Per mode the proxy counts the connections it
//! accepted and the connections on which the fault acted on a reply ([`FaultProxy::hits`]), so a
//! test can wait until a fault was really exercised instead of sleeping.

use crate::net::LOCALHOST;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch, Notify};

/// What the proxy does to the replies of the connections it accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Forward both directions unchanged.
    Pass,
    /// Forward the client's bytes but never a reply byte: the target answers, the client never
    /// hears it. The connection stays open until the client gives up (or the connection bound).
    DropReplies,
    /// Forward the first `after` reply bytes, then close both sides.
    CutReplies { after: usize },
    /// Hold every reply byte for `ms` milliseconds before forwarding it.
    Delay { ms: u64 },
}

impl Fault {
    /// The index of this fault's kind in the per-mode counters.
    fn kind(self) -> usize {
        match self {
            Fault::Pass => 0,
            Fault::DropReplies => 1,
            Fault::CutReplies { .. } => 2,
            Fault::Delay { .. } => 3,
        }
    }
}

/// Connections the proxy accepts in all before it stops listening.
const MAX_CONNECTIONS: usize = 10_000;
/// Longest life of one proxied connection.
const CONNECTION_BOUND: Duration = Duration::from_secs(60);
/// Request times kept (the most recent ones).
const REQUEST_LOG: usize = 4096;

#[derive(Default)]
struct Counters {
    /// Connections accepted, per fault kind.
    connections: [AtomicU64; 4],
    /// Connections on which the fault acted on a reply, per fault kind.
    hits: [AtomicU64; 4],
    /// Unix ms of every client chunk that followed the target's first flight (requests, for
    /// TLS), most recent last.
    requests: Mutex<VecDeque<u64>>,
}

/// A fault-injecting TCP proxy on 127.0.0.1 in front of 127.0.0.1:`target`; stops when dropped.
pub struct FaultProxy {
    /// The port it listens on.
    pub port: u16,
    mode: watch::Sender<Fault>,
    counters: Arc<Counters>,
    acceptor: tokio::task::JoinHandle<()>,
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.acceptor.abort();
        // Ends the open connections too: each one watches the mode.
        self.mode.send_replace(Fault::Pass);
    }
}

impl FaultProxy {
    /// Listens on a free port of 127.0.0.1 and forwards to 127.0.0.1:`target` in [`Fault::Pass`].
    pub async fn start(target: u16) -> FaultProxy {
        let listener = TcpListener::bind((LOCALHOST, 0))
            .await
            .expect("bind the fault proxy");
        let port = listener.local_addr().expect("proxy address").port();
        let (mode, _) = watch::channel(Fault::Pass);
        let counters = Arc::new(Counters::default());
        let (modes, c) = (mode.clone(), counters.clone());
        let acceptor = tokio::spawn(async move {
            for _ in 0..MAX_CONNECTIONS {
                let Ok((client, _)) = listener.accept().await else {
                    return;
                };
                // The mode in force now is this connection's; the next switch ends it.
                let switched = modes.subscribe();
                let fault = *switched.borrow();
                c.connections[fault.kind()].fetch_add(1, Ordering::SeqCst);
                tokio::spawn(serve(client, target, fault, switched, c.clone()));
            }
        });
        FaultProxy {
            port,
            mode,
            counters,
            acceptor,
        }
    }

    /// Switches to `fault` for new connections and ends the open ones.
    pub fn set(&self, fault: Fault) {
        self.mode.send_replace(fault);
    }

    /// The fault in force.
    pub fn mode(&self) -> Fault {
        *self.mode.borrow()
    }

    /// Connections accepted so far while `fault`'s kind was in force (parameters ignored).
    pub fn connections(&self, fault: Fault) -> u64 {
        self.counters.connections[fault.kind()].load(Ordering::SeqCst)
    }

    /// Connections on which `fault`'s kind acted on a reply so far: a reply dropped, cut or
    /// delayed (for [`Fault::Pass`], a reply forwarded).
    pub fn hits(&self, fault: Fault) -> u64 {
        self.counters.hits[fault.kind()].load(Ordering::SeqCst)
    }

    /// Unix ms of the client chunks that followed the target's first flight on their
    /// connection (for TLS: the requests), oldest first; the last 4096 at most.
    pub fn request_times(&self) -> Vec<u64> {
        let log = self.counters.requests.lock().expect("request log");
        log.iter().copied().collect()
    }
}

fn unix_ms() -> u64 {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970");
    u64::try_from(since.as_millis()).expect("unix ms fit in u64")
}

/// What the reader of the target's side hands to the writer of the client's side.
enum Out {
    /// Bytes to write once the instant has come.
    Bytes(Instant, Vec<u8>),
    /// The target closed: close the client's write side.
    Eof,
    /// Cut: end the whole connection.
    Close,
}

/// Proxies one connection in `fault` until either side is done, the fault cuts it, the mode
/// switches or [`CONNECTION_BOUND`] passes.
async fn serve(
    client: TcpStream,
    target: u16,
    fault: Fault,
    mut switched: watch::Receiver<Fault>,
    counters: Arc<Counters>,
) {
    let Ok(node) = TcpStream::connect((LOCALHOST, target)).await else {
        return; // the client sees the connection closed, as if the target were down
    };
    let (mut client_r, mut client_w) = client.into_split();
    let (mut node_r, mut node_w) = node.into_split();
    // The target has sent its first flight; the client has spoken since: the target now replies.
    let (node_spoke, replying) = (AtomicBool::new(false), AtomicBool::new(false));
    let cut = Notify::new();
    let (tx, mut rx) = mpsc::unbounded_channel::<Out>();

    let upstream = async {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let n = match client_r.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            if node_spoke.load(Ordering::SeqCst) {
                replying.store(true, Ordering::SeqCst);
                let mut log = counters.requests.lock().expect("request log");
                if log.len() == REQUEST_LOG {
                    log.pop_front();
                }
                log.push_back(unix_ms());
            }
            if node_w.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
        let _ = node_w.shutdown().await;
    };

    let downstream = async {
        let mut buf = vec![0u8; 16 * 1024];
        let mut hit = false;
        let mut forwarded = 0usize;
        loop {
            let n = match node_r.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            node_spoke.store(true, Ordering::SeqCst);
            let now = Instant::now();
            if !replying.load(Ordering::SeqCst) {
                let _ = tx.send(Out::Bytes(now, buf[..n].to_vec()));
                continue;
            }
            // Counted once per connection, when the fault first acts on a reply (for a cut:
            // when bytes are held back).
            let cuts = matches!(fault, Fault::CutReplies { after } if forwarded + n > after);
            if !hit && (cuts || !matches!(fault, Fault::CutReplies { .. })) {
                hit = true;
                counters.hits[fault.kind()].fetch_add(1, Ordering::SeqCst);
            }
            match fault {
                Fault::Pass => {
                    let _ = tx.send(Out::Bytes(now, buf[..n].to_vec()));
                }
                Fault::DropReplies => {}
                Fault::CutReplies { after } => {
                    let keep = n.min(after - forwarded);
                    forwarded += keep;
                    if keep > 0 {
                        let _ = tx.send(Out::Bytes(now, buf[..keep].to_vec()));
                    }
                    if keep < n {
                        let _ = tx.send(Out::Close);
                        return;
                    }
                }
                Fault::Delay { ms } => {
                    let at = now + Duration::from_millis(ms);
                    let _ = tx.send(Out::Bytes(at, buf[..n].to_vec()));
                }
            }
        }
        let _ = tx.send(Out::Eof);
    };

    // Writes what the target's side forwards, each chunk at its instant, in order.
    let writer = async {
        while let Some(out) = rx.recv().await {
            match out {
                Out::Bytes(at, bytes) => {
                    tokio::time::sleep_until(at.into()).await;
                    if client_w.write_all(&bytes).await.is_err() {
                        break;
                    }
                }
                Out::Eof => {
                    let _ = client_w.shutdown().await;
                    break;
                }
                Out::Close => {
                    cut.notify_one();
                    break;
                }
            }
        }
    };

    tokio::select! {
        _ = async { tokio::join!(upstream, downstream, writer) } => {}
        _ = cut.notified() => {}
        _ = switched.changed() => {}
        _ = tokio::time::sleep(CONNECTION_BOUND) => {}
    }
    // Dropping the halves closes both sockets.
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A server on 127.0.0.1 that greets each connection with `hello\n` (its first flight), then
    /// answers every byte it reads with `answer` bytes.
    async fn greeting_server(answer: usize) -> u16 {
        let listener = TcpListener::bind((LOCALHOST, 0)).await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        tokio::spawn(async move {
            for _ in 0..100 {
                let Ok((mut s, _)) = listener.accept().await else {
                    return;
                };
                tokio::spawn(async move {
                    if s.write_all(b"hello\n").await.is_err() {
                        return;
                    }
                    let mut buf = [0u8; 1];
                    for _ in 0..100 {
                        match s.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(_) => {
                                if s.write_all(&vec![b'x'; answer]).await.is_err() {
                                    return;
                                }
                            }
                        }
                    }
                });
            }
        });
        port
    }

    /// Connects through the proxy, reads the greeting, asks once and reads for at most `wait`:
    /// returns the answer bytes and whether the connection was closed.
    async fn ask(port: u16, wait: Duration) -> (usize, bool) {
        let mut s = TcpStream::connect((LOCALHOST, port))
            .await
            .expect("connect");
        let mut hello = [0u8; 6];
        s.read_exact(&mut hello).await.expect("greeting");
        assert_eq!(&hello, b"hello\n");
        s.write_all(b"?").await.expect("ask");
        read_for(&mut s, wait).await
    }

    /// Reads from `s` for at most `wait`: the bytes read and whether it was closed.
    async fn read_for(s: &mut TcpStream, wait: Duration) -> (usize, bool) {
        let deadline = tokio::time::Instant::now() + wait;
        let mut got = 0;
        let mut buf = [0u8; 4096];
        loop {
            match tokio::time::timeout_at(deadline, s.read(&mut buf)).await {
                Err(_) => return (got, false),
                Ok(Ok(0) | Err(_)) => return (got, true),
                Ok(Ok(n)) => got += n,
            }
        }
    }

    #[tokio::test]
    async fn pass_forwards_the_whole_reply() {
        let proxy = FaultProxy::start(greeting_server(100_000).await).await;
        let (got, _) = ask(proxy.port, Duration::from_millis(500)).await;
        assert_eq!(got, 100_000);
        assert_eq!(
            (proxy.connections(Fault::Pass), proxy.hits(Fault::Pass)),
            (1, 1)
        );
        assert_eq!(proxy.request_times().len(), 1);
    }

    #[tokio::test]
    async fn dropped_replies_never_arrive_and_are_counted() {
        let proxy = FaultProxy::start(greeting_server(1000).await).await;
        proxy.set(Fault::DropReplies);
        let (got, closed) = ask(proxy.port, Duration::from_millis(300)).await;
        assert_eq!(
            (got, closed),
            (0, false),
            "the greeting passes, the reply not"
        );
        assert_eq!(proxy.hits(Fault::DropReplies), 1);
        assert_eq!(proxy.hits(Fault::Pass), 0);
    }

    #[tokio::test]
    async fn cut_replies_end_after_the_given_bytes() {
        let proxy = FaultProxy::start(greeting_server(1000).await).await;
        proxy.set(Fault::CutReplies { after: 300 });
        let (got, closed) = ask(proxy.port, Duration::from_secs(2)).await;
        assert_eq!((got, closed), (300, true));
        assert_eq!(proxy.hits(Fault::CutReplies { after: 0 }), 1);
    }

    #[tokio::test]
    async fn delayed_replies_arrive_whole_and_late() {
        let proxy = FaultProxy::start(greeting_server(1000).await).await;
        proxy.set(Fault::Delay { ms: 300 });
        let mut s = TcpStream::connect((LOCALHOST, proxy.port))
            .await
            .expect("connect");
        let mut hello = [0u8; 6];
        s.read_exact(&mut hello).await.expect("greeting");
        let asked = Instant::now();
        s.write_all(b"?").await.expect("ask");
        let (early, closed) = read_for(&mut s, Duration::from_millis(150)).await;
        assert_eq!((early, closed), (0, false), "nothing before the delay");
        let mut answer = vec![0u8; 1000];
        s.read_exact(&mut answer).await.expect("the whole reply");
        assert!(asked.elapsed() >= Duration::from_millis(300));
        assert_eq!(proxy.hits(Fault::Delay { ms: 0 }), 1);
    }

    #[tokio::test]
    async fn a_switch_ends_the_open_connections() {
        let proxy = FaultProxy::start(greeting_server(10).await).await;
        let mut s = TcpStream::connect((LOCALHOST, proxy.port))
            .await
            .expect("connect");
        let mut hello = [0u8; 6];
        s.read_exact(&mut hello).await.expect("greeting");
        proxy.set(Fault::DropReplies);
        let (got, closed) = read_for(&mut s, Duration::from_secs(2)).await;
        assert_eq!((got, closed), (0, true));
        assert_eq!(proxy.mode(), Fault::DropReplies);
        // A new connection is in the new mode.
        let (got, _) = ask(proxy.port, Duration::from_millis(200)).await;
        assert_eq!(got, 0);
        assert_eq!(proxy.connections(Fault::DropReplies), 1);
    }
}
