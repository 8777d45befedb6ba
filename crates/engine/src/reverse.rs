//! Reverse tunnels: a bridge (node side) dials its Shadowsocks outbound to the portal's domain
//! and serves yamux streams from the portal; a portal (manager side) takes that connection on an
//! inbound and opens one yamux stream per client stream routed to it.
//!
//! Wire format: after the Shadowsocks request (target `sN.reverse.proxy:0`) the bridge sends the
//! 4-byte hello [`HELLO`]; then yamux runs over the stream, the portal being the yamux client.
//! Each yamux stream starts with the SOCKS5-encoded target address. Both ends wrap the crate
//! stream in `WriteStable` because yamux's `Framed` changes its buffer between retries.
//!
//! Counters: a bridged stream bumps its outbound's counters and `inbound>>>{bridge tag}>>>…`, so
//! a node's inbound counters cover everything it carries (relay hop, reverse, remote).

use crate::io::SS2022_CHUNK;
use crate::outbound::{self, Io};
use crate::route::OutboundKind;
use crate::stats::Meter;
use crate::uot;
use crate::Shared;
use futures::StreamExt;
use shadowsocks::relay::socks5::Address;
use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;
use tokio_yamux::{Config as YamuxConfig, Control, Session, StreamHandle};

/// First bytes a bridge sends inside its Shadowsocks stream.
pub(crate) const HELLO: &[u8; 4] = b"RVS1";
/// First delay before a bridge redials; doubled up to [`BACKOFF_MAX`].
pub(crate) const BACKOFF_MIN: Duration = Duration::from_millis(200);
/// Longest delay between bridge dials.
pub(crate) const BACKOFF_MAX: Duration = Duration::from_secs(10);

fn yamux_config() -> YamuxConfig {
    YamuxConfig {
        keepalive_interval: Duration::from_secs(10),
        connection_write_timeout: Duration::from_secs(20),
        max_stream_window_size: 4 * 1024 * 1024,
        ..YamuxConfig::default()
    }
}

struct Tunnel {
    generation: u64,
    control: Control,
    token: CancellationToken,
    /// Where the bridge connected from.
    peer: SocketAddr,
}

/// The bridge tunnels currently connected, by portal tag.
#[derive(Default)]
pub(crate) struct Portals {
    tunnels: Mutex<HashMap<String, Tunnel>>,
    next: AtomicU64,
}

impl Portals {
    /// Is a bridge connected to portal `tag`?
    pub(crate) fn is_up(&self, tag: &str) -> bool {
        let map = self.tunnels.lock().unwrap_or_else(PoisonError::into_inner);
        map.contains_key(tag)
    }

    /// Tags of the portals whose bridge is connected now, sorted.
    pub(crate) fn connected(&self) -> Vec<String> {
        let map = self.tunnels.lock().unwrap_or_else(PoisonError::into_inner);
        let mut tags: Vec<String> = map.keys().cloned().collect();
        tags.sort();
        tags
    }

    /// Opens a stream to `addr` through portal `tag`'s tunnel.
    pub(crate) async fn open(&self, tag: &str, addr: &Address) -> io::Result<StreamHandle> {
        let control = {
            let map = self.tunnels.lock().unwrap_or_else(PoisonError::into_inner);
            map.get(tag).map(|t| t.control.clone())
        };
        let mut control = control.ok_or_else(|| {
            io::Error::new(io::ErrorKind::NotConnected, "no bridge connected to portal")
        })?;
        let mut stream = control
            .open_stream()
            .await
            .map_err(|e| io::Error::new(io::ErrorKind::ConnectionAborted, format!("{e:?}")))?;
        let mut header = Vec::with_capacity(addr.serialized_len());
        addr.write_to_buf(&mut header);
        stream.write_all(&header).await?;
        Ok(stream)
    }

    /// Closes tunnels of portals that `keep` does not name.
    pub(crate) fn retain(&self, keep: &dyn Fn(&str) -> bool) {
        let mut map = self.tunnels.lock().unwrap_or_else(PoisonError::into_inner);
        map.retain(|tag, t| {
            let kept = keep(tag);
            if !kept {
                t.token.cancel();
            }
            kept
        });
    }

