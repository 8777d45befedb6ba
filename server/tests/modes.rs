//! The four connection modes end to end with real processes: `arch-manager` on 127.0.0.1 and two
//! `arch-node`s whose APIs and data planes listen on 127.0.0.2 and 127.0.0.3 (`--bind`), stock
//! `ss-local` clients set up from the users' subscriptions (one user's base64 list, the other's
//! SIP008), and a counting HTTP server. The subscriptions follow node 1 leaving and rejoining.
//!
//! Build the binaries in the test profile first (`cargo build --release -p server -p node` for
//! `cargo test --release`); `cargo test --workspace` builds them itself.

use base64::Engine as _;
use reqwest::StatusCode;
use serde_json::json;
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant};
use testkit::clients::{client_bin, curl, parse_sip002, ss_local_for, Proc};
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
/// Longest time relay / reverse traffic may fail, and subscriptions may still list its remote
/// entry, after a node dies: the pull timeout (3 s) plus one pull period, the node request
/// timeout and the local apply.
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

/// The link name of each server address a subscription may list: `direct`, `relay` and
/// `reverse` on 127.0.0.1 at their mode ports, `remote-{node id}` on the node's address at the
/// remote port. Entries are told apart by where they point, not by their remarks.
struct Names(BTreeMap<(IpAddr, u16), String>);

impl Names {
    fn new(mode_ports: &[u16], ids: &[i64]) -> Names {
        let mut names = BTreeMap::new();
        for (mode, port) in ["direct", "relay", "reverse"].into_iter().zip(mode_ports) {
            names.insert((LOCALHOST, *port), mode.to_owned());
        }
        for (ip, id) in NODE_IPS.iter().zip(ids) {
            names.insert((*ip, mode_ports[3]), format!("remote-{id}"));
        }
        Names(names)
    }

    /// Every name but `except`, sorted.
    fn all_but(&self, except: Option<&str>) -> Vec<String> {
        let mut all: Vec<String> = self
            .0
            .values()
            .filter(|n| Some(n.as_str()) != except)
            .cloned()
            .collect();
        all.sort();
        all
    }
}

/// A user's subscription in one format, read as a client app reads it.
struct Subscription {
    url: String,
    sip008: bool,
}

impl Subscription {
    /// The subscription of `user` (REST JSON), in base64 or (`sip008`) SIP008.
    fn of(user: &serde_json::Value, sip008: bool) -> Subscription {
        let url = user["subscription_url"].as_str().expect("subscription_url");
        Subscription {
            url: if sip008 {
                format!("{url}?format=sip008")
            } else {
                url.to_owned()
            },
            sip008,
        }
    }

    /// Every entry as a SIP002 link: the base64 list's lines, or one built from each SIP008
    /// server (userinfo = base64url(`method:password`)).
    async fn links(&self) -> Vec<String> {
        let body = get_subscription(&self.url).await;
        if !self.sip008 {
            let text = base64::engine::general_purpose::STANDARD
                .decode(body.trim())
                .expect("base64 subscription");
            let text = String::from_utf8(text).expect("utf-8 subscription");
            return text.lines().map(str::to_owned).collect();
        }
        let v: serde_json::Value = serde_json::from_str(&body).expect("SIP008 JSON");
        assert_eq!(v["version"], 1, "{v}");
        v["servers"]
            .as_array()
            .expect("SIP008 servers")
            .iter()
            .map(|s| {
                let field = |k: &str| s[k].as_str().unwrap_or_else(|| panic!("no {k}: {s}"));
                let port = s["server_port"].as_u64().expect("server_port");
                let userinfo = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!(
                    "{}:{}",
                    field("method"),
                    field("password")
                ));
                format!("ss://{userinfo}@{}:{port}", field("server"))
            })
            .collect()
    }

    /// The entries as (link name, SIP002 link), sorted by name; an entry at an address of no
    /// link fails the test.
    async fn named(&self, names: &Names) -> Vec<(String, String)> {
        let mut named: Vec<(String, String)> = self
            .links()
            .await
            .into_iter()
            .map(|link| {
                let l = parse_sip002(&link).unwrap_or_else(|| panic!("not SIP002: {link}"));
                let ip: IpAddr = l
                    .host
                    .parse()
                    .expect("entries in this test use IP addresses");
                match names.0.get(&(ip, l.port)) {
                    Some(name) => (name.clone(), link),
                    None => panic!("{}: entry at no known address: {link}", self.url),
                }
            })
            .collect();
        named.sort();
        named
    }

    /// The names of the entries listed now, sorted.
    async fn listed(&self, names: &Names) -> Vec<String> {
        self.named(names)
            .await
            .into_iter()
            .map(|(n, _)| n)
            .collect()
    }
}

