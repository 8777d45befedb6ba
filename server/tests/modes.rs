//! The four connection modes end to end with real processes: `arch-manager` on 127.0.0.1 and two
//! `arch-node`s whose APIs and data planes listen on 127.0.0.2 and 127.0.0.3 (`--bind`), stock
//! `ss-local` clients set up from the links the manager hands out, and a counting HTTP server.
//!
//! Build the binaries in the test profile first (`cargo build --release -p server -p node` for
//! `cargo test --release`); `cargo test --workspace` builds them itself.

use reqwest::StatusCode;
use serde_json::json;
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};
use testkit::clients::{client_bin, curl, ss_local_for, Proc};
use testkit::net::{free_port_on, Http, LOCALHOST};
use testkit::procs::{
    start_manager, start_node, wait_until, Api, ArchProc, ADMIN_TOKEN, NODE_TOKEN,
};

const NODE_IPS: [IpAddr; 2] = [
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)),
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, 3)),
];
/// Body size of each fetch.
const BODY: u64 = 100_000;
/// Longest time relay / reverse traffic may fail after a node dies: the pull timeout (3 s) plus
/// one pull period, the node request timeout and the local apply.
const FAILOVER: Duration = Duration::from_secs(6);

/// `n` distinct ports free on 127.0.0.1 and on the wildcard address.
fn distinct_ports(n: usize) -> Vec<u16> {
    let mut ports: Vec<u16> = Vec::new();
    while ports.len() < n {
        let p = free_port_on(LOCALHOST);
        if !ports.contains(&p) {
            ports.push(p);
        }
    }
    ports
}

/// One user's SOCKS ports, by link name (`direct`, `relay`, `reverse`, `remote-{node id}`).
struct Clients {
    socks: BTreeMap<String, u16>,
    _procs: Vec<Proc>,
}

async fn clients_for(m: &Api, user: i64) -> Option<Clients> {
    let (st, links) = m.get(&format!("/v1/users/{user}/links")).await;
    assert_eq!(st, StatusCode::OK, "{links}");
    let mut socks = BTreeMap::new();
    let mut procs = Vec::new();
    for l in links.as_array().expect("links") {
        let name = match l["node_id"].as_i64() {
            Some(n) => format!("{}-{n}", l["mode"].as_str().unwrap_or_default()),
            None => l["mode"].as_str().unwrap_or_default().to_owned(),
        };
        let (p, port) = ss_local_for(l["url"].as_str().expect("url")).await?;
        socks.insert(name, port);
        procs.push(p);
    }
    Some(Clients {
        socks,
        _procs: procs,
    })
}

/// Fetches `BODY` bytes through `client`'s `link`; returns the bytes the HTTP server exchanged
/// for it (request + response), or `None` when the fetch failed.
async fn fetch(http: &Http, c: &Clients, link: &str) -> Option<u64> {
    let socks = *c
        .socks
        .get(link)
        .unwrap_or_else(|| panic!("no {link} link"));
    let before = http.totals();
    let f = curl(socks, &http.url(&format!("/{BODY}")), 10).await;
    if f.code != 0 {
        return None;
    }
    assert_eq!(f.bytes, BODY, "{link}: short body");
    let after = http.totals();
    Some(after.request + after.response - before.request - before.response)
}

async fn must_fetch(http: &Http, c: &Clients, link: &str) -> u64 {
    match fetch(http, c, link).await {
        Some(n) => n,
        None => panic!("fetch through {link} failed"),
    }
}

/// Sum of a node's `inbound>>>{tag}>>>traffic>>>uplink|downlink`.
async fn inbound_bytes(n: &Api, tag: &str) -> u64 {
    n.counter(&format!("inbound>>>{tag}>>>traffic>>>uplink"))
        .await
        + n.counter(&format!("inbound>>>{tag}>>>traffic>>>downlink"))
            .await
}

async fn usage(m: &Api, path: &str) -> i64 {
    let (st, v) = m.get(path).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    v["usage_bytes"].as_i64().expect("usage_bytes")
}

