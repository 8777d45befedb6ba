//! The UDP side of a Shadowsocks inbound: decrypt each packet (classic: the peer's last user
//! first, then every user, each with their own cipher; SS-2022: the crate's EIH lookup), keep one association per client
//! (peer address + SS-2022 session id) with its own outbound socket, and encrypt replies back.
//!
//! UDP leaves through `freedom`, through a Shadowsocks outbound with `uot` set, or through a
//! portal (both UDP-over-TCP, see `uot`; the bridge sends it out through its own freedom);
//! `blackhole` drops it, as do Shadowsocks outbounds without `uot` (not supported). Every
//! datagram's destination goes through the destination policy (`Shared::route_datagram`).
//! Associations end after [`ASSOC_IDLE`] without traffic or when their user is removed; a port
//! keeps at most [`MAX_ASSOCS_PER_SOURCE`] per client address. The receive loop never waits on
//! a lookup or a dial: each association has its own task and a bounded queue.

use crate::inbound::{InboundRuntime, User};
use crate::outbound::{self, BoxIo};
use crate::route::{OutboundKind, OutboundRt};
use crate::stats::Meter;
use crate::uot;
use crate::{PortShared, Shared};
use bytes::BytesMut;
use shadowsocks::relay::socks5::Address;
use shadowsocks::relay::udprelay::crypto_io::{decrypt_client_payload, encrypt_server_payload};
use shadowsocks::relay::udprelay::options::UdpSocketControlData;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use tokio::io::{AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// An association without traffic for this long is closed.
pub(crate) const ASSOC_IDLE: Duration = Duration::from_secs(120);
/// Most associations one port keeps; new clients beyond this are dropped.
const MAX_ASSOCS: usize = 4096;
/// Most associations of one source address on one port: one client cannot take the table.
pub(crate) const MAX_ASSOCS_PER_SOURCE: usize = 64;
/// Datagrams queued for one association while it dials or sends; more are dropped.
const QUEUE: usize = 256;
const MAX_PACKET: usize = 65536;

type Key = (SocketAddr, u64);
type Table = Arc<Mutex<HashMap<Key, Arc<Assoc>>>>;

/// Where an association's datagrams go.
enum Sink {
    /// A UDP socket of our own (freedom).
    Direct(Arc<UdpSocket>),
    /// The write half of a UDP-over-TCP Shadowsocks stream.
    Uot(WriteHalf<BoxIo>),
}

/// One client datagram on its way out.
struct Datagram {
    addr: Address,
    payload: Vec<u8>,
}

/// One client's UDP session. The receive loop only decrypts and queues; the association's own
/// task routes, dials, resolves and sends, so no lookup or dial ever stalls the port.
struct Assoc {
    user: Arc<User>,
    queue: mpsc::Sender<Datagram>,
    /// Ends the association's tasks (idle, user removed, sink failed).
    done: CancellationToken,
    /// The client's address.
    peer: SocketAddr,
    client_session: u64,
    server_session: u64,
    packet_id: AtomicU64,
    /// SS-2022 packet-id replay window: (highest id, bitmap of the 64 ids below it).
    window: Mutex<Option<(u64, u64)>>,
    /// Milliseconds since `born` of the last packet either way.
    last: AtomicU64,
    born: Instant,
}

impl Assoc {
    fn new(
        user: Arc<User>,
        queue: mpsc::Sender<Datagram>,
        peer: SocketAddr,
        client_session: u64,
    ) -> Assoc {
        Assoc {
            done: user.token.child_token(),
            user,
            queue,
            peer,
            client_session,
            server_session: rand::random(),
            packet_id: AtomicU64::new(0),
            window: Mutex::new(None),
            last: AtomicU64::new(0),
            born: Instant::now(),
        }
    }

    /// Accepts SS-2022 packet id `id` once; replays and ids more than 64 behind are refused.
    fn accept_packet(&self, id: u64) -> bool {
        let mut w = self.window.lock().unwrap_or_else(PoisonError::into_inner);
        let Some((max, bits)) = w.as_mut() else {
            *w = Some((id, 1));
            return true;
        };
        if id > *max {
            let shift = id - *max;
            *bits = if shift >= 64 { 1 } else { (*bits << shift) | 1 };
            *max = id;
            return true;
        }
        let back = *max - id;
        if back >= 64 || *bits & (1 << back) != 0 {
            return false;
        }
        *bits |= 1 << back;
        true
    }

    fn touch(&self) {
        let ms = u64::try_from(self.born.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last.store(ms, Ordering::Relaxed);
    }

    fn idle(&self) -> Duration {
        let last = Duration::from_millis(self.last.load(Ordering::Relaxed));
        self.born.elapsed().saturating_sub(last)
    }
}

/// A decrypted client packet.
struct Packet {
    len: usize,
    addr: Address,
    user: Arc<User>,
    session: u64,
    /// SS-2022 packet id (0 for classic).
    packet_id: u64,
}

/// What the tasks of one association share with the port.
struct Port {
    rt: Arc<InboundRuntime>,
    shared: Arc<Shared>,
    server: Arc<UdpSocket>,
    table: Table,
}

/// Serves UDP on `socket` for the port's current inbound until `token` is cancelled.
pub(crate) async fn serve(
    socket: UdpSocket,
    port: Arc<PortShared>,
    shared: Arc<Shared>,
    token: CancellationToken,
) {
    let socket = Arc::new(socket);
    let table: Table = Arc::default();
    let mut buf = vec![0u8; MAX_PACKET];
    let mut plain = vec![0u8; MAX_PACKET];
    loop {
        let (n, peer) = tokio::select! {
            _ = token.cancelled() => return,
            r = socket.recv_from(&mut buf) => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::debug!(error = %e, "udp receive failed");
                    continue;
                }
            },
        };
        let rt = port.current();
        let Some(pkt) = decrypt(&rt, &shared, &table, peer, &buf[..n], &mut plain) else {
            continue;
        };
        if pkt.user.token.is_cancelled() {
            continue;
        }
        let ctx = || Port {
            rt: rt.clone(),
            shared: shared.clone(),
            server: socket.clone(),
            table: table.clone(),
        };
        let Some(assoc) = association(ctx, peer, &pkt) else {
            continue;
        };
        if rt.method.is_2022() && !assoc.accept_packet(pkt.packet_id) {
            tracing::debug!(inbound = %rt.tag, peer = %peer, "replayed SS-2022 packet dropped");
            continue;
        }
        assoc.touch();
        let datagram = Datagram {
            addr: pkt.addr,
            payload: plain[..pkt.len].to_vec(),
        };
        if assoc.queue.try_send(datagram).is_err() {
            tracing::debug!(inbound = %rt.tag, peer = %peer, "association queue full; datagram dropped");
        }
    }
}

