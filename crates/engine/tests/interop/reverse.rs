//! Reverse tunnel: a node-side bridge dials the manager's `internal-1` inbound; client streams
//! routed to `portal-1` travel through the bridge's yamux connection, many in parallel, and a
//! client's UDP travels through it as UDP-over-TCP.

use crate::support::*;
use engine::Engine;
use std::time::Duration;
use xray::{Balancer, Config, Method, Outbound, ReverseItem, Rule, Server};

fn manager_config(client_port: u16, internal_port: u16, psk: &str) -> Config {
    let mut c = Config::skeleton("warning");
    let users = [("alice", "alice-pass-1"), ("bob", "bob-pass-2")];
    c.inbounds.push(inbound(
        "reverse",
        client_port,
        Method::Chacha20IetfPoly1305,
        "",
        &users,
    ));
    c.inbounds.push(inbound(
        "internal-1",
        internal_port,
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
    ];
    c
}

pub(crate) fn node_config(internal_port: u16, psk: &str) -> Config {
    let mut c = Config::skeleton("warning");
    c.outbounds.push(Outbound::shadowsocks(
        "internal",
        Server {
            address: "127.0.0.1".into(),
            port: internal_port,
            method: Method::Blake3Aes128Gcm,
            password: psk.into(),
            uot: true,
        },
    ));
    c.reverse.bridges.push(ReverseItem {
        tag: "bridge".into(),
        domain: "s1.reverse.proxy".into(),
    });
    c.routing.rules = vec![
        Rule::to_outbound("bridge", "internal").for_domain("s1.reverse.proxy"),
        Rule::to_outbound("bridge", "out"),
    ];
    c
}

/// Retries a small fetch until the tunnel carries it (bounded).
pub(crate) async fn wait_tunnel(socks: u16, http: &Http) -> bool {
    for _ in 0..60 {
        if curl(socks, &http.url("/10"), 3).await.bytes == 10 {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn portal_and_bridge_carry_parallel_streams_and_reconnect() {
    init_logs();
    let http = Http::start().await;
    let (client_port, internal_port) = (free_port(), free_port());
    let psk = key(7, 16);

    let manager = Engine::new();
    manager
        .apply(&manager_config(client_port, internal_port, &psk))
        .await
        .expect("manager");
    let node = Engine::new();
    node.apply(&node_config(internal_port, &psk))
        .await
        .expect("node");

    let Some((_a, alice)) = ss_local(client_port, "chacha20-ietf-poly1305", "alice-pass-1").await
    else {
        return;
    };
    let Some((_b, bob)) = ss_local(client_port, "chacha20-ietf-poly1305", "bob-pass-2").await
    else {
        return;
    };
    assert!(wait_tunnel(alice, &http).await, "bridge never connected");

    let mut jobs = Vec::new();
    for i in 0..32 {
        let socks = if i % 2 == 0 { alice } else { bob };
        let url = http.url("/2000000");
        jobs.push(tokio::spawn(async move { curl(socks, &url, 60).await }));
    }
    for j in jobs {
        let f = j.await.expect("join");
        assert_eq!((f.code, f.bytes), (0, 2_000_000));
    }
    let t = http.totals();
    let (au, ad) = user_traffic(&manager, "alice");
    let (bu, bd) = user_traffic(&manager, "bob");
    assert_eq!((au + bu, ad + bd), (t.request, t.response));
    assert_eq!(
        counter(&manager, "outbound>>>portal-1>>>traffic>>>downlink"),
        t.response
    );
    assert_eq!(
        counter(&node, "outbound>>>out>>>traffic>>>downlink"),
        t.response
    );
    assert_eq!(
        counter(&node, "outbound>>>out>>>traffic>>>uplink"),
        t.request
    );
    // The bridge counts as the node's inbound for these streams.
    assert_eq!(
        (
            counter(&node, "inbound>>>bridge>>>traffic>>>uplink"),
            counter(&node, "inbound>>>bridge>>>traffic>>>downlink")
        ),
        (t.request, t.response)
    );

    // UDP on the reverse port: carried through the tunnel, sent out by the node, counted at both
    // ends (the user at the manager; the bridge and its freedom outbound at the node).
    let echo = udp_echo().await;
    let Some((_tunnel, udp_port)) =
        ss_tunnel_udp(client_port, "chacha20-ietf-poly1305", "bob-pass-2", echo).await
    else {
        return;
    };
    // The tunnel's UDP path may need a moment: echo one 10-byte datagram (retried, bounded),
    // wait until its reply is counted at both ends (replies are counted right after they are
    // sent, so the client can see one first), then measure from there.
    let node_in = |dir: &str| format!("inbound>>>bridge>>>traffic>>>{dir}");
    let bob_down = user_traffic(&manager, "bob").1;
    let node_down = counter(&node, &node_in("downlink"));
    let mut ready = false;
    for _ in 0..20 {
        if echo_through(udp_port, 1, 10).await == 1 {
            ready = true;
            break;
        }
    }
    assert!(ready, "no UDP echo through the reverse tunnel");
    wait_until(
        "the first echo to be counted",
        Duration::from_secs(2),
        || async {
            user_traffic(&manager, "bob").1 >= bob_down + 10
                && counter(&node, &node_in("downlink")) >= node_down + 10
        },
    )
    .await;
    let (bu0, bd0) = user_traffic(&manager, "bob");
    let (nu0, nd0) = (
        counter(&node, &node_in("uplink")),
        counter(&node, &node_in("downlink")),
    );
    assert_eq!(echo_through(udp_port, 10, 100).await, 10);
    assert_eq!(
        settled_user_traffic(&manager, "bob", (bu0 + 1000, bd0 + 1000)).await,
        (bu0 + 1000, bd0 + 1000)
    );
    let node_udp = settle(&(1000, 1000), Duration::from_secs(2), || async {
        (
            counter(&node, &node_in("uplink")) - nu0,
            counter(&node, &node_in("downlink")) - nd0,
        )
    })
    .await;
    assert_eq!(node_udp, (1000, 1000));

    // The manager restarts: the bridge redials on its own.
    manager.shutdown().await;
    let manager = Engine::new();
    manager
        .apply(&manager_config(client_port, internal_port, &psk))
        .await
        .expect("manager again");
    assert!(wait_tunnel(alice, &http).await, "bridge did not reconnect");
    manager.shutdown().await;
    node.shutdown().await;
}
