//! `GET /sub/{secret}`: every format lists exactly the user's usable servers (the manager's
//! modes and the healthy node's remote entry), the headers clients read, the format choice by
//! User-Agent, node health followed, disabled users, rotation, unknown secrets and the rate limit.

use crate::support::{client, fast_loops, wait_until, TestApp};
use base64::Engine as _;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::time::Duration;

const QUOTA: u64 = 10_000_000;

/// What the test user's subscription must list: (name, port of the manager's mode or node id).
fn expected_names(node_ids: &[i64]) -> Vec<String> {
    let mut names = vec![
        "Arch · direct".to_owned(),
        "Arch · relay".to_owned(),
        "Arch · reverse".to_owned(),
    ];
    names.extend(node_ids.iter().map(|id| format!("node-{id} · remote")));
    names
}

struct Fixture {
    app: TestApp,
    user: Value,
    node_ids: Vec<i64>,
    ports: [u16; 4],
}

async fn fixture() -> Fixture {
    // One node: in-process nodes all bind their data plane on 127.0.0.1, so two of them cannot
    // both open the remote port (the real-process mode test runs two on 127.0.0.2 / .3).
    let app = TestApp::builder().nodes(1).start().await;
    let m = &app.manager.api;
    let mut node_ids = Vec::new();
    for i in 0..app.nodes.len() {
        node_ids.push(app.register(i).await["id"].as_i64().expect("id"));
    }
    let ports = [
        testkit::net::free_port_on(testkit::net::LOCALHOST),
        testkit::net::free_port_on(testkit::net::LOCALHOST),
        testkit::net::free_port_on(testkit::net::LOCALHOST),
        testkit::net::free_port_on(testkit::net::LOCALHOST),
    ];
    let (st, s) = m
        .put(
            "/v1/settings",
            &json!({"host": "127.0.0.1", "ss_direct_port": ports[0], "ss_relay_port": ports[1],
                    "ss_reverse_port": ports[2], "ss_remote_port": ports[3]}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{s}");
    let (st, user) = m
        .post("/v1/users", &json!({"name": "alice", "quota_bytes": QUOTA}))
        .await;
    assert_eq!(st, StatusCode::CREATED, "{user}");
    for id in &node_ids {
        wait_until(
            "the node to be healthy",
            Duration::from_secs(15),
            || async {
                let (_, v) = m.get(&format!("/v1/nodes/{id}")).await;
                v["push_status"] == "available" && v["pull_status"] == "available"
            },
        )
        .await;
    }
    Fixture {
        app,
        user,
        node_ids,
        ports,
    }
}

/// GETs `url` from a source address of its own (127.0.1.x, rotating): the rate limit is per
/// address, and only its own test may run into it.
async fn fetch(url: &str, user_agent: Option<&str>) -> reqwest::Response {
    static NEXT: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst) % 250 + 1;
    let source = std::net::IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 1, n));
    let http = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .local_address(source)
        .build()
        .expect("HTTP client");
    let mut req = http.get(url);
    if let Some(ua) = user_agent {
        req = req.header("user-agent", ua);
    }
    req.send().await.expect("request")
}

