//! Classic AEAD: several users on one port, exact counters, wrong passwords.

use crate::support::*;
use engine::Engine;
use xray::Method;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_users_on_one_port_are_counted_exactly() {
    init_logs();
    let http = Http::start().await;
    let port = free_port();
    let engine = Engine::new();
    let users = [("alice", "alice-pass-1"), ("bob", "bob-pass-2")];
    let config = direct_config(vec![inbound("direct", port, Method::Aes256Gcm, "", &users)]);
    engine.apply(&config).await.expect("apply");

    let Some((_a, alice)) = ss_local(port, "aes-256-gcm", "alice-pass-1").await else {
        return;
    };
    let Some((_b, bob)) = ss_local(port, "aes-256-gcm", "bob-pass-2").await else {
        return;
    };

    let f = curl(alice, &http.url("/1000000"), 20).await;
    assert_eq!((f.code, f.bytes), (0, 1_000_000));
    let alice_http = http.totals();
    assert_eq!(
        user_traffic(&engine, "alice"),
        (alice_http.request, alice_http.response)
    );

    for size in [300_000, 12_345] {
        let f = curl(bob, &http.url(&format!("/{size}")), 20).await;
        assert_eq!((f.code, f.bytes), (0, size));
    }
    let all = http.totals();
    let bob_expected = (
        all.request - alice_http.request,
        all.response - alice_http.response,
    );
    assert_eq!(user_traffic(&engine, "bob"), bob_expected);
    assert_eq!(
        user_traffic(&engine, "alice"),
        (alice_http.request, alice_http.response)
    );
    assert_eq!(
        counter(&engine, "inbound>>>direct>>>traffic>>>uplink"),
        all.request
    );
    assert_eq!(
        counter(&engine, "inbound>>>direct>>>traffic>>>downlink"),
        all.response
    );
    assert_eq!(
        counter(&engine, "outbound>>>out>>>traffic>>>downlink"),
        all.response
    );
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chacha_users_via_sslocal_are_counted_exactly() {
    init_logs();
    let http = Http::start().await;
    let port = free_port();
    let engine = Engine::new();
    let users = [("carol", "carol-pw"), ("dave", "dave-pw")];
    let config = direct_config(vec![inbound(
        "direct",
        port,
        Method::Chacha20IetfPoly1305,
        "",
        &users,
    )]);
    engine.apply(&config).await.expect("apply");
    let Some((_d, dave)) = sslocal(port, "chacha20-ietf-poly1305", "dave-pw").await else {
        return;
    };
    let f = curl(dave, &http.url("/500000"), 20).await;
    assert_eq!((f.code, f.bytes), (0, 500_000));
    let t = http.totals();
    assert_eq!(user_traffic(&engine, "dave"), (t.request, t.response));
    assert_eq!(user_traffic(&engine, "carol"), (0, 0));
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_with_different_ciphers_share_a_port_and_are_counted_exactly() {
    init_logs();
    let http = Http::start().await;
    let echo = udp_echo().await;
    let port = free_port();
    let engine = Engine::new();
    // Xray's form: no method on the inbound, each client with its own classic cipher. The same
    // password under both ciphers (so the same key): only the cipher tells the users apart.
    let mut config = direct_config(vec![inbound("direct", port, Method::Aes256Gcm, "", &[])]);
    let mut json = serde_json::to_value(&config).expect("json");
    json["inbounds"][0]["settings"] = serde_json::json!({
        "network": "tcp,udp",
        "clients": [
            {"email": "alice", "password": "shared-pw", "method": "aes-256-gcm"},
            {"email": "bob", "password": "shared-pw", "method": "chacha20-ietf-poly1305"},
        ],
    });
    config = xray::Config::from_json(&serde_json::to_vec(&json).expect("json")).expect("valid");
    assert_eq!(config.inbounds[0].settings.method, None);
    engine.apply(&config).await.expect("apply");

    let (_a, alice) = ss_local(port, "aes-256-gcm", "shared-pw")
        .await
        .expect("ss-local");
    let (_b, bob) = ss_local(port, "chacha20-ietf-poly1305", "shared-pw")
        .await
        .expect("ss-local");
    let f = curl(alice, &http.url("/700000"), 20).await;
    assert_eq!((f.code, f.bytes), (0, 700_000));
    let alice_http = http.totals();
    assert_eq!(
        user_traffic(&engine, "alice"),
        (alice_http.request, alice_http.response)
    );
    assert_eq!(user_traffic(&engine, "bob"), (0, 0));
    let f = curl(bob, &http.url("/300000"), 20).await;
    assert_eq!((f.code, f.bytes), (0, 300_000));
    let all = http.totals();
    assert_eq!(
        user_traffic(&engine, "bob"),
        (
            all.request - alice_http.request,
            all.response - alice_http.response
        )
    );
    assert_eq!(
        user_traffic(&engine, "alice"),
        (alice_http.request, alice_http.response)
    );
    assert_eq!(
        (
            counter(&engine, "inbound>>>direct>>>traffic>>>uplink"),
            counter(&engine, "inbound>>>direct>>>traffic>>>downlink")
        ),
        (all.request, all.response)
    );

    // UDP too: bob's datagrams (chacha20) are found under his cipher and counted byte for byte.
    let (_t, udp) = ss_tunnel_udp(port, "chacha20-ietf-poly1305", "shared-pw", echo)
        .await
        .expect("ss-tunnel");
    let bob_tcp = user_traffic(&engine, "bob");
    assert_eq!(echo_through(udp, 5, 100).await, 5);
    let want = (bob_tcp.0 + 500, bob_tcp.1 + 500);
    assert_eq!(settled_user_traffic(&engine, "bob", want).await, want);
    assert_eq!(
        user_traffic(&engine, "alice"),
        (alice_http.request, alice_http.response)
    );

    // A third cipher nobody on the port uses gets nowhere.
    let (_w, wrong) = ss_local(port, "aes-128-gcm", "shared-pw")
        .await
        .expect("ss-local");
    assert_ne!(curl(wrong, &http.url("/1000"), 5).await.code, 0);
    assert_eq!(http.totals(), all);
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password_is_rejected_and_not_counted() {
    init_logs();
    let http = Http::start().await;
    let port = free_port();
    let engine = Engine::new();
    let users = [("alice", "alice-pass-1")];
    let config = direct_config(vec![inbound("direct", port, Method::Aes256Gcm, "", &users)]);
    engine.apply(&config).await.expect("apply");
    let Some((_w, wrong)) = ss_local(port, "aes-256-gcm", "not-the-password").await else {
        return;
    };
    let f = curl(wrong, &http.url("/1000"), 10).await;
    assert_ne!(f.code, 0, "a wrong password must not get through");
    assert_eq!(f.bytes, 0);
    assert_eq!(http.totals().response, 0, "the target was never contacted");
    assert_eq!(user_traffic(&engine, "alice"), (0, 0));
    assert_eq!(counter(&engine, "inbound>>>direct>>>traffic>>>uplink"), 0);
    let names: Vec<String> = engine.counters().into_keys().collect();
    assert!(names.iter().all(|n| !n.contains("not-the-password")));
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probes_are_rate_limited_per_ip_but_a_returning_client_gets_in() {
    use tokio::io::AsyncWriteExt;
    init_logs();
    let http = Http::start().await;
    let port = free_port();
    let engine = Engine::new();
    let users = [("alice", "alice-pass-1"), ("bob", "bob-pass-2")];
    let config = direct_config(vec![inbound("direct", port, Method::Aes256Gcm, "", &users)]);
    engine.apply(&config).await.expect("apply");
    let Some((_a, alice)) = ss_local(port, "aes-256-gcm", "alice-pass-1").await else {
        return;
    };
    let Some((_b, bob)) = ss_local(port, "aes-256-gcm", "bob-pass-2").await else {
        return;
    };
    assert_eq!(curl(alice, &http.url("/100"), 10).await.bytes, 100);

    // 25 junk probes from 127.0.0.1 exhaust its budget of full key scans (burst 20).
    let mut junk = Vec::new();
    for i in 0..25u8 {
        let mut s = tokio::net::TcpStream::connect(local(port))
            .await
            .expect("connect");
        s.write_all(&[i.wrapping_mul(37); 64]).await.expect("write");
        junk.push(s);
    }
    // Each probe counts as a failure once the engine has read its first 50 bytes (it then
    // reads the rest and ignores it): wait until none holds unread bytes.
    wait_until(
        "the engine to read the 25 probes",
        std::time::Duration::from_secs(5),
        || std::future::ready(matches!(tcp_server_side(port), (n, 0) if n >= 25)),
    )
    .await;
    // Bob was never seen from this IP: no scan for him now.
    let f = curl(bob, &http.url("/100"), 3).await;
    assert_ne!(f.code, 0, "an IP over budget gets no key scan");
    // Alice is this IP's hinted user: one key trial, still allowed.
    let f = curl(alice, &http.url("/100"), 10).await;
    assert_eq!((f.code, f.bytes), (0, 100));
    drop(junk);
    // The budget refills (2 per second): this wait is the refill under test, on the limiter's
    // own clock; no event marks it.
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let f = curl(bob, &http.url("/100"), 10).await;
    assert_eq!((f.code, f.bytes), (0, 100));
    engine.shutdown().await;
}
