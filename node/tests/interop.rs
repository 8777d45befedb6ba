//! Independent Shadowsocks clients through the `arch-node` binary: configs pushed over
//! `POST /v1/configs` (HTTPS, pinned to the node's certificate), counters read from
//! `GET /v1/stats`, traffic to a counting HTTP server and a UDP echo on 127.0.0.1. `ss-local` /
//! `ss-tunnel` come from shadowsocks-libev, `sslocal` from shadowsocks-rust; a missing client
//! fails the test unless `ARCH_SKIP_INTEROP=1`.

use reqwest::StatusCode;
use std::time::{Duration, Instant};
use testkit::clients::{client_bin, curl, ss_local, ss_tunnel_udp, sslocal};
use testkit::configs::{direct_config as config, inbound, key};
use testkit::net::{echo_through, free_port, udp_echo, Http, LOCALHOST};
use testkit::procs::{start_node, wait_until, Api, ArchProc, NODE_TOKEN};
use xray::{Config, Method};

/// A running arch-node and its API.
struct Node {
    _proc: ArchProc,
    api: Api,
    _dir: tempfile::TempDir,
}

async fn node() -> Node {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let proc = start_node(LOCALHOST, port, dir.path(), None);
    let api = Api::node(LOCALHOST, port, dir.path(), NODE_TOKEN).await;
    wait_until("arch-node to listen", Duration::from_secs(20), || api.up()).await;
    Node {
        _proc: proc,
        api,
        _dir: dir,
    }
}

impl Node {
    async fn push(&self, c: &Config) {
        let body: serde_json::Value = serde_json::from_slice(&c.to_canonical_json()).expect("json");
        let (st, reply) = self.api.post("/v1/configs", &body).await;
        assert_eq!(st, StatusCode::OK, "{reply}");
        assert_eq!(reply["version"], c.version());
    }

