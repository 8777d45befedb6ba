//! Tests of the stream adapters, including the changed-retry-buffer hazard of the crate's writers.

use super::*;
use crate::stats::{Meter, Stats};
use shadowsocks::config::{ServerAddr, ServerConfig, ServerType};
use shadowsocks::context::Context as SsContext;
use shadowsocks::crypto::CipherKind;
use shadowsocks::relay::socks5::Address;
use shadowsocks::relay::tcprelay::{ProxyClientStream, ProxyServerStream};
use std::net::SocketAddr;
use std::task::Waker;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A transport whose first write is `Pending` (with a wake-up), and which then takes everything.
#[derive(Default)]
struct Choke {
    choked: bool,
    sent: Vec<u8>,
}

impl AsyncRead for Choke {
    fn poll_read(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        _: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Poll::Pending
    }
}

impl AsyncWrite for Choke {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if !this.choked {
            this.choked = true;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        this.sent.extend_from_slice(buf);
        Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

const PASSWORD: &str = "hazard-password";

fn client(kind: CipherKind, password: &str) -> (ProxyClientStream<Choke>, ServerConfig) {
    let addr: SocketAddr = "127.0.0.1:9".parse().expect("addr");
    let cfg = ServerConfig::new(ServerAddr::from(addr), password, kind).expect("server config");
    let ctx = SsContext::new_shared(ServerType::Local);
    let target = Address::DomainNameAddress("example.test".into(), 80);
    (
        ProxyClientStream::from_stream(ctx, Choke::default(), &cfg, target),
        cfg,
    )
}

/// Decrypts what a client sent, as a server would, and returns the payload.
async fn server_receives(kind: CipherKind, cfg: &ServerConfig, wire: Vec<u8>) -> Vec<u8> {
    let (mut tx, rx) = tokio::io::duplex(1 << 20);
    tx.write_all(&wire).await.expect("write wire");
    drop(tx);
    let ctx = SsContext::new_shared(ServerType::Server);
    let mut server = ProxyServerStream::from_stream(ctx, rx, kind, cfg.key());
    let addr = server.handshake().await.expect("handshake");
    assert_eq!(addr.to_string(), "example.test:80");
    let mut got = Vec::new();
    let _ = server.read_to_end(&mut got).await;
    got
}

fn data() -> Vec<u8> {
    (0..1000u32).map(|i| (i % 251) as u8).collect()
}

#[tokio::test]
async fn raw_crate_writer_loses_bytes_when_the_retry_buffer_grows() {
    for kind in [CipherKind::AES_256_GCM, CipherKind::CHACHA20_POLY1305] {
        let (mut w, cfg) = client(kind, PASSWORD);
        let data = data();
        let mut cx = Context::from_waker(Waker::noop());
        assert!(Pin::new(&mut w)
            .poll_write(&mut cx, &data[..100])
            .is_pending());
        // What tokio's copy does after reading ahead: retry with a longer buffer.
        let claimed = match Pin::new(&mut w).poll_write(&mut cx, &data) {
            Poll::Ready(Ok(n)) => n,
            other => panic!("unexpected {other:?}"),
        };
        assert_eq!(
            claimed, 1000,
            "{kind}: the crate claims the whole retry buffer"
        );
        let got = server_receives(kind, &cfg, w.into_inner().sent).await;
        assert_eq!(
            got.len(),
            100,
            "{kind}: but only the first attempt went out"
        );
    }
}

#[tokio::test]
async fn write_stable_keeps_every_byte() {
    let key = {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode([3u8; 16])
    };
    let cases = [
        (CipherKind::AES_256_GCM, PASSWORD.to_owned(), CLASSIC_CHUNK),
        (
            CipherKind::CHACHA20_POLY1305,
            PASSWORD.to_owned(),
            CLASSIC_CHUNK,
        ),
        (CipherKind::AEAD2022_BLAKE3_AES_128_GCM, key, SS2022_CHUNK),
    ];
    for (kind, password, cap) in cases {
        let (inner, cfg) = client(kind, &password);
        let mut w = WriteStable::new(inner, cap);
        let data = data();
        let mut cx = Context::from_waker(Waker::noop());
        assert!(matches!(
            Pin::new(&mut w).poll_write(&mut cx, &data[..100]),
            Poll::Ready(Ok(100))
        ));
        assert!(matches!(
            Pin::new(&mut w).poll_write(&mut cx, &data[100..]),
            Poll::Ready(Ok(900))
        ));
        assert!(matches!(
            Pin::new(&mut w).poll_flush(&mut cx),
            Poll::Ready(Ok(()))
        ));
        let got = server_receives(kind, &cfg, w.into_inner().into_inner().sent).await;
        assert_eq!(got, data, "{kind}");
    }
}

#[tokio::test]
async fn prefixed_replays_then_reads_inner() {
    let (mut tx, rx) = tokio::io::duplex(64);
    tx.write_all(b"world").await.expect("write");
    drop(tx);
    let mut s = Prefixed::new(b"hello ".to_vec(), rx);
    let mut out = String::new();
    s.read_to_string(&mut out).await.expect("read");
    assert_eq!(out, "hello world");
}

#[tokio::test]
async fn counted_counts_reads_up_and_writes_down() {
    let stats = Stats::default();
    let t = stats.traffic("user", "u");
    let (a, mut b) = tokio::io::duplex(64);
    let mut c = Counted::new(a, Meter::default().with(&t));
    b.write_all(b"12345").await.expect("write");
    let mut buf = [0u8; 5];
    c.read_exact(&mut buf).await.expect("read");
    c.write_all(b"abc").await.expect("write");
    let snap = stats.snapshot();
    assert_eq!(snap["user>>>u>>>traffic>>>uplink"], 5);
    assert_eq!(snap["user>>>u>>>traffic>>>downlink"], 3);
}
