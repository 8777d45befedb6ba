//! Stream adapters around the shadowsocks crate's streams.
//!
//! * [`WriteStable`] protects the crate's encrypting writers from callers that change the buffer
//!   between a `Pending` write and its retry (tokio's `copy_bidirectional` reads ahead into spare
//!   buffer space, `Framed` appends): the crate would report the longer buffer as written while
//!   sending only the first one. Every crate stream that is written by generic code goes through it.
//! * [`Prefixed`] replays the bytes consumed while identifying a classic-AEAD user.
//! * [`Counted`] sits on the *decrypted* client stream: reads are uplink, writes downlink.
//! * [`drain`] reads and drops what a rejected peer sends, for a bounded time.

use crate::stats::Meter;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};

/// Largest chunk a classic AEAD writer takes in one call.
pub(crate) const CLASSIC_CHUNK: usize = 0x3FFF;
/// Largest chunk an SS-2022 writer takes in one call.
pub(crate) const SS2022_CHUNK: usize = 0xFFFF;

/// Makes a writer safe for callers that change the buffer between a `Pending` write and its
/// retry.
///
/// When the inner write returns `Pending`, the chunk offered (at most `cap` bytes, which must not
/// exceed what the inner writer takes in one call) is copied, reported as written, and replayed
/// byte for byte until the inner writer has taken it. Flush and shutdown finish that chunk first.
#[derive(Debug)]
pub struct WriteStable<S> {
    inner: S,
    pending: Vec<u8>,
    cap: usize,
}

impl<S> WriteStable<S> {
    /// Wraps `inner`, offering it at most `cap` bytes per write.
    pub fn new(inner: S, cap: usize) -> Self {
        WriteStable {
            inner,
            pending: Vec::new(),
            cap: cap.max(1),
        }
    }

    /// The wrapped stream.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The wrapped stream (for the caller who knows nothing is pending).
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S: AsyncWrite + Unpin> WriteStable<S> {
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while !self.pending.is_empty() {
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &self.pending))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.pending.drain(..n.min(self.pending.len()));
        }
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for WriteStable<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for WriteStable<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        ready!(this.poll_drain(cx))?;
        let chunk = &buf[..buf.len().min(this.cap)];
        match Pin::new(&mut this.inner).poll_write(cx, chunk) {
            Poll::Ready(r) => Poll::Ready(r),
            Poll::Pending if chunk.is_empty() => Poll::Pending,
            Poll::Pending => {
                this.pending.extend_from_slice(chunk);
                Poll::Ready(Ok(chunk.len()))
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_drain(cx))?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_drain(cx))?;
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

/// A stream that first yields `prefix`, then reads from `inner`; writes go straight through.
#[derive(Debug)]
pub(crate) struct Prefixed<S> {
    prefix: Vec<u8>,
    pos: usize,
    inner: S,
}

impl<S> Prefixed<S> {
    pub(crate) fn new(prefix: Vec<u8>, inner: S) -> Self {
        Prefixed {
            prefix,
            pos: 0,
            inner,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Prefixed<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.pos < this.prefix.len() {
            let rest = &this.prefix[this.pos..];
            let n = rest.len().min(buf.remaining());
            buf.put_slice(&rest[..n]);
            this.pos += n;
            if this.pos == this.prefix.len() {
                this.prefix = Vec::new();
                this.pos = 0;
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Prefixed<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// When a relay last moved a byte, for its idle timeout.
#[derive(Debug)]
pub(crate) struct Activity {
    born: Instant,
    last_ms: AtomicU64,
}

impl Activity {
    pub(crate) fn new() -> Activity {
        Activity {
            born: Instant::now(),
            last_ms: AtomicU64::new(0),
        }
    }

    fn touch(&self) {
        let ms = u64::try_from(self.born.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    /// Time since the last byte moved.
    pub(crate) fn idle(&self) -> Duration {
        let last = Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
        self.born.elapsed().saturating_sub(last)
    }
}

/// Counts payload on the client side of a relay: bytes read are uplink, bytes written downlink.
#[derive(Debug)]
pub(crate) struct Counted<S> {
    inner: S,
    meter: Meter,
    activity: Arc<Activity>,
}

impl<S> Counted<S> {
    pub(crate) fn new(inner: S, meter: Meter) -> Self {
        Counted {
            inner,
            meter,
            activity: Arc::new(Activity::new()),
        }
    }

    /// The relay's activity record (both directions pass through here).
    pub(crate) fn activity(&self) -> Arc<Activity> {
        self.activity.clone()
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Counted<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        ready!(Pin::new(&mut this.inner).poll_read(cx, buf))?;
        this.meter.up(buf.filled().len() - before);
        this.activity.touch();
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Counted<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let n = ready!(Pin::new(&mut this.inner).poll_write(cx, buf))?;
        this.meter.down(n);
        this.activity.touch();
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// Reads and drops whatever `stream` sends until EOF, an error, or `cap` elapses; then the caller
/// closes it. A rejected peer learns nothing from timing or replies.
pub(crate) async fn drain<S: AsyncRead + Unpin>(mut stream: S, deadline: tokio::time::Instant) {
    let mut buf = [0u8; 4096];
    let _ = tokio::time::timeout_at(deadline, async {
        while let Ok(n) = stream.read(&mut buf).await {
            if n == 0 {
                break;
            }
        }
    })
    .await;
}

#[cfg(test)]
#[path = "io_tests.rs"]
mod tests;
