//! The TCP side of a Shadowsocks inbound: accept, identify the user (classic key trial with the
//! per-IP hint, or SS-2022 EIH through the crate), read the target, route, dial, relay.
//!
//! A peer that does not authenticate (too few bytes, no matching user, a replayed salt) is
//! never answered: it is read and ignored until it closes or a randomised deadline
//! ([`DRAIN_MIN`](crate::DRAIN_MIN) plus up to [`DRAIN_SPREAD`](crate::DRAIN_SPREAD) after
//! accept), the same whatever it sent.

use crate::inbound::{InboundRuntime, User};
use crate::io::{drain, Prefixed, WriteStable, CLASSIC_CHUNK, SS2022_CHUNK};
use crate::outbound;
use crate::stats::Meter;
use crate::uot;
use crate::{PortShared, Shared};
use shadowsocks::relay::socks5::Address;
use shadowsocks::relay::tcprelay::ProxyServerStream;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

/// An authenticated client stream, safe to write from generic code.
type ClientStream = WriteStable<ProxyServerStream<Prefixed<TcpStream>>>;

/// Why a connection is not served.
enum Refused {
    /// The peer went away or broke the protocol after authenticating: just close.
    Close,
    /// The peer is unknown: read and drop for a while, then close.
    Drain(Prefixed<TcpStream>),
}

