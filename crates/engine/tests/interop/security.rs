//! Attacks by proxy users and probers, with stock clients: taking over a reverse tunnel,
//! reaching private destinations (loopback, and a private address inside a network namespace of
//! the test's own), and telling the server apart by how it closes a failed handshake.

use crate::reverse::{node_config, wait_tunnel};
use crate::support::*;
use engine::Engine;
use futures::StreamExt;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use testkit::net::socks5_connect;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use xray::cidr::Cidr;
use xray::{Balancer, Config, Method, Outbound, ReverseItem, Rule};

const USERS: [(&str, &str); 2] = [("alice", "alice-pass-1"), ("mallory", "mallory-pass-2")];
const METHOD: &str = "chacha20-ietf-poly1305";

/// The manager's side of one node's reverse mode, plus a direct inbound for the same users.
fn manager_config(reverse: u16, direct: u16, internal: u16, psk: &str) -> Config {
    let mut c = Config::skeleton("warning");
    c.inbounds.push(inbound(
        "reverse",
        reverse,
        Method::Chacha20IetfPoly1305,
        "",
        &USERS,
    ));
    c.inbounds.push(inbound(
        "direct",
        direct,
        Method::Chacha20IetfPoly1305,
        "",
        &USERS,
    ));
    c.inbounds.push(inbound(
        "internal-1",
        internal,
        Method::Blake3Aes128Gcm,
        psk,
        &[],
    ));
    c.reverse.portals.push(ReverseItem {
        tag: "portal-1".into(),
        domain: "s1.reverse.proxy".into(),
    });
    c.routing.balancers.push(Balancer {
        tag: "portal".into(),
        selector: vec!["portal-1".into()],
    });
    c.routing.rules = vec![
        Rule::to_balancer("reverse", "portal"),
        Rule::to_outbound("internal-1", "portal-1"),
        Rule::to_outbound("direct", "out"),
    ];
    c
}