    async fn user(&self, email: &str) -> (u64, u64) {
        (
            self.api
                .counter(&format!("user>>>{email}>>>traffic>>>uplink"))
                .await,
            self.api
                .counter(&format!("user>>>{email}>>>traffic>>>downlink"))
                .await,
        )
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn classic_and_ss2022_users_are_counted_exactly() {
    testkit::init_logs();
    let (Some(_), Some(_), Some(_)) = (
        client_bin("ss-local"),
        client_bin("sslocal"),
        client_bin("ss-tunnel"),
    ) else {
        return;
    };
    let http = Http::start().await;
    let echo = udp_echo().await;
    let node = node().await;
    let (classic, eih) = (free_port(), free_port());
    let ipsk = key(1, 16);
    let (eve, frank) = (key(2, 16), key(3, 16));
    node.push(&config(vec![
        inbound(
            "classic",
            classic,
            Method::Aes256Gcm,
            "",
            &[("alice", "alice-pass-1"), ("bob", "bob-pass-2")],
        ),
        inbound(
            "eih",
            eih,
            Method::Blake3Aes128Gcm,
            &ipsk,
            &[("eve", &eve), ("frank", &frank)],
        ),
    ]))
    .await;

    // Two users on one classic port (ss-local), two on one SS-2022 EIH port (sslocal), each
    // fetching a different size; every user's counters equal what the web server exchanged.
    let m = "2022-blake3-aes-128-gcm";
    let mut clients = Vec::new();
    for (who, started) in [
        (
            "alice",
            ss_local(classic, "aes-256-gcm", "alice-pass-1").await,
        ),
        ("bob", ss_local(classic, "aes-256-gcm", "bob-pass-2").await),
        ("eve", sslocal(eih, m, &format!("{ipsk}:{eve}")).await),
        ("frank", sslocal(eih, m, &format!("{ipsk}:{frank}")).await),
    ] {
        clients.push((who, started.expect("client binaries were checked above")));
    }
    for (i, (who, (_, socks))) in clients.iter().enumerate() {
        let before = http.totals();
        let size = 1_000_000 + i as u64 * 12_345;
        let f = curl(*socks, &http.url(&format!("/{size}")), 20).await;
        assert_eq!((f.code, f.bytes), (0, size), "{who}");
        let after = http.totals();
        assert_eq!(
            node.user(who).await,
            (
                after.request - before.request,
                after.response - before.response
            ),
            "{who}'s counters"
        );
    }
    let t = http.totals();
    let inbound_down = node
        .api
        .counter("inbound>>>classic>>>traffic>>>downlink")
        .await
        + node.api.counter("inbound>>>eih>>>traffic>>>downlink").await;
    assert_eq!(inbound_down, t.response);

    // A wrong password is refused and counted nowhere.
    let Some((_w, wrong)) = ss_local(classic, "aes-256-gcm", "not-a-user").await else {
        return;
    };
    let f = curl(wrong, &http.url("/1000"), 5).await;
    assert_ne!(f.code, 0);
    assert_eq!(http.totals(), t);
    assert_eq!(
        node.api
            .counter("inbound>>>classic>>>traffic>>>downlink")
            .await
            + node.api.counter("inbound>>>eih>>>traffic>>>downlink").await,
        inbound_down
    );

    // UDP: bob's datagrams through ss-tunnel to the echo are counted byte for byte.
    let bob_before = node.user("bob").await;
    let Some((_tunnel, local)) = ss_tunnel_udp(classic, "aes-256-gcm", "bob-pass-2", echo).await
    else {
        return;
    };
    assert_eq!(echo_through(local, 10, 100).await, 10);
    let want = (bob_before.0 + 1000, bob_before.1 + 1000);
    let got = testkit::settle(&want, Duration::from_secs(2), || node.user("bob")).await;
    assert_eq!(got, want, "bob's UDP bytes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_keeps_live_downloads_and_cuts_removed_users() {
    testkit::init_logs();
    let http = Http::start().await;
    let node = node().await;
    let port = free_port();
    let two = [("alice", "alice-pass-1"), ("bob", "bob-pass-2")];
    node.push(&config(vec![inbound(
        "c",
        port,
        Method::Aes256Gcm,
        "",
        &two,
    )]))
    .await;
    let Some((_a, alice)) = ss_local(port, "aes-256-gcm", "alice-pass-1").await else {
        return;
    };
    let Some((_b, bob)) = ss_local(port, "aes-256-gcm", "bob-pass-2").await else {
        return;
    };

    // ~16 MB at ~8 MB/s: in flight while a push adds a user. The push comes once the first
    // megabyte has reached alice through the node, and before the last.
    let url = http.url("/slow/16000000");
    let download = tokio::spawn(async move { curl(alice, &url, 30).await });
    let node = &node;
    let flowing = |who: &'static str| move || async move { node.user(who).await.1 >= 1_000_000 };
    wait_until(
        "alice's download to pass 1 MB",
        Duration::from_secs(10),
        flowing("alice"),
    )
    .await;
    let three = [two[0], two[1], ("carol", "carol-pass-3")];
    node.push(&config(vec![inbound(
        "c",
        port,
        Method::Aes256Gcm,
        "",
        &three,
    )]))
    .await;
    let at_push = node.user("alice").await.1;
    assert!(
        at_push < 16_000_000,
        "the download ended before the push ({at_push} bytes)"
    );
    let f = download.await.expect("join");
    assert_eq!(
        (f.code, f.bytes),
        (0, 16_000_000),
        "the download survived the push"
    );

    // A push without bob cuts bob's download within a second: first it flows (1 MB through the
    // node)…
    let url = http.url("/slow/40000000");
    let download = tokio::spawn(async move {
        let f = curl(bob, &url, 30).await;
        (f, Instant::now())
    });
    wait_until(
        "bob's download to pass 1 MB",
        Duration::from_secs(10),
        flowing("bob"),
    )
    .await;
    assert!(
        !download.is_finished(),
        "bob's download ended before the push"
    );
    let pushed = Instant::now();
    node.push(&config(vec![inbound(
        "c",
        port,
        Method::Aes256Gcm,
        "",
        &two[..1],
    )]))
    .await;
    // …then it is cut.
    let (f, ended) = download.await.expect("join");
    assert!(
        f.code != 0 && f.bytes < 40_000_000,
        "bob's download must be cut, got {f:?}"
    );
    let took = ended.saturating_duration_since(pushed);
    assert!(took < Duration::from_secs(1), "cut {took:?} after the push");
    assert_ne!(curl(bob, &http.url("/1000"), 5).await.code, 0);
    assert_eq!(curl(alice, &http.url("/1000"), 10).await.bytes, 1000);
}

/// A TCP relay on 127.0.0.1 to 127.0.0.1:`to` that records what the first connection's client
/// sent; returns its port and the recording (complete once that connection has ended).
async fn recording_relay(to: u16) -> (u16, tokio::sync::oneshot::Receiver<Vec<u8>>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind((LOCALHOST, 0))
        .await
        .expect("bind relay");
    let port = listener.local_addr().expect("addr").port();
    let (tx, rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let Ok((client, _)) = listener.accept().await else {
            return;
        };
        let Ok(server) = tokio::net::TcpStream::connect((LOCALHOST, to)).await else {
            return;
        };
        let (mut cr, mut cw) = client.into_split();
        let (mut sr, mut sw) = server.into_split();
        let down = tokio::spawn(async move {
            let _ = tokio::io::copy(&mut sr, &mut cw).await;
        });
        let mut recorded = Vec::new();
        let mut buf = [0u8; 16384];
        while let Ok(n) = cr.read(&mut buf).await {
            if n == 0 || sw.write_all(&buf[..n]).await.is_err() {
                break;
            }
            recorded.extend_from_slice(&buf[..n]);
        }
        let _ = sw.shutdown().await;
        let _ = down.await;
        let _ = tx.send(recorded);
    });
    (port, rx)
}

/// Sends a recorded client stream to 127.0.0.1:`port` as a new connection, closes the sending
/// side, and returns how many bytes the server answered before closing (bounded).
async fn replay(port: u16, recorded: &[u8]) -> usize {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect((LOCALHOST, port))
        .await
        .expect("connect");
    s.write_all(recorded).await.expect("send the recording");
    s.shutdown().await.expect("shutdown");
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut answer)).await;
    assert!(read.is_ok(), "the server neither answered nor closed");
    answer.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recorded_connection_stays_refused_after_a_restart() {
    testkit::init_logs();
    let http = Http::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let api_port = free_port();
    let mut proc = start_node(LOCALHOST, api_port, dir.path(), None);
    let api = Api::node(LOCALHOST, api_port, dir.path(), NODE_TOKEN).await;
    wait_until("arch-node to listen", Duration::from_secs(20), || api.up()).await;
    let port = free_port();
    let c = config(vec![inbound(
        "classic",
        port,
        Method::Aes256Gcm,
        "",
        &[("alice", "alice-pass-1")],
    )]);
    let body: serde_json::Value = serde_json::from_slice(&c.to_canonical_json()).expect("json");
    assert_eq!(api.post("/v1/configs", &body).await.0, StatusCode::OK);

    // Record one real connection of ss-local's on the wire.
    let (relay, recording) = recording_relay(port).await;
    let (_c, socks) = ss_local(relay, "aes-256-gcm", "alice-pass-1")
        .await
        .expect("ss-local");
    let f = curl(socks, &http.url("/1000"), 10).await;
    assert_eq!((f.code, f.bytes), (0, 1000));
    let recorded = recording.await.expect("recording");
    assert_eq!(http.requests(), 1);

    // Replayed at once: refused, never answered.
    assert_eq!(replay(port, &recorded).await, 0);
    assert_eq!(http.requests(), 1);

    // Replayed after a graceful restart: still refused.
    proc.signal("-TERM");
    let _proc = start_node(LOCALHOST, api_port, dir.path(), None);
    wait_until("arch-node to listen again", Duration::from_secs(20), || {
        api.up()
    })
    .await;
    assert_eq!(replay(port, &recorded).await, 0);
    assert_eq!(http.requests(), 1, "the replay reached the target");
    // The user's own new connections still work.
    let (_d, socks) = ss_local(port, "aes-256-gcm", "alice-pass-1")
        .await
        .expect("ss-local");
    let f = curl(socks, &http.url("/1000"), 10).await;
    assert_eq!((f.code, f.bytes), (0, 1000));
    assert_eq!(http.requests(), 2);
}