fn header(r: &reqwest::Response, name: &str) -> String {
    r.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

/// The base64 list's link names (fragments), decoded.
async fn base64_names(url: &str) -> Vec<String> {
    let body = fetch(url, None).await.text().await.expect("body");
    let text = base64::engine::general_purpose::STANDARD
        .decode(body.trim())
        .expect("base64");
    String::from_utf8(text)
        .expect("utf-8")
        .lines()
        .map(|l| {
            let frag = l.rsplit_once('#').expect("a name").1;
            percent_decode(frag)
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() + 1 {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).expect("hex");
            out.push(u8::from_str_radix(hex, 16).expect("hex"));
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).expect("utf-8")
}

#[tokio::test]
async fn every_format_lists_the_servers_and_follows_node_health() {
    let mut f = fixture().await;
    let m = &f.app.manager.api;
    let url = f.user["subscription_url"].as_str().expect("url").to_owned();
    let port = f
        .app
        .manager
        .base_url
        .rsplit(':')
        .next()
        .expect("port")
        .to_owned();
    let secret = url.rsplit('/').next().expect("secret").to_owned();
    assert_eq!(secret.len(), 32);
    assert_eq!(url, format!("http://127.0.0.1:{port}/sub/{secret}"));
    let names = expected_names(&f.node_ids);
    let (password, method) = (
        f.user["password"].as_str().expect("password"),
        f.user["method"].as_str().expect("method"),
    );

    // Base64: exactly the SIP002 links, in order.
    let r = fetch(&url, None).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(header(&r, "content-type"), "text/plain; charset=utf-8");
    assert_eq!(
        header(&r, "subscription-userinfo"),
        format!("upload=0; download=0; total={QUOTA}; expire=0")
    );
    assert_eq!(header(&r, "profile-update-interval"), "12");
    assert_eq!(header(&r, "cache-control"), "no-store");
    assert_eq!(header(&r, "referrer-policy"), "no-referrer");
    assert_eq!(
        header(&r, "profile-web-page-url"),
        format!("http://127.0.0.1:{port}/u/{secret}")
    );
    assert_eq!(
        header(&r, "content-disposition"),
        "attachment; filename=\"Arch _ alice.txt\"; filename*=UTF-8''Arch%20%C2%B7%20alice.txt"
    );
    let body = r.text().await.expect("body");
    let text = String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(&body)
            .expect("base64"),
    )
    .expect("utf-8");
    let hosts_ports: Vec<u16> = vec![f.ports[0], f.ports[1], f.ports[2], f.ports[3]];
    let want: Vec<String> = names
        .iter()
        .zip(&hosts_ports)
        .map(|(name, port)| subscription::sip002(method, password, "127.0.0.1", *port, name))
        .collect();
    assert_eq!(text, want.join("\n"));

    // SIP008.
    let r = fetch(&format!("{url}?format=sip008"), None).await;
    assert_eq!(header(&r, "content-type"), "application/json");
    let v: Value = r.json().await.expect("json");
    assert_eq!(v["version"], 1);
    assert_eq!(v["bytes_used"], 0);
    assert_eq!(v["bytes_remaining"], QUOTA);
    let servers = v["servers"].as_array().expect("servers");
    let remarks: Vec<&str> = servers
        .iter()
        .map(|s| s["remarks"].as_str().expect("remarks"))
        .collect();
    assert_eq!(remarks, names);
    for (s, port) in servers.iter().zip(&hosts_ports) {
        assert_eq!(s["server"], "127.0.0.1");
        assert_eq!(s["server_port"], *port);
        assert_eq!(s["password"], password);
        assert_eq!(s["method"], method);
        assert_eq!(s["id"].as_str().expect("id").len(), 36);
    }
    // Ids are stable across fetches.
    let again: Value = fetch(&format!("{url}?format=sip008"), None)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(again["servers"], v["servers"]);

    // Clash by User-Agent.
    let r = fetch(&url, Some("clash-verge/v1.7.7")).await;
    assert_eq!(header(&r, "content-type"), "text/yaml; charset=utf-8");
    let y: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(&r.text().await.expect("body")).expect("yaml");
    let proxies = y["proxies"].as_sequence().expect("proxies");
    let clash_names: Vec<&str> = proxies
        .iter()
        .map(|p| p["name"].as_str().expect("name"))
        .collect();
    assert_eq!(clash_names, names);
    for (p, port) in proxies.iter().zip(&hosts_ports) {
        assert_eq!(p["type"].as_str(), Some("ss"));
        assert_eq!(p["server"].as_str(), Some("127.0.0.1"));
        assert_eq!(p["port"].as_u64(), Some(u64::from(*port)));
        assert_eq!(p["cipher"].as_str(), Some(method));
        assert_eq!(p["password"].as_str(), Some(password));
    }
    assert_eq!(
        proxies[2]["udp"].as_bool(),
        Some(false),
        "reverse carries no UDP"
    );
    assert_eq!(proxies[0]["udp"].as_bool(), Some(true));
    assert_eq!(y["proxy-groups"][0]["type"].as_str(), Some("select"));
    assert_eq!(y["proxy-groups"][1]["type"].as_str(), Some("url-test"));
    assert_eq!(y["rules"][0].as_str(), Some("MATCH,Arch"));

    // sing-box by User-Agent.
    let r = fetch(&url, Some("SFA/1.11.4 (Android 14)")).await;
    assert_eq!(header(&r, "content-type"), "application/json");
    let v: Value = r.json().await.expect("json");
    let ss: Vec<&Value> = v["outbounds"]
        .as_array()
        .expect("outbounds")
        .iter()
        .filter(|o| o["type"] == "shadowsocks")
        .collect();
    let tags: Vec<&str> = ss.iter().map(|o| o["tag"].as_str().expect("tag")).collect();
    assert_eq!(tags, names);
    assert_eq!(ss[2]["network"], "tcp");
    assert_eq!(v["route"]["final"], "Arch");

    // A browser goes to the profile page.
    let r = fetch(&url, Some("Mozilla/5.0 (X11; Linux x86_64) Firefox/133.0")).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        header(&r, "location"),
        format!("http://127.0.0.1:{port}/u/{secret}")
    );
    // An unknown format is a 400 naming the formats.
    let r = fetch(&format!("{url}?format=xml"), None).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        r.text().await.expect("body"),
        "unknown format \"xml\": use base64, sip008, clash or sing-box\n"
    );

    // Node 1 goes down: its entry leaves the list within the pull timeout plus a pull period
    // (and the sync that follows); it comes back after a restart.
    let loops = fast_loops();
    let within =
        loops.pull_timeout + loops.pull_interval + loops.sync_interval + Duration::from_secs(5);
    f.app.nodes[0].stop().await;
    let without: Vec<String> = expected_names(&f.node_ids[1..]);
    wait_until("node 1 to leave the subscription", within, || async {
        base64_names(&url).await == without
    })
    .await;
    f.app.nodes[0].restart().await;
    wait_until("node 1 to come back", Duration::from_secs(20), || async {
        base64_names(&url).await == names
    })
    .await;
    // A renamed node is listed under its new name at the next fetch.
    let (st, n) = m
        .patch(
            &format!("/v1/nodes/{}", f.node_ids[0]),
            &json!({"name": "Frankfurt #1"}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{n}");
    assert_eq!(n["name"], "Frankfurt #1");
    let mut renamed = names.clone();
    renamed[3] = "Frankfurt #1 · remote".to_owned();
    assert_eq!(base64_names(&url).await, renamed);

    // Disabled: a valid, empty list with the userinfo header.
    let id = f.user["id"].as_i64().expect("id");
    let (st, _) = m
        .patch(&format!("/v1/users/{id}"), &json!({"enabled": false}))
        .await;
    assert_eq!(st, StatusCode::OK);
    let r = fetch(&url, None).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        header(&r, "subscription-userinfo"),
        format!("upload=0; download=0; total={QUOTA}; expire=0")
    );
    assert_eq!(r.text().await.expect("body"), "");
    let v: Value = fetch(&format!("{url}?format=sip008"), None)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(v["servers"], json!([]));

    // Rotation: the old URL is unknown at once, the new one works.
    let (st, rotated) = m
        .post(&format!("/v1/users/{id}/rotate-subscription"), &json!({}))
        .await;
    assert_eq!(st, StatusCode::OK, "{rotated}");
    let new_url = rotated["subscription_url"]
        .as_str()
        .expect("url")
        .to_owned();
    assert_ne!(new_url, url);
    let old = fetch(&url, None).await;
    assert_eq!(old.status(), StatusCode::NOT_FOUND);
    let old_headers = old.headers().clone();
    let old_body = old.bytes().await.expect("body");
    assert_eq!(fetch(&new_url, None).await.status(), StatusCode::OK);
    let (_, again) = m.get(&format!("/v1/users/{id}")).await;
    assert_eq!(again["subscription_url"], new_url.as_str());
    assert!(again.get("sub_secret").is_none() && again.get("sub_secret_hash").is_none());

    // An unknown secret gets the same answer as the rotated-out one.
    let unknown = fetch(
        &f.app.manager.url("/sub/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
        None,
    )
    .await;
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    let mut a: Vec<_> = old_headers
        .iter()
        .filter(|(n, _)| *n != "date")
        .map(|(n, v)| (n.to_string(), v.clone()))
        .collect();
    let mut b: Vec<_> = unknown
        .headers()
        .iter()
        .filter(|(n, _)| *n != "date")
        .map(|(n, v)| (n.to_string(), v.clone()))
        .collect();
    a.sort_by(|x, y| x.0.cmp(&y.0));
    b.sort_by(|x, y| x.0.cmp(&y.0));
    assert_eq!(a, b);
    assert_eq!(unknown.bytes().await.expect("body"), old_body);
    let (st, _) = m
        .post("/v1/users/999/rotate-subscription", &json!({}))
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn subscriptions_are_rate_limited_per_address() {
    let app = TestApp::builder().start().await;
    let url = app.manager.url("/sub/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
    let burst = manager::services::subscriptions::RATE_BURST;
    for i in 0..burst {
        let r = client().get(&url).send().await.expect("request");
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "request {i}");
    }
    // An X-Forwarded-For from a peer that is not a trusted proxy does not open a new bucket.
    let r = client()
        .get(&url)
        .header("x-forwarded-for", "198.51.100.7")
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = header(&r, "retry-after")
        .parse()
        .expect("Retry-After seconds");
    assert!((1..=2).contains(&retry), "{retry}");
    assert_eq!(header(&r, "cache-control"), "no-store");
}
