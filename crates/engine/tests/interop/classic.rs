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
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    // Bob was never seen from this IP: no scan for him now.
    let f = curl(bob, &http.url("/100"), 3).await;
    assert_ne!(f.code, 0, "an IP over budget gets no key scan");
    // Alice is this IP's hinted user: one key trial, still allowed.
    let f = curl(alice, &http.url("/100"), 10).await;
    assert_eq!((f.code, f.bytes), (0, 100));
    drop(junk);
    // The budget refills (2 per second).
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let f = curl(bob, &http.url("/100"), 10).await;
    assert_eq!((f.code, f.bytes), (0, 100));
    engine.shutdown().await;
}