/// Decrypts one packet into `plain`, identifying its user.
fn decrypt(
    rt: &InboundRuntime,
    shared: &Shared,
    table: &Table,
    peer: SocketAddr,
    packet: &[u8],
    plain: &mut [u8],
) -> Option<Packet> {
    let ctx = &shared.server_ctx;
    let n = packet.len();
    let ip = peer.ip();
    if rt.method.is_2022() {
        if !shared.limiter.allowed(ip) {
            return None;
        }
        plain[..n].copy_from_slice(packet);
        let manager = rt.manager.as_deref();
        let Ok((len, addr, control)) =
            decrypt_client_payload(ctx, rt.kind, &rt.server_key, &mut plain[..n], manager)
        else {
            shared.limiter.failed(ip);
            return None;
        };
        let control = control.unwrap_or_default();
        let user = rt.user_by_key(control.user.as_ref().map(|u| u.key()))?;
        return Some(Packet {
            len,
            addr,
            user,
            session: control.client_session_id,
            packet_id: control.packet_id,
        });
    }
    let last = {
        let map = table.lock().unwrap_or_else(PoisonError::into_inner);
        map.get(&(peer, 0)).map(|a| a.user.clone())
    };
    let scan = shared.limiter.allowed(ip);
    let candidates = last.iter().chain(rt.users.iter().filter(|_| scan)).cloned();
    for user in candidates {
        plain[..n].copy_from_slice(packet);
        if let Ok((len, addr, _)) =
            decrypt_client_payload(ctx, user.kind, &user.key, &mut plain[..n], None)
        {
            return Some(Packet {
                len,
                addr,
                user,
                session: 0,
                packet_id: 0,
            });
        }
    }
    shared.limiter.failed(ip);
    None
}

