//! Relay chain: engine A (classic users) → shadowsocks outbound (SS-2022 EIH) → engine B → target.

use crate::support::*;
use engine::Engine;
use xray::{Balancer, Method, Outbound, Rule, Server};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_through_a_second_engine_counts_on_both() {
    init_logs();
    let http = Http::start().await;
    let (pa, pb) = (free_port(), free_port());
    let (ipsk, hop) = (key(5, 16), key(6, 16));

    let node = Engine::new();
    let hop_user = [("manager-hop", hop.as_str())];
    let node_cfg = direct_config(vec![inbound(
        "direct",
        pb,
        Method::Blake3Aes128Gcm,
        &ipsk,
        &hop_user,
    )]);
    node.apply(&node_cfg).await.expect("apply node");

    let manager = Engine::new();
    let mut cfg = xray::Config::skeleton("warning");
    let users = [("alice", "alice-pass-1"), ("bob", "bob-pass-2")];
    cfg.inbounds
        .push(inbound("relay", pa, Method::Aes256Gcm, "", &users));
    cfg.outbounds.push(Outbound::shadowsocks(
        "relay-1",
        Server {
            address: "127.0.0.1".into(),
            port: pb,
            method: Method::Blake3Aes128Gcm,
            password: format!("{ipsk}:{hop}"),
            uot: true,
        },
    ));
    cfg.routing.balancers.push(Balancer {
        tag: "relay".into(),
        selector: vec!["relay-1".into()],
    });
    cfg.routing.rules.push(Rule::to_balancer("relay", "relay"));
    manager.apply(&cfg).await.expect("apply manager");

    let Some((_a, alice)) = ss_local(pa, "aes-256-gcm", "alice-pass-1").await else {
        return;
    };
    let f = curl(alice, &http.url("/5000000"), 20).await;
    assert_eq!((f.code, f.bytes), (0, 5_000_000));
    let t = http.totals();
    assert_eq!(user_traffic(&manager, "alice"), (t.request, t.response));
    assert_eq!(
        counter(&manager, "outbound>>>relay-1>>>traffic>>>downlink"),
        t.response
    );
    assert_eq!(user_traffic(&node, "manager-hop"), (t.request, t.response));
    assert_eq!(
        counter(&node, "outbound>>>out>>>traffic>>>downlink"),
        t.response
    );
    manager.shutdown().await;
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn udp_rides_the_relay_over_tcp_when_uot_is_set() {
    init_logs();
    let echo = udp_echo().await;
    let (pa, pb) = (free_port(), free_port());
    let (ipsk, hop) = (key(5, 16), key(6, 16));

    let node = Engine::new();
    let hop_user = [("manager-hop", hop.as_str())];
    let node_cfg = direct_config(vec![inbound(
        "direct",
        pb,
        Method::Blake3Aes128Gcm,
        &ipsk,
        &hop_user,
    )]);
    node.apply(&node_cfg).await.expect("apply node");

    let manager = Engine::new();
    let mut cfg = xray::Config::skeleton("warning");
    cfg.inbounds.push(inbound(
        "relay",
        pa,
        Method::Aes256Gcm,
        "",
        &[("alice", "alice-pass-1")],
    ));
    cfg.outbounds.push(Outbound::shadowsocks(
        "relay-1",
        Server {
            address: "127.0.0.1".into(),
            port: pb,
            method: Method::Blake3Aes128Gcm,
            password: format!("{ipsk}:{hop}"),
            uot: true,
        },
    ));
    cfg.routing
        .rules
        .push(Rule::to_outbound("relay", "relay-1"));
    manager.apply(&cfg).await.expect("apply manager");

    let Some((_tunnel, local_port)) = ss_tunnel_udp(pa, "aes-256-gcm", "alice-pass-1", echo).await
    else {
        return;
    };
    assert_eq!(echo_through(local_port, 10, 100).await, 10);
    assert_eq!(
        settled_user_traffic(&manager, "alice", (1000, 1000)).await,
        (1000, 1000)
    );
    assert_eq!(
        counter(&manager, "outbound>>>relay-1>>>traffic>>>uplink"),
        1000
    );
    assert_eq!(
        settled_user_traffic(&node, "manager-hop", (1000, 1000)).await,
        (1000, 1000)
    );
    manager.shutdown().await;
    node.shutdown().await;
}