/// GETs a subscription document, each time from a source address of its own (127.0.1.x,
/// rotating): the manager rate-limits `/sub` per address, and the waits below poll it.
async fn get_subscription(url: &str) -> String {
    static NEXT: AtomicU8 = AtomicU8::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed) % 250 + 1;
    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(5))
        .local_address(IpAddr::V4(Ipv4Addr::new(127, 0, 1, n)))
        .build()
        .expect("HTTP client");
    let r = http.get(url).send().await.expect("subscription request");
    assert_eq!(r.status(), StatusCode::OK, "{url}");
    r.text().await.expect("subscription body")
}

/// One `ss-local` per entry of `user`'s subscription, which must list exactly every link, once,
/// each with the user's method and password.
async fn clients_from(
    m: &Api,
    user: i64,
    sip008: bool,
    names: &Names,
) -> Option<(Clients, Subscription)> {
    let (st, u) = m.get(&format!("/v1/users/{user}")).await;
    assert_eq!(st, StatusCode::OK, "{u}");
    let sub = Subscription::of(&u, sip008);
    let named = sub.named(names).await;
    assert_eq!(
        named.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>(),
        names.all_but(None),
        "{}",
        sub.url
    );
    let mut socks = BTreeMap::new();
    let mut procs = Vec::new();
    for (name, link) in named {
        let l = parse_sip002(&link).expect("SIP002");
        assert_eq!(
            (Some(l.method.as_str()), Some(l.password.as_str())),
            (u["method"].as_str(), u["password"].as_str()),
            "{name}"
        );
        let (p, port) = ss_local_for(&link).await?;
        socks.insert(name, port);
        procs.push(p);
    }
    Some((
        Clients {
            socks,
            _procs: procs,
        },
        sub,
    ))
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
    // alice sets her clients up from her base64 subscription, bob from his SIP008 one.
    let names = Names::new(mode_ports, &ids);
    let Some((alice, alice_sub)) = clients_from(&m, users[0], false, &names).await else {
        return;
    };
    let Some((bob, bob_sub)) = clients_from(&m, users[1], true, &names).await else {
        return;
    };
    let remote: Vec<String> = ids.iter().map(|id| format!("remote-{id}")).collect();
    let [remote1, remote2] = [remote[0].as_str(), remote[1].as_str()];

    // 1. Every mode, so every subscription entry, carries traffic; relay and reverse alternate
    // over both nodes.
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
    // Its remote entry leaves both subscriptions within the same bound; the other four stay.
    let without_node1 = names.all_but(Some(remote1));
    loop {
        let listed = [alice_sub.listed(&names).await, bob_sub.listed(&names).await];
        if listed.iter().all(|l| *l == without_node1) {
            break;
        }
        assert!(
            killed.elapsed() < FAILOVER,
            "subscriptions still list {listed:?} {:?} after node 1 died",
            killed.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!(
        "node 1 left both subscriptions {:?} after it died",
        killed.elapsed()
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
    wait_until(
        "node 1's remote entry back in both subscriptions",
        FAILOVER,
        || async {
            alice_sub.listed(&names).await == names.all_but(None)
                && bob_sub.listed(&names).await == names.all_but(None)
        },
    )
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