/// Waits until the manager shows exactly `want` for `path`'s usage, then checks that one more
/// pull period adds nothing (no double counting).
async fn settles_at(m: &Api, path: &str, want: u64) {
    let want = i64::try_from(want).expect("fits");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let got = usage(m, path).await;
        if got == want {
            break;
        }
        assert!(
            got < want,
            "{path}: usage {got} exceeds the {want} bytes carried"
        );
        assert!(
            Instant::now() < deadline,
            "{path}: usage stuck at {got}, want {want}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The observation window itself (a little more than one pull and flush period): usage that
    // moved within it would be counted twice.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(usage(m, path).await, want, "{path} moved after settling");
}

/// Whether every node runs the config version the manager records as applied for it, that
/// version is not `old[i]` (when given: a change has reached it), and the node is ready.
async fn nodes_applied(m: &Api, napi: &[Api], ids: &[i64], old: &[serde_json::Value]) -> bool {
    for (i, n) in napi.iter().enumerate() {
        let (_, applied) = n.get("/v1/configs").await;
        let (_, record) = m.get(&format!("/v1/nodes/{}", ids[i])).await;
        if old.get(i).is_some_and(|v| *v == applied["version"])
            || applied["version"] != record["applied_version"]
            || !node_ready(m, ids[i]).await
        {
            return false;
        }
    }
    true
}

async fn node_ready(m: &Api, id: i64) -> bool {
    let (_, v) = m.get(&format!("/v1/nodes/{id}")).await;
    v["push_status"] == "available"
        && v["pull_status"] == "available"
        && v["reverse_connected"] == true
}

fn spawn_node(i: usize, port: u16, dir: &std::path::Path) -> ArchProc {
    start_node(
        NODE_IPS[i],
        port,
        &dir.join(format!("node{}", i + 1)),
        Some(NODE_IPS[i]),
    )
}

#[tokio::test]
async fn four_modes_two_nodes_failover_and_rejoin() {
    testkit::init_logs();
    if client_bin("ss-local").is_none() {
        return;
    }
    let http = Http::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let ports = distinct_ports(5);
    let (mport, mode_ports) = (ports[0], &ports[1..]);
    let nports = NODE_IPS.map(free_port_on);
    let _manager = start_manager(mport, &dir.path().join("manager"));
    let mut nodes = [
        Some(spawn_node(0, nports[0], dir.path())),
        Some(spawn_node(1, nports[1], dir.path())),
    ];
    let m = Api::new(LOCALHOST, mport, ADMIN_TOKEN);
    let napi = [
        Api::node(
            NODE_IPS[0],
            nports[0],
            &dir.path().join("node1"),
            NODE_TOKEN,
        )
        .await,
        Api::node(
            NODE_IPS[1],
            nports[1],
            &dir.path().join("node2"),
            NODE_TOKEN,
        )
        .await,
    ];
    wait_until("processes to listen", Duration::from_secs(20), || async {
        m.up().await && napi[0].up().await && napi[1].up().await
    })
    .await;

    let (st, s) = m
        .put(
            "/v1/settings",
            // The test's web server is on loopback, which user traffic may not reach by default.
            &json!({"host": "127.0.0.1", "ss_direct_port": mode_ports[0], "ss_relay_port": mode_ports[1],
                    "ss_reverse_port": mode_ports[2], "ss_remote_port": mode_ports[3],
                    "allowed_private_networks": ["127.0.0.0/8"]}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{s}");
    let mut ids = Vec::new();
    for i in 0..2 {
        let (st, n) = m
            .post(
                "/v1/nodes",
                &json!({"host": NODE_IPS[i].to_string(), "http_port": nports[i], "http_token": NODE_TOKEN}),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED, "{n}");
        ids.push(n["id"].as_i64().expect("id"));
    }
    let mut users = Vec::new();
    for name in ["alice", "bob"] {
        let (st, u) = m.post("/v1/users", &json!({"name": name})).await;
        assert_eq!(st, StatusCode::CREATED, "{u}");
        users.push(u["id"].as_i64().expect("id"));
    }
    for &id in &ids {
        wait_until(
            "node pushed, pulled, bridge connected",
            Duration::from_secs(20),
            || node_ready(&m, id),
        )
        .await;
    }
    let Some(alice) = clients_for(&m, users[0]).await else {
        return;
    };
    let Some(bob) = clients_for(&m, users[1]).await else {
        return;
    };
    let remote: Vec<String> = ids.iter().map(|id| format!("remote-{id}")).collect();
    let [remote1, remote2] = [remote[0].as_str(), remote[1].as_str()];

    // 1. Every mode carries traffic; relay and reverse alternate over both nodes.
    let mut user_bytes = [0u64; 2];
    let mut by_mode: BTreeMap<&str, u64> = BTreeMap::new();
    for (u, c) in [&alice, &bob].into_iter().enumerate() {
        for link in [
            "direct", "relay", "relay", "reverse", "reverse", remote1, remote2,
        ] {
            let n = must_fetch(&http, c, link).await;
            user_bytes[u] += n;
            *by_mode.entry(link).or_default() += n;
        }
    }
    for (u, id) in users.iter().enumerate() {
        settles_at(&m, &format!("/v1/users/{id}"), user_bytes[u]).await;
    }
    // Each node carried half of the relay and reverse fetches, and its own remote ones.
    for (i, n) in napi.iter().enumerate() {
        assert_eq!(
            inbound_bytes(n, "direct").await,
            by_mode["relay"] / 2,
            "relay hop of node {}",
            i + 1
        );
        assert_eq!(
            inbound_bytes(n, "bridge").await,
            by_mode["reverse"] / 2,
            "bridge of node {}",
            i + 1
        );
        assert_eq!(
            inbound_bytes(n, "remote").await,
            by_mode[remote[i].as_str()],
            "remote of node {}",
            i + 1
        );
        let carried = (by_mode["relay"] + by_mode["reverse"]) / 2 + by_mode[remote[i].as_str()];
        settles_at(&m, &format!("/v1/nodes/{}", ids[i]), carried).await;
    }

    // 2. Node 1 dies: relay and reverse go on through node 2 within the failover bound.
    let node2_before = (
        inbound_bytes(&napi[1], "direct").await,
        inbound_bytes(&napi[1], "bridge").await,
    );
    if let Some(mut n) = nodes[0].take() {
        n.signal("-KILL");
    }
    let killed = Instant::now();
    let (mut relay_ok, mut reverse_ok, mut streak) = (0u64, 0u64, 0);
    while streak < 6 {
        let link = if streak % 2 == 0 { "relay" } else { "reverse" };
        match fetch(&http, &alice, link).await {
            Some(n) => {
                streak += 1;
                user_bytes[0] += n;
                if link == "relay" {
                    relay_ok += n
                } else {
                    reverse_ok += n
                }
            }
            None => {
                assert!(
                    killed.elapsed() < FAILOVER,
                    "{link} still failing {:?} after node 1 died",
                    killed.elapsed()
                );
                streak = 0;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    eprintln!(
        "failover: 6 fetches in a row succeeded {:?} after node 1 died",
        killed.elapsed()
    );
    assert_eq!(
        (
            inbound_bytes(&napi[1], "direct").await - node2_before.0,
            inbound_bytes(&napi[1], "bridge").await - node2_before.1
        ),
        (relay_ok, reverse_ok),
        "node 2 carried everything after node 1 died"
    );
    assert!(
        fetch(&http, &alice, remote1).await.is_none(),
        "node 1 is down"
    );
    wait_until(
        "node 1 reported unavailable",
        Duration::from_secs(10),
        || async {
            let (_, v) = m.get(&format!("/v1/nodes/{}", ids[0])).await;
            v["pull_status"] == "unavailable" && v["reverse_connected"] == false
        },
    )
    .await;

    // 3. Node 1 comes back (new counter epoch after the kill) and takes its share again.
    nodes[0] = Some(spawn_node(0, nports[0], dir.path()));
    wait_until("node 1 rejoined", Duration::from_secs(20), || {
        node_ready(&m, ids[0])
    })
    .await;
    // The balancers take it back once the manager re-applies its config (one debounce).
    let rejoin = Instant::now();
    for (link, tag) in [("relay", "direct"), ("reverse", "bridge")] {
        while inbound_bytes(&napi[0], tag).await == 0 {
            assert!(
                rejoin.elapsed() < FAILOVER,
                "node 1 got no {link} traffic {:?} after rejoining",
                rejoin.elapsed()
            );
            user_bytes[1] += must_fetch(&http, &bob, link).await;
        }
    }
    let n = must_fetch(&http, &bob, remote1).await;
    user_bytes[1] += n;
    assert_eq!(inbound_bytes(&napi[0], "remote").await, n);
    for (u, id) in users.iter().enumerate() {
        settles_at(&m, &format!("/v1/users/{id}"), user_bytes[u]).await;
    }
    let total = http.totals();
    assert_eq!(
        (user_bytes[0] + user_bytes[1]),
        total.request + total.response,
        "every byte the web server exchanged is counted once, for the user who asked"
    );

    // 4. Reverse only: the nodes get no data inbounds at all, so nothing can dial them, and
    // reverse traffic still flows (the bridges dial out to the manager).
    let (st, s) = m
        .put(
            "/v1/settings",
            &json!({"ss_direct_port": 0, "ss_relay_port": 0, "ss_remote_port": 0}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{s}");
    wait_until(
        "nodes applied the reverse-only config",
        Duration::from_secs(15),
        || async {
            let probe = tokio::net::TcpStream::connect((NODE_IPS[0], mode_ports[3])).await;
            nodes_applied(&m, &napi, &ids, &[]).await && probe.is_err()
        },
    )
    .await;
    let bridges_before = [
        inbound_bytes(&napi[0], "bridge").await,
        inbound_bytes(&napi[1], "bridge").await,
    ];
    let mut reverse_only = 0;
    for _ in 0..4 {
        reverse_only += must_fetch(&http, &alice, "reverse").await;
    }
    let mut carried = 0;
    for (i, n) in napi.iter().enumerate() {
        let d = inbound_bytes(n, "bridge").await - bridges_before[i];
        assert!(d > 0, "node {} carried no reverse traffic", i + 1);
        carried += d;
        for port in [mode_ports[3], relay_port(&m, ids[i]).await] {
            let dial = tokio::net::TcpStream::connect((NODE_IPS[i], port)).await;
            assert!(
                dial.is_err(),
                "node {} still listens on data port {port}",
                i + 1
            );
        }
    }
    assert_eq!(carried, reverse_only);

    // 5. Loopback closed again (the default): the nodes' bridges refuse the same requests, which
    // never reach the web server, and count each refusal.
    let mut open_versions = Vec::new();
    for n in &napi {
        open_versions.push(n.get("/v1/configs").await.1["version"].clone());
    }
    let (st, s) = m
        .put("/v1/settings", &json!({"allowed_private_networks": []}))
        .await;
    assert_eq!(st, StatusCode::OK, "{s}");
    wait_until(
        "nodes applied the guarded config",
        Duration::from_secs(15),
        || nodes_applied(&m, &napi, &ids, &open_versions),
    )
    .await;
    let requests = http.requests();
    for _ in 0..4 {
        assert_eq!(fetch(&http, &alice, "reverse").await, None);
    }
    assert_eq!(
        http.requests(),
        requests,
        "a refused request reached loopback"
    );
    let mut refused = 0;
    for n in &napi {
        refused += n.counter("outbound>>>block>>>refused>>>connections").await;
    }
    assert_eq!(refused, 4);
}

/// The relay port the manager assigned to node `id`.
async fn relay_port(m: &Api, id: i64) -> u16 {
    let (_, v) = m.get(&format!("/v1/nodes/{id}")).await;
    v["relay_port"]
        .as_u64()
        .and_then(|p| u16::try_from(p).ok())
        .unwrap_or_else(|| panic!("node {id} has no relay_port: {v}"))
}
