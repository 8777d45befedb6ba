//! UDP-over-TCP (the UoT v2 framing of sing-box / Xray, non-connect mode), used when a
//! Shadowsocks outbound has `uot` set: UDP from a client is carried inside one Shadowsocks TCP
//! stream to the magic target [`MAGIC`], and an inbound receiving that target relays the
//! datagrams itself. A portal carries UDP the same way: one tunnel stream addressed to
//! [`MAGIC`], served by the bridge at the other end.
//!
//! After the Shadowsocks request, the stream starts with `is_connect: u8` and a SOCKS5 address;
//! then every datagram, in both directions, is `SOCKS5 address || u16 length || payload` (in
//! connect mode only `u16 length || payload`, for the fixed address).

use crate::outbound::Io;
use crate::route::OutboundKind;
use crate::stats::Meter;
use crate::Shared;
use bytes::BufMut;
use shadowsocks::relay::socks5::Address;
use std::io;
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::UdpSocket;
use tokio_util::sync::CancellationToken;

/// The target domain that asks for UDP-over-TCP.
pub(crate) const MAGIC: &str = "sp.v2.udp-over-tcp.arpa";

/// Whether `addr` is the UoT magic target.
pub(crate) fn is_uot(addr: &Address) -> bool {
    matches!(addr, Address::DomainNameAddress(host, _) if host.eq_ignore_ascii_case(MAGIC))
}

/// Encodes one datagram frame (non-connect mode).
pub(crate) fn frame(addr: &Address, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(addr.serialized_len() + 2 + payload.len());
    addr.write_to_buf(&mut out);
    out.put_u16(u16::try_from(payload.len()).unwrap_or(u16::MAX));
    out.extend_from_slice(&payload[..payload.len().min(usize::from(u16::MAX))]);
    out
}

/// The request header of a non-connect UoT stream whose first datagram goes to `first`.
pub(crate) fn request(first: &Address) -> Vec<u8> {
    let mut out = vec![0u8];
    first.write_to_buf(&mut out);
    out
}

/// Reads one datagram frame; `fixed` is the destination in connect mode.
pub(crate) async fn read_frame<R: AsyncRead + Unpin>(
    r: &mut R,
    fixed: Option<&Address>,
    buf: &mut Vec<u8>,
) -> io::Result<Address> {
    let addr = match fixed {
        Some(a) => a.clone(),
        None => Address::read_from(r).await.map_err(io::Error::other)?,
    };
    let len = usize::from(r.read_u16().await?);
    buf.resize(len, 0);
    r.read_exact(buf).await?;
    Ok(addr)
}

/// Serves a UoT stream that arrived on inbound (or bridge) `tag`: datagrams leave through the
/// outbound their destination routes to (freedom only), replies go back framed. `meter` holds
/// the counters of the entry point (inbound, user); the outbound's are added here. Ends when the
/// stream ends or `token` is cancelled.
pub(crate) async fn serve<S: Io + 'static>(
    stream: S,
    tag: &str,
    meter: Meter,
    token: &CancellationToken,
    shared: &Arc<Shared>,
) -> io::Result<()> {
    let (mut reader, mut writer) = tokio::io::split(stream);
    let connect = reader.read_u8().await? != 0;
    let destination = Address::read_from(&mut reader)
        .await
        .map_err(io::Error::other)?;
    // The stream's outbound by the rules alone; each datagram's destination is then checked
    // against the destination policy on its own (a blocked one is dropped and counted).
    let out = shared
        .route(tag, &destination)
        .filter(|o| matches!(o.kind, OutboundKind::Freedom | OutboundKind::Blackhole))
        .ok_or_else(|| io::Error::other("UDP-over-TCP only leaves through freedom"))?;
    let socket = Arc::new(UdpSocket::bind("0.0.0.0:0").await?);
    let meter = meter.with(&out.traffic);
    let fixed = connect.then_some(destination);
    tokio::select! {
        _ = token.cancelled() => Ok(()),
        r = pump_up(&mut reader, fixed.as_ref(), tag, shared, &socket, &meter) => r,
        r = pump_down(&mut writer, connect, &socket, &meter) => r,
    }
}

/// Client → target: framed datagrams out of the stream, sent from `socket` to where the
/// destination policy lets each one go.
async fn pump_up<R: AsyncRead + Unpin>(
    reader: &mut R,
    fixed: Option<&Address>,
    tag: &str,
    shared: &Shared,
    socket: &UdpSocket,
    meter: &Meter,
) -> io::Result<()> {
    let mut buf = Vec::new();
    loop {
        let addr = read_frame(reader, fixed, &mut buf).await?;
        let Some(routed) = shared.route_datagram(tag, &addr).await else {
            continue;
        };
        if !matches!(routed.out.kind, OutboundKind::Freedom) {
            continue;
        }
        if let Some(target) = routed.targets.first() {
            socket.send_to(&buf, target).await?;
            meter.up(buf.len());
        }
    }
}

/// Target → client: datagrams received on `socket`, framed into the stream.
async fn pump_down<W: AsyncWrite + Unpin>(
    writer: &mut W,
    connect: bool,
    socket: &UdpSocket,
    meter: &Meter,
) -> io::Result<()> {
    let mut buf = vec![0u8; 65536];
    loop {
        let (n, from) = socket.recv_from(&mut buf).await?;
        let bytes = if connect {
            let mut v = u16::try_from(n).unwrap_or(u16::MAX).to_be_bytes().to_vec();
            v.extend_from_slice(&buf[..n]);
            v
        } else {
            frame(&Address::SocketAddress(from), &buf[..n])
        };
        writer.write_all(&bytes).await?;
        writer.flush().await?;
        meter.down(n);
    }
}