/// The association of `pkt`'s client; a new one is registered at once and its task started
/// (it dials in the background). `None` when the port or this source has too many.
fn association(port: impl FnOnce() -> Port, peer: SocketAddr, pkt: &Packet) -> Option<Arc<Assoc>> {
    let key = (peer, pkt.session);
    let port = {
        let port = port();
        let map = port.table.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(a) = map.get(&key).filter(|a| Arc::ptr_eq(&a.user, &pkt.user)) {
            return Some(a.clone());
        }
        if map.len() >= MAX_ASSOCS {
            return None;
        }
        let from_source = map.keys().filter(|(p, _)| p.ip() == peer.ip()).count();
        if from_source >= MAX_ASSOCS_PER_SOURCE && !map.contains_key(&key) {
            tracing::debug!(inbound = %port.rt.tag, peer = %peer, "too many UDP associations from this source");
            return None;
        }
        drop(map);
        port
    };
    let (tx, rx) = mpsc::channel(QUEUE);
    let assoc = Arc::new(Assoc::new(pkt.user.clone(), tx, peer, pkt.session));
    let replaced = {
        let mut map = port.table.lock().unwrap_or_else(PoisonError::into_inner);
        map.insert(key, assoc.clone())
    };
    if let Some(old) = replaced {
        old.done.cancel();
    }
    let sessions = port.shared.sessions.clone();
    sessions.spawn(run(assoc.clone(), rx, port, peer, pkt.addr.clone()));
    Some(assoc)
}

/// Opens the sink for an association whose first datagram goes to `first`, and the reader of
/// its replies for UDP-over-TCP.
async fn open_sink(
    port: &Port,
    first: &Address,
) -> Option<(Sink, Option<ReadHalf<BoxIo>>, Arc<OutboundRt>)> {
    let (rt, shared) = (&port.rt, &port.shared);
    let routed = shared.route_user(&rt.tag, first).await?;
    let out = routed.out.clone();
    let (sink, reader) = match &out.kind {
        OutboundKind::Freedom | OutboundKind::Blackhole => {
            let bind: SocketAddr = match routed.targets.first() {
                Some(sa) if sa.is_ipv6() => "[::]:0".parse().ok()?,
                _ => "0.0.0.0:0".parse().ok()?,
            };
            (
                Sink::Direct(Arc::new(UdpSocket::bind(bind).await.ok()?)),
                None,
            )
        }
        OutboundKind::Shadowsocks { config, uot: true } => {
            let magic = Address::DomainNameAddress(uot::MAGIC.to_owned(), 0);
            let dial = outbound::connect_shadowsocks(shared, config, &magic);
            let dialed = tokio::time::timeout(crate::DIAL_TIMEOUT, dial).await;
            out.health.record(matches!(dialed, Ok(Ok(_))));
            uot_sink(Box::new(dialed.ok()?.ok()?), first).await?
        }
        OutboundKind::Portal => {
            let magic = Address::DomainNameAddress(uot::MAGIC.to_owned(), 0);
            let open = shared.portals.open(&out.tag, &magic);
            let opened = tokio::time::timeout(crate::DIAL_TIMEOUT, open).await;
            uot_sink(Box::new(opened.ok()?.ok()?), first).await?
        }
        OutboundKind::Shadowsocks { uot: false, .. } => {
            tracing::debug!(inbound = %rt.tag, outbound = %out.tag, "no UDP through this outbound; dropped");
            return None;
        }
    };
    Some((sink, reader, out))
}

/// An association's life: open its sink, start its replies, send its queued datagrams.
async fn run(
    assoc: Arc<Assoc>,
    mut queue: mpsc::Receiver<Datagram>,
    port: Port,
    peer: SocketAddr,
    first: Address,
) {
    let opened = tokio::select! {
        _ = assoc.done.cancelled() => None,
        r = open_sink(&port, &first) => r,
    };
    if let Some((mut sink, reader, out)) = opened {
        let mut meter = Meter::default().with(&port.rt.traffic).with(&out.traffic);
        if let Some(t) = &assoc.user.traffic {
            meter = meter.with(t);
        }
        let reply_socket = match &sink {
            Sink::Direct(s) => Some(s.clone()),
            Sink::Uot(_) => None,
        };
        port.shared.sessions.spawn(replies(
            assoc.clone(),
            reply_socket,
            reader,
            meter.clone(),
            port.shared.clone(),
            port.server.clone(),
        ));
        loop {
            let datagram = tokio::select! {
                _ = assoc.done.cancelled() => break,
                d = queue.recv() => match d {
                    Some(d) => d,
                    None => break,
                },
            };
            match send(&mut sink, &port, &datagram).await {
                Ok(true) => meter.up(datagram.payload.len()),
                Ok(false) => {}
                Err(e) => {
                    tracing::debug!(inbound = %port.rt.tag, error = %e, "UDP send failed");
                    if matches!(sink, Sink::Uot(_)) {
                        break;
                    }
                }
            }
        }
    }
    assoc.done.cancel();
    let mut map = port.table.lock().unwrap_or_else(PoisonError::into_inner);
    let key = (peer, assoc.client_session);
    if map.get(&key).is_some_and(|a| Arc::ptr_eq(a, &assoc)) {
        map.remove(&key);
    }
}

