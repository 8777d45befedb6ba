//! The manual restart ([`Engine::restart`]) with real sessions: a user the config still allows
//! keeps their live connection across it, a removed user is cut, not one byte is lost or counted
//! twice, the replay filter is kept and the outbounds' dial records start clean.

use super::*;
use shadowsocks::config::{ServerAddr, ServerConfig, ServerType};
use shadowsocks::context::Context as SsContext;
use shadowsocks::crypto::CipherKind;
use shadowsocks::relay::tcprelay::ProxyClientStream;
use std::time::Duration;
use testkit::configs::{direct_config, inbound};
use testkit::net::free_port;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use xray::Method;

/// Bound on one echo round trip (or on learning that none will come) over loopback.
const ROUND_TRIP: Duration = Duration::from_secs(5);
/// Bound on counters reaching their exact expected values.
const SETTLE: Duration = Duration::from_secs(10);

type Session = ProxyClientStream<shadowsocks::net::TcpStream>;

/// A TCP echo server on 127.0.0.1.
async fn echo() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind echo");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = s.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    addr
}

/// A Shadowsocks (aes-256-gcm) session of `password` through the engine's port to `target`.
async fn session(port: u16, password: &str, target: SocketAddr) -> Session {
    let server = SocketAddr::from(([127, 0, 0, 1], port));
    let cfg = ServerConfig::new(ServerAddr::from(server), password, CipherKind::AES_256_GCM)
        .expect("server config");
    let ctx = SsContext::new_shared(ServerType::Local);
    ProxyClientStream::connect(ctx, &cfg, Address::SocketAddress(target))
        .await
        .expect("connect to the engine")
}

/// Sends `n` bytes of `fill` and reads them back; `false` when the session no longer carries
/// them (closed, or nothing within [`ROUND_TRIP`]).
async fn round_trip(s: &mut Session, n: usize, fill: u8) -> bool {
    let sent = vec![fill; n];
    let exchange = async {
        s.write_all(&sent).await?;
        s.flush().await?;
        let mut back = vec![0u8; n];
        s.read_exact(&mut back).await?;
        Ok::<_, std::io::Error>(back)
    };
    matches!(tokio::time::timeout(ROUND_TRIP, exchange).await, Ok(Ok(back)) if back == sent)
}

/// Whether the engine closes `s` within [`ROUND_TRIP`] (nothing is sent on it meanwhile).
async fn closed(s: &mut Session) -> bool {
    let mut buf = [0u8; 64];
    matches!(
        tokio::time::timeout(ROUND_TRIP, s.read(&mut buf)).await,
        Ok(Ok(0) | Err(_))
    )
}

/// A user's (uplink, downlink) once it equals `want` (or as it is after [`SETTLE`]).
async fn settled(engine: &Engine, email: &str, want: (u64, u64)) -> (u64, u64) {
    testkit::settle(&want, SETTLE, || {
        let c = engine.counters();
        let get = |dir: &str| {
            c.get(&format!("user>>>{email}>>>traffic>>>{dir}"))
                .copied()
                .unwrap_or(0)
        };
        std::future::ready((get("uplink"), get("downlink")))
    })
    .await
}

fn inbound_traffic(engine: &Engine) -> (u64, u64) {
    let c = engine.counters();
    let get = |dir: &str| {
        c.get(&format!("inbound>>>direct>>>traffic>>>{dir}"))
            .copied()
            .unwrap_or(0)
    };
    (get("uplink"), get("downlink"))
}

fn out_is_up(engine: &Engine) -> bool {
    engine
        .shared
        .router()
        .outbound("out")
        .expect("outbound out")
        .health
        .up()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_keeps_allowed_sessions_counters_and_replay_filter() {
    testkit::init_logs();
    let target = echo().await;
    let port = free_port();
    let engine = Engine::new();
    let two = [("alice", "alice-pass-1"), ("bob", "bob-pass-2")];
    let both = direct_config(vec![inbound("direct", port, Method::Aes256Gcm, "", &two)]);
    engine.apply(&both).await.expect("apply");
    let version = engine.version().await;

    let mut alice = session(port, "alice-pass-1", target).await;
    let mut bob = session(port, "bob-pass-2", target).await;
    assert!(
        round_trip(&mut alice, 10_000, 1).await,
        "alice's session works"
    );
    assert!(round_trip(&mut bob, 3_000, 2).await, "bob's session works");
    assert_eq!(
        settled(&engine, "alice", (10_000, 10_000)).await,
        (10_000, 10_000)
    );
    assert_eq!(
        settled(&engine, "bob", (3_000, 3_000)).await,
        (3_000, 3_000)
    );
    let replay = engine.export_replay_filter();
    assert!(!replay.is_empty(), "the two sessions' salts are recorded");

    // The same config again: a restart, not a no-op. Both sessions go on.
    engine.restart(&both).await.expect("restart");
    assert_eq!(engine.version().await, version, "the same config runs");
    assert!(round_trip(&mut alice, 20_000, 3).await, "alice survives");
    assert!(round_trip(&mut bob, 4_000, 4).await, "bob survives");
    assert_eq!(
        settled(&engine, "alice", (30_000, 30_000)).await,
        (30_000, 30_000),
        "not a byte of alice's lost or counted twice"
    );
    assert_eq!(
        settled(&engine, "bob", (7_000, 7_000)).await,
        (7_000, 7_000)
    );

    // A restart with a config without bob: bob is cut, alice goes on.
    let only_alice = direct_config(vec![inbound(
        "direct",
        port,
        Method::Aes256Gcm,
        "",
        &two[..1],
    )]);
    engine
        .restart(&only_alice)
        .await
        .expect("restart without bob");
    assert!(closed(&mut bob).await, "bob is cut");
    assert!(round_trip(&mut alice, 5_000, 6).await, "alice survives");
    assert_eq!(
        settled(&engine, "alice", (35_000, 35_000)).await,
        (35_000, 35_000)
    );
    // Bob was cut before he sent more: his counters hold exactly what he moved before.
    assert_eq!(
        settled(&engine, "bob", (7_000, 7_000)).await,
        (7_000, 7_000)
    );
    let want = (42_000, 42_000);
    let inbound = testkit::settle(&want, SETTLE, || {
        std::future::ready(inbound_traffic(&engine))
    });
    assert_eq!(
        inbound.await,
        want,
        "the inbound counted exactly both users' bytes"
    );

    // No new connection since: the replay filter is exactly what it was.
    assert_eq!(engine.export_replay_filter(), replay);
    engine.shutdown().await;
}

#[tokio::test]
async fn restart_forgets_dial_records_and_apply_of_the_same_config_does_not() {
    let port = free_port();
    let engine = Engine::new();
    let config = direct_config(vec![inbound(
        "direct",
        port,
        Method::Aes256Gcm,
        "",
        &[("alice", "alice-pass-1")],
    )]);
    engine.apply(&config).await.expect("apply");
    let failed = |e: &Engine| {
        let router = e.shared.router();
        router.outbound("out").expect("out").health.record(false);
    };
    failed(&engine);
    assert!(!out_is_up(&engine));
    engine.apply(&config).await.expect("the same config");
    assert!(!out_is_up(&engine), "a no-op apply keeps the record");
    engine.restart(&config).await.expect("restart");
    assert!(out_is_up(&engine), "a restart starts every outbound clean");
    engine.shutdown().await;
    assert!(matches!(
        engine.restart(&config).await,
        Err(EngineError::ShutDown)
    ));
}