/// Accepts connections on `listener` for the port's current inbound until `token` is cancelled.
pub(crate) async fn serve(
    listener: TcpListener,
    port: Arc<PortShared>,
    shared: Arc<Shared>,
    token: CancellationToken,
) {
    loop {
        let (stream, peer) = tokio::select! {
            _ = token.cancelled() => return,
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let rt = port.current();
        let shared = shared.clone();
        let sessions = shared.sessions.clone();
        sessions.spawn(async move { handle(stream, peer, rt, shared).await });
    }
}

/// When a connection accepted now is closed if it never authenticates.
fn drain_deadline() -> tokio::time::Instant {
    let spread = crate::DRAIN_SPREAD.mul_f64(rand::random::<f64>());
    tokio::time::Instant::now() + crate::DRAIN_MIN + spread
}

async fn handle(stream: TcpStream, peer: SocketAddr, rt: Arc<InboundRuntime>, shared: Arc<Shared>) {
    let _ = stream.set_nodelay(true);
    // One deadline for everything a peer that does not authenticate can see: a short probe
    // waiting for more bytes, a probe that failed identification and a replay are all read
    // and ignored until the peer closes or this deadline, never answered.
    let deadline = drain_deadline();
    let auth = async {
        if rt.method.is_2022() {
            authenticate_2022(stream, peer, &rt, &shared).await
        } else {
            authenticate_classic(stream, peer, &rt, &shared).await
        }
    };
    let result = tokio::select! {
        _ = rt.token.cancelled() => return,
        r = tokio::time::timeout_at(deadline, auth) => match r {
            Ok(r) => r,
            Err(_) => Err(Refused::Close),
        },
    };
    let (client, user, addr) = match result {
        Ok(x) => x,
        Err(Refused::Close) => return,
        Err(Refused::Drain(s)) => {
            tracing::debug!(inbound = %rt.tag, peer = %peer, "unknown client refused");
            let held = shared.draining.fetch_add(1, Ordering::Relaxed);
            if held < crate::MAX_DRAINING {
                tokio::select! {
                    _ = rt.token.cancelled() => {}
                    _ = drain(s, deadline) => {}
                }
            }
            shared.draining.fetch_sub(1, Ordering::Relaxed);
            return;
        }
    };
    serve_client(client, user, addr, peer, &rt, &shared).await;
}

async fn serve_client(
    client: ClientStream,
    user: Arc<User>,
    addr: Address,
    peer: SocketAddr,
    rt: &InboundRuntime,
    shared: &Arc<Shared>,
) {
    if user.token.is_cancelled() {
        return;
    }
    // What this connection's payload counts towards wherever it goes: the inbound and the user.
    let mut entry = Meter::default().with(&rt.traffic);
    if let Some(t) = &user.traffic {
        entry = entry.with(t);
    }
    if uot::is_uot(&addr) {
        if let Err(e) = uot::serve(client, &rt.tag, entry, &user.token, shared).await {
            tracing::debug!(inbound = %rt.tag, error = %e, "UDP-over-TCP stream ended");
        }
        return;
    }
    // A bridge registering its tunnel: only on an inbound that a rule sends straight to that
    // portal, and only with the inbound's own key (never as a named user).
    if let Address::DomainNameAddress(host, _) = &addr {
        if let Some(portal) = shared.router().portal_for(&rt.tag, host) {
            if user.email.is_none() {
                shared
                    .portals
                    .serve_tunnel(&portal.tag, client, user.token.clone(), &rt.tag, peer)
                    .await;
                return;
            }
        }
    }
    let Some(routed) = shared.route_user(&rt.tag, &addr).await else {
        return;
    };
    let dialed = tokio::select! {
        _ = user.token.cancelled() => return,
        r = outbound::dial(shared, &routed, &addr) => r,
    };
    let target = match dialed {
        Ok(Some(t)) => t,
        Ok(None) => return,
        Err(e) => {
            tracing::debug!(inbound = %rt.tag, outbound = %routed.out.tag, target = %addr, error = %e, "dial failed");
            return;
        }
    };
    let meter = entry.with(&routed.out.traffic);
    let chunk = if rt.method.is_2022() {
        SS2022_CHUNK
    } else {
        CLASSIC_CHUNK
    };
    outbound::relay(client, target, meter, &user.token, chunk).await;
}

async fn authenticate_classic(
    mut stream: TcpStream,
    peer: SocketAddr,
    rt: &InboundRuntime,
    shared: &Shared,
) -> Result<(ClientStream, Arc<User>, Address), Refused> {
    // Enough for the longest salt of the port's ciphers and the first length chunk: every
    // classic client sends at least that much (salt, length, and its request header) unasked.
    let mut probe = vec![0u8; rt.probe_len];
    if stream.read_exact(&mut probe).await.is_err() {
        return Err(Refused::Close);
    }
    let ip = peer.ip();
    let hint = shared.hints.get(&rt.tag, ip);
    let scan = shared.limiter.allowed(ip);
    let Some(user) = rt.identify_classic(&probe, hint.as_deref(), scan) else {
        shared.limiter.failed(ip);
        return Err(Refused::Drain(Prefixed::new(Vec::new(), stream)));
    };
    if !shared.salts.insert(&probe[..user.kind.salt_len()]) {
        tracing::warn!(inbound = %rt.tag, peer = %peer, "replayed salt refused");
        return Err(Refused::Drain(Prefixed::new(Vec::new(), stream)));
    }
    if let Some(email) = &user.email {
        shared.hints.set(&rt.tag, ip, email.clone());
    }
    let ctx = shared.server_ctx.clone();
    let mut ss =
        ProxyServerStream::from_stream(ctx, Prefixed::new(probe, stream), user.kind, &user.key);
    let addr = ss.handshake().await.map_err(|_| Refused::Close)?;
    Ok((WriteStable::new(ss, CLASSIC_CHUNK), user, addr))
}

async fn authenticate_2022(
    stream: TcpStream,
    peer: SocketAddr,
    rt: &InboundRuntime,
    shared: &Shared,
) -> Result<(ClientStream, Arc<User>, Address), Refused> {
    let ip = peer.ip();
    let stream = Prefixed::new(Vec::new(), stream);
    if !shared.limiter.allowed(ip) {
        return Err(Refused::Drain(stream));
    }
    let ctx = shared.server_ctx.clone();
    let mut ss = ProxyServerStream::from_stream_with_user_manager(
        ctx,
        stream,
        rt.kind,
        &rt.server_key,
        rt.manager.clone(),
    );
    let addr = match ss.handshake().await {
        Ok(a) => a,
        Err(e) => {
            tracing::debug!(inbound = %rt.tag, peer = %peer, error = %e, "SS-2022 handshake failed");
            shared.limiter.failed(ip);
            return Err(Refused::Drain(ss.into_inner()));
        }
    };
    let Some(user) = rt.user_by_key(ss.user_key()) else {
        return Err(Refused::Drain(ss.into_inner()));
    };
    Ok((WriteStable::new(ss, SS2022_CHUNK), user, addr))
}