/// Sends one client datagram on its way, if the destination policy lets it go. `Ok(false)`:
/// refused.
async fn send(sink: &mut Sink, port: &Port, d: &Datagram) -> std::io::Result<bool> {
    let Some(routed) = port.shared.route_datagram(&port.rt.tag, &d.addr).await else {
        return Ok(false);
    };
    match sink {
        Sink::Direct(socket) => {
            let Some(target) = routed.targets.first() else {
                return Ok(false);
            };
            socket.send_to(&d.payload, target).await?;
        }
        Sink::Uot(w) => {
            w.write_all(&uot::frame(&d.addr, &d.payload)).await?;
            w.flush().await?;
        }
    }
    Ok(true)
}

/// Starts a UDP-over-TCP stream whose first datagram goes to `first`: its write half becomes the
/// association's sink, its read half brings the replies.
async fn uot_sink(mut stream: BoxIo, first: &Address) -> Option<(Sink, Option<ReadHalf<BoxIo>>)> {
    stream.write_all(&uot::request(first)).await.ok()?;
    let (r, w) = tokio::io::split(stream);
    Some((Sink::Uot(w), Some(r)))
}

/// Relays replies of one association back to its client until idle or cancelled.
async fn replies(
    assoc: Arc<Assoc>,
    socket: Option<Arc<UdpSocket>>,
    mut uot_reader: Option<ReadHalf<BoxIo>>,
    meter: Meter,
    shared: Arc<Shared>,
    server: Arc<UdpSocket>,
) {
    let peer_key = assoc.client_session;
    let mut buf = vec![0u8; MAX_PACKET];
    let mut out = BytesMut::with_capacity(MAX_PACKET + 1024);
    loop {
        let receive = async {
            match (&socket, uot_reader.as_mut()) {
                (None, Some(r)) => {
                    let mut frame = Vec::new();
                    let addr = uot::read_frame(r, None, &mut frame).await?;
                    let n = frame.len().min(buf.len());
                    buf[..n].copy_from_slice(&frame[..n]);
                    Ok((n, addr))
                }
                (Some(socket), _) => socket
                    .recv_from(&mut buf)
                    .await
                    .map(|(n, from)| (n, Address::SocketAddress(from))),
                _ => Err(std::io::Error::other("no reply path")),
            }
        };
        let received = tokio::select! {
            _ = assoc.done.cancelled() => break,
            r = tokio::time::timeout(ASSOC_IDLE, receive) => r,
        };
        let (n, from) = match received {
            Ok(Ok(x)) => x,
            Ok(Err(_)) => break,
            Err(_) if assoc.idle() >= ASSOC_IDLE => break,
            Err(_) => continue,
        };
        assoc.touch();
        let mut control = UdpSocketControlData::default();
        control.client_session_id = peer_key;
        control.server_session_id = assoc.server_session;
        control.packet_id = assoc.packet_id.fetch_add(1, Ordering::Relaxed) + 1;
        out.clear();
        let ctx = &shared.server_ctx;
        encrypt_server_payload(
            ctx,
            assoc.user.kind,
            &assoc.user.key,
            &from,
            &control,
            &buf[..n],
            &mut out,
        );
        if server.send_to(&out, assoc.peer).await.is_ok() {
            meter.down(n);
        }
    }
    assoc.done.cancel();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packet_window_refuses_replays_and_stale_ids() {
        let user = Arc::new(User {
            email: None,
            key: Box::default(),
            kind: shadowsocks::crypto::CipherKind::AES_128_GCM,
            traffic: None,
            token: CancellationToken::new(),
        });
        let (tx, _rx) = mpsc::channel(1);
        let peer: SocketAddr = "127.0.0.1:1".parse().expect("addr");
        let assoc = Assoc::new(user, tx, peer, 1);
        let seen: Vec<bool> = [1, 2, 2, 5, 3, 3, 100, 36, 37, 35, 200]
            .iter()
            .map(|&id| assoc.accept_packet(id))
            .collect();
        assert_eq!(
            seen,
            [true, true, false, true, true, false, true, false, true, false, true]
        );
    }
}