    /// Runs a bridge's connection as portal `tag`'s tunnel until it dies or `token` is
    /// cancelled. The caller has checked that the connection authenticated with the key of
    /// `inbound`, the inbound a rule sends straight to this portal (`Router::portal_for`), so
    /// only the bridge holding that key can get here; a new tunnel from it replaces the old one
    /// (a bridge that redials after a network change), logged when it comes from another address.
    pub(crate) async fn serve_tunnel<S: Io + 'static>(
        &self,
        tag: &str,
        mut stream: S,
        token: CancellationToken,
        inbound: &str,
        peer: SocketAddr,
    ) {
        let mut hello = [0u8; 4];
        let read = tokio::time::timeout(crate::HANDSHAKE_TIMEOUT, stream.read_exact(&mut hello));
        if !matches!(read.await, Ok(Ok(_))) || &hello != HELLO {
            tracing::warn!(portal = tag, inbound, peer = %peer, "bridge connection without a valid hello");
            return;
        }
        let mut session = Session::new_client(stream, yamux_config());
        let generation = self.next.fetch_add(1, Ordering::Relaxed);
        let token = token.child_token();
        {
            let mut map = self.tunnels.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(old) = map.insert(
                tag.to_owned(),
                Tunnel {
                    generation,
                    control: session.control(),
                    token: token.clone(),
                    peer,
                },
            ) {
                if old.peer.ip() != peer.ip() {
                    tracing::warn!(portal = tag, inbound, old = %old.peer, new = %peer, "bridge tunnel replaced by a connection from another address");
                }
                old.token.cancel();
            }
        }
        tracing::info!(portal = tag, inbound, peer = %peer, generation, "bridge connected");
        loop {
            tokio::select! {
                _ = token.cancelled() => break,
                next = session.next() => match next {
                    // The bridge does not open streams towards us.
                    Some(Ok(handle)) => drop(handle),
                    Some(Err(e)) => {
                        tracing::info!(portal = tag, error = %e, "bridge tunnel failed");
                        break;
                    }
                    None => break,
                },
            }
        }
        let mut map = self.tunnels.lock().unwrap_or_else(PoisonError::into_inner);
        if map.get(tag).is_some_and(|t| t.generation == generation) {
            map.remove(tag);
        }
        tracing::info!(portal = tag, generation, "bridge disconnected");
    }
}

/// Runs bridge `tag`: keeps one tunnel to the server of the outbound its `domain` routes to,
/// redialing with backoff, until `token` is cancelled.
pub(crate) async fn run_bridge(
    shared: Arc<Shared>,
    tag: String,
    domain: String,
    token: CancellationToken,
) {
    let mut backoff = BACKOFF_MIN;
    while !token.is_cancelled() {
        match bridge_once(&shared, &tag, &domain, &token).await {
            Ok(()) => backoff = BACKOFF_MIN,
            Err(e) => tracing::debug!(bridge = %tag, error = %e, "bridge dial failed"),
        }
        tokio::select! {
            _ = token.cancelled() => return,
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

/// One tunnel's life. `Ok` when it was established (and has now ended).
async fn bridge_once(
    shared: &Arc<Shared>,
    tag: &str,
    domain: &str,
    token: &CancellationToken,
) -> io::Result<()> {
    let target = Address::DomainNameAddress(domain.to_owned(), 0);
    let out = shared
        .route(tag, &target)
        .ok_or_else(|| io::Error::other("bridge domain routes nowhere"))?;
    let OutboundKind::Shadowsocks { config, .. } = &out.kind else {
        return Err(io::Error::other(
            "bridge domain must route to a shadowsocks outbound",
        ));
    };
    let connect = outbound::connect_shadowsocks(shared, config, &target);
    let mut stream = tokio::time::timeout(crate::DIAL_TIMEOUT, connect)
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "bridge dial timed out"))??;
    stream.write_all(HELLO).await?;
    stream.flush().await?;
    let mut session = Session::new_server(stream, yamux_config());
    tracing::info!(bridge = tag, outbound = %out.tag, "bridge tunnel up");
    loop {
        tokio::select! {
            _ = token.cancelled() => return Ok(()),
            next = session.next() => match next {
                Some(Ok(handle)) => {
                    let shared = shared.clone();
                    let tag = tag.to_owned();
                    let token = token.clone();
                    let sessions = shared.sessions.clone();
                    sessions.spawn(async move { serve_bridged(shared, tag, handle, token).await });
                }
                Some(Err(e)) => {
                    tracing::info!(bridge = tag, error = %e, "bridge tunnel failed");
                    return Ok(());
                }
                None => return Ok(()),
            },
        }
    }
}

/// One stream sent by the portal: read its target, route it from the bridge, relay.
async fn serve_bridged(
    shared: Arc<Shared>,
    tag: String,
    mut handle: StreamHandle,
    token: CancellationToken,
) {
    let addr = tokio::time::timeout(crate::HANDSHAKE_TIMEOUT, Address::read_from(&mut handle));
    let Ok(Ok(addr)) = addr.await else {
        return;
    };
    // The bridge acts as this stream's inbound: `inbound>>>{bridge tag}>>>…` counts what the
    // node carries for the reverse mode, like a real inbound counts relay and remote.
    let inbound = shared.stats.traffic("inbound", &tag);
    if uot::is_uot(&addr) {
        let meter = Meter::default().with(&inbound);
        if let Err(e) = uot::serve(handle, &tag, meter, &token, &shared).await {
            tracing::debug!(bridge = %tag, error = %e, "bridged UDP-over-TCP stream ended");
        }
        return;
    }
    let Some(routed) = shared.route_user(&tag, &addr).await else {
        return;
    };
    match outbound::dial(&shared, &routed, &addr).await {
        Ok(Some(target)) => {
            let meter = Meter::default().with(&routed.out.traffic).with(&inbound);
            outbound::relay(handle, target, meter, &token, SS2022_CHUNK).await;
        }
        Ok(None) => {}
        Err(e) => tracing::debug!(bridge = %tag, target = %addr, error = %e, "bridged dial failed"),
    }
}
