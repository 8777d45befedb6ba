//! Dialing outbounds (freedom, blackhole, Shadowsocks client, portal) and relaying a client
//! stream to what was dialed, with counting and cancellation.

use crate::io::{Counted, WriteStable, CLASSIC_CHUNK, SS2022_CHUNK};
use crate::route::OutboundKind;
use crate::stats::Meter;
use crate::{Routed, Shared, DIAL_TIMEOUT};
use shadowsocks::relay::socks5::Address;
use shadowsocks::relay::tcprelay::ProxyClientStream;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

/// A relay with no byte moving either way for this long is closed (Xray's `connIdle`).
pub(crate) const CONN_IDLE: std::time::Duration = std::time::Duration::from_secs(300);

/// A byte stream the relay can use.
pub(crate) trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// A dialed stream of any kind.
pub(crate) type BoxIo = Box<dyn Io>;

/// Connects to the first of `targets` that answers (what `freedom` does).
pub(crate) async fn connect_target(targets: &[SocketAddr]) -> io::Result<TcpStream> {
    let mut last = io::Error::new(io::ErrorKind::NotFound, "no address to dial");
    for sa in targets {
        match TcpStream::connect(sa).await {
            Ok(stream) => {
                let _ = stream.set_nodelay(true);
                return Ok(stream);
            }
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// Opens a Shadowsocks client stream through `config` to `addr`, with the request header
/// already sent (so server-first protocols work), wrapped in [`WriteStable`].
pub(crate) async fn connect_shadowsocks(
    shared: &Shared,
    config: &shadowsocks::config::ServerConfig,
    addr: &Address,
) -> io::Result<WriteStable<ProxyClientStream<shadowsocks::net::TcpStream>>> {
    let mut stream =
        ProxyClientStream::connect(shared.client_ctx.clone(), config, addr.clone()).await?;
    // A zero-length write sends salt + header (+ padding for SS-2022) now.
    let _header_only = stream.write(&[]).await?;
    stream.flush().await?;
    let cap = if config.method().is_aead_2022() {
        SS2022_CHUNK
    } else {
        CLASSIC_CHUNK
    };
    Ok(WriteStable::new(stream, cap))
}

/// Dials `routed` for `addr`. `Ok(None)` means blackhole: drop the client (counted as refused).
/// Records the outcome in the outbound's health.
pub(crate) async fn dial(
    shared: &Shared,
    routed: &Routed,
    addr: &Address,
) -> io::Result<Option<BoxIo>> {
    let out = &routed.out;
    let attempt = async {
        Ok(match &out.kind {
            OutboundKind::Blackhole => {
                if let Some((connections, _)) = &out.refused {
                    connections.fetch_add(1, Ordering::Relaxed);
                }
                None
            }
            OutboundKind::Freedom => {
                Some(Box::new(connect_target(&routed.targets).await?) as BoxIo)
            }
            OutboundKind::Shadowsocks { config, .. } => {
                Some(Box::new(connect_shadowsocks(shared, config, addr).await?) as BoxIo)
            }
            OutboundKind::Portal => {
                Some(Box::new(shared.portals.open(&out.tag, addr).await?) as BoxIo)
            }
        })
    };
    let result = match tokio::time::timeout(DIAL_TIMEOUT, attempt).await {
        Ok(r) => r,
        Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, "dial timed out")),
    };
    if !matches!(out.kind, OutboundKind::Portal) {
        out.health.record(result.is_ok());
    }
    result
}

/// Target size of the download buffer (target → client). Downloads dominate; a large read means
/// fewer read syscalls, and the client's encrypting writer cuts it into AEAD chunks.
const DOWNLOAD_BUF: usize = 64 * 1024;

/// The download buffer for an encrypted side whose writer takes at most `chunk` bytes per call:
/// the largest whole number of chunks that fits [`DOWNLOAD_BUF`] (at least one). A full read
/// then becomes whole AEAD chunks: 65 536 bytes would be 65 535 + 1 for SS-2022 and
/// 4 × 16 383 + 4 for classic ciphers, an extra chunk, tag and `write` per read for the tail.
pub(crate) fn download_buf(chunk: usize) -> usize {
    let chunk = chunk.max(1);
    (DOWNLOAD_BUF / chunk).max(1) * chunk
}

/// Copies both ways between `client` (counted: reads uplink, writes downlink) and `target`
/// until both sides finish, an error, [`CONN_IDLE`] without a byte either way, or `token` is
/// cancelled. `chunk` is the largest AEAD chunk of the encrypted side, the upload buffer: the
/// decrypting reader yields at most one chunk per read.
pub(crate) async fn relay<A: Io, B: Io>(
    client: A,
    mut target: B,
    meter: Meter,
    token: &CancellationToken,
    chunk: usize,
) {
    let mut client = Counted::new(client, meter);
    let activity = client.activity();
    let idle = async {
        loop {
            let left = CONN_IDLE.saturating_sub(activity.idle());
            if left.is_zero() {
                return;
            }
            tokio::time::sleep(left).await;
        }
    };
    tokio::select! {
        _ = token.cancelled() => {}
        _ = idle => tracing::debug!("relay closed after being idle"),
        r = tokio::io::copy_bidirectional_with_sizes(&mut client, &mut target, chunk, download_buf(chunk)) => {
            if let Err(e) = r {
                tracing::debug!(error = %e, "relay ended with an error");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn download_buffer_holds_whole_chunks() {
        assert_eq!(download_buf(SS2022_CHUNK), 65_535);
        assert_eq!(download_buf(CLASSIC_CHUNK), 4 * 16_383);
        assert_eq!(download_buf(100_000), 100_000);
        assert_eq!(download_buf(0), DOWNLOAD_BUF);
    }
}
