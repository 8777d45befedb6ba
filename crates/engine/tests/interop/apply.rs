//! Hot apply: live downloads survive unrelated changes; a removed user is cut within 1 s;
//! identical configs are no-ops; port changes rebind; bind errors change nothing.

use crate::support::*;
use engine::{Engine, EngineError};
use std::time::{Duration, Instant};
use xray::Method;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn download_survives_adding_a_user_and_removed_user_is_cut() {
    init_logs();
    let http = Http::start().await;
    let port = free_port();
    let engine = Engine::new();
    let two = [("alice", "alice-pass-1"), ("bob", "bob-pass-2")];
    let config = direct_config(vec![inbound("direct", port, Method::Aes256Gcm, "", &two)]);
    engine.apply(&config).await.expect("apply");
    let version = engine.version().await;
    engine.apply(&config).await.expect("same config again");
    assert_eq!(engine.version().await, version);

    let Some((_a, alice)) = ss_local(port, "aes-256-gcm", "alice-pass-1").await else {
        return;
    };
    let Some((_b, bob)) = ss_local(port, "aes-256-gcm", "bob-pass-2").await else {
        return;
    };

    // ~20 MB at ~8 MB/s: in flight for a couple of seconds. The apply comes once the first
    // megabyte has reached alice through the engine, and before the last.
    let url = http.url("/slow/20000000");
    let download = tokio::spawn(async move { curl(alice, &url, 30).await });
    let downlink = |who: &'static str| {
        let e = &engine;
        move || std::future::ready(user_traffic(e, who).1 >= 1_000_000)
    };
    wait_until(
        "alice's download to pass 1 MB",
        Duration::from_secs(10),
        downlink("alice"),
    )
    .await;
    let three = [
        ("alice", "alice-pass-1"),
        ("bob", "bob-pass-2"),
        ("carol", "carol-pw"),
    ];
    let added = direct_config(vec![inbound("direct", port, Method::Aes256Gcm, "", &three)]);
    engine.apply(&added).await.expect("apply with carol");
    let at_apply = user_traffic(&engine, "alice").1;
    assert!(
        at_apply < 20_000_000,
        "the download ended before the apply ({at_apply} bytes)"
    );
    let f = download.await.expect("join");
    assert_eq!(
        (f.code, f.bytes),
        (0, 20_000_000),
        "the download survived the apply"
    );

    // Bob's download is cut when bob is removed: first it flows (1 MB through the engine)…
    let url = http.url("/slow/40000000");
    let download = tokio::spawn(async move {
        let f = curl(bob, &url, 30).await;
        (f, Instant::now())
    });
    wait_until(
        "bob's download to pass 1 MB",
        Duration::from_secs(10),
        downlink("bob"),
    )
    .await;
    assert!(
        !download.is_finished(),
        "bob's download ended before the apply"
    );
    let only_alice = direct_config(vec![inbound(
        "direct",
        port,
        Method::Aes256Gcm,
        "",
        &two[..1],
    )]);
    let applied_at = Instant::now();
    engine.apply(&only_alice).await.expect("apply without bob");
    // …then it is cut within a second.
    let (f, ended) = download.await.expect("join");
    assert!(
        f.code != 0 && f.bytes < 40_000_000,
        "bob's download must be cut, got {f:?}"
    );
    let took = ended.saturating_duration_since(applied_at);
    assert!(took < Duration::from_secs(1), "cut after {took:?}");

    // Bob can no longer connect; alice still can.
    let f = curl(bob, &http.url("/1000"), 5).await;
    assert_ne!(f.code, 0);
    let f = curl(alice, &http.url("/1000"), 10).await;
    assert_eq!((f.code, f.bytes), (0, 1000));
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changed_port_rebinds_and_bind_errors_change_nothing() {
    init_logs();
    let http = Http::start().await;
    let (p1, p2) = (free_port(), free_port());
    let engine = Engine::new();
    let users = [("alice", "alice-pass-1")];
    let first = direct_config(vec![inbound("direct", p1, Method::Aes128Gcm, "", &users)]);
    engine.apply(&first).await.expect("apply");

    // A port held by someone else: the apply fails, names the inbound, and p1 keeps serving.
    let blocker = std::net::TcpListener::bind(local(p2)).expect("block p2");
    let moved = direct_config(vec![inbound("direct", p2, Method::Aes128Gcm, "", &users)]);
    let err = engine.apply(&moved).await.expect_err("p2 is taken");
    assert!(
        matches!(err, EngineError::Bind { ref tag, port, .. } if tag == "direct" && port == p2)
    );
    assert!(err.to_string().contains("direct"), "{err}");
    let Some((_a, alice1)) = ss_local(p1, "aes-128-gcm", "alice-pass-1").await else {
        return;
    };
    let f = curl(alice1, &http.url("/1000"), 10).await;
    assert_eq!((f.code, f.bytes), (0, 1000));

    drop(blocker);
    engine.apply(&moved).await.expect("apply moved");
    let Some((_b, alice2)) = ss_local(p2, "aes-128-gcm", "alice-pass-1").await else {
        return;
    };
    let f = curl(alice2, &http.url("/1000"), 10).await;
    assert_eq!((f.code, f.bytes), (0, 1000));
    assert!(
        std::net::TcpListener::bind(local(p1)).is_ok(),
        "old port was released"
    );
    engine.shutdown().await;
    assert!(
        std::net::TcpListener::bind(local(p2)).is_ok(),
        "shutdown released the port"
    );
}