/// Acts as a bridge on `stream` (the hello, then the yamux server side) and counts the streams
/// the portal sends; returns when the connection ends.
async fn pose_as_bridge(mut stream: TcpStream, streams: Arc<AtomicUsize>) {
    if stream.write_all(b"RVS1").await.is_err() {
        return;
    }
    let mut session = tokio_yamux::Session::new_server(stream, tokio_yamux::Config::default());
    while let Some(Ok(_handle)) = session.next().await {
        streams.fetch_add(1, Ordering::SeqCst);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proxy_user_cannot_take_over_a_reverse_tunnel() {
    init_logs();
    let http = Http::start().await;
    let (reverse, direct, internal) = (free_port(), free_port(), free_port());
    let psk = key(9, 16);
    let manager = Engine::new();
    manager
        .apply(&manager_config(reverse, direct, internal, &psk))
        .await
        .expect("manager");
    let node = Engine::new();
    node.apply(&node_config(internal, &psk))
        .await
        .expect("node");

    let (_a, alice) = ss_local(reverse, METHOD, USERS[0].1)
        .await
        .expect("ss-local");
    let (_m, mallory_reverse) = ss_local(reverse, METHOD, USERS[1].1)
        .await
        .expect("ss-local");
    let (_d, mallory_direct) = ss_local(direct, METHOD, USERS[1].1)
        .await
        .expect("ss-local");
    assert!(wait_tunnel(alice, &http).await, "bridge never connected");

    // The attack: a user asks for the reverse domain (in several spellings, on every user
    // inbound), sends the bridge hello and serves yamux. The manager must drop each attempt.
    let streams = Arc::new(AtomicUsize::new(0));
    let attempts = [
        (mallory_reverse, "s1.reverse.proxy"),
        (mallory_reverse, "S1.Reverse.Proxy."),
        (mallory_direct, "s1.reverse.proxy"),
    ];
    for (socks, domain) in attempts {
        let stream = socks5_connect(socks, domain, 0)
            .await
            .expect("ss-local accepts the SOCKS request");
        let attacker = tokio::spawn(pose_as_bridge(stream, streams.clone()));
        tokio::time::timeout(Duration::from_secs(10), attacker)
            .await
            .unwrap_or_else(|_| panic!("the manager kept an attacker's tunnel to {domain} open"))
            .expect("join");
    }
    assert_eq!(manager.connected_portals(), ["portal-1"]);

    // Every one of another user's requests is still served by the real bridge.
    let served = http.requests();
    for _ in 0..15 {
        let f = curl(alice, &http.url("/1000"), 10).await;
        assert_eq!((f.code, f.bytes), (0, 1000));
    }
    assert_eq!(http.requests() - served, 15);
    assert_eq!(
        streams.load(Ordering::SeqCst),
        0,
        "the attacker got streams"
    );

    manager.shutdown().await;
    node.shutdown().await;
}

/// A direct inbound for alice whose private destinations, except `allowed`, go to `block`.
fn guarded_config(port: u16, allowed: &[Cidr]) -> Config {
    let mut c = Config::skeleton("warning");
    c.inbounds.push(inbound(
        "direct",
        port,
        Method::Chacha20IetfPoly1305,
        "",
        &USERS[..1],
    ));
    c.outbounds.push(Outbound::blackhole("block"));
    c.routing.domain_strategy = "IPOnDemand".into();
    c.routing.rules = vec![
        Rule::block_private(vec!["direct".into()], allowed, "block"),
        Rule::to_outbound("direct", "out"),
    ];
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_traffic_to_loopback_is_refused_unless_allowed() {
    init_logs();
    let http = Http::start().await;
    let echo = udp_echo().await;
    let port = free_port();
    let e = Engine::new();
    e.apply(&guarded_config(port, &[])).await.expect("apply");
    let (_c, socks) = ss_local(port, METHOD, USERS[0].1).await.expect("ss-local");
    let refused = |kind: &str| counter(&e, &format!("outbound>>>block>>>refused>>>{kind}"));

    // By address and by a name that resolves to loopback.
    let by_name = format!("http://localhost:{}/10", http.port);
    for url in [http.url("/10"), by_name.clone()] {
        let f = curl(socks, &url, 5).await;
        assert_eq!(f.bytes, 0, "{url} was reached");
    }
    assert_eq!(http.requests(), 0);
    assert_eq!(refused("connections"), 2);

    let (_t, udp) = ss_tunnel_udp(port, METHOD, USERS[0].1, echo)
        .await
        .expect("ss-tunnel");
    assert_eq!(echo_through(udp, 3, 20).await, 0);
    let counted = settle(&3, Duration::from_secs(3), || async {
        refused("datagrams")
    })
    .await;
    assert_eq!(counted, 3);

    // The operator opens loopback: the same requests go through, hot.
    let lo = Cidr::parse("127.0.0.0/8").expect("cidr");
    e.apply(&guarded_config(port, &[lo])).await.expect("apply");
    for url in [http.url("/10"), by_name] {
        let f = curl(socks, &url, 5).await;
        assert_eq!((f.code, f.bytes), (0, 10), "{url}");
    }
    assert_eq!(http.requests(), 2);
    assert_eq!(echo_through(udp, 3, 20).await, 3);
    assert_eq!(refused("connections"), 2);
    e.shutdown().await;
}

/// The private address the namespace test gives its loopback.
const NS_ADDR: Ipv4Addr = Ipv4Addr::new(10, 66, 0, 1);
const IN_NETNS: &str = "ARCH_TEST_IN_NETNS";

/// Runs `private_address_in_a_namespace` inside a new network namespace (`unshare --net`), so
/// the private address exists only there.
#[test]
fn user_traffic_to_a_private_network_is_refused_unless_allowed() {
    let exe = std::env::current_exe().expect("test binary");
    let out = std::process::Command::new("unshare")
        .args(["--net", "--map-root-user", "--"])
        .arg(exe)
        .args([
            "--exact",
            "security::private_address_in_a_namespace",
            "--include-ignored",
            "--nocapture",
        ])
        .env(IN_NETNS, "1")
        .output()
        .expect("run unshare (util-linux)");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("1 passed"),
        "namespace run failed:\n{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "runs inside the namespace made by user_traffic_to_a_private_network_is_refused_unless_allowed"]
async fn private_address_in_a_namespace() {
    assert!(
        std::env::var_os(IN_NETNS).is_some(),
        "run through the namespace test"
    );
    for args in [
        vec!["link", "set", "lo", "up"],
        vec!["addr", "add", "10.66.0.1/32", "dev", "lo"],
    ] {
        let ok = std::process::Command::new("ip")
            .args(&args)
            .status()
            .expect("run ip (iproute2)");
        assert!(ok.success(), "ip {args:?}");
    }
    init_logs();
    let http = Http::start_on(IpAddr::V4(NS_ADDR)).await;
    let port = free_port();
    let e = Engine::new();
    e.apply(&guarded_config(port, &[])).await.expect("apply");
    let (_c, socks) = ss_local(port, METHOD, USERS[0].1).await.expect("ss-local");
    let f = curl(socks, &http.url("/10"), 5).await;
    assert_eq!(f.bytes, 0, "a private address was reached");
    assert_eq!(http.requests(), 0);
    assert_eq!(counter(&e, "outbound>>>block>>>refused>>>connections"), 1);

    let allowed = Cidr::parse("10.66.0.0/16").expect("cidr");
    e.apply(&guarded_config(port, &[allowed]))
        .await
        .expect("apply");
    let f = curl(socks, &http.url("/10"), 5).await;
    assert_eq!((f.code, f.bytes), (0, 10));
    assert_eq!(http.requests(), 1);
    e.shutdown().await;
}

/// What a prober sees of one connection: `true` when the server neither answered nor closed
/// within `quiet`, then closed cleanly (EOF, no bytes) once the prober closed its side.
async fn silent_until_the_prober_closes(port: u16, len: usize, quiet: Duration) -> bool {
    let Ok(mut s) = TcpStream::connect(local(port)).await else {
        return false;
    };
    let probe: Vec<u8> = (0..len).map(|i| (i * 131 + len * 7 + 3) as u8).collect();
    if s.write_all(&probe).await.is_err() {
        return false;
    }
    let mut buf = [0u8; 64];
    if tokio::time::timeout(quiet, s.read(&mut buf)).await.is_ok() {
        return false; // answered or closed early
    }
    if s.shutdown().await.is_err() {
        return false;
    }
    matches!(
        tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf)).await,
        Ok(Ok(0))
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_handshakes_look_the_same_whatever_the_probe_length() {
    init_logs();
    let (classic, ss2022) = (free_port(), free_port());
    let mut c = Config::skeleton("warning");
    c.inbounds
        .push(inbound("classic", classic, Method::Aes256Gcm, "", &USERS));
    c.inbounds.push(inbound(
        "ss2022",
        ss2022,
        Method::Blake3Aes128Gcm,
        &key(3, 16),
        &[],
    ));
    let e = Engine::new();
    e.apply(&c).await.expect("apply");
    // Every length from 1 to 200 bytes on both ports at once: none is answered or closed while
    // the prober waits, each is closed cleanly right after the prober closes.
    let mut probes = Vec::new();
    for port in [classic, ss2022] {
        for len in 1..=200usize {
            probes.push(tokio::spawn(async move {
                let silent = silent_until_the_prober_closes(port, len, Duration::from_secs(3));
                (port, len, silent.await)
            }));
        }
    }
    let mut odd = Vec::new();
    for p in probes {
        let (port, len, silent) = p.await.expect("join");
        if !silent {
            odd.push((port, len));
        }
    }
    assert!(odd.is_empty(), "(port, probe length) told apart: {odd:?}");
    e.shutdown().await;
}

/// Sends one classic-AEAD datagram for alice from `socket` to the engine's `port`, addressed to
/// the UDP echo on `echo`; true when the echo comes back within `wait`.
async fn udp_ping(socket: &tokio::net::UdpSocket, port: u16, echo: u16, wait: Duration) -> bool {
    use shadowsocks::config::{ServerConfig, ServerType};
    use shadowsocks::crypto::CipherKind;
    use shadowsocks::relay::socks5::Address;
    use shadowsocks::relay::udprelay::crypto_io::{decrypt_server_payload, encrypt_client_payload};
    use shadowsocks::relay::udprelay::options::UdpSocketControlData;
    let kind = CipherKind::CHACHA20_POLY1305;
    let Ok(cfg) = ServerConfig::new(local(port), USERS[0].1, kind) else {
        return false;
    };
    let ctx = shadowsocks::context::Context::new_shared(ServerType::Local);
    let mut packet = bytes::BytesMut::new();
    let target = Address::SocketAddress(local(echo));
    let control = UdpSocketControlData::default();
    encrypt_client_payload(
        &ctx,
        kind,
        cfg.key(),
        &target,
        &control,
        &[],
        b"ping",
        &mut packet,
    );
    if socket.send_to(&packet, local(port)).await.is_err() {
        return false;
    }
    let mut buf = vec![0u8; 2048];
    let Ok(Ok((n, _))) = tokio::time::timeout(wait, socket.recv_from(&mut buf)).await else {
        return false;
    };
    matches!(
        decrypt_server_payload(&ctx, kind, cfg.key(), &mut buf[..n]),
        Ok((4, _, _))
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_source_address_gets_a_bounded_number_of_udp_associations() {
    init_logs();
    let echo = udp_echo().await;
    let port = free_port();
    let mut c = Config::skeleton("warning");
    c.inbounds.push(inbound(
        "direct",
        port,
        Method::Chacha20IetfPoly1305,
        "",
        &USERS[..1],
    ));
    c.routing.rules = vec![Rule::to_outbound("direct", "out")];
    let e = Engine::new();
    e.apply(&c).await.expect("apply");
    // 72 client ports of one address, all held open for the whole test (a port freed and taken
    // again would be the same association).
    let mut sockets = Vec::new();
    for _ in 0..72 {
        let s = tokio::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .expect("bind");
        sockets.push(Arc::new(s));
    }
    // The first 64 each get an association (one after another, so the count is exact)…
    for (i, s) in sockets[..64].iter().enumerate() {
        assert!(
            udp_ping(s, port, echo, Duration::from_secs(5)).await,
            "association {i} was refused"
        );
    }
    // …more from the same address are dropped, while another address is still served.
    let mut extra = Vec::new();
    for s in &sockets[64..] {
        let s = s.clone();
        extra.push(tokio::spawn(async move {
            udp_ping(&s, port, echo, Duration::from_secs(2)).await
        }));
    }
    let other = tokio::net::UdpSocket::bind((Ipv4Addr::new(127, 0, 0, 2), 0))
        .await
        .expect("bind 127.0.0.2");
    assert!(udp_ping(&other, port, echo, Duration::from_secs(5)).await);
    for x in extra {
        assert!(
            !x.await.expect("join"),
            "a 65th association from one address"
        );
    }
    e.shutdown().await;
}
